"""Fixtures for ``tw.challenges``: a Tokenware over each backend, a call counter.

Memory and SQLite expire keys on the ``FrozenClock``; Redis on its own clock.
Every challenge decision (expiry, throttle) reads the injected clock, so
``clock.advance`` is enough on every backend.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _challenge_helpers import Counter, Factory, store_url

from tokenware import Tokenware
from tokenware.stores import StorePair, store_from_url
from tokenware.testing import FrozenClock, make_secret_key

SECRET = make_secret_key("test-challenges")


@pytest.fixture
def pair(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, clock: FrozenClock
) -> Iterator[StorePair]:
    """One store of ``backend`` whose expiry follows ``clock`` (Redis: its own)."""
    stores = store_from_url(store_url(backend, request, tmp_path), clock=clock, timeout=5)
    try:
        yield stores
    finally:
        stores.sync.close()


@pytest.fixture
def make_tw(pair: StorePair, clock: FrozenClock, prefix: str) -> Iterator[Factory]:
    """Build ``Tokenware`` instances over ONE store; their challenges are wiped after."""
    made: list[Tokenware] = []

    def factory(**kwargs: Any) -> Tokenware:
        kwargs.setdefault("key_prefix", prefix)
        if "keys" not in kwargs:
            kwargs.setdefault("secret_key", SECRET)
        tw = Tokenware(store=pair, clock=clock, **kwargs)
        made.append(tw)
        return tw

    try:
        yield factory
    finally:
        for tw in made:
            tw.challenges.reset()


@pytest.fixture
def tw(make_tw: Factory) -> Tokenware:
    """A Tokenware over the backend under test."""
    return make_tw()


@pytest.fixture
def counter(tw: Tokenware) -> Counter:
    """A store-call counter over ``tw``."""
    return Counter(tw)
