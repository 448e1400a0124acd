/*
 * transport.c — the outbound half of the peer transport and the object that
 * owns everything: start and stop, the peer table, each peer's bounded queue
 * of encoded frames, dialing (resolve, connect, handshake) with a connect
 * timeout, exponential backoff with jitter, the keepalive that detects a
 * silent partition, and the batched writes. Inbound connections are conn.c.
 *
 * One peer's life:  IDLE -> RESOLVING -> CONNECTING -> CHALLENGE -> WELCOME
 * -> CONNECTED, and from any of them on failure -> BACKOFF -> RESOLVING ...
 * The peer's one timer is the deadline of the whole attempt (connect_timeout_ms
 * from RESOLVING to CONNECTED), then the keepalive tick, then the backoff.
 */
#include "net/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "raft_codec.h"

static void peer_dial(struct net_peer *p);
static void peer_flush(struct net_peer *p);
static void on_flush(uv_idle_t *h);

/* ---- Small helpers -------------------------------------------------------- */

void net_options_default(struct net_options *o, raft_id self, const char *listen_addr)
{
    memset(o, 0, sizeof *o);
    o->self = self;
    o->listen_addr = listen_addr;
    o->max_queue_bytes = 8u * 1024 * 1024;
    o->max_frame_bytes = RAFT_CODEC_MAX_FRAME;
    o->max_inbound_bytes = 32u * 1024 * 1024;
    o->connect_timeout_ms = 1000;
    o->idle_timeout_ms = 2000;
    o->backoff_min_ms = 50;
    o->backoff_max_ms = 1000;
    o->seed = 1;
}

static uint64_t rng_next(struct net *n)
{
    /* xorshift64*: jitter only needs to decorrelate peers that failed together. */
    uint64_t x = n->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    n->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

void net__pending_done(struct net *n)
{
    if (--n->pending == 0 && n->stopping) {
        void (*done)(void *) = n->done;
        void *arg = n->done_arg;
        if (n->secret) {
            sodium_memzero(n->secret, n->o.secret_len);
            free(n->secret);
        }
        free(n->peers);
        free(n->allowed);
        free(n);
        if (done)
            done(arg);
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    net__pending_done(h->data);
}

struct small_write {
    uv_write_t req;
    uint8_t data[];
};

static void on_small_written(uv_write_t *req, int status)
{
    free(req); /* a failed write shows up as a read error or timeout on the same stream */
}

/* Writes a short control frame: at once if the socket takes it, else queued
 * in libuv with its own copy. Returns 0 or a libuv error. */
int net__write_small(uv_stream_t *s, const uint8_t *data, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int r = uv_stream_get_write_queue_size(s) == 0 ? uv_try_write(s, &b, 1) : UV_EAGAIN;
    if (r == (int)len)
        return 0;
    if (r < 0 && r != UV_EAGAIN)
        return r;
    size_t done = r > 0 ? (size_t)r : 0;
    struct small_write *w = malloc(sizeof *w + (len - done));
    if (!w)
        return UV_ENOMEM;
    memcpy(w->data, data + done, len - done);
    b = uv_buf_init((char *)w->data, (unsigned)(len - done));
    r = uv_write(&w->req, s, &b, 1, on_small_written);
    if (r < 0)
        free(w);
    return r;
}

struct net_peer *net__find_peer(const struct net *n, raft_id id)
{
    for (size_t i = 0; i < n->n_peers; i++)
        if (n->peers[i]->id == id)
            return n->peers[i];
    return NULL;
}

static struct net_chunk *chunk_new(size_t cap)
{
    struct net_chunk *c = malloc(sizeof *c + cap);
    if (c) {
        c->next = NULL;
        c->len = c->off = 0;
        c->cap = cap;
        c->frames = 0;
        c->sealed = 0;
    }
    return c;
}

static void queue_append(struct net_peer *p, struct net_chunk *c)
{
    if (p->tail)
        p->tail->next = c;
    else
        p->head = c;
    p->tail = c;
}

static void free_chunks(struct net_chunk *c)
{
    while (c) {
        struct net_chunk *next = c->next;
        free(c);
        c = next;
    }
}

/* ---- Failure, backoff, retry ---------------------------------------------- */

static void on_out_closed(uv_handle_t *h)
{
    struct net_out *out = h->data;
    struct net *n = out->net;
    free(out);
    net__pending_done(n);
}

/* Closes the peer's connection (if any). A write in flight finishes with
 * UV_ECANCELED and frees its own chunks; its bytes leave the bound now.
 * A queued chunk that was partly written cannot go on a new connection (the
 * stream would resume mid-frame), so it is dropped. */
static void peer_drop_conn(struct net_peer *p)
{
    struct net_out *out = p->out;
    if (out) {
        out->peer = NULL;
        p->out = NULL;
        uv_close((uv_handle_t *)&out->tcp, on_out_closed);
    }
    p->queued_bytes -= p->inflight_bytes;
    p->inflight_bytes = 0;
    p->writing = 0;
    p->secure = 0;
    sodium_memzero(&p->tx, sizeof p->tx);
    sodium_memzero(&p->rx, sizeof p->rx);
    /* A sealed chunk was sealed for this connection's keys: it cannot go on
     * the next one either. Sealed chunks are only ever at the head. */
    while (p->head && (p->head->off > 0 || p->head->sealed)) {
        struct net_chunk *c = p->head;
        p->head = c->next;
        if (!p->head)
            p->tail = NULL;
        p->queued_bytes -= c->len;
        p->net->stats.dropped_disconnect += c->frames;
        free(c);
    }
    if (p->resolve) {
        p->resolve->peer = NULL;
        uv_cancel((uv_req_t *)&p->resolve->req);
        p->resolve = NULL;
    }
}

static void on_peer_timer(uv_timer_t *t);

unsigned net__backoff_ms(const struct net_options *o, unsigned failures, uint64_t rnd)
{
    uint64_t d = o->backoff_min_ms ? o->backoff_min_ms : 1;
    for (unsigned i = 1; i < failures && d < o->backoff_max_ms; i++)
        d *= 2;
    if (d > o->backoff_max_ms)
        d = o->backoff_max_ms;
    /* Jitter: uniformly in [d/2, d], so peers that failed together spread out. */
    uint64_t half = d / 2;
    return (unsigned)(d - half + (half ? rnd % (half + 1) : 0));
}

/* Records why, drops the connection and schedules the next attempt. */
static void peer_fail(struct net_peer *p, const char *why)
{
    struct net *n = p->net;
    snprintf(p->last_error, sizeof p->last_error, "%s", why);
    if (p->state == NET_PEER_CONNECTED)
        n->stats.disconnects++;
    else
        n->stats.dial_failures++;
    peer_drop_conn(p);
    p->attempts++;
    p->addr_index++;
    p->state = NET_PEER_BACKOFF;
    uv_timer_start(&p->timer, on_peer_timer, net__backoff_ms(&n->o, p->attempts, rng_next(n)), 0);
}

static void on_peer_timer(uv_timer_t *t)
{
    struct net_peer *p = t->data;
    struct net *n = p->net;
    char why[NET_ERR_MAX];
    switch (p->state) {
    case NET_PEER_BACKOFF:
        p->state = NET_PEER_IDLE;
        peer_dial(p);
        break;
    case NET_PEER_RESOLVING:
    case NET_PEER_CONNECTING:
    case NET_PEER_CHALLENGE:
    case NET_PEER_WELCOME:
        snprintf(why, sizeof why, "no handshake with node %llu at %s within %u ms (connect timeout)",
                 (unsigned long long)p->id, p->addr, n->o.connect_timeout_ms);
        peer_fail(p, why);
        break;
    case NET_PEER_CONNECTED: {
        /* Keepalive tick (every idle/4): a link on which no PONG (nor anything
         * else) came back for idle_timeout_ms is dead or partitioned. */
        uint64_t now = uv_now(n->loop);
        /* Timers run before I/O in a loop turn, so after the loop itself was
         * stalled a PONG may be waiting unread: judge only on the second
         * tick in a row that finds the link quiet (a read in between clears
         * the suspicion). Detection takes idle_timeout_ms plus one tick. */
        if (now - p->last_rx < n->o.idle_timeout_ms) {
            p->suspect = 0;
        } else if (!p->suspect) {
            p->suspect = 1;
        } else {
            n->stats.keepalive_timeouts++;
            snprintf(why, sizeof why, "nothing received from node %llu at %s for %u ms (keepalive timeout)",
                     (unsigned long long)p->id, p->addr, n->o.idle_timeout_ms);
            peer_fail(p, why);
            break;
        }
        uint8_t buf[NET_WIRE_MAX_FRAME];
        struct net_wire_msg w = { .kind = NET_WIRE_PING, .seq = ++p->ping_seq };
        size_t len = net_wire_encode(&w, buf, sizeof buf);
        /* The ping goes into the queue behind whole frames, in the reserve
         * that net_send leaves free. If even that is full the link has not
         * drained for several ticks; no ping is needed to time it out. */
        if (p->queued_bytes + len > n->o.max_queue_bytes)
            break;
        struct net_chunk *c = p->tail;
        if (!c || c->sealed || c->cap - c->len < len) {
            if (!(c = chunk_new(NET_CHUNK_BYTES)))
                break;
            queue_append(p, c);
        }
        memcpy(c->data + c->len, buf, len);
        c->len += len;
        p->queued_bytes += len;
        peer_flush(p);
        break;
    }
    case NET_PEER_IDLE:
        break;
    }
}

/* ---- Dialing and the dialer's side of the handshake ------------------------ */

static void out_fail_uv(struct net_peer *p, const char *what, int status)
{
    char why[NET_ERR_MAX];
    snprintf(why, sizeof why, "%s node %llu at %s: %s", what, (unsigned long long)p->id, p->addr,
             uv_strerror(status));
    peer_fail(p, why);
}

static void on_out_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct net_out *out = h->data;
    *b = uv_buf_init((char *)out->rbuf + out->rlen, (unsigned)(sizeof out->rbuf - out->rlen));
}

static void peer_connected(struct net_peer *p)
{
    struct net *n = p->net;
    if (n->secret) {
        net_session_keys(n->secret, n->o.secret_len, &p->hs, &p->tx, &p->rx);
        p->secure = 1; /* every byte after the WELCOME is a sealed record, both ways */
    }
    p->state = NET_PEER_CONNECTED;
    p->attempts = 0;
    p->was_connected = 1;
    p->last_error[0] = 0;
    p->last_rx = uv_now(n->loop);
    p->suspect = 0;
    n->stats.connects++;
    unsigned tick = n->o.idle_timeout_ms / 4 ? n->o.idle_timeout_ms / 4 : 1;
    uv_timer_start(&p->timer, on_peer_timer, tick, tick);
    if (p->head)
        peer_flush(p);
}

/* One control frame from the acceptor. Returns 0, or -1 if the peer failed. */
static int out_handle(struct net_peer *p, const struct net_wire_msg *w)
{
    struct net *n = p->net;
    char why[NET_ERR_MAX];
    if (w->kind == NET_WIRE_CHALLENGE && p->state == NET_PEER_CHALLENGE) {
        /* Without a secret we still send a HELLO (MAC all zeros) and let the
         * acceptor refuse it: it counts the refusal and we log its reason. But
         * with a secret we never talk to a node that does not prove it. */
        if (n->secret && !(w->flags & NET_CHALLENGE_SECRET)) {
            n->stats.dropped_unauthenticated++;
            snprintf(why, sizeof why, "node %llu at %s does not use a secret but this node has one: "
                     "give every node the same --secret-file", (unsigned long long)p->id, p->addr);
            peer_fail(p, why);
            return -1;
        }
        memset(&p->hs, 0, sizeof p->hs);
        p->hs.from = n->o.self;
        p->hs.to = p->id;
        memcpy(p->hs.acceptor_nonce, w->nonce, NET_NONCE_BYTES);
        randombytes_buf(p->hs.dialer_nonce, NET_NONCE_BYTES);
        p->acceptor_identity = w->identity;
        net_wire_put_identity(&w->identity, p->hs.acceptor_identity);
        net_wire_put_identity(&n->o.identity, p->hs.dialer_identity);
        struct net_wire_msg hello = { .kind = NET_WIRE_HELLO, .from = n->o.self, .to = p->id,
                                      .identity = n->o.identity };
        memcpy(hello.nonce, p->hs.dialer_nonce, NET_NONCE_BYTES);
        if (n->secret)
            net_auth_mac(n->secret, n->o.secret_len, "linkraft-hello", &p->hs, hello.mac);
        uint8_t buf[NET_WIRE_MAX_FRAME];
        size_t len = net_wire_encode(&hello, buf, sizeof buf);
        int rc = net__write_small((uv_stream_t *)&p->out->tcp, buf, len);
        if (rc < 0) {
            out_fail_uv(p, "cannot send HELLO to", rc);
            return -1;
        }
        p->state = NET_PEER_WELCOME;
        return 0;
    }
    if (w->kind == NET_WIRE_WELCOME && p->state == NET_PEER_WELCOME) {
        if (n->secret && !net_auth_check(n->secret, n->o.secret_len, "linkraft-welcome", &p->hs, w->mac)) {
            n->stats.dropped_unauthenticated++;
            snprintf(why, sizeof why, "node %llu at %s answered with a wrong MAC: it does not know the secret",
                     (unsigned long long)p->id, p->addr);
            peer_fail(p, why);
            return -1;
        }
        int verdict = n->o.check ? n->o.check(n->ctx, p->id, &p->acceptor_identity) : NET_CHECK_OK;
        if (verdict != NET_CHECK_OK) {
            if (verdict == NET_CHECK_OTHER_CLUSTER)
                n->stats.dropped_other_cluster++;
            else if (verdict == NET_CHECK_REPLACED)
                n->stats.dropped_replaced++;
            raft_id id = p->id;
            snprintf(why, sizeof why, "refused node %llu at %s: %s", (unsigned long long)p->id, p->addr,
                     verdict == NET_CHECK_OTHER_CLUSTER ? "it belongs to another cluster (its cluster id differs)"
                     : verdict == NET_CHECK_REPLACED ? "its data directory is not the one this node knew: it lost "
                                                       "its data (remove it, start it with --join, add it again)"
                                                     : "cannot record its identity");
            peer_fail(p, why);
            if (n->o.dialed)
                n->o.dialed(n->ctx, id, -1);
            return -1;
        }
        peer_connected(p);
        if (n->o.dialed)
            n->o.dialed(n->ctx, p->id, 0);
        return 0;
    }
    if (w->kind == NET_WIRE_REFUSE) {
        snprintf(why, sizeof why, "node %llu at %s refused the handshake: %s", (unsigned long long)p->id, p->addr,
                 net_refuse_name(w->reason));
        if (w->reason == NET_REFUSE_VERSION && n->o.note)
            n->o.note(n->ctx, why);
        raft_id id = p->id;
        peer_fail(p, why);
        if (n->o.dialed)
            n->o.dialed(n->ctx, id, w->reason ? w->reason : -1);
        return -1;
    }
    if (w->kind == NET_WIRE_PONG && p->state == NET_PEER_CONNECTED)
        return 0; /* last_rx is already updated */
    n->stats.dropped_malformed++;
    snprintf(why, sizeof why, "node %llu at %s sent an unexpected control frame (kind %u)",
             (unsigned long long)p->id, p->addr, w->kind);
    peer_fail(p, why);
    return -1;
}

static void on_out_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct net_out *out = s->data;
    struct net_peer *p = out->peer;
    if (!p || nread == 0)
        return;
    if (nread < 0) {
        out_fail_uv(p, "lost the link to", (int)nread);
        return;
    }
    struct net *n = p->net;
    n->stats.bytes_received += (uint64_t)nread;
    p->last_rx = uv_now(n->loop);
    out->rlen += (size_t)nread;
    size_t pos = 0;
again:
    while (out->peer && p->secure) {
        /* After the handshake the acceptor sends only PONGs, one per record. */
        long rl = net_record_size(out->rbuf + pos, out->rlen - pos, NET_WIRE_MAX_FRAME);
        if (rl == 0)
            break;
        struct net_wire_msg w;
        char why[NET_ERR_MAX];
        if (rl > 0 && net_open(&p->rx, out->rbuf + pos, (size_t)rl) != 0) {
            n->stats.dropped_forged++;
            snprintf(why, sizeof why, "node %llu at %s: a record failed authentication (forged, tampered or "
                     "replayed on the way)", (unsigned long long)p->id, p->addr);
            peer_fail(p, why);
            return;
        }
        size_t plen = rl > 0 ? (size_t)rl - NET_SEAL_OVERHEAD : 0;
        if (rl < 0 || net_wire_frame_size(out->rbuf + pos + 4, plen) != (long)plen ||
            net_wire_decode(out->rbuf + pos + 4, plen, &w) != 0) {
            n->stats.dropped_malformed++;
            snprintf(why, sizeof why, "node %llu at %s sent a record that is not a control frame",
                     (unsigned long long)p->id, p->addr);
            peer_fail(p, why);
            return;
        }
        pos += (size_t)rl;
        if (out_handle(p, &w) != 0)
            return;
    }
    while (out->peer && !p->secure) {
        if (out->rlen - pos >= 6 && net_wire_is_control(out->rbuf + pos, out->rlen - pos) &&
            out->rbuf[pos + 5] != NET_WIRE_VERSION) {
            char why[NET_ERR_MAX];
            snprintf(why, sizeof why, "node %llu at %s speaks peer protocol (handshake) version %u, this node "
                     "speaks version %d and reads no other: run the same linkraft release on every node "
                     "(docs/operations.md, \"Upgrade\")", (unsigned long long)p->id, p->addr,
                     out->rbuf[pos + 5], NET_WIRE_VERSION);
            n->stats.dropped_malformed++;
            if (n->o.note)
                n->o.note(n->ctx, why);
            peer_fail(p, why);
            return;
        }
        long fl = net_wire_is_control(out->rbuf + pos, out->rlen - pos) || out->rlen - pos < 4
                      ? net_wire_frame_size(out->rbuf + pos, out->rlen - pos)
                      : -1;
        if (fl == 0)
            break;
        struct net_wire_msg w;
        if (fl < 0 || net_wire_decode(out->rbuf + pos, (size_t)fl, &w) != 0) {
            n->stats.dropped_malformed++;
            char why[NET_ERR_MAX];
            snprintf(why, sizeof why, "node %llu at %s sent bytes that are not a control frame",
                     (unsigned long long)p->id, p->addr);
            peer_fail(p, why);
            return;
        }
        pos += (size_t)fl;
        if (out_handle(p, &w) != 0)
            return;
        if (p->secure)
            goto again; /* the WELCOME was the last plain frame: records follow */
    }
    memmove(out->rbuf, out->rbuf + pos, out->rlen - pos);
    out->rlen -= pos;
}

static void on_out_connect(uv_connect_t *req, int status)
{
    struct net_out *out = req->data;
    struct net_peer *p = out->peer;
    if (!p)
        return; /* closed while connecting */
    if (status < 0) {
        out_fail_uv(p, "cannot connect to", status);
        return;
    }
    uv_tcp_nodelay(&out->tcp, 1);
    int rc = uv_read_start((uv_stream_t *)&out->tcp, on_out_alloc, on_out_read);
    if (rc < 0) {
        out_fail_uv(p, "cannot read from", rc);
        return;
    }
    p->state = NET_PEER_CHALLENGE;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct net_resolve *r = req->data;
    struct net_peer *p = r->peer;
    struct net *n = r->net;
    if (!p || status < 0) {
        if (p) {
            p->resolve = NULL;
            out_fail_uv(p, "cannot resolve the address of", status);
        }
        uv_freeaddrinfo(res);
        free(r);
        net__pending_done(n);
        return;
    }
    p->resolve = NULL;
    /* Try the resolved addresses in turn, one per attempt. */
    size_t count = 0;
    for (struct addrinfo *a = res; a; a = a->ai_next)
        count++;
    struct addrinfo *a = res;
    for (size_t i = 0; count && i < p->addr_index % count; i++)
        a = a->ai_next;
    struct net_out *out = calloc(1, sizeof *out);
    int rc = out ? uv_tcp_init(n->loop, &out->tcp) : UV_ENOMEM;
    if (rc < 0) {
        free(out);
        out_fail_uv(p, "cannot create a socket for", rc);
    } else {
        n->pending++;
        out->net = n;
        out->peer = p;
        out->tcp.data = out;
        out->connect.data = out;
        p->out = out;
        p->state = NET_PEER_CONNECTING;
        rc = uv_tcp_connect(&out->connect, &out->tcp, a->ai_addr, on_out_connect);
        if (rc < 0)
            out_fail_uv(p, "cannot connect to", rc);
    }
    uv_freeaddrinfo(res);
    free(r);
    net__pending_done(n);
}

static void peer_dial(struct net_peer *p)
{
    struct net *n = p->net;
    if (p->state != NET_PEER_IDLE || n->stopping)
        return;
    struct net_resolve *r = calloc(1, sizeof *r);
    if (!r) {
        peer_fail(p, "out of memory");
        return;
    }
    r->net = n;
    r->peer = p;
    r->req.data = r;
    char port[8];
    snprintf(port, sizeof port, "%u", p->port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    p->state = NET_PEER_RESOLVING;
    p->resolve = r;
    uv_timer_start(&p->timer, on_peer_timer, n->o.connect_timeout_ms, 0);
    int rc = uv_getaddrinfo(n->loop, &r->req, on_resolved, p->host, port, &hints);
    if (rc < 0) {
        p->resolve = NULL;
        free(r);
        out_fail_uv(p, "cannot resolve the address of", rc);
        return;
    }
    n->pending++;
}

/* ---- Writing ---------------------------------------------------------------- */

static void on_chunks_written(uv_write_t *req, int status)
{
    struct net_wreq *w = req->data;
    struct net_out *out = w->out;
    struct net_peer *p = out->peer;
    struct net *n = out->net;
    if (status == 0) {
        n->stats.frames_sent += w->frames;
        n->stats.bytes_sent += w->bytes;
    } else {
        n->stats.dropped_disconnect += w->frames;
    }
    free_chunks(w->chunks);
    if (p) {
        p->queued_bytes -= p->inflight_bytes;
        p->inflight_bytes = 0;
        p->writing = 0;
    }
    free(w);
    if (!p)
        return;
    if (status < 0)
        out_fail_uv(p, "cannot write to", status);
    else if (p->head)
        peer_flush(p);
}

/* With a secret, replaces each of the first chunks about to be written by
 * one sealed record of it (a chunk is whole frames, so a record is too).
 * Returns 0, or -1 if out of memory. */
static int seal_queue(struct net_peer *p)
{
    struct net_chunk **link = &p->head;
    for (unsigned i = 0; *link && i < NET_MAX_WRITE_BUFS; i++, link = &(*link)->next) {
        struct net_chunk *c = *link;
        if (c->sealed)
            continue;
        struct net_chunk *s = chunk_new(c->len + NET_SEAL_OVERHEAD);
        if (!s)
            return -1;
        net_seal(&p->tx, c->data, c->len, s->data);
        s->len = c->len + NET_SEAL_OVERHEAD;
        s->frames = c->frames;
        s->sealed = 1;
        s->next = c->next;
        *link = s;
        if (p->tail == c)
            p->tail = s;
        p->queued_bytes += NET_SEAL_OVERHEAD;
        free(c);
    }
    return 0;
}

/* Hands queued frames to the socket: as many chunks as fit in one write,
 * first with uv_try_write (no request, no copy) and, for what the socket did
 * not take, one uv_write. At most one write is in flight per peer. */
static void peer_flush(struct net_peer *p)
{
    struct net *n = p->net;
    p->dirty = 0;
    if (p->state != NET_PEER_CONNECTED || p->writing || !p->head)
        return;
    uv_stream_t *s = (uv_stream_t *)&p->out->tcp;
    uv_buf_t bufs[NET_MAX_WRITE_BUFS];
    unsigned nb;
again:
    if (p->secure && seal_queue(p) != 0) {
        p->dirty = 1; /* out of memory: retry on the next turn */
        uv_idle_start(&n->flusher, on_flush);
        return;
    }
    nb = 0;
    for (struct net_chunk *c = p->head; c && nb < NET_MAX_WRITE_BUFS; c = c->next)
        bufs[nb++] = uv_buf_init((char *)c->data + c->off, (unsigned)(c->len - c->off));
    int r = uv_try_write(s, bufs, nb);
    if (r < 0 && r != UV_EAGAIN) {
        out_fail_uv(p, "cannot write to", r);
        return;
    }
    size_t written = r > 0 ? (size_t)r : 0;
    n->stats.bytes_sent += written;
    /* Free what went out whole; note how far into the next chunk it got. */
    unsigned first = 0;
    while (p->head && first < nb) {
        struct net_chunk *c = p->head;
        size_t left = c->len - c->off;
        if (written < left) {
            c->off += written;
            bufs[first] = uv_buf_init((char *)c->data + c->off, (unsigned)(c->len - c->off));
            break;
        }
        written -= left;
        n->stats.frames_sent += c->frames;
        p->queued_bytes -= c->len;
        p->head = c->next;
        if (!p->head)
            p->tail = NULL;
        free(c);
        first++;
    }
    if (first == nb) {
        if (p->head && written == 0 && r > 0)
            goto again; /* the socket took everything gathered: gather more */
        return;
    }
    /* The rest of the gathered chunks leave the queue with the write request. */
    struct net_wreq *w = calloc(1, sizeof *w);
    if (!w) {
        p->dirty = 1; /* out of memory: retry on the next turn */
        uv_idle_start(&n->flusher, on_flush);
        return;
    }
    w->out = p->out;
    w->req.data = w;
    w->chunks = p->head;
    struct net_chunk *last = p->head;
    size_t inflight = 0;
    for (unsigned i = first; i < nb; i++) {
        last = i == first ? p->head : last->next;
        w->bytes += last->len - last->off;
        w->frames += last->frames;
        inflight += last->len;
    }
    p->head = last->next;
    if (!p->head)
        p->tail = NULL;
    last->next = NULL;
    p->inflight_bytes = inflight;
    p->writing = 1;
    r = uv_write(&w->req, s, bufs + first, nb - first, on_chunks_written);
    if (r < 0) {
        free_chunks(w->chunks);
        free(w);
        n->stats.dropped_disconnect += 1;
        p->queued_bytes -= p->inflight_bytes;
        p->inflight_bytes = 0;
        p->writing = 0;
        out_fail_uv(p, "cannot write to", r);
    }
}

static void on_flush(uv_idle_t *h)
{
    struct net *n = h->data;
    uv_idle_stop(h);
    for (size_t i = 0; i < n->n_peers; i++)
        if (n->peers[i]->dirty)
            peer_flush(n->peers[i]);
}

/* ---- Public API ------------------------------------------------------------- */

int net_send(struct net *n, const struct raft_message *m)
{
    if (m->from != n->o.self)
        return -1;
    struct net_peer *p = net__find_peer(n, m->to);
    if (!p || n->stopping) {
        n->stats.dropped_unknown_peer++;
        return 1;
    }
    size_t size = raft_codec_size(m);
    if (size < RAFT_CODEC_HEADER_BYTES || size - RAFT_CODEC_HEADER_BYTES > n->o.max_frame_bytes)
        return -1;
    if (p->queued_bytes + size > n->o.max_queue_bytes - NET_KEEPALIVE_RESERVE) {
        n->stats.dropped_queue_full++;
        return 1;
    }
    struct net_chunk *c = p->tail;
    int fresh = 0;
    if (!c || c->sealed || c->cap - c->len < size) {
        c = chunk_new(size > NET_CHUNK_BYTES ? size : NET_CHUNK_BYTES);
        if (!c) {
            n->stats.dropped_queue_full++; /* no memory is a full queue */
            return 1;
        }
        fresh = 1;
    }
    int rc = raft_codec_encode(m, c->data + c->len, c->cap - c->len);
    if (rc < 0) {
        if (fresh)
            free(c);
        return -1;
    }
    if (fresh)
        queue_append(p, c);
    c->len += (size_t)rc;
    c->frames++;
    p->queued_bytes += (size_t)rc;
    if (p->state == NET_PEER_CONNECTED && !p->dirty) {
        p->dirty = 1;
        /* Flushed in the next loop turn, so a burst of sends becomes one write.
         * An active idle handle also keeps the loop from blocking in poll. */
        uv_idle_start(&n->flusher, on_flush);
    }
    return 0;
}

int net_set_peer(struct net *n, raft_id id, const char *addr)
{
    char host[CLUSTER_ADDR_MAX], err[NET_ERR_MAX];
    uint16_t port;
    if (id == 0 || id == n->o.self || n->stopping || strlen(addr) >= CLUSTER_ADDR_MAX ||
        cluster_split_addr(addr, host, sizeof host, &port, err, sizeof err) != 0)
        return -1;
    struct net_peer *p = net__find_peer(n, id);
    if (p) {
        if (!strcmp(p->addr, addr))
            return 0;
        /* Moved: start over at the new address. */
        peer_drop_conn(p);
        uv_timer_stop(&p->timer);
        p->state = NET_PEER_IDLE;
        p->attempts = 0;
        p->addr_index = 0;
    } else {
        if (n->n_peers == n->cap_peers) {
            size_t cap = n->cap_peers ? 2 * n->cap_peers : 8;
            struct net_peer **np = realloc(n->peers, cap * sizeof *np);
            if (!np)
                return -1;
            n->peers = np;
            n->cap_peers = cap;
        }
        p = calloc(1, sizeof *p);
        if (!p)
            return -1;
        p->net = n;
        p->id = id;
        uv_timer_init(n->loop, &p->timer);
        p->timer.data = p;
        n->pending++;
        n->peers[n->n_peers++] = p;
    }
    snprintf(p->addr, sizeof p->addr, "%s", addr);
    snprintf(p->host, sizeof p->host, "%s", host);
    p->port = port;
    peer_dial(p); /* at once: links are warm before the first election */
    return 0;
}

int net_allow_id(struct net *n, raft_id id)
{
    if (net__id_allowed(n, id))
        return 0;
    raft_id *a = realloc(n->allowed, (n->n_allowed + 1) * sizeof *a);
    if (!a)
        return -1;
    a[n->n_allowed++] = id;
    n->allowed = a;
    return 0;
}

size_t net__in_limit(const struct net *n, bool authed)
{
    if (!authed)
        return 2 * NET_WIRE_MAX_FRAME;
    size_t frame = RAFT_CODEC_HEADER_BYTES + n->o.max_frame_bytes;
    /* Sealed: a partial frame already opened, then a whole record (one
     * chunk: 64 KiB of frames or one larger frame) waiting to be opened. */
    return n->o.secret ? 2 * frame + NET_CHUNK_BYTES + NET_SEAL_OVERHEAD : frame;
}

bool net__id_allowed(const struct net *n, raft_id id)
{
    if (net__find_peer(n, id))
        return true;
    for (size_t i = 0; i < n->n_allowed; i++)
        if (n->allowed[i] == id)
            return true;
    return false;
}

static void on_peer_timer_closed(uv_handle_t *h)
{
    struct net_peer *p = h->data;
    struct net *n = p->net;
    free(p);
    net__pending_done(n);
}

static void peer_destroy(struct net_peer *p)
{
    peer_drop_conn(p);
    free_chunks(p->head);
    p->head = p->tail = NULL;
    uv_close((uv_handle_t *)&p->timer, on_peer_timer_closed);
}

void net_remove_peer(struct net *n, raft_id id)
{
    for (size_t i = 0; i < n->n_peers; i++) {
        if (n->peers[i]->id == id) {
            struct net_peer *p = n->peers[i];
            n->peers[i] = n->peers[--n->n_peers];
            peer_destroy(p);
            return;
        }
    }
}

void net_set_identity(struct net *n, const struct net_identity *id)
{
    n->o.identity = *id;
}

bool net_peer_connected(const struct net *n, raft_id id)
{
    const struct net_peer *p = net__find_peer(n, id);
    return p && p->state == NET_PEER_CONNECTED;
}

size_t net_peer_queued_bytes(const struct net *n, raft_id id)
{
    const struct net_peer *p = net__find_peer(n, id);
    return p ? p->queued_bytes : 0;
}

const char *net_peer_last_error(const struct net *n, raft_id id)
{
    const struct net_peer *p = net__find_peer(n, id);
    return p ? p->last_error : "";
}

void net_get_stats(const struct net *n, struct net_stats *out)
{
    *out = n->stats;
}

int net_start(uv_loop_t *loop, const struct net_options *o, net_recv_cb cb, void *ctx, struct net **out,
              char *err, size_t errcap)
{
    *out = NULL;
    char host[CLUSTER_ADDR_MAX], why[NET_ERR_MAX];
    uint16_t port;
    if (!o->listen_addr || strlen(o->listen_addr) >= CLUSTER_ADDR_MAX ||
        cluster_split_addr(o->listen_addr, host, sizeof host, &port, why, sizeof why) != 0) {
        snprintf(err, errcap, "cannot listen on %s: %s", o->listen_addr ? o->listen_addr : "(none)",
                 o->listen_addr && strlen(o->listen_addr) < CLUSTER_ADDR_MAX ? why : "expected HOST:PORT");
        return -1;
    }
    if (o->self == 0) {
        snprintf(err, errcap, "the node id must not be 0");
        return -1;
    }
    if (o->secret && (o->secret_len < NET_SECRET_MIN || o->secret_len > NET_SECRET_MAX)) {
        snprintf(err, errcap, "the secret must be %d to %d bytes, it is %zu", NET_SECRET_MIN, NET_SECRET_MAX,
                 o->secret_len);
        return -1;
    }
    if (o->max_queue_bytes < 4 * NET_KEEPALIVE_RESERVE || o->max_frame_bytes == 0 || o->idle_timeout_ms == 0 ||
        o->connect_timeout_ms == 0 || o->backoff_max_ms < o->backoff_min_ms) {
        snprintf(err, errcap, "bad transport options: max_queue_bytes must be at least 512, frame size and "
                              "timeouts > 0, "
                              "backoff_min_ms <= backoff_max_ms (start from net_options_default)");
        return -1;
    }
    if (sodium_init() < 0) {
        snprintf(err, errcap, "cannot initialise libsodium");
        return -1;
    }
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%u", port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    uv_getaddrinfo_t req;
    int rc = uv_getaddrinfo(loop, &req, NULL, host, portstr, &hints); /* NULL cb: synchronous */
    if (rc < 0) {
        snprintf(err, errcap, "cannot listen on %s: cannot resolve %s: %s", o->listen_addr, host, uv_strerror(rc));
        return -1;
    }
    struct net *n = calloc(1, sizeof *n);
    if (!n) {
        uv_freeaddrinfo(req.addrinfo);
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    n->loop = loop;
    n->o = *o;
    if (n->o.max_frame_bytes > RAFT_CODEC_MAX_FRAME)
        n->o.max_frame_bytes = RAFT_CODEC_MAX_FRAME;
    /* One largest frame must always fit, or a legitimate peer could never
     * deliver it. */
    if (n->o.max_inbound_bytes < net__in_limit(n, true))
        n->o.max_inbound_bytes = net__in_limit(n, true);
    snprintf(n->listen_addr, sizeof n->listen_addr, "%s", o->listen_addr);
    n->o.listen_addr = n->listen_addr;
    if (o->secret) {
        n->secret = malloc(o->secret_len);
        if (!n->secret) {
            uv_freeaddrinfo(req.addrinfo);
            free(n);
            snprintf(err, errcap, "out of memory");
            return -1;
        }
        memcpy(n->secret, o->secret, o->secret_len);
        n->o.secret = n->secret;
    }
    n->cb = cb;
    n->ctx = ctx;
    n->rng = o->seed ^ (0x9E3779B97F4A7C15ULL * (o->self + 1));
    if (n->rng == 0)
        n->rng = 1;
    uv_tcp_init(loop, &n->listener);
    n->listener.data = n;
    uv_idle_init(loop, &n->flusher);
    n->flusher.data = n;
    n->pending = 2;
    rc = uv_tcp_bind(&n->listener, req.addrinfo->ai_addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&n->listener, 128, net__on_connection);
    uv_freeaddrinfo(req.addrinfo);
    if (rc < 0) {
        snprintf(err, errcap, "cannot bind %s: %s", o->listen_addr, uv_strerror(rc));
        /* The handles close on the loop's next turn; n goes with them. */
        n->stopping = 1;
        uv_close((uv_handle_t *)&n->listener, on_handle_closed);
        uv_close((uv_handle_t *)&n->flusher, on_handle_closed);
        return -1;
    }
    *out = n;
    return 0;
}

void net_stop(struct net *n, void (*done)(void *arg), void *arg)
{
    if (n->stopping)
        return;
    n->stopping = 1;
    n->done = done;
    n->done_arg = arg;
    while (n->n_peers)
        peer_destroy(n->peers[--n->n_peers]);
    while (n->inbound)
        net__close_in(n->inbound);
    uv_close((uv_handle_t *)&n->listener, on_handle_closed);
    uv_close((uv_handle_t *)&n->flusher, on_handle_closed);
}
