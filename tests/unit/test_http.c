/*
 * test_http.c — the HTTP/1.1 server over real sockets on 127.0.0.1:210xx.
 * Each test starts a server on the test process's libuv loop; a client
 * thread speaks HTTP with blocking sockets (5 s socket timeouts, so nothing
 * hangs) while the main thread runs the loop until the client is done or a
 * deadline passes. Checks are made on the main thread after the client
 * joins, from what the client recorded.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "../harness.h"
#include "../lib/uv_wait.h"
#include "http.h"

/* ---- the server side ----------------------------------------------------- */

static uv_loop_t *loop;
static struct http_server *srv;
static int srv_port;

/* Exchanges the handler keeps for later ("/stash"), in arrival order. */
static pthread_mutex_t stash_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stash_cv = PTHREAD_COND_INITIALIZER;
static struct http_exchange *stash[64];
static int n_stash;            /* stashed so far (total) */
static int n_answered;         /* of those, answered */
static int max_outstanding;    /* most stashed-and-unanswered at once */
static int answer_order[64];   /* stash indexes in the order answered */
static char last_method[64];

static void stash_answer(int i)
{
    char body[32];
    const struct http_request *r = http_exchange_request(stash[i]);
    snprintf(body, sizeof body, "%s", r->query);
    answer_order[n_answered] = i;
    pthread_mutex_lock(&stash_mu);
    n_answered++;
    pthread_mutex_unlock(&stash_mu);
    http_respond(stash[i], 200, NULL, body, strlen(body));
    stash[i] = NULL;
}

static void handler(void *ctx, struct http_exchange *x)
{
    const struct http_request *r = http_exchange_request(x);
    snprintf(last_method, sizeof last_method, "%s", r->method);
    if (strcmp(r->path, "/stash") == 0) {
        pthread_mutex_lock(&stash_mu);
        stash[n_stash++] = x;
        if (n_stash - n_answered > max_outstanding) max_outstanding = n_stash - n_answered;
        pthread_cond_broadcast(&stash_cv);
        pthread_mutex_unlock(&stash_mu);
        return;
    }
    bool get = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
    bool post = strcmp(r->method, "POST") == 0;
    if (!get && !post) {
        http_respond(x, 405, "Allow: GET, HEAD, POST\r\n", "no\n", 3);
        return;
    }
    if (strcmp(r->path, "/hello") == 0) {
        http_respond(x, 200, "Content-Type: text/plain\r\n", "hello", 5);
    } else if (strcmp(r->path, "/echo") == 0) {
        char hdrs[1024];
        size_t clen = 0;
        const char *custom = http_header_get(r, "X-Custom", &clen);
        snprintf(hdrs, sizeof hdrs, "X-Method: %s\r\nX-Path: %s\r\nX-Query: %s\r\nX-Peer: %s\r\n"
                 "X-Custom-Got: %.*s\r\nX-Headers: %zu\r\nX-Client: %s\r\nX-Secure: %d\r\n", r->method, r->path,
                 r->query, r->peer, custom ? (int)clen : 6, custom ? custom : "(none)", r->n_headers, r->client,
                 (int)r->secure);
        char *body = malloc(r->body_len + 1);
        memcpy(body, r->body, r->body_len);
        body[r->body_len] = 0;
        /* The body must be NUL-terminated for convenience. */
        if (r->body[r->body_len] != '\0') { free(body); http_respond(x, 500, NULL, "nul", 3); return; }
        http_respond_take(x, 200, hdrs, body, r->body_len);
    } else if (strcmp(r->path, "/big") == 0) {
        size_t n = 32u << 20;
        char *big = malloc(n);
        memset(big, 'B', n);
        http_respond_take(x, 200, NULL, big, n);
    } else if (strcmp(r->path, "/empty") == 0) {
        http_respond(x, 204, NULL, NULL, 0);
    } else {
        http_respond(x, 404, NULL, "not found\n", 10);
    }
}

static void reset_stash(void)
{
    pthread_mutex_lock(&stash_mu);
    n_stash = n_answered = max_outstanding = 0;
    memset(stash, 0, sizeof stash);
    pthread_mutex_unlock(&stash_mu);
}

static bool server_up(int port, const struct http_options *o)
{
    char addr[64], err[256];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    reset_stash();
    srv_port = port;
    if (http_server_start(loop, addr, o, handler, NULL, &srv, err, sizeof err) != 0) {
        fprintf(stderr, "  server start: %s\n", err);
        return false;
    }
    return true;
}

static bool run_until(bool (*pred)(void), unsigned timeout_ms) { return uv_wait_until(loop, pred, timeout_ms); }

static bool stopped;
static void on_stopped(void *arg) { *(bool *)arg = true; }
static bool is_stopped(void) { return stopped; }

static void server_down(void)
{
    if (!srv) return;
    stopped = false;
    http_server_stop(srv, on_stopped, &stopped);
    srv = NULL;
    run_until(is_stopped, 5000);
    /* Anything the handler still held is answered now: discarded. */
    for (int i = 0; i < 64; i++)
        if (stash[i]) { http_respond(stash[i], 200, NULL, "late", 4); stash[i] = NULL; }
}

static struct http_stats stats(void)
{
    struct http_stats st;
    http_server_get_stats(srv, &st);
    return st;
}

static bool no_conns_open(void) { return stats().connections_open == 0; }

/* ---- the client side (its own thread, blocking sockets) ---------------------- */

struct cconn {
    int fd;
    bool closed; /* the server closed (EOF or reset), as opposed to a timeout */
    char buf[256 * 1024];
    size_t len;
};

struct resp {
    int status;
    char head[16384];
    char body[128 * 1024];
    size_t body_len;
    long content_length;
    bool keep_alive_hdr, close_hdr;
};

static struct cconn *cconnect(int port)
{
    struct cconn *c = calloc(1, sizeof *c);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    struct timeval tv = { .tv_sec = 5 };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(c->fd);
        free(c);
        return NULL;
    }
    return c;
}

static void cclose(struct cconn *c)
{
    if (!c) return;
    close(c->fd);
    free(c);
}

/* Closes with RST (SO_LINGER 0): the server sees an error, not EOF. */
static void cabort(struct cconn *c)
{
    struct linger l = { 1, 0 };
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    cclose(c);
}

static bool csend(struct cconn *c, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n <= 0) return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static bool csends(struct cconn *c, const char *s) { return csend(c, s, strlen(s)); }

/* Reads more into c->buf; false on EOF, error or timeout. */
static bool cfill(struct cconn *c)
{
    if (c->len == sizeof c->buf) return false;
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) c->closed = true;
    if (n <= 0) return false;
    c->len += (size_t)n;
    return true;
}

static void cconsume(struct cconn *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* Reads one response; for a HEAD request the body is not read. */
static bool cread(struct cconn *c, struct resp *r, bool head_req)
{
    char *end;
    memset(r, 0, offsetof(struct resp, body));
    r->content_length = -1;
    while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
        if (!cfill(c)) return false;
    size_t hlen = (size_t)(end + 4 - c->buf);
    if (hlen >= sizeof r->head) return false;
    memcpy(r->head, c->buf, hlen);
    r->head[hlen] = 0;
    cconsume(c, hlen);
    if (sscanf(r->head, "HTTP/1.1 %d", &r->status) != 1) return false;
    const char *cl = strcasestr(r->head, "\r\nContent-Length: ");
    if (cl) r->content_length = atol(cl + 18);
    r->keep_alive_hdr = strcasestr(r->head, "\r\nConnection: keep-alive\r\n") != NULL;
    r->close_hdr = strcasestr(r->head, "\r\nConnection: close\r\n") != NULL;
    if (head_req || r->content_length <= 0 || r->status < 200 || r->status == 204) return true;
    if ((size_t)r->content_length > sizeof r->body) return false;
    while (c->len < (size_t)r->content_length)
        if (!cfill(c)) return false;
    memcpy(r->body, c->buf, (size_t)r->content_length);
    r->body_len = (size_t)r->content_length;
    cconsume(c, r->body_len);
    return true;
}

/* True if the server closed the connection (EOF or reset) with nothing
 * more sent, within the 5 s socket timeout. */
static bool cwait_closed(struct cconn *c)
{
    if (c->len) return false;
    char b[256];
    for (;;) {
        ssize_t n = recv(c->fd, b, sizeof b, 0);
        if (n == 0) return true;
        if (n < 0) return errno == ECONNRESET;
        return false;
    }
}

/* Value of a response header, copied into out ("" if absent). */
static const char *rhdr(const struct resp *r, const char *name, char *out, size_t cap)
{
    char key[128];
    snprintf(key, sizeof key, "\r\n%s: ", name);
    const char *p = strcasestr(r->head, key);
    out[0] = 0;
    if (!p) return out;
    p += strlen(key);
    const char *e = strstr(p, "\r\n");
    size_t n = (size_t)(e - p) < cap - 1 ? (size_t)(e - p) : cap - 1;
    memcpy(out, p, n);
    out[n] = 0;
    return out;
}

/* Waits (client thread) until the handler has stashed n exchanges. */
static bool wait_stash(int n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 5;
    pthread_mutex_lock(&stash_mu);
    int rc = 0;
    while (n_stash < n && rc == 0) rc = pthread_cond_timedwait(&stash_cv, &stash_mu, &ts);
    bool ok = n_stash >= n;
    pthread_mutex_unlock(&stash_mu);
    return ok;
}

/* Runs fn(arg) in a client thread while the loop runs; false if it did not
 * finish within timeout_ms (the thread is still joined: its sockets time
 * out). */
static atomic_int client_done;
static uv_async_t wake;
struct job { void (*fn)(void *); void *arg; };
static void *client_main(void *p)
{
    struct job *j = p;
    j->fn(j->arg);
    atomic_store(&client_done, 1);
    uv_async_send(&wake);
    return NULL;
}
static bool is_client_done(void) { return atomic_load(&client_done) != 0; }
static void on_wake(uv_async_t *a) { (void)a; }

static bool run_client(void (*fn)(void *), void *arg, unsigned timeout_ms)
{
    pthread_t t;
    struct job j = { fn, arg };
    atomic_store(&client_done, 0);
    uv_async_init(loop, &wake, on_wake);
    pthread_create(&t, NULL, client_main, &j);
    bool ok = run_until(is_client_done, timeout_ms);
    if (!ok) run_until(is_client_done, 30000);
    pthread_join(t, NULL);
    uv_close((uv_handle_t *)&wake, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

/* ---- tests ---------------------------------------------------------------- */

struct simple_out { bool ok; struct resp r1, r2; char query[64], path[64], peer[64], custom[64], date[64]; };

static void c_simple_get(void *arg)
{
    struct simple_out *o = arg;
    struct cconn *c = cconnect(srv_port);
    if (!c) return;
    o->ok = csends(c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n") && cread(c, &o->r1, false) &&
            csends(c, "GET /echo?a=1&b=%20 HTTP/1.1\r\nHost: t\r\nx-CuStOm:   Some Value  \r\n\r\n") &&
            cread(c, &o->r2, false);
    rhdr(&o->r2, "X-Query", o->query, sizeof o->query);
    rhdr(&o->r2, "X-Path", o->path, sizeof o->path);
    rhdr(&o->r2, "X-Peer", o->peer, sizeof o->peer);
    rhdr(&o->r2, "X-Custom-Got", o->custom, sizeof o->custom);
    rhdr(&o->r1, "Date", o->date, sizeof o->date);
    cclose(c);
}

TEST(simple_get)
{
    static struct simple_out o;
    memset(&o, 0, sizeof o);
    REQUIRE(server_up(21001, NULL));
    CHECK(run_client(c_simple_get, &o, 10000));
    CHECK(o.ok);
    CHECK_EQ_I(o.r1.status, 200);
    CHECK_EQ_I(o.r1.content_length, 5);
    CHECK(o.r1.body_len == 5 && memcmp(o.r1.body, "hello", 5) == 0);
    CHECK(o.r1.keep_alive_hdr);
    CHECK(strstr(o.r1.head, "\r\nContent-Type: text/plain\r\n") != NULL);
    CHECK(strlen(o.date) == 29 && strcmp(o.date + 25, " GMT") == 0); /* IMF-fixdate */
    CHECK_EQ_I(o.r2.status, 200);
    CHECK_STR(o.query, "a=1&b=%20");
    CHECK_STR(o.path, "/echo");
    CHECK(strncmp(o.peer, "127.0.0.1:", 10) == 0 && atoi(o.peer + 10) > 0);
    CHECK_STR(o.custom, "Some Value"); /* case-insensitive lookup, trimmed */
    CHECK_EQ_U(stats().requests, 2);
    CHECK_EQ_U(stats().connections_accepted, 1);
    server_down();
}

struct ka_out { int ok_count; };
static void c_keepalive(void *arg)
{
    struct ka_out *o = arg;
    struct cconn *c = cconnect(srv_port);
    static struct resp r;
    if (!c) return;
    for (int i = 0; i < 100; i++) {
        if (!csends(c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n") || !cread(c, &r, false)) break;
        if (r.status == 200 && r.body_len == 5 && r.keep_alive_hdr) o->ok_count++;
    }
    cclose(c);
}

TEST(keepalive_100_requests)
{
    struct ka_out o = { 0 };
    REQUIRE(server_up(21002, NULL));
    CHECK(run_client(c_keepalive, &o, 20000));
    CHECK_EQ_I(o.ok_count, 100);
    CHECK_EQ_U(stats().connections_accepted, 1);
    CHECK_EQ_U(stats().requests, 100);
    server_down();
}

/* Ten requests in one write; the handler answers them in reverse order,
 * one per timer tick, and the client must still get them in order. */
static uv_timer_t answer_timer;
static bool answer_reverse;
static void on_answer_tick(uv_timer_t *t)
{
    (void)t;
    if (answer_reverse) {
        if (n_stash < 10) return; /* wait until all ten are in */
        for (int i = 63; i >= 0; i--)
            if (stash[i]) { stash_answer(i); return; }
    } else {
        /* answer everything stashed, oldest first */
        for (int i = 0; i < 64; i++)
            if (stash[i]) stash_answer(i);
    }
}

struct pipe_out { bool ok; int n_ok; char bodies[10][16]; };
static void c_pipeline(void *arg)
{
    struct pipe_out *o = arg;
    char req[4096] = "";
    static struct resp r;
    struct cconn *c = cconnect(srv_port);
    if (!c) return;
    for (int i = 0; i < 10; i++) {
        char one[128];
        snprintf(one, sizeof one, "GET /stash?%d HTTP/1.1\r\nHost: t\r\n\r\n", i);
        strcat(req, one);
    }
    o->ok = csends(c, req);
    for (int i = 0; i < 10 && o->ok; i++) {
        if (!cread(c, &r, false)) { o->ok = false; break; }
        snprintf(o->bodies[i], sizeof o->bodies[i], "%.*s", (int)r.body_len, r.body);
        if (r.status == 200) o->n_ok++;
    }
    cclose(c);
}

TEST(pipelined_answered_in_order_despite_reverse_handler)
{
    static struct pipe_out o;
    memset(&o, 0, sizeof o);
    REQUIRE(server_up(21003, NULL));
    answer_reverse = true;
    uv_timer_init(loop, &answer_timer);
    uv_timer_start(&answer_timer, on_answer_tick, 2, 2);
    CHECK(run_client(c_pipeline, &o, 10000));
    uv_close((uv_handle_t *)&answer_timer, NULL);
    CHECK(o.ok);
    CHECK_EQ_I(o.n_ok, 10);
    for (int i = 0; i < 10; i++) {
        char want[16];
        snprintf(want, sizeof want, "%d", i);
        CHECK_STR(o.bodies[i], want);
        CHECK_EQ_I(answer_order[i], 9 - i); /* the handler really answered backwards */
    }
    CHECK_EQ_I(max_outstanding, 10); /* all ten were read ahead */
    server_down();
}

TEST(pipeline_read_ahead_bounded)
{
    static struct pipe_out o;
    struct http_options opt;
    memset(&o, 0, sizeof o);
    http_options_default(&opt);
    opt.max_pipeline = 3;
    REQUIRE(server_up(21004, &opt));
    answer_reverse = false;
    uv_timer_init(loop, &answer_timer);
    uv_timer_start(&answer_timer, on_answer_tick, 3, 3);
    CHECK(run_client(c_pipeline, &o, 10000));
    uv_close((uv_handle_t *)&answer_timer, NULL);
    CHECK(o.ok);
    CHECK_EQ_I(o.n_ok, 10);
    for (int i = 0; i < 10; i++) {
        char want[16];
        snprintf(want, sizeof want, "%d", i);
        CHECK_STR(o.bodies[i], want);
    }
    CHECK(max_outstanding <= 3); /* reading stopped at the bound... */
    CHECK(max_outstanding >= 2); /* ...and did read ahead up to it */
    server_down();
}

struct multi_out { bool ok; struct resp r[4]; };

static void c_head(void *arg)
{
    struct multi_out *o = arg;
    struct cconn *c = cconnect(srv_port);
    if (!c) return;
    /* If HEAD sent a body, it would be read as the next response's start. */
    o->ok = csends(c, "HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\n\r\n") &&
            cread(c, &o->r[0], true) && cread(c, &o->r[1], false) &&
            csends(c, "GET /empty HTTP/1.1\r\nHost: t\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\n\r\n") &&
            cread(c, &o->r[2], false) && cread(c, &o->r[3], false);
    cclose(c);
}

TEST(head_has_no_body_and_204_has_no_length)
{
    static struct multi_out o;
    memset(&o, 0, sizeof o);
    REQUIRE(server_up(21005, NULL));
    CHECK(run_client(c_head, &o, 10000));
    CHECK(o.ok);
    CHECK_EQ_I(o.r[0].status, 200);
    CHECK_EQ_I(o.r[0].content_length, 5);
    CHECK_EQ_I(o.r[1].status, 200);
    CHECK(o.r[1].body_len == 5 && memcmp(o.r[1].body, "hello", 5) == 0);
    CHECK_EQ_I(o.r[2].status, 204);
    CHECK_EQ_I(o.r[2].content_length, -1);
    CHECK_EQ_I(o.r[3].status, 200);
    CHECK_STR(last_method, "GET");
    server_down();
}

static void c_post_bodies(void *arg)
{
    struct multi_out *o = arg;
    struct cconn *c = cconnect(srv_port);
    if (!c) return;
    o->ok = csends(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world") &&
            cread(c, &o->r[0], false) &&
            /* chunked, split oddly across writes, with a trailer */
            csends(c, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel") &&
            csends(c, "lo\r\n7\r\n, chunk\r\n") &&
            csends(c, "0\r\nX-Trailer: yes\r\n\r\n") && cread(c, &o->r[1], false) &&
            /* unknown method with a body: passed to the handler */
            csends(c, "BR") && csends(c, "EW /pot HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\ntea") &&
            cread(c, &o->r[2], false) &&
            csends(c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n") && cread(c, &o->r[3], false);
    cclose(c);
}

TEST(post_chunked_and_unknown_method)
{
    static struct multi_out o;
    memset(&o, 0, sizeof o);
    REQUIRE(server_up(21006, NULL));
    CHECK(run_client(c_post_bodies, &o, 10000));
    CHECK(o.ok);
    CHECK_EQ_I(o.r[0].status, 200);
    CHECK(o.r[0].body_len == 11 && memcmp(o.r[0].body, "hello world", 11) == 0);
    CHECK(strstr(o.r[0].head, "X-Method: POST\r\n") != NULL);
    CHECK_EQ_I(o.r[1].status, 200);
    CHECK(o.r[1].body_len == 12 && memcmp(o.r[1].body, "hello, chunk", 12) == 0);
    CHECK_EQ_I(o.r[2].status, 405);
    CHECK(strstr(o.r[2].head, "Allow: GET, HEAD, POST\r\n") != NULL);
    CHECK_EQ_I(o.r[3].status, 200); /* the connection survived the BREW */
    CHECK_STR(last_method, "GET");
    CHECK_EQ_U(stats().requests, 4);
    server_down();
}

struct cont_out { bool ok, got_continue_before_body; struct resp r; };
static void c_continue(void *arg)
{
    struct cont_out *o = arg;
    struct cconn *c = cconnect(srv_port);
    if (!c) return;
    if (!csends(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"))
        goto out;
    while (!memmem(c->buf, c->len, "\r\n\r\n", 4))
        if (!cfill(c)) goto out;
    static const char want[] = "HTTP/1.1 100 Continue\r\n\r\n";
    o->got_continue_before_body = c->len >= sizeof want - 1 && memcmp(c->buf, want, sizeof want - 1) == 0;
    if (!o->got_continue_before_body) goto out;
    cconsume(c, sizeof want - 1);
    o->ok = csends(c, "data") && cread(c, &o->r, false);
out:
    cclose(c);
}

TEST(expect_100_continue)
{
    static struct cont_out o;
    memset(&o, 0, sizeof o);
    REQUIRE(server_up(21007, NULL));
    CHECK(run_client(c_continue, &o, 10000));
    CHECK(o.got_continue_before_body);
    CHECK(o.ok);
    CHECK_EQ_I(o.r.status, 200);
    CHECK(o.r.body_len == 4 && memcmp(o.r.body, "data", 4) == 0);
    server_down();
}

/* A request whose header block (request line to the blank line) is exactly
 * total bytes. */
static char *request_of_size(size_t total)
{
    const char *pre = "GET /hello HTTP/1.1\r\nHost: t\r\nX-Pad: ";
    size_t fixed = strlen(pre) + 4; /* "\r\n\r\n" */
    char *s = malloc(total + 1);
    size_t pad = total - fixed;
    strcpy(s, pre);
    memset(s + strlen(pre), 'a', pad);
    strcpy(s + strlen(pre) + pad, "\r\n\r\n");
    return s;
}

struct lim_out { bool ok_under, ok_over, closed_over; struct resp under, over; };
static void c_header_limit(void *arg)
{
    struct lim_out *o = arg;
    char *under = request_of_size(8192), *over = request_of_size(8193);
    struct cconn *c = cconnect(srv_port);
    if (c) {
        o->ok_under = csends(c, under) && cread(c, &o->under, false);
        cclose(c);
    }
    c = cconnect(srv_port);
    if (c) {
        o->ok_over = csends(c, over) && cread(c, &o->over, false);
        o->closed_over = o->ok_over && cwait_closed(c);
        cclose(c);
    }
    free(under);
    free(over);
}

TEST(header_block_limit_431)
{
    static struct lim_out o;
    memset(&o, 0, sizeof o);
    REQUIRE(server_up(21008, NULL));
    CHECK(run_client(c_header_limit, &o, 10000));
    CHECK(o.ok_under);
    CHECK_EQ_I(o.under.status, 200);
    CHECK(o.ok_over);
    CHECK_EQ_I(o.over.status, 431);
    CHECK(o.over.close_hdr);
    CHECK(o.closed_over);
    CHECK_EQ_U(stats().rejected_431, 1);
    CHECK_EQ_U(stats().requests, 1);
    server_down();
}

struct body_out { bool ok[4], closed[4]; struct resp r[4]; };
static void c_body_limit(void *arg)
{
    struct body_out *o = arg;
    char *body = malloc(80 * 1024);
    memset(body, 'b', 80 * 1024);
    char hdr[256];
    /* 0: exactly the limit is accepted */
    struct cconn *c = cconnect(srv_port);
    if (c) {
        snprintf(hdr, sizeof hdr, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 65536\r\n\r\n");
        o->ok[0] = csends(c, hdr) && csend(c, body, 65536) && cread(c, &o->r[0], false);
        cclose(c);
    }
    /* 1: Content-Length 65537: 413 before any body byte is sent */
    c = cconnect(srv_port);
    if (c) {
        snprintf(hdr, sizeof hdr, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 65537\r\n\r\n");
        o->ok[1] = csends(c, hdr) && cread(c, &o->r[1], false);
        o->closed[1] = o->ok[1] && cwait_closed(c);
        cclose(c);
    }
    /* 2: chunked, 5 chunks of 16 KiB: 413 once over 64 KiB */
    c = cconnect(srv_port);
    if (c) {
        bool sent = csends(c, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
        for (int i = 0; i < 5 && sent; i++)
            sent = csends(c, "4000\r\n") && csend(c, body, 16384) && csends(c, "\r\n");
        if (sent) csends(c, "0\r\n\r\n");
        o->ok[2] = cread(c, &o->r[2], false);
        o->closed[2] = o->ok[2] && cwait_closed(c);
        cclose(c);
    }
    /* 3: Content-Length 65537 sent with its whole body: still a clean 413
     * (the server drains instead of resetting the connection) */
    c = cconnect(srv_port);
    if (c) {
        snprintf(hdr, sizeof hdr, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 65537\r\n\r\n");
        o->ok[3] = csends(c, hdr) && csend(c, body, 65537) && cread(c, &o->r[3], false);
        o->closed[3] = o->ok[3] && cwait_closed(c);
        cclose(c);
    }
    free(body);
}

TEST(body_limit_413)
{
    static struct body_out o;
    memset(&o, 0, sizeof o);
    REQUIRE(server_up(21009, NULL));
    CHECK(run_client(c_body_limit, &o, 20000));
    CHECK(o.ok[0]);
    CHECK_EQ_I(o.r[0].status, 200);
    CHECK_EQ_U(o.r[0].body_len, 65536);
    for (int i = 1; i < 4; i++) {
        CHECK(o.ok[i]);
        CHECK_EQ_I(o.r[i].status, 413);
        CHECK(o.r[i].close_hdr);
        CHECK(o.closed[i]);
    }
    CHECK_EQ_U(stats().rejected_413, 3);
    CHECK_EQ_U(stats().requests, 1);
    server_down();
}

struct bad_out { bool ok[4], closed[4]; struct resp r[4]; };
static void c_garbage(void *arg)
{
    struct bad_out *o = arg;
    static const char *const reqs[] = {
        "\x01\x02\x03 garbage\r\n\r\n",
        "GET /hello HTTP/1.1\r\nHost: t\r\nBad Header Line\r\n\r\n",
        "GET /hello HTTP/9.9.9\r\n\r\n",
        /* a good request pipelined before a bad one is still answered */
        "GET /hello HTTP/1.1\r\nHost: t\r\n\r\nGET /x HTTP/1.1\r\nHost: t\r\nContent-Length: zz\r\n\r\n",
    };
    for (int i = 0; i < 4; i++) {
        struct cconn *c = cconnect(srv_port);
        if (!c) continue;
        struct resp first;
        bool ok = csends(c, reqs[i]);
        if (ok && i == 3) ok = cread(c, &first, false) && first.status == 200 && first.keep_alive_hdr;
        o->ok[i] = ok && cread(c, &o->r[i], false);
        o->closed[i] = o->ok[i] && cwait_closed(c);
        cclose(c);
    }
}

TEST(malformed_400_then_close)
{
    static struct bad_out o;
    memset(&o, 0, sizeof o);
    REQUIRE(server_up(21010, NULL));
    CHECK(run_client(c_garbage, &o, 10000));
    for (int i = 0; i < 4; i++) {
        CHECK(o.ok[i]);
        CHECK_EQ_I(o.r[i].status, 400);
        CHECK(o.r[i].close_hdr);
        CHECK(o.closed[i]);
    }
    CHECK_EQ_U(stats().rejected_400, 4);
    CHECK_EQ_U(stats().requests, 1);
    server_down();
}

/* Stricter than http-parser's lenient mode, as nginx is: HTTP/1.1 needs
 * exactly one Host, no request may carry two, and a header name is a token
 * (no spaces). Each answered 400 and closed; HTTP/1.0 without Host is fine. */
#define N_STRICT 6
struct strict_out { bool ok[N_STRICT], closed[N_STRICT]; struct resp r[N_STRICT]; };
static const char *const strict_reqs[N_STRICT] = {
    "GET /hello HTTP/1.1\r\n\r\n",
    "GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "GET /hello HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n",
    "GET /hello HTTP/1.1\r\nHost: a\r\nFoo Bar: x\r\n\r\n",
    "GET /hello HTTP/1.1\r\nHost : a\r\n\r\n",
    "GET /hello HTTP/1.0\r\n\r\n", /* the one good request */
};
static void c_strict(void *arg)
{
    struct strict_out *o = arg;
    for (int i = 0; i < N_STRICT; i++) {
        struct cconn *c = cconnect(srv_port);
        if (!c) continue;
        o->ok[i] = csends(c, strict_reqs[i]) && cread(c, &o->r[i], false);
        o->closed[i] = o->ok[i] && cwait_closed(c);
        cclose(c);
    }
}

TEST(host_and_header_names_are_strict)
{
    static struct strict_out o;
    memset(&o, 0, sizeof o);
    REQUIRE(server_up(21030, NULL));
    CHECK(run_client(c_strict, &o, 10000));
    for (int i = 0; i < N_STRICT; i++) {
        CHECK(o.ok[i]);
        CHECK_EQ_I(o.r[i].status, i == N_STRICT - 1 ? 200 : 400);
        CHECK(o.closed[i]);
    }
    CHECK_EQ_U(stats().rejected_400, N_STRICT - 1);
    CHECK_EQ_U(stats().requests, 1);
    server_down();
}

/* X-Forwarded-For and X-Forwarded-Proto count only from trusted proxies,
 * and only the entries they appended: the client is the first untrusted
 * address from the right. */
#define N_XFF 6
struct xff_case { const char *src, *headers, *client; int secure; };
static const struct xff_case xff_cases[N_XFF] = {
    /* from 127.0.0.2, not trusted: the headers are the client's own claim */
    { "127.0.0.2", "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\n", "127.0.0.2", 0 },
    /* from 127.0.0.1, a trusted proxy */
    { "127.0.0.1", "X-Forwarded-For: 6.6.6.6, 1.2.3.4\r\nX-Forwarded-Proto: https\r\n", "1.2.3.4", 1 },
    /* a chain of trusted proxies (10.0.0.0/8) is walked through */
    { "127.0.0.1", "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 1.2.3.4, 10.1.2.3\r\n", "1.2.3.4", 0 },
    /* garbage appended before a trusted proxy's entry stops the walk */
    { "127.0.0.1", "X-Forwarded-For: 1.2.3.4, junk, 10.1.2.3\r\n", "10.1.2.3", 0 },
    { "127.0.0.1", "X-Forwarded-For: 2001:db8::7\r\nX-Forwarded-Proto: http\r\n", "2001:db8::7", 0 },
    { "127.0.0.1", "", "127.0.0.1", 0 },
};
struct xff_out { bool ok[N_XFF]; char client[N_XFF][64], secure[N_XFF][8]; };
static void c_xff(void *arg)
{
    struct xff_out *o = arg;
    for (int i = 0; i < N_XFF; i++) {
        struct sockaddr_in src = { .sin_family = AF_INET }, dst = { .sin_family = AF_INET, .sin_port = htons((uint16_t)srv_port) };
        inet_pton(AF_INET, xff_cases[i].src, &src.sin_addr);
        inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
        struct cconn *c = calloc(1, sizeof *c);
        struct timeval tv = { .tv_sec = 5 };
        c->fd = socket(AF_INET, SOCK_STREAM, 0);
        setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (bind(c->fd, (struct sockaddr *)&src, sizeof src) || connect(c->fd, (struct sockaddr *)&dst, sizeof dst)) {
            cclose(c);
            continue;
        }
        char req[512];
        static struct resp r;
        snprintf(req, sizeof req, "GET /echo HTTP/1.1\r\nHost: t\r\n%s\r\n", xff_cases[i].headers);
        o->ok[i] = csends(c, req) && cread(c, &r, false) && r.status == 200;
        rhdr(&r, "X-Client", o->client[i], sizeof o->client[i]);
        rhdr(&r, "X-Secure", o->secure[i], sizeof o->secure[i]);
        cclose(c);
    }
}

TEST(forwarded_headers_count_only_from_trusted_proxies)
{
    static struct xff_out o;
    memset(&o, 0, sizeof o);
    struct http_trust trust;
    struct http_options opt;
    char err[256];
    http_trust_init(&trust);
    REQUIRE(http_trust_add(&trust, "127.0.0.1, 10.0.0.0/8,fd00::/8", err, sizeof err) == 0);
    CHECK(http_trust_add(&trust, "10.0.0.0/33", err, sizeof err) < 0 && strstr(err, "prefix"));
    CHECK(http_trust_add(&trust, "example.com", err, sizeof err) < 0 && strstr(err, "not an IP"));
    http_options_default(&opt);
    opt.trust = &trust;
    REQUIRE(server_up(21031, &opt));
    http_trust_free(&trust); /* the server keeps its own copy */
    CHECK(run_client(c_xff, &o, 10000));
    for (int i = 0; i < N_XFF; i++) {
        CHECK(o.ok[i]);
        CHECK_STR(o.client[i], xff_cases[i].client);
        CHECK_EQ_I(atoi(o.secure[i]), xff_cases[i].secure);
    }
    server_down();
}

/* After a final response the server half-closes and drains what the
 * client still sends (closing at once could reset the connection and lose
 * the response), until the client closes. */
struct linger_out { bool ok, eof; struct cconn *c; };
static void c_linger(void *arg)
{
    struct linger_out *o = arg;
    struct resp r;
    o->c = cconnect(srv_port);
    if (!o->c) return;
    o->ok = csends(o->c, "GET /hello HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n") && cread(o->c, &r, false) &&
            r.status == 400;
    o->eof = o->ok && cwait_closed(o->c);
    /* More input after the FIN must be drained, not answered with RST. */
    o->ok = o->ok && csends(o->c, "more bytes the server must swallow\r\n");
}

TEST(final_response_lingers_until_client_closes)
{
    static struct linger_out o;
    memset(&o, 0, sizeof o);
    REQUIRE(server_up(21023, NULL));
    CHECK(run_client(c_linger, &o, 10000));
    CHECK(o.ok);
    CHECK(o.eof);
    CHECK_EQ_U(stats().connections_open, 1); /* still draining */
    cclose(o.c);
    CHECK(run_until(no_conns_open, 5000));
    server_down();
}

struct conn_out { bool ok, closed; struct resp r[3]; };
static void c_connection_semantics(void *arg)
{
    struct conn_out *o = arg;
    bool ok = true;
    /* HTTP/1.0 defaults to close */
    struct cconn *c = cconnect(srv_port);
    ok = c && csends(c, "GET /hello HTTP/1.0\r\n\r\n") && cread(c, &o->r[0], false) && cwait_closed(c);
    cclose(c);
    /* HTTP/1.0 with keep-alive: two requests */
    c = cconnect(srv_port);
    ok = ok && c && csends(c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n") &&
         cread(c, &o->r[1], false) && csends(c, "GET /hello HTTP/1.0\r\n\r\n") &&
         cread(c, &o->r[2], false) && cwait_closed(c);
    cclose(c);
    /* HTTP/1.1 Connection: close, with a pipelined request after it that
     * must not be answered */
    c = cconnect(srv_port);
    struct resp r;
    ok = ok && c &&
         csends(c, "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\n\r\n") &&
         cread(c, &r, false) && r.status == 200 && r.close_hdr;
    o->closed = ok && cwait_closed(c);
    cclose(c);
    o->ok = ok;
}

TEST(connection_close_and_http10_keepalive)
{
    static struct conn_out o;
    memset(&o, 0, sizeof o);
    REQUIRE(server_up(21011, NULL));
    CHECK(run_client(c_connection_semantics, &o, 10000));
    CHECK(o.ok);
    CHECK(o.closed);
    CHECK(o.r[0].close_hdr);
    CHECK(o.r[1].keep_alive_hdr);
    CHECK(o.r[2].close_hdr);
    CHECK_EQ_U(stats().requests, 4);
    server_down();
}

struct slow_out { bool cut_off; int lines_sent; };
static void c_slowloris(void *arg)
{
    struct slow_out *o = arg;
    struct cconn *c = cconnect(srv_port);
    if (!c) return;
    csends(c, "GET /hello HTTP/1.1\r\nHost: t\r\n");
    /* One header line every 50 ms for up to 5 s; the header timeout is
     * 300 ms, so the server must cut us off long before we finish. */
    for (int i = 0; i < 100; i++) {
        struct pollfd p = { c->fd, POLLIN, 0 };
        if (poll(&p, 1, 50) > 0) {
            char b[64];
            ssize_t n = recv(c->fd, b, sizeof b, 0);
            if (n == 0 || (n < 0 && errno == ECONNRESET)) { o->cut_off = true; break; }
        }
        if (!csends(c, "X-Slow: yes\r\n")) { o->cut_off = true; break; }
        o->lines_sent++;
    }
    cclose(c);
}

TEST(slowloris_cut_off)
{
    static struct slow_out o;
    struct http_options opt;
    memset(&o, 0, sizeof o);
    http_options_default(&opt);
    opt.header_timeout_ms = 300;
    REQUIRE(server_up(21012, &opt));
    CHECK(run_client(c_slowloris, &o, 15000));
    CHECK(o.cut_off);
    CHECK(o.lines_sent < 100);
    CHECK_EQ_U(stats().timed_out, 1);
    CHECK_EQ_U(stats().requests, 0);
    printf("  slowloris: cut off after %d trickled lines (50 ms apart, header timeout 300 ms)\n",
           o.lines_sent);
    server_down();
}

struct idle_out { bool ok, closed; struct resp r; };
static void c_idle(void *arg)
{
    struct idle_out *o = arg;
    struct cconn *c = cconnect(srv_port);
    if (!c) return;
    o->ok = csends(c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n") && cread(c, &o->r, false);
    o->closed = o->ok && cwait_closed(c); /* idle timeout 200 ms, socket timeout 5 s */
    cclose(c);
}

TEST(idle_timeout_closes)
{
    static struct idle_out o;
    struct http_options opt;
    memset(&o, 0, sizeof o);
    http_options_default(&opt);
    opt.idle_timeout_ms = 200;
    REQUIRE(server_up(21013, &opt));
    CHECK(run_client(c_idle, &o, 10000));
    CHECK(o.ok);
    CHECK(o.closed);
    CHECK_EQ_U(stats().idle_closed, 1);
    CHECK_EQ_U(stats().timed_out, 0);
    server_down();
}

struct evict_out { bool a_ok, b_ok, c_ok, a_closed, b_again; };
static void c_evict(void *arg)
{
    struct evict_out *o = arg;
    struct resp r;
    const char *req = "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n";
    struct cconn *a = cconnect(srv_port), *b = NULL, *c = NULL;
    o->a_ok = a && csends(a, req) && cread(a, &r, false) && r.status == 200;
    b = cconnect(srv_port);
    o->b_ok = b && csends(b, req) && cread(b, &r, false) && r.status == 200;
    /* Both idle now, a the longest. A third client must get in. */
    c = cconnect(srv_port);
    o->c_ok = c && csends(c, req) && cread(c, &r, false) && r.status == 200;
    o->a_closed = a && cwait_closed(a);
    o->b_again = b && csends(b, req) && cread(b, &r, false) && r.status == 200;
    cclose(a);
    cclose(b);
    cclose(c);
}

TEST(max_connections_evicts_longest_idle)
{
    static struct evict_out o;
    struct http_options opt;
    memset(&o, 0, sizeof o);
    http_options_default(&opt);
    opt.max_connections = 2;
    REQUIRE(server_up(21014, &opt));
    CHECK(run_client(c_evict, &o, 10000));
    CHECK(o.a_ok);
    CHECK(o.b_ok);
    CHECK(o.c_ok);
    CHECK(o.a_closed);
    CHECK(o.b_again);
    CHECK_EQ_U(stats().evicted_idle, 1);
    CHECK_EQ_U(stats().connections_accepted, 3);
    server_down();
}

static bool one_timed_out(void) { return stats().timed_out == 1; }

struct body_slow_out { bool closed; };
static void c_body_slow(void *arg)
{
    struct body_slow_out *o = arg;
    struct cconn *c = cconnect(srv_port);
    if (!c) return;
    /* Headers at once, then 2 of the 10 body bytes, then nothing. */
    if (csends(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nab")) o->closed = cwait_closed(c);
    cclose(c);
}

TEST(body_timeout_cuts_off)
{
    static struct body_slow_out o;
    struct http_options opt;
    memset(&o, 0, sizeof o);
    http_options_default(&opt);
    opt.body_timeout_ms = 200;
    REQUIRE(server_up(21018, &opt));
    CHECK(run_client(c_body_slow, &o, 10000));
    CHECK(o.closed);
    CHECK_EQ_U(stats().timed_out, 1);
    CHECK_EQ_U(stats().requests, 0);
    server_down();
}

/* A body trickling in below min_body_rate is cut off long before
 * body_timeout_ms: a byte every 50 ms against 1000 bytes/s. */
struct trickle_out { bool closed; int sent; };
static void c_trickle(void *arg)
{
    struct trickle_out *o = arg;
    struct cconn *c = cconnect(srv_port);
    if (!c || !csends(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10000\r\n\r\n")) {
        cclose(c);
        return;
    }
    struct pollfd p = { .fd = c->fd, .events = POLLIN };
    for (o->sent = 0; o->sent < 10000; o->sent++) {
        if (!csend(c, "x", 1)) break;
        if (poll(&p, 1, 50) == 1) { /* the server closed */
            o->closed = cwait_closed(c);
            break;
        }
    }
    cclose(c);
}

TEST(body_below_min_rate_cuts_off)
{
    static struct trickle_out o;
    struct http_options opt;
    memset(&o, 0, sizeof o);
    http_options_default(&opt);
    opt.body_timeout_ms = 600000;
    opt.min_body_rate = 1000;
    opt.body_grace_ms = 300;
    REQUIRE(server_up(21032, &opt));
    CHECK(run_client(c_trickle, &o, 60000));
    CHECK(o.closed);
    CHECK(o.sent < 10000);
    CHECK_EQ_U(stats().timed_out, 1);
    CHECK_EQ_U(stats().requests, 0);
    server_down();
}

/* Every slot held by a client sending its request: a newcomer gets the
 * slot of the one that has been sending longest. Each holder has seen its
 * 100 Continue, so the server is known to be reading its body. */
struct slow_full_out { bool held[4], served, first_closed, others_open; };
static void c_slow_full(void *arg)
{
    struct slow_full_out *o = arg;
    struct cconn *held[4] = { 0 };
    for (int i = 0; i < 4; i++) {
        held[i] = cconnect(srv_port);
        o->held[i] = held[i] &&
                     csends(held[i], "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n");
        while (o->held[i] && !memmem(held[i]->buf, held[i]->len, "\r\n\r\n", 4))
            o->held[i] = cfill(held[i]);
        if (held[i]) held[i]->len = 0;
    }
    struct cconn *c = cconnect(srv_port);
    struct resp r;
    o->served = c && csends(c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n") && cread(c, &r, false) && r.status == 200;
    cclose(c);
    o->first_closed = held[0] && cwait_closed(held[0]);
    /* The others still take their bodies. */
    char body[101];
    memset(body, 'b', 100);
    body[100] = 0;
    o->others_open = true;
    for (int i = 1; i < 4; i++)
        o->others_open = o->others_open && held[i] && csends(held[i], body) && cread(held[i], &r, false) && r.status == 200;
    for (int i = 0; i < 4; i++) cclose(held[i]);
}

TEST(max_connections_evicts_oldest_slow_sender)
{
    static struct slow_full_out o;
    struct http_options opt;
    memset(&o, 0, sizeof o);
    http_options_default(&opt);
    opt.max_connections = 4;
    opt.body_grace_ms = 60000;
    REQUIRE(server_up(21033, &opt));
    CHECK(run_client(c_slow_full, &o, 20000));
    for (int i = 0; i < 4; i++) CHECK(o.held[i]);
    CHECK(o.served);
    CHECK(o.first_closed);
    CHECK(o.others_open);
    CHECK_EQ_U(stats().evicted_slow, 1);
    CHECK_EQ_U(stats().refused_full, 0);
    server_down();
}

/* One address holds at most max_conns_per_addr connections; another
 * address is not affected. */
struct per_addr_out { bool first_ok[3], fourth_closed, other_ok; };
static struct cconn *cconnect_from(const char *src, int port)
{
    struct sockaddr_in s = { .sin_family = AF_INET }, d = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    struct timeval tv = { .tv_sec = 5 };
    inet_pton(AF_INET, src, &s.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &d.sin_addr);
    struct cconn *c = calloc(1, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (bind(c->fd, (struct sockaddr *)&s, sizeof s) || connect(c->fd, (struct sockaddr *)&d, sizeof d)) {
        cclose(c);
        return NULL;
    }
    return c;
}
static void c_per_addr(void *arg)
{
    struct per_addr_out *o = arg;
    struct cconn *cs[3];
    struct resp r;
    for (int i = 0; i < 3; i++) {
        cs[i] = cconnect_from("127.0.0.1", srv_port);
        o->first_ok[i] = cs[i] && csends(cs[i], "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n") && cread(cs[i], &r, false) &&
                         r.status == 200;
    }
    struct cconn *fourth = cconnect_from("127.0.0.1", srv_port);
    o->fourth_closed = fourth && cwait_closed(fourth);
    cclose(fourth);
    struct cconn *other = cconnect_from("127.0.0.2", srv_port);
    o->other_ok = other && csends(other, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n") && cread(other, &r, false) &&
                  r.status == 200;
    cclose(other);
    for (int i = 0; i < 3; i++) cclose(cs[i]);
}

TEST(connections_per_address_are_limited)
{
    static struct per_addr_out o;
    struct http_options opt;
    memset(&o, 0, sizeof o);
    http_options_default(&opt);
    opt.max_conns_per_addr = 3;
    REQUIRE(server_up(21034, &opt));
    CHECK(run_client(c_per_addr, &o, 20000));
    for (int i = 0; i < 3; i++) CHECK(o.first_ok[i]);
    CHECK(o.fourth_closed);
    CHECK(o.other_ok);
    CHECK_EQ_U(stats().refused_addr, 1);
    CHECK(run_until(no_conns_open, 5000));
    server_down();
}

/* A client that asks for 32 MiB and never reads it: once the socket
 * buffers are full the write makes no progress for idle_timeout_ms. */
static int stall_fd = -1;
static void c_write_stall(void *arg)
{
    (void)arg;
    int small = 4096;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)srv_port) };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    stall_fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(stall_fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    if (connect(stall_fd, (struct sockaddr *)&a, sizeof a) == 0)
    {
        static const char req[] = "GET /big HTTP/1.1\r\nHost: t\r\n\r\n";
        send(stall_fd, req, sizeof req - 1, MSG_NOSIGNAL);
    }
}

TEST(unread_response_times_out)
{
    struct http_options opt;
    http_options_default(&opt);
    opt.idle_timeout_ms = 300;
    REQUIRE(server_up(21019, &opt));
    CHECK(run_client(c_write_stall, NULL, 10000));
    CHECK(run_until(one_timed_out, 10000));
    CHECK(run_until(no_conns_open, 5000));
    close(stall_fd);
    server_down();
}

struct refuse_out { bool stashed, refused_closed, after_ok; };
static void c_refuse(void *arg)
{
    struct refuse_out *o = arg;
    struct resp r;
    struct cconn *a = cconnect(srv_port);
    o->stashed = a && csends(a, "GET /stash?busy HTTP/1.1\r\nHost: t\r\n\r\n") && wait_stash(1);
    /* The only slot is busy (not idle): a newcomer is turned away. */
    struct cconn *b = cconnect(srv_port);
    o->refused_closed = b && cwait_closed(b);
    cclose(b);
    cclose(a);
    (void)r;
}

TEST(max_connections_refuses_when_none_idle)
{
    static struct refuse_out o;
    struct http_options opt;
    memset(&o, 0, sizeof o);
    http_options_default(&opt);
    opt.max_connections = 1;
    REQUIRE(server_up(21020, &opt));
    CHECK(run_client(c_refuse, &o, 10000));
    CHECK(o.stashed);
    CHECK(o.refused_closed);
    CHECK_EQ_U(stats().refused_full, 1);
    CHECK_EQ_U(stats().evicted_idle, 0);
    server_down();
}

struct half_out { bool ok, closed; int n_ok; char bodies[8][16]; };
static void c_half_close(void *arg)
{
    struct half_out *o = arg;
    char req[2048] = "";
    static struct resp r;
    struct cconn *c = cconnect(srv_port);
    if (!c) return;
    for (int i = 0; i < 8; i++) {
        char one[64];
        snprintf(one, sizeof one, "GET /stash?%d HTTP/1.1\r\nHost: t\r\n\r\n", i);
        strcat(req, one);
    }
    strcat(req, "GET /stash?partial HTTP/1.1\r\nHost: t\r\nX-Cut: sh"); /* cut short by the EOF */
    o->ok = csends(c, req) && shutdown(c->fd, SHUT_WR) == 0;
    for (int i = 0; i < 8 && o->ok; i++) {
        if (!cread(c, &r, false)) { o->ok = false; break; }
        snprintf(o->bodies[i], sizeof o->bodies[i], "%.*s", (int)r.body_len, r.body);
        if (r.status == 200) o->n_ok++;
    }
    o->closed = o->ok && cwait_closed(c);
    cclose(c);
}

TEST(half_close_answers_held_back_requests)
{
    static struct half_out o;
    struct http_options opt;
    memset(&o, 0, sizeof o);
    http_options_default(&opt);
    opt.max_pipeline = 2;
    REQUIRE(server_up(21021, &opt));
    answer_reverse = false;
    uv_timer_init(loop, &answer_timer);
    uv_timer_start(&answer_timer, on_answer_tick, 3, 3);
    CHECK(run_client(c_half_close, &o, 10000));
    uv_close((uv_handle_t *)&answer_timer, NULL);
    CHECK(o.ok);
    CHECK_EQ_I(o.n_ok, 8);
    for (int i = 0; i < 8; i++) {
        char want[16];
        snprintf(want, sizeof want, "%d", i);
        CHECK_STR(o.bodies[i], want);
    }
    CHECK(o.closed);
    CHECK(max_outstanding <= 2);
    CHECK_EQ_U(stats().requests, 8);
    server_down();
}

/* Seeded mutations of valid requests (byte flips, insertions, cuts,
 * duplicated spans), each on its own connection, half-closed. Whatever
 * arrives, every response must be well-formed with an expected status, and
 * the connection must end. Replay one case with HTTP_FUZZ_SEED. */
static const char *const fuzz_seeds[] = {
    "GET /hello?x=1 HTTP/1.1\r\nHost: t\r\nAccept: */*\r\n\r\n",
    "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
    "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "HEAD /hello HTTP/1.1\r\nHost: t\r\nConnection: keep-alive\r\n\r\nGET /empty HTTP/1.0\r\n\r\n",
    "PUT /x HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
};
static uint64_t rng_state;
static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)rng_state;
}
static size_t mutate(char *out, size_t cap, uint64_t seed)
{
    rng_state = seed * 2654435761u + 1;
    const char *base = fuzz_seeds[rng() % (sizeof fuzz_seeds / sizeof *fuzz_seeds)];
    size_t n = strlen(base);
    memcpy(out, base, n);
    int edits = 1 + (int)(rng() % 4);
    for (int e = 0; e < edits && n > 0; e++) {
        size_t at = rng() % n;
        switch (rng() % 5) {
        case 0: out[at] = (char)rng(); break;
        case 1: if (n < cap - 1) { memmove(out + at + 1, out + at, n - at); out[at] = (char)rng(); n++; } break;
        case 2: n = at + 1; break;
        case 3: memmove(out + at, out + at + 1, n - at - 1); n--; break;
        default: {
            size_t len = 1 + rng() % 64;
            if (at + len > n) len = n - at;
            if (n + len < cap) { memmove(out + at + len, out + at, n - at); n += len; }
        }
        }
    }
    return n;
}

struct fuzz_out { int cases, bad_response, not_closed; uint64_t first_bad_seed; int statuses[600]; };
static uint64_t fuzz_seed0;
static void c_fuzz(void *arg)
{
    struct fuzz_out *o = arg;
    static struct resp r;
    static char req[4096];
    for (int i = 0; i < 200; i++) {
        uint64_t seed = fuzz_seed0 + (uint64_t)i;
        size_t n = mutate(req, sizeof req, seed);
        struct cconn *c = cconnect(srv_port);
        if (!c) { o->bad_response++; continue; }
        o->cases++;
        csend(c, req, n);
        shutdown(c->fd, SHUT_WR);
        bool bad = false;
        bool head = n > 5 && memcmp(req, "HEAD ", 5) == 0;
        for (int k = 0;; k++) {
            /* Only the first response can answer the HEAD; the server's own
             * rejections (400/413/431, then close) always carry their text. */
            bool as_head = head && k == 0;
            if (!cread(c, &r, as_head)) {
                if (c->len) bad = true; /* a partial response */
                break;
            }
            if (as_head && r.close_hdr && r.status >= 400 && r.status != 404 && r.status != 405 &&
                r.content_length > 0) {
                while (c->len < (size_t)r.content_length && cfill(c)) {}
                if (c->len >= (size_t)r.content_length) cconsume(c, (size_t)r.content_length);
            }
            if (r.status < 100 || r.status > 599) bad = true;
            else o->statuses[r.status]++;
        }
        /* The server must have closed the connection, not gone quiet. */
        if (!c->closed) bad = true;
        if (bad) {
            o->bad_response++;
            if (!o->first_bad_seed) {
                o->first_bad_seed = seed;
                fprintf(stderr, "  seed %llu sent %zu bytes:\n    ", (unsigned long long)seed, n);
                for (size_t k = 0; k < n; k++)
                    fprintf(stderr, req[k] >= 32 && req[k] < 127 ? "%c" : "\\x%02x", (unsigned char)req[k]);
                fprintf(stderr, "\n  and got back %zu unparsed bytes: %.*s\n", c->len, (int)c->len, c->buf);
            }
        }
        cclose(c);
    }
}

TEST(randomized_bad_input_never_hangs_or_crashes)
{
    static struct fuzz_out o;
    memset(&o, 0, sizeof o);
    const char *env = getenv("HTTP_FUZZ_SEED");
    fuzz_seed0 = env ? strtoull(env, NULL, 10) : 1;
    REQUIRE(server_up(21022, NULL));
    CHECK(run_client(c_fuzz, &o, 60000));
    CHECK_EQ_I(o.cases, 200);
    CHECK_EQ_I(o.bad_response, 0);
    if (o.bad_response) fprintf(stderr, "  replay: HTTP_FUZZ_SEED=%llu\n", (unsigned long long)o.first_bad_seed);
    CHECK(run_until(no_conns_open, 5000));
    int expected = 0;
    for (int st = 100; st < 600; st++) {
        if (!o.statuses[st]) continue;
        bool ok = st == 100 || st == 200 || st == 204 || st == 400 || st == 404 || st == 405 ||
                  st == 413 || st == 431;
        if (!ok) fprintf(stderr, "  unexpected status %d x%d\n", st, o.statuses[st]);
        else expected += o.statuses[st];
        CHECK(ok);
    }
    printf("  fuzz: 200 cases from seed %llu: %llu requests answered, %llu rejected 400, %d responses\n",
           (unsigned long long)fuzz_seed0, (unsigned long long)stats().requests,
           (unsigned long long)stats().rejected_400, expected);
    server_down();
}

struct gone_out { bool stashed; };
static void c_disconnect_rst(void *arg)
{
    struct gone_out *o = arg;
    struct cconn *c = cconnect(srv_port);
    if (!c) return;
    o->stashed = csends(c, "POST /stash?rst HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi") && wait_stash(1);
    cabort(c);
}
static void c_disconnect_fin(void *arg)
{
    struct gone_out *o = arg;
    struct cconn *c = cconnect(srv_port);
    if (!c) return;
    o->stashed = csends(c, "GET /stash?fin HTTP/1.1\r\nHost: t\r\n\r\nGET /stash?fin2 HTTP/1.1\r\nHost: t\r\n\r\n") &&
                 wait_stash(2);
    cclose(c);
}

TEST(client_gone_before_async_response)
{
    static struct gone_out o;
    memset(&o, 0, sizeof o);
    REQUIRE(server_up(21015, NULL));
    /* Reset: the connection closes while the handler holds the exchange,
     * which stays valid; answering it later discards the response. */
    CHECK(run_client(c_disconnect_rst, &o, 10000));
    CHECK(o.stashed);
    CHECK(run_until(no_conns_open, 5000));
    const struct http_request *r = http_exchange_request(stash[0]);
    CHECK_STR(r->query, "rst"); /* still readable */
    CHECK(r->body_len == 2 && memcmp(r->body, "hi", 2) == 0);
    http_respond(stash[0], 200, NULL, "late", 4);
    stash[0] = NULL;
    /* Half-close (FIN): the responses are still written, then it closes. */
    memset(&o, 0, sizeof o);
    CHECK(run_client(c_disconnect_fin, &o, 10000));
    CHECK(o.stashed);
    CHECK_EQ_U(stats().connections_open, 1);
    http_respond_take(stash[2], 200, NULL, strdup("second"), 6); /* waits for the first */
    stash[2] = NULL;
    http_respond(stash[1], 200, NULL, "first", 5);
    stash[1] = NULL;
    CHECK(run_until(no_conns_open, 5000));
    server_down();
}

struct stop_out { bool stashed, closed; };
static void c_stop(void *arg)
{
    struct stop_out *o = arg;
    struct cconn *a = cconnect(srv_port), *b = cconnect(srv_port);
    o->stashed = a && b && csends(a, "GET /stash?a HTTP/1.1\r\nHost: t\r\n\r\n") &&
                 csends(b, "GET /stash?b HTTP/1.1\r\nHost: t\r\n\r\nGET /stash?c HTTP/1.1\r\nHost: t\r\n\r\n") && wait_stash(3);
    cclose(b);
    cclose(a);
}

TEST(stop_with_pending_exchanges)
{
    static struct stop_out o;
    memset(&o, 0, sizeof o);
    REQUIRE(server_up(21016, NULL));
    CHECK(run_client(c_stop, &o, 10000));
    CHECK(o.stashed);
    /* Answer one before stopping so a write may be in flight too. */
    http_respond(stash[0], 200, NULL, "a", 1);
    stash[0] = NULL;
    stopped = false;
    http_server_stop(srv, on_stopped, &stopped);
    srv = NULL;
    CHECK(run_until(is_stopped, 5000));
    /* Still valid after the server is gone; answering discards. */
    const struct http_request *r = http_exchange_request(stash[2]);
    CHECK_STR(r->query, "c");
    http_respond(stash[1], 503, NULL, NULL, 0);
    stash[1] = NULL;
    http_respond_take(stash[2], 200, NULL, strdup("c"), 1);
    stash[2] = NULL;
}

TEST(start_errors_are_reported)
{
    char err[256] = "";
    struct http_server *s = NULL, *s2 = NULL;
    CHECK(http_server_start(loop, "nonsense", NULL, handler, NULL, &s, err, sizeof err) == -1);
    CHECK(strstr(err, "nonsense") != NULL);
    CHECK(http_server_start(loop, "127.0.0.1:99999", NULL, handler, NULL, &s, err, sizeof err) == -1);
    REQUIRE(http_server_start(loop, "127.0.0.1:21017", NULL, handler, NULL, &s, err, sizeof err) == 0);
    CHECK_EQ_I(http_server_port(s), 21017);
    err[0] = 0;
    CHECK(http_server_start(loop, "127.0.0.1:21017", NULL, handler, NULL, &s2, err, sizeof err) == -1);
    CHECK(strstr(err, "21017") != NULL && strstr(err, "in use") != NULL);
    stopped = false;
    http_server_stop(s, on_stopped, &stopped);
    CHECK(run_until(is_stopped, 5000));
    CHECK_STR(http_status_text(404), "Not Found");
    CHECK_STR(http_status_text(431), "Request Header Fields Too Large");
}

int main(void)
{
    loop = uv_default_loop();
    RUN(simple_get);
    RUN(keepalive_100_requests);
    RUN(pipelined_answered_in_order_despite_reverse_handler);
    RUN(pipeline_read_ahead_bounded);
    RUN(head_has_no_body_and_204_has_no_length);
    RUN(post_chunked_and_unknown_method);
    RUN(expect_100_continue);
    RUN(header_block_limit_431);
    RUN(body_limit_413);
    RUN(malformed_400_then_close);
    RUN(host_and_header_names_are_strict);
    RUN(forwarded_headers_count_only_from_trusted_proxies);
    RUN(body_below_min_rate_cuts_off);
    RUN(max_connections_evicts_oldest_slow_sender);
    RUN(connections_per_address_are_limited);
    RUN(connection_close_and_http10_keepalive);
    RUN(slowloris_cut_off);
    RUN(idle_timeout_closes);
    RUN(max_connections_evicts_longest_idle);
    RUN(client_gone_before_async_response);
    RUN(stop_with_pending_exchanges);
    RUN(start_errors_are_reported);
    RUN(body_timeout_cuts_off);
    RUN(unread_response_times_out);
    RUN(max_connections_refuses_when_none_idle);
    RUN(half_close_answers_held_back_requests);
    RUN(randomized_bad_input_never_hangs_or_crashes);
    RUN(final_response_lingers_until_client_closes);
    uv_run(loop, UV_RUN_NOWAIT);
    uv_loop_close(loop);
    return HARNESS_END();
}
