"""Email alerts (`smtp_alert`) on a LAN of namespaces with an SMTP server (aiosmtpd) on
host c: VRRP instance and sync group state changes, real server and quorum changes of
the checker child, and an unreachable smtp_server that must not disturb VRRP.
"""

from __future__ import annotations

import email
import signal
import subprocess
import sys
import time

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


def tarpit(lan, host: str, port: int) -> None:
    """A TCP listener that never says hello: an SMTP client waits out its timeout."""
    code = ("import socket, sys, time\ns = socket.socket()\n"
            "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            "s.bind(('', int(sys.argv[1])))\ns.listen(64)\nprint('ready', flush=True)\n"
            "time.sleep(3600)\n")
    proc = subprocess.Popen(["ip", "netns", "exec", lan.ns[host], sys.executable, "-c", code,
                             str(port)], stdout=subprocess.PIPE, text=True)
    lan.procs.append(proc)  # killed by lan.close
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"


def test_unresponsive_smtp_server_is_logged_and_vrrp_keeps_working(lan):
    # every mail hangs for smtp_connect_timeout (15 s) waiting for a greeting; adverts
    # every 0.1 s must go on meanwhile (a blocked loop would let b take over)
    tarpit(lan, "c", 2526)
    glob = mail_globals(f"{SINK} 2526", timeout=15)
    a = lan.start("a", "director", vrrp_conf(priority=150, glob=glob,
                                             extra="    smtp_alert\n"))
    lan.wait_holder(VIP, "a", hosts=("a",))
    b = lan.start("b", "director", vrrp_conf(priority=100, glob=glob,
                                             extra="    smtp_alert\n"))
    wait_for(lambda: "Entering BACKUP STATE" in b.output(), 10, what="b in BACKUP")
    time.sleep(2)  # 20 advert intervals with a's mails stuck
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


def test_checker_events_are_mailed(lan):
    lan.nginx("b", "hello from b")
    mails = lan.smtp_sink("c", 2525)
    conf = (f"global_defs {{\n    router_id LB_C\n{mail_globals()}}}\n"
            "virtual_server 10.9.0.100 80 {\n    delay_loop 1\n    lb_kind NAT\n"
            "    protocol TCP\n    smtp_alert\n"
            "    real_server 10.9.0.2 80 {\n        TCP_CHECK {\n"
            "            connect_timeout 1\n            retry 0\n        }\n    }\n}\n")
    a = lan.start("a", "director", conf, "-C")
    wait_for(lambda: "IPVS" in a.output(), 20, what="the checker child running")
    time.sleep(1.5)  # a success of an already-up real server is no event: no mail
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
