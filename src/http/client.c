/*
 * client.c — the asynchronous HTTP/1.1 client (include/http_client.h):
 * keep-alive pools per upstream, one request per connection at a time,
 * a deadline per request, answers parsed by Debian's http-parser.
 */
#include "http_client.h"

#include <http_parser.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sys/cluster_file.h"

struct hc_conn;

struct hc_upstream {
    char addr[CLUSTER_ADDR_MAX];
    char host[256];
    uint16_t port;
    struct hc_conn *idle;       /* connections ready for reuse */
    unsigned n_idle;
    struct hc_upstream *next;
};

struct http_client_req {
    struct http_client *c;
    struct hc_upstream *up;
    char *wire;                 /* the whole request, ready to write */
    size_t wire_len;
    http_client_cb cb;
    void *arg;
    /* Streaming mode (http_client_request_stream): the answer is handed
     * over as it arrives instead of being buffered. */
    bool stream;
    struct http_client_stream_cbs scb;
    bool got_head;              /* on_head called: the deadline is now per read */
    bool paused;                /* reading stopped by http_client_pause */
    bool cancelled;             /* no more callbacks */
    unsigned timeout_ms;
    uv_timer_t timer;
    int early_err;              /* failed before any I/O: reported through the timer */
    struct hc_conn *conn;
    bool retried;
    bool finished;
    bool head;                  /* a HEAD request: the answer has no body, whatever its Content-Length */
    uv_getaddrinfo_t resolve;
    /* The name is being resolved (on the thread pool, which writes into
     * resolve): r is freed only once both the resolution has called back
     * and the timer's handle has closed, whichever is last. */
    bool resolving;
    bool timer_closed;
    struct http_client_req *next, *prev; /* all requests in flight */
};

struct hc_conn {
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t write;
    struct http_client *c;
    struct hc_upstream *up;
    struct http_client_req *req;         /* NULL while idle */
    http_parser parser;
    bool reused;
    bool got_bytes;             /* of the current answer */
    bool complete;
    bool closing;
    bool pooled;
    uint64_t idle_since;
    struct hc_conn *next_idle;
    /* The answer being read. */
    char *hbuf;                 /* "name\0value\0" ... */
    size_t hlen, hcap;
    size_t *hoff;               /* offsets of names and values, in pairs */
    size_t n_hoff, cap_hoff;
    bool in_value;
    char *body;
    size_t body_len, body_cap;
};

struct http_client {
    uv_loop_t *loop;
    struct http_client_options o;
    struct hc_upstream *ups;
    struct http_client_req *reqs;
    uv_timer_t sweep;
    bool destroying;
    char slab[65536];           /* read buffer: the loop thread reads one at a time */
};

const char *http_client_strerror(int err)
{
    switch (err) {
    case HTTPC_OK: return "ok";
    case HTTPC_ECONNECT: return "cannot connect";
    case HTTPC_ETIMEOUT: return "timed out";
    case HTTPC_ERESET: return "connection reset";
    case HTTPC_EPROTO: return "bad HTTP answer";
    case HTTPC_ENOMEM: return "out of memory";
    case HTTPC_ECLOSED: return "client closed";
    default: return "unknown error";
    }
}

void http_client_options_default(struct http_client_options *o)
{
    *o = (struct http_client_options){ .max_idle_per_upstream = 32, .max_response_bytes = 4u << 20,
                                       .idle_timeout_ms = 30000 };
}

/* ---- Requests ------------------------------------------------------------------ */

static void conn_close(struct hc_conn *k);
static int conn_start(struct http_client_req *r);

static void req_free(struct http_client_req *r)
{
    free(r->wire);
    free(r);
}

static void req_free_cb(uv_handle_t *h)
{
    struct http_client_req *r = h->data;
    r->timer_closed = true;
    if (!r->resolving)
        req_free(r); /* else resolved_cb frees it */
}

/* Ends r once: calls back and frees (after its timer handle closes). */
static void req_finish(struct http_client_req *r, int err, const struct http_client_response *resp)
{
    if (r->finished)
        return;
    r->finished = true;
    if (r->prev)
        r->prev->next = r->next;
    else
        r->c->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    uv_timer_stop(&r->timer);
    if (r->resolving)
        uv_cancel((uv_req_t *)&r->resolve); /* if not started yet; resolved_cb runs either way */
    if (r->conn) {
        r->conn->req = NULL;
        r->conn = NULL;
    }
    if (r->cancelled)
        ;
    else if (r->stream)
        r->scb.on_done(r->arg, err);
    else
        r->cb(r->arg, err, resp);
    uv_close((uv_handle_t *)&r->timer, req_free_cb);
}

static void req_timeout(uv_timer_t *t)
{
    struct http_client_req *r = t->data;
    struct hc_conn *k = r->conn;
    req_finish(r, r->early_err ? r->early_err : HTTPC_ETIMEOUT, NULL);
    if (k)
        conn_close(k); /* its answer, if any, would be for a request nobody awaits */
}

/* ---- Connections ----------------------------------------------------------------- */

static void conn_free_cb(uv_handle_t *h)
{
    struct hc_conn *k = h->data;
    free(k->hbuf);
    free(k->hoff);
    free(k->body);
    free(k);
}

static void idle_remove(struct hc_conn *k)
{
    if (!k->pooled)
        return;
    for (struct hc_conn **p = &k->up->idle; *p; p = &(*p)->next_idle)
        if (*p == k) {
            *p = k->next_idle;
            k->up->n_idle--;
            break;
        }
    k->pooled = false;
}

static void conn_close(struct hc_conn *k)
{
    if (k->closing)
        return;
    k->closing = true;
    idle_remove(k);
    if (k->req) {
        k->req->conn = NULL;
        k->req = NULL;
    }
    uv_close((uv_handle_t *)&k->tcp, conn_free_cb);
}

static void reset_answer(struct hc_conn *k)
{
    k->hlen = 0;
    k->n_hoff = 0;
    k->in_value = false;
    k->body_len = 0;
    k->got_bytes = false;
    k->complete = false;
    http_parser_init(&k->parser, HTTP_RESPONSE);
    k->parser.data = k;
}

static int grow(char **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 1024;
    while (c < need)
        c *= 2;
    char *g = realloc(*p, c);
    if (!g)
        return -1;
    *p = g;
    *cap = c;
    return 0;
}

static int hpush(struct hc_conn *k, const char *at, size_t len, bool value)
{
    if (k->hlen + len + 2 > 64 * 1024)
        return -1;
    if (value != k->in_value || k->n_hoff == 0) {
        /* A new name or value starts: terminate the previous one. */
        if (grow(&k->hbuf, &k->hcap, k->hlen + 1))
            return -1;
        if (k->n_hoff)
            k->hbuf[k->hlen++] = 0;
        if (k->n_hoff == k->cap_hoff) {
            size_t c = k->cap_hoff ? k->cap_hoff * 2 : 32;
            size_t *g = realloc(k->hoff, c * sizeof *g);
            if (!g)
                return -1;
            k->hoff = g;
            k->cap_hoff = c;
        }
        k->hoff[k->n_hoff++] = k->hlen;
        k->in_value = value;
    }
    if (grow(&k->hbuf, &k->hcap, k->hlen + len + 1))
        return -1;
    memcpy(k->hbuf + k->hlen, at, len);
    k->hlen += len;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    return hpush(p->data, at, len, false);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    return hpush(p->data, at, len, true);
}

/* The header array of the answer being read (a calloc'd array pointing
 * into k->hbuf, or NULL if there are none); -1 if out of memory. */
static int answer_headers(struct hc_conn *k, struct http_header **out, size_t *n)
{
    if (grow(&k->hbuf, &k->hcap, k->hlen + 1) == 0)
        k->hbuf[k->hlen] = 0; /* terminates the last value */
    size_t n_headers = k->n_hoff / 2;
    struct http_header *hs = n_headers ? calloc(n_headers, sizeof *hs) : NULL;
    if (n_headers && !hs)
        return -1;
    for (size_t i = 0; i < n_headers; i++) {
        hs[i].name = k->hbuf + k->hoff[2 * i];
        hs[i].name_len = strlen(hs[i].name);
        hs[i].value = k->hbuf + k->hoff[2 * i + 1];
        hs[i].value_len = strlen(hs[i].value);
    }
    *out = hs;
    *n = n_headers;
    return 0;
}

/* After a streaming callback: stop parsing if it cancelled the request. */
static bool stream_gone(struct hc_conn *k, struct http_client_req *r)
{
    return k->closing || k->req != r || r->finished;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct hc_conn *k = p->data;
    struct http_client_req *r = k->req;
    if (r && r->stream) {
        r->scb.on_body(r->arg, at, len);
        return stream_gone(k, r) ? -1 : 0;
    }
    if (k->body_len + len > k->c->o.max_response_bytes || grow(&k->body, &k->body_cap, k->body_len + len + 1))
        return -1;
    memcpy(k->body + k->body_len, at, len);
    k->body_len += len;
    return 0;
}

/* Returning 1 tells http_parser the response has no body (RFC 9112 §6.3:
 * a response to HEAD never has one), instead of waiting for Content-Length
 * bytes that will never come. */
static int on_headers_complete(http_parser *p)
{
    struct hc_conn *k = p->data;
    struct http_client_req *r = k->req;
    if (r && r->stream) {
        struct http_header *hs;
        size_t n;
        if (answer_headers(k, &hs, &n) < 0)
            return -1; /* read_cb reports HTTPC_EPROTO */
        r->got_head = true;
        /* From here on the deadline is for progress, not for the whole
         * answer: a long body may take as long as it keeps moving. */
        uv_timer_start(&r->timer, req_timeout, r->timeout_ms, 0);
        r->scb.on_head(r->arg, (int)k->parser.status_code, hs, n);
        free(hs);
        if (stream_gone(k, r))
            return -1;
    }
    return r && r->head ? 1 : 0;
}

static int on_message_complete(http_parser *p)
{
    struct hc_conn *k = p->data;
    k->complete = true;
    http_parser_pause(p, 1); /* one answer per request: the rest waits */
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void deliver(struct hc_conn *k)
{
    struct http_client_req *r = k->req;
    bool keep = http_should_keep_alive(&k->parser) && !k->c->destroying;
    bool paused = r->paused;
    if (r->stream) {
        req_finish(r, HTTPC_OK, NULL);
    } else {
        struct http_header *hs;
        size_t n_headers;
        if (answer_headers(k, &hs, &n_headers) < 0) {
            req_finish(r, HTTPC_ENOMEM, NULL);
            conn_close(k);
            return;
        }
        if (grow(&k->body, &k->body_cap, k->body_len + 1) == 0)
            k->body[k->body_len] = 0;
        struct http_client_response resp = { (int)k->parser.status_code, hs, n_headers,
                                             k->body ? k->body : "", k->body_len };
        req_finish(r, HTTPC_OK, &resp);
        free(hs);
    }
    /* A pooled connection reads, to notice the server closing it. */
    if (paused && !k->closing && uv_read_start((uv_stream_t *)&k->tcp, alloc_cb, read_cb))
        keep = false;
    if (keep && !k->closing && k->up->n_idle < k->c->o.max_idle_per_upstream) {
        reset_answer(k);
        k->reused = true;
        k->pooled = true;
        k->idle_since = uv_now(k->c->loop);
        k->next_idle = k->up->idle;
        k->up->idle = k;
        k->up->n_idle++;
    } else {
        conn_close(k);
    }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct hc_conn *k = h->data;
    (void)suggested;
    buf->base = k->c->slab;
    buf->len = sizeof k->c->slab;
}

/* A pooled connection the server had closed: the request never reached
 * it, so it is sent once more on a fresh connection. */
static bool retry_fresh(struct hc_conn *k, struct http_client_req *r)
{
    if (k->got_bytes || !k->reused || r->retried)
        return false;
    r->retried = true;
    conn_close(k);
    int rc = conn_start(r);
    if (rc)
        req_finish(r, rc, NULL);
    return true;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct hc_conn *k = s->data;
    if (nread == 0 || k->closing)
        return;
    struct http_client_req *r = k->req;
    if (nread < 0 || !r) {
        /* Closed by the server (or bytes while idle: nothing we asked for). */
        if (r && !retry_fresh(k, r)) {
            /* http-parser ends a body delimited by EOF on a 0-length execute. */
            if (!k->complete)
                http_parser_execute(&k->parser, &parser_settings, NULL, 0);
            if (k->complete) {
                deliver(k);
                return;
            }
            req_finish(r, HTTPC_ERESET, NULL);
        }
        conn_close(k);
        return;
    }
    k->got_bytes = true;
    if (r->stream && r->got_head && !r->paused)
        uv_timer_start(&r->timer, req_timeout, r->timeout_ms, 0);
    size_t used = http_parser_execute(&k->parser, &parser_settings, buf->base, (size_t)nread);
    if (k->complete) {
        deliver(k);
        return;
    }
    if (HTTP_PARSER_ERRNO(&k->parser) != HPE_OK || used != (size_t)nread) {
        req_finish(r, HTTPC_EPROTO, NULL);
        conn_close(k);
    }
}

static void write_cb(uv_write_t *w, int status)
{
    struct hc_conn *k = w->data;
    struct http_client_req *r = k->req;
    if (!status || k->closing || !r)
        return;
    if (!retry_fresh(k, r)) {
        req_finish(r, HTTPC_ERESET, NULL);
        conn_close(k);
    }
}

static void conn_send(struct hc_conn *k, struct http_client_req *r)
{
    k->req = r;
    r->conn = k;
    reset_answer(k);
    uv_buf_t b = uv_buf_init(r->wire, (unsigned)r->wire_len);
    k->write.data = k;
    if (uv_write(&k->write, (uv_stream_t *)&k->tcp, &b, 1, write_cb)) {
        if (!retry_fresh(k, r)) {
            req_finish(r, HTTPC_ERESET, NULL);
            conn_close(k);
        }
    }
}

static void connect_cb(uv_connect_t *cr, int status)
{
    struct hc_conn *k = cr->data;
    struct http_client_req *r = k->req;
    if (k->closing)
        return;
    if (status || !r) {
        if (r)
            req_finish(r, HTTPC_ECONNECT, NULL);
        conn_close(k); /* or: the request timed out while we connected */
        return;
    }
    uv_tcp_nodelay(&k->tcp, 1);
    uv_read_start((uv_stream_t *)&k->tcp, alloc_cb, read_cb);
    conn_send(k, r);
}

static void conn_dial(struct http_client_req *r, const struct sockaddr *sa)
{
    struct hc_conn *k = calloc(1, sizeof *k);
    if (!k) {
        req_finish(r, HTTPC_ENOMEM, NULL);
        return;
    }
    k->c = r->c;
    k->up = r->up;
    uv_tcp_init(r->c->loop, &k->tcp);
    k->tcp.data = k;
    k->connect.data = k;
    k->req = r; /* reserved: the request is written once connected */
    r->conn = k;
    if (uv_tcp_connect(&k->connect, &k->tcp, sa, connect_cb)) {
        conn_close(k);
        req_finish(r, HTTPC_ECONNECT, NULL);
    }
}

static void resolved_cb(uv_getaddrinfo_t *g, int status, struct addrinfo *res)
{
    struct http_client_req *r = g->data;
    r->resolving = false;
    if (r->finished) { /* cancelled, timed out or its client destroyed meanwhile */
        uv_freeaddrinfo(res);
        if (r->timer_closed)
            req_free(r);
        return;
    }
    if (status || !res) {
        uv_freeaddrinfo(res);
        req_finish(r, HTTPC_ECONNECT, NULL);
        return;
    }
    conn_dial(r, res->ai_addr);
    uv_freeaddrinfo(res);
}

/* Gives r a connection: a pooled one, or a new one (resolving the name). */
static int conn_start(struct http_client_req *r)
{
    struct hc_upstream *up = r->up;
    if (up->idle) {
        struct hc_conn *k = up->idle;
        idle_remove(k);
        conn_send(k, r);
        return 0;
    }
    struct sockaddr_storage ss;
    if (uv_ip4_addr(up->host, up->port, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(up->host, up->port, (struct sockaddr_in6 *)&ss) == 0) {
        conn_dial(r, (const struct sockaddr *)&ss);
        return 0;
    }
    char port[8];
    snprintf(port, sizeof port, "%u", up->port);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    r->resolve.data = r;
    if (uv_getaddrinfo(r->c->loop, &r->resolve, resolved_cb, up->host, port, &hints))
        return HTTPC_ECONNECT;
    r->resolving = true;
    return 0;
}

/* ---- The client ---------------------------------------------------------------- */

static void sweep_idle(uv_timer_t *t)
{
    struct http_client *c = t->data;
    uint64_t now = uv_now(c->loop);
    for (struct hc_upstream *up = c->ups; up; up = up->next)
        for (struct hc_conn *k = up->idle, *next; k; k = next) {
            next = k->next_idle;
            if (now - k->idle_since >= c->o.idle_timeout_ms)
                conn_close(k);
        }
}

int http_client_create(uv_loop_t *loop, const struct http_client_options *o, struct http_client **out)
{
    struct http_client *c = calloc(1, sizeof *c);
    if (!c)
        return HTTPC_ENOMEM;
    c->loop = loop;
    if (o)
        c->o = *o;
    else
        http_client_options_default(&c->o);
    uv_timer_init(loop, &c->sweep);
    c->sweep.data = c;
    uv_timer_start(&c->sweep, sweep_idle, 1000, 1000);
    uv_unref((uv_handle_t *)&c->sweep);
    *out = c;
    return HTTPC_OK;
}

static struct hc_upstream *upstream_for(struct http_client *c, const char *addr)
{
    for (struct hc_upstream *up = c->ups; up; up = up->next)
        if (!strcmp(up->addr, addr))
            return up;
    struct hc_upstream *up = calloc(1, sizeof *up);
    char err[256];
    if (!up || strlen(addr) >= sizeof up->addr ||
        cluster_split_addr(addr, up->host, sizeof up->host, &up->port, err, sizeof err)) {
        free(up);
        return NULL;
    }
    snprintf(up->addr, sizeof up->addr, "%s", addr);
    up->next = c->ups;
    c->ups = up;
    return up;
}

static int request_new(struct http_client *c, const char *addr, const char *method, const char *target,
                       const char *headers, const void *body, size_t body_len, unsigned timeout_ms,
                       http_client_cb cb, const struct http_client_stream_cbs *scb, void *arg,
                       struct http_client_req **out)
{
    if (c->destroying)
        return HTTPC_ECLOSED;
    struct hc_upstream *up = upstream_for(c, addr);
    if (!up)
        return HTTPC_ECONNECT;
    struct http_client_req *r = calloc(1, sizeof *r);
    if (!r)
        return HTTPC_ENOMEM;
    size_t cap = strlen(method) + strlen(target) + strlen(addr) + (headers ? strlen(headers) : 0) + body_len + 128;
    r->wire = malloc(cap);
    if (!r->wire) {
        free(r);
        return HTTPC_ENOMEM;
    }
    int n = snprintf(r->wire, cap, "%s %s HTTP/1.1\r\nHost: %s\r\n%sContent-Length: %zu\r\n\r\n", method, target,
                     addr, headers ? headers : "", body_len);
    if (n < 0 || (size_t)n + body_len > cap) {
        free(r->wire);
        free(r);
        return HTTPC_ENOMEM;
    }
    if (body_len)
        memcpy(r->wire + n, body, body_len);
    r->wire_len = (size_t)n + body_len;
    r->head = !strcmp(method, "HEAD");
    r->c = c;
    r->up = up;
    r->cb = cb;
    if (scb) {
        r->stream = true;
        r->scb = *scb;
    }
    r->arg = arg;
    r->timeout_ms = timeout_ms;
    if (out)
        *out = r;
    r->next = c->reqs;
    if (c->reqs)
        c->reqs->prev = r;
    c->reqs = r;
    uv_timer_init(c->loop, &r->timer);
    r->timer.data = r;
    uv_timer_start(&r->timer, req_timeout, timeout_ms, 0);
    int rc = conn_start(r);
    if (rc) {
        r->early_err = rc; /* reported from the timer: never from inside this call */
        uv_timer_start(&r->timer, req_timeout, 0, 0);
    }
    return HTTPC_OK;
}

int http_client_request(struct http_client *c, const char *addr, const char *method, const char *target,
                        const char *headers, const void *body, size_t body_len, unsigned timeout_ms,
                        http_client_cb cb, void *arg)
{
    return request_new(c, addr, method, target, headers, body, body_len, timeout_ms, cb, NULL, arg, NULL);
}

int http_client_request_stream(struct http_client *c, const char *addr, const char *method, const char *target,
                               const char *headers, const void *body, size_t body_len, unsigned timeout_ms,
                               const struct http_client_stream_cbs *cbs, void *arg, struct http_client_req **out)
{
    if (!cbs || !cbs->on_head || !cbs->on_body || !cbs->on_done)
        return HTTPC_EPROTO;
    return request_new(c, addr, method, target, headers, body, body_len, timeout_ms, NULL, cbs, arg, out);
}

void http_client_pause(struct http_client_req *r)
{
    /* Before the head the connection may still be connecting, and the
     * deadline covers the upstream's delay only: nothing to pause yet. */
    if (!r || r->finished || r->paused || !r->got_head)
        return;
    r->paused = true;
    uv_timer_stop(&r->timer); /* waiting for the consumer is not the upstream's delay */
    if (r->conn && !r->conn->closing)
        uv_read_stop((uv_stream_t *)&r->conn->tcp);
}

void http_client_resume(struct http_client_req *r)
{
    if (!r || r->finished || !r->paused)
        return;
    r->paused = false;
    uv_timer_start(&r->timer, req_timeout, r->timeout_ms, 0);
    if (r->conn && !r->conn->closing &&
        uv_read_start((uv_stream_t *)&r->conn->tcp, alloc_cb, read_cb)) {
        struct hc_conn *k = r->conn;
        req_finish(r, HTTPC_ERESET, NULL);
        conn_close(k);
    }
}

void http_client_cancel(struct http_client_req *r)
{
    if (!r || r->finished)
        return;
    struct hc_conn *k = r->conn;
    r->cancelled = true;
    req_finish(r, HTTPC_ECLOSED, NULL);
    if (k)
        conn_close(k); /* the rest of its answer is for nobody */
}

static void sweep_closed(uv_handle_t *h)
{
    free(h->data);
}

void http_client_destroy(struct http_client *c)
{
    if (!c)
        return;
    c->destroying = true;
    while (c->reqs) {
        struct http_client_req *r = c->reqs;
        struct hc_conn *k = r->conn;
        req_finish(r, HTTPC_ECLOSED, NULL);
        if (k)
            conn_close(k);
    }
    for (struct hc_upstream *up = c->ups, *next; up; up = next) {
        next = up->next;
        while (up->idle)
            conn_close(up->idle);
        free(up);
    }
    c->ups = NULL;
    uv_close((uv_handle_t *)&c->sweep, sweep_closed);
}

/* ---- Proxy helpers ---------------------------------------------------------------- */

static bool name_in(const char *const *list, const char *name, size_t len)
{
    for (size_t i = 0; list && list[i]; i++)
        if (strlen(list[i]) == len && !strncasecmp(list[i], name, len))
            return true;
    return false;
}

bool http_hop_by_hop(const char *name, size_t len)
{
    static const char *const hop[] = {
        "connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection",
        "proxy-authenticate", "proxy-authorization", "expect", "host", "content-length", "date", NULL,
    };
    return name_in(hop, name, len);
}

void http_headers_copy(struct buf *b, const struct http_header *h, size_t n, const char *const *skip)
{
    for (size_t i = 0; i < n; i++) {
        if (http_hop_by_hop(h[i].name, h[i].name_len) || name_in(skip, h[i].name, h[i].name_len) ||
            memchr(h[i].value, '\n', h[i].value_len) || memchr(h[i].value, '\r', h[i].value_len))
            continue;
        buf_append(b, h[i].name, h[i].name_len);
        buf_puts(b, ": ");
        buf_append(b, h[i].value, h[i].value_len);
        buf_puts(b, "\r\n");
    }
}
