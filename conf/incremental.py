"""A reload that re-reads only the top-level blocks that changed.

A running daemon's reload reads the whole file again, as keepalived does; on a big
config most of it is what the last load read. This keeps, from each load, every
top-level block's source text (from its first line to the next block's), its first
line, and what building it gave: the model objects and the diagnostics, in order.
The next load splits the new text at the old blocks where it still matches them,
feeds the changed stretches through the usual tree and builder, and puts a block whose
text and first line are unchanged back as it was built, its diagnostics replayed at the
point the builder would have made them. The whole-config steps (the builder's merge,
`finish`, `validate`) run as on a full parse, so the result is the full parse's.

Only `virtual_server` blocks are reused: building one reads nothing outside its block
(no defaults from global_defs, no names seen before), and they are the bulk of a big
file. Every other block is read again each time, in file order, so whatever state the
builder keeps across blocks (names already defined, the nftables table) is rebuilt.
Read again instead, when reuse could change meaning:
- a line for the preprocessor (`include`, `@` conditional, `$` definition or use,
  `~SEQ`/`~LST`, a NUL) anywhere: what a block means may depend on what came before,
  so the whole file is read the usual way and nothing is kept;
- a block whose text is the same but whose first line moved: positions in the model
  and in messages must stay right (when most blocks moved, the whole file is read by
  conf.load's own reader, which is faster per line, and its blocks noted);
- a block with a remark of the tree reader's inside (a missing brace...): its meaning
  depends on its surroundings;
- the first load in a process (but the checker child starts with the seed of the
  daemon's start-up load: `Recorder`, `adopt`, `prime`), or another file or options.
"""

from __future__ import annotations

import bisect
import gc
import os
import threading

from .build import Builder
from .errors import ConfigError, Diagnostic, Diagnostics, Pos
from .load import Loaded, _finish_config, default_config_id, load
from .load import _load as _full_load
from .model import Config
from .source import Source, _has_special_lines, strip_comment, tokenize
from .tree import Node, TreeBuilder

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# the only block kind reused (see the module's doc)
REUSED = "virtual_server"
# how many old blocks past a changed one are tried as the place where the texts agree
# again (past that, the rest of the file is read again)
LOOKAHEAD = 32
_make_pos = tuple.__new__  # Pos(file, line) without NamedTuple's Python-level __new__


class _Block:
    """A top-level block as the last load read it: its text (its lines up to the next
    block's) as length, digest and line count, its first line, and, if it may be
    reused, what building it appended to the builder and the diagnostics building it
    made. Not the text itself: that would keep a copy of the whole file in the checker
    child. The digest is str's hash (SipHash, 64 bits, keyed per process: a changed
    block of the same length passes for unchanged with odds of 2**-64)."""

    __slots__ = ("size", "digest", "line", "nl", "out", "diags")

    def __init__(self, text: str, line: int, out: list[Any] | None,
                 diags: list[Diagnostic]) -> None:
        self.size = len(text)
        self.digest = hash(text)
        self.line = line
        self.nl = text.count("\n")
        self.out = out  # None: read again next time
        self.diags = diags

    def at(self, text: str, pos: int) -> bool:
        """Whether `text` has this block at `pos`."""
        end = pos + self.size
        return end <= len(text) and hash(text[pos:end]) == self.digest


class _Reused(Node):
    """A reused block in the tree's place of the node it was built from."""

    __slots__ = ("block",)

    def __init__(self, block: _Block, file: str) -> None:
        super().__init__(REUSED, [], file, block.line, [])
        self.block = block


class _Fallback(Exception):
    """Reuse could change meaning: read the whole file the usual way."""


class _Memory:
    """What the last load here kept: its blocks, and what validation keeps (`memo`)."""

    __slots__ = ("key", "blocks", "memo")

    def __init__(self, key: tuple[Any, ...], blocks: list[_Block]) -> None:
        self.key = key
        self.blocks = blocks
        self.memo: dict[str, Any] = {}


_memory: _Memory | None = None
_lock = threading.Lock()  # reloads run in a worker thread; one at a time uses the memory
# what the last load did, for tests and the reload's log: "full", "incremental" or
# "error: ..." (an internal error, the file then read in full), and the blocks reused
last_mode = ""
last_reused = 0


def forget() -> None:
    """Drop what the last load kept, and the seed (tests; a process that stops
    reloading)."""
    global _memory, _seed
    _memory = _seed = None


def load_incremental(path: str, config_id: str | None = None, all_config: bool = False,
                     check_host: bool = True) -> Loaded:
    """`conf.load.load`'s result, reusing what the last call here built where the file
    still says the same thing."""
    global _memory, last_mode, last_reused
    with _lock:
        cid = config_id if config_id is not None else default_config_id()
        key = (path, os.path.realpath(path), cid, all_config, check_host)
        mem, _memory = _memory, None  # kept again only if this load succeeds
        try:
            with open(path, "rb") as f:
                text = f.read().decode("utf-8", "surrogateescape")
        except OSError:
            text = None
        if text is None:  # as load() says it
            last_mode, last_reused = "full", 0
            return load(path, config_id=cid, all_config=all_config, check_host=check_host)
        if mem is None or mem.key != key:
            mem = _Memory(key, [])
        was_enabled = gc.isenabled()
        gc.disable()  # as conf.load.load: the parse makes no cycles
        try:
            try:
                plan = _plan(text, mem.blocks) if mem.blocks else None
                reused = 0 if plan is None else sum(len(step) == 2 for step in plan)
                if plan is None or reused * 2 < sum(b.out is not None for b in mem.blocks):
                    # the first load, or most of the file to read again (lines moved):
                    # the usual reader, noting the blocks for the next time
                    last_mode, last_reused = "full", 0
                    return _record(path, cid, all_config, check_host, mem)
                loaded, blocks = _load(path, text, plan, mem, check_host)
            except _Fallback:
                last_mode, last_reused = "full", 0
                return load(path, config_id=cid, all_config=all_config,
                            check_host=check_host)
            except Exception as e:  # a bug here must not cost the reload: read it all
                last_mode, last_reused = f"error: {type(e).__name__}: {e}", 0
                return load(path, config_id=cid, all_config=all_config,
                            check_host=check_host)
        finally:
            if was_enabled:  # as conf.load.load: what the parse left aged at once
                gc.freeze()
                gc.unfreeze()
                gc.enable()
        if blocks is not None:
            mem.blocks = blocks
            _memory = mem
        last_mode, last_reused = "incremental", reused
        return loaded


def _record(path: str, config_id: str, all_config: bool, check_host: bool,
            mem: _Memory) -> Loaded:
    """A full read by conf.load's reader, its blocks kept for the next load."""
    global _memory, last_mode
    seeds: list[_Seed | None] = []
    loaded = _full_load(path, config_id, all_config, check_host, seed=True,
                        keep=seeds.append)
    seed = seeds[0] if seeds else None
    if seed is not None and loaded.config is not None:
        try:
            blocks = _blocks(seed, loaded.config.virtual_servers)
        except Exception as e:  # a bug here: this load stands, the next reads it all
            last_mode, blocks = f"error: {type(e).__name__}: {e}", None
        if blocks is not None:
            mem.blocks = blocks
            mem.memo.clear()
            _memory = mem
    return loaded


def _plan(text: str, old: list[_Block]) -> list[tuple[int, int, int] | tuple[_Block, int]]:
    """The new text as stretches to read, (start, end, first line), and old blocks to
    reuse with where they now start, (block, offset), in file order."""
    plan: list[tuple[int, int, int] | tuple[_Block, int]] = []
    pos, line, i, n = 0, 1, 0, len(old)
    start, start_line = 0, 1  # the stretch to read that is open
    while i < n:
        b = old[i]
        if b.line == line and b.at(text, pos):
            if b.out is not None:
                if pos > start:
                    plan.append((start, pos, start_line))
                plan.append((b, pos))
                start, start_line = pos + b.size, line + b.nl
            pos += b.size
            line += b.nl
            i += 1
            continue
        # changed: an old block further on, at its old line and with its old text?
        q, qline, found = pos, line, False
        for j in range(i + 1, min(n, i + 1 + LOOKAHEAD)):
            cand = old[j]
            while qline < cand.line:
                k = text.find("\n", q)
                if k < 0:
                    break
                q, qline = k + 1, qline + 1
            if qline != cand.line:
                break
            if cand.out is not None and cand.at(text, q):
                pos, line, i, found = q, qline, j, True
                break
        if not found:
            break
    if len(text) > start:
        plan.append((start, len(text), start_line))
    return plan


def _load(path: str, text: str, plan: list[tuple[int, int, int] | tuple[_Block, int]],
          mem: _Memory, check_host: bool) -> tuple[Loaded, list[_Block] | None]:
    diags = Diagnostics()
    builder = Builder(diags)
    items = diags.items
    kw = builder._kw  # what `add` appends to, by Config field
    field = builder._top_entries[REUSED][0]
    nodes: list[Node] = []  # the top-level nodes, in order
    # a reusable node's build: id(node) -> (objects appended, its diagnostics' range)
    built: dict[int, tuple[list[Any], int, int]] = {}

    def on_node(node: Node) -> None:
        nodes.append(node)
        if type(node) is _Reused:
            b = node.block
            items.extend(b.diags)
            objs = kw.setdefault(field, [])
            objs.extend(b.out or ())
            return
        if node.name != REUSED or node.children is None or node.file != path:
            builder.add(node)
            return
        have = len(kw.get(field, ()))
        n0 = len(items)
        builder.add(node)
        built[id(node)] = (kw.get(field, [])[have:], n0, len(items))

    blocks = builder.block_keywords()  # as conf.load reads
    tree = TreeBuilder(diags, on_node, blocks, builder.leaf_keywords(blocks))
    offsets: dict[int, int] = {}  # first line of a node -> its offset in text
    try:
        for step in plan:
            if len(step) == 2:
                block, at = step
                # what reading the block would leave: it was read at the top level,
                # so it must start there now too
                if tree.stack or tree.pending is not None:
                    raise _Fallback
                if len(tree.root) > 1:
                    tree.flush()
                tree.root.append(_Reused(block, path))
                tree.last = None
                offsets[block.line] = at
            else:
                _feed(text, *step, path, tree, offsets)
        tree.close()
        cfg = builder.config([path])
    except ConfigError as e:
        diags.error(e.pos, e.message)
        return Loaded(None, diags), None
    loaded = _finish_config(cfg, diags, check_host, mem.memo)
    return loaded, _remember(text, nodes, built, items, path, offsets)


def _feed(text: str, start: int, end: int, first: int, path: str, tree: TreeBuilder,
          offsets: dict[int, int]) -> None:
    """Lines of text[start:end] (line `first` on) to the tree, as conf/source.py reads a
    file without preprocessor lines; `offsets` gets where each line starting a
    top-level node is."""
    feed = tree.feed
    root = tree.root
    lines = text[start:end].split("\n")
    at = start
    for i, s in enumerate(lines, first):
        here = at
        at += len(s) + 1
        if "#" in s or "!" in s:
            s = strip_comment(s)
        s = s.strip()
        if not s:
            continue
        c = s[0]
        if c == "@" or c == "$" or c == "~" or "$" in s or "\x00" in s or (
                c == "i" and s.split(None, 1)[0] in ("include", "includet")):
            raise _Fallback  # a line for the preprocessor: read it all the usual way
        last = root[-1] if root else None
        feed(tokenize(s), _make_pos(Pos, (path, i)))
        if root and root[-1] is not last:
            offsets[i] = here


def _remember(text: str, nodes: list[Node], built: dict[int, tuple[list[Any], int, int]],
              items: list[Diagnostic], path: str, offsets: dict[int, int]
              ) -> list[_Block] | None:
    """The blocks of this load for the next: each top-level node's text from its first
    line to the next node's."""
    starts = [n.line for n in nodes]
    if (any(n.file != path for n in nodes) or any(s not in offsets for s in starts)
            or any(a >= b for a, b in zip(starts, starts[1:], strict=False))):
        return None  # two blocks on one line, or one we did not see start: no reuse
    # a block with a remark of the tree reader's inside (a diagnostic no reusable
    # block's building made) is read again next time
    bad = _remarked(items, [(d0, d1) for _o, d0, d1 in built.values()], starts, path)
    blocks: list[_Block] = []
    if not nodes:
        return [_Block(text, 1, None, [])]
    if offsets[starts[0]] > 0:
        blocks.append(_Block(text[: offsets[starts[0]]], 1, None, []))
    ends = [offsets[s] for s in starts[1:]] + [len(text)]
    for k, node in enumerate(nodes):
        a, e = offsets[starts[k]], ends[k]
        if type(node) is _Reused:
            old = node.block
            blocks.append(old if e - a == old.size else
                          _Block(text[a:e], old.line, None, []))
            continue
        info = built.get(id(node))
        if info is None or k in bad:
            blocks.append(_Block(text[a:e], starts[k], None, []))
        else:
            objs, d0, d1 = info
            blocks.append(_Block(text[a:e], starts[k], objs, items[d0:d1]))
    return blocks


# -- the seed: a daemon's start-up load, for the checker child's first reload ------------

class _TextSource(Source):
    """conf.load's reader, keeping the text of the file it reads (the seed needs the
    very text the model came from)."""

    texts: list[str]

    def _tree_lines(self, text: str, path: str, tree: TreeBuilder) -> None:
        self.texts.append(text)
        super()._tree_lines(text, path, tree)


class _Seed:
    """The start-up load's text, where each top-level block starts in it, and which of
    the model's virtual servers each reusable block built (indexes: the parent, which
    makes the seed, lets go of the model; the checker child, which inherits both, pairs
    them again). The text is the one the model was read from: no re-reading, no race
    with an edit made right after the start."""

    __slots__ = ("key", "text", "entries", "config", "objects")

    def __init__(self, key: tuple[Any, ...], text: str,
                 entries: list[tuple[int, list[int] | None, list[Diagnostic]]],
                 config: Config) -> None:
        self.key = key
        self.text = text
        self.entries = entries  # (first line, model indexes or None, diagnostics)
        self.config = id(config)  # the model it goes with (not a reference: see above)
        self.objects: tuple[Any, ...] | None = None


_seed: _Seed | None = None


class Recorder:
    """conf.load's hooks for a seed: the reader keeps the text, `add` notes each block."""

    def __init__(self, path: str, config_id: str, all_config: bool, check_host: bool,
                 builder: Builder) -> None:
        self.key = (path, os.path.realpath(path), config_id, all_config, check_host)
        self.builder = builder
        self.kw = builder._kw
        self.items = builder.diags.items
        self.field = builder._top_entries[REUSED][0]
        # (file, line, objects appended, its diagnostics' range) for each top-level node:
        # not the node, whose subtree (every line's tokens) would then outlive its
        # building, interleaved with the model in the heap (+25 MiB kept at 113k lines)
        self.nodes: list[tuple[str, int, list[Any] | None, int, int]] = []
        self.texts: list[str] = []

    def source(self, diags: Diagnostics, config_id: str, all_config: bool) -> Source:
        src = _TextSource(diags, config_id, all_config=all_config)
        src.texts = self.texts
        return src

    def add(self, node: Node) -> None:
        if node.name != REUSED or node.children is None:
            self.builder.add(node)
            self.nodes.append((node.file, node.line, None, 0, 0))
            return
        have = len(self.kw.get(self.field, ()))
        n0 = len(self.items)
        self.builder.add(node)
        self.nodes.append((node.file, node.line, self.kw.get(self.field, [])[have:], n0,
                           len(self.items)))

    def done(self, loaded: Loaded) -> _Seed | None:
        """The seed, if the load is one the incremental reader could have made (what
        costs more than a glance is left to `prime`, in the child, after its start)."""
        path = self.key[0]
        if (loaded.config is None or len(self.texts) != 1 or not self.nodes
                or any(file != path for file, *_ in self.nodes)):
            return None
        starts = [line for _file, line, *_ in self.nodes]
        if any(a >= b for a, b in zip(starts, starts[1:], strict=False)):
            return None
        built = [(a, b) for _f, _l, objs, a, b in self.nodes if objs is not None]
        bad = _remarked(self.items, built, starts, path)
        final = {id(vs): i for i, vs in enumerate(loaded.config.virtual_servers)}
        entries: list[tuple[int, list[int] | None, list[Diagnostic]]] = []
        for k, (_file, line, objs, d0, d1) in enumerate(self.nodes):
            idx = None if objs is None or k in bad else [final.get(id(o), -1) for o in objs]
            if idx is None or -1 in idx:  # validation changed it: not the block's own
                entries.append((line, None, []))
            else:
                entries.append((line, idx, self.items[d0:d1]))
        return _Seed(self.key, self.texts[0], entries, loaded.config)


def _remarked(items: list[Diagnostic], built: list[tuple[int, int]], starts: list[int],
              path: str) -> set[int]:
    """The blocks (indexes into `starts`) with a diagnostic inside that no reusable
    block's building made: the tree reader's remarks, whose meaning depends on what
    is around."""
    mine = bytearray(len(items))
    for d0, d1 in built:
        mine[d0:d1] = b"\x01" * (d1 - d0)
    return {bisect.bisect_right(starts, d.pos.line) - 1
            for d, m in zip(items, mine, strict=True) if not m and d.pos.file == path}


def drop_seed() -> None:
    """A process that will not reload LVS (the watchdog parent once its children run,
    the VRRP child) lets go of the seed's text."""
    global _seed
    _seed = None


def adopt(cfg: Config) -> None:
    """In the checker child, with the model the parent handed over: the seed's objects.
    Cheap; `prime` does the rest once the child has started."""
    global _seed
    if _seed is not None and _seed.config == id(cfg):
        _seed.objects = cfg.virtual_servers
    elif _seed is not None:
        _seed = None  # another model (a respawned child reads the file again)


def set_seed(seed: _Seed | None) -> None:
    """The process's seed (conf.load's start-up load)."""
    global _seed
    _seed = seed


def prime() -> None:
    """The memory of the start-up load, from the seed and the model (else the first
    reload reads the whole file, as before)."""
    global _seed, _memory
    seed, _seed = _seed, None
    if seed is None or seed.objects is None:
        return
    with _lock:
        if _memory is not None:
            return
        try:
            blocks = _blocks(seed, seed.objects)
        except Exception:  # a bug here must not cost the child: the first reload reads all
            blocks = None
        if blocks is not None:
            _memory = _Memory(seed.key, blocks)


def _blocks(seed: _Seed, objects: tuple[Any, ...]) -> list[_Block] | None:
    """A seed's blocks, with the model's virtual servers it names (None: not a text
    the incremental reader can take, or not that model)."""
    text = seed.text
    if _has_special_lines(text, quotes=False):
        return None
    for first, idx, _ in seed.entries:  # the very model the seed was made with?
        for i in idx or ():
            if i >= len(objects) or objects[i].pos != (seed.key[0], first):
                return None
    # the offset of each block's first line, walking the newlines: splitting the text
    # into its lines (and their lengths) would hold ~10 MiB at once at 113k lines, in the
    # checker child while its checks start, and leave its heap fragmented after
    offsets: list[int] = []
    find = text.find
    pos = 0
    line = 1
    for first, _, _ in seed.entries:
        while line < first:
            nl = find("\n", pos)
            if nl < 0:
                return None
            pos, line = nl + 1, line + 1
        offsets.append(pos)
    blocks: list[_Block] = []
    if offsets[0] > 0:
        blocks.append(_Block(text[: offsets[0]], 1, None, []))
    ends = [*offsets[1:], len(text)]
    for (first, idx, diags), a, e in zip(seed.entries, offsets, ends, strict=True):
        out = None if idx is None else [objects[i] for i in idx]
        blocks.append(_Block(text[a:e], first, out, list(diags)))
    return blocks
