/*
 * identity.h — who this node is beyond its id, kept in DIR/identity (SPEC
 * "Identity, lost disks"): the cluster's id, this data directory's
 * incarnation (random, made with the directory), whether the directory
 * started empty with --join, and the incarnation of every member this node
 * has completed a handshake with (its "pins").
 *
 * Why: a member whose data directory was lost must not come back as a voter
 * that forgot its votes and its log. Its peers pinned its old incarnation
 * the first time it talked to them; a new directory has a new one, so they
 * refuse it (unless it started with --join, the documented way back in),
 * and at its start it leaves with what to do (docs/security.md).
 */
#ifndef LINKRAFT_NODE_IDENTITY_H
#define LINKRAFT_NODE_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster.h"
#include "net.h"

#define IDENTITY_MAX_PINS 256
#define IDENTITY_TEXT_MAX (128 + IDENTITY_MAX_PINS * 64) /* the longest DIR/identity */

struct identity_pin {
    raft_id id;
    uint8_t incarnation[NET_ID_BYTES];
};

struct identity {
    struct net_identity self;
    size_t n_pins;
    struct identity_pin pins[IDENTITY_MAX_PINS];
};

/* A new identity for a data directory starting empty: a random incarnation;
 * the cluster id derived from the bootstrap members (see identity.c for why
 * derived) and the secret (may be NULL), or unknown when joined (learnt at
 * the first handshake with a member). */
void identity_new(struct identity *id, const struct cluster *members, const uint8_t *secret, size_t secret_len,
                  bool joined);

/* Reads DIR/identity. Returns 0 (*found false if there is none), or -1 with
 * a message naming the file if it is damaged. */
int identity_load(const char *dir, struct identity *id, bool *found, char *err, size_t errcap);

/* Whether DIR/identity exists (whatever its contents: identity_load judges
 * them). */
bool identity_exists(const char *dir);

/* Writes DIR/identity atomically and durably (temporary file, fsync,
 * rename, fsync of DIR), mode 0600. Returns 0 or -1 with a message. */
int identity_save(const char *dir, const struct identity *id, char *err, size_t errcap);

/* Preallocates DIR/identity.tmp to the longest identity file, so that
 * identity_save still works on a full disk. Why: a node pins a peer's new
 * data directory (a member re-added with --join) before it takes the peer's
 * handshake; a node whose disk is full could not, and refused the peer for
 * as long as the disk stayed full. A leader's full disk does not stop its
 * log while the log's last block has room, so it went on leading while the
 * re-added member could not follow it (found by the chaos suite, seed 77).
 * identity_save calls it again after each save; best effort: -1 if there
 * is no room, and the next save then needs free space, as before. */
int identity_reserve(const char *dir);

/* Judges a peer's identity at a handshake: NET_CHECK_OTHER_CLUSTER if both
 * cluster ids are known and differ; NET_CHECK_REPLACED if this node pinned
 * another incarnation for it, unless it started with --join and is_voter is
 * false (it was removed and is being added again: the documented way back,
 * which never hands a voter's id to a new directory); else NET_CHECK_OK,
 * after learning the cluster id (if ours was unknown) and pinning its
 * incarnation. *changed says whether id must be saved. NET_CHECK_INTERNAL
 * if the pin table is full. */
int identity_check(struct identity *id, raft_id peer, const struct net_identity *theirs, bool is_voter,
                   bool *changed);

#endif
