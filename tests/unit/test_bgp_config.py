"""The bgp_speaker / bgp_announce extension: the model, and file:line diagnostics."""

from __future__ import annotations

import pytest
from helpers import load_text, messages

from conf.dump import to_dict

SPEAKER = """
bgp_speaker {{
    router_id 10.40.0.11
    local_as 65010
    neighbor 10.40.0.1 {{
        remote_as 65000
        hold_time 3          # default 9
        {nb}
    }}
    {body}
}}
"""

VS = """
virtual_server 10.30.0.100 80 {{
    protocol TCP
    {ann}
    real_server 10.0.0.2 80 {{
        TCP_CHECK {{ }}
    }}
}}
"""


def conf(nb: str = "", body: str = "", ann: str = "bgp_announce") -> str:
    return SPEAKER.format(nb=nb, body=body) + VS.format(ann=ann)


def test_the_issue_example_builds_the_model(tmp_path):
    vs6 = VS.replace("10.30.0.100", "2001:db8::100").replace("10.0.0.2", "2001:db8::2")
    loaded = load_text(tmp_path, conf(nb="bfd", body="engine exabgp")
                       + vs6.format(ann="bgp_announce dev dummy0"))
    assert loaded.ok, messages(loaded)
    sp = loaded.config.bgp_speaker
    assert (sp.router_id, sp.local_as, sp.engine, sp.withdraw_grace) == (
        "10.40.0.11", 65010, "exabgp", 1.0)
    (nb,) = sp.neighbors
    assert (nb.address, nb.family, nb.remote_as, nb.hold_time, nb.bfd, nb.port) == (
        "10.40.0.1", 4, 65000, 3, True, 179)
    assert str(nb.pos).endswith(":5")
    vs4, vs6 = loaded.config.virtual_servers
    assert vs4.bgp_announce.dev == "lo" and vs6.bgp_announce.dev == "dummy0"
    # bfd: exabgp has none, said at the bfd's neighbor
    assert messages(loaded, "warning")[0] == (
        "5: neighbor 10.40.0.1: bfd is not offered by engine exabgp; ignored (failure "
        "detection is the hold time, 3 s)")
    assert to_dict(loaded.config)["bgp_speaker"]["neighbors"][0]["hold_time"] == 3


def test_defaults_and_several_neighbors(tmp_path):
    text = conf(body="withdraw_grace 0.5\nneighbor fd00::1 {\nremote_as 4200000000\n"
                     "local_address fd00::11\nport 1179\npassive\n}")
    loaded = load_text(tmp_path, text.replace("hold_time 3", ""))
    assert loaded.ok, messages(loaded)
    sp = loaded.config.bgp_speaker
    a, b = sp.neighbors
    assert a.hold_time == 9 and sp.withdraw_grace == 0.5
    assert (b.address, b.family, b.remote_as, b.local_address, b.port, b.passive) == (
        "fd00::1", 6, 4200000000, "fd00::11", 1179, True)


@pytest.mark.parametrize("nb, body, line, fragment", [
    ("", "local_as 0", 10, "local_as: AS 0 is reserved or out of range"),
    ("", "local_as 4294967296", 10, "out of range"),
    ("", "local_as sixty", 10, "'sixty' is not an AS number"),
    ("remote_as 23456", "", 8, "AS 23456 is reserved"),
    ("hold_time 2", "", 8, "must be 0 or at least 3 seconds"),
    ("hold_time 70000", "", 8, "outside range"),
    ("local_address 10.40.0.300", "", 8, "local_address"),
    ("local_address fd00::1", "", 8, "is not of the neighbor's family"),
    ("colour blue", "", 8, "unknown keyword 'colour' in neighbor 10.40.0.1"),
    ("", "engine bird", 10, "engine bird is not available yet"),
    ("", "engine quagga", 10, "unknown engine 'quagga'"),
    ("", "router_id 300.1.1.1", 10, "'300.1.1.1' is not a router id"),
    ("", "neighbor 10.40.0.1 {\nremote_as 65001\n}", 10, "neighbor 10.40.0.1 is already"),
    ("", "neighbor 10.40.0.9 {\nhold_time 3\n}", 10, "neighbor 10.40.0.9 has no remote_as"),
    ("", "neighbor nowhere {\nremote_as 1\n}", 10, "neighbor:"),
    ("", "local_as 1 2", 10, "local_as takes one value"),
])
def test_bad_bgp_values_are_errors_at_their_line(tmp_path, nb, body, line, fragment):
    """No keepalived repair to mirror: a speaker that cannot peer as written is refused
    (exit 5 from `director -t`), with file:line."""
    loaded = load_text(tmp_path, conf(nb=nb, body=body))
    errs = messages(loaded, "error")
    assert not loaded.ok
    assert any(e.startswith(f"{line}: ") and fragment in e for e in errs), errs


@pytest.mark.parametrize("drop, fragment", [
    ("router_id 10.40.0.11", "bgp_speaker has no router_id"),
    ("local_as 65010", "bgp_speaker has no local_as"),
])
def test_a_speaker_without_identity_is_an_error(tmp_path, drop, fragment):
    loaded = load_text(tmp_path, conf().replace(drop, ""))
    assert f"2: {fragment}" in messages(loaded, "error")


def test_a_speaker_without_neighbors_is_an_error(tmp_path):
    text = "bgp_speaker {\nrouter_id 1.1.1.1\nlocal_as 65010\n}\n" + VS.format(ann="")
    assert messages(load_text(tmp_path, text), "error") == ["1: bgp_speaker has no neighbor"]


def test_bgp_announce_without_speaker_warns_and_serves(tmp_path):
    """The virtual server serves as keepalived would; nothing is announced."""
    loaded = load_text(tmp_path, VS.format(ann="bgp_announce"))
    assert loaded.ok
    assert loaded.config.virtual_servers[0].bgp_announce is None
    assert messages(loaded, "warning") == [
        "4: virtual_server [10.30.0.100]:tcp:80: bgp_announce: there is no bgp_speaker "
        "block: nothing is announced"]


def test_bgp_announce_syntax_and_fwmark(tmp_path):
    loaded = load_text(tmp_path, conf(ann="bgp_announce lo"))
    assert "15: bgp_announce: expected 'bgp_announce [dev DEVICE]', got 'lo'; ignored" in \
        messages(loaded, "warning")
    fw = SPEAKER.format(nb="", body="") + VS.format(ann="bgp_announce").replace(
        "10.30.0.100 80", "fwmark 7")
    loaded = load_text(tmp_path, fw)
    assert loaded.ok and loaded.config.virtual_servers[0].bgp_announce is None
    assert any("a fwmark virtual server has no address to announce" in m
               for m in messages(loaded, "warning"))


def test_group_addresses_are_announced(tmp_path):
    from conf.bgp import announce_addresses

    text = SPEAKER.format(nb="", body="") + (
        "virtual_server_group G {\n10.30.0.1-3 80\n10.30.0.9 80\nfwmark 3\n}\n"
        + VS.format(ann="bgp_announce").replace("10.30.0.100 80", "group G"))
    loaded = load_text(tmp_path, text)
    assert loaded.ok, messages(loaded)
    vs = loaded.config.virtual_servers[0]
    assert announce_addresses(vs, loaded.config) == (
        "10.30.0.1", "10.30.0.2", "10.30.0.3", "10.30.0.9")


def test_second_speaker_block_is_an_error(tmp_path):
    loaded = load_text(tmp_path, conf() + SPEAKER.format(nb="", body=""))
    assert any("a second bgp_speaker block (the first is at" in m
               for m in messages(loaded, "error"))


def test_a_vip_of_a_family_no_neighbor_carries_warns(tmp_path):
    vs6 = VS.replace("10.30.0.100", "2001:db8::100").replace("10.0.0.2", "2001:db8::2")
    loaded = load_text(tmp_path, SPEAKER.format(nb="", body="") + vs6.format(ann="bgp_announce"))
    assert loaded.ok
    assert messages(loaded, "warning") == [
        "15: virtual_server [2001:db8::100]:tcp:80: bgp_announce: no IPv6 neighbor in "
        "bgp_speaker: announced to nobody (each neighbor carries its own family)"]


def test_director_t_and_d_on_the_issue_example(tmp_path):
    """As a user runs them: -t accepts the extension (exit 0, each warning file:line),
    -t refuses a bad AS (exit 5), -d shows the speaker and the announcement."""
    import json
    import re
    import subprocess
    import sys

    from testlib import ROOT

    def director(*args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "director", *args], capture_output=True,
                              text=True, cwd=ROOT, timeout=60)
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    path = tmp_path / "keepalived.conf"
    path.write_text(conf(nb="bfd", body="engine exabgp"))
    t = director("-t", "-f", str(path))
    assert t.returncode == 0, t.stderr
    assert all(re.match(r"^\S+:\d+: warning: ", line) for line in t.stderr.splitlines())
    d = json.loads(director("-d", "-f", str(path)).stdout)
    assert d["bgp_speaker"]["neighbors"][0]["remote_as"] == 65000
    assert d["virtual_servers"][0]["bgp_announce"]["dev"] == "lo"
    path.write_text(conf(body="local_as 0"))
    bad = director("-t", "-f", str(path))
    assert bad.returncode == 5 and f"{path}:10: error: bgp_speaker: local_as: AS 0" in bad.stderr
