/*
 * log.c — the in-memory Raft log (see log.h for the ownership rules).
 */
#include "raft/log.h"

#include <stdlib.h>
#include <string.h>

void raft_log_init(struct raft_log *l)
{
    memset(l, 0, sizeof *l);
    l->first = 1;
}

static void free_list(void **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
}

void raft_log_free(struct raft_log *l)
{
    for (size_t i = 0; i < l->n; i++)
        free((void *)l->entries[i].data);
    free(l->entries);
    free_list(l->buried, l->n_buried);
    free(l->buried);
    free_list(l->handed, l->n_handed);
    free(l->handed);
    raft_log_init(l);
}

raft_term raft_log_term(const struct raft_log *l, raft_index index)
{
    if (index == 0)
        return 0;
    if (index + 1 == l->first)
        return l->prev_term;
    if (index < l->first || index > raft_log_last(l))
        return 0;
    return l->entries[index - l->first].term;
}

const struct raft_entry *raft_log_get(const struct raft_log *l, raft_index index)
{
    if (index < l->first || index > raft_log_last(l))
        return NULL;
    return &l->entries[index - l->first];
}

int raft_log_append(struct raft_log *l, const struct raft_entry *e)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct raft_entry *grown = realloc(l->entries, cap * sizeof *grown);
        if (!grown)
            return RAFT_ENOMEM;
        l->entries = grown;
        l->cap = cap;
    }
    uint8_t *copy = NULL;
    if (e->len) {
        copy = malloc(e->len);
        if (!copy)
            return RAFT_ENOMEM;
        memcpy(copy, e->data, e->len);
    }
    struct raft_entry *slot = &l->entries[l->n++];
    *slot = *e;
    slot->index = l->first + l->n - 1;
    slot->data = copy;
    return RAFT_OK;
}

/* Data is never freed while a ready bundle or queued message may point at it.
 * If the list cannot grow we leak rather than free early: a leak is
 * recoverable, a use-after-free is not. */
static void bury(struct raft_log *l, const uint8_t *data)
{
    if (!data)
        return;
    if (l->n_buried == l->cap_buried) {
        size_t cap = l->cap_buried ? l->cap_buried * 2 : 64;
        void **grown = realloc(l->buried, cap * sizeof *grown);
        if (!grown)
            return;
        l->buried = grown;
        l->cap_buried = cap;
    }
    l->buried[l->n_buried++] = (void *)data;
}

void raft_log_truncate(struct raft_log *l, raft_index index)
{
    if (index < l->first)
        index = l->first;
    if (index > raft_log_last(l))
        return;
    for (raft_index i = index; i <= raft_log_last(l); i++)
        bury(l, l->entries[i - l->first].data);
    l->n = index - l->first;
}

void raft_log_compact(struct raft_log *l, raft_index index)
{
    if (index <= l->first)
        return;
    if (index > raft_log_last(l) + 1)
        index = raft_log_last(l) + 1;
    size_t drop = index - l->first;
    l->prev_term = l->entries[drop - 1].term;
    for (size_t i = 0; i < drop; i++)
        bury(l, l->entries[i].data);
    memmove(l->entries, l->entries + drop, (l->n - drop) * sizeof *l->entries);
    l->n -= drop;
    l->first = index;
}

void raft_log_reset(struct raft_log *l, raft_index index, raft_term term)
{
    for (size_t i = 0; i < l->n; i++)
        bury(l, l->entries[i].data);
    l->n = 0;
    l->first = index + 1;
    l->prev_term = term;
}

void raft_log_bury_generation(struct raft_log *l)
{
    if (l->n_buried == 0)
        return;
    if (l->n_handed + l->n_buried > l->cap_handed) {
        size_t cap = (l->n_handed + l->n_buried) * 2;
        void **grown = realloc(l->handed, cap * sizeof *grown);
        if (!grown)
            return; /* keep them buried; freed at a later advance */
        l->handed = grown;
        l->cap_handed = cap;
    }
    memcpy(l->handed + l->n_handed, l->buried, l->n_buried * sizeof *l->buried);
    l->n_handed += l->n_buried;
    l->n_buried = 0;
}

void raft_log_free_handed(struct raft_log *l)
{
    free_list(l->handed, l->n_handed);
    l->n_handed = 0;
}
