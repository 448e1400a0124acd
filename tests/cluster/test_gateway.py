"""The gateway (issue 5) with real processes: reads to ready nodes, writes to
the leader, transparent retries when the leader dies, several gateways."""
import threading
import time

from lrcluster import request, wait_for


def gw_put(gw, key, value, headers=None):
    return request(gw, "PUT", "/api/v1/kv/" + key, body=value.encode(), headers=headers, timeout=10)


def gw_get(gw, key):
    return request(gw, "GET", "/api/v1/kv/" + key)


def test_reads_spread_writes_to_leader(make_cluster):
    c = make_cluster(3)
    c.start_all()
    gw = c.start_gateway()
    leader = c.wait_leader()
    wait_for("gateway to see the leader", lambda: gw_put(gw, "probe", "1").headers.get("x-served-by") == str(leader))
    for k in range(20):
        r = gw_put(gw, "k%d" % k, str(k))
        assert r.status == 200 and r.headers["x-served-by"] == str(leader)
    served = set()
    for i in range(1, 4):
        wait_for("node %d ready" % i, lambda i=i: c.get(i, "/readyz").status == 200)
    deadline = time.monotonic() + 10
    while len(served) < 2 and time.monotonic() < deadline:
        r = gw_get(gw, "k19")
        assert r.status == 200 and r.body == b"19"
        served.add(r.headers["x-served-by"])
    assert len(served) >= 2, served


def test_idempotency_key_makes_a_repeat_harmless(make_cluster):
    c = make_cluster(3)
    c.start_all()
    gw = c.start_gateway()
    c.wait_leader()
    wait_for("gateway ready", lambda: gw_put(gw, "warm", "1").status == 200)
    r1 = gw_put(gw, "idem", "first", headers={"Idempotency-Key": "abc"})
    r2 = gw_put(gw, "idem", "second", headers={"Idempotency-Key": "abc"})
    assert r1.status == 200 and r2.status == 200  # the first result, returned again
    assert gw_get(gw, "idem").body == b"first"  # and the repeat changed nothing


def test_seed_case_3_and_4_follower_dies_and_returns(make_cluster):
    c = make_cluster(3)
    c.start_all()
    gw = c.start_gateway()
    leader = c.wait_leader()
    wait_for("gateway ready", lambda: gw_put(gw, "warm", "1").status == 200)
    follower = next(i for i in range(1, 4) if i != leader)
    c.kill(follower)
    # Within a few health-check rounds no read goes to the dead node, and
    # every read and write succeeds.
    time_limit = time.monotonic() + 2
    for k in range(200):
        r = gw_get(gw, "warm")
        assert r.status == 200
        if time.monotonic() > time_limit:
            assert r.headers["x-served-by"] != str(follower)
    for k in range(50):
        assert gw_put(gw, "f%d" % k, str(k)).status == 200
    c.start(follower)
    wait_for("follower caught up", lambda: c.kv(follower, "f49") == "49")


def test_seed_case_1_and_2_leader_dies_mid_writes(make_cluster):
    c = make_cluster(3)
    c.start_all()
    gw = c.start_gateway()
    leader = c.wait_leader()
    wait_for("gateway ready", lambda: gw_put(gw, "warm", "1").status == 200)
    acked, failed = [], []
    stop = threading.Event()

    def writer():
        k = 0
        while not stop.is_set():
            r = gw_put(gw, "w%d" % k, str(k))
            (acked if r.status == 200 else failed).append((k, r.status, r.body))
            k += 1

    t = threading.Thread(target=writer)
    t.start()
    wait_for("writes flowing", lambda: len(acked) >= 50)
    c.kill(leader)
    new = c.wait_leader(exclude=(leader,))
    n_before = len(acked)
    wait_for("writes flowing again", lambda: len(acked) >= n_before + 50, timeout=15)
    stop.set()
    t.join()
    assert not failed, failed[:3]  # the user saw success every time
    for k, _, _ in acked:
        assert c.kv(new, "w%d" % k, consistency="linearizable") == str(k)
    # Seed case 2: the old leader returns, follows and catches up.
    c.start(leader)
    last = acked[-1][0]
    wait_for("old leader caught up", lambda: c.kv(leader, "w%d" % last) == str(last))
    assert c.get(leader, "/leaderz").status == 503 or c.leader() == leader


def test_two_gateways_one_killed(make_cluster):
    c = make_cluster(3)
    c.start_all()
    gw1 = c.start_gateway("gw1")
    gw2 = c.start_gateway("gw2")
    c.wait_leader()
    wait_for("gateways ready", lambda: gw_put(gw1, "a", "1").status == 200 and gw_put(gw2, "b", "2").status == 200)
    c.kill_gateway("gw1")
    for k in range(20):
        assert gw_put(gw2, "g%d" % k, str(k)).status == 200
    assert gw_get(gw2, "a").body == b"1"


def test_every_node_killed_and_restarted_through_gateway(make_cluster):
    c = make_cluster(3)
    c.start_all()
    gw = c.start_gateway()
    c.wait_leader()
    wait_for("gateway ready", lambda: gw_put(gw, "warm", "1").status == 200)
    for k in range(100):
        assert gw_put(gw, "p%d" % k, str(k)).status == 200
    for i in range(1, 4):
        c.kill(i)
    c.start_all()
    c.wait_leader()
    wait_for("gateway sees the cluster again", lambda: gw_get(gw, "p99").status == 200, timeout=15)
    for k in range(100):
        r = request(gw, "GET", "/api/v1/kv/p%d" % k, headers={"X-Consistency": "linearizable"})
        assert r.status == 200 and r.body == str(k).encode()
