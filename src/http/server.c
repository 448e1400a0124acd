/*
 * server.c — the HTTP server's life on the libuv loop: binding and
 * listening, accepting (evicting the longest-idle connection at
 * max_connections), each connection's single timer (header, body, idle,
 * write-stall and linger deadlines), closing, lingering after a final
 * response, and stopping. What happens to the bytes of a connection is
 * conn.c's business.
 *
 * A connection is closed in one place (http_conn_close) and freed in one
 * place (http_conn_maybe_free), only when its two handles have closed and
 * every write or shutdown request it issued has called back.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/internal.h"

#define HTTP_LINGER_MS 3000           /* drain input this long after a final response */
#define HTTP_LINGER_MAX (256 * 1024)  /* or until this much was discarded */
#define HTTP_RBUF (64 * 1024)

void http_options_default(struct http_options *o)
{
    memset(o, 0, sizeof *o);
    o->max_header_bytes = 8192;
    o->max_body_bytes = 65536;
    o->header_timeout_ms = 10000;
    o->body_timeout_ms = 30000;
    o->idle_timeout_ms = 60000;
    o->max_connections = 4096;
    o->max_pipeline = 16;
    o->max_stream_queue = 256 * 1024;
    o->max_conns_per_addr = 256;
    o->min_body_rate = 4096;
    o->body_grace_ms = 2000;
}

/* ---- Date ---------------------------------------------------------------- */

const char *http_server_date(struct http_server *s, size_t *len)
{
    static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    uint64_t now = uv_now(s->loop);
    if (s->date_len == 0 || now >= s->date_next_ms) {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        int n = snprintf(s->date_line, sizeof s->date_line,
                         "Date: %s, %02d %s %04d %02d:%02d:%02d GMT\r\n", days[tm.tm_wday % 7],
                         tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour,
                         tm.tm_min, tm.tm_sec);
        s->date_len = n > 0 && (size_t)n < sizeof s->date_line ? (size_t)n : 0;
        /* Stale at the next wall-clock second. */
        s->date_next_ms = now + (uint64_t)(1000 - ts.tv_nsec / 1000000);
    }
    *len = s->date_len;
    return s->date_line;
}

/* ---- idle list ------------------------------------------------------------- */

static void idle_add(struct http_conn *c)
{
    struct http_server *s = c->srv;
    if (c->in_idle_list) return;
    c->in_idle_list = true;
    c->idle_since = uv_now(s->loop);
    c->idle_next = NULL;
    c->idle_prev = s->idle_tail;
    if (s->idle_tail) s->idle_tail->idle_next = c;
    else s->idle_head = c;
    s->idle_tail = c;
}

static void idle_remove(struct http_conn *c)
{
    struct http_server *s = c->srv;
    if (!c->in_idle_list) return;
    c->in_idle_list = false;
    if (c->idle_prev) c->idle_prev->idle_next = c->idle_next;
    else s->idle_head = c->idle_next;
    if (c->idle_next) c->idle_next->idle_prev = c->idle_prev;
    else s->idle_tail = c->idle_prev;
    c->idle_prev = c->idle_next = NULL;
}

/* ---- timers ---------------------------------------------------------------- */

enum { T_NONE, T_HEADER, T_BODY, T_IDLE, T_WRITE, T_LINGER };

/* Which deadline applies now. Nothing runs while the handler holds a
 * request: a write waiting for its Raft entry is the server's delay, not
 * the client's. */
static int timer_kind(const struct http_conn *c)
{
    if (c->lingering) return T_LINGER;
    if (c->pstate == HTTP_P_HEADERS) return T_HEADER;
    if (c->pstate == HTTP_P_BODY) return T_BODY;
    if (c->n_exchanges == 0) return T_IDLE;
    if ((c->q_head == NULL || c->active) && c->reqs_pending > 0) return T_WRITE;
    return T_NONE;
}

static void on_timer(uv_timer_t *t)
{
    struct http_conn *c = t->data;
    struct http_server *s = c->srv;
    c->timer_active = false;
    switch (timer_kind(c)) {
    case T_HEADER: case T_BODY: case T_WRITE: s->stats.timed_out++; break;
    case T_IDLE: s->stats.idle_closed++; break;
    default: break;
    }
    http_conn_close(c);
}

void http_conn_update_timer(struct http_conn *c)
{
    struct http_server *s = c->srv;
    const struct http_options *o = &s->opt;
    uint64_t deadline;
    int kind;
    if (c->closing) return;
    kind = timer_kind(c);
    if (kind == T_IDLE) idle_add(c);
    else idle_remove(c);
    switch (kind) {
    case T_HEADER: deadline = c->phase_start + o->header_timeout_ms; break;
    case T_BODY: {
        /* The body as a whole within body_timeout_ms, and meanwhile at
         * min_body_rate on average after a grace period: a client sending a
         * byte now and then would otherwise hold its slot for the whole
         * timeout. */
        uint64_t got = c->cur ? c->cur->body_len : 0;
        uint64_t by_rate = c->phase_start + o->body_grace_ms + got * 1000 / o->min_body_rate;
        deadline = c->phase_start + o->body_timeout_ms;
        if (by_rate < deadline) deadline = by_rate;
        break;
    }
    case T_IDLE: deadline = c->idle_since + o->idle_timeout_ms; break;
    case T_WRITE: deadline = c->write_since + o->idle_timeout_ms; break;
    case T_LINGER: deadline = c->phase_start + HTTP_LINGER_MS; break;
    default:
        if (c->timer_active) { uv_timer_stop(&c->timer); c->timer_active = false; }
        return;
    }
    if (c->timer_active && c->deadline == deadline) return;
    uint64_t now = uv_now(s->loop);
    c->deadline = deadline;
    c->timer_active = true;
    uv_timer_start(&c->timer, on_timer, deadline > now ? deadline - now : 0, 0);
}

/* ---- reading ---------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct http_conn *c = h->data;
    struct http_server *s = c->srv;
    /* Shared: libuv calls on_read right after on_alloc, and on_read parses
     * (copies out) everything before returning. */
    *buf = uv_buf_init(s->rbuf, (unsigned)s->rbuf_cap);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct http_conn *c = stream->data;
    if (nread == 0 || c->closing) return;
    if (nread < 0) {
        if (nread != UV_EOF || c->lingering) { http_conn_close(c); return; }
        /* The client finished sending. Answer what it asked for, then
         * close; a request cut short is dropped. */
        c->read_eof = true;
        http_conn_read_stop(c);
        http_conn_eof(c);
        return;
    }
    if (c->lingering) {
        c->linger_bytes += (uint64_t)nread;
        if (c->linger_bytes > HTTP_LINGER_MAX) http_conn_close(c);
        return;
    }
    if (c->ssl) http_tls_input(c, buf->base, (size_t)nread);
    else http_conn_input(c, buf->base, (size_t)nread);
}

void http_conn_read_start(struct http_conn *c)
{
    if (c->reading || c->closing) return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
        http_conn_close(c);
        return;
    }
    c->reading = true;
}

void http_conn_read_stop(struct http_conn *c)
{
    if (!c->reading) return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
}

/* ---- connections per client address ----------------------------------------- */

static size_t addr_bucket(const struct http_server *s, const uint8_t ip[16])
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < 16; i++) h = (h ^ ip[i]) * 16777619u;
    return h & (s->n_addr_buckets - 1);
}

/* Counts c against its address; false if that address is at its limit
 * (or out of memory). Trusted proxies are not counted. An IPv6 client
 * counts as its /64 (one subscriber's addresses). */
static bool addr_admit(struct http_server *s, struct http_conn *c)
{
    static const uint8_t v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    if (!c->peer_known || http_trust_has(&s->trust, c->peer_ip)) return true;
    uint8_t ip[16];
    memcpy(ip, c->peer_ip, 16);
    if (memcmp(ip, v4_mapped, 12)) memset(ip + 8, 0, 8);
    struct http_addr_count **head = &s->addr_buckets[addr_bucket(s, ip)], *a = *head;
    while (a && memcmp(a->ip, ip, 16)) a = a->next;
    if (!a) {
        if (!(a = calloc(1, sizeof *a))) return false;
        memcpy(a->ip, ip, 16);
        a->next = *head;
        *head = a;
    }
    if (a->n >= s->opt.max_conns_per_addr) return false;
    a->n++;
    c->addr_count = a;
    return true;
}

static void addr_release(struct http_server *s, struct http_conn *c)
{
    struct http_addr_count *a = c->addr_count;
    c->addr_count = NULL;
    if (!a || --a->n) return;
    for (struct http_addr_count **pp = &s->addr_buckets[addr_bucket(s, a->ip)]; *pp; pp = &(*pp)->next)
        if (*pp == a) {
            *pp = a->next;
            free(a);
            return;
        }
}

/* ---- closing ---------------------------------------------------------------- */

static void maybe_done(struct http_server *s)
{
    if (!s->stopping || !s->listener_closed || !s->held_idle_closed || s->n_alive) return;
    void (*done)(void *) = s->done;
    void *arg = s->done_arg;
    http_trust_free(&s->trust);
    http_tls_ctx_free(s->tls_ctx);
    free(s->addr_buckets); /* empty: every connection has released its count */
    free(s->rbuf);
    free(s);
    if (done) done(arg);
}

void http_conn_maybe_free(struct http_conn *c)
{
    if (!c->closing || c->handles_open || c->reqs_pending) return;
    struct http_server *s = c->srv;
    http_tls_conn_free(c);
    free(c->pend);
    free(c->hoffs);
    free(c);
    s->n_alive--;
    maybe_done(s);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    struct http_conn *c = h->data;
    c->handles_open--;
    http_conn_maybe_free(c);
}

void http_conn_close(struct http_conn *c)
{
    struct http_server *s = c->srv;
    if (c->closing) return;
    c->closing = true;
    idle_remove(c);
    http_stream_release_head(c);
    if (c->prev) c->prev->next = c->next;
    else s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
    s->stats.connections_open--;
    addr_release(s, c);
    http_conn_read_stop(c);
    uv_timer_stop(&c->timer);
    c->timer_active = false;
    /* Exchanges the handler holds are detached and stay valid until
     * http_respond; the others die with the connection. */
    http_stream_conn_closed(c);
    struct http_exchange *x = c->q_head, *next;
    for (; x; x = next) {
        next = x->next;
        x->next = NULL;
        c->n_exchanges--;
        if (x->dispatched && !x->responded) {
            x->conn = NULL;
            http_stream_detached(x);
        } else {
            http_exchange_free(x);
        }
    }
    c->q_head = c->q_tail = NULL;
    c->cur = NULL;
    c->pend_len = 0;
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct http_conn *c = req->data;
    c->reqs_pending--;
    if (c->closing) http_conn_maybe_free(c);
    else if (status < 0) http_conn_close(c);
}

/* After a response with Connection: close. Closing at once could reset the
 * connection (unread input makes the kernel send RST), and an RST can
 * destroy the response before the client reads it. So: send FIN, discard
 * input until the client closes, for at most HTTP_LINGER_MS. */
void http_conn_linger(struct http_conn *c)
{
    if (c->closing) return;
    if (c->read_eof) { http_conn_close(c); return; }
    c->lingering = true;
    c->pend_len = 0;
    http_tls_close_notify(c);
    c->sreq.data = c;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
        http_conn_close(c);
        return;
    }
    c->reqs_pending++;
    c->phase_start = uv_now(c->srv->loop);
    http_conn_read_start(c);
    http_conn_update_timer(c);
}

/* ---- accepting --------------------------------------------------------------- */

static void format_peer(struct http_conn *c)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    strcpy(c->peer, "?");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) < 0) return;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        uv_ip4_name(a, ip, sizeof ip);
        port = ntohs(a->sin_port);
        snprintf(c->peer, sizeof c->peer, "%s:%d", ip, port);
        c->peer_known = http_ip_parse(ip, strlen(ip), c->peer_ip);
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        uv_ip6_name(a, ip, sizeof ip);
        port = ntohs(a->sin6_port);
        snprintf(c->peer, sizeof c->peer, "[%s]:%d", ip, port);
        memcpy(c->peer_ip, &a->sin6_addr, 16);
        c->peer_known = true;
    }
}

static void on_refused_closed(uv_handle_t *h)
{
    free(h);
}

/* The connection that has been sending its current request longest (its
 * header block or its body), or NULL. Only asked when every slot is taken. */
static struct http_conn *oldest_sender(struct http_server *s)
{
    struct http_conn *best = NULL;
    for (struct http_conn *c = s->conns; c; c = c->next)
        if (!c->closing && !c->lingering && (c->pstate == HTTP_P_HEADERS || c->pstate == HTTP_P_BODY) &&
            (!best || c->phase_start <= best->phase_start)) /* newest first: ties go to the older */
            best = c;
    return best;
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct http_server *s = listener->data;
    if (status < 0 || s->stopping) return;
    struct http_conn *c = calloc(1, sizeof *c);
    if (!c) return;
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    /* tcp is c's first member: on_refused_closed frees c. */
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) < 0) {
        uv_close((uv_handle_t *)&c->tcp, on_refused_closed);
        return;
    }
    format_peer(c);
    if (!addr_admit(s, c)) {
        s->stats.refused_addr++;
        uv_close((uv_handle_t *)&c->tcp, on_refused_closed);
        return;
    }
    if (s->stats.connections_open >= s->opt.max_connections) {
        struct http_conn *victim;
        if (s->idle_head) {
            /* Idle clients must not starve new ones: drop the one idle
             * longest. */
            s->stats.evicted_idle++;
            http_conn_close(s->idle_head);
        } else if ((victim = oldest_sender(s)) != NULL) {
            /* Nor slow ones: a request still arriving after everyone
             * else's is the likeliest to be an attack, and its client can
             * retry. Requests the handler holds are never dropped. */
            s->stats.evicted_slow++;
            http_conn_close(victim);
        } else {
            /* Every connection waits for the handler or its response. */
            s->stats.refused_full++;
            addr_release(s, c);
            uv_close((uv_handle_t *)&c->tcp, on_refused_closed);
            return;
        }
    }
    if (s->tls_ctx && http_tls_conn_init(c) < 0) {
        addr_release(s, c);
        uv_close((uv_handle_t *)&c->tcp, on_refused_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    http_conn_begin(c);
}

void http_conn_begin(struct http_conn *c)
{
    struct http_server *s = c->srv;
    uv_timer_init(s->loop, &c->timer);
    c->timer.data = c;
    c->handles_open = 2;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    s->n_alive++;
    s->stats.connections_accepted++;
    s->stats.connections_open++;
    c->pstate = HTTP_P_IDLE;
    http_conn_read_start(c);
    if (!c->closing) http_conn_update_timer(c);
}

/* ---- starting and stopping --------------------------------------------------- */

/* "host:port", "[v6]:port", "name:port" -> sockaddr. */
static int resolve(uv_loop_t *loop, const char *addr, struct sockaddr_storage *out,
                   char *err, size_t errcap)
{
    char host[256];
    const char *colon, *h = addr;
    size_t hlen;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close || close[1] != ':') goto bad;
        h = addr + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon) goto bad;
        hlen = (size_t)(colon - addr);
    }
    if (hlen >= sizeof host) goto bad;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    if (hlen == 0) strcpy(host, "0.0.0.0");
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || port < 0 || port > 65535) goto bad;

    memset(out, 0, sizeof *out);
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)out) == 0) return 0;
    if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)out) == 0) return 0;
    uv_getaddrinfo_t req;
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int r = uv_getaddrinfo(loop, &req, NULL, host, NULL, &hints);
    if (r < 0) {
        snprintf(err, errcap, "http: cannot resolve host \"%s\" of %s: %s", host, addr, uv_strerror(r));
        return -1;
    }
    memcpy(out, req.addrinfo->ai_addr, req.addrinfo->ai_addrlen);
    uv_freeaddrinfo(req.addrinfo);
    if (out->ss_family == AF_INET) ((struct sockaddr_in *)out)->sin_port = htons((uint16_t)port);
    else ((struct sockaddr_in6 *)out)->sin6_port = htons((uint16_t)port);
    return 0;
bad:
    snprintf(err, errcap, "http: bad listen address \"%s\": want host:port, [v6]:port or name:port", addr);
    return -1;
}

/* A server that could not start: its two handles close, the second frees it. */
static void on_early_closed(uv_handle_t *h)
{
    struct http_server *s = h->data;
    if (h == (uv_handle_t *)&s->listener) s->listener_closed = true;
    else s->held_idle_closed = true;
    if (!s->listener_closed || !s->held_idle_closed) return;
    http_trust_free(&s->trust);
    http_tls_ctx_free(s->tls_ctx);
    free(s->addr_buckets); /* empty: every connection has released its count */
    free(s->rbuf);
    free(s);
}

int http_server_start(uv_loop_t *loop, const char *addr, const struct http_options *o,
                      http_handler handler, void *ctx, struct http_server **out,
                      char *err, size_t errcap)
{
    struct http_options def;
    struct sockaddr_storage sa;
    int r;
    http_options_default(&def);
    *out = NULL;
    if (!handler) {
        snprintf(err, errcap, "http: no handler given");
        return -1;
    }
    if (resolve(loop, addr, &sa, err, errcap) < 0) return -1;
    struct http_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errcap, "http: out of memory");
        return -1;
    }
    s->opt = o ? *o : def;
    /* A zero field means the default. */
    if (!s->opt.max_header_bytes) s->opt.max_header_bytes = def.max_header_bytes;
    if (!s->opt.max_body_bytes) s->opt.max_body_bytes = def.max_body_bytes;
    if (!s->opt.header_timeout_ms) s->opt.header_timeout_ms = def.header_timeout_ms;
    if (!s->opt.body_timeout_ms) s->opt.body_timeout_ms = def.body_timeout_ms;
    if (!s->opt.idle_timeout_ms) s->opt.idle_timeout_ms = def.idle_timeout_ms;
    if (!s->opt.max_connections) s->opt.max_connections = def.max_connections;
    if (!s->opt.max_pipeline) s->opt.max_pipeline = def.max_pipeline;
    if (!s->opt.max_stream_queue) s->opt.max_stream_queue = def.max_stream_queue;
    if (!s->opt.max_conns_per_addr) s->opt.max_conns_per_addr = def.max_conns_per_addr;
    if (!s->opt.min_body_rate) s->opt.min_body_rate = def.min_body_rate;
    if (!s->opt.body_grace_ms) s->opt.body_grace_ms = def.body_grace_ms;
    if (s->opt.max_header_bytes > 1024 * 1024 || s->opt.max_body_bytes > (64u << 20)) {
        snprintf(err, errcap, "http: limits too large (max_header_bytes %zu, at most 1 MiB; "
                 "max_body_bytes %zu, at most 64 MiB)", s->opt.max_header_bytes, s->opt.max_body_bytes);
        free(s);
        return -1;
    }
    /* http-parser's own cap (80 KiB by default) must not be the tighter one. */
    if (s->opt.max_header_bytes + 1024 > 80 * 1024)
        http_parser_set_max_header_size((uint32_t)s->opt.max_header_bytes + 1024);
    /* A write to a connection the client reset must fail with EPIPE, not
     * kill the process. */
    signal(SIGPIPE, SIG_IGN);
    s->loop = loop;
    s->handler = handler;
    s->ctx = ctx;
    s->rbuf_cap = HTTP_RBUF;
    s->rbuf = malloc(s->rbuf_cap);
    s->n_addr_buckets = 1024;
    s->addr_buckets = calloc(s->n_addr_buckets, sizeof *s->addr_buckets);
    if (!s->rbuf || !s->addr_buckets || http_trust_copy(&s->trust, s->opt.trust) < 0) {
        free(s->addr_buckets);
        free(s->rbuf);
        http_trust_free(&s->trust);
        snprintf(err, errcap, "http: out of memory");
        free(s);
        return -1;
    }
    s->opt.trust = NULL; /* the caller's; s->trust is ours */
    if ((s->opt.tls_cert_file || s->opt.tls_key_file) &&
        http_tls_ctx_create(s->opt.tls_cert_file, s->opt.tls_key_file, &s->tls_ctx, err, errcap) < 0) {
        http_trust_free(&s->trust);
        free(s->addr_buckets);
        free(s->rbuf);
        free(s);
        return -1;
    }
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    uv_idle_init(loop, &s->held_idle);
    s->held_idle.data = s;
    r = uv_tcp_bind(&s->listener, (const struct sockaddr *)&sa, 0);
    if (r == 0) r = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
    if (r < 0) {
        snprintf(err, errcap, "http: cannot listen on %s: %s (is another process using the port?)",
                 addr, uv_strerror(r));
        uv_close((uv_handle_t *)&s->listener, on_early_closed);
        uv_close((uv_handle_t *)&s->held_idle, on_early_closed);
        return -1;
    }
    *out = s;
    return 0;
}

int http_server_port(const struct http_server *s)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len) < 0) return -1;
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

void http_server_get_stats(const struct http_server *s, struct http_stats *out)
{
    *out = s->stats;
}

static void on_listener_closed(uv_handle_t *h)
{
    struct http_server *s = h->data;
    s->listener_closed = true;
    maybe_done(s);
}

static void on_held_idle_closed(uv_handle_t *h)
{
    struct http_server *s = h->data;
    s->held_idle_closed = true;
    maybe_done(s);
}

void http_server_next_turn(uv_idle_t *h)
{
    struct http_server *s = h->data;
    http_conn_finish_written(s);
    http_stream_run_held(s);
    if (!s->written && !s->held) uv_idle_stop(h);
}

void http_server_stop(struct http_server *s, void (*done)(void *arg), void *arg)
{
    if (s->stopping) return;
    s->stopping = true;
    s->done = done;
    s->done_arg = arg;
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
    while (s->conns) http_conn_close(s->conns);
    /* The idle handle closes now: what it would have finished is finished
     * here (every connection is closing; this frees the exchanges). */
    http_conn_finish_written(s);
    uv_close((uv_handle_t *)&s->held_idle, on_held_idle_closed);
}
