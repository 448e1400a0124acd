/*
 * http_hello.c — the serving-speed measurement's server: src/http answering
 * every request with the same 10 KB text body, for bench/http_hello.sh to
 * load with wrk beside nginx serving the same bytes. Not a test.
 *
 *   http_hello [host:port]     (default 127.0.0.1:21901; SIGINT/SIGTERM stop it)
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "http.h"

#define BODY_BYTES 10240

static char body[BODY_BYTES];
static struct http_server *srv;
static uv_signal_t sig_int, sig_term;

static void handler(void *ctx, struct http_exchange *x)
{
    (void)ctx;
    http_respond(x, 200, "Content-Type: text/plain\r\n", body, sizeof body);
}

static void on_stopped(void *arg)
{
    (void)arg;
    uv_close((uv_handle_t *)&sig_int, NULL);
    uv_close((uv_handle_t *)&sig_term, NULL);
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)s;
    (void)signum;
    if (srv) http_server_stop(srv, on_stopped, NULL);
    srv = NULL;
}

int main(int argc, char **argv)
{
    const char *addr = argc > 1 ? argv[1] : "127.0.0.1:21901";
    char err[256];
    struct http_options o;
    uv_loop_t *loop = uv_default_loop();
    memset(body, 'x', sizeof body);
    http_options_default(&o);
    o.max_conns_per_addr = 100000; /* wrk is one address; nginx here has no limit_conn either */
    if (http_server_start(loop, addr, &o, handler, NULL, &srv, err, sizeof err) != 0) {
        fprintf(stderr, "http_hello: %s\n", err);
        return 1;
    }
    uv_signal_init(loop, &sig_int);
    uv_signal_init(loop, &sig_term);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    fprintf(stderr, "http_hello: serving %d bytes on %s\n", BODY_BYTES, addr);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    return 0;
}
