"""The scale-out client (tools/scaleout.py): one asyncio process in the client namespace,
driven by JSON lines on stdin, one JSON line answered per command:

    {"cmd": "fetch", "ports": [...]}      one GET / per source port -> {port: body}
    {"cmd": "download", "n": N}           N slow GET /big, answered once all are
                                          receiving -> {"established": k, "ports": [...]}
    {"cmd": "probe_start", "interval": s} a new connection (GET /, 1 s timeout) every s
    {"cmd": "probe_count"}                -> {"n": probes so far}
    {"cmd": "probe_stop"}                 -> {"probes": [[start wall time, ok, body or
                                          why, SYN retransmissions], ...]}
    {"cmd": "download_wait"}              -> {"complete": k, "failed": [reason, ...]}

    python tools/scaleout_client.py VIP CLIENT_IP SIZE
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import sys
import time

VIP, SRC, SIZE = sys.argv[1], sys.argv[2], int(sys.argv[3])
IDLE = 30.0  # s without a byte: the download is broken (no RST came)


async def get(path: bytes, port: int = 0, timeout: float = 3.0) -> str:
    r, w = await asyncio.wait_for(asyncio.open_connection(VIP, 80, local_addr=(SRC, port)),
                                  timeout)
    try:
        w.write(b"GET " + path + b" HTTP/1.0\r\n\r\n")
        data = await asyncio.wait_for(r.read(), timeout)
        return data.split(b"\r\n\r\n", 1)[1].decode().strip()
    finally:
        w.close()


async def fetch(port: int) -> str:
    try:
        return await get(b"/", port)
    except (TimeoutError, OSError, IndexError) as e:
        return f"ERR {type(e).__name__}"


class Client:
    def __init__(self) -> None:
        self.downloads: list[asyncio.Task[str]] = []
        self.ports: list[int] = []  # the downloads' source ports
        self.receiving = 0
        self.probes: list[list[object]] = []
        self.probe_task: asyncio.Task[None] | None = None

    async def download(self) -> str:
        """"ok", or why it failed."""
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(VIP, 80), 10)
            self.ports.append(w.get_extra_info("sockname")[1])
        except (TimeoutError, OSError) as e:
            self.receiving += 1  # counted as started: it failed at once
            return f"connect {type(e).__name__}"
        try:
            w.write(b"GET /big HTTP/1.0\r\n\r\n")
            head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), IDLE)
            self.receiving += 1
            if b" 200 " not in head.split(b"\r\n", 1)[0]:
                return "status " + head.split(b"\r\n", 1)[0].decode(errors="replace")
            got = 0
            while chunk := await asyncio.wait_for(r.read(65536), IDLE):
                got += len(chunk)
            return "ok" if got == SIZE else f"short ({got} of {SIZE} bytes)"
        except TimeoutError:
            return f"stalled {IDLE:g} s"
        except (OSError, asyncio.IncompleteReadError) as e:
            return type(e).__name__
        finally:
            w.close()

    async def probe(self, interval: float) -> None:
        async def one() -> None:
            # the kernel says whether the first SYN went unanswered (retransmitted: the
            # flow was routed to a director that is gone); the timeouts are long because
            # this process can be starved for seconds under emulation
            t = time.time()
            phase = "connect"
            try:
                r, w = await asyncio.wait_for(asyncio.open_connection(VIP, 80), 5.0)
                info = w.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP,
                                                             socket.TCP_INFO, 104)
                retrans = struct.unpack_from("I", info, 100)[0]  # tcpi_total_retrans
                phase = "answer"
                try:
                    w.write(b"GET / HTTP/1.0\r\n\r\n")
                    data = await asyncio.wait_for(r.read(), 10.0)
                finally:
                    w.close()
                body = data.split(b"\r\n\r\n", 1)[1].decode().strip()
                self.probes.append([t, True, body, retrans])
            except (TimeoutError, OSError, IndexError) as e:
                self.probes.append([t, False, f"{phase} {type(e).__name__} "
                                             f"after {time.time() - t:.2f} s", 0])
        pending: set[asyncio.Task[None]] = set()
        try:
            while True:
                task = asyncio.ensure_future(one())
                pending.add(task)
                task.add_done_callback(pending.discard)
                await asyncio.sleep(interval)
        finally:
            await asyncio.gather(*pending, return_exceptions=True)

    async def handle(self, msg: dict) -> object:
        cmd = msg["cmd"]
        if cmd == "fetch":
            ports = msg["ports"]
            bodies = []
            for i in range(0, len(ports), 30):  # gently: the VM is emulated
                bodies += await asyncio.gather(*(fetch(p) for p in ports[i:i + 30]))
            return dict(zip(map(str, ports), bodies, strict=True))
        if cmd == "download":
            self.downloads, self.receiving, self.ports = [], 0, []
            for i in range(msg["n"]):
                self.downloads.append(asyncio.ensure_future(self.download()))
                if i % 50 == 49:
                    await asyncio.sleep(0.2)
            end = time.monotonic() + msg.get("timeout", 120)
            while self.receiving < msg["n"] and time.monotonic() < end:
                await asyncio.sleep(0.1)
            return {"established": sum(1 for t in self.downloads if not t.done()
                                       or t.result() == "ok"), "ports": self.ports}
        if cmd == "probe_start":
            self.probes = []
            self.probe_task = asyncio.ensure_future(self.probe(msg["interval"]))
            return {}
        if cmd == "probe_count":
            return {"n": len(self.probes)}
        if cmd == "probe_stop":
            if self.probe_task is not None:
                self.probe_task.cancel()
                await asyncio.gather(self.probe_task, return_exceptions=True)
            return {"probes": sorted(self.probes)}
        if cmd == "download_wait":
            results = await asyncio.gather(*self.downloads)
            return {"complete": results.count("ok"),
                    "failed": [r for r in results if r != "ok"]}
        return {"error": f"unknown command {cmd}"}


async def main() -> None:
    client = Client()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        answer = await client.handle(json.loads(line))
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main())
