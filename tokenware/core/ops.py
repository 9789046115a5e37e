"""Store operations: the small frozen objects a flow yields.

A flow never calls a store. It yields one of the operations below and the
driver (:mod:`tokenware._drive`) sends back the result. Every store, sync or
async, has a method of the same name for each operation, so
``op.call(store)`` returns a value for a sync store and an awaitable for an
async one, and the two drivers stay mirror images of each other.

Atomicity lives in :class:`Apply`: its guards are checked and its writes
applied as ONE store operation (a Lua script on Redis, a ``BEGIN IMMEDIATE``
transaction on SQLite, a locked section in memory). Flows use it for
compare-and-set: read a record, decide in Python (constant-time secret
comparisons belong in Python, not in Lua), then write only if the record is
still the one that was read.

:class:`Gcra` is the one exception to "decide in Python": a rate limiter must
read, decide and write in one round trip, on one clock shared by every app
server, so its arithmetic runs inside the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tokenware.core.frozen import fast_init

if TYPE_CHECKING:
    from tokenware.stores.base import AsyncStore, Store

__all__ = [
    "Absent",
    "Apply",
    "Batch",
    "Delete",
    "Equals",
    "Gcra",
    "GcraResult",
    "Get",
    "GetMany",
    "Guard",
    "Members",
    "Op",
    "Present",
    "Purge",
    "Put",
    "SetAdd",
    "SetRemove",
    "Write",
]


# --- guards: conditions checked inside the atomic section -------------------


@fast_init
@dataclass(frozen=True, slots=True)
class Absent:
    """Holds when ``key`` does not exist (or has expired)."""

    key: str


@fast_init
@dataclass(frozen=True, slots=True)
class Present:
    """Holds when ``key`` exists."""

    key: str


@fast_init
@dataclass(frozen=True, slots=True)
class Equals:
    """Holds when ``key`` exists and its value is exactly ``value``."""

    key: str
    value: bytes


Guard = Absent | Present | Equals


# --- writes: applied together, all or nothing -------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class Put:
    """Set ``key`` to ``value``.

    ``ttl`` is in seconds (``None``: no expiry). ``keep_ttl`` keeps the key's
    current expiry, for updates that must not extend a record's life.
    """

    key: str
    value: bytes
    ttl: float | None = None
    keep_ttl: bool = False


@fast_init
@dataclass(frozen=True, slots=True)
class Delete:
    """Delete ``key`` (a value or a set); deleting a missing key is a no-op."""

    key: str


@fast_init
@dataclass(frozen=True, slots=True)
class SetAdd:
    """Add ``member`` to the set at ``key``.

    With ``ttl`` the set lives at least ``ttl`` more seconds (an existing
    longer expiry is kept); with ``None`` the set no longer expires.
    """

    key: str
    member: str
    ttl: float | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class SetRemove:
    """Remove ``member`` from the set at ``key``; an empty set disappears."""

    key: str
    member: str


Write = Put | Delete | SetAdd | SetRemove


@fast_init
@dataclass(frozen=True, slots=True)
class Batch:
    """Guards and writes executed atomically by :meth:`Store.apply`.

    All keys of one batch must share one hash tag (``{...}``) so the batch
    runs on Redis Cluster; :meth:`keys` lists them for that check.
    """

    guards: tuple[Guard, ...] = ()
    writes: tuple[Write, ...] = ()

    def keys(self) -> tuple[str, ...]:
        """Every key the batch touches, guards first, without duplicates."""
        seen: dict[str, None] = {}
        for item in (*self.guards, *self.writes):
            seen.setdefault(item.key, None)
        return tuple(seen)


# --- operations yielded by flows --------------------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class Get:
    """Read one value; the result is ``bytes`` or ``None``."""

    key: str

    def call(self, store: Store | AsyncStore) -> Any:
        """Run against ``store`` (a value, or an awaitable for async stores)."""
        return store.get(self.key)


@fast_init
@dataclass(frozen=True, slots=True)
class GetMany:
    """Read several values; the result is a list aligned with ``keys``."""

    keys: tuple[str, ...]

    def call(self, store: Store | AsyncStore) -> Any:
        """Run against ``store`` (a value, or an awaitable for async stores)."""
        return store.get_many(self.keys)


@fast_init
@dataclass(frozen=True, slots=True)
class Members:
    """Read the members of a set; the result is a ``frozenset[str]``."""

    key: str

    def call(self, store: Store | AsyncStore) -> Any:
        """Run against ``store`` (a value, or an awaitable for async stores)."""
        return store.members(self.key)


@fast_init
@dataclass(frozen=True, slots=True)
class Apply:
    """Apply a :class:`Batch`; the result is ``True`` if every guard held."""

    batch: Batch

    def call(self, store: Store | AsyncStore) -> Any:
        """Run against ``store`` (a value, or an awaitable for async stores)."""
        return store.apply(self.batch)


@fast_init
@dataclass(frozen=True, slots=True)
class Purge:
    """Delete every key under ``prefix``; the result is the number deleted."""

    prefix: str

    def call(self, store: Store | AsyncStore) -> Any:
        """Run against ``store`` (a value, or an awaitable for async stores)."""
        return store.purge(self.prefix)


@fast_init
@dataclass(frozen=True, slots=True)
class GcraResult:
    """What one :class:`Gcra` hit decided, computed inside the store.

    Attributes:
        allowed: whether the hit conforms (and, for ``cost > 0``, was counted).
        remaining: further unit-cost hits that would conform right now.
        retry_after: seconds until this same hit would conform (0 if allowed).
        reset_after: seconds until the key is back to a full burst.
    """

    allowed: bool
    remaining: int
    retry_after: float
    reset_after: float


@fast_init
@dataclass(frozen=True, slots=True)
class Gcra:
    """One hit of the generic cell rate algorithm on ``key``; the result is a :class:`GcraResult`.

    The store keeps one value per key, the theoretical arrival time (TAT, in
    whole microseconds), reads its own clock (Redis: ``TIME``), decides and
    writes the new TAT with a TTL in ONE atomic operation. With emission
    interval ``T = interval`` and tolerance ``tau = T * burst``, a hit of
    ``cost`` conforms when ``max(tat, now) + T * cost - now <= tau``. So
    ``burst`` hits pass at once, then one every ``T`` seconds.

    ``cost`` 0 only tests (nothing is written); a negative cost gives
    ``-cost`` units back (never below "now"; used to undo a hit). A denied
    hit writes nothing, so a cost larger than ``burst`` is always denied
    and consumes nothing.
    """

    key: str
    interval: float
    burst: int
    cost: int = 1

    def call(self, store: Store | AsyncStore) -> Any:
        """Run against ``store`` (a value, or an awaitable for async stores)."""
        return store.gcra(self)


Op = Get | GetMany | Members | Apply | Purge | Gcra
