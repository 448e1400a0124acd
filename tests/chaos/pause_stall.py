"""pause_stall.py — measures how long writes through the gateway stall when
the leader is stopped with SIGSTOP for a while (issue 12), beside a kill -9
of the leader (a plain failover), on real processes.

One client PUTs keys through the gateway one at a time. For each try the
current leader is stopped (or killed) mid-stream; the stall is the longest
gap between two consecutive acknowledgements around the fault. Prints the
median and the maximum over the tries. A measurement, not a test.

    LINKRAFT_BIN=build/linkraft /usr/bin/python3 tests/chaos/pause_stall.py [--tries 10] [--pause 3]
"""
import argparse
import os
import signal
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cluster"))
from lrcluster import Cluster, request, wait_for  # noqa: E402


class Writer(threading.Thread):
    def __init__(self, gw):
        super().__init__(daemon=True)
        self.gw, self.acks, self.errors = gw, [], 0
        self.stopping = threading.Event()

    def run(self):
        k = 0
        while not self.stopping.is_set():
            k += 1
            try:
                r = request(self.gw, "PUT", "/api/v1/kv/s%d" % (k % 50), body=b"v", timeout=15)
                if r.status == 200:
                    self.acks.append(time.monotonic())
                else:
                    self.errors += 1
            except OSError:
                self.errors += 1


def stall_after(acks, t0):
    """The longest gap between consecutive acknowledgements from the last one
    before t0 on: the fault's stall, and any aftershock (the stopped node's
    return) with it."""
    before = [a for a in acks if a < t0]
    pts = before[-1:] + [a for a in acks if a >= t0]
    return max(b - a for a, b in zip(pts, pts[1:]))


def one_try(fault, pause_s):
    c = Cluster(3)
    try:
        c.start_all()
        gw = c.start_gateway()
        leader = c.wait_leader()
        wait_for("gateway takes writes", lambda: request(gw, "PUT", "/api/v1/kv/w", body=b"1", timeout=10).status == 200)
        w = Writer(gw)
        w.start()
        wait_for("steady writes", lambda: len(w.acks) >= 50)
        t0 = time.monotonic()
        if fault == "pause":
            c.procs[leader].send_signal(signal.SIGSTOP)
            # Hold the pause for pause_s while writes go on.
            wait_for("pause over", lambda: time.monotonic() >= t0 + pause_s, timeout=pause_s + 1)
            c.procs[leader].send_signal(signal.SIGCONT)
        else:
            c.kill(leader)
        n = len(w.acks)
        wait_for("writes after the fault", lambda: len(w.acks) >= n + 20, timeout=30)
        w.stopping.set()
        w.join(timeout=20)
        return stall_after(w.acks, t0), w.errors
    finally:
        c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tries", type=int, default=10)
    ap.add_argument("--pause", type=float, default=3.0)
    ap.add_argument("--faults", default="pause,kill")
    a = ap.parse_args()
    for fault in a.faults.split(","):
        stalls, errors = [], 0
        for _ in range(a.tries):
            s, e = one_try(fault, a.pause)
            stalls.append(s)
            errors += e
        label = "SIGSTOP %.0f s" % a.pause if fault == "pause" else "kill -9"
        print("%-12s stall of writes through the gateway over %d tries: median %.0f ms, max %.0f ms "
              "(errors answered: %d) [%s]" % (label, a.tries, 1000 * statistics.median(stalls), 1000 * max(stalls),
                                               errors, " ".join("%.0f" % (1000 * s) for s in stalls)))


if __name__ == "__main__":
    main()
