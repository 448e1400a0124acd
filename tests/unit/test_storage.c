/*
 * test_storage.c — durable storage on a real temporary directory through the
 * POSIX seam: round trip, group commit, torn tails cut at every byte offset,
 * bit flips in every byte of the last and of a middle record, damaged headers
 * and small files refused with a message naming file and offset, gaps and
 * terms going down, snapshots (adopt, chunked install, read, CRC refusal,
 * compaction, a log older than the snapshot), truncation across segments,
 * and the time to open 100k entries (printed, never asserted). Faults
 * injected through the seam and crashes are in test_storage_faults.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../harness.h"
#include "common/crc32c.h"
#include "storage.h"

static char root[64];     /* mkdtemp'd */
/* The term the tests last recorded in the hard state: entries of a higher
 * term are preceded by a hard state with their term, as the core does. */
static raft_term hs_term;

/* The POSIX seam with fdatasync made a no-op: the loops below open a
 * directory hundreds of times to test recovery logic, which does not depend
 * on the disk's flush, and real flushes would make them take many seconds.
 * Tests that want the real seam set cur_io to NULL (storage_io_posix()). */
static struct storage_io fast_io;
static const struct storage_io *cur_io = &fast_io;
static int no_sync(void *ctx, int fd) { (void)ctx; (void)fd; return 0; }
static char dir[128];     /* root/data: storage creates it */

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}
static void rm_tree(const char *path) { nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static void fresh_root(void)
{
    if (root[0])
        rm_tree(root);
    snprintf(root, sizeof root, "/tmp/lkstorage-XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        exit(2);
    }
    snprintf(dir, sizeof dir, "%s/data", root);
    hs_term = 0;
}

/* ---- entries ---------------------------------------------------------- */

static uint8_t payload[1 << 16];

static void init_payload(void)
{
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof payload; i++) {
        x = x * 1103515245u + 12345u;
        payload[i] = (uint8_t)(x >> 16);
    }
}

/* Entry i of term t, len bytes taken from payload at an offset that
 * depends on i and t, so different terms have different data. */
static struct raft_entry E(raft_index i, raft_term t, uint32_t len)
{
    return (struct raft_entry){ .term = t, .index = i, .type = RAFT_ENTRY_COMMAND, .len = len,
                                .data = len ? payload + ((i * 7 + t * 131) % 1000) : NULL };
}

static uint32_t len_of(raft_index i) { return (uint32_t)(i * 13 % 97); }


static int append_range(struct storage *s, raft_index from, raft_index to, raft_term t)
{
    if (t > hs_term) {
        struct raft_hard_state hs = { t, 0 };
        int rc = storage_set_hard_state(s, &hs);
        if (rc)
            return rc;
        hs_term = t;
    }
    for (raft_index i = from; i <= to; i++) {
        struct raft_entry e = E(i, t, len_of(i));
        int rc = storage_append(s, &e, 1);
        if (rc)
            return rc;
    }
    return STORAGE_OK;
}

static bool same_entry(const struct raft_entry *a, const struct raft_entry *b)
{
    return a->index == b->index && a->term == b->term && a->type == b->type && a->len == b->len &&
           (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* The state holds exactly from..to of term t (as append_range wrote them). */
static bool has_range(const struct storage_state *st, raft_index from, raft_index to, raft_term t)
{
    if (st->n_entries != (to >= from ? to - from + 1 : 0))
        return false;
    for (raft_index i = from; i <= to; i++) {
        struct raft_entry e = E(i, t, len_of(i));
        if (!same_entry(&st->entries[i - from], &e))
            return false;
    }
    return true;
}

static struct storage_options small_segments(uint64_t bytes)
{
    struct storage_options o;
    storage_options_default(&o);
    o.segment_bytes = bytes;
    return o;
}

static char errbuf[8192];

static struct storage *open_ok(const struct storage_options *o, struct storage_state *st)
{
    struct storage *s = NULL;
    int rc = storage_open(dir, cur_io, o, &s, st, errbuf, sizeof errbuf);
    if (rc) {
        fprintf(stderr, "  storage_open: %s: %s\n", storage_strerror(rc), errbuf);
        return NULL;
    }
    return s;
}

static int open_rc(const struct storage_options *o)
{
    struct storage *s = NULL;
    struct storage_state st;
    int rc = storage_open(dir, cur_io, o, &s, &st, errbuf, sizeof errbuf);
    if (rc == STORAGE_OK) {
        storage_state_free(&st);
        storage_close(s);
    }
    return rc;
}

/* ---- files -------------------------------------------------------------- */

static char seg_names[64][256];
static int n_seg_names;

static int cmp_str(const void *a, const void *b) { return strcmp(a, b); }

static void list_segments(void)
{
    n_seg_names = 0;
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) && n_seg_names < 64)
        if (strncmp(de->d_name, "log-", 4) == 0)
            snprintf(seg_names[n_seg_names++], sizeof seg_names[0], "%s", de->d_name);
    closedir(d);
    qsort(seg_names, (size_t)n_seg_names, sizeof seg_names[0], cmp_str);
}

static bool file_exists(const char *name)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

static uint8_t *read_file(const char *name, size_t *len)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    *len = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
}

static void write_file(const char *name, const uint8_t *b, size_t len)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f)
        return;
    fwrite(b, 1, len, f);
    fclose(f);
}

/* A digest of every file in dir, names and contents (order-independent):
 * equal before and after a refused open means it changed nothing. */
static uint64_t dir_digest(void)
{
    uint64_t sum = 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        size_t len = 0;
        uint8_t *b = read_file(de->d_name, &len);
        uint64_t h = (uint64_t)crc32c((const uint8_t *)de->d_name, strlen(de->d_name)) << 32 |
                     (b ? crc32c(b, len) : 0);
        sum += h * 0x9E3779B97F4A7C15ull + len;
        free(b);
    }
    closedir(d);
    return sum;
}

static void write_path(const char *path, const uint8_t *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return;
    fwrite(b, 1, len, f);
    fclose(f);
}

/* Record offsets in a segment file, computed from the documented layout
 * (docs/disk-format.md): 40-byte header, records of 32 + len padded to 8. */
static size_t rec_offset(const uint8_t *seg, size_t len, int k)
{
    size_t off = 40;
    for (int i = 0; i < k && off + 32 <= len; i++) {
        uint32_t n = (uint32_t)seg[off] | (uint32_t)seg[off + 1] << 8 | (uint32_t)seg[off + 2] << 16 |
                     (uint32_t)seg[off + 3] << 24;
        off += 32 + ((n + 7u) & ~7u);
    }
    return off;
}

/* A record built independently of the module, from the documented layout. */
static size_t encode_record(uint8_t *out, raft_index index, raft_term term, const uint8_t *data, uint32_t len)
{
    memset(out, 0, 32);
    for (int i = 0; i < 4; i++)
        out[i] = (uint8_t)(len >> (8 * i));
    out[4] = RAFT_ENTRY_COMMAND;
    for (int i = 0; i < 8; i++) {
        out[8 + i] = (uint8_t)(term >> (8 * i));
        out[16 + i] = (uint8_t)(index >> (8 * i));
    }
    uint32_t dc = len ? crc32c(data, len) : 0;
    for (int i = 0; i < 4; i++)
        out[24 + i] = (uint8_t)(dc >> (8 * i));
    uint32_t hc = crc32c(out, 28);
    for (int i = 0; i < 4; i++)
        out[28 + i] = (uint8_t)(hc >> (8 * i));
    memcpy(out + 32, data, len);
    size_t total = 32 + ((len + 7u) & ~7u);
    memset(out + 32 + len, 0, total - 32 - len);
    return total;
}

/* Writes entries 1..n (term 1) with a hard state {1, 1}, one segment. */
static void make_log(raft_index n)
{
    fresh_root();
    struct storage_state st;
    struct storage *s = open_ok(NULL, &st);
    if (!s)
        return;
    storage_state_free(&st);
    append_range(s, 1, n, 1);
    struct raft_hard_state hs = { 1, 1 };
    storage_set_hard_state(s, &hs);
    storage_sync(s);
    storage_close(s);
}

/* ---- tests ---------------------------------------------------------------- */

TEST(fresh_directory_is_created_and_empty)
{
    fresh_root();
    struct storage_state st;
    struct storage *s = open_ok(NULL, &st);
    REQUIRE(s);
    CHECK(st.fresh);
    CHECK_EQ_U(st.n_entries, 0);
    CHECK_EQ_U(st.hard_state.term, 0);
    CHECK(!st.have_snapshot);
    CHECK_STR(st.recovery_note, "");
    CHECK(storage_snapshot_path(s) == NULL);
    storage_state_free(&st);
    storage_close(s);
    /* An earlier open that wrote nothing leaves the directory fresh. */
    s = open_ok(NULL, &st);
    REQUIRE(s);
    CHECK(st.fresh);
    storage_state_free(&st);
    storage_close(s);
}

TEST(round_trip_entries_and_hard_state_across_segments)
{
    fresh_root();
    cur_io = NULL; /* the real seam, real fdatasync */
    struct storage_options o = small_segments(1024);
    struct storage_state st;
    struct storage *s = open_ok(&o, &st);
    REQUIRE(s);
    storage_state_free(&st);
    CHECK_EQ_I(append_range(s, 1, 60, 1), STORAGE_OK);
    CHECK_EQ_I(append_range(s, 61, 80, 3), STORAGE_OK);
    struct raft_hard_state hs = { 3, 2 };
    CHECK_EQ_I(storage_set_hard_state(s, &hs), STORAGE_OK);
    CHECK_EQ_I(storage_sync(s), STORAGE_OK);
    struct storage_stats stats;
    storage_get_stats(s, &stats);
    CHECK(stats.segments > 3);
    CHECK_EQ_U(stats.entries_appended, 80);
    storage_close(s);
    list_segments();
    CHECK(n_seg_names > 3);

    s = open_ok(&o, &st);
    REQUIRE(s);
    CHECK(!st.fresh);
    CHECK(!st.torn_tail_truncated);
    CHECK_EQ_U(st.hard_state.term, 3);
    CHECK_EQ_U(st.hard_state.vote, 2);
    REQUIRE(st.n_entries == 80);
    struct storage_state part = st;
    part.n_entries = 60;
    CHECK(has_range(&part, 1, 60, 1));
    for (raft_index i = 61; i <= 80; i++) {
        struct raft_entry e = E(i, 3, len_of(i));
        CHECK(same_entry(&st.entries[i - 1], &e));
    }
    /* The recovered state fits the core's own check. */
    struct raft_options ro;
    raft_options_default(&ro, 1, 1);
    struct raft *r = raft_create(&ro);
    CHECK_EQ_I(raft_restore(r, &st.hard_state, NULL, st.entries, st.n_entries, 0), RAFT_OK);
    CHECK_EQ_U(raft_last_index(r), 80);
    raft_destroy(r);
    storage_state_free(&st);
    /* The log continues after a reopen. */
    CHECK_EQ_I(append_range(s, 81, 82, 3), STORAGE_OK);
    CHECK_EQ_I(storage_sync(s), STORAGE_OK);
    storage_close(s);
    s = open_ok(&o, &st);
    REQUIRE(s);
    CHECK_EQ_U(st.n_entries, 82);
    storage_state_free(&st);
    storage_close(s);
    cur_io = &fast_io;
}

TEST(group_commit_is_one_fdatasync)
{
    fresh_root();
    struct storage_state st;
    struct storage *s = open_ok(NULL, &st);
    REQUIRE(s);
    storage_state_free(&st);
    struct storage_stats a, b;
    storage_get_stats(s, &a);
    for (raft_index i = 1; i <= 100; i++) {
        struct raft_entry e = E(i, 1, 200);
        CHECK_EQ_I(storage_append(s, &e, 1), STORAGE_OK);
    }
    CHECK_EQ_I(storage_sync(s), STORAGE_OK);
    storage_get_stats(s, &b);
    CHECK_EQ_U(b.fsyncs - a.fsyncs, 1);
    CHECK_EQ_U(b.entries_appended, 100);
    CHECK_EQ_U(b.bytes_appended, 100 * (32 + 200));
    /* Nothing new: no fsync at all. */
    CHECK_EQ_I(storage_sync(s), STORAGE_OK);
    storage_get_stats(s, &a);
    CHECK_EQ_U(a.fsyncs, b.fsyncs);
    CHECK_EQ_U(a.other_fsyncs, b.other_fsyncs);
    storage_close(s);
}

TEST(append_refuses_gaps_bad_terms_and_types)
{
    fresh_root();
    struct storage_state st;
    struct storage *s = open_ok(NULL, &st);
    REQUIRE(s);
    storage_state_free(&st);
    CHECK_EQ_I(append_range(s, 1, 5, 2), STORAGE_OK);
    struct raft_entry gap = E(7, 2, 3), down = E(6, 1, 3), zero = E(6, 0, 3), bad = E(6, 2, 3);
    bad.type = 9;
    CHECK_EQ_I(storage_append(s, &gap, 1), STORAGE_EINVAL);
    CHECK(strstr(storage_errmsg(s), "index 7"));
    CHECK_EQ_I(storage_append(s, &down, 1), STORAGE_EINVAL);
    CHECK_EQ_I(storage_append(s, &zero, 1), STORAGE_EINVAL);
    CHECK_EQ_I(storage_append(s, &bad, 1), STORAGE_EINVAL);
    struct raft_entry nodata = E(6, 2, 3);
    nodata.data = NULL;
    CHECK_EQ_I(storage_append(s, &nodata, 1), STORAGE_EINVAL);
    struct raft_hard_state hs = { 2, 1 }, lower = { 1, 0 };
    CHECK_EQ_I(storage_set_hard_state(s, &hs), STORAGE_OK);
    CHECK_EQ_I(storage_sync(s), STORAGE_OK);
    CHECK_EQ_I(storage_set_hard_state(s, &lower), STORAGE_EINVAL);
    /* Nothing of the refused appends was written. */
    CHECK_EQ_I(append_range(s, 6, 6, 2), STORAGE_OK);
    CHECK_EQ_I(storage_sync(s), STORAGE_OK);
    storage_close(s);
    s = open_ok(NULL, &st);
    REQUIRE(s);
    CHECK(has_range(&st, 1, 6, 2));
    storage_state_free(&st);
    storage_close(s);
}

TEST(torn_tail_cut_at_every_byte_offset)
{
    make_log(5);
    list_segments();
    REQUIRE(n_seg_names == 1);
    char name[256];
    snprintf(name, sizeof name, "%s", seg_names[0]);
    size_t len;
    uint8_t *orig = read_file(name, &len);
    REQUIRE(orig);
    size_t last = rec_offset(orig, len, 4);
    REQUIRE(last < len);
    int bad = 0;
    for (size_t cut = last + 1; cut < len; cut++) {
        write_file(name, orig, cut);
        struct storage_state st;
        struct storage *s = open_ok(NULL, &st);
        if (!s) {
            bad++;
            continue;
        }
        if (!has_range(&st, 1, 4, 1) || !st.torn_tail_truncated || !strstr(st.recovery_note, "cut short"))
            bad++;
        if (st.tail_maybe_acked) /* ends inside its record: a write cut short, never acknowledged */
            bad++;
        storage_state_free(&st);
        /* The cut is on disk and the log continues where it ends. */
        size_t now;
        uint8_t *b = read_file(name, &now);
        if (now != last)
            bad++;
        free(b);
        if (append_range(s, 5, 5, 1) || storage_sync(s))
            bad++;
        storage_close(s);
        s = open_ok(NULL, &st);
        if (!s || !has_range(&st, 1, 5, 1) || st.torn_tail_truncated)
            bad++;
        if (s) {
            storage_state_free(&st);
            storage_close(s);
        }
    }
    CHECK_EQ_I(bad, 0);
    /* Cut exactly at a record boundary: not torn at all. */
    write_file(name, orig, last);
    struct storage_state st;
    struct storage *s = open_ok(NULL, &st);
    REQUIRE(s);
    CHECK(has_range(&st, 1, 4, 1));
    CHECK(!st.torn_tail_truncated);
    storage_state_free(&st);
    storage_close(s);
    free(orig);
}

TEST(zero_padding_after_the_last_record_is_a_torn_tail)
{
    make_log(5);
    list_segments();
    size_t len;
    uint8_t *orig = read_file(seg_names[0], &len);
    REQUIRE(orig);
    size_t pads[] = { 1, 7, 8, 32, 4096 };
    for (size_t k = 0; k < sizeof pads / sizeof pads[0]; k++) {
        uint8_t *b = calloc(1, len + pads[k]);
        memcpy(b, orig, len);
        write_file(seg_names[0], b, len + pads[k]);
        free(b);
        struct storage_state st;
        struct storage *s = open_ok(NULL, &st);
        REQUIRE(s);
        CHECK(has_range(&st, 1, 5, 1));
        CHECK(st.torn_tail_truncated);
        CHECK(!st.tail_maybe_acked);
        storage_state_free(&st);
        storage_close(s);
        size_t now;
        free(read_file(seg_names[0], &now));
        CHECK_EQ_U(now, len);
    }
    free(orig);
}

TEST(bit_flip_in_every_byte_of_the_last_record_is_a_torn_tail)
{
    make_log(5);
    list_segments();
    char name[256];
    snprintf(name, sizeof name, "%s", seg_names[0]);
    size_t len;
    uint8_t *orig = read_file(name, &len);
    REQUIRE(orig);
    size_t last = rec_offset(orig, len, 4);
    int bad = 0, tried = 0;
    for (size_t off = last; off < len; off++) {
        for (int bit = 0; bit < 8; bit++) {
            orig[off] ^= (uint8_t)(1u << bit);
            write_file(name, orig, len);
            orig[off] ^= (uint8_t)(1u << bit);
            struct storage_state st;
            struct storage *s = open_ok(NULL, &st);
            tried++;
            if (!s) {
                fprintf(stderr, "  flip at %zu bit %d refused\n", off, bit);
                bad++;
                continue;
            }
            if (!has_range(&st, 1, 4, 1) || !st.torn_tail_truncated)
                bad++;
            /* Cut, but not called a write that was never acknowledged: a
             * flipped bit may be in a record that was synced (issue 17). */
            if (!strstr(st.recovery_note, "may have been acknowledged") || !st.tail_maybe_acked)
                bad++;
            storage_state_free(&st);
            storage_close(s);
        }
    }
    CHECK_EQ_I(bad, 0);
    CHECK(tried >= 8 * 32);
    free(orig);
}

TEST(bit_flip_in_every_byte_of_a_middle_record_is_corruption)
{
    make_log(5);
    list_segments();
    char name[256];
    snprintf(name, sizeof name, "%s", seg_names[0]);
    size_t len;
    uint8_t *orig = read_file(name, &len);
    REQUIRE(orig);
    size_t mid = rec_offset(orig, len, 2), next = rec_offset(orig, len, 3);
    char want_off[64];
    snprintf(want_off, sizeof want_off, "byte offset %zu", mid);
    int bad = 0;
    for (size_t off = mid; off < next; off++) {
        for (int bit = 0; bit < 8; bit++) {
            orig[off] ^= (uint8_t)(1u << bit);
            write_file(name, orig, len);
            orig[off] ^= (uint8_t)(1u << bit);
            int rc = open_rc(NULL);
            if (rc != STORAGE_ECORRUPT || !strstr(errbuf, name) || !strstr(errbuf, want_off) ||
                !strstr(errbuf, "--join")) {
                fprintf(stderr, "  flip at %zu bit %d: rc %d: %s\n", off, bit, rc, errbuf);
                bad++;
            }
        }
    }
    CHECK_EQ_I(bad, 0);
    /* Refusing changed nothing: the undamaged file still opens whole. */
    write_file(name, orig, len);
    struct storage_state st;
    struct storage *s = open_ok(NULL, &st);
    REQUIRE(s);
    CHECK(has_range(&st, 1, 5, 1));
    storage_state_free(&st);
    storage_close(s);
    free(orig);
}

TEST(damaged_segment_header_is_corruption)
{
    make_log(3);
    list_segments();
    char name[256];
    snprintf(name, sizeof name, "%s", seg_names[0]);
    size_t len;
    uint8_t *orig = read_file(name, &len);
    REQUIRE(orig);
    int bad = 0;
    for (size_t off = 0; off < 40; off++) {
        orig[off] ^= 0x10;
        write_file(name, orig, len);
        orig[off] ^= 0x10;
        int rc = open_rc(NULL);
        if (rc != STORAGE_ECORRUPT || !strstr(errbuf, name))
            bad++;
    }
    CHECK_EQ_I(bad, 0);
    write_file(name, orig, 20); /* shorter than a header */
    CHECK_EQ_I(open_rc(NULL), STORAGE_ECORRUPT);
    CHECK(strstr(errbuf, "shorter than its 40-byte header"));
    free(orig);
}

TEST(damage_in_an_earlier_segment_is_corruption)
{
    fresh_root();
    struct storage_options o = small_segments(512);
    struct storage_state st;
    struct storage *s = open_ok(&o, &st);
    REQUIRE(s);
    storage_state_free(&st);
    append_range(s, 1, 40, 1);
    storage_sync(s);
    storage_close(s);
    list_segments();
    REQUIRE(n_seg_names >= 3);
    char name[256];
    snprintf(name, sizeof name, "%s", seg_names[0]);
    size_t len;
    uint8_t *b = read_file(name, &len);
    REQUIRE(b);
    /* Even its LAST record: only the last segment can have a torn tail. */
    size_t n_recs = 0;
    while (rec_offset(b, len, (int)n_recs + 1) <= len && rec_offset(b, len, (int)n_recs) < len)
        n_recs++;
    size_t lastrec = rec_offset(b, len, (int)n_recs - 1);
    b[lastrec + 33] ^= 1;
    write_file(name, b, len);
    CHECK_EQ_I(open_rc(&o), STORAGE_ECORRUPT);
    CHECK(strstr(errbuf, name));
    CHECK(strstr(errbuf, "not the last segment"));
    b[lastrec + 33] ^= 1;
    write_file(name, b, len - 8); /* cut inside it */
    CHECK_EQ_I(open_rc(&o), STORAGE_ECORRUPT);
    free(b);
}

TEST(missing_middle_segment_is_a_gap)
{
    fresh_root();
    struct storage_options o = small_segments(512);
    struct storage_state st;
    struct storage *s = open_ok(&o, &st);
    REQUIRE(s);
    storage_state_free(&st);
    append_range(s, 1, 40, 1);
    storage_sync(s);
    storage_close(s);
    list_segments();
    REQUIRE(n_seg_names >= 3);
    char p[1024];
    snprintf(p, sizeof p, "%s/%.255s", dir, seg_names[1]);
    unlink(p);
    CHECK_EQ_I(open_rc(&o), STORAGE_ECORRUPT);
    CHECK(strstr(errbuf, seg_names[2]));
    CHECK(strstr(errbuf, "gap"));
    /* Without its first segment the log does not start at 1. */
    snprintf(p, sizeof p, "%s/%.255s", dir, seg_names[0]);
    unlink(p);
    CHECK_EQ_I(open_rc(&o), STORAGE_ECORRUPT);
    CHECK(strstr(errbuf, "must start at 1"));
}

TEST(valid_records_that_do_not_fit_are_corruption)
{
    make_log(3);
    list_segments();
    char name[256];
    snprintf(name, sizeof name, "%s", seg_names[0]);
    size_t len;
    uint8_t *orig = read_file(name, &len);
    REQUIRE(orig);
    uint8_t *b = malloc(len + 256);
    uint8_t rec[256];
    /* A well-formed record 4 with a term below entry 3's. */
    memcpy(b, orig, len);
    struct raft_entry e4 = E(4, 1, 5);
    size_t n = encode_record(rec, 4, 0, e4.data, 5);
    memcpy(b + len, rec, n);
    write_file(name, b, len + n);
    CHECK_EQ_I(open_rc(NULL), STORAGE_ECORRUPT);
    CHECK(strstr(errbuf, "term"));
    /* A well-formed record with index 5 where 4 belongs. */
    n = encode_record(rec, 5, 1, e4.data, 5);
    memcpy(b + len, rec, n);
    write_file(name, b, len + n);
    CHECK_EQ_I(open_rc(NULL), STORAGE_ECORRUPT);
    CHECK(strstr(errbuf, "index 5 where 4 was expected"));
    char off[64];
    snprintf(off, sizeof off, "byte offset %zu", len);
    CHECK(strstr(errbuf, off));
    /* The documented layout is what the module reads: a correct record 4 joins the log. */
    n = encode_record(rec, 4, 1, e4.data, 5);
    memcpy(b + len, rec, n);
    write_file(name, b, len + n);
    struct storage_state st;
    struct storage *s = open_ok(NULL, &st);
    REQUIRE(s);
    CHECK_EQ_U(st.n_entries, 4);
    CHECK_EQ_U(st.entries[3].term, 1);
    CHECK_EQ_U(st.entries[3].len, 5);
    CHECK(memcmp(st.entries[3].data, e4.data, 5) == 0);
    storage_state_free(&st);
    storage_close(s);
    free(b);
    free(orig);
}

TEST(hard_state_term_below_the_log_is_raised_without_a_vote)
{
    /* Entries of a new term can be durable before that term (a full segment
     * is synced mid-append); open raises the term, never keeps the vote. */
    make_log(3);
    list_segments();
    size_t len;
    uint8_t *orig = read_file(seg_names[0], &len);
    REQUIRE(orig);
    uint8_t *b = malloc(len + 64), rec[64];
    memcpy(b, orig, len);
    struct raft_entry e4 = E(4, 2, 5);
    size_t n = encode_record(rec, 4, 2, e4.data, 5);
    memcpy(b + len, rec, n);
    write_file(seg_names[0], b, len + n); /* hardstate still says term 1, vote 1 */
    struct storage_state st;
    struct storage *s = open_ok(NULL, &st);
    REQUIRE(s);
    CHECK_EQ_U(st.hard_state.term, 2);
    CHECK_EQ_U(st.hard_state.vote, 0);
    CHECK(strstr(st.recovery_note, "raised the term from 1 to 2"));
    CHECK_EQ_U(st.n_entries, 4);
    storage_state_free(&st);
    storage_close(s);
    s = open_ok(NULL, &st); /* durable: nothing to do the second time */
    REQUIRE(s);
    CHECK_EQ_U(st.hard_state.term, 2);
    CHECK_STR(st.recovery_note, "");
    storage_state_free(&st);
    storage_close(s);
    free(b);
    free(orig);
}

/* A hard state with a term at or above 2^63 (a forged message of an older
 * build, or a hand-edited file with a valid checksum) is refused at open,
 * naming the file and the term: the raft core never adopts such a term. */
TEST(hard_state_term_at_or_above_2_63_is_refused)
{
    make_log(3);
    size_t len;
    uint8_t *b = read_file("hardstate", &len);
    REQUIRE(b && len == 40);
    const raft_term terms[] = { RAFT_MAX_TERM + 1, UINT64_MAX - 1, RAFT_MAX_TERM };
    for (size_t k = 0; k < sizeof terms / sizeof terms[0]; k++) {
        for (int i = 0; i < 8; i++)
            b[16 + i] = (uint8_t)(terms[k] >> (8 * i));
        uint32_t c = crc32c(b, 36);
        for (int i = 0; i < 4; i++)
            b[36 + i] = (uint8_t)(c >> (8 * i));
        write_file("hardstate", b, len);
        int rc = open_rc(NULL);
        if (terms[k] > RAFT_MAX_TERM) {
            CHECK_EQ_I(rc, STORAGE_ECORRUPT);
            CHECK(strstr(errbuf, "hardstate") && strstr(errbuf, "2^63"));
        } else {
            CHECK_EQ_I(rc, STORAGE_OK); /* the largest term is still a term */
        }
    }
    free(b);
}

/* Nor in a log record: open would raise the hard state to it and write a
 * file that the next open refuses (found by fuzz_segment). */
TEST(record_term_at_or_above_2_63_is_refused)
{
    const raft_term terms[] = { RAFT_MAX_TERM + 1, UINT64_MAX, RAFT_MAX_TERM };
    for (size_t k = 0; k < sizeof terms / sizeof terms[0]; k++) {
        make_log(2);
        list_segments();
        REQUIRE(n_seg_names == 1);
        size_t len;
        uint8_t *b = read_file(seg_names[0], &len);
        REQUIRE(b);
        uint8_t *more = realloc(b, len + 64);
        REQUIRE(more);
        static const uint8_t data[] = "x";
        len += encode_record(more + len, 3, terms[k], data, sizeof data);
        write_file(seg_names[0], more, len);
        free(more);
        int rc = open_rc(NULL);
        if (terms[k] > RAFT_MAX_TERM) {
            CHECK_EQ_I(rc, STORAGE_ECORRUPT);
            CHECK(strstr(errbuf, seg_names[0]) && strstr(errbuf, "2^63"));
        } else {
            CHECK_EQ_I(rc, STORAGE_OK); /* the largest term is still a term */
            CHECK_EQ_I(open_rc(NULL), STORAGE_OK); /* and so it stays */
        }
    }
}

TEST(damaged_hard_state_file_is_refused_with_a_clear_message)
{
    make_log(3);
    size_t len;
    uint8_t *orig = read_file("hardstate", &len);
    REQUIRE(orig);
    REQUIRE(len == 40);
    int bad = 0;
    for (size_t off = 0; off < len; off++) {
        orig[off] ^= 0x04;
        write_file("hardstate", orig, len);
        orig[off] ^= 0x04;
        int rc = open_rc(NULL);
        if (rc != STORAGE_ECORRUPT || !strstr(errbuf, "hard state file") || !strstr(errbuf, "hardstate"))
            bad++;
    }
    CHECK_EQ_I(bad, 0);
    write_file("hardstate", orig, 39);
    CHECK_EQ_I(open_rc(NULL), STORAGE_ECORRUPT);
    CHECK(strstr(errbuf, "39 bytes instead of 40"));
    uint8_t big[100] = { 0 };
    write_file("hardstate", big, sizeof big);
    CHECK_EQ_I(open_rc(NULL), STORAGE_ECORRUPT);
    write_file("hardstate", orig, len);
    CHECK_EQ_I(open_rc(NULL), STORAGE_OK);
    free(orig);
}

/* Writes the state machine's snapshot file of n bytes (pattern seeded by k). */
static void write_snapshot_tmp(struct storage *s, size_t n, int k)
{
    uint8_t *b = malloc(n);
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(i * 7 + (size_t)k);
    write_path(storage_snapshot_tmp_path(s), b, n);
    free(b);
}

static struct raft_config three(void)
{
    struct raft_config c = { .n = 3 };
    for (uint32_t i = 0; i < 3; i++)
        c.members[i] = (struct raft_member){ .id = i + 1, .role = RAFT_VOTER };
    return c;
}

TEST(snapshot_adopt_read_and_reopen)
{
    fresh_root();
    struct storage_options o = small_segments(512);
    struct storage_state st;
    struct storage *s = open_ok(&o, &st);
    REQUIRE(s);
    storage_state_free(&st);
    append_range(s, 1, 40, 1);
    struct raft_hard_state hs = { 1, 0 };
    storage_set_hard_state(s, &hs);
    CHECK_EQ_I(storage_sync(s), STORAGE_OK);
    write_snapshot_tmp(s, 100000, 1);
    struct raft_snapshot_meta m = { .index = 30, .term = 1, .config = three() };
    CHECK_EQ_I(storage_snapshot_adopt(s, storage_snapshot_tmp_path(s), &m), STORAGE_OK);
    CHECK_EQ_U(m.size, 100000);
    uint8_t *want = malloc(100000);
    for (size_t i = 0; i < 100000; i++)
        want[i] = (uint8_t)(i * 7 + 1);
    CHECK_EQ_U(m.crc, crc32c(want, 100000));
    REQUIRE(storage_snapshot_path(s));
    CHECK(access(storage_snapshot_tmp_path(s), F_OK) != 0);
    /* Chunks read back exactly. */
    uint8_t chunk[4096];
    for (uint64_t off = 0; off < 100000; off += sizeof chunk) {
        uint32_t n = 100000 - off < sizeof chunk ? (uint32_t)(100000 - off) : (uint32_t)sizeof chunk;
        CHECK_EQ_I(storage_snapshot_read(s, 30, off, chunk, n), STORAGE_OK);
        CHECK(memcmp(chunk, want + off, n) == 0);
    }
    CHECK_EQ_I(storage_snapshot_read(s, 29, 0, chunk, 10), STORAGE_EINVAL);
    CHECK_EQ_I(storage_snapshot_read(s, 30, 99995, chunk, 10), STORAGE_EINVAL);
    CHECK_EQ_I(storage_snapshot_read(s, 30, UINT64_MAX, chunk, 10), STORAGE_EINVAL);
    /* A second adopt replaces the first and removes its data file. */
    char first_path[512];
    snprintf(first_path, sizeof first_path, "%s", storage_snapshot_path(s));
    write_snapshot_tmp(s, 5000, 2);
    /* This time the node's way: size and CRC read on its worker, handed in. */
    uint64_t fsize = 0;
    uint32_t fcrc = 0;
    char ferr[256];
    CHECK_EQ_I(storage_file_crc(storage_snapshot_tmp_path(s), &fsize, &fcrc, ferr, sizeof ferr), STORAGE_OK);
    CHECK_EQ_U(fsize, 5000);
    for (size_t i = 0; i < 5000; i++)
        want[i] = (uint8_t)(i * 7 + 2);
    CHECK_EQ_U(fcrc, crc32c(want, 5000));
    CHECK_EQ_I(storage_file_crc("/nonexistent/snapshot", &fsize, &fcrc, ferr, sizeof ferr), STORAGE_EIO);
    struct raft_snapshot_meta m2 = { .index = 35, .term = 1, .config = three(), .size = 5000,
                                     .crc = crc32c(want, 5000) };
    CHECK_EQ_I(storage_snapshot_adopt(s, storage_snapshot_tmp_path(s), &m2), STORAGE_OK);
    CHECK(access(first_path, F_OK) != 0);
    CHECK(strcmp(first_path, storage_snapshot_path(s)) != 0);
    /* Own snapshots never go backwards and cover only the log. */
    write_snapshot_tmp(s, 10, 3);
    struct raft_snapshot_meta old = { .index = 20, .term = 1, .config = three() };
    CHECK_EQ_I(storage_snapshot_adopt(s, storage_snapshot_tmp_path(s), &old), STORAGE_EINVAL);
    struct raft_snapshot_meta same = { .index = 35, .term = 1, .config = three() };
    CHECK_EQ_I(storage_snapshot_adopt(s, storage_snapshot_tmp_path(s), &same), STORAGE_EINVAL);
    struct raft_snapshot_meta ahead = { .index = 41, .term = 1, .config = three() };
    CHECK_EQ_I(storage_snapshot_adopt(s, storage_snapshot_tmp_path(s), &ahead), STORAGE_EINVAL);
    /* A size handed in that is not the file's is refused, not trusted. */
    struct raft_snapshot_meta wrong = { .index = 38, .term = 1, .config = three(), .size = 1234, .crc = 1 };
    CHECK_EQ_I(storage_snapshot_adopt(s, storage_snapshot_tmp_path(s), &wrong), STORAGE_EINVAL);
    storage_close(s);

    /* Reopen: the snapshot and the log after it; leftovers removed. */
    s = open_ok(&o, &st);
    REQUIRE(s);
    CHECK(st.have_snapshot);
    CHECK_EQ_U(st.snapshot.index, 35);
    CHECK_EQ_U(st.snapshot.size, 5000);
    CHECK_EQ_U(st.snapshot.crc, m2.crc);
    CHECK_EQ_U(st.snapshot.config.n, 3);
    CHECK_EQ_U(st.snapshot.config.members[2].id, 3);
    CHECK(has_range(&st, 36, 40, 1));
    CHECK(access(storage_snapshot_tmp_path(s), F_OK) != 0);
    struct raft_options ro;
    raft_options_default(&ro, 1, 1);
    struct raft *r = raft_create(&ro);
    CHECK_EQ_I(raft_restore(r, &st.hard_state, &st.snapshot, st.entries, st.n_entries, 35), RAFT_OK);
    raft_destroy(r);
    storage_state_free(&st);
    storage_close(s);
    free(want);
}

TEST(compaction_removes_only_segments_the_snapshot_covers)
{
    fresh_root();
    struct storage_options o = small_segments(512);
    struct storage_state st;
    struct storage *s = open_ok(&o, &st);
    REQUIRE(s);
    storage_state_free(&st);
    append_range(s, 1, 60, 1);
    storage_sync(s);
    struct storage_stats a, b;
    storage_get_stats(s, &a);
    /* No snapshot: nothing may go, whatever the caller asks. */
    CHECK_EQ_I(storage_compact(s, 50), STORAGE_OK);
    storage_get_stats(s, &b);
    CHECK_EQ_U(b.segments, a.segments);
    write_snapshot_tmp(s, 100, 1);
    struct raft_snapshot_meta m = { .index = 30, .term = 1, .config = three() };
    CHECK_EQ_I(storage_snapshot_adopt(s, storage_snapshot_tmp_path(s), &m), STORAGE_OK);
    CHECK_EQ_I(storage_compact(s, 1000), STORAGE_OK); /* limited to the snapshot */
    storage_get_stats(s, &b);
    CHECK(b.segments < a.segments);
    CHECK(b.segments > 1);
    list_segments();
    CHECK_EQ_U((uint64_t)n_seg_names, b.segments);
    /* Truncation below the snapshot is refused. */
    CHECK_EQ_I(storage_truncate(s, 30), STORAGE_EINVAL);
    storage_close(s);
    s = open_ok(&o, &st);
    REQUIRE(s);
    CHECK(has_range(&st, 31, 60, 1));
    storage_state_free(&st);
    storage_close(s);
}

static void receive(struct storage *s, const struct raft_snapshot_meta *m, const uint8_t *data, size_t n,
                    size_t chunk)
{
    for (size_t off = 0; off < n; off += chunk) {
        struct raft_snapshot_chunk c = { .meta = *m, .offset = off,
                                         .len = (uint32_t)(n - off < chunk ? n - off : chunk), .data = data + off };
        CHECK_EQ_I(storage_snapshot_write_chunk(s, &c), STORAGE_OK);
    }
}

TEST(install_received_snapshot_replaces_an_older_log)
{
    fresh_root();
    struct storage_options o = small_segments(512);
    struct storage_state st;
    struct storage *s = open_ok(&o, &st);
    REQUIRE(s);
    storage_state_free(&st);
    append_range(s, 1, 20, 1);
    struct raft_hard_state hs = { 1, 0 };
    storage_set_hard_state(s, &hs);
    storage_sync(s);
    size_t n = 30000;
    uint8_t *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)(i * 13);
    struct raft_snapshot_meta m = { .index = 40, .term = 2, .config = three(), .size = n, .crc = crc32c(data, n) };
    receive(s, &m, data, n, 7000);
    /* Out of order chunks and chunks of another snapshot are refused. */
    struct raft_snapshot_chunk skip = { .meta = m, .offset = 50000, .len = 1, .data = data };
    CHECK_EQ_I(storage_snapshot_write_chunk(s, &skip), STORAGE_EINVAL);
    struct raft_snapshot_meta other = m;
    other.index = 41;
    CHECK_EQ_I(storage_snapshot_install(s, &other), STORAGE_EINVAL);
    CHECK_EQ_I(storage_snapshot_install(s, &m), STORAGE_OK);
    CHECK(!file_exists("snapshot.partial"));
    /* The log is empty and continues at 41. */
    CHECK_EQ_I(storage_truncate(s, 41), STORAGE_OK); /* the core's truncate_from: a no-op */
    struct raft_entry bad = E(40, 2, 1);
    CHECK_EQ_I(storage_append(s, &bad, 1), STORAGE_EINVAL);
    CHECK_EQ_I(append_range(s, 41, 45, 2), STORAGE_OK);
    struct raft_hard_state hs2 = { 2, 0 };
    storage_set_hard_state(s, &hs2);
    CHECK_EQ_I(storage_sync(s), STORAGE_OK);
    uint8_t back[100];
    CHECK_EQ_I(storage_snapshot_read(s, 40, 1000, back, sizeof back), STORAGE_OK);
    CHECK(memcmp(back, data + 1000, sizeof back) == 0);
    storage_close(s);
    s = open_ok(&o, &st);
    REQUIRE(s);
    CHECK(st.have_snapshot);
    CHECK_EQ_U(st.snapshot.index, 40);
    CHECK_EQ_U(st.snapshot.term, 2);
    CHECK(has_range(&st, 41, 45, 2));
    storage_state_free(&st);
    storage_close(s);
    /* Empty log right after install: reopen continues at 41 too. */
    fresh_root();
    s = open_ok(&o, &st);
    REQUIRE(s);
    storage_state_free(&st);
    append_range(s, 1, 5, 1);
    storage_sync(s);
    receive(s, &m, data, n, n);
    CHECK_EQ_I(storage_snapshot_install(s, &m), STORAGE_OK);
    storage_close(s);
    s = open_ok(&o, &st);
    REQUIRE(s);
    CHECK_EQ_U(st.n_entries, 0);
    CHECK_EQ_U(st.snapshot.index, 40);
    CHECK_EQ_I(append_range(s, 41, 41, 2), STORAGE_OK);
    storage_state_free(&st);
    storage_close(s);
    free(data);
}

TEST(install_keeps_a_log_that_continues_the_snapshot)
{
    fresh_root();
    struct storage_options o = small_segments(512);
    struct storage_state st;
    struct storage *s = open_ok(&o, &st);
    REQUIRE(s);
    storage_state_free(&st);
    append_range(s, 1, 50, 1);
    storage_sync(s);
    uint8_t data[100];
    memset(data, 7, sizeof data);
    struct raft_snapshot_meta m = { .index = 30, .term = 1, .config = three(), .size = 100,
                                    .crc = crc32c(data, 100) };
    receive(s, &m, data, 100, 30);
    CHECK_EQ_I(storage_snapshot_install(s, &m), STORAGE_OK);
    storage_close(s);
    s = open_ok(&o, &st);
    REQUIRE(s);
    CHECK(has_range(&st, 31, 50, 1));
    storage_state_free(&st);
    storage_close(s);
}

TEST(install_with_wrong_crc_or_size_is_refused)
{
    fresh_root();
    struct storage_state st;
    struct storage *s = open_ok(NULL, &st);
    REQUIRE(s);
    storage_state_free(&st);
    append_range(s, 1, 10, 1);
    storage_sync(s);
    uint8_t data[1000];
    memset(data, 3, sizeof data);
    struct raft_snapshot_meta m = { .index = 20, .term = 2, .config = three(), .size = 1000,
                                    .crc = crc32c(data, 1000) ^ 1 };
    receive(s, &m, data, 1000, 300);
    CHECK_EQ_I(storage_snapshot_install(s, &m), STORAGE_ECORRUPT);
    CHECK(strstr(storage_errmsg(s), "CRC32C"));
    CHECK(storage_snapshot_path(s) == NULL);
    CHECK(!file_exists("snapshot.partial"));
    m.crc ^= 1;
    receive(s, &m, data, 900, 300); /* short */
    CHECK_EQ_I(storage_snapshot_install(s, &m), STORAGE_ECORRUPT);
    /* Nothing changed: the log is whole, and a correct transfer installs. */
    receive(s, &m, data, 1000, 300);
    CHECK_EQ_I(storage_snapshot_install(s, &m), STORAGE_OK);
    storage_close(s);
    s = open_ok(NULL, &st);
    REQUIRE(s);
    CHECK(st.have_snapshot);
    CHECK_EQ_U(st.n_entries, 0);
    storage_state_free(&st);
    storage_close(s);
}

TEST(a_log_older_than_the_snapshot_is_not_replayed)
{
    /* What a crash between making the snapshot current and dropping the
     * log leaves: a durable snapshot at 40 and the old log 1..20. */
    fresh_root();
    struct storage_state st;
    struct storage *s = open_ok(NULL, &st);
    REQUIRE(s);
    storage_state_free(&st);
    append_range(s, 1, 20, 1);
    storage_sync(s);
    storage_close(s);
    char seg[1024], seg_save[1024];
    list_segments();
    snprintf(seg, sizeof seg, "%s/%s", dir, seg_names[0]);
    snprintf(seg_save, sizeof seg_save, "%s/saved.seg", root);
    REQUIRE(rename(seg, seg_save) == 0);
    s = open_ok(NULL, &st);
    REQUIRE(s);
    storage_state_free(&st);
    uint8_t data[64] = { 1 };
    struct raft_snapshot_meta m = { .index = 40, .term = 2, .config = three(), .size = 64, .crc = crc32c(data, 64) };
    receive(s, &m, data, 64, 64);
    CHECK_EQ_I(storage_snapshot_install(s, &m), STORAGE_OK);
    storage_close(s);
    list_segments();
    for (int i = 0; i < n_seg_names; i++) {
        snprintf(seg, sizeof seg, "%s/%.255s", dir, seg_names[i]);
        unlink(seg);
    }
    snprintf(seg, sizeof seg, "%s/log-00000000000000000001.seg", dir);
    REQUIRE(rename(seg_save, seg) == 0);
    /* Without the install's marker this is a log that lost 21..40: refused,
     * nothing changed (issue 17). */
    uint64_t before = dir_digest();
    CHECK_EQ_I(open_rc(NULL), STORAGE_ECORRUPT);
    CHECK(strstr(errbuf, "21..40"));
    CHECK_EQ_U(dir_digest(), before);
    /* With it (what a crash inside the install leaves): replaced. */
    write_file("install.pending", (const uint8_t *)"x", 1);
    s = open_ok(NULL, &st);
    REQUIRE(s);
    CHECK(st.have_snapshot);
    CHECK_EQ_U(st.n_entries, 0);
    CHECK(strstr(st.recovery_note, "replaced"));
    CHECK(!file_exists("install.pending"));
    CHECK_EQ_I(append_range(s, 41, 42, 2), STORAGE_OK);
    CHECK_EQ_I(storage_sync(s), STORAGE_OK);
    storage_state_free(&st);
    storage_close(s);
    s = open_ok(NULL, &st);
    REQUIRE(s);
    CHECK(has_range(&st, 41, 42, 2));
    storage_state_free(&st);
    storage_close(s);
}

TEST(damaged_snapshot_files_are_refused)
{
    fresh_root();
    struct storage_state st;
    struct storage *s = open_ok(NULL, &st);
    REQUIRE(s);
    storage_state_free(&st);
    append_range(s, 1, 10, 1);
    storage_sync(s);
    write_snapshot_tmp(s, 3000, 1);
    struct raft_snapshot_meta m = { .index = 5, .term = 1, .config = three() };
    REQUIRE(storage_snapshot_adopt(s, storage_snapshot_tmp_path(s), &m) == STORAGE_OK);
    char data_path[512];
    snprintf(data_path, sizeof data_path, "%s", storage_snapshot_path(s));
    storage_close(s);
    size_t len;
    uint8_t *meta = read_file("snapshot.meta", &len);
    REQUIRE(meta);
    int bad = 0;
    for (size_t off = 0; off < len; off++) {
        meta[off] ^= 0x20;
        write_file("snapshot.meta", meta, len);
        meta[off] ^= 0x20;
        if (open_rc(NULL) != STORAGE_ECORRUPT || !strstr(errbuf, "snapshot.meta"))
            bad++;
    }
    CHECK_EQ_I(bad, 0);
    write_file("snapshot.meta", meta, len);
    CHECK_EQ_I(open_rc(NULL), STORAGE_OK);
    /* The data file itself: one flipped byte, or missing. */
    FILE *f = fopen(data_path, "r+b");
    REQUIRE(f);
    fseek(f, 1234, SEEK_SET);
    fputc(0xff, f);
    fclose(f);
    CHECK_EQ_I(open_rc(NULL), STORAGE_ECORRUPT);
    CHECK(strstr(errbuf, "CRC32C"));
    unlink(data_path);
    CHECK_EQ_I(open_rc(NULL), STORAGE_ECORRUPT);
    CHECK(strstr(errbuf, "missing"));
    free(meta);
}

static void make_snapshotted(const struct storage_options *o, bool compact);

/* With snapshot_data_optional a damaged or missing snapshot data file is
 * reported, not refused: the metadata still gives the log's base, the log
 * is recovered whole, nothing in the directory changes, and the data can
 * be neither read nor restored from until a new snapshot replaces it. */
TEST(a_damaged_snapshot_data_file_can_be_reported_instead)
{
    struct storage_options mk = small_segments(512), o = mk;
    o.defer_changes = true;
    o.snapshot_data_optional = true;
    for (int missing = 0; missing < 2; missing++) {
        make_snapshotted(&mk, true);
        struct storage_state st;
        struct storage *s = open_ok(NULL, &st);
        REQUIRE(s);
        char data_path[512];
        snprintf(data_path, sizeof data_path, "%s", storage_snapshot_path(s));
        storage_state_free(&st);
        storage_close(s);
        if (missing) {
            REQUIRE(unlink(data_path) == 0);
        } else {
            FILE *f = fopen(data_path, "r+b");
            REQUIRE(f);
            fseek(f, 50, SEEK_SET);
            fputc(0xff, f);
            fclose(f);
        }
        uint64_t before = dir_digest();
        s = open_ok(&o, &st);
        REQUIRE(s);
        CHECK(st.snapshot_damaged);
        CHECK(strstr(st.snapshot_damage, missing ? "missing" : "CRC32C") != NULL);
        CHECK(st.have_snapshot && st.snapshot.index == 30);
        CHECK(st.n_entries > 0 && st.entries[st.n_entries - 1].index == 60);
        CHECK(storage_snapshot_path(s) == NULL);
        uint8_t buf[8];
        CHECK(storage_snapshot_read(s, 30, 0, buf, sizeof buf) != STORAGE_OK);
        CHECK_EQ_U(dir_digest(), before);
        storage_state_free(&st);
        storage_close(s);
        /* Without the option: refused, as before. */
        o.snapshot_data_optional = false;
        CHECK_EQ_I(open_rc(&o), STORAGE_ECORRUPT);
        o.snapshot_data_optional = true;
        /* A peer's snapshot at the same index replaces the damaged one (it
         * was refused as "already the current one": repair from peers then
         * stopped the node when the leader's snapshot sat at its index). */
        s = open_ok(&o, &st);
        REQUIRE(s);
        storage_state_free(&st);
        uint8_t fresh[3000];
        for (size_t i = 0; i < sizeof fresh; i++)
            fresh[i] = (uint8_t)(i * 7);
        struct raft_snapshot_meta m = { .index = 30, .term = 1, .config = three(), .size = sizeof fresh,
                                        .crc = crc32c(fresh, sizeof fresh) };
        receive(s, &m, fresh, sizeof fresh, 1000);
        CHECK_EQ_I(storage_snapshot_install(s, &m), STORAGE_OK);
        CHECK(storage_snapshot_path(s) != NULL);
        CHECK_EQ_I(storage_snapshot_read(s, 30, 0, buf, sizeof buf), STORAGE_OK);
        CHECK(memcmp(buf, fresh, sizeof buf) == 0);
        /* Now whole again: the same index once more is refused. */
        CHECK_EQ_I(storage_snapshot_install(s, &m), STORAGE_EINVAL);
        storage_close(s);
        s = open_ok(NULL, &st); /* without the option: the data is good */
        REQUIRE(s);
        CHECK(st.have_snapshot && st.snapshot.index == 30 && !st.snapshot_damaged);
        storage_state_free(&st);
        storage_close(s);
    }
}

/* A directory whose open is refused is left byte for byte as it was, even
 * with leftovers open would otherwise clean up (issue 17 finding 2). */
static void refused_unchanged(const struct storage_options *o, const char *why)
{
    write_file("hardstate.tmp", (const uint8_t *)"junk", 4);
    write_file("snap-00000000000000000001-00000000000000000001.dat", (const uint8_t *)"old", 3);
    uint64_t before = dir_digest();
    int rc = open_rc(o);
    CHECK_EQ_I(rc, STORAGE_ECORRUPT);
    if (!strstr(errbuf, why))
        fprintf(stderr, "  expected \"%s\" in: %s\n", why, errbuf);
    CHECK(strstr(errbuf, why) != NULL);
    CHECK_EQ_U(dir_digest(), before);
}

/* A snapshot at 30 over a log 1..60 in small segments, compacted or not. */
static void make_snapshotted(const struct storage_options *o, bool compact)
{
    fresh_root();
    struct storage_state st;
    struct storage *s = open_ok(o, &st);
    if (!s)
        return;
    storage_state_free(&st);
    append_range(s, 1, 60, 1);
    storage_sync(s);
    write_snapshot_tmp(s, 100, 1);
    struct raft_snapshot_meta m = { .index = 30, .term = 1, .config = three() };
    CHECK_EQ_I(storage_snapshot_adopt(s, storage_snapshot_tmp_path(s), &m), STORAGE_OK);
    if (compact)
        CHECK_EQ_I(storage_compact(s, 31), STORAGE_OK);
    storage_close(s);
}
static void make_compacted(const struct storage_options *o) { make_snapshotted(o, true); }

TEST(refusals_change_nothing)
{
    struct storage_options o = small_segments(512);
    /* snapshot.meta deleted: the log no longer starts where it must, and
     * the snapshot data it named stays. */
    make_compacted(&o);
    CHECK_EQ_I(open_rc(&o), STORAGE_OK);
    char meta[1024];
    snprintf(meta, sizeof meta, "%s/snapshot.meta", dir);
    REQUIRE(unlink(meta) == 0);
    refused_unchanged(&o, "must start at 1");
    /* The hard state deleted under a log and a snapshot: the term and vote
     * are unknown (before: "raised the term from 0", free to vote again). */
    make_compacted(&o);
    char hs[1024];
    snprintf(hs, sizeof hs, "%s/hardstate", dir);
    REQUIRE(unlink(hs) == 0);
    refused_unchanged(&o, "hard state file");
    /* The same with the log only. */
    make_log(5);
    snprintf(hs, sizeof hs, "%s/hardstate", dir);
    REQUIRE(unlink(hs) == 0);
    refused_unchanged(NULL, "hard state file");
    /* A bad record followed by a good one, with a torn-looking tail cut
     * and segments to compact elsewhere: nothing is done either. */
    make_compacted(&o);
    list_segments();
    REQUIRE(n_seg_names >= 2);
    size_t len;
    uint8_t *b = read_file(seg_names[n_seg_names - 1], &len);
    REQUIRE(b && len > 48);
    b[44] ^= 1; /* the first record's header */
    write_file(seg_names[n_seg_names - 1], b, len);
    free(b);
    refused_unchanged(&o, "damaged");
    /* The log cut below the snapshot (its newest segments lost; before:
     * two segments deleted and a new one made, then a refusal by the
     * node, or with the database behind, silently replaced). */
    make_snapshotted(&o, false);
    list_segments();
    for (int i = 1; i < n_seg_names; i++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, seg_names[i]);
        unlink(p);
    }
    refused_unchanged(&o, "missing");
}

TEST(a_snapshot_with_no_hard_state_and_an_empty_log_is_accepted)
{
    /* A node that joined and crashed right after its first install: the
     * snapshot is durable, the hard state of that ready is not yet. */
    fresh_root();
    struct storage_state st;
    struct storage *s = open_ok(NULL, &st);
    REQUIRE(s);
    storage_state_free(&st);
    uint8_t data[64] = { 7 };
    struct raft_snapshot_meta m = { .index = 40, .term = 3, .config = three(), .size = 64, .crc = crc32c(data, 64) };
    receive(s, &m, data, 64, 64);
    CHECK_EQ_I(storage_snapshot_install(s, &m), STORAGE_OK);
    storage_close(s);
    char hs[1024];
    snprintf(hs, sizeof hs, "%s/hardstate", dir);
    REQUIRE(unlink(hs) == 0);
    s = open_ok(NULL, &st);
    REQUIRE(s);
    CHECK_EQ_U(st.hard_state.term, 3);
    CHECK_EQ_U(st.hard_state.vote, 0);
    storage_state_free(&st);
    storage_close(s);
}

TEST(truncate_across_segments)
{
    fresh_root();
    struct storage_options o = small_segments(512);
    struct storage_state st;
    struct storage *s = open_ok(&o, &st);
    REQUIRE(s);
    storage_state_free(&st);
    append_range(s, 1, 60, 1);
    storage_sync(s);
    struct storage_stats a, b;
    storage_get_stats(s, &a);
    CHECK_EQ_I(storage_truncate(s, 15), STORAGE_OK);
    storage_get_stats(s, &b);
    CHECK(b.segments < a.segments);
    CHECK_EQ_I(storage_truncate(s, 100), STORAGE_OK); /* past the end: nothing */
    CHECK_EQ_I(append_range(s, 15, 30, 2), STORAGE_OK);
    struct raft_hard_state hs = { 2, 0 };
    storage_set_hard_state(s, &hs);
    CHECK_EQ_I(storage_sync(s), STORAGE_OK);
    storage_close(s);
    s = open_ok(&o, &st);
    REQUIRE(s);
    REQUIRE(st.n_entries == 30);
    struct storage_state a1 = st;
    a1.n_entries = 14;
    CHECK(has_range(&a1, 1, 14, 1));
    for (raft_index i = 15; i <= 30; i++) {
        struct raft_entry e = E(i, 2, len_of(i));
        CHECK(same_entry(&st.entries[i - 1], &e));
    }
    storage_state_free(&st);
    /* Truncate everything: the log restarts at 1. */
    CHECK_EQ_I(storage_truncate(s, 1), STORAGE_OK);
    CHECK_EQ_I(append_range(s, 1, 3, 2), STORAGE_OK);
    CHECK_EQ_I(storage_sync(s), STORAGE_OK);
    storage_close(s);
    s = open_ok(&o, &st);
    REQUIRE(s);
    CHECK(has_range(&st, 1, 3, 2));
    storage_state_free(&st);
    storage_close(s);
}

TEST(leftover_temporary_files_are_removed)
{
    make_log(3);
    write_file("hardstate.tmp", (const uint8_t *)"junk", 4);
    write_file("snapshot.meta.tmp", (const uint8_t *)"junk", 4);
    write_file("snapshot.partial", (const uint8_t *)"junk", 4);
    write_file("log-00000000000000000009.seg.tmp", (const uint8_t *)"junk", 4);
    write_file("snap-00000000000000000002-00000000000000000001.dat", (const uint8_t *)"junk", 4);
    struct storage_state st;
    struct storage *s = open_ok(NULL, &st);
    REQUIRE(s);
    CHECK(has_range(&st, 1, 3, 1));
    CHECK(!file_exists("hardstate.tmp"));
    CHECK(!file_exists("snapshot.meta.tmp"));
    CHECK(!file_exists("snapshot.partial"));
    CHECK(!file_exists("log-00000000000000000009.seg.tmp"));
    CHECK(!file_exists("snap-00000000000000000002-00000000000000000001.dat"));
    storage_state_free(&st);
    storage_close(s);
}

TEST(bad_arguments_to_open)
{
    struct storage *s = (struct storage *)1;
    struct storage_state st;
    CHECK_EQ_I(storage_open("", NULL, NULL, &s, &st, errbuf, sizeof errbuf), STORAGE_EINVAL);
    CHECK(s == NULL);
    char longp[5000];
    memset(longp, 'a', sizeof longp - 1);
    longp[sizeof longp - 1] = 0;
    CHECK_EQ_I(storage_open(longp, NULL, NULL, &s, &st, errbuf, sizeof errbuf), STORAGE_EINVAL);
    fresh_root();
    write_path(dir, (const uint8_t *)"x", 1); /* a file where the directory should be */
    CHECK_EQ_I(storage_open(dir, NULL, NULL, &s, &st, errbuf, sizeof errbuf), STORAGE_EIO);
    CHECK(strstr(errbuf, dir));
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

TEST(open_100k_entries_measured)
{
    fresh_root();
    cur_io = NULL; /* real fdatasync: the figure is what a node would see */
    struct storage_state st;
    struct storage *s = open_ok(NULL, &st);
    REQUIRE(s);
    storage_state_free(&st);
    enum { N = 100000, BATCH = 500 };
    struct raft_entry batch[BATCH];
    struct raft_hard_state hs = { 1, 1 };
    REQUIRE(storage_set_hard_state(s, &hs) == STORAGE_OK);
    double t0 = now_s();
    for (raft_index i = 1; i <= N; i += BATCH) {
        for (int k = 0; k < BATCH; k++)
            batch[k] = E(i + (raft_index)k, 1, 200);
        REQUIRE(storage_append(s, batch, BATCH) == STORAGE_OK);
        REQUIRE(storage_sync(s) == STORAGE_OK);
    }
    double t1 = now_s();
    storage_close(s);
    s = open_ok(NULL, &st);
    double t2 = now_s();
    REQUIRE(s);
    CHECK_EQ_U(st.n_entries, N);
    CHECK_EQ_U(st.entries[N - 1].index, N);
    struct raft_entry e = E(77777, 1, 200);
    CHECK(same_entry(&st.entries[77776], &e));
    printf("measured: wrote %d entries of 200 bytes in batches of %d (one fdatasync each) in %.3f s; "
           "open recovered them in %.3f s\n", N, BATCH, t1 - t0, t2 - t1);
    storage_state_free(&st);
    storage_close(s);
    cur_io = &fast_io;
}

int main(void)
{
    init_payload();
    fast_io = *storage_io_posix();
    fast_io.fdatasync = no_sync;
    RUN(fresh_directory_is_created_and_empty);
    RUN(round_trip_entries_and_hard_state_across_segments);
    RUN(group_commit_is_one_fdatasync);
    RUN(append_refuses_gaps_bad_terms_and_types);
    RUN(torn_tail_cut_at_every_byte_offset);
    RUN(zero_padding_after_the_last_record_is_a_torn_tail);
    RUN(bit_flip_in_every_byte_of_the_last_record_is_a_torn_tail);
    RUN(bit_flip_in_every_byte_of_a_middle_record_is_corruption);
    RUN(damaged_segment_header_is_corruption);
    RUN(damage_in_an_earlier_segment_is_corruption);
    RUN(missing_middle_segment_is_a_gap);
    RUN(valid_records_that_do_not_fit_are_corruption);
    RUN(hard_state_term_below_the_log_is_raised_without_a_vote);
    RUN(damaged_hard_state_file_is_refused_with_a_clear_message);
    RUN(hard_state_term_at_or_above_2_63_is_refused);
    RUN(record_term_at_or_above_2_63_is_refused);
    RUN(snapshot_adopt_read_and_reopen);
    RUN(compaction_removes_only_segments_the_snapshot_covers);
    RUN(install_received_snapshot_replaces_an_older_log);
    RUN(install_keeps_a_log_that_continues_the_snapshot);
    RUN(install_with_wrong_crc_or_size_is_refused);
    RUN(a_log_older_than_the_snapshot_is_not_replayed);
    RUN(damaged_snapshot_files_are_refused);
    RUN(a_damaged_snapshot_data_file_can_be_reported_instead);
    RUN(refusals_change_nothing);
    RUN(a_snapshot_with_no_hard_state_and_an_empty_log_is_accepted);
    RUN(truncate_across_segments);
    RUN(leftover_temporary_files_are_removed);
    RUN(bad_arguments_to_open);
    RUN(open_100k_entries_measured);
    if (root[0])
        rm_tree(root);
    return HARNESS_END();
}
