/*
 * reader.c — read-only connections for searches on worker threads
 * (include/store.h, "Searching off the loop").
 *
 * Why: a node has one event loop for Raft's ticks, heartbeats and votes and
 * for every request. A full-text search over a million links costs tens of
 * milliseconds of FTS5, and run on the loop a burst of them kept a leader
 * from sending heartbeats for seconds: its followers elected another
 * (tests/cluster/test_search_load.py). A reader is a connection of its own,
 * opened read-only on the same file through the same checksum VFS; WAL lets
 * it read a committed state while the loop's connection applies and
 * commits the next. Each search is one read transaction, so its count, its
 * page, the texts and the applied index it reports are one state.
 *
 * The files change under a reader only at store_restore, which replaces
 * them while holding the store's files lock for writing; a reader holds it
 * for reading while it searches, notices the replacement by its generation
 * and reopens. Closing never checkpoints (NO_CKPT_ON_CLOSE): a connection
 * closing last on the old files must not touch the new ones.
 *
 * Bounded cost: a progress handler every PROGRESS_OPS virtual machine steps
 * compares the thread's CPU time with a deadline: half the budget for the
 * count (the walk over the matches stops there, counted so far), the whole
 * budget for the ranking and the texts (given up: STORE_EAGAIN). CPU time,
 * not wall time: a loaded machine must not turn ordinary queries into
 * refusals.
 */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/cksum_vfs.h"
#include "store/discussion.h"

#define PROGRESS_OPS 1000
/* The reader's page cache: the index's hot pages stay in it across
 * searches (SQLite's default is 2 MiB). */
#define READER_CACHE_KIB 8192

struct store_reader {
    struct store *st;
    sqlite3 *db;
    uint64_t generation;            /* of the files db was opened on */
    struct store_search_stmts ss;
    sqlite3_stmt *applied;
    uint64_t budget_ns;             /* of one search */
    uint64_t walk_deadline_ns, deadline_ns; /* thread CPU time */
    char errmsg[512];
};

static uint64_t cpu_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static int on_progress(void *arg)
{
    struct store_reader *rd = arg;
    uint64_t limit = sqlite3_stmt_busy(rd->ss.walk) ? rd->walk_deadline_ns : rd->deadline_ns;
    return cpu_ns() > limit;
}

struct store_reader *store_reader_new(struct store *st)
{
    struct store_reader *rd = calloc(1, sizeof *rd);
    if (rd) {
        rd->st = st;
        rd->budget_ns = STORE_SEARCH_BUDGET_MS * 1000000ull;
    }
    return rd;
}

void store_reader_set_budget(struct store_reader *rd, unsigned ms) { rd->budget_ns = ms * 1000000ull; }

static void close_conn(struct store_reader *rd)
{
    store_search_finalize(&rd->ss);
    sqlite3_finalize(rd->applied);
    rd->applied = NULL;
    if (rd->db)
        sqlite3_close(rd->db);
    rd->db = NULL;
}

void store_reader_free(struct store_reader *rd)
{
    if (!rd)
        return;
    close_conn(rd);
    free(rd);
}

const char *store_reader_errmsg(const struct store_reader *rd) { return rd->errmsg; }

/* STORE_ECORRUPT when what failed met a damaged page, else STORE_EIO. */
static int fail(struct store_reader *rd, const char *what)
{
    int code = rd->db ? sqlite3_extended_errcode(rd->db) : SQLITE_CANTOPEN;
    bool corrupt = code == SQLITE_IOERR_DATA || (code & 0xff) == SQLITE_CORRUPT || (code & 0xff) == SQLITE_NOTADB;
    snprintf(rd->errmsg, sizeof rd->errmsg, "%s: %s%s (database %s)", what,
             rd->db ? sqlite3_errmsg(rd->db) : "not open", corrupt ? ": a damaged page" : "", store_path(rd->st));
    return corrupt ? STORE_ECORRUPT : STORE_EIO;
}

/* Opens the connection on the current files (the files lock held). */
static int open_conn(struct store_reader *rd)
{
    char uri[4200 * 3];
    if (cksum_vfs_uri(store_path(rd->st), 0, uri, sizeof uri) != 0) {
        snprintf(rd->errmsg, sizeof rd->errmsg, "database path too long: %s", store_path(rd->st));
        return STORE_EIO;
    }
    if (sqlite3_open_v2(uri, &rd->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI, cksum_vfs()) !=
        SQLITE_OK)
        return fail(rd, "cannot open the database for searches");
    sqlite3_db_config(rd->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    sqlite3_busy_timeout(rd->db, 5000);
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA cache_size=-%d", READER_CACHE_KIB);
    if (sqlite3_exec(rd->db, pragma, NULL, NULL, NULL) != SQLITE_OK ||
        store_search_prepare(rd->db, &rd->ss) != SQLITE_OK ||
        sqlite3_prepare_v3(rd->db, "SELECT v FROM meta WHERE k = 'applied'", -1, SQLITE_PREPARE_PERSISTENT,
                           &rd->applied, NULL) != SQLITE_OK) {
        int rc = fail(rd, "cannot prepare the searches");
        close_conn(rd);
        return rc;
    }
    sqlite3_progress_handler(rd->db, PROGRESS_OPS, on_progress, rd);
    rd->generation = store_files_generation(rd->st);
    return STORE_OK;
}

/* One read transaction: the applied index, then the search. */
static int search_locked(struct store_reader *rd, const char *words, size_t len, unsigned limit, unsigned offset,
                         struct store_search_page *page)
{
    if (rd->db && rd->generation != store_files_generation(rd->st))
        close_conn(rd); /* restored since: the old files are gone */
    int rc = rd->db ? STORE_OK : open_conn(rd);
    if (rc)
        return rc;
    uint64_t now = cpu_ns();
    rd->walk_deadline_ns = now + rd->budget_ns / 2;
    rd->deadline_ns = now + rd->budget_ns;
    if (sqlite3_exec(rd->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return fail(rd, "cannot begin a search");
    rc = sqlite3_step(rd->applied);
    page->index = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(rd->applied, 0) : 0;
    sqlite3_reset(rd->applied);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        rc = fail(rd, "cannot read the applied index");
    else if ((rc = store_search_run(&rd->ss, words, len, limit, offset, page)) == STORE_EIO)
        rc = fail(rd, "cannot search");
    else if (rc == STORE_EAGAIN)
        snprintf(rd->errmsg, sizeof rd->errmsg, "the search took more than its %llu ms of CPU time",
                 (unsigned long long)(rd->budget_ns / 1000000));
    rd->walk_deadline_ns = rd->deadline_ns = UINT64_MAX; /* the end of the read is never interrupted */
    if (sqlite3_exec(rd->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK && !sqlite3_get_autocommit(rd->db))
        sqlite3_exec(rd->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int store_reader_search(struct store_reader *rd, const char *words, size_t len, unsigned limit, unsigned offset,
                        struct store_search_page *page)
{
    page->n = 0;
    page->total = 0;
    page->total_capped = false;
    page->index = 0;
    store_files_read_lock(rd->st);
    int rc = search_locked(rd, words, len, limit, offset, page);
    store_files_unlock(rd->st);
    return rc;
}
