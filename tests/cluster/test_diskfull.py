"""A node whose disk fills up (a real tmpfs, filled for real): it stops
taking writes itself, keeps serving reads, the cluster goes on, and once
space returns the node resumes by itself with nothing lost."""
import os
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
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
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
