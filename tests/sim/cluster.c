/*
 * cluster.c — one simulated run: the nodes, their hosts, the faults, the
 * event loop, and the liveness check at the end.
 *
 * The host of each node implements THE READY CONTRACT of include/raft.h:
 *   1. send_now goes on the wire at once;
 *   2. the bundle's persistent state is written to the node's disk as one
 *      batch and an fsync is started, which takes simulated time; meanwhile
 *      the node keeps stepping messages and ticks (group commit);
 *   3. when the fsync completes, send_after_persist leaves;
 *   4. a received snapshot replaces the KV, committed entries are applied,
 *      confirmed reads are queued until applied reaches their index;
 *   5. compact_before trims the durable log; raft_advance; and when the log
 *      has grown past a threshold the host snapshots its KV and calls
 *      raft_snapshot_taken.
 * A node may instead run with async_persist (raft.h): it takes the next ready
 * as soon as it has queued the previous one's write, its writes complete in
 * order, each then sends its messages and reports raft_persisted; readies
 * with snapshot data wait for their write as above. Runs mix both kinds.
 * A crash destroys the core and whatever was in flight; the disk keeps what
 * was durable (disk.c); a restart calls raft_restore with exactly that.
 *
 * The run has two phases: faults (crashes, partitions, loss, membership
 * changes, transfers) until p.fault_end, then a healed cluster that must
 * elect a leader, resolve every client op and converge within
 * p.liveness_deadline.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "sim.h"

void sim_tracef(struct sim *s, const char *fmt, ...)
{
    fprintf(s->out, "%7llu.%03llums ", (unsigned long long)(s->now / 1000), (unsigned long long)(s->now % 1000));
    va_list ap;
    va_start(ap, fmt);
    vfprintf(s->out, fmt, ap);
    va_end(ap);
    fputc('\n', s->out);
}

/* ---- Parameters ------------------------------------------------------------------ */

static void choose_params(struct sim *s, int force_nodes)
{
    struct sim_params *p = &s->p;
    uint64_t *g = &s->rng;
    p->n_nodes = force_nodes ? force_nodes : (sim_chance(g, 500) ? 3 : 5);
    p->loss_pm = (unsigned)sim_range(g, 0, 80);
    p->dup_pm = (unsigned)sim_range(g, 0, 40);
    p->corrupt_pm = (unsigned)sim_range(g, 0, 5);
    p->long_delay_pm = (unsigned)sim_range(g, 0, 60);
    p->lat_min = sim_range(g, 200, 2000);
    p->lat_max = p->lat_min + sim_range(g, 500, 15000);
    p->fsync_min = sim_range(g, 500, 3000);
    p->fsync_max = p->fsync_min + sim_range(g, 1000, 20000);
    p->fault_min = sim_range(g, 30000, 100000);
    p->fault_max = p->fault_min + sim_range(g, 50000, 400000);
    p->fault_end = sim_range(g, 8000000, 20000000);
    p->liveness_deadline = 8000000;
    p->snap_every = sim_range(g, 4, 60);
    p->new_leader_crash_pm = (unsigned)sim_range(g, 0, 300);
    p->n_clients = (int)sim_range(g, 2, SIM_MAX_CLIENTS);

    struct raft_options *o = &p->ro;
    raft_options_default(o, 1, s->seed);
    o->election_ticks = 10;
    o->heartbeat_ticks = (unsigned)sim_range(g, 1, 3);
    o->max_msg_bytes = (uint32_t)sim_range(g, 20, 200);
    o->max_inflight_msgs = (uint32_t)sim_range(g, 1, 8);
    o->max_inflight_bytes = sim_range(g, 200, 4000);
    o->snapshot_chunk_bytes = (uint32_t)sim_range(g, 16, 160);
    o->trailing_entries = sim_range(g, 0, 12);
    o->pre_vote = sim_chance(g, 800);
    o->check_quorum = sim_chance(g, 900);
    uint64_t mode = sim_range(g, 0, 2); /* none, every node, or a mix */
    p->async_pm = mode == 0 ? 0 : mode == 1 ? 1000 : 500;
    p->keep_prev_snap = sim_chance(g, 500);
    p->snap_rot_pm = sim_chance(g, 300) ? (unsigned)sim_range(g, 5, 60) : 0;
    p->stall_pm = sim_chance(g, 300) ? (unsigned)sim_range(g, 2, 30) : 0;
    p->skewed_clocks = sim_chance(g, 400);
    p->pause_pct = sim_chance(g, 400) ? (unsigned)sim_range(g, 20, 50) : 0;
    p->min_voters = sim_chance(g, 300) ? 1 : 3;
}

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

/* ---- Hosts ------------------------------------------------------------------------ */

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

/* Starts (or restarts) the node in slot from what its disk holds. */
static void node_start(struct sim *s, struct sim_node *n)
{
    struct raft_options o = s->p.ro;
    o.id = n->id;
    o.seed = s->seed * 1000003u + n->restarts * 7919u + (uint64_t)n->slot;
    n->async = sim_chance(&s->rng, s->p.async_pm);
    o.async_persist = n->async;
    n->n_jobs = 0;
    n->jobs_until = 0;
    n->disk.keep_prev = s->p.keep_prev_snap;
    n->paused_until = 0;
    n->tick_us = s->p.skewed_clocks ? SIM_TICK_US * sim_range(&s->rng, 800, 1250) / 1000 : SIM_TICK_US;
    n->r = raft_create(&o);
    if (!n->r) {
        sim_fail(s, "raft_create rejected the simulator's options");
        return;
    }
    n->alive = true;
    n->rd_out = false;
    n->n_reads = 0;
    memset(&n->kv, 0, sizeof n->kv);
    n->applied = 0;
    struct sim_disk *d = &n->disk;
    int rc = RAFT_OK;
    if (sim_disk_empty(d)) {
        if (n->initial) {
            struct raft_config c = initial_config(s);
            rc = raft_bootstrap(n->r, &c);
        }
        /* else: an empty node waiting for the leader to add and feed it */
    } else {
        raft_index applied = 0;
        if (d->snap.have) {
            applied = d->snap.meta.index;
            if (!sim_kv_restore(&n->kv, applied, d->snap.data, d->snap.meta.size) ||
                crc32c(d->snap.data, d->snap.meta.size) != d->snap.meta.crc) {
                sim_fail(s, "restart: n%llu's durable snapshot at %llu does not verify",
                         (unsigned long long)n->id, (unsigned long long)applied);
                return;
            }
        }
        struct raft_hard_state hs = d->hs;
        rc = raft_restore(n->r, &hs, d->snap.have ? &d->snap.meta : NULL, d->log, d->n_log, applied);
        n->applied = applied;
    }
    if (rc != RAFT_OK) {
        sim_fail(s, "restart: n%llu could not start from its disk: %s", (unsigned long long)n->id,
                 raft_strerror(rc));
        return;
    }
    n->last_role = raft_role(n->r);
    n->last_term = raft_current_term(n->r);
    n->commit_seen = raft_commit_index(n->r);
    SIM_TRACE(s, "n%llu starts%s: term %llu vote %llu, log %llu..%llu, snapshot %llu, applied %llu",
              (unsigned long long)n->id, n->async ? " (async persist)" : "", (unsigned long long)raft_current_term(n->r),
              (unsigned long long)raft_voted_for(n->r), (unsigned long long)raft_first_index(n->r),
              (unsigned long long)raft_last_index(n->r),
              (unsigned long long)(d->snap.have ? d->snap.meta.index : 0), (unsigned long long)n->applied);
    schedule_tick(s, n, sim_range(&s->rng, 1, SIM_TICK_US));
    sim_node_process(s, n);
}

static void node_crash(struct sim *s, struct sim_node *n, bool restart)
{
    if (!n->alive)
        return;
    const char *what = sim_disk_crash(&n->disk, &s->rng);
    SIM_TRACE(s, "CRASH n%llu (%s, role %s, term %llu)%s", (unsigned long long)n->id, what,
              raft_role_name(raft_role(n->r)), (unsigned long long)raft_current_term(n->r),
              n->rd_out || n->n_jobs ? " with an fsync in flight" : "");
    for (size_t i = 0; i < n->n_jobs; i++)
        free(n->jobs[i].after);
    n->n_jobs = 0;
    raft_destroy(n->r);
    n->r = NULL;
    n->alive = false;
    n->rd_out = false;
    n->incarnation++;
    n->restarts++;
    n->n_reads = 0;
    n->crashed_at = s->now;
    s->crashes++;
    sim_clients_on_crash(s, n);
    if (restart) {
        struct sim_event ev = { .at = s->now + sim_range(&s->rng, 20000, 1500000), .type = EV_RESTART,
                                .node = n->slot, .incarnation = n->incarnation };
        sim_schedule(s, ev);
    }
}

static void apply_entry(struct sim *s, struct sim_node *n, const struct raft_entry *e)
{
    uint32_t key;
    uint64_t value, op;
    if (e->type == RAFT_ENTRY_COMMAND) {
        if (!sim_cmd_decode(e->data, e->len, &key, &value, &op)) {
            sim_fail(s, "apply: n%llu got a malformed command at %llu (%u bytes)", (unsigned long long)n->id,
                     (unsigned long long)e->index, e->len);
            return;
        }
        n->kv.v[key] = value;
    }
    /* A real state machine keeps what it applied (linkraft's SQLite does):
     * had it applied an entry its own log could lose in a crash, a restart
     * would find the database ahead of the log. */
    const struct sim_disk *d = &n->disk;
    raft_index durable = d->n_log ? d->log[d->n_log - 1].index : (d->snap.have ? d->snap.meta.index : 0);
    if (e->index > durable) {
        sim_fail(s, "apply: n%llu applies %llu but its disk holds the log only to %llu", (unsigned long long)n->id,
                 (unsigned long long)e->index, (unsigned long long)durable);
        return;
    }
    check_apply(s, n, e, sim_kv_digest(&n->kv));
    n->applied = e->index;
    sim_clients_on_apply(s, n, e);
}

static void maybe_snapshot(struct sim *s, struct sim_node *n)
{
    const struct raft_snapshot_meta *cur = raft_snapshot(n->r);
    raft_index base = cur ? cur->index : 0;
    if (n->applied < base + s->p.snap_every || raft_applied_index(n->r) != n->applied)
        return;
    size_t size = sim_kv_snapshot_size();
    uint8_t buf[256];
    sim_kv_serialize(&n->kv, n->applied, buf);
    uint32_t crc = crc32c(buf, size);
    int rc = raft_snapshot_taken(n->r, n->applied, size, crc);
    if (rc != RAFT_OK) {
        sim_fail(s, "snapshot: raft_snapshot_taken(n%llu, %llu) failed: %s", (unsigned long long)n->id,
                 (unsigned long long)n->applied, raft_strerror(rc));
        return;
    }
    cur = raft_snapshot(n->r);
    if (!cur || cur->index != n->applied) {
        sim_fail(s, "snapshot: n%llu's core did not take the snapshot at %llu", (unsigned long long)n->id,
                 (unsigned long long)n->applied);
        return;
    }
    sim_disk_save_snapshot(&n->disk, cur, buf);
    s->snapshots_taken++;
    SIM_TRACE(s, "n%llu snapshots at %llu (term %llu, %zu bytes)", (unsigned long long)n->id,
              (unsigned long long)cur->index, (unsigned long long)cur->term, size);
}

static void add_read_wait(struct sim_node *n, uint64_t context, raft_index index)
{
    if (n->n_reads == n->cap_reads) {
        n->cap_reads = n->cap_reads ? n->cap_reads * 2 : 8;
        n->reads = realloc(n->reads, n->cap_reads * sizeof *n->reads);
        if (!n->reads)
            abort();
    }
    n->reads[n->n_reads++] = (struct sim_read_wait){ context, index };
}

static void serve_reads(struct sim *s, struct sim_node *n)
{
    size_t keep = 0;
    for (size_t i = 0; i < n->n_reads; i++) {
        if (n->reads[i].index <= n->applied)
            sim_clients_on_read_served(s, n, n->reads[i].context);
        else
            n->reads[keep++] = n->reads[i];
    }
    n->n_reads = keep;
}

static void finish_ready(struct sim *s, struct sim_node *n, struct raft_ready *rd);

/* Steps 3-5 of the ready contract, once the fsync is done. */
static void complete_ready(struct sim *s, struct sim_node *n)
{
    struct raft_ready *rd = &n->rd;
    char err[256];
    bool fsynced = n->disk.n_pending > 0;
    if (sim_disk_sync(&n->disk, err, sizeof err) != 0) {
        sim_fail(s, "n%llu: %s", (unsigned long long)n->id, err);
        return;
    }
    check_disk_synced(s, n);
    if (s->trace && fsynced) {
        char what[256] = "";
        size_t k = 0;
        if (rd->snapshot_chunk.len || rd->snapshot_chunk.meta.index)
            k += (size_t)snprintf(what + k, sizeof what - k, " chunk %llu@%llu+%u",
                                  (unsigned long long)rd->snapshot_chunk.meta.index,
                                  (unsigned long long)rd->snapshot_chunk.offset, rd->snapshot_chunk.len);
        if (rd->truncate_from && k < sizeof what)
            k += (size_t)snprintf(what + k, sizeof what - k, " truncate>=%llu", (unsigned long long)rd->truncate_from);
        if (rd->n_entries && k < sizeof what)
            k += (size_t)snprintf(what + k, sizeof what - k, " entries %llu..%llu",
                                  (unsigned long long)rd->entries[0].index,
                                  (unsigned long long)rd->entries[rd->n_entries - 1].index);
        if (rd->hard_state_changed && k < sizeof what)
            k += (size_t)snprintf(what + k, sizeof what - k, " hs term %llu vote %llu",
                                  (unsigned long long)rd->hard_state.term, (unsigned long long)rd->hard_state.vote);
        if (k < sizeof what)
            snprintf(what + k, sizeof what - k, "; then %zu msgs, apply %zu", rd->n_send_after_persist,
                     rd->n_committed);
        sim_tracef(s, "n%llu fsync done:%s", (unsigned long long)n->id, what);
    }
    for (size_t i = 0; i < rd->n_send_after_persist && !s->failed; i++)
        sim_net_send(s, n, &rd->send_after_persist[i]);
    finish_ready(s, n, rd);
}

/* Steps 4 and 5: install, apply, reads, compaction, advance. */
static void finish_ready(struct sim *s, struct sim_node *n, struct raft_ready *rd)
{
    if (rd->snapshot_install) {
        const struct raft_snapshot_meta *m = rd->snapshot_install;
        const struct sim_snapshot *snap = &n->disk.snap;
        if (!snap->have || snap->meta.index != m->index ||
            !sim_kv_restore(&n->kv, m->index, snap->data, snap->meta.size)) {
            sim_fail(s, "snapshot install: n%llu's disk does not hold the snapshot at %llu it was told to "
                     "install", (unsigned long long)n->id, (unsigned long long)m->index);
            return;
        }
        check_install(s, n, m, sim_kv_digest(&n->kv));
        SIM_TRACE(s, "n%llu installs snapshot %llu/%llu (applied was %llu)", (unsigned long long)n->id,
                  (unsigned long long)m->index, (unsigned long long)m->term, (unsigned long long)n->applied);
        n->applied = m->index;
        s->snapshots_installed++;
        sim_clients_on_install(s, n, m->index);
    }
    for (size_t i = 0; i < rd->n_committed && !s->failed; i++)
        apply_entry(s, n, &rd->committed[i]);
    for (size_t i = 0; i < rd->n_reads; i++)
        if (sim_clients_on_read_state(s, n, &rd->reads[i]))
            add_read_wait(n, rd->reads[i].context, rd->reads[i].index);
    if (rd->compact_before)
        sim_disk_compact(&n->disk, rd->compact_before);
    raft_advance(n->r, rd);
    n->rd_out = false;
    if (raft_applied_index(n->r) != n->applied) {
        sim_fail(s, "host/core disagree: n%llu's host applied %llu, the core says %llu", (unsigned long long)n->id,
                 (unsigned long long)n->applied, (unsigned long long)raft_applied_index(n->r));
        return;
    }
    serve_reads(s, n);
    maybe_snapshot(s, n);
}

/* ---- Async persistence ------------------------------------------------------------ */

static bool has_snapshot_data(const struct raft_ready *rd)
{
    return rd->snapshot_chunk.len || rd->snapshot_chunk.meta.index || rd->snapshot_install;
}

/* Queues what must follow rd's write: its messages, the last entry to report
 * and the compaction. With a batch it is a new job whose fsync completes
 * after every earlier one; without, it rides on the newest job. */
static void job_push(struct sim *s, struct sim_node *n, const struct raft_ready *rd, bool has_batch, bool barrier)
{
    struct sim_job *j;
    if (has_batch) {
        if (n->n_jobs == n->cap_jobs) {
            n->cap_jobs = n->cap_jobs ? n->cap_jobs * 2 : 8;
            n->jobs = realloc(n->jobs, n->cap_jobs * sizeof *n->jobs);
            if (!n->jobs)
                abort();
        }
        j = &n->jobs[n->n_jobs++];
        *j = (struct sim_job){ .has_batch = true, .barrier = barrier };
        uint64_t at = s->now + fsync_delay(s);
        if (at < n->jobs_until)
            at = n->jobs_until;
        n->jobs_until = at;
        sim_schedule(s, (struct sim_event){ .at = at, .type = EV_FSYNC, .node = n->slot,
                                            .incarnation = n->incarnation });
    } else {
        j = &n->jobs[n->n_jobs - 1];
    }
    if (rd->n_entries) {
        j->last = rd->entries[rd->n_entries - 1].index;
        j->last_term = rd->entries[rd->n_entries - 1].term;
    }
    if (has_batch)
        j->seq = rd->seq;
    if (rd->compact_before > j->compact)
        j->compact = rd->compact_before;
    if (rd->n_send_after_persist) {
        j->after = realloc(j->after, (j->n_after + rd->n_send_after_persist) * sizeof *j->after);
        if (!j->after)
            abort();
        for (size_t i = 0; i < rd->n_send_after_persist; i++) {
            const struct raft_message *m = &rd->send_after_persist[i];
            if (m->n_entries || m->data) {
                sim_fail(s, "n%llu: a send_after_persist message carries entries or data, which the host "
                         "would have to copy to hold it past raft_advance", (unsigned long long)n->id);
                return;
            }
            j->after[j->n_after++] = *m;
        }
    }
}

/* The oldest write of an async node is durable. */
static void job_complete(struct sim *s, struct sim_node *n)
{
    struct sim_job j = n->jobs[0];
    memmove(n->jobs, n->jobs + 1, (n->n_jobs - 1) * sizeof *n->jobs);
    n->n_jobs--;
    char err[256];
    if (j.has_batch && sim_disk_sync(&n->disk, err, sizeof err) != 0) {
        sim_fail(s, "n%llu: %s", (unsigned long long)n->id, err);
        free(j.after);
        return;
    }
    if (j.has_batch)
        check_disk_synced(s, n);
    SIM_TRACE(s, "n%llu async fsync done: entries up to %llu/%llu; then %zu msgs%s", (unsigned long long)n->id,
              (unsigned long long)j.last, (unsigned long long)j.last_term, j.n_after,
              j.barrier ? "; completes the outstanding ready" : "");
    for (size_t i = 0; i < j.n_after && !s->failed; i++)
        sim_net_send(s, n, &j.after[i]);
    free(j.after);
    if (s->failed)
        return;
    if (j.seq && raft_persisted(n->r, j.seq) != RAFT_OK) {
        sim_fail(s, "raft_persisted(n%llu) refused a report", (unsigned long long)n->id);
        return;
    }
    if (j.compact)
        sim_disk_compact(&n->disk, j.compact);
    if (j.barrier)
        finish_ready(s, n, &n->rd);
}

/* An async node's ready without snapshot data: queue its write, then apply
 * and advance at once. */
static void async_ready(struct sim *s, struct sim_node *n, struct raft_ready *rd)
{
    bool batch = sim_disk_write(&n->disk, rd);
    if (batch || n->n_jobs) {
        job_push(s, n, rd, batch, false);
    } else {
        for (size_t i = 0; i < rd->n_send_after_persist && !s->failed; i++)
            sim_net_send(s, n, &rd->send_after_persist[i]);
        if (rd->compact_before)
            sim_disk_compact(&n->disk, rd->compact_before);
    }
    rd->compact_before = 0; /* done above or queued */
    if (!s->failed)
        finish_ready(s, n, rd);
}

void sim_node_process(struct sim *s, struct sim_node *n)
{
    while (n->alive && !n->rd_out && !s->failed && raft_has_ready(n->r)) {
        struct raft_ready *rd = &n->rd;
        int rc = raft_ready(n->r, rd);
        if (rc != RAFT_OK) {
            sim_fail(s, "raft_ready(n%llu) failed: %s", (unsigned long long)n->id, raft_strerror(rc));
            return;
        }
        n->rd_out = true;
        for (size_t i = 0; i < rd->n_send_now && !s->failed; i++)
            sim_net_send(s, n, &rd->send_now[i]);
        if (n->async && !has_snapshot_data(rd)) {
            async_ready(s, n, rd);
            continue;
        }
        if (n->async) {
            /* Snapshot data: this ready waits for its write, behind the others. */
            if (!sim_disk_write(&n->disk, rd)) {
                sim_fail(s, "n%llu: a ready with snapshot data wrote nothing", (unsigned long long)n->id);
                return;
            }
            job_push(s, n, rd, true, true);
            rd->compact_before = 0;
            return;
        }
        if (sim_disk_write(&n->disk, rd)) {
            struct sim_event ev = { .at = s->now + fsync_delay(s),
                                    .type = EV_FSYNC, .node = n->slot, .incarnation = n->incarnation };
            sim_schedule(s, ev);
            return;
        }
        complete_ready(s, n);
    }
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
    raft_step(n->r, m);
    check_term_change(s, n, t0, r0, m);
    check_stale_after(s, n, &v, m);
    sim_node_process(s, n);
}

/* ---- Faults ------------------------------------------------------------------------- */

static int leader_slot(struct sim *s)
{
    int best = -1;
    for (int i = 0; i < SIM_MAX_NODES; i++) {
        struct sim_node *n = &s->nodes[i];
        if (n->alive && raft_role(n->r) == RAFT_LEADER &&
            (best < 0 || raft_current_term(n->r) > raft_current_term(s->nodes[best].r)))
            best = i;
    }
    return best;
}

static int random_slot(struct sim *s, bool alive)
{
    int v[SIM_MAX_NODES], k = 0;
    for (int i = 0; i < SIM_MAX_NODES; i++)
        if (s->nodes[i].used && s->nodes[i].alive == alive)
            v[k++] = i;
    return k ? v[sim_range(&s->rng, 0, (uint64_t)k - 1)] : -1;
}

static void heal(struct sim *s)
{
    memset(s->cut, 0, sizeof s->cut);
}

static void fault_partition(struct sim *s)
{
    heal(s);
    s->partitions++;
    uint64_t kind = sim_range(&s->rng, 0, 4);
    int victim = sim_chance(&s->rng, 600) ? leader_slot(s) : -1;
    if (victim < 0)
        victim = random_slot(s, true);
    if (victim < 0)
        return;
    if (kind <= 1) {
        for (int j = 0; j < SIM_MAX_NODES; j++)
            s->cut[victim][j] = s->cut[j][victim] = j != victim;
        SIM_TRACE(s, "PARTITION n%d isolated", victim + 1);
    } else if (kind == 2) {
        bool side[SIM_MAX_NODES];
        for (int j = 0; j < SIM_MAX_NODES; j++)
            side[j] = sim_chance(&s->rng, 500);
        for (int a = 0; a < SIM_MAX_NODES; a++)
            for (int b = 0; b < SIM_MAX_NODES; b++)
                s->cut[a][b] = side[a] != side[b];
        char buf[64] = "";
        for (int j = 0; j < SIM_MAX_NODES; j++)
            if (s->nodes[j].used && side[j])
                snprintf(buf + strlen(buf), sizeof buf - strlen(buf), " n%d", j + 1);
        SIM_TRACE(s, "PARTITION {%s } | the rest", buf);
    } else if (kind == 3) {
        /* One-way: the victim hears everyone, nobody hears it (or the reverse). */
        bool out = sim_chance(&s->rng, 500);
        for (int j = 0; j < SIM_MAX_NODES; j++) {
            if (j == victim)
                continue;
            if (out)
                s->cut[victim][j] = true;
            else
                s->cut[j][victim] = true;
        }
        SIM_TRACE(s, "PARTITION one-way: n%d %s", victim + 1, out ? "cannot send" : "cannot receive");
    } else {
        /* A few random one-way links. */
        for (int k = 0; k < 3; k++) {
            int a = random_slot(s, true), b = random_slot(s, true);
            if (a >= 0 && b >= 0 && a != b) {
                s->cut[a][b] = true;
                SIM_TRACE(s, "PARTITION link n%d -> n%d cut", a + 1, b + 1);
            }
        }
    }
}

static void fault_crash(struct sim *s)
{
    int victim = -1;
    uint64_t pick = sim_range(&s->rng, 0, 9);
    if (pick < 4)
        victim = leader_slot(s);
    if (victim < 0 && pick < 7) {
        /* Prefer a node with an fsync in flight: crash between send and persist. */
        int v[SIM_MAX_NODES], k = 0;
        for (int i = 0; i < SIM_MAX_NODES; i++)
            if (s->nodes[i].alive && (s->nodes[i].rd_out || s->nodes[i].n_jobs))
                v[k++] = i;
        if (k)
            victim = v[sim_range(&s->rng, 0, (uint64_t)k - 1)];
    }
    if (victim < 0)
        victim = random_slot(s, true);
    if (victim >= 0)
        node_crash(s, &s->nodes[victim], true);
}

/* A long pause: the process is stopped (SIGSTOP, a GC, a VM migrated) for
 * 0.2-3 s and then resumes where it was, its clock jumping ahead: it may
 * still believe it leads. Messages wait for it (kernel buffers). */
static void fault_pause(struct sim *s)
{
    int victim = leader_slot(s);
    if (victim < 0 || sim_chance(&s->rng, 500))
        victim = random_slot(s, true);
    if (victim < 0)
        return;
    struct sim_node *n = &s->nodes[victim];
    n->paused_until = s->now + sim_range(&s->rng, 200000, 3000000);
    s->pauses++;
    SIM_TRACE(s, "PAUSE n%llu (%s) until %llums", (unsigned long long)n->id, raft_role_name(raft_role(n->r)),
              (unsigned long long)(n->paused_until / 1000));
}

static void fault_membership(struct sim *s)
{
    int l = leader_slot(s);
    if (l < 0 || s->now < s->nodes[l].paused_until)
        return;
    struct sim_node *ln = &s->nodes[l];
    struct raft_config c = *raft_configuration(ln->r);
    size_t voters = raft_config_voters(&c);
    uint64_t what = sim_range(&s->rng, 0, 9);
    int free_slot = -1;
    for (int i = 0; i < SIM_MAX_NODES; i++)
        if (!s->nodes[i].used) {
            free_slot = i;
            break;
        }
    raft_index idx = 0;
    int rc;
    const char *name;
    raft_id id;
    if (what < 5 && free_slot >= 0 && c.n < 7) {
        enum raft_change ch = what < 3 ? RAFT_ADD_LEARNER : RAFT_ADD_VOTER;
        id = (raft_id)free_slot + 1;
        name = ch == RAFT_ADD_LEARNER ? "add learner" : "add voter";
        rc = raft_change_member(ln->r, ch, id, &idx);
        if (rc == RAFT_OK) {
            struct sim_node *n = &s->nodes[free_slot];
            n->used = true;
            node_start(s, n);
        }
    } else if (what < 7) {
        const struct raft_member *m = NULL;
        for (uint32_t i = 0; i < c.n; i++)
            if (c.members[i].role == RAFT_LEARNER)
                m = &c.members[i];
        if (!m)
            return;
        id = m->id;
        name = "promote";
        rc = raft_change_member(ln->r, RAFT_PROMOTE, id, &idx);
    } else {
        const struct raft_member *m = &c.members[sim_range(&s->rng, 0, c.n - 1)];
        if (sim_chance(&s->rng, 300))
            m = raft_config_find(&c, ln->id);
        if (!m || (m->role == RAFT_VOTER && voters <= s->p.min_voters))
            return;
        id = m->id;
        name = m->id == ln->id ? "remove (the leader itself)" : "remove";
        rc = raft_change_member(ln->r, RAFT_REMOVE, id, &idx);
        if (rc == RAFT_OK && m->role == RAFT_VOTER && voters == 2)
            s->one_voter++;
    }
    SIM_TRACE(s, "MEMBERSHIP via leader n%llu: %s n%llu: %s", (unsigned long long)ln->id, name,
              (unsigned long long)id, rc ? raft_strerror(rc) : "proposed");
    if (rc == RAFT_OK) {
        s->member_changes++;
        sim_node_process(s, ln);
    }
}

static void fault_transfer(struct sim *s)
{
    int l = leader_slot(s);
    if (l < 0 || s->now < s->nodes[l].paused_until)
        return;
    struct sim_node *ln = &s->nodes[l];
    const struct raft_config *c = raft_configuration(ln->r);
    const struct raft_member *m = &c->members[sim_range(&s->rng, 0, c->n - 1)];
    int rc = raft_transfer_leader(ln->r, m->id);
    SIM_TRACE(s, "TRANSFER leadership n%llu -> n%llu: %s", (unsigned long long)ln->id, (unsigned long long)m->id,
              raft_strerror(rc));
    s->transfers++;
    sim_node_process(s, ln);
}

static void fault(struct sim *s)
{
    if (!s->faults_on)
        return;
    uint64_t f = sim_range(&s->rng, 0, 99);
    if (f < 30 && sim_range(&s->rng, 0, 99) < s->p.pause_pct)
        fault_pause(s);
    else if (f < 30)
        fault_crash(s);
    else if (f < 50)
        fault_partition(s);
    else if (f < 62) {
        heal(s);
        SIM_TRACE(s, "HEAL all partitions");
    } else if (f < 77)
        fault_membership(s);
    else if (f < 87)
        fault_transfer(s);
    else {
        s->p.loss_pm = (unsigned)sim_range(&s->rng, 0, 150);
        SIM_TRACE(s, "LOSS now %u/1000", s->p.loss_pm);
    }
    struct sim_event ev = { .at = s->now + sim_range(&s->rng, s->p.fault_min, s->p.fault_max), .type = EV_FAULT };
    sim_schedule(s, ev);
}

/* A leader crashing soon after its election, before its no-op has spread,
 * leaves earlier terms' entries half replicated: the situations of the
 * dissertation's Figure 3.7 (paper Figure 8). */
static void crash_new_leaders(struct sim *s)
{
    for (int i = 0; i < SIM_MAX_NODES; i++) {
        struct sim_node *n = &s->nodes[i];
        if (!n->alive || raft_role(n->r) != RAFT_LEADER || n->led_term == raft_current_term(n->r))
            continue;
        n->led_term = raft_current_term(n->r);
        if (sim_chance(&s->rng, s->p.new_leader_crash_pm)) {
            struct sim_event ev = { .at = s->now + sim_range(&s->rng, 0, 40000), .type = EV_CRASH,
                                    .node = i, .incarnation = n->incarnation };
            sim_schedule(s, ev);
        }
    }
}

static void faults_end(struct sim *s)
{
    s->faults_on = false;
    heal(s);
    for (int i = 0; i < SIM_MAX_NODES; i++)
        s->nodes[i].paused_until = 0;
    SIM_TRACE(s, "FAULTS END: partitions healed, loss off, every node restarting");
    for (int i = 0; i < SIM_MAX_NODES; i++) {
        struct sim_node *n = &s->nodes[i];
        if (n->used && !n->alive && !n->retired) {
            n->incarnation++; /* void its pending restart */
            node_start(s, n);
        }
    }
}

/* Liveness: true once a leader has committed everything in its log, every
 * member of its configuration has the same log, commit and applied index,
 * and no client op is outstanding. Also retires removed nodes (an operator
 * shuts them down once their removal has committed). */
static bool converged(struct sim *s, char *why, size_t cap)
{
    int l = leader_slot(s);
    if (l < 0) {
        snprintf(why, cap, "no leader");
        return false;
    }
    struct sim_node *ln = &s->nodes[l];
    raft_index commit = raft_commit_index(ln->r), last = raft_last_index(ln->r);
    if (commit != last || raft_term_at(ln->r, commit) != raft_current_term(ln->r)) {
        snprintf(why, cap, "leader n%llu has commit %llu of last %llu", (unsigned long long)ln->id,
                 (unsigned long long)commit, (unsigned long long)last);
        return false;
    }
    const struct raft_config *c = raft_configuration(ln->r);
    for (int i = 0; i < SIM_MAX_NODES; i++) {
        struct sim_node *n = &s->nodes[i];
        if (!n->used || n->retired)
            continue;
        if (!raft_config_find(c, n->id)) {
            SIM_TRACE(s, "n%llu is not a member any more: shut down", (unsigned long long)n->id);
            node_crash(s, n, false);
            n->retired = true;
            continue;
        }
        if (!n->alive || raft_commit_index(n->r) != commit || n->applied != commit ||
            raft_last_index(n->r) != last) {
            snprintf(why, cap, "leader n%llu at commit %llu, n%llu %s at commit %llu applied %llu last %llu",
                     (unsigned long long)ln->id, (unsigned long long)commit, (unsigned long long)n->id,
                     n->alive ? "is" : "is down,", n->alive ? (unsigned long long)raft_commit_index(n->r) : 0,
                     (unsigned long long)n->applied, n->alive ? (unsigned long long)raft_last_index(n->r) : 0);
            return false;
        }
    }
    if (!sim_clients_idle(s)) {
        snprintf(why, cap, "client operations still outstanding");
        return false;
    }
    return true;
}

/* ---- The run ---------------------------------------------------------------------------- */

void sim_run(uint64_t seed, int force_nodes, bool trace, FILE *trace_out, struct sim_result *res)
{
    struct sim *s = calloc(1, sizeof *s);
    if (!s)
        abort();
    s->seed = seed;
    s->rng = seed ^ 0x5DEECE66Dull;
    s->trace = trace;
    s->out = trace_out ? trace_out : stdout;
    choose_params(s, force_nodes);
    s->faults_on = true;
    SIM_TRACE(s, "seed %llu: %d nodes, loss %u/1000, dup %u/1000, latency %llu-%lluus, fsync %llu-%lluus, "
              "pre-vote %d, check-quorum %d, snapshot every %llu, chunk %u bytes, trailing %llu, faults until %llums",
              (unsigned long long)seed, s->p.n_nodes, s->p.loss_pm, s->p.dup_pm,
              (unsigned long long)s->p.lat_min, (unsigned long long)s->p.lat_max,
              (unsigned long long)s->p.fsync_min, (unsigned long long)s->p.fsync_max, s->p.ro.pre_vote,
              s->p.ro.check_quorum, (unsigned long long)s->p.snap_every, s->p.ro.snapshot_chunk_bytes,
              (unsigned long long)s->p.ro.trailing_entries, (unsigned long long)(s->p.fault_end / 1000));
    for (int i = 0; i < SIM_MAX_NODES; i++) {
        s->nodes[i].slot = i;
        s->nodes[i].id = (raft_id)i + 1;
    }
    for (int i = 0; i < s->p.n_nodes; i++) {
        s->nodes[i].used = true;
        s->nodes[i].initial = true;
        node_start(s, &s->nodes[i]);
    }
    sim_clients_init(s);
    sim_schedule(s, (struct sim_event){ .at = sim_range(&s->rng, 300000, 600000), .type = EV_FAULT });
    sim_schedule(s, (struct sim_event){ .at = s->p.fault_end, .type = EV_FAULTS_END });
    uint64_t end = s->p.fault_end + s->p.liveness_deadline;
    bool live = false;
    char why[256] = "";
    struct sim_event ev;
    while (!s->failed && sim_next_event(s, &ev)) {
        if (ev.at > end) {
            free(ev.frame);
            break;
        }
        s->now = ev.at;
        s->events++;
        struct sim_node *n = ev.type == EV_CLIENT || ev.type == EV_FAULT || ev.type == EV_FAULTS_END
                             ? NULL : &s->nodes[ev.node];
        switch (ev.type) {
        case EV_TICK:
            if (n->alive && n->incarnation == ev.incarnation && s->now < n->paused_until) {
                schedule_tick(s, n, n->paused_until - s->now); /* the clock jumps at resume */
            } else if (n->alive && n->incarnation == ev.incarnation) {
                raft_term t0 = raft_current_term(n->r);
                enum raft_role r0 = raft_role(n->r);
                raft_tick(n->r);
                check_term_change(s, n, t0, r0, NULL);
                sim_node_process(s, n);
                schedule_tick(s, n, n->tick_us);
            }
            break;
        case EV_DELIVER:
            if (n->alive && s->now < n->paused_until) {
                ev.at = n->paused_until; /* waits in the socket buffer */
                sim_schedule(s, ev);
                break;
            }
            sim_net_deliver(s, &ev);
            free(ev.frame);
            break;
        case EV_FSYNC:
            if (n->alive && n->incarnation == ev.incarnation && s->now < n->paused_until) {
                ev.at = n->paused_until; /* done, but the process sees it only when it resumes */
                sim_schedule(s, ev);
            } else if (n->alive && n->incarnation == ev.incarnation && n->async && n->n_jobs) {
                job_complete(s, n);
                sim_node_process(s, n);
            } else if (n->alive && n->incarnation == ev.incarnation && n->rd_out) {
                complete_ready(s, n);
                sim_node_process(s, n);
            }
            break;
        case EV_RESTART:
            if (!n->alive && n->incarnation == ev.incarnation && s->faults_on)
                node_start(s, n);
            break;
        case EV_FAULT:
            fault(s);
            break;
        case EV_CLIENT:
            sim_client_event(s, &s->clients[ev.node], ev.arg);
            break;
        case EV_FAULTS_END:
            faults_end(s);
            break;
        case EV_CRASH:
            if (n->alive && n->incarnation == ev.incarnation && s->faults_on)
                node_crash(s, n, true);
            break;
        }
        if (s->faults_on)
            crash_new_leaders(s);
        if (!s->failed)
            check_after_event(s);
        if (!s->failed && !s->faults_on && ev.type == EV_TICK && converged(s, why, sizeof why)) {
            live = true;
            break;
        }
    }
    if (!s->failed && !live)
        sim_fail(s, "liveness: %.1fs after the faults stopped the cluster has not converged: %s",
                 (double)s->p.liveness_deadline / 1e6, why);
    if (!s->failed)
        sim_clients_check(s);
    SIM_TRACE(s, "end: %llu events, %llu msgs (%llu lost), %llu crashes, %llu partitions, %llu membership "
              "changes, %llu transfers, %llu elections, %llu snapshots taken, %llu installed, "
              "%llu PUTs and %llu GETs ok, %llu ops unknown",
              (unsigned long long)s->events, (unsigned long long)s->msgs_sent, (unsigned long long)s->msgs_lost,
              (unsigned long long)s->crashes, (unsigned long long)s->partitions,
              (unsigned long long)s->member_changes, (unsigned long long)s->transfers,
              (unsigned long long)s->elections, (unsigned long long)s->snapshots_taken,
              (unsigned long long)s->snapshots_installed, (unsigned long long)s->puts_ok,
              (unsigned long long)s->gets_ok, (unsigned long long)s->ops_pending);

    res->crashes = s->crashes;
    res->snapshots_installed = s->snapshots_installed;
    res->member_changes = s->member_changes;
    res->elections = s->elections;
    res->ops = s->puts_ok + s->gets_ok;
    res->lin_unknown = s->lin_unknown;
    res->stalls = s->stalls;
    res->pauses = s->pauses;
    res->snap_rot = s->snap_rot;
    res->one_voter = s->one_voter;
    res->torn = 0;
    for (int i = 0; i < SIM_MAX_NODES; i++)
        res->torn += s->nodes[i].disk.torn_writes;
    res->ok = !s->failed;
    res->n_nodes = s->p.n_nodes;
    res->events = s->events;
    res->sim_us = s->now;
    snprintf(res->why, sizeof res->why, "%s", s->why);

    for (int i = 0; i < SIM_MAX_NODES; i++) {
        raft_destroy(s->nodes[i].r);
        sim_disk_free(&s->nodes[i].disk);
        for (size_t k = 0; k < s->nodes[i].n_jobs; k++)
            free(s->nodes[i].jobs[k].after);
        free(s->nodes[i].jobs);
        free(s->nodes[i].reads);
    }
    sim_events_free(s);
    check_free(s);
    free(s->ops);
    free(s);
}
