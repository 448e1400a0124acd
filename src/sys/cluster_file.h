/*
 * cluster_file.h — the cluster file (SPEC §3): one line per member,
 *
 *     # id   raft-address      http-address
 *     1      127.0.0.1:7001    127.0.0.1:8001
 *
 * The lines present when a cluster first starts are its initial
 * configuration; later lines only supply addresses for `member add`.
 * Parsing checks the shape of every line and reports the first problem as
 * "FILE:LINE: what is wrong"; addresses are checked for form here
 * (host:port, [IPv6]:port or name:port) and resolved by whoever binds or
 * dials them.
 */
#ifndef LINKRAFT_SYS_CLUSTER_FILE_H
#define LINKRAFT_SYS_CLUSTER_FILE_H

#include <stddef.h>
#include <stdint.h>

#define CLUSTER_MAX_MEMBERS 16
#define CLUSTER_ADDR_MAX 262 /* a 253-byte name, brackets, colon, port */

struct cluster_member {
    uint64_t id;
    char raft_addr[CLUSTER_ADDR_MAX];
    char http_addr[CLUSTER_ADDR_MAX];
};

struct cluster {
    size_t n;
    struct cluster_member members[CLUSTER_MAX_MEMBERS];
};

/* Reads and checks the file. Returns 0, or -1 with a message in err. */
int cluster_load(const char *path, struct cluster *c, char *err, size_t errcap);
/* Same, from text already in memory (name is used in messages). */
int cluster_parse(const char *text, size_t len, const char *name, struct cluster *c, char *err, size_t errcap);

const struct cluster_member *cluster_find(const struct cluster *c, uint64_t id);

/* Splits "host:port", "[v6]:port" into host (brackets removed) and port.
 * Returns 0, or -1 if the form is wrong (message in err). */
int cluster_split_addr(const char *addr, char *host, size_t hostcap, uint16_t *port, char *err, size_t errcap);

#endif
