"""The speaker's edge to the host: the VIP's address on its device (put there before the
announcement, taken away after the withdrawal), and the source address the kernel would
use towards a neighbor (ExaBGP needs a local-address). pyroute2's IPRoute runs its own
event loop, so it lives in one worker thread; a few calls per quorum change."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from .core import Prefix

log = logging.getLogger("director.bgp")
IFA_F_NODAD = 0x02


class Host:
    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="bgp-host")
        self._ipr: IPRoute | None = None

    @property
    def ipr(self) -> IPRoute:  # made in the worker thread, used only there
        if self._ipr is None:
            self._ipr = IPRoute()
        return self._ipr

    async def call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def address(self, op: str, p: Prefix) -> bool:
        return bool(await self.call(self.set_address, op, p))

    async def source(self, neighbor: str) -> str | None:
        return await self.call(self.source_for, neighbor)

    def close(self) -> None:
        def shut() -> None:
            if self._ipr is not None:
                self._ipr.close()

        self._pool.submit(shut).result()
        self._pool.shutdown()

    def set_address(self, op: str, p: Prefix) -> bool:
        """`op` add / del; True when the address is (or is no longer) on the device."""
        what = f"{'adding' if op == 'add' else 'removing'} {p} on {p.dev}"
        try:
            found = self.ipr.link_lookup(ifname=p.dev)
            if not found:
                log.error("%s: no such interface", what)
                return False
            kw: dict[str, object] = {"index": found[0], "address": p.address,
                                     "prefixlen": p.prefixlen}
            if op == "add" and p.family == 6:
                kw["flags"] = IFA_F_NODAD  # usable at once, before the announcement
            self.ipr.addr(op, **kw)
            return True
        except NetlinkError as e:
            if e.code in ((errno.EEXIST,) if op == "add" else (errno.EADDRNOTAVAIL,
                                                               errno.ENOENT, errno.ENODEV)):
                return True
            log.error("%s: kernel refused: %s", what, errno.errorcode.get(e.code, e.code))
        except OSError as e:
            log.error("%s: %s", what, e)
        return False

    def source_for(self, neighbor: str) -> str | None:
        """The kernel's source address towards `neighbor`, or None (no route yet)."""
        family = socket.AF_INET6 if ":" in neighbor else socket.AF_INET
        try:
            for msg in self.ipr.route("get", dst=neighbor, family=family):
                src = msg.get_attr("RTA_PREFSRC")
                if src:
                    return str(src)
        except (NetlinkError, OSError):
            pass
        return None
