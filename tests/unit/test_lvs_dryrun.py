"""The LVS core on the dry-run plane: same diff, operations kept in memory."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys

from helpers import load_text
from testlib import ROOT

from director.dataplane import DryRunPlane
from director.ipvs_table import DestKey, DestSpec, SvcKey, SvcSpec
from director.ipvs_view import render
from director.lvs import Lvs

CONF = """
global_defs {
    lvs_notify_fifo %(fifo)s
}
virtual_server 10.0.0.1 80 {
    protocol TCP
    lb_algo rr
    quorum 2
    quorum_down "/bin/sh -c 'echo down >> %(mark)s'"
    real_server 10.0.1.1 80 { TCP_CHECK { } }
    real_server 10.0.1.2 80 { notify_down "/bin/sh -c 'echo rs2 >> %(mark)s'"
        TCP_CHECK { } }
}
"""


def test_start_event_reload_stop(tmp_path, caplog):
    fifo = tmp_path / "lvs.fifo"
    mark = tmp_path / "mark"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    cfg = load_text(tmp_path, CONF % {"fifo": fifo, "mark": mark}).config
    caplog.set_level(logging.INFO)

    async def body():
        plane = DryRunPlane()
        plane.table[SvcKey(4, "TCP", "10.9.9.9", 22)] = (SvcSpec("rr"), {})  # foreign
        lvs = Lvs(cfg, plane)
        ops = await lvs.start()
        assert len(ops) == 3 and plane.ops_sent == 3
        key = SvcKey(4, "TCP", "10.0.0.1", 80)
        assert set(plane.table[key][1]) == {DestKey("10.0.1.1", 80), DestKey("10.0.1.2", 80)}
        ops = await lvs.set_checker(0, 1, 0, False)
        assert [str(o) for o in ops] == ["del real server [10.0.1.2]:80 to service "
                                         "[10.0.0.1]:tcp:80"]
        assert set(plane.table[key][1]) == {DestKey("10.0.1.1", 80)}
        assert await lvs.reload(cfg) == []  # same config: nothing to send
        assert set(plane.table[key][1]) == {DestKey("10.0.1.1", 80)}  # health kept
        await asyncio.sleep(0.5)  # the notify scripts run in the background
        await lvs.stop()
        return plane

    plane = asyncio.run(body())
    assert list(plane.table) == [SvcKey(4, "TCP", "10.9.9.9", 22)]
    lines = os.read(reader, 4096).decode().splitlines()
    os.close(reader)
    assert lines == ["RS [10.0.1.2]:tcp:80 [10.0.0.1]:tcp:80 DOWN",
                     "VS [10.0.0.1]:tcp:80 DOWN"]
    assert sorted(mark.read_text().split()) == ["down", "rs2"]
    assert any("IPVS dry-run: add service [10.0.0.1]:tcp:80" in r.message
               for r in caplog.records)


def test_refused_ops_are_logged_and_the_rest_applied(caplog):
    class Refusing(DryRunPlane):
        async def send(self, op):
            if op.svc.port == 81 and op.dest is None:
                raise OSError(17, "File exists")
            await super().send(op)

    async def body():
        plane = Refusing()
        from director.ipvs_table import Op

        ops = [Op("add", SvcKey(4, "TCP", "10.0.0.1", 81), SvcSpec()),
               Op("add", SvcKey(4, "TCP", "10.0.0.1", 81), dest=DestKey("1.1.1.1", 81),
                  dspec=DestSpec()),
               Op("add", SvcKey(4, "TCP", "10.0.0.1", 82), SvcSpec())]
        failed = await plane.apply(ops)
        return plane, failed

    plane, failed = asyncio.run(body())
    assert [str(op) for op, _ in failed] == [
        "add service [10.0.0.1]:tcp:81",
        "add real server [1.1.1.1]:81 to service [10.0.0.1]:tcp:81"]
    assert list(plane.table) == [SvcKey(4, "TCP", "10.0.0.1", 82)]
    assert any("cannot add service [10.0.0.1]:tcp:81" in r.message for r in caplog.records)


def test_render_like_ipvsadm():
    table = {
        SvcKey(4, "TCP", "10.0.0.1", 80): (SvcSpec("rr", flags=1, timeout=50),
                                           {DestKey("10.0.1.1", 80): DestSpec("NAT", 3)}),
        SvcKey(6, "UDP", "fd00::1", 53): (SvcSpec("wlc"), {DestKey("fd00::2", 53):
                                                           DestSpec("DR", 1)}),
    }
    text = render(table, {})
    assert "TCP  10.0.0.1:80 rr persistent 50" in text
    assert "  -> 10.0.1.1:80                  Masq    3      0          0" in text
    assert "UDP  [fd00::1]:53 wlc" in text and "Route" in text
    stats = {SvcKey(4, "TCP", "10.0.0.1", 80): {"conns": 12, "inpkts": 100}}
    assert " 12 " in render(table, stats, "stats")


def test_checker_side_daemon_dry_run_start_and_stop(tmp_path):
    """`director -C --dry-run -n` programs, then removes, and exits on SIGTERM."""
    conf = tmp_path / "k.conf"
    conf.write_text("virtual_server 10.0.0.1 80 {\n protocol TCP\n"
                    " real_server 10.0.1.1 80 { }\n}\n")
    proc = subprocess.Popen([sys.executable, "-m", "director", "-C", "-n", "--dry-run", "-f",
                             str(conf)], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "Startup complete" in line:
            proc.terminate()
    assert proc.wait(timeout=30) == 0
    text = "".join(seen)
    assert "IPVS dry-run: add service [10.0.0.1]:tcp:80" in text
    assert "IPVS dry-run: del service [10.0.0.1]:tcp:80" in text
    assert "Traceback" not in text


def test_lvs_flush_on_stop_empties_the_whole_table(tmp_path):
    cfg = load_text(tmp_path, "global_defs {\n lvs_flush_on_stop\n}\n"
                              "virtual_server 10.0.0.1 80 {\n protocol TCP\n"
                              " real_server 10.0.1.1 80 { }\n}\n"
                    ).config

    async def body():
        plane = DryRunPlane()
        plane.table[SvcKey(4, "TCP", "10.9.9.9", 22)] = (SvcSpec("rr"), {})
        lvs = Lvs(cfg, plane)
        await lvs.start()
        assert len(plane.table) == 2  # the foreign service is kept while running
        await lvs.stop()
        return plane

    assert asyncio.run(body()).table == {}
