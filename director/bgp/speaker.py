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
import json
import logging
import os
import time

import attrs

from conf.errors import NOWHERE
from conf.load import reload as reload_config
from conf.model import BgpSpeaker, Config
from daemonlib import safefile
from daemonlib.runtime import Signals, publish, write_json

from .core import Announce, Prefix, Want, plan
from .engine import PeerState, engine_for
from .host import Host
from .link import SOCKET
from .process import EngineProcess, listen_unix

log = logging.getLogger("director.bgp")

RETRY = 2.0  # a step that failed (no device, engine refused) is tried again after this


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
        self.engine_died = asyncio.Event()  # the running engine exited on its own
        self.died_status: int | None = None

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
        self._watcher = asyncio.ensure_future(self._watch(self.engine))
        self.announced.clear()  # a new engine has announced nothing yet
        self.changed.set()

    async def _watch(self, engine: EngineProcess) -> None:
        status = await engine.wait()
        if not engine.stopping:  # not a reload's or the stop's own doing
            self.died_status = status
            self.engine_died.set()

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
        await self.start_engine()  # announces again what is wanted (changed is set)

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
        died = asyncio.ensure_future(self.engine_died.wait())
        done, _ = await asyncio.wait({serving, died}, return_when=asyncio.FIRST_COMPLETED)
        rc = 0
        server.close()
        applier.cancel()
        publisher.cancel()
        if died in done:
            log.error("BGP: %s exited (status %s): the speaker stops (and is restarted)",
                      self.engine.engine.name, self.died_status)
            serving.cancel()
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
