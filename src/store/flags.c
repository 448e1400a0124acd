/*
 * flags.c — flags in the state machine (SPEC §5 "Abuse and moderation"):
 * one per user and link or comment (link_flags, comment_flags), the count
 * kept on the row (links.flags, comments.flags) like likes are. The hiding
 * rule is in the listings' own queries (store.c: flags < STORE_FLAGS_HIDE),
 * so hot and new stay one index scan; a hidden link is rare, and skipping
 * it costs one row of that scan.
 */
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>

#include "store/discussion.h"

static const char migrate_v4[] =
    "ALTER TABLE links ADD COLUMN flags INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE comments ADD COLUMN flags INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE link_flags(link_id INTEGER NOT NULL, user_id INTEGER NOT NULL, created INTEGER NOT NULL,"
    " PRIMARY KEY (link_id, user_id)) WITHOUT ROWID;"
    "CREATE TABLE comment_flags(comment_id INTEGER NOT NULL, user_id INTEGER NOT NULL, created INTEGER NOT NULL,"
    " PRIMARY KEY (comment_id, user_id)) WITHOUT ROWID;"
    "UPDATE meta SET v = 4 WHERE k = 'schema';";

int store_flags_migrate(sqlite3 *db, char *err, size_t errcap)
{
    return store_schema_step(db, 4, migrate_v4, "flags", err, errcap);
}

/* Runs sql with int64 arguments; with want_row, *out gets column 0 of its
 * row (1 if there was one, 0 if none). STORE_EIO on failure. */
static int run(sqlite3 *db, const char *sql, int64_t a, int64_t b, int64_t c, int64_t *out)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        return STORE_EIO;
    int n = sqlite3_bind_parameter_count(s);
    if (n >= 1) sqlite3_bind_int64(s, 1, a);
    if (n >= 2) sqlite3_bind_int64(s, 2, b);
    if (n >= 3) sqlite3_bind_int64(s, 3, c);
    int rc = sqlite3_step(s), found = rc == SQLITE_ROW;
    if (found && out)
        *out = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return STORE_EIO;
    return found;
}

int store_flags_execute(struct store *st, const struct command *c, struct store_result *res)
{
    sqlite3 *db = store_db(st);
    bool link = c->type == CMD_FLAG || c->type == CMD_UNFLAG;
    bool on = c->type == CMD_FLAG || c->type == CMD_COMMENT_FLAG;
    int64_t target = link ? c->link_id : c->comment_id;
    struct store_user u;
    int found = store_session_user(st, (const uint8_t *)c->session.p, c->time_ms, &u);
    if (found <= 0) {
        res->status = CMD_ERR_DENIED;
        return found < 0 ? STORE_EIO : STORE_OK;
    }
    int64_t flags = 0;
    found = run(db, link ? "SELECT flags FROM links WHERE id = ?1 AND deleted = 0"
                         : "SELECT flags FROM comments WHERE id = ?1 AND deleted = 0", target, 0, 0, &flags);
    if (found <= 0) {
        res->status = CMD_ERR_NOT_FOUND;
        return found < 0 ? STORE_EIO : STORE_OK;
    }
    const char *change = on ? (link ? "INSERT OR IGNORE INTO link_flags(link_id, user_id, created) VALUES (?1, ?2, ?3)"
                                    : "INSERT OR IGNORE INTO comment_flags(comment_id, user_id, created)"
                                      " VALUES (?1, ?2, ?3)")
                            : (link ? "DELETE FROM link_flags WHERE link_id = ?1 AND user_id = ?2 AND ?3 >= 0"
                                    : "DELETE FROM comment_flags WHERE comment_id = ?1 AND user_id = ?2 AND ?3 >= 0");
    if (run(db, change, target, u.id, (int64_t)c->time_ms, NULL) < 0)
        return STORE_EIO;
    if (sqlite3_changes(db)) {
        flags += on ? 1 : -1;
        if (run(db, link ? "UPDATE links SET flags = ?2 WHERE id = ?1" : "UPDATE comments SET flags = ?2 WHERE id = ?1",
                target, flags, 0, NULL) < 0)
            return STORE_EIO;
    }
    res->id = target;
    res->count = flags;
    res->flag = (uint8_t)on;
    return STORE_OK;
}

int store_flagged(struct store *st, int64_t user_id, bool comment, int64_t id)
{
    int found = run(store_db(st), comment ? "SELECT 1 FROM comment_flags WHERE comment_id = ?1 AND user_id = ?2"
                                          : "SELECT 1 FROM link_flags WHERE link_id = ?1 AND user_id = ?2",
                    id, user_id, 0, NULL);
    return found < 0 ? store_fail_query(st, "cannot read flags") : found;
}

int store_comments_flagged(struct store *st, int64_t user_id, const int64_t *ids, size_t n, uint8_t *flagged)
{
    sqlite3_stmt *s = store_cached_stmt(st, "SELECT 1 FROM comment_flags WHERE comment_id = ?1 AND user_id = ?2");
    if (!s)
        return store_fail_query(st, "cannot read comment flags");
    int rc = STORE_OK;
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_int64(s, 1, ids[i]);
        sqlite3_bind_int64(s, 2, user_id);
        int r = sqlite3_step(s);
        sqlite3_reset(s);
        if (r != SQLITE_ROW && r != SQLITE_DONE) {
            rc = store_fail_query(st, "cannot read comment flags");
            break;
        }
        flagged[i] = r == SQLITE_ROW;
    }
    sqlite3_clear_bindings(s);
    return rc;
}
