/* log.c — timestamped log lines on stderr (log.h). */
#include "sys/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char log_who[64] = "linkraft";
static enum log_level log_min = LOG_INFO;
static enum log_format log_fmt = LOG_FORMAT_TEXT;

int log_format_parse(const char *name, enum log_format *out)
{
    static const char *const names[] = { "text", "logfmt", "json" };
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, names[i])) {
            *out = (enum log_format)i;
            return 0;
        }
    return -1;
}

void log_set_format(enum log_format f) { log_fmt = f; }

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if none. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    size_t len = p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 && p[0] < 0xe0 ? 2 : 0;
    if (!len || len > n)
        return 0;
    /* No overlong forms, no surrogates, nothing past U+10FFFF. */
    if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0) || (p[0] == 0xf0 && p[1] < 0x90) ||
        (p[0] == 0xf4 && p[1] >= 0x90))
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

/* Appends s quoted for logfmt or JSON at out[*n] (cap bytes, room kept for
 * the line's end): quotes and backslashes escaped, control characters as
 * \n, \t or \u00XX, bytes that are not UTF-8 as U+FFFD, so that every line
 * parses whatever a message carries (a file name, a peer's garbage). */
static void put_quoted(char *out, size_t cap, size_t *n, const char *s)
{
    size_t i = *n;
    const unsigned char *p = (const unsigned char *)s;
    if (i < cap)
        out[i++] = '"';
    while (*p && i + 8 < cap) {
        if (*p == '"' || *p == '\\') {
            out[i++] = '\\';
            out[i++] = (char)*p++;
        } else if (*p == '\n' || *p == '\t') {
            out[i++] = '\\';
            out[i++] = *p++ == '\n' ? 'n' : 't';
        } else if (*p < 0x20 || *p == 0x7f) {
            i += (size_t)snprintf(out + i, cap - i, "\\u%04x", *p++);
        } else if (*p < 0x80) {
            out[i++] = (char)*p++;
        } else {
            size_t len = utf8_len(p, strlen((const char *)p));
            if (len) {
                memcpy(out + i, p, len);
                i += len;
                p += len;
            } else {
                memcpy(out + i, "\xef\xbf\xbd", 3); /* U+FFFD */
                i += 3;
                p++;
            }
        }
    }
    if (i < cap)
        out[i++] = '"';
    *n = i;
}

void log_init(const char *who)
{
    snprintf(log_who, sizeof log_who, "%s", who);
    const char *env = getenv("LINKRAFT_LOG");
    if (env && !strcmp(env, "debug"))
        log_min = LOG_DEBUG;
    else if (env && !strcmp(env, "warn"))
        log_min = LOG_WARN;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    static const char *const names[] = { "DEBUG", "INFO", "WARN", "ERROR" };
    static const char *const lower[] = { "debug", "info", "warn", "error" };
    if (level < log_min)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[96], line[2048];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    int n;
    va_list ap;
    va_start(ap, fmt);
    if (log_fmt == LOG_FORMAT_TEXT) {
        n = snprintf(line, sizeof line, "%s %s %s: ", when, log_who, names[level]);
        if (n > 0 && (size_t)n < sizeof line)
            n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    } else {
        char msg[1536];
        if (vsnprintf(msg, sizeof msg, fmt, ap) < 0)
            msg[0] = 0;
        size_t k = (size_t)snprintf(line, sizeof line, log_fmt == LOG_FORMAT_JSON
                                        ? "{\"time\":\"%s\",\"level\":\"%s\",\"who\":"
                                        : "time=%s level=%s who=", when, lower[level]);
        put_quoted(line, sizeof line - 2, &k, log_who);
        k += (size_t)snprintf(line + k, sizeof line - k, log_fmt == LOG_FORMAT_JSON ? ",\"msg\":" : " msg=");
        put_quoted(line, sizeof line - 2, &k, msg);
        if (log_fmt == LOG_FORMAT_JSON)
            line[k++] = '}';
        n = (int)k;
    }
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line - 1)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    fwrite(line, 1, (size_t)n, stderr); /* one write: lines from processes sharing a terminal don't interleave */
}
