"""The admin plane (SPEC §3, issue 11): membership, leadership and the KV
test hook's writes need proof of the cluster secret (or, on a cluster
without one, a loopback client that is not a web page); a refused request
changes nothing and puts nothing in the log; `member add` of a member
changes nothing; the gateway never forwards admin paths or /metrics; the
public views show no addresses. Real processes on loopback."""
import json
import os
import shutil
import subprocess
import time

import pytest

from lrcluster import ROOT, admin_proof, free_ports, request, wait_for

SECRET = "correct horse battery staple"
EVIL = {"Content-Type": "text/plain", "Origin": "http://evil.example"}
# Elections 0.6-1.2 s apart: the tests compare log indexes, which a spurious
# election (a no-op entry) on a loaded machine would move.
STEADY = ("--election-ticks", "40")


def last_index(c, i):
    return int(c.metric(i, "linkraft_raft_last_index"))


def settled(c, leader):
    """Waits until every running node applied the leader's last entry;
    returns that index, so a later comparison sees any new entry."""
    last = last_index(c, leader)
    for i in c.running():
        wait_for("node %d to apply %d" % (i, last), lambda i=i: c.applied(i) >= last)
    return last


def members(c, i):
    return sorted((m["id"], m["voter"]) for m in c.info(i)["members"])


def anonymous_attempts(c, leader, other):
    """Every admin request without (valid) proof; returns their statuses."""
    body_to = json.dumps({"to": other}).encode()
    add = {"id": 4, "learner": True, "raft_address": "127.0.0.1:9", "http_address": "127.0.0.1:10"}
    return [
        c.req(leader, "POST", "/api/v1/transfer-leader", body={"to": other}).status,
        c.req(leader, "POST", "/api/v1/transfer-leader", body=body_to, headers=EVIL).status,
        c.req(leader, "DELETE", "/api/v1/members/%d" % other).status,
        c.req(leader, "DELETE", "/api/v1/members/%d" % other, headers=EVIL).status,
        c.req(leader, "POST", "/api/v1/members", body=add).status,
        c.req(leader, "POST", "/api/v1/members/%d/promote" % other, body={}).status,
        c.req(leader, "PUT", "/api/v1/kv/anon", body=b"x", headers=EVIL).status,
        c.req(other, "PUT", "/api/v1/kv/anon", body=b"x").status,  # a follower would forward it
    ]


def test_anonymous_admin_requests_are_refused_with_a_secret(make_cluster):
    c = make_cluster(3, secret=SECRET, node_args=STEADY)
    c.start_all()
    leader = c.wait_leader()
    other = next(i for i in (1, 2, 3) if i != leader)
    before, config = settled(c, leader), members(c, leader)
    statuses = anonymous_attempts(c, leader, other)
    # A proof that looks right but is not: garbage, and another secret.
    junk = {"Authorization": "Linkraft-HMAC node=%d, ts=%d, nonce=%s, mac=%s" % (leader, time.time() * 1000, "0" * 32, "0" * 64)}
    statuses.append(c.req(leader, "POST", "/api/v1/transfer-leader", body={"to": other}, headers=junk).status)
    statuses.append(c.admin_req(leader, "POST", "/api/v1/transfer-leader", body={"to": other},
                                secret="another secret, also long").status)
    statuses.append(c.admin_req(leader, "DELETE", "/api/v1/members/%d" % other, secret=SECRET + "x").status)
    assert statuses == [401] * len(statuses), statuses
    assert c.leader() == leader and members(c, leader) == config
    assert last_index(c, leader) == before, "a refused request entered the log"
    assert c.kv(leader, "anon") is None
    # The same requests with proof are carried out (the refusals were the proof's doing).
    r = c.admin_req(leader, "PUT", "/api/v1/kv/signed", body=b"1")
    assert r.status == 200 and r.json()["index"] == before + 1
    r = c.admin_req(other, "PUT", "/api/v1/kv/via-follower", body=b"2")
    assert r.status == 200, r.body
    r = c.admin_req(leader, "POST", "/api/v1/transfer-leader", body={"to": other})
    assert r.status == 200, r.body
    c.wait_leader(exclude=(leader,))
    assert c.leader() == other


def test_forged_replayed_stale_and_tampered_proofs_are_refused(make_cluster):
    c = make_cluster(3, secret=SECRET, node_args=STEADY)
    c.start_all()
    leader = c.wait_leader()
    other = next(i for i in (1, 2, 3) if i != leader)
    before = settled(c, leader)
    now = int(time.time() * 1000)

    def send(body, proof, path="/api/v1/transfer-leader", method="POST", to=leader):
        return c.req(to, method, path, body=body, headers={"Content-Type": "application/json", "Authorization": proof})

    body = json.dumps({"to": other}).encode()
    # Stale and future beyond the window, made for another node, tampered body.
    assert send(body, admin_proof(SECRET, leader, "POST", "/api/v1/transfer-leader", body, ts=now - 120000)).status == 401
    assert send(body, admin_proof(SECRET, leader, "POST", "/api/v1/transfer-leader", body, ts=now + 120000)).status == 401
    assert send(body, admin_proof(SECRET, other, "POST", "/api/v1/transfer-leader", body)).status == 401
    assert send(body, admin_proof(SECRET, 0, "POST", "/api/v1/transfer-leader", body)).status == 401
    third = json.dumps({"to": 6 - leader - other}).encode()
    assert send(third, admin_proof(SECRET, leader, "POST", "/api/v1/transfer-leader", body)).status == 401
    # A different method or path under the same proof.
    proof = admin_proof(SECRET, leader, "POST", "/api/v1/members/%d/promote" % other, b"{}")
    assert send(b"{}", proof, path="/api/v1/members/%d" % other, method="DELETE").status == 401
    assert c.leader() == leader and last_index(c, leader) == before

    # A captured KV write: carried out once, then refused on replay.
    value = b"v"
    proof = admin_proof(SECRET, leader, "PUT", "/api/v1/kv/once", value)
    r = c.req(leader, "PUT", "/api/v1/kv/once", body=value, headers={"Authorization": proof})
    assert r.status == 200
    index = r.json()["index"]
    r = c.req(leader, "PUT", "/api/v1/kv/once", body=value, headers={"Authorization": proof})
    assert r.status == 401 and b"already used" in r.body
    assert r.headers["www-authenticate"] == "Linkraft-HMAC"
    assert last_index(c, leader) == index
    # A captured membership change: replayed after the fact, refused.
    proof = admin_proof(SECRET, leader, "POST", "/api/v1/members/%d/promote" % other, b"{}")
    r = c.req(leader, "POST", "/api/v1/members/%d/promote" % other, body=b"{}", headers={"Authorization": proof})
    assert r.status == 409  # already a voter: proven, then refused by Raft
    r = c.req(leader, "POST", "/api/v1/members/%d/promote" % other, body=b"{}", headers={"Authorization": proof})
    assert r.status == 401
    # ... also once the node has restarted and forgotten what it accepted.
    c.kill(leader)
    c.start(leader)
    r = c.req(leader, "POST", "/api/v1/members/%d/promote" % other, body=b"{}", headers={"Authorization": proof})
    assert r.status == 401 and b"before this node started" in r.body, r.body


def test_a_captured_kv_write_is_carried_out_once_on_one_node_only(make_cluster):
    """KV proofs are bound to the node they were sent to: a follower spends
    the client's proof and signs a fresh one for the leader, so neither the
    client's proof nor the follower's can be replayed anywhere, and a proof
    for "any node" (node=0) is refused."""
    c = make_cluster(3, secret=SECRET, node_args=STEADY)
    c.start_all()
    leader = c.wait_leader()
    follower, third = [i for i in (1, 2, 3) if i != leader]
    before = settled(c, leader)
    value = b"once"
    path = "/api/v1/kv/bound"

    def send(to, proof):
        return c.req(to, "PUT", path, body=value, headers={"Authorization": proof})

    for i in (leader, follower):
        r = send(i, admin_proof(SECRET, 0, "PUT", path, value))
        assert r.status == 401 and b"another node" in r.body, (i, r.status, r.body)
    assert last_index(c, leader) == before

    proof = admin_proof(SECRET, follower, "PUT", path, value)
    r = send(follower, proof)  # through the follower: carried out on the leader
    assert r.status == 200, r.body
    index = r.json()["index"]
    assert c.kv(leader, "bound") == "once"
    for i, why in ((follower, b"already used"), (leader, b"another node"), (third, b"another node")):
        r = send(i, proof)
        assert r.status == 401 and why in r.body, (i, r.status, r.body)
    assert settled(c, leader) == index, "a replayed KV write entered the log"


def test_without_a_secret_only_loopback_clients_that_are_not_web_pages(make_cluster):
    c = make_cluster(3, node_args=STEADY)
    c.start_all()
    leader = c.wait_leader()
    other = next(i for i in (1, 2, 3) if i != leader)
    before, config = settled(c, leader), members(c, leader)
    # A page in a browser on this machine (text/plain needs no preflight).
    statuses = [
        c.req(leader, "POST", "/api/v1/transfer-leader", body=json.dumps({"to": other}).encode(), headers=EVIL).status,
        c.req(leader, "DELETE", "/api/v1/members/%d" % other, headers={"Origin": "http://evil.example"}).status,
        c.req(leader, "PUT", "/api/v1/kv/page", body=b"x", headers={"Sec-Fetch-Site": "cross-site"}).status,
        # A remote client through a proxy on this machine (the gateway and
        # the nodes name the client in X-Forwarded-For).
        c.req(leader, "POST", "/api/v1/transfer-leader", body={"to": other},
              headers={"X-Forwarded-For": "198.51.100.7"}).status,
        c.req(other, "PUT", "/api/v1/kv/remote", body=b"x", headers={"X-Forwarded-For": "127.0.0.1, 198.51.100.7"}).status,
    ]
    gw = c.start_gateway()
    statuses.append(request(gw, "PUT", "/api/v1/kv/remote", body=b"x", headers={"X-Forwarded-For": "203.0.113.9"},
                            timeout=10).status)
    assert statuses == [403] * len(statuses), statuses
    assert c.leader() == leader and members(c, leader) == config
    assert last_index(c, leader) == before
    # The command-line tools (loopback, no Origin) are served.
    assert c.put(other, "cli", "1").status == 200
    assert request(gw, "PUT", "/api/v1/kv/via-gw", body=b"1", timeout=10).status == 200


def test_member_add_of_a_member_changes_nothing(make_cluster):
    c = make_cluster(3, node_args=STEADY)
    c.start_all()
    leader = c.wait_leader()
    other = next(i for i in (1, 2, 3) if i != leader)
    before = settled(c, leader)
    # New addresses for an existing member: refused before anything is proposed.
    r = c.req(leader, "POST", "/api/v1/members",
              body={"id": other, "raft_address": "127.0.0.1:9", "http_address": "127.0.0.1:10"})
    assert r.status == 409, r.body
    r = c.req(leader, "POST", "/api/v1/members", body={"id": other, "learner": True})
    assert r.status == 409
    # The next entry is the next index: nothing entered the log meanwhile.
    r = c.put(leader, "after", "1")
    assert r.status == 200 and r.json()["index"] == before + 1
    # And the member is still reached where it was.
    wait_for("node %d to apply the write" % other, lambda: c.kv(other, "after") == "1")
    r = c.cli("transfer-leader", "--cluster", c.cluster_file, "--to", str(other))
    assert r.returncode == 0, r.stderr
    r = c.cli("member", "add", "--cluster", c.cluster_file, "--id", str(leader))
    assert r.returncode == 1 and "409" in r.stderr


def test_cli_proves_the_secret(make_cluster):
    c = make_cluster(3, secret=SECRET, node_args=STEADY)
    c.start_all()
    leader = c.wait_leader()
    other = next(i for i in (1, 2, 3) if i != leader)
    r = c.cli("transfer-leader", "--cluster", c.cluster_file, "--to", str(other))
    assert r.returncode == 1 and "401" in r.stderr and "--secret-file" in r.stderr, r.stderr
    assert c.leader() == leader
    r = c.cli("transfer-leader", "--cluster", c.cluster_file, "--to", str(other), "--secret-file", c.secret_path)
    assert r.returncode == 0, r.stderr
    assert c.wait_leader() == other
    r = c.cli("member", "remove", "--cluster", c.cluster_file, "--id", str(leader), "--secret-file", c.secret_path)
    assert r.returncode == 0, r.stderr
    wait_for("node %d removed" % leader, lambda: all(m["id"] != leader for m in c.info(other)["members"]))
    r = c.cli("member", "remove", "--cluster", c.cluster_file, "--id", "1", "--secret-file", "/nonexistent")
    assert r.returncode == 2 and "/nonexistent" in r.stderr


def test_status_with_the_secret_compares_addresses(make_cluster):
    c = make_cluster(3, secret=SECRET, node_args=STEADY)
    c.start_all()
    c.wait_leader()
    r = c.cli("status", "--cluster", c.cluster_file, "--secret-file", c.secret_path)
    assert r.returncode == 0 and "warning" not in r.stdout, r.stdout + r.stderr
    # A cluster file whose raft address for node 3 is not what the log says
    # (as after someone re-pointed it): every node points it out.
    with open(c.cluster_file) as f:
        text = f.read()
    with open(c.cluster_file, "w") as f:
        f.write(text.replace(c.raft[3], "127.0.0.1:1"))
    r = c.cli("status", "--cluster", c.cluster_file)
    assert r.returncode == 0 and c.raft[3] not in r.stdout
    r = c.cli("status", "--cluster", c.cluster_file, "--secret-file", c.secret_path)
    assert r.returncode == 0
    warnings = [l for l in r.stdout.splitlines() if l.startswith("warning")]
    assert len(warnings) == 3 and all("member 3 at %s" % c.raft[3] in w and "127.0.0.1:1" in w for w in warnings), r.stdout


def test_gateway_never_forwards_admin_paths_or_metrics(make_cluster):
    c = make_cluster(3, node_args=STEADY)
    c.start_all()
    leader = c.wait_leader()
    other = next(i for i in (1, 2, 3) if i != leader)
    gw = c.start_gateway()
    wait_for("the gateway to serve", lambda: request(gw, "GET", "/api/v1/cluster").status == 200)
    before = settled(c, leader)
    for method, path, body in [
        ("GET", "/metrics", None),
        ("POST", "/api/v1/transfer-leader", {"to": other}),
        ("DELETE", "/api/v1/members/%d" % other, None),
        ("POST", "/api/v1/members", {"id": 4, "raft_address": "127.0.0.1:9", "http_address": "127.0.0.1:10"}),
        ("POST", "/api/v1/members/%d/promote" % other, {}),
        ("PUT", "/api/v1/moderators/anyone", None),
    ]:
        if isinstance(body, dict):
            body = json.dumps(body).encode()
        assert request(gw, method, path, body=body, timeout=10).status == 404, path
    assert c.leader() == leader and last_index(c, leader) == before


def test_public_views_show_no_addresses(make_cluster):
    c = make_cluster(3, secret=SECRET, node_args=STEADY)
    c.start_all()
    leader = c.wait_leader()
    addresses = list(c.raft.values()) + list(c.http.values())
    for i in (1, 2, 3):
        for path in ("/api/v1/cluster", "/status", "/metrics"):
            body = c.get(i, path).body.decode()
            assert not any(a in body for a in addresses), (i, path)
    info = c.info(leader)
    assert all("raft_address" not in m and "http_address" not in m for m in info["members"])
    assert {m["id"] for m in info["members"]} == {1, 2, 3}
    # An operator who proves the secret sees them; a wrong proof is told so.
    r = c.admin_req(leader, "GET", "/api/v1/cluster")
    assert r.status == 200
    seen = {m["id"]: (m["raft_address"], m["http_address"]) for m in r.json()["members"]}
    assert seen == {i: (c.raft[i], c.http[i]) for i in (1, 2, 3)}
    assert c.admin_req(leader, "GET", "/api/v1/cluster", secret="not the secret at all").status == 401


HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


@pytest.mark.skipif(not os.path.exists(HAPROXY), reason="haproxy is not installed (scripts/deps.sh test installs it)")
def test_haproxy_config_from_docs_exposes_no_admin_path(make_cluster):
    c = make_cluster(3, node_args=STEADY)
    c.start_all()
    leader = c.wait_leader()
    other = next(i for i in (1, 2, 3) if i != leader)
    with open(os.path.join(ROOT, "docs", "haproxy.cfg")) as f:
        cfg = f.read()
    port = free_ports(1)[0]
    cfg = cfg.replace("bind 127.0.0.1:8080", "bind 127.0.0.1:%d" % port)
    for i in (1, 2, 3):
        cfg = cfg.replace("127.0.0.1:800%d" % i, c.http[i])
    path = os.path.join(c.dir, "haproxy.cfg")
    with open(path, "w") as f:
        f.write(cfg)
    log = open(os.path.join(c.dir, "haproxy.log"), "wb")
    p = subprocess.Popen([HAPROXY, "-db", "-f", path], stdout=log, stderr=log)
    try:
        front = "127.0.0.1:%d" % port
        wait_for("haproxy to serve", lambda: request(front, "GET", "/api/v1/cluster").status == 200)
        before = settled(c, leader)
        assert request(front, "GET", "/metrics").status == 404
        assert request(front, "POST", "/api/v1/transfer-leader", body={"to": other}).status == 404
        assert request(front, "DELETE", "/api/v1/members/%d" % other).status == 404
        assert request(front, "POST", "/api/v1/members", body={"id": 4}).status == 404
        assert request(front, "PUT", "/api/v1/moderators/anyone").status == 404
        # The client named by a proxy in front of HAProxy is not local.
        r = request(front, "PUT", "/api/v1/kv/x", body=b"1", headers={"X-Forwarded-For": "198.51.100.7"})
        assert r.status == 403
        assert c.leader() == leader and last_index(c, leader) == before
    finally:
        p.terminate()
        p.wait(timeout=10)
        log.close()
