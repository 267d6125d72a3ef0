"""The parent's start-up waits for the checker child's first programming when no VRRP
child is to start (director/prefork.py): the two would share the box's CPUs."""

import os
import signal
import time
from types import SimpleNamespace

from conf import load
from director import prefork

CONF = """virtual_server 192.0.2.1 80 {
    real_server 192.0.2.10 80 {
    }
}
"""


def _args(tmp_path, **kw):  # type: ignore[no-untyped-def]
    base = dict(vrrp=False, check=True, metrics=False, log_file=None, log_console=False,
                dont_fork=True, checkers_pid=str(tmp_path / "c.pid"),
                pid=str(tmp_path / "k.pid"))
    base.update(kw)
    return SimpleNamespace(**base)


def _fork(tmp_path, monkeypatch, conf: str, held: bool = False,
          **kw):  # type: ignore[no-untyped-def]
    """fork_checker with a stand-in child whose 'first programming' takes 0.3 s (`held`:
    lasts until the test lets it go, after fork_checker returned) and then leaves a
    mark; returns whether the mark was there when fork_checker returned."""
    path = tmp_path / "keepalived.conf"
    path.write_text(conf)
    cfg = load(str(path)).config
    mark = tmp_path / "programmed"
    release = tmp_path / "release"

    def child(args, box, adopt, log_fd=None, parent=None, ready_fd=-1):  # type: ignore[no-untyped-def]
        end = time.monotonic() + 10
        while held and not release.exists() and time.monotonic() < end:
            time.sleep(0.01)
        time.sleep(0.3)  # a slow first programming: the window a parent not waiting misses
        mark.write_text("done")
        if ready_fd >= 0:
            os.close(ready_fd)
        return 0

    monkeypatch.setattr(prefork, "checker_main", child)
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    try:
        forked = prefork.fork_checker(_args(tmp_path, **kw), [cfg])
        seen = mark.exists()
        release.write_text("go")
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    assert forked is not None
    os.waitpid(forked.pid, 0)
    return seen


def test_checker_only_waits_for_the_first_programming(tmp_path, monkeypatch):
    assert _fork(tmp_path, monkeypatch, CONF, check=True)


def test_no_vrrp_instance_waits_too(tmp_path, monkeypatch):
    assert _fork(tmp_path, monkeypatch, CONF, check=False)


def test_a_vrrp_child_to_start_is_not_held_back(tmp_path, monkeypatch):
    conf = CONF + """vrrp_instance VI_1 {
    interface lo
    virtual_router_id 51
    virtual_ipaddress {
        192.0.2.100
    }
}
"""
    assert not _fork(tmp_path, monkeypatch, conf, held=True, check=False)
