"""director's VRRP side on a LAN of namespaces: pairs of directors, trackers, notify
scripts and FIFO, link faults, sync groups, VMAC, what a client sees, and bad adverts
injected on the wire. VRRPv3 at advert_int 0.1 keeps them quick.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time

from lan import vrrp_conf, wait_for

VIP = "10.9.0.100"


def pair(lan, conf_a: str, conf_b: str, *args: str):
    """a first, master before b starts (two cold starts race at 0.1 s adverts)."""
    a = lan.start("a", "director", conf_a, *(args or ("-P",)))
    lan.wait_holder(VIP, "a", hosts=("a",))
    b = lan.start("b", "director", conf_b, *(args or ("-P",)))
    return a, b


def dump_json(lan, daemon) -> list[dict]:
    path = os.path.join(daemon.dir, "keepalived.json")
    if os.path.exists(path):
        os.unlink(path)
    daemon.proc.send_signal(signal.SIGRTMIN + 2)
    wait_for(lambda: os.path.exists(path), 10, what="keepalived.json")
    with open(path) as f:
        return json.load(f)


def mac(lan, host: str, dev: str = "eth0") -> str:
    return lan.run(host, "cat", f"/sys/class/net/{dev}/address").stdout.strip()



def test_director_pair_term_hands_over_with_priority_zero(lan):
    a, b = pair(lan, vrrp_conf(priority=150), vrrp_conf(priority=100))
    lan.wait_holder(VIP, "a")
    time.sleep(0.5)
    assert lan.holders(VIP) == ["a"]
    t0 = time.monotonic()
    a.kill(signal.SIGTERM)
    lan.wait_holder(VIP, "b", 10)
    # priority 0 -> b waits only its skew time (~0.06 s), far less than Master_Down
    assert time.monotonic() - t0 < 2.0
    assert "sent 0 priority" in a.output() and "removing VIPs." in a.output()
    assert VIP not in lan.addrs("a")


def test_dumps_on_signals(lan):
    a, b = pair(lan, vrrp_conf(priority=150), vrrp_conf(priority=100), "-P", "--dump-dir",
                "{dir}")
    wait_for(lambda: "VRRP started" in b.output(), 10, what="b running")
    time.sleep(0.6)
    ja, jb = dump_json(lan, a)[0], dump_json(lan, b)[0]
    assert (ja["data"]["state"], jb["data"]["state"]) == (2, 1)  # MASTER, BACKUP
    assert ja["data"]["iname"] == "VI_1" and ja["data"]["vips"] == ["10.9.0.100/24"]
    assert ja["stats"]["become_master"] == 1 and ja["stats"]["advert_sent"] >= 3
    assert jb["stats"]["advert_rcvd"] >= 3 and jb["stats"]["become_master"] == 0
    for sig, name in ((signal.SIGUSR1, "keepalived.data"), (signal.SIGUSR2, "keepalived.stats")):
        a.proc.send_signal(sig)
        path = os.path.join(a.dir, name)
        wait_for(lambda p=path: os.path.exists(p), 10, what=name)
    data = open(os.path.join(a.dir, "keepalived.data")).read()
    assert " VRRP Instance = VI_1" in data and "   State = MASTER" in data
    assert "     10.9.0.100/24 dev eth0 scope global" in data
    stats = open(os.path.join(a.dir, "keepalived.stats")).read()
    assert stats.startswith("VRRP Instance: VI_1\n  Advertisements:\n    Received:")
    assert "  Became master: 1\n" in stats


def test_track_script_moves_master(lan, tmp_path):
    flag = tmp_path / "maintenance"
    script = tmp_path / "chk.sh"
    script.write_text(f"#!/bin/sh\n[ ! -e {flag} ]\n")
    script.chmod(0o755)
    head = (f"vrrp_script chk {{\n    script \"{script}\"\n    interval 1\n    weight -60\n"
            "    fall 1\n    rise 1\n}\n")
    track = "    track_script {\n        chk\n    }\n"
    a, b = pair(lan, vrrp_conf(priority=150, head=head, extra=track),
                vrrp_conf(priority=100))  # one filesystem: only a tracks the flag
    lan.wait_holder(VIP, "a")
    flag.write_text("")
    lan.wait_holder(VIP, "b", 15)
    assert "VRRP_Script(chk) failed" in a.output()
    flag.unlink()
    lan.wait_holder(VIP, "a", 15)


def test_notify_scripts_and_fifo(lan, tmp_path):
    log = tmp_path / "notify.log"
    script = tmp_path / "notify.sh"
    script.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\n")
    script.chmod(0o755)
    fifo = tmp_path / "vrrp.fifo"
    os.mkfifo(fifo)
    lines: list[str] = []

    def reader() -> None:
        with open(fifo) as f:
            for line in f:
                lines.append(line.strip())

    threading.Thread(target=reader, daemon=True).start()
    glob = f"    vrrp_notify_fifo {fifo}\n"
    extra = (f"    notify_master \"{script} master-arg 'two words'\"\n"
             f"    notify_backup \"{script} backup-arg\"\n    notify {script}\n")
    a = lan.start("a", "director", vrrp_conf(priority=150, glob=glob, extra=extra))
    lan.wait_holder(VIP, "a")
    wait_for(lambda: 'INSTANCE "VI_1" MASTER 150' in lines, 10, what="FIFO MASTER line")
    assert lines[0] == 'INSTANCE "VI_1" BACKUP 150'
    wait_for(lambda: log.exists() and "INSTANCE VI_1 MASTER 150" in log.read_text(), 10,
             what="notify with keepalived's four arguments")
    text = log.read_text().splitlines()
    assert "master-arg two words" in text
    assert "backup-arg" in text
    a.kill(signal.SIGTERM)
    wait_for(lambda: 'INSTANCE "VI_1" STOP 150' in lines, 10, what="FIFO STOP line")


def test_link_down_is_fault(lan):
    a, b = pair(lan, vrrp_conf(priority=150), vrrp_conf(priority=100))
    lan.wait_holder(VIP, "a")
    lan.run("sw", "ip", "link", "set", lan.port("a"), "down")  # a loses carrier
    wait_for(lambda: "Entering FAULT STATE" in a.output(), 10, what="FAULT on a")
    lan.wait_holder(VIP, "b", 10)
    lan.run("sw", "ip", "link", "set", lan.port("a"), "up")
    lan.wait_holder(VIP, "a", 15)  # back to BACKUP, then preempts


def test_sync_group_moves_together(lan):
    def conf(priority: int, track: str = "") -> str:
        two = vrrp_conf(priority=priority, name="VI_1")
        two += vrrp_conf(priority=priority, name="VI_2", vrid=52,
                         vips=("10.9.0.101/24",), extra=track).split("}\n", 1)[1]
        return two + "vrrp_sync_group G {\n    group {\n        VI_1\n        VI_2\n    }\n}\n"

    # a veth pair inside a: t1 down takes t0's carrier (this kernel has no dummy links)
    lan.run("a", "ip", "link", "add", "t0", "type", "veth", "peer", "name", "t1")
    for dev in ("t0", "t1"):
        lan.run("a", "ip", "link", "set", dev, "up")
    a, b = pair(lan, conf(150, "    track_interface {\n        t0\n    }\n"), conf(100))
    lan.wait_holder(VIP, "a")
    lan.wait_holder("10.9.0.101", "a")
    lan.run("a", "ip", "link", "set", "t1", "down")  # VI_2's own fault
    lan.wait_holder(VIP, "b", 10)  # ... takes VI_1 along
    lan.wait_holder("10.9.0.101", "b", 10)
    assert "(VI_1) Entering FAULT STATE" in a.output()
    lan.run("a", "ip", "link", "set", "t1", "up")
    lan.wait_holder(VIP, "a", 15)
    lan.wait_holder("10.9.0.101", "a", 15)


def test_client_sees_garp_and_reaches_vip(lan):
    a, b = pair(lan, vrrp_conf(priority=150), vrrp_conf(priority=100))
    lan.wait_holder(VIP, "a")
    lan.run("c", "ping", "-c", "1", "-W", "2", VIP)
    assert lan.neigh_mac("c", VIP) == mac(lan, "a")
    a.kill()
    lan.run("a", "ip", "addr", "del", f"{VIP}/24", "dev", "eth0")  # a is gone for good
    lan.wait_holder(VIP, "b", 10, hosts=("b",))
    # the GARP moved c's entry without c asking
    wait_for(lambda: lan.neigh_mac("c", VIP) == mac(lan, "b"), 10, what="GARP seen by c")
    lan.run("c", "ping", "-c", "1", "-W", "2", VIP)


def test_vmac_keeps_the_mac_across_failover(lan):
    extra = "    use_vmac\n"
    a, b = pair(lan, vrrp_conf(priority=150, extra=extra), vrrp_conf(priority=100, extra=extra))
    lan.wait_holder(VIP, "a")
    time.sleep(1)  # b hears a's adverts through its own VMAC: no second master
    assert lan.holders(VIP) == ["a"]
    assert VIP in lan.addrs("a", "vrrp.51")
    assert mac(lan, "a", "vrrp.51") == "00:00:5e:00:01:33"
    lan.run("c", "ping", "-c", "1", "-W", "2", VIP)
    assert lan.neigh_mac("c", VIP) == "00:00:5e:00:01:33"
    a.kill(signal.SIGTERM)
    lan.wait_holder(VIP, "b", 10)
    lan.run("c", "ping", "-c", "1", "-W", "2", VIP)
    assert lan.neigh_mac("c", VIP) == "00:00:5e:00:01:33"
    assert "vrrp.51" not in lan.run("a", "ip", "link").stdout  # removed on stop


BAD = {
    # name: (scapy expression for the packet, the counter it must land in)
    "ttl": ("IP(dst='224.0.0.18', ttl=64, proto=112)/VRRPv3(vrid=51, priority=200, "
            "ipcount=1, addrlist=['10.9.0.100'], adv=10)", "ip_ttl_err"),
    "checksum": ("IP(dst='224.0.0.18', ttl=255, proto=112)/VRRPv3(vrid=51, priority=200, "
                 "ipcount=1, addrlist=['10.9.0.100'], adv=10, chksum=0x1234)", "chk_err"),
    "type": ("IP(dst='224.0.0.18', ttl=255, proto=112)/VRRPv3(type=2, vrid=51, "
             "priority=200, ipcount=1, addrlist=['10.9.0.100'], adv=10)",
             "invalid_type_rcvd"),
    "short": ("IP(dst='224.0.0.18', ttl=255, proto=112)/Raw(bytes([0x31, 51, 200, 3]))",
              "packet_len_err"),
    "version2": ("IP(dst='224.0.0.18', ttl=255, proto=112)/VRRP(vrid=51, priority=200, "
                 "ipcount=1, addrlist=['10.9.0.100'])", "invalid_type_rcvd"),
}


def test_bad_adverts_on_the_wire_are_dropped_and_counted(lan):
    a = lan.start("a", "director", vrrp_conf(priority=150), "-P", "--dump-dir", "{dir}")
    lan.wait_holder(VIP, "a")
    lines = "\n".join(f"send({expr}, iface='eth0', count=3, verbose=0)"
                      for expr, _ in BAD.values())
    script = ("from scapy.all import IP, Raw, send\n"
              "from scapy.layers.vrrp import VRRP, VRRPv3\n" + lines)
    lan.run("c", sys.executable, "-c", script)
    time.sleep(0.5)
    stats = dump_json(lan, a)[0]["stats"]
    want: dict[str, int] = {}
    for _expr, counter in BAD.values():
        want[counter] = want.get(counter, 0) + 3
    for counter, n in want.items():
        assert stats[counter] == n, (counter, stats)
    assert lan.holders(VIP) == ["a"]  # a priority 200 forgery moved nothing
    assert a.proc.poll() is None
