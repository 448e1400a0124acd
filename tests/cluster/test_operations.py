"""The procedures of docs/operations.md that the other suites do not run,
run as written there: grow a cluster from 3 to 5 voters (then lose two of
the original three and keep writing), and rotate the cluster secret one
node at a time while writes go on."""
import os

from lrcluster import wait_for

SECRET = "operations-test-secret-0123456789\n"


def put_ok(c, i, key, value):
    r = c.put(i, key, value, timeout=10)
    assert r.status in (200, 201, 204), (r.status, r.body)


def member(c, verb, i, secret_path=None):
    def once():
        r = c.cli("member", verb, "--cluster", c.cluster_file, "--secret-file", secret_path or c.secret_path,
                  "--id", str(i))
        assert r.returncode == 0 or "busy" in r.stderr, r.stderr
        return r.returncode == 0
    wait_for("the leader to accept member %s %d" % (verb, i), once, timeout=30)


def test_grow_to_five_voters(make_cluster):
    c = make_cluster(3, extra=2, secret=SECRET)
    c.start_all()
    leader = c.wait_leader()
    for k in range(20):
        put_ok(c, leader, "k%d" % k, "v%d" % k)
    c.write_cluster_file(range(1, 6))  # step 1: every machine's cluster file lists 4 and 5
    for i in (4, 5):
        c.start(i, join=True)  # step 2
        member(c, "add", i)    # step 3: a learner, promoted once caught up
        wait_for("node %d to be a voter" % i, lambda: any(
            m["id"] == i and m["voter"] for m in c.info(c.wait_leader())["members"]), timeout=30)
    info = c.info(c.wait_leader())
    assert sorted(m["id"] for m in info["members"] if m["voter"]) == [1, 2, 3, 4, 5], info
    wait_for("node 5 to catch up", lambda: c.kv(5, "k19") == "v19")
    # Five voters survive two failures.
    for i in (1, 2):
        c.kill(i)
    leader = c.wait_leader(among=[3, 4, 5], timeout=20)
    put_ok(c, leader, "after", "1")
    assert c.kv(leader, "k0", "linearizable") == "v0"


def test_rotate_the_secret_one_node_at_a_time(make_cluster):
    c = make_cluster(3, secret=SECRET)
    c.start_all()
    leader = c.wait_leader()
    put_ok(c, leader, "before", "1")
    new_path = os.path.join(c.dir, "secret.new")
    new = "a brand new secret, rotated 0123456789\n"
    with open(os.open(new_path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
        f.write(new)
    old_path, old = c.secret_path, c.secret
    # One node at a time, the leader last; a majority shares a secret at every step.
    order = [i for i in range(1, 4) if i != leader] + [leader]
    for step, i in enumerate(order):
        c.stop(i)
        c.secret_path, c.secret = new_path, new
        c.start(i)
        c.secret_path, c.secret = old_path, old
        # Writes go on, with whichever secret the majority holds now.
        majority_new = step >= 1
        among = order[:step + 1] if majority_new else [j for j in range(1, 4) if j not in order[:step + 1]]
        leader = c.wait_leader(among=among, timeout=20)
        r = c.admin_req(leader, "PUT", "/api/v1/kv/step%d" % step, body=b"ok", secret=new if majority_new else old)
        assert r.status in (200, 201, 204), (step, r.status, r.body)
    c.secret_path, c.secret = new_path, new
    leader = c.wait_leader()
    put_ok(c, leader, "after", "1")
    for i in range(1, 4):
        wait_for("node %d to have every write" % i, lambda: all(
            c.kv(i, k) is not None for k in ("before", "step0", "step1", "step2", "after")))
    # The old secret proves nothing any more.
    r = c.admin_req(leader, "PUT", "/api/v1/kv/stale", body=b"x", secret=old)
    assert r.status == 401


def test_writes_through_followers_do_not_fail_while_the_leader_restarts(make_cluster):
    """A rolling restart (docs/operations.md "Upgrade") stops the leader with
    SIGTERM: it hands leadership over and refuses writes meanwhile
    ("stopping"). A follower forwarding a write used to relay that 503 to
    its client; it now sends the write to the successor (found by the
    rolling upgrade test, tests/upgrade)."""
    import threading
    c = make_cluster(3, secret=SECRET)
    c.start_all()
    r = wait_for("a sign-up", lambda: (lambda r: r if r.status == 201 else None)(
        c.req(c.wait_leader(), "POST", "/api/v1/signup", {"username": "poster", "password": "a password"})))
    token = r.json()["token"]
    for round_ in range(3):
        leader = c.wait_leader()
        followers = [i for i in range(1, 4) if i != leader]
        stop, failures, acked = threading.Event(), [], []

        def writer(i, site):
            k = 0
            while not stop.is_set():
                if site:  # the site's writes (its 503s say "unavailable")
                    r = c.req(i, "POST", "/api/v1/links", {"title": "t", "url": "https://e.example/%d/%d/%d" %
                                                           (round_, i, k)}, {"Authorization": "Bearer " + token},
                              timeout=10)
                else:     # the KV hook's (its 503s say "stopping" or "not_leader")
                    r = c.put(i, "w%d_%d_%d" % (round_, i, k), "v", timeout=10)
                (acked if r.status in (200, 201, 204) else failures).append((i, r.status, r.body[:100]))
                k += 1
        threads = [threading.Thread(target=writer, args=(i, site)) for i in followers for site in (False, True)]
        for t in threads:
            t.start()
        try:
            wait_for("writes", lambda: len(acked) >= 30 or failures, timeout=30)
            assert c.stop(leader) == 0
            c.start(leader)
            n = len(acked)
            wait_for("writes after the restart", lambda: len(acked) >= n + 30 or failures, timeout=30)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=30)
        assert not failures, failures
