"""Backup and restore (SPEC §3 "Identity, lost disks, backups, disaster
recovery"; docs/operations.md): `linkraft backup` taken from a 3-node
cluster while sign-ups, posts, comments and likes go on, restored with
`linkraft restore` into a new 3-node cluster that holds exactly the state at
the backup's index — every write acknowledged at or below it is there
(users log in with their old passwords, their sessions still work, every
link, comment and like), none above it — and takes new writes. A truncated,
damaged or unreadable backup is refused with a message and creates nothing;
a backup request without proof of the secret is refused (401) and the
gateway never serves the path (404)."""
import os
import random
import re
import threading
import time

from lrcluster import Cluster, request, wait_for

SECRET = "backup-test-secret-0123456789\n"
PW = "old password 1"


def bearer(token):
    return {"Authorization": "Bearer " + token}


class Writers:
    """Threads writing through every node at once; each acknowledged write
    is recorded with the index of its entry (X-Raft-Index)."""

    def __init__(self, c, threads=3):
        self.c = c
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.users = {}      # name -> (token, index)
        self.links = {}      # id -> (title, url, index)
        self.comments = {}   # id -> (link, text, index)
        self.likes = {}      # (link, user) -> index
        self.errors = []
        self.ops = 0
        self.threads = [threading.Thread(target=self.run, args=(t,)) for t in range(threads)]

    def start(self):
        for t in self.threads:
            t.start()

    def join(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)

    def write(self, node, method, path, body, token=None, want=(200, 201)):
        r = self.c.req(node, method, path, body, bearer(token) if token else None, timeout=10)
        if r.status not in want:
            self.errors.append((method, path, r.status, r.body[:200]))
            return None
        with self.lock:
            self.ops += 1
        return r

    def run(self, t):
        rnd = random.Random(t)
        mine = []
        k = 0
        while not self.stop.is_set() and not self.errors:
            node = 1 + (k + t) % 3
            # Sign-ups are throttled (30 attempts a minute per address and node): at most 8 a thread.
            if not mine or (k % 8 == 0 and len(mine) < 8):
                name = "u%d_%d" % (t, k)
                r = self.write(node, "POST", "/api/v1/signup", {"username": name, "password": PW + name})
                if r:
                    tok = r.json()["token"]
                    mine.append((name, tok))
                    with self.lock:
                        self.users[name] = (tok, int(r.headers["x-raft-index"]))
            else:
                name, tok = rnd.choice(mine)
                with self.lock:
                    links = list(self.links)
                what = k % 3
                if what == 0 or not links:
                    title, url = "link %d/%d" % (t, k), "https://example.com/%d/%d" % (t, k)
                    r = self.write(node, "POST", "/api/v1/links", {"title": title, "url": url}, tok)
                    if r:
                        with self.lock:
                            self.links[r.json()["id"]] = (title, url, int(r.headers["x-raft-index"]))
                elif what == 1:
                    link, text = rnd.choice(links), "comment %d/%d" % (t, k)
                    r = self.write(node, "POST", "/api/v1/links/%d/comments" % link, {"text": text}, tok)
                    if r:
                        with self.lock:
                            self.comments[r.json()["id"]] = (link, text, int(r.headers["x-raft-index"]))
                else:
                    link = rnd.choice(links)
                    with self.lock:
                        done = (link, name) in self.likes
                    if not done:
                        r = self.write(node, "PUT", "/api/v1/links/%d/like" % link, None, tok)
                        if r:
                            with self.lock:
                                self.likes[(link, name)] = int(r.headers["x-raft-index"])
            k += 1


def backup(c, out, secret_path=None, extra=()):
    return c.cli("backup", "--cluster", c.cluster_file, "--secret-file", secret_path or c.secret_path,
                 "--out", out, *extra, timeout=120)


def restore(c2, i, backup_path):
    return c2.cli("restore", "--from", backup_path, "--data", c2.data_dir(i), "--cluster", c2.cluster_file,
                  "--id", str(i), timeout=60)


def test_backup_under_writes_restores_exactly_that_state(make_cluster):
    c = make_cluster(3, secret=SECRET)
    c.start_all()
    c.wait_leader()
    w = Writers(c)
    w.start()
    try:
        wait_for("writes to pile up", lambda: w.ops >= 90 or w.errors, timeout=120)
        assert not w.errors, w.errors
        out = os.path.join(c.dir, "site.backup")
        t0 = time.monotonic()
        p = backup(c, out)
        took = time.monotonic() - t0
        assert p.returncode == 0, p.stderr
        m = re.search(r"backup at index (\d+) from node (\d+)", p.stdout)
        assert m, p.stdout
        index = int(m.group(1))
        # Writes went on during the copy and after it.
        at_backup = w.ops
        wait_for("more writes after the backup", lambda: w.ops >= at_backup + 90 or w.errors, timeout=120)
    finally:
        w.join()
    assert not w.errors, w.errors
    print("backup: index %d, %d bytes, %.2f s, %d writes acknowledged in all" %
          (index, os.path.getsize(out), took, w.ops))
    assert not os.path.exists(out + ".partial")
    below = [u for u, (_, i) in w.users.items() if i <= index]
    above = [u for u, (_, i) in w.users.items() if i > index]
    assert below and above, "the backup was not taken in the middle of the writes"
    assert any(i <= index for *_, i in w.links.values()) and any(i > index for *_, i in w.links.values())

    # A new cluster from it: other ports, other directories.
    c2 = make_cluster(3, secret=SECRET)
    for i in range(1, 4):
        r = restore(c2, i, out)
        assert r.returncode == 0, r.stderr
        assert "restored index %d" % index in r.stdout, r.stdout
        assert os.stat(c2.data_dir(i)).st_mode & 0o777 == 0o700
    c2.start_all()
    leader = c2.wait_leader(timeout=20)
    wait_for("the new cluster to apply the backup", lambda: all(c2.applied(i) >= index for i in range(1, 4)))

    # Logins spread over the nodes: each takes 30 attempts a minute from one address.
    for k, name in enumerate(below):
        r = c2.req(1 + k % 3, "POST", "/api/v1/login", {"username": name, "password": PW + name})
        assert r.status == 200, (name, r.status, r.body)
    for k, name in enumerate(above[:3]):
        r = c2.req(1 + k % 3, "POST", "/api/v1/login", {"username": name, "password": PW + name})
        assert r.status == 401, (name, r.status)
    for node in range(1, 4):
        for name in below:
            tok = w.users[name][0]  # the session made before the backup still works
            r = c2.req(node, "GET", "/api/v1/me", headers=bearer(tok))
            assert r.status == 200 and r.json()["username"] == name, (name, r.body)
        for name in above:
            assert c2.req(node, "GET", "/api/v1/me", headers=bearer(w.users[name][0])).status == 401
        for lid, (title, url, li) in w.links.items():
            r = c2.req(node, "GET", "/api/v1/links/%d" % lid)
            if li > index:
                assert r.status in (404, 410), (lid, r.status)
                continue
            assert r.status == 200, (lid, r.body)
            got = r.json()
            assert (got["title"], got["url"]) == (title, url)
            assert got["likes"] == sum(1 for (l, _), x in w.likes.items() if l == lid and x <= index), got
            r = c2.req(node, "GET", "/api/v1/links/%d/comments" % lid)
            assert r.status == 200
            have = {x["id"]: x["text"] for x in r.json()["comments"]}
            want = {cid: text for cid, (l, text, ci) in w.comments.items() if l == lid and ci <= index}
            assert have == want, (lid, have, want)

    # And it takes new writes, numbered after the backup's index.
    name = below[0]
    r = c2.req(leader, "POST", "/api/v1/login", {"username": name, "password": PW + name})
    tok = r.json()["token"]
    r = c2.req(1, "POST", "/api/v1/links", {"title": "after restore", "url": "https://after.example/"}, bearer(tok))
    assert r.status == 201, r.body
    assert int(r.headers["x-raft-index"]) > index
    new_id = r.json()["id"]
    r = c2.req(2, "POST", "/api/v1/signup", {"username": "newcomer", "password": PW})
    assert r.status == 201, r.body
    wait_for("the new link on every node", lambda: all(
        c2.req(i, "GET", "/api/v1/links/%d" % new_id, headers={"X-Min-Index": r.headers["x-raft-index"]}).status
        == 200 for i in range(1, 4)))


def test_bad_backups_are_refused_and_create_nothing(make_cluster):
    c = make_cluster(3, secret=SECRET)
    c.start_all()
    c.wait_leader()
    r = c.req(1, "POST", "/api/v1/signup", {"username": "someone", "password": PW})
    assert r.status == 201
    out = os.path.join(c.dir, "good.backup")
    p = backup(c, out, extra=("--from", "2"))
    assert p.returncode == 0 and "from node 2" in p.stdout, p.stdout + p.stderr
    data = open(out, "rb").read()

    c2 = Cluster(3, secret=SECRET)
    try:
        cases = {
            "truncated": (data[:-1000], "truncated"),
            "cut inside the header": (data[:40], "shorter than its 80-byte header"),
            "a flipped bit in the database": (data[:len(data) // 2] + bytes([data[len(data) // 2] ^ 1]) +
                                              data[len(data) // 2 + 1:], "damaged"),
            "a flipped bit in the header": (data[:20] + bytes([data[20] ^ 4]) + data[21:], "damaged"),
            "not a backup": (b"SQLite format 3\0" + data[16:], "not a linkraft backup"),
        }
        for what, (content, says) in cases.items():
            bad = os.path.join(c2.dir, "bad.backup")
            with open(bad, "wb") as f:
                f.write(content)
            r = restore(c2, 1, bad)
            assert r.returncode == 1, (what, r.stdout, r.stderr)
            assert says in r.stderr and "bad.backup" in r.stderr, (what, r.stderr)
            assert not os.path.exists(c2.data_dir(1)), what
        # Into a directory that holds something: refused, left alone.
        os.makedirs(c2.data_dir(1))
        with open(os.path.join(c2.data_dir(1), "keep"), "w") as f:
            f.write("x")
        r = restore(c2, 1, out)
        assert r.returncode == 1 and "not empty" in r.stderr, r.stderr
        assert os.listdir(c2.data_dir(1)) == ["keep"]
    finally:
        c2.close()


def test_backup_needs_the_secret(make_cluster):
    c = make_cluster(3, secret=SECRET)
    c.start_all()
    c.wait_leader()
    r = c.req(1, "GET", "/api/v1/backup")
    assert r.status == 401, r.status
    r = c.admin_req(1, "GET", "/api/v1/backup", secret="a wrong secret of some length")
    assert r.status == 401 and b"LKRFTBAK" not in r.body
    r = c.admin_req(2, "GET", "/api/v1/backup", node=1)  # a proof made for another node
    assert r.status == 401
    r = c.admin_req(1, "GET", "/api/v1/backup")
    assert r.status == 200 and r.body[:8] == b"LKRFTBAK"
    assert int(r.headers["x-backup-index"]) >= 1
    # A backup holds every write acknowledged before it was asked for, from
    # a follower too: right after an acknowledgement a follower has not yet
    # heard that the entry is committed (it learns it with the next append),
    # so without the read barrier its copy is older than the write.
    lead = c.wait_leader()
    follower = next(i for i in (1, 2, 3) if i != lead)
    for k in range(5):
        r = c.put(lead, "backup-key-%d" % k, "v")
        assert r.status in (200, 201, 204), r.status
        acked = int(r.headers["x-raft-index"])
        r = c.admin_req(follower, "GET", "/api/v1/backup")
        assert r.status == 200, (r.status, r.body[:200])
        assert int(r.headers["x-backup-index"]) >= acked, (k, r.headers["x-backup-index"], acked)
    wrong = os.path.join(c.dir, "wrong-secret")
    with open(os.open(wrong, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
        f.write("a wrong secret of some length\n")
    out = os.path.join(c.dir, "refused.backup")
    p = backup(c, out, secret_path=wrong)
    assert p.returncode == 1 and "401" in p.stderr, p.stderr
    assert not os.path.exists(out) and not os.path.exists(out + ".partial")
    gw = c.start_gateway()
    assert request(gw, "GET", "/api/v1/backup").status == 404
