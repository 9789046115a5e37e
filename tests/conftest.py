"""Shared fixtures: store backends (memory, SQLite, a private Redis) and clocks.

Redis tests use a private ``redis-server`` started on a free port for the
session, or ``TOKENWARE_TEST_REDIS_URL``. Without either they skip with the
reason locally and FAIL under ``CI=true``: CI must never pass by skipping.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _support import need

from tokenware.stores import StorePair, store_from_url
from tokenware.testing import FrozenClock


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A private redis-server on a free port, for the whole session."""
    try:
        import redis  # noqa: F401
    except ImportError:
        need("the redis package is not installed (pip install 'tokenware[redis]')")
    from _redis_server import RedisServer

    if shutil.which("redis-server") is None:
        need("redis-server is not on PATH (apt-get install -y redis-server)")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest) -> str:
    """URL of a Redis for tests: TOKENWARE_TEST_REDIS_URL, else the private server."""
    url = os.environ.get("TOKENWARE_TEST_REDIS_URL")
    if url:
        try:
            import redis  # noqa: F401
        except ImportError:
            need("the redis package is not installed (pip install 'tokenware[redis]')")
        return url
    server = request.getfixturevalue("redis_server")
    return str(server.url)


@pytest.fixture
def clock() -> FrozenClock:
    """A frozen clock at a fixed, realistic time."""
    return FrozenClock(1_800_000_000.0)


BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
]


def open_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> StorePair:
    """Open a fresh store of ``kind`` (redis: the shared test server)."""
    if kind == "memory":
        return store_from_url("memory://")
    if kind == "sqlite":
        return store_from_url(f"sqlite:///{tmp_path / 'store.db'}")
    return store_from_url(request.getfixturevalue("redis_url"))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The name of each backend in turn."""
    return str(request.param)


@pytest.fixture
def store_pair(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorePair]:
    """Both faces of a fresh store, for every backend."""
    pair = open_store(backend, request, tmp_path)
    try:
        yield pair
    finally:
        pair.sync.close()


@pytest.fixture
def prefix() -> str:
    """A key prefix private to one test, so a shared Redis is never wiped."""
    return f"t{uuid.uuid4().hex[:12]}"
