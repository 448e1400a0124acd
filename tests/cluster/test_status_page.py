"""The /status page shows what the serving node knows of each member's
indices, and says so (issue 13: a follower showed bare dashes where the
leader knows each follower's match). On the leader every member's match is
a number (the followers' commit and applied indices are theirs: "not known
here"); on a follower its own row and the leader's show the lower bound
it can vouch for ("≥ its commit index"), the other follower's "not known
here", and a note says only the leader knows them all."""
import re

from lrcluster import wait_for


def cells(body, node_id):
    row = re.search(rb"<tr><td>%d(?: \(this\))?</td>(.*?)</tr>" % node_id, body, re.S).group(1)
    return [re.sub(rb"<[^>]+>", b"", c).decode() for c in re.findall(rb"<td[^>]*>(.*?)</td>", row)]


def test_status_page_shows_what_each_node_knows(make_cluster):
    c = make_cluster(3)
    c.start_all()
    leader = c.wait_leader()
    c.put(leader, "k", "v")
    target = c.applied(leader)
    wait_for("the followers to apply", lambda: all(c.applied(i) >= target for i in range(1, 4)))
    wait_for("the leader to know every match",
             lambda: all(m.get("match", 0) >= target for m in c.info(leader)["members"] if m["id"] != leader))
    r = c.get(leader, "/status")
    for i in range(1, 4):
        role, match, commit, applied = cells(r.body, i)
        assert re.fullmatch(r"\d+", match), (i, match)
        assert role == ("leader" if i == leader else "follower")
        if i != leader:  # a follower's own commit and applied only it knows
            assert commit == applied == "not known here", (commit, applied)
    assert b"\xe2\x80\x93</td>" not in r.body and b"Only the leader knows" not in r.body

    f, other = [i for i in range(1, 4) if i != leader]
    r = c.get(f, "/status")
    assert b"\xe2\x80\x93</td>" not in r.body, r.body  # no bare dashes
    own = c.info(f)["commit"]
    role, match, commit, applied = cells(r.body, f)
    assert match.startswith("\u2265") and int(match[1:].strip()) >= target and int(commit) == own, (match, commit)
    role, match, commit, applied = cells(r.body, leader)
    assert role == "leader" and match == "not known here" and commit.startswith("\u2265"), (match, commit)
    assert applied == "not known here"
    assert cells(r.body, other)[1:] == ["not known here"] * 3
    assert b"Only the leader knows" in r.body
