/*
 * fuzz_text.c — libFuzzer driver for the text format (src/site/text.c):
 * site_text_check and site_text_render, which turn what any user writes in
 * a comment, a text post or "about" into HTML. The input is the text, any
 * bytes. Properties of the HTML of any input (and of the normalised text
 * when the check accepts it): the only tags are <p>, <pre><code>, <a href>
 * and their ends, properly nested (a link only inside a paragraph); every
 * href is an http(s) URL with no quote or angle bracket in it; every '&'
 * starts one of the five entities the escaper writes.
 */
#include "fuzz.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "site/text.h"

static bool fz_text_at(const char *p, const char *end, const char *s)
{
    size_t n = strlen(s);
    return (size_t)(end - p) >= n && !memcmp(p, s, n);
}

static void fz_text_html_ok(const char *h, size_t len)
{
    const char *p = h, *end = h + len;
    enum { OUT, PARA, LINK, CODE } in = OUT;
    static const char *const ents[] = { "&amp;", "&lt;", "&gt;", "&quot;", "&#39;" };
    while (p < end) {
        if (*p == '&') {
            size_t i = 0;
            while (i < 5 && !fz_text_at(p, end, ents[i]))
                i++;
            FUZZ_CHECK(i < 5);
            p++;
            continue;
        }
        FUZZ_CHECK(*p != '>' && *p != '"' && *p != '\'');
        if (*p != '<') {
            FUZZ_CHECK(in != OUT);
            p++;
            continue;
        }
        if (in == OUT && fz_text_at(p, end, "<p>")) {
            in = PARA, p += 3;
        } else if (in == PARA && fz_text_at(p, end, "</p>")) {
            in = OUT, p += 4;
        } else if (in == OUT && fz_text_at(p, end, "<pre><code>")) {
            in = CODE, p += 11;
        } else if (in == CODE && fz_text_at(p, end, "</code></pre>")) {
            in = OUT, p += 13;
        } else if (in == LINK && fz_text_at(p, end, "</a>")) {
            in = PARA, p += 4;
        } else {
            FUZZ_CHECK(in == PARA && fz_text_at(p, end, "<a href=\""));
            p += 9;
            FUZZ_CHECK(((size_t)(end - p) > 7 && !strncasecmp(p, "http://", 7)) ||
                       ((size_t)(end - p) > 8 && !strncasecmp(p, "https://", 8)));
            const char *q = p;
            while (q < end && *q != '"') {
                FUZZ_CHECK(*q != '<' && *q != '>' && *q != ' ' && *q != '\n');
                q++;
            }
            FUZZ_CHECK(fz_text_at(q, end, "\" rel=\"nofollow ugc noopener\">"));
            p = q + 30;
            in = LINK;
        }
    }
    FUZZ_CHECK(in == OUT);
}

static void fz_text_render_ok(const char *s, size_t len)
{
    struct buf b;
    buf_init(&b);
    site_text_render(&b, s, len);
    FUZZ_CHECK(!b.oom);
    fz_text_html_ok(b.p ? b.p : "", b.len);
    buf_free(&b);
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    fz_text_render_ok(s, size);
    char *norm = malloc(size + 1);
    FUZZ_CHECK(norm != NULL);
    size_t n = 0;
    if (!site_text_check(s, size, SITE_TEXT_MAX_CHARS, false, norm, size + 1, &n)) {
        FUZZ_CHECK(n > 0 && n <= size && strlen(norm) == n);
        fz_text_render_ok(norm, n);
    }
    free(norm);
    return 0;
}
