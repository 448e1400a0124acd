/*
 * storage.h — the durable state of one Raft node: the log in segment files,
 * the hard state (term, vote), and snapshots, all in one data directory.
 *
 * Raft's log is the durable record of everything linkraft acknowledged, so
 * this module is where "nothing acknowledged is lost" is kept or broken:
 *   - every log record is framed with its length and a CRC32C;
 *   - many entries are made durable by one fdatasync (group commit:
 *     storage_append any number of times, then storage_sync once);
 *   - the hard state and snapshot metadata are replaced atomically (write a
 *     temporary file, fsync it, rename it over the old one, fsync the
 *     directory);
 *   - at open, a bad LAST record of the last segment (incomplete or damaged,
 *     with nothing valid after it) is cut and reported; a bad record followed
 *     by good ones is corruption, and storage_open refuses with
 *     STORAGE_ECORRUPT and a message naming the file, the offset and what the
 *     operator can do; every check runs before any file is changed.
 *
 * Every byte of file I/O goes through one seam, struct storage_io, so tests
 * inject ENOSPC, EIO, short writes and torn files at every point.
 *
 * Errors: an fsync or write failure other than a full disk is fatal
 * (STORAGE_EIO): the caller must stop the process and never retry an fsync
 * (after a failed fsync the kernel may have dropped the dirty pages). A full
 * disk (STORAGE_ENOSPC) leaves what was durable before intact; the caller
 * stops accepting writes and retries the same operations later.
 *
 * Threads: a struct storage is used by one thread at a time (the node runs
 * the persist step of each ready on a worker thread, off the event loop).
 * The layout on disk is described in docs/disk-format.md.
 */
#ifndef LINKRAFT_STORAGE_H
#define LINKRAFT_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "raft.h"

enum {
    STORAGE_OK = 0,
    STORAGE_EIO = -1,      /* a write or fsync failed: fatal, stop the node */
    STORAGE_ENOSPC = -2,   /* the disk is full: nothing new became durable; retry later */
    STORAGE_ECORRUPT = -3, /* data on disk is damaged beyond a torn tail: refuse to start */
    STORAGE_ENOMEM = -4,
    STORAGE_EINVAL = -5,   /* a bad argument (e.g. a gap in appended indexes) */
};
const char *storage_strerror(int rc);

/*
 * The seam: every file operation storage performs. Each returns what the
 * POSIX call returns (-1 with errno set on failure). storage_io_posix()
 * gives the real one; tests wrap it to inject faults. ctx is passed back.
 */
struct storage_io {
    void *ctx;
    int (*open)(void *ctx, const char *path, int flags, mode_t mode);
    int (*close)(void *ctx, int fd);
    ssize_t (*pread)(void *ctx, int fd, void *buf, size_t n, off_t off);
    ssize_t (*pwrite)(void *ctx, int fd, const void *buf, size_t n, off_t off);
    int (*fdatasync)(void *ctx, int fd);  /* also used on directories (fsync) */
    int (*ftruncate)(void *ctx, int fd, off_t len);
    int (*rename)(void *ctx, const char *from, const char *to);
    int (*unlink)(void *ctx, const char *path);
    int (*mkdir)(void *ctx, const char *path, mode_t mode);
    int (*fstat_size)(void *ctx, int fd, off_t *size);
    /* Lists the names in dir (not . and ..): calls each(arg, name) per entry. */
    int (*list)(void *ctx, const char *dir, void (*each)(void *arg, const char *name), void *arg);
};
const struct storage_io *storage_io_posix(void);

struct storage_options {
    uint64_t segment_bytes;   /* start a new segment file past this size (default 64 MiB) */
    bool defer_changes;       /* storage_open only checks; the caller runs storage_open_finish
                                 once the rest of its state is known to fit (default false) */
    bool snapshot_data_optional; /* a missing or damaged snapshot data file (its metadata
                                 intact) is reported in state->snapshot_damaged instead of
                                 refused: the caller decides whether it can do without it
                                 (default false) */
};
void storage_options_default(struct storage_options *o);

/* What storage_open recovered: exactly what raft_restore needs. */
struct storage_state {
    struct raft_hard_state hard_state;     /* {0, 0} on a fresh directory */
    bool have_snapshot;
    struct raft_snapshot_meta snapshot;     /* valid if have_snapshot */
    struct raft_entry *entries;             /* the log after the snapshot (indexes
                                               snapshot.index + 1 ..., or 1 ... without one),
                                               contiguous; data owned by the state, valid
                                               until storage_state_free */
    size_t n_entries;
    bool fresh;                             /* the directory held no Raft state: no hard
                                               state, no snapshot, no entries (bootstrap) */
    bool torn_tail_truncated;               /* recovery cut a torn last record */
    bool tail_maybe_acked;                  /* ... which was all there (not cut short, not
                                               zeros): perhaps synced and acknowledged, then
                                               damaged; the node must not vote until whole
                                               again (replica_options.lost_tail) */
    bool snapshot_damaged;                  /* (snapshot_data_optional) the snapshot's data
                                               file is missing or does not match its
                                               metadata, which is intact and still the log's
                                               base: the data cannot be read, sent or
                                               restored from until a new snapshot replaces
                                               it; snapshot_damage says what is wrong */
    char snapshot_damage[768];
    char recovery_note[768];                /* what recovery did, for the log ("" if nothing):
                                               a torn tail cut, segments the snapshot covers
                                               removed, a log older than the snapshot dropped,
                                               the term raised to that of durable entries or
                                               of the snapshot (with no vote), see
                                               docs/disk-format.md "Recovery at open" */
    void *priv;                             /* internal: the buffers entries' data point into */
};
void storage_state_free(struct storage_state *st);

struct storage;

/* Opens (creating if needed) the data directory dir and recovers its state.
 * io may be NULL for storage_io_posix(); opts may be NULL for defaults.
 * On STORAGE_ECORRUPT err says which file, at which offset, and what to do
 * (e.g. "restore this node from a snapshot: stop it, move DIR away, start it
 * with --join and add it back"). The caller owns *state and frees it. */
int storage_open(const char *dir, const struct storage_io *io, const struct storage_options *opts,
                 struct storage **out, struct storage_state *state, char *err, size_t errcap);
/* Recovery checks the whole directory read-only first and refuses
 * (ECORRUPT) having changed nothing. What it then changes (leftover
 * temporary files, a bad last record cut, segments the snapshot covers, a
 * log an interrupted install was replacing, a raised term) storage_open does
 * before it returns, or with opts->defer_changes only here, so that a caller
 * can check its own state against the recovered one first (the node: that
 * the database fits the log) and refuse with nothing changed either. Any
 * failure here is STORAGE_EIO/ENOSPC (s is unusable; close it and stop).
 * Nothing to do: STORAGE_OK. Every other call before it: STORAGE_EINVAL. */
int storage_open_finish(struct storage *s, char *err, size_t errcap);
void storage_close(struct storage *s);
/* The last error's message (valid until the next call on s). */
const char *storage_errmsg(const struct storage *s);

/* ---- The persist step of a ready (see include/raft.h), in this order ---- */

/* Drops every entry with index >= from (a conflicting suffix, §3.5). Durable
 * when it returns (its own fdatasync), so entries appended after it can never
 * be mixed with the truncated ones by a crash. from past the end: nothing.
 * STORAGE_EINVAL if from is at or below the snapshot's index. */
int storage_truncate(struct storage *s, raft_index from);
/* Appends entries, which must continue the log (index = last + 1 ..., terms
 * never going down; else STORAGE_EINVAL and nothing written). Written but not
 * durable until storage_sync (some may become durable earlier, when a full
 * segment is synced before the next one starts). On any error nothing of the
 * call remains in the files, so the same call can be retried after ENOSPC.
 * The entries' data is copied; the caller keeps its buffers. */
int storage_append(struct storage *s, const struct raft_entry *entries, size_t n);
/* Records the hard state to be made durable by the next storage_sync.
 * STORAGE_EINVAL if its term is below the durable one. */
int storage_set_hard_state(struct storage *s, const struct raft_hard_state *hs);
/* Makes everything above durable: the atomic replacement of the hard state
 * file if it changed (first, so the durable term is never behind the
 * durable log because of a sync), then one fdatasync of the log for all
 * appends since the last sync (group commit). Nothing to do: no fsync. */
int storage_sync(struct storage *s);

/* Entries with index < before are no longer needed (a snapshot covers
 * them): whole segments below it are deleted, never beyond the durable
 * snapshot whatever before says, never the last segment. */
int storage_compact(struct storage *s, raft_index before);

/* ---- Snapshots ----------------------------------------------------------- */

/* The node's own snapshot: the state machine wrote a consistent copy to
 * tmp_path (a file inside dir, see storage_snapshot_tmp_path). This computes
 * its size and CRC32C (unless meta->size is non-zero: then meta->size and
 * meta->crc are the caller's, from storage_file_crc), fsyncs it, makes it the current snapshot together with
 * meta's index, term and config (atomically), and fills meta->size and
 * meta->crc. The previous snapshot is deleted. The log is not touched (see
 * storage_compact). STORAGE_EINVAL if meta->index is not above the current
 * snapshot's or is past the log's end. After STORAGE_ENOSPC, retry the same call
 * (the file may already have moved to its final name; the retry finishes). */
int storage_snapshot_adopt(struct storage *s, const char *tmp_path, struct raft_snapshot_meta *meta);
/* The size and CRC32C of a whole file, with plain POSIX reads (not the
 * storage's I/O seam): a node computes them on its snapshot worker and hands
 * them to storage_snapshot_adopt in meta (size non-zero), which then does not
 * read the file again inside the log's write pipeline. STORAGE_EIO,
 * STORAGE_ENOMEM, or STORAGE_EINVAL for an empty file; err says why. */
int storage_file_crc(const char *path, uint64_t *size, uint32_t *crc, char *err, size_t errcap);
/* A path inside the data directory where the state machine may write a
 * snapshot to adopt (same file system, so the rename is atomic). */
const char *storage_snapshot_tmp_path(const struct storage *s);

/* A snapshot arriving from the leader in chunks (ready.snapshot_chunk):
 * offset 0 starts a new partial file; chunks come in order. */
int storage_snapshot_write_chunk(struct storage *s, const struct raft_snapshot_chunk *chunk);
/* ready.snapshot_install: the partial file is complete; checks its size and
 * CRC32C against meta (STORAGE_ECORRUPT if they differ: the partial file is
 * discarded, nothing else changes), fsyncs, makes it the current snapshot
 * atomically, and drops log entries <= meta->index; if the log does not hold
 * meta->index with meta->term, the whole log goes and it continues at
 * meta->index + 1 (§5.3). Durable when it returns. After STORAGE_ENOSPC,
 * retry the same call before anything else. */
int storage_snapshot_install(struct storage *s, const struct raft_snapshot_meta *meta);

/* The current snapshot's data file (NULL if none), for the state machine
 * to restore from and for sending chunks to followers. */
const char *storage_snapshot_path(const struct storage *s);
/* Reads len bytes at offset of the current snapshot (for an outgoing
 * RAFT_MSG_SNAPSHOT chunk). STORAGE_EINVAL if index is not the current
 * snapshot's index or the range is outside it. */
int storage_snapshot_read(struct storage *s, raft_index index, uint64_t offset, void *buf, uint32_t len);

/* ---- Introspection ------------------------------------------------------ */

struct storage_stats {
    uint64_t fsyncs;            /* fdatasync calls on log segments */
    uint64_t other_fsyncs;      /* fsyncs of hard state, snapshot, new segment and directory */
    uint64_t entries_appended;
    uint64_t bytes_appended;
    uint64_t segments;          /* segment files now on disk */
    uint64_t disk_bytes;        /* bytes of log, hard state and snapshot files */
};
void storage_get_stats(const struct storage *s, struct storage_stats *out);

#endif
