"""The pure parts of vrrp_strict's drop rules, the static entries and the GARP schedule:
config keywords, which table, the nftables JSON, set changes, static ops, and when the
gratuitous ARP rounds are due on a virtual clock."""

from __future__ import annotations

import pytest
from helpers import load_text, messages

from vrrp import firewall, garp, static

STRICT = """
global_defs {{
    vrrp_strict
{glob}}}
vrrp_instance VI_1 {{
    interface eth0
    virtual_router_id 51
    version 3
{body}    virtual_ipaddress {{
        10.0.0.1
    }}
    virtual_ipaddress_excluded {{
        10.0.0.2
        fd00::1
    }}
}}
"""


def strict(tmp_path, glob: str = "", body: str = ""):
    return load_text(tmp_path, STRICT.format(glob=glob, body=body))


# -- which table ----------------------------------------------------------------------
def test_strict_without_accept_uses_keepalived_default_table(tmp_path):
    cfg = strict(tmp_path).config
    assert firewall.drops(cfg.vrrp_instances[0])
    p = firewall.plan(cfg)
    assert p == firewall.Plan(table="keepalived", priority=-1, counters=False,
                              families=frozenset({4, 6}))  # the excluded VIPs too


def test_accept_or_address_owner_needs_no_table(tmp_path):
    assert firewall.plan(strict(tmp_path, body="    accept\n").config) is None
    owner = strict(tmp_path, body="    priority 255\n").config
    assert firewall.plan(owner) is None
    assert firewall.plan(load_text(tmp_path, STRICT.format(glob="", body="").replace(
        "    vrrp_strict\n", "")).config) is None  # not strict: accept by default


def test_nftables_keywords(tmp_path):
    loaded = strict(tmp_path, "    nftables fw1\n    nftables_priority -20\n"
                              "    nftables_counters\n    nftables_ifindex\n")
    assert loaded.ok and not messages(loaded, "warning"), messages(loaded)
    g = loaded.config.global_defs
    assert (g.nftables, g.nftables_priority, g.nftables_counters, g.nftables_ifindex) == \
        ("fw1", -20, True, True)
    assert firewall.plan(loaded.config).table == "fw1"
    assert strict(tmp_path, "    nftables\n").config.global_defs.nftables == "keepalived"


def test_vrrp_iptables_becomes_nftables_with_a_warning(tmp_path):
    loaded = strict(tmp_path, "    vrrp_iptables INPUT OUTPUT\n    nftables other\n")
    assert loaded.ok
    warnings = messages(loaded, "warning")
    assert any(m.startswith("4: vrrp_iptables: iptables is not supported, using nftables")
               for m in warnings), warnings
    assert any(m.startswith("5: nftables already specified") for m in warnings), warnings
    assert loaded.config.global_defs.nftables == "keepalived"


def test_static_blocks_parse(tmp_path):
    loaded = load_text(tmp_path, """
        static_ipaddress {
            192.0.2.1/24 dev eth1
            192.0.2.2/32
        }
        static_ipaddress {
            192.0.2.3/32 dev eth1
        }
        static_routes {
            198.51.100.0/24 via 192.0.2.254
        }
        static_rules {
            from 192.0.2.1 table 100
        }
        """)
    assert loaded.ok and not messages(loaded), messages(loaded)
    cfg = loaded.config
    assert [v.address for v in cfg.static_ipaddress] == ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
    assert cfg.static_routes[0].via == "192.0.2.254"
    assert cfg.static_rules[0].table == "100"


# -- the nftables JSON ------------------------------------------------------------------
def test_setup_replaces_a_leftover_table_in_one_transaction():
    p = firewall.Plan(table="t", priority=-3, counters=True, families=frozenset({4}))
    cmds = firewall.setup_commands(p)
    t = {"family": "ip", "name": "t"}
    assert cmds[:3] == [{"add": {"table": t}}, {"delete": {"table": t}},
                        {"add": {"table": t}}]
    chains = {c["add"]["chain"]["name"]: c["add"]["chain"] for c in cmds
              if "chain" in c.get("add", {})}
    assert chains["in"]["hook"] == "input" and chains["in"]["prio"] == -3
    assert chains["out"]["hook"] == "output" and chains["out"]["policy"] == "accept"
    rules = [c["add"]["rule"] for c in cmds if "rule" in c.get("add", {})]
    assert [(r["chain"], r["expr"][0]["match"]["left"]["payload"]["field"],
             r["expr"][0]["match"]["right"], r["expr"][-1]) for r in rules] == [
        ("in", "daddr", "@vips", {"drop": None}), ("out", "saddr", "@vips", {"drop": None})]
    assert all(any("counter" in e for e in r["expr"]) for r in rules)


def test_ipv6_table_lets_neighbour_discovery_through():
    p = firewall.Plan(table="t", families=frozenset({6}))
    rules = [c["add"]["rule"] for c in firewall.setup_commands(p)
             if "rule" in c.get("add", {})]
    first_in = next(r for r in rules if r["chain"] == "in")
    assert first_in["expr"][-1] == {"accept": None}
    assert "nd-neighbor-solicit" in first_in["expr"][0]["match"]["right"]["set"]
    assert not any("counter" in e for r in rules for e in r["expr"])


def test_elements_and_their_commands():
    p = firewall.Plan(table="t", families=frozenset({4, 6}))
    from conf.model import VirtualIp
    vips = [VirtualIp(address="10.0.0.1", prefixlen=32, family=4),
            VirtualIp(address="fe80::1", prefixlen=64, family=6, dev="eth1"),
            VirtualIp(address="fd00::1", prefixlen=64, family=6)]
    elems = firewall.elements(vips, lambda v: 7 if v.dev == "eth1" else 2)
    assert elems == {(4, "10.0.0.1", None), (6, "fe80::1", 7), (6, "fd00::1", None)}
    cmds = firewall.element_commands(p, "add", elems)
    got = {(c["add"]["element"]["family"], c["add"]["element"]["name"]):
           c["add"]["element"]["elem"] for c in cmds}
    assert got == {("ip", "vips"): ["10.0.0.1"], ("ip6", "vips"): ["fd00::1"],
                   ("ip6", "vips_link_local"): [{"concat": ["fe80::1", 7]}]}
    only4 = firewall.Plan(table="t", families=frozenset({4}))
    assert len(firewall.element_commands(only4, "delete", elems)) == 1


def test_changes_keep_an_element_another_instance_holds():
    a, b = (4, "10.0.0.1", None), (4, "10.0.0.2", None)
    held = {"VI_2": {a}}
    assert firewall.changes(held, "VI_1", {a, b}) == ({b}, set())
    held["VI_1"] = {a, b}
    assert firewall.changes(held, "VI_1", set()) == (set(), {b})  # VI_2 still wants a
    assert firewall.changes(held, "VI_1", {a, b}) == (set(), set())  # a reload re-adds


# -- static entries --------------------------------------------------------------------
def test_static_ops_at_start_reload_and_stop(tmp_path):
    def conf(routes: str) -> object:
        return load_text(tmp_path, "global_defs {\n default_interface eth9\n}\n"
                         "static_ipaddress {\n 192.0.2.1/24\n}\n"
                         f"static_routes {{\n{routes}}}\n"
                         "static_rules {\n from 192.0.2.1 table 100\n}\n").config

    one = conf(" 198.51.100.0/24 via 192.0.2.254\n 203.0.113.0/24 via 192.0.2.254\n")
    fresh = static.ops(one, fresh=True)
    kinds = [(op, type(x).__name__) for op, x in fresh]
    assert kinds == [("delete", "VirtualRule"), ("delete", "VirtualRoute"),
                     ("delete", "VirtualRoute"), ("delete", "VirtualIp"),
                     ("add", "VirtualIp"), ("add", "VirtualRoute"), ("add", "VirtualRoute"),
                     ("add", "VirtualRule")]
    assert fresh[-4][1].dev == "eth9"  # no dev: the default interface
    assert all(op == "add" for op, _ in static.ops(one))  # a restarted child: adds only
    two = conf(" 198.51.100.0/24 via 192.0.2.254\n")
    reload_ops = static.ops(two, one)
    deleted = [x for op, x in reload_ops if op == "delete"]
    assert [getattr(x, "dst", None) for x in deleted] == ["203.0.113.0/24"]
    stop = static.ops(None, two)
    assert [op for op, _ in stop] == ["delete"] * 3
    assert type(stop[0][1]).__name__ == "VirtualRule"


# -- the GARP schedule ------------------------------------------------------------------
def rounds(t: garp.Timing, since: float, clock: list[float], count: int) -> list[garp.Round]:
    """`count` rounds, each sent at clock[i] (the time the loop got round to it)."""
    out: list[garp.Round] = []
    last = None
    for i in range(count):
        last = garp.next_round(t, since, last, clock[i] if i < len(clock) else since)
        if last is None:
            break
        out.append(last)
    return out


def test_refresh_runs_from_the_transition_beside_the_delay_round():
    # as the installed keepalived 2.2.7 sends them (delay 2, repeat 3, refresh 1)
    t = garp.Timing(delay=2, repeat=3, refresh=1, refresh_repeat=1)
    got = rounds(t, 100.0, [100.0, 101.0, 102.0, 102.0, 103.0], 5)
    assert [(r.kind, r.at, r.repeat) for r in got] == [
        ("master", 100.0, 3), ("refresh", 101.0, 1), ("delay", 102.0, 3),
        ("refresh", 102.0, 1), ("refresh", 103.0, 1)]


def test_keepalived_2_4_timing_starts_refreshing_after_the_delay():
    t = garp.Timing(delay=5, repeat=5, refresh=1, refresh_after_delay=True)
    got = rounds(t, 100.0, [100.0, 100.0, 105.0, 106.0, 107.0], 5)
    assert [(r.kind, r.at) for r in got] == [
        ("master", 100.0), ("delay", 105.0), ("refresh", 106.0), ("refresh", 107.0),
        ("refresh", 108.0)]


def test_rounds_do_not_drift_with_their_own_duration():
    t = garp.Timing(delay=0, refresh=3)
    # the previous refresh took 1.5 s (garp_interval) and the loop was late: no drift
    last = garp.Round(garp.REFRESH, 13.0, 1, 1)
    assert garp.next_round(t, 10.0, last, now=14.5).at == 16.0


def test_a_late_delay_round_still_comes_once():
    t = garp.Timing(delay=2, refresh=1)
    first = garp.next_round(t, 0.0, None, 0.0)
    r1 = garp.next_round(t, 0.0, first, now=0.0)
    assert (r1.kind, r1.at) == (garp.REFRESH, 1.0)
    d = garp.next_round(t, 0.0, r1, now=4.3)  # busy: the delay round was due at 2
    assert (d.kind, d.at) == (garp.DELAY, 2.0)
    r = garp.next_round(t, 0.0, d, now=4.4)  # then the latest refresh slot, not 2, 3, 4
    assert (r.kind, r.at, r.n) == (garp.REFRESH, 4.0, 4)
    assert garp.next_round(t, 0.0, r, now=4.5).kind == garp.REFRESH


def test_a_busy_loop_gets_one_refresh_round_not_a_burst():
    t = garp.Timing(delay=0, refresh=1)
    first = garp.next_round(t, 0.0, None, 0.0)
    assert first.kind == garp.MASTER
    # no delay round when garp_master_delay is 0: the refresh comes next
    r = garp.next_round(t, 0.0, first, now=0.0)
    assert (r.kind, r.at, r.n) == (garp.REFRESH, 1.0, 1)
    late = garp.next_round(t, 0.0, r, now=4.3)  # slots 2, 3, 4 were due
    assert (late.at, late.n) == (4.0, 4)
    assert garp.next_round(t, 0.0, late, now=4.4).at == 5.0


@pytest.mark.parametrize("delay, refresh", [(5, 0), (0, 0)])
def test_no_refresh_means_no_more_rounds(delay, refresh):
    t = garp.Timing(delay=delay, refresh=refresh)
    got = rounds(t, 0.0, [0.0] * 4, 4)
    assert [r.kind for r in got] == (["master", "delay"] if delay else ["master"])


def test_reinstate_adds_back_what_is_tracked_and_missing(tmp_path):
    cfg = load_text(tmp_path, "static_ipaddress {\n 192.0.2.1/24 dev eth1\n"
                    " 192.0.2.2/24 dev eth1 no_track\n 192.0.2.3/24 dev eth1\n}\n"
                    "static_routes {\n 198.51.100.0/24 via 192.0.2.254\n"
                    " 203.0.113.0/24 via 192.0.2.254 no_track\n}\n").config

    class Fake:  # the kernel holds 192.0.2.1 only
        def __init__(self):
            self.calls = []

        def has(self, vip, dev):
            return vip.address == "192.0.2.1"

        def set_vip(self, op, vip, dev):
            self.calls.append((op, vip.address))

        def set_route(self, op, route, dev):
            self.calls.append((op, route.dst))

    fake = Fake()
    static.reinstate(fake, cfg)
    assert fake.calls == [("add", "192.0.2.3"), ("add", "198.51.100.0/24")]


def test_link_local_vips_keyed_by_name_without_primary_tracking(tmp_path):
    from conf.model import VirtualIp
    ll = [VirtualIp(address="fe80::1", prefixlen=64, family=6, dev="eth1")]
    inst = strict(tmp_path, body="    dont_track_primary\n").config.vrrp_instances[0]
    assert firewall.by_name(inst, ifindex=False)
    assert not firewall.by_name(inst, ifindex=True)  # nftables_ifindex
    assert not firewall.by_name(strict(tmp_path).config.vrrp_instances[0], ifindex=False)
    named = firewall.elements(ll, lambda v: 7, lambda v: v.dev)
    assert named == {(6, "fe80::1", "eth1")}
    p = firewall.Plan(table="t", families=frozenset({6}))
    (cmd,) = firewall.element_commands(p, "add", named)
    assert cmd["add"]["element"]["name"] == "vips_link_local_name"
    assert cmd["add"]["element"]["elem"] == [{"concat": ["fe80::1", "eth1"]}]
