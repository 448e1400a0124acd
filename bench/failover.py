#!/usr/bin/env python3
"""failover.py — how long a user waits when the leader dies.

Starts 3 real nodes and a gateway on loopback, then, ROUNDS times: keeps
writing through the gateway, kill -9s the leader, and measures the time
from the kill to the next write acknowledged through the gateway; then
restarts the killed node and waits for it to catch up. Prints every round,
the median and the max.

    /usr/bin/python3 bench/failover.py [ROUNDS]     (default 20)
"""
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "cluster"))
from lrcluster import Cluster, request, wait_for  # noqa: E402


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    c = Cluster(3)
    results, elections = [], []
    try:
        c.start_all()
        gw = c.start_gateway()
        c.wait_leader()
        for k in range(20):  # warm up the gateway's pools and health view
            assert request(gw, "PUT", "/api/v1/kv/warm%d" % k, body=b"x").status == 200
        for rnd in range(rounds):
            leader = c.wait_leader()
            # Every node caught up, so any survivor can win.
            target = c.applied(leader)
            for i in range(1, 4):
                wait_for("node %d caught up" % i, lambda i=i: c.applied(i) >= target)
            survivors = [i for i in range(1, 4) if i != leader]
            elected = []

            def watch():  # time until a survivor's /leaderz says 200
                while not elected:
                    if c.leader(survivors):
                        elected.append(time.monotonic())
                    else:
                        time.sleep(0.002)

            t_kill = time.monotonic()
            c.kill(leader)
            watcher = threading.Thread(target=watch)
            watcher.start()
            seq = 0
            while True:
                seq += 1
                try:
                    r = request(gw, "PUT", "/api/v1/kv/r%d-%d" % (rnd, seq), body=b"v", timeout=10)
                    if r.status == 200:
                        break
                except OSError:
                    pass
            elapsed = time.monotonic() - t_kill
            watcher.join(timeout=10)
            election = (elected[0] - t_kill) if elected else float("nan")
            elected.append(0)
            results.append(elapsed)
            elections.append(election)
            print("round %2d: leader %d killed: new leader after %4.0f ms, next write acknowledged through "
                  "the gateway after %4.0f ms" % (rnd + 1, leader, election * 1000, elapsed * 1000))
            sys.stdout.flush()
            c.start(leader)
        ms = sorted(r * 1000 for r in results)
        em = sorted(e * 1000 for e in elections)
        print("new leader after kill -9 over %d rounds: median %.0f ms, max %.0f ms" %
              (len(em), statistics.median(em), em[-1]))
        print("failover (kill -9 to next acknowledged write) over %d rounds: median %.0f ms, max %.0f ms, min %.0f ms" %
              (len(ms), statistics.median(ms), ms[-1], ms[0]))
    finally:
        c.close()


if __name__ == "__main__":
    main()
