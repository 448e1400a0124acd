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

/* Reads what is there (waiting at most idle_ms for it): bytes, 0 at the
 * end of the stream, -1 with a message. */
static ssize_t recv_some(int fd, void *buf, size_t cap, int idle_ms, const char *addr, char *err, size_t errcap)
{
    for (;;) {
        ssize_t r = recv(fd, buf, cap, 0);
        if (r >= 0)
            return r;
        if (errno != EAGAIN && errno != EINTR) {
            snprintf(err, errcap, "cannot read from %s: %s", addr, strerror(errno));
            return -1;
        }
        if (wait_fd(fd, POLLIN, now_ms() + idle_ms)) {
            snprintf(err, errcap, "%s sent nothing for %d ms", addr, idle_ms);
            return -1;
        }
    }
}

static int write_all(int fd, const char *p, size_t len, char *err, size_t errcap)
{
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            snprintf(err, errcap, "cannot write the output: %s", strerror(errno));
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int httpc_download(const char *addr, const char *path, const char *headers, int idle_ms, int out_fd, int *status,
                   unsigned long long *written, char **resp_body, char *err, size_t errcap)
{
    *status = 0;
    *written = 0;
    *resp_body = NULL;
    int fd = dial(addr, now_ms() + idle_ms, err, errcap);
    if (fd < 0)
        return -1;
    char head[4096];
    int n = snprintf(head, sizeof head, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n%s\r\n", path, addr,
                     headers ? headers : "");
    int rc = -1;
    char *buf = malloc(1 << 16);
    if (n < 0 || (size_t)n >= sizeof head || !buf) {
        snprintf(err, errcap, buf ? "request head for %s too long" : "out of memory", addr);
        goto out;
    }
    for (int sent = 0; sent < n;) {
        ssize_t w = send(fd, head + sent, (size_t)(n - sent), MSG_NOSIGNAL);
        if (w > 0)
            sent += (int)w;
        else if (w < 0 && (errno == EAGAIN || errno == EINTR) && !wait_fd(fd, POLLOUT, now_ms() + idle_ms))
            continue;
        else {
            snprintf(err, errcap, "cannot send to %s: %s", addr, w < 0 ? strerror(errno) : "closed");
            goto out;
        }
    }
    /* The head, up to the empty line. */
    size_t got = 0;
    char *end = NULL;
    while (!end) {
        if (got == (1 << 16) - 1) {
            snprintf(err, errcap, "%s sent a response head over 64 KiB", addr);
            goto out;
        }
        ssize_t r = recv_some(fd, buf + got, (1 << 16) - 1 - got, idle_ms, addr, err, errcap);
        if (r < 0)
            goto out;
        if (r == 0) {
            snprintf(err, errcap, "%s closed the connection before answering", addr);
            goto out;
        }
        got += (size_t)r;
        buf[got] = 0;
        end = strstr(buf, "\r\n\r\n");
    }
    if (sscanf(buf, "HTTP/1.%*d %d", status) != 1 || *status < 100) {
        snprintf(err, errcap, "%s did not answer with HTTP", addr);
        goto out;
    }
    long long length = -1;
    for (char *line = strstr(buf, "\r\n"); line && line < end; line = strstr(line + 2, "\r\n"))
        if (!strncasecmp(line + 2, "Content-Length:", 15))
            length = strtoll(line + 17, NULL, 10);
    size_t body_at = (size_t)(end + 4 - buf), have = got - body_at;
    if (*status != 200) {
        /* An error's explanation: whatever comes, up to 64 KiB. */
        memmove(buf, buf + body_at, have);
        for (ssize_t r = 1; r > 0 && have < (1 << 16) - 1;) {
            r = recv_some(fd, buf + have, (1 << 16) - 1 - have, idle_ms, addr, err, errcap);
            have += r > 0 ? (size_t)r : 0;
        }
        buf[have] = 0;
        *resp_body = buf;
        buf = NULL;
        rc = 0;
        goto out;
    }
    if (length < 0) {
        snprintf(err, errcap, "%s answered without a Content-Length", addr);
        goto out;
    }
    unsigned long long total = 0;
    if (have > (size_t)length)
        have = (size_t)length;
    if (have && write_all(out_fd, buf + body_at, have, err, errcap))
        goto out;
    total = have;
    while (total < (unsigned long long)length) {
        size_t want = (unsigned long long)length - total < (1 << 16) ? (size_t)((unsigned long long)length - total)
                                                                       : (1 << 16);
        ssize_t r = recv_some(fd, buf, want, idle_ms, addr, err, errcap);
        if (r < 0)
            goto out;
        if (r == 0) {
            snprintf(err, errcap, "%s cut the answer short: %llu of %lld bytes", addr, total, length);
            goto out;
        }
        if (write_all(out_fd, buf, (size_t)r, err, errcap))
            goto out;
        total += (unsigned long long)r;
    }
    *written = total;
    rc = 0;
out:
    free(buf);
    close(fd);
    return rc;
}
