/*
 * kv.c — the replicated KV state machine and the clients that use it.
 *
 * The state machine is SIM_NKEYS 64-bit registers; a command is
 * "PUT key value" (plus the op id, so a client recognises its own entry).
 * Its snapshot is the registers, the index they are as of, and filler bytes
 * so that snapshots split into several chunks.
 *
 * Each client runs one operation at a time, as a real one would over HTTP:
 *   PUT: replica_propose on the node it believes leads, through the
 *        shipped replica driver's waiters (src/replica): ENOTLEADER
 *        redirects it (to the leader that node names) and it retries. It is
 *        done when that node applies its entry (OK); if another entry is
 *        applied there (ELOST), it definitely failed and is retried; if the
 *        node crashes, installs a snapshot past it (ETIMEOUT), or the
 *        client's deadline passes, the outcome is unknown and the op is
 *        recorded as LIN_PENDING.
 *   GET: replica_read(LINEARIZABLE) on a node (a follower asks the leader
 *        for a read index; some GETs go to the leader only), answered once
 *        the node has applied up to the read index: the value is read from
 *        its KV then.
 * Every PUT writes a value never written before. The history (call and
 * return times in virtual time) is checked with lin_check at the end.
 */
#include <stdlib.h>
#include <string.h>

#include "../lib/lincheck.h"
#include "sim.h"

#define SNAP_FILLER 64

void sim_cmd_encode(uint8_t out[SIM_CMD_BYTES], uint32_t key, uint64_t value, uint64_t op)
{
    memcpy(out, &key, 4);
    memcpy(out + 4, &value, 8);
    memcpy(out + 12, &op, 8);
}

bool sim_cmd_decode(const uint8_t *p, size_t len, uint32_t *key, uint64_t *value, uint64_t *op)
{
    if (len != SIM_CMD_BYTES)
        return false;
    memcpy(key, p, 4);
    memcpy(value, p + 4, 8);
    memcpy(op, p + 12, 8);
    return *key < SIM_NKEYS;
}

size_t sim_kv_snapshot_size(void) { return 8 + 8 * SIM_NKEYS + SNAP_FILLER; }

void sim_kv_serialize(const struct sim_kv *kv, raft_index index, uint8_t *out)
{
    memcpy(out, &index, 8);
    memcpy(out + 8, kv->v, 8 * SIM_NKEYS);
    for (size_t i = 0; i < SNAP_FILLER; i++)
        out[8 + 8 * SIM_NKEYS + i] = (uint8_t)(index * 31 + i);
}

bool sim_kv_restore(struct sim_kv *kv, raft_index index, const uint8_t *p, size_t len)
{
    raft_index got;
    if (len != sim_kv_snapshot_size())
        return false;
    memcpy(&got, p, 8);
    if (got != index)
        return false;
    memcpy(kv->v, p + 8, 8 * SIM_NKEYS);
    return true;
}

uint64_t sim_kv_digest(const struct sim_kv *kv)
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < SIM_NKEYS; i++) {
        h ^= kv->v[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* ---- Clients ------------------------------------------------------------------ */

static void record(struct sim *s, struct sim_client *c, uint64_t value, uint64_t ret)
{
    if (s->n_ops == s->cap_ops) {
        s->cap_ops = s->cap_ops ? s->cap_ops * 2 : 256;
        s->ops = realloc(s->ops, s->cap_ops * sizeof *s->ops);
        if (!s->ops)
            abort();
    }
    s->ops[s->n_ops++] = (struct lin_op){ .client = (uint32_t)c->id, .key = c->key, .kind = c->kind,
                                          .value = value, .call = c->call, .ret = ret };
}

static void wake(struct sim *s, struct sim_client *c, uint64_t delay)
{
    c->attempt++;
    struct sim_event ev = { .at = s->now + delay, .type = EV_CLIENT, .node = c->id, .arg = c->attempt };
    sim_schedule(s, ev);
}

/* The op is over (done, failed for good, or unknown): think, then the next. */
static void finish(struct sim *s, struct sim_client *c)
{
    c->st = CL_IDLE;
    wake(s, c, sim_range(&s->rng, 0, 10000));
}

static void retry(struct sim *s, struct sim_client *c, int guess)
{
    c->st = CL_RETRY;
    c->leader_guess = guess;
    wake(s, c, sim_range(&s->rng, 2000, 30000));
}

static void give_up(struct sim *s, struct sim_client *c, const char *why)
{
    if (c->st == CL_PUT_WAIT) {
        record(s, c, c->value, LIN_PENDING);
        s->ops_pending++;
    }
    SIM_TRACE(s, "client %d gives up op %llu (%s)", c->id, (unsigned long long)c->op_id, why);
    /* Half the time it still believes that node leads (nothing said otherwise). */
    if (sim_chance(&s->rng, 500))
        c->leader_guess = -1;
    finish(s, c);
}

void sim_clients_init(struct sim *s)
{
    for (int i = 0; i < s->p.n_clients; i++) {
        struct sim_client *c = &s->clients[i];
        memset(c, 0, sizeof *c);
        c->id = i;
        c->st = CL_IDLE;
        c->leader_guess = -1;
        wake(s, c, sim_range(&s->rng, 200000, 400000));
    }
}

static int pick_node(struct sim *s, struct sim_client *c)
{
    if (c->leader_guess >= 0 && s->nodes[c->leader_guess].alive)
        return c->leader_guess;
    int alive[SIM_MAX_NODES], n = 0;
    for (int i = 0; i < SIM_MAX_NODES; i++)
        if (s->nodes[i].alive)
            alive[n++] = i;
    return n ? alive[sim_range(&s->rng, 0, (uint64_t)n - 1)] : -1;
}

/* What a client's call into a driver carries back: answers to an older
 * attempt, or from a node being destroyed, are ignored. */
struct client_wait {
    struct sim *s;
    int client;
    uint64_t attempt;
    int slot;
    uint32_t incarnation;
};

/* The client's wait, or NULL if the answer is stale (it is freed). */
static struct sim_client *answered(void *arg, struct sim_node **node)
{
    struct client_wait w = *(struct client_wait *)arg;
    free(arg);
    struct sim *s = w.s;
    struct sim_client *c = &s->clients[w.client];
    struct sim_node *n = &s->nodes[w.slot];
    if (s->silent || s->failed || c->attempt != w.attempt || !n->alive || n->incarnation != w.incarnation)
        return NULL;
    *node = n;
    return c;
}

static int guess_of(const struct sim_node *n)
{
    raft_id leader = n->alive ? raft_leader(n->r) : 0;
    return leader && leader != n->id ? (int)leader - 1 : -1;
}

static void put_answered(void *arg, int status, raft_index index, const void *result)
{
    struct sim_node *n;
    struct sim_client *c = answered(arg, &n);
    (void)result;
    if (!c)
        return;
    struct sim *s = n->s;
    switch (status) {
    case REPLICA_OK:
        record(s, c, c->value, s->now);
        s->puts_ok++;
        SIM_TRACE(s, "client %d PUT k%u=%llu done at index %llu on n%llu", c->id, c->key,
                  (unsigned long long)c->value, (unsigned long long)index, (unsigned long long)n->id);
        finish(s, c);
        break;
    case REPLICA_ELOST:
        /* Another entry holds that index for good: ours never commits. */
        SIM_TRACE(s, "client %d PUT lost its slot: retries", c->id);
        retry(s, c, -1);
        break;
    case REPLICA_ETIMEOUT:
        give_up(s, c, "its entry was covered by a snapshot before the node applied it");
        break;
    default:
        SIM_TRACE(s, "client %d PUT via n%llu: %s", c->id, (unsigned long long)n->id,
                  status == REPLICA_ENOTLEADER ? "not the leader" : "refused");
        if (c->st == CL_PUT_WAIT && status != REPLICA_ENOTLEADER)
            give_up(s, c, "refused after it was proposed");
        else
            retry(s, c, guess_of(n));
        break;
    }
}

static void get_answered(void *arg, int status)
{
    struct sim_node *n;
    struct sim_client *c = answered(arg, &n);
    if (!c)
        return;
    struct sim *s = n->s;
    if (status != REPLICA_OK) {
        SIM_TRACE(s, "client %d GET via n%llu failed (%d): retries", c->id, (unsigned long long)n->id, status);
        retry(s, c, -1);
        return;
    }
    if (n->applied < c->read_floor) {
        /* §6.4: the answer must reflect every write committed before the
         * request; a leader that lost its leadership must not answer. */
        sim_fail(s, "read index safety: n%llu answered read %llu having applied only %llu, but index %llu was "
                 "already known committed when the read was requested", (unsigned long long)n->id,
                 (unsigned long long)c->seq, (unsigned long long)n->applied, (unsigned long long)c->read_floor);
        return;
    }
    if (SIM_IS_POISON(n->kv.v[c->key])) {
        sim_fail(s, "read index safety: n%llu answered read %llu from a state machine it was repairing from peers "
                 "(not yet replaced by a leader's snapshot)", (unsigned long long)n->id, (unsigned long long)c->seq);
        return;
    }
    record(s, c, n->kv.v[c->key], s->now);
    s->gets_ok++;
    SIM_TRACE(s, "client %d GET k%u = %llu from n%llu (applied %llu)", c->id, c->key,
              (unsigned long long)n->kv.v[c->key], (unsigned long long)n->id, (unsigned long long)n->applied);
    finish(s, c);
}

static void attempt(struct sim *s, struct sim_client *c)
{
    if (s->now >= c->deadline) {
        give_up(s, c, "deadline");
        return;
    }
    int slot = pick_node(s, c);
    if (slot < 0) {
        retry(s, c, -1);
        return;
    }
    struct sim_node *n = &s->nodes[slot];
    if (s->now < n->paused_until) {
        retry(s, c, -1); /* a stopped process answers nothing */
        return;
    }
    if (c->kind == LIN_GET && n->repairing) {
        /* node_read: a node repairing from peers answers reads 503 (its
         * state machine is not verified), never from the driver. */
        SIM_TRACE(s, "client %d GET via n%llu: repairing", c->id, (unsigned long long)n->id);
        retry(s, c, -1);
        return;
    }
    if (c->kind == LIN_GET && c->leader_only && raft_role(n->r) != RAFT_LEADER) {
        retry(s, c, guess_of(n));
        return;
    }
    c->node = slot;
    c->incarnation = n->incarnation;
    c->leader_guess = slot;
    c->st = c->kind == LIN_PUT ? CL_PUT_WAIT : CL_GET_WAIT;
    /* Wake at the deadline; any earlier answer bumps attempt and voids it. */
    wake(s, c, c->deadline - s->now);
    struct client_wait *w = malloc(sizeof *w);
    if (!w)
        abort();
    *w = (struct client_wait){ s, c->id, c->attempt, slot, n->incarnation };
    if (c->kind == LIN_PUT) {
        uint8_t cmd[SIM_CMD_BYTES];
        sim_cmd_encode(cmd, c->key, c->value, c->op_id);
        SIM_TRACE(s, "client %d PUT k%u=%llu via n%llu", c->id, c->key, (unsigned long long)c->value,
                  (unsigned long long)n->id);
        replica_propose(n->d, cmd, sizeof cmd, put_answered, w);
    } else {
        c->seq = ++s->next_op_id;
        c->read_floor = s->max_committed;
        SIM_TRACE(s, "client %d GET k%u via n%llu (op %llu)", c->id, c->key, (unsigned long long)n->id,
                  (unsigned long long)c->seq);
        replica_read(n->d, REPLICA_READ_LINEARIZABLE, 0, 60000, get_answered, w);
    }
    sim_node_process(s, n);
}

void sim_client_event(struct sim *s, struct sim_client *c, uint64_t att)
{
    if (att != c->attempt)
        return;
    switch (c->st) {
    case CL_IDLE:
        if (!s->faults_on) {
            c->st = CL_DONE;
            return;
        }
        c->kind = sim_chance(&s->rng, 500) ? LIN_PUT : LIN_GET;
        c->key = (uint32_t)sim_range(&s->rng, 0, SIM_NKEYS - 1);
        c->op_id = ++s->next_op_id;
        c->value = ((uint64_t)(c->id + 1) << 40) | c->op_id;
        c->call = s->now;
        c->deadline = s->now + sim_range(&s->rng, 100000, 2000000);
        c->leader_only = c->kind == LIN_GET && sim_chance(&s->rng, 300);
        attempt(s, c);
        break;
    case CL_RETRY:
        attempt(s, c);
        break;
    case CL_PUT_WAIT:
    case CL_GET_WAIT:
        give_up(s, c, "deadline");
        break;
    case CL_DONE:
        break;
    }
}

void sim_clients_on_crash(struct sim *s, struct sim_node *n)
{
    for (int i = 0; i < s->p.n_clients; i++) {
        struct sim_client *c = &s->clients[i];
        if (c->node != n->slot)
            continue;
        if (c->st == CL_PUT_WAIT)
            give_up(s, c, "node crashed");
        else if (c->st == CL_GET_WAIT)
            retry(s, c, -1);
    }
}

bool sim_clients_idle(const struct sim *s)
{
    for (int i = 0; i < s->p.n_clients; i++)
        if (s->clients[i].st != CL_DONE && s->clients[i].st != CL_IDLE)
            return false;
    return true;
}

void sim_clients_check(struct sim *s)
{
    char why[900];
    enum lin_result r = lin_check(s->ops, s->n_ops, 2000000, why, sizeof why);
    if (r == LIN_UNKNOWN) {
        s->lin_unknown++; /* reported in the summary; not a pass in disguise */
        SIM_TRACE(s, "linearizability: undecided within the search budget: %s", why);
    }
    if (r == LIN_VIOLATION) {
        char *nl = strchr(why, '\n');
        if (nl)
            *nl = 0;
        sim_fail(s, "linearizability violated: %s", why);
        if (s->trace && nl)
            fprintf(s->out, "%s\n", nl + 1);
    }
    free(s->ops);
    s->ops = NULL;
}
