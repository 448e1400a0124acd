/*
 * snapshot.c — snapshots on disk (dissertation §5). The current snapshot is
 * the data file "snap-<index>-<term>.dat" named by "snapshot.meta". A new one
 * becomes current in this order, so a crash at any point leaves either the
 * old snapshot or the new one, whole:
 *   1. its data is fdatasynced (and its size and CRC32C computed or checked);
 *   2. the new snapshot.meta is written to snapshot.meta.tmp and fdatasynced;
 *   3. the data is renamed to its final name;
 *   4. snapshot.meta.tmp is renamed over snapshot.meta, the directory fsynced;
 *   5. only then is the old data file removed (and, for a received snapshot,
 *      the log it replaces dropped).
 * A data file that no snapshot.meta names is a leftover of a crash between
 * 3 and 4 and is removed at open. A snapshot received in chunks lives in
 * snapshot.partial until it is installed; it is not kept across a restart
 * (the leader starts again from offset 0).
 */
#include "storage/internal.h"

#include "common/crc32c.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void st_snapshot_data_name(char *buf, size_t cap, raft_index index, raft_term term)
{
    snprintf(buf, cap, "snap-%020" PRIu64 "-%020" PRIu64 ".dat", index, term);
}

bool st_snapshot_parse_data_name(const char *name)
{
    size_t n = strlen(name);
    if (n != 5 + 20 + 1 + 20 + 4 || memcmp(name, "snap-", 5) != 0 || name[25] != '-' ||
        strcmp(name + 46, ".dat") != 0)
        return false;
    for (size_t i = 5; i < 46; i++)
        if (i != 25 && (name[i] < '0' || name[i] > '9'))
            return false;
    return true;
}

/* Size and CRC32C of the file at path, or of fd if fd >= 0. Returns 1 if it
 * does not exist. */
static int crc_of(struct storage *s, const char *path, int fd_in, uint64_t *size, uint32_t *crc)
{
    int fd = fd_in;
    if (fd < 0) {
        fd = s->io->open(s->io->ctx, path, O_RDONLY, 0);
        if (fd < 0) {
            int e = errno;
            if (e == ENOENT)
                return 1;
            return st_fail(s, STORAGE_EIO, "opening %s failed: %s", path, strerror(e));
        }
    }
    off_t fsize = 0;
    int rc = STORAGE_OK;
    if (s->io->fstat_size(s->io->ctx, fd, &fsize) != 0) {
        int e = errno;
        rc = st_fail(s, STORAGE_EIO, "reading the size of %s failed: %s", path, strerror(e));
    }
    enum { CHUNK = 64 * 1024 };
    uint8_t *buf = rc ? NULL : malloc(CHUNK);
    if (!rc && !buf)
        rc = st_fail(s, STORAGE_ENOMEM, "checking %s: out of memory", path);
    uint32_t c = 0;
    for (uint64_t off = 0; rc == STORAGE_OK && off < (uint64_t)fsize;) {
        size_t want = (uint64_t)fsize - off < CHUNK ? (size_t)((uint64_t)fsize - off) : CHUNK;
        rc = st_read_all(s, fd, buf, want, off, path, "checking a snapshot");
        if (rc == STORAGE_OK) {
            c = crc32c_extend(c, buf, want);
            off += want;
        }
    }
    free(buf);
    if (fd_in < 0)
        st_close(s, fd);
    *size = (uint64_t)fsize;
    *crc = c;
    return rc;
}

int st_file_crc(struct storage *s, const char *path, uint64_t *size, uint32_t *crc)
{
    return crc_of(s, path, -1, size, crc);
}

/* Steps 2-5 of the top comment, for data already at its final name: write
 * snapshot.meta atomically, then drop the previous snapshot. If that fails
 * the data stays staged for a retry. */
static int publish(struct storage *s, const struct raft_snapshot_meta *meta)
{
    char name[96], dst[ST_PATH_MAX];
    st_snapshot_data_name(name, sizeof name, meta->index, meta->term);
    st_path(s, dst, name);
    uint8_t mb[ST_SNAPMETA_MAX];
    size_t mlen = st_snapmeta_encode(meta, mb);
    int rc = st_atomic_write(s, ST_SNAPMETA_NAME, mb, mlen);
    if (rc) {
        s->staged = true;
        s->staged_meta = *meta;
        return rc;
    }
    s->staged = false;
    char old[ST_PATH_MAX];
    bool had = s->have_snap;
    snprintf(old, sizeof old, "%s", s->snap_path);
    s->have_snap = true;
    s->snap_bad = false;
    s->snap = *meta;
    s->snap_file_bytes = mlen;
    snprintf(s->snap_path, sizeof s->snap_path, "%s", dst);
    if (had && strcmp(old, dst) != 0)
        return st_unlink(s, old, "removing the previous snapshot");
    return STORAGE_OK;
}

/* Gives the durable data at src its final name (step 3), then publishes it. */
static int make_current(struct storage *s, const char *src, const struct raft_snapshot_meta *meta)
{
    char name[96], dst[ST_PATH_MAX];
    st_snapshot_data_name(name, sizeof name, meta->index, meta->term);
    st_path(s, dst, name);
    if (s->io->rename(s->io->ctx, src, dst) != 0) {
        int e = errno;
        return st_fail(s, st_errno_rc(e), "renaming snapshot %s to %s failed: %s", src, dst, strerror(e));
    }
    return publish(s, meta);
}

static bool is_staged(const struct storage *s, const struct raft_snapshot_meta *meta)
{
    return s->staged && s->staged_meta.index == meta->index && s->staged_meta.term == meta->term;
}

const char *storage_snapshot_tmp_path(const struct storage *s) { return s->tmp_path; }

const char *storage_snapshot_path(const struct storage *s) { return s->have_snap && !s->snap_bad ? s->snap_path : NULL; }

static int check_meta(struct storage *s, const struct raft_snapshot_meta *meta, const char *what)
{
    if (s->broken)
        return STORAGE_EIO;
    if (meta->index == 0 || meta->term == 0 || meta->config.n > RAFT_MAX_MEMBERS)
        return st_fail(s, STORAGE_EINVAL, "%s: snapshot index %llu term %llu (%u members) is invalid", what,
                       (unsigned long long)meta->index, (unsigned long long)meta->term, meta->config.n);
    if (s->have_snap && meta->index < s->snap.index)
        return st_fail(s, STORAGE_EINVAL, "%s: snapshot at index %llu is older than the current one at %llu",
                       what, (unsigned long long)meta->index, (unsigned long long)s->snap.index);
    return STORAGE_OK;
}

int storage_snapshot_adopt(struct storage *s, const char *tmp_path, struct raft_snapshot_meta *meta)
{
    int rc = check_meta(s, meta, "adopting a snapshot");
    if (rc)
        return rc;
    if (s->have_snap && meta->index == s->snap.index)
        return st_fail(s, STORAGE_EINVAL,
                       "adopting a snapshot at index %llu: that is already the current snapshot's index "
                       "(take the next one after more entries are applied)", (unsigned long long)meta->index);
    if (meta->index > s->last_index)
        return st_fail(s, STORAGE_EINVAL,
                       "adopting a snapshot at index %llu: the log ends at %llu (a node's own snapshot "
                       "covers only applied entries)", (unsigned long long)meta->index,
                       (unsigned long long)s->last_index);
    if (is_staged(s, meta)) { /* the retry after a full disk */
        struct raft_snapshot_meta m = *meta;
        m.size = s->staged_meta.size;
        m.crc = s->staged_meta.crc;
        rc = publish(s, &m);
        if (rc == STORAGE_OK) {
            meta->size = m.size;
            meta->crc = m.crc;
        }
        return rc;
    }
    int fd = s->io->open(s->io->ctx, tmp_path, O_RDONLY, 0);
    if (fd < 0) {
        int e = errno;
        return st_fail(s, e == ENOENT ? STORAGE_EINVAL : STORAGE_EIO, "adopting snapshot %s: opening it failed: %s",
                       tmp_path, strerror(e));
    }
    uint64_t size = meta->size;
    uint32_t crc = meta->crc;
    off_t fsize = 0;
    if (!size) { /* else the caller read it (storage_file_crc), off the write path */
        rc = crc_of(s, tmp_path, fd, &size, &crc);
    } else if (s->io->fstat_size(s->io->ctx, fd, &fsize) != 0 || (uint64_t)fsize != size) {
        st_close(s, fd);
        return st_fail(s, STORAGE_EINVAL, "adopting snapshot %s: it has %lld bytes, not the %llu its checksum was "
                       "computed over", tmp_path, (long long)fsize, (unsigned long long)size);
    }
    if (rc == STORAGE_OK)
        rc = st_sync_fd(s, fd, tmp_path, "making a new snapshot durable");
    st_close(s, fd);
    if (rc)
        return rc;
    struct raft_snapshot_meta m = *meta;
    m.size = size;
    m.crc = crc;
    rc = make_current(s, tmp_path, &m);
    if (rc == STORAGE_OK) {
        meta->size = size;
        meta->crc = crc;
    }
    return rc;
}

int storage_file_crc(const char *path, uint64_t *size, uint32_t *crc, char *err, size_t errcap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errcap, "reading %s for its checksum failed: %s", path, strerror(errno));
        return STORAGE_EIO;
    }
    enum { CHUNK = 256 * 1024 };
    uint8_t *buf = malloc(CHUNK);
    uint64_t n = 0;
    uint32_t c = 0;
    int rc = buf ? STORAGE_OK : STORAGE_ENOMEM;
    while (rc == STORAGE_OK) {
        ssize_t got = read(fd, buf, CHUNK);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf(err, errcap, "reading %s for its checksum failed: %s", path, strerror(errno));
            rc = STORAGE_EIO;
        } else if (got == 0) {
            break;
        } else {
            c = crc32c_extend(c, buf, (size_t)got);
            n += (uint64_t)got;
        }
    }
    if (rc == STORAGE_ENOMEM)
        snprintf(err, errcap, "reading %s for its checksum: out of memory", path);
    free(buf);
    close(fd);
    if (rc == STORAGE_OK && n == 0) {
        snprintf(err, errcap, "%s is empty: not a snapshot", path);
        rc = STORAGE_EINVAL;
    }
    *size = n;
    *crc = c;
    return rc;
}

static void partial_drop(struct storage *s)
{
    char path[ST_PATH_MAX];
    st_path(s, path, ST_SNAP_PARTIAL_NAME);
    st_close(s, s->partial_fd);
    s->partial_fd = -1;
    s->partial = false;
    s->partial_size = 0;
    s->io->unlink(s->io->ctx, path); /* best effort: open removes it too */
}

int storage_snapshot_write_chunk(struct storage *s, const struct raft_snapshot_chunk *chunk)
{
    int rc = check_meta(s, &chunk->meta, "receiving a snapshot chunk");
    if (rc)
        return rc;
    if (chunk->len && !chunk->data)
        return st_fail(s, STORAGE_EINVAL, "receiving a snapshot chunk: %u bytes but no data", chunk->len);
    char path[ST_PATH_MAX];
    st_path(s, path, ST_SNAP_PARTIAL_NAME);
    if (chunk->offset == 0) {
        partial_drop(s);
        int fd = s->io->open(s->io->ctx, path, O_RDWR | O_CREAT | O_TRUNC, 0600);
        if (fd < 0) {
            int e = errno;
            return st_fail(s, st_errno_rc(e), "receiving a snapshot: creating %s failed: %s", path, strerror(e));
        }
        s->partial_fd = fd;
        s->partial = true;
        s->partial_meta = chunk->meta;
        s->partial_size = 0;
    } else if (!s->partial || s->partial_meta.index != chunk->meta.index ||
               s->partial_meta.term != chunk->meta.term || chunk->offset != s->partial_size) {
        return st_fail(s, STORAGE_EINVAL,
                       "receiving a snapshot: chunk at offset %llu of snapshot %llu/%llu does not continue "
                       "the partial snapshot (%s %llu/%llu, %llu bytes so far)",
                       (unsigned long long)chunk->offset, (unsigned long long)chunk->meta.index,
                       (unsigned long long)chunk->meta.term, s->partial ? "receiving" : "none;",
                       (unsigned long long)s->partial_meta.index, (unsigned long long)s->partial_meta.term,
                       (unsigned long long)s->partial_size);
    }
    if (chunk->meta.size && chunk->offset + chunk->len > chunk->meta.size)
        return st_fail(s, STORAGE_EINVAL, "receiving a snapshot: chunk ends at %llu, past the snapshot's %llu bytes",
                       (unsigned long long)(chunk->offset + chunk->len), (unsigned long long)chunk->meta.size);
    if (chunk->len == 0)
        return STORAGE_OK;
    rc = st_write_all(s, s->partial_fd, chunk->data, chunk->len, chunk->offset, path, "receiving a snapshot");
    if (rc) {
        /* Cut a partial chunk off so a retry of the same chunk continues cleanly. */
        if (s->io->ftruncate(s->io->ctx, s->partial_fd, (off_t)s->partial_size) != 0 && rc != STORAGE_EIO) {
            int e = errno;
            return st_fail(s, STORAGE_EIO, "receiving a snapshot: cutting %s back to %llu bytes failed: %s", path,
                           (unsigned long long)s->partial_size, strerror(e));
        }
        return rc;
    }
    s->partial_size += chunk->len;
    return STORAGE_OK;
}

/* After an installed snapshot is current: the log keeps what follows it if
 * it continues it, else starts over at index + 1 (§5.3). */
int st_install_marker_set(struct storage *s, const struct raft_snapshot_meta *meta)
{
    /* The content is for people; open only asks whether the file exists. */
    char text[96];
    int len = snprintf(text, sizeof text, "installing snapshot index %llu term %llu\n",
                       (unsigned long long)meta->index, (unsigned long long)meta->term);
    return st_atomic_write(s, ST_INSTALL_MARKER_NAME, (const uint8_t *)text, (size_t)len);
}

int st_install_marker_clear(struct storage *s)
{
    char path[ST_PATH_MAX];
    st_path(s, path, ST_INSTALL_MARKER_NAME);
    if (s->io->unlink(s->io->ctx, path) != 0) {
        int e = errno;
        if (e == ENOENT)
            return STORAGE_OK;
        return st_fail(s, STORAGE_EIO, "removing %s failed: %s", path, strerror(e));
    }
    return st_sync_dir(s, "making the end of a snapshot install durable");
}

static int install_log(struct storage *s, const struct raft_snapshot_meta *meta, bool keep)
{
    if (keep)
        return storage_compact(s, meta->index + 1);
    int rc = st_log_reset(s, meta->index + 1);
    if (rc == STORAGE_OK)
        rc = st_install_marker_clear(s);
    if (rc) {
        s->reset_pending = true;
        return rc;
    }
    s->reset_pending = false;
    s->last_term = meta->term;
    return STORAGE_OK;
}

int storage_snapshot_install(struct storage *s, const struct raft_snapshot_meta *meta)
{
    int rc = check_meta(s, meta, "installing a snapshot");
    if (rc)
        return rc;
    /* The same index again is refused, except in place of a damaged data
     * file (repair from peers: the leader's snapshot can sit at this node's
     * own index, when both took one after the same entry). */
    if (s->have_snap && meta->index == s->snap.index && !s->snap_bad) {
        if (s->reset_pending && meta->term == s->snap.term)
            return install_log(s, meta, false); /* the retry after a full disk */
        return st_fail(s, STORAGE_EINVAL, "installing a snapshot at index %llu: it is already the current one",
                       (unsigned long long)meta->index);
    }
    bool staged = is_staged(s, meta);
    if (!staged && (!s->partial || s->partial_meta.index != meta->index || s->partial_meta.term != meta->term))
        return st_fail(s, STORAGE_EINVAL, "installing snapshot %llu/%llu: no such snapshot was received",
                       (unsigned long long)meta->index, (unsigned long long)meta->term);
    char path[ST_PATH_MAX];
    st_path(s, path, ST_SNAP_PARTIAL_NAME);
    if (!staged) {
        uint64_t size = 0;
        uint32_t crc = 0;
        rc = crc_of(s, path, s->partial_fd, &size, &crc);
        if (rc)
            return rc;
        if (size != meta->size || crc != meta->crc) {
            partial_drop(s);
            return st_fail(s, STORAGE_ECORRUPT,
                           "installing snapshot %llu/%llu: received %llu bytes with CRC32C %08x but the leader "
                           "announced %llu bytes with CRC32C %08x; the received copy was discarded (the leader "
                           "sends it again)", (unsigned long long)meta->index, (unsigned long long)meta->term,
                           (unsigned long long)size, crc, (unsigned long long)meta->size, meta->crc);
        }
        rc = st_sync_fd(s, s->partial_fd, path, "making a received snapshot durable");
        if (rc)
            return rc;
    }
    /* Does the log continue the snapshot (it holds entry index with the same
     * term, and more after it)? Then the entries after it stay. */
    bool keep = false;
    if (meta->index >= s->first_index && meta->index < s->last_index) {
        raft_term t = 0;
        rc = st_term_at(s, meta->index, &t);
        if (rc)
            return rc;
        keep = t == meta->term;
    }
    /* Replacing the log: the marker first, so that open can tell the log
     * this install leaves behind from a log that lost entries. */
    if (!keep && (rc = st_install_marker_set(s, meta)) != STORAGE_OK)
        return rc;
    if (!staged) {
        rc = make_current(s, path, meta);
        /* Once renamed, the received file is no longer the partial one. */
        if (rc == STORAGE_OK || s->staged) {
            st_close(s, s->partial_fd);
            s->partial_fd = -1;
            s->partial = false;
            s->partial_size = 0;
        }
    } else {
        rc = publish(s, meta);
    }
    if (rc)
        return rc;
    return install_log(s, meta, keep);
}

int storage_snapshot_read(struct storage *s, raft_index index, uint64_t offset, void *buf, uint32_t len)
{
    if (s->broken)
        return STORAGE_EIO;
    if (s->snap_bad)
        return st_fail(s, STORAGE_EINVAL, "reading snapshot %llu: its data file is missing or damaged",
                       (unsigned long long)index);
    if (!s->have_snap || index != s->snap.index)
        return st_fail(s, STORAGE_EINVAL, "reading snapshot %llu: the current snapshot is %llu",
                       (unsigned long long)index, (unsigned long long)(s->have_snap ? s->snap.index : 0));
    if (offset > s->snap.size || len > s->snap.size - offset)
        return st_fail(s, STORAGE_EINVAL, "reading snapshot %llu: bytes %llu..%llu are outside its %llu bytes",
                       (unsigned long long)index, (unsigned long long)offset,
                       (unsigned long long)(offset + len), (unsigned long long)s->snap.size);
    if (len == 0)
        return STORAGE_OK;
    int fd = s->io->open(s->io->ctx, s->snap_path, O_RDONLY, 0);
    if (fd < 0) {
        int e = errno;
        return st_fail(s, STORAGE_EIO, "reading snapshot %s failed: %s", s->snap_path, strerror(e));
    }
    int rc = st_read_all(s, fd, buf, len, offset, s->snap_path, "reading a snapshot");
    st_close(s, fd);
    return rc;
}
