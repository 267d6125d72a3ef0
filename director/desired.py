"""The config's virtual servers as IPVS service keys and settings. Pure."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from conf.model import Config, VirtualServer, VsGroupEntry

from .ipvs_table import (
    F_ONEPACKET,
    F_PERSISTENT,
    SCHED_FLAG_BITS,
    SvcKey,
    SvcSpec,
    Table,
)
from .pool import Pool

MAX_RANGE = 65536  # a group range beyond this is a typo, not a pool


def _range(entry: VsGroupEntry) -> Iterable[str]:
    assert entry.address is not None  # an address range, not a fwmark entry
    first = ipaddress.ip_address(entry.address)
    last = ipaddress.ip_address(entry.last or entry.address)
    n = int(last) - int(first) + 1
    for i in range(min(max(n, 1), MAX_RANGE)):
        yield str(first + i)


def service_keys(vs: VirtualServer, cfg: Config) -> list[SvcKey]:
    if vs.fwmark is not None:
        return [SvcKey(vs.family, "", "", 0, vs.fwmark)]
    if vs.group is None:
        return [SvcKey(vs.family, vs.protocol, vs.address or "", vs.port or 0)]
    group = next((g for g in cfg.virtual_server_groups if g.name == vs.group), None)
    keys: list[SvcKey] = []
    for e in group.entries if group else ():
        if e.fwmark is not None:
            keys.append(SvcKey(e.family, "", "", 0, e.fwmark))
        else:
            keys.extend(SvcKey(e.family, vs.protocol, a, e.port or 0) for a in _range(e))
    return keys


def service_spec(vs: VirtualServer, family: int) -> SvcSpec:
    flags = 0
    if vs.persistence_timeout:
        flags |= F_PERSISTENT
    if vs.ops:
        flags |= F_ONEPACKET
    for f in vs.sched_flags:
        flags |= SCHED_FLAG_BITS.get(f, 0)
    netmask = vs.persistence_granularity
    if family == 4:
        netmask = netmask or "255.255.255.255"
        if netmask.isdigit():
            netmask = str(ipaddress.IPv4Network(f"0.0.0.0/{netmask}").netmask)
    else:
        netmask = str(netmask or "128").lstrip("/")
    return SvcSpec(scheduler=vs.lb_algo, flags=flags, timeout=vs.persistence_timeout,
                   netmask=netmask, pe_name=vs.persistence_engine)


def desired_table(cfg: Config, pools: list[Pool],
                  keys: list[list[SvcKey]] | None = None) -> Table:
    """`pools` (and `keys`, their service_keys when known) parallel to
    cfg.virtual_servers."""
    table: Table = {}
    for i, (vs, pool) in enumerate(zip(cfg.virtual_servers, pools, strict=True)):
        dests = pool.dests()
        for key in service_keys(vs, cfg) if keys is None else keys[i]:
            table[key] = (service_spec(vs, key.family), dict(dests))
    return table
