/*
 * text.c — checking and rendering the text format (text.h).
 *
 * Rendering works line by line: a run of lines that start with two spaces
 * is one <pre><code> block; a run of other non-blank lines is one <p>; blank
 * lines separate. Inside a paragraph, "http://" or "https://" not preceded
 * by a letter or digit starts a link that runs to the next white space or
 * one of < > " (which the text format never lets into a URL), minus
 * trailing punctuation that more likely ends the sentence than the URL.
 */
#include "site/text.h"

#include <string.h>
#include <strings.h>

#include "site/internal.h"

/* The length of the UTF-8 sequence at s (n bytes left), or 0 if invalid
 * (overlong forms, surrogates and code points past U+10FFFF included). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
    if (!len || c > 0xf4 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if (len == 3 && ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0)))
        return 0;
    if (len == 4 && ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90)))
        return 0;
    return len;
}

const char *site_text_check(const char *s, size_t len, size_t max_chars, bool allow_empty, char *out, size_t cap,
                            size_t *out_len)
{
    if (cap < len + 1)
        return "The text is too long.";
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\r') {
            out[n++] = '\n';
            if (i + 1 < len && s[i + 1] == '\n')
                i++;
        } else {
            out[n++] = s[i];
        }
    }
    while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '\n' || out[n - 1] == '\t'))
        n--;
    out[n] = 0;
    size_t chars = 0;
    bool blank = true;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)out[i];
        if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
            return "The text contains a control character; use plain text.";
        size_t l = utf8_len((const unsigned char *)out + i, n - i);
        if (!l)
            return "The text is not valid UTF-8.";
        if (c != ' ' && c != '\n' && c != '\t')
            blank = false;
        i += l;
        chars++;
    }
    if (chars > max_chars)
        return max_chars == SITE_ABOUT_MAX_CHARS ? "The text is longer than 2,000 characters."
                                                 : "The text is longer than 10,000 characters.";
    if (blank && !allow_empty)
        return "Write something first: the text is empty.";
    *out_len = n;
    return NULL;
}

static bool is_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

static bool ends_url(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '<' || c == '>' || c == '"' || (unsigned char)c < 0x20;
}

/* Length of a URL starting at s (n bytes), 0 if there is none. */
static size_t url_at(const char *s, size_t n)
{
    size_t scheme = n >= 8 && !strncasecmp(s, "https://", 8) ? 8 : n >= 7 && !strncasecmp(s, "http://", 7) ? 7 : 0;
    if (!scheme)
        return 0;
    size_t end = scheme;
    while (end < n && !ends_url(s[end]))
        end++;
    /* Punctuation at the end belongs to the sentence, and so does a closing
     * parenthesis the URL did not open. */
    for (;;) {
        if (end <= scheme)
            return 0;
        char c = s[end - 1];
        if (strchr(".,;:!?'*", c)) {
            end--;
            continue;
        }
        if (c == ')') {
            int open = 0;
            for (size_t i = scheme; i < end; i++)
                open += s[i] == '(' ? 1 : s[i] == ')' ? -1 : 0;
            if (open < 0) {
                end--;
                continue;
            }
        }
        break;
    }
    return end > scheme ? end : 0;
}

static void inline_text(struct buf *b, const char *s, size_t len)
{
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        if ((s[i] != 'h' && s[i] != 'H') || (i > 0 && is_alnum(s[i - 1])))
            continue;
        size_t u = url_at(s + i, len - i);
        if (!u)
            continue;
        site_html_escape(b, s + start, i - start);
        buf_puts(b, "<a href=\"");
        site_html_escape(b, s + i, u);
        buf_puts(b, "\" rel=\"nofollow ugc noopener\">");
        site_html_escape(b, s + i, u);
        buf_puts(b, "</a>");
        i += u - 1;
        start = i + 1;
    }
    site_html_escape(b, s + start, len - start);
}

void site_text_render(struct buf *b, const char *s, size_t len)
{
    enum { NONE, PARA, CODE } in = NONE;
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(s + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - s) : len;
        const char *line = s + i;
        size_t n = end - i;
        bool blank = true;
        for (size_t k = 0; k < n; k++)
            if (line[k] != ' ' && line[k] != '\t' && line[k] != '\r')
                blank = false;
        bool code = !blank && n >= 2 && line[0] == ' ' && line[1] == ' ';
        if (blank || (code ? in == PARA : in == CODE)) {
            buf_puts(b, in == PARA ? "</p>" : in == CODE ? "</code></pre>" : "");
            in = NONE;
        }
        if (code) {
            buf_puts(b, in == NONE ? "<pre><code>" : "\n");
            site_html_escape(b, line + 2, n - 2);
            in = CODE;
        } else if (!blank) {
            buf_puts(b, in == NONE ? "<p>" : "\n");
            inline_text(b, line, n);
            in = PARA;
        }
        i = end + 1;
    }
    buf_puts(b, in == PARA ? "</p>" : in == CODE ? "</code></pre>" : "");
}
