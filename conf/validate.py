"""Cross-object rules, applied once the whole file is read, as keepalived does at
the end of parsing: instance defaults that come from global_defs, VRRP version and
interval rules, tracker references, duplicate VRIDs, sync groups, LVS references.

Keepalived repairs many mistakes with a log line and runs on; where it does, we
warn and repair the same way. Where it drops an object or a reference, we say
error, because the config would not run as written.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import attrs

from .errors import Diagnostics, Pos
from .model import Config, GlobalDefs, TrackRef, VirtualIp, VrrpInstance

_GARP_FROM_GLOBAL = {
    "garp_master_delay": "vrrp_garp_master_delay",
    "garp_master_repeat": "vrrp_garp_master_repeat",
    "garp_master_refresh": "vrrp_garp_master_refresh",
    "garp_master_refresh_repeat": "vrrp_garp_master_refresh_repeat",
    "garp_lower_prio_delay": "vrrp_garp_lower_prio_delay",
    "garp_lower_prio_repeat": "vrrp_garp_lower_prio_repeat",
    "garp_interval": "vrrp_garp_interval",
    "gna_interval": "vrrp_gna_interval",
    "lower_prio_no_advert": "vrrp_lower_prio_no_advert",
    "higher_prio_send_advert": "vrrp_higher_prio_send_advert",
    "skip_check_adv_addr": "vrrp_skip_check_adv_addr",
    "check_unicast_src": "vrrp_check_unicast_src",
}


def finish_instance(name: str, pos: Pos, kw: dict[str, Any], g: GlobalDefs,
                    diags: Diagnostics) -> VrrpInstance | None:
    """Apply keepalived's end-of-parse rules to one instance's keywords."""
    kw = dict(kw)
    explicit_version = kw.pop("_explicit_version", False)
    tag = f"({name})"
    if kw.get("virtual_router_id") is None:
        diags.error(pos, f"{tag} the virtual router id must be set")
        return None
    if not kw.get("interface") and not g.default_interface:
        diags.error(pos, f"{tag} has no interface (and global_defs has no default_interface)")
        return None
    kw.setdefault("interface", g.default_interface)
    for field, gfield in _GARP_FROM_GLOBAL.items():
        if field not in kw and getattr(g, gfield) is not None:
            kw[field] = getattr(g, gfield)
    strict = kw.get("strict_mode", False) or g.vrrp_strict
    kw["strict_mode"] = strict

    # address family, from the VIPs (keepalived: the first one decides)
    vips: list[VirtualIp] = list(kw.get("virtual_ipaddress", ()))
    family = vips[0].family if vips else 0
    if not family:
        for key in ("unicast_src_ip", "mcast_src_ip"):
            if kw.get(key):
                family = 6 if ":" in kw[key] else 4
                break
    family = family or 4
    kept = []
    for vip in vips:
        if vip.family != family:
            diags.warning(vip.pos, f"{tag} address family of {vip.address} does not match "
                                   f"the instance's (IPv{family}); ignored")
        else:
            kept.append(vip)
    kw["virtual_ipaddress"] = tuple(kept)
    kw["family"] = family

    version = kw.get("version", g.vrrp_version)
    if family == 6 and version == 2:
        if explicit_version:
            diags.warning(pos, f"{tag} VRRPv2 does not support IPv6; using version 3")
        version = 3
    kw["version"] = version

    advert = kw.get("advert_int", 1.0)
    if version == 2 and advert != int(advert):
        rounded = max(1, round(advert))
        diags.warning(pos, f"{tag} VRRPv2 advertisement interval {advert:g}s must be an "
                           f"integer; rounded to {rounded}")
        advert = float(rounded)
    elif version == 3:
        cs = round(advert * 100)
        if abs(cs - advert * 100) > 1e-6:
            diags.warning(pos, f"{tag} VRRPv3 advertisement interval {advert:g}s must be in "
                               f"units of 10 ms; rounded to {cs / 100:g}")
        if cs > 4095:
            diags.error(pos, f"{tag} VRRPv3 advertisement interval {advert:g}s is above the "
                             f"maximum 40.95s")
            return None
        advert = max(cs, 1) / 100
    kw["advert_int"] = advert

    auth = kw.get("authentication")
    if auth is not None and (version == 3 or strict):
        why = "VRRP version 3" if version == 3 else "strict mode"
        diags.warning(auth.pos, f"{tag} {why} does not support authentication; ignored")
        kw["authentication"] = None
    elif auth is not None and not auth.auth_pass:
        diags.warning(auth.pos, f"{tag} authentication specified but no password given; "
                                f"ignored")
        kw["authentication"] = None
    elif auth is not None and auth.auth_type == "AH" and kw.get("state") == "MASTER" \
            and kw.get("priority", 100) != 255:
        # keepalived: an AH master needs the peers' sequence number before taking over
        diags.warning(pos, f"{tag} initial state MASTER is incompatible with AH "
                           f"authentication; starting as BACKUP")
        kw["state"] = "BACKUP"
    if strict and kw.get("unicast_peer"):
        diags.error(pos, f"{tag} unicast_peer is not allowed in strict mode (vrrp_strict)")
    if kw.get("state") == "MASTER" and kw.get("priority", 100) != 255 and strict:
        diags.warning(pos, f"{tag} state MASTER must match being address owner in strict "
                           f"mode; starting as BACKUP")
        kw["state"] = "BACKUP"
    if kw.get("nopreempt") and kw.get("state") == "MASTER":
        diags.warning(pos, f"{tag} nopreempt needs state BACKUP (it would take over at start "
                           f"regardless); nopreempt cleared")
        kw["nopreempt"] = False
    if kw.get("nopreempt") and kw.get("preempt_delay"):
        diags.warning(pos, f"{tag} preempt_delay has no effect with nopreempt")
    if kw.get("accept") is None:
        kw["accept"] = not strict
    elif kw["accept"] and strict and version == 2:
        # RFC 3768 has no accept mode; VRRPv3 (RFC 5798) allows it in strict mode too
        diags.warning(pos, f"{tag} accept mode for VRRP version 2 does not comply with "
                           f"RFC 3768; ignored in strict mode")
        kw["accept"] = False
    if kw.get("priority") == 255 and kw.get("nopreempt"):
        diags.warning(pos, f"{tag} nopreempt is incompatible with priority 255; cleared")
        kw["nopreempt"] = False
    if kw.get("unicast_peer"):
        for peer in kw["unicast_peer"]:
            if (":" in peer.address) != (family == 6):
                diags.error(peer.pos, f"{tag} unicast_peer {peer.address} is not IPv{family}")
    return VrrpInstance(name=name, pos=pos, **kw)


def _check_refs(diags: Diagnostics, owner: str, refs: Iterable[TrackRef], known: set[str],
                what: str) -> None:
    for ref in refs:
        if ref.name not in known:
            diags.error(ref.pos, f"({owner}) {what} '{ref.name}' is not defined")


def validate(cfg: Config, diags: Diagnostics, check_host: bool = True) -> None:
    names: dict[str, Pos] = {}
    scripts = {s.name for s in cfg.vrrp_scripts}
    files = {f.name for f in cfg.track_files}
    procs = {p.name for p in cfg.track_processes}
    interfaces = _host_interfaces() if check_host else None

    for kind, objs in (("vrrp_script", cfg.vrrp_scripts), ("track_file", cfg.track_files),
                       ("vrrp_track_process", cfg.track_processes)):
        seen: set[str] = set()
        for o in objs:
            if o.name in seen:
                diags.error(o.pos, f"{kind} '{o.name}' is defined twice")
            seen.add(o.name)

    vrids: dict[tuple[str, int, int], str] = {}
    for inst in cfg.vrrp_instances:
        if inst.name in names:
            diags.error(inst.pos, f"vrrp_instance {inst.name} is already defined at "
                                  f"{names[inst.name]}")
        names[inst.name] = inst.pos
        key = (inst.interface or "", inst.family, inst.virtual_router_id or 0)
        if key in vrids and not inst.unicast_peer:
            diags.error(inst.pos, f"({inst.name}) VRID {key[2]} is already used on interface "
                                  f"{key[0]} by {vrids[key]}")
        vrids.setdefault(key, inst.name)
        _check_refs(diags, inst.name, inst.track_script, scripts, "track_script")
        _check_refs(diags, inst.name, inst.track_file, files, "track_file")
        _check_refs(diags, inst.name, inst.track_process, procs, "track_process")
        if interfaces is not None and not cfg.global_defs.dynamic_interfaces:
            for ifname, pos in [(inst.interface, inst.pos),
                                *[(t.name, t.pos) for t in inst.track_interface]]:
                if ifname and ifname not in interfaces:
                    diags.warning(pos, f"({inst.name}) interface {ifname} doesn't exist")
        if not inst.virtual_ipaddress and not inst.virtual_ipaddress_excluded:
            diags.warning(inst.pos, f"({inst.name}) has no virtual_ipaddress")

    inst_by_name = {i.name: i for i in cfg.vrrp_instances}
    in_group: dict[str, str] = {}
    for sg in cfg.vrrp_sync_groups:
        if not sg.group:
            diags.error(sg.pos, f"vrrp_sync_group {sg.name} has no group members")
        for member in sg.group:
            if member not in inst_by_name:
                diags.error(sg.pos, f"vrrp_sync_group {sg.name}: vrrp_instance {member} "
                                    f"is not defined")
            elif member in in_group:
                diags.error(sg.pos, f"vrrp_instance {member} is already in sync group "
                                    f"{in_group[member]}")
            else:
                in_group[member] = sg.name
        if len(sg.group) == 1:
            diags.warning(sg.pos, f"vrrp_sync_group {sg.name} has only one member")
        _check_refs(diags, sg.name, sg.track_script, scripts, "track_script")
        _check_refs(diags, sg.name, sg.track_file, files, "track_file")
        _check_refs(diags, sg.name, sg.track_process, procs, "track_process")

    for s in cfg.vrrp_scripts:
        if s.script and check_host:
            exe = s.script.argv[0]
            if os.path.isabs(exe) and not os.access(exe, os.X_OK):
                diags.warning(s.script.pos, f"vrrp_script {s.name}: '{exe}' is not an "
                                            f"executable file (yet)")

    sd = cfg.global_defs.lvs_sync_daemon
    if sd and sd.vrrp_instance not in inst_by_name:
        diags.error(sd.pos, f"lvs_sync_daemon: vrrp_instance {sd.vrrp_instance} is not "
                            f"defined")

    groups = {g.name for g in cfg.virtual_server_groups}
    seen_vs: dict[tuple[Any, ...], Pos] = {}
    for vs in cfg.virtual_servers:
        if vs.group is not None and vs.group not in groups:
            diags.error(vs.pos, f"virtual_server group {vs.group} is not defined")
        key = (vs.address, vs.port, vs.fwmark, vs.group, vs.protocol, vs.family)
        if key in seen_vs:
            diags.error(vs.pos, f"virtual_server {vs.key} is already defined at {seen_vs[key]}")
        seen_vs.setdefault(key, vs.pos)
        seen_rs: set[tuple[str, int | None]] = set()
        for rs in vs.real_servers:
            if (rs.address, rs.port) in seen_rs:
                diags.error(rs.pos, f"real_server {rs.address} {rs.port} is already in "
                                    f"virtual_server {vs.key}")
            seen_rs.add((rs.address, rs.port))
            if vs.fwmark is None and vs.group is None and rs.port is None:
                diags.error(rs.pos, f"real_server {rs.address} needs a port")
            if rs.family != vs.family and rs.lvs_method != "TUN":
                diags.error(rs.pos, f"real_server {rs.address} is not of the family of "
                                    f"virtual_server {vs.key}")
            for c in rs.checkers:
                if c.type == "FILE_CHECK" and c.track_file not in files:
                    diags.error(c.pos, f"FILE_CHECK: track_file '{c.track_file}' is not "
                                       f"defined")
        if vs.quorum > max(1, sum(rs.weight for rs in vs.real_servers)) and vs.real_servers:
            diags.warning(vs.pos, f"virtual_server {vs.key}: quorum {vs.quorum} is more than "
                                  f"the sum of the real servers' weights")


def _host_interfaces() -> set[str] | None:
    try:
        return set(os.listdir("/sys/class/net"))
    except OSError:
        return None


def finish(cfg: Config, pending: list[Any], diags: Diagnostics) -> Config:
    instances = []
    for p in pending:
        inst = finish_instance(p.name, p.pos, p.kw, cfg.global_defs, diags)
        if inst is not None:
            instances.append(inst)
    return attrs.evolve(cfg, vrrp_instances=tuple(instances))
