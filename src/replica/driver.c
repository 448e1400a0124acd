/*
 * driver.c — the replica driver (replica.h): the ready loop, the write
 * pipeline, waiters, apply and commit grouping, snapshots and the disk
 * states, over the host's I/O and state machine. docs/replica.md.
 *
 * The ready loop follows THE READY CONTRACT of include/raft.h with
 * async_persist:
 *   pump():  take a ready; send its send_now messages at once; merge its
 *            writes into `pending` (the next write batch) and apply and
 *            advance it at once, while `writing` is on the disk; the core
 *            keeps stepping messages, ticks and proposals meanwhile, which
 *            is what batches them into the next fsync (group commit);
 *   write_done: a batch is durable: its send_after_persist messages leave
 *            and raft_persisted tells the core; the next batch starts.
 * A ready with snapshot data waits until every write before it is done, then
 * is persisted, applied and advanced the plain way (JOB_PERSIST). Only one
 * storage job runs at a time, so the host's log is never used by two
 * threads at once, and raft_ready is never called with one outstanding.
 */
#include "replica/replica.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replica/write_batch.h"

/* What the one storage job slot holds. The two *_FULL states are a job that
 * hit a full disk and waits for the retry timer: nothing more is written
 * before it, and no new ready is taken. */
enum job_state {
    JOB_IDLE,
    JOB_WRITE,          /* `writing` on the disk */
    JOB_PERSIST,        /* the barrier ready (snapshot data) on the disk */
    JOB_ADOPT,          /* a snapshot copy being kept as the node's snapshot */
    JOB_WRITE_FULL,     /* `writing` failed: retried */
    JOB_PERSIST_FULL,   /* the barrier ready's write failed: retried */
};

/* The state machine's side of the disk. */
enum sm_state {
    SM_OK,
    SM_APPLY_FULL,      /* the outstanding ready's apply waits for space (apply_done tells how far) */
    SM_COMMIT_FULL,     /* the last commit failed and rolled back; applied again in memory, retried */
};

struct pending_write {
    raft_index index;
    raft_term term;
    replica_write_cb cb;
    void *arg;
    uint64_t deadline;
    struct pending_write *next; /* ascending index */
};

struct read_batch;

struct pending_read {
    replica_read_cb cb;
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

struct replica {
    struct replica_options o;
    struct replica_io io;
    struct replica_sm sm;
    struct raft *raft;
    enum replica_state state;
    enum job_state job;
    enum sm_state sm_state;
    bool full_logged;           /* "the disk is full" said, "has space again" not yet */
    bool stop_signalled;
    bool handing_over;          /* stopping waits for the leadership transfer */
    bool armed[REPLICA_TIMERS];

    /* The ready loop and the write pipeline. */
    bool ready_outstanding;     /* rd is taken and not yet advanced */
    bool rd_barrier;            /* rd has snapshot data: waits for the writes before it */
    struct raft_ready rd;
    size_t apply_done;          /* how many of rd.committed are applied */
    struct write_batch writing; /* on the disk (JOB_WRITE), or failed and waiting to retry */
    struct write_batch pending; /* readies taken since: the next write */
    struct replica_write job_w; /* what io.write was given */
    bool write_retry;

    /* Snapshots. */
    bool snap_job;              /* the state machine's copy runs */
    uint64_t snap_started_ms;
    bool adopt_pending;
    struct raft_snapshot_meta adopt_meta;
    raft_index last_snapshot;
    raft_index snapshot_gap;
    /* A follower repairing from peers asked this leader for a snapshot at
     * or after this index, newer than ours: take one as soon as we have
     * applied that far (0: none asked). */
    raft_index snapshot_wanted;
    /* The log's last record was cut (replica_options.lost_tail): this
     * node may have acknowledged entries it no longer holds. Until its
     * disk holds an entry of a term after amnesia_term it neither
     * campaigns nor votes (amnesiac()). */
    bool amnesia;
    raft_term amnesia_term;
    bool barrier_waits;         /* a snapshot install waits for a background reader */
    uint64_t rng;

    void *results;              /* apply_batch results of sm.result_size */
    struct pending_write *writes;
    struct pending_write *writes_last; /* its last, where a new write goes (NULL: empty) */
    struct pending_read *reads;
    struct read_batch *batches;
    struct read_batch *open_batch;
    uint64_t next_context;

    enum raft_role last_role;
    raft_id last_leader;
    raft_term last_term;
};

void replica_options_default(struct replica_options *o)
{
    *o = (struct replica_options){
        .write_timeout_ms = 5000,
        .snapshot_entries = 50000,
        .commit_every_ms = 250,
        .commit_every_entries = 2048,
        .retry_ms = 1000,
        .apply_batch = 8192,
    };
}

static void say(struct replica *d, enum replica_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(struct replica *d, enum replica_log_level level, const char *fmt, ...)
{
    if (!d->io.log)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    d->io.log(d->io.ctx, level, msg);
}

static void fatal(struct replica *d, const char *what, const char *detail)
{
    if (d->state == REPLICA_FAILED)
        return;
    d->state = REPLICA_FAILED;
    d->io.fatal(d->io.ctx, what, detail ? detail : "");
}

static bool dead(const struct replica *d)
{
    return d->state == REPLICA_FAILED;
}

static bool closed(const struct replica *d)
{
    return d->state == REPLICA_CLOSED || d->state == REPLICA_FAILED;
}

static raft_index sm_applied(struct replica *d) { return d->sm.applied(d->sm.ctx); }
static raft_index sm_committed(struct replica *d) { return d->sm.committed(d->sm.ctx); }
static const char *sm_err(struct replica *d) { return d->sm.errmsg ? d->sm.errmsg(d->sm.ctx) : "state machine error"; }
static uint64_t now(struct replica *d) { return d->io.now(d->io.ctx); }

static void arm(struct replica *d, enum replica_timer t, uint64_t ms)
{
    d->armed[t] = true;
    d->io.arm(d->io.ctx, t, ms);
}

static void disarm(struct replica *d, enum replica_timer t)
{
    if (d->armed[t])
        d->io.cancel(d->io.ctx, t);
    d->armed[t] = false;
}

/* xorshift64*: the snapshot gaps only need to differ between nodes. */
static uint64_t next_rand(struct replica *d)
{
    d->rng ^= d->rng >> 12;
    d->rng ^= d->rng << 25;
    d->rng ^= d->rng >> 27;
    return d->rng * 2685821657736338717ull;
}

/* Where this process numbers its read-index requests from. The leader may
 * answer a request of the node's previous process after this one started
 * (a straggler, or an answer that waited in its send queue while the node
 * restarted): same leader, same term, and only the context tells it from
 * the answer to a new request. Numbered from 1 at every start, the old
 * answer matched a new read and served it at the old request's index,
 * without writes committed since (the simulator's long run: ten seeds of
 * read index safety). The seed differs at every start (replica_options),
 * and a point drawn from it (splitmix64's finalizer, apart from the
 * snapshot gaps' generator) makes two processes' ranges of contexts meet
 * about as often as two 64-bit draws do. */
static uint64_t first_context(uint64_t seed)
{
    uint64_t z = seed + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Every node reaches the same index at about the same moment, and copying
 * the state machine is the heaviest thing a node does: with the same
 * interval all of them would copy at once (the leader and both followers
 * stalled together). A gap drawn anew each time keeps them apart. */
static void draw_snapshot_gap(struct replica *d)
{
    raft_index base = d->o.snapshot_entries, spread = base / 2;
    d->snapshot_gap = base - base / 4 + (spread ? next_rand(d) % spread : 0);
}

static bool amnesiac(struct replica *d);
static void note_durable_term(struct replica *d, raft_term t);

struct replica *replica_create(const struct replica_options *o, struct raft *r, const struct replica_io *io,
                               const struct replica_sm *sm)
{
    struct replica *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->o = *o;
    if (!d->o.apply_batch)
        d->o.apply_batch = 8192;
    d->io = *io;
    d->sm = *sm;
    d->raft = r;
    d->rng = o->seed | 1;
    d->next_context = first_context(o->seed);
    if (sm->result_size) {
        d->results = malloc(d->o.apply_batch * sm->result_size);
        if (!d->results) {
            free(d);
            return NULL;
        }
    }
    const struct raft_snapshot_meta *snap = raft_snapshot(r);
    d->last_snapshot = snap ? snap->index : 0;
    draw_snapshot_gap(d);
    d->last_role = raft_role(r);
    d->amnesia = o->lost_tail;
    d->amnesia_term = o->lost_tail_term ? o->lost_tail_term : raft_current_term(r);
    /* What the core was restored from is on disk: a marker left by a crash
     * just after the node became whole ends here. */
    note_durable_term(d, raft_term_at(r, raft_last_index(r)));
    return d;
}

void replica_destroy(struct replica *d)
{
    if (!d)
        return;
    replica_close(d);
    raft_destroy(d->raft);
    write_batch_free(&d->writing);
    write_batch_free(&d->pending);
    free(d->results);
    free(d);
}

struct raft *replica_raft(const struct replica *d) { return d->raft; }

bool replica_lost_tail(struct replica *d) { return d->amnesia; }
raft_index replica_applied(const struct replica *d) { return d->sm.applied(d->sm.ctx); }
bool replica_restore_waiting(const struct replica *d) { return d->barrier_waits; }
bool replica_stopping(const struct replica *d) { return d->state != REPLICA_RUNNING; }
bool replica_job_running(const struct replica *d)
{
    return d->job == JOB_WRITE || d->job == JOB_PERSIST || d->job == JOB_ADOPT;
}

/* Full while a job waits for its retry or runs as one, or the state
 * machine cannot apply or commit. */
bool replica_disk_full(const struct replica *d)
{
    return d->job == JOB_WRITE_FULL || d->job == JOB_PERSIST_FULL || (replica_job_running(d) && d->write_retry) ||
           d->sm_state != SM_OK;
}

void replica_get_status(const struct replica *d, struct replica_status *s)
{
    *s = (struct replica_status){
        .state = d->state,
        .disk = replica_disk_full(d) ? REPLICA_DISK_FULL : REPLICA_DISK_OK,
        .role = raft_role(d->raft),
        .leader = raft_leader(d->raft),
        .term = raft_current_term(d->raft),
        .commit = raft_commit_index(d->raft),
        .applied = d->sm.applied(d->sm.ctx),
        .last = raft_last_index(d->raft),
        .committed_sm = d->sm.committed(d->sm.ctx),
    };
}

/* ---- Disk states ------------------------------------------------------------------ */

static void note_disk_full(struct replica *d, const char *why)
{
    if (!d->full_logged)
        say(d, REPLICA_LOG_ERROR, "the disk is full (%s): refusing writes, still serving reads; retrying every second",
            why);
    d->full_logged = true;
    arm(d, REPLICA_TIMER_RETRY, d->o.retry_ms);
}

static void note_disk_ok(struct replica *d)
{
    if (d->full_logged && !replica_disk_full(d)) {
        say(d, REPLICA_LOG_INFO, "the disk has space again: taking writes");
        d->full_logged = false;
    }
}

/* ---- Writes and reads waiting on the log -------------------------------------------- */

static void write_done(struct pending_write *w, int status, raft_index index, const void *res)
{
    w->cb(w->arg, status, index, res);
    free(w);
}

void replica_propose(struct replica *d, const uint8_t *data, size_t len, replica_write_cb cb, void *arg)
{
    if (d->state != REPLICA_RUNNING) {
        cb(arg, REPLICA_ESTOPPING, 0, NULL);
        return;
    }
    if (replica_disk_full(d)) {
        cb(arg, REPLICA_EDISKFULL, 0, NULL);
        return;
    }
    raft_index index;
    raft_term term;
    int rc = raft_propose(d->raft, data, len, &index, &term);
    if (rc == RAFT_ETOOBIG) {
        cb(arg, REPLICA_ETOOBIG, 0, NULL);
        return;
    }
    if (rc) {
        cb(arg, REPLICA_ENOTLEADER, 0, NULL);
        return;
    }
    replica_wait_entry(d, index, term, cb, arg);
}

void replica_wait_entry(struct replica *d, raft_index index, raft_term term, replica_write_cb cb, void *arg)
{
    struct pending_write *w = calloc(1, sizeof *w);
    if (!w) {
        /* The entry is in the log and may commit; we just cannot report it. */
        cb(arg, REPLICA_ETIMEOUT, 0, NULL);
        return;
    }
    *w = (struct pending_write){ index, term, cb, arg, now(d) + d->o.write_timeout_ms, NULL };
    /* A new proposal has the highest index: appended in O(1) (the walk
     * from the head was ~1.6% of a leader's CPU with 64 writes waiting). */
    if (!d->writes_last || d->writes_last->index < index) {
        if (d->writes_last)
            d->writes_last->next = w;
        else
            d->writes = w;
        d->writes_last = w;
        return;
    }
    struct pending_write **p = &d->writes;
    while (*p && (*p)->index < index)
        p = &(*p)->next;
    w->next = *p;
    *p = w;
}

/* Entries up to `upto` were applied (results for those in committed[]).
 * A write whose entry is there with its term succeeded; with another term,
 * a new leader overwrote it (§3.5); missing (covered by an installed
 * snapshot), its outcome is unknown here. */
static void resolve_writes(struct replica *d, const struct raft_entry *committed, size_t count, const void *results,
                           raft_index upto)
{
    size_t k = 0;
    while (d->writes && d->writes->index <= upto) {
        struct pending_write *w = d->writes;
        d->writes = w->next;
        if (!d->writes)
            d->writes_last = NULL;
        while (k < count && committed[k].index < w->index)
            k++;
        if (k < count && committed[k].index == w->index) {
            if (committed[k].term == w->term)
                write_done(w, REPLICA_OK, w->index,
                           results ? (const char *)results + k * d->sm.result_size : NULL);
            else
                write_done(w, REPLICA_ELOST, 0, NULL);
        } else {
            write_done(w, REPLICA_ETIMEOUT, 0, NULL);
        }
    }
}

static void read_done(struct pending_read **link, int status)
{
    struct pending_read *rd = *link;
    *link = rd->next;
    rd->cb(rd->arg, status);
    free(rd);
}

/* Serves every read whose index is applied. */
static void complete_reads(struct replica *d)
{
    raft_index applied = sm_applied(d);
    for (struct pending_read **p = &d->reads; *p;) {
        if ((*p)->index_known && (*p)->min_index <= applied)
            read_done(p, REPLICA_OK);
        else
            p = &(*p)->next;
    }
}

void replica_read(struct replica *d, enum replica_consistency c, raft_index min_index, uint64_t timeout_ms,
                  replica_read_cb cb, void *arg)
{
    if (c == REPLICA_READ_STALE || (c == REPLICA_READ_SESSION && min_index <= sm_applied(d))) {
        cb(arg, REPLICA_OK);
        return;
    }
    if (closed(d)) {
        cb(arg, REPLICA_ESTOPPING);
        return;
    }
    struct pending_read *rd = calloc(1, sizeof *rd);
    if (!rd) {
        cb(arg, REPLICA_ETIMEOUT);
        return;
    }
    rd->cb = cb;
    rd->arg = arg;
    rd->deadline = now(d) + timeout_ms;
    if (c == REPLICA_READ_SESSION) {
        rd->min_index = min_index;
        rd->index_known = true;
    } else {
        if (!d->open_batch) {
            struct read_batch *b = calloc(1, sizeof *b);
            if (!b) {
                free(rd);
                cb(arg, REPLICA_ETIMEOUT);
                return;
            }
            b->context = ++d->next_context;
            b->next = d->batches;
            d->batches = b;
            d->open_batch = b;
        }
        rd->batch = d->open_batch;
    }
    rd->next = d->reads;
    d->reads = rd;
}

static void fail_batch_reads(struct replica *d, struct read_batch *b, int status)
{
    for (struct pending_read **p = &d->reads; *p;) {
        if ((*p)->batch == b)
            read_done(p, status);
        else
            p = &(*p)->next;
    }
}

static void drop_batch(struct replica *d, struct read_batch *b)
{
    for (struct read_batch **p = &d->batches; *p; p = &(*p)->next)
        if (*p == b) {
            *p = b->next;
            break;
        }
    if (d->open_batch == b)
        d->open_batch = NULL;
    free(b);
}

/* One read-index request for all linearizable reads that arrived since the
 * last one (§6.4 batching). */
static void submit_read_batch(struct replica *d)
{
    struct read_batch *b = d->open_batch;
    if (!b)
        return;
    d->open_batch = NULL;
    if (raft_read_index(d->raft, b->context) != RAFT_OK) {
        fail_batch_reads(d, b, REPLICA_ENOTLEADER);
        drop_batch(d, b);
        return;
    }
    b->requested = true;
}

static void take_read_states(struct replica *d, const struct raft_read_state *states, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        struct read_batch *b = d->batches;
        while (b && b->context != states[i].context)
            b = b->next;
        if (!b)
            continue; /* already timed out */
        if (!states[i].ok) {
            fail_batch_reads(d, b, REPLICA_ENOTLEADER);
        } else {
            for (struct pending_read *rd = d->reads; rd; rd = rd->next)
                if (rd->batch == b) {
                    rd->batch = NULL;
                    rd->min_index = states[i].index;
                    rd->index_known = true;
                }
        }
        drop_batch(d, b);
    }
}

static void expire_waiters(struct replica *d)
{
    uint64_t t = now(d);
    struct pending_write *prev = NULL;
    for (struct pending_write **p = &d->writes; *p;) {
        if ((*p)->deadline <= t) {
            struct pending_write *w = *p;
            *p = w->next;
            if (w == d->writes_last)
                d->writes_last = prev;
            write_done(w, REPLICA_ETIMEOUT, 0, NULL);
        } else {
            prev = *p;
            p = &(*p)->next;
        }
    }
    for (struct pending_read **p = &d->reads; *p;) {
        if ((*p)->deadline <= t)
            read_done(p, REPLICA_ETIMEOUT);
        else
            p = &(*p)->next;
    }
    /* A read-index request whose answer was lost (the leader's reply, or
     * our request, dropped) would otherwise be kept forever: once no read
     * waits on it, it goes. */
    for (struct read_batch *b = d->batches, *next; b; b = next) {
        next = b->next;
        bool waited_on = false;
        for (struct pending_read *rd = d->reads; rd && !waited_on; rd = rd->next)
            waited_on = rd->batch == b;
        if (b->requested && !waited_on)
            drop_batch(d, b);
    }
}

/* ---- The state machine's transaction --------------------------------------------------
 *
 * Applied entries join one open transaction of the state machine that is
 * committed every commit_every_ms or commit_every_entries, not after every
 * ready: a SQLite commit writes every page the batch touched to the WAL,
 * and at thousands of writes a second most batches touch the same pages.
 * Reads see the open transaction. A crash loses only what the log replays
 * at restart.
 */

/* A failed commit or apply rolls the state machine back to its last
 * commit: this applies again, from the core's log, what it had applied
 * since (their answers went out already; the results are the same).
 * Returns false while the disk is still full. */
static bool catch_up_sm(struct replica *d, raft_index upto)
{
    while (!dead(d) && sm_applied(d) < upto) {
        const struct raft_entry *e = raft_entry_at(d->raft, sm_applied(d) + 1);
        if (!e) {
            fatal(d, "applying entries again after the state machine rolled back", "the entry is no longer in memory");
            return false;
        }
        enum replica_sm_status rc = d->sm.apply(d->sm.ctx, e, 1, NULL);
        if (rc == REPLICA_SM_FULL)
            return false;
        if (rc != REPLICA_SM_OK)
            fatal(d, "applying committed entries to the state machine", sm_err(d));
    }
    return !dead(d);
}

/* Commits now; false if the disk is full (the state machine rolled back). */
static bool commit_sm(struct replica *d)
{
    disarm(d, REPLICA_TIMER_COMMIT);
    enum replica_sm_status rc = d->sm.commit(d->sm.ctx);
    if (rc == REPLICA_SM_FULL) {
        d->sm_state = SM_COMMIT_FULL;
        /* Rolled back to its last commit; apply that again at once (in
         * memory, in a new transaction) so that reads served while the
         * disk is full still show everything applied. */
        catch_up_sm(d, raft_applied_index(d->raft));
        return false;
    }
    if (rc != REPLICA_SM_OK) {
        fatal(d, "committing applied entries to the state machine", sm_err(d));
        return false;
    }
    if (d->sm_state == SM_COMMIT_FULL)
        d->sm_state = SM_OK;
    return true;
}

static void schedule_commit(struct replica *d)
{
    if (sm_applied(d) - sm_committed(d) >= d->o.commit_every_entries) {
        if (!commit_sm(d))
            note_disk_full(d, sm_err(d));
    } else if (sm_applied(d) > sm_committed(d) && !d->armed[REPLICA_TIMER_COMMIT]) {
        arm(d, REPLICA_TIMER_COMMIT, d->o.commit_every_ms);
    }
}

/* ---- Snapshots ---------------------------------------------------------------------- */

static void finish_barrier(struct replica *d);
static void start_jobs(struct replica *d);

/* After a cut tail, may this node still have acknowledged entries it lost?
 * It acknowledged them in amnesia_term or earlier (a message leaves only
 * once its term is durable). Every election quorum that leaves it out
 * meets, in another node, every commit quorum it was part of; so while it
 * neither votes nor campaigns, every leader of a later term holds whatever
 * it lost that was committed, and holds it below that term's first entry.
 * It is whole again once its disk holds an entry of a later term than
 * amnesia_term: its log up to there is that entry's leader's (log
 * matching). Not once it merely knows such an entry committed: the entries
 * may still be on their way to its disk, and a crash then would leave it
 * without them and without its marker. The host keeps amnesia_term in its
 * marker, so a crash before it removes the marker, or restarts in later
 * terms, do not raise the bar (the simulator, seeds 104095 and 111707: a
 * node that was whole came back amnesiac for good beside a dead voter).
 * The configuration that counts is the one the cut record may have made:
 * it may itself have added the third voter (two voters and a learner, then
 * "promote", committed by this node and the learner while the other voter
 * lacked it — seeds 256346 and 904282), so two voters hold back as three
 * do, and the new voter, which holds the entry, can lead. Only one voter
 * holds nothing back: it lost the entry anyway. */
static bool amnesiac(struct replica *d)
{
    return d->amnesia && raft_config_voters(raft_configuration(d->raft)) + 1 >= 3;
}

/* The disk now holds an entry (or the snapshot) of term t. */
static void note_durable_term(struct replica *d, raft_term t)
{
    if (!d->amnesia || t <= d->amnesia_term)
        return;
    d->amnesia = false;
    say(d, REPLICA_LOG_INFO, "the log holds an entry of term %llu on disk, after the cut tail's term %llu: it "
        "holds every committed entry again; voting and standing for election again", (unsigned long long)t,
        (unsigned long long)d->amnesia_term);
}

/* Hands msgs to the host, without this node's vote requests and vote
 * grants while it is amnesiac (a dropped message, as the network may).
 * Pre-vote grants too: a candidate this node would refuse its vote must
 * not be let through to raise its term again and again, or its stale
 * term turns away the pre-votes of the one that can win (seed 256346:
 * no leader for 8 s). */
static void send_msgs(struct replica *d, const struct raft_message *msgs, size_t n)
{
    if (!n)
        return;
    if (!amnesiac(d)) {
        d->io.send(d->io.ctx, msgs, n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (msgs[i].type != RAFT_MSG_VOTE && msgs[i].type != RAFT_MSG_PREVOTE &&
            !((msgs[i].type == RAFT_MSG_VOTE_RESP || msgs[i].type == RAFT_MSG_PREVOTE_RESP) && !msgs[i].reject))
            d->io.send(d->io.ctx, &msgs[i], 1);
}

static bool sm_busy(struct replica *d)
{
    return d->snap_job || (d->sm.busy && d->sm.busy(d->sm.ctx));
}

/* A snapshot install waiting for a job still reading the state machine's
 * files goes on once none does. */
static void resume_barrier(struct replica *d)
{
    if (d->barrier_waits && !sm_busy(d)) {
        d->barrier_waits = false;
        finish_barrier(d);
        replica_pump(d);
    }
}

void replica_sm_idle(struct replica *d)
{
    if (!dead(d))
        resume_barrier(d);
}

bool replica_sm_commit(struct replica *d)
{
    if (dead(d))
        return false;
    if (sm_applied(d) == sm_committed(d))
        return true;
    if (!commit_sm(d)) {
        note_disk_full(d, sm_err(d));
        return false;
    }
    return true;
}

static void maybe_snapshot(struct replica *d)
{
    if (!d->o.snapshot_entries && !d->snapshot_wanted)
        return;
    raft_index applied = sm_applied(d);
    /* One snapshot at a time, from the copy to its adoption: both use the
     * same temporary file. */
    /* A core that waits for a leader's snapshot (raft_want_snapshot: the
     * state machine is not to be trusted) copies nothing of it. */
    if (d->snap_job || d->adopt_pending || d->job == JOB_ADOPT || closed(d) || d->barrier_waits ||
        raft_wants_snapshot(d->raft))
        return;
    bool wanted = d->snapshot_wanted && applied >= d->snapshot_wanted && applied > d->last_snapshot;
    if (applied < d->last_snapshot + d->snapshot_gap && !wanted)
        return;
    if (!commit_sm(d)) { /* the copy is made from what is committed */
        note_disk_full(d, sm_err(d));
        return;
    }
    d->snap_job = true;
    d->snapshot_wanted = 0;
    d->snap_started_ms = now(d);
    d->io.snapshot(d->io.ctx);
}

void replica_snapshot_done(struct replica *d, enum replica_job_status st, raft_index index, uint64_t size,
                           uint32_t crc, const char *err)
{
    d->snap_job = false;
    if (dead(d))
        return;
    if (st == REPLICA_JOB_FATAL) {
        fatal(d, "copying the state machine for a snapshot", err);
        return;
    }
    if (st != REPLICA_JOB_OK) {
        resume_barrier(d);
        say(d, REPLICA_LOG_WARN, "snapshot of the state machine failed (will retry later): %s", err ? err : "");
        d->last_snapshot = sm_applied(d); /* do not retry at once */
        draw_snapshot_gap(d);
        return;
    }
    struct raft_snapshot_meta meta = { .index = index, .term = raft_term_at(d->raft, index), .size = size, .crc = crc };
    if (meta.term == 0 || raft_config_at(d->raft, index, &meta.config) != RAFT_OK) {
        say(d, REPLICA_LOG_WARN, "snapshot at %llu no longer fits the log; skipped", (unsigned long long)index);
        resume_barrier(d);
        return;
    }
    d->adopt_meta = meta;
    d->adopt_pending = true;
    resume_barrier(d);
    replica_pump(d);
}

void replica_adopt_done(struct replica *d, enum replica_job_status st, const char *err)
{
    d->job = JOB_IDLE;
    if (dead(d))
        return;
    if (st == REPLICA_JOB_FATAL) {
        fatal(d, "saving a snapshot", err);
        return;
    }
    if (st != REPLICA_JOB_OK) {
        /* Full disk, or overtaken (a leader's snapshot was installed
         * meanwhile): nothing is lost, the next snapshot will do. */
        say(d, REPLICA_LOG_WARN, "cannot keep a snapshot (will retry later): %s", err ? err : "");
    } else {
        int rc = raft_snapshot_taken(d->raft, d->adopt_meta.index, d->adopt_meta.size, d->adopt_meta.crc);
        if (rc)
            say(d, REPLICA_LOG_WARN, "the core refused snapshot %llu: %s", (unsigned long long)d->adopt_meta.index,
                raft_strerror(rc));
        say(d, REPLICA_LOG_INFO, "snapshot at index %llu (%llu bytes) in %llu ms",
            (unsigned long long)d->adopt_meta.index, (unsigned long long)d->adopt_meta.size,
            (unsigned long long)(now(d) - d->snap_started_ms));
    }
    d->last_snapshot = d->adopt_meta.index;
    draw_snapshot_gap(d);
    replica_pump(d);
}

/* ---- Applying ------------------------------------------------------------------------ */

/* Applies what is left of rd's committed entries (from apply_done).
 * Returns false if the disk is full: the rest waits for a retry, the ready
 * stays outstanding, and nothing is lost (the log has it all). */
static bool apply_committed(struct replica *d, const struct raft_ready *rd)
{
    while (d->apply_done < rd->n_committed) {
        if (!catch_up_sm(d, rd->committed[d->apply_done].index - 1))
            return false;
        size_t batch = rd->n_committed - d->apply_done;
        if (batch > d->o.apply_batch)
            batch = d->o.apply_batch;
        const struct raft_entry *e = rd->committed + d->apply_done;
        enum replica_sm_status rc = d->sm.apply(d->sm.ctx, e, batch, d->results);
        if (rc == REPLICA_SM_FULL)
            return false;
        if (rc != REPLICA_SM_OK) {
            fatal(d, "applying committed entries to the state machine", sm_err(d));
            return false;
        }
        resolve_writes(d, e, batch, d->results, e[batch - 1].index);
        d->apply_done += batch;
    }
    if (d->sm_state == SM_APPLY_FULL)
        d->sm_state = SM_OK;
    schedule_commit(d);
    return !dead(d);
}

/* Applies rd's committed entries, hands over its reads, and advances the
 * core; re-entered after a full disk (the ready stays outstanding, nothing
 * is lost: the log has it all). */
static void finish_apply(struct replica *d)
{
    struct raft_ready *rd = &d->rd;
    if (!apply_committed(d, rd)) {
        if (dead(d))
            return;
        d->sm_state = SM_APPLY_FULL;
        note_disk_full(d, sm_err(d));
        return;
    }
    take_read_states(d, rd->reads, rd->n_reads);
    raft_advance(d->raft, rd);
    d->ready_outstanding = false;
    note_disk_ok(d);
    complete_reads(d);
    maybe_snapshot(d);
}

static void start_apply(struct replica *d)
{
    d->apply_done = 0;
    finish_apply(d);
}

/* The barrier ready is durable: its messages, the snapshot, then apply. */
static void finish_barrier(struct replica *d)
{
    struct raft_ready *rd = &d->rd;
    if (rd->snapshot_install && sm_busy(d)) {
        /* A job still reads (or checkpoints) the files the restore
         * replaces: wait for it (resume_barrier). */
        d->barrier_waits = true;
        return;
    }
    send_msgs(d, rd->send_after_persist, rd->n_send_after_persist);
    if (!d->o.sync_persist)
        raft_persisted(d->raft, rd->seq);
    if (rd->snapshot_install) {
        char err[512] = "";
        if (d->sm.restore(d->sm.ctx, rd->snapshot_install, err, sizeof err) != REPLICA_SM_OK) {
            fatal(d, "restoring the state machine from the leader's snapshot", err);
            return;
        }
        say(d, REPLICA_LOG_INFO, "installed the leader's snapshot at index %llu",
            (unsigned long long)rd->snapshot_install->index);
        d->last_snapshot = rd->snapshot_install->index;
        resolve_writes(d, NULL, 0, NULL, rd->snapshot_install->index);
    }
    start_apply(d);
}

/* ---- The ready loop ---------------------------------------------------------------------- */

static bool has_snapshot_data(const struct raft_ready *rd)
{
    return rd->snapshot_chunk.len || rd->snapshot_chunk.meta.index || rd->snapshot_install;
}

/* Log writes in a ready without snapshot data. */
static bool needs_log_write(const struct raft_ready *rd)
{
    return rd->truncate_from || rd->n_entries || rd->hard_state_changed;
}

static void note_soft_state(struct replica *d, const struct raft_ready *rd)
{
    if (rd->role != d->last_role || rd->leader != d->last_leader || rd->term != d->last_term) {
        say(d, REPLICA_LOG_INFO, "term %llu: %s, leader %llu", (unsigned long long)rd->term, raft_role_name(rd->role),
            (unsigned long long)rd->leader);
        d->last_role = rd->role;
        d->last_leader = rd->leader;
        d->last_term = rd->term;
    }
}

/* A ready without snapshot data: its writes join the next batch (or, with
 * none, its messages ride on the write in flight or leave now), then it is
 * applied and advanced. */
static void take_ready(struct replica *d)
{
    struct raft_ready *rd = &d->rd;
    bool in_flight = d->job == JOB_WRITE || d->job == JOB_WRITE_FULL;
    if (needs_log_write(rd) || !write_batch_empty(&d->pending)) {
        if (write_batch_add(&d->pending, rd)) {
            fatal(d, "queueing a disk write", "out of memory");
            return;
        }
    } else {
        /* Nothing of this ready to write: its messages depend only on what
         * earlier readies wrote, all in the write in flight if any. */
        if (in_flight) {
            if (write_batch_add_after(&d->writing, rd->send_after_persist, rd->n_send_after_persist)) {
                fatal(d, "queueing messages", "out of memory");
                return;
            }
        } else {
            send_msgs(d, rd->send_after_persist, rd->n_send_after_persist);
        }
        if (rd->compact_before > d->pending.compact_before)
            d->pending.compact_before = rd->compact_before;
    }
    start_jobs(d); /* the disk works while we apply */
    if (!dead(d))
        start_apply(d);
}

static void submit_write(struct replica *d)
{
    const struct write_batch *b = &d->writing;
    d->job = JOB_WRITE;
    d->job_w = (struct replica_write){
        .truncate_from = b->truncate_from,
        .retry = d->write_retry,
        .entries = b->entries,
        .n_entries = b->n_entries,
        .hs = b->hs_changed ? &b->hs : NULL,
        .compact_before = b->compact_before,
    };
    d->io.write(d->io.ctx, &d->job_w);
}

static void submit_persist(struct replica *d)
{
    const struct raft_ready *rd = &d->rd;
    d->job = JOB_PERSIST;
    d->job_w = (struct replica_write){
        .truncate_from = rd->truncate_from,
        .retry = d->write_retry,
        .entries = rd->entries,
        .n_entries = rd->n_entries,
        .hs = rd->hard_state_changed ? &rd->hard_state : NULL,
        .compact_before = rd->compact_before,
        .chunk = rd->snapshot_chunk.meta.index ? &rd->snapshot_chunk : NULL,
        .install = rd->snapshot_install,
    };
    d->io.write(d->io.ctx, &d->job_w);
}

/* Starts the next storage job if none runs: a snapshot adoption, the
 * pending writes, or (once those are done) the barrier ready. */
static void start_jobs(struct replica *d)
{
    if (d->job != JOB_IDLE || closed(d))
        return;
    if (d->adopt_pending) {
        d->adopt_pending = false;
        d->job = JOB_ADOPT;
        d->io.adopt(d->io.ctx, &d->adopt_meta);
        return;
    }
    if (!write_batch_empty(&d->pending)) {
        struct write_batch t = d->writing;
        d->writing = d->pending;
        d->pending = t;
        write_batch_reset(&d->pending);
        write_batch_seal(&d->writing);
        d->write_retry = false;
        submit_write(d);
        return;
    }
    if (d->rd_barrier) {
        d->rd_barrier = false;
        d->write_retry = false;
        submit_persist(d);
    }
}

void replica_write_done(struct replica *d, enum replica_job_status st, const char *err)
{
    enum job_state was = d->job;
    d->job = JOB_IDLE;
    if (dead(d))
        return;
    if (st == REPLICA_JOB_FULL || st == REPLICA_JOB_FAILED) {
        d->job = was == JOB_WRITE ? JOB_WRITE_FULL : JOB_PERSIST_FULL;
        note_disk_full(d, err ? err : "no space");
        return;
    }
    if (st != REPLICA_JOB_OK) {
        fatal(d, "writing the Raft log", err);
        return;
    }
    d->write_retry = false;
    if (was == JOB_WRITE) {
        struct write_batch *b = &d->writing;
        if (b->n_entries)
            note_durable_term(d, b->entries[b->n_entries - 1].term);
        send_msgs(d, b->after, b->n_after);
        if (b->seq) /* also a batch with only a hard state: a new leader waits for its term */
            raft_persisted(d->raft, b->seq);
        write_batch_reset(b);
        note_disk_ok(d);
    } else {
        if (d->job_w.n_entries)
            note_durable_term(d, d->job_w.entries[d->job_w.n_entries - 1].term);
        if (d->job_w.install)
            note_durable_term(d, d->job_w.install->term);
        note_disk_ok(d);
        finish_barrier(d);
    }
    replica_pump(d);
}

static void retry_disk(struct replica *d)
{
    if (d->job == JOB_WRITE_FULL) {
        d->write_retry = true;
        submit_write(d);
    } else if (d->job == JOB_PERSIST_FULL) {
        d->write_retry = true;
        submit_persist(d);
    }
    if (d->sm_state == SM_APPLY_FULL) {
        finish_apply(d);
    } else if (d->sm_state == SM_COMMIT_FULL) {
        /* The state machine went back to its last commit: apply again, commit. */
        if (catch_up_sm(d, raft_applied_index(d->raft)) && commit_sm(d))
            note_disk_ok(d);
        else if (!dead(d))
            note_disk_full(d, sm_err(d));
    }
    replica_pump(d);
}

void replica_timer_fired(struct replica *d, enum replica_timer which)
{
    d->armed[which] = false;
    if (dead(d))
        return;
    if (which == REPLICA_TIMER_RETRY) {
        retry_disk(d);
        return;
    }
    if (d->sm_state == SM_APPLY_FULL)
        return; /* a full disk holds up an apply; retry_disk commits after it */
    if (!commit_sm(d) && !dead(d))
        note_disk_full(d, sm_err(d));
}

void replica_pump(struct replica *d)
{
    if (closed(d))
        return;
    submit_read_batch(d);
    /* While the log or the state machine cannot be written no ready is
     * taken: a leader goes silent, so the others elect one whose disk works. */
    while (!d->ready_outstanding && d->job != JOB_WRITE_FULL && d->sm_state != SM_COMMIT_FULL &&
           raft_has_ready(d->raft)) {
        int rc = raft_ready(d->raft, &d->rd);
        if (rc) {
            fatal(d, "taking the next Raft step", raft_strerror(rc));
            return;
        }
        d->ready_outstanding = true;
        note_soft_state(d, &d->rd);
        send_msgs(d, d->rd.send_now, d->rd.n_send_now);
        if (d->o.sync_persist || has_snapshot_data(&d->rd)) {
            d->rd_barrier = true; /* start_jobs runs it once the writes before it are done */
            break;
        }
        take_ready(d);
        if (dead(d))
            return;
    }
    start_jobs(d);
    if (d->state == REPLICA_STOPPING && !d->stop_signalled && d->job == JOB_IDLE && !d->ready_outstanding &&
        write_batch_empty(&d->pending) && (raft_role(d->raft) != RAFT_LEADER || !d->handing_over)) {
        d->stop_signalled = true;
        d->io.stopped(d->io.ctx);
    }
}

void replica_tick(struct replica *d)
{
    if (closed(d))
        return;
    if (!amnesiac(d)) /* without ticks it never times out, so never campaigns */
        raft_tick(d->raft);
    expire_waiters(d);
    replica_pump(d);
}

void replica_step(struct replica *d, const struct raft_message *m)
{
    if (closed(d))
        return;
    raft_step(d->raft, m);
    /* A follower that lost its state machine (raft_want_snapshot) asks for
     * a snapshot at or after its own; the core sends ours only if it
     * reaches that far, and otherwise waits for a newer one. Left to the
     * snapshot_entries policy, a quiet cluster would never take it: the
     * follower would stay without a state machine. */
    if (m->type == RAFT_MSG_SNAPSHOT_WANTED && raft_role(d->raft) == RAFT_LEADER) {
        const struct raft_snapshot_meta *snap = raft_snapshot(d->raft);
        if ((!snap || snap->index < m->index) && m->index > d->snapshot_wanted) {
            d->snapshot_wanted = m->index;
            maybe_snapshot(d);
        }
    }
}

/* ---- Stopping ----------------------------------------------------------------------- */

/* The most caught-up voter other than us, to hand leadership to. */
static raft_id transfer_target(struct replica *d)
{
    struct raft_progress prs[RAFT_MAX_MEMBERS];
    size_t count = raft_progress(d->raft, prs, RAFT_MAX_MEMBERS);
    const struct raft_config *c = raft_configuration(d->raft);
    raft_id best = 0, self = raft_self(d->raft);
    raft_index best_match = 0;
    for (size_t i = 0; i < count && i < RAFT_MAX_MEMBERS; i++) {
        const struct raft_member *m = raft_config_find(c, prs[i].id);
        if (prs[i].id == self || !m || m->role != RAFT_VOTER)
            continue;
        if (!best || prs[i].match > best_match) {
            best = prs[i].id;
            best_match = prs[i].match;
        }
    }
    return best;
}

void replica_stop(struct replica *d)
{
    if (d->state != REPLICA_RUNNING)
        return;
    d->state = REPLICA_STOPPING;
    if (raft_role(d->raft) == RAFT_LEADER) {
        raft_id to = transfer_target(d);
        if (to && raft_transfer_leader(d->raft, to) == RAFT_OK) {
            d->handing_over = true;
            say(d, REPLICA_LOG_INFO, "stopping: handing leadership to node %llu first", (unsigned long long)to);
        } else {
            say(d, REPLICA_LOG_INFO, "stopping (no other voter to hand leadership to)");
        }
    } else {
        say(d, REPLICA_LOG_INFO, "stopping");
    }
    replica_pump(d);
}

void replica_close(struct replica *d)
{
    if (d->state != REPLICA_FAILED)
        d->state = REPLICA_CLOSED;
    disarm(d, REPLICA_TIMER_COMMIT);
    disarm(d, REPLICA_TIMER_RETRY);
    while (d->writes) {
        struct pending_write *w = d->writes;
        d->writes = w->next;
        if (!d->writes)
            d->writes_last = NULL;
        write_done(w, REPLICA_ESTOPPING, 0, NULL);
    }
    while (d->reads)
        read_done(&d->reads, REPLICA_ESTOPPING);
    while (d->batches)
        drop_batch(d, d->batches);
}
