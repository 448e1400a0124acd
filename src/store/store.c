/*
 * store.c — the SQLite state machine (see include/store.h): schema, batched
 * apply with the applied index in the same transaction, idempotent commands,
 * snapshot by a page copy (the backup API) and restore by replacing the file.
 */
#include "store.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <math.h>
#include <pthread.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "command.h"
#include "store/cksum_vfs.h"
#include "store/discussion.h"

/* How long an idempotency key is remembered, in log time. */
#define IDEM_TTL_MS (24ull * 3600 * 1000)

enum stmt_id {
    S_BEGIN, S_COMMIT, S_ROLLBACK, S_SET_APPLIED,
    S_KV_PUT, S_KV_DELETE, S_KV_GET,
    S_IDEM_GET, S_IDEM_PUT, S_IDEM_EXPIRE,
    S_MEMBER_PUT, S_MEMBER_LIST,
    S_SET_CLOCK,
    S_USER_BY_LNAME, S_USER_INSERT, S_USER_COUNTS,
    S_SESSION_PUT, S_SESSION_DELETE, S_SESSION_USER, S_SESSION_EXPIRE,
    S_LINK_INSERT, S_LINK_BY_URL, S_LINK_LIKES, S_LINK_SET_LIKES,
    S_LIKE_INSERT, S_LIKE_DELETE, S_LIKED,
    S_LINK_GET, S_LINKS_HOT, S_LINKS_NEW, S_LINKS_TOP, S_LINKS_USER, S_COUNTS,
    S_COUNT
};

/* The columns every link query returns, in this order (read_link). */
#define LINK_COLS STORE_LINK_COLS
#define STR_(x) #x
#define STR(x) STR_(x)
#define HIDE STR(STORE_FLAGS_HIDE)
#define USER_COLS "SELECT id, name, lname, pwhash, created FROM users "


static const char *const stmt_sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_SET_APPLIED] = "UPDATE meta SET v = ?1 WHERE k = 'applied'",
    [S_KV_PUT] = "INSERT INTO kv(k, v) VALUES (?1, ?2) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
    [S_KV_DELETE] = "DELETE FROM kv WHERE k = ?1",
    [S_KV_GET] = "SELECT v FROM kv WHERE k = ?1",
    [S_IDEM_GET] = "SELECT status, id, count, flag, text FROM idem WHERE scope = ?1 AND key = ?2 AND expires >= ?3",
    [S_IDEM_PUT] = "INSERT OR REPLACE INTO idem(scope, key, status, id, count, flag, text, expires) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [S_IDEM_EXPIRE] = "DELETE FROM idem WHERE expires < ?1",
    [S_MEMBER_PUT] = "INSERT INTO members(id, addrs) VALUES (?1, ?2) ON CONFLICT(id) DO UPDATE SET addrs = excluded.addrs",
    [S_MEMBER_LIST] = "SELECT id, addrs FROM members ORDER BY id",
    [S_SET_CLOCK] = "UPDATE meta SET v = ?1 WHERE k = 'clock'",
    [S_USER_BY_LNAME] = USER_COLS "WHERE lname = ?1",
    [S_USER_INSERT] = "INSERT INTO users(name, lname, pwhash, created) VALUES (?1, ?2, ?3, ?4)",
    [S_USER_COUNTS] = "SELECT (SELECT count(*) FROM links WHERE author_id = ?1 AND deleted = 0),"
                      " (SELECT count(*) FROM likes WHERE user_id = ?1)",
    [S_SESSION_PUT] = "INSERT OR REPLACE INTO sessions(hash, user_id, expires) VALUES (?1, ?2, ?3)",
    [S_SESSION_DELETE] = "DELETE FROM sessions WHERE hash = ?1",
    [S_SESSION_USER] = "SELECT u.id, u.name, u.lname, u.pwhash, u.created, s.expires FROM sessions s"
                       " JOIN users u ON u.id = s.user_id WHERE s.hash = ?1 AND s.expires > ?2",
    [S_SESSION_EXPIRE] = "DELETE FROM sessions WHERE expires <= ?1",
    [S_LINK_INSERT] = "INSERT INTO links(author_id, title, url, url_norm, created, likes, hot, domain, rdomain)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?8)",
    [S_LINK_BY_URL] = "SELECT id FROM links WHERE url_norm = ?1",
    [S_LINK_LIKES] = "SELECT likes, created FROM links WHERE id = ?1 AND deleted = 0",
    [S_LINK_SET_LIKES] = "UPDATE links SET likes = ?2, hot = ?3 WHERE id = ?1",
    [S_LIKE_INSERT] = "INSERT OR IGNORE INTO likes(link_id, user_id, created) VALUES (?1, ?2, ?3)",
    [S_LIKE_DELETE] = "DELETE FROM likes WHERE link_id = ?1 AND user_id = ?2",
    [S_LIKED] = "SELECT 1 FROM likes WHERE link_id = ?1 AND user_id = ?2",
    [S_LINK_GET] = LINK_COLS "WHERE l.id = ?1 AND l.deleted = 0",
    /* A link flagged by STORE_FLAGS_HIDE users leaves hot and new (SPEC §5). */
    [S_LINKS_HOT] = LINK_COLS "WHERE l.deleted = 0 AND l.flags < " HIDE " ORDER BY l.hot DESC, l.id DESC LIMIT ?1 OFFSET ?2",
    [S_LINKS_NEW] = LINK_COLS "WHERE l.deleted = 0 AND l.flags < " HIDE " ORDER BY l.id DESC LIMIT ?1 OFFSET ?2",
    [S_LINKS_TOP] = LINK_COLS "WHERE l.deleted = 0 ORDER BY l.likes DESC, l.id DESC LIMIT ?1 OFFSET ?2",
    [S_LINKS_USER] = LINK_COLS "WHERE l.author_id = ?3 AND l.deleted = 0 ORDER BY l.id DESC LIMIT ?1 OFFSET ?2",
    [S_COUNTS] = "SELECT (SELECT coalesce(max(id), 0) FROM users), (SELECT coalesce(max(id), 0) FROM links)",
};

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
    "INSERT OR IGNORE INTO meta(k, v) VALUES ('applied', 0), ('schema', 1);"
    "CREATE TABLE IF NOT EXISTS kv(k BLOB PRIMARY KEY, v BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS idem(scope BLOB NOT NULL, key BLOB NOT NULL, status INTEGER NOT NULL,"
    " id INTEGER NOT NULL, count INTEGER NOT NULL, flag INTEGER NOT NULL, text TEXT NOT NULL,"
    " expires INTEGER NOT NULL, PRIMARY KEY (scope, key)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS idem_expires ON idem(expires);"
    "CREATE TABLE IF NOT EXISTS members(id BLOB PRIMARY KEY, addrs BLOB NOT NULL);"
    /* The site. Ids are rowids (max + 1 at insert, in log order). */
    "INSERT OR IGNORE INTO meta(k, v) VALUES ('clock', 0);"
    "CREATE TABLE IF NOT EXISTS users(id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
    " lname TEXT NOT NULL UNIQUE, pwhash TEXT NOT NULL, created INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS sessions(hash BLOB PRIMARY KEY, user_id INTEGER NOT NULL,"
    " expires INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS sessions_expires ON sessions(expires);"
    "CREATE TABLE IF NOT EXISTS links(id INTEGER PRIMARY KEY, author_id INTEGER NOT NULL,"
    " title TEXT NOT NULL, url TEXT NOT NULL, url_norm TEXT NOT NULL UNIQUE,"
    " created INTEGER NOT NULL, likes INTEGER NOT NULL, hot REAL NOT NULL);"
    "CREATE INDEX IF NOT EXISTS links_hot ON links(hot DESC, id DESC);"
    "CREATE INDEX IF NOT EXISTS links_top ON links(likes DESC, id DESC);"
    "CREATE INDEX IF NOT EXISTS links_author ON links(author_id, id);"
    "CREATE TABLE IF NOT EXISTS likes(link_id INTEGER NOT NULL, user_id INTEGER NOT NULL,"
    " created INTEGER NOT NULL, PRIMARY KEY (link_id, user_id)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS likes_user ON likes(user_id);";

/* Sessions found, by hash. Each like, post or comment resolves its session
 * twice on the leader (the site's check before proposing, then the apply)
 * and once on every follower, each time a join of two tables: ~8% of a
 * leader's CPU under likes. Only sessions that exist are kept, with their
 * expiry, and the cache is emptied by anything that could change a session
 * or its user (session_cache_keeps, expiry deleting rows, a rollback, a
 * reopen), so a hit answers what the query would: the apply stays the same
 * on every replica. */
#define SESSION_CACHE_SLOTS 1024 /* in pairs: two sessions whose hashes meet share them */
struct session_slot {
    bool used;
    bool recent; /* of its pair, the one used last */
    uint8_t hash[COMMAND_HASH_LEN];
    uint64_t expires;
    struct store_user user;
};

/* Statements of the discussion's files (comments.c), prepared on first use
 * and kept for the connection's life: preparing costs more than running
 * one of them, and a comment's apply runs six. */
#define STORE_CACHED_STMTS 64

struct store {
    sqlite3 *db;
    struct session_slot *sessions; /* SESSION_CACHE_SLOTS */
    char *path;
    sqlite3_stmt *stmt[S_COUNT];
    struct { const char *sql; sqlite3_stmt *s; } cached[STORE_CACHED_STMTS];
    uint64_t applied;
    uint64_t clock;         /* the log clock (store.h) */
    bool in_tx;             /* applied entries wait for store_commit */
    uint64_t committed;   /* applied index as of the last commit */
    uint64_t committed_clock;
    unsigned wal_pages;     /* frames in the WAL after the last commit (wal_hook) */
    bool migrated;          /* store_open gave an older database its page checksums */
    /* Readers (reader.c: searches on worker threads) hold it for reading
     * while they use the files; store_restore for writing while it
     * replaces them, and counts the replacements (a reader reopens). */
    pthread_rwlock_t files;
    uint64_t generation;
    char errmsg[512];
};

static void set_err(char *err, size_t cap, const char *fmt, ...)
{
    if (!err || !cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

static int classify(int sqlite_rc);

/* STORE_ECORRUPT when what failed met a damaged page, else STORE_EIO. */
static int fail_db(struct store *st, const char *what)
{
    int corrupt = st->db && classify(sqlite3_extended_errcode(st->db)) == STORE_ECORRUPT;
    snprintf(st->errmsg, sizeof st->errmsg, "%s: %s%s (database %s)", what,
             st->db ? sqlite3_errmsg(st->db) : "not open", corrupt ? ": a damaged page" : "", st->path);
    return corrupt ? STORE_ECORRUPT : STORE_EIO;
}

static void session_cache_clear(struct store *st)
{
    for (size_t i = 0; i < SESSION_CACHE_SLOTS; i++)
        st->sessions[i].used = false;
}

/* Commands that change neither a session nor a user row: the cache survives
 * them. Any other (sign-up, login, logout, about, password, one unknown
 * here) empties it. */
static bool session_cache_keeps(enum command_type t)
{
    switch (t) {
    case CMD_KV_PUT: case CMD_KV_DELETE: case CMD_MEMBER_ADDR:
    case CMD_LINK_POST: case CMD_LINK_POST_TEXT: case CMD_LINK_EDIT: case CMD_LINK_DELETE:
    case CMD_LIKE: case CMD_UNLIKE:
    case CMD_COMMENT_POST: case CMD_COMMENT_EDIT: case CMD_COMMENT_DELETE:
    case CMD_COMMENT_LIKE: case CMD_COMMENT_UNLIKE:
        return true;
    default:
        return false;
    }
}

/* What an SQLite result code means here: an I/O error (or a damaged file)
 * is fatal, a full disk or a busy lock is worth another try later. */
static int classify(int sqlite_rc)
{
    if (sqlite_rc == SQLITE_IOERR_DATA) /* a page checksum did not match (cksum_vfs.c) */
        return STORE_ECORRUPT;
    switch (sqlite_rc & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return STORE_ECORRUPT;
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return STORE_OK;
    case SQLITE_FULL:
        return STORE_EFULL;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return STORE_EAGAIN;
    case SQLITE_NOMEM:
        return STORE_ENOMEM;
    default:
        return STORE_EIO;
    }
}

/* Called by SQLite after each commit with the frames now in the WAL. Having
 * a hook of our own also turns SQLite's automatic checkpoints off (they are
 * its default WAL hook, whose result nobody checks): see store.h. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)db;
    (void)name;
    ((struct store *)arg)->wal_pages = frames > 0 ? (unsigned)frames : 0;
    return SQLITE_OK;
}

static void close_db(struct store *st)
{
    for (int i = 0; i < S_COUNT; i++) {
        sqlite3_finalize(st->stmt[i]);
        st->stmt[i] = NULL;
    }
    for (int i = 0; i < STORE_CACHED_STMTS && st->cached[i].sql; i++) {
        sqlite3_finalize(st->cached[i].s);
        st->cached[i].sql = NULL;
        st->cached[i].s = NULL;
    }
    if (st->db)
        sqlite3_close(st->db);
    st->db = NULL;
}

/* sqlite3_open_v2 through the checksum VFS; cksum_new: a file with no page
 * 1 yet will have the checksums' reserved bytes (cksum_vfs.h). */
static int open_conn(const char *path, int flags, int cksum_new, sqlite3 **db)
{
    char uri[4200 * 3];
    if (cksum_vfs_uri(path, cksum_new, uri, sizeof uri) != 0) {
        *db = NULL;
        return SQLITE_CANTOPEN;
    }
    return sqlite3_open_v2(uri, db, flags | SQLITE_OPEN_URI, cksum_vfs());
}

/* Whether the database file at path has the checksums' reserved bytes
 * (byte 20 of its header; SQLite never changes it after creation). */
static int has_cksum(const char *path)
{
    unsigned char h[21];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = pread(fd, h, sizeof h, 0);
    close(fd);
    return n == (ssize_t)sizeof h && h[20] == 8;
}

/* Runs PRAGMA quick_check on db: every page of every table and index is
 * read (so its checksum checked) and the b-trees' structure verified.
 * STORE_OK, or STORE_ECORRUPT / STORE_EIO with err saying what it found. */
/* The newest schema this build knows: the highest `to` of the schema steps
 * (comments 2, search 3, flags 4, moderation 5, search kept by apply 6);
 * store_schema_step refuses a step above it, so a new step cannot forget it. */
#define STORE_SCHEMA_MAX 6

/* A database written by a newer linkraft (a rolling upgrade rolled back,
 * a backup of a newer cluster): its tables mean what this build does not
 * know, so it is refused, not read and not "repaired" (docs/operations.md). */
static bool newer_schema(struct store *st)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(st->db, "SELECT v FROM meta WHERE k = 'schema'", -1, &q, NULL) != SQLITE_OK)
        return false; /* a new database (no meta table yet), or damage that the checks below name */
    int64_t v = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
    sqlite3_finalize(q);
    if (v <= STORE_SCHEMA_MAX)
        return false;
    snprintf(st->errmsg, sizeof st->errmsg, "the database %s has schema version %lld; this linkraft knows up to "
             "version %d: run the newer linkraft that wrote it", st->path, (long long)v, STORE_SCHEMA_MAX);
    return true;
}

static int check_db(sqlite3 *db, const char *path, char *err, size_t errcap)
{
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &q, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(q);
    int out = STORE_OK;
    if (rc == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(q, 0);
        if (!t || strcmp(t, "ok") != 0) {
            set_err(err, errcap, "the database %s is damaged: PRAGMA quick_check says: %s", path, t ? t : "?");
            out = STORE_ECORRUPT;
        }
    } else {
        int code = sqlite3_extended_errcode(db);
        out = classify(code);
        if (out == STORE_OK || out == STORE_EAGAIN)
            out = STORE_EIO;
        set_err(err, errcap, "the database %s %s: %s", path,
                out == STORE_ECORRUPT ? "is damaged (checking it failed)" : "cannot be checked", sqlite3_errmsg(db));
    }
    sqlite3_finalize(q);
    return out;
}

static int fsync_parent_dir(const char *path);

/* A database written before page checksums existed (no reserved bytes in
 * its pages: byte 20 of its header is 0) would be read unchecked for ever:
 * SQLite fixes the reserved bytes when a file is created. It is copied
 * instead, by VACUUM INTO, into a new file that has them (asked for on the
 * source, which VACUUM carries over, and through the checksum VFS, which
 * fills them in), and the copy replaces it by a rename: a crash at any
 * point leaves either the old database or the new one, never a mix. The
 * old WAL is checkpointed into the old file first (so the copy holds every
 * committed transaction) and removed, durably, before the rename, so it
 * is never replayed over the new file. The old file's pages cannot be
 * verified (they never had checksums); its structure is (quick_check). */
static int migrate_db(struct store *st)
{
    char tmp[4200], side[4200], uri[4200 * 3];
    snprintf(tmp, sizeof tmp, "%.120s.migrate", st->path);
    unlink(tmp);
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    int rc = open_conn(st->path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, 0, &db);
    if (rc != SQLITE_OK) {
        snprintf(st->errmsg, sizeof st->errmsg, "cannot open the older database %.120s (one without page checksums) "
                 "to migrate it: %.120s", st->path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return STORE_EIO;
    }
    sqlite3_busy_timeout(db, 5000);
    sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    int out = check_db(db, st->path, st->errmsg, sizeof st->errmsg);
    if (out)
        goto done;
    out = STORE_EIO;
    const char *what = "checkpointing it";
    int reserve = 8;
    sqlite3_file_control(db, "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve); /* taken up by VACUUM */
    if ((rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL)) != SQLITE_OK)
        goto sqlite_failed;
    what = "copying it";
    if (cksum_vfs_uri(tmp, 1, uri, sizeof uri) != 0) {
        snprintf(st->errmsg, sizeof st->errmsg, "migrating the older database: path too long: %.400s", tmp);
        goto done;
    }
    if ((rc = sqlite3_prepare_v2(db, "VACUUM INTO ?1", -1, &q, NULL)) != SQLITE_OK)
        goto sqlite_failed;
    sqlite3_bind_text(q, 1, uri, -1, SQLITE_STATIC);
    if ((rc = sqlite3_step(q)) != SQLITE_DONE)
        goto sqlite_failed;
    sqlite3_finalize(q);
    q = NULL;
    sqlite3_close(db);
    db = NULL;
    if (!has_cksum(tmp)) {
        snprintf(st->errmsg, sizeof st->errmsg, "migrating the older database %.120s: its copy %.120s did not get room for "
                 "page checksums", st->path, tmp);
        goto done;
    }
    int fd = open(tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fdatasync(fd) != 0) {
        snprintf(st->errmsg, sizeof st->errmsg, "migrating the older database %.120s: cannot make %.120s durable: %.120s",
                 st->path, tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        goto done;
    }
    close(fd);
    for (int i = 0; i < 2; i++) {
        snprintf(side, sizeof side, "%.120s%.120s", st->path, i ? "-shm" : "-wal");
        if (unlink(side) != 0 && errno != ENOENT) {
            snprintf(st->errmsg, sizeof st->errmsg, "migrating the older database: cannot remove %.120s: %.120s", side,
                     strerror(errno));
            goto done;
        }
    }
    if (fsync_parent_dir(st->path) != 0 || rename(tmp, st->path) != 0 || fsync_parent_dir(st->path) != 0) {
        snprintf(st->errmsg, sizeof st->errmsg, "migrating the older database: cannot put %.120s in place of %.120s: %.120s",
                 tmp, st->path, strerror(errno));
        goto done;
    }
    st->migrated = true;
    return STORE_OK;
sqlite_failed:
    out = classify(rc) == STORE_ECORRUPT ? STORE_ECORRUPT : classify(rc) == STORE_EFULL ? STORE_EFULL : STORE_EIO;
    snprintf(st->errmsg, sizeof st->errmsg, "migrating the older database %.120s (one without page checksums) to one "
             "with them failed %.120s: %.120s", st->path, what, sqlite3_errmsg(db));
done:
    sqlite3_finalize(q);
    sqlite3_close(db);
    unlink(tmp);
    return out;
}

static int open_db(struct store *st)
{
    /* A new database gets the reserved bytes its page checksums live in. */
    struct stat sb;
    bool fresh = stat(st->path, &sb) != 0 || sb.st_size == 0;
    if (!fresh && !has_cksum(st->path)) {
        int mrc = migrate_db(st);
        if (mrc)
            return mrc;
    }
    if (open_conn(st->path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, fresh, &st->db) !=
        SQLITE_OK)
        return fail_db(st, "cannot open the database");
    if (fresh && cksum_vfs_reserve(st->db) != SQLITE_OK)
        return fail_db(st, "cannot reserve room for page checksums in the database");
    sqlite3_busy_timeout(st->db, 5000);
    if (newer_schema(st))
        return STORE_EINVAL; /* before anything below writes to it */
    sqlite3_wal_hook(st->db, wal_hook, st);
    /* Closing the last connection would checkpoint and ignore a failed
     * fsync; the WAL is kept instead and replayed at the next open. */
    sqlite3_db_config(st->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    st->wal_pages = 0;
    session_cache_clear(st);
    char *msg = NULL;
    if (sqlite3_exec(st->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(st->db, schema_sql, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = classify(sqlite3_extended_errcode(st->db));
        /* A damaged page of the schema itself (sqlite_master spans several
         * pages since schema 3) fails the schema's load as a plain I/O
         * error: the checksum VFS knows better. */
        if (rc == STORE_EIO && (sqlite3_extended_errcode(st->db) & 0xff) == SQLITE_IOERR && cksum_vfs_damage_seen())
            rc = STORE_ECORRUPT;
        if (rc == STORE_ECORRUPT)
            snprintf(st->errmsg, sizeof st->errmsg, "the database %s is damaged (a page checksum or its "
                     "structure does not check: %s)", st->path, msg ? msg : "?");
        else
            snprintf(st->errmsg, sizeof st->errmsg, "cannot set up the database %s: %s", st->path, msg ? msg : "?");
        sqlite3_free(msg);
        return rc == STORE_ECORRUPT ? rc : STORE_EIO;
    }
    /* Nothing damaged is served, applied on, or copied into a snapshot. */
    int crc = check_db(st->db, st->path, st->errmsg, sizeof st->errmsg);
    if (crc)
        return crc;
    if (store_comments_migrate(st->db, st->errmsg, sizeof st->errmsg) ||
        store_search_migrate(st->db, st->errmsg, sizeof st->errmsg) ||
        store_flags_migrate(st->db, st->errmsg, sizeof st->errmsg) ||
        store_moderation_migrate(st->db, st->errmsg, sizeof st->errmsg) ||
        store_search_migrate_v6(st->db, st->errmsg, sizeof st->errmsg))
        return STORE_EIO;
    for (int i = 0; i < S_COUNT; i++)
        if (sqlite3_prepare_v3(st->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st->stmt[i], NULL) != SQLITE_OK)
            return fail_db(st, "cannot prepare a statement");
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(st->db, "SELECT v FROM meta WHERE k = 'applied'", -1, &q, NULL) != SQLITE_OK)
        return fail_db(st, "cannot read the applied index");
    st->applied = sqlite3_step(q) == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(q, 0) : 0;
    sqlite3_finalize(q);
    if (sqlite3_prepare_v2(st->db, "SELECT v FROM meta WHERE k = 'clock'", -1, &q, NULL) != SQLITE_OK)
        return fail_db(st, "cannot read the log clock");
    st->clock = sqlite3_step(q) == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(q, 0) : 0;
    sqlite3_finalize(q);
    st->in_tx = false;
    st->committed = st->applied;
    st->committed_clock = st->clock;
    return STORE_OK;
}

int store_open(const char *path, struct store **out, char *err, size_t errcap)
{
    struct store *st = calloc(1, sizeof *st);
    if (!st || !(st->path = strdup(path)) || !(st->sessions = calloc(SESSION_CACHE_SLOTS, sizeof *st->sessions))) {
        if (st)
            free(st->path);
        free(st);
        set_err(err, errcap, "out of memory");
        return STORE_ENOMEM;
    }
    /* Writers first: a stream of searches never keeps a restore waiting. */
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&st->files, &ra);
    pthread_rwlockattr_destroy(&ra);
    /* A copy left by a restore that crashed before its rename is never
     * current (the snapshot it came from is still on disk). */
    char leftover[4200];
    snprintf(leftover, sizeof leftover, "%s.restore", path);
    if (unlink(leftover) != 0 && errno != ENOENT) {
        set_err(err, errcap, "cannot remove the leftover %s: %s", leftover, strerror(errno));
        store_close(st);
        return STORE_EIO;
    }
    int rc = open_db(st);
    if (rc) {
        set_err(err, errcap, "%s", st->errmsg);
        store_close(st);
        return rc;
    }
    *out = st;
    return STORE_OK;
}

void store_close(struct store *st)
{
    if (!st)
        return;
    if (st->db)
        store_commit(st); /* if it fails, the log still has what it held */
    close_db(st);
    pthread_rwlock_destroy(&st->files);
    free(st->sessions);
    free(st->path);
    free(st);
}

const char *store_errmsg(const struct store *st) { return st->errmsg; }
uint64_t store_applied(const struct store *st) { return st->applied; }
uint64_t store_committed(const struct store *st) { return st->committed; }
unsigned store_wal_pages(const struct store *st) { return st->wal_pages; }
bool store_damage_seen(void) { return cksum_vfs_damage_seen() != 0; }
bool store_was_migrated(const struct store *st) { return st->migrated; }

struct sqlite3 *store_db(struct store *st) { return st->db; }
const char *store_path(const struct store *st) { return st->path; }
void store_files_read_lock(struct store *st) { pthread_rwlock_rdlock(&st->files); }
void store_files_unlock(struct store *st) { pthread_rwlock_unlock(&st->files); }
uint64_t store_files_generation(const struct store *st) { return st->generation; }

sqlite3_stmt *store_cached_stmt(struct store *st, const char *sql)
{
    int i = 0;
    for (; i < STORE_CACHED_STMTS && st->cached[i].sql; i++)
        if (st->cached[i].sql == sql)
            return st->cached[i].s;
    if (i == STORE_CACHED_STMTS) { /* more distinct statements than the code has: a bug */
        snprintf(st->errmsg, sizeof st->errmsg, "store: more than %d cached statements", STORE_CACHED_STMTS);
        return NULL;
    }
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK) {
        sqlite3_finalize(s);
        return NULL;
    }
    st->cached[i].sql = sql;
    st->cached[i].s = s;
    return s;
}

static int step_done(struct store *st, sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? STORE_OK : STORE_EIO;
}

static void bind_str(sqlite3_stmt *s, int i, struct command_str v)
{
    sqlite3_bind_blob(s, i, v.p ? v.p : "", v.len, SQLITE_STATIC);
}

/* Text columns must be bound as text: SQLite never finds a BLOB equal to a
 * TEXT value. */
static void bind_text(sqlite3_stmt *s, int i, struct command_str v)
{
    sqlite3_bind_text(s, i, v.p ? v.p : "", v.len, SQLITE_STATIC);
}

double store_hot_score(int64_t likes, uint64_t created_ms)
{
    return log10((double)(likes > 1 ? likes : 1)) + ((double)(created_ms / 1000) - 1134028003.0) / 45000.0;
}

static void copy_col(char *dst, size_t cap, sqlite3_stmt *s, int col)
{
    const unsigned char *t = sqlite3_column_text(s, col);
    snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

static void read_user(sqlite3_stmt *s, struct store_user *u)
{
    memset(u, 0, sizeof *u);
    u->id = sqlite3_column_int64(s, 0);
    copy_col(u->name, sizeof u->name, s, 1);
    copy_col(u->lname, sizeof u->lname, s, 2);
    copy_col(u->pwhash, sizeof u->pwhash, s, 3);
    u->created_ms = (uint64_t)sqlite3_column_int64(s, 4);
}

static void read_link(sqlite3_stmt *s, struct store_link *l)
{
    l->id = sqlite3_column_int64(s, 0);
    copy_col(l->title, sizeof l->title, s, 1);
    copy_col(l->url, sizeof l->url, s, 2);
    copy_col(l->author, sizeof l->author, s, 3);
    l->created_ms = (uint64_t)sqlite3_column_int64(s, 4);
    l->likes = sqlite3_column_int64(s, 5);
    l->hot = sqlite3_column_double(s, 6);
    l->comments = sqlite3_column_int64(s, 7);
    l->edited_ms = (uint64_t)sqlite3_column_int64(s, 8);
    l->has_text = (uint8_t)sqlite3_column_int(s, 9);
}

/* Steps a query expected to give at most one row: 1 and read(row) if it
 * does, 0 if not, STORE_EIO on failure. Resets s. */
static int step_one(sqlite3_stmt *s, void (*read)(sqlite3_stmt *, void *), void *out)
{
    int rc = sqlite3_step(s);
    int found = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : STORE_EIO;
    if (found == 1 && read)
        read(s, out);
    sqlite3_reset(s);
    return found;
}

void store_read_link(sqlite3_stmt *s, struct store_link *l) { read_link(s, l); }
static void read_user_v(sqlite3_stmt *s, void *out) { read_user(s, out); }
static void read_link_v(sqlite3_stmt *s, void *out) { read_link(s, out); }
static void read_id_v(sqlite3_stmt *s, void *out) { *(int64_t *)out = sqlite3_column_int64(s, 0); }

struct session_row { struct store_user *user; uint64_t expires; };
static void read_session_v(sqlite3_stmt *s, void *out)
{
    struct session_row *r = out;
    read_user(s, r->user);
    r->expires = (uint64_t)sqlite3_column_int64(s, 5);
}

/* Marks slot the one of its pair used last. */
static void session_touch(struct store *st, struct session_slot *slot)
{
    struct session_slot *pair = st->sessions + ((size_t)(slot - st->sessions) & ~(size_t)1);
    pair[0].recent = pair[1].recent = false;
    slot->recent = true;
}

/* The user of the session whose token hashes to hash, live at now_ms:
 * 1 (u filled), 0 (none), STORE_EIO. From the cache when it has it. */
static int session_lookup(struct store *st, const void *hash, size_t len, uint64_t now_ms, struct store_user *u)
{
    struct session_slot *slot = NULL;
    if (len == COMMAND_HASH_LEN) {
        uint32_t h;
        memcpy(&h, hash, sizeof h); /* a SHA-256: any of its bytes is as good as a hash */
        struct session_slot *pair = &st->sessions[(h % (SESSION_CACHE_SLOTS / 2)) * 2];
        for (int i = 0; i < 2; i++)
            if (pair[i].used && memcmp(pair[i].hash, hash, len) == 0)
                slot = &pair[i];
        /* expires > now_ms compared as the query compares them (SQLite's
         * integers are signed). */
        if (slot && (sqlite3_int64)slot->expires > (sqlite3_int64)now_ms) {
            session_touch(st, slot);
            *u = slot->user;
            return 1;
        }
        if (!slot) /* the one not used last */
            slot = !pair[0].used ? &pair[0] : !pair[1].used ? &pair[1] : pair[0].recent ? &pair[1] : &pair[0];
    }
    sqlite3_stmt *s = st->stmt[S_SESSION_USER];
    sqlite3_bind_blob(s, 1, len ? hash : "", (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)now_ms);
    struct session_row row = { u, 0 };
    int found = step_one(s, read_session_v, &row);
    if (found == 1 && slot) {
        slot->used = true;
        memcpy(slot->hash, hash, len);
        slot->expires = row.expires;
        slot->user = *u;
        session_touch(st, slot);
    } else if (slot && slot->used && memcmp(slot->hash, hash, len) == 0) {
        slot->used = false; /* this session, expired */
    }
    return found;
}

/* The user of the command's session, live at the command's (log) time. */
static int session_user(struct store *st, const struct command *c, struct store_user *u)
{
    return session_lookup(st, c->session.p, c->session.len, c->time_ms, u);
}

static int signup(struct store *st, const struct command *c, struct store_result *res)
{
    if (!c->name.len || !c->lname.len || !c->pwhash.len) {
        res->status = CMD_ERR_MALFORMED;
        return STORE_OK;
    }
    sqlite3_stmt *s = st->stmt[S_USER_BY_LNAME];
    bind_text(s, 1, c->lname);
    struct store_user u;
    int found = step_one(s, read_user_v, &u);
    if (found < 0)
        return STORE_EIO;
    if (found) {
        res->status = CMD_ERR_CONFLICT;
        res->id = u.id;
        return STORE_OK;
    }
    s = st->stmt[S_USER_INSERT];
    bind_text(s, 1, c->name);
    bind_text(s, 2, c->lname);
    bind_text(s, 3, c->pwhash);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)c->time_ms);
    if (step_done(st, s))
        return STORE_EIO;
    res->id = sqlite3_last_insert_rowid(st->db);
    snprintf(res->text, sizeof res->text, "%.*s", (int)c->name.len, c->name.p);
    s = st->stmt[S_SESSION_PUT];
    bind_str(s, 1, c->session);
    sqlite3_bind_int64(s, 2, res->id);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)(c->time_ms + COMMAND_SESSION_TTL_MS));
    return step_done(st, s);
}

static int session_create(struct store *st, const struct command *c, struct store_result *res)
{
    sqlite3_stmt *s = st->stmt[S_USER_BY_LNAME];
    bind_text(s, 1, c->lname);
    struct store_user u;
    int found = step_one(s, read_user_v, &u);
    if (found <= 0) {
        res->status = CMD_ERR_NOT_FOUND;
        return found < 0 ? STORE_EIO : STORE_OK;
    }
    s = st->stmt[S_SESSION_PUT];
    bind_str(s, 1, c->session);
    sqlite3_bind_int64(s, 2, u.id);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)(c->time_ms + COMMAND_SESSION_TTL_MS));
    res->id = u.id;
    snprintf(res->text, sizeof res->text, "%s", u.name);
    return step_done(st, s);
}

static int link_post(struct store *st, const struct command *c, struct store_result *res)
{
    if (!c->title.len || !c->url.len || !c->url_norm.len) {
        res->status = CMD_ERR_MALFORMED;
        return STORE_OK;
    }
    struct store_user u;
    int found = session_user(st, c, &u);
    if (found <= 0) {
        res->status = CMD_ERR_DENIED;
        return found < 0 ? STORE_EIO : STORE_OK;
    }
    sqlite3_stmt *s = st->stmt[S_LINK_BY_URL];
    bind_text(s, 1, c->url_norm);
    int64_t existing;
    found = step_one(s, read_id_v, &existing);
    if (found < 0)
        return STORE_EIO;
    if (found) {
        res->status = CMD_ERR_CONFLICT;
        res->id = existing;
        return STORE_OK;
    }
    s = st->stmt[S_LINK_INSERT];
    sqlite3_bind_int64(s, 1, u.id);
    bind_text(s, 2, c->title);
    bind_text(s, 3, c->url);
    bind_text(s, 4, c->url_norm);
    sqlite3_bind_int64(s, 5, (sqlite3_int64)c->time_ms);
    sqlite3_bind_double(s, 6, store_hot_score(0, c->time_ms));
    char domain[STORE_DOMAIN_CAP], rdomain[STORE_DOMAIN_CAP];
    store_link_domain(c->url_norm.p, c->url_norm.len, domain, rdomain, sizeof domain);
    sqlite3_bind_text(s, 7, domain, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 8, rdomain, -1, SQLITE_STATIC);
    if (step_done(st, s))
        return STORE_EIO;
    res->id = sqlite3_last_insert_rowid(st->db);
    if (store_search_index_link(st, res->id, c->title, (struct command_str){ 0 }, domain))
        return STORE_EIO;
    snprintf(res->text, sizeof res->text, "%s", u.name);
    return STORE_OK;
}

struct likes_row { int64_t likes; uint64_t created; };
static void read_likes_v(sqlite3_stmt *s, void *out)
{
    struct likes_row *r = out;
    r->likes = sqlite3_column_int64(s, 0);
    r->created = (uint64_t)sqlite3_column_int64(s, 1);
}

/* LIKE / UNLIKE: both idempotent (a second like, or an unlike of nothing,
 * changes nothing and reports the current count). The hot score is
 * recomputed with the count. */
static int like(struct store *st, const struct command *c, struct store_result *res)
{
    int on = c->type == CMD_LIKE;
    struct store_user u;
    int found = session_user(st, c, &u);
    if (found <= 0) {
        res->status = CMD_ERR_DENIED;
        return found < 0 ? STORE_EIO : STORE_OK;
    }
    sqlite3_stmt *s = st->stmt[S_LINK_LIKES];
    sqlite3_bind_int64(s, 1, c->link_id);
    struct likes_row row;
    found = step_one(s, read_likes_v, &row);
    if (found <= 0) {
        res->status = CMD_ERR_NOT_FOUND;
        return found < 0 ? STORE_EIO : STORE_OK;
    }
    s = st->stmt[on ? S_LIKE_INSERT : S_LIKE_DELETE];
    sqlite3_bind_int64(s, 1, c->link_id);
    sqlite3_bind_int64(s, 2, u.id);
    if (on)
        sqlite3_bind_int64(s, 3, (sqlite3_int64)c->time_ms);
    if (step_done(st, s))
        return STORE_EIO;
    if (sqlite3_changes(st->db)) {
        row.likes += on ? 1 : -1;
        s = st->stmt[S_LINK_SET_LIKES];
        sqlite3_bind_int64(s, 1, c->link_id);
        sqlite3_bind_int64(s, 2, row.likes);
        sqlite3_bind_double(s, 3, store_hot_score(row.likes, row.created));
        if (step_done(st, s))
            return STORE_EIO;
    }
    res->id = c->link_id;
    res->count = row.likes;
    res->flag = (uint8_t)on;
    return STORE_OK;
}

/* Executes one decoded command; fills res. STORE_EIO only on SQLite failure. */
static int execute(struct store *st, const struct command *c, struct store_result *res)
{
    sqlite3_stmt *s;
    switch (c->type) {
    case CMD_SIGNUP:
        return signup(st, c, res);
    case CMD_SESSION_CREATE:
        return session_create(st, c, res);
    case CMD_SESSION_DELETE:
        s = st->stmt[S_SESSION_DELETE];
        bind_str(s, 1, c->session);
        return step_done(st, s);
    case CMD_LINK_POST:
        return link_post(st, c, res);
    case CMD_LIKE:
    case CMD_UNLIKE:
        return like(st, c, res);
    case CMD_LINK_POST_TEXT:
    case CMD_LINK_EDIT:
    case CMD_LINK_DELETE:
        return store_posts_execute(st, c, res);
    case CMD_ABOUT_SET:
    case CMD_PASSWORD_SET:
        return store_users_execute(st, c, res);
    case CMD_FLAG:
    case CMD_UNFLAG:
    case CMD_COMMENT_FLAG:
    case CMD_COMMENT_UNFLAG:
        return store_flags_execute(st, c, res);
    case CMD_MODERATOR_ADD:
    case CMD_MODERATOR_REMOVE:
    case CMD_MOD_DELETE_LINK:
    case CMD_MOD_DELETE_COMMENT:
    case CMD_BAN:
    case CMD_UNBAN:
        return store_moderation_execute(st, c, res);
    case CMD_COMMENT_POST:
    case CMD_COMMENT_EDIT:
    case CMD_COMMENT_DELETE:
    case CMD_COMMENT_LIKE:
    case CMD_COMMENT_UNLIKE:
        return store_comments_execute(st, c, res);
    case CMD_KV_PUT:
        s = st->stmt[S_KV_PUT];
        bind_str(s, 1, c->key);
        bind_str(s, 2, c->value);
        return step_done(st, s);
    case CMD_MEMBER_ADDR:
        s = st->stmt[S_MEMBER_PUT];
        bind_str(s, 1, c->key);
        bind_str(s, 2, c->value);
        return step_done(st, s);
    case CMD_KV_DELETE:
        s = st->stmt[S_KV_DELETE];
        bind_str(s, 1, c->key);
        if (step_done(st, s))
            return STORE_EIO;
        if (sqlite3_changes(st->db) == 0)
            res->status = CMD_ERR_NOT_FOUND;
        return STORE_OK;
    default:
        res->status = CMD_ERR_MALFORMED;
        return STORE_OK;
    }
}

/* Returns 1 and fills res if (scope, key) already has a live result. */
static int idem_lookup(struct store *st, const struct command *c, struct store_result *res)
{
    sqlite3_stmt *s = st->stmt[S_IDEM_GET];
    bind_str(s, 1, c->scope);
    bind_str(s, 2, c->idem_key);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)c->time_ms);
    int found = 0;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        found = 1;
        res->status = sqlite3_column_int(s, 0);
        res->id = sqlite3_column_int64(s, 1);
        res->count = sqlite3_column_int64(s, 2);
        res->flag = (uint8_t)sqlite3_column_int(s, 3);
        res->replayed = 1;
        const unsigned char *t = sqlite3_column_text(s, 4);
        snprintf(res->text, sizeof res->text, "%s", t ? (const char *)t : "");
    } else if (rc != SQLITE_DONE) {
        found = -1;
    }
    sqlite3_reset(s);
    return found;
}

static int idem_record(struct store *st, const struct command *c, const struct store_result *res)
{
    sqlite3_stmt *s = st->stmt[S_IDEM_PUT];
    bind_str(s, 1, c->scope);
    bind_str(s, 2, c->idem_key);
    sqlite3_bind_int(s, 3, res->status);
    sqlite3_bind_int64(s, 4, res->id);
    sqlite3_bind_int64(s, 5, res->count);
    sqlite3_bind_int(s, 6, res->flag);
    sqlite3_bind_text(s, 7, res->text, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 8, (sqlite3_int64)(c->time_ms + IDEM_TTL_MS));
    return step_done(st, s);
}

static int apply_one(struct store *st, const struct store_entry *e, struct store_result *res)
{
    if (!e->command)
        return STORE_OK;
    struct command c;
    if (command_decode(&c, e->data, e->len) != 0) {
        res->status = CMD_ERR_MALFORMED;
        return STORE_OK;
    }
    /* The log clock never steps back (store.h). */
    if (c.time_ms < st->clock)
        c.time_ms = st->clock;
    st->clock = c.time_ms;
    if (c.idem_key.len) {
        int found = idem_lookup(st, &c, res);
        if (found < 0)
            return STORE_EIO;
        if (found)
            return STORE_OK;
    }
    res->time_ms = c.time_ms;
    /* A banned user's writes, and new content over its user's rate, are
     * refused here, at apply, so every replica decides alike; a rate refusal
     * is not remembered under the key. */
    int limited = store_ban_check(st, &c, res);
    if (!limited)
        limited = store_rate_check(st, &c, res);
    if (limited < 0)
        return STORE_EIO;
    if (limited)
        return STORE_OK;
    int rc = execute(st, &c, res);
    if (!session_cache_keeps(c.type))
        session_cache_clear(st);
    if (rc || store_rate_note(st, &c, res))
        return STORE_EIO;
    if (c.idem_key.len && res->status != CMD_ERR_RATE_LIMITED && idem_record(st, &c, res))
        return STORE_EIO;
    return STORE_OK;
}

/* Drops everything applied since the last commit. */
static void rollback_tx(struct store *st)
{
    session_cache_clear(st); /* it may hold what the transaction wrote */
    if (st->in_tx)
        step_done(st, st->stmt[S_ROLLBACK]);
    st->in_tx = false;
    st->applied = st->committed;
    st->clock = st->committed_clock;
}

/* A statement of the open transaction failed: say what, roll back (keeping
 * the message), and tell a full disk from the rest. */
static int fail_tx(struct store *st, const char *what)
{
    int full = sqlite3_errcode(st->db) == SQLITE_FULL;
    fail_db(st, what);
    char keep[sizeof st->errmsg];
    memcpy(keep, st->errmsg, sizeof keep);
    rollback_tx(st);
    memcpy(st->errmsg, keep, sizeof keep);
    return full ? STORE_EFULL : STORE_EIO;
}

int store_commit(struct store *st)
{
    if (!st->in_tx)
        return STORE_OK;
    if (step_done(st, st->stmt[S_COMMIT]))
        return fail_tx(st, "cannot commit applied entries");
    st->in_tx = false;
    st->committed = st->applied;
    st->committed_clock = st->clock;
    return STORE_OK;
}

int store_apply(struct store *st, const struct store_entry *entries, size_t n, struct store_result *results)
{
    if (n == 0)
        return STORE_OK;
    struct store_result scratch;
    uint64_t last = st->applied;
    uint64_t clock_before = st->clock;
    if (!st->in_tx) {
        if (step_done(st, st->stmt[S_BEGIN]))
            return fail_db(st, "cannot begin a transaction");
        st->in_tx = true;
    }
    for (size_t i = 0; i < n; i++) {
        struct store_result *res = results ? &results[i] : &scratch;
        memset(res, 0, sizeof *res);
        if (entries[i].index <= last)
            continue; /* already applied before a restart */
        if (apply_one(st, &entries[i], res))
            goto fail;
        last = entries[i].index;
    }
    /* Expired keys and sessions are dropped by log time. Lookups also check
     * expiry against the command's log time, which is never below this
     * batch's clock, so when this runs (batch boundaries differ per node)
     * changes no result. */
    if (st->clock != clock_before) {
        sqlite3_bind_int64(st->stmt[S_IDEM_EXPIRE], 1, (sqlite3_int64)st->clock);
        sqlite3_bind_int64(st->stmt[S_SESSION_EXPIRE], 1, (sqlite3_int64)st->clock);
        sqlite3_bind_int64(st->stmt[S_SET_CLOCK], 1, (sqlite3_int64)st->clock);
        if (step_done(st, st->stmt[S_IDEM_EXPIRE]) || step_done(st, st->stmt[S_SESSION_EXPIRE]))
            goto fail;
        if (sqlite3_changes(st->db))
            session_cache_clear(st); /* sessions went */
        if (step_done(st, st->stmt[S_SET_CLOCK]))
            goto fail;
    }
    sqlite3_bind_int64(st->stmt[S_SET_APPLIED], 1, (sqlite3_int64)last);
    if (step_done(st, st->stmt[S_SET_APPLIED]))
        goto fail;
    st->applied = last;
    return STORE_OK;
fail:
    return fail_tx(st, "cannot apply committed entries");
}

int store_members(struct store *st, void (*each)(void *arg, const char *id, const char *addrs), void *arg)
{
    sqlite3_stmt *s = st->stmt[S_MEMBER_LIST];
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        char id[32], addrs[600];
        const char *pid = sqlite3_column_blob(s, 0), *paddrs = sqlite3_column_blob(s, 1);
        snprintf(id, sizeof id, "%.*s", sqlite3_column_bytes(s, 0), pid ? pid : "");
        snprintf(addrs, sizeof addrs, "%.*s", sqlite3_column_bytes(s, 1), paddrs ? paddrs : "");
        each(arg, id, addrs);
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? STORE_OK : fail_db(st, "cannot list the members' addresses");
}

/* ---- Site queries ------------------------------------------------------------ */

int store_fail_query(struct store *st, const char *what) { return fail_db(st, what); }

static int query_fail(struct store *st, int rc, const char *what)
{
    return rc < 0 ? fail_db(st, what) : rc;
}

int store_user_by_name(struct store *st, const char *name, size_t len, struct store_user *out)
{
    char lname[STORE_NAME_CAP];
    if (len >= sizeof lname)
        return 0; /* no name that long can exist */
    for (size_t i = 0; i < len; i++)
        lname[i] = (char)tolower((unsigned char)name[i]);
    sqlite3_stmt *s = st->stmt[S_USER_BY_LNAME];
    sqlite3_bind_text(s, 1, lname, (int)len, SQLITE_STATIC);
    return query_fail(st, step_one(s, read_user_v, out), "cannot look up a user");
}

int store_user_counts(struct store *st, int64_t user_id, int64_t *links, int64_t *likes_given)
{
    sqlite3_stmt *s = st->stmt[S_USER_COUNTS];
    sqlite3_bind_int64(s, 1, user_id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *links = sqlite3_column_int64(s, 0);
        *likes_given = sqlite3_column_int64(s, 1);
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? STORE_OK : fail_db(st, "cannot count a user's links and likes");
}

int store_session_user(struct store *st, const uint8_t *hash, uint64_t now_ms, struct store_user *out)
{
    return query_fail(st, session_lookup(st, hash, COMMAND_HASH_LEN, now_ms, out), "cannot look up a session");
}

int store_link_get(struct store *st, int64_t id, struct store_link *out)
{
    sqlite3_stmt *s = st->stmt[S_LINK_GET];
    sqlite3_bind_int64(s, 1, id);
    return query_fail(st, step_one(s, read_link_v, out), "cannot read a link");
}

int store_link_by_url(struct store *st, const char *url_norm, size_t len, int64_t *id)
{
    sqlite3_stmt *s = st->stmt[S_LINK_BY_URL];
    sqlite3_bind_text(s, 1, url_norm, (int)len, SQLITE_STATIC);
    return query_fail(st, step_one(s, read_id_v, id), "cannot look up a URL");
}

static int link_page(struct store *st, sqlite3_stmt *s, unsigned limit, unsigned offset,
                     struct store_link *out, size_t *n)
{
    sqlite3_bind_int64(s, 1, limit);
    sqlite3_bind_int64(s, 2, offset);
    *n = 0;
    int rc = SQLITE_DONE;
    while (*n < limit && (rc = sqlite3_step(s)) == SQLITE_ROW)
        read_link(s, &out[(*n)++]);
    if (*n == limit)
        rc = SQLITE_DONE;
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? STORE_OK : fail_db(st, "cannot list links");
}

int store_links(struct store *st, enum store_sort sort, unsigned limit, unsigned offset,
                struct store_link *out, size_t *n)
{
    int which = sort == STORE_SORT_NEW ? S_LINKS_NEW : sort == STORE_SORT_TOP ? S_LINKS_TOP : S_LINKS_HOT;
    return link_page(st, st->stmt[which], limit, offset, out, n);
}

int store_links_by_user(struct store *st, int64_t user_id, unsigned limit, unsigned offset,
                        struct store_link *out, size_t *n)
{
    sqlite3_stmt *s = st->stmt[S_LINKS_USER];
    sqlite3_bind_int64(s, 3, user_id);
    return link_page(st, s, limit, offset, out, n);
}

int store_liked(struct store *st, int64_t user_id, const int64_t *ids, size_t n, uint8_t *liked)
{
    sqlite3_stmt *s = st->stmt[S_LIKED];
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_int64(s, 1, ids[i]);
        sqlite3_bind_int64(s, 2, user_id);
        int rc = step_one(s, NULL, NULL);
        if (rc < 0)
            return fail_db(st, "cannot read likes");
        liked[i] = (uint8_t)rc;
    }
    return STORE_OK;
}

int store_counts(struct store *st, int64_t *users, int64_t *links)
{
    sqlite3_stmt *s = st->stmt[S_COUNTS];
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *users = sqlite3_column_int64(s, 0);
        *links = sqlite3_column_int64(s, 1);
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? STORE_OK : fail_db(st, "cannot count users and links");
}

int store_kv_get(struct store *st, const char *key, size_t key_len, char **value, size_t *value_len)
{
    sqlite3_stmt *s = st->stmt[S_KV_GET];
    sqlite3_bind_blob(s, 1, key, (int)key_len, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    int found = 0;
    if (rc == SQLITE_ROW) {
        int n = sqlite3_column_bytes(s, 0);
        const void *p = sqlite3_column_blob(s, 0);
        *value = malloc((size_t)n + 1);
        if (!*value) {
            found = STORE_ENOMEM;
        } else {
            if (n)
                memcpy(*value, p, (size_t)n);
            (*value)[n] = 0;
            *value_len = (size_t)n;
            found = 1;
        }
    } else if (rc != SQLITE_DONE) {
        found = fail_db(st, "cannot read a key");
    }
    sqlite3_reset(s);
    return found;
}

/* A fresh copy is tens or hundreds of megabytes in the page cache; one
 * fdatasync would queue all of it on the disk at once, and the Raft log's
 * own fdatasyncs (every write waits on those) would queue behind it. Writing
 * it back a few megabytes at a time, waiting for each, lets them in between;
 * the fdatasync after it has little left to do. (Only a hint: errors are
 * left for that fdatasync to report.) */
static void write_back_gently(int fd)
{
#ifdef SYNC_FILE_RANGE_WRITE
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return;
    const off_t step = 4 << 20;
    for (off_t off = 0; off < sb.st_size; off += step)
        if (sync_file_range(fd, off, step, SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                               SYNC_FILE_RANGE_WAIT_AFTER) != 0)
            return;
#else
    (void)fd;
#endif
}

/* The connection checkpoints run on, kept from one to the next: opening it
 * and reading the schema again every time was a third of a checkpoint's CPU
 * (a checkpoint every ~0.5 s on each node under writes). One node per
 * process (tests: several, in turn), so one slot, under a lock since
 * checkpoints run on worker threads. It is opened again when the path or
 * the file behind it changes (a restore renames another file over it), and
 * dropped after any failure, so that a retry starts afresh as before. */
static pthread_mutex_t ckpt_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    sqlite3 *db;
    char *path;
    dev_t dev;
    ino_t ino;
} ckpt;

static void ckpt_drop(void)
{
    sqlite3_close(ckpt.db);
    free(ckpt.path);
    ckpt.db = NULL;
    ckpt.path = NULL;
}

/* The kept connection to db_path, opened if it is not that file's. */
static int ckpt_conn(const char *db_path, sqlite3 **out)
{
    struct stat sb;
    bool same = stat(db_path, &sb) == 0 && ckpt.db && strcmp(ckpt.path, db_path) == 0 &&
                ckpt.dev == sb.st_dev && ckpt.ino == sb.st_ino;
    if (same) {
        *out = ckpt.db;
        return SQLITE_OK;
    }
    ckpt_drop();
    int rc = open_conn(db_path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, 0, &ckpt.db);
    if (rc == SQLITE_OK) {
        sqlite3_db_config(ckpt.db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
        /* A connection that has read nothing has not opened the WAL yet,
         * and a checkpoint on it would do nothing. */
        rc = sqlite3_exec(ckpt.db, "SELECT 1 FROM sqlite_master LIMIT 1", NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK && (stat(db_path, &sb) != 0 || !(ckpt.path = strdup(db_path))))
        rc = SQLITE_CANTOPEN;
    if (rc == SQLITE_OK) {
        ckpt.dev = sb.st_dev;
        ckpt.ino = sb.st_ino;
    }
    *out = ckpt.db;
    return rc;
}

int store_checkpoint(const char *db_path, bool truncate, char *err, size_t errcap)
{
    pthread_mutex_lock(&ckpt_lock);
    sqlite3 *db = NULL;
    int rc = ckpt_conn(db_path, &db);
    if (rc == SQLITE_OK)
        rc = sqlite3_wal_checkpoint_v2(db, NULL, truncate ? SQLITE_CHECKPOINT_TRUNCATE : SQLITE_CHECKPOINT_PASSIVE,
                                      NULL, NULL);
    int out = classify(rc);
    if (out)
        set_err(err, errcap, "checkpoint of %s: %s", db_path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    /* A truncating checkpoint comes at a clean stop: nothing to keep it for. */
    if (out || truncate)
        ckpt_drop();
    pthread_mutex_unlock(&ckpt_lock);
    return out;
}

int store_snapshot(const char *db_path, const char *out_path, uint64_t *index, char *err, size_t errcap)
{
    sqlite3 *db = NULL, *copy = NULL;
    sqlite3_stmt *s = NULL;
    int rc = STORE_EIO, src;
    unlink(out_path);
    if ((src = open_conn(db_path, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, 0, &db)) != SQLITE_OK) {
        set_err(err, errcap, "snapshot: cannot open %s: %s", db_path, sqlite3_errmsg(db));
        rc = classify(src);
        goto out;
    }
    sqlite3_busy_timeout(db, 5000);
    /* A page-for-page copy (the online backup API) in one step, so one read
     * transaction: a consistent state. VACUUM INTO would rebuild every table
     * and index, several times the CPU for the same content, on a machine
     * whose other cores serve the writes meanwhile. */
    char *msg = NULL;
    if ((src = open_conn(out_path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                         has_cksum(db_path), &copy)) != SQLITE_OK ||
        (src = sqlite3_exec(copy, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;", NULL, NULL, &msg)) !=
            SQLITE_OK) {
        set_err(err, errcap, "snapshot: cannot create %s: %s", out_path, msg ? msg : sqlite3_errmsg(copy));
        sqlite3_free(msg);
        rc = classify(src);
        goto out;
    }
    sqlite3_backup *bk = sqlite3_backup_init(copy, "main", db, "main");
    int brc = bk ? sqlite3_backup_step(bk, -1) : sqlite3_errcode(copy);
    if (bk) {
        int frc = sqlite3_backup_finish(bk);
        if (brc == SQLITE_DONE && frc != SQLITE_OK)
            brc = frc;
    }
    /* The copy says WAL like its source; a snapshot is one file. */
    if (brc != SQLITE_DONE ||
        (brc = sqlite3_exec(copy, "PRAGMA journal_mode=DELETE;", NULL, NULL, &msg)) != SQLITE_OK) {
        /* The error may be the source's (a read failed) or the copy's. */
        int which = sqlite3_errcode(db) != SQLITE_OK ? sqlite3_extended_errcode(db) : brc;
        set_err(err, errcap, "snapshot: copying %s to %s failed: %s (%s)", db_path, out_path,
                msg ? msg : sqlite3_errmsg(copy), sqlite3_errstr(which));
        sqlite3_free(msg);
        rc = classify(which);
        goto out;
    }
    if ((src = sqlite3_close(copy)) != SQLITE_OK) {
        set_err(err, errcap, "snapshot: cannot close %s: %s", out_path, sqlite3_errstr(src));
        rc = classify(src);
        goto out;
    }
    copy = NULL;
    /* The copy records the index of exactly the state it holds. */
    /* The copy is checked before it can be shipped: its pages were read
     * through their checksums, its structure is verified here. */
    if ((src = open_conn(out_path, SQLITE_OPEN_READONLY, 0, &copy)) != SQLITE_OK) {
        set_err(err, errcap, "snapshot: cannot open the copy %s: %s", out_path, sqlite3_errstr(src));
        rc = classify(src);
        goto out;
    }
    if ((rc = check_db(copy, out_path, err, errcap)) != STORE_OK) {
        unlink(out_path);
        goto out;
    }
    rc = STORE_EIO;
    if ((src = sqlite3_prepare_v2(copy, "SELECT v FROM meta WHERE k = 'applied'", -1, &s, NULL)) != SQLITE_OK ||
        (src = sqlite3_step(s)) != SQLITE_ROW) {
        set_err(err, errcap, "snapshot: cannot read the applied index of %s: %s", out_path, sqlite3_errstr(src));
        rc = classify(src == SQLITE_DONE ? SQLITE_CORRUPT : src);
        goto out;
    }
    *index = (uint64_t)sqlite3_column_int64(s, 0);
    /* The copy was written without syncs. A failure here is fatal, like
     * every failed fsync: after it the kernel may have thrown data away
     * (of this file or, for all we know, of others on the disk). */
    int fd = open(out_path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0)
        write_back_gently(fd);
    if (fd < 0 || fdatasync(fd) != 0) {
        int e = errno;
        set_err(err, errcap, "snapshot: cannot make %s durable: %s", out_path, strerror(e));
        if (fd >= 0)
            close(fd);
        unlink(out_path);
        rc = e == ENOSPC || e == EDQUOT ? STORE_EFULL : STORE_EIO;
        goto out;
    }
    close(fd);
    rc = STORE_OK;
out:
    sqlite3_finalize(s);
    sqlite3_close(copy);
    sqlite3_close(db);
    return rc;
}

/* Copies src to tmp and fsyncs it. */
static int copy_file(const char *src, const char *tmp, char *err, size_t errcap)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        set_err(err, errcap, "cannot open %s: %s", src, strerror(errno));
        return STORE_EIO;
    }
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) {
        set_err(err, errcap, "cannot create %s: %s", tmp, strerror(errno));
        close(in);
        return STORE_EIO;
    }
    char buf[1 << 16];
    ssize_t n;
    int rc = STORE_OK;
    while ((n = read(in, buf, sizeof buf)) > 0) {
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                set_err(err, errcap, "cannot write %s: %s", tmp, strerror(errno));
                rc = STORE_EIO;
                goto done;
            }
            off += w;
        }
    }
    if (n < 0) {
        set_err(err, errcap, "cannot read %s: %s", src, strerror(errno));
        rc = STORE_EIO;
    } else if (fsync(out) != 0) {
        set_err(err, errcap, "cannot fsync %s: %s", tmp, strerror(errno));
        rc = STORE_EIO;
    }
done:
    close(in);
    if (close(out) != 0 && rc == STORE_OK) {
        set_err(err, errcap, "cannot close %s: %s", tmp, strerror(errno));
        rc = STORE_EIO;
    }
    if (rc != STORE_OK)
        unlink(tmp);
    return rc;
}

/* fsyncs the directory holding path: 0, or -1 with errno set. */
static int fsync_parent_dir(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

int store_set_aside(const char *path, char *err, size_t errcap)
{
    char from[4200], to[4200];
    const char *sfx[][2] = { { "", ".damaged" }, { "-wal", ".damaged-wal" } };
    for (int i = 0; i < 2; i++) {
        snprintf(from, sizeof from, "%s%s", path, sfx[i][0]);
        snprintf(to, sizeof to, "%s%s", path, sfx[i][1]);
        if (rename(from, to) != 0 && errno != ENOENT) {
            set_err(err, errcap, "cannot move %s to %s: %s", from, to, strerror(errno));
            return STORE_EIO;
        }
    }
    snprintf(from, sizeof from, "%s-shm", path);
    if (unlink(from) != 0 && errno != ENOENT) {
        set_err(err, errcap, "cannot remove %s: %s", from, strerror(errno));
        return STORE_EIO;
    }
    if (fsync_parent_dir(path) != 0) {
        set_err(err, errcap, "cannot fsync the directory of %s: %s", path, strerror(errno));
        return STORE_EIO;
    }
    cksum_vfs_damage_forget(); /* what was read from it is gone with it */
    return STORE_OK;
}

static int replace_db(struct store *st, const char *tmp, char *err, size_t errcap);

int store_restore(struct store *st, const char *snapshot_path, char *err, size_t errcap)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.restore", st->path) >= (int)sizeof tmp) {
        set_err(err, errcap, "path too long: %s", st->path);
        return STORE_EINVAL;
    }
    /* Copy first: if that fails the current database stays as it is. */
    int rc = copy_file(snapshot_path, tmp, err, errcap);
    if (rc)
        return rc;
    /* No reader uses the files while they are replaced (reader.c); a
     * reader's query is bounded (STORE_SEARCH_BUDGET_MS), so this waits
     * that long at most. */
    pthread_rwlock_wrlock(&st->files);
    st->generation++;
    rc = replace_db(st, tmp, err, errcap);
    pthread_rwlock_unlock(&st->files);
    return rc;
}

/* store_restore's replacement of the files by the copy tmp, and reopening. */
static int replace_db(struct store *st, const char *tmp, char *err, size_t errcap)
{
    char side[4096];
    rollback_tx(st); /* the snapshot replaces it all */
    close_db(st);
    /* The old WAL belongs to the old database: it must not be replayed
     * into the new one. Its removal is made durable before the rename: a
     * durable rename with the delete lost would let SQLite replay the old
     * WAL over the new file after a power loss. */
    const char *sfx[] = { "-wal", "-shm" };
    for (int i = 0; i < 2; i++) {
        snprintf(side, sizeof side, "%s%s", st->path, sfx[i]);
        if (unlink(side) != 0 && errno != ENOENT) {
            set_err(err, errcap, "cannot remove %s: %s", side, strerror(errno));
            return STORE_EIO;
        }
    }
    if (fsync_parent_dir(st->path) != 0) {
        set_err(err, errcap, "cannot fsync the directory of %s: %s", st->path, strerror(errno));
        return STORE_EIO;
    }
    if (rename(tmp, st->path) != 0) {
        set_err(err, errcap, "cannot rename %s to %s: %s", tmp, st->path, strerror(errno));
        unlink(tmp);
        return STORE_EIO;
    }
    if (fsync_parent_dir(st->path) != 0) {
        set_err(err, errcap, "cannot fsync the directory of %s: %s", st->path, strerror(errno));
        return STORE_EIO;
    }
    int rc = open_db(st);
    if (rc)
        set_err(err, errcap, "%s", st->errmsg);
    return rc;
}

/* ---- Schema steps ------------------------------------------------------------------------ */

int store_schema_step(sqlite3 *db, int64_t to, const char *sql, const char *what, char *err, size_t errcap)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db, "SELECT v FROM meta WHERE k = 'schema'", -1, &q, NULL) != SQLITE_OK) {
        snprintf(err, errcap, "cannot read the schema version: %s", sqlite3_errmsg(db));
        return -1;
    }
    int64_t version = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
    sqlite3_finalize(q);
    if (to > STORE_SCHEMA_MAX) {
        snprintf(err, errcap, "schema step to version %lld (%s) is above STORE_SCHEMA_MAX (%d): raise it in "
                 "src/store/store.c", (long long)to, what, STORE_SCHEMA_MAX);
        return -1;
    }
    if (version >= to)
        return 0;
    char *msg = NULL;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errcap, "cannot add %s to the schema (version %" PRId64 " to %" PRId64 "): %s", what, version,
                 to, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}
