"""The checker child's status, built a virtual server at a time: the streamed lvs.json is
the same document as the whole status, counters are read service by service and summed
over a group's services, each checker lands on its own real server, a reload meanwhile
drops that round (never a half-old file), and a failed stream leaves the old file."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from helpers import load_text

from checkers.engine import Engine, build
from daemonlib.runtime import Stale, publish_stream
from director.dataplane import DryRunPlane
from director.ipvs_table import SvcKey
from director.lvs import Lvs
from director.lvs_main import lvs_status, status_text, vs_status
from director.pool import rs_name

CONF = """
virtual_server_group G {
    10.0.0.2 80
    10.0.0.3 80
}
virtual_server 10.0.0.1 80 {
    protocol TCP
    real_server 10.0.1.1 80 {
        weight 2
        TCP_CHECK { connect_timeout 1 }
    }
    real_server 10.0.1.2 8080 {
        weight 3
        TCP_CHECK { connect_timeout 1 }
        HTTP_GET { url { path / } }
    }
}
virtual_server group G {
    protocol TCP
    real_server 10.0.2.1 80 { weight 4 }
}
"""


class StatsPlane(DryRunPlane):
    """The dry-run table with per-service counters, as the kernel keeps them."""

    def __init__(self) -> None:
        super().__init__()
        self.dest_reads: list[SvcKey] = []

    async def service_stats(self):
        return {k: {"conns": 10 + i} for i, k in enumerate(sorted(self.table))}

    async def dest_stats(self, key):
        self.dest_reads.append(key)
        return {d: {"conns": 1, "activeconns": 2 + d.port % 7, "inactconns": 1}
                for d in self.table[key][1]}


class FakeHealth:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine


def setup(tmp_path):
    cfg = load_text(tmp_path, CONF).config
    plane = StatsPlane()
    lvs = Lvs(cfg, plane)
    engine = Engine(lambda k, up: None, lambda k, w: None)
    build(cfg, engine, lambda k: True, rs_name)  # never started: no check runs
    return lvs, FakeHealth(engine), plane


def test_streamed_text_is_the_whole_status(tmp_path):
    async def body():
        lvs, health, plane = setup(tmp_path)
        await lvs.start()
        whole = {**await lvs_status(lvs, health), "reloads": 3}
        text = "".join([p async for p in status_text(lvs, health, 3)])
        assert text == json.dumps(whole)  # byte for byte what json.dumps gave before

        vs1, group = whole["virtual_servers"]
        a, b = vs1["real_servers"]
        assert [c["key"] for c in a["checkers"]] == [[0, 0, 0]]
        assert [(c["key"], c["type"]) for c in b["checkers"]] == [
            ([0, 1, 0], "TCP_CHECK"), ([0, 1, 1], "HTTP_GET")]
        assert (a["effective_weight"], b["effective_weight"]) == (2, 3)
        assert a["stats"]["conns"] == 1 and a["activeconns"] == 2 + 80 % 7
        # a group's counters are summed over its two services
        (g,) = group["real_servers"]
        assert g["stats"] == {"conns": 2, "activeconns": 2 * (2 + 80 % 7), "inactconns": 2}
        assert group["stats"]["conns"] == 11 + 12
        assert g["checkers"] == []
        assert len(plane.dest_reads) == 2 * 3  # service by service, twice (two documents)

    asyncio.run(body())


def test_a_reload_meanwhile_drops_the_round(tmp_path):
    async def body():
        lvs, health, _plane = setup(tmp_path)
        await lvs.start()
        gen = vs_status(lvs, health)
        first = await gen.__anext__()
        assert first["name"] == lvs.cfg.virtual_servers[0].key
        await lvs.reload(load_text(tmp_path, CONF, name="again.conf").config)
        with pytest.raises(Stale):
            await gen.__anext__()
        reloading = [False]
        gen = vs_status(lvs, health, lambda: reloading[0])
        assert (await gen.__anext__())["name"] == lvs.cfg.virtual_servers[0].key
        reloading[0] = True  # the publisher stands aside while a reload runs
        with pytest.raises(Stale):
            await gen.__anext__()

    asyncio.run(body())


def test_publish_stream_writes_whole_files_only(tmp_path):
    rounds = []

    async def chunks():
        rounds.append(1)
        yield '{"a": ['
        if len(rounds) == 2:
            raise Stale
        yield '"' + "x" * (1 << 17) + '"'  # past the write buffer: written in pieces
        yield f"], \"round\": {len(rounds)}}}"

    async def body():
        task = asyncio.ensure_future(publish_stream(str(tmp_path), "s.json", chunks,
                                                    interval=0.01))
        while len(rounds) < 3:
            await asyncio.sleep(0.01)
            if len(rounds) == 2:  # the stale round left the first file as it was
                assert json.load(open(tmp_path / "s.json"))["round"] == 1
        task.cancel()

    asyncio.run(body())
    assert sorted(os.listdir(tmp_path)) == ["s.json"]  # no temporary left behind
    doc = json.load(open(tmp_path / "s.json"))
    assert doc["round"] in (1, 3) and doc["a"] == ["x" * (1 << 17)]
    assert oct(os.stat(tmp_path / "s.json").st_mode & 0o777) == "0o600"


def test_a_service_gone_from_the_kernel_counts_nothing(tmp_path):
    async def body():
        lvs, health, plane = setup(tmp_path)
        await lvs.start()
        plane.table.pop(SvcKey(4, "TCP", "10.0.0.3", 80))  # a service gone from the kernel
        doc = await lvs_status(lvs, health)
        (g,) = doc["virtual_servers"][1]["real_servers"]
        assert g["stats"] == {"conns": 1, "activeconns": 2 + 80 % 7, "inactconns": 1}
        assert SvcKey(4, "TCP", "10.0.0.3", 80) not in plane.dest_reads

    asyncio.run(body())
