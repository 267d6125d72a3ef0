"""Run by test_aot.py in a fresh interpreter without the start-up bundle: each module's
attrs classes as attrs makes them (the normal import) beside the same module rewritten
by director.aot_build, compared class by class and on sample instances (the model's from
real configs). Exits non-zero with what differs; prints a summary line.

argv: the configs, then `--`, then the modules.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import pickle
import sys
import types
from typing import Any

import attrs
from attrs.exceptions import FrozenInstanceError

from conf import aot
from conf.load import load
from director.aot_build import transform

problems: list[str] = []


def check(ok: bool, what: str) -> None:
    if not ok:
        problems.append(what)


def rewritten(name: str, normal: types.ModuleType) -> types.ModuleType:
    code = compile(transform(name), normal.__file__ or "", "exec", dont_inherit=True)
    mod = types.ModuleType(name)
    mod.__file__ = normal.__file__
    mod.__package__ = name.rpartition(".")[0]
    exec(code, mod.__dict__)  # noqa: S102 - the module's own rewritten source
    return mod


def attribute_view(a: Any) -> tuple[Any, ...]:
    """An attrs.Attribute with its default as its repr (the two worlds' default objects
    are equal in value, not identical: a Notify() of each)."""
    return tuple(repr(getattr(a, s)) if s == "default" else getattr(a, s)
                 for s in a.__slots__)


def signature_view(cls: type) -> list[tuple[Any, ...]]:
    return [(p.name, p.kind, repr(p.default), p.annotation)
            for p in inspect.signature(cls).parameters.values()] + [
        inspect.signature(cls).return_annotation]


def main(argv: list[str]) -> int:
    split = argv.index("--")
    configs, names = argv[:split], argv[split + 1:]
    normal = {n: importlib.import_module(n) for n in names}
    rewrite = {n: rewritten(n, m) for n, m in normal.items()}
    pairs: dict[type, type] = {}  # normal class -> rewritten class
    for n, mod in rewrite.items():
        for key, value in vars(mod).items():
            if isinstance(value, type) and "__aot__" in value.__dict__:
                pairs[getattr(normal[n], key)] = value
    check(len(pairs) > 40, f"only {len(pairs)} classes rewritten")
    for n, mod in normal.items():  # every attrs class of the modules is rewritten
        for key, value in vars(mod).items():
            if (isinstance(value, type) and value.__module__ == n and attrs.has(value)
                    and value not in pairs):
                problems.append(f"{n}.{key} is not rewritten")

    def convert(v: Any) -> Any:
        cls = type(v)
        if cls in pairs:
            return pairs[cls](**{f.alias: convert(getattr(v, f.name))
                                 for f in attrs.fields(cls)})
        if cls is tuple:
            return tuple(convert(x) for x in v)
        if cls is list:
            return [convert(x) for x in v]
        return v

    # samples: the model's objects from real configs, the others made from their fields
    samples: dict[type, list[Any]] = {cls: [] for cls in pairs}

    def collect(v: Any) -> None:
        if type(v) in samples:
            if len(samples[type(v)]) < 40:
                samples[type(v)].append(v)
            for f in attrs.fields(type(v)):
                collect(getattr(v, f.name))
        elif isinstance(v, tuple | list):
            for x in v:
                collect(x)

    for path in configs:
        loaded = load(path)
        if loaded.config is not None:
            collect(loaded.config)
            collect(loaded)
    by_type = {"int": 3, "str": "s", "bool": True, "float": 2.5}
    for cls, found in samples.items():
        if len(found) < 2:  # made: each field its type's sample, then one changed
            kw = {f.alias: by_type.get(str(f.type).split(" |")[0], None)
                  for f in attrs.fields(cls)}
            found.append(cls(**kw))
            first = attrs.fields(cls)[0]
            found.append(cls(**{**kw, first.alias: by_type.get(
                str(first.type).split(" |")[0], 0) * 2 if kw[first.alias] else 1}))
            found.append(cls(**{**kw, first.alias: kw[first.alias]}))  # equal to [0]

    objects = 0
    for ncls, acls in pairs.items():
        name = ncls.__qualname__
        check(signature_view(ncls) == signature_view(acls), f"{name}: __init__ signature "
              f"{inspect.signature(ncls)} != {inspect.signature(acls)}")
        check(ncls.__slots__ == acls.__slots__, f"{name}: __slots__")
        check(getattr(ncls, "__match_args__", None) == getattr(acls, "__match_args__", None),
              f"{name}: __match_args__")
        check((ncls.__hash__ is None) == (acls.__hash__ is None), f"{name}: hashability")
        check(ncls.__annotations__ == acls.__annotations__, f"{name}: __annotations__")
        check(ncls.__doc__ == acls.__doc__, f"{name}: __doc__")
        check(attrs.has(acls), f"{name}: attrs.has")
        nf, af = attrs.fields(ncls), attrs.fields(acls)
        check([attribute_view(a) for a in nf] == [attribute_view(a) for a in af],
              f"{name}: attrs.fields {nf} != {af}")
        check(attrs.inspect(ncls) == attrs.inspect(acls), f"{name}: attrs.inspect")
        check(set(ncls.__dict__) == set(acls.__dict__) - {"__aot__"},
              f"{name}: class dict {sorted(set(ncls.__dict__) ^ set(acls.__dict__))}")
        view = [(f.name, f.alias, repr(f.default), f.init, f.type) for f in aot.fields(ncls)]
        check(view == [(f.name, f.alias, repr(f.default), f.init, f.type)
                       for f in aot.fields(acls)], f"{name}: conf.aot.fields")
        ns = samples[ncls]
        check(len(ns) >= 2, f"{name}: no samples")
        as_ = [convert(x) for x in ns]
        for i, (n, a) in enumerate(zip(ns, as_, strict=True)):
            objects += 1
            check(type(a) is acls, f"{name}: converted to {type(a)}")
            check(repr(n) == repr(a), f"{name}: repr {n!r} != {a!r}")
            check(attrs.asdict(n) == attrs.asdict(a), f"{name}: asdict")
            check(attrs.astuple(n) == attrs.astuple(a), f"{name}: astuple")
            for j, (n2, a2) in enumerate(zip(ns, as_, strict=True)):
                check((n == n2) == (a == a2) and (n != n2) == (a != a2),
                      f"{name}: eq of samples {i}, {j}")
                if a == a2 and acls.__hash__ is not None:
                    check(hash(a) == hash(a2), f"{name}: equal objects, other hashes")
                if hasattr(ncls, "__lt__") and "__lt__" in ncls.__dict__:
                    check((n < n2, n <= n2, n > n2, n >= n2)
                          == (a < a2, a <= a2, a > a2, a >= a2), f"{name}: order {i}, {j}")
            check(a != n and n != a, f"{name}: a rewritten object equals attrs' own")
            for f in attrs.fields(ncls):  # evolve, both ways, each field
                other = ns[(i + 1) % len(ns)]
                value = getattr(other, f.name)
                check(repr(attrs.evolve(n, **{f.alias: value}))
                      == repr(attrs.evolve(a, **{f.alias: convert(value)}))
                      == repr(aot.evolve(a, **{f.alias: convert(value)})),
                      f"{name}: evolve {f.name}")
            ways = (lambda o: pickle.loads(pickle.dumps(o)), copy.copy, copy.deepcopy)
            # (as attrs' own: a field compared by identity makes a copy unequal)
            want = [(w(n) == n, repr(w(n)) == repr(n)) for w in ways]
            sys.modules.update(rewrite)  # pickle finds the classes by module and name
            try:
                for w, (eq, same_repr) in zip(ways, want, strict=True):
                    made = w(a)
                    check(type(made) is acls and (made == a) == eq
                          and (repr(made) == repr(a)) == same_repr, f"{name}: pickle/copy")
            finally:
                sys.modules.update(normal)
            field = attrs.fields(ncls)[0].name
            got = []
            for obj in (copy.copy(n), copy.copy(a)):  # (a mutable one may be changed)
                for change in (lambda o, f=field: setattr(o, f, getattr(o, f)),
                               lambda o, f=field: delattr(o, f)):
                    try:
                        change(obj)
                        got.append(None)
                    except FrozenInstanceError as e:
                        got.append((type(e), str(e), e.args))
            check(got[:2] == got[2:], f"{name}: frozen errors {got}")
            check(("__setattr__" in ncls.__dict__) == (got[0] is not None),
                  f"{name}: frozen or not")
    # attrs' `...` for an object inside its own repr (a mutable class can hold itself)
    for ncls in pairs:
        if "__setattr__" not in ncls.__dict__ and ncls.__hash__ is None:
            n, a = samples[ncls][0], convert(samples[ncls][0])
            f = attrs.fields(ncls)[0].name
            setattr(n, f, n)
            setattr(a, f, a)
            check(repr(n) == repr(a) and "..." in repr(a), f"{ncls.__name__}: cycle repr")
    for p in problems:
        print(p, file=sys.stderr)
    print(f"{len(pairs)} classes, {objects} objects compared, {len(problems)} differences")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
