"""An asyncio event loop whose timers fire on time.

asyncio waits for its next timer in epoll_wait, whose timeout is whole milliseconds
rounded up: a timer fires up to 1 ms late, nearly always so for a VRRP deadline (a
Master_Down of 72.2 ms at advert_int 0.02 fires after 73). keepalived's scheduler wakes
from a timerfd to the microsecond. Here the selector arms a timerfd to the exact timeout
and waits for it in the same epoll; the rounded-up timeout stays as a backstop.
"""

from __future__ import annotations

import asyncio
import ctypes
import math
import os
import selectors

from .libc import libc

_CLOCK_MONOTONIC = 1  # asyncio's loop.time() is time.monotonic()
_TFD_NONBLOCK = os.O_NONBLOCK
_TFD_CLOEXEC = os.O_CLOEXEC


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


class TimerfdSelector(selectors.EpollSelector):
    """EpollSelector waking at the exact timeout (a relative one-shot timerfd); where
    timerfd is missing, the plain selector's behaviour."""

    def __init__(self) -> None:
        super().__init__()
        self._tfd = -1
        self._armed = False
        self._spec = _Itimerspec()
        try:
            create, self._settime = libc().timerfd_create, libc().timerfd_settime
        except (OSError, AttributeError):
            return
        fd = create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
        if fd < 0:
            return
        self._tfd = fd
        self.register(fd, selectors.EVENT_READ)  # select() keeps it from asyncio

    def _arm(self, timeout: float) -> None:
        value = self._spec.it_value
        ns = max(1, math.ceil(timeout * 1e9))  # 0 would disarm
        value.tv_sec, value.tv_nsec = divmod(ns, 1_000_000_000)
        self._armed = self._settime(self._tfd, 0, ctypes.byref(self._spec), None) == 0

    def select(self, timeout: float | None = None
               ) -> list[tuple[selectors.SelectorKey, int]]:
        if self._tfd >= 0:
            if timeout is not None and timeout > 0:
                self._arm(timeout)  # wakes epoll before its rounded-up timeout does
            elif self._armed:  # an earlier deadline's timer must not wake us later
                self._disarm()
        ready = super().select(timeout)
        for i, (key, _events) in enumerate(ready):
            if key.fd == self._tfd:
                self._drain()
                del ready[i]
                break
        return ready

    def _disarm(self) -> None:
        value = self._spec.it_value
        value.tv_sec = value.tv_nsec = 0
        self._settime(self._tfd, 0, ctypes.byref(self._spec), None)
        self._armed = False
        self._drain()

    def _drain(self) -> None:
        try:
            os.read(self._tfd, 8)
        except BlockingIOError:
            pass
        self._armed = False

    def close(self) -> None:
        if self._tfd >= 0:
            self.unregister(self._tfd)
            os.close(self._tfd)
            self._tfd = -1
        super().close()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """asyncio's loop on a TimerfdSelector (asyncio.Runner's loop_factory)."""
    return asyncio.SelectorEventLoop(TimerfdSelector())
