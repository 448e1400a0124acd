/*
 * node.c — a running replica (include/node.h): start-up and recovery, the
 * ready loop that drives the Raft core, client writes and reads, snapshots,
 * and the graceful stop.
 *
 * The ready loop follows THE READY CONTRACT of include/raft.h:
 *   pump():        take a ready; send its send_now messages at once (filling
 *                  snapshot chunks from disk); if it has anything to persist,
 *                  hand it to a worker thread (persist_work) and return —
 *                  the loop keeps stepping messages, ticks and proposals into
 *                  the core meanwhile, which is what batches them into the
 *                  next fsync (group commit);
 *   persist_done:  the fsync is over: send send_after_persist, install a
 *                  received snapshot into SQLite, apply committed entries
 *                  (one SQLite transaction per ready), answer the writes and
 *                  reads they complete, raft_advance, and pump again.
 * Only one storage job runs at a time, so struct storage is never used by
 * two threads at once, and raft_ready is never called with one outstanding.
 */
#include "node/node_internal.h"
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
#include "node/log.h"

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

/* ---- Sending ---------------------------------------------------------------- */

static void send_messages(struct node *n, const struct raft_message *msgs, size_t count)
{
    uint8_t *chunk = NULL;
    for (size_t i = 0; i < count; i++) {
        struct raft_message m = msgs[i];
        if (m.type == RAFT_MSG_SNAPSHOT && m.len && !m.data) {
            /* While an adoption replaces the snapshot on the worker its
             * files are not ours to read; the core sends the chunk again. */
            if (n->job == JOB_ADOPT)
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

/* ---- Writes and reads waiting on the log -------------------------------------- */

static void write_done(struct pending_write *w, int status, raft_index index, const struct store_result *res)
{
    w->cb(w->arg, status, index, res);
    free(w);
}

void node_propose(struct node *n, const uint8_t *data, size_t len, node_write_cb cb, void *arg)
{
    if (n->stopping || n->closing) {
        cb(arg, NODE_ESTOPPING, 0, NULL);
        return;
    }
    if (n->disk_full) {
        cb(arg, NODE_EDISKFULL, 0, NULL);
        return;
    }
    raft_index index;
    raft_term term;
    int rc = raft_propose(n->raft, data, len, &index, &term);
    if (rc == RAFT_ETOOBIG) {
        cb(arg, NODE_ETOOBIG, 0, NULL);
        return;
    }
    if (rc) {
        cb(arg, NODE_ENOTLEADER, 0, NULL);
        return;
    }
    node_wait_entry(n, index, term, cb, arg);
}

void node_wait_entry(struct node *n, raft_index index, raft_term term, node_write_cb cb, void *arg)
{
    struct pending_write *w = calloc(1, sizeof *w);
    if (!w) {
        /* The entry is in the log and may commit; we just cannot report it. */
        cb(arg, NODE_ETIMEOUT, 0, NULL);
        return;
    }
    *w = (struct pending_write){ index, term, cb, arg, uv_now(&n->loop) + n->o.write_timeout_ms, NULL };
    /* A new proposal has the highest index: appended in O(1) (the walk
     * from the head was ~1.6% of a leader's CPU with 64 writes waiting). */
    if (!n->writes_last || n->writes_last->index < index) {
        if (n->writes_last)
            n->writes_last->next = w;
        else
            n->writes = w;
        n->writes_last = w;
        return;
    }
    struct pending_write **p = &n->writes;
    while (*p && (*p)->index < index)
        p = &(*p)->next;
    w->next = *p;
    *p = w;
}

/* Entries up to `upto` were applied (results for those in committed[]).
 * A write whose entry is there with its term succeeded; with another term,
 * a new leader overwrote it (§3.5); missing (covered by an installed
 * snapshot), its outcome is unknown here. */
static void resolve_writes(struct node *n, const struct raft_entry *committed, size_t count,
                           const struct store_result *results, raft_index upto)
{
    size_t k = 0;
    while (n->writes && n->writes->index <= upto) {
        struct pending_write *w = n->writes;
        n->writes = w->next;
        if (!n->writes)
            n->writes_last = NULL;
        while (k < count && committed[k].index < w->index)
            k++;
        if (k < count && committed[k].index == w->index) {
            if (committed[k].term == w->term)
                write_done(w, NODE_OK, w->index, results ? &results[k] : NULL);
            else
                write_done(w, NODE_ELOST, 0, NULL);
        } else {
            write_done(w, NODE_ETIMEOUT, 0, NULL);
        }
    }
}

static void read_done(struct node *n, struct pending_read **link, int status)
{
    struct pending_read *rd = *link;
    *link = rd->next;
    (void)n;
    rd->cb(rd->arg, status);
    free(rd);
}

/* Serves every read whose index is applied. */
static void complete_reads(struct node *n)
{
    raft_index applied = store_applied(n->store);
    for (struct pending_read **p = &n->reads; *p;) {
        if ((*p)->index_known && (*p)->min_index <= applied)
            read_done(n, p, NODE_OK);
        else
            p = &(*p)->next;
    }
}

void node_read(struct node *n, enum node_consistency c, raft_index min_index, unsigned timeout_ms,
               node_read_cb cb, void *arg)
{
    if (c == NODE_READ_STALE || (c == NODE_READ_SESSION && min_index <= store_applied(n->store))) {
        cb(arg, NODE_OK);
        return;
    }
    if (n->closing) {
        cb(arg, NODE_ESTOPPING);
        return;
    }
    struct pending_read *rd = calloc(1, sizeof *rd);
    if (!rd) {
        cb(arg, NODE_ETIMEOUT);
        return;
    }
    rd->cb = cb;
    rd->arg = arg;
    rd->deadline = uv_now(&n->loop) + timeout_ms;
    if (c == NODE_READ_SESSION) {
        rd->min_index = min_index;
        rd->index_known = true;
    } else {
        if (!n->open_batch) {
            struct read_batch *b = calloc(1, sizeof *b);
            if (!b) {
                free(rd);
                cb(arg, NODE_ETIMEOUT);
                return;
            }
            b->context = ++n->next_context;
            b->next = n->batches;
            n->batches = b;
            n->open_batch = b;
        }
        rd->batch = n->open_batch;
    }
    rd->next = n->reads;
    n->reads = rd;
}

static void fail_batch_reads(struct node *n, struct read_batch *b, int status)
{
    for (struct pending_read **p = &n->reads; *p;) {
        if ((*p)->batch == b)
            read_done(n, p, status);
        else
            p = &(*p)->next;
    }
}

static void drop_batch(struct node *n, struct read_batch *b)
{
    for (struct read_batch **p = &n->batches; *p; p = &(*p)->next)
        if (*p == b) {
            *p = b->next;
            break;
        }
    if (n->open_batch == b)
        n->open_batch = NULL;
    free(b);
}

/* One read-index request for all linearizable reads that arrived since the
 * last one (§6.4 batching). */
static void submit_read_batch(struct node *n)
{
    struct read_batch *b = n->open_batch;
    if (!b)
        return;
    n->open_batch = NULL;
    if (raft_read_index(n->raft, b->context) != RAFT_OK) {
        fail_batch_reads(n, b, NODE_ENOTLEADER);
        drop_batch(n, b);
        return;
    }
    b->requested = true;
}

static void take_read_states(struct node *n, const struct raft_read_state *states, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        struct read_batch *b = n->batches;
        while (b && b->context != states[i].context)
            b = b->next;
        if (!b)
            continue; /* already timed out */
        if (!states[i].ok) {
            fail_batch_reads(n, b, NODE_ENOTLEADER);
        } else {
            for (struct pending_read *rd = n->reads; rd; rd = rd->next)
                if (rd->batch == b) {
                    rd->batch = NULL;
                    rd->min_index = states[i].index;
                    rd->index_known = true;
                }
        }
        drop_batch(n, b);
    }
}

static void expire_waiters(struct node *n)
{
    uint64_t now = uv_now(&n->loop);
    struct pending_write *prev = NULL;
    for (struct pending_write **p = &n->writes; *p;) {
        if ((*p)->deadline <= now) {
            struct pending_write *w = *p;
            *p = w->next;
            if (w == n->writes_last)
                n->writes_last = prev;
            write_done(w, NODE_ETIMEOUT, 0, NULL);
        } else {
            prev = *p;
            p = &(*p)->next;
        }
    }
    for (struct pending_read **p = &n->reads; *p;) {
        if ((*p)->deadline <= now)
            read_done(n, p, NODE_ETIMEOUT);
        else
            p = &(*p)->next;
    }
    /* A read-index request whose answer was lost (the leader's reply, or
     * our request, dropped) would otherwise be kept forever: once no read
     * waits on it, it goes. */
    for (struct read_batch *b = n->batches, *next; b; b = next) {
        next = b->next;
        bool waited_on = false;
        for (struct pending_read *rd = n->reads; rd && !waited_on; rd = rd->next)
            waited_on = rd->batch == b;
        if (b->requested && !waited_on)
            drop_batch(n, b);
    }
}

/* ---- Snapshots ---------------------------------------------------------------- */

static void pump(struct node *n);
static bool commit_store(struct node *n);
static void note_disk_full(struct node *n, const char *why);
static void draw_snapshot_gap(struct node *n);

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

static void finish_barrier(struct node *n);

/* A snapshot install waiting for a worker still reading the old database
 * file goes on once none does. */
static void resume_barrier(struct node *n)
{
    if (n->barrier_waits && !n->snap_job && !n->ckpt_job) {
        n->barrier_waits = false;
        finish_barrier(n);
        pump(n);
    }
}

static void snapshot_done(uv_work_t *req, int status)
{
    struct node *n = req->data;
    n->snap_job = false;
#ifdef M_ARENA_MAX
    malloc_trim(0); /* the copy's caches are freed: give the pages back */
#endif
    if (!status && n->snap_rc == STORE_EIO)
        fatal(n, "copying the database for a snapshot", n->snap_err);
    if (!status && n->snap_rc == STORE_ECORRUPT)
        fatal(n, "the database is damaged; it is not copied into a snapshot (at the next start the node "
                 "rebuilds it from its snapshot and log)", n->snap_err);
    if (status || n->snap_rc) {
        resume_barrier(n);
        log_warn("snapshot of the database failed (will retry later): %s", n->snap_rc ? n->snap_err : "cancelled");
        n->last_snapshot = store_applied(n->store); /* do not retry at once */
        draw_snapshot_gap(n);
        return;
    }
    struct raft_snapshot_meta meta = { .index = n->snap_index, .term = raft_term_at(n->raft, n->snap_index),
                                       .size = n->snap_size, .crc = n->snap_crc };
    if (meta.term == 0 || raft_config_at(n->raft, n->snap_index, &meta.config) != RAFT_OK) {
        /* A snapshot install overtook it (the log was reset): that install
         * may be waiting for this job (finish_barrier). */
        log_warn("snapshot at %llu no longer fits the log; skipped", (unsigned long long)n->snap_index);
        resume_barrier(n);
        return;
    }
    n->adopt_meta = meta;
    n->adopt_pending = true;
    resume_barrier(n);
    pump(n);
}

/* Every node reaches the same index at about the same moment, and copying
 * the database is the heaviest thing a node does: with the same interval all
 * of them would copy at once (the leader and both followers stalled
 * together). A gap drawn anew each time keeps them apart. */
static void draw_snapshot_gap(struct node *n)
{
    raft_index base = n->o.snapshot_entries, spread = base / 2 < UINT32_MAX ? base / 2 : UINT32_MAX;
    n->snapshot_gap = base - base / 4 + (spread ? randombytes_uniform((uint32_t)spread) : 0);
}

static void maybe_snapshot(struct node *n)
{
    raft_index applied = store_applied(n->store);
    /* One snapshot at a time, from the copy to its adoption: both use the
     * same temporary file. */
    if (n->snap_job || n->adopt_pending || n->job == JOB_ADOPT || n->closing || n->barrier_waits ||
        applied < n->last_snapshot + n->snapshot_gap)
        return;
    if (!commit_store(n)) { /* the copy is made from what is committed */
        note_disk_full(n, store_errmsg(n->store));
        return;
    }
    n->snap_job = true;
    n->snap_started_ms = uv_now(&n->loop);
    n->snap_req.data = n;
    if (uv_queue_work(&n->loop, &n->snap_req, snapshot_work, snapshot_done))
        n->snap_job = false;
}

static void adopt_work(uv_work_t *req)
{
    struct node *n = req->data;
    n->job_rc = storage_snapshot_adopt(n->storage, storage_snapshot_tmp_path(n->storage), &n->adopt_meta);
    if (n->job_rc)
        snprintf(n->job_err, sizeof n->job_err, "%s", storage_errmsg(n->storage));
}

static void adopt_done(uv_work_t *req, int status)
{
    struct node *n = req->data;
    n->job = JOB_NONE;
    storage_get_stats(n->storage, &n->storage_stats);
    (void)status;
    if (n->job_rc == STORAGE_ENOSPC || n->job_rc == STORAGE_ENOMEM || n->job_rc == STORAGE_EINVAL) {
        /* Full disk, or overtaken (a leader's snapshot was installed
         * meanwhile): nothing is lost, the next snapshot will do. */
        log_warn("cannot keep a snapshot (will retry later): %s", n->job_err);
    } else if (n->job_rc) {
        fatal(n, "saving a snapshot", n->job_err);
    } else {
        int rc = raft_snapshot_taken(n->raft, n->adopt_meta.index, n->adopt_meta.size, n->adopt_meta.crc);
        if (rc)
            log_warn("the core refused snapshot %llu: %s", (unsigned long long)n->adopt_meta.index, raft_strerror(rc));
        uv_update_time(&n->loop);
        log_info("snapshot at index %llu (%llu bytes) in %llu ms", (unsigned long long)n->adopt_meta.index,
                 (unsigned long long)n->adopt_meta.size, (unsigned long long)(uv_now(&n->loop) - n->snap_started_ms));
    }
    n->last_snapshot = n->adopt_meta.index;
    draw_snapshot_gap(n);
    pump(n);
}

/* ---- The ready loop ------------------------------------------------------------
 *
 * The core runs with async_persist (include/raft.h, ASYNCHRONOUS
 * PERSISTENCE). A ready's writes are merged into n->pending and the ready is
 * applied and advanced at once; the worker thread writes n->writing
 * meanwhile, one fdatasync for every ready merged into it, and when it is
 * durable its messages leave and raft_persisted tells the core. So the
 * leader sends new entries to its followers while its own fsync runs, and
 * commits and answers as soon as a quorum has them, without waiting for a
 * ready to come round. A ready with snapshot data waits until every write
 * before it is done, then is persisted, applied and advanced the plain way
 * (JOB_PERSIST).
 */

static bool has_snapshot_data(const struct raft_ready *rd)
{
    return rd->snapshot_chunk.len || rd->snapshot_chunk.meta.index || rd->snapshot_install;
}

/* Log writes in a ready without snapshot data. */
static bool needs_log_write(const struct raft_ready *rd)
{
    return rd->truncate_from || rd->n_entries || rd->hard_state_changed;
}

/* The log part of a write, on the worker, in the ready contract's order:
 * truncation, entries, hard state, one fsync, then compaction. Sets
 * n->job_rc (and job_err). */
static void write_log(struct node *n, raft_index truncate_from, const struct raft_entry *entries, size_t count,
                      const struct raft_hard_state *hs, raft_index compact_before)
{
    struct storage *st = n->storage;
    int rc = n->job_rc;
    if (!rc && truncate_from)
        rc = storage_truncate(st, truncate_from);
    if (!rc && n->write_retry && count)
        rc = storage_truncate(st, entries[0].index); /* a retry: drop what the failed try left */
    if (!rc && count)
        rc = storage_append(st, entries, count);
    if (!rc && hs)
        rc = storage_set_hard_state(st, hs);
    if (!rc)
        rc = storage_sync(st);
    if (!rc && compact_before)
        rc = storage_compact(st, compact_before);
    n->job_rc = rc;
    if (rc)
        snprintf(n->job_err, sizeof n->job_err, "%s", storage_errmsg(st));
}

/* The barrier ready (snapshot data), on the worker. */
static void persist_work(uv_work_t *req)
{
    struct node *n = req->data;
    const struct raft_ready *rd = &n->rd;
    int rc = STORAGE_OK;
    if (rd->snapshot_chunk.meta.index)
        rc = storage_snapshot_write_chunk(n->storage, &rd->snapshot_chunk);
    if (!rc && rd->snapshot_install)
        rc = storage_snapshot_install(n->storage, rd->snapshot_install);
    n->job_rc = rc;
    write_log(n, rd->truncate_from, rd->entries, rd->n_entries, rd->hard_state_changed ? &rd->hard_state : NULL,
              rd->compact_before);
}

/* n->writing, on the worker. */
static void write_work(uv_work_t *req)
{
    struct node *n = req->data;
    const struct write_batch *b = &n->writing;
    n->job_rc = STORAGE_OK;
    write_log(n, b->truncate_from, b->entries, b->n_entries, b->hs_changed ? &b->hs : NULL, b->compact_before);
}

static void note_soft_state(struct node *n, const struct raft_ready *rd)
{
    if (rd->role != n->last_role || rd->leader != n->last_leader || rd->term != n->last_term) {
        log_info("term %llu: %s, leader %llu", (unsigned long long)rd->term, raft_role_name(rd->role),
                 (unsigned long long)rd->leader);
        if (n->last_role == RAFT_LEADER && rd->role != RAFT_LEADER) {
            /* Read batches asked of ourselves as leader are failed by the
             * core (ready.reads, ok = false); nothing else to do here. */
        }
        n->last_role = rd->role;
        n->last_leader = rd->leader;
        n->last_term = rd->term;
    }
}

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

static void note_disk_full(struct node *n, const char *why);

/* ---- The database's transaction ------------------------------------------------
 *
 * Applied entries join one open SQLite transaction that is committed every
 * COMMIT_EVERY_MS or COMMIT_EVERY_ENTRIES, not after every ready: a commit
 * writes every page the batch touched to the WAL, and at thousands of writes
 * a second most batches touch the same pages. Reads on this node see the
 * open transaction. A crash loses only what the log replays at restart.
 */
#define COMMIT_EVERY_MS 100
#define COMMIT_EVERY_ENTRIES 2048

/* A failed commit or apply rolls the database back to its last commit:
 * this applies again, from the core's log, what it had applied since (their
 * answers went out already; the results are the same). Returns false while
 * the disk is still full. */
static bool catch_up_store(struct node *n, raft_index upto)
{
    while (store_applied(n->store) < upto) {
        const struct raft_entry *e = raft_entry_at(n->raft, store_applied(n->store) + 1);
        if (!e)
            fatal(n, "applying entries again after the database rolled back", "the entry is no longer in memory");
        int rc = store_apply(n->store, e, 1, NULL);
        if (rc == STORE_EFULL)
            return false;
        if (rc != STORE_OK)
            fatal(n, "applying committed entries to the database", store_errmsg(n->store));
    }
    return true;
}

static void on_commit_timer(uv_timer_t *t);

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
    if (!status && (n->ckpt_rc == STORE_EIO || n->ckpt_rc == STORE_ECORRUPT))
        fatal(n, "checkpointing the database", n->ckpt_err);
    /* A full disk: retried after each commit, said once until it works. */
    if (!status && n->ckpt_rc && n->ckpt_rc != STORE_EAGAIN && !n->ckpt_warned)
        log_warn("checkpoint of the database failed (the WAL keeps everything; will retry): %s", n->ckpt_err);
    if (!status && n->ckpt_rc != STORE_EAGAIN)
        n->ckpt_warned = n->ckpt_rc != STORE_OK;
    resume_barrier(n);
}

/* Runs a checkpoint on a worker (its fsyncs off the loop) when the WAL has
 * grown; its result is checked, unlike SQLite's automatic ones (store.h). */
static void maybe_checkpoint(struct node *n)
{
    if (n->ckpt_job || n->closing || n->barrier_waits || store_wal_pages(n->store) < CHECKPOINT_PAGES)
        return;
    n->ckpt_job = true;
    n->ckpt_req.data = n;
    if (uv_queue_work(&n->loop, &n->ckpt_req, checkpoint_work, checkpoint_done))
        n->ckpt_job = false;
}

/* Commits now; false if the disk is full (the store rolled back). */
static bool commit_store(struct node *n)
{
    uv_timer_stop(&n->commit_timer);
    int rc = store_commit(n->store);
    n->commit_failed = rc == STORE_EFULL;
    if (rc == STORE_EFULL) {
        /* The store rolled back to its last commit; apply that again at
         * once (in memory, in a new transaction) so that reads served
         * while the disk is full still show everything applied. */
        catch_up_store(n, raft_applied_index(n->raft));
        return false;
    }
    if (rc != STORE_OK)
        fatal(n, "committing applied entries to the database", store_errmsg(n->store));
    maybe_checkpoint(n);
    return true;
}

static void schedule_commit(struct node *n)
{
    if (store_applied(n->store) - store_committed(n->store) >= COMMIT_EVERY_ENTRIES) {
        if (!commit_store(n))
            note_disk_full(n, store_errmsg(n->store));
    } else if (store_applied(n->store) > store_committed(n->store) && !uv_is_active((uv_handle_t *)&n->commit_timer)) {
        uv_timer_start(&n->commit_timer, on_commit_timer, COMMIT_EVERY_MS, 0);
    }
}

static void on_commit_timer(uv_timer_t *t)
{
    struct node *n = t->data;
    if (n->applying)
        return; /* a full disk holds up an apply; retry_disk commits after it */
    if (!commit_store(n))
        note_disk_full(n, store_errmsg(n->store));
}

/* Applies what is left of rd's committed entries (from n->apply_done).
 * Returns false if the disk is full: the rest waits for a retry, the
 * ready stays outstanding, and nothing is lost (the log has it all). */
static bool apply_committed(struct node *n, const struct raft_ready *rd)
{
    struct store_result *results = n->results;
    while (n->apply_done < rd->n_committed) {
        if (!catch_up_store(n, rd->committed[n->apply_done].index - 1))
            return false;
        size_t batch = rd->n_committed - n->apply_done;
        if (batch > APPLY_RESULTS_MAX)
            batch = APPLY_RESULTS_MAX;
        const struct raft_entry *e = rd->committed + n->apply_done;
        int rc = store_apply(n->store, e, batch, results);
        if (rc == STORE_EFULL)
            return false;
        if (rc != STORE_OK)
            fatal(n, "applying committed entries to the database", store_errmsg(n->store));
        learn_members_from(n, e, batch);
        resolve_writes(n, e, batch, results, e[batch - 1].index);
        n->apply_done += batch;
    }
    schedule_commit(n);
    return true;
}

static void retry_disk(uv_timer_t *t);

static void note_disk_full(struct node *n, const char *why)
{
    if (!n->disk_full)
        log_error("the disk is full (%s): refusing writes, still serving reads; retrying every second", why);
    n->disk_full = true;
    uv_timer_start(&n->retry_timer, retry_disk, 1000, 0);
}

static void note_disk_ok(struct node *n)
{
    if (n->disk_full && !n->write_failed && !n->persist_failed && !n->commit_failed && !n->applying) {
        log_info("the disk has space again: taking writes");
        n->disk_full = false;
    }
}

/* Applies rd's committed entries, hands over its reads, and advances the
 * core; re-entered after a full disk (the ready stays outstanding, nothing
 * is lost: the log has it all). */
static void finish_apply(struct node *n)
{
    struct raft_ready *rd = &n->rd;
    if (!apply_committed(n, rd)) {
        note_disk_full(n, store_errmsg(n->store));
        return;
    }
    take_read_states(n, rd->reads, rd->n_reads);
    raft_advance(n->raft, rd);
    n->ready_outstanding = false;
    n->applying = false;
    note_disk_ok(n);
    complete_reads(n);
    maybe_snapshot(n);
}

static void start_apply(struct node *n)
{
    n->apply_done = 0;
    n->applying = true;
    finish_apply(n);
}

/* The barrier ready is durable: its messages, the snapshot, then apply. */
static void finish_barrier(struct node *n)
{
    struct raft_ready *rd = &n->rd;
    if (rd->snapshot_install && (n->snap_job || n->ckpt_job)) {
        /* A worker still reads (or checkpoints) the file the restore
         * replaces: wait for it (resume_barrier). */
        n->barrier_waits = true;
        return;
    }
    send_messages(n, rd->send_after_persist, rd->n_send_after_persist);
    raft_persisted(n->raft, rd->seq);
    if (rd->snapshot_install) {
        char err[512];
        const char *path = storage_snapshot_path(n->storage);
        if (!path || store_restore(n->store, path, err, sizeof err) != STORE_OK)
            fatal(n, "restoring the database from the leader's snapshot", path ? err : "no snapshot file");
        log_info("installed the leader's snapshot at index %llu", (unsigned long long)rd->snapshot_install->index);
        store_members(n->store, learn_member_text, n);
        n->last_snapshot = rd->snapshot_install->index;
        resolve_writes(n, NULL, 0, NULL, rd->snapshot_install->index);
    }
    start_apply(n);
}

static void start_jobs(struct node *n);

/* A ready without snapshot data: its writes join the next batch (or, with
 * none, its messages ride on the write in flight or leave now), then it is
 * applied and advanced. */
static void take_ready(struct node *n)
{
    struct raft_ready *rd = &n->rd;
    bool in_flight = n->job == JOB_WRITE || n->write_failed;
    if (needs_log_write(rd) || !write_batch_empty(&n->pending)) {
        if (write_batch_add(&n->pending, rd))
            fatal(n, "queueing a disk write", "out of memory");
    } else {
        /* Nothing of this ready to write: its messages depend only on what
         * earlier readies wrote, all in the write in flight if any. */
        if (in_flight) {
            if (write_batch_add_after(&n->writing, rd->send_after_persist, rd->n_send_after_persist))
                fatal(n, "queueing messages", "out of memory");
        } else {
            send_messages(n, rd->send_after_persist, rd->n_send_after_persist);
        }
        if (rd->compact_before > n->pending.compact_before)
            n->pending.compact_before = rd->compact_before;
    }
    start_jobs(n); /* the disk works while we apply */
    start_apply(n);
}

static void batch_written(uv_work_t *req, int status);
static void persist_done(uv_work_t *req, int status);

static void queue_job(struct node *n, enum job_kind kind, uv_work_cb work, uv_after_work_cb done)
{
    n->job = kind;
    n->job_req.data = n;
    if (uv_queue_work(&n->loop, &n->job_req, work, done))
        fatal(n, "starting a disk write", "uv_queue_work failed");
}

/* Starts the next storage job if none runs: a snapshot adoption, the
 * pending writes, or (once those are done) the barrier ready. */
static void start_jobs(struct node *n)
{
    if (n->job != JOB_NONE || n->write_failed || n->persist_failed || n->closing)
        return;
    if (n->adopt_pending) {
        n->adopt_pending = false;
        n->job = JOB_ADOPT;
        n->job_req.data = n;
        if (uv_queue_work(&n->loop, &n->job_req, adopt_work, adopt_done))
            n->job = JOB_NONE;
        return;
    }
    if (!write_batch_empty(&n->pending)) {
        struct write_batch t = n->writing;
        n->writing = n->pending;
        n->pending = t;
        write_batch_reset(&n->pending);
        write_batch_seal(&n->writing);
        n->write_retry = false;
        queue_job(n, JOB_WRITE, write_work, batch_written);
        return;
    }
    if (n->rd_barrier) {
        n->rd_barrier = false;
        n->write_retry = false;
        queue_job(n, JOB_PERSIST, persist_work, persist_done);
    }
}

static void retry_disk(uv_timer_t *t)
{
    struct node *n = t->data;
    if (n->job == JOB_NONE && n->write_failed) {
        n->write_failed = false;
        n->write_retry = true;
        queue_job(n, JOB_WRITE, write_work, batch_written);
    } else if (n->job == JOB_NONE && n->persist_failed) {
        n->persist_failed = false;
        n->write_retry = true;
        queue_job(n, JOB_PERSIST, persist_work, persist_done);
    }
    if (n->applying) {
        finish_apply(n);
    } else if (n->commit_failed) {
        /* The database went back to its last commit: apply again, commit. */
        if (catch_up_store(n, raft_applied_index(n->raft)) && commit_store(n))
            note_disk_ok(n);
        else
            note_disk_full(n, store_errmsg(n->store));
    }
    pump(n);
}

static bool full_disk_error(int rc)
{
    return rc == STORAGE_ENOSPC || rc == STORAGE_ENOMEM;
}

/* A write job ended: false if it hit a full disk (*failed is set; the
 * retry timer runs it again); any other error is fatal. */
static bool write_job_ok(struct node *n, bool *failed)
{
    n->job = JOB_NONE;
    storage_get_stats(n->storage, &n->storage_stats); /* no storage job runs now */
    if (full_disk_error(n->job_rc)) {
        *failed = true;
        note_disk_full(n, n->job_err);
        return false;
    }
    if (n->job_rc)
        fatal(n, "writing the Raft log", n->job_err);
    return true;
}

static void batch_written(uv_work_t *req, int status)
{
    struct node *n = req->data;
    (void)status;
    if (!write_job_ok(n, &n->write_failed))
        return;
    struct write_batch *b = &n->writing;
    send_messages(n, b->after, b->n_after);
    if (b->seq) /* also a batch with only a hard state: a new leader waits for its term */
        raft_persisted(n->raft, b->seq);
    write_batch_reset(b);
    note_disk_ok(n);
    pump(n);
}

static void persist_done(uv_work_t *req, int status)
{
    struct node *n = req->data;
    (void)status;
    if (!write_job_ok(n, &n->persist_failed))
        return;
    note_disk_ok(n);
    finish_barrier(n);
    pump(n);
}

static void begin_close(struct node *n);

static void pump(struct node *n)
{
    if (n->closing)
        return;
    submit_read_batch(n);
    /* While the log or the database cannot be written no ready is taken: a
     * leader goes silent, so the others elect one whose disk works. */
    while (!n->ready_outstanding && !n->write_failed && !n->commit_failed && raft_has_ready(n->raft)) {
        int rc = raft_ready(n->raft, &n->rd);
        if (rc)
            fatal(n, "taking the next Raft step", raft_strerror(rc));
        n->ready_outstanding = true;
        note_soft_state(n, &n->rd);
        send_messages(n, n->rd.send_now, n->rd.n_send_now);
        if (has_snapshot_data(&n->rd)) {
            n->rd_barrier = true; /* start_jobs runs it once the writes before it are done */
            break;
        }
        take_ready(n);
    }
    start_jobs(n);
    if (n->stopping && n->job == JOB_NONE && !n->ready_outstanding && write_batch_empty(&n->pending) &&
        !n->write_failed && (raft_role(n->raft) != RAFT_LEADER || !n->handing_over))
        begin_close(n);
}

static void on_check(uv_check_t *c)
{
    pump(c->data);
}

static void on_tick(uv_timer_t *t)
{
    struct node *n = t->data;
    if (store_damage_seen())
        fatal(n, "a damaged page of the database was read (its checksum does not match; the read got an "
                 "error, not the data)", "restart the node: it checks the database and rebuilds it from the "
                 "snapshot and the log");
    raft_tick(n->raft);
    expire_waiters(n);
    pump(n);
}

static void on_message(void *ctx, const struct raft_message *m)
{
    struct node *n = ctx;
    if (n->bootstrap_pending)
        return; /* not a member of anything yet: it must neither vote nor take entries */
    raft_step(n->raft, m);
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
        pump(n);
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
    return raft_leader(n->raft) != 0 && store_applied(n->store) >= raft_commit_index(n->raft) && !n->stopping &&
           !n->disk_full;
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
    while (n->writes) {
        struct pending_write *w = n->writes;
        n->writes = w->next;
        if (!n->writes)
            n->writes_last = NULL;
        write_done(w, NODE_ESTOPPING, 0, NULL);
    }
    while (n->reads)
        read_done(n, &n->reads, NODE_ESTOPPING);
    while (n->batches)
        drop_batch(n, n->batches);
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
    if (n->job == JOB_NONE)
        begin_close(n);
    else
        uv_timer_start(&n->stop_timer, on_stop_timeout, 50, 0);
}

/* The most caught-up voter other than us, to hand leadership to. */
static raft_id transfer_target(struct node *n)
{
    struct raft_progress prs[RAFT_MAX_MEMBERS];
    size_t count = raft_progress(n->raft, prs, RAFT_MAX_MEMBERS);
    const struct raft_config *c = raft_configuration(n->raft);
    raft_id best = 0;
    raft_index best_match = 0;
    for (size_t i = 0; i < count && i < RAFT_MAX_MEMBERS; i++) {
        const struct raft_member *m = raft_config_find(c, prs[i].id);
        if (prs[i].id == n->o.id || !m || m->role != RAFT_VOTER)
            continue;
        if (!best || prs[i].match > best_match) {
            best = prs[i].id;
            best_match = prs[i].match;
        }
    }
    return best;
}

void node_request_stop(struct node *n)
{
    if (n->stopping)
        return;
    n->stopping = true;
    if (raft_role(n->raft) == RAFT_LEADER) {
        raft_id to = transfer_target(n);
        if (to && raft_transfer_leader(n->raft, to) == RAFT_OK) {
            n->handing_over = true;
            log_info("stopping: handing leadership to node %llu first", (unsigned long long)to);
        } else {
            log_info("stopping (no other voter to hand leadership to)");
        }
    } else {
        log_info("stopping");
    }
    uv_timer_start(&n->stop_timer, on_stop_timeout, 3ull * n->o.election_ticks * n->o.tick_ms, 0);
    pump(n);
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
    bool restore = state->have_snapshot && applied < state->snapshot.index;
    if (restore)
        applied = state->snapshot.index;
    n->last_snapshot = state->have_snapshot ? state->snapshot.index : 0;
    draw_snapshot_gap(n);
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

    struct storage_state state;
    memset(&state, 0, sizeof state);
    struct storage_options so;
    storage_options_default(&so);
    so.defer_changes = true; /* finished in recover(), once the database is known to fit */
    if (n->o.segment_bytes)
        so.segment_bytes = n->o.segment_bytes;
    int rc = storage_open(n->o.data_dir, NULL, &so, &n->storage, &state, err, errcap);
    if (rc)
        return 1;
    if (state.recovery_note[0])
        log_warn("log recovery: %s", state.recovery_note);
    if (snprintf(n->db_path, sizeof n->db_path, "%s/state.db", n->o.data_dir) >= (int)sizeof n->db_path) {
        storage_state_free(&state);
        snprintf(err, errcap, "data directory path too long");
        return 2;
    }
    rc = store_open(n->db_path, &n->store, err, errcap);
    if (rc == STORE_ECORRUPT) {
        /* The snapshot (CRC32C checked by storage_open) and the log (a
         * CRC32C per record) hold everything the database held: rebuild it
         * from them rather than serve or ship damaged data. */
        log_error("%s; moving it aside to %s.damaged and rebuilding it from the snapshot and the log", err,
                  n->db_path);
        rc = store_set_aside(n->db_path, err, errcap);
        if (rc == STORE_OK)
            rc = store_open(n->db_path, &n->store, err, errcap);
    }
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
    bool empty_dir = !state.have_snapshot && state.n_entries == 0 && state.hard_state.term == 0;
    rc = recover(n, &state, err, errcap);
    storage_state_free(&state);
    if (rc)
        return rc;
    bool found;
    if (identity_load(n->o.data_dir, &n->identity, &found, err, errcap))
        return 1;
    if (!found || empty_dir) {
        /* A new directory (or one that never got past its start): a new
         * incarnation. A directory of an older linkraft gets one too. */
        identity_new(&n->identity, &n->cluster, n->secret, n->secret_len, n->o.join && empty_dir);
        if (identity_save(n->o.data_dir, &n->identity, err, errcap))
            return 1;
    }

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
    n->last_role = raft_role(n->raft);
    n->started_ms = uv_now(&n->loop);
    log_info("serving: raft on %s, http on %s, data in %s", self->raft_addr, self->http_addr, n->o.data_dir);
    pump(n);
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
    n->results = malloc(APPLY_RESULTS_MAX * sizeof *n->results);
    if (!n->results) {
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
        raft_destroy(n->raft);
        free(n->secret);
        free(n->results);
        write_batch_free(&n->writing);
        write_batch_free(&n->pending);
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
    raft_destroy(n->raft);
    free(n->secret);
    free(n->results);
    write_batch_free(&n->writing);
    write_batch_free(&n->pending);
    if (n->lock_fd >= 0)
        close(n->lock_fd); /* the data directory is free for the next process */
    free(n);
    if (exit_code)
        return exit_code;
    log_info("stopped cleanly");
    return 0;
}
