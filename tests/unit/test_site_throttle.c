/*
 * test_site_throttle.c — the throttle table (src/site/throttle.c) on its
 * own: exact keys that no other key can reset, a window per key, a bound on
 * memory that evicts only expired entries, and forgetting a key. Time is
 * the test's: every call gets now_ms.
 */
#include <stdio.h>
#include <string.h>

#include "../harness.h"
#include "site/internal.h"

TEST(each_key_counts_alone_however_many_others)
{
    struct site_throttle t;
    REQUIRE(site_throttle_init(&t, 60000, 3, 100000) == 0);
    char key[32];
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_U(site_throttle_check(&t, "victim 1.2.3.4", 1000, true), 0);
        /* Thousands of other keys between two events change nothing. */
        for (int k = 0; k < 5000; k++) {
            snprintf(key, sizeof key, "other%d 1.2.3.4", k);
            site_throttle_check(&t, key, 1000, true);
        }
    }
    unsigned wait = site_throttle_check(&t, "victim 1.2.3.4", 1000, false);
    CHECK_EQ_U(wait, 60); /* the whole window: it began at this very moment */
    /* A key that differs by one byte, or is a prefix, is another key. */
    CHECK_EQ_U(site_throttle_check(&t, "victim 1.2.3.5", 1000, false), 0);
    CHECK_EQ_U(site_throttle_check(&t, "victim 1.2.3.", 1000, false), 0);
    /* The window passes. */
    CHECK_EQ_U(site_throttle_check(&t, "victim 1.2.3.4", 61000, false), 0);
    site_throttle_free(&t);
}

TEST(a_full_table_evicts_only_expired_entries)
{
    struct site_throttle t;
    REQUIRE(site_throttle_init(&t, 60000, 2, 100) == 0);
    char key[32];
    for (int k = 0; k < 100; k++) {
        snprintf(key, sizeof key, "k%d", k);
        CHECK_EQ_U(site_throttle_check(&t, key, 1000, true), 0);
        CHECK_EQ_U(site_throttle_check(&t, key, 1000, true), 0);
    }
    CHECK_EQ_U(t.n_entries, 100);
    /* Full of live counters: a newcomer is refused, nobody is forgotten. */
    CHECK(site_throttle_check(&t, "newcomer", 2000, true) > 0);
    CHECK_EQ_U(t.refused, 1);
    for (int k = 0; k < 100; k++) {
        snprintf(key, sizeof key, "k%d", k);
        CHECK(site_throttle_check(&t, key, 2000, false) > 0);
    }
    /* Asking about an unknown key without counting never needs room. */
    CHECK_EQ_U(site_throttle_check(&t, "newcomer", 2000, false), 0);
    /* Once their windows have passed, the old entries make room. */
    CHECK_EQ_U(site_throttle_check(&t, "newcomer", 62000, true), 0);
    CHECK_EQ_U(t.n_entries, 1);
    site_throttle_free(&t);
}

TEST(forget_clears_one_key)
{
    struct site_throttle t;
    REQUIRE(site_throttle_init(&t, 60000, 1, 10) == 0);
    site_throttle_check(&t, "a", 0, true);
    site_throttle_check(&t, "b", 0, true);
    CHECK(site_throttle_check(&t, "a", 0, false) > 0);
    site_throttle_forget(&t, "a");
    CHECK_EQ_U(site_throttle_check(&t, "a", 0, false), 0);
    CHECK(site_throttle_check(&t, "b", 0, false) > 0);
    CHECK_EQ_U(t.n_entries, 1);
    site_throttle_forget(&t, "never seen");
    site_throttle_free(&t);
}

int main(void)
{
    RUN(each_key_counts_alone_however_many_others);
    RUN(a_full_table_evicts_only_expired_entries);
    RUN(forget_clears_one_key);
    return HARNESS_END();
}
