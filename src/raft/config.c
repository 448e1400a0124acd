/*
 * config.c — cluster configurations: encoding (the data of a CONFIG entry and
 * of snapshot metadata) and lookups. Format: u32 n, then n × (u64 id, u8 role,
 * u8 promote), little endian.
 */
#include "raft.h"

#include <string.h>

static void put_u32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put_u64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint32_t get_u32(const uint8_t *p) { uint32_t v = 0; for (int i = 3; i >= 0; i--) v = v << 8 | p[i]; return v; }
static uint64_t get_u64(const uint8_t *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = v << 8 | p[i]; return v; }

int raft_config_encode(const struct raft_config *c, uint8_t *buf, size_t cap)
{
    if (c->n > RAFT_MAX_MEMBERS || cap < 4 + 10 * (size_t)c->n)
        return RAFT_EINVAL;
    put_u32(buf, c->n);
    for (uint32_t i = 0; i < c->n; i++) {
        uint8_t *p = buf + 4 + 10 * i;
        put_u64(p, c->members[i].id);
        p[8] = c->members[i].role;
        p[9] = c->members[i].promote;
    }
    return (int)(4 + 10 * c->n);
}

int raft_config_decode(struct raft_config *c, const uint8_t *buf, size_t len)
{
    memset(c, 0, sizeof *c);
    if (len < 4)
        return RAFT_EMALFORMED;
    uint32_t n = get_u32(buf);
    if (n > RAFT_MAX_MEMBERS || len != 4 + 10 * (size_t)n)
        return RAFT_EMALFORMED;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *p = buf + 4 + 10 * i;
        struct raft_member m = { .id = get_u64(p), .role = p[8], .promote = p[9] };
        if (m.id == 0 || (m.role != RAFT_VOTER && m.role != RAFT_LEARNER) || m.promote > 1)
            return RAFT_EMALFORMED;
        for (uint32_t j = 0; j < i; j++)
            if (c->members[j].id == m.id)
                return RAFT_EMALFORMED;
        c->members[i] = m;
    }
    c->n = n;
    return RAFT_OK;
}

const struct raft_member *raft_config_find(const struct raft_config *c, raft_id id)
{
    for (uint32_t i = 0; i < c->n; i++)
        if (c->members[i].id == id)
            return &c->members[i];
    return NULL;
}

size_t raft_config_voters(const struct raft_config *c)
{
    size_t n = 0;
    for (uint32_t i = 0; i < c->n; i++)
        n += c->members[i].role == RAFT_VOTER;
    return n;
}
