/*
 * write_batch.h — the disk write an async_persist host owes for one or more
 * readies (include/raft.h, ASYNCHRONOUS PERSISTENCE), in the host's own
 * memory so that raft_advance can be called before the write is done.
 *
 * Readies taken while the previous batch is being written are merged into
 * the next one: a truncation drops what the batch itself holds from that
 * index on (or, reaching below it, becomes the batch's truncation of the
 * disk), and the batch's acknowledgements of what it drops; entries are
 * appended, the newest hard state wins. One fsync then covers them all
 * (group commit across readies).
 */
#ifndef LINKRAFT_REPLICA_WRITE_BATCH_H
#define LINKRAFT_REPLICA_WRITE_BATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "raft.h"

struct write_batch {
    raft_index truncate_from;       /* 0: none; else drop the log >= it first */
    struct raft_entry *entries;     /* contiguous; data in `data` (see write_batch_seal) */
    size_t n_entries, cap_entries;
    size_t *offsets;                /* entries[i]'s bytes start at data + offsets[i] */
    size_t cap_offsets;
    uint8_t *data;
    size_t n_data, cap_data;
    bool hs_changed;
    struct raft_hard_state hs;
    raft_index compact_before;      /* 0: none; after the fsync */
    uint64_t seq;                   /* last ready merged in with writes (raft_persisted); 0: none */
    struct raft_message *after;     /* to send once durable (no entries, no data) */
    size_t n_after, cap_after;
};

/* Merges what rd asks to persist, and its send_after_persist, into b.
 * Returns 0, or -1 if memory ran out (b is then unchanged). rd must not
 * carry snapshot data: such a ready is written on its own. */
int write_batch_add(struct write_batch *b, const struct raft_ready *rd);
/* Messages that must wait for what b (and every earlier batch) writes.
 * Returns 0 or -1 (out of memory; b unchanged). */
int write_batch_add_after(struct write_batch *b, const struct raft_message *msgs, size_t n);
/* Something for the disk: a truncation, entries or a hard state. */
bool write_batch_has_writes(const struct write_batch *b);
/* Nothing at all: no writes, messages or compaction. */
bool write_batch_empty(const struct write_batch *b);
/* Points entries[].data into data; call before handing b to the writer
 * (after which b must not change until the write is done). */
void write_batch_seal(struct write_batch *b);
/* Empties b, keeping its memory for the next batch. */
void write_batch_reset(struct write_batch *b);
void write_batch_free(struct write_batch *b);

#endif
