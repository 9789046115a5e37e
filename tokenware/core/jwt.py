"""Access tokens: signed JWTs in the RFC 9068 profile, verified strictly.

A token is a compact JWS (:mod:`tokenware.core.jws`) with the header
``{"alg", "typ": "at+jwt", "kid"}`` and the claims ``iss sub aud exp iat
jti``, plus ``scope`` (space-separated, RFC 6749), claims tokenware itself
sets (``sid``) and the application's own claims, which can never override
any of those.

:meth:`AccessTokenCodec.decode` runs the checks of
``reference/security.md`` §3.1 in this order, stopping at the first failure:

1. size cap, shape (three canonical base64url segments);
2. header: a strict JSON object with only ``alg``, ``typ`` and ``kid``;
   ``typ`` is ``at+jwt``; ``kid`` picks the key (none: the current key);
   ``alg`` must equal *that key's* algorithm;
3. the signature, with the key's own algorithm;
4. the payload: a strict JSON object; ``exp``/``iat``/``nbf`` JSON integers
   in a sane range; exact ``iss``; ``aud`` a string or array holding the
   audience; non-empty ``sub`` and ``jti``; lifetime at most
   ``max_lifetime``; ``iat``/``nbf`` not in the future beyond the leeway;
5. expiry (``ExpiredToken``) last, so an expired token is only reported as
   such when everything else about it is sound.

Every other failure is :class:`~tokenware.errors.InvalidToken`; the precise
reason is only in its ``detail``, for logs. Time always comes from the
``now`` argument (callers pass ``settings.clock()``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from tokenware.core import jws
from tokenware.core.jwt_keys import JwtKey, JwtKeys
from tokenware.errors import ConfigurationError, ExpiredToken, InvalidToken, ValidationError
from tokenware.identity import Identity, verified_identity

if TYPE_CHECKING:
    from tokenware.config import Settings

__all__ = [
    "DEFAULT_AUDIENCE",
    "DEFAULT_ISSUER",
    "MAX_LEEWAY",
    "RESERVED_CLAIMS",
    "TOKEN_TYPE",
    "AccessClaims",
    "AccessTokenCodec",
    "identity_from",
]

#: ``iss`` when ``Settings.issuer`` is ``None``.
DEFAULT_ISSUER = "tokenware"
#: ``aud`` when ``Settings.audience`` is ``None``.
DEFAULT_AUDIENCE = "tokenware"
#: The ``typ`` header of access tokens (RFC 9068 §2.1).
TOKEN_TYPE = "at+jwt"  # noqa: S105 - a media type, not a secret
#: The largest clock leeway a codec accepts, in seconds.
MAX_LEEWAY = 300
#: Claims only tokenware sets; application claims may not use these names.
RESERVED_CLAIMS = frozenset(
    {"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "scope", "sid", "typ"}
)

_HEADER_NAMES = frozenset({"alg", "typ", "kid"})
_TYPES = frozenset({"at+jwt", "application/at+jwt"})
# Longer kids are refused before any lookup (every configured kid is shorter).
_MAX_KID = 64
#: How many distinct verified headers :meth:`AccessTokenCodec.decode` remembers.
_HEADER_MEMO_SIZE = 64
#: How many distinct ``scope`` claims of signed tokens the codec remembers.
_SCOPE_MEMO_SIZE = 256
_NO_SCOPES: frozenset[str] = frozenset()
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = r"[\x21\x23-\x5b\x5d-\x7e]+"  # noqa: S105 - a character class
_SCOPE_TOKEN_RE = re.compile(_SCOPE_TOKEN)
_SCOPE_RE = re.compile(rf"{_SCOPE_TOKEN}(?: {_SCOPE_TOKEN})*")
# Numeric dates: JSON integers in (0, 2^53), the range every JSON reader keeps exact.
_MAX_DATE = 2**53


class AccessClaims(NamedTuple):
    """The claims of an access token that verified.

    Attributes:
        subject: ``sub``.
        token_id: ``jti``.
        issued_at: ``iat``, seconds since the epoch.
        expires_at: ``exp``, seconds since the epoch.
        scopes: the tokens of ``scope``.
        claims: every claim, registered ones included (read-only).

    A named tuple (immutable like a frozen dataclass, built several times
    faster): one is made for every token verified.
    """

    subject: str
    token_id: str
    issued_at: int
    expires_at: int
    scopes: frozenset[str]
    claims: Mapping[str, Any]


def _date_problem(exp: object, iat: object, max_lifetime: int) -> str:
    """Why ``exp``/``iat`` were refused, for the log (the slow path)."""
    for name, value in (("exp", exp), ("iat", iat)):
        if type(value) is not int or not 0 < value < _MAX_DATE:
            return f"{name} must be a positive JSON integer below 2^53"
    return f"exp must follow iat by 1 to {max_lifetime} seconds"


_new_claims = tuple.__new__


class AccessTokenCodec:
    """Issues and verifies access tokens with one set of keys.

    Args:
        keys: the JWT keys (newest signs, all verify).
        issuer: the ``iss`` written and required, compared exactly.
        audience: the ``aud`` written and required.
        leeway: clock skew tolerated on ``exp``, ``nbf`` and ``iat``
            (seconds, 0 to 300).
        max_size: the longest token accepted or issued, in characters.
        max_lifetime: the longest ``exp - iat`` accepted or issued (a day).

    Raises:
        ConfigurationError: an invalid option.
    """

    __slots__ = (
        "_audience",
        "_by_kid",
        "_current",
        "_issuer",
        "_keys",
        "_leeway",
        "_max_lifetime",
        "_max_size",
        "_scope_sets",
        "_verifiers",
    )

    def __init__(
        self,
        keys: JwtKeys,
        *,
        issuer: str,
        audience: str,
        leeway: int = 30,
        max_size: int = 8192,
        max_lifetime: int = 24 * 3600,
    ) -> None:
        if not isinstance(keys, JwtKeys):
            raise ConfigurationError("keys must be JwtKeys")
        for name, value in (("issuer", issuer), ("audience", audience)):
            if not isinstance(value, str) or not value:
                raise ConfigurationError(f"{name} must be a non-empty string")
        if type(leeway) is not int or not 0 <= leeway <= MAX_LEEWAY:
            raise ConfigurationError(f"leeway must be an integer from 0 to {MAX_LEEWAY} seconds")
        if type(max_size) is not int or not 256 <= max_size <= 65536:
            raise ConfigurationError("max_size must be an integer from 256 to 65536")
        if type(max_lifetime) is not int or max_lifetime <= 0:
            raise ConfigurationError("max_lifetime must be a positive integer of seconds")
        self._keys = keys
        self._current = keys.current
        self._by_kid = dict(keys.by_kid)
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway
        self._max_size = max_size
        self._max_lifetime = max_lifetime
        # Encoded header segment -> the key it names, for headers that passed
        # every check: tokens from one issuer share a handful of headers, so
        # most verifications skip decoding and checking the header again.
        # Headers are client input: bounded, emptied when full.
        self._verifiers: dict[bytes, JwtKey] = {}
        # "scope" claim -> its checked set: tokens carry a handful of distinct
        # scope strings, and the regex, split and frozenset showed up in every
        # cold verification. Only claims of signed tokens that passed the
        # check get here; bounded, emptied when full.
        self._scope_sets: dict[str, frozenset[str]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> AccessTokenCodec:
        """A codec for ``settings``: its key ring, algorithm, ``jwt_key``, issuer, audience."""
        return cls(
            JwtKeys.from_settings(settings),
            issuer=settings.issuer or DEFAULT_ISSUER,
            audience=settings.audience or DEFAULT_AUDIENCE,
        )

    @property
    def keys(self) -> JwtKeys:
        """The keys this codec signs and verifies with."""
        return self._keys

    @property
    def issuer(self) -> str:
        """The ``iss`` claim."""
        return self._issuer

    @property
    def audience(self) -> str:
        """The ``aud`` claim."""
        return self._audience

    @property
    def leeway(self) -> int:
        """Tolerated clock skew, seconds."""
        return self._leeway

    # -- issuing ---------------------------------------------------------------

    def encode(
        self,
        subject: str,
        *,
        now: float,
        ttl: int,
        jti: str,
        scopes: Iterable[str] = (),
        claims: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """A signed access token for ``subject``, valid ``ttl`` seconds from ``now``.

        Args:
            subject: ``sub``, a non-empty string.
            now: the current time (``settings.clock()``).
            ttl: lifetime in whole seconds, at most ``max_lifetime``.
            jti: the token id, a non-empty string.
            scopes: RFC 6749 scope tokens, written sorted as ``scope``.
            claims: the application's JSON claims; none of
                :data:`RESERVED_CLAIMS`.
            extra: claims tokenware itself sets (such as ``sid``); they may
                not replace ``iss sub aud exp iat jti scope``.

        Raises:
            ValidationError: an invalid argument, a reserved claim name, a
                claim that is not JSON, or a token over ``max_size``.
        """
        if not isinstance(subject, str) or not subject:
            raise ValidationError("subject must be a non-empty string")
        if not isinstance(jti, str) or not jti:
            raise ValidationError("jti must be a non-empty string")
        if type(ttl) is not int or not 0 < ttl <= self._max_lifetime:
            raise ValidationError(
                f"ttl must be an integer from 1 to {self._max_lifetime} seconds, got {ttl!r}"
            )
        if isinstance(now, bool) or not isinstance(now, (int, float)) or not now > 0:
            raise ValidationError("now must be a positive number of seconds since the epoch")
        scope = _scope_string(scopes)
        iat = int(now)
        payload: dict[str, Any] = {
            "iss": self._issuer,
            "sub": subject,
            "aud": self._audience,
            "exp": iat + ttl,
            "iat": iat,
            "jti": jti,
        }
        if scope:
            payload["scope"] = scope
        if extra:
            for name, value in _mapping(extra, "extra").items():
                if name in payload or name in ("iss", "sub", "aud", "exp", "iat", "jti", "scope"):
                    raise ValidationError(f"extra may not set the claim {name!r}")
                payload[name] = value
        if claims:
            for name, value in _mapping(claims, "claims").items():
                if name in RESERVED_CLAIMS or name in payload:
                    raise ValidationError(f"claims may not set the reserved claim {name!r}")
                payload[name] = value
        key = self._current
        header = {"alg": key.alg, "typ": TOKEN_TYPE, "kid": key.kid}
        try:
            raw = json.dumps(
                payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False
            ).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"claims must be JSON-serialisable: {exc}") from None
        try:
            # What we sign must pass our own strict parser (duplicate names
            # from non-str keys, lone surrogates, deep nesting...).
            jws.loads_strict(raw)
        except InvalidToken as exc:
            raise ValidationError(f"claims are not strict JSON: {exc.detail}") from None
        token = jws.compact(header, payload, key.key)
        if len(token) > self._max_size:
            raise ValidationError(f"the token would exceed {self._max_size} characters")
        return token

    # -- verifying ------------------------------------------------------------

    def decode(self, token: str, *, now: float, verify_exp: bool = True) -> AccessClaims:
        """Verify ``token`` and return its claims.

        Args:
            token: the compact JWT.
            now: the current time (``settings.clock()``).
            verify_exp: ``False`` to accept an expired token (everything else
                is still checked), e.g. to pair it with a refresh token.

        Raises:
            ExpiredToken: the token is sound but has expired.
            InvalidToken: anything else; the reason is only in ``detail``.
        """
        if type(token) is not str:
            raise InvalidToken("a token must be a string")
        if len(token) > self._max_size:
            raise InvalidToken("token too large")
        if not token.isascii():
            raise InvalidToken("not a compact JWS")
        return self.decode_ascii(token.encode("ascii"), now=now, verify_exp=verify_exp)

    def decode_ascii(self, raw: bytes, *, now: float, verify_exp: bool = True) -> AccessClaims:
        """:meth:`decode` of a token the caller has already encoded (it was
        ``str.isascii()``), e.g. to hash the same bytes for a cache.

        Raises:
            ExpiredToken, InvalidToken: as :meth:`decode`.
        """
        if type(raw) is not bytes:
            raise InvalidToken("decode_ascii takes the token's bytes")
        if len(raw) > self._max_size:
            raise InvalidToken("token too large")
        head, signing_input, payload, signature = jws.segments(raw)
        key = self._verifiers.get(head)
        if key is None:
            key = self._key_for(jws.loads_segment(head))
            if len(self._verifiers) >= _HEADER_MEMO_SIZE:
                self._verifiers.clear()
            self._verifiers[head] = key
        if not key.key.verify_segment(signing_input, signature):
            raise InvalidToken("bad signature")
        return self._claims(jws.loads_strict(jws.decode_segment(payload)), now, verify_exp)

    def _key_for(self, header: dict[str, Any]) -> JwtKey:
        """The key a decoded JWS header names, or ``InvalidToken``."""
        # Header: only alg, typ, kid; typ at+jwt; kid picks the key; alg must be its alg.
        if not _HEADER_NAMES.issuperset(header):
            raise InvalidToken("header parameter outside alg, typ, kid")
        typ = header.get("typ")
        if typ != TOKEN_TYPE and (type(typ) is not str or typ.lower() not in _TYPES):
            raise InvalidToken("typ is not at+jwt")
        kid = header.get("kid")
        if kid is None:
            if "kid" in header:
                raise InvalidToken("kid is null")
            key = self._current
        elif type(kid) is not str or len(kid) > _MAX_KID:
            raise InvalidToken("malformed kid")
        else:
            found = self._by_kid.get(kid)
            if found is None:
                raise InvalidToken("unknown kid")
            key = found
        # JSON strings only ever equal strings: no type check needed for alg.
        if header.get("alg") != key.alg:
            raise InvalidToken("alg is not the key's algorithm")
        return key

    def _claims(self, payload: dict[str, Any], now: float, verify_exp: bool) -> AccessClaims:
        exp = payload.get("exp")
        iat = payload.get("iat")
        if (
            type(exp) is not int
            or type(iat) is not int
            or not 0 < iat < exp < _MAX_DATE
            or exp - iat > self._max_lifetime
        ):
            raise InvalidToken(_date_problem(exp, iat, self._max_lifetime))
        if "nbf" in payload:
            nbf = payload["nbf"]
            if type(nbf) is not int or not 0 < nbf < _MAX_DATE:
                raise InvalidToken("nbf must be a positive JSON integer")
            if nbf > now + self._leeway:
                raise InvalidToken("nbf is in the future")
        # JSON values are exact types: only a str can equal a str.
        if payload.get("iss") != self._issuer:
            raise InvalidToken("wrong issuer")
        aud = payload.get("aud")
        if aud != self._audience and (
            type(aud) is not list
            or self._audience not in aud
            or not all(type(a) is str for a in aud)
        ):
            raise InvalidToken("wrong audience")
        sub = payload.get("sub")
        if type(sub) is not str or not sub:
            raise InvalidToken("sub must be a non-empty string")
        jti = payload.get("jti")
        if type(jti) is not str or not jti:
            raise InvalidToken("jti must be a non-empty string")
        if "sid" in payload and (type(payload["sid"]) is not str or not payload["sid"]):
            raise InvalidToken("sid must be a non-empty string")
        scope = payload.get("scope")
        if scope is None:
            if "scope" in payload:
                raise InvalidToken("scope is null")
            scopes: frozenset[str] = _NO_SCOPES
        elif type(scope) is not str:
            raise InvalidToken("scope must be space-separated scope tokens")
        else:
            known = self._scope_sets.get(scope)
            if known is None:
                if _SCOPE_RE.fullmatch(scope) is None:
                    raise InvalidToken("scope must be space-separated scope tokens")
                known = frozenset(scope.split(" "))
                if len(self._scope_sets) >= _SCOPE_MEMO_SIZE:
                    self._scope_sets.clear()
                self._scope_sets[scope] = known
            scopes = known
        if iat > now + self._leeway:
            raise InvalidToken("iat is in the future")
        if verify_exp and now > exp + self._leeway:
            raise ExpiredToken("the access token has expired")
        # Read-only: verified claims are cached and shared between requests,
        # so an app writing to identity.claims must not change what the next
        # request with the same token sees.
        # tuple.__new__ directly: the named tuple's own __new__ is a Python
        # function around this same call, one more frame per verification.
        return _new_claims(AccessClaims, (sub, jti, iat, exp, scopes, MappingProxyType(payload)))

    def jwks(self) -> dict[str, Any]:
        """The public keys as a JWK Set (``{"keys": []}`` for HS256)."""
        return self._keys.jwks()

    def __repr__(self) -> str:
        return (
            f"AccessTokenCodec(algorithm={self._keys.algorithm!r}, issuer={self._issuer!r}, "
            f"audience={self._audience!r}, leeway={self._leeway})"
        )


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationError(f"{what} must be a mapping of claim names to JSON values")
    for name in value:
        if not isinstance(name, str) or not name:
            raise ValidationError(f"{what} names must be non-empty strings")
    return value


def _scope_string(scopes: Iterable[str]) -> str:
    if isinstance(scopes, (str, bytes)):
        raise ValidationError("scopes must be an iterable of scope strings, not one string")
    try:
        tokens = set(scopes)
    except TypeError:
        raise ValidationError("scopes must be an iterable of scope strings") from None
    for token in tokens:
        if not isinstance(token, str) or _SCOPE_TOKEN_RE.fullmatch(token) is None:
            raise ValidationError(f"invalid scope token {token!r} (RFC 6749 §3.3)")
    return " ".join(sorted(tokens))


def identity_from(claims: AccessClaims) -> Identity:
    """The :class:`~tokenware.identity.Identity` an access token proves."""
    return verified_identity(
        claims.subject,
        "jwt",
        claims.scopes,
        claims.token_id,
        claims.claims,
        float(claims.expires_at),
        False,
    )
