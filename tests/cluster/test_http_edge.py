"""test_http_edge.py — the rules every HTTP edge reads alike (issue 15,
"one HTTP edge"), on real processes: an empty Idempotency-Key is refused
with 400 by the node's own API and by the site, and a read asking for an
X-Min-Index far beyond what a node has committed is answered at once with
503 and Retry-After (the node may be the one catching up), not 400."""

PW = "correct horse battery"


def test_empty_idempotency_key_is_refused_by_both_edges(make_cluster):
    c = make_cluster(3)
    c.start_all()
    leader = c.wait_leader()
    r = c.put(leader, "k", "v", headers={"Idempotency-Key": ""})
    assert r.status == 400, (r.status, r.body)
    assert r.json()["error"] == "bad_idempotency_key"
    r = c.req(leader, "POST", "/api/v1/signup", {"username": "alice", "password": PW},
              headers={"Idempotency-Key": ""})
    assert r.status == 400, (r.status, r.body)
    assert r.json()["error"] == "bad_idempotency_key"
    # Both say the same rule, and a key of 1 to 255 bytes is taken by both.
    assert c.put(leader, "k", "v", headers={"Idempotency-Key": "x" * 256}).json()["message"] == r.json()["message"]
    assert c.put(leader, "k", "v", headers={"Idempotency-Key": "k1"}).status in (200, 201, 204)
    assert c.req(leader, "POST", "/api/v1/signup", {"username": "alice", "password": PW},
                 headers={"Idempotency-Key": "s1"}).status == 201


def test_min_index_beyond_commit_is_503_with_retry_after(make_cluster):
    c = make_cluster(3)
    c.start_all()
    leader = c.wait_leader()
    far = {"X-Min-Index": "4000000000", "X-Consistency": "session"}
    for i in range(1, 4):
        for path in ("/api/v1/kv/k", "/api/v1/links"):
            r = c.get(i, path, headers=far)
            assert r.status == 503, (i, path, r.status, r.body)
            assert r.json()["error"] == "behind"
            assert int(r.headers["retry-after"]) >= 1
    # A malformed index is still the client's error.
    assert c.get(leader, "/api/v1/links", headers={"X-Min-Index": "12x"}).status == 400


def test_moderator_name_follows_the_username_rule(make_cluster):
    """PUT /api/v1/moderators/NAME says "3 to 20 characters" and now means
    it (it took shorter names), and refuses what no username can hold."""
    c = make_cluster(3)
    c.start_all()
    leader = c.wait_leader()
    for name in ("ab", "a", "bad%21name", "x" * 21):
        r = c.req(leader, "PUT", "/api/v1/moderators/" + name)
        assert r.status == 400, (name, r.status, r.body)
        assert r.json()["error"] == "bad_name"
    assert c.req(leader, "POST", "/api/v1/signup", {"username": "mia", "password": PW}).status == 201
    assert c.req(leader, "PUT", "/api/v1/moderators/mia").status in (200, 201, 204)
