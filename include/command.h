/*
 * command.h — the state machine's commands: what a COMMAND entry's data
 * means, and its binary encoding.
 *
 * Every command carries, fixed by the node that proposed it:
 *   - time_ms: the proposer's clock, the only clock apply ever looks at;
 *   - an idempotency scope and key (both may be empty): a repeat of the same
 *     (scope, key) returns the first result and changes nothing.
 * Layout: u8 version (1) | u8 type | u64 time_ms | str scope | str idem_key |
 * fields of the type. Integers little endian; str = u16 length + bytes.
 * Decoding checks every length and rejects trailing bytes.
 */
#ifndef LINKRAFT_COMMAND_H
#define LINKRAFT_COMMAND_H

#include <stddef.h>
#include <stdint.h>

#define COMMAND_VERSION 1
#define COMMAND_MAX_STR 4096

enum command_type {
    CMD_KV_PUT = 1,     /* key, value */
    CMD_KV_DELETE = 2,  /* key */
    CMD_MEMBER_ADDR = 3,/* key = member id in decimal, value = "RAFT-ADDRESS HTTP-ADDRESS":
                           the addresses of a member being added, carried in the log
                           so that every node (and every later leader) can reach it */
};

enum command_status {
    CMD_OK = 0,
    CMD_ERR_MALFORMED = 1,  /* the entry's data is not a valid command */
    CMD_ERR_NOT_FOUND = 2,
    CMD_ERR_CONFLICT = 3,   /* e.g. name taken, duplicate URL */
    CMD_ERR_DENIED = 4,     /* e.g. no live session */
};

struct command_str {
    const char *p;      /* borrowed; not NUL-terminated */
    uint16_t len;
};

struct command {
    uint8_t type;
    uint64_t time_ms;
    struct command_str scope, idem_key;
    struct command_str key, value;  /* KV */
};

/* Bytes command_encode needs. */
size_t command_size(const struct command *c);
/* Encodes c into buf (cap bytes). Returns bytes written or -1 if a string is
 * too long or cap too small. */
long command_encode(const struct command *c, uint8_t *buf, size_t cap);
/* Decodes; the strings point into buf. Returns 0 or -1 on malformed data. */
int command_decode(struct command *c, const uint8_t *buf, size_t len);

#endif
