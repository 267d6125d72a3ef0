"""The announcement core (pure), the ExaBGP engine's lines, and the dry-run table kept
for adoption."""

from __future__ import annotations

import asyncio

from helpers import load_text, messages

from director.bgp.core import Announce, Prefix, Want, Withdraw, keep_configured, plan, wants
from director.bgp.engine import Ack, PeerState
from director.bgp.exabgp import ExaBgp
from director.dataplane import DryRunPlane
from director.ipvs_table import DestKey, DestSpec, Op, SvcKey, SvcSpec

SPEAKER = """
bgp_speaker {
    router_id 10.40.0.11
    local_as 65010
    neighbor 10.40.0.1 {
        remote_as 65000
        hold_time 3
    }
    neighbor fd00::1 {
        remote_as 65000
        local_address fd00::11
        port 1179
        passive
    }
}
"""


def vs(addr: str, port: int, ann: str = "bgp_announce") -> str:
    return (f"virtual_server {addr} {port} {{\n protocol TCP\n {ann}\n"
            f" real_server {'2001:db8::2' if ':' in addr else '10.0.0.2'} 80 {{\n"
            f"  TCP_CHECK {{ }}\n }}\n}}\n")


def cfg(tmp_path, text: str):
    loaded = load_text(tmp_path, text)
    assert loaded.ok, messages(loaded)
    return loaded.config


V1 = Prefix("10.30.0.1", 32, "lo")
V2 = Prefix("10.30.0.2", 32, "lo")


def test_each_announced_vs_wants_its_host_prefix_while_it_has_quorum(tmp_path):
    c = cfg(tmp_path, SPEAKER + vs("10.30.0.1", 80) + vs("10.30.0.9", 80, "")
            + vs("2001:db8::1", 80, "bgp_announce dev dummy0"))
    w = wants(c, [True, True, False])
    assert [(str(x.prefix), x.prefix.dev, x.up) for x in w] == [
        ("10.30.0.1/32", "lo", True), ("2001:db8::1/128", "dummy0", False)]
    assert w[0].reason == "VS [10.30.0.1]:tcp:80 has quorum"
    assert w[1].reason == "VS [2001:db8::1]:tcp:80 lost quorum"


def test_an_address_shared_by_two_vs_needs_both(tmp_path):
    """A director is the next hop for the whole address: it announces it only while it
    can serve every virtual server on it."""
    c = cfg(tmp_path, SPEAKER + vs("10.30.0.1", 80) + vs("10.30.0.1", 443))
    assert [x.up for x in wants(c, [True, True])] == [True]
    (w,) = wants(c, [True, False])
    assert not w.up
    assert w.reason == "VS [10.30.0.1]:tcp:80 has quorum, VS [10.30.0.1]:tcp:443 lost quorum"


def test_no_speaker_no_wants(tmp_path):
    c = load_text(tmp_path, vs("10.30.0.1", 80)).config
    assert wants(c, [True]) == ()


def test_plan_withdraws_first_and_only_changes():
    up1, down2 = Want(V1, True, "q1"), Want(V2, False, "lost")
    assert plan([], [up1, down2]) == [Announce(V1, "q1")]
    assert plan([V1], [up1, down2]) == []
    assert plan([V1, V2], [up1, down2]) == [Withdraw(V2, "lost")]
    # gone from the config (a reload): withdrawn with that reason
    assert plan([V1, V2], [up1]) == [Withdraw(V2, "no longer configured")]
    # moved to another device: withdrawn there, announced here
    moved = Want(Prefix("10.30.0.1", 32, "dummy0"), True, "q1")
    assert plan([V1], [moved]) == [Withdraw(V1, "no longer configured"),
                                   Announce(moved.prefix, "q1")]
    assert plan([V1, V2], []) == [Withdraw(V1, "no longer configured"),
                                  Withdraw(V2, "no longer configured")]


def test_keep_configured_drops_what_the_new_config_does_not_announce(tmp_path):
    old = (Want(V1, True, "a"), Want(V2, True, "b"))
    new = cfg(tmp_path, SPEAKER + vs("10.30.0.1", 80) + vs("10.30.0.2", 80, ""))
    assert keep_configured(old, new) == (Want(V1, True, "a"),)
    gone = load_text(tmp_path, vs("10.30.0.1", 80)).config  # no bgp_speaker any more
    assert keep_configured(old, gone) == ()


def test_want_json_round_trip_and_refusals():
    w = Want(Prefix("2001:db8::1", 128, "lo"), True, "why")
    assert Want.from_json(w.to_json()) == w
    for bad in ({"address": "10.0.0.1", "prefixlen": 33, "dev": "lo"},
                {"address": "nowhere", "prefixlen": 32, "dev": "lo"},
                {"address": "10.0.0.1", "prefixlen": "32", "dev": "lo"}):
        try:
            Want.from_json(bad)
        except ValueError:
            continue
        raise AssertionError(f"accepted {bad}")


def test_exabgp_config_and_lines(tmp_path):
    c = cfg(tmp_path, SPEAKER + vs("10.30.0.1", 80))
    e = ExaBgp()
    local = {"10.40.0.1": "10.40.0.11", "fd00::1": "fd00::11"}
    text = e.render(c.bgp_speaker, ["/usr/bin/python3", "-S", "/x/bridge.py", "/run/a b"],
                    local)
    assert "run /usr/bin/python3 -S /x/bridge.py '/run/a b';" in text
    v4 = text[text.index("neighbor 10.40.0.1 {"):text.index("neighbor fd00::1 {")]
    for line in ("router-id 10.40.0.11;", "local-address 10.40.0.11;", "local-as 65010;",
                 "peer-as 65000;", "hold-time 3;", "adj-rib-out true;",
                 "family { ipv4 unicast; }", "api { processes [ director ]; neighbor-changes; }"):
        assert f"    {line}\n" in v4, line
    assert "connect" not in v4 and "passive" not in v4
    v6 = text[text.index("neighbor fd00::1 {"):]
    for line in ("hold-time 9;", "family { ipv6 unicast; }", "connect 1179;", "passive true;"):
        assert f"    {line}\n" in v6, line
    env = e.env(c.bgp_speaker, local)
    assert env["exabgp_api_ack"] == "true" and env["exabgp_daemon_daemonize"] == "false"
    assert env["exabgp_daemon_drop"] == "false" and env["exabgp_tcp_bind"] == "fd00::11"
    assert e.announce(V1) == "announce route 10.30.0.1/32 next-hop self"
    assert e.withdraw(V1) == "withdraw route 10.30.0.1/32 next-hop self"
    assert e.parse("done\n") == Ack(True) and e.parse("error") == Ack(False)
    assert e.parse("neighbor 10.40.0.1 up") == PeerState("10.40.0.1", "up")
    assert e.parse("neighbor 10.40.0.1 down - peer reset") == PeerState(
        "10.40.0.1", "down", "peer reset")
    assert e.parse("shutdown") is None


def test_dry_run_table_is_kept_for_a_restarted_child(tmp_path):
    """The dry-run plane stands for the kernel: a restarted checker child adopts the
    table the previous one left; a fresh start begins empty."""
    state = str(tmp_path / "ipvs.json")
    svc = SvcKey(4, "TCP", "10.30.0.1", 80)
    dest = DestKey("10.0.0.2", 80)

    async def run() -> None:
        p = DryRunPlane(state)
        await p.apply([Op("add", svc, SvcSpec("mh", 0x8)),
                       Op("add", svc, dest=dest, dspec=DestSpec("DR", 3))])
        adopted = DryRunPlane(state, adopt=True)
        assert await adopted.read() == {svc: (SvcSpec("mh", 0x8), {dest: DestSpec("DR", 3)})}
        assert await DryRunPlane(state).read() == {}
        assert await DryRunPlane(state, adopt=True).read() == {}  # the fresh start removed it

    asyncio.run(run())


def test_bgp_metrics_from_the_speaker_state(tmp_path):
    import json

    from director.metrics import Collector

    (tmp_path / "bgp.json").write_text(json.dumps({
        "engine": "exabgp", "peers": {"10.40.0.1": "up", "10.40.0.2": "connected"},
        "announced": [{"prefix": "10.30.0.1/32", "dev": "lo", "since": 0, "reason": "q"}],
        "updates": 3}))
    got = {(m.name, tuple(sorted(s.labels.items()))): s.value
           for m in Collector(str(tmp_path)).collect() for s in m.samples}
    assert got[("director_bgp_session_up", (("neighbor", "10.40.0.1"),))] == 1
    assert got[("director_bgp_session_up", (("neighbor", "10.40.0.2"),))] == 0
    assert got[("director_bgp_announced", (("dev", "lo"), ("prefix", "10.30.0.1/32")))] == 1
    assert got[("director_bgp_updates", ())] == 3
