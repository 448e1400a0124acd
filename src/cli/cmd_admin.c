/* cmd_admin.c — the operator's commands that talk to a running cluster over
 * HTTP: `linkraft status`, `linkraft member add|promote|remove`,
 * `linkraft transfer-leader`. Membership and leadership changes go to the
 * leader (found by asking each member's /leaderz) and are carried out by it
 * through the log. With --secret-file each such request carries a proof of
 * the cluster secret made for that leader (admin_auth.h); the secret itself
 * is never sent. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "admin_auth.h"
#include "cli/commands.h"
#include "cli/httpc.h"
#include "sys/cluster_file.h"
#include "common/json.h"
#include "net.h"

#define ADMIN_TIMEOUT_MS 2000
/* A membership change is answered once committed, or 503 after the node's
 * write timeout (5 s): wait longer than that for the node's own verdict. */
#define ADMIN_CHANGE_TIMEOUT_MS 7000

struct admin_args {
    const char *cluster_path;
    const char *secret_path;
    unsigned long long id, to;
    int learner;
};

/* Parses --cluster, --id, --to, --learner, --secret-file, --help. want:
 * which are allowed. */
static int parse_admin(int argc, char **argv, const char *name, const char *usage, const char *want,
                       struct admin_args *a)
{
    static const struct option longopts[] = {
        { "cluster", required_argument, 0, 'c' },
        { "id", required_argument, 0, 'i' },
        { "to", required_argument, 0, 't' },
        { "learner", no_argument, 0, 'l' },
        { "secret-file", required_argument, 0, 's' },
        { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 },
    };
    memset(a, 0, sizeof *a);
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (ch == 'h') {
            fputs(usage, stdout);
            return 0;
        }
        if (ch == '?' || !strchr(want, ch)) {
            if (ch != '?')
                fprintf(stderr, "linkraft %s: this option does not apply here\n", name);
            fputs(usage, stderr);
            return 2;
        }
        if (ch == 'c') {
            a->cluster_path = optarg;
        } else if (ch == 'l') {
            a->learner = 1;
        } else if (ch == 's') {
            a->secret_path = optarg;
        } else if (cli_parse_u64(optarg, ch == 'i' ? &a->id : &a->to)) {
            fprintf(stderr, "linkraft %s: --%s wants a positive member id, not '%s'\n", name,
                    ch == 'i' ? "id" : "to", optarg);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "linkraft %s: unexpected argument '%s'\n", name, argv[optind]);
        return 2;
    }
    if (!a->cluster_path) {
        fprintf(stderr, "linkraft %s: --cluster FILE is required (see --help)\n", name);
        return 2;
    }
    return -1; /* go on */
}

static int load_cluster(const char *name, const char *path, struct cluster *c)
{
    char err[512];
    if (cluster_load(path, c, err, sizeof err)) {
        fprintf(stderr, "linkraft %s: %s\n", name, err);
        return 2;
    }
    return 0;
}

/* The member whose /leaderz answers 200, or NULL. */
static const struct cluster_member *find_leader(const struct cluster *c)
{
    for (size_t i = 0; i < c->n; i++) {
        struct httpc_response r;
        char err[256];
        if (httpc_request(c->members[i].http_addr, "GET", "/leaderz", NULL, NULL, ADMIN_TIMEOUT_MS, &r, err, sizeof err))
            continue;
        int status = r.status;
        httpc_response_free(&r);
        if (status == 200)
            return &c->members[i];
    }
    return NULL;
}

static unsigned long long json_u64(const struct json *obj, const char *key, int *ok)
{
    const struct json *v = json_get(obj, key);
    if (!v || v->type != JSON_NUMBER || !v->is_int || v->i < 0) {
        *ok = 0;
        return 0;
    }
    return (unsigned long long)v->i;
}

/* The admin key from --secret-file (0), or nothing without one (0: the
 * requests go unsigned, which a cluster without a secret accepts from
 * loopback), or 2 with a message. */
int cli_load_key(const char *name, const char *path, uint8_t key[ADMIN_AUTH_KEY_BYTES], int *have)
{
    *have = 0;
    if (!path)
        return 0;
    if (sodium_init() < 0) {
        fprintf(stderr, "linkraft %s: libsodium could not initialize\n", name);
        return 2;
    }
    uint8_t *secret;
    size_t len;
    char err[512];
    if (net_load_secret(path, &secret, &len, err, sizeof err)) {
        fprintf(stderr, "linkraft %s: %s\n", name, err);
        return 2;
    }
    admin_auth_key(key, secret, len);
    sodium_memzero(secret, len);
    free(secret);
    *have = 1;
    return 0;
}

/* Wall-clock time in ms, as proofs carry it. */
static int64_t admin_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "Authorization: ...\r\n" proving key for method+path+body, made for
 * node; "" without a key. Returns 0, or -1 if signing failed. */
int cli_auth_header(const uint8_t *key, int have_key, uint64_t node, const char *method, const char *path,
                       const char *body, char out[ADMIN_AUTH_HEADER_MAX + 32])
{
    out[0] = 0;
    if (!have_key)
        return 0;
    uint8_t nonce[ADMIN_AUTH_NONCE_BYTES];
    char value[ADMIN_AUTH_HEADER_MAX];
    randombytes_buf(nonce, sizeof nonce);
    if (admin_auth_sign(key, node, method, path, body ? body : "", body ? strlen(body) : 0, admin_now_ms(), nonce,
                        value, sizeof value))
        return -1;
    snprintf(out, ADMIN_AUTH_HEADER_MAX + 32, "Authorization: %s\r\n", value);
    return 0;
}

/* With a proof, a node's cluster view names every member's addresses as the
 * log has them: says where they differ from FILE (a member re-pointed, or
 * a FILE out of date). */
static void compare_addresses(const struct cluster *c, unsigned long long from, const struct json *members)
{
    for (const struct json *e = members ? members->child : NULL; e; e = e->next) {
        int ok = 1;
        unsigned long long id = json_u64(e, "id", &ok);
        const char *raft = json_get_str(e, "raft_address", NULL), *http = json_get_str(e, "http_address", NULL);
        const struct cluster_member *m = cluster_find(c, id);
        if (!ok || !raft || !http)
            continue;
        if (!m)
            printf("note: node %llu knows member %llu at %s %s, which the cluster file does not list\n", from, id,
                   raft, http);
        else if (strcmp(m->raft_addr, raft) || strcmp(m->http_addr, http))
            printf("warning: node %llu knows member %llu at %s %s, the cluster file says %s %s\n", from, id, raft,
                   http, m->raft_addr, m->http_addr);
    }
}

int cmd_status(int argc, char **argv)
{
    static const char usage[] =
        "NAME\n"
        "    linkraft status - every member's role, term and indexes\n"
        "\n"
        "SYNOPSIS\n"
        "    linkraft status --cluster FILE [--secret-file F]\n"
        "\n"
        "DESCRIPTION\n"
        "    Asks every member of FILE for its own state and prints id, role (leader,\n"
        "    follower, learner), term, commit and applied index, and whether it could be\n"
        "    reached.\n"
        "\n"
        "OPTIONS\n"
        "    --cluster FILE      the cluster file\n"
        "    --secret-file F     the cluster's secret (the nodes' --secret-file): also compare\n"
        "                        the members' addresses each node has (shown only to a request\n"
        "                        that proves the secret) with FILE\n"
        "    --help              print this help\n"
        "\n"
        "EXAMPLES\n"
        "    linkraft status --cluster /etc/linkraft/cluster.txt --secret-file /etc/linkraft/secret\n"
        "\n"
        "EXIT STATUS\n"
        "    0  a leader is known;  1  none is (or no member answered);  2  bad usage\n";
    struct admin_args a;
    int rc = parse_admin(argc, argv, "status", usage, "cs", &a);
    if (rc >= 0)
        return rc;
    struct cluster c;
    if (load_cluster("status", a.cluster_path, &c))
        return 2;
    uint8_t key[ADMIN_AUTH_KEY_BYTES];
    int have_key;
    if (cli_load_key("status", a.secret_path, key, &have_key))
        return 2;
    printf("%-4s %-10s %-6s %-10s %-10s %-10s %s\n", "ID", "ROLE", "TERM", "COMMIT", "APPLIED", "REACHABLE", "HTTP");
    unsigned long long leader = 0;
    for (size_t i = 0; i < c.n; i++) {
        const struct cluster_member *m = &c.members[i];
        struct httpc_response r;
        char err[256], auth[ADMIN_AUTH_HEADER_MAX + 32];
        if (cli_auth_header(key, have_key, m->id, "GET", "/api/v1/cluster", NULL, auth) ||
            httpc_request(m->http_addr, "GET", "/api/v1/cluster", NULL, auth, ADMIN_TIMEOUT_MS, &r, err, sizeof err)) {
            printf("%-4llu %-10s %-6s %-10s %-10s %-10s %s (%s)\n", (unsigned long long)m->id, "-", "-", "-", "-",
                   "no", m->http_addr, err);
            continue;
        }
        struct json_doc doc;
        char jerr[128];
        if (r.status != 200 || json_parse(&doc, r.body, r.body_len, jerr, sizeof jerr)) {
            printf("%-4llu %-10s %-6s %-10s %-10s %-10s %s (bad answer, HTTP %d)\n", (unsigned long long)m->id, "-",
                   "-", "-", "-", "no", m->http_addr, r.status);
            httpc_response_free(&r);
            continue;
        }
        int ok = 1;
        unsigned long long term = json_u64(doc.root, "term", &ok), commit = json_u64(doc.root, "commit", &ok),
                           applied = json_u64(doc.root, "applied", &ok), lead = json_u64(doc.root, "leader", &ok);
        const char *role = "?";
        const struct json *members = json_get(doc.root, "members");
        for (const struct json *e = members ? members->child : NULL; e; e = e->next) {
            int ok2 = 1;
            if (json_u64(e, "id", &ok2) == m->id) {
                const char *r2 = json_get_str(e, "role", NULL);
                role = r2 ? r2 : "?";
            }
        }
        if (!members)
            role = "(not a member)";
        if (lead)
            leader = lead;
        printf("%-4llu %-10s %-6llu %-10llu %-10llu %-10s %s\n", (unsigned long long)m->id, role, term, commit,
               applied, ok ? "yes" : "yes?", m->http_addr);
        compare_addresses(&c, m->id, members);
        json_free(&doc);
        httpc_response_free(&r);
    }
    if (!leader) {
        printf("no leader known\n");
        return 1;
    }
    printf("leader: %llu\n", leader);
    return 0;
}

/* Sends method+path+body to the leader, proven with key if have_key, and
 * reports the answer. */
static int to_leader(const char *name, const struct cluster *c, const uint8_t *key, int have_key,
                     const char *method, const char *path, const char *body)
{
    const struct cluster_member *leader = find_leader(c);
    if (!leader) {
        fprintf(stderr, "linkraft %s: no member of the cluster file answers as leader; is a majority running?\n", name);
        return 1;
    }
    char auth[ADMIN_AUTH_HEADER_MAX + 32];
    if (cli_auth_header(key, have_key, leader->id, method, path, body, auth)) {
        fprintf(stderr, "linkraft %s: cannot sign the request\n", name);
        return 1;
    }
    struct httpc_response r;
    char err[256];
    if (httpc_request(leader->http_addr, method, path, body, auth, ADMIN_CHANGE_TIMEOUT_MS, &r, err, sizeof err)) {
        fprintf(stderr, "linkraft %s: %s: the outcome is unknown, see 'linkraft status'\n", name, err);
        return 1;
    }
    int rc = 0;
    if (r.status != 200) {
        fprintf(stderr, "linkraft %s: the leader (node %llu) refused: HTTP %d %s", name,
                (unsigned long long)leader->id, r.status, r.body ? r.body : "\n");
        rc = 1;
    } else {
        printf("done by the leader, node %llu: %s", (unsigned long long)leader->id, r.body ? r.body : "\n");
    }
    httpc_response_free(&r);
    return rc;
}

int cmd_member(int argc, char **argv)
{
    static const char usage[] =
        "NAME\n"
        "    linkraft member - add, promote or remove a member, through the log\n"
        "\n"
        "SYNOPSIS\n"
        "    linkraft member add --cluster FILE --id N [--learner] [--secret-file F]\n"
        "    linkraft member promote --cluster FILE --id N [--secret-file F]\n"
        "    linkraft member remove --cluster FILE --id N [--secret-file F]\n"
        "\n"
        "DESCRIPTION\n"
        "    Changes the membership through the leader, one server at a time (Raft 4.1).\n"
        "    add: N (whose addresses are in FILE, already started with 'linkraft node\n"
        "    --join') joins as a learner and is promoted to voter once caught up; with\n"
        "    --learner it stays a learner: a read replica that serves reads and never\n"
        "    votes nor counts towards a quorum (docs/scaling.md).\n"
        "    promote: make learner N a voter now.\n"
        "    remove: N leaves; a leader that removes itself steps down once that commits.\n"
        "\n"
        "OPTIONS\n"
        "    --cluster FILE      the cluster file, with N's line in it\n"
        "    --id N              the member to change\n"
        "    --learner           (add) keep N a learner\n"
        "    --secret-file F     the cluster's secret (the nodes' --secret-file), proven on each\n"
        "                        request and never sent; a cluster without one takes these from\n"
        "                        loopback only\n"
        "    --help              print this help\n"
        "\n"
        "EXAMPLES\n"
        "    A fourth voter (add node 4's line to cluster.txt first):\n"
        "        linkraft node --cluster cluster.txt --id 4 --data /var/lib/linkraft --join\n"
        "        linkraft member add --cluster cluster.txt --id 4\n"
        "    A read replica:  linkraft member add --cluster cluster.txt --id 5 --learner\n"
        "    Retire node 2:   linkraft member remove --cluster cluster.txt --id 2\n"
        "\n"
        "EXIT STATUS\n"
        "    0  done (committed);  1  refused or no leader reachable (the message says why);  2  bad usage\n";
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *verb = argv[1];
    if (strcmp(verb, "add") && strcmp(verb, "promote") && strcmp(verb, "remove")) {
        fprintf(stderr, "linkraft member: unknown action '%s' (add, promote or remove)\n", verb);
        return 2;
    }
    struct admin_args a;
    int rc = parse_admin(argc - 1, argv + 1, "member", usage, !strcmp(verb, "add") ? "cils" : "cis", &a);
    if (rc >= 0)
        return rc;
    if (!a.id) {
        fprintf(stderr, "linkraft member %s: --id N is required\n", verb);
        return 2;
    }
    struct cluster c;
    if (load_cluster("member", a.cluster_path, &c))
        return 2;
    uint8_t key[ADMIN_AUTH_KEY_BYTES];
    int have_key;
    if (cli_load_key("member", a.secret_path, key, &have_key))
        return 2;
    if (!strcmp(verb, "add") && !cluster_find(&c, a.id)) {
        fprintf(stderr, "linkraft member add: %s has no line for node %llu (add its addresses there first)\n",
                a.cluster_path, a.id);
        return 2;
    }
    char path[64], body[1024];
    if (!strcmp(verb, "add")) {
        const struct cluster_member *m = cluster_find(&c, a.id);
        snprintf(body, sizeof body, "{\"id\":%llu,\"learner\":%s,\"raft_address\":\"%s\",\"http_address\":\"%s\"}",
                 a.id, a.learner ? "true" : "false", m->raft_addr, m->http_addr);
        return to_leader("member add", &c, key, have_key, "POST", "/api/v1/members", body);
    }
    if (!strcmp(verb, "promote")) {
        snprintf(path, sizeof path, "/api/v1/members/%llu/promote", a.id);
        return to_leader("member promote", &c, key, have_key, "POST", path, "{}");
    }
    snprintf(path, sizeof path, "/api/v1/members/%llu", a.id);
    return to_leader("member remove", &c, key, have_key, "DELETE", path, NULL);
}

int cmd_transfer_leader(int argc, char **argv)
{
    static const char usage[] =
        "NAME\n"
        "    linkraft transfer-leader - hand leadership to another voter\n"
        "\n"
        "SYNOPSIS\n"
        "    linkraft transfer-leader --cluster FILE --to N [--secret-file F]\n"
        "\n"
        "DESCRIPTION\n"
        "    Asks the leader to hand leadership to voter N (Raft 3.10): the leader brings N\n"
        "    up to date, then tells it to start an election at once. Waits until N leads (5 s).\n"
        "\n"
        "OPTIONS\n"
        "    --cluster FILE      the cluster file\n"
        "    --to N              the voter to lead\n"
        "    --secret-file F     the cluster's secret, proven on the request and never sent\n"
        "    --help              print this help\n"
        "\n"
        "EXAMPLES\n"
        "    Before restarting the leader's machine:\n"
        "        linkraft transfer-leader --cluster cluster.txt --to 2 --secret-file secret\n"
        "\n"
        "EXIT STATUS\n"
        "    0  N leads;  1  refused, or N did not take over in time;  2  bad usage\n";
    struct admin_args a;
    int rc = parse_admin(argc, argv, "transfer-leader", usage, "cts", &a);
    if (rc >= 0)
        return rc;
    if (!a.to) {
        fprintf(stderr, "linkraft transfer-leader: --to N is required\n");
        return 2;
    }
    struct cluster c;
    if (load_cluster("transfer-leader", a.cluster_path, &c))
        return 2;
    const struct cluster_member *target = cluster_find(&c, a.to);
    if (!target) {
        fprintf(stderr, "linkraft transfer-leader: %s has no line for node %llu\n", a.cluster_path, a.to);
        return 2;
    }
    uint8_t key[ADMIN_AUTH_KEY_BYTES];
    int have_key;
    if (cli_load_key("transfer-leader", a.secret_path, key, &have_key))
        return 2;
    char body[64];
    snprintf(body, sizeof body, "{\"to\":%llu}", a.to);
    rc = to_leader("transfer-leader", &c, key, have_key, "POST", "/api/v1/transfer-leader", body);
    if (rc)
        return rc;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        struct httpc_response r;
        char err[256];
        if (!httpc_request(target->http_addr, "GET", "/leaderz", NULL, NULL, 500, &r, err, sizeof err)) {
            int status = r.status;
            httpc_response_free(&r);
            if (status == 200) {
                printf("node %llu is the leader now\n", a.to);
                return 0;
            }
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 > 5000) {
            fprintf(stderr, "linkraft transfer-leader: node %llu did not become leader within 5 s\n", a.to);
            return 1;
        }
        struct timespec pause = { 0, 20 * 1000000 };
        nanosleep(&pause, NULL); /* polling an external process: there is nothing to wait on */
    }
}

int cmd_moderator(int argc, char **argv)
{
    static const char usage[] =
        "NAME\n"
        "    linkraft moderator - make a user of the site a moderator, or not\n"
        "\n"
        "SYNOPSIS\n"
        "    linkraft moderator add --cluster FILE [--secret-file F] NAME\n"
        "    linkraft moderator remove --cluster FILE [--secret-file F] NAME\n"
        "\n"
        "DESCRIPTION\n"
        "    Makes the site's user NAME a moderator (add) or not (remove), through the\n"
        "    leader and the log (SPEC 5): a moderator may delete any link or comment, with\n"
        "    a reason, and ban users; every such action is listed at /moderation.\n"
        "\n"
        "OPTIONS\n"
        "    --cluster FILE      the cluster file\n"
        "    --secret-file F     the cluster's secret (the nodes' --secret-file), proven on the\n"
        "                        request and never sent; a cluster without one takes this from\n"
        "                        loopback only\n"
        "    --help              print this help\n"
        "\n"
        "EXAMPLES\n"
        "    linkraft moderator add --cluster cluster.txt --secret-file secret alice\n"
        "\n"
        "EXIT STATUS\n"
        "    0  done;  1  refused (no such user, no leader);  2  bad usage\n";
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *verb = argv[1];
    if (strcmp(verb, "add") && strcmp(verb, "remove")) {
        fprintf(stderr, "linkraft moderator: unknown action '%s' (add or remove)\n", verb);
        return 2;
    }
    /* NAME is the one argument that is neither an option nor an option's
     * value; the options go to parse_admin without it. */
    char *rest[64];
    int n_rest = 0;
    const char *name = NULL;
    if (argc > 60) {
        fputs(usage, stderr);
        return 2;
    }
    rest[n_rest++] = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *s = argv[i];
        bool takes_value = (!strcmp(s, "--cluster") || !strcmp(s, "--secret-file")) && i + 1 < argc;
        if (s[0] == '-') {
            rest[n_rest++] = argv[i];
            if (takes_value)
                rest[n_rest++] = argv[++i];
        } else if (!name) {
            name = s;
        } else {
            fprintf(stderr, "linkraft moderator: unexpected argument '%s' (one NAME)\n", s);
            return 2;
        }
    }
    rest[n_rest] = NULL;
    struct admin_args a;
    int rc = parse_admin(n_rest, rest, "moderator", usage, "cs", &a);
    if (rc >= 0)
        return rc;
    size_t len = name ? strlen(name) : 0;
    bool ok = len >= 3 && len <= 20;
    for (size_t i = 0; ok && i < len; i++)
        ok = (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
             (name[i] >= '0' && name[i] <= '9') || name[i] == '_' || name[i] == '-';
    if (!ok) {
        fprintf(stderr, "linkraft moderator %s: give the user's NAME (3-20 of A-Z a-z 0-9 _ -)\n", verb);
        return 2;
    }
    struct cluster c;
    if (load_cluster("moderator", a.cluster_path, &c))
        return 2;
    uint8_t key[ADMIN_AUTH_KEY_BYTES];
    int have_key;
    if (cli_load_key("moderator", a.secret_path, key, &have_key))
        return 2;
    char path[64];
    snprintf(path, sizeof path, "/api/v1/moderators/%s", name);
    return to_leader(!strcmp(verb, "add") ? "moderator add" : "moderator remove", &c, key, have_key,
                     !strcmp(verb, "add") ? "PUT" : "DELETE", path, NULL);
}
