"""Every keyword keepalived registers is implemented or warned about by name.

The list is data generated from keepalived's source by tools/keepalived_keywords.py
(tests/fixtures/keepalived_keywords.txt, with the commit it came from). Each keyword is
written in every block it could belong to; it must be understood in at least one of
them, and no block may call it an "unknown keyword".
"""

from __future__ import annotations

from pathlib import Path

from helpers import load_text

from conf.keywords import NO_EFFECT, OBSOLETE, UNSUPPORTED

DATA = Path(__file__).parent.parent / "fixtures" / "keepalived_keywords.txt"

CONTEXTS = {
    "top level": "{body}",
    "global_defs": "global_defs {{\n{body}\n}}",
    "vrrp_instance": "vrrp_instance V {{\n{body}\n}}",
    "vrrp_sync_group": "vrrp_sync_group G {{\n{body}\n}}",
    "vrrp_script": "vrrp_script S {{\n{body}\n}}",
    "vrrp_track_process": "vrrp_track_process P {{\n{body}\n}}",
    "track_file": "track_file F {{\n{body}\n}}",
    "authentication": "vrrp_instance V {{\nauthentication {{\n{body}\n}}\n}}",
    "SSL": "SSL {{\n{body}\n}}",
    "virtual_server": "virtual_server 10.0.0.1 80 {{\n{body}\n}}",
    "real_server": "virtual_server 10.0.0.1 80 {{\nreal_server 10.0.0.2 80 {{\n{body}\n}}\n}}",
    "checker": "virtual_server 10.0.0.1 80 {{\nreal_server 10.0.0.2 80 {{\n"
               "HTTP_GET {{\n{body}\n}}\n}}\n}}",
    "url": "virtual_server 10.0.0.1 80 {{\nreal_server 10.0.0.2 80 {{\n"
           "HTTP_GET {{\nurl {{\n{body}\n}}\n}}\n}}\n}}",
}


def keepalived_keywords() -> list[str]:
    lines = [ln.split() for ln in DATA.read_text().splitlines() if not ln.startswith("#")]
    return sorted({name for _, name in lines})


def test_the_generated_list_is_whole():
    header = DATA.read_text().splitlines()[0]
    assert header.startswith("# keepalived 2.") and "commit" in header
    names = keepalived_keywords()
    assert len(names) > 300
    for sample in ("vrrp_instance", "virtual_server", "lb_kind", "delay_before_retry",
                   "vrrp_garp_master_refresh", "DNS_CHECK", "require_reply"):
        assert sample in names


def test_no_keepalived_keyword_is_unknown(tmp_path):
    names = keepalived_keywords()
    body = "\n".join(f"{n} 1" for n in names)
    unknown = set(names)
    for context in CONTEXTS.values():
        loaded = load_text(tmp_path, context.format(body=body))
        called_unknown = {d.message.split("'")[1] for d in loaded.diags.items
                          if d.message.startswith("unknown keyword")}
        unknown &= called_unknown
    assert not unknown, f"reported as unknown keywords: {sorted(unknown)}"


def test_unsupported_and_no_effect_keywords_are_named(tmp_path):
    loaded = load_text(tmp_path, "global_defs {\n max_auto_priority 5\n enable_snmp_vrrp\n"
                                 " nat_mask 255.0.0.0\n}\n")
    warns = [d.message for d in loaded.diags.warnings]
    assert any("'max_auto_priority' is not supported yet" in m for m in warns), warns
    assert any("'enable_snmp_vrrp' in global_defs is not supported yet" in m for m in warns)
    assert any("'nat_mask' in global_defs is obsolete" in m for m in warns)
    assert not (NO_EFFECT & UNSUPPORTED) and not (NO_EFFECT & set(OBSOLETE))


def test_director_extensions_are_not_keepalived_keywords(tmp_path):
    """bgp_speaker / bgp_announce and their inner keywords are director's own: none is a
    keepalived keyword (keepalived refuses them), and director knows each of them."""
    from conf.keywords import DIRECTOR_EXTENSIONS

    assert not DIRECTOR_EXTENSIONS & set(keepalived_keywords())
    assert {"bgp_speaker", "bgp_announce"} <= DIRECTOR_EXTENSIONS
    loaded = load_text(tmp_path, "bgp_speaker {\n router_id 1.1.1.1\n local_as 65010\n"
                                 " neighbor 10.0.0.1 {\n  remote_as 65000\n }\n}\n")
    assert loaded.ok and loaded.config.bgp_speaker is not None
