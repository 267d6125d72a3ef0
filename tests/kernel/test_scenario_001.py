"""Scenario 001 end to end in the VM: two `director -f` with the LVS-NAT examples as
written, three nginx real servers, a client with two addresses (tools/nat_pair.py)."""

from __future__ import annotations

import os
import re
import sys
import time

import pytest
from testlib import ROOT

sys.path.insert(0, os.path.join(ROOT, "tools"))
from nat_pair import EXAMPLES, GATEWAY, NatPair, wait_for  # noqa: E402

# advert_int 1, priority 100 on the backup: 3 x 1 + (256 - 100) / 256 s
MASTER_DOWN = 3 + (256 - 100) / 256


@pytest.fixture
def net():
    made = NatPair("s1", clients=2)
    try:
        yield made.build()
    finally:
        for host in ("dir1", "dir2"):
            if host in made.directors:
                print(f"==== {host}\n{made.log(host)[-4000:]}")
        made.close()


def test_001_lvs_nat_pair(net):
    net.start_director("dir1", f"{EXAMPLES}/001-lvs-nat-master.conf")
    net.start_director("dir2", f"{EXAMPLES}/001-lvs-nat-backup.conf")
    wait_for(lambda: net.holds("dir1") and net.holds("dir1", GATEWAY), 120, what="dir1 master")
    wait_for(lambda: len(net.dests("dir1")) == 3, 120, what="3 real servers in dir1's table")
    assert not net.holds("dir2")
    table = net.run("dir1", "ipvsadm", "-Ln").stdout
    assert re.search(r"TCP\s+10\.30\.0\.100:80 rr persistent 50", table), table

    # persistence: each client address sticks to one real server; rr gives the second
    # address the next one
    first, second = net.clients
    got = {src: {net.get(src) for _ in range(4)} for src in net.clients}
    assert len(got[first]) == 1 and len(got[second]) == 1, got
    (s1,), (s2,) = got[first], got[second]
    assert s1 is not None and s2 is not None and s1 != s2, got

    # the first address's real server stops: TCP_CHECK takes it out of the table, and the
    # client is served by another one
    stopped = int(s1.removeprefix("server"))
    net.nginx_stop(stopped)
    wait_for(lambda: f"192.168.3.{stopped}:80" not in net.dests("dir1"), 30,
             what=f"rs{stopped} removed from dir1's table")
    assert len(net.dests("dir1")) == 2
    again = net.get(first)
    assert again is not None and again != s1

    # the master dies: the backup holds both VIPs and serves within Master_Down
    t0 = time.monotonic()
    net.kill_node("dir1")
    wait_for(lambda: net.holds("dir2") and net.holds("dir2", GATEWAY), 20, what="dir2 master")
    moved = time.monotonic() - t0
    assert moved < MASTER_DOWN + 2.5, moved  # slack: the emulated CPU, polling with ip(8)
    wait_for(lambda: net.get(second, timeout=1) is not None, 20,
             what="the client served by dir2")
    served = time.monotonic() - t0
    print(f"VIPs on dir2 {moved:.2f} s after the kill, first answer {served:.2f} s")
    assert sorted(net.dests("dir2")) == [f"192.168.3.{i}:80" for i in (1, 2, 3)
                                         if i != stopped]
