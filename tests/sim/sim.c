/*
 * sim.c — main of the simulator: the command line and the seed loop.
 *
 *   build/sim [--seeds N] [--first S] [--jobs J] [--nodes 3|5]
 *       runs seeds S..S+N-1 (default 1 and 2000) on J threads, prints one
 *       summary line, the failing seeds in ascending order (each with its
 *       violation and the command that replays it), and ends with
 *       "X passed, Y failed". Exits 0 only if every seed passed.
 *   build/sim --seed N [--trace] [--nodes 3|5]
 *       runs one seed; --trace prints every event of it, one per line.
 *
 * A seed's run depends on nothing but the seed (and --nodes), so a thread
 * may run any seed: workers take the next seed from a shared counter and
 * store the result in that seed's slot; the output is then printed in seed
 * order, the same whatever --jobs is.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim.h"

/* One seed's outcome, kept small: 200,000 seeds must fit in memory. */
struct outcome {
    bool ok;
    uint8_t n_nodes;
    uint64_t events, sim_us, crashes, torn, snapshots_installed, member_changes, elections, ops, lin_unknown;
    uint64_t stalls, pauses, snap_rot, one_voter;
    uint64_t wipes, rots, refusals, tail_cuts, repairs_local, repairs_from_peers, replaced, clock_pauses;
    uint64_t puts, gets;
    char *why; /* failures only; owned */
};

struct pool {
    uint64_t first, count;
    int nodes;
    struct outcome *results;
    uint64_t next;            /* next seed offset to run; under lock */
    pthread_mutex_t lock;
};

static void *worker(void *arg)
{
    struct pool *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        uint64_t i = p->next++;
        pthread_mutex_unlock(&p->lock);
        if (i >= p->count)
            return NULL;
        struct sim_result r;
        sim_run(p->first + i, p->nodes, false, NULL, &r);
        struct outcome *o = &p->results[i];
        *o = (struct outcome){ r.ok, (uint8_t)r.n_nodes, r.events, r.sim_us, r.crashes, r.torn,
                               r.snapshots_installed, r.member_changes, r.elections, r.ops, r.lin_unknown,
                               r.stalls, r.pauses, r.snap_rot, r.one_voter, r.wipes, r.rots, r.refusals,
                               r.tail_cuts, r.repairs_local, r.repairs_from_peers, r.replaced, r.clock_pauses,
                               r.puts, r.gets, r.ok ? NULL : strdup(r.why) };
    }
}

static int usage(const char *why)
{
    fprintf(stderr, "sim: %s\nusage: sim [--seeds N] [--first S] [--jobs J] [--nodes 3|5]\n"
                    "       sim --seed N [--trace] [--nodes 3|5]\n", why);
    return 2;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!s || !*s || *s == '-')
        return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end)
        return false;
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    uint64_t seeds = 2000, first = 1, jobs = 1, one = 0, nodes = 0;
    bool have_one = false, trace = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--trace")) {
            trace = true;
            continue;
        }
        uint64_t *dst = !strcmp(a, "--seeds") ? &seeds : !strcmp(a, "--first") ? &first :
                        !strcmp(a, "--jobs") ? &jobs : !strcmp(a, "--seed") ? &one :
                        !strcmp(a, "--nodes") ? &nodes : NULL;
        if (!dst)
            return usage("unknown option");
        if (!parse_u64(v, dst))
            return usage("option needs a non-negative number");
        if (dst == &one)
            have_one = true;
        i++;
    }
    if (nodes != 0 && nodes != 3 && nodes != 5)
        return usage("--nodes must be 3 or 5");
    if (jobs == 0 || jobs > 64)
        return usage("--jobs must be 1..64");
    if (trace && !have_one)
        return usage("--trace needs --seed N");

    if (have_one) {
        struct sim_result r;
        sim_run(one, (int)nodes, trace, stdout, &r);
        if (r.ok) {
            printf("seed %llu (%d nodes): ok, %llu events, %.2fs simulated\n", (unsigned long long)one,
                   r.n_nodes, (unsigned long long)r.events, (double)r.sim_us / 1e6);
            printf("1 passed, 0 failed\n");
            return 0;
        }
        printf("seed %llu (%d nodes) failed: violation: %s\n  replay: build/sim --seed %llu%s --trace\n",
               (unsigned long long)one, r.n_nodes, r.why, (unsigned long long)one,
               nodes ? (nodes == 3 ? " --nodes 3" : " --nodes 5") : "");
        printf("0 passed, 1 failed\n");
        return 1;
    }

    struct pool p = { .first = first, .count = seeds, .nodes = (int)nodes };
    p.results = calloc(seeds ? seeds : 1, sizeof *p.results);
    if (!p.results)
        return usage("out of memory");
    pthread_mutex_init(&p.lock, NULL);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_t th[64];
    for (uint64_t j = 0; j < jobs; j++)
        if (pthread_create(&th[j], NULL, worker, &p) != 0) {
            fprintf(stderr, "sim: cannot start thread %llu; continuing with fewer\n", (unsigned long long)j);
            jobs = j;
            break;
        }
    if (jobs == 0)
        worker(&p);
    for (uint64_t j = 0; j < jobs; j++)
        pthread_join(th[j], NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;

    uint64_t passed = 0, failed = 0, events = 0, sim_us = 0, shown = 0;
    struct outcome tot = { 0 };
    for (uint64_t i = 0; i < seeds; i++) {
        struct outcome *r = &p.results[i];
        events += r->events;
        sim_us += r->sim_us;
        tot.crashes += r->crashes;
        tot.torn += r->torn;
        tot.snapshots_installed += r->snapshots_installed;
        tot.member_changes += r->member_changes;
        tot.elections += r->elections;
        tot.ops += r->ops;
        tot.lin_unknown += r->lin_unknown;
        tot.stalls += r->stalls;
        tot.pauses += r->pauses;
        tot.snap_rot += r->snap_rot;
        tot.one_voter += r->one_voter;
        tot.wipes += r->wipes;
        tot.rots += r->rots;
        tot.refusals += r->refusals;
        tot.tail_cuts += r->tail_cuts;
        tot.repairs_local += r->repairs_local;
        tot.repairs_from_peers += r->repairs_from_peers;
        tot.replaced += r->replaced;
        tot.clock_pauses += r->clock_pauses;
        tot.puts += r->puts;
        tot.gets += r->gets;
        if (r->ok) {
            passed++;
            continue;
        }
        failed++;
        if (shown++ < 20)
            printf("seed %llu (%d nodes) failed: violation: %s\n  replay: build/sim --seed %llu%s --trace\n",
                   (unsigned long long)(first + i), r->n_nodes, r->why ? r->why : "(out of memory)",
                   (unsigned long long)(first + i),
                   nodes ? (nodes == 3 ? " --nodes 3" : " --nodes 5") : "");
    }
    if (shown > 20)
        printf("... and %llu more failing seeds\n", (unsigned long long)(shown - 20));
    printf("seeds %llu..%llu on %llu jobs: %.1fs wall, %.0f seeds/s, %.1f simulated hours, %llu events\n",
           (unsigned long long)first, (unsigned long long)(first + seeds - 1), (unsigned long long)jobs, secs,
           secs > 0 ? (double)seeds / secs : 0.0, (double)sim_us / 3.6e9, (unsigned long long)events);
    printf("exercised: %llu elections, %llu crashes (%llu torn writes), %llu membership changes, "
           "%llu snapshots installed, %llu writes and %llu linearizable reads checked (%llu histories "
           "undecided)\n",
           (unsigned long long)tot.elections,
           (unsigned long long)tot.crashes, (unsigned long long)tot.torn, (unsigned long long)tot.member_changes,
           (unsigned long long)tot.snapshots_installed, (unsigned long long)tot.puts, (unsigned long long)tot.gets,
           (unsigned long long)tot.lin_unknown);
    printf("harsher: %llu fsync stalls > election timeout, %llu long pauses, %llu clock stops, %llu rotten "
           "snapshot reads, %llu times down to one voter\n", (unsigned long long)tot.stalls,
           (unsigned long long)tot.pauses, (unsigned long long)tot.clock_pauses, (unsigned long long)tot.snap_rot,
           (unsigned long long)tot.one_voter);
    printf("disks: %llu wiped, %llu rotted at rest (%llu last entries cut, %llu starts refused, %llu repaired "
           "locally, %llu from peers), %llu nodes replaced by the operator\n", (unsigned long long)tot.wipes,
           (unsigned long long)tot.rots, (unsigned long long)tot.tail_cuts, (unsigned long long)tot.refusals,
           (unsigned long long)tot.repairs_local, (unsigned long long)tot.repairs_from_peers,
           (unsigned long long)tot.replaced);
    printf("%llu passed, %llu failed\n", (unsigned long long)passed, (unsigned long long)failed);
    for (uint64_t i = 0; i < seeds; i++)
        free(p.results[i].why);
    free(p.results);
    pthread_mutex_destroy(&p.lock);
    return failed ? 1 : 0;
}
