/*
 * util.c — the helpers every file of src/storage uses to call the seam:
 * whole writes and reads with retries of short transfers, fsync of files and
 * of the data directory, and the rule that turns a failed call into an error
 * code (ENOSPC is retryable, everything else is fatal) with a message naming
 * the operation, the file, the offset and strerror.
 */
#include "storage/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int st_fail(struct storage *s, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->errmsg, sizeof s->errmsg, fmt, ap);
    va_end(ap);
    if (rc == STORAGE_EIO)
        s->broken = true;
    return rc;
}

const char *st_restore_advice(void)
{
    return "this node's durable state cannot be trusted; restore it from the cluster: stop it, move "
           "the data directory aside (keep it for diagnosis), start it with --join and add it back "
           "with `linkraft member add`";
}

int st_errno_rc(int e)
{
    if (e == ENOSPC || e == EDQUOT)
        return STORAGE_ENOSPC;
    if (e == ENOMEM)
        return STORAGE_ENOMEM;
    return STORAGE_EIO;
}

void st_path(const struct storage *s, char *buf, const char *name)
{
    snprintf(buf, ST_PATH_MAX, "%s/%s", s->dir, name);
}

int st_write_all(struct storage *s, int fd, const void *buf, size_t n, uint64_t off, const char *path,
                 const char *what)
{
    const uint8_t *p = buf;
    size_t done = 0;
    while (done < n) {
        ssize_t w = s->io->pwrite(s->io->ctx, fd, p + done, n - done, (off_t)(off + done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            int e = errno;
            return st_fail(s, st_errno_rc(e), "%s: writing %zu bytes at byte offset %llu of %s failed: %s",
                           what, n - done, (unsigned long long)(off + done), path, strerror(e));
        }
        if (w == 0)
            return st_fail(s, STORAGE_EIO, "%s: writing at byte offset %llu of %s wrote nothing",
                           what, (unsigned long long)(off + done), path);
        done += (size_t)w;
    }
    return STORAGE_OK;
}

int st_read_all(struct storage *s, int fd, void *buf, size_t n, uint64_t off, const char *path,
                const char *what)
{
    uint8_t *p = buf;
    size_t done = 0;
    while (done < n) {
        ssize_t r = s->io->pread(s->io->ctx, fd, p + done, n - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            return st_fail(s, e == ENOMEM ? STORAGE_ENOMEM : STORAGE_EIO,
                           "%s: reading %zu bytes at byte offset %llu of %s failed: %s", what, n - done,
                           (unsigned long long)(off + done), path, strerror(e));
        }
        if (r == 0)
            return st_fail(s, STORAGE_ECORRUPT, "%s: %s ends at byte offset %llu, %zu bytes short",
                           what, path, (unsigned long long)(off + done), n - done);
        done += (size_t)r;
    }
    return STORAGE_OK;
}

int st_sync_fd(struct storage *s, int fd, const char *path, const char *what)
{
    if (s->io->fdatasync(s->io->ctx, fd) != 0) {
        int e = errno;
        return st_fail(s, STORAGE_EIO,
                       "%s: fdatasync of %s failed: %s (fatal: the kernel may have dropped the unwritten "
                       "data; stop the node, check the disk, and restart it)", what, path, strerror(e));
    }
    s->stats.other_fsyncs++;
    return STORAGE_OK;
}

int st_sync_dir(struct storage *s, const char *what)
{
    int fd = s->io->open(s->io->ctx, s->dir, O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0) {
        int e = errno;
        return st_fail(s, STORAGE_EIO, "%s: opening directory %s to fsync it failed: %s", what, s->dir,
                       strerror(e));
    }
    int rc = st_sync_fd(s, fd, s->dir, what);
    s->io->close(s->io->ctx, fd);
    return rc;
}

int st_unlink(struct storage *s, const char *path, const char *what)
{
    if (s->io->unlink(s->io->ctx, path) != 0 && errno != ENOENT) {
        int e = errno;
        return st_fail(s, STORAGE_EIO, "%s: removing %s failed: %s", what, path, strerror(e));
    }
    return STORAGE_OK;
}

int st_read_small(struct storage *s, const char *path, uint8_t *buf, size_t cap, size_t *len)
{
    int fd = s->io->open(s->io->ctx, path, O_RDONLY, 0);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT)
            return 1;
        return st_fail(s, STORAGE_EIO, "opening %s failed: %s", path, strerror(e));
    }
    size_t done = 0;
    int rc = STORAGE_OK;
    for (;;) {
        if (done == cap) {
            /* One byte more than any valid file tells an over-long file apart. */
            uint8_t extra;
            ssize_t r = s->io->pread(s->io->ctx, fd, &extra, 1, (off_t)done);
            if (r > 0)
                rc = st_fail(s, STORAGE_ECORRUPT, "%s is longer than %zu bytes, the most a valid one has",
                             path, cap);
            break;
        }
        ssize_t r = s->io->pread(s->io->ctx, fd, buf + done, cap - done, (off_t)done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            rc = st_fail(s, STORAGE_EIO, "reading %s failed: %s", path, strerror(e));
            break;
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    s->io->close(s->io->ctx, fd);
    *len = done;
    return rc;
}

void st_close(struct storage *s, int fd)
{
    if (fd >= 0)
        s->io->close(s->io->ctx, fd);
}
