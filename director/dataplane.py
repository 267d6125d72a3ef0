"""Where IPVS operations go: the kernel, or an in-memory dry run on hosts without IPVS.

Both take the same ops from the same diff. A refused op is logged with the
service it was for and the kernel's error, and the rest still goes through; the
destinations of a service the kernel refused are skipped with one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterable

from conf import aot
from daemonlib import safefile
from daemonlib.ipvs_syncd import SyncdCommand, run_commands

from .ipvs_table import (
    DestKey,
    DestSpec,
    Op,
    Phases,
    SvcKey,
    SvcSpec,
    Table,
    apply_in_place,
)

TYPE_CHECKING = False  # (typing itself is not imported at run time)
if TYPE_CHECKING:
    from typing import Any

    from .ipvs_fast import FastIpvs
    from .ipvs_netlink import IpvsSocket

log = logging.getLogger("director.ipvs")


class Plane:
    dry_run = False
    ops_sent = 0
    pipeline = 1  # requests in flight at once

    async def read(self) -> Table:
        raise NotImplementedError

    async def read_with_stats(self) -> tuple[Table, dict[Any, dict[str, int]]]:
        return await self.read(), {}

    async def service_stats(self) -> dict[SvcKey, dict[str, int]]:
        """The kernel's counters of each service (none in a dry run)."""
        return {}

    async def dest_stats(self, key: SvcKey) -> dict[DestKey, dict[str, int]]:
        """The counters and connection counts of each destination of one service: read
        service by service, so that no status holds the whole table's at once."""
        return {}

    async def send(self, op: Op) -> None:
        raise NotImplementedError

    async def send_many(self, ops: list[Op]) -> list[BaseException | None]:
        """Send `ops` in order, up to `pipeline` in flight; the error of each, or None."""
        out: list[BaseException | None] = []
        for i in range(0, len(ops), self.pipeline):
            chunk = ops[i : i + self.pipeline]
            results = await asyncio.gather(*(self.send(op) for op in chunk),
                                           return_exceptions=True)
            out += [r if isinstance(r, BaseException) else None for r in results]
        return out

    async def apply(self, ops: Iterable[Op]) -> list[tuple[Op, str]]:
        """Send `ops`; return the ones not applied, with the reason.

        Ops that cannot depend on each other go out together (netlink matches answers
        by sequence number), in three phases: service deletions, service additions and
        changes, then real servers (skipped for a service the kernel refused).
        """
        phases = Phases(ops)
        for phase in phases.phases:
            todo = phases.todo(phase)
            results = await self.send_many(todo) if todo else []
            for op, res in zip(todo, results, strict=True):
                if res is None:
                    self.ops_sent += 1
                elif not isinstance(res, Exception):
                    raise res  # cancellation, interrupt: not a refusal
                for fmt, values in phases.done(op, None if res is None else _reason(res)):
                    log.error(fmt, *values)
        return phases.failed

    async def set_timeouts(self, tcp: int | None, tcpfin: int | None, udp: int | None) -> None:
        pass

    async def sync_daemon(self, cmds: list[SyncdCommand]) -> None:
        """The IPVS sync daemons (lvs_sync_daemon without a VRRP instance)."""
        for cmd in cmds:
            log.info("IPVS dry-run: %s", cmd.describe())

    def close(self) -> None:
        pass


def _reason(e: Exception) -> str:
    code = getattr(e, "code", None)
    if code is not None:
        import os

        return f"{os.strerror(code)} (errno {code})"
    return str(e) or type(e).__name__


class KernelPlane(Plane):
    """The hot requests (services, real servers, table dumps) go over ipvs_fast; the
    timeouts over pyroute2, imported on first use; the sync daemons over
    daemonlib/ipvs_syncd (shared with the VRRP side)."""

    def __init__(self, fast: FastIpvs | None = None) -> None:
        if fast is None:
            from .ipvs_fast import FastIpvs

            fast = FastIpvs.open()
            if fast is None:
                raise RuntimeError("the kernel has no IPVS")
        self.fast = fast
        self._slow: IpvsSocket | None = None

    @property
    def sock(self) -> IpvsSocket:
        """pyroute2's socket, for the rare messages."""
        if self._slow is None:
            from .ipvs_netlink import IpvsSocket

            self._slow = IpvsSocket()
        return self._slow

    async def read(self) -> Table:
        return (await self.fast.read(stats=False))[0]

    async def read_with_stats(self) -> tuple[Table, dict[Any, dict[str, int]]]:
        return await self.fast.read()

    async def service_stats(self) -> dict[SvcKey, dict[str, int]]:
        return await self.fast.service_stats()

    async def dest_stats(self, key: SvcKey) -> dict[DestKey, dict[str, int]]:
        return await self.fast.dest_stats(key)

    async def send_many(self, ops: list[Op]) -> list[BaseException | None]:
        from .ipvs_fast import IpvsError

        return [IpvsError(code) if code else None for code in await self.fast.apply(ops)]

    async def send(self, op: Op) -> None:
        (res,) = await self.send_many([op])
        if res is not None:
            raise res

    async def set_timeouts(self, tcp: int | None, tcpfin: int | None, udp: int | None) -> None:
        try:
            await self.sock.set_timeouts(tcp, tcpfin, udp)
        except Exception as e:
            log.error("IPVS: cannot set timeouts tcp=%s tcpfin=%s udp=%s: %s", tcp, tcpfin,
                      udp, _reason(e))

    async def sync_daemon(self, cmds: list[SyncdCommand]) -> None:
        if cmds:
            await asyncio.to_thread(run_commands, cmds)

    def close(self) -> None:
        self.fast.close()
        if self._slow is not None:
            self._slow.close()


JOURNAL_BATCH = 512  # journal lines written together


class DryRunPlane(Plane):
    """Keeps the table in memory and logs what it would have sent. With `state` (a file
    in the runtime directory) it also journals each applied operation there, as the
    kernel keeps its table over a restart of the daemon's child, so that a restarted
    checker child adopts it (`adopt`). A journal line costs what the operation costs,
    not what the table does; a start rewrites it whole (a fresh start: empty)."""

    dry_run = True

    def __init__(self, state: str | None = None, adopt: bool = False) -> None:
        self.table: Table = {}
        self.state = state
        self._journal: list[str] = []
        if state is not None:
            if adopt:
                self.table = _replay(state)
            self._journal = [_op_line(op) for op in _as_adds(self.table)]
            with contextlib.suppress(OSError):
                os.unlink(state)
            self._flush()

    async def apply(self, ops: Iterable[Op]) -> list[tuple[Op, str]]:
        failed = await super().apply(ops)
        self._flush()
        return failed

    def _flush(self) -> None:
        if self.state is None or not self._journal:
            return
        data, self._journal = "".join(self._journal), []
        try:
            fd = safefile.open_dir(os.path.dirname(self.state) or ".")
            try:
                out = os.open(os.path.basename(self.state),
                              os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600,
                              dir_fd=fd)
            finally:
                os.close(fd)
            with os.fdopen(out, "a") as f:
                f.write(data)
        except OSError as e:
            log.error("IPVS dry-run: writing %s: %s", self.state, e.strerror or e)

    async def read(self) -> Table:
        return {k: (s, dict(d)) for k, (s, d) in self.table.items()}

    async def send(self, op: Op) -> None:
        if op.dest is None and op.what != "add" and op.svc not in self.table:
            raise LookupError(f"no such service {op.svc}")
        if op.dest is not None and op.svc not in self.table:
            raise LookupError(f"no such service {op.svc}")
        log.info("IPVS dry-run: %s", op)
        apply_in_place(self.table, [op])
        if self.state is not None:
            self._journal.append(_op_line(op))
            if len(self._journal) >= JOURNAL_BATCH:  # a start's 10,000 lines never at once
                self._flush()


_FIELDS = {cls: tuple(f.name for f in aot.fields(cls))
           for cls in (SvcKey, SvcSpec, DestKey, DestSpec)}


def _row(obj: Any) -> list[Any] | None:
    return None if obj is None else [getattr(obj, n) for n in _FIELDS[type(obj)]]


def _op_line(op: Op) -> str:
    import json  # the dry run's alone: not on the kernel plane's start-up path

    return json.dumps([op.what, _row(op.svc), _row(op.spec), _row(op.dest),
                       _row(op.dspec)]) + "\n"


def _as_adds(table: Table) -> list[Op]:
    ops = []
    for k, (spec, dests) in table.items():
        ops.append(Op("add", k, spec))
        ops += [Op("add", k, dest=dk, dspec=ds) for dk, ds in dests.items()]
    return ops


def _replay(path: str) -> Table:
    import json

    table: Table = {}
    try:
        with open(path) as f:
            for line in f:
                what, svc, spec, dest, dspec = json.loads(line)
                apply_in_place(table, [Op(
                    what, SvcKey(*svc), None if spec is None else SvcSpec(*spec),
                    None if dest is None else DestKey(*dest),
                    None if dspec is None else DestSpec(*dspec))])
    except FileNotFoundError:
        pass
    except (OSError, ValueError, TypeError, KeyError) as e:
        log.error("IPVS dry-run: %s unreadable (%s): adopting what was read", path, e)
    return table


async def choose_plane(force_dry_run: bool = False, state: str | None = None,
                       adopt: bool = False) -> Plane:
    """`state`: where a dry-run plane keeps its table for a restarted child."""
    if force_dry_run:
        log.warning("IPVS: dry run requested: nothing is sent to the kernel")
        return DryRunPlane(state, adopt)
    from .ipvs_fast import FastIpvs

    fast = FastIpvs.open()
    if fast is not None:
        return KernelPlane(fast)
    log.warning("IPVS: the kernel has no IPVS (generic netlink family 'IPVS' absent; "
                "modprobe ip_vs?): DRY RUN, operations are logged and kept in memory only")
    return DryRunPlane(state, adopt)
