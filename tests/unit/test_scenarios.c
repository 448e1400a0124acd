/*
 * test_scenarios.c — runs the paper's scenarios written as transcripts
 * (tests/scenarios/NAME.txt, format in docs/scenarios.md) against the pure core.
 *
 * A transcript is a list of blocks: '#' comment lines, one command, a line
 * "----", and the output the command must print, up to a blank line. This
 * file is the interpreter: a tiny deterministic world of nodes, each with a
 * perfect in-memory disk and state machine, joined by one FIFO network that
 * the commands step by hand. Nothing is random except the core's own seeded
 * election jitter, so the same file always prints the same thing.
 *
 *   test_scenarios [--rewrite] [NAME...]   (REWRITE=1 works like --rewrite)
 *
 * Each file counts as one test; a mismatch prints a diff per block. With
 * --rewrite the expected output is replaced in place by what was printed,
 * so a change in behaviour shows up as a reviewable git diff.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "common/crc32c.h"
#include "raft.h"

#define SC_DIR "tests/scenarios"
#define SC_MAXN 9          /* node ids 1..SC_MAXN */
#define SC_MAX_TOKENS 32
#define SC_MAX_STEPS 10000 /* stabilize gives up after this many rounds */

/* ---- Output buffer ------------------------------------------------------ */

struct sbuf {
    char *s;
    size_t n, cap;
};

static void sb_grow(struct sbuf *b, size_t more)
{
    if (b->n + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + more + 1)
        cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) {
        fprintf(stderr, "test_scenarios: out of memory\n");
        exit(2);
    }
    b->s = s;
    b->cap = cap;
}

static void sb_vadd(struct sbuf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int len = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (len < 0)
        return;
    sb_grow(b, (size_t)len);
    vsnprintf(b->s + b->n, (size_t)len + 1, fmt, ap);
    b->n += (size_t)len;
}

static void sb_add(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vadd(b, fmt, ap);
    va_end(ap);
}

static void sb_free(struct sbuf *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}

/* ---- The world ------------------------------------------------------------ */

/* A node's disk: what survives a crash. Entries own their data. */
struct disk {
    struct raft_hard_state hs;
    struct raft_entry *log;
    size_t n, cap;
    bool has_snap;
    struct raft_snapshot_meta snap;
    uint8_t *snap_data;
    struct raft_snapshot_meta prev_snap; /* the one before (index 0: none), kept so */
    uint8_t *prev_snap_data;   /* that a transfer of it can finish (raft.h) */
    uint8_t *partial;          /* snapshot being received, chunk by chunk */
    uint64_t partial_len;
    struct raft_snapshot_meta partial_meta;
};

/* The state machine: the applied commands' data, space separated. It is
 * durable (like linkraft's SQLite database, whose applied index is written in
 * the same transaction), so a restart resumes from `applied`. lens[i] is the
 * buffer length once index base + 1 + i is applied, for snapshots. */
struct sm {
    struct sbuf buf;
    raft_index base, applied;
    size_t base_len;           /* bytes as of base (a restored snapshot) */
    size_t *lens;
    size_t cap_lens;
};

struct node {
    bool exists, alive;
    struct raft *r;
    struct raft_options o;
    bool has_config;           /* bootstrap configuration, used by `log` */
    struct raft_config config;
    struct disk disk;
    struct sm sm;
    bool rd_out;               /* a ready was taken and not yet persisted */
    struct raft_ready rd;
    enum raft_role seen_role;  /* last printed role/term/leader */
    raft_term seen_term;
    raft_id seen_lead;
    uint64_t seen_crc_failures;
};

/* A message on the wire: a deep copy, snapshot chunk data filled in. */
struct wire {
    struct raft_message m;
};

struct world {
    struct node nodes[SC_MAXN + 1];
    int n;                     /* highest node id created */
    struct wire *q;
    size_t nq, capq;
    bool cut[SC_MAXN + 1][SC_MAXN + 1];
    struct sbuf *out;
    bool quiet;                /* bootstrap: print nothing */
};

static struct world W;

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
    if (W.quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    sb_vadd(W.out, fmt, ap);
    va_end(ap);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "test_scenarios: out of memory\n");
        exit(2);
    }
    return p;
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n)
{
    if (!n)
        return NULL;
    uint8_t *c = xmalloc(n);
    memcpy(c, p, n);
    return c;
}

/* ---- Printing entries and messages -------------------------------------- */

/* Entries print as term/index (etcd-io/raft's convention), with ":noop" or
 * ":conf{v1,v2,l3}" for the core's own entries (l = learner, + = to be
 * promoted). */
static void print_config(struct sbuf *b, const struct raft_config *c)
{
    sb_add(b, "{");
    for (uint32_t i = 0; i < c->n; i++)
        sb_add(b, "%s%s%llu%s", i ? "," : "", c->members[i].role == RAFT_VOTER ? "v" : "l",
               (unsigned long long)c->members[i].id, c->members[i].promote ? "+" : "");
    sb_add(b, "}");
}

static void print_entry(struct sbuf *b, const struct raft_entry *e, bool with_data)
{
    sb_add(b, "%llu/%llu", (unsigned long long)e->term, (unsigned long long)e->index);
    if (e->type == RAFT_ENTRY_NOOP) {
        sb_add(b, ":noop");
    } else if (e->type == RAFT_ENTRY_CONFIG) {
        struct raft_config c;
        if (raft_config_decode(&c, e->data, e->len) == RAFT_OK) {
            sb_add(b, ":conf");
            print_config(b, &c);
        } else {
            sb_add(b, ":conf(bad)");
        }
    } else if (with_data && e->len) {
        sb_add(b, ":");
        for (uint32_t i = 0; i < e->len && i < 16; i++) {
            uint8_t ch = e->data[i];
            if (ch > ' ' && ch < 127)
                sb_add(b, "%c", ch);
            else
                sb_add(b, "\\x%02x", ch);
        }
        if (e->len > 16)
            sb_add(b, "...");
    }
}

static void print_msg(struct sbuf *b, const struct raft_message *m)
{
    sb_add(b, "%llu->%llu %s term=%llu", (unsigned long long)m->from, (unsigned long long)m->to,
           raft_msg_type_name(m->type), (unsigned long long)m->term);
    switch (m->type) {
    case RAFT_MSG_APPEND:
        sb_add(b, " prev=%llu/%llu commit=%llu entries=[", (unsigned long long)m->prev_term,
               (unsigned long long)m->prev_index, (unsigned long long)m->commit);
        for (uint32_t i = 0; i < m->n_entries; i++) {
            if (i)
                sb_add(b, " ");
            print_entry(b, &m->entries[i], false);
        }
        sb_add(b, "]");
        break;
    case RAFT_MSG_APPEND_RESP:
        if (m->reject)
            sb_add(b, " reject index=%llu hint=%llu/%llu", (unsigned long long)m->index,
                   (unsigned long long)m->hint_term, (unsigned long long)m->hint_index);
        else
            sb_add(b, " index=%llu", (unsigned long long)m->index);
        break;
    case RAFT_MSG_VOTE:
    case RAFT_MSG_PREVOTE:
        sb_add(b, " last=%llu/%llu%s", (unsigned long long)m->last_term,
               (unsigned long long)m->last_index, m->transfer ? " transfer" : "");
        break;
    case RAFT_MSG_VOTE_RESP:
    case RAFT_MSG_PREVOTE_RESP:
        sb_add(b, m->reject ? " rejected" : " granted");
        break;
    case RAFT_MSG_HEARTBEAT:
        sb_add(b, " commit=%llu", (unsigned long long)m->commit);
        /* fallthrough */
    case RAFT_MSG_HEARTBEAT_RESP:
        if (m->context)
            sb_add(b, " read-round=%llu", (unsigned long long)m->context);
        break;
    case RAFT_MSG_SNAPSHOT:
        sb_add(b, " snap=%llu/%llu size=%llu offset=%llu len=%u%s",
               (unsigned long long)m->snapshot.term, (unsigned long long)m->snapshot.index,
               (unsigned long long)m->snapshot.size, (unsigned long long)m->offset, m->len,
               m->done ? " done" : "");
        break;
    case RAFT_MSG_SNAPSHOT_RESP:
        sb_add(b, " snap=%llu offset=%llu%s%s", (unsigned long long)m->index,
               (unsigned long long)m->offset, m->reject ? " reject" : "", m->done ? " done" : "");
        break;
    case RAFT_MSG_READ_INDEX:
        sb_add(b, " ctx=%llu", (unsigned long long)m->context);
        break;
    case RAFT_MSG_READ_INDEX_RESP:
        sb_add(b, " ctx=%llu", (unsigned long long)m->context);
        if (m->reject)
            sb_add(b, " reject");
        else
            sb_add(b, " index=%llu", (unsigned long long)m->index);
        break;
    default:
        break;
    }
}

static const char *lead_str(raft_id id, char *buf, size_t cap)
{
    if (!id)
        return "none";
    snprintf(buf, cap, "%llu", (unsigned long long)id);
    return buf;
}

/* Prints a line when a node's role, term or known leader changed. */
static void note(int id)
{
    struct node *nd = &W.nodes[id];
    if (!nd->alive)
        return;
    if (raft_stats(nd->r)->checksum_failures != nd->seen_crc_failures) {
        nd->seen_crc_failures = raft_stats(nd->r)->checksum_failures;
        out("%d: snapshot rejected: checksum mismatch\n", id);
    }
    enum raft_role role = raft_role(nd->r);
    raft_term term = raft_current_term(nd->r);
    raft_id lead = raft_leader(nd->r);
    if (role == nd->seen_role && term == nd->seen_term && lead == nd->seen_lead)
        return;
    char lb[24];
    out("%d: %s term=%llu lead=%s\n", id, raft_role_name(role), (unsigned long long)term,
        lead_str(lead, lb, sizeof lb));
    nd->seen_role = role;
    nd->seen_term = term;
    nd->seen_lead = lead;
}

static void note_quiet(int id)
{
    struct node *nd = &W.nodes[id];
    nd->seen_role = raft_role(nd->r);
    nd->seen_term = raft_current_term(nd->r);
    nd->seen_lead = raft_leader(nd->r);
    nd->seen_crc_failures = raft_stats(nd->r)->checksum_failures;
}

/* ---- Network ------------------------------------------------------------- */

static void wire_free(struct wire *w)
{
    for (uint32_t i = 0; i < w->m.n_entries; i++)
        free((void *)w->m.entries[i].data);
    free((void *)w->m.entries);
    free((void *)w->m.data);
}

static void net_send(int from, const struct raft_message *m)
{
    struct wire w = { *m };
    if (m->n_entries) {
        struct raft_entry *e = xmalloc(m->n_entries * sizeof *e);
        for (uint32_t i = 0; i < m->n_entries; i++) {
            e[i] = m->entries[i];
            e[i].data = dup_bytes(m->entries[i].data, m->entries[i].len);
        }
        w.m.entries = e;
    }
    w.m.data = NULL;
    if (m->type == RAFT_MSG_SNAPSHOT && m->len) {
        /* The core names the bytes; the sending host reads them from the
         * snapshot it holds (raft.h). No such snapshot: the message is lost. */
        const struct disk *d = &W.nodes[from].disk;
        const uint8_t *data = d->has_snap && d->snap.index == m->snapshot.index ? d->snap_data
                            : d->prev_snap.index && d->prev_snap.index == m->snapshot.index ? d->prev_snap_data
                            : NULL;
        if (!data || m->offset + m->len > m->snapshot.size) {
            struct sbuf tmp = { 0 };
            print_msg(&tmp, m);
            out("%s dropped (sender has no such snapshot)\n", tmp.s);
            sb_free(&tmp);
            wire_free(&w);
            return;
        }
        w.m.data = dup_bytes(data + m->offset, m->len);
    }
    if (W.nq == W.capq) {
        W.capq = W.capq ? W.capq * 2 : 64;
        W.q = realloc(W.q, W.capq * sizeof *W.q);
        if (!W.q)
            exit(2);
    }
    W.q[W.nq++] = w;
}

/* ---- Disk and state machine ---------------------------------------------- */

static void disk_free(struct disk *d)
{
    for (size_t i = 0; i < d->n; i++)
        free((void *)d->log[i].data);
    free(d->log);
    free(d->snap_data);
    free(d->prev_snap_data);
    free(d->partial);
    memset(d, 0, sizeof *d);
}

static void disk_truncate(struct disk *d, raft_index from)
{
    while (d->n && d->log[d->n - 1].index >= from) {
        free((void *)d->log[d->n - 1].data);
        d->n--;
    }
}

static void disk_compact(struct disk *d, raft_index before)
{
    size_t drop = 0;
    while (drop < d->n && d->log[drop].index < before) {
        free((void *)d->log[drop].data);
        drop++;
    }
    memmove(d->log, d->log + drop, (d->n - drop) * sizeof *d->log);
    d->n -= drop;
}

static void disk_append(int id, const struct raft_entry *e)
{
    struct disk *d = &W.nodes[id].disk;
    if (d->n && d->log[d->n - 1].index + 1 != e->index)
        out("%d: HOST ERROR: append of %llu after %llu leaves a gap\n", id,
            (unsigned long long)e->index, (unsigned long long)d->log[d->n - 1].index);
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 16;
        d->log = realloc(d->log, d->cap * sizeof *d->log);
        if (!d->log)
            exit(2);
    }
    d->log[d->n] = *e;
    d->log[d->n].data = dup_bytes(e->data, e->len);
    d->n++;
}

static void sm_free(struct sm *s)
{
    sb_free(&s->buf);
    free(s->lens);
    memset(s, 0, sizeof *s);
}

static void sm_apply(int id, const struct raft_entry *e)
{
    struct sm *s = &W.nodes[id].sm;
    if (e->index != s->applied + 1) {
        out("%d: HOST ERROR: applying %llu after %llu\n", id, (unsigned long long)e->index,
            (unsigned long long)s->applied);
        return;
    }
    if (e->type == RAFT_ENTRY_COMMAND) {
        if (s->buf.n)
            sb_add(&s->buf, " ");
        sb_grow(&s->buf, e->len);
        memcpy(s->buf.s + s->buf.n, e->data, e->len);
        s->buf.n += e->len;
        s->buf.s[s->buf.n] = 0;
    }
    size_t k = (size_t)(e->index - s->base - 1);
    if (k >= s->cap_lens) {
        s->cap_lens = s->cap_lens ? s->cap_lens * 2 : 64;
        while (s->cap_lens <= k)
            s->cap_lens *= 2;
        s->lens = realloc(s->lens, s->cap_lens * sizeof *s->lens);
        if (!s->lens)
            exit(2);
    }
    s->lens[k] = s->buf.n;
    s->applied = e->index;
}

/* The state machine's bytes as of index (base <= index <= applied). */
static size_t sm_len_at(const struct sm *s, raft_index index)
{
    return index == s->base ? s->base_len : s->lens[index - s->base - 1];
}

static void sm_restore(struct sm *s, const uint8_t *data, uint64_t len, raft_index index)
{
    sb_free(&s->buf);
    sb_grow(&s->buf, (size_t)len);
    memcpy(s->buf.s, data, (size_t)len);
    s->buf.n = (size_t)len;
    s->buf.s[len] = 0;
    s->base = s->applied = index;
    s->base_len = (size_t)len;
}

/* ---- The ready loop (the host side of THE READY CONTRACT in raft.h) ------- */

static void ready_summary(int id, const struct raft_ready *rd)
{
    out("%d: ready:", id);
    if (rd->hard_state_changed)
        out(" hard-state term=%llu vote=%llu,", (unsigned long long)rd->hard_state.term,
            (unsigned long long)rd->hard_state.vote);
    if (rd->snapshot_chunk.meta.index)
        out(" snapshot chunk %llu+%u,", (unsigned long long)rd->snapshot_chunk.offset,
            rd->snapshot_chunk.len);
    if (rd->truncate_from)
        out(" truncate from %llu,", (unsigned long long)rd->truncate_from);
    if (rd->n_entries) {
        struct sbuf b = { 0 };
        for (size_t i = 0; i < rd->n_entries; i++) {
            sb_add(&b, "%s", i ? " " : "");
            print_entry(&b, &rd->entries[i], false);
        }
        out(" entries [%s],", b.s);
        sb_free(&b);
    }
    if (rd->n_committed == 1)
        out(" apply %llu,", (unsigned long long)rd->committed[0].index);
    else if (rd->n_committed)
        out(" apply %llu..%llu,", (unsigned long long)rd->committed[0].index,
            (unsigned long long)rd->committed[rd->n_committed - 1].index);
    out(" send %zu now, %zu after persisting\n", rd->n_send_now, rd->n_send_after_persist);
}

/* Step 1: take the ready; replication traffic may leave at once. */
static bool ready_take(int id, bool verbose)
{
    struct node *nd = &W.nodes[id];
    if (!nd->alive || nd->rd_out || !raft_has_ready(nd->r))
        return false;
    int rc = raft_ready(nd->r, &nd->rd);
    if (rc) {
        out("%d: raft_ready: %s\n", id, raft_strerror(rc));
        return false;
    }
    nd->rd_out = true;
    if (verbose)
        ready_summary(id, &nd->rd);
    for (size_t i = 0; i < nd->rd.n_send_now; i++)
        net_send(id, &nd->rd.send_now[i]);
    return true;
}

/* Steps 2-5: persist, then send what waited for the fsync, apply, advance. */
static void ready_finish(int id)
{
    struct node *nd = &W.nodes[id];
    if (!nd->alive || !nd->rd_out)
        return;
    struct raft_ready *rd = &nd->rd;
    struct disk *d = &nd->disk;
    if (rd->snapshot_chunk.meta.index) { /* an empty snapshot is one empty chunk */
        const struct raft_snapshot_chunk *c = &rd->snapshot_chunk;
        if (c->offset == 0) {
            free(d->partial);
            d->partial = xmalloc(c->meta.size ? (size_t)c->meta.size : 1);
            d->partial_len = 0;
            d->partial_meta = c->meta;
        }
        if (!d->partial || c->offset != d->partial_len || c->offset + c->len > d->partial_meta.size) {
            out("%d: HOST ERROR: snapshot chunk at %llu does not continue the partial file\n", id,
                (unsigned long long)c->offset);
        } else {
            if (c->len) /* the one chunk of an empty snapshot has no data */
                memcpy(d->partial + c->offset, c->data, c->len);
            d->partial_len += c->len;
        }
    }
    if (rd->snapshot_install) {
        const struct raft_snapshot_meta *m = rd->snapshot_install;
        if (!d->partial || d->partial_len != m->size) {
            out("%d: HOST ERROR: install of a snapshot not fully received\n", id);
        } else {
            free(d->snap_data);
            d->snap_data = d->partial;
            d->partial = NULL;
            d->partial_len = 0;
            d->snap = *m;
            d->has_snap = true;
            disk_compact(d, m->index + 1);
        }
    }
    if (rd->truncate_from) {
        raft_index had = d->n ? d->log[d->n - 1].index : 0;
        disk_truncate(d, rd->truncate_from);
        if (had >= rd->truncate_from)
            out("%d: truncate log from %llu (had up to %llu)\n", id,
                (unsigned long long)rd->truncate_from, (unsigned long long)had);
    }
    for (size_t i = 0; i < rd->n_entries; i++)
        disk_append(id, &rd->entries[i]);
    if (rd->hard_state_changed)
        d->hs = rd->hard_state;
    /* fsync: the disk above is now durable. */
    for (size_t i = 0; i < rd->n_send_after_persist; i++)
        net_send(id, &rd->send_after_persist[i]);
    if (rd->snapshot_install && d->has_snap && d->snap.index == rd->snapshot_install->index) {
        sm_restore(&nd->sm, d->snap_data, d->snap.size, d->snap.index);
        out("%d: installed snapshot %llu/%llu (%llu bytes)\n", id, (unsigned long long)d->snap.term,
            (unsigned long long)d->snap.index, (unsigned long long)d->snap.size);
    }
    if (rd->n_committed) {
        for (size_t i = 0; i < rd->n_committed; i++)
            sm_apply(id, &rd->committed[i]);
        raft_index a = rd->committed[0].index, b = rd->committed[rd->n_committed - 1].index;
        if (a == b)
            out("%d: apply %llu\n", id, (unsigned long long)a);
        else
            out("%d: apply %llu..%llu\n", id, (unsigned long long)a, (unsigned long long)b);
    }
    for (size_t i = 0; i < rd->n_reads; i++) {
        const struct raft_read_state *rs = &rd->reads[i];
        if (rs->ok)
            out("%d: read ctx=%llu index=%llu\n", id, (unsigned long long)rs->context,
                (unsigned long long)rs->index);
        else
            out("%d: read ctx=%llu failed (retry)\n", id, (unsigned long long)rs->context);
    }
    if (rd->compact_before)
        disk_compact(d, rd->compact_before);
    raft_advance(nd->r, rd);
    nd->rd_out = false;
    note(id);
}

/* Runs the ready loop until the node has nothing left to do. */
static int process(int id, bool verbose)
{
    int n = 0;
    ready_finish(id);
    while (ready_take(id, verbose)) {
        ready_finish(id);
        n++;
    }
    return n;
}

/* ---- Delivery --------------------------------------------------------------- */

struct drop_group {
    raft_id from, to;
    uint8_t type;
    const char *why;
    unsigned count;
};

static void deliver_selected(int from, int to, bool drop, bool *any)
{
    struct wire *q = W.q;
    size_t n = W.nq;
    W.q = NULL;
    W.nq = W.capq = 0;
    struct drop_group groups[64];
    size_t n_groups = 0;
    for (size_t i = 0; i < n; i++) {
        struct raft_message *m = &q[i].m;
        bool match = (from == 0 || m->from == (raft_id)from) && (to == 0 || m->to == (raft_id)to);
        if (!match) {
            /* Not ours to deliver now: keep it on the wire, in order. */
            if (W.nq == W.capq) {
                W.capq = W.capq ? W.capq * 2 : 64;
                W.q = realloc(W.q, W.capq * sizeof *W.q);
                if (!W.q)
                    exit(2);
            }
            W.q[W.nq++] = q[i];
            continue;
        }
        if (any)
            *any = true;
        const char *why = NULL;
        if (drop)
            why = "by request";
        else if (m->to > SC_MAXN || !W.nodes[m->to].exists)
            why = "no such node";
        else if (!W.nodes[m->to].alive)
            why = "node down";
        else if (W.cut[m->from][m->to])
            why = "partition";
        if (why && drop) {
            struct sbuf b = { 0 };
            print_msg(&b, m);
            out("%s dropped\n", b.s);
            sb_free(&b);
        } else if (why) {
            size_t g = 0;
            while (g < n_groups && !(groups[g].from == m->from && groups[g].to == m->to &&
                                     groups[g].type == m->type && groups[g].why == why))
                g++;
            if (g == n_groups && n_groups < 64)
                groups[n_groups++] = (struct drop_group){ m->from, m->to, m->type, why, 0 };
            if (g < n_groups)
                groups[g].count++;
        } else {
            struct sbuf b = { 0 };
            print_msg(&b, m);
            out("%s\n", b.s);
            sb_free(&b);
            int rc = raft_step(W.nodes[m->to].r, m);
            if (rc)
                out("%llu: raft_step: %s\n", (unsigned long long)m->to, raft_strerror(rc));
            note((int)m->to);
        }
        wire_free(&q[i]);
    }
    free(q);
    for (size_t g = 0; g < n_groups; g++) {
        out("%llu->%llu %s", (unsigned long long)groups[g].from, (unsigned long long)groups[g].to,
            raft_msg_type_name(groups[g].type));
        if (groups[g].count > 1)
            out(" x%u", groups[g].count);
        out(" dropped (%s)\n", groups[g].why);
    }
}

/* Deliver everything and run every ready loop until nothing moves. */
static void stabilize(void)
{
    for (int round = 0; round < SC_MAX_STEPS; round++) {
        for (int id = 1; id <= W.n; id++)
            process(id, false);
        if (W.nq == 0)
            return;
        deliver_selected(0, 0, false, NULL);
    }
    out("stabilize: still busy after %d rounds\n", SC_MAX_STEPS);
}

/* ---- Node lifecycle --------------------------------------------------------- */

static void node_stop(struct node *nd)
{
    raft_destroy(nd->r); /* an unpersisted ready dies with the process */
    nd->r = NULL;
    nd->rd_out = false;
    nd->alive = false;
}

/* Starts a node from exactly what is on its disk. */
static int node_start(int id)
{
    struct node *nd = &W.nodes[id];
    nd->r = raft_create(&nd->o);
    if (!nd->r) {
        out("%d: raft_create failed: options out of range\n", id);
        return -1;
    }
    nd->alive = true;
    struct disk *d = &nd->disk;
    if (d->n || d->has_snap || d->hs.term) {
        int rc = raft_restore(nd->r, &d->hs, d->has_snap ? &d->snap : NULL, d->log, d->n, nd->sm.applied);
        if (rc) {
            out("%d: raft_restore: %s\n", id, raft_strerror(rc));
            node_stop(nd);
            return -1;
        }
    }
    note_quiet(id);
    return 0;
}

static void node_free(struct node *nd)
{
    if (nd->r)
        raft_destroy(nd->r);
    disk_free(&nd->disk);
    sm_free(&nd->sm);
    memset(nd, 0, sizeof *nd);
}

static void world_reset(void)
{
    for (int i = 1; i <= SC_MAXN; i++)
        node_free(&W.nodes[i]);
    for (size_t i = 0; i < W.nq; i++)
        wire_free(&W.q[i]);
    free(W.q);
    struct sbuf *o = W.out;
    memset(&W, 0, sizeof W);
    W.out = o;
}

/* ---- Commands --------------------------------------------------------------- */

struct cmd {
    char *tok[SC_MAX_TOKENS];
    int n;
};

/* "key=value" argument lookup; NULL if absent. */
static const char *arg(const struct cmd *c, const char *key)
{
    size_t kl = strlen(key);
    for (int i = 1; i < c->n; i++)
        if (!strncmp(c->tok[i], key, kl) && c->tok[i][kl] == '=')
            return c->tok[i] + kl + 1;
    return NULL;
}

static bool parse_u64(const char *s, uint64_t *v)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || *end || *s == '-')
        return false;
    *v = x;
    return true;
}

static int parse_id(const char *s)
{
    uint64_t v;
    if (!parse_u64(s, &v) || v == 0 || v > SC_MAXN)
        return 0;
    return (int)v;
}

/* Parses "1,2,3" into ids; returns the count or -1. */
static int parse_list(const char *s, uint64_t *v, int cap)
{
    int n = 0;
    char buf[256];
    if (strlen(s) >= sizeof buf)
        return -1;
    strcpy(buf, s);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (n == cap || !parse_u64(t, &v[n]))
            return -1;
        n++;
    }
    return n;
}

static bool parse_bool(const char *s, bool *b)
{
    if (!strcmp(s, "true")) { *b = true; return true; }
    if (!strcmp(s, "false")) { *b = false; return true; }
    return false;
}

#define FAIL(...) do { out("error: " __VA_ARGS__); out("\n"); return; } while (0)

static struct node *live_node(const struct cmd *c, int pos, int *id_out)
{
    int id = pos < c->n ? parse_id(c->tok[pos]) : 0;
    if (!id || !W.nodes[id].exists) {
        out("error: %s: expected a node id, got '%s'\n", c->tok[0], pos < c->n ? c->tok[pos] : "");
        return NULL;
    }
    if (!W.nodes[id].alive) {
        out("error: node %d is down\n", id);
        return NULL;
    }
    *id_out = id;
    return &W.nodes[id];
}

/* The current leader: the live leader of the highest term. */
static int find_leader(void)
{
    int best = 0;
    for (int i = 1; i <= W.n; i++)
        if (W.nodes[i].alive && raft_role(W.nodes[i].r) == RAFT_LEADER &&
            (!best || raft_current_term(W.nodes[i].r) > raft_current_term(W.nodes[best].r)))
            best = i;
    return best;
}

static void print_state_line(int id)
{
    struct node *nd = &W.nodes[id];
    if (!nd->alive) {
        out("%d: down\n", id);
        return;
    }
    char lb[24];
    const struct raft_member *m = raft_config_find(raft_configuration(nd->r), (raft_id)id);
    out("%d: %s term=%llu lead=%s vote=%llu commit=%llu applied=%llu last=%llu%s\n", id,
        raft_role_name(raft_role(nd->r)), (unsigned long long)raft_current_term(nd->r),
        lead_str(raft_leader(nd->r), lb, sizeof lb), (unsigned long long)raft_voted_for(nd->r),
        (unsigned long long)raft_commit_index(nd->r), (unsigned long long)raft_applied_index(nd->r),
        (unsigned long long)raft_last_index(nd->r),
        !m ? " (not a member)" : m->role == RAFT_LEARNER ? " (learner)" : "");
}

static void cmd_add_nodes(const struct cmd *c)
{
    uint64_t count;
    if (c->n < 2 || !parse_u64(c->tok[1], &count) || count == 0 || W.n + (int)count > SC_MAXN)
        FAIL("add-nodes N: N new nodes, at most %d in all", SC_MAXN);
    int first = W.n + 1, last = W.n + (int)count;
    struct raft_config cfg = { 0 };
    uint64_t ids[RAFT_MAX_MEMBERS];
    const char *v = arg(c, "voters"), *l = arg(c, "learners");
    if (v) {
        int k = parse_list(v, ids, RAFT_MAX_MEMBERS);
        if (k < 0)
            FAIL("voters=: a list of ids like 1,2,3");
        for (int i = 0; i < k; i++)
            cfg.members[cfg.n++] = (struct raft_member){ ids[i], RAFT_VOTER, 0 };
    } else if (!l && first == 1) {
        for (int i = first; i <= last; i++)
            cfg.members[cfg.n++] = (struct raft_member){ (raft_id)i, RAFT_VOTER, 0 };
    }
    if (l) {
        int k = parse_list(l, ids, RAFT_MAX_MEMBERS - (int)cfg.n);
        if (k < 0)
            FAIL("learners=: a list of ids like 4,5");
        for (int i = 0; i < k; i++)
            cfg.members[cfg.n++] = (struct raft_member){ ids[i], RAFT_LEARNER, 0 };
    }
    for (int id = first; id <= last; id++) {
        struct node *nd = &W.nodes[id];
        raft_options_default(&nd->o, (raft_id)id, 1);
        nd->o.election_ticks = 10;
        nd->o.heartbeat_ticks = 1;
        nd->o.trailing_entries = 2;
        nd->o.snapshot_chunk_bytes = 8;
        const char *s;
        uint64_t x;
        bool b;
        struct { const char *key; uint64_t *u64; unsigned *uns; uint32_t *u32; } nums[] = {
            { "seed", &nd->o.seed, NULL, NULL },
            { "election", NULL, &nd->o.election_ticks, NULL },
            { "heartbeat", NULL, &nd->o.heartbeat_ticks, NULL },
            { "max-msg-bytes", NULL, NULL, &nd->o.max_msg_bytes },
            { "max-entry-bytes", NULL, NULL, &nd->o.max_entry_bytes },
            { "inflight", NULL, NULL, &nd->o.max_inflight_msgs },
            { "chunk", NULL, NULL, &nd->o.snapshot_chunk_bytes },
            { "trailing", &nd->o.trailing_entries, NULL, NULL },
        };
        for (size_t k = 0; k < sizeof nums / sizeof nums[0]; k++) {
            if (!(s = arg(c, nums[k].key)))
                continue;
            if (!parse_u64(s, &x) || x > 0xffffffffu)
                FAIL("%s=: expected a number, got '%s'", nums[k].key, s);
            if (nums[k].u64) *nums[k].u64 = x;
            if (nums[k].uns) *nums[k].uns = (unsigned)x;
            if (nums[k].u32) *nums[k].u32 = (uint32_t)x;
        }
        if ((s = arg(c, "prevote")) && !parse_bool(s, &nd->o.pre_vote))
            FAIL("prevote=: true or false");
        if ((s = arg(c, "checkquorum")) && !parse_bool(s, &nd->o.check_quorum))
            FAIL("checkquorum=: true or false");
        (void)b;
        nd->exists = true;
        if (node_start(id))
            return;
        if (raft_config_find(&cfg, (raft_id)id)) {
            nd->has_config = true;
            nd->config = cfg;
            int rc = raft_bootstrap(nd->r, &cfg);
            if (rc)
                FAIL("bootstrap of %d: %s", id, raft_strerror(rc));
            W.quiet = true;
            process(id, false);
            W.quiet = false;
            note_quiet(id);
        }
    }
    W.n = last;
    for (int id = first; id <= last; id++)
        print_state_line(id);
}

/* log ID terms=1,1,2 [term=T] [vote=V] [commit=C]: replaces the node's disk
 * with that log (entry 1 is the bootstrap configuration, the rest commands
 * whose data is "term/index") and restarts it. */
static void cmd_log(const struct cmd *c)
{
    int id = c->n > 1 ? parse_id(c->tok[1]) : 0;
    if (!id || !W.nodes[id].exists)
        FAIL("log ID terms=...: no node '%s'", c->n > 1 ? c->tok[1] : "");
    struct node *nd = &W.nodes[id];
    if (!nd->has_config)
        FAIL("log: node %d has no bootstrap configuration (give it voters= in add-nodes)", id);
    const char *ts = arg(c, "terms");
    uint64_t terms[256];
    int k = ts ? parse_list(ts, terms, 256) : -1;
    if (k < 1)
        FAIL("log: terms=1,1,2,... (one term per entry, from index 1)");
    uint64_t term = terms[k - 1], vote = 0, commit = 0;
    if (arg(c, "term") && !parse_u64(arg(c, "term"), &term))
        FAIL("log: term=T");
    if (arg(c, "vote") && !parse_u64(arg(c, "vote"), &vote))
        FAIL("log: vote=V");
    if (arg(c, "commit") && (!parse_u64(arg(c, "commit"), &commit) || commit > (uint64_t)k))
        FAIL("log: commit=C with C at most the log's length");
    if (nd->alive)
        node_stop(nd);
    disk_free(&nd->disk);
    sm_free(&nd->sm);
    uint8_t cbuf[4 + 10 * RAFT_MAX_MEMBERS];
    int clen = raft_config_encode(&nd->config, cbuf, sizeof cbuf);
    for (int i = 0; i < k; i++) {
        char data[48];
        struct raft_entry e = { .term = terms[i], .index = (raft_index)i + 1, .type = RAFT_ENTRY_COMMAND };
        if (i == 0) {
            e.type = RAFT_ENTRY_CONFIG;
            e.data = cbuf;
            e.len = (uint32_t)clen;
        } else {
            snprintf(data, sizeof data, "%llu/%d", (unsigned long long)terms[i], i + 1);
            e.data = (const uint8_t *)data;
            e.len = (uint32_t)strlen(data);
        }
        disk_append(id, &e);
        if (e.index <= commit)
            sm_apply(id, &e);
    }
    nd->disk.hs = (struct raft_hard_state){ term, vote };
    if (node_start(id) == 0)
        print_state_line(id);
}

static void cmd_tick(const struct cmd *c, const char *kind)
{
    int id;
    struct node *nd = live_node(c, 1, &id);
    if (!nd)
        return;
    uint64_t n = 1;
    if (!strcmp(kind, "election"))
        n = nd->o.election_ticks;
    else if (!strcmp(kind, "heartbeat"))
        n = nd->o.heartbeat_ticks;
    else if (c->n > 2 && (!parse_u64(c->tok[2], &n) || n > 100000))
        FAIL("tick ID [N]");
    for (uint64_t i = 0; i < n; i++) {
        raft_tick(nd->r);
        note(id);
    }
}

/* The core has no "campaign now" input: a node campaigns when its
 * randomized election timeout runs out, so tick until it does. For a
 * non-leader a tick does nothing visible except start a (pre-)campaign,
 * whose requests make a ready appear: that is how the end is detected. */
static void cmd_campaign(const struct cmd *c)
{
    int id;
    struct node *nd = live_node(c, 1, &id);
    if (!nd)
        return;
    if (raft_role(nd->r) == RAFT_LEADER)
        FAIL("node %d is the leader", id);
    if (nd->rd_out || raft_has_ready(nd->r))
        FAIL("node %d has a ready pending; process it first", id);
    unsigned limit = 2 * nd->o.election_ticks + 1;
    for (unsigned i = 1; i <= limit; i++) {
        raft_tick(nd->r);
        if (raft_has_ready(nd->r)) {
            out("%d: election timeout after %u ticks\n", id, i);
            note(id);
            return;
        }
        note(id);
    }
    out("%d: no election after %u ticks\n", id, limit);
}

static void cmd_propose(const struct cmd *c)
{
    int id;
    struct node *nd = live_node(c, 1, &id);
    if (!nd)
        return;
    if (c->n < 3)
        FAIL("propose ID DATA");
    raft_index idx;
    raft_term term;
    int rc = raft_propose(nd->r, (const uint8_t *)c->tok[2], strlen(c->tok[2]), &idx, &term);
    if (rc)
        out("%d: propose: %s\n", id, raft_strerror(rc));
    else
        out("%d: proposed %llu/%llu\n", id, (unsigned long long)term, (unsigned long long)idx);
}

static bool parse_link(const char *s, int *from, int *to)
{
    char buf[32];
    const char *arrow = strstr(s, "->");
    if (!arrow || (size_t)(arrow - s) >= sizeof buf)
        return false;
    memcpy(buf, s, (size_t)(arrow - s));
    buf[arrow - s] = 0;
    *from = !strcmp(buf, "*") ? 0 : parse_id(buf);
    *to = !strcmp(arrow + 2, "*") ? 0 : parse_id(arrow + 2);
    return (*from || !strcmp(buf, "*")) && (*to || !strcmp(arrow + 2, "*"));
}

static void cmd_deliver(const struct cmd *c, bool drop)
{
    int from = 0, to = 0;
    if (c->n > 1 && !parse_link(c->tok[1], &from, &to))
        FAIL("%s [FROM->TO]: e.g. 1->2, 1->* or *->3", c->tok[0]);
    bool any = false;
    deliver_selected(from, to, drop, &any);
    if (!any)
        out("no messages\n");
}

static void cmd_corrupt(const struct cmd *c)
{
    int from = 0, to = 0;
    if (c->n < 2 || !parse_link(c->tok[1], &from, &to) || !from || !to)
        FAIL("corrupt FROM->TO");
    for (size_t i = 0; i < W.nq; i++) {
        struct raft_message *m = &W.q[i].m;
        if (m->from == (raft_id)from && m->to == (raft_id)to && m->type == RAFT_MSG_SNAPSHOT && m->len) {
            ((uint8_t *)m->data)[0] ^= 0xff;
            struct sbuf b = { 0 };
            print_msg(&b, m);
            out("%s: first byte flipped\n", b.s);
            sb_free(&b);
            return;
        }
    }
    out("no snapshot chunk from %d to %d on the wire\n", from, to);
}

/* The network delivers a message twice: every message on the wire from F
 * to T gets a copy right behind it. */
static void cmd_duplicate(const struct cmd *c)
{
    int from = 0, to = 0;
    if (c->n < 2 || !parse_link(c->tok[1], &from, &to) || !from || !to)
        FAIL("duplicate FROM->TO");
    size_t n = 0;
    for (size_t i = 0; i < W.nq; i++)
        n += W.q[i].m.from == (raft_id)from && W.q[i].m.to == (raft_id)to;
    if (n == 0) {
        out("no messages\n");
        return;
    }
    struct wire *q = xmalloc((W.nq + n) * sizeof *q);
    size_t k = 0;
    for (size_t i = 0; i < W.nq; i++) {
        q[k++] = W.q[i];
        const struct raft_message *m = &W.q[i].m;
        if (m->from != (raft_id)from || m->to != (raft_id)to)
            continue;
        struct wire w = { *m };
        if (m->n_entries) {
            struct raft_entry *e = xmalloc(m->n_entries * sizeof *e);
            for (uint32_t j = 0; j < m->n_entries; j++) {
                e[j] = m->entries[j];
                e[j].data = dup_bytes(m->entries[j].data, m->entries[j].len);
            }
            w.m.entries = e;
        }
        w.m.data = dup_bytes(m->data, m->len);
        q[k++] = w;
        struct sbuf b = { 0 };
        print_msg(&b, m);
        out("%s duplicated\n", b.s);
        sb_free(&b);
    }
    free(W.q);
    W.q = q;
    W.nq = W.capq = k;
}

static void cmd_partition(const struct cmd *c)
{
    int group[SC_MAXN + 1] = { 0 };
    int g = 1;
    for (int i = 1; i < c->n; i++) {
        if (!strcmp(c->tok[i], "|")) {
            g++;
            continue;
        }
        int id = parse_id(c->tok[i]);
        if (!id || !W.nodes[id].exists)
            FAIL("partition 1 2 | 3: no node '%s'", c->tok[i]);
        group[id] = g;
    }
    if (g < 2)
        FAIL("partition: give at least two groups separated by |");
    memset(W.cut, 0, sizeof W.cut);
    for (int a = 1; a <= W.n; a++)
        for (int b = 1; b <= W.n; b++)
            if (group[a] && group[b] && group[a] != group[b])
                W.cut[a][b] = true;
}

static void cmd_crash(const struct cmd *c)
{
    int id;
    struct node *nd = live_node(c, 1, &id);
    if (!nd)
        return;
    if (nd->rd_out)
        out("%d: unpersisted ready lost\n", id);
    node_stop(nd);
}

static void cmd_restart(const struct cmd *c)
{
    int id = c->n > 1 ? parse_id(c->tok[1]) : 0;
    if (!id || !W.nodes[id].exists)
        FAIL("restart ID");
    if (W.nodes[id].alive)
        FAIL("node %d is running; crash it first", id);
    if (node_start(id) == 0)
        print_state_line(id);
}

static void cmd_read_index(const struct cmd *c)
{
    int id;
    struct node *nd = live_node(c, 1, &id);
    if (!nd)
        return;
    uint64_t ctx;
    if (c->n < 3 || !parse_u64(c->tok[2], &ctx) || ctx == 0)
        FAIL("read-index ID CTX (CTX a positive number)");
    int rc = raft_read_index(nd->r, ctx);
    if (rc)
        out("%d: read-index: %s\n", id, raft_strerror(rc));
}

static void cmd_transfer(const struct cmd *c)
{
    int id;
    struct node *nd = live_node(c, 1, &id);
    if (!nd)
        return;
    int to = c->n > 2 ? parse_id(c->tok[2]) : 0;
    if (!to)
        FAIL("transfer-leader FROM TO");
    int rc = raft_transfer_leader(nd->r, (raft_id)to);
    if (rc)
        out("%d: transfer-leader: %s\n", id, raft_strerror(rc));
}

static void cmd_member(const struct cmd *c, enum raft_change change)
{
    int target = c->n > 1 ? parse_id(c->tok[1]) : 0;
    if (!target)
        FAIL("%s ID", c->tok[0]);
    int on = find_leader();
    if (arg(c, "on") && !(on = parse_id(arg(c, "on"))))
        FAIL("on=ID");
    if (!on || !W.nodes[on].alive)
        FAIL("no live leader to ask");
    raft_index idx = 0;
    int rc = raft_change_member(W.nodes[on].r, change, (raft_id)target, &idx);
    if (rc)
        out("%d: %s: %s\n", on, c->tok[0], raft_strerror(rc));
    else
        out("%d: configuration change at index %llu\n", on, (unsigned long long)idx);
}

static void cmd_snapshot(const struct cmd *c)
{
    int id;
    struct node *nd = live_node(c, 1, &id);
    if (!nd)
        return;
    uint64_t index;
    if (c->n < 3 || !parse_u64(c->tok[2], &index))
        FAIL("snapshot ID INDEX");
    if (index > nd->sm.applied || index < nd->sm.base)
        FAIL("snapshot: node %d's state machine holds %llu..%llu", id,
             (unsigned long long)nd->sm.base, (unsigned long long)nd->sm.applied);
    size_t len = sm_len_at(&nd->sm, index);
    uint32_t crc = crc32c_extend(0, (const uint8_t *)nd->sm.buf.s, len);
    int rc = raft_snapshot_taken(nd->r, index, len, crc);
    if (rc)
        FAIL("raft_snapshot_taken: %s", raft_strerror(rc));
    const struct raft_snapshot_meta *m = raft_snapshot(nd->r);
    struct disk *d = &nd->disk;
    free(d->prev_snap_data);
    d->prev_snap_data = d->has_snap ? d->snap_data : NULL;
    d->prev_snap = d->has_snap ? d->snap : (struct raft_snapshot_meta){ 0 };
    d->snap_data = dup_bytes((const uint8_t *)nd->sm.buf.s, len);
    d->snap = *m;
    d->has_snap = true;
    out("%d: snapshot %llu/%llu, %zu bytes; log kept from %llu\n", id, (unsigned long long)m->term,
        (unsigned long long)m->index, len, (unsigned long long)raft_first_index(nd->r));
}

static void cmd_raft_log(const struct cmd *c)
{
    int id;
    struct node *nd = live_node(c, 1, &id);
    if (!nd)
        return;
    struct sbuf b = { 0 };
    const struct raft_snapshot_meta *s = raft_snapshot(nd->r);
    if (s)
        sb_add(&b, "snapshot %llu/%llu; ", (unsigned long long)s->term, (unsigned long long)s->index);
    raft_index first = raft_first_index(nd->r), last = raft_last_index(nd->r);
    if (first > last)
        sb_add(&b, "empty");
    for (raft_index i = first; i <= last; i++) {
        sb_add(&b, "%s", i == first ? "" : " ");
        print_entry(&b, raft_entry_at(nd->r, i), true);
    }
    out("%d: %s\n", id, b.s);
    sb_free(&b);
}

static void cmd_status(const struct cmd *c)
{
    int id;
    struct node *nd = live_node(c, 1, &id);
    if (!nd)
        return;
    struct raft_progress pr[RAFT_MAX_MEMBERS + 1];
    size_t n = raft_progress(nd->r, pr, RAFT_MAX_MEMBERS + 1);
    if (n == 0) {
        out("%d: not the leader\n", id);
        return;
    }
    static const char *const st[] = { "?", "probe", "replicate", "snapshot" };
    const struct raft_config *cfg = raft_configuration(nd->r);
    for (size_t i = 0; i < n && i <= RAFT_MAX_MEMBERS; i++) {
        const struct raft_member *m = raft_config_find(cfg, pr[i].id);
        out("%llu: match=%llu next=%llu %s%s%s\n", (unsigned long long)pr[i].id,
            (unsigned long long)pr[i].match, (unsigned long long)pr[i].next,
            pr[i].state <= 3 ? st[pr[i].state] : "?",
            m && m->role == RAFT_LEARNER ? " learner" : "",
            i > 0 && !pr[i].recent_active ? " inactive" : "");
    }
    out("config ");
    print_config(W.out, cfg);
    if (raft_transfer_target(nd->r))
        out(" transferring to %llu", (unsigned long long)raft_transfer_target(nd->r));
    out("\n");
}

static void cmd_state_machine(void)
{
    for (int i = 1; i <= W.n; i++)
        out("%d: applied=%llu \"%s\"\n", i, (unsigned long long)W.nodes[i].sm.applied,
            W.nodes[i].sm.buf.s ? W.nodes[i].sm.buf.s : "");
}

/* Safety checks run after every command (Figure 3.2's guarantees): at most
 * one leader per term, and no two nodes disagree on a committed entry. */
static void check_invariants(void)
{
    for (int a = 1; a <= W.n; a++) {
        if (!W.nodes[a].alive)
            continue;
        for (int b = a + 1; b <= W.n; b++) {
            if (!W.nodes[b].alive)
                continue;
            struct raft *ra = W.nodes[a].r, *rb = W.nodes[b].r;
            if (raft_role(ra) == RAFT_LEADER && raft_role(rb) == RAFT_LEADER &&
                raft_current_term(ra) == raft_current_term(rb))
                out("INVARIANT VIOLATED: %d and %d both lead term %llu\n", a, b,
                    (unsigned long long)raft_current_term(ra));
            raft_index c = raft_commit_index(ra) < raft_commit_index(rb) ? raft_commit_index(ra)
                                                                         : raft_commit_index(rb);
            for (raft_index i = 1; i <= c; i++) {
                raft_term ta = raft_term_at(ra, i), tb = raft_term_at(rb, i);
                if (ta && tb && ta != tb) {
                    out("INVARIANT VIOLATED: committed entry %llu differs: %d has term %llu, %d has %llu\n",
                        (unsigned long long)i, a, (unsigned long long)ta, b, (unsigned long long)tb);
                    break;
                }
            }
        }
    }
}

static void run_command(char *line)
{
    struct cmd c = { .n = 0 };
    for (char *save = NULL, *t = strtok_r(line, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
        if (c.n == SC_MAX_TOKENS)
            FAIL("more than %d words in one command", SC_MAX_TOKENS);
        c.tok[c.n++] = t;
    }
    if (c.n == 0)
        FAIL("empty command");
    const char *name = c.tok[0];
    if (!strcmp(name, "add-nodes")) cmd_add_nodes(&c);
    else if (!strcmp(name, "log")) cmd_log(&c);
    else if (!strcmp(name, "campaign")) cmd_campaign(&c);
    else if (!strcmp(name, "tick")) cmd_tick(&c, "n");
    else if (!strcmp(name, "tick-election")) cmd_tick(&c, "election");
    else if (!strcmp(name, "tick-heartbeat")) cmd_tick(&c, "heartbeat");
    else if (!strcmp(name, "propose")) cmd_propose(&c);
    else if (!strcmp(name, "stabilize")) stabilize();
    else if (!strcmp(name, "deliver")) cmd_deliver(&c, false);
    else if (!strcmp(name, "drop")) cmd_deliver(&c, true);
    else if (!strcmp(name, "corrupt")) cmd_corrupt(&c);
    else if (!strcmp(name, "duplicate")) cmd_duplicate(&c);
    else if (!strcmp(name, "partition")) cmd_partition(&c);
    else if (!strcmp(name, "heal")) memset(W.cut, 0, sizeof W.cut);
    else if (!strcmp(name, "crash")) cmd_crash(&c);
    else if (!strcmp(name, "restart")) cmd_restart(&c);
    else if (!strcmp(name, "read-index")) cmd_read_index(&c);
    else if (!strcmp(name, "transfer-leader")) cmd_transfer(&c);
    else if (!strcmp(name, "add-learner")) cmd_member(&c, RAFT_ADD_LEARNER);
    else if (!strcmp(name, "add-voter")) cmd_member(&c, RAFT_ADD_VOTER);
    else if (!strcmp(name, "promote")) cmd_member(&c, RAFT_PROMOTE);
    else if (!strcmp(name, "remove")) cmd_member(&c, RAFT_REMOVE);
    else if (!strcmp(name, "snapshot")) cmd_snapshot(&c);
    else if (!strcmp(name, "raft-log")) cmd_raft_log(&c);
    else if (!strcmp(name, "status")) cmd_status(&c);
    else if (!strcmp(name, "state-machine")) cmd_state_machine();
    else if (!strcmp(name, "reset")) world_reset();
    else if (!strcmp(name, "raft-state")) {
        for (int i = 1; i <= W.n; i++)
            print_state_line(i);
    } else if (!strcmp(name, "ready") || !strcmp(name, "persist") || !strcmp(name, "process")) {
        int id;
        if (!live_node(&c, 1, &id))
            return;
        if (!strcmp(name, "ready")) {
            if (W.nodes[id].rd_out)
                FAIL("node %d already holds a ready; persist it first", id);
            if (!ready_take(id, true))
                out("%d: nothing ready\n", id);
        } else if (!strcmp(name, "persist")) {
            if (!W.nodes[id].rd_out)
                FAIL("node %d holds no ready", id);
            ready_finish(id);
        } else if (process(id, true) == 0 && !W.nodes[id].rd_out) {
            out("%d: nothing ready\n", id);
        }
    } else {
        FAIL("unknown command '%s' (see docs/scenarios.md)", name);
    }
}

/* ---- Transcript files --------------------------------------------------------- */

/* A block: text kept verbatim (comments, blank lines, the command, "----"),
 * then the expected output, which --rewrite replaces. */
struct block {
    size_t line;        /* line number of the command */
    char *verbatim;     /* everything up to and including the "----" line */
    char *command;
    char *expected;     /* lines after "----" up to a blank line, each ending in \n */
    char *actual;
};

struct transcript {
    struct block *b;
    size_t n;
    char *tail;         /* trailing text after the last block (comments) */
};

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct sbuf b = { 0 };
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        sb_grow(&b, n);
        memcpy(b.s + b.n, chunk, n);
        b.n += n;
        b.s[b.n] = 0;
    }
    fclose(f);
    if (!b.s) {
        b.s = xmalloc(1);
        b.s[0] = 0;
    }
    return b.s;
}

static char *strndup_x(const char *s, size_t n)
{
    char *c = xmalloc(n + 1);
    memcpy(c, s, n);
    c[n] = 0;
    return c;
}

static void transcript_free(struct transcript *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->b[i].verbatim);
        free(t->b[i].command);
        free(t->b[i].expected);
        free(t->b[i].actual);
    }
    free(t->b);
    free(t->tail);
    memset(t, 0, sizeof *t);
}

/* Splits a file into blocks. Returns NULL on success or a message. */
static const char *transcript_parse(const char *text, struct transcript *t, size_t *err_line)
{
    memset(t, 0, sizeof *t);
    const char *p = text, *pending = text; /* start of the verbatim not yet in a block */
    size_t line = 1, cmd_line = 0;
    const char *cmd = NULL;
    size_t cmd_len = 0;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        const char *next = eol ? eol + 1 : p + len;
        bool blank = len == 0;
        bool comment = len && p[0] == '#';
        if (len == 4 && !strncmp(p, "----", 4)) {
            if (!cmd) {
                *err_line = line;
                return "'----' without a command before it";
            }
            /* The expected output runs to the next blank line or the end. */
            const char *e = next;
            size_t eline = line + 1;
            while (*e && *e != '\n') {
                const char *eeol = strchr(e, '\n');
                e = eeol ? eeol + 1 : e + strlen(e);
                eline++;
            }
            t->b = realloc(t->b, (t->n + 1) * sizeof *t->b);
            if (!t->b)
                exit(2);
            struct block *b = &t->b[t->n++];
            memset(b, 0, sizeof *b);
            b->line = cmd_line;
            b->verbatim = strndup_x(pending, (size_t)(next - pending));
            b->command = strndup_x(cmd, cmd_len);
            b->expected = strndup_x(next, (size_t)(e - next));
            if (b->expected[0] && b->expected[strlen(b->expected) - 1] != '\n') {
                /* Normalize a missing final newline. */
                size_t l = strlen(b->expected);
                char *x = xmalloc(l + 2);
                memcpy(x, b->expected, l);
                x[l] = '\n';
                x[l + 1] = 0;
                free(b->expected);
                b->expected = x;
            }
            pending = e;
            p = e;
            line = eline;
            cmd = NULL;
            continue;
        }
        if (!blank && !comment) {
            if (cmd) {
                *err_line = line;
                return "two commands in one block (each command needs its own '----')";
            }
            cmd = p;
            cmd_len = len;
            cmd_line = line;
        }
        p = next;
        line++;
    }
    if (cmd) {
        *err_line = cmd_line;
        return "command without '----' after it";
    }
    t->tail = strdup(pending);
    return NULL;
}

/* Runs a transcript in a fresh world, filling each block's actual output. */
static void transcript_run(struct transcript *t)
{
    world_reset();
    for (size_t i = 0; i < t->n; i++) {
        struct sbuf o = { 0 };
        sb_grow(&o, 0);
        o.s[0] = 0;
        W.out = &o;
        char *line = strdup(t->b[i].command);
        run_command(line);
        free(line);
        check_invariants();
        free(t->b[i].actual);
        t->b[i].actual = o.s;
    }
    W.out = NULL;
    world_reset();
}

/* Splits text into lines (pointers into a copy). */
static size_t split_lines(char *s, char ***lines)
{
    size_t n = 0, cap = 16;
    *lines = xmalloc(cap * sizeof **lines);
    while (*s) {
        char *eol = strchr(s, '\n');
        if (n == cap) {
            cap *= 2;
            *lines = realloc(*lines, cap * sizeof **lines);
        }
        (*lines)[n++] = s;
        if (!eol)
            break;
        *eol = 0;
        s = eol + 1;
    }
    return n;
}

/* Prints a line diff of expected vs actual (longest common subsequence). */
static void print_diff(const char *expected, const char *actual)
{
    char *ec = strdup(expected), *ac = strdup(actual);
    char **el, **al;
    size_t ne = split_lines(ec, &el), na = split_lines(ac, &al);
    unsigned *lcs = calloc((ne + 1) * (na + 1), sizeof *lcs);
    if (!lcs)
        exit(2);
#define L(i, j) lcs[(i) * (na + 1) + (j)]
    for (size_t i = ne; i-- > 0;)
        for (size_t j = na; j-- > 0;)
            L(i, j) = !strcmp(el[i], al[j]) ? L(i + 1, j + 1) + 1
                      : L(i + 1, j) > L(i, j + 1) ? L(i + 1, j) : L(i, j + 1);
    size_t i = 0, j = 0;
    fprintf(stderr, "    --- expected\n    +++ actual\n");
    while (i < ne || j < na) {
        if (i < ne && j < na && !strcmp(el[i], al[j])) {
            fprintf(stderr, "     %s\n", el[i]);
            i++, j++;
        } else if (j < na && (i == ne || L(i, j + 1) > L(i + 1, j))) {
            fprintf(stderr, "    +%s\n", al[j++]);
        } else {
            fprintf(stderr, "    -%s\n", el[i++]);
        }
    }
#undef L
    free(lcs);
    free(el);
    free(al);
    free(ec);
    free(ac);
}

static int transcript_check(const char *path, const struct transcript *t)
{
    int bad = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (!strcmp(t->b[i].expected, t->b[i].actual))
            continue;
        if (bad < 5) {
            fprintf(stderr, "  %s:%zu: %s\n", path, t->b[i].line, t->b[i].command);
            print_diff(t->b[i].expected, t->b[i].actual);
        }
        bad++;
    }
    if (bad > 5)
        fprintf(stderr, "  %s: %d more blocks differ\n", path, bad - 5);
    return bad;
}

static int transcript_write(const char *path, const struct transcript *t)
{
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        fprintf(stderr, "  cannot write %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < t->n; i++) {
        fputs(t->b[i].verbatim, f);
        fputs(t->b[i].actual, f);
    }
    fputs(t->tail, f);
    if (fclose(f) || rename(tmp, path)) {
        fprintf(stderr, "  cannot replace %s: %s\n", path, strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}

/* Runs one file: 0 if it matches (or was rewritten), else 1. */
static int run_file(const char *path, bool rewrite)
{
    char *text = read_file(path);
    if (!text) {
        fprintf(stderr, "  cannot read %s: %s\n", path, strerror(errno));
        return 1;
    }
    struct transcript t;
    size_t err_line = 0;
    const char *err = transcript_parse(text, &t, &err_line);
    free(text);
    if (err) {
        fprintf(stderr, "  %s:%zu: %s\n", path, err_line, err);
        transcript_free(&t);
        return 1;
    }
    transcript_run(&t);
    int rc = 0;
    if (rewrite) {
        rc = transcript_write(path, &t) ? 1 : 0;
    } else if (transcript_check(path, &t)) {
        fprintf(stderr, "  (to accept the new output: REWRITE=1 %s, then review git diff)\n", "build/tests/test_scenarios");
        rc = 1;
    }
    transcript_free(&t);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Self-checks of the interpreter: a transcript whose expected output was
 * changed must fail, and a run must print the same thing twice. */
static void self_check(const char *path)
{
    char *text = read_file(path);
    REQUIRE(text != NULL);
    struct transcript t;
    size_t err_line;
    REQUIRE(transcript_parse(text, &t, &err_line) == NULL);
    free(text);
    transcript_run(&t);
    char **first = xmalloc((t.n + 1) * sizeof *first);
    for (size_t i = 0; i < t.n; i++)
        first[i] = strdup(t.b[i].actual);
    transcript_run(&t);
    bool same = true;
    size_t victim = t.n;
    for (size_t i = 0; i < t.n; i++) {
        same = same && !strcmp(first[i], t.b[i].actual);
        if (victim == t.n && t.b[i].actual[0])
            victim = i;
        free(first[i]);
    }
    free(first);
    CHECK(same);
    REQUIRE(victim < t.n);
    /* Change one character of one expected line: the check must notice. */
    free(t.b[victim].expected);
    t.b[victim].expected = strdup(t.b[victim].actual);
    t.b[victim].expected[0] = t.b[victim].expected[0] == 'X' ? 'Y' : 'X';
    fprintf(stderr, "  (self-check: the diff below is expected)\n");
    CHECK(transcript_check(path, &t) == 1);
    transcript_free(&t);
}

/* Malformed transcript files are reported with their line, not run. */
TEST(parser_rejects_malformed_files)
{
    static const struct { const char *text; size_t line; } bad[] = {
        { "----\n", 1 },
        { "# c\ncampaign 1\n", 2 },
        { "campaign 1\nstabilize\n----\n", 2 },
        { "add-nodes 3\n----\nout\n\ncampaign 1", 5 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct transcript t;
        size_t line = 0;
        CHECK(transcript_parse(bad[i].text, &t, &line) != NULL);
        CHECK_EQ_U(line, bad[i].line);
        transcript_free(&t);
    }
    struct transcript t;
    size_t line = 0;
    REQUIRE(transcript_parse("# c\nadd-nodes 1\n----\n1: x\n\n# tail\n", &t, &line) == NULL);
    CHECK_EQ_U(t.n, 1);
    CHECK_STR(t.b[0].command, "add-nodes 1");
    CHECK_STR(t.b[0].expected, "1: x\n");
    CHECK_STR(t.tail, "\n# tail\n");
    transcript_free(&t);
}

static const char *self_check_path;
TEST(interpreter_detects_changes_and_is_deterministic)
{
    self_check(self_check_path);
}

int main(int argc, char **argv)
{
    bool rewrite = getenv("REWRITE") && !strcmp(getenv("REWRITE"), "1");
    const char *only[64];
    int n_only = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rewrite"))
            rewrite = true;
        else if (n_only < 64)
            only[n_only++] = argv[i];
    }
    DIR *dir = opendir(SC_DIR);
    if (!dir) {
        fprintf(stderr, "test_scenarios: cannot open %s (run from the repository root): %s\n", SC_DIR,
                strerror(errno));
        harness_failed++;
        return HARNESS_END();
    }
    char *names[256];
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(dir)) && n < 256) {
        size_t l = strlen(de->d_name);
        if (l > 4 && !strcmp(de->d_name + l - 4, ".txt"))
            names[n++] = strdup(de->d_name);
    }
    closedir(dir);
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        char base[256];
        snprintf(base, sizeof base, "%.*s", (int)(strlen(names[i]) - 4), names[i]);
        bool selected = n_only == 0;
        for (int k = 0; k < n_only; k++)
            selected = selected || !strcmp(only[k], base) || !strcmp(only[k], names[i]);
        if (selected) {
            char path[512];
            snprintf(path, sizeof path, "%s/%s", SC_DIR, names[i]);
            harness_cur_name = names[i];
            if (run_file(path, rewrite)) {
                harness_failed++;
                fprintf(stderr, "FAIL %s\n", path);
            } else {
                harness_passed++;
                fprintf(stderr, "%s %s\n", rewrite ? "rewrote" : "ok  ", path);
            }
        }
    }
    if (n == 0) {
        fprintf(stderr, "test_scenarios: no transcripts in %s\n", SC_DIR);
        harness_failed++;
    } else if (n_only == 0 && !rewrite) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", SC_DIR, names[0]);
        self_check_path = path;
        RUN(interpreter_detects_changes_and_is_deterministic);
        RUN(parser_rejects_malformed_files);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    return HARNESS_END();
}
