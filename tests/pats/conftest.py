"""Fixtures for the personal access token tests: one store per test, counted calls."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tokenware import Tokenware
from tokenware.core.encoding import BASE62
from tokenware.core.ops import Batch
from tokenware.stores import StorePair, store_from_url
from tokenware.testing import FrozenClock, make_secret_key

SECRET = make_secret_key("test-pats")


class Counting:
    """A store face that counts every call before passing it on."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def get(self, key: str) -> Any:
        self.calls.append("get")
        return self.inner.get(key)

    def get_many(self, keys: Sequence[str]) -> Any:
        self.calls.append("get_many")
        return self.inner.get_many(keys)

    def members(self, key: str) -> Any:
        self.calls.append("members")
        return self.inner.members(key)

    def apply(self, batch: Batch) -> Any:
        self.calls.append("apply")
        return self.inner.apply(batch)

    def purge(self, prefix: str) -> Any:
        self.calls.append("purge")
        return self.inner.purge(prefix)

    def ttl(self, key: str) -> Any:
        return self.inner.ttl(key)

    def close(self) -> None:
        self.inner.close()

    async def aclose(self) -> None:
        await self.inner.aclose()


class ACounting(Counting):
    """The async face, counted."""

    async def get(self, key: str) -> Any:  # type: ignore[override]
        self.calls.append("get")
        return await self.inner.get(key)

    async def get_many(self, keys: Sequence[str]) -> Any:  # type: ignore[override]
        self.calls.append("get_many")
        return await self.inner.get_many(keys)

    async def members(self, key: str) -> Any:  # type: ignore[override]
        self.calls.append("members")
        return await self.inner.members(key)

    async def apply(self, batch: Batch) -> Any:  # type: ignore[override]
        self.calls.append("apply")
        return await self.inner.apply(batch)

    async def purge(self, prefix: str) -> Any:  # type: ignore[override]
        self.calls.append("purge")
        return await self.inner.purge(prefix)


Factory = Callable[..., Tokenware]


def store_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'pats.db'}"
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture
def counted(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, clock: FrozenClock
) -> Iterator[tuple[StorePair, Counting]]:
    """A fresh store of ``backend`` whose sync face counts its calls."""
    pair = store_from_url(store_url(backend, request, tmp_path), clock=clock, timeout=5)
    sync = Counting(pair.sync)
    aio = ACounting(pair.aio)
    wrapped = StorePair(url=pair.url, sync=sync, aio=aio)  # type: ignore[arg-type]
    try:
        yield wrapped, sync
    finally:
        pair.sync.close()


@pytest.fixture
def make_tw(
    counted: tuple[StorePair, Counting], clock: FrozenClock, prefix: str
) -> Iterator[Factory]:
    """``Tokenware`` instances over ONE counted store; the prefix is purged afterwards."""
    pair, _ = counted

    def factory(**kwargs: Any) -> Tokenware:
        kwargs.setdefault("key_prefix", prefix)
        if "keys" not in kwargs:
            kwargs.setdefault("secret_key", SECRET)
        return Tokenware(store=pair, clock=clock, **kwargs)

    yield factory
    pair.sync.purge(f"{prefix}:")


@pytest.fixture
def tw(make_tw: Factory) -> Tokenware:
    return make_tw()


@pytest.fixture
def calls(counted: tuple[StorePair, Counting]) -> list[str]:
    """The list the store appends each call to (clear it before a measured step)."""
    return counted[1].calls


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
