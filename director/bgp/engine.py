"""The interface a BGP engine offers director: how to run it, how to tell it to announce
or withdraw a prefix, and how to read its answers. ExaBGP (exabgp.py) is the first; BIRD,
FRR or GoBGP can follow behind the same methods (a BIRD engine would, for example, write
static routes into an include file and confirm with `birdc configure`).

The speaker (speaker.py) talks to the engine through lines: it writes `announce` /
`withdraw` lines and reads lines back, each of which `parse` turns into a typed event.
"""

from __future__ import annotations

from typing import Protocol

import attrs

from conf.model import BgpSpeaker

from .core import Prefix


@attrs.frozen
class Ack:
    """The engine confirms (ok) or refuses the oldest command not yet answered."""

    ok: bool


@attrs.frozen
class PeerState:
    """A BGP session changed state (connected, up, down)."""

    neighbor: str
    state: str
    detail: str = ""


EngineEvent = Ack | PeerState


class Engine(Protocol):
    name: str

    def argv(self, conf_path: str) -> list[str]:
        """The engine's command line, running in the foreground."""
        ...

    def env(self, speaker: BgpSpeaker, local_addresses: dict[str, str]) -> dict[str, str]:
        """Environment settings: no daemonising, no privilege drop, logs on stdout."""
        ...

    def render(self, speaker: BgpSpeaker, api_argv: list[str],
               local_addresses: dict[str, str]) -> str:
        """The engine's configuration; `api_argv` is the program the engine must run to
        receive director's commands (its stdin/stdout are the command channel)."""
        ...

    def announce(self, prefix: Prefix) -> str:
        ...

    def withdraw(self, prefix: Prefix) -> str:
        ...

    def parse(self, line: str) -> EngineEvent | None:
        """One line from the engine's command channel; None: nothing director uses."""
        ...


def engine_for(name: str) -> Engine:
    if name == "exabgp":
        from .exabgp import ExaBgp

        return ExaBgp()
    raise ValueError(f"BGP engine {name} is not available")
