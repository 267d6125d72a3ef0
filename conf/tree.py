"""Token lines to a tree of statements and blocks.

A statement is a keyword with its arguments; it becomes a block when a `{`
follows it, on the same line or on the next one, as keepalived allows. Tokens
after a `{` on the same line start the block's first statement, and a `}` may
close a block anywhere on a line (`virtual_ipaddress { 10.0.0.1 }`).

A block keyword written without its `{` (known from `blocks`, per enclosing block)
opens its block anyway, as keepalived's parser does: its lines run to the next `}`,
which is then not the enclosing block's end any more.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

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


Blocks = Mapping[str, Mapping[str, bool]]
_NONE: Mapping[str, bool] = {}


def build_tree(lines: Iterable[Line], diags: Diagnostics,
               blocks: Blocks | None = None) -> list[Node]:
    return list(iter_tree(lines, diags, blocks))


def iter_tree(lines: Iterable[Line], diags: Diagnostics,
              blocks: Blocks | None = None) -> Iterator[Node]:
    """The top-level statements and blocks, each as soon as it is complete: the caller
    builds one block while the next is read, so a big file's tree never exists whole
    (its temporaries are reused block after block instead of piling up).

    `blocks` maps an enclosing block's keyword ('' the top level) to its keywords that
    take a block, each True for a list block (`virtual_ipaddress`...). One written
    without `{` gets the lines after it as its block, with a warning (keepalived's
    lib/parser.c: process_stream's need_bob, alloc_value_block for a list). A list
    block does not nest: a `{` in it is an item (keepalived hands it to the list's
    item parser, which refuses it) and its first `}` ends it."""
    kinds = blocks or {}
    root: list[Node] = []
    stack: list[tuple[Node, list[Node], bool]] = []  # (block, enclosing body, is a list)
    body = root
    opens = kinds.get("", _NONE)  # the block keywords of the block being read
    flat = False  # reading a list block
    last: Node | None = None  # the statement a `{` on the next line would open
    pending: Node | None = None  # a block keyword whose `{` must be on the next line

    def context() -> Mapping[str, bool]:
        if not stack:
            return kinds.get("", _NONE)
        name = stack[-1][0].name
        return kinds.get(name, _NONE) if name else _NONE

    for tokens, pos in lines:
        if pending is not None:
            if not (tokens[0] == "{" and type(tokens[0]) is str):
                diags.warning(pending.pos, f"'{pending.name}' has no '{{'; as keepalived, "
                                           f"the lines up to the next '}}' are its block")
                pending.children = []
                flat = opens[pending.name]
                if flat and stack:
                    _list_args(pending, diags)
                stack.append((pending, body, flat))
                body = pending.children
                opens = context()
                last = None
            pending = None
        if not stack and len(root) > 1:  # all but the last: it may still take a `{`
            yield from root[:-1]
            del root[:-1]
        # fast paths for the three shapes nearly every line has
        n_open = tokens.count("{")
        n_close = tokens.count("}")
        if not n_open and not n_close:
            node = Node(tokens[0], tokens[1:], pos)
            body.append(node)
            last = node
            if node.name in opens:
                pending = node
            continue
        if n_close == 1 and len(tokens) == 1 and type(tokens[0]) is str and stack:
            body = stack.pop()[1]
            flat = stack[-1][2] if stack else False
            opens = context()
            last = None
            continue
        if (n_open == 1 and not n_close and len(tokens) > 1 and tokens[-1] == "{"
                and type(tokens[-1]) is str and not flat):
            node = Node(tokens[0], tokens[1:-1], pos)
            node.children = []
            body.append(node)
            flat = opens.get(node.name, False)
            if flat and stack:
                _list_args(node, diags)
            stack.append((node, body, flat))
            body = node.children
            opens = context()
            last = None
            continue
        start = 0
        for i, tok in enumerate([*tokens, None]):
            if tok is not None and (type(tok) is not str or tok not in ("{", "}")):
                continue
            words = tokens[start:i]
            start = i + 1
            if words:
                node = Node(words[0], words[1:], pos)
                body.append(node)
                last = node
                if tok is None and node.name in opens:
                    pending = node
            if tok == "{" and flat:  # an item of its own, refused by the list's parser
                body.append(Node("{", [], pos))
                last = None
            elif tok == "{":
                if last is None or last.children is not None:
                    diags.error(pos, "'{' without a keyword before it")
                    last = Node("", [], pos)
                last.children = []
                flat = opens.get(last.name, False)
                if flat and stack:
                    _list_args(last, diags)
                stack.append((last, body, flat))
                body = last.children
                opens = context()
                last = None
            elif tok == "}":
                if not stack:  # keepalived: "Unexpected '}'", ignored
                    diags.warning(pos, "'}' without a matching '{'; ignored")
                else:
                    body = stack.pop()[1]
                    flat = stack[-1][2] if stack else False
                    opens = context()
                    last = None
        if tokens and tokens[-1] in ("{", "}") and type(tokens[-1]) is str:
            last = None
    if pending is not None:  # keepalived reads an empty block
        diags.warning(pending.pos, f"'{pending.name}' has no '{{' and the file ends; "
                                   f"an empty block")
        pending.children = []
    for node, _, _ in stack:  # keepalived closes what the end of the file leaves open
        diags.warning(node.pos, f"block '{node.name}' is not closed (missing '}}'); "
                                f"closed at the end of the file")
    yield from root


def _list_args(node: Node, diags: Diagnostics) -> None:
    """A list block inside a block takes no value of its own (keepalived: 'extra
    parameters', and reads on); the top level's named lists are left to the builder."""
    if node.args:
        diags.warning(node.pos, f"'{node.name}' takes no value before its block: "
                                f"'{' '.join(node.args)}' ignored")
