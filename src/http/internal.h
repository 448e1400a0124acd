/*
 * http/internal.h — what the files of src/http share and nobody else may see:
 * the server, connection and exchange structures and the functions that
 * pass control between server.c (listening, accepting, timers, closing,
 * stopping) and conn.c (parsing, pipelining, writing responses).
 *
 * Ownership, in one place:
 *   - The server owns its connections (list `conns`) until each is freed
 *     after its handles have closed and its last write request completed.
 *   - A connection owns the exchanges of its queue (`q_head`..`q_tail`):
 *     requests being parsed, handed to the handler, or answered but waiting
 *     for an earlier response. Once its response is handed to uv_write an
 *     exchange leaves the queue and is owned by the write request, freed in
 *     its callback.
 *   - A streamed response (stream.c), once at the front of the queue,
 *     leaves it as the connection's `active` exchange, owned by the
 *     connection and the handler together until http_respond_end; its
 *     writes own copies of their bytes and refer only to the connection.
 *   - An exchange whose connection closes while the handler still holds it
 *     is detached (conn = NULL): it owns itself and is freed by http_respond
 *     (or http_respond_end/_abort), which then writes nothing.
 */
#ifndef LINKRAFT_HTTP_INT_H
#define LINKRAFT_HTTP_INT_H

#include <http_parser.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "http.h"

struct http_conn;

/* Connections open from one client address. */
struct http_addr_count {
    struct http_addr_count *next;
    uint8_t ip[16];
    unsigned n;
};

/* Header offsets while the request is being parsed: the arena may move. */
struct http_hoff {
    uint32_t name_off, name_len, value_off, value_len;
};

struct http_exchange {
    struct http_conn *conn;        /* NULL once detached (connection gone) */
    struct http_exchange *next;    /* in the connection's queue */
    struct http_request req;       /* pointers into mem, set by http_conn_finish_request */
    bool dispatched;               /* handed to the handler */
    bool responded;                /* http_respond called; response ready */
    bool keep_alive;               /* the client may send another request */
    bool want_continue;            /* Expect: 100-continue, not yet answered */
    /* The request's bytes: method (if unknown to http-parser), URL, header
     * names and values, body, then the split path/query and the header
     * array. Starts as inline_mem; grows by moving to the heap until the
     * request is complete, then never moves again. */
    char *mem;
    uint32_t mem_len, mem_cap;
    uint32_t method_off, method_len; /* method_len 0: a method http-parser knows */
    uint32_t url_off, url_len;
    uint32_t body_off;
    size_t body_len;
    /* The response: head (status line and headers) and body. */
    uv_write_t wreq;
    char *head;                    /* in mem's free tail, or head_heap */
    size_t head_len;
    char *head_heap;               /* malloc'd head when mem had no room */
    const char *body;              /* inline in mem, or body_heap */
    size_t resp_body_len;
    void *body_heap;               /* owned malloc'd body */
    void (*body_release)(void *arg); /* a lent body (http_respond_lent): given back on free */
    void *body_release_arg;
    int status;
    /* A streamed response (stream.c): how its body is framed, the framed
     * bytes not yet handed to uv_write, and the producer's drain callback. */
    uint8_t stream_mode;           /* HTTP_SM_*; 0: an ordinary response */
    bool stream_ended;             /* http_respond_end called */
    bool stream_body;              /* body bytes are sent (not HEAD, not 204/304) */
    bool stream_short;             /* ended before Content-Length bytes: close after */
    bool http10;                   /* the request was HTTP/1.0 (no chunked encoding) */
    bool want_drain;               /* a write returned HTTP_STREAM_FULL */
    uint64_t stream_left;          /* HTTP_SM_LENGTH: body bytes still allowed */
    char *sbuf;
    size_t sbuf_len, sbuf_cap;
    void (*drain_cb)(void *arg);
    void *drain_arg;
    _Alignas(16) char inline_mem[]; /* aligned: the header array lives here too */
};

enum { HTTP_SM_NONE, HTTP_SM_LENGTH, HTTP_SM_CHUNKED, HTTP_SM_CLOSE };

enum http_pstate {
    HTTP_P_IDLE,    /* between requests: no byte of the next one seen */
    HTTP_P_HEADERS, /* request line or headers arriving */
    HTTP_P_BODY,    /* header block complete, body arriving */
};

struct http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    struct http_server *srv;
    struct http_conn *prev, *next;           /* srv->conns */
    struct http_conn *idle_prev, *idle_next; /* srv idle list, oldest first */
    bool in_idle_list;
    struct http_conn *held_prev, *held_next; /* srv->held: a streamed head waits (stream.c) */
    bool head_held;
    http_parser parser;
    enum http_pstate pstate;
    bool method_checked;   /* first token of the current request inspected */
    bool reading;          /* uv_read_start in effect */
    bool read_eof;         /* client sent EOF (or half-closed) */
    bool no_more;          /* parse no further request (close, error, upgrade) */
    bool lingering;        /* final response sent; draining input until EOF */
    bool timer_active;
    bool closing;          /* uv_close called */
    int handles_open;      /* tcp + timer, until their close callbacks */
    int reqs_pending;      /* write and shutdown requests not yet called back */
    unsigned n_exchanges;  /* exchanges in the queue plus those being written */
    uint64_t hdr_bytes;    /* bytes of the current header block so far */
    uint64_t phase_start;  /* loop time the current phase began (ms) */
    uint64_t idle_since;   /* loop time it joined the idle list */
    uint64_t write_since;  /* loop time of the last write progress */
    uint64_t deadline;     /* of the running timer */
    uint64_t linger_bytes; /* discarded while lingering */
    /* Events raised by parser callbacks (they pause the parser). */
    int ev;                /* HTTP_EV_* */
    int cb_error;          /* status to answer when a callback aborted parsing */
    /* Unparsed input kept when parsing stops at the pipeline bound, or
     * an incomplete method token. */
    char *pend;
    size_t pend_len, pend_cap;
    /* The request being parsed and its header offsets. */
    struct http_exchange *cur;
    struct http_hoff *hoffs;
    uint32_t n_hoffs, hoffs_cap;
    int last_hcb;          /* 0 none, 1 header field, 2 header value */
    /* A method token http-parser does not know (it rejects them): the
     * parser is fed "GET" instead and the request keeps the real name. */
    char ovr[33];
    uint8_t ovr_len;
    uv_shutdown_t sreq;
    /* Queue of exchanges not yet handed to uv_write, in request order. */
    struct http_exchange *q_head, *q_tail;
    /* The streamed response being written (out of the queue): every later
     * response waits until it has ended and been written. */
    struct http_exchange *active;
    size_t stream_inflight;  /* its bytes handed to uv_write, not yet written */
    char peer[64];
    uint8_t peer_ip[16];     /* the peer's address (IPv4 mapped) */
    bool peer_known;         /* getpeername succeeded */
    bool tls;                /* the connection is TLS (this server's) */
    struct http_addr_count *addr_count; /* its address's count (NULL: trusted, not counted) */
    struct ssl_st *ssl;      /* TLS state (tls.c); NULL: plain HTTP */
};

enum { HTTP_EV_NONE, HTTP_EV_HEADERS, HTTP_EV_MESSAGE };

struct http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    struct http_options opt;
    http_handler handler;
    void *ctx;
    struct http_stats stats;
    struct http_conn *conns;                 /* every live connection */
    struct http_conn *idle_head, *idle_tail; /* idle, oldest first */
    struct http_conn *held;                  /* connections whose streamed head waits */
    uv_idle_t held_idle;                     /* the next loop turn: writes those heads, finishes
                                              * the exchanges in written (http_server_next_turn) */
    /* Exchanges whose response went out at once (uv_try_write), finished
     * (freed, the connection resumed) at the next loop turn, as a uv_write
     * would have been; linked by their next. */
    struct http_exchange *written, *written_tail;
    bool held_idle_closed;
    uint64_t n_alive;                        /* connections not yet freed */
    struct http_trust trust;                 /* copy of opt.trust */
    /* Open connections per untrusted client address (server.c). */
    struct http_addr_count **addr_buckets;
    size_t n_addr_buckets;
    struct ssl_ctx_st *tls_ctx;              /* NULL: plain HTTP */
    bool listener_closed;
    bool stopping;
    void (*done)(void *);
    void *done_arg;
    /* Cached "Date: ...\r\n" line, reformatted at most once a second. */
    char date_line[64];
    size_t date_len;
    uint64_t date_next_ms;                   /* loop time it goes stale */
    /* One read buffer for every connection: input is parsed (and copied
     * into exchanges) before the read callback returns. */
    char *rbuf;
    size_t rbuf_cap;
};

/* trust.c */
/* "1.2.3.4", "::1", "[::1]" -> 16 bytes, IPv4 mapped into IPv6. */
bool http_ip_parse(const char *s, size_t len, uint8_t out[16]);
bool http_trust_has(const struct http_trust *t, const uint8_t addr[16]);
/* Deep copy (dst is initialised first); -1 if out of memory. */
int http_trust_copy(struct http_trust *dst, const struct http_trust *src);
/* req's client address (into client) and whether it came over TLS, from
 * the TCP peer (peer_known false: unknown), the X-Forwarded-For and
 * X-Forwarded-Proto headers of trusted proxies, and this server's own TLS. */
void http_trust_resolve(const struct http_trust *t, const uint8_t peer[16], bool peer_known,
                        const struct http_request *req, bool tls, char *client, size_t cap, bool *secure);

/* tls.c */
int http_tls_ctx_create(const char *cert_file, const char *key_file, struct ssl_ctx_st **out, char *err,
                        size_t errcap);
void http_tls_ctx_free(struct ssl_ctx_st *ctx);
/* Gives c its TLS state (server side, before the handshake); -1 if out of memory. */
int http_tls_conn_init(struct http_conn *c);
void http_tls_conn_free(struct http_conn *c);
/* Ciphertext read from c's socket: decrypts and passes the plaintext to
 * http_conn_input; answers the handshake; closes c on a TLS failure. */
void http_tls_input(struct http_conn *c, const char *data, size_t len);
/* Every write to c's socket: uv_write, or with TLS the bufs encrypted into
 * a buffer of the write's own (the bufs may be freed once cb runs, as with
 * uv_write). cb gets req back. Returns uv_write's result. */
int http_conn_write(struct http_conn *c, uv_write_t *req, const uv_buf_t *bufs, unsigned nbufs, uv_write_cb cb);
/* Sends a TLS close_notify (before half-closing the socket). */
void http_tls_close_notify(struct http_conn *c);

/* stream.c: a connection whose held head must not wait any more (it is
 * closing), and writing the held heads (at the next loop turn). */
void http_stream_release_head(struct http_conn *c);
void http_stream_run_held(struct http_server *s);

/* server.c: the idle callback of s->held_idle (held heads, written
 * exchanges); started by whoever gives it work. */
void http_server_next_turn(uv_idle_t *h);

/* conn.c */
/* Parses new input (already read into data) as far as the pipeline bound
 * allows, dispatching complete requests; keeps the rest in c->pend. */
void http_conn_input(struct http_conn *c, const char *data, size_t len);
/* Writes every answered exchange at the front of the queue, and a pending
 * 100 Continue. */
void http_conn_flush(struct http_conn *c);
/* Finishes the exchanges in s->written (see struct http_server). */
void http_conn_finish_written(struct http_server *s);
/* Frees an exchange's memory (not its queue links). */
void http_exchange_free(struct http_exchange *x);
/* Parses the remaining buffered input and restarts reading when the
 * pipeline bound allows. */
void http_conn_resume(struct http_conn *c);
/* The client sent EOF: answer what can still be answered, then close. */
void http_conn_eof(struct http_conn *c);
/* Queues an error response (400/413/431) after the pending ones, stops
 * parsing, and closes after it is written. */
void http_conn_fail(struct http_conn *c, int status);

/* Formats x's response head (status line, Date, Content-Length or
 * Transfer-Encoding by x->stream_mode, Connection, headers) and marks x
 * answered; head_len 0 if out of memory. */
void http_conn_build_head(struct http_exchange *x, int status, const char *headers);

/* stream.c */
/* Called by http_conn_flush for a streamed exchange at the queue's front:
 * takes it out of the queue as c->active and writes what it has. */
void http_stream_activate(struct http_conn *c, struct http_exchange *x);
/* The connection is closing: the active exchange is freed (if ended) or
 * detached; a detached producer waiting for drain is told. */
void http_stream_conn_closed(struct http_conn *c);
/* x was just detached: wake its producer if it waits for drain. */
void http_stream_detached(struct http_exchange *x);

/* server.c */
/* Closes the connection now; exchanges held by the handler are detached. */
void http_conn_close(struct http_conn *c);
/* Recomputes the connection's timer and idle-list membership after any
 * change of state. */
void http_conn_update_timer(struct http_conn *c);
/* Starts or stops reading the socket. */
void http_conn_read_start(struct http_conn *c);
/* Starts serving an accepted connection whose tcp handle is open and whose
 * srv is set: its timer, parser, place in the server's list, first read.
 * server.c (on_connection); fuzz/fuzz_http.c over a socketpair. */
void http_conn_begin(struct http_conn *c);
void http_conn_read_stop(struct http_conn *c);
/* After the final response of a closing connection: half-close and drain. */
void http_conn_linger(struct http_conn *c);
/* Frees the connection once nothing refers to it any more. */
void http_conn_maybe_free(struct http_conn *c);
/* The cached Date header line, refreshed when a second has passed. */
const char *http_server_date(struct http_server *s, size_t *len);

#endif
