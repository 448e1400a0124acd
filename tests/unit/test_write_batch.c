/*
 * test_write_batch.c — merging readies into one disk write (src/replica/
 * write_batch.h): what is written must be exactly what the readies, done one
 * after another, would have left on disk.
 */
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "replica/write_batch.h"

static struct raft_entry ent(raft_index index, raft_term term, const char *data)
{
    return (struct raft_entry){ .term = term, .index = index, .type = RAFT_ENTRY_COMMAND,
                                .len = (uint32_t)strlen(data), .data = (const uint8_t *)data };
}

/* The batch's entries as "index/term:data ..." after sealing. */
static const char *show(struct write_batch *b, char *out, size_t cap)
{
    write_batch_seal(b);
    size_t k = 0;
    out[0] = 0;
    for (size_t i = 0; i < b->n_entries && k < cap; i++)
        k += (size_t)snprintf(out + k, cap - k, "%s%llu/%llu:%.*s", i ? " " : "", (unsigned long long)b->entries[i].index,
                              (unsigned long long)b->entries[i].term, (int)b->entries[i].len,
                              (const char *)b->entries[i].data);
    return out;
}

TEST(appends_accumulate_and_own_their_bytes)
{
    struct write_batch b = { 0 };
    char d1[] = "aa", d2[] = "bbb";
    struct raft_entry e1[2] = { ent(5, 2, d1), ent(6, 2, d2) };
    struct raft_ready r1 = { .entries = e1, .n_entries = 2, .hard_state_changed = true, .hard_state = { 2, 1 } };
    REQUIRE(write_batch_add(&b, &r1) == 0);
    memset(d1, 'x', 2); /* the core's memory may go after raft_advance */
    struct raft_entry e2 = ent(7, 3, "c");
    struct raft_ready r2 = { .entries = &e2, .n_entries = 1, .hard_state_changed = true, .hard_state = { 3, 0 } };
    REQUIRE(write_batch_add(&b, &r2) == 0);
    char s[256];
    CHECK_STR(show(&b, s, sizeof s), "5/2:aa 6/2:bbb 7/3:c");
    CHECK(b.hs_changed && b.hs.term == 3 && b.hs.vote == 0); /* the newest wins */
    CHECK_EQ_U(b.truncate_from, 0);
    CHECK(write_batch_has_writes(&b));
    write_batch_free(&b);
}

TEST(truncation_inside_the_batch_drops_only_its_tail)
{
    struct write_batch b = { 0 };
    struct raft_entry e1[3] = { ent(5, 2, "a"), ent(6, 2, "b"), ent(7, 2, "c") };
    struct raft_ready r1 = { .entries = e1, .n_entries = 3 };
    REQUIRE(write_batch_add(&b, &r1) == 0);
    struct raft_entry e2[2] = { ent(6, 3, "B"), ent(7, 3, "C") };
    struct raft_ready r2 = { .truncate_from = 6, .entries = e2, .n_entries = 2 };
    REQUIRE(write_batch_add(&b, &r2) == 0);
    char s[256];
    CHECK_STR(show(&b, s, sizeof s), "5/2:a 6/3:B 7/3:C");
    CHECK_EQ_U(b.truncate_from, 0); /* the disk never saw 6 and 7 of term 2 */
    write_batch_free(&b);
}

TEST(truncation_below_the_batch_reaches_the_disk)
{
    struct write_batch b = { 0 };
    struct raft_entry e1[2] = { ent(5, 2, "a"), ent(6, 2, "b") };
    struct raft_ready r1 = { .entries = e1, .n_entries = 2 };
    REQUIRE(write_batch_add(&b, &r1) == 0);
    struct raft_entry e2 = ent(3, 4, "z");
    struct raft_ready r2 = { .truncate_from = 3, .entries = &e2, .n_entries = 1 };
    REQUIRE(write_batch_add(&b, &r2) == 0);
    char s[256];
    CHECK_STR(show(&b, s, sizeof s), "3/4:z");
    CHECK_EQ_U(b.truncate_from, 3);
    /* A later, higher cut keeps the lower one. */
    struct raft_entry e3 = ent(4, 5, "y");
    struct raft_ready r3 = { .truncate_from = 4, .entries = &e3, .n_entries = 1 };
    REQUIRE(write_batch_add(&b, &r3) == 0);
    CHECK_STR(show(&b, s, sizeof s), "3/4:z 4/5:y");
    CHECK_EQ_U(b.truncate_from, 3);
    write_batch_free(&b);
}

TEST(messages_and_compaction_wait_with_the_batch)
{
    struct write_batch b = { 0 };
    CHECK(write_batch_empty(&b));
    struct raft_message acks[2] = { { .type = RAFT_MSG_APPEND_RESP, .to = 1, .index = 9 },
                                    { .type = RAFT_MSG_VOTE_RESP, .to = 2 } };
    struct raft_ready r = { .send_after_persist = acks, .n_send_after_persist = 2, .compact_before = 40 };
    REQUIRE(write_batch_add(&b, &r) == 0);
    CHECK(!write_batch_has_writes(&b));
    CHECK(!write_batch_empty(&b));
    CHECK_EQ_U(b.n_after, 2);
    CHECK(b.after[0].type == RAFT_MSG_APPEND_RESP && b.after[0].index == 9);
    CHECK_EQ_U(b.compact_before, 40);
    struct raft_ready r2 = { .compact_before = 30 };
    REQUIRE(write_batch_add(&b, &r2) == 0);
    CHECK_EQ_U(b.compact_before, 40);
    write_batch_reset(&b);
    CHECK(write_batch_empty(&b));
    write_batch_free(&b);
}

/* Found by the simulator (seeds 3529 and 7935 of 2001..12000) once it ran
 * the node's merging: a follower appends 94..95 from the leader of term 24
 * and acknowledges 95; in the same batch the leader of term 30 truncates
 * from 93. Once the batch is durable the disk ends at 93: the ack for 95
 * must not leave (the old leader could count it toward a commit). */
TEST(truncation_drops_acks_for_entries_it_removes)
{
    struct write_batch b = { 0 };
    struct raft_entry e1[2] = { ent(94, 24, "a"), ent(95, 24, "b") };
    struct raft_message ack95[2] = { { .type = RAFT_MSG_APPEND_RESP, .to = 4, .term = 24, .index = 95 },
                                     { .type = RAFT_MSG_APPEND_RESP, .to = 4, .term = 24, .index = 92 } };
    struct raft_ready r1 = { .entries = e1, .n_entries = 2, .send_after_persist = ack95, .n_send_after_persist = 2 };
    REQUIRE(write_batch_add(&b, &r1) == 0);
    struct raft_entry e2 = ent(93, 30, "c");
    struct raft_message ack93 = { .type = RAFT_MSG_APPEND_RESP, .to = 1, .term = 30, .index = 93 };
    struct raft_ready r2 = { .truncate_from = 93, .entries = &e2, .n_entries = 1, .send_after_persist = &ack93,
                             .n_send_after_persist = 1 };
    REQUIRE(write_batch_add(&b, &r2) == 0);
    char out[256];
    CHECK_STR(show(&b, out, sizeof out), "93/30:c");
    CHECK_EQ_U(b.truncate_from, 93);
    /* The ack of 92 (still on disk) and of 93/30 leave; the ack of 95 not. */
    CHECK_EQ_U(b.n_after, 2);
    for (size_t i = 0; i < b.n_after; i++)
        CHECK(b.after[i].index <= 93);
    write_batch_free(&b);
}

int main(void)
{
    RUN(truncation_drops_acks_for_entries_it_removes);
    RUN(appends_accumulate_and_own_their_bytes);
    RUN(truncation_inside_the_batch_drops_only_its_tail);
    RUN(truncation_below_the_batch_reaches_the_disk);
    RUN(messages_and_compaction_wait_with_the_batch);
    return HARNESS_END();
}
