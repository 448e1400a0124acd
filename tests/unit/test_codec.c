/*
 * test_codec.c — the Raft message codec (include/raft_codec.h, layout in
 * docs/wire-format.md): every message type round-trips with every field set;
 * APPEND with no entries, with the most entries a frame may carry and with a
 * large entry; SNAPSHOT with a full member list and chunk data; frame_size on
 * every prefix; every truncation, every single-bit flip (before and after
 * re-sealing the checksum) and each hostile value rejected with its
 * documented code. Every decode reads from a heap buffer of exactly the
 * frame's size, so under ASan any read past the end fails the suite.
 */
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "common/crc32c.h"
#include "raft_codec.h"

#define HDR RAFT_CODEC_HEADER_BYTES
/* Offsets in a frame: the body starts with version, type, from, to. */
#define OFF_VERSION (HDR + 0)
#define OFF_TYPE (HDR + 1)
#define OFF_FIELDS (HDR + 2 + 8 + 8)

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Encodes m into a malloc'd buffer of exactly the frame's size. */
static uint8_t *encode(const struct raft_message *m, size_t *len)
{
    size_t n = raft_codec_size(m);
    uint8_t *buf = malloc(n);
    if (!buf)
        return NULL;
    int rc = raft_codec_encode(m, buf, n);
    if (rc < 0 || (size_t)rc != n) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* A heap copy of exactly len bytes of src (len may be 0). */
static uint8_t *copy(const uint8_t *src, size_t len)
{
    uint8_t *p = malloc(len ? len : 1);
    if (p && len)
        memcpy(p, src, len);
    return p;
}

/* Rewrites the header of a frame whose body was changed on purpose: body
 * length from len, CRC32C over the body. What a hostile peer would send. */
static void reseal(uint8_t *frame, size_t len)
{
    put32(frame + 4, (uint32_t)(len - HDR));
    put32(frame + 8, crc32c(frame + HDR, len - HDR));
}

/* Decodes a heap copy of exactly len bytes; releases on success. */
static int decode_copy(const uint8_t *frame, size_t len)
{
    uint8_t *p = copy(frame, len);
    struct raft_message m;
    int rc = raft_codec_decode(p, len, &m);
    if (rc == RAFT_OK)
        raft_codec_release(&m);
    else if (m.entries != NULL || m.n_entries != 0)
        rc = 1; /* an error must leave nothing to release */
    free(p);
    return rc;
}

static int same_entries(const struct raft_message *a, const struct raft_message *b)
{
    if (a->n_entries != b->n_entries)
        return 0;
    for (uint32_t i = 0; i < a->n_entries; i++) {
        const struct raft_entry *x = &a->entries[i], *y = &b->entries[i];
        if (x->term != y->term || x->index != y->index || x->type != y->type ||
            x->len != y->len || (x->len && memcmp(x->data, y->data, x->len) != 0))
            return 0;
    }
    return 1;
}

/* Field by field; reports the first difference. */
static int same_message(const struct raft_message *a, const struct raft_message *b)
{
#define SAME(f) if (a->f != b->f) { fprintf(stderr, "  differs: %s\n", #f); return 0; }
    SAME(type) SAME(from) SAME(to) SAME(term) SAME(prev_index) SAME(prev_term) SAME(commit)
    SAME(index) SAME(last_index) SAME(last_term) SAME(hint_index) SAME(hint_term)
    SAME(context) SAME(offset) SAME(reject) SAME(transfer) SAME(done) SAME(len)
    SAME(snapshot.index) SAME(snapshot.term) SAME(snapshot.size) SAME(snapshot.crc)
    SAME(snapshot.config.n)
    for (uint32_t i = 0; i < a->snapshot.config.n; i++) {
        SAME(snapshot.config.members[i].id) SAME(snapshot.config.members[i].role)
        SAME(snapshot.config.members[i].promote)
    }
#undef SAME
    if (a->len && memcmp(a->data, b->data, a->len) != 0) {
        fprintf(stderr, "  differs: chunk data\n");
        return 0;
    }
    if (!same_entries(a, b)) {
        fprintf(stderr, "  differs: entries\n");
        return 0;
    }
    return 1;
}

/* Entries and chunk data shared by the messages below. */
static uint8_t big_data[1 << 20];
static struct raft_entry sample_entries[4];
static uint8_t chunk[64 * 1024];

static void init_samples(void)
{
    for (size_t i = 0; i < sizeof big_data; i++)
        big_data[i] = (uint8_t)(i * 131 + 7);
    for (size_t i = 0; i < sizeof chunk; i++)
        chunk[i] = (uint8_t)(i ^ (i >> 8));
    sample_entries[0] = (struct raft_entry){ 7, 101, RAFT_ENTRY_COMMAND, 5, (const uint8_t *)"hello" };
    sample_entries[1] = (struct raft_entry){ 7, 102, RAFT_ENTRY_NOOP, 0, NULL };
    sample_entries[2] = (struct raft_entry){ 8, 103, RAFT_ENTRY_CONFIG, 14,
                                             (const uint8_t *)"\1\0\0\0\1\0\0\0\0\0\0\0\1\0" };
    sample_entries[3] = (struct raft_entry){ RAFT_CODEC_MAX_TERM, UINT64_MAX, RAFT_ENTRY_COMMAND,
                                             sizeof big_data, big_data };
}

/* A message of type with every field its layout carries set to a distinct
 * value from seed (0 gives all zeros, UINT64_MAX the maxima); fields the
 * type does not carry stay 0, as the decoder leaves them. */
static struct raft_message full_message(uint8_t type, uint64_t seed)
{
    struct raft_message m = { .type = type };
    uint64_t v = seed;
#define NEXT (seed == 0 || seed == UINT64_MAX ? seed : (v = v * 6364136223846793005ull + 1442695040888963407ull))
#define TERM (NEXT & RAFT_CODEC_MAX_TERM) /* the largest term a frame may carry */
    uint8_t flag = seed == 0 ? 0 : 1;
    m.from = NEXT;
    m.to = NEXT;
    m.term = TERM;
    switch (type) {
    case RAFT_MSG_APPEND:
        m.prev_index = NEXT; m.prev_term = TERM; m.commit = NEXT;
        if (seed != 0) {
            m.entries = sample_entries;
            m.n_entries = seed == UINT64_MAX ? 4 : 3;
        }
        break;
    case RAFT_MSG_APPEND_RESP:
        m.reject = flag; m.index = NEXT; m.hint_index = NEXT; m.hint_term = TERM;
        break;
    case RAFT_MSG_VOTE:
    case RAFT_MSG_PREVOTE:
        m.last_index = NEXT; m.last_term = TERM; m.transfer = flag;
        break;
    case RAFT_MSG_VOTE_RESP:
    case RAFT_MSG_PREVOTE_RESP:
        m.reject = flag;
        break;
    case RAFT_MSG_HEARTBEAT:
        m.commit = NEXT; m.context = NEXT;
        break;
    case RAFT_MSG_HEARTBEAT_RESP:
    case RAFT_MSG_READ_INDEX:
        m.context = NEXT;
        break;
    case RAFT_MSG_SNAPSHOT:
        m.snapshot.index = NEXT; m.snapshot.term = TERM; m.snapshot.size = NEXT;
        m.snapshot.crc = (uint32_t)NEXT;
        if (seed != 0) {
            m.snapshot.config.n = RAFT_MAX_MEMBERS;
            for (uint32_t i = 0; i < RAFT_MAX_MEMBERS; i++)
                m.snapshot.config.members[i] = (struct raft_member){
                    seed == UINT64_MAX ? UINT64_MAX - i : i + 1, i % 3 ? RAFT_VOTER : RAFT_LEARNER,
                    (uint8_t)(i % 3 == 0 && i % 2 == 0) };
            m.data = chunk;
            m.len = sizeof chunk;
        }
        m.offset = NEXT; m.done = flag;
        break;
    case RAFT_MSG_SNAPSHOT_RESP:
        m.index = NEXT; m.offset = NEXT; m.reject = flag; m.done = flag;
        break;
    case RAFT_MSG_READ_INDEX_RESP:
        m.context = NEXT; m.index = NEXT; m.reject = flag;
        break;
    case RAFT_MSG_SNAPSHOT_WANTED:
        m.index = NEXT;
        break;
    default:
        break;
    }
#undef NEXT
    return m;
}

TEST(round_trip_every_type_and_value)
{
    const uint64_t seeds[] = { 0, 1, 0x0123456789abcdefull, UINT64_MAX };
    for (uint8_t type = RAFT_MSG_APPEND; type <= RAFT_MSG_TYPE_MAX; type++) {
        for (size_t s = 0; s < sizeof seeds / sizeof seeds[0]; s++) {
            struct raft_message m = full_message(type, seeds[s]);
            size_t len = 0;
            uint8_t *frame = encode(&m, &len);
            REQUIRE(frame != NULL);
            CHECK_EQ_I(raft_codec_frame_size(frame, len), (long)len);
            struct raft_message d;
            REQUIRE(raft_codec_decode(frame, len, &d) == RAFT_OK);
            if (!same_message(&m, &d)) {
                fprintf(stderr, "  type %s seed %zu\n", raft_msg_type_name(type), s);
                CHECK(0);
            }
            /* Decoded data is borrowed from the frame, not copied. */
            for (uint32_t i = 0; i < d.n_entries; i++)
                if (d.entries[i].len)
                    CHECK(d.entries[i].data > frame && d.entries[i].data < frame + len);
            if (d.len)
                CHECK(d.data > frame && d.data < frame + len);
            raft_codec_release(&d);
            CHECK(d.entries == NULL && d.n_entries == 0);
            free(frame);
        }
    }
}

TEST(sizes_are_what_the_layout_says)
{
    /* Body: version, type, from, to = 18 bytes; then the type's fields. */
    struct raft_message m = { .type = RAFT_MSG_TIMEOUT_NOW };
    CHECK_EQ_U(raft_codec_size(&m), HDR + 18 + 8);
    m.type = RAFT_MSG_VOTE_RESP;
    CHECK_EQ_U(raft_codec_size(&m), HDR + 18 + 8 + 1);
    m.type = RAFT_MSG_APPEND;
    CHECK_EQ_U(raft_codec_size(&m), HDR + 18 + 4 * 8 + 4);
    m.entries = sample_entries;
    m.n_entries = 1; /* term, index, type, len, 5 bytes */
    CHECK_EQ_U(raft_codec_size(&m), HDR + 18 + 4 * 8 + 4 + 8 + 8 + 1 + 4 + 5);
    struct raft_message s = full_message(RAFT_MSG_SNAPSHOT, 1);
    CHECK_EQ_U(raft_codec_size(&s), HDR + 18 + 8 + (8 + 8 + 4 + 10 * 16 + 8 + 4) + 8 +
                                        (4 + sizeof chunk) + 1);
    m.type = 0;
    CHECK_EQ_U(raft_codec_size(&m), 0);
    m.type = RAFT_MSG_TYPE_MAX + 1;
    CHECK_EQ_U(raft_codec_size(&m), 0);
}

/* The body sizes of docs/wire-format.md's table, for messages with no
 * entries, no members and no chunk. */
TEST(body_sizes_match_the_document)
{
    static const size_t body[RAFT_MSG_TYPE_MAX + 1] = {
        [RAFT_MSG_APPEND] = 54, [RAFT_MSG_APPEND_RESP] = 51, [RAFT_MSG_VOTE] = 43,
        [RAFT_MSG_VOTE_RESP] = 27, [RAFT_MSG_PREVOTE] = 43, [RAFT_MSG_PREVOTE_RESP] = 27,
        [RAFT_MSG_HEARTBEAT] = 42, [RAFT_MSG_HEARTBEAT_RESP] = 34, [RAFT_MSG_SNAPSHOT] = 71,
        [RAFT_MSG_SNAPSHOT_RESP] = 44, [RAFT_MSG_TIMEOUT_NOW] = 26, [RAFT_MSG_READ_INDEX] = 34,
        [RAFT_MSG_READ_INDEX_RESP] = 43, [RAFT_MSG_SNAPSHOT_WANTED] = 34,
    };
    for (uint8_t type = RAFT_MSG_APPEND; type <= RAFT_MSG_TYPE_MAX; type++) {
        struct raft_message m = { .type = type };
        CHECK_EQ_U(raft_codec_size(&m), HDR + body[type]);
    }
}

/* The worked example in docs/wire-format.md, byte for byte, and the
 * checksum's standard check value. */
TEST(documented_example_frame)
{
    static const uint8_t want[] = {
        0x4c, 0x52, 0x46, 0x31, 0x2b, 0x00, 0x00, 0x00, 0xbb, 0x77, 0xfa, 0xfc,
        0x01, 0x03,
        0x01, 0, 0, 0, 0, 0, 0, 0,
        0x02, 0, 0, 0, 0, 0, 0, 0,
        0x05, 0, 0, 0, 0, 0, 0, 0,
        0x09, 0, 0, 0, 0, 0, 0, 0,
        0x04, 0, 0, 0, 0, 0, 0, 0,
        0x00,
    };
    struct raft_message m = { .type = RAFT_MSG_VOTE, .from = 1, .to = 2, .term = 5,
                              .last_index = 9, .last_term = 4 };
    uint8_t buf[sizeof want];
    CHECK_EQ_I(raft_codec_encode(&m, buf, sizeof buf), (long)sizeof want);
    CHECK(memcmp(buf, want, sizeof want) == 0);
    CHECK_EQ_U(crc32c("123456789", 9), 0xE3069283u);
}

/* crc32c uses the CPU's instruction where there is one: it must agree with
 * the table at every length and alignment, pieced together or not, and with
 * the published vectors (RFC 3720 B.4). */
TEST(crc32c_instruction_and_table_agree)
{
    static uint8_t buf[4096 + 16];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof buf; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (uint8_t)(x >> 16);
    }
    for (size_t off = 0; off < 8; off++)
        for (size_t len = 0; len <= 4096; len += len < 80 ? 1 : 61) {
            uint32_t want = crc32c_extend_table(0, buf + off, len);
            CHECK_EQ_U(crc32c(buf + off, len), want);
            size_t cut = len / 3;
            CHECK_EQ_U(crc32c_extend(crc32c_extend(0, buf + off, cut), buf + off + cut, len - cut), want);
        }
    uint8_t v[32];
    memset(v, 0, sizeof v);
    CHECK_EQ_U(crc32c(v, sizeof v), 0x8A9136AAu);
    CHECK_EQ_U(crc32c_extend_table(0, v, sizeof v), 0x8A9136AAu);
    memset(v, 0xff, sizeof v);
    CHECK_EQ_U(crc32c(v, sizeof v), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        v[i] = (uint8_t)i;
    CHECK_EQ_U(crc32c(v, sizeof v), 0x46DD794Eu);
}

TEST(append_with_the_most_entries)
{
    static struct raft_entry many[RAFT_CODEC_MAX_ENTRIES + 1];
    for (uint32_t i = 0; i <= RAFT_CODEC_MAX_ENTRIES; i++)
        many[i] = (struct raft_entry){ 3, 1000 + i, RAFT_ENTRY_COMMAND, 1, &big_data[i % 256] };
    struct raft_message m = { .type = RAFT_MSG_APPEND, .from = 1, .to = 2, .term = 3,
                              .n_entries = RAFT_CODEC_MAX_ENTRIES, .entries = many };
    size_t len = 0;
    uint8_t *frame = encode(&m, &len);
    REQUIRE(frame != NULL);
    struct raft_message d;
    REQUIRE(raft_codec_decode(frame, len, &d) == RAFT_OK);
    CHECK(same_message(&m, &d));
    raft_codec_release(&d);

    /* One more entry is refused by the encoder, and by the decoder when a
     * peer sends it anyway (count patched, entry bytes appended). */
    m.n_entries = RAFT_CODEC_MAX_ENTRIES + 1;
    uint8_t small[64];
    CHECK_EQ_I(raft_codec_encode(&m, small, sizeof small), RAFT_EINVAL);
    size_t entry_bytes = 8 + 8 + 1 + 4 + 1;
    uint8_t *more = malloc(len + entry_bytes);
    REQUIRE(more != NULL);
    memcpy(more, frame, len);
    memcpy(more + len, frame + len - entry_bytes, entry_bytes);
    put32(more + OFF_FIELDS + 4 * 8, RAFT_CODEC_MAX_ENTRIES + 1);
    reseal(more, len + entry_bytes);
    CHECK_EQ_I(decode_copy(more, len + entry_bytes), RAFT_EMALFORMED);
    /* Without the count: one entry's worth of trailing bytes. */
    put32(more + OFF_FIELDS + 4 * 8, RAFT_CODEC_MAX_ENTRIES);
    reseal(more, len + entry_bytes);
    CHECK_EQ_I(decode_copy(more, len + entry_bytes), RAFT_EMALFORMED);
    free(more);
    free(frame);
}

TEST(frame_limit_is_enforced_by_the_encoder)
{
    /* A body over RAFT_CODEC_MAX_FRAME is refused before any byte of the
     * (here tiny) data is read: the size is checked first. */
    struct raft_entry e = { 1, 1, RAFT_ENTRY_COMMAND, RAFT_CODEC_MAX_FRAME, big_data };
    struct raft_message m = { .type = RAFT_MSG_APPEND, .n_entries = 1, .entries = &e };
    uint8_t buf[64];
    CHECK_EQ_I(raft_codec_encode(&m, buf, sizeof buf), RAFT_EINVAL);
    struct raft_message s = { .type = RAFT_MSG_SNAPSHOT, .len = UINT32_MAX, .data = big_data };
    CHECK_EQ_I(raft_codec_encode(&s, buf, sizeof buf), RAFT_EINVAL);
    CHECK(raft_codec_size(&s) > (size_t)UINT32_MAX); /* computed without wrapping */
}

TEST(encoder_refuses_what_the_decoder_would)
{
    uint8_t buf[256];
    struct raft_message m = full_message(RAFT_MSG_SNAPSHOT_RESP, 1);
    m.done = 2;
    CHECK_EQ_I(raft_codec_encode(&m, buf, sizeof buf), RAFT_EINVAL);
    m = (struct raft_message){ .type = 0 };
    CHECK_EQ_I(raft_codec_encode(&m, buf, sizeof buf), RAFT_EINVAL);
    m.type = RAFT_MSG_TYPE_MAX + 1;
    CHECK_EQ_I(raft_codec_encode(&m, buf, sizeof buf), RAFT_EINVAL);

    struct raft_entry e = { 1, 1, 0, 0, NULL };
    m = (struct raft_message){ .type = RAFT_MSG_APPEND, .n_entries = 1, .entries = &e };
    CHECK_EQ_I(raft_codec_encode(&m, buf, sizeof buf), RAFT_EINVAL); /* entry type 0 */
    e.type = RAFT_ENTRY_CONFIG + 1;
    CHECK_EQ_I(raft_codec_encode(&m, buf, sizeof buf), RAFT_EINVAL);
    e.type = RAFT_ENTRY_COMMAND;
    e.len = 3; /* data NULL */
    CHECK_EQ_I(raft_codec_encode(&m, buf, sizeof buf), RAFT_EINVAL);
    m.entries = NULL; /* n_entries 1 */
    CHECK_EQ_I(raft_codec_encode(&m, buf, sizeof buf), RAFT_EINVAL);

    struct raft_message s = full_message(RAFT_MSG_SNAPSHOT, 0);
    s.snapshot.config.n = RAFT_MAX_MEMBERS + 1;
    CHECK_EQ_I(raft_codec_encode(&s, buf, sizeof buf), RAFT_EINVAL);
    s.snapshot.config.n = 2;
    s.snapshot.config.members[0] = (struct raft_member){ 5, RAFT_VOTER, 0 };
    s.snapshot.config.members[1] = (struct raft_member){ 5, RAFT_LEARNER, 0 };
    CHECK_EQ_I(raft_codec_encode(&s, buf, sizeof buf), RAFT_EINVAL); /* duplicate id */
    s.snapshot.config.members[1] = (struct raft_member){ 0, RAFT_LEARNER, 0 };
    CHECK_EQ_I(raft_codec_encode(&s, buf, sizeof buf), RAFT_EINVAL); /* id 0 */
    s.snapshot.config.members[1] = (struct raft_member){ 6, 3, 0 };
    CHECK_EQ_I(raft_codec_encode(&s, buf, sizeof buf), RAFT_EINVAL); /* role */
    s.snapshot.config.members[1] = (struct raft_member){ 6, RAFT_LEARNER, 2 };
    CHECK_EQ_I(raft_codec_encode(&s, buf, sizeof buf), RAFT_EINVAL); /* promote */
    s.snapshot.config.members[1].promote = 1;
    CHECK(raft_codec_encode(&s, buf, sizeof buf) > 0);
    CHECK_EQ_I(raft_codec_encode(&s, NULL, sizeof buf), RAFT_EINVAL);
}

/* The core hands out SNAPSHOT messages with data NULL and [offset,
 * offset+len) naming the bytes; the host must fill them in before encoding. */
TEST(snapshot_chunk_must_be_filled_by_the_host)
{
    struct raft_message m = full_message(RAFT_MSG_SNAPSHOT, 1);
    m.data = NULL;
    uint8_t *buf = malloc(raft_codec_size(&m));
    REQUIRE(buf != NULL);
    CHECK_EQ_I(raft_codec_encode(&m, buf, raft_codec_size(&m)), RAFT_EINVAL);
    m.data = chunk;
    CHECK_EQ_I(raft_codec_encode(&m, buf, raft_codec_size(&m)), (long)raft_codec_size(&m));
    free(buf);
}

TEST(encoder_never_writes_past_cap)
{
    for (uint8_t type = RAFT_MSG_APPEND; type <= RAFT_MSG_TYPE_MAX; type++) {
        struct raft_message m = full_message(type, 1);
        if (type == RAFT_MSG_SNAPSHOT)
            m.len = 100; /* keep the loop short */
        size_t need = raft_codec_size(&m);
        for (size_t cap = 0; cap < need; cap++) {
            uint8_t *buf = malloc(cap ? cap : 1); /* ASan: exactly cap bytes */
            REQUIRE(buf != NULL);
            CHECK_EQ_I(raft_codec_encode(&m, buf, cap), RAFT_EINVAL);
            free(buf);
        }
    }
}

TEST(frame_size_on_every_prefix)
{
    for (uint8_t type = RAFT_MSG_APPEND; type <= RAFT_MSG_TYPE_MAX; type++) {
        struct raft_message m = full_message(type, 0x55);
        if (type == RAFT_MSG_SNAPSHOT)
            m.len = 300;
        size_t len = 0;
        uint8_t *frame = encode(&m, &len);
        REQUIRE(frame != NULL);
        for (size_t k = 0; k < len; k++) {
            uint8_t *p = copy(frame, k);
            long got = raft_codec_frame_size(p, k);
            if (got != 0) {
                fprintf(stderr, "  %s prefix %zu of %zu: %ld\n", raft_msg_type_name(type), k, len, got);
                CHECK(0);
            }
            free(p);
        }
        CHECK_EQ_I(raft_codec_frame_size(frame, len), (long)len);
        /* The start of the next frame behind it does not change the answer. */
        uint8_t *two = malloc(2 * len);
        REQUIRE(two != NULL);
        memcpy(two, frame, len);
        memcpy(two + len, frame, len);
        CHECK_EQ_I(raft_codec_frame_size(two, 2 * len), (long)len);
        CHECK_EQ_I(raft_codec_frame_size(two, len + 5), (long)len);
        free(two);
        free(frame);
    }
}

TEST(every_truncation_is_rejected)
{
    for (uint8_t type = RAFT_MSG_APPEND; type <= RAFT_MSG_TYPE_MAX; type++) {
        struct raft_message m = full_message(type, 0x77);
        if (type == RAFT_MSG_SNAPSHOT)
            m.len = 300;
        size_t len = 0;
        uint8_t *frame = encode(&m, &len);
        REQUIRE(frame != NULL);
        /* As given (the header's length no longer fits)... */
        for (size_t k = 0; k < len; k++)
            CHECK_EQ_I(decode_copy(frame, k), RAFT_EMALFORMED);
        /* ...and re-sealed, so the body itself is short: every field's
         * bounds check is exercised, each prefix its own heap buffer. */
        for (size_t k = HDR; k < len; k++) {
            uint8_t *p = copy(frame, k);
            reseal(p, k);
            CHECK_EQ_I(decode_copy(p, k), RAFT_EMALFORMED);
            free(p);
        }
        /* A byte too many is rejected too, re-sealed or not. */
        uint8_t *longer = malloc(len + 1);
        REQUIRE(longer != NULL);
        memcpy(longer, frame, len);
        longer[len] = 0;
        CHECK_EQ_I(decode_copy(longer, len + 1), RAFT_EMALFORMED);
        reseal(longer, len + 1);
        CHECK_EQ_I(decode_copy(longer, len + 1), RAFT_EMALFORMED);
        free(longer);
        free(frame);
    }
}

/* Flips each bit of a frame. As sent, CRC32C catches every single-bit error
 * in the body or checksum; a flip in the magic or length breaks the framing.
 * Re-sealed (a peer that computes a valid checksum over garbage), the frame
 * is either rejected or decodes to a message that re-encodes to exactly the
 * flipped bytes. */
TEST(every_bit_flip)
{
    for (uint8_t type = RAFT_MSG_APPEND; type <= RAFT_MSG_TYPE_MAX; type++) {
        struct raft_message m = full_message(type, 0x99);
        if (type == RAFT_MSG_SNAPSHOT)
            m.len = 64;
        if (type == RAFT_MSG_APPEND)
            m.n_entries = 3; /* not the 1 MiB one */
        size_t len = 0;
        uint8_t *frame = encode(&m, &len);
        REQUIRE(frame != NULL);
        for (size_t bit = 0; bit < 8 * len; bit++) {
            uint8_t *p = copy(frame, len);
            p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            int rc = decode_copy(p, len);
            size_t at = bit / 8;
            int want = at < 8 ? RAFT_EMALFORMED : RAFT_ECHECKSUM;
            if (rc != want) {
                fprintf(stderr, "  %s bit %zu: %d (%s)\n", raft_msg_type_name(type), bit, rc,
                        raft_strerror(rc));
                CHECK(0);
            }
            if (at >= HDR) {
                reseal(p, len);
                struct raft_message d;
                rc = raft_codec_decode(p, len, &d);
                if (rc == RAFT_OK) {
                    size_t n = raft_codec_size(&d);
                    uint8_t *again = malloc(n);
                    REQUIRE(again != NULL);
                    CHECK_EQ_I(raft_codec_encode(&d, again, n), (long)len);
                    CHECK(n == len && memcmp(again, p, len) == 0);
                    free(again);
                    raft_codec_release(&d);
                } else {
                    /* RAFT_EINVAL: the flip set the top bit of a term. */
                    CHECK(rc == RAFT_EMALFORMED || rc == RAFT_EVERSION || rc == RAFT_EINVAL);
                    CHECK(d.entries == NULL);
                }
                /* A flip of the version byte is always an unknown version. */
                if (at == OFF_VERSION)
                    CHECK_EQ_I(rc, RAFT_EVERSION);
            }
            free(p);
        }
        free(frame);
    }
}

TEST(framing_errors)
{
    struct raft_message m = full_message(RAFT_MSG_HEARTBEAT, 3);
    size_t len = 0;
    uint8_t *frame = encode(&m, &len);
    REQUIRE(frame != NULL);
    CHECK(memcmp(frame, "LRF1", 4) == 0);
    CHECK_EQ_U(get32(frame + 4), len - HDR);
    CHECK_EQ_U(get32(frame + 8), crc32c(frame + HDR, len - HDR));

    uint8_t *p = copy(frame, len);
    memcpy(p, "LRF2", 4); /* bad magic */
    CHECK_EQ_I(raft_codec_frame_size(p, len), RAFT_EMALFORMED);
    CHECK_EQ_I(raft_codec_frame_size(p, HDR), RAFT_EMALFORMED);
    CHECK_EQ_I(raft_codec_frame_size(p, HDR - 1), 0); /* cannot tell yet */
    CHECK_EQ_I(decode_copy(p, len), RAFT_EMALFORMED);
    memcpy(p, "LRF1", 4);

    put32(p + 4, RAFT_CODEC_MAX_FRAME + 1); /* body_len over the limit */
    CHECK_EQ_I(raft_codec_frame_size(p, HDR), RAFT_EMALFORMED);
    CHECK_EQ_I(decode_copy(p, HDR), RAFT_EMALFORMED);
    put32(p + 4, UINT32_MAX);
    CHECK_EQ_I(raft_codec_frame_size(p, HDR), RAFT_EMALFORMED);
    put32(p + 4, RAFT_CODEC_MAX_FRAME); /* at the limit: need more bytes */
    CHECK_EQ_I(raft_codec_frame_size(p, len), 0);
    put32(p + 4, 1);                    /* too short for version and type */
    CHECK_EQ_I(raft_codec_frame_size(p, len), RAFT_EMALFORMED);
    put32(p + 4, 0);
    CHECK_EQ_I(raft_codec_frame_size(p, len), RAFT_EMALFORMED);
    free(p);

    /* Unknown versions, known and unknown types. */
    const uint8_t versions[] = { 0, 2, 255 };
    for (size_t i = 0; i < sizeof versions; i++) {
        p = copy(frame, len);
        p[OFF_VERSION] = versions[i];
        reseal(p, len);
        CHECK_EQ_I(decode_copy(p, len), RAFT_EVERSION);
        free(p);
    }
    const uint8_t types[] = { 0, RAFT_MSG_TYPE_MAX + 1, 255 };
    for (size_t i = 0; i < sizeof types; i++) {
        p = copy(frame, len);
        p[OFF_TYPE] = types[i];
        reseal(p, len);
        CHECK_EQ_I(decode_copy(p, len), RAFT_EMALFORMED);
        free(p);
    }
    /* A body of only version and type (the least frame_size accepts). */
    uint8_t tiny[HDR + 2] = { 'L', 'R', 'F', '1' };
    tiny[HDR] = RAFT_CODEC_VERSION;
    tiny[HDR + 1] = RAFT_MSG_TIMEOUT_NOW;
    reseal(tiny, sizeof tiny);
    CHECK_EQ_I(raft_codec_frame_size(tiny, sizeof tiny), (long)sizeof tiny);
    CHECK_EQ_I(decode_copy(tiny, sizeof tiny), RAFT_EMALFORMED);
    free(frame);
}

TEST(flags_other_than_0_or_1)
{
    /* With every number 0 and every flag 1, the flags are the only bytes
     * equal to 1 after the common prefix. */
    static const int flags_of_type[RAFT_MSG_TYPE_MAX + 1] = {
        [RAFT_MSG_APPEND_RESP] = 1, [RAFT_MSG_VOTE] = 1, [RAFT_MSG_VOTE_RESP] = 1,
        [RAFT_MSG_PREVOTE] = 1, [RAFT_MSG_PREVOTE_RESP] = 1, [RAFT_MSG_SNAPSHOT] = 1,
        [RAFT_MSG_SNAPSHOT_RESP] = 2, [RAFT_MSG_READ_INDEX_RESP] = 1,
    };
    for (uint8_t type = RAFT_MSG_APPEND; type <= RAFT_MSG_TYPE_MAX; type++) {
        struct raft_message m = { .type = type, .reject = 1, .transfer = 1, .done = 1 };
        size_t len = 0;
        uint8_t *frame = encode(&m, &len);
        REQUIRE(frame != NULL);
        struct raft_message d;
        REQUIRE(raft_codec_decode(frame, len, &d) == RAFT_OK);
        int found = 0;
        for (size_t at = OFF_FIELDS; at < len; at++) {
            if (frame[at] != 1)
                continue;
            found++;
            const uint8_t bad[] = { 2, 0x80, 255 };
            for (size_t b = 0; b < sizeof bad; b++) {
                uint8_t *p = copy(frame, len);
                p[at] = bad[b];
                reseal(p, len);
                CHECK_EQ_I(decode_copy(p, len), RAFT_EMALFORMED);
                free(p);
            }
            uint8_t *p = copy(frame, len);
            p[at] = 0; /* 0 is fine */
            reseal(p, len);
            CHECK_EQ_I(decode_copy(p, len), RAFT_OK);
            free(p);
        }
        CHECK_EQ_I(found, flags_of_type[type]);
        CHECK_EQ_U(d.reject + d.transfer + d.done, (unsigned)flags_of_type[type]);
        free(frame);
    }
}

/* An APPEND whose first entry starts right after the count. */
static uint8_t *one_entry_append(size_t *len, size_t *entry_at)
{
    static const uint8_t data[8] = "abcdefgh";
    struct raft_entry e = { 4, 9, RAFT_ENTRY_COMMAND, sizeof data, data };
    struct raft_message m = { .type = RAFT_MSG_APPEND, .from = 1, .to = 2, .term = 4,
                              .n_entries = 1, .entries = &e };
    *entry_at = OFF_FIELDS + 4 * 8 + 4;
    return encode(&m, len);
}

TEST(hostile_entry_counts_and_lengths)
{
    size_t len = 0, at = 0;
    uint8_t *frame = one_entry_append(&len, &at);
    REQUIRE(frame != NULL);
    const uint32_t counts[] = { UINT32_MAX, RAFT_CODEC_MAX_ENTRIES + 1, RAFT_CODEC_MAX_ENTRIES, 2, 0 };
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        uint8_t *p = copy(frame, len);
        put32(p + at - 4, counts[i]);
        reseal(p, len);
        CHECK_EQ_I(decode_copy(p, len), RAFT_EMALFORMED);
        free(p);
    }
    /* Entry data length: longer than what is left, up to 2^32-1; shorter
     * leaves trailing bytes. */
    const uint32_t lens[] = { UINT32_MAX, RAFT_CODEC_MAX_FRAME + 1, 9, 7, 0 };
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        uint8_t *p = copy(frame, len);
        put32(p + at + 8 + 8 + 1, lens[i]);
        reseal(p, len);
        CHECK_EQ_I(decode_copy(p, len), RAFT_EMALFORMED);
        free(p);
    }
    /* Entry types other than COMMAND, NOOP, CONFIG. */
    const uint8_t types[] = { 0, RAFT_ENTRY_CONFIG + 1, 255 };
    for (size_t i = 0; i < sizeof types; i++) {
        uint8_t *p = copy(frame, len);
        p[at + 8 + 8] = types[i];
        reseal(p, len);
        CHECK_EQ_I(decode_copy(p, len), RAFT_EMALFORMED);
        free(p);
    }
    for (uint8_t t = RAFT_ENTRY_COMMAND; t <= RAFT_ENTRY_CONFIG; t++) {
        uint8_t *p = copy(frame, len);
        p[at + 8 + 8] = t;
        reseal(p, len);
        CHECK_EQ_I(decode_copy(p, len), RAFT_OK);
        free(p);
    }
    free(frame);
}

TEST(hostile_snapshot_fields)
{
    struct raft_message m = full_message(RAFT_MSG_SNAPSHOT, 5);
    m.len = 16;
    m.snapshot.config.n = 2;
    size_t len = 0;
    uint8_t *frame = encode(&m, &len);
    REQUIRE(frame != NULL);
    size_t meta = OFF_FIELDS + 8; /* after term */
    size_t n_at = meta + 8 + 8;
    size_t member0 = n_at + 4, member1 = member0 + 10;
    size_t chunk_len_at = member0 + 2 * 10 + 8 + 4 + 8;
    CHECK_EQ_U(get32(frame + n_at), 2);
    CHECK_EQ_U(get32(frame + chunk_len_at), 16);

    const uint32_t counts[] = { RAFT_MAX_MEMBERS + 1, UINT32_MAX, 3 };
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        uint8_t *p = copy(frame, len);
        put32(p + n_at, counts[i]);
        reseal(p, len);
        CHECK_EQ_I(decode_copy(p, len), RAFT_EMALFORMED);
        free(p);
    }
    struct { size_t at; uint8_t v; } bad[] = {
        { member1 + 8, 0 }, { member1 + 8, 3 }, { member1 + 8, 255 },  /* role */
        { member1 + 9, 2 }, { member1 + 9, 255 },                      /* promote */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t *p = copy(frame, len);
        p[bad[i].at] = bad[i].v;
        reseal(p, len);
        CHECK_EQ_I(decode_copy(p, len), RAFT_EMALFORMED);
        free(p);
    }
    uint8_t *p = copy(frame, len);
    memset(p + member1, 0, 8); /* id 0 */
    reseal(p, len);
    CHECK_EQ_I(decode_copy(p, len), RAFT_EMALFORMED);
    memcpy(p + member1, p + member0, 8); /* duplicate id */
    reseal(p, len);
    CHECK_EQ_I(decode_copy(p, len), RAFT_EMALFORMED);
    free(p);

    /* Chunk length larger than the frame, up to 2^32-1; smaller leaves
     * trailing bytes. */
    const uint32_t lens[] = { 17, 1000, RAFT_CODEC_MAX_FRAME, UINT32_MAX, 15 };
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        p = copy(frame, len);
        put32(p + chunk_len_at, lens[i]);
        reseal(p, len);
        CHECK_EQ_I(decode_copy(p, len), RAFT_EMALFORMED);
        free(p);
    }
    free(frame);
}

/* No term at or above 2^63, in any field that holds one, gets through the
 * codec in either direction (SPEC §3): the encoder refuses it and the
 * decoder answers RAFT_EINVAL, which the transport counts as a bad term. */
TEST(terms_at_or_above_2_63_are_refused)
{
    const uint64_t bad[] = { 1ull << 63, UINT64_MAX - 1, UINT64_MAX };
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        for (int field = 0; field < 6; field++) {
            struct raft_entry e = { 1, 1, RAFT_ENTRY_NOOP, 0, NULL };
            struct raft_message m = { .type = RAFT_MSG_APPEND, .from = 1, .to = 2, .term = 1 };
            switch (field) {
            case 0: m.term = bad[b]; break;
            case 1: m.prev_term = bad[b]; break;
            case 2: m.entries = &e; m.n_entries = 1; e.term = bad[b]; break;
            case 3: m.type = RAFT_MSG_VOTE; m.last_term = bad[b]; break;
            case 4: m.type = RAFT_MSG_APPEND_RESP; m.hint_term = bad[b]; break;
            case 5: m.type = RAFT_MSG_SNAPSHOT; m.snapshot.term = bad[b]; break;
            }
            uint8_t buf[256];
            CHECK_EQ_I(raft_codec_encode(&m, buf, sizeof buf), RAFT_EINVAL);
            /* Encode the same message with the largest legal term, then
             * write the bad one over it on the wire, as a stranger would. */
            uint64_t *slot = field == 0 ? &m.term : field == 1 ? &m.prev_term : field == 2 ? &e.term
                           : field == 3 ? &m.last_term : field == 4 ? &m.hint_term : &m.snapshot.term;
            *slot = RAFT_CODEC_MAX_TERM;
            int len = raft_codec_encode(&m, buf, sizeof buf);
            REQUIRE(len > 0);
            CHECK_EQ_I(decode_copy(buf, (size_t)len), RAFT_OK);
            size_t at = 0;
            for (size_t i = HDR; i + 8 <= (size_t)len; i++) {
                uint64_t v = 0;
                for (int k = 0; k < 8; k++)
                    v |= (uint64_t)buf[i + k] << (8 * k);
                if (v == RAFT_CODEC_MAX_TERM)
                    at = i;
            }
            REQUIRE(at != 0);
            for (int k = 0; k < 8; k++)
                buf[at + k] = (uint8_t)(bad[b] >> (8 * k));
            reseal(buf, (size_t)len);
            CHECK_EQ_I(decode_copy(buf, (size_t)len), RAFT_EINVAL);
        }
    }
}

TEST(errors_have_messages)
{
    const int codes[] = { RAFT_EMALFORMED, RAFT_ECHECKSUM, RAFT_EVERSION, RAFT_ENOMEM, RAFT_EINVAL };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        CHECK(strcmp(raft_strerror(codes[i]), "unknown error") != 0);
    raft_codec_release(NULL); /* allowed */
}

int main(void)
{
    init_samples();
    RUN(round_trip_every_type_and_value);
    RUN(sizes_are_what_the_layout_says);
    RUN(body_sizes_match_the_document);
    RUN(documented_example_frame);
    RUN(crc32c_instruction_and_table_agree);
    RUN(append_with_the_most_entries);
    RUN(frame_limit_is_enforced_by_the_encoder);
    RUN(encoder_refuses_what_the_decoder_would);
    RUN(snapshot_chunk_must_be_filled_by_the_host);
    RUN(encoder_never_writes_past_cap);
    RUN(frame_size_on_every_prefix);
    RUN(every_truncation_is_rejected);
    RUN(every_bit_flip);
    RUN(framing_errors);
    RUN(flags_other_than_0_or_1);
    RUN(hostile_entry_counts_and_lengths);
    RUN(hostile_snapshot_fields);
    RUN(terms_at_or_above_2_63_are_refused);
    RUN(errors_have_messages);
    return HARNESS_END();
}
