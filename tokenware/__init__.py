"""tokenware: token auth for Python web apps, as WSGI and ASGI middleware.

One verification core serves session tokens (and, as they land, JWT access
and refresh tokens, personal access tokens, one-time challenges, throttling
and an encrypted browser handshake) over one store contract: memory, SQLite
or Redis.
"""

from __future__ import annotations

from tokenware import errors
from tokenware.challenges import Challenge, ChallengeInfo, ChallengeVerification, SecretSpec
from tokenware.decorators import exempt, requires, throttle
from tokenware.facade import AsyncTokenware, Tokenware
from tokenware.handshake import AsyncHandshake, CsrfCookie, Handshake, HandshakeReply
from tokenware.identity import ANONYMOUS, Anonymous, Identity
from tokenware.jwt import TokenPair
from tokenware.keys import KeyRing, RootKey
from tokenware.pats import GeneratedPat, IssuedPat, PatRecord, PatVerification
from tokenware.sessions import SessionToken
from tokenware.throttling import Decision, Rate, Rule, ThrottleRule

__version__ = "0.1.0.dev0"

__all__ = [
    "ANONYMOUS",
    "Anonymous",
    "AsyncHandshake",
    "AsyncTokenware",
    "Challenge",
    "ChallengeInfo",
    "ChallengeVerification",
    "CsrfCookie",
    "Decision",
    "GeneratedPat",
    "Handshake",
    "HandshakeReply",
    "Identity",
    "IssuedPat",
    "KeyRing",
    "PatRecord",
    "PatVerification",
    "Rate",
    "RootKey",
    "Rule",
    "SecretSpec",
    "SessionToken",
    "ThrottleRule",
    "TokenPair",
    "Tokenware",
    "__version__",
    "errors",
    "exempt",
    "requires",
    "throttle",
]
