"""The one script policy on every kind of script, and the files the daemons write, on
real directors in namespaces.

Scripts: with `script_user nobody` and `enable_script_security`, each kind (vrrp_script,
instance and sync-group notifies, the notify FIFO scripts, MISC_CHECK, real-server
notify_up/down, quorum_up/down) runs as nobody, or as the user its own line names; a
script that would run as root while others can change it (world-writable, or in a
directory others may write) is refused with a log line and never runs, and the rest keeps
working (the VRRP pair still elects, the other checkers still decide).

Files: a link planted at each predictable name (dumps, pid file, runtime JSON, notify FIFO)
and a file owned by another user are refused with a log line; the link's target stays as
it was.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import tempfile
from pathlib import Path

import pytest
from lan import vrrp_conf, wait_for

VIP = "10.9.0.100"
NOBODY = 65534
WHO = '#!/bin/sh\necho "$(id -un) $*" > "{out}/$1"\n'
# the FIFO script reads the FIFO named by its last argument, one line per event
FIFO_READER = ('#!/bin/sh\neval "fifo=\\${{$#}}"\n'
               'while read -r line; do echo "$(id -un) $line" >> "{out}/$1"; done < "$fifo"\n')


@pytest.fixture
def sdir():
    """Scripts every user can reach (root's, 0755) and `out`, where they write."""
    d = Path(tempfile.mkdtemp(prefix="director-sec-"))
    d.chmod(0o755)
    out = d / "out"
    out.mkdir()
    out.chmod(0o777)
    for name, text, mode in (("who.sh", WHO, 0o755), ("fifo.sh", FIFO_READER, 0o755),
                             ("ww.sh", WHO, 0o777)):  # ww.sh: anyone may change it
        (d / name).write_text(text.format(out=out))
        (d / name).chmod(mode)
    (d / "open").mkdir()
    (d / "open" / "who.sh").write_text(WHO.format(out=out))
    (d / "open" / "who.sh").chmod(0o755)
    (d / "open").chmod(0o777)  # a directory on the script's path others may write in
    yield d
    shutil.rmtree(d, ignore_errors=True)


def read(out: Path, tag: str) -> str:
    p = out / tag
    return p.read_text().strip() if p.exists() else ""


def wait_line(out: Path, tag: str, want: str, timeout: float = 15) -> None:
    wait_for(lambda: want in read(out, tag), timeout, what=f"{tag} to say {want!r}")


GLOB = """    script_user nobody
    enable_script_security
"""


def test_vrrp_scripts_obey_the_policy(lan, sdir):
    out = sdir / "out"
    glob = GLOB + (f"    vrrp_notify_fifo {sdir}/out/vrrp.fifo\n"
                   f"    vrrp_notify_fifo_script \"{sdir}/fifo.sh fifo\"\n"
                   f"    notify_fifo {sdir}/out/global.fifo\n"
                   f"    notify_fifo_script \"{sdir}/ww.sh gfifo\" root\n")
    head = f"""vrrp_script chk_ok {{
    script "{sdir}/who.sh chk_ok"
}}
vrrp_script chk_daemon {{
    script "{sdir}/who.sh chk_daemon"
    user daemon
}}
vrrp_script chk_bad {{
    script "{sdir}/ww.sh chk_bad"
    user root
    weight 0
}}
"""
    # chk_bad at weight 0 would put VI_1 in FAULT if it counted as failing: keepalived
    # removes a refused track script, so a stays MASTER
    extra = f"""    notify_master "{sdir}/who.sh inst_master"
    notify_backup "{sdir}/who.sh inst_backup" daemon
    notify_fault "{sdir}/ww.sh inst_fault" root
    notify_stop "{sdir}/open/who.sh inst_stop" root
    notify "{sdir}/who.sh notify"
    track_script {{
        chk_ok
        chk_daemon
        chk_bad
    }}
"""
    conf = vrrp_conf(priority=150, glob=glob, head=head, extra=extra)
    conf += vrrp_conf(priority=150, name="VI_2", vrid=52,
                      vips=("10.9.0.101/24",)).split("}\n", 1)[1]
    conf += f"""vrrp_sync_group G {{
    group {{
        VI_1
        VI_2
    }}
    notify_master "{sdir}/who.sh group_master" daemon
    notify_backup "{sdir}/ww.sh group_backup" root
    notify "{sdir}/who.sh group_notify"
}}
"""
    a = lan.start("a", "director", conf, "-P")
    lan.wait_holder(VIP, "a", hosts=("a",))
    b = lan.start("b", "director", vrrp_conf(priority=100), "-P")
    wait_for(lambda: "Entering BACKUP STATE" in b.output(), 10, what="b as BACKUP")
    wait_line(out, "chk_ok", "nobody chk_ok")
    wait_line(out, "chk_daemon", "daemon chk_daemon")
    wait_line(out, "inst_master", "nobody inst_master")
    wait_line(out, "inst_backup", "daemon inst_backup")
    wait_line(out, "notify", "nobody notify INSTANCE VI_1 MASTER 150")
    wait_line(out, "group_master", "daemon group_master")
    wait_line(out, "group_notify", "nobody group_notify GROUP G MASTER")
    wait_line(out, "fifo", 'nobody INSTANCE "VI_1" MASTER 150')
    log = a.output()
    for tag, why in (("vrrp_script chk_bad", f"{sdir}/ww.sh is writable by others"),
                     ("notify_fault", f"{sdir}/ww.sh is writable by others"),
                     ("notify_stop", f"{sdir}/open is writable by others"),
                     ("VRRP_Group(G) notify_backup", f"{sdir}/ww.sh is writable by others"),
                     ("notify_fifo_script", f"{sdir}/ww.sh is writable by others")):
        assert any(tag in line and "disabled" in line and why in line
                   for line in log.splitlines() if "SECURITY:" in line), (tag, log[-3000:])
    assert "Disabling track script chk_bad" in log
    assert "Entering FAULT STATE" not in log and lan.holders(VIP) == ["a"]
    a.kill(signal.SIGTERM)
    lan.wait_holder(VIP, "b", 10)
    wait_line(out, "fifo", 'INSTANCE "VI_1" STOP 150')
    # the refused ones never ran (a stop has run notify_stop's turn by now)
    assert not any((out / t).exists() for t in ("chk_bad", "inst_fault", "inst_stop",
                                                  "group_backup", "gfifo"))


LVS = """global_defs {{
    script_user nobody
    enable_script_security
    lvs_notify_fifo {sdir}/out/lvs.fifo
    lvs_notify_fifo_script "{sdir}/fifo.sh lvsfifo" daemon
}}
virtual_server 10.9.0.100 80 {{
    delay_loop 0.5
    alpha
    lb_algo rr
    lb_kind NAT
    protocol TCP
    quorum 2
    quorum_up "{sdir}/who.sh quorum_up"
    quorum_down "{sdir}/who.sh quorum_down" daemon
    real_server 10.9.0.11 80 {{
        notify_up "{sdir}/who.sh rs1_up"
        MISC_CHECK {{
            misc_path "{sdir}/who.sh misc1"
        }}
        MISC_CHECK {{
            misc_path "{sdir}/ww.sh misc_bad"
            user root
        }}
    }}
    real_server 10.9.0.12 80 {{
        notify_up "{sdir}/ww.sh rs2_up" root
        notify_down "{sdir}/who.sh rs2_down" daemon
        MISC_CHECK {{
            misc_path "{sdir}/who.sh misc2"
            user daemon
        }}
        MISC_CHECK {{
            misc_path "{sdir}/open/who.sh misc_open"
            user root
        }}
    }}
}}
virtual_server 10.9.0.101 80 {{
    delay_loop 0.5
    alpha
    lb_algo rr
    lb_kind NAT
    protocol TCP
    quorum_up "{sdir}/ww.sh vs2_quorum_up" root
    real_server 10.9.0.13 80 {{
        notify_up "{sdir}/who.sh rs3_up"
        MISC_CHECK {{
            misc_path "{sdir}/who.sh misc3"
        }}
    }}
}}
"""


def test_checker_scripts_obey_the_policy(lan, sdir):
    out = sdir / "out"
    a = lan.start("a", "director", LVS.format(sdir=sdir), "-C", "--dry-run")
    wait_line(out, "misc1", "nobody misc1")
    wait_line(out, "misc2", "daemon misc2")
    wait_line(out, "rs1_up", "nobody rs1_up")
    wait_line(out, "quorum_up", "nobody quorum_up")
    wait_line(out, "rs3_up", "nobody rs3_up")
    wait_for(lambda: any("Gained quorum" in line and "10.9.0.101" in line
                         for line in a.output().splitlines()), 10,
             what="VS 2 gaining its quorum (whose quorum_up script is refused)")
    wait_line(out, "lvsfifo", "daemon RS")  # the LVS FIFO script runs as its own user
    log = a.output()
    for tag, why in (("MISC_CHECK", f"{sdir}/ww.sh is writable by others"),
                     ("MISC_CHECK", f"{sdir}/open is writable by others"),
                     ("notify_up", f"{sdir}/ww.sh is writable by others"),
                     ("quorum_up", f"{sdir}/ww.sh is writable by others")):
        assert any(tag in line and "disabled" in line and why in line
                   for line in log.splitlines() if "SECURITY:" in line), (tag, log[-3000:])
    assert log.count("Disabling MISC_CHECK") == 2
    # the refused MISC_CHECKs are gone, not failing: both real servers came up on the rest
    # (alpha: they start down) and so the quorum of 2 was gained
    # the other checker still decides: misc2 failing takes 10.9.0.12 down (notify_down),
    # and with it VS 1's quorum of 2 (quorum_down, as its own user)
    (sdir / "who.sh").write_text('#!/bin/sh\necho "$(id -un) $*" > "' + str(out) +
                                 '/$1"\n[ "$1" != misc2 ]\n')
    wait_line(out, "rs2_down", "daemon rs2_down")
    wait_line(out, "quorum_down", "daemon quorum_down")
    assert not any((out / t).exists() for t in ("misc_bad", "misc_open", "rs2_up",
                                                  "vs2_quorum_up"))


# -- files the daemon writes ----------------------------------------------------------
@pytest.fixture
def public_dir():
    """A directory like /tmp (root's, 1777): anyone may plant names in it."""
    d = Path(tempfile.mkdtemp(prefix="director-pub-"))
    d.chmod(0o1777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_planted_links_and_foreign_files_are_refused(lan, public_dir):
    victim = public_dir / "victim"
    victim.write_text("precious\n")
    (public_dir / "keepalived.data").symlink_to(victim)  # a link at the dump's name
    foreign = public_dir / "keepalived.stats"
    foreign.write_text("theirs\n")
    os.chown(foreign, NOBODY, NOBODY)
    (public_dir / "vrrp.pid").symlink_to(victim)  # ... at the VRRP child's pid file
    (public_dir / "vrrp.fifo").symlink_to(victim)  # ... at the notify FIFO
    glob = f"    vrrp_notify_fifo {public_dir}/vrrp.fifo\n"
    a = lan.start("a", "director", vrrp_conf(priority=150, glob=glob), "-P", "--dump-dir",
                  str(public_dir), "-r", str(public_dir / "vrrp.pid"))
    lan.wait_holder(VIP, "a", hosts=("a",))  # the rest works: a elects itself
    wait_for(lambda: "VRRP started" in a.output(), 10, what="the VRRP child running")
    a.proc.send_signal(signal.SIGUSR1)
    a.proc.send_signal(signal.SIGUSR2)
    a.proc.send_signal(signal.SIGRTMIN + 2)
    json_path = public_dir / "keepalived.json"
    wait_for(lambda: json_path.exists(), 10, what="keepalived.json")
    wait_for(lambda: "stats dump" in a.output() and "data dump" in a.output(), 10,
             what="the refusals of the data and stats dumps in the log")
    log = a.output()
    assert f"{public_dir}/keepalived.data is a symbolic link; not followed" in log
    assert f"{public_dir}/keepalived.stats is owned by uid {NOBODY}; not replaced" in log
    assert f"pid file {public_dir}/vrrp.pid not written: " in log
    assert f"{public_dir}/vrrp.fifo is a symbolic link; not used as the notify FIFO" in log
    assert victim.read_text() == "precious\n"
    assert (public_dir / "keepalived.data").is_symlink() and foreign.read_text() == "theirs\n"
    # what was written is ours alone, and whole
    assert stat.S_IMODE(os.stat(json_path).st_mode) == 0o600
    assert json.loads(json_path.read_text())[0]["data"]["iname"] == "VI_1"
    assert sorted(p.name for p in public_dir.iterdir()) == sorted(
        ["victim", "keepalived.data", "keepalived.stats", "keepalived.json", "vrrp.pid",
         "vrrp.fifo"])  # no temporary left behind
    # the runtime directory: the live state file swapped for a link is refused too
    state = Path(a.dir) / "vrrp.json"
    wait_for(state.exists, 10, what="vrrp.json in the runtime directory")
    state.unlink()
    state.symlink_to(victim)
    wait_for(lambda: f"{state} is a symbolic link" in a.output(), 10,
             what="the runtime writer refusing the link")
    assert victim.read_text() == "precious\n"
    a.kill(signal.SIGTERM)
    assert (public_dir / "vrrp.pid").is_symlink() or not (public_dir / "vrrp.pid").exists()
    assert victim.read_text() == "precious\n"
