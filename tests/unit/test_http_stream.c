/*
 * test_http_stream.c — streamed responses (http_respond_start/_write/_end/
 * _abort) and the client's streaming mode (http_client_request_stream), over
 * real sockets on 127.0.0.1:240xx.
 *
 * Server tests: a client thread speaks raw HTTP with blocking sockets (5 s
 * timeouts) while the main thread runs the loop until the thread is done or
 * a deadline passes; checks are made after the thread joins. Client tests:
 * the streaming client and the server share the loop (no threads).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "../harness.h"
#include "../lib/uv_wait.h"
#include "http.h"
#include "http_client.h"

#define PORT_BASE 24100
#define QUEUE_BOUND (64 * 1024)
#define PIECE (16 * 1024)

static uv_loop_t *loop;
static struct http_server *srv;
static int port_next = PORT_BASE;
static int srv_port;

/* ---- producers ---------------------------------------------------------- */

/* /stash: held for the test to answer later. */
static struct http_exchange *stashed;

/* /flood?n=BYTES: a Content-Length body of n bytes, byte i = i % 251, written
 * in PIECE pieces as fast as back-pressure allows. */
struct flood {
    struct http_exchange *x;
    size_t total, sent, max_queued;
    int fulls, drains;
    bool gone, done;
};
static struct flood fl;
static atomic_bool flood_full_seen;

static void flood_pump(void)
{
    static char piece[PIECE];
    while (fl.sent < fl.total) {
        size_t n = fl.total - fl.sent < PIECE ? fl.total - fl.sent : PIECE;
        for (size_t i = 0; i < n; i++) piece[i] = (char)((fl.sent + i) % 251);
        int rc = http_respond_write(fl.x, piece, n);
        if (rc == HTTP_STREAM_GONE) { fl.gone = true; break; }
        fl.sent += n;
        size_t q = http_respond_queued(fl.x);
        if (q > fl.max_queued) fl.max_queued = q;
        if (rc == HTTP_STREAM_FULL) {
            fl.fulls++;
            atomic_store(&flood_full_seen, true);
            return; /* flood_drain goes on */
        }
    }
    http_respond_end(fl.x);
    fl.x = NULL;
    fl.done = true;
}

static void flood_drain(void *arg)
{
    (void)arg;
    fl.drains++;
    flood_pump();
}

/* /ticker: 1 KiB every 2 ms, chunked, until the client goes away. */
struct ticker {
    struct http_exchange *x;
    uv_timer_t t;
    bool running, gone;
    size_t sent;
};
static struct ticker tk;

static void ticker_closed(uv_handle_t *h) { (void)h; tk.running = false; }

static void ticker_tick(uv_timer_t *t)
{
    char piece[1024];
    memset(piece, 't', sizeof piece);
    int rc = http_respond_write(tk.x, piece, sizeof piece);
    if (rc == HTTP_STREAM_GONE) {
        tk.gone = true;
        http_respond_end(tk.x); /* frees the detached exchange */
        tk.x = NULL;
        uv_timer_stop(t);
        uv_close((uv_handle_t *)t, ticker_closed);
        return;
    }
    tk.sent += sizeof piece;
}

static int chunked_ended;
static struct http_exchange *held; /* /held: a stream started and left open */
static int len_answered;

static void handler(void *ctx, struct http_exchange *x)
{
    (void)ctx;
    const struct http_request *r = http_exchange_request(x);
    if (!strcmp(r->path, "/stash")) {
        stashed = x;
    } else if (!strcmp(r->path, "/chunked")) {
        http_respond_start(x, 200, "Content-Type: text/plain\r\n", -1);
        http_respond_write(x, "hello ", 6);
        http_respond_write(x, "streamed ", 9);
        http_respond_write(x, "world", 5);
        http_respond_end(x);
        chunked_ended++;
    } else if (!strcmp(r->path, "/held")) {
        http_respond_start(x, 200, NULL, -1);
        http_respond_write(x, "abc", 3);
        held = x;
    } else if (!strcmp(r->path, "/len")) {
        len_answered++;
        http_respond_start(x, 200, NULL, 10);
        http_respond_write(x, "01234", 5);
        http_respond_write(x, "56789xyz", 8); /* past Content-Length: cut off */
        http_respond_end(x);
    } else if (!strcmp(r->path, "/short")) {
        http_respond_start(x, 200, NULL, 100);
        http_respond_write(x, "0123456789", 10);
        http_respond_end(x); /* 90 bytes short: the connection is closed */
    } else if (!strcmp(r->path, "/abort")) {
        http_respond_start(x, 200, NULL, -1);
        http_respond_write(x, "partial", 7);
        http_respond_abort(x);
    } else if (!strcmp(r->path, "/nocontent")) {
        http_respond_start(x, 204, NULL, -1);
        CHECK(http_respond_write(x, "dropped", 7) == HTTP_STREAM_OK);
        http_respond_end(x);
    } else if (!strcmp(r->path, "/flood")) {
        memset(&fl, 0, sizeof fl);
        fl.x = x;
        fl.total = strtoull(r->query + 2, NULL, 10);
        http_respond_on_drain(x, flood_drain, NULL);
        http_respond_start(x, 200, NULL, (int64_t)fl.total);
        flood_pump();
    } else if (!strcmp(r->path, "/ticker")) {
        tk.x = x;
        tk.running = true;
        http_respond_start(x, 200, NULL, -1);
        uv_timer_init(loop, &tk.t);
        uv_timer_start(&tk.t, ticker_tick, 2, 2);
    } else {
        http_respond(x, 404, NULL, "not found\n", 10);
    }
}

static bool server_up(void)
{
    char addr[64], err[256];
    struct http_options o;
    http_options_default(&o);
    o.max_stream_queue = QUEUE_BOUND;
    srv_port = port_next++;
    snprintf(addr, sizeof addr, "127.0.0.1:%d", srv_port);
    stashed = NULL;
    chunked_ended = 0;
    held = NULL;
    len_answered = 0;
    memset(&fl, 0, sizeof fl);
    atomic_store(&flood_full_seen, false);
    if (http_server_start(loop, addr, &o, handler, NULL, &srv, err, sizeof err)) {
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
    stopped = false;
    http_server_stop(srv, on_stopped, &stopped);
    run_until(is_stopped, 5000);
    srv = NULL;
}

static bool no_conns(void)
{
    struct http_stats st;
    http_server_get_stats(srv, &st);
    return st.connections_open == 0;
}

/* ---- the raw client thread ------------------------------------------------ */

static int cconnect(int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = { 5, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (rcvbuf) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)srv_port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) { close(fd); return -1; }
    return fd;
}

static bool csend(int fd, const char *s)
{
    size_t n = strlen(s), off = 0;
    while (off < n) {
        ssize_t w = send(fd, s + off, n - off, MSG_NOSIGNAL);
        if (w <= 0) return false;
        off += (size_t)w;
    }
    return true;
}

/* Input read so far on one connection. */
struct cin {
    int fd;
    char *p;
    size_t len, cap;
    bool eof;
};

static bool cfill(struct cin *in)
{
    if (in->eof) return false;
    if (in->cap - in->len < 65536) {
        in->cap = in->cap ? in->cap * 2 : 131072;
        in->p = realloc(in->p, in->cap + 1);
    }
    ssize_t n = recv(in->fd, in->p + in->len, in->cap - in->len, 0);
    if (n <= 0) { in->eof = true; return false; }
    in->len += (size_t)n;
    in->p[in->len] = 0;
    return true;
}

static void cconsume(struct cin *in, size_t n)
{
    memmove(in->p, in->p + n, in->len - n);
    in->len -= n;
    in->p[in->len] = 0;
}

struct cresp {
    int status;
    char head[2048];
    char *body;
    size_t body_len;
    bool chunked, has_len, complete; /* complete: framing fully received */
};

static const char *hfind(const char *head, const char *name)
{
    size_t n = strlen(name);
    for (const char *l = strstr(head, "\r\n"); l; l = strstr(l + 2, "\r\n"))
        if (!strncasecmp(l + 2, name, n) && l[2 + n] == ':') return l + 3 + n;
    return NULL;
}

/* Reads one response. head_req: no body whatever the framing. A body with
 * neither Content-Length nor chunked coding runs to EOF. */
static bool cread(struct cin *in, struct cresp *r, bool head_req)
{
    memset(r, 0, sizeof *r);
    char *end;
    while (!in->p || !(end = strstr(in->p, "\r\n\r\n")))
        if (!cfill(in)) return false;
    size_t hl = (size_t)(end - in->p) + 4;
    if (hl >= sizeof r->head) return false;
    memcpy(r->head, in->p, hl);
    r->head[hl] = 0;
    cconsume(in, hl);
    r->status = atoi(r->head + 9);
    const char *te = hfind(r->head, "Transfer-Encoding"), *cl = hfind(r->head, "Content-Length");
    r->chunked = te && strstr(te, "chunked") == te + 1;
    r->has_len = cl != NULL;
    r->body = malloc(1);
    if (head_req || r->status == 204 || r->status == 304) { r->complete = true; return true; }
    if (r->chunked) {
        for (;;) {
            char *nl;
            while (!(nl = memmem(in->p, in->len, "\r\n", 2)))
                if (!cfill(in)) return true;
            size_t size = strtoul(in->p, NULL, 16);
            size_t need = (size_t)(nl - in->p) + 2 + size + 2;
            while (in->len < need)
                if (!cfill(in)) return true;
            if (size == 0) { cconsume(in, need); r->complete = true; return true; }
            r->body = realloc(r->body, r->body_len + size + 1);
            memcpy(r->body + r->body_len, nl + 2, size);
            r->body_len += size;
            cconsume(in, need);
        }
    }
    size_t want = r->has_len ? strtoul(cl + 1, NULL, 10) : (size_t)-1;
    if (r->has_len && want < (64u << 20)) r->body = realloc(r->body, want + 1); /* once, not per read */
    while (r->body_len < want) {
        if (!in->len && !cfill(in)) break;
        size_t n = in->len < want - r->body_len ? in->len : want - r->body_len;
        if (!r->has_len || want >= (64u << 20)) r->body = realloc(r->body, r->body_len + n + 1);
        memcpy(r->body + r->body_len, in->p, n);
        r->body_len += n;
        cconsume(in, n);
    }
    r->body[r->body_len] = 0;
    r->complete = r->has_len ? r->body_len == want : in->eof;
    return true;
}

static void cresp_free(struct cresp *r) { free(r->body); r->body = NULL; }

/* One client thread at a time: runs fn, then sets done. */
static atomic_bool client_done;
static void *(*client_fn)(void *);
static void *client_main(void *arg)
{
    client_fn(arg);
    atomic_store(&client_done, true);
    return NULL;
}
static bool is_client_done(void) { return atomic_load(&client_done); }
static void run_client(void *(*fn)(void *), void *arg)
{
    pthread_t th;
    atomic_store(&client_done, false);
    client_fn = fn;
    pthread_create(&th, NULL, client_main, arg);
    run_until(is_client_done, 20000);
    pthread_join(th, NULL);
}

/* ---- server tests ------------------------------------------------------------ */

static struct cresp r1, r2, r3;
static bool ok1, ok2, ok3;
static bool saw_eof;

static void *cl_framing(void *arg)
{
    (void)arg;
    struct cin in = { .fd = cconnect(0) };
    csend(in.fd, "GET /chunked HTTP/1.1\r\nHost: a\r\n\r\n");
    ok1 = cread(&in, &r1, false);
    csend(in.fd, "GET /len HTTP/1.1\r\nHost: a\r\n\r\n");
    ok2 = cread(&in, &r2, false);
    csend(in.fd, "GET /nocontent HTTP/1.1\r\nHost: a\r\n\r\n");
    ok3 = cread(&in, &r3, false);
    close(in.fd);
    free(in.p);
    return NULL;
}

TEST(chunked_and_content_length_on_one_connection)
{
    REQUIRE(server_up());
    run_client(cl_framing, NULL);
    CHECK(ok1 && r1.status == 200 && r1.chunked && !r1.has_len && r1.complete);
    CHECK(ok1 && r1.body_len == 20 && !memcmp(r1.body, "hello streamed world", 20));
    CHECK(hfind(r1.head, "Content-Type") != NULL);
    CHECK(ok2 && r2.status == 200 && r2.has_len && !r2.chunked && r2.complete);
    CHECK(ok2 && r2.body_len == 10 && !memcmp(r2.body, "0123456789", 10));
    /* The bytes written past Content-Length were not sent: the 204 that
     * follows is read cleanly, with no body or framing headers. */
    CHECK(ok3 && r3.status == 204 && !r3.chunked && !r3.has_len);
    cresp_free(&r1); cresp_free(&r2); cresp_free(&r3);
    server_down();
}

static void *cl_one_len(void *arg)
{
    (void)arg;
    struct cin in = { .fd = cconnect(0) };
    csend(in.fd, "GET /len HTTP/1.1\r\nHost: a\r\n\r\n");
    ok1 = cread(&in, &r1, false);
    close(in.fd);
    free(in.p);
    return NULL;
}

/* A head and the body that follows it in the same turn of the loop leave
 * in one write (what a proxy relaying its upstream does); a head whose body
 * is slow still leaves on its own, before the body (test_gateway). */
TEST(head_and_first_body_bytes_share_one_write)
{
    REQUIRE(server_up());
    struct http_stats before, after;
    http_server_get_stats(srv, &before);
    run_client(cl_one_len, NULL);
    http_server_get_stats(srv, &after);
    CHECK(ok1 && r1.status == 200 && r1.has_len && r1.complete && r1.body_len == 10);
    CHECK_EQ_U(after.writes - before.writes, 2); /* /len writes two pieces: the head rides with the first */
    cresp_free(&r1);
    server_down();
}

static void *cl_head(void *arg)
{
    (void)arg;
    struct cin in = { .fd = cconnect(0) };
    csend(in.fd, "HEAD /chunked HTTP/1.1\r\nHost: a\r\n\r\nHEAD /len HTTP/1.1\r\nHost: a\r\n\r\n"
                 "GET /len HTTP/1.1\r\nHost: a\r\n\r\n");
    ok1 = cread(&in, &r1, true);
    ok2 = cread(&in, &r2, true);
    ok3 = cread(&in, &r3, false);
    close(in.fd);
    free(in.p);
    return NULL;
}

TEST(head_sends_no_body)
{
    REQUIRE(server_up());
    run_client(cl_head, NULL);
    CHECK(ok1 && r1.status == 200 && r1.chunked);
    CHECK(ok2 && r2.status == 200 && strstr(r2.head, "Content-Length: 10\r\n"));
    /* Had either HEAD sent body bytes, this response would be garbled. */
    CHECK(ok3 && r3.status == 200 && r3.body_len == 10 && !memcmp(r3.body, "0123456789", 10));
    cresp_free(&r1); cresp_free(&r2); cresp_free(&r3);
    server_down();
}

static void *cl_http10(void *arg)
{
    (void)arg;
    struct cin in = { .fd = cconnect(0) };
    csend(in.fd, "GET /chunked HTTP/1.0\r\n\r\n");
    ok1 = cread(&in, &r1, false);
    close(in.fd);
    free(in.p);
    return NULL;
}

TEST(http10_gets_a_close_delimited_body)
{
    REQUIRE(server_up());
    run_client(cl_http10, NULL);
    CHECK(ok1 && r1.status == 200 && !r1.chunked && !r1.has_len && r1.complete);
    CHECK(hfind(r1.head, "Connection") && strstr(r1.head, "Connection: close\r\n"));
    CHECK(ok1 && r1.body_len == 20 && !memcmp(r1.body, "hello streamed world", 20));
    cresp_free(&r1);
    server_down();
}

static void *cl_truncated(void *arg)
{
    (void)arg;
    struct cin in = { .fd = cconnect(0) };
    csend(in.fd, "GET /short HTTP/1.1\r\nHost: a\r\n\r\n");
    ok1 = cread(&in, &r1, false);
    saw_eof = in.eof;
    close(in.fd);
    free(in.p);
    in = (struct cin){ .fd = cconnect(0) };
    csend(in.fd, "GET /abort HTTP/1.1\r\nHost: a\r\n\r\n");
    ok2 = cread(&in, &r2, false);
    saw_eof = saw_eof && in.eof;
    close(in.fd);
    free(in.p);
    return NULL;
}

TEST(short_and_aborted_bodies_close_the_connection)
{
    REQUIRE(server_up());
    run_client(cl_truncated, NULL);
    /* The client sees a truncated answer (and EOF), never a complete one. */
    CHECK(ok1 && r1.status == 200 && r1.body_len == 10 && !r1.complete);
    CHECK(ok2 && r2.status == 200 && r2.chunked && !r2.complete && r2.body_len == 7);
    CHECK(saw_eof);
    CHECK(run_until(no_conns, 3000));
    cresp_free(&r1); cresp_free(&r2);
    server_down();
}

static void *cl_pipeline(void *arg)
{
    (void)arg;
    struct cin in = { .fd = cconnect(0) };
    csend(in.fd, "GET /stash HTTP/1.1\r\nHost: a\r\n\r\nGET /chunked HTTP/1.1\r\nHost: a\r\n\r\n"
                 "GET /len HTTP/1.1\r\nHost: a\r\n\r\n");
    ok1 = cread(&in, &r1, false);
    ok2 = cread(&in, &r2, false);
    ok3 = cread(&in, &r3, false);
    close(in.fd);
    free(in.p);
    return NULL;
}

static bool stream_done_behind_stash(void) { return stashed && chunked_ended == 1; }

TEST(pipelined_stream_waits_behind_a_slow_response)
{
    REQUIRE(server_up());
    pthread_t th;
    atomic_store(&client_done, false);
    client_fn = cl_pipeline;
    pthread_create(&th, NULL, client_main, NULL);
    /* The streamed response is complete while the first is unanswered. */
    CHECK(run_until(stream_done_behind_stash, 5000));
    if (stashed) http_respond(stashed, 200, NULL, "first", 5);
    stashed = NULL;
    run_until(is_client_done, 10000);
    pthread_join(th, NULL);
    CHECK(ok1 && r1.status == 200 && r1.body_len == 5 && !memcmp(r1.body, "first", 5));
    CHECK(ok2 && r2.chunked && r2.complete && r2.body_len == 20 && !memcmp(r2.body, "hello streamed world", 20));
    CHECK(ok3 && r3.body_len == 10 && !memcmp(r3.body, "0123456789", 10));
    cresp_free(&r1); cresp_free(&r2); cresp_free(&r3);
    server_down();
}

static void *cl_pipeline_behind_stream(void *arg)
{
    (void)arg;
    struct cin in = { .fd = cconnect(0) };
    csend(in.fd, "GET /held HTTP/1.1\r\nHost: a\r\n\r\nGET /len HTTP/1.1\r\nHost: a\r\n\r\n");
    ok1 = cread(&in, &r1, false);
    ok2 = cread(&in, &r2, false);
    close(in.fd);
    free(in.p);
    return NULL;
}

static bool held_and_next_answered(void) { return held && len_answered == 1; }

TEST(response_behind_an_open_stream_waits_for_its_end)
{
    REQUIRE(server_up());
    pthread_t th;
    atomic_store(&client_done, false);
    client_fn = cl_pipeline_behind_stream;
    pthread_create(&th, NULL, client_main, NULL);
    /* The second response is ready while the stream before it is open. */
    CHECK(run_until(held_and_next_answered, 5000));
    if (held) {
        CHECK(http_respond_write(held, "def", 3) == HTTP_STREAM_OK);
        http_respond_end(held);
        held = NULL;
    }
    run_until(is_client_done, 10000);
    pthread_join(th, NULL);
    CHECK(ok1 && r1.chunked && r1.complete && r1.body_len == 6 && !memcmp(r1.body, "abcdef", 6));
    CHECK(ok2 && r2.complete && r2.body_len == 10 && !memcmp(r2.body, "0123456789", 10));
    cresp_free(&r1); cresp_free(&r2);
    server_down();
}

static bool pattern_ok(const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)b[i] != (unsigned char)(i % 251)) return false;
    return true;
}

#define FLOOD_BYTES (24u << 20)

static void *cl_flood(void *arg)
{
    (void)arg;
    struct cin in = { .fd = cconnect(8192) };
    char req[128];
    snprintf(req, sizeof req, "GET /flood?n=%u HTTP/1.1\r\nHost: a\r\n\r\n", FLOOD_BYTES);
    csend(in.fd, req);
    /* Read nothing until the server has had to hold back (a condition with
     * a deadline): then the bound, not the kernel, limits what is queued. */
    for (int i = 0; i < 5000 && !atomic_load(&flood_full_seen); i++) usleep(1000);
    ok1 = cread(&in, &r1, false);
    close(in.fd);
    free(in.p);
    return NULL;
}

TEST(back_pressure_bounds_the_queue)
{
    REQUIRE(server_up());
    run_client(cl_flood, NULL);
    CHECK(fl.done && !fl.gone && fl.sent == FLOOD_BYTES);
    CHECK(fl.fulls > 0);
    CHECK_EQ_I(fl.drains, fl.fulls);
    /* FULL is returned once the bound is reached, so at most one piece more. */
    CHECK(fl.max_queued <= QUEUE_BOUND + PIECE);
    CHECK(ok1 && r1.complete && r1.body_len == FLOOD_BYTES && pattern_ok(r1.body, r1.body_len));
    fprintf(stderr, "  flood: %u bytes, paused %d times, most queued %zu (bound %d)\n", FLOOD_BYTES, fl.fulls,
            fl.max_queued, QUEUE_BOUND);
    cresp_free(&r1);
    server_down();
}

static void reset_close(int fd)
{
    struct linger lg = { 1, 0 };
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

static void *cl_ticker_quit(void *arg)
{
    (void)arg;
    struct cin in = { .fd = cconnect(0) };
    csend(in.fd, "GET /ticker HTTP/1.1\r\nHost: a\r\n\r\n");
    while (in.len < 8192 && cfill(&in)) {}
    ok1 = in.len >= 8192;
    reset_close(in.fd);
    free(in.p);
    return NULL;
}

static bool ticker_over(void) { return tk.gone && !tk.running; }

TEST(client_gone_mid_stream)
{
    REQUIRE(server_up());
    memset(&tk, 0, sizeof tk);
    run_client(cl_ticker_quit, NULL);
    CHECK(ok1);
    /* The producer learns from its next writes, frees with end, and
     * nothing is left open (ASan checks the rest). */
    CHECK(run_until(ticker_over, 5000));
    CHECK(run_until(no_conns, 3000));
    server_down();
}

static void *cl_flood_quit(void *arg)
{
    (void)arg;
    struct cin in = { .fd = cconnect(8192) };
    csend(in.fd, "GET /flood?n=33554432 HTTP/1.1\r\nHost: a\r\n\r\n");
    for (int i = 0; i < 5000 && !atomic_load(&flood_full_seen); i++) usleep(1000);
    ok1 = atomic_load(&flood_full_seen);
    reset_close(in.fd);
    free(in.p);
    return NULL;
}

static bool flood_over(void) { return fl.done; }

TEST(client_gone_while_producer_paused)
{
    REQUIRE(server_up());
    run_client(cl_flood_quit, NULL);
    CHECK(ok1);
    /* The paused producer is woken by the drain callback, sees GONE, ends. */
    CHECK(run_until(flood_over, 5000));
    CHECK(fl.gone);
    CHECK(run_until(no_conns, 3000));
    server_down();
}

/* ---- client streaming mode ---------------------------------------------------- */

static struct http_client *hc;

struct sres {
    struct http_client_req *req;
    int status, err, dones, heads;
    bool has_ctype;
    char *body;
    size_t body_len, body_cap;
    bool pause_each, cancel_first;
    int pauses;
    uv_timer_t resume;
};
static struct sres sr;

static void s_head(void *arg, int status, const struct http_header *h, size_t n)
{
    struct sres *s = arg;
    s->heads++;
    s->status = status;
    for (size_t i = 0; i < n; i++)
        if (h[i].name_len == 12 && !strncasecmp(h[i].name, "content-type", 12)) s->has_ctype = true;
}

static void s_resume(uv_timer_t *t)
{
    struct sres *s = t->data;
    http_client_resume(s->req);
}

static void s_body(void *arg, const char *data, size_t len)
{
    struct sres *s = arg;
    if (s->cancel_first) {
        http_client_cancel(s->req);
        s->req = NULL;
        return;
    }
    if (s->body_len + len + 1 > s->body_cap) {
        s->body_cap = (s->body_len + len + 1) * 2;
        s->body = realloc(s->body, s->body_cap);
    }
    memcpy(s->body + s->body_len, data, len);
    s->body_len += len;
    if (s->pause_each) {
        s->pauses++;
        http_client_pause(s->req);
        uv_timer_start(&s->resume, s_resume, 1, 0);
    }
}

static void s_done(void *arg, int err)
{
    struct sres *s = arg;
    s->dones++;
    s->err = err;
    s->req = NULL;
}

static const struct http_client_stream_cbs scbs = { s_head, s_body, s_done };

static bool s_finished(void) { return sr.dones > 0; }

static void client_up(void)
{
    REQUIRE(server_up());
    http_client_create(loop, NULL, &hc);
    free(sr.body);
    memset(&sr, 0, sizeof sr);
    uv_timer_init(loop, &sr.resume);
    sr.resume.data = &sr;
}

static void client_down(void)
{
    uv_close((uv_handle_t *)&sr.resume, NULL);
    http_client_destroy(hc);
    hc = NULL;
    server_down();
    free(sr.body);
    sr.body = NULL;
}

static int stream_get(const char *method, const char *target)
{
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", srv_port);
    return http_client_request_stream(hc, addr, method, target, NULL, NULL, 0, 5000, &scbs, &sr, &sr.req);
}

TEST(client_streams_a_chunked_answer)
{
    client_up();
    REQUIRE(stream_get("GET", "/chunked") == HTTPC_OK);
    CHECK(run_until(s_finished, 5000));
    CHECK_EQ_I(sr.dones, 1);
    CHECK_EQ_I(sr.heads, 1);
    CHECK(sr.err == HTTPC_OK && sr.status == 200 && sr.has_ctype);
    CHECK(sr.body_len == 20 && !memcmp(sr.body, "hello streamed world", 20));
    /* HEAD: a head and no body, whatever the framing says. */
    free(sr.body);
    sr.body = NULL;
    sr.body_len = sr.body_cap = 0;
    sr.dones = sr.heads = 0;
    REQUIRE(stream_get("HEAD", "/len") == HTTPC_OK);
    CHECK(run_until(s_finished, 5000));
    CHECK(sr.err == HTTPC_OK && sr.heads == 1 && sr.status == 200 && sr.body_len == 0);
    client_down();
}

TEST(client_pause_and_resume)
{
    client_up();
    sr.pause_each = true;
    REQUIRE(stream_get("GET", "/flood?n=3000000") == HTTPC_OK);
    CHECK(run_until(s_finished, 15000));
    CHECK(sr.err == HTTPC_OK && sr.status == 200);
    CHECK(sr.body_len == 3000000 && pattern_ok(sr.body, sr.body_len));
    CHECK(sr.pauses > 1);
    /* The server had to hold back while the client was paused. */
    CHECK(fl.done && fl.fulls > 0);
    client_down();
}

TEST(client_cancel_mid_body)
{
    client_up();
    sr.cancel_first = true;
    REQUIRE(stream_get("GET", "/flood?n=33554432") == HTTPC_OK);
    /* No callback after the cancel; the server sees the connection go and
     * its producer stops. */
    CHECK(run_until(flood_over, 10000));
    CHECK(fl.gone);
    CHECK_EQ_I(sr.dones, 0);
    CHECK_EQ_I(sr.heads, 1);
    client_down();
}

TEST(client_reports_a_cut_short_answer)
{
    client_up();
    REQUIRE(stream_get("GET", "/abort") == HTTPC_OK);
    CHECK(run_until(s_finished, 5000));
    CHECK_EQ_I(sr.heads, 1);
    CHECK(sr.err == HTTPC_ERESET);
    CHECK(sr.body_len == 7 && !memcmp(sr.body, "partial", 7));
    client_down();
}

int main(void)
{
    loop = uv_default_loop();
    RUN(chunked_and_content_length_on_one_connection);
    RUN(head_and_first_body_bytes_share_one_write);
    RUN(head_sends_no_body);
    RUN(http10_gets_a_close_delimited_body);
    RUN(short_and_aborted_bodies_close_the_connection);
    RUN(pipelined_stream_waits_behind_a_slow_response);
    RUN(response_behind_an_open_stream_waits_for_its_end);
    RUN(back_pressure_bounds_the_queue);
    RUN(client_gone_mid_stream);
    RUN(client_gone_while_producer_paused);
    RUN(client_streams_a_chunked_answer);
    RUN(client_pause_and_resume);
    RUN(client_cancel_mid_body);
    RUN(client_reports_a_cut_short_answer);
    uv_run(loop, UV_RUN_NOWAIT);
    return HARNESS_END();
}
