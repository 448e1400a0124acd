/*
 * api.c — the JSON API of SPEC §4 under /api/v1, and the write flows it
 * shares with the HTML forms (pages.c): sign-up, login, logout, posting a
 * link, liking. A flow ends in JSON when the request came to the API and
 * in a redirect (or the form again, with the error) when it came from a
 * page.
 *
 *   sign-up: validate -> throttle -> name free here? -> argon2id on a worker
 *            -> propose SIGNUP (creates the user and the first session)
 *   login:   validate -> throttle -> look up the user -> verify on a worker
 *            (against a dummy hash if there is no such user) -> propose
 *            SESSION_CREATE
 *   writes:  live session here? -> propose; the state machine checks the
 *            session again at apply (a logout may have come first)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "site/internal.h"

/* The link object of SPEC §4 from its fields (strings NUL-terminated;
 * url "" for a text post, text NULL for none, edited_ms 0 for never). */
static void link_json(struct buf *b, int64_t id, const char *title, size_t title_len, const char *url,
                      const char *domain, const char *text, const char *author, uint64_t created_ms, int64_t likes,
                      int64_t comments, uint64_t edited_ms)
{
    char created[32];
    site_rfc3339(created_ms, created);
    buf_printf(b, "{\"id\":%" PRId64 ",\"title\":", id);
    json_write_str(b, title, title_len);
    buf_puts(b, ",\"url\":");
    if (url[0]) /* a text post has none */
        json_write_str(b, url, strlen(url));
    else
        buf_puts(b, "null");
    buf_puts(b, ",\"domain\":");
    if (url[0])
        json_write_str(b, domain, strlen(domain));
    else
        buf_puts(b, "null");
    buf_puts(b, ",\"text\":");
    if (text)
        json_write_str(b, text, strlen(text));
    else
        buf_puts(b, "null");
    buf_puts(b, ",\"author\":");
    json_write_str(b, author, strlen(author));
    buf_printf(b, ",\"created\":\"%s\",\"likes\":%" PRId64 ",\"comments\":%" PRId64 ",\"edited\":", created, likes,
               comments);
    if (edited_ms) {
        char edited[32];
        site_rfc3339(edited_ms, edited);
        buf_printf(b, "\"%s\"}", edited);
    } else {
        buf_puts(b, "null}");
    }
}

void site_link_json(struct buf *b, const struct store_link *l, const char *text)
{
    char domain[SITE_DOMAIN_CAP];
    site_url_domain(l->url, domain, sizeof domain);
    link_json(b, l->id, l->title, strlen(l->title), l->url, domain, text, l->author, l->created_ms, l->likes,
              l->comments, l->edited_ms);
}

/* The link's text (malloc'd) if it has one; NULL otherwise or on failure. */
static char *text_of(struct store *st, const struct store_link *l)
{
    char *text = NULL;
    if (l->has_text && store_link_text(st, l->id, &text) != 1)
        text = NULL;
    return text;
}

static struct store *store_of(struct site_req *r) { return r->s->host.store(r->s->host.ctx); }
static uint64_t now_of(struct site_req *r) { return r->s->host.now_ms(r->s->host.ctx); }

static void reply_json(struct site_req *r, int status, struct buf *b)
{
    site_reply(r, status, "application/json", NULL, b);
}

static void fail_store(struct site_req *r)
{
    site_fail(r, 500, "internal", store_errmsg(store_of(r)));
}

/* Answers with link `id` as a JSON object (status, extra headers), or with
 * missing_status/code/msg when the local store does not have it. */
static void reply_link(struct site_req *r, int64_t id, int status, const char *headers, int missing_status,
                       const char *missing_code, const char *missing_msg)
{
    struct store_link *l = malloc(sizeof *l); /* about 7 KB: not on the stack */
    int found = l ? store_link_get(store_of(r), id, l) : STORE_ENOMEM;
    if (found != 1) {
        free(l);
        if (found < 0)
            fail_store(r);
        else
            site_fail(r, missing_status, missing_code, missing_msg);
        return;
    }
    struct buf b;
    buf_init(&b);
    char *text = text_of(store_of(r), l);
    site_link_json(&b, l, text);
    free(text);
    buf_puts(&b, "\n");
    free(l);
    site_reply(r, status, "application/json", headers, &b);
}

static void fail_login_needed(struct site_req *r)
{
    if (!r->api) {
        site_redirect(r, "/login");
        return;
    }
    site_fail(r, 401, "login_required",
              r->has_token ? "the session has ended (logged out or expired): log in again" : "log in first");
}

/* ---- Sign-up and login ------------------------------------------------------- */

static void answer_session(struct site_req *r, int status, uint64_t index, const char *username)
{
    site_wrote(r, index);
    site_session_cookie(r, false);
    if (!r->api) {
        site_flash_set(r, status == 201 ? SITE_FLASH_SIGNUP : SITE_FLASH_LOGIN);
        site_redirect(r, r->next[0] ? r->next : "/");
        return;
    }
    char hex[SITE_TOKEN_HEX + 1];
    site_hex(r->new_token, sizeof r->new_token, hex);
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "{\"username\":");
    json_write_str(&b, username, strlen(username));
    buf_printf(&b, ",\"token\":\"%s\"}\n", hex);
    sodium_memzero(hex, sizeof hex);
    reply_json(r, status, &b);
}

static void login_done(void *arg, int status, uint64_t index, const struct store_result *res)
{
    struct site_req *r = arg;
    if (status) {
        site_fail_host(r, status);
        return;
    }
    if (res->status != CMD_OK) {
        site_fail(r, 401, "bad_credentials", "wrong username or password");
        return;
    }
    answer_session(r, r->ok_status, index, res->text);
}

/* The failed-login counter's key: the account (lowercase) and the client
 * address. Per account alone, anyone could lock its owner out. */
static void user_addr_key(struct site_req *r, const char *addr, char *out, size_t cap)
{
    char lname[SITE_NAME_MAX + 1];
    size_t n = strnlen(r->username, SITE_NAME_MAX);
    for (size_t i = 0; i < n; i++)
        lname[i] = (char)(r->username[i] >= 'A' && r->username[i] <= 'Z' ? r->username[i] + 32 : r->username[i]);
    lname[n] = 0;
    snprintf(out, cap, "%s %s", lname, addr);
}

static void login_verified(struct site_req *r)
{
    char addr[64];
    site_throttle_addr(r->req, addr, sizeof addr);
    char key[SITE_NAME_MAX + 2 + sizeof addr];
    user_addr_key(r, addr, key, sizeof key);
    if (!r->user_known || r->work_rc != 0 || r->bad_password) {
        site_throttle_check(&r->s->by_user_addr, key, now_of(r), true);
        site_fail(r, 401, "bad_credentials", "wrong username or password");
        return;
    }
    site_throttle_forget(&r->s->by_user_addr, key);
    uint8_t hash[COMMAND_HASH_LEN];
    site_new_token(r, hash);
    /* No idempotency key: a repeated login just makes another session, and
     * a replayed result could not hand back this request's new token. */
    struct command c = { .type = CMD_SESSION_CREATE,
                         .lname = { r->user.lname, (uint16_t)strlen(r->user.lname) },
                         .session = { (const char *)hash, COMMAND_HASH_LEN } };
    site_propose(r, &c, login_done);
}

/* Looks the user up and verifies the password on a worker. */
static void login_verify(struct site_req *r)
{
    int found = site_check_username(r->username, strlen(r->username)) ? 0
              : store_user_by_name(store_of(r), r->username, strlen(r->username), &r->user);
    if (found < 0) {
        fail_store(r);
        return;
    }
    r->user_known = found == 1;
    snprintf(r->pwhash, sizeof r->pwhash, "%s", r->user_known ? r->user.pwhash : r->s->dummy_hash);
    r->verifying = true;
    site_pwhash(r, login_verified);
}

static bool throttled(struct site_req *r, bool by_user)
{
    char addr[64];
    site_throttle_addr(r->req, addr, sizeof addr);
    unsigned wait = site_throttle_check(&r->s->by_addr, addr, now_of(r), true);
    if (!wait && by_user) {
        char key[SITE_NAME_MAX + 2 + sizeof addr];
        user_addr_key(r, addr, key, sizeof key);
        wait = site_throttle_check(&r->s->by_user_addr, key, now_of(r), false);
    }
    if (!wait)
        return false;
    r->s->stats.throttled++;
    char h[64], msg[160];
    snprintf(h, sizeof h, "Retry-After: %u\r\n", wait);
    snprintf(msg, sizeof msg, "too many attempts: try again in %u seconds", wait);
    if (!r->api) {
        buf_puts(&r->hdrs, h);
        site_page_error(r, 429, msg);
        return true;
    }
    struct buf b;
    buf_init(&b);
    json_write_error(&b, "too_many_attempts", msg, NULL);
    site_reply(r, 429, "application/json", h, &b);
    return true;
}

void site_login_begin(struct site_req *r)
{
    if (throttled(r, true))
        return;
    r->ok_status = 200;
    login_verify(r);
}

static void signup_done(void *arg, int status, uint64_t index, const struct store_result *res)
{
    struct site_req *r = arg;
    if (status) {
        site_fail_host(r, status);
        return;
    }
    if (res->status == CMD_ERR_CONFLICT) {
        r->bad_field = "username";
        site_fail(r, 409, "name_taken", "that username is taken (names are case-insensitive)");
        return;
    }
    if (res->status != CMD_OK) {
        site_fail(r, 400, "bad_request", "the sign-up was refused as malformed");
        return;
    }
    if (res->replayed) {
        /* A retry of a sign-up that already happened (same Idempotency-Key):
         * the account exists, but this request's token is not in the log.
         * Prove the password and open a session, as a login would. */
        r->ok_status = 201;
        login_verify(r);
        return;
    }
    answer_session(r, 201, index, res->text);
}

static void signup_hashed(struct site_req *r)
{
    if (r->work_rc) {
        site_fail(r, 503, "unavailable", "cannot hash the password now (out of memory?): try again");
        return;
    }
    char lname[SITE_NAME_MAX + 1];
    size_t n = strlen(r->username);
    for (size_t i = 0; i <= n; i++)
        lname[i] = (char)(r->username[i] >= 'A' && r->username[i] <= 'Z' ? r->username[i] + 32 : r->username[i]);
    uint8_t hash[COMMAND_HASH_LEN];
    site_new_token(r, hash);
    struct command c = { .type = CMD_SIGNUP,
                         .name = { r->username, (uint16_t)n },
                         .lname = { lname, (uint16_t)n },
                         .pwhash = { r->pwhash, (uint16_t)strlen(r->pwhash) },
                         .session = { (const char *)hash, COMMAND_HASH_LEN },
                         .idem_key = { r->idem, (uint16_t)r->idem_len } };
    c.scope = site_scope(r, lname);
    site_propose(r, &c, signup_done);
}

void site_signup_begin(struct site_req *r)
{
    const char *err = site_check_username(r->username, strlen(r->username));
    r->bad_field = "username";
    if (!err) {
        err = site_check_password(r->password, r->password_len);
        r->bad_field = "password";
    }
    if (err) {
        site_fail(r, 400, "invalid", err);
        return;
    }
    if (throttled(r, false))
        return;
    struct store_user u;
    int found = store_user_by_name(store_of(r), r->username, strlen(r->username), &u);
    if (found < 0) {
        fail_store(r);
        return;
    }
    /* Taken here (the local copy) means taken: names are never freed. A
     * retry with the key of a sign-up that succeeded goes on, to be
     * answered from the log's first result. */
    if (found && !r->idem_len) {
        r->bad_field = "username";
        site_fail(r, 409, "name_taken", "that username is taken (names are case-insensitive)");
        return;
    }
    r->verifying = false;
    site_pwhash(r, signup_hashed);
}

static void logout_done(void *arg, int status, uint64_t index, const struct store_result *res)
{
    struct site_req *r = arg;
    (void)res;
    if (status) {
        site_fail_host(r, status);
        return;
    }
    site_wrote(r, index);
    site_session_cookie(r, true);
    if (!r->api) {
        site_flash_set(r, SITE_FLASH_LOGOUT);
        site_redirect(r, "/");
        return;
    }
    site_reply(r, 204, "application/json", NULL, NULL);
}

void site_logout_begin(struct site_req *r)
{
    if (!r->has_token) {
        fail_login_needed(r);
        return;
    }
    struct command c = { .type = CMD_SESSION_DELETE, .session = { (const char *)r->token_hash, COMMAND_HASH_LEN } };
    site_propose(r, &c, logout_done);
}

/* ---- Links and likes ------------------------------------------------------------- */

static void reply_duplicate(struct site_req *r, int64_t id)
{
    if (!r->api) {
        char path[40];
        snprintf(path, sizeof path, "/link/%" PRId64, id);
        site_flash_set(r, SITE_FLASH_DUPLICATE);
        site_redirect(r, path); /* as Hacker News does: show the existing one */
        return;
    }
    struct buf b;
    buf_init(&b);
    buf_printf(&b, "{\"error\":\"duplicate\",\"id\":%" PRId64 ",\"message\":\"this URL was already posted\"}\n", id);
    reply_json(r, 409, &b);
}

static void post_done(void *arg, int status, uint64_t index, const struct store_result *res)
{
    struct site_req *r = arg;
    if (status) {
        site_fail_host(r, status);
        return;
    }
    site_wrote(r, index);
    switch (res->status) {
    case CMD_OK: break;
    case CMD_ERR_CONFLICT: reply_duplicate(r, res->id); return;
    case CMD_ERR_DENIED: fail_login_needed(r); return;
    case CMD_ERR_RATE_LIMITED: site_fail_rate_limited(r, res->count, false); return;
    default: site_fail(r, 400, "invalid", "the link was refused as malformed"); return;
    }
    char path[40];
    snprintf(path, sizeof path, "/link/%" PRId64, res->id);
    if (!r->api) {
        site_flash_set(r, SITE_FLASH_POSTED);
        site_redirect(r, path);
        return;
    }
    char h[80];
    snprintf(h, sizeof h, "Location: /api/v1/links/%" PRId64 "\r\n", res->id);
    if (res->replayed) { /* an earlier request's link: as it is now */
        reply_link(r, res->id, 201, h, 500, "internal", "the new link is not in the local store");
        return;
    }
    /* The new row is what was proposed, with the id, author and log time
     * the apply gave it: answered from those, not read back. */
    struct site_link_input *in = r->link_in;
    struct buf b;
    buf_init(&b);
    bool has_url = in->url_in[0] != 0;
    /* url.domain is what site_url_domain finds again in url.url (the URL
     * the parse ended on, as stored): no second parse. */
    link_json(&b, res->id, in->title + in->start, in->len, has_url ? in->url.url : "", has_url ? in->url.domain : "",
              r->text, res->text, res->time_ms, 0, 0, 0);
    buf_puts(&b, "\n");
    site_reply(r, 201, "application/json", h, &b);
}

void site_post_begin(struct site_req *r)
{
    if (!r->logged_in) {
        fail_login_needed(r);
        return;
    }
    size_t start, len;
    bool has_url = r->link_in->url_in[0] != 0;
    const char *err = site_check_title(r->link_in->title, r->link_in->title_len, &start, &len);
    r->bad_field = "title";
    if (!err) {
        r->bad_field = "url";
        if (has_url)
            err = site_parse_url(r->link_in->url_in, strlen(r->link_in->url_in), &r->link_in->url);
        else if (!r->text)
            err = "Give a URL, a text, or both.";
    }
    if (err) {
        site_fail(r, 400, "invalid", err);
        return;
    }
    r->link_in->start = start;
    r->link_in->len = len;
    if (r->text || !has_url) { /* a text post, or a link with text */
        struct command c = { .type = CMD_LINK_POST_TEXT,
                             .session = { (const char *)r->token_hash, COMMAND_HASH_LEN },
                             .title = { r->link_in->title + start, (uint16_t)len },
                             .url = { r->link_in->url.url, (uint16_t)(has_url ? strlen(r->link_in->url.url) : 0) },
                             .url_norm = { r->link_in->url.norm, (uint16_t)(has_url ? strlen(r->link_in->url.norm) : 0) },
                             .text = { r->text, (uint16_t)r->text_len },
                             .idem_key = { r->idem, (uint16_t)r->idem_len } };
        c.scope = site_scope(r, r->user.lname);
        if (has_url) {
            int64_t existing;
            int found = store_link_by_url(store_of(r), r->link_in->url.norm, strlen(r->link_in->url.norm), &existing);
            if (found < 0) {
                fail_store(r);
                return;
            }
            if (found && !r->idem_len) {
                reply_duplicate(r, existing);
                return;
            }
        }
        site_propose(r, &c, post_done);
        return;
    }
    int64_t existing;
    int found = store_link_by_url(store_of(r), r->link_in->url.norm, strlen(r->link_in->url.norm), &existing);
    if (found < 0) {
        fail_store(r);
        return;
    }
    if (found && !r->idem_len) {
        reply_duplicate(r, existing);
        return;
    }
    struct command c = { .type = CMD_LINK_POST,
                         .session = { (const char *)r->token_hash, COMMAND_HASH_LEN },
                         .title = { r->link_in->title + start, (uint16_t)len },
                         .url = { r->link_in->url.url, (uint16_t)strlen(r->link_in->url.url) },
                         .url_norm = { r->link_in->url.norm, (uint16_t)strlen(r->link_in->url.norm) },
                         .idem_key = { r->idem, (uint16_t)r->idem_len } };
    c.scope = site_scope(r, r->user.lname);
    site_propose(r, &c, post_done);
}

/* The end of an edit (edit = true) or a delete of link r->id. */
static void link_change_done(struct site_req *r, bool edit, int status, uint64_t index, const struct store_result *res)
{
    if (status) {
        site_fail_host(r, status);
        return;
    }
    site_wrote(r, index);
    switch (res->status) {
    case CMD_OK: break;
    case CMD_ERR_DENIED: fail_login_needed(r); return;
    case CMD_ERR_NOT_FOUND: site_fail(r, 404, "not_found", "no such link"); return;
    case CMD_ERR_FORBIDDEN:
        site_fail(r, 403, "forbidden", "only its author may change a link, and edit it only within 2 hours of posting");
        return;
    default: site_fail(r, 400, "invalid", "the change was refused as malformed"); return;
    }
    char path[40];
    snprintf(path, sizeof path, "/link/%" PRId64, r->id);
    if (!r->api) {
        if (!edit)
            site_flash_set(r, SITE_FLASH_DELETED);
        site_redirect(r, edit ? path : "/");
    }
    else if (edit)
        reply_link(r, r->id, 200, NULL, 404, "not_found", "no such link");
    else
        site_reply(r, 204, "application/json", NULL, NULL);
}

static void edit_done(void *arg, int status, uint64_t index, const struct store_result *res)
{
    link_change_done(arg, true, status, index, res);
}

static void delete_done(void *arg, int status, uint64_t index, const struct store_result *res)
{
    link_change_done(arg, false, status, index, res);
}

void site_link_edit_begin(struct site_req *r)
{
    if (!r->logged_in) {
        fail_login_needed(r);
        return;
    }
    size_t start = 0, len = 0;
    if (r->link_in && r->link_in->title_len) {
        const char *err = site_check_title(r->link_in->title, r->link_in->title_len, &start, &len);
        if (err) {
            site_fail(r, 400, "invalid", err);
            return;
        }
    }
    if (!len && !r->text) {
        site_fail(r, 400, "invalid", "Change the title, the text, or both.");
        return;
    }
    struct command c = { .type = CMD_LINK_EDIT,
                         .session = { (const char *)r->token_hash, COMMAND_HASH_LEN },
                         .title = { len ? r->link_in->title + start : NULL, (uint16_t)len },
                         .text = { r->text, (uint16_t)r->text_len },
                         .link_id = r->id,
                         .idem_key = { r->idem, (uint16_t)r->idem_len } };
    c.scope = site_scope(r, r->user.lname);
    site_propose(r, &c, edit_done);
}

void site_link_delete_begin(struct site_req *r)
{
    if (!r->logged_in) {
        fail_login_needed(r);
        return;
    }
    if (site_mod_delete(r, false))
        return;
    struct command c = { .type = CMD_LINK_DELETE,
                         .session = { (const char *)r->token_hash, COMMAND_HASH_LEN },
                         .link_id = r->id,
                         .idem_key = { r->idem, (uint16_t)r->idem_len } };
    c.scope = site_scope(r, r->user.lname);
    site_propose(r, &c, delete_done);
}

static void like_done(void *arg, int status, uint64_t index, const struct store_result *res)
{
    struct site_req *r = arg;
    if (status) {
        site_fail_host(r, status);
        return;
    }
    site_wrote(r, index);
    if (res->status == CMD_ERR_NOT_FOUND) {
        site_fail(r, 404, "not_found", "no such link");
        return;
    }
    if (res->status == CMD_ERR_DENIED) {
        fail_login_needed(r);
        return;
    }
    if (res->status != CMD_OK) {
        site_fail(r, 400, "invalid", "the like was refused as malformed");
        return;
    }
    if (!r->api) {
        /* Back to where the like was pressed, scrolled to the link's row
         * (pages.c gives each row the id lID). */
        char path[sizeof r->next + 32];
        if (r->next[0])
            snprintf(path, sizeof path, "%.*s#l%" PRId64, (int)strcspn(r->next, "#"), r->next, r->id);
        else
            snprintf(path, sizeof path, "/link/%" PRId64, r->id);
        site_redirect(r, path);
        return;
    }
    struct buf b;
    buf_init(&b);
    buf_printf(&b, "{\"id\":%" PRId64 ",\"likes\":%" PRId64 ",\"liked\":%s}\n", res->id, res->count,
               res->flag ? "true" : "false");
    reply_json(r, 200, &b);
}

void site_like_begin(struct site_req *r)
{
    if (!r->logged_in) {
        fail_login_needed(r);
        return;
    }
    struct command c = { .type = r->like_on ? CMD_LIKE : CMD_UNLIKE,
                         .session = { (const char *)r->token_hash, COMMAND_HASH_LEN },
                         .link_id = r->id,
                         .idem_key = { r->idem, (uint16_t)r->idem_len } };
    c.scope = site_scope(r, r->user.lname);
    site_propose(r, &c, like_done);
}

/* ---- The API's routes -------------------------------------------------------------- */

/* {"username","password"} into r. */
static bool parse_credentials(struct site_req *r)
{
    struct json_doc doc;
    if (!site_json_body(r, &doc))
        return false;
    size_t ulen = 0, plen = 0;
    const char *u = json_get_str(doc.root, "username", &ulen), *p = json_get_str(doc.root, "password", &plen);
    if (!u || !p) {
        json_free(&doc);
        site_fail(r, 400, "bad_json", "send {\"username\": \"...\", \"password\": \"...\"}");
        return false;
    }
    /* Over-long values cannot be valid; keep a prefix that still fails. */
    snprintf(r->username, sizeof r->username, "%.*s", (int)(ulen < sizeof r->username ? ulen : sizeof r->username - 1), u);
    if (ulen >= sizeof r->username || strlen(r->username) != ulen)
        r->username[0] = '!'; /* NUL inside or too long: invalid either way */
    r->password_len = plen <= SITE_PASSWORD_MAX ? plen : SITE_PASSWORD_MAX + 1;
    memcpy(r->password, p, plen <= SITE_PASSWORD_MAX ? plen : SITE_PASSWORD_MAX);
    json_free(&doc);
    return true;
}

static void api_signup(struct site_req *r)
{
    if (parse_credentials(r)) {
        if (r->password_len > SITE_PASSWORD_MAX) {
            site_fail(r, 400, "invalid", "a password is at most 128 bytes");
            return;
        }
        site_signup_begin(r);
    }
}

static void api_login(struct site_req *r)
{
    if (!parse_credentials(r))
        return;
    if (r->password_len > SITE_PASSWORD_MAX) {
        /* No one's password: verified anyway (same cost), then refused. */
        r->password_len = SITE_PASSWORD_MAX;
        r->bad_password = true;
    }
    site_login_begin(r);
}

static void api_me(struct site_req *r)
{
    if (!r->logged_in) {
        fail_login_needed(r);
        return;
    }
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "{\"username\":");
    json_write_str(&b, r->user.name, strlen(r->user.name));
    buf_puts(&b, "}\n");
    reply_json(r, 200, &b);
}

static void api_links_post(struct site_req *r)
{
    if (!r->logged_in) {
        fail_login_needed(r);
        return;
    }
    struct json_doc doc;
    if (!site_json_body(r, &doc))
        return;
    size_t tlen = 0, ulen = 0, xlen = 0;
    const char *t = json_get_str(doc.root, "title", &tlen), *u = json_get_str(doc.root, "url", &ulen);
    const char *x = json_get_str(doc.root, "text", &xlen);
    const struct json *uj = json_get(doc.root, "url"), *xj = json_get(doc.root, "text");
    bool url_ok = u || !uj || uj->type == JSON_NULL, text_ok = x || !xj || xj->type == JSON_NULL;
    if (!t || !url_ok || !text_ok || (!u && !x)) {
        json_free(&doc);
        site_fail(r, 400, "bad_json",
                  "send {\"title\": \"...\", \"url\": \"https://...\"}, {\"title\": \"...\", \"text\": \"...\"} or all three");
        return;
    }
    if (!u)
        u = "", ulen = 0;
    if (x && !site_comment_text(r, x, xlen)) {
        json_free(&doc);
        return;
    }
    if (tlen > COMMAND_MAX_TITLE_BYTES || ulen > SITE_URL_MAX) {
        json_free(&doc);
        site_fail(r, 400, "invalid", tlen > COMMAND_MAX_TITLE_BYTES ? "a title is at most 200 characters"
                                                                   : "a URL is at most 2048 bytes");
        return;
    }
    if (!(r->link_in = calloc(1, sizeof *r->link_in))) {
        json_free(&doc);
        site_fail(r, 503, "unavailable", "out of memory");
        return;
    }
    memcpy(r->link_in->title, t, tlen);
    r->link_in->title_len = tlen;
    memcpy(r->link_in->url_in, u, ulen);
    r->link_in->url_in[ulen] = 0;
    bool nul_inside = strlen(r->link_in->url_in) != ulen;
    json_free(&doc);
    if (nul_inside) {
        site_fail(r, 400, "invalid", "a URL cannot contain control characters");
        return;
    }
    site_post_begin(r);
}

/* PATCH /links/ID {"title"?, "text"?} */
static void api_link_patch(struct site_req *r)
{
    if (!r->logged_in) {
        fail_login_needed(r);
        return;
    }
    struct json_doc doc;
    if (!site_json_body(r, &doc))
        return;
    size_t tlen = 0, xlen = 0;
    const char *t = json_get_str(doc.root, "title", &tlen), *x = json_get_str(doc.root, "text", &xlen);
    if ((!t && !x) || tlen > COMMAND_MAX_TITLE_BYTES) {
        json_free(&doc);
        site_fail(r, 400, t ? "invalid" : "bad_json",
                  t ? "a title is at most 200 characters" : "send {\"title\": \"...\"}, {\"text\": \"...\"} or both");
        return;
    }
    if (!(r->link_in = calloc(1, sizeof *r->link_in))) {
        json_free(&doc);
        site_fail(r, 503, "unavailable", "out of memory");
        return;
    }
    if (t) {
        memcpy(r->link_in->title, t, tlen);
        r->link_in->title_len = tlen;
        if (!tlen) /* present but empty: invalid, not "unchanged" */
            r->link_in->title_len = 1, r->link_in->title[0] = ' ';
    }
    bool ok = !x || site_comment_text(r, x, xlen);
    json_free(&doc);
    if (ok)
        site_link_edit_begin(r);
}

static void api_links_list(struct site_req *r)
{
    r->shareable = true; /* the same for every visitor: a shared cache may keep it */
    static struct store_link page[SITE_MAX_LIMIT];
    size_t n = 0;
    if (store_links(store_of(r), (enum store_sort)r->sort, r->limit, r->offset, page, &n) != STORE_OK) {
        fail_store(r);
        return;
    }
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "{\"links\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_puts(&b, ",");
        char *text = text_of(store_of(r), &page[i]);
        site_link_json(&b, &page[i], text);
        free(text);
    }
    buf_puts(&b, "]}\n");
    reply_json(r, 200, &b);
}

static void api_link_get(struct site_req *r)
{
    r->shareable = true;
    reply_link(r, r->id, 200, NULL, 404, "not_found", "no such link");
}

static bool method_is(struct site_req *r, const char *m) { return !strcmp(r->req->method, m); }

/* ?limit&offset of a JSON list (defaults 30, 0) into r; false after a 400.
 * OFFSET walks the index row by row: a bound keeps a deep page from costing
 * seconds (offset 100000 is about 40 ms at a million links). */
bool site_list_params(struct site_req *r)
{
    const char *q = r->req->query;
    char v[32];
    long n;
    uint64_t x;
    r->limit = SITE_PAGE_LINKS;
    r->offset = 0;
    if ((n = site_form_field(q, strlen(q), "limit", v, sizeof v)) != -1) {
        if (n < 0 || !site_parse_uint(v, (size_t)n, 1, SITE_MAX_LIMIT, &x)) {
            site_fail(r, 400, "bad_limit", "limit is a number from 1 to 100");
            return false;
        }
        r->limit = (unsigned)x;
    }
    if ((n = site_form_field(q, strlen(q), "offset", v, sizeof v)) != -1) {
        if (n < 0 || !site_parse_uint(v, (size_t)n, 0, SITE_MAX_OFFSET, &x)) {
            site_fail(r, 400, "bad_offset", "offset is a number from 0 to 100000");
            return false;
        }
        r->offset = (unsigned)x;
    }
    return true;
}

/* /api/v1/links?sort&limit&offset */
static bool parse_list_query(struct site_req *r)
{
    const char *q = r->req->query;
    char v[32];
    long n;
    r->sort = STORE_SORT_HOT;
    if ((n = site_form_field(q, strlen(q), "sort", v, sizeof v)) != -1) {
        if (n >= 0 && !strcmp(v, "hot"))
            r->sort = STORE_SORT_HOT;
        else if (n >= 0 && !strcmp(v, "new"))
            r->sort = STORE_SORT_NEW;
        else if (n >= 0 && !strcmp(v, "top"))
            r->sort = STORE_SORT_TOP;
        else {
            site_fail(r, 400, "bad_sort", "sort is hot, new or top");
            return false;
        }
    }
    return site_list_params(r);
}

bool site_api_route(struct site_req *r, const char *path, bool *answered)
{
    const char *p = path + 7; /* after "/api/v1" */
    *answered = false;
    if (!strcmp(p, "/signup") || !strcmp(p, "/login") || !strcmp(p, "/logout")) {
        if (!method_is(r, "POST")) {
            site_fail_method(r, "POST");
            *answered = true;
            return true;
        }
        r->step = !strcmp(p, "/signup") ? api_signup : !strcmp(p, "/login") ? api_login : site_logout_begin;
        return true;
    }
    if (!strcmp(p, "/search"))
        return site_search_api_route(r, answered);
    if (site_flag_api_route(r, p, answered) || site_moderation_api_route(r, p, answered))
        return true;
    if (!strcmp(p, "/me/password") || !strncmp(p, "/users/", 7) || (!strcmp(p, "/me") && method_is(r, "PATCH")))
        return site_users_api_route(r, p, answered);
    if (!strcmp(p, "/me")) {
        if (!r->head_or_get) {
            site_fail_method(r, "GET, HEAD, PATCH");
            *answered = true;
            return true;
        }
        r->step = api_me;
        return true;
    }
    if (!strcmp(p, "/links")) {
        if (method_is(r, "POST")) {
            r->step = api_links_post;
        } else if (r->head_or_get && site_domain_api_route(r, answered)) {
            return true;
        } else if (r->head_or_get) {
            if (!parse_list_query(r)) {
                *answered = true;
                return true;
            }
            r->step = api_links_list;
        } else {
            site_fail_method(r, "GET, HEAD, POST");
            *answered = true;
        }
        return true;
    }
    if (!strncmp(p, "/links/", 7)) {
        const char *idp = p + 7, *slash = strchr(idp, '/');
        size_t idlen = slash ? (size_t)(slash - idp) : strlen(idp);
        if (site_parse_id(idp, idlen, &r->id) && slash && !strcmp(slash, "/comments"))
            return site_comments_api_route(r, p, answered);
        if (!site_parse_id(idp, idlen, &r->id) || (slash && strcmp(slash, "/like"))) {
            site_fail(r, 404, "not_found", "no such path");
            *answered = true;
            return true;
        }
        if (!slash) {
            if (method_is(r, "PATCH")) {
                r->step = api_link_patch;
                return true;
            }
            if (method_is(r, "DELETE")) {
                r->step = site_link_delete_begin;
                return true;
            }
            if (!r->head_or_get) {
                site_fail_method(r, "GET, HEAD, PATCH, DELETE");
                *answered = true;
                return true;
            }
            r->step = api_link_get;
            return true;
        }
        if (method_is(r, "PUT") || method_is(r, "DELETE")) {
            r->like_on = method_is(r, "PUT");
            r->step = site_like_begin;
            return true;
        }
        site_fail_method(r, "PUT, DELETE");
        *answered = true;
        return true;
    }
    if (!strncmp(p, "/comments/", 10))
        return site_comments_api_route(r, p, answered);
    site_fail(r, 404, "not_found", "no such API path (see SPEC §4)");
    *answered = true;
    return true;
}
