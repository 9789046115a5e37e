"""Helpers shared by the handshake tests (importable, unlike a conftest).

:class:`RefClient` is an independent reference client for TWHS1 written from
``reference/security.md`` §2.5 and §2.7 with ``cryptography`` only: it does
not call :mod:`tokenware.core.handshake`, so a test that opens a reply with
it checks the server against the specification, not against itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tokenware import Tokenware
from tokenware.testing import make_secret_key

SECRET = make_secret_key("test-handshake")
ORIGIN = "https://app.example.com"
LABEL = b"tokenware-hs-v1"


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def th(origin: str, epk_c: bytes, n_c: bytes, epk_s: bytes, n_s: bytes, csrf: str) -> bytes:
    o = origin.encode()
    data = LABEL + b"\x00" + struct.pack(">H", len(o)) + o + epk_c + n_c + epk_s + n_s
    return hashlib.sha256(data + hashlib.sha256(csrf.encode()).digest()).digest()


@dataclass
class RefClient:
    """One browser-side handshake: a single-use key pair and nonce."""

    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    nonce: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def epk(self) -> bytes:
        return point(self.key)

    @property
    def header(self) -> str:
        return f"v1.{b64u(self.epk)}.{b64u(self.nonce)}"

    def open_fields(
        self, epk_s: bytes, n_s: bytes, iv: bytes, ct: bytes, *, csrf: str, origin: str = ORIGIN
    ) -> dict[str, Any]:
        """Decrypt; raises ``InvalidTag`` (or ``ValueError``) on any mismatch."""
        peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), epk_s)
        z = self.key.exchange(ec.ECDH(), peer)
        t = th(origin, self.epk, self.nonce, epk_s, n_s, csrf)
        k = HKDF(hashes.SHA256(), 32, self.nonce + n_s, LABEL + b" key" + t).derive(z)
        return json.loads(AESGCM(k).decrypt(iv, ct, t))  # type: ignore[no-any-return]

    def open_header(self, value: str, *, csrf: str, origin: str = ORIGIN) -> dict[str, Any]:
        version, *parts = value.split(".")
        assert version == "v1" and len(parts) == 4
        epk_s, n_s, iv, ct = (unb64u(p) for p in parts)
        return self.open_fields(epk_s, n_s, iv, ct, csrf=csrf, origin=origin)

    def open_body(self, obj: dict[str, Any], *, csrf: str, origin: str = ORIGIN) -> dict[str, Any]:
        assert obj["v"] == 1
        fields = (unb64u(obj[k]) for k in ("epk", "n", "iv", "ct"))
        return self.open_fields(*fields, csrf=csrf, origin=origin)


def make_tw(stores: Any, clock: Any, prefix: str, **configure: Any) -> Tokenware:
    """A Tokenware over ``stores`` whose handshake allows :data:`ORIGIN`."""
    tw = Tokenware(store=stores, clock=clock, secret_key=SECRET, key_prefix=prefix)
    configure.setdefault("origins", [ORIGIN])
    tw.handshake = tw.handshake.configure(**configure)
    tw.aio.handshake = tw.aio.handshake.configure(**configure)
    return tw
