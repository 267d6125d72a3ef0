"""`director -t` looks at the host it runs on: interfaces and the IPVS family."""

from __future__ import annotations

import os
import sys

from testlib import ROOT, sh

CONF = """
vrrp_instance VI_1 {
    interface %s
    virtual_router_id 51
    track_interface {
        %s
    }
    virtual_ipaddress {
        10.0.0.1
    }
}
"""


def director_t(ns: str, conf: str) -> str:
    proc = sh("ip", "netns", "exec", ns, sys.executable, "-m", "director", "-t", "-f", conf,
              check=False, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stderr


def test_interface_existence_is_checked_in_the_namespace(netns, tmp_path):
    ns = netns()
    sh("ip", "-n", ns, "link", "add", "dtveth0", "type", "veth", "peer", "name", "dtveth1")
    conf = tmp_path / "k.conf"
    conf.write_text(CONF % ("dtveth0", "dtveth1"))
    assert "doesn't exist" not in director_t(ns, str(conf))
    conf.write_text(CONF % ("dtveth0", "eth7"))
    err = director_t(ns, str(conf))
    assert f"{conf}:6: warning: (VI_1) interface eth7 doesn't exist" in err
    assert "dtveth0" not in err
    # the same file, checked outside the namespace, does not see dtveth0
    host_err = sh(sys.executable, "-m", "director", "-t", "-f", str(conf), cwd=ROOT).stderr
    assert "interface dtveth0 doesn't exist" in host_err


def test_ipvs_family_detection_matches_the_kernel(netns):
    ns = netns()
    code = "from director.ipvs_netlink import ipvs_available as a; print(a())"
    out = sh("ip", "netns", "exec", ns, sys.executable, "-c", code, cwd=ROOT).stdout.strip()
    assert out == str(os.path.exists("/proc/net/ip_vs"))
