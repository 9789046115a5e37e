"""``tw.throttle``: GCRA rate limiting over the configured store.

The rules live in :mod:`tokenware.core.throttle`; this module runs them with
the sync or the async driver. ``tw.throttle`` is :class:`Throttle`;
``tw.aio.throttle`` has the same method as a coroutine (:class:`AsyncThrottle`).
:class:`ThrottleRule` is an HTTP rule for the middlewares' ``throttle=``
(see :mod:`tokenware.core.http_throttle`); the per-view decorator is
:func:`tokenware.throttle`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from tokenware.core.flow import Flow
from tokenware.core.http_throttle import ThrottleRule
from tokenware.core.throttle import Decision, Rate, Rule, ThrottleKeys, hit_flow, parse_rule

if TYPE_CHECKING:
    from tokenware.sessions import Runner

__all__ = ["AsyncThrottle", "Decision", "Rate", "Rule", "Throttle", "ThrottleRule"]


class Throttle:
    """Rate limiting: ``hit(key, rate)`` counts one hit and says if it passes.

    Every hit is ONE atomic store operation per rate (a Lua script on Redis
    reading Redis's clock, a ``BEGIN IMMEDIATE`` transaction on SQLite, a
    lock in memory), so limits hold across threads, processes and app
    servers with skewed clocks.
    """

    def __init__(self, keys: ThrottleKeys, run: Runner) -> None:
        self._keys = keys
        self._run = run

    def hit(self, key: str, rate: str | Rule | Rate, *, cost: int = 1) -> Decision:
        """Count a hit of ``cost`` on ``key`` against every rate of ``rate``.

        Args:
            key: what to limit, e.g. ``f"login:{username}"``; hashed (keyed
                HMAC) before it reaches the store, so any string is safe.
            rate: a rate string such as ``"10/minute"`` or
                ``"5/second;burst=10, 1000/day"``, or a parsed rule.
            cost: units this hit takes (0 only checks).

        Returns:
            The :class:`~tokenware.core.throttle.Decision`; a denied hit
            consumes nothing (see :func:`~tokenware.core.throttle.hit_flow`).

        Raises:
            ValidationError: a malformed rate, key or cost.
            StoreUnavailable: the store cannot answer. There is no silent
                fallback: the caller (or the HTTP rule's ``on_store_error``)
                decides whether to fail closed or open.
        """
        return self._run(self.flow(key, rate, cost=cost))  # type: ignore[no-any-return]

    def flow(
        self, key: str, rate: str | Rule | Rate, *, cost: int = 1, scope: str = ""
    ) -> Flow[Decision]:
        """The sans-I/O flow behind :meth:`hit`, for composing with other flows."""
        rates = parse_rule(rate).rates
        if len(rates) == 1:
            only = rates[0]
            return hit_flow(((self._keys.key(key, only, scope=scope), only),), cost)
        return hit_flow([(self._keys.key(key, r, scope=scope), r) for r in rates], cost)


class AsyncThrottle(Protocol):
    """The methods of :class:`Throttle` as coroutines (``tw.aio.throttle``)."""

    async def hit(self, key: str, rate: str | Rule | Rate, *, cost: int = 1) -> Decision:
        """See :meth:`Throttle.hit`."""
