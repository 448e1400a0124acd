/*
 * comments.c — threaded comments in the state machine (include/store.h,
 * "Comments"): the schema and its migration, the CMD_COMMENT_* commands at
 * apply, and the thread query.
 *
 * Statements are prepared per call rather than kept: store.c owns the
 * connection and replaces it on a snapshot restore, and a prepare costs a
 * few microseconds beside a Raft commit or a page render.
 */
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/discussion.h"

/* Replies nest at most this deep (a path is 16 hex digits per level). */
#define MAX_DEPTH 64

static const char migrate_v2[] =
    "ALTER TABLE links ADD COLUMN comments INTEGER NOT NULL DEFAULT 0;"
    /* Text posts (text, url ''), editing, deleting (deleted = 1: out of
     * every listing, url_norm freed). src/store/posts.c. */
    "ALTER TABLE links ADD COLUMN text TEXT;"
    "ALTER TABLE links ADD COLUMN edited INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE links ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE users ADD COLUMN about TEXT NOT NULL DEFAULT '';"
    "CREATE INDEX sessions_user ON sessions(user_id);"
    /* AUTOINCREMENT: a deleted comment's id is never handed out again, so
     * an id in a client's hand (or an idempotent result) means one comment. */
    "CREATE TABLE comments(id INTEGER PRIMARY KEY AUTOINCREMENT, link_id INTEGER NOT NULL,"
    " parent_id INTEGER NOT NULL, author_id INTEGER, text TEXT NOT NULL, created INTEGER NOT NULL,"
    " edited INTEGER NOT NULL DEFAULT 0, likes INTEGER NOT NULL DEFAULT 0,"
    " deleted INTEGER NOT NULL DEFAULT 0, replies INTEGER NOT NULL DEFAULT 0,"
    " depth INTEGER NOT NULL, path TEXT NOT NULL);"
    "CREATE INDEX comments_thread ON comments(link_id, path);"
    "CREATE INDEX comments_author ON comments(author_id, id);"
    "CREATE TABLE comment_likes(comment_id INTEGER NOT NULL, user_id INTEGER NOT NULL,"
    " created INTEGER NOT NULL, PRIMARY KEY (comment_id, user_id)) WITHOUT ROWID;"
    "CREATE INDEX comment_likes_user ON comment_likes(user_id, comment_id);"
    "UPDATE meta SET v = 2 WHERE k = 'schema';";

int store_comments_migrate(sqlite3 *db, char *err, size_t errcap)
{
    return store_schema_step(db, 2, migrate_v2, "comments", err, errcap);
}

/* ---- Statements ------------------------------------------------------------------ */

/* sql's statement, prepared once per connection (store_cached_stmt): put
 * back with done() after each use, never finalized here. */
static sqlite3_stmt *prep(struct store *st, const char *sql) { return store_cached_stmt(st, sql); }

static void done(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s); /* texts are bound SQLITE_STATIC: drop the pointers */
}

/* Runs a statement that returns no rows: binds int64 args (n of them). */
static int exec_i(struct store *st, const char *sql, int n, const int64_t *args)
{
    sqlite3_stmt *s = prep(st, sql);
    if (!s)
        return STORE_EIO;
    for (int i = 0; i < n; i++)
        sqlite3_bind_int64(s, i + 1, args[i]);
    int rc = sqlite3_step(s);
    done(s);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? STORE_OK : STORE_EIO;
}

#define EXEC(st, sql, ...) exec_i(st, sql, (int)(sizeof((int64_t[]){ __VA_ARGS__ }) / sizeof(int64_t)), \
                                  (int64_t[]){ __VA_ARGS__ })

/* What apply needs of one comment. */
struct row {
    int64_t link_id, parent_id, author_id, likes, replies;
    uint64_t created;
    int depth;
    int deleted;
    char path[16 * (MAX_DEPTH + 1) + 1];
};

/* 1 and *out if comment id exists, 0 if not, STORE_EIO. */
static int load(struct store *st, int64_t id, struct row *out)
{
    sqlite3_stmt *s = prep(st, "SELECT link_id, parent_id, coalesce(author_id, 0), likes, replies, created, depth,"
                               " deleted, path FROM comments WHERE id = ?1");
    if (!s)
        return STORE_EIO;
    sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s), found = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : STORE_EIO;
    if (found == 1) {
        out->link_id = sqlite3_column_int64(s, 0);
        out->parent_id = sqlite3_column_int64(s, 1);
        out->author_id = sqlite3_column_int64(s, 2);
        out->likes = sqlite3_column_int64(s, 3);
        out->replies = sqlite3_column_int64(s, 4);
        out->created = (uint64_t)sqlite3_column_int64(s, 5);
        out->depth = sqlite3_column_int(s, 6);
        out->deleted = sqlite3_column_int(s, 7);
        const unsigned char *p = sqlite3_column_text(s, 8);
        snprintf(out->path, sizeof out->path, "%s", p ? (const char *)p : "");
    }
    done(s);
    return found;
}

/* The command's user, or res->status = DENIED and 0. */
static int author(struct store *st, const struct command *c, struct store_result *res, struct store_user *u)
{
    int found = store_session_user(st, (const uint8_t *)c->session.p, c->time_ms, u);
    if (found == 0)
        res->status = CMD_ERR_DENIED;
    return found;
}

/* ---- Commands ------------------------------------------------------------------- */

static int comment_post(struct store *st, const struct command *c, struct store_result *res)
{
    if (!c->text.len || c->comment_id < 0) {
        res->status = CMD_ERR_MALFORMED;
        return STORE_OK;
    }
    struct store_user u;
    int found = author(st, c, res, &u);
    if (found <= 0)
        return found < 0 ? STORE_EIO : STORE_OK;
    found = store_link_live(st, c->link_id);
    if (found <= 0) {
        res->status = CMD_ERR_NOT_FOUND;
        return found < 0 ? STORE_EIO : STORE_OK;
    }
    struct row parent = { .depth = -1 };
    if (c->comment_id) {
        found = load(st, c->comment_id, &parent);
        if (found < 0)
            return STORE_EIO;
        if (!found || parent.deleted || parent.link_id != c->link_id || parent.depth + 1 > MAX_DEPTH) {
            res->status = CMD_ERR_INVALID;
            return STORE_OK;
        }
    }
    /* The id AUTOINCREMENT would give (the largest id ever handed out, +1),
     * taken first so that the row goes in once with its path: inserting it
     * and then setting the path moved its entry in comments_thread. */
    sqlite3_stmt *s = prep(st, "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'comments'), 0),"
                               " coalesce((SELECT max(id) FROM comments), 0)) + 1");
    if (!s)
        return STORE_EIO;
    int rc = sqlite3_step(s);
    int64_t id = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    done(s);
    if (rc != SQLITE_ROW)
        return STORE_EIO;
    char path[sizeof parent.path + 17];
    snprintf(path, sizeof path, "%s%016" PRIx64, c->comment_id ? parent.path : "", (uint64_t)id);
    s = prep(st, "INSERT INTO comments(id, link_id, parent_id, author_id, text, created, depth, path)"
                 " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
    if (!s)
        return STORE_EIO;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, c->link_id);
    sqlite3_bind_int64(s, 3, c->comment_id);
    sqlite3_bind_int64(s, 4, u.id);
    sqlite3_bind_text(s, 5, c->text.p, c->text.len, SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, (sqlite3_int64)c->time_ms);
    sqlite3_bind_int(s, 7, parent.depth + 1);
    sqlite3_bind_text(s, 8, path, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    done(s);
    if (rc != SQLITE_DONE)
        return STORE_EIO;
    if ((c->comment_id && EXEC(st, "UPDATE comments SET replies = replies + 1 WHERE id = ?1", c->comment_id)) ||
        EXEC(st, "UPDATE links SET comments = comments + 1 WHERE id = ?1", c->link_id))
        return STORE_EIO;
    res->id = id;
    res->depth = parent.depth + 1;
    snprintf(res->text, sizeof res->text, "%s", u.name);
    return STORE_OK;
}

/* The comment of an edit or a delete, if it is live and the user's. */
static int own_comment(struct store *st, const struct command *c, struct store_result *res, struct row *row)
{
    struct store_user u;
    int found = author(st, c, res, &u);
    if (found <= 0)
        return found;
    found = load(st, c->comment_id, row);
    if (found <= 0 || row->deleted) {
        res->status = CMD_ERR_NOT_FOUND;
        return found < 0 ? STORE_EIO : 0;
    }
    if (row->author_id != u.id) {
        res->status = CMD_ERR_FORBIDDEN;
        return 0;
    }
    res->id = c->comment_id;
    return 1;
}

static int comment_edit(struct store *st, const struct command *c, struct store_result *res)
{
    if (!c->text.len) {
        res->status = CMD_ERR_MALFORMED;
        return STORE_OK;
    }
    struct row row;
    int found = own_comment(st, c, res, &row);
    if (found <= 0)
        return found < 0 ? STORE_EIO : STORE_OK;
    /* The window is measured on the log clock: every replica decides alike. */
    if (c->time_ms > row.created + COMMAND_EDIT_WINDOW_MS) {
        res->status = CMD_ERR_FORBIDDEN;
        return STORE_OK;
    }
    sqlite3_stmt *s = prep(st, "UPDATE comments SET text = ?2, edited = ?3 WHERE id = ?1");
    if (!s)
        return STORE_EIO;
    sqlite3_bind_int64(s, 1, c->comment_id);
    sqlite3_bind_text(s, 2, c->text.p, c->text.len, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)c->time_ms);
    int rc = sqlite3_step(s);
    done(s);
    return rc == SQLITE_DONE ? STORE_OK : STORE_EIO;
}

/* Removes comment id (which has no replies) and then each placeholder
 * ancestor that this leaves without replies. */
static int remove_up(struct store *st, int64_t id, int64_t parent_id)
{
    for (;;) {
        if (EXEC(st, "DELETE FROM comment_likes WHERE comment_id = ?1", id) ||
            EXEC(st, "DELETE FROM comments WHERE id = ?1", id))
            return STORE_EIO;
        if (!parent_id)
            return STORE_OK;
        if (EXEC(st, "UPDATE comments SET replies = replies - 1 WHERE id = ?1", parent_id))
            return STORE_EIO;
        struct row p;
        int found = load(st, parent_id, &p);
        if (found < 0)
            return STORE_EIO;
        if (!found || !p.deleted || p.replies > 0)
            return STORE_OK;
        id = parent_id;
        parent_id = p.parent_id;
    }
}

/* Deletes live comment row (of id): a placeholder if it has replies. */
static int remove_comment(struct store *st, int64_t id, const struct row *row)
{
    if (EXEC(st, "UPDATE links SET comments = comments - 1 WHERE id = ?1", row->link_id))
        return STORE_EIO;
    if (row->replies > 0) /* the replies keep their place in the thread */
        return EXEC(st, "UPDATE comments SET deleted = 1, author_id = NULL, text = '' WHERE id = ?1", id);
    return remove_up(st, id, row->parent_id);
}

static int comment_delete(struct store *st, const struct command *c, struct store_result *res)
{
    struct row row;
    int found = own_comment(st, c, res, &row);
    if (found <= 0)
        return found < 0 ? STORE_EIO : STORE_OK;
    return remove_comment(st, c->comment_id, &row);
}

int store_comment_remove(struct store *st, int64_t id)
{
    struct row row;
    int found = load(st, id, &row);
    if (found <= 0 || row.deleted)
        return found < 0 ? STORE_EIO : 0;
    return remove_comment(st, id, &row) ? STORE_EIO : 1;
}

/* LIKE / UNLIKE of a comment: idempotent both ways, as for links. */
static int comment_like(struct store *st, const struct command *c, struct store_result *res)
{
    int on = c->type == CMD_COMMENT_LIKE;
    struct store_user u;
    int found = author(st, c, res, &u);
    if (found <= 0)
        return found < 0 ? STORE_EIO : STORE_OK;
    sqlite3 *db = store_db(st);
    struct row row;
    found = load(st, c->comment_id, &row);
    if (found <= 0 || row.deleted) {
        res->status = CMD_ERR_NOT_FOUND;
        return found < 0 ? STORE_EIO : STORE_OK;
    }
    int rc = on ? EXEC(st, "INSERT OR IGNORE INTO comment_likes(comment_id, user_id, created) VALUES (?1, ?2, ?3)",
                       c->comment_id, u.id, (int64_t)c->time_ms)
                : EXEC(st, "DELETE FROM comment_likes WHERE comment_id = ?1 AND user_id = ?2", c->comment_id, u.id);
    if (rc)
        return STORE_EIO;
    if (sqlite3_changes(db)) {
        row.likes += on ? 1 : -1;
        if (EXEC(st, "UPDATE comments SET likes = ?2 WHERE id = ?1", c->comment_id, row.likes))
            return STORE_EIO;
    }
    res->id = c->comment_id;
    res->count = row.likes;
    res->flag = (uint8_t)on;
    return STORE_OK;
}

int store_comments_execute(struct store *st, const struct command *c, struct store_result *res)
{
    switch (c->type) {
    case CMD_COMMENT_POST: return comment_post(st, c, res);
    case CMD_COMMENT_EDIT: return comment_edit(st, c, res);
    case CMD_COMMENT_DELETE: return comment_delete(st, c, res);
    case CMD_COMMENT_LIKE:
    case CMD_COMMENT_UNLIKE: return comment_like(st, c, res);
    default: res->status = CMD_ERR_MALFORMED; return STORE_OK;
    }
}

/* ---- Queries -------------------------------------------------------------------- */

#define COMMENT_COLS "SELECT c.id, c.link_id, c.parent_id, coalesce(u.name, ''), c.text, c.created, c.edited," \
                     " c.likes, c.deleted, c.depth FROM comments c LEFT JOIN users u ON u.id = c.author_id "

static int read_comment(sqlite3_stmt *s, struct store_comment *c)
{
    memset(c, 0, sizeof *c);
    c->id = sqlite3_column_int64(s, 0);
    c->link_id = sqlite3_column_int64(s, 1);
    c->parent_id = sqlite3_column_int64(s, 2);
    const unsigned char *a = sqlite3_column_text(s, 3);
    snprintf(c->author, sizeof c->author, "%s", a ? (const char *)a : "");
    const unsigned char *t = sqlite3_column_text(s, 4);
    c->text = strdup(t ? (const char *)t : "");
    c->created_ms = (uint64_t)sqlite3_column_int64(s, 5);
    c->edited_ms = (uint64_t)sqlite3_column_int64(s, 6);
    c->likes = sqlite3_column_int64(s, 7);
    c->deleted = (uint8_t)sqlite3_column_int(s, 8);
    c->depth = sqlite3_column_int(s, 9);
    return c->text ? 0 : -1;
}

void store_comment_clear(struct store_comment *c)
{
    free(c->text);
    c->text = NULL;
}

void store_comments_free(struct store_comment *c, size_t n)
{
    for (size_t i = 0; c && i < n; i++)
        free(c[i].text);
    free(c);
}

int store_link_live(struct store *st, int64_t id)
{
    sqlite3_stmt *s = prep(st, "SELECT 1 FROM links WHERE id = ?1 AND deleted = 0");
    if (!s)
        return store_fail_query(st, "cannot look up a link");
    sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s), found = rc == SQLITE_ROW ? 1 : 0;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        found = store_fail_query(st, "cannot look up a link");
    done(s);
    return found;
}

int store_comment_get(struct store *st, int64_t id, struct store_comment *out)
{
    sqlite3_stmt *s = prep(st, COMMENT_COLS "WHERE c.id = ?1");
    if (!s)
        return store_fail_query(st, "cannot read a comment");
    sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s), found = rc == SQLITE_ROW ? 1 : 0;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        found = store_fail_query(st, "cannot read a comment");
    else if (found && read_comment(s, out))
        found = STORE_ENOMEM;
    done(s);
    return found;
}

/* Sibling order: most likes first, then oldest (ids grow in log order). */
static int by_likes(const void *a, const void *b, void *base)
{
    const struct store_comment *rows = base;
    const struct store_comment *x = &rows[*(const size_t *)a], *y = &rows[*(const size_t *)b];
    if (x->likes != y->likes)
        return x->likes > y->likes ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* rows (n, in path order: pre-order with siblings by id) into display order. */
static int order_thread(struct store_comment *rows, size_t n, struct store_comment **out)
{
    /* parent[i]: index of i's parent, n for the root; found by depth, as
     * in pre-order a comment's parent is the last row one level up. */
    size_t *parent = malloc((n + 1) * sizeof *parent), *last = malloc((MAX_DEPTH + 2) * sizeof *last);
    size_t *start = calloc(n + 2, sizeof *start), *kids = malloc((n + 1) * sizeof *kids);
    size_t *stack = malloc((MAX_DEPTH + 2) * sizeof *stack), *pos = malloc((MAX_DEPTH + 2) * sizeof *pos);
    struct store_comment *sorted = malloc(n * sizeof *sorted);
    int rc = -1;
    if (!parent || !last || !start || !kids || !stack || !pos || !sorted)
        goto out;
    for (int k = 0; k <= MAX_DEPTH + 1; k++)
        last[k] = n;
    for (size_t i = 0; i < n; i++) {
        int d = rows[i].depth;
        if (d < 0 || d > MAX_DEPTH || (d > 0 && last[d - 1] == n))
            d = rows[i].depth = 0; /* cannot happen; keeps a damaged row visible */
        parent[i] = d ? last[d - 1] : n;
        last[d] = i;
        last[d + 1] = n;
    }
    /* Children grouped by parent (counting sort), each group sorted. */
    for (size_t i = 0; i < n; i++)
        start[parent[i] + 1]++;
    for (size_t p = 1; p <= n + 1; p++)
        start[p] += start[p - 1];
    {
        size_t *fill = malloc((n + 1) * sizeof *fill);
        if (!fill)
            goto out;
        memcpy(fill, start, (n + 1) * sizeof *fill);
        for (size_t i = 0; i < n; i++)
            kids[fill[parent[i]]++] = i;
        free(fill);
    }
    for (size_t p = 0; p <= n; p++)
        if (start[p + 1] - start[p] > 1)
            qsort_r(kids + start[p], start[p + 1] - start[p], sizeof *kids, by_likes, rows);
    /* Depth-first from the root. */
    size_t k = 0;
    int top = 0;
    stack[0] = n;
    pos[0] = start[n];
    while (top >= 0) {
        size_t p = stack[top];
        if (pos[top] == start[p + 1]) {
            top--;
            continue;
        }
        size_t c = kids[pos[top]++];
        sorted[k++] = rows[c];
        if (top + 1 <= MAX_DEPTH + 1) {
            top++;
            stack[top] = c;
            pos[top] = start[c];
        }
    }
    *out = sorted;
    sorted = NULL;
    rc = 0;
out:
    free(parent);
    free(last);
    free(start);
    free(kids);
    free(stack);
    free(pos);
    free(sorted);
    return rc;
}

int store_thread(struct store *st, int64_t link_id, struct store_comment **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *s = prep(st, COMMENT_COLS "WHERE c.link_id = ?1 ORDER BY c.path");
    if (!s)
        return store_fail_query(st, "cannot read a thread");
    sqlite3_bind_int64(s, 1, link_id);
    struct store_comment *rows = NULL;
    size_t cap = 0, count = 0;
    int rc, err = STORE_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (count == cap) {
            size_t ncap = cap ? 2 * cap : 16;
            struct store_comment *grown = realloc(rows, ncap * sizeof *rows);
            if (!grown) {
                err = STORE_ENOMEM;
                break;
            }
            rows = grown;
            cap = ncap;
        }
        if (read_comment(s, &rows[count])) {
            free(rows[count].text);
            err = STORE_ENOMEM;
            break;
        }
        count++;
    }
    if (!err && rc != SQLITE_DONE)
        err = store_fail_query(st, "cannot read a thread");
    done(s);
    struct store_comment *sorted = NULL;
    if (!err && count && order_thread(rows, count, &sorted))
        err = STORE_ENOMEM;
    if (err) {
        store_comments_free(rows, count);
        return err;
    }
    free(rows); /* its texts now belong to sorted */
    *out = sorted;
    *n = count;
    return STORE_OK;
}

int store_comments_liked(struct store *st, int64_t user_id, const int64_t *ids, size_t n, uint8_t *liked)
{
    sqlite3_stmt *s = prep(st, "SELECT 1 FROM comment_likes WHERE comment_id = ?1 AND user_id = ?2");
    if (!s)
        return store_fail_query(st, "cannot read comment likes");
    int rc = STORE_OK;
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_int64(s, 1, ids[i]);
        sqlite3_bind_int64(s, 2, user_id);
        int r = sqlite3_step(s);
        if (r != SQLITE_ROW && r != SQLITE_DONE) {
            rc = store_fail_query(st, "cannot read comment likes");
            break;
        }
        liked[i] = r == SQLITE_ROW;
        sqlite3_reset(s);
    }
    done(s);
    return rc;
}

int store_comments_by_user(struct store *st, int64_t user_id, unsigned limit, unsigned offset,
                           struct store_comment **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    /* Deleted comments have no author; comments on deleted links are not live either. */
    sqlite3_stmt *s = prep(st, COMMENT_COLS "JOIN links l ON l.id = c.link_id"
                                         " WHERE c.author_id = ?1 AND l.deleted = 0 ORDER BY c.id DESC LIMIT ?2 OFFSET ?3");
    if (!s)
        return store_fail_query(st, "cannot list a user's comments");
    sqlite3_bind_int64(s, 1, user_id);
    sqlite3_bind_int64(s, 2, limit);
    sqlite3_bind_int64(s, 3, offset);
    struct store_comment *rows = limit ? calloc(limit, sizeof *rows) : NULL;
    int rc = SQLITE_DONE, err = limit && !rows ? STORE_ENOMEM : STORE_OK;
    while (!err && *n < limit && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (read_comment(s, &rows[*n])) {
            free(rows[*n].text);
            err = STORE_ENOMEM;
            break;
        }
        (*n)++;
    }
    if (!err && rc != SQLITE_DONE && rc != SQLITE_ROW)
        err = store_fail_query(st, "cannot list a user's comments");
    done(s);
    if (err) {
        store_comments_free(rows, *n);
        *n = 0;
        return err;
    }
    *out = rows;
    return STORE_OK;
}
