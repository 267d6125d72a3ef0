"""The checker child's first programming before asyncio (director/first_ipvs.py): which
starts take it, and Plane.apply's phases, refusals and wording over a blocking socket."""

import asyncio
import logging

from conf import load
from director.dataplane import Plane
from director.first_ipvs import apply_now, eligible
from director.ipvs_fast import IpvsError
from director.ipvs_table import DestKey, DestSpec, Op, SvcKey, SvcSpec

A = SvcKey(4, "TCP", "10.0.0.1", 80)
B = SvcKey(4, "TCP", "10.0.0.2", 80)


def _ops() -> list[Op]:
    return [Op("add", A, SvcSpec()), Op("add", B, SvcSpec("sed")),
            Op("add", A, dest=DestKey("10.1.0.1", 80), dspec=DestSpec()),
            Op("add", B, dest=DestKey("10.1.0.2", 80), dspec=DestSpec()),
            Op("del", SvcKey(4, "TCP", "10.0.0.9", 80))]


def _refuses_b(op: Op) -> int:
    return 2 if op.dest is None and op.svc == B and op.what == "add" else 0


class FakeFast:
    def __init__(self) -> None:
        self.batches: list[list[Op]] = []

    def apply_now(self, ops: list[Op]) -> list[int]:
        self.batches.append(list(ops))
        return [_refuses_b(op) for op in ops]


class FakePlane(Plane):
    async def send_many(self, ops: list[Op]) -> list[BaseException | None]:
        return [IpvsError(_refuses_b(op)) if _refuses_b(op) else None for op in ops]


def test_phases_refusals_and_lines_are_plane_apply_s(caplog) -> None:
    fast = FakeFast()
    failed, notes = apply_now(fast, _ops())  # type: ignore[arg-type]
    ops = _ops()
    # deletions, then services, then real servers (B's skipped, never sent)
    assert fast.batches == [[ops[4]], [ops[0], ops[1]], [ops[2]]]
    with caplog.at_level(logging.ERROR, logger="director.ipvs"):
        want = asyncio.run(FakePlane().apply(ops))
    assert failed == want
    assert [fmt % values for fmt, values in notes] == [r.getMessage() for r in caplog.records]
    assert [fmt % values for fmt, values in notes] == [
        "IPVS: cannot add service [10.0.0.2]:tcp:80: No such file or directory (errno 2)",
        "IPVS: skipping the real servers of [10.0.0.2]:tcp:80"]


def test_which_starts_take_the_first_programming(tmp_path) -> None:
    def cfg(text: str):  # type: ignore[no-untyped-def]
        p = tmp_path / "k.conf"
        p.write_text(text + "virtual_server 10.0.0.1 80 {\n protocol TCP\n"
                     " real_server 10.1.0.1 80 {\n%s }\n}\n")
        return p

    def ok(text: str, rs: str = "", adopt: bool = False, dry: bool = False) -> bool:
        p = cfg(text)
        p.write_text(p.read_text() % rs)
        loaded = load(str(p), check_host=False)
        assert loaded.ok, [str(d) for d in loaded.diags.items]
        return eligible(loaded.config, adopt, dry)

    assert ok("")
    assert ok("", "  TCP_CHECK { }\n")
    assert ok("global_defs {\n lvs_flush\n}\n")
    assert not ok("", adopt=True)
    assert not ok("", dry=True)
    assert not ok("global_defs {\n lvs_timeouts tcp 900\n}\n")
    assert not ok("global_defs {\n lvs_sync_daemon lo\n}\n")
    assert not ok("", "  MISC_CHECK {\n misc_path /bin/true\n }\n")
