from __future__ import annotations

import textwrap
from pathlib import Path

from conf import Loaded, load


def load_text(tmp_path: Path, text: str, name: str = "keepalived.conf", **kw) -> Loaded:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    kw.setdefault("check_host", False)
    kw.setdefault("config_id", "node1")
    return load(str(path), **kw)


def messages(loaded: Loaded, severity: str | None = None) -> list[str]:
    return [f"{d.pos.line}: {d.message}" for d in loaded.diags.items
            if severity is None or d.severity == severity]


def instance(text_or_loaded, name: str = "VI_1"):
    cfg = text_or_loaded.config
    return next(i for i in cfg.vrrp_instances if i.name == name)


VRRP = """
vrrp_instance VI_1 {{
    interface eth0
    virtual_router_id 51
    {body}
    virtual_ipaddress {{
        10.0.0.1
    }}
}}
"""
