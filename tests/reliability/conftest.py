"""Fixtures of the fault-injection and concurrency tests (issue 9 items 2 and 3).

Every server broken here is started here, on a free port, and signalled
only by its pid: the session Redis and Cluster of the other tests are used
only by the concurrency tests, which break nothing.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _faults import DURABLE, need_redis
from _racer import Local, Racers, Racing
from _support import backend_url

from tokenware import Tokenware
from tokenware.testing import FrozenClock


@pytest.fixture
def secret() -> bytes:
    """A fresh random root secret, shared by the app and the test's Tokenware."""
    return secrets.token_bytes(32)


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[Any]:
    """A private redis-server with an append-only file fsynced on every write.

    SIGKILL and a start on the same port keep every acknowledged write, as a
    production Redis that holds revocations and throttle counters must.
    """
    need_redis("redis-server")
    from _redis_server import RedisServer

    server = RedisServer(tmp_path / "redis", args=DURABLE)
    server.start()
    try:
        yield server
    finally:
        server.stop()  # also resumes a paused server first


@pytest.fixture(scope="module")
def fault_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A private Redis Cluster (3 primaries, 3 replicas): its tests kill a primary."""
    need_redis("redis-server", "redis-cli")
    from _redis_cluster import RedisCluster

    cluster = RedisCluster(tmp_path_factory.mktemp("fault-cluster"), node_timeout=1000)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


# -- races -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def racers() -> Iterator[Racers]:
    """4 worker processes, started once: each backend's ``racing`` re-points them."""
    workers = Racers(processes=4)
    try:
        yield workers
    finally:
        workers.close()


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("redis", id="redis", marks=pytest.mark.redis),
        pytest.param("cluster", id="cluster", marks=pytest.mark.redis),
    ],
)
def racing(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, racers: Racers
) -> Iterator[Racing]:
    """4 worker processes and a Tokenware of the test's own, over one store.

    SQLite runs every process on the same frozen clock (its expiry and GCRA
    arithmetic read the injected clock); Redis decides throttles on ``TIME``.
    """
    kind = str(request.param)
    secret = secrets.token_bytes(32)
    prefix = f"rr{uuid.uuid4().hex[:8]}"
    frozen: float | None = None
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('races') / 'store.db'}"
        frozen = float(int(time.time()))
    else:
        need_redis("redis-server")
        url = backend_url(kind, request)
    clock = FrozenClock(frozen) if frozen is not None else time.time
    tw = Tokenware(store=url, secret_key=secret, key_prefix=prefix, clock=clock,
                   store_timeout=10.0)  # fmt: skip
    tw.throttle.hit("warm-up", "1/second", cost=0)  # the SQLite file exists before the workers
    racers.setup(store=url, secret=secret, prefix=prefix, clock=frozen)
    try:
        yield Racing(kind, tw, racers)
    finally:
        if kind != "sqlite":
            tw.stores.sync.purge(f"{prefix}:")
        tw.close()


@pytest.fixture(
    params=[
        pytest.param("memory", id="memory"),
        pytest.param("sqlite", id="sqlite"),
        pytest.param("redis", id="redis", marks=pytest.mark.redis),
        pytest.param("cluster", id="cluster", marks=pytest.mark.redis),
    ]
)
def local(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Local]:
    """A Tokenware on each backend, for races of threads and asyncio tasks."""
    kind = str(request.param)
    if kind == "memory":
        url = "memory://"
    elif kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        need_redis("redis-server")
        url = backend_url(kind, request)
    prefix = f"rl{uuid.uuid4().hex[:8]}"
    tw = Tokenware(store=url, secret_key=secrets.token_bytes(32), key_prefix=prefix,
                   store_timeout=10.0)  # fmt: skip
    tw.throttle.hit("warm-up", "1/second", cost=0)  # open (and create) the store first
    try:
        yield Local(kind, tw)
    finally:
        if kind in ("redis", "cluster"):
            tw.stores.sync.purge(f"{prefix}:")
        tw.close()
