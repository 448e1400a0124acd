/*
 * test_identity.c — DIR/identity (src/node/identity.c): the cluster id is
 * the same for every member bootstrapping from one cluster file and secret
 * and differs for another file or secret; the file round-trips, is private
 * and a damaged one is refused with its name; the handshake check refuses
 * another cluster and a member's replaced data directory, accepts a --join
 * node's new one, and learns the cluster id once.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "../harness.h"
#include "node/identity.h"

static struct cluster three(const char *port1)
{
    struct cluster c;
    memset(&c, 0, sizeof c);
    c.n = 3;
    for (size_t i = 0; i < 3; i++) {
        c.members[i].id = 3 - i; /* the file's order must not matter */
        snprintf(c.members[i].raft_addr, sizeof c.members[i].raft_addr, "127.0.0.1:%s%zu", port1, 3 - i);
        snprintf(c.members[i].http_addr, sizeof c.members[i].http_addr, "127.0.0.1:9%zu", i);
    }
    return c;
}

TEST(cluster_id_is_shared_by_the_members_and_not_by_other_clusters)
{
    struct cluster c = three("700"), other = three("710");
    struct cluster reordered = c;
    reordered.members[0] = c.members[2];
    reordered.members[2] = c.members[0];
    const uint8_t *s1 = (const uint8_t *)"0123456789abcdef", *s2 = (const uint8_t *)"0123456789abcdeF";
    struct identity a, b, d, e, j;
    identity_new(&a, &c, s1, 16, false);
    identity_new(&b, &reordered, s1, 16, false);
    identity_new(&d, &other, s1, 16, false);
    identity_new(&e, &c, s2, 16, false);
    identity_new(&j, &c, s1, 16, true);
    CHECK(a.self.cluster_known && !memcmp(a.self.cluster, b.self.cluster, NET_ID_BYTES));
    CHECK(memcmp(a.self.cluster, d.self.cluster, NET_ID_BYTES) != 0);
    CHECK(memcmp(a.self.cluster, e.self.cluster, NET_ID_BYTES) != 0);
    CHECK(memcmp(a.self.incarnation, b.self.incarnation, NET_ID_BYTES) != 0); /* random per directory */
    CHECK(!j.self.cluster_known && j.self.joined);
}

TEST(the_file_round_trips_is_private_and_damage_is_named)
{
    char dir[] = "/tmp/test_identity_XXXXXX";
    REQUIRE(mkdtemp(dir));
    struct cluster c = three("700");
    struct identity a, got;
    bool found = true;
    char err[1200], path[128];
    CHECK_EQ_I(identity_load(dir, &got, &found, err, sizeof err), 0);
    CHECK(!found);
    identity_new(&a, &c, NULL, 0, false);
    bool changed;
    struct net_identity peer = { .cluster_known = false };
    memset(peer.incarnation, 7, NET_ID_BYTES);
    CHECK_EQ_I(identity_check(&a, 2, &peer, false, &changed), NET_CHECK_OK);
    CHECK(changed);
    REQUIRE(identity_save(dir, &a, err, sizeof err) == 0);
    snprintf(path, sizeof path, "%s/identity", dir);
    struct stat st;
    REQUIRE(stat(path, &st) == 0);
    CHECK_EQ_U(st.st_mode & 0777, 0600);
    CHECK_EQ_I(identity_load(dir, &got, &found, err, sizeof err), 0);
    CHECK(found && got.n_pins == 1 && got.pins[0].id == 2);
    CHECK(!memcmp(&got.self, &a.self, sizeof a.self));
    CHECK(!memcmp(got.pins[0].incarnation, peer.incarnation, NET_ID_BYTES));
    FILE *f = fopen(path, "a");
    fputs("garbage\n", f);
    fclose(f);
    CHECK_EQ_I(identity_load(dir, &got, &found, err, sizeof err), -1);
    CHECK(strstr(err, "identity is damaged") != NULL && strstr(err, "--join") != NULL);
    unlink(path);
    snprintf(path, sizeof path, "%s/identity.tmp", dir);
    unlink(path);
    rmdir(dir);
}

/* A save writes over DIR/identity.tmp, preallocated to the longest file,
 * and cuts it to size (so that it needs no new block on a full disk); the
 * next reserve is made after it. A shorter identity after a longer one
 * reads back exactly. */
TEST(saves_write_over_a_reserve_kept_for_the_next)
{
    char dir[] = "/tmp/test_identity_XXXXXX";
    REQUIRE(mkdtemp(dir));
    char err[1200], tmp[128], path[128];
    snprintf(tmp, sizeof tmp, "%s/identity.tmp", dir);
    snprintf(path, sizeof path, "%s/identity", dir);
    CHECK_EQ_I(identity_reserve(dir), 0);
    struct stat st;
    REQUIRE(stat(tmp, &st) == 0);
    CHECK_EQ_U(st.st_size, IDENTITY_TEXT_MAX);
    struct cluster c = three("700");
    struct identity a, got;
    identity_new(&a, &c, NULL, 0, false);
    bool changed, found;
    for (raft_id p = 1; p <= 40; p++) {
        struct net_identity peer = { .cluster_known = false };
        memset(peer.incarnation, (int)p, NET_ID_BYTES);
        CHECK_EQ_I(identity_check(&a, p, &peer, false, &changed), NET_CHECK_OK);
    }
    REQUIRE(identity_save(dir, &a, err, sizeof err) == 0);
    a.n_pins = 1;
    REQUIRE(identity_save(dir, &a, err, sizeof err) == 0);
    CHECK_EQ_I(identity_load(dir, &got, &found, err, sizeof err), 0);
    CHECK(found && got.n_pins == 1 && got.pins[0].id == 1);
    REQUIRE(stat(path, &st) == 0);
    CHECK(st.st_size < 200);
    REQUIRE(stat(tmp, &st) == 0);
    CHECK_EQ_U(st.st_size, IDENTITY_TEXT_MAX);
    unlink(path);
    unlink(tmp);
    rmdir(dir);
}

TEST(the_check_refuses_other_clusters_and_replaced_directories)
{
    struct cluster c = three("700"), other = three("710");
    struct identity me, peer2, stranger, joiner;
    identity_new(&me, &c, NULL, 0, false);
    identity_new(&peer2, &c, NULL, 0, false);
    identity_new(&stranger, &other, NULL, 0, false);
    bool changed;
    CHECK_EQ_I(identity_check(&me, 2, &stranger.self, false, &changed), NET_CHECK_OTHER_CLUSTER);
    CHECK(!changed && me.n_pins == 0);
    CHECK_EQ_I(identity_check(&me, 2, &peer2.self, false, &changed), NET_CHECK_OK);
    CHECK(changed && me.n_pins == 1);
    CHECK_EQ_I(identity_check(&me, 2, &peer2.self, false, &changed), NET_CHECK_OK);
    CHECK(!changed);
    /* Node 2's directory is lost; it comes back with a new one. */
    struct identity wiped;
    identity_new(&wiped, &c, NULL, 0, false);
    CHECK_EQ_I(identity_check(&me, 2, &wiped.self, false, &changed), NET_CHECK_REPLACED);
    CHECK(!changed);
    /* Nor with --join while it is still a voter (never removed) ... */
    identity_new(&joiner, &c, NULL, 0, true);
    CHECK_EQ_I(identity_check(&me, 2, &joiner.self, true, &changed), NET_CHECK_REPLACED);
    CHECK(!changed);
    /* ... but with --join after it was removed (added back as a learner). */
    CHECK_EQ_I(identity_check(&me, 2, &joiner.self, false, &changed), NET_CHECK_OK);
    CHECK(changed && !memcmp(me.pins[0].incarnation, joiner.self.incarnation, NET_ID_BYTES));
    /* A --join node learns the cluster id from the first member, once. */
    CHECK_EQ_I(identity_check(&joiner, 1, &me.self, false, &changed), NET_CHECK_OK);
    CHECK(changed && joiner.self.cluster_known && !memcmp(joiner.self.cluster, me.self.cluster, NET_ID_BYTES));
    CHECK_EQ_I(identity_check(&joiner, 3, &stranger.self, false, &changed), NET_CHECK_OTHER_CLUSTER);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    RUN(cluster_id_is_shared_by_the_members_and_not_by_other_clusters);
    RUN(the_file_round_trips_is_private_and_damage_is_named);
    RUN(the_check_refuses_other_clusters_and_replaced_directories);
    RUN(saves_write_over_a_reserve_kept_for_the_next);
    return HARNESS_END();
}
