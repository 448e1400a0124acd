"""Installing (issue 16, item 6): `make install` with PREFIX and DESTDIR, a
man-page-like --help for every command whose defaults are the code's, and
the example systemd units of docs/ passing `systemd-analyze verify` against
the installed binary."""
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from lrcluster import BINARY, ROOT

COMMANDS = ("node", "gateway", "demo", "status", "member", "transfer-leader", "moderator")
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


def make_install(*args):
    """`make install` of the binary under test (INSTALL_BIN), nothing rebuilt."""
    r = subprocess.run(["make", "-s", "-C", ROOT, "INSTALL_BIN=" + BINARY] + list(args), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def test_make_install_with_prefix_and_destdir():
    d = tempfile.mkdtemp(prefix="linkraft-install-")
    try:
        make_install("install", "PREFIX=/usr", "DESTDIR=" + d)
        binary = os.path.join(d, "usr/bin/linkraft")
        assert os.access(binary, os.X_OK)
        assert subprocess.run([binary, "version"], capture_output=True, text=True).stdout.startswith("linkraft ")
        docs = os.path.join(d, "usr/share/doc/linkraft")
        for name in ("README.md", "linkraft-node@.service", "linkraft-gateway.service", "nginx-cache.conf",
                     "haproxy.cfg", "metrics.md"):
            assert os.path.isfile(os.path.join(docs, name)), name
        # The units name the binary where this install put it (without DESTDIR: the target system's path).
        with open(os.path.join(docs, "linkraft-node@.service")) as f:
            unit = f.read()
        assert "ExecStart=/usr/bin/linkraft node " in unit and d not in unit
        make_install("uninstall", "PREFIX=/usr", "DESTDIR=" + d)
        assert not os.path.exists(binary) and not os.path.exists(docs)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def long_options(source, start=None):
    """The long options of a getopt table in a src/cli file (after `start`)."""
    with open(os.path.join(ROOT, "src", "cli", source)) as f:
        text = f.read()
    if start:
        text = text[text.index(start):]
    table = text[text.index("struct option longopts[]"):]
    table = table[:table.index("{ 0, 0, 0, 0 }")]
    return re.findall(r'\{ "([a-z-]+)",', table)


def help_of(cmd):
    r = subprocess.run([BINARY, cmd, "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and r.stderr == "", (cmd, r.returncode, r.stderr)
    return r.stdout


@pytest.mark.parametrize("cmd", COMMANDS)
def test_help_reads_like_a_man_page(cmd):
    text = help_of(cmd)
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXAMPLES", "EXIT STATUS"):
        assert re.search(r"^%s$" % section, text, re.M), (cmd, section)
    assert "linkraft %s" % cmd in text
    assert max(len(line) for line in text.splitlines()) <= 100, cmd
    sources = {"node": ("cmd_node.c", None), "gateway": ("cmd_gateway.c", None), "demo": ("cmd_demo.c", None),
               "status": ("cmd_admin.c", None)}
    if cmd in sources:
        options = long_options(*sources[cmd])
        if cmd == "status":  # parse_admin's table serves every admin command
            options = ["cluster", "secret-file", "help"]
        for opt in options:
            assert "--" + opt in text, (cmd, opt)


def test_node_help_defaults_are_the_codes():
    """Each default the node's help prints is the one node_options_default sets."""
    with open(os.path.join(ROOT, "src", "node", "node.c")) as f:
        src = f.read()
    defaults = src[src.index("void node_options_default"):]
    defaults = defaults[:defaults.index("}\n")]
    text = help_of("node")
    for field, opt in (("tick_ms", "tick-ms"), ("election_ticks", "election-ticks"),
                       ("heartbeat_ticks", "heartbeat-ticks"), ("snapshot_entries", "snapshot-entries"),
                       ("trailing_entries", "trailing-entries")):
        value = re.search(r"\.%s = (\d+)" % field, defaults).group(1)
        block = text[text.index("--" + opt):]
        block = block[:block.index("\n    --", 1)]
        assert "(default %s)" % value in block, (opt, value, block)


@pytest.mark.skipif(not SYSTEMD_ANALYZE, reason="systemd-analyze is not installed: the units are not verified")
def test_systemd_units_verify():
    d = tempfile.mkdtemp(prefix="linkraft-units-")
    try:
        prefix = os.path.join(d, "prefix")
        make_install("install", "PREFIX=" + prefix)
        docs = os.path.join(prefix, "share/doc/linkraft")
        for unit in ("linkraft-gateway.service", "linkraft-node@1.service"):
            r = subprocess.run([SYSTEMD_ANALYZE, "verify", os.path.join(docs, unit)], capture_output=True, text=True,
                               timeout=60, cwd=docs)
            # Errors fail it; so do warnings (a value systemd cannot parse is only a warning).
            assert r.returncode == 0 and r.stdout.strip() == "" and r.stderr.strip() == "", (unit, r.stdout, r.stderr)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_every_metric_is_in_docs_metrics_md(make_cluster):
    """docs/metrics.md names every metric a node serves, each with its alert."""
    c = make_cluster(3)
    c.start_all()
    leader = c.wait_leader()
    with open(os.path.join(ROOT, "docs", "metrics.md")) as f:
        doc = f.read()
    served = set()
    for i in (leader, next(i for i in (1, 2, 3) if i != leader)):
        for line in c.get(i, "/metrics").body.decode().splitlines():
            if line and not line.startswith("#"):
                served.add(line.rsplit(" ", 1)[0])
    assert len(served) > 30
    for name in sorted(served):
        rows = [row for row in doc.splitlines() if row.startswith("| `%s`" % name)]
        assert rows, "docs/metrics.md does not name %s" % name
        assert rows[0].count("|") >= 5 and rows[0].rstrip(" |").split("|")[-1].strip(), name
