/*
 * api.c — a node's own HTTP endpoints: health for load balancers and the
 * gateway (/healthz, /readyz, /leaderz), /metrics, the cluster view
 * (/api/v1/cluster), the admin calls behind `linkraft member` and
 * `linkraft transfer-leader`, and a small replicated key-value API
 * (/api/v1/kv/KEY) that exercises the whole write path.
 *
 * The admin calls and KV writes change the cluster or fill its log, so they
 * need proof of the cluster secret (admin_auth.h; without a secret: a
 * loopback client); see admin_allowed. The public views show no addresses.
 *
 * Every response carries X-Served-By (this node's id) and X-Raft-Index (the
 * applied index of the state shown; for a write, its entry's index).
 */
#include "node/internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "command.h"
#include "common/buf.h"
#include "common/json.h"
#include "site/validate.h"
#include "sys/log.h"
#include "site.h"

#include <sodium.h>

static void log_warn_status(int status)
{
    log_warn("proposing a member's addresses failed: %s", node_status_text(status));
}

#define KV_MAX_KEY 1024

/* ---- Responses --------------------------------------------------------------- */

static void respond_buf(struct node *n, struct http_exchange *x, int status, const char *ctype, raft_index index,
                        struct buf *body)
{
    char headers[320];
    /* A 401 here always wants an admin proof (RFC 9110 §11.6.1: say which);
     * a 503 is this node's passing state (no leader, catching up). */
    snprintf(headers, sizeof headers, "Content-Type: %s\r\nX-Served-By: %llu\r\nX-Raft-Index: %llu\r\nCache-Control: no-store\r\n%s",
             ctype, (unsigned long long)n->o.id, (unsigned long long)index,
             status == 401 ? "WWW-Authenticate: " ADMIN_AUTH_SCHEME "\r\n" : status == 503 ? "Retry-After: 1\r\n" : "");
    if (body->oom) {
        buf_free(body);
        http_respond(x, 500, NULL, "out of memory\n", 14);
        return;
    }
    size_t len;
    char *p = buf_take(body, &len);
    http_respond_take(x, status, headers, p, len);
}

static void respond_json(struct node *n, struct http_exchange *x, int status, struct buf *body)
{
    respond_buf(n, x, status, "application/json", store_applied(n->store), body);
}

void node_respond_error(struct node *n, struct http_exchange *x, int status, const char *code, const char *msg)
{
    struct buf b;
    buf_init(&b);
    char leader[40] = "";
    if (status == 503 && raft_leader(replica_raft(n->replica)))
        snprintf(leader, sizeof leader, "\"leader\":%llu", (unsigned long long)raft_leader(replica_raft(n->replica)));
    json_write_error(&b, code, msg, leader);
    respond_json(n, x, status, &b);
}

static void respond_text(struct node *n, struct http_exchange *x, int status, const char *text)
{
    struct buf b;
    buf_init(&b);
    buf_puts(&b, text);
    respond_buf(n, x, status, "text/plain; charset=utf-8", store_applied(n->store), &b);
}

int node_status_http(int status)
{
    switch (status) {
    case NODE_ETOOBIG: return 413;
    case NODE_EDISKFULL: return 507;
    default: return 503;
    }
}

const char *node_status_code(int status)
{
    switch (status) {
    case NODE_ENOTLEADER: return "not_leader";
    case NODE_ELOST: return "lost";
    case NODE_ETIMEOUT: return "timeout";
    case NODE_EDISKFULL: return "disk_full";
    case NODE_ESTOPPING: return "stopping";
    case NODE_ETOOBIG: return "too_big";
    case NODE_EREPAIRING: return "repairing";
    default: return "unavailable";
    }
}

/* ---- Health, cluster, metrics ------------------------------------------------- */

static const char *member_role_name(const struct node *n, const struct raft_member *m)
{
    if (m->id == n->o.id) {
        if (m->role == RAFT_LEARNER)
            return "learner";
        switch (raft_role(replica_raft(n->replica))) {
        case RAFT_LEADER: return "leader";
        case RAFT_CANDIDATE:
        case RAFT_PRECANDIDATE: return "candidate";
        default: return "follower";
        }
    }
    if (m->id == raft_leader(replica_raft(n->replica)))
        return "leader";
    return m->role == RAFT_LEARNER ? "learner" : "follower";
}

/* with_addresses: only for an admin-authenticated request (SPEC §3: the
 * public views never show where the members are). */
static void cluster_json(struct node *n, struct buf *b, bool with_addresses)
{
    struct replica_status st;
    replica_get_status(n->replica, &st);
    const struct raft_config *c = raft_configuration(replica_raft(n->replica));
    struct raft_progress prs[RAFT_MAX_MEMBERS + 1];
    size_t n_prs = raft_progress(replica_raft(n->replica), prs, RAFT_MAX_MEMBERS + 1);
    buf_printf(b, "{\"id\":%llu,\"leader\":%llu,\"term\":%llu,\"commit\":%llu,\"applied\":%llu,\"members\":[",
               (unsigned long long)n->o.id, (unsigned long long)st.leader, (unsigned long long)st.term,
               (unsigned long long)st.commit, (unsigned long long)st.applied);
    for (uint32_t i = 0; i < c->n; i++) {
        const struct raft_member *m = &c->members[i];
        const struct cluster_member *cm = cluster_find(&n->cluster, m->id);
        buf_printf(b, "%s{\"id\":%llu,\"role\":\"%s\",\"voter\":%s,", i ? "," : "", (unsigned long long)m->id,
                   member_role_name(n, m), m->role == RAFT_VOTER ? "true" : "false");
        if (m->id == n->o.id) {
            buf_printf(b, "\"commit\":%llu,\"applied\":%llu,\"reachable\":true", (unsigned long long)st.commit,
                       (unsigned long long)st.applied);
        } else {
            /* Another member's indexes are known here only to a leader
             * (its replication progress); elsewhere they are null. */
            const struct raft_progress *p = NULL;
            for (size_t k = 0; k < n_prs && k <= RAFT_MAX_MEMBERS; k++)
                if (prs[k].id == m->id)
                    p = &prs[k];
            if (p)
                buf_printf(b, "\"commit\":null,\"applied\":null,\"match\":%llu,", (unsigned long long)p->match);
            else
                buf_puts(b, "\"commit\":null,\"applied\":null,");
            buf_printf(b, "\"reachable\":%s", n->net && net_peer_connected(n->net, m->id) ? "true" : "false");
        }
        if (cm && with_addresses) {
            buf_puts(b, ",\"raft_address\":");
            json_write_str(b, cm->raft_addr, strlen(cm->raft_addr));
            buf_puts(b, ",\"http_address\":");
            json_write_str(b, cm->http_addr, strlen(cm->http_addr));
        }
        buf_puts(b, "}");
    }
    buf_puts(b, "]}\n");
}

static void metrics_text(struct node *n, struct buf *b)
{
    struct storage_stats ss = n->storage_stats; /* as of the last disk write */
    struct net_stats ns = { 0 };
    if (n->net)
        net_get_stats(n->net, &ns);
    struct http_stats hs = { 0 };
    if (n->http)
        http_server_get_stats(n->http, &hs);
    const struct raft_stats *rs = raft_stats(replica_raft(n->replica));
    struct replica_status st;
    replica_get_status(n->replica, &st);
    buf_printf(b,
               "# TYPE linkraft_raft_term gauge\nlinkraft_raft_term %llu\n"
               "# TYPE linkraft_raft_is_leader gauge\nlinkraft_raft_is_leader %d\n"
               "# TYPE linkraft_raft_commit_index gauge\nlinkraft_raft_commit_index %llu\n"
               "# TYPE linkraft_raft_applied_index gauge\nlinkraft_raft_applied_index %llu\n"
               "# TYPE linkraft_raft_last_index gauge\nlinkraft_raft_last_index %llu\n"
               "# TYPE linkraft_raft_elections_started_total counter\nlinkraft_raft_elections_started_total %llu\n"
               "# TYPE linkraft_raft_messages_dropped_total counter\nlinkraft_raft_messages_dropped_total %llu\n"
               "# TYPE linkraft_raft_campaigns_refused_total counter\nlinkraft_raft_campaigns_refused_total %llu\n"
               "# TYPE linkraft_raft_snapshots_sent_total counter\nlinkraft_raft_snapshots_sent_total %llu\n"
               "# TYPE linkraft_raft_snapshots_installed_total counter\nlinkraft_raft_snapshots_installed_total %llu\n"
               "# TYPE linkraft_storage_fsyncs_total counter\nlinkraft_storage_fsyncs_total %llu\n"
               "# TYPE linkraft_storage_entries_appended_total counter\nlinkraft_storage_entries_appended_total %llu\n"
               "# TYPE linkraft_storage_disk_bytes gauge\nlinkraft_storage_disk_bytes %llu\n"
               "# TYPE linkraft_storage_disk_full gauge\nlinkraft_storage_disk_full %d\n"
               "# TYPE linkraft_net_frames_sent_total counter\nlinkraft_net_frames_sent_total %llu\n"
               "# TYPE linkraft_net_frames_received_total counter\nlinkraft_net_frames_received_total %llu\n"
               "# TYPE linkraft_net_dropped_total counter\n"
               "linkraft_net_dropped_total{reason=\"queue_full\"} %llu\n"
               "linkraft_net_dropped_total{reason=\"unknown_peer\"} %llu\n"
               "linkraft_net_dropped_total{reason=\"malformed\"} %llu\n"
               "linkraft_net_dropped_total{reason=\"unauthenticated\"} %llu\n"
               "linkraft_net_dropped_total{reason=\"unknown_id\"} %llu\n"
               "linkraft_net_dropped_total{reason=\"bad_term\"} %llu\n"
               "linkraft_net_dropped_total{reason=\"over_budget\"} %llu\n"
               "linkraft_net_dropped_total{reason=\"other_cluster\"} %llu\n"
               "linkraft_net_dropped_total{reason=\"replaced\"} %llu\n"
               "linkraft_net_dropped_total{reason=\"forged\"} %llu\n"
               "# TYPE linkraft_http_requests_total counter\nlinkraft_http_requests_total %llu\n"
               "# TYPE linkraft_http_connections_open gauge\nlinkraft_http_connections_open %llu\n"
               "# TYPE linkraft_store_committed_index gauge\nlinkraft_store_committed_index %llu\n",
               (unsigned long long)st.term, st.role == RAFT_LEADER, (unsigned long long)st.commit,
               (unsigned long long)st.applied, (unsigned long long)st.last, (unsigned long long)rs->elections_started,
               (unsigned long long)rs->msgs_dropped, (unsigned long long)rs->campaigns_refused,
               (unsigned long long)rs->snapshots_sent,
               (unsigned long long)rs->snapshots_installed, (unsigned long long)ss.fsyncs,
               (unsigned long long)ss.entries_appended, (unsigned long long)ss.disk_bytes, st.disk == REPLICA_DISK_FULL,
               (unsigned long long)ns.frames_sent, (unsigned long long)ns.frames_received,
               (unsigned long long)ns.dropped_queue_full, (unsigned long long)ns.dropped_unknown_peer,
               (unsigned long long)ns.dropped_malformed, (unsigned long long)ns.dropped_unauthenticated,
               (unsigned long long)ns.dropped_unknown_id, (unsigned long long)ns.dropped_bad_term,
               (unsigned long long)ns.dropped_over_budget, (unsigned long long)ns.dropped_other_cluster,
               (unsigned long long)ns.dropped_replaced, (unsigned long long)ns.dropped_forged,
               (unsigned long long)hs.requests, (unsigned long long)hs.connections_open,
               (unsigned long long)st.committed_sm);
    /* The web edge under abuse (docs/security.md). */
    buf_printf(b,
               "# TYPE linkraft_http_connections_closed_total counter\n"
               "linkraft_http_connections_closed_total{reason=\"too_slow\"} %llu\n"
               "linkraft_http_connections_closed_total{reason=\"evicted_idle\"} %llu\n"
               "linkraft_http_connections_closed_total{reason=\"evicted_slow\"} %llu\n"
               "linkraft_http_connections_closed_total{reason=\"full\"} %llu\n"
               "linkraft_http_connections_closed_total{reason=\"per_address\"} %llu\n",
               (unsigned long long)hs.timed_out, (unsigned long long)hs.evicted_idle,
               (unsigned long long)hs.evicted_slow, (unsigned long long)hs.refused_full,
               (unsigned long long)hs.refused_addr);
    /* Reads the site answered without rendering: from its own page cache,
     * and 304s to a validator (a browser's, or a shared cache's revalidation). */
    struct site_stats sst = { 0 };
    if (n->site)
        site_get_stats(n->site, &sst);
    buf_printf(b,
               "# TYPE linkraft_site_page_cache_hits_total counter\nlinkraft_site_page_cache_hits_total %llu\n"
               "# TYPE linkraft_site_not_modified_total counter\nlinkraft_site_not_modified_total %llu\n",
               (unsigned long long)sst.page_cache_hits, (unsigned long long)sst.not_modified);
}

/* ---- Who may change the cluster ------------------------------------------------ */

/* Whether every address in X-Forwarded-For (if any) is loopback. A proxy in
 * front (the gateway, a follower forwarding a write, HAProxy with
 * forwardfor) names its client there: a loopback proxy must not lend its
 * address to a remote client. It can only make the check stricter. */
static bool forwarded_for_loopback(const struct http_request *req)
{
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct http_header *h = &req->headers[i];
        if (h->name_len != 15 || strncasecmp(h->name, "X-Forwarded-For", 15))
            continue;
        const char *p = h->value, *end = h->value + h->value_len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ','))
                p++;
            const char *q = p;
            while (q < end && *q != ',' && *q != ' ')
                q++;
            if (q > p && !admin_ip_is_loopback(p, (size_t)(q - p)))
                return false;
            p = q;
        }
    }
    return true;
}

/* Whether req may change the cluster here (SPEC §3). With a secret, only a
 * valid proof counts (admin_auth.h): where the request comes from, its
 * Origin or its Content-Type do not matter. Without one (a loopback-only
 * cluster), only loopback clients that are not web pages: the TCP peer and
 * every hop named in X-Forwarded-For on loopback, and no Origin.
 * any_node: accept a proof made for any node (node=0; no caller does any
 * more: a KV write passed on gets a fresh proof for the leader, forward.c).
 * consume: remember the proof's nonce. A request this node already accepted
 * before it was to be forwarded (n->admin_proven) passes. If not allowed,
 * answers x (401, 403 or 503) and returns false. */
static bool admin_allowed(struct node *n, struct http_exchange *x, const struct http_request *req, bool any_node,
                          bool consume)
{
    if (x == n->admin_proven)
        return true; /* checked (and its nonce spent) before it was to be forwarded */
    if (!n->secret) {
        /* A browser on this machine is a loopback client too, and any web
         * page can make it send a request (text/plain needs no preflight):
         * browsers name the page's origin, the command-line tools never do. */
        if (http_header_get(req, "Origin", NULL) || http_header_get(req, "Sec-Fetch-Site", NULL)) {
            node_respond_error(n, x, 403, "forbidden", "admin requests are not taken from web pages");
            return false;
        }
        if (admin_peer_is_loopback(req->peer) && forwarded_for_loopback(req))
            return true;
        node_respond_error(n, x, 403, "forbidden",
                      "this node has no --secret-file, so it accepts admin requests from loopback clients only");
        return false;
    }
    uint8_t key[ADMIN_AUTH_KEY_BYTES];
    admin_auth_key(key, n->secret, n->secret_len);
    struct buf target;
    buf_init(&target);
    buf_puts(&target, req->path);
    if (req->query[0]) {
        buf_puts(&target, "?");
        buf_puts(&target, req->query);
    }
    size_t hlen = 0;
    const char *h = http_header_get(req, "Authorization", &hlen);
    int rc = target.oom ? ADMIN_AUTH_BUSY
           : admin_auth_verify(key, &n->admin_seen, n->o.id, any_node, req->method, target.p, req->body,
                               req->body_len, h, hlen, (int64_t)node_now_ms(), consume);
    buf_free(&target);
    sodium_memzero(key, sizeof key);
    if (rc == ADMIN_AUTH_OK)
        return true;
    /* At most one line a second: refusals are what an attacker can make many of. */
    static time_t last_logged;
    time_t now = time(NULL);
    if (now != last_logged) {
        last_logged = now;
        log_warn("refused an admin request %s %s from %s: %s", req->method, req->path, req->peer,
                 admin_auth_strerror(rc));
    }
    node_respond_error(n, x, rc == ADMIN_AUTH_BUSY ? 503 : 401, rc == ADMIN_AUTH_BUSY ? "busy" : "unauthorized",
                  admin_auth_strerror(rc));
    return false;
}

/* ---- Key-value API ------------------------------------------------------------ */

struct api_call {
    struct node *n;
    struct http_exchange *x;
    char key[KV_MAX_KEY];
    size_t key_len;
};

static void kv_write_done(void *arg, int status, raft_index index, const struct store_result *res)
{
    struct api_call *c = arg;
    struct node *n = c->n;
    if (status != NODE_OK) {
        node_respond_error(n, c->x, node_status_http(status), node_status_code(status), node_status_text(status));
    } else {
        struct buf b;
        buf_init(&b);
        buf_printf(&b, "{\"index\":%llu,\"status\":%d}\n", (unsigned long long)index, res ? res->status : 0);
        respond_buf(n, c->x, res && res->status == CMD_ERR_NOT_FOUND ? 404 : 200, "application/json", index, &b);
    }
    free(c);
}

static void kv_read_done(void *arg, int status)
{
    struct api_call *c = arg;
    struct node *n = c->n;
    if (status != NODE_OK) {
        node_respond_error(n, c->x, node_status_http(status), node_status_code(status), node_status_text(status));
        free(c);
        return;
    }
    char *value = NULL;
    size_t len = 0;
    int rc = store_kv_get(n->store, c->key, c->key_len, &value, &len);
    if (rc == STORE_ECORRUPT) {
        /* A damaged page: an error, never its bytes; the node repairs itself. */
        node_respond_error(n, c->x, 503, "repairing", node_status_text(NODE_EREPAIRING));
    } else if (rc < 0) {
        node_respond_error(n, c->x, 500, "internal", store_errmsg(n->store));
    } else if (rc == 0) {
        node_respond_error(n, c->x, 404, "not_found", "no such key");
    } else {
        struct buf b;
        buf_init(&b);
        buf_append(&b, value, len);
        respond_buf(n, c->x, 200, "application/octet-stream", store_applied(n->store), &b);
    }
    free(value);
    free(c);
}

/* How far past this node's commit index an X-Min-Index may be: a client may
 * have written through a leader this node has not heard from yet. */
#define KV_INDEX_SLACK 10000

/* X-Consistency and X-Min-Index (SPEC §4); -1 on a bad value. */
static int read_consistency(const struct http_request *req, enum node_consistency *c, raft_index *min_index)
{
    size_t len;
    enum http_consistency hc;
    *min_index = 0;
    if (http_consistency(req, &hc))
        return -1;
    *c = hc == HTTP_READ_STALE ? NODE_READ_STALE : hc == HTTP_READ_LINEARIZABLE ? NODE_READ_LINEARIZABLE : NODE_READ_SESSION;
    const char *v = http_header_get(req, "X-Min-Index", &len);
    if (v) {
        char tmp[32];
        if (len == 0 || len >= sizeof tmp)
            return -1;
        memcpy(tmp, v, len);
        tmp[len] = 0;
        char *end;
        unsigned long long x = strtoull(tmp, &end, 10);
        if (*end || tmp[0] == '-')
            return -1;
        *min_index = x;
    }
    return 0;
}

/* PUT / DELETE /api/v1/moderators/NAME (`linkraft moderator add|remove`,
 * admin-proven): grants or takes moderation of the site through the log
 * (CMD_MODERATOR_*). Answered like a KV write: {"index","status"}, 404 if
 * there is no such user. */
static void handle_moderator(struct node *n, struct http_exchange *x, const struct http_request *req, const char *name)
{
    bool add = !strcmp(req->method, "PUT");
    if (!add && strcmp(req->method, "DELETE")) {
        node_respond_error(n, x, 405, "method_not_allowed", "use PUT to add a moderator, DELETE to remove one");
        return;
    }
    size_t len = strlen(name);
    char lname[COMMAND_MAX_NAME + 1];
    const char *why = site_check_username(name, len); /* the site's rule, SPEC §4 */
    if (why || len > COMMAND_MAX_NAME) {
        node_respond_error(n, x, 400, "bad_name", why ? why : "a username is 3 to 20 characters");
        return;
    }
    for (size_t i = 0; i <= len; i++)
        lname[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
    struct api_call *c = calloc(1, sizeof *c);
    if (!c) {
        node_respond_error(n, x, 503, "unavailable", "out of memory");
        return;
    }
    c->n = n;
    c->x = x;
    struct command cmd = { .type = add ? CMD_MODERATOR_ADD : CMD_MODERATOR_REMOVE, .time_ms = node_now_ms(),
                           .lname = { lname, (uint16_t)len } };
    uint8_t buf[256];
    long enc = command_encode(&cmd, buf, sizeof buf);
    if (enc < 0) {
        free(c);
        node_respond_error(n, x, 400, "bad_request", "cannot encode the command");
        return;
    }
    node_propose(n, buf, (size_t)enc, kv_write_done, c);
}

static void handle_kv(struct node *n, struct http_exchange *x, const struct http_request *req, const char *key)
{
    size_t key_len = strlen(key);
    if (key_len == 0 || key_len >= KV_MAX_KEY) {
        node_respond_error(n, x, 400, "bad_key", "a key is 1 to 1023 bytes");
        return;
    }
    struct api_call *c = calloc(1, sizeof *c);
    if (!c) {
        node_respond_error(n, x, 503, "unavailable", "out of memory");
        return;
    }
    c->n = n;
    c->x = x;
    memcpy(c->key, key, key_len);
    c->key_len = key_len;
    bool is_get = !strcmp(req->method, "GET") || req->head;
    if (is_get) {
        enum node_consistency cons;
        raft_index min_index;
        if (read_consistency(req, &cons, &min_index)) {
            free(c);
            node_respond_error(n, x, 400, "bad_consistency", "X-Consistency is stale, session or linearizable; X-Min-Index a number");
            return;
        }
        /* As the site does: an index far beyond what this node knows to be
         * committed is not held for the read's whole timeout, but it is no
         * client error either (this node may be catching up): 503, retry. */
        if (min_index > raft_commit_index(replica_raft(n->replica)) + KV_INDEX_SLACK) {
            free(c);
            node_respond_error(n, x, 503, "behind", "this server has not caught up with X-Min-Index: try again, or ask another server");
            return;
        }
        node_read(n, cons, min_index, 3000, kv_read_done, c);
        return;
    }
    bool is_put = !strcmp(req->method, "PUT"), is_delete = !strcmp(req->method, "DELETE");
    if (!is_put && !is_delete) {
        free(c);
        node_respond_error(n, x, 405, "method_not_allowed", "use GET, PUT or DELETE");
        return;
    }
    size_t idem_len;
    const char *idem;
    if (http_idempotency_key(req, &idem, &idem_len)) {
        free(c);
        node_respond_error(n, x, 400, "bad_idempotency_key", HTTP_IDEM_RULE);
        return;
    }
    struct command cmd = {
        .type = is_put ? CMD_KV_PUT : CMD_KV_DELETE,
        .time_ms = node_now_ms(),
        .idem_key = { idem, (uint16_t)idem_len },
        .key = { c->key, (uint16_t)key_len },
        .value = { req->body, (uint16_t)(req->body_len > COMMAND_MAX_STR ? 0 : req->body_len) },
    };
    if (req->body_len > COMMAND_MAX_STR) {
        free(c);
        node_respond_error(n, x, 413, "too_big", "a value is at most 4096 bytes");
        return;
    }
    uint8_t buf[COMMAND_MAX_STR * 2 + 512];
    long len = command_encode(&cmd, buf, sizeof buf);
    if (len < 0) {
        free(c);
        node_respond_error(n, x, 400, "bad_request", "cannot encode the command");
        return;
    }
    node_propose(n, buf, (size_t)len, kv_write_done, c);
}

/* ---- Admin: membership and leadership ------------------------------------------ */

static int parse_id(const char *s, raft_id *id)
{
    char *end;
    if (!*s || *s == '-')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || v == 0)
        return -1;
    *id = v;
    return 0;
}

static int body_number(const struct http_request *req, const char *field, uint64_t *out, char *err, size_t errcap)
{
    struct json_doc doc;
    if (json_parse(&doc, req->body, req->body_len, err, errcap))
        return -1;
    const struct json *v = json_get(doc.root, field);
    if (!v || v->type != JSON_NUMBER || !v->is_int || v->i <= 0) {
        snprintf(err, errcap, "\"%s\" must be a positive integer", field);
        json_free(&doc);
        return -1;
    }
    *out = (uint64_t)v->i;
    json_free(&doc);
    return 0;
}

struct change_call {
    struct node *n;
    struct http_exchange *x;
};

static void change_applied(void *arg, int status, raft_index index, const struct store_result *res)
{
    (void)res;
    struct change_call *c = arg;
    if (status != NODE_OK) {
        node_respond_error(c->n, c->x, node_status_http(status), node_status_code(status),
                      status == NODE_ELOST ? "the change was appended but a new leader overwrote it: "
                                             "nothing changed, check 'linkraft status' and try again"
                                           : node_status_text(status));
    } else {
        struct buf b;
        buf_init(&b);
        buf_printf(&b, "{\"ok\":true,\"index\":%llu}\n", (unsigned long long)index);
        respond_json(c->n, c->x, 200, &b);
    }
    free(c);
}

/* A membership change is answered once its entry is committed and applied,
 * never on append: a leader cut off from its followers can append one that a
 * new leader then overwrites, and a 200 for it would be a lie (found by the
 * chaos suite, seed 1). */
static void respond_raft_rc(struct node *n, struct http_exchange *x, int rc, raft_index index, const char *what)
{
    if (rc == RAFT_OK && index == 0) { /* a leadership transfer: nothing is appended */
        struct buf b;
        buf_init(&b);
        buf_puts(&b, "{\"ok\":true,\"index\":0}\n");
        respond_json(n, x, 200, &b);
        return;
    }
    if (rc == RAFT_OK) {
        struct change_call *c = malloc(sizeof *c);
        if (!c) {
            node_respond_error(n, x, 503, "unavailable", "out of memory: the change was appended, its outcome is unknown");
            return;
        }
        *c = (struct change_call){ n, x };
        node_wait_entry(n, index, raft_term_at(replica_raft(n->replica), index), change_applied, c);
        return;
    }
    char msg[256];
    snprintf(msg, sizeof msg, "%s: %s", what, raft_strerror(rc));
    int status = rc == RAFT_ENOTLEADER ? 503 : rc == RAFT_EBUSY ? 409 : rc == RAFT_ENOTFOUND ? 404
               : rc == RAFT_EEXIST ? 409 : 400;
    node_respond_error(n, x, status, rc == RAFT_ENOTLEADER ? "not_leader" : rc == RAFT_EBUSY ? "busy" : "refused", msg);
}

static void address_proposed(void *arg, int status, raft_index index, const struct store_result *res)
{
    (void)arg;
    (void)index;
    (void)res;
    if (status != NODE_OK)
        log_warn_status(status);
}

/* POST /api/v1/members {"id":N,"learner":false,"raft_address":A,"http_address":B}:
 * the addresses (from the operator's cluster file) go into the log first, so
 * every node and every later leader can reach N; then the configuration
 * change (§4.1). */
static void handle_member_add(struct node *n, struct http_exchange *x, const struct http_request *req)
{
    char err[256];
    struct json_doc doc;
    if (json_parse(&doc, req->body, req->body_len, err, sizeof err)) {
        node_respond_error(n, x, 400, "bad_json", err);
        return;
    }
    const struct json *id = json_get(doc.root, "id"), *learner = json_get(doc.root, "learner");
    const char *raft_addr = json_get_str(doc.root, "raft_address", NULL);
    const char *http_addr = json_get_str(doc.root, "http_address", NULL);
    if (!id || id->type != JSON_NUMBER || !id->is_int || id->i <= 0) {
        json_free(&doc);
        node_respond_error(n, x, 400, "bad_request", "\"id\" must be a positive integer");
        return;
    }
    raft_id member = (raft_id)id->i;
    bool as_learner = learner && learner->type == JSON_BOOL && learner->b;
    if (raft_role(replica_raft(n->replica)) != RAFT_LEADER) {
        json_free(&doc);
        node_respond_error(n, x, 503, "not_leader", "only the leader changes the membership");
        return;
    }
    /* SPEC §3: a member's addresses change only by `member remove` and a
     * new `member add`, so nothing of this request may reach the log. */
    if (raft_config_find(raft_configuration(replica_raft(n->replica)), member)) {
        json_free(&doc);
        node_respond_error(n, x, 409, "exists",
                      "that id is already a member: to change its addresses, remove it first (`member remove`); "
                      "to make a learner a voter, use `member promote`");
        return;
    }
    if (raft_addr && http_addr) {
        if (node_learn_member(n, member, raft_addr, http_addr)) {
            json_free(&doc);
            node_respond_error(n, x, 400, "bad_address", "raft_address and http_address must be HOST:PORT");
            return;
        }
        char idtext[32], addrs[2 * CLUSTER_ADDR_MAX + 2];
        snprintf(idtext, sizeof idtext, "%llu", (unsigned long long)member);
        snprintf(addrs, sizeof addrs, "%s %s", raft_addr, http_addr);
        struct command cmd = { .type = CMD_MEMBER_ADDR, .time_ms = node_now_ms(),
                               .key = { idtext, (uint16_t)strlen(idtext) },
                               .value = { addrs, (uint16_t)strlen(addrs) } };
        uint8_t buf[1024];
        long len = command_encode(&cmd, buf, sizeof buf);
        if (len > 0)
            node_propose(n, buf, (size_t)len, address_proposed, NULL);
    } else if (!cluster_find(&n->cluster, member)) {
        json_free(&doc);
        node_respond_error(n, x, 400, "unknown_address", "give raft_address and http_address for a new member");
        return;
    }
    json_free(&doc);
    raft_index index = 0;
    int rc = node_change_member(n, as_learner ? RAFT_ADD_LEARNER : RAFT_ADD_VOTER, member, &index);
    respond_raft_rc(n, x, rc, index, "cannot add the member");
}

static void handle_members(struct node *n, struct http_exchange *x, const struct http_request *req, const char *rest)
{
    raft_index index = 0;
    if (!*rest) {
        if (strcmp(req->method, "POST")) {
            node_respond_error(n, x, 405, "method_not_allowed", "use POST to add a member");
            return;
        }
        handle_member_add(n, x, req);
        return;
    }
    char idbuf[32];
    const char *slash = strchr(rest, '/');
    size_t idlen = slash ? (size_t)(slash - rest) : strlen(rest);
    raft_id id;
    if (idlen >= sizeof idbuf) {
        node_respond_error(n, x, 404, "not_found", "no such path");
        return;
    }
    memcpy(idbuf, rest, idlen);
    idbuf[idlen] = 0;
    if (parse_id(idbuf, &id)) {
        node_respond_error(n, x, 404, "not_found", "no such member path");
        return;
    }
    if (!slash) {
        if (strcmp(req->method, "DELETE")) {
            node_respond_error(n, x, 405, "method_not_allowed", "use DELETE to remove a member");
            return;
        }
        int rc = node_change_member(n, RAFT_REMOVE, id, &index); /* before index is read */
        respond_raft_rc(n, x, rc, index, "cannot remove the member");
        return;
    }
    if (!strcmp(slash, "/promote")) {
        if (strcmp(req->method, "POST")) {
            node_respond_error(n, x, 405, "method_not_allowed", "use POST to promote");
            return;
        }
        int rc = node_change_member(n, RAFT_PROMOTE, id, &index);
        respond_raft_rc(n, x, rc, index, "cannot promote the member");
        return;
    }
    node_respond_error(n, x, 404, "not_found", "no such path");
}

static void handle_transfer(struct node *n, struct http_exchange *x, const struct http_request *req)
{
    char err[256];
    uint64_t to;
    if (strcmp(req->method, "POST")) {
        node_respond_error(n, x, 405, "method_not_allowed", "use POST");
        return;
    }
    if (body_number(req, "to", &to, err, sizeof err)) {
        node_respond_error(n, x, 400, "bad_request", err);
        return;
    }
    respond_raft_rc(n, x, node_transfer_leader(n, to), 0, "cannot transfer leadership");
}

/* ---- Routing ------------------------------------------------------------------ */

static bool is_read(const struct http_request *req)
{
    return !strcmp(req->method, "GET") || req->head;
}

void node_api_handle(void *ctx, struct http_exchange *x)
{
    struct node *n = ctx;
    const struct http_request *req = http_exchange_request(x);
    const char *path = req->path;

    if (!strcmp(path, "/healthz") || !strcmp(path, "/readyz") || !strcmp(path, "/leaderz") ||
        !strcmp(path, "/metrics") || !strcmp(path, "/api/v1/cluster")) {
        if (!is_read(req)) {
            node_respond_error(n, x, 405, "method_not_allowed", "use GET");
            return;
        }
        if (!strcmp(path, "/healthz")) {
            respond_text(n, x, 200, "ok\n");
        } else if (!strcmp(path, "/readyz")) {
            bool ready = node_is_ready(n);
            respond_text(n, x, ready ? 200 : 503, ready ? "ready\n" : "not ready: no leader known or not caught up\n");
        } else if (!strcmp(path, "/leaderz")) {
            /* A leader whose disk is full cannot commit: send writes elsewhere. */
            struct replica_status st;
            replica_get_status(n->replica, &st);
            bool leader = st.role == RAFT_LEADER && st.state == REPLICA_RUNNING && st.disk == REPLICA_DISK_OK;
            /* With the term (X-Raft-Term): a deposed leader that has not yet
             * heard of its successor (it was paused or cut off) still says
             * 200, and the term tells a gateway which of two is newer. */
            char headers[256];
            snprintf(headers, sizeof headers,
                     "Content-Type: text/plain; charset=utf-8\r\nX-Served-By: %llu\r\nX-Raft-Index: %llu\r\n"
                     "X-Raft-Term: %llu\r\nCache-Control: no-store\r\n",
                     (unsigned long long)n->o.id, (unsigned long long)store_applied(n->store),
                     (unsigned long long)st.term);
            const char *text = leader ? "leader\n" : "not the leader\n";
            http_respond(x, leader ? 200 : 503, headers, text, strlen(text));
        } else if (!strcmp(path, "/metrics")) {
            struct buf b;
            buf_init(&b);
            metrics_text(n, &b);
            respond_buf(n, x, 200, "text/plain; version=0.0.4", store_applied(n->store), &b);
        } else {
            /* Addresses only for a request that proves the secret; one that
             * tries and fails is told so. */
            bool with_addresses = n->secret && http_header_get(req, "Authorization", NULL);
            if (with_addresses && !admin_allowed(n, x, req, false, true))
                return;
            struct buf b;
            buf_init(&b);
            cluster_json(n, &b, with_addresses);
            respond_json(n, x, 200, &b);
        }
        return;
    }
    if (!strncmp(path, "/api/v1/kv/", 11)) {
        if (!is_read(req)) {
            /* Proven for this node and spent here, also when passed on:
             * forward.c signs a fresh proof for the leader. */
            bool forward = node_forward_wanted(n, req);
            if (!admin_allowed(n, x, req, false, true))
                return;
            if (forward) {
                node_forward(n, x);
                return;
            }
        }
        handle_kv(n, x, req, path + 11);
        return;
    }
    if (!strcmp(path, "/api/v1/members") || !strncmp(path, "/api/v1/members/", 16)) {
        if (admin_allowed(n, x, req, false, true))
            handle_members(n, x, req, path[15] ? path + 16 : "");
        return;
    }
    if (!strncmp(path, "/api/v1/moderators/", 19)) {
        if (admin_allowed(n, x, req, false, true))
            handle_moderator(n, x, req, path + 19);
        return;
    }
    if (!strcmp(path, "/api/v1/backup")) {
        if (admin_allowed(n, x, req, false, true))
            node_backup_handle(n, x);
        return;
    }
    if (!strcmp(path, "/api/v1/transfer-leader")) {
        if (admin_allowed(n, x, req, false, true))
            handle_transfer(n, x, req);
        return;
    }
    /* Everything else is the website's: pages, /static/ and the site's API.
     * Its writes are forwarded like the KV API's, so they run on the leader. */
    if (n->site) {
        if (node_forward_wanted(n, req)) {
            node_forward(n, x);
            return;
        }
        if (site_handle(n->site, x))
            return;
    }
    node_respond_error(n, x, 404, "not_found", "no such path");
}

void node_cluster_json(struct node *n, struct buf *b) { cluster_json(n, b, false); }
