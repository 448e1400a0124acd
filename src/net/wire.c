/*
 * wire.c — encoding and decoding of the transport's control frames
 * (handshake and keepalive; layout in wire.h and docs/transport.md).
 * The decoder checks the magic, version, kind and exact payload length
 * before it reads a field.
 */
#include "net/wire.h"

#include <string.h>

static const uint8_t wire_magic[4] = { 'L', 'R', 'N', '1' };

const char *net_refuse_name(int reason)
{
    switch (reason) {
    case NET_REFUSE_WRONG_NODE: return "the HELLO named a different node id";
    case NET_REFUSE_BAD_ID: return "the dialer's node id is 0 or the acceptor's own";
    case NET_REFUSE_AUTH: return "authentication failed (wrong or missing secret)";
    case NET_REFUSE_VERSION: return "it speaks another peer protocol (handshake) version: run the same linkraft release on every node";
    case NET_REFUSE_OTHER_CLUSTER: return "the dialer belongs to another cluster (its cluster id differs)";
    case NET_REFUSE_REPLACED: return "the acceptor knew this node with another data directory: it lost its "
                                     "data. Remove it ('linkraft member remove'), start it with --join and "
                                     "add it again ('linkraft member add')";
    case NET_REFUSE_INTERNAL: return "the acceptor could not record the dialer's identity (see its log)";
    case NET_REFUSE_UNKNOWN_ID: return "the dialer's node id is not a member the acceptor knows "
                                       "(not in its cluster file nor added with 'linkraft member add')";
    default: return "unknown reason";
    }
}

/* Payload length of each kind, or -1 for an unknown kind. */
static int payload_len(uint8_t kind)
{
    switch (kind) {
    case NET_WIRE_CHALLENGE: return 1 + NET_NONCE_BYTES + NET_WIRE_IDENTITY_BYTES;
    case NET_WIRE_HELLO: return 16 + NET_NONCE_BYTES + NET_WIRE_IDENTITY_BYTES + NET_MAC_BYTES;
    case NET_WIRE_WELCOME: return NET_MAC_BYTES;
    case NET_WIRE_REFUSE: return 1;
    case NET_WIRE_PING:
    case NET_WIRE_PONG: return 8;
    default: return -1;
    }
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

void net_wire_put_identity(const struct net_identity *id, uint8_t out[NET_WIRE_IDENTITY_BYTES])
{
    memcpy(out, id->cluster, NET_ID_BYTES);
    memcpy(out + NET_ID_BYTES, id->incarnation, NET_ID_BYTES);
    out[2 * NET_ID_BYTES] = (uint8_t)((id->cluster_known ? NET_WIRE_ID_KNOWN : 0) | (id->joined ? NET_WIRE_ID_JOINED : 0));
}

static int get_identity(const uint8_t *p, struct net_identity *id)
{
    uint8_t flags = p[2 * NET_ID_BYTES];
    if (flags & ~(NET_WIRE_ID_KNOWN | NET_WIRE_ID_JOINED))
        return -1;
    memcpy(id->cluster, p, NET_ID_BYTES);
    memcpy(id->incarnation, p + NET_ID_BYTES, NET_ID_BYTES);
    id->cluster_known = (flags & NET_WIRE_ID_KNOWN) != 0;
    id->joined = (flags & NET_WIRE_ID_JOINED) != 0;
    return 0;
}

int net_wire_is_control(const uint8_t *buf, size_t len)
{
    return len >= 4 && memcmp(buf, wire_magic, 4) == 0;
}

size_t net_wire_encode(const struct net_wire_msg *w, uint8_t *buf, size_t cap)
{
    int plen = payload_len(w->kind);
    if (plen < 0 || cap < (size_t)(NET_WIRE_HEADER_BYTES + plen))
        return 0;
    memcpy(buf, wire_magic, 4);
    buf[4] = w->kind;
    buf[5] = NET_WIRE_VERSION;
    buf[6] = (uint8_t)plen;
    buf[7] = (uint8_t)(plen >> 8);
    uint8_t *p = buf + NET_WIRE_HEADER_BYTES;
    switch (w->kind) {
    case NET_WIRE_CHALLENGE:
        p[0] = w->flags;
        memcpy(p + 1, w->nonce, NET_NONCE_BYTES);
        net_wire_put_identity(&w->identity, p + 1 + NET_NONCE_BYTES);
        break;
    case NET_WIRE_HELLO:
        put_u64(p, w->from);
        put_u64(p + 8, w->to);
        memcpy(p + 16, w->nonce, NET_NONCE_BYTES);
        net_wire_put_identity(&w->identity, p + 16 + NET_NONCE_BYTES);
        memcpy(p + 16 + NET_NONCE_BYTES + NET_WIRE_IDENTITY_BYTES, w->mac, NET_MAC_BYTES);
        break;
    case NET_WIRE_WELCOME:
        memcpy(p, w->mac, NET_MAC_BYTES);
        break;
    case NET_WIRE_REFUSE:
        p[0] = w->reason;
        break;
    default: /* PING, PONG */
        put_u64(p, w->seq);
        break;
    }
    return (size_t)(NET_WIRE_HEADER_BYTES + plen);
}

long net_wire_frame_size(const uint8_t *buf, size_t len)
{
    if (len < NET_WIRE_HEADER_BYTES)
        return 0;
    if (!net_wire_is_control(buf, len) || buf[5] != NET_WIRE_VERSION)
        return -1;
    int want = payload_len(buf[4]);
    unsigned plen = (unsigned)buf[6] | (unsigned)buf[7] << 8;
    if (want < 0 || plen != (unsigned)want)
        return -1;
    size_t frame = NET_WIRE_HEADER_BYTES + plen;
    return len >= frame ? (long)frame : 0;
}

int net_wire_decode(const uint8_t *buf, size_t len, struct net_wire_msg *w)
{
    memset(w, 0, sizeof *w);
    long frame = net_wire_frame_size(buf, len);
    if (frame <= 0 || (size_t)frame != len)
        return -1;
    const uint8_t *p = buf + NET_WIRE_HEADER_BYTES;
    w->kind = buf[4];
    switch (w->kind) {
    case NET_WIRE_CHALLENGE:
        w->flags = p[0];
        memcpy(w->nonce, p + 1, NET_NONCE_BYTES);
        if (get_identity(p + 1 + NET_NONCE_BYTES, &w->identity))
            return -1;
        break;
    case NET_WIRE_HELLO:
        w->from = get_u64(p);
        w->to = get_u64(p + 8);
        memcpy(w->nonce, p + 16, NET_NONCE_BYTES);
        if (get_identity(p + 16 + NET_NONCE_BYTES, &w->identity))
            return -1;
        memcpy(w->mac, p + 16 + NET_NONCE_BYTES + NET_WIRE_IDENTITY_BYTES, NET_MAC_BYTES);
        break;
    case NET_WIRE_WELCOME:
        memcpy(w->mac, p, NET_MAC_BYTES);
        break;
    case NET_WIRE_REFUSE:
        w->reason = p[0];
        break;
    default:
        w->seq = get_u64(p);
        break;
    }
    return 0;
}
