/*
 * secret.c — the shared cluster secret: loading it from --secret-file and
 * the handshake MACs computed with it (crypto_auth's HMAC-SHA-512-256, keyed
 * with the whole secret). Both directions are authenticated: the dialer's
 * HELLO proves it knows the secret, the acceptor's WELCOME proves the same,
 * and each MAC covers the whole exchange (both nonces, both ids, both
 * identities) so neither can be replayed on another connection or between
 * other nodes, and no identity can be changed on the way.
 */
#include "net/net_int.h"

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
