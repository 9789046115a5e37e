"""``Tokenware`` and ``tw.aio``: one store, one key ring, two faces."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Sequence
from pathlib import Path

import pytest

from tokenware import AsyncTokenware, KeyRing, Tokenware
from tokenware.core.ops import Batch
from tokenware.errors import NotFound, StoreUnavailable
from tokenware.stores import StorePair, store_from_url
from tokenware.testing import FrozenClock, make_secret_key

SECRET = make_secret_key("test-facade")


class ClosingStore:
    """A real memory store that records ``close()``."""

    def __init__(self) -> None:
        self.inner = store_from_url("memory://")
        self.closed = 0

    def get(self, key: str) -> bytes | None:
        return self.inner.sync.get(key)

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return self.inner.sync.get_many(keys)

    def members(self, key: str) -> frozenset[str]:
        return self.inner.sync.members(key)

    def apply(self, batch: Batch) -> bool:
        return self.inner.sync.apply(batch)

    def purge(self, prefix: str) -> int:
        return self.inner.sync.purge(prefix)

    def ttl(self, key: str) -> float | None:
        return self.inner.sync.ttl(key)

    def close(self) -> None:
        self.closed += 1


def test_context_manager_closes_the_store() -> None:
    store = ClosingStore()
    pair = StorePair(url="memory://", sync=store, aio=store.inner.aio)
    with Tokenware(store=pair, secret_key=SECRET) as tw:
        assert isinstance(tw, Tokenware)
        s = tw.sessions.add("alice")
        assert store.closed == 0
    assert store.closed == 1
    assert s.key is not None


def test_context_manager_closes_the_store_on_error() -> None:
    store = ClosingStore()
    pair = StorePair(url="memory://", sync=store, aio=store.inner.aio)
    with pytest.raises(NotFound), Tokenware(store=pair, secret_key=SECRET) as tw:
        tw.sessions.get("0" * 22)
    assert store.closed == 1


def test_sqlite_context_manager_releases_the_file(tmp_path: Path) -> None:
    db = tmp_path / "facade.db"
    with Tokenware(store=f"sqlite:///{db}", secret_key=SECRET) as tw:
        s = tw.sessions.add("alice", {"a": 1})
    # A second instance (like another process) reads what the first wrote.
    with Tokenware(store=f"sqlite:///{db}", secret_key=SECRET) as again:
        assert s.key is not None
        assert again.sessions.get_by_key(s.key).attrs == {"a": 1}


def test_aio_shares_the_store_keys_and_settings(clock: FrozenClock) -> None:
    tw = Tokenware(store="memory://", secret_key=SECRET, clock=clock)
    assert isinstance(tw.aio, AsyncTokenware)
    assert tw.aio.settings is tw.settings
    s = tw.sessions.add("alice", {"n": 1})

    async def main() -> tuple[str, str]:
        got = await tw.aio.sessions.get(s.id)
        created = await tw.aio.sessions.add("bob")
        await tw.aio.aclose()
        return got.id, created.id

    seen, bob = asyncio.run(main())
    assert seen == s.id
    assert tw.sessions.get(bob).owner_id == "bob"


def test_aio_methods_are_coroutines_with_the_same_names() -> None:
    tw = Tokenware(store="memory://", secret_key=SECRET)
    coro = tw.aio.sessions.list("alice")
    assert asyncio.iscoroutine(coro)
    assert asyncio.run(coro) == []
    coro = tw.aio.authenticate(None)
    assert asyncio.iscoroutine(coro)
    coro.close()


def test_clock_drives_expiry_decisions(clock: FrozenClock) -> None:
    tw = Tokenware(store="memory://", secret_key=SECRET, clock=clock)
    s = tw.sessions.add("alice", ttl=5)
    assert s.created_at == clock()
    clock.advance(5)
    with pytest.raises(NotFound):
        tw.sessions.get(s.id)


def test_random_source_is_injected() -> None:
    def make() -> Tokenware:
        rng = random.Random(1234)  # deterministic on purpose, tests only
        return Tokenware(
            store="memory://", secret_key=SECRET, clock=FrozenClock(), random=rng.randbytes
        )

    a, b = make().sessions.add("alice"), make().sessions.add("alice")
    assert (a.key, a.id) == (b.key, b.id)
    c = Tokenware(store="memory://", secret_key=SECRET).sessions.add("alice")
    assert c.key != a.key


def test_key_ring_instead_of_a_secret() -> None:
    ring = KeyRing.from_secret(SECRET, kid="k1")
    tw = Tokenware(store="memory://", keys=ring)
    assert tw.settings.keys is ring
    s = tw.sessions.add("alice")
    assert tw.authenticate(f"Bearer {s.key}").subject == "alice"


def test_repr_names_the_store_without_secrets() -> None:
    pytest.importorskip("redis")
    tw = Tokenware(store="redis://:hunter2@127.0.0.1:1/0", secret_key=b"Q" * 32, key_prefix="app")
    try:
        text = repr(tw)
        assert "127.0.0.1" in text and "app" in text
        assert "hunter2" not in text
        assert "QQQQ" not in text
    finally:
        tw.close()


def test_store_outage_surfaces_as_store_unavailable_on_every_face() -> None:
    pytest.importorskip("redis")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    tw = Tokenware(
        store=f"redis://127.0.0.1:{port}/0",
        secret_key=SECRET,
        store_timeout=0.2,
        store_connect_timeout=0.2,
    )
    try:
        for call in (
            lambda: tw.sessions.add("alice"),
            lambda: tw.sessions.get("0" * 22),
            lambda: tw.sessions.list("alice"),
            lambda: tw.sessions.make_hash("v"),
        ):
            with pytest.raises(StoreUnavailable):
                call()

        async def main() -> None:
            try:
                with pytest.raises(StoreUnavailable):
                    await tw.aio.sessions.get("0" * 22)
            finally:
                await tw.aio.aclose()

        asyncio.run(main())
    finally:
        tw.close()


def test_async_with_closes_the_async_face(tmp_path: Path) -> None:
    """``async with tw.aio`` closes the async store; the sync face stays usable."""
    tw = Tokenware(store=f"sqlite:///{tmp_path / 'tw.db'}", secret_key=SECRET)

    async def main() -> str:
        async with tw.aio as atw:
            return (await atw.sessions.add("carol")).id

    sid = asyncio.run(main())
    assert tw.sessions.get(sid).owner_id == "carol"
    tw.close()
