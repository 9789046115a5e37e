"""``memory://``: a thread-safe in-process store, for tests and single processes.

Both faces share one dictionary guarded by one lock. The async face calls
the sync one inline: every operation holds the lock for microseconds, which
is cheaper than a hop to a worker thread.

A memory store is private to one process. After ``fork()`` (gunicorn and
uwsgi workers, ``multiprocessing``) each child would hold its own copy and a
"one-time" code could be used once per worker, so a store created before a
fork refuses every operation in the child with ``StoreUnavailable``. Use
``sqlite://`` or ``redis://`` to share state between processes.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence

from tokenware.core.ops import (
    Absent,
    Batch,
    Delete,
    Equals,
    Gcra,
    GcraResult,
    Present,
    Put,
    SetAdd,
    SetRemove,
)
from tokenware.errors import StoreUnavailable
from tokenware.stores.base import StorePair, check_batch, check_gcra, gcra_step

__all__ = ["AsyncMemoryStore", "MemoryStore", "memory_store"]

_Value = bytes | set[str]

_LIVE: weakref.WeakSet[MemoryStore] = weakref.WeakSet()


def _mark_forked() -> None:
    for store in list(_LIVE):
        store._forked = True


os.register_at_fork(after_in_child=_mark_forked)


class MemoryStore:
    """The synchronous face of the memory store.

    Args:
        clock: the time source for expiry, in seconds (defaults to
            :func:`time.time`; tests may pass a ``FrozenClock``).
    """

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._data: dict[str, _Value] = {}
        self._expiry: dict[str, float] = {}
        self._forked = False
        _LIVE.add(self)

    # -- internals (call with the lock held) --------------------------------

    def _check(self) -> None:
        if self._forked:
            raise StoreUnavailable(
                "memory:// store was created before fork(); each process would hold its own "
                "copy of one-time state. Use sqlite:// or redis:// across processes."
            )

    def _live(self, key: str, now: float) -> _Value | None:
        deadline = self._expiry.get(key)
        if deadline is not None and deadline <= now:
            del self._data[key]
            del self._expiry[key]
            return None
        return self._data.get(key)

    def _holds(self, guard: Absent | Present | Equals, now: float) -> bool:
        value = self._live(guard.key, now)
        if isinstance(guard, Absent):
            return value is None
        if isinstance(guard, Present):
            return value is not None
        return isinstance(value, bytes) and value == guard.value

    def _write(self, write: Put | Delete | SetAdd | SetRemove, now: float) -> None:
        key = write.key
        if isinstance(write, Put):
            # The old value matters only to keep_ttl, so only then is it read
            # (and an expired one dropped); otherwise both maps are overwritten.
            if not (write.keep_ttl and self._live(key, now) is not None):
                ttl = write.ttl
                if ttl is None:
                    self._expiry.pop(key, None)
                else:
                    self._expiry[key] = now + ttl
            self._data[key] = write.value
            return
        current = self._live(key, now)
        if isinstance(write, Delete):
            self._data.pop(key, None)
            self._expiry.pop(key, None)
        elif isinstance(write, SetAdd):
            members = current if isinstance(current, set) else set()
            members.add(write.member)
            self._data[key] = members
            if write.ttl is None:
                self._expiry.pop(key, None)
            elif current is None or key in self._expiry:
                # Extend only: a set shared by records of different TTLs must
                # outlive the longest of them.
                self._expiry[key] = max(self._expiry.get(key, 0.0), now + write.ttl)
        elif isinstance(current, set):
            current.discard(write.member)
            if not current:
                del self._data[key]
                self._expiry.pop(key, None)

    # -- the Store contract --------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """The value at ``key``, or ``None``."""
        with self._lock:
            self._check()
            value = self._live(key, self._clock())
            return value if isinstance(value, bytes) else None

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values at ``keys``, ``None`` where missing."""
        with self._lock:
            self._check()
            now = self._clock()
            values = [self._live(k, now) for k in keys]
            return [v if isinstance(v, bytes) else None for v in values]

    def members(self, key: str) -> frozenset[str]:
        """The members of the set at ``key``."""
        with self._lock:
            self._check()
            value = self._live(key, self._clock())
            return frozenset(value) if isinstance(value, set) else frozenset()

    def apply(self, batch: Batch) -> bool:
        """Check the guards and apply the writes under one lock."""
        check_batch(batch)
        with self._lock:
            if self._forked:
                self._check()
            now = self._clock()
            data = self._data
            for guard in batch.guards:
                # A key never written holds Absent with nothing to expire (a
                # key with a deadline always has a value): the usual case of
                # an insert-if-absent, decided by one lookup.
                if not (type(guard) is Absent and guard.key not in data):
                    if not self._holds(guard, now):
                        return False
            for write in batch.writes:
                self._write(write, now)
            return True

    def purge(self, prefix: str) -> int:
        """Delete every key starting with ``prefix``."""
        with self._lock:
            self._check()
            doomed = [k for k in self._data if k.startswith(prefix)]
            for key in doomed:
                del self._data[key]
                self._expiry.pop(key, None)
            return len(doomed)

    def ttl(self, key: str) -> float | None:
        """Seconds left for ``key``; ``None`` if missing or without expiry."""
        with self._lock:
            self._check()
            now = self._clock()
            if self._live(key, now) is None or key not in self._expiry:
                return None
            return self._expiry[key] - now

    def gcra(self, op: Gcra) -> GcraResult:
        """One GCRA hit under the lock, on the injected clock."""
        t_us, tau = check_gcra(op)
        key = op.key
        with self._lock:
            if self._forked:
                self._check()
            now_s = self._clock()
            now = round(now_s * 1_000_000)
            value = self._live(key, now_s)
            stored = None
            if isinstance(value, bytes):
                try:
                    stored = int(value)
                except ValueError:
                    stored = None  # not a TAT: the hit starts the key afresh
            step = gcra_step(stored, now, t_us, tau, op.cost)
            if step.write:
                tat = step.tat
                if tat > now:
                    self._data[key] = b"%d" % tat
                    self._expiry[key] = now_s + (tat - now) / 1_000_000
                else:
                    self._data.pop(key, None)
                    self._expiry.pop(key, None)
            return step.result

    def close(self) -> None:
        """Nothing to release; present for the contract."""


class AsyncMemoryStore:
    """The asynchronous face of a :class:`MemoryStore`, over the same data."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def get(self, key: str) -> bytes | None:
        """The value at ``key``, or ``None``."""
        return self._store.get(key)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values at ``keys``, ``None`` where missing."""
        return self._store.get_many(keys)

    async def members(self, key: str) -> frozenset[str]:
        """The members of the set at ``key``."""
        return self._store.members(key)

    async def apply(self, batch: Batch) -> bool:
        """Check the guards and apply the writes under one lock."""
        return self._store.apply(batch)

    async def purge(self, prefix: str) -> int:
        """Delete every key starting with ``prefix``."""
        return self._store.purge(prefix)

    async def ttl(self, key: str) -> float | None:
        """Seconds left for ``key``."""
        return self._store.ttl(key)

    async def gcra(self, op: Gcra) -> GcraResult:
        """One GCRA hit under the lock, on the injected clock."""
        return self._store.gcra(op)

    async def aclose(self) -> None:
        """Nothing to release; present for the contract."""


def memory_store(*, clock: Callable[[], float] = time.time) -> StorePair:
    """A fresh memory store and its two faces."""
    store = MemoryStore(clock=clock)
    return StorePair(url="memory://", sync=store, aio=AsyncMemoryStore(store))
