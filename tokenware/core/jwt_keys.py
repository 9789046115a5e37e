"""JWT signing and verification keys, built from a KeyRing.

One algorithm per deployment (``HS256``, ``ES256`` or ``EdDSA``) and one key
object per entry: an entry never verifies with another algorithm, and HMAC
and asymmetric keys are separate types (no key confusion, RFC 8725 §3.1).

Where keys come from:

* ``jwt_key=None`` (the default): one key per root key of the ring, derived
  from its secret with HKDF and a label per algorithm, under the root key's
  ``kid``. HS256 uses ``derive_key(secret, "jwt/hs256")``; ES256 reduces 48
  derived bytes modulo the group order (never zero); EdDSA uses 32 derived
  bytes as the Ed25519 seed. The same secret always gives the same key, so
  every process of a deployment agrees without sharing key files.
* ``jwt_key`` given: HS256 key bytes (at least 32), or an ES256/EdDSA private
  key object or PEM; or a sequence of them, newest first, for rotation. Each
  gets the RFC 7638 thumbprint of its JWK as ``kid``.

The newest key signs; every key verifies, chosen by the token's ``kid``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from tokenware.core.jws import ALGORITHMS, P256_ORDER, Algorithm, EdDSA, Es256, Hs256, b64url_encode
from tokenware.errors import ConfigurationError
from tokenware.keys import KeyRing, RootKey

if TYPE_CHECKING:
    from tokenware.config import Settings

__all__ = ["JwtKey", "JwtKeys", "derived_key", "thumbprint"]

#: HKDF labels of the derived JWT keys, one per algorithm.
LABELS = {"HS256": "jwt/hs256", "ES256": "jwt/es256", "EdDSA": "jwt/eddsa"}


@dataclass(frozen=True, slots=True)
class JwtKey:
    """One JWT key: its id, its algorithm object and its public JWK.

    Attributes:
        kid: the key id written in the header of tokens it signs.
        key: the algorithm-bound key (:class:`~tokenware.core.jws.Hs256`,
            :class:`~tokenware.core.jws.Es256` or :class:`~tokenware.core.jws.EdDSA`).
        public_jwk: the public JWK (with ``kid``, ``alg``, ``use``), or
            ``None`` for an HMAC key, which is never published.
    """

    kid: str
    key: Algorithm = field(repr=False)
    public_jwk: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def alg(self) -> str:
        """The algorithm of this key."""
        return self.key.alg


def _public_jwk(key: Algorithm) -> dict[str, str] | None:
    """The required members of the public JWK, in RFC 7638 order."""
    if isinstance(key, Es256):
        numbers = key.public_key.public_numbers()
        return {
            "crv": "P-256",
            "kty": "EC",
            "x": b64url_encode(numbers.x.to_bytes(32, "big")),
            "y": b64url_encode(numbers.y.to_bytes(32, "big")),
        }
    if isinstance(key, EdDSA):
        raw = key.public_key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return {"crv": "Ed25519", "kty": "OKP", "x": b64url_encode(raw)}
    return None


def thumbprint(key: Algorithm) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url) of ``key``.

    For an HMAC key the thumbprint of its ``oct`` JWK: a SHA-256 of the
    secret, harmless for the at least 32 random bytes tokenware requires.
    """
    members: dict[str, str] | None = _public_jwk(key)
    if members is None:
        if not isinstance(key, Hs256):
            raise ConfigurationError(f"no JWK form for {key!r}")
        members = {"k": b64url_encode(key.secret), "kty": "oct"}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode("ascii")
    return b64url_encode(hashlib.sha256(canonical).digest())


def derived_key(root: RootKey, algorithm: str) -> Algorithm:
    """The JWT key for ``algorithm`` derived from ``root``'s secret."""
    label = LABELS[algorithm]
    if algorithm == "HS256":
        return Hs256(root.derive(label))
    if algorithm == "ES256":
        # 48 bytes reduced mod n-1 (+1): uniform in [1, n) to within 2^-128.
        scalar = int.from_bytes(root.derive(label, 48), "big") % (P256_ORDER - 1) + 1
        return Es256(ec.derive_private_key(scalar, ec.SECP256R1()))
    return EdDSA(ed25519.Ed25519PrivateKey.from_private_bytes(root.derive(label, 32)))


def _given_key(value: Any, algorithm: str) -> Algorithm:
    """An explicit ``jwt_key`` as the algorithm-bound key object."""
    if algorithm == "HS256":
        if isinstance(value, str):
            value = value.encode("utf-8")
        if not isinstance(value, bytes):
            raise ConfigurationError("jwt_key for HS256 must be bytes (at least 32)")
        if len(value) < 32:
            raise ConfigurationError("jwt_key for HS256 must be at least 32 bytes")
        return Hs256(value)
    if isinstance(value, str):
        value = value.encode("ascii", "replace")
    if isinstance(value, bytes):
        try:
            value = serialization.load_pem_private_key(value, password=None)
        except (ValueError, TypeError):
            raise ConfigurationError(
                f"jwt_key for {algorithm} must be a private key object or an unencrypted PEM"
            ) from None
    if algorithm == "ES256":
        if not isinstance(value, ec.EllipticCurvePrivateKey):
            raise ConfigurationError("jwt_key for ES256 must be a P-256 private key")
        return Es256(value)
    if not isinstance(value, ed25519.Ed25519PrivateKey):
        raise ConfigurationError("jwt_key for EdDSA must be an Ed25519 private key")
    return EdDSA(value)


class JwtKeys:
    """The JWT keys of a deployment: newest signs, all verify, chosen by ``kid``.

    Args:
        keys: the keys, newest first; one algorithm, unique ``kid`` s. Only
            the first needs a private part.
    """

    __slots__ = ("_algorithm", "_by_kid", "_jwks", "_keys")

    def __init__(self, keys: Iterable[JwtKey]) -> None:
        self._keys = tuple(keys)
        if not self._keys:
            raise ConfigurationError("JwtKeys needs at least one key")
        algorithms = {k.alg for k in self._keys}
        if len(algorithms) != 1:
            raise ConfigurationError("every JWT key must use the same algorithm")
        self._algorithm = self._keys[0].alg
        if self._algorithm not in ALGORITHMS:
            raise ConfigurationError(f"unsupported JWT algorithm {self._algorithm!r}")
        if not self._keys[0].key.can_sign:
            raise ConfigurationError("the newest JWT key must be able to sign")
        self._by_kid = {k.kid: k for k in self._keys}
        if len(self._by_kid) != len(self._keys):
            raise ConfigurationError("JWT key ids must be unique")
        self._jwks = tuple(k.public_jwk for k in self._keys if k.public_jwk is not None)

    @classmethod
    def from_ring(cls, ring: KeyRing, algorithm: str = "HS256", jwt_key: Any = None) -> JwtKeys:
        """Keys for ``algorithm``: derived from every key of ``ring``, or ``jwt_key``.

        Args:
            ring: the root keys (newest first).
            algorithm: ``HS256``, ``ES256`` or ``EdDSA``.
            jwt_key: ``None`` to derive; else HS256 bytes, a private key
                object or PEM, or a list/tuple of them, newest first.

        Raises:
            ConfigurationError: an unknown algorithm or a key that does not
                fit it.
        """
        if algorithm not in ALGORITHMS:
            raise ConfigurationError(
                f"jwt_algorithm must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}"
            )
        if not isinstance(ring, KeyRing):
            raise ConfigurationError("ring must be a KeyRing")
        if jwt_key is None:
            return cls(_entry(root.kid, derived_key(root, algorithm)) for root in ring.keys)
        given: Sequence[Any] = jwt_key if isinstance(jwt_key, (list, tuple)) else (jwt_key,)
        objects = [_given_key(value, algorithm) for value in given]
        return cls(_entry(thumbprint(obj), obj) for obj in objects)

    @classmethod
    def from_settings(cls, settings: Settings) -> JwtKeys:
        """Keys from ``settings.keys``, ``jwt_algorithm`` and ``jwt_key``."""
        return cls.from_ring(settings.keys, settings.jwt_algorithm, settings.jwt_key)

    @property
    def algorithm(self) -> str:
        """The one algorithm of every key."""
        return self._algorithm

    @property
    def current(self) -> JwtKey:
        """The newest key: the one that signs."""
        return self._keys[0]

    @property
    def keys(self) -> tuple[JwtKey, ...]:
        """Every key, newest first."""
        return self._keys

    @property
    def by_kid(self) -> Mapping[str, JwtKey]:
        """Every key by its id (read-only)."""
        return MappingProxyType(self._by_kid)

    def get(self, kid: str) -> JwtKey | None:
        """The key with id ``kid``, or ``None``."""
        return self._by_kid.get(kid)

    def jwks(self) -> dict[str, Any]:
        """The public keys as a JWK Set: ``{"keys": [...]}``, empty for HS256."""
        return {"keys": [dict(jwk) for jwk in self._jwks]}

    def __repr__(self) -> str:
        return f"JwtKeys(algorithm={self._algorithm!r}, kids={list(self._by_kid)!r})"


def _entry(kid: str, key: Algorithm) -> JwtKey:
    members = _public_jwk(key)
    jwk = None if members is None else {**members, "kid": kid, "alg": key.alg, "use": "sig"}
    return JwtKey(kid, key, jwk)
