/* commands.h — the subcommands of the `linkraft` binary. Each takes the
 * arguments after its name (argv[0] is the subcommand) and returns the exit
 * code: 0 success, 1 runtime failure, 2 bad usage or configuration. */
#ifndef LINKRAFT_CLI_COMMANDS_H
#define LINKRAFT_CLI_COMMANDS_H

int cmd_node(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_member(int argc, char **argv);
int cmd_transfer_leader(int argc, char **argv);
int cmd_moderator(int argc, char **argv);
int cmd_gateway(int argc, char **argv);
int cmd_demo(int argc, char **argv);

/* Parses a positive decimal integer; -1 if s is not one. */
int cli_parse_u64(const char *s, unsigned long long *out);
/* Checks a --trust-proxy list ("CIDR,..."); -1 after saying what is wrong
 * on stderr (cmd_gateway.c). */
int cli_check_trust_proxy(const char *cmd, const char *list);
/* --log-format NAME: sets the log's format (node/log.h); -1 after saying
 * what is wrong on stderr (cmd_gateway.c). */
int cli_log_format(const char *cmd, const char *name);

#endif
