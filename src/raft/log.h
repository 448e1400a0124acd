/*
 * log.h — the Raft log as the core holds it in memory: the entries after the
 * last compaction point, each owning a copy of its data.
 *
 * Entries leave the log in two ways: truncation of a conflicting suffix and
 * compaction of a prefix covered by a snapshot. Either may happen while the
 * host still holds pointers to those entries' data (in a raft_ready bundle or
 * in messages queued for the next one), so removed data is not freed at once
 * but "buried": raft_log_bury_generation() marks what was buried so far as
 * handed out, and raft_log_free_handed() frees it when the host advances.
 * Internal to src/raft; not part of the public API.
 */
#ifndef LINKRAFT_RAFT_LOG_H
#define LINKRAFT_RAFT_LOG_H

#include "raft.h"

struct raft_log {
    struct raft_entry *entries; /* entries[i] has index first + i */
    size_t n, cap;
    raft_index first;           /* index of entries[0]; last + 1 when empty */
    raft_term prev_term;        /* term of the entry at first - 1 (0 if none) */
    void **buried;              /* data removed since the last ready */
    size_t n_buried, cap_buried;
    void **handed;              /* data removed before the outstanding ready */
    size_t n_handed, cap_handed;
};

void raft_log_init(struct raft_log *l);
void raft_log_free(struct raft_log *l);

static inline raft_index raft_log_last(const struct raft_log *l) { return l->first + l->n - 1; }

/* Term at index, or 0 when the index is beyond the log or compacted away
 * (first - 1 is still known: prev_term). */
raft_term raft_log_term(const struct raft_log *l, raft_index index);
/* The entry at index, or NULL when not held. */
const struct raft_entry *raft_log_get(const struct raft_log *l, raft_index index);

/* Appends a copy of e (data copied) at last + 1; e->index must equal it.
 * RAFT_ENOMEM leaves the log unchanged. */
int raft_log_append(struct raft_log *l, const struct raft_entry *e);

/* Removes entries >= index (their data is buried). */
void raft_log_truncate(struct raft_log *l, raft_index index);
/* Removes entries < index (their data is buried); prev_term follows. */
void raft_log_compact(struct raft_log *l, raft_index index);
/* Empties the log so that the next entry is index + 1, with term of index = term. */
void raft_log_reset(struct raft_log *l, raft_index index, raft_term term);

/* At raft_ready: what was buried so far becomes "handed" (freed at advance). */
void raft_log_bury_generation(struct raft_log *l);
/* At raft_advance. */
void raft_log_free_handed(struct raft_log *l);

#endif
