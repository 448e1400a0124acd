/*
 * io_posix.c — the real seam: struct storage_io over POSIX file calls. Each
 * function is the plain system call (EINTR is left to the caller, which
 * retries writes and reads). fdatasync on a directory descriptor falls back
 * to fsync, since some file systems refuse fdatasync on directories.
 */
#include "storage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int px_open(void *ctx, const char *path, int flags, mode_t mode)
{
    (void)ctx;
    return open(path, flags | O_CLOEXEC, mode);
}
static int px_close(void *ctx, int fd) { (void)ctx; return close(fd); }
static ssize_t px_pread(void *ctx, int fd, void *buf, size_t n, off_t off)
{
    (void)ctx;
    return pread(fd, buf, n, off);
}
static ssize_t px_pwrite(void *ctx, int fd, const void *buf, size_t n, off_t off)
{
    (void)ctx;
    return pwrite(fd, buf, n, off);
}
static int px_fdatasync(void *ctx, int fd)
{
    (void)ctx;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
        return fsync(fd);
    return fdatasync(fd);
}
static int px_ftruncate(void *ctx, int fd, off_t len) { (void)ctx; return ftruncate(fd, len); }
static int px_rename(void *ctx, const char *from, const char *to) { (void)ctx; return rename(from, to); }
static int px_unlink(void *ctx, const char *path) { (void)ctx; return unlink(path); }
static int px_mkdir(void *ctx, const char *path, mode_t mode) { (void)ctx; return mkdir(path, mode); }
static int px_fstat_size(void *ctx, int fd, off_t *size)
{
    (void)ctx;
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -1;
    *size = st.st_size;
    return 0;
}
static int px_list(void *ctx, const char *dir, void (*each)(void *arg, const char *name), void *arg)
{
    (void)ctx;
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            each(arg, de->d_name);
        errno = 0;
    }
    int e = errno;
    closedir(d);
    if (e) {
        errno = e;
        return -1;
    }
    return 0;
}

static const struct storage_io posix_io = {
    .ctx = NULL,
    .open = px_open,
    .close = px_close,
    .pread = px_pread,
    .pwrite = px_pwrite,
    .fdatasync = px_fdatasync,
    .ftruncate = px_ftruncate,
    .rename = px_rename,
    .unlink = px_unlink,
    .mkdir = px_mkdir,
    .fstat_size = px_fstat_size,
    .list = px_list,
};

const struct storage_io *storage_io_posix(void) { return &posix_io; }
