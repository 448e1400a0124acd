"""The pages of SPEC §5 "Finding things" and "Abuse and moderation", as a
browser without JavaScript uses them, on a follower and through the
gateway: a moderator deletes another's link (the form on its page) and
comment (its own form page) with a reason, bans and unbans a user from the
user's page; a user flags a link and a comment (from its row in the
thread); each action ends with a one-time message;
a form's error is tied to its reason field (aria-invalid, aria-describedby);
non-moderators get no such forms and a 403; the header's search box, the
domains' /from/ links and the footer's moderation log and feed."""
import re
import urllib.parse

from lrcluster import request

PW = "correct horse"


class Browser:
    """Cookies and forms against one address (a node or the gateway)."""

    def __init__(self, addr):
        self.addr, self.jar = addr, {}

    def go(self, method, path, form=None):
        headers = {"Cookie": "; ".join("%s=%s" % kv for kv in self.jar.items())}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = "http://" + self.addr
        r = request(self.addr, method, path, body, headers, timeout=10)
        for part in r.headers.get("set-cookie", "").split("\n"):
            m = re.match(r"\s*(lr_\w+)=([^;]*)", part)
            if m:
                if m.group(2):
                    self.jar[m.group(1)] = m.group(2)
                else:
                    self.jar.pop(m.group(1), None)
        return r

    def csrf(self, path="/submit"):
        r = self.go("GET", path)
        return re.search(rb'name="csrf" value="([0-9a-f]+)"', r.body).group(1).decode()

    def post(self, path, form, csrf_from="/submit"):
        return self.go("POST", path, dict(form, csrf=self.csrf(csrf_from)))

    def follow(self, r):
        assert r.status == 303, (r.status, r.body[:300])
        return self.go("GET", r.headers["location"])


def flash(r):
    m = re.search(rb'<p class="flash" role="status">([^<]*)</p>', r.body)
    return m.group(1).decode() if m else None


def reason_tied(body):
    """The reason field is marked invalid and described by the error shown."""
    field = re.search(rb'<(?:textarea|input) id="reason"[^>]*>', body).group(0)
    return (b'aria-invalid="true"' in field and b'aria-describedby="reason-err"' in field and
            re.search(rb'<p class="err" role="alert" id="reason-err">[^<]+</p>', body) is not None)


def signup(b, name):
    r = b.post("/signup", {"username": name, "password": PW}, "/signup")
    assert r.status == 303, r.body[:300]


def test_moderation_flags_and_finding_on_pages(make_cluster):
    c = make_cluster(3)
    c.start_all()
    leader = c.wait_leader()
    f = next(i for i in range(1, 4) if i != leader)
    gw = c.start_gateway()
    bob, mia, erin = Browser(c.http[f]), Browser(gw), Browser(c.http[leader])
    mia_f = Browser(c.http[f])  # the moderator again, straight to a follower
    signup(bob, "bob")
    signup(mia, "mia")
    signup(erin, "erin")
    mia_f.jar = mia.jar  # one browser, its requests to another address
    ids = []
    for title, url in (("Spam spam spam", "https://spam.example/x"), ("A useful post", "https://blog.useful.example/p")):
        r = bob.post("/submit", {"title": title, "url": url})
        assert r.status == 303 and r.headers["location"].startswith("/link/"), r.body[:300]
        ids.append(int(r.headers["location"].split("/")[2].split("#")[0]))
    spam, useful = ids
    r = bob.post("/link/%d/comment" % useful, {"text": "a rude comment"}, "/link/%d" % useful)
    assert r.status == 303, r.body[:300]
    cid = int(re.search(r"#c(\d+)", r.headers["location"]).group(1))

    # Finding: the header's search box, the row's domain, the footer.
    r = erin.go("GET", "/")
    assert re.search(rb'<form class="hs" method="get" action="/search" role="search"[^>]*><input type="search" name="q"',
                     r.body)
    assert b'href="/from/blog.useful.example"' in r.body
    assert b'<a href="/moderation">moderation log</a>' in r.body and b'href="/feed"' in r.body
    r = erin.go("GET", "/search?q=useful")
    assert r.status == 200 and b"A useful post" in r.body and b"Spam spam" not in r.body
    r = erin.go("GET", "/from/useful.example")
    assert r.status == 200 and b"A useful post" in r.body

    # Not a moderator: no forms, and the form pages say 403.
    r = mia.go("GET", "/link/%d" % spam)
    assert b'class="mod"' not in r.body
    assert mia.go("GET", "/link/%d/delete" % spam).status == 403
    assert mia.go("GET", "/user/bob/ban").status == 403
    assert mia.go("GET", "/user/bob").body.count(b'/ban"') == 0
    assert c.cli("moderator", "add", "--cluster", c.cluster_file, "mia").returncode == 0

    # A moderator deletes another's link from its page, with a reason.
    r = mia.go("GET", "/link/%d" % spam)
    assert re.search(rb'<form method="post" action="/link/%d/delete" class="mod">' % spam, r.body), r.body[-1500:]
    assert re.search(rb'<label for="reason">Reason</label><input id="reason" name="reason"', r.body)
    for bad, why in (("", b"Give a reason"), ("x" * 2100, b"at most 2000")):
        r = mia.post("/link/%d/delete" % spam, {"reason": bad}, "/link/%d" % spam)
        assert r.status == 400 and reason_tied(r.body) and why in r.body, (r.status, r.body[-1500:])
    r = mia.post("/link/%d/delete" % spam, {"reason": "spam: the same link every minute"}, "/link/%d" % spam)
    assert r.headers["location"] == "/moderation"
    r = mia.follow(r)
    assert flash(r) and flash(r).startswith("Deleted.")
    assert b"delete_link" in r.body and b"spam: the same link every minute" in r.body
    assert flash(mia.go("GET", "/moderation")) is None  # once
    assert mia.go("GET", "/link/%d" % spam).status == 404

    # ... and another's comment, from its own form page.
    r = mia.go("GET", "/link/%d" % useful)
    assert b"/comment/%d/delete>delete</a>" % cid in r.body
    r = mia.go("GET", "/comment/%d/delete" % cid)
    assert r.status == 200 and b"a rude comment" in r.body and b'<textarea id="reason"' in r.body
    r = mia.post("/comment/%d/delete" % cid, {"reason": ""}, "/comment/%d/delete" % cid)
    assert r.status == 400 and reason_tied(r.body)
    r = mia.follow(mia.post("/comment/%d/delete" % cid, {"reason": "rude"}, "/comment/%d/delete" % cid))
    assert flash(r).startswith("Deleted.") and b"delete_comment" in r.body

    # A flag, one per user, from the link's page, on a node and the gateway.
    for who in (erin, mia):
        r = who.go("GET", "/link/%d" % useful)
        assert b'action="/link/%d/flag"' % useful in r.body and b">flag</button>" in r.body
        r = who.follow(who.post("/link/%d/flag" % useful, {}, "/link/%d" % useful))
        assert flash(r).startswith("Your flag is counted") and b">unflag</button>" in r.body
    r = erin.follow(erin.post("/link/%d/flag" % useful, {}, "/link/%d" % useful))
    assert flash(r) == "Your flag is taken back." and b">flag</button>" in r.body

    # ... and a comment, from its row in the thread: back to the row, once.
    r = bob.post("/link/%d/comment" % useful, {"text": "buy watches"}, "/link/%d" % useful)
    assert r.status == 303, r.body[:300]
    c2 = int(re.search(r"#c(\d+)", r.headers["location"]).group(1))
    form = b'<form method=post action=/comment/%d/flag class=like>' % c2
    assert form not in bob.go("GET", "/link/%d" % useful).body  # not on one's own comment

    def row(body):
        return re.search(rb"<li id=c%d>.*?</div>" % c2, body, re.S).group(0)

    for who in (erin, mia):
        r = who.go("GET", "/link/%d" % useful)
        assert form in row(r.body) and b">flag</button>" in row(r.body), row(r.body)
        r = who.post("/comment/%d/flag" % c2, {}, "/link/%d" % useful)
        assert r.headers["location"] == "/link/%d#c%d" % (useful, c2), r.headers
        r = who.follow(r)
        assert flash(r).startswith("Your flag on the comment is counted") and b">unflag</button>" in row(r.body)
        assert flash(who.go("GET", "/link/%d" % useful)) is None  # once
    r = erin.follow(erin.post("/comment/%d/flag" % c2, {}, "/link/%d" % useful))
    assert flash(r) == "Your flag is taken back." and b">flag</button>" in row(r.body)
    assert b">unflag</button>" in row(mia.go("GET", "/link/%d" % useful).body)  # one flag per user
    r = request(c.http[f], "DELETE", "/api/v1/comments/%d/flag" % c2, None,
                {"Authorization": "Bearer " + mia.jar["lr_session"]}, timeout=10)
    assert r.status == 200 and b'"flags":0' in r.body, r.body  # mia's was the one left

    # A ban from the user's page, straight to a follower; bob is logged out.
    assert b">settings<" in bob.go("GET", "/").body
    r = mia_f.go("GET", "/user/bob")
    assert re.search(rb'<form method="post" action="/user/bob/ban" class="mod">', r.body)
    r = mia_f.post("/user/bob/ban", {"do": "ban", "reason": " "}, "/user/bob")
    assert r.status == 400 and reason_tied(r.body) and b"<h1>Ban bob</h1>" in r.body
    r = mia_f.post("/user/bob/ban", {"do": "ban", "reason": "spammer"}, "/user/bob")
    assert r.headers["location"] == "/user/bob"
    r = mia_f.follow(r)
    assert flash(r).startswith("The user is banned") and b"Banned by the site's moderators" in r.body
    assert b'value="unban"' in r.body and b">lift the ban</button>" in r.body
    assert b">settings<" not in bob.go("GET", "/").body  # the session ended
    # ... and lifted through the gateway (a reason is optional then).
    r = mia.follow(mia.post("/user/bob/ban", {"do": "unban", "reason": ""}, "/user/bob"))
    assert flash(r) == "The ban is lifted." and b"Banned by" not in r.body
    r = mia.go("GET", "/moderation")
    acts = re.findall(rb"<td>(ban|unban|delete_link|delete_comment)</td>", r.body)
    assert acts == [b"unban", b"ban", b"delete_comment", b"delete_link"], acts
    # A moderator's own page has no ban form for herself.
    assert b'action="/user/mia/ban"' not in mia.go("GET", "/user/mia").body
