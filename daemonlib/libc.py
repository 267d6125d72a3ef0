"""The C library's calls that Python's `os` lacks (prctl, mlockall, malloc_trim, timerfd),
through one handle made on first use: ctypes is imported only by a process that calls
one (the re-executed watchdog parent never does)."""

from __future__ import annotations

import functools
import signal

TYPE_CHECKING = False  # (typing itself is not imported at run time)
if TYPE_CHECKING:
    from typing import Any

PR_SET_PDEATHSIG = 1
PR_SET_THP_DISABLE = 41


@functools.cache
def libc() -> Any:
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def die_with_parent() -> None:
    """SIGTERM to this process when its parent dies (a forked child, before it runs)."""
    libc().prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
