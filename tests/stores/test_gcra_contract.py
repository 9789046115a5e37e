"""The GCRA store operation: one contract, run on memory, SQLite and Redis.

Memory and SQLite run on a FrozenClock, so their numbers are exact. Redis
reads its own clock (``TIME``), which moves while a test runs; Redis cases
use long intervals (an hour per unit) so a few milliseconds of drift cannot
change a decision, and compare times with a small tolerance.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from _support import NETWORKED, backend_url

from tokenware.core.ops import Batch, Gcra, GcraResult, Put
from tokenware.errors import ValidationError
from tokenware.stores import StorePair, store_from_url
from tokenware.stores.base import MAX_GCRA_TOLERANCE_US, gcra_step
from tokenware.testing import FrozenClock

HOUR = 3600.0
#: Seconds of Redis clock drift tolerated within one test.
SLACK = 2.0


@pytest.fixture
def gcra_pair(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, clock: FrozenClock
) -> Iterator[StorePair]:
    """Both faces of a fresh store; memory and SQLite on the frozen clock."""
    if backend == "memory":
        pair = store_from_url("memory://", clock=clock)
    elif backend == "sqlite":
        pair = store_from_url(f"sqlite:///{tmp_path / 'gcra.db'}", clock=clock)
    else:
        pair = store_from_url(backend_url(backend, request))
    try:
        yield pair
    finally:
        pair.sync.close()


def hits(pair: StorePair, op: Gcra, n: int) -> list[GcraResult]:
    return [pair.sync.gcra(op) for _ in range(n)]


def test_burst_then_denied(gcra_pair: StorePair, prefix: str) -> None:
    """Exactly ``burst`` hits pass at once; remaining counts down to zero."""
    op = Gcra(f"{prefix}:rl:{{a}}", HOUR, 5)
    results = hits(gcra_pair, op, 7)
    assert [r.allowed for r in results] == [True] * 5 + [False] * 2
    assert [r.remaining for r in results] == [4, 3, 2, 1, 0, 0, 0]
    assert all(r.retry_after == 0 for r in results[:5])


def test_retry_and_reset_after(gcra_pair: StorePair, prefix: str) -> None:
    """A denied hit may retry after one interval; reset_after is the time to a full burst."""
    op = Gcra(f"{prefix}:rl:{{a}}", HOUR, 3)
    first = gcra_pair.sync.gcra(op)
    assert first.reset_after == pytest.approx(HOUR, abs=SLACK)
    hits(gcra_pair, op, 2)
    denied = gcra_pair.sync.gcra(op)
    assert not denied.allowed
    assert denied.retry_after == pytest.approx(HOUR, abs=SLACK)
    assert denied.reset_after == pytest.approx(3 * HOUR, abs=SLACK)


def test_exact_on_frozen_clock(
    backend: str, gcra_pair: StorePair, prefix: str, clock: FrozenClock
) -> None:
    """On a frozen clock, a unit frees up exactly one interval later, not a window later."""
    if backend in NETWORKED:
        pytest.skip("Redis reads its own clock; covered by the approximate tests")
    op = Gcra(f"{prefix}:rl:{{a}}", 6.0, 10)
    assert sum(r.allowed for r in hits(gcra_pair, op, 12)) == 10
    denied = gcra_pair.sync.gcra(op)
    assert (denied.allowed, denied.retry_after, denied.reset_after) == (False, 6.0, 60.0)
    clock.advance(5.999999)
    assert not gcra_pair.sync.gcra(op).allowed
    clock.advance(0.000001)
    ok = gcra_pair.sync.gcra(op)
    assert (ok.allowed, ok.remaining, ok.reset_after) == (True, 0, 60.0)
    assert not gcra_pair.sync.gcra(op).allowed
    clock.advance(600)  # long idle never accumulates more than the burst
    assert sum(r.allowed for r in hits(gcra_pair, op, 15)) == 10


def test_ttl_set_on_key(gcra_pair: StorePair, prefix: str) -> None:
    """Every write sets the TTL: the key lives until its TAT, no longer."""
    key = f"{prefix}:rl:{{a}}"
    gcra_pair.sync.gcra(Gcra(key, HOUR, 5, cost=2))
    ttl = gcra_pair.sync.ttl(key)
    assert ttl is not None
    assert ttl == pytest.approx(2 * HOUR, abs=SLACK)


def test_cost_greater_than_one(gcra_pair: StorePair, prefix: str) -> None:
    """A hit of cost n takes n units at once; a too-costly hit takes none."""
    key = f"{prefix}:rl:{{a}}"
    r = gcra_pair.sync.gcra(Gcra(key, HOUR, 5, cost=3))
    assert (r.allowed, r.remaining) == (True, 2)
    r = gcra_pair.sync.gcra(Gcra(key, HOUR, 5, cost=3))
    assert (r.allowed, r.remaining) == (False, 2)
    assert r.retry_after == pytest.approx(HOUR, abs=SLACK)
    r = gcra_pair.sync.gcra(Gcra(key, HOUR, 5, cost=2))
    assert (r.allowed, r.remaining) == (True, 0)


def test_cost_larger_than_burst_denied_without_consuming(gcra_pair: StorePair, prefix: str) -> None:
    """cost > burst can never conform: denied, nothing written, the burst intact."""
    key = f"{prefix}:rl:{{a}}"
    r = gcra_pair.sync.gcra(Gcra(key, HOUR, 3, cost=4))
    assert not r.allowed
    assert r.remaining == 3
    assert gcra_pair.sync.get(key) is None
    assert sum(x.allowed for x in hits(gcra_pair, Gcra(key, HOUR, 3), 4)) == 3


def test_cost_zero_peeks(gcra_pair: StorePair, prefix: str) -> None:
    """cost 0 reports the state and writes nothing."""
    key = f"{prefix}:rl:{{a}}"
    r = gcra_pair.sync.gcra(Gcra(key, HOUR, 3, cost=0))
    assert (r.allowed, r.remaining) == (True, 3)
    assert gcra_pair.sync.get(key) is None
    gcra_pair.sync.gcra(Gcra(key, HOUR, 3))
    r = gcra_pair.sync.gcra(Gcra(key, HOUR, 3, cost=0))
    assert (r.allowed, r.remaining) == (True, 2)


def test_negative_cost_refunds(gcra_pair: StorePair, prefix: str) -> None:
    """A negative cost gives units back, never below a full burst, and deletes the key at full."""
    key = f"{prefix}:rl:{{a}}"
    hits(gcra_pair, Gcra(key, HOUR, 3), 3)
    r = gcra_pair.sync.gcra(Gcra(key, HOUR, 3, cost=-1))
    assert (r.allowed, r.remaining) == (True, 1)
    r = gcra_pair.sync.gcra(Gcra(key, HOUR, 3, cost=-10))
    assert (r.allowed, r.remaining) == (True, 3)
    assert gcra_pair.sync.get(key) is None
    gcra_pair.sync.gcra(Gcra(f"{prefix}:rl:{{b}}", HOUR, 3, cost=-1))
    assert gcra_pair.sync.get(f"{prefix}:rl:{{b}}") is None


def test_non_tat_value_restarts(gcra_pair: StorePair, prefix: str) -> None:
    """A key holding something that is not a TAT is treated as fresh, not as an error."""
    key = f"{prefix}:rl:{{a}}"
    gcra_pair.sync.apply(Batch(writes=(Put(key, b"garbage", 60),)))
    assert gcra_pair.sync.gcra(Gcra(key, HOUR, 2)).remaining == 1


@pytest.mark.parametrize(
    "op",
    [
        pytest.param(Gcra("", 1.0, 1), id="empty-key"),
        pytest.param(Gcra("k", 0.0, 1), id="zero-interval"),
        pytest.param(Gcra("k", -1.0, 1), id="negative-interval"),
        pytest.param(Gcra("k", float("nan"), 1), id="nan-interval"),
        pytest.param(Gcra("k", float("inf"), 1), id="inf-interval"),
        pytest.param(Gcra("k", 1.0, 0), id="zero-burst"),
        pytest.param(Gcra("k", 1.0, True), id="bool-burst"),
        pytest.param(Gcra("k", 1.0, 1, cost=1.5), id="float-cost"),  # type: ignore[arg-type]
        pytest.param(Gcra("k", 1.0, 1, cost=True), id="bool-cost"),
        pytest.param(Gcra("k", True, 1), id="bool-interval"),
        pytest.param(Gcra("k", "1", 1), id="str-interval"),  # type: ignore[arg-type]
        pytest.param(Gcra("k", 1.0, "1"), id="str-burst"),  # type: ignore[arg-type]
        pytest.param(Gcra(None, 1.0, 1), id="none-key"),  # type: ignore[arg-type]
        pytest.param(Gcra(b"k", 1.0, 1), id="bytes-key"),  # type: ignore[arg-type]
        pytest.param(Gcra("k", 1.0, 1, cost=10**18), id="cost-overflow"),
        pytest.param(Gcra("k", 1e9, 10**6), id="tolerance-overflow"),
    ],
)
def test_bad_hits_refused(gcra_pair: StorePair, op: Gcra) -> None:
    """Malformed hits are ValidationError before anything reaches the store."""
    with pytest.raises(ValidationError):
        gcra_pair.sync.gcra(op)


class _Int(int):
    """An int subclass: not the usual exact type, still a valid burst or cost."""


def test_unusual_but_valid_types_accepted(gcra_pair: StorePair, prefix: str) -> None:
    """An int interval and int subclasses take the full checks, and pass them."""
    key = f"{prefix}:rl:{{a}}"
    r = gcra_pair.sync.gcra(Gcra(key, 3600, _Int(3), cost=_Int(2)))
    assert (r.allowed, r.remaining) == (True, 1)


def test_script_flush_reloads_gcra(backend: str, gcra_pair: StorePair, prefix: str) -> None:
    """After SCRIPT FLUSH a hit still runs, once (EVALSHA -> NOSCRIPT -> SCRIPT LOAD -> EVALSHA)."""
    if backend not in NETWORKED:
        pytest.skip("only Redis caches scripts")
    op = Gcra(f"{prefix}:rl:{{a}}", HOUR, 5)
    control = gcra_pair.sync.client  # type: ignore[attr-defined]
    assert gcra_pair.sync.gcra(op).remaining == 4
    control.script_flush()  # on a cluster: every primary
    assert gcra_pair.sync.gcra(op).remaining == 3

    async def main() -> GcraResult:
        try:
            control.script_flush()
            return await gcra_pair.aio.gcra(op)
        finally:
            await gcra_pair.aio.aclose()

    assert asyncio.run(main()).remaining == 2  # counted once, not twice


def test_async_face_shares_state(gcra_pair: StorePair, prefix: str) -> None:
    """The async face counts against the same key as the sync face."""
    op = Gcra(f"{prefix}:rl:{{a}}", HOUR, 4)
    hits(gcra_pair, op, 2)

    async def main() -> list[GcraResult]:
        try:
            return [await gcra_pair.aio.gcra(op) for _ in range(3)]
        finally:
            await gcra_pair.aio.aclose()

    results = asyncio.run(main())
    assert [r.allowed for r in results] == [True, True, False]


def _cases(n: int) -> Iterator[tuple[int | None, int, int, int, int]]:
    """``(stored, now, T, tau, cost)``: fresh, idle, busy and over-full keys, every cost sign."""
    rng = random.Random(1234)
    for _ in range(n):
        now = 1_700_000_000_000_000 + rng.randrange(10**12)
        t_us = rng.choice([1, 7, 1000, 60_000_000, rng.randrange(1, 10**9)])
        burst = rng.choice([1, 2, 10, rng.randrange(1, 10**6)])
        while t_us * burst > MAX_GCRA_TOLERANCE_US:
            burst //= 2
        tau = t_us * max(burst, 1)
        stored = rng.choice(
            [None, now - rng.randrange(1, 10**9), now + rng.randrange(0, tau + 2 * t_us)]
        )
        cost = rng.choice([0, 1, 1, 1, 2, -1, -3, burst, burst + 1])
        yield stored, now, t_us, tau, cost


def test_lua_matches_gcra_step(backend: str, gcra_pair: StorePair, prefix: str) -> None:
    """gcra.lua decides and writes exactly as gcra_step, on the same clock reading.

    The test runs the script with its TIME call replaced by ARGV (the only
    change), so Redis sees chosen clock readings.
    """
    if backend != "redis":
        pytest.skip("the script on one Redis server")
    from tokenware.stores.redis import _GCRA_LUA, _gcra_result

    source = _GCRA_LUA.replace("redis.call('TIME')", "{ARGV[4], ARGV[5]}")
    assert source.count("{ARGV[4], ARGV[5]}") == 1
    client = gcra_pair.sync.client  # type: ignore[attr-defined]
    script = client.register_script(source)
    key = f"{prefix}:rl:{{lua}}"
    for stored, now, t_us, tau, cost in _cases(400):
        client.delete(key)
        if stored is not None:
            client.set(key, str(stored), ex=3600)
        reply = script(keys=[key], args=[t_us, tau, cost, now // 10**6, now % 10**6])
        with client.pipeline(transaction=True) as pipe:
            value, pttl = pipe.get(key).pttl(key).execute()
        step = gcra_step(stored, now, t_us, tau, cost)
        assert _gcra_result(reply, t_us, tau, cost) == step.result, (stored, now, t_us, tau, cost)
        if not step.write:
            assert value == (None if stored is None else str(stored).encode())
        elif step.tat > now:
            ttl_ms = -(-(step.tat - now) // 1000)
            if ttl_ms > 50:  # a shorter one may be gone already
                assert value == str(step.tat).encode()
                assert ttl_ms - 1000 < pttl <= ttl_ms
        else:
            assert value is None


def _in_use(client: object) -> int:
    """Connections checked out of a redis-py pool (a private set; tests only)."""
    return len(client.connection_pool._in_use_connections)  # type: ignore[attr-defined]


def test_error_reply_returns_the_connection(
    backend: str, gcra_pair: StorePair, prefix: str
) -> None:
    """A script error (a key of the wrong type) is StoreError; the connection goes back clean."""
    if backend != "redis":
        pytest.skip("checks the pool of a single-node client")
    from tokenware.errors import StoreError

    key = f"{prefix}:rl:{{set}}"
    client = gcra_pair.sync.client  # type: ignore[attr-defined]
    client.sadd(key, "member")
    for _ in range(3):
        with pytest.raises(StoreError):
            gcra_pair.sync.gcra(Gcra(key, HOUR, 5))
    assert _in_use(client) == 0
    assert gcra_pair.sync.gcra(Gcra(f"{prefix}:rl:{{ok}}", HOUR, 5)).remaining == 4
    assert _in_use(client) == 0


def test_timed_out_hit_never_hands_its_reply_to_the_next(
    backend: str, request: pytest.FixtureRequest, prefix: str
) -> None:
    """A hit that times out is StoreUnavailable, and a late reply is never read as another's.

    CLIENT PAUSE WRITE holds the script past the store's timeout. The
    connection that timed out must be dropped, not pooled with a reply
    pending, or the next hit would return that stale reply (one unit more
    than the server holds). Redis discards the command of a client that
    went away while paused; either way, each hit must report the state it
    left, as a separate client's peek (cost 0) sees it.
    """
    if backend != "redis":
        pytest.skip("pauses a single server")
    from tokenware.errors import StoreUnavailable
    from tokenware.stores.redis import redis_store

    url = backend_url(backend, request)
    pair = redis_store(url, timeout=0.2, connect_timeout=1.0)
    observer = store_from_url(url)
    control = pair.sync.client  # type: ignore[attr-defined]
    op = Gcra(f"{prefix}:rl:{{slow}}", HOUR, 10)
    peek = Gcra(op.key, HOUR, 10, cost=0)
    try:
        assert pair.sync.gcra(op).remaining == 9
        control.execute_command("CLIENT", "PAUSE", 600, "WRITE")
        with pytest.raises(StoreUnavailable):
            pair.sync.gcra(op)
        control.execute_command("CLIENT", "UNPAUSE")
        after = pair.sync.gcra(op).remaining
        assert after in (7, 8)
        assert observer.sync.gcra(peek).remaining == after
        assert _in_use(control) == 0

        async def main() -> tuple[int, int]:
            first = (await pair.aio.gcra(op)).remaining
            control.execute_command("CLIENT", "PAUSE", 600, "WRITE")
            try:
                with pytest.raises(StoreUnavailable):
                    await pair.aio.gcra(op)
            finally:
                control.execute_command("CLIENT", "UNPAUSE")
            last = (await pair.aio.gcra(op)).remaining
            await pair.aio.aclose()
            return first, last

        first, last = asyncio.run(main())
        assert first == after - 1
        assert last in (first - 1, first - 2)
        assert observer.sync.gcra(peek).remaining == last
    finally:
        control.execute_command("CLIENT", "UNPAUSE")
        pair.sync.close()
        observer.sync.close()


@pytest.mark.parametrize(
    "key",
    ["tw:rl:{00112233445566778899aabbccddeeff}", "k", "ünïcødé 🔑", "x" * 7000, "a b\r\n$3"],
)
@pytest.mark.parametrize("op", [(1, 1, 0), (60, 60_000_000, 1), (10**9, 3 * 10**15, -(10**6))])
def test_packed_gcra_command_is_what_redis_py_sends(key: str, op: tuple[int, int, int]) -> None:
    """The store packs its EVALSHA itself; the bytes are exactly redis-py's."""
    pytest.importorskip("redis")
    from redis._parsers.encoders import Encoder
    from redis.connection import PythonRespSerializer

    from tokenware.stores.redis import _gcra_command, _resp

    command = _gcra_command(key, *op)
    packer = PythonRespSerializer(6000, Encoder("utf-8", "strict", False).encode)
    assert b"".join(_resp(command)) == b"".join(packer.pack(*command))


@pytest.mark.parametrize(
    "command",
    [("SET", "k", b"v"), ("EVALSHA", b"0" * 40, b"1", "k", b"1", b"2", b"3"), ("GET", "ü" * 9000)],
)
def test_packed_other_commands_are_what_redis_py_sends(command: tuple[str | bytes, ...]) -> None:
    """The general branch of the packer (any bytes/str arguments) matches redis-py too."""
    pytest.importorskip("redis")
    from redis._parsers.encoders import Encoder
    from redis.connection import PythonRespSerializer

    from tokenware.stores.redis import _resp

    packer = PythonRespSerializer(6000, Encoder("utf-8", "strict", False).encode)
    assert b"".join(_resp(command)) == b"".join(packer.pack(*command))
