"""The store contract: ``Store`` and ``AsyncStore`` with the same method names.

Every backend comes as a pair of faces over the same data (see
:class:`StorePair`): a synchronous face for WSGI apps and scripts, an
asynchronous one for ASGI apps. Values are ``bytes``, set members ``str``,
TTLs seconds. Expired keys behave exactly like missing keys everywhere.

Failures: a backend raises :class:`~tokenware.errors.StoreUnavailable` for a
refused connection, a timeout or a lock, and :class:`~tokenware.errors.StoreError`
for anything else it cannot do, each with the driver's exception chained.
No backend ever lets a raw driver exception escape, and none retries a
write whose reply was lost.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from tokenware.core.ops import Batch, Put, SetAdd
from tokenware.errors import ValidationError

__all__ = [
    "AsyncStore",
    "Store",
    "StorePair",
    "check_batch",
    "hash_tag",
]


@runtime_checkable
class Store(Protocol):
    """A synchronous store."""

    def get(self, key: str) -> bytes | None:
        """The value at ``key``, or ``None``."""

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values at ``keys``, ``None`` where missing (keys may span slots)."""

    def members(self, key: str) -> frozenset[str]:
        """The members of the set at ``key`` (empty if missing)."""

    def apply(self, batch: Batch) -> bool:
        """Check every guard and, if all hold, apply every write, atomically."""

    def purge(self, prefix: str) -> int:
        """Delete every key starting with ``prefix``; return how many."""

    def ttl(self, key: str) -> float | None:
        """Seconds left for ``key``; ``None`` if missing or without expiry."""

    def close(self) -> None:
        """Release connections."""


@runtime_checkable
class AsyncStore(Protocol):
    """An asynchronous store: the methods of :class:`Store`, as coroutines."""

    async def get(self, key: str) -> bytes | None:
        """The value at ``key``, or ``None``."""

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values at ``keys``, ``None`` where missing."""

    async def members(self, key: str) -> frozenset[str]:
        """The members of the set at ``key`` (empty if missing)."""

    async def apply(self, batch: Batch) -> bool:
        """Check every guard and, if all hold, apply every write, atomically."""

    async def purge(self, prefix: str) -> int:
        """Delete every key starting with ``prefix``; return how many."""

    async def ttl(self, key: str) -> float | None:
        """Seconds left for ``key``; ``None`` if missing or without expiry."""

    async def aclose(self) -> None:
        """Release connections."""


@dataclass(frozen=True, slots=True)
class StorePair:
    """The two faces of one backend, over the same data.

    Attributes:
        url: the store URL it was made from, with any password hidden.
        sync: the synchronous face.
        aio: the asynchronous face.
    """

    url: str
    sync: Store
    aio: AsyncStore


_TAG = re.compile(r"\{([^{}]+)\}")


def hash_tag(key: str) -> str:
    """The Redis Cluster hash tag of ``key`` (the first non-empty ``{...}``)."""
    match = _TAG.search(key)
    return match.group(1) if match else key


def check_batch(batch: Batch) -> None:
    """Refuse a batch that no backend could run atomically everywhere.

    Raises:
        ValidationError: keys with different hash tags (it would fail with
            CROSSSLOT on Redis Cluster), an empty batch, or a TTL that is not
            a positive number of seconds.
    """
    keys = batch.keys()
    if not keys:
        raise ValidationError("empty batch")
    tags = {hash_tag(k) for k in keys}
    if len(tags) != 1:
        raise ValidationError(f"batch keys span {len(tags)} hash tags; one is required")
    for write in batch.writes:
        if isinstance(write, (Put, SetAdd)) and write.ttl is not None and not write.ttl > 0:
            raise ValidationError(f"ttl must be a positive number of seconds, got {write.ttl!r}")
