"""Opaque session tokens and short-lived values (the tokenstore successor).

Token format: ``tws_`` + 22-char base62 public id + 43-char base62 secret
(256 bits), 69 characters in all. The id is the *selector* and the secret the
*validator* of the split-token design: lookup is one point read by id, and
the secret is checked in constant time against a keyed HMAC stored in the
record. Neither the token nor its secret is ever stored.

Store layout (``{...}`` is the Redis Cluster hash tag)::

    <prefix>:s:{<tag>}:r:<id>            the record (JSON), with the session TTL
    <prefix>:s:{<tag>}:o:<owner-mac>     set of the owner's session ids
    <prefix>:h:{<handle-mac>}            a short-lived value (JSON)

``tag`` is four base62 characters of a keyed HMAC of the owner id and is also
the first four characters of every session id of that owner. So a record and
its owner's index always share one hash slot and every write is ONE atomic
store operation, even on Redis Cluster, without reading the owner first.
Owner ids never appear in key names (only their keyed HMAC), and nothing in a
key name comes from user input unescaped.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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
    Purge,
    Put,
    SetAdd,
    SetRemove,
)
from tokenware.errors import NotFound, StoreError, ValidationError
from tokenware.keys import KeyRing

__all__ = ["MAX_TTL", "SessionRules", "SessionToken"]

KEY_PREFIX = "tws_"
ID_LENGTH = 22
TAG_LENGTH = 4
SECRET_LENGTH = 43  # 43 * log2(62) = 256.0 bits
HANDLE_LENGTH = 22  # 131 bits
MAX_OWNER_LENGTH = 512
#: Longest accepted lifetime, in seconds (100 years). Redis refused larger
#: ones with a bare OverflowError or a script error instead of a clear
#: ValidationError.
MAX_TTL = 100 * 365 * 24 * 3600.0
#: Compare-and-set retries before a contended update gives up.
CAS_ATTEMPTS = 8


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"{what} contains a lone surrogate, which is not UTF-8") from None


def _json(value: Any, what: str) -> bytes:
    """:func:`json_bytes`, also turning a lone surrogate into ``ValidationError``.

    ``json_bytes`` encodes to UTF-8 outside its own ``try``, so a string such
    as ``"\\ud800"`` escaped as a bare ``UnicodeEncodeError``.
    """
    try:
        return json_bytes(value, what=what)
    except UnicodeEncodeError:
        raise ValidationError(f"{what} contains a lone surrogate, which is not UTF-8") from None


@dataclass(frozen=True, slots=True)
class SessionToken:
    """A session as the API hands it out.

    Attributes:
        key: the bearer token (``tws_...``); only known at creation and to
            ``get_by_key``, ``None`` elsewhere because it is never stored.
        id: the public id, safe to show in UIs and logs.
        owner_id: who the session belongs to.
        attrs: the JSON object stored with the session.
        created_at: seconds since the epoch.
        expires_at: seconds since the epoch, or ``None``.
    """

    key: str | None = field(repr=False)  # a bearer secret: never in logs
    id: str
    owner_id: str
    attrs: Mapping[str, Any]
    created_at: float
    expires_at: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionRules:
    """Everything the session flows need besides the store.

    Attributes:
        ring: the key ring (verifiers and key names).
        prefix: the store key prefix.
        default_ttl: seconds a session lives when ``add`` gets no ``ttl``.
    """

    ring: KeyRing
    prefix: str
    default_ttl: float

    # -- key names -----------------------------------------------------------

    def _tag(self, owner_id: str) -> str:
        mac = self.ring.name_mac("session-owner-tag", owner_id.encode("utf-8"))
        return "".join(BASE62[b % 62] for b in mac[:TAG_LENGTH])

    def _owner_key(self, tag: str, owner_id: str) -> str:
        mac = self.ring.name_mac("session-owner", owner_id.encode("utf-8")).hex()
        return f"{self.prefix}:s:{{{tag}}}:o:{mac}"

    def _record_key(self, session_id: str) -> str:
        return f"{self.prefix}:s:{{{session_id[:TAG_LENGTH]}}}:r:{session_id}"

    def _hash_key(self, handle: str) -> str:
        mac = self.ring.name_mac("session-hash", handle.encode("utf-8")).hex()
        return f"{self.prefix}:h:{{{mac[:32]}}}"

    def _verifier(self, secret: str) -> str:
        key = self.ring.current
        mac = self.ring.mac("session-verifier", secret.encode("ascii"), key=key).hex()
        return f"{key.kid}${mac}"

    def _secret_matches(self, verifier: str, secret: str) -> bool:
        kid, _, expected = verifier.partition("$")
        key = self.ring.get(kid)
        if key is None:
            # Still spend one HMAC so an unknown key id costs what a wrong secret does.
            key = self.ring.current
            expected = ""
        mac = self.ring.mac("session-verifier", secret.encode("ascii"), key=key).hex()
        return hmac.compare_digest(mac, expected)

    # -- validation ----------------------------------------------------------

    @staticmethod
    def _check_owner(owner_id: object) -> str:
        if not isinstance(owner_id, str) or not owner_id:
            raise ValidationError("owner_id must be a non-empty string")
        if len(owner_id) > MAX_OWNER_LENGTH:
            raise ValidationError(f"owner_id is longer than {MAX_OWNER_LENGTH} characters")
        # A lone surrogate cannot be encoded for the key-name HMAC; without
        # this check it escaped as a bare UnicodeEncodeError.
        _utf8(owner_id, "owner_id")
        return owner_id

    @staticmethod
    def _check_attrs(attrs: object) -> dict[str, Any]:
        if attrs is None:
            return {}
        if not isinstance(attrs, Mapping):
            raise ValidationError(
                f"attrs must be a JSON object (a mapping), got {type(attrs).__name__}"
            )
        if not all(isinstance(k, str) for k in attrs):
            raise ValidationError("attrs keys must be strings")
        # Return what the store will hold (a JSON round trip), so ``add`` and
        # ``set_attrs`` hand back exactly what ``get`` later returns (nested
        # int keys become strings, tuples lists) and never alias the caller's
        # nested objects.
        data: dict[str, Any] = json_load(_json(dict(attrs), "attrs"))
        return data

    @staticmethod
    def _check_ttl(ttl: object, what: str = "ttl") -> float:
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0:
            raise ValidationError(f"{what} must be a positive number of seconds, got {ttl!r}")
        if ttl != ttl or ttl == float("inf"):
            raise ValidationError(f"{what} must be finite")
        if ttl > MAX_TTL:
            raise ValidationError(f"{what} must be at most {MAX_TTL:.0f} seconds, got {ttl!r}")
        return float(ttl)

    @staticmethod
    def _check_id(session_id: object) -> str:
        if not isinstance(session_id, str):
            raise ValidationError("session id must be a string")
        return session_id

    @staticmethod
    def _split_key(key: object) -> tuple[str, str] | None:
        """``(id, secret)`` of a well-formed key, else ``None`` (no store call)."""
        if not isinstance(key, str):
            raise ValidationError("session key must be a string")
        body = key[len(KEY_PREFIX) :]
        if not key.startswith(KEY_PREFIX) or len(body) != ID_LENGTH + SECRET_LENGTH:
            return None
        if not body.isascii() or not is_base62(body):
            return None
        return body[:ID_LENGTH], body[ID_LENGTH:]

    @staticmethod
    def _valid_id(session_id: str) -> bool:
        return len(session_id) == ID_LENGTH and session_id.isascii() and is_base62(session_id)

    # -- records -------------------------------------------------------------

    def _decode(self, raw: bytes, key: str | None = None) -> tuple[SessionToken, dict[str, Any]]:
        try:
            data = json_load(raw)
            token = SessionToken(
                key=key,
                id=data["id"],
                owner_id=data["owner_id"],
                attrs=data["attrs"],
                created_at=data["created_at"],
                expires_at=data["expires_at"],
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError("a session record in the store is corrupt") from exc
        return token, data

    # -- flows ---------------------------------------------------------------

    def add(
        self,
        owner_id: str,
        attrs: Mapping[str, Any] | None,
        ttl: float | None,
        *,
        now: float,
        rand: Random,
    ) -> Flow[SessionToken]:
        """Create a session; the result is the only time its key is known."""
        owner_id = self._check_owner(owner_id)
        data_attrs = self._check_attrs(attrs)
        lifetime = self.default_ttl if ttl is None else self._check_ttl(ttl)
        tag = self._tag(owner_id)
        for _ in range(CAS_ATTEMPTS):
            session_id = tag + random_base62(ID_LENGTH - TAG_LENGTH, rand)
            secret = random_base62(SECRET_LENGTH, rand)
            record_key = self._record_key(session_id)
            record = {
                "id": session_id,
                "owner_id": owner_id,
                "attrs": data_attrs,
                "created_at": now,
                "expires_at": now + lifetime,
                "verifier": self._verifier(secret),
            }
            batch = Batch(
                guards=(Absent(record_key),),
                writes=(
                    Put(record_key, json_bytes(record, what="session"), lifetime),
                    SetAdd(self._owner_key(tag, owner_id), session_id, lifetime),
                ),
            )
            if (yield Apply(batch)):
                return SessionToken(
                    key=KEY_PREFIX + session_id + secret,
                    id=session_id,
                    owner_id=owner_id,
                    attrs=data_attrs,
                    created_at=now,
                    expires_at=now + lifetime,
                )
        # 106 random bits collided CAS_ATTEMPTS times: the random source is broken.
        raise StoreError("could not allocate a unique session id")

    def _load(self, session_id: str) -> Flow[tuple[SessionToken, dict[str, Any], bytes]]:
        if not self._valid_id(session_id):
            raise NotFound("no such session")
        raw = yield Get(self._record_key(session_id))
        if raw is None:
            raise NotFound("no such session")
        token, data = self._decode(raw)
        return token, data, raw

    def get(self, session_id: str) -> Flow[SessionToken]:
        """The session with public id ``session_id`` (its ``key`` is ``None``)."""
        token, _, _ = yield from self._load(self._check_id(session_id))
        return token

    def get_by_key(self, key: str) -> Flow[SessionToken]:
        """The session whose bearer token is ``key``, checked in constant time."""
        parts = self._split_key(key)
        if parts is None:
            raise NotFound("malformed session key")
        session_id, secret = parts
        token, data, _ = yield from self._load(session_id)
        if not self._secret_matches(str(data.get("verifier", "")), secret):
            raise NotFound("no such session")
        return SessionToken(
            key=key,
            id=token.id,
            owner_id=token.owner_id,
            attrs=token.attrs,
            created_at=token.created_at,
            expires_at=token.expires_at,
        )

    def set_attrs(self, session_id: str, attrs: Mapping[str, Any]) -> Flow[SessionToken]:
        """Replace the attrs of a session, keeping its expiry."""
        new_attrs = self._check_attrs(attrs)
        session_id = self._check_id(session_id)
        for _ in range(CAS_ATTEMPTS):
            token, data, raw = yield from self._load(session_id)
            data["attrs"] = new_attrs
            key = self._record_key(session_id)
            batch = Batch(
                guards=(Equals(key, raw),),
                writes=(Put(key, json_bytes(data, what="session"), keep_ttl=True),),
            )
            if (yield Apply(batch)):
                return SessionToken(
                    key=None,
                    id=token.id,
                    owner_id=token.owner_id,
                    attrs=new_attrs,
                    created_at=token.created_at,
                    expires_at=token.expires_at,
                )
        raise StoreError("session record kept changing; gave up after retries")

    def delete(self, session_id: str) -> Flow[None]:
        """Delete a session and its index entry; ``NotFound`` if missing."""
        session_id = self._check_id(session_id)
        for _ in range(CAS_ATTEMPTS):
            token, _, raw = yield from self._load(session_id)
            key = self._record_key(session_id)
            batch = Batch(
                guards=(Equals(key, raw),),
                writes=(
                    Delete(key),
                    SetRemove(self._owner_key(session_id[:TAG_LENGTH], token.owner_id), session_id),
                ),
            )
            if (yield Apply(batch)):
                return None
        raise StoreError("session record kept changing; gave up after retries")

    def delete_by_key(self, key: str) -> Flow[None]:
        """Delete the session whose bearer token is ``key``."""
        token = yield from self.get_by_key(key)
        yield from self.delete(token.id)

    def list(self, owner_id: str) -> Flow[list[SessionToken]]:
        """Every live session of ``owner_id``, oldest first (keys are ``None``).

        Index entries whose record expired are dropped from the index on the
        way, guarded so a concurrent re-add is never removed.
        """
        owner_id = self._check_owner(owner_id)
        tag = self._tag(owner_id)
        owner_key = self._owner_key(tag, owner_id)
        ids = sorted((yield Members(owner_key)))
        if not ids:
            return []
        keys = tuple(self._record_key(i) for i in ids)
        raws = yield GetMany(keys)
        found: list[SessionToken] = []
        for session_id, key, raw in zip(ids, keys, raws, strict=True):
            if raw is None:
                yield Apply(
                    Batch(guards=(Absent(key),), writes=(SetRemove(owner_key, session_id),))
                )
                continue
            token, _ = self._decode(raw)
            if token.owner_id == owner_id:
                found.append(token)
        found.sort(key=lambda t: (t.created_at, t.id))
        return found

    # -- short-lived values --------------------------------------------------

    def make_hash(self, value: Any, ttl: float, *, rand: Random) -> Flow[str]:
        """Store ``value`` (any JSON) for ``ttl`` seconds; return its handle."""
        payload = _json(value, "value")
        lifetime = self._check_ttl(ttl)
        for _ in range(CAS_ATTEMPTS):
            handle = random_base62(HANDLE_LENGTH, rand)
            key = self._hash_key(handle)
            batch = Batch(guards=(Absent(key),), writes=(Put(key, payload, lifetime),))
            if (yield Apply(batch)):
                return handle
        raise StoreError("could not allocate a unique handle")

    def _hash_store_key(self, handle: object) -> str | None:
        if not isinstance(handle, str):
            raise ValidationError("handle must be a string")
        if len(handle) != HANDLE_LENGTH or not handle.isascii() or not is_base62(handle):
            return None
        return self._hash_key(handle)

    def get_hash(self, handle: str) -> Flow[Any]:
        """The value stored under ``handle``; ``NotFound`` if missing or expired."""
        key = self._hash_store_key(handle)
        raw = None if key is None else (yield Get(key))
        if raw is None:
            raise NotFound("no such handle")
        try:
            return json_load(raw)
        except ValueError as exc:
            raise StoreError("a stored value is corrupt") from exc

    def delete_hash(self, handle: str) -> Flow[None]:
        """Delete the value under ``handle``; ``NotFound`` if missing."""
        key = self._hash_store_key(handle)
        if key is None or not (yield Apply(Batch(guards=(Present(key),), writes=(Delete(key),)))):
            raise NotFound("no such handle")

    def reset(self) -> Flow[int]:
        """Delete every session and short-lived value under the prefix."""
        sessions = yield Purge(f"{self.prefix}:s:")
        values = yield Purge(f"{self.prefix}:h:")
        return int(sessions) + int(values)
