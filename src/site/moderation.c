/*
 * moderation.c — moderators, bans and the public log on the site (SPEC §5
 * "Abuse and moderation"):
 *   - DELETE /api/v1/links/ID and /api/v1/comments/ID by a moderator who is
 *     not the author become moderator deletes (CMD_MOD_DELETE_*), with the
 *     reason from the JSON body {"reason"} or the form's reason field;
 *   - POST /api/v1/users/NAME/ban {"reason"} → 204, DELETE lifts it;
 *   - GET /api/v1/moderation and the page /moderation: the log, newest first;
 *   - every write of a banned user is refused at apply (CMD_ERR_BANNED) and
 *     answered 403 here, whatever the route (site_write_banned).
 * Who is a moderator is checked again at apply: the check here only picks
 * the command.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "site/internal.h"

static struct store *store_of(struct site_req *r) { return r->s->host.store(r->s->host.ctx); }

bool site_write_banned(struct site_req *r, int status, uint64_t index, const struct store_result *res)
{
    if (status || !res || res->status != CMD_ERR_BANNED)
        return false;
    site_wrote(r, index);
    site_fail(r, 403, "banned", "this account is banned by the site's moderators (see /moderation)");
    return true;
}

/* The reason of a moderator's action into r->text (malloc'd; may be "");
 * false after answering 400. */
static bool read_reason(struct site_req *r)
{
    const char *reason = "";
    size_t len = 0;
    struct json_doc doc;
    bool have_doc = false;
    char *form = NULL;
    if (r->api && r->req->body_len) {
        if (!site_json_body(r, &doc))
            return false;
        have_doc = true;
        const char *v = json_get_str(doc.root, "reason", &len);
        if (v)
            reason = v;
    } else if (!r->api) {
        form = malloc(COMMAND_MAX_REASON_BYTES + 1);
        long n = form ? site_form_field(r->req->body, r->req->body_len, "reason", form, COMMAND_MAX_REASON_BYTES + 1)
                      : -1;
        if (n > 0)
            reason = form, len = (size_t)n;
    }
    bool ok = len <= COMMAND_MAX_REASON_BYTES && memchr(reason, 0, len) == NULL;
    if (ok) {
        r->text = malloc(len + 1);
        ok = r->text != NULL;
        if (ok) {
            memcpy(r->text, reason, len);
            r->text[len] = 0;
            r->text_len = len;
        }
    }
    if (have_doc)
        json_free(&doc);
    free(form);
    if (!ok)
        site_fail(r, 400, "invalid", "a reason is at most 2000 bytes of text");
    return ok;
}

static void mod_done(void *arg, int status, uint64_t index, const struct store_result *res)
{
    struct site_req *r = arg;
    if (status) {
        site_fail_host(r, status);
        return;
    }
    site_wrote(r, index);
    switch (res->status) {
    case CMD_OK: break;
    case CMD_ERR_NOT_FOUND: site_fail(r, 404, "not_found", "no such link, comment or user"); return;
    case CMD_ERR_FORBIDDEN: site_fail(r, 403, "forbidden", "only a moderator may do this"); return;
    case CMD_ERR_DENIED: site_fail(r, 401, "login_required", "log in first"); return;
    default: site_fail(r, 400, "invalid", "the action was refused as malformed"); return;
    }
    if (!r->api) {
        site_redirect(r, "/moderation");
        return;
    }
    site_reply(r, 204, "application/json", NULL, NULL);
}

static bool is_moderator(struct site_req *r)
{
    bool mod = false, banned = false;
    return r->logged_in && store_user_roles(store_of(r), r->user.id, &mod, &banned) == STORE_OK && mod && !banned;
}

bool site_mod_delete(struct site_req *r, bool comment)
{
    if (!is_moderator(r))
        return false;
    /* A moderator's own link or comment is deleted as its author's. */
    if (comment) {
        struct store_comment c;
        int found = store_comment_get(store_of(r), r->comment_id, &c);
        bool own = found == 1 && !strcmp(c.author, r->user.name);
        if (found == 1)
            store_comment_clear(&c);
        if (found != 1 || own)
            return false;
    } else {
        struct store_link *l = malloc(sizeof *l);
        int found = l ? store_link_get(store_of(r), r->id, l) : -1;
        bool own = found == 1 && !strcmp(l->author, r->user.name);
        free(l);
        if (found != 1 || own)
            return false;
    }
    if (!read_reason(r))
        return true;
    struct command c = { .type = comment ? CMD_MOD_DELETE_COMMENT : CMD_MOD_DELETE_LINK,
                         .session = { (const char *)r->token_hash, COMMAND_HASH_LEN },
                         .text = { r->text, (uint16_t)r->text_len },
                         .link_id = comment ? 0 : r->id,
                         .comment_id = comment ? r->comment_id : 0,
                         .idem_key = { r->idem, (uint16_t)r->idem_len } };
    c.scope = site_scope(r, r->user.lname);
    site_propose(r, &c, mod_done);
    return true;
}

/* POST / DELETE /api/v1/users/NAME/ban (r->name, r->like_on = ban). */
static void ban_begin(struct site_req *r)
{
    if (!r->logged_in) {
        site_fail(r, 401, "login_required", "log in first");
        return;
    }
    if (!read_reason(r))
        return;
    char lname[SITE_NAME_MAX + 1];
    size_t n = strlen(r->name);
    for (size_t i = 0; i <= n; i++)
        lname[i] = (char)(r->name[i] >= 'A' && r->name[i] <= 'Z' ? r->name[i] + 32 : r->name[i]);
    struct command c = { .type = r->like_on ? CMD_BAN : CMD_UNBAN,
                         .session = { (const char *)r->token_hash, COMMAND_HASH_LEN },
                         .lname = { lname, (uint16_t)n },
                         .text = { r->text, (uint16_t)r->text_len },
                         .idem_key = { r->idem, (uint16_t)r->idem_len } };
    c.scope = site_scope(r, r->user.lname);
    site_propose(r, &c, mod_done);
}

static void actions_json(struct buf *b, const struct store_mod_action *a, size_t n)
{
    buf_puts(b, "{\"actions\":[");
    for (size_t i = 0; i < n; i++) {
        char when[32];
        site_rfc3339(a[i].created_ms, when);
        buf_puts(b, i ? ",{\"moderator\":" : "{\"moderator\":");
        if (a[i].moderator[0])
            json_write_str(b, a[i].moderator, strlen(a[i].moderator));
        else
            buf_puts(b, "null");
        buf_puts(b, ",\"action\":");
        json_write_str(b, a[i].action, strlen(a[i].action));
        buf_puts(b, ",\"target\":");
        json_write_str(b, a[i].target, strlen(a[i].target));
        buf_puts(b, ",\"reason\":");
        json_write_str(b, a[i].reason, strlen(a[i].reason));
        buf_printf(b, ",\"created\":\"%s\"}", when);
    }
    buf_puts(b, "]}\n");
}

static void api_log(struct site_req *r)
{
    struct store_mod_action *a = malloc(SITE_MAX_LIMIT * sizeof *a);
    size_t n = 0;
    if (!a || store_mod_log(store_of(r), r->limit, r->offset, a, &n)) {
        free(a);
        site_fail(r, 500, "internal", "cannot read the moderation log");
        return;
    }
    struct buf b;
    buf_init(&b);
    actions_json(&b, a, n);
    free(a);
    site_reply(r, 200, "application/json", NULL, &b);
}

bool site_moderation_api_route(struct site_req *r, const char *p, bool *answered)
{
    if (!strcmp(p, "/moderation")) {
        *answered = true;
        if (!r->head_or_get) {
            site_fail_method(r, "GET, HEAD");
            return true;
        }
        if (!site_list_params(r))
            return true;
        *answered = false;
        r->step = api_log;
        return true;
    }
    if (strncmp(p, "/users/", 7))
        return false;
    const char *name = p + 7, *slash = strchr(name, '/');
    if (!slash || strcmp(slash, "/ban") || slash == name || (size_t)(slash - name) > SITE_NAME_MAX)
        return false;
    *answered = true;
    bool post = !strcmp(r->req->method, "POST");
    if (!post && strcmp(r->req->method, "DELETE")) {
        site_fail_method(r, "POST, DELETE");
        return true;
    }
    snprintf(r->name, sizeof r->name, "%.*s", (int)(slash - name), name);
    r->like_on = post;
    r->step = ban_begin;
    *answered = false;
    return true;
}

static void page_log(struct site_req *r)
{
    enum { PER_PAGE = 50 };
    struct store_mod_action *a = malloc((PER_PAGE + 1) * sizeof *a);
    size_t n = 0;
    if (!a || store_mod_log(store_of(r), PER_PAGE + 1, (r->page - 1) * PER_PAGE, a, &n)) {
        free(a);
        site_page_error(r, 500, "cannot read the moderation log");
        return;
    }
    bool more = n > PER_PAGE;
    if (more)
        n = PER_PAGE;
    struct buf b;
    buf_init(&b);
    site_page_begin(&b, r, "Moderation log");
    buf_puts(&b, "<h1 class=\"dom\">Moderation log</h1><p class=\"meta\">Every action of the site's moderators, "
                 "newest first.</p>");
    if (!n) {
        buf_puts(&b, "<p>Nothing yet.</p>");
    } else {
        buf_puts(&b, "<table><thead><tr><th scope=\"col\">When</th><th scope=\"col\">Moderator</th>"
                     "<th scope=\"col\">Action</th><th scope=\"col\">Target</th><th scope=\"col\">Reason</th>"
                     "</tr></thead><tbody>");
        for (size_t i = 0; i < n; i++) {
            char when[32];
            site_rfc3339(a[i].created_ms, when);
            buf_printf(&b, "<tr><td><time datetime=\"%s\">%s</time></td><td>", when, when);
            if (a[i].moderator[0]) {
                buf_puts(&b, "<a href=\"/user/");
                site_html_escape(&b, a[i].moderator, strlen(a[i].moderator));
                buf_puts(&b, "\">");
                site_html_escape(&b, a[i].moderator, strlen(a[i].moderator));
                buf_puts(&b, "</a>");
            } else {
                buf_puts(&b, "(administrator)");
            }
            buf_puts(&b, "</td><td>");
            site_html_escape(&b, a[i].action, strlen(a[i].action));
            buf_puts(&b, "</td><td>");
            bool user = !strncmp(a[i].target, "user/", 5);
            if (user) { /* users stay; deleted links and comments have no page */
                buf_puts(&b, "<a href=\"/");
                site_html_escape(&b, a[i].target, strlen(a[i].target));
                buf_puts(&b, "\">");
            }
            site_html_escape(&b, a[i].target, strlen(a[i].target));
            buf_puts(&b, user ? "</a></td><td>" : "</td><td>");
            site_html_escape(&b, a[i].reason, strlen(a[i].reason));
            buf_puts(&b, "</td></tr>");
        }
        buf_puts(&b, "</tbody></table>");
    }
    if (more)
        buf_printf(&b, "<p><a href=\"/moderation?p=%u\" rel=\"next\">More</a></p>", r->page + 1);
    free(a);
    site_page_end(&b, r);
    site_page_send(r, 200, &b);
}

bool site_moderation_page_route(struct site_req *r, const char *path, bool *answered)
{
    if (strcmp(path, "/moderation"))
        return false;
    return site_route(r, page_log, NULL, answered);
}
