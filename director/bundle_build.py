"""Write the start-up module bundle (see director/bundle.py): `python -m director.bundle_build`.

Run at install time (`make venv`, and by make again when a source changes). A fresh
interpreter imports what a daemon's start imports (both sides, the checkers, BGP, the
status server) and every pure-Python module it loaded goes into the bundle, compiled
from its source, with what the runtime checks: the modification times of the
directories searched and holding it, and for the project's own modules the size and
modification time of the source. These are taken before the sources are read, so an
edit meanwhile makes the entry unusable, never stale.
"""

from __future__ import annotations

import argparse
import importlib.util
import marshal
import os
import subprocess
import sys
import tempfile
from typing import Any

from . import bundle

# What the daemons import on their way up, and the few modules they import inside
# functions, in sections read separately (see Finder): the watchdog parent and the
# checker child's way to its first IPVS operation first; then the checkers; the VRRP
# child; BGP; the status server. A module goes in the first section that imports it.
SECTIONS = (
    ("director.cli", "conf.load", "director.watchdog", "asyncio", "director.lvs_main",
     "director.dataplane", "director.ipvs_fast", "director.first_ipvs", "director.prefork",
     "daemonlib.sched", "daemonlib.runtime",
     "json", "socket", "ctypes", "logging.handlers"),
    ("director.health", "director.ctl_lvs", "daemonlib.control", "checkers.engine",
     "conf.dump"),
    ("vrrp.main", "daemonlib.loop", "director.ipvs_netlink"),
    ("director.bgp.speaker", "director.bgp.link", "director.bgp.core"),
    ("director.metrics",),
)

# Run in a clean interpreter: records what attrs compiles, imports each section's
# entries, and writes (marshal, to argv[1]) its sys.path (less its own directory), per
# section the modules loaded from source that are new, and the scripts attrs compiled.
_PROBE = """
import importlib, importlib.machinery, marshal, sys
sys.path[:] = [p for p in sys.path if p and p != '.']
seen = set(sys.modules)
scripts = []
try:
    import attr._make as hooked
except ImportError:
    hooked = None
else:
    flags = 0
    for value in vars(hooked).values():
        if type(value).__name__ == '_Feature' and type(value).__module__ == '__future__':
            flags |= value.compiler_flag
    real = compile

    def record(source, filename, mode, *args, **kw):
        if mode == 'exec' and not args and not kw and type(source) is str:
            scripts.append((source, filename))
            return real(source, filename, mode, flags, True)
        return real(source, filename, mode, *args, **kw)

    hooked.compile = record
sections = []
for entries in sys.argv[2:]:
    for name in entries.split(','):
        try:  # a missing optional piece leaves its modules to the normal import
            importlib.import_module(name)
        except ImportError as e:
            print(f'bundle: {name} not bundled: {e}', file=sys.stderr)
    found = []
    for name, mod in sorted(sys.modules.items()):
        spec = getattr(mod, '__spec__', None)
        if name in seen or spec is None or not spec.has_location:
            continue
        seen.add(name)
        if (isinstance(spec.loader, importlib.machinery.SourceFileLoader)
                and spec.origin.endswith('.py')):
            locs = spec.submodule_search_locations
            found.append((name, spec.origin, '' if locs is None else locs[0]))
    sections.append(found)
with open(sys.argv[1], 'wb') as f:
    marshal.dump({'path': sys.path, 'sections': sections, 'scripts': scripts,
                  'flags': flags if hooked else 0}, f)
"""


def _mtime(d: str) -> int:
    try:
        return os.stat(d).st_mtime_ns
    except OSError:
        return -1


def pycache_dirs(root: str = os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                 own: tuple[str, ...] = bundle.PROJECT) -> None:
    """Give every package of `own` its __pycache__ before the directories' modification
    times are recorded. Python creating one later (the first normal import of a module
    there, `compileall`) changes its package's directory, which leaves all of that
    package to normal imports from then on: a fresh clone's `make bench` compiled after
    the bundle was built, and its VM start-up rows ran with attrs imported (the 1 x 1
    start 1.73 s against 1.17 s)."""
    for top in own:
        for d, subdirs, files in os.walk(os.path.join(root, top)):
            subdirs[:] = [s for s in subdirs if s != "__pycache__"]
            if "__init__.py" in files:
                os.makedirs(os.path.join(d, "__pycache__"), exist_ok=True)


def probe(sections: tuple[tuple[str, ...], ...] = SECTIONS) -> dict[str, Any]:
    """What a fresh interpreter loads: "path", its sys.path (less its script's
    directory); "sections", for each section the name, file and package directory (or
    '') of each module it loads from source; "scripts", the (source, file name) attrs
    compiled, with the __future__ "flags" of attrs's module."""
    env = {**os.environ, "DIRECTOR_BUNDLE": "0"}
    with tempfile.NamedTemporaryFile() as out:
        subprocess.run([sys.executable, "-c", _PROBE, out.name,
                        *(",".join(s) for s in sections)], env=env, check=True)
        found: dict[str, Any] = marshal.load(out)
    return found


def ahead_of_time(sections: list[list[tuple[str, str, str]]],
                  own: tuple[str, ...] = bundle.PROJECT) -> dict[str, tuple[Any, ...]]:
    """director.aot_build's rewrite of each module of `own` in `sections` that defines
    attrs classes, made in a fresh interpreter: name -> ((size, mtime_ns) of the source
    it was made from, marshalled code or None, why not, the (path, (size, mtime_ns)) of
    what else the code depends on)."""
    names = []
    for mods in sections:
        for name, file, _ in mods:
            if name.partition(".")[0] in own:
                with open(file, encoding="utf-8") as f:
                    if "\n@attrs." in f.read():
                        names.append(name)
    if not names:
        return {}
    env = {**os.environ, "DIRECTOR_BUNDLE": "0"}
    with tempfile.NamedTemporaryFile() as out:
        subprocess.run([sys.executable, "-m", "director.aot_build", out.name, *names],
                       env=env, check=True)
        found: dict[str, tuple[Any, ...]] = marshal.load(out)
    return found


def build(target: str, search_path: list[str], sections: list[list[tuple[str, str, str]]],
          own: tuple[str, ...] = bundle.PROJECT, scripts: list[tuple[str, str]] | None = None,
          flags: int = 0, aot: dict[str, tuple[Any, ...]] | None = None) -> dict[str, int]:
    """Write the bundle of `sections` (lists of (name, file, package dir or '')) for an
    interpreter whose sys.path is `search_path`; the sources of the packages `own` are
    checked file by file; `scripts` (source, file name) compiled with `flags` go in a
    last section of their own, read only if attrs compiles; `aot` (ahead_of_time's)
    gives the code of the modules it rewrote, used when their source is still the one
    it read (and while what it depends on, the runtime and attrs, is unchanged).
    Returns counts for the log."""
    dirs: dict[str, int] = {}
    located = []
    for n, mods in enumerate(sections):
        for name, file, pkg_dir in mods:
            is_pkg = bool(pkg_dir)
            home = pkg_dir or os.path.dirname(file)
            parent, _, last = name.rpartition(".")
            if parent:
                search = os.path.dirname(home) if is_pkg else home
            else:
                want = os.path.join(last, "__init__.py") if is_pkg else last + ".py"
                search = next((p for p in search_path if os.path.join(p, want) == file), "")
                if not search:
                    continue  # found another way (a path hook): left to the normal import
            src = None
            if name.partition(".")[0] in own:
                st = os.stat(file)
                src = (st.st_size, st.st_mtime_ns)
            located.append((n, name, file, is_pkg, search, not parent, home, src))
            for d in (search, home):
                dirs.setdefault(d, _mtime(d))
    for p in search_path:  # the entries before a module's own, which could shadow it
        dirs.setdefault(p, _mtime(p))
    index: dict[str, tuple[object, ...]] = {}
    blobs: list[list[bytes]] = [[] for _ in range(len(sections) + 1)]
    sizes = [0] * (len(sections) + 1)
    rewritten = 0
    for n, name, file, is_pkg, search, top, home, src in located:
        made = (aot or {}).get(name)
        deps: tuple[Any, ...] = ()
        if made is not None and made[1] is not None and src is not None and made[0] == src:
            data = made[1]  # its source is the one rewritten (src was taken before that)
            deps = made[3]
            rewritten += 1
        else:
            with open(file, "rb") as f:
                code = compile(importlib.util.decode_source(f.read()), file, "exec",
                               dont_inherit=True, optimize=0)
            data = marshal.dumps(code)
        index[name] = (file, is_pkg, search, top, home, src, n, sizes[n], len(data),
                       *((deps,) if deps else ()))
        blobs[n].append(data)
        sizes[n] += len(data)
    compiled: dict[tuple[str, str], tuple[int, int, int]] = {}
    own_section = len(sections)
    for script, filename in scripts or ():
        source, _ = bundle._unseeded(script)  # as the runtime looks it up
        if source is not None and (source, filename) not in compiled:
            data = marshal.dumps(compile(source, filename, "exec", flags, True))
            compiled[source, filename] = (own_section, sizes[own_section], len(data))
            blobs[own_section].append(data)
            sizes[own_section] += len(data)

    places, at = [], 0  # from the end of the index, where the first section starts
    for size in sizes:
        places.append((at, size))
        at += size
    head = marshal.dumps({"modules": index, "dirs": dirs, "sections": places,
                          "compiled": compiled, "compile_flags": flags})
    tmp = f"{target}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(bundle.header() + len(head).to_bytes(4, "little")
                + sizes[0].to_bytes(4, "little") + head)
        for part in blobs:
            f.write(b"".join(part))
    os.replace(tmp, target)
    return {"modules": len(index), "bytes": os.path.getsize(target), "dirs": len(dirs),
            "first": sizes[0], "scripts": len(compiled), "aot": rewritten}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m director.bundle_build",
                                description="write director's start-up module bundle")
    p.add_argument("--output", default=bundle.path(), help="default: %(default)s")
    p.add_argument("--script-dir", default=os.path.dirname(sys.executable),
                   help="the directory of the `director` console script, first on its "
                   "sys.path (default: %(default)s)")
    a = p.parse_args(argv)
    # made first: creating it changes its parent's modification time, which is recorded
    os.makedirs(os.path.dirname(a.output), exist_ok=True)
    pycache_dirs()
    found = probe()
    aot = ahead_of_time(found["sections"])
    counts = build(a.output, [a.script_dir, *found["path"]], found["sections"],
                   scripts=found["scripts"], flags=found["flags"], aot=aot)
    print(f"{a.output}: {counts['modules']} modules ({counts['aot']} with their attrs "
          f"classes written ahead of time), {counts['scripts']} attrs scripts, "
          f"{counts['bytes'] // 1024} KiB "
          f"({counts['first'] // 1024} KiB read at start), {counts['dirs']} directories "
          "checked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
