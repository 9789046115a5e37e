"""Refresh tokens: opaque, rotated on every use, grouped in families.

Token format (97 characters)::

    twr_ <family:22> <token id:22> <secret:43> <checksum:6>

All four parts are base62. The family id names the login the token belongs
to; its first four characters are a keyed tag of the subject, so the family
record and the subject's index always share one Redis Cluster hash slot. The
secret carries 256 bits. The checksum is the CRC32 of everything before it:
a mistyped or truncated token is refused with **zero** store calls.

Store layout (``{...}`` is the hash tag)::

    <prefix>:r:{<tag>}:f:<family>         the family record (JSON), TTL = refresh lifetime
    <prefix>:r:{<tag>}:u:<subject-mac>    set of the subject's family ids

The record holds the subject, scopes, claims and ``prolong`` flag of the
login, the *current* token (id, verifier, the ``jti`` of the access token
issued with it), the *previous* token (the same, plus ``rotated_at``) and a
bounded history of older token ids and verifiers. A verifier is
``kid$hex(HMAC-SHA256(sub-key, family NUL token_id NUL secret))``: no secret
is ever stored, and a dumped verifier is useless as a token.

Rules of :meth:`RefreshRules.refresh`, evaluated against one read of the
record and committed with ONE compare-and-set (an ``Equals`` guard on the
bytes that were read; a lost race re-reads and re-evaluates):

* bad format or checksum, unknown family, unknown token id, wrong secret:
  :class:`~tokenware.errors.RefreshTokenNotFound`, and nothing is revoked
  (a forged id or secret proves nothing);
* the family has expired (idle or absolute lifetime): it is deleted,
  ``RefreshTokenNotFound``;
* the current token: rotated; it becomes the previous token;
* the previous token within the grace window (its successor, the current
  token, is unused by construction): a retry after a lost response; the
  unused successor is discarded and a new one issued;
* any other known token (older, discarded, or previous after the grace):
  reuse; the family is deleted and
  :class:`~tokenware.errors.RefreshTokenReused` raised;
* with an access token (authomatic pairing): it must verify (expiry
  ignored), carry the family's subject and the ``jti`` issued with the
  presented refresh token, else :class:`~tokenware.errors.TokensMismatch`
  and nothing is consumed.
"""

from __future__ import annotations

import hmac
import logging
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tokenware.core.encoding import BASE62, Random, is_base62, json_bytes, json_load, random_base62
from tokenware.core.flow import Flow
from tokenware.core.ops import (
    Absent,
    Apply,
    Batch,
    Delete,
    Equals,
    Get,
    GetMany,
    Members,
    Present,
    Put,
    SetAdd,
    SetRemove,
)
from tokenware.errors import (
    ConfigurationError,
    InvalidToken,
    RefreshTokenNotFound,
    RefreshTokenReused,
    StoreError,
    StoreUnavailable,
    TokensMismatch,
    ValidationError,
)
from tokenware.keys import KeyRing

__all__ = [
    "REFRESH_PREFIX",
    "REFRESH_TOKEN_LENGTH",
    "AccessCodec",
    "Lifetimes",
    "RefreshRules",
    "TokenPair",
]

log = logging.getLogger("tokenware.jwt")

REFRESH_PREFIX = "twr_"
FAMILY_LENGTH = 22
TAG_LENGTH = 4
TOKEN_ID_LENGTH = 22
SECRET_LENGTH = 43  # 43 * log2(62) = 256.0 bits
CHECKSUM_LENGTH = 6  # 62**6 > 2**32
JTI_LENGTH = 22
REFRESH_TOKEN_LENGTH = (
    len(REFRESH_PREFIX) + FAMILY_LENGTH + TOKEN_ID_LENGTH + SECRET_LENGTH + CHECKSUM_LENGTH
)
MAX_SUBJECT_LENGTH = 512
#: Older tokens remembered per family for reuse detection; beyond this an
#: ancient token reads as unknown (``RefreshTokenNotFound``, no revocation).
HISTORY_LIMIT = 50
#: Compare-and-set rounds before a contended refresh gives up (503, retry).
CAS_ATTEMPTS = 64
#: The longest grace window allowed, in seconds.
MAX_GRACE = 60.0


# --- the access-token codec, as the refresh flows use it ---------------------


class AccessClaimsView(Protocol):
    """What the refresh flows read from a decoded access token."""

    @property
    def subject(self) -> str:
        """The ``sub`` claim."""

    @property
    def token_id(self) -> str:
        """The ``jti`` claim."""


class AccessCodec(Protocol):
    """Signs and verifies access tokens (:class:`tokenware.core.jwt.AccessTokenCodec`)."""

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
        """A signed access token."""

    def decode(self, token: str, *, now: float, verify_exp: bool = True) -> AccessClaimsView:
        """The verified claims of ``token``; raises ``InvalidToken``."""


# --- public data --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenPair:
    """An access token and the refresh token that renews it.

    The tokens are bearer secrets and never appear in ``repr``.

    Attributes:
        access_token: the signed access JWT (``Authorization: Bearer ...``).
        access_token_expires_at: its ``exp``, seconds since the epoch.
        refresh_token: the opaque ``twr_...`` token; use it once.
        refresh_token_expires_at: when the refresh token (its family, if
            not refreshed before) expires, seconds since the epoch.
        token_type: always ``"Bearer"`` (the OAuth ``token_type``).
    """

    access_token: str = field(repr=False)
    access_token_expires_at: float
    refresh_token: str = field(repr=False)
    refresh_token_expires_at: float
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret


@dataclass(frozen=True, slots=True, kw_only=True)
class Lifetimes:
    """Token lifetimes in seconds; the defaults follow authomatic.

    Attributes:
        access: access token lifetime (15 min).
        refresh: refresh lifetime: a family unused this long expires (25 min).
        prolonged_access: access lifetime with ``prolong=True`` (60 min).
        prolonged_refresh: refresh lifetime with ``prolong=True`` (7 days).
        absolute: longest life of a family however often it is refreshed
            (30 days); ``None`` for no limit.
        grace: how long the previous refresh token may be retried while
            its successor is unused (10 s, at most 60 s; 0 disables).
    """

    access: int = 15 * 60
    refresh: int = 25 * 60
    prolonged_access: int = 60 * 60
    prolonged_refresh: int = 7 * 24 * 3600
    absolute: int | None = 30 * 24 * 3600
    grace: float = 10.0

    def __post_init__(self) -> None:
        for name in ("access", "refresh", "prolonged_access", "prolonged_refresh", "absolute"):
            value = getattr(self, name)
            if value is None and name == "absolute":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigurationError(
                    f"{name} lifetime must be a positive whole number of seconds, got {value!r}"
                )
        grace = self.grace
        if isinstance(grace, bool) or not isinstance(grace, (int, float)):
            raise ConfigurationError(f"grace must be a number of seconds, got {grace!r}")
        if not 0 <= grace <= MAX_GRACE:
            raise ConfigurationError(f"grace must be between 0 and {MAX_GRACE:g} seconds")

    def for_login(self, prolong: bool) -> tuple[int, int]:
        """``(access, refresh)`` lifetimes for a normal or prolonged login."""
        if prolong:
            return self.prolonged_access, self.prolonged_refresh
        return self.access, self.refresh


# --- the token format ---------------------------------------------------------


def _checksum(text: str) -> str:
    value = zlib.crc32(text.encode("ascii"))
    out = []
    for _ in range(CHECKSUM_LENGTH):
        value, digit = divmod(value, 62)
        out.append(BASE62[digit])
    return "".join(reversed(out))


def format_refresh_token(family: str, token_id: str, secret: str) -> str:
    """The ``twr_...`` token of these parts, checksum appended."""
    body = REFRESH_PREFIX + family + token_id + secret
    return body + _checksum(body)


@dataclass(frozen=True, slots=True)
class _Parts:
    family: str
    token_id: str
    secret: str = field(repr=False)


def parse_refresh_token(token: object) -> _Parts | None:
    """The parts of a well-formed token, else ``None`` (decided without a store).

    Raises:
        ValidationError: ``token`` is not a string.
    """
    if not isinstance(token, str):
        raise ValidationError("refresh_token must be a string")
    if len(token) != REFRESH_TOKEN_LENGTH or not token.startswith(REFRESH_PREFIX):
        return None
    body = token[len(REFRESH_PREFIX) :]
    if not body.isascii() or not is_base62(body):
        return None
    if _checksum(token[:-CHECKSUM_LENGTH]) != token[-CHECKSUM_LENGTH:]:
        return None
    family = body[:FAMILY_LENGTH]
    token_id = body[FAMILY_LENGTH : FAMILY_LENGTH + TOKEN_ID_LENGTH]
    secret = body[FAMILY_LENGTH + TOKEN_ID_LENGTH : -CHECKSUM_LENGTH]
    return _Parts(family, token_id, secret)


# --- the family record ----------------------------------------------------------


@dataclass(slots=True)
class _Family:
    """A decoded family record (mutable only while a flow builds the next one)."""

    subject: str
    scopes: list[str]
    claims: dict[str, Any]
    prolong: bool
    created_at: float
    expires_at: float
    current: dict[str, Any]
    previous: dict[str, Any] | None
    history: list[list[str]]

    @classmethod
    def load(cls, raw: bytes) -> _Family:
        try:
            data = json_load(raw)
            family = cls(
                subject=str(data["sub"]),
                scopes=[str(s) for s in data["scopes"]],
                claims=dict(data["claims"]),
                prolong=bool(data["prolong"]),
                created_at=float(data["created_at"]),
                expires_at=float(data["expires_at"]),
                current=dict(data["cur"]),
                previous=None if data["prev"] is None else dict(data["prev"]),
                history=[[str(i), str(v)] for i, v in data["old"]],
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError("a refresh token family record in the store is corrupt") from exc
        return family

    def dump(self) -> bytes:
        return json_bytes(
            {
                "v": 1,
                "sub": self.subject,
                "scopes": self.scopes,
                "claims": self.claims,
                "prolong": self.prolong,
                "created_at": self.created_at,
                "expires_at": self.expires_at,
                "cur": self.current,
                "prev": self.previous,
                "old": self.history,
            },
            what="refresh token family",
        )

    def find(self, token_id: str) -> tuple[str, str] | None:
        """``(role, verifier)`` of a token id of this family, or ``None``."""
        if self.current.get("id") == token_id:
            return "current", str(self.current.get("ver", ""))
        if self.previous is not None and self.previous.get("id") == token_id:
            return "previous", str(self.previous.get("ver", ""))
        for old_id, verifier in self.history:
            if old_id == token_id:
                return "old", verifier
        return None


# --- the rules --------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RefreshRules:
    """The sans-I/O flows of the refresh-token families.

    Attributes:
        ring: the key ring (verifiers and key names).
        prefix: the store key prefix.
        codec: signs the access tokens and verifies paired ones.
        lifetimes: access, refresh, absolute and grace durations.
    """

    ring: KeyRing
    prefix: str
    codec: AccessCodec
    lifetimes: Lifetimes = field(default_factory=Lifetimes)

    # -- key names -------------------------------------------------------------

    def _tag(self, subject: str) -> str:
        mac = self.ring.name_mac("refresh-subject-tag", subject.encode("utf-8"))
        return "".join(BASE62[b % 62] for b in mac[:TAG_LENGTH])

    def family_key(self, family: str) -> str:
        """The store key of a family record."""
        return f"{self.prefix}:r:{{{family[:TAG_LENGTH]}}}:f:{family}"

    def index_key(self, subject: str, tag: str | None = None) -> str:
        """The store key of the set of ``subject``'s family ids.

        ``tag`` is the hash tag when the caller already knows it (the first
        characters of one of the subject's family ids).
        """
        mac = self.ring.name_mac("refresh-subject", subject.encode("utf-8")).hex()
        return f"{self.prefix}:r:{{{tag or self._tag(subject)}}}:u:{mac}"

    # -- verifiers ---------------------------------------------------------------

    @staticmethod
    def _material(family: str, token_id: str, secret: str) -> bytes:
        return f"{family}\x00{token_id}\x00{secret}".encode("ascii")

    def _verifier(self, family: str, token_id: str, secret: str) -> str:
        key = self.ring.current
        mac = self.ring.mac("refresh-verifier", self._material(family, token_id, secret), key=key)
        return f"{key.kid}${mac.hex()}"

    def _matches(self, verifier: str | None, parts: _Parts) -> bool:
        """Constant-time check; an unknown token or key id still costs one HMAC."""
        kid, _, expected = (verifier or "").partition("$")
        key = self.ring.get(kid) if verifier else None
        if key is None:
            key, expected = self.ring.current, ""
        material = self._material(parts.family, parts.token_id, parts.secret)
        mac = self.ring.mac("refresh-verifier", material, key=key).hex()
        return hmac.compare_digest(mac, expected)

    # -- validation --------------------------------------------------------------

    @staticmethod
    def _check_subject(subject: object) -> str:
        if not isinstance(subject, str) or not subject:
            raise ValidationError("subject must be a non-empty string")
        if len(subject) > MAX_SUBJECT_LENGTH:
            raise ValidationError(f"subject is longer than {MAX_SUBJECT_LENGTH} characters")
        return subject

    @staticmethod
    def _check_scopes(scopes: object) -> list[str]:
        if isinstance(scopes, (str, bytes)) or not isinstance(scopes, Iterable):
            raise ValidationError("scopes must be a sequence of strings, such as ('read',)")
        result = list(scopes)
        if not all(isinstance(s, str) and s for s in result):
            raise ValidationError("every scope must be a non-empty string")
        return result

    @staticmethod
    def _check_claims(claims: object) -> dict[str, Any]:
        if claims is None:
            return {}
        if not isinstance(claims, Mapping) or not all(isinstance(k, str) for k in claims):
            raise ValidationError("claims must be a mapping with string keys")
        data = dict(claims)
        json_bytes(data, what="claims")
        return data

    # -- helpers -------------------------------------------------------------------

    def _new_token(self, family: str, rand: Random) -> tuple[dict[str, Any], str]:
        """A fresh ``(entry, token)``; the entry's ``jti`` names its access token."""
        token_id = random_base62(TOKEN_ID_LENGTH, rand)
        secret = random_base62(SECRET_LENGTH, rand)
        entry = {
            "id": token_id,
            "ver": self._verifier(family, token_id, secret),
            "jti": random_base62(JTI_LENGTH, rand),
        }
        return entry, format_refresh_token(family, token_id, secret)

    def _pair(
        self, family_id: str, family: _Family, entry: dict[str, Any], token: str, *, now: float
    ) -> TokenPair:
        access_ttl, _ = self.lifetimes.for_login(family.prolong)
        access = self.codec.encode(
            family.subject,
            now=now,
            ttl=access_ttl,
            jti=str(entry["jti"]),
            scopes=family.scopes,
            claims=family.claims,
            extra={"sid": family_id},
        )
        return TokenPair(
            access_token=access,
            access_token_expires_at=int(now) + access_ttl,
            refresh_token=token,
            refresh_token_expires_at=family.expires_at,
        )

    def _expiry(self, family: _Family, now: float) -> float:
        _, refresh_ttl = self.lifetimes.for_login(family.prolong)
        expires_at = now + refresh_ttl
        if self.lifetimes.absolute is not None:
            expires_at = min(expires_at, family.created_at + self.lifetimes.absolute)
        return expires_at

    def _drop(self, family_id: str, family: _Family, raw: bytes) -> Batch:
        """Delete a family and its index entry, if it is still what was read."""
        key = self.family_key(family_id)
        return Batch(
            guards=(Equals(key, raw),),
            writes=(
                Delete(key),
                SetRemove(self.index_key(family.subject, family_id[:TAG_LENGTH]), family_id),
            ),
        )

    def _locate(self, parts: _Parts) -> Flow[tuple[_Family, bytes, str] | None]:
        """Read the family and prove possession: ``(family, raw, role)`` or ``None``."""
        raw = yield Get(self.family_key(parts.family))
        if raw is None:
            self._matches(None, parts)  # the same HMAC cost as a wrong secret
            return None
        family = _Family.load(raw)
        found = family.find(parts.token_id)
        # The HMAC runs even for an unknown token id: no timing difference.
        verified = self._matches(None if found is None else found[1], parts)
        if found is None or not verified:
            return None
        return family, raw, found[0]

    # -- flows ---------------------------------------------------------------------

    def issue(
        self,
        subject: str,
        *,
        scopes: Iterable[str] = (),
        claims: Mapping[str, Any] | None = None,
        prolong: bool = False,
        now: float,
        rand: Random,
    ) -> Flow[TokenPair]:
        """Start a family: a new access token and its first refresh token."""
        subject = self._check_subject(subject)
        scope_list = self._check_scopes(scopes)
        claim_map = self._check_claims(claims)
        tag = self._tag(subject)
        for _ in range(CAS_ATTEMPTS):
            family_id = tag + random_base62(FAMILY_LENGTH - TAG_LENGTH, rand)
            entry, token = self._new_token(family_id, rand)
            family = _Family(
                subject=subject,
                scopes=scope_list,
                claims=claim_map,
                prolong=bool(prolong),
                created_at=now,
                expires_at=now,
                current=entry,
                previous=None,
                history=[],
            )
            family.expires_at = self._expiry(family, now)
            pair = self._pair(family_id, family, entry, token, now=now)  # validates claims
            key = self.family_key(family_id)
            ttl = family.expires_at - now
            batch = Batch(
                guards=(Absent(key),),
                writes=(
                    Put(key, family.dump(), ttl),
                    SetAdd(self.index_key(subject, tag), family_id, ttl),
                ),
            )
            if (yield Apply(batch)):
                return pair
        # 107 random bits collided CAS_ATTEMPTS times: the random source is broken.
        raise StoreError("could not allocate a unique refresh token family id")

    def refresh(
        self, refresh_token: str, access_token: str | None = None, *, now: float, rand: Random
    ) -> Flow[TokenPair]:
        """Rotate ``refresh_token``: a new pair, in one compare-and-set."""
        parts = parse_refresh_token(refresh_token)
        if parts is None:
            raise RefreshTokenNotFound("malformed refresh token (format or checksum)")
        paired: AccessClaimsView | None = None
        if access_token is not None:
            if not isinstance(access_token, str):
                raise ValidationError("access_token must be a string or None")
            try:
                paired = self.codec.decode(access_token, now=now, verify_exp=False)
            except InvalidToken:
                raise TokensMismatch("the access token does not verify") from None
        for _ in range(CAS_ATTEMPTS):
            located = yield from self._locate(parts)
            if located is None:
                raise RefreshTokenNotFound("unknown refresh token or family")
            family, raw, role = located
            if now >= family.expires_at:
                yield Apply(self._drop(parts.family, family, raw))
                raise RefreshTokenNotFound("refresh token family expired")
            grace = self.lifetimes.grace
            # A clock behind the rotation (a racing request that read the
            # time first, or another server's skewed clock) gives a negative
            # age: count it as 0, or "age < 0" would be within a grace of 0
            # and a reused token would get a second pair instead of revoking.
            in_grace = (
                role == "previous"
                and family.previous is not None
                and max(0.0, now - float(family.previous.get("rotated_at", 0))) < grace
            )
            if role == "old" or (role == "previous" and not in_grace):
                if not (yield Apply(self._drop(parts.family, family, raw))):
                    continue
                log.warning(
                    "refresh token reuse detected: family %s revoked (token id %s)",
                    parts.family,
                    parts.token_id,
                )
                raise RefreshTokenReused("a rotated refresh token was reused; family revoked")
            presented = (
                family.previous if role == "previous" and family.previous else family.current
            )
            if paired is not None and not (
                paired.subject == family.subject
                and hmac.compare_digest(str(paired.token_id), str(presented.get("jti", "")))
            ):
                raise TokensMismatch("the access token does not belong to this refresh token")
            entry, token = self._new_token(parts.family, rand)
            if role == "current":
                if family.previous is not None:
                    family.history.append([family.previous["id"], family.previous["ver"]])
                family.previous = {**family.current, "rotated_at": now}
            else:
                # A retry within grace: the unused successor is discarded (kept
                # in the history, so presenting it later counts as reuse).
                family.history.append([family.current["id"], family.current["ver"]])
            family.history = family.history[-HISTORY_LIMIT:]
            family.current = entry
            family.expires_at = self._expiry(family, now)
            pair = self._pair(parts.family, family, entry, token, now=now)
            key = self.family_key(parts.family)
            ttl = family.expires_at - now
            batch = Batch(
                guards=(Equals(key, raw),),
                writes=(
                    Put(key, family.dump(), ttl),
                    SetAdd(
                        self.index_key(family.subject, parts.family[:TAG_LENGTH]),
                        parts.family,
                        ttl,
                    ),
                ),
            )
            if (yield Apply(batch)):
                return pair
        raise StoreUnavailable("refresh token family kept changing; retry", retry_after=1)

    def revoke(self, refresh_token: str, *, now: float) -> Flow[bool]:
        """Delete the family of ``refresh_token``; ``True`` if a live family was revoked.

        Any token of the family that verifies (current, previous or older)
        may revoke it. A malformed token costs no store call.
        """
        parts = parse_refresh_token(refresh_token)
        if parts is None:
            return False
        for _ in range(CAS_ATTEMPTS):
            located = yield from self._locate(parts)
            if located is None:
                return False
            family, raw, _ = located
            if (yield Apply(self._drop(parts.family, family, raw))):
                return now < family.expires_at
        raise StoreUnavailable("refresh token family kept changing; retry", retry_after=1)

    def revoke_all(self, subject: str, *, now: float) -> Flow[int]:
        """Delete every family of ``subject`` in one atomic batch; return how many were live.

        The families come from the subject's index set (never a key
        pattern), and all of them share the index's hash tag.
        """
        subject = self._check_subject(subject)
        tag = self._tag(subject)
        index = self.index_key(subject, tag)
        for _ in range(CAS_ATTEMPTS):
            members: Sequence[str] = sorted((yield Members(index)))
            ids = [m for m in members if self._valid_family(m) and m.startswith(tag)]
            if not members:
                return 0
            keys = tuple(self.family_key(i) for i in ids)
            raws: list[bytes | None] = list((yield GetMany(keys))) if keys else []
            live = 0
            guards: list[Present] = []
            for key, raw in zip(keys, raws, strict=True):
                if raw is not None:
                    guards.append(Present(key))
                    if now < _Family.load(raw).expires_at:
                        live += 1
            writes = tuple(Delete(k) for k in keys) + tuple(SetRemove(index, m) for m in members)
            if (yield Apply(Batch(guards=tuple(guards), writes=writes))):
                if live:
                    log.info("revoked %d refresh token families of one subject", live)
                return live
        raise StoreUnavailable("refresh token families kept changing; retry", retry_after=1)

    @staticmethod
    def _valid_family(family: str) -> bool:
        return len(family) == FAMILY_LENGTH and family.isascii() and is_base62(family)

    def family_live(self, family: str, *, now: float) -> Flow[bool]:
        """Whether the family ``family`` (an access token's ``sid``) is still live."""
        if not isinstance(family, str) or not self._valid_family(family):
            return False
        raw = yield Get(self.family_key(family))
        return raw is not None and now < _Family.load(raw).expires_at
