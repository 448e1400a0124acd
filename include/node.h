/*
 * node.h — one linkraft replica: the Raft core driven by real time, its log
 * on disk (storage), its peers on the network (net), its state machine in
 * SQLite (store), and its HTTP face (http), all on one libuv loop.
 *
 * The loop does the cheap work: stepping messages and ticks into the core,
 * sending, applying committed entries to SQLite, answering HTTP. The slow
 * work runs on libuv's worker threads, one storage job at a time: the
 * persist step of the readies (append, hard state, one fdatasync — group
 * commit: everything that arrived during the previous fsync goes into the
 * next), and snapshots of the database. The replica driver
 * (src/replica/replica.h, docs/replica.md) decides all of that; node.c is
 * its host.
 *
 * Writes from the site go through node_propose and are answered only once
 * their entry is committed and applied here. Reads choose a consistency
 * level with node_read.
 */
#ifndef LINKRAFT_NODE_H
#define LINKRAFT_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.h"
#include "store.h"

struct node_options {
    const char *cluster_path;
    raft_id id;
    const char *data_dir;
    const char *secret_path;      /* NULL: peers are not authenticated */
    bool join;                    /* empty node waiting to be added */
    bool force_new_cluster;       /* DIR becomes a one-voter cluster first (backup.h) */
    unsigned tick_ms;             /* default 15 */
    unsigned election_ticks;      /* default 10 (election timeout 150-300 ms) */
    unsigned heartbeat_ticks;     /* default 2 */
    uint64_t snapshot_entries;    /* snapshot after this many applied entries; default 50000 */
    uint64_t trailing_entries;    /* log kept behind a snapshot; default 2000 */
    uint64_t segment_bytes;       /* start a new log segment past this size; 0: 64 MiB */
    unsigned write_timeout_ms;    /* a write not committed by then answers 503; default 5000 */
    const char *trust_proxy;      /* "CIDR,..." whose X-Forwarded-* count, besides the
                                   * hosts of the cluster file; NULL: those only */
    bool rate_limits_off;         /* --rate-limits off (site.h: set alike on every node) */
    unsigned cache_seconds;       /* --cache-seconds: s-maxage of anonymous pages (site.h); default 5 */
};
void node_options_default(struct node_options *o);

/* Runs the node until SIGTERM/SIGINT (graceful: leadership is handed over
 * first) or a fatal error. Returns the process exit code: 0 on a clean stop,
 * 1 on a runtime failure, 2 on bad configuration. */
int node_run(const struct node_options *o);

/* ---- For the HTTP layer above (api.c, the site) ------------------------- */

struct node;

enum node_status {
    NODE_OK = 0,
    NODE_ENOTLEADER = 1,  /* this node cannot propose: forward or retry */
    NODE_ELOST = 2,       /* the entry was overwritten by another leader: not applied */
    NODE_ETIMEOUT = 3,    /* no answer in time: outcome unknown, retry with the same key */
    NODE_EDISKFULL = 4,   /* this node's disk is full: writes refused until space returns */
    NODE_ESTOPPING = 5,   /* shutting down */
    NODE_ETOOBIG = 6,
    NODE_EREPAIRING = 7,  /* this node's database is being repaired: ask another node */
};
const char *node_status_text(int status);

/* Called once with the outcome. On NODE_OK, index is the entry's index (the
 * write is applied here) and res its result from the state machine. */
typedef void (*node_write_cb)(void *arg, int status, raft_index index, const struct store_result *res);
/* Proposes a command (include/command.h encoding). Copies data. */
void node_propose(struct node *n, const uint8_t *data, size_t len, node_write_cb cb, void *arg);

enum node_consistency { NODE_READ_STALE = 0, NODE_READ_SESSION = 1, NODE_READ_LINEARIZABLE = 2 };
/* Called once: NODE_OK when the local state may be read (applied >= the
 * index required), else an error (NODE_ETIMEOUT, NODE_ENOTLEADER if no
 * leader is known for a linearizable read). */
typedef void (*node_read_cb)(void *arg, int status);
/* STALE calls back at once. SESSION waits until applied >= min_index.
 * LINEARIZABLE obtains a read index from the leader (§6.4). */
void node_read(struct node *n, enum node_consistency c, raft_index min_index, unsigned timeout_ms,
               node_read_cb cb, void *arg);

struct store *node_store(struct node *n);
raft_id node_id(const struct node *n);
raft_index node_applied(const struct node *n);
/* Wall-clock milliseconds, the time a proposer writes into commands. */
uint64_t node_now_ms(void);

#endif
