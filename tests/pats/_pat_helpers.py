"""Helpers shared by the PAT tests (importable, unlike a conftest)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable

from tokenware import Tokenware
from tokenware.core.encoding import BASE62
from tokenware.testing import make_secret_key

SECRET = make_secret_key("test-pats")

Factory = Callable[..., Tokenware]


def legacy_token(
    *, ln: int = 10, r: int = 8, p: int = 1, prefix: str = "pat_"
) -> tuple[str, str, str, bytes]:
    """An @access-tokens token: ``(token, token_id, scrypt PHC, secret bytes)``.

    Built as their ``generate`` does: a 21-char id62, 32 random bytes in
    padded standard base64, ``$scrypt$ln=…,r=…,p=…$salt$hash`` with a
    16-byte salt and a 32-byte hash (unpadded base64).
    """
    token_id = "".join(secrets.choice(BASE62) for _ in range(21))
    secret = secrets.token_bytes(32)
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret, salt=salt, n=1 << ln, r=r, p=p, maxmem=1 << 28, dklen=32)

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode().rstrip("=")

    phc = f"$scrypt$ln={ln},r={r},p={p}${b64(salt)}${b64(digest)}"
    token = f"{prefix}{token_id}.{base64.b64encode(secret).decode()}"
    return token, token_id, phc, secret
