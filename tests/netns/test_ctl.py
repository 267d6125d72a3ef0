"""`director ctl` and the status page against a running `director -f` pair (VRRP between
hosts a and b, nginx real servers on d and e checked by TCP_CHECK, the LVS side on the
dry-run plane: this kernel has no IPVS; tests/kernel drains under live traffic).

- ctl: status; handover/takeover moving the VIP; weight and drain visible in
  `ctl status --json`, /status and /metrics; overrides kept over `ctl reload` and SIGHUP;
  a bad config's diagnostics printed to the caller; bad input changes nothing.
- the page in headless Chromium: instances and servers shown, drain clicked, the real
  server leaves the table; a screenshot kept in out/ (the README's picture).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
from lan import DIRECTOR, vrrp_conf, wait_for
from testlib import ROOT

from daemonlib.control import Request, call

PORT = 19653
LVS = """
virtual_server 10.9.0.100 80 {
    delay_loop 0.5
    lb_algo wrr
    lb_kind NAT
    protocol TCP
    real_server 10.9.0.4 80 {
        weight 2
        TCP_CHECK {
            connect_timeout 1
            retry 0
        }
    }
    real_server 10.9.0.5 80 {
        weight 3
        TCP_CHECK {
            connect_timeout 1
            retry 0
        }
    }
}
"""
HOSTS = {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}
VS = "10.9.0.100:80"


def ctl(d, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([DIRECTOR, "ctl", "--runtime-dir", d.dir, *args], capture_output=True,
                       text=True, timeout=60)
    if check:
        assert r.returncode == 0, f"ctl {args}: rc {r.returncode}: {r.stderr}"
    return r


def status(d) -> dict:
    return json.loads(ctl(d, "status", "--json").stdout)


def rs_of(st: dict, address: str) -> dict:
    return next(r for r in st["lvs"]["virtual_servers"][0]["real_servers"]
                if r["address"] == address)


DOWN_RS = """    real_server 10.9.0.6 80 {
        TCP_CHECK {
            connect_timeout 0.5
            retry 0
        }
    }
}
"""


def pair(make_lan, lvs: str = LVS):
    lan = make_lan(HOSTS)
    for h in ("d", "e"):
        lan.nginx(h, f"hello from {h}")
    a = lan.start("a", "director", vrrp_conf(priority=150) + lvs, "--dry-run",
                  "--metrics", f"127.0.0.1:{PORT}")
    b = lan.start("b", "director", vrrp_conf(priority=100) + lvs, "--dry-run")

    def settled() -> bool:
        try:
            st = status(a)
        except (AssertionError, ValueError):
            return False
        if not (st["vrrp"] and st["lvs"]):
            return False  # a child not serving its socket yet
        return (st["vrrp"]["instances"][0]["state"] == "MASTER"
                and all(r["effective_weight"] for r in
                        st["lvs"]["virtual_servers"][0]["real_servers"][:2]))
    wait_for(settled, 40, step=0.2, what="a MASTER with both real servers in its table")
    lan.wait_holder("10.9.0.100", "a")
    return lan, a, b


def overrides(st: dict) -> list:
    return [(r["address"], r["override"] and {k: r["override"][k] for k in ("weight", "drain")},
             r["effective_weight"]) for r in st["lvs"]["virtual_servers"][0]["real_servers"]]


def test_ctl_against_a_running_pair(make_lan):
    lan, a, b = pair(make_lan)
    text = ctl(a, "status").stdout
    assert "VI_1" in text and "MASTER" in text and "10.9.0.4:80" in text and "2/2" in text

    # requests never hold up the adverts: stalled clients and a burst of status calls to
    # the VRRP child while b (at advert_int 0.1) would take over on three missed adverts
    flips = status(b)["vrrp"]["instances"][0]["stats"]["become_master"]

    async def hammer() -> int:
        stalled = [await asyncio.open_unix_connection(f"{a.dir}/vrrp.sock") for _ in range(20)]
        answered = 0
        for _ in range(300):
            answered += (await call(a.dir, "vrrp", Request("status"))).ok
        for _r, w in stalled:
            w.close()
        return answered
    assert asyncio.run(hammer()) == 300
    assert status(b)["vrrp"]["instances"][0]["stats"]["become_master"] == flips
    assert status(a)["vrrp"]["instances"][0]["state"] == "MASTER"

    # handover: a gives up MASTER (priority 0 advert) and stays BACKUP while b runs
    r = ctl(a, "handover", "VI_1")
    assert "handed over" in r.stdout
    lan.wait_holder("10.9.0.100", "b", timeout=10)
    sent = status(b)["vrrp"]["instances"][0]["stats"]["advert_sent"]
    wait_for(lambda: status(b)["vrrp"]["instances"][0]["stats"]["advert_sent"] > sent + 30,
             20, step=0.2, what="b to send 30 more adverts (3 s at advert_int 0.1)")
    inst = status(a)["vrrp"]["instances"][0]
    assert inst["state"] == "BACKUP" and "uid 0 pid" in inst["override"]["handover"]
    assert lan.holders("10.9.0.100") == ["b"]
    ctl(a, "takeover", "VI_1")
    lan.wait_holder("10.9.0.100", "a", timeout=10)
    assert status(a)["vrrp"]["instances"][0]["override"] is None

    # weight and drain on the dry-run plane
    out = json.loads(ctl(a, "weight", VS, "10.9.0.4:80", "7", "--json").stdout)
    assert out["ok"] and "weight 7" in out["message"]
    r = ctl(a, "drain", VS, "10.9.0.5", "--timeout", "30")
    assert "drained (its active connections ended): removed from IPVS" in r.stdout
    st = status(a)
    assert overrides(st) == [("10.9.0.4", {"weight": 7, "drain": None}, 7),
                             ("10.9.0.5", {"weight": None, "drain": "drained"}, None)]
    assert rs_of(st, "10.9.0.5")["alive"]  # the checker still says up: out by the operator
    log = a.output()
    edit = log.index("IPVS dry-run: edit real server [10.9.0.5]:80")
    assert log.index("IPVS dry-run: del real server [10.9.0.5]:80", edit) > edit
    assert "asked by uid 0 pid" in log

    # every view shows the overrides (/status and /metrics: as published, once a second)
    def published() -> dict | None:
        text = lan.http_get("a", f"http://127.0.0.1:{PORT}/status")
        st = json.loads(text) if text else None
        return st if st and rs_of(st, "10.9.0.5")["override"] else None
    page_status = wait_for(published, 10, step=0.2, what="the overrides in /status")
    assert rs_of(page_status, "10.9.0.4")["override"]["weight"] == 7
    assert rs_of(page_status, "10.9.0.5")["override"]["drain"] == "drained"
    metrics = lan.http_get("a", f"http://127.0.0.1:{PORT}/metrics", timeout=5)
    assert 'director_lvs_rs_override_weight{port="80",protocol="TCP",rs="10.9.0.4",' \
           'rsport="80",vip="10.9.0.100"} 7.0' in metrics
    assert 'director_lvs_rs_drain{port="80",protocol="TCP",rs="10.9.0.5",' in metrics

    # bad input: a clear error, nothing changes
    before = overrides(status(a))
    for args, rc, why in ((("weight", "10.9.0.99:80", "10.9.0.4:80", "3"), 1,
                           "no virtual server '10.9.0.99:80'"),
                          (("weight", VS, "10.9.0.6:80", "3"), 1, "has no real server"),
                          (("weight", VS, "10.9.0.4:80", "-3"), 2, "0..65535"),
                          (("weight", VS, "10.9.0.4:80", "lots"), 2, "whole number"),
                          (("drain", VS, "10.9.0.4:80", "--timeout", "x"), 2, "invalid float"),
                          (("handover", "VI_9"), 1, "no vrrp_instance 'VI_9' (known: VI_1)"),
                          (("enable", VS, "10.9.0.4:80"), 0, "not drained")):
        r = ctl(a, *args, check=False)
        assert r.returncode == rc and why in (r.stderr + r.stdout), (args, r)
        assert "Traceback" not in r.stderr
    assert overrides(status(a)) == before

    # `ctl reload` and SIGHUP keep the overrides and the handover hold
    ctl(a, "handover", "VI_1")
    lan.wait_holder("10.9.0.100", "b", timeout=10)
    r = ctl(a, "reload")
    assert "valid; reload started" in r.stdout
    wait_for(lambda: status(a)["lvs"]["reloads"] == 1 and status(a)["vrrp"]["reloads"] == 1,
             20, step=0.2, what="both children of a to reload once")
    assert overrides(status(a)) == before
    a.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: status(a)["lvs"]["reloads"] == 2 and status(a)["vrrp"]["reloads"] == 2,
             20, step=0.2, what="both children of a to reload after SIGHUP")
    assert overrides(status(a)) == before
    inst = status(a)["vrrp"]["instances"][0]
    assert inst["state"] == "BACKUP" and inst["override"] is not None
    assert lan.holders("10.9.0.100") == ["b"]

    # a broken file: its diagnostics go to the caller, the running config stays
    with open(a.conf) as f:
        good = f.read()
    a.write_conf(good + "vrrp_instance VI_2 {\n    interface eth0\n"
                 "    virtual_router_id 300\n    virtual_ipaddress { 10.9.0.101 }\n}\n")
    r = ctl(a, "reload", check=False)
    assert r.returncode == 1 and "configuration has errors" in r.stderr, (r.returncode,
                                                                          r.stderr)
    assert f"{a.conf}:" in r.stderr and "virtual router id must be set" in r.stderr
    assert status(a)["lvs"]["reloads"] == 2
    a.write_conf(good)

    # clear: the handover ends (a preempts with its higher priority), the RS as configured
    ctl(a, "clear", "VI_1")
    lan.wait_holder("10.9.0.100", "a", timeout=10)
    ctl(a, "clear", VS, "10.9.0.4:80")
    ctl(a, "enable", VS, "10.9.0.5:80")
    assert overrides(status(a)) == [("10.9.0.4", None, 2), ("10.9.0.5", None, 3)]
    assert a.proc.poll() is None and b.proc.poll() is None


class Browser:
    """tests/netns/browser.py in a host's namespace: Chromium reaches that host's
    loopback, where --metrics listens."""

    def __init__(self, lan, host: str) -> None:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", lan.ns[host], sys.executable,
             os.path.join(ROOT, "tests", "netns", "browser.py")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.read()["value"] == "ready"

    def read(self) -> dict:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, "the browser driver died"
        return json.loads(line)

    def do(self, op: str, **kw):
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **kw}) + "\n")
        self.proc.stdin.flush()
        out = self.read()
        assert out["ok"], out.get("error")
        return out["value"]

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.do("quit")
                self.proc.wait(20)
            except (AssertionError, OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def test_status_page_in_headless_chromium(make_lan):
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("Debian's chromium and chromium-driver are not installed")
    pytest.importorskip("selenium")
    # a third real server nobody answers for: DOWN, red, with the checker's reason
    lan, a, _b = pair(make_lan, LVS.rstrip().removesuffix("}") + DOWN_RS)
    br = Browser(lan, "a")
    try:
        assert br.do("open", url=f"http://127.0.0.1:{PORT}/") == "director status"
        row = 'table.vs tr[data-rs="10.9.0.5:80"]'

        def rows() -> list[str]:
            return br.do("texts", css="table.vs tbody tr")
        wait_for(lambda: len(rows()) == 3 and all("UP" in r for r in rows()[:2])
                 and "DOWN" in rows()[2], 20, step=0.2,
                 what="two real servers UP and 10.9.0.6 DOWN on the page")
        assert "TCP_CHECK: " in rows()[2]  # the checker's last reason
        inst = br.do("texts", css="#vrrp tbody tr")
        assert len(inst) == 1 and "VI_1" in inst[0] and "MASTER" in inst[0]
        assert "10.9.0.100/24" in inst[0]
        assert br.do("texts", css=f"{row} td.effective") == ["3"]
        # the sparkline: one bar per check result so far, all successes
        hist = br.do("attr", css=f"{row} svg.spark", name="data-history")[0]
        assert hist and set(hist) == {"1"}
        assert br.do("texts", css="#mode") == ["controls on (loopback)"]
        os.makedirs(os.path.join(ROOT, "out"), exist_ok=True)
        shot = os.path.join(ROOT, "out", "status-page.png")
        assert br.do("screenshot", path=shot)

        br.do("click", css=f"{row} button.drain")
        wait_for(lambda: "drained" in " ".join(br.do("texts", css=row)), 20, step=0.2,
                 what="the page to show 10.9.0.5 drained")
        assert br.do("texts", css=f"{row} td.effective") == ["out"]
        assert "draining at weight 0" in br.do("texts", css="#message")[0]
        rs = rs_of(status(a), "10.9.0.5")
        assert rs["effective_weight"] is None and rs["override"]["drain"] == "drained"
        assert "via status page, client 127.0.0.1" in rs["override"]["who"]
        assert "via status page" in br.do("attr", css=f"{row} td.override", name="title")[0]
        log = a.output()
        edit = log.index("IPVS dry-run: edit real server [10.9.0.5]:80")
        assert log.index("IPVS dry-run: del real server [10.9.0.5]:80", edit) > edit
        br.do("screenshot", path=os.path.join(ROOT, "out", "status-page-drained.png"))

        br.do("click", css=f"{row} button.enable")
        wait_for(lambda: br.do("texts", css=f"{row} td.effective") == ["3"], 20, step=0.2,
                 what="the page to show 10.9.0.5 back at weight 3")

        # a weight typed in the page; a bad one refused there, changing nothing
        row4 = 'table.vs tr[data-rs="10.9.0.4:80"]'
        br.do("fill", css=f"{row4} input.w", value="-1")
        br.do("click", css=f"{row4} button.weight")
        assert "whole number" in br.do("texts", css="#message")[0]
        assert rs_of(status(a), "10.9.0.4")["override"] is None
        br.do("fill", css=f"{row4} input.w", value="5")
        br.do("click", css=f"{row4} button.weight")
        wait_for(lambda: br.do("texts", css=f"{row4} td.effective") == ["5"], 20, step=0.2,
                 what="the page to show 10.9.0.4 at weight 5")
        assert rs_of(status(a), "10.9.0.4")["override"]["weight"] == 5
        br.do("click", css=f"{row4} button.clear")
        wait_for(lambda: br.do("texts", css=f"{row4} td.effective") == ["2"], 20, step=0.2,
                 what="the page to show 10.9.0.4 back at its configured weight 2")

        # the endpoint refuses what a page elsewhere could send
        forged = br.do("script", js=(
            "return fetch('/api/ctl', {method: 'POST', headers: {'Content-Type': "
            "'application/json', 'X-Director-Token': 'forged'}, body: JSON.stringify("
            "{cmd: 'drain', vs: '10.9.0.100:80', rs: '10.9.0.4:80'})}).then(r => r.status)"))
        assert forged == 403
        assert "refused a control request from 127.0.0.1: missing or wrong page token" \
            in a.output()
        assert rs_of(status(a), "10.9.0.4")["override"] is None
    finally:
        br.close()
