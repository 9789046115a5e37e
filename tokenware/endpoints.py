"""The endpoints tokenware serves beside an app, and as small apps of their own.

* the JWK Set at ``/.well-known/jwks.json`` (``jwks_path``), served when the
  access tokens are signed with an asymmetric key (ES256, EdDSA), so that
  other services can verify them; with HS256 there is nothing public to
  publish and the path falls through to the app;
* the browser client at ``/tokenware.js`` (``script_path``): the package's
  ``tokenware/static/tokenware.js``, ``GET``/``HEAD`` only, with a strong
  ``ETag``, ``Cache-Control: public, max-age=300``, ``304`` on
  ``If-None-Match`` and gzip when ``Accept-Encoding`` allows it. Exactly
  that path is served: ``/tokenware.js/x``, ``/tokenware.js/../x`` or
  ``/tokenware.js%2f..`` are not ours and reach the app (the file is the
  only thing ever read, never a name taken from the URL);
* the TWHS1 handshake at ``/tokenware/handshake`` (``handshake_path``),
  served when a ``handshake_payload`` callable is configured (with the
  ``origins`` allowed to run it). ``POST`` only (405 with ``Allow: POST``
  otherwise, except a CORS preflight from an allowed cross-origin caller);
  errors are JSON ``{"error": code}`` as DESIGN.md §3 says: 400
  ``invalid_handshake``, 403 ``csrf_failed`` / ``origin_rejected``, 409
  ``handshake_replayed``, 429 ``rate_limited`` and 503
  ``store_unavailable`` (both with ``Retry-After``). Every answer carries
  ``Cache-Control: no-store`` and ``Vary: Cookie``.

Both middlewares serve these paths before any path rule applies (they are
public by nature). For an app that prefers to mount them itself::

    # Starlette
    app = Starlette(routes=[Mount("/auth", app=tokenware.endpoints.asgi_app(tw))])

    # any WSGI dispatcher (werkzeug's DispatcherMiddleware, ...)
    DispatcherMiddleware(flask_app, {"/auth": tokenware.endpoints.wsgi_app(tw)})

The CSRF cookie (``tokenware_csrf``): with the handshake on, the middleware
adds ``Set-Cookie: tokenware_csrf=…; Path=/; SameSite=Strict; Secure`` to a
response when all of these hold, and to no other response:

* the request is ``GET`` or ``HEAD`` on a route that is not exempt;
* the request has no ``tokenware_csrf`` cookie, or one that no longer
  verifies (bad signature, expired, from an old key);
* the app answered 2xx with a ``Content-Type`` of ``text/html``: the page
  whose script will run the handshake (JSON APIs, scripts, redirects and
  errors never get one);
* the app did not set the cookie itself, and did not mark the response
  for shared caches (``Cache-Control`` with ``public`` or ``s-maxage``: a
  shared cache would hand the same token to every visitor).

An app whose pages tokenware does not see (a single-page app on a CDN)
sets it itself from ``tw.handshake.csrf_cookie().header_value()``.
"""

from __future__ import annotations

import gzip
import hashlib
import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from functools import lru_cache
from http import HTTPStatus
from importlib import resources
from typing import TYPE_CHECKING, Any

from tokenware._drive import run_async, run_sync
from tokenware.core.handshake import (
    CSRF_COOKIE,
    CSRF_HEADER,
    HEADER_NAME,
    Accepted,
    normalise_origin,
)
from tokenware.core.http import (
    RequestView,
    Response,
    client_address,
    error_response,
    json_response,
)
from tokenware.errors import (
    ClientError,
    ConfigurationError,
    CsrfFailed,
    NotFound,
    StoreError,
    StoreUnavailable,
    Throttled,
    TokenwareError,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from tokenware.facade import AsyncTokenware, Tokenware
    from tokenware.handshake import Handshake

__all__ = [
    "DEFAULT_HANDSHAKE_PATH",
    "DEFAULT_JWKS_PATH",
    "DEFAULT_SCRIPT_PATH",
    "EndpointRequest",
    "Endpoints",
    "HandshakePayload",
    "asgi_app",
    "asgi_path",
    "send_asgi_response",
    "wsgi_app",
    "wsgi_path",
    "wsgi_status",
]

log = logging.getLogger("tokenware.http")

DEFAULT_JWKS_PATH = "/.well-known/jwks.json"
#: Where the browser client is served.
DEFAULT_SCRIPT_PATH = "/tokenware.js"
#: Where the handshake is served (when a payload callable is configured).
DEFAULT_HANDSHAKE_PATH = "/tokenware/handshake"

_ALLOWED = (("Allow", "GET, HEAD"),)
_SCRIPT_CACHE = "public, max-age=300"
_NO_STORE = (("Cache-Control", "no-store"), ("Vary", "Cookie"))


@dataclass(frozen=True, slots=True)
class EndpointRequest:
    """A request to one of the endpoints, as the adapters give it; what a
    ``handshake_payload`` callable receives.

    Attributes:
        method: upper-case HTTP method.
        path: the app-relative, percent-decoded path.
        headers: lower-case header names; repeated headers joined with
            ``", "`` (``"; "`` for ``cookie``).
        client: the socket peer's address, if known.
        raw: the WSGI environ or the ASGI scope, for the app's own session
            look-up.
    """

    method: str
    path: str
    headers: Mapping[str, str]
    client: str | None = None
    raw: Any = field(default=None, repr=False, compare=False)

    @property
    def cookies(self) -> dict[str, str]:
        """The request's cookies (first value of each name)."""
        return parse_cookies(self.headers.get("cookie"))


#: ``handshake_payload``: ``request -> str | dict | TokenPair`` (or an
#: awaitable of one, ASGI only). Called only once every check passed; raise
#: a :class:`~tokenware.errors.ClientError` (e.g. ``AuthenticationError``: 401) to refuse.
HandshakePayload = Callable[[EndpointRequest], Any]


def parse_cookies(header: str | None) -> dict[str, str]:
    """``name=value; …`` as a dict (first value of each name wins; no unquoting)."""
    cookies: dict[str, str] = {}
    if not header:
        return cookies
    for part in header.split(";"):
        name, sep, value = part.partition("=")
        name = name.strip()
        if sep and name and name not in cookies:
            cookies[name] = value.strip()
    return cookies


def cookie_value(header: str | None, name: str = CSRF_COOKIE) -> str | None:
    """The value of cookie ``name`` in a ``Cookie`` header, or ``None`` (cheap)."""
    if not header or name not in header:
        return None
    return parse_cookies(header).get(name)


def _path(value: str | None, name: str) -> str | None:
    if value is not None and (not isinstance(value, str) or not value.startswith("/")):
        raise ConfigurationError(f"{name} must be a path starting with '/', or None to switch off")
    return value


# -- the browser client ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Script:
    body: bytes
    etag: str
    gzipped: bytes
    gzip_etag: str


@lru_cache(maxsize=1)
def _script() -> _Script:
    body = resources.files("tokenware").joinpath("static").joinpath("tokenware.js").read_bytes()
    digest = hashlib.sha256(body).hexdigest()[:32]
    packed = gzip.compress(body, compresslevel=9, mtime=0)
    return _Script(body, f'"tw-{digest}"', packed, f'"tw-{digest}-gz"')


def _accepts_gzip(value: str | None) -> bool:
    if not value:
        return False
    for item in value.split(","):
        coding, _, params = item.partition(";")
        if coding.strip().lower() not in ("gzip", "*"):
            continue
        q = params.strip().lower()
        if q.startswith("q="):
            try:
                return float(q[2:]) > 0
            except ValueError:
                return False
        return True
    return False


def _none_match(value: str | None, etag: str) -> bool:
    if not value:
        return False
    for item in value.split(","):
        tag = item.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


def _method_not_allowed(allow: tuple[tuple[str, str], ...]) -> Response:
    body = json.dumps(
        {"type": "about:blank", "title": "Method Not Allowed", "status": 405}
    ).encode()
    return Response(
        405,
        (
            ("Content-Type", "application/problem+json"),
            ("Content-Length", str(len(body))),
            *allow,
        ),
        body,
    )


def _serve_script(request: EndpointRequest) -> Response:
    if request.method not in ("GET", "HEAD"):
        return _method_not_allowed(_ALLOWED)
    script = _script()
    packed = _accepts_gzip(request.headers.get("accept-encoding"))
    body, etag = (script.gzipped, script.gzip_etag) if packed else (script.body, script.etag)
    common: tuple[tuple[str, str], ...] = (
        ("ETag", etag),
        ("Cache-Control", _SCRIPT_CACHE),
        ("Vary", "Accept-Encoding"),
    )
    if _none_match(request.headers.get("if-none-match"), etag):
        return Response(304, common)
    headers = [
        ("Content-Type", "text/javascript; charset=utf-8"),
        ("Content-Length", str(len(body))),
        *common,
        ("X-Content-Type-Options", "nosniff"),
    ]
    if packed:
        headers.append(("Content-Encoding", "gzip"))
    return Response(200, tuple(headers), b"" if request.method == "HEAD" else body)


# -- the handshake ---------------------------------------------------------------------


def _handshake_error(exc: TokenwareError, cors: tuple[tuple[str, str], ...]) -> Response:
    if isinstance(exc, ClientError):
        status, code = exc.status_code, exc.code
    else:
        status = 503
        code = exc.code if isinstance(exc, StoreUnavailable) else "store_unavailable"
    extra: list[tuple[str, str]] = []
    if isinstance(exc, (Throttled, StoreUnavailable)):
        extra.append(("Retry-After", str(exc.retry_after)))
    elif isinstance(exc, StoreError):
        extra.append(("Retry-After", "1"))
    return json_response(status, {"error": code}, extra=(*extra, *_NO_STORE, *cors))


def _head(request: EndpointRequest, response: Response | None) -> Response | None:
    """``response`` without its body for a ``HEAD`` request (headers unchanged)."""
    if response is None or request.method != "HEAD" or not response.body:
        return response
    return Response(response.status, response.headers)


# -- the endpoints ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endpoints:
    """The endpoints of one middleware or app; a ``None`` path switches one off.

    Build with :meth:`build`. The adapters ask :meth:`claims` for every
    request, serve a claimed path with :meth:`serve_sync` or
    :meth:`serve_async`, and ask :meth:`csrf_cookie_for` whether an app
    response should set the CSRF cookie.
    """

    tokenware: Tokenware = field(repr=False)
    jwks: bytes | None
    jwks_path: str | None = DEFAULT_JWKS_PATH
    script_path: str | None = DEFAULT_SCRIPT_PATH
    handshake_path: str | None = DEFAULT_HANDSHAKE_PATH
    handshake: Handshake | None = field(default=None, repr=False)
    payload: HandshakePayload | None = field(default=None, repr=False)
    csrf_cookie_secure: bool = True
    trusted_proxies: int = 0
    paths: frozenset[str] = frozenset()

    @classmethod
    def build(
        cls,
        tokenware: Tokenware,
        *,
        jwks_path: str | None = DEFAULT_JWKS_PATH,
        script_path: str | None = DEFAULT_SCRIPT_PATH,
        handshake_path: str | None = DEFAULT_HANDSHAKE_PATH,
        origins: Iterable[str] | None = None,
        handshake_payload: HandshakePayload | None = None,
        handshake_delivery: str | None = None,
        csrf_cookie_secure: bool = True,
        trusted_proxies: int = 0,
        async_payload: bool = True,
    ) -> Endpoints:
        """Validate the options and render the JWK Set once (keys are fixed per instance).

        Raises:
            ConfigurationError: a path that does not start with ``/``, a
                payload that is not callable, a handshake without
                ``origins``, or (``async_payload=False``, WSGI) a coroutine
                function as the payload.
        """
        document = tokenware.jwt.jwks()
        keys = document.get("keys") or []
        jwks = json.dumps(document, separators=(",", ":")).encode() if keys else None
        jwks_path = _path(jwks_path, "jwks_path")
        script_path = _path(script_path, "script_path")
        handshake_path = _path(handshake_path, "handshake_path")
        handshake: Handshake | None = None
        if handshake_delivery not in (None, "header", "body"):
            raise ConfigurationError("handshake_delivery must be 'header' or 'body'")
        if handshake_payload is not None and handshake_path is not None:
            if not callable(handshake_payload):
                raise ConfigurationError("handshake_payload must be a callable(request)")
            if not async_payload and inspect.iscoroutinefunction(handshake_payload):
                raise ConfigurationError(
                    "an async handshake_payload needs the ASGI middleware; "
                    "the WSGI one calls it synchronously"
                )
            if not isinstance(csrf_cookie_secure, bool):
                raise ConfigurationError("csrf_cookie_secure must be True or False")
            handshake = tokenware.handshake.configure(origins=origins, delivery=handshake_delivery)
            if not handshake.origins:
                raise ConfigurationError(
                    "the handshake needs origins=[...]: the origins allowed to run it, "
                    "e.g. ['https://app.example.com']"
                )
        paths = {p for p in (script_path,) if p is not None}
        if jwks is not None and jwks_path is not None:
            paths.add(jwks_path)
        if handshake is not None and handshake_path is not None:
            paths.add(handshake_path)
        return cls(
            tokenware,
            jwks,
            jwks_path,
            script_path,
            handshake_path,
            handshake,
            handshake_payload if handshake is not None else None,
            csrf_cookie_secure,
            trusted_proxies,
            frozenset(paths),
        )

    def claims(self, path: str) -> bool:
        """Whether ``path`` (app-relative, decoded) is one of ours: exact match only."""
        return path in self.paths

    def respond(self, request: EndpointRequest) -> Response | None:
        """The answer for a claimed path, or ``None`` for a handshake ``POST``
        (run by :meth:`serve_sync` / :meth:`serve_async`)."""
        path = request.path
        if path == self.script_path:
            return _serve_script(request)
        if path == self.handshake_path and self.handshake is not None:
            if request.method == "POST":
                return None
            cors = self._cors(request)
            if request.method == "OPTIONS" and cors:
                return Response(
                    204,
                    (
                        *cors,
                        ("Access-Control-Allow-Methods", "POST"),
                        (
                            "Access-Control-Allow-Headers",
                            f"{HEADER_NAME}, {CSRF_HEADER}, Content-Type",
                        ),
                        ("Access-Control-Max-Age", "600"),
                        *_NO_STORE,
                    ),
                )
            return json_response(
                405,
                {"error": "method_not_allowed"},
                extra=(("Allow", "POST"), *_NO_STORE, *cors),
            )
        if path == self.jwks_path and self.jwks is not None:
            if request.method not in ("GET", "HEAD"):
                return _method_not_allowed(_ALLOWED)
            return Response(
                200,
                (
                    ("Content-Type", "application/jwk-set+json"),
                    ("Content-Length", str(len(self.jwks))),
                    ("Cache-Control", "public, max-age=300"),
                ),
                b"" if request.method == "HEAD" else self.jwks,
            )
        return None

    # -- the handshake, run by either driver ---------------------------------------

    def _cors(self, request: EndpointRequest) -> tuple[tuple[str, str], ...]:
        """CORS headers for an allowed cross-origin caller; ``()`` otherwise.

        Same-origin requests (``Sec-Fetch-Site: same-origin``) need none; an
        origin outside the allow-list gets none; never ``*``.
        """
        origin = request.headers.get("origin")
        hs = self.handshake
        if not origin or hs is None:
            return ()
        if request.headers.get("sec-fetch-site", "").strip().lower() not in ("", "same-site"):
            return ()  # same-origin needs no CORS; cross-site is refused anyway
        canonical = origin if origin in hs.origins else normalise_origin(origin)
        if canonical is None or canonical not in hs.origins:
            return ()
        return (
            ("Access-Control-Allow-Origin", origin),
            ("Access-Control-Allow-Credentials", "true"),
            ("Access-Control-Expose-Headers", HEADER_NAME),
            ("Vary", "Origin"),
        )

    def _accept(self, request: EndpointRequest) -> Any:
        hs = self.handshake
        assert hs is not None
        headers = request.headers
        forwarded = headers.get("x-forwarded-for")
        view = RequestView(
            method=request.method,
            path=request.path,
            client=request.client,
            forwarded_for=() if forwarded is None else (forwarded,),
        )
        return hs._flow(
            headers.get("tokenware-handshake"),
            headers.get("x-csrf-token"),
            cookie_value(headers.get("cookie")),
            headers.get("origin"),
            headers.get("sec-fetch-site"),
            None,
            client_address(view, self.trusted_proxies),
        )

    def _reply(self, request: EndpointRequest, accepted: Accepted, value: Any) -> Response:
        hs = self.handshake
        assert hs is not None
        reply = hs._seal(accepted, value, None)
        body = reply.body
        cors = self._cors(request)
        headers = (*reply.headers, ("Content-Length", str(len(body))), *cors)
        log.info("handshake %s accepted", reply.handshake_id)
        return Response(200, headers, body)

    def _refused(self, request: EndpointRequest, exc: TokenwareError) -> Response:
        response = _handshake_error(exc, self._cors(request))
        level = logging.WARNING if response.status >= 500 else logging.INFO
        log.log(level, "POST %s refused %d %s", request.path, response.status, exc.code)
        return response

    def serve_sync(self, request: EndpointRequest) -> Response | None:
        """Serve a claimed path with the sync store (WSGI)."""
        response = self.respond(request)
        if response is not None or self.payload is None:
            return _head(request, response)
        tw = self.tokenware
        try:
            accepted = run_sync(self._accept(request), tw.stores.sync)
            value = self.payload(request)
            if inspect.isawaitable(value):
                if inspect.iscoroutine(value):
                    value.close()
                raise TypeError("an async handshake_payload needs the ASGI middleware")
            return self._reply(request, accepted, value)
        except (ClientError, StoreError) as exc:
            return self._refused(request, exc)

    async def serve_async(self, request: EndpointRequest) -> Response | None:
        """Serve a claimed path with the async store (ASGI); the payload may be async."""
        response = self.respond(request)
        if response is not None or self.payload is None:
            return _head(request, response)
        tw = self.tokenware
        try:
            accepted = await run_async(self._accept(request), tw.stores.aio)
            value = self.payload(request)
            if inspect.isawaitable(value):
                value = await value
            return self._reply(request, accepted, value)
        except (ClientError, StoreError) as exc:
            return self._refused(request, exc)

    # -- the CSRF cookie on app responses ------------------------------------------

    @property
    def sets_csrf(self) -> bool:
        """Whether app responses may get the CSRF cookie (the handshake is on)."""
        return self.handshake is not None

    def csrf_cookie_for(
        self,
        method: str,
        cookie_header: str | None,
        status: int,
        headers: Iterable[tuple[str, str]],
    ) -> tuple[str, str] | None:
        """The ``Set-Cookie`` header to add to an app response, or ``None``.

        The rules are in the module docs; the caller has already excluded
        exempt routes.
        """
        hs = self.handshake
        if hs is None or method not in ("GET", "HEAD") or not 200 <= status < 300:
            return None
        html = False
        prefix = CSRF_COOKIE + "="
        for name, value in headers:
            lower = name.lower()
            if lower == "content-type":
                html = value.lstrip().lower().startswith("text/html")
            elif lower == "set-cookie" and value.lstrip().startswith(prefix):
                return None
            elif lower == "cache-control":
                directives = value.lower()
                if "public" in directives or "s-maxage" in directives:
                    return None
        if not html:
            return None
        current = cookie_value(cookie_header)
        if current is not None:
            try:
                hs.verify_csrf(current)
                return None
            except CsrfFailed:
                pass
        return ("Set-Cookie", hs.csrf_cookie(secure=self.csrf_cookie_secure).header_value())


def wsgi_status(status: int) -> str:
    """``"401 Unauthorized"``: a WSGI status line."""
    return f"{status} {HTTPStatus(status).phrase}"


def wsgi_path(environ: WSGIEnvironment) -> str:
    """``PATH_INFO`` as text (WSGI gives the raw bytes as latin-1)."""
    raw: str = environ.get("PATH_INFO", "") or "/"
    return raw.encode("latin-1").decode("utf-8", "replace")


def wsgi_request(environ: WSGIEnvironment, method: str, path: str) -> EndpointRequest:
    """The :class:`EndpointRequest` of a WSGI environ."""
    headers: dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers[key[5:].lower().replace("_", "-")] = str(value)
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.lower().replace("_", "-")] = str(environ[key])
    return EndpointRequest(method, path, headers, environ.get("REMOTE_ADDR"), environ)


def asgi_path(scope: MutableMapping[str, Any]) -> str:
    """The app-relative path of an ASGI scope (``path`` minus ``root_path``)."""
    path: str = scope.get("path", "") or "/"
    root: str = scope.get("root_path", "") or ""
    if root and path.startswith(root):
        path = path[len(root) :] or "/"
    return path


def asgi_request(scope: MutableMapping[str, Any], method: str, path: str) -> EndpointRequest:
    """The :class:`EndpointRequest` of an ASGI scope."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name = bytes(raw_name).decode("latin-1").lower()
        value = bytes(raw_value).decode("latin-1")
        if name in headers:
            value = headers[name] + ("; " if name == "cookie" else ", ") + value
        headers[name] = value
    client = scope.get("client")
    return EndpointRequest(method, path, headers, None if not client else str(client[0]), scope)


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
    tokenware: Tokenware | AsyncTokenware,
    *,
    jwks_path: str | None = DEFAULT_JWKS_PATH,
    script_path: str | None = DEFAULT_SCRIPT_PATH,
    handshake_path: str | None = DEFAULT_HANDSHAKE_PATH,
    origins: Iterable[str] | None = None,
    handshake_payload: HandshakePayload | None = None,
    handshake_delivery: str | None = None,
    trusted_proxies: int = 0,
) -> Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]:
    """The endpoints as a WSGI app (404 problem+json elsewhere).

    The handshake is served when ``handshake_payload`` is given (with
    ``origins``); see :class:`tokenware.wsgi.TokenwareMiddleware`.
    """
    endpoints = Endpoints.build(
        _facade(tokenware),
        jwks_path=jwks_path,
        script_path=script_path,
        handshake_path=handshake_path,
        origins=origins,
        handshake_payload=handshake_payload,
        handshake_delivery=handshake_delivery,
        trusted_proxies=trusted_proxies,
        async_payload=False,
    )

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        path = wsgi_path(environ)
        response = None
        if endpoints.claims(path):
            response = endpoints.serve_sync(wsgi_request(environ, method, path))
        response = response or _not_found()
        start_response(wsgi_status(response.status), list(response.headers))
        return [response.body]

    return app


def asgi_app(
    tokenware: Tokenware | AsyncTokenware,
    *,
    jwks_path: str | None = DEFAULT_JWKS_PATH,
    script_path: str | None = DEFAULT_SCRIPT_PATH,
    handshake_path: str | None = DEFAULT_HANDSHAKE_PATH,
    origins: Iterable[str] | None = None,
    handshake_payload: HandshakePayload | None = None,
    handshake_delivery: str | None = None,
    trusted_proxies: int = 0,
) -> Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[MutableMapping[str, Any]]],
        Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ],
    Awaitable[None],
]:
    """The endpoints as an ASGI app (404 problem+json elsewhere; lifespan is acknowledged)."""
    endpoints = Endpoints.build(
        _facade(tokenware),
        jwks_path=jwks_path,
        script_path=script_path,
        handshake_path=handshake_path,
        origins=origins,
        handshake_payload=handshake_payload,
        handshake_delivery=handshake_delivery,
        trusted_proxies=trusted_proxies,
    )

    async def app(
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] == "lifespan":
            for _ in range(2):
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
            return
        if scope["type"] != "http":
            return
        method = str(scope.get("method", "GET")).upper()
        path = asgi_path(scope)
        response = None
        if endpoints.claims(path):
            response = await endpoints.serve_async(asgi_request(scope, method, path))
        await send_asgi_response(send, response or _not_found())

    return app
