"""The BGP speaker child: runs the engine (ExaBGP) and keeps what it announces equal to
what the LVS child wants.

The LVS child sends its whole wanted state (every configured prefix, up or not, with
the reason) over `bgp.sock` in the runtime directory, on every quorum change and when it
(re)connects. The speaker diffs it against what it has announced (core.plan), puts the
VIP on its device before an announcement and takes it away after a withdrawal, waits for
the engine's confirmation of each command, then answers with the sequence number it has
applied. A restart of the LVS child changes nothing here: the speaker keeps its state
until the new child re-sends. A restart of the speaker announces again what the LVS
child (re)sends. TERM withdraws everything first, waits for the engine's confirmations
and `withdraw_grace`, and only then stops the engine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import logging
import os
import signal
import socket
import stat
import sys
import time
from collections.abc import Callable

import attrs

from conf.errors import NOWHERE
from conf.load import reload as reload_config
from conf.model import BgpSpeaker, Config
from daemonlib import safefile
from daemonlib.runtime import Signals, publish, write_json

from .core import Announce, Prefix, Want, plan
from .engine import Ack, Engine, PeerState, engine_for
from .host import Host

log = logging.getLogger("director.bgp")

SOCKET = "bgp.sock"  # the LVS child's wanted state comes in here
ENGINE_SOCKET = "bgp-engine.sock"  # the engine's API program connects here
COMMAND_TIMEOUT = 10.0
RETRY = 2.0  # a step that failed (no device, engine refused) is tried again after this
PR_SET_PDEATHSIG = 1


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


def _die_with_parent() -> None:  # in the engine's process, before exec
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


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
        self.proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, env=env, cwd=self.dir,
            preexec_fn=_die_with_parent)
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


def _plain(speaker: BgpSpeaker | None) -> BgpSpeaker | None:
    """The speaker's settings without positions: a reload that only moved lines is no
    change."""
    if speaker is None:
        return None
    return attrs.evolve(speaker, pos=NOWHERE, neighbors=tuple(
        attrs.evolve(nb, pos=NOWHERE) for nb in speaker.neighbors))


class Speaker:
    def __init__(self, args: argparse.Namespace, cfg: Config) -> None:
        assert cfg.bgp_speaker is not None
        self.args = args
        self.settings: BgpSpeaker = cfg.bgp_speaker
        self.dir = args.runtime_dir
        self.host = Host()
        self.engine: EngineProcess | None = None
        self.announced: dict[Prefix, tuple[float, str]] = {}  # since, reason
        self.wanted: tuple[Want, ...] | None = None  # None: the LVS child has not spoken
        self.seq = 0  # of the wanted state
        self.applied_seq = 0
        self.cleaned = False
        self.changed = asyncio.Event()
        self.clients: set[asyncio.StreamWriter] = set()
        self.updates = 0

    # -- the engine ----------------------------------------------------------------
    async def start_engine(self) -> None:
        local: dict[str, str] = {}
        for nb in self.settings.neighbors:
            src = nb.local_address or await self.host.source(nb.address)
            if src is None:
                raise RuntimeError(f"no route to neighbor {nb.address}: set its "
                                   f"local_address or add a route")
            local[nb.address] = src
        self.engine = EngineProcess(engine_for(self.settings.engine), self.settings,
                                    self.dir, local)
        self.engine.on_peer = self._peer
        await self.engine.start()
        self.announced.clear()  # a new engine has announced nothing yet
        self.changed.set()

    def _peer(self, p: PeerState) -> None:
        log.info("BGP: neighbor %s %s%s", p.neighbor, p.state,
                 f" ({p.detail})" if p.detail else "")

    # -- the LVS child's channel ----------------------------------------------------
    async def _client(self, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        self.clients.add(writer)
        try:
            async for raw in reader:
                try:
                    msg = json.loads(raw)
                    wants = tuple(Want.from_json(w) for w in msg["wants"])
                    seq = int(msg["seq"])
                except (ValueError, KeyError, TypeError) as e:
                    log.warning("BGP: a malformed state from the LVS child dropped: %s", e)
                    continue
                self.wanted, self.seq = wants, seq
                self.changed.set()
        except (ConnectionError, asyncio.CancelledError):
            pass  # gone, or the speaker stops (a cancelled client task logs a traceback)
        finally:
            self.clients.discard(writer)
            writer.close()

    def _answer(self) -> None:
        data = json.dumps({"seq": self.applied_seq,
                           "announced": sorted(str(p) for p in self.announced)}).encode()
        for w in list(self.clients):
            with contextlib.suppress(ConnectionError, RuntimeError):
                w.write(data + b"\n")

    # -- applying ------------------------------------------------------------------
    async def apply(self, wanted: tuple[Want, ...], final: str | None = None) -> bool:
        """Make the announcements follow `wanted`; True when they all went through.
        `final`: the reason every prefix is withdrawn (stopping)."""
        assert self.engine is not None
        if final is not None:
            wanted = tuple(Want(p, False, final) for p in self.announced)
        if not self.cleaned:  # a previous speaker's VIPs on devices nobody announces
            self.cleaned = True
            for w in wanted:
                if not w.up and w.prefix not in self.announced:
                    await self.host.address("del", w.prefix)
        ok = True
        for step in plan(self.announced, wanted):
            p = step.prefix
            if isinstance(step, Announce):
                if not await self.host.address("add", p):
                    ok = False
                    continue
                if await self.engine.command(self.engine.engine.announce(p)):
                    self.announced[p] = (time.time(), step.reason)
                    self.updates += 1
                    log.info("BGP: announced %s (%s on %s): %s", p, p.address, p.dev,
                             step.reason)
                else:
                    ok = False
            else:
                if await self.engine.command(self.engine.engine.withdraw(p)):
                    del self.announced[p]
                    self.updates += 1
                    log.info("BGP: withdrawn %s: %s", p, step.reason)
                    await self.host.address("del", p)
                else:
                    ok = False
        return ok

    async def _applier(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self.changed.wait(), RETRY)
            except TimeoutError:
                if self.wanted is None or {w.prefix for w in self.wanted if w.up} == set(
                        self.announced):
                    continue
            self.changed.clear()
            if self.wanted is None:
                continue
            seq = self.seq
            await self.apply(self.wanted)
            self.applied_seq = seq
            self._answer()
            try:  # `director ctl status` sees the change now, not at the next second
                write_json(os.path.join(self.dir, "bgp.json"), await self.status())
            except OSError as e:
                log.error("BGP: writing bgp.json: %s", e.strerror or e)

    async def status(self) -> dict[str, object]:
        return {"engine": self.settings.engine, "pid": os.getpid(),
                "peers": dict(self.engine.peers) if self.engine else {},
                "announced": [{"prefix": str(p), "dev": p.dev, "since": since,
                               "reason": why}
                              for p, (since, why) in sorted(self.announced.items())],
                "wanted": None if self.wanted is None else
                [{"prefix": str(w.prefix), "up": w.up, "reason": w.reason}
                 for w in self.wanted],
                "updates": self.updates, "applied_seq": self.applied_seq}

    async def reload(self) -> None:
        new = reload_config(self.args.config, self.args.config_id, self.args.all_config, log)
        if new is None:
            return
        if _plain(new.bgp_speaker) == _plain(self.settings):
            return
        if new.bgp_speaker is None:
            log.warning("BGP: bgp_speaker removed from the configuration: it takes "
                        "effect when director restarts; the speaker keeps running")
            return
        log.info("BGP: bgp_speaker changed: the engine restarts (its sessions reset)")
        assert self.engine is not None
        await self.engine.stop()
        self.settings = new.bgp_speaker
        await self.start_engine()

    async def run(self) -> int:
        signals = Signals()
        os.close(safefile.open_dir(self.dir, create=True, mode=0o700))
        await self.start_engine()
        assert self.engine is not None
        server = await asyncio.start_unix_server(
            self._client, sock=listen_unix(os.path.join(self.dir, SOCKET)))
        applier = asyncio.ensure_future(self._applier())
        publisher = asyncio.ensure_future(publish(self.dir, "bgp.json", self.status))
        serving = asyncio.ensure_future(signals.serve(self.reload))
        died = asyncio.ensure_future(self.engine.wait())
        done, _ = await asyncio.wait({serving, died}, return_when=asyncio.FIRST_COMPLETED)
        rc = 0
        server.close()
        applier.cancel()
        publisher.cancel()
        if died in done:
            log.error("BGP: %s exited (status %s): the speaker stops (and is restarted)",
                      self.engine.engine.name, died.result())
            rc = 1
        else:
            died.cancel()
            await self._withdraw_all()
        await self.engine.stop()
        for p in list(self.announced):
            await self.host.address("del", p)
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(self.dir, SOCKET))
        self.host.close()
        return rc

    async def _withdraw_all(self) -> None:
        """Stop: withdraw first, wait for the engine's confirmations, give the router
        `withdraw_grace` to hear it, then let the rest stop."""
        if not self.announced:
            return
        n = len(self.announced)
        t0 = time.monotonic()
        ok = await self.apply((), final="director stopping")
        log.info("BGP: %d prefixes withdrawn%s in %.3f s; waiting %g s (withdraw_grace)",
                 n, "" if ok else " (some not confirmed)", time.monotonic() - t0,
                 self.settings.withdraw_grace)
        await asyncio.sleep(self.settings.withdraw_grace)


async def run(args: argparse.Namespace, cfg: Config, adopt: bool = False) -> int:
    try:
        return await Speaker(args, cfg).run()
    except (RuntimeError, OSError) as e:
        log.error("BGP speaker: %s", e)
        return 1
