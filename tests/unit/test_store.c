/*
 * test_store.c — the SQLite state machine: batched apply with the applied
 * index in the same transaction, replay after restart, idempotency by log
 * time, determinism across replicas, snapshot and restore, bad commands.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "../harness.h"
#include "command.h"
#include "store.h"

static char dir[64];

static void path_in(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", dir, name);
}

static struct command_str S(const char *s) { return (struct command_str){ s, (uint16_t)strlen(s) }; }

/* Builds a COMMAND entry (data malloc'd; freed by free_entry). */
static struct store_entry kv_entry(uint64_t index, int del, const char *key, const char *value,
                                  uint64_t time_ms, const char *idem)
{
    struct command c = { .type = del ? CMD_KV_DELETE : CMD_KV_PUT, .time_ms = time_ms,
                         .scope = S("u1"), .idem_key = S(idem ? idem : ""), .key = S(key),
                         .value = S(value ? value : "") };
    size_t n = command_size(&c);
    uint8_t *buf = malloc(n);
    long len = command_encode(&c, buf, n);
    return (struct store_entry){ .index = index, .command = true,
                                .len = (size_t)len, .data = buf };
}

static char *get(struct store *st, const char *key)
{
    char *v = NULL;
    size_t n;
    return store_kv_get(st, key, strlen(key), &v, &n) == 1 ? v : NULL;
}

static int value_is(struct store *st, const char *key, const char *want)
{
    char *v = get(st, key);
    int ok = want ? v && strcmp(v, want) == 0 : v == NULL;
    free(v);
    return ok;
}

TEST(command_codec_round_trip_and_rejects)
{
    struct store_entry e = kv_entry(1, 0, "key", "value", 1234, "idem-1");
    struct command c;
    CHECK_EQ_I(command_decode(&c, e.data, e.len), 0);
    CHECK(c.type == CMD_KV_PUT && c.time_ms == 1234);
    CHECK(c.key.len == 3 && memcmp(c.key.p, "key", 3) == 0);
    CHECK(c.idem_key.len == 6);
    for (uint32_t cut = 0; cut < e.len; cut++)
        CHECK_EQ_I(command_decode(&c, e.data, cut), -1); /* every truncation */
    uint8_t *longer = malloc(e.len + 1);
    memcpy(longer, e.data, e.len);
    longer[e.len] = 0;
    CHECK_EQ_I(command_decode(&c, longer, e.len + 1), -1); /* trailing garbage */
    longer[0] = 9;
    CHECK_EQ_I(command_decode(&c, longer, e.len), -1);      /* unknown version */
    free(longer);
    free((void *)e.data);
}

TEST(apply_persists_applied_index_with_changes)
{
    char db[128];
    path_in(db, sizeof db, "a.db");
    struct store *st;
    char err[256];
    REQUIRE(store_open(db, &st, err, sizeof err) == STORE_OK);
    CHECK_EQ_U(store_applied(st), 0);
    struct store_entry es[3] = {
        { .index = 1, .command = false },
        kv_entry(2, 0, "a", "1", 10, NULL),
        kv_entry(3, 0, "b", "2", 11, NULL),
    };
    struct store_result res[3];
    CHECK_EQ_I(store_apply(st, es, 3, res), STORE_OK);
    CHECK_EQ_U(store_applied(st), 3);
    CHECK(value_is(st, "a", "1") && value_is(st, "b", "2"));
    store_close(st);

    /* Reopen: the index came back with the data; replaying is a no-op. */
    REQUIRE(store_open(db, &st, err, sizeof err) == STORE_OK);
    CHECK_EQ_U(store_applied(st), 3);
    struct store_entry again = kv_entry(3, 0, "b", "CHANGED", 11, NULL);
    CHECK_EQ_I(store_apply(st, &again, 1, NULL), STORE_OK);
    CHECK(value_is(st, "b", "2"));
    store_close(st);
    for (int i = 1; i < 3; i++)
        free((void *)es[i].data);
    free((void *)again.data);
}

/* store_apply's changes wait for store_commit; what a crash finds on disk
 * is the last commit, with its applied index, and replaying the log on top
 * gives the same state. */
TEST(uncommitted_applies_are_replayed_after_a_crash)
{
    char db[128];
    path_in(db, sizeof db, "c.db");
    struct store *st;
    char err[256];
    REQUIRE(store_open(db, &st, err, sizeof err) == STORE_OK);
    struct store_entry es[4] = {
        kv_entry(1, 0, "a", "1", 10, NULL),
        kv_entry(2, 0, "b", "2", 11, NULL),
        kv_entry(3, 0, "a", "3", 12, NULL),
        kv_entry(4, 1, "b", "", 13, NULL),
    };
    CHECK_EQ_I(store_apply(st, es, 2, NULL), STORE_OK);
    CHECK_EQ_I(store_commit(st), STORE_OK);
    CHECK_EQ_I(store_apply(st, es + 2, 2, NULL), STORE_OK);
    CHECK_EQ_U(store_applied(st), 4);
    CHECK_EQ_U(store_committed(st), 2);
    CHECK(value_is(st, "a", "3"));
    /* A second connection sees the disk as a crash now would leave it. */
    sqlite3 *other;
    REQUIRE(sqlite3_open_v2(db, &other, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    sqlite3_stmt *q;
    REQUIRE(sqlite3_prepare_v2(other, "SELECT (SELECT v FROM meta WHERE k = 'applied'), (SELECT count(*) FROM kv)",
                               -1, &q, NULL) == SQLITE_OK);
    REQUIRE(sqlite3_step(q) == SQLITE_ROW);
    CHECK_EQ_I(sqlite3_column_int64(q, 0), 2);
    CHECK_EQ_I(sqlite3_column_int64(q, 1), 2); /* b, deleted by entry 4, is still there */
    sqlite3_finalize(q);
    sqlite3_close(other);
    store_close(st); /* commits */
    REQUIRE(store_open(db, &st, err, sizeof err) == STORE_OK);
    CHECK_EQ_U(store_applied(st), 4);
    CHECK_EQ_I(store_apply(st, es, 4, NULL), STORE_OK); /* a replay changes nothing */
    CHECK(value_is(st, "a", "3") && value_is(st, "b", NULL));
    store_close(st);
    for (int i = 0; i < 4; i++)
        free((void *)es[i].data);
}

TEST(malformed_command_is_a_result_not_an_error)
{
    char db[128];
    path_in(db, sizeof db, "m.db");
    struct store *st;
    char err[256];
    REQUIRE(store_open(db, &st, err, sizeof err) == STORE_OK);
    uint8_t junk[5] = { 1, 99, 0, 0, 0 };
    struct store_entry e = { .index = 1, .command = true, .len = 5, .data = junk };
    struct store_result res;
    CHECK_EQ_I(store_apply(st, &e, 1, &res), STORE_OK);
    CHECK_EQ_I(res.status, CMD_ERR_MALFORMED);
    CHECK_EQ_U(store_applied(st), 1); /* the log goes on */
    store_close(st);
}

TEST(idempotency_by_log_time)
{
    char db[128];
    path_in(db, sizeof db, "i.db");
    struct store *st;
    char err[256];
    REQUIRE(store_open(db, &st, err, sizeof err) == STORE_OK);
    struct store_entry del1 = kv_entry(1, 0, "k", "v", 1000, NULL);
    struct store_entry d1 = kv_entry(2, 1, "k", NULL, 2000, "key-1");
    struct store_entry put = kv_entry(3, 0, "k", "v2", 3000, NULL);
    struct store_entry d2 = kv_entry(4, 1, "k", NULL, 4000, "key-1"); /* a retry */
    struct store_result r[4];
    struct store_entry all[4] = { del1, d1, put, d2 };
    CHECK_EQ_I(store_apply(st, all, 4, r), STORE_OK);
    CHECK_EQ_I(r[1].status, CMD_OK);
    CHECK_EQ_I(r[3].status, CMD_OK);  /* same result as the first time ... */
    CHECK(value_is(st, "k", "v2"));   /* ... and the retry changed nothing */
    /* A day later (log time) the key is forgotten: the delete runs again. */
    struct store_entry late = kv_entry(5, 1, "k", NULL, 4000 + 25ull * 3600 * 1000, "key-1");
    CHECK_EQ_I(store_apply(st, &late, 1, r), STORE_OK);
    CHECK(value_is(st, "k", NULL));
    store_close(st);
    free((void *)del1.data); free((void *)d1.data); free((void *)put.data);
    free((void *)d2.data); free((void *)late.data);
}

/* Two replicas fed the same entries in different batch sizes agree on every
 * read; a snapshot restored into a third agrees too. */
TEST(determinism_and_snapshot_restore)
{
    char a[128], b[128], c[128], snap[128];
    path_in(a, sizeof a, "ra.db");
    path_in(b, sizeof b, "rb.db");
    path_in(c, sizeof c, "rc.db");
    path_in(snap, sizeof snap, "snap.db");
    struct store *sa, *sb, *sc;
    char err[256];
    REQUIRE(store_open(a, &sa, err, sizeof err) == STORE_OK);
    REQUIRE(store_open(b, &sb, err, sizeof err) == STORE_OK);
    REQUIRE(store_open(c, &sc, err, sizeof err) == STORE_OK);
    enum { N = 500 };
    struct store_entry *es = calloc(N, sizeof *es);
    unsigned seed = 7;
    for (int i = 0; i < N; i++) {
        char key[16], val[16];
        seed = seed * 1103515245 + 12345;
        snprintf(key, sizeof key, "k%u", (seed >> 8) % 40);
        snprintf(val, sizeof val, "v%d", i);
        es[i] = kv_entry((uint64_t)i + 1, (seed >> 20) % 5 == 0, key, val, 1000 + (uint64_t)i, NULL);
    }
    CHECK_EQ_I(store_apply(sa, es, N, NULL), STORE_OK);
    for (int i = 0; i < N;) {
        int n = 1 + i % 17;
        if (i + n > N)
            n = N - i;
        CHECK_EQ_I(store_apply(sb, es + i, (size_t)n, NULL), STORE_OK);
        i += n;
    }
    uint64_t idx = 0;
    /* Another connection (the snapshot's) sees only what is committed. */
    CHECK_EQ_I(store_snapshot(a, snap, &idx, err, sizeof err), STORE_OK);
    CHECK_EQ_U(idx, 0);
    CHECK_EQ_U(store_committed(sa), 0);
    CHECK_EQ_I(store_commit(sa), STORE_OK);
    CHECK_EQ_U(store_committed(sa), N);
    CHECK_EQ_I(store_snapshot(a, snap, &idx, err, sizeof err), STORE_OK);
    CHECK_EQ_U(idx, N);
    CHECK_EQ_I(store_restore(sc, snap, err, sizeof err), STORE_OK);
    CHECK_EQ_U(store_applied(sc), N);
    for (int k = 0; k < 40; k++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", k);
        char *va = get(sa, key), *vb = get(sb, key), *vc = get(sc, key);
        CHECK((va == NULL) == (vb == NULL) && (va == NULL) == (vc == NULL));
        if (va && vb && vc)
            CHECK(strcmp(va, vb) == 0 && strcmp(va, vc) == 0);
        free(va); free(vb); free(vc);
    }
    store_close(sa); store_close(sb); store_close(sc);
    for (int i = 0; i < N; i++)
        free((void *)es[i].data);
    free(es);
}

/* Every page of a database the store created carries a checksum: a byte
 * flipped anywhere in a page in use is found when the store opens it (a
 * value silently changed, or index entries silently missing, before), and
 * a snapshot copy of a damaged database is refused. */
TEST(a_flipped_byte_in_any_page_is_detected)
{
    char db[128], snap[128];
    path_in(db, sizeof db, "ck.db");
    path_in(snap, sizeof snap, "ck-snap.db");
    struct store *st;
    char err[512];
    /* A copy left by a restore that crashed before its rename goes. */
    char leftover[160];
    snprintf(leftover, sizeof leftover, "%s.restore", db);
    FILE *lf = fopen(leftover, "wb");
    REQUIRE(lf);
    fputs("half a copy", lf);
    fclose(lf);
    CHECK(!store_damage_seen());
    REQUIRE(store_open(db, &st, err, sizeof err) == STORE_OK);
    CHECK(access(leftover, F_OK) != 0);
    enum { N = 400 };
    char val[200];
    memset(val, 'v', sizeof val - 1);
    val[sizeof val - 1] = 0;
    for (int i = 0; i < N; i++) {
        char key[16];
        snprintf(key, sizeof key, "key%d", i);
        struct store_entry e = kv_entry((uint64_t)i + 1, 0, key, val, 1000, NULL);
        CHECK_EQ_I(store_apply(st, &e, 1, NULL), STORE_OK);
        free((void *)e.data);
    }
    CHECK_EQ_I(store_commit(st), STORE_OK);
    store_close(st);
    CHECK_EQ_I(store_checkpoint(db, true, err, sizeof err), STORE_OK); /* all of it in the file */
    FILE *f = fopen(db, "rb");
    REQUIRE(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    uint8_t *orig = malloc((size_t)size);
    fseek(f, 0, SEEK_SET);
    REQUIRE(fread(orig, 1, (size_t)size, f) == (size_t)size);
    fclose(f);
    CHECK(orig[20] == 8); /* 8 reserved bytes per page: the checksum's room */
    int pages = (int)(size / 4096), missed = 0;
    CHECK(pages >= 10);
    for (int pg = 0; pg < pages; pg++) {
        long off = (long)pg * 4096 + 100 + (pg * 37) % 3900;
        orig[off] ^= 0x04;
        f = fopen(db, "wb");
        fwrite(orig, 1, (size_t)size, f);
        fclose(f);
        orig[off] ^= 0x04;
        int rc = store_open(db, &st, err, sizeof err);
        if (rc == STORE_OK) {
            /* Only a page no table or index uses may go unnoticed: then
             * every value still reads back as written. */
            for (int i = 0; i < N; i++) {
                char key[16];
                snprintf(key, sizeof key, "key%d", i);
                if (!value_is(st, key, val)) {
                    missed++;
                    break;
                }
            }
            store_close(st);
        } else if (rc != STORE_ECORRUPT || !strstr(err, "damaged")) {
            fprintf(stderr, "  page %d: rc %d: %s\n", pg, rc, err);
            missed++;
        }
    }
    CHECK_EQ_I(missed, 0);
    CHECK(store_damage_seen()); /* what tells the node to stop serving */
    /* A snapshot is not taken of a damaged database. */
    orig[2 * 4096 + 300] ^= 0x01;
    f = fopen(db, "wb");
    fwrite(orig, 1, (size_t)size, f);
    fclose(f);
    uint64_t idx;
    CHECK_EQ_I(store_snapshot(db, snap, &idx, err, sizeof err), STORE_ECORRUPT);
    free(orig);
}

/* A database written before page checksums existed (no reserved bytes;
 * here with its last transactions still in its WAL) is migrated at open:
 * the same data in a file whose pages carry checksums, so damage in it is
 * found from then on (before: it was opened as it was and never checked). */
TEST(an_older_database_without_checksums_is_migrated)
{
    char db[128], side[160];
    path_in(db, sizeof db, "old.db");
    sqlite3 *raw;
    REQUIRE(sqlite3_open_v2(db, &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) == SQLITE_OK);
    sqlite3_db_config(raw, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    REQUIRE(sqlite3_exec(raw, "PRAGMA journal_mode=WAL;"
                         "CREATE TABLE meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
                         "INSERT INTO meta(k, v) VALUES ('applied', 7), ('schema', 1), ('clock', 0);"
                         "CREATE TABLE kv(k BLOB PRIMARY KEY, v BLOB NOT NULL);", NULL, NULL, NULL) == SQLITE_OK);
    REQUIRE(sqlite3_exec(raw, "PRAGMA wal_checkpoint(TRUNCATE);", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_stmt *ins;
    REQUIRE(sqlite3_prepare_v2(raw, "INSERT INTO kv(k, v) VALUES (?1, ?2)", -1, &ins, NULL) == SQLITE_OK);
    char val[300];
    memset(val, 'o', sizeof val - 1);
    val[sizeof val - 1] = 0;
    for (int i = 0; i < 200; i++) {
        char key[16];
        snprintf(key, sizeof key, "key%d", i);
        sqlite3_bind_blob(ins, 1, key, (int)strlen(key), SQLITE_TRANSIENT);
        sqlite3_bind_blob(ins, 2, val, (int)strlen(val), SQLITE_STATIC);
        REQUIRE(sqlite3_step(ins) == SQLITE_DONE);
        sqlite3_reset(ins);
    }
    sqlite3_finalize(ins);
    sqlite3_close(raw); /* the inserts stay in the WAL */
    snprintf(side, sizeof side, "%s-wal", db);
    CHECK(access(side, F_OK) == 0);
    uint8_t h[21];
    FILE *f = fopen(db, "rb");
    REQUIRE(f && fread(h, 1, sizeof h, f) == sizeof h);
    fclose(f);
    CHECK_EQ_I(h[20], 0);

    struct store *st;
    char err[512];
    REQUIRE(store_open(db, &st, err, sizeof err) == STORE_OK);
    CHECK(store_was_migrated(st));
    CHECK_EQ_U(store_applied(st), 7);
    for (int i = 0; i < 200; i += 13) {
        char key[16];
        snprintf(key, sizeof key, "key%d", i);
        CHECK(value_is(st, key, val));
    }
    store_close(st);
    snprintf(side, sizeof side, "%s.migrate", db);
    CHECK(access(side, F_OK) != 0);
    f = fopen(db, "rb");
    REQUIRE(f && fread(h, 1, sizeof h, f) == sizeof h);
    fclose(f);
    CHECK_EQ_I(h[20], 8); /* room for the checksums */
    /* Opened again: nothing more to migrate. */
    REQUIRE(store_open(db, &st, err, sizeof err) == STORE_OK);
    CHECK(!store_was_migrated(st));
    store_close(st);
    CHECK_EQ_I(store_checkpoint(db, true, err, sizeof err), STORE_OK);
    /* And now a flipped byte in a data page is found. */
    f = fopen(db, "r+b");
    REQUIRE(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    REQUIRE(size > 4 * 4096);
    fseek(f, 3 * 4096 + 500, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 3 * 4096 + 500, SEEK_SET);
    fputc(c ^ 0x08, f);
    fclose(f);
    CHECK_EQ_I(store_open(db, &st, err, sizeof err), STORE_ECORRUPT);
}

/* A copy bigger than SQLite's page cache (about 500 pages) spills pages to
 * the file before page 1, the page that says it has checksums: they must
 * get theirs all the same (before: the copy failed its own check, and the
 * node stopped at its first snapshot of any size). */
TEST(a_snapshot_bigger_than_the_cache_keeps_its_checksums)
{
    char db[128], snap[128], other[128];
    path_in(db, sizeof db, "big.db");
    path_in(snap, sizeof snap, "big-snap.db");
    path_in(other, sizeof other, "big-restored.db");
    struct store *st, *rs;
    char err[512];
    REQUIRE(store_open(db, &st, err, sizeof err) == STORE_OK);
    char val[400];
    memset(val, 'w', sizeof val - 1);
    val[sizeof val - 1] = 0;
    enum { N = 12000 };
    for (int i = 0; i < N; i++) {
        char key[16];
        snprintf(key, sizeof key, "key%05d", i);
        struct store_entry e = kv_entry((uint64_t)i + 1, 0, key, val, 1000, NULL);
        CHECK_EQ_I(store_apply(st, &e, 1, NULL), STORE_OK);
        free((void *)e.data);
    }
    CHECK_EQ_I(store_commit(st), STORE_OK);
    uint64_t idx = 0;
    CHECK_EQ_I(store_snapshot(db, snap, &idx, err, sizeof err), STORE_OK);
    if (idx != N)
        fprintf(stderr, "  %s\n", err);
    CHECK_EQ_U(idx, N);
    REQUIRE(store_open(other, &rs, err, sizeof err) == STORE_OK);
    CHECK_EQ_I(store_restore(rs, snap, err, sizeof err), STORE_OK);
    CHECK_EQ_U(store_applied(rs), N);
    CHECK(value_is(rs, "key00000", val) && value_is(rs, "key11999", val));
    store_close(rs);
    store_close(st);
}

/* Checkpoints keep their connection from one to the next (store.c). After a
 * restore renames another file over the database, a checkpoint must copy
 * the new file's WAL into the new file: the database file alone (no WAL)
 * then holds what was applied after the restore. */
TEST(checkpoints_follow_the_file_a_restore_put_in_place)
{
    char db[128], snap[128], copy[128], err[512];
    path_in(db, sizeof db, "ckr.db");
    path_in(snap, sizeof snap, "ckr-snap.db");
    path_in(copy, sizeof copy, "ckr-copy.db");
    struct store *st;
    REQUIRE(store_open(db, &st, err, sizeof err) == STORE_OK);
    for (int i = 0; i < 10; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        struct store_entry e = kv_entry((uint64_t)i + 1, 0, key, "before", 1000, NULL);
        CHECK_EQ_I(store_apply(st, &e, 1, NULL), STORE_OK);
        free((void *)e.data);
    }
    CHECK_EQ_I(store_commit(st), STORE_OK);
    CHECK_EQ_I(store_checkpoint(db, false, err, sizeof err), STORE_OK);
    uint64_t idx;
    CHECK_EQ_I(store_snapshot(db, snap, &idx, err, sizeof err), STORE_OK);
    CHECK_EQ_I(store_restore(st, snap, err, sizeof err), STORE_OK);
    struct store_entry e = kv_entry(11, 0, "after", "restore", 2000, NULL);
    CHECK_EQ_I(store_apply(st, &e, 1, NULL), STORE_OK);
    free((void *)e.data);
    CHECK_EQ_I(store_commit(st), STORE_OK);
    CHECK_EQ_I(store_checkpoint(db, false, err, sizeof err), STORE_OK);
    /* The file alone, as a copy without its WAL. */
    FILE *in = fopen(db, "rb"), *out = fopen(copy, "wb");
    REQUIRE(in && out);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        fwrite(buf, 1, n, out);
    fclose(in);
    fclose(out);
    struct store *cp;
    REQUIRE(store_open(copy, &cp, err, sizeof err) == STORE_OK);
    CHECK(value_is(cp, "after", "restore"));
    CHECK(value_is(cp, "k3", "before"));
    CHECK_EQ_U(store_applied(cp), 11);
    store_close(cp);
    store_close(st);
}

/* A database of a newer linkraft (schema version above this build's) is
 * refused with a message naming the file and both versions, not read and
 * not taken for damage (which would move it aside and rebuild it). */
TEST(a_newer_schema_is_refused)
{
    char db[128], err[512];
    path_in(db, sizeof db, "newer.db");
    struct store *st;
    REQUIRE(store_open(db, &st, err, sizeof err) == STORE_OK);
    struct store_entry e = kv_entry(1, 0, "a", "1", 10, NULL);
    CHECK_EQ_I(store_apply(st, &e, 1, NULL), STORE_OK);
    CHECK_EQ_I(sqlite3_exec(store_db(st), "UPDATE meta SET v = v + 1 WHERE k = 'schema'", NULL, NULL, NULL),
               SQLITE_OK);
    store_close(st);
    free((void *)e.data);
    st = NULL;
    CHECK_EQ_I(store_open(db, &st, err, sizeof err), STORE_EINVAL);
    CHECK(st == NULL);
    CHECK(strstr(err, "newer.db") && strstr(err, "schema version 7") && strstr(err, "up to version 6"));
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/linkraft-store-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    RUN(command_codec_round_trip_and_rejects);
    RUN(apply_persists_applied_index_with_changes);
    RUN(uncommitted_applies_are_replayed_after_a_crash);
    RUN(malformed_command_is_a_result_not_an_error);
    RUN(idempotency_by_log_time);
    RUN(determinism_and_snapshot_restore);
    RUN(a_flipped_byte_in_any_page_is_detected);
    RUN(an_older_database_without_checksums_is_migrated);
    RUN(a_snapshot_bigger_than_the_cache_keeps_its_checksums);
    RUN(checkpoints_follow_the_file_a_restore_put_in_place);
    RUN(a_newer_schema_is_refused);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return HARNESS_END();
}
