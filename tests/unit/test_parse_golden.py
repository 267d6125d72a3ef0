"""The parser's output pinned on a handful of configs: the model (as `director -d` dumps
it) and every diagnostic with its file:line, recorded before the parse was sped up
(issue 13). A faster reader or builder must give the very same; a deliberate change of
behaviour regenerates the records (see tests/fixtures/parse_golden/README)."""

from __future__ import annotations

import json
import pathlib

import pytest

from conf import load
from conf.dump import to_dict

HERE = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "parse_golden"
CONFIGS = sorted(HERE.glob("*.conf"))


def record(path: pathlib.Path) -> str:
    loaded = load(str(path), config_id="lvs1", check_host=False)
    out = {"diags": [str(d) for d in loaded.diags.items], "ok": loaded.ok,
           "model": to_dict(loaded.config) if loaded.config is not None else None}
    return json.dumps(out, indent=1, sort_keys=True).replace(str(HERE), "<dir>") + "\n"


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_same_model_and_diagnostics(path: pathlib.Path) -> None:
    want = path.with_suffix(".json").read_text()
    got = record(path)
    assert json.loads(got) == json.loads(want)


def test_records_exist() -> None:
    assert len(CONFIGS) >= 6 and all(p.with_suffix(".json").exists() for p in CONFIGS)


if __name__ == "__main__":  # regenerate: python tests/unit/test_parse_golden.py
    for p in CONFIGS:
        p.with_suffix(".json").write_text(record(p))
