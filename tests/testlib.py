"""Shared by every tier: where things are, and running commands."""

from __future__ import annotations

import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")


def sh(*cmd: str, check: bool = True, **kw) -> subprocess.CompletedProcess[str]:
    kw.setdefault("timeout", 60)
    return subprocess.run(cmd, check=check, capture_output=True, text=True, **kw)
