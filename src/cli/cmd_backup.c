/* cmd_backup.c — `linkraft backup` (a node's database at one committed
 * index, over HTTP, proven with the cluster secret) and `linkraft restore`
 * (a new cluster's data directory from such a file). The file's format
 * and what restore writes are include/backup.h; the procedures
 * docs/operations.md. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "backup.h"
#include "cli/commands.h"
#include "cli/httpc.h"
#include "sys/cluster_file.h"

/* The node may take a while to copy a large database before the first
 * byte, and a slow disk may pause the stream: no progress for this long
 * is a failure. */
#define BACKUP_IDLE_MS 120000

static double seconds_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Makes the rename of a file in path's directory durable. */
static int sync_parent(const char *path)
{
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* One attempt at node m: 0 done, 1 failed (try another node), 2 refused
 * for a reason every node would give (the proof). */
static int backup_from(const struct cluster_member *m, const uint8_t *key, int have_key, const char *out,
                       const char *partial)
{
    char auth[ADMIN_AUTH_HEADER_MAX + 32];
    if (cli_auth_header(key, have_key, m->id, "GET", "/api/v1/backup", NULL, auth)) {
        fprintf(stderr, "linkraft backup: cannot sign the request\n");
        return 2;
    }
    int fd = open(partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "linkraft backup: cannot create %s: %s\n", partial, strerror(errno));
        return 2;
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int status;
    unsigned long long bytes;
    char *body = NULL, err[512];
    int rc = httpc_download(m->http_addr, "/api/v1/backup", auth, BACKUP_IDLE_MS, fd, &status, &bytes, &body, err,
                            sizeof err);
    if (rc) {
        fprintf(stderr, "linkraft backup: node %llu: %s\n", (unsigned long long)m->id, err);
        close(fd);
        unlink(partial);
        return 1;
    }
    if (status != 200) {
        fprintf(stderr, "linkraft backup: node %llu refused: HTTP %d %s", (unsigned long long)m->id, status,
                body && *body ? body : "\n");
        free(body);
        close(fd);
        unlink(partial);
        return status == 401 || status == 403 ? 2 : 1;
    }
    if (fdatasync(fd) || close(fd)) {
        fprintf(stderr, "linkraft backup: cannot sync %s: %s\n", partial, strerror(errno));
        unlink(partial);
        return 2;
    }
    /* Checked as restore will check it, before it takes the name. */
    struct backup_header h;
    if (backup_check_file(partial, &h, err, sizeof err)) {
        fprintf(stderr, "linkraft backup: node %llu sent a bad copy: %s\n", (unsigned long long)m->id, err);
        unlink(partial);
        return 1;
    }
    if (rename(partial, out) || sync_parent(out)) {
        fprintf(stderr, "linkraft backup: cannot rename %s to %s: %s\n", partial, out, strerror(errno));
        unlink(partial);
        return 2;
    }
    printf("backup at index %llu from node %llu: %s (%llu bytes, %.2f s)\n", (unsigned long long)h.index,
           (unsigned long long)m->id, out, bytes, seconds_since(&t0));
    return 0;
}

int cmd_backup(int argc, char **argv)
{
    static const char usage[] =
        "usage: linkraft backup --cluster FILE --out PATH [--secret-file F] [--from N]\n"
        "\n"
        "Writes to PATH a consistent copy of the site's database at one committed index\n"
        "(every user, session, link, comment and like), taken by a running node while\n"
        "writes go on, and prints that index. Any node can serve it: the members of FILE\n"
        "are asked in turn (only N with --from). The file carries its index, the cluster\n"
        "id, a format version and a CRC32C, checked here before it takes the name PATH\n"
        "(it is written to PATH.partial first). 'linkraft restore' makes a new cluster\n"
        "from it (docs/operations.md).\n"
        "--secret-file F: the cluster's secret, proven on the request and never sent; a\n"
        "     cluster without one serves backups to loopback clients only.\n";
    static const struct option longopts[] = {
        { "cluster", required_argument, 0, 'c' }, { "out", required_argument, 0, 'o' },
        { "secret-file", required_argument, 0, 's' }, { "from", required_argument, 0, 'f' },
        { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
    };
    const char *cluster_path = NULL, *out = NULL, *secret = NULL;
    unsigned long long from = 0;
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c': cluster_path = optarg; break;
        case 'o': out = optarg; break;
        case 's': secret = optarg; break;
        case 'f':
            if (cli_parse_u64(optarg, &from)) {
                fprintf(stderr, "linkraft backup: --from wants a member id, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind < argc || !cluster_path || !out) {
        fprintf(stderr, "linkraft backup: %s\n", optind < argc ? "unexpected argument" : "--cluster FILE and --out PATH are required");
        fputs(usage, stderr);
        return 2;
    }
    struct cluster c;
    char err[512];
    if (cluster_load(cluster_path, &c, err, sizeof err)) {
        fprintf(stderr, "linkraft backup: %s\n", err);
        return 2;
    }
    if (from && !cluster_find(&c, from)) {
        fprintf(stderr, "linkraft backup: %s has no line for node %llu\n", cluster_path, from);
        return 2;
    }
    uint8_t key[ADMIN_AUTH_KEY_BYTES];
    int have_key;
    if (cli_load_key("backup", secret, key, &have_key))
        return 2;
    char partial[4096];
    if (snprintf(partial, sizeof partial, "%s.partial", out) >= (int)sizeof partial) {
        fprintf(stderr, "linkraft backup: --out path too long\n");
        return 2;
    }
    for (size_t i = 0; i < c.n; i++) {
        if (from && c.members[i].id != from)
            continue;
        int rc = backup_from(&c.members[i], key, have_key, out, partial);
        if (rc == 0)
            return 0;
        if (rc == 2)
            return 1;
    }
    fprintf(stderr, "linkraft backup: no node could send a backup; nothing was written to %s\n", out);
    return 1;
}

int cmd_restore(int argc, char **argv)
{
    static const char usage[] =
        "usage: linkraft restore --from PATH --data DIR --cluster FILE --id N\n"
        "\n"
        "Prepares DIR (new, or empty) as member N of a new cluster holding exactly the\n"
        "state in the backup PATH (from 'linkraft backup'): run it once per member of\n"
        "FILE, each with its own DIR, then start every member as usual with\n"
        "'linkraft node --cluster FILE --id N --data DIR'. The members of FILE are the\n"
        "new cluster's voters; its cluster id is new (derived from the backup and FILE),\n"
        "so no node of the old cluster is taken for one of the new. The whole file is\n"
        "checked first (header, version, length, CRC32C, the database's page checksums):\n"
        "a damaged or truncated backup is refused and nothing is created.\n";
    static const struct option longopts[] = {
        { "from", required_argument, 0, 'f' }, { "data", required_argument, 0, 'd' },
        { "cluster", required_argument, 0, 'c' }, { "id", required_argument, 0, 'i' },
        { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
    };
    const char *from = NULL, *dir = NULL, *cluster_path = NULL;
    unsigned long long id = 0;
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'f': from = optarg; break;
        case 'd': dir = optarg; break;
        case 'c': cluster_path = optarg; break;
        case 'i':
            if (cli_parse_u64(optarg, &id)) {
                fprintf(stderr, "linkraft restore: --id wants a member id, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind < argc || !from || !dir || !cluster_path || !id) {
        fprintf(stderr, "linkraft restore: %s\n",
                optind < argc ? "unexpected argument" : "--from PATH, --data DIR, --cluster FILE and --id N are required");
        fputs(usage, stderr);
        return 2;
    }
    struct cluster c;
    char err[1024];
    if (cluster_load(cluster_path, &c, err, sizeof err)) {
        fprintf(stderr, "linkraft restore: %s\n", err);
        return 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "linkraft restore: libsodium could not initialize\n");
        return 1;
    }
    umask(077); /* the data directory and its files are private (SPEC §3) */
    uint64_t index = 0;
    int rc = backup_restore(from, dir, &c, id, &index, err, sizeof err);
    if (rc) {
        fprintf(stderr, "linkraft restore: %s\n", err);
        return rc;
    }
    printf("restored index %llu into %s as node %llu of a new cluster of %zu; start it with: linkraft node "
           "--cluster %s --id %llu --data %s\n", (unsigned long long)index, dir, id, c.n, cluster_path, id, dir);
    return 0;
}
