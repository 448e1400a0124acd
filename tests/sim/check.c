/*
 * check.c — the safety invariants, checked as the run goes (dissertation
 * Figure 3.2's guarantees and §3.6's proof obligations), each on its own
 * ghost state kept here, outside the nodes:
 *
 *  - election safety: at most one leader per term over the whole run;
 *  - log matching, incrementally: every entry a node is about to persist is
 *    registered by (index, term) with its data's CRC and the term of the entry
 *    before it; a second sighting must agree on both, which by induction is
 *    "same index and term => identical logs up to there";
 *  - leader completeness: every entry known committed (reported by a node's
 *    commit index or applied) is in the log of every leader elected later,
 *    unless that leader's snapshot covers it; and a committed index never
 *    changes term;
 *  - commit quorum (§3.6): when a leader's commit index advances, a majority of
 *    the voters of its configuration hold that entry on disk;
 *  - the commit rule (§3.6.2): a leader's commit index only ever advances to
 *    an entry of its own term (earlier terms' entries commit with it);
 *  - state machine safety: nodes apply the same entry at each index and reach
 *    the same KV digest; a node applies in order, and its applied index never
 *    goes back except by restart (an older snapshot installed is a violation);
 *  - every term change is justified: a term rises only by becoming a candidate
 *    (exactly +1) or by stepping a message carrying that term; a pre-candidate
 *    never changes its term (§9.6); a term never falls;
 *  - a message from an older term changes nothing but our reply (Figure 3.1's
 *    "reply false if term < currentTerm"): not the log, commit or leader;
 *  - read index safety (§6.4): a read index is at least every index known
 *    committed when the read was requested (checked in kv.c);
 *  - durability before speech (§3.8): a vote grant leaves only once that vote
 *    is durable, an append acknowledgement only once what it acknowledges is
 *    on the sender's disk; and a node never grants two votes in one term,
 *    across crashes (tracked from the grants it actually sent).
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "sim.h"

#define VARIANTS 6

struct sim_logent {
    uint8_t n;
    struct { raft_term term, prev; uint32_t crc; uint8_t prev_known; } v[VARIANTS];
};

struct sim_applied {
    raft_term term;
    uint32_t crc;
    uint64_t digest;
    bool set;
};

void sim_fail(struct sim *s, const char *fmt, ...)
{
    if (s->failed)
        return;
    s->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->why, sizeof s->why, fmt, ap);
    va_end(ap);
    SIM_TRACE(s, "VIOLATION %s", s->why);
}

/* Grows an array of elem-sized items so that index i is valid (zeroed). */
static void *grow(void *arr, size_t *cap, size_t i, size_t elem)
{
    if (i < *cap)
        return arr;
    size_t cap2 = *cap ? *cap : 256;
    while (cap2 <= i)
        cap2 *= 2;
    uint8_t *p = realloc(arr, cap2 * elem);
    if (!p)
        abort();
    memset(p + *cap * elem, 0, (cap2 - *cap) * elem);
    *cap = cap2;
    return p;
}

static uint32_t entry_crc(const struct raft_entry *e)
{
    return crc32c(e->data, e->len) ^ ((uint32_t)e->type << 24);
}

void check_new_entries(struct sim *s, struct sim_node *n, const struct raft_entry *e, size_t count,
                       raft_term prev0)
{
    for (size_t i = 0; i < count; i++) {
        raft_index idx = e[i].index;
        raft_term prev = 0;
        bool prev_known = idx == 1;
        if (i > 0) {
            prev = e[i - 1].term;
            prev_known = true;
        } else if (idx > 1) {
            prev = prev0;
            prev_known = prev != 0;
        }
        uint32_t crc = entry_crc(&e[i]);
        s->logreg = grow(s->logreg, &s->cap_logreg, idx, sizeof *s->logreg);
        struct sim_logent *le = &s->logreg[idx];
        bool found = false;
        for (uint8_t k = 0; k < le->n; k++) {
            if (le->v[k].term != e[i].term)
                continue;
            found = true;
            if (le->v[k].crc != crc) {
                sim_fail(s, "log matching: n%llu holds entry %llu of term %llu with different data than "
                         "another node's entry %llu of term %llu", (unsigned long long)n->id,
                         (unsigned long long)idx, (unsigned long long)e[i].term, (unsigned long long)idx,
                         (unsigned long long)e[i].term);
                return;
            }
            if (prev_known && le->v[k].prev_known && le->v[k].prev != prev) {
                sim_fail(s, "log matching: n%llu has entry %llu/%llu after an entry of term %llu, another "
                         "node has it after term %llu: same index and term, different logs",
                         (unsigned long long)n->id, (unsigned long long)idx, (unsigned long long)e[i].term,
                         (unsigned long long)prev, (unsigned long long)le->v[k].prev);
                return;
            }
            if (prev_known && !le->v[k].prev_known) {
                le->v[k].prev = prev;
                le->v[k].prev_known = 1;
            }
        }
        if (!found && le->n < VARIANTS) {
            le->v[le->n].term = e[i].term;
            le->v[le->n].crc = crc;
            le->v[le->n].prev = prev;
            le->v[le->n].prev_known = prev_known;
            le->n++;
        }
    }
}

static void record_committed(struct sim *s, struct sim_node *n, raft_index i, raft_term t, const char *how)
{
    if (t == 0)
        return;
    s->committed = grow(s->committed, &s->cap_committed, i, sizeof *s->committed);
    s->commit_seen_in = grow(s->commit_seen_in, &s->cap_csi, i, sizeof *s->commit_seen_in);
    if (s->committed[i] == 0) {
        s->committed[i] = t;
        /* The term of the node that saw it first: it was committed in that
         * term or earlier. */
        s->commit_seen_in[i] = raft_current_term(n->r);
        if (i > s->max_committed)
            s->max_committed = i;
    } else if (s->committed[i] != t) {
        sim_fail(s, "leader completeness: index %llu was committed with term %llu, but n%llu %s it with term %llu",
                 (unsigned long long)i, (unsigned long long)s->committed[i], (unsigned long long)n->id, how,
                 (unsigned long long)t);
    }
}

void check_apply(struct sim *s, struct sim_node *n, const struct raft_entry *e, uint64_t digest)
{
    if (e->index != n->applied + 1) {
        sim_fail(s, "state machine safety: n%llu applied index %llu right after %llu (%s)",
                 (unsigned long long)n->id, (unsigned long long)e->index, (unsigned long long)n->applied,
                 e->index <= n->applied ? "applied index went backwards" : "a gap");
        return;
    }
    record_committed(s, n, e->index, e->term, "applied");
    /* The content applied is the content replicated: an entry damaged on
     * some disk and not caught by its checksum must never reach a state
     * machine (log matching registered every copy sent or synced). */
    uint32_t crc = entry_crc(e);
    if (e->index < s->cap_logreg) {
        const struct sim_logent *le = &s->logreg[e->index];
        for (uint8_t k = 0; k < le->n; k++)
            if (le->v[k].term == e->term && le->v[k].crc != crc) {
                sim_fail(s, "state machine safety: n%llu applied entry %llu of term %llu whose content differs "
                         "from the entry replicated at that index and term", (unsigned long long)n->id,
                         (unsigned long long)e->index, (unsigned long long)e->term);
                return;
            }
    }
    s->appliedreg = grow(s->appliedreg, &s->cap_appliedreg, e->index, sizeof *s->appliedreg);
    struct sim_applied *a = &s->appliedreg[e->index];
    if (!a->set) {
        *a = (struct sim_applied){ e->term, crc, digest, true };
    } else if (a->term != e->term || a->crc != crc) {
        sim_fail(s, "state machine safety: n%llu applied entry %llu of term %llu, another node applied "
                 "a different entry (term %llu) at that index", (unsigned long long)n->id,
                 (unsigned long long)e->index, (unsigned long long)e->term, (unsigned long long)a->term);
    } else if (a->digest != digest) {
        sim_fail(s, "state machine safety: n%llu's KV after index %llu differs from another node's",
                 (unsigned long long)n->id, (unsigned long long)e->index);
    }
}

void check_install(struct sim *s, struct sim_node *n, const struct raft_snapshot_meta *meta, uint64_t digest)
{
    if (meta->index < n->applied) {
        sim_fail(s, "state machine safety: n%llu installed a snapshot at %llu although it had applied up to "
                 "%llu: its applied index went backwards", (unsigned long long)n->id,
                 (unsigned long long)meta->index, (unsigned long long)n->applied);
        return;
    }
    record_committed(s, n, meta->index, meta->term, "installed a snapshot ending at");
    s->appliedreg = grow(s->appliedreg, &s->cap_appliedreg, meta->index, sizeof *s->appliedreg);
    struct sim_applied *a = &s->appliedreg[meta->index];
    if (a->set && (a->term != meta->term || a->digest != digest))
        sim_fail(s, "state machine safety: n%llu installed a snapshot at %llu (term %llu) whose KV differs "
                 "from what applying the log gave other nodes", (unsigned long long)n->id,
                 (unsigned long long)meta->index, (unsigned long long)meta->term);
}

static raft_index durable_last(const struct sim_disk *d)
{
    if (d->n_log)
        return d->log[d->n_log - 1].index;
    return d->snap.have ? d->snap.meta.index : 0;
}

void check_send(struct sim *s, struct sim_node *n, const struct raft_message *m)
{
    if (m->type == RAFT_MSG_VOTE_RESP && !m->reject) {
        const struct raft_hard_state *hs = &n->disk.hs;
        if (!(hs->term > m->term || (hs->term == m->term && hs->vote == m->to)))
            sim_fail(s, "durability: n%llu sent its vote for n%llu in term %llu before it was on disk "
                     "(disk has term %llu vote %llu)", (unsigned long long)n->id, (unsigned long long)m->to,
                     (unsigned long long)m->term, (unsigned long long)hs->term, (unsigned long long)hs->vote);
        n->votes = grow(n->votes, &n->cap_votes, m->term, sizeof *n->votes);
        if (n->votes[m->term] && n->votes[m->term] != m->to)
            sim_fail(s, "election safety: n%llu granted its vote in term %llu to n%llu and to n%llu",
                     (unsigned long long)n->id, (unsigned long long)m->term,
                     (unsigned long long)n->votes[m->term], (unsigned long long)m->to);
        n->votes[m->term] = m->to;
    }
    /* A message carries its sender's term: that term must be on the
     * sender's disk first, or a crash could bring it back in an older term
     * to act twice in the same one. A candidate's vote requests also need
     * its self-vote there (else, restarted, it could vote for another in
     * the same term). Pre-votes carry a term not yet taken; a read index
     * request carries no state. */
    if (m->type != RAFT_MSG_PREVOTE && m->type != RAFT_MSG_PREVOTE_RESP && m->type != RAFT_MSG_READ_INDEX &&
        m->term > n->disk.hs.term)
        sim_fail(s, "durability: n%llu sent %s of term %llu while its disk holds term %llu",
                 (unsigned long long)n->id, raft_msg_type_name(m->type), (unsigned long long)m->term,
                 (unsigned long long)n->disk.hs.term);
    if (m->type == RAFT_MSG_VOTE && n->disk.hs.term == m->term && n->disk.hs.vote != n->id)
        sim_fail(s, "durability: candidate n%llu asked for votes in term %llu before its own vote was on disk "
                 "(disk has vote %llu)", (unsigned long long)n->id, (unsigned long long)m->term,
                 (unsigned long long)n->disk.hs.vote);
    if (m->type == RAFT_MSG_APPEND && m->n_entries)
        check_new_entries(s, n, m->entries, m->n_entries, m->prev_term); /* log matching, for what others see */
    if (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT || m->type == RAFT_MSG_SNAPSHOT) {
        s->spoke_inc_of_term = grow(s->spoke_inc_of_term, &s->cap_sit, m->term, sizeof *s->spoke_inc_of_term);
        s->spoke_inc_of_term[m->term] = (uint64_t)n->incarnation + 1;
    }
    if (m->type == RAFT_MSG_APPEND_RESP && !m->reject && m->index > durable_last(&n->disk))
        sim_fail(s, "durability: n%llu acknowledged entries up to %llu in term %llu but its disk holds only up to %llu",
                 (unsigned long long)n->id, (unsigned long long)m->index, (unsigned long long)m->term,
                 (unsigned long long)durable_last(&n->disk));
}

void check_disk_synced(struct sim *s, struct sim_node *n)
{
    const struct sim_disk *d = &n->disk;
    if (d->hs.term > n->max_hs_term)
        n->max_hs_term = d->hs.term;
    raft_index from = d->changed_from;
    raft_index last = durable_last(d);
    if (from && d->n_log && from >= d->log[0].index && from <= last) {
        /* Log matching, for what reached the disk. */
        size_t k = (size_t)(from - d->log[0].index);
        raft_term prev0 = k ? d->log[k - 1].term : (d->snap.have && d->snap.meta.index + 1 == from ? d->snap.meta.term : 0);
        check_new_entries(s, n, &d->log[k], d->n_log - k, prev0);
    }
    if (!from || from > n->applied || s->failed)
        return;
    raft_index upto = n->applied < last ? n->applied : last;
    for (raft_index i = from; i <= upto; i++) {
        if (d->n_log == 0 || i < d->log[0].index)
            continue; /* compacted behind the snapshot */
        raft_term t = d->log[i - d->log[0].index].term;
        if (i < s->cap_appliedreg && s->appliedreg[i].set && s->appliedreg[i].term != t) {
            sim_fail(s, "durability: n%llu applied entry %llu of term %llu, and its disk now holds term %llu there",
                     (unsigned long long)n->id, (unsigned long long)i,
                     (unsigned long long)s->appliedreg[i].term, (unsigned long long)t);
            return;
        }
    }
    if (last < n->applied && !(d->snap.have && d->snap.meta.index >= n->applied))
        sim_fail(s, "durability: n%llu applied up to %llu, and its disk now ends at %llu (truncated)",
                 (unsigned long long)n->id, (unsigned long long)n->applied, (unsigned long long)last);
}

void check_term_change(struct sim *s, struct sim_node *n, raft_term t0, enum raft_role r0,
                       const struct raft_message *m)
{
    raft_term t1 = raft_current_term(n->r);
    enum raft_role r1 = raft_role(n->r);
    const char *what = m ? raft_msg_type_name(m->type) : "a tick";
    if (t1 < t0) {
        sim_fail(s, "term justification: n%llu's term fell from %llu to %llu on %s", (unsigned long long)n->id,
                 (unsigned long long)t0, (unsigned long long)t1, what);
        return;
    }
    if (r1 == RAFT_PRECANDIDATE && t1 != t0) {
        sim_fail(s, "term justification: n%llu became a pre-candidate and moved its term from %llu to %llu "
                 "(a pre-vote must not touch the term, §9.6)", (unsigned long long)n->id,
                 (unsigned long long)t0, (unsigned long long)t1);
        return;
    }
    if (t1 == t0)
        return;
    if (m && m->term == t1)
        return; /* stepped a message carrying the new term */
    bool campaigned = t1 == t0 + 1 && (r1 == RAFT_CANDIDATE || r1 == RAFT_LEADER) &&
                      raft_voted_for(n->r) == n->id;
    if (!campaigned)
        sim_fail(s, "term justification: n%llu's term rose from %llu to %llu on %s (now %s) without becoming "
                 "a candidate or seeing that term", (unsigned long long)n->id, (unsigned long long)t0,
                 (unsigned long long)t1, what, raft_role_name(r1));
    else if (r0 == RAFT_LEADER)
        sim_fail(s, "term justification: leader n%llu started an election", (unsigned long long)n->id);
}

static void check_leader_completeness(struct sim *s, struct sim_node *n, raft_term term)
{
    const struct raft_snapshot_meta *snap = raft_snapshot(n->r);
    raft_index covered = snap ? snap->index : 0;
    for (raft_index i = covered + 1; i < s->cap_committed; i++) {
        /* §3.6.3: entries committed in earlier terms. A leader of an older
         * term can still win late (its candidate paused with the votes in
         * flight): it need not hold what later terms committed. */
        if (!s->committed[i] || s->commit_seen_in[i] >= term)
            continue;
        raft_term t = raft_term_at(n->r, i);
        if (t != s->committed[i]) {
            sim_fail(s, "leader completeness: n%llu became leader of term %llu without committed entry %llu "
                     "(term %llu); its log has %s %llu", (unsigned long long)n->id, (unsigned long long)term,
                     (unsigned long long)i, (unsigned long long)s->committed[i],
                     t ? "term" : "nothing there, last index", (unsigned long long)(t ? t : raft_last_index(n->r)));
            return;
        }
    }
}

/* Does n's disk hold entry (index, term), or a snapshot covering index? */
static bool durable_has(const struct sim_disk *d, raft_index index, raft_term term)
{
    if (d->snap.have && d->snap.meta.index >= index)
        return true;
    if (d->n_log == 0 || index < d->log[0].index || index > d->log[d->n_log - 1].index)
        return false;
    return d->log[index - d->log[0].index].term == term;
}

/* §3.6: an entry is committed once stored on a majority of the voters of
 * the leader's configuration; "stored" means on their disks, not in memory. */
static void check_commit_quorum(struct sim *s, struct sim_node *leader, raft_index c, raft_term entry_term)
{
    const struct raft_config *cfg = raft_configuration(leader->r);
    size_t voters = 0, holding = 0;
    for (uint32_t i = 0; i < cfg->n; i++) {
        if (cfg->members[i].role != RAFT_VOTER)
            continue;
        voters++;
        raft_id id = cfg->members[i].id;
        if (id >= 1 && id <= SIM_MAX_NODES && durable_has(&s->nodes[id - 1].disk, c, entry_term))
            holding++;
        else if (s->hazard_slot >= 0 && id == s->nodes[s->hazard_slot].id)
            holding++; /* its acknowledgement may predate its disk fault: a fault, not the protocol's doing */
    }
    if (holding * 2 <= voters)
        sim_fail(s, "commit quorum: leader n%llu of term %llu committed index %llu (term %llu), but only %zu of its "
                 "%zu voters have that entry on disk", (unsigned long long)leader->id,
                 (unsigned long long)raft_current_term(leader->r), (unsigned long long)c,
                 (unsigned long long)entry_term, holding, voters);
}

void check_crash(struct sim *s, struct sim_node *n, raft_term term)
{
    /* A one-voter leader is elected by its own vote alone, inside one step,
     * before the hard state with its term is written. If it crashes before
     * that write, it restarts in the older term with no vote in the new one,
     * and may rightly vote for another candidate of that term (seed
     * 1151029: the leader of term 10 removed itself, leaving {n2}; n2 led
     * term 11 alone, crashed with term 10 on disk, came back and voted n3
     * leader of term 11). Nothing of such a reign can have escaped: every
     * message of its term but a pre-vote's answer leaves only once the term
     * is on disk (check_send), and it commits nothing — no entry of its term
     * is durable, so it answers no client and applies nothing new. Only a
     * reign whose term is above what the disk holds after the crash is
     * forgotten; one that wrote its term stays, and a second leader of that
     * term is a violation as before. */
    for (raft_term t = n->disk.hs.term + 1; t <= term && t < s->cap_lot && t < s->cap_lit; t++) {
        if (s->leader_of_term[t] != n->id || s->leader_inc_of_term[t] != n->incarnation)
            continue;
        if (t < s->cap_sit && s->spoke_inc_of_term[t] == (uint64_t)n->incarnation + 1)
            continue; /* its traffic left (check_send has failed the run already) */
        SIM_TRACE(s, "n%llu's reign of term %llu vanished: its disk holds term %llu, no word of it left",
                  (unsigned long long)n->id, (unsigned long long)t, (unsigned long long)n->disk.hs.term);
        s->leader_of_term[t] = 0;
    }
}

void check_after_event(struct sim *s)
{
    for (int i = 0; i < SIM_MAX_NODES && !s->failed; i++) {
        struct sim_node *n = &s->nodes[i];
        if (!n->alive)
            continue;
        enum raft_role role = raft_role(n->r);
        raft_term term = raft_current_term(n->r);
        if (role == RAFT_LEADER) {
            s->leader_of_term = grow(s->leader_of_term, &s->cap_lot, term, sizeof *s->leader_of_term);
            if (s->leader_of_term[term] && s->leader_of_term[term] != n->id) {
                sim_fail(s, "election safety: n%llu and n%llu were both leader of term %llu",
                         (unsigned long long)s->leader_of_term[term], (unsigned long long)n->id,
                         (unsigned long long)term);
                return;
            }
            if (n->last_role != RAFT_LEADER || n->last_term != term) {
                s->leader_inc_of_term = grow(s->leader_inc_of_term, &s->cap_lit, term, sizeof *s->leader_inc_of_term);
                s->spoke_inc_of_term = grow(s->spoke_inc_of_term, &s->cap_sit, term, sizeof *s->spoke_inc_of_term);
                if (s->leader_of_term[term] == n->id && s->leader_inc_of_term[term] != n->incarnation &&
                    s->spoke_inc_of_term[term] == (uint64_t)s->leader_inc_of_term[term] + 1) {
                    /* Its first reign spoke in a term that was not durable
                     * (or it voted twice): two logs may claim this term. A
                     * reign that crashed before a word left is invisible. */
                    sim_fail(s, "election safety: n%llu led term %llu, restarted, and led term %llu again",
                             (unsigned long long)n->id, (unsigned long long)term, (unsigned long long)term);
                    return;
                }
                s->leader_inc_of_term[term] = n->incarnation;
                s->leader_of_term[term] = n->id;
                s->elections++;
                SIM_TRACE(s, "n%llu is LEADER of term %llu (last index %llu, commit %llu)",
                          (unsigned long long)n->id, (unsigned long long)term,
                          (unsigned long long)raft_last_index(n->r), (unsigned long long)raft_commit_index(n->r));
                check_leader_completeness(s, n, term);
            }
        } else if (n->last_role != role || n->last_term != term) {
            SIM_TRACE(s, "n%llu is %s of term %llu", (unsigned long long)n->id, raft_role_name(role),
                      (unsigned long long)term);
        }
        n->last_role = role;
        n->last_term = term;
        raft_index c = raft_commit_index(n->r);
        if (c > n->commit_seen && role == RAFT_LEADER && raft_term_at(n->r, c) != term) {
            sim_fail(s, "commit rule: leader n%llu of term %llu advanced its commit index from %llu to %llu, an "
                     "entry of term %llu: only entries of the leader's own term are committed by counting "
                     "replicas (§3.6.2, Figure 3.7)", (unsigned long long)n->id, (unsigned long long)term,
                     (unsigned long long)n->commit_seen, (unsigned long long)c,
                     (unsigned long long)raft_term_at(n->r, c));
            return;
        }
        if (c > n->commit_seen && role == RAFT_LEADER)
            check_commit_quorum(s, n, c, raft_term_at(n->r, c));
        if (c > n->commit_seen) {
            for (raft_index k = n->commit_seen + 1; k <= c; k++)
                record_committed(s, n, k, raft_term_at(n->r, k), "reports committed");
            n->commit_seen = c;
        }
    }
}

void check_free(struct sim *s)
{
    free(s->leader_of_term);
    free(s->leader_inc_of_term);
    free(s->spoke_inc_of_term);
    free(s->commit_seen_in);
    free(s->logreg);
    free(s->committed);
    free(s->appliedreg);
    for (int i = 0; i < SIM_MAX_NODES; i++)
        free(s->nodes[i].votes);
}

void check_stale_before(const struct sim_node *n, struct sim_view *v)
{
    v->term = raft_current_term(n->r);
    v->last = raft_last_index(n->r);
    v->last_term = raft_term_at(n->r, v->last);
    v->commit = raft_commit_index(n->r);
    v->leader = raft_leader(n->r);
}

void check_stale_after(struct sim *s, const struct sim_node *n, const struct sim_view *v,
                       const struct raft_message *m)
{
    if (m->term >= v->term)
        return;
    struct sim_view w;
    check_stale_before(n, &w);
    if (w.last != v->last || w.last_term != v->last_term || w.commit != v->commit || w.leader != v->leader) {
        char desc[256];
        sim_fail(s, "stale message: n%llu in term %llu acted on %s: log %llu/%llu -> %llu/%llu, commit %llu -> "
                 "%llu, leader %llu -> %llu", (unsigned long long)n->id, (unsigned long long)v->term,
                 sim_msg_desc(m, desc, sizeof desc), (unsigned long long)v->last,
                 (unsigned long long)v->last_term, (unsigned long long)w.last, (unsigned long long)w.last_term,
                 (unsigned long long)v->commit, (unsigned long long)w.commit, (unsigned long long)v->leader,
                 (unsigned long long)w.leader);
    }
}
