"""The event loop a daemon child runs on: uvloop when it is installed (a third of the
CPU of asyncio's own loop per health check here), else asyncio's."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory, or None for asyncio's default; DIRECTOR_LOOP=asyncio forces
    asyncio's loop (to compare them, or to rule uvloop out when chasing a bug)."""
    if os.environ.get("DIRECTOR_LOOP", "") == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop  # type: ignore[no-any-return]


def loop_name() -> str:
    return "asyncio" if loop_factory() is None else "uvloop"


def run(main: Coroutine[Any, Any, T]) -> T:
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
