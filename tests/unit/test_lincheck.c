/*
 * test_lincheck.c — unit tests of the linearizability checker the simulator
 * relies on (tests/lib/lincheck.c). A checker that says "ok" too easily hides
 * every bug the simulator exists to find, and one that cries wolf makes it
 * useless, so both directions are tested: small hand-made histories for each
 * rule (real-time order, stale reads, pending writes, equal times, keys being
 * independent), a brute-force reference on thousands of tiny random
 * histories, histories generated from real sequential executions (must pass)
 * and the same with one read corrupted (must fail), and a timing run at the
 * size the simulator produces.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../harness.h"
#include "../lib/lincheck.h"

#define STEPS 10000000ULL

static struct lin_op put(uint32_t client, uint32_t key, uint64_t v, uint64_t call, uint64_t ret)
{
    return (struct lin_op){ .client = client, .key = key, .kind = LIN_PUT, .value = v,
                            .call = call, .ret = ret };
}

static struct lin_op get(uint32_t client, uint32_t key, uint64_t v, uint64_t call, uint64_t ret)
{
    return (struct lin_op){ .client = client, .key = key, .kind = LIN_GET, .value = v,
                            .call = call, .ret = ret };
}

static char why[8192];

static enum lin_result check(const struct lin_op *ops, size_t n)
{
    return lin_check(ops, n, STEPS, why, sizeof why);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------ small cases */

TEST(test_empty_history)
{
    strcpy(why, "junk");
    CHECK_EQ_I(lin_check(NULL, 0, 0, why, sizeof why), LIN_OK);
    CHECK_STR(why, "");
    CHECK_EQ_I(lin_check(NULL, 0, 0, NULL, 0), LIN_OK);
}

TEST(test_sequential_put_get)
{
    struct lin_op h[] = {
        get(1, 7, 0, 0, 5), /* absent before any write */
        put(1, 7, 10, 10, 20),
        get(2, 7, 10, 30, 40),
        put(2, 7, 11, 50, 60),
        get(1, 7, 11, 70, 80),
        get(3, 7, 11, 90, 95),
    };
    CHECK_EQ_I(check(h, N(h)), LIN_OK);
    CHECK_STR(why, "");
}

TEST(test_get_sees_value_before_put_invoked)
{
    struct lin_op h[] = {
        get(1, 1, 5, 0, 10),
        put(2, 1, 5, 20, 30),
    };
    CHECK_EQ_I(check(h, N(h)), LIN_VIOLATION);
    CHECK(strstr(why, "key 1:") != NULL);
}

TEST(test_stale_read_after_newer_put)
{
    struct lin_op h[] = {
        put(1, 1, 1, 0, 10),
        put(2, 1, 2, 20, 30),
        get(3, 1, 1, 40, 50),
    };
    CHECK_EQ_I(check(h, N(h)), LIN_VIOLATION);
}

TEST(test_concurrent_put_get_either_order)
{
    struct lin_op before[] = { put(1, 1, 1, 0, 100), get(2, 1, 0, 10, 20) };
    struct lin_op after[] = { put(1, 1, 1, 0, 100), get(2, 1, 1, 10, 20) };
    CHECK_EQ_I(check(before, N(before)), LIN_OK);
    CHECK_EQ_I(check(after, N(after)), LIN_OK);
}

/* The documented choice: a call at the very instant of another op's return
 * overlaps it, so either order is allowed; one tick later it does not. */
TEST(test_equal_times_count_as_concurrent)
{
    struct lin_op touch_new[] = { put(1, 1, 1, 0, 10), get(2, 1, 1, 10, 20) };
    struct lin_op touch_old[] = { put(1, 1, 1, 0, 10), get(2, 1, 0, 10, 20) };
    struct lin_op apart_old[] = { put(1, 1, 1, 0, 10), get(2, 1, 0, 11, 20) };
    struct lin_op instant[] = { put(1, 1, 1, 5, 5), get(2, 1, 1, 5, 5), get(3, 1, 0, 5, 5) };
    CHECK_EQ_I(check(touch_new, N(touch_new)), LIN_OK);
    CHECK_EQ_I(check(touch_old, N(touch_old)), LIN_OK);
    CHECK_EQ_I(check(apart_old, N(apart_old)), LIN_VIOLATION);
    CHECK_EQ_I(check(instant, N(instant)), LIN_OK);
}

TEST(test_two_concurrent_puts_then_gets_in_impossible_order)
{
    /* Both puts finished before either get began: whichever took effect last
     * is the value forever after, so the gets cannot disagree. */
    struct lin_op bad[] = {
        put(1, 1, 1, 0, 10), put(2, 1, 2, 0, 10),
        get(3, 1, 1, 20, 30), get(3, 1, 2, 40, 50),
    };
    struct lin_op good[] = {
        put(1, 1, 1, 0, 10), put(2, 1, 2, 0, 10),
        get(3, 1, 1, 20, 30), get(4, 1, 1, 40, 50),
    };
    /* With the gets overlapping the puts, seeing 1 then 2 is fine. */
    struct lin_op overlapping[] = {
        put(1, 1, 1, 0, 100), put(2, 1, 2, 0, 100),
        get(3, 1, 1, 20, 30), get(3, 1, 2, 40, 50),
    };
    CHECK_EQ_I(check(bad, N(bad)), LIN_VIOLATION);
    CHECK_EQ_I(check(good, N(good)), LIN_OK);
    CHECK_EQ_I(check(overlapping, N(overlapping)), LIN_OK);
}

TEST(test_pending_put_observed)
{
    struct lin_op h[] = {
        put(1, 1, 1, 0, 10),
        put(2, 1, 2, 20, LIN_PENDING), /* client gave up; it did happen */
        get(3, 1, 1, 30, 40),          /* before it took effect */
        get(3, 1, 2, 100, 110),        /* after */
        get(1, 1, 2, 120, 130),
    };
    CHECK_EQ_I(check(h, N(h)), LIN_OK);
    /* Once seen, a write cannot be undone by anything but another write. */
    struct lin_op flip[] = {
        put(1, 1, 1, 0, 10),
        put(2, 1, 2, 20, LIN_PENDING),
        get(3, 1, 2, 100, 110),
        get(3, 1, 1, 120, 130),
    };
    CHECK_EQ_I(check(flip, N(flip)), LIN_VIOLATION);
    /* Nor can it take effect before it was called. */
    struct lin_op early[] = {
        put(1, 1, 1, 0, 10),
        get(3, 1, 2, 12, 18),
        put(2, 1, 2, 20, LIN_PENDING),
    };
    CHECK_EQ_I(check(early, N(early)), LIN_VIOLATION);
}

TEST(test_pending_put_never_observed)
{
    struct lin_op h[] = {
        put(1, 1, 1, 0, 10),
        put(2, 1, 2, 5, LIN_PENDING),
        get(3, 1, 1, 20, 30),
        get(3, 1, 1, 40, 50),
        put(2, 1, 3, 5, LIN_PENDING), /* any order in the input */
    };
    CHECK_EQ_I(check(h, N(h)), LIN_OK);
    /* Only pending ops: nothing has to be linearized. */
    struct lin_op only[] = { put(1, 4, 9, 0, LIN_PENDING), put(2, 4, 8, 3, LIN_PENDING) };
    CHECK_EQ_I(check(only, N(only)), LIN_OK);
}

TEST(test_pending_get_ignored)
{
    struct lin_op h[] = {
        put(1, 1, 1, 0, 10),
        get(2, 1, 99, 20, LIN_PENDING), /* whatever it holds, nobody saw it */
        get(3, 1, 1, 30, 40),
    };
    CHECK_EQ_I(check(h, N(h)), LIN_OK);
}

TEST(test_get_absent_after_completed_put)
{
    struct lin_op h[] = {
        put(1, 1, 1, 0, 10),
        get(2, 1, 0, 20, 30),
    };
    CHECK_EQ_I(check(h, N(h)), LIN_VIOLATION);
}

TEST(test_keys_are_independent)
{
    /* Lots of fine, concurrent traffic on key 1, one stale read on key 2. */
    struct lin_op *h = calloc(2004, sizeof *h);
    REQUIRE(h);
    size_t n = 0;
    for (uint64_t i = 0; i < 1000; i++) {
        h[n++] = put((uint32_t)(i % 4), 1, i + 1, i * 10, i * 10 + 15);
        h[n++] = get((uint32_t)(i % 4 + 4), 1, i + 1, i * 10 + 12, i * 10 + 20);
    }
    h[n++] = put(1, 2, 100, 500, 510);
    h[n++] = put(2, 2, 200, 520, 530);
    h[n++] = get(3, 2, 100, 540, 550);
    /* Without the bad read the whole history is fine. */
    CHECK_EQ_I(check(h, n - 1), LIN_OK);
    CHECK_EQ_I(check(h, n), LIN_VIOLATION);
    CHECK(strstr(why, "key 2:") != NULL);
    CHECK(strstr(why, "key 1") == NULL);
    /* The same read on key 1 is not confused by key 2's write of 200. */
    h[n - 1].key = 3;
    CHECK_EQ_I(check(h, n), LIN_VIOLATION);
    CHECK(strstr(why, "key 3:") != NULL);
    free(h);
}

TEST(test_explanation_marks_prefix)
{
    struct lin_op h[] = {
        put(1, 5, 1, 0, 10),
        put(2, 5, 2, 20, 30),
        get(3, 5, 1, 40, 50),
        put(1, 5, 3, 60, LIN_PENDING),
    };
    CHECK_EQ_I(check(h, N(h)), LIN_VIOLATION);
    /* The first two ops are the longest linearizable prefix, leaving 2; the
     * stale get is not in it. */
    CHECK(strstr(why, "key 5: not linearizable: 4 ops (1 pending)") != NULL);
    CHECK(strstr(why, "prefix found has 2 ops and leaves the value 2") != NULL);
    CHECK(strstr(why, "client 3   get 1") != NULL);
    CHECK(strstr(why, "--") != NULL);
    CHECK(strstr(why, "ret pending") != NULL);

    /* A small buffer truncates, and says so. */
    char small[40];
    CHECK_EQ_I(lin_check(h, N(h), STEPS, small, sizeof small), LIN_VIOLATION);
    CHECK_EQ_U(strlen(small), sizeof small - 1);
    CHECK(strcmp(small + sizeof small - 4, "...") == 0);
    /* No buffer at all is fine too. */
    CHECK_EQ_I(lin_check(h, N(h), STEPS, NULL, 0), LIN_VIOLATION);
}

TEST(test_budget_exhausted_is_unknown)
{
    /* Many concurrent puts and a read nobody wrote: the search has to try
     * every subset before it can say no. */
    struct lin_op h[16];
    for (uint32_t i = 0; i < 15; i++)
        h[i] = put(i, 1, i + 1, 0, 100);
    h[15] = get(20, 1, 77, 200, 210);
    CHECK_EQ_I(lin_check(h, N(h), 50, why, sizeof why), LIN_UNKNOWN);
    CHECK(strstr(why, "key 1") != NULL);
    CHECK_EQ_I(lin_check(h, N(h), 0, why, sizeof why), LIN_VIOLATION);
    /* A violation on another key wins over an exhausted budget. */
    struct lin_op h2[18];
    memcpy(h2, h, sizeof h);
    h2[15] = get(20, 1, 15, 200, 210); /* fine, but costly to find with 50 steps */
    h2[16] = put(1, 2, 1, 0, 10);
    h2[17] = get(2, 2, 0, 20, 30);
    enum lin_result r = lin_check(h2, N(h2), 50, why, sizeof why);
    CHECK(r == LIN_VIOLATION || r == LIN_UNKNOWN);
    if (r == LIN_VIOLATION)
        CHECK(strstr(why, "key 2:") != NULL);
    CHECK_EQ_I(lin_check(h2, N(h2), 0, why, sizeof why), LIN_VIOLATION);
    CHECK(strstr(why, "key 2:") != NULL);
}

TEST(test_malformed_history)
{
    struct lin_op h[] = { put(1, 1, 1, 10, 5) };
    CHECK_EQ_I(check(h, N(h)), LIN_VIOLATION);
    CHECK(strncmp(why, "malformed history", 17) == 0);
    h[0] = put(1, 1, 1, 0, 5);
    h[0].kind = 9;
    CHECK_EQ_I(check(h, N(h)), LIN_VIOLATION);
    CHECK(strncmp(why, "malformed history", 17) == 0);
    CHECK_STR(lin_result_name(LIN_UNKNOWN), "unknown");
}

/* ------------------------------------------------------- random histories */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = (*s += 0x9e3779b97f4a7c15ULL);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t below(uint64_t *s, uint64_t n)
{
    return n ? rng_next(s) % n : 0;
}

/* The definition, by brute force: some order of the completed ops (plus any
 * subset of the pending puts) respects real time (no op is placed after one
 * that was called strictly after it returned) and the register semantics. */
static int brute_ok(const struct lin_op *h, size_t n, uint32_t used, uint64_t value)
{
    int all = 1;
    for (size_t i = 0; i < n; i++)
        if (!(used >> i & 1) && h[i].ret != LIN_PENDING)
            all = 0;
    if (all)
        return 1;
    for (size_t i = 0; i < n; i++) {
        if (used >> i & 1)
            continue;
        if (h[i].kind == LIN_GET && h[i].ret == LIN_PENDING)
            continue;
        int blocked = 0;
        for (size_t j = 0; j < n; j++)
            if (j != i && !(used >> j & 1) && h[j].ret != LIN_PENDING && h[j].ret < h[i].call)
                blocked = 1;
        if (blocked)
            continue;
        if (h[i].kind == LIN_GET && h[i].value != value)
            continue;
        uint64_t v = h[i].kind == LIN_PUT ? h[i].value : value;
        if (brute_ok(h, n, used | 1u << i, v))
            return 1;
    }
    return 0;
}

TEST(test_matches_brute_force_on_tiny_histories)
{
    uint64_t seed = 42;
    int ok = 0, bad = 0;
    for (int iter = 0; iter < 20000; iter++) {
        struct lin_op h[7];
        size_t n = 1 + below(&seed, 7);
        for (size_t i = 0; i < n; i++) {
            uint64_t call = below(&seed, 12);
            uint64_t ret = below(&seed, 5) == 0 ? LIN_PENDING : call + below(&seed, 6);
            if (below(&seed, 2))
                h[i] = put((uint32_t)i, 1, 1 + below(&seed, 3), call, ret);
            else
                h[i] = get((uint32_t)i, 1, below(&seed, 4), call, ret);
        }
        int want = brute_ok(h, n, 0, 0);
        enum lin_result got = check(h, n);
        if (got != (want ? LIN_OK : LIN_VIOLATION)) {
            fprintf(stderr, "  iter %d: brute force says %d, checker %s\n%s", iter, want,
                    lin_result_name(got), why);
            CHECK(0);
            break;
        }
        want ? ok++ : bad++;
    }
    /* Both answers must have been exercised for this to mean anything. */
    CHECK(ok > 2000);
    CHECK(bad > 2000);
}

/* gen_history simulates a real execution: nclients sequential clients issue
 * ops whose effects happen one at a time, at increasing instants, on a real
 * register map; each op's interval is a random window around its instant
 * (its call no earlier than its client's previous return). Some puts end up
 * pending, some of them after taking effect and some without ever doing so.
 * Put values are unique. Returns the number of ops written to h. */
static size_t gen_history(uint64_t *seed, struct lin_op *h, size_t nops, uint32_t nkeys,
                          uint32_t nclients, uint64_t window, unsigned pending_pct)
{
    uint64_t reg[64] = { 0 }, free_at[64] = { 0 };
    uint64_t t = 100, next_value = 1;
    for (size_t i = 0; i < nops; i++) {
        t += 1 + below(seed, 4);
        uint32_t c = (uint32_t)below(seed, nclients);
        for (uint32_t k = 0; k < nclients && free_at[c] > t; k++)
            c = (c + 1) % nclients;
        if (free_at[c] > t) {
            for (uint32_t k = 0; k < nclients; k++)
                if (free_at[k] < free_at[c])
                    c = k;
            t = free_at[c];
        }
        uint64_t slack = t - free_at[c] < window ? t - free_at[c] : window;
        uint64_t call = t - below(seed, slack + 1);
        uint64_t ret = t + below(seed, window + 1);
        uint32_t key = (uint32_t)below(seed, nkeys);
        int pending = below(seed, 100) < pending_pct;
        if (below(seed, 2)) {
            uint64_t v = next_value++;
            /* A pending put may never have reached the store at all. */
            if (!(pending && below(seed, 2)))
                reg[key] = v;
            h[i] = put(c, key, v, call, pending ? LIN_PENDING : ret);
        } else {
            h[i] = get(c, key, reg[key], call, pending ? LIN_PENDING : ret);
        }
        free_at[c] = ret + 1; /* a client that gave up moves on too */
    }
    return nops;
}

/* Makes one completed get, h[*which], return a value it cannot have seen.
 * Returns 1 if that is a stale read (tried in mode 1), 0 if it is a value
 * never written. */
static int corrupt(uint64_t *seed, struct lin_op *h, size_t n, int mode, size_t *which)
{
    if (mode == 1) {
        /* Find get g, put q and put p on one key, all completed, with
         * p.ret < q.call and q.ret < g.call: p precedes q precedes g in every
         * linearization, so g cannot see p's (unique) value. */
        for (int tries = 0; tries < 50; tries++) {
            size_t gi = (size_t)below(seed, n);
            const struct lin_op *g = &h[gi];
            if (g->kind != LIN_GET || g->ret == LIN_PENDING)
                continue;
            for (size_t qi = 0; qi < n; qi++) {
                const struct lin_op *q = &h[qi];
                if (q->kind != LIN_PUT || q->key != g->key || q->ret == LIN_PENDING ||
                    q->ret >= g->call)
                    continue;
                for (size_t pi = 0; pi < n; pi++) {
                    const struct lin_op *p = &h[pi];
                    if (p->kind == LIN_PUT && p->key == g->key && p->ret != LIN_PENDING &&
                        p->ret < q->call) {
                        h[gi].value = p->value;
                        *which = gi;
                        return 1;
                    }
                }
            }
        }
    }
    for (;;) {
        size_t gi = (size_t)below(seed, n);
        if (h[gi].kind == LIN_GET && h[gi].ret != LIN_PENDING) {
            h[gi].value = (1ULL << 40) + gi;
            *which = gi;
            return 0;
        }
    }
}

TEST(test_random_real_executions)
{
    enum { OPS = 200 };
    struct lin_op h[OPS];
    uint64_t seed = 7;
    int stale = 0;
    for (int iter = 0; iter < 1000; iter++) {
        uint64_t hseed = seed;
        size_t n = gen_history(&seed, h, OPS, 3, 4, 12, 3);
        enum lin_result r = check(h, n);
        if (r != LIN_OK) {
            fprintf(stderr, "  history %d (seed %llu) is %s:\n%s", iter,
                    (unsigned long long)hseed, lin_result_name(r), why);
            CHECK(0);
            break;
        }
        size_t gi;
        int made = corrupt(&seed, h, n, iter % 2, &gi);
        stale += made;
        r = check(h, n);
        if (r != LIN_VIOLATION) {
            fprintf(stderr, "  corrupted history %d (mode %d) is %s\n", iter, made,
                    lin_result_name(r));
            CHECK(0);
            break;
        }
        char want[32];
        snprintf(want, sizeof want, "key %u:", (unsigned)h[gi].key);
        CHECK(strstr(why, want) != NULL);
    }
    /* Most odd iterations must really have tested a stale read. */
    CHECK(stale > 400);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

TEST(test_performance_5000_ops)
{
    enum { OPS = 5000 };
    struct lin_op *h = calloc(OPS, sizeof *h);
    REQUIRE(h);
    uint64_t seed = 2024;
    struct { const char *what; uint32_t keys, clients; uint64_t window; } cases[] = {
        { "8 keys, 8 clients", 8, 8, 20 },
        { "5 keys, 8 clients, wide windows", 5, 8, 60 },
        { "1 key, 8 clients", 1, 8, 20 },
    };
    for (size_t c = 0; c < N(cases); c++) {
        size_t n = gen_history(&seed, h, OPS, cases[c].keys, cases[c].clients,
                               cases[c].window, 2);
        double t0 = now_ms();
        enum lin_result r = check(h, n);
        double t1 = now_ms();
        CHECK_EQ_I(r, LIN_OK);
        size_t gi;
        corrupt(&seed, h, n, 1, &gi);
        double t2 = now_ms();
        enum lin_result r2 = check(h, n);
        double t3 = now_ms();
        CHECK_EQ_I(r2, LIN_VIOLATION);
        printf("  lincheck %d ops, %s: %.2f ms (ok), %.2f ms with one stale read (%s)\n",
               OPS, cases[c].what, t1 - t0, t3 - t2, lin_result_name(r2));
    }
    free(h);
}

int main(void)
{
    RUN(test_empty_history);
    RUN(test_sequential_put_get);
    RUN(test_get_sees_value_before_put_invoked);
    RUN(test_stale_read_after_newer_put);
    RUN(test_concurrent_put_get_either_order);
    RUN(test_equal_times_count_as_concurrent);
    RUN(test_two_concurrent_puts_then_gets_in_impossible_order);
    RUN(test_pending_put_observed);
    RUN(test_pending_put_never_observed);
    RUN(test_pending_get_ignored);
    RUN(test_get_absent_after_completed_put);
    RUN(test_keys_are_independent);
    RUN(test_explanation_marks_prefix);
    RUN(test_budget_exhausted_is_unknown);
    RUN(test_malformed_history);
    RUN(test_matches_brute_force_on_tiny_histories);
    RUN(test_random_real_executions);
    RUN(test_performance_5000_ops);
    return HARNESS_END();
}
