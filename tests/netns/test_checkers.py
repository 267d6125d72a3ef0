"""Every checker against a real counterpart: nginx (HTTP, TLS with a self-signed CA,
virtual hosts), dnsmasq, a UDP echo, an SMTP greeting, scripts, ping in namespaces;
the retry logic on the engine with nginx stopped and started; genhash vs an
independent MD5 of the body.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from lan import wait_for
from testlib import ROOT, nginx_conf, sh

from checkers import http
from checkers.engine import Engine, Job
from checkers.probes import probe
from checkers.state import RetryState
from conf.model import Checker, Script, SslConfig, Url

A_BODY = "hello from a\n"
B_BODY = "hello from b\n"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def openssl(*args: str) -> None:
    sh("openssl", *args)


def make_ca(d: str, name: str) -> tuple[str, str]:
    key, crt = f"{d}/{name}-ca.key", f"{d}/{name}-ca.pem"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt,
            "-days", "2", "-subj", f"/CN={name} test CA")
    return key, crt


class Nginx:
    def __init__(self, d: str) -> None:
        self.dir = d
        self.port, self.tls_port = free_port(), free_port()
        ca_key, self.ca = make_ca(d, "good")
        _k, self.other_ca = make_ca(d, "other")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{d}/srv.key", "-out",
                f"{d}/srv.csr", "-subj", "/CN=a.test")
        openssl("x509", "-req", "-in", f"{d}/srv.csr", "-CA", self.ca, "-CAkey", ca_key,
                "-CAcreateserial", "-out", f"{d}/srv.pem", "-days", "2")
        for name, body in (("a", A_BODY), ("b", B_BODY)):
            os.makedirs(f"{d}/{name}", exist_ok=True)
            with open(f"{d}/{name}/index.html", "w") as f:
                f.write(body)
        common = ("        location = /down { return 503; }\n"
                  "        location = /teapot { return 418; }\n")
        servers = f"""    server {{
        listen 127.0.0.1:{self.port} default_server;
        listen 127.0.0.1:{self.tls_port} ssl default_server;
        ssl_certificate {d}/srv.pem; ssl_certificate_key {d}/srv.key;
        server_name a.test;
        root {d}/a;
{common}    }}
    server {{
        listen 127.0.0.1:{self.port};
        server_name b.test;
        root {d}/b;
{common}    }}"""
        self.conf = f"{d}/nginx.conf"
        with open(self.conf, "w") as f:
            f.write(nginx_conf(d, servers, head="daemon off;\nuser root;"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(["nginx", "-c", self.conf, "-p", self.dir],
                                     stderr=subprocess.DEVNULL)
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("nginx did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)


@pytest.fixture(scope="module")
def nginx(tmp_path_factory):
    if shutil.which("nginx") is None:
        pytest.skip("nginx is not installed (make install does it)")
    n = Nginx(str(tmp_path_factory.mktemp("nginx")))
    try:
        yield n
    finally:
        n.stop()


def run(ck: Checker, timeout: float = 3.0):
    async def go():
        return await probe(ck, timeout)
    return asyncio.run(go())


def http_ck(port: int, *urls: Url, **kw) -> Checker:
    return Checker(type=kw.pop("type", "HTTP_GET"), connect_ip="127.0.0.1", connect_port=port,
                   urls=urls, **kw)


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def test_http_status_codes(nginx):
    assert run(http_ck(nginx.port, Url(path="/"))).ok
    r = run(http_ck(nginx.port, Url(path="/missing")))
    assert not r.ok and "404" in r.reason
    r = run(http_ck(nginx.port, Url(path="/down")))
    assert not r.ok and "503" in r.reason
    assert run(http_ck(nginx.port, Url(path="/down", status_code=((503, 503),)))).ok
    assert run(http_ck(nginx.port, Url(path="/teapot", status_code=((400, 499),)))).ok
    # every url must pass
    assert not run(http_ck(nginx.port, Url(path="/"), Url(path="/down"))).ok


def test_http_digest_and_regex(nginx):
    assert run(http_ck(nginx.port, Url(path="/", digest=md5(A_BODY)))).ok
    r = run(http_ck(nginx.port, Url(path="/", digest=md5("something else"))))
    assert not r.ok and "digest" in r.reason
    assert run(http_ck(nginx.port, Url(path="/", regex="from a"))).ok
    assert not run(http_ck(nginx.port, Url(path="/", regex="from b"))).ok
    assert run(http_ck(nginx.port, Url(path="/", regex="from b", regex_no_match=True))).ok


def test_http_virtualhost(nginx):
    assert run(http_ck(nginx.port, Url(path="/", digest=md5(B_BODY), virtualhost="b.test"))).ok
    assert run(http_ck(nginx.port, Url(path="/", digest=md5(B_BODY)), virtualhost="b.test")).ok
    assert not run(http_ck(nginx.port, Url(path="/", digest=md5(B_BODY)))).ok


def test_ssl_get(nginx):
    ck = http_ck(nginx.tls_port, Url(path="/", digest=md5(A_BODY)), type="SSL_GET",
                 enable_sni=True, sni_name="a.test")
    try:
        http.configure(None)  # no SSL block: liveness, no verification
        assert run(ck).ok
        http.configure(SslConfig(ca=nginx.ca))  # our CA signed it
        assert run(ck).ok
        http.configure(SslConfig(ca=nginx.other_ca))  # another CA did not
        r = run(ck)
        assert not r.ok and "certificate" in r.reason.lower()
    finally:
        http.configure(None)
    assert not run(http_ck(nginx.port, Url(path="/"), type="SSL_GET")).ok  # plain port


def test_hanging_server_fails_at_connect_timeout():
    async def go():
        async def hang(reader, writer):
            await asyncio.sleep(30)
        server = await asyncio.start_server(hang, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        t0 = time.monotonic()
        try:
            r = await probe(http_ck(port, Url(path="/")), 0.5)
        finally:
            server.close()
        return r, time.monotonic() - t0
    r, took = asyncio.run(go())
    assert not r.ok and "timeout" in r.reason
    assert 0.4 < took < 2.5


def test_tcp_check(nginx):
    ck = Checker(type="TCP_CHECK", connect_ip="127.0.0.1", connect_port=nginx.port)
    assert run(ck).ok
    r = run(Checker(type="TCP_CHECK", connect_ip="127.0.0.1", connect_port=free_port()))
    assert not r.ok and "refused" in r.reason.lower()
    bound = Checker(type="TCP_CHECK", connect_ip="127.0.0.1", connect_port=nginx.port,
                    bindto="127.0.0.1", bind_port=free_port())
    assert run(bound).ok


def test_engine_retries_then_down_and_back_up(nginx):
    """nginx stopped -> down only after retry+1 failures; restarted -> up at once."""
    events: list[tuple[float, bool]] = []

    async def go():
        ck = Checker(type="TCP_CHECK", connect_ip="127.0.0.1", connect_port=nginx.port,
                     retry=2, delay_before_retry=0.2)
        eng = Engine(lambda k, up: events.append((time.monotonic(), up)), lambda k, w: None)
        job = Job((0, 0, 0), ck, f"[127.0.0.1]:tcp:{nginx.port}",
                  RetryState(retry=2, delay_loop=0.3, delay_before_retry=0.2), timeout=1)
        eng.add(job)
        eng.start()
        await asyncio.sleep(0.5)
        assert events == []  # up from the start: no transition
        t_stop = time.monotonic()
        nginx.stop()
        while not events:
            await asyncio.sleep(0.02)
        took = events[0][0] - t_stop
        fails = job.checks
        nginx.start()
        while len(events) < 2:
            await asyncio.sleep(0.02)
        eng.stop()
        return took, fails
    try:
        took, checks = asyncio.run(go())
    finally:
        if nginx.proc.poll() is not None:
            nginx.start()
    assert [up for _, up in events] == [False, True]
    assert took >= 0.4  # two retries 0.2 s apart after the first failure
    assert checks >= 3


def test_misc_check(tmp_path):
    script = tmp_path / "chk.sh"
    script.write_text("#!/bin/sh\nexit $1\n")
    script.chmod(0o755)

    def ck(arg: str, dynamic: bool = False, **kw) -> Checker:
        return Checker(type="MISC_CHECK", misc_path=Script(cmd=f"{script} {arg}",
                                                           argv=(str(script), arg)),
                       misc_dynamic=dynamic, **kw)
    assert run(ck("0")).ok
    assert not run(ck("1")).ok
    assert not run(ck("5")).ok
    r = run(ck("5", dynamic=True))
    assert r.ok and r.weight == 3  # exit 2..255: up at weight exit-2
    slow = Checker(type="MISC_CHECK", misc_path=Script(cmd="sleep 5", argv=("sleep", "5")),
                   misc_timeout=0.3)
    t0 = time.monotonic()
    assert not run(slow).ok and time.monotonic() - t0 < 3


def test_smtp_check():
    async def go(greeting: bytes):
        async def serve(reader, writer):
            writer.write(greeting)
            line = await reader.readline()
            if line.startswith(b"HELO"):
                writer.write(b"250-smtp.test\r\n250 OK\r\n")
                await reader.readline()
                writer.write(b"221 bye\r\n")
            writer.close()
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            return await probe(Checker(type="SMTP_CHECK", connect_ip="127.0.0.1",
                                       connect_port=port), 2)
        finally:
            server.close()
    assert asyncio.run(go(b"220 smtp.test ESMTP\r\n")).ok
    r = asyncio.run(go(b"554 go away\r\n"))
    assert not r.ok and "554" in r.reason


def test_dns_check(tmp_path):
    if shutil.which("dnsmasq") is None:
        pytest.skip("dnsmasq is not installed (make install does it)")
    port = free_port(socket.SOCK_DGRAM)
    proc = subprocess.Popen(["dnsmasq", "--no-daemon", "--no-resolv", "--no-hosts",
                             f"--port={port}", "--listen-address=127.0.0.1",
                             "--bind-interfaces", "--address=/example.test/10.1.2.3",
                             f"--pid-file={tmp_path}/dnsmasq.pid"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def bound() -> bool:  # dnsmasq listening on the port (a UDP socket in /proc)
            with open("/proc/net/udp") as f:
                return f":{port:04X} " in f.read()

        wait_for(bound, 10, what=f"dnsmasq bound to udp port {port}")

        def ck(name: str, kind: str) -> Checker:
            return Checker(type="DNS_CHECK", connect_ip="127.0.0.1", connect_port=port,
                           dns_name=name, dns_type=kind)
        assert run(ck("example.test", "A")).ok
        assert not run(ck("nothing.invalid", "A")).ok  # no upstream: REFUSED, no answer
    finally:
        proc.kill()
        proc.wait()
    r = run(ck("example.test", "A"), timeout=0.5)  # dnsmasq gone: port unreachable
    assert not r.ok


def test_udp_check():
    async def go(**kw):
        class Echo(asyncio.DatagramProtocol):
            def connection_made(self, t):
                self.t = t

            def datagram_received(self, data, addr):
                self.t.sendto(b"pong:" + data, addr)
        loop = asyncio.get_running_loop()
        t, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
        port = t.get_extra_info("sockname")[1]
        try:
            return await probe(Checker(type="UDP_CHECK", connect_ip="127.0.0.1",
                                       connect_port=port, payload=b"ping", **kw), 1)
        finally:
            t.close()
    assert asyncio.run(go(require_reply=b"pong:ping")).ok
    assert not asyncio.run(go(require_reply=b"other")).ok
    assert not asyncio.run(go(min_reply_length=100)).ok
    assert asyncio.run(go(max_reply_length=9, min_reply_length=9)).ok
    closed = Checker(type="UDP_CHECK", connect_ip="127.0.0.1",
                     connect_port=free_port(socket.SOCK_DGRAM), payload=b"x")
    assert not run(closed, 0.5).ok  # ICMP port unreachable


def test_ping_check_in_namespaces(lan):
    code = (f"import asyncio, sys\nsys.path[:0] = [{ROOT!r}]\n"
            "from checkers.probes import probe\nfrom conf.model import Checker\n"
            "r = asyncio.run(probe(Checker(type='PING_CHECK', connect_ip=sys.argv[1]), 1))\n"
            "print('UP' if r.ok else 'DOWN ' + r.reason)\n")
    for target, want in (("10.9.0.2", "UP"), ("10.9.0.77", "DOWN"), ("fd00:9::2", "UP"),
                         ("fd00:9::77", "DOWN")):
        out = lan.run("a", sys.executable, "-c", code, target).stdout.strip()
        assert out.startswith(want), (target, out)


def test_genhash_matches_md5_of_the_body(nginx):
    body = urllib.request.urlopen(f"http://127.0.0.1:{nginx.port}/").read()
    want = hashlib.md5(body).hexdigest()
    out = sh(os.path.join(ROOT, ".venv", "bin", "director"), "genhash", "-s", "127.0.0.1",
             "-p", str(nginx.port), "-u", "/").stdout
    assert out.strip().splitlines()[-1] == f"MD5SUM = {want}"
    out = sh(os.path.join(ROOT, ".venv", "bin", "director"), "genhash", "-s", "127.0.0.1",
             "-p", str(nginx.port), "-u", "/", "-V", "b.test").stdout
    assert out.strip() == f"MD5SUM = {md5(B_BODY)}"
    bad = sh(os.path.join(ROOT, ".venv", "bin", "director"), "genhash", "-s", "127.0.0.1",
             "-p", str(free_port()), check=False)
    assert bad.returncode == 1 and "cannot fetch" in bad.stderr and "Traceback" not in bad.stderr
