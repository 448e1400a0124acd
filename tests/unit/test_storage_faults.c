/*
 * test_storage_faults.c — storage on the simulated disk (tests/lib/memfs.h):
 * crashes that drop everything not made durable, writes torn at every byte,
 * and ENOSPC or EIO injected at EVERY write, fsync and rename of a workload
 * that covers append + sync across segments, truncation, hard state,
 * snapshot adopt, compaction, chunked receive and install.
 *
 * After each injected fault the disk "crashes" and is reopened healthy; the
 * recovered state must hold everything made durable before the failing
 * operation, nothing half-written or truncated, and fit together for
 * raft_restore. With ENOSPC the same operation is also retried after the
 * disk is freed, and must then succeed and end in exactly the state of a
 * run without faults.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "../lib/memfs.h"
#include "common/crc32c.h"
#include "storage.h"

#define DIR "data"
#define MAXI 64

static uint8_t payload[8192];

static void init_payload(void)
{
    uint32_t x = 777;
    for (size_t i = 0; i < sizeof payload; i++) {
        x = x * 1664525u + 1013904223u;
        payload[i] = (uint8_t)(x >> 24);
    }
}

static uint32_t len_of(raft_index i, raft_term t) { return (uint32_t)((i * 29 + t * 7) % 120); }

static struct raft_entry E(raft_index i, raft_term t)
{
    uint32_t len = len_of(i, t);
    return (struct raft_entry){ .term = t, .index = i, .type = RAFT_ENTRY_COMMAND, .len = len,
                                .data = len ? payload + (i * 37 + t * 101) % 4000 : NULL };
}

static bool entry_is(const struct raft_entry *e, raft_index i, raft_term t)
{
    struct raft_entry w = E(i, t);
    return e->index == i && e->term == t && e->type == w.type && e->len == w.len &&
           (w.len == 0 || memcmp(e->data, w.data, w.len) == 0);
}

static struct storage_options opts(void)
{
    struct storage_options o;
    storage_options_default(&o);
    o.segment_bytes = 400; /* a few entries per segment: rollovers everywhere */
    return o;
}

static char errbuf[8192];

/* ---- the model ------------------------------------------------------------ */

struct model {
    struct raft_hard_state hs;
    bool have_snap;
    struct raft_snapshot_meta snap;
    raft_index last;              /* entries up to last (those above snap.index count) */
    raft_term term[MAXI];
};

static raft_index snap_index(const struct model *m) { return m->have_snap ? m->snap.index : 0; }

/* ---- the workload ---------------------------------------------------------- */

enum kind { APPEND, HS, SYNC, TRUNC, ADOPT, COMPACT, CHUNK, INSTALL };
struct op {
    enum kind k;
    uint64_t a, b, c;
};

/* APPEND a..b term c; HS term a vote b; TRUNC from a; ADOPT index a term b
 * size c; COMPACT before a; CHUNK of snapshot a/b at offset c; INSTALL a/b. */
static const struct op workload[] = {
    { APPEND, 1, 6, 1 }, { HS, 1, 1, 0 }, { SYNC, 0, 0, 0 },
    { APPEND, 7, 14, 2 }, { HS, 2, 0, 0 }, { SYNC, 0, 0, 0 },
    { TRUNC, 10, 0, 0 }, { APPEND, 10, 12, 3 }, { HS, 3, 2, 0 }, { SYNC, 0, 0, 0 },
    { ADOPT, 8, 2, 3000 },
    { COMPACT, 8, 0, 0 },
    { APPEND, 13, 20, 3 }, { SYNC, 0, 0, 0 },
    { CHUNK, 30, 4, 0 }, { CHUNK, 30, 4, 2000 }, { CHUNK, 30, 4, 4000 }, { INSTALL, 30, 4, 0 },
    { TRUNC, 31, 0, 0 },
    { APPEND, 31, 36, 4 }, { HS, 4, 0, 0 }, { SYNC, 0, 0, 0 },
    { ADOPT, 33, 4, 1500 },
    { COMPACT, 33, 0, 0 },
};
#define N_OPS (sizeof workload / sizeof workload[0])

#define RECV_SIZE 5000
static struct raft_snapshot_meta recv_meta(void)
{
    struct raft_snapshot_meta m = { .index = 30, .term = 4, .size = RECV_SIZE,
                                    .crc = crc32c(payload + 100, RECV_SIZE) };
    m.config.n = 3;
    for (uint32_t i = 0; i < 3; i++)
        m.config.members[i] = (struct raft_member){ .id = i + 1, .role = RAFT_VOTER };
    return m;
}

static int do_op(struct storage *s, const struct op *o)
{
    switch (o->k) {
    case APPEND: {
        struct raft_entry es[MAXI];
        size_t n = 0;
        for (raft_index i = o->a; i <= o->b; i++)
            es[n++] = E(i, o->c);
        return storage_append(s, es, n);
    }
    case HS: {
        struct raft_hard_state hs = { o->a, o->b };
        return storage_set_hard_state(s, &hs);
    }
    case SYNC: return storage_sync(s);
    case TRUNC: return storage_truncate(s, o->a);
    case ADOPT: {
        struct raft_snapshot_meta m = recv_meta();
        m.index = o->a;
        m.term = o->b;
        m.size = 0;
        m.crc = 0;
        int rc = storage_snapshot_adopt(s, storage_snapshot_tmp_path(s), &m);
        if (rc == STORAGE_OK && (m.size != o->c || m.crc != crc32c(payload, o->c)))
            return -100;
        return rc;
    }
    case COMPACT: return storage_compact(s, o->a);
    case CHUNK: {
        struct raft_snapshot_meta m = recv_meta();
        uint32_t len = o->c + 2000 <= RECV_SIZE ? 2000 : (uint32_t)(RECV_SIZE - o->c);
        struct raft_snapshot_chunk c = { .meta = m, .offset = o->c, .len = len, .data = payload + 100 + o->c };
        return storage_snapshot_write_chunk(s, &c);
    }
    case INSTALL: {
        struct raft_snapshot_meta m = recv_meta();
        return storage_snapshot_install(s, &m);
    }
    }
    return -99;
}

/* The effect of a completed op on the volatile model v and the durable d. */
static void apply_op(struct model *v, struct model *d, const struct op *o)
{
    switch (o->k) {
    case APPEND:
        for (raft_index i = o->a; i <= o->b; i++)
            v->term[i] = o->c;
        v->last = o->b;
        break;
    case HS: v->hs = (struct raft_hard_state){ o->a, o->b }; break;
    case SYNC: *d = *v; break;
    case TRUNC:
        if (o->a <= v->last) {
            for (raft_index i = o->a; i <= v->last; i++)
                v->term[i] = 0;
            v->last = o->a - 1;
        }
        *d = *v; /* durable on return */
        break;
    case ADOPT:
        v->have_snap = true;
        v->snap = recv_meta();
        v->snap.index = o->a;
        v->snap.term = o->b;
        v->snap.size = o->c;
        v->snap.crc = crc32c(payload, o->c);
        *d = *v;
        break;
    case COMPACT: case CHUNK: break;
    case INSTALL:
        v->have_snap = true;
        v->snap = recv_meta();
        /* The log (up to 20) does not reach the snapshot: it starts over. */
        for (raft_index i = 0; i < MAXI; i++)
            v->term[i] = 0;
        v->last = v->snap.index;
        *d = *v;
        break;
    }
}

/* Whether the durable effect of an op can be only partly there after a
 * crash in it (used to accept either model's component). */
static struct model after_op(const struct model *v, const struct model *d, const struct op *o)
{
    struct model v2 = *v, d2 = *d;
    apply_op(&v2, &d2, o);
    return d2;
}

static bool same_snap(const struct storage_state *st, const struct model *m)
{
    if (st->have_snapshot != m->have_snap)
        return false;
    if (!m->have_snap)
        return true;
    return st->snapshot.index == m->snap.index && st->snapshot.term == m->snap.term &&
           st->snapshot.size == m->snap.size && st->snapshot.crc == m->snap.crc &&
           st->snapshot.config.n == m->snap.config.n;
}

/* The recovered state is one a crash during the op between `before` and
 * `after` may leave: each component old or new, every entry exactly one
 * that was written, every entry durable before (and not being truncated by
 * the op, cut) present, and the whole fitting raft_restore. */
static bool check_recovered(const struct storage_state *st, const struct model *before, const struct model *after,
                            const struct model *vol, const struct model *vol_after, raft_index cut,
                            const char *what)
{
    bool ok = true;
#define BAD(...) do { fprintf(stderr, "  %s: ", what); fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); ok = false; } while (0)
    bool hs_ok = (st->hard_state.term == before->hs.term && st->hard_state.vote == before->hs.vote) ||
                 (st->hard_state.term == after->hs.term && st->hard_state.vote == after->hs.vote);
    /* Open raises the term, with no vote, to an installed snapshot's or to
     * the last entry's when those became durable before the term did. */
    raft_term top = st->have_snapshot ? st->snapshot.term : 0;
    if (st->n_entries && st->entries[st->n_entries - 1].term > top)
        top = st->entries[st->n_entries - 1].term;
    if (!hs_ok && st->hard_state.term == top && st->hard_state.vote == 0 && before->hs.term < top)
        hs_ok = true;
    if (!hs_ok)
        BAD("hard state %llu/%llu is neither the old nor the new one",
            (unsigned long long)st->hard_state.term, (unsigned long long)st->hard_state.vote);
    const struct model *base = same_snap(st, before) ? before : same_snap(st, after) ? after : NULL;
    if (!base) {
        BAD("snapshot (%d, index %llu) is neither the old nor the new one", st->have_snapshot,
            (unsigned long long)st->snapshot.index);
        return false;
    }
    raft_index S = snap_index(base);
    for (size_t k = 0; k < st->n_entries; k++) {
        const struct raft_entry *e = &st->entries[k];
        raft_index i = S + 1 + k;
        /* Appended entries may be durable before a sync (a full segment is
         * synced when the next starts), so the volatile models count too. */
        const struct model *cands[4] = { before, after, vol, vol_after };
        bool match = false;
        for (int c = 0; c < 4 && !match; c++)
            match = e->index == i && i < MAXI && i <= cands[c]->last && cands[c]->term[i] &&
                    entry_is(e, i, cands[c]->term[i]);
        if (!match) {
            BAD("entry %zu (index %llu term %llu) was never written there", k, (unsigned long long)e->index,
                (unsigned long long)e->term);
            break;
        }
    }
    raft_index need = base->last;
    if (cut && cut - 1 < need)
        need = cut - 1;
    if (need > S && st->n_entries < need - S)
        BAD("only %zu entries after the snapshot at %llu; %llu were durable", st->n_entries,
            (unsigned long long)S, (unsigned long long)(need - S));
    struct raft_options ro;
    raft_options_default(&ro, 1, 1);
    struct raft *r = raft_create(&ro);
    int rc = raft_restore(r, &st->hard_state, st->have_snapshot ? &st->snapshot : NULL, st->entries,
                          st->n_entries, st->have_snapshot ? st->snapshot.index : 0);
    raft_destroy(r);
    if (rc != RAFT_OK)
        BAD("raft_restore refuses the recovered state: %s", raft_strerror(rc));
#undef BAD
    return ok;
}

static bool check_exact(const struct storage_state *st, const struct model *d, const char *what)
{
    if (!check_recovered(st, d, d, d, d, 0, what))
        return false;
    raft_index S = snap_index(d);
    if (st->n_entries != (d->last > S ? d->last - S : 0)) {
        fprintf(stderr, "  %s: %zu entries, expected %llu\n", what, st->n_entries,
                (unsigned long long)(d->last - S));
        return false;
    }
    return true;
}

/* After recovery the directory works: one more entry, synced, reopened. */
static bool still_usable(struct memfs *m, struct storage *s, const struct storage_state *st, const char *what)
{
    raft_index next = (st->have_snapshot ? st->snapshot.index : 0) + st->n_entries + 1;
    raft_term t = st->hard_state.term ? st->hard_state.term : 1;
    if (st->have_snapshot && st->snapshot.term > t)
        t = st->snapshot.term;
    if (st->n_entries && st->entries[st->n_entries - 1].term > t)
        t = st->entries[st->n_entries - 1].term;
    struct raft_hard_state hs = { t, st->hard_state.vote };
    struct raft_entry e = E(next, t);
    int rc = storage_set_hard_state(s, &hs);
    if (!rc)
        rc = storage_append(s, &e, 1);
    if (!rc)
        rc = storage_sync(s);
    storage_close(s);
    if (rc) {
        fprintf(stderr, "  %s: appending after recovery: %s\n", what, storage_errmsg(s));
        return false;
    }
    memfs_crash(m);
    struct storage_state st2;
    struct storage_options o = opts();
    if (storage_open(DIR, memfs_io(m), &o, &s, &st2, errbuf, sizeof errbuf)) {
        fprintf(stderr, "  %s: reopen after recovery: %s\n", what, errbuf);
        return false;
    }
    bool ok = st2.n_entries == st->n_entries + 1 && entry_is(&st2.entries[st2.n_entries - 1], next, t);
    if (!ok)
        fprintf(stderr, "  %s: the entry appended after recovery is not there\n", what);
    storage_state_free(&st2);
    storage_close(s);
    return ok;
}

enum mode { CRASH, RETRY };

/* One run of the workload with a fault at the nth call of kind op (nth 0:
 * none). Returns false on a failed check; *fired says whether the fault hit. */
static bool trial(enum memfs_op fop, uint64_t nth, int err, enum mode mode, bool *fired)
{
    char what[128];
    snprintf(what, sizeof what, "%s at %s #%llu (%s)", mode == CRASH ? "crash" : "retry",
             fop == MEMFS_WRITE ? "write" : fop == MEMFS_SYNC ? "fsync" : "rename", (unsigned long long)nth,
             strerror(err));
    struct memfs *m = memfs_create();
    const struct storage_io *io = memfs_io(m);
    struct storage_options o = opts();
    struct model v = { 0 }, d = { 0 };
    if (nth)
        memfs_fail_at(m, fop, nth, err);
    struct storage *s = NULL;
    struct storage_state st;
    bool ok = true, hit = false;
    int rc = storage_open(DIR, io, &o, &s, &st, errbuf, sizeof errbuf);
    struct model before = d, after = d, vol = v, vol_after = v;
    raft_index cut = 0;
    bool failed = false;
    if (rc) {
        if (!memfs_triggered(m)) {
            fprintf(stderr, "  %s: open failed without a fault: %s\n", what, errbuf);
            memfs_destroy(m);
            return false;
        }
        hit = true;
        if (mode == RETRY) {
            memfs_heal(m);
            rc = storage_open(DIR, io, &o, &s, &st, errbuf, sizeof errbuf);
            if (rc) {
                fprintf(stderr, "  %s: open retry failed: %s\n", what, errbuf);
                memfs_destroy(m);
                return false;
            }
        } else {
            failed = true;
        }
    }
    if (!failed)
        storage_state_free(&st);
    for (size_t i = 0; !failed && i < N_OPS; i++) {
        const struct op *op = &workload[i];
        if (op->k == ADOPT)
            memfs_write_file(m, storage_snapshot_tmp_path(s), payload, op->c);
        rc = do_op(s, op);
        if (rc == STORAGE_OK) {
            apply_op(&v, &d, op);
            continue;
        }
        if (!memfs_triggered(m)) {
            fprintf(stderr, "  %s: op %zu failed without a fault: %s\n", what, i, storage_errmsg(s));
            ok = false;
            break;
        }
        hit = true;
        /* The error says what failed, on which file, and why. */
        int want = (fop == MEMFS_SYNC || err != ENOSPC) ? STORAGE_EIO : STORAGE_ENOSPC;
        if (rc != want || !strstr(storage_errmsg(s), DIR) || !strstr(storage_errmsg(s), strerror(err))) {
            fprintf(stderr, "  %s: op %zu returned %d (%s), wanted %d\n", what, i, rc, storage_errmsg(s), want);
            ok = false;
        }
        if (mode == RETRY && rc == STORAGE_ENOSPC) {
            memfs_heal(m);
            rc = do_op(s, op);
            if (rc) {
                fprintf(stderr, "  %s: op %zu retried after the disk was freed: %s\n", what, i,
                        storage_errmsg(s));
                ok = false;
                break;
            }
            apply_op(&v, &d, op);
            continue;
        }
        before = d;
        after = after_op(&v, &d, op);
        vol = v;
        vol_after = v;
        struct model ignored = d;
        apply_op(&vol_after, &ignored, op);
        cut = op->k == TRUNC ? op->a : 0;
        failed = true;
    }
    *fired = hit || memfs_triggered(m);
    if (!ok) {
        storage_close(s);
        memfs_destroy(m);
        return false;
    }
    /* Power loss, then a healthy restart. */
    memfs_crash(m);
    memfs_heal(m);
    storage_close(s);
    rc = storage_open(DIR, io, &o, &s, &st, errbuf, sizeof errbuf);
    if (rc) {
        fprintf(stderr, "  %s: reopen after crash: %s\n", what, errbuf);
        memfs_destroy(m);
        return false;
    }
    ok = failed ? check_recovered(&st, &before, &after, &vol, &vol_after, cut, what) : check_exact(&st, &d, what);
    if (ok)
        ok = still_usable(m, s, &st, what);
    else
        storage_close(s);
    storage_state_free(&st);
    memfs_destroy(m);
    return ok;
}

/* Runs trials at every call of kind fop, until one no longer hits. */
static int every_point(enum memfs_op fop, int err, enum mode mode, int *points)
{
    int bad = 0;
    *points = 0;
    for (uint64_t nth = 1; nth < 10000; nth++) {
        bool fired = false;
        if (!trial(fop, nth, err, mode, &fired))
            bad++;
        if (!fired)
            break;
        (*points)++;
    }
    return bad;
}

TEST(workload_without_faults_survives_a_crash)
{
    bool fired;
    CHECK(trial(MEMFS_WRITE, 0, 0, CRASH, &fired));
    CHECK(!fired);
}

TEST(enospc_at_every_write_then_crash)
{
    int points;
    CHECK_EQ_I(every_point(MEMFS_WRITE, ENOSPC, CRASH, &points), 0);
    CHECK(points > 20);
    printf("write points in the workload: %d\n", points);
}

TEST(enospc_at_every_write_then_retry_succeeds)
{
    int points;
    CHECK_EQ_I(every_point(MEMFS_WRITE, ENOSPC, RETRY, &points), 0);
    CHECK(points > 20);
}

TEST(eio_at_every_write_then_crash)
{
    int points;
    CHECK_EQ_I(every_point(MEMFS_WRITE, EIO, CRASH, &points), 0);
    CHECK(points > 20);
}

TEST(fsync_failure_at_every_fsync_is_fatal_and_loses_nothing_durable)
{
    int points;
    CHECK_EQ_I(every_point(MEMFS_SYNC, EIO, CRASH, &points), 0);
    CHECK(points > 30);
    printf("fsync points in the workload: %d\n", points);
}

TEST(rename_failure_at_every_rename)
{
    int points;
    CHECK_EQ_I(every_point(MEMFS_RENAME, ENOSPC, CRASH, &points), 0);
    CHECK(points > 8);
    CHECK_EQ_I(every_point(MEMFS_RENAME, ENOSPC, RETRY, &points), 0);
    CHECK_EQ_I(every_point(MEMFS_RENAME, EIO, CRASH, &points), 0);
    printf("rename points in the workload: %d\n", points);
}

TEST(after_eio_every_call_fails)
{
    struct memfs *m = memfs_create();
    struct storage *s;
    struct storage_state st;
    struct storage_options o = opts();
    REQUIRE(storage_open(DIR, memfs_io(m), &o, &s, &st, errbuf, sizeof errbuf) == STORAGE_OK);
    storage_state_free(&st);
    struct raft_entry e = E(1, 1);
    struct raft_hard_state hs = { 1, 0 };
    CHECK_EQ_I(storage_set_hard_state(s, &hs), STORAGE_OK);
    CHECK_EQ_I(storage_append(s, &e, 1), STORAGE_OK);
    memfs_fail_at(m, MEMFS_SYNC, 2, EIO); /* the hard state's file fsync passes, the directory's fails */
    CHECK_EQ_I(storage_sync(s), STORAGE_EIO);
    CHECK(strstr(storage_errmsg(s), "fdatasync"));
    CHECK(strstr(storage_errmsg(s), "fatal"));
    memfs_heal(m);
    /* Never retried: the storage stays failed. */
    CHECK_EQ_I(storage_sync(s), STORAGE_EIO);
    struct raft_entry e2 = E(2, 1);
    CHECK_EQ_I(storage_append(s, &e2, 1), STORAGE_EIO);
    CHECK_EQ_I(storage_truncate(s, 1), STORAGE_EIO);
    CHECK(strstr(storage_errmsg(s), "fdatasync"));
    storage_close(s);
    memfs_destroy(m);
}

/* Opens with small segments, or default ones (one segment) if big. */
static struct storage *mopen_with(struct memfs *m, struct storage_state *st, bool big)
{
    struct storage *s = NULL;
    struct storage_options o = opts();
    if (big)
        storage_options_default(&o);
    if (storage_open(DIR, memfs_io(m), &o, &s, st, errbuf, sizeof errbuf)) {
        fprintf(stderr, "  open: %s\n", errbuf);
        return NULL;
    }
    return s;
}

static struct storage *mopen(struct memfs *m, struct storage_state *st) { return mopen_with(m, st, false); }

static int append_range(struct storage *s, raft_index a, raft_index b, raft_term t)
{
    for (raft_index i = a; i <= b; i++) {
        struct raft_entry e = E(i, t);
        int rc = storage_append(s, &e, 1);
        if (rc)
            return rc;
    }
    return STORAGE_OK;
}

TEST(truncate_then_append_then_crash_never_resurrects)
{
    struct memfs *m = memfs_create();
    struct storage_state st;
    struct storage *s = mopen(m, &st);
    REQUIRE(s);
    storage_state_free(&st);
    struct raft_hard_state hs = { 1, 0 }, hs2 = { 2, 0 };
    storage_set_hard_state(s, &hs);
    CHECK_EQ_I(append_range(s, 1, 20, 1), STORAGE_OK); /* several segments */
    CHECK_EQ_I(storage_sync(s), STORAGE_OK);
    CHECK_EQ_I(storage_truncate(s, 5), STORAGE_OK);
    storage_set_hard_state(s, &hs2);
    CHECK_EQ_I(append_range(s, 5, 7, 2), STORAGE_OK);
    /* No sync: power loss. */
    memfs_crash(m);
    storage_close(s);
    s = mopen(m, &st);
    REQUIRE(s);
    REQUIRE(st.n_entries == 4);
    for (raft_index i = 1; i <= 4; i++)
        CHECK(entry_is(&st.entries[i - 1], i, 1));
    storage_state_free(&st);
    /* The same with a sync: the new entries and only they. */
    CHECK_EQ_I(storage_set_hard_state(s, &hs2), STORAGE_OK);
    CHECK_EQ_I(append_range(s, 5, 7, 2), STORAGE_OK);
    CHECK_EQ_I(storage_sync(s), STORAGE_OK);
    memfs_crash(m);
    storage_close(s);
    s = mopen(m, &st);
    REQUIRE(s);
    REQUIRE(st.n_entries == 7);
    for (raft_index i = 5; i <= 7; i++)
        CHECK(entry_is(&st.entries[i - 1], i, 2));
    storage_state_free(&st);
    storage_close(s);
    memfs_destroy(m);
}

TEST(unsynced_appends_are_lost_synced_ones_kept)
{
    for (int big = 1; big >= 0; big--) {
        struct memfs *m = memfs_create();
        struct storage_state st;
        struct storage *s = mopen_with(m, &st, big);
        REQUIRE(s);
        storage_state_free(&st);
        struct raft_hard_state hs = { 1, 0 };
        storage_set_hard_state(s, &hs);
        append_range(s, 1, 10, 1);
        CHECK_EQ_I(storage_sync(s), STORAGE_OK);
        append_range(s, 11, 25, 1); /* never synced */
        memfs_crash(m);
        storage_close(s);
        s = mopen_with(m, &st, big);
        REQUIRE(s);
        if (big) {
            CHECK_EQ_U(st.n_entries, 10); /* one segment: nothing of them was synced */
        } else {
            /* Small segments: each full one was synced before the next began,
             * so some of 11..24 may survive, whole and in order. */
            CHECK(st.n_entries >= 10 && st.n_entries < 25);
        }
        for (size_t k = 0; k < st.n_entries; k++)
            CHECK(entry_is(&st.entries[k], k + 1, 1));
        storage_state_free(&st);
        storage_close(s);
        memfs_destroy(m);
    }
}

/* A crash that keeps any prefix of the unsynced bytes of the last segment
 * (a write torn at every byte): whole records survive, the torn one is cut,
 * nothing else is lost or invented. */
TEST(write_torn_at_every_byte)
{
    struct memfs *probe = memfs_create();
    struct storage_state st;
    struct storage *s = mopen_with(probe, &st, true);
    REQUIRE(s);
    storage_state_free(&st);
    storage_close(s);
    const char *names[8];
    int listed = memfs_list(probe, DIR, names, 8); /* the segment and the hard state */
    char seg[128] = "";
    for (int i = 0; i < listed; i++)
        if (strncmp(names[i], "log-", 4) == 0)
            snprintf(seg, sizeof seg, DIR "/%s", names[i]);
    REQUIRE(seg[0]);
    memfs_destroy(probe);

    int bad = 0;
    for (size_t keep = 0;; keep++) {
        struct memfs *m = memfs_create();
        s = mopen_with(m, &st, true);
        REQUIRE(s);
        storage_state_free(&st);
        struct raft_hard_state hs = { 1, 0 };
        storage_set_hard_state(s, &hs);
        append_range(s, 1, 2, 1);
        storage_sync(s);
        long synced = memfs_file_size(m, seg);
        append_range(s, 3, 5, 1); /* fits in the 400-byte segment: no rollover */
        long full = memfs_file_size(m, seg);
        if ((long)keep > full - synced) {
            storage_close(s);
            memfs_destroy(m);
            break;
        }
        memfs_crash_keep(m, seg, (size_t)synced + keep);
        storage_close(s);
        s = mopen_with(m, &st, true);
        if (!s) {
            bad++;
            memfs_destroy(m);
            continue;
        }
        /* Whole records in the kept prefix: 2 + those complete. */
        size_t off = (size_t)synced, n = 2;
        for (raft_index i = 3; i <= 5; i++) {
            size_t rb = 32 + ((len_of(i, 1) + 7u) & ~7u);
            if (off + rb > (size_t)synced + keep)
                break;
            off += rb;
            n++;
        }
        bool torn = off != (size_t)synced + keep;
        if (st.n_entries != n || st.torn_tail_truncated != torn)
            bad++;
        for (size_t k = 0; k < st.n_entries; k++)
            if (!entry_is(&st.entries[k], k + 1, 1))
                bad++;
        storage_state_free(&st);
        storage_close(s);
        memfs_destroy(m);
    }
    CHECK_EQ_I(bad, 0);
}

TEST(faults_during_recovery_itself)
{
    /* A directory whose open has work to do: a torn tail to cut and a
     * snapshot that replaces an older log. Every write/fsync/rename of that
     * open fails in turn; a healthy open afterwards still recovers it. */
    int bad = 0, points = 0;
    for (int fop = 0; fop < MEMFS_N_OPS; fop++) {
        for (uint64_t nth = 1; nth < 100; nth++) {
            struct memfs *m = memfs_create();
            struct storage_state st;
            struct storage *s = mopen_with(m, &st, true);
            REQUIRE(s);
            storage_state_free(&st);
            struct raft_hard_state hs = { 1, 0 };
            storage_set_hard_state(s, &hs);
            append_range(s, 1, 3, 1);
            storage_sync(s);
            const char *names[8];
            size_t nn = memfs_list(m, DIR, names, 8);
            char seg[128] = "";
            for (size_t i = 0; i < nn; i++)
                if (strncmp(names[i], "log-", 4) == 0)
                    snprintf(seg, sizeof seg, DIR "/%s", names[i]);
            long size = memfs_file_size(m, seg);
            append_range(s, 4, 5, 2); /* a new leader's entries; its term not yet durable */
            /* Power loss keeping record 4 whole and 10 bytes of record 5. */
            size_t r4 = 32 + ((len_of(4, 2) + 7u) & ~7u);
            memfs_crash_keep(m, seg, (size_t)size + r4 + 10);
            storage_close(s);
            memfs_fail_at(m, (enum memfs_op)fop, nth, fop == MEMFS_SYNC ? EIO : ENOSPC);
            int rc = storage_open(DIR, memfs_io(m), NULL, &s, &st, errbuf, sizeof errbuf);
            bool fired = memfs_triggered(m);
            if (rc == STORAGE_OK) {
                storage_state_free(&st);
                storage_close(s);
            } else if (!fired) {
                bad++;
            }
            memfs_crash(m);
            memfs_heal(m);
            s = mopen_with(m, &st, true);
            if (!s || st.n_entries != 4 || !entry_is(&st.entries[3], 4, 2) || st.hard_state.term != 2 ||
                st.hard_state.vote != 0)
                bad++;
            if (s) {
                storage_state_free(&st);
                storage_close(s);
            }
            memfs_destroy(m);
            if (!fired)
                break;
            points++;
        }
    }
    CHECK_EQ_I(bad, 0);
    CHECK(points >= 5);
}

TEST(a_failed_append_leaves_nothing_behind)
{
    /* ENOSPC half way through a batch, then the caller appends something
     * else at those indexes (say, the leader changed): no record of the
     * failed batch may ever reappear after the new ones. */
    for (int big = 1; big >= 0; big--) {
        struct memfs *m = memfs_create();
        struct storage_state st;
        struct storage *s = mopen_with(m, &st, big);
        REQUIRE(s);
        storage_state_free(&st);
        struct raft_hard_state hs = { 1, 0 }, hs2 = { 2, 0 };
        storage_set_hard_state(s, &hs);
        append_range(s, 1, 3, 1);
        CHECK_EQ_I(storage_sync(s), STORAGE_OK);
        struct raft_entry batch[8];
        for (int i = 0; i < 8; i++)
            batch[i] = E(4 + (raft_index)i, 1);
        memfs_fail_at(m, MEMFS_WRITE, big ? 1 : 2, ENOSPC);
        CHECK_EQ_I(storage_append(s, batch, 8), STORAGE_ENOSPC);
        memfs_heal(m);
        CHECK_EQ_I(storage_set_hard_state(s, &hs2), STORAGE_OK);
        CHECK_EQ_I(append_range(s, 4, 4, 2), STORAGE_OK);
        CHECK_EQ_I(storage_sync(s), STORAGE_OK);
        memfs_crash(m);
        storage_close(s);
        s = mopen_with(m, &st, big);
        REQUIRE(s);
        CHECK_EQ_U(st.n_entries, 4);
        if (st.n_entries == 4)
            CHECK(entry_is(&st.entries[3], 4, 2));
        CHECK(!st.torn_tail_truncated);
        storage_state_free(&st);
        storage_close(s);
        memfs_destroy(m);
    }
}

/* Damage of every kind at random places, seeded: open either refuses with
 * STORAGE_ECORRUPT and a message naming a file, or returns a state whose
 * every entry is exactly one that was written and which raft_restore
 * accepts. It never crashes (the sanitizer build checks) and never invents
 * data. */
static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

TEST(random_damage_is_refused_or_recovered_never_invented)
{
    int bad = 0, refused = 0, recovered = 0;
    for (uint64_t seed = 1; seed <= 600; seed++) {
        rng_state = seed * 0x9E3779B97F4A7C15ull;
        struct memfs *m = memfs_create();
        struct storage_state st;
        struct storage *s = mopen(m, &st);
        REQUIRE(s);
        storage_state_free(&st);
        struct raft_hard_state hs = { 2, 1 };
        storage_set_hard_state(s, &hs);
        append_range(s, 1, 12, 1);
        append_range(s, 13, 30, 2);
        storage_sync(s);
        memfs_write_file(m, storage_snapshot_tmp_path(s), payload, 700);
        struct raft_snapshot_meta meta = recv_meta();
        meta.index = 10;
        meta.term = 1;
        meta.size = 0; /* the storage reads the file for its size and CRC */
        meta.crc = 0;
        storage_snapshot_adopt(s, storage_snapshot_tmp_path(s), &meta);
        storage_close(s);
        const char *names[32];
        size_t nn = memfs_list(m, DIR, names, 32);
        int damages = 1 + (int)(rnd() % 3);
        for (int d = 0; d < damages; d++) {
            /* Half the time the last segment, where a torn tail is legal. */
            const char *pick = names[rnd() % nn], *last_seg = NULL;
            for (size_t i = 0; i < nn; i++)
                if (strncmp(names[i], "log-", 4) == 0 && (!last_seg || strcmp(names[i], last_seg) > 0))
                    last_seg = names[i];
            if (last_seg && rnd() % 2)
                pick = last_seg;
            char path[128];
            snprintf(path, sizeof path, DIR "/%s", pick);
            size_t len = 0;
            uint8_t *b = memfs_read_file(m, path, &len);
            if (!b)
                continue;
            switch (rnd() % 4) {
            case 0: /* flip bits */
                if (len)
                    b[rnd() % len] ^= (uint8_t)(1u << (rnd() % 8));
                memfs_write_file(m, path, b, len);
                break;
            case 1: /* cut */
                memfs_write_file(m, path, b, len ? rnd() % len : 0);
                break;
            case 2: { /* random bytes appended or overwritten */
                uint8_t junk[64];
                for (size_t i = 0; i < sizeof junk; i++)
                    junk[i] = (uint8_t)rnd();
                uint8_t *c = malloc(len + sizeof junk);
                memcpy(c, b, len);
                size_t at = rnd() % 2 && len ? rnd() % len : len;
                memcpy(c + at, junk, sizeof junk);
                memfs_write_file(m, path, c, at + sizeof junk > len ? at + sizeof junk : len);
                free(c);
                break;
            }
            default: /* zeros over a stretch */
                if (len) {
                    size_t at = rnd() % len, n = 1 + rnd() % 64;
                    memset(b + at, 0, at + n > len ? len - at : n);
                }
                memfs_write_file(m, path, b, len);
                break;
            }
            free(b);
        }
        struct storage_options o = opts();
        int rc = storage_open(DIR, memfs_io(m), &o, &s, &st, errbuf, sizeof errbuf);
        if (rc == STORAGE_ECORRUPT) {
            refused++;
            if (getenv("SHOW_REFUSALS"))
                fprintf(stderr, "refused: %.150s\n", errbuf);
            if (!strstr(errbuf, DIR "/"))
                bad++;
        } else if (rc != STORAGE_OK) {
            fprintf(stderr, "  seed %llu: open returned %d: %s\n", (unsigned long long)seed, rc, errbuf);
            bad++;
        } else {
            recovered++;
            raft_index S = st.have_snapshot ? st.snapshot.index : 0;
            for (size_t k = 0; k < st.n_entries; k++) {
                raft_index i = S + 1 + k;
                if (!entry_is(&st.entries[k], i, i <= 12 ? 1 : 2)) {
                    fprintf(stderr, "  seed %llu: entry %llu invented\n", (unsigned long long)seed,
                            (unsigned long long)i);
                    bad++;
                    break;
                }
            }
            struct raft_options ro;
            raft_options_default(&ro, 1, 1);
            struct raft *r = raft_create(&ro);
            if (raft_restore(r, &st.hard_state, st.have_snapshot ? &st.snapshot : NULL, st.entries, st.n_entries,
                             S) != RAFT_OK)
                bad++;
            raft_destroy(r);
            storage_state_free(&st);
            storage_close(s);
        }
        memfs_destroy(m);
    }
    CHECK_EQ_I(bad, 0);
    CHECK(refused > 50);
    CHECK(recovered > 60);
    printf("random damage: %d refused, %d recovered\n", refused, recovered);
}

TEST(install_over_unsynced_appends_then_crash_at_every_fsync)
{
    /* Appends not yet synced (a ready whose sync has not happened), then a
     * snapshot replaces the log. A crash at any fsync of the install must
     * leave a directory that opens: never an old segment with a torn tail
     * that is no longer the last one. */
    int bad = 0, points = 0;
    for (uint64_t nth = 1; nth < 100; nth++) {
        struct memfs *m = memfs_create();
        struct storage_state st;
        struct storage *s = mopen(m, &st);
        REQUIRE(s);
        storage_state_free(&st);
        struct raft_hard_state hs = { 3, 0 };
        storage_set_hard_state(s, &hs);
        append_range(s, 1, 8, 1);
        storage_sync(s);
        const char *names[16];
        size_t nn = memfs_list(m, DIR, names, 16);
        char last_seg[128] = "";
        for (size_t i = 0; i < nn; i++)
            if (strncmp(names[i], "log-", 4) == 0 && strcmp(names[i], last_seg + strlen(DIR "/")) > 0)
                snprintf(last_seg, sizeof last_seg, DIR "/%s", names[i]);
        long synced = memfs_file_size(m, last_seg);
        append_range(s, 9, 10, 1); /* unsynced */
        struct raft_snapshot_meta meta = recv_meta();
        struct raft_snapshot_chunk c = { .meta = meta, .offset = 0, .len = RECV_SIZE, .data = payload + 100 };
        storage_snapshot_write_chunk(s, &c);
        memfs_fail_at(m, MEMFS_SYNC, nth, EIO);
        int rc = storage_snapshot_install(s, &meta);
        bool fired = memfs_triggered(m);
        if (rc != (fired ? STORAGE_EIO : STORAGE_OK))
            bad++;
        /* Crash keeping the torn half of a record at the end of the old open
         * segment, the worst a power loss can leave there. */
        memfs_heal(m);
        memfs_crash_keep(m, last_seg, (size_t)synced + 20);
        storage_close(s);
        s = mopen(m, &st);
        if (!s) {
            fprintf(stderr, "  install crash at fsync #%llu: %s\n", (unsigned long long)nth, errbuf);
            bad++;
        } else {
            if (st.have_snapshot ? st.n_entries != 0 || st.snapshot.index != 30 : st.n_entries < 8)
                bad++;
            storage_state_free(&st);
            storage_close(s);
        }
        memfs_destroy(m);
        if (!fired)
            break;
        points++;
    }
    CHECK_EQ_I(bad, 0);
    CHECK(points >= 5);
}

TEST(enospc_on_a_snapshot_chunk_then_retry)
{
    struct memfs *m = memfs_create();
    struct storage_state st;
    struct storage *s = mopen(m, &st);
    REQUIRE(s);
    storage_state_free(&st);
    struct raft_snapshot_meta meta = recv_meta();
    struct raft_snapshot_chunk c0 = { .meta = meta, .offset = 0, .len = 2000, .data = payload + 100 };
    struct raft_snapshot_chunk c1 = { .meta = meta, .offset = 2000, .len = 3000, .data = payload + 2100 };
    CHECK_EQ_I(storage_snapshot_write_chunk(s, &c0), STORAGE_OK);
    memfs_fail_at(m, MEMFS_WRITE, 1, ENOSPC);
    CHECK_EQ_I(storage_snapshot_write_chunk(s, &c1), STORAGE_ENOSPC);
    CHECK_EQ_I(storage_snapshot_install(s, &meta), STORAGE_ECORRUPT); /* incomplete: refused */
    memfs_heal(m);
    CHECK_EQ_I(storage_snapshot_write_chunk(s, &c0), STORAGE_OK);
    memfs_fail_at(m, MEMFS_WRITE, 1, ENOSPC);
    CHECK_EQ_I(storage_snapshot_write_chunk(s, &c1), STORAGE_ENOSPC);
    memfs_heal(m);
    CHECK_EQ_I(storage_snapshot_write_chunk(s, &c1), STORAGE_OK);
    CHECK_EQ_I(storage_snapshot_install(s, &meta), STORAGE_OK);
    memfs_crash(m);
    storage_close(s);
    s = mopen(m, &st);
    REQUIRE(s);
    CHECK(st.have_snapshot);
    CHECK_EQ_U(st.snapshot.crc, meta.crc);
    uint8_t b[100];
    CHECK_EQ_I(storage_snapshot_read(s, 30, 4900, b, 100), STORAGE_OK);
    CHECK(memcmp(b, payload + 100 + 4900, 100) == 0);
    storage_state_free(&st);
    storage_close(s);
    memfs_destroy(m);
}

int main(void)
{
    init_payload();
    RUN(workload_without_faults_survives_a_crash);
    RUN(enospc_at_every_write_then_crash);
    RUN(enospc_at_every_write_then_retry_succeeds);
    RUN(eio_at_every_write_then_crash);
    RUN(fsync_failure_at_every_fsync_is_fatal_and_loses_nothing_durable);
    RUN(rename_failure_at_every_rename);
    RUN(after_eio_every_call_fails);
    RUN(truncate_then_append_then_crash_never_resurrects);
    RUN(unsynced_appends_are_lost_synced_ones_kept);
    RUN(write_torn_at_every_byte);
    RUN(faults_during_recovery_itself);
    RUN(a_failed_append_leaves_nothing_behind);
    RUN(install_over_unsynced_appends_then_crash_at_every_fsync);
    RUN(enospc_on_a_snapshot_chunk_then_retry);
    RUN(random_damage_is_refused_or_recovered_never_invented);
    return HARNESS_END();
}
