"""netns.py — each node its own host: a network namespace with one veth
into a bridge in the root namespace (where the gateway and the clients run).
Links between nodes are cut with nftables rules inside the receiving node's
namespace (silent drops, never resets), so any pattern is expressible:
symmetric, one-way, bridge (one node sees both sides), flapping.

Needs root, iproute2 and nftables. Names carry a tag unique to the run, and
close() removes everything it made, even after a failure."""
import os
import random
import subprocess


def sh(*args, check=True, input=None):
    r = subprocess.run(list(args), capture_output=True, text=True, input=input)
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(args), r.returncode, r.stderr.strip()))
    return r


def available():
    """None if namespaces and nftables can be used here, else why not."""
    if os.geteuid() != 0:
        return "needs root (ip netns, nft)"
    for tool in ("ip", "nft"):
        if sh("sh", "-c", "command -v " + tool, check=False).returncode != 0:
            return "needs %s (sh scripts/deps.sh chaos)" % tool
    return None


class Net:
    def __init__(self, ids):
        self.tag = "%x" % (os.getpid() & 0xffff)
        used = sh("ip", "-4", "-o", "addr").stdout
        while True:
            self.prefix = "10.%d.%d" % (random.randint(100, 250), random.randint(0, 255))
            if self.prefix + "." not in used:
                break
        self.bridge = "lrb" + self.tag
        self.ids = list(ids)
        self.made_ns, self.made_links = [], []
        try:
            sh("ip", "link", "add", self.bridge, "type", "bridge")
            self.made_links.append(self.bridge)
            sh("ip", "addr", "add", self.prefix + ".1/24", "dev", self.bridge)
            sh("ip", "link", "set", self.bridge, "up")
            for i in self.ids:
                self.add_host(i)
        except Exception:
            self.close()
            raise

    def ns(self, i):
        return "lr%sn%d" % (self.tag, i)

    def ip(self, i):
        return "%s.%d" % (self.prefix, 10 + i)

    def add_host(self, i):
        ns, host, peer = self.ns(i), "lr%sh%d" % (self.tag, i), "lr%sp%d" % (self.tag, i)
        sh("ip", "netns", "add", ns)
        self.made_ns.append(ns)
        sh("ip", "link", "add", host, "type", "veth", "peer", "name", peer)
        self.made_links.append(host)
        sh("ip", "link", "set", peer, "netns", ns)
        sh("ip", "link", "set", host, "master", self.bridge)
        sh("ip", "link", "set", host, "up")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", peer, "name", "eth0")
        sh("ip", "netns", "exec", ns, "ip", "addr", "add", self.ip(i) + "/24", "dev", "eth0")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up")
        sh("ip", "netns", "exec", ns, "nft", "-f", "-", input=(
            "table inet chaos {\n"
            "  chain input { type filter hook input priority 0; policy accept; }\n"
            "}\n"))

    def wrap(self, i, argv):
        """argv run as host i."""
        return ["ip", "netns", "exec", self.ns(i)] + list(argv)

    # ---- Cutting links -------------------------------------------------------

    def drop(self, src, dst):
        """Packets from node src to node dst are lost (one way)."""
        sh("ip", "netns", "exec", self.ns(dst), "nft", "add", "rule", "inet", "chaos", "input",
           "ip", "saddr", self.ip(src), "drop")

    def cut(self, a, b):
        self.drop(a, b)
        self.drop(b, a)

    def partition(self, groups):
        """Nodes in different groups cannot talk; within a group they can."""
        for g in groups:
            for h in groups:
                if g is not h:
                    for a in g:
                        for b in h:
                            self.drop(a, b)

    def heal(self, ids=None):
        for i in ids or self.ids:
            sh("ip", "netns", "exec", self.ns(i), "nft", "flush", "chain", "inet", "chaos", "input")

    def close(self):
        for name in reversed(self.made_links):
            sh("ip", "link", "del", name, check=False)
        for ns in reversed(self.made_ns):
            sh("ip", "netns", "del", ns, check=False)
        self.made_links, self.made_ns = [], []
