"""Helpers shared by test modules.

Test modules import from here, never ``from conftest import ...``: with
several ``conftest.py`` files in the tree the name ``conftest`` means
whichever one was imported first, so such imports break depending on order.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

__all__ = ["IN_CI", "NETWORKED", "backend_url", "need", "raw_redis", "redis_keys", "store_url"]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(reason: str) -> None:
    """Skip locally, fail in CI: a missing dependency must never pass CI."""
    if IN_CI:
        pytest.fail(f"required for CI: {reason}", pytrace=False)
    pytest.skip(reason)


#: Backends of the ``backend`` fixture that talk to a server: Redis, Redis Cluster.
NETWORKED = ("redis", "cluster")


def backend_url(kind: str, request: pytest.FixtureRequest) -> str:
    """The URL of the session server of a networked backend ("redis" or "cluster")."""
    fixture = "redis_cluster_url" if kind == "cluster" else "redis_url"
    return str(request.getfixturevalue(fixture))


def store_url(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, name: str = "store"
) -> str:
    """The URL of a fresh store of ``kind``: memory, a SQLite file ``name``.db
    in ``tmp_path``, or the session's Redis or Redis Cluster test server."""
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / f'{name}.db'}"
    return backend_url(kind, request)


def raw_redis(url: str) -> Any:
    """A plain redis-py client on the test server at ``url`` (a store URL).

    ``redis.Redis`` for ``redis://``, ``redis.cluster.RedisCluster`` (seeded
    by the first node) for ``redis+cluster://``.
    """
    import redis
    import redis.cluster

    if url.startswith("redis+cluster://"):
        first = url.removeprefix("redis+cluster://").split(",", 1)[0]
        return redis.cluster.RedisCluster.from_url(f"redis://{first}")
    return redis.Redis.from_url(url)


def redis_keys(client: Any, pattern: str) -> list[bytes]:
    """``KEYS pattern`` on every primary of a cluster, or on the one server."""
    import redis.cluster

    if isinstance(client, redis.cluster.RedisCluster):
        return list(client.keys(pattern, target_nodes=redis.cluster.RedisCluster.PRIMARIES))
    return list(client.keys(pattern))
