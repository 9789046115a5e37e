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
from dataclasses import dataclass, field

from tokenware.core.flow import Flow
from tokenware.core.pat import PatRules
from tokenware.core.session import KEY_PREFIX as SESSION_PREFIX
from tokenware.core.session import SessionRules
from tokenware.errors import InvalidRequest, InvalidToken, MissingCredentials, NotFound
from tokenware.identity import Identity

__all__ = [
    "MAX_TOKEN_LENGTH",
    "Verifiers",
    "authenticate",
    "authenticate_local",
    "parse_authorization",
]

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
    #: The same verification when it needs no store: the identity, or
    #: ``None`` when the store must be asked (a revocation check is on).
    jwt_local: Callable[[str], Identity | None] | None = None
    #: Every prefix that sends a token to a verifier other than the JWT's
    #: (derived; one ``startswith`` call tells a JWT apart).
    prefixes: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        pats = self.pats
        prefixes = [SESSION_PREFIX]
        if pats is not None:
            prefixes.append(pats.token_prefix)
            if pats.legacy_prefix is not None:
                prefixes.append(pats.legacy_prefix)
        object.__setattr__(self, "prefixes", tuple(prefixes))


def authenticate(authorization: str | None, verifiers: Verifiers) -> Flow[Identity]:
    """Verify the credential in ``authorization`` and return who it proves.

    Raises:
        MissingCredentials, InvalidRequest: see :func:`parse_authorization`.
        InvalidToken: unknown shape, or a token that does not verify. The
            reason is in ``detail`` only.
        StoreUnavailable: the store could not answer; never treated as valid.
    """
    token = parse_authorization(authorization)
    kind = _shape(token, verifiers)
    if kind == "session":
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
    if kind == "pat":
        pats = verifiers.pats
        if verifiers.clock is None or pats is None:
            raise InvalidToken("personal access tokens need a clock in Verifiers")
        return (yield from _authenticate_pat(token, pats, verifiers.clock()))
    if kind == "jwt" and verifiers.jwt is not None:
        return (yield from verifiers.jwt(token))
    raise InvalidToken("unrecognised token format")


def authenticate_local(authorization: str | None, verifiers: Verifiers) -> Identity | None:
    """What :func:`authenticate` returns when that needs no store, else ``None``.

    Only ``Bearer <access JWT>`` verified without a revocation check (from
    the JWT cache or by its signature) needs no store; ``None`` for every
    other credential and header. Raises what the JWT verifier raises; the
    caller then runs :func:`authenticate`, which decides (a header that
    :func:`parse_authorization` refuses may fail here as a bad token).
    """
    local = verifiers.jwt_local
    if (
        local is None
        or authorization is None
        or not authorization.startswith("Bearer ")
        or len(authorization) > MAX_TOKEN_LENGTH + 16
    ):
        return None
    # Neither parse_authorization nor _shape's count of dots: a token that
    # verifies (or equals, by its hash, one that did) has three non-empty
    # segments of base64url characters, so after "Bearer " and within the
    # length cap it is exactly what parse_authorization returns, and one
    # that has not fails verification here. Only the other verifiers'
    # prefixes must be ruled out (a "tws_a.b.c" is a session token).
    token = authorization[7:]
    if token.startswith(verifiers.prefixes):
        return None
    return local(token)


def _shape(token: str, verifiers: Verifiers) -> str | None:
    """Which verifier a token goes to: ``session``, ``pat``, ``jwt`` or ``None``."""
    if token.startswith(verifiers.prefixes):
        return "session" if token.startswith(SESSION_PREFIX) else "pat"
    if token.count(".") == 2:
        return "jwt"
    return None


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
