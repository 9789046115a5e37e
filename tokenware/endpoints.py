"""The endpoints tokenware serves beside an app, and as small apps of their own.

Today there is one: the JWK Set at ``/.well-known/jwks.json``, served when the
access tokens are signed with an asymmetric key (ES256, EdDSA), so that
other services can verify them. With HS256 there is nothing public to
publish and the path falls through to the app.

Both middlewares serve these paths before any path rule applies (they are
public by nature). For an app that prefers to mount them itself::

    # Starlette
    app = Starlette(routes=[Mount("/auth", app=tokenware.endpoints.asgi_app(tw))])

    # any WSGI dispatcher (werkzeug's DispatcherMiddleware, ...)
    DispatcherMiddleware(flask_app, {"/auth": tokenware.endpoints.wsgi_app(tw)})

Reserved paths: ``script_path`` (``/tokenware.js``, the browser client) and
``handshake_path`` (``/tokenware/handshake``) are accepted and validated
here so configuration written today keeps working, but *nothing is served
at them yet*: the client script and the handshake come with the handshake
issue. Until then requests to them reach the app unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from tokenware.core.http import Response, error_response
from tokenware.errors import ConfigurationError, NotFound

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from tokenware.facade import AsyncTokenware, Tokenware

__all__ = [
    "DEFAULT_HANDSHAKE_PATH",
    "DEFAULT_JWKS_PATH",
    "DEFAULT_SCRIPT_PATH",
    "Endpoints",
    "asgi_app",
    "asgi_path",
    "send_asgi_response",
    "wsgi_app",
    "wsgi_path",
    "wsgi_status",
]

DEFAULT_JWKS_PATH = "/.well-known/jwks.json"
#: Reserved for the browser client (handshake issue); not served yet.
DEFAULT_SCRIPT_PATH = "/tokenware.js"
#: Reserved for the handshake (handshake issue); not served yet.
DEFAULT_HANDSHAKE_PATH = "/tokenware/handshake"

_ALLOWED = (("Allow", "GET, HEAD"),)


def _path(value: str | None, name: str) -> str | None:
    if value is not None and (not isinstance(value, str) or not value.startswith("/")):
        raise ConfigurationError(f"{name} must be a path starting with '/', or None to switch off")
    return value


@dataclass(frozen=True, slots=True)
class Endpoints:
    """The endpoint paths of one middleware or app; ``None`` switches one off.

    Args:
        jwks: the JWK Set document, ``None`` when the keys are symmetric.
        jwks_path: where to serve it.
        script_path, handshake_path: reserved (see the module docs).
    """

    jwks: bytes | None
    jwks_path: str | None = DEFAULT_JWKS_PATH
    script_path: str | None = DEFAULT_SCRIPT_PATH
    handshake_path: str | None = DEFAULT_HANDSHAKE_PATH

    @classmethod
    def build(
        cls,
        tokenware: Tokenware,
        *,
        jwks_path: str | None = DEFAULT_JWKS_PATH,
        script_path: str | None = DEFAULT_SCRIPT_PATH,
        handshake_path: str | None = DEFAULT_HANDSHAKE_PATH,
    ) -> Endpoints:
        """Validate the paths and render the JWK Set once (keys are fixed per instance)."""
        document = tokenware.jwt.jwks()
        keys = document.get("keys") or []
        jwks = json.dumps(document, separators=(",", ":")).encode() if keys else None
        return cls(
            jwks,
            _path(jwks_path, "jwks_path"),
            _path(script_path, "script_path"),
            _path(handshake_path, "handshake_path"),
        )

    def respond(self, method: str, path: str) -> Response | None:
        """The response for ``path`` if it is an endpoint served here, else ``None``."""
        if self.jwks is None or path != self.jwks_path:
            return None
        if method not in ("GET", "HEAD"):
            body = json.dumps(
                {"type": "about:blank", "title": "Method Not Allowed", "status": 405}
            ).encode()
            return Response(
                405,
                (
                    ("Content-Type", "application/problem+json"),
                    ("Content-Length", str(len(body))),
                    *_ALLOWED,
                ),
                body,
            )
        return Response(
            200,
            (
                ("Content-Type", "application/jwk-set+json"),
                ("Content-Length", str(len(self.jwks))),
                ("Cache-Control", "public, max-age=300"),
            ),
            b"" if method == "HEAD" else self.jwks,
        )


def wsgi_status(status: int) -> str:
    """``"401 Unauthorized"``: a WSGI status line."""
    return f"{status} {HTTPStatus(status).phrase}"


def wsgi_path(environ: WSGIEnvironment) -> str:
    """``PATH_INFO`` as text (WSGI gives the raw bytes as latin-1)."""
    raw: str = environ.get("PATH_INFO", "") or "/"
    return raw.encode("latin-1").decode("utf-8", "replace")


def asgi_path(scope: MutableMapping[str, Any]) -> str:
    """The app-relative path of an ASGI scope (``path`` minus ``root_path``)."""
    path: str = scope.get("path", "") or "/"
    root: str = scope.get("root_path", "") or ""
    if root and path.startswith(root):
        path = path[len(root) :] or "/"
    return path


async def send_asgi_response(
    send: Callable[[MutableMapping[str, Any]], Awaitable[None]], response: Response
) -> None:
    """Send ``response`` on an ASGI ``http`` connection."""
    await send(
        {
            "type": "http.response.start",
            "status": response.status,
            "headers": [
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in response.headers
            ],
        }
    )
    await send({"type": "http.response.body", "body": response.body})


def _not_found() -> Response:
    return error_response(NotFound("no tokenware endpoint at this path"))


def _facade(tokenware: Tokenware | AsyncTokenware) -> Tokenware:
    from tokenware.facade import AsyncTokenware, Tokenware

    if isinstance(tokenware, AsyncTokenware):
        return tokenware._tw
    if not isinstance(tokenware, Tokenware):
        raise ConfigurationError("tokenware= must be a Tokenware instance")
    return tokenware


def wsgi_app(
    tokenware: Tokenware | AsyncTokenware, *, jwks_path: str | None = DEFAULT_JWKS_PATH
) -> Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]:
    """The endpoints as a WSGI app (404 problem+json elsewhere)."""
    endpoints = Endpoints.build(_facade(tokenware), jwks_path=jwks_path)

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        response = endpoints.respond(method, wsgi_path(environ)) or _not_found()
        start_response(wsgi_status(response.status), list(response.headers))
        return [response.body]

    return app


def asgi_app(
    tokenware: Tokenware | AsyncTokenware, *, jwks_path: str | None = DEFAULT_JWKS_PATH
) -> Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[MutableMapping[str, Any]]],
        Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ],
    Awaitable[None],
]:
    """The endpoints as an ASGI app (404 problem+json elsewhere; lifespan is acknowledged)."""
    endpoints = Endpoints.build(_facade(tokenware), jwks_path=jwks_path)

    async def app(
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        method = str(scope.get("method", "GET")).upper()
        response = endpoints.respond(method, asgi_path(scope)) or _not_found()
        await send_asgi_response(send, response)

    return app
