/*
 * test_site_form.c — the site's request parsing and output helpers
 * (src/site/form.c, html.c): urlencoded fields with hostile escapes,
 * cookies, numbers, HTML escaping, RFC 3339 and relative times.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "site/internal.h"

static long field(const char *data, const char *name, char *out, size_t cap)
{
    return site_form_field(data, strlen(data), name, out, cap);
}

TEST(form_fields_decode_and_refuse)
{
    char v[32];
    CHECK_EQ_I(field("a=1&b=two+words&c=%41%42", "b", v, sizeof v), 9);
    CHECK_STR(v, "two words");
    CHECK_EQ_I(field("a=1&b=two+words&c=%41%42", "c", v, sizeof v), 2);
    CHECK_STR(v, "AB");
    CHECK_EQ_I(field("a=1", "missing", v, sizeof v), -1);
    CHECK_EQ_I(field("ab=1", "a", v, sizeof v), -1);       /* names match whole */
    CHECK_EQ_I(field("a", "a", v, sizeof v), 0);            /* present, empty */
    CHECK_EQ_I(field("a=", "a", v, sizeof v), 0);
    CHECK_EQ_I(field("a=%", "a", v, sizeof v), -2);         /* truncated escapes */
    CHECK_EQ_I(field("a=%4", "a", v, sizeof v), -2);
    CHECK_EQ_I(field("a=%zz", "a", v, sizeof v), -2);
    CHECK_EQ_I(field("a=%4&b=1", "a", v, sizeof v), -2);
    CHECK_EQ_I(field("a=%00x", "a", v, sizeof v), 2);       /* a NUL decodes; callers check lengths */
    CHECK(v[0] == 0 && v[1] == 'x');
    CHECK_EQ_I(field("a=0123456789", "a", v, 10), -2);      /* too long for the buffer */
    CHECK_EQ_I(field("a=012345678", "a", v, 10), 9);
    CHECK_EQ_I(field("&&a=1&&", "a", v, sizeof v), 1);
    CHECK_EQ_I(field("a=1&a=2", "a", v, sizeof v), 1);      /* the first wins */
    CHECK_STR(v, "1");
    CHECK_EQ_I(site_form_field("a=1", 0, "a", v, sizeof v), -1);
}

TEST(cookies)
{
    struct http_header hs[2] = {
        { "cookie", 6, "x=1; lr_session=abc;lr_idx=42 ; empty=", 38 },
        { "Cookie", 6, "second=yes", 10 },
    };
    struct http_request req = { .method = "GET", .path = "/", .query = "", .headers = hs, .n_headers = 2 };
    char v[16];
    CHECK(site_cookie(&req, "lr_session", v, sizeof v));
    CHECK_STR(v, "abc");
    CHECK(site_cookie(&req, "lr_idx", v, sizeof v));
    CHECK_STR(v, "42");
    CHECK(site_cookie(&req, "empty", v, sizeof v));
    CHECK_STR(v, "");
    CHECK(site_cookie(&req, "second", v, sizeof v));
    CHECK(!site_cookie(&req, "lr", v, sizeof v));
    CHECK(!site_cookie(&req, "session", v, sizeof v));
    CHECK(!site_cookie(&req, "lr_session", v, 3));          /* does not fit: absent, not cut */
    size_t len;
    CHECK(http_header_get(&req, "COOKIE", &len) && len == 38);
    CHECK(http_header_get(&req, "Cookies", NULL) == NULL);
}

TEST(numbers)
{
    uint64_t x;
    CHECK(site_parse_uint("42", 2, 1, 100, &x) && x == 42);
    CHECK(!site_parse_uint("0", 1, 1, 100, &x));
    CHECK(!site_parse_uint("101", 3, 1, 100, &x));
    CHECK(!site_parse_uint("", 0, 0, 100, &x));
    CHECK(!site_parse_uint("-1", 2, 0, 100, &x));
    CHECK(!site_parse_uint("+1", 2, 0, 100, &x));
    CHECK(!site_parse_uint("1 ", 2, 0, 100, &x));
    CHECK(!site_parse_uint("99999999999999999999", 20, 0, UINT64_MAX, &x)); /* overflow */
    CHECK(site_parse_uint("9223372036854775807", 19, 1, INT64_MAX, &x) && x == INT64_MAX);
}

TEST(html_escaping_and_times)
{
    struct buf b;
    buf_init(&b);
    site_html_escape(&b, "<a href=\"x\" onclick='y'>&amp;</a>", 34);
    CHECK_STR(b.p, "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;");
    buf_reset(&b);
    site_html_escape(&b, "plain caf\xc3\xa9", 11);
    CHECK_STR(b.p, "plain caf\xc3\xa9");
    buf_free(&b);
    char t[32];
    site_rfc3339(0, t);
    CHECK_STR(t, "1970-01-01T00:00:00Z");
    site_rfc3339(1764547200999ull, t);
    CHECK_STR(t, "2025-12-01T00:00:00Z");
    char rel[48];
    uint64_t now = 1764547200000ull;
    site_relative_time(now - 5000, now, rel, sizeof rel);
    CHECK_STR(rel, "just now");
    site_relative_time(now + 5000, now, rel, sizeof rel); /* a proposer's clock ahead */
    CHECK_STR(rel, "just now");
    site_relative_time(now - 60000, now, rel, sizeof rel);
    CHECK_STR(rel, "1 minute ago");
    site_relative_time(now - 3 * 3600000ull - 1, now, rel, sizeof rel);
    CHECK_STR(rel, "3 hours ago");
    site_relative_time(now - 2 * 86400000ull, now, rel, sizeof rel);
    CHECK_STR(rel, "2 days ago");
    site_relative_time(now - 400 * 86400000ull, now, rel, sizeof rel);
    CHECK_STR(rel, "1 year ago");
}

/* site_relative_time_next is exact: the string is the same for every ms
 * from now to just before the answer, and differs at the answer. Checked
 * from many starting points across every unit boundary (12 months at 360
 * days turn into "1 year" at 365 days). */
TEST(relative_time_next_change_is_exact)
{
    const uint64_t then = 1764547200000ull, S = 1000, D = 86400 * S;
    const uint64_t deltas[] = { 0, 1, 999, 1000, 59 * S, 59 * S + 999, 60 * S, 61 * S, 3599 * S, 3600 * S,
                                23 * 3600 * S + 5, D, 29 * D, 30 * D, 359 * D, 360 * D + 7, 364 * D,
                                365 * D, 729 * D, 730 * D, 3 * 365 * D + 12345 };
    char a[48], b[48], c[48];
    for (size_t i = 0; i < sizeof deltas / sizeof deltas[0]; i++) {
        uint64_t now = then + deltas[i];
        uint64_t next = site_relative_time_next(then, now);
        CHECK(next > now);
        site_relative_time(then, now, a, sizeof a);
        site_relative_time(then, next - 1, b, sizeof b);
        site_relative_time(then, next, c, sizeof c);
        CHECK_STR(b, a);
        CHECK(strcmp(c, a) != 0);
        for (uint64_t k = 1; k < 8; k++) { /* and nothing changes in between */
            site_relative_time(then, now + (next - 1 - now) * k / 8, b, sizeof b);
            CHECK_STR(b, a);
        }
    }
    /* A proposer's clock ahead of ours: "just now" until a minute after then. */
    CHECK(site_relative_time_next(then, then - 5000) == then + 60 * S);
}

static bool gz(const char *v) { return site_accepts_gzip(v, strlen(v)); }

TEST(accept_encoding_gzip)
{
    CHECK(gz("gzip"));
    CHECK(gz("gzip, deflate, br, zstd"));
    CHECK(gz("br;q=1.0, GZIP;q=0.001"));
    CHECK(gz("x-gzip"));
    CHECK(gz("*"));
    CHECK(gz("deflate,gzip"));
    CHECK(gz(" gzip ; q=0.5 "));
    CHECK(!gz(""));
    CHECK(!gz("identity"));
    CHECK(!gz("gzip;q=0"));
    CHECK(!gz("gzip;q=0.000"));
    CHECK(!gz("*;q=0"));
    CHECK(!gz("gzipx"));
    CHECK(!gz("br, deflate"));
    CHECK(gz("gzip;q=0.0001"));  /* not a valid qvalue, but not zero either */
    CHECK(!gz(",,;;q="));
    /* Round trip of the compression, checked against the gzip magic. */
    size_t n = 0;
    char *z = site_gzip("hello hello hello hello", 23, &n);
    REQUIRE(z);
    CHECK(n > 18 && (unsigned char)z[0] == 0x1f && (unsigned char)z[1] == 0x8b);
    free(z);
}

int main(void)
{
    RUN(form_fields_decode_and_refuse);
    RUN(cookies);
    RUN(numbers);
    RUN(html_escaping_and_times);
    RUN(relative_time_next_change_is_exact);
    RUN(accept_encoding_gzip);
    return HARNESS_END();
}
