"""What the ahead-of-time attrs classes need at run time, and attrs' evolve/fields for code
on the start path.

`import attrs` and attrs building the model's ~30 classes are most of a start's import
time in the emulated VM (~1.3 s of ~3 s). So `director.aot_build` writes, at install time,
each attrs class of the modules on the way to the first IPVS operation as a plain slotted
class with the methods attrs would generate (the start-up bundle serves that code while
the module's source is unchanged, see director/bundle.py). The source keeps one attrs
model; this module is what those classes call, and it imports attrs only when asked for
attrs' own objects: `attrs.fields(C)`, `attrs.has(C)`, `attrs.asdict(x)` build the real
`Attribute`s on first use (`Fields`).

`evolve` and `fields` serve both kinds of class: code on the start path uses them
instead of `attrs.evolve`/`attrs.fields`, which would import attrs.
"""

# Only built-in modules here: this is imported on the start path, before anything else
# of conf.
import _thread

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    T = TypeVar("T")


class _Nothing:
    """No default (attrs.NOTHING's counterpart here, without attrs)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NOTHING"

    def __bool__(self) -> bool:
        return False


NOTHING: "Any" = _Nothing()


class Field:
    """What code needs of a field: its name, the __init__ parameter (alias), the
    default (NOTHING: none), whether __init__ takes it and its annotation (a string
    under `from __future__ import annotations`)."""

    __slots__ = ("name", "alias", "default", "init", "type")

    def __init__(self, name: str, alias: str, default: "Any", init: bool,
                 type: "Any" = None) -> None:
        self.name = name
        self.alias = alias
        self.default = default
        self.init = init
        self.type = type

    def __repr__(self) -> str:
        return f"Field({self.name!r}, alias={self.alias!r}, default={self.default!r})"


_fields: "dict[type, tuple[Field, ...]]" = {}


def fields(cls: type) -> "tuple[Field, ...]":
    """The fields of the attrs class `cls` (an ahead-of-time one or not), in order."""
    found = _fields.get(cls)
    if found is None:
        meta = cls.__dict__.get("__aot__")
        if meta is not None:
            found = _aot_fields(cls, meta)
        else:
            import attrs

            found = tuple(Field(a.name, a.alias or a.name, NOTHING if a.default is attrs.NOTHING
                                else a.default, a.init, a.type)
                          for a in attrs.fields(cls))
        _fields[cls] = found
    return found


def _aot_fields(cls: type, meta: "Any") -> "tuple[Field, ...]":
    init = cls.__dict__["__init__"]
    code = init.__code__
    kwdefaults = init.__kwdefaults__ or {}
    positional = code.co_varnames[1:code.co_argcount]
    tail = init.__defaults__ or ()
    defaults = dict(zip(positional[len(positional) - len(tail):], tail, strict=True))
    defaults.update(kwdefaults)
    types = cls.__dict__.get("__annotations__", {})
    return tuple(Field(name, alias, defaults.get(alias, NOTHING), True, types.get(name))
                 for name, alias, _ in meta[2])


def evolve(inst: "T", **changes: "Any") -> "T":
    """attrs.evolve: a copy of `inst` with `changes` (by __init__ parameter name)."""
    cls = inst.__class__
    for f in fields(cls):
        if f.init and f.alias not in changes:
            changes[f.alias] = getattr(inst, f.name)
    return cls(**changes)


# -- what the generated classes call -------------------------------------------------
class Fields:
    """The `__attrs_attrs__` of an ahead-of-time class: on first access (attrs.fields,
    attrs.has, attrs.asdict, ...) attrs' own decorator runs over a shadow class of the
    same fields, options and default objects, and its Attributes (and `__attrs_props__`)
    are stored on the class."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.owner = owner

    def __get__(self, obj: "Any", cls: "Any" = None) -> "Any":
        owner = self.owner
        found = _build_attrs(owner)
        type.__setattr__(owner, "__attrs_attrs__", found.__attrs_attrs__)
        type.__setattr__(owner, "__attrs_props__", found.__attrs_props__)
        return found.__attrs_attrs__


def _build_attrs(owner: type) -> "Any":
    import attrs

    decorator, options, specs = owner.__dict__["__aot__"]
    defaults = {f.name: f.default for f in fields(owner)}
    ns: dict[str, Any] = {"__module__": owner.__module__, "__qualname__": owner.__qualname__,
                          "__annotations__": dict(owner.__dict__.get("__annotations__", {}))}
    for name, _alias, explicit in specs:
        default = defaults[name]
        ns[name] = (attrs.field(**explicit) if default is NOTHING
                    else attrs.field(default=default, **explicit))
    return getattr(attrs, decorator)(**options)(type(owner.__name__, (), ns))


class _ReprContext(_thread._local):
    working: "set[int] | None" = None


_repr_context = _ReprContext()


def make_repr(names: "tuple[str, ...]") -> "Callable[[Any], str]":
    """attrs' __repr__: `Class(a=1, b='x')`, `...` for an object already being shown
    further up the same repr (a cycle)."""

    def __repr__(self: "Any") -> str:
        working = _repr_context.working
        if working is None:
            working = _repr_context.working = set()
        if id(self) in working:
            return "..."
        working.add(id(self))
        try:
            inner = ", ".join([f"{n}={getattr(self, n)!r}" for n in names])
            return f"{self.__class__.__qualname__.rsplit('>.', 1)[-1]}({inner})"
        finally:
            working.discard(id(self))

    return __repr__


def ne(self: "Any", other: "Any") -> "Any":
    """attrs' __ne__: the negation of __eq__."""
    result = self.__eq__(other)
    if result is NotImplemented:
        return NotImplemented
    return not result


def frozen_setattr(self: "Any", name: str, value: "Any") -> None:
    from attrs.exceptions import FrozenInstanceError

    raise FrozenInstanceError


def frozen_delattr(self: "Any", name: str) -> None:
    from attrs.exceptions import FrozenInstanceError

    raise FrozenInstanceError


def make_pickling(names: "tuple[str, ...]") -> "tuple[Callable[..., Any], Callable[..., None]]":
    """attrs' __getstate__/__setstate__ of a slotted class."""

    def __getstate__(self: "Any") -> "dict[str, Any]":
        return {name: getattr(self, name) for name in names}

    def __setstate__(self: "Any", state: "Any") -> None:
        set_ = object.__setattr__
        if isinstance(state, tuple):
            for name, value in zip(names, state, strict=False):
                set_(self, name, value)
        else:
            for name in names:
                if name in state:
                    set_(self, name, state[name])

    return __getstate__, __setstate__


class LazyModule:
    """Stands for a module imported at module level that only functions use: imported
    on first attribute access."""

    def __init__(self, name: str) -> None:
        self.__name = name

    def __getattr__(self, attr: str) -> "Any":
        import importlib

        return getattr(importlib.import_module(self.__name), attr)
