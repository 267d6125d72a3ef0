"""`director -f` under its watchdog parent on a LAN of namespaces: a killed VRRP child
comes back without the VIP ever leaving, backoff, HUP reloads that change only what
changed (watched with `ip monitor address`), a broken config on HUP kept out.
"""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
from lan import AddrMonitor, vrrp_conf, wait_for

from director.watchdog import next_delay

VIP = "10.9.0.100"


# advert_int 1: b's Master_Down is 3.6 s, more than the watchdog's first respawn delay
# (keepalived's rule: 1 s for a child that ran less than 60 s)
CONF_A = vrrp_conf(priority=150, advert="1", state="MASTER")
CONF_B = vrrp_conf(priority=100, advert="1")


@pytest.fixture
def master_and_backup(lan):
    a = lan.start("a", "director", CONF_A, "-P")
    lan.wait_holder(VIP, "a", hosts=("a",))
    b = lan.start("b", "director", CONF_B, "-P", "--dump-dir", "{dir}")
    wait_for(lambda: "Entering BACKUP STATE" in b.output(), 10, what="b backup")
    b.wait_adverts(1)
    return a, b


def heard(b, n: int) -> None:
    """b heard `n` more adverts from a's current process (so it has not taken over)."""
    b.wait_adverts(n)


def test_backoff_rule():
    assert next_delay(120, 0) == 0  # ran long: at once
    assert next_delay(120, 8) == 0
    delays = []
    d = 0.0
    for _ in range(8):
        d = next_delay(1, d)
        delays.append(d)
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60]


def test_killed_vrrp_child_comes_back_and_the_vip_never_leaves(lan, master_and_backup):
    a, b = master_and_backup
    mon = AddrMonitor(lan, "a")
    child = a.child_pid()
    os.kill(child, signal.SIGKILL)
    wait_for(lambda: a.child_pid() != child, 10, what="a new VRRP child")
    wait_for(lambda: "Resuming MASTER STATE" in a.output(), 10, what="resumed")
    heard(b, 2)  # from the new child: b's Master_Down was reset, it stays BACKUP
    events = mon.events()
    assert not [x for x in events if "Deleted" in x and VIP in x], events
    assert lan.holders(VIP) == ["a"]
    assert "Entering MASTER STATE" not in b.output()  # the peer never took over
    assert "restarting in 1 s" in a.output()
    # killed again within 60 s: the backoff doubles
    child = a.child_pid()
    os.kill(child, signal.SIGKILL)
    wait_for(lambda: "restarting in 2 s" in a.output(), 10, what="backoff 2 s")


def test_hup_with_the_same_config_changes_nothing(lan, master_and_backup):
    a, b = master_and_backup
    mon = AddrMonitor(lan, "a")
    a.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "Resuming MASTER STATE (reload)" in a.output(), 10, what="reload")
    # the reloaded instance is running (its address calls queued before its first advert)
    heard(b, 2)
    assert mon.events() == []
    assert lan.holders(VIP) == ["a"]
    assert "Entering MASTER STATE" not in b.output()


def test_hup_adding_a_vip_adds_only_that(lan, master_and_backup):
    a, b = master_and_backup
    mon = AddrMonitor(lan, "a")
    with open(a.conf, "w") as f:
        f.write(vrrp_conf(priority=150, advert="1", state="MASTER",
                          vips=("10.9.0.100/24", "10.9.0.101/24")))
    a.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "10.9.0.101" in lan.addrs("a"), 10, what="the new VIP")
    heard(b, 2)
    events = mon.events()
    assert len(events) == 1 and "10.9.0.101" in events[0] and "Deleted" not in events[0]
    # and removing it again removes only it
    mon = AddrMonitor(lan, "a")
    with open(a.conf, "w") as f:
        f.write(CONF_A)
    a.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "10.9.0.101" not in lan.addrs("a"), 10, what="the VIP gone")
    heard(b, 2)
    events = mon.events()
    assert len(events) == 1 and "Deleted" in events[0] and "10.9.0.101" in events[0]
    assert lan.holders(VIP) == ["a"]


def test_hup_with_a_broken_config_keeps_the_old_one(lan, master_and_backup):
    a, b = master_and_backup
    with open(a.conf, "a") as f:
        f.write("vrrp_instance BROKEN {\n    priority 300\n}\n")
    a.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "running configuration is kept" in a.output(), 10, what="refusal")
    assert "keepalived.conf:" in a.output()  # the file:line of the problem
    heard(b, 2)  # a still advertises after the refused reload
    assert lan.holders(VIP) == ["a"]
    assert a.proc.poll() is None
    assert "Entering MASTER STATE" not in b.output()


def test_systemd_notify_protocol(lan, tmp_path, monkeypatch):
    import socket

    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(15)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    a = lan.start("a", "director", CONF_A, "-P")

    def message() -> str:
        return sock.recv(4096).decode()
    first = message()
    assert first.startswith("READY=1") and f"MAINPID={a.proc.pid}" in first
    a.proc.send_signal(signal.SIGHUP)
    assert message().startswith("RELOADING=1\nMONOTONIC_USEC=")
    assert message() == "READY=1"
    a.proc.send_signal(signal.SIGTERM)
    assert message() == "STOPPING=1"
    a.proc.wait(15)
    sock.close()


def test_daemon_with_a_log_file_through_the_parent_s_re_exec(lan, tmp_path):
    """keepalived's default mode (forks, no -n) with -g: the parent re-executes itself
    after forking the child (same pid, same command line, the model dropped) and goes on
    supervising: one log file written by both, a killed child restarted, the pid files
    kept and removed at the stop."""
    from lan import DIRECTOR

    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF_A)
    log_file, pid, vpid = tmp_path / "d.log", tmp_path / "k.pid", tmp_path / "v.pid"
    cmd = [DIRECTOR, "--runtime-dir", str(tmp_path), "-P", "-D", "-g", str(log_file),
           "-f", str(conf), "-p", str(pid), "-r", str(vpid)]
    started = subprocess.run(["ip", "netns", "exec", lan.ns["a"], *cmd], timeout=60)
    assert started.returncode == 0  # the foreground process returns, the daemon runs on
    parent = 0
    try:
        parent = wait_for(lambda: pid.exists() and int(pid.read_text()), 30,
                          what="the parent's pid file")
        text = lambda: log_file.read_text(errors="replace")  # noqa: E731
        wait_for(lambda: "watchdog re-executed with 1 children" in text(), 30,
                 what="the parent's re-exec logged in the log file")
        with open(f"/proc/{parent}/cmdline", "rb") as f:
            assert f.read().split(b"\0")[1:-1][-len(cmd):] == [c.encode() for c in cmd]
        with open(f"/proc/{parent}/status") as f:  # huge pages stay off across the execve
            assert "THP_enabled:\t0" in f.read()
        wait_for(lambda: "Entering MASTER STATE" in text(), 30,
                 what="the VRRP child's log line in the same file")
        lan.wait_holder(VIP, "a", hosts=("a",))
        child = int(vpid.read_text())
        os.kill(child, signal.SIGKILL)
        wait_for(lambda: vpid.exists() and int(vpid.read_text()) != child, 15,
                 what="the re-executed parent's new VRRP child")
        wait_for(lambda: "Resuming MASTER STATE" in text(), 30, what="the new child resumed")
        assert "restarting in 1 s" in text()
        os.kill(parent, signal.SIGTERM)
        wait_for(lambda: "Stopped" in text(), 30, what="the parent's stop")
        wait_for(lambda: not pid.exists() and not vpid.exists(), 10,
                 what="the pid files removed")
        assert "Traceback" not in text()
    finally:
        if parent and os.path.exists(f"/proc/{parent}"):
            os.killpg(parent, signal.SIGKILL)


def test_dont_respawn_stops_the_daemon_when_a_child_dies(lan):
    """-R (keepalived's --dont-respawn), in the re-executed parent: a killed child is not
    restarted, the others are stopped, the parent exits and removes its pid files."""
    a = lan.start("a", "director", CONF_A, "-P", "-R")
    lan.wait_holder(VIP, "a", hosts=("a",))
    wait_for(lambda: "watchdog re-executed" in a.output(), 10, what="the parent's re-exec")
    os.kill(a.child_pid(), signal.SIGKILL)
    wait_for(lambda: a.proc.poll() is not None, 15, what="the parent's exit after -R")
    assert "respawning is off (-R): stopping" in a.output()
    assert "Starting VRRP child process" in a.output()
    assert a.output().count("Starting VRRP child process") == 1
    assert not os.path.exists(f"{a.dir}/k.pid") and not os.path.exists(f"{a.dir}/v.pid")
