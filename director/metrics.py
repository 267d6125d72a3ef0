"""`--metrics`: /metrics in Prometheus format (prometheus_client) and /status as JSON,
from what the VRRP and checker children publish in the runtime directory.

Metric names follow the keepalived exporters so that their dashboards work:
keepalived_vrrp_state (0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT, keepalived's JSON codes),
keepalived_vrrp_<counter>_total for keepalived's per-instance counters,
keepalived_lvs_vip_* and keepalived_lvs_rs_* from the kernel's IPVS counters, plus
keepalived_lvs_rs_weight / _up and director_checker_up per checker.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

log = logging.getLogger("director")

STATES = {"INIT": 0, "BACKUP": 1, "MASTER": 2, "FAULT": 3}
IPVS_COUNTERS = (("conns", "conn"), ("inpkts", "in_packets"), ("outpkts", "out_packets"),
                 ("inbytes", "in_bytes"), ("outbytes", "out_bytes"))


def read_state(directory: str) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for name in ("vrrp", "lvs", "bgp"):
        try:
            with open(os.path.join(directory, f"{name}.json")) as f:
                state[name] = json.load(f)
        except (OSError, ValueError):
            state[name] = None
    return state


class Collector:
    def __init__(self, directory: str) -> None:
        self.directory = directory

    def collect(self) -> Iterator[Metric]:
        st = read_state(self.directory)
        up = GaugeMetricFamily("keepalived_up", "1 if the daemon's children report state")
        up.add_metric([], 1 if (st["vrrp"] or st["lvs"]) else 0)
        yield up
        yield from self._vrrp(st["vrrp"] or {"instances": []})
        yield from self._lvs(st["lvs"] or {"virtual_servers": []})
        if st["bgp"]:
            yield from self._bgp(st["bgp"])

    def _bgp(self, bgp: dict[str, Any]) -> Iterator[Metric]:
        """The BGP speaker's sessions and announcements (director's extension)."""
        session = GaugeMetricFamily("director_bgp_session_up", "1 while the BGP session "
                                    "with the neighbor is established", labels=["neighbor"])
        for addr, state in sorted(bgp.get("peers", {}).items()):
            session.add_metric([addr], 1 if state == "up" else 0)
        announced = GaugeMetricFamily("director_bgp_announced", "1 for each prefix the "
                                      "speaker announces", labels=["prefix", "dev"])
        for a in bgp.get("announced", []):
            announced.add_metric([a["prefix"], a.get("dev", "")], 1)
        updates = CounterMetricFamily("director_bgp_updates", "announcements and "
                                      "withdrawals the engine confirmed")
        updates.add_metric([], bgp.get("updates", 0))
        yield session
        yield announced
        yield updates

    def _vrrp(self, v: dict[str, Any]) -> Iterator[Metric]:
        labels = ["iname", "intf", "vrid", "ip_address"]
        state = GaugeMetricFamily("keepalived_vrrp_state", "VRRP state (0 INIT, 1 BACKUP, "
                                  "2 MASTER, 3 FAULT)", labels=labels)
        prio = GaugeMetricFamily("keepalived_vrrp_priority", "effective priority",
                                 labels=labels[:3])
        held = GaugeMetricFamily("director_vrrp_handover", "1 while an operator's handover "
                                 "holds the instance in BACKUP (director ctl)",
                                 labels=labels[:3])
        counters: dict[str, CounterMetricFamily] = {}
        for inst in v.get("instances", []):
            base = [inst["name"], inst["interface"], str(inst["vrid"])]
            for vip in inst.get("vips", []) or [""]:
                state.add_metric(base + [vip], STATES.get(inst["state"], 0))
            prio.add_metric(base, inst["priority"])
            held.add_metric(base, 1 if inst.get("override") else 0)
            for name, value in inst.get("stats", {}).items():
                fam = counters.setdefault(name, CounterMetricFamily(
                    f"keepalived_vrrp_{name}", f"keepalived's {name} counter",
                    labels=labels[:3]))
                fam.add_metric(base, value)
        yield state
        yield prio
        yield held
        yield from counters.values()

    def _lvs(self, lvs: dict[str, Any]) -> Iterator[Metric]:
        vl = ["vip", "port", "protocol"]
        rl = vl + ["rs", "rsport"]
        vip = {k: CounterMetricFamily(f"keepalived_lvs_vip_{n}", f"IPVS {k} of the service",
                                      labels=vl) for k, n in IPVS_COUNTERS}
        rs = {k: CounterMetricFamily(f"keepalived_lvs_rs_{n}", f"IPVS {k} of the real server",
                                     labels=rl) for k, n in IPVS_COUNTERS}
        weight = GaugeMetricFamily("keepalived_lvs_rs_weight", "current weight", labels=rl)
        alive = GaugeMetricFamily("keepalived_lvs_rs_up", "1 if every checker says up",
                                  labels=rl)
        checker = GaugeMetricFamily("director_checker_up", "one checker's verdict",
                                    labels=rl + ["checker"])
        extra = {
            "effective": GaugeMetricFamily("director_lvs_rs_effective_weight", "the weight "
                                           "IPVS has (absent: not in the table)", labels=rl),
            "active": GaugeMetricFamily("director_lvs_rs_active_conns", "IPVS active "
                                        "connections", labels=rl),
            "inactive": GaugeMetricFamily("director_lvs_rs_inactive_conns", "IPVS inactive "
                                          "connections", labels=rl),
            "ov_weight": GaugeMetricFamily("director_lvs_rs_override_weight", "an operator's "
                                           "weight override (director ctl)", labels=rl),
            "drain": GaugeMetricFamily("director_lvs_rs_drain", "an operator's drain: "
                                       "1 draining, 2 drained", labels=rl),
        }
        for vs in lvs.get("virtual_servers", []):
            vk = [vs.get("address") or f"FWM {vs.get('fwmark')}", str(vs.get("port") or 0),
                  vs.get("protocol", "TCP")]
            for k, _n in IPVS_COUNTERS:
                vip[k].add_metric(vk, vs.get("stats", {}).get(k, 0))
            for r in vs.get("real_servers", []):
                rk = vk + [r["address"], str(r["port"])]
                for k, _n in IPVS_COUNTERS:
                    rs[k].add_metric(rk, r.get("stats", {}).get(k, 0))
                weight.add_metric(rk, r["weight"])
                if r.get("effective_weight") is not None:
                    extra["effective"].add_metric(rk, r["effective_weight"])
                extra["active"].add_metric(rk, r.get("activeconns", 0))
                extra["inactive"].add_metric(rk, r.get("inactconns", 0))
                ov = r.get("override") or {}
                if ov.get("weight") is not None:
                    extra["ov_weight"].add_metric(rk, ov["weight"])
                if ov.get("drain"):
                    extra["drain"].add_metric(rk, 1 if ov["drain"] == "draining" else 2)
                alive.add_metric(rk, 1 if r["alive"] else 0)
                for c in r.get("checkers", []):
                    checker.add_metric(rk + [c["type"]], 1 if c["up"] else 0)
        yield from vip.values()
        yield from rs.values()
        yield weight
        yield alive
        yield checker
        yield from extra.values()


def make_app(directory: str, controls: bool = False) -> web.Application:
    """`controls`: the page's drain/enable/weight buttons and their POST endpoint (only
    when the listener is loopback or a Unix socket: see status_page)."""
    from .status_page import add_page

    registry = CollectorRegistry()
    registry.register(Collector(directory))

    async def metrics(_req: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry),
                            headers={"Content-Type": "text/plain; version=0.0.4"})

    async def status(_req: web.Request) -> web.Response:
        return web.json_response(read_state(directory))

    app = web.Application(client_max_size=64 * 1024)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/status", status)
    add_page(app, directory, controls)
    return app


def parse_listen(spec: str) -> tuple[str, int]:
    """[ADDR:]PORT, or unix:PATH (port 0)."""
    if spec.startswith("unix:"):
        if not spec[5:]:
            raise ValueError("unix: wants a path")
        return spec, 0
    host, _, port = spec.rpartition(":")
    return (host.strip("[]") or "127.0.0.1"), int(port)


def is_local(host: str) -> bool:
    if host.startswith("unix:"):
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


async def serve(spec: str, directory: str) -> int:
    import asyncio
    import signal

    host, port = parse_listen(spec)
    runner = web.AppRunner(make_app(directory, controls=is_local(host)), access_log=None)
    await runner.setup()
    site: web.BaseSite
    if host.startswith("unix:"):
        site = web.UnixSite(runner, host[5:])
    else:
        site = web.TCPSite(runner, host, port)
    old = os.umask(0o177)  # a Unix socket listener is root-only, like the control socket
    try:
        await site.start()
    except OSError as e:
        log.error("status endpoint on %s:%d: %s", host, port, e.strerror)
        await runner.cleanup()
        return 1
    finally:
        os.umask(old)
    log.info("Serving /, /metrics and /status on %s (page controls %s)", site.name,
             "on" if is_local(host) else "off: not loopback")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: None)
    await stop.wait()
    await runner.cleanup()
    return 0
