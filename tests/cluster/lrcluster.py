"""lrcluster.py — real linkraft node processes on loopback, for process-level
tests: a temporary cluster file and data directories, start / kill -9 /
SIGTERM / restart of each node, HTTP calls, and waiting on conditions with
deadlines (never a bare sleep). admin_proof signs admin requests the way
`linkraft member --secret-file` does (include/admin_auth.h)."""
import hashlib
import hmac
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("LINKRAFT_BIN", os.path.join(ROOT, "build", "linkraft"))


def free_ports(count):
    """Ports that were free a moment ago (bound to 0 and released)."""
    socks, ports = [], []
    try:
        while len(ports) < count:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def wait_for(what, predicate, timeout=10.0, interval=0.02):
    """Polls predicate() until it returns a truthy value or the deadline
    passes (then fails, saying what was awaited). Returns the value."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # a node that is down or restarting
            last_error = e
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s (last error: %r)" % (timeout, what, last_error))


def admin_key(secret):
    """The admin key of a cluster secret (text as written to the file; the
    loader drops one trailing newline)."""
    raw = secret.encode() if isinstance(secret, str) else secret
    raw = raw[:-1] if raw.endswith(b"\n") else raw
    raw = raw[:-1] if raw.endswith(b"\r") else raw
    return hmac.new(raw, b"linkraft-admin-key-v1", hashlib.sha512).digest()[:32]


def admin_proof(secret, node, method, target, body=b"", ts=None, nonce=None):
    """The Authorization header value proving `secret` for one request:
    HMAC-SHA-512-256 (libsodium's: HMAC-SHA-512 cut to 32 bytes) over method,
    target, node (0: any), time (Unix ms), nonce and the body's SHA-256."""
    ts = int(time.time() * 1000) if ts is None else ts
    nonce = os.urandom(16).hex() if nonce is None else nonce
    text = "linkraft-admin-v1\n%s\n%s\n%d\n%d\n%s\n%s" % (
        method, target, node, ts, nonce, hashlib.sha256(body or b"").hexdigest())
    mac = hmac.new(admin_key(secret), text.encode(), hashlib.sha512).digest()[:32].hex()
    return "Linkraft-HMAC node=%d, ts=%d, nonce=%s, mac=%s" % (node, ts, nonce, mac)


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body.decode())


def request(addr, method, path, body=None, headers=None, timeout=3.0):
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = dict(headers or {}, **{"Content-Type": "application/json"})
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        headers = {}
        for k, v in r.getheaders():
            k = k.lower()
            # Repeated headers are joined; Set-Cookie lines one per line
            # (a comma can be part of a cookie's Expires).
            headers[k] = headers[k] + ("\n" if k == "set-cookie" else ", ") + v if k in headers else v
        return Response(r.status, headers, r.read())
    finally:
        conn.close()


class Cluster:
    """n nodes (ids 1..n). extra: members listed in the cluster file only
    later (for member add). node_args: extra `linkraft node` options.
    rate_limits: the per-user limits on new content (SPEC §5) stay on; by
    default every node is started with --rate-limits off, as the tests post
    far faster than any person."""

    def __init__(self, n=3, extra=0, node_args=(), secret=None, binary=None, rate_limits=False):
        self.binary = binary or BINARY  # another build side by side (bench/run.py BENCH_BASELINE_BIN)
        self.dir = tempfile.mkdtemp(prefix="linkraft-test-")
        self.n = n
        self.node_args = ([] if rate_limits else ["--rate-limits", "off"]) + list(node_args)
        ports = free_ports(2 * (n + extra))
        self.raft = {i + 1: "127.0.0.1:%d" % ports[2 * i] for i in range(n + extra)}
        self.http = {i + 1: "127.0.0.1:%d" % ports[2 * i + 1] for i in range(n + extra)}
        self.procs = {}
        self.logs = {}
        self.gateways = {}
        self.secret_path = None
        self.secret = secret
        if secret is not None:
            self.secret_path = os.path.join(self.dir, "secret")
            with open(os.open(self.secret_path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
                f.write(secret)
        self.cluster_file = os.path.join(self.dir, "cluster.txt")
        self.write_cluster_file(range(1, n + 1))

    def write_cluster_file(self, ids):
        with open(self.cluster_file, "w") as f:
            f.write("# id raft-address http-address\n")
            for i in ids:
                f.write("%d %s %s\n" % (i, self.raft[i], self.http[i]))

    def data_dir(self, i):
        return os.path.join(self.dir, "node%d" % i)

    def start(self, i, join=False, args=(), prefix=()):
        """prefix: a command the node runs under (e.g. strace injecting faults)."""
        assert i not in self.procs or self.procs[i].poll() is not None, "node %d already running" % i
        log = open(os.path.join(self.dir, "node%d.log" % i), "ab")
        cmd = list(prefix) + [self.binary, "node", "--cluster", self.cluster_file, "--id", str(i), "--data",
                              self.data_dir(i)]
        if self.secret_path:
            cmd += ["--secret-file", self.secret_path]
        if join:
            cmd.append("--join")
        cmd += self.node_args + list(args)
        self.procs[i] = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        self.logs[i] = log
        wait_for("node %d to serve /healthz" % i, lambda: self.alive(i) and self.get(i, "/healthz").status == 200)

    def start_all(self):
        for i in range(1, self.n + 1):
            self.start(i)

    def start_gateway(self, name="gw", args=()):
        """Starts `linkraft gateway` on a free port; returns its address."""
        addr = "127.0.0.1:%d" % free_ports(1)[0]
        log = open(os.path.join(self.dir, "%s.log" % name), "ab")
        p = subprocess.Popen([BINARY, "gateway", "--cluster", self.cluster_file, "--listen", addr] + list(args),
                             stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        self.gateways[name] = (p, addr, log)
        wait_for("gateway %s to serve" % name, lambda: p.poll() is None and
                 request(addr, "GET", "/gateway/healthz").status == 200)
        return addr

    def kill_gateway(self, name="gw", sig=signal.SIGKILL):
        p, _, _ = self.gateways[name]
        p.send_signal(sig)
        return p.wait(timeout=15)

    def alive(self, i):
        p = self.procs.get(i)
        if p is not None and p.poll() is not None:
            raise AssertionError("node %d exited with %s; log:\n%s" % (i, p.returncode, self.log_tail(i)))
        return p is not None

    def kill(self, i, sig=signal.SIGKILL):
        p = self.procs[i]
        p.send_signal(sig)
        return p.wait(timeout=15)

    def stop(self, i):
        """SIGTERM, and the exit code."""
        return self.kill(i, signal.SIGTERM)

    def running(self):
        return [i for i, p in self.procs.items() if p.poll() is None]

    def log_tail(self, i, lines=40):
        try:
            with open(os.path.join(self.dir, "node%d.log" % i), "rb") as f:
                return b"".join(f.readlines()[-lines:]).decode(errors="replace")
        except OSError:
            return "(no log)"

    def close(self, keep=False):
        for i, p in self.procs.items():
            if p.poll() is None:
                p.kill()
                p.wait()
        for p, _, log in self.gateways.values():
            if p.poll() is None:
                p.kill()
                p.wait()
            log.close()
        for log in self.logs.values():
            log.close()
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    # ---- HTTP -----------------------------------------------------------------

    def req(self, i, method, path, body=None, headers=None, timeout=3.0):
        return request(self.http[i], method, path, body, headers, timeout)

    def admin_req(self, i, method, path, body=None, headers=None, node=None, secret=None, timeout=3.0):
        """A request proven with the cluster's secret (or `secret`), made for
        node i (or `node`); unsigned when there is no secret (a loopback
        client then suffices)."""
        secret = self.secret if secret is None else secret
        headers = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        if secret is not None:
            headers["Authorization"] = admin_proof(secret, i if node is None else node, method, path, body)
        return self.req(i, method, path, body, headers, timeout)

    def get(self, i, path, headers=None):
        return self.req(i, "GET", path, headers=headers)

    def info(self, i):
        return self.get(i, "/api/v1/cluster").json()

    def leader(self, among=None):
        """The id of the running node whose /leaderz says 200, or None."""
        for i in among or self.running():
            try:
                if self.get(i, "/leaderz").status == 200:
                    return i
            except OSError:
                pass
        return None

    def wait_leader(self, among=None, timeout=10.0, exclude=()):
        return wait_for("a leader", lambda: (lambda l: l if l and l not in exclude else None)(self.leader(among)),
                        timeout)

    def put(self, i, key, value, headers=None, timeout=3.0):
        """A write to the KV test hook: proven for node i (which forwards it
        to the leader with a proof of its own) when the cluster has a secret."""
        return self.admin_req(i, "PUT", "/api/v1/kv/" + key, body=value.encode(), headers=headers,
                              timeout=timeout)

    def kv(self, i, key, consistency="stale"):
        r = self.get(i, "/api/v1/kv/" + key, headers={"X-Consistency": consistency})
        return r.body.decode() if r.status == 200 else None

    def applied(self, i):
        return self.info(i)["applied"]

    def metric(self, i, name):
        for line in self.get(i, "/metrics").body.decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        raise KeyError(name)

    def cli(self, *args, timeout=20):
        return subprocess.run([BINARY] + list(args), capture_output=True, text=True, timeout=timeout)
