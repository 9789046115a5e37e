"""Who made the request: :class:`Identity`, or :data:`ANONYMOUS`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["ANONYMOUS", "Anonymous", "Identity", "TokenKind"]

#: The kind of credential an identity was proven with.
TokenKind = Literal["jwt", "pat", "session", "handshake"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """An authenticated caller, immutable, handed to apps and decorators.

    Attributes:
        subject: the user (or owner) id the token was issued for.
        kind: which credential proved it: ``jwt``, ``pat``, ``session``...
        scopes: granted scopes (JWT ``scope``) or roles (PAT).
        token_id: the credential's public id (JWT ``jti``, PAT or session id),
            safe to log; never the token itself.
        claims: extra data (JWT claims, session attrs).
        expires_at: when the credential expires, seconds since the epoch.
        is_admin: PAT admin flag.
    """

    subject: str
    kind: TokenKind
    scopes: frozenset[str] = frozenset()
    token_id: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)
    expires_at: float | None = None
    is_admin: bool = False

    @property
    def is_authenticated(self) -> bool:
        """Always true; mirrors Starlette's ``BaseUser``."""
        return True

    @property
    def display_name(self) -> str:
        """The subject; mirrors Starlette's ``BaseUser``."""
        return self.subject

    @property
    def identity(self) -> str:
        """The subject; mirrors Starlette's ``BaseUser``."""
        return self.subject

    def has_scopes(self, *scopes: str) -> bool:
        """True if every one of ``scopes`` was granted."""
        return set(scopes) <= self.scopes


@dataclass(frozen=True, slots=True)
class Anonymous:
    """No credentials were presented (on a route that does not require them)."""

    @property
    def is_authenticated(self) -> bool:
        """Always false."""
        return False

    @property
    def display_name(self) -> str:
        """Empty, as Starlette's ``UnauthenticatedUser``."""
        return ""

    def has_scopes(self, *scopes: str) -> bool:
        """Only the empty set of scopes."""
        return not scopes


#: The one anonymous identity.
ANONYMOUS = Anonymous()


_new = object.__new__
# The slots' own setters: what the frozen dataclass's __init__ reaches through
# object.__setattr__ and a name lookup per field.
(
    _set_subject,
    _set_kind,
    _set_scopes,
    _set_token_id,
    _set_claims,
    _set_expires_at,
    _set_is_admin,
) = (
    Identity.__dict__[name].__set__
    for name in ("subject", "kind", "scopes", "token_id", "claims", "expires_at", "is_admin")
)


def verified_identity(
    subject: str,
    kind: TokenKind,
    scopes: frozenset[str],
    token_id: str | None,
    claims: Mapping[str, Any],
    expires_at: float | None,
    is_admin: bool,
) -> Identity:
    """``Identity(...)`` with every field given, built without the dataclass's
    ``__init__`` (a third of its cost). For verifiers, which build one per
    request with a fresh token; equal in every way to the constructor's
    (tests/test_identity.py compares them field by field).
    """
    identity = _new(Identity)
    _set_subject(identity, subject)
    _set_kind(identity, kind)
    _set_scopes(identity, scopes)
    _set_token_id(identity, token_id)
    _set_claims(identity, claims)
    _set_expires_at(identity, expires_at)
    _set_is_admin(identity, is_admin)
    return identity
