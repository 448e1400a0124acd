/*
 * secret.c — the shared cluster secret: loading it from --secret-file and
 * the handshake MACs computed with it (crypto_auth's HMAC-SHA-512-256, keyed
 * with the whole secret). Both directions are authenticated: the dialer's
 * HELLO proves it knows the secret, the acceptor's WELCOME proves the same,
 * and each MAC covers the whole exchange (both nonces, both ids, both
 * identities) so neither can be replayed on another connection or between
 * other nodes, and no identity can be changed on the way.
 */
#include "net/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

int net_load_secret(const char *path, uint8_t **out, size_t *len, char *err, size_t errcap)
{
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errcap, "cannot open secret file %s: %s", path, strerror(errno));
        return -1;
    }
    /* As ssh refuses a readable private key: a secret that other users of
     * the machine can read is not a secret, and saying so now beats finding
     * out after it leaked. */
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        snprintf(err, errcap, "cannot stat secret file %s: %s", path, strerror(errno));
        fclose(f);
        return -1;
    }
    if (st.st_mode & 077) {
        snprintf(err, errcap, "secret file %s is accessible by group or others (mode %04o): "
                 "run 'chmod 600 %s'", path, (unsigned)(st.st_mode & 07777), path);
        fclose(f);
        return -1;
    }
    /* Read one byte past the limit (and a newline) to tell "too long" from "exactly the limit". */
    uint8_t tmp[NET_SECRET_MAX + 3];
    size_t n = fread(tmp, 1, sizeof tmp, f);
    int read_err = ferror(f);
    fclose(f);
    if (read_err) {
        snprintf(err, errcap, "cannot read secret file %s", path);
        sodium_memzero(tmp, sizeof tmp);
        return -1;
    }
    if (n > 0 && tmp[n - 1] == '\n')
        n--;
    if (n > 0 && tmp[n - 1] == '\r')
        n--;
    if (n < NET_SECRET_MIN || n > NET_SECRET_MAX) {
        snprintf(err, errcap, "secret file %s: the secret must be %d to %d bytes, it is %s%zu",
                 path, NET_SECRET_MIN, NET_SECRET_MAX, n > NET_SECRET_MAX ? "over " : "", n > NET_SECRET_MAX ? (size_t)NET_SECRET_MAX : n);
        sodium_memzero(tmp, sizeof tmp);
        return -1;
    }
    uint8_t *s = malloc(n);
    if (!s) {
        snprintf(err, errcap, "secret file %s: out of memory", path);
        sodium_memzero(tmp, sizeof tmp);
        return -1;
    }
    memcpy(s, tmp, n);
    sodium_memzero(tmp, sizeof tmp);
    *out = s;
    *len = n;
    return 0;
}

bool net_addr_is_loopback(const char *addr)
{
    char host[CLUSTER_ADDR_MAX], why[128];
    uint16_t port;
    if (strlen(addr) >= CLUSTER_ADDR_MAX || cluster_split_addr(addr, host, sizeof host, &port, why, sizeof why))
        return false;
    if (!strcmp(host, "localhost"))
        return true;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return false; /* a name: it may resolve anywhere */
}

void net_auth_mac(const uint8_t *secret, size_t secret_len, const char *label, const struct net_transcript *t,
                  uint8_t mac[NET_MAC_BYTES])
{
    crypto_auth_hmacsha512256_state st;
    uint8_t ids[16];
    for (int i = 0; i < 8; i++) {
        ids[i] = (uint8_t)(t->from >> (8 * i));
        ids[8 + i] = (uint8_t)(t->to >> (8 * i));
    }
    crypto_auth_hmacsha512256_init(&st, secret, secret_len);
    crypto_auth_hmacsha512256_update(&st, (const uint8_t *)label, strlen(label) + 1);
    crypto_auth_hmacsha512256_update(&st, ids, sizeof ids);
    crypto_auth_hmacsha512256_update(&st, t->acceptor_nonce, NET_NONCE_BYTES);
    crypto_auth_hmacsha512256_update(&st, t->dialer_nonce, NET_NONCE_BYTES);
    crypto_auth_hmacsha512256_update(&st, t->acceptor_identity, NET_WIRE_IDENTITY_BYTES);
    crypto_auth_hmacsha512256_update(&st, t->dialer_identity, NET_WIRE_IDENTITY_BYTES);
    crypto_auth_hmacsha512256_final(&st, mac);
    sodium_memzero(&st, sizeof st);
}

int net_auth_check(const uint8_t *secret, size_t secret_len, const char *label, const struct net_transcript *t,
                   const uint8_t mac[NET_MAC_BYTES])
{
    uint8_t want[NET_MAC_BYTES];
    net_auth_mac(secret, secret_len, label, t, want);
    int ok = sodium_memcmp(want, mac, NET_MAC_BYTES) == 0; /* constant time */
    sodium_memzero(want, sizeof want);
    return ok;
}

/* ---- Sealed records ---------------------------------------------------------- */

/* Keys: K = BLAKE2b-256("linkraft-peer-key" || secret); for each direction
 * BLAKE2b-256(key K, label || BLAKE2b-512(transcript)). The transcript has
 * both fresh nonces, so every connection has its own keys, and the counter
 * nonces never repeat under one key. */
void net_session_keys(const uint8_t *secret, size_t secret_len, const struct net_transcript *t,
                      struct net_seal *d2a, struct net_seal *a2d)
{
    uint8_t k[32], th[64], ids[16];
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof k);
    crypto_generichash_update(&st, (const uint8_t *)"linkraft-peer-key", 18);
    crypto_generichash_update(&st, secret, secret_len);
    crypto_generichash_final(&st, k, sizeof k);
    for (int i = 0; i < 8; i++) {
        ids[i] = (uint8_t)(t->from >> (8 * i));
        ids[8 + i] = (uint8_t)(t->to >> (8 * i));
    }
    crypto_generichash_init(&st, NULL, 0, sizeof th);
    crypto_generichash_update(&st, ids, sizeof ids);
    crypto_generichash_update(&st, t->acceptor_nonce, NET_NONCE_BYTES);
    crypto_generichash_update(&st, t->dialer_nonce, NET_NONCE_BYTES);
    crypto_generichash_update(&st, t->acceptor_identity, NET_WIRE_IDENTITY_BYTES);
    crypto_generichash_update(&st, t->dialer_identity, NET_WIRE_IDENTITY_BYTES);
    crypto_generichash_final(&st, th, sizeof th);
    struct { struct net_seal *s; const char *label; } dirs[2] = { { d2a, "linkraft-d2a" }, { a2d, "linkraft-a2d" } };
    for (int d = 0; d < 2; d++) {
        crypto_generichash_init(&st, k, sizeof k, NET_SEAL_KEY_BYTES);
        crypto_generichash_update(&st, (const uint8_t *)dirs[d].label, strlen(dirs[d].label) + 1);
        crypto_generichash_update(&st, th, sizeof th);
        crypto_generichash_final(&st, dirs[d].s->key, NET_SEAL_KEY_BYTES);
        dirs[d].s->counter = 0;
    }
    sodium_memzero(k, sizeof k);
    sodium_memzero(&st, sizeof st);
}

static void seal_nonce(uint64_t counter, uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES])
{
    memset(nonce, 0, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    for (int i = 0; i < 8; i++)
        nonce[i] = (uint8_t)(counter >> (8 * i));
}

void net_seal(struct net_seal *s, const uint8_t *plain, size_t len, uint8_t *out)
{
    uint32_t clen = (uint32_t)(len + NET_SEAL_TAG_BYTES);
    for (int i = 0; i < 4; i++)
        out[i] = (uint8_t)(clen >> (8 * i));
    uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
    seal_nonce(s->counter++, nonce);
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + 4, NULL, plain, len, out, 4, NULL, nonce, s->key);
}

long net_record_size(const uint8_t *buf, size_t len, size_t max_plain)
{
    if (len < 4)
        return 0;
    uint32_t clen = (uint32_t)buf[0] | (uint32_t)buf[1] << 8 | (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 24;
    if (clen < NET_SEAL_TAG_BYTES || clen - NET_SEAL_TAG_BYTES > max_plain)
        return -1;
    return len >= 4 + (size_t)clen ? (long)(4 + clen) : 0;
}

int net_open(struct net_seal *s, uint8_t *rec, size_t size)
{
    uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
    seal_nonce(s->counter, nonce);
    unsigned long long mlen;
    /* In place: libsodium checks the tag before it writes the plaintext. */
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(rec + 4, &mlen, NULL, rec + 4, size - 4, rec, 4, nonce,
                                                   s->key) != 0)
        return -1;
    s->counter++;
    return 0;
}
