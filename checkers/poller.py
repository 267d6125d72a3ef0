"""One epoll set for the sockets of the busy checkers (TCP_CHECK, HTTP_GET, SSL_GET),
itself a single reader on the asyncio loop.

asyncio's add_writer/remove_writer cost ~10 us of Python each (a handle, the selector's
bookkeeping); thousands of checks a second pay that twice or three times each. Here a
socket is watched with one `epoll_ctl` and forgotten by closing it (the kernel drops a
closed socket from the set), and every ready socket of a loop iteration is handled in one
batch.
"""

from __future__ import annotations

import asyncio
import select
import weakref
from collections.abc import Callable
from typing import Any

IN, OUT = select.EPOLLIN, select.EPOLLOUT
Handler = Callable[[Any, int], None]  # called with its argument and the epoll event mask

_pollers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Poller] = \
    weakref.WeakKeyDictionary()


class Poller:
    __slots__ = ("ep", "handlers", "__weakref__")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.ep = select.epoll()
        self.handlers: dict[int, tuple[Handler, Any]] = {}
        loop.add_reader(self.ep.fileno(), self._ready)

    def watch(self, fd: int, events: int, handler: Handler, arg: Any) -> None:
        """Start watching `fd`: `handler(arg, events)` when it is ready (a function and its
        argument rather than a closure per socket); `forget` it before closing it."""
        self.handlers[fd] = (handler, arg)
        self.ep.register(fd, events)

    def change(self, fd: int, events: int) -> None:
        self.ep.modify(fd, events)

    def forget(self, fd: int) -> None:
        """`fd` is about to be closed: closing drops it from the set, no syscall here."""
        self.handlers.pop(fd, None)

    def _ready(self) -> None:
        handlers = self.handlers
        for fd, events in self.ep.poll(0):
            h = handlers.get(fd)
            if h is not None:
                h[0](h[1], events)


def poller() -> Poller:
    """The running loop's poller."""
    loop = asyncio.get_running_loop()
    p = _pollers.get(loop)
    if p is None:
        p = _pollers[loop] = Poller(loop)
    return p
