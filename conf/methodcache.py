"""A disk cache of the methods attrs generates for the model's classes.

attrs writes each class's __init__/__eq__/__hash__/__repr__ as source and compiles
it when the class is defined: for the model's ~30 classes that compile is a fifth
of `director -t`'s fixed cost, paid again by every process. The compiled code is
kept beside the byte code (`__pycache__`), as CPython keeps a module's, and used
only for the very source it was compiled from; any other source (another attrs
version, a changed class) is compiled as usual and the cache rewritten (when byte
code is written: an install's byte-compiling step, bench/common.py's `precompile`,
or the first run). Where the cache cannot be read or written, nothing changes but
the time.

One part of attrs' source differs by process: __hash__ mixes in a per-class
constant made with hash(), which string hash randomisation changes on every run.
Those integer lines are compared apart, and the cached code gets this run's
constants, so the code used is the code attrs would have compiled.
"""

from __future__ import annotations

import builtins
import marshal
import os
import re
import sys
from types import CodeType
from typing import Any

# a line holding one integer literal: the per-process constant of attrs' __hash__
_INT_LINE = re.compile(r"^[ \t]*(-?\d+),$", re.M)
_real_compile = builtins.compile


def _swap_consts(code: CodeType, swap: dict[int, int]) -> CodeType:
    consts = tuple(
        _swap_consts(c, swap) if isinstance(c, CodeType)
        else swap.get(c, c) if type(c) is int else c
        for c in code.co_consts)
    return code.replace(co_consts=consts)


class MethodCache:
    """Stands in for `compile` in attrs' class builder between `start` and `stop`; its
    `compile` serves other generated code too (then `save`)."""

    def __init__(self, name: str) -> None:
        here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "__pycache__")
        self.path = os.path.join(here, f"{name}.{sys.implementation.cache_tag}.attrs")
        self.old: dict[str, Entry] = {}
        self.new: dict[str, Entry] = {}
        self.missed = False
        self._module: Any = None

    def start(self) -> None:
        try:
            with open(self.path, "rb") as f:
                old = marshal.load(f)
            if isinstance(old, dict):
                self.old = {k: e for k, e in old.items() if type(e) is tuple and len(e) == 4}
        except (OSError, EOFError, ValueError, TypeError):
            pass
        try:
            import attr._make as module
        except ImportError:  # another attrs layout: compiled as usual
            return
        self._module = module
        module.compile = self.compile  # type: ignore[attr-defined]

    def stop(self) -> None:
        """Back to the builtin compile; the cache rewritten if something was compiled."""
        if self._module is not None:
            del self._module.compile
            self._module = None
        self.save()

    def save(self) -> None:
        """The cache rewritten with what this process used, if something was compiled
        (not where byte code is not written either: PYTHONDONTWRITEBYTECODE, -B)."""
        if not self.missed or sys.dont_write_bytecode:
            return
        self.missed = False
        tmp = f"{self.path}.{os.getpid()}"
        try:
            with open(tmp, "wb") as f:
                marshal.dump(self.new, f)
            os.replace(tmp, self.path)
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass

    def compile(self, source: Any, filename: Any, mode: str, *args: Any,
                **kwargs: Any) -> Any:
        """`compile` for attrs' generated source (a str to exec, without flags)."""
        if type(source) is not str or mode != "exec" or args or kwargs:
            return _real_compile(source, filename, mode, *args, **kwargs)
        hit = self.old.get(filename)
        code = None if hit is None else _reuse(hit, source)
        if code is None:
            self.missed = True
            code = _real_compile(source, filename, mode)
            hit = _entry(source, code)
        self.new[filename] = hit  # type: ignore[assignment]
        return code


# an entry: the source before the hash constant, the constant (None: the source has
# none, all of it is in the first part), the source after it, the code
Entry = tuple[str, "int | None", str, CodeType]


def _entry(source: str, code: CodeType) -> Entry:
    found = _INT_LINE.findall(source)
    if len(found) != 1 or abs(int(found[0])) < 2**24:  # not attrs' one hash constant
        return source, None, "", code
    m = _INT_LINE.search(source)
    assert m is not None
    return source[: m.start(1)], int(m.group(1)), source[m.end(1) :], code


def _reuse(entry: Entry, source: str) -> CodeType | None:
    """The cached code if it was compiled from `source` (up to the hash constant,
    then this run's constant put in)."""
    head, old, tail, code = entry
    if old is None:
        return code if source == head else None
    if not (len(source) > len(head) + len(tail) and source.startswith(head)
            and source.endswith(tail)):
        return None
    mid = source[len(head) : len(source) - len(tail)]
    if not mid.lstrip("-").isdigit():
        return None
    new = int(mid)
    if new == old:
        return code
    if abs(new) < 2**24:
        return None
    return _swap_consts(code, {old: new})
