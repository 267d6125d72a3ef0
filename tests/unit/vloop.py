"""An asyncio loop on a virtual clock: when nothing is ready, time jumps to the next timer
instead of sleeping, so a test of seconds of VRRP timing runs in milliseconds and the
same way on a busy machine."""

from __future__ import annotations

import asyncio
import selectors


class _Selector(selectors.DefaultSelector):  # type: ignore[valid-type, misc]
    def __init__(self, loop: VirtualLoop) -> None:
        super().__init__()
        self.vloop = loop

    def select(self, timeout: float | None = None):  # type: ignore[no-untyped-def]
        if timeout:  # the loop would sleep until its next timer: jump there instead
            self.vloop.now += timeout
        return super().select(0)


class VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self.now = 1000.0
        super().__init__(selector=_Selector(self))

    def time(self) -> float:
        return self.now

    def run_for(self, seconds: float) -> None:
        """Run every callback due in the next `seconds` of virtual time."""
        self.run_until_complete(asyncio.sleep(seconds))
