"""Durable state around the Raft log (issue 17, SPEC §3): faults injected
into real node processes with strace, and damaged copies of a stopped
node's data directory. A failed fsync of anything the node relies on stops
it; a damaged directory is refused with nothing changed."""
import hashlib
import http.client
import json
import os
import shutil
import sqlite3
import subprocess

import pytest

import lrcluster
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


def dir_hashes(d):
    """sha256 of every file in d, except the lock file and SQLite's -shm
    (an index SQLite rebuilds from the WAL at every open, not data)."""
    out = {}
    for name in sorted(os.listdir(d)):
        if name in ("lock", "state.db-shm"):
            continue
        with open(os.path.join(d, name), "rb") as f:
            out[name] = hashlib.sha256(f.read()).hexdigest()
    return out


def start_refused(c, i):
    """Runs node i expecting it to refuse to start: its exit code and log."""
    cmd = [lrcluster.BINARY, "node", "--cluster", c.cluster_file, "--id", str(i), "--data", c.data_dir(i)]
    r = subprocess.run(cmd + c.node_args, capture_output=True, text=True, timeout=30)
    return r.returncode, r.stderr


SMALL = ["--snapshot-entries", "200", "--trailing-entries", "300", "--segment-bytes", "4096"]


def snapshotted_node(make_cluster):
    """A stopped one-node cluster whose log rolled over several segments,
    took snapshots and compacted (small segments and snapshot interval)."""
    c = make_cluster(n=1, node_args=SMALL)
    c.start(1)
    c.wait_leader()
    d = c.data_dir(1)
    for k in range(900):
        assert c.put(1, "k%d" % k, "v%d" % k).status in (200, 201, 204)
    wait_for("a snapshot and a compacted log", lambda: any(n.startswith("snap-") for n in os.listdir(d)) and
             "log-00000000000000000001.seg" not in os.listdir(d))
    assert c.stop(1) == 0
    segs = sorted(n for n in os.listdir(d) if n.startswith("log-"))
    assert len(segs) >= 2, segs
    return c, d, segs


def test_rollover_compaction_and_restart(make_cluster):
    c, d, segs = snapshotted_node(make_cluster)
    c.start(1)
    c.wait_leader()
    assert c.kv(1, "k0", "linearizable") == "v0"
    assert c.kv(1, "k899", "linearizable") == "v899"


def remove_newest_segments(d, segs):
    for n in segs[1:]:
        os.unlink(os.path.join(d, n))


def cut_last_segment_mid_record(d, segs):
    """What storage alone would take for a torn tail (and cut), while the
    database has applied entries beyond it."""
    path = os.path.join(d, segs[-1])
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 2 + 3)


def remove_file(name):
    return lambda d, segs: os.unlink(os.path.join(d, name))


@pytest.mark.parametrize("damage, says", [
    (remove_newest_segments, "that were synced are missing"),
    (remove_file("snapshot.meta"), "must start at 1"),
    (remove_file("hardstate"), "hard state file"),
    (cut_last_segment_mid_record, "does not fit the database"),
])
def test_a_refused_start_changes_nothing(make_cluster, damage, says):
    """Each damaged copy is refused, naming the problem, and every file is
    byte for byte as it was (before: segments deleted, a new empty one made,
    the snapshot's data removed, the term raised — then the refusal)."""
    c, d, segs = snapshotted_node(make_cluster)
    damage(d, segs)
    with open(os.path.join(d, "hardstate.tmp"), "wb") as f:  # a leftover open would clean up
        f.write(b"junk")
    before = dir_hashes(d)
    code, log = start_refused(c, 1)
    assert code == 1, log
    assert says in log, log
    assert dir_hashes(d) == before


def test_data_directory_and_files_are_private(make_cluster):
    """SPEC §3: 0700 / 0600, whatever the umask the node was started with
    (the test's is usually 022), for every file: log, hard state, snapshot,
    the database and SQLite's -wal and -shm."""
    c, d, segs = snapshotted_node(make_cluster)
    c.start(1)  # again, so that -wal and -shm exist while it runs
    c.wait_leader()
    assert os.stat(d).st_mode & 0o777 == 0o700
    names = os.listdir(d)
    assert any(n.startswith("snap-") for n in names) and "state.db-wal" in names, names
    for n in names:
        try:
            mode = os.stat(os.path.join(d, n)).st_mode & 0o777
        except FileNotFoundError:
            continue  # a *.tmp renamed into place since the listing: its new name is checked
        assert mode == 0o600, "%s has mode %o" % (n, mode)


@pytest.mark.parametrize("where", ["page1", "page4", "middle", "end"])
def test_a_flipped_byte_in_the_database_is_detected_and_repaired(make_cluster, where):
    """Issue 17 finding 3: one flipped byte in state.db was refused, served
    while malformed, or silently changed a value or dropped index entries.
    Now every page carries a checksum and the start checks the database:
    a damaged one is moved aside and rebuilt from the snapshot and the log,
    and the node serves exactly what was written."""
    c, d, segs = snapshotted_node(make_cluster)
    path = os.path.join(d, "state.db")
    size = os.path.getsize(path)
    off = {"page1": 100, "page4": 3 * 4096 + 200, "middle": size // 2 + 17, "end": size - 300}[where]
    with open(path, "r+b") as f:
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ 0x10]))
    c.start(1)
    c.wait_leader()
    assert "rebuilding it from the snapshot and the log" in c.log_tail(1, 30)
    assert os.path.exists(path + ".damaged")
    wrong = [k for k in range(900) if c.kv(1, "k%d" % k, "linearizable") != "v%d" % k]
    assert not wrong, "keys served wrong after the repair: %s" % wrong[:10]


def test_a_damaged_page_read_while_serving_is_repaired(make_cluster):
    """A page damaged under a running node (here: a byte flipped in the file
    while it serves) is never served: the read that meets it gets an error,
    later reads get 503 until the node has restarted itself in the same
    process (before: it exited 1 and waited for a person), and that start
    rebuilds the database from the snapshot and the log."""
    c = make_cluster(n=1)
    c.start(1)
    c.wait_leader()
    value = "x" * 400
    keys = ["k%d" % k for k in range(6000)]  # a database larger than SQLite's 2 MB page cache
    for k in keys:
        assert c.put(1, k, value).status in (200, 201, 204)
    assert c.stop(1) == 0
    c.start(1)
    c.wait_leader()
    pid = c.procs[1].pid
    path = os.path.join(c.data_dir(1), "state.db")
    size = os.path.getsize(path)
    assert size > 2500000
    for off in (size // 3 + 1001, size // 2 + 2001):  # two leaf pages of the data
        flip(path, off, 0x20)
    wrong, refused = [], 0
    for k in keys:
        try:
            r = c.get(1, "/api/v1/kv/" + k)
        except (OSError, http.client.HTTPException):
            refused += 1  # restarting
            break
        if r.status == 200 and r.body.decode() != value:
            wrong.append(k)
        if r.status == 503:
            assert json.loads(r.body)["error"] == "repairing", r.body
            refused += 1
        if "restarts now" in c.log_tail(1, 20):
            break
    assert not wrong, "damaged values served: %s" % wrong[:5]
    assert refused, "the damaged pages were never read"
    wait_for("the node to restart itself", lambda: "rebuilding it from the snapshot and the log" in c.log_tail(1, 30))
    log = c.log_tail(1, 30)
    assert "a damaged page of the database was read" in log and "restarts now" in log, log
    assert c.procs[1].poll() is None and c.procs[1].pid == pid
    c.wait_leader()
    wait_for("node 1 to serve again", lambda: c.kv(1, keys[0], "linearizable") == value)
    assert all(c.kv(1, k, "linearizable") == value for k in keys[::97] + keys[-3:])

def flip(path, off, mask=0x10):
    with open(path, "r+b") as f:
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ mask]))


def snapshot_data(d):
    names = [n for n in os.listdir(d) if n.startswith("snap-") and n.endswith(".dat")]
    assert len(names) == 1, names
    return os.path.join(d, names[0])


@pytest.mark.parametrize("snapshot", ["flipped", "missing"])
def test_database_and_snapshot_both_damaged_are_repaired_from_peers(make_cluster, snapshot):
    """Issue 17: with the database damaged and the snapshot's data damaged
    or missing too, nothing on the node can rebuild its state (before: it
    refused to start, "snapshot data file ... is damaged"). It keeps its hard
    state and its log, answers reads 503 meanwhile and never stands for
    election (it still votes), asks the leader for a snapshot, installs it,
    and then serves exactly the cluster's data."""
    c = make_cluster(n=3, node_args=SMALL)
    c.start_all()
    lead = c.wait_leader()
    keys = {}
    for k in range(900):
        keys["k%d" % k] = "v%d" % k
        assert c.put(lead, "k%d" % k, "v%d" % k).status in (200, 201, 204)
    f = 3 if lead != 3 else 2
    g = 6 - lead - f
    d = c.data_dir(f)
    wait_for("a snapshot on node %d" % f, lambda: any(n.endswith(".dat") for n in os.listdir(d)))
    wait_for("node %d to apply everything" % f, lambda: c.kv(f, "k899") == "v899")
    for i in (1, 2, 3):
        assert c.stop(i) == 0
    db = os.path.join(d, "state.db")
    flip(db, os.path.getsize(db) // 2 + 17)
    snap = snapshot_data(d)
    if snapshot == "missing":
        os.unlink(snap)
    else:
        flip(snap, os.path.getsize(snap) // 3)
    # Alone, it can get no snapshot: it says so, and serves nothing.
    c.start(f)
    wait_for("node %d to say it repairs from peers" % f, lambda: "repairing from peers" in c.log_tail(f, 50))
    r = c.get(f, "/api/v1/kv/k0")
    assert r.status == 503 and b"repaired" in r.body, (r.status, r.body)
    # With one peer back, the peer leads (node f votes, never campaigns);
    # once the peer has a snapshot at or after node f's own, f installs it.
    c.start(g)
    assert c.wait_leader(timeout=20) == g
    k = 900
    while "repaired from peers" not in c.log_tail(f, 400):
        keys["k%d" % k] = "v%d" % k
        assert c.put(g, "k%d" % k, "v%d" % k).status in (200, 201, 204)
        r = c.get(f, "/api/v1/kv/k0")
        assert r.status == 503 or (r.status == 200 and r.body == b"v0"), (r.status, r.body)
        assert c.leader() == g
        k += 1
        assert k < 3000, "not repaired from peers after %d more writes; log:\n%s" % (k - 900, c.log_tail(f))
    log = c.log_tail(f, 400)
    assert "installed the leader's snapshot" in log, log
    assert os.path.exists(db + ".damaged")
    wait_for("node %d to catch up" % f, lambda: c.kv(f, "k%d" % (k - 1)) == "v%d" % (k - 1))
    wrong = [key for key, v in keys.items() if c.kv(f, key) != v]
    assert not wrong, "keys served wrong after the repair: %s" % wrong[:10]
    # A full voter again: with g stopped and the third node back, one of
    # them is elected and every write made meanwhile is there.
    c.start(lead)
    assert c.stop(g) == 0
    new = c.wait_leader(timeout=20)
    assert c.put(new, "after", "yes").status in (200, 201, 204)
    assert c.kv(new, "k%d" % (k - 1), "linearizable") == "v%d" % (k - 1)


def test_damage_found_by_the_snapshot_copy_is_repaired_not_shipped(make_cluster):
    """Before each snapshot the database is verified: the copy reads every
    page through its checksum and checks the copy's structure. A page
    damaged under a running node (one it has cached, so its own reads do
    not see it) stops the snapshot from being kept or shipped, and the node
    restarts itself in the same process and rebuilds the database (before:
    it exited 1 and waited for a person)."""
    c = make_cluster(n=1, node_args=SMALL)
    c.start(1)
    c.wait_leader()
    for k in range(300):
        assert c.put(1, "k%d" % k, "v%d" % k).status in (200, 201, 204)
    assert c.stop(1) == 0  # a clean stop empties the WAL into the file
    path = os.path.join(c.data_dir(1), "state.db")
    # The users table's root page: key-value writes never read it (so the
    # node's own queries do not meet the damage first); a snapshot's copy
    # reads every page.
    db = sqlite3.connect("file:%s?immutable=1" % path, uri=True)
    root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'users'").fetchone()[0]
    db.close()
    c.start(1)
    c.wait_leader()
    pid = c.procs[1].pid
    flip(path, (root - 1) * 4096 + 1000)
    k = 300
    while "it is not copied into a snapshot" not in c.log_tail(1, 50):
        try:
            c.put(1, "k%d" % k, "v%d" % k)
        except (OSError, http.client.HTTPException):
            pass  # restarting
        k += 1
        assert k < 2000, "no snapshot found the damage; log:\n%s" % c.log_tail(1)
    wait_for("the node to restart itself", lambda: "rebuilding it from the snapshot and the log" in c.log_tail(1, 30))
    assert c.procs[1].poll() is None and c.procs[1].pid == pid
    c.wait_leader()
    # Every key written before the damage, and every later one the node has.
    wait_for("node 1 to serve again", lambda: c.kv(1, "k0", "linearizable") == "v0")
    wrong = [i for i in range(k) if c.kv(1, "k%d" % i) not in ("v%d" % i, None) or
             (i < 300 and c.kv(1, "k%d" % i) is None)]
    assert not wrong, wrong[:10]


def test_a_lone_voter_without_its_snapshot_data_is_refused(make_cluster):
    """A one-node cluster has nobody to repair from: a missing snapshot data
    file is refused as before, naming what to do, with nothing changed."""
    c, d, segs = snapshotted_node(make_cluster)
    os.unlink(snapshot_data(d))
    before = dir_hashes(d)
    code, log = start_refused(c, 1)
    assert code == 1, log
    assert "only voter" in log and "is missing" in log, log
    assert dir_hashes(d) == before


def test_a_lost_tail_marker_counts_from_its_own_term(make_cluster):
    """DIR/lost-tail keeps the term of the start that cut the log's last
    record. A node killed after it was whole again but before it removed
    the marker, or restarted still marked in a later term, counted from the
    term it restarted in: it neither voted nor stood for election until a
    leader it could not help elect committed a later term. With another
    voter of three down, no leader ever (the simulator, seeds 104095 and
    111707). Its log holds entries of a later term than the marker's: it
    is whole at once, and votes."""
    c = make_cluster(n=3)
    c.start_all()
    leader = c.wait_leader()
    for k in range(20):
        assert c.put(leader, "k%d" % k, "v%d" % k).status in (200, 201, 204)
    wait_for("node 3 to apply them", lambda: c.kv(3, "k19") == "v19")
    term = c.info(leader)["term"]
    assert term >= 2, term  # entries of a term after the marker's 1
    for i in (1, 2, 3):
        assert c.stop(i) == 0
    marker = os.path.join(c.data_dir(3), "lost-tail")
    with open(marker, "w") as f:
        f.write("1\n")
    c.start(2)
    c.start(3)  # node 1 stays down: node 2 needs node 3's vote
    leader = c.wait_leader(among=(2, 3), timeout=15.0)
    assert c.put(leader, "after", "v").status in (200, 201, 204)
    wait_for("node 3 to remove its marker", lambda: not os.path.exists(marker))
    assert "after the cut tail's term 1" in c.log_tail(3, 60)
