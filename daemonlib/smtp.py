"""Email alerts (`smtp_alert`), as keepalived sends them on VRRP state changes and on
checker events, for the VRRP and the checker children.

The subject and body of each alert are pure (`instance_alert`, `group_alert`,
`real_server_alert`, `virtual_server_alert`, `compose`); `Mailer` delivers them one at a
time with smtplib in a worker thread, so a slow or dead `smtp_server` never holds the
event loop. A failed delivery is logged and forgotten, as keepalived does.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import attrs

from conf.model import GlobalDefs

# email, smtplib, getpass and the thread pool are imported when mail is configured or
# sent: a daemon without smtp_alert does not pay for them at start-up

log = logging.getLogger("director.smtp")


@attrs.frozen
class Alert:
    subject: str
    body: str


@attrs.frozen
class MailSettings:
    server: str
    port: int
    helo: str
    sender: str
    recipients: tuple[str, ...]
    timeout: float
    router_id: str

    @classmethod
    def from_global(cls, g: GlobalDefs, hostname: str | None = None) -> MailSettings | None:
        """None when keepalived would send nothing (no recipient or no server). Defaults
        as keepalived: router_id and HELO name the host name, sender user@host."""
        if not g.notification_email or not g.smtp_server:
            return None
        import getpass

        host = hostname or socket.gethostname()
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "root"
        return cls(server=g.smtp_server, port=g.smtp_port, helo=g.smtp_helo_name or host,
                   sender=g.notification_email_from or f"{user}@{host}",
                   recipients=tuple(g.notification_email),
                   timeout=float(g.smtp_connect_timeout), router_id=g.router_id or host)


def vrrp_enabled(own: bool | None, g: GlobalDefs) -> bool:
    """An instance's or sync group's `smtp_alert`, else global smtp_alert_vrrp, else
    smtp_alert, else off."""
    for flag in (own, g.smtp_alert_vrrp, g.smtp_alert):
        if flag is not None:
            return flag
    return False


def checker_enabled(own: bool | None, g: GlobalDefs, default: bool) -> bool:
    """A virtual or real server's `smtp_alert`, else smtp_alert_checker, else smtp_alert,
    else `default` (keepalived: on for real servers, off for virtual servers)."""
    for flag in (own, g.smtp_alert_checker, g.smtp_alert):
        if flag is not None:
            return flag
    return default


_INSTANCE = {
    "MASTER": ("Entering MASTER state", "=> VRRP Instance is now owning VRRP VIPs <="),
    "BACKUP": ("Entering BACKUP state", "=> VRRP Instance is no longer owning VRRP VIPs <="),
    "FAULT": ("Entering FAULT state", "=> VRRP Instance is no longer owning VRRP VIPs <="),
    "STOP": ("Stopping", "=> VRRP Instance stopping <="),
}
_GROUP = {
    "MASTER": ("Entering MASTER state", "=> All VRRP group instances are now in MASTER state <="),
    "BACKUP": ("Entering BACKUP state", "=> All VRRP group instances are now in BACKUP state <="),
    "FAULT": ("Entering FAULT state", "=> All VRRP group instances are now in FAULT state <="),
    "STOP": ("Stopping", "=> All VRRP group instances are now stopping <="),
}


def instance_alert(router_id: str, name: str, state: str) -> Alert | None:
    if state not in _INSTANCE:
        return None
    what, body = _INSTANCE[state]
    return Alert(f"[{router_id}] VRRP Instance {name} - {what}", body)


def group_alert(router_id: str, name: str, state: str) -> Alert | None:
    if state not in _GROUP:
        return None
    what, body = _GROUP[state]
    return Alert(f"[{router_id}] VRRP Group {name} - {what}", body)


def real_server_alert(router_id: str, rs: str, vs: str, alive: bool, body: str) -> Alert:
    return Alert(f"[{router_id}] Realserver {rs} of virtual server {vs} - "
                 f"{'UP' if alive else 'DOWN'}", body)


def virtual_server_alert(router_id: str, vs: str, up: bool, body: str) -> Alert:
    return Alert(f"[{router_id}] Virtualserver {vs} - {'UP' if up else 'DOWN'}", body)


def envelope_address(address: str) -> str:
    """`Name <a@b>` -> `a@b` (keepalived sends the part in angle brackets)."""
    if address.endswith(">") and "<" in address:
        return address[address.rindex("<") + 1 : -1]
    return address


def compose(s: MailSettings, alert: Alert, now: float | None = None) -> bytes:
    """The message (headers and body, CRLF lines) keepalived's alerts look like."""
    import email.utils

    date = email.utils.formatdate(now if now is not None else time.time(), localtime=True)
    lines = [f"Date: {date}", f"From: {s.sender}", f"Subject: {alert.subject}",
             "X-Mailer: director (keepalived-compatible)",
             "To: " + ",\r\n ".join(s.recipients), "", alert.body, ""]
    return "\r\n".join(lines).encode("utf-8", "replace")


class Mailer:
    """Sends alerts in order from one worker thread; `send` never blocks."""

    def __init__(self, settings: MailSettings) -> None:
        import concurrent.futures

        self.settings = settings
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="smtp")
        self._pending: set[asyncio.Future[None]] = set()
        self._last: dict[tuple[str, str], str] = {}
        self.sent = 0
        self.failed = 0

    def instance_state(self, name: str, state: str) -> None:
        """A VRRP instance entered `state`: mailed once per state entered."""
        self._state_alert(("instance", name), state,
                          instance_alert(self.settings.router_id, name, state))

    def group_state(self, name: str, state: str) -> None:
        self._state_alert(("group", name), state,
                          group_alert(self.settings.router_id, name, state))

    def _state_alert(self, key: tuple[str, str], state: str, alert: Alert | None) -> None:
        if alert is not None and self._last.get(key) != state:
            self._last[key] = state
            self.send(alert)

    def send(self, alert: Alert) -> None:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, self._deliver, alert)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)

    def _deliver(self, alert: Alert) -> None:
        import smtplib

        s = self.settings
        try:
            with smtplib.SMTP(s.server, s.port, local_hostname=s.helo,
                              timeout=s.timeout) as conn:
                conn.helo(s.helo)  # keepalived says HELO, not EHLO
                conn.sendmail(envelope_address(s.sender),
                              [envelope_address(r) for r in s.recipients],
                              compose(s, alert))
        except (OSError, smtplib.SMTPException) as e:
            self.failed += 1
            log.error("Error sending email alert \"%s\" to %s:%d: %s", alert.subject,
                      s.server, s.port, e or type(e).__name__)
            return
        self.sent += 1
        log.info("Email alert \"%s\" sent to %s", alert.subject, ", ".join(s.recipients))

    def counts(self) -> dict[str, int]:
        """Alerts sent, failed and still queued (the status shows them: an alert decided
        against is one that never counts)."""
        return {"sent": self.sent, "failed": self.failed, "queued": len(self._pending)}

    async def drain(self, timeout: float = 2.0) -> None:
        """Give queued alerts (the STOP ones) a moment at shutdown."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=timeout)

    def close(self) -> None:
        """No new alerts; the queued ones are still delivered."""
        self._pool.shutdown(wait=False)
