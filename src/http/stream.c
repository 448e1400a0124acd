/*
 * stream.c — responses whose body is sent in pieces (include/http.h,
 * http_respond_start/_write/_end/_abort): framing the body (Content-Length,
 * chunked transfer coding, or close-delimited for HTTP/1.0 clients), holding
 * the pieces back while an earlier response of a pipelined connection is
 * unwritten, and back-pressure towards the producer.
 *
 * Ownership: a streamed exchange stays in its connection's queue (framed
 * body bytes collecting in x->sbuf) until it reaches the front; then
 * http_conn_flush makes it the connection's `active` exchange, out of the
 * queue, and every later response waits until it has ended and its last
 * byte is written. Each write owns its bytes (struct swrite) and refers to
 * the connection only, so the exchange may be freed or detached while
 * writes are in flight.
 *
 * A head whose body has not begun is held until the next turn of the loop
 * (the server's idle handle, which also keeps the loop from blocking): a
 * proxy gets the head and the first body bytes of its upstream in one read,
 * and they then leave in one write, not two; a head whose body is slow
 * still goes out at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/internal.h"

struct swrite {
    uv_write_t req;
    struct http_conn *c;
    char *data;
    size_t len;
};

static bool has_body(int status)
{
    return !(status < 200 || status == 204 || status == 304);
}

static int sbuf_put(struct http_exchange *x, const void *data, size_t len)
{
    if (x->sbuf_len + len > x->sbuf_cap) {
        size_t cap = x->sbuf_cap ? x->sbuf_cap : 4096;
        while (cap < x->sbuf_len + len) cap *= 2;
        char *p = realloc(x->sbuf, cap);
        if (!p) return -1;
        x->sbuf = p;
        x->sbuf_cap = cap;
    }
    memcpy(x->sbuf + x->sbuf_len, data, len);
    x->sbuf_len += len;
    return 0;
}

static void stream_finish(struct http_conn *c);

static void on_swrite(uv_write_t *req, int status)
{
    struct swrite *w = req->data;
    struct http_conn *c = w->c;
    c->reqs_pending--;
    c->stream_inflight -= w->len;
    free(w->data);
    free(w);
    c->write_since = uv_now(c->srv->loop);
    if (c->closing) { http_conn_maybe_free(c); return; }
    if (status < 0) { http_conn_close(c); return; }
    struct http_exchange *x = c->active;
    if (!x) return;
    if (x->stream_ended) {
        if (c->stream_inflight == 0) stream_finish(c);
        return;
    }
    if (x->want_drain && http_respond_queued(x) <= c->srv->opt.max_stream_queue / 4) {
        x->want_drain = false;
        if (x->drain_cb) x->drain_cb(x->drain_arg);
        return;
    }
    http_conn_update_timer(c);
}

static void held_unlink(struct http_conn *c)
{
    struct http_server *s = c->srv;
    if (!c->head_held) return;
    c->head_held = false;
    if (c->held_prev) c->held_prev->held_next = c->held_next;
    else s->held = c->held_next;
    if (c->held_next) c->held_next->held_prev = c->held_prev;
    c->held_prev = c->held_next = NULL;
}

void http_stream_release_head(struct http_conn *c)
{
    held_unlink(c);
}

/* Hands the active exchange's collected bytes to uv_write. Returns -1 if
 * the connection had to be closed. */
static int stream_out(struct http_conn *c)
{
    held_unlink(c);
    struct http_exchange *x = c->active;
    if (!x->sbuf_len) return 0;
    struct swrite *w = malloc(sizeof *w);
    if (!w) { http_conn_close(c); return -1; }
    w->c = c;
    w->data = x->sbuf;
    w->len = x->sbuf_len;
    x->sbuf = NULL;
    x->sbuf_len = x->sbuf_cap = 0;
    w->req.data = w;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
    if (c->reqs_pending == 0) c->write_since = uv_now(c->srv->loop);
    if (http_conn_write(c, &w->req, &b, 1, on_swrite) < 0) {
        free(w->data);
        free(w);
        http_conn_close(c);
        return -1;
    }
    c->reqs_pending++;
    c->srv->stats.writes++;
    c->stream_inflight += w->len;
    http_conn_update_timer(c);
    return 0;
}

/* The active exchange has ended and every byte of it is written. */
static void stream_finish(struct http_conn *c)
{
    struct http_exchange *x = c->active;
    bool last = !x->keep_alive, cut = x->stream_short;
    c->active = NULL;
    c->n_exchanges--;
    http_exchange_free(x);
    /* Fewer bytes than the Content-Length promised: only closing tells the
     * client the answer is incomplete. */
    if (cut) { http_conn_close(c); return; }
    if (last) { http_conn_linger(c); return; }
    http_conn_flush(c);
    if (!c->closing) http_conn_resume(c);
}

void http_stream_activate(struct http_conn *c, struct http_exchange *x)
{
    c->q_head = x->next;
    if (!c->q_head) c->q_tail = NULL;
    x->next = NULL;
    c->active = x;
    /* The head goes first, in front of whatever body has collected. */
    char *buf = malloc(x->head_len + x->sbuf_len + 1);
    if (!buf) { http_conn_close(c); return; }
    memcpy(buf, x->head, x->head_len);
    if (x->sbuf_len) memcpy(buf + x->head_len, x->sbuf, x->sbuf_len);
    free(x->sbuf);
    x->sbuf = buf;
    bool body_begun = x->sbuf_len > 0;
    x->sbuf_len += x->head_len;
    x->sbuf_cap = x->sbuf_len + 1;
    if (body_begun || x->stream_ended || !x->stream_body) {
        stream_out(c);
        return;
    }
    struct http_server *s = c->srv;
    c->head_held = true;
    c->held_prev = NULL;
    c->held_next = s->held;
    if (s->held) s->held->held_prev = c;
    s->held = c;
    if (!s->stopping) uv_idle_start(&s->held_idle, http_server_next_turn);
}

void http_stream_run_held(struct http_server *s)
{
    while (s->held) {
        struct http_conn *c = s->held;
        held_unlink(c);
        if (!c->closing && c->active && c->active->sbuf_len) stream_out(c);
    }
}

void http_stream_detached(struct http_exchange *x)
{
    if (!x->want_drain) return;
    x->want_drain = false;
    if (x->drain_cb) x->drain_cb(x->drain_arg);
}

void http_stream_conn_closed(struct http_conn *c)
{
    struct http_exchange *x = c->active;
    if (!x) return;
    c->active = NULL;
    c->n_exchanges--;
    if (x->stream_ended) {
        http_exchange_free(x);
    } else {
        x->conn = NULL;
        http_stream_detached(x);
    }
}

int http_respond_start(struct http_exchange *x, int status, const char *headers, int64_t content_length)
{
    if (!x || x->stream_mode || x->responded) return HTTP_STREAM_GONE;
    if (status < 100 || status > 999) status = 500;
    if (content_length >= 0) {
        x->stream_mode = HTTP_SM_LENGTH;
        x->resp_body_len = (size_t)content_length;
        x->stream_left = (uint64_t)content_length;
    } else if (x->http10) {
        /* No chunked coding before HTTP/1.1 (RFC 9112 §7.1): the end of
         * the body is the end of the connection. */
        x->stream_mode = HTTP_SM_CLOSE;
        x->keep_alive = false;
        if (x->conn) x->conn->no_more = true; /* nothing can follow it */
    } else {
        x->stream_mode = HTTP_SM_CHUNKED;
    }
    struct http_conn *c = x->conn;
    if (!c || c->closing) return HTTP_STREAM_GONE;
    x->stream_body = !x->req.head && has_body(status);
    http_conn_build_head(x, status, headers);
    x->responded = false; /* not until http_respond_end */
    if (!x->head_len) {
        http_conn_close(c); /* detaches x: writes are no-ops, end frees */
        return HTTP_STREAM_GONE;
    }
    http_conn_flush(c);
    return x->conn && !x->conn->closing ? HTTP_STREAM_OK : HTTP_STREAM_GONE;
}

size_t http_respond_queued(const struct http_exchange *x)
{
    if (!x || !x->conn) return 0;
    return x->sbuf_len + (x->conn->active == x ? x->conn->stream_inflight : 0);
}

int http_respond_write(struct http_exchange *x, const void *data, size_t len)
{
    if (!x || !x->stream_mode || x->stream_ended) return HTTP_STREAM_GONE;
    struct http_conn *c = x->conn;
    if (!c || c->closing) return HTTP_STREAM_GONE;
    if (!x->stream_body) return HTTP_STREAM_OK; /* HEAD, 204, 304: dropped */
    if (x->stream_mode == HTTP_SM_LENGTH && len > x->stream_left) len = (size_t)x->stream_left;
    if (len) {
        int rc = 0;
        if (x->stream_mode == HTTP_SM_CHUNKED) {
            char size[24];
            int n = snprintf(size, sizeof size, "%zx\r\n", len);
            rc = sbuf_put(x, size, (size_t)n);
            if (rc == 0) rc = sbuf_put(x, data, len);
            if (rc == 0) rc = sbuf_put(x, "\r\n", 2);
        } else {
            rc = sbuf_put(x, data, len);
        }
        if (x->stream_mode == HTTP_SM_LENGTH) x->stream_left -= len;
        x->want_drain = false; /* never called back from inside this call */
        if (rc < 0) { http_conn_close(c); return HTTP_STREAM_GONE; }
        if (c->active == x && stream_out(c) < 0) return HTTP_STREAM_GONE;
    }
    if (http_respond_queued(x) >= c->srv->opt.max_stream_queue) {
        x->want_drain = true;
        return HTTP_STREAM_FULL;
    }
    return HTTP_STREAM_OK;
}

void http_respond_on_drain(struct http_exchange *x, void (*cb)(void *arg), void *arg)
{
    if (!x) return;
    x->drain_cb = cb;
    x->drain_arg = arg;
}

void http_respond_end(struct http_exchange *x)
{
    if (!x) return;
    struct http_conn *c = x->conn;
    if (!c) { http_exchange_free(x); return; } /* the client is gone */
    if (x->stream_ended) return;
    if (!x->stream_mode) {
        /* Misuse (end without start): answer rather than hang the client. */
        http_respond(x, 500, NULL, "stream ended before it started\n", 31);
        return;
    }
    if (x->stream_body && x->stream_mode == HTTP_SM_CHUNKED && sbuf_put(x, "0\r\n\r\n", 5) < 0)
        x->stream_short = true;
    if (x->stream_body && x->stream_mode == HTTP_SM_LENGTH && x->stream_left) x->stream_short = true;
    x->stream_ended = true;
    x->responded = true; /* from now on the connection may free it */
    x->want_drain = false;
    x->drain_cb = NULL;
    if (c->closing || c->active != x) return; /* written when it reaches the front */
    if (x->sbuf_len) stream_out(c);
    else if (c->stream_inflight == 0) stream_finish(c);
}

void http_respond_abort(struct http_exchange *x)
{
    if (!x) return;
    if (x->conn) {
        x->want_drain = false;
        x->drain_cb = NULL;
        http_conn_close(x->conn); /* detaches x */
    }
    http_exchange_free(x);
}
