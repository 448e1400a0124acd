/*
 * command.h — the state machine's commands: what a COMMAND entry's data
 * means, and its binary encoding.
 *
 * Every command carries, fixed by the node that proposed it:
 *   - time_ms: the proposer's clock, the only clock apply ever looks at;
 *   - an idempotency scope and key (both may be empty): a repeat of the same
 *     (scope, key) returns the first result and changes nothing.
 * Layout: u8 version (1, or 2 with flags) | u8 type | [u8 flags: version 2] | u64 time_ms | str scope | str idem_key |
 * fields of the type. Integers little endian; str = u16 length + bytes.
 * Decoding checks every length and rejects trailing bytes.
 *
 * The site's commands authenticate by session: LINK_POST, LIKE, UNLIKE and
 * SESSION_DELETE carry the hash of the client's session token, and apply
 * resolves it to a user, checking expiry against the command's time_ms. So a
 * post that reaches the log after its session was logged out is refused
 * identically on every replica (CMD_ERR_DENIED), whatever the proposer saw.
 * The raw token never enters the log: only its SHA-256 (COMMAND_HASH_LEN).
 */
#ifndef LINKRAFT_COMMAND_H
#define LINKRAFT_COMMAND_H

#include <stddef.h>
#include <stdint.h>

#define COMMAND_VERSION 1
/* Version 2 adds one byte of flags after the type; a command without flags
 * is still encoded as version 1, so entries already in logs read as before. */
#define COMMAND_VERSION_FLAGS 2
/* The proposer was started with --rate-limits off: apply skips the per-user
 * limits on new content (SPEC §5) for this command. Carried in the command so
 * that the decision is the log's, identical on every replica. */
#define COMMAND_FLAG_NO_RATE_LIMIT 0x01
#define COMMAND_FLAGS_KNOWN 0x01
#define COMMAND_MAX_STR 4096

enum command_type {
    CMD_KV_PUT = 1,     /* key, value */
    CMD_KV_DELETE = 2,  /* key */
    CMD_MEMBER_ADDR = 3,/* key = member id in decimal, value = "RAFT-ADDRESS HTTP-ADDRESS":
                           the addresses of a member being added, carried in the log
                           so that every node (and every later leader) can reach it */
    /* The site (fields in struct command; result in struct store_result): */
    CMD_SIGNUP = 10,         /* name, lname, pwhash, session: creates the user and
                                its first session. CONFLICT if lname is taken.
                                Result: id = user id, text = name */
    CMD_SESSION_CREATE = 11, /* lname, session: a login. NOT_FOUND if no such user.
                                Result: id = user id, text = name */
    CMD_SESSION_DELETE = 12, /* session: a logout; OK even if already gone */
    CMD_LINK_POST = 13,      /* session, title, url, url_norm. DENIED without a live
                                session; CONFLICT (id = existing link) if url_norm
                                was posted. Result: id = new link id */
    CMD_LIKE = 14,           /* session, link_id. Result: id, count = likes, flag = 1 */
    CMD_UNLIKE = 15,         /* session, link_id. Result: id, count = likes, flag = 0 */
    /* Comments (src/store/comments.c). The author is the session's user at
     * apply; the 2-hour edit window is measured on the log clock. */
    CMD_COMMENT_POST = 16,   /* session, text, link_id, comment_id = parent (0: top level).
                                NOT_FOUND if the link is gone; INVALID if the parent is
                                not a live comment of that link. Result: id = comment id */
    CMD_COMMENT_EDIT = 17,   /* session, text, comment_id. FORBIDDEN if not the author's
                                or older than COMMAND_EDIT_WINDOW_MS. Result: id */
    CMD_COMMENT_DELETE = 18, /* session, comment_id. FORBIDDEN if not the author's.
                                A comment with replies stays as a placeholder (deleted,
                                no author, no text); one without goes, and with it any
                                placeholder ancestors left without replies. Result: id */
    CMD_COMMENT_LIKE = 19,   /* session, comment_id. Result: id, count = likes, flag = 1 */
    CMD_COMMENT_UNLIKE = 20, /* session, comment_id. Result: id, count = likes, flag = 0 */
    /* Text posts and editing (src/store/posts.c). LINK_POST stays as it was,
     * so that entries already in logs decode as before. */
    CMD_LINK_POST_TEXT = 21, /* session, title, url, url_norm, text: url (and url_norm)
                                or text may be empty, not both. As LINK_POST otherwise */
    CMD_LINK_EDIT = 22,      /* session, title, text, link_id: an empty field is left as
                                it is. FORBIDDEN if not the author's or older than
                                COMMAND_EDIT_WINDOW_MS; NOT_FOUND if gone. Result: id */
    CMD_LINK_DELETE = 23,    /* session, link_id. FORBIDDEN if not the author's. The
                                link leaves every listing and its URL is free again */
    /* Accounts (src/store/users.c). */
    CMD_ABOUT_SET = 24,      /* session, text (may be empty): the user's "about" */
    CMD_PASSWORD_SET = 25,   /* session, pwhash: the new hash (the old password was
                                proven by the proposer); every other session of the
                                user ends */
    /* Flags (src/store/flags.c): one per user and link or comment, both
     * directions idempotent. NOT_FOUND if the link or comment is gone. */
    CMD_FLAG = 26,           /* session, link_id. Result: id, count = flags, flag = 1 */
    CMD_UNFLAG = 27,         /* session, link_id. Result: id, count = flags, flag = 0 */
    CMD_COMMENT_FLAG = 28,   /* session, comment_id. As CMD_FLAG */
    CMD_COMMENT_UNFLAG = 29, /* session, comment_id. As CMD_UNFLAG */
    /* Moderation (src/store/moderation.c). Granting is the admin plane's
     * (`linkraft moderator add|remove`, proven by the cluster secret), so
     * those two carry no session. Every other one needs the session of a
     * moderator (else FORBIDDEN) and is written to the public log. */
    CMD_MODERATOR_ADD = 30,  /* lname. NOT_FOUND if no such user. Result: id = user id */
    CMD_MODERATOR_REMOVE = 31, /* lname. As CMD_MODERATOR_ADD */
    CMD_MOD_DELETE_LINK = 32, /* session, text = reason, link_id: deletes any link */
    CMD_MOD_DELETE_COMMENT = 33, /* session, text = reason, comment_id: deletes any comment */
    CMD_BAN = 34,            /* session, lname, text = reason: the user's sessions end and
                                every later write of theirs is refused (CMD_ERR_BANNED) */
    CMD_UNBAN = 35,          /* session, lname, text = reason */
};

#define COMMAND_HASH_LEN 32          /* SHA-256 of a session token */
#define COMMAND_MAX_NAME 20          /* usernames: 3..20 of [A-Za-z0-9_-] */
#define COMMAND_MAX_TITLE_BYTES 800  /* 200 characters of UTF-8 */
#define COMMAND_MAX_URL 2048
#define COMMAND_MAX_PWHASH 255
#define COMMAND_MAX_TEXT_BYTES 40000 /* 10,000 characters of UTF-8 (comments, text posts) */
#define COMMAND_MAX_ABOUT_BYTES 8000 /* 2,000 characters of UTF-8 */
#define COMMAND_MAX_REASON_BYTES 2000 /* 500 characters of UTF-8: a moderator's reason */
/* Comments and text posts may be edited this long after they were posted (log time). */
#define COMMAND_EDIT_WINDOW_MS (2ull * 3600 * 1000)
/* Sessions live 30 days of log time from their SESSION_CREATE / SIGNUP. */
#define COMMAND_SESSION_TTL_MS (30ull * 24 * 3600 * 1000)

enum command_status {
    CMD_OK = 0,
    CMD_ERR_MALFORMED = 1,  /* the entry's data is not a valid command */
    CMD_ERR_NOT_FOUND = 2,
    CMD_ERR_CONFLICT = 3,   /* e.g. name taken, duplicate URL */
    CMD_ERR_DENIED = 4,     /* e.g. no live session */
    CMD_ERR_FORBIDDEN = 5,  /* a live session, but not allowed: not the author, too late to edit */
    CMD_ERR_INVALID = 6,    /* refers to something it may not: e.g. a parent comment of another link */
    CMD_ERR_RATE_LIMITED = 7, /* over the user's rate of new content (store_rate_*): result count =
                                 seconds until one more is allowed. Never remembered under an
                                 idempotency key: a retry after the wait may succeed */
    CMD_ERR_BANNED = 8,     /* the session's user is banned: no write of theirs is applied */
};

struct command_str {
    const char *p;      /* borrowed; not NUL-terminated */
    uint16_t len;
};

struct command {
    uint8_t type;
    uint8_t flags;                  /* COMMAND_FLAG_* (0: encoded as version 1) */
    uint64_t time_ms;
    struct command_str scope, idem_key;
    struct command_str key, value;  /* KV, MEMBER_ADDR */
    struct command_str name;        /* SIGNUP: as typed */
    struct command_str lname;       /* SIGNUP, SESSION_CREATE: canonical lowercase */
    struct command_str pwhash;      /* SIGNUP: crypto_pwhash_str output (argon2id) */
    struct command_str session;     /* site commands: SHA-256 of the session token */
    struct command_str title, url, url_norm; /* LINK_POST */
    int64_t link_id;                /* LIKE, UNLIKE, COMMENT_POST */
    int64_t comment_id;             /* COMMENT_*: the comment (COMMENT_POST: its parent, 0 for none) */
    struct command_str text;        /* COMMENT_POST, COMMENT_EDIT */
};

/* Bytes command_encode needs. */
size_t command_size(const struct command *c);
/* Encodes c into buf (cap bytes). Returns bytes written or -1 if a string is
 * too long or cap too small. */
long command_encode(const struct command *c, uint8_t *buf, size_t cap);
/* Decodes; the strings point into buf. Returns 0 or -1 on malformed data
 * (including a session hash that is not COMMAND_HASH_LEN bytes, or a field
 * over its COMMAND_MAX_* bound: every replica refuses the same commands). */
int command_decode(struct command *c, const uint8_t *buf, size_t len);

#endif
