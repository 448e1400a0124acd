/*
 * fuzz_http.c — libFuzzer driver for HTTP request assembly (src/http/conn.c
 * over http-parser): request line, headers, Content-Length and chunked
 * bodies, the limits of SPEC §4, pipelined requests and the read-ahead
 * bound, unknown methods, Expect: 100-continue, EOF.
 *
 * The server is the real one (http_server_start on 127.0.0.1, port 0, with
 * small limits so the fuzzer reaches them); each run gives it one
 * connection made as on_connection makes it, over a socketpair, and hands
 * it the input as reads would: whole in one read, then again in up to 16
 * pieces cut where the input's first two bytes say, waiting (running the loop)
 * while the server does not read, as a socket would. Then the client's EOF,
 * and the loop runs until the connection is freed. The handler records
 * every request and answers it at once.
 *
 * Properties: every split of the same bytes gives the same requests (method,
 * path, query, headers, body, keep-alive) and the same refusal (400, 413,
 * 431); each request keeps the limits: header names are tokens, values
 * trimmed and without CR or LF, at most one Host, the header block within
 * max_header_bytes, the body within max_body_bytes and of its
 * Content-Length; the connection is always freed once the client is gone.
 */
#include "fuzz.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "http/internal.h"

#define FZ_HTTP_MAX_HEADER 1024
#define FZ_HTTP_MAX_BODY 512

static uv_loop_t fz_http_loop;
static struct http_server *fz_http_srv;

/* What one run saw: the requests, serialized. */
struct fz_http_record {
    char *buf;
    size_t len, cap;
    unsigned n;
};
static struct fz_http_record *fz_http_rec;

static void fz_http_put(struct fz_http_record *r, const void *p, size_t n)
{
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + n)
            cap *= 2;
        r->buf = realloc(r->buf, cap);
        FUZZ_CHECK(r->buf);
        r->cap = cap;
    }
    memcpy(r->buf + r->len, p, n);
    r->len += n;
}

static void fz_http_put_str(struct fz_http_record *r, const char *s, size_t n)
{
    fz_http_put(r, &n, sizeof n);
    fz_http_put(r, s, n);
}

static bool fz_http_tchar(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static void fz_http_handler(void *ctx, struct http_exchange *x)
{
    (void)ctx;
    const struct http_request *q = http_exchange_request(x);
    struct fz_http_record *r = fz_http_rec;
    FUZZ_CHECK(q->method && q->path && q->query && q->body);
    size_t ml = strlen(q->method);
    FUZZ_CHECK(ml >= 1 && ml <= 32);
    for (size_t i = 0; i < ml; i++)
        FUZZ_CHECK(fz_http_tchar((unsigned char)q->method[i]));
    FUZZ_CHECK(q->path[0] != 0);
    FUZZ_CHECK(q->n_headers <= 256);
    FUZZ_CHECK(q->body_len <= FZ_HTTP_MAX_BODY && q->body[q->body_len] == 0);
    FUZZ_CHECK(q->head == !strcmp(q->method, "HEAD"));

    size_t block = ml + strlen(q->path) + strlen(q->query);
    unsigned hosts = 0;
    bool chunked = false;
    const char *cl = NULL;
    size_t cl_len = 0;
    for (size_t i = 0; i < q->n_headers; i++) {
        const struct http_header *h = &q->headers[i];
        FUZZ_CHECK(h->name_len >= 1);
        for (size_t k = 0; k < h->name_len; k++)
            FUZZ_CHECK(fz_http_tchar((unsigned char)h->name[k]));
        if (h->value_len) {
            FUZZ_CHECK(h->value[0] != ' ' && h->value[0] != '\t');
            FUZZ_CHECK(h->value[h->value_len - 1] != ' ' && h->value[h->value_len - 1] != '\t');
        }
        FUZZ_CHECK(!memchr(h->value, '\r', h->value_len) && !memchr(h->value, '\n', h->value_len));
        block += h->name_len + h->value_len;
        if (h->name_len == 4 && !strncasecmp(h->name, "host", 4))
            hosts++;
        if (h->name_len == 17 && !strncasecmp(h->name, "transfer-encoding", 17) && h->value_len >= 7 &&
            !strncasecmp(h->value + h->value_len - 7, "chunked", 7))
            chunked = true;
        if (h->name_len == 14 && !strncasecmp(h->name, "content-length", 14)) {
            cl = h->value;
            cl_len = h->value_len;
        }
    }
    FUZZ_CHECK(hosts <= 1);
    FUZZ_CHECK(block <= FZ_HTTP_MAX_HEADER);
    if (cl && !chunked) {
        /* http-parser takes only digits (and refuses two different ones). */
        uint64_t v = 0;
        for (size_t i = 0; i < cl_len && v <= FZ_HTTP_MAX_BODY; i++)
            if (cl[i] >= '0' && cl[i] <= '9')
                v = v * 10 + (uint64_t)(cl[i] - '0');
        FUZZ_CHECK(v == q->body_len);
    }

    fz_http_put_str(r, q->method, ml);
    fz_http_put_str(r, q->path, strlen(q->path));
    fz_http_put_str(r, q->query, strlen(q->query));
    fz_http_put(r, &q->n_headers, sizeof q->n_headers);
    for (size_t i = 0; i < q->n_headers; i++) {
        fz_http_put_str(r, q->headers[i].name, q->headers[i].name_len);
        fz_http_put_str(r, q->headers[i].value, q->headers[i].value_len);
    }
    fz_http_put_str(r, q->body, q->body_len);
    bool ka = x->keep_alive;
    fz_http_put(r, &ka, sizeof ka);
    r->n++;
    http_respond(x, 200, "Content-Type: text/plain\r\n", "ok\n", 3);
}

static void fz_http_start(void)
{
    if (fz_http_srv)
        return;
    signal(SIGPIPE, SIG_IGN);
    FUZZ_CHECK(uv_loop_init(&fz_http_loop) == 0);
    struct http_options o;
    http_options_default(&o);
    o.max_header_bytes = FZ_HTTP_MAX_HEADER;
    o.max_body_bytes = FZ_HTTP_MAX_BODY;
    o.max_pipeline = 2; /* so read-ahead stops and resumes often */
    /* Time is not what this driver is about: no slow-client timeout may
     * fire because the machine paused the fuzzer for a second. */
    o.header_timeout_ms = o.body_timeout_ms = o.idle_timeout_ms = o.body_grace_ms = 24u * 3600 * 1000;
    char err[256];
    FUZZ_CHECK(http_server_start(&fz_http_loop, "127.0.0.1:0", &o, fz_http_handler, NULL, &fz_http_srv, err,
                                 sizeof err) == 0);
}

/* A connection on fd, started as on_connection (server.c) starts one. */
static struct http_conn *fz_http_conn(int fd)
{
    struct http_server *s = fz_http_srv;
    struct http_conn *c = calloc(1, sizeof *c);
    FUZZ_CHECK(c);
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    FUZZ_CHECK(uv_tcp_open(&c->tcp, fd) == 0);
    snprintf(c->peer, sizeof c->peer, "fuzz");
    http_conn_begin(c);
    return c;
}

/* Runs the loop once without blocking and reads what the server wrote. */
static void fz_http_turn(int peer)
{
    uv_run(&fz_http_loop, UV_RUN_NOWAIT);
    char sink[4096];
    while (read(peer, sink, sizeof sink) > 0) {
    }
}

/* One run: the input in pieces of the given sizes (0: whole). */
static void fz_http_run(const uint8_t *data, size_t size, uint16_t split, struct fz_http_record *r,
                        struct http_stats *st)
{
    struct http_server *s = fz_http_srv;
    struct http_stats before = s->stats;
    int sv[2];
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    fz_http_rec = r;
    struct http_conn *c = fz_http_conn(sv[0]);
    uint64_t alive = s->n_alive;
    uint32_t x = split | 1u;
    unsigned cuts = 1 + (split >> 12); /* at most 16 pieces: each costs turns of the loop */
    size_t off = 0;
    while (off < size && s->n_alive == alive) {
        /* A socket the server does not read keeps its bytes: run the loop
         * until the responses drain and it reads again, as long as it makes
         * progress (two requests a turn at the read-ahead bound). */
        for (int idle = 0; idle < 16 && s->n_alive == alive && !c->reading;) {
            uint64_t done = s->stats.requests + s->stats.writes;
            fz_http_turn(sv[1]);
            idle = s->n_alive == alive && s->stats.requests + s->stats.writes == done ? idle + 1 : 0;
        }
        if (s->n_alive != alive || !c->reading || c->closing)
            break;
        size_t n = size - off;
        if (split && cuts) {
            /* The next cut anywhere in what is left (a short piece half of
             * the time: request boundaries, single bytes). */
            x = x * 1103515245u + 12345u;
            size_t piece = 1 + (x >> 16) % ((x & 0x80000000u) ? 8 : n);
            if (piece < n)
                n = piece;
            cuts--;
        }
        /* As on_read (server.c) hands a read over. */
        if (c->lingering) {
            c->linger_bytes += n;
        } else {
            memcpy(s->rbuf, data + off, n);
            http_conn_input(c, s->rbuf, n);
        }
        off += n;
    }
    /* The client is done: EOF, and the connection must go. */
    FUZZ_CHECK(shutdown(sv[1], SHUT_WR) == 0);
    for (int i = 0; i < 1000 && s->n_alive == alive; i++)
        fz_http_turn(sv[1]);
    FUZZ_CHECK(s->n_alive == alive - 1);
    close(sv[1]);
    *st = s->stats;
    st->rejected_400 -= before.rejected_400;
    st->rejected_413 -= before.rejected_413;
    st->rejected_431 -= before.rejected_431;
    st->requests -= before.requests;
    FUZZ_CHECK(st->requests == r->n);
    FUZZ_CHECK(st->rejected_400 + st->rejected_413 + st->rejected_431 <= 1);
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    fz_http_start();
    uint16_t split = (uint16_t)(data[0] | data[1] << 8);
    data += 2;
    size -= 2;
    static struct fz_http_record whole, pieces;
    whole.len = whole.n = pieces.len = pieces.n = 0;
    struct http_stats a, b;
    fz_http_run(data, size, 0, &whole, &a);
    fz_http_run(data, size, split ? split : 1, &pieces, &b);
    FUZZ_CHECK(whole.n == pieces.n);
    FUZZ_CHECK(whole.len == pieces.len && (!whole.len || !memcmp(whole.buf, pieces.buf, whole.len)));
    FUZZ_CHECK(a.rejected_400 == b.rejected_400 && a.rejected_413 == b.rejected_413 &&
               a.rejected_431 == b.rejected_431);
    return 0;
}
