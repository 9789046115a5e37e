"""Helpers for testing apps that use tokenware.

``FrozenClock`` stands still until told to move, so tests can expire tokens
and records without sleeping::

    clock = FrozenClock()
    tw = Tokenware(store="memory://", secret_key=b"x" * 32, clock=clock)
    session = tw.sessions.add("alice", ttl=60)
    clock.advance(61)
    tw.sessions.get(session.id)  # raises NotFound

The memory and SQLite stores follow the clock you give ``Tokenware``; Redis
expires keys on its own clock.
"""

from __future__ import annotations

import threading

__all__ = ["FrozenClock", "make_secret_key"]


class FrozenClock:
    """A thread-safe clock that only moves when told to.

    Args:
        start: the initial time in seconds since the epoch.
    """

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        """The current frozen time, in seconds since the epoch."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move the clock forward by ``seconds``; return the new time."""
        if seconds < 0:
            raise ValueError("a FrozenClock only moves forward")
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, now: float) -> None:
        """Jump to ``now`` (seconds since the epoch)."""
        with self._lock:
            self._now = float(now)


def make_secret_key(seed: str = "tokenware-tests") -> bytes:
    """A deterministic 32-byte secret key for tests. Never use in production."""
    import hashlib

    return hashlib.sha256(seed.encode()).digest()
