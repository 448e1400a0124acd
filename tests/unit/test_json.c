/*
 * test_json.c — the strict JSON parser and the string writer: values,
 * escapes, UTF-8, depth limit, and one error per kind of bad input.
 */
#include <string.h>

#include "../harness.h"
#include "common/json.h"

static int parse(struct json_doc *d, const char *s, char *err)
{
    return json_parse(d, s, strlen(s), err, 128);
}

TEST(values_and_lookup)
{
    struct json_doc d;
    char err[128];
    REQUIRE(parse(&d, " {\"title\": \"Hi \\\"there\\\"\", \"n\": -12, \"x\": 1.5e3, \"ok\": true,"
                      " \"none\": null, \"list\": [1, {\"a\": \"b\"}, []], \"u\": \"\\u00e9\\ud83d\\ude00\"} ", err) == 0);
    const struct json *r = d.root;
    CHECK_EQ_I(r->type, JSON_OBJECT);
    CHECK_EQ_U(r->len, 7);
    size_t n;
    CHECK_STR(json_get_str(r, "title", &n), "Hi \"there\"");
    CHECK_EQ_U(n, 10);
    CHECK(json_get(r, "n")->is_int && json_get(r, "n")->i == -12);
    CHECK(!json_get(r, "x")->is_int && json_get(r, "x")->num == 1500.0);
    CHECK(json_get(r, "ok")->type == JSON_BOOL && json_get(r, "ok")->b);
    CHECK(json_get(r, "none")->type == JSON_NULL);
    const struct json *list = json_get(r, "list");
    CHECK(list->type == JSON_ARRAY && list->len == 3);
    CHECK_STR(json_get_str(list->child->next, "a", NULL), "b");
    CHECK_STR(json_get_str(r, "u", NULL), "\xc3\xa9\xf0\x9f\x98\x80");
    CHECK(json_get(r, "missing") == NULL);
    CHECK(json_get_str(r, "n", NULL) == NULL); /* not a string */
    json_free(&d);
}

TEST(rejects_bad_input_with_position)
{
    const char *bad[] = {
        "", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "[1,]", "{'a':1}", "tru", "01", "1.", "-", "1e",
        "\"abc", "\"a\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00x\"", "\"\\u0000\"",
        "\"\x01\"", "\"\xff\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "{} x", "[1] [2]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct json_doc d;
        char err[128] = "";
        CHECK_EQ_I(parse(&d, bad[i], err), -1);
        CHECK(strstr(err, "at byte") != NULL);
    }
    char deep[200];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    struct json_doc d;
    char err[128];
    CHECK_EQ_I(json_parse(&d, deep, 200, err, sizeof err), -1);
    CHECK(strstr(err, "too deep") != NULL);
}

TEST(writer_escapes)
{
    struct buf b;
    buf_init(&b);
    json_write_str(&b, "a\"b\\c\n<script>&\x01", 16);
    CHECK_STR(b.p, "\"a\\\"b\\\\c\\n\\u003cscript\\u003e\\u0026\\u0001\"");
    /* What the writer makes, the parser reads back exactly. */
    struct json_doc d;
    char err[128];
    REQUIRE(json_parse(&d, b.p, b.len, err, sizeof err) == 0);
    CHECK(d.root->len == 16 && memcmp(d.root->str, "a\"b\\c\n<script>&\x01", 16) == 0);
    json_free(&d);
    buf_free(&b);
}

TEST(utf8_validation)
{
    CHECK(json_utf8_valid("plain", 5));
    CHECK(json_utf8_valid("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9));
    CHECK(!json_utf8_valid("\xc3", 1));        /* truncated */
    CHECK(!json_utf8_valid("\xe2\x82", 2));    /* truncated */
    CHECK(!json_utf8_valid("\xc1\xbf", 2));    /* overlong */
    CHECK(!json_utf8_valid("\xe0\x80\xaf", 3));/* overlong */
    CHECK(!json_utf8_valid("\xf4\x90\x80\x80", 4)); /* beyond U+10FFFF */
    CHECK(!json_utf8_valid("\x80", 1));
}

/* Found by fuzz_json: a number too long to convert failed only the second
 * (building) pass, so json_parse returned 0 with root NULL or a NULL node
 * where the number was. It must be an error, at top level and nested. */
TEST(long_number_is_an_error)
{
    char text[80] = "[";
    memset(text + 1, '7', 64);
    strcpy(text + 65, "]");
    struct json_doc d;
    char err[128] = "";
    CHECK_EQ_I(parse(&d, text, err), -1);
    CHECK(strstr(err, "number too long") != NULL);
    CHECK(d.root == NULL && d.mem == NULL);
    CHECK_EQ_I(parse(&d, text + 1, err), -1); /* top level: 64 digits then ']' */
    text[64] = 0;                             /* 63 digits: the longest kept */
    REQUIRE(parse(&d, text, err) == -1);      /* unterminated array */
    REQUIRE(parse(&d, text + 1, err) == 0);
    CHECK(d.root != NULL && d.root->type == JSON_NUMBER);
    json_free(&d);
}

TEST(depth_limit_is_exact)
{
    char text[2 * JSON_MAX_DEPTH + 4];
    for (int levels = JSON_MAX_DEPTH; levels <= JSON_MAX_DEPTH + 1; levels++) {
        int n = 0;
        for (int i = 0; i < levels; i++)
            text[n++] = '[';
        for (int i = 0; i < levels; i++)
            text[n++] = ']';
        struct json_doc doc;
        char err[128];
        int rc = json_parse(&doc, text, (size_t)n, err, sizeof err);
        if (levels == JSON_MAX_DEPTH) {
            CHECK_EQ_I(rc, 0);
            if (rc == 0)
                json_free(&doc);
        } else {
            CHECK_EQ_I(rc, -1);
            CHECK(strstr(err, "too deep") != NULL);
        }
    }
}

/* Every edge's error answer is built by json_write_error: a message holding
 * a quote, a backslash or a newline (an error text from a peer, a path) stays
 * one valid JSON object (the gateway and a forwarding follower once wrote
 * it with a bare %s). */
TEST(error_body_escapes_message)
{
    struct buf b;
    buf_init(&b);
    json_write_error(&b, "bad_gateway", "the leader said \"no\" \\ then\nclosed", "\"leader\":3");
    struct json_doc d;
    char err[128];
    CHECK(json_parse(&d, b.p, b.len, err, sizeof err) == 0);
    size_t len;
    const char *msg = json_get_str(d.root, "message", &len);
    CHECK(msg && !strcmp(msg, "the leader said \"no\" \\ then\nclosed"));
    CHECK(json_get(d.root, "leader") && json_get(d.root, "leader")->i == 3);
    CHECK(b.len > 0 && b.p[b.len - 1] == '\n');
    json_free(&d);
    buf_free(&b);
}

int main(void)
{
    RUN(values_and_lookup);
    RUN(rejects_bad_input_with_position);
    RUN(writer_escapes);
    RUN(utf8_validation);
    RUN(long_number_is_an_error);
    RUN(depth_limit_is_exact);
    RUN(error_body_escapes_message);
    return HARNESS_END();
}
