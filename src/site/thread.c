/*
 * thread.c — the discussion on pages (SPEC §5 "Comments"): the thread under
 * a link, indented by depth as nested lists, the comment form, and the form
 * pages of one comment (reply, edit) with the buttons that post to like or
 * delete it. No JavaScript: every action is a form with the CSRF token,
 * answered by a redirect back to the comment (/link/L#cID).
 *
 * Markup per comment is kept small (a 500-comment thread is a page people
 * load): the like and reply controls, author, age, likes and the text; for
 * a logged-in reader (whose page is never the cached one) a flag button on
 * others' comments (flags.c: toggles, back to the comment with a message).
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

static bool mine(struct site_req *r, const struct store_comment *c)
{
    return r->logged_in && !c->deleted && !strcmp(c->author, r->user.name);
}

static bool editable(struct site_req *r, const struct store_comment *c)
{
    return mine(r, c) && now_of(r) <= c->created_ms + COMMAND_EDIT_WINDOW_MS;
}

/* reply · edit · delete (or flag), at the end of a comment's line. */
static void comment_actions(struct buf *b, struct site_req *r, const struct store_comment *c, bool flagged)
{
    buf_printf(b, " · <a href=/comment/%" PRId64 "/reply>reply</a>", c->id);
    if (r->logged_in && !c->deleted && !mine(r, c)) {
        buf_printf(b, " · <form method=post action=/comment/%" PRId64 "/flag class=like>", c->id);
        site_csrf_field(b, r);
        buf_puts(b, flagged ? "<button class=link title=\"take back your flag\">unflag</button></form>"
                            : "<button class=link title=\"flag as spam or abuse\">flag</button></form>");
    }
    if (editable(r, c))
        buf_printf(b, " · <a href=/comment/%" PRId64 "/edit>edit</a>", c->id);
    if (mine(r, c)) {
        buf_printf(b, " · <form method=\"post\" action=\"/comment/%" PRId64 "/delete\" class=\"like\">", c->id);
        site_csrf_field(b, r);
        buf_puts(b, "<button class=\"link\">delete</button></form>");
    } else if (r->logged_in && !c->deleted && site_is_moderator(r)) {
        /* Another's comment: a moderator deletes it with a reason, given on its own page. */
        buf_printf(b, " · <a href=/comment/%" PRId64 "/delete>delete</a>", c->id);
    }
}

/* The line above a comment's text: like, author, age, likes, and (with
 * actions) reply, edit, delete, flag. Kept short: it is repeated per comment. */
static void comment_head(struct buf *b, struct site_req *r, const struct store_comment *c, bool liked, bool flagged,
                         bool actions)
{
    char ago[48], when[32];
    if (c->deleted) {
        buf_puts(b, "<div class=\"cm\">[deleted]</div>");
        return;
    }
    site_relative_time(c->created_ms, now_of(r), ago, sizeof ago);
    site_rfc3339(c->created_ms, when);
    /* A div (a <form> inside a <p> would end the <p>), styled as the
     * thread's ".cs li>div": no class, 11 bytes a comment. Attribute values
     * without quotes where HTML allows (no space, quote, '=', '<', '>' or
     * '`' in them): 2 bytes each. */
    buf_puts(b, "<div>");
    if (r->logged_in) {
        buf_printf(b, "<form method=\"post\" action=\"/comment/%" PRId64 "/like\" class=\"like\">", c->id);
        site_csrf_field(b, r);
        buf_printf(b, "<button class=\"up%s\" aria-label=\"%s\">\xe2\x96\xb2</button></form> ", liked ? " on" : "",
                   liked ? "unlike" : "like");
    } else {
        buf_printf(b, "<a class=up href=\"/login?next=/link/%" PRId64 "\" title=like>\xe2\x96\xb2</a> ", c->link_id);
    }
    buf_puts(b, "<a href=/user/"); /* a name is [A-Za-z0-9_-] (validate.c) */
    esc(b, c->author);
    buf_puts(b, ">");
    esc(b, c->author);
    /* datetime to the minute ("2026-01-02T03:04Z" is valid HTML): 3 bytes a comment */
    buf_printf(b, "</a> <time datetime=%.16sZ>%s</time> · %" PRId64 " like%s%s", when, ago, c->likes,
               c->likes == 1 ? "" : "s", c->edited_ms ? " · edited" : "");
    if (actions)
        comment_actions(b, r, c, flagged);
    buf_puts(b, "</div>");
}

/* The comment form; with error, the message tied to the field. */
static void comment_form_err(struct buf *b, struct site_req *r, const char *action, const char *label, const char *text,
                             const char *error)
{
    buf_printf(b, "<form class=\"box\" method=\"post\" action=\"%s\">", action);
    site_csrf_field(b, r);
    if (error) {
        buf_puts(b, "<p class=\"err\" role=\"alert\" id=\"text-err\">");
        site_html_sentence(b, error);
        buf_puts(b, "</p>");
    }
    buf_printf(b, "<label for=\"text\">%s</label><textarea id=\"text\" name=\"text\" rows=\"5\" required%s>", label,
               error ? " aria-invalid=\"true\" aria-describedby=\"text-err\"" : "");
    if (text)
        esc(b, text);
    buf_puts(b, "</textarea><p class=\"meta\">Plain text: a blank line between paragraphs, two spaces before a "
                "line of code; links are made for you.</p><button>Send</button></form>");
}

static void comment_form(struct buf *b, struct site_req *r, const char *action, const char *label, const char *text)
{
    comment_form_err(b, r, action, label, text, NULL);
}

void site_thread_html(struct buf *b, struct site_req *r, const struct store_link *l, uint64_t now, uint64_t *until_ms)
{
    struct store_comment *c = NULL;
    size_t n = 0;
    if (store_thread(store_of(r), l->id, &c, &n) != STORE_OK) {
        buf_puts(b, "<p class=\"err\">The comments cannot be read on this server now.</p>");
        return;
    }
    uint8_t *liked = n ? calloc(n, 1) : NULL, *flagged = n ? calloc(n, 1) : NULL;
    if (r->logged_in && n && liked && flagged) {
        int64_t *ids = malloc(n * sizeof *ids);
        for (size_t i = 0; ids && i < n; i++)
            ids[i] = c[i].id;
        if (!ids || store_comments_liked(store_of(r), r->user.id, ids, n, liked) != STORE_OK)
            memset(liked, 0, n);
        if (!ids || store_comments_flagged(store_of(r), r->user.id, ids, n, flagged) != STORE_OK)
            memset(flagged, 0, n);
        free(ids);
    }
    buf_printf(b, "<section class=\"thread\" aria-labelledby=\"cs\"><h2 id=\"cs\">%" PRId64 " comment%s</h2>",
               l->comments, l->comments == 1 ? "" : "s");
    if (r->logged_in) {
        char action[48];
        snprintf(action, sizeof action, "/link/%" PRId64 "/comment", l->id);
        comment_form(b, r, action, "Add a comment", NULL);
    } else {
        buf_printf(b, "<p><a href=\"/login?next=/link/%" PRId64 "\">Log in</a> to comment.</p>", l->id);
    }
    /* Display order is pre-order with depths: open a list on the way down,
     * close items and lists on the way up. */
    int depth = -1;
    for (size_t i = 0; i < n; i++) {
        int d = c[i].depth;
        if (d > depth) {
            buf_puts(b, depth < 0 ? "<ul class=\"cs\">" : "<ul>");
            depth = depth < 0 ? 0 : depth + 1; /* pre-order: at most one level down (store_thread) */
        } else {
            buf_puts(b, "</li>");
            for (; depth > d; depth--)
                buf_puts(b, "</ul></li>");
        }
        buf_printf(b, "<li id=c%" PRId64 ">", c[i].id); /* unquoted: valid HTML, 2 bytes a comment */
        if (!c[i].deleted) {
            uint64_t t = site_relative_time_next(c[i].created_ms, now);
            if (t < *until_ms)
                *until_ms = t;
        }
        comment_head(b, r, &c[i], liked && liked[i], flagged && flagged[i], true);
        site_text_render(b, c[i].text, strlen(c[i].text)); /* "" once deleted */
    }
    if (depth >= 0) {
        buf_puts(b, "</li>");
        for (; depth > 0; depth--)
            buf_puts(b, "</ul></li>");
        buf_puts(b, "</ul>");
    }
    buf_puts(b, "</section>");
    free(liked);
    free(flagged);
    store_comments_free(c, n);
}

/* ---- The pages of one comment --------------------------------------------------------- */

enum { REPLY, EDIT };

/* GET /comment/ID/reply and /comment/ID/edit: the comment and a form. */
static void comment_page(struct site_req *r, int what)
{
    struct store_comment c;
    int found = store_comment_get(store_of(r), r->comment_id, &c);
    if (found != 1 || c.deleted) {
        if (found == 1)
            store_comment_clear(&c);
        site_page_error(r, found < 0 ? 500 : 404, found < 0 ? "The comment cannot be read now." : "There is no such comment.");
        return;
    }
    if (what == REPLY && !r->logged_in) {
        char path[64];
        snprintf(path, sizeof path, "/login?next=/comment/%" PRId64 "/reply", c.id);
        store_comment_clear(&c);
        site_redirect(r, path);
        return;
    }
    if (what == EDIT && !editable(r, &c)) {
        store_comment_clear(&c);
        site_page_error(r, 403, "Only its author may edit a comment, within 2 hours of posting.");
        return;
    }
    struct buf b;
    buf_init(&b);
    site_page_begin(&b, r, what == REPLY ? "Reply" : "Edit a comment");
    buf_printf(&b, "<h1>%s</h1><article class=\"thread\"><ul class=\"cs\"><li>",
               what == REPLY ? "Reply to a comment" : "Edit your comment");
    comment_head(&b, r, &c, false, false, false);
    buf_puts(&b, "<div class=\"ct\">");
    site_text_render(&b, c.text, strlen(c.text));
    buf_printf(&b, "</div></li></ul><p class=\"meta\"><a href=\"/link/%" PRId64 "#c%" PRId64 "\">in context</a></p>"
                   "</article>",
               c.link_id, c.id);
    char action[48];
    snprintf(action, sizeof action, "/comment/%" PRId64 "/%s", c.id, what == REPLY ? "reply" : "edit");
    comment_form(&b, r, action, what == REPLY ? "Your reply" : "Text", what == EDIT ? c.text : NULL);
    site_page_end(&b, r);
    store_comment_clear(&c);
    site_page_send(r, 200, &b);
}

static void page_reply_get(struct site_req *r) { comment_page(r, REPLY); }
static void page_edit_get(struct site_req *r) { comment_page(r, EDIT); }

/* The text field of a posted form into r->text; false after answering. */
static bool form_text(struct site_req *r)
{
    size_t cap = r->req->body_len + 1;
    char *raw = malloc(cap);
    if (!raw) {
        site_page_error(r, 503, "out of memory");
        return false;
    }
    long n = site_form_field(r->req->body, r->req->body_len, "text", raw, cap);
    bool ok = n >= 0 && strlen(raw) == (size_t)n;
    if (!ok) {
        site_page_error(r, 400, "The form has no text, or text with a NUL character.");
        free(raw);
        return false;
    }
    char *checked = malloc((size_t)n + 1);
    const char *err = checked ? site_text_check(raw, (size_t)n, SITE_TEXT_MAX_CHARS, false, checked, (size_t)n + 1,
                                                &r->text_len)
                              : "Out of memory: try again.";
    if (!err) {
        r->text = checked;
        free(raw);
        return true;
    }
    /* The form again, with what was written and the reason next to it. */
    free(checked);
    char action[64];
    snprintf(action, sizeof action, "%s", r->req->path);
    struct buf b;
    buf_init(&b);
    site_page_begin(&b, r, "Your comment");
    buf_puts(&b, "<h1>Your comment</h1>");
    comment_form_err(&b, r, action, "Text", raw, err);
    site_page_end(&b, r);
    free(raw);
    site_page_send(r, 400, &b);
    return false;
}

/* POST /link/ID/comment: a top-level comment. */
static void page_comment_post(struct site_req *r)
{
    if (!site_form_ok(r))
        return;
    if (!r->logged_in) {
        site_comment_post_begin(r); /* sends to the login page */
        return;
    }
    if (form_text(r))
        site_comment_post_begin(r);
}

/* POST /comment/ID/reply. */
static void page_reply_post(struct site_req *r)
{
    if (!site_form_ok(r))
        return;
    struct store_comment c;
    int found = store_comment_get(store_of(r), r->comment_id, &c);
    if (found != 1) {
        site_page_error(r, found < 0 ? 500 : 404, found < 0 ? "The comment cannot be read now." : "There is no such comment.");
        return;
    }
    r->id = c.link_id;
    store_comment_clear(&c);
    if (!r->logged_in) {
        site_comment_post_begin(r);
        return;
    }
    if (form_text(r))
        site_comment_post_begin(r);
}

static void page_edit_post(struct site_req *r)
{
    if (site_form_ok(r) && (!r->logged_in || form_text(r)))
        site_comment_edit_begin(r);
}

static void page_delete_post(struct site_req *r)
{
    if (site_form_ok(r))
        site_comment_delete_begin(r);
}

/* POST /comment/ID/like toggles, as for links. */
static void page_like_post(struct site_req *r)
{
    if (!site_form_ok(r))
        return;
    uint8_t liked = 0;
    if (r->logged_in && store_comments_liked(store_of(r), r->user.id, &r->comment_id, 1, &liked) != STORE_OK) {
        site_page_error(r, 500, "The likes cannot be read now.");
        return;
    }
    r->like_on = !liked;
    site_comment_like_begin(r);
}

bool site_thread_route(struct site_req *r, const char *path, bool *answered)
{
    *answered = false;
    if (!strncmp(path, "/link/", 6)) /* "/link/ID/comment", r->id set */
        return site_route(r, NULL, page_comment_post, answered);
    const char *idp = path + 9, *slash = strchr(idp, '/'); /* after "/comment/" */
    if (!slash || !site_parse_id(idp, (size_t)(slash - idp), &r->comment_id))
        return false;
    if (!strcmp(slash, "/reply"))
        return site_route(r, page_reply_get, page_reply_post, answered);
    if (!strcmp(slash, "/edit"))
        return site_route(r, page_edit_get, page_edit_post, answered);
    if (!strcmp(slash, "/delete"))
        return site_route(r, site_mod_delete_form, page_delete_post, answered);
    if (!strcmp(slash, "/like"))
        return site_route(r, NULL, page_like_post, answered);
    if (!strcmp(slash, "/flag"))
        return site_route(r, NULL, site_comment_flag_post, answered);
    return false;
}
