"""Durable state around the Raft log (issue 17, SPEC §3): faults injected
into real node processes with strace, and damaged copies of a stopped
node's data directory. A failed fsync of anything the node relies on stops
it; a damaged directory is refused with nothing changed."""
import os
import shutil
import subprocess

import pytest

from lrcluster import wait_for

STRACE = shutil.which("strace")


def strace_works():
    if not STRACE:
        return False
    r = subprocess.run([STRACE, "-qq", "-o", "/dev/null", "-e", "inject=fdatasync:error=EIO", "true"],
                       capture_output=True)
    return r.returncode == 0


needs_strace = pytest.mark.skipif(not strace_works(), reason="strace with fault injection is not usable here")


def inject_eio(paths, calls="fdatasync,fsync"):
    """A prefix that runs the node under strace, failing every fdatasync and
    fsync of the files in paths with EIO (other files are untouched)."""
    cmd = [STRACE, "-f", "-qq", "-o", "/dev/null", "-e", "trace=" + calls]
    for p in paths:
        cmd += ["-P", p]
    return cmd + ["-e", "inject=%s:error=EIO" % calls]


@needs_strace
@pytest.mark.parametrize("files", [("state.db",), ("state.db", "state.db-wal")])
def test_failed_fsync_of_the_database_stops_the_node(make_cluster, files):
    """fsyncgate: SQLite's automatic checkpoints ignored a failed fsync of
    state.db (and of state.db-wal once the WAL existed), and the node
    acknowledged writes for ever. Now the node checkpoints itself, checks
    the result, and exits 1."""
    c = make_cluster(n=1)
    c.start(1)
    c.wait_leader()
    assert c.put(1, "before", "v").status in (200, 201, 204)
    assert c.stop(1) == 0
    d = c.data_dir(1)
    c.start(1, prefix=inject_eio([os.path.join(d, f) for f in files]))
    c.wait_leader()
    acked = []
    value = "x" * 300
    for k in range(12000):  # several checkpoints' worth of WAL
        try:
            r = c.put(1, "k%d" % k, value)
        except OSError:
            break
        if r.status not in (200, 201, 204):
            break
        acked.append("k%d" % k)
    code = c.procs[1].wait(timeout=30)
    assert code == 1, "the node did not stop on a failed database fsync (exit %s, %d writes acked)" % (
        code, len(acked))
    assert "FATAL" in c.log_tail(1, 5) and "database" in c.log_tail(1, 5)
    # Nothing acknowledged is lost: the log replays what the database missed.
    c.start(1)
    c.wait_leader()
    for k in acked[:: max(1, len(acked) // 50)] + acked[-3:] + ["before"]:
        assert c.kv(1, k, "linearizable") is not None, "acknowledged key %s lost" % k
