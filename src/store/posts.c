/*
 * posts.c — text posts, editing and deleting links in the state machine
 * (CMD_LINK_POST_TEXT, CMD_LINK_EDIT, CMD_LINK_DELETE; the columns text,
 * edited and deleted of links, added by the schema 2 migration in
 * comments.c).
 *
 * A link without a URL still needs a unique url_norm (the column is NOT
 * NULL UNIQUE since schema 1): it gets "#ID", which no normalized URL
 * ("//host/...") can equal. A deleted link stays as a row (its id is never
 * reused, its comments keep their link) with deleted = 1, which every
 * listing and lookup skips, and url_norm "#ID", which frees its URL.
 */
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/discussion.h"

/* Steps s once, finalizes it; STORE_OK if it ran. */
static int run(sqlite3_stmt *s)
{
    if (!s)
        return STORE_EIO;
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? STORE_OK : STORE_EIO;
}

/* Steps a cached statement (store_cached_stmt) once and resets it. */
static int run_kept(sqlite3_stmt *s)
{
    if (!s)
        return STORE_EIO;
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? STORE_OK : STORE_EIO;
}

static sqlite3_stmt *prep(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
        sqlite3_finalize(s);
        return NULL;
    }
    return s;
}

static void bind_cs(sqlite3_stmt *s, int i, struct command_str v)
{
    sqlite3_bind_text(s, i, v.p ? v.p : "", v.len, SQLITE_STATIC);
}

static int post_text(struct store *st, const struct command *c, struct store_result *res)
{
    sqlite3 *db = store_db(st);
    bool has_url = c->url.len && c->url_norm.len;
    if (!c->title.len || (!has_url && !c->text.len) || (c->url.len && !c->url_norm.len)) {
        res->status = CMD_ERR_MALFORMED;
        return STORE_OK;
    }
    struct store_user u;
    int found = store_session_user(st, (const uint8_t *)c->session.p, c->time_ms, &u);
    if (found <= 0) {
        res->status = CMD_ERR_DENIED;
        return found < 0 ? STORE_EIO : STORE_OK;
    }
    if (has_url) {
        int64_t existing;
        found = store_link_by_url(st, c->url_norm.p, c->url_norm.len, &existing);
        if (found < 0)
            return STORE_EIO;
        if (found) {
            res->status = CMD_ERR_CONFLICT;
            res->id = existing;
            return STORE_OK;
        }
    }
    /* A new post's statements are kept prepared: preparing costs more than
     * running them. */
    static const char insert[] = "INSERT INTO links(author_id, title, url, url_norm, created, likes, hot, text, domain,"
                                 " rdomain) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?8, ?9)";
    static const char set_norm[] = "UPDATE links SET url_norm = '#' || id WHERE id = ?1";
    sqlite3_stmt *s = store_cached_stmt(st, insert);
    if (!s)
        return STORE_EIO;
    sqlite3_bind_int64(s, 1, u.id);
    bind_cs(s, 2, c->title);
    bind_cs(s, 3, c->url);
    if (has_url)
        bind_cs(s, 4, c->url_norm);
    else
        sqlite3_bind_text(s, 4, "#new", -1, SQLITE_STATIC); /* "#ID" just below */
    sqlite3_bind_int64(s, 5, (sqlite3_int64)c->time_ms);
    sqlite3_bind_double(s, 6, store_hot_score(0, c->time_ms));
    if (c->text.len)
        bind_cs(s, 7, c->text);
    char domain[STORE_DOMAIN_CAP], rdomain[STORE_DOMAIN_CAP];
    store_link_domain(has_url ? c->url_norm.p : "", has_url ? c->url_norm.len : 0, domain, rdomain, sizeof domain);
    sqlite3_bind_text(s, 8, domain, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 9, rdomain, -1, SQLITE_STATIC);
    if (run_kept(s))
        return STORE_EIO;
    res->id = sqlite3_last_insert_rowid(db);
    if (!has_url) {
        s = store_cached_stmt(st, set_norm);
        if (s)
            sqlite3_bind_int64(s, 1, res->id);
        if (run_kept(s))
            return STORE_EIO;
    }
    if (store_search_index_link(st, res->id, c->title, c->text, domain))
        return STORE_EIO;
    snprintf(res->text, sizeof res->text, "%s", u.name);
    return STORE_OK;
}

/* The live link of an edit or delete, if it is the user's: 1, else 0 with
 * res->status set, or STORE_EIO. */
static int own_link(struct store *st, const struct command *c, struct store_result *res, uint64_t *created)
{
    struct store_user u;
    int found = store_session_user(st, (const uint8_t *)c->session.p, c->time_ms, &u);
    if (found <= 0) {
        res->status = CMD_ERR_DENIED;
        return found;
    }
    sqlite3_stmt *s = prep(store_db(st), "SELECT author_id, created FROM links WHERE id = ?1 AND deleted = 0");
    if (!s)
        return STORE_EIO;
    sqlite3_bind_int64(s, 1, c->link_id);
    int rc = sqlite3_step(s);
    int64_t author = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    *created = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s, 1) : 0;
    sqlite3_finalize(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return STORE_EIO;
    if (rc == SQLITE_DONE) {
        res->status = CMD_ERR_NOT_FOUND;
        return 0;
    }
    if (author != u.id) {
        res->status = CMD_ERR_FORBIDDEN;
        return 0;
    }
    res->id = c->link_id;
    return 1;
}

static int edit(struct store *st, const struct command *c, struct store_result *res)
{
    if (!c->title.len && !c->text.len) {
        res->status = CMD_ERR_MALFORMED;
        return STORE_OK;
    }
    uint64_t created;
    int found = own_link(st, c, res, &created);
    if (found <= 0)
        return found < 0 ? STORE_EIO : STORE_OK;
    if (c->time_ms > created + COMMAND_EDIT_WINDOW_MS) { /* the log clock decides */
        res->status = CMD_ERR_FORBIDDEN;
        return STORE_OK;
    }
    sqlite3_stmt *s = prep(store_db(st), "UPDATE links SET title = CASE WHEN ?2 = '' THEN title ELSE ?2 END,"
                                         " text = CASE WHEN ?3 = '' THEN text ELSE ?3 END, edited = ?4 WHERE id = ?1");
    if (!s)
        return STORE_EIO;
    sqlite3_bind_int64(s, 1, c->link_id);
    bind_cs(s, 2, c->title);
    bind_cs(s, 3, c->text);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)c->time_ms);
    return run(s);
}

static int delete_link(struct store *st, const struct command *c, struct store_result *res)
{
    uint64_t created;
    int found = own_link(st, c, res, &created);
    if (found <= 0)
        return found < 0 ? STORE_EIO : STORE_OK;
    sqlite3_stmt *s = prep(store_db(st), "UPDATE links SET deleted = 1, url_norm = '#' || id WHERE id = ?1");
    if (s)
        sqlite3_bind_int64(s, 1, c->link_id);
    return run(s);
}

int store_posts_execute(struct store *st, const struct command *c, struct store_result *res)
{
    switch (c->type) {
    case CMD_LINK_POST_TEXT: return post_text(st, c, res);
    case CMD_LINK_EDIT: return edit(st, c, res);
    case CMD_LINK_DELETE: return delete_link(st, c, res);
    default: res->status = CMD_ERR_MALFORMED; return STORE_OK;
    }
}

int store_link_text(struct store *st, int64_t id, char **text)
{
    *text = NULL;
    sqlite3_stmt *s = prep(store_db(st), "SELECT text FROM links WHERE id = ?1 AND deleted = 0");
    if (!s)
        return store_fail_query(st, "cannot read a link's text");
    sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s), found = rc == SQLITE_ROW;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        found = store_fail_query(st, "cannot read a link's text");
    } else if (found && sqlite3_column_type(s, 0) != SQLITE_NULL) {
        const unsigned char *t = sqlite3_column_text(s, 0);
        *text = strdup(t ? (const char *)t : "");
        if (!*text)
            found = STORE_ENOMEM;
    }
    sqlite3_finalize(s);
    return found;
}
