"""check_unicast_src against keepalived on the wire: keepalived (a, priority 150) sends
unicast adverts to director (b), whose unicast_peer list does not name a. keepalived's
default is not to check the source, so b hears a and stays BACKUP; with
check_unicast_src b drops a's adverts (unicast_src_err) and becomes MASTER too."""

from __future__ import annotations

import shutil

import pytest
from lan import vrrp_conf, wait_for

pytestmark = pytest.mark.skipif(shutil.which("keepalived") is None,
                                reason="keepalived is not installed (make install does it)")

VIP = "10.9.0.100"


def start(lan, check: bool):  # type: ignore[no-untyped-def]
    a = lan.start("a", "keepalived", vrrp_conf(priority=150, src="10.9.0.1",
                                               peers=("10.9.0.2",)))
    b = lan.start("b", "director", vrrp_conf(
        priority=100, src="10.9.0.2", peers=("10.9.0.3",),
        extra="    check_unicast_src\n" if check else ""), "-P", "--dump-dir", "{dir}")
    lan.wait_holder(VIP, "a", 20)
    return a, b


def test_unlisted_source_accepted_by_default(lan):
    a, b = start(lan, check=False)
    wait_for(lambda: "Entering BACKUP STATE" in b.output(), 15, what="director in BACKUP")
    b.quiet(10)  # ten of keepalived's adverts heard: b would have taken over by now
    assert lan.holders(VIP) == ["a"], "director ignored keepalived's adverts"
    assert "Entering MASTER STATE" not in b.output()


def test_unlisted_source_dropped_with_check_unicast_src(lan):
    a, b = start(lan, check=True)
    wait_for(lambda: lan.holders(VIP) == ["a", "b"], 20,
             what="director to become MASTER beside keepalived (adverts dropped)")
    assert "not a unicast peer" in b.output() or "unicast_src" in b.output()
