/*
 * fuzz_segment.c — libFuzzer driver for the log segment scan at start
 * (st_segment_scan and the recovery around it in storage_open;
 * src/storage/segment.c, storage.c). The input, after a mode byte, is the
 * content of log segment 1 of a data directory on the simulated disk
 * (tests/lib/memfs.c); storage_open recovers the directory.
 *
 * The mode byte's bits rewrite the file so the fuzzer gets past the
 * checksums, as a disk would never do but a crash or a bit flip after them
 * might: bit 0 gives the segment a valid header (first index 1), bit 1
 * gives every record whose header fits a valid header checksum (and data
 * checksum if its data fits), bit 2 numbers the records 1, 2, 3... . Bit 3
 * puts an empty segment 2 after it, so it is not the last one and nothing
 * in it may be cut as a torn write. Bit 4 leaves out the hard state file
 * (a log without one is refused); else it holds term 1 and no vote.
 *
 * Properties: a refusal is ECORRUPT with a message naming the directory and
 * changes no file. An accepted log is the file's records from the start:
 * entries 1..n, terms never going down, each encoding to the bytes it came
 * from; what followed them is cut from the file (and only in the last
 * segment) and reported as a torn tail; a second open finds the same log
 * with nothing left to recover; and the log takes a new entry after it.
 */
#include "fuzz.h"

#include <string.h>

#include "../tests/lib/memfs.h"
#include "common/crc32c.h"
#include "storage.h"
#include "storage/internal.h"

#define FZ_SEG_DIR "d"
#define FZ_SEG_1 FZ_SEG_DIR "/log-00000000000000000001.seg"
#define FZ_SEG_2 FZ_SEG_DIR "/log-00000000000000000002.seg"

static void fz_seg_header(uint8_t *h, uint64_t seq, uint64_t first)
{
    memset(h, 0, ST_SEG_HEADER_BYTES);
    memcpy(h, ST_SEG_MAGIC, 8);
    st_put32(h + 8, ST_FORMAT_VERSION);
    st_put64(h + 16, seq);
    st_put64(h + 24, first);
    st_put32(h + 36, crc32c(h, 36));
}

/* The fix-ups of the mode byte; returns the records whose length fits or
 * does not (the index the next segment starts after). */
static uint64_t fz_seg_fixup(uint8_t *b, size_t n, uint8_t mode)
{
    if ((mode & 1) && n >= ST_SEG_HEADER_BYTES)
        fz_seg_header(b, 1, 1);
    uint64_t k = 0;
    size_t off = ST_SEG_HEADER_BYTES;
    while (off + ST_REC_HEADER_BYTES <= n) {
        uint8_t *r = b + off;
        uint32_t len = st_get32(r);
        if (mode & 4)
            st_put64(r + 16, k + 1);
        uint64_t total = st_rec_bytes(len);
        bool fits = len <= ST_MAX_ENTRY_BYTES && total <= n - off;
        if (mode & 2) {
            if (fits)
                st_put32(r + 24, len ? crc32c(r + ST_REC_HEADER_BYTES, len) : 0);
            st_put32(r + 28, crc32c(r, 28));
        }
        k++;
        if (!fits)
            break;
        off += (size_t)total;
    }
    return k;
}

static struct storage *fz_seg_open(struct memfs *m, struct storage_state *st, int *rc, char *err, size_t cap)
{
    struct storage *s = NULL;
    err[0] = 0;
    *rc = storage_open(FZ_SEG_DIR, memfs_io(m), NULL, &s, st, err, cap);
    return *rc == STORAGE_OK ? s : NULL;
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    static uint8_t file[1 << 17];
    if (size == 0 || size - 1 > sizeof file)
        return 0;
    uint8_t mode = data[0];
    size_t n = size - 1;
    memcpy(file, data + 1, n);
    uint64_t walked = fz_seg_fixup(file, n, mode);
    bool last = !(mode & 8);

    struct memfs *m = memfs_create();
    FUZZ_CHECK(m && memfs_io(m)->mkdir(memfs_io(m)->ctx, FZ_SEG_DIR, 0700) == 0);
    FUZZ_CHECK(memfs_write_file(m, FZ_SEG_1, file, n) == 0);
    if (!(mode & 16)) {
        /* Term 1, no vote: below the log's terms, open raises it. */
        uint8_t hsb[ST_HS_BYTES];
        st_hs_encode(&(struct raft_hard_state){ .term = 1 }, hsb);
        FUZZ_CHECK(memfs_write_file(m, FZ_SEG_DIR "/" ST_HS_NAME, hsb, sizeof hsb) == 0);
    }
    uint8_t next[ST_SEG_HEADER_BYTES];
    if (!last) {
        fz_seg_header(next, 2, walked + 1);
        FUZZ_CHECK(memfs_write_file(m, FZ_SEG_2, next, sizeof next) == 0);
    }

    struct storage_state st;
    char err[2048];
    int rc;
    struct storage *s = fz_seg_open(m, &st, &rc, err, sizeof err);
    size_t now_len = 0;
    uint8_t *now = memfs_read_file(m, FZ_SEG_1, &now_len);
    if (!s) {
        FUZZ_CHECK(rc == STORAGE_ECORRUPT);
        FUZZ_CHECK(strstr(err, FZ_SEG_DIR "/") != NULL);
        FUZZ_CHECK(now && now_len == n && !memcmp(now, file, n)); /* nothing changed */
        free(now);
        memfs_destroy(m);
        return 0;
    }

    /* The log is the file's records from the start, and nothing else. */
    FUZZ_CHECK(!st.have_snapshot);
    static uint8_t rec[ST_REC_HEADER_BYTES + (1 << 17) + 8];
    size_t off = ST_SEG_HEADER_BYTES;
    for (size_t i = 0; i < st.n_entries; i++) {
        const struct raft_entry *e = &st.entries[i];
        FUZZ_CHECK(e->index == i + 1 && e->term >= 1);
        FUZZ_CHECK(i == 0 || e->term >= st.entries[i - 1].term);
        FUZZ_CHECK(e->type >= RAFT_ENTRY_COMMAND && e->type <= RAFT_ENTRY_CONFIG);
        uint64_t total = st_rec_bytes(e->len);
        FUZZ_CHECK(total <= n - off && total <= sizeof rec);
        st_record_encode(e, rec);
        FUZZ_CHECK(memcmp(rec, file + off, (size_t)total) == 0);
        off += (size_t)total;
    }
    FUZZ_CHECK(st.hard_state.term >= (st.n_entries ? st.entries[st.n_entries - 1].term : 0));
    /* What followed is cut, in the last segment only. */
    FUZZ_CHECK(st.torn_tail_truncated == (off < n));
    FUZZ_CHECK(last || off == n);
    FUZZ_CHECK(!st.tail_maybe_acked || st.torn_tail_truncated);
    FUZZ_CHECK(now && now_len == off && !memcmp(now, file, off));
    free(now);
    raft_index n_entries = st.n_entries;
    raft_term last_term = n_entries ? st.entries[n_entries - 1].term : 1;
    struct raft_hard_state hs = st.hard_state;
    storage_state_free(&st);
    storage_close(s);

    /* Recovery is done: a second open finds the same log and nothing to do. */
    s = fz_seg_open(m, &st, &rc, err, sizeof err);
    FUZZ_CHECK(s != NULL);
    FUZZ_CHECK(st.n_entries == n_entries && !st.torn_tail_truncated && st.recovery_note[0] == 0);
    FUZZ_CHECK(st.hard_state.term == hs.term && st.hard_state.vote == hs.vote);
    storage_state_free(&st);

    /* And the log continues after it. */
    uint8_t one = 7;
    struct raft_entry e = { .index = n_entries + 1, .term = last_term, .type = RAFT_ENTRY_COMMAND, .len = 1,
                            .data = &one };
    FUZZ_CHECK(storage_append(s, &e, 1) == STORAGE_OK && storage_sync(s) == STORAGE_OK);
    storage_close(s);
    s = fz_seg_open(m, &st, &rc, err, sizeof err);
    FUZZ_CHECK(s != NULL && st.n_entries == n_entries + 1);
    FUZZ_CHECK(st.entries[n_entries].len == 1 && st.entries[n_entries].data[0] == 7);
    storage_state_free(&st);
    storage_close(s);
    memfs_destroy(m);
    return 0;
}
