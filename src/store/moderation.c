/*
 * moderation.c — moderators, bans and the public moderation log in the
 * state machine (SPEC §5 "Abuse and moderation").
 *
 * users.moderator is granted and taken by the admin plane (CMD_MODERATOR_*,
 * proven by the cluster secret: no session). A moderator deletes any link
 * or comment (CMD_MOD_DELETE_*, with a reason) and bans (CMD_BAN: the
 * user's sessions end at once; users.banned makes apply refuse every later
 * write of theirs, store_ban_check, on every replica alike). Each of these
 * actions appends a row to mod_log in the same apply, so the public log is
 * exactly the actions taken, in log order.
 */
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "store/discussion.h"

static const char migrate_v5[] =
    "ALTER TABLE users ADD COLUMN moderator INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE users ADD COLUMN banned INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE mod_log(id INTEGER PRIMARY KEY, moderator TEXT NOT NULL, action TEXT NOT NULL,"
    " target TEXT NOT NULL, reason TEXT NOT NULL, created INTEGER NOT NULL);"
    "UPDATE meta SET v = 5 WHERE k = 'schema';";

int store_moderation_migrate(sqlite3 *db, char *err, size_t errcap)
{
    return store_schema_step(db, 5, migrate_v5, "moderation", err, errcap);
}

static int step_free(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? STORE_OK : STORE_EIO;
}

static sqlite3_stmt *prep(struct store *st, const char *sql)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL) != SQLITE_OK) {
        sqlite3_finalize(s);
        return NULL;
    }
    return s;
}

static int log_action(struct store *st, const char *moderator, const char *action, const char *target,
                      struct command_str reason, uint64_t at)
{
    sqlite3_stmt *s = prep(st, "INSERT INTO mod_log(moderator, action, target, reason, created)"
                               " VALUES (?1, ?2, ?3, ?4, ?5)");
    if (!s)
        return STORE_EIO;
    sqlite3_bind_text(s, 1, moderator, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, action, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, target, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, reason.p ? reason.p : "", reason.len, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, (sqlite3_int64)at);
    return step_free(s);
}

/* Every write with a session asks (store_ban_check): prepared once, kept;
 * preparing it for each was a third of a post's apply. */
int store_user_roles(struct store *st, int64_t user_id, bool *moderator, bool *banned)
{
    static const char sql[] = "SELECT moderator, banned FROM users WHERE id = ?1";
    sqlite3_stmt *s = store_cached_stmt(st, sql);
    if (!s)
        return store_fail_query(st, "cannot read a user's roles");
    sqlite3_bind_int64(s, 1, user_id);
    int rc = sqlite3_step(s);
    *moderator = rc == SQLITE_ROW && sqlite3_column_int(s, 0);
    *banned = rc == SQLITE_ROW && sqlite3_column_int(s, 1);
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? STORE_OK : store_fail_query(st, "cannot read a user's roles");
}

int store_ban_check(struct store *st, const struct command *c, struct store_result *res)
{
    if (c->session.len != COMMAND_HASH_LEN || c->type == CMD_SIGNUP || c->type == CMD_SESSION_CREATE ||
        c->type == CMD_SESSION_DELETE)
        return 0;
    struct store_user u;
    int found = store_session_user(st, (const uint8_t *)c->session.p, c->time_ms, &u);
    if (found <= 0)
        return found; /* no session: the command answers for itself */
    bool moderator, banned;
    if (store_user_roles(st, u.id, &moderator, &banned))
        return STORE_EIO;
    if (!banned)
        return 0;
    res->status = CMD_ERR_BANNED;
    return 1;
}

/* The user named by c->lname: 1 and *id, *name; 0 with NOT_FOUND. */
static int named_user(struct store *st, const struct command *c, struct store_result *res, struct store_user *u)
{
    int found = store_user_by_name(st, c->lname.p ? c->lname.p : "", c->lname.len, u);
    if (found == 0)
        res->status = CMD_ERR_NOT_FOUND;
    return found;
}

static int set_user(struct store *st, const char *column, int64_t user_id, int value)
{
    char sql[96];
    snprintf(sql, sizeof sql, "UPDATE users SET %s = ?2 WHERE id = ?1", column);
    sqlite3_stmt *s = prep(st, sql);
    if (!s)
        return STORE_EIO;
    sqlite3_bind_int64(s, 1, user_id);
    sqlite3_bind_int(s, 2, value);
    return step_free(s);
}

int store_moderation_execute(struct store *st, const struct command *c, struct store_result *res)
{
    struct store_user target;
    char where[48];
    if (c->type == CMD_MODERATOR_ADD || c->type == CMD_MODERATOR_REMOVE) {
        int found = named_user(st, c, res, &target);
        if (found <= 0)
            return found < 0 ? STORE_EIO : STORE_OK;
        bool add = c->type == CMD_MODERATOR_ADD;
        snprintf(where, sizeof where, "user/%s", target.name);
        res->id = target.id;
        snprintf(res->text, sizeof res->text, "%s", target.name);
        if (set_user(st, "moderator", target.id, add))
            return STORE_EIO;
        return log_action(st, "", add ? "moderator_add" : "moderator_remove", where, (struct command_str){ 0 },
                          c->time_ms);
    }
    /* The rest is a moderator's. */
    struct store_user mod;
    int found = store_session_user(st, (const uint8_t *)c->session.p, c->time_ms, &mod);
    if (found <= 0) {
        res->status = CMD_ERR_DENIED;
        return found < 0 ? STORE_EIO : STORE_OK;
    }
    bool is_mod, banned;
    if (store_user_roles(st, mod.id, &is_mod, &banned))
        return STORE_EIO;
    if (!is_mod) {
        res->status = CMD_ERR_FORBIDDEN;
        return STORE_OK;
    }
    const char *action;
    switch (c->type) {
    case CMD_MOD_DELETE_LINK: {
        sqlite3_stmt *s = prep(st, "UPDATE links SET deleted = 1, url_norm = '#' || id WHERE id = ?1 AND deleted = 0");
        if (!s)
            return STORE_EIO;
        sqlite3_bind_int64(s, 1, c->link_id);
        if (step_free(s))
            return STORE_EIO;
        if (!sqlite3_changes(store_db(st))) {
            res->status = CMD_ERR_NOT_FOUND;
            return STORE_OK;
        }
        action = "delete_link";
        res->id = c->link_id;
        snprintf(where, sizeof where, "link/%" PRId64, c->link_id);
        break;
    }
    case CMD_MOD_DELETE_COMMENT:
        found = store_comment_remove(st, c->comment_id);
        if (found <= 0) {
            res->status = CMD_ERR_NOT_FOUND;
            return found < 0 ? STORE_EIO : STORE_OK;
        }
        action = "delete_comment";
        res->id = c->comment_id;
        snprintf(where, sizeof where, "comment/%" PRId64, c->comment_id);
        break;
    default: { /* CMD_BAN, CMD_UNBAN */
        found = named_user(st, c, res, &target);
        if (found <= 0)
            return found < 0 ? STORE_EIO : STORE_OK;
        bool ban = c->type == CMD_BAN;
        if (set_user(st, "banned", target.id, ban))
            return STORE_EIO;
        if (ban) { /* every session of theirs ends, on every node */
            sqlite3_stmt *s = prep(st, "DELETE FROM sessions WHERE user_id = ?1");
            if (!s)
                return STORE_EIO;
            sqlite3_bind_int64(s, 1, target.id);
            if (step_free(s))
                return STORE_EIO;
        }
        action = ban ? "ban" : "unban";
        res->id = target.id;
        snprintf(where, sizeof where, "user/%s", target.name);
        break;
    }
    }
    return log_action(st, mod.name, action, where, c->text, c->time_ms);
}

int store_mod_log(struct store *st, unsigned limit, unsigned offset, struct store_mod_action *out, size_t *n)
{
    *n = 0;
    sqlite3_stmt *s = prep(st, "SELECT moderator, action, target, reason, created FROM mod_log"
                               " ORDER BY id DESC LIMIT ?1 OFFSET ?2");
    if (!s)
        return store_fail_query(st, "cannot read the moderation log");
    sqlite3_bind_int64(s, 1, limit);
    sqlite3_bind_int64(s, 2, offset);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW && *n < limit) {
        struct store_mod_action *a = &out[(*n)++];
        const unsigned char *t;
        t = sqlite3_column_text(s, 0);
        snprintf(a->moderator, sizeof a->moderator, "%s", t ? (const char *)t : "");
        t = sqlite3_column_text(s, 1);
        snprintf(a->action, sizeof a->action, "%s", t ? (const char *)t : "");
        t = sqlite3_column_text(s, 2);
        snprintf(a->target, sizeof a->target, "%s", t ? (const char *)t : "");
        t = sqlite3_column_text(s, 3);
        snprintf(a->reason, sizeof a->reason, "%s", t ? (const char *)t : "");
        a->created_ms = (uint64_t)sqlite3_column_int64(s, 4);
    }
    sqlite3_finalize(s);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? STORE_OK : store_fail_query(st, "cannot read the moderation log");
}
