"""Shared fixtures: store backends (memory, SQLite, a private Redis and Redis Cluster), clocks.

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
from _support import need, store_url

from tokenware.stores import StorePair, store_from_url
from tokenware.testing import FrozenClock


def _need_redis(*programs: str) -> None:
    """Skip (locally) or fail (CI) without the redis package or a program."""
    try:
        import redis  # noqa: F401
    except ImportError:
        need("the redis package is not installed (pip install 'tokenware[redis]')")
    for program in programs:
        if shutil.which(program) is None:
            need(f"{program} is not on PATH (apt-get install -y redis-server redis-tools)")


def _running(server: Any) -> Iterator[Any]:
    """Start ``server`` (a RedisServer or RedisCluster), yield it, stop it."""
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A private redis-server on a free port, for the whole session."""
    _need_redis("redis-server")
    from _redis_server import RedisServer

    yield from _running(RedisServer(tmp_path_factory.mktemp("redis")))


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A private Redis Cluster (3 primaries, 3 replicas) on free ports, for the session."""
    _need_redis("redis-server", "redis-cli")
    from _redis_cluster import RedisCluster

    yield from _running(RedisCluster(tmp_path_factory.mktemp("redis-cluster")))


def _test_url(request: pytest.FixtureRequest, variable: str, fixture: str) -> str:
    """The URL in the environment ``variable``, else that of the server ``fixture``."""
    url = os.environ.get(variable)
    if url:
        _need_redis()
        return url
    return str(request.getfixturevalue(fixture).url)


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest) -> str:
    """URL of a Redis for tests: TOKENWARE_TEST_REDIS_URL, else the private server."""
    return _test_url(request, "TOKENWARE_TEST_REDIS_URL", "redis_server")


@pytest.fixture(scope="session")
def redis_cluster_url(request: pytest.FixtureRequest) -> str:
    """``redis+cluster://`` URL: TOKENWARE_TEST_REDIS_CLUSTER_URL, else the private cluster."""
    return _test_url(request, "TOKENWARE_TEST_REDIS_CLUSTER_URL", "redis_cluster")


@pytest.fixture
def clock() -> FrozenClock:
    """A frozen clock at a fixed, realistic time."""
    return FrozenClock(1_800_000_000.0)


BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
    pytest.param("cluster", id="cluster", marks=pytest.mark.redis),
]


def open_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> StorePair:
    """Open a fresh store of ``kind`` (redis, cluster: the shared test server)."""
    return store_from_url(store_url(kind, request, tmp_path))


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
