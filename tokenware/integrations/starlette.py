"""Starlette integration: an ``AuthenticationBackend`` for ``AuthenticationMiddleware``.

For apps that already use Starlette's authentication machinery
(``request.user``, ``request.auth``, ``starlette.authentication.requires``)::

    from starlette.applications import Starlette
    from tokenware.integrations.starlette import authentication_middleware

    app = Starlette(routes=..., middleware=[authentication_middleware(tw)])

:class:`TokenwareBackend` verifies the bearer token with ``tw.aio`` and
returns ``(AuthCredentials(["authenticated", *scopes]), identity)``; the
:class:`~tokenware.identity.Identity` honours Starlette's ``BaseUser``
(``is_authenticated``, ``display_name``, ``identity``). Without credentials
the request is anonymous (``UnauthenticatedUser``). A bad token, a malformed
header or a store outage is refused by :func:`on_error` with the contract's
``application/problem+json`` response (401 ``invalid_token``, 400
``invalid_request``, 503 with ``Retry-After``) instead of Starlette's
default ``400 text/plain``.

:class:`tokenware.asgi.TokenwareMiddleware` does the same and more (path
rules, throttling, the handshake endpoints); use one of the two.
"""

from __future__ import annotations

from typing import cast

from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
)
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection
from starlette.responses import Response

from tokenware.core.http import DEFAULT_REALM, error_response
from tokenware.decorators import IDENTITY_KEY, INSTANCE_KEY, REALM_KEY, starlette_response
from tokenware.errors import (
    ClientError,
    InvalidRequest,
    MissingCredentials,
    StoreError,
    TokenwareError,
)
from tokenware.facade import Tokenware
from tokenware.identity import Identity

__all__ = ["TokenwareAuthError", "TokenwareBackend", "authentication_middleware", "on_error"]


class TokenwareAuthError(AuthenticationError):
    """Starlette's ``AuthenticationError`` carrying the tokenware error.

    Attributes:
        error: the tokenware error (its ``detail`` is for logs only).
        realm: the realm of the ``WWW-Authenticate`` challenge.
    """

    def __init__(self, error: TokenwareError, realm: str = DEFAULT_REALM) -> None:
        super().__init__(error.code)
        self.error = error
        self.realm = realm


def credentials_for(identity: Identity) -> AuthCredentials:
    """``AuthCredentials(["authenticated", *scopes])`` for ``identity``."""
    return AuthCredentials(["authenticated", *sorted(identity.scopes)])


class TokenwareBackend(AuthenticationBackend):
    """Verifies ``Authorization: Bearer`` tokens with ``tw.aio.authenticate``.

    Args:
        tokenware: the instance to verify with; also stored in
            ``scope["tokenware"]`` for :func:`tokenware.requires`.
        realm: the ``WWW-Authenticate`` realm of refusals.
    """

    def __init__(self, tokenware: Tokenware, *, realm: str = DEFAULT_REALM) -> None:
        self.tokenware = tokenware
        self.realm = realm

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        """The credentials and user, ``None`` when anonymous.

        Raises:
            TokenwareAuthError: credentials were sent and do not
                authenticate, or the store is down.
        """
        scope = conn.scope
        scope[INSTANCE_KEY] = self.tokenware
        scope[REALM_KEY] = self.realm
        values = conn.headers.getlist("authorization")
        if not values:
            return None
        try:
            if len(values) > 1:
                raise InvalidRequest("several Authorization headers")
            identity = await self.tokenware.aio.authenticate(values[0])
        except MissingCredentials:
            return None  # another scheme (Basic...): no bearer credentials
        except (ClientError, StoreError) as exc:
            raise TokenwareAuthError(exc, self.realm) from exc
        scope[IDENTITY_KEY] = identity
        return credentials_for(identity), cast(BaseUser, identity)


def on_error(conn: HTTPConnection, exc: AuthenticationError) -> Response:
    """``AuthenticationMiddleware``'s ``on_error``: the contract's response."""
    if isinstance(exc, TokenwareAuthError):
        reply = error_response(exc.error, realm=exc.realm)
    else:  # another backend's error: a malformed request, without its text
        reply = error_response(InvalidRequest(str(exc)))
    response: Response = starlette_response(reply)
    return response


def authentication_middleware(tokenware: Tokenware, *, realm: str = DEFAULT_REALM) -> Middleware:
    """``Middleware(AuthenticationMiddleware, backend=TokenwareBackend(tw), on_error=on_error)``."""
    return Middleware(
        AuthenticationMiddleware,
        backend=TokenwareBackend(tokenware, realm=realm),
        on_error=on_error,
    )
