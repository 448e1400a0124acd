/*
 * test_admin_auth.c — the admin proof (admin_auth.h): a signed request
 * passes once; a wrong secret, a changed method, target, body or node, a
 * time outside the window, a replay and malformed headers fail; the nonce
 * memory forgets only what can no longer pass and refuses rather than
 * forgets when full; the loopback test. Time is passed in: nothing here
 * reads a clock.
 */
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "admin_auth.h"

static const char secret[] = "correct horse battery staple";
static const int64_t now = 1800000000000; /* ms */

static void key_of(const char *s, uint8_t key[ADMIN_AUTH_KEY_BYTES])
{
    admin_auth_key(key, (const uint8_t *)s, strlen(s));
}

static void nonce_of(unsigned v, uint8_t nonce[ADMIN_AUTH_NONCE_BYTES])
{
    memset(nonce, 0, ADMIN_AUTH_NONCE_BYTES);
    memcpy(nonce, &v, sizeof v);
}

/* Signs DELETE /api/v1/members/3 for node 1 at ts with nonce v. */
static void sign(char *out, const char *with_secret, uint64_t node, int64_t ts, unsigned v)
{
    uint8_t key[ADMIN_AUTH_KEY_BYTES], nonce[ADMIN_AUTH_NONCE_BYTES];
    key_of(with_secret, key);
    nonce_of(v, nonce);
    int rc = admin_auth_sign(key, node, "DELETE", "/api/v1/members/3", "{}", 2, ts, nonce, out, ADMIN_AUTH_HEADER_MAX);
    CHECK_EQ_I(rc, 0);
}

static int verify(struct admin_replay *seen, const char *hdr, const char *method, const char *target,
                  const char *body, bool any_node, int64_t at)
{
    uint8_t key[ADMIN_AUTH_KEY_BYTES];
    key_of(secret, key);
    return admin_auth_verify(key, seen, 1, any_node, method, target, body, strlen(body), hdr,
                             hdr ? strlen(hdr) : 0, at, true);
}

static struct admin_replay *fresh(void)
{
    return calloc(1, sizeof(struct admin_replay));
}

TEST(a_signed_request_passes_once)
{
    struct admin_replay *seen = fresh();
    char h[ADMIN_AUTH_HEADER_MAX];
    sign(h, secret, 1, now, 7);
    CHECK(!strncmp(h, "Linkraft-HMAC node=1, ts=1800000000000, nonce=07000000", 54));
    CHECK(strlen(h) < ADMIN_AUTH_HEADER_MAX);
    CHECK(strstr(h, secret) == NULL);
    CHECK_EQ_I(verify(seen, h, "DELETE", "/api/v1/members/3", "{}", false, now), ADMIN_AUTH_OK);
    CHECK_EQ_I(verify(seen, h, "DELETE", "/api/v1/members/3", "{}", false, now + 1), ADMIN_AUTH_REPLAY);
    /* Another nonce is another request. */
    sign(h, secret, 1, now, 8);
    CHECK_EQ_I(verify(seen, h, "DELETE", "/api/v1/members/3", "{}", false, now), ADMIN_AUTH_OK);
    free(seen);
}

TEST(anything_changed_fails)
{
    struct admin_replay *seen = fresh();
    char h[ADMIN_AUTH_HEADER_MAX];
    sign(h, "another secret of 16+ bytes", 1, now, 1);
    CHECK_EQ_I(verify(seen, h, "DELETE", "/api/v1/members/3", "{}", false, now), ADMIN_AUTH_BAD_MAC);
    sign(h, secret, 1, now, 2);
    CHECK_EQ_I(verify(seen, h, "POST", "/api/v1/members/3", "{}", false, now), ADMIN_AUTH_BAD_MAC);
    CHECK_EQ_I(verify(seen, h, "DELETE", "/api/v1/members/2", "{}", false, now), ADMIN_AUTH_BAD_MAC);
    CHECK_EQ_I(verify(seen, h, "DELETE", "/api/v1/members/3?x", "{}", false, now), ADMIN_AUTH_BAD_MAC);
    CHECK_EQ_I(verify(seen, h, "DELETE", "/api/v1/members/3", "{ }", false, now), ADMIN_AUTH_BAD_MAC);
    CHECK_EQ_I(verify(seen, h, "DELETE", "/api/v1/members/3", "", false, now), ADMIN_AUTH_BAD_MAC);
    /* A failed check remembers nothing: the genuine request still passes. */
    CHECK_EQ_U(seen->n, 0);
    CHECK_EQ_I(verify(seen, h, "DELETE", "/api/v1/members/3", "{}", false, now), ADMIN_AUTH_OK);

    /* The fields cannot be edited either: a changed ts, node or nonce breaks the MAC. */
    sign(h, secret, 1, now, 3);
    char *ts = strstr(h, "ts=1800000000000");
    REQUIRE(ts);
    ts[15] = '1';
    CHECK_EQ_I(verify(seen, h, "DELETE", "/api/v1/members/3", "{}", false, now), ADMIN_AUTH_BAD_MAC);
    sign(h, secret, 1, now, 4);
    char *nonce = strstr(h, "nonce=");
    nonce[6] = nonce[6] == 'a' ? 'b' : 'a';
    CHECK_EQ_I(verify(seen, h, "DELETE", "/api/v1/members/3", "{}", false, now), ADMIN_AUTH_BAD_MAC);
    free(seen);
}

TEST(made_for_another_node_fails)
{
    struct admin_replay *seen = fresh();
    char h[ADMIN_AUTH_HEADER_MAX];
    sign(h, secret, 2, now, 1);
    CHECK_EQ_I(verify(seen, h, "DELETE", "/api/v1/members/3", "{}", true, now), ADMIN_AUTH_WRONG_NODE);
    /* node=0 (any node) only where the caller allows it. */
    sign(h, secret, 0, now, 2);
    CHECK_EQ_I(verify(seen, h, "DELETE", "/api/v1/members/3", "{}", false, now), ADMIN_AUTH_WRONG_NODE);
    CHECK_EQ_I(verify(seen, h, "DELETE", "/api/v1/members/3", "{}", true, now), ADMIN_AUTH_OK);
    free(seen);
}

TEST(outside_the_window_fails)
{
    struct admin_replay *seen = fresh();
    char h[ADMIN_AUTH_HEADER_MAX];
    sign(h, secret, 1, now - ADMIN_AUTH_WINDOW_MS - 1, 1);
    CHECK_EQ_I(verify(seen, h, "DELETE", "/api/v1/members/3", "{}", false, now), ADMIN_AUTH_STALE);
    sign(h, secret, 1, now + ADMIN_AUTH_WINDOW_MS + 1, 2);
    CHECK_EQ_I(verify(seen, h, "DELETE", "/api/v1/members/3", "{}", false, now), ADMIN_AUTH_STALE);
    sign(h, secret, 1, now - ADMIN_AUTH_WINDOW_MS, 3);
    CHECK_EQ_I(verify(seen, h, "DELETE", "/api/v1/members/3", "{}", false, now), ADMIN_AUTH_OK);
    free(seen);
}

TEST(nonces_are_forgotten_only_when_they_cannot_pass)
{
    struct admin_replay *seen = fresh();
    char h[ADMIN_AUTH_HEADER_MAX];
    /* Made for a minute ahead (a client clock ahead of ours): still refused
     * as a replay just before it goes stale, two minutes later. */
    sign(h, secret, 1, now + ADMIN_AUTH_WINDOW_MS, 1);
    CHECK_EQ_I(verify(seen, h, "DELETE", "/api/v1/members/3", "{}", false, now), ADMIN_AUTH_OK);
    CHECK_EQ_I(verify(seen, h, "DELETE", "/api/v1/members/3", "{}", false, now + 2 * ADMIN_AUTH_WINDOW_MS),
               ADMIN_AUTH_REPLAY);
    CHECK_EQ_I(verify(seen, h, "DELETE", "/api/v1/members/3", "{}", false, now + 2 * ADMIN_AUTH_WINDOW_MS + 1),
               ADMIN_AUTH_STALE);
    /* A later request purges it. */
    sign(h, secret, 1, now + 3 * ADMIN_AUTH_WINDOW_MS, 2);
    CHECK_EQ_I(verify(seen, h, "DELETE", "/api/v1/members/3", "{}", false, now + 3 * ADMIN_AUTH_WINDOW_MS),
               ADMIN_AUTH_OK);
    CHECK_EQ_U(seen->n, 1);
    free(seen);
}

TEST(made_before_the_start_fails)
{
    struct admin_replay *seen = fresh();
    char h[ADMIN_AUTH_HEADER_MAX];
    seen->not_before = now;
    sign(h, secret, 1, now - 1, 1);
    CHECK_EQ_I(verify(seen, h, "DELETE", "/api/v1/members/3", "{}", false, now), ADMIN_AUTH_EARLY);
    sign(h, secret, 1, now, 2);
    CHECK_EQ_I(verify(seen, h, "DELETE", "/api/v1/members/3", "{}", false, now), ADMIN_AUTH_OK);
    free(seen);
}

TEST(full_memory_refuses_rather_than_forgets)
{
    struct admin_replay *seen = fresh();
    char h[ADMIN_AUTH_HEADER_MAX];
    for (unsigned i = 0; i < ADMIN_REPLAY_MAX; i++) {
        sign(h, secret, 1, now, 1000 + i);
        REQUIRE(verify(seen, h, "DELETE", "/api/v1/members/3", "{}", false, now) == ADMIN_AUTH_OK);
    }
    sign(h, secret, 1, now, 99);
    CHECK_EQ_I(verify(seen, h, "DELETE", "/api/v1/members/3", "{}", false, now), ADMIN_AUTH_BUSY);
    sign(h, secret, 1, now, 1000);
    CHECK_EQ_I(verify(seen, h, "DELETE", "/api/v1/members/3", "{}", false, now), ADMIN_AUTH_REPLAY);
    /* Once they expire there is room again. */
    sign(h, secret, 1, now + ADMIN_AUTH_WINDOW_MS + 1, 99);
    CHECK_EQ_I(verify(seen, h, "DELETE", "/api/v1/members/3", "{}", false, now + ADMIN_AUTH_WINDOW_MS + 1),
               ADMIN_AUTH_OK);
    free(seen);
}

TEST(malformed_headers_fail)
{
    struct admin_replay *seen = fresh();
    char good[ADMIN_AUTH_HEADER_MAX];
    sign(good, secret, 1, now, 1);
    const char *mac = strstr(good, "mac="), *nonce = strstr(good, "nonce=");
    char buf[512];
    CHECK_EQ_I(verify(seen, NULL, "DELETE", "/api/v1/members/3", "{}", false, now), ADMIN_AUTH_MISSING);
    const char *bad[] = {
        "", "Bearer abc", "Linkraft-HMAC", "Linkraft-HMAC ", "Linkraft-HMAC node=1",
        "Linkraft-HMAC node=1, ts=1800000000000, nonce=00, mac=00",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_EQ_I(verify(seen, bad[i], "DELETE", "/api/v1/members/3", "{}", false, now), ADMIN_AUTH_MALFORMED);
    /* A field twice, an unknown field, a signed or zero-padded number, upper-case hex. */
    snprintf(buf, sizeof buf, "%s, node=1", good);
    CHECK_EQ_I(verify(seen, buf, "DELETE", "/api/v1/members/3", "{}", false, now), ADMIN_AUTH_MALFORMED);
    snprintf(buf, sizeof buf, "%s, extra=1", good);
    CHECK_EQ_I(verify(seen, buf, "DELETE", "/api/v1/members/3", "{}", false, now), ADMIN_AUTH_MALFORMED);
    snprintf(buf, sizeof buf, "Linkraft-HMAC node=01, ts=1800000000000, %s", nonce);
    CHECK_EQ_I(verify(seen, buf, "DELETE", "/api/v1/members/3", "{}", false, now), ADMIN_AUTH_MALFORMED);
    snprintf(buf, sizeof buf, "Linkraft-HMAC node=1, ts=-1800000000000, %s", nonce);
    CHECK_EQ_I(verify(seen, buf, "DELETE", "/api/v1/members/3", "{}", false, now), ADMIN_AUTH_MALFORMED);
    snprintf(buf, sizeof buf, "Linkraft-HMAC node=1, ts=9223372036854775807, %s", nonce);
    CHECK_EQ_I(verify(seen, buf, "DELETE", "/api/v1/members/3", "{}", false, now), ADMIN_AUTH_MALFORMED);
    snprintf(buf, sizeof buf, "%s", good);
    char *m = strstr(buf, "mac=") + 4;
    for (; *m; m++)
        if (*m >= 'a' && *m <= 'f')
            *m = (char)(*m - 'a' + 'A');
    CHECK_EQ_I(verify(seen, buf, "DELETE", "/api/v1/members/3", "{}", false, now), ADMIN_AUTH_MALFORMED);
    /* Order and spacing do not matter; the scheme is case-insensitive. */
    snprintf(buf, sizeof buf, "linkraft-hmac %s,%.*s", mac, (int)(mac - good - 14 - 2), good + 14);
    CHECK_EQ_I(verify(seen, buf, "DELETE", "/api/v1/members/3", "{}", false, now), ADMIN_AUTH_OK);
    CHECK(strcmp(admin_auth_strerror(ADMIN_AUTH_BAD_MAC), "unknown error"));
    free(seen);
}

TEST(loopback)
{
    CHECK(admin_peer_is_loopback("127.0.0.1:5000"));
    CHECK(admin_peer_is_loopback("127.3.2.1:1"));
    CHECK(admin_peer_is_loopback("[::1]:80"));
    CHECK(admin_peer_is_loopback("[::ffff:127.0.0.1]:80"));
    CHECK(!admin_peer_is_loopback("10.0.0.1:5000"));
    CHECK(!admin_peer_is_loopback("128.0.0.1:5000"));
    CHECK(!admin_peer_is_loopback("[::2]:80"));
    CHECK(!admin_peer_is_loopback("[::ffff:10.0.0.1]:80"));
    CHECK(!admin_peer_is_loopback("[::1:80"));
    CHECK(!admin_peer_is_loopback(""));
    CHECK(admin_ip_is_loopback("127.0.0.1", 9));
    CHECK(!admin_ip_is_loopback("127.0.0.1x", 10));
    CHECK(!admin_ip_is_loopback("localhost", 9));
}

int main(void)
{
    RUN(a_signed_request_passes_once);
    RUN(anything_changed_fails);
    RUN(made_for_another_node_fails);
    RUN(outside_the_window_fails);
    RUN(nonces_are_forgotten_only_when_they_cannot_pass);
    RUN(made_before_the_start_fails);
    RUN(full_memory_refuses_rather_than_forgets);
    RUN(malformed_headers_fail);
    RUN(loopback);
    return HARNESS_END();
}
