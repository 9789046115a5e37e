"""Write tests/js/vectors.json: TWHS1 test vectors made by the Python server code.

Deterministic (fixed keys, nonces and IV), so the committed file can be
checked for staleness by ``tests/handshake/test_node_client.py``::

    .venv/bin/python tests/js/make_vectors.py
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tokenware.core import handshake as core

OUT = Path(__file__).with_name("vectors.json")
ORIGIN = "https://app.example.com"
CSRF = "AAECAwQFBgcICQoLDA0ODw.1800000000.c2lnbmF0dXJlLW5vdC1jaGVja2VkLWhlcmU"


def _det(label: str, n: int) -> bytes:
    return hashlib.sha256(label.encode()).digest()[:n]


def _key(label: str) -> ec.EllipticCurvePrivateKey:
    scalar = int.from_bytes(hashlib.sha256(label.encode()).digest(), "big") % (2**255)
    return ec.derive_private_key(scalar, ec.SECP256R1())


def _point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def build() -> dict[str, Any]:
    client = _key("tokenware-vector-client")
    server = _key("tokenware-vector-server")
    epk_c, n_c = _point(client), _det("n_c", 16)
    header = f"v1.{core.b64u(epk_c)}.{core.b64u(n_c)}"
    key, epk, nonce = core.load_client_key(core.parse_request(header))
    accepted = core.Accepted(
        client_key=key, epk=epk, nonce=nonce, origin=ORIGIN, csrf_token=CSRF, handshake_id="x"
    )
    plaintext = {
        "access_token": "eyJ.vector.token",
        "token_type": "Bearer",
        "expires_in": 900,
        "exp": 1800000900,
    }
    raw = json.dumps(plaintext, separators=(",", ":")).encode()
    stream = iter([_det("n_s", 16), _det("iv", 12)])
    reply = core.seal(accepted, raw, rand=lambda n: next(stream), server_key=server)
    th = core.transcript_hash(
        origin=ORIGIN, epk_c=epk_c, n_c=n_c, epk_s=reply.epk, n_s=reply.nonce, csrf_token=CSRF
    )
    nums = client.private_numbers()
    b64_cases = [bytes(range(n)) for n in (0, 1, 2, 3, 4, 5, 16, 65)] + [b"\xff\xfe\xfd" * 7]
    return {
        "origin": ORIGIN,
        "csrf": CSRF,
        "client": {
            "jwk": {
                "kty": "EC",
                "crv": "P-256",
                "d": core.b64u(nums.private_value.to_bytes(32, "big")),
                "x": core.b64u(nums.public_numbers.x.to_bytes(32, "big")),
                "y": core.b64u(nums.public_numbers.y.to_bytes(32, "big")),
            },
            "epk": core.b64u(epk_c),
            "nonce": core.b64u(n_c),
            "header": header,
        },
        "server": {
            "epk": core.b64u(reply.epk),
            "nonce": core.b64u(reply.nonce),
            "iv": core.b64u(reply.iv),
        },
        "th": core.b64u(th),
        "plaintext": plaintext,
        "reply_header": reply.header_value,
        "reply_body": reply.json(),
        "b64u": [{"hex": b.hex(), "text": core.b64u(b)} for b in b64_cases],
        # 65 bytes end in 2 unused bits, 16 bytes in 4: a set unused bit is non-canonical.
        "b64u_invalid": [
            core.b64u(epk_c)[:-1] + "B",
            core.b64u(n_c)[:-1] + "B",
            "AAA=",
            "A+/A",
            "A",
            "AB C",
        ],
    }


def main() -> int:
    OUT.write_text(json.dumps(build(), indent=2, ensure_ascii=False) + "\n", "utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
