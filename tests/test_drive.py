"""The two drivers: every flow runs the same on a sync and an async store."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import Sequence
from typing import Any

import pytest

from tokenware._drive import run_async, run_sync
from tokenware.core.flow import Flow, done
from tokenware.core.ops import Absent, Apply, Batch, Get, GetMany, Members, Purge, Put, SetAdd
from tokenware.errors import StoreError, StoreUnavailable
from tokenware.stores import StorePair, store_from_url


def write_then_read(key: str) -> Flow[tuple[bool, bool, bytes | None, frozenset[str], int]]:
    first = yield Apply(Batch(guards=(Absent(key),), writes=(Put(key, b"v1", 60),)))
    second = yield Apply(Batch(guards=(Absent(key),), writes=(Put(key, b"v2", 60),)))
    value = yield Get(key)
    yield Apply(Batch(writes=(SetAdd(key + ":set", "m", 60),)))
    members = yield Members(key + ":set")
    purged = yield Purge(key)
    return first, second, value, members, purged


def test_run_sync_performs_each_operation_and_sends_results_back() -> None:
    pair = store_from_url("memory://")
    assert run_sync(write_then_read("d:{k}"), pair.sync) == (
        True,
        False,
        b"v1",
        frozenset({"m"}),
        2,
    )


def test_run_async_is_the_mirror_image(store_pair: StorePair, prefix: str) -> None:
    async def main() -> Any:
        try:
            return await run_async(write_then_read(f"{prefix}:{{k}}"), store_pair.aio)
        finally:
            await store_pair.aio.aclose()

    assert asyncio.run(main()) == (True, False, b"v1", frozenset({"m"}), 2)


def test_a_flow_that_needs_no_store() -> None:
    pair = store_from_url("memory://")
    assert run_sync(done(42), pair.sync) == 42
    assert asyncio.run(run_async(done("x"), pair.aio)) == "x"


class FailingStore:
    """A sync store whose reads fail; counts calls. Writes succeed."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
        self.calls: list[str] = []

    def get(self, key: str) -> bytes | None:
        self.calls.append(f"get {key}")
        raise self.exc

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        self.calls.append("get_many")
        return [b"fallback" for _ in keys]


class AsyncFailingStore(FailingStore):
    async def get(self, key: str) -> bytes | None:  # type: ignore[override]
        return super().get(key)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:  # type: ignore[override]
        return super().get_many(keys)


def recovering() -> Flow[tuple[str, Any]]:
    """Catches a store error at its yield and carries on with another op."""
    try:
        value = yield Get("a")
    except StoreUnavailable as exc:
        rest = yield GetMany(("b",))
        return f"recovered:{exc.detail}", rest
    return "no error", value


def not_recovering() -> Flow[Any]:
    value = yield Get("a")
    return value


def test_store_errors_are_thrown_into_the_flow() -> None:
    store = FailingStore(StoreUnavailable("down"))
    assert run_sync(recovering(), store) == ("recovered:down", [b"fallback"])  # type: ignore[arg-type]
    assert store.calls == ["get a", "get_many"]


def test_unhandled_store_errors_propagate_unchanged() -> None:
    error = StoreError("corrupt")
    with pytest.raises(StoreError) as info:
        run_sync(not_recovering(), FailingStore(error))  # type: ignore[arg-type]
    assert info.value is error

    async def main() -> Any:
        return await run_async(not_recovering(), AsyncFailingStore(error))  # type: ignore[arg-type]

    with pytest.raises(StoreError) as ainfo:
        asyncio.run(main())
    assert ainfo.value is error


def test_async_store_errors_are_thrown_into_the_flow() -> None:
    store = AsyncFailingStore(StoreUnavailable("down"))
    result = asyncio.run(run_async(recovering(), store))  # type: ignore[arg-type]
    assert result == ("recovered:down", [b"fallback"])


def test_other_exceptions_are_not_thrown_into_the_flow() -> None:
    # A bug in a store is not a store outage: the flow cannot swallow it.
    with pytest.raises(ZeroDivisionError):
        run_sync(recovering(), FailingStore(ZeroDivisionError()))  # type: ignore[arg-type]


def test_run_sync_refuses_an_async_store_without_leaking_a_coroutine() -> None:
    pair = store_from_url("memory://")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TypeError, match="synchronous store"):
            run_sync(not_recovering(), pair.aio)  # type: ignore[arg-type]
        gc.collect()  # an unawaited coroutine would warn here


def test_run_sync_refuses_any_awaitable_result() -> None:
    """Not only coroutines: a store returning a future-like object is async too."""

    class Pending:
        def __await__(self) -> Any:
            yield None

    class FutureStore:
        def get(self, key: str) -> Pending:
            return Pending()

    with pytest.raises(TypeError, match="synchronous store"):
        run_sync(not_recovering(), FutureStore())  # type: ignore[arg-type]


def test_run_sync_passes_every_plain_result_type_back() -> None:
    """The result types the driver knows are not awaitable reach the flow unchanged."""
    from tokenware.core.ops import GcraResult

    results = [
        True,
        False,
        None,
        b"v",
        3,
        [b"a", None],
        frozenset({"m"}),
        GcraResult(True, 1, 0, 0),
    ]

    class Echo:
        def __init__(self) -> None:
            self.pending = list(results)

        def get(self, key: str) -> Any:
            return self.pending.pop(0)

    def flow() -> Flow[list[Any]]:
        seen = []
        for _ in results:
            seen.append((yield Get("k")))
        return seen

    assert run_sync(flow(), Echo()) == results  # type: ignore[arg-type]


def test_flow_exceptions_propagate_from_both_drivers() -> None:
    def failing() -> Flow[None]:
        yield Get("x")
        raise LookupError("policy says no")

    pair = store_from_url("memory://")
    with pytest.raises(LookupError, match="policy says no"):
        run_sync(failing(), pair.sync)
    with pytest.raises(LookupError, match="policy says no"):
        asyncio.run(run_async(failing(), pair.aio))
