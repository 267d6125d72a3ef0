"""Brace leftovers read as keepalived 2.2.7 reads them, compared with the real one.

Two habits of keepalived's parser (lib/parser.c, process_stream): a `{` after a keyword
that takes no block is "Unexpected" and skipped alone, so the lines after it belong to
the enclosing block and the next `}` ends that block; a block keyword written without
its `{` takes the lines up to the next `}` as its block, also the block keywords
director does not implement (garp_group, track_bfd, BFD_CHECK ...), which it then
ignores whole. `keepalived -t` names the lines where it met each; running both daemons
on the same text shows what the instance became.

keepalived parses the file once per process (parent, VRRP, checker, BFD); where a
block is not its process's, it skips it by counting braces, which a leaf's `{ }` pair
keeps balanced. The texts here are written so that those other parses report neither
an unexpected nor a missing `{` of their own.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
from lan import DIRECTOR, wait_for

pytestmark = pytest.mark.skipif(shutil.which("keepalived") is None,
                                reason="keepalived (the reference) is not installed")

# a leaf's '{' in global_defs, in an instance (on the keyword's line) and in a virtual
# server: each ends its block early at the '}' that was meant for the leaf
LEAF_BRACES = open(os.path.join(os.path.dirname(__file__), "..", "fixtures",
                                "leaf_braces.conf")).read()

# unsupported block keywords without their '{' (process_stream sub-blocks: keepalived
# says "Missing '{'" on the line after the keyword)
UNBRACED = """\
garp_group
    garp_interval 2
    interface eth0
}
virtual_server 10.0.0.1 80 {
    protocol TCP
    real_server 10.0.1.1 80 {
        BFD_CHECK
            name bfd1
        }
        weight 4
    }
}
"""


def _keepalived_lines(netns: str, conf: str, message: str) -> set[int]:
    out = subprocess.run(["ip", "netns", "exec", netns, "keepalived", "-t", "-l", "-D",
                          "-f", conf], capture_output=True, text=True, timeout=60)
    text = out.stdout + out.stderr
    return {int(n) for n in re.findall(r"Line (\d+)\) " + re.escape(message), text)}


def _director_warnings(conf: str) -> list[str]:
    out = subprocess.run([DIRECTOR, "-t", "-f", conf], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    return out.stderr.splitlines()


def _lines(warnings: list[str], conf: str, needle: str) -> set[int]:
    name = os.path.basename(conf)
    return {int(w.split(":")[1]) for w in warnings
            if needle in w and os.path.basename(w.split(":")[0]) == name}


def test_leaf_braces_ignored_on_the_lines_keepalived_names(netns, tmp_path):
    conf = tmp_path / "leaf.conf"
    conf.write_text(LEAF_BRACES)
    ns = netns()
    expected = _keepalived_lines(ns, str(conf), "Unexpected '{' - ignoring")
    assert expected == {4, 12, 18}, "keepalived 2.2.7 named other lines than it used to"
    warns = _director_warnings(str(conf))
    assert _lines(warns, str(conf), "which takes no block, ignored") == expected, warns
    # the lines after each early end are top-level keywords to both
    unknown = _keepalived_lines(ns, str(conf), "Unknown keyword")
    ours = _lines(warns, str(conf), "does not belong in the top level")
    assert ours == {7, 13, 21} and ours <= unknown, (unknown, warns)


def test_unsupported_blocks_without_brace_take_the_next_lines(netns, tmp_path):
    conf = tmp_path / "unbraced.conf"
    conf.write_text(UNBRACED)
    missing = _keepalived_lines(netns(), str(conf), "Missing '{' at beginning")
    assert missing == {2, 9}, "keepalived 2.2.7 named other lines than it used to"
    warns = _director_warnings(str(conf))
    # director names the keyword's line, keepalived the line after it
    assert {n + 1 for n in _lines(warns, str(conf), "has no '{'")} == missing, warns
    assert not _lines(warns, str(conf), "unknown keyword"), warns
    assert not _lines(warns, str(conf), "does not belong"), warns


def _instance_conf(vrid: int, vip: str, lost: str) -> str:
    """track_bfd without its '{' takes `bfd1` and its '}'; advert_int's '{' is ignored,
    so the priority and the VIP block inside it are the instance's and the '}' after
    them ends the instance: the last VIP block is a top-level keyword, never a VIP."""
    return f"""\
global_defs {{
    router_id r{vrid}
}}
garp_group
    garp_interval 2
    interface eth0
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id {vrid}
    version 3
    track_bfd
        bfd1
    }}
    advert_int 0.1 {{
        priority 150
        virtual_ipaddress {{
            {vip}/24
        }}
    }}
    virtual_ipaddress {{
        {lost}/24
    }}
}}
"""


def test_keepalived_and_director_run_the_same_instance(lan):
    """The same text (a VRID each) in keepalived on a and director on b: each becomes
    master alone and holds the VIP written inside the leaf's braces; both report the
    same instance in their JSON dumps (priority and VIPs from inside the braces, the
    VIP block after them not the instance's)."""
    ka = lan.start("a", "keepalived", _instance_conf(51, "10.9.0.101", "10.9.0.201"))
    di = lan.start("b", "director", _instance_conf(52, "10.9.0.102", "10.9.0.202"),
                   "-P", "--dump-dir", "{dir}")
    wait_for(lambda: "10.9.0.101" in lan.addrs("a"), 20,
             what="keepalived on a to hold the VIP written inside advert_int's braces")
    wait_for(lambda: "10.9.0.102" in lan.addrs("b"), 20,
             what="director on b to hold the VIP written inside advert_int's braces")
    seen: dict[str, object] = {}
    for d, vip in ((ka, "10.9.0.101"), (di, "10.9.0.102")):
        (inst,) = d.dump_json()
        data = inst["data"]
        # keepalived writes a VIP with its options ("... dev eth0 scope global set")
        vips = [v.split()[0] for v in data["vips"]]
        seen[d.kind] = (data["base_priority"], float(data["adver_int"]), vips)
        assert seen[d.kind] == (150, 0.1, [f"{vip}/24"]), (d.kind, data)
    assert "10.9.0.201" not in lan.addrs("a") and "10.9.0.202" not in lan.addrs("b")
    assert "Traceback" not in di.output()
