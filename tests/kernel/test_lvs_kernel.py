"""The LVS side against the real kernel: tables read back with ipvsadm, minimal
diffs counted in netlink operations, stop hygiene, sync daemon, refusals, and
traffic from a client namespace through the VIP to nginx real servers."""

from __future__ import annotations

import asyncio
import collections
import re
import subprocess
import textwrap
from pathlib import Path

import pytest
from testlib import ROOT, wait_for, wait_until
from topo import VIP, Topology, rs_ip

from conf import load
from director.dataplane import KernelPlane
from director.lvs import Lvs


def ipvsadm(*args: str) -> str:
    return subprocess.run(["ipvsadm", *args], check=True, capture_output=True,
                          text=True).stdout


def listing() -> dict[str, set[tuple[str, str, int]]]:
    """`ipvsadm -Ln` as {service line: {(dest, forward, weight)}}."""
    out: dict[str, set[tuple[str, str, int]]] = {}
    svc = ""
    for line in ipvsadm("-Ln").splitlines()[3:]:
        if line.startswith("  ->"):
            f = line.split()
            out[svc].add((f[1], f[2], int(f[3])))
        else:
            svc = " ".join(line.split())
            out[svc] = set()
    return out


def config(tmp_path: Path, text: str, name: str = "keepalived.conf"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    loaded = load(str(p), check_host=False)
    assert loaded.ok, [str(d) for d in loaded.diags.items]
    return loaded.config


EVERY_KIND = """
global_defs {
    lvs_timeouts tcp 901 tcpfin 121 udp 301
    lvs_sync_daemon lo id 7 maxlen 1400     # no instance: the LVS side runs both daemons
}
vrrp_instance VI_1 {
    interface lo
    virtual_router_id 1
    virtual_ipaddress { 10.99.0.1 }
}
virtual_server_group G {
    10.1.0.1-2 80
    fwmark 9
}
virtual_server group G {
    protocol TCP
    lb_algo sh
    sh-port
    real_server 10.2.0.1 80 { weight 4 }
}
virtual_server 10.3.0.1 443 {
    protocol TCP
    lb_algo wlc
    lb_kind DR
    persistence_timeout 60
    persistence_granularity 255.255.255.0
    real_server 10.3.1.1 443 { weight 2 }
    real_server 10.3.1.2 443 { lvs_method TUN }
}
virtual_server fd00::1 53 {
    protocol UDP
    lb_algo mh
    ops
    real_server fd00::11 53 { }
    real_server fd00::12 53 { weight 0 }
}
virtual_server fwmark 5 {
    lb_algo lc
    real_server 10.5.0.1 0 { lvs_method TUN type gue port 6080 }
}
virtual_server 10.6.0.1 80 {
    protocol TCP
    lb_algo rr
    quorum 2
    sorry_server 10.6.9.9 80
    real_server 10.6.0.11 80 { inhibit_on_failure
        TCP_CHECK { } }
    real_server 10.6.0.12 80 { TCP_CHECK { } }
}
"""


def run(coro):
    return asyncio.run(coro)


async def started(cfg) -> Lvs:
    lvs = Lvs(cfg, KernelPlane())
    await lvs.start()
    return lvs


def test_every_kind_of_service_read_back_with_ipvsadm(ipvs_clean, tmp_path):
    cfg = config(tmp_path, EVERY_KIND)

    async def body():
        lvs = await started(cfg)
        try:
            got = listing()
            assert got == {
                "TCP 10.1.0.1:80 sh (sh-port)": {("10.2.0.1:80", "Masq", 4)},
                "TCP 10.1.0.2:80 sh (sh-port)": {("10.2.0.1:80", "Masq", 4)},
                "FWM 9 sh (sh-port)": {("10.2.0.1:80", "Masq", 4)},
                "TCP 10.3.0.1:443 wlc persistent 60 mask 255.255.255.0": {
                    ("10.3.1.1:443", "Route", 2), ("10.3.1.2:443", "Tunnel", 1)},
                "UDP [fd00::1]:53 mh ops": {("[fd00::11]:53", "Masq", 1),
                                            ("[fd00::12]:53", "Masq", 0)},
                "FWM 5 lc": {("10.5.0.1:0", "Tunnel", 1)},
                "TCP 10.6.0.1:80 rr": {("10.6.0.11:80", "Masq", 1),
                                       ("10.6.0.12:80", "Masq", 1)},
            }, ipvsadm("-Ln")
            tun = [ln for ln in ipvsadm("-Ln", "--tun-info").splitlines() if "10.5.0.1" in ln]
            assert len(tun) == 1 and "gue" in tun[0] and "6080" in tun[0], tun
            timeouts = ipvsadm("-L", "--timeout")
            assert "Timeout (tcp tcpfin udp): 901 121 301" in timeouts
            daemons = ipvsadm("-L", "--daemon")
            assert "master sync daemon (mcast=lo, syncid=7" in daemons, daemons
            assert "backup sync daemon (mcast=lo, syncid=7" in daemons
            # quorum lost: the sorry server alone, the inhibited server kept at 0
            await lvs.set_checker(4, 1, 0, False)
            assert listing()["TCP 10.6.0.1:80 rr"] == {
                ("10.6.0.11:80", "Masq", 0), ("10.6.9.9:80", "Masq", 1)}
            await lvs.set_checker(4, 1, 0, True)
            assert listing()["TCP 10.6.0.1:80 rr"] == {
                ("10.6.0.11:80", "Masq", 1), ("10.6.0.12:80", "Masq", 1)}
        finally:
            await lvs.stop()
        assert listing() == {}
        assert "sync daemon" not in ipvsadm("-L", "--daemon")

    run(body())


BASE = """
virtual_server 10.7.0.1 80 {
    lb_algo rr
    protocol TCP
    real_server 10.7.1.1 80 { weight 1 }
    real_server 10.7.1.2 80 { weight 1 }
}
virtual_server 10.7.0.2 80 {
    lb_algo rr
    protocol TCP
    real_server 10.7.2.1 80 { }
}
"""


def test_reload_sends_only_the_difference(ipvs_clean, tmp_path):
    async def body():
        lvs = await started(config(tmp_path, BASE))
        plane = lvs.plane
        try:
            assert plane.ops_sent == 5
            ops = await lvs.reload(config(tmp_path, BASE))
            assert ops == [] and plane.ops_sent == 5
            changed = BASE.replace("10.7.1.2 80 { weight 1 }", "10.7.1.2 80 { weight 7 }")
            ops = await lvs.reload(config(tmp_path, changed))
            assert [str(o) for o in ops] == [
                "edit real server [10.7.1.2]:80 to service [10.7.0.1]:tcp:80"]
            assert plane.ops_sent == 6
            assert ("10.7.1.2:80", "Masq", 7) in listing()["TCP 10.7.0.1:80 rr"]
            # drop a virtual server, add a real server: 1 delete + 1 add
            smaller = changed.replace(
                "virtual_server 10.7.0.2 80 {\n    lb_algo rr\n    protocol TCP\n"
                "    real_server 10.7.2.1 80 { }"
                "\n}", "").replace("real_server 10.7.1.1 80 { weight 1 }",
                                   "real_server 10.7.1.1 80 { weight 1 }\n"
                                   "    real_server 10.7.1.3 80 { }")
            ops = await lvs.reload(config(tmp_path, smaller))
            assert sorted(str(o) for o in ops) == [
                "add real server [10.7.1.3]:80 to service [10.7.0.1]:tcp:80",
                "del service [10.7.0.2]:tcp:80"]
            assert plane.ops_sent == 8
        finally:
            await lvs.stop()

    run(body())


def test_incremental_reload_applies_the_change_first_and_corrects_drift(ipvs_clean, tmp_path):
    """The checker child's reload (conf/incremental.py, then Lvs.reload): the changed
    virtual server's one operation goes to the kernel first, then the table is read back,
    which puts right what was changed behind director's back (with ipvsadm here)."""
    from conf import incremental

    blocks = "".join(f"virtual_server 10.8.0.{v} 80 {{\n    lb_algo rr\n    protocol TCP\n"
                     f"    real_server 10.8.{v}.1 80 {{ weight 1 }}\n"
                     f"    real_server 10.8.{v}.2 80 {{ weight 1 }}\n}}\n"
                     for v in range(1, 9))
    p = tmp_path / "keepalived.conf"

    def read(text: str):  # type: ignore[no-untyped-def]
        p.write_text(text)
        loaded = incremental.load_incremental(str(p), check_host=False)
        assert loaded.ok, [str(d) for d in loaded.diags.items]
        return loaded.config

    async def body():  # type: ignore[no-untyped-def]
        incremental.forget()
        lvs = await started(read(blocks))
        plane = lvs.plane
        try:
            sent = plane.ops_sent
            ipvsadm("-e", "-t", "10.8.0.2:80", "-r", "10.8.2.1:80", "-m", "-w", "9")
            changed = blocks.replace("real_server 10.8.5.2 80 { weight 1 }",
                                     "real_server 10.8.5.2 80 { weight 6 }")
            ops = await lvs.reload(read(changed))
            assert incremental.last_mode == "incremental" and incremental.last_reused == 7
            assert [str(o) for o in ops] == [
                "edit real server [10.8.5.2]:80 to service [10.8.0.5]:tcp:80",
                "edit real server [10.8.2.1]:80 to service [10.8.0.2]:tcp:80"]
            assert plane.ops_sent == sent + 2
            table = listing()
            assert ("10.8.5.2:80", "Masq", 6) in table["TCP 10.8.0.5:80 rr"]
            assert ("10.8.2.1:80", "Masq", 1) in table["TCP 10.8.0.2:80 rr"]  # drift undone
        finally:
            await lvs.stop()
            incremental.forget()

    run(body())


def test_foreign_services_survive_start_and_stop(ipvs_clean, tmp_path):
    ipvsadm("-A", "-t", "10.8.0.1:22", "-s", "rr")
    ipvsadm("-a", "-t", "10.8.0.1:22", "-r", "10.8.1.1:22", "-m")

    async def body():
        lvs = await started(config(tmp_path, BASE))
        assert len(listing()) == 3
        await lvs.stop()

    run(body())
    assert listing() == {"TCP 10.8.0.1:22 rr": {("10.8.1.1:22", "Masq", 1)}}


def test_lvs_flush_removes_foreign_services(ipvs_clean, tmp_path):
    ipvsadm("-A", "-t", "10.8.0.1:22", "-s", "rr")

    async def body():
        lvs = await started(config(tmp_path, "global_defs {\n lvs_flush\n}\n" + BASE))
        assert "TCP 10.8.0.1:22 rr" not in listing()
        await lvs.stop()

    run(body())


def test_dont_release_ipvs_keeps_the_table(ipvs_clean, tmp_path):
    async def body():
        lvs = Lvs(config(tmp_path, BASE), KernelPlane(), keep_on_stop=True)
        await lvs.start()
        await lvs.stop()

    run(body())
    assert len(listing()) == 2


def test_kernel_refusal_is_reported_and_the_rest_programmed(ipvs_clean, tmp_path):
    # make the 'sed' scheduler module impossible to load (the guest's /etc is an overlay)
    Path("/etc/modprobe.d/director-test.conf").write_text("install ip_vs_sed /bin/false\n")
    subprocess.run(["rmmod", "ip_vs_sed"], capture_output=True)
    try:
        text = BASE.replace("virtual_server 10.7.0.2 80 {\n    lb_algo rr",
                            "virtual_server 10.7.0.2 80 {\n    lb_algo sed")

        async def body():
            lvs = Lvs(config(tmp_path, text), KernelPlane())
            desired_ops = await lvs.start()
            try:
                assert len(desired_ops) == 5
                got = listing()
                assert list(got) == ["TCP 10.7.0.1:80 rr"]
            finally:
                await lvs.stop()

        run(body())
    finally:
        Path("/etc/modprobe.d/director-test.conf").unlink()


@pytest.fixture
def topology():
    topo = Topology(3).up()
    try:
        yield topo
    finally:
        topo.down()


NAT = f"""
virtual_server {VIP} 80 {{
    protocol TCP
    lb_algo rr
    lb_kind %(kind)s
    quorum 2
    sorry_server {rs_ip(3)} 80
    real_server {rs_ip(1)} 80 {{ weight 2
        TCP_CHECK {{ }} }}
    real_server {rs_ip(2)} 80 {{ TCP_CHECK {{ }} }}
}}
"""


@pytest.mark.parametrize("kind", ["NAT", "DR"])
def test_client_through_vip_round_robin_health_and_sorry(ipvs_clean, topology, tmp_path, kind):
    if kind == "DR":
        topology.dr_mode()

    async def body():
        lvs = await started(config(tmp_path, NAT % {"kind": kind}))
        try:
            got = await asyncio.to_thread(topology.fetch, 6)
            assert collections.Counter(got) == {"rs1": 3, "rs2": 3}, (got, ipvsadm("-Ln"))
            # rs2's checker says down: no new connection reaches it
            await lvs.set_checker(0, 1, 0, False)
            got = await asyncio.to_thread(topology.fetch, 4)
            assert got == ["rs1"] * 4, got
            # rs1 (weight 2) alone keeps quorum 2; without it, the sorry server answers
            await lvs.set_checker(0, 0, 0, False)
            got = await asyncio.to_thread(topology.fetch, 3)
            assert got == ["rs3"] * 3, got
            await lvs.set_checker(0, 0, 0, True)
            await lvs.set_checker(0, 1, 0, True)
            got = await asyncio.to_thread(topology.fetch, 4)
            assert collections.Counter(got) == {"rs1": 2, "rs2": 2}, got
        finally:
            await lvs.stop()

    run(body())
    assert re.search(r"TCP\s+10\.10\.0\.100:80", ipvsadm("-Ln")) is None


def test_director_ipvs_view_matches_ipvsadm(ipvs_clean, tmp_path, capsys):
    from director.ipvs_view import main as ipvs_main

    async def body():
        lvs = await started(config(tmp_path, BASE))
        try:
            assert await asyncio.to_thread(ipvs_main, []) == 0
            ours = capsys.readouterr().out
            assert await asyncio.to_thread(ipvs_main, ["--stats"]) == 0
            stats = capsys.readouterr().out
        finally:
            await lvs.stop()
        return ours, stats

    ours, stats = run(body())
    lines = [" ".join(ln.split()[:4]) for ln in ours.splitlines()[3:]]
    assert lines == ["TCP 10.7.0.1:80 rr", "-> 10.7.1.1:80 Masq 1", "-> 10.7.1.2:80 Masq 1",
                     "TCP 10.7.0.2:80 rr", "-> 10.7.2.1:80 Masq 1"], ours
    assert "Conns" in stats and "10.7.1.1:80" in stats


CHECKED = f"""
virtual_server {VIP} 80 {{
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server {rs_ip(1)} 80 {{
        HTTP_GET {{
            url {{
                path /
                status_code 200
            }}
            connect_timeout 2
            retry 0
        }}
    }}
    real_server {rs_ip(2)} 80 {{
        TCP_CHECK {{
            connect_timeout 2
            retry 1
            delay_before_retry 0.5
        }}
    }}
}}
"""


def test_health_checkers_drive_the_table(ipvs_clean, topology, tmp_path):
    """Real checkers against nginx in namespaces: nginx stopped -> its destination leaves
    the kernel table and clients reach only the other; restarted -> back."""
    from director.health import Health

    def dests() -> set[str]:
        return {m for m in re.findall(r"->\s+(\S+):80", ipvsadm("-Ln"))}

    async def wait_dests(want: set[str], timeout: float = 20) -> None:
        await wait_until(lambda: dests() == want, timeout, step=0.2,
                         what=f"the table to hold {sorted(want)}")

    async def body():
        lvs = await started(config(tmp_path, CHECKED))
        health = Health(lvs)
        health.start()
        try:
            both = {rs_ip(1), rs_ip(2)}
            await wait_dests(both)
            topology.stop_nginx(2)
            await wait_dests({rs_ip(1)})
            got = await asyncio.to_thread(topology.fetch, 3)
            assert got == ["rs1"] * 3, got
            topology.start_nginx(2)
            await wait_dests(both)
            topology.stop_nginx(1)  # the HTTP_GET side
            await wait_dests({rs_ip(2)})
        finally:
            await health.stop()
            await lvs.stop()

    run(body())


def test_killed_checker_child_leaves_the_table_alone(ipvs_clean, topology, tmp_path):
    """director -C under its watchdog: rs2 is down (its nginx stopped) so the table has
    rs1 only; SIGKILL of the checker child -> a new child that adopts the kernel's state:
    its start-up applies no IPVS operation and, through its first checks of both real
    servers, it adds and removes nothing, so the table is the one before the kill.
    Every step waits for its event (the checkers' check counts over the control socket,
    the pid file, the new child's log lines), never for a span of time."""
    import os
    import signal as sig
    import subprocess

    from daemonlib.control import Request, call

    topology.stop_nginx(2)
    conf = tmp_path / "keepalived.conf"
    conf.write_text(textwrap.dedent(CHECKED))
    pids = tmp_path / "checkers.pid"
    run = tmp_path / "run"
    log_path = tmp_path / "director.log"
    rs1, rs2 = f"{rs_ip(1)}:80", f"{rs_ip(2)}:80"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([os.path.join(ROOT, ".venv", "bin", "director"), "-C", "-n",
                                 "-l", "-f", str(conf), "-p", str(tmp_path / "k.pid"),
                                 "-c", str(pids), "--runtime-dir", str(run)],
                                stdout=log, stderr=subprocess.STDOUT)

    def dests() -> list[str]:
        return sorted(re.findall(r"->\s+(\S+:80)\s", ipvsadm("-Ln")))

    def servers() -> dict[str, dict] | None:
        """The live checker child's real servers (None while no child answers)."""
        reply = asyncio.run(call(str(run), "lvs", Request("status"), timeout=30))
        if not reply.ok:
            return None
        rss = reply.data["virtual_servers"][0]["real_servers"]
        return {f"{r['address']}:{r['port']}": r for r in rss}

    def checked(n: int) -> dict[str, dict] | None:
        """The real servers once each checker has run `n` checks, rs1 up, rs2 down."""
        st = servers()
        if st is None or any(c["checks"] < n for r in st.values() for c in r["checkers"]):
            return None
        return st if st[rs1]["alive"] and not st[rs2]["alive"] else None

    def child_lines(pid: int) -> list[str]:
        return [ln for ln in log_path.read_text(errors="replace").splitlines()
                if f"director[{pid}]:" in ln]

    try:
        # rs2's TCP_CHECK (retry 1) has failed twice: down for good, the table settled
        wait_for(lambda: checked(2) and dests() == [rs1], 240,
                 what="rs1 up, rs2 down after two failed checks, the table rs1 alone")
        before = listing()
        child = int(pids.read_text())
        os.kill(child, sig.SIGKILL)

        def new_pid() -> int | None:
            text = pids.read_text().strip() if pids.exists() else ""
            return int(text) if text and int(text) != child else None
        new_child = wait_for(new_pid, 120, what="the watchdog's new checker child in its "
                                                "pid file")
        # the counts are the new child's: the old one is gone, its socket with it
        wait_for(lambda: checked(2), 240,
                 what="the new child's first two checks of each real server")
        lines = child_lines(new_child)
        assert any("IPVS: 1 virtual services, 0 operations applied, 0 refused" in ln
                   for ln in lines), lines
        changes = [ln for ln in lines
                   if re.search(r"(Adding|Removing) service|(Lost|Gained) quorum", ln)]
        assert changes == [], changes
        assert listing() == before, (before, ipvsadm("-Ln"))
    finally:
        proc.send_signal(sig.SIGTERM)
        proc.wait(60)


def test_daemon_s_first_programming_reports_refusals_and_programs_the_rest(ipvs_clean,
                                                                          tmp_path):
    """`director -C`: the checker child programs the table before its event loop
    (director/first_ipvs.py). A service whose scheduler cannot load is refused and its
    real server skipped, each said once with the kernel's reason; the rest is in the
    kernel; the summary line counts both; the read-back sends nothing more; a TERM
    empties the table."""
    import os
    import signal as sig

    Path("/etc/modprobe.d/director-test.conf").write_text("install ip_vs_sed /bin/false\n")
    subprocess.run(["rmmod", "ip_vs_sed"], capture_output=True)
    conf = tmp_path / "keepalived.conf"
    conf.write_text(BASE.replace("virtual_server 10.7.0.2 80 {\n    lb_algo rr",
                                 "virtual_server 10.7.0.2 80 {\n    lb_algo sed"))
    log_path = tmp_path / "director.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([os.path.join(ROOT, ".venv", "bin", "director"), "-C", "-n",
                                 "-D", "-f", str(conf), "-p", str(tmp_path / "k.pid"),
                                 "-c", str(tmp_path / "c.pid"),
                                 "--runtime-dir", str(tmp_path / "run")],
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "Startup complete" in log_path.read_text(), 240,
                 what="the checker child's Startup complete")
        text = log_path.read_text()
        assert "first programming sent before the event loop (5 operations)" in text, text
        assert len(re.findall(r"IPVS: cannot add service \[10\.7\.0\.2\]:tcp:80: .+ "
                              r"\(errno \d+\)", text)) == 1, text
        assert text.count("IPVS: skipping the real servers of [10.7.0.2]:tcp:80") == 1, text
        assert re.search(r"IPVS: cannot add real server \[10\.7\.2\.1\]", text) is None, text
        assert text.count("IPVS: 2 virtual services, 3 operations applied, 2 refused") == 1, text
        assert "dry-run" not in text and "dry run" not in text.lower(), text
        assert listing() == {"TCP 10.7.0.1:80 rr": {("10.7.1.1:80", "Masq", 1),
                                                     ("10.7.1.2:80", "Masq", 1)}}
    finally:
        proc.send_signal(sig.SIGTERM)
        proc.wait(120)
        Path("/etc/modprobe.d/director-test.conf").unlink()
    assert listing() == {}
