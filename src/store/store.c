/*
 * store.c — the SQLite state machine (see include/store.h): schema, batched
 * apply with the applied index in the same transaction, idempotent commands,
 * snapshot by VACUUM INTO and restore by replacing the file.
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "command.h"

/* How long an idempotency key is remembered, in log time. */
#define IDEM_TTL_MS (24ull * 3600 * 1000)

enum stmt_id {
    S_BEGIN, S_COMMIT, S_ROLLBACK, S_SET_APPLIED,
    S_KV_PUT, S_KV_DELETE, S_KV_GET,
    S_IDEM_GET, S_IDEM_PUT, S_IDEM_EXPIRE,
    S_MEMBER_PUT, S_MEMBER_LIST,
    S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_SET_APPLIED] = "UPDATE meta SET v = ?1 WHERE k = 'applied'",
    [S_KV_PUT] = "INSERT INTO kv(k, v) VALUES (?1, ?2) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
    [S_KV_DELETE] = "DELETE FROM kv WHERE k = ?1",
    [S_KV_GET] = "SELECT v FROM kv WHERE k = ?1",
    [S_IDEM_GET] = "SELECT status, id, count, flag, text FROM idem WHERE scope = ?1 AND key = ?2 AND expires >= ?3",
    [S_IDEM_PUT] = "INSERT OR REPLACE INTO idem(scope, key, status, id, count, flag, text, expires) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [S_IDEM_EXPIRE] = "DELETE FROM idem WHERE expires < ?1",
    [S_MEMBER_PUT] = "INSERT INTO members(id, addrs) VALUES (?1, ?2) ON CONFLICT(id) DO UPDATE SET addrs = excluded.addrs",
    [S_MEMBER_LIST] = "SELECT id, addrs FROM members ORDER BY id",
};

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
    "INSERT OR IGNORE INTO meta(k, v) VALUES ('applied', 0), ('schema', 1);"
    "CREATE TABLE IF NOT EXISTS kv(k BLOB PRIMARY KEY, v BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS idem(scope BLOB NOT NULL, key BLOB NOT NULL, status INTEGER NOT NULL,"
    " id INTEGER NOT NULL, count INTEGER NOT NULL, flag INTEGER NOT NULL, text TEXT NOT NULL,"
    " expires INTEGER NOT NULL, PRIMARY KEY (scope, key)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS idem_expires ON idem(expires);"
    "CREATE TABLE IF NOT EXISTS members(id BLOB PRIMARY KEY, addrs BLOB NOT NULL);";

struct store {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *stmt[S_COUNT];
    raft_index applied;
    char errmsg[512];
};

static void set_err(char *err, size_t cap, const char *fmt, ...)
{
    if (!err || !cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

static int fail_db(struct store *st, const char *what)
{
    snprintf(st->errmsg, sizeof st->errmsg, "%s: %s (database %s)", what,
             st->db ? sqlite3_errmsg(st->db) : "not open", st->path);
    return STORE_EIO;
}

static void close_db(struct store *st)
{
    for (int i = 0; i < S_COUNT; i++) {
        sqlite3_finalize(st->stmt[i]);
        st->stmt[i] = NULL;
    }
    if (st->db)
        sqlite3_close(st->db);
    st->db = NULL;
}

static int open_db(struct store *st)
{
    if (sqlite3_open_v2(st->path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
        return fail_db(st, "cannot open the database");
    sqlite3_busy_timeout(st->db, 5000);
    char *msg = NULL;
    if (sqlite3_exec(st->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(st->db, schema_sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(st->errmsg, sizeof st->errmsg, "cannot set up the database %s: %s", st->path, msg ? msg : "?");
        sqlite3_free(msg);
        return STORE_EIO;
    }
    for (int i = 0; i < S_COUNT; i++)
        if (sqlite3_prepare_v3(st->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st->stmt[i], NULL) != SQLITE_OK)
            return fail_db(st, "cannot prepare a statement");
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(st->db, "SELECT v FROM meta WHERE k = 'applied'", -1, &q, NULL) != SQLITE_OK)
        return fail_db(st, "cannot read the applied index");
    st->applied = sqlite3_step(q) == SQLITE_ROW ? (raft_index)sqlite3_column_int64(q, 0) : 0;
    sqlite3_finalize(q);
    return STORE_OK;
}

int store_open(const char *path, struct store **out, char *err, size_t errcap)
{
    struct store *st = calloc(1, sizeof *st);
    if (!st || !(st->path = strdup(path))) {
        free(st);
        set_err(err, errcap, "out of memory");
        return STORE_ENOMEM;
    }
    int rc = open_db(st);
    if (rc) {
        set_err(err, errcap, "%s", st->errmsg);
        store_close(st);
        return rc;
    }
    *out = st;
    return STORE_OK;
}

void store_close(struct store *st)
{
    if (!st)
        return;
    close_db(st);
    free(st->path);
    free(st);
}

const char *store_errmsg(const struct store *st) { return st->errmsg; }
raft_index store_applied(const struct store *st) { return st->applied; }
struct sqlite3 *store_db(struct store *st) { return st->db; }

static int step_done(struct store *st, sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? STORE_OK : STORE_EIO;
}

static void bind_str(sqlite3_stmt *s, int i, struct command_str v)
{
    sqlite3_bind_blob(s, i, v.p ? v.p : "", v.len, SQLITE_STATIC);
}

/* Executes one decoded command; fills res. STORE_EIO only on SQLite failure. */
static int execute(struct store *st, const struct command *c, struct store_result *res)
{
    sqlite3_stmt *s;
    switch (c->type) {
    case CMD_KV_PUT:
        s = st->stmt[S_KV_PUT];
        bind_str(s, 1, c->key);
        bind_str(s, 2, c->value);
        return step_done(st, s);
    case CMD_MEMBER_ADDR:
        s = st->stmt[S_MEMBER_PUT];
        bind_str(s, 1, c->key);
        bind_str(s, 2, c->value);
        return step_done(st, s);
    case CMD_KV_DELETE:
        s = st->stmt[S_KV_DELETE];
        bind_str(s, 1, c->key);
        if (step_done(st, s))
            return STORE_EIO;
        if (sqlite3_changes(st->db) == 0)
            res->status = CMD_ERR_NOT_FOUND;
        return STORE_OK;
    default:
        res->status = CMD_ERR_MALFORMED;
        return STORE_OK;
    }
}

/* Returns 1 and fills res if (scope, key) already has a live result. */
static int idem_lookup(struct store *st, const struct command *c, struct store_result *res)
{
    sqlite3_stmt *s = st->stmt[S_IDEM_GET];
    bind_str(s, 1, c->scope);
    bind_str(s, 2, c->idem_key);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)c->time_ms);
    int found = 0;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        found = 1;
        res->status = sqlite3_column_int(s, 0);
        res->id = sqlite3_column_int64(s, 1);
        res->count = sqlite3_column_int64(s, 2);
        res->flag = (uint8_t)sqlite3_column_int(s, 3);
        const unsigned char *t = sqlite3_column_text(s, 4);
        snprintf(res->text, sizeof res->text, "%s", t ? (const char *)t : "");
    } else if (rc != SQLITE_DONE) {
        found = -1;
    }
    sqlite3_reset(s);
    return found;
}

static int idem_record(struct store *st, const struct command *c, const struct store_result *res)
{
    sqlite3_stmt *s = st->stmt[S_IDEM_PUT];
    bind_str(s, 1, c->scope);
    bind_str(s, 2, c->idem_key);
    sqlite3_bind_int(s, 3, res->status);
    sqlite3_bind_int64(s, 4, res->id);
    sqlite3_bind_int64(s, 5, res->count);
    sqlite3_bind_int(s, 6, res->flag);
    sqlite3_bind_text(s, 7, res->text, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 8, (sqlite3_int64)(c->time_ms + IDEM_TTL_MS));
    return step_done(st, s);
}

static int apply_one(struct store *st, const struct raft_entry *e, struct store_result *res, uint64_t *last_time)
{
    if (e->type != RAFT_ENTRY_COMMAND)
        return STORE_OK;
    struct command c;
    if (command_decode(&c, e->data, e->len) != 0) {
        res->status = CMD_ERR_MALFORMED;
        return STORE_OK;
    }
    if (c.time_ms > *last_time)
        *last_time = c.time_ms;
    if (c.idem_key.len) {
        int found = idem_lookup(st, &c, res);
        if (found < 0)
            return STORE_EIO;
        if (found)
            return STORE_OK;
    }
    if (execute(st, &c, res))
        return STORE_EIO;
    if (c.idem_key.len && idem_record(st, &c, res))
        return STORE_EIO;
    return STORE_OK;
}

int store_apply(struct store *st, const struct raft_entry *entries, size_t n, struct store_result *results)
{
    if (n == 0)
        return STORE_OK;
    struct store_result scratch;
    raft_index last = st->applied;
    uint64_t last_time = 0;
    if (step_done(st, st->stmt[S_BEGIN]))
        return fail_db(st, "cannot begin a transaction");
    for (size_t i = 0; i < n; i++) {
        struct store_result *res = results ? &results[i] : &scratch;
        memset(res, 0, sizeof *res);
        if (entries[i].index <= last)
            continue; /* already applied before a restart */
        if (apply_one(st, &entries[i], res, &last_time))
            goto fail;
        last = entries[i].index;
    }
    /* Expired keys are dropped by log time; lookups also check expiry, so
     * when this runs (batch boundaries differ per node) changes no result. */
    if (last_time) {
        sqlite3_bind_int64(st->stmt[S_IDEM_EXPIRE], 1, (sqlite3_int64)last_time);
        if (step_done(st, st->stmt[S_IDEM_EXPIRE]))
            goto fail;
    }
    sqlite3_bind_int64(st->stmt[S_SET_APPLIED], 1, (sqlite3_int64)last);
    if (step_done(st, st->stmt[S_SET_APPLIED]) || step_done(st, st->stmt[S_COMMIT]))
        goto fail;
    st->applied = last;
    return STORE_OK;
fail:;
    int full = sqlite3_errcode(st->db) == SQLITE_FULL;
    fail_db(st, "cannot apply committed entries");
    step_done(st, st->stmt[S_ROLLBACK]);
    return full ? STORE_EFULL : STORE_EIO;
}

int store_members(struct store *st, void (*each)(void *arg, const char *id, const char *addrs), void *arg)
{
    sqlite3_stmt *s = st->stmt[S_MEMBER_LIST];
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        char id[32], addrs[600];
        const char *pid = sqlite3_column_blob(s, 0), *paddrs = sqlite3_column_blob(s, 1);
        snprintf(id, sizeof id, "%.*s", sqlite3_column_bytes(s, 0), pid ? pid : "");
        snprintf(addrs, sizeof addrs, "%.*s", sqlite3_column_bytes(s, 1), paddrs ? paddrs : "");
        each(arg, id, addrs);
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? STORE_OK : fail_db(st, "cannot list the members' addresses");
}

int store_kv_get(struct store *st, const char *key, size_t key_len, char **value, size_t *value_len)
{
    sqlite3_stmt *s = st->stmt[S_KV_GET];
    sqlite3_bind_blob(s, 1, key, (int)key_len, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    int found = 0;
    if (rc == SQLITE_ROW) {
        int n = sqlite3_column_bytes(s, 0);
        const void *p = sqlite3_column_blob(s, 0);
        *value = malloc((size_t)n + 1);
        if (!*value) {
            found = STORE_ENOMEM;
        } else {
            if (n)
                memcpy(*value, p, (size_t)n);
            (*value)[n] = 0;
            *value_len = (size_t)n;
            found = 1;
        }
    } else if (rc != SQLITE_DONE) {
        found = fail_db(st, "cannot read a key");
    }
    sqlite3_reset(s);
    return found;
}

int store_snapshot(const char *db_path, const char *out_path, raft_index *index, char *err, size_t errcap)
{
    sqlite3 *db = NULL, *copy = NULL;
    sqlite3_stmt *s = NULL;
    int rc = STORE_EIO;
    unlink(out_path); /* VACUUM INTO refuses an existing file */
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        set_err(err, errcap, "snapshot: cannot open %s: %s", db_path, sqlite3_errmsg(db));
        goto out;
    }
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_prepare_v2(db, "VACUUM INTO ?1", -1, &s, NULL) != SQLITE_OK) {
        set_err(err, errcap, "snapshot: %s", sqlite3_errmsg(db));
        goto out;
    }
    sqlite3_bind_text(s, 1, out_path, -1, SQLITE_STATIC);
    if (sqlite3_step(s) != SQLITE_DONE) {
        set_err(err, errcap, "snapshot: VACUUM INTO %s failed: %s", out_path, sqlite3_errmsg(db));
        goto out;
    }
    sqlite3_finalize(s);
    s = NULL;
    /* The copy records the index of exactly the state it holds. */
    if (sqlite3_open_v2(out_path, &copy, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(copy, "SELECT v FROM meta WHERE k = 'applied'", -1, &s, NULL) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW) {
        set_err(err, errcap, "snapshot: cannot read the applied index of %s", out_path);
        goto out;
    }
    *index = (raft_index)sqlite3_column_int64(s, 0);
    rc = STORE_OK;
out:
    sqlite3_finalize(s);
    sqlite3_close(copy);
    sqlite3_close(db);
    return rc;
}

/* Copies src to tmp and fsyncs it. */
static int copy_file(const char *src, const char *tmp, char *err, size_t errcap)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        set_err(err, errcap, "cannot open %s: %s", src, strerror(errno));
        return STORE_EIO;
    }
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) {
        set_err(err, errcap, "cannot create %s: %s", tmp, strerror(errno));
        close(in);
        return STORE_EIO;
    }
    char buf[1 << 16];
    ssize_t n;
    int rc = STORE_OK;
    while ((n = read(in, buf, sizeof buf)) > 0) {
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                set_err(err, errcap, "cannot write %s: %s", tmp, strerror(errno));
                rc = STORE_EIO;
                goto done;
            }
            off += w;
        }
    }
    if (n < 0) {
        set_err(err, errcap, "cannot read %s: %s", src, strerror(errno));
        rc = STORE_EIO;
    } else if (fsync(out) != 0) {
        set_err(err, errcap, "cannot fsync %s: %s", tmp, strerror(errno));
        rc = STORE_EIO;
    }
done:
    close(in);
    if (close(out) != 0 && rc == STORE_OK) {
        set_err(err, errcap, "cannot close %s: %s", tmp, strerror(errno));
        rc = STORE_EIO;
    }
    if (rc != STORE_OK)
        unlink(tmp);
    return rc;
}

static void fsync_parent_dir(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int store_restore(struct store *st, const char *snapshot_path, char *err, size_t errcap)
{
    char tmp[4096], side[4096];
    if (snprintf(tmp, sizeof tmp, "%s.restore", st->path) >= (int)sizeof tmp) {
        set_err(err, errcap, "path too long: %s", st->path);
        return STORE_EINVAL;
    }
    /* Copy first: if that fails the current database stays as it is. */
    int rc = copy_file(snapshot_path, tmp, err, errcap);
    if (rc)
        return rc;
    close_db(st);
    /* The old WAL belongs to the old database: it must not be replayed
     * into the new one. */
    snprintf(side, sizeof side, "%s-wal", st->path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", st->path);
    unlink(side);
    if (rename(tmp, st->path) != 0) {
        set_err(err, errcap, "cannot rename %s to %s: %s", tmp, st->path, strerror(errno));
        unlink(tmp);
        return STORE_EIO;
    }
    fsync_parent_dir(st->path);
    rc = open_db(st);
    if (rc)
        set_err(err, errcap, "%s", st->errmsg);
    return rc;
}
