"""Email alerts (daemonlib/smtp.py): keepalived's subjects and bodies, its defaults for
who mails, the message text, and delivery to a real SMTP server (aiosmtpd) on loopback,
never blocking the event loop."""

from __future__ import annotations

import asyncio
import email
import socket

import attrs
import pytest

from conf.model import GlobalDefs
from daemonlib import smtp

G = GlobalDefs(router_id="LB1", notification_email=("ops@example.com", "noc@example.com"),
               notification_email_from="Load Balancer <lb@example.com>",
               smtp_server="127.0.0.1", smtp_helo_name="lb1.example.com")


def test_settings_need_recipients_and_a_server_and_default_as_keepalived():
    assert smtp.MailSettings.from_global(GlobalDefs(smtp_server="10.0.0.1")) is None
    assert smtp.MailSettings.from_global(GlobalDefs(notification_email=("a@b",))) is None
    s = smtp.MailSettings.from_global(
        GlobalDefs(notification_email=("a@b",), smtp_server="10.0.0.1"), hostname="node7")
    assert s is not None
    assert (s.router_id, s.helo, s.port, s.timeout) == ("node7", "node7", 25, 30.0)
    assert s.sender.endswith("@node7")


def test_who_mails_by_default():
    unset = GlobalDefs()
    assert not smtp.vrrp_enabled(None, unset)
    assert smtp.vrrp_enabled(True, unset)
    assert smtp.vrrp_enabled(None, GlobalDefs(smtp_alert=True))
    assert not smtp.vrrp_enabled(None, GlobalDefs(smtp_alert=True, smtp_alert_vrrp=False))
    assert not smtp.vrrp_enabled(False, GlobalDefs(smtp_alert_vrrp=True))
    # real servers mail unless told not to (keepalived's backward compatibility)
    assert smtp.checker_enabled(None, unset, default=True)
    assert not smtp.checker_enabled(None, unset, default=False)
    assert not smtp.checker_enabled(None, GlobalDefs(smtp_alert=False), default=True)
    assert smtp.checker_enabled(None, GlobalDefs(smtp_alert=False, smtp_alert_checker=True),
                                default=False)


def test_subjects_and_bodies():
    a = smtp.instance_alert("LB1", "VI_1", "MASTER")
    assert a == smtp.Alert("[LB1] VRRP Instance VI_1 - Entering MASTER state",
                           "=> VRRP Instance is now owning VRRP VIPs <=")
    assert smtp.instance_alert("LB1", "VI_1", "STOP").subject.endswith("- Stopping")
    assert smtp.instance_alert("LB1", "VI_1", "INIT") is None
    assert smtp.group_alert("LB1", "G", "FAULT").body == \
        "=> All VRRP group instances are now in FAULT state <="
    assert smtp.real_server_alert("LB1", "[10.0.0.2]:tcp:80", "[10.0.0.100]:tcp:80", False,
                                  "x").subject == \
        "[LB1] Realserver [10.0.0.2]:tcp:80 of virtual server [10.0.0.100]:tcp:80 - DOWN"
    assert smtp.virtual_server_alert("LB1", "[10.0.0.100]:tcp:80", True, "x").subject == \
        "[LB1] Virtualserver [10.0.0.100]:tcp:80 - UP"


def test_message_text():
    s = smtp.MailSettings.from_global(G)
    assert s is not None
    raw = smtp.compose(s, smtp.Alert("[LB1] subject", "=> body <="), now=0.0)
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    msg = email.message_from_bytes(raw)
    assert msg["From"] == "Load Balancer <lb@example.com>"
    assert msg["Subject"] == "[LB1] subject"
    assert [x.strip() for x in msg["To"].split(",")] == ["ops@example.com", "noc@example.com"]
    assert email.utils.parsedate_to_datetime(msg["Date"]).timestamp() == 0
    assert msg.get_payload().strip() == "=> body <="
    assert smtp.envelope_address("Load Balancer <lb@example.com>") == "lb@example.com"
    assert smtp.envelope_address("lb@example.com") == "lb@example.com"


@pytest.fixture
def sink():
    """aiosmtpd on a loopback port in its own thread: (port, received envelopes)."""
    controller_mod = pytest.importorskip("aiosmtpd.controller",
                                         reason="aiosmtpd: pip install -e '.[test]'")
    got: list[tuple[str, str, list[str], bytes]] = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            got.append((session.host_name, envelope.mail_from, envelope.rcpt_tos,
                        envelope.content))
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    c = controller_mod.Controller(Handler(), hostname="127.0.0.1", port=port)
    c.start()
    try:
        yield port, got
    finally:
        c.stop()


def test_mailer_delivers_in_order_and_once_per_state(sink):
    port, got = sink
    s = attrs.evolve(smtp.MailSettings.from_global(G), port=port)

    async def run() -> smtp.Mailer:
        m = smtp.Mailer(s)
        for state in ("BACKUP", "BACKUP", "MASTER", "INIT"):
            m.instance_state("VI_1", state)
        m.group_state("G1", "MASTER")
        await m.drain(10)
        m.close()
        return m

    m = asyncio.run(run())
    assert m.sent == 3 and m.failed == 0
    subjects = [email.message_from_bytes(x[3])["Subject"] for x in got]
    assert subjects == ["[LB1] VRRP Instance VI_1 - Entering BACKUP state",
                        "[LB1] VRRP Instance VI_1 - Entering MASTER state",
                        "[LB1] VRRP Group G1 - Entering MASTER state"]
    helo, sender, rcpt, _ = got[0]
    assert (helo, sender, rcpt) == ("lb1.example.com", "lb@example.com",
                                    ["ops@example.com", "noc@example.com"])


def test_a_hanging_server_does_not_block_the_loop():
    with socket.socket() as tarpit:  # accepts (backlog), never greets
        tarpit.bind(("127.0.0.1", 0))
        tarpit.listen(8)
        s = attrs.evolve(smtp.MailSettings.from_global(G), port=tarpit.getsockname()[1],
                         timeout=2.0)

        async def run() -> tuple[int, bool, smtp.Mailer]:
            m = smtp.Mailer(s)
            m.send(smtp.Alert("s", "b"))
            ticks = 0
            for _ in range(5):  # the loop keeps turning while the mail hangs
                await asyncio.sleep(0.01)
                ticks += 1
            in_flight = bool(m._pending) and m.failed == 0
            await m.drain(10)
            m.close()
            return ticks, in_flight, m

        ticks, in_flight, m = asyncio.run(run())
        assert ticks == 5 and in_flight
        assert m.failed == 1 and m.sent == 0  # the timeout, logged and counted
