/*
 * direct_host.h — a site_host (include/site.h) for unit tests: a one-node
 * "cluster" whose every proposal commits at once and is applied straight to
 * a real store. Its clock is the test's to move, and it can be told to
 * refuse writes with a site_status, as a node that lost its leader would.
 */
#ifndef LINKRAFT_TEST_DIRECT_HOST_H
#define LINKRAFT_TEST_DIRECT_HOST_H

#include <stdint.h>

#include "site.h"
#include "store.h"

struct direct_host {
    struct store *store;
    uint64_t now_ms;        /* what now_ms answers */
    int fail_writes;        /* a site_status for every proposal; 0: apply */
    uint64_t proposals;
    uint64_t id;            /* the node id shown (X-Served-By) */
};

/* Fills h with d's functions (cluster_json included). */
void direct_host_init(struct direct_host *d, struct site_host *h);

#endif
