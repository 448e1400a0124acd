/*
 * search_store.c — what full-text search costs the state machine (issue 14):
 *
 *   apply:  N link posts (title, URL, and a text for one in four) applied as
 *           the node applies them (batches of 64 entries, a commit every 8
 *           batches), with the FTS5 index and again with its triggers
 *           dropped: the index's share of apply time;
 *   search: then, on a database of M links, store_search (our whole query:
 *           words quoted, count, ranked page with the link rows) against the
 *           bare FTS5 query a small program would run (rowids of the best 30
 *           by bm25), single-threaded: p50 / p99 and queries per second.
 *
 * Usage: search_store DIR [N_APPLY [M_SEARCH]] (defaults 100000, 1000000).
 * Build: see bench/run.py (bench_search) or
 *   cc -O2 -Iinclude -Isrc bench/search_store.c build/libstore.a build/libcommon.a -lsqlite3 -lm
 */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "command.h"
#include "store.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A small vocabulary with a skewed (Zipf-like) use, so that some words are
 * in many titles and most in few, as in real titles. */
static const char *const words[] = {
    "raft", "consensus", "linux", "rust", "go", "python", "sqlite", "database", "kernel", "network", "security",
    "compiler", "browser", "startup", "design", "history", "science", "space", "energy", "climate", "music",
    "game", "ai", "model", "paper", "release", "open", "source", "show", "ask", "why", "how", "new", "old",
    "fast", "slow", "simple", "hard", "lessons", "guide", "notes", "review", "postmortem", "outage", "scaling",
    "memory", "latency", "throughput", "cache", "index", "search", "engine", "query", "storage", "disk", "fsync",
    "replication", "paxos", "leader", "election", "snapshot", "log", "cluster", "distributed", "systems",
};
#define NWORDS (sizeof words / sizeof words[0])

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static const char *word(void)
{
    double u = (double)(next_rand() % 1000000) / 1000000.0;
    return words[(size_t)(pow(u, 2.5) * NWORDS) % NWORDS];
}

struct hash { char b[COMMAND_HASH_LEN]; };

/* The database's path: checkpoints run on it as the node runs them. */
static char db_path[512];

static void apply_posts(struct store *st, raft_index *idx, uint64_t *t, long n, const struct hash *sess)
{
    enum { BATCH = 64 };
    static uint8_t bufs[BATCH][2048];
    struct raft_entry e[BATCH];
    struct store_result res[BATCH];
    long done = 0;
    int batches = 0;
    while (done < n) {
        int k = 0;
        for (; k < BATCH && done < n; k++, done++) {
            char title[200], url[128], text[400];
            int o = 0;
            for (int w = 0; w < 6; w++)
                o += snprintf(title + o, sizeof title - (size_t)o, "%s%s", w ? " " : "", word());
            snprintf(url, sizeof url, "//site%ld.example.com/p/%ld", (long)(next_rand() % 5000), (long)(*idx + 1));
            o = 0;
            if (done % 4 == 0)
                for (int w = 0; w < 40; w++)
                    o += snprintf(text + o, sizeof text - (size_t)o, "%s%s", w ? " " : "", word());
            text[o] = 0;
            char full[160];
            snprintf(full, sizeof full, "https:%s", url);
            struct command c = { .type = CMD_LINK_POST_TEXT, .flags = COMMAND_FLAG_NO_RATE_LIMIT, .time_ms = (*t)++,
                                 .session = { sess->b, COMMAND_HASH_LEN },
                                 .title = { title, (uint16_t)strlen(title) },
                                 .url = { full, (uint16_t)strlen(full) }, .url_norm = { url, (uint16_t)strlen(url) },
                                 .text = { text, (uint16_t)strlen(text) } };
            long len = command_encode(&c, bufs[k], sizeof bufs[k]);
            if (len < 0)
                abort();
            e[k] = (struct raft_entry){ .term = 1, .index = ++*idx, .type = RAFT_ENTRY_COMMAND, .len = (uint32_t)len,
                                        .data = bufs[k] };
        }
        if (store_apply(st, e, (size_t)k, res) != STORE_OK) {
            fprintf(stderr, "apply: %s\n", store_errmsg(st));
            exit(1);
        }
        if (++batches % 8 == 0 && store_commit(st) != STORE_OK) {
            fprintf(stderr, "commit: %s\n", store_errmsg(st));
            exit(1);
        }
        /* As the node does past 1000 WAL pages (node.c), on this thread. */
        char err[600];
        if (store_wal_pages(st) >= 1000 && store_checkpoint(db_path, false, err, sizeof err) != STORE_OK) {
            fprintf(stderr, "%s\n", err);
            exit(1);
        }
    }
    store_commit(st);
}

static struct store *fresh(const char *dir, const char *name, raft_index *idx, uint64_t *t, struct hash *sess)
{
    char path[512], err[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(db_path, sizeof db_path, "%s", path);
    remove(path);
    snprintf(err, sizeof err, "%s-wal", path);
    remove(err);
    struct store *st;
    if (store_open(path, &st, err, sizeof err) != STORE_OK) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    for (int i = 0; i < COMMAND_HASH_LEN; i++)
        sess->b[i] = (char)(7 * i + 1);
    *t = 1760000000000ull;
    *idx = 0;
    struct command c = { .type = CMD_SIGNUP, .time_ms = *t, .name = { "bench", 5 }, .lname = { "bench", 5 },
                         .pwhash = { "x", 1 }, .session = { sess->b, COMMAND_HASH_LEN } };
    uint8_t buf[256];
    long len = command_encode(&c, buf, sizeof buf);
    struct raft_entry e = { .term = 1, .index = ++*idx, .type = RAFT_ENTRY_COMMAND, .len = (uint32_t)len, .data = buf };
    store_apply(st, &e, 1, NULL);
    store_commit(st);
    return st;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, double *lat, int n, double total)
{
    qsort(lat, (size_t)n, sizeof *lat, cmp_d);
    printf("%-38s p50 %7.3f ms  p99 %7.3f ms  %8.0f queries/s\n", what, lat[n / 2] * 1e3, lat[n * 99 / 100] * 1e3,
           n / total);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: search_store DIR [N_APPLY [M_SEARCH]]\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *dir = argv[1];
    long n_apply = argc > 2 ? atol(argv[2]) : 100000, m_search = argc > 3 ? atol(argv[3]) : 1000000;
    raft_index idx;
    uint64_t t;
    struct hash sess;

    /* Apply with and without the index, twice each, alternating. */
    double with[2], without[2];
    for (int round = 0; round < 2; round++) {
        for (int fts = 1; fts >= 0; fts--) {
            struct store *st = fresh(dir, "apply.db", &idx, &t, &sess);
            if (!fts && sqlite3_exec(store_db(st), "DROP TRIGGER link_fts_insert; DROP TRIGGER link_fts_update;", NULL,
                                     NULL, NULL) != SQLITE_OK)
                return 1;
            rng = 88172645463325252ull;
            double t0 = now_s();
            apply_posts(st, &idx, &t, n_apply, &sess);
            double dt = now_s() - t0;
            (fts ? with : without)[round] = dt;
            store_close(st);
        }
    }
    double w = with[0] < with[1] ? with[0] : with[1], wo = without[0] < without[1] ? without[0] : without[1];
    printf("apply %ld posts: with the index %.2f s (%.0f/s), without %.2f s (%.0f/s): the index costs %.0f%% of "
           "write throughput (best of 2 each)\n",
           n_apply, w, n_apply / w, wo, n_apply / wo, 100.0 * (1.0 - wo / w));

    /* Search on M links. */
    double t0 = now_s();
    struct store *st = fresh(dir, "search.db", &idx, &t, &sess);
    apply_posts(st, &idx, &t, m_search, &sess);
    printf("built %ld links in %.1f s\n", m_search, now_s() - t0);
    enum { Q = 2000 };
    static double lat[Q];
    static char qs[Q][64];
    for (int i = 0; i < Q; i++) {
        int k = 1 + (int)(next_rand() % 2);
        int o = 0;
        for (int j = 0; j < k; j++)
            o += snprintf(qs[i] + o, sizeof qs[i] - (size_t)o, "%s%s", j ? " " : "", words[next_rand() % NWORDS]);
    }
    struct store_link *links = malloc(30 * sizeof *links);
    size_t n;
    int64_t total;
    double all = now_s();
    for (int i = 0; i < Q; i++) {
        double a = now_s();
        if (store_search(st, qs[i], strlen(qs[i]), 30, 0, links, &n, &total) != STORE_OK)
            return 1;
        lat[i] = now_s() - a;
    }
    report("store_search (count + page of 30 links)", lat, Q, now_s() - all);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(store_db(st), "SELECT rowid FROM link_fts WHERE link_fts MATCH ?1"
                                         " ORDER BY bm25(link_fts, 10.0, 1.0, 4.0) LIMIT 30", -1, &s, NULL) != SQLITE_OK)
        return 1;
    all = now_s();
    for (int i = 0; i < Q; i++) {
        char q[STORE_SEARCH_QUERY_CAP];
        store_search_query(qs[i], strlen(qs[i]), q, sizeof q);
        double a = now_s();
        sqlite3_bind_text(s, 1, q, -1, SQLITE_STATIC);
        while (sqlite3_step(s) == SQLITE_ROW)
            ;
        sqlite3_reset(s);
        lat[i] = now_s() - a;
    }
    report("bare FTS5 (best 30 rowids)", lat, Q, now_s() - all);
    sqlite3_finalize(s);
    free(links);
    store_close(st);
    return 0;
}
