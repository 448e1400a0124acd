/*
 * search_db.c — the data of `make bench`'s search part (bench/run.py,
 * BENCH_ONLY=search) and its anchor:
 *
 *   search_db build DIR N
 *       a node data directory for a one-node cluster (node 1) whose state is
 *       N links posted by 1000 users, applied in process through the store's
 *       apply (store_apply, as a node applies its log), then kept as the
 *       directory's snapshot (the store's own snapshot, installed with the
 *       storage's install as a leader's would be): `linkraft node` restores
 *       it at its first start. Also DIR/queries.txt, the query mix (below).
 *       Built once and cached under build/ by run.py; a run copies it.
 *
 *   search_db bare DB QUERIES SECONDS [plain|same]
 *       bare FTS5 on the same database: the same queries, quoted as the
 *       store quotes them (store_search_query), one thread, back to back
 *       for SECONDS: p50, p99, queries/s. plain: the best 30 rowids by the
 *       same bm25 over every match; same: the store's plan (the count, the
 *       newest STORE_SEARCH_RANK_WINDOW matches, the best 30 of them). What
 *       a small C program gets from SQLite alone; the node adds the rows,
 *       JSON and HTTP.
 *
 *   search_db identity DIR
 *       writes DIR/identity (build does).
 *
 *   search_db cluster CLUSTER_FILE N DIR...
 *       for tests of processes (tests/cluster/test_search_load.py): N links
 *       inserted by SQL in seconds, installed as the snapshot of each DIR,
 *       node i of CLUSTER_FILE for the i-th DIR.
 *
 * The text is made to look like link titles: a vocabulary of 30,000 words
 * used with a Zipf law (s = 1), the first 40 being the stop words of
 * English titles ("the", "of", "how"...), titles of 4 to 11 words, one link
 * in eight a text post with 30 words of text, 3,000 domains (Zipf, one link
 * in five on a subdomain). The query mix: 35% one common word (ranks
 * 40-300), 25% one rare word (rank 5,000 and up), 25% two words taken from
 * one title, 15% a domain ("github.com").
 *
 * Build: see bench/run.py (bench_search).
 */
#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "sys/cluster_file.h"
#include "command.h"
#include "node/identity.h"
#include "storage.h"
#include "store.h"
#include "store/discussion.h" /* store_link_domain */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static double uniform(void) { return (double)(next_rand() >> 11) / 9007199254740992.0; }

/* ---- Vocabulary and domains ------------------------------------------------------ */

#define NVOCAB 30000
#define NSTOP 40
#define NDOMAINS 3000
static const char *const stop[NSTOP] = {
    "the", "a", "of", "to", "in", "and", "for", "is", "on", "with", "how", "why", "what", "from", "your", "an",
    "at", "by", "you", "we", "it", "are", "new", "my", "this", "that", "can", "not", "be", "as", "about", "do",
    "i", "or", "our", "now", "more", "than", "into", "all",
};
static const char *const known_domains[] = {
    "github.com", "medium.com", "nytimes.com", "youtube.com", "arxiv.org", "wikipedia.org", "bbc.co.uk",
    "theguardian.com", "arstechnica.com", "substack.com", "lwn.net", "blog.cloudflare.com", "nature.com",
    "quantamagazine.org", "theverge.com", "wired.com", "economist.com", "bloomberg.com", "reuters.com",
    "sqlite.org", "rust-lang.org", "go.dev", "python.org", "kernel.org", "acm.org",
};
static char *vocab[NVOCAB];
static char *domains[NDOMAINS];
static double *zipf_vocab, *zipf_domains;

/* A pronounceable word from syllables, 2 to 4 of them. */
static char *make_word(void)
{
    static const char *const on[] = { "b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v",
                                      "z", "st", "tr", "pl", "gr", "ch", "sh", "br", "cl" };
    static const char *const nu[] = { "a", "e", "i", "o", "u", "ai", "ou", "ea", "io" };
    static const char *const co[] = { "", "", "n", "r", "s", "t", "l", "x", "ck", "nd" };
    char w[48];
    int o = 0, syl = 2 + (int)(next_rand() % 3);
    for (int i = 0; i < syl; i++)
        o += snprintf(w + o, sizeof w - (size_t)o, "%s%s%s", on[next_rand() % 24], nu[next_rand() % 9],
                      co[next_rand() % 10]);
    return strdup(w);
}

static double *zipf_table(size_t n, double s)
{
    double *c = malloc(n * sizeof *c), sum = 0;
    for (size_t i = 0; i < n; i++)
        c[i] = (sum += 1.0 / pow((double)(i + 1), s));
    for (size_t i = 0; i < n; i++)
        c[i] /= sum;
    return c;
}

static size_t zipf_pick(const double *c, size_t n)
{
    double u = uniform();
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void make_vocabulary(void)
{
    for (size_t i = 0; i < NVOCAB; i++)
        vocab[i] = i < NSTOP ? strdup(stop[i]) : make_word();
    static const char *const tld[] = { "com", "org", "net", "io", "dev", "co.uk" };
    size_t nk = sizeof known_domains / sizeof known_domains[0];
    for (size_t i = 0; i < NDOMAINS; i++) {
        if (i < nk) {
            domains[i] = strdup(known_domains[i]);
        } else {
            char d[96];
            char *w = make_word();
            snprintf(d, sizeof d, "%s.%s", w, tld[next_rand() % 6]);
            free(w);
            domains[i] = strdup(d);
        }
    }
    zipf_vocab = zipf_table(NVOCAB, 1.0);
    zipf_domains = zipf_table(NDOMAINS, 1.1);
}

static void title_of(char *out, size_t cap)
{
    int n = 4 + (int)(next_rand() % 8), o = 0;
    for (int i = 0; i < n && (size_t)o < cap - 40; i++)
        o += snprintf(out + o, cap - (size_t)o, "%s%s", i ? " " : "", vocab[zipf_pick(zipf_vocab, NVOCAB)]);
    if (next_rand() % 3 == 0) /* titles start with a capital, often */
        out[0] = (char)(out[0] >= 'a' && out[0] <= 'z' ? out[0] - 32 : out[0]);
}

/* ---- build ------------------------------------------------------------------------ */

struct hash { char b[COMMAND_HASH_LEN]; };
#define NUSERS 1000

static int apply_one(struct store *st, raft_index idx, const struct command *c)
{
    static uint8_t buf[4096];
    long len = command_encode(c, buf, sizeof buf);
    if (len < 0)
        return -1;
    struct store_entry e = { .index = idx, .command = true, .data = buf, .len = (size_t)len };
    return store_apply(st, &e, 1, NULL) == STORE_OK ? 0 : -1;
}

static int fail(const char *what, const char *msg)
{
    fprintf(stderr, "search_db: %s: %s\n", what, msg);
    return 1;
}

/* Who the directory is (SPEC "Identity"): a node refuses a directory with
 * a log and no identity. Made for a one-node cluster. */
static int write_identity(const char *dir)
{
    char path[1100], err[1024];
    snprintf(path, sizeof path, "%s/cluster.tmp", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return fail(path, "cannot write");
    fprintf(f, "1 127.0.0.1:7001 127.0.0.1:8001\n");
    fclose(f);
    static struct cluster cl;
    static struct identity ident;
    if (cluster_load(path, &cl, err, sizeof err))
        return fail(path, err);
    remove(path);
    identity_new(&ident, &cl, NULL, 0, false);
    if (identity_save(dir, &ident, err, sizeof err))
        return fail("identity", err);
    return 0;
}

static int build(const char *dir, long n)
{
    char path[1024], err[1024];
    if (mkdir(dir, 0755) && errno != EEXIST)
        return fail(dir, "cannot create");
    snprintf(path, sizeof path, "%s/build.db", dir);
    remove(path);
    struct store *st;
    if (store_open(path, &st, err, sizeof err) != STORE_OK)
        return fail(path, err);
    /* The index is filled at the end in one pass ('rebuild'), not row by
     * row: the same index, built in a fraction of the time. Its triggers
     * are put back as they were. */
    sqlite3 *db = store_db(st);
    char *trig[4] = { 0 };
    int ntrig = 0;
    sqlite3_stmt *s;
    sqlite3_prepare_v2(db, "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'links'", -1, &s,
                       NULL);
    while (sqlite3_step(s) == SQLITE_ROW && ntrig < 4)
        trig[ntrig++] = strdup((const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'links'", -1, &s,
                       NULL);
    char drops[1024] = "";
    while (sqlite3_step(s) == SQLITE_ROW) {
        size_t o = strlen(drops);
        snprintf(drops + o, sizeof drops - o, "DROP TRIGGER %s;", sqlite3_column_text(s, 0));
    }
    sqlite3_finalize(s);

    raft_index idx = 0;
    uint64_t t = 1760000000000ull;
    static struct hash sess[NUSERS];
    for (int u = 0; u < NUSERS; u++) {
        char name[16];
        snprintf(name, sizeof name, "user%d", u);
        for (int i = 0; i < COMMAND_HASH_LEN; i++)
            sess[u].b[i] = (char)(u * 31 + i * 7 + 1);
        struct command c = { .type = CMD_SIGNUP, .time_ms = t, .name = { name, (uint16_t)strlen(name) },
                             .lname = { name, (uint16_t)strlen(name) }, .pwhash = { "x", 1 },
                             .session = { sess[u].b, COMMAND_HASH_LEN } };
        if (apply_one(st, ++idx, &c))
            return fail("sign-up", store_errmsg(st));
    }
    if (store_commit(st) || sqlite3_exec(db, drops, NULL, NULL, NULL) != SQLITE_OK)
        return fail("triggers", sqlite3_errmsg(db));
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        char title[200], url[272], norm[256], text[600] = "";
        title_of(title, sizeof title);
        const char *d = domains[zipf_pick(zipf_domains, NDOMAINS)];
        bool sub = next_rand() % 5 == 0;
        snprintf(norm, sizeof norm, "//%s%s/%s/%ld", sub ? "blog." : "", d, vocab[next_rand() % NVOCAB], i);
        snprintf(url, sizeof url, "https:%s", norm);
        if (i % 8 == 0) {
            int o = 0;
            for (int w = 0; w < 30; w++)
                o += snprintf(text + o, sizeof text - (size_t)o, "%s%s", w ? " " : "",
                              vocab[zipf_pick(zipf_vocab, NVOCAB)]);
        }
        struct command c = { .type = text[0] ? CMD_LINK_POST_TEXT : CMD_LINK_POST,
                             .flags = COMMAND_FLAG_NO_RATE_LIMIT, .time_ms = t + (uint64_t)i * 1000,
                             .session = { sess[i % NUSERS].b, COMMAND_HASH_LEN },
                             .title = { title, (uint16_t)strlen(title) }, .url = { url, (uint16_t)strlen(url) },
                             .url_norm = { norm, (uint16_t)strlen(norm) },
                             .text = { text, (uint16_t)strlen(text) } };
        if (apply_one(st, ++idx, &c))
            return fail("post", store_errmsg(st));
        if (i % 20000 == 19999) {
            if (store_commit(st) != STORE_OK || store_checkpoint(path, false, err, sizeof err) != STORE_OK)
                return fail("commit", store_errmsg(st));
            if (i % 100000 == 99999)
                fprintf(stderr, "search_db: %ld links (%.0f/s)\n", i + 1, (double)(i + 1) / (now_s() - t0));
        }
    }
    if (store_commit(st) != STORE_OK)
        return fail("commit", store_errmsg(st));
    double t1 = now_s();
    if (sqlite3_exec(db, "BEGIN; INSERT INTO link_fts(link_fts) VALUES('rebuild'); COMMIT;", NULL, NULL, NULL) !=
        SQLITE_OK)
        return fail("rebuild", sqlite3_errmsg(db));
    for (int i = 0; i < ntrig; i++)
        if (sqlite3_exec(db, trig[i], NULL, NULL, NULL) != SQLITE_OK)
            return fail("trigger", sqlite3_errmsg(db));
    fprintf(stderr, "search_db: %ld links applied in %.1f s, index built in %.1f s\n", n, t1 - t0, now_s() - t1);
    store_close(st);

    /* The database as the snapshot of a one-node cluster at its index. */
    struct storage *sg;
    struct storage_state state;
    if (storage_open(dir, NULL, NULL, &sg, &state, err, sizeof err))
        return fail(dir, err);
    storage_state_free(&state);
    char snap[1100];
    snprintf(snap, sizeof snap, "%s/snap.tmp.db", dir);
    uint64_t sidx = 0;
    if (store_snapshot(path, snap, &sidx, err, sizeof err) != STORE_OK)
        return fail("snapshot", err);
    struct raft_snapshot_meta meta = { .index = sidx, .term = 1, .config = { .n = 1 } };
    meta.config.members[0] = (struct raft_member){ .id = 1, .role = RAFT_VOTER };
    if (storage_file_crc(snap, &meta.size, &meta.crc, err, sizeof err))
        return fail("crc", err);
    FILE *f = fopen(snap, "rb");
    static uint8_t chunk[1 << 20];
    uint64_t off = 0;
    size_t got;
    while (f && (got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        struct raft_snapshot_chunk ch = { .meta = meta, .offset = off, .len = (uint32_t)got, .data = chunk };
        if (storage_snapshot_write_chunk(sg, &ch))
            return fail("chunk", "cannot write");
        off += got;
    }
    if (!f)
        return fail(snap, "cannot read");
    fclose(f);
    struct raft_hard_state hs = { .term = 1, .vote = 0 };
    if (storage_snapshot_install(sg, &meta) || storage_set_hard_state(sg, &hs) || storage_sync(sg))
        return fail("install", "cannot install the snapshot");
    storage_close(sg);
    remove(snap);
    if (write_identity(dir))
        return 1;
    remove(path);
    char side[1100];
    snprintf(side, sizeof side, "%s-wal", path);
    remove(side);
    snprintf(side, sizeof side, "%s-shm", path);
    remove(side);

    /* The query mix. */
    snprintf(path, sizeof path, "%s/queries.txt", dir);
    f = fopen(path, "w");
    if (!f)
        return fail(path, "cannot write");
    rng = 12345;
    for (int i = 0; i < 2000; i++) {
        unsigned k = (unsigned)(next_rand() % 100);
        if (k < 35) {
            fprintf(f, "%s\n", vocab[40 + next_rand() % 260]);
        } else if (k < 60) {
            fprintf(f, "%s\n", vocab[5000 + next_rand() % (NVOCAB - 5000)]);
        } else if (k < 85) {
            /* two content words of one title, as someone remembering it */
            const char *a, *b;
            size_t ra;
            do
                ra = zipf_pick(zipf_vocab, NVOCAB);
            while (ra < NSTOP);
            a = vocab[ra];
            size_t rb;
            do
                rb = zipf_pick(zipf_vocab, NVOCAB);
            while (rb < NSTOP || rb == ra);
            b = vocab[rb];
            fprintf(f, "%s %s\n", a, b);
        } else {
            fprintf(f, "%s\n", domains[zipf_pick(zipf_domains, NDOMAINS)]);
        }
    }
    fclose(f);
    printf("%llu\n", (unsigned long long)sidx);
    return 0;
}

/* ---- bare ------------------------------------------------------------------------- */

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* plan "plain": the best 30 rowids by bm25 over every match, what FTS5 is
 * asked plainly. plan "same": store_search's plan without the rows, JSON
 * or HTTP: the walk over the matches newest first (counting them up to
 * STORE_SEARCH_COUNT_CAP, noting the oldest of the STORE_SEARCH_RANK_WINDOW
 * newest on the way), the best 30 rowids by bm25 among those. */
static int bare(const char *dbpath, const char *qpath, double seconds, bool same)
{
    FILE *f = fopen(qpath, "r");
    if (!f)
        return fail(qpath, "cannot read");
    static char qs[4096][STORE_SEARCH_QUERY_CAP];
    int nq = 0;
    char line[512];
    while (nq < 4096 && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        store_search_query(line, strlen(line), qs[nq++], STORE_SEARCH_QUERY_CAP);
    }
    fclose(f);
    sqlite3 *db;
    if (sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        return fail(dbpath, sqlite3_errmsg(db));
    sqlite3_stmt *s, *walk;
    if (sqlite3_prepare_v2(db, "SELECT rowid FROM link_fts WHERE link_fts MATCH ?1 AND rowid >= ?2"
                               " ORDER BY bm25(link_fts, 10.0, 1.0, 4.0) LIMIT 30", -1, &s, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT rowid FROM link_fts WHERE link_fts MATCH ?1 ORDER BY rowid DESC", -1, &walk,
                           NULL) != SQLITE_OK)
        return fail("prepare", sqlite3_errmsg(db));
    size_t cap = 1 << 20, n = 0;
    double *lat = malloc(cap * sizeof *lat);
    double start = now_s(), end = start + seconds;
    for (int i = 0; now_s() < end && n < cap; i = (i + 1) % nq) {
        double a = now_s();
        int64_t from = 0;
        if (same) {
            int64_t count = 0;
            sqlite3_bind_text(walk, 1, qs[i], -1, SQLITE_STATIC);
            while (count < STORE_SEARCH_COUNT_CAP && sqlite3_step(walk) == SQLITE_ROW)
                if (++count == STORE_SEARCH_RANK_WINDOW)
                    from = sqlite3_column_int64(walk, 0);
            sqlite3_reset(walk);
        }
        sqlite3_bind_text(s, 1, qs[i], -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, from);
        while (sqlite3_step(s) == SQLITE_ROW)
            ;
        sqlite3_reset(s);
        lat[n++] = now_s() - a;
    }
    double total = now_s() - start;
    qsort(lat, n, sizeof *lat, cmp_d);
    printf("{\"queries\":%zu,\"seconds\":%.3f,\"qps\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f}\n", n, total,
           (double)n / total, lat[n / 2] * 1e3, lat[n * 99 / 100] * 1e3);
    sqlite3_finalize(s);
    sqlite3_finalize(walk);
    sqlite3_close(db);
    return 0;
}

/* ---- cluster: a database for the tests, loaded fast --------------------------------- */

/* Installs the database at db (index sidx) as the snapshot of the node
 * data directory dir, for a node of the cluster cl (every member a
 * voter), with its identity: the node restores it at its first start. */
static int install_for(const char *db, uint64_t sidx, const struct cluster *cl, const char *dir)
{
    char err[1024];
    if (mkdir(dir, 0755) && errno != EEXIST)
        return fail(dir, "cannot create");
    struct storage *sg;
    struct storage_state state;
    if (storage_open(dir, NULL, NULL, &sg, &state, err, sizeof err))
        return fail(dir, err);
    storage_state_free(&state);
    struct raft_snapshot_meta meta = { .index = sidx, .term = 1, .config = { .n = (uint32_t)cl->n } };
    for (size_t i = 0; i < cl->n; i++)
        meta.config.members[i] = (struct raft_member){ .id = cl->members[i].id, .role = RAFT_VOTER };
    if (storage_file_crc(db, &meta.size, &meta.crc, err, sizeof err))
        return fail("crc", err);
    FILE *f = fopen(db, "rb");
    static uint8_t chunk[1 << 20];
    uint64_t off = 0;
    size_t got;
    while (f && (got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        struct raft_snapshot_chunk ch = { .meta = meta, .offset = off, .len = (uint32_t)got, .data = chunk };
        if (storage_snapshot_write_chunk(sg, &ch))
            return fail("chunk", "cannot write");
        off += got;
    }
    if (!f)
        return fail(db, "cannot read");
    fclose(f);
    struct raft_hard_state hs = { .term = 1, .vote = 0 };
    if (storage_snapshot_install(sg, &meta) || storage_set_hard_state(sg, &hs) || storage_sync(sg))
        return fail("install", "cannot install the snapshot");
    storage_close(sg);
    static struct identity ident;
    identity_new(&ident, cl, NULL, 0, false); /* the cluster id is derived from the members: the same for all */
    if (identity_save(dir, &ident, err, sizeof err))
        return fail("identity", err);
    return 0;
}

/* search_db cluster CLUSTER_FILE N DIR...: N links (the vocabulary and
 * titles of build) for a test of processes, in seconds rather than
 * minutes: 100 users signed up through apply, the links inserted by SQL
 * in one transaction (not through apply: no idempotency rows, no rate
 * events; the rows are what apply writes), the index built in one pass;
 * then installed as the snapshot of each DIR, node i of CLUSTER_FILE for
 * the i-th DIR (no secret). */
static int test_cluster(const char *cfile, long n, char **dirs, int ndirs)
{
    char path[1100], err[1024];
    static struct cluster cl;
    if (cluster_load(cfile, &cl, err, sizeof err))
        return fail(cfile, err);
    if ((size_t)ndirs > cl.n)
        return fail(cfile, "fewer members than directories");
    snprintf(path, sizeof path, "%s.build.db", dirs[0]);
    remove(path);
    struct store *st;
    if (store_open(path, &st, err, sizeof err) != STORE_OK)
        return fail(path, err);
    raft_index idx = 0;
    uint64_t t = 1760000000000ull;
    enum { USERS = 100 };
    static struct hash sess[USERS];
    for (int u = 0; u < USERS; u++) {
        char name[16];
        snprintf(name, sizeof name, "user%d", u);
        for (int i = 0; i < COMMAND_HASH_LEN; i++)
            sess[u].b[i] = (char)(u * 31 + i * 7 + 1);
        struct command c = { .type = CMD_SIGNUP, .time_ms = t, .name = { name, (uint16_t)strlen(name) },
                             .lname = { name, (uint16_t)strlen(name) }, .pwhash = { "x", 1 },
                             .session = { sess[u].b, COMMAND_HASH_LEN } };
        if (apply_one(st, ++idx, &c))
            return fail("sign-up", store_errmsg(st));
    }
    if (store_commit(st) != STORE_OK)
        return fail("commit", store_errmsg(st));
    sqlite3 *db = store_db(st);
    sqlite3_stmt *s;
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT INTO links(author_id, title, url, url_norm, created, likes, hot, domain, rdomain)"
                               " VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?8)", -1, &s, NULL) != SQLITE_OK)
        return fail("insert", sqlite3_errmsg(db));
    for (long i = 0; i < n; i++) {
        char title[200], url[272], norm[256], dom[STORE_DOMAIN_CAP], rdom[STORE_DOMAIN_CAP];
        title_of(title, sizeof title);
        const char *d = domains[zipf_pick(zipf_domains, NDOMAINS)];
        snprintf(norm, sizeof norm, "//%s/%s/%ld", d, vocab[next_rand() % NVOCAB], i);
        snprintf(url, sizeof url, "https:%s", norm);
        store_link_domain(norm, strlen(norm), dom, rdom, sizeof dom);
        uint64_t when = t + (uint64_t)i * 1000;
        sqlite3_bind_int64(s, 1, 1 + (int64_t)(i % USERS));
        sqlite3_bind_text(s, 2, title, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, url, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, norm, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 5, (int64_t)when);
        sqlite3_bind_double(s, 6, store_hot_score(0, when));
        sqlite3_bind_text(s, 7, dom, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 8, rdom, -1, SQLITE_STATIC);
        if (sqlite3_step(s) != SQLITE_DONE)
            return fail("insert", sqlite3_errmsg(db));
        sqlite3_reset(s);
    }
    sqlite3_finalize(s);
    if (sqlite3_exec(db, "INSERT INTO link_fts(link_fts) VALUES('rebuild'); COMMIT;", NULL, NULL, NULL) != SQLITE_OK)
        return fail("index", sqlite3_errmsg(db));
    store_close(st);
    char snap[1100];
    snprintf(snap, sizeof snap, "%s.snap.db", dirs[0]);
    uint64_t sidx = 0;
    if (store_snapshot(path, snap, &sidx, err, sizeof err) != STORE_OK)
        return fail("snapshot", err);
    for (int i = 0; i < ndirs; i++)
        if (install_for(snap, sidx, &cl, dirs[i]))
            return 1;
    const char *side[] = { "", "-wal", "-shm" };
    for (int i = 0; i < 3; i++) {
        char p[1200];
        snprintf(p, sizeof p, "%s%s", path, side[i]);
        remove(p);
    }
    remove(snap);
    printf("%llu\n", (unsigned long long)sidx);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 4 && !strcmp(argv[1], "build")) {
        make_vocabulary();
        return build(argv[2], atol(argv[3]));
    }
    if (argc == 3 && !strcmp(argv[1], "identity"))
        return write_identity(argv[2]);
    if (argc >= 5 && !strcmp(argv[1], "cluster")) {
        make_vocabulary();
        return test_cluster(argv[2], atol(argv[3]), argv + 4, argc - 4);
    }
    if ((argc == 5 || argc == 6) && !strcmp(argv[1], "bare"))
        return bare(argv[2], argv[3], atof(argv[4]), argc == 6 && !strcmp(argv[5], "same"));
    fprintf(stderr, "usage: search_db build DIR N | search_db identity DIR |\n"
                    "       search_db bare DB QUERIES SECONDS [plain|same] |\n"
                    "       search_db cluster CLUSTER_FILE N DIR...\n");
    return 2;
}
