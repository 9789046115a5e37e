"""Root keys, HKDF sub-keys per purpose, and the rotation ring."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from tokenware.errors import ConfigurationError
from tokenware.keys import MIN_SECRET_BYTES, KeyRing, RootKey, derive_key
from tokenware.testing import make_secret_key

A = make_secret_key("a")
B = make_secret_key("b")


def hkdf_sha256(secret: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869, written out independently of ``cryptography``."""
    prk = hmac.new(salt, secret, hashlib.sha256).digest()
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
        counter += 1
    return okm[:length]


def test_rfc5869_oracle_matches_test_case_1() -> None:
    ikm = bytes.fromhex("0b" * 22)
    salt = bytes.fromhex("000102030405060708090a0b0c")
    info = bytes.fromhex("f0f1f2f3f4f5f6f7f8f9")
    okm = hkdf_sha256(ikm, salt, info, 42)
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )


@pytest.mark.parametrize("purpose", ["session-verifier", "jwt-hs256", "kid", "ü-purpose"])
@pytest.mark.parametrize("length", [6, 32, 64])
def test_derive_key_is_hkdf_sha256_with_the_purpose_as_info(purpose: str, length: int) -> None:
    expected = hkdf_sha256(A, b"tokenware/v1", purpose.encode(), length)
    assert derive_key(A, purpose, length) == expected
    assert RootKey("k", A).derive(purpose, length) == expected


def test_derivation_is_deterministic_and_separated_by_purpose_and_secret() -> None:
    assert derive_key(A, "x") == derive_key(A, "x")
    purposes = ["session-verifier", "session-owner", "session-hash", "jwt", "seal", "kid"]
    keys = {derive_key(A, p) for p in purposes}
    assert len(keys) == len(purposes)
    assert derive_key(A, "x") != derive_key(B, "x")
    assert len(derive_key(A, "x")) == 32
    assert A not in derive_key(A, "x") + derive_key(A, "y")


@pytest.mark.parametrize("secret", [b"", b"k" * (MIN_SECRET_BYTES - 1), "k" * 40, None])
def test_root_key_refuses_short_or_non_bytes_secrets(secret: Any) -> None:
    with pytest.raises(ConfigurationError):
        RootKey("k1", secret)


@pytest.mark.parametrize("kid", ["", "a b", "a:b", "é", "x" * 65, "k1\n", None, 7])
def test_root_key_refuses_bad_key_ids(kid: Any) -> None:
    with pytest.raises(ConfigurationError, match="key id"):
        RootKey(kid, A)


def test_root_key_repr_hides_the_secret() -> None:
    key = RootKey("k1", b"Z" * 40)
    assert "ZZZZ" not in repr(key)
    assert "k1" in repr(key)


def test_ring_needs_unique_keys() -> None:
    with pytest.raises(ConfigurationError):
        KeyRing([])
    with pytest.raises(ConfigurationError, match="unique"):
        KeyRing([RootKey("k", A), RootKey("k", B)])


def test_ring_newest_writes_oldest_names_all_read() -> None:
    new, mid, old = RootKey("new", A), RootKey("mid", B), RootKey("old", make_secret_key("c"))
    ring = KeyRing([new, mid, old])
    assert ring.current is new
    assert ring.index_key is old
    assert ring.keys == (new, mid, old)
    assert ring.get("mid") is mid
    assert ring.get("gone") is None
    data = b"payload"
    # Writes use the newest key...
    assert ring.mac("p", data) == ring.mac("p", data, key=new)
    assert ring.mac("p", data) == hmac.new(new.derive("p"), data, hashlib.sha256).digest()
    # ...a MAC written by any key is checked with the key its id names...
    for key in ring.keys:
        written = ring.mac("p", data, key=key)
        reader = ring.get(key.kid)
        assert reader is not None
        assert hmac.compare_digest(ring.mac("p", data, key=reader), written)
    # ...and store key names stay on the oldest key across rotations.
    assert ring.name_mac("n", data) == KeyRing([old]).name_mac("n", data)
    assert ring.name_mac("n", data) == KeyRing([new, old]).name_mac("n", data)
    assert ring.mac("p", data) != ring.mac("q", data)


def test_from_secret_defaults() -> None:
    ring = KeyRing.from_secret(A)
    assert ring.current.secret == A
    assert ring.current.kid == KeyRing.from_secret(A).current.kid  # stable across restarts
    assert ring.current.kid != KeyRing.from_secret(B).current.kid
    assert ring.current.kid not in A.hex()
    assert KeyRing.from_secret("s" * 32).current.secret == b"s" * 32
    assert KeyRing.from_secret(A, kid="2024-01").current.kid == "2024-01"


@pytest.mark.parametrize("secret", [b"short", "x" * 31, 42])
def test_from_secret_refuses_bad_secrets(secret: Any) -> None:
    with pytest.raises(ConfigurationError):
        KeyRing.from_secret(secret)


def test_ring_repr_shows_key_ids_only() -> None:
    ring = KeyRing([RootKey("new", b"N" * 32), RootKey("old", b"O" * 32)])
    text = repr(ring)
    assert "new" in text and "old" in text
    assert "NNNN" not in text and "OOOO" not in text
