/*
 * pages.c — the HTML site of SPEC §4: front page (hot), /new, /top, a link,
 * a user, the forms (submit, login, sign-up), /status, and the one
 * stylesheet. Server-rendered, no JavaScript: every action is a form that
 * posts back to its own path with the client's CSRF token, and answers
 * with a redirect (303) or the form again with the error.
 *
 * Everything a user wrote goes through site_html_escape; links to
 * submitted URLs carry rel="nofollow ugc noopener". The CSS is served at a
 * versioned path with a year-long max-age, so a page costs one request.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "site/site_int.h"
#include "site/text.h"

#define CSS_PATH "/static/site.v2.css"

static const char site_css[] =
    ":root{--bg:#fdfdfb;--fg:#1d1d1f;--muted:#6b6b70;--accent:#c2410c;--line:#e5e5e0;--box:#fff}\n"
    "@media (prefers-color-scheme:dark){:root{--bg:#141416;--fg:#e8e8ea;--muted:#9a9aa2;"
    "--accent:#fb923c;--line:#2c2c31;--box:#1c1c1f}}\n"
    "*{box-sizing:border-box}\n"
    "body{margin:0 auto;max-width:52rem;padding:0 .75rem;background:var(--bg);color:var(--fg);"
    "font:16px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif}\n"
    "a{color:inherit}a:hover{color:var(--accent)}\n"
    "header nav{display:flex;flex-wrap:wrap;gap:.4rem 1rem;align-items:center;padding:.6rem 0;"
    "border-bottom:2px solid var(--accent)}\n"
    ".brand{font-weight:700;text-decoration:none;color:var(--accent)}\n"
    ".me{margin-left:auto;display:flex;gap:.6rem;align-items:center}\n"
    "ol.links{padding-left:2.2rem}ol.links li{margin:.55rem 0}\n"
    ".t{font-size:1.05rem;text-decoration:none}\n"
    ".dom,.meta,footer{color:var(--muted);font-size:.85rem}\n"
    "form.like{display:inline}\n"
    "button,input{font:inherit}\n"
    "button.up{border:0;background:none;color:var(--muted);cursor:pointer;padding:0 .2rem}\n"
    "button.up.on{color:var(--accent)}\n"
    "button.link{border:0;background:none;color:inherit;text-decoration:underline;cursor:pointer;padding:0}\n"
    "form.box{display:grid;gap:.5rem;max-width:28rem;background:var(--box);border:1px solid var(--line);"
    "padding:1rem;border-radius:.4rem}\n"
    "form.box input{padding:.4rem;border:1px solid var(--line);border-radius:.25rem;background:var(--bg);color:var(--fg)}\n"
    "form.box button{padding:.45rem;border:0;border-radius:.25rem;background:var(--accent);color:#fff}\n"
    ".err{color:#b91c1c;font-weight:600}\n"
    "table{border-collapse:collapse;width:100%}td,th{padding:.3rem .5rem;border-bottom:1px solid var(--line);"
    "text-align:left}\n"
    "footer{margin:2rem 0 1rem;border-top:1px solid var(--line);padding-top:.5rem}\n"
    /* The thread: nested lists, each level indented with a guide line. */
    ".cs,.cs ul{list-style:none;margin:0;padding:0}.cs ul{padding-left:1rem;border-left:1px solid var(--line)}\n"
    ".cs li{margin:.7rem 0 0 .2rem;overflow-wrap:anywhere}.cm{color:var(--muted);font-size:.85rem}\n"
    ".cs p,.ct p{margin:.2rem 0}.cs pre,.ct pre{overflow-x:auto;margin:.3rem 0}.ct{overflow-wrap:anywhere}\n"
    "form.box textarea{font:inherit;padding:.4rem;border:1px solid var(--line);border-radius:.25rem;"
    "background:var(--bg);color:var(--fg)}\n";

static struct store *store_of(struct site_req *r) { return r->s->host.store(r->s->host.ctx); }
static uint64_t now_of(struct site_req *r) { return r->s->host.now_ms(r->s->host.ctx); }

static void esc(struct buf *b, const char *s) { site_html_escape(b, s, strlen(s)); }

static void csrf_field(struct buf *b, struct site_req *r)
{
    buf_printf(b, "<input type=\"hidden\" name=\"csrf\" value=\"%s\">", r->csrf);
}

static void page_begin(struct buf *b, struct site_req *r, const char *title)
{
    buf_puts(b, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
                "<meta name=\"color-scheme\" content=\"light dark\"><title>");
    esc(b, title);
    buf_puts(b, " · linkraft</title><link rel=\"stylesheet\" href=\"" CSS_PATH "\">"
                "<link rel=\"icon\" href=\"/favicon.svg\" type=\"image/svg+xml\">"
                "<link rel=\"alternate\" type=\"application/atom+xml\" title=\"New links\" href=\"/feed\"></head><body>"
                "<header><nav aria-label=\"main\"><a class=\"brand\" href=\"/\">linkraft</a>"
                "<a href=\"/new\">new</a><a href=\"/top\">top</a><a href=\"/submit\">submit</a><a href=\"/search\">search</a><span class=\"me\">");
    if (r->logged_in) {
        buf_puts(b, "<a href=\"/user/");
        esc(b, r->user.name);
        buf_puts(b, "\">");
        esc(b, r->user.name);
        buf_puts(b, "</a><a href=\"/settings\">settings</a><form method=\"post\" action=\"/logout\" class=\"like\">");
        csrf_field(b, r);
        buf_puts(b, "<button class=\"link\">log out</button></form>");
    } else {
        buf_puts(b, "<a href=\"/login\">log in</a><a href=\"/signup\">sign up</a>");
    }
    buf_puts(b, "</span></nav></header><main>");
}

static void page_end(struct buf *b, struct site_req *r)
{
    struct site *s = r->s;
    buf_printf(b, "</main><footer>served by node %" PRIu64 " at raft index %" PRIu64 " · <a href=\"/status\">cluster status</a> · <a href=\"/moderation\">moderation log</a>"
                  "</footer></body></html>\n",
               s->host.id(s->host.ctx), s->host.applied(s->host.ctx));
}

static void reply_page(struct site_req *r, int status, struct buf *b)
{
    site_reply(r, status, "text/html; charset=utf-8", NULL, b);
}

/* One link as a list item or the head of its own page. */
static void link_item(struct buf *b, struct site_req *r, const struct store_link *l, bool liked, const char *next)
{
    char domain[SITE_DOMAIN_CAP], ago[48], when[32];
    site_url_domain(l->url, domain, sizeof domain);
    site_relative_time(l->created_ms, now_of(r), ago, sizeof ago);
    site_rfc3339(l->created_ms, when);
    if (r->logged_in) {
        buf_printf(b, "<form method=\"post\" action=\"/link/%" PRId64 "/like\" class=\"like\">", l->id);
        csrf_field(b, r);
        buf_puts(b, "<input type=\"hidden\" name=\"next\" value=\"");
        esc(b, next);
        buf_printf(b, "\"><button class=\"up%s\" aria-label=\"%s\" title=\"%s\">&#9650;</button></form>",
                   liked ? " on" : "", liked ? "unlike" : "like", liked ? "unlike" : "like");
    } else {
        buf_puts(b, "<a class=\"up\" href=\"/login\" aria-label=\"log in to like\">&#9650;</a>");
    }
    if (l->url[0]) {
        buf_puts(b, " <a class=\"t\" href=\"");
        esc(b, l->url);
        buf_puts(b, "\" rel=\"nofollow ugc noopener\">");
    } else { /* a text post: its title leads to its page */
        buf_printf(b, " <a class=\"t\" href=\"/link/%" PRId64 "\">", l->id);
    }
    esc(b, l->title);
    buf_puts(b, "</a>");
    if (domain[0]) { /* the domain leads to its other links (/from/DOMAIN) */
        buf_puts(b, " <span class=\"dom\"><a href=\"/from/");
        esc(b, domain);
        buf_puts(b, "\">(");
        esc(b, domain);
        buf_puts(b, ")</a></span>");
    }
    buf_printf(b, "<div class=\"meta\">%" PRId64 " like%s · by <a href=\"/user/", l->likes, l->likes == 1 ? "" : "s");
    esc(b, l->author);
    buf_puts(b, "\">");
    esc(b, l->author);
    buf_printf(b, "</a> · <time datetime=\"%s\" title=\"%s\">%s</time> · <a href=\"/link/%" PRId64 "\">%" PRId64
                  " comment%s</a></div>",
               when, when, ago, l->id, l->comments, l->comments == 1 ? "" : "s");
}

static void link_list(struct buf *b, struct site_req *r, const struct store_link *links, size_t n, unsigned first,
                      const char *next)
{
    uint8_t liked[SITE_PAGE_LINKS] = { 0 };
    if (r->logged_in && n) {
        int64_t ids[SITE_PAGE_LINKS];
        for (size_t i = 0; i < n; i++)
            ids[i] = links[i].id;
        if (store_liked(store_of(r), r->user.id, ids, n, liked) != STORE_OK)
            memset(liked, 0, sizeof liked);
    }
    if (!n) {
        buf_puts(b, "<p>Nothing here yet. <a href=\"/submit\">Submit a link</a>.</p>");
        return;
    }
    buf_printf(b, "<ol class=\"links\" start=\"%u\">", first);
    for (size_t i = 0; i < n; i++) {
        buf_puts(b, "<li>");
        link_item(b, r, &links[i], liked[i], next);
        buf_puts(b, "</li>");
    }
    buf_puts(b, "</ol>");
}

/* ---- Lists --------------------------------------------------------------------- */

/* A cached list page answers r if it is still what a render would give
 * (struct site_page_cache). */
static bool list_from_cache(struct site_req *r, struct site_page_cache *pc)
{
    struct site *s = r->s;
    if (!pc || !pc->valid || pc->applied != s->host.applied(s->host.ctx) || now_of(r) >= pc->until_ms)
        return false;
    struct buf b;
    buf_init(&b);
    buf_append(&b, pc->body.p, pc->body.len);
    s->stats.page_cache_hits++;
    reply_page(r, 200, &b);
    return true;
}

static void list_to_cache(struct site_req *r, struct site_page_cache *pc, uint64_t applied, uint64_t now,
                          const struct store_link *links, size_t n, const struct buf *b)
{
    if (!pc || b->oom)
        return;
    uint64_t until = UINT64_MAX;
    for (size_t i = 0; i < n; i++) {
        uint64_t t = site_relative_time_next(links[i].created_ms, now);
        if (t < until)
            until = t;
    }
    pc->valid = false;
    buf_reset(&pc->body);
    buf_append(&pc->body, b->p, b->len);
    if (pc->body.oom) { /* no cache, no harm: the next request renders */
        buf_free(&pc->body);
        buf_init(&pc->body);
        return;
    }
    pc->applied = applied;
    pc->until_ms = until;
    pc->valid = true;
}

static void page_list(struct site_req *r)
{
    static const char *const paths[] = { "/", "/new", "/top" };
    static const char *const titles[] = { "Hot links", "New links", "Top links" };
    /* Only the first page for a visitor who is not logged in is cached:
     * that is the page nearly every visitor asks for. */
    struct site_page_cache *pc = !r->logged_in && r->page == 1 && r->sort >= 0 && r->sort < SITE_CACHED_SORTS
                                     ? &r->s->page_cache[r->sort] : NULL;
    if (list_from_cache(r, pc))
        return;
    /* Taken before reading: the store cannot change during this call (one
     * loop thread), and a clock read before rendering makes until_ms early,
     * never late. */
    uint64_t applied = r->s->host.applied(r->s->host.ctx), now = now_of(r);
    struct store_link *links = malloc((SITE_PAGE_LINKS + 1) * sizeof *links);
    size_t n = 0;
    if (!links || store_links(store_of(r), (enum store_sort)r->sort, SITE_PAGE_LINKS + 1,
                              (r->page - 1) * SITE_PAGE_LINKS, links, &n) != STORE_OK) {
        free(links);
        site_fail(r, 500, "internal", "cannot read the links");
        return;
    }
    bool more = n > SITE_PAGE_LINKS;
    if (more)
        n = SITE_PAGE_LINKS;
    char next[64];
    if (r->page > 1)
        snprintf(next, sizeof next, "%s?p=%u", paths[r->sort], r->page);
    else
        snprintf(next, sizeof next, "%s", paths[r->sort]);
    struct buf b;
    buf_init(&b);
    page_begin(&b, r, titles[r->sort]);
    buf_printf(&b, "<h1 class=\"dom\">%s</h1>", titles[r->sort]);
    link_list(&b, r, links, n, (r->page - 1) * SITE_PAGE_LINKS + 1, next);
    if (more)
        buf_printf(&b, "<p><a href=\"%s?p=%u\" rel=\"next\">More</a></p>", paths[r->sort], r->page + 1);
    page_end(&b, r);
    list_to_cache(r, pc, applied, now, links, n, &b);
    free(links);
    reply_page(r, 200, &b);
}

static void page_link(struct site_req *r)
{
    struct store_link *l = malloc(sizeof *l);
    int found = l ? store_link_get(store_of(r), r->id, l) : STORE_ENOMEM;
    if (found != 1) {
        free(l);
        site_page_error(r, found < 0 ? 500 : 404, found < 0 ? "cannot read the link" : "There is no such link.");
        return;
    }
    uint8_t liked = 0;
    if (r->logged_in && store_liked(store_of(r), r->user.id, &l->id, 1, &liked) != STORE_OK)
        liked = 0;
    char next[40];
    snprintf(next, sizeof next, "/link/%" PRId64, l->id);
    struct buf b;
    buf_init(&b);
    page_begin(&b, r, l->title);
    buf_puts(&b, "<article>");
    link_item(&b, r, l, liked, next);
    char *text = NULL;
    if (l->has_text && store_link_text(store_of(r), l->id, &text) == 1 && text) {
        buf_puts(&b, "<div class=\"ct\">");
        site_text_render(&b, text, strlen(text));
        buf_puts(&b, "</div>");
    }
    free(text);
    if (r->logged_in && !strcmp(l->author, r->user.name)) {
        buf_puts(&b, "<div class=\"meta\">");
        if (now_of(r) <= l->created_ms + COMMAND_EDIT_WINDOW_MS)
            buf_printf(&b, "<a href=\"/link/%" PRId64 "/edit\">edit</a> · ", l->id);
        buf_printf(&b, "<form method=\"post\" action=\"/link/%" PRId64 "/delete\" class=\"like\">", l->id);
        csrf_field(&b, r);
        buf_puts(&b, "<button class=\"link\">delete</button></form></div>");
    }
    site_flag_html(&b, r, l);
    buf_puts(&b, "</article>");
    site_thread_html(&b, r, l);
    page_end(&b, r);
    free(l);
    reply_page(r, 200, &b);
}

static void page_user(struct site_req *r)
{
    struct store_user u;
    int found = site_check_username(r->name, strlen(r->name)) ? 0
              : store_user_by_name(store_of(r), r->name, strlen(r->name), &u);
    if (found != 1) {
        site_page_error(r, found < 0 ? 500 : 404, found < 0 ? "cannot read the user" : "There is no such user.");
        return;
    }
    struct store_link *links = malloc((SITE_PAGE_LINKS + 1) * sizeof *links);
    size_t n = 0;
    if (!links || store_links_by_user(store_of(r), u.id, SITE_PAGE_LINKS + 1, (r->page - 1) * SITE_PAGE_LINKS, links,
                                      &n) != STORE_OK) {
        free(links);
        site_page_error(r, 500, "cannot read the user's links");
        return;
    }
    int64_t posted = 0, liked_count = 0;
    if (store_user_counts(store_of(r), u.id, &posted, &liked_count) != STORE_OK) {
        free(links);
        site_page_error(r, 500, "cannot count the user's links");
        return;
    }
    bool more = n > SITE_PAGE_LINKS;
    if (more)
        n = SITE_PAGE_LINKS;
    char since[32], next[64];
    site_rfc3339(u.created_ms, since);
    snprintf(next, sizeof next, "/user/%s", u.name);
    struct buf b;
    buf_init(&b);
    page_begin(&b, r, u.name);
    buf_puts(&b, "<h1>");
    esc(&b, u.name);
    buf_printf(&b, "</h1><p class=\"meta\">joined <time datetime=\"%s\">%.10s</time> · %" PRId64 " link%s posted · %" PRId64
                   " liked</p>",
               since, since, posted, posted == 1 ? "" : "s", liked_count);
    site_user_profile_html(&b, r, &u);
    link_list(&b, r, links, n, (r->page - 1) * SITE_PAGE_LINKS + 1, next);
    if (more) {
        buf_puts(&b, "<p><a href=\"/user/");
        esc(&b, u.name);
        buf_printf(&b, "?p=%u\" rel=\"next\">More</a></p>", r->page + 1);
    }
    page_end(&b, r);
    free(links);
    reply_page(r, 200, &b);
}

/* ---- Forms --------------------------------------------------------------------- */

static void form_page(struct site_req *r, int status, const char *error)
{
    struct buf b;
    buf_init(&b);
    const char *title = r->form == SITE_FORM_LOGIN ? "Log in" : r->form == SITE_FORM_SIGNUP ? "Sign up" : "Submit a link";
    const char *action = r->form == SITE_FORM_LOGIN ? "/login" : r->form == SITE_FORM_SIGNUP ? "/signup" : "/submit";
    page_begin(&b, r, title);
    buf_printf(&b, "<h1>%s</h1>", title);
    if (error) {
        buf_puts(&b, "<p class=\"err\" role=\"alert\">");
        esc(&b, error);
        buf_puts(&b, "</p>");
    }
    if (r->form == SITE_FORM_SUBMIT && !r->logged_in) {
        buf_puts(&b, "<p>You need to <a href=\"/login\">log in</a> or <a href=\"/signup\">sign up</a> to submit a link.</p>");
        page_end(&b, r);
        reply_page(r, status, &b);
        return;
    }
    buf_printf(&b, "<form class=\"box\" method=\"post\" action=\"%s\">", action);
    csrf_field(&b, r);
    /* Where a logged-out user was when they were sent here: a local path
     * only (site_local_path_ok), carried through the form and its errors so
     * that a successful login or sign-up returns them there. */
    if (r->form != SITE_FORM_SUBMIT) {
        if (!r->next[0]) {
            char next[sizeof r->next];
            long n = site_form_field(r->req->query, strlen(r->req->query), "next", next, sizeof next);
            if (n > 0 && (size_t)n == strlen(next) && site_local_path_ok(next))
                memcpy(r->next, next, (size_t)n + 1);
        }
        if (r->next[0]) {
            buf_puts(&b, "<input type=\"hidden\" name=\"next\" value=\"");
            esc(&b, r->next);
            buf_puts(&b, "\">");
        }
    }
    if (r->form == SITE_FORM_SUBMIT) {
        buf_puts(&b, "<label for=\"title\">Title</label><input id=\"title\" name=\"title\" required maxlength=\"200\" value=\"");
        if (r->link_in)
            site_html_escape(&b, r->link_in->title, r->link_in->title_len);
        buf_puts(&b, "\"><label for=\"url\">URL</label><input id=\"url\" name=\"url\" type=\"url\" maxlength=\"2048\" value=\"");
        if (r->link_in)
            esc(&b, r->link_in->url_in);
        buf_puts(&b, "\"><label for=\"text\">Text</label><textarea id=\"text\" name=\"text\" rows=\"5\">");
        if (r->text)
            esc(&b, r->text);
        buf_puts(&b, "</textarea><p class=\"meta\">A URL, a text, or both.</p><button>Submit</button>");
    } else {
        bool signup = r->form == SITE_FORM_SIGNUP;
        buf_puts(&b, "<label for=\"username\">Username</label><input id=\"username\" name=\"username\" required "
                     "autocomplete=\"username\" maxlength=\"20\"");
        if (signup)
            buf_puts(&b, " minlength=\"3\" pattern=\"[A-Za-z0-9_\\-]+\"");
        buf_puts(&b, " value=\"");
        esc(&b, r->username);
        buf_printf(&b, "\"><label for=\"password\">Password</label><input id=\"password\" name=\"password\" "
                       "type=\"password\" required maxlength=\"128\"%s autocomplete=\"%s\">",
                   signup ? " minlength=\"8\"" : "", signup ? "new-password" : "current-password");
        buf_printf(&b, "<button>%s</button>", title);
        if (signup)
            buf_puts(&b, "<p class=\"meta\">3 to 20 letters, digits, _ or -. Passwords: 8 to 128 characters.</p>");
    }
    buf_puts(&b, "</form>");
    if (r->form == SITE_FORM_LOGIN)
        buf_puts(&b, "<p>No account? <a href=\"/signup\">Sign up</a>.</p>");
    page_end(&b, r);
    reply_page(r, status, &b);
}

void site_page_error(struct site_req *r, int status, const char *message)
{
    if (r->form != SITE_FORM_NONE) {
        form_page(r, status, message);
        return;
    }
    struct buf b;
    buf_init(&b);
    char title[64];
    snprintf(title, sizeof title, "%d %s", status, status == 404 ? "Not Found" : status == 405 ? "Method Not Allowed"
                                                    : status == 403 ? "Forbidden" : status == 429 ? "Too Many Requests"
                                                    : status >= 500 ? "Unavailable" : "Error");
    page_begin(&b, r, title);
    buf_puts(&b, "<h1>");
    esc(&b, title);
    buf_puts(&b, "</h1><p>");
    esc(&b, message);
    buf_puts(&b, "</p><p><a href=\"/\">Front page</a></p>");
    page_end(&b, r);
    reply_page(r, status, &b);
}

static void page_form_get(struct site_req *r) { form_page(r, 200, NULL); }

/* A posted form's body: urlencoded, with this client's CSRF token. */
static bool form_ok(struct site_req *r)
{
    const struct http_request *req = r->req;
    char csrf[SITE_CSRF_HEX + 2];
    long n = site_form_field(req->body, req->body_len, "csrf", csrf, sizeof csrf);
    if (n < 0 || !site_csrf_ok(r, csrf, (size_t)n)) {
        int form = r->form;
        r->form = SITE_FORM_NONE; /* do not show the form with an error it cannot fix */
        (void)form;
        site_page_error(r, 403, "The form expired or came from another site (CSRF token mismatch). Go back, reload and try again.");
        return false;
    }
    char next[sizeof r->next];
    n = site_form_field(req->body, req->body_len, "next", next, sizeof next);
    if (n > 0 && site_local_path_ok(next))
        memcpy(r->next, next, (size_t)n + 1);
    return true;
}

static long field(struct site_req *r, const char *name, char *out, size_t cap)
{
    long n = site_form_field(r->req->body, r->req->body_len, name, out, cap);
    if (n == -1)
        out[0] = 0;
    return n;
}

static void page_auth_post(struct site_req *r)
{
    if (!form_ok(r))
        return;
    char pw[SITE_PASSWORD_MAX + 2];
    long un = field(r, "username", r->username, sizeof r->username);
    long pn = field(r, "password", pw, sizeof pw);
    if (un == -2) {
        r->username[0] = 0;
        site_fail(r, 400, "invalid", "a username is 3 to 20 characters");
        return;
    }
    if (r->form == SITE_FORM_SIGNUP) {
        if (pn == -2) {
            site_fail(r, 400, "invalid", "a password is at most 128 bytes");
            return;
        }
        r->password_len = pn > 0 ? (size_t)pn : 0;
        memcpy(r->password, pw, r->password_len);
        sodium_memzero(pw, sizeof pw);
        site_signup_begin(r);
        return;
    }
    /* Login: a password too long to be anyone's is still verified, and fails. */
    r->password_len = pn > 0 ? (size_t)pn : pn == -2 ? SITE_PASSWORD_MAX : 0;
    memcpy(r->password, pw, pn > 0 ? (size_t)pn : 0);
    r->bad_password = pn == -2;
    sodium_memzero(pw, sizeof pw);
    site_login_begin(r);
}

/* The optional text field of a posted form into r->text (absent or blank:
 * none). false after answering. */
static bool form_text_field(struct site_req *r)
{
    char *raw = malloc(r->req->body_len + 1);
    if (!raw) {
        site_page_error(r, 503, "out of memory");
        return false;
    }
    long n = site_form_field(r->req->body, r->req->body_len, "text", raw, r->req->body_len + 1);
    bool blank = true;
    for (long i = 0; i < n; i++)
        if (raw[i] != ' ' && raw[i] != '\r' && raw[i] != '\n' && raw[i] != '\t')
            blank = false;
    bool ok = n < 0 || blank || site_comment_text(r, raw, (size_t)n);
    free(raw);
    return ok;
}

static void page_submit_post(struct site_req *r)
{
    if (!form_ok(r))
        return;
    if (!r->logged_in) {
        site_redirect(r, "/login");
        return;
    }
    if (!(r->link_in = calloc(1, sizeof *r->link_in))) {
        site_page_error(r, 503, "out of memory");
        return;
    }
    long tn = field(r, "title", r->link_in->title, sizeof r->link_in->title);
    long un = field(r, "url", r->link_in->url_in, sizeof r->link_in->url_in);
    if (tn == -2 || un == -2) {
        r->link_in->title_len = 0;
        r->link_in->title[0] = r->link_in->url_in[0] = 0;
        site_fail(r, 400, "invalid", tn == -2 ? "a title is at most 200 characters" : "a URL is at most 2048 bytes");
        return;
    }
    r->link_in->title_len = tn > 0 ? (size_t)tn : 0;
    if (strlen(r->link_in->url_in) != (size_t)(un > 0 ? un : 0) || strlen(r->link_in->title) != r->link_in->title_len) {
        site_fail(r, 400, "invalid", "the form contains a NUL character");
        return;
    }
    if (!form_text_field(r))
        return;
    site_post_begin(r);
}

static void page_logout_post(struct site_req *r)
{
    if (form_ok(r))
        site_logout_begin(r);
}

/* POST /link/ID/like toggles: like if this user does not, else unlike. */
static void page_like_post(struct site_req *r)
{
    if (!form_ok(r))
        return;
    if (!r->logged_in) {
        site_redirect(r, "/login");
        return;
    }
    uint8_t liked = 0;
    if (store_liked(store_of(r), r->user.id, &r->id, 1, &liked) != STORE_OK) {
        site_page_error(r, 500, "cannot read likes");
        return;
    }
    r->like_on = !liked;
    site_like_begin(r);
}

/* ---- Editing and deleting a link ---------------------------------------------------- */

static void page_link_edit_get(struct site_req *r)
{
    struct store_link *l = malloc(sizeof *l);
    int found = l ? store_link_get(store_of(r), r->id, l) : STORE_ENOMEM;
    if (found != 1) {
        free(l);
        site_page_error(r, found < 0 ? 500 : 404, found < 0 ? "cannot read the link" : "There is no such link.");
        return;
    }
    if (!r->logged_in || strcmp(l->author, r->user.name) || now_of(r) > l->created_ms + COMMAND_EDIT_WINDOW_MS) {
        free(l);
        site_page_error(r, 403, "Only its author may edit a link, within 2 hours of posting.");
        return;
    }
    char *text = NULL;
    if (l->has_text && store_link_text(store_of(r), l->id, &text) != 1)
        text = NULL;
    struct buf b;
    buf_init(&b);
    page_begin(&b, r, "Edit a link");
    buf_printf(&b, "<h1>Edit a link</h1><form class=\"box\" method=\"post\" action=\"/link/%" PRId64 "/edit\">", l->id);
    csrf_field(&b, r);
    buf_puts(&b, "<label for=\"title\">Title</label><input id=\"title\" name=\"title\" required maxlength=\"200\" value=\"");
    esc(&b, l->title);
    buf_puts(&b, "\"><label for=\"text\">Text</label><textarea id=\"text\" name=\"text\" rows=\"6\">");
    if (text)
        esc(&b, text);
    buf_puts(&b, "</textarea><button>Save</button></form>");
    page_end(&b, r);
    free(text);
    free(l);
    reply_page(r, 200, &b);
}

static void page_link_edit_post(struct site_req *r)
{
    if (!form_ok(r))
        return;
    if (!(r->link_in = calloc(1, sizeof *r->link_in))) {
        site_page_error(r, 503, "out of memory");
        return;
    }
    long tn = field(r, "title", r->link_in->title, sizeof r->link_in->title);
    if (tn == -2 || (tn >= 0 && strlen(r->link_in->title) != (size_t)tn)) {
        site_page_error(r, 400, "A title is at most 200 characters, without NUL characters.");
        return;
    }
    r->link_in->title_len = tn > 0 ? (size_t)tn : 0;
    if (form_text_field(r))
        site_link_edit_begin(r);
}

static void page_link_delete_post(struct site_req *r)
{
    if (form_ok(r))
        site_link_delete_begin(r);
}

/* ---- Status ---------------------------------------------------------------------- */

static void page_status(struct site_req *r)
{
    struct site *s = r->s;
    struct buf b, cj;
    buf_init(&b);
    buf_init(&cj);
    page_begin(&b, r, "Cluster status");
    buf_printf(&b, "<h1>Cluster status</h1><p>This page was served by <strong>node %" PRIu64 "</strong> at applied index %" PRIu64
                   ".</p>",
               s->host.id(s->host.ctx), s->host.applied(s->host.ctx));
    struct json_doc doc = { 0 };
    char err[128];
    if (s->host.cluster_json)
        s->host.cluster_json(s->host.ctx, &cj);
    if (cj.len && !cj.oom && json_parse(&doc, cj.p, cj.len, err, sizeof err) == 0) {
        const struct json *leader = json_get(doc.root, "leader"), *term = json_get(doc.root, "term");
        const struct json *members = json_get(doc.root, "members");
        buf_printf(&b, "<p>Leader: %s%" PRId64 " · term %" PRId64 "</p>",
                   leader && leader->is_int && leader->i ? "node " : "none known ",
                   leader && leader->is_int ? leader->i : 0, term && term->is_int ? term->i : 0);
        buf_puts(&b, "<table><thead><tr><th scope=\"col\">node</th><th scope=\"col\">role</th><th scope=\"col\">commit</th>"
                     "<th scope=\"col\">applied</th><th scope=\"col\">reachable</th></tr></thead><tbody>");
        for (const struct json *m = members && members->type == JSON_ARRAY ? members->child : NULL; m; m = m->next) {
            const struct json *id = json_get(m, "id"), *commit = json_get(m, "commit"), *applied = json_get(m, "applied");
            const struct json *reach = json_get(m, "reachable");
            const char *role = json_get_str(m, "role", NULL);
            buf_printf(&b, "<tr><td>%" PRId64 "</td><td>", id && id->is_int ? id->i : 0);
            esc(&b, role ? role : "?");
            buf_puts(&b, "</td><td>");
            if (commit && commit->is_int)
                buf_printf(&b, "%" PRId64, commit->i);
            else
                buf_puts(&b, "–");
            buf_puts(&b, "</td><td>");
            if (applied && applied->is_int)
                buf_printf(&b, "%" PRId64, applied->i);
            else
                buf_puts(&b, "–");
            buf_printf(&b, "</td><td>%s</td></tr>", reach && reach->type == JSON_BOOL ? (reach->b ? "yes" : "no") : "?");
        }
        buf_puts(&b, "</tbody></table>");
        json_free(&doc);
    } else {
        buf_puts(&b, "<p>The cluster view is not available on this node.</p>");
    }
    buf_free(&cj);
    int64_t users = 0, links = 0;
    if (store_counts(store_of(r), &users, &links) == STORE_OK)
        buf_printf(&b, "<p>%" PRId64 " users · %" PRId64 " links</p>", users, links);
    page_end(&b, r);
    reply_page(r, 200, &b);
}

static void page_css(struct site_req *r, bool versioned)
{
    struct buf b;
    buf_init(&b);
    buf_append(&b, site_css, sizeof site_css - 1);
    site_reply(r, 200, "text/css; charset=utf-8",
               versioned ? "Cache-Control: public, max-age=31536000, immutable\r\n" : "Cache-Control: public, max-age=300\r\n",
               &b);
}

/* A small icon, so browsers do not ask for /favicon.ico and get a 404. */
static const char site_icon[] =
    "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\"><rect width=\"16\" height=\"16\" rx=\"3\" "
    "fill=\"#d9480f\"/><path d=\"M4 3h2v8h6v2H4z\" fill=\"#fff\"/></svg>";

static void page_icon(struct site_req *r)
{
    struct buf b;
    buf_init(&b);
    buf_append(&b, site_icon, sizeof site_icon - 1);
    site_reply(r, 200, "image/svg+xml", "Cache-Control: public, max-age=86400\r\n", &b);
}

static void css_versioned(struct site_req *r) { page_css(r, true); }
static void css_plain(struct site_req *r) { page_css(r, false); }
static void page_not_found(struct site_req *r) { site_page_error(r, 404, "There is nothing at this address."); }

/* ---- Routes ---------------------------------------------------------------------- */

/* ?p=N, 1..SITE_MAX_PAGE; anything else is page 1. */
static unsigned page_param(const struct http_request *req)
{
    char v[16];
    uint64_t p;
    long n = site_form_field(req->query, strlen(req->query), "p", v, sizeof v);
    return n > 0 && site_parse_uint(v, (size_t)n, 1, SITE_MAX_PAGE, &p) ? (unsigned)p : 1;
}

bool site_pages_route(struct site_req *r, const char *path, bool *answered)
{
    *answered = false;
    r->page = page_param(r->req);
    if (!strcmp(path, "/") || !strcmp(path, "/new") || !strcmp(path, "/top")) {
        r->sort = path[1] == 'n' ? STORE_SORT_NEW : path[1] == 't' ? STORE_SORT_TOP : STORE_SORT_HOT;
        return site_route(r, page_list, NULL, answered);
    }
    if (!strcmp(path, "/login") || !strcmp(path, "/signup") || !strcmp(path, "/submit")) {
        r->form = path[2] == 'o' ? SITE_FORM_LOGIN : path[2] == 'i' ? SITE_FORM_SIGNUP : SITE_FORM_SUBMIT;
        return site_route(r, page_form_get, r->form == SITE_FORM_SUBMIT ? page_submit_post : page_auth_post, answered);
    }
    if (!strcmp(path, "/logout"))
        return site_route(r, NULL, page_logout_post, answered);
    if (site_finding_route(r, path, answered))
        return true;
    if (!strcmp(path, "/status"))
        return site_route(r, page_status, NULL, answered);
    if (!strcmp(path, CSS_PATH))
        return site_route(r, css_versioned, NULL, answered);
    if (!strcmp(path, "/static/site.css"))
        return site_route(r, css_plain, NULL, answered);
    if (!strcmp(path, "/favicon.svg") || !strcmp(path, "/favicon.ico"))
        return site_route(r, page_icon, NULL, answered);
    if (!strncmp(path, "/link/", 6)) {
        const char *idp = path + 6, *slash = strchr(idp, '/');
        size_t idlen = slash ? (size_t)(slash - idp) : strlen(idp);
        if (site_parse_id(idp, idlen, &r->id)) {
            if (!slash)
                return site_route(r, page_link, NULL, answered);
            if (!strcmp(slash, "/like"))
                return site_route(r, NULL, page_like_post, answered);
            if (!strcmp(slash, "/comment"))
                return site_thread_route(r, path, answered);
            if (!strcmp(slash, "/edit"))
                return site_route(r, page_link_edit_get, page_link_edit_post, answered);
            if (!strcmp(slash, "/delete"))
                return site_route(r, NULL, page_link_delete_post, answered);
        }
    }
    if (!strncmp(path, "/comment/", 9) && site_thread_route(r, path, answered))
        return true;
    if ((!strncmp(path, "/settings", 9) || !strncmp(path, "/user/", 6)) && site_users_page_route(r, path, answered))
        return true;
    if (!strncmp(path, "/user/", 6) && strlen(path + 6) <= SITE_NAME_MAX && !strchr(path + 6, '/')) {
        snprintf(r->name, sizeof r->name, "%s", path + 6);
        return site_route(r, page_user, NULL, answered);
    }
    /* Everything else is the site's 404 page, after the read barrier like
     * any page (it shows who is logged in). */
    r->step = page_not_found;
    return true;
}

/* ---- For thread.c ------------------------------------------------------------------ */

void site_page_begin(struct buf *b, struct site_req *r, const char *title) { page_begin(b, r, title); }
void site_page_end(struct buf *b, struct site_req *r) { page_end(b, r); }
void site_page_send(struct site_req *r, int status, struct buf *b) { reply_page(r, status, b); }
void site_csrf_field(struct buf *b, struct site_req *r) { csrf_field(b, r); }
void site_link_list(struct buf *b, struct site_req *r, const struct store_link *links, size_t n, unsigned first,
                    const char *next)
{
    link_list(b, r, links, n, first, next);
}
bool site_form_ok(struct site_req *r) { return form_ok(r); }
