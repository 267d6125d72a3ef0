"""conf.load leaves the model where the collector's frequent passes do not walk it."""

from __future__ import annotations

import gc

from conf import load


def test_model_is_aged_after_load(tmp_path) -> None:
    path = tmp_path / "keepalived.conf"
    path.write_text("virtual_server 10.0.0.1 80 {\n  protocol TCP\n"
                    "  real_server 10.0.1.1 80 {\n    TCP_CHECK {\n      connect_timeout 3\n"
                    "    }\n  }\n}\n")
    was = gc.isenabled()
    gc.enable()
    try:
        loaded = load(str(path), config_id="x", check_host=False)
        assert loaded.ok, loaded.diags.items
        vs = loaded.config.virtual_servers[0]
        young = gc.get_objects(generation=0) + gc.get_objects(generation=1)
        assert not any(o is vs or o is vs.real_servers for o in young)
        assert any(o is vs for o in gc.get_objects(generation=2))
    finally:
        if not was:
            gc.disable()
