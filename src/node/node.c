/*
 * node.c — a running replica (include/node.h): start-up and recovery, the
 * graceful stop, and the host of the replica driver (src/replica/replica.h).
 *
 * The driver owns the ready loop, the write pipeline, the waiters, applying
 * and committing, snapshots and the disk states; this file gives it what a
 * real process has:
 *   I/O:    the storage job (a merged write batch, a ready with snapshot
 *           data, a snapshot adoption) on a libuv worker thread against
 *           src/storage, reported back with replica_write_done and
 *           replica_adopt_done; the database's snapshot copy on another
 *           worker (replica_snapshot_done); messages to src/net (snapshot
 *           chunks read from disk); uv_now; the commit and retry timers;
 *   the state machine: SQLite (src/store), with its checkpoints on a
 *           worker, and the member addresses carried in the log;
 *   ticks, messages from peers and the loop's check handle feed the driver
 *           (replica_tick, replica_step, replica_pump).
 * docs/replica.md has the contract.
 */
#include "node/internal.h"

#include "backup.h"
#include "site.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <malloc.h>
#include <sodium.h>

#include "command.h"
#include "sys/log.h"
#include "node/repair.h"

#define APPLY_RESULTS_MAX 8192

void node_options_default(struct node_options *o)
{
    *o = (struct node_options){
        .tick_ms = 15,
        .election_ticks = 10,
        .heartbeat_ticks = 2,
        .snapshot_entries = 50000,
        .trailing_entries = 2000,
        .write_timeout_ms = 5000,
        .cache_seconds = SITE_CACHE_SECONDS,
    };
}

const char *node_status_text(int status)
{
    switch (status) {
    case NODE_OK: return "ok";
    case NODE_ENOTLEADER: return "no leader can take this request right now; retry";
    case NODE_ELOST: return "the write was overwritten by a new leader and not applied; retry";
    case NODE_ETIMEOUT: return "no answer in time; the outcome is unknown, retry with the same Idempotency-Key";
    case NODE_EDISKFULL: return "this node's disk is full; writes are refused until space returns";
    case NODE_ESTOPPING: return "this node is shutting down";
    case NODE_ETOOBIG: return "the request is too large";
    case NODE_EREPAIRING: return "this node's database was found damaged and is being repaired; ask another node";
    default: return "unknown error";
    }
}

uint64_t node_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct store *node_store(struct node *n) { return n->store; }
raft_id node_id(const struct node *n) { return n->o.id; }
raft_index node_applied(const struct node *n) { return store_applied(n->store); }

/* A fault that must not be survived: a failed fsync (the kernel may have
 * dropped the dirty pages; retrying could report success over lost data),
 * damaged state, a failed SQLite apply. Exits without touching anything. */
static void fatal(struct node *n, const char *what, const char *detail)
{
    log_error("FATAL: %s: %s; stopping now (node %llu). Nothing acknowledged is lost: the log on disk "
              "is the record. Fix the cause and restart the node.", what, detail, (unsigned long long)n->o.id);
    _exit(1);
}

/* ---- The replica's I/O (replica.h): sockets ------------------------------------ */

static void io_send(void *ctx, const struct raft_message *msgs, size_t count)
{
    struct node *n = ctx;
    uint8_t *chunk = NULL;
    for (size_t i = 0; i < count; i++) {
        struct raft_message m = msgs[i];
        if (m.type == RAFT_MSG_SNAPSHOT && m.len && !m.data) {
            /* While an adoption replaces the snapshot on the worker its
             * files are not ours to read; the core sends the chunk again. */
            if (n->adopting)
                continue;
            /* The core names the bytes; the host reads them (raft.h). */
            uint8_t *grown = realloc(chunk, m.len);
            if (!grown)
                continue;
            chunk = grown;
            if (storage_snapshot_read(n->storage, m.snapshot.index, m.offset, chunk, m.len) != STORAGE_OK) {
                log_warn("cannot read snapshot %llu at offset %llu for node %llu: %s",
                         (unsigned long long)m.snapshot.index, (unsigned long long)m.offset,
                         (unsigned long long)m.to, storage_errmsg(n->storage));
                continue; /* the core resends what is needed */
            }
            m.data = chunk;
        }
        net_send(n->net, &m);
    }
    free(chunk);
}

/* ---- The replica's I/O: the storage job, on a worker thread ----------------------- */

static bool full_disk_error(int rc)
{
    return rc == STORAGE_ENOSPC || rc == STORAGE_ENOMEM;
}

/* The write the replica asked for, in the ready contract's order: snapshot
 * chunk and install (a ready with snapshot data), truncation, entries, hard
 * state, one fsync, then compaction. */
static void write_work(uv_work_t *req)
{
    struct node *n = req->data;
    const struct replica_write *w = n->job_w;
    struct storage *st = n->storage;
    int rc = STORAGE_OK;
    if (w->chunk)
        rc = storage_snapshot_write_chunk(st, w->chunk);
    if (!rc && w->install)
        rc = storage_snapshot_install(st, w->install);
    if (!rc && w->truncate_from)
        rc = storage_truncate(st, w->truncate_from);
    if (!rc && w->retry && w->n_entries)
        rc = storage_truncate(st, w->entries[0].index); /* a retry: drop what the failed try left */
    if (!rc && w->n_entries)
        rc = storage_append(st, w->entries, w->n_entries);
    if (!rc && w->hs)
        rc = storage_set_hard_state(st, w->hs);
    if (!rc)
        rc = storage_sync(st);
    if (!rc && w->compact_before)
        rc = storage_compact(st, w->compact_before);
    n->job_rc = rc;
    if (rc)
        snprintf(n->job_err, sizeof n->job_err, "%s", storage_errmsg(st));
}

static void write_after(uv_work_t *req, int status)
{
    struct node *n = req->data;
    (void)status;
    storage_get_stats(n->storage, &n->storage_stats); /* no storage job runs now */
    enum replica_job_status st = !n->job_rc ? REPLICA_JOB_OK
                               : full_disk_error(n->job_rc) ? REPLICA_JOB_FULL : REPLICA_JOB_FATAL;
    replica_write_done(n->replica, st, n->job_err);
}

static void io_write(void *ctx, const struct replica_write *w)
{
    struct node *n = ctx;
    n->job_w = w;
    n->job_req.data = n;
    if (uv_queue_work(&n->loop, &n->job_req, write_work, write_after))
        fatal(n, "starting a disk write", "uv_queue_work failed");
}

/* ---- The replica's I/O: snapshots ------------------------------------------------ */

static void snapshot_work(uv_work_t *req)
{
    struct node *n = req->data;
    const char *tmp = storage_snapshot_tmp_path(n->storage);
    n->snap_rc = store_snapshot(n->db_path, tmp, &n->snap_index, n->snap_err, sizeof n->snap_err);
    /* Read back for its checksum here, not in the adoption: that runs in
     * the log's write pipeline, where every write would wait for it. */
    if (!n->snap_rc) {
        int rc = storage_file_crc(tmp, &n->snap_size, &n->snap_crc, n->snap_err, sizeof n->snap_err);
        n->snap_rc = rc == STORAGE_OK ? STORE_OK : rc == STORAGE_EIO ? STORE_EIO : STORE_EAGAIN;
    }
}

static void snapshot_after(uv_work_t *req, int status)
{
    struct node *n = req->data;
#ifdef M_ARENA_MAX
    malloc_trim(0); /* the copy's caches are freed: give the pages back */
#endif
    n->copying = false;
    enum replica_job_status st = REPLICA_JOB_OK;
    char why[700];
    snprintf(why, sizeof why, "%s", status ? "cancelled" : n->snap_err);
    if (!status && n->snap_rc == STORE_EIO) {
        st = REPLICA_JOB_FATAL;
    } else if (!status && n->snap_rc == STORE_ECORRUPT) {
        repair_restart("the database is damaged; it is not copied into a snapshot", n->snap_err);
    } else if (status || n->snap_rc) {
        st = REPLICA_JOB_FAILED;
    }
    replica_snapshot_done(n->replica, st, n->snap_index, n->snap_size, n->snap_crc, why);
}

static void io_snapshot(void *ctx)
{
    struct node *n = ctx;
    n->snap_req.data = n;
    n->copying = true;
    if (uv_queue_work(&n->loop, &n->snap_req, snapshot_work, snapshot_after))
        fatal(n, "starting a snapshot copy", "uv_queue_work failed");
}

static void adopt_work(uv_work_t *req)
{
    struct node *n = req->data;
    n->job_rc = storage_snapshot_adopt(n->storage, storage_snapshot_tmp_path(n->storage), &n->adopt_meta);
    if (n->job_rc)
        snprintf(n->job_err, sizeof n->job_err, "%s", storage_errmsg(n->storage));
}

static void adopt_after(uv_work_t *req, int status)
{
    struct node *n = req->data;
    (void)status;
    n->adopting = false;
    storage_get_stats(n->storage, &n->storage_stats);
    uv_update_time(&n->loop); /* the replica logs how long the snapshot took */
    /* Full disk, or overtaken (a leader's snapshot was installed meanwhile):
     * nothing is lost, the next snapshot will do. */
    enum replica_job_status st = !n->job_rc ? REPLICA_JOB_OK
        : n->job_rc == STORAGE_ENOSPC || n->job_rc == STORAGE_ENOMEM || n->job_rc == STORAGE_EINVAL
        ? REPLICA_JOB_FAILED : REPLICA_JOB_FATAL;
    replica_adopt_done(n->replica, st, n->job_err);
}

static void io_adopt(void *ctx, const struct raft_snapshot_meta *meta)
{
    struct node *n = ctx;
    n->adopt_meta = *meta;
    n->adopting = true;
    n->job_req.data = n;
    if (uv_queue_work(&n->loop, &n->job_req, adopt_work, adopt_after))
        fatal(n, "starting a snapshot adoption", "uv_queue_work failed");
}

/* ---- The replica's I/O: clock, timers, log ------------------------------------------ */

static uint64_t io_now(void *ctx)
{
    struct node *n = ctx;
    return uv_now(&n->loop);
}

static void on_commit_timer(uv_timer_t *t)
{
    struct node *n = t->data;
    replica_timer_fired(n->replica, REPLICA_TIMER_COMMIT);
}

static void on_retry_timer(uv_timer_t *t)
{
    struct node *n = t->data;
    replica_timer_fired(n->replica, REPLICA_TIMER_RETRY);
}

static void io_arm(void *ctx, enum replica_timer which, uint64_t ms)
{
    struct node *n = ctx;
    if (n->closing)
        return;
    if (which == REPLICA_TIMER_COMMIT)
        uv_timer_start(&n->commit_timer, on_commit_timer, ms, 0);
    else
        uv_timer_start(&n->retry_timer, on_retry_timer, ms, 0);
}

static void io_cancel(void *ctx, enum replica_timer which)
{
    struct node *n = ctx;
    if (!n->closing)
        uv_timer_stop(which == REPLICA_TIMER_COMMIT ? &n->commit_timer : &n->retry_timer);
}

static void io_log(void *ctx, enum replica_log_level level, const char *msg)
{
    (void)ctx;
    if (level == REPLICA_LOG_ERROR)
        log_error("%s", msg);
    else if (level == REPLICA_LOG_WARN)
        log_warn("%s", msg);
    else
        log_info("%s", msg);
}

static void io_fatal(void *ctx, const char *what, const char *detail)
{
    fatal(ctx, what, detail);
}

static void begin_close(struct node *n);

static void io_stopped(void *ctx)
{
    begin_close(ctx);
}

/* ---- Member addresses --------------------------------------------------------------- */

/* Records a member's addresses (from the log or an admin request) and
 * points the transport at it. Returns 0, or -1 if they are malformed. */
int node_learn_member(struct node *n, raft_id id, const char *raft_addr, const char *http_addr)
{
    char host[256], err[256];
    uint16_t port;
    if (cluster_split_addr(raft_addr, host, sizeof host, &port, err, sizeof err) ||
        cluster_split_addr(http_addr, host, sizeof host, &port, err, sizeof err) ||
        strlen(raft_addr) >= CLUSTER_ADDR_MAX || strlen(http_addr) >= CLUSTER_ADDR_MAX)
        return -1;
    struct cluster_member *m = NULL;
    for (size_t i = 0; i < n->cluster.n; i++)
        if (n->cluster.members[i].id == id)
            m = &n->cluster.members[i];
    if (!m) {
        if (n->cluster.n == CLUSTER_MAX_MEMBERS)
            return -1;
        m = &n->cluster.members[n->cluster.n++];
        m->id = id;
    }
    if (strcmp(m->raft_addr, raft_addr) || strcmp(m->http_addr, http_addr))
        log_info("member %llu: raft %s, http %s", (unsigned long long)id, raft_addr, http_addr);
    snprintf(m->raft_addr, sizeof m->raft_addr, "%s", raft_addr);
    snprintf(m->http_addr, sizeof m->http_addr, "%s", http_addr);
    if (n->net && id != n->o.id)
        net_set_peer(n->net, id, raft_addr);
    return 0;
}

static void learn_member_text(void *arg, const char *id_text, const char *addrs)
{
    struct node *n = arg;
    char raft_addr[CLUSTER_ADDR_MAX], http_addr[CLUSTER_ADDR_MAX];
    char *end;
    unsigned long long id = strtoull(id_text, &end, 10);
    if (*end || !id || sscanf(addrs, "%261s %261s", raft_addr, http_addr) != 2 ||
        node_learn_member(n, id, raft_addr, http_addr))
        log_warn("ignoring malformed member addresses in the log: '%s' '%s'", id_text, addrs);
}

/* Member addresses travel in the log (CMD_MEMBER_ADDR); pick them up as
 * they are applied. */
static void learn_members_from(struct node *n, const struct raft_entry *e, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (e[i].type != RAFT_ENTRY_COMMAND || e[i].len < 2 || e[i].data[1] != CMD_MEMBER_ADDR)
            continue;
        struct command c;
        if (command_decode(&c, e[i].data, e[i].len))
            continue;
        char id[32], addrs[600];
        snprintf(id, sizeof id, "%.*s", c.key.len, c.key.p ? c.key.p : "");
        snprintf(addrs, sizeof addrs, "%.*s", c.value.len, c.value.p ? c.value.p : "");
        learn_member_text(n, id, addrs);
    }
}

/* ---- The replica's state machine: SQLite (src/store) ---------------------------------- */

/* The WAL is copied into the database file once it holds this many pages
 * (4 MiB at SQLite's page size: SQLite's own automatic threshold). */
#define CHECKPOINT_PAGES 1000

static void checkpoint_work(uv_work_t *req)
{
    struct node *n = req->data;
    n->ckpt_rc = store_checkpoint(n->db_path, false, n->ckpt_err, sizeof n->ckpt_err);
}

static void checkpoint_done(uv_work_t *req, int status)
{
    struct node *n = req->data;
    n->ckpt_job = false;
    if (!status && n->ckpt_rc == STORE_ECORRUPT)
        repair_restart("checkpointing the database found it damaged", n->ckpt_err);
    if (!status && n->ckpt_rc == STORE_EIO)
        fatal(n, "checkpointing the database", n->ckpt_err);
    /* A full disk: retried after each commit, said once until it works. */
    if (!status && n->ckpt_rc && n->ckpt_rc != STORE_EAGAIN && !n->ckpt_warned)
        log_warn("checkpoint of the database failed (the WAL keeps everything; will retry): %s", n->ckpt_err);
    if (!status && n->ckpt_rc != STORE_EAGAIN)
        n->ckpt_warned = n->ckpt_rc != STORE_OK;
    replica_sm_idle(n->replica); /* a snapshot install may have waited for it */
}

/* Runs a checkpoint on a worker (its fsyncs off the loop) when the WAL has
 * grown; its result is checked, unlike SQLite's automatic ones (store.h). */
static void maybe_checkpoint(struct node *n)
{
    if (n->ckpt_job || n->closing || replica_restore_waiting(n->replica) ||
        store_wal_pages(n->store) < CHECKPOINT_PAGES)
        return;
    n->ckpt_job = true;
    n->ckpt_req.data = n;
    if (uv_queue_work(&n->loop, &n->ckpt_req, checkpoint_work, checkpoint_done))
        n->ckpt_job = false;
}

/* A failed apply or commit of the database: a damaged page met on the way
 * is repaired (repair.c); anything else the replica makes fatal. */
static enum replica_sm_status sm_status(int rc)
{
    if (rc == STORE_ECORRUPT || (rc != STORE_OK && store_damage_seen()))
        repair_restart("the database was found damaged while applying or committing entries",
                       "a page's checksum did not match or SQLite reported corruption");
    return rc == STORE_OK ? REPLICA_SM_OK : rc == STORE_EFULL ? REPLICA_SM_FULL : REPLICA_SM_FAILED;
}

static raft_index sm_applied(void *ctx)
{
    struct node *n = ctx;
    return store_applied(n->store);
}

static raft_index sm_committed(void *ctx)
{
    struct node *n = ctx;
    return store_committed(n->store);
}

static enum replica_sm_status sm_apply(void *ctx, const struct raft_entry *e, size_t count, void *results)
{
    struct node *n = ctx;
    if (count > APPLY_RESULTS_MAX)
        return REPLICA_SM_FAILED; /* the replica is created with apply_batch = APPLY_RESULTS_MAX */
    for (size_t i = 0; i < count; i++)
        n->apply_entries[i] = (struct store_entry){ .index = e[i].index, .command = e[i].type == RAFT_ENTRY_COMMAND,
                                                    .data = e[i].data, .len = e[i].len };
    int rc = store_apply(n->store, n->apply_entries, count, results);
    if (rc == STORE_OK)
        learn_members_from(n, e, count);
    return sm_status(rc);
}

static enum replica_sm_status sm_commit(void *ctx)
{
    struct node *n = ctx;
    int rc = store_commit(n->store);
    if (rc == STORE_OK)
        maybe_checkpoint(n);
    return sm_status(rc);
}

static enum replica_sm_status sm_restore(void *ctx, const struct raft_snapshot_meta *meta, char *err, size_t errcap)
{
    struct node *n = ctx;
    const char *path = storage_snapshot_path(n->storage);
    if (!path) {
        snprintf(err, errcap, "no snapshot file");
        return REPLICA_SM_FAILED;
    }
    int rc = store_restore(n->store, path, err, errcap);
    if (rc == STORE_OK) {
        store_members(n->store, learn_member_text, n);
        if (n->repair_from_peers && !raft_wants_snapshot(n->raft)) {
            n->repair_from_peers = false;
            log_info("repaired from peers: the database is the leader's snapshot at index %llu and the log after "
                     "it; serving reads again", (unsigned long long)meta->index);
        }
    }
    return sm_status(rc);
}

static bool sm_busy(void *ctx)
{
    struct node *n = ctx;
    return n->ckpt_job || n->backup_copying;
}

static const char *sm_errmsg(void *ctx)
{
    struct node *n = ctx;
    return store_errmsg(n->store);
}

static int create_replica(struct node *n, uint64_t seed, bool lost_tail, char *err, size_t errcap)
{
    struct replica_options ro;
    replica_options_default(&ro);
    ro.lost_tail = lost_tail; /* the log's last record was cut: it may have been acknowledged */
    ro.lost_tail_term = n->lost_tail_term;
    ro.write_timeout_ms = n->o.write_timeout_ms;
    ro.snapshot_entries = n->o.snapshot_entries;
    ro.apply_batch = APPLY_RESULTS_MAX;
    ro.seed = seed;
    struct replica_io io = {
        .ctx = n, .now = io_now, .send = io_send, .write = io_write, .snapshot = io_snapshot, .adopt = io_adopt,
        .arm = io_arm, .cancel = io_cancel, .log = io_log, .fatal = io_fatal, .stopped = io_stopped,
    };
    struct replica_sm sm = {
        .ctx = n, .result_size = sizeof(struct store_result), .applied = sm_applied, .committed = sm_committed,
        .apply = sm_apply, .commit = sm_commit, .restore = sm_restore, .busy = sm_busy, .errmsg = sm_errmsg,
    };
    n->replica = replica_create(&ro, n->raft, &io, &sm);
    if (!n->replica) {
        snprintf(err, errcap, "out of memory");
        return 1;
    }
    return 0;
}

/* ---- Writes and reads --------------------------------------------------------------- */

_Static_assert(NODE_OK == (int)REPLICA_OK && NODE_ENOTLEADER == (int)REPLICA_ENOTLEADER &&
               NODE_ELOST == (int)REPLICA_ELOST && NODE_ETIMEOUT == (int)REPLICA_ETIMEOUT &&
               NODE_EDISKFULL == (int)REPLICA_EDISKFULL && NODE_ESTOPPING == (int)REPLICA_ESTOPPING &&
               NODE_ETOOBIG == (int)REPLICA_ETOOBIG, "node.h and replica.h number outcomes alike");
_Static_assert(NODE_READ_STALE == (int)REPLICA_READ_STALE && NODE_READ_SESSION == (int)REPLICA_READ_SESSION &&
               NODE_READ_LINEARIZABLE == (int)REPLICA_READ_LINEARIZABLE, "consistency levels alike");

/* The node's callbacks take the store's result type; the replica's an
 * opaque one of sm.result_size. */
struct write_wait {
    node_write_cb cb;
    void *arg;
};

static void write_answered(void *arg, int status, raft_index index, const void *result)
{
    struct write_wait w = *(struct write_wait *)arg;
    free(arg);
    w.cb(w.arg, status, index, result);
}

static struct write_wait *write_wait_new(node_write_cb cb, void *arg)
{
    struct write_wait *w = malloc(sizeof *w);
    if (w)
        *w = (struct write_wait){ cb, arg };
    return w;
}

void node_propose(struct node *n, const uint8_t *data, size_t len, node_write_cb cb, void *arg)
{
    if (n->closing) {
        cb(arg, NODE_ESTOPPING, 0, NULL);
        return;
    }
    struct write_wait *w = write_wait_new(cb, arg);
    if (!w) {
        cb(arg, NODE_ETIMEOUT, 0, NULL);
        return;
    }
    replica_propose(n->replica, data, len, write_answered, w);
}

void node_wait_entry(struct node *n, raft_index index, raft_term term, node_write_cb cb, void *arg)
{
    struct write_wait *w = write_wait_new(cb, arg);
    if (!w) {
        cb(arg, NODE_ETIMEOUT, 0, NULL);
        return;
    }
    replica_wait_entry(n->replica, index, term, write_answered, w);
}

void node_read(struct node *n, enum node_consistency c, raft_index min_index, unsigned timeout_ms,
               node_read_cb cb, void *arg)
{
    if (n->repair_from_peers || store_damage_seen()) {
        cb(arg, NODE_EREPAIRING); /* never data from a database not (yet) verified */
        return;
    }
    replica_read(n->replica, (enum replica_consistency)c, min_index, timeout_ms, cb, arg);
}

/* ---- The loop ----------------------------------------------------------------------- */

static void on_check(uv_check_t *c)
{
    struct node *n = c->data;
    replica_pump(n->replica);
}

/* DIR/lost-tail: the log's last record was cut though it was all there,
 * so this node may have acknowledged what it lost, and must not vote until
 * whole again (replica_options.lost_tail). The marker is durable before the
 * cut is (storage_open_finish) and stays until then, across restarts. It
 * holds the hard state's term at the start that cut the tail
 * (lost_tail_term): the node is whole once its log holds an entry of a
 * later term, whatever term it restarts in. */
static int lost_tail_mark(struct node *n, bool on, char *err, size_t errcap)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/lost-tail", n->o.data_dir);
    if (on) {
        /* Written aside and renamed: a crash leaves the old marker or the
         * new one, never a term cut short (which could be lower). */
        char tmp[4210], text[32];
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        int len = snprintf(text, sizeof text, "%llu\n", (unsigned long long)n->lost_tail_term);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || write(fd, text, (size_t)len) != len || fsync(fd) != 0 || rename(tmp, path) != 0) {
            snprintf(err, errcap, "cannot create %.900s: %s", path, strerror(errno));
            if (fd >= 0)
                close(fd);
            return 1;
        }
        close(fd);
    } else if (unlink(path) != 0 && errno != ENOENT) {
        snprintf(err, errcap, "cannot remove %.900s: %s", path, strerror(errno));
        return 1;
    }
    int dfd = open(n->o.data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) {
        snprintf(err, errcap, "cannot sync the directory %.900s: %s", n->o.data_dir, strerror(errno));
        if (dfd >= 0)
            close(dfd);
        return 1;
    }
    close(dfd);
    n->lost_tail = on;
    return 0;
}

static void on_tick(uv_timer_t *t)
{
    struct node *n = t->data;
    if (n->lost_tail && !replica_lost_tail(n->replica)) {
        char err[512];
        if (lost_tail_mark(n, false, err, sizeof err))
            log_warn("%s (it will be tried again)", err);
    }
    /* A snapshot copy that met the damage says so itself when it ends. */
    if (store_damage_seen() && !n->copying)
        repair_restart("a damaged page of the database was read", "its checksum does not match; the read got "
                       "an error, not the data");
    replica_tick(n->replica);
}

static void on_message(void *ctx, const struct raft_message *m)
{
    struct node *n = ctx;
    if (n->bootstrap_pending)
        return; /* not a member of anything yet: it must neither vote nor take entries */
    replica_step(n->replica, m);
}

/* ---- Identity: the cluster id and lost data directories ---------------------- */

/* The transport's check of a peer's identity (both directions, after the
 * secret): see node/identity.h. What it learns is on disk before the
 * handshake completes, so a peer that ever had a frame accepted here is
 * remembered across crashes. */
static int on_peer_check(void *ctx, raft_id peer, const struct net_identity *theirs)
{
    struct node *n = ctx;
    bool was_known = n->identity.self.cluster_known, changed;
    struct identity before = n->identity;
    /* A voter's id never moves to a new data directory, --join or not: it
     * must be removed first (then it is added back as a learner). */
    const struct raft_member *m = n->raft ? raft_config_find(raft_configuration(n->raft), peer) : NULL;
    int verdict = identity_check(&n->identity, peer, theirs, m && m->role == RAFT_VOTER, &changed);
    if (verdict == NET_CHECK_REPLACED)
        log_warn("refused node %llu: this node knew it with another data directory, so it lost its log and "
                 "votes. Remove it ('linkraft member remove --id %llu'), start it with --join, then "
                 "'linkraft member add --id %llu'", (unsigned long long)peer, (unsigned long long)peer,
                 (unsigned long long)peer);
    else if (verdict == NET_CHECK_OTHER_CLUSTER)
        log_warn("refused node %llu: it belongs to another cluster (another cluster id)", (unsigned long long)peer);
    if (verdict != NET_CHECK_OK || !changed)
        return verdict;
    char err[1024];
    if (identity_save(n->o.data_dir, &n->identity, err, sizeof err)) {
        log_error("%s", err);
        n->identity = before;
        return NET_CHECK_INTERNAL;
    }
    if (!was_known && n->identity.self.cluster_known) {
        log_info("learnt the cluster id from node %llu", (unsigned long long)peer);
        net_set_identity(n->net, &n->identity.self);
    }
    return NET_CHECK_OK;
}

/* The transport's word on a refusal only a person can fix (net.h: a peer
 * speaking another protocol version). Dials repeat every second or so:
 * the same sentence is logged at most once a minute. */
static void on_net_note(void *ctx, const char *text)
{
    struct node *n = ctx;
    static char last[512];
    static uint64_t last_ms;
    uint64_t now = uv_now(&n->loop);
    if (!strncmp(last, text, sizeof last - 1) && now - last_ms < 60000)
        return;
    snprintf(last, sizeof last, "%s", text);
    last_ms = now;
    log_warn("%s", text);
}

static int bootstrap_now(struct node *n, char *err, size_t errcap)
{
    struct raft_config c = { 0 };
    for (size_t i = 0; i < n->cluster.n && i < RAFT_MAX_MEMBERS; i++)
        c.members[c.n++] = (struct raft_member){ n->cluster.members[i].id, RAFT_VOTER, 0 };
    int rc = raft_bootstrap(n->raft, &c);
    if (rc) {
        snprintf(err, errcap, "cannot bootstrap the cluster: %s", raft_strerror(rc));
        return 2;
    }
    n->bootstrap_pending = false;
    log_info("first start: bootstrapped a cluster of %u voters from %s", c.n, n->o.cluster_path);
    return 0;
}

/* How each of our dials ended. Before bootstrapping, an empty node (started
 * without --join) waits to hear from a majority of the cluster file, counting
 * itself: a member that knew it with another data directory refuses it, and
 * then it leaves, saying what to do (SPEC "Identity, lost disks"). */
static void on_peer_dialed(void *ctx, raft_id peer, int reason)
{
    struct node *n = ctx;
    if (!n->bootstrap_pending)
        return;
    if (reason == NET_CHECK_REPLACED || reason == NET_CHECK_OTHER_CLUSTER) {
        if (reason == NET_CHECK_REPLACED)
            log_error("cannot start: node %llu knows this node (%llu) with another data directory: %s was lost "
                      "or replaced, and its votes and log with it. Its cluster exists and has its data. To bring "
                      "it back: 'linkraft member remove --id %llu', then start it with --join on an empty "
                      "directory, then 'linkraft member add --id %llu'",
                      (unsigned long long)peer, (unsigned long long)n->o.id, n->o.data_dir,
                      (unsigned long long)n->o.id, (unsigned long long)n->o.id);
        else
            log_error("cannot start: node %llu belongs to another cluster (its cluster id differs from the one "
                      "this node derives from %s and the secret): check the cluster file and --secret-file",
                      (unsigned long long)peer, n->o.cluster_path);
        /* Nothing but DIR/identity was written: no term, no vote, no entry. */
        _exit(1);
    }
    if (reason != 0)
        return;
    for (size_t i = 0; i < n->n_probe_welcomed; i++)
        if (n->probe_welcomed[i] == peer)
            return;
    if (n->n_probe_welcomed < CLUSTER_MAX_MEMBERS)
        n->probe_welcomed[n->n_probe_welcomed++] = peer;
    if (n->n_probe_welcomed + 1 > n->cluster.n / 2) {
        char err[256];
        if (bootstrap_now(n, err, sizeof err)) {
            fatal(n, "bootstrap", err);
            return;
        }
        replica_pump(n->replica);
    }
}

/* ---- Membership and leadership ------------------------------------------------- */

int node_change_member(struct node *n, enum raft_change change, raft_id id, raft_index *index)
{
    if (change != RAFT_REMOVE && !cluster_find(&n->cluster, id))
        return RAFT_ENOTFOUND; /* we could not reach it: its address is not in our file */
    const struct cluster_member *cm = cluster_find(&n->cluster, id);
    if (cm && id != n->o.id)
        net_set_peer(n->net, id, cm->raft_addr);
    return raft_change_member(n->raft, change, id, index);
}

int node_transfer_leader(struct node *n, raft_id to)
{
    return raft_transfer_leader(n->raft, to);
}

bool node_is_ready(const struct node *n)
{
    struct replica_status st;
    replica_get_status(n->replica, &st);
    return st.leader != 0 && st.applied >= st.commit && st.state == REPLICA_RUNNING && st.disk == REPLICA_DISK_OK;
}

/* ---- Stopping ------------------------------------------------------------------ */

static void on_close(uv_handle_t *h)
{
    (void)h;
}

static void net_stopped(void *arg)
{
    (void)arg;
}

static void http_stopped(void *arg)
{
    (void)arg;
}

static void begin_close(struct node *n)
{
    if (n->closing)
        return;
    n->closing = true;
    log_info("stopping: closing connections");
    replica_close(n->replica); /* its waiters answer ESTOPPING */
    uv_close((uv_handle_t *)&n->tick_timer, on_close);
    uv_close((uv_handle_t *)&n->retry_timer, on_close);
    uv_close((uv_handle_t *)&n->stop_timer, on_close);
    uv_close((uv_handle_t *)&n->commit_timer, on_close);
    uv_close((uv_handle_t *)&n->pump_check, on_close);
    uv_close((uv_handle_t *)&n->sig_term, on_close);
    uv_close((uv_handle_t *)&n->sig_int, on_close);
    /* Already stopping: a second SIGTERM/SIGINT (Ctrl-C reaches a whole
     * process group, and `linkraft demo` forwards it too) must not kill
     * the process halfway through its clean stop. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    if (n->http)
        http_server_stop(n->http, http_stopped, n);
    if (n->net)
        net_stop(n->net, net_stopped, n);
    if (n->client)
        http_client_destroy(n->client);
    n->client = NULL;
    n->http = NULL;
    n->net = NULL;
}

static void on_stop_timeout(uv_timer_t *t)
{
    struct node *n = t->data;
    log_warn("leadership transfer did not finish in time; stopping anyway");
    /* Only a disk write in flight is waited for: an apply held up by a full
     * disk loses nothing (the log has it), nor does an unpersisted ready
     * (nothing in it was acknowledged). */
    if (!replica_job_running(n->replica))
        begin_close(n);
    else
        uv_timer_start(&n->stop_timer, on_stop_timeout, 50, 0);
}

void node_request_stop(struct node *n)
{
    if (n->stopping)
        return;
    n->stopping = true;
    uv_timer_start(&n->stop_timer, on_stop_timeout, 3ull * n->o.election_ticks * n->o.tick_ms, 0);
    replica_stop(n->replica); /* a leader hands over first; io_stopped then closes */
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    node_request_stop(s->data);
}

/* ---- Start-up ------------------------------------------------------------------ */

static int mkdir_p(const char *dir, char *err, size_t errcap)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) {
        snprintf(err, errcap, "data directory path too long");
        return -1;
    }
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(path, 0755) && errno != EEXIST) {
            snprintf(err, errcap, "cannot create %.900s: %s", path, strerror(errno));
            return -1;
        }
        *p = '/';
    }
    if (mkdir(path, 0700) && errno != EEXIST) { /* the data directory itself: private (SPEC §3) */
        snprintf(err, errcap, "cannot create %.900s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Two processes on one data directory would interleave their logs: the
 * second one is refused. The lock (flock on DIR/lock) lasts as long as the
 * process, so a node killed with -9 leaves nothing stale behind. */
static int lock_data_dir(struct node *n, char *err, size_t errcap)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/lock", n->o.data_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errcap, "cannot open %.900s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errcap, "%.900s is in use by another linkraft process (%s); stop it first",
                 n->o.data_dir, strerror(errno));
        close(fd);
        return -1;
    }
    n->lock_fd = fd; /* kept open until exit */
    return 0;
}

/* Brings the database and the Raft core to what the disk holds. */
static int recover(struct node *n, struct storage_state *state, char *err, size_t errcap)
{
    /* Everything is checked before anything changes (storage_open left its
     * changes for storage_open_finish): a refusal leaves the directory as
     * the crash or the damage left it. */
    raft_index applied = store_applied(n->store);
    /* Crashed after keeping a snapshot but before restoring SQLite from it:
     * the database is restored below, once the rest is known to fit. */
    bool restore = state->have_snapshot && applied < state->snapshot.index && !n->repair_from_peers;
    if (n->repair_from_peers || restore)
        applied = state->snapshot.index; /* from peers: nothing is applied until their snapshot is */
    bool empty_log = !state->have_snapshot && state->n_entries == 0 && state->hard_state.term == 0;
    if (empty_log) {
        if (applied != 0) {
            snprintf(err, errcap, "the database in %s has applied entries up to %llu but the Raft log is empty: "
                     "the log was lost. Move %s away and start this node with --join, then add it back "
                     "with 'linkraft member add'", n->o.data_dir, (unsigned long long)applied, n->o.data_dir);
            return 2;
        }
        if (storage_open_finish(n->storage, err, errcap))
            return 1;
        if (n->o.join) {
            log_info("empty node: waiting to be added to the cluster (--join)");
            return 0;
        }
        if (n->cluster.n > 1) {
            /* Maybe a first start, maybe a member whose directory was lost:
             * its peers tell (on_peer_dialed). Until then it is nobody. */
            n->bootstrap_pending = true;
            log_info("empty data directory: asking the peers in %s before bootstrapping", n->o.cluster_path);
            return 0;
        }
        return bootstrap_now(n, err, errcap);
    }
    int rc = raft_restore(n->raft, &state->hard_state, state->have_snapshot ? &state->snapshot : NULL,
                          state->entries, state->n_entries, applied);
    if (rc) {
        snprintf(err, errcap, "the log in %s does not fit the database (applied %llu): %s. "
                 "Move %s away and start this node with --join, then add it back with 'linkraft member add'",
                 n->o.data_dir, (unsigned long long)applied, raft_strerror(rc), n->o.data_dir);
        return 1;
    }
    if (n->repair_from_peers && repair_from_peers_begin(n->raft, n->o.data_dir, err, errcap))
        return 1;
    if (n->lost_tail && lost_tail_mark(n, true, err, errcap))
        return 1;
    if (storage_open_finish(n->storage, err, errcap))
        return 1;
    if (restore) {
        const char *path = storage_snapshot_path(n->storage);
        char serr[512];
        if (!path || store_restore(n->store, path, serr, sizeof serr) != STORE_OK) {
            snprintf(err, errcap, "cannot restore the database from the snapshot: %s", path ? serr : "no file");
            return 1;
        }
        if (store_applied(n->store) != applied) {
            snprintf(err, errcap, "the snapshot %s holds the database at index %llu, not %llu as its metadata says",
                     path, (unsigned long long)store_applied(n->store), (unsigned long long)applied);
            return 1;
        }
    }
    log_info("recovered: term %llu, log %llu..%llu, applied %llu%s%s", (unsigned long long)state->hard_state.term,
             (unsigned long long)raft_first_index(n->raft), (unsigned long long)raft_last_index(n->raft),
             (unsigned long long)applied, state->recovery_note[0] ? "; " : "", state->recovery_note);
    return 0;
}

static int start(struct node *n, char *err, size_t errcap)
{
    if (cluster_load(n->o.cluster_path, &n->cluster, err, errcap))
        return 2;
    const struct cluster_member *self = cluster_find(&n->cluster, n->o.id);
    if (!self) {
        snprintf(err, errcap, "%s has no line for node %llu", n->o.cluster_path, (unsigned long long)n->o.id);
        return 2;
    }
    if (!n->o.secret_path) {
        /* Without a secret anyone who can reach a raft port is a peer: only
         * acceptable when nobody but this machine's users can (SPEC §3). */
        for (size_t i = 0; i < n->cluster.n; i++) {
            const struct cluster_member *m = &n->cluster.members[i];
            const char *bad = !net_addr_is_loopback(m->raft_addr) ? m->raft_addr
                            : !net_addr_is_loopback(m->http_addr) ? m->http_addr : NULL;
            if (bad) {
                snprintf(err, errcap, "%s lists %s (node %llu), which is not a loopback address: peers on a "
                         "network must authenticate, so give every node the same --secret-file (at least %d "
                         "bytes, mode 0600)", n->o.cluster_path, bad, (unsigned long long)m->id, NET_SECRET_MIN);
                return 2;
            }
        }
    } else if (net_load_secret(n->o.secret_path, &n->secret, &n->secret_len, err, errcap)) {
        return 2;
    }
    if (mkdir_p(n->o.data_dir, err, errcap))
        return 1;
    if (lock_data_dir(n, err, errcap))
        return 1;
    if (n->o.force_new_cluster) {
        int changed;
        if (backup_force_new_cluster(n->o.data_dir, n->o.id, &changed, err, errcap))
            return 1;
        if (changed)
            log_warn("--force-new-cluster: %s is now a ONE-VOTER cluster of node %llu under a new cluster id, "
                     "keeping everything its log holds (what was not yet committed is committed now). The old "
                     "members are refused if they return. Add new members with 'linkraft node --join' and "
                     "'linkraft member add', and remove this flag from the node's command line",
                     n->o.data_dir, (unsigned long long)n->o.id);
        else
            log_warn("--force-new-cluster: node %llu is already the only member; nothing changed (remove the "
                     "flag from the node's command line)", (unsigned long long)n->o.id);
    }

    /* Read (not changed) before anything else may change the directory: a
     * refusal of it (damaged, a newer format) leaves everything as it was. */
    bool found;
    if (identity_load(n->o.data_dir, &n->identity, &found, err, errcap))
        return 1;

    struct storage_state state;
    memset(&state, 0, sizeof state);
    struct storage_options so;
    storage_options_default(&so);
    so.defer_changes = true; /* finished in recover(), once the database is known to fit */
    so.snapshot_data_optional = true; /* its loss is repaired from peers (repair.c) */
    if (n->o.segment_bytes)
        so.segment_bytes = n->o.segment_bytes;
    int rc = storage_open(n->o.data_dir, NULL, &so, &n->storage, &state, err, errcap);
    if (rc)
        return 1;
    if (state.recovery_note[0])
        log_warn("log recovery: %s", state.recovery_note);
    /* Before anything changes: a directory with a log but no identity lost
     * the file that says which cluster it belongs to and which incarnation
     * its peers pinned. A new incarnation would be refused by every peer as
     * a replaced directory (and no linkraft ever wrote a log without it). */
    bool empty_dir = !state.have_snapshot && state.n_entries == 0 && state.hard_state.term == 0;
    if (!empty_dir && !identity_exists(n->o.data_dir)) {
        snprintf(err, errcap, "%s/identity is missing but %s holds a Raft log (term %llu): the identity says "
                 "which cluster this node belongs to and which incarnation its peers know. Restore the file "
                 "from a backup of this directory, or move the directory away and start this node with "
                 "--join, then add it back with 'linkraft member add'", n->o.data_dir, n->o.data_dir,
                 (unsigned long long)state.hard_state.term);
        storage_state_free(&state);
        return 1;
    }
    if (snprintf(n->db_path, sizeof n->db_path, "%s/state.db", n->o.data_dir) >= (int)sizeof n->db_path) {
        storage_state_free(&state);
        snprintf(err, errcap, "data directory path too long");
        return 2;
    }
    /* A damaged database is moved aside and rebuilt: from the snapshot (its
     * CRC32C checked by storage_open) and the log (a CRC32C per record), or
     * from a leader's snapshot when this node's own cannot be used. */
    enum repair_mode mode;
    rc = repair_open_store(n->db_path, &state, &n->store, &mode, err, errcap);
    n->repair_from_peers = mode == REPAIR_FROM_PEERS;
    if (rc) {
        storage_state_free(&state);
        return 1;
    }
    if (store_members(n->store, learn_member_text, n) != STORE_OK)
        log_warn("cannot read member addresses from the database: %s", store_errmsg(n->store));

    struct raft_options ro;
    raft_options_default(&ro, n->o.id, node_now_ms() ^ ((uint64_t)getpid() << 32));
    ro.election_ticks = n->o.election_ticks;
    ro.heartbeat_ticks = n->o.heartbeat_ticks;
    ro.trailing_entries = n->o.trailing_entries;
    ro.async_persist = true; /* see "The ready loop" */
    n->raft = raft_create(&ro);
    if (!n->raft) {
        storage_state_free(&state);
        snprintf(err, errcap, "cannot create the Raft core (bad tick options or out of memory)");
        return 2;
    }
    char marker[4200];
    snprintf(marker, sizeof marker, "%s/lost-tail", n->o.data_dir);
    bool marked = access(marker, F_OK) == 0;
    bool lost_tail = state.tail_maybe_acked || marked;
    n->lost_tail = lost_tail; /* the marker is made durable in recover(), before the cut is */
    /* A tail cut now was acknowledged in this term at the latest; an older
     * marker keeps its term (one without a term, or unreadable, counts from
     * this one: later, never earlier, than the truth). */
    n->lost_tail_term = state.hard_state.term;
    if (!state.tail_maybe_acked && marked) {
        FILE *f = fopen(marker, "r");
        unsigned long long t = 0;
        if (f && fscanf(f, "%llu", &t) == 1 && t > 0 && t < n->lost_tail_term)
            n->lost_tail_term = t;
        if (f)
            fclose(f);
    }
    if (lost_tail)
        log_warn("the log's last record was cut though it was all there: it may have been acknowledged; until "
                 "this node holds every committed entry again it neither votes nor stands for election (%s)",
                 marker);
    rc = recover(n, &state, err, errcap);
    storage_state_free(&state);
    if (rc)
        return rc;
    if (!found || empty_dir) {
        /* A new directory (or one that never got past its start): a new
         * incarnation. */
        identity_new(&n->identity, &n->cluster, n->secret, n->secret_len, n->o.join && empty_dir);
        if (identity_save(n->o.data_dir, &n->identity, err, errcap))
            return 1;
    } else {
        identity_reserve(n->o.data_dir); /* room to pin a peer's new directory even on a full disk */
    }

    if (create_replica(n, ro.seed ^ 0x9E3779B97F4A7C15ull, lost_tail, err, errcap))
        return 1;

    if (uv_loop_init(&n->loop)) {
        snprintf(err, errcap, "cannot create the event loop");
        return 1;
    }
    struct net_options no;
    net_options_default(&no, n->o.id, self->raft_addr);
    no.secret = n->secret;
    no.secret_len = n->secret_len;
    /* The largest frame this node's core sends is an APPEND with one entry of
     * max_entry_bytes or a snapshot chunk (1 MiB each by default): 8 MiB
     * leaves room and keeps what one peer connection may buffer small. */
    no.max_frame_bytes = 8u << 20;
    no.seed = ro.seed;
    no.identity = n->identity.self;
    no.check = on_peer_check;
    no.dialed = on_peer_dialed;
    no.note = on_net_note;
    if (net_start(&n->loop, &no, on_message, n, &n->net, err, errcap))
        return 1;
    for (size_t i = 0; i < n->cluster.n; i++)
        if (n->cluster.members[i].id != n->o.id &&
            net_set_peer(n->net, n->cluster.members[i].id, n->cluster.members[i].raft_addr)) {
            snprintf(err, errcap, "bad raft address for node %llu", (unsigned long long)n->cluster.members[i].id);
            return 2;
        }
    if (http_client_create(&n->loop, NULL, &n->client)) {
        snprintf(err, errcap, "out of memory");
        return 1;
    }
    if (node_site_start(n, err, errcap))
        return 1;
    /* X-Forwarded-For counts from --trust-proxy and from the cluster's own
     * hosts (its gateways run there, and followers forward writes). */
    struct http_trust trust;
    http_trust_init(&trust);
    rc = n->o.trust_proxy ? http_trust_add(&trust, n->o.trust_proxy, err, errcap) : 0;
    for (size_t i = 0; rc == 0 && i < n->cluster.n; i++)
        rc = http_trust_add_host(&trust, n->cluster.members[i].http_addr, err, errcap) ||
             http_trust_add_host(&trust, n->cluster.members[i].raft_addr, err, errcap);
    struct http_options ho;
    http_options_default(&ho);
    n->admin_seen.not_before = (int64_t)node_now_ms(); /* admin proofs from before this start may have been used */
    ho.trust = &trust;
    rc = rc ? 2 : http_server_start(&n->loop, self->http_addr, &ho, node_api_handle, n, &n->http, err, errcap) ? 1 : 0;
    http_trust_free(&trust);
    if (rc)
        return rc;

    uv_timer_init(&n->loop, &n->tick_timer);
    uv_timer_init(&n->loop, &n->retry_timer);
    uv_timer_init(&n->loop, &n->stop_timer);
    uv_timer_init(&n->loop, &n->commit_timer);
    uv_check_init(&n->loop, &n->pump_check);
    uv_signal_init(&n->loop, &n->sig_term);
    uv_signal_init(&n->loop, &n->sig_int);
    n->tick_timer.data = n->retry_timer.data = n->stop_timer.data = n->pump_check.data = n->commit_timer.data = n;
    n->sig_term.data = n->sig_int.data = n;
    uv_timer_start(&n->tick_timer, on_tick, n->o.tick_ms, n->o.tick_ms);
    uv_check_start(&n->pump_check, on_check);
    uv_signal_start(&n->sig_term, on_signal, SIGTERM);
    uv_signal_start(&n->sig_int, on_signal, SIGINT);
    n->started_ms = uv_now(&n->loop);
    log_info("serving: raft on %s, http on %s, data in %s", self->raft_addr, self->http_addr, n->o.data_dir);
    replica_pump(n->replica);
    return 0;
}

int node_run(const struct node_options *o)
{
#ifdef M_ARENA_MAX
    /* glibc gives every thread that allocates its own arena, and keeps what
     * it once held: the worker threads that copy snapshots (SQLite's page
     * cache of the copy's connections) held 10-13 MiB each for good, most
     * of a node's RSS at a large database. One arena lets that memory be
     * used again by whoever allocates next. */
    mallopt(M_ARENA_MAX, 1);
#endif
    /* Every file the node creates is private to its user (SPEC §3), also
     * those SQLite creates (the database, its -wal and -shm, snapshot
     * copies), which take their mode from the umask. */
    umask(077);
    struct node *n = calloc(1, sizeof *n);
    if (!n) {
        fprintf(stderr, "linkraft node: out of memory\n");
        return 1;
    }
    n->o = *o;
    n->lock_fd = -1;
    n->apply_entries = malloc(APPLY_RESULTS_MAX * sizeof *n->apply_entries);
    if (!n->apply_entries) {
        free(n);
        fprintf(stderr, "linkraft node: out of memory\n");
        return 1;
    }
    char who[32];
    snprintf(who, sizeof who, "node %llu", (unsigned long long)o->id);
    log_init(who);
    char err[1024] = "";
    int rc = start(n, err, sizeof err);
    if (rc) {
        /* Handles already opened on the loop die with the process. */
        log_error("cannot start: %s", err);
        site_destroy(n->site);
        storage_close(n->storage);
        store_close(n->store);
        if (n->replica)
            replica_destroy(n->replica); /* and the core */
        else
            raft_destroy(n->raft);
        free(n->secret);
        free(n->apply_entries);
        free(n);
        return rc;
    }
    uv_run(&n->loop, UV_RUN_DEFAULT);
    uv_loop_close(&n->loop);
    site_destroy(n->site); /* the loop ran dry: no request is in flight */
    storage_close(n->storage);
    /* A last checkpoint, checked (SQLite's own at close is not), so the
     * next start has no WAL to replay. */
    char cerr[512];
    int exit_code = 0;
    if (store_commit(n->store) != STORE_OK ||
        store_checkpoint(n->db_path, true, cerr, sizeof cerr) == STORE_EIO) {
        log_error("stopping: the database could not be made durable (%s); the log replays it at the next start",
                  store_errmsg(n->store)[0] ? store_errmsg(n->store) : cerr);
        exit_code = 1;
    }
    store_close(n->store);
    replica_destroy(n->replica); /* and the core */
    free(n->secret);
    free(n->apply_entries);
    if (n->lock_fd >= 0)
        close(n->lock_fd); /* the data directory is free for the next process */
    free(n);
    if (exit_code)
        return exit_code;
    log_info("stopped cleanly");
    return 0;
}
