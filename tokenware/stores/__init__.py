"""Stores: one contract, three backends, each with a sync and an async face.

``store_from_url(url)`` picks the backend by URL scheme and returns a
:class:`~tokenware.stores.base.StorePair`:

=========================  ==============================================
``memory://``              in-process, thread-safe; tests and one process
``sqlite:///path.db``      the embedded default; WAL, shared by processes
``redis://host:port/db``   redis-py; ``rediss://`` for TLS
``redis+cluster://h:p,…``  Redis Cluster; ``rediss+cluster://`` for TLS
=========================  ==============================================

Backends needing an extra (``redis``) import it only when asked for.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tokenware.errors import ConfigurationError
from tokenware.stores.base import AsyncStore, Store, StorePair

__all__ = ["AsyncStore", "Store", "StorePair", "store_from_url"]


def store_from_url(
    url: str,
    *,
    clock: Callable[[], float] = time.time,
    timeout: float = 0.5,
    connect_timeout: float = 0.5,
) -> StorePair:
    """Open the store named by ``url`` and return both of its faces.

    Args:
        url: ``memory://``, ``sqlite:///relative.db``, ``sqlite:////abs.db``,
            ``redis://host:port/db``, ``rediss://...``,
            ``redis+cluster://host:port[,host:port...]`` or ``rediss+cluster://...``.
        clock: expiry clock of the memory and SQLite stores (Redis uses its own).
        timeout: seconds one store command may take (SQLite: the lock wait).
        connect_timeout: seconds to establish a network connection.

    Raises:
        ConfigurationError: an unknown scheme, or a backend whose extra is
            not installed.
    """
    if not isinstance(url, str) or "://" not in url:
        # The value is not quoted: a malformed URL may still hold a password.
        raise ConfigurationError("store must be a URL such as 'sqlite:///tokenware.db'")
    # Not urlsplit: it raises a bare ValueError on a malformed netloc such as
    # "redis://[::1/0"; the backend's own parser reports that properly.
    scheme = url.split("://", 1)[0].lower()
    if scheme == "memory":
        from tokenware.stores.memory import memory_store

        return memory_store(clock=clock)
    if scheme == "sqlite":
        from tokenware.stores.sqlite import sqlite_store

        return sqlite_store(url, clock=clock, timeout=timeout)
    if scheme in ("redis", "rediss", "unix"):
        from tokenware.stores.redis import redis_store

        return redis_store(url, timeout=timeout, connect_timeout=connect_timeout)
    if scheme in ("redis+cluster", "rediss+cluster"):
        from tokenware.stores.redis_cluster import redis_cluster_store

        return redis_cluster_store(url, timeout=timeout, connect_timeout=connect_timeout)
    raise ConfigurationError(
        f"unknown store scheme {scheme!r}; use memory://, sqlite:///path.db, redis://, "
        "rediss:// or redis+cluster://"
    )
