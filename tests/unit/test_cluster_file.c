/*
 * test_cluster_file.c — the cluster file: good files, and every bad line gets a
 * message naming the file, the line and what is wrong.
 */
#include <string.h>

#include "../harness.h"
#include "sys/cluster_file.h"

static int parse(const char *text, struct cluster *c, char *err)
{
    return cluster_parse(text, strlen(text), "c.txt", c, err, 256);
}

TEST(good_file)
{
    struct cluster c;
    char err[256];
    const char *text = "# id raft http\n"
                       "1 127.0.0.1:7001 127.0.0.1:8001\n"
                       "\n"
                       "2\t[::1]:7002   [::1]:8002   # v6\n"
                       "3 node3.example:7003 node3.example:8003\r\n";
    REQUIRE(parse(text, &c, err) == 0);
    CHECK_EQ_U(c.n, 3);
    CHECK_STR(cluster_find(&c, 2)->raft_addr, "[::1]:7002");
    CHECK_STR(cluster_find(&c, 3)->http_addr, "node3.example:8003");
    char host[64];
    uint16_t port;
    CHECK_EQ_I(cluster_split_addr("[::1]:7002", host, sizeof host, &port, err, sizeof err), 0);
    CHECK_STR(host, "::1");
    CHECK_EQ_U(port, 7002);
}

TEST(bad_lines_are_named)
{
    struct cluster c;
    char err[256];
    struct { const char *text, *want; } cases[] = {
        { "1 127.0.0.1:7001\n", "c.txt:1: expected 'ID RAFT-ADDRESS HTTP-ADDRESS', found 2 fields" },
        { "x 127.0.0.1:7001 127.0.0.1:8001\n", "c.txt:1: the id 'x' must be" },
        { "0 127.0.0.1:7001 127.0.0.1:8001\n", "c.txt:1: the id '0' must be" },
        { "1 a:1 b:2\n1 c:3 d:4\n", "c.txt:2: id 1 appears twice" },
        { "1 127.0.0.1 127.0.0.1:8001\n", "c.txt:1: bad raft address '127.0.0.1': expected HOST:PORT" },
        { "1 127.0.0.1:99999 127.0.0.1:8001\n", "c.txt:1: bad raft address '127.0.0.1:99999': the port must be" },
        { "1 ::1:7001 h:1\n", "c.txt:1: bad raft address '::1:7001': write an IPv6 address in brackets" },
        { "1 a:1 a:1\n", "c.txt:1: the raft and http addresses must differ" },
        { "1 a:1 b:1\n2 a:1 c:1\n", "c.txt:2: address a:1 is already used by member 1" },
        { "# nothing\n\n", "c.txt: no members" },
        { "1 a;b:1 c:2\n", "c.txt:1: bad raft address 'a;b:1': the host contains ';'" },
        /* Only digits make an id (found fuzzing: strtoull skips \v and \f,
         * takes '+' and negates after '-'). */
        { "+1 a:1 a:2\n", "c.txt:1: the id '+1' must be" },
        { "\v-18446744073709551615 a:1 a:2\n", "c.txt:1: the id '\v-18446744073709551615' must be" },
        { "\f7 a:1 a:2\n", "c.txt:1: the id '\f7' must be" },
        { "-1 a:1 a:2\n", "c.txt:1: the id '-1' must be" },
        /* Messages quote a bracketed address whole. */
        { "1 [::1]:99999 a:2\n", "c.txt:1: bad raft address '[::1]:99999': the port must be" },
        { "1 []:1 a:2\n", "c.txt:1: bad raft address '[]:1': the host part is empty" },
        { "9223372036854775808 a:1 a:2\n", "c.txt:1: the id '9223372036854775808' must be" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err[0] = 0;
        CHECK_EQ_I(parse(cases[i].text, &c, err), -1);
        if (strncmp(err, cases[i].want, strlen(cases[i].want)) != 0)
            fprintf(stderr, "  case %zu: got \"%s\"\n", i, err);
        CHECK(strncmp(err, cases[i].want, strlen(cases[i].want)) == 0);
    }
    CHECK_EQ_I(cluster_load("/nonexistent/cluster.txt", &c, err, sizeof err), -1);
    CHECK(strstr(err, "cannot open cluster file /nonexistent/cluster.txt") != NULL);
}

int main(void)
{
    RUN(good_file);
    RUN(bad_lines_are_named);
    return HARNESS_END();
}
