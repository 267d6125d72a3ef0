"""Ahead-of-time attrs classes: a module's source with each attrs class written out as
the plain slotted class attrs would make of it (see conf/aot.py for why).

`python -m director.aot_build OUT MODULE...` (run by director.bundle_build, in a fresh
interpreter without the bundle) imports each module normally, rewrites its source and
writes (marshal) per module: the (size, mtime_ns) of its source taken before it was
read; the code of the new source, or None and the reason it was left to the normal
import; and what else that code depends on, each (path, (size, mtime_ns)): conf/aot.py
(what it calls) and attrs' package directory (whose behaviour it copies; an upgrade
replaces files there).

What a class becomes, for the options the code uses (anything else leaves the module
alone, saying why; the test compares every class with attrs' own):
- `__slots__` as attrs makes them (`__weakref__` unless weakref_slot=False);
- `__init__` with the same parameters (kw_only or positional, the default expressions
  as written, evaluated once when the class is made, as attrs' are) and annotations;
  frozen classes store through object.__setattr__, as attrs does;
- attrs' `__repr__` (with its `...` for cycles), `__eq__`/`__ne__`, `__hash__` (frozen
  and eq; None for a mutable eq class), `__lt__`... for order=True, the frozen
  `__setattr__`/`__delattr__`, `__getstate__`/`__setstate__`, `__match_args__`;
- `__attrs_attrs__`: conf.aot.Fields, attrs' own Attributes made on first use;
- `__aot__`: the decorator, its options and each field's explicit `attrs.field`
  options, for that and for conf.aot.fields/evolve.
The class body's other statements (docstring, methods, properties) are kept as written,
at their own line numbers. `import attrs` becomes a conf.aot.LazyModule for functions
that still use it.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import marshal
import os
import sys
from typing import Any

import attrs

DECORATORS = ("frozen", "define", "mutable")
CLASS_OPTIONS = {"kw_only", "weakref_slot", "order"}
FIELD_OPTIONS = {"eq", "repr", "order", "hash", "alias"}
# what attrs puts in a class's dict that the rewrite writes too (or leaves to Python)
_KNOWN = {"__module__", "__doc__", "__qualname__", "__annotations__", "__weakref__",
          "__slots__", "__attrs_attrs__", "__attrs_props__", "__match_args__", "__init__",
          "__repr__", "__eq__", "__ne__", "__hash__", "__lt__", "__le__", "__gt__",
          "__ge__", "__setattr__", "__delattr__", "__getstate__", "__setstate__",
          "__attrs_own_setattr__"}
RUNTIME = "_aot_rt"
SETATTR = "_aot_osa"


class Unsupported(Exception):
    """The module uses something the rewrite does not write (said in the message)."""


def _decorator(node: ast.expr) -> tuple[str, dict[str, Any]] | None:
    """('frozen', {options}) for `@attrs.frozen` / `@attrs.frozen(kw_only=True)`; None
    for anything that is not attrs."""
    call = node if isinstance(node, ast.Call) else None
    target = call.func if call is not None else node
    if not (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
            and target.value.id in ("attrs", "attr")):
        return None
    if target.value.id != "attrs" or target.attr not in DECORATORS:
        raise Unsupported(f"line {node.lineno}: {ast.unparse(node)}")
    options: dict[str, Any] = {}
    if call is not None:
        if call.args:
            raise Unsupported(f"line {node.lineno}: positional decorator arguments")
        for kw in call.keywords:
            if kw.arg not in CLASS_OPTIONS:
                raise Unsupported(f"line {node.lineno}: class option {kw.arg}")
            try:
                options[kw.arg] = ast.literal_eval(kw.value)
            except ValueError:
                raise Unsupported(f"line {node.lineno}: {kw.arg} is not a literal") from None
    return target.attr, options


def _field_call(value: ast.expr | None) -> ast.Call | None:
    if (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
            and isinstance(value.func.value, ast.Name) and value.func.value.id == "attrs"):
        if value.func.attr != "field":
            raise Unsupported(f"line {value.lineno}: {ast.unparse(value.func)}")
        return value
    return None


def _class(node: ast.ClassDef, real: type, deco: str, options: dict[str, Any]) -> ast.ClassDef:
    where = f"class {node.name} (line {node.lineno})"
    if node.bases or node.keywords or len(node.decorator_list) != 1:
        raise Unsupported(f"{where}: bases, class keywords or several decorators")
    fields = attrs.fields(real)
    frozen = deco == "frozen"
    # the field statements, in order: name -> (default expression or None, explicit)
    found: dict[str, tuple[ast.expr | None, dict[str, Any]]] = {}
    body: list[ast.stmt] = []
    for stmt in node.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            call = _field_call(stmt.value)
            explicit: dict[str, Any] = {}
            default = stmt.value
            if call is not None:
                if call.args:
                    raise Unsupported(f"{where}: positional attrs.field arguments")
                default = None
                for kw in call.keywords:
                    if kw.arg == "default":
                        default = kw.value
                    elif kw.arg in FIELD_OPTIONS:
                        try:
                            explicit[kw.arg] = ast.literal_eval(kw.value)
                        except ValueError:
                            raise Unsupported(f"{where}: field {stmt.target.id}: "
                                              f"{kw.arg} is not a literal") from None
                    else:
                        raise Unsupported(f"{where}: field option {kw.arg}")
            found[stmt.target.id] = (default, explicit)
            # the bare annotation stays: the class's __annotations__ are attrs' types
            body.append(ast.copy_location(ast.AnnAssign(
                target=stmt.target, annotation=stmt.annotation, value=None, simple=1), stmt))
        else:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and stmt.name in (
                    "__attrs_pre_init__", "__attrs_post_init__", "__attrs_init__",
                    "__init__", "__eq__", "__hash__", "__repr__", "__setattr__"):
                raise Unsupported(f"{where}: defines {stmt.name}")
            body.append(stmt)
    if list(found) != [f.name for f in fields]:
        raise Unsupported(f"{where}: fields {list(found)} are not attrs' "
                          f"{[f.name for f in fields]}")
    for f in fields:
        if (f.validator is not None or f.converter is not None or not f.init
                or f.on_setattr is not None or f.metadata or f.inherited
                or isinstance(f.default, attrs.Factory)):  # type: ignore[arg-type]
            raise Unsupported(f"{where}: field {f.name} has a validator, converter, "
                              "factory, metadata or init=False")
    user = {s.name for s in body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                   ast.ClassDef))}
    user |= {t.id for s in body if isinstance(s, ast.Assign) for t in s.targets
             if isinstance(t, ast.Name)}
    extra = set(real.__dict__) - _KNOWN - user - {f.name for f in fields}
    if extra:
        raise Unsupported(f"{where}: attrs made {sorted(extra)}, which the rewrite does not")
    d = real.__dict__
    setattr_ = d.get("__setattr__")
    if frozen != (setattr_ is not None) or (
            setattr_ is not None and getattr(setattr_, "__name__", "") != "_frozen_setattrs"):
        raise Unsupported(f"{where}: a __setattr__ hook (on_setattr)")

    lines = [f"class {node.name}:"]
    add = lines.append
    add(f"    __slots__ = {tuple(d['__slots__'])!r}")
    specs = tuple((f.name, f.alias, found[f.name][1]) for f in fields)
    add(f"    __aot__ = ({deco!r}, {options!r}, {specs!r})")
    add(f"    __attrs_attrs__ = {RUNTIME}.Fields()")
    if "__match_args__" in d:
        add(f"    __match_args__ = {d['__match_args__']!r}")
    params = ["self"]
    star = False
    for f in fields:
        if f.kw_only and not star:
            params.append("*")
            star = True
        default = found[f.name][0]
        p = f.alias
        if default is not None:
            p += f"={ast.unparse(default)}"
        params.append(p)
    add(f"    def __init__({', '.join(params)}):")
    for f in fields:
        add(f"        {SETATTR}(self, {f.name!r}, {f.alias})" if frozen
            else f"        self.{f.name} = {f.alias}")
    if not fields:
        add("        pass")
    init_ann = {f.alias: f.type for f in fields if f.type is not None}
    add(f"    __init__.__annotations__ = {{'return': None, **{init_ann!r}}}")
    if "__repr__" in d:
        add(f"    __repr__ = {RUNTIME}.make_repr({tuple(f.name for f in fields if f.repr)!r})")
    eq = [f.name for f in fields if f.eq]
    if "__eq__" in d:
        add("    def __eq__(self, other):")
        add("        if other.__class__ is not self.__class__:")
        add("            return NotImplemented")
        add("        return " + (" and ".join(f"self.{n} == other.{n}" for n in eq) or "True"))
        add(f"    __ne__ = {RUNTIME}.ne")
    if "__hash__" in d:
        if d["__hash__"] is None:
            add("    __hash__ = None")
        else:
            hashed = [f.name for f in fields if f.hash is True or (f.hash is None and f.eq)]
            add("    def __hash__(self):")
            add(f"        return hash(({node.name!r}, "
                + "".join(f"self.{n}, " for n in hashed) + "))")
    if "__lt__" in d:
        order = [f.name for f in fields if f.order]
        mine = "(" + "".join(f"self.{n}, " for n in order) + ")"
        theirs = "(" + "".join(f"other.{n}, " for n in order) + ")"
        for op, sym in (("lt", "<"), ("le", "<="), ("gt", ">"), ("ge", ">=")):
            add(f"    def __{op}__(self, other):")
            add("        if other.__class__ is self.__class__:")
            add(f"            return {mine} {sym} {theirs}")
            add("        return NotImplemented")
    if "__attrs_own_setattr__" in d:
        add(f"    __attrs_own_setattr__ = {d['__attrs_own_setattr__']!r}")
    if frozen:
        add(f"    __setattr__ = {RUNTIME}.frozen_setattr")
        add(f"    __delattr__ = {RUNTIME}.frozen_delattr")
    if "__getstate__" in d:
        state = tuple(n for n in d["__slots__"] if n != "__weakref__")
        add(f"    __getstate__, __setstate__ = {RUNTIME}.make_pickling({state!r})")
    made = ast.parse("\n".join(lines)).body[0]
    assert isinstance(made, ast.ClassDef)
    for n in ast.walk(made):  # generated lines all say the class's line
        if hasattr(n, "lineno"):
            n.lineno = n.end_lineno = node.lineno  # type: ignore[attr-defined]
            n.col_offset = n.end_col_offset = 0  # type: ignore[attr-defined]
    doc = body[:1] if (body and isinstance(body[0], ast.Expr) and isinstance(
        body[0].value, ast.Constant) and isinstance(body[0].value.value, str)) else []
    # docstring first; the annotations before the generated __init__ (its parameter
    # annotations are the same expressions); the rest after, as written
    anns = [s for s in body[len(doc):] if isinstance(s, ast.AnnAssign)]
    rest = [s for s in body[len(doc):] if not isinstance(s, ast.AnnAssign)]
    made.body = [*doc, *anns, *made.body, *rest]
    made.lineno, made.col_offset = node.lineno, node.col_offset
    return made


def transform(name: str) -> ast.Module:
    """The module `name`'s source with its attrs classes written out (Unsupported if
    it uses what the rewrite does not write)."""
    module = importlib.import_module(name)
    file = module.__file__
    assert file is not None
    with open(file, encoding="utf-8") as f:
        tree = ast.parse(f.read(), file)
    futures = [s for s in tree.body if isinstance(s, ast.ImportFrom)
               and s.module == "__future__"]
    if not any(a.name == "annotations" for s in futures for a in s.names):
        raise Unsupported("no `from __future__ import annotations` (the annotations "
                          "would be evaluated)")
    out: list[ast.stmt] = []
    classes = 0
    for stmt in tree.body:
        if isinstance(stmt, ast.ClassDef) and stmt.decorator_list:
            got = _decorator(stmt.decorator_list[0])
            if got is not None:
                real = getattr(module, stmt.name)
                if not attrs.has(real):
                    raise Unsupported(f"class {stmt.name}: not an attrs class once imported")
                out.append(_class(stmt, real, *got))
                classes += 1
                continue
            if any(_decorator(d) for d in stmt.decorator_list[1:]):
                raise Unsupported(f"class {stmt.name}: attrs is not its only decorator")
        if isinstance(stmt, ast.Import) and any(a.name in ("attrs", "attr") for a in stmt.names):
            if [(a.name, a.asname) for a in stmt.names] != [("attrs", None)]:
                raise Unsupported(f"line {stmt.lineno}: {ast.unparse(stmt)}")
            lazy = ast.parse(f"attrs = {RUNTIME}.LazyModule('attrs')").body[0]
            out.append(ast.copy_location(lazy, stmt))
            continue
        if isinstance(stmt, ast.ImportFrom) and stmt.module and stmt.module.partition(".")[0] in (
                "attrs", "attr"):
            raise Unsupported(f"line {stmt.lineno}: {ast.unparse(stmt)}")
        out.append(stmt)
    if not classes:
        raise Unsupported("no attrs class")
    # the runtime, after the __future__ imports (which must come first)
    at = max((out.index(s) for s in futures), default=-1) + 1
    head = ast.parse(f"from conf import aot as {RUNTIME}\n{SETATTR} = object.__setattr__\n").body
    for s in head:
        ast.copy_location(s, out[at] if at < len(out) else out[-1])
        for n in ast.walk(s):
            ast.copy_location(n, s)
    tree.body = out[:at] + head + out[at:]
    ast.fix_missing_locations(tree)
    return tree


def main(argv: list[str]) -> int:
    out, names = argv[0], argv[1:]
    result: dict[str, tuple[Any, ...]] = {}
    from conf import aot

    deps = []
    for dep in (aot.__file__, os.path.dirname(attrs.__file__), os.path.dirname(
            importlib.import_module("attr").__file__ or "")):
        st = os.stat(dep)
        deps.append((dep, (st.st_size, st.st_mtime_ns)))
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin:
            result[name] = (None, None, "not found", ())
            continue
        st = os.stat(spec.origin)
        try:
            tree = transform(name)
        except Unsupported as e:
            print(f"aot: {name} left to the normal import: {e}", file=sys.stderr)
            result[name] = ((st.st_size, st.st_mtime_ns), None, str(e), ())
            continue
        code = compile(tree, spec.origin, "exec", dont_inherit=True, optimize=0)
        result[name] = ((st.st_size, st.st_mtime_ns), marshal.dumps(code), "", tuple(deps))
    with open(out, "wb") as f:
        marshal.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
