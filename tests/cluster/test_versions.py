"""Versions (docs/operations.md "Upgrade"): every file a node keeps and the
peer handshake carry a format version, and a node given a newer one than
it reads refuses with a message naming the file or the peer and both
versions — changing nothing in the directory, answering a peer with
REFUSE 4 and a log line, and going on serving. `linkraft restore` refuses
a backup file of a newer format and creates nothing. (The database's
schema version: `a_newer_schema_is_refused` in tests/unit/test_store.c.)"""
import os
import socket
import struct
import subprocess

import pytest

import lrcluster
from lrcluster import wait_for
from test_durability import dir_hashes

_TABLE = []
for _n in range(256):
    _c = _n
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _TABLE.append(_c)


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283


def bump_binary(path, crc_at):
    """Version (u32 at byte 8) + 1, the header's CRC32C (of bytes 0..crc_at-1, at crc_at) made valid again."""
    with open(path, "r+b") as f:
        head = bytearray(f.read(crc_at + 4))
        version = struct.unpack_from("<I", head, 8)[0]
        struct.pack_into("<I", head, 8, version + 1)
        struct.pack_into("<I", head, crc_at, crc32c(bytes(head[:crc_at])))
        f.seek(0)
        f.write(head)
    return version + 1


def bump_segment(d):
    seg = sorted(n for n in os.listdir(d) if n.startswith("log-"))[0]
    return seg, bump_binary(os.path.join(d, seg), 36)


def bump_hardstate(d):
    return "hardstate", bump_binary(os.path.join(d, "hardstate"), 36)


def bump_snapshot_meta(d):
    path = os.path.join(d, "snapshot.meta")
    clen = struct.unpack_from("<I", open(path, "rb").read(), 12)[0]
    return "snapshot.meta", bump_binary(path, 48 + clen)


def bump_identity(d):
    path = os.path.join(d, "identity")
    text = open(path).read()
    assert text.startswith("linkraft-identity 1\n")
    with open(path, "w") as f:
        f.write(text.replace("linkraft-identity 1\n", "linkraft-identity 2\n", 1))
    return "identity", 2


@pytest.mark.parametrize("bump", [bump_segment, bump_hardstate, bump_snapshot_meta, bump_identity])
def test_a_newer_file_format_is_refused_and_changes_nothing(make_cluster, bump):
    c = make_cluster(n=1, node_args=["--snapshot-entries", "100", "--trailing-entries", "50",
                                     "--segment-bytes", "4096"])
    c.start(1)
    c.wait_leader()
    d = c.data_dir(1)
    for k in range(300):
        assert c.put(1, "k%d" % k, "v%d" % k).status in (200, 201, 204)
    wait_for("a snapshot", lambda: "snapshot.meta" in os.listdir(d))
    assert c.stop(1) == 0
    name, version = bump(d)
    before = dir_hashes(d)
    cmd = [lrcluster.BINARY, "node", "--cluster", c.cluster_file, "--id", "1", "--data", d] + c.node_args
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, r.stderr
    assert name in r.stderr and "version %d" % version in r.stderr and "reads version 1" in r.stderr, r.stderr
    assert dir_hashes(d) == before


def test_a_newer_backup_file_is_refused(make_cluster):
    c = make_cluster(3)
    c.start_all()
    c.wait_leader()
    out = os.path.join(c.dir, "site.backup")
    p = c.cli("backup", "--cluster", c.cluster_file, "--out", out)  # no secret: loopback only
    assert p.returncode == 0, p.stderr
    bump_binary(out, 76)
    target = os.path.join(c.dir, "restored")
    r = c.cli("restore", "--from", out, "--data", target, "--cluster", c.cluster_file, "--id", "1")
    assert r.returncode == 1, r.stdout
    assert "site.backup" in r.stderr and "format version 2" in r.stderr and "reads version 1" in r.stderr, r.stderr
    assert not os.path.exists(target)


def frame(kind, version, payload):
    return b"LRN1" + bytes([kind, version]) + struct.pack("<H", len(payload)) + payload


def test_a_peer_speaking_a_newer_protocol_is_refused_with_a_log_line(make_cluster):
    c = make_cluster(3)
    for i in (1, 2):
        c.start(i)
    c.wait_leader()
    # As a dialer: a HELLO of handshake version 3 to node 1.
    host, port = c.raft[1].rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=5)
    challenge = b""
    while len(challenge) < 8 + 66:
        challenge += s.recv(100)
    assert challenge[:6] == b"LRN1\x01\x02", challenge[:6]
    s.sendall(frame(2, 3, struct.pack("<QQ", 3, 1) + bytes(32) + bytes(33) + bytes(32)))
    answer = b""
    while True:
        got = s.recv(100)
        if not got:
            break
        answer += got
    s.close()
    assert answer == frame(4, 2, b"\x04"), answer  # REFUSE 4 (version), then closed
    log1 = os.path.join(c.dir, "node1.log")
    wait_for("node 1 to log the refusal", lambda: b"speaks peer protocol (handshake) version 3, this node "
             b"speaks version 2" in open(log1, "rb").read())
    # As an acceptor: node 3's address answers with a CHALLENGE of version 3.
    host, port = c.raft[3].rsplit(":", 1)
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, int(port)))
    ls.listen(4)
    ls.settimeout(10)
    conn, _ = ls.accept()
    conn.sendall(frame(1, 3, bytes(66)))
    wait_for("node 1 or 2 to log node 3's version", lambda: any(
        b"node 3 at %s speaks peer protocol (handshake) version 3" % c.raft[3].encode()
        in open(os.path.join(c.dir, "node%d.log" % i), "rb").read() for i in (1, 2)))
    conn.close()
    ls.close()
    # Nothing else changed: the two go on.
    leader = c.wait_leader()
    assert c.put(leader, "after", "1").status in (200, 201, 204)
