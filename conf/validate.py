"""Cross-object rules, applied once the whole file is read, as keepalived does at
the end of parsing: instance defaults that come from global_defs, VRRP version and
interval rules, tracker references, duplicate VRIDs, sync groups, LVS references.

Keepalived repairs many mistakes with a log line and runs on; where it does, we
warn and repair the same way. Where it drops an object or a reference, we say
error, because the config would not run as written.
"""

from __future__ import annotations

import os

from . import aot
from .bgp import validate_bgp
from .errors import Diagnostics, Pos
from .model import Config, GlobalDefs, TrackRef, VirtualIp, VirtualServer, VrrpInstance

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

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
        if not (kw.get("unicast_peer") and kw.get("unicast_src_ip")):
            diags.error(pos, f"{tag} has no interface (and global_defs has no "
                             f"default_interface)")
            return None
        # keepalived runs a unicast instance without an interface when it has a source
        # address; its sockets and VIPs then go where that address lives
        if kw.get("use_vmac") is not None:
            diags.error(pos, f"{tag} cannot use VMAC if no interface is specified")
            return None
        diags.warning(pos, f"{tag} no interface: using the one holding unicast_src_ip "
                           f"{kw['unicast_src_ip']}")
    kw.setdefault("interface", g.default_interface)
    for field, gfield in _GARP_FROM_GLOBAL.items():
        if field not in kw and getattr(g, gfield) is not None:
            kw[field] = getattr(g, gfield)
    strict = kw.get("strict_mode", False) or g.vrrp_strict
    kw["strict_mode"] = strict
    if "priority" not in kw:  # keepalived: no priority given, state MASTER is the owner's
        kw["priority"] = 255 if kw.get("state") == "MASTER" else 100

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
            diags.warning(pos, f"{tag} VRRPv3 advertisement interval {advert:g}s is above "
                               f"the maximum; set to 40.95s")
            cs = 4095
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
    owner = kw.get("priority") == 255
    if kw.get("accept") is None:
        kw["accept"] = owner or not strict  # the address owner always accepts
    elif kw["accept"] and strict and version == 2 and not owner:
        # RFC 3768 has no accept mode; VRRPv3 (RFC 5798) allows it in strict mode too
        diags.warning(pos, f"{tag} accept mode for VRRP version 2 does not comply with "
                           f"RFC 3768; ignored in strict mode")
        kw["accept"] = False
    if kw.get("priority") == 255 and kw.get("nopreempt"):
        diags.warning(pos, f"{tag} nopreempt is incompatible with priority 255; cleared")
        kw["nopreempt"] = False
    if kw.get("unicast_peer"):
        peers: list[Any] = []
        for peer in kw["unicast_peer"]:
            if (":" in peer.address) != (family == 6):
                diags.warning(peer.pos, f"{tag} unicast_peer {peer.address} is not IPv{family}; "
                                        f"skipped")
            elif any(p.address == peer.address for p in peers):
                diags.warning(peer.pos, f"{tag} duplicate unicast_peer {peer.address}; skipped")
            else:
                peers.append(peer)
        kw["unicast_peer"] = tuple(peers)
    # keepalived checks a unicast advert's source against the peers only when asked
    # (check_unicast_src here or in global_defs), or when a peer has a TTL range
    kw["check_unicast_src"] = bool(
        kw.get("check_unicast_src") or any(p.min_ttl is not None or p.max_ttl is not None
                                           for p in kw.get("unicast_peer", ())))
    return VrrpInstance(name=name, pos=pos, **kw)


def _known_refs(diags: Diagnostics, owner: str, refs: tuple[TrackRef, ...], known: set[str],
                what: str) -> tuple[TrackRef, ...]:
    """keepalived ignores a tracker it does not know (or removed), with a log line."""
    out = []
    for ref in refs:
        if ref.name not in known:
            diags.warning(ref.pos, f"({owner}) {what} '{ref.name}' is not defined; ignored")
        else:
            out.append(ref)
    return tuple(out) if len(out) != len(refs) else refs


def _tracked(diags: Diagnostics, obj: Any, owner: str, scripts: set[str], files: set[str],
             procs: set[str]) -> Any:
    changes = {}
    for field, known, what in (("track_script", scripts, "track_script"),
                               ("track_file", files, "track_file"),
                               ("track_process", procs, "track_process")):
        refs = getattr(obj, field)
        kept = _known_refs(diags, owner, refs, known, what)
        if kept is not refs:
            changes[field] = kept
    return aot.evolve(obj, **changes) if changes else obj


def validate(cfg: Config, diags: Diagnostics, check_host: bool = True,
             memo: dict[str, Any] | None = None) -> Config:
    """keepalived's end-of-parse checks and repairs; returns the repaired config. `memo`
    (a reloading process's, conf/incremental.py) carries what one run learnt about model
    objects to the next, which may get the same objects back."""
    interfaces = _host_interfaces() if check_host else None

    kept_scripts = []
    for sc in cfg.vrrp_scripts:
        if sc.script is None:
            diags.warning(sc.pos, f"vrrp_script {sc.name} has no 'script'; removed, and "
                                  f"whatever tracks it (as keepalived)")
        else:
            kept_scripts.append(sc)
    cfg = aot.evolve(cfg, vrrp_scripts=tuple(kept_scripts))
    scripts = {s.name for s in cfg.vrrp_scripts}
    files = {f.name for f in cfg.track_files}
    procs = {p.name for p in cfg.track_processes}

    # keepalived finds a tracker by name: the first definition is the one used
    firsts: dict[str, Any] = {}
    for kind, field in (("vrrp_script", "vrrp_scripts"), ("track_file", "track_files"),
                        ("vrrp_track_process", "track_processes")):
        seen: dict[str, Pos] = {}
        kept = []
        for o in getattr(cfg, field):
            if o.name in seen:
                diags.warning(o.pos, f"{kind} '{o.name}' is already defined at "
                                     f"{seen[o.name]}; this one is not used")
                continue
            seen[o.name] = o.pos
            kept.append(o)
        firsts[field] = tuple(kept)
    cfg = aot.evolve(cfg, **firsts)

    vrids: dict[tuple[str, int, int], str] = {}
    instances = []
    for inst in cfg.vrrp_instances:
        key = (inst.interface or "", inst.family, inst.virtual_router_id or 0)
        if key in vrids and not inst.unicast_peer:
            diags.error(inst.pos, f"({inst.name}) VRID {key[2]} is already used on interface "
                                  f"{key[0]} by {vrids[key]}")
        vrids.setdefault(key, inst.name)
        inst = _tracked(diags, inst, inst.name, scripts, files, procs)
        instances.append(inst)
        if interfaces is not None and not cfg.global_defs.dynamic_interfaces:
            for ifname, pos in [(inst.interface, inst.pos),
                                *[(t.name, t.pos) for t in inst.track_interface]]:
                if ifname and ifname not in interfaces:
                    diags.warning(pos, f"({inst.name}) interface {ifname} doesn't exist")
        if not inst.virtual_ipaddress and not inst.virtual_ipaddress_excluded:
            diags.warning(inst.pos, f"({inst.name}) has no virtual_ipaddress")
    cfg = aot.evolve(cfg, vrrp_instances=tuple(instances))

    inst_by_name = {i.name: i for i in cfg.vrrp_instances}
    in_group: dict[str, str] = {}
    groups_kept = []
    for sg in cfg.vrrp_sync_groups:
        members = []
        for member in sg.group:
            if member not in inst_by_name:
                diags.warning(sg.pos, f"vrrp_sync_group {sg.name}: vrrp_instance {member} "
                                      f"is not defined; ignored")
            elif member in in_group:
                diags.warning(sg.pos, f"vrrp_instance {member} is already in sync group "
                                      f"{in_group[member]}; ignored in {sg.name}")
            else:
                in_group[member] = sg.name
                members.append(member)
        if not members:
            diags.warning(sg.pos, f"vrrp_sync_group {sg.name} has no members; removed "
                                  f"(as keepalived)")
            continue
        if len(members) == 1:
            diags.warning(sg.pos, f"vrrp_sync_group {sg.name} has only one member")
        sg = _tracked(diags, sg, sg.name, scripts, files, procs)
        if tuple(members) != sg.group:
            sg = aot.evolve(sg, group=tuple(members))
        groups_kept.append(sg)
    cfg = aot.evolve(cfg, vrrp_sync_groups=tuple(groups_kept))
    cfg = _unweighted_trackers(cfg, diags)

    for sc in cfg.vrrp_scripts:
        if sc.script and check_host:
            exe = sc.script.argv[0]
            if os.path.isabs(exe) and not os.access(exe, os.X_OK):
                diags.warning(sc.script.pos, f"vrrp_script {sc.name}: '{exe}' is not an "
                                             f"executable file (yet)")

    sd = cfg.global_defs.lvs_sync_daemon
    if sd and sd.vrrp_instance is not None and sd.vrrp_instance not in inst_by_name:
        diags.warning(sd.pos, f"lvs_sync_daemon: vrrp_instance {sd.vrrp_instance} is not "
                              f"defined; lvs_sync_daemon cleared (as keepalived)")
        cfg = aot.evolve(cfg, global_defs=aot.evolve(cfg.global_defs,
                                                         lvs_sync_daemon=None))

    cfg = _validate_lvs(cfg, diags, files, memo)
    return validate_bgp(cfg, diags, interfaces)


def _unweighted_trackers(cfg: Config, diags: Diagnostics) -> Config:
    """keepalived (vrrp_complete_instance): an address owner (priority 255), and a sync
    group member unless the group has sync_group_tracking_weight, take no priority from
    trackers. Weighted scripts are dropped; a tracked interface's weight becomes 0 (down
    is a fault; the owner stops tracking it); a file with the default weight 1 becomes
    weight 0, one with another weight is dropped."""
    no_weight = {m for g in cfg.vrrp_sync_groups if not g.sync_group_tracking_weight
                 for m in g.group}
    script_w = {s.name: s.weight for s in cfg.vrrp_scripts}
    file_w = {f.name: f.weight for f in cfg.track_files}
    out = []
    changed = False
    for inst in cfg.vrrp_instances:
        owner = inst.priority == 255
        if not owner and inst.name not in no_weight:
            out.append(inst)
            continue
        why = "address owner" if owner else "sync group"
        tag = f"({inst.name})"
        ifs, scripts, files = [], [], []
        for ref in inst.track_interface:
            if ref.weight:
                diags.warning(ref.pos, f"{tag} ignoring the weight of tracked interface "
                                       f"{ref.name} ({why})" if not owner else
                                       f"{tag} tracked interface {ref.name} ignored ({why})")
                if owner:
                    continue
                ref = aot.evolve(ref, weight=0)
            ifs.append(ref)
        for ref in inst.track_script:
            w = ref.weight if ref.weight is not None else script_w.get(ref.name, 0)
            if w:
                diags.warning(ref.pos, f"{tag} tracked script {ref.name} with a weight is "
                                       f"ignored ({why})")
                continue
            scripts.append(ref)
        for ref in inst.track_file:
            w = ref.weight if ref.weight is not None else file_w.get(ref.name, 1)
            if w == 1:
                diags.warning(ref.pos, f"{tag} tracked file {ref.name}: weight ignored "
                                       f"({why}); specify weight 0")
                ref = aot.evolve(ref, weight=0)
            elif w:
                diags.warning(ref.pos, f"{tag} tracked file {ref.name} with weight {w} is "
                                       f"ignored ({why})")
                continue
            files.append(ref)
        new = aot.evolve(inst, track_interface=tuple(ifs), track_script=tuple(scripts),
                           track_file=tuple(files))
        changed = changed or new != inst
        out.append(new)
    return aot.evolve(cfg, vrrp_instances=tuple(out)) if changed else cfg


def _validate_lvs(cfg: Config, diags: Diagnostics, files: set[str],
                  memo: dict[str, Any] | None = None) -> Config:
    groups = {g.name for g in cfg.virtual_server_groups}
    first: dict[tuple[Any, ...], int] = {}
    servers: list[VirtualServer] = []
    # the virtual servers without a FILE_CHECK (the only checker this looks at) of the
    # last run with `memo`: the same object again needs no look through its servers
    known: dict[int, VirtualServer] = memo.get("no_file_check", {}) if memo else {}
    plain: dict[int, VirtualServer] = {}
    for vs in cfg.virtual_servers:
        if vs.group is not None and vs.group not in groups:
            diags.warning(vs.pos, f"virtual_server group {vs.group} is not defined; the "
                                  f"virtual server is ignored (as keepalived)")
            continue
        if known.get(id(vs)) is vs:
            plain[id(vs)] = vs
        else:
            rss = []
            changed = False
            for rs in vs.real_servers:
                for c in rs.checkers:  # most configs: none to remove, nothing to rebuild
                    if c.type == "FILE_CHECK" and c.track_file not in files:
                        break
                else:
                    rss.append(rs)
                    continue
                cks = []
                for c in rs.checkers:
                    if c.type == "FILE_CHECK" and c.track_file not in files:
                        diags.warning(c.pos, f"FILE_CHECK: track_file '{c.track_file}' is "
                                             f"not defined; the checker is removed (as "
                                             f"keepalived)")
                    else:
                        cks.append(c)
                rss.append(aot.evolve(rs, checkers=tuple(cks)))
                changed = True
            if changed:
                vs = aot.evolve(vs, real_servers=tuple(rss))
            elif memo is not None and all(c.type != "FILE_CHECK" for rs in vs.real_servers
                                          for c in rs.checkers):
                plain[id(vs)] = vs
        key = (vs.address, vs.port, vs.fwmark, vs.group, vs.protocol, vs.family)
        if key in first:
            # keepalived keeps both: the kernel service is made once and the second
            # block's real servers are added to it
            i = first[key]
            old = servers[i]
            have = {(r.address, r.port) for r in old.real_servers}
            extra = tuple(r for r in vs.real_servers if (r.address, r.port) not in have)
            diags.warning(vs.pos, f"virtual_server {vs.key} is already defined at {old.pos}; "
                                  f"its real servers are added to that one, its other "
                                  f"settings ignored")
            servers[i] = aot.evolve(old, real_servers=old.real_servers + extra)
            continue
        first[key] = len(servers)
        servers.append(vs)
    if memo is not None:
        memo["no_file_check"] = plain
    return aot.evolve(cfg, virtual_servers=tuple(servers))


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
    return aot.evolve(cfg, vrrp_instances=tuple(instances))
