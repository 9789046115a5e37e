"""The compact JWS layer (:mod:`tokenware.core.jws`): encodings and algorithms."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given
from hypothesis import strategies as st

from tokenware.core import jws
from tokenware.errors import ConfigurationError, InvalidToken

# --- base64url ------------------------------------------------------------------


@given(st.binary(max_size=200))
def test_b64url_round_trip(data: bytes) -> None:
    text = jws.b64url_encode(data)
    assert "=" not in text and "+" not in text and "/" not in text
    assert jws.b64url_decode(text) == data


@given(st.binary(min_size=1, max_size=64))
def test_b64url_one_spelling_per_value(data: bytes) -> None:
    """Flipping unused trailing bits gives a string that is refused."""
    text = jws.b64url_encode(data)
    if len(text) % 4 == 0:
        return  # no unused bits
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(text[-1])
    for bit in (1, 2) if len(text) % 4 == 3 else (1, 2, 4, 8):
        twin = text[:-1] + alphabet[last ^ bit]
        assert base64.urlsafe_b64decode(twin + "=" * (-len(twin) % 4)) == data  # same bytes
        with pytest.raises(InvalidToken):
            jws.b64url_decode(twin)


@pytest.mark.parametrize("segment", ["A", "AAAAA", "QR", "QUJ"])
def test_b64url_refuses_bad_lengths_and_bits(segment: str) -> None:
    with pytest.raises(InvalidToken):
        jws.b64url_decode(segment)


# --- strict JSON ----------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":1,"a":2}',
        b'{"x":{"a":1,"a":1}}',
        b'{"a":NaN}',
        b'{"a":Infinity}',
        b'{"a":-Infinity}',
        b"\xef\xbb\xbf{}",
        '{"a":1}'.encode("utf-16"),
        '{"a":1}'.encode("utf-16-le"),
        '{"a":1}'.encode("utf-32"),
        b'{"a":"\xff"}',
        b'{"a":"\\ud800"}',
        b'{"a":["\\udfff"]}',
        b'{"\\ud800":1}',
        b"[]",
        b'"s"',
        b"1",
        b"null",
        b"{",
        b"",
        b"[" * 100_000,
        b'{"a":' + b"9" * 5000 + b"}",
        b'{"a":1} x',
    ],
)
def test_loads_strict_refuses(raw: bytes) -> None:
    with pytest.raises(InvalidToken):
        jws.loads_strict(raw)


def test_loads_strict_accepts_surrogate_pairs_and_unicode() -> None:
    assert jws.loads_strict(b'{"e":"\\ud83d\\ude00","u":"\xc3\xa9"}') == {
        "e": "\U0001f600",
        "u": "é",
    }


# --- algorithms -----------------------------------------------------------------


def _keys() -> list[jws.Algorithm]:
    return [
        jws.Hs256(b"k" * 32),
        jws.Es256(ec.generate_private_key(ec.SECP256R1())),
        jws.EdDSA(ed25519.Ed25519PrivateKey.generate()),
    ]


@pytest.mark.parametrize("key", _keys(), ids=lambda k: k.alg)
def test_sign_verify(key: jws.Algorithm) -> None:
    sig = key.sign(b"data")
    assert len(sig) in (32, 64)
    assert key.verify(b"data", sig)
    assert not key.verify(b"datb", sig)
    assert not key.verify(b"data", sig[:-1])
    assert not key.verify(b"data", b"")
    assert not key.verify(b"data", bytes(len(sig)))


def test_hs256_refuses_short_secrets() -> None:
    for secret in (b"", b"secret", b"x" * 31):
        with pytest.raises(ConfigurationError):
            jws.Hs256(secret)
    with pytest.raises(ConfigurationError):
        jws.Hs256("x" * 32)  # type: ignore[arg-type]


def test_es256_refuses_other_curves_and_types() -> None:
    with pytest.raises(ConfigurationError):
        jws.Es256(ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(ConfigurationError):
        jws.Es256(ed25519.Ed25519PrivateKey.generate())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        jws.EdDSA(ec.generate_private_key(ec.SECP256R1()))  # type: ignore[arg-type]


def test_public_only_keys_verify_but_cannot_sign() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    public = jws.Es256(private.public_key())
    assert not public.can_sign
    assert public.verify(b"m", jws.Es256(private).sign(b"m"))
    with pytest.raises(ConfigurationError):
        public.sign(b"m")
    ed = ed25519.Ed25519PrivateKey.generate()
    ed_public = jws.EdDSA(ed.public_key())
    assert ed_public.verify(b"m", ed.sign(b"m"))
    with pytest.raises(ConfigurationError):
        ed_public.sign(b"m")


def test_es256_signature_forms() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    key = jws.Es256(private)
    der = private.sign(b"m", ec.ECDSA(hashes.SHA256()))
    assert not key.verify(b"m", der)  # DER is not the JOSE form
    raw = key.sign(b"m")
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    # high-S twin: valid ECDSA, accepted (JOSE does not require low S)
    twin = r.to_bytes(32, "big") + (jws.P256_ORDER - s).to_bytes(32, "big")
    assert key.verify(b"m", twin)
    for bad in (
        bytes(64),
        raw[:63],
        raw + b"\0",
        raw + raw[:32],
        (r + jws.P256_ORDER).to_bytes(33, "big")[1:] + raw[32:],  # r >= n when it fits
        jws.P256_ORDER.to_bytes(32, "big") + raw[32:],
        raw[:32] + jws.P256_ORDER.to_bytes(32, "big"),
        raw[:32] + bytes(32),
    ):
        assert not key.verify(b"m", bad)
    assert encode_dss_signature(r, s)  # sanity: the primitive works


def test_compact_and_split() -> None:
    key = jws.Hs256(b"k" * 32)
    token = jws.compact({"alg": "HS256"}, {"a": "é"}, key)
    h, p, s = jws.split(token)
    assert json.loads(jws.decode_segment(h)) == {"alg": "HS256"}
    assert jws.loads_segment(p) == {"a": "é"}
    assert key.verify(h + b"." + p, jws.decode_segment(s))
    header, signing_input, payload, signature = jws.parse(token)
    assert (header, signing_input, payload) == ({"alg": "HS256"}, h + b"." + p, p)
    assert key.verify(signing_input, signature)
    with pytest.raises(ConfigurationError):
        jws.compact({"alg": "none"}, {}, key)


@pytest.mark.parametrize(
    "token",
    [
        None,
        b"a.b.c",
        1,
        "",
        "a.b",
        "a.b.c.d",
        "a..c",
        ".b.c",
        "a.b.",
        "a.b.c\n",
        " a.b.c",
        "a=.b.c",
    ],
)
def test_split_refuses(token: object) -> None:
    with pytest.raises(InvalidToken):
        jws.split(token)


def test_split_caps_size_first() -> None:
    with pytest.raises(InvalidToken, match="too large"):
        jws.split("a" * 8193)
    assert jws.split("a.b.c", 5) == (b"a", b"b", b"c")


@pytest.mark.parametrize("segment", ["a+b", "a/b", "a=", "a b", "é", "a.b", ""])
def test_b64url_decode_checks_the_alphabet(segment: str) -> None:
    with pytest.raises(InvalidToken):
        jws.b64url_decode(segment) if segment else jws.decode_segment(b"A")


@given(st.binary(min_size=32, max_size=100), st.binary(max_size=600))
def test_hs256_equals_hmac_digest(secret: bytes, data: bytes) -> None:
    """The precomputed-pad HMAC is exactly RFC 2104 HMAC-SHA256 (keys over 64 bytes too)."""
    import hashlib
    import hmac

    key = jws.Hs256(secret)
    assert key.sign(data) == hmac.digest(secret, data, hashlib.sha256)
    assert key.verify(data, hmac.digest(secret, data, hashlib.sha256))


# --- the codec's path: segments() and verify_segment() ------------------------------


@pytest.mark.parametrize(
    "raw",
    [b"", b"a.b", b"a.b.c.d", b"a..c", b".b.c", b"a.b.", b"abc", b"a+.b.c", b"a.b/.c", b"a.b.c="],
)
def test_segments_refuses_shapes(raw: bytes) -> None:
    with pytest.raises(InvalidToken, match="compact JWS"):
        jws.segments(raw)


def test_segments_parts() -> None:
    assert jws.segments(b"hh.pp.ss") == (b"hh", b"hh.pp", b"pp", b"ss")


def _codec_and_token(alg: str) -> tuple[object, str]:
    from tokenware.core.jwt import AccessTokenCodec
    from tokenware.core.jwt_keys import JwtKeys
    from tokenware.keys import KeyRing

    ring = KeyRing.from_secret(b"s" * 32)
    codec = AccessTokenCodec(JwtKeys.from_ring(ring, alg), issuer="i", audience="a")
    return codec, codec.encode("alice", now=1_700_000_000, ttl=600, jti="j", scopes=["r"])


_NOT_B64URL = bytes(c for c in range(128) if c not in jws._B64URL + b".")


@pytest.mark.parametrize("alg", jws.ALGORITHMS)
def test_any_foreign_ascii_byte_anywhere_is_refused(alg: str) -> None:
    """segments() rules out only "+", "/", "=" and the dots; every other
    byte outside the alphabet, at any position of any segment (header
    remembered or not), is refused by the strict decoding or the exact
    signature comparison, as the full alphabet check of split() would."""
    codec, token = _codec_and_token(alg)
    now = 1_700_000_100
    assert codec.decode(token, now=now).subject == "alice"  # type: ignore[attr-defined]
    raw = token.encode()
    for pos in range(len(raw)):
        if raw[pos] == 46:  # "."
            continue
        for byte in _NOT_B64URL[pos % 7 :: 7]:  # a seventh of them per position, all overall
            for bad in (
                raw[:pos] + bytes([byte]) + raw[pos + 1 :],
                raw[:pos] + bytes([byte]) + raw[pos:],
                # Four inserted: lenient base64 would skip them and decode
                # the very same signature (a second spelling of the token).
                raw[:pos] + bytes([byte]) * 4 + raw[pos:],
            ):
                with pytest.raises(InvalidToken):
                    jws.split(bad.decode())
                with pytest.raises(InvalidToken):
                    codec.decode_ascii(bad, now=now)  # type: ignore[attr-defined]


@given(st.binary(max_size=300))
def test_hs256_verify_segment_is_strict_decode_and_compare(data: bytes) -> None:
    key = jws.Hs256(b"k" * 32)
    segment = jws.b64url_encode(key.sign(data)).encode()
    assert key.verify_segment(data, segment)
    alphabet = jws._B64URL
    last = alphabet.index(segment[-1])
    for bit in (1, 2):  # 43 characters: the last one's two low bits are unused
        twin = segment[:-1] + bytes([alphabet[last ^ bit]])
        with pytest.raises(InvalidToken):
            jws.decode_segment(twin)  # what the decoding path says of it
        assert not key.verify_segment(data, twin)
    assert not key.verify_segment(data, segment[:-1])
    assert not key.verify_segment(data + b"x", segment)


@pytest.mark.parametrize("key", [k for k in _keys() if k.alg != "HS256"], ids=lambda k: k.alg)
def test_asymmetric_verify_segment_decodes_strictly(key: jws.Algorithm) -> None:
    segment = jws.b64url_encode(key.sign(b"m")).encode()
    assert key.verify_segment(b"m", segment)
    assert not key.verify_segment(b"n", segment)
    alphabet = jws._B64URL
    twin = segment[:-1] + bytes([alphabet[alphabet.index(segment[-1]) ^ 1]])
    with pytest.raises(InvalidToken):
        key.verify_segment(b"m", twin)


@pytest.mark.parametrize("raw", ["a.b.c", None, bytearray(b"a.b.c"), 1])
def test_decode_ascii_refuses_anything_but_bytes(raw: object) -> None:
    codec, _ = _codec_and_token("HS256")
    with pytest.raises(InvalidToken):
        codec.decode_ascii(raw, now=1_700_000_100)  # type: ignore[attr-defined]
