/*
 * fuzz_backup.c — libFuzzer driver for the backup file's header and whole-
 * file check (backup_header_decode, backup_check_file; src/node/backup_file.c).
 * A backup is a file an operator downloads and later hands to `linkraft
 * restore`, so its bytes are not trusted.
 *
 * The input's first byte picks how the rest becomes the file: as it is, or
 * with the magic and the header checksum rewritten to fit (bit 0), and the
 * database size and checksum too (bit 1), or the fuzzer would never get past
 * the checksums.
 *
 * Properties: a refusal says why; an accepted header has version 1, a
 * non-zero index and size, and encodes back to the same 80 bytes; the file
 * is accepted exactly when its header is, its length is the header's plus
 * the database size, and the CRC32C of the rest is the header's, and then
 * with the same fields (checked for accepted headers when the mode byte's
 * six high bits are set).
 */
#include "fuzz.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "backup.h"
#include "common/crc32c.h"

static void fz_backup_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void fz_backup_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t fz_backup_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* One scratch file per process, removed at exit. */
static char fz_backup_path[64];
static int fz_backup_fd = -1;

static void fz_backup_cleanup(void)
{
    if (fz_backup_fd >= 0) {
        close(fz_backup_fd);
        unlink(fz_backup_path);
    }
}

static void fz_backup_write(const uint8_t *b, size_t n)
{
    if (fz_backup_fd < 0) {
        snprintf(fz_backup_path, sizeof fz_backup_path, "/dev/shm/fuzz-backup-%d", (int)getpid());
        fz_backup_fd = open(fz_backup_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        FUZZ_CHECK(fz_backup_fd >= 0);
        atexit(fz_backup_cleanup);
    }
    FUZZ_CHECK(ftruncate(fz_backup_fd, 0) == 0);
    FUZZ_CHECK(n == 0 || pwrite(fz_backup_fd, b, n, 0) == (ssize_t)n);
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    static uint8_t file[1 << 16];
    if (size == 0 || size - 1 > sizeof file)
        return 0;
    uint8_t mode = data[0];
    size_t n = size - 1;
    memcpy(file, data + 1, n);
    if (n >= BACKUP_HEADER_BYTES && (mode & 1)) {
        memcpy(file, BACKUP_MAGIC, 8);
        if (mode & 2) {
            fz_backup_put64(file + 64, n - BACKUP_HEADER_BYTES);
            fz_backup_put32(file + 72, crc32c(file + BACKUP_HEADER_BYTES, n - BACKUP_HEADER_BYTES));
        }
        fz_backup_put32(file + 76, crc32c(file, 76));
    }

    struct backup_header h;
    char err[512] = "";
    int rc = backup_header_decode(&h, file, n, err, sizeof err);
    if (rc != 0) {
        FUZZ_CHECK(rc == -1 && err[0]);
    } else {
        FUZZ_CHECK(h.version == BACKUP_VERSION && h.index > 0 && h.db_size > 0);
        uint8_t back[BACKUP_HEADER_BYTES];
        backup_header_encode(&h, back);
        FUZZ_CHECK(memcmp(back, file, BACKUP_HEADER_BYTES) == 0);
    }

    /* The whole file, as restore checks it before writing anything: for an
     * accepted header (it decodes the header with the same function) whose
     * mode byte's six high bits are all set: a file costs system calls and
     * a 1 MiB buffer (an mmap under ASan), 90% of this driver's time if
     * done for every input. */
    if (rc != 0 || (mode & 0xfc) != 0xfc)
        return 0;
    fz_backup_write(file, n);
    struct backup_header f;
    char ferr[1024] = "";
    int frc = backup_check_file(fz_backup_path, &f, ferr, sizeof ferr);
    bool whole = fz_backup_get64(file + 64) == n - BACKUP_HEADER_BYTES &&
                 crc32c(file + BACKUP_HEADER_BYTES, n - BACKUP_HEADER_BYTES) == h.db_crc;
    if (!whole) {
        FUZZ_CHECK(frc == -1 && strstr(ferr, fz_backup_path) && strstr(ferr, "nothing was written"));
        return 0;
    }
    FUZZ_CHECK(frc == 0);
    FUZZ_CHECK(memcmp(&f, &h, sizeof h) == 0);
    return 0;
}
