"""Token lines to a tree of statements and blocks.

A statement is a keyword with its arguments; it becomes a block when a `{`
follows it, on the same line or on the next one, as keepalived allows. Tokens
after a `{` on the same line start the block's first statement, and a `}` may
close a block anywhere on a line (`virtual_ipaddress { 10.0.0.1 }`).

A block keyword written without its `{` (known from `blocks`, per enclosing block)
opens its block anyway, as keepalived's parser does: its lines run to the next `}`,
which is then not the enclosing block's end any more. A `{` after a keyword that
takes no block (known from `leaves`) is ignored, as keepalived ignores it: the lines
after it stay in the enclosing block, and the next `}` closes that.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet

from .errors import Diagnostics, Pos

Line = tuple[list[str], Pos]
Blocks = Mapping[str, Mapping[str, bool]]
Leaves = Mapping[str, AbstractSet[str]]
_NONE: Mapping[str, bool] = {}
_NO_LEAVES: AbstractSet[str] = frozenset()
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

    `blocks` maps an enclosing block's keyword ('' the top level) to its keywords that
    take a block, each True for a list block (`virtual_ipaddress`...). One written
    without `{` gets the lines after it as its block, with a warning (keepalived's
    lib/parser.c: process_stream's need_bob, alloc_value_block for a list). A list
    block does not nest: a `{` in it is an item (keepalived hands it to the list's
    item parser, which refuses it) and its first `}` ends it.

    `leaves` maps an enclosing block's keyword to its keywords that take no block: a
    `{` after one is ignored with a warning (keepalived's process_stream: the keyword
    has no sub-keywords, so its `{` is an unexpected one, skipped), and so the lines
    after it are the enclosing block's and the next `}` is its end.

    The reader's fast path (conf/source.py) works on the state directly for the
    common line shapes and calls `feed` for the others."""

    __slots__ = ("diags", "on_node", "kinds", "leaves", "root", "stack", "body", "last",
                 "opens", "flat", "pending")

    def __init__(self, diags: Diagnostics, on_node: Callable[[Node], object],
                 blocks: Blocks | None = None, leaves: Leaves | None = None) -> None:
        self.diags = diags
        self.on_node = on_node
        self.kinds: Blocks = blocks or {}
        self.leaves: Leaves = leaves or {}
        self.root: list[Node] = []
        # (block, enclosing body, is a list)
        self.stack: list[tuple[Node, list[Node], bool]] = []
        self.body = self.root
        self.last: Node | None = None  # the statement a `{` on the next line would open
        self.opens = self.kinds.get("", _NONE)  # the block keywords of the block read
        self.flat = False  # reading a list block
        self.pending: Node | None = None  # a block keyword whose `{` must come next

    def context(self) -> Mapping[str, bool]:
        """The block keywords of the innermost open block."""
        if not self.stack:
            return self.kinds.get("", _NONE)
        name = self.stack[-1][0].name
        return self.kinds.get(name, _NONE) if name else _NONE

    def flush(self) -> None:
        """All top-level nodes but the last: it may still take a `{` on the next line."""
        done = self.root[:-1]
        del self.root[:-1]
        for node in done:
            self.on_node(node)

    def settle(self, brace_next: bool) -> None:
        """The line after a block keyword without `{` came: unless it starts with one,
        the keyword's block is the lines up to the next `}`."""
        pending = self.pending
        self.pending = None
        if pending is None or brace_next:
            return
        self.diags.warning(pending.pos, f"'{pending.name}' has no '{{'; as keepalived, "
                                        f"the lines up to the next '}}' are its block")
        pending.children = []
        self.flat = self.opens[pending.name]
        if self.flat and self.stack:
            _list_args(pending, self.diags)
        self.stack.append((pending, self.body, self.flat))
        self.body = pending.children
        self.opens = self.context()
        self.last = None

    def _open(self, node: Node) -> None:
        """`node` (its children list set) opens the block read from now on."""
        self.flat = self.opens.get(node.name, False)
        if self.flat and self.stack:
            _list_args(node, self.diags)
        self.stack.append((node, self.body, self.flat))
        self.body = node.children  # type: ignore[assignment]
        self.opens = self.context()
        self.last = None

    def _close(self) -> None:
        self.body = self.stack.pop()[1]
        self.flat = self.stack[-1][2] if self.stack else False
        self.opens = self.context()
        self.last = None

    def feed(self, tokens: list[str], pos: Pos) -> None:
        if self.pending is not None:
            self.settle(tokens[0] == "{" and type(tokens[0]) is str)
        if not self.stack and len(self.root) > 1:
            self.flush()
        file, line = pos
        # fast paths for the three shapes nearly every line has
        n_open = tokens.count("{")
        n_close = tokens.count("}")
        if not n_open and not n_close:
            node = Node(tokens[0], tokens[1:], file, line)
            self.body.append(node)
            self.last = node
            if node.name in self.opens:
                self.pending = node
            return
        if n_close == 1 and len(tokens) == 1 and type(tokens[0]) is str and self.stack:
            self._close()
            return
        if (n_open == 1 and not n_close and len(tokens) > 1 and tokens[-1] == "{"
                and type(tokens[-1]) is str and not self.flat
                and tokens[0] not in self.leaf_names()):
            node = Node(tokens[0], tokens[1:-1], file, line, [])
            self.body.append(node)
            self._open(node)
            return
        start = 0
        for i, tok in enumerate([*tokens, None]):
            if tok is not None and (type(tok) is not str or tok not in ("{", "}")):
                continue
            words = tokens[start:i]
            start = i + 1
            if words:
                node = Node(words[0], words[1:], file, line)
                self.body.append(node)
                self.last = node
                if tok is None and node.name in self.opens:
                    self.pending = node
            if tok == "{" and self.flat:  # an item of its own, refused by the list's parser
                self.body.append(Node("{", [], file, line))
                self.last = None
            elif tok == "{":
                last = self.last
                if last is not None and last.children is None and \
                        last.name in self.leaf_names():
                    self._ignored_brace(last, pos)
                    self.last = None
                    continue
                if last is None or last.children is not None:
                    self.diags.error(pos, "'{' without a keyword before it")
                    last = Node("", [], file, line)
                last.children = []
                self._open(last)
            elif tok == "}":
                if not self.stack:  # keepalived: "Unexpected '}'", ignored
                    self.diags.warning(pos, "'}' without a matching '{'; ignored")
                else:
                    self._close()
        if tokens and tokens[-1] in ("{", "}") and type(tokens[-1]) is str:
            self.last = None

    def leaf_names(self) -> AbstractSet[str]:
        """The keywords of the innermost open block that take no block."""
        return self.leaves.get(self.stack[-1][0].name if self.stack else "", _NO_LEAVES)

    def _ignored_brace(self, leaf: Node, pos: Pos) -> None:
        where = (f"{self.stack[-1][0].name} {' '.join(self.stack[-1][0].args)}".rstrip()
                 if self.stack else "")
        after = (f"the lines after it are read as part of {where} and the next '}}' "
                 f"ends it") if where else "the lines after it are read at the top level"
        self.diags.warning(pos, f"'{{' after '{leaf.name}', which takes no block, ignored "
                                f"(as keepalived): {after}")

    def close(self) -> None:
        """The end of the input: keepalived closes what the end of the file leaves open."""
        if self.pending is not None:  # keepalived reads an empty block
            self.diags.warning(self.pending.pos, f"'{self.pending.name}' has no '{{' and "
                                                 f"the file ends; an empty block")
            self.pending.children = []
            self.pending = None
        for node, _, _ in self.stack:
            self.diags.warning(node.pos, f"block '{node.name}' is not closed (missing '}}'); "
                                         f"closed at the end of the file")
        rest = self.root[:]
        del self.root[:]
        for node in rest:
            self.on_node(node)


def _list_args(node: Node, diags: Diagnostics) -> None:
    """A list block inside a block takes no value of its own (keepalived: 'extra
    parameters', and reads on); the top level's named lists are left to the builder."""
    if node.args:
        diags.warning(node.pos, f"'{node.name}' takes no value before its block: "
                                f"'{' '.join(node.args)}' ignored")
