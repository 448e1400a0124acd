/* cmd_node.c — `linkraft node`: runs one replica (include/node.h). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "node.h"
#include "storage.h"

/* The help, man-page style; every default printed is the one the code uses
 * (node_options_default), so the two cannot drift apart. */
static void node_usage(FILE *out)
{
    struct node_options d;
    node_options_default(&d);
    struct storage_options sd;
    storage_options_default(&sd);
    fprintf(out,
            "NAME\n"
            "    linkraft node - run one replica of a linkraft cluster\n"
            "\n"
            "SYNOPSIS\n"
            "    linkraft node --cluster FILE --id N --data DIR [--secret-file F] [--join] [OPTIONS]\n"
            "\n"
            "DESCRIPTION\n"
            "    Runs member N of the cluster described by FILE: Raft on its raft-address,\n"
            "    HTTP (the site, the JSON API, /healthz /readyz /leaderz /metrics) on its\n"
            "    http-address, state in DIR. Restarting with the same DIR resumes from disk.\n"
            "    The members in FILE at the very first start are the initial configuration;\n"
            "    later the membership lives in the log (linkraft member). SIGTERM or SIGINT\n"
            "    stops it cleanly: a leader hands leadership to the most caught-up voter first.\n"
            "\n"
            "OPTIONS\n"
            "    --cluster FILE         the cluster file: one line per member, 'id raft-addr http-addr'\n"
            "    --id N                 this member's id (a positive integer, as in FILE)\n"
            "    --data DIR             data directory (created if missing; one process per DIR)\n"
            "    --secret-file F        shared secret peers authenticate and encrypt with (>= 16 bytes,\n"
            "                           mode 0600); required unless every address in FILE is loopback\n"
            "    --join                 start empty and wait to be added with 'linkraft member add'\n"
            "    --force-new-cluster    disaster recovery, when a majority is lost for good: start this\n"
            "                           node alone as a one-voter cluster keeping its data (everything\n"
            "                           its log holds) under a new cluster id; add the others back with\n"
            "                           --join and 'linkraft member add' (docs/operations.md)\n"
            "    --tick-ms MS           length of a Raft tick (default %u)\n"
            "    --election-ticks N     election timeout in ticks, randomized in [N, 2N) (default %u)\n"
            "    --heartbeat-ticks N    heartbeat interval in ticks (default %u)\n"
            "    --snapshot-entries N   snapshot the database about every N applied entries, +-25%%\n"
            "                           (default %llu)\n"
            "    --trailing-entries N   log entries kept behind a snapshot for slow followers (default %llu)\n"
            "    --segment-bytes N      start a new log segment file past N bytes (default %llu)\n"
            "    --trust-proxy CIDR,..  proxies whose X-Forwarded-For/-Proto count (the cluster's hosts\n"
            "                           always do)\n"
            "    --rate-limits on|off   per-user limits on new links and comments (default %s); off for\n"
            "                           benchmarks and load tests. Start every node of a cluster alike:\n"
            "                           the leader's setting decides each write\n"
            "    --cache-seconds N      how long a shared cache in front may keep a page served to a\n"
            "                           visitor without a session (s-maxage; docs/nginx-cache.conf);\n"
            "                           0: none (default %u)\n"
            "    --log-format F         text, logfmt or json: one line per event on stderr (default text)\n"
            "    --help                 print this help\n"
            "\n"
            "ENVIRONMENT\n"
            "    LINKRAFT_LOG=debug|info|warn   the log level (default info)\n"
            "\n"
            "EXAMPLES\n"
            "    A member of a three-machine cluster (the same cluster.txt on every machine):\n"
            "        linkraft node --cluster /etc/linkraft/cluster.txt --id 1 \\\n"
            "            --data /var/lib/linkraft --secret-file /etc/linkraft/secret\n"
            "    A read replica: start node 4 empty, then add it as a learner (never votes):\n"
            "        linkraft node --cluster cluster.txt --id 4 --data /var/lib/linkraft --join\n"
            "        linkraft member add --cluster cluster.txt --id 4 --learner\n"
            "    Systemd: docs/linkraft-node@.service.\n"
            "\n"
            "EXIT STATUS\n"
            "    0  stopped cleanly by SIGTERM or SIGINT\n"
            "    1  a runtime failure: a disk error, damaged or foreign data (the log says what to do)\n"
            "    2  bad usage or configuration\n",
            d.tick_ms, d.election_ticks, d.heartbeat_ticks,
            (unsigned long long)d.snapshot_entries, (unsigned long long)d.trailing_entries,
            (unsigned long long)(d.segment_bytes ? d.segment_bytes : sd.segment_bytes),
            d.rate_limits_off ? "off" : "on", d.cache_seconds);
}

int cmd_node(int argc, char **argv)
{
    struct node_options o;
    node_options_default(&o);
    static const struct option longopts[] = {
        { "cluster", required_argument, 0, 'c' },
        { "id", required_argument, 0, 'i' },
        { "data", required_argument, 0, 'd' },
        { "secret-file", required_argument, 0, 's' },
        { "join", no_argument, 0, 'j' },
        { "force-new-cluster", no_argument, 0, 'N' },
        { "tick-ms", required_argument, 0, 't' },
        { "election-ticks", required_argument, 0, 'e' },
        { "heartbeat-ticks", required_argument, 0, 'b' },
        { "snapshot-entries", required_argument, 0, 'n' },
        { "trailing-entries", required_argument, 0, 'r' },
        { "trust-proxy", required_argument, 0, 'p' },
        { "segment-bytes", required_argument, 0, 'g' },
        { "rate-limits", required_argument, 0, 'l' },
        { "cache-seconds", required_argument, 0, 'C' },
        { "log-format", required_argument, 0, 'F' },
        { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 },
    };
    int ch;
    unsigned long long v;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c': o.cluster_path = optarg; break;
        case 'd': o.data_dir = optarg; break;
        case 's': o.secret_path = optarg; break;
        case 'j': o.join = true; break;
        case 'N': o.force_new_cluster = true; break;
        case 'p':
            if (cli_check_trust_proxy("node", optarg)) return 2;
            o.trust_proxy = optarg;
            break;
        case 'l':
            if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
                fprintf(stderr, "linkraft node: --rate-limits is on or off, not '%s'\n", optarg);
                return 2;
            }
            o.rate_limits_off = !strcmp(optarg, "off");
            break;
        case 'C':
            v = 0;
            if ((strcmp(optarg, "0") && cli_parse_u64(optarg, &v)) || v > 86400) {
                fprintf(stderr, "linkraft node: --cache-seconds wants 0 to 86400 seconds, not '%s'\n", optarg);
                return 2;
            }
            o.cache_seconds = (unsigned)v;
            break;
        case 'F':
            if (cli_log_format("node", optarg)) return 2;
            break;
        case 'h': node_usage(stdout); return 0;
        case 'i': case 't': case 'e': case 'b': case 'n': case 'r': case 'g':
            if (cli_parse_u64(optarg, &v) || v > 1000000000ull) {
                fprintf(stderr, "linkraft node: --%s wants a positive integer, not '%s'\n",
                        ch == 'i' ? "id" : ch == 't' ? "tick-ms" : ch == 'e' ? "election-ticks" :
                        ch == 'b' ? "heartbeat-ticks" : ch == 'n' ? "snapshot-entries" :
                        ch == 'g' ? "segment-bytes" : "trailing-entries", optarg);
                return 2;
            }
            if (ch == 'i') o.id = v;
            else if (ch == 't') o.tick_ms = (unsigned)v;
            else if (ch == 'e') o.election_ticks = (unsigned)v;
            else if (ch == 'b') o.heartbeat_ticks = (unsigned)v;
            else if (ch == 'n') o.snapshot_entries = v;
            else if (ch == 'g') o.segment_bytes = v;
            else o.trailing_entries = v;
            break;
        default:
            node_usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "linkraft node: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!o.cluster_path || !o.id || !o.data_dir) {
        fprintf(stderr, "linkraft node: --cluster, --id and --data are required (see --help)\n");
        return 2;
    }
    if (o.join && o.force_new_cluster) {
        fprintf(stderr, "linkraft node: --join (wait to be added) and --force-new-cluster (start alone from "
                "this node's data) contradict each other\n");
        return 2;
    }
    if (o.heartbeat_ticks >= o.election_ticks) {
        fprintf(stderr, "linkraft node: --heartbeat-ticks must be below --election-ticks\n");
        return 2;
    }
    return node_run(&o);
}
