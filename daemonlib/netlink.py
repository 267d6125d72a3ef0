"""What every raw netlink request of the daemons shares: the message flags, one attribute
packed, and the messages of a datagram walked (the IPVS fast path, the IPVS sync daemon
commands and the VRRP child's address requests each build their own messages with
`struct`; pyroute2 stays for the rest)."""

from __future__ import annotations

import struct
from collections.abc import Iterator

NETLINK_GENERIC = 16
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x2, 0x4, 0x300
NLM_F_EXCL, NLM_F_CREATE = 0x200, 0x400
NLMSG_ERROR, NLMSG_DONE = 2, 3
# the generic netlink controller: a family's id by its name
GENL_ID_CTRL, CTRL_CMD_GETFAMILY = 0x10, 3
CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME = 1, 2

_NLA = struct.Struct("=HH")
_NLMSG = struct.Struct("=IHHI")  # nlmsghdr without the port id


def attr(kind: int, payload: bytes) -> bytes:
    """One netlink attribute (length, type, payload), padded to 4 bytes."""
    return _NLA.pack(4 + len(payload), kind) + payload + b"\0" * (-len(payload) % 4)


def messages(data: bytes | memoryview) -> Iterator[tuple[int, int, int, int, int]]:
    """(type, flags, seq, offset, end) of each netlink message in one datagram."""
    off, n = 0, len(data)
    unpack = _NLMSG.unpack_from
    while off + 16 <= n:
        length, kind, flags, seq = unpack(data, off)
        if length < 16:
            break
        yield kind, flags, seq, off, min(off + length, n)
        off += (length + 3) & ~3
