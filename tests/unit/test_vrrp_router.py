"""Routers and a sync group on the recording VRRP plane and a virtual clock: what an
instance does to the host (VIPs, routes, GARPs, adverts) at each transition, no root."""

from __future__ import annotations

import asyncio

import pytest
from helpers import load_text
from vloop import VirtualLoop

from conf.model import VrrpSyncGroup
from vrrp.daemon import SyncGroup
from vrrp.fsm import BACKUP, FAULT, MASTER
from vrrp.packet import decode
from vrrp.plane import RecordingPlane
from vrrp.receive import Received
from vrrp.router import Router
from vrrp.trackers import Tracker

CONF = """
vrrp_instance VI_1 {{
    interface eth0
    virtual_router_id 51
    version 3
    advert_int 0.1
    priority {prio}
    mcast_src_ip {src}
    virtual_ipaddress {{
        10.9.0.100/24
        10.9.0.101/24 dev eth1
    }}
    virtual_routes {{
        192.168.5.0/24 via 10.9.0.254
    }}
    {extra}
}}
vrrp_instance VI_2 {{
    interface eth0
    virtual_router_id 52
    version 3
    advert_int 0.1
    priority {prio}
    mcast_src_ip {src}
    virtual_ipaddress {{
        10.9.0.102/24
    }}
}}
"""


class Wire:
    """Adverts from one node's socket reach every other node's router of the same VRID."""

    def __init__(self, loop: VirtualLoop) -> None:
        self.loop = loop
        self.nodes: dict[str, dict[int, Router]] = {}
        self.deaf: set[str] = set()  # nodes that hear nothing (their adverts still go out)
        self.seen: list[tuple[float, str, int, int]] = []  # (time, node, vrid, priority)
        self.payloads: list[bytes] = []

    def socket(self, node: str) -> WireSocket:
        return WireSocket(self, node)


class WireSocket:
    def __init__(self, wire: Wire, node: str) -> None:
        self.wire, self.node = wire, node

    def join(self, group: str) -> None:
        pass

    def send(self, payload: bytes, src: str, dst: str, ttl: int) -> None:
        w = self.wire
        vrid, prio = payload[1], payload[2]
        w.seen.append((round(w.loop.time(), 3), self.node, vrid, prio))
        w.payloads.append(payload)
        for name, routers in w.nodes.items():
            if name != self.node and name not in w.deaf and vrid in routers:
                rx = Received(family=4, src=src, dst=dst, ttl=ttl, payload=payload,
                              multicast=True)
                w.loop.call_soon(routers[vrid].receive, rx)


@pytest.fixture
def loop():
    lp = VirtualLoop()
    asyncio.set_event_loop(lp)
    yield lp
    tasks = asyncio.all_tasks(lp)  # GARP refresh rounds of masters still running
    for t in tasks:
        t.cancel()
    lp.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    lp.close()
    asyncio.set_event_loop(None)


def node(tmp_path, wire: Wire, name: str, prio: int, src: str, extra: str = ""):
    text = CONF.format(prio=prio, src=src, extra=extra)
    loaded = load_text(tmp_path, text, name=f"{name}.conf")
    assert not [d for d in loaded.diags.items if d.severity == "error"]
    cfg = loaded.config
    plane = RecordingPlane()
    routers = [Router(i, cfg.global_defs, plane, []) for i in cfg.vrrp_instances]
    sock = wire.socket(name)
    for r in routers:
        r.attach(sock, sock)
    wire.nodes[name] = {r.vrid: r for r in routers}
    return plane, routers


def start(loop: VirtualLoop, *routers: Router) -> None:
    async def go() -> None:
        for r in routers:
            r.start()
    loop.run_until_complete(go())


def test_router_becomes_master_adds_vips_announces_and_hands_over(tmp_path, loop):
    wire = Wire(loop)
    pa, (a, _a2) = node(tmp_path, wire, "a", 100, "10.9.0.1")
    start(loop, a)
    loop.run_for(0.2)
    assert a.fsm.state == BACKUP and pa.held == set()
    loop.run_for(0.3)  # v3 Master_Down: 3 x 0.1 + (256 - 100) x 0.1 / 256 s
    assert a.fsm.state == MASTER
    assert pa.of("set_vip") == [("add", "10.9.0.100", "eth0"), ("add", "10.9.0.101", "eth1")]
    assert pa.of("set_route") == [("add", "192.168.5.0/24", "eth0")]
    # the queued changes are made (flush) before anything else of the transition
    calls = [c.what for c in pa.calls]
    first = calls.index("flush")
    assert calls[first - 1] == "set_route" and "set_vip" not in calls[first:]
    assert "announce" not in calls[:first] and first < calls.index("announce")
    # GARPs leave from the instance's interface, for the VIPs on it only
    assert ("eth0", "10.9.0.100", 4) in pa.of("announce")
    assert all(args[1] != "10.9.0.101" for args in pa.of("announce"))
    sent = [s for s in wire.seen if s[1] == "a" and s[2] == 51]
    assert sent and all(p == 100 for _t, _n, _v, p in sent)
    adv = decode(wire.payloads[-1], 4, "10.9.0.1", "224.0.0.18")
    assert adv.priority == 100 and adv.addrs == ("10.9.0.100", "10.9.0.101")

    pb, (b, _b2) = node(tmp_path, wire, "b", 200, "10.9.0.2")
    start(loop, b)
    loop.run_for(1.0)  # b hears a lower priority master and preempts it
    assert b.fsm.state == MASTER and a.fsm.state == BACKUP
    assert pa.held == set()  # a removed what it had added, route first
    deletes = [c for c in pa.calls if c.args[:1] == ("delete",)]
    assert [c.what for c in deletes] == ["set_route", "set_vip", "set_vip"]
    assert ("add", "10.9.0.100", "eth0") in pb.of("set_vip")
    assert a.stats()["release_master"] == 1 and b.stats()["become_master"] == 1


def test_master_answers_a_lower_priority_master_at_once(tmp_path, loop):
    wire = Wire(loop)
    _pa, (a, _) = node(tmp_path, wire, "a", 200, "10.9.0.1")
    _pb, (b, _) = node(tmp_path, wire, "b", 100, "10.9.0.2")
    start(loop, a, b)
    loop.run_for(1.0)
    assert a.fsm.state == MASTER and b.fsm.state == BACKUP
    wire.deaf.add("b")  # b hears nothing and goes MASTER too: split brain
    loop.run_for(1.0)
    assert b.fsm.state == MASTER and a.fsm.state == MASTER
    # a answers every advert of b's in the same instant, not at its own next advert
    b_sent = [t for t, n, v, p in wire.seen if n == "b" and v == 51 and p == 100]
    a_sent = {t for t, n, v, p in wire.seen if n == "a" and v == 51 and p == 200}
    assert len(b_sent) >= 3 and all(t in a_sent for t in b_sent)
    wire.deaf.clear()
    loop.run_for(0.15)
    assert b.fsm.state == BACKUP and a.fsm.state == MASTER


def test_sync_group_moves_together_and_faults_together(tmp_path, loop):
    wire = Wire(loop)
    pa, (a1, a2) = node(tmp_path, wire, "a", 150, "10.9.0.1")
    _pb, (b1, b2) = node(tmp_path, wire, "b", 100, "10.9.0.2")
    ga = SyncGroup(VrrpSyncGroup(name="G", group=("VI_1", "VI_2")), [a1, a2], [])
    SyncGroup(VrrpSyncGroup(name="G", group=("VI_1", "VI_2")), [b1, b2], [])
    link = Tracker("t0")
    a2.track(link, 0, False)
    start(loop, a1, a2, b1, b2)
    loop.run_for(1.0)
    assert (a1.fsm.state, a2.fsm.state, b1.fsm.state, b2.fsm.state) == (
        MASTER, MASTER, BACKUP, BACKUP)
    assert ga.state == MASTER
    link._set(False)  # VI_2's own fault takes VI_1 along
    loop.run_for(0.6)
    assert (a1.fsm.state, a2.fsm.state) == (FAULT, FAULT) and ga.state == FAULT
    assert (b1.fsm.state, b2.fsm.state) == (MASTER, MASTER)
    assert pa.held == set()
    link._set(True)
    loop.run_for(1.0)  # back as one: BACKUP, then both preempt
    assert (a1.fsm.state, a2.fsm.state, b1.fsm.state, b2.fsm.state) == (
        MASTER, MASTER, BACKUP, BACKUP)
    assert ("10.9.0.102", 24, "eth0") in pa.held


def test_stop_sends_priority_zero_and_removes_vips(tmp_path, loop):
    wire = Wire(loop)
    pa, (a, _) = node(tmp_path, wire, "a", 100, "10.9.0.1")
    start(loop, a)
    loop.run_for(1.0)
    assert a.fsm.state == MASTER and pa.held
    a.stop()
    assert wire.seen[-1][1:] == ("a", 51, 0) and pa.held == set()
    assert a.stats()["pri_zero_sent"] == 1


NO_IFACE = """
vrrp_instance VI_U {
    state BACKUP
    virtual_router_id 61
    priority 100
    advert_int 1
    unicast_src_ip 10.9.0.1
    unicast_peer {
        10.9.0.2
    }
    virtual_ipaddress {
        10.9.0.200/24
    }
}
"""


def test_unicast_instance_without_interface_uses_the_source_address_interface(tmp_path):
    """keepalived runs a unicast instance with no interface when it has a source address:
    a warning, and the instance lives on the interface that holds that address."""
    loaded = load_text(tmp_path, NO_IFACE)
    assert not [d for d in loaded.diags.items if d.severity == "error"]
    assert any("unicast_src_ip 10.9.0.1" in d.message for d in loaded.diags.items
               if d.severity == "warning")
    (inst,) = loaded.config.vrrp_instances
    plane = RecordingPlane()
    plane.sources[("ens3", 4)] = "10.9.0.1"
    router = Router(inst, loaded.config.global_defs, plane, [])
    assert router.ifname == "ens3" and router.dev == "ens3"
    # without the source address, keepalived refuses the instance, and so do we
    refused = load_text(tmp_path, NO_IFACE.replace("    unicast_src_ip 10.9.0.1\n", ""))
    assert any("has no interface" in d.message for d in refused.diags.items
               if d.severity == "error")
