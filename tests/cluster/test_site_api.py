"""Process-level tests of the website (issue 4) on three real nodes: the
JSON API of SPEC §4 with writes sent to followers (forwarded to the
leader), sessions honoured by every node and surviving the leader, every
node showing identical data, idempotency keys across nodes, the pages and
forms through the gateway, and every limit of SPEC §4."""
import http.client
import re
import signal
import socket

from lrcluster import request, wait_for

PW = "correct horse"


def idx(r):
    return r.headers["x-raft-index"]


def after(r, extra=None):
    """Headers for a read that must see the write r (session consistency)."""
    h = {"X-Min-Index": idx(r)}
    h.update(extra or {})
    return h


def bearer(token, extra=None):
    h = {"Authorization": "Bearer " + token}
    h.update(extra or {})
    return h


def follower_of(c, leader):
    return next(i for i in range(1, c.n + 1) if i != leader)


def test_api_on_three_nodes(make_cluster):
    c = make_cluster(3)
    c.start_all()
    leader = c.wait_leader()
    f = follower_of(c, leader)

    # Sign-up sent to a follower: forwarded, answered there once applied.
    r = c.req(f, "POST", "/api/v1/signup", {"username": "Alice", "password": PW})
    assert r.status == 201, r.body
    assert r.headers["x-served-by"] == str(f)
    assert "lr_session=" in r.headers["set-cookie"] and "HttpOnly" in r.headers["set-cookie"]
    token = r.json()["token"]
    assert r.json()["username"] == "Alice"
    assert c.req(f, "POST", "/api/v1/signup", {"username": "ALICE", "password": PW}).status == 409

    # The session works on every node.
    for i in range(1, 4):
        r2 = c.req(i, "GET", "/api/v1/me", None, bearer(token, after(r)))
        assert r2.status == 200 and r2.json() == {"username": "Alice"}, (i, r2.status, r2.body)
        assert r2.headers["x-served-by"] == str(i) and int(r2.headers["x-raft-index"]) >= int(idx(r))

    # Login: right password on one node, wrong and unknown on others.
    r = c.req(leader, "POST", "/api/v1/login", {"username": "alice", "password": PW})
    assert r.status == 200 and r.json()["username"] == "Alice"
    wrong = c.req(f, "POST", "/api/v1/login", {"username": "alice", "password": "not it at all"})
    unknown = c.req(f, "POST", "/api/v1/login", {"username": "nobody", "password": "not it at all"})
    assert wrong.status == unknown.status == 401 and wrong.body == unknown.body

    # Post on a follower, like on the other follower; all nodes agree.
    r = c.req(f, "POST", "/api/v1/links", {"title": "Raft <paper>", "url": "https://raft.github.io/#x"}, bearer(token))
    assert r.status == 201, r.body
    link = r.json()
    assert link["author"] == "Alice" and link["likes"] == 0 and re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", link["created"])
    dup = c.req(leader, "POST", "/api/v1/links", {"title": "again", "url": "http://RAFT.github.io:80/"}, bearer(token))
    assert dup.status == 409 and dup.json()["error"] == "duplicate" and dup.json()["id"] == link["id"]
    other = next(i for i in range(1, 4) if i not in (leader, f))
    r = c.req(other, "PUT", "/api/v1/links/%d/like" % link["id"], None, bearer(token))
    assert r.status == 200 and r.json() == {"id": link["id"], "likes": 1, "liked": True}
    r = c.req(other, "PUT", "/api/v1/links/%d/like" % link["id"], None, bearer(token))
    assert r.json()["likes"] == 1
    seen = set()
    for i in range(1, 4):
        r2 = c.req(i, "GET", "/api/v1/links/%d" % link["id"], None, after(r))
        assert r2.status == 200
        seen.add(r2.body)
        assert r2.json()["likes"] == 1
    assert len(seen) == 1, seen  # identical bytes everywhere, created included
    lists = {c.req(i, "GET", "/api/v1/links?sort=top&limit=5", None, after(r)).body for i in range(1, 4)}
    assert len(lists) == 1

    # Idempotency-Key holds across nodes: a retry on another node answers
    # the first result and posts nothing new.
    key = {"Idempotency-Key": "retry-1"}
    r1 = c.req(f, "POST", "/api/v1/links", {"title": "once", "url": "http://once.example/"}, bearer(token, key))
    r2 = c.req(other, "POST", "/api/v1/links", {"title": "once", "url": "http://once.example/"}, bearer(token, key))
    assert r1.status == r2.status == 201 and r1.json()["id"] == r2.json()["id"], (r1.body, r2.body)
    r3 = c.req(leader, "GET", "/api/v1/links?sort=new&limit=100", None, after(r2))
    assert [x["title"] for x in r3.json()["links"]].count("once") == 1

    # Logout ends the session on every node.
    r = c.req(other, "POST", "/api/v1/logout", None, bearer(token))
    assert r.status == 204
    for i in range(1, 4):
        assert c.req(i, "GET", "/api/v1/me", None, bearer(token, after(r))).status == 401
    assert c.req(f, "POST", "/api/v1/links", {"title": "t", "url": "http://x.example/"}, bearer(token)).status == 401

    # Linearizable reads from a follower.
    r = c.req(f, "GET", "/api/v1/links", None, {"X-Consistency": "linearizable"})
    assert r.status == 200 and len(r.json()["links"]) == 2


def test_limits_and_bad_input(make_cluster):
    c = make_cluster(3)
    c.start_all()
    leader = c.wait_leader()
    f = follower_of(c, leader)
    r = c.req(f, "POST", "/api/v1/signup", {"username": "bob_the-2nd", "password": PW})
    assert r.status == 201, r.body
    token = r.json()["token"]

    def signup(name, pw):
        return c.req(f, "POST", "/api/v1/signup", {"username": name, "password": pw}).status

    assert signup("ab", PW) == 400
    assert signup("a" * 21, PW) == 400
    assert signup("a" * 20, PW) == 201
    assert signup("bad name", PW) == 400
    assert signup("carol", "x" * 7) == 400
    assert signup("carol", "x" * 129) == 400
    assert signup("carol", "x" * 128) == 201

    def post(title, url):
        return c.req(f, "POST", "/api/v1/links", {"title": title, "url": url}, bearer(token))

    assert post("", "http://t.example/").status == 400
    assert post("t" * 201, "http://t.example/").status == 400
    assert post("é" * 200, "http://t1.example/").status == 201  # characters, not bytes
    assert post("t", "ftp://t.example/").status == 400
    assert post("t", "http:///nohost").status == 400
    long_url = "http://t.example/" + "u" * (2048 - len("http://t.example/"))
    assert post("t", long_url).status == 201
    assert post("t", long_url + "u").status == 400
    r = post("t", "javascript:alert(1)")
    assert r.status == 400 and r.json()["error"] == "invalid" and r.json()["message"]

    # Malformed JSON: 400 with a JSON error.
    r = c.req(f, "POST", "/api/v1/signup", b'{"username": "x",', {"Content-Type": "application/json"})
    assert r.status == 400 and r.json()["error"] == "bad_json"
    # List limits.
    assert c.req(f, "GET", "/api/v1/links?limit=0").status == 400
    assert c.req(f, "GET", "/api/v1/links?limit=101").status == 400
    assert c.req(f, "GET", "/api/v1/links?limit=100").status == 200
    assert c.req(f, "GET", "/api/v1/links?sort=best").status == 400
    assert c.req(f, "GET", "/api/v1/links/123456").status == 404
    assert c.req(f, "GET", "/no/such/page").status == 404
    assert c.req(f, "DELETE", "/api/v1/me").status == 405

    # HTTP limits: headers over 8 KiB -> 431, body over 64 KiB -> 413.
    host, port = c.http[f].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request("GET", "/", headers={"X-Big": "a" * 9000})
    assert conn.getresponse().status == 431
    conn.close()
    r = c.req(f, "POST", "/api/v1/links", b"{" + b" " * (65 * 1024) + b"}", bearer(token, {"Content-Type": "application/json"}))
    assert r.status == 413
    # Malformed HTTP: 400 and the connection closed.
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n")
        data = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        assert data.startswith(b"HTTP/1.1 400"), data[:100]
    # And the node still serves the site.
    assert c.req(f, "GET", "/").status == 200


def test_session_survives_the_leader(make_cluster):
    c = make_cluster(3)
    c.start_all()
    leader = c.wait_leader()
    r = c.req(leader, "POST", "/api/v1/signup", {"username": "dana", "password": PW})
    assert r.status == 201
    token = r.json()["token"]
    cookie = "lr_session=" + token + "; lr_idx=" + idx(r)
    survivors = [i for i in range(1, 4) if i != leader]
    for i in survivors:
        wait_for("node %d to apply the sign-up" % i,
                 lambda i=i: c.req(i, "GET", "/api/v1/me", None, {"Cookie": cookie}).status == 200)
    c.kill(leader, signal.SIGKILL)
    new = c.wait_leader(among=survivors)
    # Still logged in, on the new leader and the other survivor, and can write.
    for i in survivors:
        assert c.req(i, "GET", "/api/v1/me", None, {"Cookie": cookie}).status == 200
    r = c.req(new, "POST", "/api/v1/links", {"title": "after failover", "url": "http://failover.example/"},
              {"Cookie": cookie, "Content-Type": "application/json"})
    assert r.status == 201, r.body


def test_pages_and_forms_through_the_gateway(make_cluster):
    c = make_cluster(3)
    c.start_all()
    c.wait_leader()
    gw = c.start_gateway()
    jar = {}

    def go(method, path, form=None):
        headers = {"Cookie": "; ".join("%s=%s" % kv for kv in jar.items())}
        body = None
        if form is not None:
            body = "&".join("%s=%s" % (k, v.replace(" ", "+")) for k, v in form.items()).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = "http://" + gw
        r = request(gw, method, path, body, headers)
        for part in [v for k, v in r.headers.items() if k == "set-cookie"]:
            for m in re.finditer(r"(lr_\w+)=([^;,]*)", part):
                jar[m.group(1)] = m.group(2)
        return r

    r = go("GET", "/signup")
    assert r.status == 200 and b'lang="en"' in r.body
    assert "default-src 'none'" in r.headers["content-security-policy"]
    csrf = re.search(rb'name="csrf" value="([0-9a-f]+)"', r.body).group(1).decode()
    r = go("POST", "/signup", {"csrf": csrf, "username": "erin", "password": PW})
    assert r.status == 303, r.body
    assert jar.get("lr_session")
    r = go("GET", "/submit")
    csrf = re.search(rb'name="csrf" value="([0-9a-f]+)"', r.body).group(1).decode()
    r = go("POST", "/submit", {"csrf": csrf, "title": "A <b>bold</b> claim", "url": "https%3A%2F%2Fexample.org%2Fclaim"})
    assert r.status == 303 and r.headers["location"].startswith("/link/"), (r.status, r.body)
    r = go("GET", "/")
    assert r.status == 200
    assert b"A &lt;b&gt;bold&lt;/b&gt; claim" in r.body and b'rel="nofollow ugc noopener"' in r.body
    assert b"(example.org)" in r.body
    assert len(r.body) < 30 * 1024
    css = go("GET", "/static/site.v2.css")
    assert css.status == 200 and "max-age=31536000" in css.headers["cache-control"]
    r = go("GET", "/status")
    assert r.status == 200 and b"leader" in r.body
    # A form without the CSRF token is refused.
    r = go("POST", "/logout", {"csrf": "0" * 32})
    assert r.status == 403
