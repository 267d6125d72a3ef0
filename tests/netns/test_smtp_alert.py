"""Email alerts (`smtp_alert`) on a LAN of namespaces with an SMTP server (aiosmtpd) on
host c: VRRP instance and sync group state changes, real server and quorum changes of
the checker child, and an unreachable smtp_server that must not disturb VRRP.
"""

from __future__ import annotations

import email
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable

from lan import vrrp_conf, wait_for

VIP = "10.9.0.100"
SINK = "10.9.0.3"


def mail_globals(server: str = f"{SINK} 2525", timeout: int = 5) -> str:
    return ("    notification_email {\n        ops@example.com\n"
            "        noc@example.com\n    }\n"
            "    notification_email_from lb@example.com\n"
            f"    smtp_server {server}\n    smtp_helo_name lb-a.example.com\n"
            f"    smtp_connect_timeout {timeout}\n")


def subjects(mails) -> list[str]:
    return [email.message_from_string(m["data"])["Subject"] for m in mails()]


def wait_mail(mails, subject: str, timeout: float = 20.0) -> dict:
    wait_for(lambda: subject in subjects(mails), timeout, what=f"a mail '{subject}' "
             f"(have {subjects(mails)})")
    return next(m for m in mails() if email.message_from_string(m["data"])["Subject"]
                == subject)


def test_vrrp_state_changes_are_mailed(lan):
    mails = lan.smtp_sink("c", 2525)
    group = ("vrrp_sync_group G1 {\n    group {\n        VI_1\n    }\n    smtp_alert\n}\n")
    conf = vrrp_conf(priority=150, name="VI_1", glob=mail_globals(), head=group,
                     extra="    smtp_alert\n")
    a = lan.start("a", "director", conf)
    lan.wait_holder(VIP, "a", hosts=("a",))
    m = wait_mail(mails, "[VI_1_150] VRRP Instance VI_1 - Entering MASTER state")
    msg = email.message_from_string(m["data"])
    assert msg["From"] == "lb@example.com"
    assert [x.strip() for x in msg["To"].split(",")] == ["ops@example.com",
                                                         "noc@example.com"]
    assert msg["Date"]
    assert msg.get_payload().strip() == "=> VRRP Instance is now owning VRRP VIPs <="
    assert m["helo"] == "lb-a.example.com"
    assert m["mail_from"] == "lb@example.com"
    assert m["rcpt_tos"] == ["ops@example.com", "noc@example.com"]
    # the start in BACKUP came first, once; the sync group mails as a group
    assert subjects(mails).count("[VI_1_150] VRRP Instance VI_1 - Entering BACKUP state") == 1
    assert subjects(mails).index("[VI_1_150] VRRP Instance VI_1 - Entering BACKUP state") \
        < subjects(mails).index("[VI_1_150] VRRP Instance VI_1 - Entering MASTER state")
    g = wait_mail(mails, "[VI_1_150] VRRP Group G1 - Entering MASTER state")
    assert "All VRRP group instances are now in MASTER state" in g["data"]
    a.kill(signal.SIGTERM)
    assert a.proc.returncode == 0
    wait_mail(mails, "[VI_1_150] VRRP Instance VI_1 - Stopping")


def test_no_smtp_alert_no_mail(lan):
    mails = lan.smtp_sink("c", 2525)
    a = lan.start("a", "director", vrrp_conf(priority=150, glob=mail_globals()))
    lan.wait_holder(VIP, "a", hosts=("a",))
    b = lan.start("b", "director", vrrp_conf(priority=100, glob=mail_globals(),
                                             extra="    smtp_alert\n"))
    wait_mail(mails, "[VI_1_100] VRRP Instance VI_1 - Entering BACKUP state")
    a.kill(signal.SIGTERM)
    wait_mail(mails, "[VI_1_100] VRRP Instance VI_1 - Entering MASTER state")
    assert not [s for s in subjects(mails) if "VI_1_150" in s]  # a has no smtp_alert
    assert b.proc.poll() is None


def tarpit(lan, host: str, port: int) -> Callable[[], list[str]]:
    """A TCP listener that never says hello: an SMTP client waits out its timeout. The
    returned call gives the addresses of the clients it holds (connected, not gone)."""
    path = os.path.join(lan.dir, f"tarpit-{host}-{port}")
    code = ("import socket, sys, select\ns = socket.socket()\n"
            "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            "s.bind(('', int(sys.argv[1])))\ns.listen(64)\nprint('ready', flush=True)\n"
            "held = {}\n"
            "while True:\n"
            "    for r in select.select([s, *held], [], [])[0]:\n"
            "        if r is s:\n"
            "            c, peer = s.accept()\n            held[c] = peer[0]\n"
            "        elif not r.recv(4096):\n"
            "            del held[r]\n            r.close()\n"
            "    with open(sys.argv[2] + '.new', 'w') as f:\n"
            "        f.write('\\n'.join(held.values()))\n"
            "    import os; os.replace(sys.argv[2] + '.new', sys.argv[2])\n")
    proc = subprocess.Popen(["ip", "netns", "exec", lan.ns[host], sys.executable, "-c", code,
                             str(port), path], stdout=subprocess.PIPE, text=True)
    lan.procs.append(proc)  # killed by lan.close
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"

    def held() -> list[str]:
        try:
            with open(path) as f:
                return f.read().split()
        except FileNotFoundError:
            return []
    return held


def test_unresponsive_smtp_server_is_logged_and_vrrp_keeps_working(lan):
    # every mail hangs for smtp_connect_timeout (15 s) waiting for a greeting; adverts
    # every 0.1 s must go on meanwhile (a blocked loop would let b take over)
    held = tarpit(lan, "c", 2526)
    glob = mail_globals(f"{SINK} 2526", timeout=15)
    a = lan.start("a", "director", vrrp_conf(priority=150, glob=glob,
                                             extra="    smtp_alert\n"))
    lan.wait_holder(VIP, "a", hosts=("a",))
    wait_for(lambda: "10.9.0.1" in held(), 10, what="a's alert stuck in the tarpit")
    b = lan.start("b", "director", vrrp_conf(priority=100, glob=glob,
                                             extra="    smtp_alert\n"),
                  "-P", "--dump-dir", "{dir}")
    wait_for(lambda: "Entering BACKUP STATE" in b.output(), 10, what="b in BACKUP")
    # b hears 20 of a's adverts (each a Master_Down it could let expire) and stays
    # BACKUP, while a's alert is still held unanswered: a's adverts went on meanwhile
    b.quiet(20)
    assert "10.9.0.1" in held(), "a's alert was not stuck all along"
    assert "Error sending email alert" not in a.output(), "the mail did not hang"
    assert lan.holders(VIP) == ["a"]
    assert "Entering MASTER STATE" not in b.output(), "b took over while a was mailing"
    a.kill()
    lan.wait_holder(VIP, "b", 10, hosts=("b",))
    failed = "Error sending email alert \"[VI_1_100] VRRP Instance VI_1 - Entering BACKUP " \
        "state\" to 10.9.0.3:2526: "
    line = wait_for(lambda: next((x for x in b.output().splitlines() if failed in x), None),
                    30, what="b's failed mail logged")
    assert "timed out" in line
    assert b.proc.poll() is None
    assert "Traceback" not in a.output() + b.output()


def test_refused_smtp_server_is_logged(lan):
    a = lan.start("a", "director", vrrp_conf(priority=150, glob=mail_globals(f"{SINK} 25"),
                                             extra="    smtp_alert\n"))
    lan.wait_holder(VIP, "a", hosts=("a",))
    wait_for(lambda: "Error sending email alert \"[VI_1_150] VRRP Instance VI_1 - "
             "Entering MASTER state\" to 10.9.0.3:25: [Errno 111] Connection refused"
             in a.output(), 20, what="the refused mail logged")
    assert a.proc.poll() is None


def _checked(runtime_dir: str, n: int) -> dict | None:
    """The LVS child's status once its one checker has `n` results, all successes."""
    try:
        with open(os.path.join(runtime_dir, "lvs.json")) as f:
            status = json.load(f)
    except FileNotFoundError:
        return None
    (vs,) = status["virtual_servers"]
    ((chk,),) = [rs["checkers"] for rs in vs["real_servers"]]
    history = chk["history"]
    assert "0" not in history, f"a check of the up real server failed: {chk}"
    return status if len(history) >= n else None


def test_checker_events_are_mailed(lan):
    lan.nginx("b", "hello from b")
    mails = lan.smtp_sink("c", 2525)
    conf = (f"global_defs {{\n    router_id LB_C\n{mail_globals()}}}\n"
            "virtual_server 10.9.0.100 80 {\n    delay_loop 1\n    lb_kind NAT\n"
            "    protocol TCP\n    smtp_alert\n"
            "    real_server 10.9.0.2 80 {\n        TCP_CHECK {\n"
            "            connect_timeout 1\n            retry 0\n        }\n    }\n}\n")
    a = lan.start("a", "director", conf, "-C")
    # a success of an already-up real server is no event: the checker child's status
    # (its runtime dir's lvs.json) shows two checks done and not one alert sent or queued
    status = wait_for(lambda: _checked(a.dir, 2), 20,
                      what="two successful checks of 10.9.0.2 in lvs.json")
    assert status["mail"] == {"sent": 0, "failed": 0, "queued": 0}, status["mail"]
    assert mails() == []
    lan.nginx_stop("b")
    rs = wait_mail(mails, "[LB_C] Realserver [10.9.0.2]:tcp:80 of virtual server "
                   "[10.9.0.100]:tcp:80 - DOWN")
    assert "=> TCP CHECK failed on service <=" in rs["data"]
    vs = wait_mail(mails, "[LB_C] Virtualserver [10.9.0.100]:tcp:80 - DOWN")
    assert "Lost quorum" in vs["data"]
    lan.nginx("b", "hello from b")
    rs = wait_mail(mails, "[LB_C] Realserver [10.9.0.2]:tcp:80 of virtual server "
                   "[10.9.0.100]:tcp:80 - UP")
    assert "=> TCP CHECK succeed on service <=" in rs["data"]
    wait_mail(mails, "[LB_C] Virtualserver [10.9.0.100]:tcp:80 - UP")
    assert a.proc.poll() is None
