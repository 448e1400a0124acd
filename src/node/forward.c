/*
 * forward.c — a write that reaches a follower is forwarded to the leader by
 * the node itself (SPEC §4), so a client never has to find the leader.
 *
 * The request goes to the leader's HTTP address as it came (hop-by-hop
 * headers dropped, X-Linkraft-Forwarded added so it is never forwarded
 * twice). The leader's answer is relayed only once this node has applied
 * the entry it names (X-Raft-Index): a client that reads here next sees its
 * own write. While no leader is known (an election is under way) the
 * request waits, up to FORWARD_WAIT_MS, for one to emerge.
 *
 * Gray failures: the leader it went to may stop answering without closing
 * anything (paused, cut off one way). This node learns of the next leader
 * through Raft itself, within an election timeout; the attempt in flight is
 * then abandoned and the write sent to the new leader. That is safe because
 * every forwarded write carries an Idempotency-Key (one is added if the
 * client sent none): if the first attempt ever commits, the repeat returns
 * its result instead of doing it again. The same holds for an attempt cut
 * off by a connection error.
 */
#include "node/internal.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/json.h"
#include "sys/log.h"

#include <sodium.h>

#define FORWARD_WAIT_MS 3000
#define FORWARD_MAX_ATTEMPTS 8
#define FORWARD_MAX_ANSWER (4u << 20)

struct forward {
    struct node *n;
    struct http_exchange *x;
    uv_timer_t wait;            /* polls for a leader while none is known, then
                                 * watches the leader while an attempt is in flight */
    uint64_t deadline;
    char *key_header;           /* "Idempotency-Key: ...\r\n" when this node added one */
    unsigned attempts;
    raft_id sent_to;            /* the leader the attempt in flight went to */
    uint64_t successor_by;      /* after a 503 from sent_to: how long to wait for another leader */
    struct http_client_req *up; /* that attempt; NULL between attempts */
    /* The leader's answer, kept while we wait for the local apply. */
    int status;
    raft_index index;
    char *headers;
    struct buf body;
};

static void forward_free_cb(uv_handle_t *h)
{
    struct forward *f = h->data;
    free(f->headers);
    free(f->key_header);
    buf_free(&f->body);
    free(f);
}

static void forward_end(struct forward *f)
{
    http_client_cancel(f->up);
    f->up = NULL;
    uv_timer_stop(&f->wait);
    uv_close((uv_handle_t *)&f->wait, forward_free_cb);
}

static void forward_fail(struct forward *f, int status, const char *code, const char *msg)
{
    struct buf b;
    buf_init(&b);
    json_write_error(&b, code, msg, NULL);
    char headers[160];
    snprintf(headers, sizeof headers, "Content-Type: application/json\r\nX-Served-By: %llu\r\nX-Raft-Index: %llu\r\n",
             (unsigned long long)f->n->o.id, (unsigned long long)node_applied(f->n));
    size_t len;
    char *body = buf_take(&b, &len);
    if (body)
        http_respond_take(f->x, status, headers, body, len);
    else
        http_respond(f->x, status, headers, "", 0);
    forward_end(f);
}

static void relay(struct forward *f)
{
    size_t len;
    char *body = buf_take(&f->body, &len);
    if (body)
        http_respond_take(f->x, f->status, f->headers, body, len);
    else
        http_respond(f->x, f->status, f->headers, "", 0);
    forward_end(f);
}

/* (With a full disk this node cannot apply until space returns: the
 * leader's answer is relayed at once.) */
static void applied_here(void *arg, int status)
{
    struct forward *f = arg;
    (void)status; /* on a timeout the write is still done: answer anyway */
    relay(f);
}

static void try_forward(struct forward *f);

static void retry_forward(uv_timer_t *t)
{
    try_forward(t->data);
}

/* The next attempt, after a tick: the leader this node knows by then. */
static void retry_soon(struct forward *f)
{
    uv_timer_start(&f->wait, retry_forward, f->n->o.tick_ms, 0);
}

static void leader_head(void *arg, int status, const struct http_header *headers, size_t n_headers)
{
    struct forward *f = arg;
    struct node *n = f->n;
    static const char *const replaced[] = { "x-served-by", NULL };
    uv_timer_stop(&f->wait); /* an answer is coming: no more switching leaders */
    struct buf h;
    buf_init(&h);
    for (size_t i = 0; i < n_headers; i++)
        if (headers[i].name_len == 12 && !strncasecmp(headers[i].name, "X-Raft-Index", 12))
            f->index = strtoull(headers[i].value, NULL, 10);
    http_headers_copy(&h, headers, n_headers, replaced);
    buf_printf(&h, "X-Served-By: %llu\r\nX-Leader: %llu\r\n", (unsigned long long)n->o.id,
               (unsigned long long)raft_leader(replica_raft(n->replica)));
    f->status = status;
    free(f->headers);
    f->headers = buf_take(&h, NULL);
}

static void leader_body(void *arg, const char *data, size_t len)
{
    struct forward *f = arg;
    if (f->body.len + len <= FORWARD_MAX_ANSWER)
        buf_append(&f->body, data, len);
    else
        f->body.oom = true;
}

/* After a 503 from the leader: every tick, has Raft named another leader
 * (or this node)? Then the write goes there; if none comes in time, the
 * 503 kept in f is relayed. */
static void wait_successor(uv_timer_t *t)
{
    struct forward *f = t->data;
    struct node *n = f->n;
    struct raft *r = replica_raft(n->replica);
    raft_id now_leader = raft_role(r) == RAFT_LEADER ? n->o.id : raft_leader(r);
    if (now_leader && now_leader != f->sent_to && !n->closing) {
        log_info("forwarded write: leader %llu answered 503 and %llu leads now; sending it there under its "
                 "Idempotency-Key", (unsigned long long)f->sent_to, (unsigned long long)now_leader);
        free(f->headers);
        f->headers = NULL;
        buf_free(&f->body);
        buf_init(&f->body);
        f->index = 0;
        try_forward(f);
        return;
    }
    if (uv_now(&n->loop) >= f->successor_by || n->closing) {
        relay(f);
        return;
    }
    uv_timer_start(&f->wait, wait_successor, n->o.tick_ms, 0);
}

static void leader_done(void *arg, int err)
{
    struct forward *f = arg;
    struct node *n = f->n;
    f->up = NULL;
    if (!err && (!f->headers || f->body.oom))
        err = HTTPC_ENOMEM;
    if (err) {
        free(f->headers);
        f->headers = NULL;
        buf_free(&f->body);
        buf_init(&f->body);
        f->index = 0;
        /* Refused (nothing was sent), or cut off (the outcome is unknown;
         * the repeat is safe under the Idempotency-Key): try the leader
         * known a tick from now, while there is time. */
        if (err != HTTPC_ECLOSED && err != HTTPC_ENOMEM && uv_now(&n->loop) < f->deadline &&
            f->attempts < FORWARD_MAX_ATTEMPTS) {
            retry_soon(f);
            return;
        }
        char msg[200];
        snprintf(msg, sizeof msg, "forwarding to the leader failed (%s); the outcome is unknown: retry with the "
                 "same Idempotency-Key", http_client_strerror(err));
        forward_fail(f, 503, "unavailable", msg);
        return;
    }
    /* A 503 from the leader: it may be handing leadership over (a leader
     * stopping for a rolling restart refuses writes meanwhile, one in a
     * transfer refuses proposals; docs/operations.md "Upgrade"). If Raft
     * names a successor within four election timeouts, the write goes
     * there, under its Idempotency-Key in case the 503 came after the
     * proposal; otherwise the 503 is the answer. */
    if (f->status == 503 && uv_now(&n->loop) < f->deadline && f->attempts < FORWARD_MAX_ATTEMPTS) {
        f->successor_by = uv_now(&n->loop) + 4ull * n->o.election_ticks * n->o.tick_ms;
        uv_timer_start(&f->wait, wait_successor, n->o.tick_ms, 0);
        return;
    }
    if (f->status >= 200 && f->status < 300 && f->index > node_applied(n) && !replica_disk_full(n->replica))
        node_read(n, NODE_READ_SESSION, f->index, n->o.write_timeout_ms, applied_here, f);
    else
        relay(f);
}

static const struct http_client_stream_cbs leader_cbs = {
    .on_head = leader_head,
    .on_body = leader_body,
    .on_done = leader_done,
};

/* Every tick while an attempt waits for its first byte: has Raft named
 * another leader (or this node) since it was sent? Then the leader it went
 * to was deposed, most likely because it stopped answering, and may never
 * answer; the write goes to the new one. */
static void watch_leader(uv_timer_t *t)
{
    struct forward *f = t->data;
    struct node *n = f->n;
    raft_id now_leader = raft_role(replica_raft(n->replica)) == RAFT_LEADER ? n->o.id : raft_leader(replica_raft(n->replica));
    if (!f->up)
        return;
    if (now_leader && now_leader != f->sent_to && f->attempts < FORWARD_MAX_ATTEMPTS) {
        log_info("forwarded write: leader %llu replaced by %llu before answering; sending it again under its "
                 "Idempotency-Key", (unsigned long long)f->sent_to, (unsigned long long)now_leader);
        http_client_cancel(f->up);
        f->up = NULL;
        try_forward(f);
        return;
    }
    uv_timer_start(&f->wait, watch_leader, n->o.tick_ms, 0);
}

static void try_forward(struct forward *f)
{
    struct node *n = f->n;
    raft_id leader = raft_leader(replica_raft(n->replica));
    if (n->closing) {
        forward_fail(f, 503, "not_leader", "this node is shutting down");
        return;
    }
    if (raft_role(replica_raft(n->replica)) == RAFT_LEADER) {
        if (!f->attempts) {
            /* We became the leader while waiting: nothing was sent, so the
             * request is handled here after all. */
            struct http_exchange *x = f->x;
            forward_end(f);
            n->admin_proven = x; /* its proof, if any, was spent here already */
            node_api_handle(n, x);
            n->admin_proven = NULL;
            return;
        }
        /* An earlier attempt may have been done: the repeat must carry the
         * Idempotency-Key this node added, which only a request sent to
         * itself, like to any leader, can. */
        leader = n->o.id;
    }
    const struct cluster_member *m = leader ? cluster_find(&n->cluster, leader) : NULL;
    if (!m) {
        if (uv_now(&n->loop) >= f->deadline) {
            forward_fail(f, 503, "no_leader", "no leader is known (no majority reachable?); retry later");
            return;
        }
        uv_timer_start(&f->wait, retry_forward, n->o.tick_ms, 0);
        return;
    }
    const struct http_request *req = http_exchange_request(f->x);
    struct buf h, target;
    buf_init(&h);
    buf_init(&target);
    /* A KV write's proof was made for this node and spent here (api.c): the
     * leader gets a fresh one made for it, so a proof captured on its way
     * to one node can never be replayed on another. */
    bool resign = n->secret && !strncmp(req->path, "/api/v1/kv/", 11);
    static const char *const replaced[] = { "x-linkraft-forwarded", "x-forwarded-for", "x-forwarded-proto", NULL };
    static const char *const replaced_auth[] = { "x-linkraft-forwarded", "x-forwarded-for", "x-forwarded-proto",
                                                 "authorization", NULL };
    http_headers_copy(&h, req->headers, req->n_headers, resign ? replaced_auth : replaced);
    buf_printf(&h, "X-Forwarded-Proto: %s\r\n", req->secure ? "https" : "http");
    /* The client as this node determined it (src/http/trust.c), alone: an
     * X-Forwarded-For the client wrote itself must not reach a leader that
     * trusts more proxies than we do (each node has its own --trust-proxy). */
    buf_printf(&h, "X-Linkraft-Forwarded: %llu\r\nX-Forwarded-For: %s\r\n", (unsigned long long)n->o.id,
               req->client);
    if (f->key_header)
        buf_puts(&h, f->key_header);
    /* The leader's site checks a write's Origin against the host the client
     * addressed, which Host no longer names once forwarded. */
    size_t host_len;
    const char *host = http_header_get(req, "Host", &host_len);
    if (host && !http_header_get(req, "X-Forwarded-Host", NULL))
        buf_printf(&h, "X-Forwarded-Host: %.*s\r\n", (int)host_len, host);
    buf_puts(&target, req->path);
    if (req->query[0]) {
        buf_puts(&target, "?");
        buf_puts(&target, req->query);
    }
    if (resign && !target.oom) {
        uint8_t key[ADMIN_AUTH_KEY_BYTES], nonce[ADMIN_AUTH_NONCE_BYTES];
        char proof[ADMIN_AUTH_HEADER_MAX];
        admin_auth_key(key, n->secret, n->secret_len);
        randombytes_buf(nonce, sizeof nonce);
        if (admin_auth_sign(key, leader, req->method, target.p, req->body, req->body_len, (int64_t)node_now_ms(),
                            nonce, proof, sizeof proof) == 0)
            buf_printf(&h, "Authorization: %s\r\n", proof);
        sodium_memzero(key, sizeof key);
    }
    f->attempts++;
    f->sent_to = leader;
    int rc = h.oom || target.oom ? HTTPC_ENOMEM
           : http_client_request_stream(n->client, m->http_addr, req->method, target.p, h.p, req->body,
                                        req->body_len, n->o.write_timeout_ms + 1000, &leader_cbs, f, &f->up);
    buf_free(&h);
    buf_free(&target);
    if (rc) {
        f->up = NULL;
        forward_fail(f, 503, "unavailable", http_client_strerror(rc));
        return;
    }
    uv_timer_start(&f->wait, watch_leader, n->o.tick_ms, 0);
}

bool node_forward_wanted(const struct node *n, const struct http_request *req)
{
    if (!strcmp(req->method, "GET") || req->head || raft_role(replica_raft(n->replica)) == RAFT_LEADER)
        return false;
    return http_header_get(req, "X-Linkraft-Forwarded", NULL) == NULL;
}

void node_forward(struct node *n, struct http_exchange *x)
{
    struct forward *f = calloc(1, sizeof *f);
    if (!f) {
        http_respond(x, 503, "Content-Type: text/plain\r\n", "out of memory\n", 14);
        return;
    }
    f->n = n;
    f->x = x;
    f->deadline = uv_now(&n->loop) + FORWARD_WAIT_MS;
    buf_init(&f->body);
    uv_timer_init(&n->loop, &f->wait);
    f->wait.data = f;
    if (!http_header_get(http_exchange_request(x), "Idempotency-Key", NULL)) {
        /* So that the write can be sent again if its leader stops answering. */
        unsigned char key[16];
        char hex[33];
        randombytes_buf(key, sizeof key);
        sodium_bin2hex(hex, sizeof hex, key, sizeof key);
        struct buf k;
        buf_init(&k);
        buf_printf(&k, "Idempotency-Key: fw-%s\r\n", hex);
        f->key_header = buf_take(&k, NULL);
        if (!f->key_header) {
            forward_fail(f, 503, "unavailable", "out of memory");
            return;
        }
    }
    try_forward(f);
}
