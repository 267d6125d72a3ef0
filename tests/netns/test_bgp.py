"""`director -f` with `bgp_speaker` against a real BIRD 2 router, on a LAN of namespaces.

The router ("r") peers with each director's ExaBGP; its routes are read with birdc and
from its kernel table. The real server is nginx ("rs") checked by TCP_CHECK. IPVS is a
dry run on this kernel (automatic): what is tested is the announcement, which follows
the pool's quorum exactly as it would with the kernel's table.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from datetime import datetime

import pytest
from bird import Bird
from lan import DIRECTOR, Lan
from testlib import wait_for

VIP = "10.30.0.100"
NET = "10.41.0"
HOSTS = {"r": 1, "d1": 11, "d2": 12, "rs": 21}


def director_conf(me: str, grace: float = 1.0, vs: bool = True) -> str:
    speaker = f"""
bgp_speaker {{
    router_id {me}
    local_as 65010
    neighbor {NET}.1 {{
        remote_as 65000
        hold_time 3
    }}
    withdraw_grace {grace}
}}
"""
    server = f"""
virtual_server {VIP} 80 {{
    protocol TCP
    delay_loop 0.2
    lb_kind NAT
    alpha
    bgp_announce
    real_server {NET}.21 80 {{
        TCP_CHECK {{
            connect_timeout 0.5
            retry 0
        }}
    }}
}}
"""
    # a reload that drops the service keeps another (the checker side keeps running)
    other = server.replace(f"{VIP} 80", f"{VIP} 81").replace("    bgp_announce\n", "")
    return speaker + (server if vs else "") + other


@pytest.fixture
def net():
    if os.geteuid() != 0:
        pytest.skip("network namespace tests need root")
    made = Lan(HOSTS, net=NET, net6="fd00:41::")
    try:
        made.nginx("rs", "rs")
        yield made
    finally:
        made.close()


def bgp_status(d) -> dict:
    path = os.path.join(d.dir, "bgp.json")
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return {}


def log_time(d, pattern: str) -> datetime:
    """The time of the last director log line matching `pattern`."""
    stamps = re.findall(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*" + pattern, d.output(),
                        re.M)
    assert stamps, f"no log line matching {pattern!r}"
    return datetime.strptime(stamps[-1], "%Y-%m-%d %H:%M:%S,%f")


def bird_time(day: datetime, hms: str) -> datetime:
    return datetime.strptime(f"{day:%Y-%m-%d} {hms}", "%Y-%m-%d %H:%M:%S.%f")


def test_announce_follows_quorum_and_survives_child_restarts(net):
    bird = Bird(net, "r", f"{NET}.1", 65000, {"d1": (f"{NET}.11", 65010)})
    d = net.start("d1", "director", director_conf(f"{NET}.11", grace=2.0), "--dry-run")

    # quorum up (the pool starts down with alpha): announced, the VIP on lo
    wait_for(lambda: bird.routes(VIP) == [f"{NET}.11"], 30, what="the VIP's route in BIRD")
    assert bird.kernel_nexthops(VIP) == [f"{NET}.11"]
    assert VIP in net.addrs("d1", "lo")
    st = net.run("d1", DIRECTOR, "ctl", "status", "--runtime-dir", d.dir).stdout
    assert "BGP (exabgp)" in st and re.search(rf"{NET}.1\s+up", st), st
    assert re.search(r"10.30.0.100/32\s+lo\s+\S+\s+VS \[10.30.0.100\]:tcp:80 has quorum",
                     st), st
    t_up = log_time(d, r"Gained quorum .*tcp:80$")
    seen = bird_time(t_up, bird.route_time(VIP))
    print(f"start: quorum up -> route in BIRD: {(seen - t_up).total_seconds():.3f} s "
          f"(the speaker's session being set up)")

    # the real server stops answering: withdrawn, the VIP leaves lo
    net.nginx_stop("rs")
    wait_for(lambda: bird.routes(VIP) == [], 15, what="the route withdrawn")
    t_down = log_time(d, r"Lost quorum .*tcp:80$")
    gone = bird_time(t_down, bird.removed_time(VIP))
    print(f"quorum down -> route gone from BIRD: {(gone - t_down).total_seconds():.3f} s")
    assert VIP not in net.addrs("d1", "lo")
    assert bird.counters("d1")["withdraws"] == 1
    assert "BGP: withdrawn 10.30.0.100/32: VS [10.30.0.100]:tcp:80 lost quorum" in d.output()
    assert bird.state("d1") == "Established"  # a withdrawal, not a session loss

    # restored: announced again
    net.nginx("rs", "rs")
    wait_for(lambda: bird.routes(VIP) == [f"{NET}.11"], 15, what="the route back")
    t_up = log_time(d, r"Gained quorum .*tcp:80$")
    seen = bird_time(t_up, bird.route_time(VIP))
    print(f"quorum up -> route in BIRD: {(seen - t_up).total_seconds():.3f} s")
    assert VIP in net.addrs("d1", "lo")

    # kill -9 of the checker child: the speaker keeps its state; the new child adopts
    # the table and re-sends the same wanted state: BIRD hears nothing at all
    before = bird.counters("d1")
    seq = bgp_status(d)["applied_seq"]
    with open(os.path.join(d.dir, "c.pid")) as f:
        checker = int(f.read())
    os.kill(checker, signal.SIGKILL)
    wait_for(lambda: bgp_status(d).get("applied_seq", 0) > seq, 20,
             what="the restarted checker child's state applied by the speaker")
    assert bird.counters("d1") == before, "BIRD received an update or a withdrawal"
    assert bird.routes(VIP) == [f"{NET}.11"] and bird.state("d1") == "Established"

    # kill -9 of the speaker child: its session drops; the restarted speaker announces
    # again what the LVS child wants
    speaker = bgp_status(d)["pid"]
    os.kill(speaker, signal.SIGKILL)
    wait_for(lambda: bgp_status(d).get("pid") not in (None, speaker) and
             bgp_status(d).get("announced"), 30, what="a new speaker announcing")
    wait_for(lambda: bird.routes(VIP) == [f"{NET}.11"], 20,
             what="the route from the new speaker")

    # SIGTERM: withdrawn first (an explicit withdrawal, while director still runs), then
    # the rest stops
    before = bird.counters("d1")
    t0 = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: bird.routes(VIP) == [], 10, what="the route withdrawn at TERM")
    assert d.proc.poll() is None, "director exited before BIRD saw the withdrawal"
    assert bird.counters("d1")["withdraws"] == before["withdraws"] + 1
    assert d.proc.wait(20) == 0
    print(f"TERM -> director exited: {time.monotonic() - t0:.2f} s (withdraw_grace 2)")
    out = d.output()
    t_term = log_time(d, rf"director\[{d.proc.pid}\]: Stopping$")
    gone = bird_time(t_term, bird.removed_time(VIP))
    print(f"TERM -> route gone from BIRD: {(gone - t_term).total_seconds():.3f} s")
    lvs_exit = list(re.finditer(r"Healthcheck child \d+ exited \(status 0\)", out))[-1]
    assert out.index("BGP: withdrawn 10.30.0.100/32: director stopping") < lvs_exit.start()
    assert VIP not in net.addrs("d1", "lo")


def test_two_directors_are_two_ecmp_next_hops_and_reload_withdraws_first(net):
    bird = Bird(net, "r", f"{NET}.1", 65000, {"d1": (f"{NET}.11", 65010),
                                              "d2": (f"{NET}.12", 65010)})
    d1 = net.start("d1", "director", director_conf(f"{NET}.11"), "--dry-run")
    d2 = net.start("d2", "director", director_conf(f"{NET}.12"), "--dry-run")
    both = sorted([f"{NET}.11", f"{NET}.12"])
    wait_for(lambda: sorted(bird.kernel_nexthops(VIP)) == both, 30,
             what="two next hops for the VIP in the router's kernel table")
    assert sorted(bird.routes(VIP)) == both

    # the real server unreachable from d1 only: d1 withdraws, d2 stays; then back
    net.run("d1", "ip", "route", "add", "unreachable", f"{NET}.21/32")
    wait_for(lambda: bird.kernel_nexthops(VIP) == [f"{NET}.12"], 15,
             what="d1's next hop gone while it cannot reach the real server")
    net.run("d1", "ip", "route", "del", "unreachable", f"{NET}.21/32")
    wait_for(lambda: sorted(bird.kernel_nexthops(VIP)) == both, 15,
             what="d1's next hop back")

    # a reload that removes d1's announced service: withdrawn before IPVS loses it
    d1.write_conf(director_conf(f"{NET}.11", vs=False))
    d1.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: bird.kernel_nexthops(VIP) == [f"{NET}.12"], 15,
             what="d1's next hop gone after its reload")
    wait_for(lambda: "dry-run: del service [10.30.0.100]:tcp:80" in d1.output(), 10,
             what="d1's reload to remove the service")
    out = d1.output()
    assert out.index("BGP: withdrawn 10.30.0.100/32: no longer configured") < \
        out.index("dry-run: del service [10.30.0.100]:tcp:80")
    assert bird.state("d1") == "Established"
    assert d2.proc.poll() is None

    # a reload that changes d2's bgp_speaker (hold time): its engine restarts and
    # announces again; the reload that changes nothing there leaves BIRD alone
    speaker = bgp_status(d2)["pid"]
    session, announced = bird.since("d2"), bird.route_time(VIP)
    d2.write_conf(director_conf(f"{NET}.12").replace("hold_time 3", "hold_time 5"))
    d2.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "hold-time 5;" in open(os.path.join(d2.dir, "exabgp.conf")).read(), 15,
             what="d2's engine configuration rewritten")
    wait_for(lambda: bird.state("d2") == "Established" and bird.since("d2") != session and
             bird.route_time(VIP) not in (None, announced) and
             bird.kernel_nexthops(VIP) == [f"{NET}.12"], 20,
             what="d2's new session announcing the VIP again after its reload")
    assert bgp_status(d2)["pid"] == speaker  # the speaker stayed, its engine restarted
    assert "BGP: bgp_speaker changed: the engine restarts" in d2.output()


def test_ipv6_vip_over_an_ipv6_session(net):
    """An IPv6 VIP (/128 on lo) announced to an IPv6 neighbor, next hop the director's own
    address on that link."""
    vip6 = "2001:db8::100"
    bird = Bird(net, "r", f"{NET}.1", 65000, {"d1": ("fd00:41::11", 65010)})
    conf = director_conf("10.41.0.11").replace(f"neighbor {NET}.1", "neighbor fd00:41::1")
    conf = conf.replace(f"{VIP} 80", f"{vip6} 80").replace(f"{NET}.21 80", "fd00:41::21 80")
    conf = conf.split("\nvirtual_server", 2)
    d = net.start("d1", "director", conf[0] + "\nvirtual_server" + conf[1], "--dry-run")
    wait_for(lambda: bird.routes(vip6) == ["fd00:41::11"], 30,
             what="the IPv6 VIP's route in BIRD")
    assert bird.kernel_nexthops(vip6) == ["fd00:41::11"]
    assert vip6 in net.addrs("d1", "lo")
    net.nginx_stop("rs")
    wait_for(lambda: bird.routes(vip6) == [], 15, what="the IPv6 route withdrawn")
    assert vip6 not in net.addrs("d1", "lo")
    assert "BGP: withdrawn 2001:db8::100/128: VS [2001:db8::100]:tcp:80 lost quorum" in \
        d.output()
