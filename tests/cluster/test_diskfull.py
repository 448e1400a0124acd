"""A node whose disk fills up (a real tmpfs, filled for real): it stops
taking writes itself, keeps serving reads, the cluster goes on, and once
space returns the node resumes by itself with nothing lost."""
import os
import shutil
import subprocess

import pytest

from lrcluster import wait_for


def mount_tmpfs(path, size_mb):
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm" % size_mb, "tmpfs", path], capture_output=True)
    return r.returncode == 0


def fill(path):
    """Writes a file until the file system is full; returns its path."""
    filler = os.path.join(path, "filler")
    # Unbuffered: a buffered file keeps what did not fit and raises ENOSPC
    # again when it is closed.
    with open(filler, "wb", buffering=0) as f:
        try:
            while f.write(b"\0" * 65536):
                pass
        except OSError:
            pass
    return filler


def test_full_disk_refuses_writes_serves_reads_and_recovers(make_cluster):
    c = make_cluster(3)
    victim = 1
    if os.geteuid() != 0 or not mount_tmpfs(c.data_dir(victim), 24):
        pytest.skip("needs root to mount a small tmpfs")
    try:
        c.start_all()
        leader = c.wait_leader()
        for k in range(20):
            assert c.put(leader, "d%d" % k, str(k)).status == 200
        wait_for("node 1 has everything", lambda: c.kv(victim, "d19") == "19")
        filler = fill(c.data_dir(victim))
        # Writes go on through the others (and through node 1, which
        # forwards or refuses with 507, never a false success).
        acked = []
        for k in range(50):
            target = c.wait_leader()
            try:
                r = c.put(target, "e%d" % k, str(k), timeout=10)
                if r.status == 200:
                    acked.append(k)
            except OSError:
                pass  # outcome unknown; only acknowledged writes are checked
            if k % 10 == 0:
                r1 = c.put(victim, "v%d" % k, "x", timeout=10)
                assert r1.status in (200, 503, 507), r1.status
        assert acked, "the cluster stopped taking writes"
        wait_for("node 1 reports the full disk",
                 lambda: c.metric(victim, "linkraft_storage_disk_full") == 1, timeout=15)
        assert c.kv(victim, "d0") == "0"  # reads still served
        assert c.alive(victim)
        os.unlink(filler)  # space returns
        wait_for("node 1 resumes", lambda: c.metric(victim, "linkraft_storage_disk_full") == 0, timeout=15)
        last = acked[-1]
        wait_for("node 1 catches up", lambda: c.kv(victim, "e%d" % last) == str(last), timeout=20)
        for k in acked:
            assert c.kv(victim, "e%d" % k) == str(k)
        # And it survives a restart with what it wrote after the full disk.
        c.kill(victim)
        c.start(victim)
        wait_for("node 1 back", lambda: c.kv(victim, "e%d" % last) == str(last), timeout=20)
    finally:
        for p in c.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        subprocess.run(["umount", "-l", c.data_dir(victim)], capture_output=True)


def fill_to_the_last_byte(path):
    """Fills the file system to the last byte (fill() stops short by up to
    a write); returns the filler's path."""
    filler = os.path.join(path, "filler-last")
    with open(filler, "wb", buffering=0) as f:
        for size in (1 << 20, 4096, 1):
            try:
                while f.write(b"\0" * size):
                    pass
            except OSError:
                pass
    return filler


def pins(data_dir):
    """{member id: incarnation (hex)} as DIR/identity pins them."""
    out = {}
    for line in open(os.path.join(data_dir, "identity")).read().splitlines():
        if line.startswith("pin "):
            _, i, inc = line.split()
            out[int(i)] = inc
    return out


def incarnation(data_dir):
    for line in open(os.path.join(data_dir, "identity")).read().splitlines():
        if line.startswith("incarnation "):
            return line.split()[1]
    raise KeyError("incarnation")


def test_a_node_with_a_full_disk_takes_back_a_re_added_node(make_cluster):
    """Found by the chaos suite (seed 77): node 4 was removed, its directory
    wiped, and it was started with --join to be added back, while the
    leader's disk was full. The leader could not record node 4's new data
    directory (its pin) in DIR/identity, so it refused every handshake from
    node 4: node 4 followed no leader and was never promoted."""
    c = make_cluster(3, extra=1)
    victim = 1
    if os.geteuid() != 0 or not mount_tmpfs(c.data_dir(victim), 24):
        pytest.skip("needs root to mount a small tmpfs")
    try:
        c.start_all()
        leader = c.wait_leader()
        if leader != victim:
            r = c.cli("transfer-leader", "--cluster", c.cluster_file, "--to", str(victim))
            assert r.returncode == 0, r.stderr
            wait_for("node 1 to lead", lambda: c.leader() == victim)
        c.write_cluster_file(range(1, 5))  # node 4's addresses, for member add
        # Node 4 added, then lost: removed, its directory wiped.
        c.start(4, join=True)
        assert c.cli("member", "add", "--cluster", c.cluster_file, "--id", "4").returncode == 0
        wait_for("node 1 to pin node 4", lambda: pins(c.data_dir(victim)).get(4) == incarnation(c.data_dir(4)))
        c.kill(4)
        r = c.cli("member", "remove", "--cluster", c.cluster_file, "--id", "4")
        assert r.returncode == 0, r.stderr
        shutil.rmtree(c.data_dir(4))
        filler = fill_to_the_last_byte(c.data_dir(victim))
        # Started again with --join on a new directory, with node 1's disk
        # full: node 1 must still take its handshake (and pin it).
        c.start(4, join=True)
        wait_for("node 1 to pin node 4's new directory",
                 lambda: pins(c.data_dir(victim)).get(4) == incarnation(c.data_dir(4)), timeout=10)
        # Space back before the add: a leader that has met its full disk
        # (its state machine's commit failed) takes no write until then.
        os.unlink(filler)
        c.wait_leader(timeout=10)
        r = c.cli("member", "add", "--cluster", c.cluster_file, "--id", "4")
        assert r.returncode == 0, r.stderr
        wait_for("node 4 a voter", lambda: any(m["id"] == 4 and m["voter"]
                                               for m in c.info(c.wait_leader())["members"]), timeout=20)
    finally:
        for p in c.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        subprocess.run(["umount", "-l", c.data_dir(victim)], capture_output=True)
