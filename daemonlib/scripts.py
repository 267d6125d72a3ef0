"""Every script director runs, under one policy: keepalived's rules for who runs it
(`script_user`, the `keepalived_script` user, per-script users), its checks at config load
(found, executable by that user, and with `enable_script_security` nothing on its path
writable by another user when it runs as root) and running it without blocking the loop
(timeouts, process groups).

The policy is applied once per config load (`enforce`): a script that fails its checks is
taken out of the config each daemon runs, as keepalived removes it (a notify script is not
run, a vrrp_script no longer counts for its instances, a MISC_CHECK no longer holds its real
server down), with one log line saying why. `run_script` then only looks the script up.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import grp
import logging
import os
import pwd
import signal
import stat

import attrs

from conf import aot
from conf.model import Config, GlobalDefs, Notify, Script

TYPE_CHECKING = False  # (typing itself is not imported at run time)
if TYPE_CHECKING:
    from typing import Any

log = logging.getLogger("director.scripts")

DEFAULT_USER = "keepalived_script"


@attrs.frozen
class RunAs:
    uid: int
    gid: int
    groups: tuple[int, ...]  # supplementary groups (only with a ":GROUP" in the config)
    name: str


@attrs.frozen
class Runnable:
    """A script that passed the policy: what to exec and as whom (None: as ourselves)."""

    argv: tuple[str, ...]
    run_as: RunAs | None


# -- the checks (reads the file system, decides nothing else) --------------------------
def lookup_user(user: str, group: str | None) -> RunAs:
    """keepalived's user[:group] rule: the user's own group unless one is named; a group
    written ":NAME" (or ":") also sets the user's supplementary groups."""
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        raise LookupError(f"script user '{user}' does not exist") from None
    gid, sup = pw.pw_gid, False
    if group and group.startswith(":"):
        sup, group = True, group[1:] or None
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise LookupError(f"script group '{group}' does not exist") from None
    groups = tuple(os.getgrouplist(user, pw.pw_gid)) if sup else ()
    return RunAs(pw.pw_uid, gid, groups, user)


def is_executable(st: os.stat_result, uid: int, gid: int) -> bool:
    if uid == 0:
        return bool(st.st_mode & 0o111)
    if uid == st.st_uid:
        return bool(st.st_mode & stat.S_IXUSR)
    return bool(st.st_mode & (stat.S_IXGRP if gid == st.st_gid else stat.S_IXOTH))


def _reachable(path: str, uid: int, gid: int) -> bool:
    """Can `uid:gid` walk down to `path` (search permission on every directory)?"""
    if uid == 0:
        return True
    node = os.path.dirname(path)
    while True:
        try:
            if not is_executable(os.stat(node), uid, gid):
                return False
        except OSError:
            return False
        if node == "/":
            return True
        node = os.path.dirname(node)


def unsafe_path(path: str) -> str | None:
    """Why a user other than root could change what `path` runs, or None: every
    component must be owned by root, and no directory (unless sticky) nor the file be
    writable by a non-root group or by others. A link along the way (/bin -> usr/bin) is
    fine when root owns it: its target is checked by the walk of the real path."""
    parts = [p for p in path.split("/") if p]
    node = "/"
    for i, part in enumerate([""] + parts):
        node = os.path.join(node, part) if part else "/"
        last = i == len(parts)
        try:
            st = os.lstat(node)
        except OSError as e:
            return f"{node}: {e.strerror}"
        link = stat.S_ISLNK(st.st_mode)
        if not link and not (stat.S_ISREG(st.st_mode) if last else stat.S_ISDIR(st.st_mode)):
            return f"{node} is not a {'file' if last else 'directory'}"
        if st.st_uid != 0:
            return f"{node} is owned by uid {st.st_uid}, not root"
        checked = stat.S_ISREG(st.st_mode) or (stat.S_ISDIR(st.st_mode)
                                               and not st.st_mode & stat.S_ISVTX)
        if checked and ((st.st_gid != 0 and st.st_mode & stat.S_IWGRP)
                        or st.st_mode & stat.S_IWOTH):
            return f"{node} is writable by {'others' if st.st_mode & stat.S_IWOTH else 'its group'}"
    return None


@attrs.frozen
class Verdict:
    """The outcome of the checks: `runnable` or `refused` (why, for the log)."""

    runnable: Runnable | None
    refused: str = ""
    insecure: bool = False  # found unsafe (refused only with enable_script_security)
    notes: tuple[str, ...] = ()  # warnings worth a log line even when it runs


def check(script: Script, run_as: RunAs | None, security: bool) -> Verdict:
    """keepalived's check_script_secure, as a verdict."""
    uid, gid = (run_as.uid, run_as.gid) if run_as else (os.geteuid(), os.getegid())
    name = script.argv[0]
    notes: list[str] = []
    path = name
    if "/" not in name:
        for d in os.environ.get("PATH", os.defpath).split(":"):
            cand = os.path.join(d or ".", name)
            try:
                st = os.stat(cand)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and is_executable(st, uid, gid):
                path = cand
                notes.append(f"found by PATH search at {cand}; better give the full path")
                break
        else:
            return Verdict(None, f"{name} not found in PATH (as uid {uid})")
    if not _reachable(os.path.abspath(path), uid, gid):
        return Verdict(None, f"{path} cannot be reached by uid {uid}")
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except OSError as e:
        return Verdict(None, f"{path}: {e.strerror}")
    if not stat.S_ISREG(st.st_mode) or not is_executable(st, uid, gid):
        return Verdict(None, f"{path} is not executable by uid:gid {uid}:{gid}")
    # as keepalived: the path is checked when the script would run with root's power
    root_power = uid == 0 or gid == 0 or (st.st_uid == 0 and st.st_mode & stat.S_ISUID) or (
        st.st_gid == 0 and st.st_mode & stat.S_ISGID)
    runnable = Runnable((path, *script.argv[1:]), run_as)
    if root_power:
        why = unsafe_path(os.path.abspath(path)) or (
            unsafe_path(real) if real != os.path.abspath(path) else None)
        if why:
            if security:
                return Verdict(None, f"unsafe permissions: {why}", insecure=True)
            notes.append(f"unsafe permissions: {why}")
            return Verdict(runnable, insecure=True, notes=tuple(notes))
    return Verdict(runnable, notes=tuple(notes))


# -- the policy ---------------------------------------------------------------------
class ScriptPolicy:
    """One config's verdicts on its scripts (per process: the VRRP side or the checkers)."""

    def __init__(self, g: GlobalDefs) -> None:
        self.security = g.enable_script_security
        self.table: dict[Script, Runnable | None] = {}
        self.any_runs = False
        self.any_insecure = False
        self.g = g
        self._default: tuple[RunAs | None, str] | None = None

    def default(self) -> tuple[RunAs | None, str]:
        """Whom a script without its own user runs as, or why it may not run. Looked up
        at the first script, not before: a user lookup reads the NSS files (a few dozen
        file operations, on the way to the first IPVS operation)."""
        if self._default is not None:
            return self._default
        # keepalived: script_user, else keepalived_script if it exists, else root; with
        # enable_script_security and neither, scripts without their own user are refused
        g, run_as, error = self.g, None, ""
        if g.script_user:
            try:
                run_as = lookup_user(g.script_user, g.script_group)
            except LookupError as e:
                error = f"script_user ({g.pos}): {e}"
        else:
            try:
                run_as = lookup_user(DEFAULT_USER, None)
            except LookupError:
                if self.security:
                    error = (f"no script_user and no user {DEFAULT_USER}: "
                             "enable_script_security will not run scripts as root")
        self._default = (run_as, error)
        return self._default

    def resolve(self, script: Script, what: str) -> Runnable | None:
        """The verdict on `script` (its own user/group if it has them), logged once."""
        if script in self.table:
            return self.table[script]
        (run_as, refused), verdict = self.default(), None
        if script.user:
            refused = ""
            try:
                run_as = lookup_user(script.user, script.group)
            except LookupError as e:
                refused = str(e)
        if not refused:
            verdict = check(script, run_as, self.security)
            refused = verdict.refused
            self.any_insecure |= verdict.insecure
            for note in verdict.notes:
                log.warning("%s script %s (%s): %s", what, script.argv[0], script.pos, note)
        runnable = verdict.runnable if verdict else None
        if runnable is None:
            log.error("%s%s script %s (%s) disabled: %s",
                      "SECURITY: " if verdict and verdict.insecure else "", what, script.cmd,
                      script.pos, refused)
        else:
            self.any_runs = True
        self.table[script] = runnable
        return runnable

    def allowed(self, script: Script | None, what: str) -> Script | None:
        """`script` if the policy lets it run, else None."""
        return script if script is not None and self.resolve(script, what) else None

    def report(self, side: str) -> None:
        """keepalived's summary warning when scripts run without enable_script_security."""
        if self.any_runs and not self.security:
            log.warning("SECURITY VIOLATION: %s scripts will run without "
                        "enable_script_security%s", side,
                        "; some are insecure" if self.any_insecure else "")


_current: ScriptPolicy | None = None


def _with_user(script: Script | None, user: str | None, group: str | None) -> Script | None:
    """A block-level `user` (vrrp_script, MISC_CHECK) carried by the script itself."""
    if script is None or not user or script.user:
        return script
    return aot.evolve(script, user=user, group=group)


@functools.cache
def _script_fields(cls: type) -> tuple[str, ...]:
    """The fields of a model class that hold a script or a Notify block."""
    return tuple(f.name for f in aot.fields(cls)
                 if str(f.type).replace(" ", "") in ("Script|None", "Notify"))


def _has_scripts(obj: Any) -> bool:
    cls: type = type(obj)
    for name in _script_fields(cls):  # a loop, not any(): called for every real server
        if getattr(obj, name) is not None:
            return True
    return False


# The checker side's virtual servers of the last load that hold no script (none of their
# own, none in a real server or checker): a reload that reuses such an object (the
# incremental parse) skips looking through its 10 or 100 real servers again.
_plain_vs: dict[int, Any] = {}


def enforce(cfg: Config, side: str) -> Config:
    """Apply the script policy to the scripts `side` ("vrrp" or "checker") runs, once per
    config load; return the config this side runs: refused scripts taken out as keepalived
    removes them. The policy becomes the one `run_script` consults."""
    global _current
    policy = _current = ScriptPolicy(cfg.global_defs)
    g = cfg.global_defs

    def notifies(obj: Any, label: str) -> Any:
        """`obj` with its notify scripts (also those in a Notify block) vetted; the same
        object when nothing changes (evolving 10,000 real servers costs seconds)."""
        changes = {}
        cls: type = type(obj)
        for name in _script_fields(cls):
            value = getattr(obj, name)
            if value is None:
                continue
            new = notifies(value, label) if isinstance(value, Notify) else (
                policy.allowed(value, f"{label} {name}"))
            if new is not value:
                changes[name] = new
        return aot.evolve(obj, **changes) if changes else obj

    fifo_fields = ("vrrp_notify_fifo_script", "notify_fifo_script") if side == "vrrp" else (
        "lvs_notify_fifo_script", "notify_fifo_script")
    vetted: dict[str, Any] = {f: policy.allowed(getattr(g, f), f) for f in fifo_fields}
    g = aot.evolve(g, **vetted)
    if side == "vrrp":
        scripts, gone = [], set()
        for s in cfg.vrrp_scripts:
            script = _with_user(s.script, s.user, s.group)
            if script is not None and policy.resolve(script, f"vrrp_script {s.name}"):
                scripts.append(aot.evolve(s, script=script))
            else:
                gone.add(s.name)
                log.error("Disabling track script %s: its script may not run", s.name)

        def untrack(obj: Any) -> Any:
            refs = tuple(r for r in obj.track_script if r.name not in gone)
            return aot.evolve(obj, track_script=refs) if len(refs) != len(
                obj.track_script) else obj

        new = aot.evolve(
            cfg, global_defs=g, vrrp_scripts=tuple(scripts),
            vrrp_instances=tuple(untrack(notifies(i, f"VRRP_Instance({i.name})"))
                                 for i in cfg.vrrp_instances),
            vrrp_sync_groups=tuple(untrack(notifies(s, f"VRRP_Group({s.name})"))
                                   for s in cfg.vrrp_sync_groups))
    else:
        global _plain_vs
        vss = []
        known, plain = _plain_vs, {}
        for vs in cfg.virtual_servers:
            if known.get(id(vs)) is vs:  # the last load's object (a reload reused it)
                vss.append(vs)
                plain[id(vs)] = vs
                continue
            rss = []
            scripted = False
            for rs in vs.real_servers:
                if not _has_scripts(rs) and all(ck.type != "MISC_CHECK" for ck in rs.checkers):
                    rss.append(rs)  # the common case, and 10,000 of them: nothing to vet
                    continue
                scripted = True
                checkers = []
                for ck in rs.checkers:
                    if ck.type == "MISC_CHECK":
                        script = _with_user(ck.misc_path, ck.user, ck.group)
                        if script is None or not policy.resolve(script, "MISC_CHECK"):
                            log.error("Disabling MISC_CHECK %s of real server %s: its "
                                      "script may not run", ck.pos, rs.address)
                            continue
                        if script is not ck.misc_path:
                            ck = aot.evolve(ck, misc_path=script)
                    checkers.append(ck)
                new_rs = notifies(rs, f"real_server {rs.address}")
                if any(a is not b for a, b in zip(checkers, rs.checkers, strict=False)) or len(
                        checkers) != len(rs.checkers):
                    new_rs = aot.evolve(new_rs, checkers=tuple(checkers))
                rss.append(new_rs)
            if not scripted and not _has_scripts(vs):
                plain[id(vs)] = vs  # no script anywhere: the policy cannot change it
                vss.append(vs)
                continue
            new_vs = notifies(vs, f"virtual_server {vs.pos}")
            if any(a is not b for a, b in zip(rss, vs.real_servers, strict=True)):
                new_vs = aot.evolve(new_vs, real_servers=tuple(rss))
            vss.append(new_vs)
        _plain_vs = plain
        new = aot.evolve(cfg, global_defs=g, virtual_servers=tuple(vss))
    policy.report("VRRP" if side == "vrrp" else "checker")
    return new


def _policy() -> ScriptPolicy:
    global _current
    if _current is None:  # no config loaded (a test, a tool): keepalived's defaults
        _current = ScriptPolicy(GlobalDefs())
    return _current


def run_as_of(script: Script) -> RunAs | None:
    """Who the policy runs `script` as (None: ourselves, or it may not run)."""
    runnable = _policy().resolve(script, "notify_fifo")
    return runnable.run_as if runnable else None


async def run_script(script: Script, extra: tuple[str, ...] = (),
                     timeout: float | None = 30.0, what: str = "notify",
                     quiet: bool = False) -> int | None:
    """Run `script` (plus `extra` arguments) as the policy says; return its exit code, or
    None when it may not run, could not start or timed out."""
    runnable = _policy().resolve(script, what)
    if runnable is None:
        return None
    argv = [*runnable.argv, *extra]
    ids: dict[str, Any] = {}
    if runnable.run_as is not None and os.geteuid() == 0:
        ids = {"user": runnable.run_as.uid, "group": runnable.run_as.gid,
               "extra_groups": list(runnable.run_as.groups)}
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL, start_new_session=True, **ids)
    except OSError as e:
        log.error("%s script %s (%s) failed to start: %s", what, argv[0], script.pos,
                  e.strerror or e)
        return None
    try:
        rc = await asyncio.wait_for(proc.wait(), timeout)
    except (TimeoutError, asyncio.CancelledError) as e:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: the children too
        if isinstance(e, asyncio.CancelledError):
            raise
        await proc.wait()
        log.error("%s script %s timed out after %gs; killed", what, argv[0], timeout)
        return None
    if rc != 0 and not quiet:
        log.warning("%s script %s exited with status %s", what, " ".join(argv), rc)
    return rc
