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

/* Records a failed query in st's error message (store_errmsg); returns STORE_EIO. */
int store_fail_query(struct store *st, const char *what);

#endif
