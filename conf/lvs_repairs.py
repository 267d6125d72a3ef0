"""keepalived's end-of-block repairs of a virtual server (check_parser.c's vs_end_handler
and rs_end_handler, check_data.c's validate_check_config, the checkers' own defaults):
what real servers and checkers take from their parents, ports, families, duplicates,
quorum. The model carries the effective values, so the daemons use them as they are."""

from __future__ import annotations

from . import aot
from .addrsyntax import SyntaxProblem, parse_ip
from .errors import Diagnostics
from .model import Checker, RealServer, dict_maker
from .tree import Node

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class LvsRepairs:
    """Mixed into the Builder: the repairs once a virtual_server block is read."""

    diags: Diagnostics

    def _sorry_defaults(self, node: Node, kw: dict[str, Any]) -> None:
        """keepalived (vs_end_handler, validate_check_config): a sorry server of the other
        family is dropped unless tunnelled; with DR/TUN its port follows the virtual
        server's (cleared with a fwmark)."""
        sorry = kw.get("sorry_server")
        if sorry is None:
            return
        name = f"virtual_server {' '.join(node.args)}"
        method = kw.get("sorry_server_lvs_method") or kw.get("lb_kind", "NAT")
        if method != "TUN" and sorry.family != kw.get("family", sorry.family):
            self.diags.warning(sorry.pos, f"{name}: sorry_server {sorry.address} is not of "
                                          f"the virtual server's family; skipped")
            kw["sorry_server"] = None
            return
        if method == "NAT" or "group" in kw:
            return
        want = None if "fwmark" in kw else kw.get("port")
        if sorry.port is not None and sorry.port != want:
            self.diags.warning(sorry.pos, f"{name}: sorry_server port {sorry.port} "
                                          f"{'cleared' if want is None else f'reset to {want}'}"
                                          f" ({method})")
        if sorry.port != want:
            kw["sorry_server"] = aot.evolve(sorry, port=want)

    def _vs_defaults(self, node: Node, kw: dict[str, Any]) -> None:
        """keepalived's validate_check_config() repairs, those of one virtual server."""
        name = f"virtual_server {' '.join(node.args)}"
        by_addr = "address" in kw or "group" in kw
        if by_addr and "protocol" not in kw:
            self.diags.warning(node.pos, f"{name}: no protocol set; defaulting to UDP "
                                         f"(as keepalived)")
            kw["protocol"] = "UDP"
        elif "fwmark" in kw and "protocol" in kw:
            self.diags.warning(node.pos, f"{name}: protocol is ignored with a fwmark")
        if kw.get("ops") and kw.get("protocol", "TCP") != "UDP" and "fwmark" not in kw:
            self.diags.warning(node.pos, f"{name}: one packet scheduling needs UDP; "
                                         f"ops cleared")
            kw["ops"] = False
        if "address" in kw and not kw.get("port") and not kw.get("persistence_timeout"):
            self.diags.warning(node.pos, f"{name}: port 0 is only valid for a persistent "
                                         f"service; persistence_timeout set to 360")
            kw["persistence_timeout"] = 360
        gran = kw.get("persistence_granularity")
        if gran is not None and not _granularity_ok(gran, kw.get("family", 4)):
            self.diags.warning(node.pos, f"{name}: invalid persistence_granularity '{gran}'; "
                                         f"ignored")
            del kw["persistence_granularity"]
        if kw.get("ha_suspend") and "fwmark" in kw:
            self.diags.warning(node.pos, f"{name}: ha_suspend cannot be used with a fwmark; "
                                         f"cleared")
            kw["ha_suspend"] = False

    # -- inheritance, as keepalived resolves it at the end of parsing -----------
    def _inherit(self, node: Node, vs: dict[str, Any],
                 rss: list[dict[str, Any]]) -> list[RealServer]:
        """Resolve what real servers and checkers take from their parents, as keepalived
        does once the file is read (validate_check_config, then the checkers' own
        defaults), and build each object once: the model carries effective values."""
        out = []
        vs_loop = vs.get("delay_loop", 60.0)
        vs_kind = vs.get("lb_kind", "NAT")
        vs_family = vs.get("family")
        # what a real server takes from its virtual server when it does not say
        inherited = {
            "lvs_method": vs_kind,
            "inhibit_on_failure": vs.get("inhibit_on_failure", False),
            "alpha": vs.get("alpha", False),
            "virtualhost": vs.get("virtualhost"),
            "delay_loop": vs_loop,
            "weight": vs.get("weight", 1),
            "connect_timeout": _pick(vs.get("connect_timeout"), 5.0),
        }
        for k in ("retry", "delay_before_retry", "warmup"):
            if vs.get(k) is not None:
                inherited[k] = vs[k]
        by_port = "fwmark" in vs or "group" in vs
        vs_port = vs.get("port")
        seen: set[tuple[str, int | None]] = set()
        weight_sum = 0
        for given in rss:
            rs = {**inherited, **given}
            # keepalived (rs_end_handler): another family only where IPVS allows it (TUN)
            if rs["lvs_method"] != "TUN":
                if vs_family is None:
                    vs_family = vs["family"] = rs["family"]
                elif rs["family"] != vs_family:
                    self.diags.warning(rs["pos"], f"{self._rs_where(node, rs)} is not of the "
                                                  f"virtual server's address family; skipped "
                                                  f"(as keepalived)")
                    continue
            port = rs.get("port")
            if by_port or (port and port != vs_port and rs["lvs_method"] != "NAT"):
                self._rs_port(vs, rs, self._rs_where(node, rs))
            elif not port:
                rs["port"] = vs_port
            key = (rs["address"], rs.get("port"))
            if key in seen:
                self.diags.warning(rs["pos"], f"{self._rs_where(node, rs)} port {rs.get('port')}"
                                              f" is listed twice; the second removed "
                                              f"(as keepalived)")
                continue
            seen.add(key)
            checkers = rs.get("checkers")
            if checkers is not None:
                rs["checkers"] = self._checkers(checkers, rs, vs_loop)
            weight_sum += rs["weight"]
            out.append(_new_rs(rs))
        if vs_family is not None:
            vs.setdefault("family", vs_family)
        quorum = vs.get("quorum", 1)
        if out and quorum > weight_sum:
            name = f"virtual_server {' '.join(node.args)}"
            self.diags.warning(node.pos, f"{name}: quorum {quorum} exceeds the real servers' "
                                         f"total weight {weight_sum}; reduced to it "
                                         f"(as keepalived)")
            vs["quorum"] = quorum = weight_sum
        if out and vs.get("hysteresis", 0) >= quorum:
            new = max(quorum - 1, 0)
            if vs.get("hysteresis", 0) != new:
                name = f"virtual_server {' '.join(node.args)}"
                self.diags.warning(node.pos, f"{name}: hysteresis {vs['hysteresis']} >= quorum "
                                             f"{quorum}; set to {new}")
            vs["hysteresis"] = new
        return out

    @staticmethod
    def _rs_where(node: Node, rs: dict[str, Any]) -> str:
        return f"virtual_server {' '.join(node.args)}: real_server {rs['address']}"

    def _rs_port(self, vs: dict[str, Any], rs: dict[str, Any], where: str) -> None:
        """keepalived: a real server without a port takes the virtual server's; with
        DR/TUN the ports must match (reset), with a fwmark there is no port (cleared)."""
        port = rs.get("port")
        if "fwmark" in vs:
            if port and rs["lvs_method"] != "NAT":
                self.diags.warning(rs["pos"], f"{where}: a port with a fwmark service; "
                                              f"cleared")
                rs["port"] = None
            return
        if "group" in vs:
            return
        if not port:
            rs["port"] = vs.get("port")
        elif rs["lvs_method"] != "NAT" and port != vs.get("port"):
            self.diags.warning(rs["pos"], f"{where}: port {port} differs from the virtual "
                                          f"server's with {rs['lvs_method']}; reset to "
                                          f"{vs.get('port')}")
            rs["port"] = vs.get("port")

    def _checkers(self, given: list[Any], rs: dict[str, Any],
                  vs_loop: float) -> tuple[Checker, ...]:
        """A real server's checkers with their effective timing, as keepalived resolves
        it: the checker's own value, else the real server's (which took the virtual
        server's), else the checker kind's default (retry 1, MISC 0, DNS 3;
        delay_before_retry 1 s, HTTP/SSL 3 s, DNS the delay_loop); warmup defaults to
        the delay_loop. (`given`: a checker's fields, or a list of them for SMTP hosts;
        None for a checker removed.) Inline: this runs for every checker."""
        base = {
            "connect_timeout": rs["connect_timeout"],
            "delay_loop": rs["delay_loop"],
            "alpha": rs["alpha"],
            "virtualhost": rs["virtualhost"],
            "connect_ip": rs["address"],
            "connect_port": rs.get("port"),
        }
        rs_retry = rs.get("retry")
        rs_dbr = rs.get("delay_before_retry")
        rs_warmup = rs.get("warmup")
        out = []
        for one in given:
            if one is None:
                continue
            for x in one if isinstance(one, list) else (one,):
                c = {**base, **x}
                kind = c["type"]
                if c.get("retry") is None:
                    c["retry"] = rs_retry if rs_retry is not None else (
                        _DEFAULT_RETRY.get(kind, 1))
                if c.get("delay_before_retry") is None:
                    # the kind's default; DNS's (0) means the delay_loop
                    c["delay_before_retry"] = rs_dbr if rs_dbr is not None else (
                        _DEFAULT_DBR.get(kind, 1.0) or c["delay_loop"])
                if c.get("warmup") is None:
                    c["warmup"] = rs_warmup if rs_warmup is not None else c["delay_loop"]
                if kind == "MISC_CHECK" and not c.get("misc_timeout"):
                    c["misc_timeout"] = vs_loop  # keepalived: the virtual server's delay_loop
                out.append(_new_checker(c))
        return tuple(out)


_new_rs = dict_maker(RealServer)
_new_checker = dict_maker(Checker)
_DEFAULT_RETRY = {"MISC_CHECK": 0, "DNS_CHECK": 3}
_DEFAULT_DBR = {"HTTP_GET": 3.0, "SSL_GET": 3.0, "DNS_CHECK": 0.0}


def _pick(*candidates: Any) -> Any:
    for c in candidates:
        if c is not None:
            return c
    return None


def _granularity_ok(text: str, family: int) -> bool:
    """IPv6: a prefix length 1..128; IPv4: a netmask (or, director's reading, a length)."""
    if family == 6 or ("." not in text and ":" in text):
        return text.isdigit() and 1 <= int(text) <= 128
    if text.isdigit():
        return 0 <= int(text) <= 32
    try:
        return parse_ip(text)[1] == 4
    except SyntaxProblem:
        return False
