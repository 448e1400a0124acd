/*
 * flags.c — flags on the site (SPEC §5 "Abuse and moderation"):
 * POST /api/v1/links/ID/flag and /api/v1/comments/ID/flag flag, DELETE
 * undoes, both answering {"id","flags","flagged"}; on pages a form on
 * /link/ID posts to /link/ID/flag, and one on each other's comment of its
 * thread to /comment/ID/flag; both toggle, say so once (the flash) and
 * return to the link or to the comment's row. One flag per user is the
 * state machine's rule (src/store/flags.c), as is the hiding of a link with
 * STORE_FLAGS_HIDE flags from hot and new.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "site/internal.h"

static void flag_done(void *arg, int status, uint64_t index, const struct store_result *res)
{
    struct site_req *r = arg;
    bool comment = r->comment_id != 0;
    if (status) {
        site_fail_host(r, status);
        return;
    }
    site_wrote(r, index);
    if (res->status == CMD_ERR_NOT_FOUND) {
        site_fail(r, 404, "not_found", comment ? "no such comment" : "no such link");
        return;
    }
    if (res->status == CMD_ERR_DENIED) {
        if (!r->api)
            site_redirect(r, "/login");
        else
            site_fail(r, 401, "login_required", "the session has ended (logged out or expired): log in again");
        return;
    }
    if (res->status != CMD_OK) {
        site_fail(r, 400, "invalid", "the flag was refused as malformed");
        return;
    }
    if (!r->api) {
        char path[64];
        if (comment) {
            site_flash_set(r, res->flag ? SITE_FLASH_COMMENT_FLAGGED : SITE_FLASH_UNFLAGGED);
            site_comment_path(path, sizeof path, r->id, r->comment_id); /* r->id: its link */
        } else {
            site_flash_set(r, res->flag ? SITE_FLASH_FLAGGED : SITE_FLASH_UNFLAGGED);
            snprintf(path, sizeof path, "/link/%" PRId64, r->id);
        }
        site_redirect(r, path);
        return;
    }
    struct buf b;
    buf_init(&b);
    buf_printf(&b, "{\"id\":%" PRId64 ",\"flags\":%" PRId64 ",\"flagged\":%s}\n", res->id, res->count,
               res->flag ? "true" : "false");
    site_reply(r, 200, "application/json", NULL, &b);
}

/* r->id (a link) or r->comment_id (a comment; r->id is then its link, for
 * the page's redirect), r->like_on: flag or unflag. */
static void flag_begin(struct site_req *r)
{
    if (!r->logged_in) {
        if (!r->api)
            site_redirect(r, "/login");
        else
            site_fail(r, 401, "login_required", r->has_token ? "the session has ended: log in again" : "log in first");
        return;
    }
    bool comment = r->comment_id != 0;
    struct command c = { .type = comment ? (r->like_on ? CMD_COMMENT_FLAG : CMD_COMMENT_UNFLAG)
                                         : (r->like_on ? CMD_FLAG : CMD_UNFLAG),
                         .session = { (const char *)r->token_hash, COMMAND_HASH_LEN },
                         .link_id = r->id,
                         .comment_id = r->comment_id,
                         .idem_key = { r->idem, (uint16_t)r->idem_len } };
    c.scope = site_scope(r, r->user.lname);
    site_propose(r, &c, flag_done);
}

bool site_flag_api_route(struct site_req *r, const char *p, bool *answered)
{
    bool comment = !strncmp(p, "/comments/", 10);
    if (!comment && strncmp(p, "/links/", 7))
        return false;
    const char *idp = p + (comment ? 10 : 7), *slash = strchr(idp, '/');
    int64_t id;
    if (!slash || strcmp(slash, "/flag") || !site_parse_id(idp, (size_t)(slash - idp), &id))
        return false;
    *answered = true;
    bool post = !strcmp(r->req->method, "POST");
    if (!post && strcmp(r->req->method, "DELETE")) {
        site_fail_method(r, "POST, DELETE");
        return true;
    }
    if (comment)
        r->comment_id = id;
    else
        r->id = id;
    r->like_on = post;
    r->step = flag_begin;
    *answered = false;
    return true;
}

/* POST /link/ID/flag from the link's page: toggles this user's flag. */
static void page_flag_post(struct site_req *r)
{
    if (!site_form_ok(r))
        return;
    if (!r->logged_in) {
        site_redirect(r, "/login");
        return;
    }
    int flagged = store_flagged(r->s->host.store(r->s->host.ctx), r->user.id, false, r->id);
    if (flagged < 0) {
        site_page_error(r, 500, "cannot read flags");
        return;
    }
    r->like_on = !flagged;
    flag_begin(r);
}

/* POST /comment/ID/flag from a thread: toggles this user's flag on it. */
void site_comment_flag_post(struct site_req *r)
{
    if (!site_form_ok(r))
        return;
    if (!r->logged_in) {
        site_redirect(r, "/login");
        return;
    }
    struct store *st = r->s->host.store(r->s->host.ctx);
    struct store_comment c;
    int found = store_comment_get(st, r->comment_id, &c);
    if (found != 1) {
        site_page_error(r, found < 0 ? 500 : 404, found < 0 ? "The comment cannot be read now." : "There is no such comment.");
        return;
    }
    r->id = c.link_id;
    store_comment_clear(&c);
    int flagged = store_flagged(st, r->user.id, true, r->comment_id);
    if (flagged < 0) {
        site_page_error(r, 500, "cannot read flags");
        return;
    }
    r->like_on = !flagged;
    flag_begin(r);
}

bool site_flag_page_route(struct site_req *r, const char *path, bool *answered)
{
    if (strncmp(path, "/link/", 6))
        return false;
    const char *idp = path + 6, *slash = strchr(idp, '/');
    if (!slash || strcmp(slash, "/flag") || !site_parse_id(idp, (size_t)(slash - idp), &r->id))
        return false;
    return site_route(r, NULL, page_flag_post, answered);
}

void site_flag_html(struct buf *b, struct site_req *r, const struct store_link *l)
{
    if (!r->logged_in)
        return;
    int flagged = store_flagged(r->s->host.store(r->s->host.ctx), r->user.id, false, l->id);
    buf_printf(b, "<form method=\"post\" action=\"/link/%" PRId64 "/flag\" class=\"like\">", l->id);
    site_csrf_field(b, r);
    buf_printf(b, "<button class=\"link\" title=\"%s\">%s</button></form>",
               flagged == 1 ? "take back your flag" : "flag as spam or abuse: 5 flags take a link off hot and new",
               flagged == 1 ? "unflag" : "flag");
}
