/*
 * search.c — finding things in the state machine (include/store.h,
 * "Finding things"): the schema 3 migration, full-text search, links by
 * domain, and the per-user rate limits on new content decided at apply.
 *
 * Search is SQLite FTS5 over each live link's title, text and domain, an
 * external-content index of the links table (link_fts): every insert, edit
 * and delete of a link updates it inside the same apply transaction, on
 * every replica, so the index is always exactly the live links at the
 * applied index. Only live links are in it (a delete takes the row out), so
 * a search never sees a deleted link and its count needs no join. Edits and
 * deletes reach it by a trigger on UPDATE that names its columns: a like
 * (which updates likes and hot) costs the index nothing. A new link is
 * indexed by the apply itself (store_search_index_link), not by a trigger
 * (schema 6): an INSERT that fires a trigger runs in a statement
 * transaction, and FTS5 writes its pending terms out as a new segment at
 * every statement savepoint, so the trigger made one segment (and the
 * merges after it) per post, which cost 60% of a post's apply; indexed
 * apart, FTS5 keeps a batch's terms in memory and writes them once.
 *
 * The domain of a link is fixed at insert from its normalized URL (lowercase
 * host, "www." dropped: validate.c) into two columns: domain, shown and
 * indexed for full text, and rdomain, its labels reversed with a trailing
 * dot ("com.example.sub."), so that a domain and all its subdomains are one
 * range of the index links_domain ("com.example." up to "com.example/").
 *
 * Rate limits (SPEC §5): rate_events holds one row per accepted new link
 * or comment of a user, at the log time; apply counts the user's rows in
 * the window (an index range of at most the limit's rows: older rows of the
 * user are pruned as new ones are noted). A deleted post still counts.
 */
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/discussion.h"

#define HOUR_MS (3600ull * 1000)
#define DAY_MS (24 * HOUR_MS)

enum { RATE_LINK = 1, RATE_COMMENT = 2 };

static const char migrate_v3[] =
    "ALTER TABLE links ADD COLUMN domain TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE links ADD COLUMN rdomain TEXT NOT NULL DEFAULT '';"
    "UPDATE links SET domain = lr_domain(url_norm, 0), rdomain = lr_domain(url_norm, 1) WHERE deleted = 0;"
    "CREATE INDEX links_domain ON links(rdomain) WHERE deleted = 0;"
    /* Titles weigh most in the ranking (bm25 weights at the query). */
    "CREATE VIRTUAL TABLE link_fts USING fts5(title, text, domain, content='links', content_rowid='id',"
    " tokenize='unicode61 remove_diacritics 2');"
    "INSERT INTO link_fts(rowid, title, text, domain) SELECT id, title, text, domain FROM links WHERE deleted = 0;"
    "CREATE TRIGGER link_fts_insert AFTER INSERT ON links WHEN new.deleted = 0 BEGIN"
    " INSERT INTO link_fts(rowid, title, text, domain) VALUES (new.id, new.title, new.text, new.domain); END;"
    /* External content: a row leaves the index with exactly the values it
     * was indexed with (the old row's). */
    "CREATE TRIGGER link_fts_update AFTER UPDATE OF title, text, domain, deleted ON links BEGIN"
    " INSERT INTO link_fts(link_fts, rowid, title, text, domain)"
    "  SELECT 'delete', old.id, old.title, old.text, old.domain WHERE old.deleted = 0;"
    " INSERT INTO link_fts(rowid, title, text, domain)"
    "  SELECT new.id, new.title, new.text, new.domain WHERE new.deleted = 0; END;"
    "CREATE TABLE rate_events(user_id INTEGER NOT NULL, kind INTEGER NOT NULL, at INTEGER NOT NULL);"
    "CREATE INDEX rate_events_user ON rate_events(user_id, kind, at);"
    "UPDATE meta SET v = 3 WHERE k = 'schema';";

/* New links are indexed by store_search_index_link, in the same apply. */
static const char migrate_v6[] =
    "DROP TRIGGER link_fts_insert;"
    "UPDATE meta SET v = 6 WHERE k = 'schema';";

/* ---- Domains ------------------------------------------------------------------------ */

/* Reverses the labels of host (len bytes) into out with a trailing dot:
 * "sub.example.com" -> "com.example.sub.". */
static void reverse_labels(const char *host, size_t len, char *out, size_t cap)
{
    size_t o = 0, end = len;
    out[0] = 0;
    if (!cap)
        return;
    while (end > 0) {
        size_t start = end;
        while (start > 0 && host[start - 1] != '.')
            start--;
        size_t n = end - start;
        if (o + n + 2 > cap)
            break;
        memcpy(out + o, host + start, n);
        o += n;
        out[o++] = '.';
        end = start ? start - 1 : 0;
    }
    out[o] = 0;
}

void store_link_domain(const char *url_norm, size_t len, char *domain, char *rdomain, size_t cap)
{
    domain[0] = rdomain[0] = 0;
    if (len < 3 || url_norm[0] != '/' || url_norm[1] != '/') /* "#ID": a text post or deleted */
        return;
    const char *h = url_norm + 2, *end = url_norm + len, *e = h;
    if (*h == '[') {
        while (e < end && *e != ']')
            e++;
        if (e < end)
            e++;
    } else {
        while (e < end && *e != '/' && *e != ':')
            e++;
    }
    size_t n = (size_t)(e - h);
    if (n + 2 > cap)
        return;
    memcpy(domain, h, n);
    domain[n] = 0;
    reverse_labels(domain, n, rdomain, cap);
}

/* lr_domain(url_norm, reversed): the migration's way to fill the columns. */
static void sql_domain(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const char *u = (const char *)sqlite3_value_text(argv[0]);
    char d[STORE_DOMAIN_CAP], rd[STORE_DOMAIN_CAP];
    store_link_domain(u ? u : "", u ? (size_t)sqlite3_value_bytes(argv[0]) : 0, d, rd, sizeof d);
    sqlite3_result_text(ctx, sqlite3_value_int(argv[1]) ? rd : d, -1, SQLITE_TRANSIENT);
}

int store_search_migrate(sqlite3 *db, char *err, size_t errcap)
{
    /* Only the migration uses it: nothing stored depends on the function. */
    if (sqlite3_create_function(db, "lr_domain", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, sql_domain, NULL,
                                NULL) != SQLITE_OK) {
        snprintf(err, errcap, "cannot add the search index to the schema: %s", sqlite3_errmsg(db));
        return -1;
    }
    int rc = store_schema_step(db, 3, migrate_v3, "the search index", err, errcap);
    sqlite3_create_function(db, "lr_domain", 2, SQLITE_UTF8, NULL, NULL, NULL, NULL);
    return rc;
}

int store_search_migrate_v6(sqlite3 *db, char *err, size_t errcap)
{
    return store_schema_step(db, 6, migrate_v6, "the search index kept by apply", err, errcap);
}

int store_search_index_link(struct store *st, int64_t id, struct command_str title, struct command_str text,
                            const char *domain)
{
    static const char sql[] = "INSERT INTO link_fts(rowid, title, text, domain) VALUES (?1, ?2, ?3, ?4)";
    sqlite3_stmt *s = store_cached_stmt(st, sql);
    if (!s)
        return STORE_EIO;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_text(s, 2, title.p ? title.p : "", title.len, SQLITE_STATIC);
    if (text.len) /* as the row has it: NULL without a text */
        sqlite3_bind_text(s, 3, text.p, text.len, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, domain, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? STORE_OK : STORE_EIO;
}

/* ---- Queries ------------------------------------------------------------------------ */

size_t store_search_query(const char *in, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    unsigned words = 0;
    if (!cap)
        return 0;
    for (size_t i = 0; i < len && words < STORE_SEARCH_MAX_WORDS;) {
        /* Words are separated by spaces and control bytes; everything else
         * (punctuation included) is inside a quoted string, which FTS5
         * reads as a phrase of whatever tokens its tokenizer finds there:
         * no operator, column filter or prefix can be spelled. */
        while (i < len && (unsigned char)in[i] <= ' ')
            i++;
        if (i >= len)
            break;
        size_t need = 3; /* the quotes and a space */
        size_t j = i;
        while (j < len && (unsigned char)in[j] > ' ')
            need += in[j++] == '"' ? 2 : 1;
        if (o + need + 1 > cap)
            break;
        if (o)
            out[o++] = ' ';
        out[o++] = '"';
        for (; i < j; i++) {
            if (in[i] == '"')
                out[o++] = '"';
            out[o++] = in[i];
        }
        out[o++] = '"';
        words++;
    }
    out[o] = 0;
    return o;
}

static int link_rows(struct store *st, sqlite3_stmt *s, unsigned limit, struct store_link *out, size_t *n,
                     const char *what)
{
    *n = 0;
    int rc = SQLITE_DONE;
    while (*n < limit && (rc = sqlite3_step(s)) == SQLITE_ROW)
        store_read_link(s, &out[(*n)++]);
    if (*n == limit)
        rc = SQLITE_DONE;
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? STORE_OK : store_fail_query(st, what);
}

/* The matches newest first: counted up to the cap, and the window's oldest
 * found on the way (FTS5 reads its doclists in either order, without
 * scoring). */
static const char walk_sql[] = "SELECT rowid FROM link_fts WHERE link_fts MATCH ?1 ORDER BY rowid DESC";
/* The page is chosen inside the index (rowids and scores only), and only
 * its rows are read from links: joined before the sort, every match's row
 * (text included) would be read to throw most away. rowid >= ?4 bounds it
 * to the window (a rowid range FTS5 seeks to). */
static const char rank_sql[] =
    "SELECT l.id, l.title, l.url, u.name, l.created, l.likes, l.hot, l.comments, l.edited,"
    " l.text IS NOT NULL FROM (SELECT rowid AS id, bm25(link_fts, 10.0, 1.0, 4.0) AS score"
    " FROM link_fts WHERE link_fts MATCH ?1 AND rowid >= ?4"
    " ORDER BY score, rowid DESC LIMIT ?2 OFFSET ?3) f"
    " JOIN links l ON l.id = f.id JOIN users u ON u.id = l.author_id"
    " ORDER BY f.score, f.id DESC";
static const char text_sql[] = "SELECT text FROM links WHERE id = ?1";

int store_search_prepare(sqlite3 *db, struct store_search_stmts *ss)
{
    memset(ss, 0, sizeof *ss);
    const unsigned keep = SQLITE_PREPARE_PERSISTENT;
    if (sqlite3_prepare_v3(db, walk_sql, -1, keep, &ss->walk, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(db, rank_sql, -1, keep, &ss->rank, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(db, text_sql, -1, keep, &ss->text, NULL) != SQLITE_OK) {
        int rc = sqlite3_errcode(db);
        store_search_finalize(ss);
        return rc ? rc : SQLITE_ERROR;
    }
    return SQLITE_OK;
}

void store_search_finalize(struct store_search_stmts *ss)
{
    sqlite3_finalize(ss->walk);
    sqlite3_finalize(ss->rank);
    sqlite3_finalize(ss->text);
    memset(ss, 0, sizeof *ss);
}

static void put_back(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s); /* q is bound SQLITE_STATIC */
}

int store_search_run(struct store_search_stmts *ss, const char *words, size_t len, unsigned limit, unsigned offset,
                     struct store_search_page *page)
{
    page->n = 0;
    page->total = 0;
    page->total_capped = false;
    char q[STORE_SEARCH_QUERY_CAP];
    if (!store_search_query(words, len, q, sizeof q))
        return STORE_OK; /* no words: nothing matches */
    /* Past the window, rank only the newest matches (docs/finding.md);
     * count to the cap, or as deep as the page asked reaches. */
    int64_t window = (int64_t)offset + limit > STORE_SEARCH_RANK_WINDOW ? (int64_t)offset + limit
                                                                       : STORE_SEARCH_RANK_WINDOW;
    int64_t cap = window > STORE_SEARCH_COUNT_CAP ? window : STORE_SEARCH_COUNT_CAP;
    int64_t count = 0, from = 0, last = 0;
    sqlite3_bind_text(ss->walk, 1, q, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(ss->walk)) == SQLITE_ROW) {
        if (count == cap) {
            page->total_capped = true;
            break;
        }
        last = sqlite3_column_int64(ss->walk, 0);
        if (++count == window)
            from = last;
    }
    put_back(ss->walk);
    if (rc == SQLITE_INTERRUPT) { /* the budget (reader.c): what was walked is what is ranked */
        page->total_capped = true;
        if (count < window)
            from = last;
    } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        return STORE_EIO;
    }
    page->total = count;
    if (!count || !limit || offset >= count)
        return STORE_OK;
    sqlite3_bind_text(ss->rank, 1, q, -1, SQLITE_STATIC);
    sqlite3_bind_int64(ss->rank, 2, limit);
    sqlite3_bind_int64(ss->rank, 3, offset);
    sqlite3_bind_int64(ss->rank, 4, from);
    while (page->n < limit && (rc = sqlite3_step(ss->rank)) == SQLITE_ROW)
        store_read_link(ss->rank, &page->links[page->n++]);
    if (page->n == limit)
        rc = SQLITE_DONE;
    put_back(ss->rank);
    if (rc != SQLITE_DONE) {
        page->n = 0;
        return rc == SQLITE_INTERRUPT ? STORE_EAGAIN : STORE_EIO;
    }
    for (size_t i = 0; page->texts && i < page->n; i++)
        page->texts[i] = NULL;
    for (size_t i = 0; page->texts && i < page->n; i++) {
        if (!page->links[i].has_text)
            continue;
        sqlite3_bind_int64(ss->text, 1, page->links[i].id);
        rc = sqlite3_step(ss->text);
        const char *t = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(ss->text, 0) : NULL;
        if (t && !(page->texts[i] = strdup(t)))
            rc = SQLITE_NOMEM;
        put_back(ss->text);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            for (size_t j = 0; j <= i; j++) {
                free(page->texts[j]);
                page->texts[j] = NULL;
            }
            page->n = 0;
            return rc == SQLITE_NOMEM ? STORE_ENOMEM : rc == SQLITE_INTERRUPT ? STORE_EAGAIN : STORE_EIO;
        }
    }
    return STORE_OK;
}

int store_search(struct store *st, const char *words, size_t len, unsigned limit, unsigned offset,
                 struct store_link *out, size_t *n, int64_t *total)
{
    *n = 0;
    *total = 0;
    struct store_search_stmts ss;
    if (store_search_prepare(store_db(st), &ss) != SQLITE_OK)
        return store_fail_query(st, "cannot prepare a search");
    struct store_search_page page = { .links = out };
    int rc = store_search_run(&ss, words, len, limit, offset, &page);
    if (rc == STORE_EIO)
        rc = store_fail_query(st, "cannot search"); /* before finalize: the connection's error */
    store_search_finalize(&ss);
    *n = page.n;
    *total = page.total;
    return rc;
}

bool store_domain_key(const char *domain, size_t len, char *rdomain, size_t cap)
{
    char d[STORE_DOMAIN_CAP];
    while (len && domain[len - 1] == '.')
        len--;
    if (!len || len + 2 > sizeof d || len + 2 > cap)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)domain[i];
        if (ch <= ' ' || ch == '/' || ch == 0x7f)
            return false;
        d[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
    }
    d[len] = 0;
    const char *h = d; /* as stored: without any leading "www." while a dot remains */
    while (len > 4 && !memcmp(h, "www.", 4) && memchr(h + 4, '.', len - 4))
        h += 4, len -= 4;
    reverse_labels(h, len, rdomain, cap);
    return rdomain[0] != 0;
}

int store_links_by_domain(struct store *st, const char *domain, size_t len, unsigned limit, unsigned offset,
                          struct store_link *out, size_t *n)
{
    *n = 0;
    char lo[STORE_DOMAIN_CAP], hi[STORE_DOMAIN_CAP];
    if (!store_domain_key(domain, len, lo, sizeof lo))
        return STORE_OK;
    memcpy(hi, lo, sizeof hi);
    hi[strlen(hi) - 1] = '/'; /* the byte after '.': the end of the range */
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(store_db(st), STORE_LINK_COLS "WHERE l.deleted = 0 AND l.rdomain >= ?1 AND l.rdomain < ?2"
                                                         " ORDER BY l.id DESC LIMIT ?3 OFFSET ?4",
                           -1, &s, NULL) != SQLITE_OK)
        return store_fail_query(st, "cannot prepare a domain query");
    sqlite3_bind_text(s, 1, lo, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, hi, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, limit);
    sqlite3_bind_int64(s, 4, offset);
    return link_rows(st, s, limit, out, n, "cannot list a domain's links");
}

/* ---- Rate limits at apply ----------------------------------------------------------- */

/* The kind of new content c makes, or 0. */
static int rate_kind(const struct command *c)
{
    switch (c->type) {
    case CMD_LINK_POST:
    case CMD_LINK_POST_TEXT: return RATE_LINK;
    case CMD_COMMENT_POST: return RATE_COMMENT;
    default: return 0;
    }
}

/* The window and how many fit in it for a user of age_ms (SPEC §5). */
static void rate_rule(int kind, uint64_t age_ms, uint64_t *window_ms, int64_t *limit)
{
    bool young = age_ms < DAY_MS;
    if (kind == RATE_LINK) {
        *window_ms = HOUR_MS;
        *limit = young ? STORE_RATE_LINKS_NEW : STORE_RATE_LINKS;
    } else {
        *window_ms = young ? STORE_RATE_COMMENT_NEW_MS : STORE_RATE_COMMENT_MS;
        *limit = 1;
    }
}

int store_rate_check(struct store *st, const struct command *c, struct store_result *res)
{
    int kind = rate_kind(c);
    if (!kind || (c->flags & COMMAND_FLAG_NO_RATE_LIMIT) || c->session.len != COMMAND_HASH_LEN)
        return 0;
    struct store_user u;
    int found = store_session_user(st, (const uint8_t *)c->session.p, c->time_ms, &u);
    if (found <= 0)
        return found; /* no user: the command itself answers DENIED */
    uint64_t window;
    int64_t limit;
    rate_rule(kind, c->time_ms > u.created_ms ? c->time_ms - u.created_ms : 0, &window, &limit);
    static const char sql[] = "SELECT count(*), min(at) FROM rate_events WHERE user_id = ?1 AND kind = ?2 AND at > ?3";
    sqlite3_stmt *s = store_cached_stmt(st, sql);
    if (!s)
        return store_fail_query(st, "cannot prepare a rate check");
    sqlite3_bind_int64(s, 1, u.id);
    sqlite3_bind_int(s, 2, kind);
    sqlite3_bind_int64(s, 3, c->time_ms > window ? (sqlite3_int64)(c->time_ms - window) : -1);
    int rc = sqlite3_step(s);
    int64_t count = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    uint64_t oldest = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s, 1) : 0;
    sqlite3_reset(s);
    if (rc != SQLITE_ROW)
        return store_fail_query(st, "cannot check a rate limit");
    if (count < limit)
        return 0;
    /* One more is allowed once the oldest in the window leaves it. */
    uint64_t free_at = oldest + window, wait_ms = free_at > c->time_ms ? free_at - c->time_ms : 0;
    res->status = CMD_ERR_RATE_LIMITED;
    res->count = (int64_t)((wait_ms + 999) / 1000);
    if (res->count < 1)
        res->count = 1;
    return 1;
}

int store_rate_note(struct store *st, const struct command *c, const struct store_result *res)
{
    int kind = rate_kind(c);
    if (!kind || res->status != CMD_OK || res->replayed || (c->flags & COMMAND_FLAG_NO_RATE_LIMIT))
        return STORE_OK; /* unlimited proposals cost nothing more at apply */
    struct store_user u;
    int found = store_session_user(st, (const uint8_t *)c->session.p, c->time_ms, &u);
    if (found <= 0)
        return found < 0 ? STORE_EIO : STORE_OK;
    /* The longest window of the kind: older rows can never count again. */
    uint64_t keep = kind == RATE_LINK ? HOUR_MS : STORE_RATE_COMMENT_NEW_MS;
    static const char prune[] = "DELETE FROM rate_events WHERE user_id = ?1 AND kind = ?2 AND at <= ?3";
    static const char note[] = "INSERT INTO rate_events(user_id, kind, at) VALUES (?1, ?2, ?3)";
    sqlite3_stmt *s = store_cached_stmt(st, prune);
    if (!s)
        return store_fail_query(st, "cannot prepare a rate note");
    sqlite3_bind_int64(s, 1, u.id);
    sqlite3_bind_int(s, 2, kind);
    sqlite3_bind_int64(s, 3, c->time_ms > keep ? (sqlite3_int64)(c->time_ms - keep) : -1);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return store_fail_query(st, "cannot prune rate events");
    if (!(s = store_cached_stmt(st, note)))
        return store_fail_query(st, "cannot prepare a rate note");
    sqlite3_bind_int64(s, 1, u.id);
    sqlite3_bind_int(s, 2, kind);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)c->time_ms);
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? STORE_OK : store_fail_query(st, "cannot note a rate event");
}
