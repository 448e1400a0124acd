/*
 * limits.c — the answer to new content over its user's rate (SPEC §5):
 * the state machine refused it at apply (CMD_ERR_RATE_LIMITED, with the
 * seconds until one more is allowed, src/store/search.c); this says so
 * with 429 and Retry-After, as JSON under /api/v1 or as a page.
 */
#include <inttypes.h>
#include <stdio.h>

#include "site/internal.h"

void site_fail_rate_limited(struct site_req *r, int64_t seconds, bool comment)
{
    if (seconds < 1)
        seconds = 1;
    char h[64], msg[200];
    snprintf(h, sizeof h, "Retry-After: %" PRId64 "\r\n", seconds);
    snprintf(msg, sizeof msg, "%s: try again in %" PRId64 " second%s",
             comment ? "you are commenting faster than new accounts may (one comment per 10 seconds in the "
                       "first day, then one per 2 seconds)"
                     : "you have posted as many links as allowed for now (5 an hour in an account's first "
                       "day, then 10 an hour)",
             seconds, seconds == 1 ? "" : "s");
    buf_puts(&r->hdrs, h);
    site_fail(r, 429, "rate_limited", msg);
}
