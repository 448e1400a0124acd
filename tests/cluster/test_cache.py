"""docs/nginx-cache.conf, run for real against Debian's nginx in front of a
gateway and three nodes: a page a visitor without a session reads is
served from nginx's cache (X-Cache-Status: HIT) and sets no cookie; a
logged-in user never gets a cached page nor anyone's cookie; a new post
shows up once the page's s-maxage has passed; an expired page is
revalidated with If-None-Match (the node answers 304)."""
import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from lrcluster import ROOT, free_ports, request, wait_for

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CACHE_SECONDS = 2


def nginx_conf(d, gateway, port):
    """docs/nginx-cache.conf with this test's paths and addresses, inside a
    main configuration of its own (pid, logs and temp paths in d, which
    nginx's workers can enter when it runs as root: they are `nobody`)."""
    with open(os.path.join(ROOT, "docs", "nginx-cache.conf")) as f:
        site = f.read()
    cache = os.path.join(d, "nginx-cache")
    for old, new in (("/var/cache/nginx/linkraft", cache), ("server 127.0.0.1:8000;", "server %s;" % gateway),
                     ("listen 127.0.0.1:8080;", "listen 127.0.0.1:%d;" % port)):
        assert old in site, old
        site = site.replace(old, new)
    with open(os.path.join(d, "linkraft-nginx.conf"), "w") as f:
        f.write(site)
    main = """worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {d}/nginx-body; proxy_temp_path {d}/nginx-proxy; fastcgi_temp_path {d}/nginx-fastcgi;
  uwsgi_temp_path {d}/nginx-uwsgi; scgi_temp_path {d}/nginx-scgi;
  include {d}/linkraft-nginx.conf;
}}
""".format(d=d)
    path = os.path.join(d, "nginx.conf")
    with open(path, "w") as f:
        f.write(main)
    return path


def signup(front, name):
    """Signs up through the cache; returns the session cookie's value."""
    r = request(front, "POST", "/api/v1/signup", body={"username": name, "password": "correct horse"})
    assert r.status == 201, r.body
    m = re.search(r"lr_session=([0-9a-f]+)", r.headers["set-cookie"])
    assert m, r.headers
    return m.group(1), r.json()["token"]


@pytest.mark.skipif(not os.path.exists(NGINX), reason="nginx is not installed (scripts/deps.sh test installs it)")
def test_nginx_cache_from_docs(make_cluster):
    c = make_cluster(3, node_args=["--cache-seconds", str(CACHE_SECONDS)])
    c.start_all()
    c.wait_leader()
    gw = c.start_gateway()
    port = free_ports(1)[0]
    d = tempfile.mkdtemp(prefix="linkraft-nginx-")
    os.chmod(d, 0o755)
    conf = nginx_conf(d, gw, port)
    check = subprocess.run([NGINX, "-t", "-c", conf, "-p", d, "-g", "daemon off;"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    log = open(os.path.join(d, "nginx.log"), "wb")
    p = subprocess.Popen([NGINX, "-c", conf, "-p", d, "-g", "daemon off;"], stdout=log, stderr=log)
    try:
        front = "127.0.0.1:%d" % port
        wait_for("nginx to serve", lambda: p.poll() is None and request(front, "GET", "/healthz").status == 200)
        alice, alice_token = signup(front, "alice")
        bob, _ = signup(front, "bob")
        r = request(front, "POST", "/api/v1/links", body={"title": "First of all", "url": "https://a.example/1"},
                    headers={"Authorization": "Bearer " + alice_token})
        assert r.status == 201, r.body
        index = r.headers["x-raft-index"]

        # A visitor without a session: the page is stored, then served from
        # the cache, and no answer sets a cookie. (Any node may serve the
        # first miss: wait until the one that did had the post.)
        def anonymous_hit(path):
            r = request(front, "GET", path)
            assert r.status == 200 and "set-cookie" not in r.headers, r.headers
            return r if r.headers.get("x-cache-status") == "HIT" and b"First of all" in r.body else None
        for path in ("/", "/new", "/link/1", "/api/v1/links", "/api/v1/links?sort=new"):
            r = wait_for("%s to be served from the cache" % path, lambda path=path: anonymous_hit(path))
            assert "s-maxage=%d" % CACHE_SECONDS in r.headers["cache-control"], r.headers
            assert r.headers.get("etag", "").startswith('W/"'), r.headers
        # A HIT is nginx's copy: nginx answers the visitor's If-None-Match itself.
        etag = request(front, "GET", "/").headers["etag"]
        assert request(front, "GET", "/", headers={"If-None-Match": etag}).status in (200, 304)

        # A logged-in user never gets the cached page, nor anyone's cookie:
        # their own page (their name on it), not stored, no Set-Cookie.
        for _ in range(3):
            r = request(front, "GET", "/", headers={"Cookie": "lr_session=" + bob})
            assert r.status == 200 and b"bob" in r.body and b"alice</a><a href=\"/settings\"" not in r.body
            assert r.headers.get("x-cache-status") != "HIT", r.headers
            assert "no-store" in r.headers["cache-control"] and "set-cookie" not in r.headers, r.headers
        # ...and their page is not left for the next anonymous visitor.
        r = request(front, "GET", "/")
        assert b"bob" not in r.body and b"log in" in r.body
        # The login form carries the visitor's CSRF token with its cookie: never stored.
        for _ in range(2):
            r = request(front, "GET", "/login")
            assert r.status == 200 and "lr_csrf=" in r.headers.get("set-cookie", ""), r.headers
            assert r.headers.get("x-cache-status") != "HIT", r.headers

        # A new post: the cached page does not have it yet, and it shows up
        # once s-maxage has passed (nginx asks the cluster again).
        wait_for("a fresh copy of /new in the cache", lambda: anonymous_hit("/new"))
        r = request(front, "POST", "/api/v1/links", body={"title": "Second thoughts", "url": "https://a.example/2"},
                    headers={"Authorization": "Bearer " + alice_token})
        assert r.status == 201, r.body
        wait_for("the new post on /new through the cache",
                 lambda: b"Second thoughts" in request(front, "GET", "/new").body, timeout=CACHE_SECONDS + 8)

        # Unchanged pages are revalidated: nginx sends If-None-Match and the
        # node answers 304 without the body.
        before = sum(c.metric(i, "linkraft_site_not_modified_total") for i in (1, 2, 3))
        wait_for("an expired page revalidated with a 304",
                 lambda: request(front, "GET", "/link/1").headers.get("x-cache-status") == "REVALIDATED",
                 timeout=CACHE_SECONDS + 8, interval=0.2)
        assert sum(c.metric(i, "linkraft_site_not_modified_total") for i in (1, 2, 3)) > before
        assert int(index) > 0
    except Exception:
        with open(os.path.join(d, "nginx-error.log"), errors="replace") as f:
            print("---- nginx error log ----\n" + f.read()[-4000:])
        raise
    finally:
        p.terminate()
        p.wait(timeout=10)
        log.close()
        shutil.rmtree(d, ignore_errors=True)


def test_validators_and_304_through_the_gateway(make_cluster):
    """The gateway passes If-None-Match to the node and its 304 back."""
    c = make_cluster(3)
    c.start_all()
    c.wait_leader()
    gw = c.start_gateway()
    r = request(gw, "POST", "/api/v1/signup", body={"username": "carol", "password": "correct horse"})
    assert r.status == 201
    token = r.json()["token"]
    r = request(gw, "POST", "/api/v1/links", body={"title": "Validated", "url": "https://v.example/"},
                headers={"Authorization": "Bearer " + token})
    assert r.status == 201
    idx = r.headers["x-raft-index"]
    for path in ("/new", "/api/v1/links?sort=new"):
        r = request(gw, "GET", path, headers={"X-Min-Index": idx})
        assert r.status == 200 and b"Validated" in r.body
        etag = r.headers["etag"]
        # Every node renders the same bytes, so whichever serves it knows the tag.
        for _ in range(6):
            r = request(gw, "GET", path, headers={"If-None-Match": etag, "X-Min-Index": idx})
            assert r.status == 304 and r.body == b"" and r.headers["etag"] == etag, (r.status, r.headers)
    # With a session: private, no validator, never 304.
    r = request(gw, "GET", "/api/v1/links", headers={"Authorization": "Bearer " + token, "If-None-Match": "*"})
    assert r.status == 200 and r.headers["cache-control"] == "private, no-store" and "etag" not in r.headers
    json.loads(r.body)
