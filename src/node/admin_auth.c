/*
 * admin_auth.c — signing and checking admin requests with the cluster
 * secret (admin_auth.h): HMAC-SHA-512-256 over the request's method,
 * target, intended node, time, nonce and body hash; a window on time; a
 * memory of accepted nonces against replay; and the loopback test used when
 * a cluster has no secret.
 */
#include "admin_auth.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#define MAC_BYTES ADMIN_AUTH_MAC_BYTES
_Static_assert(ADMIN_AUTH_MAC_BYTES == crypto_auth_hmacsha512256_BYTES, "the MAC is HMAC-SHA-512-256's");
_Static_assert(ADMIN_AUTH_KEY_BYTES == crypto_auth_hmacsha512256_BYTES, "the admin key is one such MAC");

const char *admin_auth_strerror(int rc)
{
    switch (rc) {
    case ADMIN_AUTH_OK: return "ok";
    case ADMIN_AUTH_MISSING:
        return "admin requests need proof of the cluster secret: use the linkraft command with --secret-file "
               "(docs/security.md)";
    case ADMIN_AUTH_MALFORMED: return "the Authorization header is not a Linkraft-HMAC proof";
    case ADMIN_AUTH_WRONG_NODE: return "the proof was made for another node";
    case ADMIN_AUTH_STALE:
        return "the proof's time is more than 60 s away from this node's clock: check both clocks (NTP)";
    case ADMIN_AUTH_BAD_MAC: return "the proof does not match: wrong secret, or the request was changed on the way";
    case ADMIN_AUTH_REPLAY: return "this proof was already used: each request needs a fresh one";
    case ADMIN_AUTH_BUSY: return "too many admin requests within a minute: retry later";
    case ADMIN_AUTH_EARLY: return "the proof was made before this node started: make a new one";
    default: return "unknown error";
    }
}

void admin_auth_key(uint8_t key[ADMIN_AUTH_KEY_BYTES], const uint8_t *secret, size_t secret_len)
{
    static const char label[] = "linkraft-admin-key-v1";
    crypto_auth_hmacsha512256_state st;
    crypto_auth_hmacsha512256_init(&st, secret, secret_len);
    crypto_auth_hmacsha512256_update(&st, (const uint8_t *)label, sizeof label - 1);
    crypto_auth_hmacsha512256_final(&st, key);
    sodium_memzero(&st, sizeof st);
}

/* mac over the canonical text of the request (admin_auth.h). */
static void compute_mac(const uint8_t key[ADMIN_AUTH_KEY_BYTES], uint64_t node, const char *method,
                        const char *target, const void *body, size_t body_len, int64_t ts,
                        const char nonce_hex[2 * ADMIN_AUTH_NONCE_BYTES + 1], uint8_t mac[MAC_BYTES])
{
    uint8_t digest[crypto_hash_sha256_BYTES];
    char digest_hex[2 * sizeof digest + 1], fields[128];
    crypto_hash_sha256(digest, body, body_len);
    sodium_bin2hex(digest_hex, sizeof digest_hex, digest, sizeof digest);
    snprintf(fields, sizeof fields, "\n%" PRIu64 "\n%" PRId64 "\n%s\n%s", node, ts, nonce_hex, digest_hex);

    crypto_auth_hmacsha512256_state st;
    crypto_auth_hmacsha512256_init(&st, key, ADMIN_AUTH_KEY_BYTES);
    crypto_auth_hmacsha512256_update(&st, (const uint8_t *)"linkraft-admin-v1\n", 18);
    crypto_auth_hmacsha512256_update(&st, (const uint8_t *)method, strlen(method));
    crypto_auth_hmacsha512256_update(&st, (const uint8_t *)"\n", 1);
    crypto_auth_hmacsha512256_update(&st, (const uint8_t *)target, strlen(target));
    crypto_auth_hmacsha512256_update(&st, (const uint8_t *)fields, strlen(fields));
    crypto_auth_hmacsha512256_final(&st, mac);
    sodium_memzero(&st, sizeof st);
}

int admin_auth_sign(const uint8_t key[ADMIN_AUTH_KEY_BYTES], uint64_t node, const char *method, const char *target,
                    const void *body, size_t body_len, int64_t now_ms, const uint8_t nonce[ADMIN_AUTH_NONCE_BYTES],
                    char *out, size_t cap)
{
    char nonce_hex[2 * ADMIN_AUTH_NONCE_BYTES + 1], mac_hex[2 * MAC_BYTES + 1];
    uint8_t mac[MAC_BYTES];
    sodium_bin2hex(nonce_hex, sizeof nonce_hex, nonce, ADMIN_AUTH_NONCE_BYTES);
    compute_mac(key, node, method, target, body, body_len, now_ms, nonce_hex, mac);
    sodium_bin2hex(mac_hex, sizeof mac_hex, mac, sizeof mac);
    int n = snprintf(out, cap, ADMIN_AUTH_SCHEME " node=%" PRIu64 ", ts=%" PRId64 ", nonce=%s, mac=%s", node, now_ms,
                     nonce_hex, mac_hex);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* A decimal without sign or leading zeros (so one number has one spelling),
 * at most 19 digits. */
static int parse_dec(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 19 || (len > 1 && s[0] == '0'))
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Exactly 2*bytes lowercase hex digits. */
static int parse_hex(const char *s, size_t len, uint8_t *out, size_t bytes)
{
    if (len != 2 * bytes)
        return -1;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return -1;
    size_t got = 0;
    return sodium_hex2bin(out, bytes, s, len, NULL, &got, NULL) || got != bytes ? -1 : 0;
}

int admin_auth_parse(const char *h, size_t len, struct admin_proof *p)
{
    size_t slen = strlen(ADMIN_AUTH_SCHEME);
    if (len <= slen || strncasecmp(h, ADMIN_AUTH_SCHEME, slen) || h[slen] != ' ')
        return -1;
    unsigned have = 0;
    size_t i = slen;
    while (i < len) {
        while (i < len && (h[i] == ' ' || h[i] == ','))
            i++;
        if (i == len)
            break;
        size_t k = i;
        while (i < len && h[i] != '=' && h[i] != ',' && h[i] != ' ')
            i++;
        if (i == len || h[i] != '=')
            return -1;
        size_t klen = i - k, v = ++i;
        while (i < len && h[i] != ',' && h[i] != ' ')
            i++;
        const char *val = h + v;
        size_t vlen = i - v;
        unsigned bit;
        uint64_t num;
        if (klen == 4 && !memcmp(h + k, "node", 4)) {
            bit = 1;
            if (parse_dec(val, vlen, &p->node))
                return -1;
        } else if (klen == 2 && !memcmp(h + k, "ts", 2)) {
            bit = 2;
            if (parse_dec(val, vlen, &num) || num > ADMIN_AUTH_TS_MAX)
                return -1;
            p->ts = (int64_t)num;
        } else if (klen == 5 && !memcmp(h + k, "nonce", 5)) {
            bit = 4;
            if (parse_hex(val, vlen, p->nonce, ADMIN_AUTH_NONCE_BYTES))
                return -1;
        } else if (klen == 3 && !memcmp(h + k, "mac", 3)) {
            bit = 8;
            if (parse_hex(val, vlen, p->mac, MAC_BYTES))
                return -1;
        } else {
            return -1;
        }
        if (have & bit)
            return -1;
        have |= bit;
    }
    return have == 15 ? 0 : -1;
}

/* Forgets the nonces whose proofs could no longer pass the time check. */
static void replay_expire(struct admin_replay *seen, int64_t now_ms)
{
    size_t w = 0;
    for (size_t i = 0; i < seen->n; i++)
        if (seen->e[i].expires >= now_ms)
            seen->e[w++] = seen->e[i];
    seen->n = w;
}

int admin_auth_verify(const uint8_t key[ADMIN_AUTH_KEY_BYTES], struct admin_replay *seen, uint64_t self,
                      bool any_node, const char *method, const char *target, const void *body, size_t body_len,
                      const char *hdr, size_t hdr_len, int64_t now_ms, bool consume)
{
    if (!hdr)
        return ADMIN_AUTH_MISSING;
    struct admin_proof p;
    if (admin_auth_parse(hdr, hdr_len, &p))
        return ADMIN_AUTH_MALFORMED;
    if (p.node != self && !(p.node == 0 && any_node))
        return ADMIN_AUTH_WRONG_NODE;
    if (p.ts < now_ms - ADMIN_AUTH_WINDOW_MS || p.ts > now_ms + ADMIN_AUTH_WINDOW_MS)
        return ADMIN_AUTH_STALE;
    uint8_t want[MAC_BYTES];
    char nonce_hex[2 * ADMIN_AUTH_NONCE_BYTES + 1];
    sodium_bin2hex(nonce_hex, sizeof nonce_hex, p.nonce, ADMIN_AUTH_NONCE_BYTES);
    compute_mac(key, p.node, method, target, body, body_len, p.ts, nonce_hex, want);
    int match = sodium_memcmp(want, p.mac, MAC_BYTES) == 0; /* constant time */
    if (!match)
        return ADMIN_AUTH_BAD_MAC;
    if (!consume)
        return ADMIN_AUTH_OK;
    if (p.ts < seen->not_before)
        return ADMIN_AUTH_EARLY;
    replay_expire(seen, now_ms);
    for (size_t i = 0; i < seen->n; i++)
        if (!memcmp(seen->e[i].nonce, p.nonce, ADMIN_AUTH_NONCE_BYTES))
            return ADMIN_AUTH_REPLAY;
    if (seen->n == ADMIN_REPLAY_MAX)
        return ADMIN_AUTH_BUSY; /* forgetting one would let it be replayed */
    memcpy(seen->e[seen->n].nonce, p.nonce, ADMIN_AUTH_NONCE_BYTES);
    seen->e[seen->n].expires = p.ts + ADMIN_AUTH_WINDOW_MS;
    seen->n++;
    return ADMIN_AUTH_OK;
}

bool admin_ip_is_loopback(const char *ip, size_t len)
{
    char tmp[INET6_ADDRSTRLEN];
    if (len == 0 || len >= sizeof tmp)
        return false;
    memcpy(tmp, ip, len);
    tmp[len] = 0;
    uint8_t a[16];
    if (inet_pton(AF_INET, tmp, a) == 1)
        return a[0] == 127;
    if (inet_pton(AF_INET6, tmp, a) != 1)
        return false;
    static const uint8_t v6_loopback[16] = { [15] = 1 };
    static const uint8_t v4_mapped[12] = { [10] = 0xff, [11] = 0xff };
    return !memcmp(a, v6_loopback, 16) || (!memcmp(a, v4_mapped, 12) && a[12] == 127);
}

bool admin_peer_is_loopback(const char *peer)
{
    const char *end;
    if (peer[0] == '[') {
        end = strchr(peer, ']');
        return end && admin_ip_is_loopback(peer + 1, (size_t)(end - peer - 1));
    }
    end = strrchr(peer, ':');
    return end && admin_ip_is_loopback(peer, (size_t)(end - peer));
}
