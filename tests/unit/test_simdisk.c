/*
 * test_simdisk.c — tests of the simulator's disk model (tests/sim/disk.c),
 * which the simulator's crash-recovery claims rest on: a synced batch is
 * durable; a crash before the sync leaves either nothing of the batch or all
 * of it, never part (a torn batch fails its record CRCs or lacks its END
 * record and is discarded whole); appends that do not follow the log and
 * snapshot chunks out of order are reported, not stored. The disk model and
 * its PRNG are compiled into this test directly (they are test code with no
 * other dependencies).
 */
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "../sim/rng.c"
#include "../sim/disk.c"

static struct raft_entry ent(raft_index index, raft_term term, const char *data)
{
    return (struct raft_entry){ .term = term, .index = index, .type = RAFT_ENTRY_COMMAND,
                                .len = (uint32_t)strlen(data), .data = (const uint8_t *)data };
}

/* A disk holding entries 1..2 (term 1) and hard state (1, 0), synced. */
static void base_disk(struct sim_disk *d)
{
    memset(d, 0, sizeof *d);
    struct raft_entry e[2] = { ent(1, 1, "a"), ent(2, 1, "bb") };
    struct raft_ready rd = { .entries = e, .n_entries = 2, .hard_state_changed = true,
                             .hard_state = { 1, 0 } };
    char err[256];
    sim_disk_write(d, &rd);
    sim_disk_sync(d, err, sizeof err);
}

TEST(sync_makes_batch_durable)
{
    struct sim_disk d;
    base_disk(&d);
    CHECK_EQ_U(d.n_log, 2);
    CHECK(d.have_hs && d.hs.term == 1);
    CHECK(d.log[1].len == 2 && memcmp(d.log[1].data, "bb", 2) == 0);
    CHECK_EQ_U(d.n_pending, 0);
    struct raft_ready empty = { 0 };
    CHECK(!sim_disk_write(&d, &empty)); /* nothing to fsync */
    sim_disk_free(&d);
}

/* Every crash outcome over many PRNG states: all of the batch or none. */
TEST(crash_keeps_all_or_nothing)
{
    int lost = 0, kept = 0, torn = 0;
    for (uint64_t seed = 1; seed <= 600; seed++) {
        struct sim_disk d;
        base_disk(&d);
        struct raft_entry e[2] = { ent(2, 2, "cc"), ent(3, 2, "ddd") };
        struct raft_ready rd = { .truncate_from = 2, .entries = e, .n_entries = 2,
                                 .hard_state_changed = true, .hard_state = { 2, 7 } };
        REQUIRE(sim_disk_write(&d, &rd));
        uint64_t rng = seed;
        uint64_t torn_before = d.torn_writes;
        sim_disk_crash(&d, &rng);
        torn += d.torn_writes > torn_before;
        if (d.n_log == 3) {
            kept++;
            CHECK(d.log[1].term == 2 && d.log[2].term == 2);
            CHECK(d.hs.term == 2 && d.hs.vote == 7);
        } else {
            lost++;
            CHECK_EQ_U(d.n_log, 2);
            CHECK(d.log[1].term == 1); /* the truncation did not happen either */
            CHECK(d.hs.term == 1 && d.hs.vote == 0);
        }
        CHECK_EQ_U(d.n_pending, 0);
        sim_disk_free(&d);
    }
    CHECK(lost > 0 && kept > 0 && torn > 0);
}

/* An async_persist host queues batches: they sync oldest first, and a crash
 * never keeps a later batch without every earlier one. */
TEST(queued_batches_sync_in_order_and_crash_as_a_prefix)
{
    struct sim_disk d;
    base_disk(&d);
    struct raft_entry e3 = ent(3, 1, "c"), e4 = ent(4, 1, "d");
    struct raft_ready r3 = { .entries = &e3, .n_entries = 1 }, r4 = { .entries = &e4, .n_entries = 1 };
    char err[256];
    REQUIRE(sim_disk_write(&d, &r3) && sim_disk_write(&d, &r4));
    CHECK_EQ_U(d.n_pending, 2);
    CHECK(sim_disk_sync(&d, err, sizeof err) == 0);
    CHECK_EQ_U(d.n_log, 3);
    CHECK_EQ_U(d.n_pending, 1);
    CHECK(sim_disk_sync(&d, err, sizeof err) == 0);
    CHECK_EQ_U(d.n_log, 4);
    sim_disk_free(&d);

    int outcomes[3] = { 0 };
    for (uint64_t seed = 1; seed <= 600; seed++) {
        base_disk(&d);
        REQUIRE(sim_disk_write(&d, &r3) && sim_disk_write(&d, &r4));
        uint64_t rng = seed;
        sim_disk_crash(&d, &rng);
        CHECK_EQ_U(d.n_pending, 0);
        CHECK(d.n_log >= 2 && d.n_log <= 4);
        outcomes[d.n_log - 2]++;
        for (size_t i = 0; i < d.n_log; i++)
            CHECK_EQ_U(d.log[i].index, i + 1); /* a prefix, never a gap */
        sim_disk_free(&d);
    }
    CHECK(outcomes[0] > 0 && outcomes[1] > 0 && outcomes[2] > 0);
}

TEST(non_contiguous_append_is_reported)
{
    struct sim_disk d;
    base_disk(&d);
    struct raft_entry e[1] = { ent(4, 1, "gap") };
    struct raft_ready rd = { .entries = e, .n_entries = 1 };
    char err[256] = "";
    REQUIRE(sim_disk_write(&d, &rd));
    CHECK(sim_disk_sync(&d, err, sizeof err) != 0);
    CHECK(strstr(err, "entry 4") != NULL);
    CHECK_EQ_U(d.n_log, 2);
    sim_disk_free(&d);
}

TEST(snapshot_chunks_then_install)
{
    struct sim_disk d;
    base_disk(&d);
    uint8_t data[10] = "0123456789";
    struct raft_snapshot_meta m = { .index = 2, .term = 1, .size = 10, .crc = crc32c(data, 10) };
    m.config.n = 1;
    m.config.members[0] = (struct raft_member){ 1, RAFT_VOTER, 0 };
    char err[256] = "";
    struct raft_ready r1 = { .snapshot_chunk = { .meta = m, .offset = 0, .len = 4, .data = data } };
    REQUIRE(sim_disk_write(&d, &r1));
    CHECK_EQ_I(sim_disk_sync(&d, err, sizeof err), 0);
    /* A chunk that skips bytes is refused. */
    struct raft_ready bad = { .snapshot_chunk = { .meta = m, .offset = 6, .len = 4, .data = data + 6 } };
    REQUIRE(sim_disk_write(&d, &bad));
    CHECK(sim_disk_sync(&d, err, sizeof err) != 0);
    struct raft_ready r2 = { .snapshot_chunk = { .meta = m, .offset = 4, .len = 6, .data = data + 4 },
                             .snapshot_install = &m };
    REQUIRE(sim_disk_write(&d, &r2));
    CHECK_EQ_I(sim_disk_sync(&d, err, sizeof err), 0);
    CHECK(d.snap.have && d.snap.meta.index == 2 && memcmp(d.snap.data, data, 10) == 0);
    CHECK_EQ_U(d.n_log, 0); /* entries <= 2 are covered by the snapshot */
    CHECK_EQ_U(d.snap.meta.config.n, 1);
    sim_disk_free(&d);
}

TEST(install_with_bad_crc_is_reported)
{
    struct sim_disk d;
    base_disk(&d);
    uint8_t data[4] = "abcd";
    struct raft_snapshot_meta m = { .index = 2, .term = 1, .size = 4, .crc = crc32c(data, 4) ^ 1 };
    m.config.n = 1;
    m.config.members[0] = (struct raft_member){ 1, RAFT_VOTER, 0 };
    struct raft_ready rd = { .snapshot_chunk = { .meta = m, .offset = 0, .len = 4, .data = data },
                             .snapshot_install = &m };
    char err[256] = "";
    REQUIRE(sim_disk_write(&d, &rd));
    CHECK(sim_disk_sync(&d, err, sizeof err) != 0);
    CHECK(strstr(err, "CRC") != NULL);
    CHECK(!d.snap.have);
    sim_disk_free(&d);
}

int main(void)
{
    RUN(sync_makes_batch_durable);
    RUN(crash_keeps_all_or_nothing);
    RUN(queued_batches_sync_in_order_and_crash_as_a_prefix);
    RUN(non_contiguous_append_is_reported);
    RUN(snapshot_chunks_then_install);
    RUN(install_with_bad_crc_is_reported);
    return HARNESS_END();
}
