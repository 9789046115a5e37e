"""``TokenwareMiddleware`` for ASGI: Starlette, FastAPI, any ASGI app.

::

    from tokenware.asgi import TokenwareMiddleware

    app.add_middleware(TokenwareMiddleware, tokenware=tw, protect=["/api/"])

A pure ASGI class (never ``BaseHTTPMiddleware``): it works with
``app.add_middleware``, ``Middleware(TokenwareMiddleware, ...)``, ``Mount(...,
middleware=[...])`` and bare wrapping. It takes the same options as
:class:`tokenware.wsgi.TokenwareMiddleware` and runs the same policy
(:mod:`tokenware.core.http`) through the async driver, so both answer alike.

What it stores in the scope:

* ``scope["tokenware"]`` (and ``scope["tokenware.instance"]``, the WSGI
  name): the :class:`~tokenware.Tokenware` instance;
* ``scope["tokenware.identity"]``: the :class:`~tokenware.identity.Identity`
  or :data:`~tokenware.identity.ANONYMOUS`;
* ``scope["tokenware.error"]``: on public routes, why credentials that were
  sent did not authenticate (else ``None``);
* ``scope["user"]`` and ``scope["auth"]``, so Starlette's ``request.user``,
  ``request.auth`` and ``@requires`` keep working: the identity (which has
  ``is_authenticated``, ``display_name`` and ``identity``) and Starlette's
  ``AuthCredentials(scopes)`` when Starlette is installed (an object with a
  ``scopes`` list otherwise). For an anonymous request an existing
  ``scope["user"]``/``scope["auth"]`` (set by another middleware) is kept.

``lifespan`` (and any other scope type) passes through untouched.
WebSockets are authenticated from their handshake headers exactly like HTTP
requests (as Starlette's ``AuthenticationMiddleware`` does; a token in the
query string is ignored). A websocket refused on a protected path never
reaches the app: it gets the same problem+json answer as HTTP when the
server supports the ``websocket.http.response`` extension, else it is closed
before ``accept`` with code 1008 (policy violation), which servers turn
into HTTP 403. Throttle headers are not added to websocket handshakes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from typing import Any

from tokenware._drive import run_async
from tokenware._middleware import Middleware
from tokenware.core.http import Headers, RequestView, Response, fast_outcome, pipeline
from tokenware.endpoints import Endpoints, asgi_path, asgi_request, send_asgi_response
from tokenware.identity import Identity

__all__ = ["TokenwareMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _Credentials:
    """``AuthCredentials`` look-alike used when Starlette is not installed."""

    __slots__ = ("scopes",)

    def __init__(self, scopes: Iterable[str] = ()) -> None:
        self.scopes = list(scopes)


def _credentials_class() -> Callable[[Sequence[str]], Any]:
    try:
        from starlette.authentication import AuthCredentials
    except ImportError:  # pragma: no cover - starlette is optional
        return _Credentials
    return AuthCredentials


class TokenwareMiddleware(Middleware[ASGIApp]):
    """Authenticates every request before ``app`` sees it (a pure ASGI class).

    Options: see :class:`tokenware._middleware.Middleware`, shared with the
    WSGI middleware; ``handshake_payload`` may also be a coroutine function
    (``request.raw`` is the ASGI scope).

    Raises:
        ConfigurationError: an invalid option.
    """

    def _prepare(self) -> None:
        self._auth_credentials = _credentials_class()
        self._scope_lists: dict[frozenset[str], tuple[str, ...]] = {}

    def _credential_scopes(self, scopes: frozenset[str]) -> tuple[str, ...]:
        """``("authenticated", *sorted(scopes))``, remembered in
        ``_scope_lists`` (few distinct sets, and sorting on every request
        showed up; ``__call__`` reads the memo itself)."""
        listed = ("authenticated", *sorted(scopes))
        if len(self._scope_lists) >= 256:
            self._scope_lists.clear()
        self._scope_lists[scopes] = listed
        return listed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        websocket = kind == "websocket"
        method = "GET" if websocket else str(scope.get("method") or "GET").upper()
        path = asgi_path(scope)
        endpoints = self.endpoints
        if not websocket and endpoints.claims(path):
            served = await endpoints.serve_async(asgi_request(scope, method, path))
            if served is not None:
                await send_asgi_response(send, served)
                return
        # One pass over the headers; the lists are made only when a header
        # repeats (rare), as this runs for every request.
        authorization: tuple[str, ...] = ()
        forwarded: tuple[str, ...] = ()
        cookies: tuple[str, ...] = ()
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                authorization = (*authorization, value.decode("latin-1"))
            elif name == b"x-forwarded-for":
                forwarded = (*forwarded, value.decode("latin-1"))
            elif name == b"cookie":
                cookies = (*cookies, value.decode("latin-1"))
        query = scope.get("query_string")
        query_string = query.decode("latin-1") if query else ""
        tw = self.tokenware
        scope["tokenware"] = tw
        scope["tokenware.instance"] = tw
        scope["tokenware.trusted_proxies"] = self.policy.trusted_proxies
        outcome = fast_outcome(
            method, path, authorization, query_string, self.policy, tw._authenticate_local
        )
        if outcome is None:
            client = scope.get("client")
            view = RequestView(
                method,
                path,
                authorization,
                query_string,
                str(client[0]) if client else None,
                forwarded,
                websocket,
            )
            outcome = await run_async(
                pipeline(view, self.policy, tw._authenticate_flow), tw.stores.aio
            )
        identity = outcome.identity
        scope["tokenware.identity"] = identity
        scope["tokenware.error"] = outcome.error
        if isinstance(identity, Identity):
            scope["user"] = identity
            # "authenticated" as Starlette's own AuthenticationMiddleware
            # convention, so @requires("authenticated") works behind us.
            listed = self._scope_lists.get(identity.scopes)
            if listed is None:
                listed = self._credential_scopes(identity.scopes)
            scope["auth"] = self._auth_credentials(listed)
        else:
            scope.setdefault("user", identity)
            scope.setdefault("auth", self._auth_credentials([]))
        response = outcome.response
        if response is not None:
            if websocket:
                await _deny_websocket(scope, receive, send, response)
            else:
                await send_asgi_response(send, response)
            return
        if websocket:
            await self.app(scope, receive, send)
            return
        if (
            endpoints.sets_csrf
            and method in ("GET", "HEAD")
            and (outcome.route is None or outcome.route.kind != "exempt")
        ):
            send = _with_csrf(send, endpoints, method, "; ".join(cookies) if cookies else None)
        if outcome.headers:
            send = _adding(send, outcome.headers)
        await self.app(scope, receive, send)


def _with_csrf(send: Send, endpoints: Endpoints, method: str, cookie: str | None) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            extra = endpoints.csrf_cookie_for(
                method,
                cookie,
                int(message.get("status", 0)),
                [(bytes(n).decode("latin-1"), bytes(v).decode("latin-1")) for n, v in headers],
            )
            if extra is not None:
                headers.append((b"set-cookie", extra[1].encode("latin-1")))
                message["headers"] = headers
        await send(message)

    return wrapped


def _adding(send: Send, extra: Headers) -> Send:
    encoded = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in extra]

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            present = {bytes(name).lower() for name, _ in headers}
            headers.extend(pair for pair in encoded if pair[0] not in present)
            message["headers"] = headers
        await send(message)

    return wrapped


async def _deny_websocket(scope: Scope, receive: Receive, send: Send, response: Response) -> None:
    message = await receive()  # websocket.connect
    if message.get("type") != "websocket.connect":
        return
    if "websocket.http.response" in scope.get("extensions", {}):
        await send(
            {
                "type": "websocket.http.response.start",
                "status": response.status,
                "headers": [
                    (name.lower().encode("latin-1"), value.encode("latin-1"))
                    for name, value in response.headers
                ],
            }
        )
        await send({"type": "websocket.http.response.body", "body": response.body})
        return
    await send({"type": "websocket.close", "code": 1008})
