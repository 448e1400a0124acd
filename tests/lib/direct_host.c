/*
 * direct_host.c — the test host of direct_host.h.
 */
#include "direct_host.h"

#include <stdio.h>


static void dh_propose(void *ctx, const uint8_t *data, size_t len, site_write_cb cb, void *arg)
{
    struct direct_host *h = ctx;
    h->proposals++;
    if (h->fail_writes) {
        cb(arg, h->fail_writes, 0, NULL);
        return;
    }
    struct store_entry e = { .index = store_applied(h->store) + 1, .command = true, .data = data, .len = len };
    struct store_result res;
    if (store_apply(h->store, &e, 1, &res) != STORE_OK) {
        fprintf(stderr, "direct host: apply failed: %s\n", store_errmsg(h->store));
        cb(arg, SITE_ESTOPPING, 0, NULL);
        return;
    }
    cb(arg, SITE_OK, e.index, &res);
}

/* One node: everything committed is applied, so only an index beyond the
 * log (a client that saw a future) cannot be reached: it times out. */
static void dh_read(void *ctx, enum site_consistency consistency, uint64_t min_index, unsigned timeout_ms, site_read_cb cb, void *arg)
{
    struct direct_host *h = ctx;
    (void)timeout_ms;
    if (consistency == SITE_READ_SESSION && min_index > store_applied(h->store))
        cb(arg, SITE_ETIMEOUT);
    else
        cb(arg, SITE_OK);
}

static struct store *dh_store(void *ctx) { return ((struct direct_host *)ctx)->store; }
static uint64_t dh_id(void *ctx) { return ((struct direct_host *)ctx)->id; }
static uint64_t dh_applied(void *ctx) { return store_applied(((struct direct_host *)ctx)->store); }
static uint64_t dh_now(void *ctx) { return ((struct direct_host *)ctx)->now_ms; }
static bool dh_commit(void *ctx) { return store_commit(((struct direct_host *)ctx)->store) == STORE_OK; }

static void dh_cluster(void *ctx, struct buf *out)
{
    struct direct_host *h = ctx;
    unsigned long long a = store_applied(h->store), id = h->id;
    /* As a leader sees them: one follower cut off, one matching at 5. */
    buf_printf(out, "{\"leader\":%llu,\"term\":3,\"members\":[{\"id\":%llu,\"role\":\"leader\",\"commit\":%llu,"
                    "\"applied\":%llu,\"reachable\":true},{\"id\":%llu,\"role\":\"follower\",\"commit\":null,"
                    "\"applied\":null,\"reachable\":false},{\"id\":%llu,\"role\":\"follower\",\"commit\":null,"
                    "\"applied\":null,\"match\":5,\"reachable\":true}]}",
               id, id, a, a, id + 1, id + 2);
}

void direct_host_init(struct direct_host *d, struct site_host *h)
{
    *h = (struct site_host){ .ctx = d, .propose = dh_propose, .read = dh_read, .store = dh_store, .id = dh_id,
                             .applied = dh_applied, .commit_index = dh_applied, .now_ms = dh_now, .commit = dh_commit,
                             .cluster_json = dh_cluster };
}
