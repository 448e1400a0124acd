/*
 * test_replica.c — the replica driver's disk states and stop (src/replica/
 * replica.h) over a fake host: a one-voter core, writes completed or
 * failed by hand, timers fired by hand. No time is asserted: the host's
 * clock only moves when a test says so.
 */
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "replica/replica.h"

struct fake {
    uint64_t now;
    bool job;                    /* a storage job is outstanding */
    struct replica_write last;   /* the last one started */
    bool armed[REPLICA_TIMERS];
    uint64_t applied, committed;
    bool commit_full;            /* commits fail with a full disk (and roll back) */
    int fatals, stopped, snapshots;
    int vote_reqs, grants;       /* vote (and pre-vote) requests and vote grants sent */
    int pre_grants;              /* pre-vote grants sent */
    int answers, last_status;
    raft_index last_index;
    uint64_t read_ctx;           /* the context of the last read-index request sent */
    int read_reqs;
};

static uint64_t f_now(void *ctx) { return ((struct fake *)ctx)->now; }
static void f_send(void *ctx, const struct raft_message *m, size_t n)
{
    struct fake *f = ctx;
    for (size_t i = 0; i < n; i++) {
        f->vote_reqs += m[i].type == RAFT_MSG_VOTE || m[i].type == RAFT_MSG_PREVOTE;
        f->grants += m[i].type == RAFT_MSG_VOTE_RESP && !m[i].reject;
        f->pre_grants += m[i].type == RAFT_MSG_PREVOTE_RESP && !m[i].reject;
        if (m[i].type == RAFT_MSG_READ_INDEX) {
            f->read_reqs++;
            f->read_ctx = m[i].context;
        }
    }
}
static void f_write(void *ctx, const struct replica_write *w)
{
    struct fake *f = ctx;
    f->job = true;
    f->last = *w;
}
static void f_snapshot(void *ctx) { ((struct fake *)ctx)->snapshots++; }
static void f_adopt(void *ctx, const struct raft_snapshot_meta *m) { (void)ctx; (void)m; }
static void f_arm(void *ctx, enum replica_timer t, uint64_t ms) { (void)ms; ((struct fake *)ctx)->armed[t] = true; }
static void f_cancel(void *ctx, enum replica_timer t) { ((struct fake *)ctx)->armed[t] = false; }
static void f_log(void *ctx, enum replica_log_level l, const char *msg) { (void)ctx; (void)l; (void)msg; }
static void f_fatal(void *ctx, const char *what, const char *detail) { (void)what; (void)detail; ((struct fake *)ctx)->fatals++; }
static void f_stopped(void *ctx) { ((struct fake *)ctx)->stopped++; }

static raft_index sm_applied(void *ctx) { return ((struct fake *)ctx)->applied; }
static raft_index sm_committed(void *ctx) { return ((struct fake *)ctx)->committed; }
static enum replica_sm_status sm_apply(void *ctx, const struct raft_entry *e, size_t n, void *res)
{
    struct fake *f = ctx;
    (void)res;
    f->applied = e[n - 1].index;
    return REPLICA_SM_OK;
}
static enum replica_sm_status sm_commit(void *ctx)
{
    struct fake *f = ctx;
    if (f->commit_full) {
        f->applied = f->committed; /* rolled back */
        return REPLICA_SM_FULL;
    }
    f->committed = f->applied;
    return REPLICA_SM_OK;
}
static enum replica_sm_status sm_restore(void *ctx, const struct raft_snapshot_meta *m, char *err, size_t cap)
{
    (void)ctx; (void)m; (void)err; (void)cap;
    return REPLICA_SM_FAILED;
}

static void answered(void *arg, int status, raft_index index, const void *result)
{
    struct fake *f = arg;
    (void)result;
    f->answers++;
    f->last_status = status;
    f->last_index = index;
}

static struct replica *make(struct fake *f)
{
    memset(f, 0, sizeof *f);
    struct raft_options ro;
    raft_options_default(&ro, 1, 42);
    ro.async_persist = true;
    struct raft *r = raft_create(&ro);
    struct raft_config c = { .n = 1, .members = { { 1, RAFT_VOTER, 0 } } };
    if (!r || raft_bootstrap(r, &c) != RAFT_OK)
        return NULL;
    struct replica_options o;
    replica_options_default(&o);
    o.snapshot_entries = 0;
    struct replica_io io = { .ctx = f, .now = f_now, .send = f_send, .write = f_write, .snapshot = f_snapshot,
                             .adopt = f_adopt, .arm = f_arm, .cancel = f_cancel, .log = f_log, .fatal = f_fatal,
                             .stopped = f_stopped };
    struct replica_sm sm = { .ctx = f, .applied = sm_applied, .committed = sm_committed, .apply = sm_apply,
                             .commit = sm_commit, .restore = sm_restore };
    return replica_create(&o, r, &io, &sm);
}

/* Completes storage jobs (each may start the next) until none is left. */
static void settle(struct fake *f, struct replica *d)
{
    for (int i = 0; i < 100 && f->job; i++) {
        f->job = false;
        replica_write_done(d, REPLICA_JOB_OK, NULL);
    }
}

/* Ticks a one-voter cluster until it leads, every write done at once. */
static bool lead(struct fake *f, struct replica *d)
{
    replica_pump(d);
    for (int i = 0; i < 200 && raft_role(replica_raft(d)) != RAFT_LEADER; i++) {
        f->now += 15;
        replica_tick(d);
        settle(f, d);
    }
    settle(f, d);
    return raft_role(replica_raft(d)) == RAFT_LEADER;
}

TEST(full_log_write_refuses_writes_and_retries_the_same_batch)
{
    struct fake f;
    struct replica *d = make(&f);
    REQUIRE(d && lead(&f, d));
    replica_propose(d, (const uint8_t *)"x", 1, answered, &f);
    replica_pump(d);
    REQUIRE(f.job && f.last.n_entries == 1);
    raft_index idx = f.last.entries[0].index;
    f.job = false;
    replica_write_done(d, REPLICA_JOB_FULL, "no space left on device");
    CHECK(replica_disk_full(d));
    CHECK(f.armed[REPLICA_TIMER_RETRY]);
    CHECK_EQ_I(f.answers, 0); /* nothing is lost: the entry waits for the retry */
    replica_propose(d, (const uint8_t *)"y", 1, answered, &f);
    CHECK_EQ_I(f.answers, 1);
    CHECK_EQ_I(f.last_status, REPLICA_EDISKFULL);
    f.armed[REPLICA_TIMER_RETRY] = false;
    replica_timer_fired(d, REPLICA_TIMER_RETRY);
    REQUIRE(f.job);
    CHECK(f.last.retry); /* the host drops what the failed try left first */
    CHECK(f.last.n_entries == 1 && f.last.entries[0].index == idx);
    CHECK(replica_disk_full(d)); /* until the retry is done */
    settle(&f, d);
    CHECK(!replica_disk_full(d));
    CHECK_EQ_I(f.answers, 2);
    CHECK_EQ_I(f.last_status, REPLICA_OK);
    CHECK_EQ_U(f.last_index, idx);
    CHECK_EQ_U(f.applied, idx);
    CHECK_EQ_I(f.fatals, 0);
    replica_destroy(d);
}

TEST(failed_commit_keeps_reads_whole_and_commits_on_retry)
{
    struct fake f;
    struct replica *d = make(&f);
    REQUIRE(d && lead(&f, d));
    replica_propose(d, (const uint8_t *)"x", 1, answered, &f);
    replica_pump(d);
    settle(&f, d);
    REQUIRE(f.answers == 1 && f.last_status == REPLICA_OK);
    REQUIRE(f.armed[REPLICA_TIMER_COMMIT]);
    f.commit_full = true;
    f.armed[REPLICA_TIMER_COMMIT] = false;
    replica_timer_fired(d, REPLICA_TIMER_COMMIT);
    CHECK(replica_disk_full(d));
    CHECK_EQ_U(f.applied, f.last_index); /* applied again in memory after the rollback */
    CHECK(f.committed < f.applied);
    replica_propose(d, (const uint8_t *)"y", 1, answered, &f);
    CHECK_EQ_I(f.last_status, REPLICA_EDISKFULL);
    f.commit_full = false;
    replica_timer_fired(d, REPLICA_TIMER_RETRY);
    CHECK(!replica_disk_full(d));
    CHECK_EQ_U(f.committed, f.applied);
    replica_propose(d, (const uint8_t *)"z", 1, answered, &f);
    replica_pump(d);
    settle(&f, d);
    CHECK_EQ_I(f.last_status, REPLICA_OK);
    replica_destroy(d);
}

TEST(failed_fsync_is_fatal_and_nothing_more_happens)
{
    struct fake f;
    struct replica *d = make(&f);
    REQUIRE(d && lead(&f, d));
    replica_propose(d, (const uint8_t *)"x", 1, answered, &f);
    replica_pump(d);
    REQUIRE(f.job);
    f.job = false;
    replica_write_done(d, REPLICA_JOB_FATAL, "fdatasync: input/output error");
    CHECK_EQ_I(f.fatals, 1);
    struct replica_status st;
    replica_get_status(d, &st);
    CHECK(st.state == REPLICA_FAILED);
    replica_tick(d);
    replica_pump(d);
    CHECK(!f.job);
    CHECK_EQ_I(f.fatals, 1);
    replica_destroy(d); /* the waiter is answered once, at the end */
    CHECK_EQ_I(f.answers, 1);
    CHECK_EQ_I(f.last_status, REPLICA_ESTOPPING);
}

TEST(stop_waits_for_the_write_in_flight)
{
    struct fake f;
    struct replica *d = make(&f);
    REQUIRE(d && lead(&f, d));
    replica_propose(d, (const uint8_t *)"x", 1, answered, &f);
    replica_pump(d);
    REQUIRE(f.job);
    replica_stop(d);
    CHECK_EQ_I(f.stopped, 0);
    CHECK(replica_job_running(d));
    replica_propose(d, (const uint8_t *)"y", 1, answered, &f);
    CHECK_EQ_I(f.last_status, REPLICA_ESTOPPING);
    settle(&f, d);
    CHECK_EQ_I(f.stopped, 1);
    replica_close(d);
    replica_destroy(d);
    CHECK_EQ_I(f.stopped, 1);
}

/* A follower repairing from peers asks for a snapshot newer than the
 * leader's: a quiet leader takes one at once, not after snapshot_entries
 * more writes (which may never come). Found by the simulator (seed 123 of
 * the disk faults: the follower waited for ever). */
TEST(snapshot_wanted_beyond_ours_takes_one_now)
{
    struct fake f;
    struct replica *d = make(&f);
    REQUIRE(d && lead(&f, d));
    for (int i = 0; i < 3; i++) {
        replica_propose(d, (const uint8_t *)"x", 1, answered, &f);
        replica_pump(d);
        settle(&f, d);
    }
    REQUIRE(f.applied >= 3);
    CHECK_EQ_I(f.snapshots, 0); /* snapshot_entries 0 here: none on its own */
    struct raft_message m = { .type = RAFT_MSG_SNAPSHOT_WANTED, .from = 2, .to = 1,
                              .term = raft_current_term(replica_raft(d)), .index = 2 };
    replica_step(d, &m);
    replica_pump(d);
    CHECK_EQ_I(f.snapshots, 1);
    CHECK_EQ_I(f.fatals, 0);
    replica_destroy(d);
}

/* A node restarted on a log of one entry holding configuration c, term
 * 1, whose storage cut the record after it (lost_tail): pre-vote and
 * check-quorum off, so a tick-driven election is a vote request. */
static struct replica *restart_cut(struct fake *f, const struct raft_config *c)
{
    memset(f, 0, sizeof *f);
    struct raft_options ro;
    raft_options_default(&ro, 1, 42);
    ro.pre_vote = false;
    ro.check_quorum = false;
    struct raft *r = raft_create(&ro);
    struct raft_entry e1 = { .index = 1, .term = 1, .type = RAFT_ENTRY_CONFIG };
    static uint8_t cfg[64];
    int len = raft_config_encode(c, cfg, sizeof cfg);
    if (!r || len <= 0)
        return NULL;
    e1.data = cfg;
    e1.len = (uint32_t)len;
    struct raft_hard_state hs = { .term = 1, .vote = 0 };
    if (raft_restore(r, &hs, NULL, &e1, 1, 0) != RAFT_OK)
        return NULL;
    struct replica_options o;
    replica_options_default(&o);
    o.snapshot_entries = 0;
    o.lost_tail = true;
    struct replica_io io = { .ctx = f, .now = f_now, .send = f_send, .write = f_write, .snapshot = f_snapshot,
                             .adopt = f_adopt, .arm = f_arm, .cancel = f_cancel, .log = f_log, .fatal = f_fatal,
                             .stopped = f_stopped };
    struct replica_sm sm = { .ctx = f, .applied = sm_applied, .committed = sm_committed, .apply = sm_apply,
                             .commit = sm_commit, .restore = sm_restore };
    return replica_create(&o, r, &io, &sm);
}

/* Holds back: 100 ticks start no election, and an up-to-date candidate
 * of term 2 (n2) gets no grant, of its pre-vote or its vote (the core may
 * grant; the grant does not leave: a pre-vote let through would only let
 * n2 raise its term in vain, seed 256346). Then n3 leads term 2 and
 * commits an entry of it: whole again, it votes and campaigns. */
static void check_held_back_until_whole(struct fake *f, struct replica *d)
{
    struct raft *r = replica_raft(d);
    for (int i = 0; i < 100; i++) {
        replica_tick(d);
        settle(f, d);
    }
    CHECK(raft_role(r) == RAFT_FOLLOWER);
    CHECK_EQ_I(f->vote_reqs, 0);
    CHECK(replica_lost_tail(d)); /* the host keeps its marker */
    struct raft_message pv = { .type = RAFT_MSG_PREVOTE, .from = 2, .to = 1, .term = 2, .last_index = 1,
                               .last_term = 1 };
    replica_step(d, &pv);
    replica_pump(d);
    settle(f, d);
    CHECK_EQ_I(f->pre_grants, 0);
    struct raft_message v = { .type = RAFT_MSG_VOTE, .from = 2, .to = 1, .term = 2, .last_index = 1, .last_term = 1 };
    replica_step(d, &v);
    replica_pump(d);
    settle(f, d);
    CHECK_EQ_I(f->grants, 0);
    struct raft_entry e2 = { .index = 2, .term = 2, .type = RAFT_ENTRY_COMMAND };
    struct raft_message a = { .type = RAFT_MSG_APPEND, .from = 3, .to = 1, .term = 2, .prev_index = 1,
                              .prev_term = 1, .commit = 2, .entries = &e2, .n_entries = 1 };
    replica_step(d, &a);
    replica_pump(d); /* as the host does after every input */
    settle(f, d);
    REQUIRE(raft_commit_index(r) == 2);
    CHECK(!replica_lost_tail(d));
    for (int i = 0; i < 100 && raft_role(r) == RAFT_FOLLOWER; i++) {
        replica_tick(d);
        settle(f, d);
    }
    CHECK(raft_role(r) != RAFT_FOLLOWER);
    CHECK(f->vote_reqs > 0);
    CHECK_EQ_I(f->fatals, 0);
}

/* A node whose storage cut its last record at start (lost_tail) may have
 * acknowledged what it lost: in a three-voter cluster it neither campaigns
 * nor grants votes until its disk holds an entry of a later term (the
 * simulator, seed 907 with bit rot of a last entry: it was elected without
 * a committed entry). */
TEST(lost_tail_neither_campaigns_nor_votes_until_whole)
{
    struct fake f;
    struct raft_config c = { .n = 3, .members = { { 1, RAFT_VOTER, 0 }, { 2, RAFT_VOTER, 0 }, { 3, RAFT_VOTER, 0 } } };
    struct replica *d = restart_cut(&f, &c);
    REQUIRE(d);
    check_held_back_until_whole(&f, d);
    replica_destroy(d);
}

/* The record cut may itself have been the configuration that made the
 * third voter: {n1, n2} and learner n3, then "promote n3", committed by
 * n1 and n3 alone. Cut, n1 sees two voters, but n2 lacks the entry and
 * must not lead with n1's vote (the simulator, seeds 256346 and 904282:
 * the node voted or stood, and a leader was elected without the committed
 * promotion). With two voters it holds back as with three; n3, which holds
 * the entry, can lead with n2. */
TEST(lost_tail_holds_back_with_two_voters_the_cut_record_may_have_made_three)
{
    struct fake f;
    struct raft_config c = { .n = 3, .members = { { 1, RAFT_VOTER, 0 }, { 2, RAFT_VOTER, 0 }, { 3, RAFT_LEARNER, 0 } } };
    struct replica *d = restart_cut(&f, &c);
    REQUIRE(d);
    check_held_back_until_whole(&f, d);
    replica_destroy(d);
}

/* One voter: an ordinary entry it cut was committed by it alone and is
 * lost whatever it does; holding back would leave the cluster without a
 * leader for ever. (Had the record added a second voter, that one holds
 * it and is not heard: a loss the simulator's disk faults, which strike
 * only three-voter clusters, do not model.) */
TEST(lost_tail_one_voter_leads_at_once)
{
    struct fake f;
    struct raft_config c = { .n = 2, .members = { { 1, RAFT_VOTER, 0 }, { 3, RAFT_LEARNER, 0 } } };
    struct replica *d = restart_cut(&f, &c);
    REQUIRE(d);
    for (int i = 0; i < 100 && raft_role(replica_raft(d)) != RAFT_LEADER; i++) {
        replica_tick(d);
        settle(&f, d);
    }
    CHECK(raft_role(replica_raft(d)) == RAFT_LEADER);
    CHECK_EQ_I(f.fatals, 0);
    replica_destroy(d);
}

static void read_answered(void *arg, int status)
{
    struct fake *f = arg;
    f->answers++;
    f->last_status = status;
}

/* A follower (n1) of a three-voter cluster, restarted from term 2 with entry
 * 1 (the configuration) on its disk, that hears leader n2 of term 2. */
static struct replica *restarted_follower(struct fake *f, uint64_t seed)
{
    memset(f, 0, sizeof *f);
    struct raft_options ro;
    raft_options_default(&ro, 1, seed);
    ro.async_persist = true;
    struct raft *r = raft_create(&ro);
    struct raft_config c = { .n = 3, .members = { { 1, RAFT_VOTER, 0 }, { 2, RAFT_VOTER, 0 }, { 3, RAFT_VOTER, 0 } } };
    struct raft_entry e1 = { .index = 1, .term = 1, .type = RAFT_ENTRY_CONFIG };
    uint8_t cfg[64];
    int len = raft_config_encode(&c, cfg, sizeof cfg);
    if (!r || len <= 0)
        return NULL;
    e1.data = cfg;
    e1.len = (uint32_t)len;
    struct raft_hard_state hs = { .term = 2, .vote = 2 };
    if (raft_restore(r, &hs, NULL, &e1, 1, 0) != RAFT_OK)
        return NULL;
    struct replica_options o;
    replica_options_default(&o);
    o.snapshot_entries = 0;
    o.seed = seed;
    struct replica_io io = { .ctx = f, .now = f_now, .send = f_send, .write = f_write, .snapshot = f_snapshot,
                             .adopt = f_adopt, .arm = f_arm, .cancel = f_cancel, .log = f_log, .fatal = f_fatal,
                             .stopped = f_stopped };
    struct replica_sm sm = { .ctx = f, .applied = sm_applied, .committed = sm_committed, .apply = sm_apply,
                             .commit = sm_commit, .restore = sm_restore };
    struct replica *d = replica_create(&o, r, &io, &sm);
    if (!d)
        return NULL;
    struct raft_message hb = { .type = RAFT_MSG_APPEND, .from = 2, .to = 1, .term = 2, .prev_index = 1,
                               .prev_term = 1, .commit = 1 };
    replica_step(d, &hb);
    replica_pump(d);
    settle(f, d);
    return d;
}

/* The leader's answer to a read-index request of this node's previous
 * process (a straggler, or one that waited in the leader's send queue
 * while this node restarted) comes from the same leader in the same term:
 * only its context tells it from the answer to a new request. Contexts that
 * started again at 1 matched, and a linearizable read was served at the old
 * request's index, missing writes committed since (the simulator: seeds
 * 1193192, 137417 and eight more of the long run). */
TEST(read_index_answer_to_a_previous_process_serves_no_read)
{
    struct fake f;
    struct replica *d = restarted_follower(&f, 1001);
    REQUIRE(d && raft_leader(replica_raft(d)) == 2);
    replica_read(d, REPLICA_READ_LINEARIZABLE, 0, 1000, read_answered, &f);
    replica_pump(d);
    REQUIRE(f.read_reqs == 1);
    uint64_t old_ctx = f.read_ctx;
    replica_destroy(d); /* the crash: the request is still on its way */

    d = restarted_follower(&f, 2002); /* a new process: a new seed */
    REQUIRE(d && raft_leader(replica_raft(d)) == 2);
    replica_read(d, REPLICA_READ_LINEARIZABLE, 0, 1000, read_answered, &f);
    replica_pump(d);
    REQUIRE(f.read_reqs == 1);
    /* The old request's answer: index 1, from before writes up to 5 committed. */
    struct raft_message old = { .type = RAFT_MSG_READ_INDEX_RESP, .from = 2, .to = 1, .term = 2,
                                .context = old_ctx, .index = 1 };
    replica_step(d, &old);
    replica_pump(d);
    settle(&f, d);
    CHECK_EQ_I(f.answers, 0);
    /* Its own answer, once applied up to it. */
    struct raft_entry e[4];
    for (int i = 0; i < 4; i++)
        e[i] = (struct raft_entry){ .index = 2 + (raft_index)i, .term = 2, .type = RAFT_ENTRY_COMMAND };
    struct raft_message a = { .type = RAFT_MSG_APPEND, .from = 2, .to = 1, .term = 2, .prev_index = 1,
                              .prev_term = 1, .commit = 5, .entries = e, .n_entries = 4 };
    replica_step(d, &a);
    replica_pump(d);
    struct raft_message ans = { .type = RAFT_MSG_READ_INDEX_RESP, .from = 2, .to = 1, .term = 2,
                                .context = f.read_ctx, .index = 5 };
    replica_step(d, &ans);
    replica_pump(d);
    settle(&f, d);
    CHECK_EQ_U(f.applied, 5);
    CHECK_EQ_I(f.answers, 1);
    CHECK_EQ_I(f.last_status, REPLICA_OK);
    CHECK_EQ_I(f.fatals, 0);
    replica_destroy(d);
}

/* A three-voter member restored from e[0..n) with hard state term
 * hs_term, whose storage cut its tail at a start in lost_term (0: now). */
static struct replica *make_cut(struct fake *f, const struct raft_entry *e, size_t n, raft_term hs_term,
                                raft_term lost_term)
{
    memset(f, 0, sizeof *f);
    struct raft_options ro;
    raft_options_default(&ro, 1, 42);
    ro.pre_vote = false;
    ro.check_quorum = false;
    struct raft *r = raft_create(&ro);
    struct raft_hard_state hs = { .term = hs_term, .vote = 0 };
    if (!r || raft_restore(r, &hs, NULL, e, n, 0) != RAFT_OK)
        return NULL;
    struct replica_options o;
    replica_options_default(&o);
    o.snapshot_entries = 0;
    o.lost_tail = true;
    o.lost_tail_term = lost_term;
    struct replica_io io = { .ctx = f, .now = f_now, .send = f_send, .write = f_write, .snapshot = f_snapshot,
                             .adopt = f_adopt, .arm = f_arm, .cancel = f_cancel, .log = f_log, .fatal = f_fatal,
                             .stopped = f_stopped };
    struct replica_sm sm = { .ctx = f, .applied = sm_applied, .committed = sm_committed, .apply = sm_apply,
                             .commit = sm_commit, .restore = sm_restore };
    return replica_create(&o, r, &io, &sm);
}

/* Whole once the entry of a later term is on its disk, not once it is
 * known committed: with the append still being written, a crash would
 * leave the node without it, and (had the host removed its marker) free
 * to vote without what it lost. */
TEST(lost_tail_whole_only_once_the_later_term_is_on_disk)
{
    struct raft_config c = { .n = 3, .members = { { 1, RAFT_VOTER, 0 }, { 2, RAFT_VOTER, 0 }, { 3, RAFT_VOTER, 0 } } };
    uint8_t cfg[64];
    int len = raft_config_encode(&c, cfg, sizeof cfg);
    REQUIRE(len > 0);
    struct raft_entry e1 = { .index = 1, .term = 1, .type = RAFT_ENTRY_CONFIG, .data = cfg, .len = (uint32_t)len };
    struct fake f;
    struct replica *d = make_cut(&f, &e1, 1, 1, 0);
    REQUIRE(d);
    struct raft *r = replica_raft(d);
    struct raft_entry e2 = { .index = 2, .term = 2, .type = RAFT_ENTRY_COMMAND };
    struct raft_message a = { .type = RAFT_MSG_APPEND, .from = 2, .to = 1, .term = 2, .prev_index = 1,
                              .prev_term = 1, .commit = 2, .entries = &e2, .n_entries = 1 };
    replica_step(d, &a);
    replica_pump(d);
    REQUIRE(raft_commit_index(r) == 2);
    REQUIRE(f.job); /* entry 2 is being written */
    CHECK(replica_lost_tail(d));
    settle(&f, d);
    CHECK(!replica_lost_tail(d));
    CHECK_EQ_I(f.fatals, 0);
    replica_destroy(d);
}

/* The marker keeps the term of the start that cut the tail: a node that
 * became whole and crashed before its host removed the marker, or that
 * restarts in a later term still amnesiac, is whole as soon as its log
 * holds an entry of a later term than that one. Counting from the term it
 * restarts in, it waited for a leader it could not help elect: with a
 * second voter of three down, for ever (the simulator, seeds 104095 and
 * 111707: no leader 8 s after the faults stopped). */
TEST(lost_tail_counts_from_the_term_that_cut_it)
{
    struct raft_config c = { .n = 3, .members = { { 1, RAFT_VOTER, 0 }, { 2, RAFT_VOTER, 0 }, { 3, RAFT_VOTER, 0 } } };
    uint8_t cfg[64];
    int len = raft_config_encode(&c, cfg, sizeof cfg);
    REQUIRE(len > 0);
    struct raft_entry e[2] = {
        { .index = 1, .term = 1, .type = RAFT_ENTRY_CONFIG, .data = cfg, .len = (uint32_t)len },
        { .index = 2, .term = 2, .type = RAFT_ENTRY_COMMAND },
    };
    /* Cut in term 1; restarted in term 3 with an entry of term 2 on disk. */
    struct fake f;
    struct replica *d = make_cut(&f, e, 2, 3, 1);
    REQUIRE(d);
    CHECK(!replica_lost_tail(d));
    for (int i = 0; i < 100 && raft_role(replica_raft(d)) == RAFT_FOLLOWER; i++) {
        replica_tick(d);
        settle(&f, d);
    }
    CHECK(f.vote_reqs > 0);
    replica_destroy(d);
    /* Cut in term 2: the entry of term 2 may be what it had before. */
    d = make_cut(&f, e, 2, 3, 2);
    REQUIRE(d);
    CHECK(replica_lost_tail(d));
    for (int i = 0; i < 100; i++) {
        replica_tick(d);
        settle(&f, d);
    }
    CHECK_EQ_I(f.vote_reqs, 0);
    replica_destroy(d);
}

int main(void)
{
    RUN(full_log_write_refuses_writes_and_retries_the_same_batch);
    RUN(failed_commit_keeps_reads_whole_and_commits_on_retry);
    RUN(failed_fsync_is_fatal_and_nothing_more_happens);
    RUN(stop_waits_for_the_write_in_flight);
    RUN(snapshot_wanted_beyond_ours_takes_one_now);
    RUN(lost_tail_neither_campaigns_nor_votes_until_whole);
    RUN(lost_tail_holds_back_with_two_voters_the_cut_record_may_have_made_three);
    RUN(lost_tail_one_voter_leads_at_once);
    RUN(read_index_answer_to_a_previous_process_serves_no_read);
    RUN(lost_tail_whole_only_once_the_later_term_is_on_disk);
    RUN(lost_tail_counts_from_the_term_that_cut_it);
    return HARNESS_END();
}
