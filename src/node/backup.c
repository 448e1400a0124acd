/*
 * backup.c — GET /api/v1/backup: the backup file (include/backup.h) of
 * this node's database, for `linkraft backup`.
 *
 * First a linearizable read barrier: the copy holds every write that was
 * acknowledged before the request came, on a follower as on the leader (a
 * lagging follower, or a leader whose first entry of its term is not yet
 * committed, would otherwise copy an older state — seen in CI: a backup at
 * index 0 from a leader a few milliseconds old). Then the copy a snapshot
 * makes (store_snapshot: SQLite's backup API from a connection of its own,
 * on a worker thread) of the database as committed — so the replica first
 * commits what it applied — while writes go on; the copy is the database as
 * of one applied index, at or above the barrier's. The copy is
 * written to DIR/backup.tmp, checksummed, opened, unlinked (a crash leaves
 * nothing behind) and streamed with back-pressure from the client, so the
 * node never holds more than a queue's worth of it in memory.
 */
#include "node/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "backup.h"
#include "sys/log.h"

#define BACKUP_CHUNK (64 * 1024)

struct node_backup {
    struct node *n;
    struct http_exchange *x;
    uv_work_t req;
    char path[4200];
    int rc;
    char err[512];
    uint64_t index, size;
    uint32_t crc;
    int fd;
    uint64_t sent;              /* bytes of the database written to x */
    uint64_t started_ms;
};

static void finish(struct node_backup *b, bool ok)
{
    struct node *n = b->n;
    if (ok) {
        http_respond_end(b->x);
        log_info("backup at index %" PRIu64 " sent: %" PRIu64 " bytes in %" PRIu64 " ms", b->index,
                 b->size + BACKUP_HEADER_BYTES, uv_now(&n->loop) - b->started_ms);
    } else {
        http_respond_abort(b->x);
        log_warn("backup at index %" PRIu64 " not completed: the client went away after %" PRIu64 " of %" PRIu64
                 " bytes", b->index, b->sent, b->size);
    }
    if (b->fd >= 0)
        close(b->fd);
    n->backup = NULL;
    free(b);
}

static void pump(void *arg);

/* Writes chunks until the queue is full (then the drain callback calls
 * again), the client is gone, or all is sent. A local file read per chunk
 * on the loop: 64 KiB from the page cache, written a moment ago. */
static void pump(void *arg)
{
    struct node_backup *b = arg;
    uint8_t buf[BACKUP_CHUNK];
    while (b->sent < b->size) {
        size_t want = b->size - b->sent < sizeof buf ? (size_t)(b->size - b->sent) : sizeof buf;
        ssize_t r = pread(b->fd, buf, want, (off_t)b->sent);
        if (r <= 0) {
            log_error("backup: cannot read the copy: %s", r ? strerror(errno) : "unexpected end");
            finish(b, false);
            return;
        }
        b->sent += (uint64_t)r;
        int w = http_respond_write(b->x, buf, (size_t)r);
        if (w == HTTP_STREAM_GONE) {
            finish(b, false);
            return;
        }
        if (w == HTTP_STREAM_FULL && b->sent < b->size) {
            http_respond_on_drain(b->x, pump, b);
            return;
        }
    }
    finish(b, true);
}

static void copy_work(uv_work_t *req)
{
    struct node_backup *b = req->data;
    unlink(b->path); /* one a crash left behind */
    b->rc = store_snapshot(b->n->db_path, b->path, &b->index, b->err, sizeof b->err);
    if (b->rc == STORE_OK && storage_file_crc(b->path, &b->size, &b->crc, b->err, sizeof b->err) != STORAGE_OK)
        b->rc = STORE_EIO;
    if (b->rc == STORE_OK && (b->fd = open(b->path, O_RDONLY | O_CLOEXEC)) < 0) {
        snprintf(b->err, sizeof b->err, "cannot open %.400s: %s", b->path, strerror(errno));
        b->rc = STORE_EIO;
    }
    unlink(b->path); /* the open descriptor keeps it until it is sent */
}

static void copy_after(uv_work_t *req, int status)
{
    struct node_backup *b = req->data;
    struct node *n = b->n;
    n->backup_copying = false;
    replica_sm_idle(n->replica); /* a snapshot install may have waited for the copy */
    if (status || b->rc != STORE_OK) {
        log_warn("backup: the copy of the database failed: %s", status ? "cancelled" : b->err);
        node_respond_error(n, b->x, b->rc == STORE_EAGAIN || b->rc == STORE_EFULL ? 503 : 500, "backup_failed",
                           "the copy of the database failed on this node (see its log): try again, or another node");
        if (b->fd >= 0)
            close(b->fd);
        n->backup = NULL;
        free(b);
        return;
    }
    struct backup_header h = { .version = BACKUP_VERSION, .index = b->index,
                               .term = raft_current_term(replica_raft(n->replica)), .db_size = b->size,
                               .db_crc = b->crc };
    memcpy(h.cluster, n->identity.self.cluster, BACKUP_ID_BYTES);
    randombytes_buf(h.backup_id, BACKUP_ID_BYTES);
    uint8_t head[BACKUP_HEADER_BYTES];
    backup_header_encode(&h, head);
    char headers[320];
    snprintf(headers, sizeof headers,
             "Content-Type: application/octet-stream\r\nX-Served-By: %llu\r\nX-Raft-Index: %" PRIu64
             "\r\nX-Backup-Index: %" PRIu64 "\r\nCache-Control: no-store\r\n",
             (unsigned long long)n->o.id, b->index, b->index);
    log_info("backup: copied the database at index %" PRIu64 " (%" PRIu64 " bytes); sending it", b->index, b->size);
    if (http_respond_start(b->x, 200, headers, (int64_t)(BACKUP_HEADER_BYTES + b->size)) != HTTP_STREAM_OK ||
        http_respond_write(b->x, head, sizeof head) == HTTP_STREAM_GONE) {
        finish(b, false);
        return;
    }
    pump(b);
}

/* The barrier is through: everything acknowledged before the request is
 * applied here, so the copy can start. */
static void barrier_done(void *arg, int status)
{
    struct node_backup *b = arg;
    struct node *n = b->n;
    const char *why = status != NODE_OK ? node_status_text(status)
                      : n->stopping || n->closing ? "this node is stopping"
                      : n->repair_from_peers || store_damage_seen() ? "this node's database is being repaired: ask another node"
                                                                   : NULL;
    /* The copy is made from what the database has committed; the replica
     * commits it in batches, so commit what the barrier waited for. */
    if (!why && !replica_sm_commit(n->replica))
        why = "this node cannot commit its database now (is its disk full?): try again, or another node";
    if (!why) {
        n->backup_copying = true;
        if (!uv_queue_work(&n->loop, &b->req, copy_work, copy_after))
            return;
        n->backup_copying = false;
        why = "cannot start the copy of the database";
    }
    node_respond_error(n, b->x, status != NODE_OK ? node_status_http(status) : 503,
                       status != NODE_OK ? node_status_code(status) : "unavailable", why);
    n->backup = NULL;
    free(b);
}

void node_backup_handle(struct node *n, struct http_exchange *x)
{
    const struct http_request *req = http_exchange_request(x);
    const char *why = NULL;
    int status = 503;
    if (strcmp(req->method, "GET")) {
        why = "use GET";
        status = 405;
    } else if (n->backup) {
        why = "a backup is being taken on this node: wait for it, or ask another node";
    } else if (n->repair_from_peers || store_damage_seen()) {
        why = "this node's database is being repaired: ask another node";
    } else if (n->stopping || n->closing) {
        why = "this node is stopping";
    }
    struct node_backup *b = why ? NULL : calloc(1, sizeof *b);
    if (!why && !b)
        why = "out of memory";
    if (why) {
        node_respond_error(n, x, status, status == 405 ? "method_not_allowed" : "unavailable", why);
        return;
    }
    b->n = n;
    b->x = x;
    b->fd = -1;
    b->started_ms = uv_now(&n->loop);
    snprintf(b->path, sizeof b->path, "%s/backup.tmp", n->o.data_dir);
    b->req.data = b;
    n->backup = b;
    node_read(n, NODE_READ_LINEARIZABLE, 0, 3000, barrier_done, b);
}
