"""The keepalived.conf preprocessor: files in, token lines with positions out (`read`),
or, on the path every load takes, statement trees (`load`, fused with conf/tree.py).

Handles what keepalived handles before the block parser sees a line: comments
(`#`, `!` outside quotes), `include`/`includet` with globs and brace patterns,
`@ID` / `@^ID` conditional lines, `$NAME=VALUE` definitions (multi-line with a
trailing backslash) and their `$NAME` / `${NAME}` uses, and `~SEQ` / `~LST` line
expansion. Every produced line keeps the file and line it came from.

This is the hot path of `director -t` (and of every reload) on big configs: the
common line becomes a tree node with a few plain `str` methods, and a file with no
line for the preprocessor skips even the looks for one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

from .errors import ConfigError, Diagnostics, Pos
from .tree import _NONE, Line, Node, TreeBuilder, _list_args


class Quoted(str):
    """A token that was written in double quotes (so `"{"` is not a brace)."""

    __slots__ = ()


_DEF_RE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$")
_USE_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_EXPAND_RE = re.compile(r"~(SEQx?|LST)\s*\(([^)]*)\)\s*")
_BRACE_RE = re.compile(r"\{([^{}]*,[^{}]*)\}")
MAX_INCLUDE_DEPTH = 32
MAX_EXPANSION = 1_000_000


def strip_comment(s: str) -> str:
    """Cut at the first `#` or `!` that is not inside double quotes."""
    if "#" not in s and "!" not in s:
        return s
    if '"' not in s:
        cut = len(s)
        for c in "#!":
            i = s.find(c)
            if 0 <= i < cut:
                cut = i
        return s[:cut]
    quoted = False
    for i, c in enumerate(s):
        if c == '"':
            quoted = not quoted
        elif not quoted and (c == "#" or c == "!"):
            return s[:i]
    return s


def tokenize(s: str) -> list[str]:
    """Split a comment-free line into tokens; braces are tokens of their own."""
    if '"' not in s:
        if "{" in s or "}" in s:
            s = s.replace("{", " { ").replace("}", " } ")
        return s.split()
    tokens: list[str] = []
    cur: list[str] = []
    quoted = False
    was_quoted = False

    def flush() -> None:
        nonlocal was_quoted
        if cur or was_quoted:
            text = "".join(cur)
            tokens.append(Quoted(text) if was_quoted else text)
            cur.clear()
        was_quoted = False

    for c in s:
        if quoted:
            if c == '"':
                quoted = False
            else:
                cur.append(c)
        elif c == '"':
            quoted = was_quoted = True
        elif c.isspace():
            flush()
        elif c == "{" or c == "}":
            flush()
            tokens.append(c)
        else:
            cur.append(c)
    flush()
    return tokens


def expand_braces(pattern: str) -> list[str]:
    """Expand `{a,b}` alternatives as glob(3) with GLOB_BRACE does."""
    m = _BRACE_RE.search(pattern)
    if not m:
        return [pattern]
    out: list[str] = []
    for alt in m.group(1).split(","):
        out.extend(expand_braces(pattern[: m.start()] + alt + pattern[m.end() :]))
    return out


def _seq_values(args: list[str], hex_out: bool = False) -> list[str]:
    """keepalived's ~SEQ(var, [start,] [step,] end): numbers as strtol(, 0) reads them
    (0x.. hex, 0.. octal); with one number the sequence runs from 1 (or -1) towards it;
    ~SEQx prints hex (for IPv6 addresses)."""
    try:
        nums = [int(a, 0) if a.strip() not in ("", "-") else 0 for a in args]
    except ValueError:
        nums = [int(a.lstrip("0") or "0") for a in args]  # strtol reads 08 as 0, 8: rare
    if len(nums) == 1:
        end = nums[0]
        start, step = (-1 if end < 0 else 1), (-1 if end < 1 else 1)
    elif len(nums) == 2:
        start, end = nums
        step = 1 if end >= start else -1
    elif len(nums) == 3:
        start, step, end = nums
        if not step or (start < end and step < 0) or (start > end and step > 0):
            raise ValueError("invalid values (step 0, or pointing away from the end)")
    else:
        raise ValueError("takes a variable and 1 to 3 numbers")
    if hex_out and (start < 0 or end < 0):
        raise ValueError("~SEQx is only valid for positive numbers")
    if (end - start) // step + 1 > MAX_EXPANSION:
        raise ValueError("expands to too many lines")
    stop = end + (1 if step > 0 else -1)
    return [format(v, "x") if hex_out else str(v) for v in range(start, stop, step)]


def _lst_values(spec: str) -> tuple[list[str], list[list[str]]]:
    """keepalived's ~LST(var, a, b) and ~LST({v1, v2}, {a1, a2}, {b1, b2}): the
    variables, then one value set per line (missing values are blank)."""
    groups = re.findall(r"\{([^}]*)\}|([^,{}]+)", spec)
    items = [([x.strip() for x in braced.split(",")] if braced else [plain.strip()])
             for braced, plain in groups if (braced or plain.strip())]
    if len(items) < 2:
        raise ValueError("needs a variable and at least one value")
    names = items[0]
    sets = []
    for vals in items[1:]:
        if len(vals) > len(names):
            raise ValueError("has more values than variables")
        sets.append(vals + [""] * (len(names) - len(vals)))
    return names, sets


def _has_special_lines(text: str, quotes: bool = True) -> bool:
    """Whether a line of `text` may be a conditional, definition, expansion, include or
    (with `quotes`) quoted line: `$`, NUL or `"` anywhere, or `@`, `~` or `include`
    starting a line."""
    if "$" in text or "\x00" in text or (quotes and '"' in text):
        return True
    for word in ("@", "~", "include"):
        i = text.find(word)
        while i >= 0:
            if not text[text.rfind("\n", 0, i) + 1 : i].strip():
                return True
            i = text.find(word, i + 1)
    return False


def _is_include(s: str) -> bool:
    word = s.split(None, 1)[0] if s else ""
    return word == "include" or word == "includet"


def _include_words(s: str) -> list[str]:
    """An include line keeps its braces: they are glob patterns, not blocks."""
    return [w.strip('"') for w in s.split()]


class _Lines:
    """The sink of `Source.read`: token lines as they come."""

    def __init__(self) -> None:
        self.lines: list[Line] = []

    def feed(self, tokens: list[str], pos: Pos) -> None:
        self.lines.append((tokens, pos))


class Source:
    """Reads a config tree into token lines (`read`) or straight into a statement tree
    (`load`). Problems go to `diags`."""

    def __init__(
        self,
        diags: Diagnostics,
        config_id: str | None = None,
        all_config: bool = False,
        defines: dict[str, str] | None = None,
    ) -> None:
        self.diags = diags
        self.config_id = config_id
        self.all_config = all_config
        self.defs: dict[str, str] = dict(defines or {})
        self.files: list[str] = []
        self._stack: list[str] = []
        self._sink: _Lines | TreeBuilder = _Lines()

    def read(self, path: str) -> Iterator[Line]:
        """The token lines of a config file and what it includes."""
        sink = self._sink = _Lines()
        self._file(path, None)
        yield from sink.lines

    def load(self, path: str, tree: TreeBuilder) -> None:
        """Feed `tree` with a config file and what it includes; raises ConfigError if
        the file cannot be read. The caller closes the tree."""
        self._sink = tree
        self._file(path, None)

    # -- files -------------------------------------------------------------
    def _file(self, path: str, at: Pos | None) -> None:
        real = os.path.realpath(path)
        if real in self._stack:
            chain = " -> ".join([*self._stack, real])
            self.diags.error(at or Pos(path, 0), f"include cycle: {chain}")
            return
        if len(self._stack) >= MAX_INCLUDE_DEPTH:
            self.diags.error(at or Pos(path, 0), f"includes nested deeper than {MAX_INCLUDE_DEPTH}")
            return
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            if at is None:
                raise ConfigError(Pos(path, 0), f"cannot read config file: {e.strerror}") from e
            self.diags.error(at, f"cannot read included file '{path}': {e.strerror}")
            return
        self.files.append(path)
        self._stack.append(real)
        try:
            text = data.decode("utf-8", "surrogateescape")
            del data
            if isinstance(self._sink, TreeBuilder):
                self._tree_lines(text, path, self._sink)
            else:
                self._lines(text, path)
        finally:
            self._stack.pop()

    def _include(self, tokens: list[str], pos: Pos) -> None:
        strict = self.all_config or tokens[0] == "includet"
        if len(tokens) < 2:
            self.diags.error(pos, f"'{tokens[0]}' needs a file name or pattern")
            return
        import glob  # only configs with includes need it

        base = os.path.dirname(pos.file)
        for pattern in tokens[1:]:
            if not os.path.isabs(pattern):
                pattern = os.path.join(base, pattern)
            found: list[str] = []
            for p in expand_braces(pattern):
                found.extend(sorted(glob.glob(p)) if glob.has_magic(p) else [p])
            found = [f for f in found if os.path.isfile(f)]
            if not found:
                msg = f"config file(s) missing: '{pattern}'"
                (self.diags.error if strict else self.diags.warning)(pos, msg)
                continue
            for f in found:
                self._file(f, pos)

    # -- lines ----------------------------------------------------------------
    def _lines(self, text: str, path: str) -> None:
        """`read`'s way: each line's tokens to the sink (one line at a time: a list of
        every line would live as long as the parse)."""
        lines = enumerate(text.split("\n"), 1)  # as StringIO(newline="\n") cuts them
        feed = self._sink.feed
        for i, s in lines:
            if "#" in s or "!" in s:
                s = strip_comment(s)
            s = s.strip()
            if not s:
                continue
            c = s[0]
            if c == "@" or c == "$" or c == "~" or c == "i" or "$" in s or "\x00" in s:
                self._special(s, Pos(path, i), lines)
            else:
                feed(tokenize(s), Pos(path, i))

    def _tree_lines(self, text: str, path: str, tree: TreeBuilder) -> None:
        """`_lines` fused with the tree: the shapes nearly every line has (`kw args`,
        `kw args {`, `}`) become nodes here, without a token line or a Pos each, as
        `TreeBuilder.feed` would make them; the rest goes through `_special` /
        `tree.feed` as in `_lines`. The tree's state is kept in locals and handed back
        around every call out."""
        # stripped in C as the lines are read (a comment cut after the strip ends the
        # same: the cut never falls in the whitespace)
        # (split at once: less memory than StringIO's copy of the text, 4 bytes a character)
        lines = enumerate(map(str.strip, text.split("\n")), 1)
        root, stack, kinds, diags = tree.root, tree.stack, tree.kinds, tree.diags
        body, last, opens, flat, pending = (tree.body, tree.last, tree.opens, tree.flat,
                                            tree.pending)
        top_opens = kinds.get("", _NONE)
        flush, feed = tree.flush, tree.feed
        # most big configs have no line the preprocessor must look at: skip the looks
        comments = "#" in text or "!" in text
        special = _has_special_lines(text)
        for i, s in lines:
            if not s:
                continue
            if comments and ("#" in s or "!" in s):
                s = strip_comment(s).strip()
                if not s:
                    continue
            if special:
                c = s[0]
                if (c == "@" or c == "~" or "$" in s or "\x00" in s or '"' in s
                        or (c == "i" and s.startswith("include"))):
                    tree.body, tree.last, tree.opens, tree.flat, tree.pending = (
                        body, last, opens, flat, pending)
                    if c == "@" or c == "~" or "$" in s or "\x00" in s or _is_include(s):
                        self._special(s, Pos(path, i), lines)
                    else:  # quotes
                        feed(tokenize(s), Pos(path, i))
                    body, last, opens, flat, pending = (tree.body, tree.last, tree.opens,
                                                        tree.flat, tree.pending)
                    continue
            if pending is not None:
                tree.body, tree.last, tree.opens, tree.flat, tree.pending = (
                    body, last, opens, flat, pending)
                tree.settle(s[0] == "{")
                body, last, opens, flat, pending = (tree.body, tree.last, tree.opens,
                                                    tree.flat, tree.pending)
            if not stack and len(root) > 1:
                flush()
            if "{" in s or "}" in s:
                if s == "}" and stack:
                    body = stack.pop()[1]
                    if stack:  # TreeBuilder._close, inline
                        top = stack[-1]
                        flat = top[2]
                        opens = kinds.get(top[0].name, _NONE) if top[0].name else _NONE
                    else:
                        flat = False
                        opens = top_opens
                    last = None
                    continue
                if not flat and s[-1] == "{" and "}" not in s and s.count("{") == 1:
                    tokens = s[:-1].split()
                    # a block keyword of the block read (others go through `feed`: a
                    # leaf's '{' is ignored there)
                    if tokens and tokens[0] in opens:  # TreeBuilder._open, inline
                        name = tokens[0]
                        node = Node(name, tokens[1:], path, i, [])
                        body.append(node)
                        flat = opens.get(name, False)
                        if flat and stack:
                            _list_args(node, diags)
                        stack.append((node, body, flat))
                        body = node.children  # type: ignore[assignment]
                        opens = kinds.get(name, _NONE)
                        last = None
                        continue
                tree.body, tree.last, tree.opens, tree.flat, tree.pending = (
                    body, last, opens, flat, pending)
                feed(tokenize(s), Pos(path, i))  # no quotes here: handled above
                body, last, opens, flat, pending = (tree.body, tree.last, tree.opens,
                                                    tree.flat, tree.pending)
                continue
            tokens = s.split()
            last = Node(tokens[0], tokens[1:], path, i)
            body.append(last)
            if tokens[0] in opens:  # a block keyword: its '{' may be on the next line
                pending = last
        tree.body, tree.last, tree.opens, tree.flat, tree.pending = (
            body, last, opens, flat, pending)

    def _special(self, s: str, pos: Pos, lines: Iterator[tuple[int, str]]) -> None:
        """A line that may be a conditional, a definition, an expansion or an include."""
        if "\x00" in s:
            self.diags.error(pos, "line contains a NUL byte; ignored")
            return
        if s[0] == "@":
            cond = self._conditional(s)
            if cond is None:
                return
            s = cond
        if s[0] == "$":
            m = _DEF_RE.match(s)
            if m:
                value = m.group(2).strip()
                while value.endswith("\\"):
                    nxt = next(lines, None)
                    if nxt is None:
                        value = value[:-1]
                        break
                    value = value[:-1].rstrip() + "\n" + strip_comment(nxt[1]).strip()
                self.defs[m.group(1)] = value.strip("\n")
                return
        self._expand(s, pos, 0)

    def _conditional(self, s: str) -> str | None:
        negate = s.startswith("@^")
        head, _, rest = s[2 if negate else 1 :].partition(" ")
        if not rest.strip():
            rest = ""
        matches = head == self.config_id
        if matches == negate:
            return None
        return rest.strip() or None

    def _expand(self, s: str, pos: Pos, depth: int) -> None:
        if depth > 16:
            self.diags.error(pos, "definitions nested too deeply (recursive definition?)")
            return
        if s.startswith("~"):
            m = _EXPAND_RE.match(s)
            if m:
                self._loop(m, s[m.end() :], pos, depth)
                return
        if "$" in s:
            s2 = _USE_RE.sub(self._substitute, s)
            if s2 != s:
                for part in s2.split("\n"):
                    part = part.strip()
                    if part:
                        self._expand(part, pos, depth + 1)
                return
        if _is_include(s):
            self._include(_include_words(s), pos)
            return
        tokens = tokenize(s)
        if tokens:
            self._sink.feed(tokens, pos)

    def _substitute(self, m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        value = self.defs.get(name)
        return m.group(0) if value is None else value

    def _loop(self, m: re.Match[str], body: str, pos: Pos, depth: int) -> None:
        kind = m.group(1)
        spec = m.group(2)
        if kind.startswith("SEQ"):
            args = [a.strip() for a in spec.split(",")]
            names = [args[0]]
            if "$" in spec:  # keepalived substitutes definitions in the numbers
                args = [args[0], *(_USE_RE.sub(self._substitute, a) for a in args[1:])]
            try:
                sets = [[v] for v in _seq_values(args[1:], hex_out=kind == "SEQx")]
            except ValueError as e:
                self.diags.warning(pos, f"~{kind}({spec}): {e}; line skipped")
                return
        else:
            try:
                names, sets = _lst_values(spec)
            except ValueError as e:
                self.diags.warning(pos, f"~LST({spec}): {e}; line skipped")
                return
        for var in names:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", var or ""):
                self.diags.warning(pos, f"~{kind}: invalid variable name '{var}'; "
                                        f"line skipped")
                return
        saved = {var: self.defs.get(var) for var in names}
        try:
            for values in sets:
                self.defs.update(zip(names, values, strict=True))
                self._expand(body, pos, depth + 1)
        finally:
            for var, old in saved.items():
                if old is None:
                    self.defs.pop(var, None)
                else:
                    self.defs[var] = old
