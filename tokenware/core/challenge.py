"""One-time challenges: email links and SMS codes (the ms-token successor).

A challenge is bound to an ``(action, id)`` pair, such as
``("verify-email", "ann@example.com")``. It holds a secret (a long link
secret sealed into a self-contained token, or a short code from
:mod:`secrets`), or none at all, plus JSON metadata. A newer challenge for the
same pair replaces the older one.

Store layout (``{...}`` is the Redis Cluster hash tag)::

    <prefix>:c:{<tag>}:r:<pair-mac>     the record (JSON), TTL = challenge ttl
    <prefix>:c:{<tag>}:t:<pair-mac>     the throttle lock, TTL = throttle
    <prefix>:c:{<tag>}:u:<uid-mac>      uid -> pair-mac pointer (regenerate=True)

``pair-mac`` is a keyed HMAC of ``[action, id]`` (JSON, so no separator can
make two pairs collide, unlike ms-token's ``!``), ``tag`` is four base62
characters of another keyed HMAC of the pair, and every ``uid`` starts with
that tag. So all keys of one challenge share one hash slot, and every write
is ONE atomic store operation.

Nothing secret or identifying is stored in clear: the record holds the action,
the id and uid *sealed* (AES-256-GCM, :mod:`tokenware.core.seal`, with the
pair-mac as associated data), and a keyed HMAC of ``[action, id, secret]``
instead of the secret. Codes are compared in constant time, in Python.

Rules, each decided against one read of the record and committed with one
compare-and-set (``Equals`` on the bytes read; a lost race re-reads):

* verify with the right secret: with ``erase`` the record, uid pointer and
  throttle lock are deleted together; without, ``verified`` is set once;
* a wrong code: ``attempts`` is incremented *before* the caller learns the
  answer; at ``max_attempts`` the challenge is burned and even the right
  code fails, with the same :class:`~tokenware.errors.InvalidToken`;
* a sealed token is unforgeable, so a stale one (its challenge was replaced
  or regenerated) is refused without spending an attempt;
* expiry is decided by the injected clock, whatever the store TTL says.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from tokenware.core.encoding import BASE62, Random, is_base62, json_bytes, json_load, random_base62
from tokenware.core.flow import Flow
from tokenware.core.ops import Absent, Apply, Batch, Delete, Equals, Get, Guard, Purge, Put, Write
from tokenware.core.seal import Sealer
from tokenware.errors import (
    Conflict,
    InvalidToken,
    NotFound,
    StoreError,
    Throttled,
    ValidationError,
)
from tokenware.keys import KeyRing

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "Challenge",
    "ChallengeInfo",
    "ChallengeRules",
    "ChallengeVerification",
    "SecretSpec",
]

TAG_LENGTH = 4
UID_LENGTH = 22
MAX_ACTION_LENGTH = 128
MAX_ID_LENGTH = 512
MAX_SECRET_INPUT = 4096
MIN_CODE_LENGTH = 4
MAX_CODE_LENGTH = 128
MAX_ALPHABET = 256
#: Wrong secrets a challenge survives by default; the next one burns it.
DEFAULT_MAX_ATTEMPTS = 5
MAX_ATTEMPTS_LIMIT = 100
#: Longest lifetime, in seconds (100 years), as for sessions.
MAX_TTL = 100 * 365 * 24 * 3600.0
#: Compare-and-set rounds before a contended verify gives up with ``Conflict``.
CAS_ATTEMPTS = 64
#: Characters of a default link secret: 43 base62 characters are 256 bits.
LINK_SECRET_LENGTH = 43
TOKEN_CONTEXT = b"tw-chal-v1"
RECORD_CONTEXT = b"tw-chal-rec-v1\x00"
SecretType = Literal["uuid", "number", "alphabet"]
_DIGITS = "0123456789"


@dataclass(frozen=True, slots=True, kw_only=True)
class SecretSpec:
    """How a challenge secret is made.

    Attributes:
        type: ``"uuid"`` (a random UUID 4), ``"number"`` (``length`` digits)
            or ``"alphabet"`` (``length`` characters of ``alphabet``).
        length: code length for ``number`` and ``alphabet`` (4 to 128).
        alphabet: the characters of an ``alphabet`` code (2 to 256 distinct,
            printable, no whitespace).
        encrypt: seal the secret, action, id and uid into one URL-safe token
            (default: ``True`` for ``uuid``, ``False`` for codes).
    """

    type: SecretType
    length: int | None = None
    alphabet: str | None = None
    encrypt: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        """The spec as the JSON object stored with a challenge."""
        out: dict[str, Any] = {"type": self.type, "encrypt": bool(self.encrypt)}
        if self.length is not None:
            out["length"] = self.length
        if self.alphabet is not None:
            out["alphabet"] = self.alphabet
        return out


#: ``secret=True``: 256 random bits, sealed into a token.
LINK_SPEC = SecretSpec(type="alphabet", length=LINK_SECRET_LENGTH, alphabet=BASE62, encrypt=True)


@dataclass(frozen=True, slots=True)
class Challenge:
    """A new challenge as :meth:`create` returns it.

    Attributes:
        id: who it is for (an email address, a phone number, a user id).
        action: what it is for (``"verify-email"``, ``"reset-password"``).
        uid: a handle for ``regenerate``/``info``/``remove`` (only with
            ``regenerate=True``), else ``None``.
        secret: what to send to the user: a sealed token, or a plain code;
            ``None`` for a secret-less challenge. Shown this once.
    """

    id: str
    action: str
    uid: str | None
    secret: str | None = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChallengeInfo:
    """What is stored about a challenge (never its secret).

    Attributes:
        id, action, uid: as in :class:`Challenge`.
        settings: the secret spec, or ``None`` for a secret-less challenge.
        metadata: the JSON value given to ``create``.
        created: seconds since the epoch.
        expires_at: seconds since the epoch, or ``None``.
        verified: when first verified (``erase=False``), else ``None``.
        attempts: wrong secrets so far.
        max_attempts: wrong secrets that burn the challenge.
    """

    id: str
    action: str
    uid: str | None
    settings: SecretSpec | None
    metadata: Any
    created: float
    expires_at: float | None
    verified: float | None
    attempts: int
    max_attempts: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ChallengeVerification:
    """A successful verification.

    Attributes:
        id, action, uid: as in :class:`Challenge`.
        settings: the secret spec (no secret), or ``None``.
        metadata: the JSON value given to ``create``.
        created: seconds since the epoch.
        verified: when the challenge was first verified.
        is_first_verification: ``False`` when an ``erase=False`` verification
            came before.
    """

    id: str
    action: str
    uid: str | None
    settings: SecretSpec | None
    metadata: Any
    created: float
    verified: float
    is_first_verification: bool


@dataclass(frozen=True, slots=True)
class _Loaded:
    """One read of a record: the raw bytes, the decoded JSON, the opened ids."""

    raw: bytes
    data: dict[str, Any]
    id: str
    uid: str | None


def random_code(alphabet: str, length: int, rand: Random) -> str:
    """``length`` uniformly random characters of ``alphabet`` (rejection sampling)."""
    n = len(alphabet)
    limit = 256 - 256 % n
    out: list[str] = []
    while len(out) < length:
        for byte in rand(length - len(out) + 8):
            if byte < limit:
                out.append(alphabet[byte % n])
                if len(out) == length:
                    break
    return "".join(out)


def random_uuid4(rand: Random) -> str:
    """A version-4 UUID string from ``rand`` (122 random bits)."""
    raw = bytearray(rand(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"{what} contains a lone surrogate, which is not UTF-8") from None


def _is_utf8(text: str) -> bool:
    """False for a string with a lone surrogate, which cannot be UTF-8 encoded."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_name(value: object, what: str, limit: int) -> str:
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{what} must be a non-empty string")
    if len(value) > limit:
        raise ValidationError(f"{what} is longer than {limit} characters")
    _utf8(value, what)
    return value


def _check_seconds(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValidationError(f"{what} must be a positive number of seconds, got {value!r}")
    if value != value or value == float("inf"):
        raise ValidationError(f"{what} must be finite")
    if value > MAX_TTL:
        raise ValidationError(f"{what} must be at most {MAX_TTL:.0f} seconds")
    return float(value)


def check_spec(secret: object) -> SecretSpec | None:
    """The :class:`SecretSpec` for ``create``'s ``secret`` argument, validated."""
    if secret is True:
        return LINK_SPEC
    if secret is False:
        return None
    if isinstance(secret, SecretSpec):
        raw: dict[str, Any] = {
            "type": secret.type,
            "length": secret.length,
            "alphabet": secret.alphabet,
            "encrypt": secret.encrypt,
        }
    elif isinstance(secret, Mapping):
        unknown = sorted(
            str(k) for k in secret if k not in ("type", "length", "alphabet", "encrypt")
        )
        if unknown:
            raise ValidationError(f"secret.{unknown[0]} is not a known option")
        raw = dict(secret)
    else:
        raise ValidationError("secret must be True, False, a SecretSpec or a spec mapping")
    kind = raw.get("type")
    length = raw.get("length")
    alphabet = raw.get("alphabet")
    encrypt = raw.get("encrypt")
    if kind not in ("uuid", "number", "alphabet"):
        raise ValidationError('secret.type must be "uuid", "number" or "alphabet"')
    if encrypt is not None and not isinstance(encrypt, bool):
        raise ValidationError("secret.encrypt must be a boolean")
    if kind == "uuid":
        if length is not None:
            raise ValidationError("secret.length is not allowed for a uuid secret")
        if alphabet is not None:
            raise ValidationError("secret.alphabet is not allowed for a uuid secret")
        return SecretSpec(type="uuid", encrypt=True if encrypt is None else encrypt)
    if isinstance(length, bool) or not isinstance(length, int):
        raise ValidationError(f"secret.length must be an integer for a {kind} secret")
    if not MIN_CODE_LENGTH <= length <= MAX_CODE_LENGTH:
        raise ValidationError(
            f"secret.length must be between {MIN_CODE_LENGTH} and {MAX_CODE_LENGTH}"
        )
    if kind == "number":
        if alphabet is not None:
            raise ValidationError("secret.alphabet is not allowed for a number secret")
        return SecretSpec(type="number", length=length, encrypt=bool(encrypt))
    if not isinstance(alphabet, str):
        raise ValidationError("secret.alphabet must be a string for an alphabet secret")
    if not 2 <= len(alphabet) <= MAX_ALPHABET:
        raise ValidationError(f"secret.alphabet must have 2 to {MAX_ALPHABET} characters")
    if len(set(alphabet)) != len(alphabet):
        raise ValidationError("secret.alphabet must not repeat a character")
    if any(not c.isprintable() or c.isspace() for c in alphabet):
        raise ValidationError("secret.alphabet must be printable characters without whitespace")
    _utf8(alphabet, "secret.alphabet")
    return SecretSpec(type="alphabet", length=length, alphabet=alphabet, encrypt=bool(encrypt))


def _spec_from(data: object) -> SecretSpec | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise StoreError("a challenge record in the store is corrupt")
    return SecretSpec(
        type=data["type"],
        length=data.get("length"),
        alphabet=data.get("alphabet"),
        encrypt=bool(data.get("encrypt")),
    )


def _generate(spec: SecretSpec, rand: Random) -> str:
    if spec.type == "uuid":
        return random_uuid4(rand)
    alphabet = _DIGITS if spec.type == "number" else str(spec.alphabet)
    return random_code(alphabet, int(spec.length or 0), rand)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChallengeRules:
    """Everything the challenge flows need besides the store.

    Attributes:
        ring: the key ring (verifiers, sealing and key names).
        prefix: the store key prefix.
        rand: source of random bytes (codes, uids, nonces).
    """

    ring: KeyRing
    prefix: str
    rand: Random

    @property
    def sealer(self) -> Sealer:
        """The AES-256-GCM sealer over this ring."""
        return Sealer(self.ring, self.rand)

    # -- key names -----------------------------------------------------------

    def _pair(self, action: str, id: str) -> tuple[str, str]:
        """``(tag, pair-mac)`` of ``(action, id)``."""
        data = json_bytes([action, id], what="id")
        tag_mac = self.ring.name_mac("challenge-tag", data)
        tag = "".join(BASE62[b % 62] for b in tag_mac[:TAG_LENGTH])
        return tag, self.ring.name_mac("challenge-pair", data).hex()

    def _record_key(self, tag: str, pair: str) -> str:
        return f"{self.prefix}:c:{{{tag}}}:r:{pair}"

    def _throttle_key(self, tag: str, pair: str) -> str:
        return f"{self.prefix}:c:{{{tag}}}:t:{pair}"

    def _uid_key(self, uid: str) -> str:
        mac = self.ring.name_mac("challenge-uid", uid.encode("ascii")).hex()
        return f"{self.prefix}:c:{{{uid[:TAG_LENGTH]}}}:u:{mac}"

    @staticmethod
    def _valid_uid(uid: object) -> str | None:
        if not isinstance(uid, str):
            raise ValidationError("uid must be a string")
        if len(uid) != UID_LENGTH or not uid.isascii() or not is_base62(uid):
            return None
        return uid

    # -- secrets ---------------------------------------------------------------

    def _verifier(self, action: str, id: str, secret: str) -> str:
        key = self.ring.current
        data = json_bytes([action, id, secret], what="secret")
        return f"{key.kid}${self.ring.mac('challenge-code', data, key=key).hex()}"

    def _secret_matches(self, verifier: str, action: str, id: str, secret: str) -> bool:
        kid, _, expected = verifier.partition("$")
        key = self.ring.get(kid)
        if key is None:
            key, expected = self.ring.current, ""
        data = json_bytes([action, id, secret], what="secret")
        mac = self.ring.mac("challenge-code", data, key=key).hex()
        return hmac.compare_digest(mac, expected)

    def _seal_token(self, action: str, id: str, uid: str | None, secret: str) -> str:
        payload = json_bytes({"a": action, "i": id, "u": uid, "s": secret}, what="token")
        return self.sealer.seal(payload, TOKEN_CONTEXT)

    def open_token(self, token: object) -> tuple[str, str, str | None, str]:
        """``(action, id, uid, secret)`` of a sealed token; ``InvalidToken`` otherwise."""
        if not isinstance(token, str):
            raise ValidationError("token must be a string")
        plain = self.sealer.open(token, TOKEN_CONTEXT)
        try:
            data = json_load(plain)
            action, id, uid, secret = data["a"], data["i"], data["u"], data["s"]
        except (ValueError, KeyError, TypeError):
            raise InvalidToken("challenge token: bad payload") from None
        if not (
            isinstance(action, str)
            and isinstance(id, str)
            and isinstance(secret, str)
            and (uid is None or isinstance(uid, str))
            and _is_utf8(action + id + secret + (uid or ""))
        ):
            raise InvalidToken("challenge token: bad payload")
        return action, id, uid, secret

    # -- records -------------------------------------------------------------

    def _decode(self, raw: bytes, pair: str) -> _Loaded:
        try:
            data = json_load(raw)
            who = json_load(self.sealer.open(data["who"], RECORD_CONTEXT + pair.encode("ascii")))
            loaded = _Loaded(raw=raw, data=data, id=str(who["i"]), uid=who["u"])
        except (ValueError, KeyError, TypeError, InvalidToken) as exc:
            raise StoreError("a challenge record in the store is corrupt") from exc
        return loaded

    def _load(self, tag: str, pair: str, now: float) -> Flow[_Loaded | None]:
        raw = yield Get(self._record_key(tag, pair))
        if raw is None:
            return None
        loaded = self._decode(raw, pair)
        expires = loaded.data.get("expires")
        if expires is not None and now >= expires:
            return None  # expired by the clock, whatever the store TTL says
        return loaded

    def _locate(
        self, *, uid: object, action: object, id: object, token: object, now: float
    ) -> Flow[tuple[str, str, str, _Loaded | None, str | None]]:
        """Resolve exactly one selector to ``(tag, pair, action, loaded, token_secret)``."""
        given = [uid is not None, action is not None or id is not None, token is not None]
        if sum(given) != 1:
            raise ValidationError("pass exactly one of uid, action and id, or token")
        if token is not None:
            t_action, t_id, _, t_secret = self.open_token(token)
            tag, pair = self._pair(t_action, t_id)
            loaded = yield from self._load(tag, pair, now=now)
            return tag, pair, t_action, loaded, t_secret
        if uid is not None:
            valid = self._valid_uid(uid)
            if valid is None:
                raise NotFound("no such challenge")
            target = yield Get(self._uid_key(valid))
            if target is None:
                raise NotFound("no such challenge")
            pair = target.decode("ascii", "replace")
            tag = valid[:TAG_LENGTH]
            loaded = yield from self._load(tag, pair, now=now)
            if loaded is None or loaded.uid != valid:
                raise NotFound("no such challenge")
            return tag, pair, str(loaded.data["action"]), loaded, None
        a = _check_name(action, "action", MAX_ACTION_LENGTH)
        i = _check_name(id, "id", MAX_ID_LENGTH)
        tag, pair = self._pair(a, i)
        loaded = yield from self._load(tag, pair, now=now)
        return tag, pair, a, loaded, None

    def _info(self, loaded: _Loaded) -> ChallengeInfo:
        d = loaded.data
        return ChallengeInfo(
            id=loaded.id,
            action=d["action"],
            uid=loaded.uid,
            settings=_spec_from(d.get("settings")),
            metadata=d.get("metadata"),
            created=d["created"],
            expires_at=d.get("expires"),
            verified=d.get("verified"),
            attempts=int(d.get("attempts", 0)),
            max_attempts=int(d.get("max_attempts", DEFAULT_MAX_ATTEMPTS)),
        )

    def _keys_of(self, tag: str, pair: str, data: Mapping[str, Any]) -> list[str]:
        keys = [self._record_key(tag, pair)]
        ptr = data.get("ptr")
        if isinstance(ptr, str):
            keys.append(f"{self.prefix}:c:{{{tag}}}:u:{ptr}")
        return keys

    # -- flows -----------------------------------------------------------------

    def create(
        self,
        action: str,
        id: str,
        *,
        ttl: float | None = None,
        throttle: float | bool | None = None,
        metadata: Any = None,
        secret: object = True,
        regenerate: bool = False,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        now: float,
    ) -> Flow[Challenge]:
        """Create (or replace) the challenge for ``(action, id)``."""
        action = _check_name(action, "action", MAX_ACTION_LENGTH)
        id = _check_name(id, "id", MAX_ID_LENGTH)
        lifetime = None if ttl is None else _check_seconds(ttl, "ttl")
        lock: float | None
        if throttle is None or throttle is False:
            lock = None
        elif lifetime is None:
            raise ValidationError("throttle requires ttl")
        elif throttle is True:
            lock = lifetime
        else:
            lock = _check_seconds(throttle, "throttle")
            if lock > lifetime:
                raise ValidationError("throttle must not exceed ttl")
        try:
            meta_bytes = json_bytes(metadata, what="metadata")
        except UnicodeEncodeError:
            raise ValidationError(
                "metadata contains a lone surrogate, which is not UTF-8"
            ) from None
        meta = json_load(meta_bytes)
        spec = check_spec(secret)
        if not isinstance(regenerate, bool):
            raise ValidationError("regenerate must be a boolean")
        if regenerate and spec is None:
            raise ValidationError(
                "regenerate needs a secret (secret=False has nothing to regenerate)"
            )
        if (
            isinstance(max_attempts, bool)
            or not isinstance(max_attempts, int)
            or not 1 <= max_attempts <= MAX_ATTEMPTS_LIMIT
        ):
            raise ValidationError(f"max_attempts must be an integer from 1 to {MAX_ATTEMPTS_LIMIT}")

        tag, pair = self._pair(action, id)
        record_key = self._record_key(tag, pair)
        throttle_key = self._throttle_key(tag, pair)
        for _ in range(CAS_ATTEMPTS):
            raw_lock = yield Get(throttle_key)
            guards: list[Guard] = []
            writes: list[Write] = []
            if raw_lock is not None:
                try:
                    until = float(json_load(raw_lock)["until"])
                except (ValueError, KeyError, TypeError) as exc:
                    raise StoreError("a challenge throttle lock is corrupt") from exc
                if until > now:
                    raise Throttled("challenge throttled", retry_after=until - now)
                # Expired by the clock, not yet by the store: replace it.
                guards.append(Equals(throttle_key, raw_lock))
                if lock is None:
                    writes.append(Delete(throttle_key))
            else:
                guards.append(Absent(throttle_key))
            raw_old = yield Get(record_key)
            if raw_old is None:
                guards.append(Absent(record_key))
            else:
                guards.append(Equals(record_key, raw_old))
                try:
                    old = json_load(raw_old)
                except ValueError as exc:
                    raise StoreError("a challenge record in the store is corrupt") from exc
                writes.extend(Delete(k) for k in self._keys_of(tag, pair, old)[1:])
            uid = tag + random_base62(UID_LENGTH - TAG_LENGTH, self.rand) if regenerate else None
            plain = None if spec is None else _generate(spec, self.rand)
            who = json_bytes({"i": id, "u": uid}, what="id")
            record = {
                "v": 1,
                "action": action,
                "who": self.sealer.seal(who, RECORD_CONTEXT + pair.encode("ascii")),
                "ptr": None,
                "created": now,
                "expires": None if lifetime is None else now + lifetime,
                "settings": None if spec is None else spec.as_dict(),
                "verifier": None if plain is None else self._verifier(action, id, plain),
                "attempts": 0,
                "max_attempts": max_attempts,
                "metadata": meta,
                "verified": None,
            }
            if uid is not None:
                uid_key = self._uid_key(uid)
                record["ptr"] = uid_key.rpartition(":")[2]
                guards.append(Absent(uid_key))
                writes.append(Put(uid_key, pair.encode("ascii"), lifetime))
            writes.append(Put(record_key, json_bytes(record, what="challenge"), lifetime))
            if lock is not None:
                until_b = json_bytes({"until": now + lock}, what="throttle")
                writes.append(Put(throttle_key, until_b, lock))
            if (yield Apply(Batch(guards=tuple(guards), writes=tuple(writes)))):
                shown = plain
                if plain is not None and spec is not None and spec.encrypt:
                    shown = self._seal_token(action, id, uid, plain)
                return Challenge(id=id, action=action, uid=uid, secret=shown)
        raise Conflict("the challenge kept changing; gave up after retries")

    def verify(
        self,
        token: str | None = None,
        *,
        action: str | None = None,
        id: str | None = None,
        secret: str | None = None,
        erase: bool = True,
        control: Mapping[str, Any] | None = None,
        now: float,
    ) -> Flow[ChallengeVerification]:
        """Check a challenge's secret; with ``erase``, consume it atomically."""
        sealed = False
        if token is not None:
            if action is not None or id is not None or secret is not None:
                raise ValidationError("pass token, or action, id and secret; not both")
            action, id, _, secret = self.open_token(token)
            sealed = True
        else:
            action = _check_name(action, "action", MAX_ACTION_LENGTH)
            id = _check_name(id, "id", MAX_ID_LENGTH)
            if secret is not None and not isinstance(secret, str):
                raise ValidationError("secret must be a string")
        if not isinstance(erase, bool):
            raise ValidationError("erase must be a boolean")
        if control is not None:
            if not isinstance(control, Mapping):
                raise ValidationError("control must be a mapping with id and/or action")
            unknown = [k for k in control if k not in ("id", "action")]
            if unknown:
                raise ValidationError(f"control.{unknown[0]} is not a known check")
            for name, actual in (("id", id), ("action", action)):
                if name in control and control[name] != actual:
                    raise InvalidToken(f"challenge: control check failed for {name}")
        if secret is not None and len(secret) > MAX_SECRET_INPUT:
            raise InvalidToken("challenge: secret too long")
        if secret is not None and not _is_utf8(secret):
            # A lone surrogate matches no code; it used to escape as UnicodeEncodeError.
            raise InvalidToken("challenge: secret is not valid Unicode")
        tag, pair = self._pair(action, id)
        record_key = self._record_key(tag, pair)
        for _ in range(CAS_ATTEMPTS):
            loaded = yield from self._load(tag, pair, now)
            if loaded is None:
                raise NotFound("no such challenge (expired, replaced or already used)")
            d = loaded.data
            attempts = int(d.get("attempts", 0))
            limit = int(d.get("max_attempts", DEFAULT_MAX_ATTEMPTS))
            if attempts >= limit:
                raise InvalidToken("challenge: burned by too many wrong secrets")
            verifier = d.get("verifier")
            spec = _spec_from(d.get("settings"))
            candidate = secret
            counts = True  # does a mismatch spend an attempt?
            if verifier is None:
                if secret is not None:
                    raise InvalidToken("challenge: this challenge has no secret")
                ok = True
            else:
                if candidate is None:
                    raise InvalidToken("challenge: a secret is required")
                if not sealed and spec is not None and spec.encrypt:
                    # The caller was given a sealed token: open it.
                    t_action, t_id, _, inner = self.open_token(candidate)
                    if (t_action, t_id) != (action, id):
                        raise InvalidToken("challenge: token is for another challenge")
                    candidate, sealed = inner, True
                # An authentic sealed token cannot be a guess: a mismatch
                # means it is stale (replaced or regenerated).
                counts = not sealed
                ok = self._secret_matches(str(verifier), action, id, candidate)
            if not ok:
                if not counts:
                    raise InvalidToken("challenge: stale token")
                d["attempts"] = attempts + 1
                batch = Batch(
                    guards=(Equals(record_key, loaded.raw),),
                    writes=(Put(record_key, json_bytes(d, what="challenge"), keep_ttl=True),),
                )
                if (yield Apply(batch)):
                    raise InvalidToken("challenge: wrong secret")
                continue
            first = d.get("verified") is None
            verified = now if first else float(d["verified"])
            if erase:
                writes: list[Write] = [Delete(k) for k in self._keys_of(tag, pair, d)]
                writes.append(Delete(self._throttle_key(tag, pair)))
                batch = Batch(guards=(Equals(record_key, loaded.raw),), writes=tuple(writes))
                if not (yield Apply(batch)):
                    continue
            elif first:
                d["verified"] = now
                batch = Batch(
                    guards=(Equals(record_key, loaded.raw),),
                    writes=(Put(record_key, json_bytes(d, what="challenge"), keep_ttl=True),),
                )
                if not (yield Apply(batch)):
                    continue
            return ChallengeVerification(
                id=loaded.id,
                action=str(d["action"]),
                uid=loaded.uid,
                settings=spec,
                metadata=d.get("metadata"),
                created=d["created"],
                verified=verified,
                is_first_verification=first,
            )
        raise Conflict("the challenge kept changing; gave up after retries")

    def info(
        self,
        *,
        uid: str | None = None,
        action: str | None = None,
        id: str | None = None,
        token: str | None = None,
        now: float,
    ) -> Flow[ChallengeInfo]:
        """What is stored about a challenge; ``NotFound`` if missing."""
        _, _, _, loaded, t_secret = yield from self._locate(
            uid=uid, action=action, id=id, token=token, now=now
        )
        if loaded is None:
            raise NotFound("no such challenge")
        self._check_token_secret(loaded, t_secret)
        return self._info(loaded)

    def _check_token_secret(self, loaded: _Loaded, t_secret: str | None) -> None:
        """A token whose secret was replaced names a challenge that is gone."""
        if t_secret is None:
            return
        verifier = loaded.data.get("verifier")
        if verifier is None or not self._secret_matches(
            str(verifier), str(loaded.data["action"]), loaded.id, t_secret
        ):
            raise NotFound("no such challenge")

    def regenerate(
        self,
        *,
        uid: str | None = None,
        action: str | None = None,
        id: str | None = None,
        now: float,
    ) -> Flow[str]:
        """A fresh secret for the challenge (same spec); the old one stops working."""
        tag, pair, act, loaded, _ = yield from self._locate(
            uid=uid, action=action, id=id, token=None, now=now
        )
        if loaded is None:
            raise NotFound("no such challenge")
        spec = _spec_from(loaded.data.get("settings"))
        if spec is None:
            raise NotFound("the challenge has no secret to regenerate")
        d = loaded.data
        if int(d.get("attempts", 0)) >= int(d.get("max_attempts", DEFAULT_MAX_ATTEMPTS)):
            raise NotFound("the challenge is burned")
        plain = _generate(spec, self.rand)
        d["verifier"] = self._verifier(act, loaded.id, plain)
        record_key = self._record_key(tag, pair)
        batch = Batch(
            guards=(Equals(record_key, loaded.raw),),
            writes=(Put(record_key, json_bytes(d, what="challenge"), keep_ttl=True),),
        )
        if not (yield Apply(batch)):
            raise Conflict("the challenge changed concurrently")
        return self._seal_token(act, loaded.id, loaded.uid, plain) if spec.encrypt else plain

    def remove(
        self,
        *,
        uid: str | None = None,
        action: str | None = None,
        id: str | None = None,
        token: str | None = None,
        now: float,
    ) -> Flow[None]:
        """Delete a challenge (its throttle lock stays); ``NotFound`` if missing."""
        tag, pair, _, loaded, t_secret = yield from self._locate(
            uid=uid, action=action, id=id, token=token, now=now
        )
        if loaded is None:
            raise NotFound("no such challenge")
        self._check_token_secret(loaded, t_secret)
        record_key = self._record_key(tag, pair)
        writes = tuple(Delete(k) for k in self._keys_of(tag, pair, loaded.data))
        if not (yield Apply(Batch(guards=(Equals(record_key, loaded.raw),), writes=writes))):
            raise Conflict("the challenge changed concurrently")
        return None

    def reset(self) -> Flow[int]:
        """Delete every challenge and throttle lock under the prefix."""
        return int((yield Purge(f"{self.prefix}:c:")))
