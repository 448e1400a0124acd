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

#include "site/internal.h"
#include "site/text.h"

#define CSS_PATH "/static/site.v4.css"

static const char site_css[] =
    /* --on-accent: text on an accent background, 4.5:1 or more in both
     * schemes (white on the dark scheme's light orange was 2.26:1). */
    ":root{--bg:#fdfdfb;--fg:#1d1d1f;--muted:#6b6b70;--accent:#c2410c;--on-accent:#fff;--line:#e5e5e0;--box:#fff;"
    "--err:#b91c1c}\n"
    "@media (prefers-color-scheme:dark){:root{--bg:#141416;--fg:#e8e8ea;--muted:#9a9aa2;"
    "--accent:#fb923c;--on-accent:#141416;--line:#2c2c31;--box:#1c1c1f;--err:#f87171}}\n"
    "*{box-sizing:border-box}\n"
    "body{margin:0 auto;max-width:52rem;padding:0 .75rem;background:var(--bg);color:var(--fg);"
    "font:16px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif}\n"
    "a{color:inherit}a:hover{color:var(--accent)}\n"
    ".skip{position:absolute;left:-999px;top:.3rem;background:var(--box);padding:.3rem .6rem}.skip:focus{left:.5rem}\n"
    "header nav{display:flex;flex-wrap:wrap;gap:.4rem 1rem;align-items:center;padding:.6rem 0;"
    "border-bottom:2px solid var(--accent)}\n"
    ".brand{font-weight:700;text-decoration:none;color:var(--accent)}\n"
    ".me{margin-left:auto;display:flex;gap:.6rem;align-items:center}\n"
    ".flash{border-left:4px solid var(--accent);background:var(--box);padding:.4rem .7rem;margin:.8rem 0}\n"
    "ol.links{padding-left:2.2rem}ol.links li{margin:.55rem 0}\n"
    /* Every control at least 24x24 (WCAG 2.5.8): a short title beside its
     * domain's link would otherwise be two small targets side by side. */
    ".t{font-size:1.05rem;text-decoration:none;display:inline-block;min-width:24px;min-height:24px}"
    "h1.t{display:inline;font-weight:600;margin:0}h1.t a{padding:2px 0}\n"
    ".dom,.meta,footer{color:var(--muted);font-size:.85rem}.dom a{display:inline-block;min-height:24px;"
    "line-height:24px}\n"
    "form.like{display:inline}\n"
    /* The header's search box; a moderator's one-line forms (reason, button). */
    "form.hs{display:flex;gap:.3rem;align-items:center}form.hs input{width:9rem;padding:.2rem .4rem;"
    "border:1px solid var(--line);border-radius:.25rem;background:var(--box);color:var(--fg)}\n"
    "form.mod{display:flex;flex-wrap:wrap;gap:.4rem;align-items:center;margin:.5rem 0;font-size:.9rem}"
    "form.mod input{padding:.25rem .4rem;border:1px solid var(--line);border-radius:.25rem;background:var(--box);"
    "color:var(--fg);min-width:12rem}\n"
    "form.box textarea{font:inherit}blockquote{margin:.5rem 0;padding-left:.7rem;border-left:3px solid var(--line)}\n"
    "button,input{font:inherit}\n"
    /* The like control: 24x24 at least (WCAG 2.5.8), and liked shown by
     * an underline bar as well as by colour (WCAG 1.4.1). */
    ".up{display:inline-block;min-width:24px;min-height:24px;line-height:24px;text-align:center;text-decoration:none;"
    "vertical-align:middle}\n"
    "button.up{border:0;background:none;color:var(--muted);cursor:pointer;padding:0 .2rem}\n"
    "button.up.on{color:var(--accent);box-shadow:inset 0 -3px currentColor}\n"
    "button.link{border:0;background:none;color:inherit;text-decoration:underline;cursor:pointer;padding:0;"
    "min-width:24px;min-height:24px}\n"
    "form.box{display:grid;gap:.5rem;max-width:28rem;background:var(--box);border:1px solid var(--line);"
    "padding:1rem;border-radius:.4rem}\n"
    "form.box input{padding:.4rem;border:1px solid var(--line);border-radius:.25rem;background:var(--bg);color:var(--fg)}\n"
    "form.box button{padding:.45rem;border:0;border-radius:.25rem;background:var(--accent);color:var(--on-accent)}\n"
    ".err{color:var(--err);font-weight:600}[aria-invalid=true]{border-color:var(--err)!important}\n"
    ".scroll{overflow-x:auto}\n"
    "table{border-collapse:collapse;width:100%}td,th{padding:.3rem .5rem;border-bottom:1px solid var(--line);"
    "text-align:left}\n"
    "footer{margin:2rem 0 1rem;border-top:1px solid var(--line);padding-top:.5rem}\n"
    /* The thread: nested lists, each level indented with a guide line. */
    ".cs,.cs ul{list-style:none;margin:0;padding:0}.cs ul{padding-left:1rem;border-left:1px solid var(--line)}\n"
    ".cs li{margin:.7rem 0 0 .2rem;overflow-wrap:anywhere}.cs li>div{color:var(--muted);font-size:.85rem}\n"
    ".cs p,.ct p{margin:.2rem 0}.cs pre,.ct pre{overflow-x:auto;margin:.3rem 0}.ct{overflow-wrap:anywhere}\n"
    "form.box textarea{font:inherit;padding:.4rem;border:1px solid var(--line);border-radius:.25rem;"
    "background:var(--bg);color:var(--fg)}\n";

static struct store *store_of(struct site_req *r) { return r->s->host.store(r->s->host.ctx); }
static uint64_t now_of(struct site_req *r) { return r->s->host.now_ms(r->s->host.ctx); }

static void esc(struct buf *b, const char *s) { site_html_escape(b, s, strlen(s)); }

static void csrf_field(struct buf *b, struct site_req *r)
{
    r->csrf_used = true; /* this answer is this visitor's alone (site_reply) */
    buf_printf(b, "<input type=\"hidden\" name=\"csrf\" value=\"%s\">", r->csrf);
}

/* The one-time messages (enum site_flash): the cookie's value, the text. */
static const struct { const char *name, *text; } flashes[SITE_FLASH_COUNT] = {
    [SITE_FLASH_SIGNUP] = { "signup", "Welcome! Your account is created and you are logged in." },
    [SITE_FLASH_LOGIN] = { "login", "You are logged in." },
    [SITE_FLASH_LOGOUT] = { "logout", "You are logged out." },
    [SITE_FLASH_POSTED] = { "posted", "Your link is posted." },
    [SITE_FLASH_DUPLICATE] = { "dup", "That URL was already posted \xe2\x80\x94 here it is." },
    [SITE_FLASH_DELETED] = { "deleted", "Your link is deleted." },
    [SITE_FLASH_MOD_DELETED] = { "moddel", "Deleted. The moderation log below shows it, with your reason." },
    [SITE_FLASH_BANNED] = { "banned", "The user is banned: their sessions are ended and their writes refused." },
    [SITE_FLASH_UNBANNED] = { "unbanned", "The ban is lifted." },
    [SITE_FLASH_FLAGGED] = { "flagged", "Your flag is counted. Thank you: five flags take a link off hot and new." },
    [SITE_FLASH_UNFLAGGED] = { "unflagged", "Your flag is taken back." },
    [SITE_FLASH_COMMENT_FLAGGED] = { "cflagged", "Your flag on the comment is counted. Thank you." },
};

void site_flash_read(struct site_req *r)
{
    char v[16];
    if (!site_cookie(r->req, "lr_flash", v, sizeof v))
        return;
    for (int i = 1; i < SITE_FLASH_COUNT; i++)
        if (!strcmp(v, flashes[i].name))
            r->flash = i;
}

void site_flash_set(struct site_req *r, enum site_flash f)
{
    /* A minute is plenty for a redirect to be followed; a message that was
     * never shown (the browser went elsewhere) must not surface later. */
    buf_printf(&r->hdrs, "Set-Cookie: lr_flash=%s; Path=/; HttpOnly; SameSite=Lax; Max-Age=60%s\r\n",
               flashes[f].name, r->req->secure ? "; Secure" : "");
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
                "<a class=\"skip\" href=\"#main\">Skip to content</a>"
                "<header><nav aria-label=\"main\"><a class=\"brand\" href=\"/\">linkraft</a>"
                "<a href=\"/new\">new</a><a href=\"/top\">top</a><a href=\"/submit\">submit</a>"
                /* The search box: a GET form, so it works without JavaScript. */
                "<form class=\"hs\" method=\"get\" action=\"/search\" role=\"search\" aria-label=\"site\"><input type=\"search\" "
                "name=\"q\" aria-label=\"Search links\" placeholder=\"search\" maxlength=\"2000\">"
                "<button class=\"link\">search</button></form><span class=\"me\">");
    if (r->logged_in) {
        buf_puts(b, "<a href=\"/user/");
        esc(b, r->user.name);
        buf_puts(b, "\">");
        esc(b, r->user.name);
        buf_puts(b, "</a><a href=\"/settings\">settings</a><form method=\"post\" action=\"/logout\" class=\"like\">");
        csrf_field(b, r);
        buf_puts(b, "<button class=\"link\">log out</button></form>");
    } else {
        /* From a page, logging in returns to it (a local path of ours). */
        const char *path = r->req->path;
        bool back = r->head_or_get && strcmp(path, "/") && strcmp(path, "/login") && strcmp(path, "/signup") &&
                    strlen(path) < 200 && site_local_path_ok(path);
        buf_puts(b, "<a href=\"/login");
        if (back) {
            buf_puts(b, "?next=");
            esc(b, path);
        }
        buf_puts(b, "\">log in</a><a href=\"/signup\">sign up</a>");
    }
    buf_puts(b, "</span></nav></header><main id=\"main\">");
    if (r->flash > SITE_FLASH_NONE && r->flash < SITE_FLASH_COUNT) {
        buf_printf(b, "<p class=\"flash\" role=\"status\">%s</p>", flashes[r->flash].text);
        buf_printf(&r->hdrs, "Set-Cookie: lr_flash=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0%s\r\n",
                   r->req->secure ? "; Secure" : "");
        r->flash = SITE_FLASH_NONE; /* once, even if a page began twice */
    }
}

/* Which node served a page and at what index is operator detail: it is on
 * /status (and in every response's X-Served-By and X-Raft-Index). */
static void page_end(struct buf *b, struct site_req *r)
{
    (void)r;
    buf_puts(b, "</main><footer><a href=\"/status\">cluster status</a> · <a href=\"/moderation\">moderation log</a>"
                " · <a href=\"/feed\" type=\"application/atom+xml\">feed of new links</a></footer></body></html>\n");
}

static void reply_page(struct site_req *r, int status, struct buf *b)
{
    site_reply(r, status, "text/html; charset=utf-8", NULL, b);
}

/* One link as a list item or, with heading, the head of its own page (its
 * title is the page's <h1>). next: where a like returns to. */
static void link_item(struct buf *b, struct site_req *r, const struct store_link *l, bool liked, const char *next,
                      bool heading)
{
    char ascii[SITE_DOMAIN_CAP], domain[SITE_DOMAIN_CAP], ago[48], when[32];
    site_url_domain(l->url, ascii, sizeof ascii);
    site_domain_display(ascii, domain, sizeof domain);
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
        buf_puts(b, "<a class=\"up\" href=\"/login?next=");
        esc(b, next);
        buf_puts(b, "\" aria-label=\"log in to like\">&#9650;</a>");
    }
    buf_puts(b, heading ? " <h1 class=\"t\">" : " ");
    if (l->url[0]) {
        buf_puts(b, heading ? "<a href=\"" : "<a class=\"t\" href=\"");
        esc(b, l->url);
        buf_puts(b, "\" rel=\"nofollow ugc noopener\">");
    } else { /* a text post: its title leads to its page */
        buf_printf(b, "<a%s href=\"/link/%" PRId64 "\">", heading ? "" : " class=\"t\"", l->id);
    }
    esc(b, l->title);
    buf_puts(b, heading ? "</a></h1>" : "</a>");
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
        if (first > 1) /* ?p= past the end: there were links, just not this many */
            buf_printf(b, "<p>No more links: this list has fewer than %u. <a href=\"%.*s\">Back to its first page</a>.</p>",
                       first, (int)strcspn(next, "?"), next);
        else
            buf_puts(b, "<p>Nothing here yet. <a href=\"/submit\">Submit a link</a>.</p>");
        return;
    }
    buf_printf(b, "<ol class=\"links\" start=\"%u\">", first);
    for (size_t i = 0; i < n; i++) {
        /* The row's id: a like returns the user to it (#lID). */
        buf_printf(b, "<li id=\"l%" PRId64 "\">", links[i].id);
        link_item(b, r, &links[i], liked[i], next, false);
        buf_puts(b, "</li>");
    }
    buf_puts(b, "</ol>");
}

/* ---- Lists --------------------------------------------------------------------- */

/* A cached page answers r if it is the page of key and still what a
 * render would give (struct site_page_cache). */
static bool cache_serve(struct site_req *r, struct site_page_cache *pc, int64_t key)
{
    struct site *s = r->s;
    if (!pc || !pc->valid || pc->key != key || pc->applied != s->host.applied(s->host.ctx) ||
        now_of(r) >= pc->until_ms)
        return false;
    s->stats.page_cache_hits++;
    memcpy(r->etag, pc->etag, sizeof r->etag);
    r->rendered_ms = pc->rendered_ms;
    r->lent = site_shared_ref(pc->body);
    r->lent_gz = pc->gz ? site_shared_ref(pc->gz) : NULL;
    struct buf b;
    buf_init(&b);
    reply_page(r, 200, &b);
    return true;
}

/* Keeps page b of key, rendered at applied and valid until until_ms; and
 * its gzip form, compressed now once rather than per request. */
static void cache_keep(struct site_page_cache *pc, int64_t key, uint64_t applied, uint64_t now, uint64_t until_ms,
                       const struct buf *b)
{
    if (!pc || b->oom)
        return;
    pc->valid = false;
    site_shared_unref(pc->body);
    site_shared_unref(pc->gz);
    pc->gz = NULL; /* a cache without it still serves; a hit compresses per request */
    if (!(pc->body = site_shared_new(b->p, b->len)))
        return; /* no cache, no harm: the next request renders */
    size_t n = 0;
    char *gz = b->len >= SITE_GZIP_MIN ? site_gzip(b->p, b->len, &n) : NULL;
    if (gz)
        pc->gz = site_shared_new(gz, n);
    free(gz);
    pc->key = key;
    pc->applied = applied;
    pc->until_ms = until_ms;
    pc->rendered_ms = now;
    site_etag(b->p, b->len, pc->etag);
    pc->valid = true;
}

/* The first moment one of these links' "N minutes ago" reads differently. */
static uint64_t links_until(const struct store_link *links, size_t n, uint64_t now)
{
    uint64_t until = UINT64_MAX;
    for (size_t i = 0; i < n; i++) {
        uint64_t t = site_relative_time_next(links[i].created_ms, now);
        if (t < until)
            until = t;
    }
    return until;
}

static void page_list(struct site_req *r)
{
    static const char *const paths[] = { "/", "/new", "/top" };
    static const char *const titles[] = { "Hot links", "New links", "Top links" };
    /* Only the first page for a visitor who is not logged in is cached:
     * that is the page nearly every visitor asks for. */
    struct site_page_cache *pc = !r->logged_in && !r->flash && r->page == 1 && r->sort >= 0 &&
                                         r->sort < SITE_CACHED_SORTS
                                     ? &r->s->page_cache[r->sort] : NULL;
    if (cache_serve(r, pc, r->sort))
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
    cache_keep(pc, r->sort, applied, now, links_until(links, n, now), &b);
    free(links);
    reply_page(r, 200, &b);
}

static void page_link(struct site_req *r)
{
    /* A visitor who is not logged in gets the same page as every other
     * (no name, no forms, no liked marks): a discussion being read by many
     * is rendered once per change, not once per reader. */
    struct site_page_cache *pc = !r->logged_in && !r->flash ? &r->s->link_cache[r->id % SITE_CACHED_LINKS] : NULL;
    if (cache_serve(r, pc, r->id))
        return;
    uint64_t applied = r->s->host.applied(r->s->host.ctx), now = now_of(r);
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
    buf_printf(&b, "<article id=\"l%" PRId64 "\">", l->id);
    link_item(&b, r, l, liked, next, true);
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
    site_mod_link_html(&b, r, l);
    buf_puts(&b, "</article>");
    uint64_t until = links_until(l, 1, now);
    site_thread_html(&b, r, l, now, &until);
    page_end(&b, r);
    free(l);
    cache_keep(pc, r->id, applied, now, until, &b);
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
    site_mod_user_html(&b, r, &u);
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

/* The attributes tying a form field to the error shown above the form: the
 * field the error is about is invalid; with no such field (a wrong
 * password, say, could be either), every field is described by it. */
static void field_err(struct buf *b, struct site_req *r, const char *error, const char *name)
{
    if (!error)
        return;
    if (!r->bad_field)
        buf_puts(b, " aria-describedby=\"form-err\"");
    else if (!strcmp(r->bad_field, name))
        buf_puts(b, " aria-invalid=\"true\" aria-describedby=\"form-err\"");
}

static void form_page(struct site_req *r, int status, const char *error)
{
    struct buf b;
    buf_init(&b);
    const char *title = r->form == SITE_FORM_LOGIN ? "Log in" : r->form == SITE_FORM_SIGNUP ? "Sign up" : "Submit a link";
    const char *action = r->form == SITE_FORM_LOGIN ? "/login" : r->form == SITE_FORM_SIGNUP ? "/signup" : "/submit";
    page_begin(&b, r, title);
    buf_printf(&b, "<h1>%s</h1>", title);
    if (error) {
        buf_puts(&b, "<p class=\"err\" role=\"alert\" id=\"form-err\">");
        site_html_sentence(&b, error);
        buf_puts(&b, "</p>");
    }
    if (r->form == SITE_FORM_SUBMIT && !r->logged_in) {
        buf_puts(&b, "<p>You need to <a href=\"/login?next=/submit\">log in</a> or <a href=\"/signup?next=/submit\">sign "
                     "up</a> to submit a link.</p>");
        page_end(&b, r);
        reply_page(r, status, &b);
        return;
    }
    if (r->form != SITE_FORM_SUBMIT && r->logged_in) {
        /* Someone logged in has no use for these forms; say who they are. */
        buf_puts(&b, "<p>You are logged in as <a href=\"/user/");
        esc(&b, r->user.name);
        buf_puts(&b, "\">");
        esc(&b, r->user.name);
        buf_puts(&b, "</a>. To use another account, log out first (at the top of the page).</p>");
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
        buf_puts(&b, "<label for=\"title\">Title</label><input id=\"title\" name=\"title\" required maxlength=\"200\"");
        field_err(&b, r, error, "title");
        buf_puts(&b, " value=\"");
        if (r->link_in)
            site_html_escape(&b, r->link_in->title, r->link_in->title_len);
        buf_puts(&b, "\"><label for=\"url\">URL</label><input id=\"url\" name=\"url\" type=\"url\" maxlength=\"2048\"");
        field_err(&b, r, error, "url");
        buf_puts(&b, " value=\"");
        if (r->link_in)
            esc(&b, r->link_in->url_in);
        buf_puts(&b, "\"><label for=\"text\">Text</label><textarea id=\"text\" name=\"text\" rows=\"5\"");
        field_err(&b, r, error, "text");
        buf_puts(&b, ">");
        if (r->text)
            esc(&b, r->text);
        buf_puts(&b, "</textarea><p class=\"meta\">A URL, a text, or both.</p><button>Submit</button>");
    } else {
        bool signup = r->form == SITE_FORM_SIGNUP;
        buf_puts(&b, "<label for=\"username\">Username</label><input id=\"username\" name=\"username\" required "
                     "autocomplete=\"username\" maxlength=\"20\"");
        if (signup)
            buf_puts(&b, " minlength=\"3\" pattern=\"[A-Za-z0-9_\\-]+\"");
        field_err(&b, r, error, "username");
        buf_puts(&b, " value=\"");
        esc(&b, r->username);
        buf_printf(&b, "\"><label for=\"password\">Password</label><input id=\"password\" name=\"password\" "
                       "type=\"password\" required maxlength=\"128\"%s autocomplete=\"%s\"",
                   signup ? " minlength=\"8\"" : "", signup ? "new-password" : "current-password");
        field_err(&b, r, error, "password");
        buf_printf(&b, "><button>%s</button>", title);
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
    site_html_sentence(&b, message);
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
        r->bad_field = "username";
        site_fail(r, 400, "invalid", "a username is 3 to 20 characters");
        return;
    }
    if (r->form == SITE_FORM_SIGNUP) {
        if (pn == -2) {
            r->bad_field = "password";
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
        r->bad_field = tn == -2 ? "title" : "url";
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

/* An index from a member's JSON. Where this node does not have it (null),
 * what it can vouch for instead: a lower bound ("≥ N", when at_least is
 * not NULL), else that it is not known here. */
static void index_cell(struct buf *b, const struct json *v, const struct json *at_least)
{
    if (v && v->is_int)
        buf_printf(b, "<td>%" PRId64 "</td>", v->i);
    else if (at_least && at_least->is_int)
        buf_printf(b, "<td>\xe2\x89\xa5\xc2\xa0%" PRId64 "</td>", at_least->i);
    else
        buf_puts(b, "<td class=\"meta\">not known here</td>");
}

static void page_status(struct site_req *r)
{
    struct site *s = r->s;
    r->shareable = false; /* it names the node that served it */
    struct buf b, cj;
    buf_init(&b);
    buf_init(&cj);
    uint64_t self = s->host.id(s->host.ctx);
    page_begin(&b, r, "Cluster status");
    buf_printf(&b, "<h1>Cluster status</h1><p>This page was served by <strong>node %" PRIu64 "</strong> at raft index %" PRIu64
                   ".</p>",
               self, s->host.applied(s->host.ctx));
    struct json_doc doc = { 0 };
    char err[128];
    if (s->host.cluster_json)
        s->host.cluster_json(s->host.ctx, &cj);
    if (cj.len && !cj.oom && json_parse(&doc, cj.p, cj.len, err, sizeof err) == 0) {
        const struct json *leader = json_get(doc.root, "leader"), *term = json_get(doc.root, "term");
        const struct json *members = json_get(doc.root, "members");
        bool self_leads = leader && leader->is_int && (uint64_t)leader->i == self;
        buf_printf(&b, "<p>Leader: %s%" PRId64 " · term %" PRId64 "</p>",
                   leader && leader->is_int && leader->i ? "node " : "none known ",
                   leader && leader->is_int ? leader->i : 0, term && term->is_int ? term->i : 0);
        /* "match": how much of a member's log is known to match the
         * leader's (its replication progress); only the leader has it. */
        buf_puts(&b, "<div class=\"scroll\" tabindex=\"0\" role=\"region\" aria-label=\"members\"><table><thead><tr><th scope=\"col\">node</th><th scope=\"col\">role</th>"
                     "<th scope=\"col\">match</th><th scope=\"col\">commit</th><th scope=\"col\">applied</th>"
                     "</tr></thead><tbody>");
        for (const struct json *m = members && members->type == JSON_ARRAY ? members->child : NULL; m; m = m->next) {
            const struct json *id = json_get(m, "id"), *reach = json_get(m, "reachable");
            const char *role = json_get_str(m, "role", NULL);
            bool is_self = id && id->is_int && (uint64_t)id->i == self;
            bool reachable = reach && reach->type == JSON_BOOL && reach->b;
            buf_printf(&b, "<tr><td>%" PRId64 "%s</td><td>", id && id->is_int ? id->i : 0, is_self ? " (this)" : "");
            /* A member this node cannot reach may be down: its role is
             * what the configuration says, not what it is doing. (That is
             * all "reachable" would say: no column of its own, so that the
             * table fits a phone.) */
            esc(&b, !is_self && !reachable ? "unreachable" : role ? role : "?");
            buf_puts(&b, "</td>");
            /* On a follower (its own commit known as c): its own log
             * matches the leader's at least up to c (Log Matching), and
             * the leader has committed at least c; the other followers'
             * indices only the leader has. */
            const struct json *own_commit = json_get(doc.root, "commit");
            bool is_leader = leader && leader->is_int && id && id->is_int && id->i == leader->i;
            index_cell(&b, is_self && self_leads ? json_get(m, "commit") : json_get(m, "match"),
                       !self_leads && is_self ? own_commit : NULL);
            index_cell(&b, json_get(m, "commit"), !self_leads && is_leader ? own_commit : NULL);
            index_cell(&b, json_get(m, "applied"), NULL);
            buf_puts(&b, "</tr>");
        }
        buf_puts(&b, "</tbody></table></div>");
        if (!self_leads)
            buf_puts(&b, "<p class=\"meta\">Only the leader knows how far each member's log matches its own "
                         "(its <code>/status</code> shows every match), and this node is not the leader. "
                         "\xe2\x80\x9c\xe2\x89\xa5\xc2\xa0N\xe2\x80\x9d is what this node can vouch for: "
                         "its own log matches the leader's up to its commit index, and the leader has "
                         "committed at least as much.</p>");
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
    struct site *s = r->s;
    if (!s->css_gz) /* compressed once; if that fails, per request */
        s->css_gz = site_gzip(site_css, sizeof site_css - 1, &s->css_gz_len);
    r->gz = s->css_gz;
    r->gz_len = s->css_gz_len;
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

/* "/new/" is "/new": a path with trailing slashes is sent, permanently, to
 * the path without them (and its query). false if path has none, or the
 * target would not be a local path. */
static bool strip_slash(struct site_req *r, const char *path)
{
    size_t n = strlen(path);
    if (n < 2 || path[n - 1] != '/' || !r->head_or_get)
        return false;
    while (n > 1 && path[n - 1] == '/')
        n--;
    char to[SITE_URL_MAX + 1];
    const char *q = r->req->query;
    int len = snprintf(to, sizeof to, "%.*s%s%s", (int)n, path, q[0] ? "?" : "", q);
    if (len < 0 || (size_t)len >= sizeof to || !site_local_path_ok(to))
        return false;
    char h[sizeof to + 16];
    snprintf(h, sizeof h, "Location: %s\r\n", to);
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "Moved Permanently\n");
    site_reply(r, 301, "text/plain; charset=utf-8", h, &b);
    return true;
}

bool site_pages_route(struct site_req *r, const char *path, bool *answered)
{
    *answered = false;
    if (strip_slash(r, path)) {
        *answered = true;
        return true;
    }
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
    /* Earlier versions' paths answer with the current sheet: a page cached
     * before an upgrade still gets a style. */
    if (!strcmp(path, CSS_PATH) || !strcmp(path, "/static/site.v3.css") || !strcmp(path, "/static/site.v2.css"))
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
                return site_route(r, site_mod_delete_form, page_link_delete_post, answered);
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
