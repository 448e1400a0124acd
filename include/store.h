/*
 * store.h — the replicated state machine: linkraft's data in SQLite.
 *
 * Committed Raft entries are applied here in log order, a batch per SQLite
 * transaction, and the index of the last applied entry is written in the same
 * transaction as the changes it caused: after a crash the database is exactly
 * the state at its recorded index, and Raft's log (the durable record)
 * replays what follows. The database runs in WAL mode with
 * synchronous=NORMAL: a transaction may be lost on power failure but never
 * half-applied, and whatever is lost the log replays.
 *
 * Commands are deterministic: everything that varies (time, random tokens,
 * password hashes) was fixed by the proposing node inside the command
 * (include/command.h), so every replica computes identical results.
 *
 * Threads: a struct store is used from one thread (the node's event loop).
 * store_snapshot() opens its own connection and may run on a worker thread.
 */
#ifndef LINKRAFT_STORE_H
#define LINKRAFT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "raft.h"

enum {
    STORE_OK = 0,
    STORE_EIO = -1,         /* SQLite failed; errmsg says why; the node must stop */
    STORE_ENOMEM = -2,
    STORE_EINVAL = -3,
    STORE_EFULL = -4,       /* the disk is full: nothing of the batch was applied; retry later */
};

/* The outcome of one applied command, identical on every replica. */
struct store_result {
    int status;             /* enum command_status (command.h); 0 = ok */
    int64_t id;             /* e.g. the new link's id, or the existing one for a duplicate */
    int64_t count;          /* e.g. a link's like count after a like */
    uint8_t flag;           /* e.g. liked or not after a like/unlike */
    char text[64];          /* e.g. the canonical username */
};

struct store;

/* Opens (creating if needed) the database at path. */
int store_open(const char *path, struct store **out, char *err, size_t errcap);
void store_close(struct store *st);
const char *store_errmsg(const struct store *st);

/* Index of the last entry whose effects are in the database (0: none). */
raft_index store_applied(const struct store *st);

/* Applies committed entries in one transaction. COMMAND entries are decoded
 * and executed; NOOP and CONFIG entries only advance the applied index.
 * A command that cannot be decoded or is refused (e.g. a taken name) is not
 * an error of the store: it gets a non-zero results[i].status, identically
 * on every replica. results may be NULL; otherwise it has n slots.
 * Entries at or below store_applied() are skipped (replay after restart).
 * Returns STORE_EFULL if the disk is full, STORE_EIO if SQLite fails
 * otherwise (either way nothing of the batch is applied). */
int store_apply(struct store *st, const struct raft_entry *entries, size_t n,
                struct store_result *results);

/* Writes a consistent, compact copy of the database at db_path to out_path
 * (VACUUM INTO from a separate connection) and returns the applied index it
 * contains. Safe to call from a worker thread while the loop applies. */
int store_snapshot(const char *db_path, const char *out_path, raft_index *index,
                   char *err, size_t errcap);

/* Replaces the database with the snapshot at snapshot_path (copied, so the
 * caller keeps its file) and reopens it. On success store_applied() is the
 * snapshot's index. A failure after the copy leaves the store closed: the
 * node must stop (the log and snapshot on disk are intact). */
int store_restore(struct store *st, const char *snapshot_path, char *err, size_t errcap);

/* The raw SQLite handle, for queries by modules above (site, status). */
struct sqlite3 *store_db(struct store *st);

/* KV reads (the key-value commands of command.h). *value is malloc'd; the
 * caller frees it. Returns 1 if found, 0 if not, <0 on error. */
int store_kv_get(struct store *st, const char *key, size_t key_len, char **value, size_t *value_len);

/* The member addresses carried in the log (CMD_MEMBER_ADDR), in id order:
 * each(arg, id, "RAFT-ADDRESS HTTP-ADDRESS"). */
int store_members(struct store *st, void (*each)(void *arg, const char *id, const char *addrs), void *arg);

#endif
