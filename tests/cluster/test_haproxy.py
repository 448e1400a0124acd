"""docs/haproxy.cfg, run for real against Debian's haproxy: reads reach
ready nodes, writes reach the leader, and the site survives the leader's
death behind it."""
import os
import shutil
import subprocess

import pytest

from lrcluster import ROOT, free_ports, request, wait_for

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


@pytest.mark.skipif(not os.path.exists(HAPROXY), reason="haproxy is not installed (scripts/deps.sh test installs it)")
def test_haproxy_config_from_docs(make_cluster):
    c = make_cluster(3)
    c.start_all()
    leader = c.wait_leader()
    with open(os.path.join(ROOT, "docs", "haproxy.cfg")) as f:
        cfg = f.read()
    port = free_ports(1)[0]
    cfg = cfg.replace("bind 127.0.0.1:8080", "bind 127.0.0.1:%d" % port)
    for i in (1, 2, 3):
        cfg = cfg.replace("127.0.0.1:800%d" % i, c.http[i])
    path = os.path.join(c.dir, "haproxy.cfg")
    with open(path, "w") as f:
        f.write(cfg)
    check = subprocess.run([HAPROXY, "-c", "-f", path], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    log = open(os.path.join(c.dir, "haproxy.log"), "wb")
    p = subprocess.Popen([HAPROXY, "-db", "-f", path], stdout=log, stderr=log)
    try:
        front = "127.0.0.1:%d" % port
        wait_for("writes through haproxy to reach the leader",
                 lambda: (lambda r: r.status == 200 and r.headers["x-served-by"] == str(leader))(
                     request(front, "PUT", "/api/v1/kv/h", body=b"1")))
        # The PUT was answered once the leader applied it; a follower may
        # apply it a moment later, and these reads carry no X-Min-Index.
        for i in (1, 2, 3):
            wait_for("node %d to apply h" % i, lambda i=i: c.kv(i, "h") == "1")
        served = set()
        for _ in range(60):
            r = request(front, "GET", "/api/v1/kv/h")
            assert r.status == 200 and r.body == b"1"
            served.add(r.headers["x-served-by"])
        assert len(served) >= 2, served
        c.kill(leader)
        new = c.wait_leader(exclude=(leader,))
        wait_for("writes through haproxy to reach the new leader",
                 lambda: request(front, "PUT", "/api/v1/kv/h2", body=b"2").status == 200, timeout=10)
        assert c.kv(new, "h2", consistency="linearizable") == "2"
    finally:
        p.terminate()
        p.wait(timeout=10)
        log.close()
