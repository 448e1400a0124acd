"""chaos.py — `make chaos`: a nemesis against real linkraft processes, a
workload of site users recording every operation, and a history checker
(docs/chaos.md says what each fault probes).

Each node runs in its own network namespace (tests/chaos/netns.py) under a
test-only preload shim that can stall its fsyncs (tests/chaos/slowfsync.c).
The schedule of faults and the workload's choices are drawn from the seed,
so a failing run can be repeated (timing still varies: the seed fixes what
happens, not exactly when).

    /usr/bin/python3 tests/chaos/chaos.py --seed S --duration SECONDS [--faults a,b,...]

Exit 0 when every check passes; else the seed, the check that failed and the
slice of history that shows it are printed, and the exit code is 1. The last
line is "N passed, N failed" (checks)."""
import argparse
import collections
import http.client
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "cluster"))
from lrcluster import BINARY, ROOT, Response, admin_proof, free_ports, request, wait_for  # noqa: E402
import netns  # noqa: E402

SHIM = os.environ.get("SLOWFSYNC_SO", os.path.join(ROOT, "build", "chaos", "slowfsync.so"))
LINCHECK = os.environ.get("LINCHECK_BIN", os.path.join(ROOT, "build", "chaos", "lincheck"))
REGISTERS = 5
RECOVERY_LIMIT_S = 10.0
FAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"
FAULTS = ("partition", "oneway", "bridge", "flap", "pause", "kill", "slowdisk", "transfer", "clock", "member",
          "diskfull")
DISK_MB = 256  # each node's data directory is its own filesystem (tmpfs) of this size
PW = "chaos-password"
T0 = time.monotonic()


def now():
    return round(time.monotonic() - T0, 3)


# ---- The cluster ---------------------------------------------------------------------


class Cluster:
    def __init__(self, n, workdir):
        self.n, self.dir = n, workdir
        self.ids = list(range(1, n + 1))
        # A spare host, n+1: a node added and removed again while another
        # fault is under way. It is no member at the start (the bootstrap
        # file lists 1..n); its addresses are in spare_file, which the
        # membership commands and the spare itself read.
        self.spare = n + 1
        self.net = netns.Net(self.ids + [self.spare])
        self.raft = {i: "%s:7001" % self.net.ip(i) for i in self.ids + [self.spare]}
        self.http = {i: "%s:8001" % self.net.ip(i) for i in self.ids + [self.spare]}
        self.cluster_file = os.path.join(workdir, "cluster.txt")
        self.spare_file = os.path.join(workdir, "cluster-spare.txt")
        for path, members in ((self.cluster_file, self.ids), (self.spare_file, self.ids + [self.spare])):
            with open(path, "w") as f:
                for i in members:
                    f.write("%d %s %s\n" % (i, self.raft[i], self.http[i]))
        os.makedirs(self.data_dir(self.spare))
        # Peers off loopback must authenticate: one secret for every node,
        # proven by the admin commands and by the workload's KV writes.
        self.secret = os.urandom(24).hex()
        self.secret_file = os.path.join(workdir, "secret")
        fd = os.open(self.secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, self.secret.encode())
        os.close(fd)
        self.procs, self.paused, self.gw_proc = {}, set(), None
        self.mounted = []
        try:
            for i in self.ids:
                os.makedirs(self.data_dir(i))
                netns.sh("mount", "-t", "tmpfs", "-o", "size=%dm,mode=0700" % DISK_MB, "lrchaos", self.data_dir(i))
                self.mounted.append(self.data_dir(i))
        except Exception:
            self.close()
            raise

    def slow_file(self, i):
        return os.path.join(self.dir, "slow%d" % i)

    def data_dir(self, i):
        return os.path.join(self.dir, "node%d" % i)

    def filler(self, i):
        return os.path.join(self.data_dir(i), "chaos-filler")

    def fill_disk(self, i):
        """Fills node i's filesystem to the last byte."""
        with open(self.filler(i), "wb", buffering=0) as f:
            for size in (1 << 20, 4096, 1):
                try:
                    while f.write(b"\0" * size):
                        pass
                except OSError:
                    pass

    def free_disk(self, i):
        if os.path.exists(self.filler(i)):
            os.unlink(self.filler(i))

    def wipe(self, i):
        """Node i's data directory emptied (it is a mount point: kept)."""
        for name in os.listdir(self.data_dir(i)):
            path = os.path.join(self.data_dir(i), name)
            shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.unlink(path)

    def cli(self, *args, spare=False):
        return subprocess.run([BINARY] + list(args) + ["--cluster", self.spare_file if spare else self.cluster_file,
                                                       "--secret-file", self.secret_file],
                              capture_output=True, text=True, timeout=60)

    def members(self):
        """{id: voter?} as the leader of the highest term lists them, or
        None. (A leader cut off may still believe it leads, with changes
        in its log that will never commit.)"""
        best = None
        for i in self.ids + [self.spare]:
            if not self.alive(i) or i in self.paused:
                continue
            try:
                info = request(self.http[i], "GET", "/api/v1/cluster", timeout=0.5).json()
            except (OSError, ValueError):
                continue
            if info.get("leader") == i and (best is None or info["term"] > best["term"]):
                best = info
        return None if best is None else {m["id"]: bool(m.get("voter")) for m in best["members"]}

    def voters(self):
        """The voters as the leader of the highest term lists them, or None."""
        m = self.members()
        return None if m is None else sorted(i for i, v in m.items() if v)

    def clock_file(self, i):
        return os.path.join(self.dir, "clock%d" % i)

    def start(self, i, join=False):
        with open(self.slow_file(i), "w") as f:
            f.write("0\n")
        self.set_clock(i, 0)
        log = open(os.path.join(self.dir, "node%d.log" % i), "ab")
        # The wall clock is Debian's libfaketime's, offset by what the clock
        # file says (re-read every second); the monotonic clock, which the
        # node's timers run on, stays true.
        preload = SHIM + (":" + FAKETIME if os.path.exists(FAKETIME) else "")
        # (A sanitized build insists on its runtime coming first; these
        # preloads only wrap fsync and the wall clock.)
        asan = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"), "verify_asan_link_order=0"]))
        argv = ["env", "LD_PRELOAD=" + preload, "SLOWFSYNC_FILE=" + self.slow_file(i), "ASAN_OPTIONS=" + asan,
                "FAKETIME_TIMESTAMP_FILE=" + self.clock_file(i), "FAKETIME_DONT_FAKE_MONOTONIC=1",
                "FAKETIME_CACHE_DURATION=1",
                BINARY, "node", "--cluster", self.spare_file if i == self.spare else self.cluster_file, "--id", str(i),
                "--data", self.data_dir(i), "--secret-file", self.secret_file,
                # The gateway and the clients reach the nodes from the
                # bridge's address: a proxy whose X-Forwarded-For counts, so
                # that each client is its own address to the nodes' sign-up
                # and login limits (else all four shared one budget, and
                # could all wait on it at once: no write for 17 s, seed 77).
                "--trust-proxy", self.net.prefix + ".1/32",
                # The workload posts far faster than a person (SPEC §5).
                "--rate-limits", "off"] + (["--join"] if join else [])
        self.procs[i] = subprocess.Popen(self.net.wrap(i, argv), stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        wait_for("node %d to serve" % i, lambda: self.procs[i].poll() is None and
                 request(self.http[i], "GET", "/healthz", timeout=1).status == 200, timeout=20)

    def start_gateway(self):
        self.gw = "127.0.0.1:%d" % free_ports(1)[0]
        log = open(os.path.join(self.dir, "gateway.log"), "ab")
        self.gw_proc = subprocess.Popen([BINARY, "gateway", "--cluster", self.cluster_file, "--listen", self.gw],
                                        stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        wait_for("the gateway", lambda: request(self.gw, "GET", "/gateway/healthz", timeout=1).status == 200)

    def signal(self, i, sig):
        self.procs[i].send_signal(sig)
        if sig == signal.SIGSTOP:
            self.paused.add(i)
        elif sig == signal.SIGCONT:
            self.paused.discard(i)

    def kill(self, i):
        self.procs[i].kill()
        self.procs[i].wait()
        self.paused.discard(i)

    def alive(self, i):
        return i in self.procs and self.procs[i].poll() is None

    def leader(self):
        for i in self.ids + [self.spare]:  # the spare may lead while it is a voter
            if self.alive(i) and i not in self.paused:
                try:
                    if request(self.http[i], "GET", "/leaderz", timeout=0.5).status == 200:
                        return i
                except OSError:
                    pass
        return None

    def set_clock(self, i, offset_s):
        with open(self.clock_file(i), "w") as f:
            f.write("%+ds\n" % offset_s)

    def set_slow(self, i, ms):
        with open(self.slow_file(i), "w") as f:
            f.write("%d\n" % ms)

    def heal(self):
        self.net.heal()
        for i in self.ids:
            self.set_slow(i, 0)
            self.set_clock(i, 0)
            self.free_disk(i)
            if i in self.paused:
                self.signal(i, signal.SIGCONT)
            if not self.alive(i):
                self.start(i)

    def close(self):
        for p in list(self.procs.values()) + ([self.gw_proc] if self.gw_proc else []):
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.kill()
                p.wait()
        self.net.close()
        for path in self.mounted:
            netns.sh("umount", path, check=False)


# ---- The nemesis ---------------------------------------------------------------------


class Nemesis(threading.Thread):
    """Injects one fault at a time, drawn from rng, until stopped; records
    each as (start, end, kind, detail)."""

    def __init__(self, c, rng, kinds, log):
        super().__init__(daemon=True)
        self.c, self.rng, self.kinds, self.log = c, rng, kinds, log
        self.events = []
        self.member_changes = 0  # of the spare, during other faults
        self.lost = []  # acknowledged membership changes that did not take effect
        self.stopping = threading.Event()
        self.error = None

    def hold(self, lo=0.5, hi=3.0):
        self.stopping.wait(self.rng.uniform(lo, hi))

    def victim(self):
        """The leader half of the time (the interesting case), else any node."""
        lead = self.c.leader()
        return lead if lead and self.rng.random() < 0.5 else self.rng.choice(self.c.ids)

    def maybe_transfer(self, detail):
        """A leadership transfer in the middle of a fault, some of the time."""
        if self.rng.random() < 0.25:
            to = self.rng.choice(self.c.ids)
            r = self.c.cli("transfer-leader", "--to", str(to))
            detail += "; transfer to %d: %s" % (to, "ok" if r.returncode == 0 else "refused")
        return detail

    def maybe_member(self, detail, busy):
        """A membership change in the middle of a fault, a quarter of the
        time: the spare node is started empty with --join, added (a learner,
        promoted to voter once caught up: four voters, so the three nodes
        outside the fault make the quorum), then removed, killed and wiped.
        busy: the node the fault is aimed at (the others make a quorum of
        four voters, except in a bridge, where the two sides meet at it)."""
        if self.rng.random() >= 0.25:
            return detail
        c, s = self.c, self.c.spare
        t0 = time.monotonic()
        c.wipe(s)
        c.start(s, join=True)
        self.change("add", lambda m: m.get(s), "node %d a voter" % s, busy)
        self.change("remove", lambda m: m and s not in m, "node %d gone" % s, busy)
        c.kill(s)
        self.member_changes += 1
        return detail + "; member %d added, promoted, removed (fault on %s) in %.1f s" % (
            s, ",".join(map(str, sorted(busy))), time.monotonic() - t0)

    def change(self, verb, done, what, busy):
        """`member VERB` of the spare until done(members as the leader
        lists them: id -> voter) holds. A change the leader acknowledged
        (exit 0) that its successor does not know was lost: recorded in
        self.lost (a check fails on it), then asked for again."""
        c, s = self.c, self.c.spare
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            r = c.cli("member", verb, "--id", str(s), spare=True)
            if r.returncode != 0:
                self.stopping.wait(0.3)
                continue
            acked = now()
            try:
                wait_for(what, lambda: done(c.members() or {}), timeout=10, interval=0.2)
                return
            except AssertionError:
                m = c.members()
                if m is not None and (s not in m if verb == "add" else s in m):
                    self.lost.append((acked, now(), "member %s %d" % (verb, s), "acknowledged (%s) during a fault "
                                      "on %s, then unknown to leader %s: %s" % (r.stdout.strip()[:80], busy,
                                                                               c.leader(), m)))
                    self.log("%8.3f  LOST      %s" % self.lost[-1][0::3])
        raise AssertionError("member %s %d during a fault on %s: not %s within 60 s" % (verb, s, busy, what))

    def one(self, kind):
        c, rng, ids = self.c, self.rng, self.c.ids
        start = now()
        if kind == "partition":
            lone = self.victim()
            c.net.partition([[lone], [i for i in ids if i != lone]])
            detail = self.maybe_member(self.maybe_transfer("isolated %d" % lone), [lone])
            self.hold()
            c.net.heal()
        elif kind == "oneway":
            a = self.victim()
            # Everything a sends to its peers is lost; it still hears them
            # (and the gateway and clients still reach it).
            for other in ids:
                if other != a:
                    c.net.drop(a, other)
            detail = self.maybe_member(self.maybe_transfer("%d cannot send to its peers" % a), [a])
            self.hold()
            c.net.heal()
        elif kind == "bridge":
            mid = self.victim()
            rest = [i for i in ids if i != mid]
            rng.shuffle(rest)
            half = len(rest) // 2
            c.net.partition([rest[:half], rest[half:]])  # mid still sees both sides
            detail = self.maybe_member(self.maybe_transfer("bridge via %d: %s | %s" % (mid, rest[:half], rest[half:])),
                                       [mid])
            self.hold()
            c.net.heal()
        elif kind == "flap":
            # The flapping goes on in a thread of its own (with its own
            # random numbers, so that the seed still fixes both), while a
            # membership change, if any, is made; at least 1-3 s, and until
            # the change is done.
            lone = self.victim()
            frng = random.Random(rng.getrandbits(64))
            end = time.monotonic() + rng.uniform(1.0, 3.0)
            changing, flips = threading.Event(), []
            changing.set()

            def flapping():
                while not self.stopping.is_set() and (time.monotonic() < end or changing.is_set()):
                    c.net.partition([[lone], [i for i in ids if i != lone]])
                    self.stopping.wait(frng.uniform(0.05, 0.4))
                    c.net.heal()
                    self.stopping.wait(frng.uniform(0.05, 0.4))
                    flips.append(1)
            flapper = threading.Thread(target=flapping, daemon=True)
            flapper.start()
            try:
                detail = self.maybe_member("flapping %d" % lone, [lone])
            finally:
                changing.clear()
                flapper.join()
            detail = detail.replace("flapping %d" % lone, "flapping %d, %d times" % (lone, len(flips)), 1)
        elif kind == "pause":
            v = self.victim()
            c.signal(v, signal.SIGSTOP)
            detail = self.maybe_member("SIGSTOP %d" % v, [v])
            self.hold()
            c.signal(v, signal.SIGCONT)
        elif kind == "kill":
            v = self.victim()
            c.kill(v)
            detail = self.maybe_member("kill -9 %d" % v, [v])
            self.hold(0.2, 2.0)
            c.start(v)
        elif kind == "slowdisk":
            v = self.victim()
            ms = rng.choice([300, 1000, 2500])
            c.set_slow(v, ms)
            detail = self.maybe_member(self.maybe_transfer("fsync of %d stalls %d ms" % (v, ms)), [v])
            self.hold(1.0, 4.0)
            c.set_slow(v, 0)
        elif kind == "clock":
            v = self.victim()
            jump = rng.choice([-3600, -600, -60, 60, 600, 3600])
            c.set_clock(v, jump)
            # No membership change here: the admin commands' proofs are
            # good for 60 s of the node's wall clock, so a leader whose
            # clock jumped refuses them (403), as designed.
            detail = self.maybe_transfer("wall clock of %d jumps %+d s" % (v, jump))
            self.hold(1.5, 4.0)
            c.set_clock(v, 0)
        elif kind == "diskfull":
            v = self.victim()
            c.fill_disk(v)
            detail = self.maybe_member(self.maybe_transfer("disk of %d full" % v), [v])
            self.hold(1.0, 4.0)
            c.free_disk(v)
        elif kind == "member":
            # A lost data directory and its documented recovery, a membership
            # change each way while the workload runs: the node is killed
            # and removed, its directory wiped, and it is started with
            # --join and added again (a learner, promoted once caught up).
            v = self.victim()
            c.kill(v)
            wait_for("member remove %d" % v, lambda: c.cli("member", "remove", "--id", str(v)).returncode == 0,
                     timeout=60, interval=0.5)
            c.wipe(v)
            c.start(v, join=True)
            wait_for("member add %d" % v, lambda: c.cli("member", "add", "--id", str(v)).returncode == 0,
                     timeout=60, interval=0.5)
            wait_for("node %d a voter again" % v, lambda: v in (c.voters() or []), timeout=60, interval=0.2)
            detail = "lost the data of %d: removed, wiped, joined and added back" % v
        elif kind == "transfer":
            to = rng.choice(ids)
            r = c.cli("transfer-leader", "--to", str(to))
            detail = "transfer to %d: %s" % (to, "ok" if r.returncode == 0 else r.stderr.strip()[:80])
        else:
            raise ValueError(kind)
        self.events.append((start, now(), kind, detail))
        self.log("%8.3f  %-9s %s" % (start, kind, detail))

    def run(self):
        try:
            while not self.stopping.is_set():
                self.one(self.rng.choice(self.kinds))
                self.stopping.wait(self.rng.uniform(0.3, 1.0))
        except Exception as e:  # reported by the runner
            self.error = e


# ---- The workload --------------------------------------------------------------------


class History:
    def __init__(self):
        self.ops, self.lock = [], threading.Lock()

    def add(self, op):
        with self.lock:
            op["n"] = len(self.ops)
            self.ops.append(op)


def call_from(source, addr, method, path, body, headers, timeout, raw=False):
    """lrcluster.request, from a source address of our choosing: each client
    is its own host to the gateway (its per-address sign-up limits)."""
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout, source_address=source)
    try:
        if body is not None and not raw:
            body = json.dumps(body).encode()
            headers = dict(headers, **{"Content-Type": "application/json"})
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()


def indeterminate(op):
    return op["status"] is None or op["status"] >= 500


class Client(threading.Thread):
    """One person at a keyboard: signs up, logs in, posts, likes and unlikes,
    reads back; through the gateway or straight to a node, with or without
    an Idempotency-Key. One request at a time."""

    def __init__(self, k, c, rng, hist, run, links, comments, stopping):
        super().__init__(daemon=True)
        self.k, self.c, self.rng, self.hist, self.run_id = k, c, rng, hist, run
        self.links, self.comments, self.stopping = links, comments, stopping
        self.user, self.token, self.seq = None, None, 0
        self.last_write = 0          # X-Raft-Index of this client's last acknowledged write
        self.my_links = []

    def target(self, node_only=False):
        if not node_only and self.rng.random() < 0.6:
            return "gw", self.c.gw
        i = self.rng.choice(self.c.ids)
        return "n%d" % i, self.c.http[i]

    def call(self, kind, method, path, body=None, keyed=False, token=True, extra=None, retries=0, raw=False,
             admin=False):
        self.seq += 1
        headers = dict(extra or {})
        key = None
        if keyed:
            key = "ck-%s-%d-%d" % (self.run_id, self.k, self.seq)
            headers["Idempotency-Key"] = key
        if token and self.token:
            headers["Authorization"] = "Bearer " + self.token
        op = {"client": self.k, "user": self.user, "op": kind, "path": path, "body": body, "key": key,
              "invoke": now(), "status": None}
        for attempt in range(retries + 1):
            where, addr = self.target(node_only=admin)
            op["via"] = where
            if admin:  # a KV write: a proof of the secret bound to that node, fresh for each attempt
                headers["Authorization"] = admin_proof(self.c.secret, int(where[1:]), method, path, body)
            if where == "gw":
                source = ("127.0.0.%d" % (10 + self.k), 0)
            else:  # straight to a node: it believes what the client says
                source = None
                headers["X-Forwarded-For"] = "192.0.2.%d" % (10 + self.k)
            try:
                r = call_from(source, addr, method, path, body, headers, timeout=5, raw=raw)
                op["status"] = r.status
                op["index"] = int(r.headers.get("x-raft-index", "0") or 0)
                op["text"] = r.body.decode(errors="replace")[:200]
                try:
                    op["result"] = r.json()
                except ValueError:
                    op["result"] = None
            except OSError as e:
                op["status"], op["result"] = None, repr(e)
            if not (keyed and indeterminate(op)):
                break  # only a keyed write is safe to send again
        op["complete"] = now()
        self.hist.add(op)
        if op["status"] == 429:  # too many sign-ups or logins from here: as a person would, wait
            self.stopping.wait(1.0)
        return op

    def write(self, kind, method, path, body=None):
        keyed = self.rng.random() < 0.5
        op = self.call(kind, method, path, body, keyed=keyed, retries=2 if keyed else 0)
        if op["status"] is not None and op["status"] < 300:
            self.last_write = max(self.last_write, op.get("index", 0))
        return op

    def signup(self):
        name = "c%d_%s_%d" % (self.k, self.run_id[:4], self.seq)
        self.user = name
        op = self.write("signup", "POST", "/api/v1/signup", {"username": name, "password": PW})
        if op["status"] == 201:
            self.token = op["result"]["token"]
        else:
            self.user = None

    def step(self):
        if not self.token:
            self.signup()
            return
        x = self.rng.random()
        if x < 0.15:
            # A register of the replicated key-value API: unique values
            # written, read back linearizably (checked by WGL afterwards).
            reg = "/api/v1/kv/%s-r%d" % (self.run_id, self.rng.randrange(REGISTERS))
            if self.rng.random() < 0.5:
                value = "%d" % (self.k * 10 ** 9 + self.seq + 1)
                self.call("kv-put", "PUT", reg, value.encode(), keyed=self.rng.random() < 0.5, token=False,
                          retries=2, raw=True, admin=True)
            else:
                self.call("kv-get", "GET", reg, token=False, extra={"X-Consistency": "linearizable"})
            return
        x = self.rng.random()
        if x < 0.25:
            url = "https://chaos.example/%s/%d/%d" % (self.run_id, self.k, self.seq)
            op = self.write("post", "POST", "/api/v1/links", {"title": "t%d" % self.seq, "url": url})
            if op["status"] == 201:
                self.links.append(op["result"]["id"])
                self.my_links.append((op["result"]["id"], op["index"]))
        elif x < 0.45 and self.links:
            lid = self.rng.choice(self.links[-30:])
            like = self.rng.random() < 0.6
            self.write("like" if like else "unlike", "PUT" if like else "DELETE", "/api/v1/links/%d/like" % lid)
        elif x < 0.58 and self.links:
            # A comment: top level, or a reply to an acknowledged one. The
            # text is unique, so that the checker can find it (once).
            body = {"text": "comment %s %d %d" % (self.run_id, self.k, self.seq + 1)}
            if self.comments and self.rng.random() < 0.5:
                lid, body["parent"] = self.rng.choice(self.comments[-30:])
            else:
                lid = self.rng.choice(self.links[-30:])
            op = self.write("comment", "POST", "/api/v1/links/%d/comments" % lid, body)
            if op["status"] == 201:
                self.comments.append((lid, op["result"]["id"]))
        elif x < 0.65 and self.comments:
            _, cid = self.rng.choice(self.comments[-30:])
            like = self.rng.random() < 0.6
            self.write("clike" if like else "cunlike", "PUT" if like else "DELETE", "/api/v1/comments/%d/like" % cid)
        elif x < 0.75 and self.my_links:
            # Session read: never older than this client's own last write.
            lid, _ = self.my_links[-1]
            self.call("read-own", "GET", "/api/v1/links/%d" % lid, extra={"X-Min-Index": str(self.last_write)})
        elif x < 0.85:
            self.call("me", "GET", "/api/v1/me", extra={"X-Min-Index": str(self.last_write)})
        elif x < 0.95:
            op = self.call("login", "POST", "/api/v1/login", {"username": self.user, "password": PW}, token=False)
            if op["status"] == 200:
                self.token = op["result"]["token"]
                self.last_write = max(self.last_write, op.get("index", 0))
        else:
            self.token = None  # a new person arrives (next step signs up)

    def run(self):
        while not self.stopping.is_set():
            self.step()


# ---- The checker ---------------------------------------------------------------------


def fetch_state(c, i):
    links = {}
    offset = 0
    while True:
        r = request(c.http[i], "GET", "/api/v1/links?sort=new&limit=100&offset=%d" % offset,
                    headers={"X-Consistency": "stale"}, timeout=10)
        assert r.status == 200, (i, r.status, r.body)
        page = r.json()["links"]
        for link in page:
            links.setdefault(link["url"], []).append(link)
        if len(page) < 100:
            return links
        offset += 100


def observe(c, ops):
    """What the nodes hold after healing, as the checks need it (plain
    JSON, so that a run can be recorded and judged again: --record,
    --check): every node's links by URL, every node's comment threads of
    the links commented on, and what every node answers for each session
    acknowledged during the run."""
    links = {str(i): fetch_state(c, i) for i in c.ids}
    lids = sorted({int(op["path"].split("/")[4]) for op in ops if op["op"] == "comment"})
    threads = {}
    for i in c.ids:
        for lid in lids:
            r = request(c.http[i], "GET", "/api/v1/links/%d/comments" % lid, headers={"X-Consistency": "stale"},
                        timeout=10)
            assert r.status == 200, (i, lid, r.status, r.body)
            threads["%d,%d" % (i, lid)] = [[x["id"], x["parent"], x["text"], x["likes"]]
                                           for x in r.json()["comments"]]
    sessions = {}
    for op in ops:
        if op["op"] in ("signup", "login") and op["status"] in (200, 201):
            for i in c.ids:
                r = request(c.http[i], "GET", "/api/v1/me", headers={
                    "Authorization": "Bearer " + op["result"]["token"], "X-Consistency": "stale"}, timeout=10)
                sessions["%d,%d" % (op["n"], i)] = [r.status, r.json().get("username") if r.status == 200 else None]
    return {"ids": list(c.ids), "links": links, "threads": threads, "sessions": sessions}


def judge(ops, events, run_id, seen):
    """The checks, over the history (ops, events) and what the nodes held
    after healing (seen, from observe()). Returns [(check name, ok,
    message, ops of the slice)]."""
    results = []
    ids = seen["ids"]
    states = {i: seen["links"][str(i)] for i in ids}

    # Every node holds the same links with the same likes.
    ref = states[ids[0]]
    diff = [i for i in ids if {u: [(l["id"], l["likes"], l.get("comments")) for l in ls]
                               for u, ls in states[i].items()} !=
            {u: [(l["id"], l["likes"], l.get("comments")) for l in ls] for u, ls in ref.items()}]
    results.append(("nodes agree after healing", not diff, "nodes %s differ from node %d" % (diff, ids[0]), []))
    # Acknowledged posts: there exactly once, with the id acknowledged; a
    # post refused outright: absent; a 409 for a fresh URL: done twice.
    bad = []
    for op in ops:
        if op["op"] != "post":
            continue
        url = op["body"]["url"]
        found = ref.get(url, [])
        if op["status"] == 201 and (len(found) != 1 or found[0]["id"] != op["result"]["id"]):
            bad.append((op, "acknowledged post %s: found %r" % (url, found)))
        elif op["status"] == 409:
            bad.append((op, "a fresh URL answered 409: the write was done twice"))
        elif op["status"] is not None and 400 <= op["status"] < 500 and found:
            bad.append((op, "refused post %s is there" % url))
        elif len(found) > 1:
            bad.append((op, "post %s there %d times" % (url, len(found))))
    known = {op["body"]["url"] for op in ops if op["op"] == "post"}
    for url in ref:
        if "/%s/" % run_id in url and url not in known:
            bad.append((None, "a link nobody posted: %s" % url))
    results.append(("every acknowledged post exactly once", not bad, "; ".join(b[1] for b in bad[:3]),
                    [b[0] for b in bad[:3] if b[0]]))

    # Likes: each (user, link) ends liked or not as its last acknowledged
    # like/unlike says, unless an unacknowledged one (which may take effect
    # at any time, even later) says otherwise.
    by_id = {l["id"]: l for ls in ref.values() for l in ls}
    bad, slice_ops = like_bounds(ops, ("like", "unlike"), by_id)
    results.append(("link like counts = acknowledged likes - unlikes", not bad,
                    "; ".join("link %d has %d likes, expected %d..%d" % b for b in bad[:3]), slice_ops))
    results += check_comments(ops, run_id, seen)

    # Sign-ups and sessions: every acknowledged one valid on every node.
    bad = []
    for op in ops:
        if op["op"] in ("signup", "login") and op["status"] in (200, 201):
            for i in ids:
                status, name = seen["sessions"]["%d,%d" % (op["n"], i)]
                if status != 200 or name != op["result"]["username"]:
                    bad.append((op, "node %d answers %d for the session of %s" % (i, status, op["result"]["username"])))
    for op in ops:
        if op["op"] == "signup" and op["status"] == 409:
            bad.append((op, "a fresh name answered 409: the sign-up was done twice"))
    results.append(("no acknowledged sign-up or session lost; sessions valid on every node", not bad,
                    "; ".join(b[1] for b in bad[:3]), [b[0] for b in bad[:3]]))

    # Session reads during the run: never older than the client's own writes.
    bad = [op for op in ops if (op["op"] == "read-own" and op["status"] == 404) or
           (op["op"] == "me" and op["status"] == 401)]
    results.append(("session reads never older than the client's own last write", not bad,
                    "%d stale session reads" % len(bad), bad[:3]))

    # Liveness: after each fault heals, writes are acknowledged again soon
    # (a rejoining node must not keep disrupting the leader; a one-way cut
    # must not leave the cluster without one). Generous: elections take
    # a few hundred milliseconds, and the next fault may begin meanwhile.
    # Measured from the first write attempted after the fault, leaving out
    # those refused by the site's own rules (4xx: a throttled sign-up, say):
    # the node answered them. Clients that attempt nothing else for a while
    # (waiting out a sign-up limit) say nothing of the cluster.
    # The figure: from then until the first write attempted after the fault
    # is acknowledged (its completion).
    attempts = sorted((op for op in ops
                       if op["op"] in ("post", "like", "unlike", "kv-put", "signup", "comment", "clike", "cunlike")
                       and not (op["status"] is not None and 400 <= op["status"] < 500)), key=lambda op: op["invoke"])
    recover, bad = [], []
    for ev in events:
        later = [op for op in attempts if op["invoke"] >= ev[1]]
        acked = [op for op in later if op["status"] is not None and op["status"] < 300]
        if acked:
            recover.append(acked[0]["complete"] - later[0]["invoke"])
            if recover[-1] > RECOVERY_LIMIT_S:
                bad.append(ev)
    recover.sort()
    msg = "no write acknowledged within %.0f s after %d faults healed: %s" % (
        RECOVERY_LIMIT_S, len(bad), "; ".join("%.3f %s %s" % (ev[1], ev[2], ev[3]) for ev in bad[:3]))
    # The slice: what the clients did in the 10 s after the first of them.
    slice_ops = [op for op in ops if bad and bad[0][1] <= op["invoke"] <= bad[0][1] + RECOVERY_LIMIT_S][:40]
    results.append(("writes acknowledged again after every fault (median %.0f ms, max %.0f ms)" % (
        1000 * recover[len(recover) // 2] if recover else 0, 1000 * recover[-1] if recover else 0), not bad, msg,
        slice_ops))

    # Linearizable reads of the registers: Wing & Gong with Lowe's
    # refinements (tests/lib/lincheck) over every put and get.
    lines, by_line = [], []
    for op in ops:
        if op["op"] not in ("kv-put", "kv-get"):
            continue
        key = int(op["path"].rsplit("-r", 1)[1])
        call, ret = int(op["invoke"] * 1e6), int(op["complete"] * 1e6)
        if op["op"] == "kv-put":
            done = op["status"] == 200
            if not done and not indeterminate(op):
                continue  # refused outright: never took effect
            value = op["body"].decode() if isinstance(op["body"], bytes) else op["body"]
            lines.append("%d %d put %s %d %s" % (op["client"], key, value, call, ret if done else "-"))
        elif op["status"] in (200, 404):
            lines.append("%d %d get %s %d %d" % (op["client"], key, op["text"] if op["status"] == 200 else "0",
                                                 call, ret))
        else:
            continue
        by_line.append(op)
    r = subprocess.run([LINCHECK], input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=600)
    results.append(("linearizable reads of %d registers (%d ops, WGL)" % (REGISTERS, len(lines)), r.returncode == 0,
                    r.stdout[-3000:], lincheck_slice(r.stdout, by_line) if r.returncode else []))
    lost = seen.get("lost", [])
    results.append(("acknowledged membership changes took effect (%d changes of the spare during faults)" %
                    seen.get("member_changes", 0), not lost,
                    "; ".join("%.3f %s: %s" % (ev[0], ev[2], ev[3]) for ev in lost[:3]), []))
    return results


def lincheck_slice(out, ops):
    """The register operations that lincheck's verdict names (on key K,
    those past the longest linearizable prefix it found), with those on K
    that ended in the second before them (the writes a stale read missed);
    at most 20."""
    m = re.search(r"key (\d+): not linearizable", out)
    if not m:
        return []
    on_key = [op for op in ops if int(op["path"].rsplit("-r", 1)[1]) == int(m.group(1))]
    named = {(int(k), int(t)) for k, t in re.findall(r"client (\d+)\s+(?:put|get)\s+\S+\s+call (\d+)", out)}
    listed = [op for op in on_key if (op["client"], int(op["invoke"] * 1e6)) in named]
    if not listed:
        return on_key[-20:]
    t0, t1 = min(op["invoke"] for op in listed) - 1.0, max(op["complete"] for op in listed)
    return [op for op in on_key if op["complete"] >= t0 and op["invoke"] <= t1][-20:]


def like_bounds(ops, kinds, by_id):
    """Each (user, target) ends liked or not as its last acknowledged like
    or unlike says, unless an unacknowledged one (which may take effect at
    any time, even later) says otherwise. Returns the targets whose count
    (by_id[target]["likes"]) lies outside what the history allows, as
    (id, count, lo, hi), and the ops of the first."""
    per = collections.defaultdict(list)
    for op in ops:
        if op["op"] in kinds:
            per[(op["user"], int(op["path"].split("/")[4]))].append(op)
    lo, hi = collections.Counter(), collections.Counter()
    for (user, tid), lst in per.items():
        acked = [op for op in lst if op["status"] == 200]
        possible = {acked[-1]["op"] == kinds[0]} if acked else {False}
        possible |= {op["op"] == kinds[0] for op in lst if indeterminate(op)}
        lo[tid] += possible == {True}
        hi[tid] += True in possible
    bad = [(tid, by_id[tid]["likes"], lo[tid], hi[tid]) for tid in set(lo) | set(hi)
           if tid in by_id and not lo[tid] <= by_id[tid]["likes"] <= hi[tid]]
    slice_ops = [op for b in bad[:1] for lst in [v for k, v in per.items() if k[1] == b[0]] for op in lst]
    return bad, slice_ops


def check_comments(ops, run_id, seen):
    """Comments after healing: the same threads on every node; every
    acknowledged comment there exactly once, under its id, with the parent
    it was posted under; a refused one absent; like counts as the history
    of acknowledged likes and unlikes allows."""
    results = []
    ids = seen["ids"]
    lids = sorted({int(op["path"].split("/")[4]) for op in ops if op["op"] == "comment"})
    threads = {(i, lid): [tuple(x) for x in seen["threads"]["%d,%d" % (i, lid)]] for i in ids for lid in lids}
    diff = sorted({(i, lid) for i in ids for lid in lids if threads[(i, lid)] != threads[(ids[0], lid)]})
    results.append(("nodes agree on the comments of %d links" % len(lids), not diff,
                    "node, link %s differ from node %d" % (diff[:3], ids[0]), []))
    by_text = collections.defaultdict(list)
    for lid in lids:
        for cid, parent, text, likes in threads[(ids[0], lid)]:
            by_text[text].append({"id": cid, "link": lid, "parent": parent, "likes": likes})
    bad = []
    for op in ops:
        if op["op"] != "comment":
            continue
        found = by_text.get(op["body"]["text"], [])
        want = (int(op["path"].split("/")[4]), op["body"].get("parent"))
        if op["status"] == 201 and (len(found) != 1 or found[0]["id"] != op["result"]["id"] or
                                    (found[0]["link"], found[0]["parent"]) != want):
            bad.append((op, "acknowledged comment %d (link, parent %s): found %r" % (op["result"]["id"], want, found)))
        elif op["status"] is not None and 400 <= op["status"] < 500 and found:
            bad.append((op, "refused comment is there: %r" % found))
        elif len(found) > 1:
            bad.append((op, "comment there %d times: %r" % (len(found), found)))
    known = {op["body"]["text"] for op in ops if op["op"] == "comment"}
    bad += [(None, "a comment nobody posted: %r" % t) for t in by_text if run_id in t and t not in known]
    acked = sum(1 for op in ops if op["op"] == "comment" and op["status"] == 201)
    results.append(("every acknowledged comment exactly once, with its parent (%d acknowledged)" % acked, not bad,
                    "; ".join(b[1] for b in bad[:3]), [b[0] for b in bad[:3] if b[0]]))
    by_id = {x["id"]: x for xs in by_text.values() for x in xs}
    bad, slice_ops = like_bounds(ops, ("clike", "cunlike"), by_id)
    results.append(("comment like counts = acknowledged likes - unlikes", not bad,
                    "; ".join("comment %d has %d likes, expected %d..%d" % b for b in bad[:3]), slice_ops))
    return results


def show_slice(ops, events, history):
    """The ops of a failure, that client's ops around them, and the faults
    in that window."""
    if not ops:
        return
    t0 = min(op["invoke"] for op in ops) - 2
    t1 = max(op["complete"] for op in ops) + 1
    clients = {op["client"] for op in ops}
    print("  history slice (%.3f .. %.3f):" % (t0, t1))
    for op in history:
        if op["client"] in clients and t0 <= op["invoke"] <= t1:
            if op["op"] in ("kv-put", "kv-get"):  # a register: the value written or read
                value = op["body"] if op["op"] == "kv-put" else op.get("text")
                detail = "value=%s" % (value.decode(errors="replace") if isinstance(value, bytes) else value)
            else:
                detail = json.dumps(op.get("result"))[:100]
            print("    %8.3f-%8.3f c%d %-8s %-28s via %-3s key=%s -> %s %s" % (
                op["invoke"], op["complete"], op["client"], op["op"], op["path"], op.get("via"),
                "y" if op["key"] else "n", op["status"], detail))
    for ev in events:
        if ev[1] >= t0 and ev[0] <= t1:
            print("    fault %8.3f-%8.3f %-9s %s" % ev)


def report(ops, events, run_id, seen):
    """Judges and prints: the faults and operations counted, each check,
    and the slice of history of each that failed. Returns (passed, failed)."""
    results = judge(ops, events, run_id, seen)
    counts = collections.Counter(ev[2] for ev in events)
    outcomes = collections.Counter((op["op"], "ok" if op["status"] is not None and op["status"] < 300 else
                                    "unknown" if indeterminate(op) else "refused") for op in ops)
    print("chaos: %d faults (%s); %d membership changes during other faults" % (
        len(events), ", ".join("%s %d" % kv for kv in sorted(counts.items())), seen.get("member_changes", 0)))
    print("chaos: %d operations (%s)" % (len(ops), ", ".join("%s/%s %d" % (k[0], k[1], v)
                                                              for k, v in sorted(outcomes.items()))))
    for name, ok, msg, slice_ops in results:
        print("  %s  %s%s" % ("ok  " if ok else "FAIL", name, "" if ok else ": " + msg))
        if not ok:
            show_slice(slice_ops, events, ops)
    passed = sum(1 for r in results if r[1])
    return passed, len(results) - passed


def record(path, seed, run_id, ops, events, seen):
    """Writes a run's history and what the nodes held after it, for --check."""
    def plain(o):
        if isinstance(o, bytes):
            return o.decode(errors="replace")
        raise TypeError(type(o))
    with open(path, "w") as f:
        json.dump({"seed": seed, "run_id": run_id, "ops": ops, "events": events, "seen": seen}, f, default=plain)


def check_recorded(path):
    """--check: judges a recorded run again (or a history made by hand:
    tests/cluster/test_chaos_checker.py plants violations in one)."""
    with open(path) as f:
        rec = json.load(f)
    print("chaos: seed %d, judging the history recorded in %s" % (rec["seed"], path), flush=True)
    passed, failed = report(rec["ops"], [tuple(ev) for ev in rec["events"]], rec["run_id"], rec["seen"])
    if failed:
        print("chaos: seed %d failed; repeat with --seed %d" % (rec["seed"], rec["seed"]))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--min-faults", type=int, default=0, help="run on past --duration until this many faults")
    ap.add_argument("--faults", default=",".join(FAULTS))
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, data)")
    ap.add_argument("--record", metavar="FILE", help="write the history and the final state to FILE (JSON)")
    ap.add_argument("--check", metavar="FILE", help="judge a recorded history (--record) instead of running")
    a = ap.parse_args()
    if a.check:
        return check_recorded(a.check)
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1 << 31)
    kinds = [k for k in a.faults.split(",") if k]
    for k in kinds:
        if k not in FAULTS:
            ap.error("unknown fault %r (known: %s)" % (k, ", ".join(FAULTS)))
    why = netns.available()
    if not why and "clock" in kinds and not os.path.exists(FAKETIME):
        why = "the clock fault needs %s (sh scripts/deps.sh chaos)" % FAKETIME
    if why:
        print("chaos: cannot run: %s" % why)
        return 2
    if not os.path.exists(SHIM):
        print("chaos: %s is missing (make chaos builds it)" % SHIM)
        return 2
    print("chaos: seed %d, %.0f s, faults %s, %d nodes, %d clients" % (seed, a.duration, ",".join(kinds), a.nodes,
                                                                        a.clients), flush=True)
    rng = random.Random(seed)
    run_id = "%08x" % rng.getrandbits(32)
    workdir = tempfile.mkdtemp(prefix="linkraft-chaos-")
    c = Cluster(a.nodes, workdir)
    failed, passed = 0, 0
    try:
        for i in c.ids:
            c.start(i)
        c.start_gateway()
        wait_for("a leader", c.leader, timeout=20)
        hist, links, comments, stopping = History(), [], [], threading.Event()
        clients = [Client(k, c, random.Random(rng.getrandbits(64)), hist, run_id, links, comments, stopping)
                   for k in range(a.clients)]
        nem = Nemesis(c, random.Random(rng.getrandbits(64)), kinds, lambda s: print(s, flush=True))
        for t in clients:
            t.start()
        nem.start()
        end = time.monotonic() + a.duration
        while time.monotonic() < end and nem.is_alive():  # a nemesis that failed ends the run now
            stopping.wait(0.5)
        give_up = time.monotonic() + max(60, a.duration)
        while len(nem.events) < a.min_faults and nem.is_alive() and time.monotonic() < give_up:
            stopping.wait(0.5)
        nem.stopping.set()
        nem.join(timeout=60)
        stopping.set()
        for t in clients:
            t.join(timeout=30)
        if nem.error:
            raise nem.error
        if len(nem.events) < a.min_faults:
            raise AssertionError("only %d faults injected, wanted %d" % (len(nem.events), a.min_faults))
        c.heal()
        wait_for("a leader after healing", c.leader, timeout=30)
        # Everything committed is applied everywhere.
        def settled():
            infos = [request(c.http[i], "GET", "/api/v1/cluster", timeout=2).json() for i in c.ids]
            return len({x["applied"] for x in infos}) == 1 and all(x["applied"] >= x["commit"] for x in infos)
        wait_for("every node to apply everything", settled, timeout=60, interval=0.2)
        seen = observe(c, hist.ops)
        seen.update(lost=nem.lost, member_changes=nem.member_changes)
        if a.record:
            record(a.record, seed, run_id, hist.ops, nem.events, seen)
        passed, failed = report(hist.ops, nem.events, run_id, seen)
    except Exception as e:
        print("chaos: FAIL: %s" % e)
        failed += 1
    finally:
        c.close()
        if failed:
            print("chaos: seed %d failed; repeat with --seed %d; logs in %s" % (seed, seed, workdir))
        if not failed and not a.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
