/*
 * gateway.h — `linkraft gateway`: a stateless front door for the cluster.
 * Reads go to the fastest ready node, writes to the leader, and a write cut
 * off by a leader's death is retried on the next one under its
 * Idempotency-Key (src/gateway/gateway.c explains the rules).
 */
#ifndef LINKRAFT_GATEWAY_H
#define LINKRAFT_GATEWAY_H

/* The nodes' default longest election timeout: 2 x election-ticks x tick-ms. */
#define GATEWAY_ELECTION_TIMEOUT_MS 300

struct gateway_options {
    const char *cluster_path;
    const char *listen_addr;
    const char *trust_proxy;    /* "CIDR,..." whose X-Forwarded-* count, besides the
                                 * cluster's hosts; NULL: those only */
    unsigned max_connections;   /* client connections; 0: the HTTP server's default */
    const char *tls_cert, *tls_key; /* PEM files: serve HTTPS (both or neither) */
    /* The nodes' longest election timeout (0: the default above). A request
     * whose node has answered no health check for about this long is sent
     * elsewhere: by then its followers have elected another leader. */
    unsigned election_timeout_ms;
};

/* Serves until SIGTERM/SIGINT. Returns the exit code (0, 1 runtime, 2 config). */
int gateway_run(const struct gateway_options *o);

#endif
