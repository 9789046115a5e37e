"""tw.throttle on memory, SQLite and a real Redis: exactness, concurrency, skew, outages.

Memory and SQLite run on a FrozenClock. Redis uses its own clock (``TIME``),
so Redis tests either use rates slow enough that the test's own duration
cannot free a unit, or finish well inside one emission interval.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from _support import NETWORKED, backend_url

from tokenware import Tokenware
from tokenware.errors import StoreUnavailable
from tokenware.stores import store_from_url
from tokenware.testing import FrozenClock, make_secret_key


def make_tw(backend: str, request: pytest.FixtureRequest, tmp_path: Path,
            clock: FrozenClock, prefix: str) -> Tokenware:  # fmt: skip
    if backend == "memory":
        store = "memory://"
    elif backend == "sqlite":
        store = f"sqlite:///{tmp_path / 'throttle.db'}"
    else:
        store = backend_url(backend, request)
    # A generous lock wait: 8 threads queueing on SQLite's one writer may wait
    # longer than the 0.5 s default, which would (correctly) be StoreUnavailable.
    return Tokenware(store=store, secret_key=make_secret_key(), clock=clock, key_prefix=prefix,
                     store_timeout=10.0)  # fmt: skip


@pytest.fixture
def tw(backend: str, request: pytest.FixtureRequest, tmp_path: Path, clock: FrozenClock,
       prefix: str) -> Iterator[Tokenware]:  # fmt: skip
    """A Tokenware on each backend (memory and SQLite on the frozen clock)."""
    t = make_tw(backend, request, tmp_path, clock, prefix)
    # Open the store once before any test spawns threads: several threads
    # opening a brand-new SQLite file at once can meet "database is locked"
    # from PRAGMA journal_mode=WAL, which does not wait on busy_timeout.
    t.throttle.hit("warm-up", "1/second", cost=0)
    try:
        yield t
    finally:
        t.close()


def frozen_only(backend: str) -> None:
    if backend in NETWORKED:
        pytest.skip("needs the store to follow the FrozenClock; Redis reads TIME")


def test_threads_allow_exactly_25(tw: Tokenware) -> None:
    """200 hits from 8 threads against '25/minute' allow exactly 25."""
    allowed: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            d = tw.throttle.hit("user:1", "25/minute")
            with lock:
                allowed.append(d.allowed)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(allowed) == 200
    assert sum(allowed) == 25


def test_asyncio_tasks_allow_exactly_25(tw: Tokenware) -> None:
    """200 hits from 50 concurrent asyncio tasks against '25/minute' allow exactly 25.

    50, not 200, tasks at once: redis.asyncio's pool holds 100 connections
    and refuses (MaxConnectionsError, so StoreUnavailable) beyond that.
    """

    async def worker() -> list[bool]:
        return [(await tw.aio.throttle.hit("user:1", "25/minute")).allowed for _ in range(4)]

    async def main() -> list[bool]:
        try:
            results = await asyncio.gather(*(worker() for _ in range(50)))
            return [a for r in results for a in r]
        finally:
            await tw.aio.aclose()

    allowed = asyncio.run(main())
    assert len(allowed) == 200 and sum(allowed) == 25


def test_case_111_thousand_hits_eight_workers(tw: Tokenware) -> None:
    """Case 111: 1000 concurrent hits from 8 workers never exceed the capacity."""
    allowed: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(125):
            d = tw.throttle.hit("k", "25/hour")
            with lock:
                allowed.append(d.allowed)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(allowed) == 1000 and sum(allowed) == 25


def test_next_hit_after_interval_not_window(
    backend: str, tw: Tokenware, clock: FrozenClock
) -> None:
    """After the burst of 25, one hit passes 2.4 s later (period/limit), not 60 s later."""
    frozen_only(backend)
    assert sum(tw.throttle.hit("k", "25/minute").allowed for _ in range(30)) == 25
    denied = tw.throttle.hit("k", "25/minute")
    assert not denied.allowed and denied.retry_after == pytest.approx(2.4)
    clock.advance(2.3)
    assert not tw.throttle.hit("k", "25/minute").allowed
    clock.advance(0.1)
    assert tw.throttle.hit("k", "25/minute").allowed
    assert not tw.throttle.hit("k", "25/minute").allowed


def test_case_108_minute_boundary_not_doubled(
    backend: str, tw: Tokenware, clock: FrozenClock
) -> None:
    """Case 108: 2x quota straddling a minute boundary allows capacity + rate x elapsed."""
    frozen_only(backend)
    clock.set(1_800_000_059.9)  # 0.1 s before a minute boundary
    first = sum(tw.throttle.hit("k", "25/minute").allowed for _ in range(25))
    clock.advance(0.2)  # now 0.1 s into the next minute
    second = sum(tw.throttle.hit("k", "25/minute").allowed for _ in range(25))
    assert (first, second) == (25, 0)  # 0.2 s frees 0.2 / 2.4 < 1 unit
    clock.advance(2.4)
    assert sum(tw.throttle.hit("k", "25/minute").allowed for _ in range(25)) == 1


def test_decision_fields(backend: str, tw: Tokenware, clock: FrozenClock) -> None:
    """Decision carries limit, remaining, retry_after and reset_after of the deciding rate."""
    frozen_only(backend)
    d = tw.throttle.hit("k", "10/minute")
    assert (d.allowed, d.limit, d.remaining, d.retry_after, d.reset_after) == (
        True, 10, 9, 0.0, 6.0)  # fmt: skip
    d = tw.throttle.hit("k", "10/minute", cost=9)
    assert (d.allowed, d.remaining, d.reset_after) == (True, 0, 60.0)
    d = tw.throttle.hit("k", "10/minute")
    assert (d.allowed, d.remaining, d.retry_after) == (False, 0, 6.0)


def test_several_rates_all_apply_and_denial_consumes_nothing(
    backend: str, tw: Tokenware, clock: FrozenClock
) -> None:
    """'2/second, 5/minute': both apply; hits denied by the first do not drain the second."""
    frozen_only(backend)
    rule = "2/second, 5/minute"
    results = [tw.throttle.hit("k", rule).allowed for _ in range(10)]
    assert results == [True, True] + [False] * 8
    clock.advance(1)
    assert [tw.throttle.hit("k", rule).allowed for _ in range(3)] == [True, True, False]
    clock.advance(1)
    d = tw.throttle.hit("k", rule)
    assert d.allowed and d.remaining == 0 and d.limit == 5
    d = tw.throttle.hit("k", rule)
    assert not d.allowed and d.limit == 5 and d.retry_after == pytest.approx(12 - 2)


def test_cost_zero_checks_without_counting(tw: Tokenware) -> None:
    """cost=0 reports the state and counts nothing."""
    for _ in range(5):
        assert tw.throttle.hit("k", "2/hour", cost=0).remaining == 2
    assert tw.throttle.hit("k", "2/hour", cost=2).allowed
    assert tw.throttle.hit("k", "2/hour", cost=0).remaining == 0


def test_keys_separate_callers(tw: Tokenware) -> None:
    """Different keys have independent limits."""
    assert tw.throttle.hit("a", "1/hour").allowed
    assert not tw.throttle.hit("a", "1/hour").allowed
    assert tw.throttle.hit("b", "1/hour").allowed


@pytest.mark.redis
def test_two_app_servers_30s_apart_share_one_limit(redis_url: str, prefix: str) -> None:
    """Two Tokenware objects with clocks 30 s apart share one Redis limit exactly."""
    a = Tokenware(store=redis_url, secret_key=make_secret_key(), key_prefix=prefix,
                  clock=FrozenClock(1_800_000_000.0))  # fmt: skip
    b = Tokenware(store=redis_url, secret_key=make_secret_key(), key_prefix=prefix,
                  clock=FrozenClock(1_800_000_030.0))  # fmt: skip
    try:
        got = [(a if i % 2 else b).throttle.hit("u", "10/hour") for i in range(14)]
        assert [d.allowed for d in got] == [True] * 10 + [False] * 4
        assert [d.remaining for d in got[:10]] == list(range(9, -1, -1))
        retry = {round(d.retry_after) for d in got[10:]}
        assert retry == {360}
    finally:
        a.close()
        b.close()


@pytest.mark.redis
def test_case_112_clocks_five_minutes_apart_identical(redis_url: str, prefix: str) -> None:
    """Case 112: app clocks +-5 min apart make identical decisions (Redis TIME decides)."""
    apps = [
        Tokenware(
            store=redis_url,
            secret_key=make_secret_key(),
            key_prefix=prefix,
            clock=FrozenClock(1_800_000_000.0 + skew),
        )
        for skew in (-300, 0, 300)
    ]
    try:
        decisions = [apps[i % 3].throttle.hit("u", "6/hour") for i in range(9)]
        assert [d.allowed for d in decisions] == [True] * 6 + [False] * 3
    finally:
        for app in apps:
            app.close()


@pytest.mark.redis
def test_case_114_every_limiter_key_has_ttl(redis_url: str, prefix: str) -> None:
    """Case 114: every limiter key carries a TTL > 0 (value and TTL in one command)."""
    tw = Tokenware(store=redis_url, secret_key=make_secret_key(), key_prefix=prefix)
    try:
        for i in range(50):
            tw.throttle.hit(f"user{i}", "5/minute, 100/day", cost=1 + i % 3)
        client = tw.stores.sync.client  # type: ignore[attr-defined]
        keys = list(client.scan_iter(match=f"{prefix}:rl:*", count=500))
        assert len(keys) == 100
        assert all(client.pttl(k) > 0 for k in keys)
    finally:
        tw.close()


def test_case_116_many_random_keys_bounded(tmp_path: Path) -> None:
    """Case 116: 10^4 random usernames (some huge) make fixed-length keys, all with TTLs."""
    clock = FrozenClock()
    pair = store_from_url("memory://", clock=clock)
    tw = Tokenware(store=pair, secret_key=make_secret_key(), clock=clock)
    for i in range(10_000):
        tw.throttle.hit(f"login:{'x' * (i % 50) * 80}{i}", "5/minute")
    store = pair.sync
    keys = list(store._data)  # type: ignore[attr-defined]
    assert len(keys) == 10_000
    assert {len(k) for k in keys} == {len("tw:rl:{}") + 32}
    assert all(store.ttl(k) is not None for k in keys[:200])
    clock.advance(13)  # 1 unit = 12 s: every key has expired
    assert store.get(keys[0]) is None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_case_113_store_down_is_store_unavailable() -> None:
    """Case 113: Redis down -> StoreUnavailable on both faces; never an unlimited pass."""
    pytest.importorskip("redis")
    tw = Tokenware(store=f"redis://127.0.0.1:{free_port()}/0", secret_key=make_secret_key(),
                   store_timeout=0.2, store_connect_timeout=0.2)  # fmt: skip
    with pytest.raises(StoreUnavailable) as info:
        tw.throttle.hit("k", "5/minute")
    assert info.value.retry_after is not None and info.value.retry_after >= 1

    async def main() -> None:
        with pytest.raises(StoreUnavailable):
            await tw.aio.throttle.hit("k", "5/minute")

    asyncio.run(main())


def test_sqlite_locked_is_store_unavailable(tmp_path: Path) -> None:
    """SQLite held locked by another writer -> StoreUnavailable (503), not a pass."""
    import sqlite3

    path = tmp_path / "locked.db"
    tw = Tokenware(store=f"sqlite:///{path}", secret_key=make_secret_key(), store_timeout=0.05)
    tw.throttle.hit("k", "5/minute")  # creates the schema
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreUnavailable):
            tw.throttle.hit("k", "5/minute")
    finally:
        other.execute("ROLLBACK")
        other.close()
        tw.close()
