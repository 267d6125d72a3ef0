"""Network namespaces as test hosts: made here, always removed."""

from __future__ import annotations

import os
import uuid

import pytest
from testlib import sh


@pytest.fixture
def netns():
    if os.geteuid() != 0:
        pytest.skip("network namespace tests need root")
    made: list[str] = []

    def make() -> str:
        name = f"dt-{uuid.uuid4().hex[:8]}"
        sh("ip", "netns", "add", name)
        made.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return name

    try:
        yield make
    finally:
        for name in made:
            sh("ip", "netns", "del", name, check=False)


@pytest.fixture
def lan():
    """Hosts a, b (the VRRP pair) and c (a client) on one bridge; all removed after."""
    if os.geteuid() != 0:
        pytest.skip("network namespace tests need root")
    from lan import Lan

    made = Lan()
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def make_lan():
    """Lan(...) with the caller's hosts and addressing; every one made is removed after."""
    if os.geteuid() != 0:
        pytest.skip("network namespace tests need root")
    from lan import Lan

    made: list[Lan] = []

    def make(*args, **kw) -> Lan:
        made.append(Lan(*args, **kw))
        return made[-1]

    try:
        yield make
    finally:
        for one in made:
            one.close()
