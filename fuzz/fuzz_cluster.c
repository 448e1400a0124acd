/*
 * fuzz_cluster.c — libFuzzer driver for the cluster-file parser
 * (cluster_parse; src/sys/cluster_file.c). The input is the file's text.
 * Properties: a rejection says why, naming the file; an accepted file has
 * 1..CLUSTER_MAX_MEMBERS members with distinct ids in 1..INT64_MAX and
 * distinct, well-formed addresses; and writing the members back out as a
 * cluster file and parsing that gives the same members.
 */
#include "fuzz.h"

#include "sys/cluster_file.h"

#include <string.h>

static void fz_cluster_check_addr(const char *addr)
{
    char host[256], why[300];
    uint16_t port = 0;
    FUZZ_CHECK(strlen(addr) > 0 && strlen(addr) < CLUSTER_ADDR_MAX);
    FUZZ_CHECK(cluster_split_addr(addr, host, sizeof host, &port, why, sizeof why) == 0);
    FUZZ_CHECK(port != 0 && host[0] != 0);
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    struct cluster c;
    char err[512];
    err[0] = 0;
    if (cluster_parse((const char *)data, size, "fuzz.cluster", &c, err, sizeof err) != 0) {
        FUZZ_CHECK(strncmp(err, "fuzz.cluster:", 13) == 0);
        return 0;
    }
    FUZZ_CHECK(c.n >= 1 && c.n <= CLUSTER_MAX_MEMBERS);
    for (size_t i = 0; i < c.n; i++) {
        const struct cluster_member *m = &c.members[i];
        FUZZ_CHECK(m->id >= 1 && m->id <= INT64_MAX);
        FUZZ_CHECK(cluster_find(&c, m->id) == m);
        fz_cluster_check_addr(m->raft_addr);
        fz_cluster_check_addr(m->http_addr);
        FUZZ_CHECK(strcmp(m->raft_addr, m->http_addr) != 0);
        for (size_t j = 0; j < i; j++) {
            const struct cluster_member *o = &c.members[j];
            FUZZ_CHECK(strcmp(m->raft_addr, o->raft_addr) && strcmp(m->raft_addr, o->http_addr));
            FUZZ_CHECK(strcmp(m->http_addr, o->raft_addr) && strcmp(m->http_addr, o->http_addr));
        }
    }

    /* Written back in the canonical form, the file means the same. */
    static char text[CLUSTER_MAX_MEMBERS * (2 * CLUSTER_ADDR_MAX + 32)];
    size_t len = 0;
    for (size_t i = 0; i < c.n; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "%llu %s %s\n",
                                (unsigned long long)c.members[i].id, c.members[i].raft_addr,
                                c.members[i].http_addr);
    FUZZ_CHECK(len < sizeof text);
    struct cluster again;
    FUZZ_CHECK(cluster_parse(text, len, "again", &again, err, sizeof err) == 0);
    FUZZ_CHECK(again.n == c.n);
    for (size_t i = 0; i < c.n; i++) {
        FUZZ_CHECK(again.members[i].id == c.members[i].id);
        FUZZ_CHECK(strcmp(again.members[i].raft_addr, c.members[i].raft_addr) == 0);
        FUZZ_CHECK(strcmp(again.members[i].http_addr, c.members[i].http_addr) == 0);
    }
    return 0;
}
