"""The IPVS generic netlink family over pyroute2's asyncio sockets: the rare messages.

The hot path (services, real servers, table dumps) is ipvs_fast.py and the sync daemons
are daemonlib/ipvs_syncd.py; this module serves the timeouts, and is the reference both
encoders are checked against (its `apply`, `read` and `daemon_request` are used by the
tests only).

pyroute2 ships the message layout but leaves the sync-daemon and timeout
attributes as raw bytes, decodes a destination's tunnel port in host order, and
its service helper maps "update" to a delete; so we declare the message here and
build every request ourselves.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

from pyroute2.netlink import nla
from pyroute2.netlink.generic import AsyncGenericNetlinkSocket
from pyroute2.netlink.generic import ipvs as pr_ipvs

from daemonlib.ipvs_syncd import ROLE_STATE, SyncdCommand

from .ipvs_fast import AF, FWD, FWD_NAME, PROTO, PROTO_NAME, TUN_NAME, TUN_TYPE
from .ipvs_fast import ipvs_available as ipvs_available
from .ipvs_table import FLAG_MASK, DestKey, DestSpec, Op, SvcKey, SvcSpec, Table


class IpvsMsg(pr_ipvs.ipvsmsg):
    nla_map = (
        ("IPVS_CMD_ATTR_UNSPEC", "none"),
        ("IPVS_CMD_ATTR_SERVICE", "service"),
        ("IPVS_CMD_ATTR_DEST", "dest"),
        ("IPVS_CMD_ATTR_DAEMON", "daemon"),
        ("IPVS_CMD_ATTR_TIMEOUT_TCP", "uint32"),
        ("IPVS_CMD_ATTR_TIMEOUT_TCP_FIN", "uint32"),
        ("IPVS_CMD_ATTR_TIMEOUT_UDP", "uint32"),
    )

    class dest(pr_ipvs.ipvsmsg.dest):
        nla_map = tuple(
            (name, "be16") if name == "IPVS_DEST_ATTR_TUN_PORT" else (name, kind)
            for name, kind in pr_ipvs.ipvsmsg.dest.nla_map
        )

    class daemon(nla):
        prefix = "IPVS_DAEMON_ATTR_"
        nla_map = (
            ("IPVS_DAEMON_ATTR_UNSPEC", "none"),
            ("IPVS_DAEMON_ATTR_STATE", "uint32"),
            ("IPVS_DAEMON_ATTR_MCAST_IFN", "asciiz"),
            ("IPVS_DAEMON_ATTR_SYNC_ID", "uint32"),
            ("IPVS_DAEMON_ATTR_SYNC_MAXLEN", "uint16"),
            ("IPVS_DAEMON_ATTR_MCAST_GROUP", "ip4addr"),
            ("IPVS_DAEMON_ATTR_MCAST_GROUP6", "ip6addr"),
            ("IPVS_DAEMON_ATTR_MCAST_PORT", "be16"),
            ("IPVS_DAEMON_ATTR_MCAST_TTL", "uint8"),
        )


def _v6_netmask(plen: int) -> str:
    """The kernel reads an IPv6 service's netmask as a host-order prefix length."""
    return socket.inet_ntoa(struct.pack("=I", plen))


def _svc_key_attrs(key: SvcKey) -> list[tuple[str, Any]]:
    af = AF[key.family]
    if key.fwmark:
        return [("IPVS_SVC_ATTR_AF", af), ("IPVS_SVC_ATTR_FWMARK", key.fwmark)]
    return [("IPVS_SVC_ATTR_AF", af), ("IPVS_SVC_ATTR_PROTOCOL", PROTO[key.protocol]),
            ("IPVS_SVC_ATTR_ADDR", key.address), ("IPVS_SVC_ATTR_PORT", key.port)]


def _svc_attrs(key: SvcKey, spec: SvcSpec | None) -> dict[str, Any]:
    attrs = _svc_key_attrs(key)
    if spec is not None:
        netmask = spec.netmask or ("255.255.255.255" if key.family == 4 else "128")
        if key.family == 6:
            netmask = _v6_netmask(int(netmask))
        attrs += [
            ("IPVS_SVC_ATTR_SCHED_NAME", spec.scheduler),
            ("IPVS_SVC_ATTR_FLAGS", {"flags": spec.flags, "mask": FLAG_MASK}),
            ("IPVS_SVC_ATTR_TIMEOUT", spec.timeout),
            ("IPVS_SVC_ATTR_NETMASK", netmask),
        ]
        if spec.pe_name:
            attrs.append(("IPVS_SVC_ATTR_PE_NAME", spec.pe_name))
    return {"attrs": attrs}


def _dest_attrs(family: int, dest: DestKey, spec: DestSpec | None) -> dict[str, Any]:
    dfam = 6 if ":" in dest.address else 4
    attrs: list[tuple[str, Any]] = [
        ("IPVS_DEST_ATTR_ADDR_FAMILY", AF[dfam]),
        ("IPVS_DEST_ATTR_ADDR", dest.address),
        ("IPVS_DEST_ATTR_PORT", dest.port),
    ]
    if spec is not None:
        attrs += [
            ("IPVS_DEST_ATTR_FWD_METHOD", FWD[spec.forward]),
            ("IPVS_DEST_ATTR_WEIGHT", spec.weight),
            ("IPVS_DEST_ATTR_U_THRESH", spec.u_threshold),
            ("IPVS_DEST_ATTR_L_THRESH", spec.l_threshold),
        ]
        if spec.forward == "TUN" and spec.tun_type:
            attrs += [
                ("IPVS_DEST_ATTR_TUN_TYPE", TUN_TYPE[spec.tun_type]),
                ("IPVS_DEST_ATTR_TUN_PORT", spec.tun_port),
                ("IPVS_DEST_ATTR_TUN_FLAGS", spec.tun_flags),
            ]
    return {"attrs": attrs}


_CMDS = {
    ("add", False): pr_ipvs.IPVS_CMD_NEW_SERVICE,
    ("edit", False): pr_ipvs.IPVS_CMD_SET_SERVICE,
    ("del", False): pr_ipvs.IPVS_CMD_DEL_SERVICE,
    ("add", True): pr_ipvs.IPVS_CMD_NEW_DEST,
    ("edit", True): pr_ipvs.IPVS_CMD_SET_DEST,
    ("del", True): pr_ipvs.IPVS_CMD_DEL_DEST,
}


def op_request(op: Op) -> tuple[int, list[tuple[str, Any]]]:
    """The command and attributes of one op, as pyroute2 takes them."""
    svc = _svc_attrs(op.svc, op.spec if op.dest is None else None)
    attrs: list[tuple[str, Any]] = [("IPVS_CMD_ATTR_SERVICE", svc)]
    if op.dest is not None:
        attrs.append(("IPVS_CMD_ATTR_DEST", _dest_attrs(
            op.svc.family, op.dest, op.dspec if op.what != "del" else None)))
    return _CMDS[(op.what, op.dest is not None)], attrs


def daemon_request(cmd: SyncdCommand) -> tuple[int, list[tuple[str, Any]]]:
    """A sync daemon command as pyroute2 takes it: the reference that
    daemonlib/ipvs_syncd's encoder is checked against."""
    p = cmd.params
    attrs: list[tuple[str, Any]] = [("IPVS_DAEMON_ATTR_STATE", ROLE_STATE[cmd.role])]
    if cmd.op == "start":
        attrs += [("IPVS_DAEMON_ATTR_MCAST_IFN", p.ifname),
                  ("IPVS_DAEMON_ATTR_SYNC_ID", p.syncid)]
        if p.maxlen is not None:
            attrs.append(("IPVS_DAEMON_ATTR_SYNC_MAXLEN", p.maxlen))
        if p.group is not None:
            attrs.append(("IPVS_DAEMON_ATTR_MCAST_GROUP6" if ":" in p.group
                          else "IPVS_DAEMON_ATTR_MCAST_GROUP", p.group))
        if p.port is not None:
            attrs.append(("IPVS_DAEMON_ATTR_MCAST_PORT", p.port))
        if p.ttl is not None:
            attrs.append(("IPVS_DAEMON_ATTR_MCAST_TTL", p.ttl))
    kind = pr_ipvs.IPVS_CMD_NEW_DAEMON if cmd.op == "start" else pr_ipvs.IPVS_CMD_DEL_DAEMON
    return kind, [("IPVS_CMD_ATTR_DAEMON", {"attrs": attrs})]


def _attrs(msg: Any) -> dict[str, Any]:
    return dict(msg["attrs"]) if msg else {}


def _stats(a: dict[str, Any], prefix: str) -> dict[str, int]:
    raw = a.get(f"{prefix}STATS64") or a.get(f"{prefix}STATS")
    if not raw:
        return {}
    return {k[len("IPVS_STATS_ATTR_"):].lower(): v for k, v in raw["attrs"]}


class IpvsSocket(AsyncGenericNetlinkSocket):
    async def setup_endpoint(self) -> None:
        if getattr(self.local, "transport", None) is not None:
            return
        await super().setup_endpoint()
        await self.bind(pr_ipvs.GENL_NAME, IpvsMsg)

    def _msg(self, cmd: int, attrs: list[tuple[str, Any]] | None = None) -> IpvsMsg:
        msg = IpvsMsg()
        msg["cmd"] = cmd
        msg["version"] = pr_ipvs.GENL_VERSION
        msg["attrs"] = attrs or []
        return msg

    async def request(self, cmd: int, attrs: list[tuple[str, Any]] | None = None) -> list[Any]:
        await self.setup_endpoint()
        return await self._do_request(self._msg(cmd, attrs))

    async def dump(self, cmd: int, attrs: list[tuple[str, Any]] | None = None) -> list[Any]:
        await self.setup_endpoint()
        return [m async for m in await self._do_dump(self._msg(cmd, attrs))]

    async def apply(self, op: Op) -> None:
        """Send one op; a refusal raises pyroute2's NetlinkError (errno, message)."""
        await self.request(*op_request(op))

    async def read(self) -> tuple[Table, dict[Any, dict[str, int]]]:
        """The whole table, and the kernel's counters per service and destination."""
        table: Table = {}
        stats: dict[Any, dict[str, int]] = {}
        for smsg in await self.dump(pr_ipvs.IPVS_CMD_GET_SERVICE):
            a = _attrs(smsg.get_attr("IPVS_CMD_ATTR_SERVICE"))
            family = 6 if a.get("IPVS_SVC_ATTR_AF") == socket.AF_INET6 else 4
            fwmark = a.get("IPVS_SVC_ATTR_FWMARK", 0)
            if fwmark:
                key = SvcKey(family, "", "", 0, fwmark)
            else:
                addr = a.get("IPVS_SVC_ATTR_ADDR", "")
                key = SvcKey(family, PROTO_NAME.get(a.get("IPVS_SVC_ATTR_PROTOCOL", 0), "?"),
                             socket.inet_ntop(AF[family], socket.inet_pton(AF[family], addr)),
                             a.get("IPVS_SVC_ATTR_PORT", 0))
            flags = a.get("IPVS_SVC_ATTR_FLAGS") or {}
            netmask = a.get("IPVS_SVC_ATTR_NETMASK")
            if family == 6 and netmask:
                netmask = str(struct.unpack("=I", socket.inet_aton(netmask))[0])
            spec = SvcSpec(
                scheduler=a.get("IPVS_SVC_ATTR_SCHED_NAME", ""),
                flags=(flags.get("flags", 0) if isinstance(flags, dict) else 0) & FLAG_MASK,
                timeout=a.get("IPVS_SVC_ATTR_TIMEOUT", 0),
                netmask=netmask,
                pe_name=a.get("IPVS_SVC_ATTR_PE_NAME") or None,
            )
            stats[key] = _stats(a, "IPVS_SVC_ATTR_")
            dests = {}
            for dmsg in await self.dump(pr_ipvs.IPVS_CMD_GET_DEST,
                                        [("IPVS_CMD_ATTR_SERVICE", _svc_attrs(key, None))]):
                d = _attrs(dmsg.get_attr("IPVS_CMD_ATTR_DEST"))
                dkey = DestKey(d["IPVS_DEST_ATTR_ADDR"], d.get("IPVS_DEST_ATTR_PORT", 0))
                fwd = FWD_NAME.get(d.get("IPVS_DEST_ATTR_FWD_METHOD", 0) & 7, "?")
                tun = fwd == "TUN" and d.get("IPVS_DEST_ATTR_TUN_TYPE") is not None
                dests[dkey] = DestSpec(
                    forward=fwd,
                    weight=d.get("IPVS_DEST_ATTR_WEIGHT", 0),
                    u_threshold=d.get("IPVS_DEST_ATTR_U_THRESH", 0),
                    l_threshold=d.get("IPVS_DEST_ATTR_L_THRESH", 0),
                    tun_type=TUN_NAME.get(d.get("IPVS_DEST_ATTR_TUN_TYPE", 0)) if tun else None,
                    tun_port=d.get("IPVS_DEST_ATTR_TUN_PORT", 0) if tun else 0,
                    tun_flags=d.get("IPVS_DEST_ATTR_TUN_FLAGS", 0) if tun else 0,
                )
                st = _stats(d, "IPVS_DEST_ATTR_")
                st["activeconns"] = d.get("IPVS_DEST_ATTR_ACTIVE_CONNS", 0)
                st["inactconns"] = d.get("IPVS_DEST_ATTR_INACT_CONNS", 0)
                stats[(key, dkey)] = st
            table[key] = (spec, dests)
        return table, stats

    async def set_timeouts(self, tcp: int | None, tcpfin: int | None, udp: int | None) -> None:
        attrs = [(name, v) for name, v in (("IPVS_CMD_ATTR_TIMEOUT_TCP", tcp),
                                           ("IPVS_CMD_ATTR_TIMEOUT_TCP_FIN", tcpfin),
                                           ("IPVS_CMD_ATTR_TIMEOUT_UDP", udp)) if v is not None]
        await self.request(pr_ipvs.IPVS_CMD_SET_CONFIG, attrs)

    async def get_timeouts(self) -> dict[str, int]:
        (msg,) = await self.dump(pr_ipvs.IPVS_CMD_GET_CONFIG)
        a = _attrs(msg)
        return {"tcp": a.get("IPVS_CMD_ATTR_TIMEOUT_TCP", 0),
                "tcpfin": a.get("IPVS_CMD_ATTR_TIMEOUT_TCP_FIN", 0),
                "udp": a.get("IPVS_CMD_ATTR_TIMEOUT_UDP", 0)}

    async def daemons(self) -> list[dict[str, Any]]:
        out = []
        for msg in await self.dump(pr_ipvs.IPVS_CMD_GET_DAEMON):
            d = _attrs(msg.get_attr("IPVS_CMD_ATTR_DAEMON"))
            out.append({k[len("IPVS_DAEMON_ATTR_"):].lower(): v for k, v in d.items()})
        return out


async def open_ipvs() -> IpvsSocket | None:
    """A socket bound to the IPVS family, or None when the kernel has no IPVS."""
    from pyroute2.netlink.exceptions import NetlinkError

    sock = IpvsSocket()
    try:
        await sock.setup_endpoint()
        return sock
    except NetlinkError:
        sock.close()
        return None
