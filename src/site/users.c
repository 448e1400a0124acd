/*
 * users.c — users and accounts (SPEC §5 "Users and accounts"): profiles
 * with karma and "about", a user's links and comments, PATCH /me, the
 * password change, and the pages /user/NAME/comments and /settings.
 *
 * A password change proves the old password on a worker (as a login does,
 * counted against the account's failure limit), hashes the new one on a
 * worker, then proposes CMD_PASSWORD_SET, which ends the user's other
 * sessions on every replica.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "site/internal.h"
#include "site/text.h"

static struct store *store_of(struct site_req *r) { return r->s->host.store(r->s->host.ctx); }
static uint64_t now_of(struct site_req *r) { return r->s->host.now_ms(r->s->host.ctx); }
static void esc(struct buf *b, const char *s) { site_html_escape(b, s, strlen(s)); }

static void fail_store(struct site_req *r) { site_fail(r, 500, "internal", store_errmsg(store_of(r))); }

static void login_needed(struct site_req *r)
{
    if (!r->api) {
        site_redirect(r, "/login?next=/settings");
        return;
    }
    site_fail(r, 401, "login_required",
              r->has_token ? "the session has ended (logged out or expired): log in again" : "log in first");
}

/* The user named r->name here: 1, or 0 after answering 404 / 500. */
static int find_user(struct site_req *r, struct store_user *u)
{
    int found = site_check_username(r->name, strlen(r->name)) ? 0
              : store_user_by_name(store_of(r), r->name, strlen(r->name), u);
    if (found == 1)
        return 1;
    if (found < 0)
        fail_store(r);
    else if (r->api)
        site_fail(r, 404, "not_found", "no such user");
    else
        site_page_error(r, 404, "There is no such user.");
    return 0;
}

/* ---- API reads ------------------------------------------------------------------------ */

static void api_user(struct site_req *r)
{
    struct store_user u;
    if (!find_user(r, &u))
        return;
    int64_t karma, links, comments;
    char *about;
    if (store_user_profile(store_of(r), u.id, &karma, &links, &comments, &about) != STORE_OK) {
        fail_store(r);
        return;
    }
    char created[32];
    site_rfc3339(u.created_ms, created);
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "{\"username\":");
    json_write_str(&b, u.name, strlen(u.name));
    buf_printf(&b, ",\"created\":\"%s\",\"karma\":%" PRId64 ",\"about\":", created, karma);
    json_write_str(&b, about, strlen(about));
    buf_printf(&b, ",\"links\":%" PRId64 ",\"comments\":%" PRId64 "}\n", links, comments);
    free(about);
    site_reply(r, 200, "application/json", NULL, &b);
}

static void api_user_links(struct site_req *r)
{
    struct store_user u;
    if (!find_user(r, &u))
        return;
    struct store_link *page = malloc(r->limit * sizeof *page);
    size_t n = 0;
    if (!page || store_links_by_user(store_of(r), u.id, r->limit, r->offset, page, &n) != STORE_OK) {
        free(page);
        fail_store(r);
        return;
    }
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "{\"links\":[");
    for (size_t i = 0; i < n; i++) {
        char *text = NULL;
        if (page[i].has_text && store_link_text(store_of(r), page[i].id, &text) != 1)
            text = NULL;
        if (i)
            buf_puts(&b, ",");
        site_link_json(&b, &page[i], text);
        free(text);
    }
    buf_puts(&b, "]}\n");
    free(page);
    site_reply(r, 200, "application/json", NULL, &b);
}

static void api_user_comments(struct site_req *r)
{
    struct store_user u;
    if (!find_user(r, &u))
        return;
    struct store_comment *c;
    size_t n;
    if (store_comments_by_user(store_of(r), u.id, r->limit, r->offset, &c, &n) != STORE_OK) {
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

/* ---- About ----------------------------------------------------------------------------- */

/* The common outcome of a settings write (about, password): false once
 * answered — an error, or the settings page again for a form. */
static bool settings_written(struct site_req *r, int status, uint64_t index, const struct store_result *res)
{
    if (status) {
        site_fail_host(r, status);
        return false;
    }
    site_wrote(r, index);
    if (res->status == CMD_ERR_DENIED) {
        login_needed(r);
        return false;
    }
    if (res->status != CMD_OK) {
        site_fail(r, 400, "invalid", "the change was refused as malformed");
        return false;
    }
    if (!r->api) {
        site_redirect(r, "/settings");
        return false;
    }
    return true;
}

static void about_done(void *arg, int status, uint64_t index, const struct store_result *res)
{
    struct site_req *r = arg;
    if (!settings_written(r, status, index, res))
        return;
    snprintf(r->name, sizeof r->name, "%.*s", (int)(sizeof r->name - 1), r->user.name);
    api_user(r);
}

/* r->text (NULL: empty) becomes the user's about. */
static void about_begin(struct site_req *r)
{
    if (!r->logged_in) {
        login_needed(r);
        return;
    }
    struct command c = { .type = CMD_ABOUT_SET,
                         .session = { (const char *)r->token_hash, COMMAND_HASH_LEN },
                         .text = { r->text, (uint16_t)r->text_len },
                         .idem_key = { r->idem, (uint16_t)r->idem_len } };
    c.scope = site_scope(r, r->user.lname);
    site_propose(r, &c, about_done);
}

/* Checks raw about text into r->text (empty allowed); false after answering. */
static bool about_text(struct site_req *r, const char *raw, size_t len)
{
    if (!(r->text = malloc(len + 1))) {
        site_fail(r, 503, "unavailable", "out of memory");
        return false;
    }
    const char *err = site_text_check(raw, len, SITE_ABOUT_MAX_CHARS, true, r->text, len + 1, &r->text_len);
    if (err)
        site_fail(r, 400, "invalid", err);
    return !err;
}

static void api_me_patch(struct site_req *r)
{
    if (!r->logged_in) {
        login_needed(r);
        return;
    }
    struct json_doc doc;
    if (!site_json_body(r, &doc))
        return;
    size_t len = 0;
    const char *about = json_get_str(doc.root, "about", &len);
    if (!about) {
        json_free(&doc);
        site_fail(r, 400, "bad_json", "send {\"about\": \"...\"}");
        return;
    }
    bool ok = about_text(r, about, len);
    json_free(&doc);
    if (ok)
        about_begin(r);
}

/* ---- Password ---------------------------------------------------------------------------- */

static void password_done(void *arg, int status, uint64_t index, const struct store_result *res)
{
    struct site_req *r = arg;
    if (!settings_written(r, status, index, res))
        return;
    site_reply(r, 204, "application/json", NULL, NULL);
}

static void password_hashed(struct site_req *r)
{
    if (r->work_rc) {
        site_fail(r, 503, "unavailable", "cannot hash the password now (out of memory?): try again");
        return;
    }
    struct command c = { .type = CMD_PASSWORD_SET,
                         .session = { (const char *)r->token_hash, COMMAND_HASH_LEN },
                         .pwhash = { r->pwhash, (uint16_t)strlen(r->pwhash) } };
    site_propose(r, &c, password_done);
}

/* The wrong-password counter's key: the account and the client address, as
 * for logins (api.c), so nobody can lock another user out. */
static void password_throttle_key(struct site_req *r, char *out, size_t cap)
{
    char addr[64];
    site_throttle_addr(r->req, addr, sizeof addr);
    snprintf(out, cap, "%s %s", r->user.lname, addr);
}

static void password_verified(struct site_req *r)
{
    if (r->work_rc != 0 || r->bad_password) {
        char key[sizeof r->user.lname + 2 + 64];
        password_throttle_key(r, key, sizeof key);
        site_throttle_check(&r->s->by_user_addr, key, now_of(r), true);
        site_fail(r, 403, "wrong_password", "the current password is wrong");
        return;
    }
    memcpy(r->password, r->new_password, r->new_password_len);
    r->password_len = r->new_password_len;
    sodium_memzero(r->new_password, sizeof r->new_password);
    r->verifying = false;
    site_pwhash(r, password_hashed);
}

/* r->password (old) and r->new_password are filled. */
static void password_begin(struct site_req *r)
{
    if (!r->logged_in) {
        login_needed(r);
        return;
    }
    const char *err = site_check_password(r->new_password, r->new_password_len);
    if (err) {
        site_fail(r, 400, "invalid", err);
        return;
    }
    char key[sizeof r->user.lname + 2 + 64];
    password_throttle_key(r, key, sizeof key);
    unsigned wait = site_throttle_check(&r->s->by_user_addr, key, now_of(r), false);
    if (wait) {
        char h[64];
        snprintf(h, sizeof h, "Retry-After: %u\r\n", wait);
        buf_puts(&r->hdrs, h);
        site_fail(r, 429, "too_many_attempts", "too many wrong passwords: try again later");
        return;
    }
    snprintf(r->pwhash, sizeof r->pwhash, "%s", r->user.pwhash);
    r->verifying = true;
    site_pwhash(r, password_verified);
}

/* Copies a password (len bytes) into dst (SITE_PASSWORD_MAX + 1); a longer
 * one is cut and flagged, so that it fails as it should. */
static size_t take_password(char *dst, const char *src, size_t len, bool *too_long)
{
    *too_long = len > SITE_PASSWORD_MAX;
    size_t n = *too_long ? SITE_PASSWORD_MAX : len;
    memcpy(dst, src, n);
    return n;
}

static void api_password(struct site_req *r)
{
    if (!r->logged_in) {
        login_needed(r);
        return;
    }
    struct json_doc doc;
    if (!site_json_body(r, &doc))
        return;
    size_t olen = 0, nlen = 0;
    const char *o = json_get_str(doc.root, "old", &olen), *n = json_get_str(doc.root, "new", &nlen);
    if (!o || !n) {
        json_free(&doc);
        site_fail(r, 400, "bad_json", "send {\"old\": \"...\", \"new\": \"...\"}");
        return;
    }
    bool new_too_long;
    r->password_len = take_password(r->password, o, olen, &r->bad_password);
    r->new_password_len = take_password(r->new_password, n, nlen, &new_too_long);
    json_free(&doc);
    if (new_too_long) {
        site_fail(r, 400, "invalid", "a password is at most 128 bytes");
        return;
    }
    password_begin(r);
}

/* ---- Pages ---------------------------------------------------------------------------------- */

void site_user_profile_html(struct buf *b, struct site_req *r, const struct store_user *u)
{
    int64_t karma, links, comments;
    char *about;
    if (store_user_profile(store_of(r), u->id, &karma, &links, &comments, &about) != STORE_OK)
        return;
    buf_printf(b, "<p class=\"meta\">karma %" PRId64 " · <a href=\"/user/", karma);
    esc(b, u->name);
    buf_printf(b, "/comments\">%" PRId64 " comment%s</a></p>", comments, comments == 1 ? "" : "s");
    if (about[0]) {
        buf_puts(b, "<div class=\"ct\">");
        site_text_render(b, about, strlen(about));
        buf_puts(b, "</div>");
    }
    free(about);
}

static void page_user_comments(struct site_req *r)
{
    struct store_user u;
    if (!find_user(r, &u))
        return;
    struct store_comment *c;
    size_t n;
    unsigned per = SITE_PAGE_LINKS;
    if (store_comments_by_user(store_of(r), u.id, per + 1, (r->page - 1) * per, &c, &n) != STORE_OK) {
        site_page_error(r, 500, "The comments cannot be read now.");
        return;
    }
    char title[64];
    snprintf(title, sizeof title, "Comments by %s", u.name);
    struct buf b;
    buf_init(&b);
    site_page_begin(&b, r, title);
    buf_puts(&b, "<h1>Comments by <a href=\"/user/");
    esc(&b, u.name);
    buf_puts(&b, "\">");
    esc(&b, u.name);
    buf_puts(&b, "</a></h1>");
    if (!n)
        buf_puts(&b, "<p>No comments.</p>");
    buf_puts(&b, "<ul class=\"cs\">");
    for (size_t i = 0; i < n && i < per; i++) {
        char ago[48], when[32];
        site_relative_time(c[i].created_ms, now_of(r), ago, sizeof ago);
        site_rfc3339(c[i].created_ms, when);
        buf_printf(&b, "<li><div class=\"cm\"><time datetime=\"%s\">%s</time> · %" PRId64 " like%s · "
                       "<a href=\"/link/%" PRId64 "#c%" PRId64 "\">in context</a></div><div class=\"ct\">",
                   when, ago, c[i].likes, c[i].likes == 1 ? "" : "s", c[i].link_id, c[i].id);
        site_text_render(&b, c[i].text, strlen(c[i].text));
        buf_puts(&b, "</div></li>");
    }
    buf_puts(&b, "</ul>");
    if (n > per) {
        buf_puts(&b, "<p><a href=\"/user/");
        esc(&b, u.name);
        buf_printf(&b, "/comments?p=%u\" rel=\"next\">More</a></p>", r->page + 1);
    }
    store_comments_free(c, n);
    site_page_end(&b, r);
    site_page_send(r, 200, &b);
}

static void page_settings(struct site_req *r)
{
    if (!r->logged_in) {
        site_redirect(r, "/login?next=/settings");
        return;
    }
    int64_t karma, links, comments;
    char *about;
    if (store_user_profile(store_of(r), r->user.id, &karma, &links, &comments, &about) != STORE_OK) {
        site_page_error(r, 500, "The settings cannot be read now.");
        return;
    }
    struct buf b;
    buf_init(&b);
    site_page_begin(&b, r, "Settings");
    buf_puts(&b, "<h1>Settings</h1><h2>About you</h2><form class=\"box\" method=\"post\" action=\"/settings/about\">");
    site_csrf_field(&b, r);
    buf_puts(&b, "<label for=\"about\">About</label><textarea id=\"about\" name=\"about\" rows=\"5\">");
    esc(&b, about);
    buf_puts(&b, "</textarea><button>Save</button></form><h2>Password</h2>"
                 "<form class=\"box\" method=\"post\" action=\"/settings/password\">");
    site_csrf_field(&b, r);
    buf_puts(&b, "<label for=\"old\">Current password</label><input id=\"old\" name=\"old\" type=\"password\" required "
                 "autocomplete=\"current-password\" maxlength=\"128\"><label for=\"new\">New password</label>"
                 "<input id=\"new\" name=\"new\" type=\"password\" required minlength=\"8\" maxlength=\"128\" "
                 "autocomplete=\"new-password\"><button>Change password</button>"
                 "<p class=\"meta\">Every other session of yours ends.</p></form>");
    free(about);
    site_page_end(&b, r);
    site_page_send(r, 200, &b);
}

static void page_about_post(struct site_req *r)
{
    if (!site_form_ok(r))
        return;
    if (!r->logged_in) {
        login_needed(r);
        return;
    }
    char *raw = malloc(r->req->body_len + 1);
    long n = raw ? site_form_field(r->req->body, r->req->body_len, "about", raw, r->req->body_len + 1) : -2;
    bool ok = n >= -1 && about_text(r, raw ? raw : "", n > 0 ? (size_t)n : 0);
    if (n < -1)
        site_page_error(r, 400, "The form is malformed.");
    free(raw);
    if (ok)
        about_begin(r);
}

static void page_password_post(struct site_req *r)
{
    if (!site_form_ok(r))
        return;
    if (!r->logged_in) {
        login_needed(r);
        return;
    }
    char o[SITE_PASSWORD_MAX + 2], n[SITE_PASSWORD_MAX + 2];
    long ol = site_form_field(r->req->body, r->req->body_len, "old", o, sizeof o);
    long nl = site_form_field(r->req->body, r->req->body_len, "new", n, sizeof n);
    if (nl < 0) {
        site_page_error(r, 400, nl == -2 ? "A password is at most 128 bytes." : "Give the new password.");
        return;
    }
    bool unused;
    r->bad_password = ol < 0;
    r->password_len = take_password(r->password, o, ol > 0 ? (size_t)ol : 0, &unused);
    r->new_password_len = take_password(r->new_password, n, (size_t)nl, &unused);
    sodium_memzero(o, sizeof o);
    sodium_memzero(n, sizeof n);
    password_begin(r);
}

/* ---- Routes ------------------------------------------------------------------------------------ */

static bool is(struct site_req *r, const char *m) { return !strcmp(r->req->method, m); }

bool site_users_api_route(struct site_req *r, const char *p, bool *answered)
{
    *answered = true;
    if (!strcmp(p, "/me")) { /* PATCH; GET is api.c's */
        r->step = api_me_patch;
    } else if (!strcmp(p, "/me/password")) {
        if (!is(r, "POST"))
            return site_fail_method(r, "POST"), true;
        r->step = api_password;
    } else { /* "/users/NAME[/links|/comments]" */
        const char *name = p + 7, *slash = strchr(name, '/');
        size_t len = slash ? (size_t)(slash - name) : strlen(name);
        if (len == 0 || len > SITE_NAME_MAX || (slash && strcmp(slash, "/links") && strcmp(slash, "/comments"))) {
            site_fail(r, 404, "not_found", "no such path");
            return true;
        }
        if (!r->head_or_get)
            return site_fail_method(r, "GET, HEAD"), true;
        snprintf(r->name, sizeof r->name, "%.*s", (int)len, name);
        if (slash && !site_list_params(r))
            return true;
        r->step = !slash ? api_user : !strcmp(slash, "/links") ? api_user_links : api_user_comments;
    }
    *answered = false;
    return true;
}

bool site_users_page_route(struct site_req *r, const char *path, bool *answered)
{
    *answered = false;
    if (!strcmp(path, "/settings"))
        return site_route(r, page_settings, NULL, answered);
    if (!strcmp(path, "/settings/about"))
        return site_route(r, NULL, page_about_post, answered);
    if (!strcmp(path, "/settings/password"))
        return site_route(r, NULL, page_password_post, answered);
    if (!strncmp(path, "/user/", 6)) {
        const char *name = path + 6, *slash = strchr(name, '/');
        if (slash && !strcmp(slash, "/comments") && (size_t)(slash - name) <= SITE_NAME_MAX && slash > name) {
            snprintf(r->name, sizeof r->name, "%.*s", (int)(slash - name), name);
            return site_route(r, page_user_comments, NULL, answered);
        }
    }
    return false;
}
