/*
 * backup.h — a site's backup file, and the two offline operations that
 * write a data directory from something other than the log: restoring a
 * backup into a new cluster and forcing a survivor into a one-voter
 * cluster (SPEC §3 "Identity, lost disks, backups, disaster recovery";
 * procedures in docs/operations.md).
 *
 * A backup file (`linkraft backup --out PATH`, served by any node at
 * GET /api/v1/backup to a request proven with the cluster secret) is an
 * 80-byte header followed by the site's SQLite database as of one applied,
 * hence committed, index (a single file, page checksums included). All
 * integers little-endian:
 *
 *   0  8  magic "LKRFTBAK"
 *   8  4  format version (BACKUP_VERSION)
 *  12  4  reserved, 0
 *  16  8  index: the last log entry the database holds
 *  24  8  the serving node's term when the copy was taken (information)
 *  32 16  the cluster id the backup was taken from
 *  48 16  this backup's id (random): a restore derives the new cluster's id from it
 *  64  8  size of the database in bytes
 *  72  4  CRC32C of the database
 *  76  4  CRC32C of bytes 0..75
 */
#ifndef LINKRAFT_BACKUP_H
#define LINKRAFT_BACKUP_H

#include <stddef.h>
#include <stdint.h>

#include "raft.h"

struct cluster; /* sys/cluster_file.h */

#define BACKUP_MAGIC "LKRFTBAK"
#define BACKUP_VERSION 1
#define BACKUP_HEADER_BYTES 80
#define BACKUP_ID_BYTES 16

struct backup_header {
    uint32_t version;
    uint64_t index;
    uint64_t term;
    uint8_t cluster[BACKUP_ID_BYTES];
    uint8_t backup_id[BACKUP_ID_BYTES];
    uint64_t db_size;
    uint32_t db_crc;
};

void backup_header_encode(const struct backup_header *h, uint8_t out[BACKUP_HEADER_BYTES]);
/* Checks magic, header CRC, version (a newer one is refused, saying which
 * versions) and reserved bytes. Returns 0, or -1 with a message naming
 * what (the caller prefixes the file's name). */
int backup_header_decode(struct backup_header *h, const uint8_t *b, size_t len, char *err, size_t errcap);

/* Checks the whole backup file at path (header, length, the database's
 * CRC32C) without writing anything. Returns 0 with *h filled, or -1 with a
 * message naming the file and what is wrong. */
int backup_check_file(const char *path, struct backup_header *h, char *err, size_t errcap);

/* Writes data_dir (which must not exist, or be empty) for member id of
 * the cluster file c: a snapshot at the backup's index holding its
 * database (the old cluster's member addresses dropped) with c's members
 * as the voters, term 1, and an identity whose cluster id is derived from
 * the backup's id and c, so every member restored from the same file and
 * cluster file agrees on it and no member of the old cluster is taken for
 * one of the new. The file is checked whole first; on any failure nothing
 * is left behind (a directory it created is removed). Returns 0 with
 * *index, else 1 (runtime) or 2 (usage) with a message. */
int backup_restore(const char *backup_path, const char *data_dir, const struct cluster *c, raft_id id,
                   uint64_t *index, char *err, size_t errcap);

/* --force-new-cluster: the data directory of a survivor of a lost majority
 * becomes a one-voter cluster of self keeping everything its log holds (a
 * configuration entry {self} is appended after its last entry, so what the
 * log held beyond its commit index is committed by its next leader term,
 * as in etcd), with a new random cluster id and no pins, so that a member
 * of the old cluster that comes back is refused rather than split the
 * brain. Nothing to do (*changed false) if self is already the only
 * member. Returns 0, or 1 with a message. */
int backup_force_new_cluster(const char *data_dir, raft_id self, int *changed, char *err, size_t errcap);

#endif
