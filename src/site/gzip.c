/*
 * gzip.c — pages sent compressed (RFC 9110 §8.4.1.3) to a client that says
 * it accepts gzip: whether it does, and the compression itself (zlib). A
 * page of links or comments is text that compresses four to eight times,
 * which is what a reader on a phone waits for.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "site/internal.h"

/* A q-value of zero ("0", "0.", "0.000") refuses the coding. */
static bool q_zero(const char *p, size_t n)
{
    if (!n || p[0] != '0')
        return false;
    for (size_t i = 1; i < n; i++)
        if (p[i] != '.' && p[i] != '0')
            return false;
    return true;
}

bool site_accepts_gzip(const char *v, size_t len)
{
    /* Accept-Encoding: 1#( codings [ OWS ";" OWS "q=" qvalue ] ), codings
     * being a token, "identity" or "*". gzip, x-gzip or * with q > 0. */
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && v[end] != ',')
            end++;
        size_t a = i, b = end;
        while (a < b && (v[a] == ' ' || v[a] == '\t'))
            a++;
        size_t name_end = a;
        while (name_end < b && v[name_end] != ';' && v[name_end] != ' ' && v[name_end] != '\t')
            name_end++;
        size_t n = name_end - a;
        bool named = (n == 4 && !strncasecmp(v + a, "gzip", 4)) || (n == 6 && !strncasecmp(v + a, "x-gzip", 6)) ||
                     (n == 1 && v[a] == '*');
        if (named) {
            bool refused = false;
            const char *semi = memchr(v + name_end, ';', b - name_end);
            while (semi) {
                size_t p = (size_t)(semi - v) + 1;
                while (p < b && (v[p] == ' ' || v[p] == '\t'))
                    p++;
                size_t pe = p;
                while (pe < b && v[pe] != ';' && v[pe] != ' ' && v[pe] != '\t')
                    pe++;
                if (pe - p >= 2 && (v[p] == 'q' || v[p] == 'Q') && v[p + 1] == '=')
                    refused = q_zero(v + p + 2, pe - p - 2);
                semi = pe < b ? memchr(v + pe, ';', b - pe) : NULL;
            }
            if (!refused)
                return true;
        }
        i = end + 1;
    }
    return false;
}

char *site_gzip(const char *in, size_t len, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    /* windowBits 15 + 16: a gzip header and trailer around the deflate data. */
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    uLong bound = deflateBound(&z, (uLong)len);
    char *out = malloc(bound + 1); /* + a NUL, as a struct buf's bytes have */
    if (!out) {
        deflateEnd(&z);
        return NULL;
    }
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)bound;
    int rc = deflate(&z, Z_FINISH);
    size_t produced = bound - z.avail_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    out[produced] = 0;
    *out_len = produced;
    return out;
}
