/*
 * memfs.c — the simulated disk of memfs.h: in-memory files with a current
 * and a durable copy of their bytes, a current and a durable set of names,
 * fault injection on write, fsync and rename, and crashes that throw away
 * whatever was not made durable.
 */
#include "memfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MEMFS_PATH 512

struct inode {
    uint8_t *data, *dur;
    size_t len, cap, dlen;
    struct inode *next_all;
};

struct name {
    char path[MEMFS_PATH];
    struct inode *ino;
};

struct names {
    struct name *v;
    size_t n, cap;
};

struct fdesc {
    bool used, is_dir;
    char path[MEMFS_PATH];
    struct inode *ino;
};

struct memfs {
    struct storage_io io;
    struct inode *all;
    struct names cur, dur;
    char (*dirs)[MEMFS_PATH];
    size_t n_dirs;
    struct fdesc *fds;
    size_t n_fds;
    uint64_t count[MEMFS_N_OPS];
    /* The armed fault. */
    bool armed, fired;
    enum memfs_op fop;
    uint64_t fat;      /* fires when count[fop] reaches this */
    int ferr;
};

#define FD_BASE 1000

static struct inode *inode_new(struct memfs *m)
{
    struct inode *n = calloc(1, sizeof *n);
    if (!n)
        abort(); /* a test fixture: out of memory ends the test run */
    n->next_all = m->all;
    m->all = n;
    return n;
}

static void reserve(uint8_t **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return;
    size_t c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    uint8_t *q = realloc(*p, c);
    if (!q)
        abort();
    *p = q;
    *cap = c;
}

static void set_len(struct inode *n, size_t len)
{
    reserve(&n->data, &n->cap, len ? len : 1);
    if (len > n->len)
        memset(n->data + n->len, 0, len - n->len);
    n->len = len;
}

static struct name *find(struct names *ns, const char *path)
{
    for (size_t i = 0; i < ns->n; i++)
        if (strcmp(ns->v[i].path, path) == 0)
            return &ns->v[i];
    return NULL;
}

static void names_put(struct names *ns, const char *path, struct inode *ino)
{
    struct name *e = find(ns, path);
    if (e) {
        e->ino = ino;
        return;
    }
    if (ns->n == ns->cap) {
        size_t c = ns->cap ? ns->cap * 2 : 16;
        struct name *v = realloc(ns->v, c * sizeof *v);
        if (!v)
            abort();
        ns->v = v;
        ns->cap = c;
    }
    snprintf(ns->v[ns->n].path, MEMFS_PATH, "%s", path);
    ns->v[ns->n++].ino = ino;
}

static void names_del(struct names *ns, const char *path)
{
    struct name *e = find(ns, path);
    if (!e)
        return;
    *e = ns->v[--ns->n];
}

/* Whether path is directly inside dir. */
static bool in_dir(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && path[n] == '/' && !strchr(path + n + 1, '/');
}

static bool parent_exists(const struct memfs *m, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return true;
    for (size_t i = 0; i < m->n_dirs; i++)
        if ((size_t)(slash - path) == strlen(m->dirs[i]) && strncmp(m->dirs[i], path, (size_t)(slash - path)) == 0)
            return true;
    return false;
}

static bool is_dir(const struct memfs *m, const char *path)
{
    for (size_t i = 0; i < m->n_dirs; i++)
        if (strcmp(m->dirs[i], path) == 0)
            return true;
    return false;
}

static struct fdesc *get_fd(struct memfs *m, int fd)
{
    if (fd < FD_BASE || (size_t)(fd - FD_BASE) >= m->n_fds || !m->fds[fd - FD_BASE].used)
        return NULL;
    return &m->fds[fd - FD_BASE];
}

/* Counts a call of kind op; true if it must fail (errno set). */
static bool fault(struct memfs *m, enum memfs_op op)
{
    m->count[op]++;
    if (!m->armed || op != m->fop)
        return false;
    if (m->fired || m->count[op] >= m->fat) {
        m->fired = true;
        errno = m->ferr;
        return true;
    }
    return false;
}

/* ---- the seam ---------------------------------------------------------------- */

static int mf_open(void *ctx, const char *path, int flags, mode_t mode)
{
    (void)mode;
    struct memfs *m = ctx;
    if (strlen(path) >= MEMFS_PATH) {
        errno = ENAMETOOLONG;
        return -1;
    }
    bool dir = is_dir(m, path);
    struct inode *ino = NULL;
    if (!dir) {
        if (flags & O_DIRECTORY) {
            errno = find(&m->cur, path) ? ENOTDIR : ENOENT;
            return -1;
        }
        struct name *e = find(&m->cur, path);
        if (e) {
            if ((flags & O_CREAT) && (flags & O_EXCL)) {
                errno = EEXIST;
                return -1;
            }
            ino = e->ino;
            if (flags & O_TRUNC)
                set_len(ino, 0);
        } else {
            if (!(flags & O_CREAT) || !parent_exists(m, path)) {
                errno = ENOENT;
                return -1;
            }
            ino = inode_new(m);
            names_put(&m->cur, path, ino);
        }
    } else if ((flags & O_ACCMODE) != O_RDONLY) {
        errno = EISDIR;
        return -1;
    }
    struct fdesc *v = realloc(m->fds, (m->n_fds + 1) * sizeof *v);
    if (!v)
        abort();
    m->fds = v;
    struct fdesc *d = &m->fds[m->n_fds];
    memset(d, 0, sizeof *d);
    d->used = true;
    d->is_dir = dir;
    d->ino = ino;
    snprintf(d->path, MEMFS_PATH, "%s", path);
    return FD_BASE + (int)m->n_fds++;
}

static int mf_close(void *ctx, int fd)
{
    struct fdesc *d = get_fd(ctx, fd);
    if (!d) {
        errno = EBADF;
        return -1;
    }
    d->used = false;
    return 0;
}

static ssize_t mf_pread(void *ctx, int fd, void *buf, size_t n, off_t off)
{
    struct fdesc *d = get_fd(ctx, fd);
    if (!d || d->is_dir) {
        errno = d ? EISDIR : EBADF;
        return -1;
    }
    if (off < 0) {
        errno = EINVAL;
        return -1;
    }
    if ((size_t)off >= d->ino->len)
        return 0;
    size_t k = d->ino->len - (size_t)off < n ? d->ino->len - (size_t)off : n;
    memcpy(buf, d->ino->data + off, k);
    return (ssize_t)k;
}

static ssize_t mf_pwrite(void *ctx, int fd, const void *buf, size_t n, off_t off)
{
    struct memfs *m = ctx;
    struct fdesc *d = get_fd(m, fd);
    if (!d || d->is_dir) {
        errno = d ? EISDIR : EBADF;
        return -1;
    }
    bool was_fired = m->fired;
    if (fault(m, MEMFS_WRITE)) {
        int e = errno;
        if (was_fired || n < 2)
            return -1;
        /* The first failing write gets half its bytes into the file. */
        size_t half = n / 2;
        if ((size_t)off + half > d->ino->len)
            set_len(d->ino, (size_t)off + half);
        memcpy(d->ino->data + off, buf, half);
        if (e == ENOSPC)
            return (ssize_t)half;
        errno = e;
        return -1;
    }
    if ((size_t)off + n > d->ino->len)
        set_len(d->ino, (size_t)off + n);
    memcpy(d->ino->data + off, buf, n);
    return (ssize_t)n;
}

static int mf_fdatasync(void *ctx, int fd)
{
    struct memfs *m = ctx;
    struct fdesc *d = get_fd(m, fd);
    if (!d) {
        errno = EBADF;
        return -1;
    }
    if (fault(m, MEMFS_SYNC))
        return -1;
    if (d->is_dir) {
        /* The names in this directory become what they are now. */
        for (size_t i = 0; i < m->dur.n;)
            if (in_dir(m->dur.v[i].path, d->path))
                m->dur.v[i] = m->dur.v[--m->dur.n];
            else
                i++;
        for (size_t i = 0; i < m->cur.n; i++)
            if (in_dir(m->cur.v[i].path, d->path))
                names_put(&m->dur, m->cur.v[i].path, m->cur.v[i].ino);
        return 0;
    }
    struct inode *n = d->ino;
    free(n->dur);
    n->dur = malloc(n->len ? n->len : 1);
    if (!n->dur)
        abort();
    memcpy(n->dur, n->data, n->len);
    n->dlen = n->len;
    return 0;
}

static int mf_ftruncate(void *ctx, int fd, off_t len)
{
    struct fdesc *d = get_fd(ctx, fd);
    if (!d || d->is_dir || len < 0) {
        errno = !d ? EBADF : EINVAL;
        return -1;
    }
    set_len(d->ino, (size_t)len);
    return 0;
}

static int mf_rename(void *ctx, const char *from, const char *to)
{
    struct memfs *m = ctx;
    if (fault(m, MEMFS_RENAME))
        return -1;
    struct name *e = find(&m->cur, from);
    if (!e) {
        errno = ENOENT;
        return -1;
    }
    if (!parent_exists(m, to)) {
        errno = ENOENT;
        return -1;
    }
    struct inode *ino = e->ino;
    names_del(&m->cur, from);
    names_put(&m->cur, to, ino);
    return 0;
}

static int mf_unlink(void *ctx, const char *path)
{
    struct memfs *m = ctx;
    if (!find(&m->cur, path)) {
        errno = is_dir(m, path) ? EISDIR : ENOENT;
        return -1;
    }
    names_del(&m->cur, path);
    return 0;
}

static int mf_mkdir(void *ctx, const char *path, mode_t mode)
{
    (void)mode;
    struct memfs *m = ctx;
    if (is_dir(m, path) || find(&m->cur, path)) {
        errno = EEXIST;
        return -1;
    }
    if (strlen(path) >= MEMFS_PATH) {
        errno = ENAMETOOLONG;
        return -1;
    }
    char(*v)[MEMFS_PATH] = realloc(m->dirs, (m->n_dirs + 1) * sizeof *v);
    if (!v)
        abort();
    m->dirs = v;
    snprintf(m->dirs[m->n_dirs++], MEMFS_PATH, "%s", path);
    return 0;
}

static int mf_fstat_size(void *ctx, int fd, off_t *size)
{
    struct fdesc *d = get_fd(ctx, fd);
    if (!d) {
        errno = EBADF;
        return -1;
    }
    *size = d->is_dir ? 0 : (off_t)d->ino->len;
    return 0;
}

static int mf_list(void *ctx, const char *dir, void (*each)(void *arg, const char *name), void *arg)
{
    struct memfs *m = ctx;
    if (!is_dir(m, dir)) {
        errno = find(&m->cur, dir) ? ENOTDIR : ENOENT;
        return -1;
    }
    /* Copy first: each() may not change the directory, but be safe. */
    size_t n = 0;
    char(*names)[MEMFS_PATH] = malloc((m->cur.n + 1) * sizeof *names);
    if (!names)
        abort();
    for (size_t i = 0; i < m->cur.n; i++)
        if (in_dir(m->cur.v[i].path, dir))
            snprintf(names[n++], MEMFS_PATH, "%s", m->cur.v[i].path + strlen(dir) + 1);
    for (size_t i = 0; i < n; i++)
        each(arg, names[i]);
    free(names);
    return 0;
}

/* ---- control ------------------------------------------------------------------ */

struct memfs *memfs_create(void)
{
    struct memfs *m = calloc(1, sizeof *m);
    if (!m)
        abort();
    m->io = (struct storage_io){ .ctx = m, .open = mf_open, .close = mf_close, .pread = mf_pread,
                                 .pwrite = mf_pwrite, .fdatasync = mf_fdatasync, .ftruncate = mf_ftruncate,
                                 .rename = mf_rename, .unlink = mf_unlink, .mkdir = mf_mkdir,
                                 .fstat_size = mf_fstat_size, .list = mf_list };
    mf_mkdir(m, ".", 0755); /* the working directory, parent of relative paths */
    return m;
}

void memfs_destroy(struct memfs *m)
{
    if (!m)
        return;
    for (struct inode *n = m->all, *next; n; n = next) {
        next = n->next_all;
        free(n->data);
        free(n->dur);
        free(n);
    }
    free(m->cur.v);
    free(m->dur.v);
    free(m->dirs);
    free(m->fds);
    free(m);
}

const struct storage_io *memfs_io(struct memfs *m) { return &m->io; }

uint64_t memfs_count(const struct memfs *m, enum memfs_op op) { return m->count[op]; }

void memfs_fail_at(struct memfs *m, enum memfs_op op, uint64_t nth, int err)
{
    m->armed = true;
    m->fired = false;
    m->fop = op;
    m->fat = m->count[op] + (nth ? nth : 1);
    m->ferr = err;
}

bool memfs_triggered(const struct memfs *m) { return m->fired; }

void memfs_heal(struct memfs *m)
{
    m->armed = false;
    m->fired = false;
}

void memfs_crash_keep(struct memfs *m, const char *path, size_t keep)
{
    struct name *kept = path ? find(&m->cur, path) : NULL;
    if (path && !kept)
        kept = find(&m->dur, path); /* removed, but the removal may not be durable */
    struct inode *kino = kept ? kept->ino : NULL;
    for (struct inode *n = m->all; n; n = n->next_all) {
        if (n == kino) {
            /* Never less than what an fsync made durable. */
            size_t k = keep < n->dlen ? n->dlen : keep;
            if (k > n->len)
                k = n->len;
            set_len(n, k);
            continue;
        }
        set_len(n, n->dlen);
        if (n->dlen)
            memcpy(n->data, n->dur, n->dlen);
    }
    /* The kept bytes are durable now, as if the disk had written them. */
    if (kino) {
        free(kino->dur);
        kino->dur = malloc(kino->len ? kino->len : 1);
        if (!kino->dur)
            abort();
        memcpy(kino->dur, kino->data, kino->len);
        kino->dlen = kino->len;
    }
    m->cur.n = 0;
    for (size_t i = 0; i < m->dur.n; i++)
        names_put(&m->cur, m->dur.v[i].path, m->dur.v[i].ino);
    for (size_t i = 0; i < m->n_fds; i++)
        m->fds[i].used = false;
}

void memfs_crash(struct memfs *m) { memfs_crash_keep(m, NULL, 0); }

int memfs_write_file(struct memfs *m, const char *path, const void *data, size_t len)
{
    if (!parent_exists(m, path) || strlen(path) >= MEMFS_PATH)
        return -1;
    struct name *e = find(&m->cur, path);
    struct inode *ino = e ? e->ino : inode_new(m);
    if (!e)
        names_put(&m->cur, path, ino);
    set_len(ino, len);
    memcpy(ino->data, data, len);
    return 0;
}

uint8_t *memfs_read_file(struct memfs *m, const char *path, size_t *len)
{
    struct name *e = find(&m->cur, path);
    if (!e)
        return NULL;
    uint8_t *b = malloc(e->ino->len ? e->ino->len : 1);
    if (!b)
        abort();
    memcpy(b, e->ino->data, e->ino->len);
    *len = e->ino->len;
    return b;
}

long memfs_file_size(struct memfs *m, const char *path)
{
    struct name *e = find(&m->cur, path);
    return e ? (long)e->ino->len : -1;
}

bool memfs_exists(struct memfs *m, const char *path) { return find(&m->cur, path) != NULL || is_dir(m, path); }

size_t memfs_list(struct memfs *m, const char *dir, const char **names, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < m->cur.n && n < cap; i++)
        if (in_dir(m->cur.v[i].path, dir))
            names[n++] = m->cur.v[i].path + strlen(dir) + 1;
    return n;
}
