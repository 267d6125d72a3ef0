"""The checker child's first IPVS programming: synchronous, before asyncio and logging.

Right after the fork, with what the parse already imported: the table the config asks
for (the pool logic's start-up decisions, as Lvs.start takes them), the kernel's table
read, the diff sent over a blocking netlink socket in Plane.apply's phases (service
deletions, service additions and changes, then real servers, those of a refused service
skipped), each operation's ACK matched by its sequence number. asyncio (which pulls in
ssl) and logging come after: in the emulated VM they are a second of start-up. What
was sent and refused is handed to Lvs.start, which counts it in its one log line and
reads the table back (sending nothing more unless the kernel changed meanwhile); the
refusals are logged then, as Plane.apply words them.

Not taken (the event loop's path does all): a restarted child (it adopts the kernel's
table), a dry run (asked for, or no IPVS in the kernel), lvs_timeout_*, an
lvs_sync_daemon this side runs, a MISC_CHECK (the script policy may take it out, which
changes who starts up), a socket error.
"""

from __future__ import annotations

import os

from .desired import desired_table, service_keys
from .ipvs_table import Op, Phases, diff
from .pool import Pool

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conf.model import Config

    from .ipvs_fast import FastIpvs


class First:
    """What the first programming did: the socket (non-blocking now, for the event
    loop), the operations sent in order, those refused with the reason, and the
    error lines Plane.apply would have logged meanwhile (format, arguments)."""

    __slots__ = ("fast", "ops", "failed", "notes")

    def __init__(self, fast: FastIpvs, ops: list[Op], failed: list[tuple[Op, str]],
                 notes: list[tuple[str, tuple[object, ...]]]) -> None:
        self.fast = fast
        self.ops = ops
        self.failed = failed
        self.notes = notes

    @property
    def applied(self) -> int:
        return len(self.ops) - len(self.failed)


def eligible(cfg: Config, adopt: bool, dry_run: bool) -> bool:
    """Is the first programming all of Lvs.start here (see the module's docstring)?"""
    g = cfg.global_defs
    if adopt or dry_run:
        return False
    if (g.lvs_timeout_tcp, g.lvs_timeout_tcpfin, g.lvs_timeout_udp) != (None, None, None):
        return False
    if g.lvs_sync_daemon is not None and g.lvs_sync_daemon.vrrp_instance is None:
        return False
    return not any(ck.type == "MISC_CHECK" for vs in cfg.virtual_servers
                   for rs in vs.real_servers for ck in rs.checkers)


def program(cfg: Config, adopt: bool = False, dry_run: bool = False) -> First | None:
    """The first programming done, or None: the event loop's path does it all."""
    if not eligible(cfg, adopt, dry_run):
        return None
    from .ipvs_fast import FastIpvs

    try:
        fast = FastIpvs.open(blocking=True)
    except OSError:
        return None  # the event loop's open says why
    if fast is None:
        return None  # no IPVS: the dry-run plane
    try:
        pools = [Pool(vs) for vs in cfg.virtual_servers]
        keys = [service_keys(vs, cfg) for vs in cfg.virtual_servers]
        desired = desired_table(cfg, pools, keys)
        ops = diff(desired, fast.read_now(), owned=set(), flush=cfg.global_defs.lvs_flush)
        failed, notes = apply_now(fast, ops)
    except OSError:  # what went out is read back by the event loop's path, the rest sent
        fast.close()
        return None
    fast.unblock()
    return First(fast, ops, failed, notes)


def apply_now(fast: FastIpvs, ops: list[Op]
              ) -> tuple[list[tuple[Op, str]], list[tuple[str, tuple[object, ...]]]]:
    """Plane.apply with the socket blocking: the operations not applied with the reason,
    and the lines to log (in the order Plane.apply logs them)."""
    phases = Phases(ops)
    notes: list[tuple[str, tuple[object, ...]]] = []
    for phase in phases.phases:
        todo = phases.todo(phase)
        codes = fast.apply_now(todo) if todo else []
        for op, code in zip(todo, codes, strict=True):
            # dataplane._reason's words for a kernel error
            notes += phases.done(op, f"{os.strerror(code)} (errno {code})" if code else None)
    return phases.failed, notes
