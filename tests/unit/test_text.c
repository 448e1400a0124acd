/*
 * test_text.c — the text format (src/site/text.h): checking (line ends,
 * UTF-8, control characters, limits, blank text) and rendering (paragraphs,
 * code lines, autolinks and where they end, escaping of everything else).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "site/text.h"

static char out[1 << 16];

static const char *render(const char *s)
{
    struct buf b;
    buf_init(&b);
    site_text_render(&b, s, strlen(s));
    snprintf(out, sizeof out, "%.*s", (int)b.len, b.p ? b.p : "");
    buf_free(&b);
    return out;
}

static const char *check(const char *s, size_t max, bool allow_empty, char *norm)
{
    static char buf[1 << 16];
    size_t n = 0;
    const char *err = site_text_check(s, strlen(s), max, allow_empty, buf, sizeof buf, &n);
    if (!err && norm)
        snprintf(norm, 256, "%.*s", (int)n, buf);
    return err;
}

TEST(paragraphs_and_code)
{
    CHECK_STR(render("one"), "<p>one</p>");
    CHECK_STR(render("one\ntwo\n\nthree"), "<p>one\ntwo</p><p>three</p>");
    CHECK_STR(render("\n\n\none\n\n\n\ntwo\n\n"), "<p>one</p><p>two</p>");
    CHECK_STR(render("text\n  int x = 1;\n  x++;\nafter"),
              "<p>text</p><pre><code>int x = 1;\nx++;</code></pre><p>after</p>");
    CHECK_STR(render("  <b>code</b> http://a.example/"), "<pre><code>&lt;b&gt;code&lt;/b&gt; http://a.example/</code></pre>");
    CHECK_STR(render(" one space is text"), "<p> one space is text</p>");
    CHECK_STR(render(""), "");
    CHECK_STR(render("   \n \n"), "");
}

TEST(everything_else_is_escaped)
{
    CHECK_STR(render("<script>alert('x')</script> & \"q\""),
              "<p>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;</p>");
    CHECK_STR(render("*not bold* _not italic_ [not](a link)"), "<p>*not bold* _not italic_ [not](a link)</p>");
}

TEST(autolinks)
{
    CHECK_STR(render("see https://example.com/a?b=1&c=2."),
              "<p>see <a href=\"https://example.com/a?b=1&amp;c=2\" rel=\"nofollow ugc noopener\">"
              "https://example.com/a?b=1&amp;c=2</a>.</p>");
    CHECK_STR(render("(http://x.example/wiki/A_(b)) and (http://y.example/)"),
              "<p>(<a href=\"http://x.example/wiki/A_(b)\" rel=\"nofollow ugc noopener\">http://x.example/wiki/A_(b)</a>)"
              " and (<a href=\"http://y.example/\" rel=\"nofollow ugc noopener\">http://y.example/</a>)</p>");
    CHECK_STR(render("HTTP://UP.example"),
              "<p><a href=\"HTTP://UP.example\" rel=\"nofollow ugc noopener\">HTTP://UP.example</a></p>");
    /* Not links: other schemes, a scheme alone, inside a word. */
    CHECK_STR(render("javascript:alert(1) ftp://x http:// xhttp://a.example"),
              "<p>javascript:alert(1) ftp://x http:// xhttp://a.example</p>");
    /* A quote or angle bracket ends the URL: it can never break out of href. */
    CHECK_STR(render("http://a.example/\"onmouseover=x"),
              "<p><a href=\"http://a.example/\" rel=\"nofollow ugc noopener\">http://a.example/</a>&quot;onmouseover=x</p>");
    CHECK_STR(render("http://a.example/'x"),
              "<p><a href=\"http://a.example/&#39;x\" rel=\"nofollow ugc noopener\">http://a.example/&#39;x</a></p>");
}

TEST(check_normalises_and_refuses)
{
    char norm[256];
    CHECK(check("a\r\nb\rc  \r\n\n", 100, false, norm) == NULL);
    CHECK_STR(norm, "a\nb\nc");
    CHECK(check("tab\there, é, 日本, 🙂", 100, false, norm) == NULL);
    CHECK(check("", 100, false, NULL) != NULL);
    CHECK(check(" \n\t ", 100, false, NULL) != NULL);
    CHECK(check("", 100, true, norm) == NULL);
    CHECK(check("bell\a", 100, false, NULL) != NULL);
    CHECK(check("del\x7f", 100, false, NULL) != NULL);
    CHECK(check("bad \xc3", 100, false, NULL) != NULL);
    CHECK(check("overlong \xc0\xaf", 100, false, NULL) != NULL);
    CHECK(check("surrogate \xed\xa0\x80", 100, false, NULL) != NULL);
    CHECK(check("too big \xf4\x90\x80\x80", 100, false, NULL) != NULL);
    /* The limit counts characters, not bytes. */
    static char big[4 * 10001 + 1];
    for (int i = 0; i < 10000; i++)
        memcpy(big + 4 * i, "\xf0\x9f\x99\x82", 4);
    big[40000] = 0;
    CHECK(check(big, SITE_TEXT_MAX_CHARS, false, NULL) == NULL);
    memcpy(big + 40000, "x", 2);
    CHECK(check(big, SITE_TEXT_MAX_CHARS, false, NULL) != NULL);
    CHECK(check("12345", 4, false, NULL) != NULL);
}

int main(void)
{
    RUN(paragraphs_and_code);
    RUN(everything_else_is_escaped);
    RUN(autolinks);
    RUN(check_normalises_and_refuses);
    return HARNESS_END();
}
