/*
 * fuzz_codec.c — libFuzzer driver for the Raft message codec
 * (raft_codec_frame_size, raft_codec_decode; src/raft/codec.c), the decoder
 * of every frame that arrives on the raft port. The input is one would-be
 * frame; it is decoded as given and again with its length and checksum
 * rewritten to fit (see LLVMFuzzerTestOneInput). Properties: frame_size and
 * decode agree on what is a whole frame; a decoded message satisfies the
 * ranges the decoder promises; re-encoding it gives the very same bytes (the
 * format has one encoding per message), and those bytes decode to the same
 * fields.
 */
#include "fuzz.h"

#include "common/crc32c.h"
#include "raft_codec.h"

#include <string.h>

static int fz_codec_same_entries(const struct raft_message *a, const struct raft_message *b)
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

static int fz_codec_same_message(const struct raft_message *a, const struct raft_message *b)
{
    const struct raft_snapshot_meta *s = &a->snapshot, *t = &b->snapshot;
    if (s->index != t->index || s->term != t->term || s->size != t->size ||
        s->crc != t->crc || s->config.n != t->config.n)
        return 0;
    for (uint32_t i = 0; i < s->config.n; i++)
        if (s->config.members[i].id != t->config.members[i].id ||
            s->config.members[i].role != t->config.members[i].role ||
            s->config.members[i].promote != t->config.members[i].promote)
            return 0;
    return a->type == b->type && a->from == b->from && a->to == b->to && a->term == b->term &&
           a->prev_index == b->prev_index && a->prev_term == b->prev_term &&
           a->commit == b->commit && a->index == b->index && a->last_index == b->last_index &&
           a->last_term == b->last_term && a->hint_index == b->hint_index &&
           a->hint_term == b->hint_term && a->context == b->context && a->offset == b->offset &&
           a->reject == b->reject && a->transfer == b->transfer && a->done == b->done &&
           a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0) &&
           fz_codec_same_entries(a, b);
}

/* Runs the decoder on one buffer and checks what it says. */
static void fz_codec_check(const uint8_t *data, size_t size)
{
    long frame = raft_codec_frame_size(data, size);
    struct raft_message m;
    int rc = raft_codec_decode(data, size, &m);
    FUZZ_CHECK(rc <= 0);
    /* decode accepts exactly what frame_size calls one whole frame. */
    if (rc == RAFT_OK)
        FUZZ_CHECK(frame > 0 && (size_t)frame == size);
    if (frame < 0)
        FUZZ_CHECK(rc == RAFT_EMALFORMED);
    if (rc != RAFT_OK) {
        FUZZ_CHECK(rc == RAFT_EMALFORMED || rc == RAFT_ECHECKSUM || rc == RAFT_EVERSION ||
                   rc == RAFT_ENOMEM || rc == RAFT_EINVAL /* a term >= 2^63 */);
        FUZZ_CHECK(m.entries == NULL && m.n_entries == 0); /* nothing to release */
        return;
    }

    /* What the decoder promises about a message it accepted. */
    FUZZ_CHECK(m.type >= RAFT_MSG_APPEND && m.type <= RAFT_MSG_TYPE_MAX);
    FUZZ_CHECK(m.reject <= 1 && m.transfer <= 1 && m.done <= 1);
    FUZZ_CHECK(m.n_entries <= RAFT_CODEC_MAX_ENTRIES);
    FUZZ_CHECK(m.term <= RAFT_CODEC_MAX_TERM && m.prev_term <= RAFT_CODEC_MAX_TERM &&
               m.last_term <= RAFT_CODEC_MAX_TERM && m.hint_term <= RAFT_CODEC_MAX_TERM &&
               m.snapshot.term <= RAFT_CODEC_MAX_TERM);
    FUZZ_CHECK((m.n_entries == 0) == (m.entries == NULL));
    FUZZ_CHECK(m.snapshot.config.n <= RAFT_MAX_MEMBERS);
    FUZZ_CHECK((m.len == 0) == (m.data == NULL));
    for (uint32_t i = 0; i < m.n_entries; i++) {
        const struct raft_entry *e = &m.entries[i];
        FUZZ_CHECK(e->type >= RAFT_ENTRY_COMMAND && e->type <= RAFT_ENTRY_CONFIG);
        FUZZ_CHECK(e->term <= RAFT_CODEC_MAX_TERM);
        FUZZ_CHECK((e->len == 0) == (e->data == NULL));
        /* Borrowed data lies inside the input. */
        FUZZ_CHECK(e->len == 0 || (e->data >= data && e->data + e->len <= data + size));
    }
    FUZZ_CHECK(m.len == 0 || (m.data >= data && m.data + m.len <= data + size));

    /* One encoding per message: re-encoding gives the input back. */
    size_t need = raft_codec_size(&m);
    FUZZ_CHECK(need == size);
    uint8_t *again = malloc(need);
    FUZZ_CHECK(again != NULL);
    int n = raft_codec_encode(&m, again, need);
    FUZZ_CHECK(n >= 0 && (size_t)n == size);
    FUZZ_CHECK(memcmp(again, data, size) == 0);
    FUZZ_CHECK(raft_codec_encode(&m, again, need - 1) == RAFT_EINVAL); /* no overrun */

    struct raft_message m2;
    FUZZ_CHECK(raft_codec_decode(again, (size_t)n, &m2) == RAFT_OK);
    FUZZ_CHECK(fz_codec_same_message(&m, &m2));
    raft_codec_release(&m2);
    free(again);
    raft_codec_release(&m);
}

/* The input as it is (so the framing and checksum checks are fuzzed), then a
 * copy whose header length and CRC32C are rewritten to fit the body: random
 * bytes almost never carry a valid checksum, and without this the fields
 * behind it would never be reached. */
int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    fz_codec_check(data, size);
    if (size < RAFT_CODEC_HEADER_BYTES)
        return 0;
    uint8_t *sealed = malloc(size);
    FUZZ_CHECK(sealed != NULL);
    memcpy(sealed, data, size);
    uint32_t body_len = (uint32_t)(size - RAFT_CODEC_HEADER_BYTES);
    uint32_t crc = crc32c(sealed + RAFT_CODEC_HEADER_BYTES, body_len);
    for (int i = 0; i < 4; i++) {
        sealed[4 + i] = (uint8_t)(body_len >> (8 * i));
        sealed[8 + i] = (uint8_t)(crc >> (8 * i));
    }
    fz_codec_check(sealed, size);
    free(sealed);
    return 0;
}
