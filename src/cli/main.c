/* main.c — the `linkraft` binary: dispatches to subcommands. */
#include <stdio.h>
#include <string.h>

#define LINKRAFT_VERSION "0.1.0"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: linkraft COMMAND [OPTIONS]\n"
            "\n"
            "commands:\n"
            "  version     print the version\n"
            "  help        print this help\n"
            "\n"
            "Run 'linkraft COMMAND --help' for a command's options.\n");
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
    fprintf(stderr, "linkraft: unknown command '%s' (try 'linkraft help')\n", cmd);
    return 2;
}
