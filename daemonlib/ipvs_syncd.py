"""The kernel's IPVS connection-sync daemons (`lvs_sync_daemon`): typed commands and the
generic-netlink edge that carries them out.

Both daemons use it, as keepalived does: the VRRP side when `lvs_sync_daemon` names an
instance (the daemons follow that instance's state: vrrp/syncd.py decides), the LVS side
when it names none (both daemons for the life of the checker). Three small requests
(IPVS_CMD_NEW_DAEMON / DEL_DAEMON and the family lookup), packed with `struct` on a
blocking socket: the VRRP side runs them on its rtnetlink worker thread, the LVS side in
a thread, never on an event loop.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import struct

import attrs

from conf.model import LvsSyncDaemon

from .netlink import (
    CTRL_ATTR_FAMILY_ID,
    CTRL_ATTR_FAMILY_NAME,
    CTRL_CMD_GETFAMILY,
    GENL_ID_CTRL,
    NETLINK_GENERIC,
    NLM_F_ACK,
    NLM_F_REQUEST,
    NLMSG_ERROR,
    messages,
)
from .netlink import attr as _attr

log = logging.getLogger("director.ipvs")

TYPE_CHECKING = False  # (typing itself is not imported at run time)
if TYPE_CHECKING:
    from typing import Literal

    Role = Literal["master", "backup"]
else:
    Role = str
ROLE_STATE = {"master": 1, "backup": 2}  # IP_VS_STATE_MASTER / _BACKUP

IPVS_GENL_VERSION = 1
CMD_NEW_DAEMON, CMD_DEL_DAEMON = 9, 10  # include/uapi/linux/ip_vs.h
CMD_ATTR_DAEMON = 3
(D_STATE, D_MCAST_IFN, D_SYNC_ID, D_SYNC_MAXLEN, D_MCAST_GROUP, D_MCAST_GROUP6,
 D_MCAST_PORT, D_MCAST_TTL) = range(1, 9)
_HDR = struct.Struct("=IHHIIBBH")  # nlmsghdr + genlmsghdr


@attrs.frozen
class SyncdParams:
    """What starting a daemon carries: keepalived's `lvs_sync_daemon` options."""

    ifname: str
    syncid: int = 0
    maxlen: int | None = None
    group: str | None = None
    port: int | None = None
    ttl: int | None = None

    @classmethod
    def of(cls, sd: LvsSyncDaemon, vrid: int | None) -> SyncdParams:
        """`id` defaults to the named instance's VRID, else 0 (as keepalived)."""
        syncid = sd.syncid if sd.syncid is not None else (vrid or 0)
        return cls(ifname=sd.interface, syncid=syncid, maxlen=sd.maxlen, group=sd.group,
                   port=sd.port, ttl=sd.ttl)


@attrs.frozen
class SyncdCommand:
    """Start or stop one of the two daemons. `cleanup`: a daemon that may well not be
    there (a leftover of a crashed run); its absence is not an error."""

    op: Literal["start", "stop"]
    role: Role
    params: SyncdParams
    cleanup: bool = False

    def describe(self, done: bool = False) -> str:
        """'start the master sync daemon on eth0 (syncid 51)'; `done`: 'started ...'."""
        verb = {"start": "started", "stop": "stopped"}[self.op] if done else self.op
        if self.op == "stop":
            return f"{verb} the {self.role} sync daemon"
        p = self.params
        return f"{verb} the {self.role} sync daemon on {p.ifname} (syncid {p.syncid})"


def daemon_attrs(cmd: SyncdCommand) -> bytes:
    """The nested IPVS_CMD_ATTR_DAEMON of the request (pyroute2's layout, byte for byte)."""
    p = cmd.params
    out = _attr(D_STATE, struct.pack("=I", ROLE_STATE[cmd.role]))
    if cmd.op == "start":
        out += _attr(D_MCAST_IFN, p.ifname.encode() + b"\0")
        out += _attr(D_SYNC_ID, struct.pack("=I", p.syncid))
        if p.maxlen is not None:
            out += _attr(D_SYNC_MAXLEN, struct.pack("=H", p.maxlen))
        if p.group is not None:
            six = ":" in p.group
            out += _attr(D_MCAST_GROUP6 if six else D_MCAST_GROUP,
                         socket.inet_pton(socket.AF_INET6 if six else socket.AF_INET, p.group))
        if p.port is not None:
            out += _attr(D_MCAST_PORT, struct.pack(">H", p.port))
        if p.ttl is not None:
            out += _attr(D_MCAST_TTL, struct.pack("=B", p.ttl))
    return _attr(CMD_ATTR_DAEMON, out)


def _request(family: int, cmd: int, version: int, payload: bytes, seq: int) -> bytes:
    return _HDR.pack(_HDR.size + len(payload), family, NLM_F_REQUEST | NLM_F_ACK, seq, 0,
                     cmd, version, 0) + payload


class SyncdSocket:
    """A blocking generic-netlink socket for the daemon commands (start-up, transitions
    and stop only: a few requests in a daemon's life)."""

    def __init__(self, timeout: float = 5.0) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
        self.sock.bind((0, 0))
        self.sock.settimeout(timeout)
        self.seq = 0
        self.family: int | None = None

    def close(self) -> None:
        self.sock.close()

    def _talk(self, family: int, cmd: int, version: int, payload: bytes) -> bytes:
        """Send one request; the answer's payload, or OSError with the kernel's errno."""
        self.seq += 1
        self.sock.send(_request(family, cmd, version, payload, self.seq))
        while True:
            data = self.sock.recv(65536)
            for kind, _flags, seq, off, end in messages(data):
                if seq == self.seq:
                    if kind == NLMSG_ERROR:
                        (code,) = struct.unpack_from("=i", data, off + 16)
                        if code:
                            raise OSError(-code, os.strerror(-code))
                    return data[off + 16 : end]

    def _family(self) -> int:
        if self.family is None:
            try:
                answer = self._talk(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1,
                                    _attr(CTRL_ATTR_FAMILY_NAME, b"IPVS\0"))
            except FileNotFoundError:
                raise OSError(errno.ENOENT, "the kernel has no IPVS (modprobe ip_vs?)") from None
            off = 4  # the genl header
            while off + 4 <= len(answer):
                length, kind = struct.unpack_from("=HH", answer, off)
                if kind & 0x3FFF == CTRL_ATTR_FAMILY_ID:
                    self.family = struct.unpack_from("=H", answer, off + 4)[0]
                    break
                off += (length + 3) & ~3
            else:
                raise OSError(errno.ENOENT, "no IPVS family id in the kernel's answer")
        return self.family

    def send(self, cmd: SyncdCommand) -> None:
        """Carry out `cmd`; OSError with the kernel's errno when it refuses."""
        kind = CMD_NEW_DAEMON if cmd.op == "start" else CMD_DEL_DAEMON
        self._talk(self._family(), kind, IPVS_GENL_VERSION, daemon_attrs(cmd))

    def run(self, cmd: SyncdCommand) -> bool:
        """`send`, logged: what was done, or what was being done when the kernel refused
        (the daemon goes on either way). True when the kernel did it."""
        try:
            self.send(cmd)
        except OSError as e:
            code = e.errno
            if cmd.cleanup and code == errno.ESRCH:
                return False
            if cmd.op == "start" and code == errno.EEXIST:
                log.info("IPVS: %s sync daemon on %s already running", cmd.role,
                         cmd.params.ifname)
                return False
            if cmd.op == "stop" and code == errno.ESRCH:
                log.info("IPVS: %s sync daemon was not running", cmd.role)
                return False
            log.error("IPVS: cannot %s: %s (errno %s)", cmd.describe(), e.strerror or e, code)
            return False
        log.info("IPVS: %s", cmd.describe(done=True))
        return True


def run_commands(cmds: list[SyncdCommand]) -> None:
    """Carry out `cmds` in order on a socket of their own (blocking: off the loop)."""
    if not cmds:
        return
    try:
        sock = SyncdSocket()
    except OSError as e:
        log.error("IPVS: cannot open a generic netlink socket to %s: %s",
                  cmds[0].describe(), e.strerror or e)
        return
    try:
        for cmd in cmds:
            sock.run(cmd)
    finally:
        sock.close()
