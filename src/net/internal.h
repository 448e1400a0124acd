/*
 * net/internal.h — what the files of src/net share: the transport object, the
 * per-peer outbound state (transport.c) and the inbound connections
 * (conn.c). Not a public header; the node sees only include/net.h.
 *
 * Ownership and lifetimes. Every libuv handle closes asynchronously, so each
 * object that embeds a handle is freed in that handle's close callback, and
 * n->pending counts handles and requests still open; net_stop's done runs
 * when it falls to 0. Objects that outlive what they point to are detached
 * first (out->peer = NULL, resolve->peer = NULL) and ignore late callbacks.
 */
#ifndef LINKRAFT_NET_INT_H
#define LINKRAFT_NET_INT_H

#include "net.h"
#include "sys/cluster_file.h"
#include "net/wire.h"

#define NET_CHUNK_BYTES (64u * 1024)   /* frames are packed into chunks of this size */
#define NET_MAX_WRITE_BUFS 64          /* chunks per uv_write */
#define NET_MAX_INBOUND 64             /* concurrent inbound connections */
#define NET_MAX_PENDING_REPLY (64u * 1024) /* unread pongs before an inbound link is cut */
#define NET_KEEPALIVE_RESERVE 128      /* queue bytes kept free for PINGs */
#define NET_ERR_MAX 768 /* room for two addresses and a libuv message */

/* A run of encoded frames, whole frames only, sent in order. */
struct net_chunk {
    struct net_chunk *next;
    size_t len, cap;
    size_t off;      /* bytes already written by uv_try_write */
    uint32_t frames;
    int sealed;      /* one record, sealed for the current connection: nothing may be appended */
    uint8_t data[];
};

enum net_peer_state {
    NET_PEER_IDLE = 0,   /* no connection, no attempt scheduled */
    NET_PEER_RESOLVING,  /* uv_getaddrinfo running */
    NET_PEER_CONNECTING, /* uv_tcp_connect running */
    NET_PEER_CHALLENGE,  /* connected, waiting for the acceptor's CHALLENGE */
    NET_PEER_WELCOME,    /* HELLO sent, waiting for WELCOME */
    NET_PEER_CONNECTED,  /* authenticated: frames flow */
    NET_PEER_BACKOFF,    /* waiting before the next attempt */
};

/* Everything a handshake said, as both sides saw it: what the MACs cover. */
struct net_transcript {
    raft_id from, to;                                  /* dialer, acceptor */
    uint8_t acceptor_nonce[NET_NONCE_BYTES], dialer_nonce[NET_NONCE_BYTES];
    uint8_t acceptor_identity[NET_WIRE_IDENTITY_BYTES], dialer_identity[NET_WIRE_IDENTITY_BYTES];
};

#define NET_SEAL_KEY_BYTES 32
#define NET_SEAL_TAG_BYTES 16
#define NET_SEAL_OVERHEAD (4 + NET_SEAL_TAG_BYTES)
struct net_seal {
    uint8_t key[NET_SEAL_KEY_BYTES];
    uint64_t counter;               /* records sealed or opened so far */
};
struct net_peer;

/* One outbound TCP connection attempt; owned by its handle, freed on close. */
struct net_out {
    uv_tcp_t tcp;
    uv_connect_t connect;
    struct net *net;
    struct net_peer *peer;          /* NULL once detached (closing) */
    uint8_t rbuf[256];
    size_t rlen;
};

/* An in-flight uv_write of chunks taken off a peer's queue. */
struct net_wreq {
    uv_write_t req;
    struct net_out *out;
    struct net_chunk *chunks;
    size_t bytes;
    uint32_t frames;
};

/* A name lookup in the thread pool; outlives its peer if the peer goes. */
struct net_resolve {
    uv_getaddrinfo_t req;
    struct net *net;
    struct net_peer *peer;          /* NULL once the peer is gone */
};

struct net_peer {
    struct net *net;
    raft_id id;
    char addr[CLUSTER_ADDR_MAX];
    char host[CLUSTER_ADDR_MAX];
    uint16_t port;
    enum net_peer_state state;
    struct net_out *out;
    struct net_resolve *resolve;
    uv_timer_t timer;               /* connect timeout, backoff or keepalive tick */
    unsigned attempts;              /* consecutive failures, for the backoff */
    unsigned addr_index;            /* which resolved address to try next */
    uint64_t last_rx;               /* uv_now of the last bytes received */
    int suspect;                    /* one keepalive tick found last_rx too old */
    uint64_t ping_seq;
    struct net_transcript hs;       /* this attempt's handshake */
    struct net_identity acceptor_identity;
    int secure;                     /* CONNECTED with a secret: records both ways */
    struct net_seal tx, rx;
    struct net_chunk *head, *tail;  /* queued frames not yet handed to a write */
    size_t queued_bytes;            /* queue plus the write in flight: the bound */
    size_t inflight_bytes;
    int writing;                    /* a uv_write is in flight */
    int dirty;                      /* has queued frames to flush */
    int was_connected;
    char last_error[NET_ERR_MAX];
};

enum net_in_state { NET_IN_HELLO = 0, NET_IN_AUTHED };

/* One inbound connection. Two handles (tcp, timer): freed when both closed. */
struct net_in {
    uv_tcp_t tcp;
    uv_timer_t timer;               /* handshake deadline, then the idle check */
    struct net *net;
    struct net_in *prev, *next;
    enum net_in_state state;
    raft_id peer;                   /* authenticated id, once NET_IN_AUTHED */
    uint8_t nonce[NET_NONCE_BYTES];
    uint8_t identity[NET_WIRE_IDENTITY_BYTES]; /* ours, as the CHALLENGE carried it */
    int secure;                     /* authenticated with a secret: records both ways */
    struct net_seal tx, rx;
    uint8_t *buf;
    size_t len, cap;
    size_t plain;                   /* secure: buf[0, plain) is opened, buf[plain, len) records */
    uint64_t last_rx;
    int suspect;                    /* as struct net_peer's */
    int closing;
    int over_budget;                /* the read buffer could not grow: max_inbound_bytes */
    int open_handles;
};

struct net {
    uv_loop_t *loop;
    struct net_options o;
    uint8_t *secret;                /* copy of o.secret, wiped at free */
    char listen_addr[CLUSTER_ADDR_MAX];
    net_recv_cb cb;
    void *ctx;
    uv_tcp_t listener;
    uv_idle_t flusher;              /* flushes dirty peers once per loop turn */
    struct net_peer **peers;
    size_t n_peers, cap_peers;
    raft_id *allowed;               /* net_allow_id: accepted without being dialled */
    size_t n_allowed;
    struct net_in *inbound;
    size_t n_inbound;
    size_t inbound_bytes;           /* sum of the inbound read buffers' capacities */
    struct net_stats stats;
    uint64_t rng;
    size_t pending;                 /* open handles and requests */
    int stopping;
    void (*done)(void *);
    void *done_arg;
};

/* transport.c */
void net__pending_done(struct net *n);
struct net_peer *net__find_peer(const struct net *n, raft_id id);
/* The most an inbound connection's read buffer may hold. */
size_t net__in_limit(const struct net *n, bool authed);
/* True if a HELLO from id may be accepted: a peer, or net_allow_id'd. */
bool net__id_allowed(const struct net *n, raft_id id);
/* Delay before the next attempt after `failures` consecutive failures (>= 1):
 * backoff_min_ms doubled per further failure, capped at backoff_max_ms, then
 * jittered by rnd into [d/2, d]. Pure, for the tests. */
unsigned net__backoff_ms(const struct net_options *o, unsigned failures, uint64_t rnd);
int net__write_small(uv_stream_t *s, const uint8_t *data, size_t len);

/* conn.c */
void net__on_connection(uv_stream_t *listener, int status);
void net__close_in(struct net_in *c);

/* Sealed records (docs/transport.md "Encryption"): after a handshake with a
 * secret, each direction of a connection is a sequence of
 *   u32 ciphertext length (LE) | XChaCha20-Poly1305 ciphertext and tag
 * with the length as associated data, a key per direction and connection
 * derived from the secret and the handshake, and the nonce a counter. */
void net_session_keys(const uint8_t *secret, size_t secret_len, const struct net_transcript *t,
                      struct net_seal *dialer_to_acceptor, struct net_seal *acceptor_to_dialer);
/* Seals len bytes of plain into out (len + NET_SEAL_OVERHEAD bytes). */
void net_seal(struct net_seal *s, const uint8_t *plain, size_t len, uint8_t *out);
/* Size of the record at the start of buf: > 0 whole, 0 need more, -1 its
 * plaintext would exceed max_plain (malformed). */
long net_record_size(const uint8_t *buf, size_t len, size_t max_plain);
/* Opens one whole record in place: its plaintext is then at rec + 4, size -
 * NET_SEAL_OVERHEAD bytes. Returns 0, or -1 if it is not the next record its
 * peer sealed (forged, tampered, replayed, reordered, from another connection). */
int net_open(struct net_seal *s, uint8_t *rec, size_t size);

/* secret.c: label is "linkraft-hello" or "linkraft-welcome". */
void net_auth_mac(const uint8_t *secret, size_t secret_len, const char *label, const struct net_transcript *t,
                  uint8_t mac[NET_MAC_BYTES]);
int net_auth_check(const uint8_t *secret, size_t secret_len, const char *label, const struct net_transcript *t,
                   const uint8_t mac[NET_MAC_BYTES]);

#endif
