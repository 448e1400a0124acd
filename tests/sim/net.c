/*
 * net.c — the event queue and the simulated network.
 *
 * Events (ticks, deliveries, fsync completions, restarts, faults, client
 * steps) sit in one binary heap ordered by (virtual time, sequence number),
 * so equal times keep their scheduling order and a seed replays exactly.
 *
 * Every message goes through the real codec: raft_codec_encode when it
 * leaves (after the sender's host fills snapshot chunk bytes from the
 * snapshot it holds), raft_codec_decode when it arrives, so the frame is a
 * deep copy and the codec is exercised on every message. On the way the
 * network may lose it, duplicate it, delay it (usually a few ms, sometimes
 * far longer, which reorders), flip a bit in it (the frame checksum must
 * catch that), or drop it at a partition: cut[a][b] loses a's messages to b,
 * which gives symmetric and one-way partitions.
 */
#include <stdlib.h>
#include <string.h>

#include "raft_codec.h"
#include "sim.h"

/* ---- Heap ------------------------------------------------------------------- */

static bool ev_before(const struct sim_event *a, const struct sim_event *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

void sim_schedule(struct sim *s, struct sim_event ev)
{
    ev.seq = s->ev_seq++;
    if (s->n_heap == s->cap_heap) {
        s->cap_heap = s->cap_heap ? s->cap_heap * 2 : 1024;
        s->heap = realloc(s->heap, s->cap_heap * sizeof *s->heap);
        if (!s->heap)
            abort();
    }
    size_t i = s->n_heap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!ev_before(&ev, &s->heap[parent]))
            break;
        s->heap[i] = s->heap[parent];
        i = parent;
    }
    s->heap[i] = ev;
}

bool sim_next_event(struct sim *s, struct sim_event *ev)
{
    if (s->n_heap == 0)
        return false;
    *ev = s->heap[0];
    struct sim_event last = s->heap[--s->n_heap];
    size_t i = 0, n = s->n_heap;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const struct sim_event *best = &last;
        if (l < n && ev_before(&s->heap[l], best)) {
            m = l;
            best = &s->heap[l];
        }
        if (r < n && ev_before(&s->heap[r], best))
            m = r;
        if (m == i)
            break;
        s->heap[i] = s->heap[m];
        i = m;
    }
    if (n)
        s->heap[i] = last;
    return true;
}

void sim_events_free(struct sim *s)
{
    for (size_t i = 0; i < s->n_heap; i++)
        free(s->heap[i].frame);
    free(s->heap);
    s->heap = NULL;
    s->n_heap = s->cap_heap = 0;
}

/* ---- Trace text ---------------------------------------------------------------- */

const char *sim_msg_desc(const struct raft_message *m, char *buf, size_t cap)
{
    const char *t = raft_msg_type_name(m->type);
    unsigned long long term = m->term;
    switch (m->type) {
    case RAFT_MSG_APPEND:
        if (m->n_entries)
            snprintf(buf, cap, "%s %llu->%llu term %llu prev %llu/%llu commit %llu entries %llu..%llu",
                     t, (unsigned long long)m->from, (unsigned long long)m->to, term,
                     (unsigned long long)m->prev_index, (unsigned long long)m->prev_term,
                     (unsigned long long)m->commit, (unsigned long long)m->entries[0].index,
                     (unsigned long long)m->entries[m->n_entries - 1].index);
        else
            snprintf(buf, cap, "%s %llu->%llu term %llu prev %llu/%llu commit %llu (empty)", t,
                     (unsigned long long)m->from, (unsigned long long)m->to, term,
                     (unsigned long long)m->prev_index, (unsigned long long)m->prev_term,
                     (unsigned long long)m->commit);
        break;
    case RAFT_MSG_APPEND_RESP:
        snprintf(buf, cap, "%s %llu->%llu term %llu %s index %llu hint %llu/%llu", t,
                 (unsigned long long)m->from, (unsigned long long)m->to, term,
                 m->reject ? "REJECT" : "ok", (unsigned long long)m->index,
                 (unsigned long long)m->hint_index, (unsigned long long)m->hint_term);
        break;
    case RAFT_MSG_VOTE:
    case RAFT_MSG_PREVOTE:
        snprintf(buf, cap, "%s %llu->%llu term %llu last %llu/%llu%s", t, (unsigned long long)m->from,
                 (unsigned long long)m->to, term, (unsigned long long)m->last_index,
                 (unsigned long long)m->last_term, m->transfer ? " transfer" : "");
        break;
    case RAFT_MSG_VOTE_RESP:
    case RAFT_MSG_PREVOTE_RESP:
        snprintf(buf, cap, "%s %llu->%llu term %llu %s", t, (unsigned long long)m->from,
                 (unsigned long long)m->to, term, m->reject ? "REJECT" : "GRANT");
        break;
    case RAFT_MSG_HEARTBEAT:
    case RAFT_MSG_HEARTBEAT_RESP:
        snprintf(buf, cap, "%s %llu->%llu term %llu commit %llu round %llu", t, (unsigned long long)m->from,
                 (unsigned long long)m->to, term, (unsigned long long)m->commit,
                 (unsigned long long)m->context);
        break;
    case RAFT_MSG_SNAPSHOT:
    case RAFT_MSG_SNAPSHOT_RESP:
        snprintf(buf, cap, "%s %llu->%llu term %llu snap %llu/%llu offset %llu len %u%s%s", t,
                 (unsigned long long)m->from, (unsigned long long)m->to, term,
                 (unsigned long long)(m->type == RAFT_MSG_SNAPSHOT ? m->snapshot.index : m->index),
                 (unsigned long long)m->snapshot.term, (unsigned long long)m->offset, m->len,
                 m->done ? " done" : "", m->reject ? " REJECT" : "");
        break;
    default:
        snprintf(buf, cap, "%s %llu->%llu term %llu ctx %llu index %llu%s", t, (unsigned long long)m->from,
                 (unsigned long long)m->to, term, (unsigned long long)m->context,
                 (unsigned long long)m->index, m->reject ? " REJECT" : "");
        break;
    }
    return buf;
}

/* ---- Sending and delivering ------------------------------------------------------ */

static uint64_t latency(struct sim *s)
{
    if (s->faults_on && sim_chance(&s->rng, s->p.long_delay_pm))
        return sim_range(&s->rng, 20000, 800000); /* a straggler: reorders */
    return sim_range(&s->rng, s->p.lat_min, s->p.lat_max);
}

static void put_on_wire(struct sim *s, int from, int to, const uint8_t *frame, size_t len)
{
    uint8_t *copy = malloc(len);
    if (!copy)
        abort();
    memcpy(copy, frame, len);
    if (s->faults_on && sim_chance(&s->rng, s->p.corrupt_pm))
        copy[sim_range(&s->rng, 0, len - 1)] ^= (uint8_t)(1u << sim_range(&s->rng, 0, 7));
    struct sim_event ev = { .at = s->now + latency(s), .type = EV_DELIVER, .node = to,
                            .frame = copy, .frame_len = len, .from = from };
    sim_schedule(s, ev);
}

static void net_send(struct sim *s, struct sim_node *from, struct raft_message m, uint8_t **rotten_out);

void sim_net_send(struct sim *s, struct sim_node *from, const struct raft_message *m0)
{
    uint8_t *rotten = NULL;
    net_send(s, from, *m0, &rotten);
    free(rotten);
}

static void net_send(struct sim *s, struct sim_node *from, struct raft_message m, uint8_t **rotten_out)
{
    char desc[256];
    if (m.type == RAFT_MSG_SNAPSHOT) {
        /* The core names the bytes; the host reads them from its snapshot. */
        const struct sim_snapshot *snap = &from->disk.snap;
        if (from->disk.prev.have && from->disk.prev.meta.index == m.snapshot.index)
            snap = &from->disk.prev; /* an older transfer still going on */
        if (!snap->have || snap->meta.index != m.snapshot.index || snap->meta.term != m.snapshot.term ||
            m.offset + m.len > snap->meta.size) {
            SIM_TRACE(s, "n%llu drops %s: no such snapshot on its disk", (unsigned long long)from->id,
                      sim_msg_desc(&m, desc, sizeof desc));
            return;
        }
        m.data = snap->data + m.offset;
        if (m.len && s->faults_on && sim_chance(&s->rng, s->p.snap_rot_pm)) {
            /* A bad sector the drive did not report: the bytes read back
             * differ from those written. The frame's CRC covers the damage
             * (it is computed after the read); only the snapshot's own
             * CRC32C, checked by the receiver, can catch it. */
            uint8_t *rotten = *rotten_out = malloc(m.len); /* the caller frees it */
            if (!rotten)
                abort();
            memcpy(rotten, m.data, m.len);
            rotten[sim_range(&s->rng, 0, m.len - 1)] ^= (uint8_t)(1u << sim_range(&s->rng, 0, 7));
            m.data = rotten;
            s->snap_rot++;
            SIM_TRACE(s, "n%llu reads a rotten snapshot chunk: %s", (unsigned long long)from->id,
                      sim_msg_desc(&m, desc, sizeof desc));
        }
    }
    check_send(s, from, &m);
    int to = (int)m.to - 1;
    s->msgs_sent++;
    if (to < 0 || to >= SIM_MAX_NODES) {
        s->msgs_lost++;
        return;
    }
    size_t size = raft_codec_size(&m);
    uint8_t *frame = malloc(size ? size : 1);
    int len = frame ? raft_codec_encode(&m, frame, size) : RAFT_ENOMEM;
    if (len < 0) {
        sim_fail(s, "codec: encoding %s failed: %s", sim_msg_desc(&m, desc, sizeof desc), raft_strerror(len));
        free(frame);
        return;
    }
    if (s->cut[from->slot][to] || (s->faults_on && sim_chance(&s->rng, s->p.loss_pm))) {
        s->msgs_lost++;
        SIM_TRACE(s, "lost %s", sim_msg_desc(&m, desc, sizeof desc));
        free(frame);
        return;
    }
    put_on_wire(s, from->slot, to, frame, (size_t)len);
    if (s->faults_on && sim_chance(&s->rng, s->p.dup_pm))
        put_on_wire(s, from->slot, to, frame, (size_t)len);
    free(frame);
}

void sim_net_deliver(struct sim *s, struct sim_event *ev)
{
    struct sim_node *n = &s->nodes[ev->node];
    if (!n->alive || s->cut[ev->from][ev->node]) {
        s->msgs_lost++;
        return;
    }
    long fsz = raft_codec_frame_size(ev->frame, ev->frame_len);
    struct raft_message m;
    int rc = fsz == (long)ev->frame_len ? raft_codec_decode(ev->frame, ev->frame_len, &m) : RAFT_EMALFORMED;
    if (rc != RAFT_OK) {
        /* Only a frame the network damaged may fail to decode. */
        s->msgs_lost++;
        SIM_TRACE(s, "n%llu drops a damaged frame from n%d: %s", (unsigned long long)n->id, ev->from + 1,
                  raft_strerror(rc));
        return;
    }
    s->msgs_delivered++;
    sim_node_step(s, n, &m);
    raft_codec_release(&m);
}
