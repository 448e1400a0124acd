/*
 * conn.c — one HTTP/1.1 connection's requests and responses: feeds input to
 * http-parser, copies each request into its exchange's arena, enforces the
 * limits of SPEC §4 (header block -> 431, body -> 413, malformed -> 400),
 * hands complete requests to the handler, and writes responses strictly in
 * request order however the handler orders its answers (pipelining).
 *
 * The parser is paused at the end of each header block and each message, so
 * the loop here sees every request boundary: that is where the header block
 * is measured exactly, where read-ahead stops at max_pipeline, and where the
 * handler is called (never from inside http-parser).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/internal.h"

#define HTTP_MAX_HEADERS 256          /* more fields than this -> 431 */
#define HTTP_X_ALLOC 4096             /* one exchange: struct + inline arena */
#define HTTP_MAX_METHOD 32

/* ---- exchange arena ---------------------------------------------------- */

static struct http_exchange *x_new(struct http_conn *c)
{
    struct http_exchange *x = malloc(HTTP_X_ALLOC);
    if (!x) return NULL;
    memset(x, 0, sizeof *x);
    x->conn = c;
    x->mem = x->inline_mem;
    x->mem_cap = (uint32_t)(HTTP_X_ALLOC - sizeof *x);
    x->keep_alive = true;
    return x;
}

void http_exchange_free(struct http_exchange *x)
{
    if (!x) return;
    if (x->mem != x->inline_mem) free(x->mem);
    free(x->head_heap);
    free(x->body_heap);
    if (x->body_release)
        x->body_release(x->body_release_arg);
    free(x->sbuf);
    free(x);
}

/* Makes room for n more bytes; the arena may move (callers keep offsets). */
static int x_reserve(struct http_exchange *x, size_t n)
{
    if ((size_t)x->mem_cap - x->mem_len >= n) return 0;
    size_t need = (size_t)x->mem_len + n;
    if (need > (1u << 30)) return -1;
    size_t cap = (size_t)x->mem_cap * 2;
    while (cap < need) cap *= 2;
    char *m = malloc(cap);
    if (!m) return -1;
    memcpy(m, x->mem, x->mem_len);
    if (x->mem != x->inline_mem) free(x->mem);
    x->mem = m;
    x->mem_cap = (uint32_t)cap;
    return 0;
}

static int x_append(struct http_exchange *x, const char *data, size_t n)
{
    if (x_reserve(x, n) < 0) return -1;
    memcpy(x->mem + x->mem_len, data, n);
    x->mem_len += (uint32_t)n;
    return 0;
}

/* ---- queue --------------------------------------------------------------- */

static void q_push(struct http_conn *c, struct http_exchange *x)
{
    x->next = NULL;
    if (c->q_tail) c->q_tail->next = x;
    else c->q_head = x;
    c->q_tail = x;
    c->n_exchanges++;
}

static void q_remove(struct http_conn *c, struct http_exchange *x)
{
    struct http_exchange **pp = &c->q_head, *prev = NULL;
    while (*pp && *pp != x) { prev = *pp; pp = &(*pp)->next; }
    if (!*pp) return;
    *pp = x->next;
    if (c->q_tail == x) c->q_tail = prev;
    x->next = NULL;
    c->n_exchanges--;
}

/* ---- parser callbacks ---------------------------------------------------- */

static int cb_message_begin(http_parser *p)
{
    struct http_conn *c = p->data;
    struct http_exchange *x = x_new(c);
    if (!x) { c->cb_error = 503; return -1; }
    if (c->ovr_len) {
        x->method_off = 0;
        x->method_len = c->ovr_len;
        if (x_append(x, c->ovr, c->ovr_len) < 0 || x_append(x, "", 1) < 0) {
            http_exchange_free(x);
            c->cb_error = 503;
            return -1;
        }
    }
    x->url_off = x->mem_len;
    c->cur = x;
    q_push(c, x);
    c->n_hoffs = 0;
    c->last_hcb = 0;
    return 0;
}

static int cb_url(http_parser *p, const char *at, size_t len)
{
    struct http_conn *c = p->data;
    struct http_exchange *x = c->cur;
    if (x_append(x, at, len) < 0) { c->cb_error = 503; return -1; }
    x->url_len += (uint32_t)len;
    return 0;
}

static int cb_header_field(http_parser *p, const char *at, size_t len)
{
    struct http_conn *c = p->data;
    struct http_exchange *x = c->cur;
    if (c->pstate == HTTP_P_BODY) return 0; /* chunked trailers: ignored */
    if (c->last_hcb != 1) {
        if (c->n_hoffs == HTTP_MAX_HEADERS) { c->cb_error = 431; return -1; }
        if (c->n_hoffs == c->hoffs_cap) {
            uint32_t cap = c->hoffs_cap ? c->hoffs_cap * 2 : 32;
            struct http_hoff *h = realloc(c->hoffs, cap * sizeof *h);
            if (!h) { c->cb_error = 503; return -1; }
            c->hoffs = h;
            c->hoffs_cap = cap;
        }
        struct http_hoff *h = &c->hoffs[c->n_hoffs++];
        h->name_off = x->mem_len;
        h->name_len = 0;
        h->value_off = x->mem_len;
        h->value_len = 0;
        c->last_hcb = 1;
    }
    if (x_append(x, at, len) < 0) { c->cb_error = 503; return -1; }
    c->hoffs[c->n_hoffs - 1].name_len += (uint32_t)len;
    return 0;
}

static int cb_header_value(http_parser *p, const char *at, size_t len)
{
    struct http_conn *c = p->data;
    struct http_exchange *x = c->cur;
    if (c->pstate == HTTP_P_BODY || c->n_hoffs == 0) return 0;
    struct http_hoff *h = &c->hoffs[c->n_hoffs - 1];
    if (c->last_hcb != 2) {
        h->value_off = x->mem_len;
        h->value_len = 0;
        c->last_hcb = 2;
    }
    if (x_append(x, at, len) < 0) { c->cb_error = 503; return -1; }
    h->value_len += (uint32_t)len;
    return 0;
}

static int cb_headers_complete(http_parser *p)
{
    struct http_conn *c = p->data;
    c->ev = HTTP_EV_HEADERS;
    http_parser_pause(p, 1);
    return 0;
}

static int cb_body(http_parser *p, const char *at, size_t len)
{
    struct http_conn *c = p->data;
    struct http_exchange *x = c->cur;
    if (x->body_len + len > c->srv->opt.max_body_bytes) { c->cb_error = 413; return -1; }
    if (x_append(x, at, len) < 0) { c->cb_error = 503; return -1; }
    x->body_len += len;
    return 0;
}

static int cb_message_complete(http_parser *p)
{
    struct http_conn *c = p->data;
    c->ev = HTTP_EV_MESSAGE;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_cbs = {
    .on_message_begin = cb_message_begin,
    .on_url = cb_url,
    .on_header_field = cb_header_field,
    .on_header_value = cb_header_value,
    .on_headers_complete = cb_headers_complete,
    .on_body = cb_body,
    .on_message_complete = cb_message_complete,
};

/* ---- requests ------------------------------------------------------------ */

static bool is_space(char ch) { return ch == ' ' || ch == '\t'; }
static bool is_tchar(unsigned char ch);

/* A header of the request being parsed (before its pointers exist). */
static const struct http_hoff *hoff_find(const struct http_conn *c, const char *name)
{
    size_t n = strlen(name);
    for (uint32_t i = 0; i < c->n_hoffs; i++) {
        const struct http_hoff *h = &c->hoffs[i];
        if (h->name_len == n && strncasecmp(c->cur->mem + h->name_off, name, n) == 0) return h;
    }
    return NULL;
}

static bool hoff_value_is(const struct http_conn *c, const struct http_hoff *h, const char *want)
{
    const char *v = c->cur->mem + h->value_off;
    size_t n = h->value_len;
    while (n && is_space(*v)) { v++; n--; }
    while (n && is_space(v[n - 1])) n--;
    return n == strlen(want) && strncasecmp(v, want, n) == 0;
}

const char *http_header_get(const struct http_request *req, const char *name, size_t *len)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct http_header *h = &req->headers[i];
        if (h->name_len == n && strncasecmp(h->name, name, n) == 0) {
            if (len) *len = h->value_len;
            return h->value;
        }
    }
    return NULL;
}

int http_idempotency_key(const struct http_request *req, const char **key, size_t *len)
{
    *len = 0;
    *key = http_header_get(req, "Idempotency-Key", len);
    return *key && (*len == 0 || *len > HTTP_IDEM_MAX) ? -1 : 0;
}

int http_consistency(const struct http_request *req, enum http_consistency *c)
{
    static const char *const names[] = { "stale", "session", "linearizable" };
    size_t len;
    const char *v = http_header_get(req, "X-Consistency", &len);
    *c = HTTP_READ_SESSION;
    if (!v)
        return 0;
    for (int i = 0; i < 3; i++)
        if (len == strlen(names[i]) && !strncasecmp(v, names[i], len)) {
            *c = (enum http_consistency)i;
            return 0;
        }
    return -1;
}

const struct http_request *http_exchange_request(const struct http_exchange *x)
{
    return &x->req;
}

/* Lays out the finished request in the arena (which never moves again) and
 * points req's fields at it. Returns -1 if out of memory. */
static int finish_request(struct http_conn *c, struct http_exchange *x)
{
    const char *url;
    size_t path_off, path_len, query_off = 0, query_len = 0;
    size_t need = (size_t)x->url_len + 3 + 8 + (size_t)c->n_hoffs * sizeof(struct http_header);
    if (x_reserve(x, need) < 0) return -1;
    /* The body was appended right after the header block: terminate it. */
    x->mem[x->mem_len++] = '\0';

    url = x->mem + x->url_off;
    if (x->url_len && url[0] != '/') {
        /* absolute-form or authority-form: let http-parser find the parts */
        struct http_parser_url u;
        http_parser_url_init(&u);
        if (http_parser_parse_url(url, x->url_len, c->parser.method == HTTP_CONNECT, &u) == 0 &&
            (u.field_set & (1 << UF_PATH))) {
            path_off = x->url_off + u.field_data[UF_PATH].off;
            path_len = u.field_data[UF_PATH].len;
            if (u.field_set & (1 << UF_QUERY)) {
                query_off = x->url_off + u.field_data[UF_QUERY].off;
                query_len = u.field_data[UF_QUERY].len;
            }
        } else {
            path_off = x->url_off;
            path_len = x->url_len;
        }
    } else {
        const char *q = memchr(url, '?', x->url_len);
        const char *h = memchr(url, '#', x->url_len);
        const char *end = url + x->url_len;
        if (h && (!q || h < q)) q = NULL;
        path_off = x->url_off;
        path_len = (size_t)((q ? q : h ? h : end) - url);
        if (q) {
            query_off = (size_t)(q + 1 - x->mem);
            query_len = (size_t)((h ? h : end) - (q + 1));
        }
    }
    size_t p_at = x->mem_len;
    memcpy(x->mem + x->mem_len, x->mem + path_off, path_len);
    x->mem_len += (uint32_t)path_len;
    x->mem[x->mem_len++] = '\0';
    size_t q_at = x->mem_len;
    memcpy(x->mem + x->mem_len, x->mem + query_off, query_len);
    x->mem_len += (uint32_t)query_len;
    x->mem[x->mem_len++] = '\0';
    x->mem_len = (x->mem_len + 7u) & ~7u;
    struct http_header *hs = (struct http_header *)(void *)(x->mem + x->mem_len);
    x->mem_len += (uint32_t)(c->n_hoffs * sizeof *hs);

    for (uint32_t i = 0; i < c->n_hoffs; i++) {
        const struct http_hoff *h = &c->hoffs[i];
        const char *v = x->mem + h->value_off;
        size_t n = h->value_len;
        while (n && is_space(*v)) { v++; n--; }
        while (n && is_space(v[n - 1])) n--;
        hs[i] = (struct http_header){ x->mem + h->name_off, h->name_len, v, n };
    }
    struct http_request *r = &x->req;
    r->method = x->method_len ? x->mem + x->method_off
                              : http_method_str((enum http_method)c->parser.method);
    r->head = !x->method_len && c->parser.method == HTTP_HEAD;
    r->path = x->mem + p_at;
    if (path_len == 0) r->path = "/";
    r->query = x->mem + q_at;
    r->headers = hs;
    r->n_headers = c->n_hoffs;
    r->body = x->mem + x->body_off;
    r->body_len = x->body_len;
    memcpy(r->peer, c->peer, sizeof r->peer);
    http_trust_resolve(&c->srv->trust, c->peer_ip, c->peer_known, r, c->tls, r->client, sizeof r->client, &r->secure);
    return 0;
}

/* ---- responses ----------------------------------------------------------- */

static char *put(char *p, const char *s, size_t n)
{
    if (n) memcpy(p, s, n);
    return p + n;
}

static char *put_u(char *p, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (n) *p++ = tmp[--n];
    return p;
}

static bool status_has_body(int status)
{
    return !(status < 200 || status == 204 || status == 304);
}

/* Formats the head and marks x answered. The body is already placed. */
void http_conn_build_head(struct http_exchange *x, int status, const char *headers)
{
    struct http_conn *c = x->conn;
    size_t date_len, hlen = headers ? strlen(headers) : 0;
    const char *date = http_server_date(c->srv, &date_len);
    const char *reason = http_status_text(status);
    size_t rlen = strlen(reason);
    size_t need = 13 + rlen + 2 + date_len + 40 + 26 + hlen + 2;
    char *p;
    if ((size_t)x->mem_cap - x->mem_len >= need) {
        p = x->head = x->mem + x->mem_len;
        x->mem_len += (uint32_t)need;
    } else {
        p = x->head = x->head_heap = malloc(need);
        if (!p) { x->head_len = 0; goto done; }
    }
    p = put(p, "HTTP/1.1 ", 9);
    p = put_u(p, (uint64_t)status);
    *p++ = ' ';
    p = put(p, reason, rlen);
    p = put(p, "\r\n", 2);
    p = put(p, date, date_len);
    if (status_has_body(status) && x->stream_mode == HTTP_SM_CHUNKED) {
        p = put(p, "Transfer-Encoding: chunked\r\n", 28);
    } else if (status_has_body(status) && x->stream_mode != HTTP_SM_CLOSE) {
        p = put(p, "Content-Length: ", 16);
        p = put_u(p, x->resp_body_len);
        p = put(p, "\r\n", 2);
    }
    if (x->keep_alive) p = put(p, "Connection: keep-alive\r\n", 24);
    else p = put(p, "Connection: close\r\n", 19);
    p = put(p, headers, hlen);
    p = put(p, "\r\n", 2);
    x->head_len = (size_t)(p - x->head);
done:
    x->status = status;
    x->responded = true;
    /* HEAD and bodiless statuses send no body (RFC 9110 §9.3.2, §15.3.5). */
    if (x->req.head || !status_has_body(status)) x->resp_body_len = 0;
}

static void respond(struct http_exchange *x, int status, const char *headers)
{
    if (status < 100 || status > 999) status = 500;
    http_conn_build_head(x, status, headers);
    if (!x->head_len) {
        /* Out of memory for the head: nothing sensible can be sent. */
        struct http_conn *c = x->conn;
        q_remove(c, x);
        http_exchange_free(x);
        http_conn_close(c);
        return;
    }
    http_conn_flush(x->conn);
}

void http_respond(struct http_exchange *x, int status, const char *headers,
                  const void *body, size_t body_len)
{
    if (!x) return;
    if (!x->conn) { http_exchange_free(x); return; } /* client gone */
    size_t head_room = 200 + (headers ? strlen(headers) : 0);
    if (body_len && !x->req.head) {
        if ((size_t)x->mem_cap - x->mem_len >= body_len + head_room) {
            memcpy(x->mem + x->mem_len, body, body_len);
            x->body = x->mem + x->mem_len;
            x->mem_len += (uint32_t)body_len;
        } else {
            x->body_heap = malloc(body_len);
            if (!x->body_heap) { respond(x, 503, NULL); return; }
            memcpy(x->body_heap, body, body_len);
            x->body = x->body_heap;
        }
    }
    x->resp_body_len = body_len;
    respond(x, status, headers);
}

void http_respond_take(struct http_exchange *x, int status, const char *headers,
                       void *body, size_t body_len)
{
    if (!x) { free(body); return; }
    if (!x->conn) { free(body); http_exchange_free(x); return; }
    x->body_heap = body;
    x->body = body;
    x->resp_body_len = body_len;
    respond(x, status, headers);
}

void http_respond_lent(struct http_exchange *x, int status, const char *headers, const void *body, size_t body_len,
                       void (*release)(void *arg), void *arg)
{
    if (!x) { release(arg); return; }
    x->body_release = release;
    x->body_release_arg = arg;
    if (!x->conn) { http_exchange_free(x); return; }
    x->body = body;
    x->resp_body_len = body_len;
    respond(x, status, headers);
}

static void write_finished(struct http_exchange *x, int status)
{
    struct http_conn *c = x->conn;
    bool last = !x->keep_alive;
    http_exchange_free(x);
    c->n_exchanges--;
    c->reqs_pending--;
    c->write_since = uv_now(c->srv->loop);
    if (c->closing) { http_conn_maybe_free(c); return; }
    if (status < 0) { http_conn_close(c); return; }
    if (last) { http_conn_linger(c); return; }
    http_conn_resume(c);
}

static void on_write(uv_write_t *req, int status) { write_finished(req->data, status); }

void http_conn_finish_written(struct http_server *s)
{
    /* Taken as a whole first: finishing one may answer (and write) more. */
    struct http_exchange *x = s->written, *next;
    s->written = s->written_tail = NULL;
    for (; x; x = next) {
        next = x->next;
        x->next = NULL;
        write_finished(x, 0);
    }
}

/* Writes a response: at once if the socket takes all of it (the common
 * case), else by uv_write. A uv_write that completes costs libuv an
 * epoll_ctl afterwards (it stops watching for writability it never
 * started watching), one per response: ~3% of a leader's CPU under writes.
 * The exchange is finished at the next loop turn either way. */
static int write_response(struct http_conn *c, struct http_exchange *x, uv_buf_t *bufs, unsigned nb)
{
    struct http_server *s = c->srv;
    if (!c->ssl && !s->stopping) {
        size_t total = 0;
        for (unsigned i = 0; i < nb; i++) total += bufs[i].len;
        int n = uv_try_write((uv_stream_t *)&c->tcp, bufs, nb);
        if (n >= 0 && (size_t)n == total) {
            x->next = NULL;
            if (s->written_tail) s->written_tail->next = x;
            else s->written = x;
            s->written_tail = x;
            uv_idle_start(&s->held_idle, http_server_next_turn);
            return 0;
        }
        if (n > 0) {
            /* The rest by uv_write: skip what went out. */
            size_t skip = (size_t)n;
            unsigned i = 0;
            while (skip >= bufs[i].len) skip -= bufs[i++].len;
            bufs[i].base += skip;
            bufs[i].len -= skip;
            return http_conn_write(c, &x->wreq, bufs + i, nb - i, on_write);
        }
        /* UV_EAGAIN (nothing went, or earlier writes still queued: they go
         * first) or an error, which uv_write reports in its callback. */
    }
    return http_conn_write(c, &x->wreq, bufs, nb, on_write);
}

static void on_continue_written(uv_write_t *req, int status)
{
    struct http_conn *c = req->data;
    free(req);
    c->reqs_pending--;
    if (c->closing) http_conn_maybe_free(c);
    else if (status < 0) http_conn_close(c);
}

static void send_continue(struct http_conn *c)
{
    static char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";
    uv_write_t *req = malloc(sizeof *req);
    if (!req) return; /* the client sends the body after its own timeout */
    uv_buf_t b = uv_buf_init(msg, sizeof msg - 1);
    req->data = c;
    if (http_conn_write(c, req, &b, 1, on_continue_written) < 0) {
        free(req);
        return;
    }
    c->reqs_pending++;
}

void http_conn_flush(struct http_conn *c)
{
    struct http_exchange *x;
    if (c->closing) return;
    while ((x = c->q_head) != NULL) {
        if (c->active) break; /* a streamed response holds the line until it ends */
        if (x->stream_mode) {
            http_stream_activate(c, x);
            continue;
        }
        if (!x->responded) {
            /* 100 Continue belongs to the request being read, after every
             * earlier response (RFC 9110 §10.1.1). */
            if (x->want_continue && x == c->cur && c->pstate == HTTP_P_BODY) {
                x->want_continue = false;
                send_continue(c);
            }
            break;
        }
        c->q_head = x->next;
        if (!c->q_head) c->q_tail = NULL;
        uv_buf_t bufs[2];
        unsigned nb = 1;
        bufs[0] = uv_buf_init(x->head, (unsigned)x->head_len);
        if (x->resp_body_len) bufs[nb++] = uv_buf_init((char *)x->body, (unsigned)x->resp_body_len);
        x->wreq.data = x;
        if (c->reqs_pending == 0) c->write_since = uv_now(c->srv->loop);
        if (write_response(c, x, bufs, nb) < 0) {
            http_exchange_free(x);
            c->n_exchanges--;
            http_conn_close(c);
            return;
        }
        c->reqs_pending++;
        c->srv->stats.writes++;
        if (!x->keep_alive) break; /* nothing may follow a final response */
    }
}

void http_conn_fail(struct http_conn *c, int status)
{
    static const char *const body_400 = "Bad Request: malformed HTTP\n";
    static const char *const body_413 = "Content Too Large: the body is over the limit\n";
    static const char *const body_431 = "Request Header Fields Too Large: the request line and headers are over the limit\n";
    static const char *const body_503 = "Service Unavailable: out of memory\n";
    struct http_stats *st = &c->srv->stats;
    const char *body = status == 413 ? body_413 : status == 431 ? body_431 : status == 400 ? body_400 : body_503;
    if (status == 400) st->rejected_400++;
    else if (status == 413) st->rejected_413++;
    else if (status == 431) st->rejected_431++;
    c->no_more = true;
    c->pend_len = 0;
    struct http_exchange *x = c->cur;
    c->cur = NULL;
    c->pstate = HTTP_P_IDLE;
    if (x) {
        /* Reuse the exchange of the rejected request, emptied. */
        x->mem_len = 0;
        x->method_len = 0;
        x->want_continue = false;
    } else {
        x = x_new(c);
        if (!x) { http_conn_close(c); return; }
        q_push(c, x);
    }
    memset(&x->req, 0, sizeof x->req);
    x->dispatched = true;
    x->keep_alive = false;
    http_conn_read_stop(c);
    http_respond(x, status, "Content-Type: text/plain; charset=utf-8\r\n", body, strlen(body));
}

/* ---- input --------------------------------------------------------------- */

static bool is_tchar(unsigned char ch)
{
    /* RFC 9110 §5.6.2 token characters */
    static const char extra[] = "!#$%&'*+-.^_`|~";
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch && strchr(extra, ch));
}

static bool method_known(const char *m, size_t n)
{
    if (n == 3 && memcmp(m, "GET", 3) == 0) return true;
    if (n == 4 && (memcmp(m, "POST", 4) == 0 || memcmp(m, "HEAD", 4) == 0)) return true;
    for (int i = 0; i < 64; i++) {
        const char *s = http_method_str((enum http_method)i);
        if (s[0] == '<') break; /* "<unknown>": past the table */
        if (strlen(s) == n && memcmp(s, m, n) == 0) return true;
    }
    return false;
}

/* Looks at the method token starting at d. Returns 1 if it is a token
 * http-parser does not know (saved in c->ovr), 0 to let the parser judge,
 * -1 if more bytes are needed to tell. */
static int check_method(struct http_conn *c, const char *d, size_t n)
{
    size_t i = 0;
    while (i < n && i <= HTTP_MAX_METHOD && is_tchar((unsigned char)d[i])) i++;
    if (i == n && i <= HTTP_MAX_METHOD) return -1;
    if (i == 0 || i > HTTP_MAX_METHOD || d[i] != ' ') return 0;
    if (method_known(d, i)) return 0;
    memcpy(c->ovr, d, i);
    c->ovr[i] = '\0';
    c->ovr_len = (uint8_t)i;
    return 1;
}

/* What http-parser lets through and nginx does not (RFC 9112 §3.2, RFC
 * 9110 §5.1): a header name that is not a token (its lenient mode takes
 * "Foo Bar: x"), an HTTP/1.1 request without Host, or any request with two.
 * Two Host headers let a proxy and a server disagree on the target; a
 * name with a space can be read differently by the next hop. */
static bool header_block_ok(const struct http_conn *c)
{
    const struct http_exchange *x = c->cur;
    unsigned hosts = 0;
    for (uint32_t i = 0; i < c->n_hoffs; i++) {
        const struct http_hoff *h = &c->hoffs[i];
        const char *name = x->mem + h->name_off;
        if (h->name_len == 0) return false;
        for (uint32_t k = 0; k < h->name_len; k++)
            if (!is_tchar((unsigned char)name[k])) return false;
        if (h->name_len == 4 && strncasecmp(name, "host", 4) == 0) hosts++;
    }
    bool http11 = c->parser.http_major > 1 || (c->parser.http_major == 1 && c->parser.http_minor >= 1);
    return hosts <= 1 && (hosts == 1 || !http11);
}

/* The header block is complete: check the body against the limit before
 * reading it, and answer Expect: 100-continue. Returns -1 if rejected. */
static int headers_done(struct http_conn *c)
{
    struct http_exchange *x = c->cur;
    const http_parser *p = &c->parser;
    size_t max_body = c->srv->opt.max_body_bytes;
    bool has_len = (p->flags & F_CONTENTLENGTH) != 0;
    bool chunked = (p->flags & F_CHUNKED) != 0;
    if (!header_block_ok(c)) {
        http_conn_fail(c, 400);
        return -1;
    }
    c->pstate = HTTP_P_BODY;
    c->phase_start = uv_now(c->srv->loop);
    if (has_len && p->content_length > max_body) {
        http_conn_fail(c, 413);
        return -1;
    }
    /* Room for the whole body now, so it is copied once. */
    if (x_reserve(x, (has_len ? (size_t)p->content_length : 0) + 1) < 0) {
        http_conn_fail(c, 503);
        return -1;
    }
    x->body_off = x->mem_len;
    if ((chunked || (has_len && p->content_length > 0)) && p->http_major == 1 && p->http_minor >= 1) {
        const struct http_hoff *h = hoff_find(c, "expect");
        if (h && hoff_value_is(c, h, "100-continue")) {
            x->want_continue = true;
            http_conn_flush(c);
        }
    }
    return 0;
}

static void message_done(struct http_conn *c)
{
    struct http_server *s = c->srv;
    struct http_exchange *x = c->cur;
    if (finish_request(c, x) < 0) {
        http_conn_fail(c, 503); /* reuses c->cur */
        return;
    }
    c->cur = NULL;
    c->pstate = HTTP_P_IDLE;
    c->method_checked = false;
    c->ovr_len = 0;
    x->keep_alive = http_should_keep_alive(&c->parser) && !c->parser.upgrade;
    x->http10 = c->parser.http_major < 1 || (c->parser.http_major == 1 && c->parser.http_minor == 0);
    x->want_continue = false;
    x->dispatched = true;
    if (!x->keep_alive) c->no_more = true;
    s->stats.requests++;
    s->handler(s->ctx, x);
}

/* Parses from data as far as allowed; returns the bytes consumed. */
static size_t parse(struct http_conn *c, const char *data, size_t len)
{
    const struct http_options *o = &c->srv->opt;
    size_t off = 0;
    while (off < len && !c->closing && !c->no_more) {
        if (c->pstate == HTTP_P_IDLE) {
            if (c->n_exchanges >= o->max_pipeline) break; /* read-ahead bound */
            /* Empty lines before a request are ignored (RFC 9112 §2.2). */
            while (off < len && (data[off] == '\r' || data[off] == '\n')) off++;
            if (off == len) break;
            c->pstate = HTTP_P_HEADERS;
            c->phase_start = uv_now(c->srv->loop);
            c->hdr_bytes = 0;
            c->method_checked = false;
        }
        if (!c->method_checked) {
            int r = check_method(c, data + off, len - off);
            if (r < 0) break; /* wait for the rest of the method */
            c->method_checked = true;
            if (r == 1) {
                http_parser_execute(&c->parser, &parser_cbs, "GET", 3);
                if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK) {
                    http_conn_fail(c, c->cb_error ? c->cb_error : 400);
                    break;
                }
                off += c->ovr_len;
                c->hdr_bytes += c->ovr_len;
                continue;
            }
        }
        size_t avail = len - off;
        if (c->pstate == HTTP_P_HEADERS) {
            /* Never feed the parser more than one byte past the limit. */
            uint64_t room = o->max_header_bytes + 1 - c->hdr_bytes;
            if (avail > room) avail = (size_t)room;
        }
        size_t n = http_parser_execute(&c->parser, &parser_cbs, data + off, avail);
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        off += n;
        if (e == HPE_PAUSED) {
            int ev = c->ev;
            c->ev = HTTP_EV_NONE;
            http_parser_pause(&c->parser, 0);
            if (ev == HTTP_EV_HEADERS) {
                /* Paused on the block's final LF, which is not yet consumed. */
                c->hdr_bytes += n + 1;
                if (c->hdr_bytes > o->max_header_bytes) { http_conn_fail(c, 431); break; }
                if (headers_done(c) < 0) break;
            } else if (ev == HTTP_EV_MESSAGE) {
                message_done(c);
            }
            continue;
        }
        if (e != HPE_OK) {
            int st = c->cb_error ? c->cb_error : e == HPE_HEADER_OVERFLOW ? 431 : 400;
            if (st == 400 && c->pstate == HTTP_P_HEADERS && c->hdr_bytes + n > o->max_header_bytes) st = 431;
            http_conn_fail(c, st);
            break;
        }
        if (c->pstate == HTTP_P_HEADERS) {
            c->hdr_bytes += n;
            if (c->hdr_bytes > o->max_header_bytes) { http_conn_fail(c, 431); break; }
        }
    }
    return off;
}

static int pend_put(struct http_conn *c, const char *data, size_t len)
{
    if (c->pend_len + len > c->pend_cap) {
        size_t cap = c->pend_cap ? c->pend_cap : 1024;
        while (cap < c->pend_len + len) cap *= 2;
        char *p = realloc(c->pend, cap);
        if (!p) return -1;
        c->pend = p;
        c->pend_cap = cap;
    }
    memcpy(c->pend + c->pend_len, data, len);
    c->pend_len += len;
    return 0;
}

static void parse_pend(struct http_conn *c)
{
    size_t used = parse(c, c->pend, c->pend_len);
    if (c->closing || c->no_more) { c->pend_len = 0; return; }
    memmove(c->pend, c->pend + used, c->pend_len - used);
    c->pend_len -= used;
}

static void after_input(struct http_conn *c)
{
    if (c->closing) return;
    if (c->no_more || c->n_exchanges >= c->srv->opt.max_pipeline) http_conn_read_stop(c);
    http_conn_update_timer(c);
}

void http_conn_input(struct http_conn *c, const char *data, size_t len)
{
    if (c->pend_len) {
        if (pend_put(c, data, len) < 0) { http_conn_close(c); return; }
        parse_pend(c);
    } else {
        size_t used = parse(c, data, len);
        if (!c->closing && !c->no_more && used < len && pend_put(c, data + used, len - used) < 0) {
            http_conn_close(c);
            return;
        }
    }
    after_input(c);
}

void http_conn_resume(struct http_conn *c)
{
    if (c->closing || c->lingering) return;
    if (!c->no_more && c->pend_len && c->n_exchanges < c->srv->opt.max_pipeline) parse_pend(c);
    if (c->closing) return;
    if (c->read_eof) { http_conn_eof(c); return; }
    if (!c->no_more && c->n_exchanges < c->srv->opt.max_pipeline) http_conn_read_start(c);
    after_input(c);
}

void http_conn_eof(struct http_conn *c)
{
    /* Requests held back by the pipeline bound are still answered; a
     * request cut short by the EOF can never complete and is dropped. */
    bool held_back = c->pend_len && c->pstate == HTTP_P_IDLE && !c->no_more;
    if (!held_back) {
        struct http_exchange *x = c->cur;
        if (x && !x->dispatched) {
            q_remove(c, x);
            http_exchange_free(x);
        }
        c->cur = NULL;
        c->pstate = HTTP_P_IDLE;
        c->pend_len = 0;
        c->no_more = true;
    }
    if (c->n_exchanges == 0) http_conn_close(c);
    else http_conn_update_timer(c);
}
