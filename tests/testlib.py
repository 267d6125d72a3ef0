"""Shared by every tier: where things are, and running commands."""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")

# the one sh, wait loop and nginx config of tests, tools and the demo (tools/nettopo.py)
if os.path.join(ROOT, "tools") not in sys.path:
    sys.path.insert(0, os.path.join(ROOT, "tools"))
from nettopo import (  # noqa: E402
    Hosts,
    WaitTimeout,
    answer_server,
    nginx_conf,
    sh,
    slow_site,
    wait_for,
    wait_until,
)

__all__ = ["EXAMPLES", "FIXTURES", "ROOT", "Hosts", "WaitTimeout", "answer_server", "example",
           "nginx_conf", "sh", "slow_site", "wait_for", "wait_until"]


EXAMPLES = os.path.join(ROOT, "conf", "examples")


def example(name: str, subs: dict[str, str] | None = None) -> str:
    """conf/examples/NAME with each `old -> new` of `subs` applied; a substitution that no
    longer matches fails, so the tests keep running the examples as written."""
    with open(os.path.join(EXAMPLES, name)) as f:
        text = f.read()
    for old, new in (subs or {}).items():
        assert old in text, f"{name} no longer contains {old!r}"
        text = text.replace(old, new)
    return text
