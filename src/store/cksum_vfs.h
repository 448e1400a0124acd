/*
 * cksum_vfs.h — the SQLite VFS that keeps a CRC32C of every database page
 * (cksum_vfs.c says why and how). Internal to src/store.
 */
#ifndef LINKRAFT_STORE_CKSUM_VFS_H
#define LINKRAFT_STORE_CKSUM_VFS_H

#include <sqlite3.h>
#include <stddef.h>

#define CKSUM_VFS_NAME "linkraft-cksum"

/* Registers the VFS once (thread-safe) and returns its name for
 * sqlite3_open_v2, or NULL if the default VFS cannot be wrapped. */
const char *cksum_vfs(void);

/* Asks for the 8 reserved bytes per page the checksums live in. Takes
 * effect only on a database none of whose pages is written yet. */
int cksum_vfs_reserve(sqlite3 *db);

/* The file: URI to open path with (SQLITE_OPEN_URI): cksum says whether a
 * new file will have the reserved bytes (a file that has a page 1 says so
 * itself). -1 if it does not fit in cap. */
int cksum_vfs_uri(const char *path, int cksum, char *out, size_t cap);

/* Whether any page read in this process failed its checksum (whichever
 * connection or thread read it: the site's queries use the raw handle). */
int cksum_vfs_damage_seen(void);
/* The damaged file is gone (set aside, before anything else opens it). */
void cksum_vfs_damage_forget(void);

#endif
