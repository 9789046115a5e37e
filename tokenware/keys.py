"""Key material: a root secret (or a ring of them) and HKDF sub-keys per purpose.

One root secret of at least 32 bytes is enough to run tokenware. Every
purpose (JWT signing, session verifiers, store key names, sealing...) gets
its own sub-key derived with HKDF-SHA256 and a distinct label, so a key
exposed for one purpose is useless for every other.

Rotation: a :class:`KeyRing` holds several root secrets, newest first. The
newest key writes (signs, seals, hashes new verifiers); every key reads
(verifies, opens, checks old verifiers), chosen by key id. Names of store
keys are derived from the *oldest* key in the ring (:meth:`KeyRing.index_key`)
so that rotating secrets never orphans stored records: retire the oldest key
only together with a store migration.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tokenware.errors import ConfigurationError

__all__ = ["MIN_SECRET_BYTES", "KeyRing", "RootKey", "derive_key"]

#: Root secrets shorter than this are refused (RFC 7518 §3.2 for HS256).
MIN_SECRET_BYTES = 32

_KID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def derive_key(secret: bytes, purpose: str, length: int = 32) -> bytes:
    """Derive the sub-key for ``purpose`` from ``secret`` (HKDF-SHA256)."""
    return _derive(secret, purpose, length)


@lru_cache(maxsize=256)
def _derive(secret: bytes, purpose: str, length: int) -> bytes:
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=length,
        salt=b"tokenware/v1",
        info=purpose.encode("utf-8"),
    )
    return hkdf.derive(secret)


@dataclass(frozen=True, slots=True)
class RootKey:
    """One root secret and its key id.

    Args:
        kid: a short id (letters, digits, ``_ . -``), stored beside whatever
            the key wrote so the right key is picked to read it back.
        secret: at least 32 bytes of secret material.
    """

    kid: str
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        # fullmatch: with match(), "$" also matched before a trailing "\n".
        if not isinstance(self.kid, str) or not _KID.fullmatch(self.kid):
            raise ConfigurationError(f"key id must match {_KID.pattern}, got {self.kid!r}")
        if not isinstance(self.secret, bytes) or len(self.secret) < MIN_SECRET_BYTES:
            raise ConfigurationError(
                f"secret for key {self.kid!r} must be at least {MIN_SECRET_BYTES} bytes"
            )

    def derive(self, purpose: str, length: int = 32) -> bytes:
        """This key's sub-key for ``purpose``."""
        return _derive(self.secret, purpose, length)


class KeyRing:
    """Root secrets for rotation: the first (newest) writes, all of them read.

    Args:
        keys: root keys, newest first. Key ids must be unique.
    """

    __slots__ = ("_by_kid", "_keys")

    def __init__(self, keys: Iterable[RootKey]) -> None:
        self._keys = tuple(keys)
        if not self._keys:
            raise ConfigurationError("a KeyRing needs at least one key")
        self._by_kid = {k.kid: k for k in self._keys}
        if len(self._by_kid) != len(self._keys):
            raise ConfigurationError("key ids in a KeyRing must be unique")

    @classmethod
    def from_secret(cls, secret: bytes | str, *, kid: str | None = None) -> KeyRing:
        """A ring of one root secret (``str`` is encoded as UTF-8).

        The default key id is derived from the secret itself, so it is
        stable across restarts and reveals nothing about the secret.
        """
        raw = secret.encode("utf-8") if isinstance(secret, str) else secret
        if not isinstance(raw, bytes):
            raise ConfigurationError("secret_key must be bytes or str")
        if len(raw) < MIN_SECRET_BYTES:
            raise ConfigurationError(
                f"secret_key must be at least {MIN_SECRET_BYTES} bytes, got {len(raw)}"
            )
        if kid is None:
            kid = derive_key(raw, "kid", 6).hex()
        return cls([RootKey(kid, raw)])

    @property
    def current(self) -> RootKey:
        """The newest key: the one that writes."""
        return self._keys[0]

    @property
    def keys(self) -> tuple[RootKey, ...]:
        """Every key, newest first."""
        return self._keys

    @property
    def index_key(self) -> RootKey:
        """The oldest key, which names store keys so rotation keeps them reachable."""
        return self._keys[-1]

    def get(self, kid: str) -> RootKey | None:
        """The key with id ``kid``, or ``None``."""
        return self._by_kid.get(kid)

    def mac(self, purpose: str, data: bytes, *, key: RootKey | None = None) -> bytes:
        """HMAC-SHA256 of ``data`` under ``key``'s (default: current) sub-key."""
        sub = (key or self.current).derive(purpose)
        # hmac.digest: one call into OpenSSL, the same bytes as hmac.new(...).digest()
        # at a fraction of the cost (this runs on every session and PAT verify).
        return hmac.digest(sub, data, "sha256")

    def name_mac(self, purpose: str, data: bytes) -> bytes:
        """HMAC-SHA256 of ``data`` for store key names, under the index key."""
        return self.mac(purpose, data, key=self.index_key)

    def __repr__(self) -> str:
        return f"KeyRing(kids={[k.kid for k in self._keys]!r})"
