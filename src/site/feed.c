/*
 * feed.c — Atom feeds (RFC 4287, SPEC §5): /feed (the newest links),
 * /user/NAME/feed (a user's newest links), /link/ID/feed (a link's newest
 * comments).
 *
 * What a feed reader relies on:
 *   - ids are tag URIs (RFC 4151) made of what the log fixed: a link's or
 *     comment's id, a user's lowercase name. They are the same on every
 *     node and after any restart, and never reused (ids are not).
 *   - an entry's updated is its last edit, else its creation (log time);
 *     the feed's updated is the newest of its entries' (or, with none, the
 *     user's or link's creation): nothing depends on the reading node's
 *     clock, so every node serves the same bytes for the same state.
 *   - hrefs are relative (resolved against the feed's own address), so the
 *     bytes do not depend on which node or gateway answered either; the
 *     ETag is a hash of those bytes, the same everywhere, and a reader
 *     sending it back in If-None-Match gets 304 with no body.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "site/internal.h"

#define FEED_ENTRIES 30
#define TAG "tag:linkraft,2026:"

static struct store *store_of(struct site_req *r) { return r->s->host.store(r->s->host.ctx); }

/* XML text or attribute value: escaped, and the characters XML 1.0 cannot
 * carry at all (C0 controls but tab, LF, CR) replaced by U+FFFD. */
static void xml_escape(struct buf *b, const char *s, size_t len)
{
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *rep;
        switch (c) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&apos;"; break;
        default:
            if (c >= 0x20 || c == '\t' || c == '\n' || c == '\r')
                continue;
            rep = "\xef\xbf\xbd";
        }
        buf_append(b, s + start, i - start);
        buf_puts(b, rep);
        start = i + 1;
    }
    buf_append(b, s + start, len - start);
}

static void xml_str(struct buf *b, const char *s) { xml_escape(b, s, strlen(s)); }

static void feed_begin(struct buf *b, const char *id, const char *title, uint64_t updated_ms, const char *self,
                       const char *alternate)
{
    char updated[32];
    site_rfc3339(updated_ms, updated);
    buf_puts(b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n<id>");
    xml_str(b, id);
    buf_puts(b, "</id>\n<title>");
    xml_str(b, title);
    buf_printf(b, "</title>\n<updated>%s</updated>\n<link rel=\"self\" type=\"application/atom+xml\" href=\"", updated);
    xml_str(b, self);
    buf_puts(b, "\"/>\n<link rel=\"alternate\" type=\"text/html\" href=\"");
    xml_str(b, alternate);
    buf_puts(b, "\"/>\n<generator>linkraft</generator>\n");
}

static void entry_author(struct buf *b, const char *name)
{
    if (!name[0]) {
        buf_puts(b, "<author><name>[deleted]</name></author>\n");
        return;
    }
    buf_puts(b, "<author><name>");
    xml_str(b, name);
    buf_puts(b, "</name><uri>/user/");
    xml_str(b, name);
    buf_puts(b, "</uri></author>\n");
}

static void entry_times(struct buf *b, uint64_t created_ms, uint64_t edited_ms)
{
    char created[32], updated[32];
    site_rfc3339(created_ms, created);
    site_rfc3339(edited_ms ? edited_ms : created_ms, updated);
    buf_printf(b, "<published>%s</published>\n<updated>%s</updated>\n", created, updated);
}

static void link_entry(struct site_req *r, struct buf *b, const struct store_link *l)
{
    buf_printf(b, "<entry>\n<id>" TAG "link/%" PRId64 "</id>\n<title type=\"text\">", l->id);
    xml_str(b, l->title);
    buf_puts(b, "</title>\n<link rel=\"alternate\" type=\"text/html\" href=\"");
    if (l->url[0])
        xml_str(b, l->url);
    else
        buf_printf(b, "/link/%" PRId64, l->id);
    buf_printf(b, "\"/>\n<link rel=\"related\" type=\"text/html\" href=\"/link/%" PRId64 "\"/>\n", l->id);
    entry_times(b, l->created_ms, l->edited_ms);
    entry_author(b, l->author);
    char *text = NULL;
    if (l->has_text && store_link_text(store_of(r), l->id, &text) == 1 && text) {
        buf_puts(b, "<content type=\"text\">");
        xml_str(b, text);
        buf_puts(b, "</content>\n");
    }
    free(text);
    buf_puts(b, "</entry>\n");
}

static uint64_t link_updated(const struct store_link *l) { return l->edited_ms ? l->edited_ms : l->created_ms; }

/* Sends the feed with its ETag, or 304 if the client has those bytes. */
static void send_feed(struct site_req *r, struct buf *b)
{
    if (b->oom) {
        buf_free(b);
        site_fail(r, 500, "internal", "out of memory");
        return;
    }
    uint8_t h[16];
    char hex[33], headers[160];
    crypto_generichash(h, sizeof h, (const uint8_t *)b->p, b->len, NULL, 0);
    site_hex(h, sizeof h, hex);
    snprintf(headers, sizeof headers, "ETag: \"%s\"\r\nCache-Control: no-cache\r\n", hex);
    size_t inm_len = 0;
    const char *inm = http_header_get(r->req, "If-None-Match", &inm_len);
    if (inm) {
        char want[40];
        snprintf(want, sizeof want, "\"%s\"", hex);
        bool match = false;
        for (size_t i = 0; i + strlen(want) <= inm_len && !match; i++)
            match = !memcmp(inm + i, want, strlen(want));
        for (size_t i = 0; i < inm_len && !match; i++) /* "*": any current representation */
            match = inm[i] == '*';
        if (match) {
            buf_free(b);
            site_reply(r, 304, "application/atom+xml; charset=utf-8", headers, NULL);
            return;
        }
    }
    site_reply(r, 200, "application/atom+xml; charset=utf-8", headers, b);
}

static void feed_links(struct site_req *r, const struct store_link *links, size_t n, const char *id,
                       const char *title, uint64_t empty_updated, const char *self, const char *alternate)
{
    uint64_t updated = n ? 0 : empty_updated;
    for (size_t i = 0; i < n; i++)
        if (link_updated(&links[i]) > updated)
            updated = link_updated(&links[i]);
    struct buf b;
    buf_init(&b);
    feed_begin(&b, id, title, updated, self, alternate);
    for (size_t i = 0; i < n; i++)
        link_entry(r, &b, &links[i]);
    buf_puts(&b, "</feed>\n");
    send_feed(r, &b);
}

static void feed_new(struct site_req *r)
{
    struct store_link *links = malloc(FEED_ENTRIES * sizeof *links);
    size_t n = 0;
    if (!links || store_links(store_of(r), STORE_SORT_NEW, FEED_ENTRIES, 0, links, &n)) {
        free(links);
        site_fail(r, 500, "internal", "cannot read the links");
        return;
    }
    feed_links(r, links, n, TAG "new", "linkraft: new links", 0, "/feed", "/new");
    free(links);
}

static void feed_user(struct site_req *r)
{
    struct store_user u;
    int found = site_check_username(r->name, strlen(r->name)) ? 0
              : store_user_by_name(store_of(r), r->name, strlen(r->name), &u);
    if (found != 1) {
        site_fail(r, found < 0 ? 500 : 404, found < 0 ? "internal" : "not_found",
                  found < 0 ? "cannot read the user" : "There is no such user.");
        return;
    }
    struct store_link *links = malloc(FEED_ENTRIES * sizeof *links);
    size_t n = 0;
    if (!links || store_links_by_user(store_of(r), u.id, FEED_ENTRIES, 0, links, &n)) {
        free(links);
        site_fail(r, 500, "internal", "cannot read the links");
        return;
    }
    char id[80], title[80], self[64], alt[64];
    snprintf(id, sizeof id, TAG "user/%s", u.lname);
    snprintf(title, sizeof title, "linkraft: links by %s", u.name);
    snprintf(self, sizeof self, "/user/%s/feed", u.name);
    snprintf(alt, sizeof alt, "/user/%s", u.name);
    feed_links(r, links, n, id, title, u.created_ms, self, alt);
    free(links);
}

static int newest_first(const void *a, const void *b)
{
    const struct store_comment *x = a, *y = b;
    return x->id < y->id ? 1 : x->id > y->id ? -1 : 0;
}

static void feed_link(struct site_req *r)
{
    struct store_link *l = malloc(sizeof *l);
    int found = l ? store_link_get(store_of(r), r->id, l) : STORE_ENOMEM;
    struct store_comment *cs = NULL;
    size_t n = 0;
    if (found != 1 || store_thread(store_of(r), r->id, &cs, &n)) {
        free(l);
        site_fail(r, found == 0 ? 404 : 500, found == 0 ? "not_found" : "internal",
                  found == 0 ? "There is no such link." : "cannot read the discussion");
        return;
    }
    qsort(cs, n, sizeof *cs, newest_first);
    uint64_t updated = link_updated(l);
    size_t shown = 0;
    for (size_t i = 0; i < n && shown < FEED_ENTRIES; i++) {
        if (cs[i].deleted)
            continue;
        shown++;
        uint64_t u = cs[i].edited_ms ? cs[i].edited_ms : cs[i].created_ms;
        if (u > updated)
            updated = u;
    }
    char id[64], self[64], alt[48];
    snprintf(id, sizeof id, TAG "link/%" PRId64 "/comments", l->id);
    snprintf(self, sizeof self, "/link/%" PRId64 "/feed", l->id);
    snprintf(alt, sizeof alt, "/link/%" PRId64, l->id);
    struct buf title;
    buf_init(&title);
    buf_puts(&title, "linkraft: comments on ");
    buf_puts(&title, l->title);
    struct buf b;
    buf_init(&b);
    feed_begin(&b, id, title.oom ? "linkraft: comments" : title.p, updated, self, alt);
    buf_free(&title);
    shown = 0;
    for (size_t i = 0; i < n && shown < FEED_ENTRIES; i++) {
        const struct store_comment *c = &cs[i];
        if (c->deleted)
            continue;
        shown++;
        buf_printf(&b, "<entry>\n<id>" TAG "comment/%" PRId64 "</id>\n<title type=\"text\">", c->id);
        buf_puts(&b, "Comment by ");
        xml_str(&b, c->author);
        buf_printf(&b, "</title>\n<link rel=\"alternate\" type=\"text/html\" href=\"/link/%" PRId64 "#c%" PRId64
                       "\"/>\n", l->id, c->id);
        entry_times(&b, c->created_ms, c->edited_ms);
        entry_author(&b, c->author);
        buf_puts(&b, "<content type=\"text\">");
        xml_str(&b, c->text);
        buf_puts(&b, "</content>\n</entry>\n");
    }
    buf_puts(&b, "</feed>\n");
    store_comments_free(cs, n);
    free(l);
    send_feed(r, &b);
}

bool site_feed_route(struct site_req *r, const char *path, bool *answered)
{
    *answered = false;
    if (!strcmp(path, "/feed"))
        return site_route(r, feed_new, NULL, answered);
    size_t len = strlen(path);
    if (len < 5 || strcmp(path + len - 5, "/feed"))
        return false;
    if (!strncmp(path, "/user/", 6)) {
        size_t nlen = len - 6 - 5;
        if (!nlen || nlen > SITE_NAME_MAX || memchr(path + 6, '/', nlen))
            return false;
        snprintf(r->name, sizeof r->name, "%.*s", (int)nlen, path + 6);
        return site_route(r, feed_user, NULL, answered);
    }
    if (!strncmp(path, "/link/", 6) && site_parse_id(path + 6, len - 6 - 5, &r->id))
        return site_route(r, feed_link, NULL, answered);
    return false;
}
