"""``redis+cluster://``: the Redis store on Redis Cluster (``tokenware[redis]``).

``redis+cluster://[[user]:password@]host:port[,host:port...]`` lists seed
nodes (any of them, primaries or replicas; the client discovers the rest);
``rediss+cluster://`` uses TLS. Both faces go through redis-py's cluster
clients, :class:`redis.cluster.RedisCluster` and
:class:`redis.asyncio.cluster.RedisCluster`, and share every operation with
:mod:`tokenware.stores.redis` (same scripts, same timeouts, same error
mapping); only the client, the URL and :meth:`purge` differ.

Hash slots: each script call passes every key it touches in ``KEYS``, and
:func:`~tokenware.stores.base.check_batch` refuses a batch whose keys span
more than one hash tag before anything is sent, so a call always runs on the
one primary owning that slot. ``get_many`` and ``purge``'s ``UNLINK`` are
split by slot by the client.

Retries: a ``MOVED``, ``ASK`` or ``TRYAGAIN`` reply means the command did not
run, and redis-py follows the redirect itself (bounded, inside one call).
A connection error or a timeout may come after a script ran, so the cluster
client's own retry loop (``retry=``, formerly
``cluster_error_retry_attempts``, 3 by default) is set to zero: redis-py
refreshes its slot map and the caller gets
:class:`~tokenware.errors.StoreUnavailable`, as on a single node.

redis-py's sync cluster client does not pass ``health_check_interval`` to its
node connections (the asyncio one does): there, a pooled connection dropped
while idle fails its next command once, as ``StoreUnavailable``.

The ``maxmemory-policy`` check of :mod:`tokenware.stores.redis` runs on
every primary (``_config_target``) and names the node of each warning.

Failover: writes reach a replica asynchronously. A primary that dies before
a consumed code or a rotation reached its replica loses that write when the
replica is promoted; see docs/stores.md (the residual risk of security.md
§3.7).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from tokenware.errors import ConfigurationError
from tokenware.stores import redis as single
from tokenware.stores.base import StorePair

try:
    import redis.asyncio.cluster
    import redis.cluster
    from redis._parsers.encoders import Encoder
    from redis.commands.core import Script
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ConfigurationError("pip install 'tokenware[redis]'") from exc

__all__ = ["AsyncRedisClusterStore", "RedisClusterStore", "redis_cluster_store"]

#: Query options of a cluster URL: those of ``redis://`` but the database
#: (a cluster has only database 0).
_CLUSTER_OPTIONS = single._URL_OPTIONS - {"db"}


class _ClusterURL:
    """A checked ``redis+cluster://`` URL.

    Attributes:
        seed: a ``redis://`` (or ``rediss://``) URL of the first node, with the
            credentials and options, for redis-py's ``from_url``.
        nodes: every ``(host, port)`` listed.
        redacted: the URL with its password replaced by ``***``.
    """

    def __init__(self, url: str) -> None:
        if not isinstance(url, str):
            raise ConfigurationError("the redis cluster URL must be a string")
        scheme = url.split("://", 1)[0]
        if scheme not in ("redis+cluster", "rediss+cluster"):
            raise ConfigurationError(
                "a redis cluster URL starts with redis+cluster:// or rediss+cluster:// (lower case)"
            )
        try:
            parts = urlsplit(url)
            query = parse_qs(parts.query, keep_blank_values=True)
        except ValueError:
            raise ConfigurationError("invalid redis cluster URL") from None
        single._check_options(query, _CLUSTER_OPTIONS)
        if parts.path not in ("", "/", "/0") or parts.fragment:
            raise ConfigurationError(
                "a redis cluster URL has no path but an optional /0: a cluster has database 0 only"
            )
        userinfo, at, hostlist = parts.netloc.rpartition("@")
        nodes: list[tuple[str, int]] = []
        for item in hostlist.split(","):
            try:
                node = urlsplit(f"//{item}")
                host, port = node.hostname, node.port
            except ValueError:
                host = port = None
            if not host or port is None or node.username is not None:
                raise ConfigurationError(
                    "invalid redis cluster URL: each node is host:port, separated by "
                    "commas (percent-encode special characters in the password)"
                )
            nodes.append((host, port))
        self.nodes = nodes
        base = scheme.split("+", 1)[0]
        query_text = f"?{parts.query}" if parts.query else ""
        self.seed = f"{base}://{userinfo}{at}{hostlist.split(',', 1)[0]}/0{query_text}"
        if ":" in userinfo:
            user = userinfo.split(":", 1)[0]
            self.redacted = url.replace(f"{userinfo}@", f"{user}:***@", 1)
        else:
            self.redacted = url


def _check_cluster_url(url: str) -> None:
    """Raise :class:`~tokenware.errors.ConfigurationError` for a bad cluster URL."""
    _ClusterURL(url)


def _redact_cluster(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``."""
    return _ClusterURL(url).redacted


def _scan_options(prefix: str) -> dict[str, Any]:
    """``scan_iter`` arguments: keys under ``prefix``, on every primary (never KEYS)."""
    return {
        "match": single._glob_escape(prefix) + "*",
        "count": single.PURGE_BATCH,
        "target_nodes": redis.cluster.RedisCluster.PRIMARIES,
    }


def _chunks(keys: Iterator[bytes]) -> Iterator[list[bytes]]:
    """``keys`` in lists of at most ``PURGE_BATCH``."""
    while chunk := list(itertools.islice(keys, single.PURGE_BATCH)):
        yield chunk


class _LazyCluster:
    """A ``redis.cluster.RedisCluster`` created on first use.

    The sync cluster client discovers the slot map in its constructor; made
    eagerly, a cluster that is down when the application starts would fail
    the start instead of the first request (and never recover). Until one
    succeeds, every use tries again and a failure reads as a connection error.
    """

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._client: Any = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        client = self._client
        if client is not None:  # the common case, without the lock
            return client
        with self._lock:
            if self._client is None:
                try:
                    self._client = self._factory()
                except redis.exceptions.RedisClusterException as exc:
                    # "cannot be connected": no seed node answered.
                    raise redis.exceptions.ConnectionError(type(exc).__name__) from exc
            return self._client

    def get_encoder(self) -> Encoder:
        """What :class:`~redis.commands.core.Script` hashes the source with."""
        return Encoder("utf-8", "strict", False)  # type: ignore[no-untyped-call]

    def register_script(self, source: str) -> Script:
        """A script bound to this proxy (creates nothing)."""
        return Script(self, source)  # type: ignore[arg-type]

    def close(self) -> None:
        """Close the client if one was made."""
        with self._lock:
            client = self._client
        if client is not None:
            client.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)


class RedisClusterStore(single.RedisStore):
    """The synchronous face of the Redis Cluster store.

    Args:
        url: a ``redis+cluster://`` or ``rediss+cluster://`` URL.
        timeout: seconds one command may take.
        connect_timeout: seconds to establish a connection.

    Raises:
        ConfigurationError: the URL cannot be parsed.
    """

    _check = staticmethod(_check_cluster_url)
    _redact = staticmethod(_redact_cluster)
    _config_target: ClassVar[dict[str, Any]] = {
        "target_nodes": redis.cluster.RedisCluster.PRIMARIES
    }

    @staticmethod
    def _connect(url: str, options: dict[str, Any]) -> Any:
        parsed = _ClusterURL(url)
        seeds = [redis.cluster.ClusterNode(host, port) for host, port in parsed.nodes[1:]]  # type: ignore[no-untyped-call]
        return _LazyCluster(
            lambda: redis.cluster.RedisCluster.from_url(
                parsed.seed, startup_nodes=seeds, retry=single._no_retry(), **options
            )
        )

    @property
    def client(self) -> Any:
        """The underlying ``redis.cluster.RedisCluster`` (made now if need be), for diagnostics."""
        return self._client._get()

    def _send(self, command: tuple[str | bytes, ...]) -> Any:
        """A GCRA script call, routed by its key's slot (MOVED/ASK followed by redis-py)."""
        return self._client.execute_command(*command)

    def purge(self, prefix: str) -> int:
        """Delete every key starting with ``prefix``: SCAN + UNLINK on every primary."""
        try:
            keys = self._client.scan_iter(**_scan_options(prefix))
            # UNLINK is split by slot by the client; it counts keys it removed.
            return sum(int(self._client.unlink(*chunk)) for chunk in _chunks(keys))
        except Exception as exc:
            single._fail(exc, "purge")


class AsyncRedisClusterStore(single.AsyncRedisStore):
    """The asynchronous face: one client per event loop, arguments as :class:`RedisClusterStore`."""

    _check = staticmethod(_check_cluster_url)
    _redact = staticmethod(_redact_cluster)
    _config_target: ClassVar[dict[str, Any]] = {
        "target_nodes": redis.cluster.RedisCluster.PRIMARIES
    }

    def _new_client(self) -> Any:
        parsed = _ClusterURL(self._url)
        seeds = [redis.asyncio.cluster.ClusterNode(host, port) for host, port in parsed.nodes[1:]]
        return redis.asyncio.cluster.RedisCluster.from_url(
            parsed.seed, startup_nodes=seeds, retry=single._no_retry_async(), **self._options
        )

    async def _current(self) -> single._LoopClient:
        """The loop's client, its slot map loaded before any command is sent.

        Left to the first commands, the discovery runs inside each of them;
        under concurrent first use (or after a connection error, which marks
        the map stale) commands then fail with "connection closed". Here the
        tasks wait on redis-py's lock and send nothing until the map is
        loaded; a cluster that cannot be reached is a connection error.
        """
        entry = await super()._current()
        try:
            await entry.client.initialize()
        except redis.exceptions.RedisClusterException as exc:
            raise redis.exceptions.ConnectionError(type(exc).__name__) from exc
        return entry

    async def _send(self, client: Any, command: tuple[str | bytes, ...]) -> Any:
        """A GCRA script call, routed by its key's slot (MOVED/ASK followed by redis-py)."""
        return await client.execute_command(*command)

    async def purge(self, prefix: str) -> int:
        """Delete every key starting with ``prefix``: SCAN + UNLINK on every primary."""
        deleted = 0
        try:
            client = (await self._current()).client
            chunk: list[bytes] = []
            async for key in client.scan_iter(**_scan_options(prefix)):
                chunk.append(key)
                if len(chunk) == single.PURGE_BATCH:
                    deleted += int(await client.unlink(*chunk))
                    chunk = []
            if chunk:
                deleted += int(await client.unlink(*chunk))
        except Exception as exc:
            single._fail(exc, "purge")
        return deleted


def redis_cluster_store(
    url: str, *, timeout: float = 0.5, connect_timeout: float = 0.5
) -> StorePair:
    """Both faces of the Redis Cluster store at ``url``
    (``redis+cluster://[[user]:password@]host:port[,host:port...]``, or
    ``rediss+cluster://...`` for TLS); arguments and errors as
    :func:`~tokenware.stores.redis.redis_store`. Nothing connects here.
    """
    sync = RedisClusterStore(url, timeout=timeout, connect_timeout=connect_timeout)
    aio = AsyncRedisClusterStore(url, timeout=timeout, connect_timeout=connect_timeout)
    aio._eviction = sync._eviction  # one eviction check (and warning) per store
    return StorePair(url=_redact_cluster(url), sync=sync, aio=aio)
