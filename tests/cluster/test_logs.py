"""--log-format logfmt|json (issue 16, item 6): every line the nodes and the
gateway write, through elections, a leader's death, a refused peer and a
clean stop, parses as JSON (or as logfmt) with time, level, who and msg."""
import json
import os
import re
import socket

from lrcluster import request, wait_for

LOGFMT = re.compile(r'^time=\S+ level=(debug|info|warn|error) who="(?:[^"\\]|\\.)*" msg="(?:[^"\\]|\\.)*"$')


def lines_of(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8").splitlines()  # strict: every byte is UTF-8


def exercise(c, gw):
    """Elections, a write, garbage on a raft port, a leader killed, SIGTERM."""
    leader = c.wait_leader()
    r = request(gw, "POST", "/api/v1/signup", body={"username": "logger", "password": "correct horse"})
    assert r.status == 201, r.body
    victim = next(i for i in (1, 2, 3) if i != leader)
    host, port = c.raft[victim].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=2) as s:  # garbage: logged, with raw bytes
        s.sendall(b"\xff\xfe\x00garbage \"quoted\"\n\tand more" * 20)
        s.settimeout(2)
        try:
            s.recv(100)
        except OSError:
            pass
    c.kill(leader)
    c.wait_leader(exclude=(leader,))
    c.start(leader)
    wait_for("node %d back as a follower" % leader, lambda: c.get(leader, "/readyz").status == 200)
    for i in (1, 2, 3):
        assert c.stop(i) == 0
    c.kill_gateway(sig=15)


def test_json_logs_parse_line_by_line(make_cluster):
    c = make_cluster(3, node_args=["--log-format", "json"])
    c.start_all()
    gw = c.start_gateway(args=["--log-format", "json"])
    exercise(c, gw)
    seen = set()
    for name in ("node1.log", "node2.log", "node3.log", "gw.log"):
        lines = lines_of(os.path.join(c.dir, name))
        assert len(lines) >= 3, (name, lines)
        for line in lines:
            e = json.loads(line)  # every line, or the test fails here
            assert set(e) == {"time", "level", "who", "msg"}, line
            assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", e["time"]), line
            assert e["level"] in ("debug", "info", "warn", "error"), line
            seen.add(e["level"])
    assert "info" in seen, seen


def test_logfmt_logs_parse_line_by_line(make_cluster):
    c = make_cluster(3, node_args=["--log-format", "logfmt"])
    c.start_all()
    gw = c.start_gateway(args=["--log-format", "logfmt"])
    exercise(c, gw)
    for name in ("node1.log", "node2.log", "node3.log", "gw.log"):
        lines = lines_of(os.path.join(c.dir, name))
        assert len(lines) >= 3, (name, lines)
        for line in lines:
            assert LOGFMT.match(line), line


def test_bad_log_format_is_refused(make_cluster):
    c = make_cluster(1)
    r = c.cli("node", "--cluster", c.cluster_file, "--id", "1", "--data", c.data_dir(1), "--log-format", "xml")
    assert r.returncode == 2 and "text, logfmt or json" in r.stderr
    r = c.cli("gateway", "--cluster", c.cluster_file, "--listen", "127.0.0.1:1", "--log-format", "yaml")
    assert r.returncode == 2 and "text, logfmt or json" in r.stderr
