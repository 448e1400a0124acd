/* httpc.h — a small blocking HTTP/1.1 client for the command-line tools
 * (status, member, transfer-leader): one request per connection, a deadline
 * for the whole exchange, responses up to 1 MiB. Not for the servers, which
 * use libuv. */
#ifndef LINKRAFT_HTTPC_H
#define LINKRAFT_HTTPC_H
#include <stddef.h>

struct httpc_response {
    int status;
    char *body;         /* malloc'd, NUL-terminated; free with httpc_response_free */
    size_t body_len;
};

/* Sends METHOD path to addr ("host:port" or "[v6]:port"), with an optional
 * JSON body and optional extra headers (preformatted "Name: value\r\n"
 * lines, or NULL). Returns 0 with resp filled, or -1 with a message in err
 * ("cannot connect to 127.0.0.1:8001: Connection refused"). */
int httpc_request(const char *addr, const char *method, const char *path, const char *json_body,
                  const char *headers, int timeout_ms, struct httpc_response *resp, char *err, size_t errcap);
void httpc_response_free(struct httpc_response *resp);

/* GET path from addr, the body of a 200 answer written to out_fd as it
 * arrives (any size; the answer must have a Content-Length, and all of it
 * must come). idle_ms: the longest wait for the next bytes. Returns 0 with
 * *status 200 and *written the body's length; 0 with another *status and
 * its body (up to 64 KiB) in resp_body (malloc'd, NUL-terminated, may be
 * NULL); -1 with a message in err (a cut-off answer among them). */
int httpc_download(const char *addr, const char *path, const char *headers, int idle_ms, int out_fd, int *status,
                   unsigned long long *written, char **resp_body, char *err, size_t errcap);
#endif
