/*
 * http.h — the HTTP/1.1 server every node (and the gateway) runs on its
 * libuv loop. It knows nothing of the site: it parses requests (Debian's
 * http-parser), enforces the limits of SPEC §4, hands each request to one
 * handler, and writes responses back in request order.
 *
 *   - Keep-alive by default (HTTP/1.1), pipelined requests answered in order
 *     even when a later one's response is ready first.
 *   - HEAD: the handler's response is sent without its body (Content-Length
 *     kept).
 *   - Limits: request line plus headers over max_header_bytes -> 431 and
 *     close; body over max_body_bytes -> 413 and close; malformed -> 400 and
 *     close, and so is what nginx refuses but http-parser's lenient mode
 *     takes: HTTP/1.1 without Host, two Host headers, a header name that is
 *     not a token. A client that has not sent a whole header block within
 *     header_timeout_ms is cut off (slowloris), and so is one whose body
 *     arrives slower than min_body_rate; an idle keep-alive connection is
 *     closed after idle_timeout_ms. At max_connections the oldest idle
 *     connection is closed to admit a new one, or else the one that has been
 *     sending its request longest: neither idle nor slow clients can starve
 *     new ones. One client address may hold max_conns_per_addr connections.
 *   - Asynchronous responses: a handler may answer later (a write waits for
 *     its Raft entry to commit). The exchange stays valid until
 *     http_respond (or http_respond_end/_abort) is called on it, even if the
 *     client has gone away (the response is then discarded).
 *   - Methods http-parser does not know (any RFC 9110 token up to 32 bytes)
 *     reach the handler as they were sent; it answers 405 or 501.
 *   - A client that half-closes still gets the responses to the requests it
 *     sent in full; then the connection closes. After a response that closes
 *     the connection (Connection: close, HTTP/1.0, 400/413/431) the server
 *     sends FIN and discards input until the client closes (at most 3 s), so
 *     the response is not lost to a reset.
 *   - Streamed responses (http_respond_start/_write/_end) for bodies
 *     produced in pieces, with back-pressure; see below.
 *   - HTTPS with tls_cert_file/tls_key_file (src/http/tls.c); who the
 *     client is behind trusted proxies (struct http_trust).
 *   - Memory: one block per request (4 KiB, grown for big headers or bodies)
 *     holds everything of the request and usually the response head; freed
 *     when the response has been written or discarded. Read-ahead is bounded
 *     by max_pipeline per connection.
 *
 * All functions run on the loop thread.
 */
#ifndef LINKRAFT_HTTP_H
#define LINKRAFT_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct http_header {
    const char *name;   /* as received; compare case-insensitively */
    size_t name_len;
    const char *value;  /* leading/trailing whitespace removed */
    size_t value_len;
};

struct http_request {
    const char *method;         /* "GET", "POST", ... NUL-terminated */
    const char *path;           /* raw (not percent-decoded) path without the query, NUL-terminated */
    const char *query;          /* raw query string without '?', NUL-terminated ("" if none) */
    const struct http_header *headers;
    size_t n_headers;
    const char *body;           /* NUL-terminated for convenience; body_len bytes */
    size_t body_len;
    bool head;                  /* method is HEAD (respond as to GET; body is dropped) */
    char peer[64];              /* the TCP peer "ip:port" ("[ip6]:port"), from uv_tcp_getpeername */
    char client[64];            /* the client's IP (no port): the peer, or the address a trusted
                                 * proxy put in X-Forwarded-For (see struct http_trust) */
    bool secure;                /* came over TLS: this server's, or a trusted proxy's
                                 * (X-Forwarded-Proto: https) */
};

/* Case-insensitive header lookup; NULL if absent. *len gets the value length. */
const char *http_header_get(const struct http_request *req, const char *name, size_t *len);

/* The headers every edge (the site, the node's own API) reads alike
 * (SPEC §4), parsed in one place so that their rules cannot drift apart. */
#define HTTP_IDEM_MAX 255
#define HTTP_IDEM_RULE "Idempotency-Key is 1 to 255 bytes"
/* Idempotency-Key: 0 with *key NULL if absent, 0 with the key if it is 1 to
 * HTTP_IDEM_MAX bytes, -1 otherwise (answer 400 bad_idempotency_key,
 * HTTP_IDEM_RULE). */
int http_idempotency_key(const struct http_request *req, const char **key, size_t *len);
enum http_consistency { HTTP_READ_STALE = 0, HTTP_READ_SESSION = 1, HTTP_READ_LINEARIZABLE = 2 };
/* X-Consistency: stale, session or linearizable (any case); session when
 * absent. Returns 0, or -1 on any other value. */
int http_consistency(const struct http_request *req, enum http_consistency *c);

struct http_exchange; /* one request awaiting its response */

/* The request of an exchange; valid until the exchange ends (http_respond,
 * http_respond_take, http_respond_end or http_respond_abort). */
const struct http_request *http_exchange_request(const struct http_exchange *x);

/* Called once per request. The handler (now or later) must end x exactly
 * once: http_respond or http_respond_take, or a streamed response
 * (http_respond_start ... http_respond_end or http_respond_abort). */
typedef void (*http_handler)(void *ctx, struct http_exchange *x);

/* Sends the response and ends the exchange (x is invalid afterwards).
 * headers: zero or more preformatted "Name: value\r\n" lines (may be NULL);
 * the server adds Content-Length, Date and Connection itself. Takes a copy
 * of body (and of headers); both may point into the request. Responses go
 * out in request order: one answered early waits for those before it.
 * Statuses 1xx, 204 and 304 are sent without a body or Content-Length. */
void http_respond(struct http_exchange *x, int status, const char *headers,
                  const void *body, size_t body_len);

/* Same, taking ownership of a malloc'd body (no copy); it is freed with the
 * exchange, once written or discarded. */
void http_respond_take(struct http_exchange *x, int status, const char *headers,
                       void *body, size_t body_len);

/* Same, with a body only lent (no copy, no ownership): the server calls
 * release(arg) exactly once, when the exchange ends (written or discarded).
 * For bytes the caller keeps for many responses, such as a cached page. */
void http_respond_lent(struct http_exchange *x, int status, const char *headers, const void *body, size_t body_len,
                       void (*release)(void *arg), void *arg);

/* ---- Streamed responses -------------------------------------------------
 *
 * For a body produced in pieces (the gateway relaying a node's answer as it
 * arrives): http_respond_start, then http_respond_write any number of
 * times, then exactly one of http_respond_end or http_respond_abort, which
 * end the exchange (x is invalid afterwards). Responses still go out in
 * request order: a streamed response behind an unwritten earlier one keeps
 * its pieces until that one is written. HEAD, 204 and 304 send no body (the
 * writes are accepted and dropped).
 *
 * Back-pressure: the bytes accepted but not yet written to the socket are
 * bounded by the producer. http_respond_write returns HTTP_STREAM_FULL when
 * they reach max_stream_queue (http_options); the producer should pause its
 * source until the drain callback runs (when they fall to a quarter of the
 * bound). Pieces written while FULL are still accepted.
 *
 * A client that goes away mid-stream: writes return HTTP_STREAM_GONE and do
 * nothing; a drain callback that was waiting is called once so the
 * producer finds out; end or abort still must be called (they free x). */
enum {
    HTTP_STREAM_OK = 0,
    HTTP_STREAM_FULL = 1,  /* accepted; pause until the drain callback */
    HTTP_STREAM_GONE = -1, /* the client is gone (or x was misused): nothing will be sent */
};

/* Sends (or queues) the head. content_length >= 0: the body is exactly that
 * many bytes (more are cut off; fewer at end -> the connection is closed,
 * so the client sees a truncated answer). -1: unknown length — chunked
 * transfer coding for an HTTP/1.1 client, or the body ends when the
 * connection closes for HTTP/1.0. headers as for http_respond (no
 * Content-Length or Transfer-Encoding). Returns HTTP_STREAM_OK or
 * HTTP_STREAM_GONE. */
int http_respond_start(struct http_exchange *x, int status, const char *headers, int64_t content_length);

/* Appends len bytes of body (copied). Returns HTTP_STREAM_OK,
 * HTTP_STREAM_FULL or HTTP_STREAM_GONE. */
int http_respond_write(struct http_exchange *x, const void *data, size_t len);

/* cb(arg) runs (on the loop, never inside http_respond_write) after a write
 * returned HTTP_STREAM_FULL, once the queue has drained to a quarter of the
 * bound, or once when the client goes away. cb NULL: none. */
void http_respond_on_drain(struct http_exchange *x, void (*cb)(void *arg), void *arg);

/* Body bytes accepted for x and not yet written to the socket. */
size_t http_respond_queued(const struct http_exchange *x);

/* The body is complete: sends the last chunk (chunked), and frees x once
 * written (the connection goes on with the next request). */
void http_respond_end(struct http_exchange *x);

/* The body cannot be completed (its source failed): closes the client's
 * connection at once, so the client sees a truncated answer rather than a
 * wrong one, and frees x. Also valid before http_respond_start. */
void http_respond_abort(struct http_exchange *x);

/* ---- Trusted proxies ------------------------------------------------------
 *
 * The networks whose X-Forwarded-For and X-Forwarded-Proto are believed
 * (SPEC §5: `--trust-proxy CIDR,...` plus the cluster's own nodes and
 * gateways). From anyone else those headers are ignored: request.client is
 * the TCP peer and request.secure says whether this server's TLS carried
 * it. Trusted peers are also exempt from the per-address connection limit
 * (a gateway is one address for many clients). */
struct http_net { uint8_t addr[16]; uint8_t bits; }; /* IPv4 as ::ffff:a.b.c.d/96+n */
struct http_trust { struct http_net *nets; size_t n, cap; };
void http_trust_init(struct http_trust *t);
void http_trust_free(struct http_trust *t);
/* Adds "CIDR,CIDR,..." (a bare address is one host). Returns 0, or -1 with
 * a message in err naming the bad element. */
int http_trust_add(struct http_trust *t, const char *list, char *err, size_t errcap);
/* Adds every address the host of "host:port" ("[v6]:port", "name:port")
 * resolves to (a blocking lookup: call at start-up). */
int http_trust_add_host(struct http_trust *t, const char *addr, char *err, size_t errcap);

/* Limits and timeouts. A field left 0 takes its default. */
struct http_options {
    size_t max_header_bytes;    /* default 8192 (SPEC §4): every byte from the
                                 * request line's first through the empty line
                                 * ending the headers; more -> 431 and close */
    size_t max_body_bytes;      /* default 65536; more (by Content-Length, before
                                 * reading, or as chunks arrive) -> 413 and close */
    unsigned header_timeout_ms; /* default 10000: from a request's first byte
                                 * until its header block is complete */
    unsigned idle_timeout_ms;   /* default 60000: between requests; also how long
                                 * a client may leave a response unread */
    unsigned max_connections;   /* default 4096 */
    unsigned max_pipeline;      /* requests read ahead per connection; default 16.
                                 * Reading stops while this many are unanswered
                                 * or unwritten, and resumes as they drain. */
    unsigned body_timeout_ms;   /* default 30000: from the end of the header
                                 * block until the body is complete */
    size_t max_stream_queue;    /* default 262144: bytes of a streamed response
                                 * queued before writes return HTTP_STREAM_FULL */
    const struct http_trust *trust; /* NULL: nobody; copied by http_server_start */
    unsigned max_conns_per_addr; /* default 256: connections open from one client
                                  * address (trusted proxies: no limit); more are
                                  * closed at once */
    unsigned min_body_rate;      /* default 4096 bytes/s: after body_grace_ms a body
                                  * must keep arriving at least this fast on average
                                  * (a trickling client is cut off) */
    unsigned body_grace_ms;      /* default 2000 */
    /* HTTPS: both PEM files (certificate chain, leaf first; unencrypted
     * key) or neither. TLS 1.2+ only; request.secure is then true. */
    const char *tls_cert_file, *tls_key_file;
};
void http_options_default(struct http_options *o);

struct http_server;

/* Binds addr ("host:port", "[v6]:port", "name:port") and serves. Returns 0,
 * or -1 with a message in err. Sets SIGPIPE to be ignored (process-wide):
 * writing to a reset connection must be an error, not a signal. */
int http_server_start(uv_loop_t *loop, const char *addr, const struct http_options *o,
                      http_handler handler, void *ctx, struct http_server **out,
                      char *err, size_t errcap);

/* The port the server listens on (useful after binding port 0); -1 on error. */
int http_server_port(const struct http_server *s);

struct http_stats {
    uint64_t connections_accepted, connections_open, requests;
    uint64_t rejected_431, rejected_413, rejected_400;
    uint64_t timed_out;     /* cut off: header or body too slow, or response left unread */
    uint64_t evicted_idle;  /* idle connections closed to admit a new one */
    uint64_t idle_closed;   /* keep-alive connections closed after idle_timeout_ms */
    uint64_t refused_full;  /* accepted and closed at once: max_connections, none idle or slow */
    uint64_t evicted_slow;  /* mid-request connections closed to admit a new one */
    uint64_t refused_addr;  /* accepted and closed at once: max_conns_per_addr */
    uint64_t tls_failed;    /* TLS handshakes or records that failed (not TLS, bad version...) */
    uint64_t writes;        /* writes handed to the socket (a streamed head rides with its body) */
};
void http_server_get_stats(const struct http_server *s, struct http_stats *out);

/* Stops accepting, closes every connection; exchanges still pending stay
 * valid until responded to (their responses are discarded). done(arg) runs
 * when every handle is closed; s is freed just before it, and must not be
 * used after this call. Calling it again is a no-op. */
void http_server_stop(struct http_server *s, void (*done)(void *arg), void *arg);

/* Loads cert_file and key_file as http_server_start would: 0, or -1 with
 * a message naming the file and what is wrong (for configuration checks
 * before starting). */
int http_tls_check(const char *cert_file, const char *key_file, char *err, size_t errcap);

/* The reason phrase for a status ("Not Found"). */
const char *http_status_text(int status);

#endif
