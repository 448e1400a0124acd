/* main.c — the `linkraft` binary: dispatches to subcommands. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"

#define LINKRAFT_VERSION "0.2.0"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: linkraft COMMAND [OPTIONS]\n"
            "\n"
            "commands:\n"
            "  demo             run a whole cluster and a gateway on this machine (make run)\n"
            "  node             run one replica of the cluster\n"
            "  gateway          run a stateless front door: reads to any node, writes to the leader\n"
            "  status           print every member's role, term and indexes\n"
            "  member           add, promote or remove a member (through the log)\n"
            "  transfer-leader  hand leadership to another member\n"
            "  moderator        make a user a moderator of the site, or not (through the log)\n"
            "  backup           copy the site's database at one committed index to a file\n"
            "  restore          prepare a new cluster's data directory from a backup\n"
            "  version          print the version\n"
            "  help             print this help\n"
            "\n"
            "Run 'linkraft COMMAND --help' for a command's options.\n");
}

int cli_parse_u64(const char *s, unsigned long long *out)
{
    char *end;
    if (!s || !*s || *s == '-' || *s == '+')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || v == 0)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("linkraft %s\n", LINKRAFT_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "demo"))
        return cmd_demo(argc - 1, argv + 1);
    if (!strcmp(cmd, "gateway"))
        return cmd_gateway(argc - 1, argv + 1);
    if (!strcmp(cmd, "node"))
        return cmd_node(argc - 1, argv + 1);
    if (!strcmp(cmd, "status"))
        return cmd_status(argc - 1, argv + 1);
    if (!strcmp(cmd, "member"))
        return cmd_member(argc - 1, argv + 1);
    if (!strcmp(cmd, "transfer-leader"))
        return cmd_transfer_leader(argc - 1, argv + 1);
    if (!strcmp(cmd, "moderator"))
        return cmd_moderator(argc - 1, argv + 1);
    if (!strcmp(cmd, "backup"))
        return cmd_backup(argc - 1, argv + 1);
    if (!strcmp(cmd, "restore"))
        return cmd_restore(argc - 1, argv + 1);
    fprintf(stderr, "linkraft: unknown command '%s' (try 'linkraft help')\n", cmd);
    return 2;
}
