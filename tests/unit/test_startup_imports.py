"""The checker child imports, before its first IPVS programming, only what that needs.

In the emulated VM every module is a dozen file operations over the shared filesystem,
and that is most of the start-up floor (bench/ipvs_sync.py); these modules are loaded
after the table is programmed (or only when configured), and must stay so.
"""

import subprocess
import sys

LATER = ("checkers.engine", "httptools", "smtplib", "email.utils", "json", "secrets",
         "hashlib", "director.health", "director.ctl_lvs", "daemonlib.control",
         "director.bgp.core", "director.bgp.link")  # (asyncio itself loads concurrent.futures)


def test_checker_child_start_path_stays_lean() -> None:
    code = ("import sys; import director.cli, director.watchdog, director.lvs_main, "
            "director.dataplane, director.ipvs_fast, conf.load; "
            f"print(' '.join(m for m in {LATER!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.split() == [], f"imported before the first IPVS op: {out.stdout}"


def test_the_lean_path_still_reaches_what_runs_later() -> None:
    """The deferred imports resolve (a typo there would only show after start-up)."""
    code = ("import director.health, director.ctl_lvs, daemonlib.control, "
            "daemonlib.runtime, director.bgp.link, director.bgp.core")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
