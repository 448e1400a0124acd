/*
 * cmd_demo.c — `linkraft demo`: a whole cluster on one machine, for trying
 * linkraft out (`make run`). Writes a cluster file into the data directory
 * and a secret (mode 0600) into the data directory (once; later runs reuse
 * them, and the data), starts N node processes and a
 * gateway as children, prints where everything is, and on SIGINT/SIGTERM
 * stops them all (SIGTERM, then SIGKILL after 10 s). A child that dies is
 * reported and not restarted — so you can kill -9 the leader and watch the
 * site carry on.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include "cli/commands.h"
#include "sys/cluster_file.h"

#define DEMO_MAX_NODES 9
#define DEMO_DEFAULT_NODES 3
#define DEMO_DEFAULT_PORT 8000
#define DEMO_DEFAULT_DIR "linkraft-data"

struct child {
    pid_t pid;
    char name[32];
    char log[4200];
};

static int spawn(struct child *c, char *const argv[])
{
    int fd = open(c->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "linkraft demo: cannot open %s: %s\n", c->log, strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "linkraft demo: fork: %s\n", strerror(errno));
        close(fd);
        return -1;
    }
    if (pid == 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execv("/proc/self/exe", argv);
        fprintf(stderr, "linkraft demo: cannot run myself: %s\n", strerror(errno));
        _exit(127);
    }
    close(fd);
    c->pid = pid;
    return 0;
}

static int write_cluster_file(const char *path, int nodes, int port)
{
    FILE *f = fopen(path, "wx");
    if (!f) {
        fprintf(stderr, "linkraft demo: cannot create %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(f, "# linkraft demo cluster, written by 'linkraft demo'\n# id   raft-address      http-address\n");
    for (int i = 1; i <= nodes; i++)
        fprintf(f, "%d      127.0.0.1:%d    127.0.0.1:%d\n", i, port - 1000 + i, port + i);
    if (fclose(f)) {
        fprintf(stderr, "linkraft demo: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* The peers' shared secret (SPEC §3): 32 random bytes as hex, in a file
 * only this user can read. An existing file is kept (a resumed demo). */
static int ensure_secret_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST)
        return 0;
    if (fd < 0) {
        fprintf(stderr, "linkraft demo: cannot create %s: %s\n", path, strerror(errno));
        return -1;
    }
    uint8_t raw[32];
    char hex[2 * sizeof raw + 2];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        fprintf(stderr, "linkraft demo: no random bytes for the secret: %s\n", strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    hex[2 * sizeof raw] = '\n';
    size_t len = 2 * sizeof raw + 1;
    int ok = write(fd, hex, len) == (ssize_t)len && fsync(fd) == 0;
    if (close(fd) != 0)
        ok = 0;
    if (!ok) {
        fprintf(stderr, "linkraft demo: cannot write %s: %s\n", path, strerror(errno));
        unlink(path);
        return -1;
    }
    return 0;
}

int cmd_demo(int argc, char **argv)
{
    static const char usage[] =
        "NAME\n"
        "    linkraft demo - a whole cluster and a gateway on this machine (make run)\n"
        "\n"
        "SYNOPSIS\n"
        "    linkraft demo [--nodes N] [--port P] [--data DIR] [--rate-limits on|off]\n"
        "\n"
        "DESCRIPTION\n"
        "    Runs a cluster of N nodes and a gateway on 127.0.0.1:P on this machine,\n"
        "    keeping everything in DIR: run it again on the same DIR and it resumes with\n"
        "    the same data. Node i serves HTTP on port P+i and Raft on port P-1000+i; the\n"
        "    peers authenticate with DIR/secret (written once, mode 0600). It prints every\n"
        "    process's PID and log file. Ctrl-C stops everything.\n"
        "\n"
        "OPTIONS\n"
        "    --nodes N           how many nodes, 1 to %d (default %d)\n"
        "    --port P            the gateway's port (default %d)\n"
        "    --data DIR          where the nodes' data and logs go (default ./%s)\n"
        "    --rate-limits on|off  passed to every node (default on; off for scripted\n"
        "                        clicking faster than a person: linkraft node --help)\n"
        "    --help              print this help\n"
        "\n"
        "EXAMPLES\n"
        "    linkraft demo                       the site at http://127.0.0.1:8000\n"
        "    linkraft demo --nodes 5 --port 9000 --data /tmp/lr5\n"
        "\n"
        "EXIT STATUS\n"
        "    0  stopped by Ctrl-C;  1  a process could not start;  2  bad usage\n";
    static const struct option longopts[] = {
        { "nodes", required_argument, 0, 'n' },
        { "port", required_argument, 0, 'p' },
        { "data", required_argument, 0, 'd' },
        { "rate-limits", required_argument, 0, 'l' },
        { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 },
    };
    unsigned long long nodes = DEMO_DEFAULT_NODES, port = DEMO_DEFAULT_PORT;
    const char *dir = DEMO_DEFAULT_DIR, *rate_limits = "on";
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'n':
            if (cli_parse_u64(optarg, &nodes) || nodes > DEMO_MAX_NODES) {
                fprintf(stderr, "linkraft demo: --nodes is 1 to %d\n", DEMO_MAX_NODES);
                return 2;
            }
            break;
        case 'p':
            if (cli_parse_u64(optarg, &port) || port < 1100 || port + DEMO_MAX_NODES > 65535) {
                fprintf(stderr, "linkraft demo: --port is 1100 to %d\n", 65535 - DEMO_MAX_NODES);
                return 2;
            }
            break;
        case 'd': dir = optarg; break;
        case 'l':
            if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
                fprintf(stderr, "linkraft demo: --rate-limits is on or off, not '%s'\n", optarg);
                return 2;
            }
            rate_limits = optarg;
            break;
        case 'h': fprintf(stdout, usage, DEMO_MAX_NODES, DEMO_DEFAULT_NODES, DEMO_DEFAULT_PORT, DEMO_DEFAULT_DIR); return 0;
        default: fprintf(stderr, usage, DEMO_MAX_NODES, DEMO_DEFAULT_NODES, DEMO_DEFAULT_PORT, DEMO_DEFAULT_DIR); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "linkraft demo: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (strlen(dir) > 3000) {
        fprintf(stderr, "linkraft demo: --data path too long\n");
        return 2;
    }
    if (mkdir(dir, 0700) && errno != EEXIST) {
        fprintf(stderr, "linkraft demo: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    char cluster_path[4096], secret_path[4096];
    snprintf(cluster_path, sizeof cluster_path, "%s/cluster.txt", dir);
    snprintf(secret_path, sizeof secret_path, "%s/secret", dir);
    if (ensure_secret_file(secret_path))
        return 1;
    struct cluster cl;
    char err[512];
    if (access(cluster_path, F_OK) == 0) {
        if (cluster_load(cluster_path, &cl, err, sizeof err)) {
            fprintf(stderr, "linkraft demo: %s\n", err);
            return 2;
        }
        if (cl.n != nodes) {
            fprintf(stderr, "linkraft demo: %s was made for %zu nodes, not %llu: use --nodes %zu or another --data\n",
                    dir, cl.n, nodes, cl.n);
            return 2;
        }
        printf("linkraft demo: resuming the cluster in %s\n", dir);
    } else {
        if (write_cluster_file(cluster_path, (int)nodes, (int)port) ||
            cluster_load(cluster_path, &cl, err, sizeof err))
            return 1;
        printf("linkraft demo: new cluster in %s\n", dir);
    }
    /* Signals are taken synchronously below; children get the default mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);

    struct child kids[DEMO_MAX_NODES + 1];
    size_t n_kids = 0;
    for (size_t i = 0; i < cl.n; i++) {
        struct child *c = &kids[n_kids];
        char id[24], data[4200];
        snprintf(id, sizeof id, "%llu", (unsigned long long)cl.members[i].id);
        snprintf(data, sizeof data, "%s/node%s", dir, id);
        snprintf(c->name, sizeof c->name, "node %s", id);
        snprintf(c->log, sizeof c->log, "%s/node%s.log", dir, id);
        char *args[] = { "linkraft", "node", "--cluster", cluster_path, "--id", id, "--data", data,
                         "--secret-file", secret_path, "--rate-limits", (char *)rate_limits, NULL };
        if (spawn(c, args) == 0)
            n_kids++;
    }
    /* The gateway listens on the port the cluster file was made for. */
    char listen[64];
    uint16_t gw_port = (uint16_t)port;
    {
        char host[256];
        uint16_t p1;
        if (cluster_split_addr(cl.members[0].http_addr, host, sizeof host, &p1, err, sizeof err) == 0)
            gw_port = (uint16_t)(p1 - cl.members[0].id);
    }
    snprintf(listen, sizeof listen, "127.0.0.1:%u", gw_port);
    struct child *gw = &kids[n_kids];
    snprintf(gw->name, sizeof gw->name, "gateway");
    snprintf(gw->log, sizeof gw->log, "%s/gateway.log", dir);
    char *gargs[] = { "linkraft", "gateway", "--cluster", cluster_path, "--listen", listen, NULL };
    if (spawn(gw, gargs) == 0)
        n_kids++;

    printf("\n  the site:  http://%s/\n\n", listen);
    printf("  %-8s %-8s %-18s %-18s %s\n", "WHAT", "PID", "RAFT", "HTTP", "LOG");
    for (size_t i = 0; i < n_kids; i++) {
        const struct cluster_member *m = i < cl.n ? &cl.members[i] : NULL;
        printf("  %-8s %-8d %-18s %-18s %s\n", kids[i].name, (int)kids[i].pid, m ? m->raft_addr : "-",
               m ? m->http_addr : listen, kids[i].log);
    }
    printf("\n  Try: kill -9 the leader's PID (see http://%s/status) and keep using the site.\n"
           "  Ctrl-C stops everything; data stays in %s.\n\n", listen, dir);
    fflush(stdout);

    size_t alive = n_kids;
    bool stopping = false;
    struct timespec deadline = { 0, 0 };
    while (alive) {
        struct timespec wait = { 0, 200 * 1000000 };
        int sig = sigtimedwait(&set, NULL, &wait);
        if (sig == SIGINT || sig == SIGTERM) {
            if (!stopping) {
                printf("linkraft demo: stopping every process\n");
                fflush(stdout);
                for (size_t i = 0; i < n_kids; i++)
                    if (kids[i].pid > 0)
                        kill(kids[i].pid, SIGTERM);
                clock_gettime(CLOCK_MONOTONIC, &deadline);
                deadline.tv_sec += 10;
                stopping = true;
            }
        }
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            for (size_t i = 0; i < n_kids; i++) {
                if (kids[i].pid != pid)
                    continue;
                kids[i].pid = -1;
                alive--;
                if (!stopping || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                    if (WIFEXITED(status))
                        printf("linkraft demo: %s exited with code %d (log: %s)\n", kids[i].name, WEXITSTATUS(status), kids[i].log);
                    else
                        printf("linkraft demo: %s was killed by signal %d\n", kids[i].name, WTERMSIG(status));
                    fflush(stdout);
                }
            }
        }
        if (stopping) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec > deadline.tv_sec)
                for (size_t i = 0; i < n_kids; i++)
                    if (kids[i].pid > 0)
                        kill(kids[i].pid, SIGKILL);
        }
    }
    printf("linkraft demo: stopped\n");
    return 0;
}
