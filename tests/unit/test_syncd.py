"""lvs_sync_daemon: which IPVS sync daemon runs when (keepalived's rules: the VRRP side
follows the named instance, the LVS side runs both when no instance is named), the
request bytes against pyroute2's, and the config forms keepalived reads. No root."""

from __future__ import annotations

import pytest
from helpers import load_text, messages
from test_vrrp_router import CONF, Wire, start
from test_vrrp_router import loop as loop  # noqa: F401 (the virtual-clock fixture)

from conf.model import LvsSyncDaemon
from daemonlib.ipvs_syncd import SyncdCommand, SyncdParams, daemon_attrs
from director.ipvs_netlink import IpvsMsg, daemon_request
from director.lvs import syncd_commands
from vrrp.daemon import VrrpDaemon
from vrrp.fsm import BACKUP, FAULT, INIT, MASTER
from vrrp.plane import RecordingPlane
from vrrp.router import Router
from vrrp.syncd import SyncdFollower

P = SyncdParams("eth0", 51)


def ops(cmds: list[SyncdCommand]) -> list[tuple[str, str, bool]]:
    return [(c.op, c.role, c.cleanup) for c in cmds]


# -- the requests ---------------------------------------------------------------------
@pytest.mark.parametrize("cmd", [
    SyncdCommand("start", "master", SyncdParams("eth0", 51)),
    SyncdCommand("start", "backup", SyncdParams("eth1", 0, maxlen=1400, group="224.0.0.81",
                                                port=8848, ttl=2)),
    SyncdCommand("start", "master", SyncdParams("bond0.7", 255, group="ff02::81")),
    SyncdCommand("stop", "backup", P),
], ids=lambda c: c.describe())
def test_request_is_pyroute2s_byte_for_byte(cmd):
    kind, attrs_ = daemon_request(cmd)
    msg = IpvsMsg()
    msg["cmd"], msg["version"], msg["attrs"] = kind, 1, attrs_
    msg.encode()
    assert bytes(msg.data)[20:] == daemon_attrs(cmd)  # after nlmsghdr + genlmsghdr
    assert kind == (9 if cmd.op == "start" else 10)


# -- the VRRP side: follow the instance -------------------------------------------------
def test_follower_backup_at_start_master_on_master_backup_when_leaving():
    f = SyncdFollower(P)
    # a crashed run may have left a MASTER daemon: stopped quietly, then BACKUP
    assert ops(f.start()) == [("stop", "master", True), ("start", "backup", False)]
    assert f.entered(INIT, BACKUP) == []
    assert ops(f.entered(BACKUP, MASTER)) == [("stop", "backup", False),
                                              ("start", "master", False)]
    assert ops(f.entered(MASTER, FAULT)) == [("stop", "master", False),
                                             ("start", "backup", False)]
    assert f.entered(FAULT, BACKUP) == [] and f.entered(BACKUP, FAULT) == []
    assert ops(f.entered(BACKUP, MASTER))[-1] == ("start", "master", False)
    assert ops(f.entered(MASTER, BACKUP)) == [("stop", "master", False),
                                              ("start", "backup", False)]
    assert ops(f.stop()) == [("stop", "backup", False)] and f.stop() == []


def test_follower_stop_as_master_stops_the_master_daemon_only():
    f = SyncdFollower(P)
    f.start()
    f.entered(BACKUP, MASTER)
    assert f.entered(MASTER, INIT) == []  # the stop transition starts no BACKUP daemon
    assert ops(f.stop()) == [("stop", "master", False)]


def test_follower_resuming_master_and_reloads():
    f = SyncdFollower(P)  # a restarted child finding its VIPs: MASTER without a transition
    assert ops(f.resume_master()) == [("stop", "backup", True), ("start", "master", False)]
    assert f.resume_master() == []
    same = SyncdFollower(SyncdParams("eth0", 51))
    assert same.adopt(f) == [] and same.role == "master" and same.resume_master() == []
    assert f.stop() == []  # the old one (its instance dropped by the reload) lets it run
    changed = SyncdFollower(SyncdParams("eth1", 51))
    assert ops(changed.adopt(same)) == [("stop", "master", False)]
    assert changed.role is None
    assert ops(changed.resume_master()) == [("stop", "backup", True),
                                            ("start", "master", False)]


def test_params_syncid_defaults_to_the_instance_vrid():
    sd = LvsSyncDaemon(interface="eth0", vrrp_instance="VI_1")
    assert SyncdParams.of(sd, 51).syncid == 51
    assert SyncdParams.of(LvsSyncDaemon(interface="eth0", syncid=0), 51).syncid == 0
    assert SyncdParams.of(LvsSyncDaemon(interface="eth0"), None).syncid == 0


GLOBAL = "global_defs {{\n    lvs_sync_daemon {sd}\n}}\n"


def pair_node(tmp_path, wire: Wire, name: str, prio: int, src: str, sd: str):
    text = GLOBAL.format(sd=sd) + CONF.format(prio=prio, src=src, extra="")
    loaded = load_text(tmp_path, text, name=f"{name}.conf")
    assert loaded.ok, messages(loaded)
    plane = RecordingPlane()
    daemon = VrrpDaemon(loaded.config, addrs=plane)  # attaches the follower
    routers = daemon.routers
    sock = wire.socket(name)
    for r in routers:
        r.attach(sock, sock)
    wire.nodes[name] = {r.vrid: r for r in routers}
    return plane, routers


def test_the_named_instance_drives_the_daemons_through_a_failover(tmp_path, loop):  # noqa: F811
    wire = Wire(loop)
    pa, (a1, a2) = pair_node(tmp_path, wire, "a", 150, "10.9.0.1", "eth0 VI_1 id 9")
    pb, (b1, b2) = pair_node(tmp_path, wire, "b", 100, "10.9.0.2", "eth0 VI_1 id 9")
    assert a1.syncd is not None and a2.syncd is None  # VI_2 is not the named one
    assert a1.syncd.params == SyncdParams("eth0", 9)
    start(loop, a1, a2, b1, b2)
    loop.run_for(1.0)
    assert (a1.fsm.state, b1.fsm.state) == (MASTER, BACKUP)
    assert pa.of("sync_daemon") == [("stop", "master", True), ("start", "backup", False),
                                    ("stop", "backup", False), ("start", "master", False)]
    # the MASTER daemon starts after the VIPs are queued (as keepalived)
    calls = [c.what for c in pa.calls]
    assert calls.index("set_vip") < len(calls) - 1 - calls[::-1].index("sync_daemon")
    assert pb.of("sync_daemon") == [("stop", "master", True), ("start", "backup", False)]
    wire.deaf.add("b")  # b hears nothing more: it takes over, and its daemon follows
    loop.run_for(1.0)
    assert b1.fsm.state == MASTER
    assert pb.of("sync_daemon")[2:] == [("stop", "backup", False), ("start", "master", False)]
    wire.deaf.clear()  # a (150) preempts b back: b's daemon back to BACKUP
    loop.run_for(1.0)
    assert (a1.fsm.state, b1.fsm.state) == (MASTER, BACKUP)
    assert pb.of("sync_daemon")[4:] == [("stop", "master", False), ("start", "backup", False)]
    a1.stop()
    assert pa.of("sync_daemon")[-1] == ("stop", "master", False)


def test_an_instance_not_named_or_no_instance_leaves_the_vrrp_side_alone(tmp_path):
    for sd in ("eth0", "eth0 VI_2", "eth0 inst VI_2 id 3"):
        text = GLOBAL.format(sd=sd) + CONF.format(prio=100, src="10.9.0.1", extra="")
        loaded = load_text(tmp_path, text)
        assert loaded.ok, messages(loaded)
        d = VrrpDaemon(loaded.config, addrs=RecordingPlane())
        named = [r.name for r in d.routers if r.syncd is not None]
        assert named == ([] if sd == "eth0" else ["VI_2"]), sd
        if named:
            assert d.by_name["VI_2"].syncd.params.syncid == (3 if "id 3" in sd else 52)


def test_router_start_in_fault_still_starts_the_backup_daemon(tmp_path, loop):  # noqa: F811
    text = GLOBAL.format(sd="eth0 VI_1") + CONF.format(prio=100, src="10.9.0.1", extra="")
    loaded = load_text(tmp_path, text)
    plane = RecordingPlane()
    d = VrrpDaemon(loaded.config, addrs=plane)
    r: Router = d.by_name["VI_1"]  # no socket attached: no source address, FAULT
    start(loop, r)
    assert r.fsm.state == FAULT
    assert plane.of("sync_daemon") == [("stop", "master", True), ("start", "backup", False)]


# -- the LVS side: both daemons when no instance is named ------------------------------
def cfg_with(tmp_path, sd: str | None):
    head = GLOBAL.format(sd=sd) if sd else ""
    loaded = load_text(tmp_path, head + CONF.format(prio=100, src="10.9.0.1", extra=""))
    assert loaded.ok, messages(loaded)
    return loaded.config


def test_lvs_side_runs_both_daemons_only_without_an_instance(tmp_path):
    none, named = cfg_with(tmp_path, None), cfg_with(tmp_path, "eth0 VI_1")
    both, other = cfg_with(tmp_path, "eth0 id 4"), cfg_with(tmp_path, "eth1 id 4")
    assert syncd_commands(None, named) == [] and syncd_commands(named, None) == []
    assert syncd_commands(None, none) == []
    start_cmds = syncd_commands(None, both)
    assert ops(start_cmds) == [("stop", "master", True), ("stop", "backup", True),
                               ("start", "master", False), ("start", "backup", False)]
    assert {c.params for c in start_cmds} == {SyncdParams("eth0", 4)}
    assert syncd_commands(both, both) == []  # a reload that keeps them
    moved = syncd_commands(both, other)
    assert ops(moved) == [("stop", "master", False), ("stop", "backup", False),
                          ("start", "master", False), ("start", "backup", False)]
    assert moved[-1].params.ifname == "eth1"
    assert ops(syncd_commands(both, named)) == [("stop", "master", False),
                                                ("stop", "backup", False)]
    assert ops(syncd_commands(both, None)) == [("stop", "master", False),
                                               ("stop", "backup", False)]


# -- the config forms keepalived reads --------------------------------------------------
@pytest.mark.parametrize("line, want, warned", [
    ("eth0", LvsSyncDaemon(interface="eth0"), ""),
    ("eth0 VI_1", LvsSyncDaemon(interface="eth0", vrrp_instance="VI_1"), ""),
    ("eth0 inst VI_1 id 7", LvsSyncDaemon(interface="eth0", vrrp_instance="VI_1", syncid=7), ""),
    ("eth0 id 7 inst VI_1", LvsSyncDaemon(interface="eth0", vrrp_instance="VI_1", syncid=7), ""),
    ("eth0 VI_1 7", LvsSyncDaemon(interface="eth0", vrrp_instance="VI_1", syncid=7),
     "use the keyword 'id'"),
])
def test_lvs_sync_daemon_forms(tmp_path, line, want, warned):
    loaded = load_text(tmp_path, GLOBAL.format(sd=line) + CONF.format(
        prio=100, src="10.9.0.1", extra=""))
    assert loaded.ok, messages(loaded)
    got = loaded.config.global_defs.lvs_sync_daemon
    assert got is not None and got.pos.line == 2
    assert attrs_of(got) == attrs_of(want)
    warnings = messages(loaded, "warning")
    assert any(warned in m for m in warnings) if warned else not warnings, warnings


def attrs_of(sd: LvsSyncDaemon) -> tuple[object, ...]:
    return (sd.interface, sd.vrrp_instance, sd.syncid, sd.maxlen, sd.port, sd.ttl, sd.group)
