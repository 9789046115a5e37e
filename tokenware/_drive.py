"""The two drivers: the only code in tokenware that calls a store.

``run_sync`` and ``run_async`` are mirror images. Each takes a flow (a
generator of :mod:`tokenware.core.ops` operations), performs every operation
against the store and sends the result back in, until the flow returns. A
store error is thrown into the flow at its ``yield`` so policy about failures
stays in the flow too.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, TypeVar

from tokenware.core.ops import GcraResult
from tokenware.errors import StoreError

if TYPE_CHECKING:
    from tokenware.core.flow import Flow
    from tokenware.stores.base import AsyncStore, Store

__all__ = ["run_async", "run_sync"]

T = TypeVar("T")

# What the operations of a synchronous store return (core.ops): never awaitable.
_RESULT_TYPES = frozenset({bool, bytes, int, list, frozenset, type(None), GcraResult})


def run_sync(flow: Flow[T], store: Store) -> T:
    """Run ``flow`` to completion against a synchronous ``store``.

    Raises:
        TypeError: ``store`` is an async store (a coroutine came back).
        StoreError: the store failed and the flow did not handle it.
    """
    try:
        op = next(flow)
        while True:
            try:
                result: Any = op.call(store)
            except StoreError as exc:
                op = flow.throw(exc)
                continue
            # Not inspect.isawaitable(): its ABC check cost more than a memory
            # store's whole operation. Every awaitable's type has __await__;
            # the types a sync store returns are skipped first, since a failed
            # hasattr builds and drops an AttributeError.
            if type(result) not in _RESULT_TYPES and hasattr(type(result), "__await__"):
                if inspect.iscoroutine(result):
                    result.close()
                raise TypeError("run_sync() needs a synchronous store; use tw.aio for async")
            op = flow.send(result)
    except StopIteration as stop:
        value: T = stop.value
        return value


async def run_async(flow: Flow[T], store: AsyncStore) -> T:
    """Run ``flow`` to completion against an asynchronous ``store``.

    Raises:
        StoreError: the store failed and the flow did not handle it.
    """
    try:
        op = next(flow)
        while True:
            try:
                result: Any = await op.call(store)
            except StoreError as exc:
                op = flow.throw(exc)
                continue
            op = flow.send(result)
    except StopIteration as stop:
        value: T = stop.value
        return value
