"""The statement tree to the attrs model: keyword tables, aliases and defaults.

Each block kind has a table from keyword (aliases included) to a `K`: the model
field it fills, the value parser, and whether the keyword takes a block or may
repeat. A bad value is an error at its file:line and the keyword is skipped; a
keyword keepalived knows but we do not implement is a warning, never a silent
drop; an unknown keyword is a warning too, as keepalived logs and ignores it.
"""

from __future__ import annotations

import re
from collections import namedtuple
from collections.abc import Callable, Iterable

from . import aot
from . import parsers as P
from . import values as v
from .addrsyntax import SyntaxProblem, parse_ip, parse_prefix, parse_route, parse_rule
from .bgp import BgpBuilder
from .errors import Diagnostics, Pos
from .keywords import (
    DIRECTOR_EXTENSIONS,
    GRACEFUL_MISSING,
    NO_EFFECT,
    OBSOLETE,
    UNSUPPORTED,
    UNSUPPORTED_BLOCKS,
)
from .lvs_repairs import LvsRepairs
from .model import (
    Authentication,
    Config,
    GlobalDefs,
    LvsSyncDaemon,
    Notify,
    Script,
    SorryServer,
    SslConfig,
    TrackFileDef,
    TrackProcess,
    TrackRef,
    UnicastPeer,
    Url,
    VirtualServer,
    VirtualServerGroup,
    VrrpScript,
    VrrpSyncGroup,
    VsGroupEntry,
    dict_maker,
)
from .source import Quoted
from .tree import Node, _make_pos
from .values import Bad

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NamedTuple

_HOSTNAME_RE = re.compile(r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9-]{1,63})*")


UINT = v.integer(0, 2**31 - 1)
# the top-level blocks that are lists (keepalived's alloc_value_block), not keyword blocks
_TOP_LISTS = frozenset({"static_ipaddress", "static_routes", "static_rules",
                        "virtual_server_group"})
# keepalived takes any 32-bit mark (0 too) for a virtual server, a group entry and a checker
FWMARK_RANGE = (0, 2**32 - 1)


if TYPE_CHECKING:  # (typing.NamedTuple for type checkers; collections' at run time)
    class K(NamedTuple):
        field: str | None
        parse: v.Parser
        block: bool = False
        append: bool = False
        single: bool = False  # the parser reads one word (`v.single`)

    class _PendingInstance(NamedTuple):
        """An instance whose version/family defaults need the global_defs first."""

        name: str
        pos: Any
        kw: dict[str, Any]
else:
    K = namedtuple("K", ("field", "parse", "block", "append", "single"),
                   defaults=(False, False, False))
    _PendingInstance = namedtuple("_PendingInstance", ("name", "pos", "kw"))


def leaf(field: str | None, parse: v.Parser) -> K:
    return K(field, parse, single=getattr(parse, "single", False))


# values a memo may hand out again: immutable, and of the exact type the parser made
_MEMO_TYPES = frozenset({int, float, str, bool})


def _plain(spec: dict[str, K]) -> dict[str, tuple[Any, ...]]:
    """`fill`'s view of a table: its entries as plain tuples, each with a memo of the
    values its parser returned per word. A one-word parser (`v.single`) is a function
    of that word (it reads neither the keyword nor the position), so the word's value
    is kept for the next time; a parser that warns as it returns (NO_EFFECT's
    wrapper) has none. Words that raise are not kept: their diagnostics repeat."""
    return {name: (*k, {} if k.single and not getattr(k.parse, "warns", False) else None)
            for name, k in spec.items()}


CHECKER_TYPES = (
    "TCP_CHECK", "HTTP_GET", "SSL_GET", "MISC_CHECK", "SMTP_CHECK", "DNS_CHECK",
    "UDP_CHECK", "PING_CHECK", "FILE_CHECK",
)
LB_KINDS = ("NAT", "DR", "TUN")
SCHEDULERS = ("rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo",
              "ovf", "twos")
SCHED_FLAGS = ("sh-port", "sh-fallback", "mh-port", "mh-fallback", "flag-1", "flag-2",
               "flag-3", "ops")
NOTIFY_FIELDS = tuple(f.name for f in aot.fields(Notify))
DNS_TYPES = ("A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA", "RRSIG", "DNSKEY")


# keywords of the blocks whose tables are built where they are read
_INLINE_KEYWORDS = frozenset("""
    global_defs SSL vrrp_script track_file vrrp_track_file vrrp_track_process vrrp_sync_group
    vrrp_instance virtual_server_group virtual_server script interval timeout rise fall user
    init_fail file init_file process param_match quorum quorum_max delay terminate_delay
    fork_delay full_command group sync_group_tracking_weight auth_type auth_pass password ca
    certificate key host
""".split())


def _weight(tokens: list[str], i: int) -> tuple[int | None, bool]:
    """`weight N [reverse]` starting at tokens[i]."""
    if i >= len(tokens):
        return None, False
    if tokens[i] != "weight" or i + 1 >= len(tokens):
        raise Bad(f"expected 'weight N [reverse]', got '{' '.join(tokens[i:])}'")
    w = v.to_int(tokens[i + 1], -254, 254)
    rest = tokens[i + 2 :]
    if rest not in ([], ["reverse"]):
        raise Bad(f"unexpected '{' '.join(rest)}' after weight")
    return w, bool(rest)


def _weight_kw(node: Node) -> dict[str, Any]:
    """A tracker's or checker's own `weight N [reverse]` line."""
    w, rev = _weight(["weight", *node.args], 0)
    return {"weight": w, "weight_reverse": rev}


class Builder(LvsRepairs, BgpBuilder):
    def __init__(self, diags: Diagnostics) -> None:
        self.diags = diags
        self._seen_blocks: dict[tuple[str, str], Any] = {}
        self._nft_table_set = False
        self._keywords: set[str] | None = None
        self._kw: dict[str, list[Any]] = {}
        self._top_entries = self._top()
        self.global_spec = self._global_spec()
        self.instance_spec = self._instance_spec()
        self.vs_spec = self._vs_spec()
        self.rs_spec = self._rs_spec()
        self.checker_spec = self._checker_spec()
        self.conn_spec = self._conn_spec()
        for spec in (self.global_spec, self.instance_spec, self.vs_spec, self.rs_spec,
                     self.checker_spec):
            self._mark_no_effect(spec)
        self.url_spec = {
            "path": leaf("path", v.text),
            "digest": leaf("digest", self._digest),
            "status_code": leaf("status_code", self._status_codes),
            "virtualhost": leaf("virtualhost", v.one),
            "regex": leaf("regex", v.text),
            "regex_no_match": leaf("regex_no_match", v.flag),
        }
        # fill's view of the builder's own tables: plain tuples unpack faster than a
        # NamedTuple, by the 90,000 lines of a 10,000-server config (keyed by id: these
        # tables live as long as the builder); each with its memo (below)
        self._plain: dict[int, dict[str, tuple[Any, ...]]] = {
            id(spec): _plain(spec)
            for spec in (self.global_spec, self.instance_spec, self.vs_spec, self.rs_spec,
                         self.checker_spec, self.conn_spec, self.url_spec)}

    # -- generic --------------------------------------------------------------
    def _mark_no_effect(self, spec: dict[str, K]) -> None:
        """Keywords parsed but not acted on warn by name (never silent); the wrapper
        costs nothing to the other keywords."""
        for name in NO_EFFECT.intersection(spec):
            k = spec[name]

            def parse(node: Node, inner: v.Parser = k.parse) -> Any:
                self.diags.warning(node.pos, f"'{node.name}' is not supported yet; "
                                             f"parsed, without effect")
                return inner(node)

            parse.single = getattr(k.parse, "single", False)  # type: ignore[attr-defined]
            parse.warns = True  # type: ignore[attr-defined]  # never memoised (_plain)
            spec[name] = k._replace(parse=parse)

    def fill(self, node: Node, spec: dict[str, K], kw: dict[str, Any],
             where: str | None = None) -> None:
        """Each statement of the block by its keyword's table entry into `kw`; `where`
        names the block in an unknown keyword's warning (None: its keyword and
        arguments)."""
        children = node.children
        if children is None:
            raise Bad("needs a block { ... }")  # as v.block_lines
        plain = self._plain.get(id(spec))
        get = (plain if plain is not None else _plain(spec)).get
        for child in children:
            k = get(child.name)
            if k is None:
                self.unknown(child, f"{node.name} {' '.join(node.args)}" if where is None
                             else where)
                continue
            field, parse, block, append, single, memo = k
            if block != (child.children is not None):
                self.diags.error(child.pos, f"'{child.name}' " + (
                    "needs a block { ... }" if block else "does not take a block"))
                continue
            args = child.args
            # `weight 1`, `retry 3`... the same few words thousands of times: parsed once
            word = args[0] if memo is not None and len(args) == 1 else None
            value = memo.get(word, memo) if type(word) is str else memo
            if value is memo:
                if single and len(args) > 1:
                    # keepalived reads the first word and never looks at the rest
                    self.diags.warning(child.pos, f"{child.name} takes one value: "
                                                  f"'{' '.join(args[1:])}' ignored")
                    child = Node(child.name, args[:1], child.file, child.line)
                try:
                    value = parse(child)
                except Bad as e:
                    self.bad(child, e)
                    continue
                except v.Fixed as f:
                    self.diags.warning(child.pos, f"{child.name}: {f}")
                    value = f.value
                else:
                    if type(word) is str and type(value) in _MEMO_TYPES:
                        memo[word] = value
            if field is None:
                if value:
                    kw.update(value)  # a keyword that sets several fields
            elif append:
                if field in kw:
                    kw[field].append(value)
                else:
                    kw[field] = [value]
            else:
                kw[field] = value

    def bad(self, node: Node, e: Bad, what: str = "ignored") -> None:
        """keepalived logs a bad value and runs on without it; a missing parameter
        makes it exit."""
        if isinstance(e, v.Missing) and node.name not in GRACEFUL_MISSING:
            self.diags.error(node.pos, f"{node.name}: {e}")
        else:
            self.diags.warning(node.pos, f"{node.name}: {e}; {what}")

    def unknown(self, node: Node, where: str) -> None:
        name = node.name
        if name in OBSOLETE:
            self.diags.warning(node.pos, f"'{name}' in {where} is obsolete "
                                         f"({OBSOLETE[name]}); ignored")
        elif name in UNSUPPORTED:
            self.diags.warning(node.pos, f"'{name}' in {where} is not supported yet; ignored")
        elif name in self._all_keywords():
            self.diags.warning(node.pos, f"'{name}' does not belong in {where}; ignored")
        else:
            self.diags.warning(node.pos, f"unknown keyword '{name}' in {where}; ignored")

    def _all_keywords(self) -> set[str]:
        """Every keyword some block takes: one written in the wrong block is named as
        such (keepalived says 'unknown'; the operator is better served)."""
        if self._keywords is None:
            self._keywords = {*self.global_spec, *self.instance_spec, *self.vs_spec,
                              *self.rs_spec, *self.checker_spec, *self.url_spec,
                              *_INLINE_KEYWORDS, *NO_EFFECT, *DIRECTOR_EXTENSIONS}
        return self._keywords

    def _items(self, node: Node, parse: v.Parser) -> list[Any]:
        """Each line of a list block ({ item \\n item }) parsed by `parse`; keepalived
        skips a bad item with a log line."""
        out = []
        for child in v.block_lines(node):
            if child.children is not None:  # keepalived reads '{' as an invalid item
                self.diags.warning(child.pos, f"unexpected block '{child.name}' in "
                                              f"{node.name}; skipped")
                continue
            try:
                out.append(parse(child))
            except Bad as e:
                self.diags.warning(child.pos, f"{node.name}: {e}; skipped")
            except v.Fixed as f:
                self.diags.warning(child.pos, f"{node.name}: {f}")
                out.append(f.value)
        return out

    def _named(self, node: Node) -> str:
        if not node.args:
            raise v.Missing("needs a name")
        if len(node.args) > 1:
            self.diags.warning(node.pos, f"{node.name} {node.args[0]}: "
                                         f"'{' '.join(node.args[1:])}' ignored")
        return node.args[0]

    def block_keywords(self) -> dict[str, dict[str, bool]]:
        """For each enclosing block ('' the top level), the keywords that open a block of
        their own, True for a list block (keepalived's alloc_value_block: `{` and `}`
        do not nest in it). keepalived reads the lines after a block keyword written
        without its '{' as its block: tree.iter_tree does the same with this."""
        def blocks(spec: dict[str, K], lists: bool) -> dict[str, bool]:
            return {name: lists and name != "authentication"
                    for name, k in spec.items() if k.block}

        out = {
            "": {name: name in _TOP_LISTS for name in self._top()},
            "global_defs": blocks(self.global_spec, lists=True),
            "vrrp_instance": blocks(self.instance_spec, lists=True),
            "vrrp_sync_group": {"group": True, **blocks(self._track_spec(), lists=True)},
            "virtual_server": blocks(self.vs_spec, lists=False),
            "real_server": blocks(self.rs_spec, lists=False),
        }
        for t in CHECKER_TYPES:
            out[t] = blocks(self.checker_spec, lists=False)
        out["SMTP_CHECK"] = {**out["SMTP_CHECK"], "host": False}  # see _smtp_hosts
        out["bgp_speaker"] = {"neighbor": False}  # conf/bgp.py: its one block keyword
        for where, names in UNSUPPORTED_BLOCKS.items():  # ignored whole, but read alike
            out[where] = {**out.get(where, {}), **names}
        return out

    def leaf_keywords(self, blocks: dict[str, dict[str, bool]]) -> dict[str, frozenset[str]]:
        """For each block whose keywords director knows, those that take no block there
        (`blocks` from block_keywords): a '{' after one is ignored as keepalived ignores
        it (tree.TreeBuilder). Unknown and misplaced keywords are not in it: their block
        is skipped whole, with a warning."""
        def leaves(spec: dict[str, K] | Iterable[str]) -> frozenset[str]:
            if isinstance(spec, dict):
                return frozenset(name for name, k in spec.items() if not k.block)
            return frozenset(spec)

        sync = {"smtp_alert", "sync_group_tracking_weight", "global_tracking",
                *self._notify_spec()}
        known = {
            "": frozenset(),
            "global_defs": leaves(self.global_spec),
            "vrrp_instance": leaves(self.instance_spec),
            "authentication": frozenset({"auth_type", "auth_pass"}),
            "vrrp_sync_group": frozenset(sync),
            "vrrp_script": frozenset("script interval timeout weight rise fall user "
                                     "init_fail".split()),
            "track_file": frozenset({"file", "weight", "init_file"}),
            "vrrp_track_process": frozenset("process param_match weight quorum quorum_max "
                                            "delay terminate_delay fork_delay "
                                            "full_command".split()),
            "SSL": frozenset({"password", "ca", "certificate", "key"}),
            "virtual_server": leaves(self.vs_spec),
            "real_server": leaves(self.rs_spec),
            "url": leaves(self.url_spec),
            "host": leaves(self.conn_spec),
        }
        known["vrrp_track_file"] = known["track_file"]
        for t in CHECKER_TYPES:
            known[t] = leaves(self.checker_spec)
        # keepalived's keywords director does not act on are leaves wherever they are
        # written, but for the block keywords among them
        unsupported_blocks = {n for names in UNSUPPORTED_BLOCKS.values() for n in names}
        generic = (UNSUPPORTED | NO_EFFECT | set(OBSOLETE)) - unsupported_blocks
        return {where: (names | generic) - set(blocks.get(where, ()))
                for where, names in known.items()}

    # -- top level ------------------------------------------------------------
    def _top(self) -> dict[str, tuple[str, Any]]:
        """The top-level blocks: the Config field each fills and its builder."""
        return {
            "global_defs": ("global_defs", self.global_defs),
            "SSL": ("ssl", self.ssl),
            "vrrp_script": ("vrrp_scripts", self.vrrp_script),
            "track_file": ("track_files", self.track_file),
            "vrrp_track_file": ("track_files", self.track_file),
            "vrrp_track_process": ("track_processes", self.track_process),
            "vrrp_sync_group": ("vrrp_sync_groups", self.sync_group),
            "vrrp_instance": ("vrrp_instances", self.vrrp_instance),
            "virtual_server_group": ("virtual_server_groups", self.vs_group),
            "virtual_server": ("virtual_servers", self.virtual_server),
            # the VRRP daemon's own addresses, routes and rules (any number of blocks)
            "static_ipaddress": ("static_ipaddress", self._vips),
            "static_routes": ("static_routes", lambda n: tuple(self._items(
                n, lambda c: parse_route([c.name, *c.args], c.pos)))),
            "static_rules": ("static_rules", lambda n: tuple(self._items(
                n, lambda c: parse_rule([c.name, *c.args], c.pos)))),
            "bgp_speaker": ("bgp_speaker", self.bgp_speaker),  # director extension
        }

    def build(self, roots: Iterable[Node], files: list[str]) -> Config:
        for node in roots:
            self.add(node)
        return self.config(files)

    def add(self, node: Node) -> None:
        """One top-level statement or block, as soon as the reader has it whole."""
        entry = self._top_entries.get(node.name)
        if entry is None:
            self.unknown(node, "the top level")
            return
        if node.children is None:  # keepalived: nothing to read; the lines after it
            self.diags.warning(node.pos, f"'{node.name}' needs a block {{ ... }}; "
                                         f"ignored")  # are unknown top-level keywords
            return
        field, make = entry
        try:
            obj = make(node)
        except Bad as e:
            self.bad(node, e, "skipped")
            return
        if obj is not None:
            self._kw.setdefault(field, []).append(obj)

    def config(self, files: list[str]) -> Config:
        """The model of every block added."""
        out: dict[str, Any] = {k: tuple(vals) for k, vals in self._kw.items()}
        for static in ("static_ipaddress", "static_routes", "static_rules"):
            if static in out:
                out[static] = tuple(x for block in out[static] for x in block)
        if "bgp_speaker" in out:
            first, *more = out["bgp_speaker"]
            for extra in more:
                self.diags.error(extra.pos, f"a second bgp_speaker block (the first is at "
                                            f"{first.pos}); ignored")
            out["bgp_speaker"] = first
        for single in ("global_defs", "ssl"):
            if single in out:
                many = out[single]
                for extra in many[1:]:
                    self.diags.warning(extra.pos, f"second {single} block merged over the first")
                out[single] = many[-1] if single == "ssl" else self._merge_globals(many)
        return Config(files=tuple(files), **out)

    def _merge_globals(self, blocks: tuple[GlobalDefs, ...]) -> GlobalDefs:

        merged = blocks[0]
        default = GlobalDefs()
        for b in blocks[1:]:
            changes = {f.name: getattr(b, f.name) for f in aot.fields(GlobalDefs)
                       if getattr(b, f.name) != getattr(default, f.name)}
            merged = aot.evolve(merged, **changes)
        return merged

    # -- global_defs ------------------------------------------------------------
    def _global_spec(self) -> dict[str, K]:
        def garp(name: str) -> K:
            return leaf(name, UINT)

        spec = {
            "router_id": leaf("router_id", v.one),
            "notification_email": K("notification_email",
                                     lambda n: tuple(c.name for c in v.block_lines(n)), block=True),
            "notification_email_from": leaf("notification_email_from", v.one),
            "smtp_server": leaf(None, self._smtp_server),
            "smtp_helo_name": leaf("smtp_helo_name", v.one),
            "smtp_connect_timeout": leaf("smtp_connect_timeout", v.integer(0, 2**31 - 1)),
            "smtp_alert": leaf("smtp_alert", v.flag),
            "smtp_alert_vrrp": leaf("smtp_alert_vrrp", v.flag),
            "smtp_alert_checker": leaf("smtp_alert_checker", v.flag),
            "enable_script_security": leaf("enable_script_security", v.flag),
            "script_user": leaf(None, self._script_user),
            "default_interface": leaf("default_interface", v.one),
            "dynamic_interfaces": leaf("dynamic_interfaces", v.flag),
            "vrrp_version": leaf("vrrp_version", v.integer(2, 3)),
            "vrrp_strict": leaf("vrrp_strict", v.flag),
            "vrrp_skip_check_adv_addr": leaf("vrrp_skip_check_adv_addr", v.flag),
            "vrrp_check_unicast_src": leaf("vrrp_check_unicast_src", v.flag),
            "vrrp_mcast_group4": leaf("vrrp_mcast_group4", self._mcast(4)),
            "vrrp_mcast_group6": leaf("vrrp_mcast_group6", self._mcast(6)),
            "vrrp_garp_master_delay": garp("vrrp_garp_master_delay"),
            "vrrp_garp_master_repeat": leaf("vrrp_garp_master_repeat", v.positive(UINT)),
            "vrrp_garp_lower_prio_delay": garp("vrrp_garp_lower_prio_delay"),
            "vrrp_garp_lower_prio_repeat": garp("vrrp_garp_lower_prio_repeat"),
            "vrrp_garp_master_refresh": garp("vrrp_garp_master_refresh"),
            "vrrp_garp_master_refresh_repeat": leaf("vrrp_garp_master_refresh_repeat",
                                                    v.positive(UINT)),
            "vrrp_garp_interval": leaf("vrrp_garp_interval", self._garp_interval),
            "vrrp_gna_interval": leaf("vrrp_gna_interval", self._garp_interval),
            "vrrp_min_garp": leaf("vrrp_min_garp", v.flag),
            "vrrp_lower_prio_no_advert": leaf("vrrp_lower_prio_no_advert", v.flag),
            "vrrp_higher_prio_send_advert": leaf("vrrp_higher_prio_send_advert", v.flag),
            "vrrp_startup_delay": leaf("vrrp_startup_delay", v.number(0.001, 4294967)),
            "vrrp_priority": leaf("vrrp_priority", v.integer(-20, 19)),
            "checker_priority": leaf("checker_priority", v.integer(-20, 19)),
            "vrrp_rt_priority": leaf("vrrp_rt_priority", P.rt_priority),
            "checker_rt_priority": leaf("checker_rt_priority", P.rt_priority),
            "vrrp_rlimit_rttime": leaf("vrrp_rlimit_rttime", P.rlimit),
            "vrrp_rlimit_rtime": leaf("vrrp_rlimit_rttime", P.rlimit),
            "checker_rlimit_rttime": leaf("checker_rlimit_rttime", P.rlimit),
            "checker_rlimit_rtime": leaf("checker_rlimit_rttime", P.rlimit),
            "vrrp_no_swap": leaf("vrrp_no_swap", v.flag),
            "checker_no_swap": leaf("checker_no_swap", v.flag),
            "vrrp_cpu_affinity": leaf("vrrp_cpu_affinity", P.cpus),
            "checker_cpu_affinity": leaf("checker_cpu_affinity", P.cpus),
            "max_auto_priority": leaf("max_auto_priority", lambda n: v.to_int(
                n.args[0], -1, 99) if n.args else 99),
            "vrrp_notify_fifo": leaf("vrrp_notify_fifo", v.first),
            "vrrp_notify_fifo_script": leaf("vrrp_notify_fifo_script", self._notify_script),
            "lvs_notify_fifo": leaf("lvs_notify_fifo", v.first),
            "lvs_notify_fifo_script": leaf("lvs_notify_fifo_script", self._notify_script),
            "notify_fifo": leaf("notify_fifo", v.first),
            "notify_fifo_script": leaf("notify_fifo_script", self._notify_script),
            "lvs_sync_daemon": leaf("lvs_sync_daemon", self._sync_daemon),
            "lvs_flush": leaf("lvs_flush", v.flag),
            "lvs_flush_on_stop": leaf("lvs_flush_on_stop", self._flush_on_stop),
            "lvs_flush_onstop": leaf("lvs_flush_on_stop", self._flush_on_stop),
            "lvs_timeouts": leaf(None, self._lvs_timeouts),
            "checker_log_all_failures": leaf("checker_log_all_failures", v.flag),
            "nftables": leaf(None, self._nftables),
            "vrrp_iptables": leaf(None, self._vrrp_iptables),
            "nftables_priority": leaf("nftables_priority", v.integer(-2**31, 2**31 - 1)),
            "nftables_ifindex": leaf("nftables_ifindex", lambda n: True),
            "nftables_counters": leaf("nftables_counters", lambda n: True),
        }
        return spec

    def _nftables(self, node: Node) -> dict[str, Any]:
        # keepalived: the first of nftables / vrrp_iptables names the table
        if self._nft_table_set:
            self.diags.warning(node.pos, "nftables already specified; ignored")
            return {}
        self._nft_table_set = True
        return {"nftables": node.args[0] if node.args else "keepalived"}

    def _vrrp_iptables(self, node: Node) -> dict[str, Any]:
        # keepalived built without iptables (Debian's 2.2.7 among them) does the same
        self.diags.warning(node.pos, "vrrp_iptables: iptables is not supported, using nftables "
                                     "(table 'keepalived') instead; replace vrrp_iptables and "
                                     "vrrp_ipsets with nftables")
        self._nft_table_set = True
        return {"nftables": "keepalived"}

    def global_defs(self, node: Node) -> GlobalDefs:
        kw: dict[str, Any] = {}
        self._nft_table_set = False
        self.fill(node, self.global_spec, kw, "global_defs")
        return GlobalDefs(pos=node.pos, **kw)

    def _smtp_server(self, node: Node) -> dict[str, Any]:
        if not 1 <= len(node.args) <= 2:
            raise Bad("takes an IP address and an optional port")
        try:
            addr = parse_ip(node.args[0])[0]
        except SyntaxProblem:
            addr = node.args[0]  # a host name, resolved when mail is sent (keepalived >= 2.3)
            if not _HOSTNAME_RE.fullmatch(addr):
                raise Bad(f"invalid smtp server '{addr}'") from None
        out: dict[str, Any] = {"smtp_server": addr}
        if len(node.args) == 2:
            out["smtp_port"] = v.to_int(node.args[1], 1, 65535)
        return out

    def _script_user(self, node: Node) -> dict[str, Any]:
        if not 1 <= len(node.args) <= 2:
            raise Bad("takes a user name and an optional group")
        return {"script_user": node.args[0],
                "script_group": node.args[1] if len(node.args) > 1 else None}

    def _mcast(self, family: int) -> v.Parser:
        def parse(node: Node) -> str:
            addr = v.ip(node)
            import ipaddress

            a = ipaddress.ip_address(addr)
            if a.version != family or not a.is_multicast:
                raise Bad(f"'{addr}' is not an IPv{family} multicast address")
            return addr

        return parse

    def _garp_interval(self, node: Node) -> float:
        # keepalived refuses 0 here (its range starts at 1 µs) but still runs
        return v.to_float(v.one(node), 0.0, 4294.967295)

    def _sync_daemon(self, node: Node) -> LvsSyncDaemon:
        """`lvs_sync_daemon IFNAME [INSTANCE] [inst NAME] [id N] [maxlen N] [port N]
        [ttl N] [group ADDR]`; keepalived still reads the old form `IFNAME INSTANCE SYNCID`
        (with a warning). Without an instance the LVS side runs both daemons."""
        a = node.args
        if not a:
            raise Bad("needs an interface")
        kw: dict[str, Any] = {}
        note = ""
        i = 1
        while i < len(a):
            key = a[i]
            if key in ("inst", "id", "maxlen", "port", "ttl", "group"):
                if i + 1 >= len(a):
                    raise Bad(f"'{key}' needs a value")
                val = a[i + 1]
                if key == "inst":
                    kw["vrrp_instance"] = val
                elif key == "id":
                    kw["syncid"] = v.to_int(val, 0, 255)
                elif key == "maxlen":
                    kw["maxlen"] = v.to_int(val, 1, 65535 - 20 - 8)
                elif key == "port":
                    kw["port"] = v.to_int(val, 1, 65535)
                elif key == "ttl":
                    kw["ttl"] = v.to_int(val, 1, 255)
                else:
                    kw["group"] = parse_ip(val)[0]
                i += 2
                continue
            if i == 1:
                kw["vrrp_instance"] = key
            elif i == 2:
                try:
                    kw["syncid"] = v.to_int(key, 0, 255)
                    note = f"use the keyword 'id' before the sync id ({key})"
                except Bad:
                    note = f"invalid sync id '{key}': the instance's VRID is used"
            else:
                raise Bad(f"unknown lvs_sync_daemon option '{key}'")
            i += 1
        value = LvsSyncDaemon(interface=a[0], pos=node.pos, **kw)
        if note:
            raise v.Fixed(value, note)
        return value

    def _flush_on_stop(self, node: Node) -> str:
        if not node.args:
            return "ON"
        return v.choice("ON", "VS", "OFF")(node)

    def _lvs_timeouts(self, node: Node) -> dict[str, Any]:
        a = node.args
        if not a or len(a) % 2:
            raise Bad("takes pairs: tcp N tcpfin N udp N")
        out: dict[str, Any] = {}
        for key, val in zip(a[::2], a[1::2], strict=True):
            if key not in ("tcp", "tcpfin", "udp"):
                raise Bad(f"unknown timeout '{key}' (tcp, tcpfin or udp)")
            out[f"lvs_timeout_{key}"] = v.to_int(val, 0, 86400 * 31)
        return out

    def ssl(self, node: Node) -> SslConfig:
        kw: dict[str, Any] = {}
        spec = {k: leaf(k, v.one) for k in ("password", "ca", "certificate", "key")}
        self.fill(node, spec, kw, "SSL")
        return SslConfig(pos=node.pos, **kw)

    # -- trackers -----------------------------------------------------------------
    def vrrp_script(self, node: Node) -> VrrpScript:
        kw: dict[str, Any] = {}
        spec = {
            "script": leaf("script", v.script),
            "interval": leaf("interval", v.positive(v.number(0, 4294967))),
            "timeout": leaf("timeout", v.positive(v.number(0, 4294967))),
            "weight": leaf(None, _weight_kw),
            "rise": leaf("rise", v.integer(1, 2**31 - 1)),
            "fall": leaf("fall", v.integer(1, 2**31 - 1)),
            "user": leaf(None, self._user),
            "init_fail": leaf("init_fail", v.flag),
        }
        self.fill(node, spec, kw, f"vrrp_script {self._named(node)}")
        return VrrpScript(name=node.args[0], pos=node.pos, **kw)

    def _notify_script(self, node: Node) -> Script:
        script = v.notify_script(node)
        if len(node.args) > 1 and not isinstance(node.args[0], Quoted):
            self.diags.warning(node.pos, f"{node.name}: '{node.args[1]}' is read as the user "
                               "to run the script as (keepalived's reading); quote the "
                               "command to give it arguments")
        if len(node.args) > 3:
            self.diags.warning(node.pos, f"{node.name}: words after the user and group "
                               "are ignored")
        return script

    def _user(self, node: Node) -> dict[str, Any]:
        if not 1 <= len(node.args) <= 2:
            raise Bad("takes a user name and an optional group")
        return {"user": node.args[0], "group": node.args[1] if len(node.args) > 1 else None}

    def track_file(self, node: Node) -> TrackFileDef:
        kw: dict[str, Any] = {}

        def init_file(n: Node) -> dict[str, Any]:
            out: dict[str, Any] = {"init_file": True}
            for a in n.args:
                if a == "overwrite":
                    out["init_overwrite"] = True
                else:
                    out["init_value"] = v.to_int(a, -254, 254)
            return out

        spec = {
            "file": leaf("file", v.one),
            "weight": leaf(None, _weight_kw),
            "init_file": leaf(None, init_file),
        }
        self.fill(node, spec, kw, f"track_file {self._named(node)}")
        if "file" not in kw:  # keepalived: ignored, and so whatever tracks it
            self.diags.warning(node.pos, f"track_file {node.args[0]} has no 'file'; removed")
            return None  # type: ignore[return-value]
        return TrackFileDef(name=node.args[0], pos=node.pos, **kw)

    def track_process(self, node: Node) -> TrackProcess:
        kw: dict[str, Any] = {}
        spec = {
            "process": leaf(None, lambda n: {"process": n.args[0],
                                             "parameters": " ".join(n.args[1:]) or None}
                            if n.args else v.one(n)),
            "param_match": leaf("param_match", v.choice("INITIAL", "PARTIAL")),
            "weight": leaf(None, _weight_kw),
            "quorum": leaf("quorum", v.integer(1, 65535)),
            "quorum_max": leaf("quorum_max", v.integer(0, 65535)),
            "delay": leaf("delay", v.number(0, 3600)),
            "terminate_delay": leaf("terminate_delay", v.number(0, 3600)),
            "fork_delay": leaf("fork_delay", v.number(0, 3600)),
            "full_command": leaf("full_command", v.flag),
        }
        self.fill(node, spec, kw, f"vrrp_track_process {self._named(node)}")
        if "process" not in kw:
            self.diags.warning(node.pos, f"vrrp_track_process {node.args[0]} has no "
                                         f"'process'; removed")
            return None  # type: ignore[return-value]
        if kw.get("param_match"):
            kw["param_match"] = kw["param_match"].lower()
        return TrackProcess(name=node.args[0], pos=node.pos, **kw)

    def _track_refs(self, kind: str) -> v.Parser:
        """A track_* block, read as keepalived's vrrp_track.c does: an unknown option drops
        the line, a bad weight falls back to the tracker's own, a name twice is ignored."""

        def one_ref(n: Node) -> TrackRef:
            a = n.args
            if not a:
                return TrackRef(name=n.name, pos=n.pos)
            if a[0] != "weight":
                raise Bad(f"unknown option '{a[0]}' for {n.name}")
            if len(a) == 1:
                raise Bad(f"weight without a value for {n.name}")
            reverse = False
            note = ""
            if len(a) >= 3:
                if a[2] in ("reverse", "noreverse"):
                    reverse = a[2] == "reverse"
                else:
                    note = f"unknown weight option '{a[2]}' ignored"
            try:
                w: int | None = v.to_int(a[1], -254, 254)
            except Bad as e:
                w, note = None, f"{e}: the {kind}'s own weight used"
            if kind == "script" and w in (-254, 254):
                w = 253 if w > 0 else -253
                note = f"weight cannot be +/-254; set to {w}"
            ref = TrackRef(name=n.name, weight=w, reverse=reverse, pos=n.pos)
            if note:
                raise v.Fixed(ref, note)
            return ref

        def parse(node: Node) -> tuple[TrackRef, ...]:
            out: list[TrackRef] = []
            for ref in self._items(node, one_ref):
                if any(r.name == ref.name for r in out):
                    self.diags.warning(ref.pos, f"duplicate track_{kind} {ref.name}; ignored")
                else:
                    out.append(ref)
            return tuple(out)

        return parse

    # -- VRRP ---------------------------------------------------------------------
    def _notify_spec(self) -> dict[str, K]:
        spec = {name: leaf(name, self._notify_script) for name in NOTIFY_FIELDS
                if name != "notify_fifo"}
        spec["notify_fifo"] = leaf("notify_fifo", v.first)
        return spec

    def _track_spec(self) -> dict[str, K]:
        return {
            "track_interface": K("track_interface", self._track_refs("interface"), block=True),
            "track_script": K("track_script", self._track_refs("script"), block=True),
            "track_file": K("track_file", self._track_refs("file"), block=True),
            "track_process": K("track_process", self._track_refs("process"), block=True),
        }

    def _instance_spec(self) -> dict[str, K]:
        spec: dict[str, K] = {
            "state": leaf("state", v.choice("MASTER", "BACKUP")),
            "interface": leaf("interface", v.one),
            "use_vmac": leaf("use_vmac", lambda n: n.args[0] if n.args else ""),
            "vmac_xmit_base": leaf("vmac_xmit_base", v.flag),
            "dont_track_primary": leaf("dont_track_primary", v.flag),
            "mcast_src_ip": leaf("mcast_src_ip", v.ip),
            "unicast_src_ip": leaf("unicast_src_ip", v.ip),
            "unicast_peer": K("unicast_peer", lambda n: tuple(self._items(n, self._peer)),
                              block=True),
            "unicast_ttl": leaf("unicast_ttl", v.integer(0, 255)),
            "unicast_fault_no_peer": leaf("unicast_fault_no_peer", v.flag),
            "check_unicast_src": leaf("check_unicast_src", v.flag),
            "version": leaf("version", v.integer(2, 3)),
            "virtual_router_id": leaf("virtual_router_id", v.integer(1, 255)),
            "priority": leaf("priority", P.priority),
            "advert_int": leaf("advert_int", v.number(0.01, 255)),
            "authentication": K("authentication", self._auth, block=True),
            "virtual_ipaddress": K("virtual_ipaddress", self._vips, block=True),
            "virtual_ipaddress_excluded": K("virtual_ipaddress_excluded", self._vips, block=True),
            "virtual_routes": K("virtual_routes", lambda n: tuple(self._items(
                n, lambda c: parse_route([c.name, *c.args], c.pos))), block=True),
            "virtual_rules": K("virtual_rules", lambda n: tuple(self._items(
                n, lambda c: parse_rule([c.name, *c.args], c.pos))), block=True),
            "nopreempt": leaf("nopreempt", v.flag),
            "preempt": leaf(None, lambda n: {"nopreempt": not v.flag(n)}),
            "preempt_delay": leaf("preempt_delay", v.number(0, 1000)),
            "garp_master_delay": leaf("garp_master_delay", UINT),
            "garp_master_repeat": leaf("garp_master_repeat", v.positive(UINT)),
            "garp_master_refresh": leaf("garp_master_refresh", UINT),
            "garp_master_refresh_repeat": leaf("garp_master_refresh_repeat",
                                               v.positive(UINT)),
            "garp_lower_prio_delay": leaf("garp_lower_prio_delay", UINT),
            "garp_lower_prio_repeat": leaf("garp_lower_prio_repeat", UINT),
            "garp_interval": leaf("garp_interval", self._garp_interval),
            "gna_interval": leaf("gna_interval", self._garp_interval),
            "lower_prio_no_advert": leaf("lower_prio_no_advert", v.flag),
            "higher_prio_send_advert": leaf("higher_prio_send_advert", v.flag),
            "accept": leaf("accept", v.flag),
            "no_accept": leaf(None, lambda n: {"accept": not v.flag(n)}),
            "strict_mode": leaf("strict_mode", v.flag),
            "skip_check_adv_addr": leaf("skip_check_adv_addr", v.flag),
            "promote_secondaries": leaf("promote_secondaries", v.flag),
            "smtp_alert": leaf("smtp_alert", v.flag),
        }
        spec.update(self._notify_spec())
        spec.update(self._track_spec())
        return spec

    def _peer(self, node: Node) -> UnicastPeer:
        addr, _, dropped = v.address(node.name)
        kw: dict[str, Any] = {}
        a = node.args
        notes = [f"'{dropped}' after the address ignored"] if dropped else []
        for key, val in zip(a[::2], a[1::2], strict=False):
            if key in ("min_ttl", "max_ttl"):
                kw[key] = v.to_int(val, 0, 255)
            else:  # keepalived reports it and keeps the peer
                notes.append(f"unknown unicast_peer option '{key}' ignored")
        if len(a) % 2:
            notes.append(f"'{a[-1]}' without a value ignored")
        peer = UnicastPeer(address=addr, pos=node.pos, **kw)
        if notes:
            raise v.Fixed(peer, "; ".join(notes))
        return peer

    def _vips(self, node: Node) -> tuple[Any, ...]:
        return tuple(self._items(node, P.vip))

    def _auth(self, node: Node) -> Authentication | None:
        kw: dict[str, Any] = {}
        spec = {
            "auth_type": leaf("auth_type", v.choice("PASS", "AH")),
            "auth_pass": leaf("auth_pass", v.text),
        }
        self.fill(node, spec, kw, "authentication")
        if "auth_type" not in kw:  # keepalived: no (valid) type is no authentication
            self.diags.warning(node.pos, "authentication block has no valid auth_type; "
                                         "no authentication")
            return None
        if not kw.get("auth_pass"):
            self.diags.warning(node.pos, "authentication specified but no password given; "
                                         "no authentication")
            return None
        raw = kw.get("auth_pass", "").encode("utf-8", "surrogateescape")  # the file's bytes
        if len(raw) > 8:
            self.diags.warning(node.pos, "auth_pass longer than 8 bytes; truncated to 8")
            kw["auth_pass"] = raw[:8].decode("utf-8", "surrogateescape")
        return Authentication(pos=node.pos, **kw)

    def _split_notify(self, kw: dict[str, Any]) -> None:
        nkw = {k: kw.pop(k) for k in NOTIFY_FIELDS if k in kw}
        if nkw:
            kw["notify"] = Notify(**nkw)

    def _block_name(self, node: Node) -> str:
        """keepalived skips a vrrp_instance / vrrp_sync_group block whose header is not
        exactly one name, and a second block of a name already defined."""
        if len(node.args) != 1:
            raise Bad("must have exactly one name")
        name = node.args[0]
        key = (node.name, name)
        if key in self._seen_blocks:
            raise Bad(f"{name} is already defined at {self._seen_blocks[key]}")
        self._seen_blocks[key] = node.pos
        return name

    def vrrp_instance(self, node: Node) -> _PendingInstance:
        name = self._block_name(node)
        kw: dict[str, Any] = {}
        self.fill(node, self.instance_spec, kw, f"vrrp_instance {name}")
        self._split_notify(kw)
        for key in ("track_interface", "track_script", "track_file", "track_process"):
            if key in kw:
                kw[key] = tuple(kw[key])
        kw["_explicit_version"] = "version" in kw
        return _PendingInstance(name=name, pos=node.pos, kw=kw)

    def sync_group(self, node: Node) -> VrrpSyncGroup:
        name = self._block_name(node)
        kw: dict[str, Any] = {}
        spec = {
            "group": K("group", lambda n: tuple(c.name for c in v.block_lines(n)), block=True),
            "smtp_alert": leaf("smtp_alert", v.flag),
            "sync_group_tracking_weight": leaf("sync_group_tracking_weight", v.flag),
            "global_tracking": leaf(None, lambda n: None),
        }
        spec.update(self._notify_spec())
        spec.update(self._track_spec())
        self.fill(node, spec, kw, f"vrrp_sync_group {name}")
        self._split_notify(kw)
        return VrrpSyncGroup(name=name, pos=node.pos, **kw)

    # -- LVS ----------------------------------------------------------------------
    def vs_group(self, node: Node) -> VirtualServerGroup:
        name = self._named(node)
        entries = self._items(node, self._group_entry)
        return VirtualServerGroup(name=name, entries=tuple(entries), pos=node.pos)

    def _group_entry(self, node: Node) -> VsGroupEntry:
        if node.name == "fwmark":
            if len(node.args) not in (1, 2):
                raise Bad("fwmark takes a mark and an optional family")
            return VsGroupEntry(fwmark=v.to_int(node.args[0], *FWMARK_RANGE),
                                family=6 if node.args[1:] == ["inet6"] else 4, pos=node.pos)
        if len(node.args) != 1:
            raise Bad(f"'{node.name}' needs an address (range) and a port")
        port = v.to_int(node.args[0], 0, 65535)
        text = node.name
        if "/" in text:
            addr, plen, family = parse_prefix(text)
            import ipaddress

            net = ipaddress.ip_network(f"{addr}/{plen}", strict=False)
            first, last = net[0], net[-1]
            if net.num_addresses > 2 and family == 4 and plen < 31:
                first, last = net[1], net[-2]
            return VsGroupEntry(address=str(first), last=str(last), port=port, family=family,
                                pos=node.pos)
        base, dash, end = text.rpartition("-")
        if dash and base:
            addr, family = parse_ip(base)
            sep = "." if family == 4 else ":"
            head = addr.rsplit(sep, 1)
            try:
                last_part = int(end) if family == 4 else int(end, 16)
                first_part = int(head[1]) if family == 4 else int(head[1] or "0", 16)
            except ValueError:
                raise Bad(f"bad address range '{text}'") from None
            limit = 255 if family == 4 else 0xFFFF
            if not first_part <= last_part <= limit:
                raise Bad(f"bad address range '{text}': end below start or out of range")
            last_ip = parse_ip(f"{head[0]}{sep}{end}")[0]
            return VsGroupEntry(address=addr, last=last_ip, port=port, family=family, pos=node.pos)
        addr, family = parse_ip(text)
        return VsGroupEntry(address=addr, port=port, family=family, pos=node.pos)

    def _common_check_opts(self, checker: bool = False) -> dict[str, K]:
        # keepalived: a checker's retry may be 0, a real or virtual server's from 1
        retry = leaf("retry", UINT if checker else v.integer(1, 2**32 - 1))
        return {
            "retry": retry,
            "nb_get_retry": retry,
            "delay_before_retry": leaf("delay_before_retry", v.number(0, 4294967)),
            "connect_timeout": leaf("connect_timeout", v.number(1e-6, 4294967)),
            "warmup": leaf("warmup", v.number(0, 4294967)),
            "alpha": leaf("alpha", v.flag),
            "smtp_alert": leaf("smtp_alert", v.flag),
            "virtualhost": leaf("virtualhost", v.one),
        }

    def _vs_spec(self) -> dict[str, K]:
        lb_kind = v.choice(*LB_KINDS)
        spec = {
            "protocol": leaf("protocol", v.choice("TCP", "UDP", "SCTP")),
            "ip_family": leaf("_ip_family", v.choice("INET", "INET6")),
            "delay_loop": leaf("delay_loop", v.number(1e-6, 4294967)),
            "lb_algo": leaf("lb_algo", self._sched),
            "lvs_sched": leaf("lb_algo", self._sched),
            "lb_kind": leaf(None, self._lb_kind),
            "lvs_method": leaf(None, self._lb_kind),
            "persistence_timeout": leaf("persistence_timeout",
                                        lambda n: v.to_int(n.args[0], 1, 2**31 - 1)
                                        if n.args else 360),
            "persistence_granularity": leaf("persistence_granularity", v.one),
            "persistence_engine": leaf("persistence_engine", v.one),
            "ops": leaf("ops", v.flag),
            "quorum": leaf("quorum", v.integer(1, 2**31 - 1)),
            "hysteresis": leaf("hysteresis", UINT),
            "quorum_up": leaf("quorum_up", self._notify_script),
            "quorum_down": leaf("quorum_down", self._notify_script),
            "sorry_server": leaf("sorry_server", self._sorry),
            "sorry_server_inhibit": leaf("sorry_server_inhibit", v.flag),
            "sorry_server_lvs_method": leaf("sorry_server_lvs_method", lb_kind),
            "inhibit_on_failure": leaf("inhibit_on_failure", v.flag),
            "omega": leaf("omega", v.flag),
            "ha_suspend": leaf("ha_suspend", v.flag),
            "weight": leaf("weight", v.integer(1, 2**31 - 1)),
            "real_server": K("real_servers", self.real_server, block=True, append=True),
            "bgp_announce": leaf("bgp_announce", self._bgp_announce),  # director extension
        }
        def flag(name: str) -> Callable[[Node], dict[str, bool]]:
            return lambda n: {"_flag_" + name: v.flag(n)}

        for f in SCHED_FLAGS:
            spec[f] = leaf(None, flag(f))
        spec.update(self._common_check_opts())
        return spec

    def _sched(self, node: Node) -> str:
        s = v.one(node).lower()
        if s not in SCHEDULERS:
            raise Bad(f"unknown scheduler '{node.args[0]}' ({', '.join(SCHEDULERS)})")
        return s

    def _lb_kind(self, node: Node) -> dict[str, Any]:
        if not node.args:
            raise Bad("needs NAT, DR or TUN")
        kind = node.args[0].upper()
        if kind not in LB_KINDS:
            raise Bad(f"'{node.args[0]}' is not one of {', '.join(LB_KINDS)}")
        out: dict[str, Any] = {"lb_kind": kind}
        rest = node.args[1:]
        if rest:
            if kind != "TUN" or rest[0] != "type" or len(rest) < 2:
                raise Bad(f"unexpected '{' '.join(rest)}'")
            ttype = rest[1].lower()
            if ttype not in ("ipip", "gue", "gre"):
                raise Bad(f"unknown tunnel type '{rest[1]}' (ipip, gue, gre)")
            opts = rest[2:]
            i = 0
            while i < len(opts):
                if opts[i] == "port" and i + 1 < len(opts) and ttype == "gue":
                    v.to_int(opts[i + 1], 1, 65535)
                    i += 2
                elif opts[i] in ("nocsum", "csum", "remcsum") and ttype != "ipip":
                    i += 1
                else:
                    raise Bad(f"unexpected tunnel option '{opts[i]}' for {ttype}")
            if ttype == "gue" and "port" not in opts:
                raise Bad("a gue tunnel needs 'port N'")
            out["tunnel_type"] = " ".join([ttype, *opts])
        return out

    def _sorry(self, node: Node) -> SorryServer:
        if not 1 <= len(node.args) <= 2:
            raise Bad("takes an address and a port")
        addr, family = parse_ip(node.args[0])
        port = v.to_int(node.args[1], 0, 65535) if len(node.args) > 1 else None
        return SorryServer(address=addr, port=port, family=family, pos=node.pos)

    def virtual_server(self, node: Node) -> VirtualServer | None:
        a = node.args
        kw: dict[str, Any] = {}
        extra: list[str] = []
        if not a:
            raise v.Missing("needs 'IP PORT', 'fwmark N' or 'group NAME'")
        if a[0] == "fwmark" and len(a) >= 2:
            kw["fwmark"] = v.to_int(a[1], *FWMARK_RANGE)
            extra = a[2:]
        elif a[0] == "group" and len(a) >= 2:
            kw["group"] = a[1]
            extra = a[2:]
        else:
            # keepalived: an invalid address skips the virtual server
            addr, kw["family"], dropped = v.address(a[0])
            kw["address"] = addr
            if dropped:
                self.diags.warning(node.pos, f"virtual_server: '{dropped}' after the "
                                             f"address ignored")
            kw["port"] = v.to_int(a[1], 0, 65535) if len(a) > 1 else 0
            extra = a[2:]
        if extra:
            self.diags.warning(node.pos, f"virtual_server: '{' '.join(extra)}' ignored")
        self.fill(node, self.vs_spec, kw)
        fam = kw.pop("_ip_family", None)
        if fam:
            want = 6 if fam == "INET6" else 4
            if "address" in kw and kw["family"] != want:
                self.diags.warning(node.pos, f"ip_family {fam.lower()} conflicts with "
                                             f"{a[0]}; ignored")
            else:
                kw["family"] = want
        flags = [k[6:] for k in sorted(kw) if k.startswith("_flag_") and kw.pop(k)]
        for k in [k for k in kw if k.startswith("_flag_")]:
            kw.pop(k)
        kw["sched_flags"] = tuple(f for f in SCHED_FLAGS if f in flags and f != "ops")
        if "ops" in flags:
            kw["ops"] = True
        self._vs_defaults(node, kw)
        kw["real_servers"] = tuple(self._inherit(node, kw, kw.get("real_servers", [])))
        self._sorry_defaults(node, kw)
        if not kw["real_servers"]:
            self.diags.warning(node.pos, f"virtual_server {' '.join(a)} has no real servers; "
                                         f"ignored (as keepalived)")
            return None
        return VirtualServer(pos=node.pos, **kw)

    def _rs_spec(self) -> dict[str, K]:
        spec = {
            "weight": leaf("weight", UINT),
            "lvs_method": leaf(None, self._lb_kind),
            "lb_kind": leaf(None, self._lb_kind),
            "inhibit_on_failure": leaf("inhibit_on_failure", v.flag),
            "notify_up": leaf("notify_up", self._notify_script),
            "notify_down": leaf("notify_down", self._notify_script),
            "uthreshold": leaf("uthreshold", UINT),
            "lthreshold": leaf("lthreshold", UINT),
            "delay_loop": leaf("delay_loop", v.number(1e-6, 4294967)),
        }
        spec.update(self._common_check_opts())
        for t in CHECKER_TYPES:
            spec[t] = K("checkers", self.checker, block=True, append=True)
        return spec

    def real_server(self, node: Node) -> dict[str, Any]:
        a = node.args
        if not a:
            raise v.Missing("needs an address and a port")
        try:
            addr, family = parse_ip(a[0])  # the common case, without address()'s own call
        except SyntaxProblem:
            addr, family, dropped = v.address(a[0])
            if dropped:
                self.diags.warning(node.pos, f"real_server: '{dropped}' after the address "
                                             f"ignored")
        kw: dict[str, Any] = {"address": addr, "family": family}
        if len(a) >= 2:
            kw["port"] = v.to_int(a[1], 0, 65535)
        if len(a) > 2:
            self.diags.warning(node.pos, f"real_server: '{' '.join(a[2:])}' ignored")
        self.fill(node, self.rs_spec, kw)
        if "lb_kind" in kw:
            kw["lvs_method"] = kw.pop("lb_kind")
        kw["pos"] = _make_pos(Pos, (node.file, node.line))  # node.pos, inline
        return kw  # built by _inherit once the virtual server is complete

    def _conn_spec(self) -> dict[str, K]:
        """The connection options every checker (and an SMTP host block) takes."""
        return {
            "connect_ip": leaf("connect_ip", v.ip),
            "connect_port": leaf("connect_port", v.port),
            "bindto": leaf("bindto", v.ip),
            "bind_port": leaf("bind_port", v.port),
            "bind_if": leaf("bind_if", v.one),
            "fwmark": leaf("fwmark", v.integer(*FWMARK_RANGE)),
            "connect_timeout": leaf("connect_timeout", v.number(1e-6, 4294967)),
        }

    def _checker_spec(self) -> dict[str, K]:
        # the connection options come from _conn_spec so a checker and an SMTP host
        # block cannot disagree (keepalived's co_* handlers serve both)
        spec = self._conn_spec()
        spec.update({
            "delay_loop": leaf("delay_loop", v.number(1e-6, 4294967)),
            "log_all_failures": leaf("log_all_failures", v.flag),
            "url": K("urls", self.url, block=True, append=True),
            "http_protocol": leaf("http_protocol", v.choice("1.0", "1.0C", "1.1", "0.9")),
            "enable_sni": leaf("enable_sni", v.flag),
            "sni_name": leaf("sni_name", v.one),
            "fast_recovery": leaf("fast_recovery", v.flag),
            "misc_path": leaf("misc_path", v.script),
            "misc_timeout": leaf("misc_timeout", v.number(0, 4294967)),
            "misc_dynamic": leaf("misc_dynamic", v.flag),
            "user": leaf(None, self._user),
            "helo_name": leaf("helo_name", v.one),
            "type": leaf("dns_type", v.choice(*DNS_TYPES)),
            "name": leaf("dns_name", v.one),
            "payload": leaf("payload", self._hex),
            "require_reply": leaf(None, self._reply),
            "min_reply_length": leaf("min_reply_length", v.integer(0, 65535)),
            "max_reply_length": leaf("max_reply_length", v.integer(0, 65535)),
            "track_file": leaf("track_file", v.one),
            "file": leaf("track_file", v.one),
            "weight": leaf(None, _weight_kw),
        })
        spec.update(self._common_check_opts(checker=True))
        return spec

    def _hex(self, node: Node) -> bytes:
        data, mask = P.hex_str(node.args, wildcard=False)
        return data

    def _reply(self, node: Node) -> dict[str, Any]:
        if not node.args:
            return {"require_reply": b""}
        data, mask = P.hex_str(node.args, wildcard=True)
        return {"require_reply": data, "require_reply_mask": mask if any(mask) else None}

    def checker(self, node: Node) -> dict[str, Any] | list[dict[str, Any]]:
        kw: dict[str, Any] = {}
        hosts: list[dict[str, Any]] = []
        if node.name == "SMTP_CHECK" and any(c.name == "host" for c in node.children or ()):
            hosts = self._smtp_hosts(node)
            own = Node(node.name, node.args, node.file, node.line,
                       [c for c in v.block_lines(node) if c.name != "host"])
            node = own
        self.fill(node, self.checker_spec, kw, node.name)
        kw.pop("smtp_alert", None)
        kw["urls"] = tuple(kw.get("urls", ()))
        missing = None
        if node.name in ("HTTP_GET", "SSL_GET") and not kw["urls"]:
            missing = "url block"
        if node.name == "MISC_CHECK" and "misc_path" not in kw:
            missing = "misc_path"
        if node.name == "FILE_CHECK" and "track_file" not in kw:
            missing = "track_file"
        if missing:
            self.diags.warning(node.pos, f"{node.name} has no {missing}; the checker is "
                                         f"removed (as keepalived)")
            return None  # type: ignore[return-value]
        kw["type"] = node.name
        kw["pos"] = _make_pos(Pos, (node.file, node.line))
        if hosts:
            return self._smtp_host_checkers(kw, hosts)
        return kw  # built by _inherit

    def _smtp_hosts(self, node: Node) -> list[dict[str, Any]]:
        """SMTP_CHECK's (deprecated, still accepted) `host { }` blocks: their connection
        options, each a checker of its own."""
        out: list[dict[str, Any]] = []
        for c in v.block_lines(node):
            if c.name != "host":
                continue
            if c.children is None:
                self.diags.error(c.pos, "'host' needs a block { ... }")
                continue
            kw: dict[str, Any] = {"pos": c.pos}
            self.fill(c, self.conn_spec, kw, "SMTP_CHECK host")
            out.append(kw)
        return out

    def _smtp_host_checkers(self, kw: dict[str, Any],
                            hosts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """keepalived: one checker per host block; the main checker keeps its own
        connection options if it has any, else takes the first host's."""
        self.diags.warning(hosts[0]["pos"] if hosts else kw["pos"],
                           "SMTP_CHECK host blocks are deprecated: each is a checker")
        conn = {k.field for k in self.conn_spec.values()}
        own = any(k in kw for k in conn)
        out = [kw] if own else []
        for h in hosts:
            c = {k: val for k, val in kw.items() if k not in conn}
            c.update(h)
            out.append(c)
        return out

    def url(self, node: Node) -> Url:
        kw: dict[str, Any] = {}
        self.fill(node, self.url_spec, kw, "url")
        kw["pos"] = _make_pos(Pos, (node.file, node.line))
        return _new_url(kw)

    def _digest(self, node: Node) -> str:
        d = v.one(node).lower()
        if len(d) != 32 or any(c not in "0123456789abcdef" for c in d):
            raise Bad(f"'{node.args[0]}' is not an MD5 digest (32 hex digits)")
        return d

    def _status_codes(self, node: Node) -> tuple[tuple[int, int], ...]:
        args = node.args
        if len(args) == 1 and args[0].isdecimal() and 100 <= (code := int(args[0])) <= 599:
            return ((code, code),)  # the common `status_code 200`
        out = []
        for part in ",".join(node.args).split(","):
            if not part:
                continue
            lo, dash, hi = part.partition("-")
            a = v.to_int(lo, 100, 599)
            b = v.to_int(hi, 100, 599) if dash else a
            if b < a:
                raise Bad(f"status code range '{part}' is backwards")
            out.append((a, b))
        if not out:
            raise Bad("needs status codes")
        return tuple(out)

_new_url = dict_maker(Url)


