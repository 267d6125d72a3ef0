"""A virtual route in keepalived's multipath syntax (`nexthop via A weight N nexthop via
B`, and the old `via A or B`) is installed by the master as one route with two paths,
and removed when it stops."""

from __future__ import annotations

import signal

from lan import vrrp_conf, wait_for

ROUTES = """    virtual_routes {
        10.20.0.0/24 nexthop via 10.9.0.3 weight 2 nexthop via 10.9.0.4
        10.21.0.0/24 via 10.9.0.3 or 10.9.0.4
    }
"""


def test_multipath_virtual_routes(lan):
    d = lan.start("a", "director", vrrp_conf(priority=150, state="MASTER", extra=ROUTES))

    def routes() -> str:
        return lan.run("a", "ip", "route", "show").stdout

    wait_for(lambda: "10.20.0.0/24" in routes() and "10.21.0.0/24" in routes(), 20,
             what="the two multipath routes on the master")
    out = lan.run("a", "ip", "route", "show", "10.20.0.0/24").stdout
    assert "nexthop via 10.9.0.3 dev eth0 weight 2" in out, out
    assert "nexthop via 10.9.0.4 dev eth0 weight 1" in out, out
    out = lan.run("a", "ip", "route", "show", "10.21.0.0/24").stdout
    assert out.count("nexthop via") == 2, out
    d.kill(signal.SIGTERM)
    wait_for(lambda: "10.20.0.0/24" not in routes(), 20, what="the routes removed at stop")
    assert "10.21.0.0/24" not in routes()
