"""Process-level tests of finding things and keeping order (SPEC §5
"Finding things", "Abuse and moderation") on three real nodes and a
gateway: search (any input is words: FTS5 operators, quotes, NEAR(, *, -, ^,
column filters, long and Unicode strings never give a 500), links by domain
with subdomains, the Atom feeds (valid XML with the required elements, ids
and bytes identical on every node and after a restart, ETag and 304), and
the per-user rate limits decided in the log (429 with Retry-After on every
node, whichever the client switches to)."""
import json
import urllib.parse
import xml.etree.ElementTree as ET

from lrcluster import request, wait_for

PW = "correct horse"
ATOM = "{http://www.w3.org/2005/Atom}"


def bearer(token, extra=None):
    h = {"Authorization": "Bearer " + token}
    h.update(extra or {})
    return h


def after(r):
    return {"X-Min-Index": r.headers["x-raft-index"]}


def every(c, gw):
    """(name, function doing a request) for each node and the gateway."""
    out = [("node %d" % i, (lambda i: lambda *a, **k: c.req(i, *a, **k))(i)) for i in range(1, c.n + 1)]
    out.append(("gateway", lambda *a, **k: request(gw, *a, **k)))
    return out


def signup(c, i, name):
    r = c.req(i, "POST", "/api/v1/signup", {"username": name, "password": PW})
    assert r.status == 201, r.body
    return r.json()["token"], r


def q(s):
    return urllib.parse.quote(s, safe="")


def test_search_and_domains_on_every_node(make_cluster):
    c = make_cluster(3)
    c.start_all()
    leader = c.wait_leader()
    f = next(i for i in range(1, 4) if i != leader)
    gw = c.start_gateway()
    alice, _ = signup(c, f, "alice")
    posts = [
        {"title": "Raft consensus explained", "url": "https://raft.github.io/"},
        {"title": "A text post", "text": "This one mentions raft in passing, among other words."},
        {"title": "SQLite FTS5 notes", "url": "https://www.sqlite.org/fts5.html"},
        {"title": "Caf\u00e9 \u65e5\u672c\u8a9e <b>bold</b>", "url": "https://blog.example.com/cafe"},
        {"title": "NEAR AND OR NOT: title* ^start \"quoted\"", "url": "https://example.com/ops"},
        {"title": "Not a subdomain", "url": "https://badexample.com/x"},
    ]
    ids = []
    for p in posts:
        r = c.req(f, "POST", "/api/v1/links", p, bearer(alice))
        assert r.status == 201, r.body
        ids.append(r.json()["id"])
    last = r
    r = c.req(f, "DELETE", "/api/v1/links/%d" % ids[2], None, bearer(alice))
    assert r.status == 204
    last = r

    nasty = ['"', '""', '"unbalanced', "NEAR(", "NEAR(a b, 3)", "*", "title*", "-", "-title", "^", "^start",
             "title:near", "{title text}:and", "a OR b", "AND", "NOT", "(", ")", "+", ":", "'", "\\", "%",
             "\u2014", "\U0001F600", "rank:1", "link_fts:title", "* OR *", "x" * 3000, "raft " * 500,
             "\u00e9" * 1000, "caf\u00e9", "<script>"]
    for name, do in every(c, gw):
        r = do("GET", "/api/v1/search?q=raft", None, after(last))
        assert r.status == 200, (name, r.body)
        # Searched off the loop, on what the node committed: at least the write asked for.
        assert int(r.headers["x-raft-index"]) >= int(last.headers["x-raft-index"]), (name, r.headers)
        got = r.json()
        assert got["total"] == 2 and [l["id"] for l in got["links"]] == [ids[0], ids[1]], (name, got)
        assert set(got["links"][0]) >= {"id", "title", "url", "author", "created", "likes", "domain", "text"}
        # Deleted links are gone; domains are searched; diacritics folded.
        assert do("GET", "/api/v1/search?q=fts5", None, after(last)).json()["total"] == 0, name
        r = do("GET", "/api/v1/search?q=" + q("blog.example.com"), None, after(last))
        assert [l["id"] for l in r.json()["links"]] == [ids[3]], (name, r.body)
        assert do("GET", "/api/v1/search?q=cafe", None, after(last)).json()["total"] == 1, name
        # Operators are words.
        r = do("GET", "/api/v1/search?q=" + q("NEAR title*"), None, after(last))
        assert [l["id"] for l in r.json()["links"]] == [ids[4]], (name, r.body)
        for s in nasty:
            r = do("GET", "/api/v1/search?q=" + q(s), None, after(last))
            assert r.status == 200, (name, s[:40], r.status, r.body[:200])
            assert isinstance(r.json()["total"], int)
            r = do("GET", "/search?q=" + q(s), None, after(last))
            assert r.status == 200 and b"<script>" not in r.body, (name, s[:40], r.status)
        # Paging, bad parameters.
        r = do("GET", "/api/v1/search?q=raft&limit=1&offset=1", None, after(last))
        assert [l["id"] for l in r.json()["links"]] == [ids[1]] and r.json()["total"] == 2
        assert do("GET", "/api/v1/search?q=raft&limit=0").status == 400
        assert do("GET", "/api/v1/search?q=%zz").status == 400
        assert do("GET", "/api/v1/search").json() == {"links": [], "total": 0, "total_capped": False}
        assert do("POST", "/api/v1/search?q=x", {}).status == 405
        # The page: the form, the results, everything escaped.
        r = do("GET", "/search?q=" + q("caf\u00e9"), None, after(last))
        assert r.status == 200, (name, r.body)
        page = r.body.decode()
        assert 'name="q"' in page and "&lt;b&gt;bold&lt;/b&gt;" in page and "1 link found" in page
        assert "<b>bold</b>" not in page
        r = do("GET", "/search", None, after(last))
        assert r.status == 200 and 'name="q"' in r.body.decode()

        # By domain: the domain and its subdomains, newest first.
        r = do("GET", "/api/v1/links?domain=example.com", None, after(last))
        assert r.status == 200, (name, r.body)
        assert [l["id"] for l in r.json()["links"]] == [ids[4], ids[3]], (name, r.body)
        r = do("GET", "/api/v1/links?domain=WWW.Example.COM", None, after(last))
        assert [l["id"] for l in r.json()["links"]] == [ids[4], ids[3]], (name, r.body)
        r = do("GET", "/api/v1/links?domain=sqlite.org", None, after(last))
        assert r.json()["links"] == [], name  # deleted
        assert do("GET", "/api/v1/links?domain=").status == 400
        assert do("GET", "/api/v1/links?domain=a%2Fb").status == 400
        r = do("GET", "/from/example.com", None, after(last))
        assert r.status == 200, (name, r.body)
        page = r.body.decode()
        assert "NEAR AND OR NOT" in page and "Caf\u00e9" in page and "Not a subdomain" not in page
        assert do("GET", "/from/a%20b").status in (200, 404)


def parse_feed(body):
    root = ET.fromstring(body)
    assert root.tag == ATOM + "feed"
    for el in ("id", "title", "updated"):
        assert root.find(ATOM + el) is not None and root.find(ATOM + el).text, el
    entries = root.findall(ATOM + "entry")
    for e in entries:
        for el in ("id", "title", "updated"):
            assert e.find(ATOM + el) is not None and e.find(ATOM + el).text is not None, el
        assert e.find(ATOM + "link") is not None and e.find(ATOM + "link").get("href")
        assert e.find(ATOM + "author/" + ATOM + "name") is not None
    return root, entries


def test_feeds_are_valid_stable_and_cheap_to_poll(make_cluster):
    c = make_cluster(3)
    c.start_all()
    leader = c.wait_leader()
    gw = c.start_gateway()
    bob, _ = signup(c, leader, "bob")
    ids = []
    for i, p in enumerate([{"title": "First & <one>", "url": "https://one.example/"},
                           {"title": "Second", "text": "Text with \"quotes\" & ampersands"},
                           {"title": "Third", "url": "https://three.example/"}]):
        r = c.req(leader, "POST", "/api/v1/links", p, bearer(bob))
        assert r.status == 201, r.body
        ids.append(r.json()["id"])
    r = c.req(leader, "POST", "/api/v1/links/%d/comments" % ids[0], {"text": "A comment <b>"}, bearer(bob))
    assert r.status == 201
    comment = r.json()
    r = c.req(leader, "PATCH", "/api/v1/links/%d" % ids[1], {"title": "Second, edited"}, bearer(bob))
    assert r.status == 200
    edited = r.json()
    last = r

    feeds = ["/feed", "/user/bob/feed", "/link/%d/feed" % ids[0]]
    seen = {}
    for name, do in every(c, gw):
        for path in feeds:
            r = do("GET", path, None, after(last))
            assert r.status == 200, (name, path, r.body)
            assert r.headers["content-type"].startswith("application/atom+xml")
            root, entries = parse_feed(r.body)
            etag = r.headers["etag"]
            # Every node serves the same bytes, so the same ETag.
            assert seen.setdefault(path, (r.body, etag)) == (r.body, etag), (name, path)
            r2 = do("GET", path, None, dict(after(last), **{"If-None-Match": etag}))
            assert r2.status == 304 and r2.body == b"", (name, path, r2.status)
            assert do("GET", path, None, {"If-None-Match": '"other"'}).status == 200
    root, entries = parse_feed(seen["/feed"][0])
    assert [e.find(ATOM + "id").text for e in entries] == ["tag:linkraft,2026:link/%d" % i for i in reversed(ids)]
    titles = [e.find(ATOM + "title").text for e in entries]
    assert titles == ["Third", "Second, edited", "First & <one>"]
    # updated: an entry's last edit, else its creation; the feed's, the newest.
    upd = {e.find(ATOM + "id").text: e.find(ATOM + "updated").text for e in entries}
    assert upd["tag:linkraft,2026:link/%d" % ids[1]] == edited["edited"]
    assert root.find(ATOM + "updated").text == max(upd.values())
    content = entries[1].find(ATOM + "content")
    assert content is not None and content.text == 'Text with "quotes" & ampersands'
    root, entries = parse_feed(seen["/link/%d/feed" % ids[0]][0])
    assert [e.find(ATOM + "id").text for e in entries] == ["tag:linkraft,2026:comment/%d" % comment["id"]]
    assert entries[0].find(ATOM + "content").text == "A comment <b>"
    assert root.find(ATOM + "updated").text == comment["created"]
    root, entries = parse_feed(seen["/user/bob/feed"][0])
    assert root.find(ATOM + "id").text == "tag:linkraft,2026:user/bob" and len(entries) == 3
    assert c.req(leader, "GET", "/user/nobody/feed").status == 404
    assert c.req(leader, "GET", "/link/999/feed").status == 404

    # The same bytes after a restart; a new post changes the ETag.
    c.stop(2)
    c.start(2)
    wait_for("node 2 to catch up", lambda: c.req(2, "GET", "/feed", None, after(last)).status == 200)
    for path in feeds:
        r = c.req(2, "GET", path, None, after(last))
        assert (r.body, r.headers["etag"]) == seen[path], path
    r = c.req(leader, "POST", "/api/v1/links", {"title": "Fourth", "url": "https://four.example/"}, bearer(bob))
    assert r.status == 201
    r = request(gw, "GET", "/feed", None, dict(after(r), **{"If-None-Match": seen["/feed"][1]}))
    assert r.status == 200 and r.headers["etag"] != seen["/feed"][1]


def test_rate_limits_hold_on_every_node(make_cluster):
    c = make_cluster(3, rate_limits=True)
    c.start_all()
    leader = c.wait_leader()
    gw = c.start_gateway()
    carol, r = signup(c, leader, "carol")
    doers = every(c, gw)
    # A new account: 5 links an hour, whichever node each goes to.
    for n in range(5):
        name, do = doers[n % len(doers)]
        r = do("POST", "/api/v1/links", {"title": "Post %d" % n, "url": "https://r.example/%d" % n}, bearer(carol))
        assert r.status == 201, (name, r.status, r.body)
    link = r.json()["id"]
    for name, do in doers:
        r = do("POST", "/api/v1/links", {"title": "One more", "url": "https://r.example/more"}, bearer(carol))
        assert r.status == 429, (name, r.status, r.body)
        assert r.json()["error"] == "rate_limited"
        wait = int(r.headers["retry-after"])
        assert 3500 <= wait <= 3600, (name, wait)
    # Not written anywhere: the URL is still free.
    r = c.req(leader, "GET", "/api/v1/links?sort=new", None, after(r))
    assert "https://r.example/more" not in [l["url"] for l in r.json()["links"]]
    # Comments: one per 10 s for a new account.
    r = c.req(leader, "POST", "/api/v1/links/%d/comments" % link, {"text": "first"}, bearer(carol))
    assert r.status == 201, r.body
    for name, do in doers:
        r = do("POST", "/api/v1/links/%d/comments" % link, {"text": "second"}, bearer(carol))
        assert r.status == 429, (name, r.status, r.body)
        assert 1 <= int(r.headers["retry-after"]) <= 10
    # Another user is not held back by carol's rate.
    dave, _ = signup(c, leader, "dave")
    r = request(gw, "POST", "/api/v1/links", {"title": "Dave's", "url": "https://d.example/"}, bearer(dave))
    assert r.status == 201, r.body


def test_rate_limits_flag(make_cluster, tmp_path):
    c = make_cluster(1)
    r = c.cli("node", "--cluster", c.cluster_file, "--id", "1", "--data", str(tmp_path), "--rate-limits", "maybe")
    assert r.returncode == 2 and "--rate-limits" in r.stderr
    r = c.cli("node", "--help")
    assert "--rate-limits" in r.stdout
    # Off (the harness's default): one account posts as fast as it likes.
    c.start_all()
    c.wait_leader()
    erin, _ = signup(c, 1, "erin")
    for n in range(12):
        r = c.req(1, "POST", "/api/v1/links", {"title": "Fast %d" % n, "url": "https://f.example/%d" % n},
                  bearer(erin))
        assert r.status == 201, (n, r.body)


def test_flags_hide_a_link_from_hot_and_new_everywhere(make_cluster):
    c = make_cluster(3)
    c.start_all()
    leader = c.wait_leader()
    gw = c.start_gateway()
    doers = every(c, gw)
    owner, _ = signup(c, leader, "owner")
    tokens = [signup(c, 1 + n % 3, "flagger%d" % n)[0] for n in range(5)]
    r = c.req(leader, "POST", "/api/v1/links", {"title": "Buy now", "url": "https://spam.example/"}, bearer(owner))
    spam = r.json()["id"]
    r = c.req(leader, "POST", "/api/v1/links", {"title": "Fine", "url": "https://fine.example/"}, bearer(owner))
    fine = r.json()["id"]
    r = c.req(leader, "POST", "/api/v1/links/%d/comments" % fine, {"text": "hm"}, bearer(owner))
    comment = r.json()["id"]
    # Four flags, each through another node or the gateway; a repeat counts once.
    for n in range(4):
        name, do = doers[n % len(doers)]
        r = do("POST", "/api/v1/links/%d/flag" % spam, None, bearer(tokens[n]))
        assert r.status == 200 and r.json() == {"id": spam, "flags": n + 1, "flagged": True}, (name, r.body)
    r = c.req(2, "POST", "/api/v1/links/%d/flag" % spam, None, bearer(tokens[0]))
    assert r.json() == {"id": spam, "flags": 4, "flagged": True}
    for name, do in doers:
        ids = [l["id"] for l in do("GET", "/api/v1/links?sort=new", None, after(r)).json()["links"]]
        assert spam in ids, name
    r = request(gw, "POST", "/api/v1/links/%d/flag" % spam, None, bearer(tokens[4]))
    assert r.json()["flags"] == 5
    last = r
    for name, do in doers:
        for sort in ("new", "hot"):
            ids = [l["id"] for l in do("GET", "/api/v1/links?sort=" + sort, None, after(last)).json()["links"]]
            assert spam not in ids and fine in ids, (name, sort, ids)
        ids = [l["id"] for l in do("GET", "/api/v1/links?sort=top", None, after(last)).json()["links"]]
        assert spam in ids, name
        assert do("GET", "/api/v1/links/%d" % spam, None, after(last)).status == 200, name
        page = do("GET", "/link/%d" % spam, None, bearer(tokens[4], after(last))).body.decode()
        assert 'action="/link/%d/flag"' % spam in page and ">unflag<" in page, name
        assert "Buy now" not in do("GET", "/", None, after(last)).body.decode(), name
    # Undo; comments; errors.
    r = c.req(1, "DELETE", "/api/v1/links/%d/flag" % spam, None, bearer(tokens[4]))
    assert r.json() == {"id": spam, "flags": 4, "flagged": False}
    ids = [l["id"] for l in request(gw, "GET", "/api/v1/links?sort=new", None, after(r)).json()["links"]]
    assert spam in ids
    r = c.req(3, "POST", "/api/v1/comments/%d/flag" % comment, None, bearer(tokens[0]))
    assert r.json() == {"id": comment, "flags": 1, "flagged": True}, r.body
    r = c.req(3, "DELETE", "/api/v1/comments/%d/flag" % comment, None, bearer(tokens[0]))
    assert r.json() == {"id": comment, "flags": 0, "flagged": False}, r.body
    assert c.req(1, "POST", "/api/v1/links/%d/flag" % spam).status == 401
    assert c.req(1, "POST", "/api/v1/links/999/flag", None, bearer(owner)).status == 404
    assert c.req(1, "POST", "/api/v1/comments/999/flag", None, bearer(owner)).status == 404
    r = c.req(1, "GET", "/api/v1/links/%d/flag" % spam)
    assert r.status == 405 and "POST" in r.headers["allow"]


def test_moderators_bans_and_the_public_log(make_cluster):
    c = make_cluster(3)
    c.start_all()
    leader = c.wait_leader()
    f = next(i for i in range(1, 4) if i != leader)
    gw = c.start_gateway()
    doers = every(c, gw)
    mia, _ = signup(c, leader, "mia")
    spammer, _ = signup(c, f, "spammer")
    other, _ = signup(c, f, "other")
    r = c.req(f, "POST", "/api/v1/links", {"title": "Spam", "url": "https://spam.example/"}, bearer(spammer))
    spam = r.json()["id"]
    r = c.req(f, "POST", "/api/v1/links", {"title": "Keep", "url": "https://keep.example/"}, bearer(other))
    keep = r.json()["id"]
    r = c.req(f, "POST", "/api/v1/links/%d/comments" % keep, {"text": "rude words"}, bearer(spammer))
    rude = r.json()["id"]

    # Not a moderator yet: another's link is not hers to delete.
    r = c.req(f, "DELETE", "/api/v1/links/%d" % spam, {"reason": "spam"}, bearer(mia))
    assert r.status == 403, r.body
    assert c.cli("moderator", "add", "--cluster", c.cluster_file, "bad name!").returncode == 2
    # Granting is the operator's: not from a web page on this machine, not
    # through the public gateway (404, as for membership).
    r = c.req(leader, "PUT", "/api/v1/moderators/mia", headers={"Origin": "http://evil.example"})
    assert r.status == 403, r.body
    assert request(gw, "PUT", "/api/v1/moderators/mia").status == 404
    r = c.cli("moderator", "add", "--cluster", c.cluster_file, "nobody")
    assert r.returncode == 1 and "404" in r.stderr, (r.stdout, r.stderr)
    r = c.cli("moderator", "add", "--cluster", c.cluster_file, "Mia")
    assert r.returncode == 0, (r.stdout, r.stderr)

    r = c.req(f, "DELETE", "/api/v1/links/%d" % spam, {"reason": "spam <b>run</b>"}, bearer(mia))
    assert r.status == 204, r.body
    r = request(gw, "DELETE", "/api/v1/comments/%d" % rude, {"reason": "rude"}, bearer(mia, after(r)))
    assert r.status == 204, r.body
    for name, do in doers:
        assert do("GET", "/api/v1/links/%d" % spam, None, after(r)).status == 404, name
        assert do("GET", "/api/v1/links/%d/comments" % keep, None, after(r)).json()["comments"] == [], name

    # A ban ends the user's sessions everywhere and refuses their writes.
    r = c.req(leader, "POST", "/api/v1/users/spammer/ban", {"reason": "spam run"}, bearer(mia))
    assert r.status == 204, r.body
    for name, do in doers:
        assert do("GET", "/api/v1/me", None, bearer(spammer, after(r))).status == 401, name
    r = c.req(f, "POST", "/api/v1/login", {"username": "spammer", "password": PW})
    assert r.status == 200
    again = r.json()["token"]
    for name, do in doers:
        r = do("POST", "/api/v1/links", {"title": "Still", "url": "https://spam.example/%s" % name.replace(" ", "")},
               bearer(again))
        assert r.status == 403 and r.json()["error"] == "banned", (name, r.status, r.body)
        r = do("PUT", "/api/v1/links/%d/like" % keep, None, bearer(again))
        assert r.status == 403, (name, r.status)
    assert c.req(f, "POST", "/api/v1/users/mia/ban", {"reason": "x"}, bearer(other)).status == 403
    assert c.req(f, "POST", "/api/v1/users/nobody/ban", {"reason": "x"}, bearer(mia)).status == 404

    # The public log, newest first, on every node.
    r = c.req(leader, "DELETE", "/api/v1/users/spammer/ban", None, bearer(mia))
    assert r.status == 204, r.body
    last = r
    for name, do in doers:
        r = do("GET", "/api/v1/moderation", None, after(last))
        assert r.status == 200, (name, r.body)
        acts = r.json()["actions"]
        assert [(a["moderator"], a["action"], a["target"], a["reason"]) for a in acts] == [
            ("mia", "unban", "user/spammer", ""),
            ("mia", "ban", "user/spammer", "spam run"),
            ("mia", "delete_comment", "comment/%d" % rude, "rude"),
            ("mia", "delete_link", "link/%d" % spam, "spam <b>run</b>"),
            (None, "moderator_add", "user/mia", ""),
        ], (name, acts)
        assert all(a["created"].endswith("Z") for a in acts)
        page = do("GET", "/moderation", None, after(last)).body.decode()
        assert "spam &lt;b&gt;run&lt;/b&gt;" in page and "<b>run</b>" not in page, name
    r = c.req(f, "POST", "/api/v1/links", {"title": "Reformed", "url": "https://good.example/"}, bearer(again))
    assert r.status == 201, r.body
    # No longer a moderator: back to her own things only.
    assert c.cli("moderator", "remove", "--cluster", c.cluster_file, "mia").returncode == 0
    r = c.req(f, "DELETE", "/api/v1/links/%d" % keep, {"reason": "x"}, bearer(mia))
    assert r.status == 403, r.body
