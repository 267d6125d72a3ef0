"""The `ip(8)`-like syntax of virtual_ipaddress, virtual_routes and virtual_rules.

A pyparsing grammar per line kind: options may come in any order, each at most
once. pyparsing is imported on first use only, and a bare address (by far the
common VIP line) never reaches it, which keeps `director -t` start-up light.
"""

from __future__ import annotations

# the C module: socket.py would add its enums and selectors to every director -t
from _socket import AF_INET, AF_INET6, inet_ntop, inet_pton
from functools import cache

from .errors import BadValue, Pos
from .model import NextHop, VirtualIp, VirtualRoute, VirtualRule

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class SyntaxProblem(BadValue):
    pass


def parse_ip(text: str) -> tuple[str, int]:
    """Return (normalised address, family) or raise SyntaxProblem.

    inet_pton rather than the ipaddress module: this runs once per real server,
    and a 10,000-server config is parsed on every `director -t`.
    """
    if ":" not in text:
        try:
            inet_pton(AF_INET, text)
        except (OSError, ValueError):
            raise SyntaxProblem(f"'{text}' is not an IP address") from None
        return text, 4  # inet_pton accepts only the canonical dotted quad
    try:
        packed = inet_pton(AF_INET6, text)
    except (OSError, ValueError):
        raise SyntaxProblem(f"'{text}' is not an IP address") from None
    return inet_ntop(AF_INET6, packed), 6


def parse_prefix(text: str, default_full: bool = True) -> tuple[str, int, int]:
    """ADDR[/LEN] (or a dotted netmask) → (address, prefixlen, family)."""
    addr, slash, plen = text.partition("/")
    address, family = parse_ip(addr)
    full = 32 if family == 4 else 128
    if not slash:
        return address, full if default_full else 0, family
    try:
        n = int(plen)
    except ValueError:
        if family == 4:
            import ipaddress  # a dotted netmask: rare

            try:
                n = ipaddress.IPv4Network(f"0.0.0.0/{plen}").prefixlen
            except ValueError:
                raise SyntaxProblem(f"bad prefix length '/{plen}' in '{text}'") from None
        else:
            raise SyntaxProblem(f"bad prefix length '/{plen}' in '{text}'") from None
    if not 0 <= n <= full:
        raise SyntaxProblem(f"prefix length {n} out of range 0-{full} in '{text}'")
    return address, n, family


@cache
def _grammars() -> dict[str, Any]:
    import pyparsing as pp

    word = pp.Regex(r"\S+")
    uint = pp.Regex(r"\d+").set_parse_action(lambda t: int(t[0]))

    def opt(kw: str, value: Any | None = None, name: str | None = None) -> Any:
        key = name or kw.lstrip("-")
        if value is None:
            return pp.Keyword(kw).set_parse_action(lambda: [(key, True)])
        return (pp.Keyword(kw).suppress() + value).set_parse_action(lambda t: [(key, t[0])])

    vip_opts = [
        opt("brd", word, "broadcast"),
        opt("broadcast", word),
        opt("dev", word),
        opt("scope", word),
        opt("label", word),
        opt("peer", word),
        opt("preferred_lft", word),
        opt("track_group", word),
        opt("home"),
        opt("-nodad", name="nodad"),
        opt("nodad"),
        opt("noprefixroute"),
        opt("autojoin"),
        opt("no_track"),
    ]
    route_opts = [
        opt("src", word),
        opt("from", word, "src"),
        opt("to", word, "dst"),
        opt("via", word),
        opt("gw", word, "via"),
        opt("dev", word),
        opt("oif", word, "dev"),
        opt("table", word),
        opt("metric", uint),
        opt("preference", uint, "metric"),
        opt("priority", uint, "metric"),
        opt("scope", word),
        opt("proto", word),
        opt("protocol", word, "proto"),
        opt("onlink"),
        opt("no_track"),
        *[opt(t, name="type_" + t) for t in ("blackhole", "unreachable", "prohibit", "throw")],
        *[
            (pp.Keyword(k) + word).set_parse_action(lambda t: [("opt", (t[0], t[1]))])
            for k in ("mtu", "advmss", "rtt", "rttvar", "window", "cwnd", "initcwnd",
                      "initrwnd", "realms", "hoplimit", "features", "pref", "nexthop",
                      "tos", "dsfield", "quickack", "congctl", "ssthresh", "reordering")
        ],
    ]
    rule_opts = [
        opt("from", word, "src"),
        opt("to", word, "dst"),
        opt("table", word),
        opt("lookup", word, "table"),
        opt("priority", uint),
        opt("preference", uint, "priority"),
        opt("pref", uint, "priority"),
        opt("fwmark", word),
        opt("iif", word),
        opt("oif", word),
        opt("no_track"),
        *[opt(a, name="action_" + a) for a in ("goto", "nop", "blackhole", "unreachable",
                                                 "prohibit")],
        *[
            (pp.Keyword(k) + word).set_parse_action(lambda t: [("opt", (t[0], t[1]))])
            for k in ("tos", "dsfield", "realms", "suppress_prefixlength",
                      "suppress_ifgroup", "uidrange", "sport", "dport", "ipproto", "l3mdev")
        ],
    ]
    return {
        "vip": pp.Regex(r"[0-9A-Fa-f:.]+(/\S+)?")("addr") + pp.Group(
            pp.ZeroOrMore(pp.MatchFirst(vip_opts)))("opts") + pp.StringEnd(),
        "route": pp.Group(pp.ZeroOrMore(pp.MatchFirst(route_opts)))("pre")
        + pp.Optional(pp.Regex(r"(default|[0-9A-Fa-f:.]+(/\S+)?)")("dst"))
        + pp.Group(pp.ZeroOrMore(pp.MatchFirst(route_opts)))("opts") + pp.StringEnd(),
        "rule": pp.Group(pp.ZeroOrMore(pp.MatchFirst(rule_opts)))("opts") + pp.StringEnd(),
    }


def _run(kind: str, tokens: list[str]) -> Any:
    import pyparsing as pp

    text = " ".join(tokens)
    try:
        return _grammars()[kind].parse_string(text, parse_all=True)
    except pp.ParseBaseException as e:
        rest = text[e.loc :].split()
        bad = rest[0] if rest else "end of line"
        raise SyntaxProblem(f"unexpected '{bad}' in {kind} '{text}'") from None


def _options(pairs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    extra: list[tuple[str, str]] = []
    for key, value in pairs:
        if key == "opt":
            extra.append(value)
        elif key in out:
            raise SyntaxProblem(f"'{key}' given twice")
        else:
            out[key] = value
    if extra:
        out["options"] = tuple(extra)
    return out


def parse_vip(tokens: list[str], pos: Pos) -> VirtualIp:
    if len(tokens) == 1:  # the fast, common case
        address, plen, family = parse_prefix(tokens[0])
        return VirtualIp(address=address, prefixlen=plen, family=family, pos=pos)
    res = _run("vip", tokens)
    address, plen, family = parse_prefix(res["addr"])
    o = _options(res["opts"])
    for k in ("broadcast", "peer"):
        if k in o and o[k] not in ("+", "-"):
            o[k] = parse_prefix(o[k])[0] if k == "peer" else parse_ip(o[k])[0]
    if "preferred_lft" in o:
        v = o["preferred_lft"]
        o["preferred_lft"] = 0 if v == "forever" else _int(v, "preferred_lft")
    return VirtualIp(address=address, prefixlen=plen, family=family, pos=pos, **o)


def _int(v: str, what: str) -> int:
    try:
        return int(v)
    except ValueError:
        raise SyntaxProblem(f"{what} '{v}' is not a number") from None


def _cidr(text: str) -> tuple[str, int]:
    if text == "default":
        return "default", 0
    address, plen, family = parse_prefix(text)
    return f"{address}/{plen}", family


def _nexthops(tokens: list[str]) -> tuple[list[str], list[NextHop]]:
    """Split keepalived's multipath forms off a route line: `... nexthop via A dev X
    weight N nexthop ...` and the old `via A or B` (two equal paths)."""
    hops: list[NextHop] = []
    if "or" in tokens:
        i = tokens.index("or")
        if i + 1 >= len(tokens) or "via" not in tokens[:i]:
            raise SyntaxProblem("'or' needs 'via ADDR or ADDR'")
        j = tokens.index("via")
        hops = [NextHop(via=parse_ip(tokens[j + 1])[0]), NextHop(via=parse_ip(tokens[i + 1])[0])]
        tokens = tokens[:j] + tokens[j + 2 : i] + tokens[i + 2 :]
    if "nexthop" not in tokens:
        return tokens, hops
    if hops:
        raise SyntaxProblem("cannot have both 'or' and 'nexthop'")
    i = tokens.index("nexthop")
    head, rest = tokens[:i], tokens[i:]
    for part in " ".join(rest).split("nexthop")[1:]:
        words = part.split()
        kw: dict[str, Any] = {}
        k = 0
        while k < len(words):
            w = words[k]
            if w == "onlink":
                kw["onlink"] = True
                k += 1
                continue
            if k + 1 >= len(words) or w not in ("via", "dev", "weight"):
                raise SyntaxProblem(f"unexpected '{w}' in nexthop")
            val = words[k + 1]
            if w == "via" and val in ("inet", "inet6") and k + 2 < len(words):
                k += 1
                val = words[k + 1]
            if w == "via":
                kw["via"] = parse_ip(val)[0]
            elif w == "dev":
                kw["dev"] = val
            else:
                kw["weight"] = _int(val, "nexthop weight")
                if not 1 <= kw["weight"] <= 256:
                    raise SyntaxProblem(f"nexthop weight {val} outside range [1, 256]")
            k += 2
        hops.append(NextHop(**kw))
    return head, hops


def parse_route(tokens: list[str], pos: Pos) -> VirtualRoute:
    tokens, hops = _nexthops(tokens) if ("nexthop" in tokens or "or" in tokens) else (tokens, [])
    res = _run("route", tokens)
    o = _options([*res["pre"], *res["opts"]])
    if "dst" in res and "dst" in o:
        raise SyntaxProblem("destination given twice")
    dst = res.get("dst") or o.pop("dst", None)
    if dst is None:
        raise SyntaxProblem(f"route '{' '.join(tokens)}' has no destination")
    dst, family = _cidr(dst)
    for k in ("src", "via"):
        if k in o:
            o[k], fam = parse_ip(o[k])
            if family and fam != family:
                raise SyntaxProblem(f"{k} {o[k]} is not of the destination's family")
            family = family or fam
    for hop in hops:
        fam = 6 if hop.via and ":" in hop.via else 4 if hop.via else 0
        if fam and family and fam != family:
            raise SyntaxProblem(f"nexthop {hop.via} is not of the destination's family")
        family = family or fam
    if hops:
        o["nexthops"] = tuple(hops)
    route_type = next((k[5:] for k in list(o) if k.startswith("type_") and o.pop(k)), None)
    return VirtualRoute(dst=dst, family=family or 4, type=route_type,
                        blackhole=route_type == "blackhole", pos=pos, **o)


def parse_rule(tokens: list[str], pos: Pos) -> VirtualRule:
    res = _run("rule", tokens)
    o = _options(res["opts"])
    family = 0
    for k in ("src", "dst"):
        if k in o:
            if o[k] == "all":
                continue
            addr, fam = _cidr(o[k])
            if family and fam != family:
                raise SyntaxProblem("from and to are of different families")
            o[k], family = addr, fam
    action = next((k[7:] for k in list(o) if k.startswith("action_") and o.pop(k)), None)
    if action is None and "table" not in o:
        raise SyntaxProblem(f"rule '{' '.join(tokens)}' has no table or action")
    return VirtualRule(family=family or 4, action=action, pos=pos, **o)
