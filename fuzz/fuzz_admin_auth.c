/*
 * fuzz_admin_auth.c — libFuzzer driver for admin_auth_parse and
 * admin_auth_verify (src/node/admin_auth.c), which read the Authorization
 * header of every admin request from anyone who can reach a node. The input
 * is the header's value. Properties: verify never accepts it, for a key the
 * input cannot know (a forged proof never passes), and calls it malformed
 * exactly when parse refuses it; an accepted input, written back in the
 * canonical form, parses to the same fields; a proof signed with those
 * fields passes once and is then a replay.
 */
#include "fuzz.h"

#include "admin_auth.h"

#include <inttypes.h>
#include <string.h>

#define FZ_AA_NOW 1800000000000LL /* ms */

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    static struct admin_replay seen;
    static const uint8_t key[ADMIN_AUTH_KEY_BYTES] = { 1, 2, 3 };
    const char *hdr = (const char *)data;

    struct admin_proof p;
    int parsed = admin_auth_parse(hdr, size, &p);
    memset(&seen, 0, sizeof seen);
    int rc = admin_auth_verify(key, &seen, 1, true, "PUT", "/api/v1/kv/k", "v", 1, hdr, size, FZ_AA_NOW, true);
    FUZZ_CHECK(rc != ADMIN_AUTH_OK);
    FUZZ_CHECK((rc == ADMIN_AUTH_MALFORMED || rc == ADMIN_AUTH_MISSING) == (parsed != 0));
    if (parsed)
        return 0;

    char canon[ADMIN_AUTH_HEADER_MAX], hex_nonce[2 * ADMIN_AUTH_NONCE_BYTES + 1], hex_mac[2 * ADMIN_AUTH_MAC_BYTES + 1];
    for (size_t i = 0; i < ADMIN_AUTH_NONCE_BYTES; i++)
        snprintf(hex_nonce + 2 * i, 3, "%02x", p.nonce[i]);
    for (size_t i = 0; i < ADMIN_AUTH_MAC_BYTES; i++)
        snprintf(hex_mac + 2 * i, 3, "%02x", p.mac[i]);
    int n = snprintf(canon, sizeof canon, "Linkraft-HMAC node=%" PRIu64 ", ts=%" PRId64 ", nonce=%s, mac=%s", p.node,
                     p.ts, hex_nonce, hex_mac);
    FUZZ_CHECK(n > 0 && (size_t)n < sizeof canon);
    struct admin_proof q;
    FUZZ_CHECK(admin_auth_parse(canon, (size_t)n, &q) == 0);
    FUZZ_CHECK(q.node == p.node && q.ts == p.ts && !memcmp(q.nonce, p.nonce, sizeof q.nonce) &&
               !memcmp(q.mac, p.mac, sizeof q.mac));

    /* Signed for real with the same node, time and nonce: accepted once,
     * where the node and time fit; then a replay. */
    char signed_hdr[ADMIN_AUTH_HEADER_MAX];
    FUZZ_CHECK(admin_auth_sign(key, p.node, "PUT", "/api/v1/kv/k", "v", 1, p.ts, p.nonce, signed_hdr,
                               sizeof signed_hdr) == 0);
    memset(&seen, 0, sizeof seen);
    rc = admin_auth_verify(key, &seen, 1, true, "PUT", "/api/v1/kv/k", "v", 1, signed_hdr, strlen(signed_hdr),
                           p.ts, true);
    bool node_fits = p.node == 0 || p.node == 1;
    FUZZ_CHECK(rc == (node_fits ? ADMIN_AUTH_OK : ADMIN_AUTH_WRONG_NODE));
    if (node_fits)
        FUZZ_CHECK(admin_auth_verify(key, &seen, 1, true, "PUT", "/api/v1/kv/k", "v", 1, signed_hdr,
                                     strlen(signed_hdr), p.ts, true) == ADMIN_AUTH_REPLAY);
    return 0;
}
