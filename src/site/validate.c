/*
 * validate.c — usernames, passwords, titles and URLs (validate.h). The URL
 * parser is deliberately narrower than RFC 3986: it accepts what people
 * paste from a browser's address bar and refuses the forms browsers and
 * servers disagree about (backslashes, user:password@, spaces), so that the
 * link a reader follows is the link that was checked.
 */
#include "site/validate.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <idn2.h>

#include "common/json.h"

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }

const char *site_check_username(const char *s, size_t len)
{
    if (len < SITE_NAME_MIN || len > SITE_NAME_MAX)
        return "a username is 3 to 20 characters";
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return "a username has only letters A-Z a-z, digits, '_' and '-'";
    }
    return NULL;
}

const char *site_check_password(const char *s, size_t len)
{
    (void)s;
    if (len < SITE_PASSWORD_MIN)
        return "a password is at least 8 bytes";
    if (len > SITE_PASSWORD_MAX)
        return "a password is at most 128 bytes";
    return NULL;
}

/* Decodes one code point of valid UTF-8 at s (the caller checked validity). */
static uint32_t utf8_next(const unsigned char *s, size_t *i)
{
    unsigned char c = s[*i];
    uint32_t cp;
    int more;
    if (c < 0x80) { (*i)++; return c; }
    if (c < 0xE0) { cp = c & 0x1F; more = 1; }
    else if (c < 0xF0) { cp = c & 0x0F; more = 2; }
    else { cp = c & 0x07; more = 3; }
    (*i)++;
    while (more--)
        cp = cp << 6 | (s[(*i)++] & 0x3F);
    return cp;
}

/* Controls: C0, DEL, C1, and the line and paragraph separators. */
static bool is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029;
}

/* Bidirectional embeddings, overrides and isolates (U+202A..U+202E,
 * U+2066..U+2069): they reorder the text around them, so a title can make
 * the page read differently from what was typed ("Trojan Source"). */
static bool is_bidi_control(uint32_t cp)
{
    return (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

/* Characters that draw nothing: whitespace of every width, zero-width and
 * formatting characters, fillers, variation selectors, tags. A title of
 * only these looks empty (or impersonates an empty one). */
static bool is_invisible(uint32_t cp)
{
    return cp == ' ' || cp == 0xA0 || cp == 0xAD || cp == 0x34F || cp == 0x61C || cp == 0x115F ||
           cp == 0x1160 || cp == 0x17B4 || cp == 0x17B5 || cp == 0x180E || (cp >= 0x2000 && cp <= 0x200F) ||
           cp == 0x202F || (cp >= 0x205F && cp <= 0x206F) || cp == 0x2800 || cp == 0x3000 ||
           cp == 0x3164 || (cp >= 0xFE00 && cp <= 0xFE0F) || cp == 0xFEFF || cp == 0xFFA0 ||
           (cp >= 0x1D173 && cp <= 0x1D17A) || (cp >= 0xE0000 && cp <= 0xE0FFF);
}

const char *site_check_title(const char *s, size_t len, size_t *start, size_t *out_len)
{
    size_t a = 0, b = len;
    while (a < b && is_space(s[a]))
        a++;
    while (b > a && is_space(s[b - 1]))
        b--;
    if (a == b)
        return "a title cannot be empty";
    if (!json_utf8_valid(s + a, b - a))
        return "a title must be valid UTF-8";
    size_t chars = 0;
    bool visible = false;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = a; i < b;) {
        uint32_t cp = utf8_next(u, &i);
        if (is_control(cp))
            return "a title cannot contain control characters (tabs, newlines)";
        if (is_bidi_control(cp))
            return "a title cannot contain bidirectional overrides or isolates (U+202A-U+202E, U+2066-U+2069)";
        if (!is_invisible(cp))
            visible = true;
        chars++;
    }
    if (!visible)
        return "a title needs at least one visible character";
    if (chars > SITE_TITLE_MAX_CHARS)
        return "a title is at most 200 characters";
    *start = a;
    *out_len = b - a;
    return NULL;
}

bool site_local_path_ok(const char *p)
{
    /* Browsers drop tabs and newlines from URLs and read '\\' as '/', so
     * "/\t/evil.example" or "/\\evil.example" would leave the site just as
     * "//evil.example" does. Only printable ASCII, no backslash, and never
     * "//" at the start. */
    if (p[0] != '/' || p[1] == '/')
        return false;
    for (const unsigned char *c = (const unsigned char *)p; *c; c++)
        if (*c <= 0x20 || *c >= 0x7F || *c == '\\')
            return false;
    return true;
}

struct span {
    const char *p;
    size_t len;
};

static int span_cmp(const void *x, const void *y)
{
    const struct span *a = x, *b = y;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->p, b->p, n);
    if (c)
        return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

/* Appends to out (cap includes the NUL); false if it does not fit. */
static bool put(char *out, size_t cap, size_t *off, const char *p, size_t n)
{
    if (*off + n >= cap)
        return false;
    memcpy(out + *off, p, n);
    *off += n;
    out[*off] = 0;
    return true;
}

static const char *check_host(const char *h, size_t n)
{
    if (n == 0)
        return "a URL needs a host, as in https://example.com/";
    if (n > 253) /* an IPv6 host too: the caller copies it into SITE_DOMAIN_CAP bytes */
        return "a host name is at most 253 characters";
    if (h[0] == '[') {
        if (n < 3 || h[n - 1] != ']')
            return "an IPv6 host is written in brackets, as in http://[::1]/";
        for (size_t i = 1; i + 1 < n; i++) {
            char c = lower(h[i]);
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == ':' || c == '.'))
                return "an IPv6 host has only hex digits, ':' and '.'";
        }
        return NULL;
    }
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        char c = lower(h[i]);
        if (c == '.') {
            if (label == 0)
                return "a host name cannot have an empty part (\"..\" or a leading '.')";
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') {
            if (++label > 63)
                return "a part of a host name is at most 63 characters";
        } else {
            return "a host name has only letters, digits, '-' and '.'";
        }
    }
    if (label == 0) /* "example.com.." (the caller dropped one trailing dot, the root) */
        return "a host name cannot have an empty part (\"..\" or a leading '.')";
    return NULL;
}

/* An international domain name (IDNA2008 with UTS #46 mapping, as browsers
 * do: "Bücher.example" is "xn--bcher-kva.example"): the URL is checked and
 * kept with its host in that ASCII form, so that it is one link however it
 * was typed; pages show the host in Unicode again (site_domain_display).
 * host_off, host_len: the host's bytes in s. */
static const char *idn_url(const char *s, size_t len, size_t host_off, size_t host_len, struct site_url *out)
{
    char host[SITE_DOMAIN_CAP];
    if (host_len >= sizeof host)
        return "a host name is at most 253 characters";
    memcpy(host, s + host_off, host_len);
    host[host_len] = 0;
    char *ascii = NULL;
    if (idn2_to_ascii_8z(host, &ascii, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL) != IDN2_OK) {
        idn2_free(ascii);
        return "this international domain name is not valid (IDNA2008)";
    }
    static __thread char rewritten[SITE_URL_MAX + 1];
    size_t alen = strlen(ascii);
    const char *err = NULL;
    if (len - host_len + alen > SITE_URL_MAX) {
        err = "a URL is at most 2048 bytes (with its domain name in ASCII form)";
    } else {
        memcpy(rewritten, s, host_off);
        memcpy(rewritten + host_off, ascii, alen);
        memcpy(rewritten + host_off + alen, s + host_off + host_len, len - host_off - host_len);
        size_t n = len - host_len + alen;
        rewritten[n] = 0;
        for (size_t i = 0; i < alen; i++)
            if ((unsigned char)ascii[i] >= 0x80) /* never from libidn2; no loop if it were */
                err = "this international domain name is not valid (IDNA2008)";
        if (!err)
            err = site_parse_url(rewritten, n, out);
    }
    idn2_free(ascii);
    return err;
}

const char *site_parse_url(const char *s, size_t len, struct site_url *out)
{
    memset(out, 0, sizeof *out);
    while (len && is_space(*s))
        s++, len--;
    while (len && is_space(s[len - 1]))
        len--;
    if (len == 0)
        return "a URL cannot be empty";
    if (len > SITE_URL_MAX)
        return "a URL is at most 2048 bytes";
    if (!json_utf8_valid(s, len))
        return "a URL must be valid UTF-8";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f)
            return "a URL cannot contain spaces or control characters (write a space as %20)";
        if (c == '\\')
            return "a URL cannot contain '\\' (browsers read it as '/')";
    }
    for (size_t i = 0; i < len;) {
        uint32_t cp = utf8_next((const unsigned char *)s, &i);
        if (is_control(cp) || is_bidi_control(cp))
            return "a URL cannot contain control characters or bidirectional overrides (percent-encode them)";
    }
    size_t scheme_len;
    if (len >= 7 && !strncasecmp(s, "http://", 7))
        scheme_len = 4;
    else if (len >= 8 && !strncasecmp(s, "https://", 8))
        scheme_len = 5;
    else
        return "a URL starts with http:// or https://";
    memcpy(out->url, s, len);
    out->url[len] = 0;

    const char *p = s + scheme_len + 3, *end = s + len;
    const char *auth_end = p;
    while (auth_end < end && *auth_end != '/' && *auth_end != '?' && *auth_end != '#')
        auth_end++;
    for (const char *q = p; q < auth_end; q++)
        if (*q == '@')
            return "a URL cannot carry a user name or password (user:password@host)";
    /* host[:port]; for [v6] the port follows the ']'. */
    const char *host = p, *host_end = auth_end, *port = NULL;
    if (host < auth_end && *host == '[') {
        const char *close = memchr(host, ']', (size_t)(auth_end - host));
        if (!close)
            return "an IPv6 host is written in brackets, as in http://[::1]/";
        host_end = close + 1;
        if (host_end < auth_end) {
            if (*host_end != ':')
                return "after an IPv6 host comes ':PORT' or the path";
            port = host_end + 1;
        }
    } else {
        const char *colon = memchr(host, ':', (size_t)(auth_end - host));
        if (colon) {
            host_end = colon;
            port = colon + 1;
        }
    }
    size_t host_len = (size_t)(host_end - host);
    if (host_len && host[host_len - 1] == '.' && host[0] != '[')
        host_len--; /* "example.com." is example.com */
    for (size_t i = 0; i < host_len; i++)
        if ((unsigned char)host[i] >= 0x80)
            return idn_url(s, len, (size_t)(host - s), (size_t)(host_end - host), out);
    const char *err = check_host(host, host_len);
    if (err)
        return err;
    long port_num = -1;
    if (port) {
        if (port == auth_end)
            port = NULL; /* "host:" means the default port */
        else {
            port_num = 0;
            for (const char *q = port; q < auth_end; q++) {
                if (*q < '0' || *q > '9' || q - port >= 5)
                    return "a port is a number from 1 to 65535";
                port_num = port_num * 10 + (*q - '0');
            }
            if (port_num < 1 || port_num > 65535)
                return "a port is a number from 1 to 65535";
        }
    }

    /* The domain: lowercase host, without its leading "www."s while
     * something with a dot remains (every one, so that the normal form
     * normalises to itself). */
    char hostbuf[SITE_DOMAIN_CAP];
    for (size_t i = 0; i < host_len; i++)
        hostbuf[i] = lower(host[i]);
    hostbuf[host_len] = 0;
    const char *dom = hostbuf;
    while (strlen(dom) > 4 && !memcmp(dom, "www.", 4) && strchr(dom + 4, '.'))
        dom += 4;
    snprintf(out->domain, sizeof out->domain, "%s", dom);

    /* path, query; the fragment is dropped. */
    const char *frag = memchr(auth_end, '#', (size_t)(end - auth_end));
    const char *rest_end = frag ? frag : end;
    const char *qmark = memchr(auth_end, '?', (size_t)(rest_end - auth_end));
    const char *path = auth_end, *path_end = qmark ? qmark : rest_end;

    size_t off = 0;
    char *n = out->norm;
    size_t cap = sizeof out->norm;
    bool ok = put(n, cap, &off, "//", 2) && put(n, cap, &off, dom, strlen(dom));
    bool default_port = port_num < 0 || (scheme_len == 4 && port_num == 80) || (scheme_len == 5 && port_num == 443);
    if (ok && !default_port) {
        char pb[8];
        int pl = snprintf(pb, sizeof pb, ":%ld", port_num);
        ok = put(n, cap, &off, pb, (size_t)pl);
    }
    if (ok)
        ok = path == path_end ? put(n, cap, &off, "/", 1) : put(n, cap, &off, path, (size_t)(path_end - path));
    if (ok && qmark) {
        /* Sorted parameters, empty ones ("&&") dropped. */
        static __thread struct span params[SITE_URL_MAX / 2 + 1];
        size_t np = 0;
        const char *q = qmark + 1;
        while (q <= rest_end && np < sizeof params / sizeof params[0]) {
            const char *amp = memchr(q, '&', (size_t)(rest_end - q));
            const char *e = amp ? amp : rest_end;
            if (e > q)
                params[np++] = (struct span){ q, (size_t)(e - q) };
            if (!amp)
                break;
            q = amp + 1;
        }
        qsort(params, np, sizeof params[0], span_cmp);
        for (size_t i = 0; ok && i < np; i++)
            ok = put(n, cap, &off, i ? "&" : "?", 1) && put(n, cap, &off, params[i].p, params[i].len);
    }
    if (!ok)
        return "a URL is at most 2048 bytes";
    return NULL;
}

void site_url_domain(const char *url, char *out, size_t cap)
{
    struct site_url u;
    if (cap)
        out[0] = 0;
    if (!site_parse_url(url, strlen(url), &u))
        snprintf(out, cap, "%s", u.domain);
}

void site_domain_display(const char *domain, char *out, size_t cap)
{
    if (cap)
        out[0] = 0;
    /* Only a name with an ACE label ("xn--") has another form. */
    if (strncmp(domain, "xn--", 4) && !strstr(domain, ".xn--")) {
        snprintf(out, cap, "%s", domain);
        return;
    }
    char *u = NULL;
    if (idn2_to_unicode_8z8z(domain, &u, 0) == IDN2_OK && u && json_utf8_valid(u, strlen(u)))
        snprintf(out, cap, "%s", u);
    else
        snprintf(out, cap, "%s", domain);
    idn2_free(u);
}
