/*
 * memfs.h — a simulated disk behind the storage seam (struct storage_io),
 * for tests. Files live in memory; each has the bytes a process would read
 * now and the bytes that would survive a power loss (what its last
 * fdatasync saw). Names in a directory become durable only when the
 * directory itself is fsynced, as on a real file system: a created,
 * renamed or removed file may come back in its old state after a crash.
 *
 *   memfs_crash      power loss: every file and name reverts to its durable
 *                    state; open descriptors become invalid (EBADF);
 *   memfs_crash_keep the same, but one file keeps its first n current bytes
 *                    (a write torn at any byte), or more if an fsync made
 *                    more durable;
 *   memfs_fail_at    the Nth write, fsync or rename from now fails with the
 *                    given errno, and every later one of that kind too
 *                    until memfs_heal (a full disk stays full). A failing
 *                    write first writes half its bytes: with ENOSPC it
 *                    returns that short count (the next call gets ENOSPC),
 *                    with another errno it returns -1 after writing them.
 *
 * Directories are created with mkdir and assumed durable at once. Paths are
 * compared as strings; "dir/name" has parent "dir". Not thread-safe.
 */
#ifndef LINKRAFT_TESTS_MEMFS_H
#define LINKRAFT_TESTS_MEMFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage.h"

enum memfs_op { MEMFS_WRITE = 0, MEMFS_SYNC = 1, MEMFS_RENAME = 2, MEMFS_N_OPS = 3 };

struct memfs;

struct memfs *memfs_create(void);
void memfs_destroy(struct memfs *m);
/* The seam; valid until memfs_destroy. */
const struct storage_io *memfs_io(struct memfs *m);

/* Calls of kind op since creation (failed ones included). */
uint64_t memfs_count(const struct memfs *m, enum memfs_op op);
/* Arms one fault: the nth (1-based) call of kind op from now fails with err. */
void memfs_fail_at(struct memfs *m, enum memfs_op op, uint64_t nth, int err);
/* Whether the armed fault has fired. */
bool memfs_triggered(const struct memfs *m);
/* Disarms any fault: calls succeed again. */
void memfs_heal(struct memfs *m);

void memfs_crash(struct memfs *m);
void memfs_crash_keep(struct memfs *m, const char *path, size_t n);

/* Test access to files, outside the seam's counters and faults. write
 * creates or replaces path (not durable until a crash-free fsync, like a
 * process writing without fsync); read returns a malloc'd copy (NULL if
 * absent); size returns -1 if absent. */
int memfs_write_file(struct memfs *m, const char *path, const void *data, size_t len);
uint8_t *memfs_read_file(struct memfs *m, const char *path, size_t *len);
long memfs_file_size(struct memfs *m, const char *path);
bool memfs_exists(struct memfs *m, const char *path);
/* The names in dir now (current, not durable), at most cap, as strings owned
 * by m until the next call. Returns the count. */
size_t memfs_list(struct memfs *m, const char *dir, const char **names, size_t cap);

#endif
