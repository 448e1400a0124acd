/*
 * test_store_site.c — the site's part of the state machine: sign-up with
 * case-insensitive names, sessions (create, expiry in log time, logout),
 * links (duplicate URLs), likes (one per user, both directions idempotent,
 * hot score recomputed), idempotency keys, malformed commands, the log
 * clock, determinism across replicas and batchings, snapshot/restore, and
 * the query plans that keep the front page cheap at any size.
 */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../harness.h"
#include "command.h"
#include "store.h"

static char dir[64];

/* These logs post far faster than a person: as a cluster started with
 * --rate-limits off proposes them. The limits have tests of their own. */
#define NO_LIMIT COMMAND_FLAG_NO_RATE_LIMIT

static struct command_str S(const char *s) { return (struct command_str){ s, (uint16_t)strlen(s) }; }

/* A fake token hash: 32 bytes derived from a small number. */
struct hash { char b[COMMAND_HASH_LEN]; };
static struct hash H(int n)
{
    struct hash h;
    for (int i = 0; i < COMMAND_HASH_LEN; i++)
        h.b[i] = (char)(n * 31 + i);
    return h;
}
static struct command_str HS(const struct hash *h) { return (struct command_str){ h->b, COMMAND_HASH_LEN }; }

/* A log under construction: entries with consecutive indexes. */
struct log {
    struct store_entry e[4096];
    size_t n;
};

static void add(struct log *l, const struct command *c)
{
    size_t size = command_size(c);
    uint8_t *buf = malloc(size);
    long len = command_encode(c, buf, size);
    if (len < 0) {
        fprintf(stderr, "cannot encode a test command of type %d\n", c->type);
        abort();
    }
    l->e[l->n] = (struct store_entry){ .index = l->n + 1, .command = true,
                                      .len = (size_t)len, .data = buf };
    l->n++;
}

static void add_raw(struct log *l, const uint8_t *data, size_t len)
{
    uint8_t *buf = malloc(len ? len : 1);
    memcpy(buf, data, len);
    l->e[l->n] = (struct store_entry){ .index = l->n + 1, .command = true,
                                      .len = (size_t)len, .data = buf };
    l->n++;
}

static void log_free(struct log *l)
{
    for (size_t i = 0; i < l->n; i++)
        free((void *)l->e[i].data);
    l->n = 0;
}

static void signup(struct log *l, uint64_t t, const char *name, const char *lname, const struct hash *sess)
{
    struct command c = { .type = CMD_SIGNUP, .time_ms = t, .name = S(name), .lname = S(lname),
                         .pwhash = S("$argon2id$v=19$m=19456,t=2,p=1$fake"), .session = HS(sess) };
    add(l, &c);
}

static void login(struct log *l, uint64_t t, const char *lname, const struct hash *sess)
{
    struct command c = { .type = CMD_SESSION_CREATE, .time_ms = t, .lname = S(lname), .session = HS(sess) };
    add(l, &c);
}

static void logout(struct log *l, uint64_t t, const struct hash *sess)
{
    struct command c = { .type = CMD_SESSION_DELETE, .time_ms = t, .session = HS(sess) };
    add(l, &c);
}

static void post(struct log *l, uint64_t t, const struct hash *sess, const char *title, const char *url,
                 const char *idem)
{
    struct command c = { .flags = NO_LIMIT, .type = CMD_LINK_POST, .time_ms = t, .session = HS(sess), .title = S(title),
                         .url = S(url), .url_norm = S(url), .scope = S("u"), .idem_key = S(idem ? idem : "") };
    add(l, &c);
}

static void like(struct log *l, uint64_t t, const struct hash *sess, int64_t id, int on)
{
    struct command c = { .type = on ? CMD_LIKE : CMD_UNLIKE, .time_ms = t, .session = HS(sess), .link_id = id };
    add(l, &c);
}

static struct store *open_db(const char *name)
{
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct store *st = NULL;
    if (store_open(path, &st, err, sizeof err) != STORE_OK) {
        fprintf(stderr, "store_open %s: %s\n", path, err);
        return NULL;
    }
    return st;
}

/* Applies the whole log in one batch; results has l->n slots. */
static int apply_all(struct store *st, const struct log *l, struct store_result *results)
{
    return store_apply(st, l->e, l->n, results);
}

static const uint64_t T0 = 1700000000000ull; /* some time in 2023, in ms */

TEST(signup_names_are_unique_case_insensitively)
{
    struct store *st = open_db("signup.db");
    REQUIRE(st);
    static struct log l;
    struct hash h1 = H(1), h2 = H(2);
    signup(&l, T0, "Alice", "alice", &h1);
    signup(&l, T0 + 1, "ALICE", "alice", &h2);
    signup(&l, T0 + 2, "bob_2", "bob_2", &h2);
    struct store_result r[3];
    REQUIRE(apply_all(st, &l, r) == STORE_OK);
    CHECK_EQ_I(r[0].status, CMD_OK);
    CHECK_EQ_I(r[0].id, 1);
    CHECK_STR(r[0].text, "Alice");
    CHECK_EQ_I(r[1].status, CMD_ERR_CONFLICT);
    CHECK_EQ_I(r[1].id, 1);
    CHECK_EQ_I(r[2].status, CMD_OK);
    CHECK_EQ_I(r[2].id, 2);

    struct store_user u;
    CHECK_EQ_I(store_user_by_name(st, "aLiCe", 5, &u), 1);
    CHECK_STR(u.name, "Alice");
    CHECK_STR(u.lname, "alice");
    CHECK_EQ_U(u.created_ms, T0);
    CHECK(strncmp(u.pwhash, "$argon2id$", 10) == 0);
    CHECK_EQ_I(store_user_by_name(st, "carol", 5, &u), 0);
    CHECK_EQ_I(store_user_by_name(st, "a-name-longer-than-any-allowed-name", 35, &u), 0);
    /* The sign-up's session works at once: signing up logs in. */
    CHECK_EQ_I(store_session_user(st, (const uint8_t *)h1.b, T0 + 10, &u), 1);
    CHECK_STR(u.name, "Alice");
    store_close(st);
    log_free(&l);
}

TEST(sessions_expire_and_logout_everywhere)
{
    struct store *st = open_db("sessions.db");
    REQUIRE(st);
    static struct log l;
    struct hash h1 = H(1), h2 = H(2), h3 = H(3);
    signup(&l, T0, "alice", "alice", &h1);
    login(&l, T0 + 100, "alice", &h2);
    login(&l, T0 + 101, "nobody", &h3);
    logout(&l, T0 + 200, &h1);
    logout(&l, T0 + 201, &h1); /* twice: still fine */
    struct store_result r[5];
    REQUIRE(apply_all(st, &l, r) == STORE_OK);
    CHECK_EQ_I(r[1].status, CMD_OK);
    CHECK_STR(r[1].text, "alice");
    CHECK_EQ_I(r[2].status, CMD_ERR_NOT_FOUND);
    CHECK_EQ_I(r[3].status, CMD_OK);
    CHECK_EQ_I(r[4].status, CMD_OK);
    struct store_user u;
    CHECK_EQ_I(store_session_user(st, (const uint8_t *)h1.b, T0 + 300, &u), 0); /* logged out */
    CHECK_EQ_I(store_session_user(st, (const uint8_t *)h2.b, T0 + 300, &u), 1);
    CHECK_EQ_I(store_session_user(st, (const uint8_t *)h3.b, T0 + 300, &u), 0);
    /* Expiry: 30 days of log time after the login; the reader's clock decides. */
    uint64_t exp = T0 + 100 + COMMAND_SESSION_TTL_MS;
    CHECK_EQ_I(store_session_user(st, (const uint8_t *)h2.b, exp - 1, &u), 1);
    CHECK_EQ_I(store_session_user(st, (const uint8_t *)h2.b, exp, &u), 0);
    /* A post with the logged-out session is refused by the state machine. */
    log_free(&l);
    for (int i = 0; i < 5; i++)
        l.e[i].index = 0;
    l.n = 5; /* keep indexes going */
    post(&l, T0 + 400, &h1, "t", "http://a.example/", NULL);
    post(&l, T0 + 401, &h2, "t", "http://a.example/", NULL);
    /* And one after the session expired in log time. */
    post(&l, exp + 5, &h2, "t2", "http://b.example/", NULL);
    REQUIRE(store_apply(st, l.e + 5, 3, r) == STORE_OK);
    CHECK_EQ_I(r[0].status, CMD_ERR_DENIED);
    CHECK_EQ_I(r[1].status, CMD_OK);
    CHECK_EQ_I(r[2].status, CMD_ERR_DENIED);
    for (size_t i = 5; i < l.n; i++)
        free((void *)l.e[i].data);
    l.n = 0;
    store_close(st);
}

TEST(links_duplicates_likes_and_hot_score)
{
    struct store *st = open_db("links.db");
    REQUIRE(st);
    static struct log l;
    struct hash a = H(1), b = H(2);
    signup(&l, T0, "alice", "alice", &a);
    signup(&l, T0, "bob", "bob", &b);
    post(&l, T0 + 1000, &a, "First", "http://one.example/", NULL);   /* link 1 */
    post(&l, T0 + 2000, &b, "Second", "http://two.example/", NULL);  /* link 2 */
    post(&l, T0 + 3000, &b, "Again", "http://one.example/", NULL);   /* duplicate of 1 */
    like(&l, T0 + 4000, &b, 1, 1);
    like(&l, T0 + 4001, &b, 1, 1);  /* twice = one like */
    like(&l, T0 + 4002, &a, 1, 1);
    like(&l, T0 + 4003, &a, 2, 0);  /* unlike of nothing */
    like(&l, T0 + 4004, &a, 99, 1); /* no such link */
    like(&l, T0 + 4005, &a, 1, 0);
    like(&l, T0 + 4006, &a, 1, 0);  /* unlike twice */
    struct store_result r[12];
    REQUIRE(apply_all(st, &l, r) == STORE_OK);
    CHECK_EQ_I(r[2].status, CMD_OK);
    CHECK_EQ_I(r[2].id, 1);
    CHECK_EQ_I(r[3].id, 2);
    CHECK_EQ_I(r[4].status, CMD_ERR_CONFLICT);
    CHECK_EQ_I(r[4].id, 1);
    CHECK(r[5].status == CMD_OK && r[5].count == 1 && r[5].flag == 1);
    CHECK(r[6].status == CMD_OK && r[6].count == 1 && r[6].flag == 1);
    CHECK(r[7].status == CMD_OK && r[7].count == 2);
    CHECK(r[8].status == CMD_OK && r[8].count == 0 && r[8].flag == 0);
    CHECK_EQ_I(r[9].status, CMD_ERR_NOT_FOUND);
    CHECK(r[10].status == CMD_OK && r[10].count == 1 && r[10].flag == 0);
    CHECK(r[11].status == CMD_OK && r[11].count == 1);

    struct store_link k;
    REQUIRE(store_link_get(st, 1, &k) == 1);
    CHECK_STR(k.title, "First");
    CHECK_STR(k.author, "alice");
    CHECK_EQ_U(k.created_ms, T0 + 1000);
    CHECK_EQ_I(k.likes, 1);
    CHECK(fabs(k.hot - store_hot_score(1, T0 + 1000)) < 1e-12);
    CHECK_EQ_I(store_link_get(st, 3, &k), 0);
    int64_t id = 0;
    CHECK_EQ_I(store_link_by_url(st, "http://two.example/", 19, &id), 1);
    CHECK_EQ_I(id, 2);
    CHECK_EQ_I(store_link_by_url(st, "http://three.example/", 21, &id), 0);

    int64_t ids[3] = { 1, 2, 99 };
    uint8_t liked[3];
    struct store_user bob;
    REQUIRE(store_user_by_name(st, "bob", 3, &bob) == 1);
    int64_t bob_links = -1, bob_likes = -1;
    CHECK_EQ_I(store_user_counts(st, bob.id, &bob_links, &bob_likes), STORE_OK);
    CHECK_EQ_I(bob_links, 1);
    CHECK_EQ_I(bob_likes, 1);
    CHECK_EQ_I(store_liked(st, bob.id, ids, 3, liked), STORE_OK);
    CHECK(liked[0] == 1 && liked[1] == 0 && liked[2] == 0);

    struct store_link page[10];
    size_t n;
    CHECK_EQ_I(store_links(st, STORE_SORT_NEW, 10, 0, page, &n), STORE_OK);
    CHECK(n == 2 && page[0].id == 2 && page[1].id == 1);
    CHECK_EQ_I(store_links(st, STORE_SORT_TOP, 10, 0, page, &n), STORE_OK);
    CHECK(n == 2 && page[0].id == 1 && page[1].id == 2);
    /* Hot: link 2 is newer by 1 s, link 1 has one like: log10(1) = 0, so the
     * newer wins. */
    CHECK_EQ_I(store_links(st, STORE_SORT_HOT, 10, 0, page, &n), STORE_OK);
    CHECK(n == 2 && page[0].id == 2);
    CHECK_EQ_I(store_links(st, STORE_SORT_NEW, 1, 1, page, &n), STORE_OK);
    CHECK(n == 1 && page[0].id == 1);
    CHECK_EQ_I(store_links(st, STORE_SORT_NEW, 10, 5, page, &n), STORE_OK);
    CHECK_EQ_U(n, 0);
    CHECK_EQ_I(store_links_by_user(st, bob.id, 10, 0, page, &n), STORE_OK);
    CHECK(n == 1 && page[0].id == 2);
    int64_t users, links;
    CHECK_EQ_I(store_counts(st, &users, &links), STORE_OK);
    CHECK(users == 2 && links == 2);
    store_close(st);
    log_free(&l);
}

TEST(hot_score_is_reddits)
{
    /* 1134028003 s is the epoch of the formula: score 0 for one like. */
    CHECK(fabs(store_hot_score(0, 1134028003000ull)) < 1e-12);
    CHECK(fabs(store_hot_score(1, 1134028003000ull)) < 1e-12);
    CHECK(fabs(store_hot_score(10, 1134028003000ull) - 1.0) < 1e-12);
    CHECK(fabs(store_hot_score(100, 1134028003000ull + 45000000ull) - 3.0) < 1e-12);
    /* 12.5 hours of age is worth a factor of ten in likes. */
    CHECK(store_hot_score(10, T0) < store_hot_score(1, T0 + 45000000ull + 1000));
}

TEST(idempotency_key_repeat_returns_the_first_result)
{
    struct store *st = open_db("idem.db");
    REQUIRE(st);
    static struct log l;
    struct hash a = H(1);
    signup(&l, T0, "alice", "alice", &a);
    post(&l, T0 + 1, &a, "One", "http://one.example/", "k1");
    post(&l, T0 + 2, &a, "One", "http://one.example/", "k1"); /* a retry */
    post(&l, T0 + 3, &a, "One", "http://one.example/", "k2"); /* a new request */
    struct store_result r[4];
    REQUIRE(apply_all(st, &l, r) == STORE_OK);
    CHECK(r[1].status == CMD_OK && r[1].id == 1 && !r[1].replayed);
    CHECK(r[2].status == CMD_OK && r[2].id == 1 && r[2].replayed);
    CHECK(r[3].status == CMD_ERR_CONFLICT && r[3].id == 1 && !r[3].replayed);
    int64_t users, links;
    CHECK_EQ_I(store_counts(st, &users, &links), STORE_OK);
    CHECK_EQ_I(links, 1);
    store_close(st);
    log_free(&l);
}

TEST(malformed_commands_are_refused_identically)
{
    struct hash a = H(1);
    /* The encoder refuses what the decoder would. */
    uint8_t buf[8192];
    struct command bad_session = { .type = CMD_SESSION_DELETE, .session = S("short") };
    CHECK_EQ_I(command_encode(&bad_session, buf, sizeof buf), -1);
    char longname[40];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    struct command bad_name = { .type = CMD_SESSION_CREATE, .lname = S(longname), .session = HS(&a) };
    CHECK_EQ_I(command_encode(&bad_name, buf, sizeof buf), -1);
    struct command unknown = { .type = 77 };
    CHECK_EQ_I(command_encode(&unknown, buf, sizeof buf), -1);

    /* Every truncation of every site command fails to decode. */
    struct command cs[] = {
        { .type = CMD_SIGNUP, .time_ms = 5, .name = S("Al"), .lname = S("al"), .pwhash = S("h"), .session = HS(&a) },
        { .type = CMD_SESSION_CREATE, .lname = S("al"), .session = HS(&a) },
        { .type = CMD_SESSION_DELETE, .session = HS(&a) },
        { .type = CMD_LINK_POST, .session = HS(&a), .title = S("t"), .url = S("u"), .url_norm = S("n") },
        { .type = CMD_LIKE, .session = HS(&a), .link_id = 7 },
        { .type = CMD_UNLIKE, .session = HS(&a), .link_id = 7 },
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        long len = command_encode(&cs[i], buf, sizeof buf);
        REQUIRE(len > 0);
        CHECK_EQ_U((size_t)len, command_size(&cs[i]));
        struct command d;
        CHECK_EQ_I(command_decode(&d, buf, (size_t)len), 0);
        CHECK_EQ_I(d.type, cs[i].type);
        CHECK_EQ_I(d.link_id, cs[i].link_id);
        CHECK(d.session.len == COMMAND_HASH_LEN && memcmp(d.session.p, a.b, COMMAND_HASH_LEN) == 0);
        for (long cut = 0; cut < len; cut++)
            CHECK_EQ_I(command_decode(&d, buf, (size_t)cut), -1);
        buf[len] = 0;
        CHECK_EQ_I(command_decode(&d, buf, (size_t)len + 1), -1);
    }

    /* Two replicas give the same refusals, and the log goes on. */
    struct store *s1 = open_db("mal1.db"), *s2 = open_db("mal2.db");
    REQUIRE(s1 && s2);
    static struct log l;
    signup(&l, T0, "alice", "alice", &a);
    uint8_t junk[] = { 1, CMD_LINK_POST, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 'a', 'b', 'c' };
    add_raw(&l, junk, sizeof junk);          /* session hash of 3 bytes */
    post(&l, T0 + 1, &a, "", "http://x.example/", NULL); /* empty title */
    /* A post whose lengths are fine but the hash is 31 bytes long. */
    long len = command_encode(&cs[4], buf, sizeof buf);
    REQUIRE(len > 0);
    buf[14 + 0] = 31;                        /* session length field */
    add_raw(&l, buf, (size_t)len);
    struct store_result r1[4], r2[4];
    REQUIRE(apply_all(s1, &l, r1) == STORE_OK);
    for (size_t i = 0; i < l.n; i++)
        CHECK_EQ_I(store_apply(s2, &l.e[i], 1, &r2[i]), STORE_OK);
    for (int i = 1; i < 4; i++) {
        CHECK_EQ_I(r1[i].status, CMD_ERR_MALFORMED);
        CHECK_EQ_I(r2[i].status, CMD_ERR_MALFORMED);
    }
    CHECK_EQ_U(store_applied(s1), 4);
    CHECK_EQ_U(store_applied(s2), 4);
    store_close(s1);
    store_close(s2);
    log_free(&l);
}

/* A leader whose clock is behind the previous one's: the log clock keeps
 * expiry decisions identical whatever the batching. */
TEST(log_clock_never_steps_back)
{
    struct store *s1 = open_db("clock1.db"), *s2 = open_db("clock2.db");
    REQUIRE(s1 && s2);
    static struct log l;
    struct hash a = H(1);
    signup(&l, T0, "alice", "alice", &a);
    uint64_t exp = T0 + COMMAND_SESSION_TTL_MS;
    post(&l, exp + 10, &a, "late", "http://late.example/", NULL); /* denied: expired */
    post(&l, exp - 10, &a, "skewed", "http://skew.example/", NULL); /* a slow clock: still past expiry */
    struct store_result r1[4], r2[4];
    REQUIRE(apply_all(s1, &l, r1) == STORE_OK);
    for (size_t i = 0; i < l.n; i++)
        REQUIRE(store_apply(s2, &l.e[i], 1, &r2[i]) == STORE_OK);
    CHECK_EQ_I(r1[1].status, CMD_ERR_DENIED);
    CHECK_EQ_I(r1[2].status, CMD_ERR_DENIED);
    CHECK_EQ_I(r2[2].status, CMD_ERR_DENIED);
    store_close(s1);
    /* The clock survives a restart: a login proposed with a clock far
     * behind gets its expiry from the log clock (exp + 10), not from its own
     * time_ms. */
    s1 = open_db("clock1.db");
    REQUIRE(s1);
    struct hash b = H(2);
    login(&l, T0 + 1, "alice", &b);
    REQUIRE(store_apply(s1, &l.e[3], 1, r1) == STORE_OK);
    REQUIRE(store_apply(s2, &l.e[3], 1, r2) == STORE_OK);
    struct store_user u;
    uint64_t exp2 = exp + 10 + COMMAND_SESSION_TTL_MS;
    CHECK_EQ_I(store_session_user(s1, (const uint8_t *)b.b, exp2 - 1, &u), 1);
    CHECK_EQ_I(store_session_user(s2, (const uint8_t *)b.b, exp2 - 1, &u), 1);
    CHECK_EQ_I(store_session_user(s1, (const uint8_t *)b.b, exp2, &u), 0);
    store_close(s1);
    store_close(s2);
    log_free(&l);
}

/* Everything a page can ask, as text, to compare replicas. */
/* ---- Comments ----------------------------------------------------------------- */

static void comment(struct log *l, uint64_t t, const struct hash *sess, int64_t link, int64_t parent, const char *text,
                    const char *idem)
{
    struct command c = { .flags = NO_LIMIT, .type = CMD_COMMENT_POST, .time_ms = t, .session = HS(sess), .link_id = link,
                         .comment_id = parent, .text = S(text), .scope = S("u"), .idem_key = S(idem ? idem : "") };
    add(l, &c);
}

static void comment_cmd(struct log *l, int type, uint64_t t, const struct hash *sess, int64_t id, const char *text)
{
    struct command c = { .type = (uint8_t)type, .time_ms = t, .session = HS(sess), .comment_id = id,
                         .text = S(text ? text : "") };
    add(l, &c);
}

static void dump(struct store *st, char *out, size_t cap)
{
    size_t off = 0;
    static struct store_link page[100];
    size_t n;
    for (int sort = 0; sort < 3; sort++)
        for (unsigned offset = 0; offset < 60; offset += 25) {
            if (store_links(st, (enum store_sort)sort, 25, offset, page, &n) != STORE_OK) {
                snprintf(out, cap, "error");
                return;
            }
            for (size_t i = 0; i < n && off < cap; i++)
                off += (size_t)snprintf(out + off, cap - off, "%d:%lld:%s:%s:%s:%llu:%lld:%.17g\n", sort,
                                        (long long)page[i].id, page[i].title, page[i].url, page[i].author,
                                        (unsigned long long)page[i].created_ms, (long long)page[i].likes, page[i].hot);
        }
    for (int u = 0; u < 6 && off < cap; u++) {
        char name[16];
        snprintf(name, sizeof name, "user%d", u);
        struct store_user user;
        int found = store_user_by_name(st, name, strlen(name), &user);
        off += (size_t)snprintf(out + off, cap - off, "%s:%d", name, found);
        if (found == 1) {
            int64_t nl = -1, nk = -1;
            store_user_counts(st, user.id, &nl, &nk);
            off += (size_t)snprintf(out + off, cap - off, ":%lld:%lld:%lld", (long long)user.id, (long long)nl,
                                    (long long)nk);
            int64_t ids[40];
            uint8_t liked[40];
            for (int i = 0; i < 40; i++)
                ids[i] = i + 1;
            store_liked(st, user.id, ids, 40, liked);
            for (int i = 0; i < 40 && off < cap; i++)
                out[off++] = (char)('0' + liked[i]);
            if (store_links_by_user(st, user.id, 50, 0, page, &n) == STORE_OK)
                off += (size_t)snprintf(out + off, cap - off, ":%zu", n);
        }
        if (off < cap)
            out[off++] = '\n';
    }
    for (int64_t link = 1; link <= 40 && off < cap; link++) {
        struct store_comment *c;
        size_t nc;
        if (store_thread(st, link, &c, &nc) != STORE_OK)
            continue;
        for (size_t i = 0; i < nc && off < cap; i++)
            off += (size_t)snprintf(out + off, cap - off, "c%lld:%lld:%lld:%s:%s:%llu:%llu:%lld:%d:%d\n",
                                    (long long)c[i].id, (long long)c[i].link_id, (long long)c[i].parent_id,
                                    c[i].author, c[i].text, (unsigned long long)c[i].created_ms,
                                    (unsigned long long)c[i].edited_ms, (long long)c[i].likes, c[i].depth,
                                    c[i].deleted);
        store_comments_free(c, nc);
    }
    for (int s = 0; s < 8 && off < cap; s++) {
        struct hash h = H(100 + s);
        struct store_user user;
        off += (size_t)snprintf(out + off, cap - off, "s%d:%d\n", s,
                                store_session_user(st, (const uint8_t *)h.b, T0 + 5000000, &user));
    }
    out[off < cap ? off : cap - 1] = 0;
}

static unsigned rnd(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return *seed >> 8;
}

TEST(replicas_agree_on_every_query_and_after_snapshot_restore)
{
    struct store *sa = open_db("ra.db"), *sb = open_db("rb.db"), *sc = open_db("rc.db");
    REQUIRE(sa && sb && sc);
    static struct log l;
    unsigned seed = 11;
#define RND() rnd(&seed)
    for (int u = 0; u < 6; u++) {
        char name[16];
        snprintf(name, sizeof name, "user%d", u);
        struct hash h = H(100 + u);
        signup(&l, T0 + (uint64_t)u, name, name, &h);
    }
    for (int i = 0; i < 600; i++) {
        struct hash h = H(100 + (int)(RND() % 8)); /* sessions 6, 7 belong to nobody */
        uint64_t t = T0 + 1000 * (uint64_t)i - (RND() % 3000); /* clocks jitter */
        switch (RND() % 9) {
        case 6: { /* comments: on 40 links, replies to any of 60 ids (some invalid) */
            int64_t parent = RND() % 3 ? 0 : 1 + (int64_t)(RND() % 60);
            comment(&l, t, &h, 1 + (int64_t)(RND() % 40), parent, "a comment <b>", NULL);
            break;
        }
        case 7: {
            static const int types[] = { CMD_COMMENT_LIKE, CMD_COMMENT_UNLIKE, CMD_COMMENT_EDIT, CMD_COMMENT_DELETE };
            comment_cmd(&l, types[RND() % 4], t, &h, 1 + (int64_t)(RND() % 60), "edited");
            break;
        }
        case 0: {
            char title[32], url[48];
            snprintf(title, sizeof title, "Title %d <&>", i);
            snprintf(url, sizeof url, "http://site%u.example/p", RND() % 50);
            post(&l, t, &h, title, url, RND() % 4 ? NULL : "same-key");
            break;
        }
        case 1: logout(&l, t, &h); break;
        case 2: {
            char name[16];
            snprintf(name, sizeof name, "user%u", RND() % 7);
            login(&l, t, name, &h);
            break;
        }
        default: {
            int64_t id = 1 + (int64_t)(RND() % 40);
            like(&l, t, &h, id, RND() % 3 != 0);
            break;
        }
        }
    }
    static struct store_result ra[4096], rb[4096];
    REQUIRE(apply_all(sa, &l, ra) == STORE_OK);
    for (size_t i = 0; i < l.n;) {
        size_t n = 1 + i % 13;
        if (i + n > l.n)
            n = l.n - i;
        REQUIRE(store_apply(sb, l.e + i, n, rb + i) == STORE_OK);
        i += n;
    }
    int same = 1;
    for (size_t i = 0; i < l.n; i++)
        if (memcmp(&ra[i], &rb[i], sizeof ra[i]) != 0)
            same = 0;
    CHECK(same);
    static char da[1 << 17], db[1 << 17], dc[1 << 17];
    dump(sa, da, sizeof da);
    dump(sb, db, sizeof db);
    CHECK(strlen(da) > 1000);
    CHECK(strstr(da, ":1\nc") != NULL || strstr(da, ":0\nc") != NULL); /* comments were made */
    CHECK(strcmp(da, db) == 0);

    char a_path[128], snap[128], err[256];
    snprintf(a_path, sizeof a_path, "%s/ra.db", dir);
    snprintf(snap, sizeof snap, "%s/site-snap.db", dir);
    uint64_t idx = 0;
    REQUIRE(store_commit(sa) == STORE_OK); /* the snapshot's connection sees what is committed */
    REQUIRE(store_snapshot(a_path, snap, &idx, err, sizeof err) == STORE_OK);
    CHECK_EQ_U(idx, l.n);
    REQUIRE(store_restore(sc, snap, err, sizeof err) == STORE_OK);
    dump(sc, dc, sizeof dc);
    CHECK(strcmp(da, dc) == 0);
    /* The restored replica goes on identically, log clock included. */
    static struct log tail;
    for (size_t i = 0; i < l.n; i++)
        tail.e[i].index = 0;
    tail.n = l.n;
    struct hash h = H(101);
    post(&tail, T0, &h, "after", "http://after.example/", NULL);
    like(&tail, T0, &h, 1, 1);
    struct store_result ta[2], tc[2];
    REQUIRE(store_apply(sa, tail.e + l.n, 2, ta) == STORE_OK);
    REQUIRE(store_apply(sc, tail.e + l.n, 2, tc) == STORE_OK);
    CHECK(memcmp(ta, tc, sizeof ta) == 0);
    dump(sa, da, sizeof da);
    dump(sc, dc, sizeof dc);
    CHECK(strcmp(da, dc) == 0);
    free((void *)tail.e[l.n].data);
    free((void *)tail.e[l.n + 1].data);
    store_close(sa);
    store_close(sb);
    store_close(sc);
    log_free(&l);
}

/* The front page, a user's page and a session lookup are index walks, never a
 * sort of the whole table: that is what keeps them cheap at a million links. */
TEST(front_page_queries_use_indexes)
{
    struct store *st = open_db("plan.db");
    REQUIRE(st);
    const char *queries[] = {
        "EXPLAIN QUERY PLAN SELECT l.id FROM links l JOIN users u ON u.id = l.author_id WHERE l.deleted = 0 ORDER BY l.hot DESC, l.id DESC LIMIT 30 OFFSET 0",
        "EXPLAIN QUERY PLAN SELECT l.id FROM links l JOIN users u ON u.id = l.author_id WHERE l.deleted = 0 ORDER BY l.likes DESC, l.id DESC LIMIT 30 OFFSET 0",
        "EXPLAIN QUERY PLAN SELECT l.id FROM links l JOIN users u ON u.id = l.author_id WHERE l.deleted = 0 ORDER BY l.id DESC LIMIT 30 OFFSET 0",
        "EXPLAIN QUERY PLAN SELECT l.id FROM links l JOIN users u ON u.id = l.author_id WHERE l.author_id = 3 AND l.deleted = 0 ORDER BY l.id DESC LIMIT 30",
    };
    for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++) {
        sqlite3_stmt *s;
        REQUIRE(sqlite3_prepare_v2(store_db(st), queries[i], -1, &s, NULL) == SQLITE_OK);
        char plan[1024] = "";
        size_t off = 0;
        while (sqlite3_step(s) == SQLITE_ROW && off < sizeof plan - 1)
            off += (size_t)snprintf(plan + off, sizeof plan - off, "%s; ", (const char *)sqlite3_column_text(s, 3));
        sqlite3_finalize(s);
        if (strstr(plan, "TEMP B-TREE") || strstr(plan, "SCAN u"))
            fprintf(stderr, "  plan %zu: %s\n", i, plan);
        CHECK(strstr(plan, "TEMP B-TREE") == NULL);
        CHECK(strstr(plan, "SCAN u") == NULL); /* users by primary key */
    }
    store_close(st);
}

/* The thread as "id@depth" words in display order. */
static void thread_str(struct store *st, int64_t link, char *out, size_t cap)
{
    struct store_comment *c;
    size_t n;
    out[0] = 0;
    if (store_thread(st, link, &c, &n) != STORE_OK) {
        snprintf(out, cap, "error: %s", store_errmsg(st));
        return;
    }
    size_t off = 0;
    for (size_t i = 0; i < n; i++)
        off += (size_t)snprintf(out + off, cap - off, "%s%lld@%d%s", i ? " " : "", (long long)c[i].id, c[i].depth,
                                c[i].deleted ? "x" : "");
    store_comments_free(c, n);
}

TEST(comment_thread_is_in_display_order)
{
    struct store *st = open_db("thread.db");
    REQUIRE(st);
    static struct log l;
    struct hash a = H(1), b = H(2), c = H(3);
    signup(&l, T0, "alice", "alice", &a);
    signup(&l, T0, "bob", "bob", &b);
    signup(&l, T0, "carol", "carol", &c);
    post(&l, T0 + 1, &a, "One", "http://one.example/", NULL);     /* link 1 */
    post(&l, T0 + 1, &a, "Two", "http://two.example/", NULL);     /* link 2 */
    comment(&l, T0 + 2, &a, 1, 0, "first", NULL);                 /* 1 */
    comment(&l, T0 + 3, &b, 1, 0, "second", NULL);                /* 2 */
    comment(&l, T0 + 4, &b, 1, 1, "reply to first", NULL);        /* 3 */
    comment(&l, T0 + 5, &c, 1, 1, "another reply", NULL);         /* 4 */
    comment(&l, T0 + 6, &a, 1, 2, "reply to second", NULL);       /* 5 */
    comment(&l, T0 + 7, &a, 1, 3, "deep", NULL);                  /* 6 */
    comment(&l, T0 + 8, &a, 2, 0, "elsewhere", NULL);             /* 7 */
    struct store_result r[16];
    REQUIRE(apply_all(st, &l, r) == STORE_OK);
    for (int i = 5; i < 12; i++)
        CHECK_EQ_I(r[i].status, CMD_OK);
    CHECK_EQ_I(r[11].id, 7);
    char got[256];
    /* Without likes: oldest first at every level. */
    thread_str(st, 1, got, sizeof got);
    CHECK_STR(got, "1@0 3@1 6@2 4@1 2@0 5@1");
    /* Likes reorder siblings (most first), each subtree moving with its root. */
    log_free(&l);
    for (int i = 0; i < 12; i++) /* keep indexes growing */
        add_raw(&l, (const uint8_t *)"", 0);
    struct command lk = { .type = CMD_COMMENT_LIKE, .time_ms = T0 + 9, .session = HS(&b), .comment_id = 2 };
    add(&l, &lk);
    lk.session = HS(&c);
    add(&l, &lk);
    lk.comment_id = 4;
    add(&l, &lk);
    lk.type = CMD_COMMENT_UNLIKE;
    lk.comment_id = 2;
    add(&l, &lk); /* carol takes hers back: 2 has 1 like, 4 has 1 */
    REQUIRE(store_apply(st, l.e + 12, l.n - 12, r) == STORE_OK);
    CHECK(r[0].count == 1 && r[0].flag == 1);
    CHECK(r[3].count == 1 && r[3].flag == 0);
    thread_str(st, 1, got, sizeof got);
    CHECK_STR(got, "2@0 5@1 1@0 4@1 3@1 6@2");
    struct store_link link;
    REQUIRE(store_link_get(st, 1, &link) == 1);
    CHECK_EQ_I(link.comments, 6);
    uint8_t liked[2];
    int64_t ids[2] = { 2, 4 };
    REQUIRE(store_comments_liked(st, 3, ids, 2, liked) == STORE_OK); /* carol */
    CHECK(liked[0] == 0 && liked[1] == 1);
    struct store_comment one;
    REQUIRE(store_comment_get(st, 6, &one) == 1);
    CHECK_STR(one.text, "deep");
    CHECK_STR(one.author, "alice");
    CHECK(one.parent_id == 3 && one.link_id == 1 && one.depth == 2 && one.created_ms == T0 + 7);
    store_comment_clear(&one);
    store_close(st);
    log_free(&l);
}

TEST(comment_parents_sessions_and_idempotency)
{
    struct store *st = open_db("cparent.db");
    REQUIRE(st);
    static struct log l;
    struct hash a = H(1), nobody = H(9);
    signup(&l, T0, "alice", "alice", &a);
    post(&l, T0 + 1, &a, "One", "http://one.example/", NULL);
    post(&l, T0 + 1, &a, "Two", "http://two.example/", NULL);
    comment(&l, T0 + 2, &a, 1, 0, "on one", "k1");   /* 3: comment 1 */
    comment(&l, T0 + 3, &a, 1, 0, "on one", "k1");    /* 4: a retry: the same comment */
    comment(&l, T0 + 4, &a, 2, 1, "wrong link", NULL); /* 5: parent of another link */
    comment(&l, T0 + 5, &a, 1, 99, "no parent", NULL); /* 6 */
    comment(&l, T0 + 6, &a, 42, 0, "no link", NULL);   /* 7 */
    comment(&l, T0 + 7, &nobody, 1, 0, "who?", NULL);  /* 8 */
    comment(&l, T0 + 8, &a, 1, 0, "", NULL);           /* 9: empty */
    struct store_result r[10];
    REQUIRE(apply_all(st, &l, r) == STORE_OK);
    CHECK(r[3].status == CMD_OK && r[3].id == 1 && !r[3].replayed);
    CHECK(r[4].status == CMD_OK && r[4].id == 1 && r[4].replayed);
    CHECK_EQ_I(r[5].status, CMD_ERR_INVALID);
    CHECK_EQ_I(r[6].status, CMD_ERR_INVALID);
    CHECK_EQ_I(r[7].status, CMD_ERR_NOT_FOUND);
    CHECK_EQ_I(r[8].status, CMD_ERR_DENIED);
    CHECK_EQ_I(r[9].status, CMD_ERR_MALFORMED);
    char got[128];
    thread_str(st, 1, got, sizeof got);
    CHECK_STR(got, "1@0");
    struct store_link link;
    REQUIRE(store_link_get(st, 1, &link) == 1);
    CHECK_EQ_I(link.comments, 1);
    store_close(st);
    log_free(&l);
}

TEST(comment_edit_window_and_delete_rules)
{
    struct store *st = open_db("cedit.db");
    REQUIRE(st);
    static struct log l;
    struct hash a = H(1), b = H(2);
    const uint64_t two_hours = 2 * 3600 * 1000;
    signup(&l, T0, "alice", "alice", &a);
    signup(&l, T0, "bob", "bob", &b);
    post(&l, T0, &a, "One", "http://one.example/", NULL);
    comment(&l, T0 + 10, &a, 1, 0, "top", NULL);                                  /* 4: c1 */
    comment(&l, T0 + 11, &b, 1, 1, "reply", NULL);                                /* 5: c2 */
    comment(&l, T0 + 12, &b, 1, 2, "reply to reply", NULL);                       /* 6: c3 */
    comment_cmd(&l, CMD_COMMENT_EDIT, T0 + 10 + two_hours, &a, 1, "top, edited");  /* 7: just in time */
    comment_cmd(&l, CMD_COMMENT_EDIT, T0 + 11 + two_hours + 1, &b, 2, "late");     /* 8: too late */
    comment_cmd(&l, CMD_COMMENT_EDIT, T0 + 11 + two_hours + 1, &a, 3, "not hers"); /* 9 */
    comment_cmd(&l, CMD_COMMENT_DELETE, T0 + 11 + two_hours + 2, &a, 3, NULL);     /* 10: not hers */
    comment_cmd(&l, CMD_COMMENT_DELETE, T0 + 11 + two_hours + 3, &a, 1, NULL);     /* 11: has replies: a placeholder */
    comment_cmd(&l, CMD_COMMENT_EDIT, T0 + 11 + two_hours + 4, &a, 1, "again");    /* 12: deleted */
    comment_cmd(&l, CMD_COMMENT_LIKE, T0 + 11 + two_hours + 4, &b, 1, NULL);       /* 13: deleted */
    struct store_result r[13];
    REQUIRE(apply_all(st, &l, r) == STORE_OK);
    CHECK_EQ_I(r[6].status, CMD_OK);
    CHECK_EQ_I(r[7].status, CMD_ERR_FORBIDDEN);
    CHECK_EQ_I(r[8].status, CMD_ERR_FORBIDDEN);
    CHECK_EQ_I(r[9].status, CMD_ERR_FORBIDDEN);
    CHECK_EQ_I(r[10].status, CMD_OK);
    CHECK_EQ_I(r[11].status, CMD_ERR_NOT_FOUND);
    CHECK_EQ_I(r[12].status, CMD_ERR_NOT_FOUND);
    struct store_comment c;
    REQUIRE(store_comment_get(st, 1, &c) == 1);
    CHECK(c.deleted && !c.author[0] && !c.text[0] && c.edited_ms == T0 + 10 + two_hours);
    store_comment_clear(&c);
    REQUIRE(store_comment_get(st, 2, &c) == 1);
    CHECK_STR(c.text, "reply");
    store_comment_clear(&c);
    char got[128];
    thread_str(st, 1, got, sizeof got);
    CHECK_STR(got, "1@0x 2@1 3@2");
    struct store_link link;
    REQUIRE(store_link_get(st, 1, &link) == 1);
    CHECK_EQ_I(link.comments, 2);
    /* Deleting the last reply removes it, and with it the placeholder above
     * that it leaves without replies; a live parent stays. */
    log_free(&l);
    for (int i = 0; i < 13; i++)
        add_raw(&l, (const uint8_t *)"", 0);
    comment_cmd(&l, CMD_COMMENT_DELETE, T0 + 3 * two_hours, &b, 3, NULL);
    REQUIRE(store_apply(st, l.e + 13, 1, r) == STORE_OK);
    CHECK_EQ_I(r[0].status, CMD_OK);
    thread_str(st, 1, got, sizeof got);
    CHECK_STR(got, "1@0x 2@1");
    comment_cmd(&l, CMD_COMMENT_DELETE, T0 + 3 * two_hours, &b, 2, NULL);
    REQUIRE(store_apply(st, l.e + 14, 1, r) == STORE_OK);
    CHECK_EQ_I(r[0].status, CMD_OK);
    thread_str(st, 1, got, sizeof got);
    CHECK_STR(got, "");
    REQUIRE(store_link_get(st, 1, &link) == 1);
    CHECK_EQ_I(link.comments, 0);
    CHECK_EQ_I(store_comment_get(st, 1, &c), 0);
    /* Ids are never reused. */
    comment(&l, T0 + 3 * two_hours, &a, 1, 0, "new", NULL);
    REQUIRE(store_apply(st, l.e + 15, 1, r) == STORE_OK);
    CHECK_EQ_I(r[0].id, 4);
    store_close(st);
    log_free(&l);
}

/* A database made by the previous version (schema 1: no comments) opens,
 * gains the comment tables and the links' count, and keeps its data. */
TEST(schema_1_database_is_migrated)
{
    char path[128];
    snprintf(path, sizeof path, "%s/v1.db", dir);
    sqlite3 *db;
    REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
    const char *v1 =
        "CREATE TABLE meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
        "INSERT INTO meta(k, v) VALUES ('applied', 3), ('schema', 1), ('clock', 0);"
        "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT NOT NULL, lname TEXT NOT NULL UNIQUE,"
        " pwhash TEXT NOT NULL, created INTEGER NOT NULL);"
        "CREATE TABLE links(id INTEGER PRIMARY KEY, author_id INTEGER NOT NULL, title TEXT NOT NULL,"
        " url TEXT NOT NULL, url_norm TEXT NOT NULL UNIQUE, created INTEGER NOT NULL, likes INTEGER NOT NULL,"
        " hot REAL NOT NULL);"
        "INSERT INTO users VALUES (1, 'alice', 'alice', 'x', 1700000000000);"
        "INSERT INTO links VALUES (1, 1, 'Old', 'http://old.example/', 'http://old.example/', 1700000000000, 2, 1.0);";
    REQUIRE(sqlite3_exec(db, v1, NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    struct store *st = open_db("v1.db");
    REQUIRE(st);
    CHECK_EQ_U(store_applied(st), 3);
    struct store_link link;
    REQUIRE(store_link_get(st, 1, &link) == 1);
    CHECK_STR(link.title, "Old");
    CHECK(link.likes == 2 && link.comments == 0);
    store_close(st);
    st = open_db("v1.db"); /* a second open has nothing to migrate */
    REQUIRE(st);
    sqlite3_stmt *s;
    REQUIRE(sqlite3_prepare_v2(store_db(st), "SELECT v FROM meta WHERE k = 'schema'", -1, &s, NULL) == SQLITE_OK);
    REQUIRE(sqlite3_step(s) == SQLITE_ROW);
    CHECK(sqlite3_column_int(s, 0) >= 2);
    sqlite3_finalize(s);
    store_close(st);
}

TEST(thread_is_one_indexed_query)
{
    struct store *st = open_db("cplan.db");
    REQUIRE(st);
    sqlite3_stmt *s;
    REQUIRE(sqlite3_prepare_v2(store_db(st),
                               "EXPLAIN QUERY PLAN SELECT c.id, coalesce(u.name, '') FROM comments c LEFT JOIN users u"
                               " ON u.id = c.author_id WHERE c.link_id = 7 ORDER BY c.path",
                               -1, &s, NULL) == SQLITE_OK);
    char plan[1024] = "";
    size_t off = 0;
    while (sqlite3_step(s) == SQLITE_ROW && off < sizeof plan - 1)
        off += (size_t)snprintf(plan + off, sizeof plan - off, "%s; ", (const char *)sqlite3_column_text(s, 3));
    sqlite3_finalize(s);
    CHECK(strstr(plan, "comments_thread") != NULL);
    CHECK(strstr(plan, "TEMP B-TREE") == NULL);
    CHECK(strstr(plan, "SCAN u") == NULL);
    if (!strstr(plan, "comments_thread"))
        fprintf(stderr, "  plan: %s\n", plan);
    store_close(st);
}

/* A comment's apply runs six statements: each is prepared once per
 * connection and kept (store_cached_stmt), not prepared again per entry. */
/* A comment's id is taken before its row goes in (so the row goes in once,
 * with its path): it must be the id AUTOINCREMENT hands out, the one an
 * older build applying the same log gives, and AUTOINCREMENT's own count
 * must follow, so that a row inserted the old way continues from it. */
TEST(comment_ids_are_autoincrements)
{
    struct store *st = open_db("cids.db");
    REQUIRE(st);
    static struct log l;
    l.n = 0;
    struct hash a = H(1);
    signup(&l, T0, "alice", "alice", &a);
    post(&l, T0, &a, "One", "http://one.example/", NULL);
    comment(&l, T0 + 1, &a, 1, 0, "first", NULL);        /* 1 */
    comment(&l, T0 + 2, &a, 1, 1, "reply", NULL);        /* 2 */
    comment(&l, T0 + 3, &a, 1, 7, "bad parent", NULL);   /* refused: no id used */
    static struct store_result r[8];
    REQUIRE(apply_all(st, &l, r) == STORE_OK);
    CHECK(r[2].id == 1 && r[3].id == 2 && r[4].status == CMD_ERR_INVALID);
    /* An older build's insert (AUTOINCREMENT picks the id), as in a log
     * applied partly before an upgrade. */
    sqlite3 *db = store_db(st);
    CHECK_EQ_I(sqlite3_exec(db, "INSERT INTO comments(link_id, parent_id, author_id, text, created, depth, path)"
                                " VALUES (1, 0, 1, 'old', 0, 0, printf('%016x', 3))",
                            NULL, NULL, NULL), SQLITE_OK);
    CHECK_EQ_I(sqlite3_last_insert_rowid(db), 3);
    log_free(&l);
    for (int i = 0; i < 5; i++)
        add_raw(&l, (const uint8_t *)"", 0);
    comment(&l, T0 + 4, &a, 1, 3, "after the old one", NULL);
    REQUIRE(store_apply(st, l.e + 5, 1, r) == STORE_OK);
    CHECK(r[0].status == CMD_OK && r[0].id == 4 && r[0].depth == 1);
    sqlite3_stmt *q = NULL;
    REQUIRE(sqlite3_prepare_v2(db, "SELECT (SELECT seq FROM sqlite_sequence WHERE name = 'comments'),"
                                   " (SELECT count(*) FROM comments WHERE substr(path, -16) != printf('%016x', id)),"
                                   " (SELECT path FROM comments WHERE id = 4)", -1, &q, NULL) == SQLITE_OK);
    REQUIRE(sqlite3_step(q) == SQLITE_ROW);
    CHECK_EQ_I(sqlite3_column_int64(q, 0), 4);
    CHECK_EQ_I(sqlite3_column_int64(q, 1), 0);
    CHECK_STR((const char *)sqlite3_column_text(q, 2), "00000000000000030000000000000004");
    sqlite3_finalize(q);
    log_free(&l);
    store_close(st);
}

TEST(comment_statements_are_prepared_once)
{
    struct store *st = open_db("cstmt.db");
    REQUIRE(st);
    static struct log l;
    l.n = 0;
    struct hash a = H(1);
    signup(&l, T0, "alice", "alice", &a);
    post(&l, T0, &a, "One", "http://one.example/", NULL);
    for (int i = 0; i < 20; i++)
        comment(&l, T0 + 10 + i, &a, 1, i ? i : 0, "a comment", NULL);
    static struct store_result r[32];
    REQUIRE(apply_all(st, &l, r) == STORE_OK);
    CHECK_EQ_I(r[21].status, CMD_OK);
    int inserts = 0;
    for (sqlite3_stmt *s = sqlite3_next_stmt(store_db(st), NULL); s; s = sqlite3_next_stmt(store_db(st), s))
        if (sqlite3_sql(s) && !strncmp(sqlite3_sql(s), "INSERT INTO comments(", 21)) { /* FTS5's own have none */
            inserts++;
            CHECK_EQ_I(sqlite3_stmt_status(s, SQLITE_STMTSTATUS_RUN, 0), 20);
            CHECK(!sqlite3_stmt_busy(s)); /* reset after use: no read left open */
        }
    CHECK_EQ_I(inserts, 1);
    log_free(&l);
    store_close(st);
}

/* ---- Text posts, editing, deleting ------------------------------------------------ */

static void post_text(struct log *l, uint64_t t, const struct hash *sess, const char *title, const char *url,
                      const char *text)
{
    struct command c = { .flags = NO_LIMIT, .type = CMD_LINK_POST_TEXT, .time_ms = t, .session = HS(sess), .title = S(title),
                         .url = S(url), .url_norm = S(url), .text = S(text) };
    add(l, &c);
}

static void link_cmd(struct log *l, int type, uint64_t t, const struct hash *sess, int64_t id, const char *title,
                     const char *text)
{
    struct command c = { .type = (uint8_t)type, .time_ms = t, .session = HS(sess), .link_id = id,
                         .title = S(title ? title : ""), .text = S(text ? text : "") };
    add(l, &c);
}

TEST(text_posts_edit_and_delete)
{
    struct store *st = open_db("posts.db");
    REQUIRE(st);
    static struct log l;
    struct hash a = H(1), b = H(2);
    const uint64_t two_hours = 2 * 3600 * 1000;
    signup(&l, T0, "alice", "alice", &a);                                               /* 0 */
    signup(&l, T0, "bob", "bob", &b);                                                   /* 1 */
    post_text(&l, T0 + 1, &a, "Ask: why Raft?", "", "Tell me.");                        /* 2: link 1 */
    post_text(&l, T0 + 2, &a, "Both", "http://both.example/", "and some text");          /* 3: link 2 */
    post_text(&l, T0 + 3, &b, "Dup", "http://both.example/", "");                       /* 4: conflict */
    post_text(&l, T0 + 4, &b, "Nothing", "", "");                                       /* 5: malformed */
    post(&l, T0 + 5, &b, "Plain", "http://plain.example/", NULL);                       /* 6: link 3 */
    link_cmd(&l, CMD_LINK_EDIT, T0 + 1 + two_hours, &a, 1, "Ask: why Raft, really?", NULL);/* 7 */
    link_cmd(&l, CMD_LINK_EDIT, T0 + 2 + two_hours + 1, &a, 2, NULL, "late");           /* 8: too late */
    link_cmd(&l, CMD_LINK_EDIT, T0 + 6, &b, 1, "mine", NULL);                           /* 9: not his */
    link_cmd(&l, CMD_LINK_DELETE, T0 + 7, &b, 2, NULL, NULL);                           /* 10: not his */
    link_cmd(&l, CMD_LINK_DELETE, T0 + 8, &a, 2, NULL, NULL);                           /* 11 */
    link_cmd(&l, CMD_LINK_DELETE, T0 + 9, &a, 2, NULL, NULL);                           /* 12: gone */
    like(&l, T0 + 10, &b, 2, 1);                                                        /* 13: gone */
    comment(&l, T0 + 11, &b, 2, 0, "on a deleted link", NULL);                          /* 14: gone */
    post_text(&l, T0 + 12, &b, "Again", "http://both.example/", "");                    /* 15: link 4 */
    struct store_result r[16];
    REQUIRE(apply_all(st, &l, r) == STORE_OK);
    CHECK(r[2].status == CMD_OK && r[2].id == 1);
    CHECK(r[3].status == CMD_OK && r[3].id == 2);
    CHECK(r[4].status == CMD_ERR_CONFLICT && r[4].id == 2);
    CHECK_EQ_I(r[5].status, CMD_ERR_MALFORMED);
    CHECK(r[6].status == CMD_OK && r[6].id == 3);
    CHECK_EQ_I(r[7].status, CMD_OK);
    CHECK_EQ_I(r[8].status, CMD_ERR_FORBIDDEN);
    CHECK_EQ_I(r[9].status, CMD_ERR_FORBIDDEN);
    CHECK_EQ_I(r[10].status, CMD_ERR_FORBIDDEN);
    CHECK_EQ_I(r[11].status, CMD_OK);
    CHECK_EQ_I(r[12].status, CMD_ERR_NOT_FOUND);
    CHECK_EQ_I(r[13].status, CMD_ERR_NOT_FOUND);
    CHECK_EQ_I(r[14].status, CMD_ERR_NOT_FOUND);
    CHECK(r[15].status == CMD_OK && r[15].id == 4); /* the URL was freed; ids are not reused */
    struct store_link link;
    REQUIRE(store_link_get(st, 1, &link) == 1);
    CHECK_STR(link.title, "Ask: why Raft, really?");
    CHECK(link.url[0] == 0 && link.has_text && link.edited_ms == T0 + 1 + two_hours);
    char *text = NULL;
    CHECK_EQ_I(store_link_text(st, 1, &text), 1);
    CHECK_STR(text, "Tell me.");
    free(text);
    REQUIRE(store_link_get(st, 3, &link) == 1);
    CHECK(!link.has_text);
    CHECK_EQ_I(store_link_text(st, 3, &text), 1);
    CHECK(text == NULL);
    CHECK_EQ_I(store_link_get(st, 2, &link), 0);
    CHECK_EQ_I(store_link_text(st, 2, &text), 0);
    static struct store_link page[10];
    size_t n;
    for (int sort = 0; sort < 3; sort++) {
        REQUIRE(store_links(st, (enum store_sort)sort, 10, 0, page, &n) == STORE_OK);
        CHECK_EQ_U(n, 3);
        for (size_t i = 0; i < n; i++)
            CHECK(page[i].id != 2);
    }
    REQUIRE(store_links_by_user(st, 1, 10, 0, page, &n) == STORE_OK);
    CHECK_EQ_U(n, 1);
    int64_t id;
    CHECK_EQ_I(store_link_by_url(st, "http://both.example/", 20, &id), 1);
    CHECK_EQ_I(id, 4);
    store_close(st);
    log_free(&l);
}

TEST(profiles_karma_about_and_password_change)
{
    struct store *st = open_db("users.db");
    REQUIRE(st);
    static struct log l;
    struct hash a = H(1), a2 = H(11), b = H(2);
    signup(&l, T0, "alice", "alice", &a);                        /* 0 */
    signup(&l, T0, "bob", "bob", &b);                            /* 1 */
    login(&l, T0 + 1, "alice", &a2);                             /* 2: a second session */
    post(&l, T0 + 2, &a, "One", "http://one.example/", NULL);    /* 3: link 1 */
    post(&l, T0 + 2, &a, "Two", "http://two.example/", NULL);    /* 4: link 2 */
    like(&l, T0 + 3, &b, 1, 1);                                  /* 5 */
    like(&l, T0 + 3, &b, 2, 1);                                  /* 6 */
    comment(&l, T0 + 4, &a, 1, 0, "c1", NULL);                   /* 7 */
    comment(&l, T0 + 5, &a, 1, 0, "c2", NULL);                   /* 8 */
    comment_cmd(&l, CMD_COMMENT_LIKE, T0 + 6, &b, 1, NULL);      /* 9 */
    comment_cmd(&l, CMD_COMMENT_LIKE, T0 + 6, &b, 2, NULL);      /* 10 */
    link_cmd(&l, CMD_LINK_DELETE, T0 + 7, &a, 2, NULL, NULL);     /* 11: its like no longer counts */
    comment_cmd(&l, CMD_COMMENT_DELETE, T0 + 7, &a, 2, NULL);    /* 12: nor this one's */
    struct command about = { .type = CMD_ABOUT_SET, .time_ms = T0 + 8, .session = HS(&a), .text = S("I post <links>") };
    add(&l, &about);                                             /* 13 */
    struct command pw = { .type = CMD_PASSWORD_SET, .time_ms = T0 + 9, .session = HS(&a),
                          .pwhash = S("$argon2id$v=19$m=19456,t=2,p=1$new") };
    add(&l, &pw);                                                /* 14 */
    struct store_result r[15];
    REQUIRE(apply_all(st, &l, r) == STORE_OK);
    CHECK_EQ_I(r[13].status, CMD_OK);
    CHECK_EQ_I(r[14].status, CMD_OK);
    int64_t karma = -1, links = -1, comments = -1;
    char *text = NULL;
    REQUIRE(store_user_profile(st, 1, &karma, &links, &comments, &text) == STORE_OK);
    CHECK_EQ_I(karma, 2);
    CHECK_EQ_I(links, 1);
    CHECK_EQ_I(comments, 1);
    CHECK_STR(text, "I post <links>");
    free(text);
    struct store_user u;
    CHECK_EQ_I(store_session_user(st, (const uint8_t *)a.b, T0 + 10, &u), 1);  /* the changing session stays */
    CHECK_STR(u.pwhash, "$argon2id$v=19$m=19456,t=2,p=1$new");
    CHECK_EQ_I(store_session_user(st, (const uint8_t *)a2.b, T0 + 10, &u), 0); /* the other one ended */
    CHECK_EQ_I(store_session_user(st, (const uint8_t *)b.b, T0 + 10, &u), 1);  /* other users' stay */
    struct store_comment *c;
    size_t n;
    REQUIRE(store_comments_by_user(st, 1, 10, 0, &c, &n) == STORE_OK);
    CHECK_EQ_U(n, 1);
    CHECK(n == 1 && !strcmp(c[0].text, "c1"));
    store_comments_free(c, n);
    /* Comments on a deleted link are no longer live: no karma, not listed. */
    log_free(&l);
    for (int i = 0; i < 15; i++)
        add_raw(&l, (const uint8_t *)"", 0);
    link_cmd(&l, CMD_LINK_DELETE, T0 + 11, &a, 1, NULL, NULL);
    REQUIRE(store_apply(st, l.e + 15, 1, r) == STORE_OK);
    CHECK_EQ_I(r[0].status, CMD_OK);
    REQUIRE(store_user_profile(st, 1, &karma, &links, &comments, &text) == STORE_OK);
    free(text);
    CHECK(karma == 0 && links == 0 && comments == 0);
    REQUIRE(store_comments_by_user(st, 1, 10, 0, &c, &n) == STORE_OK);
    CHECK_EQ_U(n, 0);
    store_comments_free(c, n);
    store_close(st);
    log_free(&l);
}

/* Sessions are looked up from a cache in the store (store.c): every change
 * to a session or its user must show at once, in lookups and in the apply,
 * even when the session was just looked up (so cached). */
TEST(session_lookups_see_every_change_while_cached)
{
    struct store *st = open_db("session-cache.db");
    REQUIRE(st);
    static struct log l;
    struct hash a = H(1), b = H(2), a2 = H(3), a3 = H(4), c = H(5);
    struct store_result r[8];
    struct store_user u;
    size_t from = 0;
#define APPLY_NEW() do { REQUIRE(store_apply(st, l.e + from, l.n - from, r) == STORE_OK); from = l.n; } while (0)
    signup(&l, T0, "alice", "alice", &a);
    signup(&l, T0, "bob", "bob", &b);
    post(&l, T0 + 1, &a, "t", "http://a.example/", NULL);
    APPLY_NEW();
    CHECK_EQ_I(r[2].status, CMD_OK);
    /* Logout: the session was just used (looked up and applied). */
    CHECK_EQ_I(store_session_user(st, (const uint8_t *)a.b, T0 + 2, &u), 1);
    like(&l, T0 + 2, &a, 1, 1);
    logout(&l, T0 + 3, &a);
    like(&l, T0 + 4, &a, 1, 0);
    APPLY_NEW();
    CHECK_EQ_I(r[0].status, CMD_OK);
    CHECK_EQ_I(r[2].status, CMD_ERR_DENIED);
    CHECK_EQ_I(store_session_user(st, (const uint8_t *)a.b, T0 + 5, &u), 0);
    /* A password change ends the user's other sessions and changes the
     * user row that lookups return. */
    login(&l, T0 + 6, "alice", &a2);
    login(&l, T0 + 6, "alice", &a3);
    APPLY_NEW();
    CHECK_EQ_I(store_session_user(st, (const uint8_t *)a2.b, T0 + 7, &u), 1);
    CHECK_EQ_I(store_session_user(st, (const uint8_t *)a3.b, T0 + 7, &u), 1);
    CHECK_STR(u.pwhash, "$argon2id$v=19$m=19456,t=2,p=1$fake");
    struct command pw = { .type = CMD_PASSWORD_SET, .time_ms = T0 + 8, .session = HS(&a3),
                          .pwhash = S("$argon2id$v=19$m=19456,t=2,p=1$new") };
    add(&l, &pw);
    like(&l, T0 + 9, &a2, 1, 1);
    APPLY_NEW();
    CHECK_EQ_I(r[0].status, CMD_OK);
    CHECK_EQ_I(r[1].status, CMD_ERR_DENIED);
    CHECK_EQ_I(store_session_user(st, (const uint8_t *)a2.b, T0 + 10, &u), 0);
    CHECK_EQ_I(store_session_user(st, (const uint8_t *)a3.b, T0 + 10, &u), 1);
    CHECK_STR(u.pwhash, "$argon2id$v=19$m=19456,t=2,p=1$new");
    /* Expiry in log time deletes bob's session: gone for a reader whose
     * own clock is still before its expiry, too. */
    uint64_t exp = T0 + COMMAND_SESSION_TTL_MS;
    CHECK_EQ_I(store_session_user(st, (const uint8_t *)b.b, exp - 10, &u), 1);
    like(&l, exp + 5, &a3, 1, 0); /* a command that leaves sessions alone */
    APPLY_NEW();
    CHECK_EQ_I(r[0].status, CMD_OK);
    CHECK_EQ_I(store_session_user(st, (const uint8_t *)b.b, exp - 10, &u), 0);
    signup(&l, exp + 6, "carol", "carol", &c);
    APPLY_NEW();
    CHECK_EQ_I(store_session_user(st, (const uint8_t *)c.b, exp + 7, &u), 1);
    CHECK_STR(u.name, "carol");
    /* More sessions than the cache holds, some sharing its slots: each
     * lookup still finds its own user (H(n) differ in their first bytes,
     * which pick the slots). */
    enum { MANY = 1500 };
    static struct hash many[MANY];
    for (int i = 0; i < MANY; i++) {
        many[i] = H(100 + i);
        many[i].b[0] = (char)(i * 7);
        many[i].b[1] = (char)(i / 3);
        many[i].b[30] = (char)(i >> 8); /* and all differ */
        many[i].b[31] = (char)i;
        if (i % 2)
            login(&l, exp + 10, "carol", &many[i]);
        else
            login(&l, exp + 10, "alice", &many[i]);
        if (l.n - from == 8)
            APPLY_NEW();
    }
    APPLY_NEW();
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < MANY; i++) {
            REQUIRE(store_session_user(st, (const uint8_t *)many[i].b, exp + 11, &u) == 1);
            CHECK_STR(u.name, i % 2 ? "carol" : "alice");
        }
#undef APPLY_NEW
    log_free(&l);
    store_close(st);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/linkraft-site-store-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    RUN(signup_names_are_unique_case_insensitively);
    RUN(sessions_expire_and_logout_everywhere);
    RUN(links_duplicates_likes_and_hot_score);
    RUN(hot_score_is_reddits);
    RUN(idempotency_key_repeat_returns_the_first_result);
    RUN(malformed_commands_are_refused_identically);
    RUN(log_clock_never_steps_back);
    RUN(replicas_agree_on_every_query_and_after_snapshot_restore);
    RUN(front_page_queries_use_indexes);
    RUN(comment_thread_is_in_display_order);
    RUN(comment_parents_sessions_and_idempotency);
    RUN(comment_edit_window_and_delete_rules);
    RUN(schema_1_database_is_migrated);
    RUN(thread_is_one_indexed_query);
    RUN(comment_statements_are_prepared_once);
    RUN(comment_ids_are_autoincrements);
    RUN(text_posts_edit_and_delete);
    RUN(profiles_karma_about_and_password_change);
    RUN(session_lookups_see_every_change_while_cached);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return HARNESS_END();
}
