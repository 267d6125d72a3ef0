"""Shared by every tier: where things are, and running commands."""

from __future__ import annotations

import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")


def sh(*cmd: str, check: bool = True, **kw) -> subprocess.CompletedProcess[str]:
    kw.setdefault("timeout", 60)
    return subprocess.run(cmd, check=check, capture_output=True, text=True, **kw)


def nginx_conf(d: str, servers: str, connections: int = 1024, head: str = "") -> str:
    """An nginx config that keeps everything (pid, logs, temp files) under `d`, with the
    caller's `server` blocks; `head` adds main-context lines (`daemon off;`, `user root;`)."""
    return f"""{head}
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections {connections}; }}
http {{
    access_log off;
    client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d};
    uwsgi_temp_path {d}; scgi_temp_path {d};
{servers}
}}
"""


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
