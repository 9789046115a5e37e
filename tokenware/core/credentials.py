"""The ``Authorization`` header and the one verification core.

:func:`parse_authorization` reads an RFC 6750 bearer credential;
:func:`authenticate` dispatches on the token's shape and returns an
:class:`~tokenware.identity.Identity` or raises. Capabilities register the
shapes they verify in :class:`Verifiers`: the ``tws_`` session token, the
``twp_`` personal access token (plus the @access-tokens ``pat_`` form while
migrating) and the access JWT (three dot-separated segments).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from tokenware.core.flow import Flow
from tokenware.core.pat import PatRules
from tokenware.core.session import KEY_PREFIX as SESSION_PREFIX
from tokenware.core.session import SessionRules
from tokenware.errors import InvalidRequest, InvalidToken, MissingCredentials, NotFound
from tokenware.identity import Identity

__all__ = ["MAX_TOKEN_LENGTH", "Verifiers", "authenticate", "parse_authorization"]

log = logging.getLogger("tokenware.credentials")

#: Longer credentials are refused before any parsing (8 KiB, a common header cap).
MAX_TOKEN_LENGTH = 8192

# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# RFC 9110 §5.6.2 token, the syntax of an auth-scheme.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_OWS = " \t"
# The canonical form, "Bearer" SP b64token, is what nearly every client
# sends, so it is checked with a byte table rather than a regular expression
# (a third of the instructions of a warm request went to the regex). Anything
# else takes the step-by-step path below, which also says what is wrong.
_B64TOKEN_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/="


def parse_authorization(header: str | None) -> str:
    """The bearer token in an ``Authorization`` header value.

    Raises:
        MissingCredentials: no header, an empty one, or a well-formed
            scheme other than Bearer (no bearer credentials were sent).
        InvalidRequest: a malformed scheme, ``Bearer`` without a token, bad
            token syntax or several credentials.
    """
    if (
        header is not None
        and header.startswith("Bearer ")
        and len(header) <= MAX_TOKEN_LENGTH + 16
        and header.isascii()
    ):
        token = header[7:]
        # Only b64token characters, with "=" only at the end (RFC 6750 §2.1).
        if (
            token
            and not token.encode("ascii").translate(None, _B64TOKEN_BYTES)
            and token[0] != "="
            and "=" not in token.rstrip("=")
        ):
            return token
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
    pats: PatRules | None = None
    #: The facade's clock: PAT expiry is decided in code, not by the store.
    clock: Callable[[], float] | None = None
    #: Verifies an access JWT (``tw.jwt``'s flow, with its revocation check).
    jwt: Callable[[str], Flow[Identity]] | None = None


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
    pats = verifiers.pats
    if pats is not None and (
        token.startswith(pats.token_prefix)
        or (pats.legacy_prefix is not None and token.startswith(pats.legacy_prefix))
    ):
        if verifiers.clock is None:
            raise InvalidToken("personal access tokens need a clock in Verifiers")
        return (yield from _authenticate_pat(token, pats, verifiers.clock()))
    if verifiers.jwt is not None and token.count(".") == 2:
        return (yield from verifiers.jwt(token))
    raise InvalidToken("unrecognised token format")


def _authenticate_pat(token: str, pats: PatRules, now: float) -> Flow[Identity]:
    """A personal access token: the reason of a failure goes to the log, by token id only."""
    result = yield from pats.verify(token, now=now)
    if not result.valid or result.record is None:
        parts = pats.parse(token)
        token_id = None if isinstance(parts, str) else parts.token_id
        if token_id is None:
            log.debug("personal access token refused: %s", result.reason)
        else:
            log.info("personal access token %s refused: %s", token_id, result.reason)
        raise InvalidToken("invalid personal access token")
    record = result.record
    return Identity(
        subject=record.owner,
        kind="pat",
        scopes=frozenset(record.roles),
        token_id=record.token_id,
        is_admin=record.is_admin,
        expires_at=record.expires_at,
    )
