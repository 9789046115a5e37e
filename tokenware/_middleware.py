"""What the WSGI and ASGI middlewares share: their options, validated once.

:class:`Middleware` holds the constructor both
:class:`tokenware.wsgi.TokenwareMiddleware` and
:class:`tokenware.asgi.TokenwareMiddleware` take, so the two accept exactly
the same options and build the same :class:`~tokenware.core.http.HttpPolicy`
and :class:`~tokenware.endpoints.Endpoints` from them; each subclass only
adds ``__call__`` for its protocol.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, ClassVar, Generic, TypeVar

from tokenware.core.http import DEFAULT_REALM, HttpPolicy, PathRules, ThrottleHook
from tokenware.core.http_throttle import ThrottleRules
from tokenware.endpoints import (
    DEFAULT_HANDSHAKE_PATH,
    DEFAULT_JWKS_PATH,
    DEFAULT_SCRIPT_PATH,
    Endpoints,
    HandshakePayload,
    _facade,
)

if TYPE_CHECKING:
    from tokenware.facade import AsyncTokenware, Tokenware

__all__ = ["Middleware"]

AppT = TypeVar("AppT")


class Middleware(Generic[AppT]):
    """Authenticates every request before ``app`` sees it.

    Args:
        app: the app to protect (WSGI or ASGI, as the subclass says).
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
            whose ``raw`` is the WSGI environ or the ASGI scope): what the
            handshake delivers, typically ``tw.jwt.issue(user_id)`` for the
            logged-in user; called only after every check passed; raise
            :class:`~tokenware.errors.AuthenticationError` to refuse. The
            ASGI middleware also takes a coroutine function; the WSGI one
            refuses it.
        handshake_delivery: ``"header"`` (default) or ``"body"``.
        csrf_cookie_secure: mark the ``tokenware_csrf`` cookie ``Secure``
            (turn off only for plain-HTTP development). Which responses set
            the cookie: see :mod:`tokenware.endpoints`.

    Raises:
        ConfigurationError: an invalid option.
    """

    #: Whether ``handshake_payload`` may be a coroutine function.
    async_payload: ClassVar[bool] = True

    def __init__(
        self,
        app: AppT,
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
            async_payload=self.async_payload,
        )
        self._prepare()

    def _prepare(self) -> None:
        """Per-protocol set-up after the options are validated (none here)."""
