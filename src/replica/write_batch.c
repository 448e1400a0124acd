/*
 * write_batch.c — see write_batch.h.
 */
#include "replica/write_batch.h"

#include <stdlib.h>
#include <string.h>

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t cap2 = *cap ? *cap : 16;
    while (cap2 < need)
        cap2 *= 2;
    void *grown = realloc(*p, cap2 * elem);
    if (!grown)
        return -1;
    *p = grown;
    *cap = cap2;
    return 0;
}

int write_batch_add_after(struct write_batch *b, const struct raft_message *msgs, size_t n)
{
    if (grow((void **)&b->after, &b->cap_after, b->n_after + n, sizeof *b->after))
        return -1;
    for (size_t i = 0; i < n; i++) {
        /* Only a leader's appends carry entries, and those go in send_now. */
        b->after[b->n_after + i] = msgs[i];
        b->after[b->n_after + i].entries = NULL;
        b->after[b->n_after + i].n_entries = 0;
        b->after[b->n_after + i].data = NULL;
    }
    b->n_after += n;
    return 0;
}

int write_batch_add(struct write_batch *b, const struct raft_ready *rd)
{
    /* A truncation inside the batch drops its tail; one at or below its
     * first entry drops it all and must reach the disk too. (The core never
     * truncates past its last entry, which is the batch's last.) */
    size_t keep = b->n_entries;
    if (rd->truncate_from && keep)
        keep = rd->truncate_from > b->entries[0].index ? (size_t)(rd->truncate_from - b->entries[0].index) : 0;
    if (keep > b->n_entries)
        keep = b->n_entries;
    size_t keep_data = keep < b->n_entries ? b->offsets[keep] : b->n_data;
    size_t bytes = 0;
    for (size_t i = 0; i < rd->n_entries; i++)
        bytes += rd->entries[i].len;
    /* Make room first so that a failure leaves b as it was. */
    if (grow((void **)&b->entries, &b->cap_entries, keep + rd->n_entries, sizeof *b->entries) ||
        grow((void **)&b->offsets, &b->cap_offsets, keep + rd->n_entries, sizeof *b->offsets) ||
        grow((void **)&b->data, &b->cap_data, keep_data + bytes, 1) ||
        grow((void **)&b->after, &b->cap_after, b->n_after + rd->n_send_after_persist, sizeof *b->after))
        return -1;

    if (rd->truncate_from) {
        if (keep == 0 && (!b->truncate_from || rd->truncate_from < b->truncate_from))
            b->truncate_from = rd->truncate_from; /* reaches the disk, not just this batch */
        b->n_entries = keep;
        b->n_data = keep_data;
        /* Acknowledgements this batch holds for entries the truncation
         * removes must not leave: once the batch is durable the disk no
         * longer has what they claim (a follower took entries from one
         * leader and, in the same batch, a conflicting suffix from the
         * next; the old leader could count the ack toward a commit).
         * Dropping a message is always safe. */
        size_t k = 0;
        for (size_t i = 0; i < b->n_after; i++) {
            const struct raft_message *m = &b->after[i];
            if (m->type == RAFT_MSG_APPEND_RESP && !m->reject && m->index >= rd->truncate_from)
                continue;
            b->after[k++] = *m;
        }
        b->n_after = k;
    }
    for (size_t i = 0; i < rd->n_entries; i++) {
        const struct raft_entry *e = &rd->entries[i];
        b->entries[b->n_entries] = *e;
        b->entries[b->n_entries].data = NULL;
        b->offsets[b->n_entries] = b->n_data;
        if (e->len)
            memcpy(b->data + b->n_data, e->data, e->len);
        b->n_data += e->len;
        b->n_entries++;
    }
    if (rd->hard_state_changed) {
        b->hs_changed = true;
        b->hs = rd->hard_state;
    }
    if (rd->compact_before > b->compact_before)
        b->compact_before = rd->compact_before;
    if (rd->seq > b->seq)
        b->seq = rd->seq;
    return write_batch_add_after(b, rd->send_after_persist, rd->n_send_after_persist);
}

bool write_batch_has_writes(const struct write_batch *b)
{
    return b->truncate_from || b->n_entries || b->hs_changed;
}

bool write_batch_empty(const struct write_batch *b)
{
    return !write_batch_has_writes(b) && !b->n_after && !b->compact_before;
}

void write_batch_seal(struct write_batch *b)
{
    for (size_t i = 0; i < b->n_entries; i++)
        b->entries[i].data = b->entries[i].len ? b->data + b->offsets[i] : NULL;
}

void write_batch_reset(struct write_batch *b)
{
    b->truncate_from = 0;
    b->n_entries = 0;
    b->n_data = 0;
    b->hs_changed = false;
    b->compact_before = 0;
    b->seq = 0;
    b->n_after = 0;
}

void write_batch_free(struct write_batch *b)
{
    free(b->entries);
    free(b->offsets);
    free(b->data);
    free(b->after);
    memset(b, 0, sizeof *b);
}
