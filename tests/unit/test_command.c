/*
 * test_command.c — command_encode / command_decode (src/store/command.c),
 * the data of every COMMAND entry the state machine applies: round trips of
 * each type with empty and longest strings, the exact byte layout, every
 * truncation, trailing bytes, strings one past COMMAND_MAX_STR, unknown
 * versions and types, and an encoder that never writes past its buffer.
 * Decodes read heap buffers of exactly the input's size (ASan).
 */
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "command.h"

static char long_str[COMMAND_MAX_STR + 1];

static struct command_str S(const char *s) { return (struct command_str){ s, (uint16_t)strlen(s) }; }

static int same_str(struct command_str a, struct command_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* Encodes into a malloc'd buffer of exactly command_size bytes. */
static uint8_t *encode(const struct command *c, size_t *len)
{
    size_t n = command_size(c);
    uint8_t *buf = malloc(n);
    long got = buf ? command_encode(c, buf, n) : -1;
    if (got < 0 || (size_t)got != n) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

static int decode_copy(struct command *c, const uint8_t *buf, size_t len, uint8_t **keep)
{
    uint8_t *p = malloc(len ? len : 1);
    if (len)
        memcpy(p, buf, len);
    int rc = command_decode(c, p, len);
    *keep = p; /* c's strings point into it */
    return rc;
}

TEST(round_trip)
{
    struct command cases[] = {
        { .type = CMD_KV_PUT, .time_ms = 1764547200123ull, .scope = S("user:alice"),
          .idem_key = S("k-1"), .key = S("links/1"), .value = S("{\"t\":1}") },
        { .type = CMD_KV_DELETE, .time_ms = UINT64_MAX, .scope = S(""), .idem_key = S("x"),
          .key = S("links/1") },
        { .type = CMD_KV_PUT },
        { .type = CMD_KV_PUT, .scope = { long_str, COMMAND_MAX_STR },
          .idem_key = { long_str, COMMAND_MAX_STR }, .key = { long_str, COMMAND_MAX_STR },
          .value = { long_str, COMMAND_MAX_STR } },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = 0;
        uint8_t *buf = encode(&cases[i], &len);
        REQUIRE(buf != NULL);
        struct command d;
        uint8_t *keep;
        REQUIRE(decode_copy(&d, buf, len, &keep) == 0);
        CHECK_EQ_U(d.type, cases[i].type);
        CHECK_EQ_U(d.time_ms, cases[i].time_ms);
        CHECK(same_str(d.scope, cases[i].scope) && same_str(d.idem_key, cases[i].idem_key));
        CHECK(same_str(d.key, cases[i].key) && same_str(d.value, cases[i].value));
        free(keep);
        free(buf);
    }
}

TEST(wire_layout)
{
    struct command c = { .type = CMD_KV_DELETE, .time_ms = 0x0102030405060708ull,
                         .scope = S("s"), .idem_key = S(""), .key = S("ab") };
    uint8_t buf[32];
    long n = command_encode(&c, buf, sizeof buf);
    const uint8_t want[] = { COMMAND_VERSION, CMD_KV_DELETE, 8, 7, 6, 5, 4, 3, 2, 1,
                             1, 0, 's', 0, 0, 2, 0, 'a', 'b' };
    REQUIRE(n == (long)sizeof want);
    CHECK(memcmp(buf, want, sizeof want) == 0);
    CHECK_EQ_U(command_size(&c), sizeof want);
}

TEST(every_truncation_and_trailing_bytes)
{
    struct command c = { .type = CMD_KV_PUT, .time_ms = 9, .scope = S("scope"),
                         .idem_key = S("idem"), .key = S("key"), .value = S("value") };
    size_t len = 0;
    uint8_t *buf = encode(&c, &len);
    REQUIRE(buf != NULL);
    for (size_t k = 0; k < len; k++) {
        struct command d;
        uint8_t *keep;
        CHECK_EQ_I(decode_copy(&d, buf, k, &keep), -1);
        free(keep);
    }
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 'x';
    struct command d;
    uint8_t *keep;
    CHECK_EQ_I(decode_copy(&d, longer, len + 1, &keep), -1);
    free(keep);
    free(longer);

    /* A DELETE carries no value: a PUT's bytes relabelled DELETE have one
     * string too many. */
    buf[1] = CMD_KV_DELETE;
    CHECK_EQ_I(decode_copy(&d, buf, len, &keep), -1);
    free(keep);
    free(buf);
}

TEST(strings_past_the_limit)
{
    struct command c = { .type = CMD_KV_PUT, .key = { long_str, COMMAND_MAX_STR + 1 } };
    uint8_t *big = malloc(command_size(&c));
    CHECK_EQ_I(command_encode(&c, big, command_size(&c)), -1);
    c.key.len = UINT16_MAX;
    CHECK_EQ_I(command_encode(&c, big, command_size(&c)), -1);
    free(big);

    /* Written by hand: a 4097-byte key, fully present. */
    size_t len = 1 + 1 + 8 + 2 + 2 + 2 + (COMMAND_MAX_STR + 1) + 2;
    uint8_t *p = calloc(1, len);
    p[0] = COMMAND_VERSION;
    p[1] = CMD_KV_PUT;
    p[14] = (uint8_t)((COMMAND_MAX_STR + 1) & 0xff);
    p[15] = (uint8_t)((COMMAND_MAX_STR + 1) >> 8);
    memset(p + 16, 'k', COMMAND_MAX_STR + 1);
    struct command d;
    uint8_t *keep;
    CHECK_EQ_I(decode_copy(&d, p, len, &keep), -1);
    free(keep);
    /* A length of 65535 with few bytes behind it. */
    p[14] = p[15] = 0xff;
    CHECK_EQ_I(decode_copy(&d, p, 40, &keep), -1);
    free(keep);
    free(p);
}

TEST(unknown_versions_and_types)
{
    struct command c = { .type = CMD_KV_DELETE, .key = S("k") };
    size_t len = 0;
    uint8_t *buf = encode(&c, &len);
    REQUIRE(buf != NULL);
    const uint8_t versions[] = { 0, 2, 255 };
    for (size_t i = 0; i < sizeof versions; i++) {
        uint8_t *p = malloc(len);
        memcpy(p, buf, len);
        p[0] = versions[i];
        struct command d;
        uint8_t *keep;
        CHECK_EQ_I(decode_copy(&d, p, len, &keep), -1);
        free(keep);
        free(p);
    }
    const uint8_t types[] = { 0, 199, 255 }; /* never assigned to a command */
    for (size_t i = 0; i < sizeof types; i++) {
        uint8_t *p = malloc(len);
        memcpy(p, buf, len);
        p[1] = types[i];
        struct command d;
        uint8_t *keep;
        CHECK_EQ_I(decode_copy(&d, p, len, &keep), -1);
        free(keep);
        free(p);
        struct command e = c;
        e.type = types[i];
        uint8_t out[64];
        CHECK_EQ_I(command_encode(&e, out, sizeof out), -1);
    }
    free(buf);
}

TEST(encoder_never_writes_past_cap)
{
    struct command c = { .type = CMD_KV_PUT, .time_ms = 1, .scope = S("a"), .idem_key = S("bc"),
                         .key = S("def"), .value = S("ghij") };
    size_t need = command_size(&c);
    for (size_t cap = 0; cap < need; cap++) {
        uint8_t *buf = malloc(cap ? cap : 1);
        CHECK_EQ_I(command_encode(&c, buf, cap), -1);
        free(buf);
    }
}

int main(void)
{
    memset(long_str, 'q', sizeof long_str);
    RUN(round_trip);
    RUN(wire_layout);
    RUN(every_truncation_and_trailing_bytes);
    RUN(strings_past_the_limit);
    RUN(unknown_versions_and_types);
    RUN(encoder_never_writes_past_cap);
    return HARNESS_END();
}
