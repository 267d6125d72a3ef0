"""The engine's process under the speaker: its configuration written to the runtime
directory, its log lines into director's log, and its command channel (the engine runs
bridge.py, which connects to a unix socket here): one command at a time is answered, in
order, by the engine's confirmation."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import stat
import sys
from collections.abc import Callable

from conf.model import BgpSpeaker
from daemonlib import safefile
from daemonlib.libc import die_with_parent

from .engine import Ack, Engine, PeerState

log = logging.getLogger("director.bgp")

ENGINE_SOCKET = "bgp-engine.sock"  # the engine's API program connects here
COMMAND_TIMEOUT = 10.0


def listen_unix(path: str) -> socket.socket:
    """A stream socket at `path`, born 0600 (root only); a stale socket there is
    removed, anything else is refused."""
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise OSError(f"{path}: something else is there")
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(path)
    except OSError:
        sock.close()
        raise
    finally:
        os.umask(old)
    sock.listen(8)
    return sock


class EngineProcess:
    """The engine's process, its log, and its command channel (through bridge.py)."""

    def __init__(self, engine: Engine, speaker: BgpSpeaker, runtime_dir: str,
                 local_addresses: dict[str, str]) -> None:
        self.engine = engine
        self.speaker = speaker
        self.dir = runtime_dir
        self.local = local_addresses
        self.proc: asyncio.subprocess.Process | None = None
        self.peers: dict[str, str] = {nb.address: "idle" for nb in speaker.neighbors}
        self._pending: list[asyncio.Future[bool]] = []
        self._writer: asyncio.StreamWriter | None = None
        self._connected = asyncio.Event()
        self._server: asyncio.AbstractServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.on_peer: Callable[[PeerState], None] = lambda _p: None
        self.stopping = False  # stop() was asked: its exit is no failure

    # a hung engine, not a slow one: ExaBGP (Python) was seen taking 30 s to print its
    # banner in the emulated VM with three directors starting; its exit ends the wait
    async def start(self, timeout: float = 180.0) -> None:
        sock_path = os.path.join(self.dir, ENGINE_SOCKET)
        self._server = await asyncio.start_unix_server(self._channel,
                                                       sock=listen_unix(sock_path))
        bridge = os.path.join(os.path.dirname(__file__), "bridge.py")
        conf = self.engine.render(self.speaker, [sys.executable, "-S", bridge, sock_path],
                                  self.local)
        conf_path = os.path.join(self.dir, f"{self.engine.name}.conf")
        safefile.write_atomic(conf_path, conf, 0o600)
        env = {**os.environ, **self.engine.env(self.speaker, self.local)}
        argv = self.engine.argv(conf_path)
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, env=env, cwd=self.dir,
                preexec_fn=die_with_parent)
        except FileNotFoundError:
            raise RuntimeError(f"engine {self.engine.name}: '{argv[0]}' not found (is the "
                               f"{self.engine.name} package installed?)") from None
        log.info("BGP engine %s started, pid=%d (%s)", self.engine.name, self.proc.pid,
                 conf_path)
        self._tasks.append(asyncio.ensure_future(self._log_output()))
        waiter = asyncio.ensure_future(self._connected.wait())
        done, _ = await asyncio.wait({waiter, asyncio.ensure_future(self.proc.wait())},
                                     timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            waiter.cancel()
            raise RuntimeError(f"{self.engine.name} did not start its API program "
                               f"(see its log lines above)")

    async def _log_output(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            if line.strip(" |"):
                log.info("%s: %s", self.engine.name, line)

    async def _channel(self, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
        if self._writer is not None:  # one API program at a time
            writer.close()
            return
        self._writer = writer
        self._connected.set()
        try:
            async for raw in reader:
                event = self.engine.parse(raw.decode(errors="replace"))
                if isinstance(event, Ack):
                    if self._pending:
                        fut = self._pending.pop(0)
                        if not fut.done():
                            fut.set_result(event.ok)
                elif isinstance(event, PeerState):
                    self.peers[event.neighbor] = event.state
                    self.on_peer(event)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._writer = None
            for fut in self._pending:
                if not fut.done():
                    fut.set_result(False)
            self._pending.clear()

    async def command(self, line: str, timeout: float = COMMAND_TIMEOUT) -> bool:
        """Send one command; True once the engine confirms it."""
        if self._writer is None:
            log.error("BGP: %s: the engine's command channel is closed", line)
            return False
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append(fut)
        self._writer.write(line.encode() + b"\n")
        try:
            await self._writer.drain()
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except (TimeoutError, ConnectionError) as e:
            log.error("BGP: %s: no confirmation from %s (%s)", line, self.engine.name,
                      type(e).__name__)
            return False

    async def wait(self) -> int:
        assert self.proc is not None
        return await self.proc.wait()

    async def stop(self) -> None:
        self.stopping = True
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                log.error("BGP: %s did not stop within 10 s: killed", self.engine.name)
                self.proc.kill()
                await self.proc.wait()
        for t in self._tasks:
            t.cancel()
        if self._server is not None:
            self._server.close()
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(self.dir, ENGINE_SOCKET))
