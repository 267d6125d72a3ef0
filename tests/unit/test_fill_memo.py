"""conf.build's fill keeps a one-word keyword's value per word: the values repeat as
parsed, and what warns as it is read warns every time (nothing of it kept)."""

from __future__ import annotations

import pathlib

from conf import load


def _conf(tmp_path: pathlib.Path, text: str) -> str:
    path = tmp_path / "keepalived.conf"
    path.write_text(text)
    return str(path)


def test_repeated_words_same_values_and_each_warning(tmp_path: pathlib.Path) -> None:
    rs = """
    real_server 10.0.0.{n} 80 {{
        weight {w}
        TCP_CHECK {{
            connect_timeout 3
            connect_ip 10.0.1.1/24
        }}
    }}"""
    text = ("virtual_server 10.0.0.100 80 {\n  lb_kind NAT\n  weight 2\n"
            "  ha_suspend\n  ha_suspend\n"
            + "".join(rs.format(n=n, w=w) for n, w in ((1, 5), (2, 5), (3, "x"), (4, "x"),
                                                         (5, 5)))
            + "\n}\n")
    loaded = load(_conf(tmp_path, text), config_id="x", check_host=False)
    msgs = [str(d) for d in loaded.diags.items]
    assert loaded.config is not None, msgs
    servers = loaded.config.virtual_servers[0].real_servers
    # a bad word warns on each line it is on, and the real server inherits instead
    assert [rs.weight for rs in servers] == [5, 5, 2, 2, 5]
    assert sum("weight: 'x'" in m for m in msgs) == 2, msgs
    # a value repaired with a warning (Fixed) warns each time too, and is the repaired one
    assert sum("connect_ip" in m and "/24" in m for m in msgs) == 5, msgs
    assert {c.connect_ip for rs in servers for c in rs.checkers} == {"10.0.1.1"}
    assert {c.connect_timeout for rs in servers for c in rs.checkers} == {3.0}
    # a keyword parsed without effect says so wherever it is written
    assert sum("'ha_suspend' is not supported yet" in m for m in msgs) == 2, msgs
