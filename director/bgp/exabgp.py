"""ExaBGP 4.2 behind the engine interface: its text process API, with `ack` on so each
command is answered `done` or `error` in order."""

from __future__ import annotations

import shlex

from conf.model import BgpNeighbor, BgpSpeaker

from .core import Prefix
from .engine import Ack, EngineEvent, PeerState

PROCESS = "director"


class ExaBgp:
    name = "exabgp"

    def argv(self, conf_path: str) -> list[str]:
        return ["exabgp", conf_path]

    def env(self, speaker: BgpSpeaker, local_addresses: dict[str, str]) -> dict[str, str]:
        # a passive neighbor connects to us: listen on its local address only
        binds = sorted({local_addresses[nb.address] for nb in speaker.neighbors
                        if nb.passive})
        return {
            "exabgp_api_ack": "true",  # every command answered: done / error
            "exabgp_api_encoder": "text",
            "exabgp_api_cli": "false",  # no named pipes in /run
            "exabgp_api_terminate": "true",  # our API program gone: ExaBGP exits
            "exabgp_api_respawn": "false",
            "exabgp_daemon_daemonize": "false",
            "exabgp_daemon_drop": "false",  # stays root: it binds nothing privileged
            "exabgp_daemon_user": "root",  # but must not look up the user 'exabgp'
            "exabgp_daemon_pid": "",
            "exabgp_log_destination": "stdout",  # read by the speaker, into director's log
            "exabgp_log_short": "true",
            "exabgp_log_level": "INFO",
            "exabgp_tcp_bind": " ".join(binds),  # none unless a neighbor is passive
        }

    def render(self, speaker: BgpSpeaker, api_argv: list[str],
               local_addresses: dict[str, str]) -> str:
        out = [f"process {PROCESS} {{",
               f"    run {' '.join(shlex.quote(a) for a in api_argv)};",
               "    encoder text;", "}", ""]
        for nb in speaker.neighbors:
            out += self._neighbor(speaker, nb, local_addresses[nb.address])
        return "\n".join(out) + "\n"

    def _neighbor(self, sp: BgpSpeaker, nb: BgpNeighbor, local: str) -> list[str]:
        family = "ipv4 unicast" if nb.family == 4 else "ipv6 unicast"
        lines = [f"neighbor {nb.address} {{",
                 f"    router-id {sp.router_id};",
                 f"    local-address {local};",
                 f"    local-as {sp.local_as};",
                 f"    peer-as {nb.remote_as};",
                 f"    hold-time {nb.hold_time};",
                 # keep what is announced over a session reset: re-sent when it is back up
                 "    adj-rib-out true;",
                 f"    family {{ {family}; }}",
                 f"    api {{ processes [ {PROCESS} ]; neighbor-changes; }}"]
        if nb.port != 179:
            lines.append(f"    connect {nb.port};")
        if nb.passive:
            lines.append("    passive true;")
        return [*lines, "}", ""]

    def announce(self, prefix: Prefix) -> str:
        return f"announce route {prefix} next-hop self"

    def withdraw(self, prefix: Prefix) -> str:
        return f"withdraw route {prefix} next-hop self"

    def parse(self, line: str) -> EngineEvent | None:
        line = line.strip()
        if line in ("done", "error"):
            return Ack(line == "done")
        words = line.split(None, 3)
        if len(words) >= 3 and words[0] == "neighbor":
            # "neighbor A connected" / "neighbor A up" / "neighbor A down - reason"
            detail = words[3].removeprefix("- ") if len(words) > 3 else ""
            return PeerState(words[1], words[2], detail)
        return None
