"""Scenario 001 end to end in the VM: two `director -f` with the LVS-NAT examples as
written, three nginx real servers, a client with two addresses (tools/nat_pair.py).

The examples' `lvs_sync_daemon eth0 VI_1` makes the master's IPVS sync daemon copy its
connections and persistence templates to the backup: after the master dies, each client
address keeps its real server and a download started before the kill completes intact.
"""

from __future__ import annotations

import os
import re
import sys
import time

import pytest
from testlib import ROOT

sys.path.insert(0, os.path.join(ROOT, "tools"))
from nat_pair import EXAMPLES, GATEWAY, SLOW_SIZE, Download, NatPair, wait_for  # noqa: E402

# advert_int 1, priority 100 on the backup: 3 x 1 + (256 - 100) / 256 s
ADVERT_INT = 1
MASTER_DOWN = 3 * ADVERT_INT + (256 - 100) / 256
SYNCD = "sync daemon (mcast=eth0, syncid=51"  # lvs_sync_daemon eth0 VI_1: VI_1's VRID


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
    # the sync daemons follow VI_1: its MASTER sends, its BACKUP receives
    wait_for(lambda: f"master {SYNCD}" in net.daemons("dir1")
             and f"backup {SYNCD}" in net.daemons("dir2"), 60,
             what="the MASTER sync daemon on dir1 and the BACKUP one on dir2")
    assert "backup" not in net.daemons("dir1") and "master" not in net.daemons("dir2")

    # persistence: each client address sticks to one real server; rr gives the second
    # address the next one
    first, second = net.clients
    got = {src: {net.get(src) for _ in range(4)} for src in net.clients}
    assert len(got[first]) == 1 and len(got[second]) == 1, got
    (s1,), (s2,) = got[first], got[second]
    assert s1 is not None and s2 is not None and s1 != s2, got

    # a slow download (about 12 s) through dir1; dir2 receives copies of both clients'
    # persistence templates and of the download's connection
    dl = Download(net, second)
    try:
        wait_for(lambda: dl.progress, 60, what="the slow download's first bytes")
        assert dl.server == s2 and dl.size == SLOW_SIZE
        wait_for(lambda: net.synced("dir2", net.clients, dl), 60,
                 what="dir2 to hold copies of both clients' persistence templates and the "
                      "download's connection")
        assert not dl.end, f"the download ended before the kill: {dl.end}"
        at_kill = dl.received

        # the master dies: the backup holds both VIPs within Master_Down, its sync daemon
        # turns MASTER, and the download goes on through it to the end, intact
        t0 = time.monotonic()
        net.kill_node("dir1")
        wait_for(lambda: net.holds("dir2") and net.holds("dir2", GATEWAY), 20,
                 what="dir2 master")
        moved = time.monotonic() - t0
        # VI_1 and VI_2 are one sync group: like keepalived, dir2 goes MASTER only once
        # both instances' Master_Down timers have run out, and their adverts were up to
        # one advert_int apart. Slack: the emulated CPU, polling ip(8).
        assert moved < MASTER_DOWN + ADVERT_INT + 2.5, moved
        wait_for(lambda: f"master {SYNCD}" in net.daemons("dir2"), 30,
                 what="dir2's sync daemon to turn MASTER")
        wait_for(lambda: dl.end, 120, what="the slow download to end")
        assert dl.end[0] == "DONE", dl.end
        assert int(dl.end[2]) == SLOW_SIZE and dl.end[3] == net.slow_sha256, dl.end
        stall, _since = dl.longest_stall()
        print(f"VIPs on dir2 {moved:.2f} s after the kill; download: {at_kill} of "
              f"{SLOW_SIZE} bytes at the kill, stalled {stall:.1f} s, completed intact")
        assert at_kill < SLOW_SIZE and stall > 1.0, (at_kill, stall)  # it did cross it
    finally:
        dl.close()

    # persistence kept: each client address is served by dir2 from its server of before
    wait_for(lambda: net.get(first, timeout=1) is not None, 20,
             what="the client served by dir2")
    after = {src: {net.get(src) for _ in range(3)} for src in net.clients}
    assert after == {first: {s1}, second: {s2}}, after

    # the first address's real server stops: TCP_CHECK (dir2's now) takes it out of the
    # table, and the client is served by another one
    stopped = int(s1.removeprefix("server"))
    net.nginx_stop(stopped)
    wait_for(lambda: f"192.168.3.{stopped}:80" not in net.dests("dir2"), 30,
             what=f"rs{stopped} removed from dir2's table")
    assert sorted(net.dests("dir2")) == [f"192.168.3.{i}:80" for i in (1, 2, 3)
                                         if i != stopped]
    again = net.get(first)
    assert again is not None and again != s1
