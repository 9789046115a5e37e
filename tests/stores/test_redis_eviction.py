"""The ``maxmemory-policy`` warning of the Redis stores, on real servers.

After a store's first successful write, one ``CONFIG GET maxmemory-policy``
(per primary on a cluster) warns on the ``tokenware.stores`` logger when the
policy is ``allkeys-*`` (security.md §3.7). Tests that change the policy of a
shared session server restore it afterwards; the server with ``CONFIG``
renamed away is a private one.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from _redis_server import RedisServer
from _support import need, raw_redis

from tokenware.core.ops import Batch, Gcra, Put
from tokenware.stores import StorePair, store_from_url

pytestmark = pytest.mark.redis

redis = pytest.importorskip("redis")
redis_cluster = pytest.importorskip("redis.cluster")

LOGGER = "tokenware.stores"


def write() -> Batch:
    """A batch of one short-lived key under a fresh hash tag."""
    return Batch(writes=(Put(f"{{ev{uuid.uuid4().hex[:12]}}}:k", b"v", 60),))


def hit() -> Gcra:
    return Gcra(f"{{ev{uuid.uuid4().hex[:12]}}}:rl", interval=1.0, burst=5)


def warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


@contextmanager
def policy(client: Any, value: str, **target: Any) -> Iterator[None]:
    """Set ``maxmemory-policy`` (on ``target`` nodes) and restore the old values."""
    try:
        before = client.config_get("maxmemory-policy", **target)
    except redis.exceptions.ResponseError:
        pytest.skip("the test server refuses CONFIG")
    client.config_set("maxmemory-policy", value, **target)
    try:
        yield
    finally:
        if "maxmemory-policy" in before:  # one server, or one target node
            client.config_set("maxmemory-policy", before["maxmemory-policy"], **target)
        else:  # {node name: reply} from a cluster
            for name, reply in before.items():
                node = client.get_node(node_name=name)
                client.config_set("maxmemory-policy", reply["maxmemory-policy"], target_nodes=node)


@pytest.fixture
def pair(redis_url: str) -> Iterator[StorePair]:
    store = store_from_url(redis_url)
    try:
        yield store
    finally:
        store.sync.close()


@pytest.fixture
def admin(redis_url: str) -> Iterator[Any]:
    client = raw_redis(redis_url)
    try:
        yield client
    finally:
        client.close()


def test_allkeys_policy_warns_once_after_the_first_write(
    pair: StorePair, admin: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    with policy(admin, "allkeys-lru"):
        pair.sync.get("{ev}:nothing")  # reads do not check
        assert warnings(caplog) == []
        assert pair.sync.apply(write()) is True
        pair.sync.apply(write())
        pair.sync.gcra(hit())
    [record] = warnings(caplog)
    message = record.getMessage()
    assert "allkeys-lru" in message
    assert "noeviction" in message and "volatile-" in message
    assert "127.0.0.1" in message  # names the server


def test_async_face_warns_after_gcra_and_shares_the_check(
    pair: StorePair, admin: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)

    async def main() -> None:
        try:
            await pair.aio.gcra(hit())
            await pair.aio.apply(write())
        finally:
            await pair.aio.aclose()

    with policy(admin, "allkeys-lfu"):
        asyncio.run(main())
        pair.sync.apply(write())  # the same store: no second warning
    [record] = warnings(caplog)
    assert "allkeys-lfu" in record.getMessage()


@pytest.mark.parametrize("value", ["noeviction", "volatile-lru", "volatile-ttl"])
def test_other_policies_do_not_warn(
    value: str, pair: StorePair, admin: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    with policy(admin, value):
        pair.sync.apply(write())
    assert warnings(caplog) == []
    assert not any("not checked" in r.getMessage() for r in caplog.records)


def test_server_without_config_logs_at_debug_and_serves(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if shutil.which("redis-server") is None:
        need("redis-server is not on PATH (apt-get install -y redis-server)")
    server = RedisServer(tmp_path / "redis", args=("--rename-command", "CONFIG", ""))
    server.start()
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    try:
        store = store_from_url(server.url)
        try:
            batch = write()
            assert store.sync.apply(batch) is True
            assert store.sync.get(batch.writes[0].key) == b"v"
        finally:
            store.sync.close()
    finally:
        server.stop()
    assert warnings(caplog) == []
    [record] = [r for r in caplog.records if r.name == LOGGER]
    assert record.levelno == logging.DEBUG
    assert "ResponseError" in record.getMessage() and "not checked" in record.getMessage()


def test_cluster_checks_every_primary(
    redis_cluster_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    admin = raw_redis(redis_cluster_url)
    primaries = admin.get_primaries()
    odd_one = primaries[-1]
    store = store_from_url(redis_cluster_url)
    try:
        with policy(admin, "allkeys-random", target_nodes=odd_one):
            store.sync.apply(write())  # on whichever primary owns the slot
    finally:
        store.sync.close()
        admin.close()
    [record] = warnings(caplog)
    message = record.getMessage()
    assert f"{odd_one.host}:{odd_one.port}" in message and "allkeys-random" in message


def test_async_cluster_face_names_each_primary(
    redis_cluster_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    admin = raw_redis(redis_cluster_url)
    primaries = admin.get_primaries()
    store = store_from_url(redis_cluster_url)

    async def main() -> None:
        try:
            await store.aio.gcra(hit())
        finally:
            await store.aio.aclose()

    try:
        with policy(admin, "allkeys-lru", target_nodes=redis_cluster.RedisCluster.PRIMARIES):
            asyncio.run(main())
    finally:
        store.sync.close()
        admin.close()
    named = sorted(r.getMessage().split()[1].rstrip(":") for r in warnings(caplog))
    assert named == sorted(f"{p.host}:{p.port}" for p in primaries)
