/*
 * site.h — the link-sharing website on top of the replicated state: the
 * HTML pages and the JSON API of SPEC §4 (sign-up, login sessions, links,
 * likes, rankings), served by every node from its own SQLite copy.
 *
 * The site never calls src/node: a node hands it a struct site_host, a few
 * function pointers that forward to node_propose, node_read and friends
 * (src/node/site_host.c; USES_site in the Makefile lets the site use src/http,
 * src/store and src/common only, and `make check-layers` holds it to that). Writes
 * become commands (include/command.h) proposed through the host and are
 * answered once applied here; reads wait for the consistency the client
 * asked for (X-Consistency, X-Min-Index, the lr_idx cookie) and then query
 * the local store.
 *
 * Secrets: a login's token is 256 random bits made here, sent to the client
 * once, and only its SHA-256 enters the log. Passwords are hashed with
 * argon2id (libsodium crypto_pwhash_str) on libuv's worker threads, never
 * on the loop.
 *
 * Threads: everything runs on the loop thread except the password hashing
 * and the full-text searches (each on a read-only connection of its own).
 */
#ifndef LINKRAFT_SITE_H
#define LINKRAFT_SITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"
#include "http.h"
#include "store.h"

/* What became of a write or a read barrier, in the site's own terms (the
 * host translates its own outcomes: src/node/site_host.c). */
enum site_status {
    SITE_OK = 0,
    SITE_ENOTLEADER = 1, /* no leader to take the write: retry */
    SITE_ELOST = 2,      /* overwritten by another leader: not applied */
    SITE_ETIMEOUT = 3,   /* no answer in time: outcome unknown, retry with the same key */
    SITE_EDISKFULL = 4,  /* the host's disk is full */
    SITE_ESTOPPING = 5,  /* the host is shutting down */
    SITE_ETOOBIG = 6,    /* too large to replicate */
    SITE_EREPAIRING = 7, /* the host's database is being repaired: ask another server */
};

/* Consistency of a read (SPEC §4, X-Consistency). */
enum site_consistency { SITE_READ_STALE = 0, SITE_READ_SESSION = 1, SITE_READ_LINEARIZABLE = 2 };

/* Outcome of a write: status is an enum site_status (SITE_OK = 0). On SITE_OK, index is the entry's index
 * and res its result (valid during the call only). */
typedef void (*site_write_cb)(void *arg, int status, uint64_t index, const struct store_result *res);
/* Outcome of a read barrier: an enum site_status; SITE_OK means the store may be read. */
typedef void (*site_read_cb)(void *arg, int status);

/* What the site needs from the node it runs on. Every callback is called
 * exactly once, on the loop thread, possibly before the call returns. */
struct site_host {
    void *ctx;
    /* node_propose: data is copied. */
    void (*propose)(void *ctx, const uint8_t *data, size_t len, site_write_cb cb, void *arg);
    /* node_read: stale at once, session once applied >= min_index,
     * linearizable after a read index from the leader. */
    void (*read)(void *ctx, enum site_consistency consistency, uint64_t min_index, unsigned timeout_ms, site_read_cb cb, void *arg);
    struct store *(*store)(void *ctx);
    uint64_t (*id)(void *ctx);
    uint64_t (*applied)(void *ctx);
    /* The highest index this node knows to be committed (>= applied). A
     * read asking for an index far beyond it is not kept waiting (SPEC §4
     * "Limits and bad input"). May be NULL: applied is used. */
    uint64_t (*commit_index)(void *ctx);
    uint64_t (*now_ms)(void *ctx);          /* wall clock, ms since the epoch */
    /* Commits what the store applied, now (replica_sm_commit): searches run
     * on worker threads, on read-only connections that see only what is
     * committed, and one that must show a newer index asks for it. False
     * if it could not (a full disk). May be NULL: such a search is then
     * answered 503. */
    bool (*commit)(void *ctx);
    /* Appends the cluster view, the JSON of GET /api/v1/cluster
     * ({"leader","term","members":[{"id","role","commit","applied","reachable"}]}),
     * for the /status page. May be NULL (the page then shows this node only). */
    void (*cluster_json)(void *ctx, struct buf *out);
    /* A short text for a status, for error messages. May be NULL. */
    const char *(*status_text)(enum site_status status);
};

struct site_options {
    uv_loop_t *loop;                /* where password hashing is queued */
    unsigned long long pwhash_opslimit; /* default 2 (OWASP: argon2id t=2) */
    size_t pwhash_memlimit;         /* default 19 MiB (OWASP: m=19456 KiB), p=1 */
    unsigned read_timeout_ms;       /* session/linearizable wait; default 3000 */
    /* Login throttling, local to this node: attempts (login and sign-up)
     * per client address per minute, and failed logins per account per
     * 15 minutes. Over either: 429 with Retry-After. */
    unsigned max_attempts_per_addr; /* default 30 */
    unsigned max_failures_per_user; /* default 10 */
    /* --rate-limits off: this node's proposals carry COMMAND_FLAG_NO_RATE_LIMIT,
     * so apply lets them past the per-user limits on new content (SPEC §5).
     * Every node of a cluster must be started alike: the leader's setting
     * decides each write. */
    bool rate_limits_off;
    /* --cache-seconds: how long a shared cache in front (nginx's proxy_cache:
     * docs/nginx-cache.conf) may keep a page answered to a visitor with no
     * session (Cache-Control: public, max-age=0, s-maxage=N); 0: every
     * answer is private, no-store. Default SITE_CACHE_SECONDS. */
    unsigned cache_seconds;
};
#define SITE_CACHE_SECONDS 5
void site_options_default(struct site_options *o);

struct site;

/* Creates the site. host is copied. Computes the dummy password hash used
 * to make unknown-user logins cost as much as real ones (one argon2id
 * hash: tens of milliseconds). Returns 0, or -1 with a message in err. */
int site_create(const struct site_host *host, const struct site_options *o, struct site **out,
                char *err, size_t errcap);
/* Frees the site. Requests still in flight (waiting on the host or a
 * password hash) must have completed: stop the HTTP server first and run the
 * loop until the host has called every callback. */
void site_destroy(struct site *s);

/* Handles x: the node calls it for whatever its own routes do not serve.
 * Every such path is the site's: pages, /static/, the API rows of SPEC §4
 * under /api/v1, and for anything else the site's 404 (an HTML page, or
 * JSON under /api/v1). Returns true when it took x; false (x untouched) is
 * reserved for paths a future site may leave to the node. */
bool site_handle(struct site *s, struct http_exchange *x);

/* ---- The transport seam -------------------------------------------------
 * site_handle is site_dispatch with http_respond_take (or, for a lent body,
 * http_respond_lent) as the responder. Tests drive site_dispatch directly.
 * respond takes ownership of body (malloc'd, may be NULL when len is 0);
 * or, when lent is not NULL, body is NULL and lent's bytes are only lent
 * (a cached page, shared by every response that sends it): the responder
 * calls lent->release(lent->arg) once, when it no longer needs them.
 * headers are "Name: value\r\n" lines valid during the call. req must stay
 * valid until respond is called. */
struct site_lent {
    const char *p;
    size_t len;
    void (*release)(void *arg);
    void *arg;
};
typedef void (*site_respond_fn)(void *rctx, int status, const char *headers, char *body, size_t len,
                                const struct site_lent *lent);
bool site_dispatch(struct site *s, const struct http_request *req, site_respond_fn respond, void *rctx);

/* Requests answered and in flight, for tests and /metrics. */
struct site_stats {
    uint64_t requests, in_flight, pwhash_jobs, throttled;
    uint64_t page_cache_hits;   /* list pages answered from the cache (pages.c) */
    uint64_t not_modified;      /* 304s: the client's If-None-Match named the answer */
};
void site_get_stats(const struct site *s, struct site_stats *out);

#endif
