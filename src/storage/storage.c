/*
 * storage.c — the whole of a node's durable state (include/storage.h): open
 * and recovery of a data directory, and the persist step of a ready
 * (truncate, append, hard state, one sync) plus compaction.
 *
 * Crash ordering, the reasoning in one place:
 *   - storage_sync writes the hard state first, then fdatasyncs the log, so a
 *     sync never makes entries durable ahead of their term. (A rollover in
 *     the middle of storage_append, or an install before the ready's hard
 *     state, still can: open raises the term to cover them, with no vote;
 *     raft_restore needs the term to cover every entry, §3.3.)
 *   - storage_truncate is durable when it returns (the segments after the cut
 *     are removed newest first, each removal fsynced, then the cut segment is
 *     ftruncated and fdatasynced). New records are only written after that,
 *     so a crash can never show truncated entries again, nor mix old records
 *     with new ones at the same offsets.
 *   - a full segment is fdatasynced before the next one is created, so only
 *     the last segment can have a torn tail.
 *   - a failed append is undone (new segments removed, the segment cut back to
 *     where it was and fdatasynced if this call had synced it), so a retry
 *     after ENOSPC writes the same bytes at the same place.
 */
#include "storage/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *storage_strerror(int rc)
{
    switch (rc) {
    case STORAGE_OK: return "ok";
    case STORAGE_EIO: return "I/O error (fatal)";
    case STORAGE_ENOSPC: return "disk full";
    case STORAGE_ECORRUPT: return "data on disk is damaged";
    case STORAGE_ENOMEM: return "out of memory";
    case STORAGE_EINVAL: return "invalid argument";
    default: return "unknown storage error";
    }
}

void storage_options_default(struct storage_options *o)
{
    *o = (struct storage_options){ .segment_bytes = 64u << 20 }; /* every flag off */
}

const char *storage_errmsg(const struct storage *s) { return s->errmsg; }



static int check_usable(struct storage *s)
{
    if (s->broken)
        return STORAGE_EIO; /* errmsg still says what failed first */
    if (s->plan)
        return st_fail(s, STORAGE_EINVAL, "the data directory %s is not open yet: call storage_open_finish",
                       s->dir);
    if (s->reset_pending)
        return st_fail(s, STORAGE_ENOSPC, "the log could not be restarted after installing the snapshot at "
                       "index %llu (disk full); retry storage_snapshot_install first",
                       (unsigned long long)s->snap.index);
    return STORAGE_OK;
}

/* ---- Open and recovery ------------------------------------------------------ */

struct names {
    char **v;
    size_t n, cap;
    bool oom;
};

static void names_add(void *arg, const char *name)
{
    struct names *ns = arg;
    if (ns->oom)
        return;
    if (ns->n == ns->cap) {
        size_t cap = ns->cap ? ns->cap * 2 : 32;
        char **p = realloc(ns->v, cap * sizeof *p);
        if (!p) {
            ns->oom = true;
            return;
        }
        ns->v = p;
        ns->cap = cap;
    }
    char *d = strdup(name);
    if (!d) {
        ns->oom = true;
        return;
    }
    ns->v[ns->n++] = d;
}

static void names_free(struct names *ns)
{
    for (size_t i = 0; i < ns->n; i++)
        free(ns->v[i]);
    free(ns->v);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int cmp_scan_seq(const void *a, const void *b)
{
    const struct st_scan *x = a, *y = b;
    return x->seg.seq < y->seg.seq ? -1 : x->seg.seq > y->seg.seq;
}

/* The buffers a recovered state's entries point into. */
struct owned {
    uint8_t **bufs;
    size_t n;
};

void storage_state_free(struct storage_state *st)
{
    if (!st)
        return;
    struct owned *o = st->priv;
    if (o) {
        for (size_t i = 0; i < o->n; i++)
            free(o->bufs[i]);
        free(o->bufs);
        free(o);
    }
    free(st->entries);
    memset(st, 0, sizeof *st);
}

static void note(struct storage_state *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct storage_state *st, const char *fmt, ...)
{
    size_t used = strlen(st->recovery_note);
    if (used + 3 >= sizeof st->recovery_note)
        return;
    if (used) {
        memcpy(st->recovery_note + used, "; ", 3);
        used += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->recovery_note + used, sizeof st->recovery_note - used, fmt, ap);
    va_end(ap);
}

static int make_dir(struct storage *s)
{
    if (s->io->mkdir(s->io->ctx, s->dir, 0700) == 0) {
        /* Make the new directory's own name durable in its parent. */
        char parent[ST_PATH_MAX];
        snprintf(parent, sizeof parent, "%s", s->dir);
        char *slash = strrchr(parent, '/');
        if (slash == parent)
            slash[1] = 0;
        else if (slash)
            *slash = 0;
        else
            snprintf(parent, sizeof parent, ".");
        int fd = s->io->open(s->io->ctx, parent, O_RDONLY | O_DIRECTORY, 0);
        if (fd < 0) {
            int e = errno;
            return st_fail(s, STORAGE_EIO, "opening %s to fsync it after creating %s failed: %s", parent,
                           s->dir, strerror(e));
        }
        int rc = st_sync_fd(s, fd, parent, "making the new data directory durable");
        st_close(s, fd);
        return rc;
    }
    int e = errno;
    if (e == EEXIST)
        return STORAGE_OK;
    return st_fail(s, st_errno_rc(e), "creating data directory %s failed: %s", s->dir, strerror(e));
}

/* ---- Recovery: check everything read-only, then change ---------------------
 *
 * storage_open first reads the whole directory and decides, changing
 * nothing: a refusal (ECORRUPT) leaves every file as it was, so an operator
 * (or a later build) sees exactly what the crash or the damage left. What it
 * decided to change (temporary files, a torn tail, segments the snapshot
 * covers, a discarded log, a raised term) is kept in a plan and carried out
 * by storage_open_finish, which the caller runs once it has checked that the
 * rest of its state (the database) fits too. docs/disk-format.md, "What
 * recovery checks, in order, and what it changes only after". */

struct st_open_plan {
    struct names ns;           /* the directory's names, for the clean-up */
    bool marker;               /* install.pending exists */
    bool cut;                  /* cut the last segment at cut_at */
    uint64_t cut_seq, cut_at;
    uint64_t *drop_seqs;       /* segments to remove (oldest first) */
    size_t n_drop;
    bool write_hs;             /* write s->hs (the term was raised, no vote) */
    bool reset;                /* no segment is left: start an empty log at S + 1 */
};

static void plan_free(struct st_open_plan *p)
{
    if (!p)
        return;
    names_free(&p->ns);
    free(p->drop_seqs);
    free(p);
}

/* Checks the snapshot data file named by the metadata (read-only). */
static int check_snapshot(struct storage *s)
{
    if (!s->have_snap)
        return STORAGE_OK;
    char name[96];
    st_snapshot_data_name(name, sizeof name, s->snap.index, s->snap.term);
    st_path(s, s->snap_path, name);
    uint64_t size = 0;
    uint32_t crc = 0;
    int rc = st_file_crc(s, s->snap_path, &size, &crc);
    if (rc == 1)
        return st_fail(s, STORAGE_ECORRUPT, "snapshot data file %s named by %s/%s is missing; %s", s->snap_path,
                       s->dir, ST_SNAPMETA_NAME, st_restore_advice());
    if (rc)
        return rc;
    if (size != s->snap.size || crc != s->snap.crc)
        return st_fail(s, STORAGE_ECORRUPT,
                       "snapshot data file %s is damaged: %llu bytes with CRC32C %08x, but %s/%s says "
                       "%llu bytes with CRC32C %08x; %s", s->snap_path, (unsigned long long)size, crc,
                       s->dir, ST_SNAPMETA_NAME, (unsigned long long)s->snap.size, s->snap.crc,
                       st_restore_advice());
    return STORAGE_OK;
}

/* Scans every segment and decides what the log is (read-only): a torn tail
 * to cut, segments the snapshot covers, a log an interrupted install was
 * replacing; checks that the rest fits together and fills st->entries. */
static int check_log(struct storage *s, struct st_open_plan *p, bool had_hs, struct storage_state *st)
{
    const struct names *ns = &p->ns;
    struct st_scan *sc = NULL;
    size_t n = 0;
    int rc = STORAGE_OK;
    for (size_t i = 0; i < ns->n; i++) {
        uint64_t seq;
        if (st_segment_parse_name(ns->v[i], &seq))
            n++;
    }
    sc = calloc(n ? n : 1, sizeof *sc);
    p->drop_seqs = calloc(n ? n : 1, sizeof *p->drop_seqs);
    if (!sc || !p->drop_seqs) {
        free(sc);
        return st_fail(s, STORAGE_ENOMEM, "opening %s: out of memory", s->dir);
    }
    size_t k = 0;
    for (size_t i = 0; i < ns->n; i++)
        if (st_segment_parse_name(ns->v[i], &sc[k].seg.seq))
            k++;
    qsort(sc, n, sizeof *sc, cmp_scan_seq);
    uint64_t records = 0;
    for (size_t i = 0; i < n && rc == STORAGE_OK; i++) {
        char name[64];
        st_segment_name(name, sizeof name, sc[i].seg.seq);
        uint64_t seq = sc[i].seg.seq;
        rc = st_segment_scan(s, name, seq, i == n - 1, &sc[i]);
        records += sc[i].seg.n;
        if (seq >= s->next_seq)
            s->next_seq = seq + 1;
    }
    if (rc)
        goto out;

    /* A log with entries and no hard state lost its hard state: the term
     * and vote it held are unknown, and guessing (the term of the last
     * entry, no vote) could let this node vote twice in one term. Only an
     * empty log can have no hard state yet (a fresh node, or one that
     * crashed right after its first snapshot install). */
    if (!had_hs && records > 0) {
        rc = st_fail(s, STORAGE_ECORRUPT,
                     "the hard state file %s/%s is missing but the log holds %llu entries: the term and vote "
                     "this node recorded are lost, and guessing them could make it vote twice in one term; %s",
                     s->dir, ST_HS_NAME, (unsigned long long)records, st_restore_advice());
        goto out;
    }

    raft_index S = s->have_snap ? s->snap.index : 0;
    bool discard = false;
    if (n > 0 && s->have_snap) {
        /* Does the log hold the snapshot's last entry with the snapshot's
         * term, or continue after it? */
        bool found = false, match = false;
        raft_index last = 0, found_term = 0;
        size_t found_seg = 0;
        for (size_t i = 0; i < n; i++) {
            struct st_segment *g = &sc[i].seg;
            if (g->n)
                last = g->first + g->n - 1;
            if (g->n && g->first <= S && S < g->first + g->n) {
                found = true;
                found_seg = i;
                found_term = sc[i].entries[S - g->first].term;
                match = found_term == s->snap.term;
            }
        }
        /* Not found with last > S: S was compacted away, which is fine if
         * the log continues at S + 1 (checked below). */
        bool older = (found && !match) || (!found && last > 0 && last < S);
        if (older && !p->marker) {
            /* Only an install replaces a log by a snapshot it does not
             * reach; without its marker this log lost entries it had
             * synced (and perhaps acknowledged). */
            char name[64];
            st_segment_name(name, sizeof name, sc[found ? found_seg : n - 1].seg.seq);
            if (found)
                rc = st_fail(s, STORAGE_ECORRUPT,
                             "log segment %s/%s holds entry %llu with term %llu but the snapshot at that index "
                             "has term %llu, and no snapshot install was interrupted (no %s): the log and the "
                             "snapshot disagree; %s", s->dir, name, (unsigned long long)S,
                             (unsigned long long)found_term, (unsigned long long)s->snap.term,
                             ST_INSTALL_MARKER_NAME, st_restore_advice());
            else
                rc = st_fail(s, STORAGE_ECORRUPT,
                             "the log ends at index %llu (in %s/%s) but the snapshot covers up to index %llu, "
                             "and no snapshot install was interrupted (no %s): log entries %llu..%llu that "
                             "were synced are missing; %s", (unsigned long long)last, s->dir, name,
                             (unsigned long long)S, ST_INSTALL_MARKER_NAME, (unsigned long long)(last + 1),
                             (unsigned long long)S, st_restore_advice());
            goto out;
        }
        discard = older;
        if (discard)
            note(st, "the log (up to index %llu) does not continue the snapshot at index %llu term %llu; an "
                 "install was interrupted (%s): the log is replaced by the snapshot", (unsigned long long)last,
                 (unsigned long long)S, (unsigned long long)s->snap.term, ST_INSTALL_MARKER_NAME);
    }

    /* A bad last record of the last segment (only it can be torn). */
    if (n > 0 && sc[n - 1].torn && !discard) {
        struct st_scan *t = &sc[n - 1];
        char name[64];
        st_segment_name(name, sizeof name, t->seg.seq);
        p->cut = true;
        p->cut_seq = t->seg.seq;
        p->cut_at = t->seg.end;
        st->torn_tail_truncated = true;
        st->tail_maybe_acked = t->torn_whole;
        /* What is known: the record is not valid and nothing valid follows.
         * A write cut short by a crash was never synced, so never
         * acknowledged; but the same bytes can be a synced record damaged
         * since, and that one may have been acknowledged. */
        note(st, "cut %llu bytes at the end of %s/%s from byte offset %llu (%s, nothing valid after it): "
             "a write a crash cut short (never acknowledged) or a synced record damaged since (it may have "
             "been acknowledged; the leader sends it again)",
             (unsigned long long)(t->size - t->seg.end), s->dir, name, (unsigned long long)t->seg.end,
             t->torn_why ? t->torn_why : "invalid record");
    }

    /* Segments wholly covered by the snapshot are no longer part of the log
     * (a crash during compaction may even have left holes among them). */
    size_t drop = 0;
    if (discard) {
        drop = n;
    } else {
        while (drop < n) {
            struct st_segment *g = &sc[drop].seg;
            bool covered = g->n ? g->first + g->n - 1 <= S : g->first <= S;
            if (!covered)
                break;
            drop++;
        }
    }
    for (size_t i = 0; i < drop; i++)
        p->drop_seqs[p->n_drop++] = sc[i].seg.seq;
    if (drop && !discard)
        note(st, "removed %zu log segment(s) covered by the snapshot at index %llu", drop,
             (unsigned long long)S);

    /* What is left must be one contiguous log starting at or before S + 1
     * (or at 1 without a snapshot), terms never going down. */
    raft_term prev_term = s->have_snap ? s->snap.term : 0;
    raft_index expect = 0;
    size_t total = 0;
    for (size_t i = drop; i < n; i++) {
        struct st_segment *g = &sc[i].seg;
        char name[64], path[ST_PATH_MAX];
        st_segment_name(name, sizeof name, g->seq);
        st_path(s, path, name);
        if (i == drop) {
            if (s->have_snap && g->first > S + 1) {
                rc = st_fail(s, STORAGE_ECORRUPT,
                             "the log starts at index %llu in %s but the snapshot ends at index %llu: entries "
                             "%llu..%llu are missing; %s", (unsigned long long)g->first, path,
                             (unsigned long long)S, (unsigned long long)(S + 1),
                             (unsigned long long)(g->first - 1), st_restore_advice());
                goto out;
            }
            if (!s->have_snap && g->first != 1) {
                rc = st_fail(s, STORAGE_ECORRUPT,
                             "the log starts at index %llu in %s but there is no snapshot, so it must start "
                             "at 1: entries 1..%llu are missing; %s", (unsigned long long)g->first, path,
                             (unsigned long long)(g->first - 1), st_restore_advice());
                goto out;
            }
        } else if (g->first != expect) {
            rc = st_fail(s, STORAGE_ECORRUPT,
                         "log segment %s starts at index %llu but the previous segment ends at index %llu "
                         "(a gap or overlap between segments); %s", path, (unsigned long long)g->first,
                         (unsigned long long)(expect - 1), st_restore_advice());
            goto out;
        }
        for (uint64_t j = 0; j < g->n; j++) {
            const struct raft_entry *e = &sc[i].entries[j];
            if (e->index <= S)
                continue;
            if (e->term < prev_term) {
                rc = st_fail(s, STORAGE_ECORRUPT,
                             "log segment %s: entry %llu at byte offset %llu has term %llu, below the term "
                             "%llu before it (terms never go down in a log, §3.5); %s", path,
                             (unsigned long long)e->index, (unsigned long long)g->offs[j],
                             (unsigned long long)e->term, (unsigned long long)prev_term, st_restore_advice());
                goto out;
            }
            prev_term = e->term;
            total++;
        }
        expect = g->first + g->n;
    }
    if (prev_term > s->hs.term) {
        /* Entries (or a snapshot) can be durable before the hard state of
         * their ready: a full segment is fdatasynced when the next one
         * starts, in the middle of storage_append, and an installed snapshot
         * is durable when install returns, both before the host hands over
         * the hard state. They came from a leader of their term that this
         * node accepted without having voted in that term durably (a
         * candidate's own vote is durable before it can lead, and a vote
         * carries its term), so the term is raised with no vote. */
        note(st, "raised the term from %llu to %llu, the term of the %s (made durable before the new term)",
             (unsigned long long)s->hs.term, (unsigned long long)prev_term,
             total ? "last log entry" : "snapshot");
        s->hs = (struct raft_hard_state){ prev_term, 0 };
        p->write_hs = true;
    }
    /* The hard state file exists before anything is appended (written with
     * the plan, term 0 on a fresh directory): a log with entries and no
     * hard state file then always means the file was lost (above). */
    if (!had_hs)
        p->write_hs = true;

    /* Hand the entries to the state; keep the segments. */
    struct owned *o = calloc(1, sizeof *o);
    st->entries = total ? malloc(total * sizeof *st->entries) : NULL;
    if (!o || (total && !st->entries) || !(o->bufs = calloc(n ? n : 1, sizeof *o->bufs))) {
        free(o);
        rc = st_fail(s, STORAGE_ENOMEM, "opening %s: out of memory", s->dir);
        goto out;
    }
    st->priv = o;
    s->segs = calloc(n ? n : 1, sizeof *s->segs);
    if (!s->segs) {
        rc = st_fail(s, STORAGE_ENOMEM, "opening %s: out of memory", s->dir);
        goto out;
    }
    s->cap_segs = n ? n : 1;
    for (size_t i = drop; i < n; i++) {
        bool used = false;
        for (uint64_t j = 0; j < sc[i].seg.n; j++)
            if (sc[i].entries[j].index > S) {
                st->entries[st->n_entries++] = sc[i].entries[j];
                used = true;
            }
        if (used) {
            o->bufs[o->n++] = sc[i].buf;
            sc[i].buf = NULL;
        }
        s->segs[s->n_segs++] = sc[i].seg;
        sc[i].seg.offs = NULL;
    }
    if (s->n_segs == 0) {
        p->reset = true;
        s->first_index = S + 1;
        s->last_index = S;
        s->last_term = s->have_snap ? s->snap.term : 0;
    } else {
        s->first_index = s->segs[0].first;
        struct st_segment *g = &s->segs[s->n_segs - 1];
        s->last_index = g->first + g->n - 1;
        s->last_term = st->n_entries ? st->entries[st->n_entries - 1].term : (s->have_snap ? s->snap.term : 0);
        if (s->last_index < S) /* unreachable: segments ending below S were dropped */
            s->last_index = S;
    }
out:
    for (size_t i = 0; i < n; i++)
        st_scan_free(&sc[i]);
    free(sc);
    return rc;
}

/* Carries out the plan, in an order that a crash at any point leaves a
 * directory the next open decides the same way about. */
static int apply_plan(struct storage *s, struct st_open_plan *p)
{
    int rc = STORAGE_OK;
    /* Leftovers of interrupted replacements and receptions: never current. */
    for (size_t i = 0; rc == STORAGE_OK && i < p->ns.n; i++) {
        const char *name = p->ns.v[i];
        char path[ST_PATH_MAX];
        st_path(s, path, name);
        if (ends_with(name, ".tmp") || strcmp(name, ST_SNAP_PARTIAL_NAME) == 0)
            rc = st_unlink(s, path, "removing a leftover temporary file");
        else if (st_snapshot_parse_data_name(name) && (!s->have_snap || strcmp(path, s->snap_path) != 0))
            rc = st_unlink(s, path, "removing a snapshot that is no longer current");
    }
    if (rc == STORAGE_OK && p->cut) {
        char name[64], path[ST_PATH_MAX];
        st_segment_name(name, sizeof name, p->cut_seq);
        st_path(s, path, name);
        int fd = s->io->open(s->io->ctx, path, O_RDWR, 0);
        if (fd < 0) {
            int e = errno;
            return st_fail(s, STORAGE_EIO, "opening %s to cut its bad last record failed: %s", path, strerror(e));
        }
        if (s->io->ftruncate(s->io->ctx, fd, (off_t)p->cut_at) != 0) {
            int e = errno;
            st_close(s, fd);
            return st_fail(s, STORAGE_EIO, "cutting %s at byte offset %llu failed: %s", path,
                           (unsigned long long)p->cut_at, strerror(e));
        }
        rc = st_sync_fd(s, fd, path, "making the cut of a bad last record durable");
        st_close(s, fd);
    }
    /* Remove newest first so a crash here leaves a prefix (see st_log_reset). */
    for (size_t i = p->n_drop; rc == STORAGE_OK && i-- > 0;) {
        char name[64], path[ST_PATH_MAX];
        st_segment_name(name, sizeof name, p->drop_seqs[i]);
        st_path(s, path, name);
        rc = st_unlink(s, path, "removing a segment the snapshot covers");
        if (rc == STORAGE_OK)
            rc = st_sync_dir(s, "making a segment's removal durable");
    }
    if (rc == STORAGE_OK && p->write_hs) {
        uint8_t b[ST_HS_BYTES];
        st_hs_encode(&s->hs, b);
        rc = st_atomic_write(s, ST_HS_NAME, b, sizeof b);
    }
    if (rc == STORAGE_OK) {
        if (p->reset) {
            rc = st_log_reset(s, s->first_index);
            if (rc == STORAGE_OK)
                s->last_term = s->have_snap ? s->snap.term : 0;
        } else {
            rc = st_segment_open_active(s);
        }
    }
    /* Only now is an interrupted install finished. */
    if (rc == STORAGE_OK && p->marker)
        rc = st_install_marker_clear(s);
    return rc;
}

int storage_open(const char *dir, const struct storage_io *io, const struct storage_options *opts,
                 struct storage **out, struct storage_state *state, char *err, size_t errcap)
{
    *out = NULL;
    memset(state, 0, sizeof *state);
    if (!dir || !*dir || strlen(dir) >= ST_DIR_MAX) {
        snprintf(err, errcap, "storage: the data directory path is empty or longer than %d bytes",
                 ST_DIR_MAX - 1);
        return STORAGE_EINVAL;
    }
    struct storage *s = calloc(1, sizeof *s);
    struct st_open_plan *p = calloc(1, sizeof *p);
    if (!s || !p) {
        free(s);
        free(p);
        snprintf(err, errcap, "storage: opening %s: out of memory", dir);
        return STORAGE_ENOMEM;
    }
    s->io = io ? io : storage_io_posix();
    if (opts)
        s->opts = *opts;
    else
        storage_options_default(&s->opts);
    if (s->opts.segment_bytes < ST_SEG_HEADER_BYTES + ST_REC_HEADER_BYTES)
        s->opts.segment_bytes = ST_SEG_HEADER_BYTES + ST_REC_HEADER_BYTES;
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    size_t dl = strlen(s->dir);
    while (dl > 1 && s->dir[dl - 1] == '/')
        s->dir[--dl] = 0;
    s->active_fd = -1;
    s->partial_fd = -1;
    s->next_seq = 1;
    st_path(s, s->tmp_path, ST_SNAP_TMP_NAME);
    s->plan = p;

    /* Read-only from here to the plan's end (creating a missing directory
     * aside: it holds nothing yet). */
    struct names *ns = &p->ns;
    int rc = make_dir(s);
    if (rc == STORAGE_OK && s->io->list(s->io->ctx, s->dir, names_add, ns) != 0) {
        int e = errno;
        rc = st_fail(s, STORAGE_EIO, "listing data directory %s failed: %s", s->dir, strerror(e));
    }
    if (rc == STORAGE_OK && ns->oom)
        rc = st_fail(s, STORAGE_ENOMEM, "listing data directory %s: out of memory", s->dir);
    for (size_t i = 0; rc == STORAGE_OK && i < ns->n; i++)
        if (strcmp(ns->v[i], ST_INSTALL_MARKER_NAME) == 0)
            p->marker = true;

    bool had_hs = false;
    if (rc == STORAGE_OK) {
        rc = st_hs_load(s, &s->hs);
        had_hs = rc == STORAGE_OK;
        if (rc == 1)
            rc = STORAGE_OK;
    }
    if (rc == STORAGE_OK) {
        rc = st_snapmeta_load(s, &s->snap, &s->snap_file_bytes);
        s->have_snap = rc == STORAGE_OK;
        if (rc == 1)
            rc = STORAGE_OK;
    }
    if (rc == STORAGE_OK) {
        rc = check_snapshot(s);
        if (rc == STORAGE_ECORRUPT && s->opts.snapshot_data_optional) {
            /* The metadata still says where the log starts; only the data
             * is lost. Whoever opens decides whether it can do without. */
            s->snap_bad = true;
            state->snapshot_damaged = true;
            snprintf(state->snapshot_damage, sizeof state->snapshot_damage, "%.*s",
                     (int)sizeof state->snapshot_damage - 1, s->errmsg);
            s->errmsg[0] = 0;
            rc = STORAGE_OK;
        }
    }
    if (rc == STORAGE_OK)
        rc = check_log(s, p, had_hs, state);
    if (rc == STORAGE_OK && !s->opts.defer_changes)
        rc = storage_open_finish(s, err, errcap);
    if (rc != STORAGE_OK) {
        snprintf(err, errcap, "storage: %s", s->errmsg);
        storage_state_free(state);
        storage_close(s);
        return rc;
    }
    s->hs_pending = s->hs;
    state->hard_state = s->hs;
    state->have_snapshot = s->have_snap;
    if (s->have_snap)
        state->snapshot = s->snap;
    /* No Raft state: nothing a bootstrap would conflict with (an empty
     * segment left by an earlier open does not count). */
    state->fresh = !s->have_snap && s->last_index == 0 && s->hs.term == 0 && s->hs.vote == 0;
    s->errmsg[0] = 0;
    if (err && errcap)
        err[0] = 0;
    *out = s;
    return STORAGE_OK;
}

int storage_open_finish(struct storage *s, char *err, size_t errcap)
{
    if (!s->plan)
        return STORAGE_OK;
    int rc = apply_plan(s, s->plan);
    plan_free(s->plan);
    s->plan = NULL;
    if (rc && err && errcap)
        snprintf(err, errcap, "storage: %s", s->errmsg);
    if (rc)
        s->broken = true; /* half done: the next open decides again */
    return rc;
}

void storage_close(struct storage *s)
{
    if (!s)
        return;
    st_close(s, s->active_fd);
    st_close(s, s->partial_fd);
    plan_free(s->plan);
    for (size_t i = 0; i < s->n_segs; i++)
        free(s->segs[i].offs);
    free(s->segs);
    free(s);
}

/* ---- The persist step ------------------------------------------------------- */

/* Index of the segment holding index (which is in [first_index, last_index]
 * or, for an empty segment, equal to its first). */
static size_t seg_of(const struct storage *s, raft_index index)
{
    size_t lo = 0, hi = s->n_segs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->segs[mid].first <= index)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo ? lo - 1 : 0;
}

static void seg_path(const struct storage *s, const struct st_segment *g, char *path)
{
    char name[64];
    st_segment_name(name, sizeof name, g->seq);
    st_path(s, path, name);
}

int storage_truncate(struct storage *s, raft_index from)
{
    int rc = check_usable(s);
    if (rc)
        return rc;
    if (from > s->last_index)
        return STORAGE_OK;
    if (from < s->first_index || from == 0 || (s->have_snap && from <= s->snap.index))
        return st_fail(s, STORAGE_EINVAL,
                       "truncate from index %llu: the log holds %llu..%llu and the snapshot covers up to %llu, "
                       "so entries below %llu cannot be dropped", (unsigned long long)from,
                       (unsigned long long)s->first_index, (unsigned long long)s->last_index,
                       (unsigned long long)(s->have_snap ? s->snap.index : 0),
                       (unsigned long long)(s->have_snap ? s->snap.index + 1 : s->first_index));
    raft_term new_last_term = 0;
    if (from - 1 >= s->first_index) {
        rc = st_term_at(s, from - 1, &new_last_term);
        if (rc)
            return rc;
    } else if (s->have_snap && from - 1 == s->snap.index) {
        new_last_term = s->snap.term;
    }
    size_t k = seg_of(s, from);
    /* Later segments first, newest first, each removal durable: a crash
     * leaves a prefix of the log. */
    while (s->n_segs - 1 > k) {
        rc = st_segment_remove(s, s->n_segs - 1, true);
        if (rc)
            return rc;
    }
    if (s->active_fd < 0) {
        rc = st_segment_open_active(s);
        if (rc)
            return rc;
    }
    struct st_segment *g = &s->segs[k];
    uint64_t cut = g->offs[from - g->first];
    char path[ST_PATH_MAX];
    seg_path(s, g, path);
    if (s->io->ftruncate(s->io->ctx, s->active_fd, (off_t)cut) != 0) {
        int e = errno;
        return st_fail(s, STORAGE_EIO, "truncate from index %llu: cutting %s at byte offset %llu failed: %s",
                       (unsigned long long)from, path, (unsigned long long)cut, strerror(e));
    }
    s->active_dirty = true;
    g->n = from - g->first;
    g->end = cut;
    s->last_index = from - 1;
    s->last_term = new_last_term;
    /* Durable now, before any new record can land where the old ones were. */
    return st_log_sync(s, "making a truncation durable");
}

static int wbuf_reserve(uint8_t **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return STORAGE_OK;
    size_t ncap = *cap ? *cap : 4096;
    while (ncap < need)
        ncap *= 2;
    uint8_t *p = realloc(*buf, ncap);
    if (!p)
        return STORAGE_ENOMEM;
    *buf = p;
    *cap = ncap;
    return STORAGE_OK;
}

/* Undoes a failed append: segments it created are removed and the segment
 * it started in is cut back (and fdatasynced again if this call synced it
 * when rolling over), so the files are exactly as before. */
static int append_rollback(struct storage *s, size_t n_segs0, uint64_t end0, uint64_t n0, raft_index last0,
                           raft_term term0, bool synced)
{
    int rc = STORAGE_OK;
    while (s->n_segs > n_segs0 && rc == STORAGE_OK)
        rc = st_segment_remove(s, s->n_segs - 1, true);
    if (rc == STORAGE_OK && s->active_fd < 0)
        rc = st_segment_open_active(s);
    if (rc == STORAGE_OK) {
        struct st_segment *g = &s->segs[s->n_segs - 1];
        g->n = n0;
        g->end = end0;
        if (s->io->ftruncate(s->io->ctx, s->active_fd, (off_t)end0) != 0) {
            int e = errno;
            char path[ST_PATH_MAX];
            seg_path(s, g, path);
            rc = st_fail(s, STORAGE_EIO, "undoing a failed append: cutting %s back to byte offset %llu "
                         "failed: %s", path, (unsigned long long)end0, strerror(e));
        } else if (synced) {
            s->active_dirty = true;
            rc = st_log_sync(s, "undoing a failed append");
        }
    }
    s->last_index = last0;
    s->last_term = term0;
    return rc;
}

int storage_append(struct storage *s, const struct raft_entry *entries, size_t n)
{
    int rc = check_usable(s);
    if (rc || n == 0)
        return rc;
    raft_term t = s->last_term;
    for (size_t i = 0; i < n; i++) {
        const struct raft_entry *e = &entries[i];
        if (e->index != s->last_index + 1 + i)
            return st_fail(s, STORAGE_EINVAL, "append: entry %zu has index %llu but the log ends at %llu, so "
                           "%llu was expected", i, (unsigned long long)e->index,
                           (unsigned long long)s->last_index, (unsigned long long)(s->last_index + 1 + i));
        if (e->term == 0 || e->term < t)
            return st_fail(s, STORAGE_EINVAL, "append: entry %llu has term %llu after term %llu (terms never "
                           "go down)", (unsigned long long)e->index, (unsigned long long)e->term,
                           (unsigned long long)t);
        if (e->type < RAFT_ENTRY_COMMAND || e->type > RAFT_ENTRY_CONFIG)
            return st_fail(s, STORAGE_EINVAL, "append: entry %llu has unknown type %u",
                           (unsigned long long)e->index, e->type);
        if (e->len > ST_MAX_ENTRY_BYTES || (e->len && !e->data))
            return st_fail(s, STORAGE_EINVAL, "append: entry %llu has %u bytes of data (at most %u, and data "
                           "must not be NULL)", (unsigned long long)e->index, e->len, ST_MAX_ENTRY_BYTES);
        t = e->term;
    }
    size_t n_segs0 = s->n_segs;
    struct st_segment *g = &s->segs[s->n_segs - 1];
    uint64_t end0 = g->end, n0 = g->n, bytes = 0;
    raft_index last0 = s->last_index;
    raft_term term0 = s->last_term;
    bool synced = false;
    uint8_t *buf = NULL;
    size_t cap = 0, used = 0;
    char path[ST_PATH_MAX];
    for (size_t i = 0; i <= n && rc == STORAGE_OK; i++) {
        g = &s->segs[s->n_segs - 1];
        uint64_t rb = i < n ? st_rec_bytes(entries[i].len) : 0;
        bool roll = i < n && g->n > 0 && g->end + used + rb > s->opts.segment_bytes;
        if ((i == n || roll) && used > 0) {
            seg_path(s, g, path);
            rc = st_write_all(s, s->active_fd, buf, used, g->end, path, "append");
            if (rc)
                break;
            s->active_dirty = true;
            g->end += used;
            bytes += used;
            used = 0;
        }
        if (i == n)
            break;
        if (roll) {
            /* The full segment is durable before the next one exists, so
             * only the last segment can ever have a torn tail. */
            if (s->n_segs == n_segs0)
                synced = true;
            rc = st_log_sync(s, "finishing a full segment");
            if (rc)
                break;
            st_close(s, s->active_fd);
            s->active_fd = -1;
            rc = st_segment_create(s, s->next_seq, entries[i].index);
            if (rc == STORAGE_OK)
                rc = st_segment_open_active(s);
            if (rc)
                break;
            g = &s->segs[s->n_segs - 1];
        }
        if (wbuf_reserve(&buf, &cap, used + rb) || st_segment_push_off(g, g->end + used)) {
            rc = st_fail(s, STORAGE_ENOMEM, "append: out of memory");
            break;
        }
        st_record_encode(&entries[i], buf + used);
        used += rb;
    }
    free(buf);
    if (rc != STORAGE_OK) {
        char first_err[sizeof s->errmsg];
        memcpy(first_err, s->errmsg, sizeof first_err);
        int rrc = append_rollback(s, n_segs0, end0, n0, last0, term0, synced);
        if (rrc == STORAGE_OK || rc == STORAGE_EIO) {
            memcpy(s->errmsg, first_err, sizeof first_err); /* the cause, not the cleanup */
            return rc;
        }
        return rrc;
    }
    s->last_index = entries[n - 1].index;
    s->last_term = entries[n - 1].term;
    s->stats.entries_appended += n;
    s->stats.bytes_appended += bytes;
    return STORAGE_OK;
}

int storage_set_hard_state(struct storage *s, const struct raft_hard_state *hs)
{
    int rc = check_usable(s);
    if (rc)
        return rc;
    if (hs->term < s->hs.term)
        return st_fail(s, STORAGE_EINVAL, "hard state: term %llu is below the durable term %llu (a term never "
                       "goes down)", (unsigned long long)hs->term, (unsigned long long)s->hs.term);
    if (hs->term > RAFT_MAX_TERM)
        return st_fail(s, STORAGE_EINVAL, "hard state: term %llu is at or above 2^63 (RAFT_MAX_TERM); the raft "
                       "core never makes one", (unsigned long long)hs->term);
    s->hs_pending = *hs;
    s->hs_dirty = hs->term != s->hs.term || hs->vote != s->hs.vote;
    return STORAGE_OK;
}

int storage_sync(struct storage *s)
{
    int rc = check_usable(s);
    if (rc)
        return rc;
    if (s->hs_dirty) {
        /* Hard state before the log: see the top of this file. */
        uint8_t b[ST_HS_BYTES];
        st_hs_encode(&s->hs_pending, b);
        rc = st_atomic_write(s, ST_HS_NAME, b, sizeof b);
        if (rc)
            return rc;
        s->hs = s->hs_pending;
        s->hs_dirty = false;
    }
    return st_log_sync(s, "sync");
}

int storage_compact(struct storage *s, raft_index before)
{
    int rc = check_usable(s);
    if (rc)
        return rc;
    /* Only what a durable snapshot covers may go, whatever the caller says. */
    raft_index limit = s->have_snap ? s->snap.index + 1 : 0;
    if (before < limit)
        limit = before;
    size_t removed = 0;
    while (s->n_segs > 1 && s->segs[0].first + s->segs[0].n <= limit) {
        rc = st_segment_remove(s, 0, false);
        if (rc)
            return rc;
        removed++;
    }
    if (removed) {
        s->first_index = s->segs[0].first;
        /* Holes left by a crash here are below the snapshot, which open ignores. */
        rc = st_sync_dir(s, "making compaction durable");
    }
    return rc;
}

void storage_get_stats(const struct storage *s, struct storage_stats *out)
{
    *out = s->stats;
    out->segments = s->n_segs;
    uint64_t bytes = 0;
    for (size_t i = 0; i < s->n_segs; i++)
        bytes += s->segs[i].end;
    bytes += ST_HS_BYTES; /* written at the first sync; close enough before it */
    if (s->have_snap)
        bytes += s->snap.size + s->snap_file_bytes;
    bytes += s->partial ? s->partial_size : 0;
    out->disk_bytes = bytes;
}
