/*
 * throttle.c — counters of events per key in a fixed time window (login
 * and sign-up attempts per client address, failed logins per account and
 * address), for SPEC §5 "Errors and limits".
 *
 * Each key has its own entry, found by exact comparison in a hash table
 * with chaining: no other key can erase or share its counter (a fixed
 * table where colliding keys replaced each other let an attacker reset his
 * own counter by guessing at a second name). The hash is keyed SipHash
 * (crypto_shorthash) with a random key, so nobody can aim keys at one
 * chain. Memory is bounded by max_entries; an entry is only ever removed
 * once its window has passed. When the table is full of live entries a
 * new key is refused (the caller answers 429) rather than forgetting
 * someone's counter: failing closed for newcomers during a flood, never
 * opening a door for an attacker.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "site/internal.h"

struct site_throttle_entry {
    struct site_throttle_entry *next;
    uint64_t window_start_ms;
    unsigned count;
    uint16_t key_len;
    char key[];
};

int site_throttle_init(struct site_throttle *t, uint64_t window_ms, unsigned limit, size_t max_entries)
{
    memset(t, 0, sizeof *t);
    t->n_buckets = 4096;
    while (t->n_buckets < max_entries / 2)
        t->n_buckets *= 2;
    t->buckets = calloc(t->n_buckets, sizeof *t->buckets);
    if (!t->buckets)
        return -1;
    t->window_ms = window_ms;
    t->limit = limit;
    t->max_entries = max_entries;
    randombytes_buf(t->hash_key, sizeof t->hash_key);
    return 0;
}

void site_throttle_free(struct site_throttle *t)
{
    for (size_t i = 0; t->buckets && i < t->n_buckets; i++) {
        struct site_throttle_entry *e = t->buckets[i], *next;
        for (; e; e = next) {
            next = e->next;
            free(e);
        }
    }
    free(t->buckets);
    memset(t, 0, sizeof *t);
}

static bool expired(const struct site_throttle *t, const struct site_throttle_entry *e, uint64_t now_ms)
{
    return now_ms >= e->window_start_ms + t->window_ms || now_ms < e->window_start_ms;
}

static size_t bucket_of(const struct site_throttle *t, const char *key, size_t len)
{
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, (const unsigned char *)key, len, t->hash_key);
    uint64_t v;
    memcpy(&v, h, sizeof v);
    return (size_t)(v & (t->n_buckets - 1));
}

/* Frees every entry whose window has passed; returns how many. */
static size_t sweep(struct site_throttle *t, uint64_t now_ms)
{
    size_t freed = 0;
    for (size_t i = 0; i < t->n_buckets; i++) {
        for (struct site_throttle_entry **pp = &t->buckets[i]; *pp;) {
            struct site_throttle_entry *e = *pp;
            if (expired(t, e, now_ms)) {
                *pp = e->next;
                free(e);
                freed++;
            } else {
                pp = &e->next;
            }
        }
    }
    t->n_entries -= freed;
    return freed;
}

static unsigned wait_s(const struct site_throttle *t, const struct site_throttle_entry *e, uint64_t now_ms)
{
    uint64_t left = e->window_start_ms + t->window_ms - now_ms;
    unsigned s = (unsigned)((left + 999) / 1000);
    return s ? s : 1;
}

unsigned site_throttle_check(struct site_throttle *t, const char *key, uint64_t now_ms, bool note)
{
    size_t len = strlen(key);
    if (len > UINT16_MAX)
        len = UINT16_MAX;
    size_t b = bucket_of(t, key, len);
    struct site_throttle_entry *e = t->buckets[b];
    while (e && !(e->key_len == len && memcmp(e->key, key, len) == 0))
        e = e->next;
    if (e && expired(t, e, now_ms)) {
        e->window_start_ms = now_ms;
        e->count = 0;
    }
    if (!e) {
        if (!note)
            return 0;
        /* Sweeping walks the whole table: only when full, and at most once
         * per second, so a flood of new keys costs no more than that. */
        if (t->n_entries >= t->max_entries && now_ms >= t->next_sweep_ms) {
            sweep(t, now_ms);
            t->next_sweep_ms = now_ms + 1000;
        }
        if (t->n_entries >= t->max_entries) {
            t->refused++;
            return 1;
        }
        e = malloc(sizeof *e + len);
        if (!e) {
            t->refused++;
            return 1;
        }
        memcpy(e->key, key, len);
        e->key_len = (uint16_t)len;
        e->window_start_ms = now_ms;
        e->count = 0;
        e->next = t->buckets[b];
        t->buckets[b] = e;
        t->n_entries++;
    }
    if (e->count >= t->limit)
        return wait_s(t, e, now_ms);
    if (note)
        e->count++;
    return 0;
}

void site_throttle_forget(struct site_throttle *t, const char *key)
{
    size_t len = strlen(key);
    if (len > UINT16_MAX)
        len = UINT16_MAX;
    for (struct site_throttle_entry **pp = &t->buckets[bucket_of(t, key, len)]; *pp; pp = &(*pp)->next) {
        struct site_throttle_entry *e = *pp;
        if (e->key_len == len && memcmp(e->key, key, len) == 0) {
            *pp = e->next;
            free(e);
            t->n_entries--;
            return;
        }
    }
}
