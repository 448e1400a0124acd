"""The gateway (issue 5) with real processes: reads to ready nodes, writes to
the leader, transparent retries when the leader dies, several gateways."""
import http.client
import socket
import threading
import time

from lrcluster import request, wait_for


def gw_put(gw, key, value, headers=None):
    return request(gw, "PUT", "/api/v1/kv/" + key, body=value.encode(), headers=headers, timeout=10)


def gw_get(gw, key):
    return request(gw, "GET", "/api/v1/kv/" + key)


def test_reads_spread_writes_to_leader(make_cluster):
    c = make_cluster(3)
    c.start_all()
    gw = c.start_gateway()
    leader = c.wait_leader()
    wait_for("gateway to see the leader", lambda: gw_put(gw, "probe", "1").headers.get("x-served-by") == str(leader))
    for k in range(20):
        r = gw_put(gw, "k%d" % k, str(k))
        assert r.status == 200 and r.headers["x-served-by"] == str(leader)
    served = set()
    for i in range(1, 4):  # reads below carry no session: every node must have the write
        wait_for("node %d has k19" % i, lambda i=i: c.kv(i, "k19") == "19")
    deadline = time.monotonic() + 10
    while len(served) < 2 and time.monotonic() < deadline:
        r = gw_get(gw, "k19")
        assert r.status == 200 and r.body == b"19"
        served.add(r.headers["x-served-by"])
    assert len(served) >= 2, served


def test_idempotency_key_makes_a_repeat_harmless(make_cluster):
    c = make_cluster(3)
    c.start_all()
    gw = c.start_gateway()
    c.wait_leader()
    wait_for("gateway ready", lambda: gw_put(gw, "warm", "1").status == 200)
    r1 = gw_put(gw, "idem", "first", headers={"Idempotency-Key": "abc"})
    r2 = gw_put(gw, "idem", "second", headers={"Idempotency-Key": "abc"})
    assert r1.status == 200 and r2.status == 200  # the first result, returned again
    # (A read sent to a follower waits for the write's index: reads are not
    # linearizable by default, and the follower may not have applied it yet.)
    seen = request(gw, "GET", "/api/v1/kv/idem", headers={"X-Min-Index": r2.headers["x-raft-index"]})
    assert seen.body == b"first"  # and the repeat changed nothing


def test_seed_case_3_and_4_follower_dies_and_returns(make_cluster):
    c = make_cluster(3)
    c.start_all()
    gw = c.start_gateway()
    leader = c.wait_leader()
    wait_for("gateway ready", lambda: gw_put(gw, "warm", "1").status == 200)
    for i in range(1, 4):  # reads below carry no session: every node must have it
        wait_for("node %d has the write" % i, lambda i=i: c.kv(i, "warm") == "1")
    follower = next(i for i in range(1, 4) if i != leader)
    c.kill(follower)
    # Within a few health-check rounds no read goes to the dead node, and
    # every read and write succeeds.
    time_limit = time.monotonic() + 2
    for k in range(200):
        r = gw_get(gw, "warm")
        assert r.status == 200
        if time.monotonic() > time_limit:
            assert r.headers["x-served-by"] != str(follower)
    for k in range(50):
        assert gw_put(gw, "f%d" % k, str(k)).status == 200
    c.start(follower)
    wait_for("follower caught up", lambda: c.kv(follower, "f49") == "49")


def test_seed_case_1_and_2_leader_dies_mid_writes(make_cluster):
    c = make_cluster(3)
    c.start_all()
    gw = c.start_gateway()
    leader = c.wait_leader()
    wait_for("gateway ready", lambda: gw_put(gw, "warm", "1").status == 200)
    acked, failed = [], []
    stop = threading.Event()

    def writer():
        k = 0
        while not stop.is_set():
            r = gw_put(gw, "w%d" % k, str(k))
            (acked if r.status == 200 else failed).append((k, r.status, r.body))
            k += 1

    t = threading.Thread(target=writer)
    t.start()
    wait_for("writes flowing", lambda: len(acked) >= 50)
    c.kill(leader)
    new = c.wait_leader(exclude=(leader,))
    n_before = len(acked)
    wait_for("writes flowing again", lambda: len(acked) >= n_before + 50, timeout=15)
    stop.set()
    t.join()
    assert not failed, failed[:3]  # the user saw success every time
    for k, _, _ in acked:
        assert c.kv(new, "w%d" % k, consistency="linearizable") == str(k)
    # Seed case 2: the old leader returns, follows and catches up.
    c.start(leader)
    last = acked[-1][0]
    wait_for("old leader caught up", lambda: c.kv(leader, "w%d" % last) == str(last))
    assert c.get(leader, "/leaderz").status == 503 or c.leader() == leader


def test_two_gateways_one_killed(make_cluster):
    c = make_cluster(3)
    c.start_all()
    gw1 = c.start_gateway("gw1")
    gw2 = c.start_gateway("gw2")
    c.wait_leader()
    wait_for("gateways ready", lambda: gw_put(gw1, "a", "1").status == 200 and gw_put(gw2, "b", "2").status == 200)
    c.kill_gateway("gw1")
    for k in range(20):
        assert gw_put(gw2, "g%d" % k, str(k)).status == 200
    r = request(gw2, "GET", "/api/v1/kv/a", headers={"X-Consistency": "linearizable"})
    assert r.status == 200 and r.body == b"1"


def test_every_node_killed_and_restarted_through_gateway(make_cluster):
    c = make_cluster(3)
    c.start_all()
    gw = c.start_gateway()
    c.wait_leader()
    wait_for("gateway ready", lambda: gw_put(gw, "warm", "1").status == 200)
    for k in range(100):
        assert gw_put(gw, "p%d" % k, str(k)).status == 200
    for i in range(1, 4):
        c.kill(i)
    c.start_all()
    c.wait_leader()
    wait_for("gateway sees the cluster again", lambda: gw_get(gw, "p99").status == 200, timeout=15)
    for k in range(100):
        r = request(gw, "GET", "/api/v1/kv/p%d" % k, headers={"X-Consistency": "linearizable"})
        assert r.status == 200 and r.body == str(k).encode()


# ---- answers relayed as they arrive (issue 5, item 1) -------------------------

def test_large_answer_passes_through_intact(make_cluster):
    c = make_cluster(3)
    c.start_all()
    gw = c.start_gateway()
    c.wait_leader()
    wait_for("gateway ready", lambda: gw_put(gw, "warm", "1").status == 200)
    r = request(gw, "POST", "/api/v1/signup", {"username": "streamer", "password": "correct horse"}, timeout=10)
    assert r.status == 201, r.body
    auth = {"Authorization": "Bearer " + r.json()["token"]}
    for k in range(100):
        title = ("link %03d " % k) + "streamed through the gateway " * 6
        r = request(gw, "POST", "/api/v1/links", {"title": title[:200], "url": "https://s%d.example/" % k},
                    auth, timeout=10)
        assert r.status == 201, r.body
    idx = r.headers["x-raft-index"]
    via_gw = request(gw, "GET", "/api/v1/links?sort=new&limit=100", headers={"X-Min-Index": idx}, timeout=10)
    assert via_gw.status == 200
    served_by = int(via_gw.headers["x-served-by"])
    direct = c.req(served_by, "GET", "/api/v1/links?sort=new&limit=100", headers={"X-Min-Index": idx})
    assert len(via_gw.body) > 20000
    assert via_gw.body == direct.body  # byte for byte
    assert len(via_gw.json()["links"]) == 100


class SlowNode:
    """A stand-in for a node, on the address the cluster file gives it: 200
    to /readyz, /leaderz and /probe; GET /slow answered chunked in 5 pieces
    and a last chunk, each sent only when the test releases it (cut_after: the connection is
    closed after that many pieces, with no last chunk)."""

    def __init__(self, addr, cut_after=None):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, int(port)))
        self.sock.listen(16)
        self.cut_after = cut_after
        self.release = threading.Semaphore(0)
        self.slow_requests = 0
        self.pieces_sent = 0
        self.finished = False
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.conn, args=(conn,), daemon=True).start()

    def conn(self, s):
        s.settimeout(10)
        f = s.makefile("rb")
        try:
            while True:
                line = f.readline()
                if not line:
                    return
                path = line.split()[1].decode()
                while f.readline() not in (b"\r\n", b"\n", b""):
                    pass
                if path.startswith("/flood"):
                    self.flood(s, int(path.split("=")[1]))
                    continue
                if path != "/slow":
                    s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
                    continue
                self.slow_requests += 1
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
                for k in range(5):
                    if k == self.cut_after:
                        return  # cut short: closed without the last chunk
                    if not self.release.acquire(timeout=10):
                        return
                    piece = (b"piece %d " % k) * 1000
                    self.pieces_sent += 1
                    s.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                if not self.release.acquire(timeout=10):  # the last chunk too
                    return
                self.finished = True
                s.sendall(b"0\r\n\r\n")
        except OSError:
            return
        finally:
            s.close()

    def flood(self, s, total):
        """Content-Length: total bytes, written as fast as the gateway takes them."""
        self.flood_sent = 0
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total)
        piece = b"f" * (1 << 20)
        while self.flood_sent < total:
            n = min(len(piece), total - self.flood_sent)
            s.sendall(piece[:n])
            self.flood_sent += n

    def close(self):
        self.sock.close()


def slow_node_gateway(c, cut_after=None):
    node = SlowNode(c.http[1], cut_after)
    gw = c.start_gateway()
    # The gateway retries a read until its health checks find the node ready.
    wait_for("gateway to reach the stand-in", lambda: request(gw, "GET", "/probe", timeout=10).status == 200)
    return node, gw


def test_answer_is_relayed_before_the_node_has_finished(make_cluster):
    c = make_cluster(1)  # never started: its HTTP address is the stand-in's
    node, gw = slow_node_gateway(c)
    try:
        host, port = gw.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("GET", "/slow")
        r = conn.getresponse()
        assert r.status == 200 and r.getheader("transfer-encoding") == "chunked"
        assert r.getheader("content-type") == "text/plain"
        for k in range(5):
            node.release.release()  # the node may send piece k, and no more
            want = (b"piece %d " % k) * 1000
            got = b""
            while len(got) < len(want):
                more = r.read1(len(want) - len(got))
                assert more, "answer ended early"
                got += more
            assert got == want
            # Piece k reached the client while the node was still waiting
            # to send the rest: the gateway relays, it does not hold the body.
            assert node.pieces_sent == k + 1 and not node.finished
        node.release.release()
        assert r.read() == b""  # then the last chunk: complete
        assert node.finished and node.slow_requests == 1
        conn.close()
    finally:
        node.close()


def test_answer_cut_short_closes_the_client_connection(make_cluster):
    c = make_cluster(1)
    node, gw = slow_node_gateway(c, cut_after=1)
    try:
        host, port = gw.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("GET", "/slow")
        node.release.release()
        r = conn.getresponse()
        assert r.status == 200
        # The client gets piece 0, then a truncated answer (no last chunk,
        # connection closed) — never a retry's answer mixed in.
        try:
            body = r.read()
            raise AssertionError("a cut-short answer read as complete: %d bytes" % len(body))
        except http.client.IncompleteRead as e:
            assert e.partial == b"piece 0 " * 1000
        conn.close()
        assert node.slow_requests == 1  # not retried once relaying began
        assert request(gw, "GET", "/probe").status == 200  # and the gateway carries on
    finally:
        node.close()


def test_a_client_that_does_not_read_stops_the_gateway_reading_the_node(make_cluster):
    c = make_cluster(1)
    node, gw = slow_node_gateway(c)
    total, bound = 256 << 20, 128 << 20
    try:
        host, port = gw.rsplit(":", 1)
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.settimeout(20)
        s.connect((host, int(port)))
        s.sendall(b"GET /flood?n=%d HTTP/1.1\r\nHost: gw\r\n\r\n" % total)
        got = b""
        while b"\r\n\r\n" not in got:
            got += s.recv(65536)
        head, rest = got.split(b"\r\n\r\n", 1)
        assert b" 200 " in head and b"Content-Length: %d" % total in head
        # Without back-pressure the gateway would take all of it from the node
        # within a second (loopback) while the client reads nothing; with it,
        # the node is held to what the socket buffers and the gateway's
        # bounded queue hold (a few MiB to some tens of MiB).
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            assert getattr(node, "flood_sent", 0) < bound, "the gateway kept reading a node its client does not read"
            time.sleep(0.05)
        held = node.flood_sent
        n = len(rest)
        while n < total:
            chunk = s.recv(1 << 20)
            assert chunk, "answer ended early at %d bytes" % n
            assert chunk.count(b"f") == len(chunk)
            n += len(chunk)
        assert n == total and node.flood_sent == total
        s.close()
        # A figure, not asserted: the gateway's peak memory for this relay.
        with open("/proc/%d/status" % c.gateways["gw"][0].pid) as f:
            hwm = next((l.split(":")[1].strip() for l in f if l.startswith("VmHWM")), "?")
        print("node had sent %d bytes while the client read nothing; gateway peak RSS %s" % (held, hwm))
    finally:
        node.close()


class ClaimingNode:
    """A stand-in for a node that says what the test tells it: /readyz 200,
    /leaderz `leader` (200 or 503) with X-Raft-Term `term`; writes answered
    200 and counted."""

    def __init__(self, addr, leader, term):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        self.leader, self.term, self.writes, self.leaderz_asked = leader, term, 0, 0
        node = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def answer(self, status, body):
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-Raft-Term", str(node.term))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path == "/leaderz":
                    node.leaderz_asked += 1
                    self.answer(200 if node.leader else 503, b"leader\n" if node.leader else b"not the leader\n")
                else:
                    self.answer(200, b"ok\n")

            def do_PUT(self):
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                node.writes += 1
                self.answer(200, b"{}\n")

            def log_message(self, *args):
                pass

        host, port = addr.rsplit(":", 1)
        self.srv = ThreadingHTTPServer((host, int(port)), Handler)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def test_of_two_nodes_claiming_to_lead_the_gateway_writes_to_the_newer_term(make_cluster):
    """A leader paused (or cut off) and resumed says 200 on /leaderz until it
    hears of its successor. It became "leader" last as the gateway sees it,
    so the gateway took it for the newest leader and sent writes there (and
    abandoned writes in flight on the real one). /leaderz now carries the
    term, and the highest term wins. Stand-ins, so that the window does not
    close before the gateway looks."""
    c = make_cluster(2)  # never started: the stand-ins answer on their addresses
    new, old = ClaimingNode(c.http[1], True, 7), ClaimingNode(c.http[2], False, 6)
    try:
        gw = c.start_gateway()
        wait_for("a write through the gateway", lambda: gw_put(gw, "a", "1").status == 200)
        assert new.writes == 1
        # Node 2 "resumes", still believing it leads term 6: the gateway
        # hears it claim leadership after node 1 did.
        old.leader = True
        asked = old.leaderz_asked
        wait_for("the gateway to hear node 2 claim to lead", lambda: old.leaderz_asked >= asked + 2)
        for k in range(5):
            assert gw_put(gw, "b%d" % k, "1").status == 200
        assert (new.writes, old.writes) == (6, 0), (new.writes, old.writes)
    finally:
        new.close()
        old.close()


def test_leaderz_says_the_term(make_cluster):
    c = make_cluster(3)
    c.start_all()
    leader = c.wait_leader()
    term = c.info(leader)["term"]
    r = c.get(leader, "/leaderz")
    assert r.status == 200 and int(r.headers["x-raft-term"]) == term
    follower = next(i for i in (1, 2, 3) if i != leader)
    r = c.get(follower, "/leaderz")
    assert r.status == 503 and int(r.headers["x-raft-term"]) == term
