"""``GET /``: the live dashboard, one page with its script and style sheet, no CDN.

The page itself holds no data and is open; it asks for an API key, keeps it in sessionStorage
and sends it as a bearer header to the JSON routes (``/#key=<key>`` hands it one directly).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from api.auth import public
from api.errors import not_found

routes = web.RouteTableDef()

STATIC = Path(__file__).parent / "static"
ASSETS = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
# Everything the page loads comes from here; nothing inline, nothing from elsewhere.
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_HEADERS = {"Content-Security-Policy": POLICY, "X-Content-Type-Options": "nosniff"}


@routes.get("/")
@public
async def page(_request: web.Request) -> web.Response:
    return _file("index.html", "text/html")


@routes.get("/static/{name}")
@public
async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in ASSETS:
        raise not_found(f"No file {name!r}; there are {', '.join(ASSETS)}.")
    return _file(name, ASSETS[name])


def _file(name: str, content_type: str) -> web.Response:
    body = (STATIC / name).read_bytes()  # small, and the OS caches it
    return web.Response(body=body, content_type=content_type, charset="utf-8", headers=_HEADERS)
