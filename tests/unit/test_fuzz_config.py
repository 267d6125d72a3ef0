"""Mutated configs never crash `director -t`, and every problem line carries file:line."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from testlib import FIXTURES, ROOT

from director.cli import main

SEEDS = [open(os.path.join(FIXTURES, "seeds", f), "rb").read()
         for f in sorted(os.listdir(os.path.join(FIXTURES, "seeds")))]
EXTRA = b"""
virtual_server_group G { 10.0.0.1-5 80
 fwmark 3 }
virtual_server group G { lb_algo sh
 sh-port
 real_server 10.0.1.1 80 { HTTP_GET { url { path / status_code 200-204 } } } }
vrrp_instance V6 { interface eth0
 virtual_router_id 9 version 3 advert_int 0.1
 virtual_ipaddress { fd00::1/64 dev eth0 }
 virtual_routes { fd01::/64 via fd00::2 }
 virtual_rules { from fd00::/8 table 10 } }
$D=1
~SEQ(i, 1, 3) $D
"""
SEEDS.append(SEEDS[0] + EXTRA)
LINE = re.compile(rb"^\S.*:\d+: (error|warning): .*$|^.*: \d+ errors? in configuration$")
JUNK = [b"{", b"}", b"\"", b"#", b"!", b"$", b"${X}", b"~SEQ(", b"@", b"include ", b"\xff\xfe",
        b"\x00", b"\xc3", b"-1", b"99999999999999999999", b"::", b"/", b"\\\n", b"\t", b"\r\n",
        b"nan", b"inf", b"0x", b"1e309"]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["truncate", "delete", "insert", "swap", "drop_braces"]))
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        if op == "truncate":
            del data[i:]
        elif op == "delete":
            del data[i : i + draw(st.integers(1, 20))]
        elif op == "insert":
            data[i:i] = draw(st.one_of(st.sampled_from(JUNK), st.binary(max_size=8)))
        elif op == "drop_braces":
            data = bytearray(data.replace(draw(st.sampled_from([b"{", b"}"])), b"", 1))
        else:
            words = bytes(data).split(b" ")
            if len(words) > 2:
                a = draw(st.integers(0, len(words) - 1))
                b = draw(st.integers(0, len(words) - 1))
                words[a], words[b] = words[b], words[a]
                data = bytearray(b" ".join(words))
    return bytes(data)


def run_in_process(path: str) -> tuple[int, bytes]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(["-t", "-f", path])
    return rc, err.getvalue().encode("utf-8", "surrogateescape")


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_configs_never_crash(data):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "k.conf")
        with open(path, "wb") as f:
            f.write(data)
        rc, err = run_in_process(path)  # an exception here fails the test
        assert rc in (0, 5)
        for line in err.splitlines():
            assert LINE.match(line), line
        if rc == 5:
            assert b": error: " in err


def test_real_binary_on_garbage(tmp_path):
    """The installed command, not just main(): no traceback on junk input."""
    for i, data in enumerate([b"\xff\xfe\x00{{{", b"}" * 50, b"vrrp_instance {", SEEDS[1][:333],
                              b"include " + b"{a,b}" * 10]):
        p = tmp_path / f"g{i}.conf"
        p.write_bytes(data)
        proc = subprocess.run([sys.executable, "-m", "director", "-t", "-f", str(p)],
                              capture_output=True, cwd=ROOT, timeout=60)
        assert b"Traceback" not in proc.stderr and b"internal error" not in proc.stderr
        assert proc.returncode in (0, 5)


def test_control_characters_stay_on_the_diagnostic_line(tmp_path):
    """A stray CR or escape sequence in a keyword is shown escaped: one diagnostic, one
    line, nothing rewritten on the operator's terminal (found by the fuzzer above)."""
    path = tmp_path / "k.conf"
    path.write_bytes(b'"\r! comment\nglobal_defs {\n    router_id a\x1b[2Jb\n}\nx\x07y 1\n')
    rc, err = run_in_process(str(path))
    assert rc in (0, 5)
    lines = err.splitlines()
    assert lines and all(LINE.match(line) for line in lines), lines
    assert b"\\r! comment" in err and b"\\x07" in err
    assert b"\r" not in err and b"\x1b" not in err and b"\x07" not in err
