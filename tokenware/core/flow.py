"""The flow type: a generator that yields store operations.

A flow is written once and run by either driver in :mod:`tokenware._drive`::

    def get_value(key: str) -> Flow[bytes]:
        raw = yield Get(key)
        if raw is None:
            raise NotFound(...)
        return raw

Store errors are thrown into the flow at the ``yield``, so a flow may catch
:class:`~tokenware.errors.StoreUnavailable` where its policy says so.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, TypeVar

from tokenware.core.ops import Op

__all__ = ["Flow", "T", "done"]

T = TypeVar("T")

#: A generator yielding operations, receiving their results, returning ``T``.
Flow = Generator[Op, Any, T]


def done(value: T) -> Flow[T]:
    """A flow that needs no store and returns ``value`` at once."""
    return value
    yield  # pragma: no cover - makes this function a generator
