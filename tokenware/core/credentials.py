"""The ``Authorization`` header and the one verification core.

:func:`parse_authorization` reads an RFC 6750 bearer credential;
:func:`authenticate` dispatches on the token's shape and returns an
:class:`~tokenware.identity.Identity` or raises. Capabilities register the
shapes they verify in :class:`Verifiers`; today that is the ``tws_`` session
token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tokenware.core.flow import Flow
from tokenware.core.session import KEY_PREFIX as SESSION_PREFIX
from tokenware.core.session import SessionRules
from tokenware.errors import InvalidRequest, InvalidToken, MissingCredentials, NotFound
from tokenware.identity import Identity

__all__ = ["MAX_TOKEN_LENGTH", "Verifiers", "authenticate", "parse_authorization"]

#: Longer credentials are refused before any parsing (8 KiB, a common header cap).
MAX_TOKEN_LENGTH = 8192

# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# RFC 9110 §5.6.2 token, the syntax of an auth-scheme.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_OWS = " \t"


def parse_authorization(header: str | None) -> str:
    """The bearer token in an ``Authorization`` header value.

    Raises:
        MissingCredentials: no header, an empty one, or a well-formed
            scheme other than Bearer (no bearer credentials were sent).
        InvalidRequest: a malformed scheme, ``Bearer`` without a token, bad
            token syntax or several credentials.
    """
    # Only SP and HTAB are optional whitespace (RFC 9110 §5.6.3); a bare
    # str.strip() also removed Unicode spaces such as U+2003 and accepted
    # "\u2003Bearer <token>".
    value = "" if header is None else header.strip(_OWS)
    if not value:
        raise MissingCredentials("no Authorization header")
    if len(value) > MAX_TOKEN_LENGTH + 16:
        raise InvalidRequest("Authorization header too long")
    scheme, _, token = value.partition(" ")
    if not _TOKEN.fullmatch(scheme):
        raise InvalidRequest("malformed Authorization scheme")
    if scheme.lower() != "bearer":
        # A well-formed other scheme (Basic, Digest...) means no bearer
        # credentials were sent: 401 without an error code (RFC 6750 §3.1,
        # security.md C.54), not 400.
        raise MissingCredentials("Authorization scheme is not Bearer")
    # RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token.
    token = token.lstrip(" ")
    if not _B64TOKEN.fullmatch(token):
        # Covers a space inside the token, a comma-separated second
        # credential and non-ASCII text, which must never reach a comparison.
        raise InvalidRequest("malformed bearer token")
    return token


@dataclass(frozen=True, slots=True)
class Verifiers:
    """The token verifiers :func:`authenticate` dispatches to."""

    sessions: SessionRules


def authenticate(authorization: str | None, verifiers: Verifiers) -> Flow[Identity]:
    """Verify the credential in ``authorization`` and return who it proves.

    Raises:
        MissingCredentials, InvalidRequest: see :func:`parse_authorization`.
        InvalidToken: unknown shape, or a token that does not verify. The
            reason is in ``detail`` only.
        StoreUnavailable: the store could not answer; never treated as valid.
    """
    token = parse_authorization(authorization)
    if token.startswith(SESSION_PREFIX):
        try:
            session = yield from verifiers.sessions.get_by_key(token)
        except NotFound:
            raise InvalidToken("unknown or expired session token") from None
        return Identity(
            subject=session.owner_id,
            kind="session",
            token_id=session.id,
            claims=dict(session.attrs),
            expires_at=session.expires_at,
        )
    raise InvalidToken("unrecognised token format")
