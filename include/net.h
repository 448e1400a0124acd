/*
 * net.h — the transport between Raft peers: TCP on the node's libuv loop,
 * carrying frames of the message codec (include/raft_codec.h).
 *
 * Shape: each node dials every peer it has an address for and uses that
 * outbound connection only to send; it accepts inbound connections on its
 * raft address only to receive. So there is exactly one connection per peer
 * per direction, no tie-breaking, and a dead or slow peer only ever affects
 * its own outbound queue.
 *
 *   - Reconnect with exponential backoff (with jitter) after a failure.
 *   - A bounded send queue per peer (max_queue_bytes): when a peer is slow
 *     or unreachable, new messages to it are dropped and counted — Raft
 *     tolerates loss, and memory never grows without bound. Nothing waits.
 *   - A partition is silent packet loss, not a reset: a connection on which
 *     nothing was acknowledged for idle_timeout_ms (the sender writes a small
 *     keepalive frame when it has nothing to send; the receiver expects
 *     traffic) is closed and redialled, so links heal promptly.
 *   - Handshake: the dialer first sends a HELLO naming itself and the node
 *     it meant to reach. With a shared secret (--secret-file), the acceptor
 *     first sends a random challenge and the dialer's HELLO carries
 *     crypto_auth (libsodium, HMAC-SHA-512-256) over challenge and ids; a
 *     wrong or missing MAC closes the connection. After it, every byte both
 *     ways is in XChaCha20-Poly1305 records keyed per connection and
 *     direction (docs/transport.md "Encryption"): a record that does not
 *     open closes the connection. A frame whose `from` is not the peer that
 *     authenticated is dropped.
 *   - Only peers are accepted: a HELLO from an id that net_set_peer was
 *     never given (not in the cluster file, not a member learned from the
 *     log, not being added) is refused and counted.
 *   - Memory: a read buffer grows with the bytes that really arrived, never
 *     with what a frame header announces, up to one largest frame per
 *     connection and max_inbound_bytes over all of them; a connection that
 *     would go over is closed and counted.
 *   - Anything malformed (bad magic, oversize length, bad checksum, bad
 *     field, a term at or above 2^63) is dropped and counted, the connection
 *     closed; it never reaches the Raft core and never crashes the node.
 *
 * All callbacks run on the loop thread. Every function must be called on it.
 */
#ifndef LINKRAFT_NET_H
#define LINKRAFT_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "raft.h"

#define NET_SECRET_MIN 16   /* bytes; shorter secrets are refused */
#define NET_SECRET_MAX 1024

/* Who a node is beyond its id (SPEC "Identity, lost disks"), sent in every
 * handshake and covered by its MACs. */
#define NET_ID_BYTES 16
struct net_identity {
    uint8_t cluster[NET_ID_BYTES];     /* the cluster's id, chosen at its bootstrap */
    uint8_t incarnation[NET_ID_BYTES]; /* random, made with the data directory */
    bool cluster_known;                /* false: a --join node not yet added */
    bool joined;                       /* the data directory started empty with --join */
};

/* What a check callback answers (values shared with the REFUSE reasons). */
enum net_check {
    NET_CHECK_OK = 0,
    NET_CHECK_OTHER_CLUSTER = 6, /* the peer's cluster id is not ours */
    NET_CHECK_REPLACED = 7,      /* the peer's incarnation is not the one we knew */
    NET_CHECK_INTERNAL = 8,      /* we could not record what we learnt */
};

/* Called at every handshake, on both sides, once the peer proved the secret
 * (if any): returns NET_CHECK_OK to go on, else the connection is refused
 * (the acceptor sends that reason) and counted. May be NULL: all accepted. */
typedef int (*net_check_cb)(void *ctx, raft_id peer, const struct net_identity *theirs);

/* Told how each outbound handshake ended: reason 0 = welcomed, else the
 * acceptor's REFUSE reason (enum net_check values among them) or -1 when
 * this side refused the acceptor. May be NULL. */
typedef void (*net_dial_cb)(void *ctx, raft_id peer, int reason);

struct net_options {
    raft_id self;
    const char *listen_addr;      /* "host:port", "[v6]:port" or "name:port" to bind */
    const uint8_t *secret;        /* NULL: no authentication */
    size_t secret_len;
    size_t max_queue_bytes;       /* per peer; default 8 MiB */
    size_t max_frame_bytes;       /* largest frame accepted; default RAFT_CODEC_MAX_FRAME */
    size_t max_inbound_bytes;     /* read buffers of all inbound connections together; default
                                   * 32 MiB, at least one largest frame */
    unsigned connect_timeout_ms;  /* default 1000 */
    unsigned idle_timeout_ms;     /* default 2000 (keepalives every idle/4) */
    unsigned backoff_min_ms;      /* default 50 */
    unsigned backoff_max_ms;      /* default 1000 */
    uint64_t seed;                /* jitter; any value */
    struct net_identity identity; /* sent in every handshake; all zero if unused */
    net_check_cb check;           /* with ctx of net_start */
    net_dial_cb dialed;
    /* Told, as a sentence, of a refusal only a person can fix: a peer
     * speaking another handshake version (a rolling upgrade gone wrong).
     * May be NULL; may be called often (every dial): rate-limit it. */
    void (*note)(void *ctx, const char *text);
};
void net_options_default(struct net_options *o, raft_id self, const char *listen_addr);

/* Delivers one decoded message. m and everything it points to are valid
 * only during the call (copy what you keep; raft_step copies). */
typedef void (*net_recv_cb)(void *ctx, const struct raft_message *m);

struct net;

/* Binds listen_addr and starts accepting. Returns 0, or -1 with a message in
 * err ("cannot bind 127.0.0.1:7001: address already in use"). The options,
 * listen_addr and secret are copied: the caller may free them on return.
 * After a failed bind the loop must still run once to close what was opened
 * (uv_run returns when it has). */
int net_start(uv_loop_t *loop, const struct net_options *o, net_recv_cb cb, void *ctx,
              struct net **out, char *err, size_t errcap);

/* Adds or updates a peer's raft address and dials it at once (so links are
 * up before the first election); a changed address drops the old link.
 * Returns 0, or -1 if addr is not host:port or id is 0 or self. */
int net_set_peer(struct net *n, raft_id id, const char *addr);
void net_remove_peer(struct net *n, raft_id id);

/* Lets id complete the handshake without being a peer this node dials (a
 * peer given to net_set_peer is always allowed; everyone else is refused
 * with NET_REFUSE_UNKNOWN_ID). For a member that only ever dials us.
 * Returns 0, or -1 if out of memory. */
int net_allow_id(struct net *n, raft_id id);

/* Encodes m (m->to names the peer) into its queue and returns at once.
 * Returns 0 if queued, 1 if dropped (queue full, unknown peer: counted),
 * -1 if m cannot be encoded (out of range, larger than max_frame_bytes, or
 * m->from is not self). The caller keeps ownership of m. Frames queued while
 * the peer is unreachable are sent, in order, once it connects; frames that
 * were being written when a connection broke are dropped (dropped_disconnect). */
int net_send(struct net *n, const struct raft_message *m);

/* Replaces the identity sent in later handshakes (a --join node that
 * learnt its cluster id). */
void net_set_identity(struct net *n, const struct net_identity *id);

/* True while an authenticated outbound connection to id is up. */
bool net_peer_connected(const struct net *n, raft_id id);

/* Bytes queued for id (including a write in flight); never above
 * max_queue_bytes. 0 for an unknown peer. */
size_t net_peer_queued_bytes(const struct net *n, raft_id id);

/* Why the last connection attempt to id failed or its link was closed
 * ("cannot connect to 127.0.0.1:7002: connection refused"), "" if none.
 * Valid until the next call into the transport. */
const char *net_peer_last_error(const struct net *n, raft_id id);

struct net_stats {
    uint64_t frames_sent, frames_received, bytes_sent, bytes_received;
    uint64_t dropped_queue_full;      /* messages not queued: peer slow or down */
    uint64_t dropped_unknown_peer;
    uint64_t dropped_malformed;       /* bad frames (the connection was closed) */
    uint64_t dropped_unauthenticated; /* connections refused at the handshake */
    uint64_t connects, disconnects;   /* outbound links authenticated / later lost */
    uint64_t dropped_disconnect;      /* frames lost in a write when a link broke */
    uint64_t dial_failures;           /* attempts that failed (resolve, connect, handshake, timeout) */
    uint64_t keepalive_timeouts;      /* links closed because nothing arrived for idle_timeout_ms */
    uint64_t accepted;                /* inbound connections accepted */
    uint64_t inbound_authenticated;   /* inbound connections that completed the handshake */
    uint64_t dropped_unknown_id;      /* HELLOs from an id that is not a peer (refused) */
    uint64_t dropped_bad_term;        /* frames with a term >= 2^63 (the connection was closed) */
    uint64_t dropped_over_budget;     /* inbound connections closed: max_inbound_bytes reached */
    uint64_t dropped_other_cluster;   /* handshakes refused: another cluster id (either side) */
    uint64_t dropped_replaced;        /* handshakes refused: a member's data directory was replaced */
    uint64_t dropped_forged;          /* connections closed: a sealed record failed to open (forged,
                                       * tampered, replayed, reordered) */
};
void net_get_stats(const struct net *n, struct net_stats *out);

/* Closes every handle; done(arg) runs once they are all closed (after which
 * n is freed). The loop must keep running until then. */
void net_stop(struct net *n, void (*done)(void *arg), void *arg);

/* Reads a secret file for --secret-file: at least NET_SECRET_MIN bytes
 * (trailing newline stripped), and a file that group or others may access is
 * refused (as ssh refuses a readable key). *out is malloc'd. Returns 0, or
 * -1 with a message in err. */
int net_load_secret(const char *path, uint8_t **out, size_t *len, char *err, size_t errcap);

/* True if addr ("host:port") is on the loopback interface: 127.0.0.0/8,
 * [::1] or "localhost". Any other name counts as not loopback (it may
 * resolve anywhere). Without a secret the peers must all be loopback. */
bool net_addr_is_loopback(const char *addr);

#endif
