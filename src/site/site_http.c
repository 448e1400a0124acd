/*
 * site_http.c — site_handle: the site on the real HTTP server (http.h). Kept
 * apart from site.c so that tests driving site_dispatch link without the
 * HTTP library.
 */
#include "site.h"

static void respond_http(void *rctx, int status, const char *headers, char *body, size_t len,
                         const struct site_lent *lent)
{
    struct http_exchange *x = rctx;
    if (lent)
        http_respond_lent(x, status, headers, lent->p, lent->len, lent->release, lent->arg);
    else if (body)
        http_respond_take(x, status, headers, body, len);
    else
        http_respond(x, status, headers, "", 0);
}

bool site_handle(struct site *s, struct http_exchange *x)
{
    return site_dispatch(s, http_exchange_request(x), respond_http, x);
}
