"""Ahead-of-time attrs classes (director/aot_build.py, conf/aot.py): the start-up bundle
serves the modules on the way to the first IPVS operation with their attrs classes
written out, so a start imports no attrs; those classes behave as attrs' own, and an
edited module falls back to the normal import."""

from __future__ import annotations

import glob
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from director.bundle_build import ahead_of_time, build, probe

ROOT = Path(__file__).resolve().parents[2]
# the modules a `director -C` start imports before its first IPVS operation that define
# attrs classes (every one of them must be written ahead of time)
START_PATH = ("conf.model", "conf.load", "daemonlib.scripts", "daemonlib.ipvs_syncd",
              "daemonlib.smtp", "director.ipvs_table", "director.overrides", "director.pool")
CONFIGS = sorted(glob.glob(str(ROOT / "conf" / "examples" / "*.conf"))
                 + glob.glob(str(ROOT / "tests" / "fixtures" / "**" / "*.conf"), recursive=True))
ONE = """global_defs {
    router_id AOT
}
virtual_server 198.51.100.1 8000 {
    lb_algo wrr
    lb_kind NAT
    protocol TCP
    real_server 203.0.0.1 80 {
        weight 1
    }
}
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, tuple[object, ...]]]:
    """A bundle as `make bundle` writes it (in a temporary place): its path, and what
    the rewrite made of each module."""
    target = str(tmp_path_factory.mktemp("aot") / "startup.bundle")
    found = probe()
    made = ahead_of_time(found["sections"])
    counts = build(target, [os.path.dirname(sys.executable), *found["path"]],
                   found["sections"], scripts=found["scripts"], flags=found["flags"],
                   aot=made)
    assert counts["aot"] >= len(START_PATH)
    return target, made


def test_every_attrs_module_on_the_start_path_is_written_ahead_of_time(
        built: tuple[str, dict[str, tuple[object, ...]]]) -> None:
    _, made = built
    missing = {n: made.get(n, (None, None, "not a candidate"))[2] for n in START_PATH
               if n not in made or made[n][1] is None}
    assert not missing


def test_the_rewritten_classes_behave_as_attrs_own() -> None:
    """Every class of those modules: __init__'s signature, slots, attrs.fields/has/
    inspect/evolve/asdict, and on the model's objects from every example and fixture
    config (and made ones for the others): repr, eq/ne, hash, order, pickle, copy, the
    frozen errors, `...` in a cyclic repr (tests/unit/aot_equivalence.py)."""
    env = {**os.environ, "DIRECTOR_BUNDLE": "0"}
    out = subprocess.run([sys.executable, str(ROOT / "tests" / "unit" / "aot_equivalence.py"),
                          *CONFIGS, "--", *START_PATH], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-4000:]
    classes = int(out.stdout.split()[0])
    assert classes > 40, out.stdout


# parses each config, prints its dump; says whether the model's classes were the
# ahead-of-time ones and whether attrs was imported before the dump (which uses it)
DUMP = """
import sys
from conf.load import load
from conf import model
aot = '__aot__' in vars(model.Config)
done = [(path, load(path)) for path in sys.argv[1:]]
before = 'attr' in sys.modules or 'attrs' in sys.modules
from conf import dump
for path, loaded in done:
    print(path, loaded.ok, dump.to_json(loaded.config) if loaded.config else None,
          [(d.severity, str(d.pos), d.message) for d in loaded.diags.items])
print('AOT', aot, 'ATTRS-BEFORE-DUMP', before)
"""


def test_a_model_parsed_with_and_without_them_is_the_same(
        built: tuple[str, dict[str, tuple[object, ...]]]) -> None:
    target, _ = built
    outs = []
    for chosen in (target, "0"):
        env = {**os.environ, "DIRECTOR_BUNDLE": chosen}
        # `import director` first: it installs the bundle, as the console script does
        outs.append(subprocess.run(
            [sys.executable, "-c", "import director\n" + DUMP, *CONFIGS],
            capture_output=True, text=True, env=env, cwd=ROOT, check=True,
            timeout=300).stdout.splitlines())
    with_aot, without = outs
    assert with_aot[-1] == "AOT True ATTRS-BEFORE-DUMP False"
    assert without[-1] == "AOT False ATTRS-BEFORE-DUMP True"
    assert len(with_aot) > 2 * len(CONFIGS)
    assert with_aot[:-1] == without[:-1]


def test_an_edited_module_falls_back_to_the_normal_import(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lib = tmp_path / "lib"
    pkg = lib / "aotpkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    mod = pkg / "m.py"
    mod.write_text("from __future__ import annotations\n\nimport attrs\n\nVALUE = 1\n\n\n"
                   "@attrs.frozen(kw_only=True)\nclass P:\n    x: int\n    y: str = 'a'\n")
    mods = [("aotpkg", str(pkg / "__init__.py"), str(pkg)), ("aotpkg.m", str(mod), "")]
    monkeypatch.setenv("PYTHONPATH", f"{lib}:{ROOT}")
    made = ahead_of_time([mods], own=("aotpkg",))
    assert made["aotpkg.m"][1] is not None, made
    target = tmp_path / "b.bundle"
    build(str(target), [str(lib)], [mods], own=("aotpkg",), aot=made)
    check = ("import sys; sys.path[:0] = [sys.argv[2]]\nfrom director import bundle\n"
             "f = bundle.load(sys.argv[1]); sys.meta_path.insert(0, f)\n"
             "import aotpkg.m as m\n"
             "print(m.VALUE, '__aot__' in vars(m.P), repr(m.P(x=1)))")
    env = {**os.environ, "DIRECTOR_BUNDLE": "0", "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONPATH": str(ROOT)}

    def run() -> str:
        return subprocess.run([sys.executable, "-c", check, str(target), str(lib)],
                              capture_output=True, text=True, env=env, check=True,
                              timeout=60).stdout.strip()

    assert run() == "1 True P(x=1, y='a')"
    # what the code depends on besides its source (conf/aot.py, attrs), changed: the
    # same (here a stand-in file of ours, as the real ones are shared with other runs)
    deps = made["aotpkg.m"][3]
    assert {d for d, _ in deps} >= {str(ROOT / "conf" / "aot.py")}, deps
    runtime = tmp_path / "runtime.py"
    runtime.write_text("x = 1\n")
    st = runtime.stat()
    made["aotpkg.m"] = (*made["aotpkg.m"][:3], ((str(runtime), (st.st_size, st.st_mtime_ns)),))
    build(str(target), [str(lib)], [mods], own=("aotpkg",), aot=made)
    assert run() == "1 True P(x=1, y='a')"
    os.utime(runtime, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert run() == "1 False P(x=1, y='a')"
    build(str(target), [str(lib)], [mods], own=("aotpkg",), aot=made)  # stale stamp again
    runtime.write_text("x = 1\n")
    os.utime(runtime, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert run() == "1 True P(x=1, y='a')"
    mod.write_text(mod.read_text().replace("VALUE = 1", "VALUE = 2"))  # same size
    os.utime(mod, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert run() == "2 False P(x=1, y='a')"


def test_a_start_imports_no_attrs_before_its_first_ipvs_operation(
        built: tuple[str, dict[str, tuple[object, ...]]], tmp_path: Path) -> None:
    """`director -C -n --dry-run` with the bundle: -X importtime lists each import as it
    completes, on the same stderr as the log; none of attrs before the log line of the
    first operation (conf.model must be among them: the listing is seen)."""
    target, _ = built
    conf = tmp_path / "one.conf"
    conf.write_text(ONE)
    director = os.path.join(os.path.dirname(sys.executable), "director")
    env = {**os.environ, "DIRECTOR_BUNDLE": target, "PYTHONPROFILEIMPORTTIME": "1"}
    proc = subprocess.Popen([director, "-C", "-n", "-l", "--dry-run", "--runtime-dir",
                             str(tmp_path / "run"), "-f", str(conf)],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env)
    assert proc.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    try:
        buf = b""
        while not any("IPVS dry-run: add" in line for line in lines):
            left = deadline - time.monotonic()
            assert left > 0, "no first IPVS operation logged within 60 s:\n" + \
                "\n".join(lines[-20:])
            ready, _, _ = select.select([proc.stderr], [], [], left)
            chunk = os.read(proc.stderr.fileno(), 65536) if ready else b""
            if ready and not chunk:
                pytest.fail("director exited before its first IPVS operation:\n"
                            + "\n".join(lines[-20:]))
            buf += chunk
            *done, buf = buf.split(b"\n")
            lines += [d.decode(errors="replace") for d in done]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    before = lines[:next(i for i, line in enumerate(lines) if "IPVS dry-run: add" in line)]
    imported = [line.rsplit("|", 1)[1].strip() for line in before
                if line.startswith("import time:") and "|" in line]
    assert "conf.model" in imported and "director.ipvs_table" in imported
    assert [m for m in imported if m.partition(".")[0] in ("attr", "attrs")] == []
