"""Rolling upgrade (docs/operations.md "Upgrade"): a 3-node cluster of the
previous release (LINKRAFT_OLD_BIN, built from git by `make upgrade-test`)
under writes through every node is upgraded one node at a time to this
build (LINKRAFT_BIN), followers first and the leader last, each stopped
with SIGTERM and started again on its data directory. No acknowledged
write is lost, and no request fails except those sent to a node while it
restarts. Not part of `make test`: it needs the previous release built."""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "cluster"))
from lrcluster import BINARY, Cluster, wait_for  # noqa: E402

OLD = os.environ.get("LINKRAFT_OLD_BIN")
SECRET = "upgrade-test-secret-0123456789\n"


class Writers:
    """One thread per node writing through it (followers forward to the
    leader); every answer is recorded with the time it was sent."""

    def __init__(self, c):
        self.c = c
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acked = {}
        self.failures = []   # (node, started, ended, what)
        self.count = 0
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(1, 4)]

    def run(self, i):
        k = 0
        while not self.stop.is_set():
            key, value = "n%d_%d" % (i, k), "v%d" % k
            t0 = time.monotonic()
            try:
                r = self.c.put(i, key, value, timeout=5)
                ok, what = r.status in (200, 201, 204), "HTTP %d %s" % (r.status, r.body[:120])
            except OSError as e:
                ok, what = False, repr(e)
            with self.lock:
                self.count += 1
                if ok:
                    self.acked[key] = value
                else:
                    self.failures.append((i, t0, time.monotonic(), what))
            if not ok:
                time.sleep(0.05)  # a node that is down: do not spin
            k += 1


def test_rolling_upgrade_from_the_previous_release():
    assert OLD and os.access(OLD, os.X_OK), "set LINKRAFT_OLD_BIN (make upgrade-test builds it)"
    c = Cluster(3, secret=SECRET, binary=OLD)
    try:
        c.start_all()
        c.wait_leader()
        w = Writers(c)
        for t in w.threads:
            t.start()
        windows = {}  # node -> (from, to): its own restart
        try:
            wait_for("writes on the old release", lambda: len(w.acked) >= 200, timeout=60)
            leader = c.wait_leader()
            for i in [j for j in (1, 2, 3) if j != leader] + [leader]:
                t0 = time.monotonic()
                assert c.stop(i) == 0, c.log_tail(i)
                c.binary = BINARY
                c.start(i)
                commit = c.info(c.wait_leader())["commit"]
                wait_for("node %d (upgraded) to catch up" % i, lambda: c.applied(i) >= commit, timeout=30)
                windows[i] = (t0, time.monotonic())
                before = len(w.acked)
                wait_for("writes after upgrading node %d" % i, lambda: len(w.acked) >= before + 100, timeout=60)
        finally:
            w.stop.set()
            for t in w.threads:
                t.join(timeout=30)
        # A failure counts as "during its node's restart" if the request overlapped it.
        bad = [(i, round(a - windows.get(i, (0, 0))[0], 3), what) for i, a, b, what in w.failures
               if not (i in windows and a <= windows[i][1] and b >= windows[i][0])]
        print("%d writes, %d acknowledged, %d failed (all during their node's own restart: %s)" %
              (w.count, len(w.acked), len(w.failures), not bad))
        assert not bad, bad
        commit = c.info(c.wait_leader())["commit"]
        for i in (1, 2, 3):
            assert c.procs[i].args[0] == BINARY
            wait_for("node %d to apply everything" % i, lambda: c.applied(i) >= commit)
            lost = [key for key, value in w.acked.items() if c.kv(i, key) != value]
            assert not lost, (i, len(lost), lost[:5])
    finally:
        c.close()
