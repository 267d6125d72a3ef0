"""The seed scenarios that need no IPVS, end to end: the example configs of
conf/examples/ run by `director -f` in namespaces, nginx on the nodes, a client.

Each test runs an example as written, except for the substitutions it lists: script and
state-file paths (the examples name /usr/libexec/keepalived/..., /var/run/...) and, where
the example runs VRRPv3, faster adverts and script intervals so that the test is quick.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import tempfile
import time

import pytest
from lan import wait_for
from testlib import EXAMPLES, example

SCRIPTS = os.path.join(EXAMPLES, "scripts")
ARGS = ("--dump-dir", "{dir}")


def state_of(daemon, name: str = "VI_1") -> dict:
    """The instance's live state as the VRRP child publishes it (runtime dir)."""
    path = os.path.join(daemon.dir, "vrrp.json")
    with open(path) as f:
        return next(i for i in json.load(f)["instances"] if i["name"] == name)


def read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None


# ---- 000: NGINX Plus HA (unicast VRRPv3, tracked scripts of weight 50, notify state) ----

V4 = ("192.168.100.150", "192.168.100.151")
V6 = "fd00:100::150"
FAST_000 = {
    "advert_int                 1": "advert_int                 0.1",
    "interval 10": "interval 1",
    "interval 3": "interval 1",
    "garp_master_refresh        5": "garp_master_refresh        1",
    "/usr/libexec/keepalived/": SCRIPTS + "/",
    "/var/run/": "{dir}/",
}


def test_000_nginx_plus_ha(make_lan):
    lan = make_lan({"a": 100, "b": 101, "c": 102}, net="192.168.100", net6="fd00:100::")
    lan.nginx("a", "node-a")
    lan.nginx("b", "node-b")
    a = lan.start("a", "director", example("000-nginx-ha-primary.conf", FAST_000), *ARGS)
    b = lan.start("b", "director", example("000-nginx-ha-secondary.conf", FAST_000), *ARGS)
    state_file = {d: os.path.join(d.dir, "nginx-ha-keepalived.state") for d in (a, b)}

    def on(node: str, timeout: float = 20) -> None:
        for vip in (*V4, V6):
            lan.wait_holder(vip, node, timeout)
        master, backup = (a, b) if node == "a" else (b, a)
        wait_for(lambda: read(state_file[master]) == "STATE=MASTER\n", 10,
                 what=f"{node}'s notify script to record MASTER")
        wait_for(lambda: read(state_file[backup]) == "STATE=BACKUP\n", 10,
                 what="the backup's notify script to record BACKUP")
        body = f"node-{node}"
        assert [lan.http_get("c", f"http://{v}/") for v in V4] == [body, body]
        assert lan.http_get("c", f"http://[{V6}]/") == body

    # both scripts succeed on both nodes: 101+50+50 against 100+50+50
    on("a", 30)
    wait_for(lambda: state_of(a)["priority"] == 201, 10, what="a at priority 201")

    # garp_master_refresh (1 s here) on its own timer from the transition, as keepalived
    # 2.2.7 sends it: refresh rounds of 1 every second, beside the rounds of 5 at the
    # transition and garp_master_delay (5 s) later. Rounds told apart by size (a round's
    # repeats leave together: garp_interval 0), so a window holding the delay round works.
    refresh = 1.0
    seen = lan.sniff_arp("c", 4.5)()
    rounds: list[list[float]] = []
    for t in sorted(t for t, ip, _ in seen if ip == V4[0]):
        if rounds and t - rounds[-1][-1] < 0.3 * refresh:
            rounds[-1].append(t)
        else:
            rounds.append([t])
    assert sum(len(r) == 1 for r in rounds) >= 3, rounds

    # nginx stops on the master: chk_nginx_service fails, 151 < 200, the VIPs move
    lan.nginx_stop("a")
    on("b")
    assert "VRRP_Script(chk_nginx_service) failed" in a.output()
    lan.nginx("a", "node-a")  # back: a preempts (VRRPv3, preempt by default)
    on("a")

    # manual failover: the flag file takes chk_manual_failover's 50 away
    flag = os.path.join(a.dir, "nginx-ha-keepalived.failover")
    open(flag, "w").close()
    on("b")
    os.unlink(flag)
    on("a")

    # stopping the daemon hands over at once with a priority 0 advert
    a.kill(signal.SIGTERM)
    for vip in (*V4, V6):
        lan.wait_holder(vip, "b", 10)
    assert lan.http_get("c", f"http://{V4[0]}/") == "node-b"

    # the dump signal writes the statistics file, which counts that advert
    b.proc.send_signal(signal.SIGUSR2)
    stats_path = os.path.join(b.dir, "keepalived.stats")
    wait_for(lambda: read(stats_path), 10, what="keepalived.stats")
    stats = read(stats_path) or ""
    assert "VRRP Instance: VI_1" in stats
    assert "  Priority Zero:\n    Received: 1\n" in stats, stats
    # at least after the nginx stop and the manual failover (start-up may add one)
    assert int(re.search(r"\n  Became master: (\d+)\n", stats)[1]) >= 2


# ---- 002: a VIP in front of two nginx (strict mode, weight -5, nopreempt backup) ----

@pytest.fixture
def maildir():
    """Where the notify scripts write their mail: reachable by nobody, removed after."""
    d = tempfile.mkdtemp(prefix="director-mail-")
    os.chmod(d, 0o777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def notify_env(maildir: str, host: str) -> dict[str, str]:
    return {"KEEPALIVED_MAIL": os.path.join(maildir, f"{host}.mail")}


SUBS_002 = {"/etc/keepalived/": SCRIPTS + "/"}
VIP_002 = "192.168.1.100"


def test_002_vip_in_front_of_nginx(make_lan, maildir):
    lan = make_lan({"a": 101, "b": 102, "c": 103}, net="192.168.1", net6="fd00:1::")
    for host in ("a", "b"):
        lan.nginx(host, f"nginx-{host}")
    # script_user nobody instead of the seed's root: shows the scripts run as that user
    subs = {**SUBS_002, "script_user root": "script_user nobody"}
    master_conf = example("002-nginx-vip-master.conf", subs)
    a = lan.start("a", "director", master_conf, *ARGS, env=notify_env(maildir, "a"))
    lan.start("b", "director", example("002-nginx-vip-backup.conf", subs), *ARGS,
              env=notify_env(maildir, "b"))

    def mail(host: str) -> str:
        return read(os.path.join(maildir, f"{host}.mail")) or ""

    lan.wait_holder(VIP_002, "a", 30)
    assert "(VI_1) state MASTER must match being address owner" in a.output()
    wait_for(lambda: "to be master: 192.168.1.100 floating" in mail("a"), 10,
             what="notify_master on a")
    wait_for(lambda: "to be backup: 192.168.1.100 floating" in mail("b"), 10,
             what="notify_backup on b")
    assert "as nobody" in mail("a")
    assert lan.http_get("c", f"http://{VIP_002}/") == "nginx-a"

    # nginx fails on the master: after 2 failures (fall 2) its priority is 100-5 = 95,
    # still above the backup's 90, so the VIP stays (keepalived does the same)
    lan.nginx_stop("a")
    wait_for(lambda: state_of(a)["priority"] == 95, 15, what="a at priority 95")
    assert "VRRP_Script(chk_http_port) failed" in a.output()
    time.sleep(3)
    assert lan.holders(VIP_002) == ["a"]
    lan.nginx("a", "nginx-a")  # rise 1: one success restores 100
    wait_for(lambda: state_of(a)["priority"] == 100, 10, what="a back at 100")

    # the master node fails (the seed's check script stops keepalived): b takes over
    a.kill()
    lan.run("a", "ip", "addr", "del", f"{VIP_002}/32", "dev", "eth0")  # the node is gone
    lan.wait_holder(VIP_002, "b", 15)
    wait_for(lambda: "to be master: 192.168.1.100 floating" in mail("b"), 10,
             what="notify_master on b")
    assert lan.http_get("c", f"http://{VIP_002}/") == "nginx-b"

    # a comes back as the seed says to: its state changed to BACKUP before the restart.
    # b (nopreempt) keeps the VIP although a has the higher priority.
    back = master_conf.replace("state MASTER", "state BACKUP").replace(
        "    priority 100", "    priority 100\n    nopreempt")
    os.unlink(os.path.join(maildir, "a.mail"))
    lan.start("a", "director", back, *ARGS, env=notify_env(maildir, "a"))
    wait_for(lambda: "to be backup: 192.168.1.100 floating" in mail("a"), 20,
             what="a back as BACKUP")
    time.sleep(5)  # several Master_Down intervals (3.6 s at advert_int 1)
    assert lan.holders(VIP_002) == ["b"]
    assert lan.http_get("c", f"http://{VIP_002}/") == "nginx-b"

    # a fault on b (its link goes down) runs notify_fault and moves the VIP to a
    lan.run("b", "ip", "link", "set", "eth0", "down")
    lan.wait_holder(VIP_002, "a", 15)
    wait_for(lambda: "to be fault: 192.168.1.100 floating" in mail("b"), 10,
             what="notify_fault on b")


def test_002_master_restarted_unchanged_takes_the_vip_back(make_lan, maildir):
    """The seed's warning: nopreempt is only on the backup, so a master restarted with its
    configuration unchanged takes the VIP back (one extra move)."""
    lan = make_lan({"a": 101, "b": 102, "c": 103}, net="192.168.1", net6="fd00:1::")
    a = lan.start("a", "director", example("002-nginx-vip-master.conf", SUBS_002), *ARGS,
                  env=notify_env(maildir, "a"))
    lan.start("b", "director", example("002-nginx-vip-backup.conf", SUBS_002), *ARGS,
              env=notify_env(maildir, "b"))
    lan.wait_holder(VIP_002, "a", 30)  # no nginx: both lose 5, 95 against 85
    a.kill(signal.SIGTERM)
    lan.wait_holder(VIP_002, "b", 15)
    lan.start("a", "director", example("002-nginx-vip-master.conf", SUBS_002), *ARGS,
              env=notify_env(maildir, "a"))
    lan.wait_holder(VIP_002, "a", 20)


# ---- 003: mutual master/backup, each node master of one VIP ----

HOSTS_003 = {"a": 188, "b": 108, "c": 9}
VIPS_003 = {"a": "192.168.2.30", "b": "192.168.2.31"}


@pytest.mark.parametrize("peer", ["director", "keepalived"])
def test_003_mutual_master_backup(make_lan, peer):
    """Node a runs director; node b runs director or keepalived itself."""
    lan = make_lan(HOSTS_003, net="192.168.2", net6="fd00:2::")
    for host in ("a", "b"):
        lan.nginx(host, f"web-{host}")
    conf = {h: example(f"003-mutual-{h}.conf") for h in ("a", "b")}

    def start(host: str, kind: str):
        return lan.start(host, kind, conf[host], *(ARGS if kind == "director" else ()))

    daemons = {"a": start("a", "director"), "b": start("b", peer)}
    both = tuple(VIPS_003.values())
    hosts = ("a", "b")

    def normal() -> None:
        lan.wait_holder(VIPS_003["a"], "a", 30, hosts=hosts)
        lan.wait_holder(VIPS_003["b"], "b", 30, hosts=hosts)
        for host, vip in VIPS_003.items():
            assert lan.http_get("c", f"http://{vip}/") == f"web-{host}"

    normal()
    for dead, alive in (("a", "b"), ("b", "a")):
        kind = "director" if dead == "a" else peer
        daemons[dead].kill()  # SIGKILL: no goodbye advert
        lan.run(dead, "ip", "link", "set", "eth0", "down")
        for vip in both:
            lan.wait_holder(vip, alive, 15, hosts=(alive,))
        assert [lan.http_get("c", f"http://{v}/") for v in both] == [f"web-{alive}"] * 2
        # the node comes back: VI_1's nopreempt is cleared by its state MASTER (both
        # keepalived and director warn), so each node is master of its own VIP again
        lan.run(dead, "ip", "addr", "flush", "dev", "eth0")
        lan.run(dead, "ip", "addr", "add", f"192.168.2.{HOSTS_003[dead]}/24", "dev", "eth0")
        lan.run(dead, "ip", "link", "set", "eth0", "up")
        daemons[dead] = start(dead, kind)
        normal()
    assert "nopreempt needs state BACKUP" in daemons["a"].output()


# ---- 004: preemptive vs non-preemptive failback, use_vmac ----

FAST_004 = {"advert_int 1": "advert_int 0.1"}
VIP_004 = "10.4.0.100"
VMAC = "00:00:5e:00:01:33"  # VRID 51



@pytest.mark.parametrize("mode", ["preempt", "nopreempt"])
def test_004_failback_and_vmac(make_lan, mode):
    lan = make_lan({"a": 1, "b": 2, "c": 9}, net="10.4.0", net6="fd00:4::")
    for host in ("a", "b"):
        lan.nginx(host, f"gw-{host}")
    subs = {**FAST_004, **({"    #nopreempt": "    nopreempt"} if mode == "nopreempt" else {})}
    conf = {h: example(f"004-vmac-{h}.conf", subs) for h in ("a", "b")}
    a = lan.start("a", "director", conf["a"], *ARGS)
    lan.wait_holder(VIP_004, "a", 30)  # a first: with nopreempt the first master stays
    b = lan.start("b", "director", conf["b"], *ARGS)
    wait_for(lambda: "Entering BACKUP STATE" in b.output(), 20, what="b as BACKUP")
    time.sleep(1)
    assert lan.holders(VIP_004) == ["a"]
    assert lan.http_get("c", f"http://{VIP_004}/") == "gw-a"
    assert lan.neigh_mac("c", VIP_004) == VMAC

    a.kill()
    lan.wait_holder(VIP_004, "b", 10, hosts=("b",))
    # the old master's VMAC interface is left behind by SIGKILL: take it down, as a dead
    # node's would be, so that only b answers
    lan.run("a", "ip", "link", "set", "vrrp.51", "down", check=False)
    wait_for(lambda: lan.http_get("c", f"http://{VIP_004}/") == "gw-b", 10,
             what="the client served by b")
    assert lan.neigh_mac("c", VIP_004) == VMAC  # the client never relearned a MAC

    a = lan.start("a", "director", conf["a"], *ARGS)
    if mode == "preempt":
        lan.wait_holder(VIP_004, "a", 10)
        want = "gw-a"
    else:
        wait_for(lambda: "Entering BACKUP STATE" in a.output(), 20, what="a as BACKUP")
        time.sleep(2)  # many Master_Down intervals at advert_int 0.1
        assert lan.holders(VIP_004) == ["b"]
        want = "gw-b"
    wait_for(lambda: lan.http_get("c", f"http://{VIP_004}/") == want, 10,
             what=f"the client served by {want}")
    assert lan.neigh_mac("c", VIP_004) == VMAC
