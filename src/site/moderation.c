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
 * On pages (no JavaScript, CSRF-checked forms like the others): a
 * moderator sees a delete form with a reason field on another's link
 * (/link/ID) and a "delete" link on another's comment leading to the same
 * form (/comment/ID/delete), a ban or unban form on a user's page
 * (posting to /user/NAME/ban); a form's errors are tied to its reason field
 * and each action ends with a one-time message.
 * Who is a moderator is checked again at apply: the check here only picks
 * the command and the forms shown.
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

static void mod_form_page(struct site_req *r, int status, const char *error);

/* The reason of a moderator's action into r->text (malloc'd; may be "");
 * false after answering 400 (on a page: the form again, the error tied to
 * its reason field). */
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
        else if (n == -2) /* longer than the cap */
            len = COMMAND_MAX_REASON_BYTES + 1;
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
    if (!ok && r->api)
        site_fail(r, 400, "invalid", "a reason is at most 2000 bytes of text");
    else if (!ok)
        mod_form_page(r, 400, "a reason is at most 2000 characters");
    return ok;
}

/* A form's reason must say something: it is what the public log shows. */
static bool reason_given(struct site_req *r)
{
    for (size_t i = 0; i < r->text_len; i++)
        if (r->text[i] != ' ' && r->text[i] != '\r' && r->text[i] != '\n' && r->text[i] != '\t')
            return true;
    return false;
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
        /* A ban returns to the user's page, a delete to the log that now
         * lists it (this client reads at least up to its write: lr_idx). */
        char path[SITE_NAME_MAX + 8];
        bool ban = r->name[0] != 0;
        site_flash_set(r, !ban ? SITE_FLASH_MOD_DELETED : r->like_on ? SITE_FLASH_BANNED : SITE_FLASH_UNBANNED);
        snprintf(path, sizeof path, "/user/%s", r->name);
        site_redirect(r, ban ? path : "/moderation");
        return;
    }
    site_reply(r, 204, "application/json", NULL, NULL);
}

bool site_is_moderator(struct site_req *r)
{
    if (!r->moderator) {
        bool mod = false, banned = false;
        r->moderator = r->logged_in && store_user_roles(store_of(r), r->user.id, &mod, &banned) == STORE_OK && mod &&
                               !banned ? 1 : -1;
    }
    return r->moderator > 0;
}

bool site_mod_delete(struct site_req *r, bool comment)
{
    if (!site_is_moderator(r))
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
    if (!r->api && !reason_given(r)) {
        mod_form_page(r, 400, "give a reason: it is shown in the public moderation log");
        return true;
    }
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
    if (!r->api && r->like_on && !reason_given(r)) {
        mod_form_page(r, 400, "give a reason: it is shown in the public moderation log");
        return;
    }
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
        /* In a scrolling region: reasons and times are wider than a phone. */
        buf_puts(&b, "<div class=\"scroll\" tabindex=\"0\" role=\"region\" aria-label=\"moderation log\">"
                     "<table><thead><tr><th scope=\"col\">When</th><th scope=\"col\">Moderator</th>"
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
        buf_puts(&b, "</tbody></table></div>");
    }
    if (more)
        buf_printf(&b, "<p><a href=\"/moderation?p=%u\" rel=\"next\">More</a></p>", r->page + 1);
    free(a);
    site_page_end(&b, r);
    site_page_send(r, 200, &b);
}

/* ---- The moderators' forms ------------------------------------------------------- */

/* The reason field (a textarea, or a one-line input inside another page),
 * with the error, if any, tied to it. */
static void reason_field(struct buf *b, struct site_req *r, const char *label, const char *error, bool required,
                         bool inline_form)
{
    if (error) {
        buf_puts(b, "<p class=\"err\" role=\"alert\" id=\"reason-err\">");
        site_html_sentence(b, error);
        buf_puts(b, "</p>");
    }
    buf_printf(b, "<label for=\"reason\">%s</label>", label);
    buf_puts(b, inline_form ? "<input id=\"reason\" name=\"reason\" maxlength=\"2000\" autocomplete=\"off\""
                            : "<textarea id=\"reason\" name=\"reason\" rows=\"3\" maxlength=\"2000\"");
    if (required)
        buf_puts(b, " required");
    if (error)
        buf_puts(b, " aria-invalid=\"true\" aria-describedby=\"reason-err\"");
    if (inline_form) {
        buf_puts(b, ">");
        return;
    }
    buf_puts(b, ">");
    if (r->text)
        site_html_escape(b, r->text, r->text_len);
    buf_puts(b, "</textarea>");
}

/* The form of a moderator's action on its own page: deleting r->comment_id
 * or r->id, or banning (unbanning) r->name; error: shown, tied to the reason. */
static void mod_form_page(struct site_req *r, int status, const char *error)
{
    if (!site_is_moderator(r)) {
        site_page_error(r, 403, "Only the site's moderators may do this.");
        return;
    }
    struct buf b;
    buf_init(&b);
    if (r->name[0]) {
        bool ban = r->like_on;
        if (status == 200) { /* a fresh form: ban or unban, as the user is now */
            struct store_user u;
            bool mod = false, banned = false;
            if (store_user_by_name(store_of(r), r->name, strlen(r->name), &u) != 1 ||
                store_user_roles(store_of(r), u.id, &mod, &banned) != STORE_OK) {
                buf_free(&b);
                site_page_error(r, 404, "There is no such user.");
                return;
            }
            ban = !banned;
        }
        site_page_begin(&b, r, ban ? "Ban a user" : "Lift a ban");
        buf_printf(&b, "<h1>%s ", ban ? "Ban" : "Lift the ban of");
        site_html_escape(&b, r->name, strlen(r->name));
        buf_puts(&b, "</h1><p>");
        buf_puts(&b, ban ? "A banned user's sessions end and every write of theirs is refused; they can still log in "
                           "and read. " : "");
        buf_puts(&b, "The reason is shown in the public <a href=\"/moderation\">moderation log</a>.</p>");
        buf_puts(&b, "<form class=\"box\" method=\"post\" action=\"/user/");
        site_html_escape(&b, r->name, strlen(r->name));
        buf_puts(&b, "/ban\">");
        site_csrf_field(&b, r);
        buf_printf(&b, "<input type=\"hidden\" name=\"do\" value=\"%s\">", ban ? "ban" : "unban");
        reason_field(&b, r, ban ? "Reason" : "Reason (optional)", error, ban, false);
        buf_printf(&b, "<button>%s</button></form>", ban ? "Ban" : "Lift the ban");
    } else {
        bool comment = r->comment_id != 0;
        char action[48];
        snprintf(action, sizeof action, comment ? "/comment/%" PRId64 "/delete" : "/link/%" PRId64 "/delete",
                 comment ? r->comment_id : r->id);
        site_page_begin(&b, r, comment ? "Delete a comment" : "Delete a link");
        buf_printf(&b, "<h1>Delete a %s</h1>", comment ? "comment" : "link");
        if (comment) {
            struct store_comment c;
            int found = store_comment_get(store_of(r), r->comment_id, &c);
            if (found != 1 || c.deleted) {
                if (found == 1)
                    store_comment_clear(&c);
                buf_free(&b);
                site_page_error(r, 404, "There is no such comment.");
                return;
            }
            buf_puts(&b, "<p>The comment by ");
            site_html_escape(&b, c.author, strlen(c.author));
            buf_printf(&b, " on <a href=\"/link/%" PRId64 "#c%" PRId64 "\">its discussion</a>:</p><blockquote class=\"ct\">",
                       c.link_id, c.id);
            size_t n = strlen(c.text);
            site_html_escape(&b, c.text, n > 300 ? 300 : n);
            buf_puts(&b, n > 300 ? "\xe2\x80\xa6</blockquote>" : "</blockquote>");
            store_comment_clear(&c);
        } else {
            struct store_link *l = malloc(sizeof *l);
            if (!l || store_link_get(store_of(r), r->id, l) != 1) {
                free(l);
                buf_free(&b);
                site_page_error(r, 404, "There is no such link.");
                return;
            }
            buf_printf(&b, "<p><a href=\"/link/%" PRId64 "\">", l->id);
            site_html_escape(&b, l->title, strlen(l->title));
            buf_puts(&b, "</a> by ");
            site_html_escape(&b, l->author, strlen(l->author));
            buf_puts(&b, "</p>");
            free(l);
        }
        buf_puts(&b, "<p>The reason is shown in the public <a href=\"/moderation\">moderation log</a>.</p>");
        buf_printf(&b, "<form class=\"box\" method=\"post\" action=\"%s\">", action);
        site_csrf_field(&b, r);
        reason_field(&b, r, "Reason", error, true, false);
        buf_printf(&b, "<button>Delete the %s</button></form>", comment ? "comment" : "link");
    }
    site_page_end(&b, r);
    site_page_send(r, status, &b);
}

void site_mod_delete_form(struct site_req *r) { mod_form_page(r, 200, NULL); }

void site_mod_link_html(struct buf *b, struct site_req *r, const struct store_link *l)
{
    if (!site_is_moderator(r) || !strcmp(l->author, r->user.name))
        return;
    buf_printf(b, "<form method=\"post\" action=\"/link/%" PRId64 "/delete\" class=\"mod\">", l->id);
    site_csrf_field(b, r);
    reason_field(b, r, "Reason", NULL, true, true);
    buf_puts(b, "<button class=\"link\">delete as moderator</button></form>");
}

void site_mod_user_html(struct buf *b, struct site_req *r, const struct store_user *u)
{
    bool mod = false, banned = false;
    if (store_user_roles(store_of(r), u->id, &mod, &banned) != STORE_OK)
        return;
    if (banned)
        buf_puts(b, "<p class=\"meta\">Banned by the site's moderators (see the <a href=\"/moderation\">moderation "
                    "log</a>).</p>");
    else if (mod)
        buf_puts(b, "<p class=\"meta\">A moderator of this site.</p>");
    if (!site_is_moderator(r) || u->id == r->user.id)
        return;
    buf_puts(b, "<form method=\"post\" action=\"/user/");
    site_html_escape(b, u->name, strlen(u->name));
    buf_puts(b, "/ban\" class=\"mod\">");
    site_csrf_field(b, r);
    buf_printf(b, "<input type=\"hidden\" name=\"do\" value=\"%s\">", banned ? "unban" : "ban");
    reason_field(b, r, banned ? "Reason (optional)" : "Reason", NULL, !banned, true);
    buf_printf(b, "<button class=\"link\">%s</button></form>", banned ? "lift the ban" : "ban");
}

/* POST /user/NAME/ban from a page: do=ban or do=unban. */
static void page_ban_post(struct site_req *r)
{
    if (!site_form_ok(r))
        return;
    if (!r->logged_in) {
        site_redirect(r, "/login");
        return;
    }
    char what[8];
    long n = site_form_field(r->req->body, r->req->body_len, "do", what, sizeof what);
    if (n < 0 || (strcmp(what, "ban") && strcmp(what, "unban"))) {
        site_page_error(r, 400, "The form says neither ban nor unban: go back, reload and try again.");
        return;
    }
    r->like_on = !strcmp(what, "ban");
    ban_begin(r);
}

bool site_moderation_page_route(struct site_req *r, const char *path, bool *answered)
{
    if (!strcmp(path, "/moderation"))
        return site_route(r, page_log, NULL, answered);
    if (strncmp(path, "/user/", 6))
        return false;
    const char *name = path + 6, *slash = strchr(name, '/');
    if (!slash || strcmp(slash, "/ban") || site_check_username(name, (size_t)(slash - name)))
        return false;
    snprintf(r->name, sizeof r->name, "%.*s", (int)(slash - name), name);
    return site_route(r, site_mod_delete_form, page_ban_post, answered);
}
