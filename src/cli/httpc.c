/* httpc.c — blocking HTTP client for the command-line tools (httpc.h). */
#include "httpc.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sys/cluster_file.h"

#define HTTPC_MAX_RESPONSE (1 << 20)

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return -1;
        struct pollfd p = { .fd = fd, .events = events };
        int rc = poll(&p, 1, (int)left);
        if (rc > 0)
            return 0;
        if (rc < 0 && errno != EINTR)
            return -1;
    }
}

static int dial(const char *addr, long long deadline, char *err, size_t errcap)
{
    char host[256], port_s[8];
    uint16_t port;
    if (cluster_split_addr(addr, host, sizeof host, &port, err, errcap) != 0)
        return -1;
    snprintf(port_s, sizeof port_s, "%u", port);
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
    int rc = getaddrinfo(host, port_s, &hints, &res);
    if (rc != 0) {
        snprintf(err, errcap, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1, last_errno = ETIMEDOUT;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline) == 0) {
            int so = 0;
            socklen_t len = sizeof so;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &len);
            if (so == 0)
                break;
            last_errno = so;
        } else if (errno != EINPROGRESS) {
            last_errno = errno;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(err, errcap, "cannot connect to %s: %s", addr, strerror(last_errno));
    return fd;
}

int httpc_request(const char *addr, const char *method, const char *path, const char *json_body,
                  const char *headers, int timeout_ms, struct httpc_response *resp, char *err, size_t errcap)
{
    memset(resp, 0, sizeof *resp);
    long long deadline = now_ms() + timeout_ms;
    int fd = dial(addr, deadline, err, errcap);
    if (fd < 0)
        return -1;
    size_t body_len = json_body ? strlen(json_body) : 0;
    char head[2048];
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nAccept: application/json\r\n"
                     "%s%sContent-Length: %zu\r\n\r\n",
                     method, path, addr, json_body ? "Content-Type: application/json\r\n" : "",
                     headers ? headers : "", body_len);
    if (n < 0 || (size_t)n >= sizeof head) {
        snprintf(err, errcap, "request head for %s too long", addr);
        close(fd);
        return -1;
    }
    char *req = malloc((size_t)n + body_len);
    char *buf = malloc(HTTPC_MAX_RESPONSE + 1);
    int rc = -1;
    if (!req || !buf) {
        snprintf(err, errcap, "out of memory");
        goto out;
    }
    memcpy(req, head, (size_t)n);
    if (body_len)
        memcpy(req + n, json_body, body_len);
    size_t total = (size_t)n + body_len, sent = 0;
    while (sent < total) {
        ssize_t w = send(fd, req + sent, total - sent, MSG_NOSIGNAL);
        if (w > 0) {
            sent += (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (wait_fd(fd, POLLOUT, deadline)) {
                snprintf(err, errcap, "timed out sending to %s", addr);
                goto out;
            }
        } else {
            snprintf(err, errcap, "cannot send to %s: %s", addr, strerror(errno));
            goto out;
        }
    }
    size_t got = 0;
    for (;;) {
        if (got == HTTPC_MAX_RESPONSE) {
            snprintf(err, errcap, "response from %s is larger than 1 MiB", addr);
            goto out;
        }
        ssize_t r = recv(fd, buf + got, HTTPC_MAX_RESPONSE - got, 0);
        if (r > 0) {
            got += (size_t)r;
        } else if (r == 0) {
            break;
        } else if (errno == EAGAIN || errno == EINTR) {
            if (wait_fd(fd, POLLIN, deadline)) {
                snprintf(err, errcap, "timed out waiting for %s", addr);
                goto out;
            }
        } else {
            snprintf(err, errcap, "cannot read from %s: %s", addr, strerror(errno));
            goto out;
        }
    }
    buf[got] = 0;
    int status = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1 || status < 100) {
        snprintf(err, errcap, "%s did not answer with HTTP", addr);
        goto out;
    }
    char *body = strstr(buf, "\r\n\r\n");
    if (!body) {
        snprintf(err, errcap, "truncated response from %s", addr);
        goto out;
    }
    body += 4;
    resp->status = status;
    resp->body_len = got - (size_t)(body - buf);
    resp->body = malloc(resp->body_len + 1);
    if (!resp->body) {
        snprintf(err, errcap, "out of memory");
        goto out;
    }
    memcpy(resp->body, body, resp->body_len);
    resp->body[resp->body_len] = 0;
    rc = 0;
out:
    free(req);
    free(buf);
    close(fd);
    return rc;
}

void httpc_response_free(struct httpc_response *resp)
{
    free(resp->body);
    resp->body = NULL;
}
