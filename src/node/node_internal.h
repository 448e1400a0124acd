/*
 * node_internal.h — the state of a running node, shared by the files of
 * src/node (node.c: lifecycle and the ready loop; api.c: HTTP endpoints).
 */
#ifndef LINKRAFT_NODE_INTERNAL_H
#define LINKRAFT_NODE_INTERNAL_H

#include <uv.h>

#include "admin_auth.h"
#include "cluster.h"
#include "common/buf.h"
#include "node/identity.h"
#include "node/write_batch.h"
#include "http.h"
#include "http_client.h"
#include "net.h"
#include "node.h"
#include "raft.h"
#include "storage.h"
#include "store.h"

struct pending_write {
    raft_index index;
    raft_term term;
    node_write_cb cb;
    void *arg;
    uint64_t deadline;          /* uv_now */
    struct pending_write *next; /* ascending index */
};

struct read_batch;

struct pending_read {
    node_read_cb cb;
    void *arg;
    raft_index min_index;       /* served once applied >= this (0 until known for linearizable) */
    bool index_known;
    uint64_t deadline;
    struct read_batch *batch;   /* linearizable: the read-index request it waits on */
    struct pending_read *next;
};

/* Linearizable reads that arrive together share one read-index request. */
struct read_batch {
    uint64_t context;
    bool requested;
    struct read_batch *next;
};

enum job_kind { JOB_NONE, JOB_WRITE, JOB_PERSIST, JOB_ADOPT };

struct node {
    struct node_options o;
    uv_loop_t loop;
    struct cluster cluster;
    struct raft *raft;
    struct storage *storage;
    struct store *store;
    char db_path[4096];
    struct net *net;
    struct http_server *http;
    struct site *site;          /* the website (src/site), fed by api.c */
    struct http_client *client;   /* forwarding writes to the leader */
    int lock_fd;                  /* flock on DIR/lock: one process per data directory */
    uint8_t *secret;
    size_t secret_len;
    struct admin_replay admin_seen; /* admin proofs accepted here (api.c, admin_auth.h) */
    const struct http_exchange *admin_proven; /* a KV write whose proof this node accepted before
                                               * forwarding it, handled here after all (forward.c) */
    struct identity identity;     /* DIR/identity: cluster id, incarnation, pins */
    bool repair_from_peers;       /* the database waits for a leader's snapshot (repair.c) */
    bool bootstrap_pending;       /* empty, not --join: waits for its peers' word first */
    raft_id probe_welcomed[CLUSTER_MAX_MEMBERS]; /* peers that accepted it meanwhile */
    size_t n_probe_welcomed;

    uv_timer_t tick_timer;
    uv_timer_t retry_timer;     /* re-runs a write or apply that hit a full disk */
    uv_timer_t stop_timer;
    uv_timer_t commit_timer;    /* commits the database's open transaction (group commit) */
    uv_check_t pump_check;
    uv_signal_t sig_term, sig_int;

    /* The one storage job in flight: a write batch, a ready with snapshot
     * data (persisted the plain way), or a snapshot adoption. */
    enum job_kind job;
    uv_work_t job_req;
    int job_rc;
    char job_err[512];
    bool ready_outstanding;     /* rd is taken and not yet advanced */
    bool rd_barrier;            /* rd has snapshot data: waits for the writes before it */
    struct raft_ready rd;
    struct write_batch writing; /* on the worker (JOB_WRITE), or failed and waiting to retry */
    struct write_batch pending; /* readies taken since: the next write */
    bool write_failed;          /* `writing` hit a full disk; retried by retry_timer */
    bool write_retry;           /* the write being retried: drop its partial entries first */
    bool persist_failed;        /* the barrier ready's write hit a full disk */
    bool commit_failed;         /* the database's commit hit a full disk (it rolled back) */
    bool disk_full;
    struct storage_stats storage_stats; /* copied on the loop between storage jobs */
    bool applying;              /* the ready's entries are being applied (maybe waiting for space) */
    size_t apply_done;          /* how many of rd.committed are applied */

    /* Snapshots. */
    bool snap_job;              /* the database's copy running on a worker */
    uint64_t snap_started_ms;   /* uv_now when that snapshot began (logged with its size) */
    uv_work_t snap_req;
    int snap_rc;
    char snap_err[512];
    raft_index snap_index;      /* what the finished copy holds */
    uint64_t snap_size;         /* and its size and CRC32C, read back on the worker */
    uint32_t snap_crc;
    bool adopt_pending;
    struct raft_snapshot_meta adopt_meta;
    raft_index last_snapshot;
    raft_index snapshot_gap;    /* entries after last_snapshot before the next: snapshot_entries +-25% */
    bool barrier_waits;         /* a snapshot install waits for the copy or checkpoint
                                   still reading the old database file */

    /* The database's checkpoints (store.h): one at a time, on a worker. */
    bool ckpt_job;
    uv_work_t ckpt_req;
    int ckpt_rc;
    char ckpt_err[512];
    bool ckpt_warned;           /* the last one failed and was logged */

    struct store_result *results; /* APPLY_RESULTS_MAX slots for store_apply */
    struct pending_write *writes;
    struct pending_read *reads;
    struct read_batch *batches;
    struct read_batch *open_batch;
    uint64_t next_context;

    /* Soft state as of the last ready, for logging role changes. */
    enum raft_role last_role;
    raft_id last_leader;
    raft_term last_term;

    bool stopping;              /* SIGTERM seen: handing over, then closing */
    bool handing_over;          /* stopping waits for the leadership transfer */
    bool closing;               /* handles are being closed */
    int exit_code;
    unsigned open_handles;
    uint64_t started_ms;
    uint64_t fsync_count_at_start;
};

/* forward.c */
bool node_forward_wanted(const struct node *n, const struct http_request *req);
void node_forward(struct node *n, struct http_exchange *x);

/* api.c */
void node_api_handle(void *ctx, struct http_exchange *x);
/* The JSON of GET /api/v1/cluster. */
void node_cluster_json(struct node *n, struct buf *b);

/* site_host.c: creates n->site with the node as its host. */
struct site;
int node_site_start(struct node *n, char *err, size_t errcap);

/* node.c, for api.c */
int node_learn_member(struct node *n, raft_id id, const char *raft_addr, const char *http_addr);
int node_change_member(struct node *n, enum raft_change change, raft_id id, raft_index *index);
/* Calls cb once the entry this leader appended at (index, term) by other
 * means than node_propose (a configuration change) is applied: NODE_OK, or
 * NODE_ELOST if a new leader overwrote it, NODE_ETIMEOUT if its outcome is
 * not known in time. Same contract as node_propose's callback. */
void node_wait_entry(struct node *n, raft_index index, raft_term term, node_write_cb cb, void *arg);
int node_transfer_leader(struct node *n, raft_id to);
bool node_is_ready(const struct node *n);
void node_request_stop(struct node *n);

#endif
