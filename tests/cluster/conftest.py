"""Shared fixtures: a cluster of real processes that is always torn down,
with every node's log printed when a test fails."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lrcluster import Cluster  # noqa: E402


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def make_cluster(request):
    made = []

    def make(*args, **kwargs):
        c = Cluster(*args, **kwargs)
        made.append(c)
        return c

    yield make
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for c in made:
        if failed:
            for i in sorted(c.logs):
                sys.stderr.write("---- node %d log (%s) ----\n%s\n" % (i, c.dir, c.log_tail(i, 60)))
        c.close()
