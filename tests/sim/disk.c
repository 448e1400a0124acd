/*
 * disk.c — the simulated disk of one node.
 *
 * A host writes each ready's persistent state as one batch of records
 * (snapshot chunk, snapshot install, truncation, entries, hard state, in the
 * order the ready contract fixes) followed by an END record, then fsyncs.
 * The batch is kept as the very bytes a real write-ahead log would hold:
 *
 *     record = u32 payload_len | u32 crc32c(type, payload) | u8 type | payload
 *
 * Until its fsync completes the batch is "pending"; a crash then loses it,
 * tears it (a random prefix survives, its tail possibly garbage) or keeps it
 * whole (it reached the platter before the fsync returned). Recovery parses
 * the surviving bytes and replays a batch only if every record checksums and
 * its END record is there — the per-record CRC and commit record a real log
 * uses — so a torn batch is discarded as a whole, never half applied.
 * Durable state is then kept structured (hard state, log, snapshot, partial
 * incoming snapshot), which is what a restart hands to raft_restore.
 */
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "sim.h"

enum { R_CHUNK = 1, R_INSTALL, R_TRUNC, R_ENTRY, R_HS, R_END };

void sim_bytes_put(struct sim_bytes *b, const void *data, size_t len)
{
    if (b->n + len > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + len)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p)
            abort(); /* test code: out of memory is not a result */
        b->p = p;
        b->cap = cap;
    }
    if (len)
        memcpy(b->p + b->n, data, len);
    b->n += len;
}

void sim_bytes_free(struct sim_bytes *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

static void put_u8(struct sim_bytes *b, uint8_t v) { sim_bytes_put(b, &v, 1); }
static void put_u32(struct sim_bytes *b, uint32_t v) { sim_bytes_put(b, &v, 4); }
static void put_u64(struct sim_bytes *b, uint64_t v) { sim_bytes_put(b, &v, 8); }

/* Starts a record; returns the offset of its header, finished by rec_end. */
static size_t rec_begin(struct sim_bytes *b, uint8_t type)
{
    size_t at = b->n;
    put_u32(b, 0);
    put_u32(b, 0);
    put_u8(b, type);
    return at;
}

static void rec_end(struct sim_disk *d, size_t at)
{
    struct sim_bytes *b = &d->pending[d->n_pending];
    uint32_t len = (uint32_t)(b->n - at - 9);
    uint32_t crc = crc32c(b->p + at + 8, len + 1);
    memcpy(b->p + at, &len, 4);
    memcpy(b->p + at + 4, &crc, 4);
    d->records_written++;
}

static void put_meta(struct sim_bytes *b, const struct raft_snapshot_meta *m)
{
    put_u64(b, m->index);
    put_u64(b, m->term);
    put_u64(b, m->size);
    put_u32(b, m->crc);
    uint8_t cfg[4 + 10 * RAFT_MAX_MEMBERS];
    int len = raft_config_encode(&m->config, cfg, sizeof cfg);
    put_u32(b, (uint32_t)(len > 0 ? len : 0));
    if (len > 0)
        sim_bytes_put(b, cfg, (size_t)len);
}

bool sim_disk_write(struct sim_disk *d, const struct raft_ready *rd)
{
    if (d->n_pending == d->cap_pending) {
        size_t cap = d->cap_pending ? d->cap_pending * 2 : 4;
        struct sim_bytes *grown = realloc(d->pending, cap * sizeof *grown);
        if (!grown)
            abort(); /* test code: out of memory is not a result */
        memset(grown + d->cap_pending, 0, (cap - d->cap_pending) * sizeof *grown);
        d->pending = grown;
        d->cap_pending = cap;
    }
    /* The batch is built in the slot after the last pending one. */
    struct sim_bytes *b = &d->pending[d->n_pending];
    b->n = 0;
    size_t at;
    int n = 0;
    if (rd->snapshot_chunk.len || rd->snapshot_chunk.meta.index) {
        at = rec_begin(b, R_CHUNK);
        put_meta(b, &rd->snapshot_chunk.meta);
        put_u64(b, rd->snapshot_chunk.offset);
        put_u32(b, rd->snapshot_chunk.len);
        sim_bytes_put(b, rd->snapshot_chunk.data, rd->snapshot_chunk.len);
        rec_end(d, at);
        n++;
    }
    if (rd->snapshot_install) {
        at = rec_begin(b, R_INSTALL);
        put_meta(b, rd->snapshot_install);
        rec_end(d, at);
        n++;
    }
    if (rd->truncate_from) {
        at = rec_begin(b, R_TRUNC);
        put_u64(b, rd->truncate_from);
        rec_end(d, at);
        n++;
    }
    for (size_t i = 0; i < rd->n_entries; i++) {
        const struct raft_entry *e = &rd->entries[i];
        at = rec_begin(b, R_ENTRY);
        put_u64(b, e->index);
        put_u64(b, e->term);
        put_u8(b, e->type);
        put_u32(b, e->len);
        sim_bytes_put(b, e->data, e->len);
        rec_end(d, at);
        n++;
    }
    if (rd->hard_state_changed) {
        at = rec_begin(b, R_HS);
        put_u64(b, rd->hard_state.term);
        put_u64(b, rd->hard_state.vote);
        rec_end(d, at);
        n++;
    }
    if (n == 0)
        return false;
    at = rec_begin(b, R_END);
    put_u32(b, (uint32_t)n);
    rec_end(d, at);
    d->n_pending++;
    return true;
}

/* ---- Replay ---------------------------------------------------------------- */

struct reader {
    const uint8_t *p;
    size_t n, at;
    bool bad;
};

static void get(struct reader *r, void *out, size_t len)
{
    if (r->bad || r->n - r->at < len) {
        r->bad = true;
        memset(out, 0, len);
        return;
    }
    memcpy(out, r->p + r->at, len);
    r->at += len;
}
static uint8_t get_u8(struct reader *r) { uint8_t v; get(r, &v, 1); return v; }
static uint32_t get_u32(struct reader *r) { uint32_t v; get(r, &v, 4); return v; }
static uint64_t get_u64(struct reader *r) { uint64_t v; get(r, &v, 8); return v; }

static void get_meta(struct reader *r, struct raft_snapshot_meta *m)
{
    memset(m, 0, sizeof *m);
    m->index = get_u64(r);
    m->term = get_u64(r);
    m->size = get_u64(r);
    m->crc = get_u32(r);
    uint32_t len = get_u32(r);
    if (r->bad || len > r->n - r->at || raft_config_decode(&m->config, r->p + r->at, len) != RAFT_OK) {
        r->bad = true;
        return;
    }
    r->at += len;
}

static bool same_meta(const struct raft_snapshot_meta *a, const struct raft_snapshot_meta *b)
{
    return a->index == b->index && a->term == b->term && a->size == b->size && a->crc == b->crc;
}

static void snap_clear(struct sim_snapshot *s)
{
    free(s->data);
    memset(s, 0, sizeof *s);
}

static void log_drop_from(struct sim_disk *d, raft_index from)
{
    while (d->n_log && d->log[d->n_log - 1].index >= from) {
        free((void *)d->log[d->n_log - 1].data);
        d->n_log--;
    }
}

void sim_disk_compact(struct sim_disk *d, raft_index before)
{
    size_t k = 0;
    while (k < d->n_log && d->log[k].index < before)
        free((void *)d->log[k++].data);
    if (k) {
        memmove(d->log, d->log + k, (d->n_log - k) * sizeof *d->log);
        memmove(d->log_crc, d->log_crc + k, (d->n_log - k) * sizeof *d->log_crc);
        d->n_log -= k;
    }
}

/* Validates the whole batch (checksums, END) without changing anything:
 * returns the number of records before END, or -1. */
static int batch_valid(const uint8_t *p, size_t n)
{
    size_t at = 0;
    int count = 0;
    while (at < n) {
        if (n - at < 9)
            return -1;
        uint32_t len, crc;
        memcpy(&len, p + at, 4);
        memcpy(&crc, p + at + 4, 4);
        if (len > n - at - 9 || crc32c(p + at + 8, (size_t)len + 1) != crc)
            return -1;
        uint8_t type = p[at + 8];
        at += 9 + (size_t)len;
        if (type == R_END) {
            uint32_t want;
            if (len != 4)
                return -1;
            memcpy(&want, p + at - 4, 4);
            return at == n && want == (uint32_t)count ? count : -1;
        }
        count++;
    }
    return -1;
}

/* Applies a valid batch to the durable state. */
static int replay(struct sim_disk *d, const uint8_t *p, size_t n, char *err, size_t cap)
{
    struct reader rd = { p, n, 0, false };
    while (rd.at < n) {
        uint32_t len = get_u32(&rd);
        get_u32(&rd);
        uint8_t type = get_u8(&rd);
        size_t end = rd.at + len;
        struct reader r = { p, end, rd.at, false };
        switch (type) {
        case R_CHUNK: {
            struct raft_snapshot_meta m;
            get_meta(&r, &m);
            uint64_t off = get_u64(&r);
            uint32_t clen = get_u32(&r);
            if (r.bad || clen != end - r.at) {
                snprintf(err, cap, "disk: malformed snapshot chunk record");
                return -1;
            }
            if (off == 0) {
                snap_clear(&d->partial);
                d->partial.have = true;
                d->partial.meta = m;
                d->partial.data = malloc(m.size ? m.size : 1);
                d->partial_len = 0;
            }
            if (!d->partial.have || !same_meta(&d->partial.meta, &m) || off != d->partial_len ||
                off + clen > m.size) {
                snprintf(err, cap, "disk: snapshot chunk [%llu,+%u) of snapshot %llu does not follow "
                         "the %llu bytes on disk", (unsigned long long)off, clen,
                         (unsigned long long)m.index, (unsigned long long)d->partial_len);
                return -1;
            }
            memcpy(d->partial.data + off, p + r.at, clen);
            d->partial_len += clen;
            break;
        }
        case R_INSTALL: {
            struct raft_snapshot_meta m;
            get_meta(&r, &m);
            if (r.bad || !d->partial.have || !same_meta(&d->partial.meta, &m) || d->partial_len != m.size) {
                snprintf(err, cap, "disk: install of snapshot %llu but the partial file on disk is %s "
                         "(%llu bytes)", (unsigned long long)m.index,
                         d->partial.have ? "another snapshot or incomplete" : "absent",
                         (unsigned long long)d->partial_len);
                return -1;
            }
            if (crc32c(d->partial.data, m.size) != m.crc) {
                snprintf(err, cap, "disk: installed snapshot %llu fails its CRC", (unsigned long long)m.index);
                return -1;
            }
            snap_clear(&d->snap);
            d->snap = d->partial;
            d->snap.meta = m; /* with its configuration */
            memset(&d->partial, 0, sizeof d->partial);
            d->partial_len = 0;
            sim_disk_compact(d, m.index + 1);
            break;
        }
        case R_TRUNC: {
            raft_index from = get_u64(&r);
            if (r.bad || from == 0) {
                snprintf(err, cap, "disk: malformed truncation record");
                return -1;
            }
            if (!d->changed_from || from < d->changed_from)
                d->changed_from = from;
            log_drop_from(d, from);
            break;
        }
        case R_ENTRY: {
            struct raft_entry e;
            e.index = get_u64(&r);
            e.term = get_u64(&r);
            e.type = get_u8(&r);
            e.len = get_u32(&r);
            if (r.bad || e.len != end - r.at) {
                snprintf(err, cap, "disk: malformed entry record");
                return -1;
            }
            raft_index want = d->n_log ? d->log[d->n_log - 1].index + 1 : (d->snap.have ? d->snap.meta.index + 1 : 1);
            if (e.index != want) {
                snprintf(err, cap, "disk: entry %llu (term %llu) written where the log expects %llu: "
                         "the core handed out a non-contiguous or overlapping append",
                         (unsigned long long)e.index, (unsigned long long)e.term, (unsigned long long)want);
                return -1;
            }
            uint8_t *data = NULL;
            if (e.len) {
                data = malloc(e.len);
                memcpy(data, p + r.at, e.len);
            }
            e.data = data;
            if (d->n_log == d->cap_log) {
                d->cap_log = d->cap_log ? d->cap_log * 2 : 64;
                d->log = realloc(d->log, d->cap_log * sizeof *d->log);
                d->log_crc = realloc(d->log_crc, d->cap_log * sizeof *d->log_crc);
                if (!d->log || !d->log_crc)
                    abort(); /* test code: out of memory is not a result */
            }
            d->log_crc[d->n_log] = crc32c(e.data, e.len);
            d->log[d->n_log++] = e;
            if (!d->changed_from || e.index < d->changed_from)
                d->changed_from = e.index;
            break;
        }
        case R_HS:
            d->hs.term = get_u64(&r);
            d->hs.vote = get_u64(&r);
            d->have_hs = true;
            d->hs_rotten = false; /* a new record of it */
            break;
        case R_END:
            break;
        default:
            snprintf(err, cap, "disk: unknown record type %u", type);
            return -1;
        }
        rd.at = end;
    }
    return 0;
}

/* Removes the oldest pending batch, keeping its buffer for reuse. */
static void pop_pending(struct sim_disk *d)
{
    struct sim_bytes first = d->pending[0];
    memmove(d->pending, d->pending + 1, (d->n_pending - 1) * sizeof *d->pending);
    d->pending[--d->n_pending] = first;
}

int sim_disk_sync(struct sim_disk *d, char *err, size_t cap)
{
    if (!d->n_pending)
        return 0;
    struct sim_bytes *b = &d->pending[0];
    if (batch_valid(b->p, b->n) < 0) {
        snprintf(err, cap, "disk: the batch just written does not parse (simulator bug)");
        return -1;
    }
    d->batches_synced++;
    d->changed_from = 0;
    int rc = replay(d, b->p, b->n, err, cap);
    pop_pending(d);
    return rc;
}

static const char *crash_one(struct sim_disk *d, struct sim_bytes *b, uint64_t *rng, bool *whole);

const char *sim_disk_crash(struct sim_disk *d, uint64_t *rng)
{
    if (!d->n_pending)
        return "nothing unsynced";
    const char *what = NULL;
    bool whole = true;
    size_t lost = 0;
    for (size_t i = 0; i < d->n_pending; i++) {
        if (whole) {
            const char *w = crash_one(d, &d->pending[i], rng, &whole);
            if (!what)
                what = w;
        } else {
            d->batches_lost++;
            lost++;
        }
    }
    d->n_pending = 0;
    return lost ? "unsynced batches: the first one not kept whole and all after it lost" : what;
}

/* The fate of one unsynced batch; *whole says whether it survived entire. */
static const char *crash_one(struct sim_disk *d, struct sim_bytes *b, uint64_t *rng, bool *whole)
{
    uint64_t fate = sim_range(rng, 0, 2);
    *whole = fate == 2;
    const char *what = "unsynced batch lost";
    size_t keep = 0;
    if (fate == 1) {
        /* Torn: a prefix survives; sometimes the sector after it is garbage. */
        keep = (size_t)sim_range(rng, 0, b->n - 1);
        if (keep && sim_chance(rng, 500))
            b->p[keep - 1] ^= (uint8_t)(1 + sim_range(rng, 0, 254));
        what = "unsynced batch torn";
        d->torn_writes++;
    } else if (fate == 2) {
        keep = b->n;
        what = "unsynced batch reached the disk";
    }
    if (keep && batch_valid(b->p, keep) >= 0) {
        char err[256];
        if (replay(d, b->p, keep, err, sizeof err) == 0)
            return what;
        /* A whole batch that cannot replay would have failed its sync too:
         * report it the same way, as lost. */
    }
    *whole = false;
    if (fate == 2)
        what = "unsynced batch reached the disk but did not replay";
    d->batches_lost++;
    return what;
}

void sim_disk_save_snapshot(struct sim_disk *d, const struct raft_snapshot_meta *meta, const uint8_t *data)
{
    snap_clear(&d->prev);
    if (d->keep_prev) {
        d->prev = d->snap;
        memset(&d->snap, 0, sizeof d->snap);
    }
    snap_clear(&d->snap);
    d->snap.have = true;
    d->snap.meta = *meta;
    d->snap.data = malloc(meta->size ? meta->size : 1);
    memcpy(d->snap.data, data, meta->size);
}

bool sim_disk_empty(const struct sim_disk *d)
{
    return !d->have_hs && d->n_log == 0 && !d->snap.have;
}

void sim_disk_free(struct sim_disk *d)
{
    log_drop_from(d, 0);
    for (size_t i = 0; i < d->n_log; i++)
        free((void *)d->log[i].data);
    free(d->log);
    free(d->log_crc);
    snap_clear(&d->snap);
    snap_clear(&d->prev);
    snap_clear(&d->partial);
    for (size_t i = 0; i < d->cap_pending; i++)
        sim_bytes_free(&d->pending[i]);
    free(d->pending);
    memset(d, 0, sizeof *d);
}

/* ---- Bit rot at rest, and the checks of a start ------------------------------------------ */

static void flip(uint8_t *p, size_t len, uint64_t *rng)
{
    p[sim_range(rng, 0, len - 1)] ^= (uint8_t)(1u << sim_range(rng, 0, 7));
}

bool sim_disk_rot(struct sim_disk *d, enum sim_rot what, uint64_t *rng)
{
    switch (what) {
    case ROT_ENTRY:
    case ROT_LAST_ENTRY: {
        /* Entries with data: a no-op has none, and a flipped header bit is
         * caught by the same checksum as a flipped data bit. */
        size_t k = d->n_log;
        if (what == ROT_LAST_ENTRY) {
            if (d->n_log && d->log[d->n_log - 1].len)
                k = d->n_log - 1;
        } else {
            size_t with[64], m = 0;
            for (size_t i = 0; i < d->n_log && m < 64; i++)
                if (d->log[i].len)
                    with[m++] = i;
            if (m)
                k = with[sim_range(rng, 0, m - 1)];
        }
        if (k == d->n_log)
            return false;
        flip((uint8_t *)d->log[k].data, d->log[k].len, rng);
        return true;
    }
    case ROT_SNAPSHOT:
        if (!d->snap.have || !d->snap.meta.size)
            return false;
        flip(d->snap.data, d->snap.meta.size, rng);
        return true;
    case ROT_HARD_STATE:
        if (!d->have_hs)
            return false;
        d->hs_rotten = true;
        return true;
    }
    return false;
}

void sim_disk_check(struct sim_disk *d, struct sim_disk_check *out)
{
    memset(out, 0, sizeof *out);
    if (d->hs_rotten) {
        out->refuse = true;
        snprintf(out->why, sizeof out->why, "the hard state's record does not check");
        return;
    }
    for (size_t i = 0; i < d->n_log; i++) {
        if (crc32c(d->log[i].data, d->log[i].len) == d->log_crc[i])
            continue;
        if (i + 1 < d->n_log) {
            out->refuse = true;
            snprintf(out->why, sizeof out->why, "entry %llu's record does not check and records follow it",
                     (unsigned long long)d->log[i].index);
            return;
        }
        out->tail_cut = true;
        out->cut_index = d->log[i].index;
        log_drop_from(d, d->log[i].index);
    }
    if (d->snap.have && crc32c(d->snap.data, d->snap.meta.size) != d->snap.meta.crc)
        out->snapshot_damaged = true;
}
