"""Write the `director` command without `site`: `python -m director.launcher` (make venv).

pip's console script runs the interpreter with `site`, which reads every .pth file of
site-packages, runs their `import` lines (setuptools' distutils shim) and Debian's
sitecustomize: a fifth of a second of the start-up floor in the emulated VM. The script
written here starts the interpreter with -S and puts on sys.path what `site` would for
this venv: its site-packages, then the directories named by the path lines of its .pth
files (the editable install's project directory), in site's order. Those are recorded
when the script is written; if site-packages changed since (its modification time: pip
installed or removed something), the .pth files are read again at each start, path
lines only, so a later pip install is still seen. The -S and the paths survive the
watchdog's re-execution (it runs sys.orig_argv again: the same shebang arguments).
A `pip install` rewrites the script as pip's own, which works (with `site`);
`make venv` writes this one again.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# the .pth reading, in the launcher and here (pth_paths)
PTH = '''def _pth(site):
    out = []
    try:
        names = sorted(n for n in os.listdir(site) if n.endswith(".pth"))
    except OSError:
        return out
    for name in names:
        try:
            with open(os.path.join(site, name), encoding="utf-8") as f:
                lines = f.read().splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        for line in lines:
            if not line.strip() or line.startswith(("#", "import ", "import\\t")):
                continue
            d = os.path.join(site, line.rstrip())
            if os.path.isdir(d) and d not in out:
                out.append(d)
    return out
'''

TEMPLATE = '''#!{python} -S
# Written by `python -m director.launcher` (director/launcher.py says why): the venv's
# paths without `site`. Safe to replace with pip's console script (`pip install`).
import os
import sys


{pth}

def _paths(site, mtime, recorded):
    try:
        fresh = os.stat(site).st_mtime_ns == mtime
    except OSError:
        fresh = False
    for d in [site, *(recorded if fresh else _pth(site))]:
        if d not in sys.path:
            sys.path.append(d)


_paths({site!r}, {mtime!r}, {recorded!r})
del _paths, _pth
from director.cli import run  # noqa: E402

run()
'''


def pth_paths(site: str) -> list[str]:
    """The directories the path lines of `site`'s .pth files add, as site.addpackage
    reads them (sorted file names; `import` lines and comments skipped; existing
    directories only, once each)."""
    namespace: dict[str, Any] = {"os": os}
    exec(PTH, namespace)
    return list(namespace["_pth"](site))


def script(python: str, site: str) -> str:
    """The launcher's text for interpreter `python` and site-packages `site`."""
    return TEMPLATE.format(python=python, site=site, mtime=os.stat(site).st_mtime_ns,
                           recorded=pth_paths(site), pth=PTH.rstrip())


def site_packages() -> str:
    import sysconfig

    return sysconfig.get_paths()["purelib"]


def write(target: str, python: str, site: str) -> bool:
    """Write the launcher at `target` unless it is there already (a rewrite would
    change its directory's modification time, which the start-up bundle records)."""
    text = script(python, site)
    try:
        with open(target) as f:
            if f.read() == text:
                return False
    except (OSError, UnicodeDecodeError):
        pass
    tmp = f"{target}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o755)
    os.replace(tmp, target)
    return True


def main(argv: list[str] | None = None) -> int:
    import argparse

    bindir = os.path.dirname(sys.executable)
    p = argparse.ArgumentParser(prog="python -m director.launcher",
                                description="write the `director` command without site")
    p.add_argument("--output", default=os.path.join(bindir, "director"),
                   help="default: %(default)s")
    a = p.parse_args(argv)
    # sys.executable, not its resolved path: the venv is found from the link's place
    if write(a.output, sys.executable, site_packages()):
        print(f"{a.output}: written (python -S, the venv's paths)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
