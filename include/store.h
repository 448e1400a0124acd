/*
 * store.h — the replicated state machine: linkraft's data in SQLite.
 *
 * Committed Raft entries are applied here in log order, a batch per SQLite
 * transaction, and the index of the last applied entry is written in the same
 * transaction as the changes it caused: after a crash the database is exactly
 * the state at its recorded index, and Raft's log (the durable record)
 * replays what follows. The database runs in WAL mode with
 * synchronous=NORMAL: a transaction may be lost on power failure but never
 * half-applied, and whatever is lost the log replays.
 *
 * Checkpoints (copying the WAL into the database file, the only moment
 * SQLite fsyncs in this mode) are not left to SQLite: its automatic ones
 * ignore a failed fsync, and a later checkpoint that "succeeds" after the
 * kernel dropped the pages resets the WAL over a database missing entries
 * that replay (which starts after the applied index) never redoes. The
 * caller runs store_checkpoint when store_wal_pages() grows, and any I/O
 * error of SQLite (commit, checkpoint, snapshot copy) is STORE_EIO: fatal,
 * never retried, like a failed fsync of the log.
 *
 * Commands are deterministic: everything that varies (time, random tokens,
 * password hashes) was fixed by the proposing node inside the command
 * (include/command.h), so every replica computes identical results.
 *
 * The log clock: apply sees time as max(command's time_ms, the log clock so
 * far), kept in the database with the applied index. Leaders' clocks differ,
 * so raw time_ms may step back at a change of leader; the log clock never
 * does, which makes expiry (sessions, idempotency keys) and the cleanup of
 * expired rows give the same answers whatever the batch boundaries.
 *
 * Threads: a struct store is used from one thread (the node's event loop).
 * store_snapshot() and store_checkpoint() open their own connections and may
 * run on a worker thread.
 */
#ifndef LINKRAFT_STORE_H
#define LINKRAFT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "command.h" /* sizes of what commands carry (a moderation reason) */

enum {
    STORE_OK = 0,
    STORE_EIO = -1,         /* SQLite failed; errmsg says why; the node must stop */
    STORE_ENOMEM = -2,
    STORE_EINVAL = -3,
    STORE_EFULL = -4,       /* the disk is full: nothing of the batch was applied; retry later */
    STORE_EAGAIN = -5,      /* not done for a passing reason (e.g. busy): try again later */
    STORE_ECORRUPT = -6,    /* the database is damaged (a page checksum or quick_check
                               failed): nothing of it may be served or shipped; rebuild it */
};

/* The outcome of one applied command, identical on every replica. */
struct store_result {
    int status;             /* enum command_status (command.h); 0 = ok */
    int64_t id;             /* e.g. the new link's id, or the existing one for a duplicate */
    int64_t count;          /* e.g. a link's like count after a like */
    uint8_t flag;           /* e.g. liked or not after a like/unlike */
    char text[64];          /* e.g. the canonical username */
    uint8_t replayed;       /* 1: the stored result of an earlier command with
                               the same idempotency scope and key */
    /* Not kept with a replayed result (0 then): what a new row got, so the
     * proposer can answer with it without reading the row back. */
    uint64_t time_ms;       /* the command's time on the log clock: a new link's
                               or comment's created */
    int depth;              /* a new comment's depth (0: top level) */
};

struct store;

/* One committed log entry as the store sees it (it knows nothing of Raft):
 * its index and, for a command, its bytes (include/command.h). Any other
 * entry (a leader's no-op, a configuration) only advances the applied index. */
struct store_entry {
    uint64_t index;
    bool command;
    const uint8_t *data;
    size_t len;
};

/* Opens (creating if needed) the database at path, and checks it (PRAGMA
 * quick_check: every page is read, so its checksum is verified, and the
 * b-trees' structure too): STORE_ECORRUPT if it is damaged. A database this
 * creates keeps a CRC32C in every page (src/store/cksum_vfs.c), so a damaged
 * page read later is an error, never data. */
int store_open(const char *path, struct store **out, char *err, size_t errcap);
/* Whether store_open found a database written before page checksums (no
 * reserved bytes in its pages) and replaced it by a checksummed copy
 * (VACUUM INTO, then an atomic rename; store.c says how). */
bool store_was_migrated(const struct store *st);
void store_close(struct store *st);
const char *store_errmsg(const struct store *st);

/* Index of the last entry whose effects are in the database (0: none),
 * committed or not: reads on this store see them all. */
uint64_t store_applied(const struct store *st);
/* Index of the last entry whose effects are committed to SQLite. */
uint64_t store_committed(const struct store *st);

/* Applies committed entries. COMMAND entries are decoded and executed; NOOP
 * and CONFIG entries only advance the applied index. A command that cannot
 * be decoded or is refused (e.g. a taken name) is not an error of the store:
 * it gets a non-zero results[i].status, identically on every replica.
 * results may be NULL; otherwise it has n slots. Entries at or below
 * store_applied() are skipped (replay after restart).
 *
 * The changes join one open SQLite transaction, with the applied index, until
 * store_commit: a commit writes every page the batch touched to the WAL, so
 * committing once per several batches rather than per batch saves most of
 * that work. Nothing is lost by waiting: the Raft log is the durable record
 * and a restart applies again whatever was not committed.
 *
 * Returns STORE_EFULL if the disk is full, STORE_EIO if SQLite fails
 * otherwise; either way everything since the last commit is rolled back and
 * store_applied() is store_committed() again: apply it again from the log. */
int store_apply(struct store *st, const struct store_entry *entries, size_t n,
                struct store_result *results);
/* Commits what store_apply applied since the last commit (nothing to do: OK).
 * On failure (STORE_EFULL, STORE_EIO) it is rolled back as above.
 * store_close commits too. */
int store_commit(struct store *st);

/* Whether a damaged database page was read since the process started, by
 * any connection (also the raw handle's queries): the read got an error, not
 * the data, and the node must stop serving (a restart rebuilds the database:
 * store_open finds the damage). */
bool store_damage_seen(void);

/* Frames in the WAL as of the last commit (0 after a checkpoint let the WAL
 * start over). */
unsigned store_wal_pages(const struct store *st);

/* Checkpoints the database at db_path (PASSIVE: copies the committed WAL
 * frames into the database file and fsyncs both) from a connection of its
 * own, so it may run on a worker thread while the loop applies and commits.
 * STORE_EIO on any I/O error (fatal: stop the node, never retry), STORE_EFULL
 * if the disk is full (the WAL keeps everything; retry later). truncate: also
 * empty the WAL file (when nothing else uses the database: at a clean stop). */
int store_checkpoint(const char *db_path, bool truncate, char *err, size_t errcap);

/* Writes a consistent copy of the committed database at db_path to out_path
 * (page for page, by SQLite's backup API, from a separate connection; as one
 * file in rollback-journal mode), fdatasyncs it, and returns the applied
 * index it contains. Safe to call from a worker thread while the
 * loop applies. (The fdatasync here is what makes adopting the copy cheap:
 * storage_snapshot_adopt syncs it again, but runs in the log's write
 * pipeline, where writing out megabytes would stall every write.)
 * STORE_EIO on an I/O error reading the database or writing the copy
 * (fatal), STORE_EFULL or STORE_EAGAIN when a later attempt may succeed. */
int store_snapshot(const char *db_path, const char *out_path, uint64_t *index,
                   char *err, size_t errcap);

/* Replaces the database with the snapshot at snapshot_path (copied to
 * PATH.restore and fsynced, the old -wal and -shm removed and the directory
 * fsynced — so the old WAL can never be replayed over the new file — then
 * renamed over PATH, the directory fsynced again) and reopens it. On success
 * store_applied() is the snapshot's index. No other connection may have the
 * database open meanwhile (a snapshot copy or checkpoint on a worker). A
 * failure after the copy leaves the store closed: the node must stop (the
 * log and snapshot on disk are intact; the next start restores again).
 * store_open removes a PATH.restore left by a crash. */
int store_restore(struct store *st, const char *snapshot_path, char *err, size_t errcap);

/* Moves a damaged database at path (and its WAL) aside, to PATH.damaged and
 * PATH.damaged-wal (replacing earlier ones), removes its -shm and fsyncs the
 * directory: the next store_open starts an empty database, which the node
 * rebuilds from its snapshot and log. */
int store_set_aside(const char *path, char *err, size_t errcap);

/* The raw SQLite handle, for queries by modules above (site, status). */
struct sqlite3 *store_db(struct store *st);

/* KV reads (the key-value commands of command.h). *value is malloc'd; the
 * caller frees it. Returns 1 if found, 0 if not, <0 on error. */
int store_kv_get(struct store *st, const char *key, size_t key_len, char **value, size_t *value_len);

/* ---- The site's data (commands CMD_SIGNUP .. CMD_UNLIKE) ----------------
 *
 * Tables: users (name as typed, lname canonical lowercase UNIQUE, argon2id
 * hash), sessions (SHA-256 of the token, user, expiry in log time), links
 * (title, url as given, url_norm UNIQUE, created = the command's time_ms,
 * likes, hot score stored and indexed), likes (one row per link and user).
 * Ids of users and links are assigned at apply, in log order, so they are
 * identical on every replica. Every query below is served by an index.
 *
 * All functions return 1 (found) / 0 (not found) or STORE_OK, or a negative
 * STORE_E* with store_errmsg() saying why. Strings in the structs are copies,
 * NUL-terminated. */

#define STORE_NAME_CAP 32
#define STORE_TITLE_CAP (800 + 1)
#define STORE_URL_CAP (2048 + 1)
#define STORE_PWHASH_CAP 256

struct store_user {
    int64_t id;
    char name[STORE_NAME_CAP];      /* as typed at sign-up */
    char lname[STORE_NAME_CAP];     /* lowercase */
    char pwhash[STORE_PWHASH_CAP];  /* crypto_pwhash_str string */
    uint64_t created_ms;
};

struct store_link {
    int64_t id;
    char title[STORE_TITLE_CAP];
    char url[STORE_URL_CAP];        /* as submitted (after validation) */
    char author[STORE_NAME_CAP];    /* the author's name as typed */
    uint64_t created_ms;            /* the proposer's clock, from the log */
    int64_t likes;
    double hot;
    int64_t comments;               /* live comments */
    uint64_t edited_ms;             /* 0: never edited */
    uint8_t has_text;               /* a text post, or a link with text: store_link_text */
};

enum store_sort { STORE_SORT_HOT = 0, STORE_SORT_NEW = 1, STORE_SORT_TOP = 2 };

/* Reddit's hot score: log10(max(likes,1)) + (created_s - 1134028003) / 45000. */
double store_hot_score(int64_t likes, uint64_t created_ms);

/* The user named name (any case). */
int store_user_by_name(struct store *st, const char *name, size_t len, struct store_user *out);
/* How many links a user posted and liked (index range counts: O(those rows)). */
int store_user_counts(struct store *st, int64_t user_id, int64_t *links, int64_t *likes_given);
/* The user of a live session: hash is COMMAND_HASH_LEN bytes; a session whose
 * expiry is at or before now_ms (the reading node's clock) is not live. */
int store_session_user(struct store *st, const uint8_t *hash, uint64_t now_ms, struct store_user *out);
/* One link. */
int store_link_get(struct store *st, int64_t id, struct store_link *out);
/* The id of the link whose normalized URL is url_norm. */
int store_link_by_url(struct store *st, const char *url_norm, size_t len, int64_t *id);
/* A page of links: hot (score, then newest), new (log order, newest first)
 * or top (likes, then newest). Fills at most limit into out; *n = count. */
int store_links(struct store *st, enum store_sort sort, unsigned limit, unsigned offset,
                struct store_link *out, size_t *n);
/* A page of one user's links, newest first. */
int store_links_by_user(struct store *st, int64_t user_id, unsigned limit, unsigned offset,
                        struct store_link *out, size_t *n);
/* liked[i] = 1 if user_id likes ids[i], else 0. */
int store_liked(struct store *st, int64_t user_id, const int64_t *ids, size_t n, uint8_t *liked);
/* Totals for the status page (users and links are never deleted, so these
 * are their highest ids: O(1)). */
int store_counts(struct store *st, int64_t *users, int64_t *links);

/* The member addresses carried in the log (CMD_MEMBER_ADDR), in id order:
 * each(arg, id, "RAFT-ADDRESS HTTP-ADDRESS"). */
int store_members(struct store *st, void (*each)(void *arg, const char *id, const char *addrs), void *arg);

/* ---- Comments (commands CMD_COMMENT_*; src/store/comments.c) -------------
 *
 * Table comments: link, parent (0 at top level), author (NULL once deleted),
 * text, created and edited (log time), likes, deleted, depth and path. The
 * path is the parent's path followed by the comment's id as 16 hex digits,
 * so rows of one link in path order are its tree in pre-order, read by one
 * range scan of the index (link_id, path); siblings are then ordered by
 * likes in C (likes change, so no stored key can stay sorted by them).
 * comment_likes has one row per comment and user. links.comments counts a
 * link's live (not deleted) comments. */

struct store_comment {
    int64_t id, link_id, parent_id;     /* parent_id 0: top level */
    char author[STORE_NAME_CAP];        /* "" once deleted */
    char *text;                         /* malloc'd, NUL-terminated; "" once deleted */
    uint64_t created_ms, edited_ms;     /* edited_ms 0: never edited */
    int64_t likes;
    int depth;                          /* 0: top level */
    uint8_t deleted;
};

/* One comment (a deleted placeholder too). Free with store_comment_clear. */
int store_comment_get(struct store *st, int64_t id, struct store_comment *out);
void store_comment_clear(struct store_comment *c);
/* The whole thread of a link in display order: each comment right after its
 * parent, siblings by likes (most first), then oldest first. *out is
 * malloc'd (NULL when *n is 0): free with store_comments_free. One indexed
 * query, then a sort in memory. */
int store_thread(struct store *st, int64_t link_id, struct store_comment **out, size_t *n);
void store_comments_free(struct store_comment *c, size_t n);
/* Whether link id exists and is live: 1, 0, or <0 (one index probe, no
 * column read: a comment's check before it is proposed). */
int store_link_live(struct store *st, int64_t id);
/* The text of live link id: 1 and *text (malloc'd; NULL if the link has
 * none), 0 if there is no such live link. Links without a URL have url "". */
int store_link_text(struct store *st, int64_t id, char **text);

/* A user's profile (src/store/users.c): karma = likes received on live
 * links and comments; counts of live links and comments; *about is
 * malloc'd. Range scans of the user's own rows. */
int store_user_profile(struct store *st, int64_t user_id, int64_t *karma, int64_t *links, int64_t *comments,
                       char **about);
/* A page of a user's live comments, newest first (*out as store_thread's). */
int store_comments_by_user(struct store *st, int64_t user_id, unsigned limit, unsigned offset,
                           struct store_comment **out, size_t *n);

/* Whether user_id flagged link (comment false) or comment id (flags.c). */
int store_flagged(struct store *st, int64_t user_id, bool comment, int64_t id);
/* flagged[i] = 1 if user_id flagged the comment ids[i], else 0 (one
 * primary-key probe each: a thread page asks for all its comments). */
int store_comments_flagged(struct store *st, int64_t user_id, const int64_t *ids, size_t n, uint8_t *flagged);

/* ---- Moderation (src/store/moderation.c) ---------------------------------- */

/* Whether the user is a moderator, and banned. */
int store_user_roles(struct store *st, int64_t user_id, bool *moderator, bool *banned);

/* One entry of the public moderation log. */
struct store_mod_action {
    char moderator[STORE_NAME_CAP];     /* "" for the admin plane (granting moderators) */
    char action[24];                    /* delete_link, delete_comment, ban, unban,
                                           moderator_add, moderator_remove */
    char target[48];                    /* "link/ID", "comment/ID", "user/NAME" */
    char reason[COMMAND_MAX_REASON_BYTES + 1];
    uint64_t created_ms;
};
/* A page of the log, newest first. */
int store_mod_log(struct store *st, unsigned limit, unsigned offset, struct store_mod_action *out, size_t *n);

/* liked[i] = 1 if user_id likes the comment ids[i], else 0. */
int store_comments_liked(struct store *st, int64_t user_id, const int64_t *ids, size_t n, uint8_t *liked);

/* ---- Finding things (src/store/search.c) ---------------------------------
 *
 * Full text over the live links' titles, texts and domains (SQLite FTS5,
 * kept in the apply transaction), and links by domain (an index of the
 * reversed domain, so a domain's subdomains are one range of it). */

#define STORE_DOMAIN_CAP 256
#define STORE_SEARCH_MAX_WORDS 32       /* words of a query beyond these are ignored */
#define STORE_SEARCH_QUERY_CAP 4096
/* Flags: a link flagged by this many users leaves the hot and new listings
 * (its own page, search and top stay). Written into the listings' SQL. */
#define STORE_FLAGS_HIDE 5

/* Rate limits on new content per user, decided at apply on the log clock. */
#define STORE_RATE_LINKS_NEW 5          /* links per hour, accounts younger than a day */
#define STORE_RATE_LINKS 10             /* links per hour after */
#define STORE_RATE_COMMENT_NEW_MS 10000 /* one comment per this, accounts younger than a day */
#define STORE_RATE_COMMENT_MS 2000      /* one comment per this after */

/* The FTS5 query for words (any bytes, len of them): each run of bytes
 * between spaces or control bytes becomes one quoted string (a '"' doubled),
 * so no input is ever read as FTS5 syntax; at most STORE_SEARCH_MAX_WORDS
 * of them, and only whole words that fit cap. Returns its length (0: no
 * words). */
size_t store_search_query(const char *in, size_t len, char *out, size_t cap);
/* Live links matching every word, best match first (bm25: title 10, domain 4,
 * text 1), ties newest first; *total counts them, up to
 * STORE_SEARCH_COUNT_CAP (or offset + limit, if more). A query with more
 * than STORE_SEARCH_RANK_WINDOW matches ranks the newest that many (or
 * offset + limit, if more): bm25 scores every row it ranks, and a common
 * word at a million links is tens of thousands of rows (docs/finding.md).
 * The matches are counted walking them newest first, which also finds the
 * window; the count stops at the cap, so a word in half of all links costs
 * what one in 10,000 does. */
#define STORE_SEARCH_RANK_WINDOW 2000
#define STORE_SEARCH_COUNT_CAP 10000
int store_search(struct store *st, const char *words, size_t len, unsigned limit, unsigned offset,
                 struct store_link *out, size_t *n, int64_t *total);

/* ---- Searching off the loop (src/store/reader.c) --------------------------
 *
 * A search runs on a worker thread, on a read-only connection of its own
 * (WAL lets it read while the loop applies and commits): it sees what the
 * store has committed (store_committed), not what is applied since, and
 * says which index that is. A reader is used by one thread at a time; it
 * opens its connection at its first search, and again after store_restore
 * replaced the files (which waits for a search in progress to end). One
 * search's CPU time is bounded: past STORE_SEARCH_BUDGET_MS/2 the count
 * stops where it got to (total_capped), and a ranking that would take the
 * search past STORE_SEARCH_BUDGET_MS is given up (STORE_EAGAIN: the words
 * are too broad), so a worker is never held for long. */
#define STORE_SEARCH_BUDGET_MS 100
struct store_search_page {
    struct store_link *links;   /* the caller's array of at least limit */
    char **texts;               /* the caller's array of limit: each link's text (malloc'd), NULL if none */
    size_t n;
    int64_t total;              /* matches counted */
    bool total_capped;          /* there are more than total (the cap, or the budget) */
    uint64_t index;             /* the applied index of the state searched */
};
struct store_reader;
/* A reader of st's database (NULL: out of memory); st must outlive it. */
struct store_reader *store_reader_new(struct store *st);
void store_reader_free(struct store_reader *rd);
/* Another budget than STORE_SEARCH_BUDGET_MS (tests: one that never runs
 * out under a sanitizer, or none at all). */
void store_reader_set_budget(struct store_reader *rd, unsigned ms);
/* store_search on rd, with the texts of text posts (page->texts), in one
 * read transaction: STORE_OK, STORE_EAGAIN (too broad: the budget ran out
 * ranking), or STORE_EIO / STORE_ECORRUPT / STORE_ENOMEM with
 * store_reader_errmsg saying why. Any thread. */
int store_reader_search(struct store_reader *rd, const char *words, size_t len, unsigned limit, unsigned offset,
                        struct store_search_page *page);
const char *store_reader_errmsg(const struct store_reader *rd);
/* The reversed key of a domain as asked ("Example.COM." -> "com.example.";
 * a leading "www." dropped as it is when stored): false if it is no domain. */
bool store_domain_key(const char *domain, size_t len, char *rdomain, size_t cap);
/* Live links of domain and its subdomains, newest first. */
int store_links_by_domain(struct store *st, const char *domain, size_t len, unsigned limit, unsigned offset,
                          struct store_link *out, size_t *n);

#endif
