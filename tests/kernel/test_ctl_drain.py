"""`director ctl drain` under live traffic, in the VM with the real IPVS: a client
downloads slowly from nginx through the VIP (NAT) while short requests keep coming; the
drained real server goes to weight 0 at once, leaves the IPVS table once its downloads
end, and the client sees 0 failed requests and every download complete."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from testlib import WaitTimeout, sh, slow_site, wait_for
from topo import VIP, Topology, rs_ip

DIRECTOR = os.path.join(os.path.dirname(sys.executable), "director")
SIZE = 2_500_000  # bytes per download: about 50 s at the rate below, long enough for the
RATE = "50k"  # emulated VM (seen: 44 s to start the checker child) to run `director ctl`
CONF = f"""
virtual_server {VIP} 80 {{
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server {rs_ip(1)} 80 {{
        TCP_CHECK {{ connect_timeout 2 }}
    }}
    real_server {rs_ip(2)} 80 {{
        TCP_CHECK {{ connect_timeout 2 }}
    }}
}}
"""
# the client: 4 slow downloads (rr: two per real server) and short requests meanwhile,
# each on a new connection, until the downloads end; a JSON summary at the end
CLIENT = f"""
import json, sys, threading, time, urllib.request
results = {{"downloads": [], "short_ok": 0, "short_failed": [], "short_bodies": []}}
def download():
    try:
        body = urllib.request.urlopen("http://{VIP}/big", timeout=60).read()
        results["downloads"].append(len(body))
    except Exception as e:
        results["downloads"].append(f"failed: {{e}}")
threads = [threading.Thread(target=download) for _ in range(4)]
for t in threads:
    t.start()
    time.sleep(0.05)
print("started", flush=True)
while any(t.is_alive() for t in threads):
    try:
        body = urllib.request.urlopen("http://{VIP}/", timeout=5).read().decode().strip()
        results["short_ok"] += 1
        results["short_bodies"].append((time.monotonic(), body))
    except Exception as e:
        results["short_failed"].append(str(e))
    time.sleep(0.1)
print(json.dumps(results), flush=True)
"""


def nginx_slow(topo: Topology, i: int) -> None:
    """Real server i answers "rs<i>" at /, and a big file slowly at /big."""
    topo.stop_nginx(i)  # waits for it to go
    d = topo.nginx_dir(f"rs{i}")  # where the topology stops it again at the end
    conf = slow_site(d, f"rs{i}", SIZE, RATE, connections=64)  # reads big
    topo.run(f"rs{i}", "nginx", "-c", conf, "-p", d)


def dests() -> dict[str, tuple[int, int]]:
    """Real servers of the VIP's service in the kernel: weight, active connections."""
    out = sh("ipvsadm", "-Ln", "-t", f"{VIP}:80", check=False).stdout  # none yet: empty
    return {f[1]: (int(f[3]), int(f[4])) for f in (line.split() for line in out.splitlines())
            if len(f) >= 5 and f[0] == "->" and f[1][0].isdigit()}


def wait(cond, timeout: float, what: str, step: float = 0.1):  # type: ignore[no-untyped-def]
    """testlib's wait, with the kernel's table in the message when it runs out."""
    try:
        return wait_for(cond, timeout, step, what)
    except WaitTimeout as e:
        raise WaitTimeout(f"{e}; IPVS: {dests()}") from None


@pytest.fixture
def topo(ipvs_clean):
    t = Topology(2).up()
    try:
        yield t
    finally:
        t.down()


def test_drain_under_live_traffic(topo, tmp_path):
    for i in (1, 2):
        nginx_slow(topo, i)
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF)
    run = tmp_path / "run"
    log = open(tmp_path / "log", "wb")
    d = subprocess.Popen([DIRECTOR, "-n", "-l", "-f", str(conf), "--runtime-dir", str(run),
                          "-p", f"{tmp_path}/k.pid", "-c", f"{tmp_path}/c.pid"],
                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    client = None
    try:
        rs1, rs2 = f"{rs_ip(1)}:80", f"{rs_ip(2)}:80"
        # slow: the checker child imports and starts under software emulation
        wait(lambda: set(dests()) == {rs1, rs2}, 240, "both real servers in IPVS")
        wait(lambda: os.path.exists(run / "lvs.sock"), 60, "the control socket")
        # once before the downloads: Python's start-up files come into the page cache
        subprocess.run([DIRECTOR, "ctl", "--runtime-dir", str(run), "status"], check=True,
                       capture_output=True, timeout=120)
        client = subprocess.Popen(["ip", "netns", "exec", topo.ns[topo.client], sys.executable,
                                   "-c", CLIENT], stdout=subprocess.PIPE, text=True)
        assert client.stdout is not None and client.stdout.readline().strip() == "started"
        wait(lambda: dests().get(rs1, (0, 0))[1] >= 1, 60, "a download on rs1")

        drain = subprocess.Popen([DIRECTOR, "ctl", "--runtime-dir", str(run), "drain",
                                  f"{VIP}:80", rs1, "--timeout", "120"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait(lambda: dests().get(rs1, (1, 0))[0] == 0, 60, "rs1 at weight 0 in IPVS")
        t_weight0 = time.monotonic()
        still = dests()
        assert rs1 in still and still[rs1][1] >= 1, still  # its downloads carry on

        def published() -> dict | None:  # what the children publish once a second
            try:
                with open(run / "lvs.json") as f:
                    r = json.load(f)["virtual_servers"][0]["real_servers"][0]
            except (OSError, ValueError):
                return None
            return r if r["override"] and r["activeconns"] >= 1 else None
        rs = wait(published, 30, "the drain and rs1's connections in lvs.json")
        assert rs["override"]["drain"] == "draining" and rs["effective_weight"] == 0
        assert rs1 in dests()  # still there: the downloads have not ended

        out, err = drain.communicate(timeout=240)
        assert drain.returncode == 0, err
        assert "drained (its active connections ended): removed from IPVS" in out, out
        assert rs1 not in dests() and rs2 in dests()

        summary = json.loads(client.communicate(timeout=240)[0].splitlines()[-1])
        print(f"drain: {summary['short_ok']} short requests, downloads {summary['downloads']}")
        assert summary["downloads"] == [SIZE] * 4, summary["downloads"]
        assert summary["short_failed"] == [], summary["short_failed"]
        # once rs1 was at weight 0 (plus the poll's slack), new requests went to rs2 only
        late = [b for t, b in summary["short_bodies"] if t > t_weight0 + 0.5]
        assert late and set(late) == {"rs2"}, late
        assert summary["short_ok"] >= 5
    finally:
        if client is not None and client.poll() is None:
            client.kill()
            print("client:", client.communicate()[0][-2000:])
        os.killpg(d.pid, 15)
        try:
            d.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(d.pid, 9)
            d.wait(5)
        log.close()
        print((tmp_path / "log").read_text(errors="replace")[-4000:])
