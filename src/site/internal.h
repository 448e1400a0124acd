/*
 * site/internal.h — what the files of src/site share: the site object, one
 * request's state as it moves through its steps (read barrier, session
 * lookup, password hashing on a worker, proposal, response), and the helpers
 * for forms, cookies, escaping and responses.
 *
 * A request's life: site_dispatch routes it and checks what can be checked
 * at once (method, CSRF, consistency headers), then asks the host for a read
 * barrier; when the barrier passes, the session (if any) is looked up in the
 * local store and the route's step function runs. A write proposes a
 * command and answers from the write callback. Exactly one response per
 * request; the request state is freed right after it (site_reply).
 */
#ifndef LINKRAFT_SITE_INT_H
#define LINKRAFT_SITE_INT_H

#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "command.h"
#include "common/buf.h"
#include "common/json.h"
#include "site.h"
#include "site/validate.h"
#include "store.h"

#define SITE_TOKEN_LEN 32          /* bytes of a session token (256 bits) */
#define SITE_TOKEN_HEX (2 * SITE_TOKEN_LEN)
#define SITE_CSRF_HEX 32
#define SITE_PAGE_LINKS 30
#define SITE_MAX_LIMIT 100
#define SITE_IDEM_MAX HTTP_IDEM_MAX
#define SITE_MAX_OFFSET 100000      /* API offset */
#define SITE_MAX_PAGE 1000          /* ?p= of the pages (30 links each) */
/* How far past its own commit index a node lets a session read wait: a
 * follower learns of commits an append round trip after the leader, so a
 * client that wrote through the leader may be this far ahead of it. An
 * index beyond that was never written by this cluster (a forged header, or
 * a cookie from a cluster since rebuilt): waiting for it would only end in
 * a 503 after read_timeout_ms. */
#define SITE_INDEX_SLACK 10000

/* Counters of events per exact key in a time window (throttle.c): a hash
 * table with chaining, at most max_entries entries, an entry removed only
 * once its window has passed. */
struct site_throttle_entry;
struct site_throttle {
    struct site_throttle_entry **buckets;
    size_t n_buckets, n_entries, max_entries;
    uint64_t window_ms;
    unsigned limit;
    uint64_t next_sweep_ms;
    uint64_t refused;                  /* new keys refused: the table was full of live entries */
    uint8_t hash_key[crypto_shorthash_KEYBYTES];
};
#define SITE_THROTTLE_MAX_ENTRIES 65536

/* The first page of /, /new and /top as last rendered for a visitor who is
 * not logged in (such a page has no per-visitor part: no name, no CSRF
 * field, no liked marks). It is reused while the node's applied index is the
 * one it was rendered at (so it shows exactly the state a fresh render would)
 * and the clock is before until_ms, the first moment one of its "N minutes
 * ago" strings would read differently. Rendering costs SQLite, printf and
 * escaping for 30 links; a hit costs one copy of the bytes. */
/* Bytes a cache keeps and lends to every response that sends them (no
 * copy per request: a 500-comment page is 200 KB): freed when the last
 * holder, the cache or a response still being written, lets go. */
struct site_shared {
    unsigned refs;
    size_t len;
    char p[];
};
/* A copy of p (len bytes) with one reference; NULL if out of memory. */
struct site_shared *site_shared_new(const char *p, size_t len);
struct site_shared *site_shared_ref(struct site_shared *sh);
/* Drops a reference (NULL: nothing); the last one frees. */
void site_shared_unref(struct site_shared *sh);

/* A validator: W/"32 hex digits" and its NUL. */
#define SITE_ETAG_CAP 40
/* Fills out with the weak ETag of body (BLAKE2b-128 of its bytes: every node
 * that renders the same bytes gives the same one). Weak: the gzip and plain
 * forms of a page are the same representation to a validator. */
void site_etag(const char *body, size_t len, char out[SITE_ETAG_CAP]);

struct site_page_cache {
    bool valid;
    int64_t key;       /* which page: the sort of a list, the id of a link */
    uint64_t applied;
    uint64_t until_ms;
    uint64_t rendered_ms; /* its Last-Modified */
    char etag[SITE_ETAG_CAP]; /* its validator (site_etag of body) */
    struct site_shared *body;
    struct site_shared *gz; /* body gzip-compressed once, when cached (NULL: not) */
};
#define SITE_CACHED_SORTS 3
/* The /link/ID pages kept for visitors who are not logged in: a slot per
 * id modulo this, enough for the discussions being read at any one time. */
#define SITE_CACHED_LINKS 16

struct site {
    struct site_host host;
    struct site_page_cache page_cache[SITE_CACHED_SORTS]; /* by enum store_sort */
    struct site_page_cache link_cache[SITE_CACHED_LINKS]; /* by link id modulo */
    struct site_options o;
    char dummy_hash[crypto_pwhash_STRBYTES];
    /* Attempts (logins and sign-ups) per client address per minute, and
     * failed logins per (account, address) per 15 minutes: a guesser is
     * stopped without locking the account's owner out from elsewhere. */
    struct site_throttle by_addr, by_user_addr;
    struct site_stats stats;
    /* Password hashes in flight on libuv's pool, and those waiting: at most
     * SITE_PWHASH_JOBS run at once so that a burst of logins never takes
     * every worker from the node's log writes (fsync runs there too). */
    unsigned pw_active, pw_waiting;
    struct site_req *pw_head, *pw_tail;
    char *css_gz;      /* the stylesheet compressed, on first demand */
    size_t css_gz_len;
    struct site_searches *searches; /* searches on workers and their connections (search.c) */
};

#define SITE_PWHASH_JOBS 2
#define SITE_PWHASH_QUEUE 512
/* Searches at once on libuv's workers (each with a read-only connection of
 * its own: search.c), and searches waiting for one; past that, 503. */
#define SITE_SEARCH_JOBS 2
#define SITE_SEARCH_QUEUE 256

/* What a link post carries; the title and URL are shown again on an error. */
struct site_link_input {
    char title[COMMAND_MAX_TITLE_BYTES + 1];
    size_t title_len;
    char url_in[SITE_URL_MAX + 1];
    struct site_url url;
    size_t start, len;      /* the title as proposed: title + start, len bytes (trimmed) */
};

enum site_form { SITE_FORM_NONE, SITE_FORM_LOGIN, SITE_FORM_SIGNUP, SITE_FORM_SUBMIT };

/* One-time messages a page shows after a redirect (pages.c): the flow sets
 * the lr_flash cookie to the message's name, the next page shows it once
 * and clears the cookie. Only these fixed messages: the cookie is never
 * echoed. */
enum site_flash { SITE_FLASH_NONE, SITE_FLASH_SIGNUP, SITE_FLASH_LOGIN, SITE_FLASH_LOGOUT, SITE_FLASH_POSTED,
                  SITE_FLASH_DUPLICATE, SITE_FLASH_DELETED, SITE_FLASH_MOD_DELETED, SITE_FLASH_BANNED,
                  SITE_FLASH_UNBANNED, SITE_FLASH_FLAGGED, SITE_FLASH_UNFLAGGED, SITE_FLASH_COMMENT_FLAGGED,
                  SITE_FLASH_COUNT };

struct site_req;
typedef void (*site_step)(struct site_req *r);

struct site_req {
    struct site *s;
    const struct http_request *req;
    site_respond_fn respond;
    void *rctx;
    bool api;                       /* JSON errors (under /api/v1) */
    bool head_or_get;

    /* Consistency of the read barrier. */
    enum site_consistency consistency;
    uint64_t min_index;

    /* Authentication. */
    bool has_token, token_by_cookie, logged_in;
    bool session_rechecked;         /* an unknown token was looked up again after a linearizable barrier */
    int8_t moderator;               /* site_is_moderator's answer: 0 not asked yet, 1 yes, -1 no */
    uint8_t token[SITE_TOKEN_LEN], token_hash[COMMAND_HASH_LEN];
    struct store_user user;
    char csrf[SITE_CSRF_HEX + 1];   /* the token this client's forms carry */
    bool set_csrf_cookie;           /* a new random token: the cookie is sent if a form carries it */
    bool csrf_used;                 /* a form of this response carries r->csrf */

    /* Shared caches (site_reply, docs/nginx-cache.conf): whether this
     * route's answer to a visitor with no session may be kept by a shared
     * cache for --cache-seconds. Pages are, except per-node ones (/status);
     * of the API only the listings and link objects. Never when the
     * response sets a cookie or carries a CSRF token. */
    bool shareable;
    char etag[SITE_ETAG_CAP];       /* the body's validator when already known (a cached page's), else "" */
    uint64_t rendered_ms;           /* when a lent page was rendered (its Last-Modified); 0: now */

    /* Route arguments. */
    site_step step;                 /* runs after the barrier */
    bool step_started;              /* the barrier has passed */
    int64_t id;
    char name[SITE_NAME_MAX + 1];
    int sort;                       /* enum store_sort */
    unsigned limit, offset, page;

    /* Inputs of writes. */
    char username[SITE_NAME_MAX + 1];
    char password[SITE_PASSWORD_MAX + 1];
    size_t password_len;
    bool bad_password;              /* too long to be anyone's: the login fails */
    struct site_link_input *link_in; /* a link being posted (malloc'd: 7 KB only posts need) */
    char idem[SITE_IDEM_MAX + 1];
    size_t idem_len;
    char next[256];                 /* where a form redirects after success */
    bool like_on;
    int form;                       /* enum site_form: which form to show again on an error */
    const char *bad_field;          /* the form field an error is about ("username", "url"...) or NULL */
    int flash;                      /* enum site_flash: the message this page shows once */
    int64_t comment_id;             /* a comment route's comment; a reply's parent */
    char *text;                     /* a comment's text, checked (malloc'd; freed by site_reply) */
    size_t text_len;
    char new_password[SITE_PASSWORD_MAX + 1]; /* a password change's (zeroed by site_reply) */
    size_t new_password_len;

    /* Password hashing / verifying on a worker. */
    uv_work_t work;
    bool verifying;                 /* verify (login) rather than hash (sign-up) */
    bool user_known;
    char pwhash[STORE_PWHASH_CAP];  /* >= crypto_pwhash_STRBYTES */
    int work_rc;
    uint8_t new_token[SITE_TOKEN_LEN];
    struct site_req *pw_next;       /* waiting for a hashing slot */

    /* Response. */
    struct buf hdrs;                /* extra header lines: Set-Cookie, Allow, Retry-After */
    uint64_t write_index;           /* index of the write answered, or of the state a search read; 0: applied */
    char scope[SITE_NAME_MAX + 3];
    int ok_status;                  /* 200 or 201: what a login answers with */
    const char *gz;                 /* the body already compressed (the stylesheet's), or NULL */
    size_t gz_len;
    struct site_shared *lent, *lent_gz; /* a cached page to lend instead of a body (references held) */
    site_write_cb write_cb;         /* the route's write callback (site_propose) */
};

/* ---- site.c: life of a request ------------------------------------------- */

/* Sends the response with the common headers (X-Served-By, X-Raft-Index,
 * security headers, cookies) and frees r. Takes body (buf_take'n inside). */
void site_reply(struct site_req *r, int status, const char *ctype, const char *extra_headers, struct buf *body);
/* An error in the request's style: JSON {"error","message"} under /api/v1,
 * else an HTML page. */
void site_fail(struct site_req *r, int status, const char *code, const char *message);
/* 303 See Other to a local path. */
void site_redirect(struct site_req *r, const char *path);
/* Maps a host (node) status to an HTTP status and answers. */
void site_fail_host(struct site_req *r, int status);
/* 405 with an Allow header. */
void site_fail_method(struct site_req *r, const char *allow);
/* An HTML error page (pages.c). */
void site_page_error(struct site_req *r, int status, const char *message);
/* Whether a form's csrf field (len bytes) is this client's token. */
bool site_csrf_ok(struct site_req *r, const char *field, size_t len);
/* The idempotency scope of a user's writes: "u:" + lowercase name. */
struct command_str site_scope(struct site_req *r, const char *lname);

/* Encodes and proposes c; cb gets r back as arg. Answers with an error itself
 * if the command cannot be encoded. */
void site_propose(struct site_req *r, struct command *c, site_write_cb cb);
/* Records a write's index: X-Raft-Index and the lr_idx cookie. */
void site_wrote(struct site_req *r, uint64_t index);

/* Runs (on a worker) crypto_pwhash_str of r->password into r->pwhash, or
 * verifies r->password against r->pwhash (r->verifying); then done(r) on the
 * loop with r->work_rc 0 on success / match. */
void site_pwhash(struct site_req *r, site_step done);
/* Fills r->new_token with random bytes; out_hash gets its SHA-256. */
void site_new_token(struct site_req *r, uint8_t out_hash[COMMAND_HASH_LEN]);
/* Adds the session cookie for r->new_token (or clears it when clear). */
void site_session_cookie(struct site_req *r, bool clear);
/* Hex of n bytes; out has 2n+1 bytes. */
void site_hex(const uint8_t *in, size_t n, char *out);

/* Throttling (throttle.c). init: 0, or -1 out of memory. check: 0 if
 * allowed, else the seconds to wait (also when the table is full of live
 * keys and key is new); note=true counts this event. forget: drops key's
 * counter (a successful login clears its failures). */
int site_throttle_init(struct site_throttle *t, uint64_t window_ms, unsigned limit, size_t max_entries);
void site_throttle_free(struct site_throttle *t);
unsigned site_throttle_check(struct site_throttle *t, const char *key, uint64_t now_ms, bool note);
void site_throttle_forget(struct site_throttle *t, const char *key);
/* The client's address without the port ("1.2.3.4", "::1"): the TCP peer,
 * or what a trusted proxy said (http.h, struct http_trust). */
void site_client_addr(const struct http_request *req, char *out, size_t cap);
/* The client as throttling counts it: its IPv4 address, or the /64 prefix
 * of its IPv6 one ("2001:db8:1:2::/64"): one subscriber usually has a
 * whole /64 and could otherwise take a new address for every attempt. */
void site_throttle_addr(const struct http_request *req, char *out, size_t cap);

/* api.c: ?limit&offset of a JSON list into r->limit, r->offset (defaults 30,
 * 0); false after answering 400. */
bool site_list_params(struct site_req *r);

/* ---- form.c: request parsing ---------------------------------------------- */

/* Cookie value by name into out (NUL-terminated); false if absent or too long. */
bool site_cookie(const struct http_request *req, const char *name, char *out, size_t cap);
/* A field of an application/x-www-form-urlencoded string (a body or a
 * query), percent-decoded ('+' is a space). Returns the decoded length, -1
 * if absent, -2 if malformed or longer than cap - 1. */
long site_form_field(const char *data, size_t len, const char *name, char *out, size_t cap);
/* Parses a decimal in [min, max]; false otherwise. */
bool site_parse_uint(const char *s, size_t len, uint64_t min, uint64_t max, uint64_t *out);
/* The request body parsed as JSON into doc (json_free it after); false
 * after answering 400 bad_json with the parser's reason. */
struct json_doc;
bool site_json_body(struct site_req *r, struct json_doc *doc);
/* A path's id: a decimal in [1, 2^63) without leading zeros; false otherwise. */
bool site_parse_id(const char *s, size_t len, int64_t *id);
/* Routes a matched path: GET/HEAD to get, POST to post (either may be NULL);
 * any other method answers 405 naming the allowed ones (*answered = true).
 * Always returns true: the path was ours. */
bool site_route(struct site_req *r, site_step get, site_step post, bool *answered);

/* ---- gzip.c: compressed responses ----------------------------------------- */

/* Smallest body worth compressing: below it, gzip's 18 bytes of framing
 * and the Content-Encoding header cost more than they save. */
#define SITE_GZIP_MIN 512
/* Whether an Accept-Encoding value (len bytes) accepts gzip. */
bool site_accepts_gzip(const char *v, size_t len);
/* in compressed in gzip format: malloc'd (NUL after it), length in
 * *out_len; NULL if out of memory. */
char *site_gzip(const char *in, size_t len, size_t *out_len);

/* ---- html.c: escaping and time ------------------------------------------- */

void site_html_escape(struct buf *b, const char *s, size_t len);
/* A message (the API's lowercase fragments, "a title cannot be empty") as
 * a page shows it: escaped, capitalised, ending with a full stop. */
void site_html_sentence(struct buf *b, const char *msg);
void site_rfc3339(uint64_t ms, char out[32]);
void site_relative_time(uint64_t then_ms, uint64_t now_ms, char *out, size_t cap);
/* The first time (ms) after now_ms at which site_relative_time(then_ms, .)
 * may give a different string. */
uint64_t site_relative_time_next(uint64_t then_ms, uint64_t now_ms);

/* ---- api.c / pages.c: routes ---------------------------------------------- */

/* Each returns false if the path is not theirs; otherwise it has set up r
 * (step, arguments) or answered it (then *answered = true). */
bool site_api_route(struct site_req *r, const char *path, bool *answered);
bool site_pages_route(struct site_req *r, const char *path, bool *answered);

/* The write flows (api.c), shared by the API and the forms; r's inputs
 * (username, password, title, url_in, id, like_on, next) are filled. */
void site_signup_begin(struct site_req *r);
void site_login_begin(struct site_req *r);
void site_logout_begin(struct site_req *r);
void site_post_begin(struct site_req *r);
void site_like_begin(struct site_req *r);

/* The link object of SPEC §4. */
void site_link_json(struct buf *b, const struct store_link *l, const char *text);
/* Editing (r->link_in title, r->text; either may be absent) and deleting
 * link r->id: the author's own, edits within 2 hours (api.c). */
void site_link_edit_begin(struct site_req *r);
void site_link_delete_begin(struct site_req *r);

/* ---- comments.c: the comment flows (API and forms) ----------------------------- */

/* Routes /api/v1/links/ID/comments (r->id set) and /api/v1/comments/... */
bool site_comments_api_route(struct site_req *r, const char *p, bool *answered);
/* Checks raw text (len bytes) into r->text; false after answering 400. */
bool site_comment_text(struct site_req *r, const char *raw, size_t len);
/* The write flows: r->id = link and r->comment_id = parent (post), or
 * r->comment_id (edit, delete, like with r->like_on); r->text for post/edit. */
void site_comment_post_begin(struct site_req *r);
void site_comment_edit_begin(struct site_req *r);
void site_comment_delete_begin(struct site_req *r);
void site_comment_like_begin(struct site_req *r);
/* The comment object of SPEC §5. */
void site_comment_json(struct buf *b, const struct store_comment *c);
/* Where a page goes after acting on comment id of link: "/link/L#cID". */
void site_comment_path(char *out, size_t cap, int64_t link, int64_t id);

/* ---- thread.c: the discussion on pages -------------------------------------------- */

/* Appends the comment form and the thread of link to a /link/ID page, its
 * times relative to now; lowers *until_ms to the first moment one of them
 * would read differently (for the page cache). */
void site_thread_html(struct buf *b, struct site_req *r, const struct store_link *l, uint64_t now, uint64_t *until_ms);
/* Routes /link/ID/comment (r->id set) and /comment/ID/... pages. */
bool site_thread_route(struct site_req *r, const char *path, bool *answered);

/* ---- users.c: profiles and accounts ----------------------------------------------- */

/* Routes PATCH /api/v1/me, /api/v1/me/password and /api/v1/users/... */
bool site_users_api_route(struct site_req *r, const char *p, bool *answered);
/* Routes /settings... and /user/NAME/comments; false if not theirs. */
bool site_users_page_route(struct site_req *r, const char *path, bool *answered);
/* Karma, comment count and about, for the /user/NAME page. */
void site_user_profile_html(struct buf *b, struct site_req *r, const struct store_user *u);

/* Flags (flags.c): the API's /links/ID/flag and /comments/ID/flag, the
 * page's /link/ID/flag (false if not theirs), the step of the thread's
 * POST /comment/ID/flag (r->comment_id set), and the form on /link/ID. */
bool site_flag_api_route(struct site_req *r, const char *p, bool *answered);
bool site_flag_page_route(struct site_req *r, const char *path, bool *answered);
void site_comment_flag_post(struct site_req *r);
void site_flag_html(struct buf *b, struct site_req *r, const struct store_link *l);

/* Moderation (moderation.c). site_mod_delete: a moderator deleting another's
 * link (r->id) or comment (r->comment_id): proposes it with the reason and
 * returns true; false if the ordinary delete applies. site_write_banned: a
 * write refused because its user is banned, answered 403 (true). */
bool site_mod_delete(struct site_req *r, bool comment);
bool site_write_banned(struct site_req *r, int status, uint64_t index, const struct store_result *res);
bool site_moderation_api_route(struct site_req *r, const char *p, bool *answered);
/* The pages: /moderation, /user/NAME/ban (a moderator's ban or unban form). */
bool site_moderation_page_route(struct site_req *r, const char *path, bool *answered);
/* Whether the logged-in user is a moderator (and not banned); asked once per request. */
bool site_is_moderator(struct site_req *r);
/* GET /link/ID/delete (r->id) and /comment/ID/delete (r->comment_id): a
 * moderator's form to delete another's post with a reason. */
void site_mod_delete_form(struct site_req *r);
/* On /link/ID for a moderator, the delete form with its reason field; on
 * /user/NAME whether the user is banned or a moderator and, for a
 * moderator, the ban or unban form. */
void site_mod_link_html(struct buf *b, struct site_req *r, const struct store_link *l);
void site_mod_user_html(struct buf *b, struct site_req *r, const struct store_user *u);

/* 429 with Retry-After for new content over its user's rate (limits.c). */
void site_fail_rate_limited(struct site_req *r, int64_t seconds, bool comment);

/* ---- search.c, feed.c: finding things (SPEC §5) ------------------------------------ */

/* The searches' workers and connections: init 0 or -1 (out of memory). */
int site_search_init(struct site *s);
void site_search_free(struct site *s);
/* GET /api/v1/search?q=&limit&offset. */
bool site_search_api_route(struct site_req *r, bool *answered);
/* GET /api/v1/links?domain=...: false if the query has no domain. */
bool site_domain_api_route(struct site_req *r, bool *answered);
/* The pages /search, /from/DOMAIN and the feeds; false if not theirs. */
bool site_finding_route(struct site_req *r, const char *path, bool *answered);
/* /feed, /user/NAME/feed, /link/ID/feed; false if not theirs. */
bool site_feed_route(struct site_req *r, const char *path, bool *answered);

/* ---- pages.c, for thread.c --------------------------------------------------------- */

void site_page_begin(struct buf *b, struct site_req *r, const char *title);
void site_page_end(struct buf *b, struct site_req *r);
void site_page_send(struct site_req *r, int status, struct buf *b);
void site_csrf_field(struct buf *b, struct site_req *r);
/* Reads the lr_flash cookie into r->flash (pages only). */
void site_flash_read(struct site_req *r);
/* Sets the message the next page shows once (a redirect's target). */
void site_flash_set(struct site_req *r, enum site_flash f);
/* A list of links as on / (numbered from first; next: where a like returns). */
void site_link_list(struct buf *b, struct site_req *r, const struct store_link *links, size_t n, unsigned first,
                    const char *next);
/* A posted form's CSRF token and next field; false after answering 403. */
bool site_form_ok(struct site_req *r);

#endif
