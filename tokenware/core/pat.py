"""Personal access tokens (the @access-tokens successor).

Token format (75 characters with the default prefix)::

    twp_ <token id:22> <secret:43> <checksum:6>

All parts are base62. The secret carries 256 bits from the injected random
source; the checksum is the CRC32 of everything before it, so a mistyped or
truncated token is refused with **zero** store calls. The prefix is
configurable and must end in ``_``.

Verifier at rest, a PHC string::

    $hmac-sha256$k=<kid>$<B64(token id)>$<B64(HMAC(pepper, "tw-pat-v1" NUL id NUL secret))>

The pepper is the ``pat-verifier`` sub-key of one root key of the ring; the
newest key writes and a verify under an older ``kid`` re-hashes with the
newest one. A 256-bit random secret cannot be guessed whatever the hash
speed, so a slow KDF would only add per-request cost (security.md §3.3).

Migration from @access-tokens: ``register`` accepts their
``$scrypt$ln=…,r=…,p=…$salt$hash`` strings, their ``pat_<21-char id>.<base64
secret>`` tokens verify against such a record (parameters capped before any
work: ``ln ≤ 17, r ≤ 8, p ≤ 2``), and the first success replaces the stored
verifier by the HMAC one.

Store layout (``{...}`` is the Redis Cluster hash tag)::

    <prefix>:p:{p<BB>}:r:<token id>        the record (JSON, no store TTL)
    <prefix>:p:{p<BB>}:a                   set of every token id of bucket BB
    <prefix>:p:{p<BB>}:o:<owner-mac>       set of the owner's token ids in bucket BB

``BB`` is one of :data:`BUCKETS` buckets, chosen by a keyed HMAC of the
token id. An owner can change (``update(owner=...)``) and imported ids are
arbitrary, so the tag cannot come from the owner as it does for sessions;
bucketing by id keeps a record and every index entry that names it in ONE
hash slot, so each write is one atomic store operation on Redis Cluster
too. Listing reads the :data:`BUCKETS` index sets of the bucket family
(global or one owner's), one slot per call, and never uses ``KEYS`` or
``SCAN``. Owner ids never appear in key names, only their keyed HMAC.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import math
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from tokenware.core.encoding import BASE62, Random, is_base62, json_bytes, json_load, random_base62
from tokenware.core.flow import Flow
from tokenware.core.ops import (
    Absent,
    Apply,
    Batch,
    Equals,
    Get,
    GetMany,
    Members,
    Put,
    SetAdd,
    SetRemove,
)
from tokenware.errors import (
    ConfigurationError,
    Conflict,
    NotFound,
    StoreError,
    StoreUnavailable,
    ValidationError,
)
from tokenware.keys import KeyRing, RootKey

__all__ = [
    "BUCKETS",
    "LEGACY_PREFIX",
    "PAT_PREFIX",
    "REASONS",
    "GeneratedPat",
    "IssuedPat",
    "PatRecord",
    "PatRules",
    "PatVerification",
]

log = logging.getLogger("tokenware.pats")

PAT_PREFIX = "twp_"
LEGACY_PREFIX = "pat_"
ID_LENGTH = 22
LEGACY_ID_LENGTH = 21
SECRET_LENGTH = 43  # 43 * log2(62) = 256.0 bits
CHECKSUM_LENGTH = 6  # 62**6 > 2**32
BODY_LENGTH = ID_LENGTH + SECRET_LENGTH + CHECKSUM_LENGTH
#: Longest @access-tokens token accepted (their own limit).
MAX_LEGACY_TOKEN_LENGTH = 200
MAX_PHC_LENGTH = 200
MAX_OWNER_LENGTH = 512
MAX_NAME_LENGTH = 200
MAX_ROLES = 50
#: Latest ``expires_at`` accepted: 9999-12-31T23:59:59Z.
MAX_TIMESTAMP = 253_402_300_799.0
#: ``last_used_at`` is written at most this often per token, in seconds.
TOUCH_INTERVAL = 60.0
#: Index buckets; fixed, since it names store keys.
BUCKETS = 16
#: Compare-and-set rounds before a contended write gives up.
CAS_ATTEMPTS = 16
#: Caps on imported scrypt parameters, checked before any work.
SCRYPT_MAX_LN = 17
SCRYPT_MAX_R = 8
SCRYPT_MAX_P = 2
SCRYPT_SALT_BYTES = (8, 64)
SCRYPT_HASH_BYTES = (16, 64)
HMAC_ALG = "hmac-sha256"
SCRYPT_ALG = "scrypt"
_PURPOSE = "pat-verifier"
_DOMAIN = b"tw-pat-v1\x00"

#: Every failure reason :meth:`PatRules.verify` can return, in check order.
REASONS = (
    "invalid_prefix",
    "invalid_format",
    "invalid_checksum",
    "not_found",
    "invalid_phc",
    "unsupported_algorithm",
    "invalid_parameters",
    "invalid_secret",
    "revoked",
    "expired",
)

_PREFIX = re.compile(r"[A-Za-z0-9]{1,16}_")
_ROLE = re.compile(r"[a-z0-9:._-]{1,100}")
_ALG = re.compile(r"[a-z0-9-]{1,32}")
_PARAM = re.compile(r"([a-z0-9-]{1,32})=([A-Za-z0-9/+.-]{1,64})")
_LEGACY_SECRET = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")
_DECIMAL = re.compile(r"[1-9][0-9]{0,2}")
_KID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


# --- public data ----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PatRecord:
    """A stored personal access token, without its verifier.

    Attributes:
        token_id: the public id (22 base62 characters, 21 for imported ones).
        owner: who the token acts for.
        is_admin: the admin flag.
        roles: granted roles, sorted, without duplicates.
        created_at: seconds since the epoch.
        last_used_at: last successful verify (updated at most once a minute).
        revoked_at: when it was revoked, or ``None``.
        expires_at: when it expires, or ``None`` (enforced in code).
        name: a free-text label, or ``None``.
    """

    token_id: str
    owner: str
    is_admin: bool
    roles: tuple[str, ...]
    created_at: float
    last_used_at: float | None
    revoked_at: float | None
    expires_at: float | None
    name: str | None


@dataclass(frozen=True, slots=True)
class IssuedPat:
    """A new token and its record; the token is shown this once and never stored."""

    token: str = field(repr=False)
    record: PatRecord


class GeneratedPat(NamedTuple):
    """``generate()``: a token, its id and the verifier to ``register``."""

    token: str
    token_id: str
    secret_phc: str


@dataclass(frozen=True, slots=True)
class PatVerification:
    """The result of ``verify``.

    Attributes:
        valid: true only when every check passed.
        record: the record when the secret was proven (also for ``revoked``
            and ``expired``), else ``None``. Never the stored verifier.
        reason: ``None`` when valid, else one of :data:`REASONS`.
    """

    valid: bool
    record: PatRecord | None
    reason: str | None


# --- the token format -------------------------------------------------------------


def checksum(text: str) -> str:
    """The 6-character base62 CRC32 of ``text``."""
    value = zlib.crc32(text.encode("ascii"))
    out = []
    for _ in range(CHECKSUM_LENGTH):
        value, digit = divmod(value, 62)
        out.append(BASE62[digit])
    return "".join(reversed(out))


def _b64(data: bytes) -> str:
    """PHC B64: standard alphabet, no padding."""
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes | None:
    """Strict PHC B64: canonical, standard alphabet, no padding; else ``None``."""
    if not text:
        return b""
    if "=" in text or len(text) % 4 == 1:
        return None
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return data if _b64(data) == text else None


@dataclass(frozen=True, slots=True)
class _Parsed:
    token_id: str
    secret: bytes = field(repr=False)  # the material the verifier covers
    legacy: bool


@dataclass(frozen=True, slots=True)
class _Phc:
    alg: str
    params: dict[str, str]
    salt: bytes
    digest: bytes = field(repr=False)


#: How many stored records :meth:`PatRules._parsed_record` remembers.
_RECORD_MEMO_SIZE = 1024


@dataclass(frozen=True, slots=True)
class _ParsedRecord:
    """A stored record as verify needs it: decoded, its verifier checked."""

    token_id: str
    record: PatRecord
    data: dict[str, Any] = field(repr=False)  # shared: copy before writing
    checked: str | tuple[_Phc, tuple[int, int, int] | RootKey] = field(repr=False)


def _parse_phc(phc: object) -> _Phc | str:
    """A structurally valid PHC string, else the failure reason."""
    if not isinstance(phc, str) or not phc.isascii() or len(phc) > MAX_PHC_LENGTH:
        return "invalid_phc"
    parts = phc.split("$")
    if len(parts) != 5 or parts[0]:
        return "invalid_phc"
    _, alg, raw_params, raw_salt, raw_digest = parts
    if not _ALG.fullmatch(alg):
        return "invalid_phc"
    if alg not in (HMAC_ALG, SCRYPT_ALG):
        return "unsupported_algorithm"
    params: dict[str, str] = {}
    for item in raw_params.split(",") if raw_params else ():
        match = _PARAM.fullmatch(item)
        if match is None or match.group(1) in params:
            return "invalid_phc"
        params[match.group(1)] = match.group(2)
    salt, digest = _unb64(raw_salt), _unb64(raw_digest)
    if salt is None or digest is None:
        return "invalid_phc"
    return _Phc(alg, params, salt, digest)


def _scrypt_params(phc: _Phc) -> tuple[int, int, int] | None:
    """``(ln, r, p)`` within the caps, with salt and hash sizes in range; else ``None``."""
    if set(phc.params) != {"ln", "r", "p"}:
        return None
    values = [phc.params[k] for k in ("ln", "r", "p")]
    if not all(_DECIMAL.fullmatch(v) for v in values):
        return None
    ln, r, p = (int(v) for v in values)
    if not (1 <= ln <= SCRYPT_MAX_LN and 1 <= r <= SCRYPT_MAX_R and 1 <= p <= SCRYPT_MAX_P):
        return None
    if not SCRYPT_SALT_BYTES[0] <= len(phc.salt) <= SCRYPT_SALT_BYTES[1]:
        return None
    if not SCRYPT_HASH_BYTES[0] <= len(phc.digest) <= SCRYPT_HASH_BYTES[1]:
        return None
    return ln, r, p


def _scrypt(secret: bytes, salt: bytes, ln: int, r: int, p: int, length: int) -> bytes:
    n = 1 << ln
    maxmem = 128 * r * (n + p + 2) + (1 << 20)
    return hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=length)


# --- validation -----------------------------------------------------------------------


def _utf8(text: str, what: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"{what} contains a lone surrogate, which is not UTF-8") from None


def check_owner(owner: object) -> str:
    """A valid owner, or ``ValidationError`` naming the field."""
    if not isinstance(owner, str) or not owner:
        raise ValidationError("owner must be a non-empty string")
    if len(owner) > MAX_OWNER_LENGTH:
        raise ValidationError(f"owner is longer than {MAX_OWNER_LENGTH} characters")
    _utf8(owner, "owner")
    return owner


def check_role(role: object, what: str = "roles") -> str:
    """One valid role (``[a-z0-9:._-]{1,100}``)."""
    if not isinstance(role, str) or not _ROLE.fullmatch(role):
        shown = repr(role) if len(repr(role)) <= 40 else repr(role)[:37] + "..."
        raise ValidationError(
            f"{what}: every role must be 1 to 100 characters of [a-z0-9:._-], got {shown}"
        )
    return role


def check_roles(roles: object, what: str = "roles") -> list[str]:
    """A sorted, duplicate-free list of at most :data:`MAX_ROLES` valid roles."""
    if isinstance(roles, (str, bytes, Mapping)) or not isinstance(roles, Iterable):
        raise ValidationError(f"{what} must be a list of strings, such as ['reader']")
    result = sorted({check_role(r, what) for r in roles})
    if len(result) > MAX_ROLES:
        raise ValidationError(f"{what}: at most {MAX_ROLES} roles, got {len(result)}")
    return result


def check_expires_at(value: object) -> float | None:
    """``None`` or a finite timestamp in seconds since the epoch."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(f"expires_at must be seconds since the epoch or None, got {value!r}")
    if not math.isfinite(value) or not 0 <= value <= MAX_TIMESTAMP:
        raise ValidationError(
            f"expires_at must be a finite time between 1970 and 9999, got {value!r}"
        )
    return float(value)


def check_is_admin(value: object) -> bool:
    """``True`` or ``False`` (no truthy strings)."""
    if not isinstance(value, bool):
        raise ValidationError(f"is_admin must be True or False, got {value!r}")
    return value


def check_name(value: object) -> str | None:
    """``None`` or a label of at most :data:`MAX_NAME_LENGTH` characters."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError("name must be a string or None")
    if len(value) > MAX_NAME_LENGTH:
        raise ValidationError(f"name is longer than {MAX_NAME_LENGTH} characters")
    _utf8(value, "name")
    return value


def valid_token_id(token_id: object) -> bool:
    """True for a 22-character (or imported 21-character) base62 id."""
    return (
        isinstance(token_id, str)
        and len(token_id) in (ID_LENGTH, LEGACY_ID_LENGTH)
        and token_id.isascii()
        and is_base62(token_id)
    )


def check_token_id(token_id: object) -> str:
    """A well-formed token id for ``register``, or ``ValidationError``."""
    if not valid_token_id(token_id):
        raise ValidationError("token_id must be 22 (or, imported, 21) base62 characters")
    return str(token_id)


class RolesChange(NamedTuple):
    """A validated ``roles`` argument of ``update``."""

    mode: str  # "replace", "add" or "remove"
    roles: list[str]


def check_roles_change(roles: object) -> RolesChange:
    """``roles`` of ``update``: a list (replace), ``{"add": [...]}`` or ``{"remove": [...]}``."""
    if isinstance(roles, Mapping):
        keys = set(roles)
        if keys == {"add", "remove"}:
            raise ValidationError("roles: pass {'add': [...]} or {'remove': [...]}, not both")
        if len(keys) != 1 or not keys <= {"add", "remove"}:
            raise ValidationError("roles must be a list, {'add': [...]} or {'remove': [...]}")
        (mode,) = keys
        if mode == "add":
            return RolesChange("add", check_roles(roles[mode], "roles.add"))
        # Removing roles that could never be stored is harmless, but still refused
        # so a typo such as "Admin" is reported instead of silently doing nothing.
        items = roles[mode]
        if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
            raise ValidationError("roles.remove must be a list of strings")
        return RolesChange("remove", sorted({check_role(r, "roles.remove") for r in items}))
    return RolesChange("replace", check_roles(roles))


# --- the rules ----------------------------------------------------------------------


def _epoch(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class PatRules:
    """The sans-I/O flows of personal access tokens.

    Attributes:
        ring: the key ring (peppers and key names).
        prefix: the store key prefix.
        token_prefix: the token prefix (``twp_``; letters and digits, ending in ``_``).
        legacy_prefix: the @access-tokens prefix accepted for migrated tokens
            (``pat_``), or ``None`` to refuse that format.
    """

    ring: KeyRing
    prefix: str
    token_prefix: str = PAT_PREFIX
    legacy_prefix: str | None = LEGACY_PREFIX
    # Stored record bytes -> what verify derives from them alone (see
    # _parsed_record); derived state, not configuration.
    _records: dict[bytes, _ParsedRecord] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for name in ("token_prefix", "legacy_prefix"):
            value = getattr(self, name)
            if value is None and name == "legacy_prefix":
                continue
            if not isinstance(value, str) or not _PREFIX.fullmatch(value):
                raise ConfigurationError(
                    f"{name} must be 1-16 letters or digits followed by '_', got {value!r}"
                )
        if self.legacy_prefix is not None and (
            self.legacy_prefix.startswith(self.token_prefix)
            or self.token_prefix.startswith(self.legacy_prefix)
        ):
            raise ConfigurationError("token_prefix and legacy_prefix must not overlap")

    # -- key names -----------------------------------------------------------------

    def bucket(self, token_id: str) -> int:
        """The index bucket of ``token_id``."""
        return self.ring.name_mac("pat-bucket", token_id.encode("ascii"))[0] % BUCKETS

    def _tag(self, bucket: int) -> str:
        return f"{self.prefix}:p:{{p{bucket:02d}}}"

    def record_key(self, token_id: str) -> str:
        """The store key of a token record."""
        return f"{self._tag(self.bucket(token_id))}:r:{token_id}"

    def all_key(self, bucket: int) -> str:
        """The store key of the set of every token id in ``bucket``."""
        return f"{self._tag(bucket)}:a"

    def owner_key(self, bucket: int, owner: str) -> str:
        """The store key of the set of ``owner``'s token ids in ``bucket``."""
        mac = self.ring.name_mac("pat-owner", owner.encode("utf-8")).hex()
        return f"{self._tag(bucket)}:o:{mac}"

    # -- the format ------------------------------------------------------------------

    @property
    def token_length(self) -> int:
        """Length of a token with the configured prefix (75 with ``twp_``)."""
        return len(self.token_prefix) + BODY_LENGTH

    def format_token(self, token_id: str, secret: str) -> str:
        """The token of these parts, checksum appended."""
        body = self.token_prefix + token_id + secret
        return body + checksum(body)

    def parse(self, token: object) -> _Parsed | str:
        """The parts of ``token``, else a failure reason, decided without a store.

        Raises:
            ValidationError: ``token`` is not a string.
        """
        if not isinstance(token, str):
            raise ValidationError("token must be a string")
        if token.startswith(self.token_prefix):
            if len(token) != self.token_length:
                return "invalid_format"
            body = token[len(self.token_prefix) :]
            if not body.isascii() or not is_base62(body):
                return "invalid_format"
            if checksum(token[:-CHECKSUM_LENGTH]) != token[-CHECKSUM_LENGTH:]:
                return "invalid_checksum"
            secret = body[ID_LENGTH : ID_LENGTH + SECRET_LENGTH]
            return _Parsed(body[:ID_LENGTH], secret.encode("ascii"), legacy=False)
        if self.legacy_prefix is not None and token.startswith(self.legacy_prefix):
            return self._parse_legacy(token[len(self.legacy_prefix) :], len(token))
        return "invalid_prefix"

    @staticmethod
    def _parse_legacy(rest: str, length: int) -> _Parsed | str:
        """``<21-char id>.<base64 secret>``; the secret must decode canonically.

        Standard or URL-safe alphabet, with or without padding, are accepted
        (@access-tokens accepted both); junk characters and non-canonical
        trailing bits are not (it accepted those too).
        """
        if length > MAX_LEGACY_TOKEN_LENGTH or not rest.isascii():
            return "invalid_format"
        parts = rest.split(".")
        if len(parts) != 2:
            return "invalid_format"
        token_id, text = parts
        if len(token_id) != LEGACY_ID_LENGTH or not is_base62(token_id):
            return "invalid_format"
        if not _LEGACY_SECRET.fullmatch(text):
            return "invalid_format"
        bare = text.rstrip("=").replace("-", "+").replace("_", "/")
        if text.endswith("=") and len(text) % 4:
            return "invalid_format"
        secret = _unb64(bare)
        if not secret:
            return "invalid_format"
        return _Parsed(token_id, secret, legacy=True)

    # -- verifiers -------------------------------------------------------------------

    @staticmethod
    def _material(token_id: str, secret: bytes) -> bytes:
        return _DOMAIN + token_id.encode("ascii") + b"\x00" + secret

    def _mac(self, token_id: str, secret: bytes, key: RootKey) -> bytes:
        return self.ring.mac(_PURPOSE, self._material(token_id, secret), key=key)

    def hmac_phc(self, token_id: str, secret: bytes) -> str:
        """The HMAC verifier of ``secret`` under the newest key."""
        key = self.ring.current
        mac = self._mac(token_id, secret, key)
        return f"${HMAC_ALG}$k={key.kid}${_b64(token_id.encode('ascii'))}${_b64(mac)}"

    def check_phc(self, phc: object, token_id: str) -> str | None:
        """The reason ``phc`` cannot verify a token of ``token_id``, or ``None``."""
        checked = self._checked_phc(phc, token_id)
        return checked if isinstance(checked, str) else None

    def _checked_phc(
        self, phc: object, token_id: str
    ) -> str | tuple[_Phc, tuple[int, int, int] | RootKey]:
        """``(phc, scrypt parameters or the HMAC key)``, or the failure reason."""
        parsed = _parse_phc(phc)
        if isinstance(parsed, str):
            return parsed
        if parsed.alg == SCRYPT_ALG:
            params = _scrypt_params(parsed)
            return "invalid_parameters" if params is None else (parsed, params)
        if set(parsed.params) != {"k"} or len(parsed.digest) != 32:
            return "invalid_parameters"
        if parsed.salt not in (b"", token_id.encode("ascii")):
            return "invalid_parameters"
        kid = parsed.params["k"]
        key = self.ring.get(kid) if _KID.fullmatch(kid) else None
        return "invalid_parameters" if key is None else (parsed, key)

    def _parsed_record(self, raw: bytes, token_id: str) -> _ParsedRecord:
        """The record in ``raw`` and its checked verifier, remembered by the bytes.

        Decoding the JSON record and parsing its PHC string were half of a
        verification, and a token's record changes at most once a minute
        (``last_used_at``) or when it is revoked: new bytes, a new entry. The
        entry holds nothing the store does not (and no secret); its ``data``
        is shared, so callers copy it before writing. Bounded, emptied when
        full.
        """
        memo = self._records
        hit = memo.get(raw)
        if hit is None or hit.token_id != token_id:
            record, data = self._decode(raw)
            hit = _ParsedRecord(
                token_id, record, data, self._checked_phc(data.get("phc"), token_id)
            )
            if len(memo) >= _RECORD_MEMO_SIZE:
                memo.clear()
            memo[raw] = hit
        return hit

    def _check_secret(
        self, parts: _Parsed, checked: str | tuple[_Phc, tuple[int, int, int] | RootKey]
    ) -> tuple[str | None, str | None]:
        """``(reason, new_phc)``: reason ``None`` when the secret matches.

        ``checked`` is :meth:`_checked_phc` of the stored verifier.
        ``new_phc`` is the verifier to write back: an HMAC one under the
        newest key, when the stored one is scrypt or names an older key.
        """
        if isinstance(checked, str):
            self._mac(parts.token_id, parts.secret, self.ring.current)  # same cost as a miss
            log.warning("stored verifier of personal access token %s: %s", parts.token_id, checked)
            return checked, None
        parsed, key = checked
        if not isinstance(key, RootKey):
            computed = _scrypt(parts.secret, parsed.salt, *key, len(parsed.digest))
            if not hmac.compare_digest(computed, parsed.digest):
                return "invalid_secret", None
            return None, self.hmac_phc(parts.token_id, parts.secret)
        if not hmac.compare_digest(self._mac(parts.token_id, parts.secret, key), parsed.digest):
            return "invalid_secret", None
        if key is not self.ring.current:
            return None, self.hmac_phc(parts.token_id, parts.secret)
        return None, None

    # -- records ---------------------------------------------------------------------

    @staticmethod
    def _decode(raw: bytes) -> tuple[PatRecord, dict[str, Any]]:
        try:
            data = json_load(raw)
            record = PatRecord(
                token_id=str(data["id"]),
                owner=str(data["owner"]),
                is_admin=bool(data["admin"]),
                roles=tuple(str(r) for r in data["roles"]),
                created_at=float(data["created_at"]),
                last_used_at=_epoch(data["last_used_at"]),
                revoked_at=_epoch(data["revoked_at"]),
                expires_at=_epoch(data["expires_at"]),
                name=None if data["name"] is None else str(data["name"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError("a personal access token record in the store is corrupt") from exc
        return record, data

    @staticmethod
    def _dump(data: Mapping[str, Any]) -> bytes:
        return json_bytes(dict(data), what="personal access token")

    def _load(self, token_id: object) -> Flow[tuple[PatRecord, dict[str, Any], bytes]]:
        if not isinstance(token_id, str):
            raise ValidationError("token_id must be a string")
        if not valid_token_id(token_id):
            raise NotFound("no such personal access token")
        raw = yield Get(self.record_key(token_id))
        if raw is None:
            raise NotFound("no such personal access token")
        record, data = self._decode(raw)
        return record, data, raw

    def _insert(self, data: dict[str, Any]) -> Batch:
        token_id = str(data["id"])
        bucket = self.bucket(token_id)
        key = self.record_key(token_id)
        return Batch(
            guards=(Absent(key),),
            writes=(
                Put(key, self._dump(data)),
                SetAdd(self.all_key(bucket), token_id),
                SetAdd(self.owner_key(bucket, str(data["owner"])), token_id),
            ),
        )

    @staticmethod
    def _new_data(
        token_id: str,
        phc: str,
        owner: str,
        *,
        is_admin: bool,
        roles: list[str],
        expires_at: float | None,
        name: str | None,
        now: float,
    ) -> dict[str, Any]:
        return {
            "v": 1,
            "id": token_id,
            "owner": owner,
            "admin": is_admin,
            "roles": roles,
            "created_at": now,
            "last_used_at": None,
            "revoked_at": None,
            "expires_at": expires_at,
            "name": name,
            "phc": phc,
        }

    # -- flows -------------------------------------------------------------------------

    def generate(self, token_id: str | None, *, rand: Random) -> GeneratedPat:
        """A new token, its id and its HMAC verifier; nothing is stored."""
        if token_id is None:
            token_id = random_base62(ID_LENGTH, rand)
        elif (
            not isinstance(token_id, str)
            or len(token_id) != ID_LENGTH
            or not token_id.isascii()
            or not is_base62(token_id)
        ):
            raise ValidationError(f"token_id must be {ID_LENGTH} base62 characters")
        secret = random_base62(SECRET_LENGTH, rand)
        return GeneratedPat(
            self.format_token(token_id, secret),
            token_id,
            self.hmac_phc(token_id, secret.encode("ascii")),
        )

    def issue(
        self,
        owner: str,
        *,
        is_admin: bool = False,
        roles: Iterable[str] = (),
        expires_at: float | None = None,
        name: str | None = None,
        now: float,
        rand: Random,
    ) -> Flow[IssuedPat]:
        """Create and store a token; the result is the only time it is known."""
        owner = check_owner(owner)
        admin = check_is_admin(is_admin)
        role_list = check_roles(roles)
        expiry = check_expires_at(expires_at)
        label = check_name(name)
        for _ in range(CAS_ATTEMPTS):
            token, token_id, phc = self.generate(None, rand=rand)
            data = self._new_data(
                token_id,
                phc,
                owner,
                is_admin=admin,
                roles=role_list,
                expires_at=expiry,
                name=label,
                now=now,
            )
            if (yield Apply(self._insert(data))):
                return IssuedPat(token, self._decode(self._dump(data))[0])
        # 131 random bits collided CAS_ATTEMPTS times: the random source is broken.
        raise StoreError("could not allocate a unique personal access token id")

    def register(
        self,
        token_id: str,
        secret_phc: str,
        owner: str,
        *,
        is_admin: bool = False,
        roles: Iterable[str] = (),
        expires_at: float | None = None,
        name: str | None = None,
        now: float,
    ) -> Flow[PatRecord]:
        """Store a token generated elsewhere (``generate`` or @access-tokens)."""
        token_id = check_token_id(token_id)
        reason = self.check_phc(secret_phc, token_id)
        if reason is not None:
            raise ValidationError(f"secret_phc is not a usable verifier ({reason})")
        data = self._new_data(
            token_id,
            secret_phc,
            check_owner(owner),
            is_admin=check_is_admin(is_admin),
            roles=check_roles(roles),
            expires_at=check_expires_at(expires_at),
            name=check_name(name),
            now=now,
        )
        if not (yield Apply(self._insert(data))):
            raise Conflict(f"token id already exists: {token_id}")
        return self._decode(self._dump(data))[0]

    def verify(self, token: str, *, now: float) -> Flow[PatVerification]:
        """Check ``token``: format, checksum, record, secret, revocation, expiry.

        One read in the common case; a compare-and-set writes
        ``last_used_at`` (at most once a minute) and any re-hashed verifier,
        and a lost race re-reads, so a verify never outlives a revoke.
        """
        parts = self.parse(token)
        if isinstance(parts, str):
            return PatVerification(False, None, parts)
        key = self.record_key(parts.token_id)
        for _ in range(CAS_ATTEMPTS):
            raw = yield Get(key)
            if raw is None:
                self._mac(parts.token_id, parts.secret, self.ring.current)  # a dummy HMAC
                return PatVerification(False, None, "not_found")
            parsed = self._parsed_record(raw, parts.token_id)
            record = parsed.record
            reason, new_phc = self._check_secret(parts, parsed.checked)
            if reason is not None:
                return PatVerification(False, None, reason)
            if record.revoked_at is not None:
                return PatVerification(False, record, "revoked")
            if record.expires_at is not None and record.expires_at <= now:
                return PatVerification(False, record, "expired")
            touch = record.last_used_at is None or now - record.last_used_at >= TOUCH_INTERVAL
            if not touch and new_phc is None:
                return PatVerification(True, record, None)
            data = dict(parsed.data)  # the memo's copy is shared
            if touch:
                data["last_used_at"] = now
            if new_phc is not None:
                data["phc"] = new_phc
            batch = Batch(guards=(Equals(key, raw),), writes=(Put(key, self._dump(data)),))
            if (yield Apply(batch)):
                if new_phc is not None:
                    log.info("re-hashed the verifier of personal access token %s", record.token_id)
                return PatVerification(True, self._decode(self._dump(data))[0], None)
        raise StoreUnavailable("personal access token record kept changing; retry", retry_after=1)

    def get(self, token_id: str) -> Flow[PatRecord]:
        """The record of ``token_id``; ``NotFound`` if unknown."""
        record, _, _ = yield from self._load(token_id)
        return record

    def _change(self, token_id: str, edit: Any, what: str) -> Flow[PatRecord]:
        """Read, ``edit(record, data) -> data or None`` and write back by CAS.

        ``edit`` returns ``None`` for "nothing to write" (idempotent no-ops).
        """
        for _ in range(CAS_ATTEMPTS):
            record, data, raw = yield from self._load(token_id)
            new = edit(record, dict(data))
            if new is None:
                return record
            key = self.record_key(record.token_id)
            writes: list[Put | SetAdd | SetRemove] = [Put(key, self._dump(new))]
            if new["owner"] != data["owner"]:
                bucket = self.bucket(record.token_id)
                old_index = self.owner_key(bucket, str(data["owner"]))
                writes.append(SetRemove(old_index, record.token_id))
                writes.append(SetAdd(self.owner_key(bucket, str(new["owner"])), record.token_id))
            if (yield Apply(Batch(guards=(Equals(key, raw),), writes=tuple(writes)))):
                return self._decode(self._dump(new))[0]
        raise StoreUnavailable(f"personal access token kept changing during {what}; retry")

    def update(self, token_id: str, changes: Mapping[str, Any]) -> Flow[PatRecord]:
        """Apply validated ``changes`` (``owner``, ``is_admin``, ``roles``, ``expires_at``)."""
        unknown = set(changes) - {"owner", "is_admin", "roles", "expires_at"}
        if unknown:
            raise ValidationError(f"unknown fields: {', '.join(sorted(unknown))}")
        fields: dict[str, Any] = {}
        if "owner" in changes:
            fields["owner"] = check_owner(changes["owner"])
        if "is_admin" in changes:
            fields["admin"] = check_is_admin(changes["is_admin"])
        if "expires_at" in changes:
            fields["expires_at"] = check_expires_at(changes["expires_at"])
        roles = check_roles_change(changes["roles"]) if "roles" in changes else None

        def edit(record: PatRecord, data: dict[str, Any]) -> dict[str, Any] | None:
            new = {**data, **fields}
            if roles is not None:
                current = set(data.get("roles", ()))
                if roles.mode == "add":
                    current |= set(roles.roles)
                elif roles.mode == "remove":
                    current -= set(roles.roles)
                else:
                    current = set(roles.roles)
                if len(current) > MAX_ROLES:
                    raise ValidationError(f"roles: at most {MAX_ROLES} roles, got {len(current)}")
                new["roles"] = sorted(current)
            return None if new == data else new

        return (yield from self._change(token_id, edit, "update"))

    def revoke(self, token_id: str, *, expires_at: float | None, now: float) -> Flow[PatRecord]:
        """Revoke now; idempotent. ``expires_at`` only ever brings the expiry earlier."""
        expiry = check_expires_at(expires_at)

        def edit(record: PatRecord, data: dict[str, Any]) -> dict[str, Any] | None:
            if record.revoked_at is not None:
                return None
            data["revoked_at"] = now
            if expiry is not None:
                current = record.expires_at
                data["expires_at"] = expiry if current is None else min(current, expiry)
            return data

        record = yield from self._change(token_id, edit, "revoke")
        log.info("personal access token %s revoked", record.token_id)
        return record

    def restore(self, token_id: str, *, now: float) -> Flow[PatRecord]:
        """Undo a revoke, keeping the expiry; idempotent; an expired token is refused."""

        def edit(record: PatRecord, data: dict[str, Any]) -> dict[str, Any] | None:
            if record.revoked_at is None:
                return None
            if record.expires_at is not None and record.expires_at <= now:
                raise Conflict("the token has expired and cannot be restored")
            data["revoked_at"] = None
            return data

        record = yield from self._change(token_id, edit, "restore")
        log.info("personal access token %s restored", record.token_id)
        return record

    # -- listing ------------------------------------------------------------------------

    def list_ids(self, owner: str | None, after: str | None) -> Flow[list[str]]:
        """Sorted token ids (of ``owner``, or all), greater than ``after``.

        Reads the :data:`BUCKETS` index sets, one hash slot per call.
        """
        ids: set[str] = set()
        for bucket in range(BUCKETS):
            key = self.all_key(bucket) if owner is None else self.owner_key(bucket, owner)
            ids.update((yield Members(key)))
        return sorted(i for i in ids if valid_token_id(i) and (after is None or i > after))

    def load_many(
        self, token_ids: Sequence[str], owner: str | None, has_role: str | None
    ) -> Flow[list[PatRecord]]:
        """The records of ``token_ids`` that still exist and match the filters, in order."""
        if not token_ids:
            return []
        raws = yield GetMany(tuple(self.record_key(i) for i in token_ids))
        found: list[PatRecord] = []
        for raw in raws:
            if raw is None:
                continue
            record, _ = self._decode(raw)
            if owner is not None and record.owner != owner:
                continue
            if has_role is not None and has_role not in record.roles:
                continue
            found.append(record)
        return found
