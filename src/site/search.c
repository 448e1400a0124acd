/*
 * search.c — finding things on the site (SPEC §5): full-text search
 * (GET /api/v1/search?q=&limit&offset and the page /search?q=), links by
 * domain (GET /api/v1/links?domain= and the page /from/DOMAIN). The words
 * go to the store as they are: the store quotes each one, so no input is
 * ever FTS5 syntax (src/store/search.c).
 *
 * Searches run on libuv's worker threads, never on the loop: the loop also
 * runs Raft's ticks, heartbeats and votes, and a search costs tens of ms at
 * a million links (a flood of them on a leader cost it its leadership:
 * tests/cluster/test_search_load.py). At most SITE_SEARCH_JOBS run at once,
 * each on a read-only connection of its own (store_reader); the others wait
 * in a queue of at most SITE_SEARCH_QUEUE, past which a search is answered
 * 503 with Retry-After. A reader sees what the store has committed, which
 * lags what is applied by up to the replica's commit interval: a search
 * that must show a newer index (the client's own write, X-Min-Index, a
 * linearizable read) has the host commit first. X-Raft-Index is the index
 * of the state searched.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "site/internal.h"

/* The query string's q (or domain): a request line is at most 8 KiB. */
#define QUERY_CAP 8192

static struct store *store_of(struct site_req *r) { return r->s->host.store(r->s->host.ctx); }

/* Reads the query parameter name into r->text (malloc'd; "" if absent);
 * false after answering 400 if it is malformed. */
static bool query_param(struct site_req *r, const char *name)
{
    const char *q = r->req->query;
    r->text = malloc(QUERY_CAP);
    if (!r->text) {
        site_fail(r, 503, "unavailable", "out of memory");
        return false;
    }
    long n = site_form_field(q, strlen(q), name, r->text, QUERY_CAP);
    if (n == -2) {
        char msg[96];
        snprintf(msg, sizeof msg, "%s is not a valid URL-encoded value", name);
        site_fail(r, 400, "bad_query", msg);
        return false;
    }
    r->text_len = n < 0 ? 0 : (size_t)n;
    r->text[r->text_len] = 0;
    return true;
}

/* Appends s percent-encoded for a query string. */
static void url_encode(struct buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
            c == '_' || c == '~')
            buf_printf(b, "%c", c);
        else
            buf_printf(b, "%%%c%c", hex[c >> 4], hex[c & 15]);
    }
}

static void links_json(struct site_req *r, struct buf *b, const struct store_link *links, size_t n)
{
    buf_puts(b, "{\"links\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_puts(b, ",");
        char *text = NULL;
        if (links[i].has_text && store_link_text(store_of(r), links[i].id, &text) != 1)
            text = NULL;
        site_link_json(b, &links[i], text);
        free(text);
    }
    buf_puts(b, "]");
}

/* ---- Searches on worker threads ------------------------------------------------------ */

/* One search: queued, then run on a worker with a reader of the pool. */
struct search_job {
    uv_work_t work;
    struct site_req *r;
    void (*done)(struct site_req *r, struct search_job *j); /* renders the answer (and frees j) */
    unsigned limit, offset;
    uint64_t need;                 /* the index the answer must show at least */
    int slot, rc;
    struct store_search_page page; /* links and texts: limit each, allocated when it starts */
    char err[256];
    struct search_job *next;
};

struct site_searches {
    struct store_reader *readers[SITE_SEARCH_JOBS];
    bool busy[SITE_SEARCH_JOBS];
    unsigned active, waiting;
    struct search_job *head, *tail;
};

int site_search_init(struct site *s)
{
    s->searches = calloc(1, sizeof *s->searches);
    return s->searches ? 0 : -1;
}

void site_search_free(struct site *s)
{
    if (!s->searches)
        return;
    for (int i = 0; i < SITE_SEARCH_JOBS; i++)
        store_reader_free(s->searches->readers[i]);
    free(s->searches);
    s->searches = NULL;
}

static void job_free(struct search_job *j)
{
    for (size_t i = 0; j->page.texts && i < j->page.n; i++)
        free(j->page.texts[i]);
    free(j->page.texts);
    free(j->page.links);
    free(j);
}

static void search_work(uv_work_t *w)
{
    struct search_job *j = w->data;
    struct site_searches *q = j->r->s->searches;
    struct store_reader *rd = q->readers[j->slot];
    j->rc = store_reader_search(rd, j->r->text, j->r->text_len, j->limit, j->offset, &j->page);
    if (j->rc)
        snprintf(j->err, sizeof j->err, "%s", store_reader_errmsg(rd));
}

static void search_dispatch(struct site *s);

static void search_after(uv_work_t *w, int status)
{
    struct search_job *j = w->data;
    struct site *s = j->r->s;
    s->searches->busy[j->slot] = false;
    s->searches->active--;
    search_dispatch(s);
    struct site_req *r = j->r;
    if (status || j->rc == STORE_EIO || j->rc == STORE_ECORRUPT || j->rc == STORE_ENOMEM) {
        if (status)
            snprintf(j->err, sizeof j->err, "the search was cancelled: the node is stopping");
        site_fail(r, 503, "unavailable", j->err);
        job_free(j);
        return;
    }
    if (j->rc == STORE_OK && j->page.index < j->need) { /* never: the host committed need before */
        buf_puts(&r->hdrs, "Retry-After: 1\r\n");
        site_fail(r, 503, "unavailable", "this node's search connection lags its database: try again");
        job_free(j);
        return;
    }
    j->done(r, j);
}

/* Starts queued searches while a reader is free. */
static void search_dispatch(struct site *s)
{
    struct site_searches *q = s->searches;
    while (q->head && q->active < SITE_SEARCH_JOBS) {
        struct search_job *j = q->head;
        q->head = j->next;
        if (!q->head)
            q->tail = NULL;
        q->waiting--;
        int slot = 0;
        while (q->busy[slot])
            slot++;
        /* The rows' room only now: a queue full of searches for 100 links
         * would otherwise hold 300 KB each. */
        j->page.links = malloc((j->limit ? j->limit : 1) * sizeof *j->page.links);
        j->page.texts = calloc(j->limit ? j->limit : 1, sizeof *j->page.texts);
        if (!j->page.links || !j->page.texts ||
            (!q->readers[slot] && !(q->readers[slot] = store_reader_new(store_of(j->r))))) {
            site_fail(j->r, 503, "unavailable", "out of memory");
            job_free(j);
            continue;
        }
        j->slot = slot;
        j->work.data = j;
        if (uv_queue_work(s->o.loop, &j->work, search_work, search_after)) {
            site_fail(j->r, 503, "unavailable", "cannot start a search");
            job_free(j);
            continue;
        }
        q->busy[slot] = true;
        q->active++;
    }
}

/* Searches r->text (limit, offset) on a worker; done renders the answer.
 * Answers an error itself when it cannot. */
static void search_start(struct site_req *r, unsigned limit, unsigned offset,
                         void (*done)(struct site_req *r, struct search_job *j))
{
    struct site *s = r->s;
    struct site_searches *q = s->searches;
    if (q->waiting >= SITE_SEARCH_QUEUE) {
        buf_puts(&r->hdrs, "Retry-After: 1\r\n");
        site_fail(r, 503, "busy", "this node has too many searches waiting: try again in a moment");
        return;
    }
    /* What the answer must show: the client's own writes (session), or
     * everything applied when the barrier passed (linearizable); a stale
     * read takes whatever is committed. */
    uint64_t need = r->consistency == SITE_READ_STALE     ? 0
                    : r->consistency == SITE_READ_SESSION ? r->min_index
                                                          : s->host.applied(s->host.ctx);
    struct store *st = store_of(r);
    if (store_committed(st) < need && !(s->host.commit && s->host.commit(s->host.ctx) && store_committed(st) >= need)) {
        buf_puts(&r->hdrs, "Retry-After: 1\r\n");
        site_fail(r, 503, "unavailable", "this node cannot commit its database now (is its disk full?): try again");
        return;
    }
    struct search_job *j = calloc(1, sizeof *j);
    if (!j) {
        site_fail(r, 503, "unavailable", "out of memory");
        return;
    }
    j->r = r;
    j->done = done;
    j->limit = limit;
    j->offset = offset;
    j->need = need;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    q->waiting++;
    search_dispatch(s);
}

/* ---- The API --------------------------------------------------------------------- */

static void api_search_done(struct site_req *r, struct search_job *j)
{
    if (j->rc == STORE_EAGAIN) {
        job_free(j);
        site_fail(r, 400, "too_broad", "these words take too long to rank: add a word, or use rarer ones");
        return;
    }
    r->shareable = true; /* a listing, the same for every visitor (site_reply) */
    r->write_index = j->page.index;
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "{\"links\":[");
    for (size_t i = 0; i < j->page.n; i++) {
        if (i)
            buf_puts(&b, ",");
        site_link_json(&b, &j->page.links[i], j->page.texts[i]);
    }
    buf_printf(&b, "],\"total\":%" PRId64 ",\"total_capped\":%s}\n", j->page.total,
               j->page.total_capped ? "true" : "false");
    job_free(j);
    site_reply(r, 200, "application/json", NULL, &b);
}

static void api_search(struct site_req *r)
{
    search_start(r, r->limit, r->offset, api_search_done);
}
static void api_domain(struct site_req *r)
{
    r->shareable = true; /* a listing, the same for every visitor (site_reply) */
    struct store_link *links = malloc(SITE_MAX_LIMIT * sizeof *links);
    size_t n = 0;
    if (!links || store_links_by_domain(store_of(r), r->text, r->text_len, r->limit, r->offset, links, &n)) {
        free(links);
        site_fail(r, 500, "internal", store_errmsg(store_of(r)));
        return;
    }
    struct buf b;
    buf_init(&b);
    links_json(r, &b, links, n);
    buf_puts(&b, "}\n");
    free(links);
    site_reply(r, 200, "application/json", NULL, &b);
}

bool site_search_api_route(struct site_req *r, bool *answered)
{
    *answered = true;
    if (!r->head_or_get) {
        site_fail_method(r, "GET, HEAD");
        return true;
    }
    if (!query_param(r, "q") || !site_list_params(r))
        return true;
    *answered = false;
    r->step = api_search;
    return true;
}

bool site_domain_api_route(struct site_req *r, bool *answered)
{
    const char *q = r->req->query;
    char probe[2];
    if (site_form_field(q, strlen(q), "domain", probe, sizeof probe) == -1)
        return false; /* not a domain list */
    *answered = true;
    if (!query_param(r, "domain") || !site_list_params(r))
        return true;
    char key[STORE_DOMAIN_CAP];
    if (!store_domain_key(r->text, r->text_len, key, sizeof key)) {
        site_fail(r, 400, "bad_domain", "domain is a host name such as example.com");
        return true;
    }
    *answered = false;
    r->step = api_domain;
    return true;
}

/* ---- Pages ----------------------------------------------------------------------- */

/* One page of results and a "More" link to the next (base: the path and
 * query up to "p="). */
static void results_page(struct site_req *r, const char *title, const char *heading_html,
                         const struct store_link *links, size_t n, bool more, const struct buf *base)
{
    struct buf b;
    buf_init(&b);
    site_page_begin(&b, r, title);
    buf_append(&b, heading_html, strlen(heading_html));
    /* Where a like on this page goes back to: this page, if its address
     * fits the form's next field (site_req.next), else the front page. */
    char back[sizeof ((struct site_req *)0)->next] = "/";
    if (base->len + 12 < sizeof back)
        snprintf(back, sizeof back, "%.*s%u", (int)base->len, base->p, r->page);
    if (n || r->page > 1)
        site_link_list(&b, r, links, n, (r->page - 1) * SITE_PAGE_LINKS + 1, back);
    if (more) {
        buf_puts(&b, "<p><a href=\"");
        site_html_escape(&b, base->p, base->len);
        buf_printf(&b, "%u\" rel=\"next\">More</a></p>", r->page + 1);
    }
    site_page_end(&b, r);
    site_page_send(r, 200, &b);
}

static void page_search_done(struct site_req *r, struct search_job *j)
{
    if (j->rc == STORE_EAGAIN) {
        job_free(j);
        site_page_error(r, 400, "These words take too long to rank: add a word, or use rarer ones.");
        return;
    }
    r->write_index = j->page.index;
    size_t n = j->page.n;
    bool more = n > SITE_PAGE_LINKS;
    if (more)
        n = SITE_PAGE_LINKS;
    struct buf h, base;
    buf_init(&h);
    buf_init(&base);
    buf_puts(&h, "<h1 class=\"dom\">Search</h1><form method=\"get\" action=\"/search\" role=\"search\" class=\"box\">"
                 "<label for=\"q\">Words to find in titles, texts and domains</label>"
                 "<input id=\"q\" name=\"q\" type=\"search\" maxlength=\"2000\" value=\"");
    site_html_escape(&h, r->text, r->text_len);
    buf_puts(&h, "\"><button>Search</button></form>");
    if (r->text_len) {
        int64_t total = j->page.total;
        if (j->page.total_capped)
            buf_printf(&h, "<p class=\"meta\" role=\"status\">More than %" PRId64 " links found: the newest are "
                           "ranked; more words find fewer</p>", total);
        else
            buf_printf(&h, "<p class=\"meta\" role=\"status\">%" PRId64 " link%s found</p>", total,
                       total == 1 ? "" : "s");
        if (!n && r->page == 1)
            buf_puts(&h, "<p>Nothing matches every word. Fewer words find more.</p>");
    }
    buf_puts(&base, "/search?q=");
    url_encode(&base, r->text, r->text_len);
    buf_puts(&base, "&p=");
    if (h.oom || base.oom) {
        buf_free(&h);
        buf_free(&base);
        job_free(j);
        site_page_error(r, 500, "out of memory");
        return;
    }
    results_page(r, "Search", h.p, j->page.links, n, more, &base);
    buf_free(&h);
    buf_free(&base);
    job_free(j);
}

static void page_search(struct site_req *r)
{
    search_start(r, SITE_PAGE_LINKS + 1, (r->page - 1) * SITE_PAGE_LINKS, page_search_done);
}

static void page_domain(struct site_req *r)
{
    struct store_link *links = malloc((SITE_PAGE_LINKS + 1) * sizeof *links);
    size_t n = 0;
    if (!links || store_links_by_domain(store_of(r), r->text, r->text_len, SITE_PAGE_LINKS + 1,
                                        (r->page - 1) * SITE_PAGE_LINKS, links, &n)) {
        free(links);
        site_page_error(r, 500, "The links of this domain cannot be read on this node; try again.");
        return;
    }
    bool more = n > SITE_PAGE_LINKS;
    if (more)
        n = SITE_PAGE_LINKS;
    struct buf h, base, title;
    buf_init(&h);
    buf_init(&base);
    buf_init(&title);
    buf_puts(&title, "Links from ");
    buf_append(&title, r->text, r->text_len);
    buf_puts(&h, "<h1 class=\"dom\">Links from ");
    site_html_escape(&h, r->text, r->text_len);
    buf_puts(&h, " and its subdomains</h1>");
    if (!n && r->page == 1)
        buf_puts(&h, "<p>No links from this domain yet.</p>");
    buf_puts(&base, "/from/");
    url_encode(&base, r->text, r->text_len);
    buf_puts(&base, "?p=");
    if (h.oom || base.oom || title.oom) {
        buf_free(&h);
        buf_free(&base);
        buf_free(&title);
        free(links);
        site_page_error(r, 500, "out of memory");
        return;
    }
    results_page(r, title.p, h.p, links, n, more, &base);
    buf_free(&h);
    buf_free(&base);
    buf_free(&title);
    free(links);
}

bool site_finding_route(struct site_req *r, const char *path, bool *answered)
{
    *answered = false;
    if (!strcmp(path, "/search")) {
        if (r->head_or_get && !query_param(r, "q")) {
            *answered = true;
            return true;
        }
        return site_route(r, page_search, NULL, answered);
    }
    if (!strncmp(path, "/from/", 6)) {
        const char *d = path + 6;
        char key[STORE_DOMAIN_CAP];
        if (!store_domain_key(d, strlen(d), key, sizeof key)) {
            r->step = NULL;
            site_page_error(r, 404, "That is not a domain: try /from/example.com.");
            *answered = true;
            return true;
        }
        if (!(r->text = strdup(d))) {
            site_page_error(r, 503, "out of memory");
            *answered = true;
            return true;
        }
        r->text_len = strlen(d);
        return site_route(r, page_domain, NULL, answered);
    }
    if (site_flag_page_route(r, path, answered) || site_moderation_page_route(r, path, answered))
        return true;
    return site_feed_route(r, path, answered);
}
