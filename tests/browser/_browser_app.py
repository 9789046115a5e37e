"""The app the browser tests serve: uvicorn (``asgi_app``) and gunicorn (``wsgi_app``).

Plain ASGI and WSGI apps behind the two middlewares, configured by
``TW_BROWSER_ORIGIN`` (the origin the browser will use) and
``TW_BROWSER_LIFE`` (seconds an access token is good for):

* ``/`` and ``/module.html``: HTML pages loading ``/tokenware.js`` as a
  classic script and as an ES module;
* ``/tokenware/handshake``: delivers an access token for ``alice`` whose
  ``xexp`` claim (and the delivered ``exp``) is ``TW_BROWSER_LIFE`` seconds
  away;
* ``/api/data``: protected; answers 401 once the token's ``xexp`` passed (a
  short token lifetime without waiting 15 minutes for ``exp``).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from typing import Any

from tokenware import Tokenware, asgi, wsgi
from tokenware.endpoints import EndpointRequest
from tokenware.identity import Identity
from tokenware.testing import make_secret_key

ORIGIN = os.environ["TW_BROWSER_ORIGIN"]
LIFE = float(os.environ.get("TW_BROWSER_LIFE", "2"))

tw = Tokenware(store="memory://", secret_key=make_secret_key())

PAGE = b"""<!doctype html><html><head><meta charset="utf-8"><title>tokenware test</title>
<script src="/tokenware.js"></script></head><body><p id="status">ready</p></body></html>"""
MODULE_PAGE = b"""<!doctype html><html><head><meta charset="utf-8"><title>module</title>
<script type="module">import "/tokenware.js";
window.viaModule = typeof globalThis.Tokenware;</script>
</head><body></body></html>"""


def payload(request: EndpointRequest) -> dict[str, Any]:
    exp = time.time() + LIFE
    pair = tw.jwt.issue("alice", claims={"xexp": exp})
    return {
        "access_token": pair.access_token,
        "token_type": "Bearer",
        "expires_in": int(LIFE),
        "exp": exp,
    }


def answer(path: str, identity: object) -> tuple[int, str, bytes]:
    if path == "/":
        return 200, "text/html; charset=utf-8", PAGE
    if path == "/module.html":
        return 200, "text/html; charset=utf-8", MODULE_PAGE
    if path == "/api/data" and isinstance(identity, Identity):
        if float(identity.claims.get("xexp", 0)) < time.time():
            return 401, "application/json", b'{"error":"expired"}'
        return 200, "application/json", json.dumps({"subject": identity.subject}).encode()
    return 404, "text/plain", b"not found"


def _wsgi(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    status, kind, body = answer(environ["PATH_INFO"], environ.get("tokenware.identity"))
    start_response(f"{status} X", [("Content-Type", kind), ("Content-Length", str(len(body)))])
    return [body]


async def _asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        for _ in range(2):
            message = await receive()
            kind = message["type"]
            await send({"type": kind + ".complete"})
            if kind == "lifespan.shutdown":
                return
        return
    status, kind, body = answer(scope["path"], scope.get("tokenware.identity"))
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", kind.encode()), (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


options: dict[str, Any] = {
    "tokenware": tw,
    "protect": ["/api/"],
    "origins": [ORIGIN],
    "handshake_payload": payload,
    "csrf_cookie_secure": False,  # plain http on loopback
}
asgi_app = asgi.TokenwareMiddleware(_asgi, **options)
wsgi_app = wsgi.TokenwareMiddleware(_wsgi, **options)
