/*
 * fuzz_json.c — libFuzzer driver for the strict JSON parser (json_parse;
 * src/common/json.c), which reads every HTTP request body. The input is the
 * body. Properties of an accepted document: every node is well formed
 * (strings NUL-terminated, valid UTF-8, as long as they say; child counts
 * match; keys exactly on object members; depth within JSON_MAX_DEPTH);
 * json_get finds each member; and writing the tree back out as JSON and
 * parsing that gives the same tree.
 */
#include "fuzz.h"

#include "common/buf.h"
#include "common/json.h"

#include <math.h>
#include <string.h>

static void fz_json_walk(const struct json *j, int depth, int in_object)
{
    FUZZ_CHECK(j != NULL);
    FUZZ_CHECK(depth <= JSON_MAX_DEPTH);
    FUZZ_CHECK(j->type >= JSON_NULL && j->type <= JSON_OBJECT);
    if (in_object) {
        FUZZ_CHECK(j->key != NULL && strlen(j->key) == j->key_len);
        FUZZ_CHECK(json_utf8_valid(j->key, j->key_len));
    } else {
        FUZZ_CHECK(j->key == NULL);
    }
    if (j->type == JSON_STRING) {
        FUZZ_CHECK(j->str != NULL && strlen(j->str) == j->len);
        FUZZ_CHECK(json_utf8_valid(j->str, j->len));
    }
    if (j->type == JSON_NUMBER)
        FUZZ_CHECK(!isnan(j->num));
    if (j->type != JSON_ARRAY && j->type != JSON_OBJECT) {
        FUZZ_CHECK(j->child == NULL);
        return;
    }
    size_t n = 0;
    for (const struct json *c = j->child; c; c = c->next, n++) {
        fz_json_walk(c, depth + 1, j->type == JSON_OBJECT);
        if (j->type == JSON_OBJECT) {
            /* The last member with a name is the one json_get returns. */
            char *key = strndup(c->key, c->key_len);
            FUZZ_CHECK(key != NULL);
            const struct json *found = json_get(j, key);
            FUZZ_CHECK(found != NULL && found->key_len == c->key_len);
            free(key);
        }
    }
    FUZZ_CHECK(n == j->len);
}

/* Writes j back out as JSON text. Integers print exactly; other numbers with
 * 17 significant digits (exact for a double); infinities as 1e999, which
 * parses back to them. */
static void fz_json_write(struct buf *b, const struct json *j)
{
    switch (j->type) {
    case JSON_NULL: buf_puts(b, "null"); break;
    case JSON_BOOL: buf_puts(b, j->b ? "true" : "false"); break;
    case JSON_NUMBER:
        if (j->is_int)
            buf_printf(b, "%lld", (long long)j->i);
        else if (isinf(j->num))
            buf_puts(b, j->num > 0 ? "1e999" : "-1e999");
        else
            buf_printf(b, "%.17g", j->num);
        break;
    case JSON_STRING: json_write_str(b, j->str, j->len); break;
    case JSON_ARRAY:
    case JSON_OBJECT:
        buf_puts(b, j->type == JSON_ARRAY ? "[" : "{");
        for (const struct json *c = j->child; c; c = c->next) {
            if (c != j->child)
                buf_puts(b, ",");
            if (j->type == JSON_OBJECT) {
                json_write_str(b, c->key, c->key_len);
                buf_puts(b, ":");
            }
            fz_json_write(b, c);
        }
        buf_puts(b, j->type == JSON_ARRAY ? "]" : "}");
        break;
    }
}

static void fz_json_same(const struct json *a, const struct json *b)
{
    FUZZ_CHECK(a->type == b->type && a->len == b->len && a->key_len == b->key_len);
    if (a->key)
        FUZZ_CHECK(memcmp(a->key, b->key, a->key_len) == 0);
    if (a->type == JSON_BOOL)
        FUZZ_CHECK(a->b == b->b);
    if (a->type == JSON_NUMBER) {
        if (a->is_int)
            FUZZ_CHECK(b->is_int && a->i == b->i);
        else
            FUZZ_CHECK(a->num == b->num);
    }
    if (a->type == JSON_STRING)
        FUZZ_CHECK(memcmp(a->str, b->str, a->len) == 0);
    const struct json *x = a->child, *y = b->child;
    for (; x && y; x = x->next, y = y->next)
        fz_json_same(x, y);
    FUZZ_CHECK(x == NULL && y == NULL);
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    struct json_doc doc;
    char err[128];
    err[0] = 0;
    if (json_parse(&doc, (const char *)data, size, err, sizeof err) != 0) {
        FUZZ_CHECK(err[0] != 0); /* a rejection always says why */
        FUZZ_CHECK(doc.mem == NULL && doc.root == NULL);
        return 0;
    }
    FUZZ_CHECK(doc.root != NULL);
    fz_json_walk(doc.root, 0, 0);

    struct buf out;
    buf_init(&out);
    fz_json_write(&out, doc.root);
    FUZZ_CHECK(!out.oom);
    struct json_doc again;
    int rc = json_parse(&again, out.p, out.len, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "re-parse of \"%s\" failed: %s\n", out.p, err);
    FUZZ_CHECK(rc == 0);
    fz_json_same(doc.root, again.root);
    json_free(&again);
    buf_free(&out);
    json_free(&doc);
    return 0;
}
