"""Notify scripts that end in the order of the transitions behind them.

keepalived starts each transition's scripts at once and leaves their order to chance:
an instance going BACKUP -> MASTER -> BACKUP within milliseconds (two nodes starting
together), or a real server flapping, can leave a state file or a pool manager saying
the state before the last. Here a transition's scripts start once the previous
transition's scripts of the same subject (an instance, a real server, a virtual server's
quorum) have ended. Subjects do not wait for each other, and each script keeps its
timeout: a hung script delays its subject's next one, never stops it.
"""

from __future__ import annotations

import asyncio
import functools

from conf.model import Script

from .scripts import run_script

TYPE_CHECKING = False  # (typing itself is not imported at run time)
if TYPE_CHECKING:
    from collections.abc import Hashable, Iterable

# a script (None: none, or the script policy took it out), its extra arguments, what it
# is for
Run = tuple[Script | None, tuple[str, ...], str]


class InOrder:
    def __init__(self) -> None:
        # each subject's newest run; it holds the one before it (its `before`)
        self._last: dict[Hashable, asyncio.Task[None]] = {}

    def run(self, subject: Hashable, runs: Iterable[Run]) -> None:
        """Run `runs` together, once `subject`'s earlier runs have ended."""
        todo = [(s, extra, what) for s, extra, what in runs if s is not None]
        if not todo:
            return
        task = asyncio.get_running_loop().create_task(
            _after(self._last.get(subject), todo))
        self._last[subject] = task
        task.add_done_callback(functools.partial(self._ended, subject))

    def _ended(self, subject: Hashable, task: asyncio.Task[None]) -> None:
        if self._last.get(subject) is task:
            del self._last[subject]

    async def drain(self, timeout: float) -> None:
        """Let the runs started so far end (at stop): a subject's newest ends last."""
        if self._last:
            await asyncio.wait(set(self._last.values()), timeout=timeout)


async def _after(before: asyncio.Task[None] | None,
                 runs: list[tuple[Script, tuple[str, ...], str]]) -> None:
    if before is not None and not before.done():
        await asyncio.wait({before})
    await asyncio.gather(*(run_script(s, extra, what=what) for s, extra, what in runs))
