"""The AES-256-GCM sealed envelope (``tokenware.core.seal``)."""

from __future__ import annotations

import base64
import os
import secrets

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenware import KeyRing, RootKey
from tokenware.core.seal import SEAL_VERSION, Sealer
from tokenware.errors import InvalidToken
from tokenware.testing import make_secret_key

OLD = RootKey("old", make_secret_key("seal-old"))
NEW = RootKey("new", make_secret_key("seal-new"))


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_round_trip_is_url_safe_and_versioned() -> None:
    sealer = Sealer(KeyRing([NEW]), secrets.token_bytes)
    token = sealer.seal(b"hello", b"ctx")
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    raw = b64d(token)
    assert raw[0] == SEAL_VERSION
    assert len(raw) == 1 + 1 + 12 + 5 + 16
    assert sealer.open(token, b"ctx") == b"hello"


def test_nonces_differ() -> None:
    sealer = Sealer(KeyRing([NEW]), secrets.token_bytes)
    assert sealer.seal(b"x", b"c") != sealer.seal(b"x", b"c")


def test_context_is_bound() -> None:
    sealer = Sealer(KeyRing([NEW]), secrets.token_bytes)
    with pytest.raises(InvalidToken):
        sealer.open(sealer.seal(b"x", b"verify-email"), b"reset-password")


def test_rotation_newest_seals_all_open() -> None:
    old_ring = Sealer(KeyRing([OLD]), secrets.token_bytes)
    rotated = Sealer(KeyRing([NEW, OLD]), secrets.token_bytes)
    legacy = old_ring.seal(b"legacy", b"c")
    assert rotated.open(legacy, b"c") == b"legacy"
    fresh = rotated.seal(b"fresh", b"c")
    with pytest.raises(InvalidToken):
        old_ring.open(fresh, b"c")  # sealed by NEW, which the old ring lacks
    retired = Sealer(KeyRing([NEW]), secrets.token_bytes)
    with pytest.raises(InvalidToken):
        retired.open(legacy, b"c")  # its key was rotated out


def test_foreign_key_is_refused() -> None:
    mine = Sealer(KeyRing([NEW]), secrets.token_bytes)
    theirs = Sealer(KeyRing([RootKey("new", os.urandom(32))]), secrets.token_bytes)
    with pytest.raises(InvalidToken):
        mine.open(theirs.seal(b"x", b"c"), b"c")


@pytest.mark.parametrize(
    "bad",
    [None, 1, b"bytes", "", "a", "!!!!", "A" * 5000, "AQ", "AQID=", "AQ ID", "é" * 40],
)
def test_malformed_input_is_invalid_token(bad: object) -> None:
    with pytest.raises(InvalidToken):
        Sealer(KeyRing([NEW]), secrets.token_bytes).open(bad, b"c")


def test_non_canonical_base64_is_refused() -> None:
    sealer = Sealer(KeyRing([NEW]), secrets.token_bytes)
    token = sealer.seal(b"hello", b"c")  # 35 bytes: 47 chars, 2 spare bits
    last = token[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = token[:-1] + alphabet[alphabet.index(last) | 1]
    if twin == token:
        twin = token[:-1] + alphabet[alphabet.index(last) & ~1]
    assert twin != token
    assert b64d(twin) == b64d(token)
    with pytest.raises(InvalidToken):
        sealer.open(twin, b"c")


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_bit_flip_or_truncation_is_refused(data: st.DataObject) -> None:
    sealer = Sealer(KeyRing([NEW, OLD]), secrets.token_bytes)
    raw = bytearray(b64d(sealer.seal(b'{"a":"x"}', b"c")))
    if data.draw(st.booleans()):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] ^= 1 << data.draw(st.integers(0, 7))
        mutated = bytes(raw)
    else:
        mutated = bytes(raw[: data.draw(st.integers(0, len(raw) - 1))])
    with pytest.raises(InvalidToken):
        sealer.open(b64e(mutated), b"c")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_fuzzed_strings_never_crash(text: str) -> None:
    with pytest.raises(InvalidToken):
        Sealer(KeyRing([NEW]), secrets.token_bytes).open(text, b"c")
