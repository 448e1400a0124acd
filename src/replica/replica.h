/*
 * replica.h — the replica driver: everything between the pure Raft core
 * (include/raft.h) and a host's threads, files, sockets and clock.
 *
 * The driver owns the ready loop (THE READY CONTRACT of raft.h, with
 * async_persist: a ready's writes are merged into the next write batch and
 * the ready is applied and advanced at once), the write pipeline (one
 * storage job at a time: a merged write batch, a ready with snapshot data,
 * or a snapshot adoption), the waiters (proposals and reads waiting for an
 * index, read-index batches, deadlines), applying committed entries to the
 * state machine and grouping its commits, taking snapshots, and the states
 * of the disks (full: writes refused and retried; fatal).
 *
 * It has no clock, thread, file or socket of its own. The host supplies
 * them through struct replica_io, and the state machine through struct
 * replica_sm; every job the host runs is reported back with a call into the
 * driver (replica_write_done, replica_snapshot_done, replica_adopt_done), so
 * the host may run jobs on worker threads (src/node) or in virtual time
 * (tests/sim). All calls into the driver come from one thread. The contract
 * is written out in docs/replica.md.
 */
#ifndef LINKRAFT_REPLICA_H
#define LINKRAFT_REPLICA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.h"

struct replica;

/* Outcomes of proposals and reads (include/node.h has the same numbers). */
enum replica_outcome {
    REPLICA_OK = 0,
    REPLICA_ENOTLEADER = 1,
    REPLICA_ELOST = 2,
    REPLICA_ETIMEOUT = 3,
    REPLICA_EDISKFULL = 4,
    REPLICA_ESTOPPING = 5,
    REPLICA_ETOOBIG = 6,
};

/* How a job the host ran ended. */
enum replica_job_status {
    REPLICA_JOB_OK = 0,
    REPLICA_JOB_FULL,    /* no space (or memory): nothing is lost, the driver retries */
    REPLICA_JOB_FAILED,  /* transient (snapshot copy, adoption): skipped, tried again later */
    REPLICA_JOB_FATAL,   /* not to be survived: the driver calls io.fatal with the error */
};

/* One storage job: the log part in the ready contract's order (truncate,
 * entries, hard state, one fsync, then compaction) and, for a ready with
 * snapshot data, the chunk to write and the snapshot to install first. */
struct replica_write {
    raft_index truncate_from;          /* 0: none */
    bool retry;                        /* a retry after a full disk: drop the log from
                                        * entries[0].index first (what the failed try left) */
    const struct raft_entry *entries;
    size_t n_entries;
    const struct raft_hard_state *hs;  /* NULL: unchanged */
    raft_index compact_before;         /* 0: none; after the fsync */
    const struct raft_snapshot_chunk *chunk;     /* NULL: none */
    const struct raft_snapshot_meta *install;    /* NULL: none */
};

enum replica_timer { REPLICA_TIMER_COMMIT, REPLICA_TIMER_RETRY, REPLICA_TIMERS };
enum replica_log_level { REPLICA_LOG_INFO, REPLICA_LOG_WARN, REPLICA_LOG_ERROR };

/* What the host does for the driver. Everything is called from the driver's
 * thread; the jobs may run elsewhere and report back later. */
struct replica_io {
    void *ctx;
    uint64_t (*now)(void *ctx);        /* milliseconds, monotonic */
    /* Messages to put on the wire now. A snapshot chunk may name bytes
     * (len, no data) that the host reads from its snapshot (raft.h). */
    void (*send)(void *ctx, const struct raft_message *msgs, size_t n);
    /* Starts the one storage job; the host calls replica_write_done when it
     * is durable. w and everything it points to stay valid until then. */
    void (*write)(void *ctx, const struct replica_write *w);
    /* Starts copying the state machine's committed state into a snapshot
     * (replica_snapshot_done with what the copy holds). */
    void (*snapshot)(void *ctx);
    /* Starts keeping the copy as the node's snapshot, as a storage job
     * (replica_adopt_done). meta has the index, term, configuration, size
     * and CRC32C. */
    void (*adopt)(void *ctx, const struct raft_snapshot_meta *meta);
    /* One-shot timers: replica_timer_fired(which) after ms; cancel stops it. */
    void (*arm)(void *ctx, enum replica_timer which, uint64_t ms);
    void (*cancel)(void *ctx, enum replica_timer which);
    void (*log)(void *ctx, enum replica_log_level level, const char *msg);
    /* A fault not to be survived (a failed fsync, a failed apply). The host
     * stops (the node exits); if it returns, the driver does nothing more. */
    void (*fatal)(void *ctx, const char *what, const char *detail);
    /* The stop asked with replica_stop can complete: nothing is in flight. */
    void (*stopped)(void *ctx);
};

/* Status of a state machine call. */
enum replica_sm_status { REPLICA_SM_OK = 0, REPLICA_SM_FULL, REPLICA_SM_FAILED };

/* The state machine: applies committed entries in one open transaction that
 * commit makes durable. It may lose what it applied since its last commit
 * (a crash, a failed commit, which rolls back to the last commit): the
 * driver applies it again from the log. */
struct replica_sm {
    void *ctx;
    size_t result_size;                /* bytes of one apply result */
    raft_index (*applied)(void *ctx);  /* last index applied (committed or not) */
    raft_index (*committed)(void *ctx);/* last index committed */
    /* Applies e[0..n) (e[0].index == applied + 1), writing one result of
     * result_size bytes per entry into results (may be NULL). FULL or FAILED
     * roll back to the last commit. */
    enum replica_sm_status (*apply)(void *ctx, const struct raft_entry *e, size_t n, void *results);
    enum replica_sm_status (*commit)(void *ctx);
    /* Replaces the state with the node's current snapshot (its index is
     * then `applied`). */
    enum replica_sm_status (*restore)(void *ctx, const struct raft_snapshot_meta *meta, char *err, size_t errcap);
    /* Whether a background job still reads the state machine's files
     * (a snapshot copy or a checkpoint): a restore waits for it, and the
     * host calls replica_sm_idle once it is over. May be NULL. */
    bool (*busy)(void *ctx);
    const char *(*errmsg)(void *ctx);
};

struct replica_options {
    uint64_t write_timeout_ms;         /* a proposal not applied by then: ETIMEOUT; default 5000 */
    uint64_t snapshot_entries;         /* snapshot about every N applied entries (+-25%); 0: never */
    uint64_t commit_every_ms;          /* commit the state machine this often; default 250 */
    uint64_t commit_every_entries;     /* or after this many applied entries; default 2048 */
    uint64_t retry_ms;                 /* full disk: retry after; default 1000 */
    size_t apply_batch;                /* entries per apply call; default 8192 */
    uint64_t seed;                     /* draws the snapshot gaps and the first read-index
                                        * context; must differ at every start of the node
                                        * (an answer to the previous process's read may
                                        * still arrive: raft_read_index) */
    bool sync_persist;                 /* the core runs without async_persist: every ready is
                                        * written before it is applied and advanced (the plain
                                        * ready contract; the simulator mixes both) */
    bool lost_tail;                    /* storage cut the log's last record at start (torn, or
                                        * damaged after it was synced: it cannot tell), now or at
                                        * an earlier start (the host's marker): acknowledged
                                        * entries may be gone. With three voters or more, the node
                                        * neither votes nor campaigns until its disk holds an entry
                                        * of a term after lost_tail_term (docs/replica.md) */
    raft_term lost_tail_term;          /* the hard state's term at the start that cut it, which the
                                        * host keeps in its marker; 0: the current term */
};
void replica_options_default(struct replica_options *o);

/* The driver of the core r (created and restored or bootstrapped by the
 * host; the driver destroys it). io and sm are copied. NULL: no memory. */
struct replica *replica_create(const struct replica_options *o, struct raft *r, const struct replica_io *io,
                               const struct replica_sm *sm);
void replica_destroy(struct replica *d);

/* Takes and handles every ready the core has. The host calls it after
 * anything it fed the core (replica_step and replica_tick do). */
void replica_pump(struct replica *d);
void replica_tick(struct replica *d);
void replica_step(struct replica *d, const struct raft_message *m);

/* Completions of the jobs the driver started through io. */
void replica_write_done(struct replica *d, enum replica_job_status st, const char *err);
void replica_snapshot_done(struct replica *d, enum replica_job_status st, raft_index index, uint64_t size,
                           uint32_t crc, const char *err);
void replica_adopt_done(struct replica *d, enum replica_job_status st, const char *err);
void replica_timer_fired(struct replica *d, enum replica_timer which);
/* A background job of the state machine (sm.busy) is over. */
void replica_sm_idle(struct replica *d);
/* Commits the state machine's open transaction now, for a copy of its
 * files that must hold everything applied (a backup). False if it could
 * not (a full disk: retried as usual; or the driver is dead). */
bool replica_sm_commit(struct replica *d);

/* ---- Clients --------------------------------------------------------------- */

/* Called once with the outcome. On REPLICA_OK, index is the entry's index
 * (applied here) and result its state machine result (NULL if unknown). */
typedef void (*replica_write_cb)(void *arg, int status, raft_index index, const void *result);
typedef void (*replica_read_cb)(void *arg, int status);

void replica_propose(struct replica *d, const uint8_t *data, size_t len, replica_write_cb cb, void *arg);
/* cb once the entry this leader appended at (index, term) by other means
 * (a configuration change) is applied; same outcomes as replica_propose. */
void replica_wait_entry(struct replica *d, raft_index index, raft_term term, replica_write_cb cb, void *arg);

enum replica_consistency { REPLICA_READ_STALE = 0, REPLICA_READ_SESSION = 1, REPLICA_READ_LINEARIZABLE = 2 };
/* STALE calls back at once; SESSION once applied >= min_index;
 * LINEARIZABLE once applied reaches a read index from the leader (§6.4). */
void replica_read(struct replica *d, enum replica_consistency c, raft_index min_index, uint64_t timeout_ms,
                  replica_read_cb cb, void *arg);

/* ---- Stopping ---------------------------------------------------------------- */

/* Refuses new proposals; a leader hands leadership to the most caught-up
 * voter. io.stopped is called once nothing is in flight (and the handover
 * is done). */
void replica_stop(struct replica *d);
/* Whether a storage job runs (a stop must wait for it). */
bool replica_job_running(const struct replica *d);
/* Fails every waiter with ESTOPPING; nothing more is started. */
void replica_close(struct replica *d);

/* ---- Status ---------------------------------------------------------------- */

enum replica_disk_state {
    REPLICA_DISK_OK,       /* writes taken */
    REPLICA_DISK_FULL,     /* a log write or the state machine hit a full disk: writes refused, retrying */
};

enum replica_state {
    REPLICA_RUNNING,
    REPLICA_STOPPING,      /* replica_stop: handing over, then waiting for the disk */
    REPLICA_CLOSED,        /* replica_close: nothing more is started */
    REPLICA_FAILED,        /* io.fatal was called */
};

struct replica_status {
    enum replica_state state;
    enum replica_disk_state disk;
    enum raft_role role;
    raft_id leader;
    raft_term term;
    raft_index commit, applied, last, committed_sm;
};
void replica_get_status(const struct replica *d, struct replica_status *s);
bool replica_disk_full(const struct replica *d);
bool replica_stopping(const struct replica *d);   /* STOPPING or later */
raft_index replica_applied(const struct replica *d);
/* The core, for what the status above does not cover (configuration,
 * progress, statistics) and for membership and bootstrap calls by the host. */
struct raft *replica_raft(const struct replica *d);
/* Whether the node still holds back its votes after a cut tail
 * (replica_options.lost_tail); false once it is whole again. The host
 * keeps that it is (a marker on disk, with lost_tail_term) until then,
 * across restarts. */
bool replica_lost_tail(struct replica *d);
/* Whether a snapshot install waits for the state machine's background job. */
bool replica_restore_waiting(const struct replica *d);

#endif
