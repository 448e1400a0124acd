/* cmd_gateway.c — `linkraft gateway` (include/gateway.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/commands.h"
#include "gateway.h"

int cmd_gateway(int argc, char **argv)
{
    static const char usage[] =
        "usage: linkraft gateway --cluster FILE --listen ADDR [--election-timeout-ms MS]\n"
        "\n"
        "Serves the site on ADDR (host:port) in front of the nodes of FILE: reads go to\n"
        "the fastest ready node, writes to the leader; a write interrupted by a leader's\n"
        "death is retried on the next leader under its Idempotency-Key. Holds no state:\n"
        "run as many as you like. SIGTERM or SIGINT stops it.\n"
        "\n"
        "  --election-timeout-ms MS  the nodes' longest election timeout, 2 x election-ticks\n"
        "                            x tick-ms (default 300, the nodes' default). A request\n"
        "                            whose node has answered no health check for about this\n"
        "                            long (paused, cut off) is sent to another node instead.\n";
    static const struct option longopts[] = {
        { "cluster", required_argument, 0, 'c' },
        { "listen", required_argument, 0, 'l' },
        { "election-timeout-ms", required_argument, 0, 'e' },
        { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 },
    };
    struct gateway_options o = { 0 };
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c': o.cluster_path = optarg; break;
        case 'l': o.listen_addr = optarg; break;
        case 'e': {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);
            if (*optarg < '0' || *optarg > '9' || *end || v < 10 || v > 60000) {
                fprintf(stderr, "linkraft gateway: --election-timeout-ms must be 10..60000, got '%s'\n", optarg);
                return 2;
            }
            o.election_timeout_ms = (unsigned)v;
            break;
        }
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind < argc || !o.cluster_path || !o.listen_addr) {
        fprintf(stderr, "linkraft gateway: --cluster and --listen are required (see --help)\n");
        return 2;
    }
    return gateway_run(&o);
}
