"""The kernel edge of IPVS: is the generic netlink family there, and what is in it.

The first piece of the IPVS wrapper: reading the live table into plain records
that the (pure) diff will compare with the desired state. Writing comes with the
reconciler.
"""

from __future__ import annotations

import socket
from typing import Any

import attrs

FWD_METHODS = {0: "NAT", 1: "LOCAL", 2: "TUN", 3: "DR", 4: "BYPASS"}  # IP_VS_CONN_F_*
PROTOCOLS = {socket.IPPROTO_TCP: "TCP", socket.IPPROTO_UDP: "UDP", 132: "SCTP"}


@attrs.frozen
class KernelDest:
    address: str
    port: int
    forward: str
    weight: int
    u_threshold: int = 0
    l_threshold: int = 0


@attrs.frozen
class KernelService:
    family: int  # 4 | 6
    protocol: str | None  # None for fwmark services
    address: str | None
    port: int
    fwmark: int
    scheduler: str
    timeout: int  # persistence, seconds
    flags: int
    dests: tuple[KernelDest, ...] = ()


def ipvs_available() -> bool:
    """True when the kernel answers for the IPVS generic netlink family."""
    from pyroute2.netlink.exceptions import NetlinkError
    from pyroute2.netlink.generic import GenericNetlinkSocket

    sock = GenericNetlinkSocket()
    try:
        sock.bind("IPVS", _ipvs_msg())
        return True
    except NetlinkError:
        return False
    finally:
        sock.close()


def _ipvs_msg() -> Any:
    from pyroute2.netlink.generic.ipvs import ipvsmsg

    return ipvsmsg


def _attrs(msg: Any, nla: str) -> dict[str, Any]:
    inner = msg.get_attr(nla)
    return {k: v for k, v in inner["attrs"]} if inner else {}


def read_table() -> list[KernelService]:
    """Every service in the kernel with its destinations (ours and foreign ones)."""
    from pyroute2 import IPVS, IPVSService

    out = []
    with IPVS() as ipvs:
        for smsg in ipvs.service("dump"):
            a = _attrs(smsg, "IPVS_CMD_ATTR_SERVICE")
            fwmark = a.get("IPVS_SVC_ATTR_FWMARK", 0)
            family = 6 if a.get("IPVS_SVC_ATTR_AF") == socket.AF_INET6 else 4
            svc = IPVSService.from_message(smsg)
            dests = []
            for dmsg in ipvs.dest("dump", service=svc):
                d = _attrs(dmsg, "IPVS_CMD_ATTR_DEST")
                dests.append(KernelDest(
                    address=d["IPVS_DEST_ATTR_ADDR"],
                    port=d.get("IPVS_DEST_ATTR_PORT", 0),
                    forward=FWD_METHODS.get(d.get("IPVS_DEST_ATTR_FWD_METHOD", 0) & 7, "?"),
                    weight=d.get("IPVS_DEST_ATTR_WEIGHT", 0),
                    u_threshold=d.get("IPVS_DEST_ATTR_U_THRESH", 0),
                    l_threshold=d.get("IPVS_DEST_ATTR_L_THRESH", 0),
                ))
            flags = a.get("IPVS_SVC_ATTR_FLAGS", {})
            out.append(KernelService(
                family=family,
                protocol=None if fwmark else PROTOCOLS.get(a.get("IPVS_SVC_ATTR_PROTOCOL", 0)),
                address=None if fwmark else a.get("IPVS_SVC_ATTR_ADDR"),
                port=a.get("IPVS_SVC_ATTR_PORT", 0),
                fwmark=fwmark,
                scheduler=a.get("IPVS_SVC_ATTR_SCHED_NAME", ""),
                timeout=a.get("IPVS_SVC_ATTR_TIMEOUT", 0),
                flags=flags.get("flags", 0) if isinstance(flags, dict) else int(flags or 0),
                dests=tuple(sorted(dests, key=lambda x: (x.address, x.port))),
            ))
    return out
