/*
 * raft.h — the pure Raft consensus core.
 *
 * This module is a state machine and nothing else: it owns no sockets, files,
 * clocks, threads or global state. The host feeds it messages (raft_step),
 * clock ticks (raft_tick) and requests (raft_propose, raft_read_index,
 * raft_transfer_leader, raft_change_member), and collects what to do next as
 * one bundle (raft_ready): state to persist, messages to send, committed
 * entries to apply, a snapshot to install, read indexes that became safe.
 * After doing it, the host calls raft_advance. Randomness (election timeouts)
 * comes from the seed the host gives at creation, so a run is reproducible.
 *
 * References are to Ongaro's dissertation ("Consensus: Bridging Theory and
 * Practice", 2014): §3 basic Raft, §4 membership, §5 compaction, §6 client
 * interaction (ReadIndex), §9.6 pre-vote, §3.10 leadership transfer.
 *
 * THE READY CONTRACT (read this before writing a host)
 *
 *   while (raft_has_ready(r)) {
 *       struct raft_ready rd;
 *       raft_ready(r, &rd);
 *       send(rd.send_now);                         1. may go out at once
 *       if (rd.snapshot_chunk.meta.index) write chunk; 2. persist, in this order:
 *       if (rd.snapshot_install) finish snapshot;     snapshot, truncation,
 *       if (rd.truncate_from) drop log >= it;          entries, hard state,
 *       append(rd.entries); save(rd.hard_state);       then ONE fsync
 *       fsync();
 *       send(rd.send_after_persist);               3. only after the fsync
 *       if (rd.snapshot_install) restore SM;       4. apply
 *       apply(rd.committed);
 *       raft_advance(r, &rd);                      5. acknowledge
 *   }
 *
 * Between raft_ready and raft_advance the host may keep calling raft_step,
 * raft_tick and the request functions (that is how writes arriving during an
 * fsync are batched into the next one: group commit), but must not call
 * raft_ready again. Everything rd points to stays valid until raft_advance.
 *
 * Messages in send_after_persist depend on state in this bundle (a vote, an
 * append acknowledgement, a new term) and must never leave before it is
 * durable. Messages in send_now are a leader's replication traffic, which
 * depends only on state already durable (a new leader sends none until the
 * hard state of its term is: with one voter it is elected before that
 * fsync), so the leader's disk write runs in parallel with its followers'
 * (dissertation §10.2.1).
 *
 * Ownership: every pointer in struct raft_ready is borrowed from the core and
 * valid until raft_advance. Data passed into raft_step/raft_propose is copied;
 * the caller keeps ownership of its buffers.
 */
#ifndef LINKRAFT_RAFT_H
#define LINKRAFT_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint64_t raft_id;    /* node id; 0 means "none" */
typedef uint64_t raft_term;
/* The largest term any part of linkraft adopts: a term at or above 2^63
 * is never campaigned for, restored from disk, stepped, encoded or decoded
 * (SPEC §3), so the term can always grow and a peer cannot push it to where
 * no election could follow. */
#define RAFT_MAX_TERM ((raft_term)(((uint64_t)1 << 63) - 1))
typedef uint64_t raft_index; /* log index; the first entry is 1 */

/* Return codes. 0 is success; every error has a string (raft_strerror). */
enum {
    RAFT_OK = 0,
    RAFT_ENOMEM = -1,        /* allocation failed; nothing changed */
    RAFT_ENOTLEADER = -2,    /* only the leader may do this; see raft_leader() */
    RAFT_ENOLEADER = -3,     /* no leader is known right now; retry later */
    RAFT_EBUSY = -4,         /* a transfer or membership change is under way */
    RAFT_EINVAL = -5,        /* an argument is out of range */
    RAFT_ENOTFOUND = -6,     /* the node id is not a member */
    RAFT_EEXIST = -7,        /* the node id is already a member (in that role) */
    RAFT_ETOOBIG = -8,       /* a proposal is larger than max_entry_bytes */
    RAFT_ECORRUPT = -9,      /* restored state is inconsistent */
    RAFT_EMALFORMED = -10,   /* a message or record could not be decoded */
    RAFT_ECHECKSUM = -11,    /* a checksum did not match */
    RAFT_EVERSION = -12,     /* an unknown format version */
};
const char *raft_strerror(int rc);

enum raft_role {
    RAFT_FOLLOWER = 1,
    RAFT_PRECANDIDATE = 2,
    RAFT_CANDIDATE = 3,
    RAFT_LEADER = 4,
};
const char *raft_role_name(enum raft_role role);

enum raft_entry_type {
    RAFT_ENTRY_COMMAND = 1, /* application data */
    RAFT_ENTRY_NOOP = 2,    /* appended by every new leader (§3.6.2, §6.4) */
    RAFT_ENTRY_CONFIG = 3,  /* data is a raft_config encoded by raft_config_encode */
};

struct raft_entry {
    raft_term term;
    raft_index index;
    uint8_t type;           /* enum raft_entry_type */
    uint32_t len;
    const uint8_t *data;    /* len bytes; NULL when len == 0 */
};

/* ---- Cluster configuration (§4) ---------------------------------------- */

#define RAFT_MAX_MEMBERS 16

enum raft_member_role {
    RAFT_VOTER = 1,
    RAFT_LEARNER = 2,       /* receives the log, never counted in any quorum */
};

struct raft_member {
    raft_id id;
    uint8_t role;           /* enum raft_member_role */
    uint8_t promote;        /* learner to be promoted by the leader once caught up */
};

struct raft_config {
    uint32_t n;
    struct raft_member members[RAFT_MAX_MEMBERS];
};

/* Encoded size is 4 + 10 * n bytes. Returns bytes written, or RAFT_EINVAL if
 * cap is too small. */
int raft_config_encode(const struct raft_config *c, uint8_t *buf, size_t cap);
/* Validates as it decodes: RAFT_EMALFORMED on a bad length, a duplicate or
 * zero id, or an unknown role. */
int raft_config_decode(struct raft_config *c, const uint8_t *buf, size_t len);
const struct raft_member *raft_config_find(const struct raft_config *c, raft_id id);
size_t raft_config_voters(const struct raft_config *c);

/* ---- Messages ---------------------------------------------------------- */

enum raft_msg_type {
    RAFT_MSG_APPEND = 1,            /* §3.5 AppendEntries */
    RAFT_MSG_APPEND_RESP = 2,
    RAFT_MSG_VOTE = 3,              /* §3.4 RequestVote */
    RAFT_MSG_VOTE_RESP = 4,
    RAFT_MSG_PREVOTE = 5,           /* §9.6 */
    RAFT_MSG_PREVOTE_RESP = 6,
    RAFT_MSG_HEARTBEAT = 7,         /* empty AppendEntries, also confirms ReadIndex */
    RAFT_MSG_HEARTBEAT_RESP = 8,
    RAFT_MSG_SNAPSHOT = 9,          /* §5.3 InstallSnapshot, one chunk */
    RAFT_MSG_SNAPSHOT_RESP = 10,
    RAFT_MSG_TIMEOUT_NOW = 11,      /* §3.10 leadership transfer */
    RAFT_MSG_READ_INDEX = 12,       /* follower asks the leader for a read index */
    RAFT_MSG_READ_INDEX_RESP = 13,
    RAFT_MSG_SNAPSHOT_WANTED = 14,  /* a follower that lost its state machine asks for a snapshot */
    RAFT_MSG_TYPE_MAX = 14,
};
const char *raft_msg_type_name(int type);

/* Snapshot metadata: what a snapshot at `index` contains and how to check it. */
struct raft_snapshot_meta {
    raft_index index;       /* last entry the snapshot covers */
    raft_term term;         /* term of that entry */
    struct raft_config config; /* configuration as of index */
    uint64_t size;          /* bytes of snapshot data */
    uint32_t crc;           /* CRC32C of the whole snapshot data */
};

/*
 * One message. Which fields mean something depends on type; the rest are 0.
 *
 *   APPEND        term prev_index prev_term commit entries n_entries
 *   APPEND_RESP   term reject index(=match on success, =rejected prev_index on reject)
 *                 hint_index hint_term (on reject: the follower's conflict hint, §5.3 fast backup)
 *   VOTE/PREVOTE  term last_index(=candidate's) last_term transfer(1 = leadership transfer)
 *   *_RESP        term reject
 *   HEARTBEAT     term commit context(read round number)
 *   HEARTBEAT_RESP term context
 *   SNAPSHOT      term snapshot(meta) offset data len done(1 = last chunk)
 *   SNAPSHOT_RESP term index(=snapshot index) offset(=next offset wanted) reject done
 *   TIMEOUT_NOW   term
 *   READ_INDEX    term context
 *   READ_INDEX_RESP term context index reject
 *   SNAPSHOT_WANTED term index(=the follower's snapshot index: send one at or after it)
 */
struct raft_message {
    uint8_t type;
    raft_id from;
    raft_id to;
    raft_term term;
    raft_index prev_index;
    raft_term prev_term;
    raft_index commit;
    raft_index index;
    raft_index last_index;
    raft_term last_term;
    raft_index hint_index;
    raft_term hint_term;
    uint64_t context;
    uint64_t offset;
    uint8_t reject;
    uint8_t transfer;
    uint8_t done;
    uint32_t n_entries;
    const struct raft_entry *entries;
    struct raft_snapshot_meta snapshot;
    uint32_t len;           /* snapshot chunk bytes */
    const uint8_t *data;    /* snapshot chunk; see RAFT_MSG_SNAPSHOT below */
};

/*
 * RAFT_MSG_SNAPSHOT chunks leave the core WITHOUT data: data is NULL and
 * [offset, offset + len) names the bytes of the snapshot at snapshot.index
 * that the sending host must fill in from the snapshot it announced with
 * raft_snapshot_taken (or installed). If the host no longer has that
 * snapshot it may drop the message; the core resends the current one.
 */

/* ---- Configuration of one node ------------------------------------------ */

struct raft_options {
    raft_id id;
    uint64_t seed;                  /* for randomized election timeouts */
    unsigned election_ticks;        /* base election timeout; actual is random in [e, 2e) */
    unsigned heartbeat_ticks;       /* leader heartbeat interval; < election_ticks */
    uint32_t max_entry_bytes;       /* largest proposal accepted */
    uint32_t max_msg_bytes;         /* entries per APPEND are cut at about this size */
    uint32_t max_inflight_msgs;     /* per follower, in replicate state */
    uint64_t max_inflight_bytes;    /* per follower, in replicate state */
    uint32_t snapshot_chunk_bytes;  /* InstallSnapshot chunk size */
    raft_index trailing_entries;    /* log kept behind a snapshot for slow followers */
    bool pre_vote;                  /* §9.6 */
    bool check_quorum;              /* leader steps down without a quorum for an election timeout */
    bool async_persist;             /* the host persists in the background: see below */
};

/* Fills sensible defaults: election 10, heartbeat 1, pre-vote and
 * check-quorum on, 1 MiB entries, 64 KiB messages, 256 in flight. */
void raft_options_default(struct raft_options *o, raft_id id, uint64_t seed);

/* ---- Ready bundle -------------------------------------------------------- */

struct raft_hard_state {
    raft_term term;
    raft_id vote;
};

struct raft_read_state {
    uint64_t context;       /* what the host passed to raft_read_index */
    raft_index index;       /* serve the read once applied >= index */
    bool ok;                /* false: leadership was lost, retry elsewhere */
};

struct raft_snapshot_chunk {
    struct raft_snapshot_meta meta; /* which snapshot the bytes belong to */
    uint64_t offset;        /* 0 starts a new partial snapshot file */
    uint32_t len;
    const uint8_t *data;
};

struct raft_ready {
    /* Soft state, for information (who leads, our role); not persisted. */
    enum raft_role role;
    raft_id leader;
    raft_term term;
    raft_index commit;

    /* To persist, in this order, then fsync once. */
    struct raft_snapshot_chunk snapshot_chunk;  /* meta.index == 0: none. len may be 0:
                                          the one chunk of an empty snapshot */
    const struct raft_snapshot_meta *snapshot_install; /* received snapshot is complete
                                          and verified: make it the node's snapshot,
                                          drop log entries <= its index, and (step 4)
                                          restore the state machine from it */
    raft_index truncate_from;           /* 0: none; else drop log entries >= it first */
    const struct raft_entry *entries;   /* append, contiguous, after the truncation */
    size_t n_entries;
    bool hard_state_changed;
    struct raft_hard_state hard_state;

    const struct raft_message *send_now;
    size_t n_send_now;
    const struct raft_message *send_after_persist;
    size_t n_send_after_persist;

    const struct raft_entry *committed; /* apply in order; ascending contiguous */
    size_t n_committed;

    const struct raft_read_state *reads;
    size_t n_reads;

    /* Log entries below this index may be deleted from disk (0: no change). */
    raft_index compact_before;

    /* This ready's number: 1, 2, 3, ... With async_persist the host reports
     * durability by it (raft_persisted). */
    uint64_t seq;
};

/* ---- Lifecycle ------------------------------------------------------------ */

struct raft; /* opaque */

/* Creates a node with an empty log. Returns NULL if memory runs out.
 * Then call exactly one of raft_bootstrap (first start of an initial member),
 * raft_restore (restart), or nothing (an empty node waiting to be added,
 * which learns its configuration from the leader). */
struct raft *raft_create(const struct raft_options *opts);
void raft_destroy(struct raft *r);

/* First start of a fresh cluster: every initial member calls this with the
 * same configuration. Writes the configuration as entry 1 (term 1), which the
 * next ready hands out to persist. RAFT_EINVAL if the log is not empty. */
int raft_bootstrap(struct raft *r, const struct raft_config *config);

/* Restart from disk. hs: the last hard state saved. snap: the last snapshot
 * (NULL if none). entries: the log after or overlapping the snapshot, in
 * order and contiguous (copied). applied: the state machine's last applied
 * index (>= snap->index when snap is given); it is taken as committed.
 * RAFT_ECORRUPT if the pieces do not fit together (gap, term going down). */
int raft_restore(struct raft *r, const struct raft_hard_state *hs,
                 const struct raft_snapshot_meta *snap,
                 const struct raft_entry *entries, size_t n_entries,
                 raft_index applied);

/* After raft_restore, before the first ready: the host has lost its state
 * machine and cannot rebuild it from a snapshot of its own (its database
 * and its snapshot data were both damaged), while its log and hard state
 * are intact. Until a leader's snapshot at or after the restored snapshot's
 * index is installed: nothing is handed out to apply, the node never
 * campaigns (a leader must serve and send snapshots), and it asks every
 * leader it hears from for its snapshot (RAFT_MSG_SNAPSHOT_WANTED). It still
 * votes and acknowledges appends: those depend on the log, which it has.
 * Installing a committed snapshot keeps the log after it when they agree
 * (§5.3), so no entry this node acknowledged is dropped unless it conflicts
 * with a committed one. RAFT_EINVAL if a ready was already taken. */
int raft_want_snapshot(struct raft *r);
bool raft_wants_snapshot(const struct raft *r);

/* ---- Inputs ---------------------------------------------------------------- */

/* One clock tick. The host decides how long a tick is. */
void raft_tick(struct raft *r);

/* A message from a peer (already decoded and authenticated). Messages not
 * addressed to this node, from non-members where that matters, or malformed
 * in meaning (e.g. entries not contiguous) are dropped and counted. */
int raft_step(struct raft *r, const struct raft_message *m);

/* Leader only: appends a command. On success *index (if not NULL) is the
 * entry's index and *term its term; the command is committed once an entry
 * with that index and term appears in committed. RAFT_ENOTLEADER on a non-leader,
 * RAFT_EBUSY during a leadership transfer. */
int raft_propose(struct raft *r, const uint8_t *data, size_t len,
                 raft_index *index, raft_term *term);

/* Linearizable read (§6.4): requests a read index for `context`. The answer
 * arrives later in ready.reads. On a follower the request is forwarded to the
 * leader. RAFT_ENOLEADER if no leader is known. A context must not repeat,
 * also across restarts of the node: the leader's answer to the previous
 * process's request may arrive after a restart, from the same leader in the
 * same term, and is told apart only by its context. */
int raft_read_index(struct raft *r, uint64_t context);

/* Leader only: hand leadership to `to` (§3.10). Proposals get RAFT_EBUSY until
 * the transfer completes or is abandoned after an election timeout. */
int raft_transfer_leader(struct raft *r, raft_id to);

enum raft_change {
    RAFT_ADD_LEARNER = 1,   /* new member that never votes */
    RAFT_ADD_VOTER = 2,     /* new member: learner first, promoted once caught up */
    RAFT_PROMOTE = 3,       /* learner -> voter now */
    RAFT_REMOVE = 4,        /* a leader that removes itself steps down once committed */
};

/* Leader only: single-server membership change (§4.1). One change at a time:
 * RAFT_EBUSY while the previous configuration entry is not committed. */
int raft_change_member(struct raft *r, enum raft_change change, raft_id id,
                       raft_index *index);

/* The host saved a snapshot of the state machine at `index` (<= applied),
 * `size` bytes with CRC32C `crc`. The core compacts its log (keeping
 * trailing_entries) and sends this snapshot to followers too far behind. */
int raft_snapshot_taken(struct raft *r, raft_index index, uint64_t size, uint32_t crc);

/* ---- Ready -------------------------------------------------------------- */

bool raft_has_ready(const struct raft *r);
/* Fills rd (see THE READY CONTRACT). RAFT_EBUSY if the previous ready was not
 * advanced yet. */
int raft_ready(struct raft *r, struct raft_ready *rd);
/* The host has done everything in rd. Frees what rd pointed to. */
void raft_advance(struct raft *r, struct raft_ready *rd);

/*
 * ASYNCHRONOUS PERSISTENCE (raft_options.async_persist)
 *
 * The contract above makes a node wait for each fsync before it may take
 * the next ready. With async_persist the host may instead call raft_advance
 * as soon as it has taken its own copy of what rd asks it to persist and of
 * send_after_persist, and sent send_now; the write runs in the background
 * while later readies are taken (etcd-io/raft's AsyncStorageWrites). The
 * host must then:
 *   - perform the writes of successive readies in the order the readies were
 *     taken (one queue), and send each ready's send_after_persist only once
 *     its write, and so every earlier one, is durable;
 *   - once the writes of a ready (entries, truncation, hard state) are
 *     durable, call raft_persisted with its seq, or with the seq of a later
 *     ready whose writes are durable too (one call may cover many readies,
 *     as when the host merges them into one fsync); a ready with nothing to
 *     write needs no report;
 *   - treat a ready with snapshot_chunk or snapshot_install as before: wait
 *     for its write (after all earlier ones), restore the state machine,
 *     apply, then raft_advance.
 * In return rd.committed holds only entries the host has reported durable,
 * so the state machine never gets ahead of the log; the leader counts
 * itself towards a quorum only for what raft_persisted reported; and a new
 * leader sends nothing (appends, heartbeats) until the hard state holding
 * its term is reported durable, so that a crash cannot bring it back in an
 * older term to lead the same term twice with different entries. Reports
 * are by ready, not by entry: after a truncation the same (index, term) may
 * be written again, and only the ready numbers tell which write landed.
 */
/* The writes of every ready up to number seq are durable. RAFT_EINVAL
 * without async_persist or for a ready not yet taken. */
int raft_persisted(struct raft *r, uint64_t seq);

/* ---- Introspection (read-only; for the host, status pages and tests) ----- */

raft_id raft_self(const struct raft *r);
enum raft_role raft_role(const struct raft *r);
raft_id raft_leader(const struct raft *r);
raft_term raft_current_term(const struct raft *r);
raft_id raft_voted_for(const struct raft *r);
raft_index raft_commit_index(const struct raft *r);
raft_index raft_applied_index(const struct raft *r);
raft_index raft_last_index(const struct raft *r);
raft_index raft_first_index(const struct raft *r);   /* first entry kept in memory */
raft_term raft_term_at(const struct raft *r, raft_index index); /* 0 if unknown */
/* The entry at index, or NULL if not in memory. Valid until the next input. */
const struct raft_entry *raft_entry_at(const struct raft *r, raft_index index);
const struct raft_config *raft_configuration(const struct raft *r);
/* The configuration in force at index (the latest one at or before it), as
 * a snapshot taken at index must record it (§5.1). RAFT_ENOTFOUND if that
 * part of the history was compacted away. */
int raft_config_at(const struct raft *r, raft_index index, struct raft_config *out);
const struct raft_snapshot_meta *raft_snapshot(const struct raft *r); /* NULL if none */
raft_id raft_transfer_target(const struct raft *r); /* 0 if none */

/* Leader's view of a follower's replication progress. */
enum raft_progress_state { RAFT_PROGRESS_PROBE = 1, RAFT_PROGRESS_REPLICATE = 2, RAFT_PROGRESS_SNAPSHOT = 3 };
struct raft_progress {
    raft_id id;
    raft_index match;
    raft_index next;
    uint8_t state;          /* enum raft_progress_state */
    bool recent_active;
};
/* Fills up to cap entries; returns the number of members (leader only, else 0). */
size_t raft_progress(const struct raft *r, struct raft_progress *out, size_t cap);

/* Counters for metrics. */
struct raft_stats {
    uint64_t msgs_dropped;      /* stale, misaddressed or meaningless messages */
    uint64_t elections_started;
    uint64_t snapshots_sent;
    uint64_t snapshots_installed;
    uint64_t checksum_failures; /* snapshots whose CRC did not verify */
    uint64_t campaigns_refused; /* elections not started: our term is RAFT_MAX_TERM */
};
const struct raft_stats *raft_stats(const struct raft *r);

#endif
