"""Read replicas (issue 16, item 4; docs/scaling.md): learners added with
`member add --learner` serve every read a voter serves (pages, JSON,
linearizable reads), pass writes on to the leader, are given reads by the
gateway like any other ready node, and never vote: with two of three voters
gone, a voter and two learners elect nobody."""
import time

from lrcluster import request, wait_for

PW = "correct horse"


def add_learner(c, i):
    c.start(i, join=True)

    def add():
        r = c.cli("member", "add", "--cluster", c.cluster_file, "--id", str(i), "--learner")
        assert r.returncode == 0 or "busy" in r.stderr, r.stderr
        return r.returncode == 0
    wait_for("node %d added as a learner" % i, add)


def role_of(c, at, i):
    return next(m for m in c.info(at)["members"] if m["id"] == i)["role"]


def test_learners_serve_reads_and_never_vote(make_cluster):
    c = make_cluster(3, extra=2)
    c.start_all()
    leader = c.wait_leader()
    r = c.req(leader, "POST", "/api/v1/signup", body={"username": "reader", "password": PW})
    assert r.status == 201, r.body
    token = r.json()["token"]
    r = c.req(leader, "POST", "/api/v1/links", body={"title": "Before the learners", "url": "https://r.example/1"},
              headers={"Authorization": "Bearer " + token})
    assert r.status == 201, r.body
    c.write_cluster_file(range(1, 6))  # the learners' addresses, for member add and the gateway
    for i in (4, 5):
        add_learner(c, i)
    for i in (4, 5):
        wait_for("node %d to be a caught-up learner" % i,
                 lambda i=i: role_of(c, c.wait_leader(), i) == "learner" and c.get(i, "/readyz").status == 200)
        # Pages, JSON and linearizable reads, as on a voter.
        r = c.get(i, "/api/v1/links?sort=new", headers={"X-Consistency": "linearizable"})
        assert r.status == 200 and r.json()["links"][0]["title"] == "Before the learners", r.body
        assert b"Before the learners" in c.get(i, "/new").body
    # A write sent to a learner goes to the leader; the learner's answer
    # comes once it has applied it (its own read then sees it).
    r = c.req(4, "POST", "/api/v1/links", body={"title": "Through a learner", "url": "https://r.example/2"},
              headers={"Authorization": "Bearer " + token})
    assert r.status == 201 and r.headers["x-served-by"] == "4", (r.status, r.body)
    assert b"Through a learner" in c.get(4, "/new", headers={"X-Min-Index": r.headers["x-raft-index"]}).body

    # The gateway, given the file with the learners, spreads reads over them too.
    gw = c.start_gateway()
    served = {}

    def reads_reach_every_node():
        r = request(gw, "GET", "/new")
        assert r.status == 200 and b"Before the learners" in r.body, r.status
        served[r.headers["x-served-by"]] = served.get(r.headers["x-served-by"], 0) + 1
        return {"4", "5"} <= set(served) and len(served) == 5
    wait_for("reads through the gateway on all five nodes", reads_reach_every_node, timeout=15, interval=0)
    # ...and writes to the leader only.
    r = request(gw, "POST", "/api/v1/links", body={"title": "Via the gateway", "url": "https://r.example/3"},
                headers={"Authorization": "Bearer " + token})
    assert r.status == 201 and r.headers["x-served-by"] == str(c.wait_leader()), r.headers

    # Learners never vote. The leader dies: a voter takes over, never a learner.
    c.kill(leader)
    new = c.wait_leader(exclude=(leader,))
    assert new in (1, 2, 3)
    # A second voter dies: one voter and two learners are three of five
    # processes, a majority if learners counted. They do not: nobody leads,
    # through many election timeouts (150-300 ms each), and the learners
    # never start an election.
    c.kill(new)
    alone = next(i for i in (1, 2, 3) if i not in (leader, new))
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        assert c.leader(among=[alone, 4, 5]) is None
        time.sleep(0.05)
    for i in (4, 5):
        assert c.metric(i, "linkraft_raft_elections_started_total") == 0
        assert c.metric(i, "linkraft_raft_is_leader") == 0
        # Stale reads go on from a learner without a leader.
        r = c.get(i, "/api/v1/links?sort=new", headers={"X-Consistency": "stale"})
        assert r.status == 200 and len(r.json()["links"]) == 3, r.body
    # A voter back: a voter leads again, and the learners follow it.
    c.start(leader)
    back = c.wait_leader(among=[alone, leader, 4, 5], timeout=15)
    assert back in (alone, leader)
    assert role_of(c, back, 4) == "learner" and role_of(c, back, 5) == "learner"
