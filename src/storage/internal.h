/*
 * storage/internal.h — what the files of src/storage share: the struct storage
 * itself, the on-disk constants (docs/disk-format.md is their prose), and the
 * small helpers every file uses to talk to the seam (struct storage_io) and
 * to turn a failed call into an error code plus a message a person can act
 * on. Nothing here is visible outside src/storage.
 */
#ifndef LINKRAFT_STORAGE_INTERNAL_H
#define LINKRAFT_STORAGE_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "storage.h"

/* ---- On-disk constants (docs/disk-format.md) ---------------------------- */

#define ST_FORMAT_VERSION 1u

#define ST_SEG_MAGIC "LKRFTLOG"       /* 8 bytes, no NUL on disk */
#define ST_SEG_HEADER_BYTES 40u
#define ST_REC_HEADER_BYTES 32u
#define ST_REC_ALIGN 8u
#define ST_MAX_ENTRY_BYTES (1u << 30)  /* larger entries are refused (EINVAL) */

#define ST_HS_MAGIC "LKRFTHRD"
#define ST_HS_BYTES 40u
#define ST_HS_NAME "hardstate"

#define ST_SNAPMETA_MAGIC "LKRFTSNP"
#define ST_SNAPMETA_FIXED 48u          /* bytes before the encoded configuration */
#define ST_SNAPMETA_MAX (ST_SNAPMETA_FIXED + 4u + 10u * RAFT_MAX_MEMBERS + 4u)
#define ST_SNAPMETA_NAME "snapshot.meta"

#define ST_INSTALL_MARKER_NAME "install.pending" /* a leader's snapshot replaces the log */
#define ST_SNAP_TMP_NAME "snapshot.tmp"       /* written by the state machine */
#define ST_SNAP_PARTIAL_NAME "snapshot.partial" /* received from the leader */

/* Paths are DIR/NAME; DIR is limited so every path fits. */
#define ST_PATH_MAX 4096
#define ST_DIR_MAX (ST_PATH_MAX - 64)

/* ---- Little-endian helpers ----------------------------------------------- */

static inline void st_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void st_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t st_get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}
static inline uint64_t st_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}
static inline uint64_t st_rec_bytes(uint32_t len)
{
    return ST_REC_HEADER_BYTES + (((uint64_t)len + ST_REC_ALIGN - 1) & ~(uint64_t)(ST_REC_ALIGN - 1));
}

/* ---- The storage object ---------------------------------------------------- */

/* One segment file: log-<seq>.seg holding entries first .. first+n-1. */
struct st_segment {
    uint64_t seq;
    raft_index first;       /* index of its first record (from the header) */
    uint64_t n;             /* records in it */
    uint64_t *offs;         /* byte offset of each record; n used, cap allocated */
    uint64_t cap;
    uint64_t end;           /* bytes of valid content (header + records) */
};

struct storage {
    const struct storage_io *io;
    struct storage_options opts;
    char dir[ST_DIR_MAX];

    /* The log: segments in ascending seq (and index) order. The last one is
     * the open segment that appends go to; its fd stays open. */
    struct st_segment *segs;
    size_t n_segs, cap_segs;
    int active_fd;
    bool active_dirty;       /* written since its last fdatasync */
    uint64_t next_seq;
    raft_index first_index;  /* first entry of the log (snapshot.index + 1 or the first record) */
    raft_index last_index;   /* first_index - 1 when the log is empty */
    raft_term last_term;     /* term of last_index; 0 if unknown */

    /* Hard state: what is durable, and what the next sync must write. */
    struct raft_hard_state hs;
    struct raft_hard_state hs_pending;
    bool hs_dirty;

    /* The current snapshot. */
    bool have_snap;
    bool snap_bad;              /* its data file is missing or damaged (snapshot_data_optional) */
    struct raft_snapshot_meta snap;
    char snap_path[ST_PATH_MAX];
    uint64_t snap_file_bytes;   /* bytes of snapshot.meta */
    /* A new snapshot's data already has its final name but snapshot.meta
     * could not be replaced (a full disk): retrying the same adopt or
     * install only publishes it. */
    bool staged;
    struct raft_snapshot_meta staged_meta;
    bool reset_pending;         /* an installed snapshot's log reset failed (ENOSPC):
                                   retrying the install finishes it */

    /* A snapshot being received in chunks (snapshot.partial). */
    bool partial;
    struct raft_snapshot_meta partial_meta;
    uint64_t partial_size;
    int partial_fd;

    char tmp_path[ST_PATH_MAX];
    /* What open decided to change, not yet done (storage_open_finish). */
    struct st_open_plan *plan;
    bool broken;             /* an EIO happened: every later call fails */
    char errmsg[ST_PATH_MAX + 512];
    struct storage_stats stats;
};

/* ---- Errors and seam helpers (util.c) ------------------------------------ */

/* Records a message in s->errmsg and returns rc; STORAGE_EIO marks s broken. */
int st_fail(struct storage *s, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* What an operator does when the directory is damaged (for ECORRUPT messages). */
const char *st_restore_advice(void);
/* The code for a failed write-like call: ENOSPC/EDQUOT -> STORAGE_ENOSPC,
 * ENOMEM -> STORAGE_ENOMEM, anything else -> STORAGE_EIO. */
int st_errno_rc(int e);
/* DIR/name into buf (ST_PATH_MAX). */
void st_path(const struct storage *s, char *buf, const char *name);
/* pwrite all n bytes at off, retrying short writes and EINTR. On failure the
 * message names what, the file and the offset. */
int st_write_all(struct storage *s, int fd, const void *buf, size_t n, uint64_t off,
                 const char *path, const char *what);
/* pread exactly n bytes at off; a short file is STORAGE_ECORRUPT. */
int st_read_all(struct storage *s, int fd, void *buf, size_t n, uint64_t off, const char *path,
                const char *what);
/* fdatasync; any failure is STORAGE_EIO (never retried: the kernel may have
 * dropped the dirty pages, so a later success would prove nothing). */
int st_sync_fd(struct storage *s, int fd, const char *path, const char *what);
/* fsync the data directory, so creations, renames and unlinks in it are durable. */
int st_sync_dir(struct storage *s, const char *what);
int st_unlink(struct storage *s, const char *path, const char *what);
/* Reads a whole small file (at most cap bytes). Returns 1 if it does not exist. */
int st_read_small(struct storage *s, const char *path, uint8_t *buf, size_t cap, size_t *len);
void st_close(struct storage *s, int fd);

/* ---- Atomic small files (meta.c) ------------------------------------------ */

/* Replacing NAME atomically in two steps so a caller can do something in
 * between (snapshot.c renames the snapshot data there): prepare writes
 * NAME.tmp and fdatasyncs it; commit renames it over NAME and fsyncs the
 * directory; abort removes NAME.tmp. */
int st_atomic_prepare(struct storage *s, const char *name, const uint8_t *buf, size_t n);
int st_atomic_commit(struct storage *s, const char *name);
void st_atomic_abort(struct storage *s, const char *name);
int st_atomic_write(struct storage *s, const char *name, const uint8_t *buf, size_t n);

void st_hs_encode(const struct raft_hard_state *hs, uint8_t out[ST_HS_BYTES]);
/* Returns 1 if absent, 0 with *hs filled, or STORAGE_ECORRUPT with a message. */
int st_hs_load(struct storage *s, struct raft_hard_state *hs);
size_t st_snapmeta_encode(const struct raft_snapshot_meta *m, uint8_t out[ST_SNAPMETA_MAX]);
int st_snapmeta_load(struct storage *s, struct raft_snapshot_meta *m, uint64_t *file_bytes);

/* ---- Segments (segment.c) ------------------------------------------------- */

void st_segment_name(char *buf, size_t cap, uint64_t seq);
/* Parses "log-<20 digits>.seg"; false for any other name. */
bool st_segment_parse_name(const char *name, uint64_t *seq);
/* Encodes one record (header, data, zero padding) into out, which has
 * st_rec_bytes(e->len) bytes. */
void st_record_encode(const struct raft_entry *e, uint8_t *out);
/* Creates segment seq starting at first atomically (tmp, header, fdatasync,
 * rename, fsync dir) and appends it to s->segs. Does not open it. */
int st_segment_create(struct storage *s, uint64_t seq, raft_index first);
/* Opens the last segment for appending (sets s->active_fd). */
int st_segment_open_active(struct storage *s);
/* Removes segment i from s->segs (and its file if unlink is set). */
int st_segment_remove(struct storage *s, size_t i, bool sync_dir);
int st_segment_push_off(struct st_segment *g, uint64_t off);

/* What scanning one segment file found (used by storage_open). */
struct st_scan {
    uint8_t *buf;            /* the whole file; entries point into it */
    uint64_t size;           /* bytes in the file */
    struct st_segment seg;   /* seq, first (from the header), n records, their offsets,
                                end = bytes up to the end of the last good record */
    struct raft_entry *entries; /* seg.n of them */
    bool torn;               /* the file continues past seg.end with no valid record */
    const char *torn_why;    /* what is wrong with the record at seg.end (if torn) */
    bool torn_whole;         /* ... and it is all there, not zeros: maybe synced, then damaged */
};
/* Reads and checks segment file name (seq from its name). allow_torn: this is the last
 * segment, so an invalid tail without any valid record after it is a torn
 * write rather than corruption. */
int st_segment_scan(struct storage *s, const char *name, uint64_t seq, bool allow_torn,
                    struct st_scan *out);
void st_scan_free(struct st_scan *sc);

/* The term of entry index (which must be in the log), read from its header. */
int st_term_at(struct storage *s, raft_index index, raft_term *term);
/* fdatasync of the open segment if it was written since its last one. */
int st_log_sync(struct storage *s, const char *what);
/* Drops the whole log and starts an empty one at next (a new segment).
 * On failure before the new segment exists, the log is unchanged. */
int st_log_reset(struct storage *s, raft_index next);

/* ---- Snapshots (snapshot.c) ----------------------------------------------- */

/* The install marker (ST_INSTALL_MARKER_NAME): made durable before an
 * install that replaces the log changes anything, removed once the log is
 * replaced. Only with it does open discard a log that does not continue the
 * snapshot; without it such a log lost entries, and open refuses. */
int st_install_marker_set(struct storage *s, const struct raft_snapshot_meta *meta);
int st_install_marker_clear(struct storage *s);

void st_snapshot_data_name(char *buf, size_t cap, raft_index index, raft_term term);
bool st_snapshot_parse_data_name(const char *name);
/* CRC32C and size of a file, reading it through the seam. */
int st_file_crc(struct storage *s, const char *path, uint64_t *size, uint32_t *crc);

#endif
