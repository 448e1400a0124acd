/*
 * test_config.c — raft_config_encode / raft_config_decode (src/raft/config.c),
 * the data of every CONFIG log entry, which followers decode from what the
 * leader sends: round trips from 0 to RAFT_MAX_MEMBERS members, every
 * truncation and trailing byte, counts past the limit, and each invalid
 * member. Decodes read heap buffers of exactly the input's size (ASan).
 */
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "raft.h"

#define MAX_BYTES (4 + 10 * RAFT_MAX_MEMBERS)

static struct raft_config config_of(uint32_t n)
{
    struct raft_config c = { .n = n };
    for (uint32_t i = 0; i < n; i++)
        c.members[i] = (struct raft_member){ i == 0 ? UINT64_MAX : (uint64_t)i * 0x0101010101ull,
                                             i % 2 ? RAFT_LEARNER : RAFT_VOTER, (uint8_t)(i % 4 == 1) };
    return c;
}

static int decode_copy(struct raft_config *c, const uint8_t *buf, size_t len)
{
    uint8_t *p = malloc(len ? len : 1);
    if (len)
        memcpy(p, buf, len);
    int rc = raft_config_decode(c, p, len);
    free(p);
    return rc;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

TEST(round_trip_every_size)
{
    for (uint32_t n = 0; n <= RAFT_MAX_MEMBERS; n++) {
        struct raft_config c = config_of(n), d;
        uint8_t buf[MAX_BYTES];
        int len = raft_config_encode(&c, buf, sizeof buf);
        CHECK_EQ_I(len, 4 + 10 * (int)n);
        REQUIRE(decode_copy(&d, buf, (size_t)len) == RAFT_OK);
        CHECK_EQ_U(d.n, n);
        for (uint32_t i = 0; i < n; i++) {
            CHECK_EQ_U(d.members[i].id, c.members[i].id);
            CHECK_EQ_U(d.members[i].role, c.members[i].role);
            CHECK_EQ_U(d.members[i].promote, c.members[i].promote);
        }
        CHECK_EQ_U(raft_config_voters(&d), (n + 1) / 2);
        if (n > 0)
            CHECK(raft_config_find(&d, UINT64_MAX) == &d.members[0]);
        CHECK(raft_config_find(&d, 12345) == NULL);
    }
}

TEST(wire_layout)
{
    struct raft_config c = { .n = 1, .members = { { 0x0102030405060708ull, RAFT_LEARNER, 1 } } };
    uint8_t buf[14];
    REQUIRE(raft_config_encode(&c, buf, sizeof buf) == 14);
    const uint8_t want[14] = { 1, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1, RAFT_LEARNER, 1 };
    CHECK(memcmp(buf, want, sizeof want) == 0);
}

TEST(every_truncation_and_trailing_byte)
{
    struct raft_config c = config_of(5), d;
    uint8_t buf[MAX_BYTES + 1];
    int len = raft_config_encode(&c, buf, sizeof buf);
    REQUIRE(len == 54);
    for (int k = 0; k < len; k++) {
        CHECK_EQ_I(decode_copy(&d, buf, (size_t)k), RAFT_EMALFORMED);
        CHECK_EQ_U(d.n, 0); /* nothing half-decoded is left behind */
    }
    buf[len] = 0;
    CHECK_EQ_I(decode_copy(&d, buf, (size_t)len + 1), RAFT_EMALFORMED);
}

TEST(counts_past_the_limit)
{
    struct raft_config c = config_of(RAFT_MAX_MEMBERS), d;
    uint8_t buf[MAX_BYTES + 10];
    int len = raft_config_encode(&c, buf, sizeof buf);
    REQUIRE(len == MAX_BYTES);
    /* Seventeen members' worth of bytes, count 17: still too many. */
    memcpy(buf + len, buf + len - 10, 10);
    buf[len] ^= 0x55; /* distinct id */
    put32(buf, RAFT_MAX_MEMBERS + 1);
    CHECK_EQ_I(decode_copy(&d, buf, (size_t)len + 10), RAFT_EMALFORMED);
    put32(buf, UINT32_MAX); /* 4 + 10 * n must not wrap into a match */
    CHECK_EQ_I(decode_copy(&d, buf, 4), RAFT_EMALFORMED);
    CHECK_EQ_I(decode_copy(&d, buf, (size_t)len), RAFT_EMALFORMED);
    c.n = RAFT_MAX_MEMBERS + 1;
    CHECK_EQ_I(raft_config_encode(&c, buf, sizeof buf), RAFT_EINVAL);
}

TEST(invalid_members)
{
    struct raft_config c = config_of(3), d;
    uint8_t good[34];
    REQUIRE(raft_config_encode(&c, good, sizeof good) == 34);
    REQUIRE(decode_copy(&d, good, sizeof good) == RAFT_OK);
    const size_t third = 4 + 20;
    struct { size_t at; uint8_t v; const char *what; } bad[] = {
        { third + 8, 0, "role 0" }, { third + 8, 3, "role 3" }, { third + 8, 255, "role 255" },
        { third + 9, 2, "promote 2" }, { third + 9, 255, "promote 255" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t p[34];
        memcpy(p, good, sizeof p);
        p[bad[i].at] = bad[i].v;
        if (decode_copy(&d, p, sizeof p) != RAFT_EMALFORMED) {
            fprintf(stderr, "  accepted %s\n", bad[i].what);
            CHECK(0);
        }
        CHECK_EQ_U(d.n, 0);
    }
    uint8_t p[34];
    memcpy(p, good, sizeof p);
    memset(p + third, 0, 8); /* id 0 */
    CHECK_EQ_I(decode_copy(&d, p, sizeof p), RAFT_EMALFORMED);
    memcpy(p + third, p + 4, 8); /* same id as the first, not adjacent */
    CHECK_EQ_I(decode_copy(&d, p, sizeof p), RAFT_EMALFORMED);
}

TEST(encode_checks_cap)
{
    struct raft_config c = config_of(4);
    for (size_t cap = 0; cap < 44; cap++) {
        uint8_t *buf = malloc(cap ? cap : 1);
        CHECK_EQ_I(raft_config_encode(&c, buf, cap), RAFT_EINVAL);
        free(buf);
    }
}

int main(void)
{
    RUN(round_trip_every_size);
    RUN(wire_layout);
    RUN(every_truncation_and_trailing_byte);
    RUN(counts_past_the_limit);
    RUN(invalid_members);
    RUN(encode_checks_cap);
    return HARNESS_END();
}
