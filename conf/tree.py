"""Token lines to a tree of statements and blocks.

A statement is a keyword with its arguments; it becomes a block when a `{`
follows it, on the same line or on the next one, as keepalived allows. Tokens
after a `{` on the same line start the block's first statement, and a `}` may
close a block anywhere on a line (`virtual_ipaddress { 10.0.0.1 }`).
"""

from __future__ import annotations

from collections.abc import Iterable

from .errors import Diagnostics, Pos
from .source import Line


class Node:
    __slots__ = ("name", "args", "pos", "children")

    def __init__(self, name: str, args: list[str], pos: Pos) -> None:
        self.name = name
        self.args = args
        self.pos = pos
        self.children: list[Node] | None = None

    def __repr__(self) -> str:  # for test failure messages
        kids = "" if self.children is None else f" {{{len(self.children)}}}"
        return f"Node({self.name!r}, {self.args!r}, {self.pos}){kids}"


def build_tree(lines: Iterable[Line], diags: Diagnostics) -> list[Node]:
    root: list[Node] = []
    stack: list[tuple[Node, list[Node]]] = []
    body = root
    last: Node | None = None  # the statement a `{` on the next line would open
    for tokens, pos in lines:
        # fast paths for the three shapes nearly every line has
        n_open = tokens.count("{")
        n_close = tokens.count("}")
        if not n_open and not n_close:
            node = Node(tokens[0], tokens[1:], pos)
            body.append(node)
            last = node
            continue
        if n_close == 1 and len(tokens) == 1 and type(tokens[0]) is str and stack:
            body = stack.pop()[1]
            last = None
            continue
        if (n_open == 1 and not n_close and len(tokens) > 1 and tokens[-1] == "{"
                and type(tokens[-1]) is str):
            node = Node(tokens[0], tokens[1:-1], pos)
            node.children = []
            body.append(node)
            stack.append((node, body))
            body = node.children
            last = None
            continue
        start = 0
        for i, tok in enumerate(tokens + [None]):  # type: ignore[operator]
            if tok is not None and (type(tok) is not str or tok not in ("{", "}")):
                continue
            words = tokens[start:i]
            start = i + 1
            if words:
                node = Node(words[0], words[1:], pos)
                body.append(node)
                last = node
            if tok == "{":
                if last is None or last.children is not None:
                    diags.error(pos, "'{' without a keyword before it")
                    last = Node("", [], pos)
                last.children = []
                stack.append((last, body))
                body = last.children
                last = None
            elif tok == "}":
                if not stack:  # keepalived: "Unexpected '}'", ignored
                    diags.warning(pos, "'}' without a matching '{'; ignored")
                else:
                    body = stack.pop()[1]
                    last = None
        if tokens and tokens[-1] in ("{", "}") and type(tokens[-1]) is str:
            last = None
    for node, _ in stack:  # keepalived closes what the end of the file leaves open
        diags.warning(node.pos, f"block '{node.name}' is not closed (missing '}}'); "
                                f"closed at the end of the file")
    return root
