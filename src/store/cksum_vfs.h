/*
 * cksum_vfs.h — the SQLite VFS that keeps a CRC32C of every database page
 * (cksum_vfs.c says why and how). Internal to src/store.
 */
#ifndef LINKRAFT_STORE_CKSUM_VFS_H
#define LINKRAFT_STORE_CKSUM_VFS_H

#include <sqlite3.h>

#define CKSUM_VFS_NAME "linkraft-cksum"

/* Registers the VFS once (thread-safe) and returns its name for
 * sqlite3_open_v2, or NULL if the default VFS cannot be wrapped. */
const char *cksum_vfs(void);

/* Asks for the 8 reserved bytes per page the checksums live in. Takes
 * effect only on a database none of whose pages is written yet. */
int cksum_vfs_reserve(sqlite3 *db);

#endif
