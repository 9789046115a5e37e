"""``TokenwareMiddleware`` for WSGI: Flask's ``app.wsgi_app``, Django, any WSGI app.

::

    from tokenware.wsgi import TokenwareMiddleware

    app.wsgi_app = TokenwareMiddleware(
        app.wsgi_app, tokenware=tw, protect=["/api/"], public=["/api/health"]
    )

The policy (path rules, the HTTP contract, the throttling seam) is
:mod:`tokenware.core.http`, shared with :mod:`tokenware.asgi`; this module
only reads the environ and writes the response. The request's identity is in
``environ["tokenware.identity"]`` (:class:`~tokenware.identity.Identity` or
:data:`~tokenware.identity.ANONYMOUS`), the instance in
``environ["tokenware.instance"]`` (PEP 3333 wants a dot in every key whose
value is not a string; ``wsgiref.validate`` enforces it), and on public
routes the reason credentials that were sent did not authenticate in
``environ["tokenware.error"]``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from tokenware._drive import run_sync
from tokenware.core.http import (
    DEFAULT_REALM,
    Headers,
    HttpPolicy,
    PathRules,
    RequestView,
    ThrottleHook,
    merge_headers,
    pipeline,
)
from tokenware.core.http_throttle import ThrottleRules
from tokenware.endpoints import (
    DEFAULT_HANDSHAKE_PATH,
    DEFAULT_JWKS_PATH,
    DEFAULT_SCRIPT_PATH,
    Endpoints,
    HandshakePayload,
    _facade,
    wsgi_path,
    wsgi_request,
    wsgi_status,
)

if TYPE_CHECKING:
    from types import TracebackType

    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from tokenware.facade import AsyncTokenware, Tokenware

__all__ = ["TokenwareMiddleware"]


class TokenwareMiddleware:
    """Authenticates every request before ``app`` sees it (a plain WSGI callable).

    Args:
        app: the WSGI app to protect.
        tokenware: the :class:`~tokenware.Tokenware` instance.
        protect: path prefixes that require credentials. Default ``"/"``:
            everything, so forgetting a prefix fails closed; narrow it with
            ``protect=["/api/"]`` or open holes with ``public=``.
        public: prefixes where credentials are optional (a bad token or a
            store outage gives an anonymous identity, not an error).
        exempt: prefixes tokenware does not touch at all.
        required_scopes: ``{prefix: scopes}`` every request below a
            protected prefix must carry (403 ``insufficient_scope``).
        throttle: rate limits: a rate string (``"100/minute"``: app-wide,
            keyed by subject when authenticated, else by client address), a
            :class:`~tokenware.throttling.ThrottleRule` (per path prefix,
            methods, key, outage policy), a list of them, or a
            :class:`~tokenware.core.http.ThrottleHook` (see there).
        trusted_proxies: how many proxies append to ``X-Forwarded-For``;
            0 (default) uses the socket peer only. Throttling keys on the
            address this gives.
        auth_failure_throttle: a rate such as ``"10/minute"``: tokens that
            fail verification are counted per client address, and an
            address over the rate gets 429 before anything is verified.
        realm: the ``WWW-Authenticate`` realm.
        jwks_path: where to serve the JWK Set (asymmetric keys only);
            ``None`` switches it off.
        script_path: where to serve the browser client ``tokenware.js``;
            ``None`` switches it off.
        handshake_path: where to serve the TWHS1 handshake (``POST`` only),
            when ``handshake_payload`` is given; ``None`` switches it off.
        origins: the origins allowed to run the handshake, e.g.
            ``["https://app.example.com"]`` (required with a payload).
        handshake_payload: ``callable(request) -> str | dict | TokenPair``
            (``request`` is an :class:`~tokenware.endpoints.EndpointRequest`
            whose ``raw`` is the environ): what the handshake delivers,
            typically ``tw.jwt.issue(user_id)`` for the logged-in user;
            called only after every check passed; raise
            :class:`~tokenware.errors.AuthenticationError` to refuse. Synchronous
            here (the ASGI middleware also takes a coroutine function).
        handshake_delivery: ``"header"`` (default) or ``"body"``.
        csrf_cookie_secure: mark the ``tokenware_csrf`` cookie ``Secure``
            (turn off only for plain-HTTP development). Which responses set
            the cookie: see :mod:`tokenware.endpoints`.

    Raises:
        ConfigurationError: an invalid option.
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        tokenware: Tokenware | AsyncTokenware,
        protect: str | Iterable[str] = ("/",),
        public: str | Iterable[str] = (),
        exempt: str | Iterable[str] = (),
        required_scopes: Mapping[str, str | Iterable[str]] | None = None,
        throttle: ThrottleHook | ThrottleRules | None = None,
        trusted_proxies: int = 0,
        auth_failure_throttle: str | None = None,
        realm: str = DEFAULT_REALM,
        jwks_path: str | None = DEFAULT_JWKS_PATH,
        script_path: str | None = DEFAULT_SCRIPT_PATH,
        handshake_path: str | None = DEFAULT_HANDSHAKE_PATH,
        origins: Iterable[str] | None = None,
        handshake_payload: HandshakePayload | None = None,
        handshake_delivery: str | None = None,
        csrf_cookie_secure: bool = True,
    ) -> None:
        self.app = app
        self.tokenware = _facade(tokenware)
        self.policy = HttpPolicy(
            rules=PathRules.build(
                protect=protect, public=public, exempt=exempt, required_scopes=required_scopes
            ),
            realm=realm,
            throttle=throttle,
            trusted_proxies=trusted_proxies,
            auth_failure_throttle=auth_failure_throttle,
            throttle_keys=self.tokenware._throttle_keys,
            clock=self.tokenware.settings.clock,
        )
        self.endpoints = Endpoints.build(
            self.tokenware,
            jwks_path=jwks_path,
            script_path=script_path,
            handshake_path=handshake_path,
            origins=origins,
            handshake_payload=handshake_payload,
            handshake_delivery=handshake_delivery,
            csrf_cookie_secure=csrf_cookie_secure,
            trusted_proxies=trusted_proxies,
            async_payload=False,
        )

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        path = wsgi_path(environ)
        endpoints = self.endpoints
        if endpoints.claims(path):
            served = endpoints.serve_sync(wsgi_request(environ, method, path))
            if served is not None:
                start_response(wsgi_status(served.status), list(served.headers))
                return [served.body]
        tw = self.tokenware
        environ["tokenware.instance"] = tw
        environ["tokenware.trusted_proxies"] = self.policy.trusted_proxies
        authorization = environ.get("HTTP_AUTHORIZATION")
        forwarded = environ.get("HTTP_X_FORWARDED_FOR")
        view = RequestView(
            method=method,
            path=path,
            authorization=() if authorization is None else (str(authorization),),
            query_string=str(environ.get("QUERY_STRING", "")),
            client=environ.get("REMOTE_ADDR"),
            forwarded_for=() if forwarded is None else (str(forwarded),),
        )
        outcome = run_sync(pipeline(view, self.policy, tw._authenticate_flow), tw.stores.sync)
        environ["tokenware.identity"] = outcome.identity
        environ["tokenware.error"] = outcome.error
        response = outcome.response
        if response is not None:
            start_response(wsgi_status(response.status), list(response.headers))
            return [response.body]
        if (
            endpoints.sets_csrf
            and method in ("GET", "HEAD")
            and (outcome.route is None or outcome.route.kind != "exempt")
        ):
            start_response = _with_csrf(
                start_response, endpoints, method, environ.get("HTTP_COOKIE")
            )
        if not outcome.headers:
            return self.app(environ, start_response)
        return self.app(environ, _adding(start_response, outcome.headers))


def _with_csrf(
    start_response: StartResponse, endpoints: Endpoints, method: str, cookie: str | None
) -> StartResponse:
    def wrapped(
        status: str,
        headers: list[tuple[str, str]],
        exc_info: tuple[type[BaseException], BaseException, TracebackType]
        | tuple[None, None, None]
        | None = None,
    ) -> Any:
        code = int(status[:3]) if status[:3].isdigit() else 0
        extra = endpoints.csrf_cookie_for(method, cookie, code, headers)
        if extra is not None:
            headers = [*headers, extra]
        return start_response(status, headers, exc_info)

    return wrapped


def _adding(start_response: StartResponse, extra: Headers) -> StartResponse:
    def wrapped(
        status: str,
        headers: list[tuple[str, str]],
        exc_info: tuple[type[BaseException], BaseException, TracebackType]
        | tuple[None, None, None]
        | None = None,
    ) -> Any:
        return start_response(status, merge_headers(headers, extra), exc_info)

    return wrapped
