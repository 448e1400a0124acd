/*
 * test_site.c — the site (include/site.h) over a single-node test host: the
 * JSON API row by row with its limits and errors, sessions (cookie and
 * Bearer, logout, expiry), CSRF and Origin rules, consistency headers,
 * idempotency keys, and the HTML pages with their forms.
 *
 * The host (tests/lib/direct_host.h) applies each proposed command straight
 * to a real store, as a one-node cluster whose every entry commits at once;
 * its clock is the test's to move. Requests go through site_dispatch, the
 * transport seam that site_handle feeds from the HTTP server; password
 * hashing runs on a real libuv loop's workers, so each call runs the loop
 * until its response arrives (with a deadline).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include <zlib.h>

#include "../harness.h"
#include "../lib/direct_host.h"
#include "command.h"
#include "common/json.h"
#include "site.h"
#include "store.h"

static struct direct_host dh;

/* ---- Calling the site ------------------------------------------------------------ */

struct response {
    int status;
    char headers[4096];
    char *body;
    size_t len;
    int done;
};

static int double_responses;

static void on_respond(void *rctx, int status, const char *headers, char *body, size_t len,
                       const struct site_lent *lent)
{
    struct response *r = rctx;
    if (lent) { /* a cached page's bytes: a copy of our own, given back at once */
        body = malloc(lent->len + 1);
        memcpy(body, lent->p, lent->len);
        body[lent->len] = 0;
        len = lent->len;
        lent->release(lent->arg);
    }
    if (r->done) {
        double_responses++;
        free(body);
        return;
    }
    r->status = status;
    snprintf(r->headers, sizeof r->headers, "%s", headers ? headers : "");
    r->body = body;
    r->len = len;
    r->done = 1;
}

static uv_loop_t loop;
static struct site *site;
static struct response resp;
static char dir[64];

/* A client: its cookies, kept across calls like a browser's. */
struct client {
    char session[80], csrf[40], idx[24], flash[24];
    char extra[1024];        /* extra request headers "Name: value\n" */
    char addr[64];           /* its address as the HTTP server resolved it; "" 127.0.0.1 */
    bool https;              /* the request came over TLS (request.secure) */
};

static void take_cookies(struct client *c, const char *headers)
{
    const char *p = headers;
    while ((p = strstr(p, "Set-Cookie: "))) {
        p += 12;
        const char *eq = strchr(p, '='), *semi = strchr(p, ';');
        if (!eq || !semi)
            break;
        char *dst = !strncmp(p, "lr_session=", 11) ? c->session : !strncmp(p, "lr_csrf=", 8) ? c->csrf
                  : !strncmp(p, "lr_idx=", 7) ? c->idx : !strncmp(p, "lr_flash=", 9) ? c->flash : NULL;
        size_t cap = dst == c->session ? sizeof c->session : dst == c->csrf ? sizeof c->csrf
                   : dst == c->flash ? sizeof c->flash : sizeof c->idx;
        if (dst)
            snprintf(dst, cap, "%.*s", (int)(semi - eq - 1), eq + 1);
    }
}

/* Makes a request and runs the loop until answered (10 s deadline). */
static struct response *call(struct client *c, const char *method, const char *target, const char *ctype,
                             const char *body)
{
    free(resp.body);
    memset(&resp, 0, sizeof resp);
    static char path[4096], query[4096];
    const char *q = strchr(target, '?');
    snprintf(path, sizeof path, "%.*s", (int)(q ? q - target : (long)strlen(target)), target);
    snprintf(query, sizeof query, "%s", q ? q + 1 : "");
    static struct http_header hs[16];
    static char cookie[300];
    size_t nh = 0;
    hs[nh++] = (struct http_header){ "Host", 4, "127.0.0.1:22001", 15 };
    if (ctype)
        hs[nh++] = (struct http_header){ "Content-Type", 12, ctype, strlen(ctype) };
    if (c) {
        int n = snprintf(cookie, sizeof cookie, "lr_csrf=%s; lr_session=%s; lr_idx=%s%s%s", c->csrf, c->session, c->idx,
                         c->flash[0] ? "; lr_flash=" : "", c->flash);
        hs[nh++] = (struct http_header){ "Cookie", 6, cookie, (size_t)n };
        /* extra: "Name: value\n" lines, parsed in place */
        static char extra[1024];
        snprintf(extra, sizeof extra, "%s", c->extra);
        for (char *line = extra; *line && nh < 16;) {
            char *nl = strchr(line, '\n'), *colon = strchr(line, ':');
            if (!nl || !colon)
                break;
            *nl = 0;
            char *v = colon + 1;
            while (*v == ' ')
                v++;
            hs[nh++] = (struct http_header){ line, (size_t)(colon - line), v, strlen(v) };
            line = nl + 1;
        }
    }
    static struct http_request req;
    memset(&req, 0, sizeof req);
    req.method = method;
    req.path = path;
    req.query = query;
    req.headers = hs;
    req.n_headers = nh;
    req.body = body ? body : "";
    req.body_len = body ? strlen(body) : 0;
    req.head = !strcmp(method, "HEAD");
    snprintf(req.peer, sizeof req.peer, "127.0.0.1:5555");
    snprintf(req.client, sizeof req.client, "%s", c && c->addr[0] ? c->addr : "127.0.0.1");
    req.secure = c && c->https;
    if (!site_dispatch(site, &req, on_respond, &resp)) {
        resp.status = -1;
        return &resp;
    }
    time_t deadline = time(NULL) + 10;
    while (!resp.done && time(NULL) < deadline)
        uv_run(&loop, UV_RUN_ONCE);
    if (!resp.done)
        resp.status = -2;
    if (c)
        take_cookies(c, resp.headers);
    return &resp;
}

static struct response *post_json(struct client *c, const char *path, const char *body)
{
    return call(c, "POST", path, "application/json", body);
}

static const char *header(const struct response *r, const char *name)
{
    static char v[512];
    const char *p = r->headers;
    size_t n = strlen(name);
    while (p && *p) {
        if (!strncasecmp(p, name, n) && p[n] == ':') {
            const char *s = p + n + 1;
            while (*s == ' ')
                s++;
            const char *e = strstr(s, "\r\n");
            snprintf(v, sizeof v, "%.*s", (int)(e ? e - s : (long)strlen(s)), s);
            return v;
        }
        p = strstr(p, "\r\n");
        if (p)
            p += 2;
    }
    return NULL;
}

static bool body_has(const struct response *r, const char *s) { return r->body && strstr(r->body, s); }

/* The JSON body's member as an int64 (or -1). */
static int64_t json_int(const struct response *r, const char *key)
{
    struct json_doc d;
    char err[64];
    if (!r->body || json_parse(&d, r->body, r->len, err, sizeof err))
        return -1;
    const struct json *v = json_get(d.root, key);
    int64_t x = v && v->is_int ? v->i : -1;
    json_free(&d);
    return x;
}

static const char *json_str(const struct response *r, const char *key)
{
    static char out[4096];
    struct json_doc d;
    char err[64];
    if (!r->body || json_parse(&d, r->body, r->len, err, sizeof err))
        return NULL;
    const char *v = json_get_str(d.root, key, NULL);
    snprintf(out, sizeof out, "%s", v ? v : "");
    json_free(&d);
    return v ? out : NULL;
}

static void bearer(struct client *c, const char *token)
{
    snprintf(c->extra, sizeof c->extra, "Authorization: Bearer %s\n", token);
}

/* A fresh site on a fresh store, cheap password hashing. */
static unsigned addr_limit = 1000;

static void setup(const char *name, unsigned max_failures)
{
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    memset(&dh, 0, sizeof dh);
    dh.now_ms = 1764547200000ull; /* 2025-12-01T00:00:00Z */
    dh.id = 7;
    if (store_open(path, &dh.store, err, sizeof err)) {
        fprintf(stderr, "store_open: %s\n", err);
        abort();
    }
    struct site_host h;
    direct_host_init(&dh, &h);
    struct site_options o;
    site_options_default(&o);
    o.rate_limits_off = true; /* these tests post far faster than a person */
    o.loop = &loop;
    o.pwhash_opslimit = 1;
    o.pwhash_memlimit = 8192;
    o.max_failures_per_user = max_failures;
    o.max_attempts_per_addr = addr_limit;
    if (site_create(&h, &o, &site, err, sizeof err)) {
        fprintf(stderr, "site_create: %s\n", err);
        abort();
    }
}

static void teardown(void)
{
    free(resp.body);
    memset(&resp, 0, sizeof resp);
    site_destroy(site);
    site = NULL;
    store_close(dh.store);
}

/* Signs up name and returns its token (static). */
static const char *signup(struct client *c, const char *name)
{
    static char token[80];
    char body[200];
    snprintf(body, sizeof body, "{\"username\":\"%s\",\"password\":\"correct horse\"}", name);
    struct response *r = post_json(c, "/api/v1/signup", body);
    if (r->status != 201)
        return NULL;
    snprintf(token, sizeof token, "%s", json_str(r, "token"));
    return token;
}

/* ---- API ---------------------------------------------------------------------------- */

TEST(signup_login_me_logout)
{
    setup("auth.db", 100);
    struct client c = { 0 };
    struct response *r = post_json(&c, "/api/v1/signup", "{\"username\":\"Alice\",\"password\":\"correct horse\"}");
    CHECK_EQ_I(r->status, 201);
    CHECK_STR(json_str(r, "username"), "Alice");
    const char *tok = json_str(r, "token");
    REQUIRE(tok && strlen(tok) == 64);
    char token[80];
    snprintf(token, sizeof token, "%s", tok);
    const char *sc = strstr(r->headers, "Set-Cookie: lr_session=");
    REQUIRE(sc);
    CHECK(strstr(sc, "HttpOnly") && strstr(sc, "SameSite=Lax") && strstr(sc, "Path=/"));
    CHECK(c.idx[0]); /* the session-consistency cookie */
    CHECK_STR(header(r, "X-Served-By"), "7");
    CHECK_STR(header(r, "X-Raft-Index"), c.idx);

    /* The stored hash is argon2id, and the log holds only the token's hash. */
    struct store_user u;
    REQUIRE(store_user_by_name(dh.store, "alice", 5, &u) == 1);
    CHECK(!strncmp(u.pwhash, "$argon2id$", 10));

    r = call(&c, "GET", "/api/v1/me", NULL, NULL);
    CHECK_EQ_I(r->status, 200);
    CHECK_STR(json_str(r, "username"), "Alice");

    /* Name taken, in any case: 409. */
    struct client d = { 0 };
    r = post_json(&d, "/api/v1/signup", "{\"username\":\"aLICE\",\"password\":\"another one\"}");
    CHECK_EQ_I(r->status, 409);
    CHECK_STR(json_str(r, "error"), "name_taken");

    /* Login: right password 200 with a new token; wrong password and unknown
     * user give the same 401 body. */
    r = post_json(&d, "/api/v1/login", "{\"username\":\"ALICE\",\"password\":\"correct horse\"}");
    CHECK_EQ_I(r->status, 200);
    CHECK_STR(json_str(r, "username"), "Alice");
    CHECK(json_str(r, "token") && strcmp(json_str(r, "token"), token) != 0);
    struct client e = { 0 };
    r = post_json(&e, "/api/v1/login", "{\"username\":\"alice\",\"password\":\"wrong horse\"}");
    CHECK_EQ_I(r->status, 401);
    char wrong_pw[300];
    snprintf(wrong_pw, sizeof wrong_pw, "%.*s", (int)r->len, r->body);
    r = post_json(&e, "/api/v1/login", "{\"username\":\"nobody\",\"password\":\"wrong horse\"}");
    CHECK_EQ_I(r->status, 401);
    CHECK(r->body && !strcmp(r->body, wrong_pw));
    r = post_json(&e, "/api/v1/login", "{\"username\":\"x\",\"password\":\"\"}");
    CHECK_EQ_I(r->status, 401);
    CHECK(r->body && !strcmp(r->body, wrong_pw));
    CHECK(!e.session[0]);

    /* Bearer works as well as the cookie. */
    struct client b = { 0 };
    bearer(&b, token);
    r = call(&b, "GET", "/api/v1/me", NULL, NULL);
    CHECK_EQ_I(r->status, 200);

    /* Logout ends that session (the other login's stays). */
    r = call(&c, "POST", "/api/v1/logout", "application/json", NULL);
    CHECK_EQ_I(r->status, 204);
    CHECK(strstr(r->headers, "lr_session=;") && strstr(r->headers, "Max-Age=0"));
    r = call(&b, "GET", "/api/v1/me", NULL, NULL);
    CHECK_EQ_I(r->status, 401);
    CHECK_STR(json_str(r, "error"), "login_required");
    r = call(&d, "GET", "/api/v1/me", NULL, NULL);
    CHECK_EQ_I(r->status, 200);
    struct client none = { 0 };
    r = call(&none, "GET", "/api/v1/me", NULL, NULL);
    CHECK_EQ_I(r->status, 401);
    r = call(&none, "POST", "/api/v1/logout", "application/json", NULL);
    CHECK_EQ_I(r->status, 401);
    teardown();
}

TEST(signup_limits_and_bad_bodies)
{
    setup("limits.db", 100);
    struct client c = { 0 };
    const char *bad[] = {
        "{\"username\":\"ab\",\"password\":\"12345678\"}",                     /* 2 chars */
        "{\"username\":\"abcdefghijklmnopqrstu\",\"password\":\"12345678\"}",  /* 21 chars */
        "{\"username\":\"a b c\",\"password\":\"12345678\"}",
        "{\"username\":\"caf\\u00e9\",\"password\":\"12345678\"}",
        "{\"username\":\"<script>\",\"password\":\"12345678\"}",
        "{\"username\":\"abc\",\"password\":\"1234567\"}",                     /* 7 bytes */
        "{\"username\":\"abc\",\"password\":\"" "123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789" "\"}", /* 129 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct response *r = post_json(&c, "/api/v1/signup", bad[i]);
        CHECK_EQ_I(r->status, 400);
        CHECK_STR(json_str(r, "error"), "invalid");
        CHECK(json_str(r, "message") && strlen(json_str(r, "message")) > 10);
    }
    CHECK_EQ_I(post_json(&c, "/api/v1/signup", "{\"username\":\"abc\",\"password\":\"12345678\"}")->status, 201);
    CHECK_EQ_I(post_json(&c, "/api/v1/signup", "{\"username\":\"abcdefghijklmnopqrst\",\"password\":\"" "12345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678" "\"}")->status, 201);
    const char *malformed[] = { "", "{", "[]", "{\"username\":1,\"password\":\"12345678\"}",
                                "{\"username\":\"abc\"}", "{\"username\":\"abc\",\"password\":\"12345678\",}",
                                "{\"username\":\"ab\\u0000c\",\"password\":\"12345678\"}", "\xff\xfe" };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        struct response *r = post_json(&c, "/api/v1/signup", malformed[i]);
        CHECK_EQ_I(r->status, 400);
        CHECK_STR(json_str(r, "error"), "bad_json");
    }
    /* Not JSON at all, from a browser form elsewhere: refused before parsing. */
    struct response *r = call(&c, "POST", "/api/v1/signup", "text/plain", "{\"username\":\"zzz\",\"password\":\"12345678\"}");
    CHECK_EQ_I(r->status, 415);
    r = call(&c, "GET", "/api/v1/signup", NULL, NULL);
    CHECK_EQ_I(r->status, 405);
    CHECK_STR(header(r, "Allow"), "POST");
    teardown();
}

TEST(login_is_throttled_per_account)
{
    setup("throttle.db", 3);
    struct client c = { 0 };
    REQUIRE(signup(&c, "victim"));
    for (int i = 0; i < 3; i++)
        CHECK_EQ_I(post_json(&c, "/api/v1/login", "{\"username\":\"victim\",\"password\":\"guess guess\"}")->status, 401);
    struct response *r = post_json(&c, "/api/v1/login", "{\"username\":\"VICTIM\",\"password\":\"correct horse\"}");
    CHECK_EQ_I(r->status, 429);
    CHECK(header(r, "Retry-After") && atoi(header(r, "Retry-After")) > 0);
    CHECK_STR(json_str(r, "error"), "too_many_attempts");
    /* Once the window has passed the right password works again. */
    dh.now_ms += 16 * 60 * 1000;
    CHECK_EQ_I(post_json(&c, "/api/v1/login", "{\"username\":\"victim\",\"password\":\"correct horse\"}")->status, 200);
    struct site_stats st;
    site_get_stats(site, &st);
    CHECK(st.throttled >= 1);
    CHECK_EQ_U(st.in_flight, 0);
    teardown();
}

TEST(login_and_signup_are_throttled_per_address)
{
    addr_limit = 4;
    setup("throttle-addr.db", 100);
    addr_limit = 1000;
    struct client c = { 0 };
    REQUIRE(signup(&c, "first"));                              /* 1 */
    CHECK_EQ_I(post_json(&c, "/api/v1/login", "{\"username\":\"first\",\"password\":\"correct horse\"}")->status, 200);
    CHECK_EQ_I(post_json(&c, "/api/v1/login", "{\"username\":\"other\",\"password\":\"correct horse\"}")->status, 401);
    CHECK_EQ_I(post_json(&c, "/api/v1/signup", "{\"username\":\"second\",\"password\":\"correct horse\"}")->status, 201);
    struct response *r = post_json(&c, "/api/v1/signup", "{\"username\":\"third\",\"password\":\"correct horse\"}");
    CHECK_EQ_I(r->status, 429);
    CHECK(header(r, "Retry-After") != NULL);
    /* Another client (as the HTTP server resolved it: X-Forwarded-For counts
     * only from trusted proxies, test_http.c) is not throttled. */
    snprintf(c.addr, sizeof c.addr, "10.0.0.9");
    CHECK_EQ_I(post_json(&c, "/api/v1/signup", "{\"username\":\"third\",\"password\":\"correct horse\"}")->status, 201);
    /* A header the client sent itself changes nothing. */
    c.addr[0] = 0;
    snprintf(c.extra, sizeof c.extra, "X-Forwarded-For: 10.0.0.10\n");
    CHECK_EQ_I(post_json(&c, "/api/v1/signup", "{\"username\":\"fourth\",\"password\":\"correct horse\"}")->status, 429);
    /* The page form says so too, with Retry-After. */
    c.extra[0] = 0;
    struct client p = { 0 };
    call(&p, "GET", "/login", NULL, NULL);
    char body[200];
    snprintf(body, sizeof body, "csrf=%s&username=first&password=correct+horse", p.csrf);
    r = call(&p, "POST", "/login", "application/x-www-form-urlencoded", body);
    CHECK_EQ_I(r->status, 429);
    CHECK(header(r, "Retry-After") != NULL && body_has(r, "Too many attempts: try again in"));
    /* A minute later the address may try again. */
    dh.now_ms += 61 * 1000;
    r = call(&p, "POST", "/login", "application/x-www-form-urlencoded", body);
    CHECK_EQ_I(r->status, 303);
    teardown();
}

/* A name whose counter shared a slot with "victim" in the old 4096-slot
 * table (FNV-1a of the key): guessing at it erased the victim's counter,
 * so wrong guesses at the victim never reached a 429. */
static void colliding_name(const char *with, char *out, size_t cap)
{
    uint32_t want = 2166136261u;
    for (const char *p = with; *p; p++)
        want = (want ^ (uint8_t)*p) * 16777619u;
    for (unsigned i = 0;; i++) {
        snprintf(out, cap, "n%u", i);
        uint32_t h = 2166136261u;
        for (const char *p = out; *p; p++)
            h = (h ^ (uint8_t)*p) * 16777619u;
        if (h % 4096 == want % 4096 && strlen(out) >= 3)
            return;
    }
}

TEST(failed_login_counters_cannot_be_evicted_by_other_names)
{
    setup("throttle-evict.db", 10);
    struct client c = { 0 }, g = { 0 }; /* g: the guesser, not logged in */
    REQUIRE(signup(&c, "victim"));
    char other[32], body[200];
    colliding_name("victim", other, sizeof other);
    snprintf(body, sizeof body, "{\"username\":\"%s\",\"password\":\"guess guess\"}", other);
    int first_429 = 0;
    for (int i = 1; i <= 27 && !first_429; i++) {
        struct response *r = post_json(&g, "/api/v1/login", "{\"username\":\"victim\",\"password\":\"guess guess\"}");
        if (r->status == 429)
            first_429 = i;
        else
            CHECK_EQ_I(r->status, 401);
        CHECK_EQ_I(post_json(&g, "/api/v1/login", body)->status, i <= 10 ? 401 : 429); /* its own counter */
    }
    CHECK_EQ_I(first_429, 11);
    teardown();
}

/* An IPv6 client counts as its /64: the addresses of one subscriber are
 * one address to the throttle. */
TEST(ipv6_clients_are_throttled_by_their_64)
{
    addr_limit = 3;
    setup("throttle-v6.db", 100);
    addr_limit = 1000;
    struct client c = { 0 };
    char body[200];
    for (int i = 0; i < 4; i++) {
        snprintf(c.addr, sizeof c.addr, "2001:db8:1:2::%x", i + 1);
        snprintf(body, sizeof body, "{\"username\":\"v6user%d\",\"password\":\"correct horse\"}", i);
        CHECK_EQ_I(post_json(&c, "/api/v1/signup", body)->status, i < 3 ? 201 : 429);
    }
    snprintf(c.addr, sizeof c.addr, "2001:db8:1:3::1"); /* another /64 */
    CHECK_EQ_I(post_json(&c, "/api/v1/signup", "{\"username\":\"v6other\",\"password\":\"correct horse\"}")->status, 201);
    teardown();
}

/* Guessing at an account from one address stops that address, not the
 * account's owner elsewhere. */
TEST(a_guesser_cannot_lock_the_owner_out)
{
    setup("throttle-owner.db", 10);
    struct client owner = { 0 }, guesser = { 0 };
    snprintf(guesser.addr, sizeof guesser.addr, "203.0.113.66");
    snprintf(owner.addr, sizeof owner.addr, "198.51.100.7");
    REQUIRE(signup(&owner, "owner"));
    for (int i = 0; i < 10; i++)
        CHECK_EQ_I(post_json(&guesser, "/api/v1/login", "{\"username\":\"owner\",\"password\":\"guess guess\"}")->status, 401);
    struct response *r = post_json(&guesser, "/api/v1/login", "{\"username\":\"owner\",\"password\":\"correct horse\"}");
    CHECK_EQ_I(r->status, 429);
    CHECK(header(r, "Retry-After") && atoi(header(r, "Retry-After")) > 0);
    CHECK_EQ_I(post_json(&owner, "/api/v1/login", "{\"username\":\"owner\",\"password\":\"correct horse\"}")->status, 200);
    /* The owner's own mistakes are forgiven by a success. */
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 9; i++)
            CHECK_EQ_I(post_json(&owner, "/api/v1/login", "{\"username\":\"owner\",\"password\":\"typo typo\"}")->status, 401);
        CHECK_EQ_I(post_json(&owner, "/api/v1/login", "{\"username\":\"owner\",\"password\":\"correct horse\"}")->status, 200);
    }
    teardown();
}

/* Over HTTPS every cookie is Secure and every answer carries HSTS; over
 * plain HTTP neither (a browser would ignore HSTS there anyway). */
TEST(https_gives_secure_cookies_and_hsts)
{
    setup("https.db", 100);
    struct client plain = { 0 }, tls = { .https = true };
    struct response *r = post_json(&plain, "/api/v1/signup", "{\"username\":\"plain\",\"password\":\"correct horse\"}");
    CHECK_EQ_I(r->status, 201);
    CHECK(!header(r, "Strict-Transport-Security"));
    CHECK(!strstr(r->headers, "Secure"));
    r = post_json(&tls, "/api/v1/signup", "{\"username\":\"tls\",\"password\":\"correct horse\"}");
    CHECK_EQ_I(r->status, 201);
    CHECK_STR(header(r, "Strict-Transport-Security"), "max-age=31536000");
    CHECK(strstr(r->headers, "lr_idx=") && strstr(strstr(r->headers, "lr_idx="), "; Secure\r\n"));
    struct client fresh = { .https = true };
    r = call(&fresh, "GET", "/login", NULL, NULL);
    CHECK(strstr(r->headers, "lr_csrf=") && strstr(strstr(r->headers, "lr_csrf="), "; Secure\r\n"));
    CHECK(header(r, "Strict-Transport-Security") != NULL);
    r = post_json(&tls, "/api/v1/login", "{\"username\":\"tls\",\"password\":\"correct horse\"}");
    CHECK_EQ_I(r->status, 200);
    const char *sc = strstr(r->headers, "lr_session=");
    CHECK(sc && strstr(sc, "; Secure\r\n"));
    teardown();
}

TEST(sessions_expire_after_30_days_by_the_readers_clock)
{
    setup("expiry.db", 100);
    struct client c = { 0 };
    REQUIRE(signup(&c, "alice"));
    dh.now_ms += 30ull * 24 * 3600 * 1000 - 1000;
    CHECK_EQ_I(call(&c, "GET", "/api/v1/me", NULL, NULL)->status, 200);
    dh.now_ms += 2000;
    struct response *r = call(&c, "GET", "/api/v1/me", NULL, NULL);
    CHECK_EQ_I(r->status, 401);
    CHECK(strstr(json_str(r, "message"), "ended"));
    teardown();
}

TEST(links_post_get_list_duplicates)
{
    setup("links.db", 100);
    struct client c = { 0 }, anon = { 0 };
    REQUIRE(signup(&c, "alice"));
    struct response *r = post_json(&anon, "/api/v1/links", "{\"title\":\"x\",\"url\":\"http://a.example/\"}");
    CHECK_EQ_I(r->status, 401);
    /* A right-to-left override, or a title of zero-width spaces: 400, said why. */
    r = post_json(&c, "/api/v1/links", "{\"title\":\"cat \\u202egnp.exe\",\"url\":\"http://a.example/\"}");
    CHECK_EQ_I(r->status, 400);
    CHECK(json_str(r, "message") && strstr(json_str(r, "message"), "bidirectional"));
    r = post_json(&c, "/api/v1/links", "{\"title\":\"\\u200b\\u200b\",\"url\":\"http://a.example/\"}");
    CHECK_EQ_I(r->status, 400);
    r = post_json(&c, "/api/v1/links", "{\"title\":\"Hello <b>world</b>\",\"url\":\"https://www.Example.com/a?b=2&a=1#top\"}");
    CHECK_EQ_I(r->status, 201);
    int64_t id = json_int(r, "id");
    CHECK_EQ_I(id, 1);
    CHECK_STR(json_str(r, "title"), "Hello <b>world</b>");
    CHECK_STR(json_str(r, "url"), "https://www.Example.com/a?b=2&a=1#top");
    CHECK_STR(json_str(r, "author"), "alice");
    CHECK_STR(json_str(r, "created"), "2025-12-01T00:00:00Z");
    CHECK_EQ_I(json_int(r, "likes"), 0);
    CHECK_STR(json_str(r, "domain"), "example.com");
    CHECK_STR(header(r, "Location"), "/api/v1/links/1");
    CHECK(body_has(r, "\\u003cb\\u003e")); /* JSON escapes < > for safety */
    CHECK_STR(header(r, "X-Raft-Index"), c.idx);

    /* The same link spelled differently: 409 with the existing id. */
    r = post_json(&c, "/api/v1/links", "{\"title\":\"again\",\"url\":\"http://example.com:80/a?a=1&b=2\"}");
    CHECK_EQ_I(r->status, 409);
    CHECK_STR(json_str(r, "error"), "duplicate");
    CHECK_EQ_I(json_int(r, "id"), 1);

    /* Invalid fields: 400 with a message. */
    const char *bad[] = {
        "{\"title\":\"\",\"url\":\"http://b.example/\"}",
        "{\"title\":\"   \",\"url\":\"http://b.example/\"}",
        "{\"title\":\"t\",\"url\":\"ftp://b.example/\"}",
        "{\"title\":\"t\",\"url\":\"javascript:alert(1)\"}",
        "{\"title\":\"t\",\"url\":\"http://\"}",
        "{\"title\":\"t\\n2\",\"url\":\"http://b.example/\"}",
        "{\"title\":\"t\",\"url\":\"http://b.example/ x\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = post_json(&c, "/api/v1/links", bad[i]);
        CHECK_EQ_I(r->status, 400);
        CHECK_STR(json_str(r, "error"), "invalid");
    }
    CHECK_EQ_I(post_json(&c, "/api/v1/links", "{\"title\":1,\"url\":\"http://b.example/\"}")->status, 400);
    CHECK_EQ_I(post_json(&c, "/api/v1/links", "{\"title\":\"t\",\"url\":\"http://b.example/\\u0000\"}")->status, 400);
    CHECK_EQ_I(post_json(&c, "/api/v1/links", "not json")->status, 400);
    /* Title: 200 characters fine, 201 not; URL 2048 fine, 2049 not. */
    static char body[8192], title[1000], url[2100];
    memset(title, 'T', 201);
    title[201] = 0;
    snprintf(body, sizeof body, "{\"title\":\"%s\",\"url\":\"http://t.example/\"}", title);
    CHECK_EQ_I(post_json(&c, "/api/v1/links", body)->status, 400);
    title[200] = 0;
    snprintf(body, sizeof body, "{\"title\":\"%s\",\"url\":\"http://t.example/\"}", title);
    CHECK_EQ_I(post_json(&c, "/api/v1/links", body)->status, 201);
    strcpy(url, "http://u.example/");
    memset(url + strlen(url), 'u', 2048 - strlen(url));
    url[2048] = 0;
    snprintf(body, sizeof body, "{\"title\":\"long\",\"url\":\"%s\"}", url);
    CHECK_EQ_I(post_json(&c, "/api/v1/links", body)->status, 201);
    url[2048] = 'u';
    url[2049] = 0;
    snprintf(body, sizeof body, "{\"title\":\"long\",\"url\":\"%s\"}", url);
    CHECK_EQ_I(post_json(&c, "/api/v1/links", body)->status, 400);

    r = call(&anon, "GET", "/api/v1/links/1", NULL, NULL);
    CHECK_EQ_I(r->status, 200);
    CHECK_EQ_I(json_int(r, "id"), 1);
    CHECK_EQ_I(call(&anon, "GET", "/api/v1/links/99", NULL, NULL)->status, 404);
    CHECK_EQ_I(call(&anon, "GET", "/api/v1/links/0", NULL, NULL)->status, 404);
    CHECK_EQ_I(call(&anon, "GET", "/api/v1/links/abc", NULL, NULL)->status, 404);
    CHECK_EQ_I(call(&anon, "GET", "/api/v1/links/99999999999999999999", NULL, NULL)->status, 404);
    CHECK_EQ_I(call(&anon, "PUT", "/api/v1/links/1", NULL, NULL)->status, 405); /* DELETE and PATCH: SPEC §5 */
    CHECK_EQ_I(call(&anon, "GET", "/api/v1/nothing", NULL, NULL)->status, 404);
    teardown();
}

TEST(links_list_sorts_and_limits)
{
    setup("list.db", 100);
    struct client c = { 0 }, anon = { 0 };
    REQUIRE(signup(&c, "alice"));
    for (int i = 0; i < 35; i++) {
        char body[200];
        snprintf(body, sizeof body, "{\"title\":\"link %d\",\"url\":\"http://l%d.example/\"}", i + 1, i + 1);
        dh.now_ms += 1000;
        REQUIRE(post_json(&c, "/api/v1/links", body)->status == 201);
    }
    /* Two likes for link 3 from two users puts it on top. */
    REQUIRE(call(&c, "PUT", "/api/v1/links/3/like", "application/json", NULL)->status == 200);
    struct client b = { 0 };
    REQUIRE(signup(&b, "bob"));
    REQUIRE(call(&b, "PUT", "/api/v1/links/3/like", "application/json", NULL)->status == 200);

    struct response *r = call(&anon, "GET", "/api/v1/links", NULL, NULL);
    CHECK_EQ_I(r->status, 200);
    struct json_doc d;
    char err[64];
    REQUIRE(json_parse(&d, r->body, r->len, err, sizeof err) == 0);
    const struct json *links = json_get(d.root, "links");
    REQUIRE(links && links->type == JSON_ARRAY);
    CHECK_EQ_U(links->len, 30); /* default limit */
    json_free(&d);

    r = call(&anon, "GET", "/api/v1/links?sort=new&limit=2", NULL, NULL);
    CHECK(body_has(r, "\"id\":35") && body_has(r, "\"id\":34") && !body_has(r, "\"id\":33"));
    r = call(&anon, "GET", "/api/v1/links?sort=new&limit=1&offset=34", NULL, NULL);
    CHECK(body_has(r, "\"id\":1,"));
    CHECK_EQ_I(call(&anon, "GET", "/api/v1/links?offset=100000", NULL, NULL)->status, 200);
    r = call(&anon, "GET", "/api/v1/links?sort=new&offset=1000", NULL, NULL);
    CHECK(r->status == 200 && body_has(r, "{\"links\":[]}"));
    r = call(&anon, "GET", "/api/v1/links?sort=top&limit=1", NULL, NULL);
    CHECK(body_has(r, "\"id\":3,") && body_has(r, "\"likes\":2"));
    r = call(&anon, "GET", "/api/v1/links?sort=hot&limit=100", NULL, NULL);
    CHECK_EQ_I(r->status, 200);
    /* 2 likes = log10(2) = 0.30 = 3.8 hours of age: link 3 (32 s older than
     * the newest) is first. */
    CHECK(r->body && strncmp(r->body, "{\"links\":[{\"id\":3,", 18) == 0);
    const char *bad[] = { "limit=0", "limit=101", "limit=-1", "limit=x", "limit=", "offset=-5", "offset=1e3", "offset=100001",
                          "sort=best", "sort=", "limit=%zz" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char target[64];
        snprintf(target, sizeof target, "/api/v1/links?%s", bad[i]);
        r = call(&anon, "GET", target, NULL, NULL);
        CHECK_EQ_I(r->status, 400);
        CHECK(json_str(r, "error") != NULL);
    }
    teardown();
}

TEST(likes_are_one_per_user_and_idempotent)
{
    setup("likes.db", 100);
    struct client a = { 0 }, anon = { 0 };
    REQUIRE(signup(&a, "alice"));
    REQUIRE(post_json(&a, "/api/v1/links", "{\"title\":\"t\",\"url\":\"http://x.example/\"}")->status == 201);
    struct response *r = call(&a, "PUT", "/api/v1/links/1/like", "application/json", NULL);
    CHECK_EQ_I(r->status, 200);
    CHECK(body_has(r, "{\"id\":1,\"likes\":1,\"liked\":true}"));
    r = call(&a, "PUT", "/api/v1/links/1/like", "application/json", NULL);
    CHECK(r->status == 200 && body_has(r, "\"likes\":1,\"liked\":true"));
    r = call(&a, "DELETE", "/api/v1/links/1/like", "application/json", NULL);
    CHECK(r->status == 200 && body_has(r, "\"likes\":0,\"liked\":false"));
    r = call(&a, "DELETE", "/api/v1/links/1/like", "application/json", NULL);
    CHECK(r->status == 200 && body_has(r, "\"likes\":0,\"liked\":false"));
    CHECK_EQ_I(call(&a, "PUT", "/api/v1/links/2/like", "application/json", NULL)->status, 404);
    CHECK_EQ_I(call(&anon, "PUT", "/api/v1/links/1/like", "application/json", NULL)->status, 401);
    r = call(&a, "POST", "/api/v1/links/1/like", "application/json", NULL);
    CHECK_EQ_I(r->status, 405);
    CHECK_STR(header(r, "Allow"), "PUT, DELETE");
    CHECK_EQ_I(call(&a, "PUT", "/api/v1/links/1/likes", "application/json", NULL)->status, 404);
    teardown();
}

TEST(idempotency_key_returns_the_first_result)
{
    setup("idem.db", 100);
    struct client a = { 0 };
    REQUIRE(signup(&a, "alice"));
    snprintf(a.extra, sizeof a.extra, "Idempotency-Key: k-1\n");
    struct response *r = post_json(&a, "/api/v1/links", "{\"title\":\"t\",\"url\":\"http://x.example/\"}");
    CHECK_EQ_I(r->status, 201);
    uint64_t before = dh.proposals;
    r = post_json(&a, "/api/v1/links", "{\"title\":\"t\",\"url\":\"http://x.example/\"}");
    CHECK_EQ_I(r->status, 201); /* the first result again, not a 409 */
    CHECK_EQ_I(json_int(r, "id"), 1);
    CHECK_EQ_U(dh.proposals, before + 1);
    int64_t users, links;
    store_counts(dh.store, &users, &links);
    CHECK_EQ_I(links, 1);
    /* A retried sign-up (same key) answers 201 with a working session. */
    struct client b = { 0 };
    snprintf(b.extra, sizeof b.extra, "Idempotency-Key: signup-1\n");
    CHECK_EQ_I(post_json(&b, "/api/v1/signup", "{\"username\":\"bob\",\"password\":\"correct horse\"}")->status, 201);
    struct client b2 = { 0 };
    snprintf(b2.extra, sizeof b2.extra, "Idempotency-Key: signup-1\n");
    r = post_json(&b2, "/api/v1/signup", "{\"username\":\"bob\",\"password\":\"correct horse\"}");
    CHECK_EQ_I(r->status, 201);
    b2.extra[0] = 0;
    CHECK_EQ_I(call(&b2, "GET", "/api/v1/me", NULL, NULL)->status, 200);
    /* ... but not for someone who does not know the password. */
    struct client m = { 0 };
    snprintf(m.extra, sizeof m.extra, "Idempotency-Key: signup-1\n");
    CHECK_EQ_I(post_json(&m, "/api/v1/signup", "{\"username\":\"bob\",\"password\":\"not the one\"}")->status, 401);
    /* Keys are bounded. */
    static char big[400];
    memset(big, 'k', 300);
    snprintf(a.extra, sizeof a.extra, "Idempotency-Key: %.300s\n", big);
    CHECK_EQ_I(post_json(&a, "/api/v1/links", "{\"title\":\"t\",\"url\":\"http://y.example/\"}")->status, 400);
    teardown();
}

/* A new link's or comment's 201 is built from what was proposed and the
 * apply's result (id, author, log time, depth), not read back: it must be
 * byte for byte what a GET of the row answers, also when the proposer's
 * clock stepped back (the log clock decides `created`). */
static void same_as_get(struct client *c, const char *post_path, const char *body, const char *get_fmt)
{
    struct response *r = post_json(c, post_path, body);
    CHECK_EQ_I(r->status, 201);
    char *posted = strdup(r->body ? r->body : "");
    char get[64];
    snprintf(get, sizeof get, get_fmt, json_int(r, "id"));
    r = call(c, "GET", get, NULL, NULL);
    CHECK_EQ_I(r->status, 200);
    CHECK_STR(posted, r->body ? r->body : "");
    free(posted);
}

TEST(new_rows_answer_as_stored)
{
    setup("asstored.db", 100);
    struct client a = { 0 };
    const char *t = signup(&a, "Alice");
    REQUIRE(t);
    bearer(&a, t);
    const char *link = "/api/v1/links/%" PRId64;
    same_as_get(&a, "/api/v1/links", "{\"title\":\"  A <title> \\\"quoted\\\" caf\u00e9  \",\"url\":\"HTTPS://WWW.Example.COM/a?b=1#frag\"}", link);
    dh.now_ms -= 60000; /* this proposer's clock is behind the log's */
    same_as_get(&a, "/api/v1/links", "{\"title\":\"Ask: a text post\",\"text\":\"line one\\r\\n\\r\\nline <two>\"}", link);
    same_as_get(&a, "/api/v1/links", "{\"title\":\"Both\",\"url\":\"http://b\u00fccher.example/x\",\"text\":\"and words\"}", link);
    /* The domain is the parse's, not parsed again from the stored URL. */
    static const char *const urls[] = { "http://127.0.0.1:8080/x", "https://[::1]/y", "https://www.WWW.example.org/",
                                        "http://Ex-ample.com.:80/p?b=2&a=1", "https://M\\u00fcnchen.de/",
                                        " https://www.xn--bcher-kva.example/z " };
    for (size_t i = 0; i < sizeof urls / sizeof *urls; i++) {
        char body[256];
        snprintf(body, sizeof body, "{\"title\":\"url %zu\",\"url\":\"%s\"}", i, urls[i]);
        same_as_get(&a, "/api/v1/links", body, link);
    }
    dh.now_ms += 120000;
    const char *comment = "/api/v1/comments/%" PRId64;
    same_as_get(&a, "/api/v1/links/1/comments", "{\"text\":\"top <b>level</b> \\\"c\\\"\"}", comment);
    same_as_get(&a, "/api/v1/links/1/comments", "{\"text\":\"a reply\",\"parent\":1}", comment);
    dh.now_ms -= 300000;
    same_as_get(&a, "/api/v1/links/1/comments", "{\"text\":\"deeper\",\"parent\":2}", comment);
    /* A replayed post answers the row as it is now (a like since). */
    snprintf(a.extra, sizeof a.extra, "Authorization: Bearer %s\nIdempotency-Key: as-stored\n", t);
    same_as_get(&a, "/api/v1/links", "{\"title\":\"keyed\",\"url\":\"http://keyed.example/\"}", link);
    bearer(&a, t);
    CHECK_EQ_I(call(&a, "PUT", "/api/v1/links/10/like", NULL, NULL)->status, 200);
    snprintf(a.extra, sizeof a.extra, "Authorization: Bearer %s\nIdempotency-Key: as-stored\n", t);
    same_as_get(&a, "/api/v1/links", "{\"title\":\"keyed\",\"url\":\"http://keyed.example/\"}", link);
    CHECK_EQ_I(json_int(&resp, "likes"), 1);
    teardown();
}

TEST(consistency_headers_and_host_failures)
{
    setup("cons.db", 100);
    struct client a = { 0 };
    REQUIRE(signup(&a, "alice"));
    struct client s = { 0 };
    snprintf(s.extra, sizeof s.extra, "X-Consistency: linearizable\n");
    CHECK_EQ_I(call(&s, "GET", "/api/v1/links", NULL, NULL)->status, 200);
    snprintf(s.extra, sizeof s.extra, "X-Consistency: stale\nX-Min-Index: 999\n");
    CHECK_EQ_I(call(&s, "GET", "/api/v1/links", NULL, NULL)->status, 200);
    snprintf(s.extra, sizeof s.extra, "X-Consistency: eventual\n");
    struct response *r = call(&s, "GET", "/api/v1/links", NULL, NULL);
    CHECK_EQ_I(r->status, 400);
    CHECK_STR(json_str(r, "error"), "bad_consistency");
    snprintf(s.extra, sizeof s.extra, "X-Min-Index: -1\n");
    CHECK_EQ_I(call(&s, "GET", "/api/v1/links", NULL, NULL)->status, 400);
    /* A client that has seen index 999 cannot be served by a node at 2. */
    snprintf(s.extra, sizeof s.extra, "X-Min-Index: 999\n");
    r = call(&s, "GET", "/api/v1/links", NULL, NULL);
    CHECK_EQ_I(r->status, 503);
    CHECK(header(r, "X-Raft-Index") && header(r, "X-Served-By"));
    /* The lr_idx cookie does the same. */
    struct client cookie = { 0 };
    snprintf(cookie.idx, sizeof cookie.idx, "999");
    CHECK_EQ_I(call(&cookie, "GET", "/", NULL, NULL)->status, 503);
    /* An index no node of this cluster could reach soon (beyond its commit
     * index plus a follower's lag): answered at once, not held for the
     * read's timeout, with 503 and Retry-After (this node may be the one
     * catching up: SPEC §4 consistency, not the client's error); the cookie
     * (perhaps from a cluster since rebuilt) is ignored. */
    snprintf(s.extra, sizeof s.extra, "X-Min-Index: 4611686018427387903\n");
    r = call(&s, "GET", "/api/v1/links", NULL, NULL);
    CHECK_EQ_I(r->status, 503);
    CHECK_STR(json_str(r, "error"), "behind");
    CHECK(header(r, "Retry-After") != NULL);
    snprintf(s.extra, sizeof s.extra, "X-Min-Index: 20000\n");
    CHECK_EQ_I(call(&s, "GET", "/api/v1/links", NULL, NULL)->status, 503);
    snprintf(s.extra, sizeof s.extra, "X-Min-Index: 12x\n");
    CHECK_EQ_I(call(&s, "GET", "/api/v1/links", NULL, NULL)->status, 400);
    snprintf(cookie.idx, sizeof cookie.idx, "4611686018427387903");
    CHECK_EQ_I(call(&cookie, "GET", "/", NULL, NULL)->status, 200);
    /* Writes the cluster cannot take: 503 (or 507 for a full disk). */
    dh.fail_writes = SITE_ENOTLEADER;
    r = post_json(&a, "/api/v1/links", "{\"title\":\"t\",\"url\":\"http://x.example/\"}");
    CHECK_EQ_I(r->status, 503);
    CHECK_STR(json_str(r, "error"), "unavailable");
    dh.fail_writes = SITE_EDISKFULL;
    CHECK_EQ_I(post_json(&a, "/api/v1/links", "{\"title\":\"t\",\"url\":\"http://x.example/\"}")->status, 507);
    dh.fail_writes = SITE_ETIMEOUT;
    CHECK_EQ_I(post_json(&a, "/api/v1/links", "{\"title\":\"t\",\"url\":\"http://x.example/\"}")->status, 503);
    dh.fail_writes = 0;
    teardown();
}

TEST(cookie_writes_need_json_and_our_origin)
{
    setup("csrf.db", 100);
    struct client a = { 0 };
    const char *token = signup(&a, "alice");
    REQUIRE(token);
    char tok[80];
    snprintf(tok, sizeof tok, "%s", token);
    const char *link = "{\"title\":\"t\",\"url\":\"http://x.example/\"}";
    /* A cross-site form can send text/plain or urlencoded: refused. */
    CHECK_EQ_I(call(&a, "POST", "/api/v1/links", "text/plain", link)->status, 415);
    CHECK_EQ_I(call(&a, "POST", "/api/v1/links", "application/x-www-form-urlencoded", link)->status, 415);
    CHECK_EQ_I(call(&a, "PUT", "/api/v1/links/1/like", NULL, NULL)->status, 415);
    snprintf(a.extra, sizeof a.extra, "Origin: http://evil.example\n");
    CHECK_EQ_I(post_json(&a, "/api/v1/links", link)->status, 403);
    snprintf(a.extra, sizeof a.extra, "Origin: null\n");
    CHECK_EQ_I(post_json(&a, "/api/v1/links", link)->status, 403);
    snprintf(a.extra, sizeof a.extra, "Origin: http://127.0.0.1:22001\n");
    CHECK_EQ_I(post_json(&a, "/api/v1/links", link)->status, 201);
    /* Bearer tokens are not sent by browsers on their own: no such rule. */
    struct client b = { 0 };
    bearer(&b, tok);
    CHECK_EQ_I(call(&b, "PUT", "/api/v1/links/1/like", NULL, NULL)->status, 200);
    teardown();
}

/* ---- Pages ------------------------------------------------------------------------ */

static void check_page_headers(const struct response *r)
{
    CHECK(header(r, "Content-Security-Policy") && strstr(header(r, "Content-Security-Policy"), "default-src 'none'"));
    CHECK(header(r, "Content-Security-Policy") && strstr(header(r, "Content-Security-Policy"), "frame-ancestors 'none'"));
    CHECK_STR(header(r, "X-Content-Type-Options"), "nosniff");
    CHECK(header(r, "Referrer-Policy") != NULL);
    CHECK(header(r, "X-Served-By") && header(r, "X-Raft-Index"));
}

/* The csrf hidden field's value in the page. */
static const char *form_csrf(const struct response *r)
{
    static char v[64];
    const char *p = r->body ? strstr(r->body, "name=\"csrf\" value=\"") : NULL;
    if (!p)
        return "";
    p += 19;
    snprintf(v, sizeof v, "%.*s", (int)(strchr(p, '"') - p), p);
    return v;
}

static struct response *post_form(struct client *c, const char *path, const char *fields)
{
    static char body[8192];
    snprintf(body, sizeof body, "csrf=%s&%s", c->csrf[0] && !c->session[0] ? c->csrf : "", fields);
    return call(c, "POST", path, "application/x-www-form-urlencoded", body);
}

TEST(pages_forms_and_escaping)
{
    setup("pages.db", 100);
    struct client c = { 0 };
    struct response *r = call(&c, "GET", "/signup", NULL, NULL);
    CHECK_EQ_I(r->status, 200);
    check_page_headers(r);
    CHECK(c.csrf[0]); /* the anonymous double-submit cookie */
    CHECK_STR(form_csrf(r), c.csrf);
    CHECK(body_has(r, "<html lang=\"en\">") && body_has(r, "name=\"viewport\""));
    CHECK(body_has(r, "<label for=\"username\">") && body_has(r, "/static/site.v4.css"));
    CHECK(!body_has(r, "<script"));

    /* A form without the token, or with a wrong one: 403. */
    r = call(&c, "POST", "/signup", "application/x-www-form-urlencoded", "username=alice&password=correct+horse");
    CHECK_EQ_I(r->status, 403);
    r = call(&c, "POST", "/signup", "application/x-www-form-urlencoded",
             "csrf=00000000000000000000000000000000&username=alice&password=correct+horse");
    CHECK_EQ_I(r->status, 403);
    CHECK(!c.session[0]);
    /* Invalid input: the form again with the message. */
    r = post_form(&c, "/signup", "username=a&password=correct+horse");
    CHECK_EQ_I(r->status, 400);
    CHECK(body_has(r, "class=\"err\"") && body_has(r, "3 to 20"));
    r = post_form(&c, "/signup", "username=alice&password=correct+horse");
    CHECK_EQ_I(r->status, 303);
    CHECK_STR(header(r, "Location"), "/");
    CHECK(c.session[0]);

    /* Logged in: the forms carry the session-derived token. */
    r = call(&c, "GET", "/submit", NULL, NULL);
    CHECK_EQ_I(r->status, 200);
    char csrf[64], body[600];
    snprintf(csrf, sizeof csrf, "%s", form_csrf(r));
    CHECK(strlen(csrf) == 32 && strcmp(csrf, c.csrf) != 0);
    r = call(&c, "GET", "/", NULL, NULL);
    CHECK_STR(form_csrf(r), csrf); /* derived, so the same on every page and node */
    /* The anonymous double-submit value does not pass for a logged-in form. */
    snprintf(body, sizeof body, "csrf=%s&title=x&url=http%%3A%%2F%%2Fanon.example%%2F", c.csrf);
    CHECK_EQ_I(call(&c, "POST", "/submit", "application/x-www-form-urlencoded", body)->status, 403);
    snprintf(body, sizeof body, "csrf=%s&title=%%3Cscript%%3Ealert(1)%%3C%%2Fscript%%3E+%%26+%%22q%%22&url=https%%3A%%2F%%2Fwww.example.com%%2Fx", csrf);
    r = call(&c, "POST", "/submit", "application/x-www-form-urlencoded", body);
    CHECK_EQ_I(r->status, 303);
    CHECK_STR(header(r, "Location"), "/link/1");
    /* A duplicate goes to the existing link, as on Hacker News. */
    snprintf(body, sizeof body, "csrf=%s&title=again&url=http%%3A%%2F%%2Fexample.com%%2Fx", csrf);
    r = call(&c, "POST", "/submit", "application/x-www-form-urlencoded", body);
    CHECK_EQ_I(r->status, 303);
    CHECK_STR(header(r, "Location"), "/link/1");
    snprintf(body, sizeof body, "csrf=%s&title=bad&url=ftp%%3A%%2F%%2Fexample.com%%2F", csrf);
    r = call(&c, "POST", "/submit", "application/x-www-form-urlencoded", body);
    CHECK_EQ_I(r->status, 400);
    CHECK(body_has(r, "http://") && body_has(r, "value=\"ftp://example.com/\""));

    /* The front page: escaped title, nofollow link, domain, relative time. */
    dh.now_ms += 3 * 3600 * 1000;
    r = call(&c, "GET", "/", NULL, NULL);
    CHECK_EQ_I(r->status, 200);
    check_page_headers(r);
    CHECK(body_has(r, "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;q&quot;"));
    CHECK(!body_has(r, "<script>"));
    CHECK(body_has(r, "rel=\"nofollow ugc noopener\""));
    CHECK(body_has(r, "(example.com)"));
    CHECK(body_has(r, "<a href=\"/from/example.com\">(example.com)</a>"));
    CHECK(body_has(r, "3 hours ago"));
    CHECK(body_has(r, "datetime=\"2025-12-01T00:00:00Z\""));

    /* Like toggles from the form, and comes back to where it was sent from. */
    snprintf(body, sizeof body, "csrf=%s&next=%%2Fnew", csrf);
    r = call(&c, "POST", "/link/1/like", "application/x-www-form-urlencoded", body);
    CHECK_EQ_I(r->status, 303);
    CHECK_STR(header(r, "Location"), "/new#l1"); /* back to the row */
    struct store_link l;
    REQUIRE(store_link_get(dh.store, 1, &l) == 1);
    CHECK_EQ_I(l.likes, 1);
    r = call(&c, "GET", "/link/1", NULL, NULL);
    CHECK(r->status == 200 && body_has(r, "up on") && body_has(r, "1 like "));
    snprintf(body, sizeof body, "csrf=%s&next=%%2F%%2Fevil.example", csrf);
    r = call(&c, "POST", "/link/1/like", "application/x-www-form-urlencoded", body);
    CHECK_EQ_I(r->status, 303);
    CHECK_STR(header(r, "Location"), "/link/1"); /* never off-site */
    REQUIRE(store_link_get(dh.store, 1, &l) == 1);
    CHECK_EQ_I(l.likes, 0);
    /* Not even by a tab or a backslash, which browsers drop or read as '/'. */
    snprintf(body, sizeof body, "csrf=%s&next=%%2F%%09%%2Fevil.example", csrf);
    r = call(&c, "POST", "/link/1/like", "application/x-www-form-urlencoded", body);
    CHECK_EQ_I(r->status, 303);
    CHECK_STR(header(r, "Location"), "/link/1");
    snprintf(body, sizeof body, "csrf=%s&next=%%2F%%5Cevil.example", csrf);
    r = call(&c, "POST", "/link/1/like", "application/x-www-form-urlencoded", body);
    CHECK_STR(header(r, "Location"), "/link/1");
    REQUIRE(store_link_get(dh.store, 1, &l) == 1);
    CHECK_EQ_I(l.likes, 0); /* liked and unliked again */

    /* The user page, the status page. */
    r = call(&c, "GET", "/user/ALICE", NULL, NULL);
    CHECK(r->status == 200 && body_has(r, "<h1>alice</h1>") && body_has(r, "1 link posted"));
    CHECK_EQ_I(call(&c, "GET", "/user/nobody", NULL, NULL)->status, 404);
    CHECK_EQ_I(call(&c, "GET", "/user/%3Cx%3E", NULL, NULL)->status, 404);
    r = call(&c, "GET", "/status", NULL, NULL);
    CHECK(r->status == 200 && body_has(r, "node 7") && body_has(r, "<td>leader</td>") && body_has(r, "<td>unreachable</td>"));

    /* Log out by form. */
    snprintf(body, sizeof body, "csrf=%s", csrf);
    r = call(&c, "POST", "/logout", "application/x-www-form-urlencoded", body);
    CHECK_EQ_I(r->status, 303);
    CHECK(strstr(r->headers, "lr_session=;"));
    c.session[0] = 0;
    r = call(&c, "GET", "/", NULL, NULL);
    CHECK(body_has(r, "href=\"/login\""));

    /* Log in by form, with a redirect home. */
    r = call(&c, "GET", "/login", NULL, NULL);
    CHECK(!body_has(r, "name=\"next\""));
    r = post_form(&c, "/login", "username=alice&password=wrong+one");
    CHECK_EQ_I(r->status, 401);
    CHECK(body_has(r, ">Wrong username or password.<") && body_has(r, "value=\"alice\""));
    r = post_form(&c, "/login", "username=alice&password=correct+horse");
    CHECK_EQ_I(r->status, 303);
    CHECK_STR(header(r, "Location"), "/");
    CHECK(c.session[0]);

    /* Sent to log in from a page: the form carries where the user was, past
     * a wrong password, and the login returns there; never off-site. */
    snprintf(body, sizeof body, "csrf=%s", form_csrf(call(&c, "GET", "/", NULL, NULL)));
    CHECK_EQ_I(call(&c, "POST", "/logout", "application/x-www-form-urlencoded", body)->status, 303);
    c.session[0] = 0;
    r = call(&c, "GET", "/login?next=%2F%2Fevil.example", NULL, NULL);
    CHECK(r->status == 200 && !body_has(r, "name=\"next\""));
    r = call(&c, "GET", "/login?next=/%09/evil.example", NULL, NULL);
    CHECK(r->status == 200 && !body_has(r, "name=\"next\""));
    r = call(&c, "GET", "/login?next=%2Flink%2F1", NULL, NULL);
    CHECK(r->status == 200 && body_has(r, "name=\"next\" value=\"/link/1\""));
    r = post_form(&c, "/login", "username=alice&password=wrong+one&next=%2Flink%2F1");
    CHECK_EQ_I(r->status, 401);
    CHECK(body_has(r, "name=\"next\" value=\"/link/1\""));
    r = post_form(&c, "/login", "username=alice&password=correct+horse&next=%2Flink%2F1");
    CHECK_EQ_I(r->status, 303);
    CHECK_STR(header(r, "Location"), "/link/1");
    CHECK(c.session[0]);
    teardown();
}

TEST(front_page_size_pagination_css_and_errors)
{
    setup("front.db", 100);
    struct client c = { 0 };
    REQUIRE(signup(&c, "somebody_long_name"));
    for (int i = 0; i < 31; i++) {
        char body[400];
        snprintf(body, sizeof body, "{\"title\":\"A reasonably long title for a link, like most of them are, number %d\","
                                    "\"url\":\"https://www.example-news-site.com/2026/12/01/some-article-slug-%d?ref=rss\"}", i, i);
        REQUIRE(post_json(&c, "/api/v1/links", body)->status == 201);
    }
    struct response *r = call(&c, "GET", "/", NULL, NULL);
    CHECK_EQ_I(r->status, 200);
    fprintf(stderr, "  front page with 30 links, logged in: %zu bytes\n", r->len);
    CHECK(r->len < 30 * 1024);
    CHECK(body_has(r, "href=\"/?p=2\" rel=\"next\">More"));
    r = call(&c, "GET", "/?p=2", NULL, NULL);
    CHECK(r->status == 200 && body_has(r, "start=\"31\"") && !body_has(r, ">More<"));
    r = call(&c, "GET", "/new?p=zz", NULL, NULL);
    CHECK_EQ_I(r->status, 200);
    CHECK_EQ_I(call(&c, "GET", "/top", NULL, NULL)->status, 200);

    r = call(&c, "GET", "/static/site.v2.css", NULL, NULL);
    CHECK_EQ_I(r->status, 200);
    CHECK(header(r, "Content-Type") && strstr(header(r, "Content-Type"), "text/css"));
    CHECK(header(r, "Cache-Control") && strstr(header(r, "Cache-Control"), "max-age=31536000"));
    CHECK(body_has(r, "prefers-color-scheme:dark"));
    CHECK(header(r, "Set-Cookie") == NULL); /* cacheable: no cookie on it */
    r = call(&c, "HEAD", "/", NULL, NULL);
    CHECK_EQ_I(r->status, 200);

    r = call(&c, "GET", "/no/such/page", NULL, NULL);
    CHECK_EQ_I(r->status, 404);
    CHECK(header(r, "Content-Type") && strstr(header(r, "Content-Type"), "text/html"));
    CHECK(body_has(r, "404"));
    r = call(&c, "POST", "/", "application/x-www-form-urlencoded", "");
    CHECK_EQ_I(r->status, 405);
    CHECK_STR(header(r, "Allow"), "GET, HEAD");
    CHECK_EQ_I(call(&c, "GET", "/logout", NULL, NULL)->status, 405);
    CHECK_EQ_I(call(&c, "GET", "/link/1/like", NULL, NULL)->status, 405);
    CHECK_EQ_I(call(&c, "GET", "/link/999", NULL, NULL)->status, 404);
    CHECK_EQ_I(call(&c, "GET", "/link/-1", NULL, NULL)->status, 404);
    struct site_stats st;
    site_get_stats(site, &st);
    CHECK_EQ_U(st.in_flight, 0);
    teardown();
}

/* The first list pages for a visitor who is not logged in come from a cache
 * (pages.c) that must never show anything a fresh render would not: it
 * follows every applied write and the clock's "N minutes ago", and logged-in
 * visitors and later pages always get their own render. */
TEST(front_page_cache_follows_writes_and_the_clock)
{
    setup("cache.db", 100);
    struct client alice = { 0 };
    const char *t = signup(&alice, "alice_cache");
    REQUIRE(t);
    bearer(&alice, t);
    REQUIRE(post_json(&alice, "/api/v1/links", "{\"title\":\"First cached\",\"url\":\"https://a.example/1\"}")->status == 201);
    struct site_stats st0, st;
    site_get_stats(site, &st0);
    struct response *r = call(NULL, "GET", "/", NULL, NULL);
    REQUIRE(r->status == 200 && body_has(r, "First cached") && body_has(r, "just now"));
    char *first = strdup(r->body);
    site_get_stats(site, &st);
    CHECK_EQ_U(st.page_cache_hits, st0.page_cache_hits); /* the first is rendered */
    r = call(NULL, "GET", "/", NULL, NULL);
    CHECK_STR(r->body, first);
    site_get_stats(site, &st);
    CHECK_EQ_U(st.page_cache_hits, st0.page_cache_hits + 1);
    free(first);

    /* A write changes the applied index: the next page shows it. */
    REQUIRE(post_json(&alice, "/api/v1/links", "{\"title\":\"Second cached\",\"url\":\"https://a.example/2\"}")->status == 201);
    r = call(NULL, "GET", "/new", NULL, NULL);
    CHECK(body_has(r, "Second cached"));
    r = call(NULL, "GET", "/", NULL, NULL);
    CHECK(body_has(r, "Second cached") && body_has(r, "0 likes"));
    REQUIRE(call(&alice, "PUT", "/api/v1/links/1/like", NULL, NULL)->status == 200);
    r = call(NULL, "GET", "/", NULL, NULL);
    CHECK(body_has(r, "1 like ·"));
    char idx[32];
    snprintf(idx, sizeof idx, "%" PRIu64, store_applied(dh.store));
    CHECK_STR(header(r, "X-Raft-Index"), idx);

    /* The clock: "just now" holds until a minute after the newest post. */
    site_get_stats(site, &st0);
    dh.now_ms += 59999;
    r = call(NULL, "GET", "/", NULL, NULL);
    CHECK(body_has(r, "just now") && !body_has(r, "1 minute ago"));
    site_get_stats(site, &st);
    CHECK_EQ_U(st.page_cache_hits, st0.page_cache_hits + 1);
    dh.now_ms += 1;
    r = call(NULL, "GET", "/", NULL, NULL);
    CHECK(body_has(r, "1 minute ago") && !body_has(r, "just now"));
    site_get_stats(site, &st);
    CHECK_EQ_U(st.page_cache_hits, st0.page_cache_hits + 1); /* rendered again */

    /* Logged in: the user's own page (name, forms, liked marks), never the cache. */
    site_get_stats(site, &st0);
    r = call(&alice, "GET", "/", NULL, NULL);
    CHECK(body_has(r, "alice_cache") && body_has(r, "up on"));
    r = call(NULL, "GET", "/", NULL, NULL);
    CHECK(!body_has(r, "alice_cache</a><form") && !body_has(r, "name=\"csrf\""));
    r = call(NULL, "GET", "/?p=2", NULL, NULL);
    r = call(NULL, "GET", "/?p=2", NULL, NULL);
    CHECK_EQ_I(r->status, 200);
    site_get_stats(site, &st);
    CHECK_EQ_U(st.page_cache_hits, st0.page_cache_hits + 1); /* only the anonymous "/" above */
    teardown();
}

/* Seeded garbage at every entry point: each request gets exactly one answer
 * with a sensible status, nothing leaks (ASan), nothing crashes. */
static unsigned seed_state;
static unsigned rnd(void)
{
    seed_state = seed_state * 1103515245u + 12345u;
    return seed_state >> 8;
}

static const char *pick(const char *const *xs, size_t n) { return xs[rnd() % n]; }

TEST(hostile_requests_always_get_one_answer)
{
    setup("hostile.db", 1000);
    struct client good = { 0 };
    REQUIRE(signup(&good, "target"));
    REQUIRE(post_json(&good, "/api/v1/links", "{\"title\":\"t\",\"url\":\"http://t.example/\"}")->status == 201);
    static const char *const methods[] = { "GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS", "BREW" };
    static const char *const paths[] = {
        "/", "/new", "/top", "/link/1", "/link/1/like", "/link/0", "/link/99999999999999999999", "/link/1/",
        "/link//like", "/user/target", "/user/", "/user/%00", "/user/aaaaaaaaaaaaaaaaaaaaaaaaa", "/submit",
        "/login", "/signup", "/logout", "/status", "/static/site.v2.css", "/static/", "/api/v1/signup",
        "/api/v1/login", "/api/v1/logout", "/api/v1/me", "/api/v1/links", "/api/v1/links/1",
        "/api/v1/links/1/like", "/api/v1/links/x/like", "/api/v1/", "/api/v1", "/api/v1/links/1/like/x", "//",
        "/%2e%2e/etc/passwd", "/\xff\xfe",
    };
    static const char *const queries[] = { "", "p=2", "p=0", "p=-1", "p=99999999999", "sort=top&limit=5",
                                           "limit=%", "offset=%41", "sort=hot&sort=new", "&&&", "p=%zz" };
    static const char *const ctypes[] = { NULL, "application/json", "application/json; charset=utf-8",
                                          "application/x-www-form-urlencoded", "text/plain", "multipart/form-data",
                                          "application/jsonx" };
    static const char *const bodies[] = {
        "", "{", "{}", "[]", "null", "{\"username\":\"target\",\"password\":\"correct horse\"}",
        "{\"username\":\"x\",\"password\":1}", "{\"title\":\"t\",\"url\":\"http://h.example/\"}",
        "{\"title\":\"\\ud800\",\"url\":\"http://h.example/\"}", "csrf=&username=a&password=b",
        "csrf=%zz", "title=%ff%fe&url=http%3A%2F%2Fx", "\xff\xfe\xfd", "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
    };
    static const char *const extras[] = {
        "", "Authorization: Bearer \n", "Authorization: Bearer zz\n", "Authorization: Basic abc\n",
        "Origin: http://evil.example\n", "Origin: http://127.0.0.1:22001\n", "X-Consistency: stale\n",
        "X-Consistency: LINEARIZABLE\n", "X-Min-Index: 18446744073709551615\n", "X-Min-Index: 1\n",
        "Idempotency-Key: k\n", "Idempotency-Key: \n", "X-Forwarded-For: ,,,\n", "X-Forwarded-For: \n",
    };
    static char body[70000];
    for (int i = 0; i < 1500; i++) {
        struct client c = { 0 };
        if (rnd() % 3 == 0)
            c = good;
        else if (rnd() % 2)
            snprintf(c.session, sizeof c.session, "%s", rnd() % 2 ? "zz" : "0000000000000000000000000000000000000000000000000000000000000000");
        snprintf(c.extra, sizeof c.extra, "%s%s", pick(extras, sizeof extras / sizeof extras[0]),
                 pick(extras, sizeof extras / sizeof extras[0]));
        char target[600];
        snprintf(target, sizeof target, "%s?%s", pick(paths, sizeof paths / sizeof paths[0]),
                 pick(queries, sizeof queries / sizeof queries[0]));
        const char *b = pick(bodies, sizeof bodies / sizeof bodies[0]);
        if (rnd() % 20 == 0) { /* a big random body */
            size_t n = 1 + rnd() % (sizeof body - 1);
            for (size_t k = 0; k < n; k++)
                body[k] = (char)(1 + rnd() % 255);
            body[n] = 0;
            b = body;
        }
        struct response *r = call(&c, pick(methods, sizeof methods / sizeof methods[0]), target,
                                  pick(ctypes, sizeof ctypes / sizeof ctypes[0]), b);
        if (r->status < 200 || r->status > 599) {
            fprintf(stderr, "  request %d (%s) got %d\n", i, target, r->status);
            CHECK(0);
            break;
        }
        CHECK(header(r, "X-Served-By") != NULL);
    }
    CHECK_EQ_I(double_responses, 0);
    struct site_stats st;
    site_get_stats(site, &st);
    CHECK_EQ_U(st.in_flight, 0);
    /* The real user is intact (the garbage may have logged that session out,
     * legitimately: it carried the cookie). */
    struct client again = { 0 };
    CHECK_EQ_I(post_json(&again, "/api/v1/login", "{\"username\":\"target\",\"password\":\"correct horse\"}")->status, 200);
    CHECK_EQ_I(call(&again, "GET", "/api/v1/links/1", NULL, NULL)->status, 200);
    teardown();
}

/* The real settings: argon2id with OWASP's parameters, on a worker. */
TEST(passwords_are_hashed_with_owasp_argon2id)
{
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/owasp.db", dir);
    memset(&dh, 0, sizeof dh);
    dh.now_ms = 1764547200000ull;
    dh.id = 7;
    REQUIRE(store_open(path, &dh.store, err, sizeof err) == STORE_OK);
    struct site_host h;
    direct_host_init(&dh, &h);
    h.cluster_json = NULL;
    struct site_options o;
    site_options_default(&o);
    o.rate_limits_off = true; /* these tests post far faster than a person */
    o.loop = &loop;
    REQUIRE(site_create(&h, &o, &site, err, sizeof err) == 0);
    struct client c = { 0 };
    REQUIRE(signup(&c, "owasp"));
    struct store_user u;
    REQUIRE(store_user_by_name(dh.store, "owasp", 5, &u) == 1);
    CHECK(!strncmp(u.pwhash, "$argon2id$v=19$m=19456,t=2,p=1$", 31));
    struct response *r = call(&c, "GET", "/status", NULL, NULL); /* no cluster view from this host */
    CHECK(r->status == 200 && body_has(r, "not available"));
    teardown();
}

/* ---- Comments (SPEC §5) ------------------------------------------------------------- */

/* The ids of the thread's comments, with depths, as "id@depth ...". */
static const char *thread_of(struct client *c, int64_t link)
{
    static char out[512];
    char path[64];
    snprintf(path, sizeof path, "/api/v1/links/%lld/comments", (long long)link);
    struct response *r = call(c, "GET", path, NULL, NULL);
    out[0] = 0;
    struct json_doc d;
    char err[64];
    if (r->status != 200 || json_parse(&d, r->body, r->len, err, sizeof err))
        return "error";
    const struct json *list = json_get(d.root, "comments");
    size_t off = 0;
    for (const struct json *m = list ? list->child : NULL; m; m = m->next) {
        const struct json *id = json_get(m, "id"), *depth = json_get(m, "depth");
        off += (size_t)snprintf(out + off, sizeof out - off, "%s%lld@%lld", off ? " " : "",
                                (long long)(id ? id->i : -1), (long long)(depth ? depth->i : -1));
    }
    json_free(&d);
    return out;
}

TEST(comments_api_rows)
{
    setup("comments.db", 100);
    struct client a = { 0 }, b = { 0 }, anon = { 0 };
    const char *t = signup(&a, "alice");
    REQUIRE(t);
    bearer(&a, t);
    t = signup(&b, "bob");
    REQUIRE(t);
    bearer(&b, t);
    struct response *r = post_json(&a, "/api/v1/links", "{\"title\":\"One\",\"url\":\"https://one.example/\"}");
    REQUIRE(r->status == 201);
    CHECK_EQ_I(json_int(r, "comments"), 0);
    r = post_json(&a, "/api/v1/links/1/comments", "{\"text\":\"first <b>\\r\\n\\r\\nsecond para\"}");
    CHECK_EQ_I(r->status, 201);
    CHECK_STR(header(r, "Location"), "/api/v1/comments/1");
    CHECK_EQ_I(json_int(r, "id"), 1);
    CHECK_EQ_I(json_int(r, "link"), 1);
    CHECK_EQ_I(json_int(r, "depth"), 0);
    CHECK_STR(json_str(r, "author"), "alice");
    CHECK_STR(json_str(r, "text"), "first <b>\n\nsecond para");
    CHECK(body_has(r, "\"parent\":null") && body_has(r, "\"edited\":null") && body_has(r, "\"deleted\":false"));
    r = post_json(&b, "/api/v1/links/1/comments", "{\"text\":\"a reply\",\"parent\":1}");
    CHECK_EQ_I(r->status, 201);
    CHECK_EQ_I(json_int(r, "parent"), 1);
    CHECK_EQ_I(json_int(r, "depth"), 1);
    r = post_json(&b, "/api/v1/links/1/comments", "{\"text\":\"second top\"}");
    CHECK_EQ_I(json_int(r, "id"), 3);
    CHECK_STR(thread_of(&anon, 1), "1@0 2@1 3@0");
    /* Likes reorder siblings; PUT and DELETE are idempotent. */
    r = call(&a, "PUT", "/api/v1/comments/3/like", "application/json", NULL);
    CHECK_EQ_I(r->status, 200);
    CHECK(body_has(r, "\"id\":3,\"likes\":1,\"liked\":true"));
    r = call(&a, "PUT", "/api/v1/comments/3/like", "application/json", NULL);
    CHECK(body_has(r, "\"likes\":1,\"liked\":true"));
    CHECK_STR(thread_of(&anon, 1), "3@0 1@0 2@1");
    r = call(&a, "DELETE", "/api/v1/comments/3/like", "application/json", NULL);
    CHECK(body_has(r, "\"likes\":0,\"liked\":false"));
    CHECK_STR(thread_of(&anon, 1), "1@0 2@1 3@0");
    /* The link counts live comments. */
    r = call(&anon, "GET", "/api/v1/links/1", NULL, NULL);
    CHECK_EQ_I(json_int(r, "comments"), 3);
    /* Errors: a parent of another link or gone, no such link, bad bodies, not logged in. */
    r = post_json(&a, "/api/v1/links", "{\"title\":\"Two\",\"url\":\"https://two.example/\"}");
    REQUIRE(r->status == 201);
    CHECK_EQ_I(post_json(&a, "/api/v1/links/2/comments", "{\"text\":\"x\",\"parent\":1}")->status, 400);
    CHECK_EQ_I(post_json(&a, "/api/v1/links/1/comments", "{\"text\":\"x\",\"parent\":99}")->status, 400);
    CHECK_EQ_I(post_json(&a, "/api/v1/links/1/comments", "{\"text\":\"x\",\"parent\":\"1\"}")->status, 400);
    CHECK_EQ_I(post_json(&a, "/api/v1/links/9/comments", "{\"text\":\"x\"}")->status, 404);
    CHECK_EQ_I(call(&anon, "GET", "/api/v1/links/9/comments", NULL, NULL)->status, 404);
    r = post_json(&a, "/api/v1/links/1/comments", "{\"text\":\"  \\n \"}");
    CHECK_EQ_I(r->status, 400);
    CHECK_STR(json_str(r, "error"), "invalid");
    CHECK_EQ_I(post_json(&a, "/api/v1/links/1/comments", "{\"txt\":\"x\"}")->status, 400);
    CHECK_EQ_I(post_json(&anon, "/api/v1/links/1/comments", "{\"text\":\"x\"}")->status, 401);
    char *big = malloc(10002 + 20);
    REQUIRE(big);
    memcpy(big, "{\"text\":\"", 9);
    memset(big + 9, 'x', 10001);
    memcpy(big + 9 + 10001, "\"}", 3);
    CHECK_EQ_I(post_json(&a, "/api/v1/links/1/comments", big)->status, 400);
    big[9 + 10000] = '"', big[9 + 10001] = '}', big[9 + 10002] = 0; /* exactly 10,000 */
    CHECK_EQ_I(post_json(&a, "/api/v1/links/1/comments", big)->status, 201);
    free(big);
    CHECK_EQ_I(call(&anon, "GET", "/api/v1/comments/4", NULL, NULL)->status, 200);
    /* PATCH: the author within 2 hours; not another user; not later. */
    r = call(&b, "PATCH", "/api/v1/comments/2", "application/json", "{\"text\":\"a better reply\"}");
    CHECK_EQ_I(r->status, 200);
    CHECK_STR(json_str(r, "text"), "a better reply");
    CHECK(json_str(r, "edited") != NULL);
    CHECK_EQ_I(call(&a, "PATCH", "/api/v1/comments/2", "application/json", "{\"text\":\"mine now\"}")->status, 403);
    dh.now_ms += 2 * 3600 * 1000 + 1;
    CHECK_EQ_I(call(&b, "PATCH", "/api/v1/comments/2", "application/json", "{\"text\":\"too late\"}")->status, 403);
    /* DELETE: not another user's; one with replies stays as a placeholder. */
    CHECK_EQ_I(call(&b, "DELETE", "/api/v1/comments/1", "application/json", NULL)->status, 403);
    CHECK_EQ_I(call(&a, "DELETE", "/api/v1/comments/1", "application/json", NULL)->status, 204);
    r = call(&anon, "GET", "/api/v1/comments/1", NULL, NULL);
    CHECK_EQ_I(r->status, 200);
    CHECK(body_has(r, "\"author\":null") && body_has(r, "\"text\":\"\"") && body_has(r, "\"deleted\":true"));
    CHECK_EQ_I(call(&a, "DELETE", "/api/v1/comments/1", "application/json", NULL)->status, 404);
    CHECK_EQ_I(call(&a, "PUT", "/api/v1/comments/1/like", "application/json", NULL)->status, 404);
    CHECK_EQ_I(call(&b, "DELETE", "/api/v1/comments/2", "application/json", NULL)->status, 204);
    CHECK_STR(thread_of(&anon, 1), "3@0 4@0"); /* the placeholder went with its last reply */
    r = call(&anon, "GET", "/api/v1/links/1", NULL, NULL);
    CHECK_EQ_I(json_int(r, "comments"), 2);
    /* Methods and paths. */
    CHECK_EQ_I(call(&a, "PUT", "/api/v1/links/1/comments", "application/json", "{}")->status, 405);
    CHECK_EQ_I(call(&a, "POST", "/api/v1/comments/3", "application/json", "{}")->status, 405);
    CHECK_EQ_I(call(&a, "GET", "/api/v1/comments/3/like", NULL, NULL)->status, 405);
    CHECK_EQ_I(call(&a, "GET", "/api/v1/comments/03", NULL, NULL)->status, 404);
    CHECK_EQ_I(call(&a, "GET", "/api/v1/comments/3/x", NULL, NULL)->status, 404);
    teardown();
}

TEST(comment_writes_are_exactly_once)
{
    setup("comments-idem.db", 100);
    struct client a = { 0 };
    const char *t = signup(&a, "alice");
    REQUIRE(t);
    char extra[200];
    snprintf(extra, sizeof extra, "Authorization: Bearer %s\nIdempotency-Key: c-1\n", t);
    snprintf(a.extra, sizeof a.extra, "Authorization: Bearer %s\n", t);
    REQUIRE(post_json(&a, "/api/v1/links", "{\"title\":\"One\",\"url\":\"https://one.example/\"}")->status == 201);
    snprintf(a.extra, sizeof a.extra, "%s", extra);
    struct response *r = post_json(&a, "/api/v1/links/1/comments", "{\"text\":\"once\"}");
    CHECK_EQ_I(r->status, 201);
    r = post_json(&a, "/api/v1/links/1/comments", "{\"text\":\"once\"}");
    CHECK_EQ_I(r->status, 201);
    CHECK_EQ_I(json_int(r, "id"), 1);
    CHECK_STR(thread_of(&a, 1), "1@0");
    teardown();
}

TEST(comment_pages_without_javascript)
{
    setup("comment-pages.db", 100);
    struct client c = { 0 }, anon = { 0 };
    struct response *r = call(&c, "GET", "/signup", NULL, NULL);
    REQUIRE(post_form(&c, "/signup", "username=alice&password=correct+horse")->status == 303);
    r = call(&c, "GET", "/submit", NULL, NULL);
    char csrf[64], body[600];
    snprintf(csrf, sizeof csrf, "%s", form_csrf(r));
    snprintf(body, sizeof body, "csrf=%s&title=One&url=https%%3A%%2F%%2Fone.example%%2F", csrf);
    REQUIRE(call(&c, "POST", "/submit", "application/x-www-form-urlencoded", body)->status == 303);
    /* The link page has the form (with the CSRF token) and no thread yet. */
    r = call(&c, "GET", "/link/1", NULL, NULL);
    CHECK_EQ_I(r->status, 200);
    CHECK(body_has(r, "action=\"/link/1/comment\"") && body_has(r, "<textarea") && body_has(r, "0 comments"));
    CHECK(!body_has(r, "<script"));
    /* Post, reply through the reply page, and see the thread nested. */
    snprintf(body, sizeof body, "csrf=%s&text=Hello+%%3Cworld%%3E+see+https%%3A%%2F%%2Fx.example%%2F", csrf);
    r = call(&c, "POST", "/link/1/comment", "application/x-www-form-urlencoded", body);
    CHECK_EQ_I(r->status, 303);
    CHECK_STR(header(r, "Location"), "/link/1#c1");
    r = call(&c, "GET", "/comment/1/reply", NULL, NULL);
    CHECK_EQ_I(r->status, 200);
    CHECK(body_has(r, "action=\"/comment/1/reply\"") && body_has(r, "Hello &lt;world&gt;"));
    snprintf(body, sizeof body, "csrf=%s&text=A+reply", csrf);
    r = call(&c, "POST", "/comment/1/reply", "application/x-www-form-urlencoded", body);
    CHECK_EQ_I(r->status, 303);
    CHECK_STR(header(r, "Location"), "/link/1#c2");
    r = call(&anon, "GET", "/link/1", NULL, NULL);
    CHECK(body_has(r, "2 comments"));
    CHECK(body_has(r, "<ul class=\"cs\"><li id=c1>"));
    CHECK(body_has(r, "<ul><li id=c2>")); /* nested one level down */
    CHECK(body_has(r, "<a href=\"https://x.example/\" rel=\"nofollow ugc noopener\">"));
    CHECK(body_has(r, "/login?next=/link/1")); /* log in to comment, and back */
    CHECK(!body_has(r, "action=\"/link/1/comment\""));
    r = call(&anon, "GET", "/", NULL, NULL);
    CHECK(body_has(r, "<a href=\"/link/1\">2 comments</a>"));
    /* A visitor who is not logged in and replies goes to the login page. */
    r = call(&anon, "GET", "/comment/1/reply", NULL, NULL);
    CHECK_EQ_I(r->status, 303);
    CHECK_STR(header(r, "Location"), "/login?next=/comment/1/reply");
    /* Like (toggle), edit, delete, each back to the comment. */
    snprintf(body, sizeof body, "csrf=%s", csrf);
    r = call(&c, "POST", "/comment/2/like", "application/x-www-form-urlencoded", body);
    CHECK_EQ_I(r->status, 303);
    CHECK_STR(header(r, "Location"), "/link/1#c2");
    r = call(&c, "GET", "/link/1", NULL, NULL);
    CHECK(body_has(r, "1 like<") || body_has(r, "1 like ·"));
    CHECK(body_has(r, "class=\"up on\""));
    r = call(&c, "GET", "/comment/2/edit", NULL, NULL);
    CHECK_EQ_I(r->status, 200);
    CHECK(body_has(r, ">A reply</textarea>"));
    snprintf(body, sizeof body, "csrf=%s&text=An+edited+reply", csrf);
    r = call(&c, "POST", "/comment/2/edit", "application/x-www-form-urlencoded", body);
    CHECK_EQ_I(r->status, 303);
    r = call(&c, "GET", "/link/1", NULL, NULL);
    CHECK(body_has(r, "An edited reply") && body_has(r, " · edited"));
    snprintf(body, sizeof body, "csrf=%s", csrf);
    r = call(&c, "POST", "/comment/1/delete", "application/x-www-form-urlencoded", body);
    CHECK_EQ_I(r->status, 303);
    CHECK_STR(header(r, "Location"), "/link/1");
    r = call(&c, "GET", "/link/1", NULL, NULL);
    CHECK(body_has(r, "[deleted]") && !body_has(r, "Hello") && body_has(r, "An edited reply"));
    /* Forms need the token; an empty comment is refused with a message. */
    r = call(&c, "POST", "/link/1/comment", "application/x-www-form-urlencoded", "text=x");
    CHECK_EQ_I(r->status, 403);
    snprintf(body, sizeof body, "csrf=%s&text=+", csrf);
    r = call(&c, "POST", "/link/1/comment", "application/x-www-form-urlencoded", body);
    CHECK_EQ_I(r->status, 400);
    CHECK(body_has(r, "empty"));
    /* The form comes back with the text and the reason tied to the field. */
    snprintf(body, sizeof body, "csrf=%s&text=bell%%07+%%3Cb%%3E", csrf);
    r = call(&c, "POST", "/comment/2/reply", "application/x-www-form-urlencoded", body);
    CHECK_EQ_I(r->status, 400);
    CHECK(body_has(r, "action=\"/comment/2/reply\"") && body_has(r, "aria-describedby=\"text-err\"") &&
          body_has(r, "id=\"text-err\"") && body_has(r, "control character") && body_has(r, "&lt;b&gt;</textarea>"));
    CHECK_EQ_I(call(&c, "GET", "/comment/99/reply", NULL, NULL)->status, 404);
    CHECK_EQ_I(call(&c, "GET", "/comment/2/like", NULL, NULL)->status, 405);
    teardown();
}

TEST(text_posts_edit_and_delete_links)
{
    setup("text-posts.db", 100);
    struct client a = { 0 }, b = { 0 }, anon = { 0 };
    const char *t = signup(&a, "alice");
    REQUIRE(t);
    bearer(&a, t);
    t = signup(&b, "bob");
    REQUIRE(t);
    bearer(&b, t);
    struct response *r = post_json(&a, "/api/v1/links", "{\"title\":\"Ask: why?\",\"text\":\"Tell me\\r\\nhttps://x.example/\"}");
    CHECK_EQ_I(r->status, 201);
    CHECK(body_has(r, "\"url\":null") && body_has(r, "\"domain\":null") && body_has(r, "\"edited\":null"));
    CHECK_STR(json_str(r, "text"), "Tell me\nhttps://x.example/");
    int64_t ask = json_int(r, "id");
    r = post_json(&a, "/api/v1/links", "{\"title\":\"Both\",\"url\":\"https://both.example/\",\"text\":\"why\"}");
    CHECK_EQ_I(r->status, 201);
    CHECK_STR(json_str(r, "domain"), "both.example");
    CHECK_STR(json_str(r, "text"), "why");
    int64_t both = json_int(r, "id");
    r = post_json(&a, "/api/v1/links", "{\"title\":\"Plain\",\"url\":\"https://plain.example/\",\"text\":null}");
    CHECK_EQ_I(r->status, 201);
    CHECK(body_has(r, "\"text\":null"));
    CHECK_EQ_I(post_json(&a, "/api/v1/links", "{\"title\":\"Nothing\"}")->status, 400);
    CHECK_EQ_I(post_json(&a, "/api/v1/links", "{\"title\":\"Blank\",\"text\":\" \"}")->status, 400);
    CHECK_EQ_I(post_json(&a, "/api/v1/links", "{\"title\":\"Num\",\"text\":5}")->status, 400);
    r = call(&anon, "GET", "/api/v1/links?sort=new", NULL, NULL);
    CHECK(body_has(r, "\"text\":\"why\"") && body_has(r, "\"text\":\"Tell me\\nhttps://x.example/\""));
    /* The pages: the title of a text post leads to its page, which shows the text. */
    r = call(&anon, "GET", "/new", NULL, NULL);
    char want[128];
    snprintf(want, sizeof want, "<a class=\"t\" href=\"/link/%lld\">Ask: why?</a>", (long long)ask);
    CHECK(body_has(r, want));
    snprintf(want, sizeof want, "/link/%lld", (long long)ask);
    r = call(&anon, "GET", want, NULL, NULL);
    CHECK(body_has(r, "<div class=\"ct\"><p>Tell me\n<a href=\"https://x.example/\" rel=\"nofollow ugc noopener\">"));
    /* PATCH: the author, within 2 hours. */
    char path[64];
    snprintf(path, sizeof path, "/api/v1/links/%lld", (long long)ask);
    r = call(&a, "PATCH", path, "application/json", "{\"title\":\"Ask: why Raft?\"}");
    CHECK_EQ_I(r->status, 200);
    CHECK_STR(json_str(r, "title"), "Ask: why Raft?");
    CHECK_STR(json_str(r, "text"), "Tell me\nhttps://x.example/");
    CHECK(json_str(r, "edited") != NULL);
    r = call(&a, "PATCH", path, "application/json", "{\"text\":\"Tell me more\"}");
    CHECK_STR(json_str(r, "text"), "Tell me more");
    CHECK_EQ_I(call(&a, "PATCH", path, "application/json", "{\"title\":\"\"}")->status, 400);
    CHECK_EQ_I(call(&a, "PATCH", path, "application/json", "{}")->status, 400);
    CHECK_EQ_I(call(&b, "PATCH", path, "application/json", "{\"title\":\"mine\"}")->status, 403);
    CHECK_EQ_I(call(&anon, "PATCH", path, "application/json", "{\"title\":\"mine\"}")->status, 401);
    dh.now_ms += 2 * 3600 * 1000 + 1;
    CHECK_EQ_I(call(&a, "PATCH", path, "application/json", "{\"title\":\"late\"}")->status, 403);
    /* DELETE: the author's; then 404, out of the listings, the URL free again. */
    snprintf(path, sizeof path, "/api/v1/links/%lld", (long long)both);
    CHECK_EQ_I(call(&b, "DELETE", path, "application/json", NULL)->status, 403);
    CHECK_EQ_I(call(&a, "DELETE", path, "application/json", NULL)->status, 204);
    CHECK_EQ_I(call(&anon, "GET", path, NULL, NULL)->status, 404);
    CHECK_EQ_I(call(&a, "DELETE", path, "application/json", NULL)->status, 404);
    r = call(&anon, "GET", "/api/v1/links?sort=new", NULL, NULL);
    CHECK(!body_has(r, "both.example"));
    snprintf(path, sizeof path, "/link/%lld", (long long)both);
    CHECK_EQ_I(call(&anon, "GET", path, NULL, NULL)->status, 404);
    r = post_json(&b, "/api/v1/links", "{\"title\":\"Both again\",\"url\":\"https://both.example/\"}");
    CHECK_EQ_I(r->status, 201);
    CHECK(json_int(r, "id") > both);
    teardown();
}

TEST(text_post_and_link_edit_pages)
{
    setup("text-pages.db", 100);
    struct client c = { 0 };
    call(&c, "GET", "/signup", NULL, NULL);
    REQUIRE(post_form(&c, "/signup", "username=alice&password=correct+horse")->status == 303);
    struct response *r = call(&c, "GET", "/submit", NULL, NULL);
    CHECK(body_has(r, "<textarea id=\"text\" name=\"text\"") && !body_has(r, "type=\"url\" required"));
    char csrf[64], body[600];
    snprintf(csrf, sizeof csrf, "%s", form_csrf(r));
    snprintf(body, sizeof body, "csrf=%s&title=Ask&url=&text=Hello+there", csrf);
    r = call(&c, "POST", "/submit", "application/x-www-form-urlencoded", body);
    CHECK_EQ_I(r->status, 303);
    CHECK_STR(header(r, "Location"), "/link/1");
    snprintf(body, sizeof body, "csrf=%s&title=Neither&url=&text=+", csrf);
    r = call(&c, "POST", "/submit", "application/x-www-form-urlencoded", body);
    CHECK_EQ_I(r->status, 400);
    r = call(&c, "GET", "/link/1", NULL, NULL);
    CHECK(body_has(r, "<p>Hello there</p>") && body_has(r, "href=\"/link/1/edit\"") &&
          body_has(r, "action=\"/link/1/delete\""));
    r = call(&c, "GET", "/link/1/edit", NULL, NULL);
    CHECK_EQ_I(r->status, 200);
    CHECK(body_has(r, "value=\"Ask\"") && body_has(r, ">Hello there</textarea>"));
    snprintf(body, sizeof body, "csrf=%s&title=Ask+again&text=Hello+again", csrf);
    r = call(&c, "POST", "/link/1/edit", "application/x-www-form-urlencoded", body);
    CHECK_EQ_I(r->status, 303);
    r = call(&c, "GET", "/link/1", NULL, NULL);
    CHECK(body_has(r, "Ask again") && body_has(r, "<p>Hello again</p>"));
    snprintf(body, sizeof body, "csrf=%s", csrf);
    r = call(&c, "POST", "/link/1/delete", "application/x-www-form-urlencoded", body);
    CHECK_EQ_I(r->status, 303);
    CHECK_STR(header(r, "Location"), "/");
    CHECK_EQ_I(call(&c, "GET", "/link/1", NULL, NULL)->status, 404);
    teardown();
}

TEST(users_profiles_about_and_password)
{
    setup("users.db", 100);
    struct client a = { 0 }, a2 = { 0 }, b = { 0 }, anon = { 0 };
    const char *t = signup(&a, "alice");
    REQUIRE(t);
    bearer(&a, t);
    t = signup(&b, "bob");
    REQUIRE(t);
    bearer(&b, t);
    struct response *r = post_json(&a2, "/api/v1/login", "{\"username\":\"alice\",\"password\":\"correct horse\"}");
    REQUIRE(r->status == 200);
    bearer(&a2, json_str(r, "token"));
    REQUIRE(post_json(&a, "/api/v1/links", "{\"title\":\"One\",\"url\":\"https://one.example/\"}")->status == 201);
    REQUIRE(post_json(&a, "/api/v1/links/1/comments", "{\"text\":\"mine\"}")->status == 201);
    REQUIRE(call(&b, "PUT", "/api/v1/links/1/like", "application/json", NULL)->status == 200);
    REQUIRE(call(&b, "PUT", "/api/v1/comments/1/like", "application/json", NULL)->status == 200);
    r = call(&anon, "GET", "/api/v1/users/ALICE", NULL, NULL);
    CHECK_EQ_I(r->status, 200);
    CHECK_STR(json_str(r, "username"), "alice");
    CHECK_EQ_I(json_int(r, "karma"), 2);
    CHECK_EQ_I(json_int(r, "links"), 1);
    CHECK_EQ_I(json_int(r, "comments"), 1);
    CHECK_STR(json_str(r, "about"), "");
    CHECK(json_str(r, "created") != NULL);
    CHECK_EQ_I(call(&anon, "GET", "/api/v1/users/nobody", NULL, NULL)->status, 404);
    r = call(&anon, "GET", "/api/v1/users/alice/links?limit=1", NULL, NULL);
    CHECK(r->status == 200 && body_has(r, "\"title\":\"One\""));
    r = call(&anon, "GET", "/api/v1/users/alice/comments", NULL, NULL);
    CHECK(r->status == 200 && body_has(r, "\"text\":\"mine\""));
    CHECK_EQ_I(call(&anon, "GET", "/api/v1/users/alice/comments?limit=0", NULL, NULL)->status, 400);
    CHECK_EQ_I(call(&anon, "GET", "/api/v1/users/alice/x", NULL, NULL)->status, 404);
    /* PATCH /me: about, 0..2000 characters. */
    r = call(&a, "PATCH", "/api/v1/me", "application/json", "{\"about\":\"I like <Raft>\"}");
    CHECK_EQ_I(r->status, 200);
    CHECK_STR(json_str(r, "about"), "I like <Raft>");
    CHECK_EQ_I(call(&anon, "PATCH", "/api/v1/me", "application/json", "{\"about\":\"x\"}")->status, 401);
    static char big[2100];
    snprintf(big, sizeof big, "{\"about\":\"%02001d\"}", 0);
    CHECK_EQ_I(call(&a, "PATCH", "/api/v1/me", "application/json", big)->status, 400);
    r = call(&anon, "GET", "/user/alice", NULL, NULL);
    CHECK(body_has(r, "karma 2") && body_has(r, "I like &lt;Raft&gt;") && body_has(r, "/user/alice/comments"));
    r = call(&anon, "GET", "/user/alice/comments", NULL, NULL);
    CHECK(r->status == 200 && body_has(r, "<p>mine</p>") && body_has(r, "/link/1#c1"));
    /* The password: a wrong old one is 403; the right one ends every other session. */
    r = post_json(&a, "/api/v1/me/password", "{\"old\":\"wrong horse\",\"new\":\"battery staple\"}");
    CHECK_EQ_I(r->status, 403);
    CHECK_EQ_I(post_json(&a, "/api/v1/me/password", "{\"old\":\"correct horse\",\"new\":\"short\"}")->status, 400);
    r = post_json(&a, "/api/v1/me/password", "{\"old\":\"correct horse\",\"new\":\"battery staple\"}");
    CHECK_EQ_I(r->status, 204);
    CHECK_EQ_I(call(&a, "GET", "/api/v1/me", NULL, NULL)->status, 200);
    CHECK_EQ_I(call(&a2, "GET", "/api/v1/me", NULL, NULL)->status, 401);
    CHECK_EQ_I(call(&b, "GET", "/api/v1/me", NULL, NULL)->status, 200);
    struct client l = { 0 };
    CHECK_EQ_I(post_json(&l, "/api/v1/login", "{\"username\":\"alice\",\"password\":\"correct horse\"}")->status, 401);
    CHECK_EQ_I(post_json(&l, "/api/v1/login", "{\"username\":\"alice\",\"password\":\"battery staple\"}")->status, 200);
    CHECK_EQ_I(call(&a, "GET", "/api/v1/me/password", NULL, NULL)->status, 405);
    teardown();
}

TEST(settings_page)
{
    setup("settings.db", 100);
    struct client c = { 0 }, anon = { 0 };
    struct response *r = call(&anon, "GET", "/settings", NULL, NULL);
    CHECK_EQ_I(r->status, 303);
    CHECK_STR(header(r, "Location"), "/login?next=/settings");
    call(&c, "GET", "/signup", NULL, NULL);
    REQUIRE(post_form(&c, "/signup", "username=alice&password=correct+horse")->status == 303);
    r = call(&c, "GET", "/settings", NULL, NULL);
    CHECK_EQ_I(r->status, 200);
    CHECK(body_has(r, "action=\"/settings/about\"") && body_has(r, "action=\"/settings/password\""));
    char csrf[64], body[600];
    snprintf(csrf, sizeof csrf, "%s", form_csrf(r));
    snprintf(body, sizeof body, "csrf=%s&about=Hello+%%3Cthere%%3E", csrf);
    r = call(&c, "POST", "/settings/about", "application/x-www-form-urlencoded", body);
    CHECK_EQ_I(r->status, 303);
    r = call(&c, "GET", "/settings", NULL, NULL);
    CHECK(body_has(r, ">Hello &lt;there&gt;</textarea>"));
    snprintf(body, sizeof body, "csrf=%s&old=nope+nope&new=battery+staple", csrf);
    CHECK_EQ_I(call(&c, "POST", "/settings/password", "application/x-www-form-urlencoded", body)->status, 403);
    snprintf(body, sizeof body, "csrf=%s&old=correct+horse&new=battery+staple", csrf);
    r = call(&c, "POST", "/settings/password", "application/x-www-form-urlencoded", body);
    CHECK_EQ_I(r->status, 303);
    CHECK_EQ_I(call(&c, "GET", "/settings", NULL, NULL)->status, 200); /* this session stays */
    CHECK_EQ_I(call(&c, "POST", "/settings/about", "application/x-www-form-urlencoded", "about=x")->status, 403);
    teardown();
}

/* The issue's budget: a thread page adds at most 250 bytes of markup per
 * comment beyond the comment's own text (for a visitor, ids of 4 digits). */
TEST(thread_markup_per_comment_is_small)
{
    setup("thread-weight.db", 100);
    struct client a = { 0 }, anon = { 0 };
    const char *t = signup(&a, "alice");
    REQUIRE(t);
    bearer(&a, t);
    REQUIRE(post_json(&a, "/api/v1/links", "{\"title\":\"One\",\"url\":\"https://one.example/\"}")->status == 201);
    REQUIRE(post_json(&a, "/api/v1/links", "{\"title\":\"One\",\"url\":\"https://two.example/\"}")->status == 201);
    size_t empty = call(&anon, "GET", "/link/2", NULL, NULL)->len;
    const char *text = "Some words of a comment";
    int n = 40;
    for (int i = 0; i < n; i++) {
        char body[128];
        if (i % 4 == 0)
            snprintf(body, sizeof body, "{\"text\":\"%s\"}", text);
        else
            snprintf(body, sizeof body, "{\"text\":\"%s\",\"parent\":%d}", text, i); /* a chain, depth up to 3 */
        REQUIRE(post_json(&a, "/api/v1/links/1/comments", body)->status == 201);
    }
    dh.now_ms += 3600 * 1000; /* "1 hour ago" */
    struct response *r = call(&anon, "GET", "/link/1", NULL, NULL);
    REQUIRE(r->status == 200);
    long per = ((long)r->len - (long)empty - n * (long)strlen(text) - (long)strlen("0 comments")) / n;
    printf("  thread markup per comment (ids of 1-2 digits, visitor): %ld bytes\n", per);
    CHECK(per <= 250);
    teardown();
}

/* The /link/ID page of a visitor who is not logged in comes from a cache
 * (pages.c) that follows every write, the clock of every "N minutes ago" on
 * it (the link's and each comment's), and never serves a logged-in user. */
TEST(link_page_cache_follows_writes_and_the_clock)
{
    setup("link-cache.db", 100);
    struct client a = { 0 }, v = { 0 };
    const char *t = signup(&a, "cacher");
    REQUIRE(t);
    bearer(&a, t);
    REQUIRE(post_json(&a, "/api/v1/links", "{\"title\":\"Cached talk\",\"url\":\"https://talk.example/\"}")->status == 201);
    dh.now_ms += 30 * 60 * 1000;
    REQUIRE(post_json(&a, "/api/v1/links/1/comments", "{\"text\":\"First words\"}")->status == 201);
    struct site_stats st0, st;
    char first[65536];
    struct response *r = call(&v, "GET", "/link/1", NULL, NULL);
    REQUIRE(r->status == 200 && r->len < sizeof first);
    memcpy(first, r->body, r->len + 1);
    site_get_stats(site, &st0);
    r = call(&v, "GET", "/link/1", NULL, NULL);
    site_get_stats(site, &st);
    CHECK_EQ_U(st.page_cache_hits, st0.page_cache_hits + 1);
    CHECK(r->body && !strcmp(r->body, first));
    /* A comment's "just now" turns into "1 minute ago" at its minute. */
    dh.now_ms += 60 * 1000;
    r = call(&v, "GET", "/link/1", NULL, NULL);
    CHECK(body_has(r, "1 minute ago") && body_has(r, "31 minutes ago"));
    /* A write anywhere: rendered again. */
    REQUIRE(post_json(&a, "/api/v1/links/1/comments", "{\"text\":\"Second words\"}")->status == 201);
    CHECK(body_has(call(&v, "GET", "/link/1", NULL, NULL), "Second words"));
    /* Another link in the same slot is not this one's page. */
    for (int i = 2; i <= 17; i++) {
        char body[160];
        snprintf(body, sizeof body, "{\"title\":\"Other %d\",\"url\":\"https://other.example/%d\"}", i, i);
        REQUIRE(post_json(&a, "/api/v1/links", body)->status == 201);
    }
    call(&v, "GET", "/link/1", NULL, NULL);
    r = call(&v, "GET", "/link/17", NULL, NULL);
    CHECK(body_has(r, "Other 17") && !body_has(r, "Cached talk"));
    /* The author, logged in, gets their own page (edit and delete, the form). */
    struct client me = { 0 };
    snprintf(me.session, sizeof me.session, "%s", t);
    r = call(&me, "GET", "/link/1", NULL, NULL);
    CHECK(body_has(r, "/link/1/edit") && body_has(r, "Add a comment"));
    teardown();
}

/* ---- What a review in a real browser asked for (issue 13) ---------------------------- */

/* Follows a redirect like a browser: GET its Location (fragment dropped). */
static struct response *follow(struct client *c, struct response *r)
{
    static char to[512];
    const char *loc = header(r, "Location");
    snprintf(to, sizeof to, "%.*s", loc ? (int)strcspn(loc, "#") : 1, loc ? loc : "/");
    return call(c, "GET", to, NULL, NULL);
}

TEST(one_time_messages_after_actions)
{
    setup("flash.db", 100);
    struct client c = { 0 };
    call(&c, "GET", "/signup", NULL, NULL);
    struct response *r = post_form(&c, "/signup", "username=flasher&password=correct+horse");
    REQUIRE(r->status == 303);
    CHECK_STR(c.flash, "signup");
    r = follow(&c, r);
    CHECK(body_has(r, "class=\"flash\" role=\"status\">Welcome!"));
    CHECK(strstr(r->headers, "lr_flash=;") && strstr(r->headers, "Max-Age=0"));
    CHECK(!c.flash[0]);
    CHECK(!body_has(call(&c, "GET", "/", NULL, NULL), "class=\"flash\"")); /* once */

    char csrf[64], body[400];
    snprintf(csrf, sizeof csrf, "%s", form_csrf(call(&c, "GET", "/submit", NULL, NULL)));
    snprintf(body, sizeof body, "csrf=%s&title=Flash&url=https%%3A%%2F%%2Fflash.example%%2F", csrf);
    r = call(&c, "POST", "/submit", "application/x-www-form-urlencoded", body);
    REQUIRE(r->status == 303);
    CHECK(body_has(follow(&c, r), "Your link is posted."));
    r = call(&c, "POST", "/submit", "application/x-www-form-urlencoded", body);
    CHECK_EQ_I(r->status, 303);
    CHECK_STR(header(r, "Location"), "/link/1");
    CHECK(body_has(follow(&c, r), "That URL was already posted \xe2\x80\x94 here it is."));

    snprintf(body, sizeof body, "csrf=%s", csrf);
    r = call(&c, "POST", "/logout", "application/x-www-form-urlencoded", body);
    REQUIRE(r->status == 303);
    c.session[0] = 0;
    /* The anonymous front page is cached; the message still shows, once,
     * and never goes into the cache. */
    struct client other = { 0 };
    call(&other, "GET", "/", NULL, NULL);
    r = follow(&c, r);
    CHECK(body_has(r, "You are logged out."));
    CHECK(!body_has(call(&c, "GET", "/", NULL, NULL), "You are logged out."));
    CHECK(!body_has(call(&other, "GET", "/", NULL, NULL), "class=\"flash\""));

    call(&c, "GET", "/login", NULL, NULL);
    r = post_form(&c, "/login", "username=flasher&password=correct+horse");
    REQUIRE(r->status == 303);
    CHECK(body_has(follow(&c, r), "You are logged in."));
    /* A cookie naming no message shows nothing (and is never echoed). */
    snprintf(c.flash, sizeof c.flash, "%%3Cb%%3E");
    CHECK(!body_has(call(&c, "GET", "/", NULL, NULL), "class=\"flash\""));
    teardown();
}

TEST(rows_have_ids_and_lists_end_politely)
{
    setup("rows.db", 100);
    struct client c = { 0 };
    const char *t = signup(&c, "rower");
    REQUIRE(t);
    bearer(&c, t);
    REQUIRE(post_json(&c, "/api/v1/links", "{\"title\":\"Row\",\"url\":\"https://row.example/\"}")->status == 201);
    struct client v = { 0 };
    struct response *r = call(&v, "GET", "/new", NULL, NULL);
    CHECK(body_has(r, "<li id=\"l1\">"));
    CHECK(body_has(r, "href=\"/login?next=/new\" aria-label=\"log in to like\""));
    r = call(&v, "GET", "/?p=999", NULL, NULL);
    CHECK_EQ_I(r->status, 200);
    CHECK(body_has(r, "No more links") && body_has(r, "href=\"/\">Back to its first page"));
    CHECK(!body_has(r, "Nothing here yet"));
    r = call(&v, "GET", "/top?p=3", NULL, NULL);
    CHECK(body_has(r, "href=\"/top\">Back to its first page"));
    teardown();
}

TEST(pages_are_accessible)
{
    setup("a11y.db", 100);
    struct client c = { 0 };
    call(&c, "GET", "/signup", NULL, NULL);
    /* An error: a sentence, tied to the field it is about. */
    struct response *r = post_form(&c, "/signup", "username=ab&password=correct+horse");
    CHECK_EQ_I(r->status, 400);
    CHECK(body_has(r, "id=\"form-err\">A username is 3 to 20 characters.</p>"));
    CHECK(body_has(r, "id=\"username\" name=\"username\" required autocomplete=\"username\" maxlength=\"20\" minlength=\"3\" "
                      "pattern=\"[A-Za-z0-9_\\-]+\" aria-invalid=\"true\" aria-describedby=\"form-err\""));
    CHECK(!body_has(r, "autocomplete=\"new-password\" aria-invalid"));
    r = post_form(&c, "/signup", "username=abc&password=short");
    CHECK(body_has(r, ">A password is at least 8 bytes.<") &&
          body_has(r, "autocomplete=\"new-password\" aria-invalid=\"true\" aria-describedby=\"form-err\""));
    CHECK(body_has(r, "<a class=\"skip\" href=\"#main\">") && body_has(r, "<main id=\"main\">"));
    /* A wrong password could be either field's fault: both are described. */
    REQUIRE(post_form(&c, "/signup", "username=abc&password=correct+horse")->status == 303);
    char csrf[64], body[400];
    snprintf(csrf, sizeof csrf, "%s", form_csrf(call(&c, "GET", "/", NULL, NULL)));
    snprintf(body, sizeof body, "csrf=%s&title=T&url=ftp%%3A%%2F%%2Fx.example%%2F", csrf);
    r = call(&c, "POST", "/submit", "application/x-www-form-urlencoded", body);
    CHECK_EQ_I(r->status, 400);
    CHECK(body_has(r, "name=\"url\" type=\"url\" maxlength=\"2048\" aria-invalid=\"true\""));
    CHECK(!body_has(r, "name=\"title\" required maxlength=\"200\" aria-invalid"));
    /* Logged in: no login or sign-up form, just who you are. */
    r = call(&c, "GET", "/login", NULL, NULL);
    CHECK(r->status == 200 && !body_has(r, "name=\"password\"") && body_has(r, "You are logged in as"));
    CHECK(!body_has(call(&c, "GET", "/signup", NULL, NULL), "name=\"password\""));
    snprintf(body, sizeof body, "csrf=%s", csrf);
    REQUIRE(call(&c, "POST", "/logout", "application/x-www-form-urlencoded", body)->status == 303);
    c.session[0] = 0;
    call(&c, "GET", "/login", NULL, NULL);
    r = post_form(&c, "/login", "username=abc&password=wrong+horse");
    CHECK(body_has(r, "autocomplete=\"username\" maxlength=\"20\" aria-describedby=\"form-err\""));
    CHECK(body_has(r, "autocomplete=\"current-password\" aria-describedby=\"form-err\""));
    teardown();
}

TEST(link_page_heading_footer_and_trailing_slashes)
{
    setup("heading.db", 100);
    struct client c = { 0 };
    const char *t = signup(&c, "header");
    REQUIRE(t);
    bearer(&c, t);
    REQUIRE(post_json(&c, "/api/v1/links", "{\"title\":\"A <title>\",\"url\":\"https://h.example/\"}")->status == 201);
    struct client v = { 0 };
    struct response *r = call(&v, "GET", "/link/1", NULL, NULL);
    CHECK(body_has(r, "<article id=\"l1\">") &&
          body_has(r, "<h1 class=\"t\"><a href=\"https://h.example/\" rel=\"nofollow ugc noopener\">A &lt;title&gt;</a></h1>"));
    /* Who served a page is operator detail: only on /status. */
    CHECK(!body_has(r, "served by") && body_has(r, "<footer><a href=\"/status\">cluster status</a>"));
    CHECK(body_has(r, "<a href=\"/login?next=/link/1\">log in</a>")); /* and back here after */
    CHECK(body_has(call(&v, "GET", "/status", NULL, NULL), "This page was served by <strong>node 7</strong>"));
    r = call(&v, "GET", "/new/", NULL, NULL);
    CHECK_EQ_I(r->status, 301);
    CHECK_STR(header(r, "Location"), "/new");
    r = call(&v, "GET", "/user/header//?p=2", NULL, NULL);
    CHECK_EQ_I(r->status, 301);
    CHECK_STR(header(r, "Location"), "/user/header?p=2");
    CHECK_EQ_I(call(&v, "POST", "/new/", "application/x-www-form-urlencoded", "")->status, 404);
    CHECK_EQ_I(call(&v, "GET", "//evil.example/", NULL, NULL)->status, 404); /* never a redirect to "//..." */
    teardown();
}

TEST(status_page_shows_the_leaders_view)
{
    setup("status.db", 100);
    struct client v = { 0 };
    struct response *r = call(&v, "GET", "/status", NULL, NULL);
    REQUIRE(r->status == 200);
    /* The test host: node 7 leads; node 8 is unreachable; node 9 matches at 5. */
    CHECK(body_has(r, "<div class=\"scroll\" tabindex=\"0\" role=\"region\" aria-label=\"members\"><table>"));
    CHECK(body_has(r, "<tr><td>8</td><td>unreachable</td>"));
    CHECK(body_has(r, "<tr><td>9</td><td>follower</td><td>5</td>"));
    CHECK(!body_has(r, "Only the leader knows"));
    teardown();
}

TEST(international_domains_are_shown_in_unicode)
{
    setup("idn.db", 100);
    struct client c = { 0 };
    const char *t = signup(&c, "idn_user");
    REQUIRE(t);
    bearer(&c, t);
    struct response *r = post_json(&c, "/api/v1/links", "{\"title\":\"Books\",\"url\":\"https://B\xc3\xbc" "cher.example/\"}");
    REQUIRE(r->status == 201);
    CHECK_STR(json_str(r, "url"), "https://xn--bcher-kva.example/");
    CHECK_EQ_I(post_json(&c, "/api/v1/links", "{\"title\":\"Again\",\"url\":\"http://xn--bcher-kva.example\"}")->status, 409);
    r = call(&c, "GET", "/new", NULL, NULL);
    CHECK(body_has(r, "(b\xc3\xbc" "cher.example)") && body_has(r, "href=\"https://xn--bcher-kva.example/\""));
    teardown();
}

/* Inflates a gzip body (zlib), for comparing with the plain one. */
static char *gunzip(const char *in, size_t len, size_t *out_len)
{
    size_t cap = 1 << 20;
    char *out = malloc(cap);
    z_stream z;
    memset(&z, 0, sizeof z);
    if (!out || inflateInit2(&z, 15 + 16) != Z_OK) {
        free(out);
        return NULL;
    }
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    int rc = inflate(&z, Z_FINISH);
    *out_len = cap - z.avail_out;
    inflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

/* GET path as a visitor who accepts `ae`; *plain gets the body inflated. */
static bool gz_same(const char *path, const char *ae, bool *compressed)
{
    struct client v = { 0 };
    struct response *r = call(&v, "GET", path, NULL, NULL);
    size_t plain_len = r->len;
    char *plain = malloc(plain_len + 1);
    memcpy(plain, r->body, plain_len);
    snprintf(v.extra, sizeof v.extra, "Accept-Encoding: %s\n", ae);
    r = call(&v, "GET", path, NULL, NULL);
    const char *vary = header(r, "Vary");
    /* A page a shared cache may keep also varies on who asks (Cookie, Authorization). */
    bool ok = vary && (!strcmp(vary, "Accept-Encoding") || !strcmp(vary, "Accept-Encoding, Cookie, Authorization"));
    const char *ce = header(r, "Content-Encoding");
    *compressed = ce && !strcmp(ce, "gzip");
    size_t n = r->len;
    char *body = *compressed ? gunzip(r->body, r->len, &n) : NULL;
    const char *cmp = *compressed ? body : r->body;
    /* Everything but the CSRF token (a new visitor each time) is the same. */
    ok = ok && cmp && n == plain_len && (*compressed ? r->len < plain_len / 2 : true);
    size_t diff = 0;
    for (size_t i = 0; ok && i < n; i++)
        diff += cmp[i] != plain[i];
    free(body);
    free(plain);
    return ok && diff <= 64;
}

/* Shared caches in front (docs/nginx-cache.conf): a visitor without a
 * session gets pages and JSON listings a shared cache may keep a few
 * seconds, with validators, setting no cookie; If-None-Match answers 304.
 * A page with a form's CSRF token, a session's pages and per-node pages are
 * private, no-store. */
TEST(anonymous_answers_are_shareable_and_validated)
{
    setup("shared.db", 100);
    struct client w = { 0 };
    const char *t = signup(&w, "sharer");
    REQUIRE(t);
    bearer(&w, t);
    REQUIRE(post_json(&w, "/api/v1/links", "{\"title\":\"Cached\",\"url\":\"https://c.example/1\"}")->status == 201);
    const char *paths[] = { "/", "/new", "/link/1", "/user/sharer", "/api/v1/links", "/api/v1/links/1",
                            "/api/v1/links/1/comments", "/api/v1/search?q=cached" };
    char etag[64];
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        struct client v = { 0 };
        struct response *r = call(&v, "GET", paths[i], NULL, NULL);
        CHECK_EQ_I(r->status, 200);
        CHECK_STR(header(r, "Cache-Control"), "public, max-age=0, s-maxage=5");
        CHECK(!header(r, "Set-Cookie"));
        CHECK(header(r, "Last-Modified") && strstr(header(r, "Last-Modified"), " GMT"));
        CHECK(header(r, "Vary") && strstr(header(r, "Vary"), "Cookie, Authorization"));
        REQUIRE(header(r, "ETag") && !strncmp(header(r, "ETag"), "W/\"", 3));
        snprintf(etag, sizeof etag, "%s", header(r, "ETag"));
        /* The same bytes again: 304 without a body, to a list of tags too. */
        snprintf(v.extra, sizeof v.extra, "If-None-Match: \"other\", %s\n", etag);
        r = call(&v, "GET", paths[i], NULL, NULL);
        CHECK_EQ_I(r->status, 304);
        CHECK(r->len == 0 && header(r, "ETag") && !strcmp(header(r, "ETag"), etag));
        CHECK(header(r, "Cache-Control") && strstr(header(r, "Cache-Control"), "s-maxage=5"));
        snprintf(v.extra, sizeof v.extra, "If-None-Match: W/\"0123\"\n");
        CHECK_EQ_I(call(&v, "GET", paths[i], NULL, NULL)->status, 200);
    }
    /* A change gives the front page a new validator: the old one gets 200. */
    struct client v = { 0 };
    snprintf(etag, sizeof etag, "%s", header(call(&v, "GET", "/new", NULL, NULL), "ETag"));
    REQUIRE(post_json(&w, "/api/v1/links", "{\"title\":\"Newer\",\"url\":\"https://c.example/2\"}")->status == 201);
    snprintf(v.extra, sizeof v.extra, "If-None-Match: %s\n", etag);
    struct response *r = call(&v, "GET", "/new", NULL, NULL);
    CHECK(r->status == 200 && body_has(r, "Newer") && strcmp(header(r, "ETag"), etag));
    /* Forms carry a CSRF token: the visitor's own, with its cookie. */
    struct client f = { 0 };
    r = call(&f, "GET", "/login", NULL, NULL);
    CHECK(r->status == 200 && strstr(r->headers, "Set-Cookie: lr_csrf="));
    CHECK_STR(header(r, "Cache-Control"), "private, no-store");
    CHECK(!header(r, "ETag"));
    /* A session's pages and answers are its own. */
    struct client u = { 0 };
    REQUIRE(signup(&u, "private"));
    r = call(&u, "GET", "/", NULL, NULL);
    CHECK(r->status == 200 && body_has(r, "private"));
    CHECK_STR(header(r, "Cache-Control"), "private, no-store");
    CHECK(!header(r, "ETag") && !header(r, "Last-Modified"));
    r = call(&w, "GET", "/api/v1/links", NULL, NULL);
    CHECK_STR(header(r, "Cache-Control"), "private, no-store");
    /* Per-node and per-visitor answers: /status, the API's /me, errors. */
    struct client a = { 0 };
    CHECK_STR(header(call(&a, "GET", "/status", NULL, NULL), "Cache-Control"), "private, no-store");
    CHECK_STR(header(call(&a, "GET", "/link/999", NULL, NULL), "Cache-Control"), "private, no-store");
    CHECK_STR(header(call(&a, "GET", "/api/v1/me", NULL, NULL), "Cache-Control"), "private, no-store");
    teardown();
}

TEST(pages_are_sent_gzip_compressed_when_accepted)
{
    setup("gzip.db", 100);
    struct client c = { 0 };
    const char *t = signup(&c, "gzipper");
    REQUIRE(t);
    bearer(&c, t);
    for (int i = 0; i < 20; i++) {
        char body[200];
        snprintf(body, sizeof body, "{\"title\":\"Compressible title number %d\",\"url\":\"https://z.example/%d\"}", i, i);
        REQUIRE(post_json(&c, "/api/v1/links", body)->status == 201);
    }
    bool z;
    /* The front page twice: the second from the cache, compressed once when cached. */
    CHECK(gz_same("/", "gzip, deflate, br", &z) && z);
    struct site_stats st0, st;
    site_get_stats(site, &st0);
    CHECK(gz_same("/", "br;q=1.0, gzip;q=0.8", &z) && z);
    site_get_stats(site, &st);
    CHECK(st.page_cache_hits >= st0.page_cache_hits + 2);
    CHECK(gz_same("/new?p=1", "GZIP", &z) && z);
    CHECK(gz_same("/static/site.v3.css", "*", &z) && z);
    CHECK(gz_same("/", "gzip;q=0", &z) && !z);
    CHECK(gz_same("/", "identity", &z) && !z);
    CHECK(gz_same("/", "x-gzip ; q=0.5", &z) && z);
    /* The JSON API is not compressed. */
    struct client a = { 0 };
    snprintf(a.extra, sizeof a.extra, "Accept-Encoding: gzip\n");
    struct response *r = call(&a, "GET", "/api/v1/links", NULL, NULL);
    CHECK(r->status == 200 && !header(r, "Content-Encoding") && r->body && r->body[0] == '{');
    /* A tiny response is not worth it. */
    r = call(&a, "GET", "/favicon.svg", NULL, NULL);
    CHECK(r->status == 200 && !header(r, "Content-Encoding") && header(r, "Vary"));
    teardown();
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/linkraft-site-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    uv_loop_init(&loop);
    RUN(signup_login_me_logout);
    RUN(signup_limits_and_bad_bodies);
    RUN(login_is_throttled_per_account);
    RUN(login_and_signup_are_throttled_per_address);
    RUN(failed_login_counters_cannot_be_evicted_by_other_names);
    RUN(a_guesser_cannot_lock_the_owner_out);
    RUN(ipv6_clients_are_throttled_by_their_64);
    RUN(https_gives_secure_cookies_and_hsts);
    RUN(sessions_expire_after_30_days_by_the_readers_clock);
    RUN(links_post_get_list_duplicates);
    RUN(links_list_sorts_and_limits);
    RUN(likes_are_one_per_user_and_idempotent);
    RUN(idempotency_key_returns_the_first_result);
    RUN(new_rows_answer_as_stored);
    RUN(consistency_headers_and_host_failures);
    RUN(cookie_writes_need_json_and_our_origin);
    RUN(pages_forms_and_escaping);
    RUN(front_page_size_pagination_css_and_errors);
    RUN(front_page_cache_follows_writes_and_the_clock);
    RUN(hostile_requests_always_get_one_answer);
    RUN(passwords_are_hashed_with_owasp_argon2id);
    RUN(comments_api_rows);
    RUN(comment_writes_are_exactly_once);
    RUN(comment_pages_without_javascript);
    RUN(text_posts_edit_and_delete_links);
    RUN(text_post_and_link_edit_pages);
    RUN(users_profiles_about_and_password);
    RUN(settings_page);
    RUN(thread_markup_per_comment_is_small);
    RUN(link_page_cache_follows_writes_and_the_clock);
    RUN(one_time_messages_after_actions);
    RUN(rows_have_ids_and_lists_end_politely);
    RUN(pages_are_accessible);
    RUN(link_page_heading_footer_and_trailing_slashes);
    RUN(status_page_shows_the_leaders_view);
    RUN(international_domains_are_shown_in_unicode);
    RUN(pages_are_sent_gzip_compressed_when_accepted);
    RUN(anonymous_answers_are_shareable_and_validated);
    uv_loop_close(&loop);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return HARNESS_END();
}
