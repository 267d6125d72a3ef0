"""The package layering: conf <- daemonlib <- vrrp, checkers <- director.
Every import edge between the project's packages is read from the source with ast,
so a lazy import inside a function counts too."""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]

# what each package may import besides itself
ALLOWED = {
    "conf": set(),
    "daemonlib": {"conf"},
    "vrrp": {"conf", "daemonlib"},
    "checkers": {"conf", "daemonlib"},
    "director": {"conf", "daemonlib", "vrrp", "checkers"},
}


def edges() -> list[tuple[str, str, str]]:
    found = []
    for pkg in ALLOWED:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                elif isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in ALLOWED and top != pkg:
                        found.append((pkg, top, f"{path.relative_to(ROOT)}:{node.lineno}"))
    return found


def test_edges_are_seen() -> None:
    # the walk must see real edges, or the next test proves nothing
    seen = {(a, b) for a, b, _ in edges()}
    assert ("vrrp", "daemonlib") in seen and ("director", "checkers") in seen


def test_no_import_against_the_layers() -> None:
    bad = [f"{where}: {pkg} imports {top}" for pkg, top, where in edges()
           if top not in ALLOWED[pkg]]
    assert not bad, "\n".join(bad)
