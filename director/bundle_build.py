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

from . import bundle

# What the daemons import on their way up, and the few modules they import inside
# functions, in sections read separately (see Finder): the watchdog parent and the
# checker child's way to its first IPVS operation first; then the checkers; the VRRP
# child; BGP; the status server. A module goes in the first section that imports it.
SECTIONS = (
    ("director.cli", "conf.load", "director.watchdog", "asyncio", "director.lvs_main",
     "director.dataplane", "director.ipvs_fast", "daemonlib.sched", "daemonlib.runtime",
     "json", "socket", "ctypes", "logging.handlers"),
    ("director.health", "director.ctl_lvs", "daemonlib.control", "checkers.engine",
     "conf.dump"),
    ("vrrp.main", "director.ipvs_netlink"),
    ("director.bgp.speaker", "director.bgp.link", "director.bgp.core"),
    ("director.metrics",),
)

# Run in a clean interpreter: imports each section's entries, prints its sys.path (less
# its own directory), then per section the modules loaded from source that are new.
_PROBE = """
import importlib, importlib.machinery, sys
sys.path[:] = [p for p in sys.path if p and p != '.']
print('\\t'.join(sys.path))
seen = set(sys.modules)
for entries in sys.argv[1:]:
    for name in entries.split(','):
        importlib.import_module(name)
    print('#')
    for name, mod in sorted(sys.modules.items()):
        spec = getattr(mod, '__spec__', None)
        if name in seen or spec is None or not spec.has_location:
            continue
        seen.add(name)
        if (isinstance(spec.loader, importlib.machinery.SourceFileLoader)
                and spec.origin.endswith('.py')):
            locs = spec.submodule_search_locations
            print(name, spec.origin, '' if locs is None else locs[0], sep='\\t')
"""


def _mtime(d: str) -> int:
    try:
        return os.stat(d).st_mtime_ns
    except OSError:
        return -1


def probe(sections: tuple[tuple[str, ...], ...] = SECTIONS
          ) -> tuple[list[str], list[list[tuple[str, str, str]]]]:
    """The sys.path of a fresh interpreter (less its script's directory), and for each
    section the name, file and package directory (or '') of each module it loads from
    source."""
    env = {**os.environ, "DIRECTOR_BUNDLE": "0"}
    out = subprocess.run([sys.executable, "-c", _PROBE, *(",".join(s) for s in sections)],
                         env=env, check=True, capture_output=True, text=True).stdout
    lines = out.splitlines()
    found: list[list[tuple[str, str, str]]] = []
    for line in lines[1:]:
        if line == "#":
            found.append([])
        else:
            found[-1].append(tuple(line.split("\t")))  # type: ignore[arg-type]
    return lines[0].split("\t"), found


def build(target: str, search_path: list[str], sections: list[list[tuple[str, str, str]]],
          own: tuple[str, ...] = bundle.PROJECT) -> dict[str, int]:
    """Write the bundle of `sections` (lists of (name, file, package dir or '')) for an
    interpreter whose sys.path is `search_path`; the sources of the packages `own` are
    checked file by file. Returns counts for the log."""
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
    blobs: list[list[bytes]] = [[] for _ in sections]
    sizes = [0] * len(sections)
    for n, name, file, is_pkg, search, top, home, src in located:
        with open(file, "rb") as f:
            code = compile(importlib.util.decode_source(f.read()), file, "exec",
                           dont_inherit=True, optimize=0)
        data = marshal.dumps(code)
        index[name] = (file, is_pkg, search, top, home, src, n, sizes[n], len(data))
        blobs[n].append(data)
        sizes[n] += len(data)

    places, at = [], 0  # from the end of the index, where the first section starts
    for size in sizes:
        places.append((at, size))
        at += size
    head = marshal.dumps({"modules": index, "dirs": dirs, "sections": places})
    tmp = f"{target}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(bundle.header() + len(head).to_bytes(4, "little")
                + sizes[0].to_bytes(4, "little") + head)
        for part in blobs:
            f.write(b"".join(part))
    os.replace(tmp, target)
    return {"modules": len(index), "bytes": os.path.getsize(target), "dirs": len(dirs),
            "first": sizes[0]}


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
    path, mods = probe()
    counts = build(a.output, [a.script_dir, *path], mods)
    print(f"{a.output}: {counts['modules']} modules, {counts['bytes'] // 1024} KiB "
          f"({counts['first'] // 1024} KiB read at start), {counts['dirs']} directories "
          "checked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
