"""`director -f` with both children and `--metrics`: /metrics parsed by prometheus_client's
own parser and /status checked against the live state (VRRP master, one real server up
and one down by TCP_CHECK). The LVS side runs on the dry-run plane here (no IPVS in
this kernel); the kernel tier covers IPVS itself."""

from __future__ import annotations

import json
import subprocess
import sys

from lan import vrrp_conf, wait_for
from prometheus_client.parser import text_string_to_metric_families

LVS = """
virtual_server 10.9.0.100 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 127.0.0.1 18081 {
        weight 3
        TCP_CHECK {
            connect_timeout 1
            retry 0
        }
    }
    real_server 127.0.0.1 18082 {
        TCP_CHECK {
            connect_timeout 1
            retry 0
        }
    }
}
"""

FETCH = ("import sys, urllib.request\n"
         "print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())\n")


def test_metrics_and_status(lan):
    web = subprocess.Popen(["ip", "netns", "exec", lan.ns["a"], sys.executable, "-m",
                            "http.server", "18081", "--bind", "127.0.0.1"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        a = lan.start("a", "director", vrrp_conf(priority=150) + LVS, "--dry-run",
                      "--metrics", "127.0.0.1:19650", "--runtime-dir", "{dir}/run")

        def get(path: str) -> str:
            r = lan.run("a", sys.executable, "-c", FETCH, f"http://127.0.0.1:19650{path}",
                        check=False)
            return r.stdout if r.returncode == 0 else ""

        def settled() -> dict | None:
            text = get("/status")
            if not text:
                return None
            st = json.loads(text)
            if not (st["vrrp"] and st["lvs"]):
                return None
            rs = st["lvs"]["virtual_servers"][0]["real_servers"]
            if st["vrrp"]["instances"][0]["state"] != "MASTER" or rs[1]["alive"]:
                return None
            return st
        st = wait_for(settled, 40, step=0.5, what="master and rs2 down in /status")
        lan.wait_holder("10.9.0.100", "a", hosts=("a",))
        inst = st["vrrp"]["instances"][0]
        assert (inst["name"], inst["vrid"], inst["vips"]) == ("VI_1", 51, ["10.9.0.100/24"])
        assert inst["stats"]["become_master"] == 1 and inst["stats"]["advert_sent"] > 0
        rs = st["lvs"]["virtual_servers"][0]["real_servers"]
        assert (rs[0]["alive"], rs[0]["weight"], rs[1]["alive"]) == (True, 3, False)
        assert rs[0]["checkers"][0]["type"] == "TCP_CHECK"

        samples = {}
        for fam in text_string_to_metric_families(get("/metrics")):
            for s in fam.samples:
                samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
        def value(name: str, **labels: str) -> float:
            return samples[(name, tuple(sorted(labels.items())))]

        vr = dict(iname="VI_1", intf="eth0", vrid="51")
        assert value("keepalived_vrrp_state", ip_address="10.9.0.100/24", **vr) == 2
        assert value("keepalived_vrrp_become_master_total", **vr) == 1
        assert value("keepalived_vrrp_advert_sent_total", **vr) > 0
        vs = dict(vip="10.9.0.100", port="80", protocol="TCP")
        assert value("keepalived_lvs_rs_up", rs="127.0.0.1", rsport="18081", **vs) == 1
        assert value("keepalived_lvs_rs_up", rs="127.0.0.1", rsport="18082", **vs) == 0
        assert value("keepalived_lvs_rs_weight", rs="127.0.0.1", rsport="18081", **vs) == 3
        assert value("director_checker_up", rs="127.0.0.1", rsport="18082",
                     checker="TCP_CHECK", **vs) == 0
        assert value("keepalived_lvs_vip_conn_total", **vs) == 0  # dry run: no kernel
        assert a.proc.poll() is None  # the scrapes left the daemon running
    finally:
        web.kill()
        web.wait()
