"""Tiny WSGI and ASGI apps that answer the same JSON, and transports for both."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from wsgiref.validate import validator

import httpx

from tokenware import asgi, wsgi
from tokenware.identity import Identity


def _document(identity: object, path: str, error: object) -> bytes:
    who = (
        {"subject": identity.subject, "kind": identity.kind, "scopes": sorted(identity.scopes)}
        if isinstance(identity, Identity)
        else None
    )
    return json.dumps(
        {"path": path, "identity": who, "error": None if error is None else type(error).__name__}
    ).encode()


def wsgi_echo(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    body = _document(
        environ.get("tokenware.identity"), environ["PATH_INFO"], environ.get("tokenware.error")
    )
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


async def asgi_echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    body = _document(scope.get("tokenware.identity"), scope["path"], scope.get("tokenware.error"))
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class FoldingWSGITransport(httpx.WSGITransport):
    """``httpx.WSGITransport`` with the header handling of real WSGI servers
    (gunicorn, werkzeug): repeated headers folded into one comma-separated
    value, values decoded as latin-1 (httpx keeps only the last of repeated
    headers and refuses non-ASCII bytes)."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        folded: dict[bytes, list[bytes]] = {}
        for name, value in request.headers.raw:
            folded.setdefault(name.lower(), []).append(value)
        extra = {
            "HTTP_" + name.decode("ascii").upper().replace("-", "_"): b", ".join(values).decode(
                "latin-1"
            )
            for name, values in folded.items()
            if name not in (b"content-type", b"content-length")
        }
        request.headers = httpx.Headers(
            [(k, v[0]) for k, v in folded.items() if k in (b"content-type", b"content-length")]
        )
        app = self.app

        def with_headers(environ: dict[str, Any], start_response: Any) -> Any:
            environ.update(extra)
            return app(environ, start_response)

        self.app = with_headers
        try:
            return super().handle_request(request)
        finally:
            self.app = app


def wsgi_client(**options: Any) -> httpx.Client:
    app = validator(wsgi.TokenwareMiddleware(validator(wsgi_echo), **options))
    return httpx.Client(transport=FoldingWSGITransport(app=app), base_url="http://testserver")


def asgi_client(**options: Any) -> httpx.AsyncClient:
    app = asgi.TokenwareMiddleware(asgi_echo, **options)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
