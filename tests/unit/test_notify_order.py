"""Notify scripts end in the order of the transitions behind them: a transition's scripts
start once those of the same subject's transition before have ended
(daemonlib/notify_order.py), for a VRRP instance (vrrp/router.py: run_notify) and for a
real server or a virtual server's quorum (director/lvs.py); other subjects do not wait."""

from __future__ import annotations

import asyncio

from helpers import load_text

from director.dataplane import DryRunPlane
from director.lvs import Lvs
from vrrp.plane import RecordingPlane
from vrrp.router import Router

VRRP = """
vrrp_instance VI_1 {{
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {{
        10.9.0.100/24
    }}
    notify {script}
    notify_master "{script} specific"
}}
"""

LVS = """
virtual_server 10.0.0.1 80 {{
    protocol TCP
    lb_algo rr
    real_server 10.0.1.1 80 {{
        notify_up "{script} rs1-up slow"
        notify_down "{script} rs1-down"
        TCP_CHECK {{ }}
    }}
    real_server 10.0.1.2 80 {{
        notify_down "{script} rs2-down"
        TCP_CHECK {{ }}
    }}
}}
"""


def _script(tmp_path, slow: str):
    """A notify script appending "$1-$3" to a log; when $3 or $2 is `slow` it first waits
    (run at once, the slow one would end last): until the log has `slow`'s `until=`
    word, at most 10 s, or else 0.5 s."""
    log = tmp_path / "log"
    script = tmp_path / "notify.sh"
    word, _, until = slow.partition(" until=")
    wait = (f'i=0; while ! grep -q {until} {log} 2>/dev/null && [ $i -lt 1000 ]; do '
            f'sleep 0.01; i=$((i+1)); done' if until else 'sleep 0.5')
    script.write_text(f'#!/bin/sh\n'
                      f'if [ "$3" = {word} ] || [ "$2" = {word} ]; then {wait}; fi\n'
                      f'echo "${{1}}-${{3:-}}" >> {log}\n')
    script.chmod(0o755)
    return script, log


def _loaded(tmp_path, text: str):
    loaded = load_text(tmp_path, text)
    assert not [d for d in loaded.diags.items if d.severity == "error"], loaded.diags.items
    return loaded.config


def test_an_instance_s_notify_scripts_end_in_the_order_of_its_transitions(tmp_path):
    script, log = _script(tmp_path, "MASTER")
    cfg = _loaded(tmp_path, VRRP.format(script=script))
    (inst,) = cfg.vrrp_instances
    router = Router(inst, cfg.global_defs, RecordingPlane(), [])

    async def go() -> None:
        for state in ("BACKUP", "MASTER", "BACKUP"):
            router.run_notify(inst.notify, state, ("INSTANCE", "VI_1", state, "100"))
        await router.drain(20)

    asyncio.run(go())
    lines = log.read_text().split()
    # notify_master and notify of one transition run together; the transitions in order
    assert lines[0] == "INSTANCE-BACKUP", lines
    assert sorted(lines[1:3]) == ["INSTANCE-MASTER", "specific-"], lines
    assert lines[3:] == ["INSTANCE-BACKUP"], lines


def test_a_real_server_s_scripts_in_order_other_servers_not_waiting(tmp_path):
    # rs1's notify_up ends only once rs2's script has written: the event the test is
    # about, not a time margin (with one order for all servers, rs2 would wait behind it
    # and neither would write before the stop's 5 s)
    script, log = _script(tmp_path, "slow until=rs2")
    cfg = _loaded(tmp_path, LVS.format(script=script))

    async def go() -> None:
        lvs = Lvs(cfg, DryRunPlane())
        await lvs.start()
        for up in (False, True, False):  # rs1 flaps; its notify_up is the slow one
            await lvs.set_checker(0, 0, 0, up)
        await lvs.set_checker(0, 1, 0, False)  # rs2, after rs1's slow script started
        await lvs.stop()  # waits for the scripts; rs1 is already down, rs2 too

    asyncio.run(go())
    lines = ["-".join(line.split("-")[:2]) for line in log.read_text().split()]
    rs1 = [x for x in lines if x.startswith("rs1")]
    assert rs1 == ["rs1-down", "rs1-up", "rs1-down"], lines
    # rs2 has its own order: it did not wait behind rs1's slow notify_up
    assert lines.index("rs2-down") < lines.index("rs1-up"), lines
