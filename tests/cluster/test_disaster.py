"""Disaster recovery (SPEC §3; docs/operations.md "Recover from a lost
majority"): two of three machines lost for good while writes go on. The
survivor, restarted with --force-new-cluster, becomes a one-voter cluster
holding every acknowledged write; two fresh nodes are added back with
--join and `member add`, catch up, and the three carry on — also without
the survivor. A member of the old cluster that comes back is refused (the
new cluster has a new id), and the flag on a node that is already alone
changes nothing."""
import os
import shutil
import subprocess
import threading

import lrcluster
from lrcluster import wait_for

SECRET = "disaster-test-secret-0123456789\n"


def put_ok(c, i, key, value):
    r = c.put(i, key, value, timeout=10)
    assert r.status in (200, 201, 204), (r.status, r.body)


def member(c, verb, i):
    """member add/remove, retried while the leader is busy with the change before."""
    def once():
        r = c.cli("member", verb, "--cluster", c.cluster_file, "--secret-file", c.secret_path, "--id", str(i))
        assert r.returncode == 0 or "busy" in r.stderr, r.stderr
        return r.returncode == 0
    wait_for("the leader to accept member %s %d" % (verb, i), once, timeout=30)


def test_force_new_cluster_after_losing_a_majority(make_cluster):
    c = make_cluster(3, secret=SECRET)
    c.start_all()
    survivor = c.wait_leader()
    lost = [i for i in range(1, 4) if i != survivor]
    acked, stop = {}, threading.Event()

    def writer(t):
        k = 0
        while not stop.is_set():
            key, value = "k%d_%d" % (t, k), "v%d" % k
            try:
                r = c.put(survivor, key, value, timeout=2)
                if r.status in (200, 201, 204):
                    acked[key] = value
            except OSError:
                pass
            k += 1

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(3)]
    for t in threads:
        t.start()
    try:
        wait_for("writes to pile up", lambda: len(acked) >= 150, timeout=60)
        # Both followers die at once, for good: their disks are gone.
        for i in lost:
            c.kill(i)
        # A copy of one lost directory, to bring it back later as a ghost.
        ghost = os.path.join(c.dir, "ghost")
        shutil.copytree(c.data_dir(lost[0]), ghost)
        for i in lost:
            shutil.rmtree(c.data_dir(i))
        wait_for("the survivor to step down", lambda: c.get(survivor, "/leaderz").status == 503)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert len(acked) >= 150
    c.kill(survivor)

    c.start(survivor, args=["--force-new-cluster"])
    assert c.wait_leader(timeout=20) == survivor
    with open(os.path.join(c.dir, "node%d.log" % survivor), "rb") as f:
        assert b"ONE-VOTER cluster" in f.read()
    info = c.info(survivor)
    assert [m["id"] for m in info["members"]] == [survivor], info
    for key, value in acked.items():
        assert c.kv(survivor, key, "linearizable") == value, key
    put_ok(c, survivor, "alone", "1")

    # Restarted with the flag still on: already alone, nothing changes.
    c.stop(survivor)
    c.start(survivor, args=["--force-new-cluster"])
    assert c.wait_leader(timeout=20) == survivor
    assert c.kv(survivor, "alone", "linearizable") == "1"

    # Two fresh machines take the lost members' places.
    for i in lost:
        c.start(i, join=True)
        member(c, "add", i)
        wait_for("node %d to be a voter" % i, lambda: any(
            m["id"] == i and m["voter"] for m in c.info(survivor)["members"]), timeout=30)
    commit = c.info(survivor)["commit"]
    for i in lost:
        wait_for("node %d to catch up" % i, lambda: c.applied(i) >= commit, timeout=30)
        for key, value in list(acked.items())[::17]:
            assert c.kv(i, key) == value
    put_ok(c, lost[0], "three-again", "1")

    # A member of the old cluster that comes back is refused (another cluster id).
    c.kill(lost[0])
    shutil.rmtree(c.data_dir(lost[0]))
    shutil.copytree(ghost, c.data_dir(lost[0]))
    c.start(lost[0])
    wait_for("the ghost to be refused", lambda: b"another cluster" in open(
        os.path.join(c.dir, "node%d.log" % survivor), "rb").read(), timeout=20)
    assert c.kv(lost[0], "three-again") is None
    c.kill(lost[0])

    # Writes go on with the survivor and the other new member (a majority of three).
    put_ok(c, c.wait_leader(among=[survivor, lost[1]]), "two-of-three", "1")
    # And without the survivor once the ghost's place is taken again.
    shutil.rmtree(c.data_dir(lost[0]))
    member(c, "remove", lost[0])
    c.start(lost[0], join=True)
    member(c, "add", lost[0])
    wait_for("node %d to be a voter again" % lost[0], lambda: any(
        m["id"] == lost[0] and m["voter"] for m in c.info(survivor)["members"]), timeout=30)
    wait_for("node %d to catch up" % lost[0], lambda: c.kv(lost[0], "two-of-three") == "1", timeout=30)
    c.stop(survivor)
    leader = c.wait_leader(among=lost, timeout=20)
    put_ok(c, leader, "without-the-survivor", "1")
    for i in lost:
        wait_for("node %d to apply" % i, lambda: c.kv(i, "without-the-survivor") == "1")

    # The flag left on the survivor's command line, now that it has members
    # again: forcing once more would drop them while they go on electing
    # among themselves (two leaders). It is refused, the directory as it was.
    def raft_files():
        import hashlib
        d = c.data_dir(survivor)
        return {n: hashlib.sha256(open(os.path.join(d, n), "rb").read()).hexdigest() for n in os.listdir(d)
                if n.startswith("log-") or n in ("hardstate", "snapshot.meta", "identity", "forced-cluster")}
    before = raft_files()
    r = subprocess.run([lrcluster.BINARY, "node", "--cluster", c.cluster_file, "--id", str(survivor), "--data",
                        c.data_dir(survivor), "--secret-file", c.secret_path, "--force-new-cluster"] + c.node_args,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "already made a new cluster" in r.stderr, (r.returncode, r.stderr)
    assert raft_files() == before
    c.start(survivor)
    wait_for("the survivor to catch up as a member", lambda: c.kv(survivor, "without-the-survivor") == "1")
    assert [m["id"] for m in c.info(c.wait_leader())["members"]] != [survivor]
