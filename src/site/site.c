/*
 * site.c — the site's request machinery (site.h, site/internal.h): creation,
 * dispatch with the checks every request gets (method, consistency headers,
 * authentication, CSRF and Origin for writes), the read barrier and session
 * lookup, responses with the common headers, proposals, password hashing
 * on libuv's workers, session tokens and login throttling.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "site/internal.h"

void site_options_default(struct site_options *o)
{
    memset(o, 0, sizeof *o);
    o->pwhash_opslimit = 2;
    o->pwhash_memlimit = 19 * 1024 * 1024;
    o->read_timeout_ms = 3000;
    o->max_attempts_per_addr = 30;
    o->max_failures_per_user = 10;
    o->cache_seconds = SITE_CACHE_SECONDS;
}

int site_create(const struct site_host *host, const struct site_options *o, struct site **out,
                char *err, size_t errcap)
{
    if (sodium_init() < 0) {
        snprintf(err, errcap, "libsodium failed to initialise (no entropy source?)");
        return -1;
    }
    if (!o->loop || !host->propose || !host->read || !host->store || !host->id || !host->applied || !host->now_ms) {
        snprintf(err, errcap, "site_create: the loop and the host's propose, read, store, id, applied, now_ms are required");
        return -1;
    }
    struct site *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errcap, "out of memory creating the site");
        return -1;
    }
    s->host = *host;
    s->o = *o;
    if (!s->o.pwhash_opslimit)
        s->o.pwhash_opslimit = 2;
    if (!s->o.pwhash_memlimit)
        s->o.pwhash_memlimit = 19 * 1024 * 1024;
    if (!s->o.read_timeout_ms)
        s->o.read_timeout_ms = 3000;
    if (site_throttle_init(&s->by_addr, 60 * 1000, s->o.max_attempts_per_addr ? s->o.max_attempts_per_addr : 30,
                           SITE_THROTTLE_MAX_ENTRIES) ||
        site_throttle_init(&s->by_user_addr, 15 * 60 * 1000,
                           s->o.max_failures_per_user ? s->o.max_failures_per_user : 10, SITE_THROTTLE_MAX_ENTRIES) ||
        site_search_init(s)) {
        snprintf(err, errcap, "out of memory creating the site");
        site_destroy(s);
        return -1;
    }
    /* A login for an unknown user verifies against this hash, so it costs
     * what a real one costs and the two cannot be told apart by time. */
    char random_pw[33];
    uint8_t rnd[16];
    randombytes_buf(rnd, sizeof rnd);
    site_hex(rnd, sizeof rnd, random_pw);
    if (crypto_pwhash_str(s->dummy_hash, random_pw, strlen(random_pw), s->o.pwhash_opslimit, s->o.pwhash_memlimit)) {
        snprintf(err, errcap, "cannot hash a password with argon2id (memlimit %zu bytes): out of memory?",
                 s->o.pwhash_memlimit);
        site_destroy(s);
        return -1;
    }
    *out = s;
    return 0;
}

void site_destroy(struct site *s)
{
    if (!s)
        return;
    /* Responses still being written hold their own references. */
    for (int i = 0; i < SITE_CACHED_SORTS; i++) {
        site_shared_unref(s->page_cache[i].body);
        site_shared_unref(s->page_cache[i].gz);
    }
    for (int i = 0; i < SITE_CACHED_LINKS; i++) {
        site_shared_unref(s->link_cache[i].body);
        site_shared_unref(s->link_cache[i].gz);
    }
    free(s->css_gz);
    site_throttle_free(&s->by_addr);
    site_throttle_free(&s->by_user_addr);
    site_search_free(s);
    free(s);
}

void site_get_stats(const struct site *s, struct site_stats *out) { *out = s->stats; }

void site_hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = 0;
}

static bool unhex(const char *s, size_t len, uint8_t *out, size_t n)
{
    if (len != 2 * n)
        return false;
    for (size_t i = 0; i < n; i++) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char c = s[2 * i + k];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                  : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
            if (d < 0)
                return false;
            v = v << 4 | d;
        }
        out[i] = (uint8_t)v;
    }
    return true;
}

/* ---- Responses ------------------------------------------------------------ */

/* No inline script or style anywhere: the one stylesheet is /static/. */
#define SECURITY_HEADERS \
    "Content-Security-Policy: default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; " \
    "frame-ancestors 'none'; base-uri 'none'\r\n" \
    "X-Content-Type-Options: nosniff\r\n" \
    "X-Frame-Options: DENY\r\n" \
    "Referrer-Policy: strict-origin-when-cross-origin\r\n"

/* Under HTTPS (this server's, or a trusted proxy's: http.h) cookies are
 * never sent back over plain HTTP, and browsers are told to use HTTPS only
 * (a year; RFC 6797 says to send it over HTTPS only). */
static const char *cookie_secure(const struct site_req *r) { return r->req->secure ? "; Secure" : ""; }
#define HSTS_HEADER "Strict-Transport-Security: max-age=31536000\r\n"

struct site_shared *site_shared_new(const char *p, size_t len)
{
    struct site_shared *sh = malloc(sizeof *sh + len + 1);
    if (!sh)
        return NULL;
    sh->refs = 1;
    sh->len = len;
    memcpy(sh->p, p, len);
    sh->p[len] = 0;
    return sh;
}

struct site_shared *site_shared_ref(struct site_shared *sh)
{
    sh->refs++;
    return sh;
}

void site_shared_unref(struct site_shared *sh)
{
    if (sh && --sh->refs == 0)
        free(sh);
}

static void shared_release(void *arg) { site_shared_unref(arg); }

/* Pages, the stylesheet, the icon and feeds go compressed to a client that
 * takes gzip; the JSON API's answers (small, read by programs) do not. */
static bool compressible(const struct site_req *r, const char *ctype)
{
    return !r->api && (!strncmp(ctype, "text/", 5) || !strncmp(ctype, "image/svg+xml", 13) ||
                       !strncmp(ctype, "application/atom+xml", 20));
}

void site_etag(const char *body, size_t len, char out[SITE_ETAG_CAP])
{
    uint8_t h[16];
    char hex[33];
    crypto_generichash(h, sizeof h, (const uint8_t *)body, len, NULL, 0);
    site_hex(h, sizeof h, hex);
    snprintf(out, SITE_ETAG_CAP, "W/\"%s\"", hex);
}

/* Whether the request's If-None-Match names etag (W/"hex") or is "*", by
 * the weak comparison RFC 9110 §13.1.2 prescribes for it. */
static bool etag_matches(const struct http_request *req, const char *etag)
{
    size_t len;
    const char *v = http_header_get(req, "If-None-Match", &len);
    if (!v)
        return false;
    const char *tag = etag + 2; /* "hex" with its quotes */
    size_t tlen = strlen(tag);
    for (size_t i = 0; i < len;) {
        while (i < len && (v[i] == ' ' || v[i] == ',' || v[i] == '\t'))
            i++;
        if (i < len && v[i] == '*')
            return true;
        if (i + 2 <= len && v[i] == 'W' && v[i + 1] == '/')
            i += 2;
        if (i >= len || v[i] != '"')
            return false; /* not a list of entity tags: no match, the full answer */
        const char *close = memchr(v + i + 1, '"', len - i - 1);
        if (!close)
            return false;
        size_t n = (size_t)(close - (v + i)) + 1;
        if (n == tlen && !memcmp(v + i, tag, n))
            return true;
        i += n;
    }
    return false;
}

static bool has_set_cookie(const char *p, size_t len) { return p && len && memmem(p, len, "Set-Cookie:", 11); }

/* Whether a shared cache may keep this answer (struct site_req, shareable):
 * a 200 to GET or HEAD from a visitor with no session token, that sets no
 * cookie and carries no CSRF token: a cache replays it to everyone. */
static bool shared_ok(const struct site_req *r, int status, const char *extra)
{
    return r->shareable && r->s->o.cache_seconds && r->head_or_get && status == 200 && !r->has_token &&
           !r->csrf_used && !(extra && (strstr(extra, "Cache-Control:") || strstr(extra, "Set-Cookie:"))) &&
           !has_set_cookie(r->hdrs.p, r->hdrs.len);
}

void site_reply(struct site_req *r, int status, const char *ctype, const char *extra_headers, struct buf *body)
{
    struct site *s = r->s;
    struct buf h;
    buf_init(&h);
    uint64_t index = r->write_index ? r->write_index : s->host.applied(s->host.ctx);
    buf_printf(&h, "Content-Type: %s\r\nX-Served-By: %" PRIu64 "\r\nX-Raft-Index: %" PRIu64 "\r\n" SECURITY_HEADERS,
               ctype, s->host.id(s->host.ctx), index);
    if (r->req->secure)
        buf_puts(&h, HSTS_HEADER);
    bool shared = shared_ok(r, status, extra_headers) && body && !body->oom;
    bool gzippable = body && compressible(r, ctype);
    /* A cached page is lent (its gzip form when the client takes it), not
     * copied: the body passed is then empty. */
    const char *plain = r->lent ? r->lent->p : body ? body->p : NULL;
    size_t plain_len = r->lent ? r->lent->len : body ? body->len : 0;
    if (shared) {
        /* Browsers ask again every time (max-age=0), with If-None-Match; a
         * shared cache answers for cache_seconds. It varies on Cookie and
         * Authorization: whoever sends a session gets the node's answer. */
        if (!r->etag[0])
            site_etag(plain ? plain : "", plain_len, r->etag);
        time_t t = (time_t)((r->rendered_ms ? r->rendered_ms : s->host.now_ms(s->host.ctx)) / 1000);
        struct tm tm;
        char date[40];
        gmtime_r(&t, &tm);
        strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        buf_printf(&h, "Cache-Control: public, max-age=0, s-maxage=%u\r\nETag: %s\r\nLast-Modified: %s\r\n"
                       "Vary: %sCookie, Authorization\r\n",
                   s->o.cache_seconds, r->etag, date, gzippable ? "Accept-Encoding, " : "");
    } else if (!extra_headers || !strstr(extra_headers, "Cache-Control:")) {
        buf_puts(&h, "Cache-Control: private, no-store\r\n");
    }
    if (extra_headers)
        buf_puts(&h, extra_headers);
    /* The anonymous CSRF cookie goes only with a form that carries its
     * token: never on a page a shared cache may keep, the stylesheet or
     * API answers. */
    if (r->set_csrf_cookie && r->csrf_used && !strncmp(ctype, "text/html", 9))
        buf_printf(&h, "Set-Cookie: lr_csrf=%s; Path=/; HttpOnly; SameSite=Lax%s\r\n", r->csrf, cookie_secure(r));
    if (r->hdrs.len)
        buf_append(&h, r->hdrs.p, r->hdrs.len);
    if (shared && etag_matches(r->req, r->etag)) {
        buf_free(body);
        if (h.oom)
            r->respond(r->rctx, 500, "Content-Type: text/plain\r\n", NULL, 0, NULL);
        else
            r->respond(r->rctx, 304, h.p, NULL, 0, NULL);
        s->stats.not_modified++;
        buf_free(&h);
        goto done;
    }
    size_t len = 0, gz_len = 0;
    char *p = NULL, *gz = NULL;
    bool lend_gz = false;
    if (gzippable) {
        /* Caches between here and the client must keep the two forms apart. */
        if (!shared)
            buf_puts(&h, "Vary: Accept-Encoding\r\n");
        size_t alen;
        const char *ae = http_header_get(r->req, "Accept-Encoding", &alen);
        if (ae && plain_len >= SITE_GZIP_MIN && !body->oom && site_accepts_gzip(ae, alen)) {
            if (r->lent && r->lent_gz) {
                lend_gz = true; /* compressed once, when cached */
            } else if (r->gz && (gz = malloc(r->gz_len + 1))) {
                memcpy(gz, r->gz, r->gz_len);
                gz[gz_len = r->gz_len] = 0;
            } else {
                gz = site_gzip(plain, plain_len, &gz_len);
            }
            if (lend_gz || gz) /* else (out of memory) the page goes uncompressed */
                buf_puts(&h, "Content-Encoding: gzip\r\n");
        }
    }
    if (body) {
        if (body->oom || h.oom) {
            free(gz);
            buf_free(body);
            buf_free(&h);
            r->respond(r->rctx, 500, "Content-Type: text/plain\r\n", NULL, 0, NULL);
            goto done;
        }
        if (gz) {
            buf_free(body);
            p = gz;
            len = gz_len;
        } else {
            p = buf_take(body, &len);
        }
    }
    if (r->lent && !gz) {
        /* The responder's reference is the one taken for this request. */
        struct site_shared **give = lend_gz ? &r->lent_gz : &r->lent;
        struct site_lent l = { (*give)->p, (*give)->len, shared_release, *give };
        *give = NULL;
        free(p);
        r->respond(r->rctx, status, h.oom ? NULL : h.p, NULL, 0, &l);
    } else {
        r->respond(r->rctx, status, h.oom ? NULL : h.p, p, len, NULL);
    }
    buf_free(&h);
done:
    site_shared_unref(r->lent);
    site_shared_unref(r->lent_gz);
    buf_free(&r->hdrs);
    s->stats.in_flight--;
    sodium_memzero(r->password, sizeof r->password);
    sodium_memzero(r->new_password, sizeof r->new_password);
    free(r->link_in);
    free(r->text);
    free(r);
}

void site_fail(struct site_req *r, int status, const char *code, const char *message)
{
    if (!r->api) {
        site_page_error(r, status, message);
        return;
    }
    struct buf b;
    buf_init(&b);
    json_write_error(&b, code, message, NULL);
    site_reply(r, status, "application/json", NULL, &b);
}

void site_fail_method(struct site_req *r, const char *allow)
{
    char h[128], msg[128];
    snprintf(h, sizeof h, "Allow: %s\r\n", allow);
    snprintf(msg, sizeof msg, "this path answers %s only", allow);
    if (!r->api) {
        buf_puts(&r->hdrs, h);
        r->form = SITE_FORM_NONE;
        site_page_error(r, 405, msg);
        return;
    }
    struct buf b;
    buf_init(&b);
    json_write_error(&b, "method_not_allowed", msg, NULL);
    site_reply(r, 405, "application/json", h, &b);
}

struct command_str site_scope(struct site_req *r, const char *lname)
{
    snprintf(r->scope, sizeof r->scope, "u:%s", lname);
    return (struct command_str){ r->scope, (uint16_t)strlen(r->scope) };
}

void site_redirect(struct site_req *r, const char *path)
{
    char h[400];
    /* Only local paths: never "//host" (a protocol-relative URL) or what a
     * browser reads as one. */
    if (!site_local_path_ok(path))
        path = "/";
    snprintf(h, sizeof h, "Location: %s\r\n", path);
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "See Other\n");
    site_reply(r, 303, "text/plain; charset=utf-8", h, &b);
}

void site_fail_host(struct site_req *r, int status)
{
    const char *text = r->s->host.status_text ? r->s->host.status_text(status) : NULL;
    char msg[256];
    switch (status) {
    case SITE_ETOOBIG:
        site_fail(r, 413, "too_big", "the request is too large to replicate");
        return;
    case SITE_EDISKFULL:
        site_fail(r, 507, "disk_full", "this server's disk is full; try again later");
        return;
    case SITE_ETIMEOUT:
        if (r->head_or_get || !r->step_started)
            snprintf(msg, sizeof msg, "this server has not caught up with the state you asked for (%s): "
                     "try again, or ask another server", text ? text : "timeout");
        else
            snprintf(msg, sizeof msg, "the cluster did not answer in time (%s); retry with the same Idempotency-Key",
                     text ? text : "timeout");
        site_fail(r, 503, "timeout", msg);
        return;
    default:
        snprintf(msg, sizeof msg, "the cluster cannot serve this now (%s); try again shortly",
                 text ? text : "unavailable");
        site_fail(r, 503, "unavailable", msg);
        return;
    }
}

void site_wrote(struct site_req *r, uint64_t index)
{
    r->write_index = index;
    /* The session-consistency cookie: this client's reads never go back
     * before its own last write, on whichever node they land. A browser
     * session cookie (no Max-Age): a cluster rebuilt from nothing must not
     * leave browsers waiting for an index it will not reach for days. */
    buf_printf(&r->hdrs, "Set-Cookie: lr_idx=%" PRIu64 "; Path=/; SameSite=Lax%s\r\n", index, cookie_secure(r));
}

/* Every write's answer passes here: a banned user's is refused at apply
 * whatever the command, and answered 403 the same way for all. */
static void write_done(void *arg, int status, uint64_t index, const struct store_result *res)
{
    struct site_req *r = arg;
    if (!site_write_banned(r, status, index, res))
        r->write_cb(arg, status, index, res);
}

void site_propose(struct site_req *r, struct command *c, site_write_cb cb)
{
    c->time_ms = r->s->host.now_ms(r->s->host.ctx);
    if (r->s->o.rate_limits_off)
        c->flags |= COMMAND_FLAG_NO_RATE_LIMIT;
    size_t size = command_size(c);
    uint8_t *data = malloc(size);
    long len = data ? command_encode(c, data, size) : -1;
    if (len < 0) {
        free(data);
        site_fail(r, 400, "bad_request", "the request does not fit a command");
        return;
    }
    r->write_cb = cb;
    r->s->host.propose(r->s->host.ctx, data, (size_t)len, write_done, r);
    free(data);
}

/* ---- Sessions and passwords ------------------------------------------------ */

void site_new_token(struct site_req *r, uint8_t out_hash[COMMAND_HASH_LEN])
{
    randombytes_buf(r->new_token, sizeof r->new_token);
    crypto_hash_sha256(out_hash, r->new_token, sizeof r->new_token);
}

void site_session_cookie(struct site_req *r, bool clear)
{
    if (clear) {
        buf_printf(&r->hdrs, "Set-Cookie: lr_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0%s\r\n",
                   cookie_secure(r));
        return;
    }
    char hex[SITE_TOKEN_HEX + 1];
    site_hex(r->new_token, sizeof r->new_token, hex);
    buf_printf(&r->hdrs, "Set-Cookie: lr_session=%s; Path=/; HttpOnly; SameSite=Lax; Max-Age=%llu%s\r\n", hex,
               (unsigned long long)(COMMAND_SESSION_TTL_MS / 1000), cookie_secure(r));
}

static void pwhash_work(uv_work_t *w)
{
    struct site_req *r = w->data;
    if (r->verifying)
        r->work_rc = crypto_pwhash_str_verify(r->pwhash, r->password, r->password_len);
    else
        r->work_rc = crypto_pwhash_str(r->pwhash, r->password, r->password_len, r->s->o.pwhash_opslimit,
                                       r->s->o.pwhash_memlimit);
}

static void pwhash_after(uv_work_t *w, int status);

static void pwhash_start(struct site_req *r)
{
    struct site *s = r->s;
    s->pw_active++;
    s->stats.pwhash_jobs++;
    r->work.data = r;
    if (uv_queue_work(s->o.loop, &r->work, pwhash_work, pwhash_after)) {
        s->pw_active--;
        site_fail(r, 503, "unavailable", "cannot queue the password hash");
    }
}

static void pwhash_after(uv_work_t *w, int status)
{
    struct site_req *r = w->data;
    struct site *s = r->s;
    s->pw_active--;
    if (s->pw_head && status == 0) {
        struct site_req *next = s->pw_head;
        s->pw_head = next->pw_next;
        if (!s->pw_head)
            s->pw_tail = NULL;
        s->pw_waiting--;
        pwhash_start(next);
    }
    if (status) { /* cancelled: the loop is closing */
        site_fail(r, 503, "stopping", "the server is shutting down");
        return;
    }
    r->step(r);
}

void site_pwhash(struct site_req *r, site_step done)
{
    struct site *s = r->s;
    r->step = done;
    if (s->pw_active < SITE_PWHASH_JOBS) {
        pwhash_start(r);
        return;
    }
    if (s->pw_waiting >= SITE_PWHASH_QUEUE) {
        buf_puts(&r->hdrs, "Retry-After: 1\r\n");
        site_fail(r, 503, "busy", "too many logins and sign-ups at once: try again in a second");
        return;
    }
    r->pw_next = NULL;
    if (s->pw_tail)
        s->pw_tail->pw_next = r;
    else
        s->pw_head = r;
    s->pw_tail = r;
    s->pw_waiting++;
}

/* ---- Client address --------------------------------------------------------- */

void site_client_addr(const struct http_request *req, char *out, size_t cap)
{
    /* The HTTP server resolved it: the TCP peer, or the address a trusted
     * proxy (a gateway, a follower forwarding a write, --trust-proxy)
     * appended to X-Forwarded-For. A client cannot choose its own. */
    if (req->client[0]) {
        snprintf(out, cap, "%s", req->client);
        return;
    }
    const char *p = req->peer;
    size_t n = strlen(p);
    if (p[0] == '[') { /* "[v6]:port" */
        const char *close = strchr(p, ']');
        n = close ? (size_t)(close - p - 1) : n;
        p++;
    } else {
        const char *colon = strrchr(p, ':');
        if (colon && strchr(p, ':') == colon)
            n = (size_t)(colon - p);
    }
    snprintf(out, cap, "%.*s", (int)n, p);
}

void site_throttle_addr(const struct http_request *req, char *out, size_t cap)
{
    char addr[64];
    unsigned char a6[16];
    site_client_addr(req, addr, sizeof addr);
    if (!strchr(addr, ':') || inet_pton(AF_INET6, addr, a6) != 1) {
        snprintf(out, cap, "%s", addr);
        return;
    }
    memset(a6 + 8, 0, 8);
    char prefix[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, a6, prefix, sizeof prefix);
    snprintf(out, cap, "%s/64", prefix);
}

/* ---- Dispatch --------------------------------------------------------------- */

static void barrier_done(void *arg, int status);

/* The second look at a token this node did not know (barrier_done): the
 * barrier failed (no leader now, say), so the first look's answer stands. */
static void recheck_done(void *arg, int status)
{
    struct site_req *r = arg;
    if (status) {
        r->step_started = true;
        r->step(r);
        return;
    }
    barrier_done(arg, 0);
}

static void barrier_done(void *arg, int status)
{
    struct site_req *r = arg;
    if (status) {
        site_fail_host(r, status);
        return;
    }
    struct site *s = r->s;
    if (r->has_token) {
        int found = store_session_user(s->host.store(s->host.ctx), r->token_hash, s->host.now_ms(s->host.ctx),
                                       &r->user);
        if (found < 0) {
            site_fail(r, 500, "internal", store_errmsg(s->host.store(s->host.ctx)));
            return;
        }
        r->logged_in = found == 1;
        /* A token this copy does not know may be one a login made a moment
         * ago elsewhere: an API client that sends no X-Min-Index reads what
         * this node has applied, and a node just restarted (or just made
         * leader) may be behind the commit that acknowledged the login.
         * Before saying "logged out", look once more on a copy as new as
         * everything committed now (a linearizable barrier). Only this
         * path pays for it, once per request, and only for a client that
         * gave no index of its own (X-Min-Index or the lr_idx cookie every
         * write of the site sets): one that did has had its read wait for
         * that index already, and an expired cookie in a browser must not
         * cost the leader a round, nor wait out an election, per page. */
        if (!r->logged_in && !r->session_rechecked && r->min_index == 0) {
            r->session_rechecked = true;
            s->host.read(s->host.ctx, SITE_READ_LINEARIZABLE, 0, s->o.read_timeout_ms, recheck_done, r);
            return;
        }
    }
    r->step_started = true;
    r->step(r);
}

/* The token from "Authorization: Bearer HEX" or the lr_session cookie. */
static void read_auth(struct site_req *r)
{
    size_t len;
    const char *v = http_header_get(r->req, "Authorization", &len);
    if (v && len > 7 && !strncasecmp(v, "Bearer ", 7)) {
        r->has_token = unhex(v + 7, len - 7, r->token, sizeof r->token);
    } else {
        char c[SITE_TOKEN_HEX + 2];
        if (site_cookie(r->req, "lr_session", c, sizeof c) && unhex(c, strlen(c), r->token, sizeof r->token))
            r->has_token = r->token_by_cookie = true;
    }
    if (r->has_token)
        crypto_hash_sha256(r->token_hash, r->token, sizeof r->token);
}

/* The CSRF token of this client's forms: derived from the session token
 * when there is one (every node derives the same), else a random value kept
 * in the lr_csrf cookie (double submit). */
static void derive_csrf(struct site_req *r)
{
    if (r->token_by_cookie) {
        /* Keyed BLAKE2b (the key is a label, 16 bytes: crypto_generichash_KEYBYTES_MIN)
         * of the secret token: unguessable without it, and unrelated to the
         * token's SHA-256 that the log holds. */
        static const uint8_t label[crypto_generichash_KEYBYTES_MIN] = "linkraft-csrf-01";
        uint8_t d[crypto_generichash_BYTES] = { 0 };
        if (crypto_generichash(d, sizeof d, r->token, sizeof r->token, label, sizeof label) == 0) {
            site_hex(d, SITE_CSRF_HEX / 2, r->csrf);
            return;
        }
        /* Cannot happen with these sizes; fall back to the double-submit cookie. */
    }
    char c[SITE_CSRF_HEX + 2];
    if (site_cookie(r->req, "lr_csrf", c, sizeof c) && strlen(c) == SITE_CSRF_HEX) {
        uint8_t tmp[SITE_CSRF_HEX / 2];
        if (unhex(c, SITE_CSRF_HEX, tmp, sizeof tmp)) {
            memcpy(r->csrf, c, sizeof r->csrf);
            return;
        }
    }
    uint8_t rnd[SITE_CSRF_HEX / 2];
    randombytes_buf(rnd, sizeof rnd);
    site_hex(rnd, sizeof rnd, r->csrf);
    r->set_csrf_cookie = true;
}

/* Origin, when sent, must be this host: a page elsewhere cannot make a
 * browser write with the user's cookie. */
static bool origin_ok(const struct http_request *req)
{
    size_t olen, hlen;
    const char *origin = http_header_get(req, "Origin", &olen);
    if (!origin)
        return true;
    size_t flen;
    const char *host = http_header_get(req, "Host", &hlen);
    const char *fwd = http_header_get(req, "X-Forwarded-Host", &flen);
    const char *p = origin;
    size_t n = olen;
    if (n > 7 && !strncasecmp(p, "http://", 7))
        p += 7, n -= 7;
    else if (n > 8 && !strncasecmp(p, "https://", 8))
        p += 8, n -= 8;
    else
        return false; /* "null" and the like */
    /* Behind the gateway or forwarded by a follower, X-Forwarded-Host is the
     * host the browser addressed. A page elsewhere cannot set that header on
     * a browser's request (it is not CORS-safelisted), so trusting it does
     * not open a way around this check. */
    return (host && n == hlen && !strncasecmp(p, host, n)) || (fwd && n == flen && !strncasecmp(p, fwd, n));
}

static bool is_json(const struct http_request *req)
{
    size_t len;
    const char *ct = http_header_get(req, "Content-Type", &len);
    return ct && len >= 16 && !strncasecmp(ct, "application/json", 16) && (len == 16 || ct[16] == ';' || ct[16] == ' ');
}

bool site_csrf_ok(struct site_req *r, const char *field, size_t len)
{
    return len == SITE_CSRF_HEX && sodium_memcmp(field, r->csrf, SITE_CSRF_HEX) == 0;
}

/* Consistency of reads (SPEC §4): X-Consistency, and for session reads the
 * larger of X-Min-Index and the lr_idx cookie. */
static const char *read_consistency(struct site_req *r, bool *behind)
{
    *behind = false;
    size_t len;
    enum http_consistency hc;
    if (http_consistency(r->req, &hc))
        return "X-Consistency is stale, session or linearizable";
    r->consistency = hc == HTTP_READ_STALE ? SITE_READ_STALE
                     : hc == HTTP_READ_LINEARIZABLE ? SITE_READ_LINEARIZABLE : SITE_READ_SESSION;
    const struct site_host *h = &r->s->host;
    uint64_t idx = 0, limit = (h->commit_index ? h->commit_index(h->ctx) : h->applied(h->ctx)) + SITE_INDEX_SLACK;
    const char *v = http_header_get(r->req, "X-Min-Index", &len);
    if (v && !site_parse_uint(v, len, 0, UINT64_MAX / 2, &idx))
        return "X-Min-Index is a raft index (a decimal number)";
    if (idx > limit) {
        *behind = true; /* this node may be catching up: not the client's error */
        return "this server has not caught up with X-Min-Index: try again, or ask another server";
    }
    r->min_index = idx;
    /* The cookie is ours, but old ones outlive a rebuilt cluster: one
     * beyond what can exist is ignored rather than making every page wait. */
    char c[24];
    if (site_cookie(r->req, "lr_idx", c, sizeof c) && site_parse_uint(c, strlen(c), 0, UINT64_MAX / 2, &idx) &&
        idx > r->min_index && idx <= limit)
        r->min_index = idx;
    return NULL;
}

bool site_dispatch(struct site *s, const struct http_request *req, site_respond_fn respond, void *rctx)
{
    const char *path = req->path;
    bool api = !strncmp(path, "/api/v1/", 8);
    struct site_req *r = calloc(1, sizeof *r);
    if (!r) {
        respond(rctx, 503, "Content-Type: text/plain\r\nRetry-After: 1\r\n", NULL, 0, NULL);
        return true;
    }
    r->s = s;
    r->req = req;
    r->respond = respond;
    r->rctx = rctx;
    r->api = api;
    r->head_or_get = req->head || !strcmp(req->method, "GET");
    buf_init(&r->hdrs);
    s->stats.requests++;
    s->stats.in_flight++;
    read_auth(r);
    r->shareable = !api; /* pages; of the API, the listings say so themselves */
    if (!api) {
        derive_csrf(r); /* only pages have forms (and a random one costs a getrandom) */
        site_flash_read(r);
    }

    bool answered = false;
    bool mine = api ? site_api_route(r, path, &answered) : site_pages_route(r, path, &answered);
    if (!mine) {
        s->stats.requests--;
        s->stats.in_flight--;
        buf_free(&r->hdrs);
        free(r);
        return false;
    }
    if (answered)
        return true;
    bool behind;
    const char *err = read_consistency(r, &behind);
    if (err && behind) {
        buf_puts(&r->hdrs, "Retry-After: 1\r\n");
        site_fail(r, 503, "behind", err);
        return true;
    }
    if (err) {
        site_fail(r, 400, "bad_consistency", err);
        return true;
    }
    /* A write checks its session on a copy at least as new as the client's
     * last write, whatever X-Consistency says. */
    if (!r->head_or_get && r->consistency == SITE_READ_STALE)
        r->consistency = SITE_READ_SESSION;
    if (!r->head_or_get) {
        /* A write authenticated by a cookie, or one that creates a session,
         * must come from this site: JSON with no foreign Origin (a form
         * elsewhere cannot send application/json without CORS), or a form
         * carrying the CSRF token (checked by the page's step). */
        bool cookie_or_anon = r->token_by_cookie || !r->has_token;
        if (!origin_ok(req)) {
            site_fail(r, 403, "bad_origin", "this request comes from another site (Origin does not match Host)");
            return true;
        }
        if (api && cookie_or_anon && !is_json(req) && req->body_len) {
            site_fail(r, 415, "need_json", "send the body as Content-Type: application/json");
            return true;
        }
        if (api && r->token_by_cookie && !is_json(req)) {
            site_fail(r, 415, "need_json", "a cookie-authenticated write must be Content-Type: application/json");
            return true;
        }
        size_t klen;
        const char *key;
        if (http_idempotency_key(req, &key, &klen)) {
            site_fail(r, 400, "bad_idempotency_key", HTTP_IDEM_RULE);
            return true;
        }
        if (key) {
            memcpy(r->idem, key, klen);
            r->idem[klen] = 0;
            r->idem_len = klen;
        }
    }
    s->host.read(s->host.ctx, r->consistency, r->min_index, s->o.read_timeout_ms, barrier_done, r);
    return true;
}
