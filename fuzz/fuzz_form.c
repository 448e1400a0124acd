/*
 * fuzz_form.c — libFuzzer driver for the site's form and URL parsers
 * (src/site/form.c, src/site/validate.c): application/x-www-form-urlencoded
 * fields of a body or query string (site_form_field), cookies
 * (site_cookie), path ids (site_parse_id), local redirect paths
 * (site_local_path_ok), and the normalisation of a submitted link with its
 * domain (site_parse_url, site_url_domain, site_domain_display). The input
 * is used whole as each of them.
 *
 * Properties:
 *   - a form field is found exactly when a field of that name is there; its
 *     value is refused (-2) with a buffer big enough exactly when it holds a
 *     '%' without two hex digits, and with a smaller buffer exactly when it
 *     does not fit; percent-encoded again and put first among other fields,
 *     it decodes to the same bytes;
 *   - a cookie found is the value of a "name=" pair, without ';';
 *   - an accepted id prints back as the same digits;
 *   - an accepted URL is at most 2048 bytes of printable text; its
 *     normalised form is "//" + its domain (lowercase, no "www.") + an
 *     optional port + a path + sorted query, without a fragment or spaces;
 *     parsing the URL again gives the same results, and so does parsing the
 *     normalised form under the URL's own scheme (normalising is
 *     idempotent); site_url_domain agrees; the domain's display form is
 *     valid UTF-8.
 */
#include "fuzz.h"

#include <inttypes.h>
#include <string.h>
#include <strings.h>

#include "common/json.h"
#include "http.h"
#include "site/internal.h"
#include "site/validate.h"

/* Whether the value data[0..n) holds a '%' not followed by two hex digits. */
static bool fz_form_bad_escape(const char *v, size_t n)
{
    static const char hex[] = "0123456789abcdefABCDEF";
    for (size_t i = 0; i < n; i++)
        if (v[i] == '%' && (n - i < 3 || !v[i + 1] || !strchr(hex, v[i + 1]) || !v[i + 2] ||
                            !strchr(hex, v[i + 2])))
            return true;
    return false;
}

/* The raw value of the first field called name (NULL if none), found
 * independently of form.c: fields split at '&', name and value at the
 * first '='. */
static const char *fz_form_find(const char *d, size_t len, const char *name, size_t *vlen)
{
    size_t n = strlen(name);
    const char *p = d, *end = d + len;
    while (p < end) {
        const char *e = p;
        while (e < end && *e != '&')
            e++;
        const char *eq = p;
        while (eq < e && *eq != '=')
            eq++;
        if ((size_t)(eq - p) == n && !memcmp(p, name, n)) {
            const char *v = eq < e ? eq + 1 : e;
            *vlen = (size_t)(e - v);
            return v;
        }
        if (e == end)
            break;
        p = e + 1;
    }
    return NULL;
}

static void fz_form_field(const char *d, size_t len, const char *name, size_t small_cap)
{
    static char out[70000], again[70000], enc[3 * 70000 + 64];
    if (len + 2 > sizeof out)
        return;
    size_t vlen = 0;
    const char *raw = fz_form_find(d, len, name, &vlen);
    long n = site_form_field(d, len, name, out, len + 2);
    if (!raw) {
        FUZZ_CHECK(n == -1);
        return;
    }
    FUZZ_CHECK(n != -1);
    if (fz_form_bad_escape(raw, vlen)) {
        FUZZ_CHECK(n == -2);
        return;
    }
    FUZZ_CHECK(n >= 0 && (size_t)n <= vlen && out[n] == 0);

    /* A smaller buffer: refused exactly when the value does not fit. */
    char small[64];
    long m = site_form_field(d, len, name, small, small_cap);
    if ((size_t)n + 1 > small_cap) {
        FUZZ_CHECK(m == -2);
    } else {
        FUZZ_CHECK(m == n && !memcmp(small, out, (size_t)n + 1));
    }

    /* Encoded again, as the first of several fields of that name. */
    static const char hex[] = "0123456789ABCDEF";
    size_t k = (size_t)snprintf(enc, sizeof enc, "x=1&%s=", name);
    for (long i = 0; i < n; i++) {
        unsigned char c = (unsigned char)out[i];
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.')
            enc[k++] = (char)c;
        else if (c == ' ')
            enc[k++] = '+';
        else {
            enc[k++] = '%';
            enc[k++] = hex[c >> 4];
            enc[k++] = hex[c & 15];
        }
    }
    k += (size_t)snprintf(enc + k, sizeof enc - k, "&%s=other", name);
    long a = site_form_field(enc, k, name, again, sizeof again);
    FUZZ_CHECK(a == n && !memcmp(again, out, (size_t)n));
}

static void fz_form_cookie(const char *d, size_t len)
{
    struct http_header h = { "cookie", 6, d, len };
    struct http_request req = { .method = "GET", .path = "/", .query = "", .headers = &h, .n_headers = 1 };
    char out[80];
    if (site_cookie(&req, "sid", out, sizeof out)) {
        size_t n = strlen(out);
        FUZZ_CHECK(n < sizeof out && !memchr(out, ';', n));
        /* It is there, after "sid=". */
        bool seen = false;
        for (size_t i = 0; i + 4 + n <= len && !seen; i++)
            seen = !memcmp(d + i, "sid=", 4) && !memcmp(d + i + 4, out, n);
        FUZZ_CHECK(seen);
    }
}

static void fz_form_id(const char *d, size_t len)
{
    int64_t id;
    if (!site_parse_id(d, len, &id))
        return;
    char back[32];
    int n = snprintf(back, sizeof back, "%" PRId64, id);
    FUZZ_CHECK(id >= 1 && (size_t)n == len && !memcmp(back, d, len));
}

static void fz_form_local_path(const char *s)
{
    if (!site_local_path_ok(s))
        return;
    FUZZ_CHECK(s[0] == '/' && s[1] != '/');
    for (const char *p = s; *p; p++)
        FUZZ_CHECK(*p > ' ' && *p < 0x7f && *p != '\\');
}

static bool fz_form_domain_ok(const char *dom)
{
    if (dom[0] == '[') {
        size_t n = strlen(dom);
        return n >= 3 && dom[n - 1] == ']' && strspn(dom + 1, "0123456789abcdef:.") == n - 2;
    }
    return dom[0] && strlen(dom) <= 253 && dom[0] != '.' && dom[strlen(dom) - 1] != '.' && !strstr(dom, "..") &&
           strspn(dom, "abcdefghijklmnopqrstuvwxyz0123456789-_.") == strlen(dom);
}

static void fz_form_url(const char *d, size_t len)
{
    static struct site_url u, v, w;
    if (site_parse_url(d, len, &u))
        return;
    size_t ul = strlen(u.url), nl = strlen(u.norm), dl = strlen(u.domain);
    FUZZ_CHECK(ul > 0 && ul <= SITE_URL_MAX && nl <= SITE_URL_MAX);
    FUZZ_CHECK(!strncasecmp(u.url, "http://", 7) || !strncasecmp(u.url, "https://", 8));
    for (size_t i = 0; i < ul; i++)
        FUZZ_CHECK((unsigned char)u.url[i] > ' ' && u.url[i] != 0x7f && u.url[i] != '\\');
    FUZZ_CHECK(fz_form_domain_ok(u.domain));
    FUZZ_CHECK(!strncmp(u.norm, "//", 2) && !strncmp(u.norm + 2, u.domain, dl));
    FUZZ_CHECK(u.norm[2 + dl] == '/' || u.norm[2 + dl] == ':' || u.norm[2 + dl] == '?');
    FUZZ_CHECK(!strchr(u.norm, '#') && !strpbrk(u.norm, " \t\r\n\\"));
    FUZZ_CHECK(!strncmp(u.domain, "www.", 4) ? !strchr(u.domain + 4, '.') : true);

    /* The URL as kept parses to itself. */
    FUZZ_CHECK(site_parse_url(u.url, ul, &v) == NULL);
    FUZZ_CHECK(!strcmp(v.url, u.url) && !strcmp(v.norm, u.norm) && !strcmp(v.domain, u.domain));
    char dom[SITE_DOMAIN_CAP];
    site_url_domain(u.url, dom, sizeof dom);
    FUZZ_CHECK(!strcmp(dom, u.domain));

    /* Normalising is idempotent: the normal form under the URL's scheme. */
    static char again[SITE_URL_MAX + 16];
    bool https = !strncasecmp(u.url, "https:", 6);
    int n = snprintf(again, sizeof again, "%s%s", https ? "https:" : "http:", u.norm);
    if (n <= SITE_URL_MAX) {
        const char *err = site_parse_url(again, (size_t)n, &w);
        FUZZ_CHECK(err == NULL);
        FUZZ_CHECK(!strcmp(w.norm, u.norm) && !strcmp(w.domain, u.domain));
    }

    char shown[4 * SITE_DOMAIN_CAP];
    site_domain_display(u.domain, shown, sizeof shown);
    FUZZ_CHECK(shown[0] && json_utf8_valid(shown, strlen(shown)));
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    const char *d = (const char *)data;
    /* The small buffer's size from the last byte, so the fuzzer can move it. */
    size_t small_cap = size ? 1 + data[size - 1] % 64 : 1;
    fz_form_field(d, size, "url", small_cap);
    fz_form_field(d, size, "next", small_cap);
    fz_form_field(d, size, "", small_cap);
    fz_form_cookie(d, size);
    fz_form_id(d, size);
    fz_form_url(d, size);

    /* The NUL-terminated uses: a path, a stored URL. */
    static char s[70000];
    if (size < sizeof s) {
        memcpy(s, d, size);
        s[size] = 0;
        fz_form_local_path(s);
    }
    return 0;
}
