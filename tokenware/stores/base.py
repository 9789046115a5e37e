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

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from tokenware.core.ops import Batch, Gcra, GcraResult, Guard, Put, SetAdd, Write
from tokenware.errors import ValidationError

__all__ = [
    "MAX_GCRA_TOLERANCE_US",
    "AsyncStore",
    "GcraStep",
    "Store",
    "StorePair",
    "check_batch",
    "check_gcra",
    "gcra_step",
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

    def gcra(self, op: Gcra) -> GcraResult:
        """One GCRA hit on the store's own clock, read-decide-write atomically."""

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

    async def gcra(self, op: Gcra) -> GcraResult:
        """One GCRA hit on the store's own clock, read-decide-write atomically."""

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


def hash_tag(key: str) -> str:
    """What Redis Cluster hashes of ``key``: the text between the first ``{``
    and the first ``}`` after it when that text is not empty, else the whole
    key (Redis's own rule, byte for byte, so a batch this accepts never
    fails with CROSSSLOT)."""
    end = _tag_end(key)
    return key if end < 0 else key[key.find("{") + 1 : end]


def _tag_end(key: str) -> int:
    """Where the hash tag of ``key`` ends (its ``}``), or -1 when it has none."""
    start = key.find("{")
    if start < 0:
        return -1
    end = key.find("}", start + 1)
    return end if end > start + 1 else -1


def check_batch(batch: Batch) -> None:
    """Refuse a batch that no backend could run atomically everywhere.

    Raises:
        ValidationError: keys with different hash tags (it would fail with
            CROSSSLOT on Redis Cluster), an empty batch, or a TTL that is not
            a positive number of seconds.
    """
    items = batch.guards + batch.writes
    if not items:
        raise ValidationError("empty batch")
    if not _share_first_tag(items):
        tags = {hash_tag(item.key) for item in items}
        if len(tags) != 1:
            raise ValidationError(f"batch keys span {len(tags)} hash tags; one is required")
    for write in batch.writes:
        if isinstance(write, (Put, SetAdd)) and write.ttl is not None and not write.ttl > 0:
            raise ValidationError(f"ttl must be a positive number of seconds, got {write.ttl!r}")


def _share_first_tag(items: tuple[Guard | Write, ...]) -> bool:
    """Whether every key starts like the first one up to its tag's closing brace.

    Such keys have the first key's hash tag (the same first ``{``, the same
    first ``}`` after it), so this is a cheap sufficient test: one
    ``startswith`` per key instead of :func:`hash_tag`. ``False`` says
    nothing; the caller then compares the tags themselves.
    """
    first = items[0].key
    end = _tag_end(first)
    if end < 0:
        return False
    head = first[: end + 1]
    for item in items:
        key = item.key
        # A write usually names a key a guard named: skip the first key.
        if key is not first and not key.startswith(head):
            return False
    return True


#: Largest tolerance (``interval * burst``) a GCRA key may have: 100 years in
#: microseconds, far inside the 2**53 integers a Lua number holds exactly.
MAX_GCRA_TOLERANCE_US = 100 * 365 * 24 * 3600 * 1_000_000


def check_gcra(op: Gcra) -> tuple[int, int]:
    """Validate a :class:`~tokenware.core.ops.Gcra` hit; return ``(T_us, tau_us)``.

    The emission interval is rounded to whole microseconds (at least 1), the
    unit every backend computes in, so all three agree to the microsecond.

    Raises:
        ValidationError: an empty key, an interval that is not a positive
            finite number, a burst that is not a positive int, a cost that
            is not an int, or a tolerance beyond 100 years.
    """
    key, interval, burst, cost = op.key, op.interval, op.burst, op.cost
    # The usual exact types first (bool is not int to type()); anything else,
    # subclasses included, goes through the full checks.
    if not (
        type(key) is str
        and key
        and type(interval) is float
        and 0.0 < interval < math.inf
        and type(burst) is int
        and burst >= 1
        and type(cost) is int
    ):
        _check_gcra_fields(key, interval, burst, cost)
    t_us = max(1, round(interval * 1_000_000))
    tau = t_us * burst
    if tau > MAX_GCRA_TOLERANCE_US or abs(cost) * t_us > MAX_GCRA_TOLERANCE_US:
        raise ValidationError("gcra interval * burst (or * cost) exceeds 100 years")
    return t_us, tau


def _check_gcra_fields(key: object, interval: object, burst: object, cost: object) -> None:
    """The type and range checks of :func:`check_gcra`, for any input."""
    if not isinstance(key, str) or not key:
        raise ValidationError("gcra key must be a non-empty string")
    if (
        isinstance(interval, bool)
        or not isinstance(interval, (int, float))
        or not 0 < interval < math.inf
    ):
        raise ValidationError(
            f"gcra interval must be a positive number of seconds, got {interval!r}"
        )
    for name, value, low in (("burst", burst, 1), ("cost", cost, None)):
        if isinstance(value, bool) or not isinstance(value, int) or (low and value < low):
            raise ValidationError(
                f"gcra {name} must be an int{' >= 1' if low else ''}, got {value!r}"
            )


@dataclass(frozen=True, slots=True)
class GcraStep:
    """The outcome of :func:`gcra_step`: the result and what to store.

    Attributes:
        result: what the hit decided.
        write: whether the stored TAT changes.
        tat: the new TAT in microseconds; at or before ``now`` means "delete
            the key" (a fresh key behaves the same).
    """

    result: GcraResult
    write: bool
    tat: int


def gcra_step(stored: int | None, now: int, t_us: int, tau: int, cost: int) -> GcraStep:
    """GCRA arithmetic in whole microseconds, as ``lua/gcra.lua`` does it.

    The memory and SQLite stores call this inside their lock or transaction;
    the Lua script is a line-for-line translation, so every backend decides
    identically for identical inputs.
    """
    tat = now if stored is None or stored < now else stored
    if cost < 0:
        new = max(tat + t_us * cost, now)
        diff = new - now
        result = GcraResult(True, max(0, (tau - diff) // t_us), 0.0, diff / 1e6)
        return GcraStep(result, stored is not None, new)
    new = tat + t_us * cost
    diff = new - now
    if diff > tau:
        remaining = max(0, (tau - (tat - now)) // t_us)
        result = GcraResult(False, remaining, (diff - tau) / 1e6, (tat - now) / 1e6)
        return GcraStep(result, False, tat)
    result = GcraResult(True, (tau - diff) // t_us, 0.0, diff / 1e6)
    return GcraStep(result, cost > 0, new)
