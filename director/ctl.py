"""`director ctl`: operators' commands to a running director, over the control sockets
its children serve in the runtime directory (see daemonlib.control for why one socket per
child). This module routes each command to the child that owns the state and prints the
answer, for people (aligned columns) or, with --json, for scripts."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

from daemonlib.control import BadRequest, Reply, Request, call, socket_path

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2

HELP = """commands:
  status                       VRRP instances; virtual and real servers with checks,
                               weights (configured/effective/override), connections, rates
  drain VS RS [--timeout S]    weight 0 now; out of IPVS when its connections end (or at
                               the timeout); waits and reports unless --no-wait
  enable VS RS                 end a drain
  weight VS RS N               serve at weight N (while its checkers say up)
  clear VS RS                  drop the real server's overrides
  clear INSTANCE               end a handover: the normal election resumes
  handover INSTANCE            give up MASTER (priority 0 advert), stay BACKUP
  takeover INSTANCE            become MASTER now; ends a handover
  reload                       validate the config and reload it (as SIGHUP), showing
                               the file's diagnostics

VS: as in the log ([10.0.0.1]:tcp:80), ADDRESS:PORT[/tcp|udp], FWM N, or a group name.
RS: ADDRESS:PORT, or ADDRESS when the virtual server has one real server there.
Overrides stay over reloads until cleared; every change is logged with the caller's uid
and pid."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: {message}\n")


def make_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--runtime-dir", default=argparse.SUPPRESS, metavar="DIR",
                        help="the daemon's --runtime-dir (default /run/director)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print the answer as JSON")
    p = _Parser(prog="director ctl", parents=[common], epilog=HELP,
                formatter_class=argparse.RawDescriptionHelpFormatter,
                description="control a running director")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    sub.add_parser("status", parents=[common], help="live state")
    d = sub.add_parser("drain", parents=[common], help="drain a real server")
    d.add_argument("vs")
    d.add_argument("rs")
    d.add_argument("--timeout", type=float, metavar="S",
                   help="remove it after S seconds even with connections left")
    d.add_argument("--no-wait", action="store_true",
                   help="return at once; `ctl status` shows the drain")
    for name, what in (("enable", "end a drain"), ("clear", "drop overrides"),
                       ("weight", "set a weight")):
        c = sub.add_parser(name, parents=[common], help=what)
        c.add_argument("vs", metavar="VS|INSTANCE" if name == "clear" else "VS")
        c.add_argument("rs", nargs="?" if name == "clear" else None, metavar="RS")
        if name == "weight":
            c.add_argument("weight", metavar="N")
    for name in ("handover", "takeover"):
        sub.add_parser(name, parents=[common], help=f"{name} a VRRP instance").add_argument(
            "instance")
    sub.add_parser("reload", parents=[common], help="validated reload")
    return p


def build(a: argparse.Namespace) -> tuple[str, Request]:
    """The child to ask and the request; BadRequest for bad input."""
    cmd = a.cmd
    if cmd == "weight":
        try:
            weight = int(a.weight)
        except ValueError:
            raise BadRequest(f"weight must be a whole number, got {a.weight!r}") from None
        return "lvs", Request("weight", vs=a.vs, rs=a.rs, weight=weight)
    if cmd == "drain":
        return "lvs", Request("drain", vs=a.vs, rs=a.rs, timeout=a.timeout,
                              wait=not a.no_wait)
    if cmd in ("enable", "clear") and a.rs is not None:
        return "lvs", Request(cmd, vs=a.vs, rs=a.rs)
    if cmd == "clear":
        return "vrrp", Request("release", instance=a.vs)
    if cmd in ("handover", "takeover"):
        return "vrrp", Request(cmd, instance=a.instance)
    return "", Request(cmd)


async def _status(directory: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    found = False
    for child in ("vrrp", "lvs"):
        if not os.path.exists(socket_path(directory, child)):
            out[child] = None
            continue
        found = True
        r = await call(directory, child, Request("status"))
        out[child] = r.data if r.ok else {"error": r.message}
    if not found:
        raise LookupError(f"no control socket in {directory} (is director running with "
                          f"--runtime-dir {directory}?)")
    bgp = _bgp_status(directory)
    if bgp is not None:
        out["bgp"] = bgp
    return out


def _bgp_status(directory: str) -> dict[str, Any] | None:
    """The BGP speaker's state, as it writes it after each change (and each second);
    None when no speaker runs."""
    if not os.path.exists(os.path.join(directory, "bgp.sock")):
        return None
    try:
        with open(os.path.join(directory, "bgp.json")) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return {"error": "the BGP speaker has not published its state yet"}


def main(argv: list[str]) -> int:
    a = make_parser().parse_args(argv)
    directory = getattr(a, "runtime_dir", "/run/director")
    as_json = getattr(a, "json", False)
    try:
        child, req = build(a)
    except BadRequest as e:
        print(f"director ctl: {e}", file=sys.stderr)
        return EXIT_USAGE
    if req.cmd == "status":
        try:
            st = asyncio.run(_status(directory))
        except LookupError as e:
            print(f"director ctl: {e}", file=sys.stderr)
            return EXIT_REFUSED
        print(json.dumps(st, indent=2) if as_json else render_status(st))
        return EXIT_OK
    if not child:  # reload: either child validates and signals the parent
        child = "lvs" if os.path.exists(socket_path(directory, "lvs")) else "vrrp"
    timeout = None if req.wait else 30.0
    reply = asyncio.run(call(directory, child, req, timeout=timeout))
    return _print(reply, as_json)


def _print(reply: Reply, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"ok": reply.ok, "message": reply.message, "data": reply.data},
                         indent=2))
    else:
        data = reply.data if isinstance(reply.data, dict) else {}
        for line in data.get("diagnostics", []):
            print(line, file=sys.stderr)
        print(reply.message if reply.ok else f"director ctl: {reply.message}",
              file=sys.stdout if reply.ok else sys.stderr)
    return EXIT_OK if reply.ok else EXIT_REFUSED


# -- the people's view ---------------------------------------------------------------------
def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in rows]


def _override(ov: dict[str, Any] | None) -> str:
    if not ov:
        return "-"
    parts = []
    if ov.get("drain"):
        parts.append(ov["drain"])
    if ov.get("weight") is not None:
        parts.append(f"weight {ov['weight']}")
    if "handover" in ov:
        parts.append("handover")
    who = ov.get("who") or ov.get("handover") or ""
    return ", ".join(parts) + (f" ({who})" if who else "")


def render_status(st: dict[str, Any]) -> str:
    out: list[str] = []
    v = st.get("vrrp")
    if v is not None:
        out.append("VRRP instances")
        if "error" in v:
            out.append(f"  {v['error']}")
        else:
            rows = [["  Instance", "State", "Prio", "Master", "VIPs", "Override"]]
            for i in v.get("instances", []):
                rows.append([f"  {i['name']}", i["state"], str(i["priority"]),
                             i.get("master_ip") or "-", " ".join(i.get("vips", [])) or "-",
                             _override(i.get("override"))])
            out += _table(rows)
    lvs = st.get("lvs")
    if lvs is not None:
        if out:
            out.append("")
        out.append("Virtual servers" + (" (dry run: no IPVS)" if lvs.get("dry_run") else ""))
        if "error" in lvs:
            out.append(f"  {lvs['error']}")
        rows = [["  Real server", "Check", "Reason", "Weight cfg/eff", "Override", "ActConn",
                 "InActConn", "CPS", "InBPS", "OutBPS"]]
        for vs in lvs.get("virtual_servers", []):
            q = "" if vs.get("quorum_up", True) else "  QUORUM DOWN"
            rows.append([f"{vs['name']} {vs.get('lb_algo', '')} {vs.get('lb_kind', '')}{q}",
                         *[""] * 9])
            for r in vs.get("real_servers", []):
                reason = next((c.get("last_failure") for c in r.get("checkers", [])
                               if not c.get("up")), "") or ""
                eff = r.get("effective_weight")
                st_ = r.get("stats", {})
                rows.append([f"  -> {r['address']}:{r['port']}", "UP" if r["alive"] else "DOWN",
                             reason[:40] or "-",
                             f"{r.get('configured_weight', r['weight'])}/"
                             f"{'out' if eff is None else eff}",
                             _override(r.get("override")), str(r.get("activeconns", 0)),
                             str(r.get("inactconns", 0)), str(st_.get("cps", 0)),
                             str(st_.get("inbps", 0)), str(st_.get("outbps", 0))])
        out += _table(rows)
    bgp = st.get("bgp")
    if bgp is not None:
        if out:
            out.append("")
        out.append(f"BGP ({bgp.get('engine', '?')})")
        if "error" in bgp:
            out.append(f"  {bgp['error']}")
        rows = [["  Neighbor", "Session"]]
        rows += [[f"  {addr}", state] for addr, state in sorted(bgp.get("peers", {}).items())]
        out += _table(rows)
        rows = [["  Announced", "Dev", "Since", "Reason"]]
        for a in bgp.get("announced", []):
            since = time.strftime("%H:%M:%S", time.localtime(a.get("since", 0)))
            rows.append([f"  {a['prefix']}", a.get("dev", ""), since, a.get("reason", "")])
        announced = {a["prefix"] for a in bgp.get("announced", [])}
        for w in bgp.get("wanted") or []:
            if w["prefix"] not in announced:
                rows.append([f"  {w['prefix']} (withdrawn)", "", "", w.get("reason", "")])
        out += _table(rows)
    return "\n".join(out)
