/*
 * http_client.h — an asynchronous HTTP/1.1 client on a libuv loop, with a
 * keep-alive pool per upstream address. Used by a node to forward writes to
 * the leader, and by the gateway to reach the nodes.
 *
 * One request at a time per connection (no pipelining: a slow answer must
 * not hold up the next request); idle connections are kept (up to
 * max_idle_per_upstream) and reused; a reused connection that turns out to
 * be closed by the server before any byte of the answer is retried once on a
 * fresh connection. Every request has a deadline covering connect, send and
 * the whole answer. Answers are buffered up to max_response_bytes, or
 * streamed to callbacks with back-pressure (http_client_request_stream).
 *
 * All calls and callbacks run on the loop thread.
 */
#ifndef LINKRAFT_HTTP_CLIENT_H
#define LINKRAFT_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"
#include "http.h"

enum {
    HTTPC_OK = 0,
    HTTPC_ECONNECT = -1,  /* could not connect (refused, unreachable, name unknown) */
    HTTPC_ETIMEOUT = -2,  /* the deadline passed; the request may or may not have been acted on */
    HTTPC_ERESET = -3,    /* the connection broke after the request was sent */
    HTTPC_EPROTO = -4,    /* the answer was not valid HTTP or too large */
    HTTPC_ENOMEM = -5,
    HTTPC_ECLOSED = -6,   /* the client is shutting down */
};
const char *http_client_strerror(int err);

struct http_client_response {
    int status;
    const struct http_header *headers;
    size_t n_headers;
    const char *body;
    size_t body_len;
};

/* err is HTTPC_OK with resp filled (valid only during the call), or an
 * error with resp NULL. After HTTPC_ECONNECT nothing was sent: the request
 * is safe to retry elsewhere. */
typedef void (*http_client_cb)(void *arg, int err, const struct http_client_response *resp);

struct http_client_options {
    unsigned max_idle_per_upstream; /* default 32 */
    size_t max_response_bytes;      /* default 4 MiB */
    unsigned idle_timeout_ms;       /* idle pooled connections closed after; default 30000 */
};
void http_client_options_default(struct http_client_options *o);

struct http_client;

int http_client_create(uv_loop_t *loop, const struct http_client_options *o, struct http_client **out);

/* Sends one request to addr ("host:port", "[v6]:port"). head: the request
 * line is built from method and target (path + query); headers: zero or more
 * preformatted "Name: value\r\n" lines (Host, Content-Length and Connection
 * are added). body is copied. cb is called exactly once, never from inside
 * this call. Returns 0, or an HTTPC_ error (then cb is not called). */
int http_client_request(struct http_client *c, const char *addr, const char *method, const char *target,
                        const char *headers, const void *body, size_t body_len, unsigned timeout_ms,
                        http_client_cb cb, void *arg);

/* ---- Streaming answers -------------------------------------------------
 * The answer handed over as it arrives, for a proxy that relays it without
 * holding all of it (the gateway). Callbacks, all on the loop thread, never
 * from inside http_client_request_stream:
 *   on_head(arg, status, headers, n)  once, when the header block is in
 *                                     (headers valid only during the call);
 *   on_body(arg, data, len)           for each piece of the body (decoded
 *                                     from chunked coding), in order;
 *   on_done(arg, err)                 exactly once, last: HTTPC_OK when the
 *                                     answer is complete, else an error —
 *                                     before on_head with the meaning it has
 *                                     for http_client_request, after it the
 *                                     answer is cut short.
 * timeout_ms covers everything up to the head, then each wait for more of
 * the body (not the time spent paused). max_response_bytes does not apply. */
struct http_client_stream_cbs {
    void (*on_head)(void *arg, int status, const struct http_header *headers, size_t n_headers);
    void (*on_body)(void *arg, const char *data, size_t len);
    void (*on_done)(void *arg, int err);
};

struct http_client_req; /* a request in flight; valid until on_done returns */

/* As http_client_request, with the answer streamed to cbs (copied). *out,
 * if not NULL, gets a handle for pause/resume/cancel. Returns 0, or an
 * HTTPC_ error (no callback is called). */
int http_client_request_stream(struct http_client *c, const char *addr, const char *method, const char *target,
                               const char *headers, const void *body, size_t body_len, unsigned timeout_ms,
                               const struct http_client_stream_cbs *cbs, void *arg, struct http_client_req **out);

/* Stops reading the answer (back-pressure) until http_client_resume. The
 * bytes already read (at most one 64 KiB read) are still delivered. Only
 * after on_head (earlier calls are ignored); may be called from a
 * callback. */
void http_client_pause(struct http_client_req *r);
void http_client_resume(struct http_client_req *r);

/* Abandons r: no more callbacks (not even on_done), its connection is
 * closed. May be called from on_head or on_body. */
void http_client_cancel(struct http_client_req *r);

/* True for headers that describe one connection rather than the message
 * (RFC 9110 §7.6.1), or that the sender of each hop writes itself (Host,
 * Content-Length, Date): a proxy never copies them. */
bool http_hop_by_hop(const char *name, size_t len);

/* Appends h[0..n) as "Name: value\r\n" lines to b, leaving out hop-by-hop
 * headers, values with a line break, and the names in skip (a
 * NULL-terminated list of lowercase names; may be NULL). */
void http_headers_copy(struct buf *b, const struct http_header *h, size_t n, const char *const *skip);

/* Fails every request in flight with HTTPC_ECLOSED, closes every connection,
 * then frees c. */
void http_client_destroy(struct http_client *c);

#endif
