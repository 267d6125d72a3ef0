"""The one BIRD config writer (tools/bird.py) of the BGP tests and the scale-out
topology: BIRD 2 itself accepts both renderings (`bird -p`, parse only)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import testlib  # noqa: F401  (puts tools/ on the path: bird, scaleout)


def _bird_parses(tmp_path, text: str) -> None:
    if shutil.which("bird") is None:
        pytest.skip("bird (BIRD 2) is not installed")
    conf = tmp_path / "bird.conf"
    conf.write_text(text)
    out = subprocess.run(["bird", "-p", "-c", str(conf)], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr + text


def test_scaleout_router(tmp_path):
    import scaleout

    text = scaleout.router_conf(hold=5)
    _bird_parses(tmp_path, text)
    for line in ("log stderr all;", "local 10.40.0.1 as 65000;", "hold time 5;",
                 "keepalive time 1;", "connect retry time 1;", "error wait time 1, 3;",
                 "protocol bgp dir3 from directors { neighbor 10.40.0.13 as 65010; }"):
        assert line in text, (line, text)
    assert "ipv6" not in text and "passive" not in text and "timeformat" not in text


def test_traced_passive_dual_stack_router(tmp_path):
    from bird import bird_conf

    text = bird_conf("10.41.0.1", 65000, {"d1": ("10.41.0.11", 65010),
                                          "d6": ("fd00:41::11", 65010)},
                     log=str(tmp_path / "bird.log"), families=("ipv4", "ipv6"),
                     passive=True, error_wait=(1, 2), trace=True)
    _bird_parses(tmp_path, text)
    assert text.count("merge paths on;") == 2 and "passive on;" in text
    assert 'timeformat route "%T.%3f";' in text and "debug { states, routes };" in text
    assert "neighbor fd00:41::11 as 65010;" in text
