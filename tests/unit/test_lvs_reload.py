"""Lvs.reload: the changed virtual servers' operations go first, from the table held;
the whole table is then read back and compared, which corrects what changed behind
director's back. The end table is what a full diff gives."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from conf import incremental as inc
from director.dataplane import DryRunPlane
from director.desired import desired_table
from director.ipvs_table import DestKey, DestSpec, Op, SvcKey, SvcSpec
from director.lvs import Lvs


def conf(n_vs: int = 8, weight: int = 1, skip: int | None = None, extra: str = "") -> str:
    out = []
    for v in range(n_vs):
        if v == skip:
            continue
        out += [f"virtual_server 10.0.0.{v + 1} 80 {{", "    protocol TCP", "    lb_algo wrr"]
        for r in range(3):
            w = weight if (v, r) == (2, 1) else 1
            out += [f"    real_server 10.1.{v}.{r + 1} 80 {{", f"        weight {w}",
                    "        TCP_CHECK {", "        }", "    }"]
        out.append("}")
    return "\n".join(out) + "\n" + extra


class Recording(DryRunPlane):
    """The dry-run plane, with the order of reads and sends kept."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.refuse: set[str] = set()

    async def read(self):  # type: ignore[no-untyped-def]
        self.calls.append("read")
        return await super().read()

    async def send(self, op: Op) -> None:
        self.calls.append(str(op))
        if str(op) in self.refuse:
            raise OSError(22, "Invalid argument")
        await super().send(op)


def load(path: Path, text: str):  # type: ignore[no-untyped-def]
    path.write_text(text)
    loaded = inc.load_incremental(str(path), config_id="n1", check_host=False)
    assert loaded.ok, loaded.diags.items
    return loaded.config


@pytest.fixture(autouse=True)
def fresh():
    inc.forget()
    yield
    inc.forget()


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_one_weight_is_one_op_sent_before_the_table_is_read(tmp_path, caplog):
    p = tmp_path / "k.conf"
    caplog.set_level(logging.INFO)

    async def body():  # type: ignore[no-untyped-def]
        plane = Recording()
        lvs = Lvs(load(p, conf()), plane)
        await lvs.start()
        lvs.pools[5].servers[0].checkers_up = [False]  # health kept over the reload
        await lvs.set_checker(5, 0, 0, False)
        plane.calls.clear()
        new = load(p, conf(weight=7))
        assert inc.last_reused == 7
        ops = await lvs.reload(new)
        return plane, lvs, ops

    plane, lvs, ops = run(body())
    edit = "edit real server [10.1.2.2]:80 to service [10.0.0.3]:tcp:80"
    assert [str(o) for o in ops] == [edit]
    assert plane.calls == [edit, "read"]  # applied, then the whole table checked
    key = SvcKey(4, "TCP", "10.0.0.3", 80)
    assert plane.table[key][1][DestKey("10.1.2.2", 80)].weight == 7
    assert DestKey("10.1.5.1", 80) not in plane.table[SvcKey(4, "TCP", "10.0.0.6", 80)][1]
    assert plane.table == desired_table(lvs.cfg, lvs.pools, lvs.keys)
    assert lvs.current == plane.table
    assert any("8 virtual services, 1 operations applied, 0 refused" in r.message
               for r in caplog.records)


def test_drift_behind_our_back_is_put_right_by_the_reload(tmp_path):
    p = tmp_path / "k.conf"

    async def body():  # type: ignore[no-untyped-def]
        plane = Recording()
        lvs = Lvs(load(p, conf()), plane)
        await lvs.start()
        # someone else: a weight changed, a destination removed, one added, in services
        # of virtual servers the reload does not change
        k1, k4 = SvcKey(4, "TCP", "10.0.0.1", 80), SvcKey(4, "TCP", "10.0.0.4", 80)
        plane.table[k1][1][DestKey("10.1.0.1", 80)] = DestSpec(weight=50)
        del plane.table[k4][1][DestKey("10.1.3.3", 80)]
        plane.table[k4][1][DestKey("10.9.9.9", 80)] = DestSpec()
        plane.calls.clear()
        ops = await lvs.reload(load(p, conf(weight=3)))
        return plane, lvs, ops

    plane, lvs, ops = run(body())
    assert plane.table == desired_table(lvs.cfg, lvs.pools, lvs.keys)
    assert lvs.current == plane.table
    assert plane.calls[0] == "edit real server [10.1.2.2]:80 to service [10.0.0.3]:tcp:80"
    assert plane.calls[1] == "read"
    assert sorted(plane.calls[2:]) == sorted([
        "del real server [10.9.9.9]:80 to service [10.0.0.4]:tcp:80",
        "add real server [10.1.3.3]:80 to service [10.0.0.4]:tcp:80",
        "edit real server [10.1.0.1]:80 to service [10.0.0.1]:tcp:80"])
    assert len(ops) == 4


def test_removed_and_added_virtual_servers(tmp_path):
    p = tmp_path / "k.conf"
    extra = ("virtual_server 10.0.0.99 80 {\n protocol TCP\n"
             " real_server 10.1.99.1 80 {\n }\n}\n")

    async def body():  # type: ignore[no-untyped-def]
        plane = Recording()
        plane.table[SvcKey(4, "TCP", "10.9.9.9", 22)] = (SvcSpec("rr"), {})  # foreign
        lvs = Lvs(load(p, conf()), plane)
        await lvs.start()
        plane.calls.clear()
        # the last one removed (lines before it unchanged: reused), one added at the end
        ops = await lvs.reload(load(p, conf(skip=7, extra=extra)))
        return plane, lvs, ops

    plane, lvs, ops = run(body())
    assert [str(o) for o in ops] == [
        "del service [10.0.0.8]:tcp:80", "add service [10.0.0.99]:tcp:80",
        "add real server [10.1.99.1]:80 to service [10.0.0.99]:tcp:80"]
    assert plane.calls[:3] == [str(o) for o in ops] and plane.calls[3:] == ["read"]
    assert SvcKey(4, "TCP", "10.9.9.9", 22) in plane.table  # not ours: left alone
    foreign = {SvcKey(4, "TCP", "10.9.9.9", 22)}
    assert {k: v for k, v in plane.table.items() if k not in foreign} == desired_table(
        lvs.cfg, lvs.pools, lvs.keys)


def test_a_refused_op_is_tried_once_and_counted_once(tmp_path, caplog):
    p = tmp_path / "k.conf"
    caplog.set_level(logging.INFO)
    edit = "edit real server [10.1.2.2]:80 to service [10.0.0.3]:tcp:80"

    async def body():  # type: ignore[no-untyped-def]
        plane = Recording()
        lvs = Lvs(load(p, conf()), plane)
        await lvs.start()
        plane.calls.clear()
        plane.refuse.add(edit)
        ops = await lvs.reload(load(p, conf(weight=5)))
        return plane, lvs, ops

    plane, lvs, ops = run(body())
    assert plane.calls == [edit, "read"]
    assert [str(o) for o in ops] == [edit]
    assert any("8 virtual services, 0 operations applied, 1 refused" in r.message
               for r in caplog.records)
    key = SvcKey(4, "TCP", "10.0.0.3", 80)
    assert plane.table[key][1][DestKey("10.1.2.2", 80)].weight == 1
    assert lvs.current == plane.table


def test_a_whole_new_file_is_one_full_diff(tmp_path):
    """Most virtual servers changed: no first pass, the table diffed whole (as before)."""
    p = tmp_path / "k.conf"

    async def body():  # type: ignore[no-untyped-def]
        plane = Recording()
        lvs = Lvs(load(p, conf()), plane)
        await lvs.start()
        plane.calls.clear()
        ops = await lvs.reload(load(p, "\n\n" + conf(weight=2)))  # every block moved
        return plane, lvs, ops

    plane, lvs, ops = run(body())
    assert inc.last_reused == 0
    assert plane.calls[0] == "read" and len(ops) == 1
    assert plane.table == desired_table(lvs.cfg, lvs.pools, lvs.keys)
