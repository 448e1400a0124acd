/*
 * admin_auth.h — proof that an admin HTTP request (member add|promote|remove,
 * transfer-leader, writes to the KV test hook) comes from someone who holds
 * the cluster secret, without the secret crossing the network (SPEC §3,
 * docs/security.md).
 *
 * The client sends
 *
 *     Authorization: Linkraft-HMAC node=N, ts=T, nonce=HEX32, mac=HEX64
 *
 * where mac = HMAC-SHA-512-256(admin key, "linkraft-admin-v1\n" METHOD "\n"
 * TARGET "\n" N "\n" T "\n" HEX32 "\n" hex(SHA-256(body))), the admin key is
 * HMAC-SHA-512-256(secret, "linkraft-admin-key-v1") (so it never equals the
 * key the peer handshake uses), TARGET is the path as sent plus "?query" if
 * any, N the id of the node meant to carry the request out (0: any node,
 * accepted only where the caller allows it), T the client's Unix time in
 * milliseconds and HEX32 16 random bytes. A node accepts a proof only within
 * ADMIN_AUTH_WINDOW_MS of its own clock and only once: it remembers every
 * nonce it accepted until the proof could no longer pass the time check, so
 * a captured request cannot be replayed on it.
 *
 * Everything here is pure (time and nonces are passed in), for unit tests.
 */
#ifndef LINKRAFT_ADMIN_AUTH_H
#define LINKRAFT_ADMIN_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ADMIN_AUTH_SCHEME "Linkraft-HMAC"
#define ADMIN_AUTH_WINDOW_MS 60000 /* a proof is good for this long either side of the node's clock */
#define ADMIN_AUTH_NONCE_BYTES 16
#define ADMIN_AUTH_KEY_BYTES 32
#define ADMIN_AUTH_MAC_BYTES 32
#define ADMIN_AUTH_HEADER_MAX 192   /* the header's value, with its NUL */
#define ADMIN_AUTH_TS_MAX (1ULL << 53) /* ms (year 287,000): keeps ts ± the window in range */
#define ADMIN_REPLAY_MAX 4096       /* nonces remembered at once; more valid proofs within the window: refused */

enum admin_auth_result {
    ADMIN_AUTH_OK = 0,
    ADMIN_AUTH_MISSING = -1,    /* no Authorization header */
    ADMIN_AUTH_MALFORMED = -2,  /* not "Linkraft-HMAC node=.., ts=.., nonce=.., mac=.." */
    ADMIN_AUTH_WRONG_NODE = -3, /* made for another node */
    ADMIN_AUTH_STALE = -4,      /* ts outside the window (or the clocks disagree) */
    ADMIN_AUTH_BAD_MAC = -5,    /* wrong secret, or the request was changed */
    ADMIN_AUTH_REPLAY = -6,     /* this nonce was already accepted */
    ADMIN_AUTH_BUSY = -7,       /* ADMIN_REPLAY_MAX proofs within the window */
    ADMIN_AUTH_EARLY = -8,      /* made before not_before (the node's start) */
};

/* A person-readable reason for a result, saying what to do. */
const char *admin_auth_strerror(int rc);

/* The nonces accepted and not yet expired. Zero-initialized = empty; no
 * allocation (it lives inside the node). The memory does not survive a
 * restart, so a node sets not_before to its start time: a proof made before
 * it (which it might have accepted in its previous life) fails. */
struct admin_replay {
    int64_t not_before;         /* Unix time in ms; 0: no bound */
    size_t n;
    struct {
        uint8_t nonce[ADMIN_AUTH_NONCE_BYTES];
        int64_t expires;        /* the proof's ts + ADMIN_AUTH_WINDOW_MS */
    } e[ADMIN_REPLAY_MAX];
};

/* The fields of an Authorization value. */
struct admin_proof {
    uint64_t node;
    int64_t ts;                 /* Unix ms */
    uint8_t nonce[ADMIN_AUTH_NONCE_BYTES];
    uint8_t mac[ADMIN_AUTH_MAC_BYTES];
};

/* Reads "Linkraft-HMAC node=N, ts=T, nonce=HEX32, mac=HEX64" (hdr, len
 * bytes, untrusted): the scheme case-insensitively, each field exactly once
 * in any order, separated by commas and spaces; numbers in plain decimal
 * (no sign, no leading zero, at most 19 digits; ts at most
 * ADMIN_AUTH_TS_MAX), hex in lowercase. Returns
 * 0, or -1 (p's contents then unspecified). */
int admin_auth_parse(const char *hdr, size_t len, struct admin_proof *p);

/* Derives the admin key from the cluster secret. */
void admin_auth_key(uint8_t key[ADMIN_AUTH_KEY_BYTES], const uint8_t *secret, size_t secret_len);

/* Writes the Authorization header's value (without "Authorization: ") for
 * a request of method to target with body, meant for node (0: any), made
 * at now_ms with nonce. Returns 0, or -1 if cap (>= ADMIN_AUTH_HEADER_MAX
 * is enough) is too small. */
int admin_auth_sign(const uint8_t key[ADMIN_AUTH_KEY_BYTES], uint64_t node, const char *method, const char *target,
                    const void *body, size_t body_len, int64_t now_ms, const uint8_t nonce[ADMIN_AUTH_NONCE_BYTES],
                    char *out, size_t cap);

/* Checks an Authorization value (hdr, hdr_len bytes; NULL: missing) for a
 * request of method to target with body, received by node self at now_ms.
 * A proof for node 0 passes only if any_node. On ADMIN_AUTH_OK with
 * consume, its nonce is remembered in seen (which may be NULL when not
 * consuming): the same proof then fails with ADMIN_AUTH_REPLAY. The MAC is
 * checked before seen is touched, so only holders of the secret can fill it.
 * Returns an admin_auth_result. */
int admin_auth_verify(const uint8_t key[ADMIN_AUTH_KEY_BYTES], struct admin_replay *seen, uint64_t self,
                      bool any_node, const char *method, const char *target, const void *body, size_t body_len,
                      const char *hdr, size_t hdr_len, int64_t now_ms, bool consume);

/* Whether ip (text, no port: "127.0.0.1", "::1", "::ffff:127.0.0.2") is a
 * loopback address. */
bool admin_ip_is_loopback(const char *ip, size_t len);

/* Whether "ip:port" or "[ip6]:port" (struct http_request's peer) is on
 * loopback. */
bool admin_peer_is_loopback(const char *peer);

#endif
