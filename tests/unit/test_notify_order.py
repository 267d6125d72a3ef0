"""An instance's notify scripts end in the order of its transitions: a transition's
scripts start once those of the one before have ended (vrrp/router.py: run_notify)."""

from __future__ import annotations

import asyncio

from helpers import load_text

from vrrp.plane import RecordingPlane
from vrrp.router import Router

CONF = """
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


def test_notify_scripts_end_in_the_order_of_the_transitions(tmp_path):
    log = tmp_path / "log"
    script = tmp_path / "notify.sh"
    # the MASTER notification is the slow one: run at once, it would end last
    script.write_text(f'#!/bin/sh\n[ "$3" = MASTER ] && sleep 0.5\n'
                      f'echo "${{1}}-${{3:-}}" >> {log}\n')
    script.chmod(0o755)
    loaded = load_text(tmp_path, CONF.format(script=script))
    assert not [d for d in loaded.diags.items if d.severity == "error"], loaded.diags.items
    (inst,) = loaded.config.vrrp_instances
    router = Router(inst, loaded.config.global_defs, RecordingPlane(), [])

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
