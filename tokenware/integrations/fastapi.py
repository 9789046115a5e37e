"""FastAPI integration: dependencies that document a bearer scheme in OpenAPI.

::

    from fastapi import Depends, FastAPI, Security
    from tokenware import Identity
    from tokenware.integrations.fastapi import Authenticated, install

    app = FastAPI()
    install(app, tw)

    @app.get("/reports")
    async def reports(user: Identity = Security(Authenticated(), scopes=["reports:read"])):
        return {"user": user.subject}

:class:`Authenticated` is a dependency (use it with ``Depends`` or with
``Security(..., scopes=[...])``; scopes from the whole dependency chain are
required together). Each use adds the ``bearer`` HTTP security scheme to the
OpenAPI document, so ``/docs`` offers an *Authorize* button.
:data:`OptionalIdentity` lets anonymous callers through as
:data:`~tokenware.identity.ANONYMOUS`; a token that *is* sent must verify.

The identity the middleware (:class:`tokenware.asgi.TokenwareMiddleware`)
already found is reused, and one found by a dependency is kept in the
scope, so a router-level and a route-level dependency verify the token once
(fastapi/fastapi#11554). Without the middleware, the token is verified with
``tw.aio`` from :func:`install` (``app.state.tokenware``) or from the
``tokenware=`` argument.

Refusals raise :class:`TokenwareHTTPException`. With :func:`install` the
response is exactly the middleware's ``application/problem+json``; without
it FastAPI's own handler still answers with the right status and
``WWW-Authenticate``/``Retry-After`` headers, with a ``{"detail": title}``
body. Never a 422 and never a 500.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI, HTTPException, Security
from fastapi.requests import HTTPConnection
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes
from starlette.requests import Request
from starlette.responses import Response

from tokenware.core.http import DEFAULT_REALM, error_response
from tokenware.core.http import Response as HttpResponse
from tokenware.decorators import INSTANCE_KEY, REALM_KEY, RequestContext, starlette_response
from tokenware.errors import (
    ClientError,
    InsufficientScope,
    MissingCredentials,
    StoreError,
    TokenwareError,
)
from tokenware.facade import Tokenware
from tokenware.identity import Anonymous, Identity

__all__ = [
    "Authenticated",
    "OptionalIdentity",
    "TokenwareHTTPException",
    "bearer_scheme",
    "install",
]

#: The HTTP bearer scheme every dependency declares (OpenAPI ``bearer``).
bearer_scheme = HTTPBearer(
    scheme_name="bearer",
    description="A tokenware access token: JWT, personal access token or session token.",
    auto_error=False,
)

_BODY_HEADERS = frozenset({"content-type", "content-length"})


class TokenwareHTTPException(HTTPException):
    """A refusal, as FastAPI's ``HTTPException`` carrying the contract's response.

    Attributes:
        error: the tokenware error (``detail`` stays for logs).
        reply: the exact response the middleware would send.
    """

    def __init__(self, error: TokenwareError, realm: str = DEFAULT_REALM) -> None:
        reply = error_response(error, realm=realm)
        super().__init__(
            status_code=reply.status,
            detail=error.title,
            headers={n: v for n, v in reply.headers if n.lower() not in _BODY_HEADERS},
        )
        self.error = error
        self.reply: HttpResponse = reply


def install(app: FastAPI, tokenware: Tokenware, *, realm: str = DEFAULT_REALM) -> None:
    """Use ``tokenware`` in ``app``'s dependencies and answer its errors.

    Sets ``app.state.tokenware`` and registers exception handlers so a
    refusal, and a tokenware client error or store outage raised in an
    endpoint, get the contract's ``application/problem+json`` response.
    """
    app.state.tokenware = tokenware
    app.state.tokenware_realm = realm

    async def refused(request: Request, exc: Exception) -> Response:
        if isinstance(exc, TokenwareHTTPException):
            reply = exc.reply
        else:
            assert isinstance(exc, TokenwareError)
            reply = error_response(exc, realm=realm)
        response: Response = starlette_response(reply)
        return response

    app.add_exception_handler(TokenwareHTTPException, refused)
    app.add_exception_handler(ClientError, refused)
    app.add_exception_handler(StoreError, refused)


class Authenticated:
    """A dependency returning the caller's :class:`~tokenware.identity.Identity`.

    Args:
        scopes: scopes (or PAT roles) the caller must hold, added to those
            of ``Security(..., scopes=[...])`` along the dependency chain.
        optional: let anonymous callers through as ``ANONYMOUS``.
        tokenware: the instance to verify with (default: the middleware's,
            or ``app.state.tokenware`` from :func:`install`).

    Raises:
        TokenwareHTTPException: 401 without or with a bad token, 400 for a
            malformed header, 403 ``insufficient_scope``, 503 when the store
            is down.
    """

    def __init__(
        self,
        scopes: Sequence[str] = (),
        *,
        optional: bool = False,
        tokenware: Tokenware | None = None,
    ) -> None:
        if isinstance(scopes, str):
            raise TypeError("scopes must be a list of strings, not one string")
        self.scopes = tuple(scopes)
        self.optional = optional
        self.tokenware = tokenware

    async def __call__(
        self,
        connection: HTTPConnection,
        security_scopes: SecurityScopes,
        _bearer: HTTPAuthorizationCredentials | None = Security(bearer_scheme),  # noqa: B008
    ) -> Identity | Anonymous:
        # ``_bearer`` only documents the scheme: FastAPI's parser is lenient,
        # so the header is read again by tokenware's strict one.
        scope = connection.scope
        if self.tokenware is not None:
            scope.setdefault(INSTANCE_KEY, self.tokenware)
        app_state = getattr(scope.get("app"), "state", None)
        realm = getattr(app_state, "tokenware_realm", None)
        if realm is not None:
            scope.setdefault(REALM_KEY, realm)
        client = connection.client
        ctx = RequestContext(
            "starlette",
            connection,
            scope,
            scope.get("method", "GET"),
            client.host if client else None,
        )
        wanted = tuple(dict.fromkeys((*self.scopes, *security_scopes.scopes)))
        try:
            identity = await ctx.aidentify()
            if isinstance(identity, Anonymous):
                if self.optional:
                    return identity
                raise MissingCredentials("no bearer credentials")
            if not identity.has_scopes(*wanted):
                raise InsufficientScope("missing a required scope", scopes=wanted)
        except (ClientError, StoreError) as exc:
            raise TokenwareHTTPException(exc, ctx.realm) from exc
        return identity


#: A dependency: the caller's identity, or ``ANONYMOUS`` without credentials.
OptionalIdentity = Authenticated(optional=True)
