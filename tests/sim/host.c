/*
 * host.c — each simulated node runs the shipped replica driver
 * (src/replica/replica.h), the very code the node process runs, over a
 * simulated host:
 *
 *   I/O:  the storage job (a merged write batch, a ready with snapshot data,
 *         a snapshot adoption) goes to the node's simulated disk (disk.c) at
 *         once as a pending batch and completes after a simulated fsync
 *         (EV_FSYNC: replica_write_done / replica_adopt_done); messages go
 *         to the simulated network (net.c); now() is virtual time; the
 *         driver's commit and retry timers are events (EV_TIMER);
 *   state machine: the KV registers of kv.c, made persistent as SQLite is
 *         with group commit: `kv` is what is applied (the open
 *         transaction), `kv_durable` what the last commit kept. A crash
 *         keeps only kv_durable, which may be behind the log (the log
 *         replays the rest) and must never be ahead of the durable log
 *         (checked at every commit and at every restart).
 *
 * Clients (kv.c) propose and read through the driver (replica_propose,
 * replica_read) and get their answers from its waiters.
 */
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "sim.h"

/* ---- I/O ------------------------------------------------------------------------ */

/* A disk write's latency; now and then one stalls for longer than an
 * election timeout (a device flushing its cache, a saturated array). */
static uint64_t fsync_delay(struct sim *s)
{
    uint64_t d = sim_range(&s->rng, s->p.fsync_min, s->p.fsync_max);
    if (sim_chance(&s->rng, s->p.stall_pm)) {
        d += sim_range(&s->rng, 150000, 800000);
        s->stalls++;
    }
    return d;
}

static uint64_t io_now(void *ctx)
{
    struct sim_node *n = ctx;
    return n->s->now / 1000;
}

static void io_send(void *ctx, const struct raft_message *msgs, size_t count)
{
    struct sim_node *n = ctx;
    for (size_t i = 0; i < count && !n->s->failed; i++)
        sim_net_send(n->s, n, &msgs[i]);
}

static void schedule_job_done(struct sim *s, struct sim_node *n, uint64_t delay)
{
    n->job_busy = true;
    sim_schedule(s, (struct sim_event){ .at = s->now + delay, .type = EV_FSYNC, .node = n->slot,
                                        .incarnation = n->incarnation });
}

static void io_write(void *ctx, const struct replica_write *w)
{
    struct sim_node *n = ctx;
    struct sim *s = n->s;
    /* The disk takes the batch as the ready contract orders it (disk.c). */
    struct raft_ready rd;
    memset(&rd, 0, sizeof rd);
    rd.truncate_from = w->truncate_from;
    rd.entries = (struct raft_entry *)w->entries;
    rd.n_entries = w->n_entries;
    if (w->hs) {
        rd.hard_state_changed = true;
        rd.hard_state = *w->hs;
    }
    if (w->chunk)
        rd.snapshot_chunk = *w->chunk;
    rd.snapshot_install = w->install;
    n->job_adopt = false;
    n->job_batch = sim_disk_write(&n->disk, &rd);
    n->job_compact = w->compact_before;
    n->job_trace_last = w->n_entries ? w->entries[w->n_entries - 1].index : 0;
    schedule_job_done(s, n, n->job_batch ? fsync_delay(s) : 0);
}

static void io_snapshot(void *ctx)
{
    struct sim_node *n = ctx;
    struct sim *s = n->s;
    /* The copy is made from what the state machine committed, which the
     * driver has just made everything applied. */
    n->snap_index = n->durable_applied;
    sim_kv_serialize(&n->kv_durable, n->snap_index, n->snap_buf);
    sim_schedule(s, (struct sim_event){ .at = s->now + sim_range(&s->rng, 0, 5000), .type = EV_SNAPSHOT,
                                        .node = n->slot, .incarnation = n->incarnation });
}

static void io_adopt(void *ctx, const struct raft_snapshot_meta *meta)
{
    struct sim_node *n = ctx;
    n->job_adopt = true;
    n->adopt_meta = *meta;
    schedule_job_done(n->s, n, fsync_delay(n->s));
}

static void io_arm(void *ctx, enum replica_timer which, uint64_t ms)
{
    struct sim_node *n = ctx;
    n->timer_gen[which]++;
    sim_schedule(n->s, (struct sim_event){ .at = n->s->now + ms * 1000, .type = EV_TIMER, .node = n->slot,
                                           .incarnation = n->incarnation,
                                           .arg = (uint64_t)which | (uint64_t)n->timer_gen[which] << 8 });
}

static void io_cancel(void *ctx, enum replica_timer which)
{
    struct sim_node *n = ctx;
    n->timer_gen[which]++;
}

static void io_log(void *ctx, enum replica_log_level level, const char *msg)
{
    struct sim_node *n = ctx;
    (void)level;
    SIM_TRACE(n->s, "n%llu: %s", (unsigned long long)n->id, msg);
}

static void io_fatal(void *ctx, const char *what, const char *detail)
{
    struct sim_node *n = ctx;
    sim_fail(n->s, "n%llu: the replica stopped: %s: %s", (unsigned long long)n->id, what, detail);
}

static void io_stopped(void *ctx)
{
    (void)ctx; /* simulated nodes crash; they are never stopped */
}

/* ---- The persistent KV state machine --------------------------------------------------- */

static raft_index durable_log_end(const struct sim_disk *d)
{
    return d->n_log ? d->log[d->n_log - 1].index : (d->snap.have ? d->snap.meta.index : 0);
}

static raft_index sm_applied(void *ctx)
{
    struct sim_node *n = ctx;
    return n->applied;
}

static raft_index sm_committed(void *ctx)
{
    struct sim_node *n = ctx;
    return n->sm_poison ? n->applied : n->durable_applied; /* poison: nothing to commit */
}

static enum replica_sm_status sm_apply(void *ctx, const struct raft_entry *e, size_t count, void *results)
{
    struct sim_node *n = ctx;
    struct sim *s = n->s;
    (void)results;
    if (n->sm_poison) {
        sim_fail(s, "apply: n%llu applies %llu onto a state machine it is repairing from peers (no leader's "
                 "snapshot restored yet)", (unsigned long long)n->id, (unsigned long long)e[0].index);
        return REPLICA_SM_FAILED;
    }
    for (size_t i = 0; i < count && !s->failed; i++) {
        uint32_t key;
        uint64_t value, op;
        if (e[i].type == RAFT_ENTRY_COMMAND) {
            if (!sim_cmd_decode(e[i].data, e[i].len, &key, &value, &op)) {
                sim_fail(s, "apply: n%llu got a malformed command at %llu (%u bytes)", (unsigned long long)n->id,
                         (unsigned long long)e[i].index, e[i].len);
                return REPLICA_SM_FAILED;
            }
            n->kv.v[key] = value;
        }
        /* Had the state machine applied an entry its own log could lose
         * in a crash, its next commit could put it ahead of the log. */
        raft_index durable = durable_log_end(&n->disk);
        if (e[i].index > durable) {
            sim_fail(s, "apply: n%llu applies %llu but its disk holds the log only to %llu",
                     (unsigned long long)n->id, (unsigned long long)e[i].index, (unsigned long long)durable);
            return REPLICA_SM_FAILED;
        }
        check_apply(s, n, &e[i], sim_kv_digest(&n->kv));
        n->applied = e[i].index;
    }
    return s->failed ? REPLICA_SM_FAILED : REPLICA_SM_OK;
}

static enum replica_sm_status sm_commit(void *ctx)
{
    struct sim_node *n = ctx;
    if (n->sm_poison)
        return REPLICA_SM_OK; /* nothing applied since the file's last commit */
    raft_index durable = durable_log_end(&n->disk);
    if (n->applied > durable) {
        sim_fail(n->s, "commit: n%llu's state machine would keep index %llu but its disk holds the log only "
                 "to %llu", (unsigned long long)n->id, (unsigned long long)n->applied, (unsigned long long)durable);
        return REPLICA_SM_FAILED;
    }
    n->kv_durable = n->kv;
    n->durable_applied = n->applied;
    return REPLICA_SM_OK;
}

static enum replica_sm_status sm_restore(void *ctx, const struct raft_snapshot_meta *m, char *err, size_t errcap)
{
    struct sim_node *n = ctx;
    struct sim *s = n->s;
    const struct sim_snapshot *snap = &n->disk.snap;
    if (!snap->have || snap->meta.index != m->index || !sim_kv_restore(&n->kv, m->index, snap->data, snap->meta.size)) {
        snprintf(err, errcap, "n%llu's disk does not hold the snapshot at %llu it was told to install",
                 (unsigned long long)n->id, (unsigned long long)m->index);
        return REPLICA_SM_FAILED;
    }
    check_install(s, n, m, sim_kv_digest(&n->kv));
    SIM_TRACE(s, "n%llu installs snapshot %llu/%llu (applied was %llu)", (unsigned long long)n->id,
              (unsigned long long)m->index, (unsigned long long)m->term, (unsigned long long)n->applied);
    n->applied = m->index;
    if (n->repairing && !raft_wants_snapshot(n->r))
        n->repairing = false; /* as node.c's sm_restore: serving reads again */
    n->sm_poison = false;
    /* Like store_restore, the restored state is the state machine's file. */
    n->kv_durable = n->kv;
    n->durable_applied = m->index;
    s->snapshots_installed++;
    return REPLICA_SM_OK;
}

static const char *sm_errmsg(void *ctx)
{
    (void)ctx;
    return "the simulated state machine refused";
}

/* ---- Lifecycle --------------------------------------------------------------------------- */

static void schedule_tick(struct sim *s, struct sim_node *n, uint64_t delay)
{
    struct sim_event ev = { .at = s->now + delay, .type = EV_TICK, .node = n->slot, .incarnation = n->incarnation };
    sim_schedule(s, ev);
}

static struct raft_config initial_config(const struct sim *s)
{
    struct raft_config c = { .n = (uint32_t)s->p.n_nodes };
    for (int i = 0; i < s->p.n_nodes; i++)
        c.members[i] = (struct raft_member){ (raft_id)(i + 1), RAFT_VOTER, 0 };
    return c;
}

/* The node refuses to start (its storage or its state machine's file is
 * damaged in a way it cannot repair): it stays down for good, and the
 * operator replaces it with a new member (cluster.c). */
static void refuse_start(struct sim *s, struct sim_node *n, const char *why)
{
    SIM_TRACE(s, "n%llu REFUSES to start: %s", (unsigned long long)n->id, why);
    raft_destroy(n->r);
    n->r = NULL;
    n->alive = false;
    s->refusals++;
    sim_operator_replace(s, n);
}

/* Starts (or restarts) the node in slot from what its disk and its state
 * machine's file hold, as node.c's recover() does: storage_open checks every
 * record first (a damaged one refuses the start, a damaged last entry is cut
 * as a torn write), repair_open_store then decides how a damaged database
 * or snapshot is rebuilt (locally, or from the peers). */
void sim_node_start(struct sim *s, struct sim_node *n)
{
    struct raft_options o = s->p.ro;
    o.id = n->id;
    o.seed = s->seed * 1000003u + n->restarts * 7919u + (uint64_t)n->slot;
    n->sync = !sim_chance(&s->rng, s->p.async_pm);
    o.async_persist = !n->sync;
    n->s = s;
    n->job_busy = false;
    n->disk.keep_prev = s->p.keep_prev_snap;
    n->paused_until = 0;
    n->clock_paused_until = 0;
    n->tick_us = s->p.skewed_clocks ? SIM_TICK_US * sim_range(&s->rng, 500, 2000) / 1000 : SIM_TICK_US;
    n->r = raft_create(&o);
    if (!n->r) {
        sim_fail(s, "raft_create rejected the simulator's options");
        return;
    }
    n->alive = true;
    struct sim_disk *d = &n->disk;
    struct sim_disk_check dc;
    sim_disk_check(d, &dc);
    if (dc.refuse) {
        refuse_start(s, n, dc.why);
        return;
    }
    if (dc.tail_cut) {
        s->tail_cuts++;
        SIM_TRACE(s, "n%llu: its last entry %llu does not check: cut off as a torn write would be",
                  (unsigned long long)n->id, (unsigned long long)dc.cut_index);
    }
    /* Identity: a node never comes back in a term older than one its disk
     * held (a lost disk must rejoin as a new member: SPEC §3). */
    if (d->hs.term < n->max_hs_term) {
        sim_fail(s, "identity: n%llu restarted in term %llu, but its disk held term %llu: it forgot its votes "
                 "(a lost disk must come back as a new member)", (unsigned long long)n->id,
                 (unsigned long long)d->hs.term, (unsigned long long)n->max_hs_term);
        return;
    }
    bool from_peers = dc.snapshot_damaged;
    n->repairing = from_peers;
    if (n->sm_rotten) {
        /* The database fails its check: moved aside, rebuilt from the
         * snapshot (if sound) and the log (REPAIR_LOCAL). */
        n->sm_rotten = false;
        memset(&n->kv_durable, 0, sizeof n->kv_durable);
        n->durable_applied = 0;
        s->repairs_local++;
        SIM_TRACE(s, "n%llu: its state machine's file does not check: rebuilt from %s", (unsigned long long)n->id,
                  from_peers ? "a leader's snapshot" : "the snapshot and the log");
    }
    /* What the state machine kept at its last commit. */
    n->kv = n->kv_durable;
    n->applied = n->durable_applied;
    int rc = RAFT_OK;
    if (sim_disk_empty(d)) {
        if (n->applied) {
            sim_fail(s, "restart: n%llu's state machine holds index %llu but its log is empty",
                     (unsigned long long)n->id, (unsigned long long)n->applied);
            return;
        }
        if (n->initial) {
            struct raft_config c = initial_config(s);
            rc = raft_bootstrap(n->r, &c);
        }
        /* else: an empty node waiting for the leader to add and feed it */
    } else {
        if (from_peers) {
            /* Nothing here can rebuild the state machine: it applies
             * nothing until a leader's snapshot is installed. Its state is
             * poison, so a read served from it would show. The poison is
             * in memory only: the state machine's file keeps what it held
             * (kv_durable), as node.c's database does, which applies and
             * commits nothing while it repairs; a crash after the leader's
             * snapshot is on disk but before it was restored finds that
             * file, and restores the snapshot if the file is behind it. */
            for (int k = 0; k < SIM_NKEYS; k++)
                n->kv.v[k] = SIM_POISON | (uint64_t)k;
            n->applied = d->snap.meta.index;
            n->sm_poison = true;
        } else if (d->snap.have && d->snap.meta.index > n->applied) {
            /* Crashed after keeping a snapshot but before the state
             * machine caught up with it: restore from the snapshot. Also
             * a poison state machine whose repair got as far as a leader's
             * snapshot on disk but not its restore: poison stands for a
             * database of unknown contents, and node.c's database, which
             * checked, is at worst behind that snapshot (restored) or
             * holds the entries after it (replayed the same way). */
            raft_index at = d->snap.meta.index;
            if (!sim_kv_restore(&n->kv, at, d->snap.data, d->snap.meta.size) ||
                crc32c(d->snap.data, d->snap.meta.size) != d->snap.meta.crc) {
                sim_fail(s, "restart: n%llu's durable snapshot at %llu does not verify", (unsigned long long)n->id,
                         (unsigned long long)at);
                return;
            }
            n->applied = n->durable_applied = at;
            n->kv_durable = n->kv;
        }
        raft_index durable = durable_log_end(d);
        if (n->applied > durable) {
            if (dc.tail_cut) {
                /* The database has an entry the log lost: node.c refuses. */
                refuse_start(s, n, "the state machine is ahead of the log whose damaged last entry was cut");
                return;
            }
            sim_fail(s, "restart: n%llu's state machine is ahead of its durable log (applied %llu, log to %llu)",
                     (unsigned long long)n->id, (unsigned long long)n->applied, (unsigned long long)durable);
            return;
        }
        struct raft_hard_state hs = d->hs;
        rc = raft_restore(n->r, &hs, d->snap.have ? &d->snap.meta : NULL, d->log, d->n_log, n->applied);
        if (rc == RAFT_OK && from_peers) {
            /* repair_from_peers_begin: refused when no other voter could
             * ever send a snapshot. */
            const struct raft_config *c = raft_configuration(n->r);
            size_t others = 0;
            for (uint32_t i = 0; i < c->n; i++)
                others += c->members[i].id != n->id && c->members[i].role == RAFT_VOTER;
            if (!others) {
                refuse_start(s, n, "its snapshot is damaged and no other voter could send one");
                return;
            }
            rc = raft_want_snapshot(n->r);
            s->repairs_from_peers++;
            SIM_TRACE(s, "n%llu: its snapshot at %llu does not check: repairing from peers",
                      (unsigned long long)n->id, (unsigned long long)d->snap.meta.index);
        }
    }
    if (rc != RAFT_OK) {
        sim_fail(s, "restart: n%llu could not start from its disk: %s", (unsigned long long)n->id,
                 raft_strerror(rc));
        return;
    }
    struct replica_options ro;
    replica_options_default(&ro);
    ro.write_timeout_ms = 60000;         /* the clients' own deadlines come first */
    ro.snapshot_entries = s->p.snap_every;
    ro.commit_every_ms = s->p.commit_every_ms;
    ro.commit_every_entries = s->p.commit_every_entries;
    ro.apply_batch = (size_t)sim_range(&s->rng, 1, 16);
    ro.seed = o.seed;
    ro.sync_persist = n->sync;
    /* As node.c passes storage's tail_maybe_acked: a last record cut
     * though it was all there (damaged after its sync, as storage must
     * assume) may have been acknowledged. A batch torn by the crash ends
     * inside a record: never synced, never acknowledged. */
    ro.lost_tail = d->lost_tail = dc.tail_cut || d->lost_tail;
    if (dc.tail_cut)
        d->lost_tail_term = d->hs.term;
    ro.lost_tail_term = d->lost_tail ? d->lost_tail_term : 0;
    struct replica_io io = {
        .ctx = n, .now = io_now, .send = io_send, .write = io_write, .snapshot = io_snapshot, .adopt = io_adopt,
        .arm = io_arm, .cancel = io_cancel, .log = io_log, .fatal = io_fatal, .stopped = io_stopped,
    };
    struct replica_sm sm = {
        .ctx = n, .result_size = 0, .applied = sm_applied, .committed = sm_committed, .apply = sm_apply,
        .commit = sm_commit, .restore = sm_restore, .errmsg = sm_errmsg,
    };
    n->d = replica_create(&ro, n->r, &io, &sm);
    if (!n->d)
        abort();
    n->last_role = raft_role(n->r);
    n->last_term = raft_current_term(n->r);
    n->commit_seen = raft_commit_index(n->r);
    if (s->hazard_slot == n->slot) /* its disk fault is over once it knows all that was committed */
        n->hazard_floor = s->max_committed ? s->max_committed : 1;
    SIM_TRACE(s, "n%llu starts%s: term %llu vote %llu, log %llu..%llu, snapshot %llu, applied %llu (its state "
              "machine's)", (unsigned long long)n->id, n->sync ? "" : " (async persist)",
              (unsigned long long)raft_current_term(n->r), (unsigned long long)raft_voted_for(n->r),
              (unsigned long long)raft_first_index(n->r), (unsigned long long)raft_last_index(n->r),
              (unsigned long long)(d->snap.have ? d->snap.meta.index : 0), (unsigned long long)n->applied);
    schedule_tick(s, n, sim_range(&s->rng, 1, SIM_TICK_US));
    sim_node_process(s, n);
}

void sim_node_crash(struct sim *s, struct sim_node *n, bool restart)
{
    if (!n->alive)
        return;
    const char *what = sim_disk_crash(&n->disk, &s->rng);
    if (n->disk.hs.term > n->max_hs_term) /* a batch that reached the platter */
        n->max_hs_term = n->disk.hs.term;
    SIM_TRACE(s, "CRASH n%llu (%s, role %s, term %llu)%s; its state machine keeps index %llu of %llu applied",
              (unsigned long long)n->id, what, raft_role_name(raft_role(n->r)),
              (unsigned long long)raft_current_term(n->r), n->job_busy ? " with an fsync in flight" : "",
              (unsigned long long)n->durable_applied, (unsigned long long)n->applied);
    check_crash(s, n, raft_current_term(n->r));
    n->alive = false;
    n->sm_poison = false; /* in memory only */
    n->incarnation++;
    n->restarts++;
    n->crashed_at = s->now;
    s->crashes++;
    /* The waiters of the dead process answer nobody (the clients see a
     * crash: sim_clients_on_crash). */
    s->silent = true;
    replica_destroy(n->d); /* and the core */
    s->silent = false;
    n->d = NULL;
    n->r = NULL;
    n->job_busy = false;
    sim_clients_on_crash(s, n);
    if (restart) {
        struct sim_event ev = { .at = s->now + sim_range(&s->rng, 20000, 1500000), .type = EV_RESTART,
                                .node = n->slot, .incarnation = n->incarnation };
        sim_schedule(s, ev);
    }
}

void sim_node_free(struct sim *s, struct sim_node *n)
{
    s->silent = true;
    replica_destroy(n->d);
    s->silent = false;
    n->d = NULL;
    n->r = NULL;
    sim_disk_free(&n->disk);
}

/* ---- Events --------------------------------------------------------------------------------- */

void sim_node_process(struct sim *s, struct sim_node *n)
{
    if (n->alive && !s->failed)
        replica_pump(n->d);
}

void sim_node_step(struct sim *s, struct sim_node *n, const struct raft_message *m)
{
    if (s->trace) {
        char desc[256];
        sim_tracef(s, "n%llu <- %s", (unsigned long long)n->id, sim_msg_desc(m, desc, sizeof desc));
    }
    raft_term t0 = raft_current_term(n->r);
    enum raft_role r0 = raft_role(n->r);
    struct sim_view v;
    check_stale_before(n, &v);
    replica_step(n->d, m);
    check_term_change(s, n, t0, r0, m);
    check_stale_after(s, n, &v, m);
    sim_node_process(s, n);
}

void sim_node_tick(struct sim *s, struct sim_node *n)
{
    raft_term t0 = raft_current_term(n->r);
    enum raft_role r0 = raft_role(n->r);
    replica_tick(n->d);
    check_term_change(s, n, t0, r0, NULL);
    if (n->disk.lost_tail && n->alive && !replica_lost_tail(n->d))
        n->disk.lost_tail = false; /* as node.c's on_tick removes its marker */
}

/* The storage job is done: its fsync returned. */
void sim_node_job_done(struct sim *s, struct sim_node *n)
{
    n->job_busy = false;
    if (n->job_adopt) {
        /* The copy, fsynced and renamed into place: the node's snapshot
         * before the core hears of it (replica_adopt_done). */
        sim_disk_save_snapshot(&n->disk, &n->adopt_meta, n->snap_buf);
        s->snapshots_taken++;
        SIM_TRACE(s, "n%llu snapshots at %llu (term %llu, %llu bytes)", (unsigned long long)n->id,
                  (unsigned long long)n->adopt_meta.index, (unsigned long long)n->adopt_meta.term,
                  (unsigned long long)n->adopt_meta.size);
        replica_adopt_done(n->d, REPLICA_JOB_OK, NULL);
        return;
    }
    char err[256];
    if (n->job_batch) {
        if (sim_disk_sync(&n->disk, err, sizeof err) != 0) {
            sim_fail(s, "n%llu: %s", (unsigned long long)n->id, err);
            return;
        }
        check_disk_synced(s, n);
    }
    if (n->job_compact)
        sim_disk_compact(&n->disk, n->job_compact);
    SIM_TRACE(s, "n%llu fsync done%s: entries up to %llu", (unsigned long long)n->id,
              n->job_batch ? "" : " (nothing to write)", (unsigned long long)n->job_trace_last);
    replica_write_done(n->d, REPLICA_JOB_OK, NULL);
}

void sim_node_snapshot_done(struct sim *s, struct sim_node *n)
{
    size_t size = sim_kv_snapshot_size();
    (void)s;
    replica_snapshot_done(n->d, REPLICA_JOB_OK, n->snap_index, size, crc32c(n->snap_buf, size), NULL);
}

void sim_node_timer(struct sim *s, struct sim_node *n, uint64_t arg)
{
    enum replica_timer which = (enum replica_timer)(arg & 0xff);
    (void)s;
    if ((uint32_t)(arg >> 8) == n->timer_gen[which])
        replica_timer_fired(n->d, which);
}
