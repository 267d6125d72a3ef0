"""conf.methodcache: a class built from the cache has the very methods attrs compiles."""

from __future__ import annotations

import subprocess
import sys

import attrs

from conf import methodcache


def _define(cache: methodcache.MethodCache) -> type:
    cache.start()
    try:
        @attrs.frozen(kw_only=True, weakref_slot=False)
        class Sample:
            name: str
            weight: int = 1
    finally:
        cache.stop()
    return Sample


def test_cached_methods_are_attrs_own(tmp_path, monkeypatch) -> None:
    compiled: list[tuple[str, str]] = []
    real = methodcache._real_compile

    def spy(source, filename, mode, *a, **kw):  # type: ignore[no-untyped-def]
        compiled.append((source, filename))
        return real(source, filename, mode, *a, **kw)

    monkeypatch.setattr(methodcache, "_real_compile", spy)
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    first = methodcache.MethodCache("sample")
    first.path = str(tmp_path / "sample.attrs")
    a = _define(first)
    assert compiled and (tmp_path / "sample.attrs").exists()
    # another process has another hash constant: stored as if another run wrote it
    again = methodcache.MethodCache("sample")
    again.path = first.path
    again.start()
    again.stop()
    (filename, (head, old, tail, code)), = again.old.items()
    assert old is not None and f"{head}{old}{tail}" == compiled[0][0]
    other = old + 12345
    again.old[filename] = (head, other, tail, methodcache._swap_consts(code, {old: other}))
    compiled.clear()
    reused = methodcache._reuse(again.old[filename], compiled_source := f"{head}{old}{tail}")
    assert reused is not None and reused == real(compiled_source, filename, "exec")
    b = _define(first)  # from the file: nothing compiled
    assert not compiled
    assert hash(a(name="x")) == hash(b(name="x"))
    assert repr(b(name="x")) == "Sample(name='x', weight=1)"
    assert b(name="x") == b(name="x", weight=1) and b(name="x") != b(name="y")


def test_not_written_where_byte_code_is_not(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    cache = methodcache.MethodCache("sample")
    cache.path = str(tmp_path / "sample.attrs")
    _define(cache)
    assert cache.new and not (tmp_path / "sample.attrs").exists()


def test_changed_source_is_compiled_again(tmp_path) -> None:
    cache = methodcache.MethodCache("sample")
    cache.path = str(tmp_path / "sample.attrs")
    _define(cache)
    (filename, entry), = cache.new.items()
    assert methodcache._reuse(entry, entry[0] + "1" + entry[2] + "\n# more") is None
    assert methodcache._reuse(entry, "def f(): pass") is None


def test_hash_matches_across_processes() -> None:
    """A model object's hash is the one attrs' own compile gives, whatever run wrote the
    cache (hash randomisation differs per process)."""
    code = ("import attrs, conf.model as m; "
            "r = m.RealServer(address='10.0.0.1', port=80); "
            "fresh = attrs.frozen(kw_only=True, weakref_slot=False)(type('RealServer', (), "
            "{'__annotations__': dict(m.RealServer.__annotations__), '__module__': "
            "'conf.model', '__qualname__': 'RealServer', **{f.name: f.default for f in "
            "attrs.fields(m.RealServer) if f.default is not attrs.NOTHING}})); "
            "print(hash(r) == hash(fresh(address='10.0.0.1', port=80)))")
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=60, env={"PYTHONHASHSEED": seed}, check=True)
        assert out.stdout.strip() == "True", out.stderr
