/*
 * segment.c — the log's files. A segment "log-<seq>.seg" is a 40-byte header
 * (magic, version, seq, index of its first record, CRC32C) followed by
 * records, each a 32-byte header (length, type, term, index, CRC32C of the
 * data, CRC32C of the header) and the entry's data padded to 8 bytes
 * (docs/disk-format.md has every byte). Segments are created atomically
 * (header written to a temporary name, fdatasynced, renamed, directory
 * fsynced), so a segment that exists always has a whole, durable header.
 *
 * Scanning a segment at open tells a torn tail from corruption. Only the last
 * record of the last segment can be torn by a crash (appends only extend the
 * last segment, and a segment is fdatasynced before the next one is
 * created). So an invalid record there is cut off, but only if no valid
 * record follows it anywhere in the file: a damaged record followed by a
 * good one is damage to data that may have been acknowledged, and the open
 * is refused rather than silently losing committed entries. The separate
 * header checksum lets the scan trust a length before reading that far.
 */
#include "storage/internal.h"

#include "common/crc32c.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void st_segment_name(char *buf, size_t cap, uint64_t seq)
{
    snprintf(buf, cap, "log-%020" PRIu64 ".seg", seq);
}

bool st_segment_parse_name(const char *name, uint64_t *seq)
{
    if (strlen(name) != 4 + 20 + 4 || memcmp(name, "log-", 4) != 0 || strcmp(name + 24, ".seg") != 0)
        return false;
    uint64_t v = 0;
    for (int i = 4; i < 24; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        uint64_t d = (uint64_t)(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *seq = v;
    return true;
}

static void header_encode(uint8_t b[ST_SEG_HEADER_BYTES], uint64_t seq, raft_index first)
{
    memset(b, 0, ST_SEG_HEADER_BYTES);
    memcpy(b, ST_SEG_MAGIC, 8);
    st_put32(b + 8, ST_FORMAT_VERSION);
    st_put64(b + 16, seq);
    st_put64(b + 24, first);
    st_put32(b + 36, crc32c(b, 36));
}

void st_record_encode(const struct raft_entry *e, uint8_t *out)
{
    uint64_t total = st_rec_bytes(e->len);
    memset(out, 0, ST_REC_HEADER_BYTES);
    st_put32(out, e->len);
    out[4] = e->type;
    st_put64(out + 8, e->term);
    st_put64(out + 16, e->index);
    st_put32(out + 24, e->len ? crc32c(e->data, e->len) : 0);
    st_put32(out + 28, crc32c(out, 28));
    if (e->len)
        memcpy(out + ST_REC_HEADER_BYTES, e->data, e->len);
    memset(out + ST_REC_HEADER_BYTES + e->len, 0, total - ST_REC_HEADER_BYTES - e->len);
}

int st_segment_push_off(struct st_segment *g, uint64_t off)
{
    if (g->n == g->cap) {
        uint64_t cap = g->cap ? g->cap * 2 : 64;
        uint64_t *p = realloc(g->offs, cap * sizeof *p);
        if (!p)
            return STORAGE_ENOMEM;
        g->offs = p;
        g->cap = cap;
    }
    g->offs[g->n++] = off;
    return STORAGE_OK;
}

int st_segment_create(struct storage *s, uint64_t seq, raft_index first)
{
    if (s->n_segs == s->cap_segs) {
        size_t cap = s->cap_segs ? s->cap_segs * 2 : 8;
        struct st_segment *p = realloc(s->segs, cap * sizeof *p);
        if (!p)
            return st_fail(s, STORAGE_ENOMEM, "creating a log segment: out of memory");
        s->segs = p;
        s->cap_segs = cap;
    }
    char name[64], tname[80], path[ST_PATH_MAX], tmp[ST_PATH_MAX];
    st_segment_name(name, sizeof name, seq);
    snprintf(tname, sizeof tname, "%s.tmp", name);
    st_path(s, path, name);
    st_path(s, tmp, tname);
    int fd = s->io->open(s->io->ctx, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        int e = errno;
        return st_fail(s, st_errno_rc(e), "creating log segment %s failed: %s", tmp, strerror(e));
    }
    uint8_t h[ST_SEG_HEADER_BYTES];
    header_encode(h, seq, first);
    int rc = st_write_all(s, fd, h, sizeof h, 0, tmp, "writing a segment header");
    if (rc == STORAGE_OK)
        rc = st_sync_fd(s, fd, tmp, "making a new segment durable");
    s->io->close(s->io->ctx, fd);
    if (rc == STORAGE_OK && s->io->rename(s->io->ctx, tmp, path) != 0) {
        int e = errno;
        rc = st_fail(s, st_errno_rc(e), "renaming %s to %s failed: %s", tmp, path, strerror(e));
    }
    if (rc != STORAGE_OK) {
        s->io->unlink(s->io->ctx, tmp); /* best effort; open removes leftovers */
        return rc;
    }
    rc = st_sync_dir(s, "making a new segment's name durable");
    if (rc)
        return rc;
    s->segs[s->n_segs++] = (struct st_segment){ .seq = seq, .first = first, .end = ST_SEG_HEADER_BYTES };
    if (seq >= s->next_seq)
        s->next_seq = seq + 1;
    return STORAGE_OK;
}

int st_segment_open_active(struct storage *s)
{
    char name[64], path[ST_PATH_MAX];
    st_segment_name(name, sizeof name, s->segs[s->n_segs - 1].seq);
    st_path(s, path, name);
    int fd = s->io->open(s->io->ctx, path, O_RDWR, 0);
    if (fd < 0) {
        int e = errno;
        return st_fail(s, STORAGE_EIO, "opening log segment %s for appending failed: %s", path, strerror(e));
    }
    s->active_fd = fd;
    s->active_dirty = false;
    return STORAGE_OK;
}

int st_segment_remove(struct storage *s, size_t i, bool sync_dir)
{
    char name[64], path[ST_PATH_MAX];
    st_segment_name(name, sizeof name, s->segs[i].seq);
    st_path(s, path, name);
    if (i == s->n_segs - 1 && s->active_fd >= 0) {
        st_close(s, s->active_fd);
        s->active_fd = -1;
        s->active_dirty = false;
    }
    int rc = st_unlink(s, path, "removing a log segment");
    if (rc)
        return rc;
    free(s->segs[i].offs);
    memmove(&s->segs[i], &s->segs[i + 1], (s->n_segs - i - 1) * sizeof *s->segs);
    s->n_segs--;
    return sync_dir ? st_sync_dir(s, "making a segment's removal durable") : STORAGE_OK;
}

int st_log_sync(struct storage *s, const char *what)
{
    if (s->active_fd < 0 || !s->active_dirty)
        return STORAGE_OK;
    char name[64], path[ST_PATH_MAX];
    st_segment_name(name, sizeof name, s->segs[s->n_segs - 1].seq);
    st_path(s, path, name);
    int rc = st_sync_fd(s, s->active_fd, path, what);
    if (rc)
        return rc;
    s->stats.other_fsyncs--; /* st_sync_fd counted it as "other"; it is the log's */
    s->stats.fsyncs++;
    s->active_dirty = false;
    return STORAGE_OK;
}

int st_log_reset(struct storage *s, raft_index next)
{
    /* 1. Sync the open segment: its unsynced records are being dropped, but
     *    once the new segment exists it is no longer the last one, and only
     *    the last may end in a torn write.
     * 2. Create the new segment: if that fails (a full disk) nothing changed.
     * 3. Remove the old segments newest first, each removal durable: a crash
     *    half way leaves the new segment and a prefix of the old log, which
     *    open drops because the snapshot covers or contradicts it (§5.3). */
    int rc = st_log_sync(s, "finishing the log a snapshot replaces");
    if (rc)
        return rc;
    rc = st_segment_create(s, s->next_seq, next);
    if (rc)
        return rc;
    st_close(s, s->active_fd);
    s->active_fd = -1;
    s->active_dirty = false;
    while (s->n_segs > 1) {
        rc = st_segment_remove(s, s->n_segs - 2, true);
        if (rc)
            return rc;
    }
    rc = st_segment_open_active(s);
    if (rc)
        return rc;
    s->first_index = next;
    s->last_index = next - 1;
    s->last_term = 0;
    return STORAGE_OK;
}

/* ---- Reading ------------------------------------------------------------ */

/* Whether a whole valid record starts at off: header checksum first, so the
 * length is trusted only once the header is known good. */
static const char *record_check(const uint8_t *buf, uint64_t size, uint64_t off)
{
    if (size - off < ST_REC_HEADER_BYTES)
        return "incomplete record header";
    const uint8_t *h = buf + off;
    if (st_get32(h + 28) != crc32c(h, 28))
        return "record header checksum mismatch";
    if (h[5] || h[6] || h[7])
        return "reserved header bytes are not zero";
    if (h[4] < RAFT_ENTRY_COMMAND || h[4] > RAFT_ENTRY_CONFIG)
        return "unknown entry type";
    uint32_t len = st_get32(h);
    if (len > ST_MAX_ENTRY_BYTES)
        return "record length is too large";
    uint64_t total = st_rec_bytes(len);
    if (size - off < total)
        return "incomplete record (the file ends inside it)";
    if (st_get32(h + 24) != (len ? crc32c(h + ST_REC_HEADER_BYTES, len) : 0))
        return "record data checksum mismatch";
    for (uint64_t i = ST_REC_HEADER_BYTES + len; i < total; i++)
        if (h[i])
            return "record padding is not zero";
    return NULL;
}

static int grow_entries(struct st_scan *sc, uint64_t *cap)
{
    if (sc->seg.n < *cap)
        return STORAGE_OK;
    uint64_t ncap = *cap ? *cap * 2 : 256;
    struct raft_entry *p = realloc(sc->entries, ncap * sizeof *p);
    if (!p)
        return STORAGE_ENOMEM;
    sc->entries = p;
    *cap = ncap;
    return STORAGE_OK;
}

void st_scan_free(struct st_scan *sc)
{
    free(sc->buf);
    free(sc->entries);
    free(sc->seg.offs);
    memset(sc, 0, sizeof *sc);
}

int st_segment_scan(struct storage *s, const char *name, uint64_t seq, bool allow_torn, struct st_scan *sc)
{
    memset(sc, 0, sizeof *sc);
    char path[ST_PATH_MAX];
    st_path(s, path, name);
    int fd = s->io->open(s->io->ctx, path, O_RDONLY, 0);
    if (fd < 0) {
        int e = errno;
        return st_fail(s, STORAGE_EIO, "opening log segment %s failed: %s", path, strerror(e));
    }
    off_t fsize = 0;
    if (s->io->fstat_size(s->io->ctx, fd, &fsize) != 0) {
        int e = errno;
        st_close(s, fd);
        return st_fail(s, STORAGE_EIO, "reading the size of %s failed: %s", path, strerror(e));
    }
    sc->size = (uint64_t)fsize;
    sc->buf = malloc(sc->size ? sc->size : 1);
    if (!sc->buf) {
        st_close(s, fd);
        return st_fail(s, STORAGE_ENOMEM, "reading log segment %s (%llu bytes): out of memory", path,
                       (unsigned long long)sc->size);
    }
    int rc = st_read_all(s, fd, sc->buf, sc->size, 0, path, "reading a log segment");
    st_close(s, fd);
    if (rc)
        return rc;

    const uint8_t *h = sc->buf;
    if (sc->size < ST_SEG_HEADER_BYTES)
        return st_fail(s, STORAGE_ECORRUPT,
                       "log segment %s is damaged: %llu bytes, shorter than its %u-byte header; %s", path,
                       (unsigned long long)sc->size, ST_SEG_HEADER_BYTES, st_restore_advice());
    if (memcmp(h, ST_SEG_MAGIC, 8) != 0)
        return st_fail(s, STORAGE_ECORRUPT, "log segment %s is damaged: bad magic at byte offset 0; %s", path,
                       st_restore_advice());
    if (st_get32(h + 36) != crc32c(h, 36))
        return st_fail(s, STORAGE_ECORRUPT,
                       "log segment %s is damaged: header checksum at byte offset 36 does not match; %s", path,
                       st_restore_advice());
    if (st_get32(h + 8) != ST_FORMAT_VERSION)
        return st_fail(s, STORAGE_ECORRUPT,
                       "log segment %s has format version %u at byte offset 8; this build reads version %u "
                       "(run the linkraft version that wrote it)", path, st_get32(h + 8), ST_FORMAT_VERSION);
    if (st_get64(h + 16) != seq || st_get32(h + 12) || st_get32(h + 32) || st_get64(h + 24) == 0)
        return st_fail(s, STORAGE_ECORRUPT,
                       "log segment %s is damaged: its header (sequence %llu, first index %llu) does not "
                       "match its name or has non-zero reserved bytes; %s", path,
                       (unsigned long long)st_get64(h + 16), (unsigned long long)st_get64(h + 24),
                       st_restore_advice());
    raft_index first = st_get64(h + 24);

    uint64_t cap = 0, off = ST_SEG_HEADER_BYTES;
    raft_term prev_term = 0;
    while (off < sc->size) {
        const char *why = record_check(sc->buf, sc->size, off);
        if (why) {
            if (!allow_torn)
                return st_fail(s, STORAGE_ECORRUPT,
                               "log segment %s is damaged at byte offset %llu: %s; it is not the last "
                               "segment, so this is not a torn write and the entries in it may have been "
                               "committed; %s", path, (unsigned long long)off, why, st_restore_advice());
            for (uint64_t y = off + ST_REC_ALIGN; y + ST_REC_HEADER_BYTES <= sc->size; y += ST_REC_ALIGN)
                if (!record_check(sc->buf, sc->size, y))
                    return st_fail(s, STORAGE_ECORRUPT,
                                   "log segment %s is damaged at byte offset %llu (%s) and a valid record "
                                   "follows at byte offset %llu (index %llu), so this is not a torn write: "
                                   "entries may have been committed and are not dropped; %s", path,
                                   (unsigned long long)off, why, (unsigned long long)y,
                                   (unsigned long long)st_get64(sc->buf + y + 16), st_restore_advice());
            sc->torn = true;
            sc->torn_why = why;
            /* A write a crash cut short ends inside its record, or leaves
             * zeros (space the file system allocated but never wrote). A
             * record all there whose checksum fails may be one that was
             * synced, acknowledged and damaged since. */
            bool zeros = true;
            for (uint64_t z = off; z < sc->size && zeros; z++)
                zeros = sc->buf[z] == 0;
            sc->torn_whole = strncmp(why, "incomplete", 10) != 0 && !zeros;
            break;
        }
        const uint8_t *r = sc->buf + off;
        struct raft_entry e = { .len = st_get32(r), .type = r[4], .term = st_get64(r + 8),
                                .index = st_get64(r + 16) };
        e.data = e.len ? r + ST_REC_HEADER_BYTES : NULL;
        if (e.index != first + sc->seg.n)
            return st_fail(s, STORAGE_ECORRUPT,
                           "log segment %s is damaged at byte offset %llu: record has index %llu where "
                           "%llu was expected (a gap or a stray record); %s", path, (unsigned long long)off,
                           (unsigned long long)e.index, (unsigned long long)(first + sc->seg.n),
                           st_restore_advice());
        if (e.term > RAFT_MAX_TERM) /* open would raise the hard state to it, which is refused next time */
            return st_fail(s, STORAGE_ECORRUPT,
                           "log segment %s is damaged at byte offset %llu: entry %llu has term %llu, at or "
                           "above 2^63, which no linkraft node makes; %s", path, (unsigned long long)off,
                           (unsigned long long)e.index, (unsigned long long)e.term, st_restore_advice());
        if (e.term == 0 || e.term < prev_term)
            return st_fail(s, STORAGE_ECORRUPT,
                           "log segment %s is damaged at byte offset %llu: entry %llu has term %llu after "
                           "term %llu (terms never go down in a log, §3.5); %s", path,
                           (unsigned long long)off, (unsigned long long)e.index, (unsigned long long)e.term,
                           (unsigned long long)prev_term, st_restore_advice());
        if (grow_entries(sc, &cap) || st_segment_push_off(&sc->seg, off))
            return st_fail(s, STORAGE_ENOMEM, "reading log segment %s: out of memory", path);
        sc->entries[sc->seg.n - 1] = e;
        prev_term = e.term;
        off += st_rec_bytes(e.len);
    }
    sc->seg.seq = seq;
    sc->seg.first = first;
    sc->seg.end = off; /* == size unless torn: record_check keeps records inside the file */
    return STORAGE_OK;
}

int st_term_at(struct storage *s, raft_index index, raft_term *term)
{
    size_t lo = 0, hi = s->n_segs;
    while (lo < hi) { /* the last segment with first <= index */
        size_t mid = (lo + hi) / 2;
        if (s->segs[mid].first <= index)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0 || index >= s->segs[lo - 1].first + s->segs[lo - 1].n)
        return st_fail(s, STORAGE_EINVAL, "entry %llu is not in the log", (unsigned long long)index);
    const struct st_segment *g = &s->segs[lo - 1];
    char name[64], path[ST_PATH_MAX];
    st_segment_name(name, sizeof name, g->seq);
    st_path(s, path, name);
    bool active = (lo - 1 == s->n_segs - 1) && s->active_fd >= 0;
    int fd = active ? s->active_fd : s->io->open(s->io->ctx, path, O_RDONLY, 0);
    if (fd < 0) {
        int e = errno;
        return st_fail(s, STORAGE_EIO, "opening log segment %s failed: %s", path, strerror(e));
    }
    uint8_t h[ST_REC_HEADER_BYTES];
    uint64_t off = g->offs[index - g->first];
    int rc = st_read_all(s, fd, h, sizeof h, off, path, "reading a record header");
    if (!active)
        st_close(s, fd);
    if (rc)
        return rc;
    if (st_get32(h + 28) != crc32c(h, 28) || st_get64(h + 16) != index)
        return st_fail(s, STORAGE_ECORRUPT,
                       "log segment %s is damaged at byte offset %llu: the record of entry %llu no longer "
                       "checks out; %s", path, (unsigned long long)off, (unsigned long long)index,
                       st_restore_advice());
    *term = st_get64(h + 8);
    return STORAGE_OK;
}
