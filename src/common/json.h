/*
 * json.h — a small, strict JSON parser and writer for request bodies, API
 * responses and the CLI.
 *
 * The parser builds a tree in one allocation owned by struct json_doc; it
 * accepts only RFC 8259 JSON (no comments, no trailing commas), valid UTF-8,
 * and at most JSON_MAX_DEPTH levels; errors say what and at which byte.
 * Strings are decoded (escapes, \u surrogate pairs) and NUL-terminated; a
 * string containing \u0000 is rejected (it could not be used as a C string).
 */
#ifndef LINKRAFT_JSON_H
#define LINKRAFT_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define JSON_MAX_DEPTH 32

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json {
    enum json_type type;
    bool b;
    double num;
    bool is_int;        /* num is a whole number that fits int64 */
    int64_t i;
    const char *str;    /* STRING: decoded, NUL-terminated */
    size_t len;         /* STRING: bytes; ARRAY/OBJECT: number of children */
    const char *key;    /* member name when inside an object */
    size_t key_len;
    struct json *child; /* first child (ARRAY/OBJECT) */
    struct json *next;  /* next sibling */
};

struct json_doc {
    struct json *root;
    void *mem;          /* everything lives here */
};

/* Parses text. Returns 0, or -1 with a message in err ("expected ':' at byte 12"). */
int json_parse(struct json_doc *doc, const char *text, size_t len, char *err, size_t errcap);
void json_free(struct json_doc *doc);

/* Member of an object by name (NULL if absent or not an object). */
const struct json *json_get(const struct json *obj, const char *key);
/* Convenience: the string member, or NULL if absent or not a string. */
const char *json_get_str(const struct json *obj, const char *key, size_t *len);

/* Writer: appends s as a JSON string literal (quotes included), escaping
 * control characters, quotes, backslashes and <, >, & (safe inside HTML). */
void json_write_str(struct buf *b, const char *s, size_t len);

/* The body of every JSON error answer (SPEC §4), in one place so that every
 * edge escapes alike: {"error":CODE,"message":MSG[,EXTRA]}\n, where extra is
 * NULL or members already written as JSON ("\"leader\":3"). */
void json_write_error(struct buf *b, const char *code, const char *msg, const char *extra);

/* Checks bytes are valid UTF-8 (no overlongs, no surrogates). */
bool json_utf8_valid(const char *s, size_t len);

#endif
