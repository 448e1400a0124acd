#!/usr/bin/env python3
"""cache.py — `BENCH_ONLY=cache make bench` (issue 16, item 5): the front page
read by visitors without a session, through nginx with docs/nginx-cache.conf
(proxy_cache on) against the same nginx with the cache off, and against the
gateway alone. 3 nodes (fsync on) + 1 gateway + nginx (1 worker), 30 links;
wrk with 64 connections, sending Accept-Encoding: gzip as browsers do.
Rounds alternate the three so all see the same machine noise; each figure is
the median of BENCH_ROUNDS runs with min-max. Writes bench/results-cache.md
(and .json beside it).

    /usr/bin/python3 bench/cache.py
    env: BENCH_ROUNDS (3)  BENCH_SECONDS (5)  BENCH_CACHE_SECONDS (5: the nodes' --cache-seconds)
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "cluster"))
import run  # noqa: E402  (wrk, summary, fmt, mmm, nginx_version)
from lrcluster import Cluster, free_ports, request, wait_for  # noqa: E402
from test_cache import nginx_conf  # noqa: E402

CACHE_SECONDS = int(os.environ.get("BENCH_CACHE_SECONDS", "5"))
OUT = os.path.join(HERE, "results-cache.md")


def start_nginx(d, conf):
    p = subprocess.Popen([run.NGINX, "-c", conf, "-p", d, "-g", "daemon off;"], stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(d, "stderr"), "ab"))
    return p


def main():
    for tool in ("wrk", run.NGINX):
        if not shutil.which(tool) and not os.path.exists(tool):
            sys.exit("cache.py: %s is missing; run `sh scripts/deps.sh bench` as root" % tool)
    c = Cluster(3, node_args=["--cache-seconds", str(CACHE_SECONDS)])
    procs, dirs = [], []
    try:
        c.start_all()
        leader = c.wait_leader()
        gw = c.start_gateway()
        r = c.req(leader, "POST", "/api/v1/signup", body={"username": "bencher", "password": "correct horse"})
        token = r.json()["token"]
        for k in range(30):
            r = c.req(leader, "POST", "/api/v1/links", body={"title": "A link about caching, number %d" % k,
                                                           "url": "https://cache.example/%d" % k},
                      headers={"Authorization": "Bearer " + token})
            assert r.status == 201, r.body
        idx = r.headers["x-raft-index"]
        for i in (1, 2, 3):
            wait_for("node %d to apply the links" % i, lambda i=i: c.applied(i) >= int(idx))
        fronts = {}
        for name, cached in (("nginx_cache", True), ("nginx_nocache", False)):
            d = tempfile.mkdtemp(prefix="linkraft-bench-cache-")
            os.chmod(d, 0o755)
            dirs.append(d)
            port = free_ports(1)[0]
            conf = nginx_conf(d, gw, port)
            if not cached:  # the same file with the cache switched off
                site = os.path.join(d, "linkraft-nginx.conf")
                with open(site) as f:
                    text = f.read().replace("proxy_cache linkraft;", "proxy_cache off;")
                with open(site, "w") as f:
                    f.write(text)
            with open(conf) as f:  # one worker, as the other nginx anchors of make bench
                assert "worker_processes 1;" in f.read()
            procs.append(start_nginx(d, conf))
            fronts[name] = "127.0.0.1:%d" % port
            wait_for("nginx %s" % name, lambda a=fronts[name]: request(a, "GET", "/").status == 200)
        fronts["gateway"] = gw
        page = request(fronts["nginx_cache"], "GET", "/")
        assert page.headers.get("x-cache-status") in ("HIT", "MISS", "EXPIRED", "REVALIDATED"), page.headers
        runs = {k: [] for k in fronts}
        cpu = {k: [] for k in fronts}
        pids = {i: c.procs[i].pid for i in (1, 2, 3)}
        pids["gw"] = c.gateways["gw"][0].pid
        for rnd in range(run.ROUNDS):
            for name, addr in fronts.items():
                t0 = {k: proc_cpu(p) for k, p in pids.items()}
                r = run.wrk("http://%s/" % addr, headers=["Accept-Encoding: gzip"])
                t1 = {k: proc_cpu(p) for k, p in pids.items()}
                r.pop("out", None)
                runs[name].append(r)
                cpu[name].append(sum(t1[k] - t0[k] for k in pids))
                run.log("round %d %s: %.0f req/s, p99 %.2f ms, cluster+gateway CPU %.1f s" % (
                    rnd + 1, name, r["rps"], r.get("p99", float("nan")), cpu[name][-1]))
        nm = [c.metric(i, "linkraft_site_not_modified_total") for i in (1, 2, 3)]
        res = {"runs": runs, "cpu": cpu, "page_bytes": len(page.body), "not_modified": nm,
               "nginx_version": run.nginx_version(), "cache_seconds": CACHE_SECONDS, "rounds": run.ROUNDS,
               "seconds": run.SECONDS, "when": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
               "rev": subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                                     text=True).stdout.strip(),
               "load": os.getloadavg()[0], "cpus": os.cpu_count()}
        with open(os.path.splitext(OUT)[0] + ".json", "w") as f:
            json.dump(res, f, indent=1)
        write(res)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=10)
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)
        c.close()


def proc_cpu(pid):
    """User + system CPU seconds of a process, from /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def write(res):
    R = res["runs"]
    fmt, mmm, summary = run.fmt, run.mmm, run.summary
    base = summary(R["nginx_nocache"], "rps")[0]
    L = ["# Front page through nginx's cache (issue 16, item 5)\n",
         "Generated by `bench/cache.py` (`BENCH_ONLY=cache make bench`) at commit %s, %s UTC, on %d CPUs "
         "(load average %.1f at the end). 3 nodes (fsync on) and one gateway on this machine; nginx %s with 1 "
         "worker and `docs/nginx-cache.conf` in front of the gateway, with `proxy_cache` on and (the same file) "
         "off. The nodes run with `--cache-seconds %d`. wrk: %d connections, 2 threads, %d s per run, "
         "`Accept-Encoding: gzip`, no cookie (a visitor without a session); the front page of 30 links (%s "
         "bytes of HTML, sent gzip-compressed). Median of %d rounds (min-max); rounds alternate the three.\n" % (
             res["rev"], res["when"], res["cpus"], res["load"], res["nginx_version"], res["cache_seconds"],
             run.CONNS, run.SECONDS, fmt(res["page_bytes"]), res["rounds"]),
         "| front page, anonymous | req/s | p99 ms | × nginx without cache | CPU of the nodes + gateway per run (s) |",
         "| --- | --- | --- | --- | --- |"]
    for name, label in (("nginx_cache", "nginx with proxy_cache"), ("nginx_nocache", "nginx without cache"),
                        ("gateway", "the gateway alone")):
        L.append("| %s | %s | %s | %.2f× | %s |" % (label, mmm(R[name], "rps"), mmm(R[name], "p99", 2),
                                                    summary(R[name], "rps")[0] / base,
                                                    " / ".join(fmt(x, 1) for x in res["cpu"][name])))
    L.append("")
    L.append("With the cache, the cluster renders the front page once per node per %d s (a revalidation costs "
             "a 304 when nothing changed: %s 304s counted by the nodes' `linkraft_site_not_modified_total` "
             "over the whole run), so its CPU stays near idle while nginx answers; without it every request "
             "crosses nginx, the gateway and a node. On this 2-CPU machine all of them share the same cores, so "
             "the cached figure is what one nginx worker can do, not a limit of linkraft.\n" % (
                 res["cache_seconds"], fmt(sum(res["not_modified"]))))
    with open(OUT, "w") as f:
        f.write("\n".join(L) + "\n")
    run.log("wrote %s" % OUT)


if __name__ == "__main__":
    main()
