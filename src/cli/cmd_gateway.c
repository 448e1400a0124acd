/* cmd_gateway.c — `linkraft gateway` (include/gateway.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/commands.h"
#include "gateway.h"
#include "http.h"

int cli_check_trust_proxy(const char *cmd, const char *list)
{
    struct http_trust t;
    char err[256];
    http_trust_init(&t);
    int bad = http_trust_add(&t, list, err, sizeof err);
    http_trust_free(&t);
    if (bad)
        fprintf(stderr, "linkraft %s: --trust-proxy: %s\n", cmd, err);
    return bad ? -1 : 0;
}

int cmd_gateway(int argc, char **argv)
{
    static const char usage[] =
        "usage: linkraft gateway --cluster FILE --listen ADDR [--trust-proxy CIDR,...]\n"
        "                        [--max-connections N] [--tls-cert F --tls-key F]\n"
        "                        [--election-timeout-ms MS]\n"
        "\n"
        "Serves the site on ADDR (host:port) in front of the nodes of FILE: reads go to\n"
        "the fastest ready node, writes to the leader; a write interrupted by a leader's\n"
        "death is retried on the next leader under its Idempotency-Key. Holds no state:\n"
        "run as many as you like. SIGTERM or SIGINT stops it.\n"
        "\n"
        "  --trust-proxy CIDR,...  proxies in front whose X-Forwarded-For/-Proto count\n"
        "                          (the cluster's own hosts always do)\n"
        "  --max-connections N     client connections at once (default 4096); when all\n"
        "                          are taken the longest idle, else the slowest sender, goes\n"
        "  --tls-cert F --tls-key F  serve HTTPS (TLS 1.2+) with this PEM certificate chain\n"
        "                          and unencrypted PEM key; cookies get Secure, pages HSTS\n"
        "  --election-timeout-ms MS  the nodes' longest election timeout, 2 x election-ticks\n"
        "                            x tick-ms (default 300, the nodes' default). A request\n"
        "                            whose node has answered no health check for about this\n"
        "                            long (paused, cut off) is sent to another node instead.\n";
    static const struct option longopts[] = {
        { "cluster", required_argument, 0, 'c' },
        { "listen", required_argument, 0, 'l' },
        { "trust-proxy", required_argument, 0, 'p' },
        { "max-connections", required_argument, 0, 'm' },
        { "tls-cert", required_argument, 0, 'C' },
        { "tls-key", required_argument, 0, 'K' },
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
        case 'p':
            if (cli_check_trust_proxy("gateway", optarg)) return 2;
            o.trust_proxy = optarg;
            break;
        case 'C': o.tls_cert = optarg; break;
        case 'K': o.tls_key = optarg; break;
        case 'm': {
            unsigned long long v;
            if (cli_parse_u64(optarg, &v) || v == 0 || v > 1000000) {
                fprintf(stderr, "linkraft gateway: --max-connections wants 1 to 1000000, not '%s'\n", optarg);
                return 2;
            }
            o.max_connections = (unsigned)v;
            break;
        }
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
    if (!o.tls_cert != !o.tls_key) {
        fprintf(stderr, "linkraft gateway: --tls-cert and --tls-key go together\n");
        return 2;
    }
    char err[512];
    if (o.tls_cert && http_tls_check(o.tls_cert, o.tls_key, err, sizeof err)) {
        fprintf(stderr, "linkraft gateway: %s\n", err);
        return 2;
    }
    return gateway_run(&o);
}
