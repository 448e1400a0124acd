/*
 * text.h — the text format of comments, text posts and "about" (SPEC §5
 * "Links, text posts, editing"): plain paragraphs separated by a blank line,
 * http(s) URLs turned into links, lines indented by two spaces shown as
 * code, everything else escaped. There is no other markup, so there is
 * nothing to get wrong: every byte a user wrote reaches the page escaped,
 * inside <p>, <pre><code> or the text and href of an <a>.
 *
 * Pure functions: no I/O, no clock; the renderer only appends to a buf.
 */
#ifndef LINKRAFT_SITE_TEXT_H
#define LINKRAFT_SITE_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

#define SITE_TEXT_MAX_CHARS 10000   /* comments and text posts */
#define SITE_ABOUT_MAX_CHARS 2000

/* Checks and normalises text (len bytes at s) into out (cap >= len + 1):
 * line ends become "\n", trailing white space goes; then it must be valid
 * UTF-8 without control characters other than newline and tab, of at most
 * max_chars characters, and (unless allow_empty) not blank. Returns NULL and
 * *out_len, or a message a person can act on. */
const char *site_text_check(const char *s, size_t len, size_t max_chars, bool allow_empty, char *out, size_t cap,
                            size_t *out_len);

/* Appends the HTML of text (len bytes; any bytes at all are safe). */
void site_text_render(struct buf *b, const char *s, size_t len);

#endif
