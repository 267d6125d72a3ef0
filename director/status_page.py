"""The status page at `/` of the --metrics listener: plain HTML/CSS/JS from director/web,
drawing /status every 2 s; and, on a loopback or Unix-socket listener only, the POST
endpoint its drain/enable/weight/clear buttons use, relayed to the checker child's
control socket.

Cross-site protection of that endpoint (a page elsewhere must not drive a browser on the
director's host into draining a server): POST only, a JSON body (a cross-site form cannot
send one without a CORS preflight, which this server never answers), a per-process random
token that only the page served here carries, and Origin / Sec-Fetch-Site checked when the
browser sends them. A non-loopback listener has no buttons and no endpoint at all.
"""

from __future__ import annotations

import hmac
import logging
import pathlib
import secrets
from typing import Any

from aiohttp import web

from daemonlib.control import BadRequest, Request, call

log = logging.getLogger("director")
WEB = pathlib.Path(__file__).with_name("web")
PAGE_COMMANDS = ("drain", "enable", "weight", "clear")
STATIC = {"status.css": "text/css", "status.js": "text/javascript"}


def cross_site(headers: Any, host: str, token: str) -> str | None:
    """Why a POST to the control endpoint is refused, or None. Pure."""
    h = headers  # a CIMultiDict or a dict: both have .get
    got = h.get("X-Director-Token", "")
    if not got or not hmac.compare_digest(got, token):
        return "missing or wrong page token"
    site = h.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return f"cross-site request (Sec-Fetch-Site: {site})"
    origin = h.get("Origin")
    if origin is not None and origin not in (f"http://{host}", f"https://{host}"):
        return f"cross-site request (Origin: {origin})"
    if (h.get("Content-Type") or "").split(";")[0].strip() != "application/json":
        return "want Content-Type: application/json"
    return None


def add_page(app: web.Application, directory: str, controls: bool) -> None:
    token = secrets.token_urlsafe(24)
    html = (WEB / "status.html").read_text()
    page = html.replace("{{CONTROLS}}", "1" if controls else "0").replace(
        "{{TOKEN}}", token if controls else "")
    headers = {"Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
               "X-Frame-Options": "DENY", "Cache-Control": "no-store",
               "Referrer-Policy": "no-referrer"}

    async def index(_req: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html", headers=headers)

    async def static(req: web.Request) -> web.Response:
        name = req.match_info["name"]
        if name not in STATIC:
            raise web.HTTPNotFound()
        return web.Response(body=(WEB / name).read_bytes(), content_type=STATIC[name],
                            headers=headers)

    async def ctl(req: web.Request) -> web.Response:
        why = cross_site(req.headers, req.host, token)
        if why:
            log.warning("status page: refused a control request from %s: %s",
                        req.remote or "unix socket", why)
            return web.json_response({"ok": False, "message": f"refused: {why}"}, status=403)
        try:
            body = await req.json()
            if not isinstance(body, dict) or body.get("cmd") not in PAGE_COMMANDS:
                raise BadRequest(f"the page may ask for {', '.join(PAGE_COMMANDS)} only")
            unknown = set(body) - {"cmd", "vs", "rs", "weight"}
            if unknown:
                raise BadRequest(f"unknown field {sorted(unknown)[0]!r}")
            peer = req.remote or "unix socket"
            r = Request(**body, via=f"status page, client {peer}")
        except (ValueError, BadRequest, TypeError) as e:
            return web.json_response({"ok": False, "message": f"bad request: {e}"}, status=400)
        reply = await call(directory, "lvs", r)
        return web.json_response({"ok": reply.ok, "message": reply.message},
                                 status=200 if reply.ok else 409)

    app.router.add_get("/", index)
    app.router.add_get("/static/{name}", static)
    if controls:
        app.router.add_post("/api/ctl", ctl)
