"""Sealed envelopes: AES-256-GCM with a versioned header and a key id.

Layout of a sealed value, base64url without padding::

    version(1) || key-id(1) || nonce(12) || ciphertext || tag(16)

* ``version`` is ``0x01``. Anything else (ms-token's ``"v1"`` CBC tokens
  start with ``0x76``, its legacy ``createCipher`` tokens with arbitrary
  bytes) is refused before any decryption.
* ``key-id`` is one byte derived from the root key (an HMAC of it, so it
  reveals nothing). The newest key of the ring seals; every key opens. On a
  collision of the one-byte id every matching key is tried; GCM's tag picks
  the right one.
* The AES key is ``derive_key(root, "challenge/seal")``: one per root key,
  useless for any other purpose.
* The associated data is ``version || key-id || context``: the caller's
  ``context`` (a purpose label, and whatever else it binds such as an
  action) must be the same to open, and the header cannot be swapped.

Any tampering (a flipped bit anywhere, a truncation, another key id, a
foreign or rotated-out key, a malformed string) raises
:class:`~tokenware.errors.InvalidToken`; never another exception.
"""

from __future__ import annotations

import base64
import binascii
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tokenware.core.encoding import Random
from tokenware.errors import InvalidToken
from tokenware.keys import KeyRing, RootKey

__all__ = ["MAX_SEALED_LENGTH", "SEAL_VERSION", "Sealer"]

#: The only envelope version this module writes and reads.
SEAL_VERSION = 1
NONCE_LENGTH = 12
TAG_LENGTH = 16
HEADER_LENGTH = 2
#: Longest sealed string accepted (characters); longer input is refused unread.
MAX_SEALED_LENGTH = 4096
_MIN_RAW = HEADER_LENGTH + NONCE_LENGTH + TAG_LENGTH
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
_PURPOSE = "challenge/seal"


def _key_byte(key: RootKey) -> int:
    return key.derive(_PURPOSE + "/kid", 1)[0]


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes | None:
    """Strict base64url without padding; ``None`` for anything else."""
    if not _BASE64URL.fullmatch(text) or len(text) % 4 == 1:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    # Canonical only: unused trailing bits must be zero, so one envelope has
    # exactly one spelling.
    return raw if _b64encode(raw) == text else None


class Sealer:
    """Seals and opens values with the AES-256-GCM keys of a key ring.

    Args:
        ring: the key ring; its newest key seals, all of them open.
        rand: source of random bytes for nonces.
    """

    __slots__ = ("_rand", "_ring")

    def __init__(self, ring: KeyRing, rand: Random) -> None:
        self._ring = ring
        self._rand = rand

    def seal(self, plaintext: bytes, context: bytes) -> str:
        """Encrypt ``plaintext`` bound to ``context``; a URL-safe string."""
        key = self._ring.current
        header = bytes((SEAL_VERSION, _key_byte(key)))
        nonce = self._rand(NONCE_LENGTH)
        if len(nonce) != NONCE_LENGTH:
            raise ValueError("the random source returned too few bytes")
        sealed = AESGCM(key.derive(_PURPOSE)).encrypt(nonce, plaintext, header + context)
        return _b64encode(header + nonce + sealed)

    def open(self, token: object, context: bytes) -> bytes:
        """The plaintext of a value sealed with ``context``.

        Raises:
            InvalidToken: malformed, tampered, sealed for another context, or
                by a key not in the ring.
        """
        if not isinstance(token, str) or not token or len(token) > MAX_SEALED_LENGTH:
            raise InvalidToken("sealed value: malformed")
        raw = _b64decode(token)
        if raw is None or len(raw) < _MIN_RAW:
            raise InvalidToken("sealed value: malformed")
        if raw[0] != SEAL_VERSION:
            raise InvalidToken("sealed value: unknown version")
        header, nonce, sealed = raw[:2], raw[2 : 2 + NONCE_LENGTH], raw[2 + NONCE_LENGTH :]
        for key in self._ring.keys:
            if _key_byte(key) != header[1]:
                continue
            try:
                return AESGCM(key.derive(_PURPOSE)).decrypt(nonce, sealed, header + context)
            except InvalidTag:
                continue
        raise InvalidToken("sealed value: does not open with any key")
