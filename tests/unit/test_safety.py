"""The files the daemons write (daemonlib.safefile) and the one script policy
(daemonlib.scripts): planted links and foreign files refused, keepalived's verdicts on
scripts. Files owned by another user need root to make; those cases skip without it."""

from __future__ import annotations

import logging
import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest
from helpers import load_text, messages

from conf.model import GlobalDefs, Script
from daemonlib import safefile, scripts

NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="a file owned by another user "
                                "can only be made by root")


# -- safefile ------------------------------------------------------------------------
def test_write_is_atomic_with_the_exact_mode(tmp_path):
    old = os.umask(0)
    try:
        safefile.write_atomic(str(tmp_path / "keepalived.data"), "one\n", 0o600)
    finally:
        os.umask(old)
    st = os.stat(tmp_path / "keepalived.data")
    assert stat.S_IMODE(st.st_mode) == 0o600
    safefile.write_atomic(str(tmp_path / "keepalived.data"), "two\n", 0o644)
    assert (tmp_path / "keepalived.data").read_text() == "two\n"
    assert stat.S_IMODE(os.stat(tmp_path / "keepalived.data").st_mode) == 0o644
    assert os.listdir(tmp_path) == ["keepalived.data"]  # no temporary left behind


def test_a_planted_link_is_refused_and_its_target_untouched(tmp_path):
    target = tmp_path / "victim"
    target.write_text("precious\n")
    link = tmp_path / "keepalived.data"
    link.symlink_to(target)
    with pytest.raises(safefile.Refused, match="symbolic link"):
        safefile.write_atomic(str(link), "dump\n")
    assert target.read_text() == "precious\n" and link.is_symlink()
    assert sorted(os.listdir(tmp_path)) == ["keepalived.data", "victim"]


def test_a_directory_that_is_a_link_or_open_to_others_is_refused(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "via").symlink_to(real)
    with pytest.raises(safefile.Refused, match="symbolic link"):
        safefile.write_atomic(str(tmp_path / "via" / "f"), "x")
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    with pytest.raises(safefile.Refused, match="not sticky"):
        safefile.write_atomic(str(open_dir / "f"), "x")
    open_dir.chmod(0o1777)  # like /tmp: the names are ours to protect, the rest is safe
    safefile.write_atomic(str(open_dir / "f"), "x")
    assert not os.listdir(real)


def test_a_non_file_at_the_name_is_refused(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(safefile.Refused, match="not a regular file"):
        safefile.write_atomic(str(tmp_path / "d"), "x")


@needs_root
def test_a_foreign_file_is_refused_and_left_alone(tmp_path):
    f = tmp_path / "keepalived.stats"
    f.write_text("theirs\n")
    os.chown(f, NOBODY, NOBODY)
    with pytest.raises(safefile.Refused, match=f"owned by uid {NOBODY}"):
        safefile.write_atomic(str(f), "ours\n")
    assert f.read_text() == "theirs\n" and os.stat(f).st_uid == NOBODY
    safefile.remove(str(f))  # a pid file someone else owns is not ours to remove
    assert f.exists()


def test_remove_takes_the_link_not_its_target(tmp_path):
    target = tmp_path / "victim"
    target.write_text("precious\n")
    (tmp_path / "k.pid").symlink_to(target)
    safefile.remove(str(tmp_path / "k.pid"))
    assert not (tmp_path / "k.pid").is_symlink() and target.read_text() == "precious\n"


def test_fifo_made_opened_and_refused(tmp_path):
    fd, made = safefile.make_fifo(str(tmp_path / "fifo"), 0o644, None)
    try:
        st = os.stat(tmp_path / "fifo")
        assert made and stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o644
        os.write(fd, b"no reader yet, no block\n")
    finally:
        os.close(fd)
    target = tmp_path / "victim"
    target.write_text("precious\n")
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(safefile.Refused, match="symbolic link"):
        safefile.make_fifo(str(tmp_path / "link"), 0o644, None)
    with pytest.raises(safefile.Refused, match="not a FIFO"):
        safefile.make_fifo(str(target), 0o644, None)
    assert target.read_text() == "precious\n"


@needs_root
def test_a_foreign_fifo_is_refused_unless_it_is_the_scripts_users(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    os.chown(tmp_path / "fifo", NOBODY, NOBODY)
    with pytest.raises(safefile.Refused, match=f"owned by uid {NOBODY}"):
        safefile.make_fifo(str(tmp_path / "fifo"), 0o644, None)
    fd, made = safefile.make_fifo(str(tmp_path / "fifo"), 0o644, (NOBODY, NOBODY))
    os.close(fd)
    assert not made


# -- the script policy -----------------------------------------------------------------
@pytest.fixture
def sdir():
    """A directory for scripts that every user can reach (pytest's tmp_path is 0700)."""
    d = tempfile.mkdtemp(prefix="director-scripts-")
    os.chmod(d, 0o755)
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


def script_file(d, name="s.sh", mode=0o755):
    p = d / name
    p.write_text("#!/bin/sh\nexit 0\n")
    p.chmod(mode)
    return p


def sc(path, *args, user=None, group=None) -> Script:
    return Script(cmd=" ".join((str(path), *args)), argv=(str(path), *args), user=user,
                  group=group)


@needs_root
def test_verdicts_as_keepalived(sdir):
    tmp_path = sdir
    root = scripts.RunAs(0, 0, (), "root")
    nobody = scripts.lookup_user("nobody", None)
    good = script_file(tmp_path, "good.sh")
    v = scripts.check(sc(good, "a"), root, True)
    assert v.runnable and v.runnable.argv == (str(good), "a")
    bad = script_file(tmp_path, "ww.sh", 0o777)
    v = scripts.check(sc(bad), root, True)
    assert v.runnable is None and v.insecure and "writable by others" in v.refused
    v = scripts.check(sc(bad), root, False)  # without enable_script_security: runs, noted
    assert v.runnable and v.insecure and "unsafe permissions" in v.notes[0]
    # as keepalived: a script that runs without root's power is not path-checked
    assert scripts.check(sc(bad), nobody, True).runnable
    sub = tmp_path / "open"
    sub.mkdir()
    inner = script_file(sub, "inner.sh")
    sub.chmod(0o777)  # a directory on its path writable by others
    v = scripts.check(sc(inner), root, True)
    assert v.runnable is None and f"{sub} is writable by others" in v.refused
    noexec = script_file(tmp_path, "noexec.sh", 0o644)
    assert "not executable" in scripts.check(sc(noexec), root, True).refused
    assert "not executable" in scripts.check(sc(script_file(tmp_path, "own.sh", 0o700)),
                                             nobody, True).refused
    assert "No such file" in scripts.check(sc(tmp_path / "missing"), root, True).refused
    assert "not found in PATH" in scripts.check(sc("no-such-cmd-x"), root, True).refused
    v = scripts.check(sc("true"), root, True)
    assert v.runnable and v.runnable.argv[0].endswith("/true") and "PATH search" in v.notes[0]
    # a root-owned link on the way (/bin -> usr/bin on merged-/usr systems) is fine, as
    # keepalived 2.2.7 runs such scripts as root with enable_script_security
    (tmp_path / "bin").symlink_to(tmp_path / "real")
    (tmp_path / "real").mkdir()
    script_file(tmp_path / "real", "linked.sh")
    assert scripts.check(sc(tmp_path / "bin" / "linked.sh"), root, True).runnable
    (tmp_path / "real").chmod(0o777)  # ... but its target is still checked
    assert f"{tmp_path}/real is writable by others" in scripts.check(
        sc(tmp_path / "bin" / "linked.sh"), root, True).refused


def test_users_and_groups():
    assert scripts.lookup_user("nobody", None).uid == NOBODY
    assert scripts.lookup_user("nobody", "nogroup").gid == NOBODY
    with pytest.raises(LookupError, match="script user 'no-such-user-x' does not exist"):
        scripts.lookup_user("no-such-user-x", None)
    with pytest.raises(LookupError, match="group 'no-such-group-x'"):
        scripts.lookup_user("nobody", "no-such-group-x")
    run_as, error = scripts.ScriptPolicy(GlobalDefs(enable_script_security=True)).default()
    if run_as is None:  # no keepalived_script user here: root is not the fallback
        assert "no script_user" in error
    run_as, _ = scripts.ScriptPolicy(GlobalDefs(script_user="nobody")).default()
    assert run_as is not None and run_as.name == "nobody"


def test_notify_lines_carry_their_user(tmp_path):
    loaded = load_text(tmp_path, """
        vrrp_instance VI_1 {
            interface eth0
            virtual_router_id 51
            notify_master "/bin/notify master now" nobody nogroup
            notify_backup /bin/notify daemon
            notify "/bin/notify"
            virtual_ipaddress { 10.0.0.1 }
        }
        virtual_server 10.0.0.1 80 {
            protocol TCP
            quorum_up "/bin/up 1" nobody
            real_server 10.0.1.1 80 {
                notify_up "/bin/rs up" daemon
                MISC_CHECK {
                    misc_path "/bin/chk x"
                    user nobody nogroup
                }
            }
        }""")
    cfg = loaded.config
    assert messages(loaded) == ["6: notify_backup: 'daemon' is read as the user to run the "
                                "script as (keepalived's reading); quote the command to give "
                                "it arguments"]
    n = cfg.vrrp_instances[0].notify
    assert (n.notify_master.argv, n.notify_master.user, n.notify_master.group) == (
        ("/bin/notify", "master", "now"), "nobody", "nogroup")
    assert (n.notify_backup.argv, n.notify_backup.user) == (("/bin/notify",), "daemon")
    assert n.notify.user is None
    vs = cfg.virtual_servers[0]
    assert vs.quorum_up.user == "nobody" and vs.real_servers[0].notify_up.user == "daemon"
    ck = vs.real_servers[0].checkers[0]
    assert (ck.user, ck.group) == ("nobody", "nogroup")


@needs_root
def test_enforce_takes_refused_scripts_out(tmp_path, sdir, caplog):
    good = script_file(sdir, "good.sh")
    bad = script_file(sdir, "bad.sh", 0o777)
    loaded = load_text(tmp_path, f"""
        global_defs {{
            script_user nobody
            enable_script_security
        }}
        vrrp_script chk_bad {{
            script "{bad}"
            user root
        }}
        vrrp_script chk_good {{
            script "{good}"
        }}
        vrrp_instance VI_1 {{
            interface eth0
            virtual_router_id 51
            notify_master "{bad}" root
            notify_backup "{good}" daemon
            track_script {{
                chk_bad
                chk_good
            }}
            virtual_ipaddress {{ 10.0.0.1 }}
        }}
        virtual_server 10.0.0.1 80 {{
            protocol TCP
            quorum_down "{bad}" root
            real_server 10.0.1.1 80 {{
                notify_up "{bad}" root
                notify_down "{good}"
                MISC_CHECK {{
                    misc_path "{bad}"
                    user root
                }}
                MISC_CHECK {{ misc_path "{good} 1" }}
            }}
        }}""")
    cfg = loaded.config
    with caplog.at_level(logging.INFO):
        vrrp = scripts.enforce(cfg, "vrrp")
        assert [s.name for s in vrrp.vrrp_scripts] == ["chk_good"]
        inst = vrrp.vrrp_instances[0]
        assert [r.name for r in inst.track_script] == ["chk_good"]
        assert inst.notify.notify_master is None and inst.notify.notify_backup is not None
        assert scripts.run_as_of(inst.notify.notify_backup).name == "daemon"
        assert scripts.run_as_of(vrrp.vrrp_scripts[0].script).name == "nobody"
        lvs = scripts.enforce(cfg, "checker")
    rs = lvs.virtual_servers[0].real_servers[0]
    assert lvs.virtual_servers[0].quorum_down is None and rs.notify_up is None
    assert rs.notify_down is not None and len(rs.checkers) == 1
    assert rs.checkers[0].misc_path.argv == (str(good), "1")
    assert scripts.run_as_of(rs.checkers[0].misc_path).name == "nobody"
    text = caplog.text
    assert f"SECURITY: vrrp_script chk_bad script {bad}" in text
    assert "Disabling track script chk_bad" in text
    assert "Disabling MISC_CHECK" in text and "writable by others" in text
    assert "SECURITY VIOLATION" not in text  # enable_script_security is set


def test_scripts_without_script_security_are_reported(tmp_path, sdir, caplog):
    bad = script_file(sdir, "bad.sh", 0o777)
    loaded = load_text(tmp_path, f"""
        virtual_server 10.0.0.1 80 {{
            real_server 10.0.1.1 80 {{
                notify_up "{bad}" root
                MISC_CHECK {{
                    misc_path "{bad}"
                    user root
                }}
            }}
        }}""")
    with caplog.at_level(logging.INFO):
        cfg = scripts.enforce(loaded.config, "checker")
    rs = cfg.virtual_servers[0].real_servers[0]
    assert rs.notify_up is not None and len(rs.checkers) == 1  # kept: security is off
    assert "unsafe permissions: " + f"{bad} is writable by others" in caplog.text
    assert ("SECURITY VIOLATION: checker scripts will run without enable_script_security; "
            "some are insecure") in caplog.text


def test_create_replaces_ours_and_refuses_a_link(tmp_path):
    path = tmp_path / "keepalived.log"
    path.write_text("old run\n")
    fd = safefile.create(str(path))
    os.write(fd, b"new run\n")
    os.close(fd)
    assert path.read_text() == "new run\n" and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    path.unlink()
    path.symlink_to(tmp_path / "victim")
    with pytest.raises(safefile.Refused, match="symbolic link"):
        safefile.create(str(path))
    assert not (tmp_path / "victim").exists()


def test_log_file_option_never_follows_a_link(tmp_path):
    """`-g` (keepalived's default /tmp/keepalived.log): a planted link is refused, the
    daemon logs to stderr instead and says why."""
    import subprocess
    import sys

    from testlib import ROOT

    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (tmp_path / "log").symlink_to(victim)
    code = ("import argparse, logging\nfrom director.cli import setup_logging\n"
            "setup_logging(argparse.Namespace(log_detail=False, log_console=False, "
            f"dont_fork=False, log_file={str(tmp_path / 'log')!r}))\n"
            "logging.getLogger('director').info('hello')\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert f"director: {tmp_path}/log is a symbolic link; not followed" in r.stderr
    assert "hello" in r.stderr and victim.read_text() == "precious\n"
