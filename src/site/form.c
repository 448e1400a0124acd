/*
 * form.c — reading requests: headers, cookies, urlencoded forms and query
 * strings, numbers. Everything is bounded by the caller's buffer; malformed
 * input is reported, never guessed at.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/json.h"
#include "site/internal.h"

bool site_cookie(const struct http_request *req, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    /* Several Cookie headers may arrive (HTTP/2 gateways split them). */
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct http_header *h = &req->headers[i];
        if (h->name_len != 6 || strncasecmp(h->name, "Cookie", 6))
            continue;
        const char *p = h->value, *end = h->value + h->value_len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ';'))
                p++;
            const char *semi = memchr(p, ';', (size_t)(end - p));
            const char *e = semi ? semi : end;
            const char *eq = memchr(p, '=', (size_t)(e - p));
            if (eq && (size_t)(eq - p) == n && !memcmp(p, name, n)) {
                size_t vlen = (size_t)(e - eq - 1);
                while (vlen && eq[vlen] == ' ')
                    vlen--;
                if (vlen >= cap)
                    return false;
                memcpy(out, eq + 1, vlen);
                out[vlen] = 0;
                return true;
            }
            p = e;
        }
    }
    return false;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long site_form_field(const char *data, size_t len, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    const char *p = data, *end = data + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(e - p));
        const char *kend = eq ? eq : e;
        if ((size_t)(kend - p) == n && !memcmp(p, name, n)) {
            size_t o = 0;
            for (const char *q = eq ? eq + 1 : e; q < e; q++) {
                char c = *q;
                if (c == '+') {
                    c = ' ';
                } else if (c == '%') {
                    if (e - q < 3)
                        return -2; /* "%" or "%4" at the end */
                    int hi = hexval(q[1]), lo = hexval(q[2]);
                    if (hi < 0 || lo < 0)
                        return -2;
                    c = (char)(hi << 4 | lo);
                    q += 2;
                }
                if (o + 1 >= cap)
                    return -2;
                out[o++] = c;
            }
            out[o] = 0;
            return (long)o;
        }
        p = amp ? amp + 1 : end;
    }
    return -1;
}

bool site_parse_uint(const char *s, size_t len, uint64_t min, uint64_t max, uint64_t *out)
{
    if (len == 0 || len > 19)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}

bool site_parse_id(const char *s, size_t len, int64_t *id)
{
    uint64_t v;
    if (!site_parse_uint(s, len, 1, INT64_MAX, &v) || s[0] == '0')
        return false;
    *id = (int64_t)v;
    return true;
}

bool site_route(struct site_req *r, site_step get, site_step post, bool *answered)
{
    if (r->head_or_get && get) {
        r->step = get;
        return true;
    }
    if (!strcmp(r->req->method, "POST") && post) {
        r->step = post;
        return true;
    }
    site_fail_method(r, get && post ? "GET, HEAD, POST" : get ? "GET, HEAD" : "POST");
    *answered = true;
    return true;
}

bool site_json_body(struct site_req *r, struct json_doc *doc)
{
    char err[160];
    if (json_parse(doc, r->req->body, r->req->body_len, err, sizeof err) == 0)
        return true;
    char msg[200];
    snprintf(msg, sizeof msg, "the body is not JSON: %s", err);
    site_fail(r, 400, "bad_json", msg);
    return false;
}
