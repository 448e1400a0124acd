/*
 * json.c — strict JSON parser (two passes: one to validate and count, one to
 * build the tree in a single allocation) and string writer (json.h).
 */
#include "common/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct parser {
    const char *s;
    size_t len, pos;
    char *err;
    size_t errcap;
    int failed;
    /* Second pass only: where nodes and strings go. */
    struct json *nodes;
    size_t n_nodes;
    char *strings;
    size_t n_strings;
    /* First pass: how much the second needs. */
    size_t need_nodes, need_strings;
};

static void fail(struct parser *p, const char *what)
{
    if (!p->failed && p->err)
        snprintf(p->err, p->errcap, "%s at byte %zu", what, p->pos);
    p->failed = 1;
}

static void skip_ws(struct parser *p)
{
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

bool json_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) { n = 1; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { n = 2; cp = c & 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { n = 3; cp = c & 0x07; }
        else return false;
        for (size_t k = 1; k <= n; k++) {
            if (i + k >= len || (s[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}

static int hex4(struct parser *p, uint32_t *out)
{
    if (p->pos + 4 > p->len) {
        fail(p, "truncated \\u escape");
        return -1;
    }
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos++];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else { fail(p, "bad \\u escape"); return -1; }
    }
    *out = v;
    return 0;
}

static void emit(struct parser *p, char *out, size_t *n, const char *bytes, size_t k)
{
    if (out)
        memcpy(out + *n, bytes, k);
    *n += k;
}

/* Parses a string literal at p->pos (on the opening quote). With out == NULL
 * only measures. Returns decoded length. */
static size_t parse_string(struct parser *p, char *out)
{
    size_t n = 0;
    p->pos++; /* opening quote */
    size_t run_start = p->pos;
    while (1) {
        if (p->pos >= p->len) {
            fail(p, "unterminated string");
            return 0;
        }
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '"') {
            if (!json_utf8_valid(p->s + run_start, p->pos - run_start)) {
                fail(p, "invalid UTF-8 in string");
                return 0;
            }
            emit(p, out, &n, p->s + run_start, p->pos - run_start);
            p->pos++;
            return n;
        }
        if (c < 0x20) {
            fail(p, "control character in string");
            return 0;
        }
        if (c != '\\') {
            p->pos++;
            continue;
        }
        if (!json_utf8_valid(p->s + run_start, p->pos - run_start)) {
            fail(p, "invalid UTF-8 in string");
            return 0;
        }
        emit(p, out, &n, p->s + run_start, p->pos - run_start);
        p->pos++;
        if (p->pos >= p->len) {
            fail(p, "unterminated escape");
            return 0;
        }
        char e = p->s[p->pos++];
        char one;
        switch (e) {
        case '"': one = '"'; break;
        case '\\': one = '\\'; break;
        case '/': one = '/'; break;
        case 'b': one = '\b'; break;
        case 'f': one = '\f'; break;
        case 'n': one = '\n'; break;
        case 'r': one = '\r'; break;
        case 't': one = '\t'; break;
        case 'u': {
            uint32_t cp;
            if (hex4(p, &cp))
                return 0;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo;
                if (p->pos + 2 > p->len || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u') {
                    fail(p, "unpaired surrogate");
                    return 0;
                }
                p->pos += 2;
                if (hex4(p, &lo))
                    return 0;
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    fail(p, "unpaired surrogate");
                    return 0;
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                fail(p, "unpaired surrogate");
                return 0;
            }
            if (cp == 0) {
                fail(p, "\\u0000 is not allowed");
                return 0;
            }
            char u[4];
            size_t k;
            if (cp < 0x80) { u[0] = (char)cp; k = 1; }
            else if (cp < 0x800) { u[0] = (char)(0xC0 | cp >> 6); u[1] = (char)(0x80 | (cp & 0x3F)); k = 2; }
            else if (cp < 0x10000) {
                u[0] = (char)(0xE0 | cp >> 12); u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
                u[2] = (char)(0x80 | (cp & 0x3F)); k = 3;
            } else {
                u[0] = (char)(0xF0 | cp >> 18); u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
                u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); u[3] = (char)(0x80 | (cp & 0x3F)); k = 4;
            }
            emit(p, out, &n, u, k);
            run_start = p->pos;
            continue;
        }
        default:
            fail(p, "bad escape");
            return 0;
        }
        emit(p, out, &n, &one, 1);
        run_start = p->pos;
    }
}

static struct json *new_node(struct parser *p)
{
    if (!p->nodes) {
        p->need_nodes++;
        return NULL;
    }
    struct json *j = &p->nodes[p->n_nodes++];
    memset(j, 0, sizeof *j);
    return j;
}

static const char *store_string(struct parser *p, size_t start_pos, size_t *len)
{
    p->pos = start_pos;
    if (!p->strings) {
        *len = parse_string(p, NULL);
        p->need_strings += *len + 1;
        return NULL;
    }
    char *dst = p->strings + p->n_strings;
    *len = parse_string(p, dst);
    dst[*len] = 0;
    p->n_strings += *len + 1;
    return dst;
}

static int literal(struct parser *p, const char *word)
{
    size_t n = strlen(word);
    if (p->pos + n > p->len || memcmp(p->s + p->pos, word, n) != 0) {
        fail(p, "unexpected character");
        return -1;
    }
    p->pos += n;
    return 0;
}

static void parse_number(struct parser *p, struct json *j)
{
    size_t start = p->pos;
    if (p->pos < p->len && p->s[p->pos] == '-')
        p->pos++;
    if (p->pos >= p->len) {
        fail(p, "bad number");
        return;
    }
    if (p->s[p->pos] == '0') {
        p->pos++;
    } else if (p->s[p->pos] >= '1' && p->s[p->pos] <= '9') {
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
            p->pos++;
    } else {
        fail(p, "bad number");
        return;
    }
    int frac = 0;
    if (p->pos < p->len && p->s[p->pos] == '.') {
        frac = 1;
        p->pos++;
        size_t d = p->pos;
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
            p->pos++;
        if (p->pos == d) {
            fail(p, "bad number");
            return;
        }
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        frac = 1;
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
            p->pos++;
        size_t d = p->pos;
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
            p->pos++;
        if (p->pos == d) {
            fail(p, "bad number");
            return;
        }
    }
    /* Checked in the counting pass too: failing only in the building pass
     * would make json_parse report success with a broken tree. */
    char tmp[64];
    size_t n = p->pos - start;
    if (n >= sizeof tmp) {
        fail(p, "number too long");
        return;
    }
    if (!j)
        return;
    memcpy(tmp, p->s + start, n);
    tmp[n] = 0;
    j->type = JSON_NUMBER;
    j->num = strtod(tmp, NULL);
    if (!frac && j->num >= -9.2e18 && j->num <= 9.2e18) {
        j->is_int = true;
        j->i = strtoll(tmp, NULL, 10);
    }
}

static struct json *parse_value(struct parser *p, int depth)
{
    skip_ws(p);
    if (p->pos >= p->len) {
        fail(p, "unexpected end");
        return NULL;
    }
    if (depth >= JSON_MAX_DEPTH) { /* depth counts from 0: at most JSON_MAX_DEPTH levels */
        fail(p, "nesting too deep");
        return NULL;
    }
    struct json *j = new_node(p);
    char c = p->s[p->pos];
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        if (j)
            j->type = c == '{' ? JSON_OBJECT : JSON_ARRAY;
        p->pos++;
        skip_ws(p);
        struct json **tail = j ? &j->child : NULL;
        if (p->pos < p->len && p->s[p->pos] == close) {
            p->pos++;
            return j;
        }
        while (!p->failed) {
            const char *key = NULL;
            size_t key_len = 0;
            if (close == '}') {
                skip_ws(p);
                if (p->pos >= p->len || p->s[p->pos] != '"') {
                    fail(p, "expected a member name");
                    return NULL;
                }
                size_t at = p->pos;
                parse_string(p, NULL);
                if (p->failed)
                    return NULL;
                size_t end = p->pos;
                key = store_string(p, at, &key_len);
                p->pos = end;
                skip_ws(p);
                if (p->pos >= p->len || p->s[p->pos] != ':') {
                    fail(p, "expected ':'");
                    return NULL;
                }
                p->pos++;
            }
            struct json *child = parse_value(p, depth + 1);
            if (p->failed)
                return NULL;
            if (j) {
                child->key = key;
                child->key_len = key_len;
                *tail = child;
                tail = &child->next;
                j->len++;
            }
            skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] == ',') {
                p->pos++;
                continue;
            }
            if (p->pos < p->len && p->s[p->pos] == close) {
                p->pos++;
                return j;
            }
            fail(p, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
        }
        return NULL;
    }
    if (c == '"') {
        size_t at = p->pos;
        parse_string(p, NULL);
        if (p->failed)
            return NULL;
        size_t end = p->pos;
        size_t n;
        const char *s = store_string(p, at, &n);
        p->pos = end;
        if (j) {
            j->type = JSON_STRING;
            j->str = s;
            j->len = n;
        }
        return j;
    }
    if (c == 't' || c == 'f') {
        if (literal(p, c == 't' ? "true" : "false"))
            return NULL;
        if (j) {
            j->type = JSON_BOOL;
            j->b = c == 't';
        }
        return j;
    }
    if (c == 'n') {
        if (literal(p, "null"))
            return NULL;
        if (j)
            j->type = JSON_NULL;
        return j;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        parse_number(p, j);
        return j;
    }
    fail(p, "unexpected character");
    return NULL;
}

int json_parse(struct json_doc *doc, const char *text, size_t len, char *err, size_t errcap)
{
    memset(doc, 0, sizeof *doc);
    struct parser p = { .s = text, .len = len, .err = err, .errcap = errcap };
    parse_value(&p, 0);
    skip_ws(&p);
    if (!p.failed && p.pos != len)
        fail(&p, "trailing characters");
    if (p.failed)
        return -1;
    size_t nodes_bytes = p.need_nodes * sizeof(struct json);
    char *mem = malloc(nodes_bytes + p.need_strings + 1);
    if (!mem) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    struct parser q = { .s = text, .len = len, .err = err, .errcap = errcap,
                        .nodes = (struct json *)mem, .strings = mem + nodes_bytes };
    doc->root = parse_value(&q, 0);
    doc->mem = mem;
    return 0;
}

void json_free(struct json_doc *doc)
{
    free(doc->mem);
    doc->mem = NULL;
    doc->root = NULL;
}

const struct json *json_get(const struct json *obj, const char *key)
{
    if (!obj || obj->type != JSON_OBJECT)
        return NULL;
    size_t n = strlen(key);
    const struct json *found = NULL;
    for (const struct json *c = obj->child; c; c = c->next)
        if (c->key_len == n && memcmp(c->key, key, n) == 0)
            found = c; /* the last duplicate wins, as in most parsers */
    return found;
}

const char *json_get_str(const struct json *obj, const char *key, size_t *len)
{
    const struct json *j = json_get(obj, key);
    if (!j || j->type != JSON_STRING)
        return NULL;
    if (len)
        *len = j->len;
    return j->str;
}

void json_write_str(struct buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    buf_append(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[7];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            if (c < 0x20 || c == '<' || c == '>' || c == '&') {
                u[0] = '\\'; u[1] = 'u'; u[2] = '0'; u[3] = '0';
                u[4] = hex[c >> 4]; u[5] = hex[c & 15]; u[6] = 0;
                esc = u;
            }
        }
        if (!esc)
            continue;
        buf_append(b, s + run, i - run);
        buf_puts(b, esc);
        run = i + 1;
    }
    buf_append(b, s + run, len - run);
    buf_append(b, "\"", 1);
}

void json_write_error(struct buf *b, const char *code, const char *msg, const char *extra)
{
    buf_puts(b, "{\"error\":");
    json_write_str(b, code, strlen(code));
    buf_puts(b, ",\"message\":");
    json_write_str(b, msg, strlen(msg));
    if (extra && extra[0]) {
        buf_puts(b, ",");
        buf_puts(b, extra);
    }
    buf_puts(b, "}\n");
}
