"""Value parsers for keyword arguments: each takes a statement node and returns
the value or raises `Bad` with a message that the builder prefixes with file:line.
"""

from __future__ import annotations

from collections.abc import Callable

from .addrsyntax import SyntaxProblem, parse_ip
from .errors import BadValue, MissingValue
from .model import Script
from .tree import Node

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

Parser = Callable[[Node], "Any"]


Bad = BadValue
Missing = MissingValue


class Fixed(Exception):  # noqa: N818 (not an error: a repaired value)
    """The parser repaired the value as keepalived would: use `value`, warn `message`."""

    def __init__(self, value: Any, message: str) -> None:
        super().__init__(message)
        self.value = value


def single(parse: Parser) -> Parser:
    """Mark a parser as reading one value: keepalived reads the first word after such a
    keyword and never looks at the rest, so the builder drops extra words (warning)."""
    parse.single = True  # type: ignore[attr-defined]
    return parse


_TRUE = {"on", "true", "yes", "1"}
_FALSE = {"off", "false", "no", "0"}


@single
def one(node: Node) -> str:
    if not node.args:
        raise Missing("needs a value")
    return node.args[0]


def first(node: Node) -> str:
    if not node.args:
        raise Missing("needs a value")
    return node.args[0]


def text(node: Node) -> str:
    """All arguments joined, as keepalived's set_value() does."""
    if not node.args:
        raise Missing("needs a value")
    return " ".join(node.args)


def to_int(s: str, lo: int, hi: int) -> int:
    try:
        v = int(s)
    except ValueError:
        try:
            v = int(s, 16) if s[:2].lower() == "0x" else int("")
        except ValueError:
            raise Bad(f"'{s}' is not an integer") from None
    if not lo <= v <= hi:
        raise Bad(f"number '{v}' outside range [{lo}, {hi}]")
    return v


def to_float(s: str, lo: float, hi: float) -> float:
    try:
        v = float(s)
    except ValueError:
        raise Bad(f"'{s}' is not a number") from None
    if v != v or not lo <= v <= hi:
        raise Bad(f"number '{s}' outside range [{lo:g}, {hi:g}]")
    return v


def integer(lo: int = 0, hi: int = 2**31 - 1) -> Parser:
    @single
    def parse(node: Node) -> int:
        a = node.args
        if a:
            try:  # the common case inline: this runs for most lines of a big config
                v = int(a[0])
            except ValueError:
                return to_int(a[0], lo, hi)
            if lo <= v <= hi:
                return v
            return to_int(a[0], lo, hi)
        return to_int(one(node), lo, hi)

    return parse


def number(lo: float = 0.0, hi: float = 4294967.0) -> Parser:
    @single
    def parse(node: Node) -> float:
        a = node.args
        if a:
            try:
                v = float(a[0])
            except ValueError:
                return to_float(a[0], lo, hi)
            if lo <= v <= hi:
                return v
            return to_float(a[0], lo, hi)
        return to_float(one(node), lo, hi)

    return parse


def positive(parse: Parser, one_value: float = 1) -> Parser:
    """keepalived reads 0 for these (older versions allowed it) and sets 1 instead."""

    @single
    def wrapped(node: Node) -> Any:
        value = parse(node)
        if value == 0:
            raise Fixed(type(value)(one_value), "must be greater than 0; set to 1")
        return value

    return wrapped


@single
def flag(node: Node) -> bool:
    """A keyword that stands alone; keepalived also takes an explicit on/off."""
    if not node.args:
        return True
    v = node.args[0].lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise Bad(f"'{node.args[0]}' is not a boolean (on/off, true/false, yes/no)")


def choice(*values: str, upper: bool = True) -> Parser:
    @single
    def parse(node: Node) -> str:
        v = one(node)
        key = v.upper() if upper else v.lower()
        if key not in values:
            raise Bad(f"'{v}' is not one of {', '.join(values)}")
        return key

    return parse


def address(text: str) -> tuple[str, int, str]:
    """An address where keepalived takes one: like its inet_stosockaddr() it drops a
    `/prefix` or `-range` suffix. Returns (address, family, the part dropped)."""
    try:
        a, fam = parse_ip(text)
        return a, fam, ""
    except SyntaxProblem:
        cut = min((i for i in (text.find("/"), text.find("-")) if i > 0), default=-1)
        if cut < 0:
            raise
        a, fam = parse_ip(text[:cut])
        return a, fam, text[cut:]


@single
def ip(node: Node) -> str:
    try:
        a, _, dropped = address(one(node))
    except SyntaxProblem as e:
        raise Bad(str(e)) from None
    if dropped:
        raise Fixed(a, f"'{dropped}' after the address ignored")
    return a


@single
def port(node: Node) -> int:
    return to_int(one(node), 0, 65535)


def split_argv(cmd: str) -> tuple[str, ...]:
    """Split like keepalived: whitespace, with quotes and backslashes honoured."""
    import shlex  # only configs with scripts need it

    try:
        return tuple(shlex.split(cmd, posix=True))
    except ValueError:
        return tuple(cmd.split())


def script(node: Node) -> Script:
    cmd = text(node)
    argv = split_argv(cmd)
    if not argv:
        raise Bad("empty script")
    return Script(cmd=cmd, argv=argv, pos=node.pos)


def notify_script(node: Node) -> Script:
    """`notify* COMMAND [USER [GROUP]]` as keepalived reads it: the first word (quoted to
    hold arguments) is the command, the next two who runs it (more are ignored)."""
    if not node.args:
        raise Bad("needs a value")
    cmd = str(node.args[0])
    argv = split_argv(cmd)
    if not argv:
        raise Bad("empty script")
    return Script(cmd=cmd, argv=argv, pos=node.pos,
                  user=node.args[1] if len(node.args) > 1 else None,
                  group=node.args[2] if len(node.args) > 2 else None)


def block_lines(node: Node) -> list[Node]:
    if node.children is None:
        raise Bad("needs a block { ... }")
    return node.children
