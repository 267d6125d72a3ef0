"""Receive checks of one instance (RFC 3768 §7.1, RFC 5798 §7.1, keepalived's choices). Pure.

`check` takes what the socket saw (addresses, TTL, the VRRP payload) and the instance's
policy, and returns a `Verdict`: the advert to hand to the state machine, or none, and
the keepalived counters to bump. A few problems are counted but the advert is still
used, as keepalived does outside strict mode (an address list that differs from ours).
"""

from __future__ import annotations

import attrs

from .packet import AUTH_AH, AUTH_NONE, AUTH_PASS, Advert, Drop, decode

# keepalived's per-instance counters (`keepalived.stats`, SNMP vrrpStatistics*)
COUNTERS = ("advert_rcvd", "advert_sent", "become_master", "release_master", "packet_len_err",
            "advert_interval_err", "ip_ttl_err", "invalid_type_rcvd", "addr_list_err",
            "invalid_authtype", "authtype_mismatch", "auth_failure", "pri_zero_rcvd",
            "pri_zero_sent", "chk_err", "unicast_src_err")


@attrs.frozen
class Received:
    family: int
    src: str
    dst: str
    ttl: int
    payload: bytes
    multicast: bool


@attrs.frozen
class Policy:
    version: int
    vrid: int
    interval_cs: int
    auth_type: int = AUTH_NONE
    auth_pass: bytes = b""
    addrs: frozenset[str] = frozenset()
    # unicast peer address -> (min_ttl, max_ttl); empty: multicast instance
    peers: dict[str, tuple[int | None, int | None]] = attrs.field(factory=dict)
    strict: bool = False
    skip_check_adv_addr: bool = False
    checksum_as_v2: bool = False
    check_unicast_src: bool = False  # keepalived's default: off unless configured


@attrs.frozen
class Verdict:
    advert: Advert | None
    counters: tuple[str, ...] = ()
    message: str = ""


def _drop(counter: str, message: str) -> Verdict:
    return Verdict(None, (counter,), message)


def check(policy: Policy, rx: Received) -> Verdict:
    if rx.multicast and rx.ttl != 255:
        return _drop("ip_ttl_err", f"invalid TTL/HL {rx.ttl}, expected 255")
    if policy.peers and policy.check_unicast_src:  # keepalived checks TTLs only here too
        if rx.src not in policy.peers:
            return _drop("unicast_src_err", f"advert from {rx.src}, not a unicast peer")
        lo, hi = policy.peers[rx.src]
        if (lo is not None and rx.ttl < lo) or (hi is not None and rx.ttl > hi):
            return _drop("ip_ttl_err", f"TTL {rx.ttl} from {rx.src} out of range")
    try:
        adv = decode(rx.payload, rx.family, rx.src, rx.dst, policy.checksum_as_v2)
    except Drop as e:
        return _drop(e.counter, str(e))
    if adv.vrid != policy.vrid:
        return _drop("invalid_type_rcvd", f"VRID {adv.vrid} is not ours ({policy.vrid})")
    if adv.version != policy.version:
        return _drop("invalid_type_rcvd",
                     f"VRRPv{adv.version} advert for a VRRPv{policy.version} instance")
    if adv.version == 2:
        if adv.auth_type not in (AUTH_NONE, AUTH_PASS, AUTH_AH):
            return _drop("invalid_authtype", f"unknown auth type {adv.auth_type}")
        if adv.auth_type != policy.auth_type:
            return _drop("authtype_mismatch",
                         f"auth type {adv.auth_type}, expecting {policy.auth_type}")
        if policy.auth_type == AUTH_PASS and adv.auth_data != policy.auth_pass[:8]:
            return _drop("auth_failure", "wrong password")
        if adv.interval_cs != policy.interval_cs:
            return _drop("advert_interval_err",
                         f"advertisement interval mismatch mine={policy.interval_cs // 100} "
                         f"sec rcv'd={adv.interval_cs // 100} sec")
    elif adv.interval_cs == 0:
        return _drop("advert_interval_err", "advertisement interval 0")
    counters: list[str] = ["advert_rcvd"]
    message = ""
    if adv.priority == 0:
        counters.append("pri_zero_rcvd")
    if not policy.skip_check_adv_addr and frozenset(adv.addrs) != policy.addrs:
        counters.append("addr_list_err")
        message = "ip address list in advert differs from ours"
        if policy.strict:
            return Verdict(None, tuple(counters), message)
    return Verdict(adv, tuple(counters), message)
