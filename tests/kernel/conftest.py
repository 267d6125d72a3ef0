"""The kernel tier runs inside the VM (tools/run-kernel-tests), where ip_vs exists."""

from __future__ import annotations

import os
import subprocess

import pytest


def pytest_collection_modifyitems(config, items):
    if os.environ.get("DIRECTOR_IN_VM") == "1":
        return
    skip = pytest.mark.skip(reason="kernel tier: needs IPVS; run it with `make kernel` "
                                   "(boots a VM with a Debian kernel)")
    here = os.path.dirname(os.path.abspath(__file__))
    for item in items:
        if str(item.path).startswith(here + os.sep):
            item.add_marker(skip)


@pytest.fixture
def ipvs_clean():
    subprocess.run(["modprobe", "ip_vs"], check=True)
    subprocess.run(["ipvsadm", "-C"], check=True)
    yield
    subprocess.run(["ipvsadm", "-C"], check=True)
