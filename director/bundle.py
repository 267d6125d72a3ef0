"""The start-up module bundle: the code of the modules a daemon start imports, in one file.

Each import costs the interpreter half a dozen file operations (directory stats, the
.pyc's open/fstat/read/close); a start imports ~200 modules. Where files are slow (a
cold page cache at boot; the emulated VM's uncached 9p share, ~5 ms an operation) that
is most of the start-up. The bundle, written at install time by `director.bundle_build`
next to the package's .pyc files, holds their marshalled code; it is read with an
open and a read or two, and a finder first on sys.meta_path serves the modules from it.

It never runs stale code. Each module is served from the bundle only if, now:
- the directory it was found in, and every sys.path entry searched before it (the ones
  that could shadow it), has the modification time recorded at build time: adding,
  removing or renaming a file in a directory changes it, which covers package managers
  (dpkg, pip write new files and rename or unlink the old) and shadowing;
- for the project's own modules (edited in place by people), its source file has the
  recorded size and modification time, the check the interpreter makes for a .pyc;
- the bundle was written by an interpreter with this one's bytecode magic number, and
  the interpreter does not optimise (-O changes the code).
Anything else is imported the normal way. The loader is a SourceFileLoader that only
takes its code from the bundle, so __file__, tracebacks, get_source and resources work
as for any module. `drop()` frees the bundle once the process has started.
"""

# Only built-in and frozen modules here (no __future__, no typing): this runs before
# the bundle can serve anything, so each other import would be file operations.
import _imp
import marshal
import os
import sys
from _frozen_importlib_external import MAGIC_NUMBER, SourceFileLoader, spec_from_file_location

_compile = compile
CodeType = type((lambda: 0).__code__)  # (types.CodeType, without importing types)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

FORMAT = b"DIRB2"
PROJECT = ("conf", "daemonlib", "vrrp", "checkers", "director")
# Modules that compile generated source as they are used: attrs writes each class's
# __init__, __eq__, __repr__... as text and compiles it. The modules on the way to the
# first IPVS operation come with their attrs classes written ahead of time (conf/aot.py,
# director/aot_build.py) and import no attrs; for the others (the VRRP side, the
# checkers, an edited module imported from its source) the bundle holds the code of the
# scripts seen at build time, in a section of their own read only when attrs compiles,
# keyed by their full text and file name; any other script is compiled as usual.
COMPILERS = ("attr._make",)
# attrs's __hash__ starts from a constant of its own, a str hash: it varies from process
# to process (hash randomisation). Scripts are keyed without it, compiled with SEED, and
# the code gets the process's constant back (see _unseeded, _reseed).
SEED_AT = "hash((\n"
SEED = 0x5EED_5EED_5EED_5EED


def path() -> str:
    tag = sys.implementation.cache_tag
    return f"{__file__.rpartition('/')[0]}/__pycache__/startup.{tag}.bundle"


def header() -> bytes:
    return FORMAT + MAGIC_NUMBER


class _Loader(SourceFileLoader):
    def __init__(self, fullname: str, path: str, finder: "Finder") -> None:
        super().__init__(fullname, path)
        self.finder = finder

    def get_code(self, fullname: str) -> "Any":
        code = self.finder.code(fullname, self.path)
        return code if code is not None else super().get_code(fullname)

    def exec_module(self, module: "Any") -> None:
        super().exec_module(module)
        if module.__name__ in COMPILERS:
            self.finder.hook(module)


class Finder:
    """`index`: module name -> (file, is package, the directory searched for it (a
    sys.path entry or the package's), whether that is a sys.path entry, the directory
    holding the file (a package's own), (size, mtime_ns) of a project source or None,
    section, offset in it and length of its code, and for a module whose attrs classes
    come written ahead of time, the (path, (size, mtime_ns)) of what that code depends
    on besides its source: conf/aot.py, attrs' package directory).

    The file is in sections: the first (what the parent and the checker child import)
    comes with the index in one read; the others (the VRRP side's pyroute2, the status
    server's aiohttp, ...) are read, one read each, when one of their modules is first
    wanted: a process reads only what it uses."""

    def __init__(self, fd: int, meta: "dict[str, Any]", first: "memoryview", base: int
                 ) -> None:
        self.fd: int | None = fd
        self.index: dict[str, tuple[Any, ...]] = meta["modules"]
        self.dirs: dict[str, int] = meta["dirs"]  # directory -> mtime_ns (-1: absent)
        # (offset from `base`, where the first section starts; length)
        self.places: list[tuple[int, int]] = meta["sections"]
        self.base = base
        self.sections: list[Any] = [first] + [None] * (len(self.places) - 1)
        self.fresh: dict[str, bool] = {}  # directories checked in this process
        self.stamps: dict[str, tuple[int, int] | None] = {}  # dependencies, the same
        self.served = self.scripts_served = 0
        # (source, file name) -> (section, offset, length), compiled with these flags
        self.compiled: dict[tuple[str, str], tuple[int, int, int]] = meta["compiled"]
        self.compile_flags: int = meta["compile_flags"]
        self.hooked: list[Any] = []

    def _dir_ok(self, d: str) -> bool:
        ok = self.fresh.get(d)
        if ok is None:
            want = self.dirs.get(d)
            try:
                now = os.stat(d).st_mtime_ns
            except OSError:
                now = -1
            ok = self.fresh[d] = want is not None and now == want
        return ok

    def _stamp(self, path: str) -> "tuple[int, int] | None":
        if path not in self.stamps:
            try:
                st = os.stat(path)
                self.stamps[path] = (st.st_size, st.st_mtime_ns)
            except OSError:
                self.stamps[path] = None
        return self.stamps[path]

    def find_spec(self, fullname: str, path: "Any" = None, target: "Any" = None) -> "Any":
        entry = self.index.get(fullname)
        if entry is None:
            return None
        file, is_pkg, search, top, home, src = entry[:6]
        if not top:  # a submodule: searched in its package's __path__ only
            if list(path or ()) != [search] or not self._dir_ok(search):
                return None
        else:  # searched along sys.path: nothing before its entry may have changed
            for p in sys.path:
                if not isinstance(p, str) or not self._dir_ok(p or "."):
                    return None
                if p == search:
                    break
            else:
                return None
        if home != search and not self._dir_ok(home):
            return None
        if src is not None:
            try:
                st = os.stat(file)
            except OSError:
                return None
            if (st.st_size, st.st_mtime_ns) != src:
                return None
        for dep, stamp in entry[9] if len(entry) > 9 else ():
            if self._stamp(dep) != stamp:
                return None
        return spec_from_file_location(fullname, file, loader=_Loader(fullname, file, self),
                                       submodule_search_locations=[home] if is_pkg else None)

    def code(self, fullname: str, file: str) -> "Any":
        entry = self.index.get(fullname)
        if entry is None or entry[0] != file:  # (after close(): the index is empty)
            return None
        code = self._load(*entry[6:9])
        if code is not None:
            _imp._fix_co_filename(code, file)  # type: ignore[attr-defined]
            self.served += 1
        return code

    def _load(self, section: int, off: int, length: int) -> "Any":
        data = self.sections[section] if section < len(self.sections) else None
        if data is None:
            if self.fd is None:
                return None
            where, size = self.places[section]
            try:
                data = self.sections[section] = memoryview(_read(self.fd, size,
                                                                 self.base + where))
            except (OSError, ValueError):
                return None
        return marshal.loads(data[off:off + length])

    def hook(self, module: "Any") -> None:
        """`module` compiles through the bundle while it lasts, if it compiles with the
        flags the bundle's code was compiled with (its own __future__ imports)."""
        flags = 0
        for value in vars(module).values():
            if type(value).__name__ == "_Feature" and type(value).__module__ == "__future__":
                flags |= value.compiler_flag
        if flags == self.compile_flags and "compile" not in vars(module):
            module.compile = self.compile
            self.hooked.append(module)

    def compile(self, source: "Any", filename: "Any", mode: str, flags: int = 0,
                dont_inherit: bool = False, optimize: int = -1) -> "Any":
        """builtins.compile as called from a hooked module (inheriting its __future__
        flags), taking the code of a script seen at build time from the bundle."""
        if (mode == "exec" and not flags and not dont_inherit and optimize == -1
                and type(source) is str and type(filename) is str):
            key, seed = _unseeded(source)
            entry = self.compiled.get((key, filename)) if key is not None else None
            code = self._load(*entry) if entry is not None else None
            if code is not None and seed is not None:
                code = _reseed(code, seed)
            if code is not None:
                self.scripts_served += 1
                return code
        inherited = 0 if dont_inherit else self.compile_flags
        return _compile(source, filename, mode, flags | inherited, True, optimize)

    def invalidate_caches(self) -> None:
        self.fresh.clear()
        self.stamps.clear()

    def close(self) -> None:
        for module in self.hooked:  # back to the built-in
            if vars(module).get("compile") == self.compile:
                del module.compile
        self.hooked = []
        self.index = {}
        self.compiled = {}
        self.sections = []
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


_finder: Finder | None = None


def _unseeded(source: str) -> "tuple[str | None, int | None]":
    """`source` with its __hash__ constant (the int on the line after each SEED_AT, all
    the same) written as SEED, and the constant; (None, None) if it is not that shape."""
    parts = source.split(SEED_AT)
    if len(parts) == 1:
        return source, None
    seed = None
    out = [parts[0]]
    for part in parts[1:]:
        line, nl, rest = part.partition("\n")
        text = line.strip()
        try:
            value = int(text[:-1]) if text.endswith(",") else None
        except ValueError:
            value = None
        if value is None or (seed is not None and value != seed):
            return None, None
        seed = value
        out.append(f"{line[:len(line) - len(line.lstrip())]}{SEED},{nl}{rest}")
    return SEED_AT.join(out), seed


def _reseed(code: "Any", seed: int) -> "Any":
    """`code` (compiled with SEED) as compiled with `seed` instead; None where that is
    not certain (`seed` equal to another constant, which the compiler would share)."""
    consts = list(code.co_consts)
    changed = False
    for i, c in enumerate(consts):
        if type(c) is int and c == SEED:
            if seed in code.co_consts:
                return None
            consts[i] = seed
            changed = True
        elif type(c) is CodeType:
            new = _reseed(c, seed)
            if new is None:
                return None
            if new is not c:
                consts[i] = new
                changed = True
    return code.replace(co_consts=tuple(consts)) if changed else code


def _read(fd: int, size: int, at: int) -> bytes:
    """`size` bytes at `at`: one read, unless it comes short."""
    data = os.pread(fd, size, at)
    while len(data) < size:
        more = os.pread(fd, size - len(data), at + len(data))
        if not more:
            raise ValueError("the bundle is shorter than its index says")
        data += more
    return data


def load(file: str) -> Finder | None:
    """The finder of the bundle `file` (its index and first section read); None if it
    is missing or not one for this interpreter."""
    try:
        fd = os.open(file, os.O_RDONLY)  # kept (close-on-exec) for the later sections
    except OSError:
        return None
    head = header()
    try:
        lead = os.pread(fd, len(head) + 8, 0)
        if len(lead) != len(head) + 8 or not lead.startswith(head):
            raise ValueError("not a bundle of this interpreter")
        meta_len = int.from_bytes(lead[len(head):len(head) + 4], "little")
        first_len = int.from_bytes(lead[len(head) + 4:], "little")
        view = memoryview(_read(fd, meta_len + first_len, len(lead)))
        meta = marshal.loads(view[:meta_len])
    except (OSError, EOFError, ValueError, TypeError):
        os.close(fd)
        return None
    return Finder(fd, meta, view[meta_len:], len(lead) + meta_len)


def install() -> Finder | None:
    """Put the bundle's finder first on sys.meta_path (once); None without a usable
    bundle, under -O, or with DIRECTOR_BUNDLE=0 in the environment (DIRECTOR_BUNDLE=/a/path:
    that bundle instead, for tests)."""
    global _finder
    chosen = os.environ.get("DIRECTOR_BUNDLE", "")
    if _finder is None and not sys.flags.optimize and chosen != "0":
        _finder = load(chosen if chosen.startswith("/") else path())
        if _finder is not None:  # where the path finder would look: after the built-in,
            # frozen and any other finders (they win over files, and so over the bundle)
            at = next((i for i, f in enumerate(sys.meta_path)
                       if getattr(f, "__name__", "") == "PathFinder"), len(sys.meta_path))
            sys.meta_path.insert(at, _finder)
    return _finder


def drop() -> int:
    """Forget the bundle (start-up is over): later imports are normal ones. Returns
    the number of modules it served."""
    global _finder
    finder, _finder = _finder, None
    if finder is None:
        return 0
    if finder in sys.meta_path:
        sys.meta_path.remove(finder)
    finder.close()
    return finder.served
