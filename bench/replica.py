#!/usr/bin/env python3
"""replica.py — the durable replica's figures (issue 3):

  1. group commit: fdatasyncs per committed write on the leader while wrk
     drives 64 connections of PUTs for a few seconds;
  2. restart time of a node whose log holds N entries (default 100,000),
     without a snapshot and with one, from exec to serving /healthz and to
     having caught up (/readyz).

    /usr/bin/python3 bench/replica.py [ENTRIES]
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "cluster"))
from lrcluster import Cluster, wait_for  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def wrk(addr, seconds, conns=64):
    out = subprocess.run(["wrk", "-t2", "-c%d" % conns, "-d%ds" % seconds, "--latency", "-s",
                          os.path.join(HERE, "kv_put.lua"), "http://%s" % addr],
                         capture_output=True, text=True, check=True).stdout
    rps = float([l for l in out.splitlines() if l.startswith("Requests/sec")][0].split()[1])
    p99 = [l for l in out.splitlines() if l.strip().startswith("99%")]
    return rps, (p99[0].split()[1] if p99 else "?"), out


def group_commit():
    c = Cluster(3)
    try:
        c.start_all()
        leader = c.wait_leader()
        f0, a0 = c.metric(leader, "linkraft_storage_fsyncs_total"), c.applied(leader)
        rps, p99, _ = wrk(c.http[leader], 5)
        f1, a1 = c.metric(leader, "linkraft_storage_fsyncs_total"), c.applied(leader)
        print("group commit: %d writes committed, %d fdatasyncs on the leader: %.3f fsyncs per write "
              "(%.0f writes/s, p99 %s, 64 connections, one node's log)" % (a1 - a0, f1 - f0, (f1 - f0) / max(1, a1 - a0), rps, p99))
    finally:
        c.close()


def fill(c, entries):
    leader = c.wait_leader()
    while c.applied(leader) < entries:
        wrk(c.http[leader], 3)
    return c.applied(leader)


def restart_time(entries, snapshot):
    args = ["--snapshot-entries", str(10000 if snapshot else 10 ** 9)]
    c = Cluster(3, node_args=args)
    try:
        c.start_all()
        last = fill(c, entries)
        for i in range(1, 4):
            wait_for("node %d applied" % i, lambda i=i: c.applied(i) >= last, timeout=60)
        victim = next(i for i in range(1, 4) if i != c.wait_leader())
        c.stop(victim)
        t0 = time.monotonic()
        c.start(victim)  # returns once /healthz answers
        t_serving = time.monotonic() - t0
        wait_for("node ready", lambda: c.get(victim, "/readyz").status == 200, timeout=60)
        t_ready = time.monotonic() - t0
        size = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(c.data_dir(victim)) for f in fs)
        print("restart with %d entries %s: serving /healthz after %.0f ms, ready (caught up) after %.0f ms; "
              "data dir %.1f MiB" % (last, "and a snapshot every 10,000" if snapshot else "in the log, no snapshot",
                                     t_serving * 1000, t_ready * 1000, size / 2 ** 20))
    finally:
        c.close()


def main():
    entries = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    group_commit()
    restart_time(entries, snapshot=False)
    restart_time(entries, snapshot=True)


if __name__ == "__main__":
    main()
