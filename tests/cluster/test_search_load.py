"""Searches must not stall the node (issue 14): a flood of full-text
searches on the leader of three nodes, over 100,000 links (a common word
costs tens of ms of FTS5 there), while another client writes.

A node has one event loop for Raft (ticks, heartbeats, votes) and every
request; a search run on it blocks all of that for as long as the query
takes, and with 32 of them queued the leader sent no heartbeat for seconds:
its followers elected another leader. The searches now run on worker
threads, each on a read-only connection of its own, so the condition
checked is that nothing else notices: no election (the term and the leader
stay) and a post by another client is acknowledged while searches are still
outstanding, and every search is answered (200, or 503 when the queue of
searches waiting for a worker is full).

The database is made by bench/search_db.c (`search_db cluster`: links
inserted by SQL, the index built in one pass, installed as every node's
snapshot), compiled here against the optimized libraries of `make`."""
import http.client
import json
import os
import subprocess
import tempfile
import threading
import time
import urllib.parse

from lrcluster import ROOT, request, wait_for

LINKS = 100000
FLOOD = 32  # connections searching at once
WORDS = ["the", "of", "the of", "to", "a", "in", "and", "for the", "how", "is a"]


def search_db_tool():
    out = os.path.join(tempfile.mkdtemp(prefix="linkraft-search-db-"), "search_db")
    libs = [os.path.join(ROOT, "build", "lib%s.a" % m) for m in ("node", "net", "store", "storage", "raft", "sys",
                                                                    "common")]
    subprocess.run(["cc", "-std=c11", "-O1", "-D_GNU_SOURCE", "-I" + os.path.join(ROOT, "include"),
                    "-I" + os.path.join(ROOT, "src"), "-o", out, os.path.join(ROOT, "bench", "search_db.c")] + libs +
                   ["-lsqlite3", "-lsodium", "-luv", "-lm"], check=True)
    return out


class Flood:
    """FLOOD threads, each a keep-alive connection sending searches back to
    back; counts answers by status and how many are in flight."""

    def __init__(self, addr):
        self.addr, self.stop = addr, threading.Event()
        self.lock = threading.Lock()
        self.in_flight, self.answers, self.errors = 0, {}, []
        self.threads = [threading.Thread(target=self.run, args=(k,), daemon=True) for k in range(FLOOD)]

    def run(self, k):
        host, port = self.addr.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        i = k
        while not self.stop.is_set():
            q = urllib.parse.quote(WORDS[i % len(WORDS)])
            i += 1
            with self.lock:
                self.in_flight += 1
            try:
                conn.request("GET", "/api/v1/search?q=%s&offset=%d" % (q, (i * 7) % 60))
                r = conn.getresponse()
                r.read()
                status = r.status
            except (OSError, http.client.HTTPException) as e:
                with self.lock:
                    self.errors.append(repr(e))
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=60)
                status = None
            with self.lock:
                self.in_flight -= 1
                if status is not None:
                    self.answers[status] = self.answers.get(status, 0) + 1

    def answered(self):
        with self.lock:
            return sum(self.answers.values())

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=90)


def test_a_search_flood_on_the_leader_costs_no_election(make_cluster):
    # Election timeouts of 300-600 ms: a loaded 2-core machine's scheduling
    # alone never looks like a dead leader; a loop blocked by searches did.
    c = make_cluster(3, node_args=["--election-ticks", "20"])
    out = subprocess.run([search_db_tool(), "cluster", c.cluster_file, str(LINKS)] +
                         [c.data_dir(i) for i in (1, 2, 3)], capture_output=True, text=True, timeout=120, check=True)
    index = int(out.stdout.split()[-1])
    c.start_all()
    leader = c.wait_leader(timeout=30)
    wait_for("every node to restore the links", lambda: all(c.applied(i) >= index for i in (1, 2, 3)), timeout=30)
    addr = c.http[leader]
    r = request(addr, "GET", "/api/v1/search?q=the&limit=1", timeout=10)
    assert r.status == 200 and r.json()["total"] >= 10000, r.body[:300]
    # A user of the other client, made before the flood.
    r = request(addr, "POST", "/api/v1/signup", json.dumps({"username": "writer", "password": "correct horse"}).encode(),
                {"Content-Type": "application/json"}, timeout=10)
    assert r.status == 201, r.body
    token = r.json()["token"]
    term = c.info(leader)["term"]

    with Flood(addr) as flood:
        wait_for("searches to be answered", lambda: flood.answered() >= 10, timeout=30)
        body = json.dumps({"title": "Written during a search flood", "url": "https://example.com/flood"}).encode()
        r = request(addr, "POST", "/api/v1/links", body,
                    {"Content-Type": "application/json", "Authorization": "Bearer " + token}, timeout=30)
        outstanding = flood.in_flight
        assert r.status == 201, (r.status, r.body)
        assert outstanding > 0, "the flood had no search in flight when the post was answered"
        # Keep it up for a while: several election timeouts' worth of searches.
        start = flood.answered()
        wait_for("more searches to be answered", lambda: flood.answered() >= start + 100, timeout=45)
        views = {i: c.info(i) for i in (1, 2, 3)}
    assert not flood.errors, flood.errors[:5]
    assert set(flood.answers) <= {200, 503}, flood.answers
    assert flood.answers.get(200, 0) >= 100, flood.answers
    for i, v in views.items():
        assert v["term"] == term and v["leader"] == leader, (i, v, "term %d leader %d before the flood" % (term, leader))
    assert c.leader() == leader
