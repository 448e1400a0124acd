"""Process-level tests of a durable replica (issue 3): three real
`linkraft node` processes on loopback, killed and restarted for real."""
import os
import random
import signal
import socket
import struct
import threading
import time

from lrcluster import wait_for


def put_ok(c, i, key, value):
    r = c.put(i, key, value)
    assert r.status == 200, (r.status, r.body)
    return int(r.headers["x-raft-index"])


def wait_value(c, i, key, value, timeout=10):
    wait_for("node %d to have %s=%s" % (i, key, value), lambda: c.kv(i, key) == value, timeout)


def test_election_one_leader_all_agree(make_cluster):
    c = make_cluster(3)
    c.start_all()
    leader = c.wait_leader()
    wait_for("every node to know leader %d" % leader,
             lambda: all(c.info(i)["leader"] == leader for i in range(1, 4)))
    terms = {c.info(i)["term"] for i in range(1, 4)}
    assert len(terms) == 1
    leaders = [i for i in range(1, 4) if c.get(i, "/leaderz").status == 200]
    assert leaders == [leader]
    for i in range(1, 4):
        wait_for("node %d ready" % i, lambda i=i: c.get(i, "/readyz").status == 200)
    r = c.cli("status", "--cluster", c.cluster_file)
    assert r.returncode == 0, r.stderr
    assert "leader: %d" % leader in r.stdout


def test_replication_reaches_every_node(make_cluster):
    c = make_cluster(3)
    c.start_all()
    leader = c.wait_leader()
    for k in range(50):
        put_ok(c, leader, "k%d" % k, "v%d" % k)
    for i in range(1, 4):
        for k in (0, 25, 49):
            wait_value(c, i, "k%d" % k, "v%d" % k)
    # A write sent to a follower is forwarded to the leader, and answered
    # once the follower itself has applied it (read-your-writes there).
    follower = next(i for i in range(1, 4) if i != leader)
    r = c.put(follower, "x", "y")
    assert r.status == 200, (r.status, r.body)
    assert r.headers["x-served-by"] == str(follower) and r.headers["x-leader"] == str(leader)
    assert c.kv(follower, "x") == "y"
    # Linearizable reads from a follower go through the leader's read index.
    assert c.kv(follower, "k49", consistency="linearizable") == "v49"


def test_kill9_leader_loses_nothing(make_cluster):
    c = make_cluster(3)
    c.start_all()
    leader = c.wait_leader()
    for k in range(100):
        put_ok(c, leader, "a%d" % k, str(k))
    c.kill(leader)
    new = c.wait_leader(exclude=(leader,))
    assert new != leader
    for k in range(100):
        assert c.kv(new, "a%d" % k, consistency="linearizable") == str(k)
    put_ok(c, new, "after", "1")
    # The old leader comes back as a follower and catches up.
    c.start(leader)
    wait_value(c, leader, "after", "1")
    assert c.get(leader, "/leaderz").status == 503 or c.leader() == leader


def test_restarted_follower_catches_up_from_log(make_cluster):
    c = make_cluster(3)
    c.start_all()
    leader = c.wait_leader()
    follower = next(i for i in range(1, 4) if i != leader)
    put_ok(c, leader, "before", "1")
    wait_value(c, follower, "before", "1")
    c.kill(follower)
    last = 0
    for k in range(200):
        last = put_ok(c, leader, "b%d" % k, str(k))
    c.start(follower)
    wait_for("follower to apply %d" % last, lambda: c.applied(follower) >= last)
    assert c.kv(follower, "b199") == "199"
    assert c.kv(follower, "before") == "1"


def test_far_behind_follower_catches_up_by_snapshot(make_cluster):
    c = make_cluster(3, node_args=["--snapshot-entries", "100", "--trailing-entries", "20"])
    c.start_all()
    leader = c.wait_leader()
    follower = next(i for i in range(1, 4) if i != leader)
    c.kill(follower)
    last = 0
    for k in range(600):
        last = put_ok(c, leader, "s%d" % k, str(k))
    wait_for("leader to snapshot", lambda: c.info(leader)["applied"] >= last)
    c.start(follower)
    wait_for("follower to apply %d" % last, lambda: c.applied(follower) >= last, timeout=20)
    assert c.metric(follower, "linkraft_raft_snapshots_installed_total") >= 1
    for k in (0, 299, 599):
        assert c.kv(follower, "s%d" % k) == str(k)
    # Restarting from its installed snapshot keeps everything.
    c.kill(follower)
    c.start(follower)
    wait_for("follower to come back", lambda: c.applied(follower) >= last)
    assert c.kv(follower, "s0") == "0"
    # Snapshots every 100 entries under load never trip over each other
    # (one at a time, from the copy to its adoption).
    for i in range(1, 4):
        with open(os.path.join(c.dir, "node%d.log" % i), errors="replace") as f:
            failed = [line for line in f if "snapshot of the database failed" in line]
        assert not failed, failed


def test_kill9_every_node_during_writes_loses_no_ack(make_cluster):
    c = make_cluster(3)
    c.start_all()
    c.wait_leader()
    acked = {}
    stop = threading.Event()

    def writer():
        k = 0
        while not stop.is_set():
            leader = c.leader()
            if not leader:
                time.sleep(0.01)
                continue
            key = "w%d" % k
            try:
                r = c.put(leader, key, str(k), headers={"Idempotency-Key": key})
                if r.status == 200:
                    acked[key] = str(k)
                    k += 1
            except OSError:
                pass

    t = threading.Thread(target=writer)
    t.start()
    wait_for("some acknowledged writes", lambda: len(acked) >= 100, timeout=20)
    for i in range(1, 4):
        c.kill(i)
    stop.set()
    t.join()
    assert len(acked) >= 100
    c.start_all()
    leader = c.wait_leader()
    for key, value in acked.items():
        assert c.kv(leader, key, consistency="linearizable") == value, key


def test_garbage_on_raft_port_is_dropped(make_cluster):
    c = make_cluster(3)
    c.start_all()
    leader = c.wait_leader()
    victim = next(i for i in range(1, 4) if i != leader)
    host, port = c.raft[victim].rsplit(":", 1)
    payloads = [
        os.urandom(4096),
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        struct.pack("<III", 0x3146524C, 0xFFFFFFF0, 0) + b"x" * 64,  # "LRF1" with a huge length
        b"\x00" * 100000,
    ]
    for p in payloads:
        s = socket.create_connection((host, int(port)), timeout=2)
        try:
            s.sendall(p)
        except OSError:
            pass
        s.close()
    put_ok(c, leader, "still", "works")
    wait_value(c, victim, "still", "works")
    assert c.alive(victim)
    dropped = sum(c.metric(victim, 'linkraft_net_dropped_total{reason="%s"}' % r)
                  for r in ("malformed", "unauthenticated"))
    assert dropped >= 1


def test_learner_promote_remove(make_cluster):
    c = make_cluster(3, extra=1)
    c.start_all()
    leader = c.wait_leader()
    put_ok(c, leader, "m", "1")
    c.write_cluster_file(range(1, 5))  # node 4's addresses, for member add
    c.start(4, join=True)
    r = c.cli("member", "add", "--cluster", c.cluster_file, "--id", "4", "--learner")
    assert r.returncode == 0, r.stderr
    wait_value(c, 4, "m", "1")
    info = c.info(c.wait_leader())
    m4 = next(m for m in info["members"] if m["id"] == 4)
    assert m4["role"] == "learner" and m4["voter"] is False
    r = c.cli("member", "promote", "--cluster", c.cluster_file, "--id", "4")
    assert r.returncode == 0, r.stderr
    wait_for("node 4 to be a voter",
             lambda: next(m for m in c.info(c.wait_leader())["members"] if m["id"] == 4)["voter"])
    # Remove a follower other than 4; the cluster goes on with 1 leader + 2.
    leader = c.wait_leader()
    gone = next(i for i in range(1, 4) if i != leader)
    # The promotion shows in the leader's configuration once appended; until
    # it commits, another change is refused as busy (one change at a time).
    def remove():
        r = c.cli("member", "remove", "--cluster", c.cluster_file, "--id", str(gone))
        assert r.returncode == 0 or "busy" in r.stderr, r.stderr
        return r.returncode == 0
    wait_for("the leader to accept removing node %d" % gone, remove)
    wait_for("node %d out of the configuration" % gone,
             lambda: all(m["id"] != gone for m in c.info(c.wait_leader())["members"]))
    c.kill(gone)
    leader = c.wait_leader()
    put_ok(c, leader, "after-remove", "1")
    wait_value(c, 4, "after-remove", "1")
    # Bad usage exits 2; an unknown member is refused with exit 1.
    assert c.cli("member", "add", "--cluster", c.cluster_file).returncode == 2
    assert c.cli("member", "frobnicate", "--cluster", c.cluster_file, "--id", "4").returncode == 2
    assert c.cli("member", "promote", "--cluster", c.cluster_file, "--id", "9").returncode == 1


def test_transfer_leader(make_cluster):
    c = make_cluster(3)
    c.start_all()
    leader = c.wait_leader()
    target = next(i for i in range(1, 4) if i != leader)
    put_ok(c, leader, "t", "1")
    r = c.cli("transfer-leader", "--cluster", c.cluster_file, "--to", str(target))
    assert r.returncode == 0, r.stdout + r.stderr
    assert c.wait_leader() == target
    put_ok(c, target, "t2", "2")


def test_sigterm_on_leader_hands_over_cleanly(make_cluster):
    c = make_cluster(3)
    c.start_all()
    leader = c.wait_leader()
    for k in range(20):
        put_ok(c, leader, "g%d" % k, str(k))
    t0 = time.monotonic()
    assert c.stop(leader) == 0
    new = c.wait_leader(exclude=(leader,), timeout=5)
    handover = time.monotonic() - t0
    assert new != leader
    for k in range(20):
        assert c.kv(new, "g%d" % k, consistency="linearizable") == str(k)
    print("SIGTERM handover took %.3fs" % handover)
    log = c.log_tail(leader, 20)
    assert "handing leadership to node" in log and "stopped cleanly" in log


def test_secret_required_between_peers(make_cluster):
    c = make_cluster(3, secret="correct horse battery staple")
    c.start_all()
    leader = c.wait_leader()
    put_ok(c, leader, "sec", "1")
    for i in range(1, 4):
        wait_value(c, i, "sec", "1")


def test_cli_usage_errors(make_cluster):
    c = make_cluster(1)
    r = c.cli("node", "--cluster", c.cluster_file)
    assert r.returncode == 2 and "required" in r.stderr
    r = c.cli("node", "--help")
    assert r.returncode == 0 and "--cluster" in r.stdout
    r = c.cli("node", "--cluster", "/nonexistent", "--id", "1", "--data", c.data_dir(1))
    assert r.returncode == 2
    r = c.cli("node", "--cluster", c.cluster_file, "--id", "7", "--data", c.data_dir(1))
    assert r.returncode == 2 and "no line for node 7" in r.stderr
    r = c.cli("status", "--cluster", c.cluster_file)
    assert r.returncode == 1  # nothing running: no leader known
    for sub in ("status", "member", "transfer-leader"):
        assert c.cli(sub, "--help").returncode == 0


def test_second_process_on_a_data_dir_is_refused(make_cluster):
    c = make_cluster(3)
    c.start_all()
    c.wait_leader()
    r = c.cli("node", "--cluster", c.cluster_file, "--id", "1", "--data", c.data_dir(1), timeout=10)
    assert r.returncode == 1 and "in use by another linkraft process" in r.stderr, r.stderr
    assert c.alive(1)
    # A node killed with -9 leaves no stale lock: it restarts at once.
    c.kill(1)
    c.start(1)



def test_database_commits_in_groups(make_cluster):
    """Applied entries are committed to SQLite in groups (every 50 ms or
    2,048 entries): under concurrent writes every node's committed index
    catches up with what it applied, and a node killed with -9 right after
    (its last group possibly uncommitted) applies it again from the log."""
    c = make_cluster(3)
    c.start_all()
    leader = c.wait_leader()

    def writer(t):
        for k in range(300):
            put_ok(c, leader, "g%d-%d" % (t, k), "v%d" % k)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    last = c.applied(leader)
    for i in range(1, 4):
        wait_for("node %d to apply %d" % (i, last), lambda i=i: c.applied(i) >= last)
        wait_for("node %d to commit what it applied" % i,
                 lambda i=i: c.metric(i, "linkraft_store_committed_index") >= last)
    # Kill a follower at a moment it has applied entries it has not yet
    # committed (seen in its metrics): after the restart it has them all.
    follower = next(i for i in range(1, 4) if i != leader)
    caught = None
    deadline = time.monotonic() + 10
    k = 0
    while caught is None and time.monotonic() < deadline:
        k += 1
        idx = put_ok(c, leader, "after%d" % k, str(k))
        wait_for("follower to apply %d" % idx, lambda: c.applied(follower) >= idx)
        if c.metric(follower, "linkraft_store_committed_index") < idx:
            c.kill(follower)  # SIGKILL: the open transaction is lost
            caught = k
    assert caught, "never saw the follower with applied entries uncommitted"
    c.start(follower)
    wait_value(c, follower, "after%d" % caught, str(caught))
    assert c.kv(follower, "g7-299") == "v299"


def test_membership_change_is_answered_only_once_committed(make_cluster):
    """A leader whose followers stop answering appends a membership change
    it cannot commit: it must not answer 200 for it (it used to, at once,
    and a new leader could then overwrite the entry: the chaos suite's seed
    1). Once the followers are back, the cluster goes on, whatever became of
    the entry."""
    c = make_cluster(3)
    c.start_all()
    leader = c.wait_leader()
    put_ok(c, leader, "m", "1")
    followers = [i for i in (1, 2, 3) if i != leader]
    for i in followers:
        c.procs[i].send_signal(signal.SIGSTOP)
    try:
        r = c.admin_req(leader, "DELETE", "/api/v1/members/%d" % followers[0], timeout=15)
        assert r.status != 200, (r.status, r.body)
        assert r.status in (503, 409), (r.status, r.body)
    finally:
        for i in followers:
            c.procs[i].send_signal(signal.SIGCONT)
    leader = c.wait_leader()
    wait_for("a write after the followers are back",
             lambda: c.put(c.wait_leader(), "after", "2").status == 200, timeout=20)
