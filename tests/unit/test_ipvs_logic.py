"""The pure IPVS diff and the pool logic (quorum, sorry server, inhibit, alpha)."""

from __future__ import annotations

from helpers import load_text, messages

from director.desired import desired_table, service_keys, service_spec
from director.ipvs_table import (
    F_ONEPACKET,
    F_PERSISTENT,
    F_SCHED1,
    F_SCHED2,
    DestKey,
    DestSpec,
    Op,
    SvcKey,
    SvcSpec,
    apply_ops,
    diff,
)
from director.pool import Pool, QuorumEvent, RsEvent

S1 = SvcKey(4, "TCP", "10.0.0.1", 80)
S2 = SvcKey(4, "UDP", "10.0.0.1", 53)
FOREIGN = SvcKey(4, "TCP", "10.9.9.9", 22)
D1, D2, D3 = DestKey("10.0.1.1", 80), DestKey("10.0.1.2", 80), DestKey("10.0.1.3", 80)
RR = SvcSpec(scheduler="rr")


def test_diff_from_empty_adds_everything():
    desired = {S1: (RR, {D1: DestSpec(), D2: DestSpec(weight=2)})}
    ops = diff(desired, {})
    assert ops == [Op("add", S1, RR), Op("add", S1, dest=D1, dspec=DestSpec()),
                   Op("add", S1, dest=D2, dspec=DestSpec(weight=2))]
    assert apply_ops({}, ops) == desired


def test_diff_of_equal_tables_is_empty():
    t = {S1: (RR, {D1: DestSpec()})}
    assert diff(t, {S1: (RR, {D1: DestSpec()})}) == []


def test_diff_is_minimal():
    current = {S1: (RR, {D1: DestSpec(), D2: DestSpec()}), S2: (RR, {})}
    desired = {S1: (RR, {D1: DestSpec(weight=5), D3: DestSpec()}), S2: (SvcSpec("wlc"), {})}
    ops = diff(desired, current)
    assert ops == [
        Op("del", S1, dest=D2),
        Op("edit", S1, dest=D1, dspec=DestSpec(weight=5)),
        Op("add", S1, dest=D3, dspec=DestSpec()),
        Op("edit", S2, SvcSpec("wlc")),
    ]
    assert apply_ops(current, ops) == desired


def test_foreign_services_survive_unless_flush_or_owned():
    current = {S1: (RR, {}), FOREIGN: (RR, {D1: DestSpec()})}
    desired = {S1: (RR, {})}
    assert diff(desired, current) == []
    assert diff(desired, current, flush=True) == [Op("del", FOREIGN)]
    # a service we programmed before and the new config dropped is ours to remove
    assert diff({}, current, owned={S1}) == [Op("del", S1)]


CONF = """
virtual_server 10.0.0.1 80 {
    protocol TCP
    lb_algo wrr
    lb_kind NAT
    persistence_timeout 50
    quorum %(quorum)s
    hysteresis %(hyst)s
    %(extra)s
    real_server 10.0.1.1 80 {
        weight 2
        TCP_CHECK { }
    }
    real_server 10.0.1.2 80 {
        weight 1
        %(rs2)s
        TCP_CHECK { }
        HTTP_GET { url { path / } }
    }
    real_server 10.0.1.3 80 {
        weight 1
    }
}
"""


def pool(tmp_path, quorum=1, hyst=0, extra="", rs2=""):
    loaded = load_text(tmp_path, CONF % dict(quorum=quorum, hyst=hyst, extra=extra, rs2=rs2))
    assert loaded.ok, messages(loaded)
    return loaded.config, Pool(loaded.config.virtual_servers[0])


def weights(p: Pool) -> dict[str, int]:
    return {k.address: v.weight for k, v in p.dests().items()}


def test_all_alive_at_start_and_a_dead_server_leaves(tmp_path):
    _, p = pool(tmp_path)
    assert weights(p) == {"10.0.1.1": 2, "10.0.1.2": 1, "10.0.1.3": 1}
    (ev,) = p.set_checker(0, 0, False)
    assert (type(ev), ev.up, ev.fifo) == (RsEvent, False,
                                         "RS [10.0.1.1]:tcp:80 [10.0.0.1]:tcp:80 DOWN")
    assert weights(p) == {"10.0.1.2": 1, "10.0.1.3": 1}
    (ev,) = p.set_checker(0, 0, True)
    assert ev.up and ev.fifo.endswith(" UP")
    assert p.set_checker(0, 0, True) == []  # no transition, no event


def test_all_checkers_must_be_up(tmp_path):
    _, p = pool(tmp_path)
    assert len(p.set_checker(1, 1, False)) == 1
    assert p.set_checker(1, 0, False) == []  # already down
    assert p.set_checker(1, 1, True) == []  # still one checker down
    assert "10.0.1.2" not in weights(p)
    assert p.set_checker(1, 0, True)[0].up
    assert "10.0.1.2" in weights(p)


def test_inhibit_on_failure_keeps_weight_zero(tmp_path):
    _, p = pool(tmp_path, rs2="inhibit_on_failure")
    p.set_checker(1, 0, False)
    assert weights(p)["10.0.1.2"] == 0
    p.set_checker(0, 0, False)
    assert "10.0.1.1" not in weights(p)


def test_alpha_starts_down(tmp_path):
    _, p = pool(tmp_path, extra="alpha")
    # .3 has no checker: always alive
    assert weights(p) == {"10.0.1.3": 1}
    p.set_checker(0, 0, True)
    assert weights(p) == {"10.0.1.1": 2, "10.0.1.3": 1}


def test_quorum_with_hysteresis_and_sorry_server(tmp_path):
    extra = "sorry_server 10.0.9.9 8080\n quorum_up /bin/up\n quorum_down /bin/down"
    _, p = pool(tmp_path, quorum=3, hyst=1, extra=extra)
    assert p.quorum_up and p.weight_sum() == 4
    assert [type(e) for e in p.set_checker(1, 0, False)] == [RsEvent]  # 3 >= 3-1: still up
    assert p.quorum_up
    events = p.set_checker(0, 0, False)  # sum 1 < 2: lost
    assert [type(e) for e in events] == [RsEvent, QuorumEvent]
    assert events[1].fifo == "VS [10.0.0.1]:tcp:80 DOWN" and events[1].script.cmd == "/bin/down"
    assert "Lost quorum 3-1=2 > 1" in events[1].log
    # the sorry server alone serves
    assert weights(p) == {"10.0.9.9": 1}
    assert p.dests()[DestKey("10.0.9.9", 8080)].forward == "NAT"
    events = p.set_checker(0, 0, True)  # sum 3 < 3+1: not regained yet
    assert [type(e) for e in events] == [RsEvent] and not p.quorum_up
    events = p.set_checker(1, 0, True)  # sum 4 >= 4: regained
    assert events[-1].up and events[-1].fifo == "VS [10.0.0.1]:tcp:80 UP"
    assert weights(p) == {"10.0.1.1": 2, "10.0.1.2": 1, "10.0.1.3": 1}


def test_sorry_server_inhibit(tmp_path):
    _, p = pool(tmp_path, quorum=4, extra="sorry_server 10.0.9.9 80\n sorry_server_inhibit\n"
                                          " sorry_server_lvs_method DR")
    assert weights(p)["10.0.9.9"] == 0
    p.set_checker(0, 0, False)
    assert weights(p) == {"10.0.9.9": 1}
    assert p.dests()[DestKey("10.0.9.9", 80)].forward == "DR"


def test_dynamic_weight_moves_quorum(tmp_path):
    _, p = pool(tmp_path, quorum=4)
    assert p.set_weight(2, 0)[0].up is False
    assert weights(p)["10.0.1.3"] == 0
    assert p.set_weight(2, 5)[0].up is True


def test_omega_runs_down_scripts_on_stop(tmp_path):
    _, p = pool(tmp_path, extra="omega")
    events = p.stop_events()
    assert [type(e) for e in events] == [RsEvent, RsEvent, RsEvent, QuorumEvent]
    _, p = pool(tmp_path)
    assert p.stop_events() == []


def test_desired_table_for_every_service_kind(tmp_path):
    loaded = load_text(tmp_path, """
        virtual_server_group G {
            10.1.0.1-3 80
            fd00::10 443
            fwmark 9
        }
        virtual_server group G {
            protocol TCP
            lb_algo sh
            sh-port
            sh-fallback
            real_server 10.2.0.1 80 { }
        }
        virtual_server fwmark 7 {
            lb_algo mh
            mh-port
            persistence_timeout 30
            persistence_granularity 24
            real_server 10.3.0.1 { lvs_method TUN type gue port 6080 csum }
        }
        virtual_server 10.4.0.1 53 {
            protocol UDP
            ops
            lb_kind DR
            real_server 10.4.1.1 53 { uthreshold 100
                lthreshold 10 }
        }
    """)
    assert loaded.ok, messages(loaded)
    cfg = loaded.config
    keys = service_keys(cfg.virtual_servers[0], cfg)
    assert [str(k) for k in keys] == ["[10.1.0.1]:tcp:80", "[10.1.0.2]:tcp:80",
                                      "[10.1.0.3]:tcp:80", "[fd00::10]:tcp:443", "FWM 9"]
    table = desired_table(cfg, [Pool(vs) for vs in cfg.virtual_servers])
    assert len(table) == 7
    spec, dests = table[SvcKey(4, "TCP", "10.1.0.2", 80)]
    assert spec.scheduler == "sh" and spec.flags == F_SCHED1 | F_SCHED2
    fw_spec, fw_dests = table[SvcKey(4, "", "", 0, 7)]
    assert fw_spec.flags == F_PERSISTENT | F_SCHED2 and fw_spec.timeout == 30
    assert fw_spec.netmask == "255.255.255.0"
    (d,) = fw_dests.values()
    assert (d.forward, d.tun_type, d.tun_port, d.tun_flags) == ("TUN", "gue", 6080, 1)
    udp_spec, udp_dests = table[SvcKey(4, "UDP", "10.4.0.1", 53)]
    assert udp_spec.flags == F_ONEPACKET
    (u,) = udp_dests.values()
    assert (u.forward, u.u_threshold, u.l_threshold) == ("DR", 100, 10)
    assert service_spec(cfg.virtual_servers[2], 6).netmask == "128"


def test_equal_destination_settings_are_one_object(tmp_path):
    """A big config's real servers have a handful of distinct settings: the pools share
    them (one object each would be ~1 MiB at 10,000), and a weight change still gives
    its server settings of its own."""
    _, p = pool(tmp_path)
    _, other = pool(tmp_path)
    specs = p.dests()
    two, three = specs[DestKey("10.0.1.2", 80)], specs[DestKey("10.0.1.3", 80)]
    assert two is three and other.dests()[DestKey("10.0.1.2", 80)] is two
    p.set_weight(1, 5)
    after = p.dests()
    assert after[DestKey("10.0.1.2", 80)].weight == 5
    assert after[DestKey("10.0.1.3", 80)] is three and three.weight == 1
