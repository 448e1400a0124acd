"""The fault matrix of issue 17 (docs/disk-format.md, "Fault matrix"): one
fault in one file of a stopped follower's data directory, then a restart
next to its two healthy peers. Each case asserts one of three outcomes:

  refused      exit 1, a message naming the file, the directory unchanged;
  repaired     the node says what it did (locally from its snapshot and
               log, or from its peers) and then serves exactly the
               cluster's data;
  passed       nothing to repair: it starts and serves exactly the data.

Faults while running (a damaged page read, damage found by a snapshot's
copy, a failed fsync) are in test_durability.py."""
import os
import shutil
import subprocess

import pytest

import lrcluster
from lrcluster import Cluster, wait_for

SMALL = ["--snapshot-entries", "200", "--trailing-entries", "300", "--segment-bytes", "4096"]
KEYS = 600
F = 3  # the damaged node


def u64_at(path, off):
    with open(path, "rb") as f:
        f.seek(off)
        return int.from_bytes(f.read(8), "little")


def segments_fit_the_cases(d):
    """Whether the first segment lies wholly below the snapshot (its loss
    loses nothing) and the last segment but one holds entries above it (its
    loss does). Where the snapshot falls is timing (each node draws its
    snapshot gap at random, and a node that fell behind installs the
    leader's snapshot, which leaves no trailing entries), so the template
    is written on until both hold."""
    names = sorted(os.listdir(d))
    segs = [n for n in names if n.startswith("log-")]
    if len(segs) < 3 or "snapshot.meta" not in names:
        return False
    snap_index = u64_at(os.path.join(d, "snapshot.meta"), 16)
    firsts = [u64_at(os.path.join(d, n), 24) for n in segs]  # each header's first index
    return firsts[1] <= snap_index + 1 and firsts[-1] > snap_index + 1


def dir_hashes(d):
    import hashlib
    out = {}
    for name in sorted(os.listdir(d)):
        if name in ("lock", "state.db-shm"):
            continue
        with open(os.path.join(d, name), "rb") as f:
            out[name] = hashlib.sha256(f.read()).hexdigest()
    return out


@pytest.fixture(scope="module")
def matrix():
    """A stopped 3-node cluster with snapshots and compacted logs, kept as a
    template each case starts from."""
    c = Cluster(n=3, node_args=SMALL)
    try:
        c.start_all()
        lead = c.wait_leader()
        for k in range(KEYS):
            assert c.put(lead, "k%d" % k, "v%d" % k).status in (200, 201, 204)
        for i in (1, 2, 3):
            d = c.data_dir(i)
            wait_for("node %d to apply everything" % i, lambda: c.kv(i, "k%d" % (KEYS - 1)) == "v%d" % (KEYS - 1))
            wait_for("a snapshot on node %d" % i, lambda: any(n.endswith(".dat") for n in os.listdir(d)))
        for i in (1, 2, 3):
            assert c.stop(i) == 0
        # Write on until the damaged node's segments fit the cases (bounded:
        # a snapshot comes every 150-250 entries, a 4 KiB segment holds
        # about 60).
        pad = 0
        while not segments_fit_the_cases(c.data_dir(F)):
            assert pad < 2000, os.listdir(c.data_dir(F))
            c.start_all()
            lead = c.wait_leader()
            for _ in range(40):
                assert c.put(lead, "pad%d" % pad, "p").status in (200, 201, 204)
                pad += 1
            last = "pad%d" % (pad - 1)
            for i in (1, 2, 3):
                wait_for("node %d to apply the padding" % i, lambda: c.kv(i, last) == "p")
            for i in (1, 2, 3):
                assert c.stop(i) == 0
        tpl = os.path.join(c.dir, "template")
        for i in (1, 2, 3):
            shutil.copytree(c.data_dir(i), os.path.join(tpl, "node%d" % i))
        c.template = tpl
        yield c
    finally:
        c.close()


def reset(c):
    for i in list(c.running()):
        c.stop(i)
    for i in (1, 2, 3):
        shutil.rmtree(c.data_dir(i))
        shutil.copytree(os.path.join(c.template, "node%d" % i), c.data_dir(i))
    open(os.path.join(c.dir, "node%d.log" % F), "w").close()


def path_of(d, which):
    names = sorted(os.listdir(d))
    if which == "snapshot data":
        return os.path.join(d, [n for n in names if n.endswith(".dat")][0])
    if which == "last segment":
        return os.path.join(d, [n for n in names if n.startswith("log-")][-1])
    if which == "first segment":
        return os.path.join(d, [n for n in names if n.startswith("log-")][0])
    if which == "last segment but one":
        return os.path.join(d, [n for n in names if n.startswith("log-")][-2])
    return os.path.join(d, which)


def flip_at(frac, extra=0):
    def damage(p):
        off = int(os.path.getsize(p) * frac) + extra
        with open(p, "r+b") as f:
            f.seek(off)
            b = f.read(1)
            f.seek(off)
            f.write(bytes([b[0] ^ 0x10]))
    damage.label = "byte flipped at %s" % ("offset %d" % extra if frac == 0 else "%d%% of the file" % (frac * 100))
    return damage


def delete(p):
    os.unlink(p)


delete.label = "deleted"


def truncate_half(p):
    with open(p, "r+b") as f:
        f.truncate(os.path.getsize(p) // 2)


truncate_half.label = "cut to half its size"


def last_byte(p):
    with open(p, "r+b") as f:
        f.seek(-3, os.SEEK_END)
        b = f.read(1)
        f.seek(-3, os.SEEK_END)
        f.write(bytes([b[0] ^ 0x10]))


last_byte.label = "byte flipped in the last record"

# file, fault, expected outcome, what the node's log or refusal says
CASES = [
    ("state.db", flip_at(0, 100), "repaired locally", "rebuilding it from the snapshot and the log"),
    ("state.db", flip_at(0.5, 17), "repaired locally", "rebuilding it from the snapshot and the log"),
    ("state.db", flip_at(0.97), "repaired locally", "rebuilding it from the snapshot and the log"),
    ("state.db", truncate_half, "repaired locally", "rebuilding it from the snapshot and the log"),
    ("state.db", delete, "repaired locally", "recovered"),
    ("snapshot data", flip_at(0.3), "repaired from peers", "repaired from peers"),
    ("snapshot data", delete, "repaired from peers", "repaired from peers"),
    ("snapshot data", truncate_half, "repaired from peers", "repaired from peers"),
    ("snapshot.meta", flip_at(0.5), "refused", "snapshot.meta"),
    ("snapshot.meta", delete, "refused", "must start at 1"),
    ("hardstate", flip_at(0.5), "refused", "hardstate"),
    ("hardstate", delete, "refused", "hard state file"),
    ("first segment", flip_at(0.5), "refused", "damaged"),
    # Below the snapshot (trailing entries only): not needed, removed at start.
    ("first segment", delete, "passed", "recovered"),
    # Where the snapshot falls among the segments (timing) decides which
    # check sees the loss first: a gap in the log, or a log that ends below
    # the snapshot although no install was interrupted.
    ("last segment but one", delete, "refused", ("gap", "are missing")),
    # The database applied entries the log no longer has: this node may
    # have acknowledged them, so it cannot go on as a voter.
    ("last segment", last_byte, "refused", "does not fit the database"),
    ("last segment", delete, "refused", ("does not fit the database", "were synced are missing")),
    ("state.db-wal", delete, "passed", "recovered"),
    # Nothing else says which cluster and incarnation this is: the peers
    # pinned the old incarnation, so a new one would never be let back in.
    ("identity", delete, "refused", "identity is missing"),
]


@pytest.mark.parametrize("which, damage, outcome, says", CASES,
                         ids=["%s: %s" % (c.values[0], c.values[1].label) if hasattr(c, "values") else
                              "%s: %s" % (c[0], c[1].label) for c in CASES])
def test_fault_matrix(matrix, which, damage, outcome, says):
    c = matrix
    reset(c)
    d = c.data_dir(F)
    p = path_of(d, which)
    if os.path.exists(p):
        damage(p)
    elif damage is not delete:
        pytest.skip("%s does not exist here" % which)
    c.start(1)
    c.start(2)
    lead = c.wait_leader(timeout=20)
    if outcome == "refused":
        before = dir_hashes(d)
        cmd = [lrcluster.BINARY, "node", "--cluster", c.cluster_file, "--id", str(F), "--data", d] + c.node_args
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        assert r.returncode == 1, r.stderr
        assert any(w in r.stderr for w in ((says,) if isinstance(says, str) else says)), r.stderr
        assert dir_hashes(d) == before
        return
    c.start(F)
    extra = 0
    if outcome == "repaired from peers":
        while "repaired from peers" not in c.log_tail(F, 400):
            assert c.put(lead, "x%d" % extra, "y").status in (200, 201, 204)
            extra += 1
            assert extra < 1500, c.log_tail(F)
    log = c.log_tail(F, 400)
    assert says in log, log
    if outcome == "passed":
        assert "rebuilding" not in log and "repairing" not in log, log
    marker = "after-%s" % which.replace(" ", "-")
    assert c.put(lead, marker, "1").status in (200, 201, 204)
    wait_for("node %d to catch up" % F, lambda: c.kv(F, marker) == "1")
    wrong = [k for k in range(KEYS) if c.kv(F, "k%d" % k) != "v%d" % k]
    assert not wrong, "served wrong after %s %s: %s" % (which, damage.label, wrong[:10])
    assert all(c.kv(F, "x%d" % k) == "y" for k in range(extra))
