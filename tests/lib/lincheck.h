/*
 * lincheck.h — a linearizability checker for the client histories the
 * deterministic simulator records. The model is a map of independent
 * registers (key -> 64-bit value, 0 meaning absent) with PUT and GET; the
 * checker decides whether the completed operations, with their real-time
 * intervals, could have taken effect one at a time in an order consistent
 * with those intervals and with the register semantics. It implements the
 * search of Wing & Gong 1993 with Lowe 2017's refinements (the "WGL"
 * algorithm, also used by Porcupine): the history is split per key
 * (P-compositionality), each key's history is a doubly linked list of call and
 * return events, and visited (linearized-set, register value) configurations
 * are memoized. Test-only code: libc only, no global mutable state, so any
 * number of checks may run at once in different threads.
 */
#ifndef LINKRAFT_LINCHECK_H
#define LINKRAFT_LINCHECK_H

#include <stddef.h>
#include <stdint.h>

enum lin_kind { LIN_PUT = 1, LIN_GET = 2 };

/* Response time of an operation whose outcome is unknown (the client gave up,
 * crashed, or the simulation ended before the reply). */
#define LIN_PENDING UINT64_MAX

/* One client operation. Times are in any unit, on one clock shared by all
 * clients (the simulator's virtual time).
 *
 * Timing rule: a completed op took effect at one instant in [call, ret],
 * both ends included. So two ops where one's call equals the other's ret are
 * concurrent (either may be ordered first) — the permissive choice, because a
 * clock tick in the simulator can hold both a reply and a new request, and we
 * do not want to report a violation that a finer clock would not show.
 *
 * Pending ops (ret == LIN_PENDING): a pending PUT may have taken effect at any
 * instant after its call, or never; it never has to be linearized. A pending
 * GET returned nothing anyone saw, so it is ignored. */
struct lin_op {
    uint32_t client; /* who issued it; only used in messages */
    uint32_t key;    /* register name; ops on different keys are independent */
    uint8_t kind;    /* LIN_PUT or LIN_GET */
    uint64_t value;  /* PUT: value written (should be nonzero: writing 0 is
                        indistinguishable from deleting the key).
                        GET: value observed; 0 = key absent */
    uint64_t call;   /* invocation time */
    uint64_t ret;    /* response time, >= call; or LIN_PENDING */
};

enum lin_result {
    LIN_OK = 0,        /* every key's history is linearizable */
    LIN_VIOLATION = 1, /* some key's history is not (or the history is malformed) */
    LIN_UNKNOWN = 2,   /* the search budget ran out (or memory did) before an answer */
};

/* lin_check decides whether the history ops[0..n) is linearizable with
 * respect to the register-map model (every register starts absent, 0).
 *
 * ops may be in any order; the array is only read, and not kept after return.
 * n == 0 (ops may then be NULL) is LIN_OK.
 *
 * max_steps bounds the search work per key (one step = one event examined,
 * one op linearized or one backtrack); 0 means no bound. Keys are checked one
 * by one in increasing key order; a key that exceeds the budget makes the
 * result LIN_UNKNOWN unless another key has a violation, which wins. Memory
 * use grows with the number of distinct configurations visited, so a bound is
 * also a memory bound (about 40 bytes per configuration, plus 8 per 64 ops of
 * the bitset that are not a solid run of linearized ops at its start).
 *
 * why (may be NULL when why_cap is 0) receives a NUL-terminated, multi-line,
 * human-readable explanation, truncated to why_cap bytes (ending in "...")
 * when longer:
 *  - LIN_VIOLATION: the key, the number of its ops, the longest linearizable
 *    prefix found and the value it leaves, then that key's ops in call order
 *    with client, kind, value and times, each marked with its position in
 *    that prefix ("#3") or "--" when not in it; ops entirely before the first
 *    op outside the prefix are summarized in one line. A malformed history
 *    (ret < call, or an unknown kind) is also reported as LIN_VIOLATION, with
 *    a message starting "malformed history", since it means the recorder has
 *    a bug that must not pass silently.
 *  - LIN_UNKNOWN: which key ran out of budget (or that memory ran out).
 *  - LIN_OK: the empty string.
 *
 * Cost: for a key with m ops, O(m log m) to build plus the search; with
 * concurrency c the search is close to linear in m for linearizable
 * histories and bounded by about m * 2^c configurations in general. */
enum lin_result lin_check(const struct lin_op *ops, size_t n, uint64_t max_steps,
                          char *why, size_t why_cap);

/* lin_result_name returns "ok", "violation" or "unknown" (static string). */
const char *lin_result_name(enum lin_result r);

#endif
