"""The start-up module bundle serves a module only while it is provably what a normal
import would load: edited sources, shadowing files, other interpreters fall back."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from director import bundle
from director.bundle_build import build, pycache_dirs

# imports `names` with the bundle at argv[1] first on sys.meta_path (paths from argv[2]);
# prints, per module, its VALUE and whether the bundle served it
CHECK = """
import importlib, sys
sys.path[:0] = sys.argv[2].split(':')
from director import bundle
finder = bundle.load(sys.argv[1])
assert finder is not None, 'bundle not loaded'
sys.meta_path.insert(0, finder)
for name in sys.argv[3:]:
    mod = importlib.import_module(name)
    print(name, mod.VALUE, type(mod.__spec__.loader).__name__ == '_Loader')
print('served', finder.served)
"""


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def tree(tmp: Path) -> tuple[Path, Path]:
    first, lib = tmp / "first", tmp / "lib"
    write(lib / "plain.py", "VALUE = 'plain'\n")
    write(lib / "ownpkg" / "__init__.py", "VALUE = 'ownpkg'\n")
    write(lib / "ownpkg" / "mod.py", "VALUE = 'own1'\n")
    write(lib / "pkg" / "__init__.py", "VALUE = 'pkg'\n")
    write(lib / "pkg" / "sub.py", "VALUE = 'sub'\n")
    first.mkdir()
    return first, lib


def make(tmp: Path, first: Path, lib: Path) -> Path:
    target = tmp / "b.bundle"
    mods = [("plain", str(lib / "plain.py"), ""),
            ("ownpkg", str(lib / "ownpkg" / "__init__.py"), str(lib / "ownpkg")),
            ("ownpkg.mod", str(lib / "ownpkg" / "mod.py"), ""),
            ("pkg", str(lib / "pkg" / "__init__.py"), str(lib / "pkg")),
            ("pkg.sub", str(lib / "pkg" / "sub.py"), "")]
    # two sections: the second is read only when one of its modules is wanted
    build(str(target), [str(first), str(lib)], [mods[:3], mods[3:]], own=("ownpkg",))
    return target


def run(target: Path, first: Path, lib: Path, *names: str) -> dict[str, tuple[str, bool]]:
    env = {**os.environ, "DIRECTOR_BUNDLE": "0", "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run([sys.executable, "-c", CHECK, str(target), f"{first}:{lib}", *names],
                         capture_output=True, text=True, env=env, check=True, timeout=60)
    rows = [line.split() for line in out.stdout.splitlines()]
    return {r[0]: (r[1], r[2] == "True") for r in rows if r[0] != "served"}


ALL = ("plain", "ownpkg", "ownpkg.mod", "pkg", "pkg.sub")


def test_fresh_bundle_serves_every_module(tmp_path: Path) -> None:
    first, lib = tree(tmp_path)
    target = make(tmp_path, first, lib)
    got = run(target, first, lib, *ALL)
    assert got == {"plain": ("plain", True), "ownpkg": ("ownpkg", True),
                   "ownpkg.mod": ("own1", True), "pkg": ("pkg", True), "pkg.sub": ("sub", True)}


def test_own_source_edited_in_place_is_imported_from_source(tmp_path: Path) -> None:
    first, lib = tree(tmp_path)
    target = make(tmp_path, first, lib)
    mod = lib / "ownpkg" / "mod.py"
    before = os.stat(lib / "ownpkg").st_mtime_ns
    with open(mod, "r+") as f:  # same size, in place: the directory does not change
        f.write("VALUE = 'own2'\n")
    st = os.stat(mod)
    os.utime(mod, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert os.stat(lib / "ownpkg").st_mtime_ns == before
    got = run(target, first, lib, *ALL)
    assert got["ownpkg.mod"] == ("own2", False)
    assert got["ownpkg"] == ("ownpkg", True) and got["pkg.sub"] == ("sub", True)


def test_a_changed_directory_is_not_trusted(tmp_path: Path) -> None:
    """A file replaced (as dpkg and pip do: a new file renamed over) in a directory
    checked by its modification time."""
    first, lib = tree(tmp_path)
    target = make(tmp_path, first, lib)
    time.sleep(0.01)  # a distinct modification time even on coarse clocks
    write(lib / "pkg" / "sub.py.new", "VALUE = 'new'\n")
    os.replace(lib / "pkg" / "sub.py.new", lib / "pkg" / "sub.py")
    got = run(target, first, lib, *ALL)
    assert got["pkg.sub"] == ("new", False)
    assert got["pkg"] == ("pkg", False)  # its directory changed: not trusted either
    assert got["plain"] == ("plain", True)


def test_a_module_shadowing_it_earlier_on_the_path_wins(tmp_path: Path) -> None:
    first, lib = tree(tmp_path)
    target = make(tmp_path, first, lib)
    time.sleep(0.01)
    write(first / "plain.py", "VALUE = 'shadow'\n")
    got = run(target, first, lib, *ALL)
    assert got["plain"] == ("shadow", False)


def test_a_bundle_of_another_interpreter_is_ignored(tmp_path: Path) -> None:
    first, lib = tree(tmp_path)
    target = make(tmp_path, first, lib)
    data = bytearray(target.read_bytes())
    data[len(bundle.FORMAT)] ^= 0xFF  # the bytecode magic number
    target.write_bytes(bytes(data))
    assert bundle.load(str(target)) is None
    assert bundle.load(str(tmp_path / "absent")) is None


def test_the_installed_bundle_covers_a_start(tmp_path: Path) -> None:
    """The console script's way: the daemon's modules come from the bundle (when one
    was built, as make does), and -O or DIRECTOR_BUNDLE=0 turn it off."""
    if not os.path.exists(bundle.path()):
        import pytest

        pytest.skip(f"no bundle built at {bundle.path()} (make bundle)")
    code = ("import sys; sys.path[0] = sys.argv[1]; import director.cli, conf.load, "
            "director.watchdog, director.lvs_main; from director import bundle; "
            "f = bundle._finder; print(f.served if f else -1)")
    script_dir = os.path.dirname(sys.executable)
    env = {k: v for k, v in os.environ.items() if k != "DIRECTOR_BUNDLE"}
    served = [int(subprocess.run([sys.executable, *flags, "-c", code, script_dir], env={
        **env, **extra}, capture_output=True, text=True, check=True, timeout=60).stdout)
        for flags, extra in (([], {}), (["-O"], {}), ([], {"DIRECTOR_BUNDLE": "0"}))]
    assert served[0] > 100, "the bundle is stale: run make bundle" if served[0] >= 0 else ""
    assert served[1:] == [-1, -1]


# a module defining an attrs class; the subprocess hooks attrs's compile into the bundle
ATTRS = """
import sys
sys.path[:0] = [sys.argv[2]]
import attr._make
from director import bundle
finder = bundle.load(sys.argv[1])
finder.hook(attr._make)
import attrsmod
p = attrsmod.Point(1, 2)
# __hash__ starts from this process's constant (attrs's, not the build's)
seed = hash(attr._make._generate_unique_filename(attrsmod.Point, 'hash'))
assert seed in attrsmod.Point.__hash__.__code__.co_consts
assert hash(p) == hash(attrsmod.Point(1, 2)) != hash(attrsmod.Point(2, 1))
print(p == attrsmod.Point(1, 2), repr(p), finder.scripts_served)
finder.close()
print('compile' in vars(attr._make))
"""


def test_attrs_scripts_come_compiled_from_the_bundle(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    write(lib / "attrsmod.py", "import attrs\n\n@attrs.frozen\nclass Point:\n"
          "    x: int\n    y: int\n")
    record = ("import sys, attr._make as m\nsys.path[:0] = [sys.argv[1]]\nseen = []\n"
              "real = compile\n"
              "def rec(s, f, mode, *a):\n    seen.append((s, f))\n    return real(s, f, mode, *a)\n"
              "m.compile = rec\nimport attrsmod\nprint(repr(seen))\n")
    out = subprocess.run([sys.executable, "-c", record, str(lib)], capture_output=True,
                         text=True, check=True, timeout=60).stdout
    scripts = eval(out)  # noqa: S307 - our own repr of (str, str) pairs
    assert scripts, "attrs compiled nothing: the hook point moved"
    import __future__

    import attr._make

    flags = sum(v.compiler_flag for v in vars(attr._make).values()
                if isinstance(v, __future__._Feature))
    target = tmp_path / "b.bundle"
    build(str(target), [str(lib)], [[]], scripts=scripts, flags=flags)
    env = {**os.environ, "DIRECTOR_BUNDLE": "0"}
    got = subprocess.run([sys.executable, "-c", ATTRS, str(target), str(lib)], env=env,
                         capture_output=True, text=True, check=True, timeout=60).stdout
    first, second = got.splitlines()
    assert first == f"True Point(x=1, y=2) {len(scripts)}"
    assert second == "False"  # closed: attrs compiles with the built-in again


def test_compiling_after_the_build_leaves_the_packages_trusted(tmp_path: Path) -> None:
    """The build gives each package its __pycache__, so Python writing .pyc files later
    (compileall, a normal import) changes no package directory the bundle recorded."""
    for d in ("pkg", "pkg/sub"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "__init__.py").write_text("VALUE = 1\n")
    (tmp_path / "pkg" / "data").mkdir()  # not a package: nothing to compile there
    pycache_dirs(str(tmp_path), own=("pkg",))
    assert (tmp_path / "pkg" / "__pycache__").is_dir()
    assert (tmp_path / "pkg" / "sub" / "__pycache__").is_dir()
    assert not (tmp_path / "pkg" / "data" / "__pycache__").exists()
    before = {d: os.stat(tmp_path / d).st_mtime_ns for d in ("pkg", "pkg/sub")}
    time.sleep(0.01)  # a coarse file system clock would hide a change
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(tmp_path / "pkg")],
                   check=True)
    assert list((tmp_path / "pkg" / "sub" / "__pycache__").iterdir()), "nothing compiled"
    assert {d: os.stat(tmp_path / d).st_mtime_ns for d in before} == before
