/*
 * gateway.c — `linkraft gateway`: the seed's "client server", minus its
 * single point of failure. It holds no state, so any number may run.
 *
 *   - Health: every node is asked /readyz and /leaderz every
 *     GW_CHECK_MS; answers time the node (an average of recent latencies).
 *   - Reads (GET, HEAD) go to a ready node, the fastest to answer first
 *     (the seed's "closest server"), spread over the nodes within a margin
 *     of the fastest.
 *   - Writes (every other method) go to the leader. When several nodes
 *     claim to lead (an old leader paused or cut off from the majority has
 *     not noticed yet), the one with the highest term wins (/leaderz says
 *     it in X-Raft-Term), then the one that became leader most recently.
 *   - Every write carries an Idempotency-Key (one is added if the client
 *     sent none), so when the leader dies mid-request the write is retried
 *     on the next leader without being done twice, and the user sees one
 *     success.
 *   - Gray failures: a node that accepts connections but does not answer
 *     (paused, overloaded to a halt, cut off one way) never holds a request
 *     for long. Every attempt is watched on the cluster's clock, not the
 *     client's: it is abandoned and sent elsewhere once its node has missed
 *     its health checks for about an election timeout (--election-timeout-ms),
 *     and a write also as soon as another node has become the leader. A
 *     write goes again under its Idempotency-Key (the first attempt, if it
 *     ever commits, is then answered by the repeat), so a paused leader
 *     stalls writes about as long as a killed one does.
 *   - Answers are relayed as they arrive (head, then body pieces), with
 *     back-pressure: while the client's connection has too much queued, the
 *     node's connection is not read. A request may be retried on another
 *     node only until the first byte of an answer has been relayed; an
 *     answer cut short after that closes the client's connection.
 *   - Request bodies are buffered whole (at most 64 KiB by SPEC §4), not
 *     streamed: a write is retried under its Idempotency-Key, which needs
 *     all of it at hand.
 */
#include "gateway.h"

#include <sodium.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "sys/cluster_file.h"
#include "common/buf.h"
#include "common/json.h"
#include "http.h"
#include "http_client.h"
#include "sys/log.h"

#define GW_CHECK_MS 200        /* health checks several times a second */
#define GW_CHECK_TIMEOUT_MS 400
#define GW_WATCH_MS 25         /* how often an attempt in flight is looked at */
#define GW_REQUEST_TIMEOUT_MS 6000
#define GW_RETRY_BUDGET_MS 8000
#define GW_MAX_NODES CLUSTER_MAX_MEMBERS

struct gw_node {
    const struct cluster_member *m;
    bool ready, leader;
    uint64_t leader_since;     /* when /leaderz turned 200 */
    uint64_t term;             /* as its last /leaderz said (X-Raft-Term; 0: not said) */
    uint64_t last_answer;      /* when a health check last got any answer */
    uint64_t down_until;       /* not chosen before this (after a failed request) */
    double latency_ms;         /* moving average of health-check latency */
    bool checking_ready, checking_leader;
    uint64_t check_started;
};

struct gateway {
    uv_loop_t loop;
    struct cluster cluster;
    struct gw_node nodes[GW_MAX_NODES];
    size_t n_nodes;
    struct http_client *client;
    struct http_server *http;
    uv_timer_t check_timer;
    uv_signal_t sig_term, sig_int;
    unsigned election_ms;      /* the nodes' longest election timeout */
    unsigned rr;
    bool stopping;
};

/* ---- Health checks --------------------------------------------------------------- */

struct gw_check {
    struct gateway *g;
    struct gw_node *node;
    bool leaderz;
    uint64_t started;
};

static uint64_t header_u64(const struct http_client_response *resp, const char *name)
{
    for (size_t i = 0; i < resp->n_headers; i++)
        if (!strcasecmp(resp->headers[i].name, name))
            return strtoull(resp->headers[i].value, NULL, 10);
    return 0;
}

static void check_done(void *arg, int err, const struct http_client_response *resp)
{
    struct gw_check *c = arg;
    struct gw_node *nd = c->node;
    uint64_t now = uv_now(&c->g->loop);
    bool ok = err == HTTPC_OK && resp->status == 200;
    if (err == HTTPC_OK) {
        nd->last_answer = now;
        double ms = (double)(now - c->started);
        nd->latency_ms = nd->latency_ms == 0 ? ms + 0.01 : 0.8 * nd->latency_ms + 0.2 * ms;
    }
    if (c->leaderz) {
        nd->checking_leader = false;
        if (err == HTTPC_OK)
            nd->term = header_u64(resp, "X-Raft-Term");
        if (ok && !nd->leader) {
            nd->leader_since = now;
            log_info("node %llu is the leader", (unsigned long long)nd->m->id);
        }
        nd->leader = ok;
    } else {
        nd->checking_ready = false;
        if (nd->ready != ok)
            log_info("node %llu is %s", (unsigned long long)nd->m->id, ok ? "ready" : "not ready");
        nd->ready = ok;
    }
    free(c);
}

static void check_node(struct gateway *g, struct gw_node *nd, bool leaderz)
{
    if (leaderz ? nd->checking_leader : nd->checking_ready)
        return;
    struct gw_check *c = calloc(1, sizeof *c);
    if (!c)
        return;
    *c = (struct gw_check){ g, nd, leaderz, uv_now(&g->loop) };
    if (http_client_request(g->client, nd->m->http_addr, "GET", leaderz ? "/leaderz" : "/readyz", NULL, NULL, 0,
                            GW_CHECK_TIMEOUT_MS, check_done, c)) {
        free(c);
        return;
    }
    if (leaderz)
        nd->checking_leader = true;
    else
        nd->checking_ready = true;
}

static void check_all(struct gateway *g)
{
    for (size_t i = 0; i < g->n_nodes; i++) {
        check_node(g, &g->nodes[i], false);
        check_node(g, &g->nodes[i], true);
    }
}

static void on_check_timer(uv_timer_t *t)
{
    check_all(t->data);
}

/* ---- Choosing a node ------------------------------------------------------------- */

static bool usable(const struct gateway *g, const struct gw_node *nd)
{
    return nd->down_until <= uv_now((uv_loop_t *)&g->loop);
}

/* A node that has answered no health check for longer than an election
 * timeout (and two check rounds, so that one slow answer is not enough):
 * it is paused, stuck or unreachable, whatever its connections say. Its
 * followers are electing a new leader by now. */
static bool silent(const struct gateway *g, const struct gw_node *nd, uint64_t now)
{
    uint64_t grace = g->election_ms > 2 * GW_CHECK_MS ? g->election_ms : 2 * GW_CHECK_MS;
    return now > nd->last_answer + grace;
}

/* Of the nodes that claim to lead, the one of the highest term: a deposed
 * leader that was paused or cut off says 200 until it hears of its
 * successor, and it may say so after the successor did (on resuming). Of
 * equal terms (or none said), the one that became leader most recently. */
static struct gw_node *pick_leader(struct gateway *g)
{
    struct gw_node *best = NULL;
    for (size_t i = 0; i < g->n_nodes; i++) {
        struct gw_node *nd = &g->nodes[i];
        if (nd->leader && usable(g, nd) &&
            (!best || nd->term > best->term || (nd->term == best->term && nd->leader_since > best->leader_since)))
            best = nd;
    }
    return best;
}

static struct gw_node *pick_reader(struct gateway *g, const struct gw_node *avoid)
{
    double best = -1;
    for (size_t i = 0; i < g->n_nodes; i++) {
        struct gw_node *nd = &g->nodes[i];
        if (nd->ready && usable(g, nd) && nd != avoid && (best < 0 || nd->latency_ms < best))
            best = nd->latency_ms;
    }
    if (best < 0)
        return NULL;
    /* Spread over every node within a margin of the fastest. */
    struct gw_node *near[GW_MAX_NODES];
    size_t n = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        struct gw_node *nd = &g->nodes[i];
        if (nd->ready && usable(g, nd) && nd != avoid && nd->latency_ms <= best * 1.5 + 1.0)
            near[n++] = nd;
    }
    return near[g->rr++ % n];
}

/* ---- Proxying ---------------------------------------------------------------------- */

struct gw_call {
    struct gateway *g;
    struct http_exchange *x;
    bool write;
    char *headers;             /* the request's headers as sent upstream */
    char *target;
    struct gw_node *node;      /* where it went last */
    bool to_leader;            /* ... as the leader (a write may go to any ready node) */
    uint64_t deadline;
    unsigned attempts;
    uv_timer_t retry;
    uv_timer_t watch;          /* looks at the attempt in flight (watch_cb) */
    uint64_t sent_at;          /* when the attempt in flight was sent */
    uint64_t watch_due;        /* when watch_cb should run next */
    /* The answer of the current attempt, relayed as it arrives. */
    struct http_client_req *up; /* in flight; NULL between attempts */
    bool relaying;             /* its head went to the client: no more retries */
    bool discard;              /* a write's 503: read and dropped, then retried */
};

static void call_free_cb(uv_handle_t *h)
{
    struct gw_call *c = h->data;
    free(c->headers);
    free(c->target);
    free(c);
}

static void watch_closed(uv_handle_t *h)
{
    struct gw_call *c = h->data;
    uv_close((uv_handle_t *)&c->retry, call_free_cb);
}

static void call_end(struct gw_call *c)
{
    uv_close((uv_handle_t *)&c->watch, watch_closed);
}

static void call_fail(struct gw_call *c, int status, const char *code, const char *msg)
{
    struct buf b;
    buf_init(&b);
    json_write_error(&b, code, msg, NULL);
    size_t len;
    char *body = buf_take(&b, &len);
    if (body)
        http_respond_take(c->x, status, "Content-Type: application/json\r\nCache-Control: no-store\r\n", body, len);
    else
        http_respond(c->x, status, NULL, "", 0);
    call_end(c);
}

static void call_send(struct gw_call *c);

static void retry_cb(uv_timer_t *t)
{
    call_send(t->data);
}

/* Tries again later on another node, if time remains. */
static void call_retry(struct gw_call *c, const char *why)
{
    struct gateway *g = c->g;
    uint64_t now = uv_now(&g->loop);
    if (now >= c->deadline || g->stopping) {
        char msg[200];
        snprintf(msg, sizeof msg, "no node could take the request in time (%s)%s", why,
                 c->write ? "; it was not done, or done once: retry with the same Idempotency-Key" : "");
        call_fail(c, 503, "unavailable", msg);
        return;
    }
    check_all(g); /* learn the new leader as soon as it is known */
    unsigned delay = c->attempts < 3 ? 10u * c->attempts : 50u;
    uv_timer_start(&c->retry, retry_cb, delay, 0);
}

/* The client connection has room again (or went away: the next write then
 * says so). */
static void client_drained(void *arg)
{
    struct gw_call *c = arg;
    if (c->up)
        http_client_resume(c->up);
}

/* The client went away while the answer was being relayed. */
static void call_gone(struct gw_call *c)
{
    http_client_cancel(c->up);
    c->up = NULL;
    http_respond_end(c->x); /* frees the detached exchange */
    call_end(c);
}

/* Content-Length of an answer, or -1 (none, or chunked). */
static int64_t content_length(const struct http_header *h, size_t n)
{
    int64_t len = -1;
    for (size_t i = 0; i < n; i++) {
        if (h[i].name_len == 17 && !strncasecmp(h[i].name, "transfer-encoding", 17))
            return -1;
        if (h[i].name_len != 14 || strncasecmp(h[i].name, "content-length", 14) || !h[i].value_len ||
            h[i].value_len > 18)
            continue;
        int64_t v = 0;
        for (size_t j = 0; j < h[i].value_len; j++) {
            if (h[i].value[j] < '0' || h[i].value[j] > '9')
                return -1;
            v = v * 10 + (h[i].value[j] - '0');
        }
        len = v;
    }
    return len;
}

static void upstream_head(void *arg, int status, const struct http_header *headers, size_t n_headers)
{
    struct gw_call *c = arg;
    if (status == 503 && c->write) {
        /* not_leader / no_leader / unavailable: leadership is moving. The
         * answer is read to its end (keeping the connection) and dropped. */
        c->discard = true;
        return;
    }
    struct buf h;
    buf_init(&h);
    http_headers_copy(&h, headers, n_headers, NULL);
    if (h.oom) {
        buf_free(&h);
        http_client_cancel(c->up);
        c->up = NULL;
        call_fail(c, 503, "unavailable", "out of memory");
        return;
    }
    /* From here on nothing of this request is retried: the client has
     * (part of) an answer, and a second one would be mixed into it. */
    c->relaying = true;
    http_respond_on_drain(c->x, client_drained, c);
    int rc = http_respond_start(c->x, status, h.p, content_length(headers, n_headers));
    buf_free(&h);
    if (rc == HTTP_STREAM_GONE)
        call_gone(c);
}

static void upstream_body(void *arg, const char *data, size_t len)
{
    struct gw_call *c = arg;
    if (c->discard)
        return;
    int rc = http_respond_write(c->x, data, len);
    if (rc == HTTP_STREAM_GONE)
        call_gone(c);
    else if (rc == HTTP_STREAM_FULL)
        http_client_pause(c->up); /* resumed by client_drained */
}

static void upstream_done(void *arg, int err)
{
    struct gw_call *c = arg;
    struct gateway *g = c->g;
    c->up = NULL;
    uv_timer_stop(&c->watch);
    if (c->discard) {
        c->discard = false;
        if (c->node)
            c->node->leader = false;
        call_retry(c, "leadership is changing");
        return;
    }
    if (err && c->relaying) {
        /* Cut short mid-body: closing the client's connection is the only
         * honest thing left (it sees a truncated answer, never a mixed one). */
        log_warn("%s: answer from %s cut short: %s", c->target, c->node ? c->node->m->http_addr : "?",
                 http_client_strerror(err));
        http_respond_abort(c->x);
        call_end(c);
        return;
    }
    if (err) {
        if (c->node)
            c->node->down_until = uv_now(&g->loop) + 2 * GW_CHECK_MS;
        if (c->node && c->write)
            c->node->leader = false; /* until its next health check says otherwise */
        /* A read is always safe to repeat; a write is, under its
         * Idempotency-Key: the leader that took it either committed it
         * (the repeat returns the first result) or did not. */
        call_retry(c, http_client_strerror(err));
        return;
    }
    http_respond_end(c->x);
    call_end(c);
}

static const struct http_client_stream_cbs upstream_cbs = {
    .on_head = upstream_head,
    .on_body = upstream_body,
    .on_done = upstream_done,
};

/* An attempt in flight, looked at every GW_WATCH_MS until its answer
 * starts. It is abandoned (the request goes elsewhere) when
 *   - its node has gone silent (see silent()): a paused or cut-off node may
 *     answer in seconds or never, and the client should not wait for it;
 *   - it is a write, and another node has become the leader since it was
 *     sent: the node it went to may be a deposed leader that cannot learn
 *     so (cut off one way), and its entry, if it ever commits, does so
 *     under the new leader, where the repeat finds its Idempotency-Key.
 * A node that is merely slow (a long fsync, a queue) still answers its
 * health checks and is waited for, up to GW_REQUEST_TIMEOUT_MS. */
static void watch_cb(uv_timer_t *t)
{
    struct gw_call *c = t->data;
    struct gateway *g = c->g;
    struct gw_node *nd = c->node;
    if (!c->up || c->relaying || c->discard || !nd)
        return;
    uint64_t now = uv_now(&g->loop);
    if (now > c->watch_due + GW_WATCH_MS) {
        /* This process was not running for a while (CPU starved): the
         * health answers that came meanwhile are not read yet. Judge after
         * the loop has polled them. */
        c->watch_due = now + 1;
        uv_timer_start(&c->watch, watch_cb, 1, 0);
        return;
    }
    const char *why = NULL;
    struct gw_node *leader = c->write ? pick_leader(g) : NULL;
    if (now >= c->sent_at + g->election_ms / 2 && silent(g, nd, now))
        why = "its node stopped answering";
    else if (c->to_leader && leader && leader != nd && leader->leader_since > c->sent_at)
        why = "leadership moved";
    if (!why) {
        c->watch_due = now + GW_WATCH_MS;
        uv_timer_start(&c->watch, watch_cb, GW_WATCH_MS, 0);
        return;
    }
    log_info("%s %s: abandoned on node %llu after %llu ms (%s)%s", c->write ? "write" : "read", c->target,
             (unsigned long long)nd->m->id, (unsigned long long)(now - c->sent_at), why,
             c->write ? "; sent again under its Idempotency-Key" : "");
    http_client_cancel(c->up);
    c->up = NULL;
    if (silent(g, nd, now)) {
        nd->ready = nd->leader = false; /* until it answers a health check again */
        nd->down_until = now + 2 * GW_CHECK_MS;
    }
    call_retry(c, why);
}

static void call_send(struct gw_call *c)
{
    struct gateway *g = c->g;
    c->attempts++;
    struct gw_node *nd = c->write ? pick_leader(g) : pick_reader(g, NULL);
    c->to_leader = nd && c->write;
    if (!nd && c->write)
        nd = pick_reader(g, NULL); /* no leader known: any ready node forwards writes itself */
    if (!nd) {
        c->node = NULL;
        call_retry(c, "no ready node");
        return;
    }
    c->node = nd;
    const struct http_request *req = http_exchange_request(c->x);
    uint64_t left = c->deadline - uv_now(&g->loop);
    unsigned timeout = left < GW_REQUEST_TIMEOUT_MS ? (unsigned)left + 1 : GW_REQUEST_TIMEOUT_MS;
    /* The request body is buffered whole (at most max_body_bytes, 64 KiB
     * by SPEC §4) rather than streamed: a write can only be retried on
     * another node under its Idempotency-Key if all of it is at hand. */
    int rc = http_client_request_stream(g->client, nd->m->http_addr, req->method, c->target, c->headers,
                                        req->body, req->body_len, timeout, &upstream_cbs, c, &c->up);
    if (rc) {
        c->up = NULL;
        call_retry(c, http_client_strerror(rc));
        return;
    }
    c->sent_at = uv_now(&g->loop);
    c->watch_due = c->sent_at + GW_WATCH_MS;
    uv_timer_start(&c->watch, watch_cb, GW_WATCH_MS, 0);
}

/* The operator's endpoints — membership, leadership, moderators, backups, /metrics — are served
 * on each node's own port and never through the public gateway (SPEC §3).
 * The nodes route on the raw path too, so an encoded variant reaches no
 * admin handler there either. */
static bool gw_path_private(const char *path)
{
    return !strcmp(path, "/metrics") || !strcmp(path, "/api/v1/transfer-leader") ||
           !strcmp(path, "/api/v1/members") || !strncmp(path, "/api/v1/members/", 16) ||
           !strncmp(path, "/api/v1/moderators/", 19) || !strcmp(path, "/api/v1/backup");
}

static void handle(void *ctx, struct http_exchange *x)
{
    struct gateway *g = ctx;
    const struct http_request *req = http_exchange_request(x);
    if (!strcmp(req->path, "/gateway/healthz")) {
        http_respond(x, 200, "Content-Type: text/plain\r\n", "ok\n", 3);
        return;
    }
    if (gw_path_private(req->path)) {
        http_respond(x, 404, "Content-Type: text/plain\r\n", "not found\n", 10);
        return;
    }
    struct gw_call *c = calloc(1, sizeof *c);
    struct buf h, t;
    buf_init(&h);
    buf_init(&t);
    if (!c) {
        http_respond(x, 503, NULL, "out of memory\n", 14);
        return;
    }
    c->g = g;
    c->x = x;
    c->write = strcmp(req->method, "GET") && !req->head;
    c->deadline = uv_now(&g->loop) + GW_RETRY_BUDGET_MS;
    uv_timer_init(&g->loop, &c->retry);
    c->retry.data = c;
    uv_timer_init(&g->loop, &c->watch);
    c->watch.data = c;
    static const char *const replaced[] = { "x-forwarded-for", "x-forwarded-proto", NULL };
    http_headers_copy(&h, req->headers, req->n_headers, replaced);
    /* Ours, not the client's: https only if this gateway's TLS (or a
     * trusted proxy's) carried the request. */
    buf_printf(&h, "X-Forwarded-Proto: %s\r\n", req->secure ? "https" : "http");
    bool has_key = http_header_get(req, "Idempotency-Key", NULL) != NULL;
    /* The client as this gateway determined it (its peer, or what a proxy
     * it trusts named), alone: what the client wrote in X-Forwarded-For
     * itself must not reach a node, which may trust more addresses than we
     * do and would then believe it. */
    buf_printf(&h, "X-Forwarded-For: %s\r\n", req->client);
    /* The site checks a write's Origin against the host the client
     * addressed (this gateway), which Host no longer names. */
    size_t host_len;
    const char *host = http_header_get(req, "Host", &host_len);
    if (host && !http_header_get(req, "X-Forwarded-Host", NULL))
        buf_printf(&h, "X-Forwarded-Host: %.*s\r\n", (int)host_len, host);
    if (c->write && !has_key) {
        unsigned char key[16];
        char hex[33];
        randombytes_buf(key, sizeof key);
        sodium_bin2hex(hex, sizeof hex, key, sizeof key);
        buf_printf(&h, "Idempotency-Key: gw-%s\r\n", hex);
    }
    buf_puts(&t, req->path);
    if (req->query[0]) {
        buf_puts(&t, "?");
        buf_puts(&t, req->query);
    }
    if (h.oom || t.oom) {
        buf_free(&h);
        buf_free(&t);
        call_fail(c, 503, "unavailable", "out of memory");
        return;
    }
    c->headers = buf_take(&h, NULL);
    c->target = buf_take(&t, NULL);
    call_send(c);
}

/* ---- Lifecycle ---------------------------------------------------------------------- */

static void on_close(uv_handle_t *h)
{
    (void)h;
}

static void http_stopped(void *arg)
{
    (void)arg;
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct gateway *g = s->data;
    (void)signum;
    if (g->stopping)
        return;
    g->stopping = true;
    log_info("stopping");
    uv_close((uv_handle_t *)&g->check_timer, on_close);
    uv_close((uv_handle_t *)&g->sig_term, on_close);
    uv_close((uv_handle_t *)&g->sig_int, on_close);
    /* Already stopping: a second SIGTERM/SIGINT (Ctrl-C reaches a whole
     * process group, and `linkraft demo` forwards it too) must not kill
     * the process halfway through its clean stop. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    http_server_stop(g->http, http_stopped, g);
    http_client_destroy(g->client);
}

/* Whose X-Forwarded-For and -Proto count (SPEC §5): --trust-proxy and the
 * cluster's own hosts. */
static int gateway_trust(const struct gateway_options *o, const struct cluster *cl, struct http_trust *t,
                         char *err, size_t errcap)
{
    http_trust_init(t);
    int rc = o->trust_proxy ? http_trust_add(t, o->trust_proxy, err, errcap) : 0;
    for (size_t i = 0; rc == 0 && i < cl->n; i++)
        rc = http_trust_add_host(t, cl->members[i].http_addr, err, errcap) ||
             http_trust_add_host(t, cl->members[i].raft_addr, err, errcap);
    if (rc)
        http_trust_free(t);
    return rc ? -1 : 0;
}

int gateway_run(const struct gateway_options *o)
{
    log_init("gateway");
    if (sodium_init() < 0) {
        log_error("cannot initialise libsodium");
        return 1;
    }
    struct gateway *g = calloc(1, sizeof *g);
    if (!g)
        return 1;
    char err[1024];
    if (cluster_load(o->cluster_path, &g->cluster, err, sizeof err)) {
        log_error("%s", err);
        free(g);
        return 2;
    }
    for (size_t i = 0; i < g->cluster.n; i++)
        g->nodes[g->n_nodes++].m = &g->cluster.members[i];
    g->election_ms = o->election_timeout_ms ? o->election_timeout_ms : GATEWAY_ELECTION_TIMEOUT_MS;
    uv_loop_init(&g->loop);
    if (http_client_create(&g->loop, NULL, &g->client)) {
        free(g);
        return 1;
    }
    struct http_options ho;
    struct http_trust trust;
    http_options_default(&ho);
    if (gateway_trust(o, &g->cluster, &trust, err, sizeof err)) {
        log_error("%s", err);
        return 2;
    }
    ho.trust = &trust;
    ho.max_connections = o->max_connections;
    ho.tls_cert_file = o->tls_cert;
    ho.tls_key_file = o->tls_key;
    int rc = http_server_start(&g->loop, o->listen_addr, &ho, handle, g, &g->http, err, sizeof err);
    http_trust_free(&trust);
    if (rc) {
        log_error("%s", err);
        return 1;
    }
    uv_timer_init(&g->loop, &g->check_timer);
    g->check_timer.data = g;
    uv_timer_start(&g->check_timer, on_check_timer, 0, GW_CHECK_MS);
    uv_signal_init(&g->loop, &g->sig_term);
    uv_signal_init(&g->loop, &g->sig_int);
    g->sig_term.data = g->sig_int.data = g;
    uv_signal_start(&g->sig_term, on_signal, SIGTERM);
    uv_signal_start(&g->sig_int, on_signal, SIGINT);
    log_info("serving on %s for %zu nodes of %s", o->listen_addr, g->n_nodes, o->cluster_path);
    uv_run(&g->loop, UV_RUN_DEFAULT);
    uv_loop_close(&g->loop);
    free(g);
    log_info("stopped cleanly");
    return 0;
}
