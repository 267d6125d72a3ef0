"""When a new MASTER's gratuitous ARPs leave, director beside the real keepalived:
the refresh timer runs from the transition, independent of garp_master_delay."""

from __future__ import annotations

import pytest
from lan import vrrp_conf

VIP = "10.9.0.100"
EXTRA = ("    garp_master_delay 2\n    garp_master_repeat 3\n"
         "    garp_master_refresh 1\n    garp_master_refresh_repeat 1\n")


@pytest.mark.parametrize("kind", ["director", "keepalived"])
def test_refresh_from_the_transition_beside_the_delay_round(lan, kind):
    # from before the start, so that the first round is seen; long enough for a slow start
    sniffed = lan.sniff_arp("c", 9.0)
    lan.start("a", kind, vrrp_conf(state="MASTER", priority=150, extra=EXTRA))
    times = sorted(t for t, ip, _ in sniffed() if ip == VIP)
    assert times, "no gratuitous ARP at all"
    rounds: list[list[float]] = []  # a round's repeats leave together (garp_interval 0)
    for t in times:
        if rounds and t - rounds[-1][-1] < 0.3:
            rounds[-1].append(t)
        else:
            rounds.append([t])
    t0 = rounds[0][0]
    at = [(round(r[0] - t0, 2), len(r)) for r in rounds]
    assert len(rounds[0]) == 3, at  # garp_master_repeat at the transition
    # a refresh of one before the delay round: the refresh timer did not wait for it
    assert [n for d, n in at if 0.5 < d < 1.7] == [1], at
    # the delay round (3, beside the refresh due at the same time) about 2 s in, then
    # refreshes of one again
    later = [n for d, n in at if d >= 1.7]
    assert later and later[0] >= 3 and later[1:] and set(later[1:]) == {1}, at
