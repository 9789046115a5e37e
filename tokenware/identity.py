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
