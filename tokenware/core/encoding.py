"""Small encodings shared by every token format: base62 and strict JSON."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from tokenware.errors import ValidationError

__all__ = ["BASE62", "Random", "is_base62", "json_bytes", "json_load", "random_base62"]

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BASE62_SET = frozenset(BASE62)

#: A source of random bytes, such as :func:`secrets.token_bytes`.
Random = Callable[[int], bytes]

# 248 = 4 * 62: bytes at or above it are rejected so every character is
# equally likely (tokenstore's ``byte % 62`` favoured A-H by 25%).
_LIMIT = 248


def random_base62(length: int, rand: Random) -> str:
    """``length`` uniformly random base62 characters from ``rand``."""
    out: list[str] = []
    while len(out) < length:
        # Ask for a little more than needed: about 3% of bytes are rejected.
        for byte in rand(length - len(out) + 4):
            if byte < _LIMIT:
                out.append(BASE62[byte % 62])
                if len(out) == length:
                    break
    return "".join(out)


def base62_bits(length: int) -> float:
    """Bits of entropy in ``length`` random base62 characters."""
    return length * math.log2(62)


def is_base62(text: str) -> bool:
    """True if ``text`` is non-empty and only base62 characters."""
    return bool(text) and _BASE62_SET.issuperset(text)


def json_bytes(value: Any, *, what: str) -> bytes:
    """Encode ``value`` as compact JSON, or raise a clear ``ValidationError``.

    NaN and infinities are refused: they are not JSON and other languages
    reading the store would choke on them.
    """
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{what} must be JSON-serialisable: {exc}") from None
    return text.encode("utf-8")


def json_load(raw: bytes) -> Any:
    """Decode JSON written by :func:`json_bytes` (UTF-8).

    Bytes that are not UTF-8 raise ``UnicodeDecodeError``, a ``ValueError``
    like every other JSON error. Decoding first skips ``json.loads``'
    encoding detection, which every session and PAT verify would pay.
    """
    return json.loads(raw.decode("utf-8"))
