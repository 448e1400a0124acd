/*
 * test_site_validate.c — the site's input rules and URL normalisation
 * (src/site/validate.h): what counts as the same link, and every limit of
 * SPEC §4 at and just past its boundary.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "site/validate.h"

static struct site_url u;

static const char *norm(const char *url)
{
    const char *err = site_parse_url(url, strlen(url), &u);
    return err ? NULL : u.norm;
}

static int refused(const char *url) { return site_parse_url(url, strlen(url), &u) != NULL; }

TEST(same_link_whatever_the_spelling)
{
    CHECK_STR(norm("http://example.com/a"), "//example.com/a");
    CHECK_STR(norm("HTTPS://Example.COM/a"), "//example.com/a");   /* scheme, host case; http = https */
    CHECK_STR(norm("https://www.example.com/a"), "//example.com/a"); /* www. */
    CHECK_STR(norm("http://example.com:80/a"), "//example.com/a");  /* default ports */
    CHECK_STR(norm("https://example.com:443/a"), "//example.com/a");
    CHECK_STR(norm("http://example.com:443/a"), "//example.com:443/a"); /* not default for http */
    CHECK_STR(norm("http://example.com:8080/a"), "//example.com:8080/a");
    CHECK_STR(norm("http://example.com/a#section"), "//example.com/a"); /* fragment */
    CHECK_STR(norm("http://example.com/a?b=2&a=1"), "//example.com/a?a=1&b=2"); /* sorted query */
    CHECK_STR(norm("http://example.com/a?a=1&b=2#x"), "//example.com/a?a=1&b=2");
    CHECK_STR(norm("http://example.com/a?&&b=2&&a=1&"), "//example.com/a?a=1&b=2");
    CHECK_STR(norm("http://example.com/a?"), "//example.com/a");
    CHECK_STR(norm("http://example.com"), "//example.com/");        /* empty path */
    CHECK_STR(norm("http://example.com?x=1"), "//example.com/?x=1");
    CHECK_STR(norm("http://example.com./"), "//example.com/");      /* trailing dot */
    CHECK_STR(norm("http://example.com:/"), "//example.com/");
    CHECK_STR(norm("  http://example.com/  "), "//example.com/");   /* pasted with spaces */
    CHECK_STR(norm("http://example.com/Path/Case"), "//example.com/Path/Case"); /* path keeps case */
    CHECK_STR(norm("http://www.com/"), "//www.com/");              /* www. only when a domain remains */
    /* Each leading "www." goes, so normalising is idempotent (found by
     * fuzz_form: "//www.example.com/" normalised again was another link). */
    CHECK_STR(norm("http://www.www.example.com/"), "//example.com/");
    CHECK_STR(norm("http://www.www.com/"), "//www.com/");
    CHECK_STR(norm("http://127.0.0.1:8000/x"), "//127.0.0.1:8000/x");
    CHECK_STR(norm("http://[::1]:8080/x"), "//[::1]:8080/x");
    CHECK_STR(norm("http://[2001:DB8::1]/"), "//[2001:db8::1]/");
    CHECK_STR(norm("https://example.com/caf%C3%A9?q=caf\xc3\xa9"), "//example.com/caf%C3%A9?q=caf\xc3\xa9");
}

TEST(original_and_domain_are_kept)
{
    REQUIRE(norm("  HTTPS://WWW.Example.com:443/a?b#c "));
    CHECK_STR(u.url, "HTTPS://WWW.Example.com:443/a?b#c");
    CHECK_STR(u.domain, "example.com");
    char d[64];
    site_url_domain("https://news.ycombinator.com/item?id=1", d, sizeof d);
    CHECK_STR(d, "news.ycombinator.com");
    site_url_domain("javascript:alert(1)", d, sizeof d);
    CHECK_STR(d, "");
}

TEST(only_http_urls_with_a_host)
{
    CHECK(refused(""));
    CHECK(refused("   "));
    CHECK(refused("example.com"));
    CHECK(refused("ftp://example.com/"));
    CHECK(refused("javascript:alert(1)"));
    CHECK(refused("data:text/html,hi"));
    CHECK(refused("http:/example.com"));
    CHECK(refused("http://"));
    CHECK(refused("http:///path"));
    CHECK(refused("http://:80/"));
    CHECK(refused("http://user:pw@example.com/"));
    CHECK(refused("http://example.com@evil.com/"));
    CHECK(refused("http://exa mple.com/"));
    CHECK(refused("http://example.com/a b"));
    CHECK(refused("http://example.com/\x01"));
    CHECK(refused("http://example.com\\@evil.com/"));
    CHECK(refused("http://ex..ample.com/"));
    /* One trailing dot is the root; a second is an empty part (found by
     * fuzz_form: it was kept, so "example.com../" was another link). */
    CHECK(refused("http://example.com../x"));
    CHECK(refused("http://example.com..:8080/"));
    CHECK(refused("http://.example.com/"));
    CHECK(refused("http://ex<ample.com/"));
    CHECK(refused("http://example.com:0/"));
    CHECK(refused("http://example.com:65536/"));
    CHECK(refused("http://example.com:123456/"));
    CHECK(refused("http://example.com:8x/"));
    CHECK(refused("http://[::1/"));
    CHECK(refused("http://[::g]/"));
    CHECK(refused("http://[::1]x/"));
    CHECK(refused("http://a\xe2\x80\x8b\xf0\x9f\x98\x80--.com/")); /* not a valid IDN */
    CHECK(refused("http://example.com/\xff"));   /* not UTF-8 */
    const char *m = site_parse_url("ftp://x", 7, &u);
    CHECK(m && strstr(m, "http"));
}

/* International domain names (IDNA2008, UTS #46 mapping, as browsers do):
 * accepted, kept as punycode so every spelling is one link, shown in
 * Unicode again. */
TEST(international_domain_names_become_punycode)
{
    const char *in = "https://B\xc3\xbc" "cher.example/caf\xc3\xa9?q=1";
    REQUIRE(site_parse_url(in, strlen(in), &u) == NULL);
    CHECK_STR(u.url, "https://xn--bcher-kva.example/caf\xc3\xa9?q=1");
    CHECK_STR(u.domain, "xn--bcher-kva.example");
    CHECK_STR(u.norm, "//xn--bcher-kva.example/caf\xc3\xa9?q=1");
    struct site_url v;
    const char *ace = "http://www.xn--bcher-kva.example:443/caf\xc3\xa9?q=1";
    REQUIRE(site_parse_url(ace, strlen(ace), &v) == NULL);
    CHECK_STR(v.norm, "//xn--bcher-kva.example:443/caf\xc3\xa9?q=1");
    const char *port = "http://caf\xc3\xa9.example:8080/";
    REQUIRE(site_parse_url(port, strlen(port), &v) == NULL);
    CHECK_STR(v.url, "http://xn--caf-dma.example:8080/");
    char shown[SITE_DOMAIN_CAP];
    site_domain_display("xn--bcher-kva.example", shown, sizeof shown);
    CHECK_STR(shown, "b\xc3\xbc" "cher.example");
    site_domain_display("example.com", shown, sizeof shown);
    CHECK_STR(shown, "example.com");
    site_domain_display("xn--zz.example", shown, sizeof shown); /* not decodable: as stored */
    CHECK_STR(shown, "xn--zz.example");
    CHECK(refused("http://\xe2\x98\x83\xe2\x80\x8d.example/")); /* a joiner where IDNA2008 forbids it */
}

TEST(url_length_limit)
{
    static char url[SITE_URL_MAX + 16];
    strcpy(url, "http://example.com/");
    size_t n = strlen(url);
    memset(url + n, 'a', SITE_URL_MAX - n);
    url[SITE_URL_MAX] = 0;
    CHECK(!refused(url));                 /* exactly 2048 */
    url[SITE_URL_MAX] = 'a';
    url[SITE_URL_MAX + 1] = 0;
    CHECK(refused(url));                  /* 2049 */
    /* A host name label over 63, and a name over 253. */
    char host[400];
    snprintf(host, sizeof host, "http://%0*d.com/", 64, 0);
    CHECK(refused(host));
    char big[400] = "http://";
    for (int i = 0; i < 64; i++)
        strcat(big, "abc.");
    strcat(big, "com/");
    CHECK(refused(big));
    /* A bracketed host over 253 too (found by fuzz_form: it was copied
     * into a 256-byte buffer unchecked, past its end). */
    char v6[600] = "http://[";
    for (int i = 0; i < 140; i++)
        strcat(v6, "0:");
    strcat(v6, "1]/");
    CHECK(refused(v6));
    CHECK(!refused("http://[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:8080/"));
    /* Many query parameters still sort. */
    static char q[SITE_URL_MAX + 1];
    strcpy(q, "http://e.com/?");
    while (strlen(q) + 4 < SITE_URL_MAX)
        strcat(q, "z&y&");
    CHECK(!refused(q));
    CHECK(strncmp(u.norm, "//e.com/?y&y&", 13) == 0);
}

TEST(usernames)
{
    CHECK(site_check_username("abc", 3) == NULL);
    CHECK(site_check_username("A_b-9", 5) == NULL);
    CHECK(site_check_username("abcdefghijklmnopqrst", 20) == NULL);
    CHECK(site_check_username("ab", 2) != NULL);
    CHECK(site_check_username("abcdefghijklmnopqrstu", 21) != NULL);
    CHECK(site_check_username("ab c", 4) != NULL);
    CHECK(site_check_username("ab.c", 4) != NULL);
    CHECK(site_check_username("caf\xc3\xa9", 5) != NULL);
    CHECK(site_check_username("ab<script>", 10) != NULL);
    CHECK(site_check_username("abc\0d", 5) != NULL);
}

TEST(passwords)
{
    char pw[200];
    memset(pw, 'p', sizeof pw);
    CHECK(site_check_password(pw, 7) != NULL);
    CHECK(site_check_password(pw, 8) == NULL);
    CHECK(site_check_password(pw, 128) == NULL);
    CHECK(site_check_password(pw, 129) != NULL);
}

TEST(titles)
{
    size_t a, n;
    CHECK(site_check_title("Hello", 5, &a, &n) == NULL && a == 0 && n == 5);
    CHECK(site_check_title("  Hi  ", 6, &a, &n) == NULL && a == 2 && n == 2);
    CHECK(site_check_title("", 0, &a, &n) != NULL);
    CHECK(site_check_title("   ", 3, &a, &n) != NULL);
    CHECK(site_check_title("a\nb", 3, &a, &n) != NULL);
    CHECK(site_check_title("\xc3\x28", 2, &a, &n) != NULL);       /* invalid UTF-8 */
    CHECK(site_check_title("\xed\xa0\x80", 3, &a, &n) != NULL);   /* a surrogate */
    CHECK(site_check_title("\xc0\xaf", 2, &a, &n) != NULL);       /* overlong */
    /* 200 characters, counted as characters: 200 two-byte 'é' is fine, 201 is not. */
    char t[600];
    for (int i = 0; i < 201; i++)
        memcpy(t + 2 * i, "\xc3\xa9", 2);
    CHECK(site_check_title(t, 400, &a, &n) == NULL);
    CHECK(site_check_title(t, 402, &a, &n) != NULL);
    memset(t, 'x', 201);
    CHECK(site_check_title(t, 200, &a, &n) == NULL);
    CHECK(site_check_title(t, 201, &a, &n) != NULL);
    /* Four-byte characters (emoji) count once. */
    for (int i = 0; i < 100; i++)
        memcpy(t + 4 * i, "\xf0\x9f\x98\x80", 4);
    CHECK(site_check_title(t, 400, &a, &n) == NULL);
}

/* What makes a page read differently from what was typed, or a title that
 * looks empty, is refused with a sentence that says which. */
TEST(titles_refuse_bidi_controls_and_invisible_text)
{
    size_t a, n;
    const char *e;
    e = site_check_title("cat \xe2\x80\xae" "gnp.exe", 14, &a, &n);        /* U+202E RLO */
    CHECK(e && strstr(e, "bidirectional"));
    CHECK(site_check_title("x\xe2\x80\xaay", 5, &a, &n) != NULL);           /* U+202A LRE */
    CHECK(site_check_title("x\xe2\x81\xa6y", 5, &a, &n) != NULL);           /* U+2066 LRI */
    CHECK(site_check_title("x\xe2\x81\xa9y", 5, &a, &n) != NULL);           /* U+2069 PDI */
    CHECK(site_check_title("x\xc2\x85y", 4, &a, &n) != NULL);                /* U+0085 NEL (C1) */
    CHECK(site_check_title("x\xe2\x80\xa8y", 5, &a, &n) != NULL);           /* U+2028 LINE SEPARATOR */
    e = site_check_title("\xe2\x80\x8b\xe2\x80\x8b", 6, &a, &n);         /* two zero-width spaces */
    CHECK(e && strstr(e, "visible"));
    CHECK(site_check_title("\xe3\x80\x80 \xc2\xa0\xef\xbb\xbf", 8, &a, &n) != NULL); /* ideographic space, NBSP, BOM */
    CHECK(site_check_title("\xe3\x85\xa4", 3, &a, &n) != NULL);             /* U+3164 HANGUL FILLER */
    /* Ordinary right-to-left text and a zero-width joiner in an emoji are fine. */
    CHECK(site_check_title("\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d", 8, &a, &n) == NULL); /* Hebrew */
    CHECK(site_check_title("\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x92\xbb", 11, &a, &n) == NULL);
}

/* The same characters are refused in a URL (its path is user text too). */
TEST(urls_refuse_bidi_controls)
{
    const char *rlo = "https://a.example/x\xe2\x80\xaey", *nel = "https://a.example/x\xc2\x85y";
    const char *ok = "https://a.example/caf\xc3\xa9";
    CHECK(site_parse_url(rlo, strlen(rlo), &u) != NULL);
    CHECK(site_parse_url(nel, strlen(nel), &u) != NULL);
    CHECK(site_parse_url(ok, strlen(ok), &u) == NULL);
}

/* Where a form may send the browser after it succeeds. */
TEST(local_paths_for_redirects)
{
    CHECK(site_local_path_ok("/"));
    CHECK(site_local_path_ok("/new?p=2"));
    CHECK(site_local_path_ok("/link/12"));
    CHECK(!site_local_path_ok("//evil.example"));
    CHECK(!site_local_path_ok("/\t/evil.example"));  /* browsers drop the tab */
    CHECK(!site_local_path_ok("/\n/evil.example"));
    CHECK(!site_local_path_ok("/\\evil.example"));  /* browsers read '\\' as '/' */
    CHECK(!site_local_path_ok("/x\\y"));
    CHECK(!site_local_path_ok("/ /evil.example"));
    CHECK(!site_local_path_ok("/\x7f/evil"));
    CHECK(!site_local_path_ok("/\xc3\xa9"));
    CHECK(!site_local_path_ok("https://evil.example/"));
    CHECK(!site_local_path_ok(""));
}

int main(void)
{
    RUN(same_link_whatever_the_spelling);
    RUN(original_and_domain_are_kept);
    RUN(only_http_urls_with_a_host);
    RUN(international_domain_names_become_punycode);
    RUN(url_length_limit);
    RUN(usernames);
    RUN(passwords);
    RUN(titles);
    RUN(titles_refuse_bidi_controls_and_invisible_text);
    RUN(local_paths_for_redirects);
    RUN(urls_refuse_bidi_controls);
    return HARNESS_END();
}
