"""The one attrs model of a keepalived configuration, read by every other part.

Field names are keepalived's keywords (after alias resolution); defaults are
keepalived's. Objects are frozen: a reload builds a new model and the runtime
compares the two. Each object keeps `pos`, the file:line where it was declared.

A start does not run these decorators: the start-up bundle serves this module with its
classes written out as attrs would make them (director/aot_build.py, conf/aot.py), while
this source is unchanged. Code on the start path uses conf.aot's `evolve`/`fields`
rather than attrs'; `attrs.fields`/`has`/`asdict` work on both kinds of class.
"""

from __future__ import annotations

import attrs

from . import aot
from .errors import NOWHERE, Pos

# (no runtime typing: the start-up bundle serves this module with its classes written
# out ahead of time, conf/aot.py, and the start path imports neither attrs nor typing)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    T = TypeVar("T")

# every class spells out attrs.frozen(kw_only=True, weakref_slot=False): type checkers see
# through it, not through an alias. No __weakref__ slot: nothing refers to a model object
# weakly, and `maker` needs the plain layout.


@attrs.frozen(kw_only=True, weakref_slot=False)
class Script:
    """A command line as written, and its argv split as keepalived splits it; `user` and
    `group`: who runs it when the line or its block says (else `script_user`)."""

    cmd: str
    argv: tuple[str, ...]
    user: str | None = None
    group: str | None = None
    pos: Pos = NOWHERE


# -- global_defs ---------------------------------------------------------------
@attrs.frozen(kw_only=True, weakref_slot=False)
class SslConfig:
    password: str | None = None
    ca: str | None = None
    certificate: str | None = None
    key: str | None = None
    pos: Pos = NOWHERE


@attrs.frozen(kw_only=True, weakref_slot=False)
class LvsSyncDaemon:
    interface: str
    vrrp_instance: str | None = None  # None: the LVS side runs both daemons
    syncid: int | None = None
    maxlen: int | None = None
    port: int | None = None
    ttl: int | None = None
    group: str | None = None
    pos: Pos = NOWHERE


@attrs.frozen(kw_only=True, weakref_slot=False)
class GlobalDefs:
    router_id: str | None = None
    notification_email: tuple[str, ...] = ()
    notification_email_from: str | None = None
    smtp_server: str | None = None
    smtp_port: int = 25
    smtp_helo_name: str | None = None
    smtp_connect_timeout: int = 30
    smtp_alert: bool | None = None  # None: unset (real servers then default to on)
    smtp_alert_vrrp: bool | None = None
    smtp_alert_checker: bool | None = None
    enable_script_security: bool = False
    script_user: str | None = None
    script_group: str | None = None
    default_interface: str | None = None
    dynamic_interfaces: bool = False
    vrrp_version: int = 2
    vrrp_strict: bool = False
    vrrp_skip_check_adv_addr: bool = False
    vrrp_check_unicast_src: bool = False
    vrrp_mcast_group4: str = "224.0.0.18"
    vrrp_mcast_group6: str = "ff02::12"
    vrrp_garp_master_delay: int = 5
    vrrp_garp_master_repeat: int = 5
    vrrp_garp_lower_prio_delay: int | None = None
    vrrp_garp_lower_prio_repeat: int | None = None
    vrrp_garp_master_refresh: int = 0
    vrrp_garp_master_refresh_repeat: int = 1
    vrrp_garp_interval: float = 0.0
    vrrp_gna_interval: float = 0.0
    vrrp_min_garp: bool = False
    vrrp_lower_prio_no_advert: bool = False
    vrrp_higher_prio_send_advert: bool = False
    vrrp_startup_delay: float = 0.0
    vrrp_priority: int | None = None  # nice value of the VRRP child
    checker_priority: int | None = None
    vrrp_rt_priority: int | None = None  # SCHED_RR priority
    checker_rt_priority: int | None = None
    vrrp_rlimit_rttime: int | None = None  # microseconds; None: keepalived's 10000
    checker_rlimit_rttime: int | None = None
    vrrp_no_swap: bool = False
    checker_no_swap: bool = False
    vrrp_cpu_affinity: tuple[int, ...] = ()
    checker_cpu_affinity: tuple[int, ...] = ()
    max_auto_priority: int | None = None
    vrrp_notify_fifo: str | None = None
    vrrp_notify_fifo_script: Script | None = None
    lvs_notify_fifo: str | None = None
    lvs_notify_fifo_script: Script | None = None
    notify_fifo: str | None = None
    notify_fifo_script: Script | None = None
    lvs_sync_daemon: LvsSyncDaemon | None = None
    lvs_flush: bool = False
    lvs_flush_on_stop: str = "OFF"  # OFF | ON | VS
    lvs_timeout_tcp: int | None = None
    lvs_timeout_tcpfin: int | None = None
    lvs_timeout_udp: int | None = None
    checker_log_all_failures: bool = False
    # the VIP drop rules' nftables table (None: only when an instance needs it, then
    # keepalived's default name); vrrp_iptables maps here, as keepalived built without
    # iptables does
    nftables: str | None = None
    nftables_priority: int = -1
    nftables_ifindex: bool = False
    nftables_counters: bool = False
    pos: Pos = NOWHERE


# -- trackers -----------------------------------------------------------------
@attrs.frozen(kw_only=True, weakref_slot=False)
class VrrpScript:
    name: str
    script: Script | None = None
    interval: float = 1
    timeout: float | None = None  # None: the interval, as keepalived
    weight: int = 0
    weight_reverse: bool = False
    rise: int = 1
    fall: int = 1
    user: str | None = None
    group: str | None = None
    init_fail: bool = False
    pos: Pos = NOWHERE


@attrs.frozen(kw_only=True, weakref_slot=False)
class TrackFileDef:
    name: str
    file: str | None = None
    weight: int = 1
    weight_reverse: bool = False
    init_file: bool = False
    init_value: int = 0
    init_overwrite: bool = False
    pos: Pos = NOWHERE


@attrs.frozen(kw_only=True, weakref_slot=False)
class TrackProcess:
    name: str
    process: str | None = None
    param_match: str | None = None  # None: exact | initial | partial
    parameters: str | None = None
    weight: int = 0
    weight_reverse: bool = False
    quorum: int = 1
    quorum_max: int | None = None
    delay: float = 0.0
    terminate_delay: float = 0.0
    fork_delay: float = 0.0
    full_command: bool = False
    pos: Pos = NOWHERE


@attrs.frozen(kw_only=True, weakref_slot=False)
class TrackRef:
    """A tracker named in a track_* block, with a weight override if one was given."""

    name: str
    weight: int | None = None
    reverse: bool = False
    pos: Pos = NOWHERE


# -- VRRP ---------------------------------------------------------------------
@attrs.frozen(kw_only=True, weakref_slot=False)
class VirtualIp:
    address: str  # without prefix
    prefixlen: int
    family: int  # 4 | 6
    broadcast: str | None = None
    dev: str | None = None
    scope: str | None = None
    label: str | None = None
    peer: str | None = None
    no_track: bool = False
    preferred_lft: int | None = None
    home: bool = False
    nodad: bool = False
    noprefixroute: bool = False
    autojoin: bool = False
    track_group: str | None = None
    pos: Pos = NOWHERE


@attrs.frozen(kw_only=True, weakref_slot=False)
class NextHop:
    """One path of a multipath route (`nexthop via A dev X weight N`)."""

    via: str | None = None
    dev: str | None = None
    weight: int = 1
    onlink: bool = False


@attrs.frozen(kw_only=True, weakref_slot=False)
class VirtualRoute:
    dst: str  # "default" or CIDR
    family: int
    src: str | None = None
    via: str | None = None
    dev: str | None = None
    table: str | None = None
    metric: int | None = None
    scope: str | None = None
    proto: str | None = None
    type: str | None = None
    onlink: bool = False
    blackhole: bool = False
    no_track: bool = False
    options: tuple[tuple[str, str], ...] = ()
    nexthops: tuple[NextHop, ...] = ()  # multipath (keepalived's `nexthop`, old `or`)
    pos: Pos = NOWHERE


@attrs.frozen(kw_only=True, weakref_slot=False)
class VirtualRule:
    family: int
    src: str | None = None  # from
    dst: str | None = None  # to
    table: str | None = None
    priority: int | None = None
    fwmark: str | None = None
    iif: str | None = None
    oif: str | None = None
    action: str | None = None
    no_track: bool = False
    options: tuple[tuple[str, str], ...] = ()
    pos: Pos = NOWHERE


@attrs.frozen(kw_only=True, weakref_slot=False)
class UnicastPeer:
    address: str
    min_ttl: int | None = None
    max_ttl: int | None = None
    pos: Pos = NOWHERE


@attrs.frozen(kw_only=True, weakref_slot=False)
class Authentication:
    auth_type: str  # PASS | AH
    auth_pass: str = ""
    pos: Pos = NOWHERE


@attrs.frozen(kw_only=True, weakref_slot=False)
class Notify:
    """The notify scripts of an instance or sync group."""

    notify: Script | None = None
    notify_master: Script | None = None
    notify_backup: Script | None = None
    notify_fault: Script | None = None
    notify_stop: Script | None = None
    notify_deleted: Script | None = None
    notify_master_rx_lower_pri: Script | None = None
    notify_fifo: str | None = None


@attrs.frozen(kw_only=True, weakref_slot=False)
class VrrpInstance:
    name: str
    state: str | None = None  # MASTER | BACKUP | None (keepalived: BACKUP)
    interface: str | None = None
    use_vmac: str | None = None  # interface name ("" = default vrrp.VRID)
    vmac_xmit_base: bool = False
    dont_track_primary: bool = False
    track_interface: tuple[TrackRef, ...] = ()
    track_script: tuple[TrackRef, ...] = ()
    track_file: tuple[TrackRef, ...] = ()
    track_process: tuple[TrackRef, ...] = ()
    mcast_src_ip: str | None = None
    unicast_src_ip: str | None = None
    unicast_peer: tuple[UnicastPeer, ...] = ()
    unicast_ttl: int = 255
    unicast_fault_no_peer: bool = False
    check_unicast_src: bool = False
    version: int = 2
    virtual_router_id: int | None = None
    priority: int = 100
    advert_int: float = 1.0
    authentication: Authentication | None = None
    virtual_ipaddress: tuple[VirtualIp, ...] = ()
    virtual_ipaddress_excluded: tuple[VirtualIp, ...] = ()
    virtual_routes: tuple[VirtualRoute, ...] = ()
    virtual_rules: tuple[VirtualRule, ...] = ()
    nopreempt: bool = False
    preempt_delay: float = 0.0
    garp_master_delay: int = 5
    garp_master_repeat: int = 5
    garp_master_refresh: int = 0
    garp_master_refresh_repeat: int = 1
    garp_lower_prio_delay: int | None = None
    garp_lower_prio_repeat: int | None = None
    garp_interval: float = 0.0
    gna_interval: float = 0.0
    lower_prio_no_advert: bool = False
    higher_prio_send_advert: bool = False
    accept: bool | None = None  # None: keepalived's default (off in strict mode)
    strict_mode: bool = False
    skip_check_adv_addr: bool = False
    promote_secondaries: bool = False
    smtp_alert: bool | None = None  # None: global smtp_alert_vrrp / smtp_alert
    notify: Notify = Notify()
    family: int = 4  # of the VIPs (and so of the adverts)
    pos: Pos = NOWHERE


@attrs.frozen(kw_only=True, weakref_slot=False)
class VrrpSyncGroup:
    name: str
    group: tuple[str, ...] = ()
    track_interface: tuple[TrackRef, ...] = ()
    track_script: tuple[TrackRef, ...] = ()
    track_file: tuple[TrackRef, ...] = ()
    track_process: tuple[TrackRef, ...] = ()
    notify: Notify = Notify()
    smtp_alert: bool | None = None
    sync_group_tracking_weight: bool = False
    pos: Pos = NOWHERE


# -- checkers -----------------------------------------------------------------
@attrs.frozen(kw_only=True, weakref_slot=False)
class Url:
    path: str = "/"
    digest: str | None = None
    status_code: tuple[tuple[int, int], ...] = ()  # ranges; () = any 2xx
    virtualhost: str | None = None
    regex: str | None = None
    regex_no_match: bool = False
    pos: Pos = NOWHERE


@attrs.frozen(kw_only=True, weakref_slot=False)
class Checker:
    """One checker block of a real server; `type` is the block keyword."""

    type: str  # TCP_CHECK HTTP_GET SSL_GET MISC_CHECK SMTP_CHECK DNS_CHECK ...
    connect_ip: str | None = None
    connect_port: int | None = None
    bindto: str | None = None
    bind_port: int | None = None
    bind_if: str | None = None
    fwmark: int | None = None
    connect_timeout: float | None = None  # None: the real/virtual server's, else 5
    retry: int | None = None  # None: inherited; keepalived: 1 (3 for MISC)
    delay_before_retry: float | None = None
    delay_loop: float | None = None
    warmup: float | None = None
    alpha: bool | None = None
    log_all_failures: bool = False
    # HTTP_GET / SSL_GET
    urls: tuple[Url, ...] = ()
    http_protocol: str = "1.0"
    virtualhost: str | None = None
    enable_sni: bool = False
    sni_name: str | None = None
    fast_recovery: bool = False
    # MISC_CHECK
    misc_path: Script | None = None
    misc_timeout: float | None = None
    misc_dynamic: bool = False
    user: str | None = None
    group: str | None = None
    # SMTP_CHECK
    helo_name: str = "smtpchecker.keepalived.org"
    # DNS_CHECK
    dns_type: str = "SOA"
    dns_name: str = "."
    # UDP_CHECK
    payload: bytes | None = None
    require_reply: bytes | None = None
    require_reply_mask: bytes | None = None  # bits of X (wildcard) nibbles
    min_reply_length: int | None = None
    max_reply_length: int | None = None
    # FILE_CHECK
    track_file: str | None = None
    weight: int | None = None
    weight_reverse: bool = False
    pos: Pos = NOWHERE


# -- BGP (a director extension: keepalived refuses these keywords; conf/BGP.md) ----
@attrs.frozen(kw_only=True, weakref_slot=False)
class BgpNeighbor:
    address: str
    family: int  # 4 | 6
    remote_as: int
    hold_time: int = 9
    bfd: bool = False  # where the engine offers it (exabgp: no)
    local_address: str | None = None
    port: int = 179
    passive: bool = False
    pos: Pos = NOWHERE


@attrs.frozen(kw_only=True, weakref_slot=False)
class BgpSpeaker:
    router_id: str
    local_as: int
    neighbors: tuple[BgpNeighbor, ...] = ()
    engine: str = "exabgp"
    withdraw_grace: float = 1.0  # at stop: seconds between the confirmed withdrawal and exit
    pos: Pos = NOWHERE


@attrs.frozen(kw_only=True, weakref_slot=False)
class BgpAnnounce:
    """`bgp_announce [dev DEV]` of a virtual server: its address /32 (/128) on DEV and
    announced while the pool has quorum."""

    dev: str = "lo"
    pos: Pos = NOWHERE


# -- LVS ----------------------------------------------------------------------
@attrs.frozen(kw_only=True, weakref_slot=False)
class VsGroupEntry:
    """An address (or range / CIDR) and port, or a fwmark, of a virtual_server_group."""

    address: str | None = None  # first address
    last: str | None = None  # last address of a range (same family)
    port: int | None = None
    fwmark: int | None = None
    family: int = 4
    pos: Pos = NOWHERE


@attrs.frozen(kw_only=True, weakref_slot=False)
class VirtualServerGroup:
    name: str
    entries: tuple[VsGroupEntry, ...] = ()
    pos: Pos = NOWHERE


@attrs.frozen(kw_only=True, weakref_slot=False)
class RealServer:
    address: str
    port: int | None = None
    family: int = 4
    weight: int = 1
    lvs_method: str | None = None  # None: the virtual server's lb_kind
    tunnel_type: str | None = None
    inhibit_on_failure: bool | None = None
    notify_up: Script | None = None
    notify_down: Script | None = None
    uthreshold: int | None = None
    lthreshold: int | None = None
    alpha: bool | None = None
    retry: int | None = None
    delay_before_retry: float | None = None
    delay_loop: float | None = None
    connect_timeout: float | None = None
    warmup: float | None = None
    virtualhost: str | None = None
    smtp_alert: bool | None = None
    checkers: tuple[Checker, ...] = ()
    pos: Pos = NOWHERE


@attrs.frozen(kw_only=True, weakref_slot=False)
class SorryServer:
    address: str
    port: int | None = None
    family: int = 4
    pos: Pos = NOWHERE


@attrs.frozen(kw_only=True, weakref_slot=False)
class VirtualServer:
    address: str | None = None  # IP form
    port: int | None = None
    fwmark: int | None = None  # fwmark form
    group: str | None = None  # group form
    family: int = 4
    protocol: str = "TCP"
    delay_loop: float = 60.0
    lb_algo: str = "wlc"
    sched_flags: tuple[str, ...] = ()
    lb_kind: str = "NAT"
    tunnel_type: str | None = None
    persistence_timeout: int = 0
    persistence_granularity: str | None = None
    persistence_engine: str | None = None
    ops: bool = False
    quorum: int = 1
    hysteresis: int = 0
    quorum_up: Script | None = None
    quorum_down: Script | None = None
    sorry_server: SorryServer | None = None
    sorry_server_inhibit: bool = False
    sorry_server_lvs_method: str | None = None
    inhibit_on_failure: bool = False
    alpha: bool = False
    omega: bool = False
    ha_suspend: bool = False
    weight: int = 1  # the default weight of its real servers
    virtualhost: str | None = None
    retry: int | None = None
    delay_before_retry: float | None = None
    connect_timeout: float | None = None
    warmup: float | None = None
    smtp_alert: bool | None = None
    bgp_announce: BgpAnnounce | None = None  # director extension
    real_servers: tuple[RealServer, ...] = ()
    pos: Pos = NOWHERE

    @property
    def key(self) -> str:
        """keepalived's way of naming a virtual server in logs and FIFO lines."""
        if self.group is not None:
            return f"[{self.group}]:{self.protocol.lower()}"
        if self.fwmark is not None:
            return f"FWM {self.fwmark}"
        return f"[{self.address}]:{self.protocol.lower()}:{self.port}"


@attrs.frozen(kw_only=True, weakref_slot=False)
class Config:
    global_defs: GlobalDefs = GlobalDefs()
    ssl: SslConfig | None = None
    vrrp_scripts: tuple[VrrpScript, ...] = ()
    track_files: tuple[TrackFileDef, ...] = ()
    track_processes: tuple[TrackProcess, ...] = ()
    vrrp_sync_groups: tuple[VrrpSyncGroup, ...] = ()
    vrrp_instances: tuple[VrrpInstance, ...] = ()
    virtual_server_groups: tuple[VirtualServerGroup, ...] = ()
    virtual_servers: tuple[VirtualServer, ...] = ()
    static_ipaddress: tuple[VirtualIp, ...] = ()
    static_routes: tuple[VirtualRoute, ...] = ()
    static_rules: tuple[VirtualRule, ...] = ()
    bgp_speaker: BgpSpeaker | None = None  # director extension
    files: tuple[str, ...] = ()


def maker(cls: type[T]) -> Callable[..., T]:
    """A constructor for a frozen class the parser builds by the thousand (real servers,
    checkers): `maker(cls)(**kw)` is the object `cls(**kw)` is, made with plain slot
    stores. attrs' frozen __init__ sets each field through object.__setattr__, which is
    most of the cost of building a 10,000-server model. The object is made as an
    instance of a twin class of the same slots and then given its real class, which
    CPython allows between such layouts; the fields must be plain (no factory,
    converter or validator), as the model's are."""
    fields = aot.fields(cls)  # (the model has no factory, converter or validator: the
    params, body, defaults = [], [], {}  # test of conf/aot.py checks it)
    for i, f in enumerate(fields):
        if type(f.default).__name__ == "Factory" or not f.init or f.alias != f.name:
            raise TypeError(f"maker({cls.__name__}): field {f.name} is not plain")
        if f.default is aot.NOTHING:
            params.append(f.name)
        else:
            params.append(f"{f.name}=_d{i}")
            defaults[f"_d{i}"] = f.default
        body.append(f"    self.{f.name} = {f.name}\n")
    src = (f"def __init__(self, *, {', '.join(params)}):\n{''.join(body)}"
           f"    self.__class__ = _cls\n")
    ns: dict[str, Any] = {"_cls": cls, **defaults}
    exec(compile(src, f"<conf.model maker {cls.__name__}>", "exec"), ns)
    slots = cls.__dict__["__slots__"]  # the fields; no __weakref__ (weakref_slot=False)
    return type(f"_{cls.__name__}Maker", (), {"__slots__": slots, "__init__": ns["__init__"]})


def dict_maker(cls: type[T], after: int = 16) -> Callable[[dict[str, Any]], T]:
    """`maker` for fields in a dict: `dict_maker(cls)(d)` is `maker(cls)(**d)`. Once
    `after` objects had the same keys (a big config's real servers and checkers come in
    a few shapes), that shape gets code of its own: the given fields read from the dict,
    the others stored as constants, where a keyword call matches each key against all
    the class's parameters and looks each default up (half of a checker's cost)."""
    by_keywords = maker(cls)
    fields = aot.fields(cls)
    names = {f.name for f in fields}
    required = {f.name for f in fields if f.default is aot.NOTHING}
    shapes: dict[tuple[str, ...], Callable[[dict[str, Any]], T]] = {}
    seen: dict[tuple[str, ...], int] = {}

    def keywords(d: dict[str, Any]) -> T:
        return by_keywords(**d)

    def shape_code(key: tuple[str, ...]) -> Callable[[dict[str, Any]], T] | None:
        if not required <= set(key) <= names:
            return None  # the keyword call says what is wrong
        ns: dict[str, Any] = {"_new": object.__new__, "_twin": by_keywords, "_cls": cls}
        body = []
        for i, f in enumerate(fields):
            if f.name in key:
                body.append(f"    self.{f.name} = d[{f.name!r}]\n")
            elif _literal(f.default):  # a constant of the code, not a global
                body.append(f"    self.{f.name} = {f.default!r}\n")
            else:
                ns[f"_d{i}"] = f.default
                body.append(f"    self.{f.name} = _d{i}\n")
        src = (f"def make(d):\n    self = _new(_twin)\n{''.join(body)}"
               f"    self.__class__ = _cls\n    return self\n")
        exec(compile(src, f"<conf.model dict_maker {cls.__name__}>", "exec"), ns)
        return ns["make"]

    def make(d: dict[str, Any]) -> T:
        key = tuple(d)
        code = shapes.get(key)
        if code is None:
            seen[key] = n = seen.get(key, 0) + 1
            if n <= after:
                return by_keywords(**d)
            code = shapes[key] = shape_code(key) or keywords
        return code(d)

    return make


def _literal(value: Any) -> bool:
    """Whether repr(value) written in code makes an equal value of the same type."""
    if value is None or type(value) in (bool, int, str):
        return True
    if type(value) is float:
        return value == value and value not in (float("inf"), float("-inf"))
    return type(value) is tuple and all(_literal(v) for v in value)
