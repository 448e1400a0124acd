/*
 * html.c — escaping user text for HTML, and the two ways a page shows a
 * time: RFC 3339 in UTC (machine-readable, the API's "created") and
 * relative ("3 hours ago"); and a message as a sentence.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "site/internal.h"

void site_html_escape(struct buf *b, const char *s, size_t len)
{
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        const char *rep;
        switch (s[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: continue;
        }
        buf_append(b, s + start, i - start);
        buf_puts(b, rep);
        start = i + 1;
    }
    buf_append(b, s + start, len - start);
}

void site_html_sentence(struct buf *b, const char *msg)
{
    size_t len = strlen(msg);
    if (!len)
        return;
    char first = msg[0] >= 'a' && msg[0] <= 'z' ? (char)(msg[0] - 'a' + 'A') : msg[0];
    site_html_escape(b, &first, 1);
    site_html_escape(b, msg + 1, len - 1);
    char last = msg[len - 1];
    if (last != '.' && last != '!' && last != '?')
        buf_puts(b, ".");
}

void site_rfc3339(uint64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out, 32, "1970-01-01T00:00:00Z");
}

static const struct { uint64_t secs; const char *unit; } units[] = {
    { 365 * 86400ull, "year" }, { 30 * 86400ull, "month" }, { 86400, "day" },
    { 3600, "hour" }, { 60, "minute" },
};

void site_relative_time(uint64_t then_ms, uint64_t now_ms, char *out, size_t cap)
{
    uint64_t s = now_ms > then_ms ? (now_ms - then_ms) / 1000 : 0;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (s >= units[i].secs) {
            uint64_t n = s / units[i].secs;
            snprintf(out, cap, "%llu %s%s ago", (unsigned long long)n, units[i].unit, n == 1 ? "" : "s");
            return;
        }
    }
    snprintf(out, cap, "just now");
}

uint64_t site_relative_time_next(uint64_t then_ms, uint64_t now_ms)
{
    /* The string is a function of s = whole seconds since then (0 before
     * then): it changes when s reaches the next multiple of the unit in use,
     * or the threshold of the next larger unit, whichever is first
     * (12 months at 360 days turn into "1 year" at 365, not 390). */
    uint64_t s = now_ms > then_ms ? (now_ms - then_ms) / 1000 : 0;
    size_t n_units = sizeof units / sizeof units[0];
    uint64_t next = units[n_units - 1].secs; /* "just now" until a minute */
    for (size_t i = 0; i < n_units; i++) {
        if (s >= units[i].secs) {
            next = (s / units[i].secs + 1) * units[i].secs;
            if (i > 0 && next > units[i - 1].secs)
                next = units[i - 1].secs;
            break;
        }
    }
    return then_ms + next * 1000;
}
