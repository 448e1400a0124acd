#!/usr/bin/env python3
"""run.py — `make bench`: linkraft beside the systems a user would pick
instead, measured side by side in one run on this machine, written to
bench/results.md (issue 6).

  1. writes: likes and posts through the JSON API of a 3-node linkraft
     cluster (fsync on) vs puts of the same size into a 3-member etcd
     cluster through its HTTP/JSON gateway; wrk, 64 connections, both;
  2. reads: the front page from one node vs nginx serving the same bytes
     (1 worker); through a gateway vs nginx proxying nginx; also with
     X-Consistency: linearizable;
  3. failover: bench/failover.py (kill -9 the leader -> next acked write);
  4. scale: BENCH_SCALE links and 10x as many likes loaded through the log:
     front page latency, restart-to-serving, snapshot size and time, a
     far-behind follower's catch-up, RSS and disk per node;
  5. group commit: fdatasyncs per committed write beside the raw rate;
  6. discussion: a /link/ID page with a 500-comment thread from one node vs
     nginx serving the same bytes; comments through the leader vs etcd puts;
     the weight of the front page and of a comment's markup;
  7. search: full-text search over 1,000,000 links from one node (wrk, 64
     connections) vs bare FTS5 queried by a small C program on the same
     database (bench/search_db.c builds it once, cached under build/).

Rounds alternate ours / anchor so both see the same machine noise; each
figure is the median of BENCH_ROUNDS runs with min-max. Everything listens
on 127.0.0.1 on ports free at start, runs for bounded times and is stopped
and removed at the end.

    /usr/bin/python3 bench/run.py            (measure; results.md and results.json)
    /usr/bin/python3 bench/run.py --render   (rewrite results.md from results.json + analysis.md)
    env: BENCH_ROUNDS (3)  BENCH_SECONDS (5, per wrk run)  BENCH_SCALE (links;
         see DEFAULT_SCALE)  BENCH_FAILOVER_ROUNDS (20)  BENCH_ONLY
         (comma list of writes,reads,failover,scale,fsync,discussion,search; also cache and
         scaling, which run bench/cache.py and bench/scaling.py into their own files
         and are not in the default list)  BENCH_OUT (results.md path)
         BENCH_SEARCH_LINKS (1000000: links of the search database, built once under build/bench)
         BENCH_BASELINE_BIN (LABEL=PATH[,LABEL=PATH]: other builds of linkraft run in
         the write rounds too, with a secret, beside this one: e.g. the commit before a
         change, to measure what it costs)
"""
import base64
import http.client
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "cluster"))
from lrcluster import BINARY, Cluster, free_ports, request, wait_for  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
# The full size of the issue is 1,000,000 links and 10,000,000 likes; at the
# load rate measured here (see results.md) that takes far more than the
# ~15 minutes a bench run may take, so the default is smaller and the result
# states the size used and the extrapolation.
DEFAULT_SCALE = 100000
SCALE = int(os.environ.get("BENCH_SCALE", str(DEFAULT_SCALE)))
FAILOVER_ROUNDS = int(os.environ.get("BENCH_FAILOVER_ROUNDS", "20"))
ONLY = set(filter(None, os.environ.get("BENCH_ONLY", "writes,reads,failover,scale,fsync,discussion,search").split(",")))
OUT = os.environ.get("BENCH_OUT", os.path.join(HERE, "results.md"))
CONNS = 64
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

# Sizes of the commands the site proposes (src/store/command.c): a like is
# type + time + scope + idempotency key + session hash + link id; a post adds
# title, url and normalized url. Measured below from the log (bytes appended
# per entry) and used as etcd's value size.
LIKE_BYTES_GUESS, POST_BYTES_GUESS = 64, 170

commands = []  # every external command run, for results.md


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


# ---- wrk ------------------------------------------------------------------------


def parse_latency(s):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", s)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m.group(2)]


def wrk(url, script=None, args=(), conns=CONNS, threads=2, seconds=SECONDS, record=True, headers=()):
    cmd = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % seconds, "--latency", "--timeout", "10s"]
    for h in headers:
        cmd += ["-H", h]
    if script:
        cmd += ["-s", os.path.join(HERE, script)]
    cmd.append(url)
    if args:
        cmd += ["--"] + [str(a) for a in args]
    if record:
        commands.append(" ".join(cmd).replace(ROOT + "/", ""))
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout
    r = {"out": out, "rps": 0.0, "requests": 0, "errors": 0, "non2xx": 0}
    for line in out.splitlines():
        t = line.split()
        if line.startswith("Requests/sec:"):
            r["rps"] = float(t[1])
        elif re.match(r"\s+\d+ requests in", line):
            r["requests"] = int(t[0])
        elif line.strip().startswith("Non-2xx or 3xx responses:"):
            r["non2xx"] = int(t[-1])
        elif line.strip().startswith("Socket errors:"):
            r["errors"] = sum(int(x.strip(",")) for x in t[3::2])
        elif re.match(r"\s+(50|75|90|99)%\s", line):
            r["p" + t[0].rstrip("%")] = parse_latency(t[1])
    return r


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def summary(runs, key):
    xs = [r[key] for r in runs]
    return med(xs), min(xs), max(xs)


# ---- linkraft ---------------------------------------------------------------------


def signup_users(c, node, n, prefix):
    """n users through the API (in parallel threads: argon2id is slow on
    purpose), from source addresses 127.0.0.2, .3, ... 20 users each (a
    node allows one address 30 sign-ups and logins a minute); returns their
    Bearer tokens."""
    tokens = [None] * n

    def one(k):
        host, port = c.http[node].rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=30, source_address=("127.0.0.%d" % (2 + k // 20), 0))
        try:
            body = json.dumps({"username": "%s%d" % (prefix, k), "password": "benchmark-password"})
            conn.request("POST", "/api/v1/signup", body=body, headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
        finally:
            conn.close()
        if r.status != 201:
            raise RuntimeError("signup %d: %d %s" % (k, r.status, data[:200]))
        tokens[k] = json.loads(data)["token"]

    ths = []
    for k in range(n):
        th = threading.Thread(target=one, args=(k,))
        th.start()
        ths.append(th)
        if len(ths) >= 8:
            for t in ths:
                t.join()
            ths = []
    for t in ths:
        t.join()
    if not all(tokens):
        raise RuntimeError("some signups failed")
    return tokens


def node_pid(c, i):
    return c.procs[i].pid


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        st = dict(line.split(":", 1) for line in f)
    return int(st["VmRSS"].split()[0]), int(st["VmHWM"].split()[0])


def du_bytes(path):
    total = 0
    for dp, _, fs in os.walk(path):
        for f in fs:
            try:
                total += os.path.getsize(os.path.join(dp, f))
            except OSError:
                pass
    return total


class Counters:
    """Applied index and fsyncs of every node, to turn a run into committed
    entries, entries per request and fsyncs per write."""

    def __init__(self, c):
        self.c = c
        self.v = {i: (c.metric(i, "linkraft_raft_applied_index"), c.metric(i, "linkraft_storage_fsyncs_total"),
                      c.metric(i, "linkraft_storage_disk_bytes")) for i in range(1, c.n + 1)}

    def delta(self, later, i):
        a = self.v[i]
        b = later.v[i]
        return b[0] - a[0], b[1] - a[1], b[2] - a[2]


# ---- etcd ---------------------------------------------------------------------------


class Etcd:
    """3 etcd members from Debian's etcd-server on loopback, fsync on (the
    default), each with its own data dir under a temp dir."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="linkraft-bench-etcd-")
        ports = free_ports(6)
        self.client = ["http://127.0.0.1:%d" % ports[2 * i] for i in range(3)]
        self.peer = ["http://127.0.0.1:%d" % ports[2 * i + 1] for i in range(3)]
        initial = ",".join("m%d=%s" % (i + 1, self.peer[i]) for i in range(3))
        self.procs = []
        for i in range(3):
            cmd = ["etcd", "--name", "m%d" % (i + 1), "--data-dir", os.path.join(self.dir, "m%d" % (i + 1)),
                   "--listen-client-urls", self.client[i], "--advertise-client-urls", self.client[i],
                   "--listen-peer-urls", self.peer[i], "--initial-advertise-peer-urls", self.peer[i],
                   "--initial-cluster", initial, "--initial-cluster-state", "new",
                   "--initial-cluster-token", "linkraft-bench-%d" % os.getpid(), "--logger", "zap", "--log-level", "error"]
            if i == 0:
                commands.append(" ".join(cmd).replace(self.dir, "$TMP"))
            log_f = open(os.path.join(self.dir, "m%d.log" % (i + 1)), "ab")
            self.procs.append(subprocess.Popen(cmd, stdout=log_f, stderr=log_f, stdin=subprocess.DEVNULL))
        try:
            for i in range(3):
                wait_for("etcd member %d healthy" % (i + 1),
                         lambda i=i: b'"true"' in request(self.client[i][7:], "GET", "/health").body, timeout=60)
            # (_leader answers a 1-tuple: member index 0 must not read as "not yet")
            self.leader = wait_for("an etcd leader", self._leader, timeout=60)[0]
        except BaseException:
            for i in range(3):
                with open(os.path.join(self.dir, "m%d.log" % (i + 1)), errors="replace") as f:
                    sys.stderr.write("etcd m%d log:\n%s\n" % (i + 1, f.read()[-3000:]))
            self.close()
            raise
        self.version = subprocess.run(["etcd", "--version"], capture_output=True, text=True).stdout.split("\n")[0]

    def _leader(self):
        """The index of the member every member names as leader."""
        ids, leaders = {}, set()
        for i in range(3):
            st = json.loads(request(self.client[i][7:], "POST", "/v3/maintenance/status", body=b"{}").body)
            ids[st["header"]["member_id"]] = i
            leaders.add(st.get("leader"))
        if len(leaders) == 1 and leaders.copy().pop() in ids:
            return (ids[leaders.pop()],)
        return None

    def put(self, key, value):
        body = json.dumps({"key": base64.b64encode(key).decode(), "value": base64.b64encode(value).decode()})
        return request(self.client[self.leader][7:], "POST", "/v3/kv/put", body=body.encode())

    def revision(self):
        st = json.loads(request(self.client[self.leader][7:], "POST", "/v3/maintenance/status", body=b"{}").body)
        return int(st["header"]["revision"])

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- nginx ----------------------------------------------------------------------------


class Nginx:
    """One nginx with 1 worker and its own config, pid and temp paths:
    serving FILE at every path, or proxying to UPSTREAM (host:port) over
    keep-alive connections."""

    def __init__(self, port, file=None, upstream=None):
        self.dir = tempfile.mkdtemp(prefix="linkraft-bench-nginx-")
        os.chmod(self.dir, 0o755)
        self.port = port
        if file:
            shutil.copy(file, os.path.join(self.dir, "page.html"))
            os.chmod(os.path.join(self.dir, "page.html"), 0o644)
            loc = "root %s; location / { default_type text/html; try_files /page.html =404; }" % self.dir
        else:
            loc = ("location / { proxy_pass http://back; proxy_http_version 1.1; "
                   "proxy_set_header Connection \"\"; }")
        ups = "upstream back { server %s; keepalive 64; }" % upstream if upstream else ""
        conf = """worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  {ups}
  server {{ listen 127.0.0.1:{port}; {loc} }}
}}
""".format(d=self.dir, port=port, ups=ups, loc=loc)
        with open(os.path.join(self.dir, "nginx.conf"), "w") as f:
            f.write(conf)
        self.proc = subprocess.Popen([NGINX, "-c", os.path.join(self.dir, "nginx.conf"), "-p", self.dir,
                                      "-g", "daemon off;"], stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "stderr"), "ab"))
        wait_for("nginx on %d" % port, lambda: self.proc.poll() is None and
                 request("127.0.0.1:%d" % port, "GET", "/").status == 200, timeout=10)

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


def nginx_version():
    return subprocess.run([NGINX, "-v"], capture_output=True, text=True).stderr.strip().split("/")[-1]


# ---- 1. writes ----------------------------------------------------------------------------

results = {}


# Each round runs the same writes on three targets, one after the other, so
# all three see the same machine noise: linkraft with a cluster secret (peers'
# traffic sealed; the headline), linkraft without one (the cost of the
# sealing is the ratio of the two), and etcd.
WRITE_TARGETS = (("lrs", "linkraft, secret on"), ("lr", "linkraft, no secret"))
# BENCH_BASELINE_BIN: other builds instead of the no-secret run, each in
# every round right after this build, with a secret too.
BASELINES = [b.split("=", 1) for b in filter(None, os.environ.get("BENCH_BASELINE_BIN", "").split(","))]
if BASELINES:
    WRITE_TARGETS = (("lrs", "linkraft (this build), secret on"),) + tuple(
        ("base%d" % k, "%s, secret on" % label) for k, (label, _) in enumerate(BASELINES))


def one_round(cs, url_etcd, rnd, kind, script, args, etcd_bytes, etcd_prefix, runs, entry_bytes, fs):
    """One run of `kind` writes on each linkraft cluster in cs (tag ->
    (cluster, leader, url); args: tag -> the script's arguments) with its
    entries, bytes and fsyncs per write on the leader, then etcd's run of
    puts the same size."""
    for tag, label in WRITE_TARGETS:
        c, leader, url_lr = cs[tag]
        before = Counters(c)
        r = wrk(url_lr, script, args[tag], record=(rnd == 0 and tag == "lrs"))
        after = Counters(c)
        d_applied, d_fsync, d_bytes = before.delta(after, leader)
        r["entries"] = d_applied
        r["fsync_per_write"] = d_fsync / max(1, d_applied)
        entry_bytes[tag][kind].append(d_bytes / max(1, d_applied))
        fs[tag][kind].append(r["fsync_per_write"])
        runs[tag + "_" + kind].append(r)
        log("round %d: %s %ss %.0f/s p99 %.1f ms (%d entries for %d requests, non-2xx %d, %.3f fsyncs/write)"
            % (rnd + 1, label, kind, r["rps"], r.get("p99", 0), d_applied, r["requests"], r["non2xx"],
               r["fsync_per_write"]))
    e = wrk(url_etcd, "etcd_put.lua", [etcd_bytes, etcd_prefix], record=(rnd == 0))
    runs["etcd_" + kind].append(e)
    log("round %d: etcd puts (%d B) %.0f/s p99 %.1f ms (non-2xx %d)" % (rnd + 1, etcd_bytes, e["rps"],
                                                                       e.get("p99", 0), e["non2xx"]))


def bench_writes():
    # The secret-on cluster's nodes get --secret-file (a 0600 file of 32
    # random bytes in hex, as `linkraft demo` writes); the other runs without.
    if BASELINES:
        clusters = {"lrs": Cluster(3, secret=os.urandom(32).hex() + "\n")}
        for k, (_, path) in enumerate(BASELINES):
            clusters["base%d" % k] = Cluster(3, secret=os.urandom(32).hex() + "\n", binary=path)
    else:
        clusters = {"lrs": Cluster(3, secret=os.urandom(32).hex() + "\n"), "lr": Cluster(3)}
    etcd = None
    try:
        cs = {}
        for tag, label in WRITE_TARGETS:
            c = clusters[tag]
            c.start_all()
            leader = c.wait_leader()
            log("%s: cluster up, leader %d; signing up %d users" % (label, leader, CONNS))
            tokens = signup_users(c, leader, CONNS, "bench")
            tok_file = os.path.join(c.dir, "tokens.txt")
            with open(tok_file, "w") as f:
                f.write("\n".join(tokens) + "\n")
            cs[tag] = (c, leader, "http://%s" % c.http[leader])
        etcd = Etcd()
        log("etcd up (%s), leader member %d" % (etcd.version, etcd.leader + 1))
        url_etcd = etcd.client[etcd.leader]
        runs = {"etcd_post": [], "etcd_like": []}
        entry_bytes, fs = {}, {}
        for tag, _ in WRITE_TARGETS:
            runs.update({tag + "_post": [], tag + "_like": []})
            entry_bytes[tag] = {"post": [], "like": []}
            fs[tag] = {"post": [], "like": []}
        tok = {tag: os.path.join(cs[tag][0].dir, "tokens.txt") for tag in cs}
        # Warm-up (not counted): a short run of each, so links exist to like.
        for tag, _ in WRITE_TARGETS:
            wrk(cs[tag][2], "site_post.lua", [tok[tag], "w"], seconds=2, record=False)
        wrk(url_etcd, "etcd_put.lua", [POST_BYTES_GUESS, "w"], seconds=2, record=False)
        like_base = 1
        for rnd in range(ROUNDS):
            # posts; then likes, a fresh window of links each round so no pair
            # repeats (the window from the smaller of the two clusters' links)
            one_round(cs, url_etcd, rnd, "post", "site_post.lua", {tag: [tok[tag], rnd] for tag in cs},
                      POST_BYTES_GUESS, "p%d" % rnd, runs, entry_bytes, fs)
            nlinks = min(int(c.get(leader, "/api/v1/links?sort=new&limit=1").json()["links"][0]["id"])
                         for c, leader, _ in cs.values())
            window = max(1, (nlinks - 1) // ROUNDS)
            like_args = {tag: [tok[tag], like_base + rnd * window, window] for tag in cs}
            one_round(cs, url_etcd, rnd, "like", "site_like.lua", like_args, LIKE_BYTES_GUESS,
                      "l%d" % rnd, runs, entry_bytes, fs)
            for tag in cs:
                r = runs[tag + "_like"][-1]
                r["unique_pairs"] = r["requests"] <= 2 * 32 * window
        results["writes"] = {"runs": runs, "entry_bytes": entry_bytes, "fsync": fs, "etcd_version": etcd.version,
                             "leader": cs["lrs"][1], "followers": [i for i in range(1, 4) if i != cs["lrs"][1]],
                             "targets": [list(t) for t in WRITE_TARGETS]}
    finally:
        if etcd:
            etcd.close()
        for c in clusters.values():
            c.close()


# ---- 2. reads ------------------------------------------------------------------------------


def bench_reads():
    c = Cluster(3)
    ngs = []
    try:
        c.start_all()
        leader = c.wait_leader()
        tokens = signup_users(c, leader, 4, "reader")
        for k in range(60):  # more than one front page of links, some liked
            r = c.req(leader, "POST", "/api/v1/links", {"title": "A link to read number %d, in the bench" % k,
                                                          "url": "https://read.example.org/item/%d" % k},
                      headers={"Authorization": "Bearer " + tokens[k % 4]})
            assert r.status == 201, r.body
            for u in range(k % 4):
                c.req(leader, "PUT", "/api/v1/links/%d/like" % r.json()["id"],
                      headers={"Authorization": "Bearer " + tokens[u]}, body=b"")
        target = c.applied(leader)
        for i in range(1, 4):
            wait_for("node %d caught up" % i, lambda i=i: c.applied(i) >= target)
        node = next(i for i in range(1, 4) if i != leader)  # a follower serves the reads
        page = c.get(node, "/").body
        page_file = os.path.join(c.dir, "front.html")
        with open(page_file, "wb") as f:
            f.write(page)
        gw = c.start_gateway()
        p_static, p_proxy = free_ports(2)
        ng_static = Nginx(p_static, file=page_file)
        ngs.append(ng_static)
        ng_proxy = Nginx(p_proxy, upstream="127.0.0.1:%d" % p_static)
        ngs.append(ng_proxy)
        assert request("127.0.0.1:%d" % p_static, "GET", "/").body == page
        assert request("127.0.0.1:%d" % p_proxy, "GET", "/").body == page
        cases = [
            ("node", "http://%s/" % c.http[node], "front_page.lua", []),
            ("nginx", "http://127.0.0.1:%d/" % p_static, None, []),
            ("gateway", "http://%s/" % gw, "front_page.lua", []),
            ("nginx_proxy", "http://127.0.0.1:%d/" % p_proxy, None, []),
            ("node_lin", "http://%s/" % c.http[node], "front_page.lua", ["linearizable"]),
            ("gateway_lin", "http://%s/" % gw, "front_page.lua", ["linearizable"]),
        ]
        runs = {k: [] for k, _, _, _ in cases}
        for rnd in range(ROUNDS):
            for name, url, script, args in cases:
                r = wrk(url, script, args, record=(rnd == 0))
                runs[name].append(r)
                log("round %d: reads %-12s %.0f req/s p99 %.2f ms (non-2xx %d)" % (rnd + 1, name, r["rps"],
                                                                                 r.get("p99", 0), r["non2xx"]))
        results["reads"] = {"runs": runs, "page_bytes": len(page), "nginx_version": nginx_version()}
    finally:
        for n in ngs:
            n.close()
        c.close()


# ---- 6. discussion (issue 13) ------------------------------------------------------------------

COMMENT_BYTES_GUESS = 200  # a comment command: ~120 B of text + session hash, scope, key, link id
THREAD_COMMENTS, THREAD_DEPTH = 500, 8
WORDS = ("consensus log leader follower term index commit apply snapshot quorum replica latency disk fsync "
         "page thread reply comment link vote election heartbeat partition network clock lease read write").split()


def rate_limit_args():
    """`--rate-limits off` (SPEC §5) where this binary has it: a benchmark
    posts far more than a new account may."""
    out = subprocess.run([BINARY, "node", "--help"], capture_output=True, text=True)
    return ["--rate-limits", "off"] if "--rate-limits" in out.stdout + out.stderr else []


def bench_discussion():
    """A 500-comment thread (depth up to 8) on /link/ID served by one node
    vs nginx serving the same bytes; comments posted through the leader vs
    etcd puts of the same size; the weight of the front page and of a
    comment's markup."""
    import random
    c = Cluster(3, node_args=rate_limit_args(), secret=os.urandom(32).hex() + "\n")
    etcd = None
    ng = None
    try:
        c.start_all()
        leader = c.wait_leader()
        log("discussion: cluster up (secret on), leader %d; signing up %d users" % (leader, CONNS))
        tokens = signup_users(c, leader, CONNS, "talk")
        tok_file = os.path.join(c.dir, "tokens.txt")
        with open(tok_file, "w") as f:
            f.write("\n".join(tokens) + "\n")

        def api(method, path, body, k):
            r = c.req(leader, method, path, body, headers={"Authorization": "Bearer " + tokens[k % CONNS]})
            assert r.status == 201, (path, r.status, r.body[:200])
            return r.json()

        # The thread's link, one with the same title and URL lengths and no
        # comments (the page without a thread), and 62 more for the front
        # page and the comment writes.
        title = "A discussion with five hundred comments, nested up to eight deep"
        thread_id = api("POST", "/api/v1/links", {"title": title, "url": "https://talk.example/thread/0001"}, 0)["id"]
        empty_id = api("POST", "/api/v1/links", {"title": title.replace("five", "FIVE"),
                                                 "url": "https://talk.example/thread/0002"}, 1)["id"]
        others = [api("POST", "/api/v1/links", {"title": "Another link on the front page, number %d" % k,
                                                "url": "https://front.example/item/%d" % k}, k)["id"] for k in range(62)]
        rnd = random.Random(13)
        depth, texts = {}, []
        for k in range(THREAD_COMMENTS):
            # a chain down to the deepest level first, then replies to any
            # comment not at the bottom, one in six at the top level
            if k <= THREAD_DEPTH:
                parent = texts[-1][0] if k else None
            else:
                open_ = [i for i, d in depth.items() if d < THREAD_DEPTH]
                parent = None if rnd.random() < 1 / 6 or not open_ else rnd.choice(open_)
            n = rnd.randint(6, 50)
            text = " ".join(rnd.choice(WORDS) for _ in range(n)).capitalize() + "."
            body = {"text": text}
            if parent:
                body["parent"] = parent
            cid = api("POST", "/api/v1/links/%d/comments" % thread_id, body, k)["id"]
            depth[cid] = depth[parent] + 1 if parent else 0
            texts.append((cid, text))
        assert max(depth.values()) == THREAD_DEPTH
        target = c.applied(leader)
        for i in range(1, 4):
            wait_for("node %d caught up" % i, lambda i=i: c.applied(i) >= target)
        node = next(i for i in range(1, 4) if i != leader)  # a follower serves the reads
        path = "/link/%d" % thread_id
        page = c.get(node, path).body
        empty = c.get(node, "/link/%d" % empty_id).body
        front = c.get(node, "/").body
        front_gz = request(c.http[node], "GET", "/", None, {"Accept-Encoding": "gzip"}).body
        page_gz = request(c.http[node], "GET", path, None, {"Accept-Encoding": "gzip"}).body
        text_bytes = sum(len(t.encode()) for _, t in texts)
        per_comment = (len(page) - len(empty) - text_bytes) / THREAD_COMMENTS
        log("discussion: thread page %d B (gzip %d B), %.0f B of markup per comment; front page %d B (gzip %d B)"
            % (len(page), len(page_gz), per_comment, len(front), len(front_gz)))
        page_file = os.path.join(c.dir, "thread.html")
        with open(page_file, "wb") as f:
            f.write(page)
        ng = Nginx(free_ports(1)[0], file=page_file)
        assert request("127.0.0.1:%d" % ng.port, "GET", path).body == page

        # Reads first, on a cluster at rest (a follower just after thousands
        # of writes is still busy with them: SQLite checkpoints, freed
        # memory), node and nginx alternating; then the writes.
        runs = {"node": [], "nginx": [], "comments": [], "etcd": []}
        for r_ in range(ROUNDS):
            for name, url in (("node", "http://%s%s" % (c.http[node], path)),
                              ("nginx", "http://127.0.0.1:%d%s" % (ng.port, path))):
                r = wrk(url, record=(r_ == 0))
                runs[name].append(r)
                log("round %d: thread page %-6s %.0f req/s p99 %.2f ms (non-2xx %d)" % (r_ + 1, name, r["rps"],
                                                                                      r.get("p99", 0), r["non2xx"]))
        etcd = Etcd()
        log("etcd up (%s), leader member %d" % (etcd.version, etcd.leader + 1))
        url_etcd = etcd.client[etcd.leader]
        url_lr = "http://%s" % c.http[leader]
        comment_args = lambda r: [tok_file, r, others[0], len(others)]  # noqa: E731
        wrk(url_lr, "site_comment.lua", comment_args("w"), seconds=2, record=False)  # warm-up
        wrk(url_etcd, "etcd_put.lua", [COMMENT_BYTES_GUESS, "w"], seconds=2, record=False)
        entry_bytes, fsyncs = [], []
        for r_ in range(ROUNDS):
            before = Counters(c)
            r = wrk(url_lr, "site_comment.lua", comment_args(r_), record=(r_ == 0))
            d_applied, d_fsync, d_bytes = before.delta(Counters(c), leader)
            r["entries"] = d_applied
            entry_bytes.append(d_bytes / max(1, d_applied))
            fsyncs.append(d_fsync / max(1, d_applied))
            runs["comments"].append(r)
            log("round %d: comments %.0f/s p99 %.1f ms (%d entries for %d requests, non-2xx %d)"
                % (r_ + 1, r["rps"], r.get("p99", 0), d_applied, r["requests"], r["non2xx"]))
            e = wrk(url_etcd, "etcd_put.lua", [COMMENT_BYTES_GUESS, "c%d" % r_], record=(r_ == 0))
            runs["etcd"].append(e)
            log("round %d: etcd puts (%d B) %.0f/s p99 %.1f ms" % (r_ + 1, COMMENT_BYTES_GUESS, e["rps"], e.get("p99", 0)))
        results["discussion"] = {
            "runs": runs, "page_bytes": len(page), "page_gz_bytes": len(page_gz), "empty_bytes": len(empty),
            "text_bytes": text_bytes, "per_comment": per_comment, "front_bytes": len(front),
            "front_gz_bytes": len(front_gz), "front_links": min(30, 64), "entry_bytes": entry_bytes, "fsync": fsyncs,
            "max_depth": max(depth.values()), "etcd_version": etcd.version, "nginx_version": nginx_version(),
            "rate_limit_args": rate_limit_args()}
    finally:
        if etcd:
            etcd.close()
        if ng:
            ng.close()
        c.close()


def discussion_lines():
    """The discussion section of results.md (bench_discussion)."""
    d = results.get("discussion")
    if not d:
        return []
    R = d["runs"]
    a, b = summary(R["node"], "rps")[0], summary(R["nginx"], "rps")[0]
    w, e = summary(R["comments"], "rps")[0], summary(R["etcd"], "rps")[0]
    pw, pe = summary(R["comments"], "p99")[0], summary(R["etcd"], "p99")[0]
    L = ["## 6. Discussion\n"]
    L.append("A link with %d comments (depth up to %d; parents drawn at random, one in six at the top level; texts of "
             "6 to 50 words), its `/link/ID` page (%s bytes, %s gzip-compressed) read by a visitor who is not logged "
             "in from a follower, against nginx %s with 1 worker serving the same bytes as a static file. Comments "
             "posted through the leader's JSON API by 64 users (a 3-node cluster with a secret, fsync on) against "
             "puts of %d B into a 3-member etcd (%s) through its JSON gateway; the linkraft log grew by %s B per "
             "comment entry, framing included, with %s fdatasyncs per comment on the leader.\n" % (
                 THREAD_COMMENTS, d["max_depth"], fmt(d["page_bytes"]), fmt(d["page_gz_bytes"]), d["nginx_version"],
                 COMMENT_BYTES_GUESS, d["etcd_version"], fmt(med(d["entry_bytes"])), fmt(med(d["fsync"]), 3)))
    L.append("| measure | linkraft | anchor | ratio | target | met? |\n| --- | --- | --- | --- | --- | --- |")
    L.append("| Thread page, 500 comments, one node vs nginx static (req/s) | %s | %s | %.2f× | ≥ 0.8× | %s |" % (
        mmm(R["node"], "rps"), mmm(R["nginx"], "rps"), a / b, "yes" if a >= 0.8 * b else "**no**"))
    L.append("| Comments through the leader vs etcd puts (writes/s) | %s | %s | %.2f× | ≥ 3× | %s |" % (
        mmm(R["comments"], "rps"), mmm(R["etcd"], "rps"), w / e, "yes" if w >= 3 * e else "**no**"))
    L.append("| Comments, p99 latency (ms) | %s | %s | %.2f× | ≤ 1× | %s |" % (
        mmm(R["comments"], "p99", 1), mmm(R["etcd"], "p99", 1), pw / pe, "yes" if pw <= pe else "**no**"))
    L.append("| Front page, 30 links, before compression (bytes) | %s (gzip %s) | – | – | < 30 KB | %s |" % (
        fmt(d["front_bytes"]), fmt(d["front_gz_bytes"]), "yes" if d["front_bytes"] < 30 * 1024 else "**no**"))
    L.append("| Thread page: markup per comment beyond its text (bytes) | %s | – | – | ≤ 250 | %s |" % (
        fmt(d["per_comment"], 1), "yes" if d["per_comment"] <= 250 else "**no**"))
    L.append("\nMarkup per comment = (thread page − the same page of a link with no comments − the comments' text) "
             "÷ %d: everything a comment adds, its list item, like control, author, time, likes, reply link and "
             "paragraph tags included (ids of 3 digits).\n" % THREAD_COMMENTS)
    L.append("| case | req/s per run | p99 ms per run |\n| --- | --- | --- |")
    for k, v in R.items():
        L.append("| %s | %s | %s |" % (k, ", ".join(fmt(r["rps"]) for r in v), ", ".join(fmt(r.get("p99"), 2) for r in v)))
    bad = sum(r["non2xx"] + r["errors"] for v in R.values() for r in v)
    L.append("\nNon-2xx responses or socket errors over all discussion runs: %d.\n" % bad)
    return L


# ---- 3. failover ------------------------------------------------------------------------------


def bench_failover():
    cmd = ["/usr/bin/python3", os.path.join(HERE, "failover.py"), str(FAILOVER_ROUNDS)]
    commands.append(" ".join(cmd).replace(ROOT + "/", ""))
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600).stdout
    m = re.search(r"failover \(kill -9 to next acknowledged write\) over (\d+) rounds: median (\d+) ms, max (\d+) ms", out)
    e = re.search(r"new leader after kill -9 over \d+ rounds: median (\d+) ms, max (\d+) ms", out)
    if not m:
        raise RuntimeError("failover.py printed no result:\n" + out[-2000:])
    rounds = [float(x) for x in re.findall(r"acknowledged through the gateway after\s+(\d+) ms", out)]
    results["failover"] = {"rounds": int(m.group(1)), "median": float(m.group(2)), "max": float(m.group(3)),
                           "elect_median": float(e.group(1)) if e else None,
                           "elect_max": float(e.group(2)) if e else None, "all": rounds}
    log("failover: median %s ms, max %s ms" % (m.group(2), m.group(3)))


# ---- 4. scale ---------------------------------------------------------------------------------


def load_until(c, leader, script, args_fn, target_entries, label):
    """Runs wrk chunks (<= 20 s each) until target_entries more entries are
    applied on the leader; returns (entries, seconds)."""
    a0 = c.applied(leader)
    t0 = time.monotonic()
    sent = 0
    rate = 2000.0
    while c.applied(leader) - a0 < target_entries:
        left = target_entries - (c.applied(leader) - a0)
        secs = int(max(2, min(20, left / rate + 1)))
        r = wrk("http://%s" % c.http[leader], script, args_fn(sent), conns=128, seconds=secs, record=False)
        sent += r["requests"]
        if r["non2xx"] or r["errors"]:
            log("%s: %d non-2xx, %d socket errors in a chunk" % (label, r["non2xx"], r["errors"]))
        if r["rps"] > 0:
            rate = r["rps"]
        log("%s: %d / %d entries (%.0f/s)" % (label, c.applied(leader) - a0, target_entries, rate))
    return c.applied(leader) - a0, time.monotonic() - t0


def bench_scale():
    links, likes = SCALE, 10 * SCALE
    c = Cluster(3)
    try:
        c.start_all()
        leader = c.wait_leader()
        tokens = signup_users(c, leader, CONNS, "scale")
        tok_file = os.path.join(c.dir, "tokens.txt")
        with open(tok_file, "w") as f:
            f.write("\n".join(tokens) + "\n")
        commands.append("wrk -t2 -c128 -dNs -s bench/site_post.lua URL -- TOKENS RUN   (chunks until %d links)" % links)
        n_posts, t_posts = load_until(c, leader, "site_post.lua", lambda sent: [tok_file, "s%d" % sent], links, "load links")
        nlinks = int(c.get(leader, "/api/v1/links?sort=new&limit=1").json()["links"][0]["id"])
        # Likes: thread t's n-th request is a distinct (user, link) pair while
        # n < 32 * nlinks; each chunk starts a fresh link window.
        commands.append("wrk -t2 -c128 -dNs -s bench/site_like.lua URL -- TOKENS FIRST NLINKS   (chunks until %d likes)"
                        % likes)
        n_likes, t_likes = load_until(c, leader, "site_like.lua",
                                      lambda sent: [tok_file, 1 + (sent // 64) % max(1, nlinks - 1), nlinks - 1],
                                      likes, "load likes")
        target = c.applied(leader)
        for i in range(1, 4):
            wait_for("node %d caught up" % i, lambda i=i: c.applied(i) >= target, timeout=120)
        follower = next(i for i in range(1, 4) if i != leader)
        # front page latency: one connection (latency), then 64 (throughput)
        fp1 = wrk("http://%s/" % c.http[follower], conns=1, threads=1, seconds=3)
        fp64 = wrk("http://%s/" % c.http[follower], seconds=3)
        rss = {i: rss_kib(node_pid(c, i)) for i in range(1, 4)}
        disk = {i: du_bytes(c.data_dir(i)) for i in range(1, 4)}
        snaps = []
        for i in range(1, 4):
            with open(os.path.join(c.dir, "node%d.log" % i), errors="replace") as f:
                for line in f:
                    m = re.search(r"snapshot at index (\d+) \((\d+) bytes\)(?: in (\d+) ms)?", line)
                    if m:
                        snaps.append((i, int(m.group(1)), int(m.group(2)), int(m.group(3)) if m.group(3) else None))
        # restart to serving (SIGTERM a follower, start it again)
        c.stop(follower)
        t0 = time.monotonic()
        c.start(follower)
        t_serving = time.monotonic() - t0
        wait_for("restarted node ready", lambda: c.get(follower, "/readyz").status == 200, timeout=120)
        t_ready = time.monotonic() - t0
        # far-behind follower: stopped while 10% more likes go in, then catch-up
        c.stop(follower)
        behind, _ = load_until(c, leader, "site_like.lua",
                               lambda sent: [tok_file, 1 + ((sent + n_likes) // 64) % max(1, nlinks - 1), nlinks - 1],
                               max(5000, likes // 10), "while a follower is down")
        commit = c.applied(leader)
        t0 = time.monotonic()
        c.start(follower)
        wait_for("far-behind follower caught up", lambda: c.applied(follower) >= commit, timeout=300, interval=0.01)
        t_catchup = time.monotonic() - t0
        installed = c.metric(follower, "linkraft_raft_snapshots_installed_total")
        results["scale"] = {"links": nlinks, "likes_entries": n_likes, "post_entries": n_posts,
                            "t_posts": t_posts, "t_likes": t_likes, "fp1": fp1, "fp64": fp64, "rss": rss, "disk": disk,
                            "snaps": snaps, "t_serving": t_serving, "t_ready": t_ready, "behind": behind,
                            "t_catchup": t_catchup, "installed": installed, "applied": commit}
        log("scale: %d links, %d likes; restart serving %.0f ms, ready %.0f ms; catch-up %.1f s" %
            (nlinks, n_likes, t_serving * 1000, t_ready * 1000, t_catchup))
    finally:
        c.close()


# ---- 7. search (issue 14) ----------------------------------------------------------------------

SEARCH_LINKS = int(os.environ.get("BENCH_SEARCH_LINKS", "1000000"))


def search_tool():
    """bench/search_db.c, linked with the libraries `make` built."""
    exe = os.path.join(ROOT, "build", "bench", "search_db")
    os.makedirs(os.path.dirname(exe), exist_ok=True)
    libs = [os.path.join(ROOT, "build", "lib%s.a" % m) for m in ("node", "net", "store", "storage", "raft", "sys", "common")]
    subprocess.run(["cc", "-std=c11", "-O2", "-D_GNU_SOURCE", "-I" + os.path.join(ROOT, "include"),
                    "-I" + os.path.join(ROOT, "src"), "-o", exe, os.path.join(HERE, "search_db.c")] + libs +
                   ["-lsqlite3", "-lsodium", "-luv", "-lm"], check=True)
    return exe


def search_template(exe):
    """The node data directory of SEARCH_LINKS links, built once and kept
    under build/ (rebuilt when the generator's build part changes; a
    database of an older schema is migrated by the node when it opens it)."""
    import hashlib
    with open(os.path.join(HERE, "search_db.c")) as f:
        src = f.read()
    part = src[src.index("---- Vocabulary"):src.index("---- bare")]
    stamp = "%d %s" % (SEARCH_LINKS, hashlib.sha256(part.encode()).hexdigest())
    tpl = os.path.join(ROOT, "build", "bench", "search-%d" % SEARCH_LINKS)
    try:
        with open(os.path.join(tpl, "stamp")) as f:
            if f.read() == stamp:
                log("search: the database of %d links is cached in %s" % (SEARCH_LINKS, tpl))
                return tpl, 0.0
    except OSError:
        pass
    shutil.rmtree(tpl, ignore_errors=True)
    tmp = tpl + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    log("search: building %d links into %s (once; cached after)" % (SEARCH_LINKS, tpl))
    t0 = time.monotonic()
    subprocess.run([exe, "build", tmp, str(SEARCH_LINKS)], check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(tmp, "stamp"), "w") as f:
        f.write(stamp)
    os.rename(tmp, tpl)
    return tpl, time.monotonic() - t0


def bench_search():
    exe = search_tool()
    tpl, t_build = search_template(exe)
    commands.append("build/bench/search_db build build/bench/search-%d %d   (bench/search_db.c; cached)"
                    % (SEARCH_LINKS, SEARCH_LINKS))
    queries = os.path.join(tpl, "queries.txt")
    c = Cluster(1)
    try:
        d = c.data_dir(1)
        os.makedirs(d)
        for name in os.listdir(tpl):
            if name in ("queries.txt", "stamp") or name.endswith(".tmp"):
                continue
            if name.endswith(".dat"):  # never modified: a link, not a 500 MB copy
                os.link(os.path.join(tpl, name), os.path.join(d, name))
            else:
                shutil.copy2(os.path.join(tpl, name), os.path.join(d, name))
        t0 = time.monotonic()
        c.start(1)
        wait_for("the node to restore and lead", lambda: c.get(1, "/readyz").status == 200, timeout=600)
        t_restore = time.monotonic() - t0
        db = os.path.join(d, "state.db")
        db_bytes = os.path.getsize(db)
        url = "http://%s/" % c.http[1]
        wrk(url, "search.lua", [queries], seconds=3, record=False)  # warm the page cache
        runs = {"node": [], "bare": [], "bare_plain": []}
        for _ in range(ROUNDS):
            runs["node"].append(wrk(url, "search.lua", [queries]))
            for key, plan in (("bare", "same"), ("bare_plain", "plain")):
                out = subprocess.run([exe, "bare", db, queries, str(SECONDS), plan], capture_output=True, text=True,
                                     timeout=SECONDS + 120, check=True).stdout
                runs[key].append(json.loads(out.strip().splitlines()[-1]))
            log("search: node %.0f q/s p99 %.1f ms; bare FTS5, same plan %.0f q/s p99 %.1f ms; plain %.0f q/s" % (
                runs["node"][-1]["rps"], runs["node"][-1].get("p99", float("nan")), runs["bare"][-1]["qps"],
                runs["bare"][-1]["p99_ms"], runs["bare_plain"][-1]["qps"]))
        commands.append("build/bench/search_db bare DB QUERIES %d same|plain   (bare FTS5, one thread)" % SECONDS)
        one = wrk(url, "search.lua", [queries], conns=1, threads=1)
        page = wrk(url, "search.lua", [queries, "/search"])
        healthz = probe_during(c.http[1], lambda: wrk(url, "search.lua", [queries], record=False))
        n_queries = sum(1 for _ in open(queries))
        results["search"] = {"links": SEARCH_LINKS, "window": 2000, "runs": runs, "one": one, "page": page,
                             "healthz": healthz, "t_build": t_build,
                             "t_restore": t_restore, "db_bytes": db_bytes, "queries": n_queries}
    finally:
        c.close()


def probe_during(addr, load):
    """Latencies (ms) of GET /healthz, one after another on one keep-alive
    connection, while load() runs: what every other request of the node
    (and Raft's messages, on the same loop) waits for the loop. p50, p99,
    max and count."""
    stop, lat = threading.Event(), []

    def probe():
        host, port = addr.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        while not stop.is_set():
            t0 = time.monotonic()
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            lat.append((time.monotonic() - t0) * 1e3)
            stop.wait(0.01)
        conn.close()

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    try:
        load()
    finally:
        stop.set()
        t.join(timeout=70)
    lat.sort()
    if not lat:
        return {}
    return {"p50": lat[len(lat) // 2], "p99": lat[len(lat) * 99 // 100], "max": lat[-1], "n": len(lat)}


def search_lines():
    """The search section of results.md (bench_search)."""
    se = results.get("search")
    if not se:
        return []
    R = se["runs"]
    bare = [{"rps": b["qps"], "p50": b["p50_ms"], "p99": b["p99_ms"]} for b in R["bare"]]
    plain = [{"rps": b["qps"], "p50": b["p50_ms"], "p99": b["p99_ms"]} for b in R.get("bare_plain", [])]
    a, b = summary(R["node"], "rps")[0], summary(bare, "rps")[0]
    p99 = summary(R["node"], "p99")[0]
    L = ["## 7. Search\n"]
    L.append("Full-text search over **%s links** (`bench/search_db.c`: titles of 4 to 11 words drawn from a "
             "30,000-word vocabulary with a Zipf law, the 40 commonest being English stop words; one link in eight "
             "a text post; 3,000 domains, one link in five on a subdomain), applied in process through the store's "
             "apply and started as a one-node cluster's snapshot (database %s MiB; restore to ready %s s). "
             "%d queries in turn: 35%% one common word, 25%% one rare word, 25%% two words of a title, 15%% a "
             "domain. Ours: `GET /api/v1/search?q=` on the node with wrk (%d connections, 2 threads; "
             "`bench/search.lua`): the words quoted, the matches counted (up to 10,000), the best 30 by bm25 "
             "with their rows, JSON, HTTP, on the node's search workers (2, each with its own read-only "
             "connection); a query with more than %d matches ranks the newest %d (`store_search`, "
             "docs/finding.md). Anchor: the same queries, quoted alike, put to FTS5 by a small C program on the "
             "same database (one thread, back to back), right after each wrk run: the same plan (the walk over "
             "the matches newest first that counts them and finds the window, the best 30 rowids by the same "
             "bm25; no rows, JSON or HTTP), and plainly (the best 30 rowids by bm25 over every match). "
             "`/healthz` probed back to back during one more 64-connection search run: how long the node's "
             "loop (which also carries Raft) keeps other requests waiting.\n" % (
                 fmt(se["links"]), fmt(se["db_bytes"] / 2 ** 20), fmt(se["t_restore"], 1), se["queries"], CONNS,
                 se.get("window", 2000), se.get("window", 2000)))
    L.append("| measure | linkraft | anchor | ratio | target | met? |\n| --- | --- | --- | --- | --- | --- |")
    L.append("| Search, one node, 64 conns vs bare FTS5, same plan (queries/s) | %s | %s | %.2f× | ≥ 0.5× | %s |" % (
        mmm(R["node"], "rps"), mmm(bare, "rps"), a / b, "yes" if a >= 0.5 * b else "**no**"))
    if plain:
        c = summary(plain, "rps")[0]
        L.append("| Search, one node, 64 conns vs bare FTS5, bm25 over every match (queries/s) | %s | %s | %.2f× "
                 "| – | – |" % (mmm(R["node"], "rps"), mmm(plain, "rps"), a / c))
    L.append("| Search, one node, 64 conns: p99 latency (ms) | %s | – | – | ≤ 20 ms | %s |" % (
        mmm(R["node"], "p99", 1), "yes" if p99 <= 20 else "**no**"))
    L.append("| Search, one node, 64 conns: p50 latency (ms) | %s | – | – | – | – |" % mmm(R["node"], "p50", 1))
    L.append("| Bare FTS5, same plan: p50 / p99 per query (ms) | – | %s / %s | – | – | – |" % (
        mmm(bare, "p50", 2), mmm(bare, "p99", 1)))
    if plain:
        L.append("| Bare FTS5, bm25 over every match: p50 / p99 per query (ms) | – | %s / %s | – | – | – |" % (
            mmm(plain, "p50", 2), mmm(plain, "p99", 1)))
    L.append("| Search, 1 connection: p50 / p99 (ms), queries/s | %s / %s, %s | – | – | – | – |" % (
        fmt(se["one"].get("p50"), 2), fmt(se["one"].get("p99"), 1), fmt(se["one"]["rps"])))
    L.append("| The `/search?q=` page, 64 conns: queries/s, p99 (ms) | %s, %s | – | – | – | – |" % (
        fmt(se["page"]["rps"]), fmt(se["page"].get("p99"), 1)))
    hz = se.get("healthz")
    if hz:
        L.append("| `/healthz` while 64 conns search: p50 / p99 / max (ms), probes | %s / %s / %s, %s | – | – | – | "
                 "– |" % (fmt(hz["p50"], 1), fmt(hz["p99"], 1), fmt(hz["max"], 1), fmt(hz["n"])))
    L.append("")
    L.append("| case | q/s per run | p50 ms per run | p99 ms per run |\n| --- | --- | --- | --- |")
    for k, v in (("node", R["node"]), ("bare FTS5, same plan", bare), ("bare FTS5, plain bm25", plain)):
        L.append("| %s | %s | %s | %s |" % (k, ", ".join(fmt(r["rps"]) for r in v),
                                            ", ".join(fmt(r.get("p50"), 2) for r in v),
                                            ", ".join(fmt(r.get("p99"), 1) for r in v)))
    bad = sum(r["non2xx"] + r["errors"] for r in R["node"] + [se["one"], se["page"]])
    L.append("\nNon-2xx responses or socket errors over all search runs: %d.\n" % bad)
    return L


# ---- 5. raw fdatasync rate -------------------------------------------------------------------


def bench_fsync():
    os.makedirs(os.path.join(ROOT, "build", "bench"), exist_ok=True)
    exe = os.path.join(ROOT, "build", "bench", "storage_fsync")
    subprocess.run(["cc", "-O2", "-o", exe, os.path.join(HERE, "storage_fsync.c")], check=True)
    d = tempfile.mkdtemp(prefix="linkraft-bench-fsync-")
    try:
        rates = []
        for _ in range(ROUNDS):
            out = subprocess.run([exe, d], capture_output=True, text=True, timeout=60).stdout
            m = re.search(r"= ([\d.]+)/s", out)
            rates.append(float(m.group(1)) if m else float("nan"))
        commands.append("build/bench/storage_fsync /tmp/DIR   (bench/storage_fsync.c)")
        results["fsync"] = {"rates": rates, "out": out}
        log("raw fdatasync: %s" % rates)
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ---- results.md ----------------------------------------------------------------------------------


def fmt(x, nd=0):
    if x is None or x != x:
        return "–"
    return ("{:,.%df}" % nd).format(x)


def mmm(runs, key, nd=0):
    m, lo, hi = summary(runs, key)
    return "%s (%s–%s)" % (fmt(m, nd), fmt(lo, nd), fmt(hi, nd))


def write_results(t_total, when, rev):
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    wrk_v = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    wrk_v = (wrk_v.stdout + wrk_v.stderr).split("\n")[0].strip()
    L = []
    L.append("# linkraft benchmarks (`make bench`)\n")
    L.append("Written by `bench/run.py` on %s UTC; the whole run took %.0f s. Each figure is the median of %d runs "
             "(min–max in brackets); linkraft and its anchor alternate run by run, so both see the same noise on "
             "this shared machine, and the ratio is what to read.\n" % (when, t_total, ROUNDS))
    L.append("**Machine:** %d CPUs (%s), Linux %s, %s. **Versions:** %s; nginx %s; %s; linkraft %s.\n" % (
        os.cpu_count(), cpu, platform.release(), platform.python_implementation() + " " + platform.python_version(),
        results.get("writes", {}).get("etcd_version", results.get("discussion", {}).get("etcd_version", "etcd (not run)")),
        results.get("reads", {}).get("nginx_version", nginx_version()), wrk_v, rev))
    L.append("All servers on 127.0.0.1 of this one machine; wrk runs on the same 2 CPUs as the servers it loads "
             "(for ours and the anchors alike). wrk: %d connections, 2 threads, %d s per run. The machine is shared "
             "with other work: 1-minute load average %s at the start of this run, %s at the end.\n" % (
                 CONNS, SECONDS, *[("%.1f" % x) if isinstance(x, (int, float)) else "?"
                                   for x in (results.get("load", []) + ["?", "?"])[:2]]))
    rows = []
    w = results.get("writes")
    if w and "targets" not in w:  # a results.json from before the secret-on run
        w = dict(w, targets=[["lr", "linkraft"]], entry_bytes={"lr": w["entry_bytes"]}, fsync={"lr": w["fsync"]})
    if w:
        R = w["runs"]
        head, head_label = w["targets"][0]  # the secret-on cluster when there is one
        for kind, lr, et in (("likes", head + "_like", "etcd_like"), ("posts", head + "_post", "etcd_post")):
            a, b = summary(R[lr], "rps")[0], summary(R[et], "rps")[0]
            pa, pb = summary(R[lr], "p99")[0], summary(R[et], "p99")[0]
            on = ", secret on" if head == "lrs" else ""
            rows.append(("Writes: %s, 64 conns%s (writes/s)" % (kind, on), mmm(R[lr], "rps"), mmm(R[et], "rps"),
                         "%.2f×" % (a / b), "≥ 3×", "yes" if a >= 3 * b else "**no**"))
            rows.append(("Writes: %s, p99 latency%s (ms)" % (kind, on), mmm(R[lr], "p99", 1), mmm(R[et], "p99", 1),
                         "%.2f×" % (pa / pb), "≤ 1×", "yes" if pa <= pb else "**no**"))
    rd = results.get("reads")
    if rd:
        R = rd["runs"]
        for name, ours, anchor, label in (("node", "node", "nginx", "Reads: front page, one node vs nginx static"),
                                          ("gateway", "gateway", "nginx_proxy", "Reads: through gateway vs nginx→nginx"),
                                          ("node_lin", "node_lin", "nginx", "Reads: one node, linearizable, vs nginx static"),
                                          ("gateway_lin", "gateway_lin", "nginx_proxy",
                                           "Reads: gateway, linearizable, vs nginx→nginx")):
            a, b = summary(R[ours], "rps")[0], summary(R[anchor], "rps")[0]
            rows.append((label + " (req/s)", mmm(R[ours], "rps"), mmm(R[anchor], "rps"), "%.2f×" % (a / b), "≥ 0.8×",
                         "yes" if a >= 0.8 * b else "**no**"))
    fo = results.get("failover")
    if fo:
        rows.append(("Failover: kill -9 leader → next acked write, median (ms)", fmt(fo["median"]), "–", "–", "≤ 300 ms",
                     "yes" if fo["median"] <= 300 else "**no**"))
        rows.append(("Failover: max over %d rounds (ms)" % fo["rounds"], fmt(fo["max"]), "–", "–", "≤ 1000 ms",
                     "yes" if fo["max"] <= 1000 else "**no**"))
    sc = results.get("scale")
    if sc:
        rows.append(("Scale: restart to serving /healthz (ms)", fmt(sc["t_serving"] * 1000), "–", "–", "≤ 1000 ms",
                     "yes" if sc["t_serving"] <= 1 else "**no**"))
        worst = max(v[1] for v in sc["rss"].values()) / 1024
        rows.append(("Scale: peak RSS per node, worst node (MiB)", fmt(worst, 1), "–", "–", "≤ 64 MiB",
                     "yes" if worst <= 64 else "**no**"))
    if rows:
        L.append("## Headline\n")
        L.append("| measure | linkraft | anchor | ratio | target | met? |\n| --- | --- | --- | --- | --- | --- |")
        for r in rows:
            L.append("| " + " | ".join(r) + " |")
        L.append("")
    if w:
        R = w["runs"]
        tags = [t for t, _ in w["targets"]]
        names = dict(w["targets"], etcd="etcd")
        L.append("## 1. Writes\n")
        L.append("linkraft: 3 nodes on loopback, default options (fsync on: each write is acknowledged once it is "
                 "fdatasync'ed on a majority and applied on the leader). wrk drives the leader's JSON API; 64 users "
                 "(one Bearer token per connection slot) so every like is a new (user, link) pair and every post a "
                 "new URL. etcd: 3 members, default options (fsync on), wrk driving the leader's v3 JSON gateway "
                 "with a new key per put and a value the size of the linkraft command it stands for "
                 "(%d B for a like, %d B for a post; the linkraft log grew by %s B per like entry and %s B per "
                 "post entry, framing included).\n" % (LIKE_BYTES_GUESS, POST_BYTES_GUESS,
                                                       fmt(med(w["entry_bytes"][tags[0]]["like"])),
                                                       fmt(med(w["entry_bytes"][tags[0]]["post"]))))
        if "lrs" in tags and "lr" in tags:
            L.append("Two linkraft clusters run side by side: one whose nodes have `--secret-file` (a 0600 file of "
                     "32 random bytes; every peer byte after the handshake is an XChaCha20-Poly1305 record, "
                     "docs/transport.md \"Encryption\"), which the headline measures, and one without a secret "
                     "(plaintext peers, allowed on loopback only). Each round runs the secret-on cluster, then the "
                     "other, then etcd.\n")
            L.append("| writes | secret on /s | p99 ms | no secret /s | p99 ms | on ÷ off (writes/s) | on − off (p99 ms) "
                     "| etcd /s | p99 ms | on ÷ etcd | off ÷ etcd |")
            L.append("| --- |" + " --- |" * 10)
            for kind in ("like", "post"):
                a, b, e = (summary(R[t + "_" + kind], "rps")[0] for t in ("lrs", "lr", "etcd"))
                pa, pb, pe = (summary(R[t + "_" + kind], "p99")[0] for t in ("lrs", "lr", "etcd"))
                L.append("| %ss | %s | %s | %s | %s | %.2f× | %+.1f | %s | %s | %.2f× | %.2f× |" % (
                    kind, fmt(a), fmt(pa, 1), fmt(b), fmt(pb, 1), a / b, pa - pb, fmt(e), fmt(pe, 1), a / e, b / e))
            L.append("")
        for t in tags[1:]:
            if not t.startswith("base"):
                continue
            L.append("This build beside %s, run right after it in every round (medians; ratio this ÷ that):\n"
                     % names[t])
            L.append("| writes | this build /s | p99 ms | %s /s | p99 ms | this ÷ that (writes/s) |" % names[t])
            L.append("| --- |" + " --- |" * 5)
            for kind in ("like", "post"):
                a, b = (summary(R[x + "_" + kind], "rps")[0] for x in ("lrs", t))
                pa, pb = (summary(R[x + "_" + kind], "p99")[0] for x in ("lrs", t))
                L.append("| %ss | %s | %s | %s | %s | %.3f× |" % (kind, fmt(a), fmt(pa, 1), fmt(b), fmt(pb, 1), a / b))
            L.append("")
        L.append("| run | system | likes/s | p50 ms | p99 ms | entries/requests | posts/s | p50 ms | p99 ms |"
                 " entries/requests |")
        L.append("| --- |" + " --- |" * 9)
        for k in range(ROUNDS):
            for t in tags + ["etcd"]:
                a, cc = R[t + "_like"][k], R[t + "_post"][k]
                L.append("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                    k + 1, names[t], fmt(a["rps"]), fmt(a.get("p50"), 2), fmt(a.get("p99"), 1),
                    "%s/%s" % (fmt(a["entries"]), fmt(a["requests"])) if "entries" in a else "–",
                    fmt(cc["rps"]), fmt(cc.get("p50"), 2), fmt(cc.get("p99"), 1),
                    "%s/%s" % (fmt(cc["entries"]), fmt(cc["requests"])) if "entries" in cc else "–"))
        bad = sum(r["non2xx"] + r["errors"] for v in R.values() for r in v)
        L.append("\nNon-2xx responses or socket errors over all write runs: %d.\n" % bad)
    if rd:
        R = rd["runs"]
        L.append("## 2. Reads\n")
        L.append("The front page (30 links, %d bytes of HTML) served by a follower; nginx %s with 1 worker serves "
                 "the same bytes (saved from that node) as a static file, and a second nginx (1 worker) proxies "
                 "to it over keep-alive connections. `linkraft gateway` sends each GET to the fastest ready node. "
                 "Default consistency is `session` (a client without a cookie reads the local copy); "
                 "`linearizable` does a ReadIndex round through the leader (batched across concurrent reads).\n"
                 % (rd["page_bytes"], rd["nginx_version"]))
        L.append("| case | req/s per run | median | p99 ms (median) |\n| --- | --- | --- | --- |")
        for k, v in R.items():
            L.append("| %s | %s | %s | %s |" % (k, ", ".join(fmt(r["rps"]) for r in v), fmt(summary(v, "rps")[0]),
                                             fmt(summary(v, "p99")[0], 2)))
        L.append("")
    if fo:
        L.append("## 3. Failover\n")
        L.append("`bench/failover.py %d`: 3 nodes and a gateway; writes keep going through the gateway while the "
                 "leader is killed with SIGKILL; time from the kill to the next write acknowledged. Median %s ms, "
                 "max %s ms (new leader elected: median %s ms, max %s ms). Per round (ms): %s.\n" % (
                     fo["rounds"], fmt(fo["median"]), fmt(fo["max"]), fmt(fo["elect_median"]), fmt(fo["elect_max"]),
                     ", ".join(fmt(x) for x in fo["all"])))
    if sc:
        L.append("## 4. Scale\n")
        full = SCALE >= 1000000
        L.append("Size used: **%s links and %s like entries** (BENCH_SCALE=%d; the issue's full size is 1,000,000 links "
                 "and 10,000,000 likes: `BENCH_SCALE=1000000 make bench`). Loaded through the log with wrk (128 "
                 "connections, JSON API of the leader): links at %s/s, likes at %s/s.%s\n" % (
                     fmt(sc["links"]), fmt(sc["likes_entries"]), SCALE, fmt(sc["post_entries"] / sc["t_posts"]),
                     fmt(sc["likes_entries"] / sc["t_likes"]),
                     "" if full else " At these rates the full size would take about %s minutes to load." %
                     fmt((1e6 / (sc["post_entries"] / sc["t_posts"]) + 1e7 / (sc["likes_entries"] / sc["t_likes"])) / 60)))
        L.append("| measure | value |\n| --- | --- |")
        L.append("| front page, 1 connection: p50 / p99 latency | %s ms / %s ms |" % (fmt(sc["fp1"].get("p50"), 2),
                                                                                    fmt(sc["fp1"].get("p99"), 2)))
        L.append("| front page, 64 connections | %s req/s, p99 %s ms |" % (fmt(sc["fp64"]["rps"]), fmt(sc["fp64"].get("p99"), 2)))
        L.append("| restart (SIGTERM, start) to serving /healthz | %s ms |" % fmt(sc["t_serving"] * 1000))
        L.append("| restart to ready (/readyz: knows the leader, applied all committed) | %s ms |" % fmt(sc["t_ready"] * 1000))
        for i, (cur, peak) in sorted(sc["rss"].items()):
            L.append("| node %s: RSS now / peak | %s / %s MiB |" % (i, fmt(cur / 1024, 1), fmt(peak / 1024, 1)))
        for i, b in sorted(sc["disk"].items()):
            L.append("| node %s: data dir | %s MiB |" % (i, fmt(b / 2 ** 20, 1)))
        if sc["snaps"]:
            last = max(sc["snaps"], key=lambda s: s[1])
            times = [s[3] for s in sc["snaps"] if s[3] is not None]
            L.append("| snapshots taken (all nodes) | %d; the largest %s MiB at index %s%s |" % (
                len(sc["snaps"]), fmt(last[2] / 2 ** 20, 1), fmt(last[1]),
                ("; time to take one: median %s ms, max %s ms" % (fmt(med(times)), fmt(max(times)))) if times else ""))
        L.append("| far-behind follower: down while %s entries were committed, then caught up in | %s s "
                 "(snapshots installed: %d) |" % (fmt(sc["behind"]), fmt(sc["t_catchup"], 2), sc["installed"]))
        L.append("")
    fsr = results.get("fsync")
    if fsr or w:
        L.append("## 5. Group commit\n")
        if fsr:
            L.append("Raw fdatasync rate of this disk (4 KiB pwrite + fdatasync in a loop, `bench/storage_fsync.c`): "
                     "%s/s (runs: %s).\n" % (fmt(med(fsr["rates"])), ", ".join(fmt(x) for x in fsr["rates"])))
        if w:
            for t, label in w["targets"]:
                for kind in ("like", "post"):
                    R = w["runs"][t + "_" + kind]
                    f = w["fsync"][t][kind]
                    L.append("- %s, %ss at 64 connections: %s fdatasyncs per committed write on the leader "
                             "(runs: %s), i.e. %s writes per fdatasync at %s writes/s." % (
                                 label, kind, fmt(med(f), 3), ", ".join(fmt(x, 3) for x in f),
                                 fmt(1 / max(1e-9, med(f)), 1), fmt(summary(R, "rps")[0])))
            L.append("")
    L.extend(discussion_lines())
    L.extend(search_lines())
    L.append("## Commands\n")
    L.append("```")
    L.extend(commands)
    L.append("```\n")
    notes = os.path.join(HERE, "analysis.md")
    # The analysis reads the whole run's figures: not beside a partial one
    # written elsewhere (BENCH_OUT, e.g. BENCH_ONLY=writes).
    if os.path.exists(notes) and os.path.abspath(OUT) == os.path.join(HERE, "results.md"):
        with open(notes) as f:
            L.append(f.read())
    with open(OUT, "w") as f:
        f.write("\n".join(L) + "\n")
    log("wrote %s" % OUT)


def main():
    json_path = os.path.splitext(OUT)[0] + ".json"
    if sys.argv[1:] == ["--render"]:
        with open(json_path) as f:
            saved = json.load(f)
        results.update(saved["results"])
        commands.extend(saved["commands"])
        globals().update({k: saved["params"][k] for k in ("ROUNDS", "SECONDS", "SCALE")})
        write_results(saved["seconds"], saved["when"], saved["rev"])
        return
    # Scripts of their own, with their own results files (not results.md).
    for name in ("cache", "scaling"):
        if name in ONLY:
            log("---- %s (bench/%s.py)" % (name, name))
            subprocess.run(["/usr/bin/python3", os.path.join(HERE, name + ".py")], check=True)
    if ONLY <= {"cache", "scaling"}:
        return
    for tool in ("wrk", "etcd", NGINX):
        if not shutil.which(tool) and not os.path.exists(tool):
            sys.exit("run.py: %s is missing; run `sh scripts/deps.sh bench` as root" % tool)
    if not os.path.exists(BINARY):
        sys.exit("run.py: %s is missing; run `make` first" % BINARY)
    t0 = time.monotonic()
    results["load"] = [os.getloadavg()[0]]
    steps = [("fsync", bench_fsync), ("writes", bench_writes), ("reads", bench_reads), ("failover", bench_failover),
             ("scale", bench_scale), ("discussion", bench_discussion), ("search", bench_search)]
    for name, fn in steps:
        if name in ONLY:
            log("---- %s" % name)
            fn()
    results["load"].append(os.getloadavg()[0])
    for sec in results.values():  # wrk's raw text is not kept
        for runs in sec.get("runs", {}).values() if isinstance(sec, dict) else ():
            for r in runs:
                r.pop("out", None)
    for k in ("fp1", "fp64"):
        results.get("scale", {}).get(k, {}).pop("out", None)
    for k in ("one", "page"):
        results.get("search", {}).get(k, {}).pop("out", None)
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    with open(json_path, "w") as f:
        json.dump({"results": results, "commands": commands, "seconds": time.monotonic() - t0, "when": when, "rev": rev,
                   "params": {"ROUNDS": ROUNDS, "SECONDS": SECONDS, "SCALE": SCALE}}, f, indent=1)
    write_results(time.monotonic() - t0, when, rev)


if __name__ == "__main__":
    main()
