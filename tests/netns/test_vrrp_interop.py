"""director against the real keepalived (Debian package) on a LAN of namespaces, both
ways round, in every transport: one master, the VIP on exactly one node, the master
killed -> the other takes the VIP, the first back -> it preempts (or not, `nopreempt`).
"""

from __future__ import annotations

import shutil

import pytest
from lan import vrrp_conf, wait_for

MODES = {
    "v2-multicast": dict(version=2, advert="1"),
    "v2-unicast": dict(version=2, advert="1", unicast=True),
    "v2-auth": dict(version=2, advert="1", auth="s3cret42"),
    "v2-ah": dict(version=2, advert="1", auth="s3cret42", auth_type="AH"),
    "v2-ah-unicast": dict(version=2, advert="1", auth="pw", auth_type="AH", unicast=True),
    "v3-multicast": dict(version=3, advert="0.1"),
    "v3-unicast": dict(version=3, advert="0.1", unicast=True),
    "v3-ipv6": dict(version=3, advert="0.1", vips=("fd00:9::100/64",)),
}
PAIRS = [("director", "keepalived"), ("keepalived", "director")]

pytestmark = pytest.mark.skipif(shutil.which("keepalived") is None,
                                reason="keepalived is not installed (make install does it)")


def start(lan, host: str, kind: str, text: str):
    """A director keeps its counters readable (--dump-dir) for `Daemon.quiet`;
    keepalived writes its own on SIGUSR2 (lan.Daemon.keepalived_stats)."""
    return lan.start(host, kind, text, *(("-P", "--dump-dir", "{dir}")
                                        if kind == "director" else ("-P",)))


def conf(host: str, priority: int, mode: dict, **kw) -> str:
    n = 1 if host == "a" else 2
    other = 3 - n
    opts = {k: v for k, v in mode.items() if k != "unicast"}
    if mode.get("unicast"):
        opts.update(src=f"10.9.0.{n}", peers=(f"10.9.0.{other}",))
    return vrrp_conf(priority=priority, **opts, **kw)


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("master,backup", PAIRS, ids=["director-master", "keepalived-master"])
def test_failover_and_preempt(lan, mode, master, backup):
    m = MODES[mode]
    vip = m.get("vips", ("10.9.0.100/24",))[0].split("/")[0]
    a = start(lan, "a", master, conf("a", 150, m))
    b = start(lan, "b", backup, conf("b", 100, m))
    lan.wait_holder(vip, "a", 20)
    wait_for(lambda: "Entering BACKUP STATE" in b.output(), 20, what="b as BACKUP")
    b.quiet(3)
    assert lan.holders(vip) == ["a"], "a second master appeared"
    a.kill()  # SIGKILL: no priority 0, the VIP is left behind on a
    lan.wait_holder(vip, "b", 20, hosts=("b",))
    a = start(lan, "a", master, conf("a", 150, m))  # stale VIP removed at start
    lan.wait_holder(vip, "a", 20)
    assert "Entering MASTER STATE" in a.output()
    assert b.proc.poll() is None
    for d in lan.daemons:  # keepalived's AH checks passed on every advert of ours
        assert "invalid IPSEC" not in d.output() and "already processed" not in d.output()


@pytest.mark.parametrize("master,backup", PAIRS, ids=["director-first", "keepalived-first"])
def test_nopreempt(lan, master, backup):
    m = MODES["v3-multicast"]
    a = start(lan, "a", master, conf("a", 150, m, nopreempt=True))
    lan.wait_holder("10.9.0.100", "a", 20)
    b = start(lan, "b", backup, conf("b", 100, m, nopreempt=True))
    wait_for(lambda: "Entering BACKUP STATE" in b.output(), 20, what="b as BACKUP")
    b.quiet(5)
    assert lan.holders("10.9.0.100") == ["a"]
    a.kill()
    lan.wait_holder("10.9.0.100", "b", 20, hosts=("b",))
    a = start(lan, "a", master, conf("a", 150, m, nopreempt=True))
    wait_for(lambda: "Entering BACKUP STATE" in a.output(), 20, what="a as BACKUP")
    a.quiet(10)  # many Master_Down intervals at 0.1 s
    assert lan.holders("10.9.0.100") == ["b"], "the higher priority node preempted"
    assert b.proc.poll() is None
