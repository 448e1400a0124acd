"""The raft port under attack, against real node processes (SPEC §3
"Security of the peer and admin planes" and "Identity, lost disks"): a
secret is required off loopback and must be private, `demo` uses one,
strangers and unknown ids are refused at the handshake, a frame with a term
at or above 2^63 is dropped and counted, announced sizes buy no memory, a
node of another cluster is refused, and a node whose data directory was lost
refuses to come back as a voter."""
import os
import random
import shutil
import signal
import socket
import stat
import struct
import subprocess
import tempfile

from lrcluster import BINARY, request, wait_for

# ---- Speaking the raft port by hand (docs/transport.md, docs/wire-format.md) ----


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def control(kind, payload):
    return b"LRN1" + bytes([kind, 2]) + struct.pack("<H", len(payload)) + payload


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def read_control(s):
    head = recv_exact(s, 8)
    assert head[:4] == b"LRN1", head
    (plen,) = struct.unpack("<H", head[6:8])
    return head[4], recv_exact(s, plen)


def closed_by_peer(s, timeout=5.0):
    """True once the other side closed the connection (EOF or reset)."""
    s.settimeout(timeout)
    try:
        while True:
            data = s.recv(65536)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def raft_frame(msg_type, fields):
    body = bytes([1, msg_type]) + fields
    return b"LRF1" + struct.pack("<II", len(body), crc32c(body)) + body


def secret_file(directory, text="correct horse battery staple", mode=0o600):
    path = os.path.join(directory, "secret")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


# ---- 1. A secret off loopback, private, and in the demo ------------------------


def test_a_cluster_off_loopback_needs_a_secret(make_cluster):
    c = make_cluster(1)
    path = os.path.join(c.dir, "wide.txt")
    with open(path, "w") as f:
        f.write("1 %s %s\n2 192.0.2.7:7001 192.0.2.7:8001\n" % (c.raft[1], c.http[1]))
    r = c.cli("node", "--cluster", path, "--id", "1", "--data", c.data_dir(1), timeout=10)
    assert r.returncode == 2, r
    assert "192.0.2.7:7001" in r.stderr and "not a loopback address" in r.stderr and "--secret-file" in r.stderr
    assert not os.path.exists(os.path.join(c.data_dir(1), "lock"))  # refused before touching the disk
    # With a private secret the same file is accepted (the node then runs).
    sec = secret_file(c.dir)
    p = subprocess.Popen([BINARY, "node", "--cluster", path, "--id", "1", "--data", c.data_dir(1),
                          "--secret-file", sec], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for("node 1 to serve", lambda: request(c.http[1], "GET", "/healthz").status == 200)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=15)


def test_a_secret_readable_by_others_is_refused(make_cluster):
    c = make_cluster(1)
    sec = secret_file(c.dir, mode=0o644)
    r = c.cli("node", "--cluster", c.cluster_file, "--id", "1", "--data", c.data_dir(1), "--secret-file", sec,
              timeout=10)
    assert r.returncode == 2, r
    assert "accessible by group or others (mode 0644)" in r.stderr and "chmod 600" in r.stderr, r.stderr


def test_demo_writes_a_private_secret_and_its_nodes_require_it():
    d = tempfile.mkdtemp(prefix="linkraft-demo-")
    port = 0
    for _ in range(200):  # P, P+1..3 and P-999..P-997 must all be free; below the ephemeral range
        candidate = random.randrange(23000, 31000)
        if all(_port_free(candidate + k) for k in (0, 1, 2, 3, -999, -998, -997)):
            port = candidate
            break
    assert port, "no free port block for the demo"
    p = subprocess.Popen([BINARY, "demo", "--data", d, "--port", str(port)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        sec = os.path.join(d, "secret")
        wait_for("the demo's site", lambda: request("127.0.0.1:%d" % (port + 1), "GET", "/readyz").status == 200,
                 timeout=20)
        assert stat.S_IMODE(os.stat(sec).st_mode) == 0o600
        assert len(open(sec).read().strip()) >= 32
        # Node 1's raft port asks for a secret (CHALLENGE flags bit 0).
        with socket.create_connection(("127.0.0.1", port - 999), timeout=5) as s:
            kind, payload = read_control(s)
            assert kind == 1 and payload[0] & 1, (kind, payload)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
        subprocess.run(["rm", "-rf", d])


def _port_free(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the node's listener does
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


# ---- 2. Strangers, unknown ids, huge terms, announced sizes ----------------------


def identity_of(data_dir):
    """The 33 bytes node's identity travels as, from its DIR/identity."""
    fields = dict(line.split(" ", 1) for line in open(os.path.join(data_dir, "identity")).read().splitlines()[1:]
                  if not line.startswith("pin "))
    cluster = fields["cluster"]
    flags = (0 if cluster == "unknown" else 1) | (2 if fields["joined"] == "1" else 0)
    return (bytes(16) if cluster == "unknown" else bytes.fromhex(cluster)) + bytes.fromhex(fields["incarnation"]) + \
        bytes([flags])


def handshake(addr, frm, to, identity=bytes(33), timeout=5.0):
    """Connects to a raft address as node `frm` (presenting `identity`)
    without a secret. Returns (socket, kind of the answer, its payload):
    3 WELCOME or 4 REFUSE."""
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=timeout)
    kind, challenge = read_control(s)
    assert kind == 1, kind
    s.sendall(control(2, struct.pack("<QQ", frm, to) + os.urandom(32) + identity + bytes(32)))
    kind, payload = read_control(s)
    return s, kind, payload


def vote_frame(frm, to, term):
    # VOTE: term, last_index, last_term (u64) · transfer (flag)
    return raft_frame(3, struct.pack("<QQQQQ", frm, to, term, 1 << 40, 1 << 40) + b"\x00")


def net_dropped(c, i, reason):
    for line in c.get(i, "/metrics").body.decode().splitlines():
        if line.startswith('linkraft_net_dropped_total{reason="%s"}' % reason):
            return int(float(line.rsplit(" ", 1)[1]))
    raise KeyError(reason)


def test_unknown_ids_are_refused_and_counted(make_cluster):
    c = make_cluster(3)
    c.start_all()
    c.wait_leader()
    s, kind, payload = handshake(c.raft[1], 99, 1)
    with s:
        assert kind == 4 and payload[0] == 5, (kind, payload)  # REFUSE: unknown id
        assert closed_by_peer(s)
    assert net_dropped(c, 1, "unknown_id") == 1
    # A member's id passes (no secret on loopback: SPEC allows it only here).
    s, kind, _ = handshake(c.raft[1], 2, 1, identity_of(c.data_dir(2)))
    s.close()
    assert kind == 3


def test_a_term_at_or_above_2_63_is_dropped_even_from_a_member(make_cluster):
    c = make_cluster(3)
    c.start_all()
    leader = c.wait_leader()
    other = [i for i in (1, 2, 3) if i != leader][0]
    term_before = c.info(leader)["term"]
    for victim in (1, 2, 3):
        frm = 2 if victim != 2 else 3
        s, kind, _ = handshake(c.raft[victim], frm, victim, identity_of(c.data_dir(frm)))
        with s:
            assert kind == 3
            s.sendall(vote_frame(frm, victim, (1 << 64) - 2))
            assert closed_by_peer(s)
        wait_for("node %d to count the bad term" % victim, lambda: net_dropped(c, victim, "bad_term") == 1)
    # Nobody adopted it: the terms are what they were and the cluster elects
    # and writes as before.
    for i in (1, 2, 3):
        assert c.info(i)["term"] < 1000
    c.stop(leader)
    new_leader = c.wait_leader(exclude=(leader,))
    assert c.put(new_leader, "after", "1").status in (200, 201, 204)
    assert c.info(new_leader)["term"] < term_before + 100
    assert other in (1, 2, 3)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise KeyError("VmRSS")


def test_announced_frame_sizes_buy_no_memory(make_cluster):
    """Two member-id connections at once announce 64 MiB frames and stream
    16 MiB of body each: the node cuts them at the header (its frames are at
    most 8 MiB) and its memory stays where it was. (Before: each connection
    buffered its frame, +32 MiB of RSS while they were open.)"""
    c = make_cluster(3)
    c.start_all()
    c.wait_leader()
    pid = c.procs[1].pid
    before = rss_kib(pid)
    header = b"LRF1" + struct.pack("<II", 64 << 20, 0)
    junk = bytes(1 << 20)
    socks = []
    for frm in (2, 3):
        s, kind, _ = handshake(c.raft[1], frm, 1, identity_of(c.data_dir(frm)))
        assert kind == 3
        socks.append(s)
    for s in socks:
        s.sendall(header)
        try:
            for _ in range(16):
                s.sendall(junk)
        except (BrokenPipeError, ConnectionResetError):
            pass
    grown = rss_kib(pid) - before  # measured while the connections are open
    closed = [closed_by_peer(s, timeout=1.5) for s in socks]
    for s in socks:
        s.close()
    assert grown < 8 * 1024, (before, grown)
    assert closed == [True, True]
    assert net_dropped(c, 1, "malformed") >= 2
    c.wait_leader()


# ---- 3. Cluster id and lost data directories (issue 10, defect 4) -----------------


def test_a_member_whose_data_was_lost_does_not_come_back_as_a_voter(make_cluster):
    c = make_cluster(3)
    c.start_all()
    leader = c.wait_leader()
    assert c.put(leader, "kept", "1").status == 200
    victim = [i for i in (1, 2, 3) if i != leader][0]
    others = [i for i in (1, 2, 3) if i != victim]
    wait_for("node %d to have the write" % victim, lambda: c.kv(victim, "kept") == "1")
    c.kill(victim)
    shutil.rmtree(c.data_dir(victim))
    # Restarted on an empty directory without --join: it asks its peers,
    # they knew it with another directory, it leaves and says what to do.
    r = c.cli("node", "--cluster", c.cluster_file, "--id", str(victim), "--data", c.data_dir(victim), timeout=20)
    assert r.returncode == 1, (r.returncode, r.stderr)
    for words in ("another data directory", "member remove", "--join", "member add"):
        assert words in r.stderr, r.stderr
    # It never took a term nor voted: its hard state (written empty when the
    # directory is first opened) still says term 0, no vote.
    hs = os.path.join(c.data_dir(victim), "hardstate")
    if os.path.exists(hs):
        with open(hs, "rb") as fh:
            raw = fh.read()
        assert raw[:8] == b"LKRFTHRD", raw
        term, vote = struct.unpack_from("<QQ", raw, 16)
        assert (term, vote) == (0, 0), (term, vote)
    wait_for("a peer to count the refusal", lambda: sum(net_dropped(c, i, "replaced") for i in others) >= 1)
    # The cluster is fine and kept everything.
    leader = c.wait_leader(among=others)
    assert c.put(leader, "after", "2").status == 200
    for i in others:
        wait_for("node %d to have both writes" % i, lambda: c.kv(i, "kept") == "1" and c.kv(i, "after") == "2")
    # --join alone does not bring a voter's id back on a new directory: its
    # peers refuse it (and it gets none of the data) until it is removed.
    shutil.rmtree(c.data_dir(victim))
    refused = sum(net_dropped(c, i, "replaced") for i in others)
    c.start(victim, join=True)
    wait_for("the peers to refuse the --join node", lambda: sum(net_dropped(c, i, "replaced") for i in others)
             > refused)
    assert c.kv(victim, "kept") is None
    c.kill(victim)
    # The way back it names works: remove, start with --join, add.
    assert c.cli("member", "remove", "--cluster", c.cluster_file, "--id", str(victim)).returncode == 0
    shutil.rmtree(c.data_dir(victim))
    c.start(victim, join=True)
    r = c.cli("member", "add", "--cluster", c.cluster_file, "--id", str(victim))
    assert r.returncode == 0, r.stderr
    wait_for("node %d to catch up" % victim, lambda: c.kv(victim, "kept") == "1" and c.kv(victim, "after") == "2",
             timeout=20)


def test_a_node_of_another_cluster_is_refused(make_cluster):
    """Two clusters whose files name the same ids: a node of one dialled
    with the other's identity is refused and counted (the cluster id is in
    every handshake)."""
    a = make_cluster(3)
    a.start_all()
    a.wait_leader()
    b = make_cluster(1)
    b.start_all()
    b.wait_leader()
    s, kind, payload = handshake(a.raft[1], 2, 1, identity_of(b.data_dir(1)))
    with s:
        assert kind == 4 and payload[0] == 6, (kind, payload)
    assert net_dropped(a, 1, "other_cluster") == 1
    # and a member's own identity still passes
    s, kind, _ = handshake(a.raft[1], 2, 1, identity_of(a.data_dir(2)))
    s.close()
    assert kind == 3


# ---- 4. With a secret: strangers refused, frames sealed ---------------------------


def test_on_a_secret_cluster_a_stranger_is_refused_and_frames_are_sealed(make_cluster):
    c = make_cluster(3, secret="correct horse battery staple")
    c.start_all()
    leader = c.wait_leader()
    # A member's id and identity, but no secret: refused (REFUSE 3).
    s, kind, payload = handshake(c.raft[1], 2, 1, identity_of(c.data_dir(2)))
    with s:
        assert kind == 4 and payload[0] == 3, (kind, payload)
    assert net_dropped(c, 1, "unauthenticated") >= 1
    # Writes replicate over sealed links; nothing was counted as forged.
    assert c.put(leader, "sealed", "1").status == 200
    for i in (1, 2, 3):
        wait_for("node %d to have the write" % i, lambda: c.kv(i, "sealed") == "1")
        assert net_dropped(c, i, "forged") == 0
