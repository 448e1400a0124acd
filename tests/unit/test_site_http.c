/*
 * test_site_http.c — the site on the real HTTP server (site_handle behind
 * http_server_start on 127.0.0.1, ports 22100-22199), reached with the real
 * HTTP client on the same loop: a whole visit over the wire (sign-up,
 * post, pages with cookies, HEAD), the server's limits in front of the
 * site, and many logins at once sharing the two password-hashing slots.
 * The host is the direct single-node host of tests/lib/direct_host.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "../harness.h"
#include "../lib/direct_host.h"
#include "http.h"
#include "http_client.h"
#include "site.h"
#include "store.h"

static uv_loop_t loop;
static struct direct_host dh;
static struct site *site;
static struct http_server *server;
static struct http_client *client;
static char addr[64];
static char dir[64];

static void handler(void *ctx, struct http_exchange *x)
{
    if (!site_handle(ctx, x))
        http_respond(x, 404, "Content-Type: text/plain\r\n", "not the site\n", 13);
}

struct answer {
    int done, err, status;
    char headers[4096];
    char *body;
    size_t len;
};

static void on_answer(void *arg, int err, const struct http_client_response *resp)
{
    struct answer *a = arg;
    a->done = 1;
    a->err = err;
    if (err)
        return;
    a->status = resp->status;
    size_t off = 0;
    for (size_t i = 0; i < resp->n_headers && off < sizeof a->headers - 1; i++)
        off += (size_t)snprintf(a->headers + off, sizeof a->headers - off, "%.*s: %.*s\r\n",
                                (int)resp->headers[i].name_len, resp->headers[i].name,
                                (int)resp->headers[i].value_len, resp->headers[i].value);
    a->body = malloc(resp->body_len + 1);
    memcpy(a->body, resp->body, resp->body_len);
    a->body[resp->body_len] = 0;
    a->len = resp->body_len;
}

/* Runs the loop until every answer in as[0..n) is in (10 s deadline). */
static int wait_all(struct answer *as, int n)
{
    time_t deadline = time(NULL) + 10;
    for (;;) {
        int done = 0;
        for (int i = 0; i < n; i++)
            done += as[i].done;
        if (done == n)
            return 1;
        if (time(NULL) > deadline)
            return 0;
        uv_run(&loop, UV_RUN_ONCE);
    }
}

static int start_call(struct answer *a, const char *method, const char *target, const char *headers, const char *body,
                size_t body_len)
{
    memset(a, 0, sizeof *a);
    return http_client_request(client, addr, method, target, headers, body, body_len, 10000, on_answer, a);
}

static struct answer *call(const char *method, const char *target, const char *headers, const char *body)
{
    static struct answer a;
    free(a.body);
    if (start_call(&a, method, target, headers, body, body ? strlen(body) : 0) || !wait_all(&a, 1))
        a.status = -1;
    return &a;
}

static const char *header(const struct answer *a, const char *name)
{
    static char v[512];
    const char *p = a->headers;
    size_t n = strlen(name);
    while (p && *p) {
        if (!strncasecmp(p, name, n) && p[n] == ':') {
            const char *e = strstr(p, "\r\n");
            snprintf(v, sizeof v, "%.*s", (int)(e - p - n - 2), p + n + 2);
            return v;
        }
        p = strstr(p, "\r\n");
        if (p)
            p += 2;
    }
    return NULL;
}

TEST(a_visit_over_the_wire)
{
    struct answer *a = call("POST", "/api/v1/signup", "Content-Type: application/json\r\n",
                            "{\"username\":\"wire\",\"password\":\"correct horse\"}");
    REQUIRE(a->status == 201);
    CHECK_STR(header(a, "X-Served-By"), "3");
    const char *sc = header(a, "Set-Cookie");
    REQUIRE(sc);
    char cookie[200];
    /* The last Set-Cookie named here is the session (lr_idx comes first). */
    const char *s = strstr(a->headers, "lr_session=");
    REQUIRE(s);
    snprintf(cookie, sizeof cookie, "Cookie: %.*s\r\n", (int)(strchr(s, ';') - s), s);

    char headers[400];
    snprintf(headers, sizeof headers, "%sContent-Type: application/json\r\nOrigin: http://%s\r\n", cookie, addr);
    a = call("POST", "/api/v1/links", headers, "{\"title\":\"Over the wire\",\"url\":\"http://wire.example/\"}");
    CHECK_EQ_I(a->status, 201);
    CHECK(a->body && strstr(a->body, "\"author\":\"wire\""));

    a = call("GET", "/", cookie, NULL);
    CHECK_EQ_I(a->status, 200);
    CHECK(a->body && strstr(a->body, "Over the wire") && strstr(a->body, "href=\"/user/wire\""));
    CHECK(header(a, "Content-Security-Policy") != NULL);
    size_t page_len = a->len;
    a = call("HEAD", "/", cookie, NULL);
    if (a->status != 200)
        fprintf(stderr, "  HEAD: status %d, error %s\n", a->status, http_client_strerror(a->err));
    CHECK_EQ_I(a->status, 200);
    CHECK_EQ_U(a->len, 0);
    CHECK(header(a, "Content-Length") && (size_t)atol(header(a, "Content-Length")) == page_len);

    a = call("GET", "/static/site.v2.css", NULL, NULL);
    CHECK(a->status == 200 && strstr(header(a, "Cache-Control"), "immutable"));
    a = call("GET", "/api/v1/links/1", NULL, NULL);
    CHECK(a->status == 200 && strstr(a->body, "\"id\":1"));
    a = call("GET", "/api/v1/cluster-ish", NULL, NULL);
    CHECK_EQ_I(a->status, 404);
    CHECK(strstr(header(a, "Content-Type"), "application/json"));
    a = call("GET", "/nowhere", NULL, NULL);
    CHECK_EQ_I(a->status, 404);
    CHECK(strstr(header(a, "Content-Type"), "text/html"));
}

/* A cached page (an anonymous visitor's /link/ID) is lent to the HTTP
 * server, not copied (http_respond_lent): many at once, plain and gzip,
 * and HEAD; the cache lets go of the bytes only when the last response is
 * done with them (ASan checks). */
TEST(cached_pages_are_lent_to_the_server)
{
    struct answer *a = call("POST", "/api/v1/signup", "Content-Type: application/json\r\n",
                            "{\"username\":\"lender\",\"password\":\"correct horse\"}");
    REQUIRE(a->status == 201);
    const char *s = strstr(a->headers, "lr_session=");
    REQUIRE(s);
    char headers[400];
    snprintf(headers, sizeof headers, "Cookie: %.*s\r\nContent-Type: application/json\r\nOrigin: http://%s\r\n",
             (int)(strchr(s, ';') - s), s, addr);
    a = call("POST", "/api/v1/links", headers, "{\"title\":\"Lent\",\"url\":\"http://lent.example/\"}");
    REQUIRE(a->status == 201);
    char path[64];
    snprintf(path, sizeof path, "/link/%s", strstr(a->body, "\"id\":") + 5);
    *strchr(path, ',') = 0;
    for (int i = 0; i < 30; i++) {
        char body[200];
        snprintf(body, sizeof body, "{\"text\":\"Comment number %d, long enough to make the page compress well\"}", i);
        char cpath[128];
        snprintf(cpath, sizeof cpath, "/api/v1/links/%s/comments", path + 6);
        REQUIRE(call("POST", cpath, headers, body)->status == 201);
    }
    a = call("GET", path, NULL, NULL); /* renders and caches */
    REQUIRE(a->status == 200);
    char *first = a->body;
    size_t first_len = a->len;
    a->body = NULL;
    struct site_stats st0, st;
    site_get_stats(site, &st0);
    static struct answer many[24];
    for (int i = 0; i < 24; i++)
        REQUIRE(start_call(&many[i], i % 3 == 2 ? "HEAD" : "GET", path,
                           i % 3 == 1 ? "Accept-Encoding: gzip\r\n" : NULL, NULL, 0) == 0);
    REQUIRE(wait_all(many, 24));
    site_get_stats(site, &st);
    CHECK(st.page_cache_hits >= st0.page_cache_hits + 24);
    for (int i = 0; i < 24; i++) {
        CHECK_EQ_I(many[i].status, 200);
        if (i % 3 == 0)
            CHECK(many[i].len == first_len && !memcmp(many[i].body, first, first_len));
        if (i % 3 == 1)
            CHECK(header(&many[i], "Content-Encoding") && many[i].len > 18 && many[i].len < first_len / 2 &&
                  (unsigned char)many[i].body[0] == 0x1f);
        if (i % 3 == 2)
            CHECK(many[i].len == 0 && (size_t)atol(header(&many[i], "Content-Length")) == first_len);
        free(many[i].body);
    }
    free(first);
}

TEST(server_limits_stand_in_front_of_the_site)
{
    static char big[70 * 1024];
    memset(big, ' ', sizeof big - 1);
    big[0] = '{';
    big[sizeof big - 2] = '}';
    struct answer *a = call("POST", "/api/v1/signup", "Content-Type: application/json\r\n", big);
    CHECK(a->status == 413 || a->err == HTTPC_ERESET);
    static char h[9 * 1024 + 64];
    snprintf(h, sizeof h, "X-Big: %09000d\r\n", 0);
    a = call("GET", "/", h, NULL);
    CHECK(a->status == 431 || a->err == HTTPC_ERESET);
    /* The site still serves afterwards. */
    CHECK_EQ_I(call("GET", "/new", NULL, NULL)->status, 200);
}

TEST(many_logins_at_once_share_the_hashing_slots)
{
    enum { N = 8 };
    static struct answer as[N];
    struct site_stats before, after;
    site_get_stats(site, &before);
    const char *body = "{\"username\":\"wire\",\"password\":\"correct horse\"}";
    for (int i = 0; i < N; i++)
        REQUIRE(start_call(&as[i], "POST", "/api/v1/login", "Content-Type: application/json\r\n", body,
                           strlen(body)) == 0);
    REQUIRE(wait_all(as, N));
    int ok = 0;
    for (int i = 0; i < N; i++) {
        if (as[i].status != 200)
            fprintf(stderr, "  login %d: status %d, error %d, %s\n", i, as[i].status, as[i].err,
                    as[i].body ? as[i].body : "");
        ok += as[i].status == 200;
        free(as[i].body);
    }
    CHECK_EQ_I(ok, N);
    site_get_stats(site, &after);
    CHECK_EQ_U(after.pwhash_jobs - before.pwhash_jobs, N);
    CHECK_EQ_U(after.in_flight, 0);
}

static void stopped(void *arg) { *(int *)arg = 1; }

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/linkraft-site-http-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    uv_loop_init(&loop);
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/site.db", dir);
    dh.now_ms = 1764547200000ull;
    dh.id = 3;
    if (store_open(path, &dh.store, err, sizeof err)) {
        fprintf(stderr, "store_open: %s\n", err);
        return 1;
    }
    struct site_host h;
    direct_host_init(&dh, &h);
    struct site_options o;
    site_options_default(&o);
    o.loop = &loop;
    o.pwhash_opslimit = 1;
    o.pwhash_memlimit = 8192;
    o.rate_limits_off = true; /* these tests post far faster than a person */
    if (site_create(&h, &o, &site, err, sizeof err)) {
        fprintf(stderr, "site_create: %s\n", err);
        return 1;
    }
    struct http_options ho;
    http_options_default(&ho);
    int started = 0;
    for (int port = 22100 + (int)(getpid() % 50); port < 22200 && !started; port++) {
        snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
        started = http_server_start(&loop, addr, &ho, handler, site, &server, err, sizeof err) == 0;
    }
    if (!started || http_client_create(&loop, NULL, &client)) {
        fprintf(stderr, "cannot start the server on 127.0.0.1:22100-22199: %s\n", err);
        return 1;
    }
    RUN(a_visit_over_the_wire);
    RUN(cached_pages_are_lent_to_the_server);
    RUN(server_limits_stand_in_front_of_the_site);
    RUN(many_logins_at_once_share_the_hashing_slots);
    http_client_destroy(client);
    int done = 0;
    http_server_stop(server, stopped, &done);
    while (!done)
        uv_run(&loop, UV_RUN_ONCE);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    site_destroy(site);
    store_close(dh.store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return HARNESS_END();
}
