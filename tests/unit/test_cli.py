"""`director -t`, `-d` and `--signum` as a user runs them, on the seeds' configs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from testlib import EXAMPLES, FIXTURES, ROOT

SEEDS = os.path.join(FIXTURES, "seeds")
POS_LINE = re.compile(r"^\S+:\d+: (error|warning): .+")


def director(*args: str, check_rc: int | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "director", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)
    assert "Traceback" not in proc.stderr, proc.stderr
    if check_rc is not None:
        assert proc.returncode == check_rc, proc.stderr
    return proc


def dump(path: str) -> dict:
    proc = director("-d", "-f", path, check_rc=0)
    return json.loads(proc.stdout)


@pytest.mark.parametrize("seed", sorted(os.listdir(SEEDS)))
def test_every_seed_passes_config_test(seed):
    proc = director("-t", "-f", os.path.join(SEEDS, seed), check_rc=0)
    for line in proc.stderr.splitlines():
        assert POS_LINE.match(line), line


def test_seed_000_values():
    cfg = dump(os.path.join(SEEDS, "000_nginx_plus_ha.conf"))
    assert cfg["global_defs"]["vrrp_version"] == 3
    scripts = {s["name"]: s for s in cfg["vrrp_scripts"]}
    assert scripts["chk_nginx_service"]["interval"] == 3
    assert scripts["chk_nginx_service"]["weight"] == 50
    assert scripts["chk_manual_failover"]["script"]["argv"] == [
        "/usr/libexec/keepalived/nginx-ha-manual-failover"]
    (vi,) = cfg["vrrp_instances"]
    assert (vi["priority"], vi["virtual_router_id"], vi["version"], vi["accept"]) == (
        101, 51, 3, True)
    assert (vi["garp_master_refresh"], vi["garp_master_refresh_repeat"]) == (5, 1)
    assert vi["unicast_src_ip"] == "192.168.100.100"
    assert [p["address"] for p in vi["unicast_peer"]] == ["192.168.100.101"]
    assert [v["address"] for v in vi["virtual_ipaddress"]] == ["192.168.100.150"]
    assert [t["name"] for t in vi["track_script"]] == ["chk_nginx_service", "chk_manual_failover"]
    assert vi["notify"]["notify"]["cmd"] == "/usr/libexec/keepalived/nginx-ha-notify"


def test_seed_000_dual_stack_values():
    cfg = dump(os.path.join(SEEDS, "000_nginx_plus_dual_stack.conf"))
    vi1, vi2 = cfg["vrrp_instances"]
    assert [v["address"] for v in vi1["virtual_ipaddress_excluded"]] == ["1234:5678:9abc:def::1"]
    assert [v["address"] for v in vi1["virtual_ipaddress"]] == ["192.168.100.150",
                                                                  "192.168.100.200"]
    assert vi2["family"] == 6 and vi2["virtual_ipaddress"][0]["prefixlen"] == 128


def test_seed_001_values():
    cfg = dump(os.path.join(SEEDS, "001_lvs_nat_master.conf"))
    g = cfg["global_defs"]
    assert g["notification_email"] == ["cold_night@linuxzen.com"]
    # the seed writes "root@linuxzen.com# comment": the comment starts at '#'
    assert g["notification_email_from"] == "root@linuxzen.com"
    assert (g["smtp_server"], g["smtp_connect_timeout"], g["router_id"]) == (
        "www.linuxzen.com", 30, "LVS_DEVEL")
    (vi,) = cfg["vrrp_instances"]
    assert (vi["state"], vi["priority"], vi["advert_int"]) == ("MASTER", 100, 1.0)
    assert vi["authentication"] == {"auth_type": "PASS", "auth_pass": "1111",
                                    "pos": vi["authentication"]["pos"]}
    (vs,) = cfg["virtual_servers"]
    assert (vs["address"], vs["port"], vs["delay_loop"], vs["lb_algo"], vs["lb_kind"]) == (
        "192.168.3.253", 80, 6, "rr", "NAT")
    assert (vs["persistence_timeout"], vs["protocol"]) == (50, "TCP")
    rs1, rs2 = vs["real_servers"]
    assert (rs1["address"], rs1["port"], rs1["weight"]) == ("192.168.3.1", 80, 3)
    c1, c2 = rs1["checkers"][0], rs2["checkers"][0]
    assert (c1["type"], c1["connect_timeout"], c1["retry"], c1["delay_before_retry"],
            c1["connect_port"]) == ("TCP_CHECK", 10, 3, 3, 80)
    assert (c2["connect_timeout"], c2["retry"]) == (3, 1)
    backup = dump(os.path.join(SEEDS, "001_lvs_nat_backup.conf"))
    assert (backup["vrrp_instances"][0]["state"], backup["vrrp_instances"][0]["priority"]) == (
        "BACKUP", 99)


def test_seed_002_values():
    cfg = dump(os.path.join(SEEDS, "002_nginx_vip_backup.conf"))
    g = cfg["global_defs"]
    assert g["script_user"] == "root" and g["vrrp_strict"] and g["vrrp_skip_check_adv_addr"]
    assert (g["vrrp_garp_interval"], g["vrrp_gna_interval"]) == (0, 0)
    (s,) = cfg["vrrp_scripts"]
    assert (s["interval"], s["weight"], s["fall"], s["rise"]) == (2, -5, 2, 1)
    (vi,) = cfg["vrrp_instances"]
    assert vi["nopreempt"] and vi["priority"] == 90 and vi["state"] == "BACKUP"
    assert vi["strict_mode"] and vi["authentication"] is None  # strict mode drops auth
    assert vi["notify"]["notify_master"]["argv"] == ["/etc/keepalived/notify.sh",
                                                     "192.168.1.100", "master"]
    assert vi["notify"]["notify_fault"]["argv"][-1] == "fault"


def test_seed_003_values():
    cfg = dump(os.path.join(SEEDS, "003_mutual_node188.conf"))
    vi1, vi2 = cfg["vrrp_instances"]
    assert vi1["mcast_src_ip"] == "192.168.2.188"
    assert (vi1["virtual_router_id"], vi2["virtual_router_id"]) == (51, 52)
    assert (vi1["priority"], vi2["priority"]) == (100, 90)
    assert vi1["authentication"]["auth_pass"] == "1111"
    other = dump(os.path.join(SEEDS, "003_mutual_node108.conf"))
    assert [i["state"] for i in other["vrrp_instances"]] == ["BACKUP", "MASTER"]
    assert other["vrrp_instances"][0]["nopreempt"] is True


def test_errors_exit_5_with_file_line(tmp_path):
    bad = tmp_path / "bad.conf"
    bad.write_text("vrrp_instance X {\n interface eth0\n virtual_router_id 300\n priority 0\n}\n")
    proc = director("-t", "-f", str(bad), check_rc=5)
    lines = proc.stderr.splitlines()
    assert (f"{bad}:3: warning: virtual_router_id: number '300' outside range [1, 255]; "
            f"ignored") in lines
    assert (f"{bad}:4: warning: priority: number '0' outside range [1, 255]; using the "
            f"default 100") in lines
    # the VRID left unset: keepalived refuses to run the instance, so do we
    assert f"{bad}:1: error: (X) the virtual router id must be set" in lines


def test_missing_config_file(tmp_path):
    proc = director("-t", "-f", str(tmp_path / "nope.conf"), check_rc=5)
    assert "nope.conf:0: error: cannot read config file" in proc.stderr


def test_config_id_flag(tmp_path):
    conf = tmp_path / "k.conf"
    conf.write_text("global_defs {\n@lb1 router_id one\n@lb2 router_id two\n}\n")
    assert json.loads(director("-d", "-i", "lb2", "-f", str(conf), check_rc=0).stdout)[
        "global_defs"]["router_id"] == "two"


def test_signum():
    assert director("--signum=RELOAD", check_rc=0).stdout.strip() == "1"
    assert director("--signum=JSON", check_rc=0).stdout.strip() == "36"
    assert director("--signum=NOPE").returncode == 1


def test_bad_flag_is_a_usage_error():
    proc = director("--no-such-flag")
    assert proc.returncode == 2 and "usage:" in proc.stderr


def test_config_test_does_not_import_heavy_modules(tmp_path):
    code = ("import sys; from director.cli import main; main(['-t', '-f', sys.argv[1]]); "
            "print(sorted(m for m in ('aiohttp', 'scapy', 'pyroute2', 'pyparsing') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, os.path.join(SEEDS,
                          "001_lvs_nat_master.conf")], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stderr


@pytest.mark.parametrize("example", sorted(f for f in os.listdir(EXAMPLES) if f.endswith(".conf")))
def test_every_example_passes_config_test(example):
    """conf/examples are what the demo and the scenario tests run: clean apart from
    interfaces and scripts that exist only where they are deployed, and the warnings that
    the examples' comments explain (keepalived gives the same ones)."""
    path = os.path.join(EXAMPLES, example)
    proc = director("-t", "-f", path, check_rc=0)
    expected = ("doesn't exist", "is not an executable file (yet)",
                "state MASTER must match being address owner", "nopreempt needs state BACKUP")
    for line in proc.stderr.splitlines():
        assert POS_LINE.match(line) and any(x in line for x in expected), line
    if shutil.which("keepalived") is None:
        pytest.skip("keepalived is not installed (make install adds it): cannot compare")
    theirs = subprocess.run(["keepalived", "-t", "-f", path], capture_output=True, text=True)
    # keepalived's wording of the same problems (it exits 5 for missing scripts/interfaces)
    same = ("not found/accessible", "doesn't exist", "Non-existent interface",
            "State MASTER must match being address owner", "nopreempt will not work",
            # the seed's old name for `retry`: director takes it, keepalived 2.2 ignores it
            "Unknown keyword 'nb_get_retry'")
    for line in theirs.stderr.splitlines():
        assert any(x in line for x in same), line


def test_genhash_usage_errors_are_clean():
    proc = director("genhash")
    assert proc.returncode == 2 and "required" in proc.stderr


def test_log_facility_and_no_syslog(monkeypatch):
    """-S as keepalived reads it; -G without -l/-g logs nowhere; a bad -S is a usage error."""
    import logging
    import logging.handlers

    from director.cli import log_facility, make_parser, setup_logging

    assert [log_facility(x) for x in ("0", "7", "local3", "user", "daemon")] == [
        16, 23, 19, 1, 3]
    proc = director("-S", "local9", "-t")
    assert proc.returncode == 2 and "invalid log facility 'local9'" in proc.stderr
    made: list[int] = []

    class FakeSyslog(logging.Handler):
        def __init__(self, address: str, facility: int) -> None:
            super().__init__()
            made.append(facility)

    monkeypatch.setattr(logging.handlers, "SysLogHandler", FakeSyslog)
    root = logging.getLogger()
    saved = root.handlers[:]
    try:
        setup_logging(make_parser().parse_args(["-S", "local5"]))
        assert made == [21]
        setup_logging(make_parser().parse_args([]))
        assert made == [21, 3]  # LOG_DAEMON by default, as keepalived
        setup_logging(make_parser().parse_args(["-G"]))
        assert made == [21, 3] and isinstance(root.handlers[0], logging.NullHandler)
    finally:
        root.handlers[:] = saved


def test_fast_args_are_argparse_s():
    """The common argv read without argparse (_fast_args: `director -t`/`-d` and the
    daemon's options) gives the namespace argparse gives, or None (argparse reads it):
    checked over 20,000 random argv of the options it takes, values, and words it must
    leave to argparse."""
    import contextlib
    import io
    import random

    from director.cli import (
        _DEFAULTS,
        _FAST_FLAGS,
        _FAST_OPTIONAL,
        _FAST_VALUES,
        _fast_args,
        make_parser,
    )

    assert vars(make_parser().parse_args([])) == _DEFAULTS
    words = ["-t", "-d", "--config-test", "--dump-conf", "-e", "--all-config", "-l",
             "--log-console", "-D", "--log-detail", "-n", "--dont-fork", "-f", "--use-file",
             "-i", "--config-id", "a.conf", "x", "", "-", "--", "-1", "a b", "-tf", "-fa",
             "--use-file=a", "--use", "--config-t", "-P", "-C", "--signum", "STOP", "-h",
             "-S", "local1", "-g", "--dry-run", "-v", "é",
             # the daemon's
             "--vrrp", "--check", "-G", "--no-syslog", "-R", "--dont-respawn", "-X",
             "--release-vips", "-V", "--dont-release-vrrp", "-I", "--dont-release-ipvs",
             "-p", "--pid", "-r", "--vrrp_pid", "-c", "--checkers_pid", "--dump-dir",
             "--runtime-dir", "--metrics", "--log-facility", "--log-file", "7", "local9",
             "user", "daemon", "local0", "9100", "/run/d", "--signum", "--help",
             "--version", "-S3", "--pid=x", "--runtime", "-gfoo", "-CP", "-"]
    own = [w for w in words if w in _FAST_FLAGS or w in _FAST_VALUES or w in _FAST_OPTIONAL
           or not w.startswith("-")]
    rng = random.Random(7)
    fast = 0
    for _ in range(20000):
        pool = words if rng.random() < 0.5 else own  # half: the fast path's own
        argv = [rng.choice(pool) for _ in range(rng.randint(0, 6))]
        got = _fast_args(argv)
        if got is None:
            continue
        fast += 1
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                want = vars(make_parser().parse_args(argv))
            except SystemExit as e:
                raise AssertionError(f"{argv}: fast path took what argparse refuses "
                                     f"({e.code}: {err.getvalue()})") from None
        assert vars(got) == want, argv
    assert fast > 2500  # the common shapes did take the fast path
    for argv in (["-t", "-f", "k.conf"], ["-d", "--use-file", "k.conf", "-i", "lvs1"],
                 ["-t"], ["-l", "-D", "-t", "-e", "-n", "-f", "k"], ["-f", "k.conf"],
                 ["-t", "-P"], ["-C", "-n", "-f", "k.conf"], ["-g", "-n"], ["-g"],
                 ["-P", "-g", "/x.log", "-S", "local3", "-p", "p", "-r", "r", "-c", "c",
                  "--runtime-dir", "/run/d", "--metrics", "9100", "--dry-run", "-D"]):
        assert _fast_args(argv) is not None, argv
    for argv in (["-t", "--use-file=k"], ["-tf", "k"], ["-t", "-f", "-x"], ["-t", "-h"],
                 ["-t", "-f"], ["-S", "local9"], ["-g", "-x"], ["-g", ""], ["--signum", "STOP"],
                 ["--version"], ["-CP"]):
        assert _fast_args(argv) is None, argv
