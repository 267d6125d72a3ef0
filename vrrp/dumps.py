"""The VRRP side's dump files, in keepalived's layouts so that the keepalived exporters
that read them work unchanged: keepalived.data (USR1), keepalived.stats (USR2) and
keepalived.json (the JSON signal).
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from daemonlib import safefile

if TYPE_CHECKING:
    from .daemon import VrrpDaemon
    from .router import Router

STATE_NUM = {"INIT": 0, "BACKUP": 1, "MASTER": 2, "FAULT": 3}
STATS_LAYOUT = (
    ("Advertisements:", (("Received", "advert_rcvd"), ("Sent", "advert_sent"))),
    (None, (("Became master", "become_master"), ("Released master", "release_master"))),
    ("Packet Errors:", (("Length", "packet_len_err"), ("TTL", "ip_ttl_err"),
                        ("Invalid Type", "invalid_type_rcvd"),
                        ("Advertisement Interval", "advert_interval_err"),
                        ("Address List", "addr_list_err"))),
    ("Authentication Errors:", (("Invalid Type", "invalid_authtype"),
                                ("Type Mismatch", "authtype_mismatch"),
                                ("Failure", "auth_failure"))),
    ("Priority Zero:", (("Received", "pri_zero_rcvd"), ("Sent", "pri_zero_sent"))),
)


def stats_text(routers: list[Router]) -> str:
    out = []
    for r in routers:
        out.append(f"VRRP Instance: {r.name}")
        for head, rows in STATS_LAYOUT:
            if head:
                out.append(f"  {head}")
            for label, key in rows:
                out.append(f"{'    ' if head else '  '}{label}: {r.counters.get(key, 0)}")
    return "\n".join(out) + "\n"


def data_text(daemon: VrrpDaemon) -> str:
    out = ["------< VRRP Topology >------"]
    for r in daemon.routers:
        c = r.cfg
        out += [f" VRRP Instance = {r.name}",
                f"   VRRP Version = {c.version}",
                f"   State = {r.fsm.state}",
                f"   Wantstate = {r.fsm.state}",
                f"   Interface = {r.ifname}",
                f"   Using src_ip = {r.src}",
                f"   Virtual Router ID = {r.vrid}",
                f"   Priority = {r.fsm.priority}",
                f"   Effective priority = {r.fsm.priority}",
                f"   Advert interval = {c.advert_int:g} sec",
                f"   Preempt = {'disabled' if c.nopreempt else 'enabled'}",
                f"   Last transition = {r.last_transition:.6f}",
                f"   Virtual IP ({len(r.vips)}):"]
        for v in r.vips:
            scope = v.scope or "global"
            out.append(f"     {v.address}/{v.prefixlen} dev {v.dev or r.vmac or r.ifname} "
                       f"scope {scope}")
    if daemon.groups:
        out.append("------< VRRP Sync groups >------")
        for g in daemon.groups:
            out += [f" VRRP Sync Group = {g.cfg.name}, {g.state}"]
            out += [f"   monitor = {m.name}" for m in g.members]
    return "\n".join(out) + "\n"


def json_data(daemon: VrrpDaemon) -> list[dict[str, object]]:
    items = []
    for r in daemon.routers:
        c = r.cfg
        items.append({
            "data": {"iname": r.name, "dont_track_primary": int(c.dont_track_primary),
                     "vrid": r.vrid, "base_priority": r.base_priority,
                     "effective_priority": r.fsm.priority, "vipset": bool(r.vips),
                     "promote_secondaries": int(c.promote_secondaries),
                     "last_transition": r.last_transition, "adver_int": c.advert_int,
                     "master_adver_int": r.fsm.master_adver_int, "nopreempt": int(c.nopreempt),
                     "preempt_delay": c.preempt_delay, "state": STATE_NUM[r.fsm.state],
                     "wantstate": STATE_NUM[r.fsm.state], "version": c.version,
                     "ifp_ifname": r.ifname, "master_priority": r.fsm.priority,
                     "vips": [f"{v.address}/{v.prefixlen}" for v in r.vips],
                     "evips": [f"{v.address}/{v.prefixlen}"
                               for v in c.virtual_ipaddress_excluded]},
            "stats": r.stats(),
        })
    return items


def write(directory: str, name: str, text: str) -> str:
    """Write atomically (an exporter reading mid-write sees the old file, not half), mode
    0600 as keepalived's since CVE-2018-19045, never through a link planted in /tmp."""
    return safefile.write_atomic(os.path.join(directory, name), text, 0o600)


def write_json(directory: str, daemon: VrrpDaemon) -> str:
    return write(directory, "keepalived.json", json.dumps(json_data(daemon), indent=1))
