"""The model as JSON (`director -d`): every field, defaults filled in."""

from __future__ import annotations

import json
from typing import Any

import attrs

from .errors import Pos
from .model import Config


def _value(v: Any) -> Any:
    if isinstance(v, Pos):
        return str(v)
    if attrs.has(type(v)):
        return {f.name: _value(getattr(v, f.name)) for f in attrs.fields(type(v))}
    if isinstance(v, tuple | list):
        return [_value(x) for x in v]
    if isinstance(v, bytes):
        return v.hex()
    return v


def to_dict(cfg: Config) -> dict[str, Any]:
    return _value(cfg)


def to_json(cfg: Config) -> str:
    return json.dumps(to_dict(cfg), indent=2, ensure_ascii=True)
