/*
 * discuss.c — comments (SPEC §5 "Comments"): the JSON API rows and the
 * write flows the API shares with the forms of thread.c. As for links, a
 * write is checked against the local copy first (so that the common
 * mistakes answer at once) and then again by the state machine at apply,
 * which alone decides: the session, the parent, the author and the 2-hour
 * edit window on the log clock.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "site/internal.h"
#include "site/text.h"

static struct store *store_of(struct site_req *r) { return r->s->host.store(r->s->host.ctx); }

void site_comment_path(char *out, size_t cap, int64_t link, int64_t id)
{
    if (id)
        snprintf(out, cap, "/link/%" PRId64 "#c%" PRId64, link, id);
    else
        snprintf(out, cap, "/link/%" PRId64, link);
}

/* The comment object of SPEC §5. */
void site_comment_json(struct buf *b, const struct store_comment *c)
{
    char created[32], edited[32];
    site_rfc3339(c->created_ms, created);
    buf_printf(b, "{\"id\":%" PRId64 ",\"link\":%" PRId64 ",\"parent\":", c->id, c->link_id);
    if (c->parent_id)
        buf_printf(b, "%" PRId64, c->parent_id);
    else
        buf_puts(b, "null");
    buf_puts(b, ",\"author\":");
    if (c->deleted)
        buf_puts(b, "null");
    else
        json_write_str(b, c->author, strlen(c->author));
    buf_puts(b, ",\"text\":");
    json_write_str(b, c->text, strlen(c->text));
    buf_printf(b, ",\"created\":\"%s\",\"likes\":%" PRId64 ",\"edited\":", created, c->likes);
    if (c->edited_ms) {
        site_rfc3339(c->edited_ms, edited);
        buf_printf(b, "\"%s\"", edited);
    } else {
        buf_puts(b, "null");
    }
    buf_printf(b, ",\"deleted\":%s,\"depth\":%d}", c->deleted ? "true" : "false", c->depth);
}

static void fail_store(struct site_req *r) { site_fail(r, 500, "internal", store_errmsg(store_of(r))); }

static void login_needed(struct site_req *r)
{
    if (!r->api) {
        /* Back to where the user was once logged in (SPEC §5): a local
         * path, made here from the route, never taken from the request. */
        char path[96];
        if (r->comment_id)
            snprintf(path, sizeof path, "/login?next=/comment/%" PRId64 "/reply", r->comment_id);
        else
            snprintf(path, sizeof path, "/login?next=/link/%" PRId64, r->id);
        site_redirect(r, path);
        return;
    }
    site_fail(r, 401, "login_required",
              r->has_token ? "the session has ended (logged out or expired): log in again" : "log in first");
}

/* Answers with comment id as JSON (status, extra headers). */
static void reply_comment(struct site_req *r, int64_t id, int status, const char *headers)
{
    struct store_comment c;
    int found = store_comment_get(store_of(r), id, &c);
    if (found != 1) {
        if (found < 0)
            fail_store(r);
        else
            site_fail(r, 404, "not_found", "no such comment");
        return;
    }
    struct buf b;
    buf_init(&b);
    site_comment_json(&b, &c);
    buf_puts(&b, "\n");
    store_comment_clear(&c);
    site_reply(r, status, "application/json", headers, &b);
}

bool site_comment_text(struct site_req *r, const char *raw, size_t len)
{
    free(r->text);
    r->text = malloc(len + 1);
    if (!r->text) {
        site_fail(r, 503, "unavailable", "out of memory");
        return false;
    }
    const char *err = site_text_check(raw, len, SITE_TEXT_MAX_CHARS, false, r->text, len + 1, &r->text_len);
    if (err) {
        r->bad_field = "text";
        site_fail(r, 400, "invalid", err);
        return false;
    }
    return true;
}

/* The status of a comment write's result, answered; true if it was OK. */
static bool result_ok(struct site_req *r, int status, uint64_t index, const struct store_result *res)
{
    if (status) {
        site_fail_host(r, status);
        return false;
    }
    site_wrote(r, index);
    switch (res->status) {
    case CMD_OK: return true;
    case CMD_ERR_DENIED: login_needed(r); return false;
    case CMD_ERR_RATE_LIMITED: site_fail_rate_limited(r, res->count, true); return false;
    case CMD_ERR_NOT_FOUND:
        site_fail(r, 404, "not_found", r->comment_id ? "no such comment" : "no such link");
        return false;
    case CMD_ERR_INVALID:
        site_fail(r, 400, "bad_parent", "the parent is not a live comment of this link (or the thread is too deep)");
        return false;
    case CMD_ERR_FORBIDDEN:
        site_fail(r, 403, "forbidden", "only its author may change a comment, and edits only within 2 hours of posting");
        return false;
    default: site_fail(r, 400, "invalid", "the comment was refused as malformed"); return false;
    }
}

static struct command comment_command(struct site_req *r, int type)
{
    struct command c = { .type = (uint8_t)type,
                         .session = { (const char *)r->token_hash, COMMAND_HASH_LEN },
                         .link_id = r->id,
                         .comment_id = r->comment_id,
                         .text = { r->text, (uint16_t)r->text_len },
                         .idem_key = { r->idem, (uint16_t)r->idem_len } };
    c.scope = site_scope(r, r->user.lname);
    return c;
}

/* ---- Post -------------------------------------------------------------------------- */

static void post_done(void *arg, int status, uint64_t index, const struct store_result *res)
{
    struct site_req *r = arg;
    int64_t parent = r->comment_id;
    r->comment_id = 0; /* a NOT_FOUND here is about the link */
    if (!result_ok(r, status, index, res))
        return;
    if (!r->api) {
        char path[64];
        site_comment_path(path, sizeof path, r->id, res->id);
        site_redirect(r, path);
        return;
    }
    char h[80];
    snprintf(h, sizeof h, "Location: /api/v1/comments/%" PRId64 "\r\n", res->id);
    if (res->replayed) { /* an earlier request's comment: as it is now */
        reply_comment(r, res->id, 201, h);
        return;
    }
    /* The new row is what was proposed, with the id, author, depth and log
     * time the apply gave it: answered from those, not read back. */
    struct store_comment c = { .id = res->id, .link_id = r->id, .parent_id = parent, .text = r->text,
                               .created_ms = res->time_ms, .depth = res->depth };
    snprintf(c.author, sizeof c.author, "%.*s", (int)sizeof c.author - 1, res->text); /* names fit */
    struct buf b;
    buf_init(&b);
    site_comment_json(&b, &c);
    buf_puts(&b, "\n");
    site_reply(r, 201, "application/json", h, &b);
}

void site_comment_post_begin(struct site_req *r)
{
    if (!r->logged_in) {
        login_needed(r);
        return;
    }
    int found = store_link_live(store_of(r), r->id);
    if (found < 0) {
        fail_store(r);
        return;
    }
    if (!found) {
        site_fail(r, 404, "not_found", "no such link");
        return;
    }
    if (r->comment_id) {
        struct store_comment p;
        found = store_comment_get(store_of(r), r->comment_id, &p);
        if (found < 0) {
            fail_store(r);
            return;
        }
        bool ok = found && !p.deleted && p.link_id == r->id;
        if (found)
            store_comment_clear(&p);
        if (!ok) {
            site_fail(r, 400, "bad_parent", "the parent is not a live comment of this link");
            return;
        }
    }
    struct command c = comment_command(r, CMD_COMMENT_POST);
    site_propose(r, &c, post_done);
}

/* ---- Edit, delete, like --------------------------------------------------------------- */

/* Looks up r->comment_id here: r->id becomes its link. false after answering. */
static bool find_comment(struct site_req *r, struct store_comment *c)
{
    int found = store_comment_get(store_of(r), r->comment_id, c);
    if (found == 1 && !c->deleted) {
        r->id = c->link_id;
        return true;
    }
    if (found == 1)
        store_comment_clear(c);
    if (found < 0)
        fail_store(r);
    else
        site_fail(r, 404, "not_found", "no such comment");
    return false;
}

static void edit_done(void *arg, int status, uint64_t index, const struct store_result *res)
{
    struct site_req *r = arg;
    if (!result_ok(r, status, index, res))
        return;
    if (!r->api) {
        char path[64];
        site_comment_path(path, sizeof path, r->id, r->comment_id);
        site_redirect(r, path);
        return;
    }
    reply_comment(r, r->comment_id, 200, NULL);
}

/* A write on an existing comment by a logged-in user: the comment must be
 * live and of this link (find_comment answers otherwise). */
static void propose_on_comment(struct site_req *r, int type, site_write_cb done)
{
    if (!r->logged_in) {
        login_needed(r);
        return;
    }
    struct store_comment c;
    if (!find_comment(r, &c))
        return;
    store_comment_clear(&c);
    struct command cmd = comment_command(r, type);
    site_propose(r, &cmd, done);
}

void site_comment_edit_begin(struct site_req *r)
{
    propose_on_comment(r, CMD_COMMENT_EDIT, edit_done);
}

static void delete_done(void *arg, int status, uint64_t index, const struct store_result *res)
{
    struct site_req *r = arg;
    if (!result_ok(r, status, index, res))
        return;
    if (!r->api) {
        char path[64];
        site_comment_path(path, sizeof path, r->id, 0);
        site_redirect(r, path);
        return;
    }
    site_reply(r, 204, "application/json", NULL, NULL);
}

void site_comment_delete_begin(struct site_req *r)
{
    if (site_mod_delete(r, true))
        return;
    propose_on_comment(r, CMD_COMMENT_DELETE, delete_done);
}

static void like_done(void *arg, int status, uint64_t index, const struct store_result *res)
{
    struct site_req *r = arg;
    if (!result_ok(r, status, index, res))
        return;
    if (!r->api) {
        char path[64];
        site_comment_path(path, sizeof path, r->id, r->comment_id);
        site_redirect(r, r->next[0] ? r->next : path);
        return;
    }
    struct buf b;
    buf_init(&b);
    buf_printf(&b, "{\"id\":%" PRId64 ",\"likes\":%" PRId64 ",\"liked\":%s}\n", res->id, res->count,
               res->flag ? "true" : "false");
    site_reply(r, 200, "application/json", NULL, &b);
}

void site_comment_like_begin(struct site_req *r)
{
    propose_on_comment(r, r->like_on ? CMD_COMMENT_LIKE : CMD_COMMENT_UNLIKE, like_done);
}

/* ---- The API ----------------------------------------------------------------------- */

/* {"text", "parent"?} of a POST, or {"text"} of a PATCH, into r. */
static bool parse_body(struct site_req *r, bool with_parent)
{
    struct json_doc doc;
    if (!site_json_body(r, &doc))
        return false;
    size_t len = 0;
    const char *t = json_get_str(doc.root, "text", &len);
    const struct json *parent = with_parent ? json_get(doc.root, "parent") : NULL;
    bool parent_ok = !parent || parent->type == JSON_NULL || (parent->is_int && parent->i > 0);
    if (!t || !parent_ok) {
        json_free(&doc);
        site_fail(r, 400, "bad_json",
                  with_parent ? "send {\"text\": \"...\"} or {\"text\": \"...\", \"parent\": COMMENT-ID}"
                              : "send {\"text\": \"...\"}");
        return false;
    }
    if (parent && parent->is_int)
        r->comment_id = parent->i;
    bool ok = site_comment_text(r, t, len);
    json_free(&doc);
    return ok;
}

static void api_thread(struct site_req *r)
{
    r->shareable = true; /* a listing, the same for every visitor (site_reply) */
    struct store_link *l = malloc(sizeof *l);
    int found = l ? store_link_get(store_of(r), r->id, l) : STORE_ENOMEM;
    free(l);
    if (found != 1) {
        if (found < 0)
            fail_store(r);
        else
            site_fail(r, 404, "not_found", "no such link");
        return;
    }
    struct store_comment *c;
    size_t n;
    if (store_thread(store_of(r), r->id, &c, &n) != STORE_OK) {
        fail_store(r);
        return;
    }
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "{\"comments\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_puts(&b, ",");
        site_comment_json(&b, &c[i]);
    }
    buf_puts(&b, "]}\n");
    store_comments_free(c, n);
    site_reply(r, 200, "application/json", NULL, &b);
}

static void api_comment_post(struct site_req *r)
{
    if (!r->logged_in) {
        login_needed(r);
        return;
    }
    if (parse_body(r, true))
        site_comment_post_begin(r);
}

static void api_comment_patch(struct site_req *r)
{
    if (!r->logged_in) {
        login_needed(r);
        return;
    }
    if (parse_body(r, false))
        site_comment_edit_begin(r);
}

static void api_comment_get(struct site_req *r) { reply_comment(r, r->comment_id, 200, NULL); }

static bool is(struct site_req *r, const char *m) { return !strcmp(r->req->method, m); }

bool site_comments_api_route(struct site_req *r, const char *p, bool *answered)
{
    *answered = true;
    if (!strncmp(p, "/links/", 7)) { /* "/links/ID/comments"; r->id is set */
        if (r->head_or_get)
            r->step = api_thread;
        else if (is(r, "POST"))
            r->step = api_comment_post;
        else
            return site_fail_method(r, "GET, HEAD, POST"), true;
        *answered = false;
        return true;
    }
    /* "/comments/ID" or "/comments/ID/like" */
    const char *idp = p + 10, *slash = strchr(idp, '/');
    size_t idlen = slash ? (size_t)(slash - idp) : strlen(idp);
    if (!site_parse_id(idp, idlen, &r->comment_id) || (slash && strcmp(slash, "/like"))) {
        site_fail(r, 404, "not_found", "no such path");
        return true;
    }
    if (slash) {
        if (!is(r, "PUT") && !is(r, "DELETE"))
            return site_fail_method(r, "PUT, DELETE"), true;
        r->like_on = is(r, "PUT");
        r->step = site_comment_like_begin;
    } else if (r->head_or_get) {
        r->step = api_comment_get;
    } else if (is(r, "PATCH")) {
        r->step = api_comment_patch;
    } else if (is(r, "DELETE")) {
        r->step = site_comment_delete_begin;
    } else {
        return site_fail_method(r, "GET, HEAD, PATCH, DELETE"), true;
    }
    *answered = false;
    return true;
}
