/*
 * site_host.c — the node as the site's host (include/site.h): each
 * function of struct site_host forwards to the node's own API (node.h), so
 * the site reaches Raft and the store without depending on src/node.
 */
#include "node/node_internal.h"

#include <stdio.h>

#include "site.h"

static void host_propose(void *ctx, const uint8_t *data, size_t len, site_write_cb cb, void *arg)
{
    node_propose(ctx, data, len, cb, arg); /* same signature as node_write_cb */
}

static void host_read(void *ctx, int consistency, uint64_t min_index, unsigned timeout_ms, site_read_cb cb, void *arg)
{
    node_read(ctx, (enum node_consistency)consistency, min_index, timeout_ms, cb, arg);
}

static struct store *host_store(void *ctx) { return node_store(ctx); }
static uint64_t host_id(void *ctx) { return node_id(ctx); }
static uint64_t host_applied(void *ctx) { return node_applied(ctx); }
static uint64_t host_commit(void *ctx) { return raft_commit_index(((struct node *)ctx)->raft); }
static uint64_t host_now(void *ctx) { (void)ctx; return node_now_ms(); }
static void host_cluster_json(void *ctx, struct buf *out) { node_cluster_json(ctx, out); }

int node_site_start(struct node *n, char *err, size_t errcap)
{
    struct site_host h = { .ctx = n, .propose = host_propose, .read = host_read, .store = host_store,
                           .id = host_id, .applied = host_applied, .commit_index = host_commit, .now_ms = host_now,
                           .cluster_json = host_cluster_json, .status_text = node_status_text };
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
