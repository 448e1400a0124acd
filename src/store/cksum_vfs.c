/*
 * cksum_vfs.c — page checksums for the database: an SQLite VFS that wraps
 * the default one and keeps a checksum of every page in the page's last 8
 * bytes (SQLite's "reserved bytes", which it leaves to the VFS).
 *
 * Why: SQLite trusts what read() returns. One flipped bit on the disk can
 * change a stored value or drop index entries while PRAGMA integrity_check
 * still passes, and the node would serve it, and copy it into snapshots it
 * sends to followers. With a checksum on every page, a damaged page is an
 * error (SQLITE_IOERR_DATA) the moment anything reads it, instead of data.
 *
 * How (the idea of SQLite's cksumvfs extension, written anew here):
 *   - files are opened by URI (cksum_vfs_uri), saying whether a file that
 *     has no page 1 yet will have the reserved bytes;
 *   - a database created by store.c asks for 8 reserved bytes per page
 *     (SQLITE_FCNTL_RESERVE_BYTES) before its first page is written; byte 20
 *     of the file header then says 8, and only such databases are checked
 *     (an older database without them is passed through untouched);
 *   - every page-sized write to the database file gets bytes [size-8,
 *     size-4) = CRC32C of bytes [0, size-8), and [size-4, size) = its
 *     complement (so an all-zero page never passes);
 *   - every page-sized read of it is checked; a mismatch is
 *     SQLITE_IOERR_DATA.
 * The WAL is left alone: SQLite chains a checksum through its frames,
 * computed before the write reaches the VFS, so a page changed here would
 * make SQLite drop the frame (and the commits after it) at the next open;
 * SQLite checks those frame checksums itself whenever it opens the WAL, and
 * pages reach the database file, checksummed, at each checkpoint.
 * Memory-mapped reads are refused (xFetch gives no page), so every page
 * goes through xRead and its check.
 */
#include "store/cksum_vfs.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "common/crc32c.h"

#define CK_RESERVE 8

struct ck_file {
    sqlite3_file base;
    int is_db;            /* a main database file (not a WAL or journal) */
    int checked;          /* ... with CK_RESERVE reserved bytes per page */
    sqlite3_file *real;   /* the default VFS's file, right after this struct */
};

static sqlite3_vfs ck_vfs;
static volatile int damage_seen; /* a page failed its check, on any thread */
static sqlite3_vfs *real_vfs;

static int page_sized(int n) { return n >= 512 && n <= 65536 && (n & (n - 1)) == 0; }

static void ck_compute(const unsigned char *page, int n, unsigned char *out)
{
    uint32_t c = crc32c(page, (size_t)n - CK_RESERVE);
    for (int i = 0; i < 4; i++) {
        out[i] = (unsigned char)(c >> (8 * i));
        out[4 + i] = (unsigned char)(~c >> (8 * i));
    }
}

/* Page 1 (at offset 0) says whether the database has the reserved bytes. */
static void ck_note_header(struct ck_file *f, const void *buf, int n, sqlite3_int64 off)
{
    const unsigned char *b = buf;
    if (f->is_db && off == 0 && n >= 100 && memcmp(b, "SQLite format 3", 16) == 0)
        f->checked = b[20] == CK_RESERVE;
}

static int ck_checked(const struct ck_file *f) { return f->is_db && f->checked; }

static int ck_close(sqlite3_file *pf)
{
    struct ck_file *f = (struct ck_file *)pf;
    return f->real->pMethods ? f->real->pMethods->xClose(f->real) : SQLITE_OK;
}

static int ck_read(sqlite3_file *pf, void *buf, int n, sqlite3_int64 off)
{
    struct ck_file *f = (struct ck_file *)pf;
    int rc = f->real->pMethods->xRead(f->real, buf, n, off);
    if (rc != SQLITE_OK)
        return rc; /* a short read is zero-filled past the end: nothing to check */
    ck_note_header(f, buf, n, off);
    if (page_sized(n) && ck_checked(f)) {
        unsigned char want[CK_RESERVE];
        ck_compute(buf, n, want);
        if (memcmp(want, (const unsigned char *)buf + n - CK_RESERVE, CK_RESERVE) != 0) {
            sqlite3_log(SQLITE_IOERR_DATA, "page checksum mismatch at byte offset %lld", off);
            __atomic_store_n(&damage_seen, 1, __ATOMIC_RELAXED);
            return SQLITE_IOERR_DATA;
        }
    }
    return SQLITE_OK;
}

static int ck_write(sqlite3_file *pf, const void *buf, int n, sqlite3_int64 off)
{
    struct ck_file *f = (struct ck_file *)pf;
    ck_note_header(f, buf, n, off);
    if (page_sized(n) && ck_checked(f))
        /* The reserved bytes belong to the VFS: SQLite leaves them for it. */
        ck_compute(buf, n, (unsigned char *)buf + n - CK_RESERVE);
    return f->real->pMethods->xWrite(f->real, buf, n, off);
}

#define REAL(pf) (((struct ck_file *)(pf))->real)
static int ck_truncate(sqlite3_file *pf, sqlite3_int64 size) { return REAL(pf)->pMethods->xTruncate(REAL(pf), size); }
static int ck_sync(sqlite3_file *pf, int flags) { return REAL(pf)->pMethods->xSync(REAL(pf), flags); }
static int ck_size(sqlite3_file *pf, sqlite3_int64 *size) { return REAL(pf)->pMethods->xFileSize(REAL(pf), size); }
static int ck_lock(sqlite3_file *pf, int l) { return REAL(pf)->pMethods->xLock(REAL(pf), l); }
static int ck_unlock(sqlite3_file *pf, int l) { return REAL(pf)->pMethods->xUnlock(REAL(pf), l); }
static int ck_reserved(sqlite3_file *pf, int *out) { return REAL(pf)->pMethods->xCheckReservedLock(REAL(pf), out); }
static int ck_sector(sqlite3_file *pf) { return REAL(pf)->pMethods->xSectorSize(REAL(pf)); }
static int ck_devchar(sqlite3_file *pf) { return REAL(pf)->pMethods->xDeviceCharacteristics(REAL(pf)); }
static int ck_shm_map(sqlite3_file *pf, int pg, int sz, int extend, void volatile **pp)
{
    return REAL(pf)->pMethods->xShmMap(REAL(pf), pg, sz, extend, pp);
}
static int ck_shm_lock(sqlite3_file *pf, int off, int n, int flags)
{
    return REAL(pf)->pMethods->xShmLock(REAL(pf), off, n, flags);
}
static void ck_shm_barrier(sqlite3_file *pf) { REAL(pf)->pMethods->xShmBarrier(REAL(pf)); }
static int ck_shm_unmap(sqlite3_file *pf, int del) { return REAL(pf)->pMethods->xShmUnmap(REAL(pf), del); }

static int ck_fetch(sqlite3_file *pf, sqlite3_int64 off, int n, void **pp)
{
    (void)pf;
    (void)off;
    (void)n;
    *pp = NULL; /* no memory-mapped pages: each one is read, and checked */
    return SQLITE_OK;
}
static int ck_unfetch(sqlite3_file *pf, sqlite3_int64 off, void *p)
{
    (void)pf;
    (void)off;
    (void)p;
    return SQLITE_OK;
}

static int ck_fcntl(sqlite3_file *pf, int op, void *arg)
{
    struct ck_file *f = (struct ck_file *)pf;
    int rc = f->real->pMethods->xFileControl(f->real, op, arg);
    if (op == SQLITE_FCNTL_VFSNAME && rc == SQLITE_OK)
        *(char **)arg = sqlite3_mprintf("linkraft-cksum/%z", *(char **)arg);
    return rc;
}

static const sqlite3_io_methods ck_methods = {
    3, ck_close, ck_read, ck_write, ck_truncate, ck_sync, ck_size, ck_lock, ck_unlock, ck_reserved,
    ck_fcntl, ck_sector, ck_devchar, ck_shm_map, ck_shm_lock, ck_shm_barrier, ck_shm_unmap, ck_fetch, ck_unfetch,
};

static int ck_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *pf, int flags, int *out_flags)
{
    (void)vfs;
    struct ck_file *f = (struct ck_file *)pf;
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)&f[1];
    f->is_db = (flags & SQLITE_OPEN_MAIN_DB) != 0;
    /* Page 1 tells (ck_note_header), but a new file's other pages can be
     * written before it: a big copy spills pages from its cache long
     * before it commits page 1. Who creates the file says (cksum=1). */
    if (f->is_db && name)
        f->checked = sqlite3_uri_boolean(name, "cksum", 0);
    int rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out_flags);
    pf->pMethods = f->real->pMethods ? &ck_methods : NULL;
    return rc;
}

#define RV real_vfs
static int ck_delete(sqlite3_vfs *v, const char *p, int sync) { (void)v; return RV->xDelete(RV, p, sync); }
static int ck_access(sqlite3_vfs *v, const char *p, int fl, int *out) { (void)v; return RV->xAccess(RV, p, fl, out); }
static int ck_full(sqlite3_vfs *v, const char *p, int n, char *out) { (void)v; return RV->xFullPathname(RV, p, n, out); }
static void *ck_dlopen(sqlite3_vfs *v, const char *p) { (void)v; return RV->xDlOpen(RV, p); }
static void ck_dlerror(sqlite3_vfs *v, int n, char *out) { (void)v; RV->xDlError(RV, n, out); }
static void (*ck_dlsym(sqlite3_vfs *v, void *h, const char *s))(void) { (void)v; return RV->xDlSym(RV, h, s); }
static void ck_dlclose(sqlite3_vfs *v, void *h) { (void)v; RV->xDlClose(RV, h); }
static int ck_random(sqlite3_vfs *v, int n, char *out) { (void)v; return RV->xRandomness(RV, n, out); }
static int ck_sleep(sqlite3_vfs *v, int us) { (void)v; return RV->xSleep(RV, us); }
static int ck_time(sqlite3_vfs *v, double *t) { (void)v; return RV->xCurrentTime(RV, t); }
static int ck_lasterr(sqlite3_vfs *v, int n, char *out) { (void)v; return RV->xGetLastError(RV, n, out); }
static int ck_time64(sqlite3_vfs *v, sqlite3_int64 *t) { (void)v; return RV->xCurrentTimeInt64(RV, t); }
static int ck_setsys(sqlite3_vfs *v, const char *n, sqlite3_syscall_ptr p) { (void)v; return RV->xSetSystemCall(RV, n, p); }
static sqlite3_syscall_ptr ck_getsys(sqlite3_vfs *v, const char *n) { (void)v; return RV->xGetSystemCall(RV, n); }
static const char *ck_nextsys(sqlite3_vfs *v, const char *n) { (void)v; return RV->xNextSystemCall(RV, n); }

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int registered = SQLITE_ERROR;

static void ck_register(void)
{
    /* Before SQLite initializes (this is the process's first use of it):
     * no allocation statistics, which nothing reads, and which otherwise
     * take a global mutex on every sqlite3_malloc and free (a few percent
     * of a leader's CPU under writes). Refused harmlessly if too late. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    real_vfs = sqlite3_vfs_find(NULL);
    if (!real_vfs || real_vfs->iVersion < 3)
        return;
    ck_vfs = (sqlite3_vfs){
        .iVersion = 3, .szOsFile = (int)sizeof(struct ck_file) + real_vfs->szOsFile,
        .mxPathname = real_vfs->mxPathname, .zName = CKSUM_VFS_NAME,
        .xOpen = ck_open, .xDelete = ck_delete, .xAccess = ck_access, .xFullPathname = ck_full,
        .xDlOpen = ck_dlopen, .xDlError = ck_dlerror, .xDlSym = ck_dlsym, .xDlClose = ck_dlclose,
        .xRandomness = ck_random, .xSleep = ck_sleep, .xCurrentTime = ck_time, .xGetLastError = ck_lasterr,
        .xCurrentTimeInt64 = ck_time64, .xSetSystemCall = ck_setsys, .xGetSystemCall = ck_getsys,
        .xNextSystemCall = ck_nextsys,
    };
    registered = sqlite3_vfs_register(&ck_vfs, 0);
}

const char *cksum_vfs(void)
{
    pthread_once(&once, ck_register);
    return registered == SQLITE_OK ? CKSUM_VFS_NAME : NULL;
}

int cksum_vfs_reserve(sqlite3 *db)
{
    int n = CK_RESERVE;
    return sqlite3_file_control(db, "main", SQLITE_FCNTL_RESERVE_BYTES, &n);
}

int cksum_vfs_uri(const char *path, int cksum, char *out, size_t cap)
{
    /* file: URIs give '%', '?' and '#' a meaning: escape them. */
    size_t n = 0;
    int w = snprintf(out, cap, "file:");
    if (w < 0 || (size_t)w >= cap)
        return -1;
    n = (size_t)w;
    for (const char *p = path; *p; p++) {
        if (n + 4 >= cap)
            return -1;
        if (*p == '%' || *p == '?' || *p == '#')
            n += (size_t)snprintf(out + n, cap - n, "%%%02X", (unsigned char)*p);
        else
            out[n++] = *p;
    }
    w = snprintf(out + n, cap - n, "?cksum=%d", cksum ? 1 : 0);
    return w < 0 || (size_t)w >= cap - n ? -1 : 0;
}

int cksum_vfs_damage_seen(void) { return __atomic_load_n(&damage_seen, __ATOMIC_RELAXED); }
void cksum_vfs_damage_forget(void) { __atomic_store_n(&damage_seen, 0, __ATOMIC_RELAXED); }
