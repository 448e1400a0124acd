/*
 * users.c — accounts beyond sign-up in the state machine: "about"
 * (CMD_ABOUT_SET), a password change (CMD_PASSWORD_SET, which ends every
 * other session of the user), and the profile query with karma. A comment
 * counts while it and its link are live (a deleted comment has no author).
 */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "store/discussion.h"

static sqlite3_stmt *prep(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
        sqlite3_finalize(s);
        return NULL;
    }
    return s;
}

static int run(sqlite3_stmt *s)
{
    if (!s)
        return STORE_EIO;
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? STORE_OK : STORE_EIO;
}

int store_users_execute(struct store *st, const struct command *c, struct store_result *res)
{
    sqlite3 *db = store_db(st);
    struct store_user u;
    int found = store_session_user(st, (const uint8_t *)c->session.p, c->time_ms, &u);
    if (found <= 0) {
        res->status = CMD_ERR_DENIED;
        return found < 0 ? STORE_EIO : STORE_OK;
    }
    res->id = u.id;
    sqlite3_stmt *s;
    if (c->type == CMD_ABOUT_SET) {
        if (!(s = prep(db, "UPDATE users SET about = ?2 WHERE id = ?1")))
            return STORE_EIO;
        sqlite3_bind_int64(s, 1, u.id);
        sqlite3_bind_text(s, 2, c->text.p ? c->text.p : "", c->text.len, SQLITE_STATIC);
        return run(s);
    }
    if (c->type != CMD_PASSWORD_SET || !c->pwhash.len) {
        res->status = CMD_ERR_MALFORMED;
        return STORE_OK;
    }
    if (!(s = prep(db, "UPDATE users SET pwhash = ?2 WHERE id = ?1")))
        return STORE_EIO;
    sqlite3_bind_int64(s, 1, u.id);
    sqlite3_bind_text(s, 2, c->pwhash.p, c->pwhash.len, SQLITE_STATIC);
    if (run(s))
        return STORE_EIO;
    /* Whoever else was logged in as this user (a stolen cookie, another
     * device) is logged out; the session that changed it stays. */
    if (!(s = prep(db, "DELETE FROM sessions WHERE user_id = ?1 AND hash != ?2")))
        return STORE_EIO;
    sqlite3_bind_int64(s, 1, u.id);
    sqlite3_bind_blob(s, 2, c->session.p, c->session.len, SQLITE_STATIC);
    return run(s);
}

int store_user_profile(struct store *st, int64_t user_id, int64_t *karma, int64_t *links, int64_t *comments,
                       char **about)
{
    *about = NULL;
    sqlite3_stmt *s = prep(store_db(st),
                           "SELECT (SELECT coalesce(sum(likes), 0) FROM links WHERE author_id = ?1 AND deleted = 0)"
                           " + (SELECT coalesce(sum(c.likes), 0) FROM comments c JOIN links l ON l.id = c.link_id"
                           "    WHERE c.author_id = ?1 AND l.deleted = 0),"
                           " (SELECT count(*) FROM links WHERE author_id = ?1 AND deleted = 0),"
                           " (SELECT count(*) FROM comments c JOIN links l ON l.id = c.link_id"
                           "    WHERE c.author_id = ?1 AND l.deleted = 0),"
                           " (SELECT about FROM users WHERE id = ?1)");
    if (!s)
        return store_fail_query(st, "cannot read a user's profile");
    sqlite3_bind_int64(s, 1, user_id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *karma = sqlite3_column_int64(s, 0);
        *links = sqlite3_column_int64(s, 1);
        *comments = sqlite3_column_int64(s, 2);
        const unsigned char *a = sqlite3_column_text(s, 3);
        *about = strdup(a ? (const char *)a : "");
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_ROW)
        return store_fail_query(st, "cannot read a user's profile");
    return *about ? STORE_OK : STORE_ENOMEM;
}
