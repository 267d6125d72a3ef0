"""Value parsers of single keywords whose reading has a keepalived twist (a clamp, a
default on error, a wildcard): each takes a statement and returns the value, raises
`Bad` (the keyword is ignored) or `Fixed` (the repaired value is used, with a warning)."""

from __future__ import annotations

import os

from . import values as v
from .addrsyntax import SyntaxProblem, parse_vip
from .errors import BadValue as Bad
from .tree import Node

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


@v.single
def priority(node: Node) -> int:
    """keepalived sets a bad priority to the default 100 (not unset: an unset priority
    with state MASTER would mean 255)."""
    try:
        return v.to_int(v.one(node), 1, 255)
    except v.Missing:
        raise
    except Bad as e:
        raise v.Fixed(100, f"{e}; using the default 100") from None


@v.single
def rt_priority(node: Node) -> int:
    """keepalived clamps a realtime priority into SCHED_RR's range, with a log line."""
    p = v.to_int(v.one(node), -(2**31), 2**31 - 1)
    lo, hi = os.sched_get_priority_min(os.SCHED_RR), os.sched_get_priority_max(os.SCHED_RR)
    if not lo <= p <= hi:
        raise v.Fixed(min(max(p, lo), hi), f"{p} outside [{lo}, {hi}]; clamped")
    return p


@v.single
def rlimit(node: Node) -> int:
    limit = v.to_int(v.one(node), 1, 2**32 - 1)
    return max(limit, 2)  # keepalived: halved for the soft limit, which must not be 0


def cpus(node: Node) -> tuple[int, ...]:
    n = os.cpu_count() or 1
    cpus = []
    for a in node.args or [v.one(node)]:
        try:
            cpus.append(v.to_int(a, 0, n - 1))
        except Bad as e:  # keepalived skips an invalid cpu id
            raise v.Fixed(tuple(cpus), f"{e}; the rest ignored") from None
    return tuple(cpus)


def hex_str(words: list[str], wildcard: bool) -> tuple[bytes, bytes]:
    """keepalived's hex strings: whitespace-separated groups, two digits to a byte (a
    lone digit is a byte of its own); in require_reply an X is a wildcard nibble.
    Returns the bytes and the mask of wildcard bits."""
    data = bytearray()
    mask = bytearray()
    for word in words:
        i = 0
        while i < len(word):
            pair = word[i : i + 2]
            i += 2
            byte = m = 0
            for c in pair:
                byte <<= 4
                m <<= 4
                if wildcard and c in "Xx":
                    m |= 0xF
                elif c in "0123456789abcdefABCDEF":
                    byte |= int(c, 16)
                else:
                    raise Bad(f"'{' '.join(words)}' is not a hex string")
            data.append(byte)
            mask.append(m)
    if not data:
        raise Bad("needs a hex string")
    return bytes(data), bytes(mask)


def vip(node: Node) -> Any:
    """A VIP line; keepalived ignores an option it cannot read and keeps the address
    (and an invalid prefix length becomes the full length)."""
    try:
        return parse_vip([node.name, *node.args], node.pos)
    except SyntaxProblem as e:
        addr, slash, _ = node.name.partition("/")
        try:
            if node.args:
                fixed = parse_vip([node.name], node.pos), f"{e}; options ignored"
            elif slash:
                fixed = parse_vip([addr], node.pos), f"{e}; the full prefix length used"
            else:
                raise
        except SyntaxProblem:
            raise e from None
        raise v.Fixed(*fixed) from None
