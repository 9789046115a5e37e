"""The one exception tree of tokenware.

::

    TokenwareError
    ├── ConfigurationError            programmer error, raised at construction
    ├── ValidationError (ValueError)  bad arguments to an API call
    ├── ClientError                   carries status_code, code, www_authenticate
    │   ├── AuthenticationError                      401
    │   │   ├── MissingCredentials
    │   │   └── InvalidToken
    │   │       ├── ExpiredToken
    │   │       ├── RevokedToken
    │   │       ├── RefreshTokenNotFound
    │   │       ├── TokensMismatch
    │   │       └── RefreshTokenReused
    │   ├── InvalidRequest                           400
    │   ├── HandshakeError                           400
    │   ├── PermissionDenied                         403
    │   │   ├── InsufficientScope
    │   │   ├── CsrfFailed
    │   │   └── OriginRejected
    │   ├── NotFound                                 404
    │   ├── Conflict                                 409
    │   │   └── HandshakeReplayed
    │   └── Throttled (retry_after)                  429
    └── StoreError                    the backend failed; wraps its exception
        └── StoreUnavailable (retry_after)           503

What reaches an HTTP client is generic: ``code``, ``title`` and the status.
The precise reason (``detail``) stays on the exception for logs and never
contains a token, secret or key.
"""

from __future__ import annotations

import math
from typing import ClassVar

__all__ = [
    "AuthenticationError",
    "ClientError",
    "ConfigurationError",
    "Conflict",
    "CsrfFailed",
    "ExpiredToken",
    "HandshakeError",
    "HandshakeReplayed",
    "InsufficientScope",
    "InvalidRequest",
    "InvalidToken",
    "MissingCredentials",
    "NotFound",
    "OriginRejected",
    "PermissionDenied",
    "RefreshTokenNotFound",
    "RefreshTokenReused",
    "RevokedToken",
    "StoreError",
    "StoreUnavailable",
    "Throttled",
    "TokensMismatch",
    "TokenwareError",
    "ValidationError",
]


def _whole_seconds(retry_after: float) -> int:
    # Rounded UP: int(2.7) == 2 told clients to retry before a retry could
    # succeed. A non-finite value (never produced by tokenware) becomes 1
    # instead of an OverflowError while building the error.
    if not math.isfinite(retry_after):
        return 1
    return max(1, math.ceil(retry_after))


class TokenwareError(Exception):
    """Root of every exception tokenware raises on purpose.

    Args:
        detail: the precise reason, for logs. Never shown to an HTTP client
            and never contains secret material.
    """

    #: Short machine-readable code, stable across releases.
    code: ClassVar[str] = "tokenware_error"
    #: Generic human title, safe to show to a client.
    title: ClassVar[str] = "Token error"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title


class ConfigurationError(TokenwareError):
    """Invalid settings, raised once at construction (never via ``assert``)."""

    code = "configuration_error"
    title = "Invalid tokenware configuration"


class ValidationError(TokenwareError, ValueError):
    """Bad arguments to an API call, such as non-JSON ``attrs``.

    Also a :class:`ValueError`, so ``except ValueError`` keeps working.
    """

    code = "validation_error"
    title = "Invalid argument"


class ClientError(TokenwareError):
    """An error caused by the request, with everything an HTTP adapter needs.

    Attributes:
        status_code: the HTTP status to answer with.
        code: the machine code (``invalid_token``, ``insufficient_scope``...).
        www_authenticate_error: the RFC 6750 ``error`` parameter, if any.
    """

    status_code: ClassVar[int] = 400
    code = "invalid_request"
    title = "Bad request"
    www_authenticate_error: ClassVar[str | None] = None


class AuthenticationError(ClientError):
    """The request is not authenticated (HTTP 401)."""

    status_code = 401
    code = "unauthorized"
    title = "Authentication required"


class MissingCredentials(AuthenticationError):
    """No credentials were sent (401 without an ``error`` parameter)."""

    code = "missing_credentials"


class InvalidToken(AuthenticationError):
    """The token is malformed, forged, unknown or of the wrong kind.

    The client only ever learns ``invalid_token``; ``detail`` says which check
    failed, for logs.
    """

    code = "invalid_token"
    title = "Invalid token"
    www_authenticate_error = "invalid_token"


class ExpiredToken(InvalidToken):
    """The token was valid once and has expired."""


class RevokedToken(InvalidToken):
    """The token was revoked."""


class RefreshTokenNotFound(InvalidToken):
    """The refresh token is unknown to the store."""


class TokensMismatch(InvalidToken):
    """The access token does not belong to the refresh token's family."""


class RefreshTokenReused(InvalidToken):
    """A rotated refresh token was presented again; its family is revoked."""


class InvalidRequest(ClientError):
    """The request is malformed, such as two credentials at once (HTTP 400)."""

    status_code = 400
    code = "invalid_request"
    title = "Bad request"
    www_authenticate_error = "invalid_request"


class HandshakeError(ClientError):
    """The handshake header is malformed or fails a check (HTTP 400)."""

    status_code = 400
    code = "invalid_handshake"
    title = "Invalid handshake"


class PermissionDenied(ClientError):
    """The identity is known but not allowed (HTTP 403)."""

    status_code = 403
    code = "forbidden"
    title = "Forbidden"


class InsufficientScope(PermissionDenied):
    """A required scope or role is missing.

    Args:
        detail: reason for logs.
        scopes: the scopes the resource requires, for ``WWW-Authenticate``.
    """

    code = "insufficient_scope"
    title = "Insufficient scope"
    www_authenticate_error = "insufficient_scope"

    def __init__(self, detail: str = "", *, scopes: tuple[str, ...] = ()) -> None:
        super().__init__(detail)
        self.scopes = scopes


class CsrfFailed(PermissionDenied):
    """The CSRF token is missing or does not match."""

    code = "csrf_failed"
    title = "CSRF check failed"


class OriginRejected(PermissionDenied):
    """The request's ``Origin`` (or ``Sec-Fetch-Site``) is not allowed."""

    code = "origin_rejected"
    title = "Origin not allowed"


class NotFound(ClientError):
    """The id, key or handle is unknown or has expired (HTTP 404)."""

    status_code = 404
    code = "not_found"
    title = "Not found"


class Conflict(ClientError):
    """The request conflicts with stored state (HTTP 409)."""

    status_code = 409
    code = "conflict"
    title = "Conflict"


class HandshakeReplayed(Conflict):
    """A handshake nonce or key was seen before."""

    code = "handshake_replayed"
    title = "Handshake replayed"


class Throttled(ClientError):
    """Too many requests (HTTP 429).

    Args:
        detail: reason for logs.
        retry_after: seconds before a retry can succeed, rounded up to a
            whole number of at least 1.
        headers: ``(name, value)`` pairs the 429 carries besides
            ``Retry-After``, such as ``RateLimit-Policy`` and ``RateLimit``.
    """

    status_code = 429
    code = "rate_limited"
    title = "Too many requests"

    def __init__(
        self,
        detail: str = "",
        *,
        retry_after: float = 1,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(detail)
        self.retry_after = _whole_seconds(retry_after)
        self.headers = tuple(headers)


class StoreError(TokenwareError):
    """The store failed in a way that is not a transient outage.

    The backend's own exception is chained as ``__cause__``.
    """

    code = "store_error"
    title = "Store error"
    status_code: ClassVar[int] = 503


class StoreUnavailable(StoreError):
    """The store is unreachable, timing out or locked (HTTP 503).

    Never treated as success: a request that needs state fails closed.

    Args:
        detail: reason for logs.
        retry_after: seconds before a retry may succeed, rounded up to a
            whole number of at least 1.
    """

    code = "store_unavailable"
    title = "Service unavailable"

    def __init__(self, detail: str = "", *, retry_after: float = 1) -> None:
        super().__init__(detail)
        self.retry_after = _whole_seconds(retry_after)
