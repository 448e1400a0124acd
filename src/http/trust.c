/*
 * trust.c — which peers are proxies whose X-Forwarded-For and
 * X-Forwarded-Proto count (SPEC §5 "Errors and limits"), and who the client
 * of a request is given them.
 *
 * A header a client sent itself proves nothing: only an address that a
 * trusted proxy appended is believed. So the client is found the way
 * nginx's real_ip_recursive finds it: start from the TCP peer; while the
 * address in hand is a trusted proxy, step to the X-Forwarded-For entry
 * to the left of the ones already used (the one that proxy appended). The
 * first untrusted address is the client. Every address is kept as 16
 * bytes (IPv4 as ::ffff:a.b.c.d) so one comparison serves both families.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "http/internal.h"

void http_trust_init(struct http_trust *t) { memset(t, 0, sizeof *t); }

void http_trust_free(struct http_trust *t)
{
    free(t->nets);
    memset(t, 0, sizeof *t);
}

/* "1.2.3.4", "::1", "[::1]" -> 16 bytes (IPv4 mapped). */
bool http_ip_parse(const char *s, size_t len, uint8_t out[16])
{
    char buf[INET6_ADDRSTRLEN + 2];
    if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
        s++;
        len -= 2;
    }
    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, s, len);
    buf[len] = 0;
    struct in_addr a4;
    if (inet_pton(AF_INET, buf, &a4) == 1) {
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &a4, 4);
        return true;
    }
    return inet_pton(AF_INET6, buf, out) == 1;
}

static bool is_v4_mapped(const uint8_t a[16])
{
    static const uint8_t prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    return memcmp(a, prefix, 12) == 0;
}

static int push(struct http_trust *t, const uint8_t addr[16], unsigned bits)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        struct http_net *p = realloc(t->nets, cap * sizeof *p);
        if (!p)
            return -1;
        t->nets = p;
        t->cap = cap;
    }
    struct http_net *n = &t->nets[t->n++];
    memcpy(n->addr, addr, 16);
    n->bits = (uint8_t)bits;
    /* Keep only the network part, so matching is a masked compare. */
    for (unsigned i = bits; i < 128; i++)
        n->addr[i / 8] &= (uint8_t)~(0x80u >> (i % 8));
    return 0;
}

int http_trust_add(struct http_trust *t, const char *list, char *err, size_t errcap)
{
    const char *p = list;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && (*p == ' ')) { p++; len--; }
        while (len && p[len - 1] == ' ') len--;
        const char *slash = memchr(p, '/', len);
        size_t alen = slash ? (size_t)(slash - p) : len;
        uint8_t addr[16];
        if (!http_ip_parse(p, alen, addr)) {
            snprintf(err, errcap, "'%.*s' is not an IP address or CIDR (write 10.0.0.0/8, 192.168.1.5 or fd00::/8)",
                     (int)len, p);
            return -1;
        }
        unsigned max = is_v4_mapped(addr) ? 32 : 128, bits = max;
        if (slash) {
            char *e;
            unsigned long b = strtoul(slash + 1, &e, 10);
            if (e != p + len || slash + 1 == e || b > max) {
                snprintf(err, errcap, "'%.*s': the prefix length must be 0 to %u", (int)len, p, max);
                return -1;
            }
            bits = (unsigned)b;
        }
        if (push(t, addr, bits + (128 - max)) < 0) {
            snprintf(err, errcap, "out of memory");
            return -1;
        }
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

int http_trust_add_host(struct http_trust *t, const char *addr, char *err, size_t errcap)
{
    /* "host:port", "[v6]:port", "name:port": the host part only. */
    char host[256];
    const char *h = addr, *colon;
    size_t hlen;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close) goto bad;
        h = addr + 1;
        hlen = (size_t)(close - h);
    } else {
        colon = strrchr(addr, ':');
        hlen = colon ? (size_t)(colon - addr) : strlen(addr);
    }
    if (hlen == 0 || hlen >= sizeof host) goto bad;
    memcpy(host, h, hlen);
    host[hlen] = 0;
    uint8_t a[16];
    if (http_ip_parse(host, hlen, a))
        return push(t, a, 128) < 0 ? -1 : 0;
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc) {
        snprintf(err, errcap, "cannot resolve '%s': %s", host, gai_strerror(rc));
        return -1;
    }
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        char ip[INET6_ADDRSTRLEN];
        const void *src = ai->ai_family == AF_INET ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                                                   : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
        if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
            inet_ntop(ai->ai_family, src, ip, sizeof ip) && http_ip_parse(ip, strlen(ip), a) && push(t, a, 128) < 0) {
            freeaddrinfo(res);
            snprintf(err, errcap, "out of memory");
            return -1;
        }
    }
    freeaddrinfo(res);
    return 0;
bad:
    snprintf(err, errcap, "'%s' is not host:port", addr);
    return -1;
}

int http_trust_copy(struct http_trust *dst, const struct http_trust *src)
{
    http_trust_init(dst);
    if (!src || !src->n)
        return 0;
    dst->nets = malloc(src->n * sizeof *dst->nets);
    if (!dst->nets)
        return -1;
    memcpy(dst->nets, src->nets, src->n * sizeof *dst->nets);
    dst->n = dst->cap = src->n;
    return 0;
}

bool http_trust_has(const struct http_trust *t, const uint8_t addr[16])
{
    for (size_t i = 0; t && i < t->n; i++) {
        const struct http_net *n = &t->nets[i];
        unsigned full = n->bits / 8, rest = n->bits % 8;
        if (memcmp(n->addr, addr, full))
            continue;
        if (rest && ((addr[full] ^ n->addr[full]) & (uint8_t)(0xff00u >> rest)))
            continue;
        return true;
    }
    return false;
}

static void ip_format(const uint8_t a[16], char *out, size_t cap)
{
    if (is_v4_mapped(a))
        inet_ntop(AF_INET, a + 12, out, (socklen_t)cap);
    else
        inet_ntop(AF_INET6, a, out, (socklen_t)cap);
}

/* The last comma-separated element of v[0..*len) that has not been used:
 * returns its start and sets *len to what is left before it. */
static const char *take_last(const char *v, size_t *len, size_t *elen)
{
    size_t end = *len;
    while (end && (v[end - 1] == ' ' || v[end - 1] == '\t' || v[end - 1] == ','))
        end--;
    size_t start = end;
    while (start && v[start - 1] != ',')
        start--;
    const char *e = v + start;
    size_t n = end - start;
    while (n && (*e == ' ' || *e == '\t')) { e++; n--; }
    *elen = n;
    *len = start ? start - 1 : 0;
    return n ? e : NULL;
}

void http_trust_resolve(const struct http_trust *t, const uint8_t peer[16], bool peer_known,
                        const struct http_request *req, bool tls, char *client, size_t cap, bool *secure)
{
    uint8_t cur[16];
    memcpy(cur, peer, 16);
    bool trusted = peer_known && http_trust_has(t, cur);
    *secure = tls;
    if (trusted) {
        /* The proto the first trusted proxy saw: its header is the last one. */
        const char *proto = NULL;
        size_t plen = 0;
        for (size_t i = 0; i < req->n_headers; i++)
            if (req->headers[i].name_len == 17 && !strncasecmp(req->headers[i].name, "X-Forwarded-Proto", 17)) {
                proto = req->headers[i].value;
                plen = req->headers[i].value_len;
            }
        if (proto) {
            size_t elen, left = plen;
            const char *e = take_last(proto, &left, &elen);
            *secure = tls || (e && elen == 5 && !strncasecmp(e, "https", 5));
        }
    }
    /* Walk the X-Forwarded-For headers right to left, last header first. */
    for (size_t i = req->n_headers; trusted && i-- > 0;) {
        const struct http_header *h = &req->headers[i];
        if (h->name_len != 15 || strncasecmp(h->name, "X-Forwarded-For", 15))
            continue;
        size_t left = h->value_len, elen;
        const char *e;
        while (trusted && (e = take_last(h->value, &left, &elen))) {
            uint8_t a[16];
            if (!http_ip_parse(e, elen, a)) {
                /* A trusted proxy appends addresses; anything else was
                 * there before it and is the client's own claim. */
                trusted = false;
                break;
            }
            memcpy(cur, a, 16);
            trusted = http_trust_has(t, cur);
            if (!left)
                break;
        }
    }
    if (!peer_known) {
        snprintf(client, cap, "?");
        return;
    }
    ip_format(cur, client, cap);
}
