"""Each child publishes its live state as JSON in the runtime directory, once a second
and atomically; the status endpoint (another process) reads it. A slow scrape can
therefore never hold up a VRRP advert or a check."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("director")


def write_json(path: str, data: Any) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


async def publish(directory: str, name: str,
                  producer: Callable[[], Awaitable[Any]], interval: float = 1.0) -> None:
    path = os.path.join(directory, name)
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as e:
        log.error("runtime directory %s: %s; no live status", directory, e.strerror)
        return
    warned = False
    while True:
        try:
            write_json(path, await producer())
            warned = False
        except OSError as e:
            if not warned:
                log.error("writing %s: %s", path, e.strerror)
                warned = True
        await asyncio.sleep(interval)
