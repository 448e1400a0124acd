/*
 * site_host.c — the node as the site's host (include/site.h): each
 * function of struct site_host forwards to the node's own API (node.h), so
 * the site reaches Raft and the store without depending on src/node. The
 * site has its own status and consistency enums (site.h); they are
 * translated here, both ways.
 */
#include "node/internal.h"

#include <stdio.h>
#include <stdlib.h>

#include "site.h"

/* The site's outcome for a node's: the two enums say the same things, but
 * each layer keeps its own so that the site needs nothing from src/node. */
static enum site_status site_status_of(int node_status)
{
    switch (node_status) {
    case NODE_OK: return SITE_OK;
    case NODE_ENOTLEADER: return SITE_ENOTLEADER;
    case NODE_ELOST: return SITE_ELOST;
    case NODE_ETIMEOUT: return SITE_ETIMEOUT;
    case NODE_EDISKFULL: return SITE_EDISKFULL;
    case NODE_ESTOPPING: return SITE_ESTOPPING;
    case NODE_ETOOBIG: return SITE_ETOOBIG;
    case NODE_EREPAIRING: return SITE_EREPAIRING;
    }
    return SITE_ETIMEOUT; /* unknown outcome: the caller retries under its key */
}

static int node_status_of(enum site_status s)
{
    switch (s) {
    case SITE_OK: return NODE_OK;
    case SITE_ENOTLEADER: return NODE_ENOTLEADER;
    case SITE_ELOST: return NODE_ELOST;
    case SITE_ETIMEOUT: return NODE_ETIMEOUT;
    case SITE_EDISKFULL: return NODE_EDISKFULL;
    case SITE_ESTOPPING: return NODE_ESTOPPING;
    case SITE_ETOOBIG: return NODE_ETOOBIG;
    case SITE_EREPAIRING: return NODE_EREPAIRING;
    }
    return NODE_ETIMEOUT;
}

/* The site's callback and argument, carried through the node's call. */
struct host_call {
    union {
        site_write_cb write;
        site_read_cb read;
    } cb;
    void *arg;
};

static struct host_call *host_call_new(void *arg)
{
    struct host_call *c = malloc(sizeof *c);
    if (c)
        c->arg = arg;
    return c;
}

static void host_write_done(void *arg, int status, raft_index index, const struct store_result *res)
{
    struct host_call c = *(struct host_call *)arg;
    free(arg);
    c.cb.write(c.arg, site_status_of(status), index, res);
}

static void host_propose(void *ctx, const uint8_t *data, size_t len, site_write_cb cb, void *arg)
{
    struct host_call *c = host_call_new(arg);
    if (!c) {
        cb(arg, SITE_ETIMEOUT, 0, NULL); /* out of memory: not proposed; a retry under its key is safe */
        return;
    }
    c->cb.write = cb;
    node_propose(ctx, data, len, host_write_done, c);
}

static void host_read_done(void *arg, int status)
{
    struct host_call c = *(struct host_call *)arg;
    free(arg);
    c.cb.read(c.arg, site_status_of(status));
}

static void host_read(void *ctx, enum site_consistency consistency, uint64_t min_index, unsigned timeout_ms,
                      site_read_cb cb, void *arg)
{
    enum node_consistency nc = NODE_READ_SESSION;
    switch (consistency) {
    case SITE_READ_STALE: nc = NODE_READ_STALE; break;
    case SITE_READ_SESSION: nc = NODE_READ_SESSION; break;
    case SITE_READ_LINEARIZABLE: nc = NODE_READ_LINEARIZABLE; break;
    }
    struct host_call *c = host_call_new(arg);
    if (!c) {
        cb(arg, SITE_ETIMEOUT);
        return;
    }
    c->cb.read = cb;
    node_read(ctx, nc, min_index, timeout_ms, host_read_done, c);
}

static const char *host_status_text(enum site_status s) { return node_status_text(node_status_of(s)); }

static struct store *host_store(void *ctx) { return node_store(ctx); }
static uint64_t host_id(void *ctx) { return node_id(ctx); }
static uint64_t host_applied(void *ctx) { return node_applied(ctx); }
static uint64_t host_commit_index(void *ctx) { return raft_commit_index(((struct node *)ctx)->raft); }
static uint64_t host_now(void *ctx) { (void)ctx; return node_now_ms(); }
static void host_cluster_json(void *ctx, struct buf *out) { node_cluster_json(ctx, out); }
static bool host_commit(void *ctx) { return replica_sm_commit(((struct node *)ctx)->replica); }

int node_site_start(struct node *n, char *err, size_t errcap)
{
    struct site_host h = { .ctx = n, .propose = host_propose, .read = host_read, .store = host_store,
                           .id = host_id, .applied = host_applied, .commit_index = host_commit_index,
                           .now_ms = host_now, .commit = host_commit, .cluster_json = host_cluster_json,
                           .status_text = host_status_text };
    /* libuv's pool (4 threads by default, sized at its first use, which is
     * later) runs the log's writes and fsyncs, snapshot copies and
     * checkpoints, and the site's password hashes (at most 2) and searches
     * (at most 2, SITE_SEARCH_JOBS): with 4 threads those two could take
     * every one, and a log write would wait behind a search. */
    setenv("UV_THREADPOOL_SIZE", "8", 0);
    struct site_options o;
    site_options_default(&o);
    o.loop = &n->loop;
    o.rate_limits_off = n->o.rate_limits_off;
    o.cache_seconds = n->o.cache_seconds;
    char msg[512];
    if (site_create(&h, &o, &n->site, msg, sizeof msg)) {
        snprintf(err, errcap, "cannot start the site: %s", msg);
        return -1;
    }
    return 0;
}
