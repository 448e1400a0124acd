/*
 * test_http_client.c — the async HTTP client (include/http_client.h)
 * against the real HTTP server (src/http) and a raw TCP listener, all on
 * one libuv loop on 127.0.0.1:230xx. Each test runs the loop until its
 * callbacks have fired or a deadline (uv timer) passes.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "../harness.h"
#include "common/buf.h"
#include "http.h"
#include "http_client.h"

static uv_loop_t *loop;
static struct http_exchange *slow[8]; /* held unanswered until the server stops */
static unsigned n_slow;
static unsigned requests_seen;
static uint64_t peers_seen[64];
static unsigned n_peers_seen;

static void handler(void *ctx, struct http_exchange *x)
{
    const struct http_request *r = http_exchange_request(x);
    requests_seen++;
    /* Remember distinct client ports: one per connection used. */
    const char *colon = strrchr(r->peer, ':');
    uint64_t port = colon ? strtoull(colon + 1, NULL, 10) : 0;
    bool known = false;
    for (unsigned i = 0; i < n_peers_seen; i++)
        known |= peers_seen[i] == port;
    if (!known && n_peers_seen < 64)
        peers_seen[n_peers_seen++] = port;
    if (!strcmp(r->path, "/slow") && n_slow < 8) {
        slow[n_slow++] = x; /* not answered in time: the client's deadline must fire */
        return;
    }
    if (!strcmp(r->path, "/big")) {
        size_t n = 2u << 20;
        char *body = malloc(n);
        memset(body, 'b', n);
        http_respond_take(x, 200, NULL, body, n);
        return;
    }
    char hdrs[256], body[256];
    size_t len = 0;
    const char *v = http_header_get(r, "X-Echo", &len);
    snprintf(hdrs, sizeof hdrs, "X-Method: %s\r\nX-Echo: %.*s\r\nConnection: keep-alive\r\n", r->method,
             (int)len, v ? v : "");
    snprintf(body, sizeof body, "%s?%s|%.*s", r->path, r->query, (int)r->body_len, r->body);
    http_respond(x, 200, hdrs, body, strlen(body));
}

struct result {
    bool done;
    int err;
    int status;
    char body[256];
    size_t body_len;
    char echo[64];
};

static void on_answer(void *arg, int err, const struct http_client_response *resp)
{
    struct result *r = arg;
    r->done = true;
    r->err = err;
    if (!resp)
        return;
    r->status = resp->status;
    r->body_len = resp->body_len;
    snprintf(r->body, sizeof r->body, "%.*s", (int)resp->body_len, resp->body);
    for (size_t i = 0; i < resp->n_headers; i++)
        if (!strcmp(resp->headers[i].name, "X-Echo"))
            snprintf(r->echo, sizeof r->echo, "%s", resp->headers[i].value);
}

static bool deadline_hit;
static void on_deadline(uv_timer_t *t)
{
    (void)t;
    deadline_hit = true;
}

/* Runs the loop until every result is done or 5 s pass. */
static bool run_until(struct result *rs, size_t n)
{
    uv_timer_t t;
    uv_timer_init(loop, &t);
    deadline_hit = false;
    uv_timer_start(&t, on_deadline, 5000, 0);
    for (;;) {
        bool all = true;
        for (size_t i = 0; i < n; i++)
            all &= rs[i].done;
        if (all || deadline_hit)
            break;
        uv_run(loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return !deadline_hit;
}

static struct http_server *srv;
static char srv_addr[64];

static void start_server(int port)
{
    char err[256];
    snprintf(srv_addr, sizeof srv_addr, "127.0.0.1:%d", port);
    struct http_options o;
    http_options_default(&o);
    o.idle_timeout_ms = 300; /* closes pooled connections quickly: exercises the retry */
    if (http_server_start(loop, srv_addr, &o, handler, NULL, &srv, err, sizeof err)) {
        fprintf(stderr, "cannot start the server: %s\n", err);
        exit(1);
    }
    requests_seen = 0;
    n_peers_seen = 0;
}

static bool stopped;
static void on_stopped(void *arg)
{
    (void)arg;
    stopped = true;
}

static void stop_server(void)
{
    stopped = false;
    for (unsigned i = 0; i < n_slow; i++)
        http_respond(slow[i], 200, NULL, "late", 4); /* discarded: nobody waits any more */
    n_slow = 0;
    http_server_stop(srv, on_stopped, NULL);
    while (!stopped)
        uv_run(loop, UV_RUN_ONCE);
}

TEST(request_and_keepalive_reuse)
{
    start_server(23001);
    struct http_client *c;
    REQUIRE(http_client_create(loop, NULL, &c) == HTTPC_OK);
    struct result r[3];
    memset(r, 0, sizeof r);
    CHECK_EQ_I(http_client_request(c, srv_addr, "POST", "/p?q=1", "X-Echo: hi\r\n", "body", 4, 2000, on_answer, &r[0]), 0);
    CHECK(!r[0].done); /* never called back from inside the call */
    REQUIRE(run_until(r, 1));
    CHECK_EQ_I(r[0].err, HTTPC_OK);
    CHECK_EQ_I(r[0].status, 200);
    CHECK_STR(r[0].body, "/p?q=1|body");
    CHECK_STR(r[0].echo, "hi");
    /* Two more, one after the other: the pooled connection is reused. */
    http_client_request(c, srv_addr, "GET", "/a", NULL, NULL, 0, 2000, on_answer, &r[1]);
    REQUIRE(run_until(&r[1], 1));
    http_client_request(c, srv_addr, "GET", "/b", NULL, NULL, 0, 2000, on_answer, &r[2]);
    REQUIRE(run_until(&r[2], 1));
    CHECK_STR(r[2].body, "/b?|");
    CHECK_EQ_U(requests_seen, 3);
    CHECK_EQ_U(n_peers_seen, 1);
    http_client_destroy(c);
    stop_server();
}

TEST(pooled_connection_closed_by_server_is_retried)
{
    start_server(23002);
    struct http_client *c;
    REQUIRE(http_client_create(loop, NULL, &c) == HTTPC_OK);
    struct result r[2];
    memset(r, 0, sizeof r);
    http_client_request(c, srv_addr, "GET", "/one", NULL, NULL, 0, 2000, on_answer, &r[0]);
    REQUIRE(run_until(r, 1));
    /* Wait past the server's idle timeout: it closes the pooled connection. */
    uv_timer_t t;
    uv_timer_init(loop, &t);
    deadline_hit = false;
    uv_timer_start(&t, on_deadline, 600, 0);
    while (!deadline_hit)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    http_client_request(c, srv_addr, "GET", "/two", NULL, NULL, 0, 2000, on_answer, &r[1]);
    REQUIRE(run_until(&r[1], 1));
    CHECK_EQ_I(r[1].err, HTTPC_OK);
    CHECK_STR(r[1].body, "/two?|");
    http_client_destroy(c);
    stop_server();
}

TEST(errors_refused_timeout_too_big_bad_address)
{
    start_server(23003);
    struct http_client_options o;
    http_client_options_default(&o);
    o.max_response_bytes = 1u << 20;
    struct http_client *c;
    REQUIRE(http_client_create(loop, &o, &c) == HTTPC_OK);
    struct result r[3];
    memset(r, 0, sizeof r);
    http_client_request(c, "127.0.0.1:23099", "GET", "/", NULL, NULL, 0, 2000, on_answer, &r[0]); /* nobody */
    http_client_request(c, srv_addr, "GET", "/slow", NULL, NULL, 0, 200, on_answer, &r[1]);
    http_client_request(c, srv_addr, "GET", "/big", NULL, NULL, 0, 2000, on_answer, &r[2]);
    REQUIRE(run_until(r, 3));
    CHECK_EQ_I(r[0].err, HTTPC_ECONNECT);
    CHECK_EQ_I(r[1].err, HTTPC_ETIMEOUT);
    CHECK_EQ_I(r[2].err, HTTPC_EPROTO);
    CHECK_EQ_I(http_client_request(c, "no-port", "GET", "/", NULL, NULL, 0, 100, on_answer, &r[0]), HTTPC_ECONNECT);
    http_client_destroy(c);
    stop_server();
}

TEST(destroy_fails_requests_in_flight)
{
    start_server(23004);
    struct http_client *c;
    REQUIRE(http_client_create(loop, NULL, &c) == HTTPC_OK);
    struct result r;
    memset(&r, 0, sizeof r);
    http_client_request(c, srv_addr, "GET", "/slow", NULL, NULL, 0, 5000, on_answer, &r);
    for (int i = 0; i < 20 && requests_seen == 0; i++)
        uv_run(loop, UV_RUN_ONCE);
    http_client_destroy(c);
    CHECK(r.done);
    CHECK_EQ_I(r.err, HTTPC_ECLOSED);
    uv_run(loop, UV_RUN_NOWAIT);
    stop_server();
}

static bool resolved;
static void on_resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *res)
{
    (void)g;
    (void)status;
    uv_freeaddrinfo(res);
    resolved = true;
}

/* Runs the loop until every name resolution queued before this call has
 * called back: the thread pool has one thread (main), so they complete in
 * order, and this one last. */
static void wait_resolutions(void)
{
    uv_getaddrinfo_t g;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    resolved = false;
    REQUIRE(uv_getaddrinfo(loop, &g, on_resolved, "localhost", "1", &hints) == 0);
    while (!resolved)
        uv_run(loop, UV_RUN_ONCE);
}

static int stream_calls;
static void s_head(void *arg, int status, const struct http_header *headers, size_t n_headers)
{
    (void)arg;
    (void)status;
    (void)headers;
    (void)n_headers;
    stream_calls++;
}
static void s_body(void *arg, const char *p, size_t n)
{
    (void)arg;
    (void)p;
    (void)n;
    stream_calls++;
}
static void s_done(void *arg, int err)
{
    (void)arg;
    (void)err;
    stream_calls++;
}

/* A request to a host name, cancelled or its client destroyed while the
 * name is still being resolved (uv_getaddrinfo on the thread pool): the
 * resolution's callback must not touch the request after it was freed
 * (a use after free, seen by ASan). Nobody listens on the port: the
 * request never gets further than the resolution. */
TEST(cancel_or_destroy_while_a_name_is_resolved)
{
    struct http_client *c;
    REQUIRE(http_client_create(loop, NULL, &c) == HTTPC_OK);
    struct http_client_stream_cbs cbs = { s_head, s_body, s_done };
    struct http_client_req *req = NULL;
    stream_calls = 0;
    REQUIRE(http_client_request_stream(c, "localhost:23098", "GET", "/a", NULL, NULL, 0, 2000, &cbs, NULL, &req) ==
            HTTPC_OK);
    http_client_cancel(req);
    wait_resolutions();
    CHECK_EQ_I(stream_calls, 0); /* cancelled: no callback at all */
    struct result r;
    memset(&r, 0, sizeof r);
    REQUIRE(http_client_request(c, "localhost:23098", "GET", "/b", NULL, NULL, 0, 2000, on_answer, &r) == HTTPC_OK);
    http_client_destroy(c);
    CHECK(r.done);
    CHECK_EQ_I(r.err, HTTPC_ECLOSED);
    wait_resolutions();
}

TEST(headers_copy_drops_hop_by_hop)
{
    struct http_header h[] = {
        { "Host", 4, "a", 1 }, { "Connection", 10, "close", 5 }, { "X-Keep", 6, "yes", 3 },
        { "content-length", 14, "3", 1 }, { "X-Skip", 6, "s", 1 }, { "X-Bad", 5, "a\r\nX-Evil: 1", 13 },
        { "Cookie", 6, "c=1", 3 },
    };
    static const char *const skip[] = { "x-skip", NULL };
    struct buf b;
    buf_init(&b);
    http_headers_copy(&b, h, sizeof h / sizeof h[0], skip);
    CHECK_STR(b.p, "X-Keep: yes\r\nCookie: c=1\r\n");
    buf_free(&b);
    CHECK(http_hop_by_hop("TRANSFER-ENCODING", 17));
    CHECK(!http_hop_by_hop("X-Raft-Index", 12));
}

int main(void)
{
    setenv("UV_THREADPOOL_SIZE", "1", 1); /* before the pool starts: see wait_resolutions */
    uv_loop_t l;
    uv_loop_init(&l);
    loop = &l;
    RUN(request_and_keepalive_reuse);
    RUN(pooled_connection_closed_by_server_is_retried);
    RUN(errors_refused_timeout_too_big_bad_address);
    RUN(destroy_fails_requests_in_flight);
    RUN(cancel_or_destroy_while_a_name_is_resolved);
    RUN(headers_copy_drops_hop_by_hop);
    uv_run(&l, UV_RUN_DEFAULT);
    uv_loop_close(&l);
    return HARNESS_END();
}
