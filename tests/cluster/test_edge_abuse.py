"""test_edge_abuse.py — the web edge under abuse, against real processes
(issue 11, findings 5 and 6; SPEC §4 "Limits and bad input", §5 "Errors
and limits"): login and sign-up throttling that a client can neither dodge
with a forged X-Forwarded-For nor turn against another user, connection
slots that slow senders cannot hold, and the gateway's HTTPS.

Attackers connect from other loopback addresses (127.0.0.2 and up): the
cluster's own hosts (127.0.0.1 here) are trusted proxies, anyone else is a
client whose X-Forwarded-For means nothing."""
import http.client
import json
import os
import socket
import ssl
import subprocess
import time

from lrcluster import request, wait_for

PW = "correct horse battery"


def request_from(src, addr, method, path, body=None, headers=None, timeout=10.0):
    """One request from source address src; returns (status, headers, body)."""
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout, source_address=(src, 0))
    try:
        headers = dict(headers or {})
        if body is not None:
            body = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
    finally:
        conn.close()


def fnv_slot(key):
    """The slot of key in the old 4096-slot throttle table (FNV-1a)."""
    h = 2166136261
    for b in key.encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h % 4096


def colliding_name(name):
    want = fnv_slot(name)
    i = 0
    while fnv_slot("n%d" % i) != want or len("n%d" % i) < 3:
        i += 1
    return "n%d" % i


def test_login_guessing_is_stopped_and_cannot_lock_out_the_owner(make_cluster):
    c = make_cluster(3)
    c.start_all()
    leader = c.wait_leader()
    follower = next(i for i in range(1, 4) if i != leader)
    assert c.req(leader, "POST", "/api/v1/signup", {"username": "victim", "password": PW}).status == 201
    other = colliding_name("victim")

    # 27 wrong guesses from 127.0.0.2, each with a new forged X-Forwarded-For
    # and each followed by a guess at a name that shared the victim's slot in
    # the old table. Half go through a follower (which forwards them).
    statuses = []
    for i in range(27):
        node = c.http[leader if i % 2 else follower]
        forged = {"X-Forwarded-For": "10.9.%d.%d" % (i // 200, i % 200 + 1)}
        st, h, _ = request_from("127.0.0.2", node, "POST", "/api/v1/login",
                                {"username": "victim", "password": "guess %d" % i}, forged)
        statuses.append(st)
        if st == 429:
            assert int(h["retry-after"]) > 0
            break
        assert st == 401, (i, st)
        request_from("127.0.0.2", node, "POST", "/api/v1/login", {"username": other, "password": "guess guess"},
                     forged)
    assert statuses[-1] == 429 and len(statuses) == 11, statuses

    # Whatever the guesser does, the owner logs in from elsewhere.
    for i in range(12):
        request_from("127.0.0.2", c.http[leader], "POST", "/api/v1/login", {"username": "victim", "password": "nope %d" % i})
    st, _, body = request_from("127.0.0.3", c.http[follower], "POST", "/api/v1/login",
                               {"username": "victim", "password": PW})
    assert st == 200, body
    st, _, _ = request_from("127.0.0.2", c.http[leader], "POST", "/api/v1/login", {"username": "victim", "password": PW})
    assert st == 429


def test_signups_with_forged_forwarded_for_are_throttled(make_cluster):
    c = make_cluster(3)
    c.start_all()
    leader = c.wait_leader()
    gw = c.start_gateway()
    created = throttled = 0
    targets = [c.http[leader], gw] + [c.http[i] for i in range(1, 4) if i != leader]
    for i in range(387):
        forged = {"X-Forwarded-For": "%d.%d.%d.%d" % (1 + i % 200, i % 7, i % 13, 1 + i % 250),
                  "X-Forwarded-Proto": "https"}
        st, _, body = request_from("127.0.0.4", targets[i % len(targets)], "POST", "/api/v1/signup",
                                   {"username": "spam%d" % i, "password": PW}, forged)
        if st == 201:
            created += 1
        elif st == 429:
            throttled += 1
        else:
            raise AssertionError("sign-up %d answered %d: %r" % (i, st, body))
    # 30 attempts per address per minute, counted on the leader: the
    # spammer gets at most that many (plus a minute's worth if the test
    # straddled a window).
    assert created <= 60, (created, throttled)
    assert throttled >= 387 - 60
    # Another client is not affected.
    st, _, _ = request_from("127.0.0.5", gw, "POST", "/api/v1/signup", {"username": "honest", "password": PW})
    assert st == 201


def test_slow_senders_cannot_hold_every_slot(make_cluster):
    c = make_cluster(3)
    c.start_all()
    c.wait_leader()
    gw = c.start_gateway(args=["--max-connections", "200"])
    host, port = gw.rsplit(":", 1)
    # 304 connections (38 from each of 8 addresses, under the per-address
    # limit) announce a 60 KB body and send one byte of it.
    slow = []
    for i in range(304):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.%d" % (10 + i % 8), 0))
        s.settimeout(5)
        try:
            s.connect((host, int(port)))
            s.sendall(b"POST /api/v1/links HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 60000\r\n\r\n{")
        except OSError:
            pass  # turned away at once: that is allowed too
        slow.append(s)
    try:
        # Everyone else still gets in, at the first attempt.
        st, _, body = request_from("127.0.0.30", gw, "GET", "/api/v1/links", timeout=5)
        assert st == 200, body

        # And the trickle is cut off (below the minimum body rate) well
        # before the 30 s body timeout.
        def all_closed():
            for s in slow:
                if s.fileno() < 0:
                    continue
                s.setblocking(False)
                try:
                    if s.recv(4096) == b"":
                        s.close()
                except BlockingIOError:
                    return False
                except OSError:
                    s.close()
            return True
        wait_for("every slow sender to be cut off", all_closed, timeout=15, interval=0.2)
    finally:
        for s in slow:
            s.close()
