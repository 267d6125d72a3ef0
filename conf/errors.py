"""Diagnostics with file:line positions, collected rather than raised.

keepalived reports every problem it finds and keeps going; so do we. A
`Diagnostics` collects errors (the config would not run as written) and warnings
(it runs, but something was ignored or is unsupported).
"""

from __future__ import annotations

import re
from collections import namedtuple

# typing.NamedTuple's classes for type checkers; collections' at run time (the same
# tuples: typing.NamedTuple makes a namedtuple) without importing typing on the start path
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple

    class _Pos(NamedTuple):
        file: str
        line: int

    class _Diagnostic(NamedTuple):
        severity: str  # "error" | "warning"
        pos: Pos
        message: str
else:
    _Pos = namedtuple("Pos", ("file", "line"))
    _Diagnostic = namedtuple("Diagnostic", ("severity", "pos", "message"))

# a control character from the file (a stray CR, say) would split or rewrite the one line
# a diagnostic is on a terminal or in a log: shown escaped instead
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _escaped(text: str) -> str:
    if _CONTROL.search(text) is None:
        return text
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


class Pos(_Pos):
    """Where a line came from (file, line). A named tuple: one is made per config line."""

    __slots__ = ()

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


NOWHERE = Pos("<config>", 0)


class Diagnostic(_Diagnostic):
    """(severity: "error" | "warning", pos, message)"""

    __slots__ = ()

    def __str__(self) -> str:
        return _escaped(f"{self.pos}: {self.severity}: {self.message}")


class BadValue(ValueError):
    """A keyword's value is wrong; the builder reports it at the keyword's file:line.

    keepalived logs a bad value and runs on without it (the default stays), so the
    builder makes this a warning and ignores the keyword."""


class MissingValue(BadValue):
    """A keyword without its parameter: keepalived exits on it, so this is an error."""


class ConfigError(Exception):
    """Raised only where going on makes no sense (the main file is unreadable)."""

    def __init__(self, pos: Pos, message: str):
        super().__init__(f"{pos}: {message}")
        self.pos = pos
        self.message = message


class Diagnostics:
    def __init__(self) -> None:
        self.items: list[Diagnostic] = []

    def error(self, pos: Pos, message: str) -> None:
        self.items.append(Diagnostic("error", pos, message))

    def warning(self, pos: Pos, message: str) -> None:
        self.items.append(Diagnostic("warning", pos, message))

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "warning"]

    def __bool__(self) -> bool:
        return bool(self.items)
