/*
 * codec.c — the binary wire format of Raft messages (include/raft_codec.h,
 * byte layout in docs/wire-format.md). Each message type is described once,
 * as a list of fields in wire order (message_layouts below); sizing,
 * validation, encoding and decoding all walk that same list, so they cannot
 * disagree. The decoder treats its input as hostile: the checksum is verified
 * before any field is read, every count and length is checked against the
 * bytes actually left before it is used or allocated for, and every enum and
 * flag is range-checked. Part of the pure core: libc memory functions and
 * CRC-32C only, no I/O, no global mutable state.
 */
#include "raft_codec.h"

#include "common/crc32c.h"

#include <stdlib.h>
#include <string.h>

/* "LRF1" as it appears on the wire, read as a little-endian u32. */
#define FRAME_MAGIC ((uint32_t)'L' | (uint32_t)'R' << 8 | (uint32_t)'F' << 16 | (uint32_t)'1' << 24)

/* version, type, from, to: the part of the body every message type has. */
#define BODY_PREFIX_BYTES (1 + 1 + 8 + 8)
/* Smallest body frame_size accepts: enough to read version and type. */
#define BODY_MIN_BYTES 2
/* One APPEND entry without its data: term, index, type, len. */
#define ENTRY_FIXED_BYTES (8 + 8 + 1 + 4)
/* One configuration member: id, role, promote. */
#define MEMBER_BYTES (8 + 1 + 1)
/* Snapshot metadata without its members: index, term, n, size, crc. */
#define SNAPSHOT_META_FIXED_BYTES (8 + 8 + 4 + 8 + 4)

/* The fields a message type may carry, each with one fixed wire form. */
enum field {
    FIELD_END = 0,
    /* u64 */
    FIELD_TERM,
    FIELD_PREV_INDEX,
    FIELD_PREV_TERM,
    FIELD_COMMIT,
    FIELD_INDEX,
    FIELD_LAST_INDEX,
    FIELD_LAST_TERM,
    FIELD_HINT_INDEX,
    FIELD_HINT_TERM,
    FIELD_CONTEXT,
    FIELD_OFFSET,
    /* u8, 0 or 1 */
    FIELD_REJECT,
    FIELD_TRANSFER,
    FIELD_DONE,
    /* compound */
    FIELD_ENTRIES,       /* u32 n, then n × (u64 term, u64 index, u8 type, u32 len, bytes) */
    FIELD_SNAPSHOT_META, /* u64 index, u64 term, config, u64 size, u32 crc */
    FIELD_CHUNK,         /* u32 len, bytes */
};

#define MAX_FIELDS_PER_TYPE 7

/* Wire order of each type's fields after the common prefix; mirrors the table
 * above struct raft_message in raft.h. */
static const uint8_t message_layouts[RAFT_MSG_TYPE_MAX + 1][MAX_FIELDS_PER_TYPE] = {
    [RAFT_MSG_APPEND] = { FIELD_TERM, FIELD_PREV_INDEX, FIELD_PREV_TERM, FIELD_COMMIT,
                          FIELD_ENTRIES },
    [RAFT_MSG_APPEND_RESP] = { FIELD_TERM, FIELD_REJECT, FIELD_INDEX, FIELD_HINT_INDEX,
                               FIELD_HINT_TERM },
    [RAFT_MSG_VOTE] = { FIELD_TERM, FIELD_LAST_INDEX, FIELD_LAST_TERM, FIELD_TRANSFER },
    [RAFT_MSG_VOTE_RESP] = { FIELD_TERM, FIELD_REJECT },
    [RAFT_MSG_PREVOTE] = { FIELD_TERM, FIELD_LAST_INDEX, FIELD_LAST_TERM, FIELD_TRANSFER },
    [RAFT_MSG_PREVOTE_RESP] = { FIELD_TERM, FIELD_REJECT },
    [RAFT_MSG_HEARTBEAT] = { FIELD_TERM, FIELD_COMMIT, FIELD_CONTEXT },
    [RAFT_MSG_HEARTBEAT_RESP] = { FIELD_TERM, FIELD_CONTEXT },
    [RAFT_MSG_SNAPSHOT] = { FIELD_TERM, FIELD_SNAPSHOT_META, FIELD_OFFSET, FIELD_CHUNK,
                            FIELD_DONE },
    [RAFT_MSG_SNAPSHOT_RESP] = { FIELD_TERM, FIELD_INDEX, FIELD_OFFSET, FIELD_REJECT,
                                 FIELD_DONE },
    [RAFT_MSG_TIMEOUT_NOW] = { FIELD_TERM },
    [RAFT_MSG_READ_INDEX] = { FIELD_TERM, FIELD_CONTEXT },
    [RAFT_MSG_READ_INDEX_RESP] = { FIELD_TERM, FIELD_CONTEXT, FIELD_INDEX, FIELD_REJECT },
    [RAFT_MSG_SNAPSHOT_WANTED] = { FIELD_TERM, FIELD_INDEX },
};

static bool is_known_type(unsigned type)
{
    return type >= RAFT_MSG_APPEND && type <= RAFT_MSG_TYPE_MAX;
}

static bool is_u64_field(unsigned f) { return f >= FIELD_TERM && f <= FIELD_OFFSET; }
static bool is_flag_field(unsigned f) { return f >= FIELD_REJECT && f <= FIELD_DONE; }

/* The message member behind a u64 field. Called only with is_u64_field(f). */
static uint64_t *u64_member(struct raft_message *m, unsigned f)
{
    switch (f) {
    case FIELD_TERM: return &m->term;
    case FIELD_PREV_INDEX: return &m->prev_index;
    case FIELD_PREV_TERM: return &m->prev_term;
    case FIELD_COMMIT: return &m->commit;
    case FIELD_INDEX: return &m->index;
    case FIELD_LAST_INDEX: return &m->last_index;
    case FIELD_LAST_TERM: return &m->last_term;
    case FIELD_HINT_INDEX: return &m->hint_index;
    case FIELD_HINT_TERM: return &m->hint_term;
    case FIELD_CONTEXT: return &m->context;
    default: return &m->offset;
    }
}

/* The message member behind a flag field. Called only with is_flag_field(f). */
static uint8_t *flag_member(struct raft_message *m, unsigned f)
{
    switch (f) {
    case FIELD_REJECT: return &m->reject;
    case FIELD_TRANSFER: return &m->transfer;
    default: return &m->done;
    }
}

/* Read-only views for the encoder; the members are not written through them. */
static uint64_t u64_value(const struct raft_message *m, unsigned f)
{
    return *u64_member((struct raft_message *)m, f);
}

static uint8_t flag_value(const struct raft_message *m, unsigned f)
{
    return *flag_member((struct raft_message *)m, f);
}

static bool is_entry_type(uint8_t type)
{
    return type >= RAFT_ENTRY_COMMAND && type <= RAFT_ENTRY_CONFIG;
}

/* The rules raft_config_decode applies to a CONFIG entry, so a snapshot cannot
 * smuggle in a configuration a log entry could not: at most RAFT_MAX_MEMBERS,
 * known roles, promote 0/1, ids nonzero and distinct. */
static bool is_valid_config(const struct raft_config *c)
{
    if (c->n > RAFT_MAX_MEMBERS)
        return false;
    for (uint32_t i = 0; i < c->n; i++) {
        const struct raft_member *member = &c->members[i];
        if (member->id == 0 || member->promote > 1 ||
            (member->role != RAFT_VOTER && member->role != RAFT_LEARNER))
            return false;
        for (uint32_t j = 0; j < i; j++)
            if (c->members[j].id == member->id)
                return false;
    }
    return true;
}

/* ---- Sizing and validation (encoder side) ------------------------------- */

/* Body bytes of m's encoding, computed in 64 bits so no count can wrap it.
 * m->type must be known. */
static uint64_t body_size(const struct raft_message *m)
{
    uint64_t size = BODY_PREFIX_BYTES;
    for (const uint8_t *f = message_layouts[m->type]; *f != FIELD_END; f++) {
        if (is_u64_field(*f)) {
            size += 8;
        } else if (is_flag_field(*f)) {
            size += 1;
        } else if (*f == FIELD_ENTRIES) {
            size += 4;
            for (uint32_t i = 0; i < m->n_entries && m->entries; i++)
                size += ENTRY_FIXED_BYTES + (uint64_t)m->entries[i].len;
        } else if (*f == FIELD_SNAPSHOT_META) {
            size += SNAPSHOT_META_FIXED_BYTES + (uint64_t)MEMBER_BYTES * m->snapshot.config.n;
        } else if (*f == FIELD_CHUNK) {
            size += 4 + (uint64_t)m->len;
        }
    }
    return size;
}

/* Whether the decoder would accept what m's encoding says, field by field. */
/* True if every term m carries (its own, prev/last/hint terms, its
 * entries', its snapshot's) is at most RAFT_CODEC_MAX_TERM. Fields a type
 * does not carry are zero after decoding. A term that high is never real: a
 * peer that sends one is broken or hostile, and a node that adopted it could
 * neither go past it nor recover (the term is on disk). */
static bool terms_in_range(const struct raft_message *m)
{
    if (m->term > RAFT_CODEC_MAX_TERM || m->prev_term > RAFT_CODEC_MAX_TERM ||
        m->last_term > RAFT_CODEC_MAX_TERM || m->hint_term > RAFT_CODEC_MAX_TERM ||
        m->snapshot.term > RAFT_CODEC_MAX_TERM)
        return false;
    for (uint32_t i = 0; i < m->n_entries; i++)
        if (m->entries[i].term > RAFT_CODEC_MAX_TERM)
            return false;
    return true;
}

static bool is_encodable(const struct raft_message *m)
{
    if (!is_known_type(m->type))
        return false;
    if ((m->n_entries == 0 || m->entries) && !terms_in_range(m))
        return false;
    for (const uint8_t *f = message_layouts[m->type]; *f != FIELD_END; f++) {
        if (is_flag_field(*f) && flag_value(m, *f) > 1)
            return false;
        if (*f == FIELD_ENTRIES) {
            if (m->n_entries > RAFT_CODEC_MAX_ENTRIES || (m->n_entries > 0 && !m->entries))
                return false;
            for (uint32_t i = 0; i < m->n_entries; i++) {
                const struct raft_entry *e = &m->entries[i];
                if (!is_entry_type(e->type) || (e->len > 0 && !e->data))
                    return false;
            }
        }
        if (*f == FIELD_SNAPSHOT_META && !is_valid_config(&m->snapshot.config))
            return false;
        if (*f == FIELD_CHUNK && m->len > 0 && !m->data)
            return false;
    }
    return body_size(m) <= RAFT_CODEC_MAX_FRAME;
}

size_t raft_codec_size(const struct raft_message *m)
{
    if (!is_known_type(m->type))
        return 0;
    uint64_t size = RAFT_CODEC_HEADER_BYTES + body_size(m);
    return size > SIZE_MAX ? SIZE_MAX : (size_t)size;
}

/* ---- Encoding ------------------------------------------------------------ */

/* Appends to a buffer whose size was checked beforehand. */
struct writer {
    uint8_t *p;
};

static void put_u8(struct writer *w, uint8_t v) { *w->p++ = v; }

static void put_u32(struct writer *w, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        *w->p++ = (uint8_t)(v >> (8 * i));
}

static void put_u64(struct writer *w, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        *w->p++ = (uint8_t)(v >> (8 * i));
}

static void put_bytes(struct writer *w, const uint8_t *data, uint32_t len)
{
    if (len > 0)
        memcpy(w->p, data, len);
    w->p += len;
}

static void put_snapshot_meta(struct writer *w, const struct raft_snapshot_meta *meta)
{
    put_u64(w, meta->index);
    put_u64(w, meta->term);
    put_u32(w, meta->config.n);
    for (uint32_t i = 0; i < meta->config.n; i++) {
        put_u64(w, meta->config.members[i].id);
        put_u8(w, meta->config.members[i].role);
        put_u8(w, meta->config.members[i].promote);
    }
    put_u64(w, meta->size);
    put_u32(w, meta->crc);
}

int raft_codec_encode(const struct raft_message *m, uint8_t *buf, size_t cap)
{
    if (!is_encodable(m))
        return RAFT_EINVAL;
    uint64_t body_len = body_size(m);
    if (!buf || cap < RAFT_CODEC_HEADER_BYTES + body_len)
        return RAFT_EINVAL;

    struct writer w = { buf + RAFT_CODEC_HEADER_BYTES };
    put_u8(&w, RAFT_CODEC_VERSION);
    put_u8(&w, m->type);
    put_u64(&w, m->from);
    put_u64(&w, m->to);
    for (const uint8_t *f = message_layouts[m->type]; *f != FIELD_END; f++) {
        if (is_u64_field(*f)) {
            put_u64(&w, u64_value(m, *f));
        } else if (is_flag_field(*f)) {
            put_u8(&w, flag_value(m, *f));
        } else if (*f == FIELD_ENTRIES) {
            put_u32(&w, m->n_entries);
            for (uint32_t i = 0; i < m->n_entries; i++) {
                const struct raft_entry *e = &m->entries[i];
                put_u64(&w, e->term);
                put_u64(&w, e->index);
                put_u8(&w, e->type);
                put_u32(&w, e->len);
                put_bytes(&w, e->data, e->len);
            }
        } else if (*f == FIELD_SNAPSHOT_META) {
            put_snapshot_meta(&w, &m->snapshot);
        } else if (*f == FIELD_CHUNK) {
            put_u32(&w, m->len);
            put_bytes(&w, m->data, m->len);
        }
    }

    /* The header goes last: its checksum covers the body just written. */
    const uint8_t *body = buf + RAFT_CODEC_HEADER_BYTES;
    struct writer header = { buf };
    put_u32(&header, FRAME_MAGIC);
    put_u32(&header, (uint32_t)body_len);
    put_u32(&header, crc32c(body, (size_t)body_len));
    return (int)(RAFT_CODEC_HEADER_BYTES + body_len);
}

/* ---- Decoding ------------------------------------------------------------ */

static uint32_t load_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t load_u64(const uint8_t *p)
{
    return (uint64_t)load_u32(p) | (uint64_t)load_u32(p + 4) << 32;
}

/* Consumes a body front to back; every read first checks what is left. */
struct reader {
    const uint8_t *p;
    size_t left;
};

static bool get_u8(struct reader *r, uint8_t *v)
{
    if (r->left < 1)
        return false;
    *v = r->p[0];
    r->p += 1;
    r->left -= 1;
    return true;
}

static bool get_u32(struct reader *r, uint32_t *v)
{
    if (r->left < 4)
        return false;
    *v = load_u32(r->p);
    r->p += 4;
    r->left -= 4;
    return true;
}

static bool get_u64(struct reader *r, uint64_t *v)
{
    if (r->left < 8)
        return false;
    *v = load_u64(r->p);
    r->p += 8;
    r->left -= 8;
    return true;
}

static bool get_flag(struct reader *r, uint8_t *v)
{
    return get_u8(r, v) && *v <= 1;
}

/* Borrows len bytes of the buffer; *data is NULL when len is 0, as in the
 * structs the core hands out. */
static bool get_bytes(struct reader *r, uint32_t len, const uint8_t **data)
{
    if (r->left < len)
        return false;
    *data = len > 0 ? r->p : NULL;
    r->p += len;
    r->left -= len;
    return true;
}

static int get_entries(struct reader *r, struct raft_message *m)
{
    uint32_t n;
    if (!get_u32(r, &n))
        return RAFT_EMALFORMED;
    /* Judge the count against the bytes that are really there before
     * allocating for it: a small frame must not buy a large allocation. */
    if (n > RAFT_CODEC_MAX_ENTRIES || (size_t)n * ENTRY_FIXED_BYTES > r->left)
        return RAFT_EMALFORMED;
    if (n == 0)
        return RAFT_OK;
    struct raft_entry *entries = calloc(n, sizeof *entries);
    if (!entries)
        return RAFT_ENOMEM;
    /* Attached at once so the caller's error path frees it. */
    m->entries = entries;
    m->n_entries = n;
    for (uint32_t i = 0; i < n; i++) {
        struct raft_entry *e = &entries[i];
        if (!get_u64(r, &e->term) || !get_u64(r, &e->index) || !get_u8(r, &e->type) ||
            !is_entry_type(e->type) || !get_u32(r, &e->len) ||
            !get_bytes(r, e->len, &e->data))
            return RAFT_EMALFORMED;
    }
    return RAFT_OK;
}

static int get_snapshot_meta(struct reader *r, struct raft_snapshot_meta *meta)
{
    uint32_t n;
    if (!get_u64(r, &meta->index) || !get_u64(r, &meta->term) || !get_u32(r, &n))
        return RAFT_EMALFORMED;
    if (n > RAFT_MAX_MEMBERS)
        return RAFT_EMALFORMED;
    for (uint32_t i = 0; i < n; i++) {
        struct raft_member *member = &meta->config.members[i];
        if (!get_u64(r, &member->id) || !get_u8(r, &member->role) ||
            !get_u8(r, &member->promote))
            return RAFT_EMALFORMED;
    }
    meta->config.n = n;
    if (!is_valid_config(&meta->config))
        return RAFT_EMALFORMED;
    if (!get_u64(r, &meta->size) || !get_u32(r, &meta->crc))
        return RAFT_EMALFORMED;
    return RAFT_OK;
}

/* Reads the fields of m->type from r into m. */
static int get_fields(struct reader *r, struct raft_message *m)
{
    if (!get_u64(r, &m->from) || !get_u64(r, &m->to))
        return RAFT_EMALFORMED;
    for (const uint8_t *f = message_layouts[m->type]; *f != FIELD_END; f++) {
        int rc = RAFT_OK;
        if (is_u64_field(*f)) {
            if (!get_u64(r, u64_member(m, *f)))
                rc = RAFT_EMALFORMED;
        } else if (is_flag_field(*f)) {
            if (!get_flag(r, flag_member(m, *f)))
                rc = RAFT_EMALFORMED;
        } else if (*f == FIELD_ENTRIES) {
            rc = get_entries(r, m);
        } else if (*f == FIELD_SNAPSHOT_META) {
            rc = get_snapshot_meta(r, &m->snapshot);
        } else if (*f == FIELD_CHUNK) {
            if (!get_u32(r, &m->len) || !get_bytes(r, m->len, &m->data))
                rc = RAFT_EMALFORMED;
        }
        if (rc != RAFT_OK)
            return rc;
    }
    /* A frame says exactly one message; anything after it is not ours to guess at. */
    return r->left == 0 ? RAFT_OK : RAFT_EMALFORMED;
}

long raft_codec_frame_size(const uint8_t *buf, size_t len)
{
    if (len < RAFT_CODEC_HEADER_BYTES)
        return 0;
    if (load_u32(buf) != FRAME_MAGIC)
        return RAFT_EMALFORMED;
    uint32_t body_len = load_u32(buf + 4);
    if (body_len < BODY_MIN_BYTES || body_len > RAFT_CODEC_MAX_FRAME)
        return RAFT_EMALFORMED;
    size_t frame_len = RAFT_CODEC_HEADER_BYTES + (size_t)body_len;
    return len >= frame_len ? (long)frame_len : 0;
}

int raft_codec_decode(const uint8_t *buf, size_t len, struct raft_message *m)
{
    memset(m, 0, sizeof *m);
    long frame_len = raft_codec_frame_size(buf, len);
    if (frame_len < 0)
        return (int)frame_len;
    /* Exactly one whole frame: short input (frame_len 0) or extra bytes both
     * mean the caller cut the stream wrong. */
    if (frame_len == 0 || (size_t)frame_len != len)
        return RAFT_EMALFORMED;

    const uint8_t *body = buf + RAFT_CODEC_HEADER_BYTES;
    size_t body_len = len - RAFT_CODEC_HEADER_BYTES;
    if (crc32c(body, body_len) != load_u32(buf + 8))
        return RAFT_ECHECKSUM;
    if (body[0] != RAFT_CODEC_VERSION)
        return RAFT_EVERSION;
    if (!is_known_type(body[1]))
        return RAFT_EMALFORMED;

    struct reader r = { body + 2, body_len - 2 };
    m->type = body[1];
    int rc = get_fields(&r, m);
    if (rc == RAFT_OK && !terms_in_range(m))
        rc = RAFT_EINVAL;
    if (rc != RAFT_OK) {
        raft_codec_release(m);
        memset(m, 0, sizeof *m);
    }
    return rc;
}

void raft_codec_release(struct raft_message *m)
{
    if (!m)
        return;
    /* The array was allocated by get_entries; const only guards its readers. */
    free((void *)m->entries);
    m->entries = NULL;
    m->n_entries = 0;
}
