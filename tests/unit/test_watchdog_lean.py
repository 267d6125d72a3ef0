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
