/*
 * lincheck.c — the linearizability checker behind lincheck.h. The history is
 * first split by key: a register map is linearizable iff each register's
 * sub-history is (Herlihy & Wing's locality, which Lowe 2017 exploits as
 * "P-compositionality"), so each key is searched on its own and the search
 * space is the product of small ones rather than one huge one. Per key, the
 * search is Wing & Gong 1993's: the ops' call and return events sit in one
 * time-ordered doubly linked list; an op may be linearized next iff its call
 * comes before the first return still in the list; linearizing it "lifts" its
 * two events out of the list, backtracking "unlifts" them (dancing links, so
 * both are O(1)). Lowe 2017's refinement is the memo: a configuration is the
 * set of ops linearized so far (a bitset) plus the register's value; the
 * outcome of the search from a configuration depends only on that pair, so a
 * pair seen before (and, being seen before, already shown to fail) is never
 * explored again. One more pruning is ours, for pending writes: see
 * pending_put_useful().
 */
#include "lincheck.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- output */

/* An append-only text buffer over the caller's why[]: appends past the end
 * are dropped, and a truncated text ends in "..." so nobody mistakes it for
 * the whole story. */
struct wbuf {
    char *p;
    size_t cap, len;
    int truncated;
};

static void wb_init(struct wbuf *w, char *p, size_t cap)
{
    w->p = p;
    w->cap = p ? cap : 0;
    w->len = 0;
    w->truncated = 0;
    if (w->cap)
        w->p[0] = '\0';
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void wb_printf(struct wbuf *w, const char *fmt, ...)
{
    if (w->truncated || w->cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    size_t room = w->cap - w->len;
    int k = vsnprintf(w->p + w->len, room, fmt, ap);
    va_end(ap);
    if (k < 0)
        return;
    if ((size_t)k >= room) {
        w->truncated = 1;
        w->len = w->cap - 1;
        if (w->cap >= 4)
            memcpy(w->p + w->cap - 4, "...", 4);
        return;
    }
    w->len += (size_t)k;
}

/* --------------------------------------------------------------- hashing */

/* splitmix64's finalizer: a bijective mixer, good enough to give every op
 * an independent-looking 64-bit tag. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* The memo of Lowe 2017: a hash set of (bitset of linearized ops, register
 * value). The bitset's hash is the XOR of the tags of its members, kept up to
 * date in O(1) as ops are lifted and unlifted, so a lookup costs one pass
 * over the bitset only when hashes collide.
 *
 * Entries are stored compactly because a depth-first search mostly holds
 * bitsets of the form "every op up to some point, plus a few after it": an
 * entry keeps only words [lo, hi) of the bitset, where every word before lo
 * is all ones and every word from hi on is zero. Layout in the arena, in
 * uint64_t units: value, hash, lo | hi << 32, then the hi - lo words. */
struct memo {
    uint64_t *arena;
    size_t arena_len, arena_cap;
    uint64_t *slots; /* arena offset + 1 of an entry, 0 = empty */
    size_t nslots, count;
};

static void memo_free(struct memo *m)
{
    free(m->arena);
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static int memo_grow_slots(struct memo *m)
{
    size_t n = m->nslots ? m->nslots * 2 : 1024;
    uint64_t *s = calloc(n, sizeof *s);
    if (!s)
        return -1;
    for (size_t i = 0; i < m->nslots; i++) {
        if (!m->slots[i])
            continue;
        uint64_t h = m->arena[m->slots[i] - 1 + 1];
        size_t j = (size_t)h & (n - 1);
        while (s[j])
            j = (j + 1) & (n - 1);
        s[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = s;
    m->nslots = n;
    return 0;
}

/* memo_add inserts (bits, value) unless present. Returns 1 if it was new,
 * 0 if it was already there, -1 when out of memory. */
static int memo_add(struct memo *m, const uint64_t *bits, size_t nwords,
                    uint64_t value, uint64_t hash)
{
    if ((m->count + 1) * 2 > m->nslots && memo_grow_slots(m) < 0)
        return -1;
    size_t lo = 0, hi = nwords;
    while (lo < nwords && bits[lo] == UINT64_MAX)
        lo++;
    while (hi > lo && bits[hi - 1] == 0)
        hi--;
    uint64_t span = (uint64_t)lo | (uint64_t)hi << 32;
    size_t j = (size_t)hash & (m->nslots - 1);
    for (; m->slots[j]; j = (j + 1) & (m->nslots - 1)) {
        const uint64_t *e = m->arena + (m->slots[j] - 1);
        if (e[1] == hash && e[0] == value && e[2] == span &&
            memcmp(e + 3, bits + lo, (hi - lo) * sizeof *bits) == 0)
            return 0;
    }
    size_t need = 3 + (hi - lo);
    if (m->arena_len + need > m->arena_cap) {
        size_t cap = m->arena_cap ? m->arena_cap * 2 : 4096;
        while (cap < m->arena_len + need)
            cap *= 2;
        uint64_t *a = realloc(m->arena, cap * sizeof *a);
        if (!a)
            return -1;
        m->arena = a;
        m->arena_cap = cap;
    }
    uint64_t *e = m->arena + m->arena_len;
    e[0] = value;
    e[1] = hash;
    e[2] = span;
    memcpy(e + 3, bits + lo, (hi - lo) * sizeof *bits);
    m->slots[j] = m->arena_len + 1;
    m->arena_len += need;
    m->count++;
    return 1;
}

/* ------------------------------------------------------- one key's search */

/* An op of the caller's history, with where it came from. */
struct ref {
    const struct lin_op *op;
    size_t orig;
};

/* A node of the event list. Node 0 is the head of a circular list. */
struct node {
    uint32_t prev, next;
    uint32_t op;     /* index into the key's ops */
    uint8_t is_ret;
};

struct event {
    uint64_t time;
    uint32_t op;
    uint8_t is_ret;
};

struct frame {
    uint32_t op;
    uint64_t value; /* register value before op was linearized */
};

/* Everything the search of one key needs; arrays are indexed by the key's
 * op ids, which number completed ops first in call order, then pending ones
 * (so that pending ops, usually never linearized, sit at the end of the
 * bitset and do not break the solid run the memo compresses). */
struct keysearch {
    const struct ref *ops; /* the key's ops, in id order */
    uint32_t m, ncompleted;
    uint32_t *call_node, *ret_node; /* ret_node = 0 for pending ops */
    uint64_t *tag;
    struct node *nodes;
    uint64_t *bits;
    size_t nwords;
    struct frame *stack;
    uint32_t depth;
    uint32_t *best; /* longest linearized prefix seen (op ids) */
    uint32_t best_len, shared; /* best[0..shared) == stack[0..shared).op */
    struct memo memo;
    uint64_t steps;
};

static int cmp_event(const void *a, const void *b)
{
    const struct event *x = a, *y = b;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    /* At equal times calls come first: an op called at the instant another
     * returns overlaps it (see the timing rule in lincheck.h). */
    if (x->is_ret != y->is_ret)
        return x->is_ret < y->is_ret ? -1 : 1;
    return x->op < y->op ? -1 : x->op > y->op;
}

static void unlink_node(struct node *nd, uint32_t i)
{
    nd[nd[i].prev].next = nd[i].next;
    nd[nd[i].next].prev = nd[i].prev;
}

/* Puts back a node removed by unlink_node; valid because removals are undone
 * in exactly the reverse order (the search is depth first). */
static void relink_node(struct node *nd, uint32_t i)
{
    nd[nd[i].prev].next = i;
    nd[nd[i].next].prev = i;
}

static void lift(struct keysearch *s, uint32_t op)
{
    unlink_node(s->nodes, s->call_node[op]);
    if (s->ret_node[op])
        unlink_node(s->nodes, s->ret_node[op]);
}

static void unlift(struct keysearch *s, uint32_t op)
{
    if (s->ret_node[op])
        relink_node(s->nodes, s->ret_node[op]);
    relink_node(s->nodes, s->call_node[op]);
}

static void ks_free(struct keysearch *s)
{
    free(s->call_node);
    free(s->ret_node);
    free(s->tag);
    free(s->nodes);
    free(s->bits);
    free(s->stack);
    free(s->best);
    memo_free(&s->memo);
}

/* ks_init builds the event list for ops[0..m), which must be one key's ops
 * sorted into id order. Returns -1 when out of memory. */
static int ks_init(struct keysearch *s, const struct ref *ops, uint32_t m)
{
    memset(s, 0, sizeof *s);
    s->ops = ops;
    s->m = m;
    while (s->ncompleted < m && ops[s->ncompleted].op->ret != LIN_PENDING)
        s->ncompleted++;
    size_t nev = (size_t)m + s->ncompleted;
    s->nwords = (m + 63) / 64;
    s->call_node = calloc(m, sizeof *s->call_node);
    s->ret_node = calloc(m, sizeof *s->ret_node);
    s->tag = calloc(m, sizeof *s->tag);
    s->nodes = calloc(nev + 1, sizeof *s->nodes);
    s->bits = calloc(s->nwords ? s->nwords : 1, sizeof *s->bits);
    s->stack = calloc(m, sizeof *s->stack);
    s->best = calloc(m, sizeof *s->best);
    struct event *ev = calloc(nev, sizeof *ev);
    if (!s->call_node || !s->ret_node || !s->tag || !s->nodes || !s->bits ||
        !s->stack || !s->best || !ev) {
        free(ev);
        return -1;
    }
    size_t k = 0;
    for (uint32_t i = 0; i < m; i++) {
        s->tag[i] = mix64(i + 1);
        ev[k++] = (struct event){ .time = ops[i].op->call, .op = i, .is_ret = 0 };
        /* A pending op gets no return event: it is as if it returned at
         * infinity, after every completed op, so it never bounds what may be
         * linearized next. */
        if (i < s->ncompleted)
            ev[k++] = (struct event){ .time = ops[i].op->ret, .op = i, .is_ret = 1 };
    }
    qsort(ev, nev, sizeof *ev, cmp_event);
    for (size_t i = 0; i < nev; i++) {
        uint32_t id = (uint32_t)(i + 1);
        s->nodes[id] = (struct node){ .prev = id - 1, .next = (uint32_t)((i + 2) % (nev + 1)),
                                      .op = ev[i].op, .is_ret = ev[i].is_ret };
        if (ev[i].is_ret)
            s->ret_node[ev[i].op] = id;
        else
            s->call_node[ev[i].op] = id;
    }
    s->nodes[0] = (struct node){ .prev = (uint32_t)nev, .next = nev ? 1 : 0 };
    free(ev);
    return 0;
}

/* A pending PUT never has to be linearized, and linearizing it only matters
 * if some GET then observes its value. From any valid linearization, drop
 * each pending PUT that is not immediately followed by a GET of its value
 * (it is followed by a PUT, by the end, or its value was already there): what
 * remains is still valid. So it is enough to linearize a pending PUT when
 * the register does not already hold its value and a GET of its value can
 * be linearized right after it, that is, is among the current candidates
 * (its call precedes the first return in the list; the pending PUT has no
 * return, so lifting it does not change that window). Without this, each
 * unobserved pending PUT would double the configurations of a failing
 * search. */
static int pending_put_useful(const struct keysearch *s, uint32_t op, uint64_t value)
{
    uint64_t v = s->ops[op].op->value;
    if (v == value)
        return 0;
    for (uint32_t i = s->nodes[0].next; i != 0 && !s->nodes[i].is_ret; i = s->nodes[i].next) {
        const struct lin_op *o = s->ops[s->nodes[i].op].op;
        if (o->kind == LIN_GET && o->value == v)
            return 1;
    }
    return 0;
}

static void push_frame(struct keysearch *s, uint32_t op, uint64_t value)
{
    s->stack[s->depth++] = (struct frame){ .op = op, .value = value };
    if (s->depth > s->best_len) {
        /* Copy only what differs from the last recorded prefix: each stack
         * slot is copied at most once per push, so tracking costs O(1)
         * amortized. */
        for (uint32_t i = s->shared; i < s->depth; i++)
            s->best[i] = s->stack[i].op;
        s->best_len = s->depth;
        s->shared = s->depth;
    }
}

/* The search of Wing & Gong 1993, with the memo of Lowe 2017. Returns
 * LIN_OK, LIN_VIOLATION, or LIN_UNKNOWN (budget exhausted; s->steps >
 * max_steps) or -1 when out of memory. */
static int ks_search(struct keysearch *s, uint64_t max_steps)
{
    struct node *nd = s->nodes;
    uint64_t value = 0;    /* the register, starting absent */
    uint64_t bits_hash = 0; /* XOR of the tags of the linearized ops */
    uint32_t done = 0;     /* completed ops linearized */
    uint32_t cur = nd[0].next;
    for (;;) {
        if (done == s->ncompleted)
            return LIN_OK;
        if (max_steps && ++s->steps > max_steps)
            return LIN_UNKNOWN;
        /* While completed ops remain, their returns are in the list, so the
         * walk from the head meets a return before wrapping around. */
        if (cur != 0 && !nd[cur].is_ret) {
            uint32_t op = nd[cur].op;
            const struct lin_op *o = s->ops[op].op;
            int legal;
            uint64_t next_value = value;
            if (o->kind == LIN_PUT) {
                legal = op < s->ncompleted || pending_put_useful(s, op, value);
                next_value = o->value;
            } else {
                legal = o->value == value;
            }
            if (legal) {
                s->bits[op / 64] |= 1ULL << (op % 64);
                uint64_t h = bits_hash ^ s->tag[op];
                int r = memo_add(&s->memo, s->bits, s->nwords, next_value,
                                 h ^ mix64(next_value ^ 0x5bd1e995ULL));
                if (r < 0)
                    return -1;
                if (r > 0) {
                    push_frame(s, op, value);
                    lift(s, op);
                    value = next_value;
                    bits_hash = h;
                    if (op < s->ncompleted)
                        done++;
                    cur = nd[0].next;
                    continue;
                }
                s->bits[op / 64] &= ~(1ULL << (op % 64));
            }
            cur = nd[cur].next;
            continue;
        }
        /* The first remaining return: its op had to be linearized by now and
         * no candidate works, so undo the last choice and try the next. */
        if (s->depth == 0)
            return LIN_VIOLATION;
        struct frame f = s->stack[--s->depth];
        if (s->shared > s->depth)
            s->shared = s->depth;
        s->bits[f.op / 64] &= ~(1ULL << (f.op % 64));
        bits_hash ^= s->tag[f.op];
        value = f.value;
        if (f.op < s->ncompleted)
            done--;
        unlift(s, f.op);
        cur = nd[s->call_node[f.op]].next;
    }
}

/* ------------------------------------------------------------ explaining */

static int cmp_call_order(const void *a, const void *b)
{
    const struct ref *x = a, *y = b;
    if (x->op->call != y->op->call)
        return x->op->call < y->op->call ? -1 : 1;
    return x->orig < y->orig ? -1 : x->orig > y->orig;
}

static void explain_violation(const struct keysearch *s, uint32_t key, struct wbuf *w)
{
    uint32_t m = s->m;
    uint32_t *pos = calloc(m, sizeof *pos); /* 1-based place in the prefix, 0 = not in it */
    struct ref *order = malloc(m * sizeof *order);
    if (!pos || !order) {
        wb_printf(w, "key %" PRIu32 ": not linearizable (%" PRIu32 " ops; out of memory "
                  "writing details)\n", key, m);
        free(pos);
        free(order);
        return;
    }
    uint64_t value = 0;
    for (uint32_t i = 0; i < s->best_len; i++) {
        pos[s->best[i]] = i + 1;
        if (s->ops[s->best[i]].op->kind == LIN_PUT)
            value = s->ops[s->best[i]].op->value;
    }
    /* Ops that returned before every op outside the prefix was even called
     * are the uninteresting past; summarize them. */
    uint64_t frontier = UINT64_MAX;
    for (uint32_t i = 0; i < s->ncompleted; i++)
        if (!pos[i] && s->ops[i].op->call < frontier)
            frontier = s->ops[i].op->call;
    uint32_t hidden = 0;
    for (uint32_t i = 0; i < s->ncompleted; i++)
        if (pos[i] && s->ops[i].op->ret < frontier)
            hidden++;

    wb_printf(w, "key %" PRIu32 ": not linearizable: %" PRIu32 " ops (%" PRIu32
              " pending); the longest linearizable prefix found has %" PRIu32
              " ops and leaves the value %" PRIu64 "%s\n",
              key, m, m - s->ncompleted, s->best_len, value, value ? "" : " (absent)");
    wb_printf(w, "ops in call order (#k = k-th in that prefix, -- = not in it):\n");
    if (hidden)
        wb_printf(w, "  (%" PRIu32 " ops in the prefix that returned before time %" PRIu64
                  " not shown)\n", hidden, frontier);
    for (uint32_t i = 0; i < m; i++) {
        order[i] = s->ops[i];
        order[i].orig = i; /* reuse as the op id; ties keep id order */
    }
    qsort(order, m, sizeof *order, cmp_call_order);
    for (uint32_t k = 0; k < m; k++) {
        uint32_t i = (uint32_t)order[k].orig;
        const struct lin_op *o = order[k].op;
        if (pos[i] && i < s->ncompleted && o->ret < frontier)
            continue;
        char mark[16], ret[24];
        if (pos[i])
            snprintf(mark, sizeof mark, "#%" PRIu32, pos[i]);
        else
            snprintf(mark, sizeof mark, "--");
        if (o->ret == LIN_PENDING)
            snprintf(ret, sizeof ret, "pending");
        else
            snprintf(ret, sizeof ret, "%" PRIu64, o->ret);
        wb_printf(w, "  %-6s client %-3" PRIu32 " %s %-8" PRIu64 " call %-8" PRIu64 " ret %s\n",
                  mark, o->client, o->kind == LIN_PUT ? "put" : "get", o->value, o->call, ret);
    }
    free(pos);
    free(order);
}

/* ---------------------------------------------------------------- driver */

static int cmp_key_id_order(const void *a, const void *b)
{
    const struct ref *x = a, *y = b;
    const struct lin_op *p = x->op, *q = y->op;
    if (p->key != q->key)
        return p->key < q->key ? -1 : 1;
    int pp = p->ret == LIN_PENDING, qp = q->ret == LIN_PENDING;
    if (pp != qp)
        return pp - qp;
    if (p->call != q->call)
        return p->call < q->call ? -1 : 1;
    if (p->ret != q->ret)
        return p->ret < q->ret ? -1 : 1;
    return x->orig < y->orig ? -1 : x->orig > y->orig;
}

const char *lin_result_name(enum lin_result r)
{
    switch (r) {
    case LIN_OK: return "ok";
    case LIN_VIOLATION: return "violation";
    case LIN_UNKNOWN: return "unknown";
    }
    return "?";
}

enum lin_result lin_check(const struct lin_op *ops, size_t n, uint64_t max_steps,
                          char *why, size_t why_cap)
{
    struct wbuf w;
    wb_init(&w, why, why_cap);
    for (size_t i = 0; i < n; i++) {
        const struct lin_op *o = &ops[i];
        if (o->kind != LIN_PUT && o->kind != LIN_GET) {
            wb_printf(&w, "malformed history: op %zu (client %" PRIu32 ", key %" PRIu32
                      ") has unknown kind %u\n", i, o->client, o->key, (unsigned)o->kind);
            return LIN_VIOLATION;
        }
        if (o->ret != LIN_PENDING && o->ret < o->call) {
            wb_printf(&w, "malformed history: op %zu (client %" PRIu32 ", key %" PRIu32
                      ") returns at %" PRIu64 " before its call at %" PRIu64 "\n",
                      i, o->client, o->key, o->ret, o->call);
            return LIN_VIOLATION;
        }
    }
    if (n > UINT32_MAX / 2) {
        wb_printf(&w, "history too long (%zu ops)\n", n);
        return LIN_UNKNOWN;
    }

    /* Pending GETs observed nothing; leave them out altogether. */
    struct ref *refs = malloc((n ? n : 1) * sizeof *refs);
    if (!refs) {
        wb_printf(&w, "out of memory\n");
        return LIN_UNKNOWN;
    }
    size_t nr = 0;
    for (size_t i = 0; i < n; i++)
        if (!(ops[i].kind == LIN_GET && ops[i].ret == LIN_PENDING))
            refs[nr++] = (struct ref){ .op = &ops[i], .orig = i };
    qsort(refs, nr, sizeof *refs, cmp_key_id_order);

    enum lin_result result = LIN_OK;
    for (size_t lo = 0, hi; lo < nr; lo = hi) {
        uint32_t key = refs[lo].op->key;
        for (hi = lo; hi < nr && refs[hi].op->key == key; hi++)
            ;
        struct keysearch s;
        int r = ks_init(&s, refs + lo, (uint32_t)(hi - lo));
        if (r == 0)
            r = ks_search(&s, max_steps);
        if (r < 0) {
            ks_free(&s);
            wb_init(&w, why, why_cap);
            wb_printf(&w, "out of memory checking key %" PRIu32 "\n", key);
            result = LIN_UNKNOWN;
            break;
        }
        if (r == LIN_VIOLATION) {
            wb_init(&w, why, why_cap); /* a violation replaces an earlier "unknown" */
            explain_violation(&s, key, &w);
            ks_free(&s);
            result = LIN_VIOLATION;
            break;
        }
        if (r == LIN_UNKNOWN && result == LIN_OK) {
            wb_printf(&w, "key %" PRIu32 ": search budget of %" PRIu64 " steps exhausted "
                      "(%" PRIu32 " ops, %zu configurations visited, longest linearizable "
                      "prefix %" PRIu32 ")\n", key, max_steps, s.m, s.memo.count, s.best_len);
            result = LIN_UNKNOWN;
        }
        ks_free(&s);
    }
    free(refs);
    return result;
}
