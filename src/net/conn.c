/*
 * conn.c — the inbound half of the peer transport: accepting connections,
 * the acceptor's side of the handshake (CHALLENGE, check the HELLO, WELCOME
 * or REFUSE), then reading the stream: codec frames are sized with
 * raft_codec_frame_size, decoded, checked against the authenticated peer and
 * delivered; PINGs are answered with PONGs. Anything malformed is counted
 * and closes the connection. A connection that does not finish the
 * handshake within connect_timeout_ms, or is silent for idle_timeout_ms
 * after it, is closed. Only ids the transport knows as peers pass the
 * handshake.
 *
 * Memory: a read buffer grows only as bytes arrive (doubling, so a frame
 * costs at most about twice its size), never to what a header announces: a
 * stranger who announces a 64 MiB frame and sends nothing more costs
 * nothing. Each buffer stays under one largest frame, and all of them
 * together under max_inbound_bytes (n->inbound_bytes counts their
 * capacities); a connection that would need more is closed and counted.
 */
#include "net/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "raft_codec.h"

#define IN_BUF_START (64u * 1024)
#define IN_BUF_KEEP (256u * 1024) /* shrink back to this after a large frame */

/* Sets the capacity of c's read buffer (to at least c->len), keeping the
 * transport's total up to date. Returns 0, or -1 (nothing changed) if
 * realloc fails. */
static int in_set_cap(struct net_in *c, size_t cap)
{
    if (cap == c->cap)
        return 0;
    uint8_t *b = cap ? realloc(c->buf, cap) : (free(c->buf), NULL);
    if (cap && !b)
        return -1;
    c->net->inbound_bytes = c->net->inbound_bytes - c->cap + cap;
    c->buf = b;
    c->cap = cap;
    return 0;
}

static void on_in_closed(uv_handle_t *h)
{
    struct net_in *c = h->data;
    struct net *n = c->net;
    if (--c->open_handles == 0) {
        in_set_cap(c, 0);
        free(c);
    }
    net__pending_done(n);
}

void net__close_in(struct net_in *c)
{
    if (c->closing)
        return;
    struct net *n = c->net;
    c->closing = 1;
    if (c->prev)
        c->prev->next = c->next;
    else
        n->inbound = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    n->n_inbound--;
    uv_close((uv_handle_t *)&c->tcp, on_in_closed);
    uv_close((uv_handle_t *)&c->timer, on_in_closed);
}

static void in_malformed(struct net_in *c)
{
    c->net->stats.dropped_malformed++;
    net__close_in(c);
}

static void in_refuse(struct net_in *c, int reason)
{
    uint8_t buf[NET_WIRE_MAX_FRAME];
    struct net_wire_msg w = { .kind = NET_WIRE_REFUSE, .reason = (uint8_t)reason };
    size_t len = net_wire_encode(&w, buf, sizeof buf);
    /* Best effort: say why, so the dialer can log something a person can act on. */
    net__write_small((uv_stream_t *)&c->tcp, buf, len);
    if (reason <= NET_REFUSE_VERSION) /* the others have counters of their own */
        c->net->stats.dropped_unauthenticated++;
    net__close_in(c);
}

static void in_send(struct net_in *c, const struct net_wire_msg *w)
{
    uint8_t plain[NET_WIRE_MAX_FRAME], buf[NET_WIRE_MAX_FRAME + NET_SEAL_OVERHEAD];
    size_t len = net_wire_encode(w, plain, sizeof plain);
    if (c->secure) {
        net_seal(&c->tx, plain, len, buf);
        len += NET_SEAL_OVERHEAD;
    } else {
        memcpy(buf, plain, len);
    }
    /* A dialer that does not read its PONGs would make them pile up here. */
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > NET_MAX_PENDING_REPLY ||
        net__write_small((uv_stream_t *)&c->tcp, buf, len) < 0)
        net__close_in(c);
}

static void on_in_timer(uv_timer_t *t)
{
    struct net_in *c = t->data;
    struct net *n = c->net;
    if (c->state == NET_IN_HELLO) {
        n->stats.dropped_unauthenticated++; /* slow or silent before the handshake */
        net__close_in(c);
    } else if (uv_now(n->loop) - c->last_rx < n->o.idle_timeout_ms) {
        c->suspect = 0;
    } else if (!c->suspect) {
        c->suspect = 1; /* confirm on the next tick, after a chance to read (see transport.c) */
    } else {
        net__close_in(c); /* the dialer pings every idle/4: it is gone */
    }
}

/* The dialer's HELLO: check it names us, comes from a plausible id and (with a
 * secret) carries the right MAC, then answer WELCOME. A newer authenticated
 * connection from the same peer replaces an older one (that one is dead from
 * the dialer's side: it only ever keeps one). */
static void in_hello(struct net_in *c, const struct net_wire_msg *w)
{
    struct net *n = c->net;
    if (w->kind != NET_WIRE_HELLO) {
        in_malformed(c);
        return;
    }
    if (w->to != n->o.self) {
        in_refuse(c, NET_REFUSE_WRONG_NODE);
        return;
    }
    if (w->from == 0 || w->from == n->o.self) {
        in_refuse(c, NET_REFUSE_BAD_ID);
        return;
    }
    /* Only members (the cluster file, members learned from the log, a node
     * being added): a stranger gets nowhere near the buffers for frames. */
    if (!net__id_allowed(n, w->from)) {
        n->stats.dropped_unknown_id++;
        in_refuse(c, NET_REFUSE_UNKNOWN_ID);
        return;
    }
    struct net_transcript t = { .from = w->from, .to = w->to };
    memcpy(t.acceptor_nonce, c->nonce, NET_NONCE_BYTES);
    memcpy(t.dialer_nonce, w->nonce, NET_NONCE_BYTES);
    memcpy(t.acceptor_identity, c->identity, NET_WIRE_IDENTITY_BYTES);
    net_wire_put_identity(&w->identity, t.dialer_identity);
    struct net_wire_msg welcome = { .kind = NET_WIRE_WELCOME };
    if (n->secret) {
        if (!net_auth_check(n->secret, n->o.secret_len, "linkraft-hello", &t, w->mac)) {
            in_refuse(c, NET_REFUSE_AUTH);
            return;
        }
        net_auth_mac(n->secret, n->o.secret_len, "linkraft-welcome", &t, welcome.mac);
    }
    /* Its identity, now that it is proven: the same cluster, and the data
     * directory this node knew it with (the host's check). */
    int verdict = n->o.check ? n->o.check(n->ctx, w->from, &w->identity) : NET_CHECK_OK;
    if (verdict != NET_CHECK_OK) {
        if (verdict == NET_CHECK_OTHER_CLUSTER)
            n->stats.dropped_other_cluster++;
        else if (verdict == NET_CHECK_REPLACED)
            n->stats.dropped_replaced++;
        in_refuse(c, verdict);
        return;
    }
    c->state = NET_IN_AUTHED;
    c->peer = w->from;
    n->stats.inbound_authenticated++;
    for (struct net_in *o = n->inbound, *next; o; o = next) {
        next = o->next;
        if (o != c && o->state == NET_IN_AUTHED && o->peer == c->peer)
            net__close_in(o);
    }
    unsigned tick = n->o.idle_timeout_ms / 4 ? n->o.idle_timeout_ms / 4 : 1;
    uv_timer_start(&c->timer, on_in_timer, tick, tick);
    in_send(c, &welcome);
    if (n->secret) {
        /* Every byte after the HELLO, and after our WELCOME, is a sealed record. */
        net_session_keys(n->secret, n->o.secret_len, &t, &c->rx, &c->tx);
        c->secure = 1;
    }
}

/* Opens every whole record in buf[plain, len), moving its plaintext to
 * buf[plain, ...): the opened bytes stay contiguous for in_process. Returns
 * 0, or -1 if the connection was closed (a forged or oversize record). */
static int in_unseal(struct net_in *c)
{
    struct net *n = c->net;
    size_t max_plain = NET_CHUNK_BYTES > RAFT_CODEC_HEADER_BYTES + n->o.max_frame_bytes
                           ? NET_CHUNK_BYTES
                           : RAFT_CODEC_HEADER_BYTES + n->o.max_frame_bytes;
    size_t raw = c->plain;
    for (;;) {
        long rl = net_record_size(c->buf + raw, c->len - raw, max_plain);
        if (rl == 0)
            break;
        if (rl < 0) {
            in_malformed(c);
            return -1;
        }
        if (net_open(&c->rx, c->buf + raw, (size_t)rl) != 0) {
            n->stats.dropped_forged++; /* forged, tampered, replayed or reordered */
            net__close_in(c);
            return -1;
        }
        size_t plen = (size_t)rl - NET_SEAL_OVERHEAD;
        memmove(c->buf + c->plain, c->buf + raw + 4, plen);
        c->plain += plen;
        raw += (size_t)rl;
    }
    memmove(c->buf + c->plain, c->buf + raw, c->len - raw);
    c->len -= raw - c->plain;
    return 0;
}

/* Little-endian u32 at p: the codec header is magic | body_len | crc. */
static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A dialer speaking another handshake version (its first frame's version
 * byte): refused with REFUSE 4, and a person is told which versions. */
static void in_other_version(struct net_in *c, unsigned theirs)
{
    struct net *n = c->net;
    if (n->o.note) {
        struct sockaddr_storage sa;
        int len = sizeof sa;
        char host[64] = "?";
        if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&sa, &len) == 0)
            uv_ip_name((struct sockaddr *)&sa, host, sizeof host);
        char text[NET_ERR_MAX];
        snprintf(text, sizeof text, "refused a peer connection from %s: it speaks peer protocol (handshake) version "
                 "%u, this node speaks version %d and reads no other: run the same linkraft release on every node "
                 "(docs/operations.md, \"Upgrade\")", host, theirs, NET_WIRE_VERSION);
        n->o.note(n->ctx, text);
    }
    in_refuse(c, NET_REFUSE_VERSION);
}

/* Consumes every whole frame in the buffer. Stops as soon as the connection
 * is closed (by a bad frame, or by the callback, which may even stop n). */
static void in_process(struct net_in *c)
{
    struct net *n = c->net;
    size_t pos = 0;
    while (!c->closing) {
        const uint8_t *p = c->buf + pos;
        size_t left = (c->secure ? c->plain : c->len) - pos;
        if (left < 4)
            break;
        if (net_wire_is_control(p, left)) {
            if (c->state == NET_IN_HELLO && left >= 6 && p[5] != NET_WIRE_VERSION) {
                in_other_version(c, p[5]);
                return;
            }
            long fl = net_wire_frame_size(p, left);
            if (fl == 0)
                break;
            struct net_wire_msg w;
            if (fl < 0 || net_wire_decode(p, (size_t)fl, &w) != 0) {
                in_malformed(c);
                return;
            }
            pos += (size_t)fl;
            if (c->state == NET_IN_HELLO) {
                in_hello(c, &w);
                if (c->secure && !c->closing) {
                    /* What followed the HELLO are records: open them. */
                    memmove(c->buf, c->buf + pos, c->len - pos);
                    c->len -= pos;
                    pos = 0;
                    c->plain = 0;
                    if (in_unseal(c) != 0)
                        return;
                }
            } else if (w.kind == NET_WIRE_PING) {
                w.kind = NET_WIRE_PONG;
                in_send(c, &w);
            } else {
                in_malformed(c);
                return;
            }
            continue;
        }
        /* A Raft frame: only after the handshake, and never over the limit
         * (checked from the header, before the body is buffered). */
        if (c->state != NET_IN_AUTHED) {
            in_malformed(c);
            return;
        }
        if (left >= 8 && le32(p + 4) > n->o.max_frame_bytes) {
            in_malformed(c);
            return;
        }
        long fl = raft_codec_frame_size(p, left);
        if (fl < 0) {
            in_malformed(c);
            return;
        }
        if (fl == 0)
            break; /* the buffer grows as the rest arrives (on_in_alloc) */
        struct raft_message m;
        int rc = raft_codec_decode(p, (size_t)fl, &m);
        if (rc == RAFT_EINVAL) {
            n->stats.dropped_bad_term++; /* a term >= 2^63: never adopted */
            in_malformed(c);
            return;
        }
        if (rc != 0) {
            in_malformed(c);
            return;
        }
        pos += (size_t)fl;
        if (m.from != c->peer || m.to != n->o.self) {
            raft_codec_release(&m);
            in_malformed(c); /* authenticated as one node, claiming to be another */
            return;
        }
        n->stats.frames_received++;
        n->cb(n->ctx, &m);
        raft_codec_release(&m);
    }
    if (c->closing)
        return;
    memmove(c->buf, c->buf + pos, c->len - pos);
    c->len -= pos;
    if (c->secure)
        c->plain -= pos;
    if (c->cap > IN_BUF_KEEP && c->len <= IN_BUF_KEEP / 2)
        in_set_cap(c, IN_BUF_KEEP); /* a failed shrink keeps the larger buffer */
}

static void on_in_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct net_in *c = h->data;
    struct net *n = c->net;
    /* Before the handshake only a HELLO may come: a tiny buffer, so a crowd
     * of unauthenticated connections costs little memory. */
    size_t limit = net__in_limit(n, c->state == NET_IN_AUTHED);
    if (c->cap - c->len < 4096 && c->cap < limit) {
        size_t cap = c->cap < IN_BUF_START ? IN_BUF_START : 2 * c->cap;
        if (cap > limit)
            cap = limit;
        size_t room = n->o.max_inbound_bytes - n->inbound_bytes; /* the total never exceeds the budget */
        if (cap - c->cap > room)
            cap = c->cap + room;
        in_set_cap(c, cap); /* out of memory: read into what there is */
    }
    if (c->cap == c->len) {
        /* Full, and may not grow: libuv reports UV_ENOBUFS to on_in_read.
         * (Over one largest frame cannot happen: in_process refuses such a
         * header before its body is read.) */
        c->over_budget = 1;
        *b = uv_buf_init(NULL, 0);
        return;
    }
    *b = uv_buf_init((char *)c->buf + c->len, (unsigned)(c->cap - c->len));
}

static void on_in_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct net_in *c = s->data;
    if (c->closing || nread == 0)
        return;
    if (nread < 0) {
        if (nread == UV_ENOBUFS && c->over_budget)
            c->net->stats.dropped_over_budget++; /* the dialer reconnects; Raft resends */
        net__close_in(c);
        return;
    }
    struct net *n = c->net;
    n->stats.bytes_received += (uint64_t)nread;
    c->last_rx = uv_now(n->loop);
    c->len += (size_t)nread;
    if (c->secure && in_unseal(c) != 0)
        return;
    in_process(c);
}

void net__on_connection(uv_stream_t *listener, int status)
{
    struct net *n = listener->data;
    if (status < 0 || n->stopping)
        return;
    struct net_in *c = calloc(1, sizeof *c);
    if (!c)
        return; /* the connection waits in the backlog; the dialer times out and retries */
    c->net = n;
    uv_tcp_init(n->loop, &c->tcp);
    uv_timer_init(n->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->open_handles = 2;
    n->pending += 2;
    c->next = n->inbound;
    if (n->inbound)
        n->inbound->prev = c;
    n->inbound = c;
    n->n_inbound++;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        net__close_in(c);
        return;
    }
    n->stats.accepted++;
    if (n->n_inbound > NET_MAX_INBOUND) {
        /* Full: make room by closing the oldest connection still in its
         * handshake (new ones are at the head), so a crowd of idle
         * unauthenticated sockets cannot lock real peers out for long. */
        struct net_in *victim = NULL;
        for (struct net_in *o = n->inbound; o; o = o->next)
            if (o != c && o->state == NET_IN_HELLO)
                victim = o;
        n->stats.dropped_unauthenticated++;
        net__close_in(victim ? victim : c);
        if (!victim)
            return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->last_rx = uv_now(n->loop);
    uv_timer_start(&c->timer, on_in_timer, n->o.connect_timeout_ms, 0);
    struct net_wire_msg w = { .kind = NET_WIRE_CHALLENGE, .flags = n->secret ? NET_CHALLENGE_SECRET : 0,
                              .identity = n->o.identity };
    randombytes_buf(c->nonce, NET_NONCE_BYTES);
    memcpy(w.nonce, c->nonce, NET_NONCE_BYTES);
    net_wire_put_identity(&n->o.identity, c->identity);
    in_send(c, &w);
    if (!c->closing && uv_read_start((uv_stream_t *)&c->tcp, on_in_alloc, on_in_read) != 0)
        net__close_in(c);
}
