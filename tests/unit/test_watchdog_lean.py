"""The watchdog parent re-executes itself once its first children are forked: what it
imports then (the command line, the watchdog, the pid files) must stay free of the
parser, the model, asyncio and attrs, or the supervising process grows back to the
size of a child (bench/memory.py). And transparent huge pages stay off across fork and
execve once the daemon has turned them off."""

import subprocess
import sys

import pytest

HEAVY = ("conf", "conf.model", "conf.load", "attr", "attrs", "asyncio", "ssl", "ctypes",
         "director.lvs_main", "vrrp", "checkers")


def test_the_re_executed_parent_imports_nothing_heavy() -> None:
    code = ("import sys; import director.cli, director.watchdog; "
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.split() == [], f"the watchdog parent imports: {out.stdout}"


def _thp(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    return out.stdout.strip()


def test_no_huge_pages_holds_in_forked_and_executed_processes() -> None:
    status = ("[l.split()[1] for l in open('/proc/self/status') "
              "if l.startswith('THP_enabled')]")
    if _thp(f"print({status})") == "[]":
        pytest.skip("this kernel (before 5.0) shows no THP_enabled in /proc/PID/status")
    assert _thp(f"print({status}[0])") == "1"  # on by default for a process
    code = ("import os, subprocess, sys\n"
            "from daemonlib.memory import no_huge_pages\n"
            "no_huge_pages()\n"
            f"print({status}[0])\n"
            "sys.stdout.flush()\n"
            "if os.fork() == 0:\n"
            f"    print({status}[0]); sys.stdout.flush(); os._exit(0)\n"
            "os.wait()\n"
            "subprocess.run([sys.executable, '-c', \"print([l.split()[1] for l in "
            "open('/proc/self/status') if l.startswith('THP_enabled')][0])\"])\n")
    assert _thp(code).split() == ["0", "0", "0"]


def _args(**kw):  # type: ignore[no-untyped-def]
    import argparse

    base = dict(log_file=None, config="k.conf", config_id=None, all_config=False,
                vrrp_pid=None, checkers_pid=None, pid=None, dont_respawn=False,
                metrics=None, runtime_dir="/run/director")
    return argparse.Namespace(**{**base, **kw})


def test_the_children_survive_the_re_exec_as_state(monkeypatch) -> None:
    """What the first process hands over (pid, name, start time, starts of each child)
    is what the re-executed one supervises; another process's state is not taken."""
    import os

    import director.cli
    from director import watchdog as w

    kids = w.make_children(_args(), ("VRRP", "Healthcheck", "BGP"), w._Model(None, list))
    for n, c in enumerate(kids, 1):
        c.pid, c.started, c.starts = 1000 + n, 12345.678 + n, n
    state = w._state(kids)
    got = {}
    monkeypatch.setattr(director.cli, "setup_logging", lambda args, log_fd=None: None)
    monkeypatch.setattr(w, "supervise", lambda children, respawn, pidfile, resumed: got.update(
        children=children, respawn=respawn, resumed=resumed) or 0)
    monkeypatch.setenv(w.STATE_ENV, state)
    assert w.resume(_args(), state) == 0
    assert w.STATE_ENV not in os.environ  # a child started later never sees it
    assert got["resumed"] and got["respawn"]
    assert [(c.name, c.pid, c.started, c.starts, c.stop_first) for c in got["children"]] == [
        ("VRRP", 1001, 12346.678, 1, False), ("Healthcheck", 1002, 12347.678, 2, False),
        ("BGP", 1003, 12348.678, 3, True)]
    other = state.replace(str(os.getpid()), str(os.getpid() + 1), 1)
    assert w.resume(_args(), other) is None  # not ours: start as usual


def test_a_failed_execve_leaves_this_process_supervising(monkeypatch, caplog) -> None:
    from director import watchdog as w

    def refuse(*_a):  # type: ignore[no-untyped-def]
        raise OSError(2, "No such file or directory")

    monkeypatch.setattr(w.os, "execve", refuse)
    released = []
    model = w._Model("parsed", lambda: None)
    monkeypatch.setattr(model, "release", lambda: released.append(True))
    w._reexec(_args(), [], model)
    assert released == [True]
    assert "not re-executed" in caplog.text
