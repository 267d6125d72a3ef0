"""director ctl: the pure override logic, request parsing, naming of virtual and real
servers, the VRRP handover hold, the page's cross-site check, and the LVS child's control
handler on the dry-run plane (drain waits for the connections, overrides kept over a
reload, bad input changes nothing)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat

import pytest
from helpers import load_text
from test_vrrp_fsm import Wire, node

from daemonlib.control import BadRequest, Peer, Reply, Request, Server, call
from director.ctl import build, make_parser, render_status
from director.ctl_lvs import LvsControl
from director.dataplane import DryRunPlane
from director.ipvs_table import DestKey, DestSpec, SvcKey
from director.lvs import Lvs
from director.overrides import (
    DRAINED,
    DRAINING,
    Override,
    apply,
    command,
    drain_step,
    find_rs,
    find_vs,
)
from director.status_page import cross_site
from vrrp.fsm import BACKUP, MASTER

SPEC = DestSpec("NAT", 5)


# -- pure overrides ------------------------------------------------------------------------
def run(ov, cmd, **kw):
    return command(ov, cmd, now=100.0, wall=1e9, who="uid 0 pid 1", name="rs", **kw)


def test_apply_weight_drain_drained_and_never_revives_a_dead_server():
    assert apply(SPEC, True, None) == SPEC
    assert apply(SPEC, True, Override(weight=9)).weight == 9
    assert apply(SPEC, True, Override(drain=DRAINING)).weight == 0
    assert apply(SPEC, True, Override(drain=DRAINED)) is None
    assert apply(None, False, Override(weight=9)) is None  # checker down: stays out
    inhibited = DestSpec("NAT", 0)  # inhibit_on_failure keeps a dead one at 0
    assert apply(inhibited, False, Override(weight=9)).weight == 0


def test_commands():
    out = run(None, "drain", timeout=30)
    assert out.changed and out.override.drain == DRAINING and out.override.deadline == 130.0
    again = run(attrs_evolve(out.override, drain=DRAINED), "drain")
    assert not again.changed and "already drained" in again.message
    w = run(None, "weight", weight=7)
    assert w.override == Override(weight=7, who="uid 0 pid 1", since=1e9)
    drained_weighted = Override(weight=7, drain=DRAINED)
    en = run(drained_weighted, "enable")
    assert en.override.weight == 7 and en.override.drain is None  # weight kept
    assert run(Override(drain=DRAINED), "enable").override is None
    assert not run(None, "enable").changed
    assert run(drained_weighted, "clear").override is None
    assert not run(None, "clear").changed
    assert run(Override(drain=DRAINING), "weight", weight=3).override.drain is None


def attrs_evolve(ov, **kw):
    import attrs

    return attrs.evolve(ov, **kw)


def test_drain_step_ends_at_zero_connections_or_timeout():
    ov = Override(drain=DRAINING, deadline=130.0)
    assert drain_step(ov, 3, 120.0) == (ov, None)
    done, why = drain_step(ov, 0, 120.0)
    assert done.drain == DRAINED and why == "its active connections ended"
    done, why = drain_step(ov, 2, 130.0)
    assert done.drain == DRAINED and why == "timeout with 2 active connections"
    assert drain_step(Override(drain=DRAINING), 5, 1e12)[1] is None  # no timeout: waits
    assert drain_step(Override(weight=2), 0, 0.0)[1] is None


CONF = """
virtual_server 10.0.0.1 80 {
    lb_algo rr
    protocol TCP
    real_server 10.0.1.1 80 { weight 2 }
    real_server 10.0.1.2 8080 { weight 3 }
}
virtual_server 10.0.0.1 80 {
    protocol UDP
    real_server 10.0.1.1 80 { }
}
virtual_server fwmark 7 {
    real_server 10.0.1.3 80 { }
}
"""


def test_naming_virtual_and_real_servers(tmp_path):
    cfg = load_text(tmp_path, CONF).config
    vss = cfg.virtual_servers
    assert find_vs(vss, "[10.0.0.1]:tcp:80") == 0
    assert find_vs(vss, "10.0.0.1:80/udp") == 1
    assert find_vs(vss, "FWM 7") == 2 and find_vs(vss, "fwmark 7") == 2
    with pytest.raises(ValueError, match="ambiguous: add /tcp"):
        find_vs(vss, "10.0.0.1:80")
    with pytest.raises(ValueError, match=r"no virtual server '10.0.0.9:80' \(known: "):
        find_vs(vss, "10.0.0.9:80")
    assert find_rs(vss[0], "10.0.1.2:8080") == 1
    assert find_rs(vss[0], "10.0.1.2") == 1
    with pytest.raises(ValueError, match="has no real server '10.0.1.2:80'"):
        find_rs(vss[0], "10.0.1.2:80")


# -- requests on the wire -------------------------------------------------------------------
def test_request_parsing():
    r = Request.from_json(b'{"cmd": "weight", "vs": "a", "rs": "b", "weight": 4}\n')
    assert r == Request("weight", vs="a", rs="b", weight=4)
    assert Request.from_json(r.to_json()) == r
    for bad, why in ((b"{", "not JSON"), (b"[]", "JSON object"),
                     (b'{"cmd": "explode"}', "unknown command"),
                     (b'{"cmd": "drain", "vs": "a"}', "missing rs"),
                     (b'{"cmd": "weight", "vs": "a", "rs": "b", "weight": -1}', "0..65535"),
                     (b'{"cmd": "weight", "vs": "a", "rs": "b", "weight": 1.5}', "whole"),
                     (b'{"cmd": "weight", "vs": "a", "rs": "b", "weight": true}', "whole"),
                     (b'{"cmd": "drain", "vs": "a", "rs": "b", "timeout": 0}', "timeout"),
                     (b'{"cmd": "status", "bogus": 1}', "unknown field"),
                     (b'{"cmd": "handover", "instance": ""}', "non-empty")):
        with pytest.raises(BadRequest, match=why):
            Request.from_json(bad)
    assert Reply.from_json(b"garbage").ok is False


def test_cli_routes_commands_to_the_right_child():
    p = make_parser()
    assert build(p.parse_args(["drain", "v", "r", "--timeout", "5"])) == (
        "lvs", Request("drain", vs="v", rs="r", timeout=5.0, wait=True))
    assert build(p.parse_args(["clear", "VI_1"])) == ("vrrp", Request("release",
                                                                      instance="VI_1"))
    assert build(p.parse_args(["clear", "v", "r"]))[0] == "lvs"
    assert build(p.parse_args(["takeover", "VI_1", "--json"]))[0] == "vrrp"
    with pytest.raises(BadRequest, match="whole number"):
        build(p.parse_args(["weight", "v", "r", "x"]))
    with pytest.raises(BadRequest, match="0..65535"):
        build(p.parse_args(["weight", "v", "r", "70000"]))


# -- VRRP handover --------------------------------------------------------------------------
def test_handover_holds_backup_until_takeover():
    a, b = node("a", 200, "10.0.0.1", version=3, advert=0.1), \
        node("b", 100, "10.0.0.2", version=3, advert=0.1)
    w = Wire(a, b)
    w.start()
    w.run(1.0)
    assert w.masters() == ["a"]
    w.handle(a, a.handover(w.now))  # priority 0 advert: b takes over after its skew
    w.run(1.5)
    assert w.masters() == ["b"] and a.state == BACKUP
    w.kill("b")
    w.run(5.0)
    assert a.state == BACKUP and w.masters() == []  # held: a does not take over
    w.start("b")
    w.run(6.0)
    assert w.masters() == ["b"]
    w.handle(a, a.release(w.now, takeover=True))
    w.run(7.0)
    assert w.masters() == ["a"] and not a.held
    # release without takeover: the normal election comes back by itself
    w.handle(a, a.handover(w.now))
    w.run(8.0)
    assert w.masters() == ["b"]
    w.handle(a, a.release(w.now, takeover=False))
    w.run(8.05)
    assert w.masters() == ["b"]  # a waits for master down, as any backup, then
    w.run(9.0)
    assert w.masters() == ["a"]  # preempts with its higher priority


def test_handover_of_an_address_owner_survives_start():
    a = node("a", 255, "10.0.0.1", held=True)
    assert a.start(0.0)[0].to == BACKUP and a.state != MASTER


# -- the page's cross-site check ------------------------------------------------------------
def test_cross_site_check():
    ok = {"X-Director-Token": "t0k", "Content-Type": "application/json",
          "Origin": "http://127.0.0.1:9000", "Sec-Fetch-Site": "same-origin"}
    assert cross_site(ok, "127.0.0.1:9000", "t0k") is None
    assert cross_site({k: v for k, v in ok.items() if k not in ("Origin", "Sec-Fetch-Site")},
                      "127.0.0.1:9000", "t0k") is None  # curl: no Origin, token is enough
    for change, why in (({"X-Director-Token": "nope"}, "token"),
                        ({"X-Director-Token": ""}, "token"),
                        ({"Origin": "http://evil.example"}, "Origin"),
                        ({"Sec-Fetch-Site": "cross-site"}, "Sec-Fetch-Site"),
                        ({"Content-Type": "text/plain"}, "Content-Type")):
        assert why in cross_site({**ok, **change}, "127.0.0.1:9000", "t0k")


# -- the LVS child's handler on the dry-run plane --------------------------------------------
class Args:
    config = "/nonexistent"
    config_id = None
    all_config = False


class CountingPlane(DryRunPlane):
    """The dry-run table with connection counts a test sets (the kernel's, in real life)."""

    def __init__(self) -> None:
        super().__init__()
        self.active: dict[DestKey, int] = {}

    async def service_stats(self):
        return {k: {} for k in self.table}

    async def dest_stats(self, key):
        return {d: {"activeconns": self.active.get(d, 0)} for d in self.table[key][1]}


def test_lvs_control_drain_weight_reload_and_bad_input(tmp_path):
    cfg = load_text(tmp_path, CONF).config
    key = SvcKey(4, "TCP", "10.0.0.1", 80)
    rs1 = DestKey("10.0.1.1", 80)
    peer = Peer(0, 4242)

    async def body():
        plane = CountingPlane()
        lvs = Lvs(cfg, plane)
        await lvs.start()

        async def status():
            return {}

        ctl = LvsControl(lvs, status, Args(), str(tmp_path / "overrides.json"))
        before = await plane.read()
        for req, why in ((Request("weight", vs="10.0.0.1:80", rs="10.0.1.1", weight=4),
                          "ambiguous"),
                         (Request("drain", vs="10.0.0.1:80/tcp", rs="10.0.9.9"), "no real"),
                         (Request("handover", instance="VI_1"), "not a command")):
            r = await ctl.handle(req, peer)
            assert not r.ok and why in r.message
        assert await plane.read() == before  # bad input changed nothing

        r = await ctl.handle(Request("weight", vs="10.0.0.1:80/tcp", rs="10.0.1.1",
                                     weight=9), peer)
        assert r.ok and plane.table[key][1][rs1].weight == 9
        plane.active[rs1] = 2
        drain = asyncio.ensure_future(ctl.handle(
            Request("drain", vs="[10.0.0.1]:tcp:80", rs="10.0.1.1:80", wait=True), peer))
        await asyncio.sleep(0.05)
        assert plane.table[key][1][rs1].weight == 0 and not drain.done()
        await lvs.reload(cfg)  # the drain carries on over a reload
        ctl.after_reload()
        assert plane.table[key][1][rs1].weight == 0
        plane.active[rs1] = 0
        r = await asyncio.wait_for(drain, 5)
        assert r.ok and "drained (its active connections ended)" in r.message
        assert rs1 not in plane.table[key][1]
        await lvs.reload(cfg)
        assert rs1 not in plane.table[key][1]  # drained stays drained over a reload
        r = await ctl.handle(Request("enable", vs="10.0.0.1:80/tcp", rs="10.0.1.1"), peer)
        assert r.ok and plane.table[key][1][rs1].weight == 9  # the weight override stays
        r = await ctl.handle(Request("clear", vs="10.0.0.1:80/tcp", rs="10.0.1.1"), peer)
        assert r.ok and plane.table[key][1][rs1].weight == 2
        # a drain with a timeout ends with connections left
        plane.active[rs1] = 1
        r = await asyncio.wait_for(ctl.handle(Request(
            "drain", vs="10.0.0.1:80/tcp", rs="10.0.1.1", timeout=0.3, wait=True), peer), 5)
        assert "timeout with 1 active connection" in r.message
        assert rs1 not in plane.table[key][1]
        # a restarted checker child takes the overrides over from the state file
        await ctl.handle(Request("weight", vs="10.0.0.1:80/tcp", rs="10.0.1.2", weight=6),
                         peer)
        ctl.stop()
        await lvs.stop()
        plane2 = CountingPlane()
        lvs2 = Lvs(cfg, plane2)
        await lvs2.start()
        ctl2 = LvsControl(lvs2, status, Args(), str(tmp_path / "overrides.json"))
        await ctl2.restore()
        assert rs1 not in plane2.table[key][1]  # still drained
        assert plane2.table[key][1][DestKey("10.0.1.2", 8080)].weight == 6
        ctl2.stop()
        await lvs2.stop()

    asyncio.run(body())


# -- the socket --------------------------------------------------------------------------------
def test_socket_is_root_only_logs_peer_and_refuses_links(tmp_path):
    run_dir = tmp_path / "run"
    seen = []

    async def handle(req, peer):
        seen.append((req.cmd, peer))
        return Reply(True, "hi", {"n": 1})

    async def body():
        srv = Server(str(run_dir), "lvs", handle)
        assert await srv.start()
        path = run_dir / "lvs.sock"
        mode = os.lstat(path).st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
        r = await call(str(run_dir), "lvs", Request("status"))
        assert r == Reply(True, "hi", {"n": 1})
        assert seen == [("status", Peer(os.geteuid(), os.getpid()))]
        # a malformed request gets an answer, not a dead socket
        reader, writer = await asyncio.open_unix_connection(str(path))
        writer.write(b"{nonsense\n")
        reply = json.loads(await reader.readline())
        writer.close()
        assert reply["ok"] is False and "not JSON" in reply["message"]
        await srv.close()
        assert not path.exists()
        # a planted link where the socket goes: refused, the target untouched
        target = tmp_path / "victim"
        target.write_text("x")
        os.symlink(target, path)
        assert not await Server(str(run_dir), "lvs", handle).start()
        assert target.read_text() == "x" and os.path.islink(path)
        os.unlink(path)
        # a directory others can write to: refused
        os.chmod(run_dir, 0o777)
        assert not await Server(str(run_dir), "lvs", handle).start()

    asyncio.run(body())
    assert socket.AF_UNIX


def test_render_status_shows_overrides():
    st = {"vrrp": {"instances": [{"name": "VI_1", "state": "BACKUP", "priority": 100,
                                  "master_ip": "10.0.0.2", "vips": ["10.0.0.100/24"],
                                  "override": {"handover": "uid 0 pid 7"}}]},
          "lvs": {"dry_run": True, "virtual_servers": [{
              "name": "[10.0.0.1]:tcp:80", "lb_algo": "rr", "lb_kind": "NAT",
              "quorum_up": True, "real_servers": [{
                  "address": "10.0.1.1", "port": 80, "alive": True, "weight": 2,
                  "configured_weight": 2, "effective_weight": 0, "activeconns": 3,
                  "inactconns": 1, "checkers": [], "stats": {"cps": 4},
                  "override": {"drain": "draining", "weight": None, "who": "uid 0 pid 9"}}]}]}}
    text = render_status(st)
    assert "handover (uid 0 pid 7)" in text
    assert "draining (uid 0 pid 9)" in text and "2/0" in text and "dry run" in text


# -- the page's server side ---------------------------------------------------------------------
def test_page_controls_only_on_local_listeners_and_behind_the_token(tmp_path):
    from aiohttp.test_utils import TestClient, TestServer

    from director.metrics import is_local, make_app, parse_listen

    assert parse_listen("unix:/run/d.sock") == ("unix:/run/d.sock", 0)
    assert parse_listen("9100") == ("127.0.0.1", 9100)
    assert is_local("127.0.0.1") and is_local("::1") and is_local("unix:/x")
    assert not is_local("0.0.0.0") and not is_local("10.0.0.1")

    async def body():
        async with TestClient(TestServer(make_app(str(tmp_path), controls=False))) as c:
            page = await (await c.get("/")).text()
            assert 'content="0"' in page and "director status" in page
            assert (await c.post("/api/ctl", json={"cmd": "drain"})).status in (404, 405)
            assert (await c.get("/static/status.js")).status == 200
            assert (await c.get("/static/..%2fctl.py")).status == 404
        async with TestClient(TestServer(make_app(str(tmp_path), controls=True))) as c:
            page = await (await c.get("/")).text()
            token = page.split('name="director-token" content="')[1].split('"')[0]
            assert len(token) >= 32
            body = {"cmd": "drain", "vs": "10.0.0.1:80", "rs": "10.0.1.1:80"}
            r = await c.post("/api/ctl", json=body, headers={"X-Director-Token": "x"})
            assert r.status == 403
            r = await c.post("/api/ctl", json=body, headers={
                "X-Director-Token": token, "Origin": "http://evil.example"})
            assert r.status == 403
            r = await c.post("/api/ctl", json={**body, "cmd": "reload"},
                             headers={"X-Director-Token": token})
            assert r.status == 400 and "drain, enable, weight, clear only" in \
                (await r.json())["message"]
            # the right token, no daemon behind it: the socket's absence is reported
            r = await c.post("/api/ctl", json=body, headers={"X-Director-Token": token})
            assert r.status == 409 and "no such socket" in (await r.json())["message"]

    asyncio.run(body())
