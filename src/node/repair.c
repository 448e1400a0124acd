/*
 * repair.c — a node whose database cannot be trusted repairs itself
 * instead of serving or shipping what it has not verified (issue 17).
 *
 * The cases, in the order start-up meets them:
 *   1. The database fails its check (a page checksum, PRAGMA quick_check)
 *      and the snapshot's data is sound: the database is moved aside and
 *      rebuilt from the snapshot and the log (REPAIR_LOCAL; recover() in
 *      node.c restores the snapshot as after a crash, replay does the rest).
 *   2. The snapshot's data file is missing or damaged (its metadata, with
 *      its own checksum, is intact and still says where the log starts):
 *      whatever the database holds, nothing here can rebuild it, and the
 *      node could not send its snapshot to a follower either. It keeps its
 *      hard state and its whole log (entries it acknowledged may count in
 *      a commit quorum: dropping them could lose a committed write), and
 *      asks the leader for a snapshot (REPAIR_FROM_PEERS, raft_want_snapshot).
 *      Until one is installed it answers reads 503, applies nothing and
 *      never stands for election; it still votes and acknowledges appends,
 *      which depend only on the log it has. A leader's snapshot holds only
 *      committed entries, and installing it keeps the log after it when they
 *      agree (§5.3), so this is the same step a lagging follower takes.
 *   3. While running, a page read fails its checksum (any connection), or
 *      the copy for a snapshot does not verify: the node stops serving reads
 *      at once and starts afresh in the same process (repair_restart), so
 *      1 or 2 above repairs it. Everything durable is then exactly as after
 *      a crash, which every recovery path is built for.
 * A log record or hard state that does not check is never repaired here:
 * storage_open refuses it, naming the file (docs/disk-format.md).
 */
#include "node/repair.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sys/log.h"

int repair_open_store(const char *db_path, const struct storage_state *state, struct store **out,
                      enum repair_mode *mode, char *err, size_t errcap)
{
    *mode = REPAIR_NONE;
    int rc = store_open(db_path, out, err, errcap);
    if (rc == STORE_ECORRUPT) {
        if (state->snapshot_damaged)
            log_error("%s; moving it aside to %s.damaged. The snapshot cannot rebuild it either (%s)", err,
                      db_path, state->snapshot_damage);
        else
            log_error("%s; moving it aside to %s.damaged and rebuilding it from the snapshot and the log", err,
                      db_path);
        rc = store_set_aside(db_path, err, errcap);
        if (rc == STORE_OK)
            rc = store_open(db_path, out, err, errcap);
        if (rc == STORE_OK)
            *mode = REPAIR_LOCAL;
    }
    if (rc)
        return 1;
    if (store_was_migrated(*out))
        log_warn("the database %s was written before pages carried checksums: it was copied into one whose pages "
                 "do (VACUUM INTO, then renamed into place); from now on a damaged page is found", db_path);
    if (state->snapshot_damaged) {
        if (*mode == REPAIR_NONE)
            log_error("%s; the database itself checks, but this node can neither send its snapshot nor "
                      "rebuild from it", state->snapshot_damage);
        *mode = REPAIR_FROM_PEERS;
    }
    return 0;
}

int repair_from_peers_begin(struct raft *r, const char *data_dir, char *err, size_t errcap)
{
    const struct raft_config *c = raft_configuration(r);
    size_t others = 0;
    for (uint32_t i = 0; i < c->n; i++)
        if (c->members[i].id != raft_self(r) && c->members[i].role == RAFT_VOTER)
            others++;
    if (others == 0) {
        snprintf(err, errcap, "the snapshot in %s cannot be used and no other member could send one (this node "
                 "is the only voter); restore the site from a backup (`linkraft restore`)", data_dir);
        return 1;
    }
    if (raft_want_snapshot(r) != RAFT_OK) {
        snprintf(err, errcap, "cannot ask for a snapshot now (the core has already started)");
        return 1;
    }
    const struct raft_snapshot_meta *s = raft_snapshot(r);
    log_warn("repairing from peers: keeping the hard state and the log (%llu..%llu), asking the leader for a "
             "snapshot at or after index %llu; until it is installed this node serves no reads (503), applies "
             "nothing and does not stand for election", (unsigned long long)raft_first_index(r),
             (unsigned long long)raft_last_index(r), (unsigned long long)(s ? s->index : 0));
    return 0;
}

/* Restarts in a row are counted across execve in the environment, as
 * "COUNT,UNIX-SECONDS" of the last one; one more than ten minutes later
 * starts the count again. */
#define RESTART_ENV "LINKRAFT_REPAIR_RESTARTS"
#define RESTARTS_MAX 3
#define RESTART_WINDOW_S 600

/* argv of this process, from /proc/self/cmdline (NUL-separated). */
static char **own_argv(void)
{
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    ssize_t got;
    while (buf && (got = read(fd, buf + len, cap - len)) > 0)
        len += (size_t)got;
    close(fd);
    if (!buf || len == 0 || len >= cap) {
        free(buf);
        return NULL;
    }
    buf[len] = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += buf[i] == 0;
    char **argv = calloc(n + 1, sizeof *argv);
    if (!argv) {
        free(buf);
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < len && k < n; i += strlen(buf + i) + 1)
        argv[k++] = buf + i;
    return argv;
}

void repair_restart(const char *why, const char *detail)
{
    unsigned long count = 0;
    long long last = 0;
    const char *prev = getenv(RESTART_ENV);
    long long now = (long long)time(NULL);
    if (prev && sscanf(prev, "%lu,%lld", &count, &last) == 2 && now - last > RESTART_WINDOW_S)
        count = 0;
    if (count >= RESTARTS_MAX) {
        log_error("FATAL: %s: %s; the database was repaired %lu times in the last %d minutes and is damaged "
                  "again: the disk is failing. Stopping; replace the disk, then restart the node", why, detail,
                  count, RESTART_WINDOW_S / 60);
        _exit(1);
    }
    char val[64];
    snprintf(val, sizeof val, "%lu,%lld", count + 1, now);
    char **argv = own_argv();
    if (!argv || setenv(RESTART_ENV, val, 1) != 0) {
        log_error("FATAL: %s: %s; cannot restart to repair it (%s). Restart the node: it repairs the database "
                  "at start", why, detail, argv ? strerror(errno) : "cannot read /proc/self/cmdline");
        _exit(1);
    }
    log_error("%s: %s; this node no longer serves reads from it and restarts now (same process) to repair it: "
              "from its snapshot and log if they check, else from its peers", why, detail);
    execv("/proc/self/exe", argv);
    log_error("FATAL: cannot restart to repair the database: execv: %s. Restart the node: it repairs the "
              "database at start", strerror(errno));
    _exit(1);
}
