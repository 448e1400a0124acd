/* cmd_gateway.c — `linkraft gateway` (include/gateway.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/commands.h"
#include "gateway.h"
#include "http.h"
#include "sys/log.h"

int cli_log_format(const char *cmd, const char *name)
{
    enum log_format f;
    if (log_format_parse(name, &f)) {
        fprintf(stderr, "linkraft %s: --log-format is text, logfmt or json, not '%s'\n", cmd, name);
        return -1;
    }
    log_set_format(f);
    return 0;
}

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

/* The help, man-page style; the defaults printed are the code's. */
static void gateway_usage(FILE *out)
{
    struct http_options h;
    http_options_default(&h);
    fprintf(out,
            "NAME\n"
            "    linkraft gateway - a stateless front door: reads to any ready node, writes to the leader\n"
            "\n"
            "SYNOPSIS\n"
            "    linkraft gateway --cluster FILE --listen ADDR [--trust-proxy CIDR,...]\n"
            "                     [--max-connections N] [--tls-cert F --tls-key F]\n"
            "                     [--election-timeout-ms MS] [--log-format text|logfmt|json]\n"
            "\n"
            "DESCRIPTION\n"
            "    Serves the site on ADDR (host:port) in front of the nodes of FILE (voters and\n"
            "    learners alike: list read replicas there too). Every node is asked /readyz and\n"
            "    /leaderz several times a second; reads (GET, HEAD) go to a ready node, spread over\n"
            "    those within a margin of the fastest; writes go to the leader, and a write cut off\n"
            "    by a leader's death is retried on the next one under its Idempotency-Key. Holds\n"
            "    no state: run as many as you like. The operator's endpoints (/metrics,\n"
            "    membership) are not served here. SIGTERM or SIGINT stops it.\n"
            "\n"
            "OPTIONS\n"
            "    --cluster FILE             the cluster file (the nodes' http-address column is used)\n"
            "    --listen ADDR              where to serve: host:port, [v6]:port\n"
            "    --trust-proxy CIDR,...     proxies in front whose X-Forwarded-For/-Proto count\n"
            "                               (the cluster's own hosts always do)\n"
            "    --max-connections N        client connections at once (default %u); when all are\n"
            "                               taken the longest idle, else the slowest sender, goes\n"
            "    --tls-cert F --tls-key F   serve HTTPS (TLS 1.2+) with this PEM certificate chain and\n"
            "                               unencrypted PEM key; cookies get Secure, pages HSTS\n"
            "    --election-timeout-ms MS   the nodes' longest election timeout, 2 x election-ticks x\n"
            "                               tick-ms (default %u, the nodes' default). A request whose\n"
            "                               node has answered no health check for about this long\n"
            "                               (paused, cut off) is sent to another node instead\n"
            "    --log-format F             text, logfmt or json: one line per event on stderr\n"
            "                               (default text)\n"
            "    --help                     print this help\n"
            "\n"
            "ENVIRONMENT\n"
            "    LINKRAFT_LOG=debug|info|warn   the log level (default info)\n"
            "\n"
            "EXAMPLES\n"
            "    On port 80 of every web machine, in front of the cluster:\n"
            "        linkraft gateway --cluster /etc/linkraft/cluster.txt --listen 0.0.0.0:80\n"
            "    HTTPS, behind nothing:\n"
            "        linkraft gateway --cluster cluster.txt --listen 0.0.0.0:443 \\\n"
            "            --tls-cert /etc/linkraft/fullchain.pem --tls-key /etc/linkraft/key.pem\n"
            "    Behind nginx's cache (docs/nginx-cache.conf) on the same machine:\n"
            "        linkraft gateway --cluster cluster.txt --listen 127.0.0.1:8000\n"
            "    Systemd: docs/linkraft-gateway.service.\n"
            "\n"
            "EXIT STATUS\n"
            "    0  stopped by SIGTERM or SIGINT\n"
            "    1  a runtime failure (cannot listen on ADDR)\n"
            "    2  bad usage or configuration\n",
            h.max_connections, GATEWAY_ELECTION_TIMEOUT_MS);
}

int cmd_gateway(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "cluster", required_argument, 0, 'c' },
        { "listen", required_argument, 0, 'l' },
        { "trust-proxy", required_argument, 0, 'p' },
        { "max-connections", required_argument, 0, 'm' },
        { "tls-cert", required_argument, 0, 'C' },
        { "tls-key", required_argument, 0, 'K' },
        { "election-timeout-ms", required_argument, 0, 'e' },
        { "log-format", required_argument, 0, 'F' },
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
        case 'F':
            if (cli_log_format("gateway", optarg)) return 2;
            break;
        case 'h': gateway_usage(stdout); return 0;
        default: gateway_usage(stderr); return 2;
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
