"""Process settings of the children (vrrp_priority, *_rt_priority, *_cpu_affinity ...),
parsed as keepalived and applied in a forked child (the test process is left alone)."""

from __future__ import annotations

import os

from helpers import load_text, messages

from daemonlib import sched


def test_global_defs_process_settings(tmp_path):
    loaded = load_text(tmp_path, """
        global_defs {
            vrrp_priority -5
            checker_priority 10
            vrrp_rt_priority 500
            checker_rlimit_rtime 1
            vrrp_no_swap
            checker_cpu_affinity 0
        }
    """)
    assert loaded.ok, messages(loaded)
    g = loaded.config.global_defs
    top = os.sched_get_priority_max(os.SCHED_RR)
    assert (g.vrrp_priority, g.checker_priority, g.vrrp_rt_priority) == (-5, 10, top)
    assert (g.checker_rlimit_rttime, g.vrrp_no_swap, g.checker_cpu_affinity) == (2, True, (0,))
    assert any("vrrp_rt_priority: 500 outside" in m and "clamped" in m
               for m in messages(loaded, "warning"))


def test_apply_in_a_child():
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: lower its own priority (allowed without privileges)
        try:
            sched.apply("test", os.getpriority(os.PRIO_PROCESS, 0) + 3, None, None, False, [0])
            os.write(w, f"{os.getpriority(os.PRIO_PROCESS, 0)} "
                        f"{sorted(os.sched_getaffinity(0))}".encode())
        finally:
            os._exit(0)
    os.close(w)
    got = os.read(r, 100).decode()
    os.waitpid(pid, 0)
    assert got == f"{os.getpriority(os.PRIO_PROCESS, 0) + 3} [0]"
