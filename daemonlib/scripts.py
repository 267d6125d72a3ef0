"""Running scripts without blocking the loop: keepalived's user rules and
`enable_script_security` checks, timeouts, process groups."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import shutil
import signal
import stat
from typing import Any

from conf.model import Script

log = logging.getLogger("director.scripts")


def script_insecure(path: str) -> str | None:
    """With `enable_script_security`: why a non-root user could change what `path` runs
    (the file or a directory above it writable by someone other than root), or None."""
    found = path if "/" in path else shutil.which(path)
    if found is None:
        return f"{path} not found"
    real = os.path.realpath(found)
    node = real
    while True:
        try:
            st = os.stat(node)
        except OSError as e:
            return f"{node}: {e.strerror}"
        if st.st_uid != 0:
            return f"{node} is owned by uid {st.st_uid}"
        sticky_dir = stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not sticky_dir:
            return f"{node} is writable by group or others"
        if node == "/":
            return None
        node = os.path.dirname(node)


def default_script_user(configured: str | None) -> str | None:
    """keepalived's rule: `script_user`, else the user keepalived_script if it exists,
    else root (None: no switch)."""
    if configured:
        return configured
    try:
        pwd.getpwnam("keepalived_script")
        return "keepalived_script"
    except KeyError:
        return None


async def run_script(script: Script, extra: tuple[str, ...] = (), timeout: float = 30.0,
                     what: str = "notify", user: str | None = None,
                     group: str | None = None, quiet: bool = False) -> int | None:
    """Run `script` (argv as keepalived splits it, plus `extra`) as `user`; return its
    exit code, or None when it could not run or timed out."""
    argv = list(script.argv) + list(extra)
    ids: dict[str, Any] = {}
    if user is not None and os.geteuid() == 0:
        ids["user"] = user
        ids["group"] = group or pwd.getpwnam(user).pw_gid
        ids["extra_groups"] = []
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL, start_new_session=True, **ids)
    except (OSError, KeyError) as e:
        log.error("%s script %s (%s) failed to start: %s", what, argv[0], script.pos,
                  getattr(e, "strerror", None) or e)
        return None
    try:
        rc = await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: the children too
        await proc.wait()
        log.error("%s script %s timed out after %gs; killed", what, argv[0], timeout)
        return None
    if rc != 0 and not quiet:
        log.warning("%s script %s exited with status %s", what, " ".join(argv), rc)
    return rc
