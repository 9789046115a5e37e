"""Apps and transports for the handshake's HTTP tests (importable, unlike a conftest).

The WSGI side reuses ``FoldingWSGITransport`` of ``tests/http/_apps.py`` (the
header handling of real WSGI servers) and wraps app and middleware in
``wsgiref.validate``; the ASGI side uses ``httpx.ASGITransport``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from wsgiref.validate import validator

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "http"))

from _apps import FoldingWSGITransport

from tokenware import asgi, wsgi

PAGE = b"<!doctype html><title>app</title>"


def _answer(path: str, query: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """What the app answers at ``path``: HTML at ``/`` and ``/page*``, JSON elsewhere."""
    headers: list[tuple[str, str]] = []
    status = "200 OK"
    if path.startswith("/missing"):
        status, body, kind = "404 Not Found", PAGE, "text/html; charset=utf-8"
    elif path == "/" or path.startswith("/page") or path.startswith("/health"):
        body, kind = PAGE, "text/html; charset=utf-8"
    else:
        body, kind = json.dumps({"app": path}).encode(), "application/json"
    if "public" in query:
        headers.append(("Cache-Control", "public, max-age=60"))
    if "own-cookie" in query:
        headers.append(("Set-Cookie", "tokenware_csrf=app-made; Path=/"))
    headers = [("Content-Type", kind), ("Content-Length", str(len(body))), *headers]
    return status, headers, body


def wsgi_page(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    status, headers, body = _answer(environ["PATH_INFO"], environ.get("QUERY_STRING", ""))
    start_response(status, headers)
    return [body]


async def asgi_page(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    status, headers, body = _answer(scope["path"], scope["query_string"].decode())
    await send(
        {
            "type": "http.response.start",
            "status": int(status[:3]),
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


def wsgi_client(**options: Any) -> httpx.Client:
    app = validator(wsgi.TokenwareMiddleware(validator(wsgi_page), **options))
    return httpx.Client(transport=FoldingWSGITransport(app=app), base_url="http://testserver")


def asgi_client(**options: Any) -> httpx.AsyncClient:
    app = asgi.TokenwareMiddleware(asgi_page, **options)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


def wsgi_raw(app: Any) -> httpx.Client:
    return httpx.Client(
        transport=FoldingWSGITransport(app=validator(app)), base_url="http://testserver"
    )


def asgi_raw(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
