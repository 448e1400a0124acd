/*
 * sim.h — the deterministic simulator of the Raft core (docs/simulator.md).
 *
 * One run ("seed") is one process-local world: up to SIM_MAX_NODES nodes,
 * each the shipped replica driver (src/replica) and pure core (src/raft)
 * over a simulated host (host.c): a simulated disk (disk.c), a network that
 * loses, delays, reorders, duplicates and partitions messages encoded with
 * the real codec (net.c), and a persistent KV state machine (kv.c, host.c);
 * clients (kv.c) go through the driver's waiters, and invariants are
 * checked after every event (check.c). cluster.c runs the event loop and
 * the faults; sim.c is main: the command line and the seed loop.
 *
 * Everything a run touches hangs off its struct sim: there is no global
 * mutable state, so seeds run in parallel threads. Every random choice comes
 * from the run's one PRNG (sim_rand), seeded from the seed alone, and time is
 * virtual (microseconds), so a seed replays exactly.
 */
#ifndef LINKRAFT_SIM_H
#define LINKRAFT_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "raft.h"
#include "replica/replica.h"

#define SIM_MAX_NODES 8        /* node slots; id = slot + 1; ids are never reused */
#define SIM_NKEYS 6            /* KV registers */
/* The values a node repairing from peers holds until a leader's snapshot
 * replaces them (no client ever writes one: values are (client+1)<<40 | op). */
#define SIM_POISON 0xBAD0000000000000ull
#define SIM_IS_POISON(v) (((v) >> 48) == (SIM_POISON >> 48))
#define SIM_MAX_CLIENTS 6
#define SIM_TICK_US 10000      /* one raft tick = 10 ms of virtual time */

/* ---- PRNG (one per run) --------------------------------------------------- */
uint64_t sim_rand(uint64_t *state);
/* Uniform in [lo, hi] (inclusive). */
uint64_t sim_range(uint64_t *state, uint64_t lo, uint64_t hi);
/* True with probability per_mille / 1000. */
bool sim_chance(uint64_t *state, unsigned per_mille);

/* ---- Growable byte buffer -------------------------------------------------- */
struct sim_bytes {
    uint8_t *p;
    size_t n, cap;
};
void sim_bytes_put(struct sim_bytes *b, const void *data, size_t len);
void sim_bytes_free(struct sim_bytes *b);

/* ---- Disk (disk.c) --------------------------------------------------------- */

/* What survives a crash: the durable state a restart reloads. */
struct sim_snapshot {
    bool have;
    struct raft_snapshot_meta meta;
    uint8_t *data;             /* meta.size bytes, owned */
};

struct sim_disk {
    bool have_hs;
    struct raft_hard_state hs;
    struct raft_entry *log;    /* durable log, ascending contiguous; data owned */
    uint32_t *log_crc;         /* log_crc[k]: the CRC32C its record was written with (log[k]) */
    size_t n_log, cap_log;
    bool hs_rotten;            /* the hard state's record no longer checks */
    bool lost_tail;            /* the node's marker (node.c: DIR/lost-tail): votes held back until whole */
    raft_term lost_tail_term;  /* in the marker: the hard state's term at the start that cut the tail */
    struct sim_snapshot snap;  /* the node's snapshot (own or installed) */
    struct sim_snapshot prev;  /* its previous own snapshot, if keep_prev: a transfer of it may go on */
    bool keep_prev;
    struct sim_snapshot partial; /* a received snapshot being assembled */
    uint64_t partial_len;      /* bytes of partial.data written so far */
    /* Batches written but not yet fsynced, oldest first: encoded records with
     * CRCs, exactly what a crash may leave torn on the platter. A host that
     * follows the plain ready contract has at most one; an async_persist
     * host queues one per ready and syncs them in order. */
    struct sim_bytes *pending;
    size_t n_pending, cap_pending;
    uint64_t records_written, batches_synced, torn_writes, batches_lost;
    raft_index changed_from;   /* lowest log index the last synced batch truncated or wrote; 0 none */
};

/* Encodes everything rd asks to persist as one batch at the end of
 * d->pending. Returns false if the batch is empty (nothing to fsync). */
bool sim_disk_write(struct sim_disk *d, const struct raft_ready *rd);
/* The fsync of the oldest pending batch completed: it becomes durable. Returns 0, or -1
 * with a message in err if the batch does not fit what is on disk (a core or
 * host bug: e.g. non-contiguous entries). */
int sim_disk_sync(struct sim_disk *d, char *err, size_t cap);
/* Power loss: each pending batch, oldest first, is lost, torn (a random
 * prefix of its bytes survives, possibly with garbage after it) or, having
 * reached the platter before the fsync returned, kept whole; after the first
 * one not kept whole the rest are lost (recovery stops at the first bad
 * record of a sequential log). Recovery replays only whole batches whose
 * every record checksums. Returns what happened, for the trace. */
const char *sim_disk_crash(struct sim_disk *d, uint64_t *rng);
/* Drops durable log entries below index (covered by the durable snapshot). */
void sim_disk_compact(struct sim_disk *d, raft_index before);
/* Makes (meta, data) the node's durable snapshot at once, as a host does by
 * writing the file, fsyncing and renaming it. The simulator calls it right
 * after raft_snapshot_taken (which supplies the term and configuration),
 * before any other input, so the core never refers to a snapshot the disk
 * lacks. The log is kept until compact_before says it may go. data is copied. */
void sim_disk_save_snapshot(struct sim_disk *d, const struct raft_snapshot_meta *meta,
                            const uint8_t *data);
void sim_disk_free(struct sim_disk *d);
bool sim_disk_empty(const struct sim_disk *d);

/* Bit rot of data already synced, as a bad sector the drive does not
 * report: a bit of the durable record named flips while the node is down. */
enum sim_rot { ROT_ENTRY, ROT_LAST_ENTRY, ROT_SNAPSHOT, ROT_HARD_STATE };
/* Returns false if the disk holds nothing of that kind to damage. */
bool sim_disk_rot(struct sim_disk *d, enum sim_rot what, uint64_t *rng);
/* What a restart's checks of the disk found (storage_open: every record's
 * checksum). */
struct sim_disk_check {
    bool refuse;               /* a record before the log's end, or the hard state, does not check */
    bool tail_cut;             /* the last entry did not check: dropped as a torn write would be */
    raft_index cut_index;
    bool snapshot_damaged;     /* the snapshot's data fails its CRC (its metadata is intact) */
    char why[160];
};
/* Checks every durable record as storage_open does at a start, and cuts a
 * damaged last entry as it does (a torn write cannot be told from a bad
 * last sector). Changes nothing else. */
void sim_disk_check(struct sim_disk *d, struct sim_disk_check *out);

/* ---- KV state machine and clients (kv.c) ----------------------------------- */

struct sim_kv {
    uint64_t v[SIM_NKEYS];
};
#define SIM_CMD_BYTES 20       /* u32 key | u64 value | u64 op id */
void sim_cmd_encode(uint8_t out[SIM_CMD_BYTES], uint32_t key, uint64_t value, uint64_t op);
/* Returns false for a malformed command (wrong length or key). */
bool sim_cmd_decode(const uint8_t *p, size_t len, uint32_t *key, uint64_t *value, uint64_t *op);
/* Snapshot bytes: u64 index | SIM_NKEYS x u64 | padding to make chunking real. */
size_t sim_kv_snapshot_size(void);
void sim_kv_serialize(const struct sim_kv *kv, raft_index index, uint8_t *out);
/* Returns false if the bytes are not a snapshot of index. */
bool sim_kv_restore(struct sim_kv *kv, raft_index index, const uint8_t *p, size_t len);
uint64_t sim_kv_digest(const struct sim_kv *kv);

enum sim_client_state { CL_IDLE, CL_RETRY, CL_PUT_WAIT, CL_GET_WAIT, CL_DONE };

struct sim_client {
    int id;
    enum sim_client_state st;
    uint8_t kind;            /* LIN_PUT or LIN_GET */
    uint32_t key;
    uint64_t value;          /* PUT: value written */
    uint64_t op_id;          /* unique id of this op; also the read context */
    uint64_t call;           /* invocation time */
    uint64_t deadline;       /* gives up (outcome unknown) at this time */
    uint64_t attempt;        /* bumps on every attempt: stale events ignore */
    int node;                /* slot the attempt went to */
    uint32_t incarnation;    /* of that node */
    raft_index index;        /* PUT: where the entry went; GET: read index */
    raft_term term;
    int leader_guess;        /* slot, -1 unknown */
    bool leader_only;        /* GET: only the leader may serve it */
    raft_index read_floor;   /* GET: highest index known committed when requested */
    uint64_t seq;
};

/* ---- Nodes and the run (cluster.c) ------------------------------------------ */

struct sim_node {
    int slot;
    raft_id id;
    bool used;               /* ever started (ids are not reused) */
    bool alive;
    bool initial;            /* bootstrapped member of the first configuration */
    bool retired;            /* removed from the cluster and shut down for good */
    uint64_t tick_us;        /* this node's clock: how long its tick lasts */
    uint64_t paused_until;   /* a paused process (SIGSTOP, GC, VM migration) does nothing until then */
    uint32_t incarnation;    /* bumps at every crash: stale events are ignored */
    struct sim *s;
    struct replica *d;       /* the shipped replica driver (src/replica) over this host (host.c) */
    struct raft *r;          /* its core (owned by d) */
    bool sync;               /* this incarnation runs the plain ready contract, not async_persist */
    struct sim_disk disk;
    /* The host's one storage job (host.c), as the node's worker thread. */
    bool job_busy;
    bool job_adopt;          /* a snapshot adoption, not a write */
    bool job_batch;          /* the write left a batch in disk.pending */
    raft_index job_compact;
    raft_index job_trace_last;
    struct raft_snapshot_meta adopt_meta;
    uint8_t snap_buf[256];   /* the state machine's copy for a snapshot (the node's temporary file) */
    raft_index snap_index;
    uint32_t timer_gen[REPLICA_TIMERS]; /* arming or cancelling a timer voids its earlier events */
    /* The state machine: applied (kv, applied) and, as SQLite with group
     * commit, what its last commit kept (kv_durable, durable_applied): the
     * only part a crash leaves. */
    struct sim_kv kv;
    raft_index applied;
    struct sim_kv kv_durable;
    raft_index durable_applied;
    uint64_t crashed_at, restarts;
    raft_term led_term;      /* last term this node was seen leading (fault scheduling) */
    uint64_t clock_paused_until; /* its clock stands still (ticks stop) until then; the process runs */
    bool sm_rotten;          /* its state machine's file was damaged while it was down */
    bool sm_poison;          /* repairing from peers: kv is poison (in memory only) until a snapshot is restored */
    bool wiped;              /* its disk and state machine were lost: it never starts as itself again */
    bool repairing;          /* repairing from peers: refuses reads until a leader's snapshot is
                              * installed (node_read's NODE_EREPAIRING, src/node/node.c) */
    raft_index hazard_floor; /* after a disk fault: committed index it must reach to count as whole */
    raft_term max_hs_term;   /* ghost: the highest term its disk ever held (identity check) */

    /* Checker state. */
    enum raft_role last_role;
    raft_term last_term;
    raft_index commit_seen;
    raft_id *votes;          /* votes[t]: who we granted our vote in term t */
    size_t cap_votes;
};

struct sim_params {
    int n_nodes;
    unsigned loss_pm, dup_pm, corrupt_pm, long_delay_pm;
    unsigned new_leader_crash_pm;   /* chance a newly elected leader crashes within 40 ms */
    uint64_t lat_min, lat_max;      /* network latency, us */
    uint64_t fsync_min, fsync_max;  /* disk latency, us */
    uint64_t fault_min, fault_max;  /* gap between faults, us */
    uint64_t fault_end;             /* faults stop here */
    uint64_t liveness_deadline;     /* after fault_end */
    raft_index snap_every;          /* host snapshots after about this many applies */
    uint64_t commit_every_ms;       /* the state machine's group commit (replica_options) */
    uint64_t commit_every_entries;
    unsigned async_pm;              /* chance a node (re)starts with async_persist */
    bool keep_prev_snap;            /* hosts keep their previous snapshot to finish transfers of it */
    unsigned snap_rot_pm;           /* chance a snapshot chunk is read back with a flipped bit */
    unsigned stall_pm;              /* chance an fsync stalls for longer than an election timeout */
    bool skewed_clocks;             /* nodes' ticks last 0.8-1.25 times SIM_TICK_US */
    unsigned pause_pct;             /* share of crash faults that are long pauses instead */
    unsigned disk_fault_pm;         /* chance a fault is a wiped disk or bit rot of synced data */
    unsigned clock_pause_pm;        /* chance a fault stops a node's clock for a while */
    size_t min_voters;              /* membership faults remove voters down to this */
    struct raft_options ro;
    int n_clients;
};

struct sim_event;

struct sim {
    uint64_t seed;
    uint64_t rng;
    uint64_t now;
    bool trace;
    FILE *out;               /* trace destination */
    struct sim_params p;
    struct sim_node nodes[SIM_MAX_NODES];
    bool cut[SIM_MAX_NODES][SIM_MAX_NODES]; /* cut[a][b]: a's messages to b are lost */
    bool faults_on;
    struct sim_client clients[SIM_MAX_CLIENTS];
    uint64_t next_op_id;

    /* event queue (net.c) */
    struct sim_event *heap;
    size_t n_heap, cap_heap;
    uint64_t ev_seq;

    /* checker (check.c) */
    raft_id *leader_of_term; size_t cap_lot;
    uint64_t *leader_inc_of_term; size_t cap_lit;  /* the incarnation that led it */
    uint64_t *spoke_inc_of_term; size_t cap_sit;   /* 1 + the incarnation whose leader traffic of it left */
    raft_term *commit_seen_in; size_t cap_csi;     /* per index: a term by which it was known committed */
    struct sim_logent *logreg; size_t cap_logreg;  /* per index: (term, crc, prev term) seen */
    raft_term *committed; size_t cap_committed;    /* per index: term known committed */
    raft_index max_committed;                      /* highest index known committed */
    struct sim_applied *appliedreg; size_t cap_appliedreg;
    struct lin_op *ops; size_t n_ops, cap_ops;

    bool failed;
    char why[1024];
    bool silent;             /* a node's driver is being destroyed: its waiters answer nobody */

    /* statistics */
    uint64_t events, msgs_sent, msgs_delivered, msgs_lost, crashes, snapshots_taken,
             snapshots_installed, partitions, member_changes, transfers, elections;
    uint64_t puts_ok, gets_ok, ops_pending, lin_unknown;
    uint64_t snap_rot, stalls, pauses, one_voter;
    uint64_t wipes, rots, refusals, tail_cuts, repairs_local, repairs_from_peers, replaced, clock_pauses;

    /* Disk faults are kept within what the cluster tolerates: one node at a
     * time (hazard_slot) until it is whole again or replaced; the operator
     * replaces a node that lost its disk or refused to start (cluster.c). */
    int hazard_slot;         /* -1: none */
    int replace_slot;        /* -1: none; else the node the operator is replacing */
};

/* The operator's answer to a node that lost its disk or refuses to start:
 * `member remove` it, then add a new member in its place (a new id, started
 * empty, as `--join`). */
void sim_operator_replace(struct sim *s, struct sim_node *n);

/* Records the first violation (later ones are ignored); printf-style. */
void sim_fail(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sim_tracef(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define SIM_TRACE(s, ...) do { if ((s)->trace) sim_tracef((s), __VA_ARGS__); } while (0)

struct sim_result {
    bool ok;
    int n_nodes;
    uint64_t events, sim_us;
    uint64_t crashes, torn, snapshots_installed, member_changes, elections, ops, lin_unknown;
    uint64_t stalls, pauses, snap_rot, one_voter;
    uint64_t wipes, rots, refusals, tail_cuts, repairs_local, repairs_from_peers, replaced, clock_pauses;
    uint64_t puts, gets;
    char why[1024];
};
/* Runs one seed to the end; force_nodes 0 lets the seed choose 3 or 5. */
void sim_run(uint64_t seed, int force_nodes, bool trace, FILE *trace_out, struct sim_result *res);

/* ---- Event queue and network (net.c) --------------------------------------- */

enum sim_ev_type { EV_TICK = 1, EV_DELIVER, EV_FSYNC, EV_RESTART, EV_FAULT, EV_CLIENT, EV_FAULTS_END, EV_CRASH,
                  EV_TIMER, EV_SNAPSHOT, EV_OPERATOR };

struct sim_event {
    uint64_t at, seq;
    uint8_t type;
    int node;                /* target slot */
    uint32_t incarnation;    /* of the target when scheduled (TICK, FSYNC) */
    uint64_t arg;            /* client attempt, etc. */
    uint8_t *frame;          /* EV_DELIVER: encoded message (owned) */
    size_t frame_len;
    int from;
};

void sim_schedule(struct sim *s, struct sim_event ev);
bool sim_next_event(struct sim *s, struct sim_event *ev);
void sim_events_free(struct sim *s);
/* Encodes m (filling snapshot chunk data from the sender's snapshot) and
 * puts it on the wire through loss, duplication, delay and partitions. */
void sim_net_send(struct sim *s, struct sim_node *from, const struct raft_message *m);
/* Decodes and steps a delivered frame into its node. */
void sim_net_deliver(struct sim *s, struct sim_event *ev);
const char *sim_msg_desc(const struct raft_message *m, char *buf, size_t cap);

/* ---- Hosts (host.c): the replica driver over the simulated disk and network -- */
void sim_node_start(struct sim *s, struct sim_node *n);
void sim_node_crash(struct sim *s, struct sim_node *n, bool restart);
void sim_node_free(struct sim *s, struct sim_node *n);
void sim_node_step(struct sim *s, struct sim_node *n, const struct raft_message *m);
void sim_node_tick(struct sim *s, struct sim_node *n);
/* Lets the driver take what the core has (after a call into the core). */
void sim_node_process(struct sim *s, struct sim_node *n);
/* Completions: EV_FSYNC (the storage job), EV_SNAPSHOT (the copy), EV_TIMER. */
void sim_node_job_done(struct sim *s, struct sim_node *n);
void sim_node_snapshot_done(struct sim *s, struct sim_node *n);
void sim_node_timer(struct sim *s, struct sim_node *n, uint64_t arg);

/* ---- Checks (check.c) ------------------------------------------------------- */
void check_after_event(struct sim *s);
/* Entries n made durable or sent (log matching registry); prev0 is the
 * term of the entry before the first (0: unknown). Entries a crash lost
 * before anyone saw them are not registered: a one-voter leader may lead
 * a term again after such a crash, invisibly. */
void check_new_entries(struct sim *s, struct sim_node *n, const struct raft_entry *e, size_t count,
                       raft_term prev0);
/* n applies e (index must follow n->applied); digest is the kv digest after it. */
void check_apply(struct sim *s, struct sim_node *n, const struct raft_entry *e, uint64_t digest);
/* n installs a snapshot at meta; digest of the restored kv. */
void check_install(struct sim *s, struct sim_node *n, const struct raft_snapshot_meta *meta, uint64_t digest);
/* A message is leaving n for the wire (after any fsync it depends on). */
void check_send(struct sim *s, struct sim_node *n, const struct raft_message *m);
/* After a batch of n's became durable: log matching for what it wrote, and
 * entries n applied are still on its disk with the same term (never
 * truncated or overwritten). */
void check_disk_synced(struct sim *s, struct sim_node *n);
/* n has just crashed (its disk already as the crash left it; term: the
 * core's term at the crash). A reign of n's in this incarnation whose term
 * its disk does not hold vanished without a trace: the per-term election
 * check forgets it, so another node may lead that term. */
void check_crash(struct sim *s, struct sim_node *n, raft_term term);
/* Term/role before and after one input to n. kind: "tick" or a message. */
void check_term_change(struct sim *s, struct sim_node *n, raft_term t0, enum raft_role r0,
                       const struct raft_message *m);
/* A message of a term older than n's must change nothing but n's reply. */
struct sim_view {
    raft_term term, last_term;
    raft_index last, commit;
    raft_id leader;
};
void check_stale_before(const struct sim_node *n, struct sim_view *v);
void check_stale_after(struct sim *s, const struct sim_node *n, const struct sim_view *v,
                       const struct raft_message *m);
void check_free(struct sim *s);

/* ---- Clients (kv.c) ---------------------------------------------------------- */
void sim_clients_init(struct sim *s);
void sim_client_event(struct sim *s, struct sim_client *c, uint64_t attempt);
/* A node crashed: its clients' operations end (PUT: outcome unknown). */
void sim_clients_on_crash(struct sim *s, struct sim_node *n);
bool sim_clients_idle(const struct sim *s);
void sim_clients_check(struct sim *s);

#endif
