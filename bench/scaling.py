#!/usr/bin/env python3
"""scaling.py — `BENCH_ONLY=scaling make bench` (issue 16, item 4): what read
replicas (learners) add and cost. For 3 voters + 0, 1, 2 and 4 learners (all
local processes on this machine, sharing its cores; no network namespaces):

  reads   wrk, 64 connections, the front page as a visitor without a session
          through one gateway that spreads reads over every ready node;
          req/s, and per node the requests it served and the CPU seconds it
          used (/proc/PID/stat utime+stime): reads per CPU-second;
  lin     the same with X-Consistency: linearizable (each read asks the
          leader for a ReadIndex: what that costs the leader);
  session the front page as a logged-in user (rendered for them each time: no
          page cache, no shared cache), through the gateway;
  writes  wrk, 64 connections, PUT /api/v1/kv/ (100-byte values, a new
          committed entry each) straight to the leader: writes/s, and CPU
          seconds per 1,000 writes of the leader and of a follower.

Writes bench/results-scaling.md and .json; docs/scaling.md derives from them.

    /usr/bin/python3 bench/scaling.py
    env: BENCH_ROUNDS (3)  BENCH_SECONDS (5)  BENCH_LEARNERS (0,1,2,4)
"""
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "cluster"))
import run  # noqa: E402  (wrk, fmt, med, log)
from lrcluster import Cluster, request, wait_for  # noqa: E402

LEARNERS = [int(x) for x in os.environ.get("BENCH_LEARNERS", "0,1,2,4").split(",")]
OUT = os.path.join(HERE, "results-scaling.md")
TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    """User + system CPU seconds of a process, from /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def snapshot(c, ids):
    s = {"cpu": {i: proc_cpu(c.procs[i].pid) for i in ids}, "gw": proc_cpu(c.gateways["gw"][0].pid),
         "req": {i: c.metric(i, "linkraft_http_requests_total") for i in ids},
         "fsyncs": {i: c.metric(i, "linkraft_storage_fsyncs_total") for i in ids},
         "t": time.monotonic()}
    return s


def delta(a, b, ids):
    return {"secs": b["t"] - a["t"], "gw_cpu": b["gw"] - a["gw"],
            "cpu": {i: b["cpu"][i] - a["cpu"][i] for i in ids},
            "req": {i: b["req"][i] - a["req"][i] for i in ids},
            "fsyncs": {i: b["fsyncs"][i] - a["fsyncs"][i] for i in ids}}


def add_learner(c, i):
    c.start(i, join=True)

    def add():
        r = c.cli("member", "add", "--cluster", c.cluster_file, "--id", str(i), "--learner")
        return r.returncode == 0
    wait_for("node %d added as a learner" % i, add, timeout=30, interval=0.2)


def one_size(n_learners):
    c = Cluster(3, extra=max(LEARNERS))
    try:
        c.start_all()
        leader = c.wait_leader()
        r = c.req(leader, "POST", "/api/v1/signup", body={"username": "scaler", "password": "correct horse"})
        token = r.json()["token"]
        for k in range(40):
            r = c.req(leader, "POST", "/api/v1/links", body={"title": "A link to read, number %d" % k,
                                                           "url": "https://scale.example/%d" % k},
                      headers={"Authorization": "Bearer " + token})
            assert r.status == 201, r.body
        ids = list(range(1, 4 + n_learners))
        c.write_cluster_file(ids)
        for i in range(4, 4 + n_learners):
            add_learner(c, i)
        target = c.applied(leader)
        for i in ids:
            wait_for("node %d caught up" % i, lambda i=i: c.applied(i) >= target and c.get(i, "/readyz").status == 200,
                     timeout=30)
        gw = c.start_gateway()
        # Let the gateway's health checks see every node ready.
        wait_for("the gateway to read from every node", lambda: len({
            request(gw, "GET", "/").headers["x-served-by"] for _ in range(8 * len(ids))}) == len(ids), timeout=15)
        out = {"reads": [], "lin": [], "session": [], "writes": [], "leader": leader, "ids": ids}
        for rnd in range(run.ROUNDS):
            for kind in ("reads", "lin", "session", "writes"):
                a = snapshot(c, ids)
                if kind == "writes":
                    r = run.wrk("http://%s/" % c.http[leader], "kv_put.lua", record=(rnd == 0 and n_learners == 0))
                elif kind == "session":
                    r = run.wrk("http://%s/" % gw, record=(rnd == 0 and n_learners == 0),
                                headers=["Cookie: lr_session=" + token, "Accept-Encoding: gzip"])
                else:
                    r = run.wrk("http://%s/" % gw, "front_page.lua", ["linearizable"] if kind == "lin" else [],
                                record=(rnd == 0 and n_learners == 0))
                b = snapshot(c, ids)
                r.pop("out", None)
                d = delta(a, b, ids)
                d.update({"rps": r["rps"], "p99": r.get("p99"), "non2xx": r["non2xx"], "errors": r["errors"]})
                out[kind].append(d)
                run.log("%d learners, round %d, %s: %.0f/s p99 %s ms; CPU s: %s gw %.1f" % (
                    n_learners, rnd + 1, kind, r["rps"], r.get("p99"),
                    " ".join("%d:%.1f" % (i, d["cpu"][i]) for i in ids), d["gw_cpu"]))
        return out
    finally:
        c.close()


def main():
    res = {"sizes": {}, "when": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "cpus": os.cpu_count(),
           "rounds": run.ROUNDS, "seconds": run.SECONDS,
           "rev": subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True).stdout.strip(), "load": [os.getloadavg()[0]]}
    for n in LEARNERS:
        run.log("---- 3 voters + %d learners" % n)
        res["sizes"][str(n)] = one_size(n)
    res["load"].append(os.getloadavg()[0])
    path = os.path.splitext(OUT)[0] + ".json"
    with open(path, "w") as f:
        json.dump(res, f, indent=1)
    with open(path) as f:  # node ids as the JSON has them (strings)
        write(json.load(f))


def write(res):
    fmt, med = run.fmt, run.med
    L = ["# Read replicas: 3 voters + 0, 1, 2, 4 learners (issue 16, item 4)\n",
         "Generated by `bench/scaling.py` (`BENCH_ONLY=scaling make bench`) at commit %s, %s UTC, on %d CPUs "
         "(load average %.1f at the start, %.1f at the end: other work shared the machine). Every node, the "
         "gateway and wrk are local processes sharing these cores (no network namespaces), so totals cannot "
         "grow with nodes; what carries over to machines of their own is the work per read and per write of "
         "each node. Reads: the front page (40 links) as a visitor without a session, through one gateway, "
         "wrk 64 connections; writes: 100-byte KV PUTs to the leader, 64 connections, fsync on, no secret. "
         "Median of %d rounds of %d s. `docs/scaling.md` draws the conclusions.\n" % (
             res["rev"], res["when"], res["cpus"], res["load"][0], res["load"][-1], res["rounds"], res["seconds"]),
         "| learners | front page via gateway, req/s | reads per CPU-second: leader / follower / learner (median node) "
         "| gateway CPU-s per 1,000 reads | linearizable via gateway, req/s | leader CPU-s per 1,000 linearizable reads "
         "| logged-in front page via gateway, req/s | logged-in reads per CPU-second (median node) "
         "| writes/s | leader CPU-s per 1,000 writes | follower / learner CPU-s per 1,000 writes | fsyncs per write (leader) |",
         "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for n, s in sorted(res["sizes"].items(), key=lambda kv: int(kv[0])):
        leader, ids = s["leader"], s["ids"]
        voters = [i for i in ids if i <= 3 and i != leader]
        learners = [i for i in ids if i > 3]

        def per_cpu(runs, group):
            xs = []
            for d in runs:
                for i in group:
                    if d["cpu"][str(i)] > 0:
                        xs.append(d["req"][str(i)] / d["cpu"][str(i)])
            return med(xs)

        def cpu_per_k(runs, group, count):
            xs = []
            for d in runs:
                total = count(d)
                for i in group:
                    if total:
                        xs.append(1000 * d["cpu"][str(i)] / total)
            return med(xs)

        rd, ln, wr, se = s["reads"], s["lin"], s["writes"], s.get("session", [])
        n_reads = lambda d: d["rps"] * d["secs"]  # noqa: E731
        L.append("| %s | %s | %s / %s / %s | %s | %s | %s | %s | %s | %s | %s | %s / %s | %s |" % (
            n, fmt(med([d["rps"] for d in rd])),
            fmt(per_cpu(rd, [leader])), fmt(per_cpu(rd, voters)), fmt(per_cpu(rd, learners)) if learners else "–",
            fmt(med([1000 * d["gw_cpu"] / max(1, n_reads(d)) for d in rd]), 3),
            fmt(med([d["rps"] for d in ln])), fmt(cpu_per_k(ln, [leader], n_reads), 3),
            fmt(med([d["rps"] for d in se])) if se else "–", fmt(per_cpu(se, ids)) if se else "–",
            fmt(med([d["rps"] for d in wr])), fmt(cpu_per_k(wr, [leader], n_reads), 3),
            fmt(cpu_per_k(wr, voters, n_reads), 3), fmt(cpu_per_k(wr, learners, n_reads), 3) if learners else "–",
            fmt(med([d["fsyncs"][str(leader)] / max(1, n_reads(d)) for d in wr]), 3)))
    L.append("")
    L.append("Per run (req/s; CPU seconds of each node during the run, leader marked *):\n")
    for n, s in sorted(res["sizes"].items(), key=lambda kv: int(kv[0])):
        for kind in ("reads", "lin", "session", "writes"):
            for k, d in enumerate(s.get(kind, [])):
                L.append("- %s learners, %s, round %d: %s/s; %s; gateway %.1f" % (
                    n, kind, k + 1, fmt(d["rps"]), ", ".join(
                        "%s%s: %.1f s, %s req" % (i, "*" if int(i) == s["leader"] else "", d["cpu"][i],
                                                   fmt(d["req"][i])) for i in sorted(d["cpu"], key=int)),
                    d["gw_cpu"]))
    with open(OUT, "w") as f:
        f.write("\n".join(L) + "\n")
    run.log("wrote %s" % OUT)


if __name__ == "__main__":
    if sys.argv[1:] == ["--render"]:
        with open(os.path.splitext(OUT)[0] + ".json") as f:
            write(json.load(f))
    else:
        main()
