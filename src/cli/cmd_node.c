/* cmd_node.c — `linkraft node`: runs one replica (include/node.h). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "node.h"

static void node_usage(FILE *out)
{
    fprintf(out,
            "usage: linkraft node --cluster FILE --id N --data DIR [--secret-file F] [--join]\n"
            "\n"
            "Runs member N of the cluster described by FILE: Raft on its raft-address,\n"
            "HTTP on its http-address, state in DIR. Restarting with the same DIR resumes\n"
            "from disk. SIGTERM or SIGINT stops it cleanly (a leader hands over first).\n"
            "\n"
            "  --cluster FILE        the cluster file (one line per member: id raft-addr http-addr)\n"
            "  --id N                this member's id\n"
            "  --data DIR            data directory (created if missing)\n"
            "  --secret-file F       shared secret that peers authenticate and encrypt with (>= 16 bytes,\n"
            "                        mode 0600); required unless every address in FILE is loopback\n"
            "  --join                start empty and wait to be added with 'linkraft member add'\n"
            "  --force-new-cluster   disaster recovery, when a majority is lost for good: start this\n"
            "                        node alone as a one-voter cluster keeping its data (everything\n"
            "                        its log holds) under a new cluster id; add the others back with\n"
            "                        --join and 'linkraft member add' (docs/operations.md)\n"
            "  --tick-ms MS          length of a Raft tick (default 15)\n"
            "  --election-ticks N    election timeout in ticks, randomized in [N, 2N) (default 10)\n"
            "  --heartbeat-ticks N   heartbeat interval in ticks (default 2)\n"
            "  --snapshot-entries N  snapshot the database about every N applied entries, +-25%% (default 50000)\n"
            "  --trailing-entries N  log entries kept behind a snapshot (default 2000)\n"
            "  --trust-proxy CIDR,.. proxies whose X-Forwarded-For/-Proto count (the cluster's hosts always do)\n"
            "  --segment-bytes N     start a new log segment file past N bytes (default 67108864)\n"
            "  --rate-limits on|off  per-user limits on new links and comments (default on); off for\n"
            "                        benchmarks and load tests. Start every node of a cluster alike:\n"
            "                        the leader's setting decides each write\n");
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
        { "force-new-cluster", no_argument, 0, 'F' },
        { "tick-ms", required_argument, 0, 't' },
        { "election-ticks", required_argument, 0, 'e' },
        { "heartbeat-ticks", required_argument, 0, 'b' },
        { "snapshot-entries", required_argument, 0, 'n' },
        { "trailing-entries", required_argument, 0, 'r' },
        { "trust-proxy", required_argument, 0, 'p' },
        { "segment-bytes", required_argument, 0, 'g' },
        { "rate-limits", required_argument, 0, 'l' },
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
        case 'F': o.force_new_cluster = true; break;
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
