"""Fixtures for the personal access token tests: one store per test, counted calls."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from _pat_helpers import SECRET, Factory
from _support import store_url

from tokenware import Tokenware
from tokenware.core.ops import Batch
from tokenware.stores import StorePair, store_from_url
from tokenware.testing import FrozenClock


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


@pytest.fixture
def counted(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, clock: FrozenClock
) -> Iterator[tuple[StorePair, Counting]]:
    """A fresh store of ``backend`` whose sync face counts its calls."""
    pair = store_from_url(store_url(backend, request, tmp_path, "pats"), clock=clock, timeout=5)
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
