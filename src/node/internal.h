/*
 * node/internal.h — the state of a running node, shared by the files of
 * src/node (node.c: lifecycle, the host of the replica driver; api.c: HTTP
 * endpoints; forward.c: writes sent on to the leader; site_host.c: the
 * site's host; repair.c: repairing the database from peers).
 */
#ifndef LINKRAFT_NODE_INTERNAL_H
#define LINKRAFT_NODE_INTERNAL_H

#include <uv.h>

#include "admin_auth.h"
#include "sys/cluster_file.h"
#include "common/buf.h"
#include "node/identity.h"
#include "http.h"
#include "http_client.h"
#include "net.h"
#include "node.h"
#include "raft.h"
#include "replica/replica.h"
#include "storage.h"
#include "store.h"

struct node {
    struct node_options o;
    uv_loop_t loop;
    struct cluster cluster;
    struct raft *raft;          /* the core: owned by `replica` once that is created */
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
    bool lost_tail;               /* DIR/lost-tail exists: votes held back until whole (replica_lost_tail) */
    raft_term lost_tail_term;     /* what it holds: the hard state's term at the start that cut the tail */
    bool bootstrap_pending;       /* empty, not --join: waits for its peers' word first */
    raft_id probe_welcomed[CLUSTER_MAX_MEMBERS]; /* peers that accepted it meanwhile */
    size_t n_probe_welcomed;

    uv_timer_t tick_timer;
    uv_timer_t retry_timer;     /* the replica's REPLICA_TIMER_RETRY (full disk) */
    uv_timer_t stop_timer;
    uv_timer_t commit_timer;    /* the replica's REPLICA_TIMER_COMMIT (group commit) */
    uv_check_t pump_check;
    uv_signal_t sig_term, sig_int;

    /* The replica driver (src/replica): the ready loop, the write pipeline,
     * waiters, apply and commit, snapshots, the disk states. This file is
     * its host: threads, files, sockets, timers. */
    struct replica *replica;

    /* The one storage job the replica runs at a time (replica_io.write or
     * .adopt), on a libuv worker thread. */
    uv_work_t job_req;
    const struct replica_write *job_w;
    bool adopting;              /* the snapshot files are being replaced: chunks are not read meanwhile */
    int job_rc;
    char job_err[512];
    struct storage_stats storage_stats; /* copied on the loop between storage jobs */

    /* The state machine's copy for a snapshot (replica_io.snapshot). */
    uv_work_t snap_req;
    bool copying;               /* snap_req runs: its own verdict on damage comes in snapshot_after */
    int snap_rc;
    char snap_err[512];
    raft_index snap_index;      /* what the finished copy holds */
    uint64_t snap_size;         /* and its size and CRC32C, read back on the worker */
    uint32_t snap_crc;
    struct raft_snapshot_meta adopt_meta;

    struct store_entry *apply_entries; /* APPLY_RESULTS_MAX: committed entries as the store sees them */

    /* The database's checkpoints (store.h): one at a time, on a worker. */
    bool ckpt_job;
    uv_work_t ckpt_req;
    int ckpt_rc;
    char ckpt_err[512];
    bool ckpt_warned;           /* the last one failed and was logged */

    /* GET /api/v1/backup (backup.c): one at a time; its copy of the
     * database, like a checkpoint, holds off a snapshot install (sm_busy). */
    struct node_backup *backup;
    bool backup_copying;

    bool stopping;              /* SIGTERM seen: the replica hands over, then closing */
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

/* backup.c: GET /api/v1/backup, already admin-proven: the backup file
 * (include/backup.h) of this node's database, streamed. */
/* The one JSON error body of the node's API (json_write_error; a 503 names
 * the leader and says Retry-After). api.c */
void node_respond_error(struct node *n, struct http_exchange *x, int status, const char *code, const char *msg);
/* A NODE_E* outcome as an HTTP status and an error code. api.c */
int node_status_http(int status);
const char *node_status_code(int status);
void node_backup_handle(struct node *n, struct http_exchange *x);

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
