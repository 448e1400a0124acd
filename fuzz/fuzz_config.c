/*
 * fuzz_config.c — libFuzzer driver for raft_config_decode (src/raft/config.c),
 * which reads the data of every CONFIG log entry, including entries that
 * arrive from the leader in APPEND messages. Properties of an accepted
 * configuration: at most RAFT_MAX_MEMBERS, ids nonzero and distinct, known
 * roles, promote 0 or 1; raft_config_find and raft_config_voters agree with
 * the members; re-encoding gives the same bytes.
 */
#include "fuzz.h"

#include "raft.h"

#include <string.h>

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    struct raft_config c;
    if (raft_config_decode(&c, data, size) != RAFT_OK) {
        FUZZ_CHECK(c.n == 0);
        return 0;
    }
    FUZZ_CHECK(c.n <= RAFT_MAX_MEMBERS);
    size_t voters = 0;
    for (uint32_t i = 0; i < c.n; i++) {
        const struct raft_member *m = &c.members[i];
        FUZZ_CHECK(m->id != 0);
        FUZZ_CHECK(m->role == RAFT_VOTER || m->role == RAFT_LEARNER);
        FUZZ_CHECK(m->promote <= 1);
        FUZZ_CHECK(raft_config_find(&c, m->id) == m); /* so ids are distinct */
        voters += m->role == RAFT_VOTER;
    }
    FUZZ_CHECK(raft_config_voters(&c) == voters);

    uint8_t again[4 + 10 * RAFT_MAX_MEMBERS];
    int n = raft_config_encode(&c, again, sizeof again);
    FUZZ_CHECK(n >= 0 && (size_t)n == size && memcmp(again, data, size) == 0);
    FUZZ_CHECK(raft_config_encode(&c, again, (size_t)n - 1) == RAFT_EINVAL);
    return 0;
}
