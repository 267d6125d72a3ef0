"""Hosts as network namespaces, for the tests, the demo and the benchmarks: one `sh`, one
wait loop, one way to make namespaces, bridges, veth links and nginx servers, and to
remove all of it (also when the caller failed).

Lives in tools/ because tools must not import tests/; the tests import it from here.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any


def sh(*cmd: str, check: bool = True, **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run a command, output captured as text; never more than 60 s unless told."""
    kw.setdefault("timeout", 60)
    return subprocess.run(cmd, check=check, capture_output=True, text=True, **kw)


class WaitTimeout(AssertionError):
    """A wait ran out: says what was waited for, and for how long."""


def wait_for(cond: Callable[[], object], timeout: float = 20.0, step: float = 0.05,
             what: str = "condition") -> object:
    """Poll `cond` until it is true (its value is returned) or `timeout` seconds pass."""
    end = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > end:
            raise WaitTimeout(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


async def wait_until(cond: Callable[[], object], timeout: float = 20.0, step: float = 0.02,
                     what: str = "condition") -> object:
    """`wait_for` inside an event loop (the loop keeps running while it waits)."""
    import asyncio

    end = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > end:
            raise WaitTimeout(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(step)


def nginx_conf(d: str, servers: str, connections: int = 1024, head: str = "") -> str:
    """An nginx config that keeps everything (pid, logs, temp files) under `d`, with the
    caller's `server` blocks; `head` adds main-context lines (`daemon off;`, `user root;`)."""
    return f"""{head}
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections {connections}; }}
http {{
    access_log off;
    client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d};
    uwsgi_temp_path {d}; scgi_temp_path {d};
{servers}
}}
"""


def slow_site(d: str, body: str, size: int, rate: int | str, connections: int) -> str:
    """Write an nginx site in `d`: "<body>" at /, a `size`-byte file at /big sent at
    `rate` (nginx's limit_rate: a download that lasts). Returns the config's path."""
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "big"), "wb") as f:
        f.write(b"x" * size)
    server = (f"    server {{ listen 80; root {d};\n"
              f"        location = /big {{ limit_rate {rate}; }}\n"
              f"        location = / {{ return 200 \"{body}\\n\"; }} }}")
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(nginx_conf(d, server, connections=connections, head="user root;"))
    return conf


def answer_server(body: str, v6: bool = False) -> str:
    """An nginx `server` on port 80 answering `body` to every request."""
    listen = "listen 80; listen [::]:80;" if v6 else "listen 80;"
    return f"    server {{ {listen}\n        location / {{ return 200 \"{body}\\n\"; }} }}"


class Hosts:
    """Namespaces named `<prefix>-<host>` (a random tag in the prefix unless given), a
    temporary directory, nginx servers; `close` removes every one of them."""

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix or f"dv-{uuid.uuid4().hex[:6]}"
        self.dir = tempfile.mkdtemp(prefix=f"{self.prefix}-")
        self.ns: dict[str, str] = {}
        self.nginx_hosts: list[str] = []

    def add_ns(self, host: str) -> str:
        full = f"{self.prefix}-{host}"
        sh("ip", "netns", "add", full)
        self.ns[host] = full
        sh("ip", "-n", full, "link", "set", "lo", "up")
        return full

    def run(self, host: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.ns[host], *cmd, check=check)

    def sysctl(self, host: str, key: str, value: str) -> None:
        self.run(host, "sysctl", "-qw", f"{key}={value}")

    def bridge(self, host: str, name: str, *opts: str) -> None:
        self.run(host, "ip", "link", "add", name, "type", "bridge", *opts)
        self.run(host, "ip", "link", "set", name, "up")

    def plug(self, host: str, ifname: str, switch: str, bridge: str, port: str) -> None:
        """A veth from `host` (named `ifname` there) to `bridge` in `switch` (named
        `port` there, at most 15 characters); both ends up."""
        sh("ip", "link", "add", port, "type", "veth", "peer", "name", ifname, "netns",
           self.ns[host])
        sh("ip", "link", "set", port, "netns", self.ns[switch])
        self.run(switch, "ip", "link", "set", port, "master", bridge, "up")
        self.run(host, "ip", "link", "set", ifname, "up")

    def addrs(self, host: str, dev: str | None = None) -> set[str]:
        cmd = ["ip", "-o", "addr", "show"] + (["dev", dev] if dev else [])
        out = self.run(host, *cmd, check=False).stdout
        return {line.split()[3].split("/")[0] for line in out.splitlines()}

    # -- nginx --------------------------------------------------------------------------
    def nginx_dir(self, host: str) -> str:
        return os.path.join(self.dir, f"nginx-{host}")

    def serve_nginx(self, host: str, servers: str, connections: int = 64) -> None:
        """Start nginx in `host` with `servers` (see `answer_server`); `close` stops it.
        Calling it again for a stopped host starts it again."""
        d = self.nginx_dir(host)
        os.makedirs(d, exist_ok=True)
        with open(f"{d}/nginx.conf", "w") as f:
            f.write(nginx_conf(d, servers, connections=connections))
        self.run(host, "nginx", "-c", f"{d}/nginx.conf", "-p", d)
        if host not in self.nginx_hosts:
            self.nginx_hosts.append(host)

    def halt_nginx(self, host: str) -> None:
        d = self.nginx_dir(host)
        self.run(host, "nginx", "-c", f"{d}/nginx.conf", "-p", d, "-s", "stop", check=False)
        wait_for(lambda: not os.path.exists(f"{d}/nginx.pid"), 10,
                 what=f"nginx on {host} to stop")

    def close(self) -> None:
        for host in self.nginx_hosts:
            try:
                self.halt_nginx(host)
            except (AssertionError, subprocess.SubprocessError) as e:
                print(f"nginx on {host} did not stop: {e}")
        for ns in self.ns.values():
            sh("ip", "netns", "del", ns, check=False)
        subprocess.run(["rm", "-rf", self.dir], check=False)
