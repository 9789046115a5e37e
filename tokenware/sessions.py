"""``tw.sessions``: opaque session tokens and short-lived values.

The rules live in :mod:`tokenware.core.session`; this module only runs them
with the sync or the async driver. ``tw.sessions`` is :class:`Sessions`;
``tw.aio.sessions`` has the same methods as coroutines
(:class:`AsyncSessions`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from tokenware.core.encoding import Random
from tokenware.core.flow import Flow
from tokenware.core.session import SessionRules, SessionToken

__all__ = ["AsyncSessions", "Runner", "SessionToken", "Sessions"]


class Runner(Protocol):
    """Runs a flow: returns its value (sync) or an awaitable of it (async)."""

    def __call__(self, flow: Flow[Any], /) -> Any:
        """Run ``flow``."""


class Sessions:
    """Session tokens: ``add``, look up, update, delete, list; short-lived values.

    Every method raises :class:`~tokenware.errors.StoreUnavailable` when the
    store cannot answer, :class:`~tokenware.errors.NotFound` for a missing
    id, key or handle, and :class:`~tokenware.errors.ValidationError` for
    bad arguments (such as ``attrs`` that are not JSON).
    """

    def __init__(
        self, rules: SessionRules, run: Runner, clock: Callable[[], float], rand: Random
    ) -> None:
        self._rules = rules
        self._run = run
        self._clock = clock
        self._rand = rand

    def add(
        self, owner_id: str, attrs: Mapping[str, Any] | None = None, *, ttl: float | None = None
    ) -> SessionToken:
        """Create a session for ``owner_id`` and return it with its key.

        Args:
            owner_id: who the session belongs to (a user id).
            attrs: a JSON object stored with the session.
            ttl: lifetime in seconds (default: the ``session_ttl`` setting).

        Returns:
            The session; ``key`` (``tws_...``) is shown this once and never stored.
        """
        flow = self._rules.add(owner_id, attrs, ttl, now=self._clock(), rand=self._rand)
        return self._run(flow)  # type: ignore[no-any-return]

    def get(self, id: str) -> SessionToken:
        """The session with public id ``id``; its ``key`` is ``None``."""
        return self._run(self._rules.get(id))  # type: ignore[no-any-return]

    def get_by_key(self, key: str) -> SessionToken:
        """The session whose bearer token is ``key`` (compared in constant time)."""
        return self._run(self._rules.get_by_key(key))  # type: ignore[no-any-return]

    def set_attrs(self, id: str, attrs: Mapping[str, Any]) -> SessionToken:
        """Replace the session's attrs; its expiry is unchanged."""
        return self._run(self._rules.set_attrs(id, attrs))  # type: ignore[no-any-return]

    def delete(self, id: str) -> None:
        """Delete the session with public id ``id``."""
        return self._run(self._rules.delete(id))  # type: ignore[no-any-return]

    def delete_by_key(self, key: str) -> None:
        """Delete the session whose bearer token is ``key``."""
        return self._run(self._rules.delete_by_key(key))  # type: ignore[no-any-return]

    def list(self, owner_id: str) -> list[SessionToken]:
        """Every live session of ``owner_id``, oldest first; keys are ``None``."""
        return self._run(self._rules.list(owner_id))  # type: ignore[no-any-return]

    def make_hash(self, value: Any, ttl: float = 3600) -> str:
        """Store a JSON ``value`` for ``ttl`` seconds; return its handle (131 bits)."""
        return self._run(self._rules.make_hash(value, ttl, rand=self._rand))  # type: ignore[no-any-return]

    def get_hash(self, h: str) -> Any:
        """The value stored under handle ``h``."""
        return self._run(self._rules.get_hash(h))

    def delete_hash(self, h: str) -> None:
        """Delete the value stored under handle ``h``."""
        return self._run(self._rules.delete_hash(h))  # type: ignore[no-any-return]

    def reset(self) -> int:
        """Delete every session and value under the configured key prefix.

        Only tokenware's own keys are touched; returns how many were deleted.
        """
        return self._run(self._rules.reset())  # type: ignore[no-any-return]


class AsyncSessions(Protocol):
    """The methods of :class:`Sessions` as coroutines (``tw.aio.sessions``)."""

    async def add(
        self, owner_id: str, attrs: Mapping[str, Any] | None = None, *, ttl: float | None = None
    ) -> SessionToken:
        """See :meth:`Sessions.add`."""

    async def get(self, id: str) -> SessionToken:
        """See :meth:`Sessions.get`."""

    async def get_by_key(self, key: str) -> SessionToken:
        """See :meth:`Sessions.get_by_key`."""

    async def set_attrs(self, id: str, attrs: Mapping[str, Any]) -> SessionToken:
        """See :meth:`Sessions.set_attrs`."""

    async def delete(self, id: str) -> None:
        """See :meth:`Sessions.delete`."""

    async def delete_by_key(self, key: str) -> None:
        """See :meth:`Sessions.delete_by_key`."""

    async def list(self, owner_id: str) -> list[SessionToken]:
        """See :meth:`Sessions.list`."""

    async def make_hash(self, value: Any, ttl: float = 3600) -> str:
        """See :meth:`Sessions.make_hash`."""

    async def get_hash(self, h: str) -> Any:
        """See :meth:`Sessions.get_hash`."""

    async def delete_hash(self, h: str) -> None:
        """See :meth:`Sessions.delete_hash`."""

    async def reset(self) -> int:
        """See :meth:`Sessions.reset`."""
