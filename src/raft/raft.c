/*
 * raft.c — the Raft protocol as a pure state machine (see include/raft.h).
 *
 * Layout of this file, top to bottom:
 *   1. state and small helpers (randomness, outboxes, configuration history)
 *   2. role changes: follower, pre-candidate, candidate, leader (§3.3, §9.6)
 *   3. the leader's replication: progress, appends, snapshots, commit (§3.5, §5)
 *   4. message handling (raft_step), one function per message type
 *   5. client requests: propose, read index (§6.4), transfer (§3.10),
 *      membership (§4.1)
 *   6. ready / advance, restore, introspection
 *
 * Invariants kept throughout (checked by the simulator in tests/sim):
 *   - a leader sends nothing before the hard state of its term is durable;
 *   - what counts as persisted is learnt by ready number, and capped below a
 *     truncation until the ready carrying it is durable;
 *   - term and vote reach disk (hard_state in a ready) before any message that
 *     depends on them leaves (send_after_persist);
 *   - the leader counts itself towards a quorum only up to what it has
 *     persisted (r->persisted), and commits only entries of its own term
 *     (Figure 3.7 / paper Figure 8);
 *   - a configuration takes effect when appended, and at most one is
 *     uncommitted at a time (§4.1).
 */
#include "raft.h"

#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "raft/log.h"

/* ---- 1. State -------------------------------------------------------------- */

struct inflight {
    raft_index last; /* last index of an APPEND in flight */
    uint64_t bytes;
};

struct progress {
    raft_id id;
    raft_index match, next;
    uint8_t state;          /* enum raft_progress_state */
    bool recent_active;     /* heard from since the last check-quorum round */
    bool probe_sent;        /* PROBE: one append out, waiting for its answer */
    uint8_t stalled_rounds; /* REPLICATE: heartbeat answers without progress */
    bool progressed;        /* an append answer advanced match since the last heartbeat (sent or answered) */
    bool appended_since_hb; /* entries were sent after the last heartbeat to it */
    struct inflight *ring;  /* REPLICATE: appends in flight, oldest first */
    uint32_t ring_head, ring_n;
    uint64_t ring_bytes;
    uint64_t read_acked;    /* highest read round this follower confirmed */
    struct raft_snapshot_meta snap; /* SNAPSHOT: the snapshot we are sending (maybe not our newest) */
    uint64_t snap_offset;   /* SNAPSHOT: next byte to send */
    bool snap_waiting;      /* SNAPSHOT: a chunk is out, waiting for its answer */
    bool snap_lost;         /* SNAPSHOT: a chunk went unanswered for a heartbeat round */
};

struct config_at {
    raft_index index;
    struct raft_config config;
};

struct outbox {
    struct raft_message *v;
    size_t n, cap;
};

/* A ready that asked the host to write something, until the host reports it
 * durable (raft_persisted, or raft_advance without async_persist). */
struct pending_write {
    uint64_t seq;
    raft_index last;    /* `handed` when it was taken: the disk then holds the log up to here */
    raft_term term;     /* the hard state's term once it is durable */
};

struct pending_read {
    uint64_t context;
    raft_id from;       /* who asked: self, or a follower */
    raft_index index;   /* commit index when the read was admitted */
    uint64_t round;     /* heartbeat round confirming it; 0 = not yet admitted */
};

struct raft {
    struct raft_options o;
    uint64_t rng;

    /* Persistent state (§3.2), written through hard_state in a ready. */
    raft_term term;
    raft_id vote;
    bool hs_dirty;

    struct raft_log log;
    raft_index commit;
    raft_index applied;     /* advanced by raft_advance */
    raft_index apply_handed;/* committed entries handed to the host so far */
    raft_index persisted;   /* log is durable up to here (last advance, or raft_persisted) */
    raft_index handed;      /* entries up to here were handed to a ready */
    raft_index truncate_pending; /* truncation to report in the next ready; 0 none */
    /* Durability, by ready number. A report names the last ready whose
     * writes are on disk; a report of an earlier write must not count for
     * entries truncated since and written again with the same (index, term)
     * (ABA): after a truncation from `cap_from`, nothing from there on counts
     * as persisted until ready `cap_seq`, which carries the truncation, is
     * itself durable. */
    uint64_t ready_seq;     /* number of the last ready handed out */
    uint64_t durable_seq;   /* every ready up to this one is durable */
    struct pending_write *writes;
    size_t n_writes, cap_writes;
    raft_index cap_from;    /* 0: no cap */
    uint64_t cap_seq;
    raft_term durable_term; /* the term on disk: a leader sends nothing of a newer one */

    /* Configurations present in the log (and the snapshot's), ascending. */
    struct config_at *configs;
    size_t n_configs, cap_configs;
    struct raft_config config; /* the latest: in effect */

    bool have_snapshot;
    struct raft_snapshot_meta snap;

    /* raft_want_snapshot: the host lost its state machine and cannot
     * rebuild it from its own snapshot; until a leader's snapshot at or
     * after want_base is installed, nothing is applied, the node never
     * campaigns, and it asks every leader it hears from for one. */
    bool want_snapshot;
    raft_index want_base;

    /* Receiving a snapshot (follower). */
    bool in_snap_active;
    struct raft_snapshot_meta in_snap;
    uint64_t in_snap_offset;
    uint32_t in_snap_crc;
    struct raft_snapshot_chunk chunk_pending, chunk_handed;
    uint8_t *chunk_pending_buf, *chunk_handed_buf;
    bool install_pending, install_handed;
    struct raft_snapshot_meta install_pending_meta, install_handed_meta;

    enum raft_role role;
    raft_id leader;
    unsigned election_elapsed;
    unsigned heartbeat_elapsed;
    unsigned randomized_timeout;
    raft_id votes_granted[RAFT_MAX_MEMBERS], votes_rejected[RAFT_MAX_MEMBERS];
    size_t n_granted, n_rejected;
    bool campaign_transfer; /* our election was started by TIMEOUT_NOW */

    /* Leader. */
    struct progress prs[RAFT_MAX_MEMBERS];
    size_t n_prs;
    raft_index term_start;  /* index of this term's no-op */
    raft_id transfer_to;
    unsigned transfer_elapsed;
    bool bcast_wanted;      /* send appends to everyone at the next ready */
    struct pending_read *reads_pending;
    size_t n_reads_pending, cap_reads_pending;
    uint64_t read_round;    /* last heartbeat round sent */
    bool read_round_wanted; /* admitted reads wait for round read_round + 1 */

    /* Outputs accumulated for the next ready, and those handed out. */
    struct outbox now, after, now_handed, after_handed;
    struct raft_read_state *reads_out, *reads_handed;
    size_t n_reads_out, cap_reads_out, n_reads_handed;
    struct raft_entry *rd_entries, *rd_committed;
    size_t cap_rd_entries, cap_rd_committed;
    raft_index compact_pending;
    bool ready_outstanding;

    struct raft_stats stats;
};

#define MAX_COMMITTED_PER_READY 8192

static uint64_t next_random(struct raft *r)
{
    /* splitmix64: small, fast, and good enough for election jitter. */
    uint64_t z = (r->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void randomize_timeout(struct raft *r)
{
    r->randomized_timeout = r->o.election_ticks + (unsigned)(next_random(r) % r->o.election_ticks);
}

static raft_index last_index(const struct raft *r) { return raft_log_last(&r->log); }
static raft_term last_term(const struct raft *r) { return raft_log_term(&r->log, last_index(r)); }

static void set_term(struct raft *r, raft_term term)
{
    if (term != r->term) {
        r->term = term;
        r->vote = 0;
        r->hs_dirty = true;
    }
}

static bool is_voter(const struct raft *r, raft_id id)
{
    const struct raft_member *m = raft_config_find(&r->config, id);
    return m && m->role == RAFT_VOTER;
}

static size_t quorum(const struct raft *r) { return raft_config_voters(&r->config) / 2 + 1; }

static bool term_durable(const struct raft *r);

/* Queues m. A message that cannot be queued for lack of memory is dropped:
 * Raft tolerates lost messages. Appends own their entries array. */
static void send(struct raft *r, struct raft_message *m)
{
    m->from = r->o.id;
    if (m->term == 0)
        m->term = r->term;
    /* Replication traffic of a leader depends only on state already durable
     * and may leave before this ready's fsync (§10.2.1), once our term is
     * on disk (appends and heartbeats are not even made before: see
     * term_durable). Everything else -- votes, acknowledgements, a
     * candidate's requests, a read answer of a term not yet durable -- must
     * wait for the fsync. */
    bool immediate = r->role == RAFT_LEADER && term_durable(r) &&
        (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT ||
         m->type == RAFT_MSG_SNAPSHOT || m->type == RAFT_MSG_TIMEOUT_NOW ||
         m->type == RAFT_MSG_READ_INDEX_RESP);
    if (m->type == RAFT_MSG_READ_INDEX)
        immediate = true; /* carries no state of ours */
    struct outbox *box = immediate ? &r->now : &r->after;
    if (box->n == box->cap) {
        size_t cap = box->cap ? box->cap * 2 : 16;
        struct raft_message *grown = realloc(box->v, cap * sizeof *grown);
        if (!grown) {
            free((void *)m->entries);
            r->stats.msgs_dropped++;
            return;
        }
        box->v = grown;
        box->cap = cap;
    }
    box->v[box->n++] = *m;
}

static void outbox_clear(struct outbox *box)
{
    for (size_t i = 0; i < box->n; i++)
        free((void *)box->v[i].entries);
    box->n = 0;
}

static void emit_read(struct raft *r, uint64_t context, raft_index index, bool ok)
{
    if (r->n_reads_out == r->cap_reads_out) {
        size_t cap = r->cap_reads_out ? r->cap_reads_out * 2 : 16;
        struct raft_read_state *grown = realloc(r->reads_out, cap * sizeof *grown);
        if (!grown)
            return; /* the host times the read out */
        r->reads_out = grown;
        r->cap_reads_out = cap;
    }
    r->reads_out[r->n_reads_out++] = (struct raft_read_state){ context, index, ok };
}

/* Configuration history: entries appended or truncated move it. */
static int config_push(struct raft *r, raft_index index, const struct raft_config *c)
{
    if (r->n_configs == r->cap_configs) {
        size_t cap = r->cap_configs ? r->cap_configs * 2 : 4;
        struct config_at *grown = realloc(r->configs, cap * sizeof *grown);
        if (!grown)
            return RAFT_ENOMEM;
        r->configs = grown;
        r->cap_configs = cap;
    }
    r->configs[r->n_configs].index = index;
    r->configs[r->n_configs].config = *c;
    r->n_configs++;
    r->config = *c;
    return RAFT_OK;
}

static void config_truncate(struct raft *r, raft_index from)
{
    while (r->n_configs && r->configs[r->n_configs - 1].index >= from)
        r->n_configs--;
    if (r->n_configs)
        r->config = r->configs[r->n_configs - 1].config;
    else
        memset(&r->config, 0, sizeof r->config);
}

/* Forgets configurations older than the one in force at index. */
static void config_compact(struct raft *r, raft_index index)
{
    size_t keep_from = 0;
    for (size_t i = 0; i < r->n_configs; i++)
        if (r->configs[i].index <= index)
            keep_from = i;
    if (keep_from) {
        memmove(r->configs, r->configs + keep_from, (r->n_configs - keep_from) * sizeof *r->configs);
        r->n_configs -= keep_from;
    }
}

static const struct raft_config *config_at_index(const struct raft *r, raft_index index)
{
    const struct raft_config *c = NULL;
    for (size_t i = 0; i < r->n_configs && r->configs[i].index <= index; i++)
        c = &r->configs[i].config;
    return c;
}

static raft_index config_index(const struct raft *r)
{
    return r->n_configs ? r->configs[r->n_configs - 1].index : 0;
}

static void sync_progress(struct raft *r);
static void maybe_step_down_removed(struct raft *r);

/* Appends to our log and keeps the configuration in step. */
static int log_append(struct raft *r, const struct raft_entry *e)
{
    int rc = raft_log_append(&r->log, e);
    if (rc)
        return rc;
    if (e->type == RAFT_ENTRY_CONFIG) {
        struct raft_config c;
        if (raft_config_decode(&c, e->data, e->len) == RAFT_OK) {
            rc = config_push(r, e->index, &c);
            if (rc) {
                raft_log_truncate(&r->log, e->index);
                return rc;
            }
            if (r->role == RAFT_LEADER)
                sync_progress(r);
        }
    }
    return RAFT_OK;
}

/* Entries >= from are leaving the log before they were persisted: an
 * acknowledgement of them still waiting for this ready's fsync would claim
 * what the disk will never hold (§3.8), so it is dropped (as if lost). Acks
 * already handed out are true: their entries are on disk when they leave. */
static void drop_unpersisted_acks(struct raft *r, raft_index from)
{
    size_t keep = 0;
    for (size_t i = 0; i < r->after.n; i++) {
        const struct raft_message *m = &r->after.v[i];
        if (m->type == RAFT_MSG_APPEND_RESP && !m->reject && m->index >= from)
            r->stats.msgs_dropped++;
        else
            r->after.v[keep++] = *m;
    }
    r->after.n = keep;
}

/* The next ready carries a truncation from `from`: until it is durable the
 * disk may still hold the old entries there, so nothing from `from` on may
 * count as persisted, whatever an earlier write reports. */
static void cap_persisted(struct raft *r, raft_index from)
{
    if (!r->cap_from || from < r->cap_from)
        r->cap_from = from;
    r->cap_seq = r->ready_seq + 1;
}

static void log_truncate(struct raft *r, raft_index from)
{
    drop_unpersisted_acks(r, from);
    raft_log_truncate(&r->log, from);
    config_truncate(r, from);
    if (r->handed >= from)
        r->handed = from - 1;
    if (r->persisted >= from)
        r->persisted = from - 1;
    if (!r->truncate_pending || from < r->truncate_pending)
        r->truncate_pending = from;
    cap_persisted(r, from);
}

/* ---- 2. Roles -------------------------------------------------------------- */

static struct progress *progress_of(struct raft *r, raft_id id)
{
    for (size_t i = 0; i < r->n_prs; i++)
        if (r->prs[i].id == id)
            return &r->prs[i];
    return NULL;
}

static void progress_free_all(struct raft *r)
{
    for (size_t i = 0; i < r->n_prs; i++)
        free(r->prs[i].ring);
    r->n_prs = 0;
}

static void fail_pending_reads(struct raft *r)
{
    for (size_t i = 0; i < r->n_reads_pending; i++) {
        struct pending_read *p = &r->reads_pending[i];
        if (p->from == r->o.id) {
            emit_read(r, p->context, 0, false);
        } else {
            struct raft_message m = { .type = RAFT_MSG_READ_INDEX_RESP, .to = p->from,
                                      .context = p->context, .reject = 1 };
            send(r, &m);
        }
    }
    r->n_reads_pending = 0;
    r->read_round_wanted = false;
}

/* Common to every role change: a new term or a new role starts clean. */
static void reset(struct raft *r, raft_term term)
{
    if (r->role == RAFT_LEADER)
        fail_pending_reads(r);
    set_term(r, term);
    r->leader = 0;
    r->election_elapsed = 0;
    r->heartbeat_elapsed = 0;
    randomize_timeout(r);
    r->n_granted = r->n_rejected = 0;
    r->transfer_to = 0;
    r->transfer_elapsed = 0;
    r->campaign_transfer = false;
    r->bcast_wanted = false;
    progress_free_all(r);
}

static void become_follower(struct raft *r, raft_term term, raft_id leader)
{
    reset(r, term);
    r->role = RAFT_FOLLOWER;
    r->leader = leader;
}

/* May we campaign? A voter of the latest configuration may; so may a voter
 * of the one an uncommitted latest configuration replaces: a leader that
 * removed itself and stepped down before the change committed may be the
 * only server whose log holds it, and the others, still in the old
 * configuration, need its vote, which it refuses them (its log is longer);
 * it must lead again to commit the change (§4.2.2). */
static bool promotable(const struct raft *r)
{
    if (r->want_snapshot)
        return false; /* a leader must have a state machine to serve and a snapshot to send */
    if (is_voter(r, r->o.id))
        return true;
    if (r->n_configs < 2 || config_index(r) <= r->commit)
        return false;
    const struct raft_member *m = raft_config_find(&r->configs[r->n_configs - 2].config, r->o.id);
    return m && m->role == RAFT_VOTER;
}

static void send_append(struct raft *r, struct progress *pr, bool allow_empty);

static void become_leader(struct raft *r)
{
    reset(r, r->term);
    r->role = RAFT_LEADER;
    r->leader = r->o.id;
    sync_progress(r);
    /* §6.4: a no-op of our own term, so we learn what is committed and can
     * serve reads; §3.6.2: it also commits earlier terms' entries. */
    struct raft_entry noop = { .term = r->term, .index = last_index(r) + 1, .type = RAFT_ENTRY_NOOP };
    if (log_append(r, &noop) != RAFT_OK) {
        /* Out of memory on the very first entry: give up leadership rather
         * than lead without the no-op. */
        become_follower(r, r->term, 0);
        return;
    }
    r->term_start = noop.index;
    r->bcast_wanted = true;
}

static void send_vote_requests(struct raft *r, bool pre)
{
    for (uint32_t i = 0; i < r->config.n; i++) {
        const struct raft_member *mb = &r->config.members[i];
        if (mb->role != RAFT_VOTER || mb->id == r->o.id)
            continue;
        struct raft_message m = {
            .type = pre ? RAFT_MSG_PREVOTE : RAFT_MSG_VOTE,
            .to = mb->id,
            .term = pre ? r->term + 1 : r->term,
            .last_index = last_index(r),
            .last_term = last_term(r),
            .transfer = r->campaign_transfer,
        };
        send(r, &m);
    }
}

static void poll_vote(struct raft *r, raft_id from, bool granted);

static void become_candidate(struct raft *r, bool transfer)
{
    reset(r, r->term + 1);
    r->role = RAFT_CANDIDATE;
    r->vote = r->o.id;
    r->hs_dirty = true;
    r->campaign_transfer = transfer;
    r->stats.elections_started++;
    send_vote_requests(r, false);
    poll_vote(r, r->o.id, true);
}

static void become_precandidate(struct raft *r)
{
    /* §9.6: ask first whether we could win, without touching our term, so a
     * node that was cut off cannot disrupt a healthy leader when it returns. */
    raft_term term = r->term;
    reset(r, term);
    r->role = RAFT_PRECANDIDATE;
    send_vote_requests(r, true);
    poll_vote(r, r->o.id, true);
}

static void campaign(struct raft *r, bool transfer)
{
    if (!promotable(r))
        return;
    /* A campaign asks for term + 1; at RAFT_MAX_TERM that is 2^63, which no
     * peer would decode and no disk should hold. Only a forged term could
     * bring us here (a term grows by one per election); stay a follower and
     * count it, so the operator sees why no election starts. */
    if (r->term >= RAFT_MAX_TERM) {
        r->stats.campaigns_refused++;
        return;
    }
    if (r->o.pre_vote && !transfer)
        become_precandidate(r);
    else
        become_candidate(r, transfer);
}

static void poll_vote(struct raft *r, raft_id from, bool granted)
{
    for (size_t i = 0; i < r->n_granted; i++)
        if (r->votes_granted[i] == from)
            return;
    for (size_t i = 0; i < r->n_rejected; i++)
        if (r->votes_rejected[i] == from)
            return;
    if (!is_voter(r, from))
        return; /* only voters of our configuration count (learners never) */
    if (granted)
        r->votes_granted[r->n_granted++] = from;
    else
        r->votes_rejected[r->n_rejected++] = from;

    if (r->n_granted >= quorum(r)) {
        if (r->role == RAFT_PRECANDIDATE)
            become_candidate(r, false);
        else if (r->role == RAFT_CANDIDATE)
            become_leader(r);
    } else if (r->n_rejected >= quorum(r)) {
        become_follower(r, r->term, 0);
    }
}

/* ---- 3. Replication (leader) ------------------------------------------------ */

static void progress_init(struct raft *r, struct progress *pr, raft_id id)
{
    memset(pr, 0, sizeof *pr);
    pr->id = id;
    pr->next = last_index(r) + 1;
    pr->state = RAFT_PROGRESS_PROBE;
    pr->ring = calloc(r->o.max_inflight_msgs, sizeof *pr->ring);
    /* Without the ring the follower stays in probe mode: slower, still correct. */
}

/* Makes the progress table match the configuration: members added get a
 * fresh entry, members removed lose theirs. */
static void sync_progress(struct raft *r)
{
    for (size_t i = 0; i < r->n_prs;) {
        if (!raft_config_find(&r->config, r->prs[i].id) || r->prs[i].id == r->o.id) {
            free(r->prs[i].ring);
            r->prs[i] = r->prs[--r->n_prs];
        } else {
            i++;
        }
    }
    for (uint32_t i = 0; i < r->config.n; i++) {
        raft_id id = r->config.members[i].id;
        if (id == r->o.id || progress_of(r, id))
            continue;
        progress_init(r, &r->prs[r->n_prs++], id);
    }
}

static void become_probe(struct progress *pr)
{
    pr->state = RAFT_PROGRESS_PROBE;
    pr->probe_sent = false;
    pr->next = pr->match + 1;
    pr->ring_n = 0;
    pr->ring_head = 0;
    pr->ring_bytes = 0;
    pr->stalled_rounds = 0;
}

static void become_replicate(struct progress *pr)
{
    pr->state = pr->ring ? RAFT_PROGRESS_REPLICATE : RAFT_PROGRESS_PROBE;
    pr->probe_sent = false;
    pr->next = pr->match + 1;
    pr->ring_n = pr->ring_head = 0;
    pr->ring_bytes = 0;
    pr->stalled_rounds = 0;
}

static bool inflight_full(const struct raft *r, const struct progress *pr)
{
    return pr->ring_n >= r->o.max_inflight_msgs || pr->ring_bytes >= r->o.max_inflight_bytes;
}

static void inflight_add(const struct raft *r, struct progress *pr, raft_index last, uint64_t bytes)
{
    uint32_t slot = (pr->ring_head + pr->ring_n) % r->o.max_inflight_msgs;
    pr->ring[slot] = (struct inflight){ last, bytes };
    pr->ring_n++;
    pr->ring_bytes += bytes;
}

/* Frees every in-flight append up to and including index. */
static void inflight_ack(const struct raft *r, struct progress *pr, raft_index index)
{
    while (pr->ring_n && pr->ring[pr->ring_head].last <= index) {
        pr->ring_bytes -= pr->ring[pr->ring_head].bytes;
        pr->ring_head = (pr->ring_head + 1) % r->o.max_inflight_msgs;
        pr->ring_n--;
    }
}

/* A leader's traffic carries its term: it must not leave before that term
 * is on our disk, or a crash could bring us back in the old term to win the
 * same term again and write other entries at the same (index, term). With
 * one voter, campaign and leadership happen in one step, before the fsync.
 * The traffic held back goes out once the term is durable (mark_durable). */
static bool term_durable(const struct raft *r)
{
    return r->durable_term >= r->term;
}

static void send_snapshot_chunk(struct raft *r, struct progress *pr)
{
    /* We took a newer snapshot since this transfer began. Restarting with
     * it at every snapshot could keep a slow follower from ever finishing
     * one, so the transfer goes on with the older one while the host still
     * serves it: until a chunk goes unanswered for a heartbeat round (lost,
     * or dropped by a host that no longer has that snapshot). */
    if (pr->snap.index != r->snap.index && (pr->snap_offset == 0 || pr->snap_lost)) {
        pr->snap = r->snap;
        pr->snap_offset = 0;
    }
    pr->snap_lost = false;
    uint64_t remaining = pr->snap.size - pr->snap_offset;
    uint32_t len = remaining > r->o.snapshot_chunk_bytes ? r->o.snapshot_chunk_bytes : (uint32_t)remaining;
    struct raft_message m = {
        .type = RAFT_MSG_SNAPSHOT,
        .to = pr->id,
        .snapshot = pr->snap,
        .offset = pr->snap_offset,
        .len = len,
        .done = pr->snap_offset + len == pr->snap.size,
    };
    if (pr->snap_offset == 0)
        r->stats.snapshots_sent++;
    send(r, &m);
    pr->snap_waiting = true;
    pr->appended_since_hb = true;
}

/* Sends what the follower needs next, if flow control allows (§3.5, §10.2).
 * allow_empty: send even with no entries (to carry the commit index or probe). */
static void send_append(struct raft *r, struct progress *pr, bool allow_empty)
{
    if (!term_durable(r))
        return;
    if (pr->state == RAFT_PROGRESS_SNAPSHOT) {
        if (!pr->snap_waiting)
            send_snapshot_chunk(r, pr);
        return;
    }
    if (pr->state == RAFT_PROGRESS_PROBE && pr->probe_sent)
        return;
    if (pr->state == RAFT_PROGRESS_REPLICATE && inflight_full(r, pr))
        return;

    raft_index prev = pr->next - 1;
    raft_term prev_term = raft_log_term(&r->log, prev);
    if (prev + 1 < r->log.first || (prev_term == 0 && prev != 0)) {
        /* What the follower needs was compacted away: send the snapshot (§5.3). */
        if (!r->have_snapshot)
            return; /* cannot happen: we compact only behind a snapshot */
        pr->state = RAFT_PROGRESS_SNAPSHOT;
        pr->snap = r->snap;
        pr->snap_offset = 0;
        pr->snap_waiting = false;
        pr->snap_lost = false;
        send_snapshot_chunk(r, pr);
        return;
    }

    raft_index last = last_index(r);
    size_t n = 0;
    uint64_t bytes = 0;
    while (pr->next + n <= last) {
        const struct raft_entry *e = raft_log_get(&r->log, pr->next + n);
        if (n > 0 && bytes + e->len > r->o.max_msg_bytes)
            break;
        bytes += e->len;
        n++;
        if (n >= 65536)
            break; /* the codec's per-message limit */
    }
    if (n == 0 && !allow_empty)
        return;

    struct raft_entry *copy = NULL;
    if (n) {
        copy = malloc(n * sizeof *copy);
        if (!copy)
            return; /* retried on the next heartbeat answer */
        memcpy(copy, raft_log_get(&r->log, pr->next), n * sizeof *copy);
    }
    struct raft_message m = {
        .type = RAFT_MSG_APPEND,
        .to = pr->id,
        .prev_index = prev,
        .prev_term = prev_term,
        .commit = r->commit,
        .n_entries = (uint32_t)n,
        .entries = copy,
    };
    send(r, &m);
    if (n)
        pr->appended_since_hb = true;
    if (pr->state == RAFT_PROGRESS_REPLICATE) {
        if (n) {
            inflight_add(r, pr, pr->next + n - 1, bytes + n);
            pr->next += n;
        }
    } else {
        pr->probe_sent = true;
    }
}

static void bcast_append(struct raft *r)
{
    for (size_t i = 0; i < r->n_prs; i++)
        send_append(r, &r->prs[i], true);
}

static void send_heartbeat(struct raft *r, struct progress *pr, uint64_t round)
{
    if (!term_durable(r))
        return;
    raft_index commit = pr->match < r->commit ? pr->match : r->commit;
    struct raft_message m = { .type = RAFT_MSG_HEARTBEAT, .to = pr->id, .commit = commit, .context = round };
    send(r, &m);
    /* Its answer asks: did anything move since this heartbeat left? */
    pr->appended_since_hb = false;
    pr->progressed = false;
}

static void bcast_heartbeat(struct raft *r)
{
    for (size_t i = 0; i < r->n_prs; i++)
        send_heartbeat(r, &r->prs[i], r->read_round);
}

static int cmp_index_desc(const void *a, const void *b)
{
    raft_index x = *(const raft_index *)a, y = *(const raft_index *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

static void admit_waiting_reads(struct raft *r);
static void maybe_promote_learners(struct raft *r);

/* §3.6.2 and Figure 3.7: the highest index stored on a quorum of voters,
 * committed only if it is of our own term. */
static bool maybe_commit(struct raft *r)
{
    raft_index matches[RAFT_MAX_MEMBERS];
    size_t n = 0;
    for (uint32_t i = 0; i < r->config.n; i++) {
        const struct raft_member *mb = &r->config.members[i];
        if (mb->role != RAFT_VOTER)
            continue;
        if (mb->id == r->o.id) {
            matches[n++] = r->persisted;
        } else {
            struct progress *pr = progress_of(r, mb->id);
            matches[n++] = pr ? pr->match : 0;
        }
    }
    if (n == 0)
        return false;
    qsort(matches, n, sizeof *matches, cmp_index_desc);
    raft_index candidate = matches[quorum(r) - 1];
    if (candidate <= r->commit || raft_log_term(&r->log, candidate) != r->term)
        return false;
    r->commit = candidate;
    admit_waiting_reads(r);
    maybe_step_down_removed(r);
    if (r->role == RAFT_LEADER) {
        r->bcast_wanted = true; /* followers learn the new commit index */
        maybe_promote_learners(r);
    }
    return true;
}

/* §4.2.2: a leader that removed itself leads until that change commits. */
static void maybe_step_down_removed(struct raft *r)
{
    if (r->role == RAFT_LEADER && !is_voter(r, r->o.id) && config_index(r) <= r->commit)
        become_follower(r, r->term, 0);
}

static void maybe_send_timeout_now(struct raft *r, struct progress *pr)
{
    if (r->transfer_to == pr->id && pr->match == last_index(r) && term_durable(r)) {
        struct raft_message m = { .type = RAFT_MSG_TIMEOUT_NOW, .to = pr->id };
        send(r, &m);
    }
}

/* ---- 4. Messages ------------------------------------------------------------ */

static void reply(struct raft *r, const struct raft_message *req, struct raft_message *m)
{
    m->to = req->from;
    send(r, m);
}

static void handle_vote(struct raft *r, const struct raft_message *m)
{
    bool pre = m->type == RAFT_MSG_PREVOTE;
    /* §9.6: a pre-vote only from a server that has not heard from a leader
     * for an election timeout (check-quorum's lease is not always on). */
    bool heard_leader = r->leader != 0 && r->election_elapsed < r->o.election_ticks;
    bool can_vote = pre ? m->term > r->term && !heard_leader
                        : (r->vote == m->from || (r->vote == 0 && r->leader == 0));
    /* §3.6.1: only a candidate whose log is at least as up to date as ours. */
    bool up_to_date = m->last_term > last_term(r) ||
                      (m->last_term == last_term(r) && m->last_index >= last_index(r));
    struct raft_message resp = { .type = pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP };
    if (can_vote && up_to_date) {
        resp.term = m->term;
        if (!pre) {
            r->vote = m->from;
            r->hs_dirty = true;
            r->election_elapsed = 0;
        }
    } else {
        resp.term = r->term;
        resp.reject = 1;
    }
    reply(r, m, &resp);
}

static void commit_to(struct raft *r, raft_index index)
{
    if (index > r->commit)
        r->commit = index;
}

/* The follower's hint for a rejected append (§5.3 "fast backup"): the term
 * of our entry at prev_index and the first index we hold of that term, or
 * our last index + 1 when our log is too short. */
static void reject_hint(const struct raft *r, raft_index prev, struct raft_message *resp)
{
    if (prev > last_index(r)) {
        resp->hint_index = last_index(r) + 1;
        resp->hint_term = 0;
        return;
    }
    raft_term t = raft_log_term(&r->log, prev);
    raft_index i = prev;
    while (i > r->commit + 1 && i > r->log.first && raft_log_term(&r->log, i - 1) == t)
        i--;
    resp->hint_index = i;
    resp->hint_term = t;
}

/* A node that wants a snapshot asks the leader at each of its heartbeats:
 * a request that is lost, or that the leader cannot serve yet, is simply
 * made again; a leader already sending it one ignores the repeats, and a
 * new leader takes over a transfer its predecessor left half done. */
static void ask_for_snapshot(struct raft *r, raft_id leader)
{
    if (!r->want_snapshot)
        return;
    struct raft_message m = { .type = RAFT_MSG_SNAPSHOT_WANTED, .to = leader, .index = r->want_base };
    send(r, &m);
}

static bool entries_well_formed(const struct raft_message *m)
{
    raft_term prev_term = m->prev_term;
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const struct raft_entry *e = &m->entries[i];
        if (e->index != m->prev_index + 1 + i || e->term < prev_term || e->term > m->term ||
            e->type < RAFT_ENTRY_COMMAND || e->type > RAFT_ENTRY_CONFIG || (e->len && !e->data))
            return false;
        prev_term = e->term;
    }
    return true;
}

static void handle_append(struct raft *r, const struct raft_message *m)
{
    struct raft_message resp = { .type = RAFT_MSG_APPEND_RESP };
    if (!entries_well_formed(m)) {
        r->stats.msgs_dropped++;
        return;
    }
    if (m->prev_index < r->commit) {
        /* Stale or duplicate: what we have up to commit is settled. */
        resp.index = r->commit;
        reply(r, m, &resp);
        return;
    }
    if (m->prev_index > last_index(r) || raft_log_term(&r->log, m->prev_index) != m->prev_term) {
        resp.reject = 1;
        resp.index = m->prev_index;
        reject_hint(r, m->prev_index, &resp);
        reply(r, m, &resp);
        return;
    }
    /* §3.5: skip what we already have, cut at the first conflict, append the rest. */
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const struct raft_entry *e = &m->entries[i];
        if (e->index <= last_index(r)) {
            if (raft_log_term(&r->log, e->index) == e->term)
                continue;
            log_truncate(r, e->index);
        }
        if (log_append(r, e) != RAFT_OK)
            return; /* out of memory: as if the message were lost */
    }
    raft_index last_new = m->prev_index + m->n_entries;
    commit_to(r, m->commit < last_new ? m->commit : last_new);
    resp.index = last_new;
    reply(r, m, &resp);
}

static void handle_heartbeat(struct raft *r, const struct raft_message *m)
{
    /* The leader sends min(our match, its commit), so this prefix is ours. */
    commit_to(r, m->commit < last_index(r) ? m->commit : last_index(r));
    struct raft_message resp = { .type = RAFT_MSG_HEARTBEAT_RESP, .context = m->context };
    reply(r, m, &resp);
    ask_for_snapshot(r, m->from);
}

static void install_snapshot(struct raft *r, const struct raft_snapshot_meta *meta)
{
    /* §5.3: keep the log after the snapshot if it agrees with it; else drop it all. */
    if (raft_log_term(&r->log, meta->index) == meta->term && meta->index <= last_index(r)) {
        raft_log_compact(&r->log, meta->index + 1);
    } else {
        drop_unpersisted_acks(r, meta->index + 1);
        raft_log_reset(&r->log, meta->index, meta->term);
        if (!r->truncate_pending || meta->index + 1 < r->truncate_pending)
            r->truncate_pending = meta->index + 1;
        /* What we had after the snapshot is gone: none of it counts. */
        if (r->handed > meta->index)
            r->handed = meta->index;
        if (r->persisted > meta->index)
            r->persisted = meta->index;
        cap_persisted(r, meta->index + 1);
    }
    if (r->handed < meta->index)
        r->handed = meta->index;
    if (r->persisted < meta->index)
        r->persisted = meta->index;
    /* Configurations: the snapshot's, then every one still in the kept
     * suffix (however many: a slow follower's log may hold dozens). */
    size_t keep = 0;
    for (size_t i = 0; i < r->n_configs; i++)
        if (r->configs[i].index > meta->index && r->configs[i].index <= last_index(r))
            r->configs[keep++] = r->configs[i];
    r->n_configs = keep;
    if (config_push(r, meta->index, &meta->config) == RAFT_OK) {
        /* Pushed last; rotate it to the front, before the suffix. */
        struct config_at snap_cfg = r->configs[keep];
        memmove(r->configs + 1, r->configs, keep * sizeof *r->configs);
        r->configs[0] = snap_cfg;
        r->config = r->configs[r->n_configs - 1].config;
    } else {
        /* Out of memory: keep the suffix's configurations (the latest is in
         * force); the snapshot's is only needed once they are all gone. */
        if (keep)
            r->config = r->configs[keep - 1].config;
    }
    r->snap = *meta;
    r->have_snapshot = true;
    r->want_snapshot = false;
    commit_to(r, meta->index);
    if (r->apply_handed < meta->index)
        r->apply_handed = meta->index;
    r->install_pending = true;
    r->install_pending_meta = *meta;
    r->stats.snapshots_installed++;
}

static void handle_snapshot(struct raft *r, const struct raft_message *m)
{
    const struct raft_snapshot_meta *meta = &m->snapshot;
    struct raft_message resp = { .type = RAFT_MSG_SNAPSHOT_RESP, .index = meta->index };
    /* A node that wants a snapshot takes one from its base on, even one its
     * commit index is past: its log has those entries, its state machine
     * does not. */
    bool wanted = r->want_snapshot && meta->index >= r->want_base;
    if (meta->index <= r->commit && !wanted) {
        /* We already have everything it holds; never go back (§5.3). */
        struct raft_message ack = { .type = RAFT_MSG_APPEND_RESP, .index = r->commit };
        reply(r, m, &ack);
        return;
    }
    if (m->len && !m->data) {
        r->stats.msgs_dropped++;
        return;
    }
    bool same = r->in_snap_active && r->in_snap.index == meta->index &&
                r->in_snap.term == meta->term && r->in_snap.size == meta->size &&
                r->in_snap.crc == meta->crc;
    if (!same) {
        if (m->offset != 0) {
            resp.reject = 1;
            resp.offset = 0;
            reply(r, m, &resp);
            return;
        }
        r->in_snap_active = true;
        r->in_snap = *meta;
        r->in_snap_offset = 0;
        r->in_snap_crc = 0;
    }
    if (m->offset != r->in_snap_offset || r->chunk_pending.len || m->offset + m->len > meta->size ||
        (m->done && m->offset + m->len != meta->size)) {
        resp.reject = 1;
        resp.offset = r->in_snap_offset;
        reply(r, m, &resp);
        return;
    }
    if (m->len) {
        uint8_t *buf = malloc(m->len);
        if (!buf)
            return;
        memcpy(buf, m->data, m->len);
        r->chunk_pending_buf = buf;
    }
    r->chunk_pending = (struct raft_snapshot_chunk){
        .meta = *meta, .offset = m->offset, .len = m->len, .data = r->chunk_pending_buf,
    };
    r->in_snap_crc = crc32c_extend(r->in_snap_crc, m->data, m->len);
    r->in_snap_offset += m->len;
    if (!m->done) {
        resp.offset = r->in_snap_offset;
        reply(r, m, &resp);
        return;
    }
    r->in_snap_active = false;
    if (r->in_snap_crc != meta->crc) {
        r->stats.checksum_failures++;
        resp.reject = 1;
        resp.offset = 0;
        reply(r, m, &resp);
        return;
    }
    install_snapshot(r, meta);
    resp.done = 1;
    resp.offset = meta->size;
    reply(r, m, &resp);
}

static void maybe_promote_learners(struct raft *r)
{
    if (config_index(r) > r->commit || r->transfer_to || r->commit < r->term_start)
        return;
    for (uint32_t i = 0; i < r->config.n; i++) {
        const struct raft_member *mb = &r->config.members[i];
        if (mb->role != RAFT_LEARNER || !mb->promote)
            continue;
        struct progress *pr = progress_of(r, mb->id);
        if (pr && pr->match >= r->commit) {
            raft_change_member(r, RAFT_PROMOTE, mb->id, NULL);
            return; /* one change at a time */
        }
    }
}

static void handle_append_resp(struct raft *r, struct progress *pr, const struct raft_message *m)
{
    pr->recent_active = true;
    if (m->reject) {
        /* Ignore stale rejections (duplicates, reordering). */
        if (pr->state == RAFT_PROGRESS_REPLICATE ? m->index <= pr->match : m->index + 1 != pr->next)
            return;
        if (pr->state == RAFT_PROGRESS_SNAPSHOT)
            return;
        raft_index next = m->hint_index;
        if (m->hint_term) {
            /* Skip the follower's whole conflicting term in one go. */
            raft_index i = m->index < last_index(r) ? m->index : last_index(r);
            while (i >= r->log.first && raft_log_term(&r->log, i) > m->hint_term)
                i--;
            if (raft_log_term(&r->log, i) == m->hint_term && i >= m->hint_index)
                next = i + 1;
        }
        if (next > m->index)
            next = m->index;
        if (next < pr->match + 1) {
            if (pr->state == RAFT_PROGRESS_PROBE && m->index == pr->match && next >= 1) {
                /* Our probe at match itself is refused: the follower
                 * acknowledged that entry and no longer has it (its
                 * storage cut its last record at a restart: torn, or
                 * damaged after the sync). Match goes back to where its log
                 * ends; commits already made are not undone (a follower
                 * that lost acknowledged entries neither votes nor
                 * campaigns until whole again: replica_options.lost_tail). */
                pr->match = next - 1;
            } else {
                next = pr->match + 1;
            }
        }
        become_probe(pr);
        pr->next = next;
        send_append(r, pr, true);
        return;
    }
    if (m->index > pr->match) {
        pr->match = m->index;
        pr->progressed = true;
        if (pr->next <= pr->match)
            pr->next = pr->match + 1;
        if (pr->state == RAFT_PROGRESS_PROBE)
            become_replicate(pr);
        else if (pr->state == RAFT_PROGRESS_SNAPSHOT && pr->match >= pr->snap.index)
            become_probe(pr);
        else if (pr->state == RAFT_PROGRESS_REPLICATE)
            inflight_ack(r, pr, pr->match);
        raft_id id = pr->id;
        maybe_commit(r);
        /* Committing may end our leadership (a removed leader) or append a
         * configuration (a promotion): look the follower up again. */
        if (r->role != RAFT_LEADER || !(pr = progress_of(r, id)))
            return;
        maybe_send_timeout_now(r, pr);
        maybe_promote_learners(r);
        if (!(pr = progress_of(r, id)))
            return;
    } else if (pr->state == RAFT_PROGRESS_PROBE) {
        /* The probe's answer is exactly what we knew (as after a snapshot
         * install, whose ack set match): the follower holds our log up to
         * match, so replicate from there now rather than at the next entry
         * (etcd-io/raft#10308). */
        if (m->index == pr->match)
            become_replicate(pr);
        else
            pr->probe_sent = false;
    } else if (pr->state == RAFT_PROGRESS_SNAPSHOT && m->index >= pr->snap.index) {
        /* The follower holds what the snapshot holds without progressing:
         * a late SNAPSHOT_WANTED (its repair since finished) sent it a
         * snapshot it answers with its commit, already our match. Left in
         * snapshot state, it would get that snapshot again for ever. */
        become_probe(pr);
    }
    send_append(r, pr, false);
}

static void admit_waiting_reads(struct raft *r)
{
    if (r->role != RAFT_LEADER || r->commit < r->term_start)
        return;
    for (size_t i = 0; i < r->n_reads_pending; i++) {
        struct pending_read *p = &r->reads_pending[i];
        if (p->round == 0) {
            p->index = r->commit;
            p->round = r->read_round + 1;
            r->read_round_wanted = true;
        }
    }
}

static void release_read(struct raft *r, const struct pending_read *p)
{
    if (p->from == r->o.id) {
        emit_read(r, p->context, p->index, true);
    } else {
        struct raft_message m = { .type = RAFT_MSG_READ_INDEX_RESP, .to = p->from,
                                  .context = p->context, .index = p->index };
        send(r, &m);
    }
}

/* §6.4: reads admitted at round k are safe once a quorum of voters answered
 * a heartbeat of round >= k: we were still the leader when they arrived. */
static void release_confirmed_reads(struct raft *r)
{
    uint64_t acked[RAFT_MAX_MEMBERS];
    size_t n = 0;
    for (uint32_t i = 0; i < r->config.n; i++) {
        const struct raft_member *mb = &r->config.members[i];
        if (mb->role != RAFT_VOTER)
            continue;
        if (mb->id == r->o.id) {
            acked[n++] = r->read_round;
        } else {
            struct progress *pr = progress_of(r, mb->id);
            acked[n++] = pr ? pr->read_acked : 0;
        }
    }
    if (n == 0)
        return;
    qsort(acked, n, sizeof *acked, cmp_index_desc);
    uint64_t confirmed = acked[quorum(r) - 1];
    size_t keep = 0;
    for (size_t i = 0; i < r->n_reads_pending; i++) {
        struct pending_read *p = &r->reads_pending[i];
        if (p->round && p->round <= confirmed && p->round <= r->read_round)
            release_read(r, p);
        else
            r->reads_pending[keep++] = *p;
    }
    r->n_reads_pending = keep;
}

static void handle_heartbeat_resp(struct raft *r, struct progress *pr, const struct raft_message *m)
{
    pr->recent_active = true;
    if (m->context > pr->read_acked && m->context <= r->read_round) {
        pr->read_acked = m->context;
        release_confirmed_reads(r);
    }
    switch (pr->state) {
    case RAFT_PROGRESS_PROBE:
        pr->probe_sent = false;
        break;
    case RAFT_PROGRESS_SNAPSHOT:
        /* A chunk out since before this heartbeat and still unanswered: it
         * or its answer was lost; resend it. */
        if (pr->snap_waiting && !pr->appended_since_hb) {
            pr->snap_waiting = false;
            pr->snap_lost = true;
        }
        break;
    case RAFT_PROGRESS_REPLICATE:
        /* Appends or their answers were lost if nothing moved for two rounds:
         * fall back to probing from what we know is there. */
        if (pr->match < last_index(r) && !pr->progressed) {
            if (++pr->stalled_rounds >= 2) {
                become_probe(pr);
            } else if (pr->next > pr->match + 1 && !pr->appended_since_hb) {
                /* First round without progress, though every append in
                 * flight left before the heartbeat answered: perhaps only
                 * their answers were lost. An empty append at the last index sent lets the
                 * follower confirm it all at once (and so learn the commit
                 * index now, not after the probe two rounds later); if it
                 * lacks it, its rejection starts the probe at once. */
                raft_index prev = pr->next - 1;
                struct raft_message a = { .type = RAFT_MSG_APPEND, .to = pr->id, .prev_index = prev,
                                          .prev_term = raft_log_term(&r->log, prev), .commit = r->commit };
                if (a.prev_term && term_durable(r))
                    send(r, &a);
            }
        } else {
            pr->stalled_rounds = 0;
        }
        pr->progressed = false;
        break;
    }
    /* A probe whose answer was lost is retried here, empty if need be: with
     * no new proposals nothing else would ever probe this follower again. */
    send_append(r, pr, pr->state == RAFT_PROGRESS_PROBE && pr->match < last_index(r));
}

static void handle_snapshot_resp(struct raft *r, struct progress *pr, const struct raft_message *m)
{
    pr->recent_active = true;
    if (pr->state != RAFT_PROGRESS_SNAPSHOT || m->index != pr->snap.index)
        return; /* stale; the next heartbeat answer resends what is needed */
    pr->snap_waiting = false;
    if (m->done) {
        if (m->index > pr->match)
            pr->match = m->index;
        become_probe(pr);
        raft_id id = pr->id;
        maybe_commit(r);
        if (r->role != RAFT_LEADER || !(pr = progress_of(r, id)))
            return;
    } else {
        pr->snap_offset = m->offset <= pr->snap.size ? m->offset : 0;
    }
    send_append(r, pr, true);
}

/* A follower lost its state machine (raft_want_snapshot) and asks for our
 * snapshot: send it if it reaches the follower's base (a snapshot before it
 * would leave a gap between the snapshot and the follower's log); if not,
 * the follower asks again once we have taken a newer one. */
static void handle_snapshot_wanted(struct raft *r, struct progress *pr, const struct raft_message *m)
{
    pr->recent_active = true;
    if (!r->have_snapshot || r->snap.index < m->index || pr->state == RAFT_PROGRESS_SNAPSHOT ||
        !term_durable(r)) {
        r->stats.msgs_dropped++;
        return;
    }
    pr->state = RAFT_PROGRESS_SNAPSHOT;
    pr->snap = r->snap;
    pr->snap_offset = 0;
    pr->snap_waiting = false;
    pr->snap_lost = false;
    send_snapshot_chunk(r, pr);
}

static void handle_read_index(struct raft *r, raft_id from, uint64_t context);

/* The term rules common to all messages (§3.3, §9.6, §4.2.3). Returns false
 * if the message is to be ignored. */
static bool check_term(struct raft *r, const struct raft_message *m)
{
    if (m->term > r->term) {
        if (m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE) {
            /* §4.2.3: while we hear from a leader, ignore candidates, so a
             * removed or partitioned server cannot depose a healthy leader.
             * A leadership transfer is the one exception. */
            bool in_lease = r->o.check_quorum && r->leader != 0 &&
                            r->election_elapsed < r->o.election_ticks;
            if (in_lease && !m->transfer)
                return false;
        }
        if (m->type == RAFT_MSG_PREVOTE || (m->type == RAFT_MSG_PREVOTE_RESP && !m->reject))
            return true; /* a pre-vote never moves anyone's term */
        bool from_leader = m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT ||
                           m->type == RAFT_MSG_SNAPSHOT;
        /* Figure 3.1: the election timer restarts on hearing a leader or
         * granting a vote (handle_vote), not on a vote request that only
         * raises the term: else a candidate whose log is behind and whose
         * timeout is shorter keeps the node that could win from standing. */
        unsigned elapsed = r->election_elapsed;
        bool follower = r->role == RAFT_FOLLOWER;
        become_follower(r, m->term, from_leader ? m->from : 0);
        if (m->type == RAFT_MSG_VOTE && follower)
            r->election_elapsed = elapsed;
        return true;
    }
    if (m->term < r->term) {
        if (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT || m->type == RAFT_MSG_SNAPSHOT) {
            /* A stale leader: tell it our term so it steps down. */
            struct raft_message resp = { .type = RAFT_MSG_APPEND_RESP };
            reply(r, m, &resp);
        } else if (m->type == RAFT_MSG_PREVOTE) {
            struct raft_message resp = { .type = RAFT_MSG_PREVOTE_RESP, .reject = 1 };
            reply(r, m, &resp);
        }
        r->stats.msgs_dropped++;
        return false;
    }
    return true;
}

int raft_step(struct raft *r, const struct raft_message *m)
{
    if (m->to != r->o.id || m->from == 0 || m->from == r->o.id ||
        m->type < 1 || m->type > RAFT_MSG_TYPE_MAX || (m->n_entries && !m->entries) ||
        m->term > RAFT_MAX_TERM) {
        r->stats.msgs_dropped++;
        return RAFT_EINVAL;
    }
    if (m->type != RAFT_MSG_READ_INDEX && m->type != RAFT_MSG_READ_INDEX_RESP && !check_term(r, m))
        return RAFT_OK;
    struct progress *pr = r->role == RAFT_LEADER ? progress_of(r, m->from) : NULL;

    switch (m->type) {
    case RAFT_MSG_VOTE:
    case RAFT_MSG_PREVOTE:
        handle_vote(r, m);
        break;
    case RAFT_MSG_APPEND:
    case RAFT_MSG_HEARTBEAT:
    case RAFT_MSG_SNAPSHOT:
        if (r->role == RAFT_LEADER) {
            r->stats.msgs_dropped++; /* two leaders in one term: impossible */
            break;
        }
        if (r->role != RAFT_FOLLOWER)
            become_follower(r, r->term, m->from);
        r->leader = m->from;
        r->election_elapsed = 0;
        if (m->type == RAFT_MSG_APPEND)
            handle_append(r, m);
        else if (m->type == RAFT_MSG_HEARTBEAT)
            handle_heartbeat(r, m);
        else
            handle_snapshot(r, m);
        break;
    case RAFT_MSG_APPEND_RESP:
        if (pr)
            handle_append_resp(r, pr, m);
        break;
    case RAFT_MSG_HEARTBEAT_RESP:
        if (pr)
            handle_heartbeat_resp(r, pr, m);
        break;
    case RAFT_MSG_SNAPSHOT_RESP:
        if (pr)
            handle_snapshot_resp(r, pr, m);
        break;
    case RAFT_MSG_SNAPSHOT_WANTED:
        if (pr)
            handle_snapshot_wanted(r, pr, m);
        else
            r->stats.msgs_dropped++;
        break;
    case RAFT_MSG_VOTE_RESP:
        if (r->role == RAFT_CANDIDATE && m->term == r->term)
            poll_vote(r, m->from, !m->reject);
        break;
    case RAFT_MSG_PREVOTE_RESP:
        if (r->role == RAFT_PRECANDIDATE)
            poll_vote(r, m->from, !m->reject);
        break;
    case RAFT_MSG_TIMEOUT_NOW:
        if (r->role == RAFT_FOLLOWER && r->leader == m->from)
            campaign(r, true);
        break;
    case RAFT_MSG_READ_INDEX:
        if (r->role == RAFT_LEADER && m->term == r->term) {
            handle_read_index(r, m->from, m->context);
        } else {
            struct raft_message resp = { .type = RAFT_MSG_READ_INDEX_RESP, .context = m->context, .reject = 1 };
            reply(r, m, &resp);
        }
        break;
    case RAFT_MSG_READ_INDEX_RESP:
        /* A read index only from the leader of our term, to whom we
         * forwarded the read; from anyone else it is dropped and the host's
         * read times out and is retried (never served on another's word).
         * A refusal only fails the read early: taken from anyone. */
        if (r->role != RAFT_LEADER && (m->reject || (m->from == r->leader && m->term == r->term)))
            emit_read(r, m->context, m->reject ? 0 : m->index, !m->reject);
        else
            r->stats.msgs_dropped++;
        break;
    }
    return RAFT_OK;
}

/* ---- Ticks ------------------------------------------------------------------ */

static bool quorum_active(struct raft *r)
{
    size_t active = 0;
    for (uint32_t i = 0; i < r->config.n; i++) {
        const struct raft_member *mb = &r->config.members[i];
        if (mb->role != RAFT_VOTER)
            continue;
        if (mb->id == r->o.id) {
            active++;
        } else {
            struct progress *pr = progress_of(r, mb->id);
            active += pr && pr->recent_active;
        }
    }
    return active >= quorum(r);
}

void raft_tick(struct raft *r)
{
    if (r->role != RAFT_LEADER) {
        r->election_elapsed++;
        if (r->election_elapsed >= r->randomized_timeout) {
            r->election_elapsed = 0;
            if (promotable(r))
                campaign(r, false);
            else
                randomize_timeout(r);
        }
        return;
    }
    r->heartbeat_elapsed++;
    r->election_elapsed++;
    if (r->transfer_to && ++r->transfer_elapsed >= r->o.election_ticks) {
        r->transfer_to = 0; /* §3.10: abandon a transfer that took too long */
        r->transfer_elapsed = 0;
    }
    if (r->election_elapsed >= r->o.election_ticks) {
        r->election_elapsed = 0;
        if (r->o.check_quorum) {
            if (!quorum_active(r)) {
                become_follower(r, r->term, 0);
                return;
            }
            for (size_t i = 0; i < r->n_prs; i++)
                r->prs[i].recent_active = false;
        }
    }
    if (r->heartbeat_elapsed >= r->o.heartbeat_ticks) {
        r->heartbeat_elapsed = 0;
        bcast_heartbeat(r);
    }
}

/* ---- 5. Requests ------------------------------------------------------------ */

static int append_as_leader(struct raft *r, uint8_t type, const uint8_t *data, size_t len,
                            raft_index *index, raft_term *term)
{
    struct raft_entry e = { .term = r->term, .index = last_index(r) + 1, .type = type,
                            .len = (uint32_t)len, .data = data };
    int rc = log_append(r, &e);
    if (rc)
        return rc;
    if (index)
        *index = e.index;
    if (term)
        *term = e.term;
    r->bcast_wanted = true;
    return RAFT_OK;
}

int raft_propose(struct raft *r, const uint8_t *data, size_t len, raft_index *index, raft_term *term)
{
    if (r->role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    if (r->transfer_to || !is_voter(r, r->o.id))
        return RAFT_EBUSY;
    if (len > r->o.max_entry_bytes)
        return RAFT_ETOOBIG;
    return append_as_leader(r, RAFT_ENTRY_COMMAND, data, len, index, term);
}

static void handle_read_index(struct raft *r, raft_id from, uint64_t context)
{
    if (r->n_reads_pending == r->cap_reads_pending) {
        size_t cap = r->cap_reads_pending ? r->cap_reads_pending * 2 : 16;
        struct pending_read *grown = realloc(r->reads_pending, cap * sizeof *grown);
        if (!grown) {
            if (from == r->o.id)
                emit_read(r, context, 0, false);
            return;
        }
        r->reads_pending = grown;
        r->cap_reads_pending = cap;
    }
    r->reads_pending[r->n_reads_pending++] = (struct pending_read){ .context = context, .from = from };
    /* Until our no-op commits we do not know the commit index (§6.4 step 1). */
    admit_waiting_reads(r);
    if (quorum(r) == 1 && is_voter(r, r->o.id))
        r->read_round_wanted = true; /* confirmed by ourselves at the next ready */
}

int raft_read_index(struct raft *r, uint64_t context)
{
    if (r->role == RAFT_LEADER) {
        handle_read_index(r, r->o.id, context);
        return RAFT_OK;
    }
    if (!r->leader)
        return RAFT_ENOLEADER;
    struct raft_message m = { .type = RAFT_MSG_READ_INDEX, .to = r->leader, .context = context };
    send(r, &m);
    return RAFT_OK;
}

int raft_transfer_leader(struct raft *r, raft_id to)
{
    if (r->role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    if (to == r->o.id)
        return RAFT_OK;
    if (!is_voter(r, to))
        return raft_config_find(&r->config, to) ? RAFT_EINVAL : RAFT_ENOTFOUND;
    if (r->transfer_to == to)
        return RAFT_OK;
    r->transfer_to = to;
    r->transfer_elapsed = 0;
    struct progress *pr = progress_of(r, to);
    if (pr->match == last_index(r))
        maybe_send_timeout_now(r, pr);
    else
        send_append(r, pr, true);
    return RAFT_OK;
}

int raft_change_member(struct raft *r, enum raft_change change, raft_id id, raft_index *index)
{
    if (r->role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    /* §4.1: one change at a time, and (the single-server change fix) only
     * once an entry of our term has committed. */
    if (config_index(r) > r->commit || r->commit < r->term_start || r->transfer_to)
        return RAFT_EBUSY;
    if (id == 0)
        return RAFT_EINVAL;
    struct raft_config c = r->config;
    struct raft_member *mb = NULL;
    for (uint32_t i = 0; i < c.n; i++)
        if (c.members[i].id == id)
            mb = &c.members[i];
    switch (change) {
    case RAFT_ADD_LEARNER:
    case RAFT_ADD_VOTER:
        if (mb && (mb->role == RAFT_VOTER || change == RAFT_ADD_LEARNER))
            return RAFT_EEXIST;
        if (mb) {
            mb->promote = 1;
        } else {
            if (c.n == RAFT_MAX_MEMBERS)
                return RAFT_EINVAL;
            c.members[c.n++] = (struct raft_member){ id, RAFT_LEARNER, change == RAFT_ADD_VOTER };
        }
        break;
    case RAFT_PROMOTE:
        if (!mb)
            return RAFT_ENOTFOUND;
        if (mb->role == RAFT_VOTER)
            return RAFT_EEXIST;
        mb->role = RAFT_VOTER;
        mb->promote = 0;
        break;
    case RAFT_REMOVE:
        if (!mb)
            return RAFT_ENOTFOUND;
        if (mb->role == RAFT_VOTER && raft_config_voters(&c) == 1)
            return RAFT_EINVAL; /* the last voter cannot leave */
        *mb = c.members[--c.n];
        break;
    default:
        return RAFT_EINVAL;
    }
    uint8_t buf[4 + 10 * RAFT_MAX_MEMBERS];
    int len = raft_config_encode(&c, buf, sizeof buf);
    if (len < 0)
        return len;
    int rc = append_as_leader(r, RAFT_ENTRY_CONFIG, buf, (size_t)len, index, NULL);
    if (rc)
        return rc;
    /* A one-voter cluster may now commit on its own at the next advance. */
    return RAFT_OK;
}

int raft_snapshot_taken(struct raft *r, raft_index index, uint64_t size, uint32_t crc)
{
    if (index > r->applied || index == 0)
        return RAFT_EINVAL;
    if (r->have_snapshot && index <= r->snap.index)
        return RAFT_OK; /* we already have a newer one */
    raft_term term = raft_log_term(&r->log, index);
    const struct raft_config *c = config_at_index(r, index);
    if (term == 0 || !c)
        return RAFT_EINVAL;
    r->snap = (struct raft_snapshot_meta){ .index = index, .term = term, .config = *c, .size = size, .crc = crc };
    r->have_snapshot = true;
    config_compact(r, index);
    if (index > r->o.trailing_entries) {
        raft_index before = index - r->o.trailing_entries;
        if (before > r->log.first) {
            raft_log_compact(&r->log, before);
            r->compact_pending = before;
        }
    }
    return RAFT_OK;
}

/* ---- 6. Ready / advance ----------------------------------------------------- */

/* The last committed entry the next ready may hand out to apply. With
 * synchronous persistence that includes entries handed in the same ready
 * (the host persists before it applies); with async_persist only what the
 * host has reported durable, so the state machine never runs ahead of the
 * log it is rebuilt from after a crash. */
static raft_index apply_limit(const struct raft *r)
{
    if (r->want_snapshot)
        return r->apply_handed; /* nothing to apply onto until a snapshot is installed */
    raft_index cap = r->o.async_persist ? r->persisted : last_index(r);
    return r->commit < cap ? r->commit : cap;
}

bool raft_has_ready(const struct raft *r)
{
    if (r->ready_outstanding)
        return false;
    return r->now.n || r->after.n || r->n_reads_out || r->hs_dirty ||
           r->handed < last_index(r) || r->truncate_pending || r->chunk_pending.len ||
           r->chunk_pending.meta.index || r->install_pending || r->apply_handed < apply_limit(r) ||
           r->read_round_wanted || r->bcast_wanted || r->compact_pending;
}

static int grow_entries(struct raft_entry **arr, size_t *cap, size_t need)
{
    if (need <= *cap)
        return RAFT_OK;
    size_t cap2 = *cap ? *cap : 64;
    while (cap2 < need)
        cap2 *= 2;
    struct raft_entry *grown = realloc(*arr, cap2 * sizeof *grown);
    if (!grown)
        return RAFT_ENOMEM;
    *arr = grown;
    *cap = cap2;
    return RAFT_OK;
}

int raft_ready(struct raft *r, struct raft_ready *rd)
{
    if (r->ready_outstanding)
        return RAFT_EBUSY;
    memset(rd, 0, sizeof *rd);

    /* Deferred broadcasts: one round per ready batches every request since. */
    if (r->role == RAFT_LEADER && r->read_round_wanted) {
        r->read_round++;
        r->read_round_wanted = false;
        bcast_heartbeat(r);
        release_confirmed_reads(r); /* a one-voter cluster confirms alone */
    }
    if (r->role == RAFT_LEADER && r->bcast_wanted)
        bcast_append(r);
    r->bcast_wanted = false;

    raft_index last = last_index(r);
    size_t n_new = last > r->handed ? (size_t)(last - r->handed) : 0;
    size_t n_committed = 0;
    raft_index apply_from = r->apply_handed + 1;
    if (r->commit >= apply_from) {
        raft_index apply_to = apply_limit(r);
        if (apply_to >= apply_from)
            n_committed = (size_t)(apply_to - apply_from + 1);
        if (n_committed > MAX_COMMITTED_PER_READY)
            n_committed = MAX_COMMITTED_PER_READY;
    }
    if (grow_entries(&r->rd_entries, &r->cap_rd_entries, n_new) ||
        grow_entries(&r->rd_committed, &r->cap_rd_committed, n_committed))
        return RAFT_ENOMEM;
    if (r->n_writes == r->cap_writes) {
        size_t cap = r->cap_writes ? r->cap_writes * 2 : 16;
        struct pending_write *grown = realloc(r->writes, cap * sizeof *grown);
        if (!grown)
            return RAFT_ENOMEM;
        r->writes = grown;
        r->cap_writes = cap;
    }

    rd->role = r->role;
    rd->leader = r->leader;
    rd->term = r->term;
    rd->commit = r->commit;

    r->chunk_handed = r->chunk_pending;
    r->chunk_handed_buf = r->chunk_pending_buf;
    memset(&r->chunk_pending, 0, sizeof r->chunk_pending);
    r->chunk_pending_buf = NULL;
    rd->snapshot_chunk = r->chunk_handed;
    if (r->install_pending) {
        r->install_handed = true;
        r->install_handed_meta = r->install_pending_meta;
        r->install_pending = false;
        rd->snapshot_install = &r->install_handed_meta;
    }
    rd->truncate_from = r->truncate_pending;
    r->truncate_pending = 0;

    if (n_new)
        memcpy(r->rd_entries, raft_log_get(&r->log, r->handed + 1), n_new * sizeof *r->rd_entries);
    rd->entries = r->rd_entries;
    rd->n_entries = n_new;
    r->handed = last;

    if (r->hs_dirty) {
        rd->hard_state_changed = true;
        rd->hard_state = (struct raft_hard_state){ r->term, r->vote };
        r->hs_dirty = false;
    }

    r->now_handed = r->now;
    r->after_handed = r->after;
    memset(&r->now, 0, sizeof r->now);
    memset(&r->after, 0, sizeof r->after);
    rd->send_now = r->now_handed.v;
    rd->n_send_now = r->now_handed.n;
    rd->send_after_persist = r->after_handed.v;
    rd->n_send_after_persist = r->after_handed.n;

    if (n_committed)
        memcpy(r->rd_committed, raft_log_get(&r->log, apply_from), n_committed * sizeof *r->rd_committed);
    rd->committed = r->rd_committed;
    rd->n_committed = n_committed;
    r->apply_handed += n_committed;

    r->reads_handed = r->reads_out;
    r->n_reads_handed = r->n_reads_out;
    r->reads_out = NULL;
    r->n_reads_out = r->cap_reads_out = 0;
    rd->reads = r->reads_handed;
    rd->n_reads = r->n_reads_handed;

    rd->compact_before = r->compact_pending;
    r->compact_pending = 0;

    rd->seq = ++r->ready_seq;
    if (rd->n_entries || rd->hard_state_changed || rd->truncate_from || rd->snapshot_chunk.len ||
        rd->snapshot_chunk.meta.index || rd->snapshot_install) {
        r->writes[r->n_writes++] = (struct pending_write){ rd->seq, r->handed, r->term };
    }

    raft_log_bury_generation(&r->log);
    r->ready_outstanding = true;
    return RAFT_OK;
}

/* Every write of the readies up to seq is durable. */
static void mark_durable(struct raft *r, uint64_t seq)
{
    if (seq <= r->durable_seq)
        return;
    r->durable_seq = seq;
    size_t n = 0;
    while (n < r->n_writes && r->writes[n].seq <= seq)
        n++;
    if (r->cap_from && seq >= r->cap_seq)
        r->cap_from = 0; /* the truncation is on disk */
    if (n == 0)
        return;
    struct pending_write w = r->writes[n - 1];
    memmove(r->writes, r->writes + n, (r->n_writes - n) * sizeof *r->writes);
    r->n_writes -= n;
    raft_index last = w.last;
    if (r->cap_from && last >= r->cap_from)
        last = r->cap_from - 1;
    if (last > r->handed)
        last = r->handed;
    if (last > r->persisted)
        r->persisted = last;
    if (w.term > r->durable_term) {
        bool was = term_durable(r);
        r->durable_term = w.term;
        if (r->role == RAFT_LEADER && !was && term_durable(r))
            r->bcast_wanted = true; /* what send_append held back */
    }
}

void raft_advance(struct raft *r, struct raft_ready *rd)
{
    if (!r->ready_outstanding)
        return;
    /* Without async_persist the host wrote this ready before advancing, and
     * so does an async host for a ready with snapshot data. */
    if (!r->o.async_persist || rd->snapshot_chunk.len || rd->snapshot_chunk.meta.index || rd->snapshot_install)
        mark_durable(r, rd->seq);
    if (r->install_handed) {
        if (r->applied < r->install_handed_meta.index)
            r->applied = r->install_handed_meta.index;
        r->install_handed = false;
    }
    if (rd->n_committed) {
        raft_index last = rd->committed[rd->n_committed - 1].index;
        if (last > r->applied)
            r->applied = last;
    }

    outbox_clear(&r->now_handed);
    free(r->now_handed.v);
    outbox_clear(&r->after_handed);
    free(r->after_handed.v);
    memset(&r->now_handed, 0, sizeof r->now_handed);
    memset(&r->after_handed, 0, sizeof r->after_handed);
    free(r->reads_handed);
    r->reads_handed = NULL;
    r->n_reads_handed = 0;
    free(r->chunk_handed_buf);
    r->chunk_handed_buf = NULL;
    memset(&r->chunk_handed, 0, sizeof r->chunk_handed);
    raft_log_free_handed(&r->log);
    r->ready_outstanding = false;
    memset(rd, 0, sizeof *rd);

    if (r->role == RAFT_LEADER)
        maybe_commit(r); /* our own persisted entries count now */
}

int raft_persisted(struct raft *r, uint64_t seq)
{
    if (!r->o.async_persist || seq > r->ready_seq)
        return RAFT_EINVAL;
    mark_durable(r, seq);
    if (r->role == RAFT_LEADER)
        maybe_commit(r); /* our own entries count from now on */
    return RAFT_OK;
}

/* ---- Lifecycle ----------------------------------------------------------- */

void raft_options_default(struct raft_options *o, raft_id id, uint64_t seed)
{
    *o = (struct raft_options){
        .id = id,
        .seed = seed,
        .election_ticks = 10,
        .heartbeat_ticks = 1,
        .max_entry_bytes = 1u << 20,
        .max_msg_bytes = 64u << 10,
        .max_inflight_msgs = 256,
        .max_inflight_bytes = 32u << 20,
        .snapshot_chunk_bytes = 1u << 20,
        .trailing_entries = 1024,
        .pre_vote = true,
        .check_quorum = true,
    };
}

struct raft *raft_create(const struct raft_options *opts)
{
    if (opts->id == 0 || opts->election_ticks < 2 || opts->heartbeat_ticks == 0 ||
        opts->heartbeat_ticks >= opts->election_ticks || opts->max_inflight_msgs == 0 ||
        opts->snapshot_chunk_bytes == 0)
        return NULL;
    struct raft *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->o = *opts;
    r->rng = opts->seed ^ (opts->id * 0x9E3779B97F4A7C15ull);
    raft_log_init(&r->log);
    r->role = RAFT_FOLLOWER;
    randomize_timeout(r);
    return r;
}

void raft_destroy(struct raft *r)
{
    if (!r)
        return;
    progress_free_all(r);
    outbox_clear(&r->now);
    outbox_clear(&r->after);
    outbox_clear(&r->now_handed);
    outbox_clear(&r->after_handed);
    free(r->now.v);
    free(r->after.v);
    free(r->now_handed.v);
    free(r->after_handed.v);
    free(r->reads_out);
    free(r->reads_handed);
    free(r->reads_pending);
    free(r->rd_entries);
    free(r->rd_committed);
    free(r->chunk_pending_buf);
    free(r->chunk_handed_buf);
    free(r->configs);
    free(r->writes);
    raft_log_free(&r->log);
    free(r);
}

int raft_bootstrap(struct raft *r, const struct raft_config *config)
{
    if (last_index(r) != 0 || r->term != 0 || r->have_snapshot)
        return RAFT_EINVAL;
    if (!raft_config_find(config, r->o.id) || raft_config_voters(config) == 0)
        return RAFT_EINVAL;
    uint8_t buf[4 + 10 * RAFT_MAX_MEMBERS];
    int len = raft_config_encode(config, buf, sizeof buf);
    if (len < 0)
        return len;
    set_term(r, 1);
    struct raft_entry e = { .term = 1, .index = 1, .type = RAFT_ENTRY_CONFIG, .len = (uint32_t)len, .data = buf };
    int rc = log_append(r, &e);
    if (rc)
        return rc;
    /* Every initial member writes this same entry: it is committed by fiat. */
    r->commit = 1;
    return RAFT_OK;
}

int raft_restore(struct raft *r, const struct raft_hard_state *hs, const struct raft_snapshot_meta *snap,
                 const struct raft_entry *entries, size_t n_entries, raft_index applied)
{
    if (last_index(r) != 0 || r->have_snapshot)
        return RAFT_EINVAL;
    if (hs->term > RAFT_MAX_TERM)
        return RAFT_ECORRUPT;
    raft_index base = 0;
    if (snap) {
        if (snap->index == 0 || applied < snap->index)
            return RAFT_ECORRUPT;
        r->snap = *snap;
        r->have_snapshot = true;
        raft_log_reset(&r->log, snap->index, snap->term);
        if (config_push(r, snap->index, &snap->config))
            return RAFT_ENOMEM;
        base = snap->index;
    }
    raft_term prev_term = snap ? snap->term : 0;
    for (size_t i = 0; i < n_entries; i++) {
        const struct raft_entry *e = &entries[i];
        if (e->index <= base) {
            if (e->index == base && snap && e->term != snap->term)
                return RAFT_ECORRUPT;
            continue;
        }
        if (e->index != last_index(r) + 1 || e->term < prev_term || e->term == 0)
            return RAFT_ECORRUPT;
        prev_term = e->term;
        int rc = log_append(r, e);
        if (rc)
            return rc;
    }
    if (hs->term < last_term(r))
        return RAFT_ECORRUPT;
    if (applied > last_index(r) && applied > base)
        return RAFT_ECORRUPT;
    r->term = hs->term;
    r->vote = hs->vote;
    r->commit = applied;
    r->applied = applied;
    r->apply_handed = applied;
    r->persisted = r->handed = last_index(r);
    r->durable_term = hs->term;
    r->role = RAFT_FOLLOWER;
    randomize_timeout(r);
    return RAFT_OK;
}

int raft_want_snapshot(struct raft *r)
{
    if (r->role != RAFT_FOLLOWER || r->ready_seq != 0)
        return RAFT_EINVAL;
    r->want_snapshot = true;
    r->want_base = r->have_snapshot ? r->snap.index : 0;
    return RAFT_OK;
}

bool raft_wants_snapshot(const struct raft *r) { return r->want_snapshot; }

/* ---- Introspection ---------------------------------------------------------- */

raft_id raft_self(const struct raft *r) { return r->o.id; }
enum raft_role raft_role(const struct raft *r) { return r->role; }
raft_id raft_leader(const struct raft *r) { return r->leader; }
raft_term raft_current_term(const struct raft *r) { return r->term; }
raft_id raft_voted_for(const struct raft *r) { return r->vote; }
raft_index raft_commit_index(const struct raft *r) { return r->commit; }
raft_index raft_applied_index(const struct raft *r) { return r->applied; }
raft_index raft_last_index(const struct raft *r) { return last_index(r); }
raft_index raft_first_index(const struct raft *r) { return r->log.first; }
raft_term raft_term_at(const struct raft *r, raft_index index) { return raft_log_term(&r->log, index); }
const struct raft_entry *raft_entry_at(const struct raft *r, raft_index index) { return raft_log_get(&r->log, index); }
const struct raft_config *raft_configuration(const struct raft *r) { return &r->config; }
const struct raft_snapshot_meta *raft_snapshot(const struct raft *r) { return r->have_snapshot ? &r->snap : NULL; }
raft_id raft_transfer_target(const struct raft *r) { return r->transfer_to; }
const struct raft_stats *raft_stats(const struct raft *r) { return &r->stats; }

size_t raft_progress(const struct raft *r, struct raft_progress *out, size_t cap)
{
    if (r->role != RAFT_LEADER)
        return 0;
    size_t n = 0;
    if (n < cap)
        out[n] = (struct raft_progress){ r->o.id, r->persisted, last_index(r) + 1, RAFT_PROGRESS_REPLICATE, true };
    n++;
    for (size_t i = 0; i < r->n_prs; i++, n++)
        if (n < cap)
            out[n] = (struct raft_progress){ r->prs[i].id, r->prs[i].match, r->prs[i].next,
                                             r->prs[i].state, r->prs[i].recent_active };
    return n;
}

int raft_config_at(const struct raft *r, raft_index index, struct raft_config *out)
{
    const struct raft_config *c = config_at_index(r, index);
    if (!c)
        return RAFT_ENOTFOUND;
    *out = *c;
    return RAFT_OK;
}
