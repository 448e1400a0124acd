/*
 * cluster.c — one simulated run: the nodes, the faults, the event loop, and
 * the liveness check at the end.
 *
 * Each node is the shipped replica driver (src/replica) over a simulated
 * host (host.c): the driver takes the core's readies, merges their writes
 * into one storage job at a time, applies, groups the state machine's
 * commits and takes snapshots exactly as the node process does; the host
 * runs its jobs on the simulated disk (disk.c) in virtual time. Runs mix
 * nodes whose core uses async_persist (what the node ships) with nodes on
 * the plain ready contract. A crash destroys the driver and the core and
 * whatever was in flight; the disk keeps what was durable (disk.c) and the
 * state machine what it last committed; a restart recovers from exactly
 * that, as node.c does.
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
    p->disk_fault_pm = sim_chance(g, 400) ? (unsigned)sim_range(g, 50, 250) : 0;
    p->clock_pause_pm = sim_chance(g, 300) ? (unsigned)sim_range(g, 30, 150) : 0;
    p->commit_every_ms = sim_range(g, 1, 80);
    p->commit_every_entries = sim_range(g, 1, 40);
}

static void schedule_tick(struct sim *s, struct sim_node *n, uint64_t delay)
{
    struct sim_event ev = { .at = s->now + delay, .type = EV_TICK, .node = n->slot, .incarnation = n->incarnation };
    sim_schedule(s, ev);
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
            if (s->nodes[i].alive && s->nodes[i].job_busy)
                v[k++] = i;
        if (k)
            victim = v[sim_range(&s->rng, 0, (uint64_t)k - 1)];
    }
    if (victim < 0)
        victim = random_slot(s, true);
    if (victim >= 0)
        sim_node_crash(s, &s->nodes[victim], true);
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
            sim_node_start(s, n);
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
        /* A node down for good still counts in the quorum until the
         * operator removes it: removing a live voter first could leave a
         * quorum that needs the dead one. */
        if (s->hazard_slot >= 0 && m->id != s->nodes[s->hazard_slot].id)
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


/* ---- Disk faults and the operator ------------------------------------------------------- */

static const char *const rot_names[] = { "an entry", "the last entry", "the snapshot's data", "the hard state",
                                         "the state machine's file" };

/* The voters of the latest configuration n's log holds (its core's if it
 * runs, else its disk's), which it may yet commit as leader; SIZE_MAX if
 * it holds none. */
static size_t latest_voters(const struct sim_node *n)
{
    if (n->alive && n->r)
        return raft_config_voters(raft_configuration(n->r));
    const struct sim_disk *d = &n->disk;
    for (size_t k = d->n_log; k-- > 0;) {
        struct raft_config c;
        if (d->log[k].type == RAFT_ENTRY_CONFIG && raft_config_decode(&c, d->log[k].data, d->log[k].len) == RAFT_OK)
            return raft_config_voters(&c);
    }
    return d->snap.have ? raft_config_voters(&d->snap.meta.config) : SIZE_MAX;
}

/* A wiped disk, or bit rot of data already synced (found at the next
 * start). One node at a time, and only while the leader's configuration
 * (latest and committed) has three voters or more: beyond that a lost disk
 * is a lost majority, which no protocol survives without a backup. So must
 * every other node's latest configuration: a deposed leader that removed
 * itself holds, uncommitted, a configuration of two voters that only it can
 * still commit or have overwritten, and a new leader needs its vote (its
 * log is the longest) while it needs both of those two (seed 107854: one
 * of them lost its disk, and no leader could ever be elected). */
static void fault_disk(struct sim *s)
{
    int l = leader_slot(s);
    if (s->hazard_slot >= 0 || l < 0)
        return;
    struct raft *lr = s->nodes[l].r;
    struct raft_config cc;
    if (raft_config_voters(raft_configuration(lr)) < 3 ||
        raft_config_at(lr, raft_commit_index(lr), &cc) != RAFT_OK || raft_config_voters(&cc) < 3)
        return;
    for (int i = 0; i < SIM_MAX_NODES; i++)
        if (s->nodes[i].used && !s->nodes[i].retired && latest_voters(&s->nodes[i]) < 3)
            return;
    int victim = sim_chance(&s->rng, 300) ? l : -1;
    if (victim < 0) {
        int v[SIM_MAX_NODES], k = 0;
        for (int i = 0; i < SIM_MAX_NODES; i++)
            if (s->nodes[i].used && !s->nodes[i].retired)
                v[k++] = i;
        if (!k)
            return;
        victim = v[sim_range(&s->rng, 0, (uint64_t)k - 1)];
    }
    struct sim_node *n = &s->nodes[victim];
    uint64_t what = sim_range(&s->rng, 0, 9);
    if (what < 3) {
        /* The disk is gone: the node stays down (started without --join
         * it would refuse), and the operator replaces it. */
        SIM_TRACE(s, "WIPE n%llu: its disk and its state machine are lost", (unsigned long long)n->id);
        sim_node_crash(s, n, false);
        n->incarnation++; /* voids a pending restart */
        sim_disk_free(&n->disk);
        memset(&n->kv, 0, sizeof n->kv);
        memset(&n->kv_durable, 0, sizeof n->kv_durable);
        n->applied = n->durable_applied = 0;
        n->wiped = true;
        s->wipes++;
        s->hazard_slot = victim;
        sim_operator_replace(s, n);
        return;
    }
    /* Bit rot while the node is down, found when it starts again. */
    int kind = (int)sim_range(&s->rng, 0, 4);
    if (n->alive)
        sim_node_crash(s, n, true);
    bool done = kind == 4 ? (n->durable_applied > 0) : sim_disk_rot(&n->disk, (enum sim_rot)kind, &s->rng);
    if (!done)
        return;
    if (kind == 4)
        n->sm_rotten = true;
    s->rots++;
    s->hazard_slot = victim;
    n->hazard_floor = 0;
    SIM_TRACE(s, "ROT n%llu: a bit of %s flips on its disk", (unsigned long long)n->id, rot_names[kind]);
}

static void schedule_operator(struct sim *s)
{
    sim_schedule(s, (struct sim_event){ .at = s->now + sim_range(&s->rng, 100000, 300000), .type = EV_OPERATOR });
}

void sim_operator_replace(struct sim *s, struct sim_node *n)
{
    n->retired = true;
    if (s->replace_slot < 0) {
        s->replace_slot = n->slot;
        s->hazard_slot = n->slot;
        schedule_operator(s);
    }
}

/* The operator at work: `member remove` the old id through the leader
 * until the configuration without it commits, then `member add` a new
 * node (an unused id, started empty as with --join). */
static void operator_step(struct sim *s)
{
    if (s->replace_slot < 0)
        return;
    struct sim_node *old = &s->nodes[s->replace_slot];
    int l = leader_slot(s);
    if (l < 0 || s->now < s->nodes[l].paused_until) {
        schedule_operator(s);
        return;
    }
    struct sim_node *ln = &s->nodes[l];
    struct raft_config cc;
    bool in_latest = raft_config_find(raft_configuration(ln->r), old->id) != NULL;
    bool in_committed = raft_config_at(ln->r, raft_commit_index(ln->r), &cc) != RAFT_OK ||
                        raft_config_find(&cc, old->id) != NULL;
    if (in_latest) {
        raft_index idx;
        int rc = raft_change_member(ln->r, RAFT_REMOVE, old->id, &idx);
        SIM_TRACE(s, "OPERATOR via leader n%llu: member remove n%llu: %s", (unsigned long long)ln->id,
                  (unsigned long long)old->id, rc ? raft_strerror(rc) : "proposed");
        if (rc == RAFT_OK) {
            s->member_changes++;
            sim_node_process(s, ln);
        }
        schedule_operator(s);
        return;
    }
    if (in_committed) {
        schedule_operator(s); /* the removal has not committed yet */
        return;
    }
    /* Removed for good: the cluster tolerates a disk fault again. */
    s->hazard_slot = -1;
    int free_slot = -1;
    for (int i = 0; i < SIM_MAX_NODES && free_slot < 0; i++)
        if (!s->nodes[i].used)
            free_slot = i;
    if (free_slot >= 0) {
        raft_index idx;
        raft_id id = (raft_id)free_slot + 1;
        int rc = raft_change_member(ln->r, RAFT_ADD_VOTER, id, &idx);
        SIM_TRACE(s, "OPERATOR via leader n%llu: member add n%llu (replacing n%llu): %s", (unsigned long long)ln->id,
                  (unsigned long long)id, (unsigned long long)old->id, rc ? raft_strerror(rc) : "proposed");
        if (rc != RAFT_OK) {
            s->hazard_slot = s->replace_slot;
            schedule_operator(s);
            return;
        }
        s->member_changes++;
        s->nodes[free_slot].used = true;
        sim_node_start(s, &s->nodes[free_slot]);
        sim_node_process(s, ln);
    }
    s->replaced++;
    s->replace_slot = -1;
}

/* A node that had a disk fault and started again is whole once it knows
 * committed everything that was committed when it started, and its host
 * has removed its lost-tail marker: the host does so at its next tick, as
 * node.c does, and a node that crashes before (its clock stopped) starts
 * amnesiac again and needs a leader elected without it (seed 154368: a
 * disk wiped meanwhile left no such leader). */
static void hazard_update(struct sim *s)
{
    if (s->hazard_slot < 0 || s->replace_slot >= 0)
        return;
    struct sim_node *n = &s->nodes[s->hazard_slot];
    if (n->alive && n->hazard_floor && raft_commit_index(n->r) >= n->hazard_floor &&
        !raft_wants_snapshot(n->r) && !replica_lost_tail(n->d) && !n->disk.lost_tail)
        s->hazard_slot = -1;
}

/* The clock of a node stands still (a stuck timer, a VM whose clock source
 * stalls) while the process keeps serving messages: it misses ticks. */
static void fault_clock_pause(struct sim *s)
{
    int victim = random_slot(s, true);
    if (victim < 0)
        return;
    struct sim_node *n = &s->nodes[victim];
    n->clock_paused_until = s->now + sim_range(&s->rng, 100000, 2000000);
    s->clock_pauses++;
    SIM_TRACE(s, "CLOCK of n%llu stops until %llums", (unsigned long long)n->id,
              (unsigned long long)(n->clock_paused_until / 1000));
}

static void fault(struct sim *s)
{
    if (!s->faults_on)
        return;
    uint64_t f = sim_range(&s->rng, 0, 99);
    if (sim_chance(&s->rng, s->p.disk_fault_pm))
        fault_disk(s);
    else if (sim_chance(&s->rng, s->p.clock_pause_pm))
        fault_clock_pause(s);
    else if (f < 30 && sim_range(&s->rng, 0, 99) < s->p.pause_pct)
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
        s->nodes[i].paused_until = s->nodes[i].clock_paused_until = 0;
    SIM_TRACE(s, "FAULTS END: partitions healed, loss off, every node restarting");
    for (int i = 0; i < SIM_MAX_NODES; i++) {
        struct sim_node *n = &s->nodes[i];
        if (n->used && !n->alive && !n->retired) {
            n->incarnation++; /* void its pending restart */
            sim_node_start(s, n);
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
            sim_node_crash(s, n, false);
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
    s->hazard_slot = s->replace_slot = -1;
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
        sim_node_start(s, &s->nodes[i]);
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
        struct sim_node *n = ev.type == EV_CLIENT || ev.type == EV_FAULT || ev.type == EV_FAULTS_END ||
                             ev.type == EV_OPERATOR ? NULL : &s->nodes[ev.node];
        switch (ev.type) {
        case EV_TICK:
            if (n->alive && n->incarnation == ev.incarnation && s->now < n->paused_until) {
                schedule_tick(s, n, n->paused_until - s->now); /* the clock jumps at resume */
            } else if (n->alive && n->incarnation == ev.incarnation && s->now < n->clock_paused_until) {
                schedule_tick(s, n, n->clock_paused_until - s->now); /* no tick until the clock moves */
            } else if (n->alive && n->incarnation == ev.incarnation) {
                sim_node_tick(s, n);
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
            } else if (n->alive && n->incarnation == ev.incarnation && n->job_busy) {
                sim_node_job_done(s, n);
            }
            break;
        case EV_SNAPSHOT:
        case EV_TIMER:
            if (n->alive && n->incarnation == ev.incarnation && s->now < n->paused_until) {
                ev.at = n->paused_until;
                sim_schedule(s, ev);
            } else if (n->alive && n->incarnation == ev.incarnation && ev.type == EV_SNAPSHOT) {
                sim_node_snapshot_done(s, n);
            } else if (n->alive && n->incarnation == ev.incarnation) {
                sim_node_timer(s, n, ev.arg);
            }
            break;
        case EV_RESTART:
            if (!n->alive && !n->retired && n->incarnation == ev.incarnation && s->faults_on)
                sim_node_start(s, n);
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
        case EV_OPERATOR:
            operator_step(s);
            break;
        case EV_CRASH:
            if (n->alive && n->incarnation == ev.incarnation && s->faults_on)
                sim_node_crash(s, n, true);
            break;
        }
        if (s->faults_on)
            crash_new_leaders(s);
        hazard_update(s);
        /* Between events no ready is half applied (the simulated state
         * machine never runs out of space): the driver applied exactly what
         * the core handed out. */
        for (int i = 0; i < SIM_MAX_NODES && !s->failed; i++)
            if (s->nodes[i].alive && raft_applied_index(s->nodes[i].r) != s->nodes[i].applied)
                sim_fail(s, "host/core disagree: n%llu's state machine applied %llu, the core says %llu",
                         (unsigned long long)s->nodes[i].id, (unsigned long long)s->nodes[i].applied,
                         (unsigned long long)raft_applied_index(s->nodes[i].r));
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
    res->wipes = s->wipes;
    res->rots = s->rots;
    res->refusals = s->refusals;
    res->tail_cuts = s->tail_cuts;
    res->repairs_local = s->repairs_local;
    res->repairs_from_peers = s->repairs_from_peers;
    res->replaced = s->replaced;
    res->clock_pauses = s->clock_pauses;
    res->puts = s->puts_ok;
    res->gets = s->gets_ok;
    res->torn = 0;
    for (int i = 0; i < SIM_MAX_NODES; i++)
        res->torn += s->nodes[i].disk.torn_writes;
    res->ok = !s->failed;
    res->n_nodes = s->p.n_nodes;
    res->events = s->events;
    res->sim_us = s->now;
    snprintf(res->why, sizeof res->why, "%s", s->why);

    for (int i = 0; i < SIM_MAX_NODES; i++)
        sim_node_free(s, &s->nodes[i]);
    sim_events_free(s);
    check_free(s);
    free(s->ops);
    free(s);
}
