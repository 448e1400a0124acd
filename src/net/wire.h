/*
 * wire.h — the transport's own control frames (internal to src/net): the
 * handshake (CHALLENGE, HELLO, WELCOME, REFUSE) and the keepalive (PING,
 * PONG). They share the byte stream with the codec's Raft frames and are told
 * apart by their magic: "LRN1" here, "LRF1" for Raft frames. Pure functions,
 * no I/O, so the parser can be tested and fuzzed on its own.
 *
 *   u8[4] magic "LRN1" | u8 kind | u8 version (1) | u16 payload_len (LE) | payload
 *
 * Each kind has exactly one payload length (anything else is malformed):
 *   CHALLENGE  66  u8 flags (bit 0: a secret is required) | u8[32] acceptor nonce
 *                  | identity of the acceptor
 *   HELLO     113  u64 from | u64 to | u8[32] dialer nonce | identity of the dialer
 *                  | u8[32] mac
 *   WELCOME    32  u8[32] mac
 *   REFUSE      1  u8 reason (enum net_refuse)
 *   PING/PONG   8  u64 sequence number
 * identity (33) = u8[16] cluster id | u8[16] incarnation | u8 flags
 *                 (bit 0: the cluster id is known, bit 1: joined with --join)
 * docs/transport.md describes the exchange and how the MACs are computed.
 */
#ifndef LINKRAFT_NET_WIRE_H
#define LINKRAFT_NET_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "net.h"
#include "raft.h"

#define NET_WIRE_VERSION 2 /* 2: identities in CHALLENGE and HELLO */
#define NET_WIRE_HEADER_BYTES 8
#define NET_WIRE_MAX_FRAME (NET_WIRE_HEADER_BYTES + 113) /* HELLO, the largest */
#define NET_WIRE_IDENTITY_BYTES (2 * NET_ID_BYTES + 1)
#define NET_WIRE_ID_KNOWN 0x01
#define NET_WIRE_ID_JOINED 0x02
#define NET_NONCE_BYTES 32
#define NET_MAC_BYTES 32 /* crypto_auth_hmacsha512256_BYTES */
#define NET_CHALLENGE_SECRET 0x01

enum net_wire_kind {
    NET_WIRE_CHALLENGE = 1,
    NET_WIRE_HELLO = 2,
    NET_WIRE_WELCOME = 3,
    NET_WIRE_REFUSE = 4,
    NET_WIRE_PING = 5,
    NET_WIRE_PONG = 6,
};

enum net_refuse {
    NET_REFUSE_WRONG_NODE = 1, /* HELLO.to is not the acceptor's id */
    NET_REFUSE_BAD_ID = 2,     /* HELLO.from is 0 or the acceptor's own id */
    NET_REFUSE_AUTH = 3,       /* MAC missing or wrong */
    NET_REFUSE_VERSION = 4,    /* unknown control frame version */
    NET_REFUSE_UNKNOWN_ID = 5, /* HELLO.from is not a member the acceptor knows */
    NET_REFUSE_OTHER_CLUSTER = NET_CHECK_OTHER_CLUSTER, /* 6: another cluster id */
    NET_REFUSE_REPLACED = NET_CHECK_REPLACED,           /* 7: a member's lost data directory */
    NET_REFUSE_INTERNAL = NET_CHECK_INTERNAL,           /* 8: the acceptor could not record it */
};
const char *net_refuse_name(int reason);

/* One control frame; which fields mean something depends on kind. */
struct net_wire_msg {
    uint8_t kind;
    uint8_t flags;                  /* CHALLENGE */
    raft_id from, to;               /* HELLO */
    uint8_t nonce[NET_NONCE_BYTES]; /* CHALLENGE: acceptor's; HELLO: dialer's */
    uint8_t mac[NET_MAC_BYTES];     /* HELLO, WELCOME (zeros without a secret) */
    uint8_t reason;                 /* REFUSE */
    uint64_t seq;                   /* PING, PONG */
    struct net_identity identity;   /* CHALLENGE: acceptor's; HELLO: dialer's */
};

/* The 33 bytes an identity travels as (also what the MACs cover). */
void net_wire_put_identity(const struct net_identity *id, uint8_t out[NET_WIRE_IDENTITY_BYTES]);

/* True if buf (len >= 4) starts with the control magic "LRN1". */
int net_wire_is_control(const uint8_t *buf, size_t len);

/* Encodes w into buf. Returns the bytes written (at most NET_WIRE_MAX_FRAME),
 * or 0 if cap is too small or w->kind is unknown. */
size_t net_wire_encode(const struct net_wire_msg *w, uint8_t *buf, size_t cap);

/* Looks at the start of a stream that begins with the control magic.
 * Returns > 0: a whole frame of that many bytes is there; 0: need more;
 * -1: malformed (unknown kind or version, wrong payload length). */
long net_wire_frame_size(const uint8_t *buf, size_t len);

/* Decodes exactly one frame of len bytes (as sized by net_wire_frame_size).
 * Returns 0, or -1 if it is malformed. */
int net_wire_decode(const uint8_t *buf, size_t len, struct net_wire_msg *w);

#endif
