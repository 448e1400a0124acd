/*
 * repair.h — what a node does when its database cannot be trusted
 * (issue 17; SPEC §3 "Damaged files ... repairs itself"). Internal to
 * src/node; repair.c says how each case is decided.
 */
#ifndef LINKRAFT_NODE_REPAIR_H
#define LINKRAFT_NODE_REPAIR_H

#include <stdbool.h>
#include <stddef.h>

#include "raft.h"
#include "storage.h"
#include "store.h"

enum repair_mode {
    REPAIR_NONE = 0,        /* the database is sound: start as usual */
    REPAIR_LOCAL = 1,       /* it was damaged and moved aside: the snapshot and the log rebuild it */
    REPAIR_FROM_PEERS = 2,  /* this node's own files cannot rebuild it: a leader's snapshot will */
};

/* Opens the database at db_path (store_open checks every page) and decides
 * how the node's state is rebuilt, given what storage_open (with
 * snapshot_data_optional) found. A damaged database is moved aside
 * (PATH.damaged) and an empty one opened in its place; nothing else is
 * changed. REPAIR_FROM_PEERS when the snapshot's data file is missing or
 * damaged: whatever the database holds, the node cannot send a snapshot
 * nor restore from one, and only a leader's snapshot makes it whole again.
 * Logs what it found and what the node will do. 0, or 1 with err. */
int repair_open_store(const char *db_path, const struct storage_state *state, struct store **out,
                      enum repair_mode *mode, char *err, size_t errcap);

/* After raft_restore, for REPAIR_FROM_PEERS: puts the core in
 * raft_want_snapshot (it keeps its log and hard state, applies nothing,
 * never campaigns, asks each leader for a snapshot). Refuses (1, with err)
 * when no other voter could ever send one. */
int repair_from_peers_begin(struct raft *r, const char *data_dir, char *err, size_t errcap);

/* The database was found damaged while the node runs (a page read failed
 * its checksum, or the copy for a snapshot did not verify): the node starts
 * afresh in this same process (execve of the same binary and arguments), so
 * the start-up checks above repair it, locally or from peers. Everything
 * durable is as after a crash (kill -9 is tested at every point), nothing
 * acknowledged is lost. Gives up (exit 1) after a few such restarts in a
 * row: a disk that keeps damaging pages needs a person. Never returns. */
void repair_restart(const char *why, const char *detail);

#endif
