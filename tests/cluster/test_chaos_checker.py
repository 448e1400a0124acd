"""The chaos suite's history checker (tests/chaos/chaos.py --check) catches
what it claims to. A history made by hand passes every check; the same
history with one violation planted in it (an acknowledged comment lost, a
write done twice, a stale read) fails the check for it, and the output
gives the seed to repeat and the slice of history that shows it. No
cluster: the checker judges a recorded history (ops, faults) and what the
nodes held after healing, as `chaos.py --record` writes them."""
import copy
import json
import os
import subprocess

from lrcluster import ROOT

CHAOS = os.path.join(ROOT, "tests", "chaos", "chaos.py")
LINCHECK = os.environ.get("LINCHECK_BIN", os.path.join(ROOT, "build", "chaos", "lincheck"))
RUN = "feedc0de"
SEED = 4242
URL1 = "https://chaos.example/%s/0/3" % RUN
URL2 = "https://chaos.example/%s/1/4" % RUN
TEXT0 = "comment %s 0 5" % RUN
TEXT1 = "comment %s 1 6" % RUN


def history():
    """Two clients, a pause of node 1 in the middle: sign-ups, a post each,
    a comment and a reply, likes and unlikes, a register written and read
    by both, session reads; and three nodes that hold all of it."""
    ops = []

    def op(client, kind, path, body=None, status=200, result=None, text=""):
        t = 10.0 + len(ops)  # a second apart: the slice shows only what is near
        ops.append({"client": client, "user": "u%d" % client, "op": kind, "path": path, "body": body, "key": None,
                    "invoke": t, "complete": t + 0.05, "status": status, "via": "gw", "index": len(ops) + 1,
                    "text": text, "result": result, "n": len(ops)})

    reg = "/api/v1/kv/%s-r0" % RUN
    op(0, "signup", "/api/v1/signup", {"username": "u0", "password": "pw"}, 201, {"token": "t0", "username": "u0"})
    op(1, "signup", "/api/v1/signup", {"username": "u1", "password": "pw"}, 201, {"token": "t1", "username": "u1"})
    op(0, "post", "/api/v1/links", {"title": "a", "url": URL1}, 201, {"id": 1})
    op(1, "post", "/api/v1/links", {"title": "b", "url": URL2}, 201, {"id": 2})
    op(0, "comment", "/api/v1/links/1/comments", {"text": TEXT0}, 201, {"id": 10})
    op(1, "comment", "/api/v1/links/1/comments", {"text": TEXT1, "parent": 10}, 201, {"id": 11})
    op(0, "like", "/api/v1/links/1/like")
    op(1, "like", "/api/v1/links/1/like")
    op(1, "unlike", "/api/v1/links/1/like")
    op(0, "clike", "/api/v1/comments/10/like")
    op(0, "kv-put", reg, "5")
    op(1, "kv-get", reg, text="5")
    op(1, "kv-put", reg, "7")
    op(0, "kv-get", reg, text="7")
    op(0, "read-own", "/api/v1/links/1")
    op(1, "me", "/api/v1/me")
    links = {URL1: [{"id": 1, "url": URL1, "likes": 1, "comments": 2}],
             URL2: [{"id": 2, "url": URL2, "likes": 0, "comments": 0}]}
    seen = {"ids": [1, 2, 3],
            "links": {str(i): copy.deepcopy(links) for i in (1, 2, 3)},
            "threads": {"%d,1" % i: [[10, None, TEXT0, 1], [11, 10, TEXT1, 0]] for i in (1, 2, 3)},
            "sessions": {"%d,%d" % (o["n"], i): [200, o["result"]["username"]]
                         for o in ops if o["op"] == "signup" for i in (1, 2, 3)},
            "lost": [], "member_changes": 0}
    return {"seed": SEED, "run_id": RUN, "ops": ops, "events": [[13.5, 16.0, "pause", "SIGSTOP 1"]], "seen": seen}


def judge(tmp_path, rec):
    assert os.path.exists(LINCHECK), "build the checker first: make build/chaos/lincheck"
    path = tmp_path / "history.json"
    path.write_text(json.dumps(rec))
    r = subprocess.run(["/usr/bin/python3", CHAOS, "--check", str(path)], capture_output=True, text=True,
                       timeout=60, env=dict(os.environ, LINCHECK_BIN=LINCHECK))
    return r.returncode, r.stdout + r.stderr


def failed_with(out, check, *slice_lines):
    """The check failed, nothing else did, the seed is given to repeat, and
    the slice shows the operations given."""
    fails = [line for line in out.splitlines() if line.startswith("  FAIL")]
    assert len(fails) == 1 and check in fails[0], out
    assert "repeat with --seed %d" % SEED in out, out
    for words in slice_lines:
        assert any(all(w in line for w in words) for line in out.splitlines()), (words, out)


def test_a_clean_history_passes(tmp_path):
    rc, out = judge(tmp_path, history())
    assert rc == 0, out
    assert "FAIL" not in out and out.rstrip().endswith(" passed, 0 failed"), out


def test_a_lost_acknowledged_comment_is_caught(tmp_path):
    rec = history()
    for i in (1, 2, 3):  # the reply, acknowledged, is on no node
        rec["seen"]["threads"]["%d,1" % i].pop()
    rc, out = judge(tmp_path, rec)
    assert rc == 1, out
    failed_with(out, "every acknowledged comment exactly once", ("history slice",),
                ("c1", "comment", "/api/v1/links/1/comments", "201"))


def test_a_write_done_twice_is_caught(tmp_path):
    rec = history()
    for i in (1, 2, 3):  # node 2's post there twice, under two ids
        rec["seen"]["links"][str(i)][URL2].append({"id": 3, "url": URL2, "likes": 0, "comments": 0})
    rc, out = judge(tmp_path, rec)
    assert rc == 1, out
    failed_with(out, "every acknowledged post exactly once", ("history slice",),
                ("c1", "post", "/api/v1/links ", "201"))


def test_a_stale_read_is_caught(tmp_path):
    rec = history()
    stale = rec["ops"][13]
    assert stale["op"] == "kv-get" and stale["text"] == "7"
    stale["text"] = "5"  # read after the write of 7 had been acknowledged
    rc, out = judge(tmp_path, rec)
    assert rc == 1, out
    failed_with(out, "linearizable reads", ("history slice",), ("c0", "kv-get", "-r0", "200 value=5"),
                ("c1", "kv-put", "-r0", "200 value=7"))
    # and only what is near: not the sign-ups at the start
    assert "history slice" in out and "signup" not in out.split("history slice", 1)[1], out
