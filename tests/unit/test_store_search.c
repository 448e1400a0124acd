/*
 * test_store_search.c — finding things and rate limits in the state machine
 * (src/store/search.c): full-text search kept in step with posts, edits and
 * deletes, best match first; any input is words, never FTS5 syntax; links by
 * domain with subdomains; the schema 3 migration building the index from
 * existing rows; the per-user rate limits on new content decided at apply
 * from the log clock, and the flag that lifts them; flags (one per user)
 * and the rule that hides a link with five of them from hot and new;
 * searches on a reader (a worker's read-only connection): the committed
 * state and its index, the count's cap, a restore under it.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../harness.h"
#include "command.h"
#include "store.h"

static char dir[64];
static const uint64_t T0 = 1700000000000ull;
#define HOUR (3600ull * 1000)

static struct command_str S(const char *s) { return (struct command_str){ s, (uint16_t)strlen(s) }; }

struct hash { char b[COMMAND_HASH_LEN]; };
static struct hash H(int n)
{
    struct hash h;
    for (int i = 0; i < COMMAND_HASH_LEN; i++)
        h.b[i] = (char)(n * 31 + i);
    return h;
}
static struct command_str HS(const struct hash *h) { return (struct command_str){ h->b, COMMAND_HASH_LEN }; }

/* Applies one command as the next entry; returns its result. */
struct db {
    struct store *st;
    uint64_t next;
};

static struct store_result apply(struct db *d, const struct command *c)
{
    struct store_result res = { 0 };
    size_t size = command_size(c);
    uint8_t *buf = malloc(size);
    long len = command_encode(c, buf, size);
    if (len < 0) {
        fprintf(stderr, "cannot encode a test command of type %d\n", c->type);
        abort();
    }
    struct store_entry e = { .index = ++d->next, .command = true, .data = buf, .len = (size_t)len };
    if (store_apply(d->st, &e, 1, &res) != STORE_OK) {
        fprintf(stderr, "store_apply: %s\n", store_errmsg(d->st));
        abort();
    }
    free(buf);
    return res;
}

static bool open_db(struct db *d, const char *name)
{
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    d->st = NULL;
    if (store_open(path, &d->st, err, sizeof err) != STORE_OK) {
        fprintf(stderr, "store_open %s: %s\n", path, err);
        return false;
    }
    d->next = store_applied(d->st);
    return true;
}

static void signup(struct db *d, uint64_t t, const char *name, const struct hash *sess)
{
    struct command c = { .type = CMD_SIGNUP, .time_ms = t, .name = S(name), .lname = S(name),
                         .pwhash = S("$argon2id$fake"), .session = HS(sess) };
    apply(d, &c);
}

/* A post of a URL (url_norm as validate.c makes it: "//host/path"), or a
 * text post when url is NULL. flags: 0 or COMMAND_FLAG_NO_RATE_LIMIT. */
static struct store_result post(struct db *d, uint64_t t, const struct hash *sess, const char *title,
                                const char *norm, const char *text, uint8_t flags)
{
    char url[256];
    snprintf(url, sizeof url, "https:%s", norm ? norm : "");
    struct command c = { .type = CMD_LINK_POST_TEXT, .flags = flags, .time_ms = t, .session = HS(sess),
                         .title = S(title), .url = S(norm ? url : ""), .url_norm = S(norm ? norm : ""),
                         .text = S(text ? text : "") };
    return apply(d, &c);
}

static struct store_result comment(struct db *d, uint64_t t, const struct hash *sess, int64_t link, uint8_t flags,
                                   const char *idem)
{
    struct command c = { .type = CMD_COMMENT_POST, .flags = flags, .time_ms = t, .session = HS(sess),
                         .link_id = link, .text = S("a comment"), .scope = S("u"), .idem_key = S(idem ? idem : "") };
    return apply(d, &c);
}

/* The ids a search gives, "3 1 2 (total 3)". */
static void search_str(struct db *d, const char *q, char *out, size_t cap)
{
    struct store_link links[20];
    size_t n = 0;
    int64_t total = -1;
    int rc = store_search(d->st, q, strlen(q), 20, 0, links, &n, &total);
    size_t o = 0;
    out[0] = 0;
    if (rc != STORE_OK) {
        snprintf(out, cap, "error %d: %s", rc, store_errmsg(d->st));
        return;
    }
    for (size_t i = 0; i < n && o < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%lld ", (long long)links[i].id);
    if (o < cap)
        snprintf(out + o, cap - o, "(total %lld)", (long long)total);
}

static void domain_str(struct db *d, const char *dom, char *out, size_t cap)
{
    struct store_link links[20];
    size_t n = 0;
    int rc = store_links_by_domain(d->st, dom, strlen(dom), 20, 0, links, &n);
    size_t o = 0;
    out[0] = 0;
    if (rc != STORE_OK) {
        snprintf(out, cap, "error %d", rc);
        return;
    }
    for (size_t i = 0; i < n && o < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s%lld", i ? " " : "", (long long)links[i].id);
}

static void edit(struct db *d, uint64_t t, const struct hash *sess, int64_t id, const char *title)
{
    struct command c = { .type = CMD_LINK_EDIT, .time_ms = t, .session = HS(sess), .link_id = id,
                         .title = S(title) };
    apply(d, &c);
}

static void delete_link(struct db *d, uint64_t t, const struct hash *sess, int64_t id)
{
    struct command c = { .type = CMD_LINK_DELETE, .time_ms = t, .session = HS(sess), .link_id = id };
    apply(d, &c);
}

#define NL COMMAND_FLAG_NO_RATE_LIMIT

TEST(search_follows_posts_edits_and_deletes_best_match_first)
{
    struct db d;
    REQUIRE(open_db(&d, "search.db"));
    struct hash a = H(1);
    signup(&d, T0, "alice", &a);
    post(&d, T0 + 1, &a, "Raft consensus explained", "//raft.github.io/", NULL, NL);                 /* 1 */
    post(&d, T0 + 2, &a, "A text post", NULL, "Here I mention raft once among many other words", NL); /* 2 */
    post(&d, T0 + 3, &a, "SQLite FTS5 notes", "//sqlite.org/fts5.html", NULL, NL);                  /* 3 */
    post(&d, T0 + 4, &a, "Caf\xc3\xa9 culture", "//blog.example.com/cafe", NULL, NL);               /* 4 */
    post(&d, T0 + 5, &a, "Raft consensus explained again", "//example.net/raft", NULL, NL);         /* 5 */
    char got[256];
    /* Title matches rank above a mention in the text; among equal titles
     * the shorter (more focused) wins; all three are counted. */
    search_str(&d, "raft", got, sizeof got);
    CHECK_STR(got, "1 5 2 (total 3)");
    search_str(&d, "RAFT Consensus", got, sizeof got); /* every word, any case */
    CHECK_STR(got, "1 5 (total 2)");
    search_str(&d, "sqlite.org", got, sizeof got);     /* the domain */
    CHECK_STR(got, "3 (total 1)");
    search_str(&d, "cafe", got, sizeof got);           /* diacritics folded */
    CHECK_STR(got, "4 (total 1)");
    search_str(&d, "example", got, sizeof got);        /* domains of both */
    CHECK(!strcmp(got, "5 4 (total 2)") || !strcmp(got, "4 5 (total 2)"));
    search_str(&d, "nothing-like-this", got, sizeof got);
    CHECK_STR(got, "(total 0)");
    search_str(&d, "   ", got, sizeof got);
    CHECK_STR(got, "(total 0)");
    /* An edit re-indexes the title; a delete takes the link out. */
    edit(&d, T0 + 10, &a, 3, "Full text search in SQLite");
    search_str(&d, "fts5", got, sizeof got);
    CHECK_STR(got, "(total 0)");
    search_str(&d, "full text", got, sizeof got);
    CHECK_STR(got, "3 (total 1)");
    delete_link(&d, T0 + 11, &a, 1);
    search_str(&d, "raft", got, sizeof got);
    CHECK_STR(got, "5 2 (total 2)");
    /* A like touches no indexed column. */
    struct command lk = { .type = CMD_LIKE, .time_ms = T0 + 12, .session = HS(&a), .link_id = 5 };
    apply(&d, &lk);
    search_str(&d, "raft", got, sizeof got);
    CHECK_STR(got, "5 2 (total 2)");
    /* Paging. (No FTS5 'integrity-check' here: the index holds the live
     * links only, a subset of its content table, which that check cannot
     * tell from damage.) */
    struct store_link links[2];
    size_t n;
    int64_t total;
    REQUIRE(store_search(d.st, "raft", 4, 1, 1, links, &n, &total) == STORE_OK);
    CHECK(n == 1 && links[0].id == 2 && total == 2);
    REQUIRE(store_search(d.st, "raft", 4, 1, 5, links, &n, &total) == STORE_OK);
    CHECK(n == 0 && total == 2);
    store_close(d.st);
}

/* A query with more matches than STORE_SEARCH_RANK_WINDOW ranks the newest
 * that many: the oldest link, the best match by far, is outside them and so
 * not first; every match is still counted, and a page past the window
 * widens it (the oldest is found there). */
TEST(a_common_word_ranks_its_newest_matches)
{
    struct db d;
    REQUIRE(open_db(&d, "window.db"));
    struct hash a = H(1);
    signup(&d, T0, "alice", &a);
    const int N = STORE_SEARCH_RANK_WINDOW + 50;
    post(&d, T0 + 1, &a, "common", "//example.com/0", NULL, NL); /* id 1: the best match */
    for (int i = 1; i < N; i++) {
        char norm[64];
        snprintf(norm, sizeof norm, "//example.com/%d", i);
        post(&d, T0 + 1 + (uint64_t)i, &a, "a common word among several other words here", norm, NULL, NL);
    }
    store_commit(d.st);
    struct store_link links[30];
    size_t n;
    int64_t total;
    REQUIRE(store_search(d.st, "common", 6, 30, 0, links, &n, &total) == STORE_OK);
    CHECK(total == N && n == 30);
    bool oldest = false;
    for (size_t i = 0; i < n; i++)
        oldest |= links[i].id == 1;
    CHECK(!oldest);
    CHECK(links[0].id == N); /* equal scores: newest first */
    /* The last page: offset + limit past the window ranks them all. */
    REQUIRE(store_search(d.st, "common", 6, 30, (unsigned)N - 10, links, &n, &total) == STORE_OK);
    CHECK(total == N && n == 10);
    /* Asked for every match at once, the window holds them all: the best first. */
    struct store_link *all = malloc((size_t)N * sizeof *all);
    REQUIRE(all && store_search(d.st, "common", 6, (unsigned)N, 0, all, &n, &total) == STORE_OK);
    CHECK(n == (size_t)N && all[0].id == 1);
    free(all);
    store_close(d.st);
}

TEST(any_input_is_words_never_query_syntax)
{
    struct db d;
    REQUIRE(open_db(&d, "words.db"));
    struct hash a = H(1);
    signup(&d, T0, "alice", &a);
    post(&d, T0 + 1, &a, "NEAR and AND or NOT: title* ^start", "//ops.example/", NULL, NL); /* 1 */
    post(&d, T0 + 2, &a, "Quotes \"inside\" the title", "//q.example/", NULL, NL);           /* 2 */
    static const char *const nasty[] = {
        "\"", "\"\"", "\"unbalanced", "NEAR(", "NEAR(a b, 3)", "near(title start)", "*", "title*", "-", "-title",
        "^", "^start", "title:near", "{title text}:and", "a OR b", "AND", "OR", "NOT", "NOT and", "(", ")", "((",
        "+", ":", "'", "\\", "%", "_", "\xff\xfe", "\xe2\x80\x94", "\xf0\x9f\x98\x80", "x\x01y", "rank:1",
        "link_fts:title", "* OR *", "\"and\" \"or\"", "a\"b", "NEAR/2",
    };
    char got[256];
    for (size_t i = 0; i < sizeof nasty / sizeof nasty[0]; i++) {
        search_str(&d, nasty[i], got, sizeof got);
        if (!strncmp(got, "error", 5))
            fprintf(stderr, "  input '%s': %s\n", nasty[i], got);
        CHECK(strncmp(got, "error", 5) != 0);
    }
    /* Operators are words like any other. */
    search_str(&d, "NEAR", got, sizeof got);
    CHECK_STR(got, "1 (total 1)");
    search_str(&d, "and OR not", got, sizeof got);
    CHECK_STR(got, "1 (total 1)");
    search_str(&d, "title*", got, sizeof got); /* no prefix query: "title" the word */
    CHECK_STR(got, "2 1 (total 2)");
    search_str(&d, "\"inside\"", got, sizeof got);
    CHECK_STR(got, "2 (total 1)");
    search_str(&d, "-title", got, sizeof got); /* not a negation */
    CHECK_STR(got, "2 1 (total 2)");
    /* A long input: the first STORE_SEARCH_MAX_WORDS words count. */
    static char big[60000];
    size_t o = 0;
    while (o + 8 < sizeof big)
        o += (size_t)snprintf(big + o, sizeof big - o, "title ");
    search_str(&d, big, got, sizeof got);
    CHECK_STR(got, "2 1 (total 2)");
    memset(big, '"', sizeof big - 1);
    big[sizeof big - 1] = 0;
    search_str(&d, big, got, sizeof got);
    CHECK_STR(got, "(total 0)");
    /* The query is quoted words. */
    char q[128];
    store_search_query("a \"b NEAR( c*", 13, q, sizeof q);
    CHECK_STR(q, "\"a\" \"\"\"b\" \"NEAR(\" \"c*\"");
    store_close(d.st);
}

TEST(links_by_domain_include_subdomains_only)
{
    struct db d;
    REQUIRE(open_db(&d, "domain.db"));
    struct hash a = H(1);
    signup(&d, T0, "alice", &a);
    post(&d, T0 + 1, &a, "One", "//example.com/1", NULL, NL);         /* 1 */
    post(&d, T0 + 2, &a, "Two", "//blog.example.com/2", NULL, NL);    /* 2 */
    post(&d, T0 + 3, &a, "Three", "//badexample.com/3", NULL, NL);    /* 3: not a subdomain */
    post(&d, T0 + 4, &a, "Four", "//example.com.evil.org/", NULL, NL); /* 4: neither */
    post(&d, T0 + 5, &a, "Five", "//a.b.example.com:8080/5", NULL, NL); /* 5 */
    post(&d, T0 + 6, &a, "Six", NULL, "a text post", NL);              /* 6: no domain */
    char got[128];
    domain_str(&d, "example.com", got, sizeof got);
    CHECK_STR(got, "5 2 1");
    domain_str(&d, "EXAMPLE.com.", got, sizeof got);
    CHECK_STR(got, "5 2 1");
    domain_str(&d, "www.example.com", got, sizeof got); /* stored without "www." */
    CHECK_STR(got, "5 2 1");
    domain_str(&d, "www.www.example.com", got, sizeof got); /* ... without every "www." */
    CHECK_STR(got, "5 2 1");
    domain_str(&d, "blog.example.com", got, sizeof got);
    CHECK_STR(got, "2");
    domain_str(&d, "com", got, sizeof got);
    CHECK_STR(got, "5 3 2 1");
    domain_str(&d, "ample.com", got, sizeof got);
    CHECK_STR(got, "");
    domain_str(&d, "", got, sizeof got);
    CHECK_STR(got, "");
    domain_str(&d, "a/b", got, sizeof got);
    CHECK_STR(got, "");
    delete_link(&d, T0 + 7, &a, 2);
    domain_str(&d, "example.com", got, sizeof got);
    CHECK_STR(got, "5 1");
    /* Served by the index on the reversed domain. */
    sqlite3_stmt *s;
    REQUIRE(sqlite3_prepare_v2(store_db(d.st), "EXPLAIN QUERY PLAN SELECT id FROM links WHERE deleted = 0 AND"
                               " rdomain >= 'com.example.' AND rdomain < 'com.example/'", -1, &s, NULL) == SQLITE_OK);
    bool indexed = false;
    while (sqlite3_step(s) == SQLITE_ROW)
        indexed |= strstr((const char *)sqlite3_column_text(s, 3), "links_domain") != NULL;
    sqlite3_finalize(s);
    CHECK(indexed);
    store_close(d.st);
}

/* A database of schema 2 (before search) gains the index, built from its
 * live links, and the domains of its links. */
TEST(schema_2_database_gains_the_index)
{
    struct db d;
    REQUIRE(open_db(&d, "v2.db"));
    struct hash a = H(1);
    signup(&d, T0, "alice", &a);
    post(&d, T0 + 1, &a, "Old link about raft", "//old.example.org/", NULL, NL);
    post(&d, T0 + 2, &a, "Deleted raft link", "//gone.example.org/", NULL, NL);
    delete_link(&d, T0 + 3, &a, 2);
    /* Back to schema 2: what schemas 3 to 5 added goes. */
    REQUIRE(sqlite3_exec(store_db(d.st),
                         "DROP TABLE mod_log; ALTER TABLE users DROP COLUMN moderator;"
                         "ALTER TABLE users DROP COLUMN banned;"
                         "DROP TABLE link_flags; DROP TABLE comment_flags; ALTER TABLE links DROP COLUMN flags;"
                         "ALTER TABLE comments DROP COLUMN flags;"
                         "DROP TRIGGER link_fts_update; DROP TABLE link_fts;"
                         "DROP TABLE rate_events; DROP INDEX links_domain; ALTER TABLE links DROP COLUMN domain;"
                         "ALTER TABLE links DROP COLUMN rdomain; UPDATE meta SET v = 2 WHERE k = 'schema';",
                         NULL, NULL, NULL) == SQLITE_OK);
    store_close(d.st);
    REQUIRE(open_db(&d, "v2.db"));
    char got[128];
    search_str(&d, "raft", got, sizeof got);
    CHECK_STR(got, "1 (total 1)");
    domain_str(&d, "example.org", got, sizeof got);
    CHECK_STR(got, "1");
    post(&d, T0 + 4, &a, "New raft link", "//new.example.org/", NULL, NL);
    search_str(&d, "raft", got, sizeof got);
    CHECK_STR(got, "3 1 (total 2)");
    store_close(d.st);
}

TEST(rate_limits_are_decided_at_apply_from_the_log_clock)
{
    struct db d;
    REQUIRE(open_db(&d, "rate.db"));
    struct hash a = H(1), b = H(2);
    signup(&d, T0 - 2 * 24 * HOUR, "old", &b); /* two days old at T0 (the log clock never steps back) */
    signup(&d, T0, "young", &a);
    char norm[64];
    struct store_result r;
    /* A new account: 5 links an hour; the sixth waits for the first to
     * leave the window. */
    for (int i = 0; i < 5; i++) {
        snprintf(norm, sizeof norm, "//y.example/%d", i);
        r = post(&d, T0 + 1000 + (uint64_t)i * 60000, &a, "link", norm, NULL, 0);
        CHECK_EQ_I(r.status, CMD_OK);
    }
    r = post(&d, T0 + 1000 + 5 * 60000, &a, "link", "//y.example/5", NULL, 0);
    CHECK_EQ_I(r.status, CMD_ERR_RATE_LIMITED);
    CHECK_EQ_I(r.count, 3600 - 5 * 60);
    /* Not written: the URL is still free. */
    r = post(&d, T0 + 1000 + HOUR, &a, "link", "//y.example/5", NULL, 0);
    CHECK_EQ_I(r.status, CMD_OK);
    /* The flag of a node started with --rate-limits off lets it past. */
    r = post(&d, T0 + 1000 + HOUR + 1, &a, "link", "//y.example/6", NULL, NL);
    CHECK_EQ_I(r.status, CMD_OK);
    /* An account older than a day: 10 an hour. */
    for (int i = 0; i < 10; i++) {
        snprintf(norm, sizeof norm, "//o.example/%d", i);
        r = post(&d, T0 + 3 * HOUR + (uint64_t)i, &b, "link", norm, NULL, 0);
        CHECK_EQ_I(r.status, CMD_OK);
    }
    r = post(&d, T0 + 3 * HOUR + 10, &b, "link", "//o.example/10", NULL, 0);
    CHECK_EQ_I(r.status, CMD_ERR_RATE_LIMITED);
    CHECK_EQ_I(r.count, 3600);
    /* Comments: one per 10 s for the new account, per 2 s for the old. */
    r = comment(&d, T0 + 4 * HOUR, &a, 1, 0, NULL);
    CHECK_EQ_I(r.status, CMD_OK);
    r = comment(&d, T0 + 4 * HOUR + 4000, &a, 1, 0, "k1");
    CHECK_EQ_I(r.status, CMD_ERR_RATE_LIMITED);
    CHECK_EQ_I(r.count, 6);
    /* The refusal is not remembered under its key: the retry after the
     * wait goes through. */
    r = comment(&d, T0 + 4 * HOUR + 10000, &a, 1, 0, "k1");
    CHECK_EQ_I(r.status, CMD_OK);
    CHECK(!r.replayed);
    r = comment(&d, T0 + 5 * HOUR, &b, 1, 0, NULL);
    CHECK_EQ_I(r.status, CMD_OK);
    r = comment(&d, T0 + 5 * HOUR + 1999, &b, 1, 0, NULL);
    CHECK_EQ_I(r.status, CMD_ERR_RATE_LIMITED);
    CHECK_EQ_I(r.count, 1);
    r = comment(&d, T0 + 5 * HOUR + 2000, &b, 1, 0, NULL);
    CHECK_EQ_I(r.status, CMD_OK);
    /* The young account turns a day old: its comment window shrinks. */
    r = comment(&d, T0 + 24 * HOUR, &a, 1, 0, NULL);
    CHECK_EQ_I(r.status, CMD_OK);
    r = comment(&d, T0 + 24 * HOUR + 2000, &a, 1, 0, NULL);
    CHECK_EQ_I(r.status, CMD_OK);
    /* No session: refused as before, not counted. */
    struct hash nobody = H(9);
    r = post(&d, T0 + 25 * HOUR, &nobody, "x", "//n.example/", NULL, 0);
    CHECK_EQ_I(r.status, CMD_ERR_DENIED);
    /* Old events are pruned as new ones are noted. */
    sqlite3_stmt *s;
    REQUIRE(sqlite3_prepare_v2(store_db(d.st), "SELECT count(*) FROM rate_events WHERE user_id = 2 AND kind = 1",
                               -1, &s, NULL) == SQLITE_OK);
    REQUIRE(sqlite3_step(s) == SQLITE_ROW);
    CHECK(sqlite3_column_int(s, 0) <= 5);
    sqlite3_finalize(s);
    store_close(d.st);
}

static struct store_result flag(struct db *d, uint64_t t, const struct hash *sess, int type, int64_t id)
{
    bool comment = type == CMD_COMMENT_FLAG || type == CMD_COMMENT_UNFLAG;
    struct command c = { .type = (uint8_t)type, .time_ms = t, .session = HS(sess), .link_id = comment ? 0 : id,
                         .comment_id = comment ? id : 0 };
    return apply(d, &c);
}

static void list_str(struct db *d, enum store_sort sort, char *out, size_t cap)
{
    struct store_link links[20];
    size_t n = 0, o = 0;
    out[0] = 0;
    if (store_links(d->st, sort, 20, 0, links, &n) != STORE_OK)
        return;
    for (size_t i = 0; i < n && o < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s%lld", i ? " " : "", (long long)links[i].id);
}

TEST(flags_one_per_user_hide_a_link_from_hot_and_new)
{
    struct db d;
    REQUIRE(open_db(&d, "flags.db"));
    struct hash u[7];
    for (int i = 0; i < 7; i++) {
        char name[16];
        snprintf(name, sizeof name, "user%d", i);
        u[i] = H(i + 1);
        signup(&d, T0, name, &u[i]);
    }
    post(&d, T0 + 1, &u[0], "Spam spam spam", "//spam.example/", NULL, NL); /* 1 */
    post(&d, T0 + 2, &u[0], "Fine", "//fine.example/", NULL, NL);          /* 2 */
    comment(&d, T0 + 3, &u[1], 2, NL, NULL);                                 /* comment 1 */
    char got[64];
    struct store_result r;
    for (int i = 1; i <= 4; i++) {
        r = flag(&d, T0 + 10 + (uint64_t)i, &u[i], CMD_FLAG, 1);
        CHECK(r.status == CMD_OK && r.count == i && r.flag == 1 && r.id == 1);
    }
    r = flag(&d, T0 + 20, &u[4], CMD_FLAG, 1); /* one per user */
    CHECK(r.status == CMD_OK && r.count == 4);
    list_str(&d, STORE_SORT_NEW, got, sizeof got);
    CHECK_STR(got, "2 1");
    r = flag(&d, T0 + 21, &u[5], CMD_FLAG, 1); /* the fifth */
    CHECK(r.status == CMD_OK && r.count == 5);
    list_str(&d, STORE_SORT_NEW, got, sizeof got);
    CHECK_STR(got, "2");
    list_str(&d, STORE_SORT_HOT, got, sizeof got);
    CHECK_STR(got, "2");
    list_str(&d, STORE_SORT_TOP, got, sizeof got); /* only hot and new */
    CHECK_STR(got, "2 1");
    struct store_link l;
    CHECK_EQ_I(store_link_get(d.st, 1, &l), 1); /* its own page stays */
    CHECK_EQ_I(store_flagged(d.st, 6, false, 1), 1);
    CHECK_EQ_I(store_flagged(d.st, 7, false, 1), 0);
    r = flag(&d, T0 + 22, &u[5], CMD_UNFLAG, 1);
    CHECK(r.status == CMD_OK && r.count == 4 && r.flag == 0);
    r = flag(&d, T0 + 23, &u[5], CMD_UNFLAG, 1); /* idempotent */
    CHECK(r.status == CMD_OK && r.count == 4);
    list_str(&d, STORE_SORT_NEW, got, sizeof got);
    CHECK_STR(got, "2 1");
    /* Comments. */
    r = flag(&d, T0 + 24, &u[2], CMD_COMMENT_FLAG, 1);
    CHECK(r.status == CMD_OK && r.count == 1 && r.id == 1);
    CHECK_EQ_I(store_flagged(d.st, 3, true, 1), 1);
    r = flag(&d, T0 + 25, &u[2], CMD_COMMENT_UNFLAG, 1);
    CHECK(r.status == CMD_OK && r.count == 0);
    CHECK_EQ_I(flag(&d, T0 + 26, &u[2], CMD_COMMENT_FLAG, 99).status, CMD_ERR_NOT_FOUND);
    /* Gone links, no session. */
    delete_link(&d, T0 + 27, &u[0], 2);
    CHECK_EQ_I(flag(&d, T0 + 28, &u[1], CMD_FLAG, 2).status, CMD_ERR_NOT_FOUND);
    struct hash nobody = H(50);
    CHECK_EQ_I(flag(&d, T0 + 29, &nobody, CMD_FLAG, 1).status, CMD_ERR_DENIED);
    store_close(d.st);
}

static struct store_result mod(struct db *d, int type, uint64_t t, const struct hash *sess, const char *lname,
                               int64_t id, const char *reason)
{
    struct command c = { .type = (uint8_t)type, .time_ms = t, .lname = S(lname ? lname : ""),
                         .text = S(reason ? reason : "") };
    if (sess)
        c.session = HS(sess);
    if (type == CMD_MOD_DELETE_LINK)
        c.link_id = id;
    if (type == CMD_MOD_DELETE_COMMENT)
        c.comment_id = id;
    return apply(d, &c);
}

TEST(moderators_delete_ban_and_log_publicly)
{
    struct db d;
    REQUIRE(open_db(&d, "mod.db"));
    struct hash m = H(1), u = H(2), u2 = H(3);
    signup(&d, T0, "mia", &m);
    signup(&d, T0, "spammer", &u);
    post(&d, T0 + 1, &u, "Spam", "//spam.example/", NULL, NL);       /* 1 */
    post(&d, T0 + 2, &u, "More spam", "//spam.example/2", NULL, NL); /* 2 */
    comment(&d, T0 + 3, &u, 2, NL, NULL);                            /* comment 1 */
    /* Not yet a moderator. */
    CHECK_EQ_I(mod(&d, CMD_MOD_DELETE_LINK, T0 + 4, &m, NULL, 1, "spam").status, CMD_ERR_FORBIDDEN);
    CHECK_EQ_I(mod(&d, CMD_BAN, T0 + 4, &m, "spammer", 0, "spam").status, CMD_ERR_FORBIDDEN);
    CHECK_EQ_I(mod(&d, CMD_MODERATOR_ADD, T0 + 5, NULL, "nobody", 0, NULL).status, CMD_ERR_NOT_FOUND);
    struct store_result r = mod(&d, CMD_MODERATOR_ADD, T0 + 5, NULL, "mia", 0, NULL);
    CHECK(r.status == CMD_OK && r.id == 1);
    bool is_mod, banned;
    REQUIRE(store_user_roles(d.st, 1, &is_mod, &banned) == STORE_OK);
    CHECK(is_mod && !banned);
    CHECK_EQ_I(mod(&d, CMD_MOD_DELETE_LINK, T0 + 6, &m, NULL, 1, "spam, plainly").status, CMD_OK);
    struct store_link l;
    CHECK_EQ_I(store_link_get(d.st, 1, &l), 0);
    CHECK_EQ_I(mod(&d, CMD_MOD_DELETE_LINK, T0 + 6, &m, NULL, 1, "again").status, CMD_ERR_NOT_FOUND);
    CHECK_EQ_I(mod(&d, CMD_MOD_DELETE_COMMENT, T0 + 7, &m, NULL, 1, "rude").status, CMD_OK);
    struct store_comment cm;
    CHECK_EQ_I(store_comment_get(d.st, 1, &cm), 0);
    /* A ban ends every session of the user; a new one writes nothing. */
    CHECK_EQ_I(mod(&d, CMD_BAN, T0 + 8, &m, "spammer", 0, "spam run").status, CMD_OK);
    struct store_user su;
    CHECK_EQ_I(store_session_user(d.st, (const uint8_t *)u.b, T0 + 9, &su), 0);
    struct command login = { .type = CMD_SESSION_CREATE, .time_ms = T0 + 9, .lname = S("spammer"), .session = HS(&u2) };
    CHECK_EQ_I(apply(&d, &login).status, CMD_OK);
    CHECK_EQ_I(post(&d, T0 + 10, &u2, "Still spam", "//spam.example/3", NULL, NL).status, CMD_ERR_BANNED);
    struct command lk = { .type = CMD_LIKE, .time_ms = T0 + 10, .session = HS(&u2), .link_id = 2 };
    CHECK_EQ_I(apply(&d, &lk).status, CMD_ERR_BANNED);
    CHECK_EQ_I(mod(&d, CMD_UNBAN, T0 + 11, &m, "spammer", 0, "").status, CMD_OK);
    CHECK_EQ_I(post(&d, T0 + 12, &u2, "Reformed", "//good.example/", NULL, NL).status, CMD_OK);
    CHECK_EQ_I(mod(&d, CMD_MODERATOR_REMOVE, T0 + 13, NULL, "MIA", 0, NULL).status, CMD_OK);
    CHECK_EQ_I(mod(&d, CMD_MOD_DELETE_LINK, T0 + 14, &m, NULL, 2, "x").status, CMD_ERR_FORBIDDEN);
    /* The public log, newest first. */
    struct store_mod_action *a = calloc(10, sizeof *a);
    size_t n = 0;
    REQUIRE(store_mod_log(d.st, 10, 0, a, &n) == STORE_OK);
    CHECK_EQ_U(n, 6);
    if (n == 6) {
        CHECK(!strcmp(a[0].action, "moderator_remove") && !strcmp(a[0].target, "user/mia") && !a[0].moderator[0]);
        CHECK(!strcmp(a[1].action, "unban") && !strcmp(a[1].moderator, "mia"));
        CHECK(!strcmp(a[2].action, "ban") && !strcmp(a[2].target, "user/spammer") && !strcmp(a[2].reason, "spam run"));
        CHECK(!strcmp(a[3].action, "delete_comment") && !strcmp(a[3].target, "comment/1"));
        CHECK(!strcmp(a[4].action, "delete_link") && !strcmp(a[4].target, "link/1") &&
              !strcmp(a[4].reason, "spam, plainly") && a[4].created_ms == T0 + 6);
        CHECK(!strcmp(a[5].action, "moderator_add"));
    }
    free(a);
    store_close(d.st);
}

/* A command with flags is version 2 on the wire; without, version 1 as
 * before; unknown flag bits are refused. */
TEST(command_flags_encoding)
{
    struct hash a = H(1);
    struct command c = { .type = CMD_LINK_POST, .time_ms = 5, .session = HS(&a), .title = S("t"), .url = S("u"),
                         .url_norm = S("n") };
    uint8_t buf[256];
    long n = command_encode(&c, buf, sizeof buf);
    REQUIRE(n > 0);
    CHECK_EQ_U(buf[0], 1);
    CHECK_EQ_U((size_t)n, command_size(&c));
    c.flags = COMMAND_FLAG_NO_RATE_LIMIT;
    n = command_encode(&c, buf, sizeof buf);
    REQUIRE(n > 0);
    CHECK_EQ_U(buf[0], 2);
    CHECK_EQ_U((size_t)n, command_size(&c));
    struct command back;
    REQUIRE(command_decode(&back, buf, (size_t)n) == 0);
    CHECK_EQ_U(back.flags, COMMAND_FLAG_NO_RATE_LIMIT);
    CHECK_EQ_U(back.time_ms, 5);
    buf[2] = 0x80;
    CHECK(command_decode(&back, buf, (size_t)n) != 0);
    buf[2] = 0; /* version 2 without flags is not the one encoding */
    CHECK(command_decode(&back, buf, (size_t)n) != 0);
    c.flags = 0x80;
    CHECK(command_encode(&c, buf, sizeof buf) < 0);
}

/* The segments of the full-text index (FTS5 writes each flush of its
 * pending terms as one). */
static int fts_segments(struct db *d)
{
    sqlite3_stmt *s = NULL;
    int n = -1;
    if (sqlite3_prepare_v2(store_db(d->st), "SELECT count(DISTINCT segid) FROM link_fts_idx", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        n = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return n;
}

/* The posts of one apply transaction reach the index as one segment: FTS5
 * keeps their terms in memory until the commit. Indexed by a trigger, each
 * post's INSERT ran in a statement transaction whose savepoint made FTS5
 * write a segment per post (and merge them after): 60% of a post's apply.
 * Likes, comments and repeated URLs in between must not write one either. */
TEST(posts_of_one_transaction_are_indexed_as_one_segment)
{
    struct db d;
    REQUIRE(open_db(&d, "batch.db"));
    struct hash a = H(1), b = H(2);
    signup(&d, T0, "alice", &a);
    signup(&d, T0, "bob", &b);
    post(&d, T0 + 1, &a, "First raft link", "//first.example.org/", NULL, COMMAND_FLAG_NO_RATE_LIMIT);
    REQUIRE(store_commit(d.st) == STORE_OK);
    /* No merging, so that every segment written stays countable. */
    REQUIRE(sqlite3_exec(store_db(d.st), "INSERT INTO link_fts(link_fts, rank) VALUES ('automerge', 0)", NULL, NULL,
                         NULL) == SQLITE_OK);
    int before = fts_segments(&d);
    CHECK_EQ_I(before, 1);
    for (int i = 0; i < 12; i++) {
        char title[64], norm[64];
        snprintf(title, sizeof title, "Raft link number %d", i);
        snprintf(norm, sizeof norm, "//batch.example.org/%d", i);
        if (i % 2) {
            struct command c = { .type = CMD_LINK_POST, .flags = COMMAND_FLAG_NO_RATE_LIMIT, .time_ms = T0 + 10 + i,
                                 .session = HS(&b), .title = S(title), .url = S(norm), .url_norm = S(norm) };
            CHECK_EQ_I(apply(&d, &c).status, CMD_OK);
        } else {
            CHECK_EQ_I(post(&d, T0 + 10 + i, &a, title, i % 4 ? norm : NULL, "with a text about raft",
                            COMMAND_FLAG_NO_RATE_LIMIT).status, CMD_OK);
        }
        struct command like = { .type = CMD_LIKE, .time_ms = T0 + 10 + i, .session = HS(&b), .link_id = 1 };
        CHECK_EQ_I(apply(&d, &like).status, CMD_OK);
        CHECK_EQ_I(comment(&d, T0 + 10 + i, &b, 1, COMMAND_FLAG_NO_RATE_LIMIT, NULL).status, CMD_OK);
        CHECK_EQ_I(post(&d, T0 + 10 + i, &b, "Again", "//first.example.org/", NULL, COMMAND_FLAG_NO_RATE_LIMIT).status,
                   CMD_ERR_CONFLICT);
    }
    REQUIRE(store_commit(d.st) == STORE_OK);
    CHECK_EQ_I(fts_segments(&d), before + 1);
    char got[128];
    search_str(&d, "raft", got, sizeof got);
    CHECK(strstr(got, "(total 13)") != NULL);
    store_close(d.st);
}

/* A reader (a search on a worker's own connection) sees what the store
 * committed, never what is applied since, and says at which index; its
 * texts come from the same state. */
TEST(a_reader_sees_what_is_committed_and_says_its_index)
{
    struct db d;
    REQUIRE(open_db(&d, "reader.db"));
    struct hash a = H(1);
    signup(&d, T0, "alice", &a);
    post(&d, T0 + 1, &a, "Raft in a reader", NULL, "the text of it", NL); /* 2 */
    REQUIRE(store_commit(d.st) == STORE_OK);
    post(&d, T0 + 2, &a, "Raft not yet committed", "//example.com/x", NULL, NL); /* 3, applied only */
    struct store_reader *rd = store_reader_new(d.st);
    REQUIRE(rd);
    struct store_link links[10];
    char *texts[10];
    struct store_search_page page = { .links = links, .texts = texts };
    REQUIRE(store_reader_search(rd, "raft", 4, 10, 0, &page) == STORE_OK);
    CHECK(page.n == 1 && page.total == 1 && !page.total_capped && page.index == 2);
    CHECK(page.n == 1 && links[0].id == 1 && texts[0] && !strcmp(texts[0], "the text of it"));
    free(texts[0]);
    REQUIRE(store_commit(d.st) == STORE_OK);
    REQUIRE(store_reader_search(rd, "raft", 4, 10, 0, &page) == STORE_OK);
    CHECK(page.n == 2 && page.total == 2 && page.index == 3 && links[0].id == 2 && !texts[0]);
    free(texts[1]);
    /* The loop's own search and the reader's agree. */
    size_t n;
    int64_t total;
    REQUIRE(store_search(d.st, "raft", 4, 10, 0, links, &n, &total) == STORE_OK);
    CHECK(n == 2 && total == 2);
    store_reader_free(rd);
    store_close(d.st);
}

/* The count stops at STORE_SEARCH_COUNT_CAP, saying so; a page is still
 * the best of the newest matches. A search out of CPU budget stops. (The rows are put in by SQL, as
 * bench/search_db.c does: the same rows and index, in a fraction of the
 * time of applying them.) */
TEST(a_count_stops_at_the_cap_and_a_search_at_its_budget)
{
    struct db d;
    REQUIRE(open_db(&d, "cap.db"));
    struct hash a = H(1);
    signup(&d, T0, "alice", &a);
    REQUIRE(store_commit(d.st) == STORE_OK);
    sqlite3 *db = store_db(d.st);
    const int N = STORE_SEARCH_COUNT_CAP + 25;
    REQUIRE(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_stmt *s;
    REQUIRE(sqlite3_prepare_v2(db, "INSERT INTO links(author_id, title, url, url_norm, created, likes, hot, domain,"
                                   " rdomain) VALUES (1, ?1, 'https://e.example/', ?2, ?3, 0, 0, 'e.example',"
                                   " 'example.e.')", -1, &s, NULL) == SQLITE_OK);
    for (int i = 0; i < N; i++) {
        char norm[32];
        snprintf(norm, sizeof norm, "//e.example/%d", i);
        sqlite3_bind_text(s, 1, i % 2 ? "common and odd" : "common", -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, norm, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s, 3, (int64_t)T0 + i);
        REQUIRE(sqlite3_step(s) == SQLITE_DONE);
        sqlite3_reset(s);
    }
    sqlite3_finalize(s);
    REQUIRE(sqlite3_exec(db, "INSERT INTO link_fts(link_fts) VALUES('rebuild'); COMMIT", NULL, NULL, NULL) ==
            SQLITE_OK);
    struct store_reader *rd = store_reader_new(d.st);
    REQUIRE(rd);
    store_reader_set_budget(rd, 600000); /* what is tested here is the cap, at any speed (ASan's too) */
    struct store_link links[5];
    char *texts[5];
    struct store_search_page page = { .links = links, .texts = texts };
    REQUIRE(store_reader_search(rd, "common", 6, 5, 0, &page) == STORE_OK);
    CHECK(page.total == STORE_SEARCH_COUNT_CAP && page.total_capped && page.n == 5);
    CHECK(page.n == 5 && links[0].id == N); /* "common" alone is the better match: the newest such */
    REQUIRE(store_reader_search(rd, "odd", 3, 5, 0, &page) == STORE_OK);
    CHECK(page.total == N / 2 && !page.total_capped);
    /* A page past the cap counts as deep as it reaches. */
    REQUIRE(store_reader_search(rd, "common", 6, 5, (unsigned)N - 3, &page) == STORE_OK);
    CHECK(page.total == N && !page.total_capped && page.n == 3);
    /* With no budget left, the walk stops where it got to and the ranking
     * is given up or ranks that far: never the whole. */
    store_reader_set_budget(rd, 0);
    int rc = store_reader_search(rd, "common", 6, 5, 0, &page);
    CHECK(rc == STORE_EAGAIN || (rc == STORE_OK && page.total_capped && page.total < STORE_SEARCH_COUNT_CAP));
    CHECK(rc != STORE_EAGAIN || (page.n == 0 && strstr(store_reader_errmsg(rd), "CPU time")));
    store_reader_set_budget(rd, 600000);
    REQUIRE(store_reader_search(rd, "odd", 3, 5, 0, &page) == STORE_OK); /* and the next search is whole */
    CHECK(page.total == N / 2 && !page.total_capped);
    store_reader_free(rd);
    store_close(d.st);
}

/* A restore replaces the files under a reader: its next search reads the
 * new ones (not the old file it still has open). */
TEST(a_reader_follows_a_restore)
{
    struct db d, other;
    REQUIRE(open_db(&other, "restored-from.db"));
    struct hash a = H(1);
    signup(&other, T0, "alice", &a);
    post(&other, T0 + 1, &a, "Only in the snapshot", "//snap.example/", NULL, NL);
    REQUIRE(store_commit(other.st) == STORE_OK);
    store_close(other.st);
    char from[128], snap[128], err[256];
    snprintf(from, sizeof from, "%s/restored-from.db", dir);
    snprintf(snap, sizeof snap, "%s/snapshot.db", dir);
    uint64_t index;
    REQUIRE(store_snapshot(from, snap, &index, err, sizeof err) == STORE_OK);

    REQUIRE(open_db(&d, "restored.db"));
    signup(&d, T0, "bob", &a);
    post(&d, T0 + 1, &a, "Only before the restore", "//before.example/", NULL, NL);
    REQUIRE(store_commit(d.st) == STORE_OK);
    struct store_reader *rd = store_reader_new(d.st);
    REQUIRE(rd);
    struct store_link links[5];
    char *texts[5];
    struct store_search_page page = { .links = links, .texts = texts };
    REQUIRE(store_reader_search(rd, "only", 4, 5, 0, &page) == STORE_OK);
    CHECK(page.n == 1 && !strcmp(links[0].title, "Only before the restore"));
    REQUIRE(store_restore(d.st, snap, err, sizeof err) == STORE_OK);
    REQUIRE(store_reader_search(rd, "only", 4, 5, 0, &page) == STORE_OK);
    CHECK(page.n == 1 && !strcmp(links[0].title, "Only in the snapshot") && page.index == index);
    store_reader_free(rd);
    store_close(d.st);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/linkraft-search-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    RUN(search_follows_posts_edits_and_deletes_best_match_first);
    RUN(a_common_word_ranks_its_newest_matches);
    RUN(any_input_is_words_never_query_syntax);
    RUN(links_by_domain_include_subdomains_only);
    RUN(schema_2_database_gains_the_index);
    RUN(posts_of_one_transaction_are_indexed_as_one_segment);
    RUN(rate_limits_are_decided_at_apply_from_the_log_clock);
    RUN(command_flags_encoding);
    RUN(flags_one_per_user_hide_a_link_from_hot_and_new);
    RUN(moderators_delete_ban_and_log_publicly);
    RUN(a_reader_sees_what_is_committed_and_says_its_index);
    RUN(a_count_stops_at_the_cap_and_a_search_at_its_budget);
    RUN(a_reader_follows_a_restore);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return HARNESS_END();
}
