/*
 * lincheck_main.c — the chaos checker's door to tests/lib/lincheck (WGL on
 * per-key registers): reads one operation a line from stdin,
 *     CLIENT KEY put|get VALUE CALL RET
 * (times in microseconds; RET "-" for an operation whose outcome is
 * unknown; a get of VALUE 0 saw the key absent) and prints "ok",
 * "violation" with the offending key's history, or "unknown" (the search
 * budget ran out). Exit 0, 1 or 2 accordingly; 3 for unreadable input.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lincheck.h"

int main(void)
{
    size_t n = 0, cap = 1024;
    struct lin_op *ops = malloc(cap * sizeof *ops);
    char line[256];
    while (ops && fgets(line, sizeof line, stdin)) {
        unsigned client, key;
        char kind[8], ret[32];
        uint64_t value, call;
        if (sscanf(line, "%u %u %7s %" SCNu64 " %" SCNu64 " %31s", &client, &key, kind, &value, &call, ret) != 6 ||
            (strcmp(kind, "put") && strcmp(kind, "get"))) {
            fprintf(stderr, "lincheck: bad line: %s", line);
            return 3;
        }
        if (n == cap) {
            struct lin_op *more = realloc(ops, 2 * cap * sizeof *ops);
            if (!more)
                break;
            ops = more;
            cap *= 2;
        }
        ops[n++] = (struct lin_op){ client, key, !strcmp(kind, "put") ? LIN_PUT : LIN_GET, value, call,
                                    !strcmp(ret, "-") ? LIN_PENDING : strtoull(ret, NULL, 10) };
    }
    if (!ops) {
        fprintf(stderr, "lincheck: out of memory\n");
        return 3;
    }
    static char why[1 << 16];
    enum lin_result r = lin_check(ops, n, 50u * 1000 * 1000, why, sizeof why);
    printf("%s: %zu operations\n%s", lin_result_name(r), n, why);
    free(ops);
    return r == LIN_OK ? 0 : r == LIN_VIOLATION ? 1 : 2;
}
