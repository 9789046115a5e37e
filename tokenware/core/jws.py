"""Compact JWS (RFC 7515) for three algorithms, strict and small.

Only what access tokens need: HS256, ES256 and EdDSA (Ed25519), compact
serialization, no unencoded payloads, no JWE, no keys from headers. The
primitives are ``hashlib``/``hmac`` and pyca/cryptography; no JOSE library at
run time.

Parsing is strict where common libraries are lenient (``reference/security.md``
§1.3, §3.1):

* the token is a ``str`` of at most ``max_size`` characters, checked before
  any other work;
* exactly three non-empty segments of the base64url alphabet, without
  padding, each *canonical* (unused trailing bits are zero), so one token has
  exactly one spelling;
* header and payload are UTF-8 (no BOM, no UTF-16/32), JSON objects, with no
  duplicate names, no ``NaN``/``Infinity`` and no lone surrogates.

Every failure raises :class:`~tokenware.errors.InvalidToken` with the
reason in ``detail`` (for logs only).

An :class:`Algorithm` is one key bound to one algorithm: the verifier never
takes the algorithm from the token, it compares the token's ``alg`` with the
key's.
"""

from __future__ import annotations

import hmac
import json
import re
from base64 import urlsafe_b64encode
from binascii import a2b_base64, b2a_base64
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from tokenware.core.keyed_mac import KeyedMac
from tokenware.errors import ConfigurationError, InvalidToken

__all__ = [
    "ALGORITHMS",
    "MAX_TOKEN_SIZE",
    "P256_ORDER",
    "Algorithm",
    "EdDSA",
    "Es256",
    "Hs256",
    "b64url_decode",
    "b64url_encode",
    "compact",
    "decode_segment",
    "loads_segment",
    "loads_strict",
    "parse",
    "segments",
    "split",
]

#: The algorithms tokenware signs and verifies with.
ALGORITHMS = ("HS256", "ES256", "EdDSA")

#: Default cap on a token's length in characters (RFC 8725bis suggests a bound).
MAX_TOKEN_SIZE = 8192

#: The order n of the P-256 group.
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

_B64URL = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_COMPACT_CHARS = _B64URL + b"."
# base64url -> base64, so binascii decodes directly.
_TO_STD = bytes.maketrans(b"-_", b"+/")
_TO_URL = bytes.maketrans(b"+/", b"-_")
# The characters allowed last in a canonical segment, by length % 4:
# 2 leftover characters carry 1 byte (the last one's low 4 bits unused),
# 3 carry 2 bytes (low 2 bits unused).
_LAST_OK = {
    2: frozenset(c for i, c in enumerate(_B64URL) if i & 0xF == 0),
    3: frozenset(c for i, c in enumerate(_B64URL) if i & 0x3 == 0),
}
_PAD = (b"", b"", b"==", b"=")
# A JSON escape that may produce a UTF-16 surrogate: the slow path then
# checks every string for a lone one.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


# --- base64url ------------------------------------------------------------------


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 §2)."""
    return urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def decode_segment(segment: bytes) -> bytes:
    """Decode one canonical, unpadded base64url segment, or raise ``InvalidToken``.

    The caller has ruled out ``+``, ``/`` and ``=`` (:func:`split` checks
    the whole alphabet, :func:`segments` just those three); here the
    length, the unused trailing bits and every other byte are checked, so
    that no two strings decode to the same bytes.
    """
    length = len(segment)
    rem = length % 4
    if rem:
        if rem == 1 or segment[-1] not in _LAST_OK[rem]:
            raise InvalidToken("non-canonical base64url")
        segment += _PAD[rem]
    try:
        out = a2b_base64(segment.translate(_TO_STD))
    except ValueError:  # binascii.Error: only possible with bytes outside the alphabet
        raise InvalidToken("not base64url") from None
    # a2b_base64 skips bytes outside the alphabet (strict_mode is 3.11+).
    # Each skipped byte takes 6 bits off a string whose length is not 1 mod 4,
    # so the output comes out shorter (or padding fails, above): the exact
    # length is the alphabet check, with no extra pass over the bytes.
    if len(out) != length * 3 // 4:
        raise InvalidToken("not base64url")
    return out


def b64url_decode(segment: str) -> bytes:
    """Decode a canonical, unpadded base64url string, or raise ``InvalidToken``."""
    if not segment.isascii():
        raise InvalidToken("not base64url")
    raw = segment.encode("ascii")
    if raw.translate(None, _B64URL):
        raise InvalidToken("not base64url")
    return decode_segment(raw)


# --- strict JSON ----------------------------------------------------------------


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise InvalidToken("duplicate name in a JSON object")
    return obj


def _no_constant(name: str) -> Any:
    raise InvalidToken(f"non-JSON constant {name}")


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
# The C scanner: (value, end index), or StopIteration when nothing parses at 0.
_SCAN: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]


def _has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def loads_strict(raw: bytes) -> dict[str, Any]:
    """Parse a JWS header or payload: a UTF-8 JSON object, strictly.

    Raises ``InvalidToken`` for invalid UTF-8, a BOM, JSON errors (including
    the int-digit limit and deep nesting), duplicate names, ``NaN`` or
    ``Infinity``, lone surrogates, or a top level that is not an object.
    """
    try:
        text = raw.decode("utf-8")
        try:
            # Fast path: the scanner alone, for JSON with no surrounding space.
            value, end = _SCAN(text, 0)
        except StopIteration:
            end = -1
        if end != len(text):
            # Slow path: whitespace around the value, or an error to report.
            # JSONDecoder.decode refuses a leading BOM ("Unexpected UTF-8 BOM").
            value = _DECODER.decode(text)
    except InvalidToken:
        raise
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError too
        raise InvalidToken("not UTF-8 JSON") from None
    if type(value) is not dict:
        raise InvalidToken("not a JSON object")
    if "\\" in text and _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        raise InvalidToken("lone UTF-16 surrogate in JSON")
    return value


def _dumps(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )


# --- algorithms -----------------------------------------------------------------


class Algorithm(Protocol):
    """One key bound to one JWS algorithm."""

    @property
    def alg(self) -> str:
        """The JWS ``alg`` value this key signs and verifies with."""

    @property
    def can_sign(self) -> bool:
        """True if this object holds a private (or secret) key."""

    def sign(self, data: bytes) -> bytes:
        """The raw JWS signature of ``data``."""

    def verify(self, data: bytes, signature: bytes) -> bool:
        """True if ``signature`` is this key's valid signature of ``data``."""

    def verify_segment(self, data: bytes, segment: bytes) -> bool:
        """:meth:`verify` of the signature a compact token's third segment
        encodes; raises ``InvalidToken`` for a segment that is not canonical
        base64url."""


class Hs256:
    """HMAC-SHA256 with a secret of at least 32 bytes (RFC 7518 §3.2).

    The inner and outer SHA-256 states of HMAC (RFC 2104) are computed once
    and copied per message: the same MAC as ``hmac.digest``, at about half the
    cost for a token-sized message.
    """

    __slots__ = ("_mac", "_secret")
    alg = "HS256"
    can_sign = True

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes) or len(secret) < 32:
            raise ConfigurationError("an HS256 key must be at least 32 bytes")
        self._secret = secret
        self._mac = KeyedMac(secret)

    @property
    def secret(self) -> bytes:
        """The HMAC key (for interop tests and configuration of other verifiers)."""
        return self._secret

    def sign(self, data: bytes) -> bytes:
        """HMAC-SHA256 of ``data``."""
        return self._mac(data)

    def verify(self, data: bytes, signature: bytes) -> bool:
        """Constant-time comparison with the expected MAC."""
        return hmac.compare_digest(self._mac(data), signature)

    def verify_segment(self, data: bytes, segment: bytes) -> bool:
        """Constant-time comparison of ``segment`` with the expected MAC's
        canonical base64url (43 characters): one string per MAC, so equal to
        decoding ``segment`` strictly and comparing bytes, without decoding."""
        expected = b2a_base64(self._mac(data), newline=False)[:43].translate(_TO_URL)
        return hmac.compare_digest(expected, segment)

    def __repr__(self) -> str:
        return "Hs256(<secret>)"


class Es256:
    """ECDSA on P-256 with SHA-256; signatures are raw ``r || s`` (64 bytes).

    Args:
        key: a P-256 private key (signs and verifies) or public key (verifies).
    """

    __slots__ = ("_private", "_public")
    alg = "ES256"

    def __init__(self, key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> None:
        if isinstance(key, ec.EllipticCurvePrivateKey):
            self._private: ec.EllipticCurvePrivateKey | None = key
            self._public = key.public_key()
        elif isinstance(key, ec.EllipticCurvePublicKey):
            self._private = None
            self._public = key
        else:
            raise ConfigurationError("an ES256 key must be a P-256 key object")
        if not isinstance(self._public.curve, ec.SECP256R1):
            raise ConfigurationError("an ES256 key must be on the P-256 curve")

    @property
    def can_sign(self) -> bool:
        """True with a private key."""
        return self._private is not None

    @property
    def private_key(self) -> ec.EllipticCurvePrivateKey | None:
        """The signing key, or ``None`` for a verify-only key."""
        return self._private

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The verification key."""
        return self._public

    def sign(self, data: bytes) -> bytes:
        """A raw 64-byte ``r || s`` signature of ``data``."""
        if self._private is None:
            raise ConfigurationError("this ES256 key has no private part")
        r, s = decode_dss_signature(self._private.sign(data, _ECDSA_SHA256))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def verify(self, data: bytes, signature: bytes) -> bool:
        """Check a raw ``r || s`` signature; refuse any other length and r, s outside [1, n)."""
        if len(signature) != 64:
            return False
        r = int.from_bytes(signature[:32], "big")
        s = int.from_bytes(signature[32:], "big")
        if not (0 < r < P256_ORDER and 0 < s < P256_ORDER):
            return False
        try:
            self._public.verify(encode_dss_signature(r, s), data, _ECDSA_SHA256)
        except InvalidSignature:
            return False
        return True

    def verify_segment(self, data: bytes, segment: bytes) -> bool:
        """:meth:`verify` of the strictly decoded ``segment``."""
        return self.verify(data, decode_segment(segment))

    def __repr__(self) -> str:
        return f"Es256(private={self.can_sign})"


class EdDSA:
    """Ed25519 (RFC 8037); signatures are 64 bytes.

    Args:
        key: an Ed25519 private key (signs and verifies) or public key.
    """

    __slots__ = ("_private", "_public")
    alg = "EdDSA"

    def __init__(self, key: ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey) -> None:
        if isinstance(key, ed25519.Ed25519PrivateKey):
            self._private: ed25519.Ed25519PrivateKey | None = key
            self._public = key.public_key()
        elif isinstance(key, ed25519.Ed25519PublicKey):
            self._private = None
            self._public = key
        else:
            raise ConfigurationError("an EdDSA key must be an Ed25519 key object")

    @property
    def can_sign(self) -> bool:
        """True with a private key."""
        return self._private is not None

    @property
    def private_key(self) -> ed25519.Ed25519PrivateKey | None:
        """The signing key, or ``None`` for a verify-only key."""
        return self._private

    @property
    def public_key(self) -> ed25519.Ed25519PublicKey:
        """The verification key."""
        return self._public

    def sign(self, data: bytes) -> bytes:
        """A 64-byte Ed25519 signature of ``data``."""
        if self._private is None:
            raise ConfigurationError("this EdDSA key has no private part")
        return self._private.sign(data)

    def verify(self, data: bytes, signature: bytes) -> bool:
        """Check a 64-byte Ed25519 signature."""
        if len(signature) != 64:
            return False
        try:
            self._public.verify(signature, data)
        except InvalidSignature:
            return False
        return True

    def verify_segment(self, data: bytes, segment: bytes) -> bool:
        """:meth:`verify` of the strictly decoded ``segment``."""
        return self.verify(data, decode_segment(segment))

    def __repr__(self) -> str:
        return f"EdDSA(private={self.can_sign})"


# --- compact serialization ------------------------------------------------------


def compact(header: Mapping[str, Any], payload: Mapping[str, Any], key: Algorithm) -> str:
    """Sign ``payload`` with ``key`` and serialize compactly.

    ``header["alg"]`` must be ``key.alg``; the JSON is compact UTF-8.
    """
    if header.get("alg") != key.alg:
        raise ConfigurationError("the header alg must be the key's algorithm")
    signing_input = b64url_encode(_dumps(header)) + "." + b64url_encode(_dumps(payload))
    signature = key.sign(signing_input.encode("ascii"))
    return signing_input + "." + b64url_encode(signature)


def split(token: object, max_size: int = MAX_TOKEN_SIZE) -> tuple[bytes, bytes, bytes]:
    """Check a compact token's shape: its ``(header, payload, signature)`` segments.

    The size cap comes first, then the alphabet: three non-empty segments of
    base64url characters and nothing else (no padding, no ``+``/``/``, no
    whitespace, no fourth dot).
    """
    if type(token) is not str:
        raise InvalidToken("a token must be a string")
    if len(token) > max_size:
        raise InvalidToken("token too large")
    if not token.isascii():
        raise InvalidToken("not a compact JWS")
    raw = token.encode("ascii")
    parts = raw.split(b".")
    if len(parts) != 3 or raw.translate(None, _COMPACT_CHARS) or not all(parts):
        raise InvalidToken("not a compact JWS")
    return parts[0], parts[1], parts[2]


def segments(raw: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """``(header, signing_input, payload, signature)`` of a token's ASCII bytes.

    The shape only: exactly two dots, three non-empty segments, and no
    ``+``, ``/`` or ``=`` anywhere. Every other byte is checked where its
    segment is used, so the token is not scanned once more for its alphabet
    (:func:`split` does that, for callers that want it up front): the
    payload and a header not seen before are decoded with
    :func:`decode_segment` (strict), a header seen before is only matched
    byte for byte against one that was, and the signature goes through
    :meth:`Algorithm.verify_segment` (decoded strictly, or compared with
    the expected MAC's canonical encoding). The caller checks the size.
    """
    signing_input, _, signature = raw.rpartition(b".")
    head, _, payload = signing_input.partition(b".")
    # int membership is a memchr; three of them cost less than one
    # translate() over the token.
    if (
        not (head and payload and signature)
        or 46 in payload  # "."
        or 43 in raw  # "+"
        or 47 in raw  # "/"
        or 61 in raw  # "="
    ):
        raise InvalidToken("not a compact JWS")
    return head, signing_input, payload, signature


def parse(
    token: object, max_size: int = MAX_TOKEN_SIZE
) -> tuple[dict[str, Any], bytes, bytes, bytes]:
    """Split and check ``token``; decode its header.

    Returns:
        ``(header, signing_input, payload_segment, signature)``: the header
        object, the bytes the signature covers, the still-encoded payload
        (decode it with :func:`loads_segment` once the signature verified)
        and the raw signature.
    """
    head, payload, signature = split(token, max_size)
    header = loads_strict(decode_segment(head))
    return header, head + b"." + payload, payload, decode_segment(signature)


def loads_segment(segment: bytes) -> dict[str, Any]:
    """Decode a base64url segment holding a strict JSON object."""
    return loads_strict(decode_segment(segment))
