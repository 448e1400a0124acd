/*
 * discussion.h — the discussion's side of the state machine, for store.c:
 * the schema migration to version 2 (comments, text posts, editing,
 * deleting, about; comments.c), and the execution at apply of the commands
 * CMD_COMMENT_* (comments.c), CMD_LINK_POST_TEXT/EDIT/DELETE (posts.c) and
 * CMD_ABOUT_SET/PASSWORD_SET (users.c). The queries are public, in
 * include/store.h.
 */
#ifndef LINKRAFT_STORE_DISCUSSION_H
#define LINKRAFT_STORE_DISCUSSION_H

#include <stddef.h>

#include "command.h"
#include "store.h"

struct sqlite3;
struct sqlite3_stmt;

/* Brings the schema from version 1 (links, likes, no comments) to 2, in one
 * transaction; nothing to do at version 2. Returns 0, or -1 with a message. */
int store_comments_migrate(struct sqlite3 *db, char *err, size_t errcap);

/* Executes one CMD_COMMENT_* command inside the open apply transaction;
 * fills res. STORE_EIO only on SQLite failure. */
int store_comments_execute(struct store *st, const struct command *c, struct store_result *res);

/* Executes CMD_LINK_POST_TEXT, CMD_LINK_EDIT, CMD_LINK_DELETE (posts.c). */
int store_posts_execute(struct store *st, const struct command *c, struct store_result *res);

/* Executes CMD_ABOUT_SET, CMD_PASSWORD_SET (users.c). */
int store_users_execute(struct store *st, const struct command *c, struct store_result *res);

/* The prepared statement of sql (a string literal: it is known by its
 * address), prepared once per connection and kept until the store closes;
 * NULL on failure. The caller resets it (and clears its bindings) after
 * each use, never finalizes it. */
struct sqlite3_stmt *store_cached_stmt(struct store *st, const char *sql);

/* For the readers (reader.c): the database's path; the lock a reader holds
 * while it uses the files (store_restore takes it to replace them); how many
 * times they were replaced (read under the lock). */
const char *store_path(const struct store *st);
void store_files_read_lock(struct store *st);
void store_files_unlock(struct store *st);
uint64_t store_files_generation(const struct store *st);

/* The statements of a search on one connection (search.c), prepared by
 * store_search_prepare, finalized by store_search_finalize. */
struct store_search_stmts {
    struct sqlite3_stmt *walk, *rank, *text;
};
int store_search_prepare(struct sqlite3 *db, struct store_search_stmts *ss);
void store_search_finalize(struct store_search_stmts *ss);
/* The search of store_search and store_reader_search on the connection of
 * ss; texts (may be NULL) gets the text of each text post found, malloc'd.
 * A walk interrupted (the connection's progress handler) ends the count
 * there, capped; a ranking interrupted is STORE_EAGAIN. Other failures
 * return the SQLite result code as a negative number, -rc. */
int store_search_run(struct store_search_stmts *ss, const char *words, size_t len, unsigned limit, unsigned offset,
                     struct store_search_page *page);

/* Search, domains and rate limits (search.c). The migration to schema 3
 * adds the columns domain and rdomain of links, the full-text index and its
 * triggers, and rate_events; it builds the index from the rows there. */
int store_search_migrate(struct sqlite3 *db, char *err, size_t errcap);
/* Schema 6: the index's insert trigger goes; the apply of a new link calls
 * store_search_index_link (search.c says why). */
int store_search_migrate_v6(struct sqlite3 *db, char *err, size_t errcap);
/* Adds live link id, just inserted with these title, text (empty: NULL)
 * and domain, to the full-text index; inside the apply transaction. */
int store_search_index_link(struct store *st, int64_t id, struct command_str title, struct command_str text,
                            const char *domain);
/* The domain of a normalized URL ("//host[:port]/...") and its reversed
 * form ("com.example."), both "" for a link without a URL; cap bytes each. */
void store_link_domain(const char *url_norm, size_t len, char *domain, char *rdomain, size_t cap);
/* At apply, before executing c: 1 if c is new content over its user's rate
 * (res->status = CMD_ERR_RATE_LIMITED, res->count = seconds to wait), 0 if
 * it may go on, STORE_EIO. store_rate_note records it once it succeeded. */
int store_rate_check(struct store *st, const struct command *c, struct store_result *res);
int store_rate_note(struct store *st, const struct command *c, const struct store_result *res);

/* Flags (flags.c): the schema 4 migration (flags tables and counts) and
 * CMD_FLAG, CMD_UNFLAG, CMD_COMMENT_FLAG, CMD_COMMENT_UNFLAG at apply. */
int store_flags_migrate(struct sqlite3 *db, char *err, size_t errcap);
int store_flags_execute(struct store *st, const struct command *c, struct store_result *res);

/* Deletes live comment id as its author's delete does (comments.c): 1, 0
 * if there is no such live comment, STORE_EIO. */
int store_comment_remove(struct store *st, int64_t id);

/* Moderation (moderation.c): the schema 5 migration (users.moderator and
 * banned, mod_log), the commands CMD_MODERATOR_* .. CMD_UNBAN, and the ban
 * check at apply: 1 (res->status = CMD_ERR_BANNED) if c comes from a banned
 * user's session, 0 if it may go on, STORE_EIO. */
int store_moderation_migrate(struct sqlite3 *db, char *err, size_t errcap);
int store_moderation_execute(struct store *st, const struct command *c, struct store_result *res);
int store_ban_check(struct store *st, const struct command *c, struct store_result *res);

/* The columns every link query returns, in this order (store_read_link). */
#define STORE_LINK_COLS "SELECT l.id, l.title, l.url, u.name, l.created, l.likes, l.hot, l.comments, l.edited," \
                        " l.text IS NOT NULL FROM links l " \
                        "JOIN users u ON u.id = l.author_id "
struct sqlite3_stmt;
void store_read_link(struct sqlite3_stmt *s, struct store_link *l);

/* One step of the schema (store.c): when the database is below version to,
 * runs sql (which also sets meta's version to `to`) in one transaction.
 * 0, or -1 with err saying what (e.g. "comments") could not be added. */
int store_schema_step(struct sqlite3 *db, int64_t to, const char *sql, const char *what, char *err, size_t errcap);

/* Records a failed query in st's error message (store_errmsg); returns STORE_EIO. */
int store_fail_query(struct store *st, const char *what);

#endif
