/*
 * cluster_file.c — parsing and checking the cluster file (cluster_file.h).
 */
#include "sys/cluster_file.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLUSTER_FILE_MAX (1 << 20)

int cluster_split_addr(const char *addr, char *host, size_t hostcap, uint16_t *port, char *err, size_t errcap)
{
    const char *colon, *host_start = addr;
    size_t hlen;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close || close[1] != ':') {
            snprintf(err, errcap, "'%s': an IPv6 address is written [ADDRESS]:PORT", addr);
            return -1;
        }
        hlen = (size_t)(close - addr - 1);
        colon = close + 1;
        host_start = addr + 1; /* messages below still quote addr whole */
    } else {
        colon = strrchr(addr, ':');
        if (!colon || colon == addr) {
            snprintf(err, errcap, "'%s': expected HOST:PORT", addr);
            return -1;
        }
        if (memchr(addr, ':', (size_t)(colon - addr))) {
            snprintf(err, errcap, "'%s': write an IPv6 address in brackets: [ADDRESS]:PORT", addr);
            return -1;
        }
        hlen = (size_t)(colon - addr);
    }
    if (hlen == 0 || hlen >= hostcap) {
        snprintf(err, errcap, "'%s': the host part is empty or too long", addr);
        return -1;
    }
    memcpy(host, host_start, hlen);
    host[hlen] = 0;
    for (size_t i = 0; i < hlen; i++) {
        unsigned char ch = (unsigned char)host[i];
        if (!(isalnum(ch) || ch == '.' || ch == '-' || ch == ':' || ch == '_' || ch == '%')) {
            snprintf(err, errcap, "'%s': the host contains '%c'", addr, ch);
            return -1;
        }
    }
    const char *p = colon + 1;
    if (!*p) {
        snprintf(err, errcap, "'%s': the port is missing", addr);
        return -1;
    }
    unsigned long v = 0;
    for (; *p; p++) {
        if (!isdigit((unsigned char)*p) || (v = v * 10 + (unsigned long)(*p - '0')) > 65535) {
            snprintf(err, errcap, "'%s': the port must be a number from 1 to 65535", addr);
            return -1;
        }
    }
    if (v == 0) {
        snprintf(err, errcap, "'%s': the port must be a number from 1 to 65535", addr);
        return -1;
    }
    *port = (uint16_t)v;
    return 0;
}

const struct cluster_member *cluster_find(const struct cluster *c, uint64_t id)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->members[i].id == id)
            return &c->members[i];
    return NULL;
}

static int parse_line(char *line, const char *name, int lineno, struct cluster *c, char *err, size_t errcap)
{
    char *hash = strchr(line, '#');
    if (hash)
        *hash = 0;
    char *fields[4];
    int n = 0;
    for (char *tok = strtok(line, " \t\r"); tok; tok = strtok(NULL, " \t\r")) {
        if (n == 4)
            break;
        fields[n++] = tok;
    }
    if (n == 0)
        return 0;
    if (n != 3) {
        snprintf(err, errcap, "%s:%d: expected 'ID RAFT-ADDRESS HTTP-ADDRESS', found %d field%s",
                 name, lineno, n, n == 1 ? "" : "s");
        return -1;
    }
    /* Digits only: strtoull alone would also take "+1", and a leading \v or
     * \f (not field separators) followed by a minus sign, which it negates:
     * "\v-18446744073709551615" would be member 1. */
    size_t digits = strspn(fields[0], "0123456789");
    char *end;
    errno = 0;
    unsigned long long id = strtoull(fields[0], &end, 10);
    if (digits == 0 || fields[0][digits] || *end || errno || id == 0 || id > INT64_MAX) {
        snprintf(err, errcap, "%s:%d: the id '%s' must be a whole number from 1 to %lld",
                 name, lineno, fields[0], (long long)INT64_MAX);
        return -1;
    }
    if (cluster_find(c, id)) {
        snprintf(err, errcap, "%s:%d: id %llu appears twice", name, lineno, id);
        return -1;
    }
    if (c->n == CLUSTER_MAX_MEMBERS) {
        snprintf(err, errcap, "%s:%d: more than %d members", name, lineno, CLUSTER_MAX_MEMBERS);
        return -1;
    }
    char host[256], why[300];
    uint16_t port;
    for (int f = 1; f <= 2; f++) {
        if (strlen(fields[f]) >= CLUSTER_ADDR_MAX ||
            cluster_split_addr(fields[f], host, sizeof host, &port, why, sizeof why) != 0) {
            snprintf(err, errcap, "%s:%d: bad %s address %s", name, lineno, f == 1 ? "raft" : "http",
                     strlen(fields[f]) >= CLUSTER_ADDR_MAX ? "(too long)" : why);
            return -1;
        }
        for (size_t i = 0; i < c->n; i++) {
            if (!strcmp(c->members[i].raft_addr, fields[f]) || !strcmp(c->members[i].http_addr, fields[f])) {
                snprintf(err, errcap, "%s:%d: address %s is already used by member %llu",
                         name, lineno, fields[f], (unsigned long long)c->members[i].id);
                return -1;
            }
        }
    }
    if (!strcmp(fields[1], fields[2])) {
        snprintf(err, errcap, "%s:%d: the raft and http addresses must differ", name, lineno);
        return -1;
    }
    struct cluster_member *m = &c->members[c->n++];
    m->id = id;
    snprintf(m->raft_addr, sizeof m->raft_addr, "%s", fields[1]);
    snprintf(m->http_addr, sizeof m->http_addr, "%s", fields[2]);
    return 0;
}

int cluster_parse(const char *text, size_t len, const char *name, struct cluster *c, char *err, size_t errcap)
{
    memset(c, 0, sizeof *c);
    int lineno = 0;
    size_t pos = 0;
    while (pos < len) {
        size_t end = pos;
        while (end < len && text[end] != '\n')
            end++;
        lineno++;
        char line[1024];
        if (end - pos >= sizeof line) {
            snprintf(err, errcap, "%s:%d: line too long", name, lineno);
            return -1;
        }
        memcpy(line, text + pos, end - pos);
        line[end - pos] = 0;
        if (memchr(text + pos, 0, end - pos)) {
            snprintf(err, errcap, "%s:%d: contains a NUL byte", name, lineno);
            return -1;
        }
        if (parse_line(line, name, lineno, c, err, errcap) != 0)
            return -1;
        pos = end + 1;
    }
    if (c->n == 0) {
        snprintf(err, errcap, "%s: no members (expected lines 'ID RAFT-ADDRESS HTTP-ADDRESS')", name);
        return -1;
    }
    return 0;
}

int cluster_load(const char *path, struct cluster *c, char *err, size_t errcap)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errcap, "cannot open cluster file %s: %s", path, strerror(errno));
        return -1;
    }
    char *buf = malloc(CLUSTER_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    size_t n = fread(buf, 1, CLUSTER_FILE_MAX + 1, f);
    int bad = ferror(f);
    fclose(f);
    int rc = -1;
    if (bad)
        snprintf(err, errcap, "cannot read cluster file %s", path);
    else if (n > CLUSTER_FILE_MAX)
        snprintf(err, errcap, "cluster file %s is larger than 1 MiB", path);
    else
        rc = cluster_parse(buf, n, path, c, err, errcap);
    free(buf);
    return rc;
}
