"""The control socket each child serves in the runtime directory (`vrrp.sock`,
`lvs.sock`), and the typed requests and replies `director ctl` sends over it.

Why one socket per child, not a router in the parent: the parent has no event loop (it
waits in sigtimedwait), and the state a command changes lives in one child's loop. The
child that owns the state answers; `director ctl` knows which child a command is for.
A request is one JSON line, the reply one JSON line. Reading is bounded in size and
time, and the handlers do no blocking I/O, so a client (even a stalled one) costs the
VRRP loop a coroutine, never an advert.

The socket is root-only: created 0600 under a umask (no chmod on a path that could be
swapped for a link), in a directory nobody else can write, and each peer's SO_PEERCRED
uid is checked again and logged with what it asked.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import stat
import struct
from collections.abc import Awaitable, Callable

import attrs

from . import safefile

TYPE_CHECKING = False  # (typing itself is not imported at run time)
if TYPE_CHECKING:
    from typing import Any

log = logging.getLogger("director.ctl")

MAX_REQUEST = 64 * 1024
READ_TIMEOUT = 5.0

# command -> the fields it needs
COMMANDS: dict[str, tuple[str, ...]] = {
    "status": (),
    "drain": ("vs", "rs"),
    "enable": ("vs", "rs"),
    "weight": ("vs", "rs", "weight"),
    "clear": ("vs", "rs"),
    "handover": ("instance",),
    "takeover": ("instance",),
    "release": ("instance",),  # `ctl clear INSTANCE`: back to a normal election
    "reload": (),
}
VRRP_COMMANDS = frozenset({"handover", "takeover", "release"})
LVS_COMMANDS = frozenset({"drain", "enable", "weight", "clear"})
MAX_WEIGHT = 65535  # what keepalived accepts for a real server's weight


class BadRequest(ValueError):
    pass


def _opt_str(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 256:
        raise BadRequest(f"want a non-empty string, got {value!r}")
    return value.strip()


def _opt_weight(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_WEIGHT:
        raise BadRequest(f"weight must be a whole number 0..{MAX_WEIGHT}, got {value!r}")
    return value


def _opt_timeout(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not 0 < value <= 86400 or value != value:
        raise BadRequest(f"timeout must be seconds in (0, 86400], got {value!r}")
    return float(value)


@attrs.frozen
class Request:
    cmd: str
    vs: str | None = attrs.field(default=None, converter=_opt_str)
    rs: str | None = attrs.field(default=None, converter=_opt_str)
    instance: str | None = attrs.field(default=None, converter=_opt_str)
    weight: int | None = attrs.field(default=None, converter=_opt_weight)
    timeout: float | None = attrs.field(default=None, converter=_opt_timeout)
    wait: bool = False  # drain: answer when the destination has left the table
    via: str = ""  # who relayed the request (the status page), for the log

    def __attrs_post_init__(self) -> None:
        if self.cmd not in COMMANDS:
            raise BadRequest(f"unknown command {self.cmd!r} (known: {', '.join(COMMANDS)})")
        missing = [f for f in COMMANDS[self.cmd] if getattr(self, f) is None]
        if missing:
            raise BadRequest(f"{self.cmd}: missing {', '.join(missing)}")
        if not isinstance(self.wait, bool) or not isinstance(self.via, str):
            raise BadRequest("wait must be true/false and via a string")

    def to_json(self) -> bytes:
        d = {k: v for k, v in attrs.asdict(self).items() if v not in (None, False, "")}
        return json.dumps(d).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes) -> Request:
        try:
            d = json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise BadRequest(f"not JSON: {e}") from None
        if not isinstance(d, dict) or not isinstance(d.get("cmd"), str):
            raise BadRequest("want a JSON object with a \"cmd\"")
        names = {f.name for f in attrs.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise BadRequest(f"unknown field {unknown[0]!r}")
        try:
            return cls(**d)
        except TypeError as e:
            raise BadRequest(str(e)) from None


@attrs.frozen
class Reply:
    ok: bool
    message: str = ""
    data: Any = None

    def to_json(self) -> bytes:
        return json.dumps(attrs.asdict(self)).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes) -> Reply:
        try:
            d = json.loads(data)
            return cls(ok=bool(d["ok"]), message=str(d.get("message", "")), data=d.get("data"))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            return cls(False, "the daemon sent an unreadable reply")


@attrs.frozen
class Peer:
    uid: int
    pid: int

    def __str__(self) -> str:
        return f"uid {self.uid} pid {self.pid}"


Handler = Callable[[Request, Peer], Awaitable[Reply]]


def peer_of(sock: socket.socket) -> Peer:
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _gid = struct.unpack("3i", raw)
    return Peer(uid, pid)


def socket_path(directory: str, child: str) -> str:
    return os.path.join(directory, f"{child}.sock")


def _safe_dir(directory: str) -> str | None:
    """Why the directory is unfit for a root-only socket, or None (safefile's rules: not
    a link, ours, nobody else may write in it; made private when missing)."""
    try:
        os.close(safefile.open_dir(directory, create=True, mode=0o700))
    except OSError as e:
        return str(e) if isinstance(e, safefile.Refused) else (e.strerror or str(e))
    return None


class Server:
    def __init__(self, directory: str, child: str, handle: Handler) -> None:
        self.path = socket_path(directory, child)
        self.directory = directory
        self.handle = handle
        self.server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[object]] = set()

    async def start(self) -> bool:
        why = _safe_dir(self.directory)
        if why:
            log.error("control socket %s: runtime directory %s: %s; no control socket",
                      self.path, self.directory, why)
            return False
        try:
            st = os.lstat(self.path)
            if stat.S_ISSOCK(st.st_mode):  # a previous run's: remove (unlink takes no link)
                os.unlink(self.path)
            else:
                log.error("control socket %s: something else is there; no control socket",
                          self.path)
                return False
        except FileNotFoundError:
            pass
        except OSError as e:
            log.error("control socket %s: %s", self.path, e.strerror)
            return False
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # born 0600: no window with a wider mode, no chmod by path
        try:
            sock.bind(self.path)
        except OSError as e:
            sock.close()
            log.error("control socket %s: %s", self.path, e.strerror)
            return False
        finally:
            os.umask(old)
        self.server = await asyncio.start_unix_server(self._client, sock=sock)
        return True

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            peer = peer_of(writer.get_extra_info("socket"))
            reply = await self._one(reader, peer)
            writer.write(reply.to_json())
            await asyncio.wait_for(writer.drain(), READ_TIMEOUT)
        except (TimeoutError, OSError):
            pass
        finally:
            writer.close()
            if task is not None:
                self._tasks.discard(task)

    async def _one(self, reader: asyncio.StreamReader, peer: Peer) -> Reply:
        if peer.uid not in (0, os.geteuid()):
            log.warning("control socket: refused %s (not root)", peer)
            return Reply(False, "permission denied")
        try:
            line = await asyncio.wait_for(reader.readline(), READ_TIMEOUT)
        except TimeoutError:
            return Reply(False, "no request within 5 s")
        except (ValueError, asyncio.LimitOverrunError):
            return Reply(False, "request too long")
        if len(line) > MAX_REQUEST:
            return Reply(False, "request too long")
        try:
            req = Request.from_json(line)
        except BadRequest as e:
            return Reply(False, f"bad request: {e}")
        try:
            return await self.handle(req, peer)
        except Exception as e:  # a bug in one handler must not take the child down
            log.error("control: %s from %s failed: %s: %s", req.cmd, peer, type(e).__name__, e)
            return Reply(False, f"internal error: {type(e).__name__}: {e}")

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            for t in list(self._tasks):
                t.cancel()
            try:
                st = os.lstat(self.path)
                if stat.S_ISSOCK(st.st_mode):
                    os.unlink(self.path)
            except OSError:
                pass


async def call(directory: str, child: str, req: Request, timeout: float | None = 10.0) -> Reply:
    """One request to a child's socket (`director ctl`, and the status page's buttons)."""
    path = socket_path(directory, child)
    try:
        reader, writer = await asyncio.open_unix_connection(path, limit=16 * 1024 * 1024)
    except FileNotFoundError:
        return Reply(False, f"{path}: no such socket (is director running with "
                            f"--runtime-dir {directory}?)")
    except OSError as e:
        return Reply(False, f"{path}: {e.strerror or e}")
    try:
        writer.write(req.to_json())
        line = await asyncio.wait_for(reader.readline(), timeout)
    except TimeoutError:
        return Reply(False, f"{path}: no answer within {timeout:g} s")
    except OSError as e:
        return Reply(False, f"{path}: {e.strerror or e}")
    finally:
        writer.close()
    if not line:
        return Reply(False, f"{path}: the daemon closed the connection")
    return Reply.from_json(line)


async def reload_request(config: str, config_id: str | None, all_config: bool,
                         peer: Peer) -> Reply:
    """`ctl reload`: the file validated here with its diagnostics returned to the caller;
    if good, the parent gets SIGHUP (the same validated reload as `kill -HUP`)."""
    import signal

    from conf import load

    log.info("control: reload asked by %s", peer)
    loaded = await asyncio.get_running_loop().run_in_executor(
        None, lambda: load(config, config_id=config_id, all_config=all_config))
    diags = [str(d) for d in loaded.diags.items]
    if not loaded.ok:
        return Reply(False, f"{config}: configuration has errors; the running one is kept",
                     {"diagnostics": diags})
    parent = os.getppid()
    if parent == 1:
        return Reply(False, "no watchdog parent to reload through", {"diagnostics": diags})
    os.kill(parent, signal.SIGHUP)
    return Reply(True, f"{config}: valid; reload started", {"diagnostics": diags})


def logged(req: Request, peer: Peer) -> str:
    who = f"{peer}" + (f" via {req.via}" if req.via else "")
    return who
