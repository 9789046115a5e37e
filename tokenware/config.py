"""Settings: one frozen, keyword-only dataclass, validated once at construction.

``Tokenware(...)`` builds a :class:`Settings` from its keyword arguments and
``Tokenware.from_env()`` builds one from ``TOKENWARE_*`` environment
variables (see :func:`settings_from_env`). Invalid values raise
:class:`~tokenware.errors.ConfigurationError` at once, never later in a
request.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tokenware.core.session import MAX_TTL
from tokenware.errors import ConfigurationError
from tokenware.keys import KeyRing
from tokenware.stores.base import StorePair

__all__ = ["DEFAULT_STORE_URL", "ENV_PREFIX", "Settings", "parse_secret", "settings_from_env"]

#: The embedded default store: a SQLite file in the working directory.
DEFAULT_STORE_URL = "sqlite:///tokenware.db"
ENV_PREFIX = "TOKENWARE_"
_PREFIX = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_ALGORITHMS = ("HS256", "ES256", "EdDSA")


def _positive(name: str, value: object, *, maximum: float | None = None) -> float:
    # math.isfinite: "inf" from TOKENWARE_SESSION_TTL passed the old check
    # and every session write then failed (an infinite expiry is not JSON).
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not value > 0
    ):
        raise ConfigurationError(f"{name} must be a positive number of seconds, got {value!r}")
    if maximum is not None and value > maximum:
        raise ConfigurationError(f"{name} must be at most {maximum} seconds, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Every tokenware setting, validated in ``__post_init__``.

    Attributes:
        store: a store URL (``memory://``, ``sqlite:///path.db``,
            ``redis://host:port/db``, ``rediss://...``) or an open
            :class:`~tokenware.stores.base.StorePair`.
        keys: the key ring (built from ``secret_key`` by ``Tokenware``).
        issuer: the JWT ``iss`` claim and expected issuer.
        audience: the JWT ``aud`` claim and expected audience.
        jwt_algorithm: ``HS256`` (default), ``ES256`` or ``EdDSA``.
        jwt_key: ``None`` to derive the JWT key from the root secret, else
            HS256 key bytes or a private key.
        clock: the time source; every expiry decision made in Python reads it.
        key_prefix: prefix of every store key tokenware writes.
        session_ttl: seconds a session lives when ``add`` gets no ``ttl``.
        store_timeout: seconds a store command may take before the store
            counts as unavailable (SQLite: the lock wait).
        store_connect_timeout: seconds to open a network connection.
    """

    store: str | StorePair = DEFAULT_STORE_URL
    keys: KeyRing
    issuer: str | None = None
    audience: str | None = None
    jwt_algorithm: str = "HS256"
    jwt_key: Any = field(default=None, repr=False)
    clock: Callable[[], float] = time.time
    key_prefix: str = "tw"
    session_ttl: float = 30 * 24 * 3600.0
    store_timeout: float = 0.5
    store_connect_timeout: float = 0.5

    def __post_init__(self) -> None:
        if not isinstance(self.store, (str, StorePair)):
            raise ConfigurationError("store must be a URL string or a StorePair")
        if not isinstance(self.keys, KeyRing):
            raise ConfigurationError("keys must be a KeyRing")
        if self.jwt_algorithm not in _ALGORITHMS:
            raise ConfigurationError(
                f"jwt_algorithm must be one of {', '.join(_ALGORITHMS)}, got {self.jwt_algorithm!r}"
            )
        for name in ("issuer", "audience"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ConfigurationError(f"{name} must be a non-empty string or None")
        if not callable(self.clock):
            raise ConfigurationError("clock must be a callable returning seconds since the epoch")
        # fullmatch: with match(), "$" also matched before a trailing "\n".
        if not isinstance(self.key_prefix, str) or not _PREFIX.fullmatch(self.key_prefix):
            raise ConfigurationError(
                f"key_prefix must match {_PREFIX.pattern}, got {self.key_prefix!r}"
            )
        _positive("session_ttl", self.session_ttl, maximum=MAX_TTL)
        _positive("store_timeout", self.store_timeout, maximum=60)
        _positive("store_connect_timeout", self.store_connect_timeout, maximum=60)


def parse_secret(text: str) -> bytes:
    """Decode a secret from the environment.

    ``base64:<b64>`` and ``hex:<hex>`` are decoded; anything else is taken as
    UTF-8 text.
    """
    try:
        if text.startswith("base64:"):
            return base64.b64decode(text[7:], validate=True)
        if text.startswith("hex:"):
            return bytes.fromhex(text[4:])
    except (binascii.Error, ValueError) as exc:
        raise ConfigurationError(f"{ENV_PREFIX}SECRET_KEY is not valid: {exc}") from None
    return text.encode("utf-8")


def settings_from_env(environ: Mapping[str, str] | None = None, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments for ``Tokenware(...)`` from ``TOKENWARE_*`` variables.

    ==================================  ========================================
    ``TOKENWARE_STORE_URL``             store URL (default ``sqlite:///tokenware.db``)
    ``TOKENWARE_SECRET_KEY``            root secret; ``base64:`` / ``hex:`` prefixes decode
    ``TOKENWARE_ISSUER``                JWT issuer
    ``TOKENWARE_AUDIENCE``              JWT audience
    ``TOKENWARE_JWT_ALGORITHM``         ``HS256``, ``ES256`` or ``EdDSA``
    ``TOKENWARE_KEY_PREFIX``            store key prefix (default ``tw``)
    ``TOKENWARE_SESSION_TTL``           default session lifetime, seconds
    ``TOKENWARE_STORE_TIMEOUT``         store command timeout, seconds
    ``TOKENWARE_STORE_CONNECT_TIMEOUT`` store connect timeout, seconds
    ==================================  ========================================

    Explicit ``overrides`` win over the environment.
    """
    env = os.environ if environ is None else environ
    kwargs: dict[str, Any] = {}
    text = {
        "STORE_URL": "store",
        "ISSUER": "issuer",
        "AUDIENCE": "audience",
        "JWT_ALGORITHM": "jwt_algorithm",
        "KEY_PREFIX": "key_prefix",
    }
    for var, name in text.items():
        if env.get(ENV_PREFIX + var):
            kwargs[name] = env[ENV_PREFIX + var]
    numbers = {
        "SESSION_TTL": "session_ttl",
        "STORE_TIMEOUT": "store_timeout",
        "STORE_CONNECT_TIMEOUT": "store_connect_timeout",
    }
    for var, name in numbers.items():
        raw = env.get(ENV_PREFIX + var)
        if raw:
            try:
                kwargs[name] = float(raw)
            except ValueError:
                raise ConfigurationError(
                    f"{ENV_PREFIX}{var} must be a number, got {raw!r}"
                ) from None
    secret = env.get(ENV_PREFIX + "SECRET_KEY")
    if secret:
        kwargs["secret_key"] = parse_secret(secret)
    kwargs.update(overrides)
    return kwargs
