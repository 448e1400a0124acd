"""Gray failures (issue 12, SPEC §3 on the gateway's retries) with real
processes: a node that keeps its sockets open but stops answering (SIGSTOP).

- A paused leader: writes posted one at a time through the gateway are
  acknowledged again once a new leader is elected, while the old one is
  still stopped; after SIGCONT every acknowledged write is there exactly once.
- A follower forwarding a write to a leader that is then paused sends it to
  the new leader (under an Idempotency-Key it adds itself).
- A paused follower does not stall reads through the gateway.
- A paused follower through which the gateway was sending writes (it knows
  no leader) does not stall them either, and nothing is done twice.
- A leader cut off one way (its packets to its peers lost; each node in its
  own network namespace, as root) stalls writes only until a new leader.

Waits are conditions with deadlines. The deadlines that matter here are
well below the 6 s a request used to wait on a silent node before it was
tried elsewhere, and well above an election (150-300 ms) plus a few health
check rounds (200 ms each), even on a loaded machine."""
import itertools
import os
import signal
import subprocess
import sys
import threading
import time

from lrcluster import BINARY, free_ports, request, wait_for

PW = "correct horse"
# A new leader must take the writes while the old one is stopped by then.
RECOVER_S = 4.0


def bearer(token):
    return {"Authorization": "Bearer " + token}


def start_gateway(c, ids, name):
    """A gateway that knows only the nodes `ids` (its own cluster file)."""
    path = os.path.join(c.dir, "%s-cluster.txt" % name)
    with open(path, "w") as f:
        for i in ids:
            f.write("%d %s %s\n" % (i, c.raft[i], c.http[i]))
    addr = "127.0.0.1:%d" % free_ports(1)[0]
    log = open(os.path.join(c.dir, "%s.log" % name), "ab")
    p = subprocess.Popen([BINARY, "gateway", "--cluster", path, "--listen", addr],
                         stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    c.gateways[name] = (p, addr, log)
    wait_for("gateway %s to serve" % name, lambda: p.poll() is None and
             request(addr, "GET", "/gateway/healthz").status == 200)
    return addr


def resume_all(c):
    for p in c.procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGCONT)


class Writer:
    """Posts links one at a time through addr, as one user, until stopped;
    records (invoked, completed, status, body) of each. The client sends no
    Idempotency-Key: the gateway adds one."""

    def __init__(self, addr, token, prefix, timeout=10.0):
        self.addr, self.token, self.prefix, self.timeout = addr, token, prefix, timeout
        self.ops = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        for k in itertools.count():
            if self.stopping.is_set():
                return
            url = "https://example.com/%s/%d" % (self.prefix, k)
            t0 = time.monotonic()
            try:
                r = request(self.addr, "POST", "/api/v1/links", {"title": "t%d" % k, "url": url},
                            bearer(self.token), timeout=self.timeout)
                status, body = r.status, r.body
            except OSError as e:
                status, body = None, repr(e).encode()
            with self.lock:
                self.ops.append((t0, time.monotonic(), status, body, url))

    def acked_since(self, t):
        """Writes invoked after t and acknowledged (201)."""
        with self.lock:
            return [op for op in self.ops if op[0] > t and op[2] == 201]

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=2 * self.timeout)
        assert not self.thread.is_alive()
        return list(self.ops)


def signup(addr, name):
    r = request(addr, "POST", "/api/v1/signup", {"username": name, "password": PW}, timeout=10)
    assert r.status == 201, r.body
    return r.json()["token"], int(r.headers["x-raft-index"])


def links_on(c, i):
    """Every link on node i (its local copy), as {url: count}."""
    seen = {}
    for offset in itertools.count(0, 100):
        r = c.req(i, "GET", "/api/v1/links?sort=new&limit=100&offset=%d" % offset,
                  headers={"X-Consistency": "stale"})
        assert r.status == 200, r.body
        page = r.json()["links"]
        for link in page:
            seen[link["url"]] = seen.get(link["url"], 0) + 1
        if len(page) < 100:
            return seen


def check_exactly_once(c, ops):
    """Every write answered; every acknowledged one on every node exactly
    once, and nothing else of this run there."""
    bad = [op for op in ops if op[2] != 201]
    assert not bad, "writes not acknowledged (a 409 is a write done twice): %r" % bad[:5]
    urls = {op[4] for op in ops}
    commit = max(c.info(i)["commit"] for i in c.running())
    for i in c.running():
        wait_for("node %d to apply everything" % i, lambda i=i: c.applied(i) >= commit)
        seen = links_on(c, i)
        assert {u: n for u, n in seen.items() if n != 1} == {}, "duplicates on node %d" % i
        assert urls == set(seen), "node %d: missing %r, extra %r" % (i, urls - set(seen), set(seen) - urls)


def test_paused_leader_stalls_writes_through_gateway_only_until_a_new_leader(make_cluster):
    c = make_cluster(3)
    c.start_all()
    gw = c.start_gateway()
    leader = c.wait_leader()
    token, _ = signup(gw, "paula")
    w = Writer(gw, token, "p").start()
    try:
        wait_for("writes before the pause", lambda: len(w.acked_since(0)) >= 5)
        c.procs[leader].send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        # Writes begun after the stop are acknowledged by a new leader while
        # the old one is still stopped.
        wait_for("writes acknowledged with the leader stopped", lambda: len(w.acked_since(stopped)) >= 3,
                 timeout=RECOVER_S)
        new_leader = c.wait_leader(among=[i for i in range(1, 4) if i != leader])
        assert new_leader != leader
        c.procs[leader].send_signal(signal.SIGCONT)
        resumed = time.monotonic()
        wait_for("writes after the old leader is back", lambda: len(w.acked_since(resumed)) >= 5)
    finally:
        resume_all(c)
        ops = w.stop()
    check_exactly_once(c, ops)


def test_follower_forwarding_to_a_paused_leader_sends_to_the_new_one(make_cluster):
    c = make_cluster(3)
    c.start_all()
    leader = c.wait_leader()
    f = next(i for i in range(1, 4) if i != leader)
    token, index = signup(c.http[f], "fred")
    wait_for("every node has the account", lambda: all(c.applied(i) >= index for i in range(1, 4)))
    try:
        # The follower still knows the stopped node as its leader for an
        # election timeout, so the write goes there first.
        c.procs[leader].send_signal(signal.SIGSTOP)
        t0 = time.monotonic()
        r = c.req(f, "POST", "/api/v1/links", {"title": "forwarded", "url": "https://example.com/fwd"},
                  bearer(token), timeout=RECOVER_S)
        assert r.status == 201, r.body  # no key was sent: the follower added one
        assert time.monotonic() - t0 < RECOVER_S
        assert c.procs[leader].poll() is None
        c.procs[leader].send_signal(signal.SIGCONT)
    finally:
        resume_all(c)
    ops = [(0, 0, 201, b"", "https://example.com/fwd")]
    check_exactly_once(c, ops)


def test_paused_follower_does_not_stall_reads_through_gateway(make_cluster):
    c = make_cluster(3)
    c.start_all()
    gw = c.start_gateway()
    leader = c.wait_leader()
    r = request(gw, "PUT", "/api/v1/kv/x", body=b"1", timeout=10)
    assert r.status == 200
    for i in range(1, 4):
        wait_for("node %d has x" % i, lambda i=i: c.kv(i, "x") == "1")
    follower = next(i for i in range(1, 4) if i != leader)
    wait_for("the gateway reads from the follower",
             lambda: request(gw, "GET", "/api/v1/kv/x").headers.get("x-served-by") == str(follower))
    # Readers keep several reads in flight, so some are at the follower when
    # it stops; each must still be answered well within its client's patience.
    results, lock, stop = [], threading.Lock(), threading.Event()

    def reader():
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                r = request(gw, "GET", "/api/v1/kv/x", timeout=RECOVER_S)
                out = (r.status, r.headers.get("x-served-by"))
            except OSError as e:
                out = (None, repr(e))
            with lock:
                results.append((t0, time.monotonic()) + out)

    threads = [threading.Thread(target=reader, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        wait_for("reads before the pause", lambda: len(results) >= 20)
        c.procs[follower].send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        # Reads keep going, and after a few health-check rounds none is begun
        # on the stopped node: wait for a run of them, all begun after the stop.
        wait_for("reads with the follower stopped",
                 lambda: sum(1 for r in list(results) if r[0] > stopped + 1.0) >= 40, timeout=RECOVER_S + 2)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=2 * RECOVER_S)
        resume_all(c)
    failed = [r for r in results if r[2] != 200]
    assert not failed, "reads that failed or timed out: %r" % failed[:5]
    late = [r for r in results if r[0] > stopped + 1.0 and r[3] == str(follower)]
    assert not late, late[:5]


def test_paused_follower_forwarding_writes_for_the_gateway(make_cluster):
    c = make_cluster(3)
    c.start_all()
    leader = c.wait_leader()
    followers = [i for i in range(1, 4) if i != leader]
    # This gateway does not know the leader: every write goes through a
    # follower, which forwards it.
    gw = start_gateway(c, followers, "gwf")
    wait_for("the gateway to take writes",
             lambda: request(gw, "PUT", "/api/v1/kv/warm", body=b"1", timeout=10).status == 200)
    token, _ = signup(gw, "frida")
    w = Writer(gw, token, "f").start()
    paused = followers[0]
    try:
        wait_for("writes before the pause", lambda: len(w.acked_since(0)) >= 5)
        c.procs[paused].send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        wait_for("writes acknowledged with a follower stopped", lambda: len(w.acked_since(stopped)) >= 3,
                 timeout=RECOVER_S)
        c.procs[paused].send_signal(signal.SIGCONT)
        resumed = time.monotonic()
        wait_for("writes after the follower is back", lambda: len(w.acked_since(resumed)) >= 5)
    finally:
        resume_all(c)
        ops = w.stop()
    check_exactly_once(c, ops)


def test_leader_cut_off_one_way_stalls_writes_only_until_a_new_leader(tmp_path):
    """The leader's packets to its peers are lost (it still hears them, and
    the gateway still reaches it): each node in its own network namespace,
    the cut made with nftables. Needs root, like the chaos suite."""
    import pytest
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "chaos"))
    import chaos
    import netns
    why = netns.available() or (None if os.path.exists(chaos.SHIM) else "needs %s (make chaos builds it)" % chaos.SHIM)
    if why:
        pytest.skip(why)
    c = chaos.Cluster(3, str(tmp_path))
    w = None
    try:
        for i in c.ids:
            c.start(i)
        c.start_gateway()
        leader = wait_for("a leader", c.leader)
        token, _ = signup(c.gw, "oliver")
        w = Writer(c.gw, token, "o").start()
        wait_for("writes before the cut", lambda: len(w.acked_since(0)) >= 5)
        for other in c.ids:
            if other != leader:
                c.net.drop(leader, other)
        cut = time.monotonic()
        wait_for("writes acknowledged with the leader cut off", lambda: len(w.acked_since(cut)) >= 3,
                 timeout=RECOVER_S)
        c.net.heal()
        healed = time.monotonic()
        wait_for("writes after healing", lambda: len(w.acked_since(healed)) >= 5)
        ops = w.stop()
        w = None
        bad = [op for op in ops if op[2] != 201]
        assert not bad, bad[:5]
        urls = {op[4] for op in ops}
        commit = max(request(c.http[i], "GET", "/api/v1/cluster").json()["commit"] for i in c.ids)
        for i in c.ids:
            wait_for("node %d applied everything" % i,
                     lambda i=i: request(c.http[i], "GET", "/api/v1/cluster").json()["applied"] >= commit)
            seen = {}
            for offset in itertools.count(0, 100):
                page = request(c.http[i], "GET", "/api/v1/links?sort=new&limit=100&offset=%d" % offset,
                               headers={"X-Consistency": "stale"}).json()["links"]
                for link in page:
                    seen[link["url"]] = seen.get(link["url"], 0) + 1
                if len(page) < 100:
                    break
            assert seen == {u: 1 for u in urls}, i
    finally:
        if w:
            w.stop()
        c.close()
