"""Token lines to a tree of statements and blocks.

A statement is a keyword with its arguments; it becomes a block when a `{`
follows it, on the same line or on the next one, as keepalived allows. Tokens
after a `{` on the same line start the block's first statement, and a `}` may
close a block anywhere on a line (`virtual_ipaddress { 10.0.0.1 }`).
"""

from __future__ import annotations

from collections.abc import Callable

from .errors import Diagnostics, Pos

Line = tuple[list[str], Pos]
_make_pos = tuple.__new__  # Pos(file, line) without NamedTuple's Python-level __new__


class Node:
    """A statement; `children` is None for a leaf, a list for a block. The position is
    kept as file and line: a Pos is made only when one is asked for (one per config
    line would be a third of the tree's cost)."""

    __slots__ = ("name", "args", "file", "line", "children")

    def __init__(self, name: str, args: list[str], file: str, line: int,
                 children: list[Node] | None = None) -> None:
        self.name = name
        self.args = args
        self.file = file
        self.line = line
        self.children = children

    @property
    def pos(self) -> Pos:
        return _make_pos(Pos, (self.file, self.line))

    def __repr__(self) -> str:  # for test failure messages
        kids = "" if self.children is None else f" {{{len(self.children)}}}"
        return f"Node({self.name!r}, {self.args!r}, {self.pos}){kids}"


class TreeBuilder:
    """Takes token lines one at a time (`feed`) and hands each top-level statement or
    block to `on_node` as soon as it is complete: the caller builds one block while the
    next is read, so a big file's tree never exists whole.

    The reader's fast path (conf/source.py) works on `root`, `stack`, `body` and `last`
    directly for the common line shapes and calls `feed` for the others."""

    __slots__ = ("diags", "on_node", "root", "stack", "body", "last")

    def __init__(self, diags: Diagnostics, on_node: Callable[[Node], object]) -> None:
        self.diags = diags
        self.on_node = on_node
        self.root: list[Node] = []
        self.stack: list[tuple[Node, list[Node]]] = []
        self.body = self.root
        self.last: Node | None = None  # the statement a `{` on the next line would open

    def flush(self) -> None:
        """All top-level nodes but the last: it may still take a `{` on the next line."""
        done = self.root[:-1]
        del self.root[:-1]
        for node in done:
            self.on_node(node)

    def feed(self, tokens: list[str], pos: Pos) -> None:
        if not self.stack and len(self.root) > 1:
            self.flush()
        file, line = pos
        body = self.body
        # fast paths for the three shapes nearly every line has
        n_open = tokens.count("{")
        n_close = tokens.count("}")
        if not n_open and not n_close:
            node = Node(tokens[0], tokens[1:], file, line)
            body.append(node)
            self.last = node
            return
        stack = self.stack
        if n_close == 1 and len(tokens) == 1 and type(tokens[0]) is str and stack:
            self.body = stack.pop()[1]
            self.last = None
            return
        if (n_open == 1 and not n_close and len(tokens) > 1 and tokens[-1] == "{"
                and type(tokens[-1]) is str):
            node = Node(tokens[0], tokens[1:-1], file, line, [])
            body.append(node)
            stack.append((node, body))
            self.body = node.children  # type: ignore[assignment]
            self.last = None
            return
        last = self.last
        start = 0
        for i, tok in enumerate([*tokens, None]):
            if tok is not None and (type(tok) is not str or tok not in ("{", "}")):
                continue
            words = tokens[start:i]
            start = i + 1
            if words:
                node = Node(words[0], words[1:], file, line)
                body.append(node)
                last = node
            if tok == "{":
                if last is None or last.children is not None:
                    self.diags.error(pos, "'{' without a keyword before it")
                    last = Node("", [], file, line)
                last.children = []
                stack.append((last, body))
                body = last.children
                last = None
            elif tok == "}":
                if not stack:  # keepalived: "Unexpected '}'", ignored
                    self.diags.warning(pos, "'}' without a matching '{'; ignored")
                else:
                    body = stack.pop()[1]
                    last = None
        if tokens and tokens[-1] in ("{", "}") and type(tokens[-1]) is str:
            last = None
        self.body = body
        self.last = last

    def close(self) -> None:
        """The end of the input: keepalived closes what the end of the file leaves open."""
        for node, _ in self.stack:
            self.diags.warning(node.pos, f"block '{node.name}' is not closed (missing '}}'); "
                                         f"closed at the end of the file")
        rest = self.root[:]
        del self.root[:]
        for node in rest:
            self.on_node(node)

