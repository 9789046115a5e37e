"""``redis://``: a shared store on Redis, through redis-py (``tokenware[redis]``).

Both faces talk to the same server: :class:`RedisStore` through a
``redis.Redis`` pool, :class:`AsyncRedisStore` through ``redis.asyncio``.

Atomicity: :meth:`RedisStore.apply` is ONE Lua script
(``tokenware/stores/lua/apply.lua``), every key in ``KEYS`` and, by
:func:`~tokenware.stores.base.check_batch`, one hash tag per call, so it runs
unchanged on Redis Cluster.

Failures: a refused connection, a timeout, a loading or read-only server
raise :class:`~tokenware.errors.StoreUnavailable`; any other Redis error
:class:`~tokenware.errors.StoreError`; the redis-py exception is chained and
messages never carry a value. Nothing is retried: redis-py 6+ retries by
default, which would re-send a script whose reply was lost and might already
have run (a consumed code consumed twice, a rotation applied twice). A caller
gets a 503 instead and retries at the protocol level, where that is safe.

Eviction: after the first successful write of a store (either face), one
``CONFIG GET maxmemory-policy`` (on a cluster, one per primary) checks the
server's policy and logs a warning on the ``tokenware.stores`` logger for an
``allkeys-*`` policy, which may evict any key: throttle counters, replay
markers, PAT records (security.md §3.7). A server where ``CONFIG`` is
disabled or renamed is logged at debug level and not checked.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import weakref
from collections.abc import AsyncGenerator, Sequence
from importlib import resources
from typing import Any, ClassVar, NoReturn, cast
from urllib.parse import parse_qs, urlsplit, urlunsplit

from tokenware.core.ops import (
    Absent,
    Batch,
    Delete,
    Equals,
    Gcra,
    GcraResult,
    Present,
    Put,
    SetAdd,
    SetRemove,
)
from tokenware.errors import ConfigurationError, StoreError, StoreUnavailable
from tokenware.stores.base import StorePair, check_batch, check_gcra

try:
    import redis
    import redis.asyncio
    from redis.asyncio.retry import Retry as AsyncRetry
    from redis.backoff import NoBackoff
    from redis.maint_notifications import MaintNotificationsConfig
    from redis.retry import Retry
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ConfigurationError("pip install 'tokenware[redis]'") from exc

__all__ = ["AsyncRedisStore", "RedisStore", "redis_store"]

log = logging.getLogger("tokenware.stores")

#: Seconds between PINGs on a pooled connection that has been idle, so a
#: connection silently dropped by a firewall is noticed before a command.
HEALTH_CHECK_INTERVAL = 30

#: Keys per SCAN page and per UNLINK in :meth:`RedisStore.purge`.
PURGE_BATCH = 500

_APPLY_LUA = resources.files("tokenware.stores.lua").joinpath("apply.lua").read_text("utf-8")
_GCRA_LUA = resources.files("tokenware.stores.lua").joinpath("gcra.lua").read_text("utf-8")
#: What EVALSHA names gcra.lua by (redis-py's Script hashes the UTF-8 source too).
_GCRA_SHA = hashlib.sha1(_GCRA_LUA.encode("utf-8"), usedforsecurity=False).hexdigest()
_GCRA_SHA_BYTES = _GCRA_SHA.encode("ascii")

# Transient conditions: the server is down, slow, starting, failing over or
# a replica. Checked in order; the auth errors (subclasses of
# ConnectionError) come first because a wrong password is not an outage.
_PERMANENT: tuple[type[BaseException], ...] = (
    redis.exceptions.AuthenticationError,
    redis.exceptions.AuthorizationError,
    redis.exceptions.NoPermissionError,
)
_TRANSIENT: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,  # includes BusyLoadingError, MaxConnectionsError
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.ClusterDownError,  # includes MasterDownError
    redis.exceptions.TryAgainError,
    asyncio.TimeoutError,  # the builtin TimeoutError on 3.11+
    OSError,
)


def _fail(exc: BaseException, what: str) -> NoReturn:
    """Raise the tokenware error for a driver exception, chained to it.

    Only the operation name and the exception class reach the message: the
    driver's own text may quote a command and its arguments (values).
    """
    name = type(exc).__name__
    if isinstance(exc, _TRANSIENT) and not isinstance(exc, _PERMANENT):
        raise StoreUnavailable(f"redis {what} failed: {name}", retry_after=1) from exc
    raise StoreError(f"redis {what} failed: {name}") from exc


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _policies(reply: Any, where: str) -> dict[str, str]:
    """``{node: policy}`` from a ``CONFIG GET maxmemory-policy`` reply.

    A server answers ``{"maxmemory-policy": policy}``; a cluster client asked
    for every primary answers ``{node: that}`` (just ``that`` for one node).
    """
    if not isinstance(reply, dict):
        return {}
    if any(_text(name) == "maxmemory-policy" for name in reply):
        reply = {where: reply}
    return {
        _text(node): _text(value)
        for node, answer in reply.items()
        if isinstance(answer, dict)
        for name, value in answer.items()
        if _text(name) == "maxmemory-policy"
    }


class _EvictionCheck:
    """Warn once if the server's ``maxmemory-policy`` may evict any key.

    ``allkeys-*`` lets Redis drop keys tokenware relies on under memory
    pressure: a throttle counter (the limit resets), a handshake replay marker
    (a replay passes), a PAT record (the token is gone). Run once per store,
    shared by both faces, after the first successful write: the server is
    known to answer then, and nothing is added to any later call.
    """

    def __init__(self) -> None:
        self.pending = True
        self._lock = threading.Lock()

    def _claim(self) -> bool:
        with self._lock:
            pending, self.pending = self.pending, False
        return pending

    def run(self, client: Any, where: str, target: dict[str, Any]) -> None:
        """Check with the sync ``client`` (a no-op after the first time)."""
        if self._claim():
            try:
                reply = client.config_get("maxmemory-policy", **target)
            except Exception as exc:
                self._unchecked(where, exc)
            else:
                self._report(_policies(reply, where))

    async def run_async(self, client: Any, where: str, target: dict[str, Any]) -> None:
        """The same with an asyncio ``client``."""
        if self._claim():
            try:
                reply = await client.config_get("maxmemory-policy", **target)
            except Exception as exc:
                self._unchecked(where, exc)
            else:
                self._report(_policies(reply, where))

    @staticmethod
    def _unchecked(where: str, exc: BaseException) -> None:
        # CONFIG disabled, renamed or refused by an ACL (managed services), or
        # a timeout: not a reason to fail a request that already succeeded.
        log.debug(
            "redis %s: CONFIG GET maxmemory-policy failed (%s); eviction policy not checked",
            where,
            type(exc).__name__,
        )

    @staticmethod
    def _report(policies: dict[str, str]) -> None:
        for node, policy in sorted(policies.items()):
            if policy.startswith("allkeys-"):
                log.warning(
                    "redis %s: maxmemory-policy is %s, which may evict any tokenware key "
                    "(throttle counters, replay markers, PAT records) under memory "
                    "pressure; use noeviction (or a volatile-* policy)",
                    node,
                    policy,
                )


def _is_wrongtype(value: object) -> bool:
    """Whether a reply is the error of reading a key of another type."""
    return isinstance(value, redis.exceptions.ResponseError) and str(value).startswith("WRONGTYPE")


def _ms(ttl: float) -> str:
    """Seconds to whole milliseconds, at least 1 (``PX 0`` is an error)."""
    return str(max(1, round(ttl * 1000)))


def _encode(batch: Batch) -> tuple[list[str], list[bytes | str]]:
    """``KEYS`` and ``ARGV`` for ``apply.lua`` (format in its header)."""
    keys = list(batch.keys())
    index = {key: str(n) for n, key in enumerate(keys, start=1)}
    argv: list[bytes | str] = [str(len(batch.guards))]
    for guard in batch.guards:
        if isinstance(guard, Absent):
            argv += ["A", index[guard.key]]
        elif isinstance(guard, Present):
            argv += ["P", index[guard.key]]
        elif isinstance(guard, Equals):
            argv += ["E", index[guard.key], guard.value]
        else:  # pragma: no cover - the Guard union is closed
            raise TypeError(f"unknown guard {type(guard).__name__}")
    for write in batch.writes:
        k = index[write.key]
        if isinstance(write, Put):
            ttl = "" if write.ttl is None else _ms(write.ttl)
            argv += ["PUT", k, write.value, ttl, "1" if write.keep_ttl else "0"]
        elif isinstance(write, Delete):
            argv += ["DEL", k]
        elif isinstance(write, SetAdd):
            argv += ["SADD", k, write.member, "" if write.ttl is None else _ms(write.ttl)]
        elif isinstance(write, SetRemove):
            argv += ["SREM", k, write.member]
        else:  # pragma: no cover - the Write union is closed
            raise TypeError(f"unknown write {type(write).__name__}")
    return keys, argv


def _gcra_command(key: str, t_us: int, tau: int, cost: int) -> tuple[str | bytes, ...]:
    """``EVALSHA`` of ``gcra.lua``: ``KEYS[1]`` the key, ``ARGV`` T and tau in
    microseconds, then the cost (arguments :func:`~tokenware.stores.base.check_gcra`
    checked).

    Sent by the store's ``_send`` (packed by :func:`_resp` on a pooled
    connection; ``execute_command`` on a cluster) rather than through a
    registered ``Script``, which builds tuples and imports on every call. On
    ``NOSCRIPT`` the caller loads the script and sends this again, as
    ``Script`` does; that is no retry: NOSCRIPT means the script did not run.
    The numbers are bytes already; the key stays a ``str``, encoded inside the
    call, where an encoding error is mapped like any other.
    """
    return ("EVALSHA", _GCRA_SHA_BYTES, b"1", key, b"%d" % t_us, b"%d" % tau, b"%d" % cost)


#: The fixed start of every :func:`_gcra_command`, packed once.
_GCRA_HEAD = b"*7\r\n$7\r\nEVALSHA\r\n$%d\r\n%s\r\n$1\r\n1\r\n" % (
    len(_GCRA_SHA_BYTES),
    _GCRA_SHA_BYTES,
)


def _resp(args: tuple[str | bytes, ...]) -> list[bytes]:
    """``args`` as one RESP array of bulk strings: the bytes redis-py's packer
    sends for them (``str`` as UTF-8), in a fraction of its time.

    Only for arguments that are ``bytes`` or ``str`` and a command name
    without a space (redis-py would split it into two words).
    """
    if len(args) == 7 and args[1] is _GCRA_SHA_BYTES:  # a _gcra_command: only 4 vary
        key, t_us, tau, cost = cast("tuple[str | bytes, bytes, bytes, bytes]", args[3:])
        k = key.encode("utf-8") if isinstance(key, str) else key
        return [
            b"%s$%d\r\n%s\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n"
            % (_GCRA_HEAD, len(k), k, len(t_us), t_us, len(tau), tau, len(cost), cost)
        ]
    out = b"*%d\r\n" % len(args)
    for arg in args:
        data = arg.encode("utf-8") if isinstance(arg, str) else arg
        out += b"$%d\r\n%s\r\n" % (len(data), data)
    return [out]


def _gcra_result(reply: Any, t_us: int, tau: int, cost: int) -> GcraResult:
    """The :class:`GcraResult` of ``gcra.lua``'s one-integer reply (see its header).

    The script decides and writes; this derives ``remaining`` and
    ``retry_after`` from the reset time as :func:`~tokenware.stores.base.gcra_step`
    computes them (exact integers; a test runs both on the same inputs).
    """
    reset = int(reply)
    if reset >= 0:
        return GcraResult(True, max(0, (tau - reset) // t_us), 0.0, reset / 1e6)
    reset = -1 - reset
    retry = reset + t_us * cost - tau
    return GcraResult(False, max(0, (tau - reset) // t_us), retry / 1e6, reset / 1e6)


def _glob_escape(prefix: str) -> str:
    """``prefix`` with Redis glob metacharacters escaped, for ``SCAN MATCH``."""
    return "".join("\\" + c if c in "\\*?[]" else c for c in prefix)


def _seconds(pttl: int) -> float | None:
    """A ``PTTL`` reply in seconds; ``None`` for missing (-2) or persistent (-1)."""
    return pttl / 1000 if pttl >= 0 else None


#: URL query options a store URL may carry. The timeouts and the retry policy
#: are not among them: redis-py lets the query string override arguments, so
#: ``?socket_timeout=60`` would silently replace ``timeout=`` and
#: ``?retry_on_timeout=yes`` would ask for retries.
_URL_OPTIONS = frozenset(
    {
        "db",
        "username",
        "password",
        "client_name",
        "protocol",
        "max_connections",
        "health_check_interval",
        "socket_keepalive",
        "socket_read_size",
        "ssl_cert_reqs",
        "ssl_ca_certs",
        "ssl_ca_path",
        "ssl_ca_data",
        "ssl_certfile",
        "ssl_keyfile",
        "ssl_check_hostname",
        "ssl_min_version",
    }
)


def _check_url(url: str) -> None:
    """Refuse a URL redis-py would misread or accept with a surprise.

    redis-py ignores a database path that is not a number (``/abc`` and
    ``/0/1`` mean db 0 and db 1), and lets query options override the store's
    timeouts. Messages name the faulty part, never quote it: a password with
    a ``/`` in it ends up in the "port" or the "path" of an unencoded URL.

    Raises:
        ConfigurationError: the URL is not a usable ``redis://``,
            ``rediss://`` or ``unix://`` URL.
    """
    if not isinstance(url, str):
        raise ConfigurationError("the redis URL must be a string")
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        parts.port  # noqa: B018 - raises ValueError for a bad port
        query = parse_qs(parts.query, keep_blank_values=True)
    except ValueError:
        raise ConfigurationError(
            "invalid redis URL: the host or port cannot be parsed (percent-encode "
            "special characters in the password)"
        ) from None
    if scheme not in ("redis", "rediss", "unix"):
        raise ConfigurationError("a redis URL starts with redis://, rediss:// or unix://")
    if not url.startswith(f"{scheme}://"):
        raise ConfigurationError("a redis URL scheme must be lower case")
    _check_options(query)
    if scheme == "unix":
        if not parts.path:
            raise ConfigurationError("a unix:// redis URL needs a socket path")
        return
    db = parts.path[1:] if parts.path.startswith("/") else parts.path
    if db and not (db.isascii() and db.isdigit()):
        raise ConfigurationError(
            "invalid redis URL: the path must be a database number, as in redis://host:6379/0"
        )
    if db and "db" in query:
        raise ConfigurationError("redis URL gives the database twice (path and ?db=)")


def _check_options(query: dict[str, list[str]], allowed: frozenset[str] = _URL_OPTIONS) -> None:
    """Refuse URL query options outside ``allowed``, repeated, or a bad ``db``."""
    unknown = sorted(name for name in query if name not in allowed)
    if unknown:
        names = ", ".join(n for n in unknown if n.isidentifier()) or "(unprintable)"
        raise ConfigurationError(
            f"unsupported redis URL option(s): {names}; timeouts and retries are set "
            "with timeout= and connect_timeout=, never in the URL"
        )
    for name, values in query.items():
        if len(values) != 1:
            raise ConfigurationError(f"redis URL option {name} is given more than once")
    if "db" in query and not query["db"][0].isdigit():
        raise ConfigurationError("redis URL option db must be a non-negative integer")


def _check_timeouts(timeout: float, connect_timeout: float) -> None:
    """Refuse a timeout that is not a positive, finite number of seconds.

    ``None`` or ``0`` would make redis-py wait forever (or fail at once).
    """
    for name, value in (("timeout", timeout), ("connect_timeout", connect_timeout)):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not 0 < value < float("inf")
        ):
            raise ConfigurationError(f"redis {name} must be a positive number of seconds")


def _no_retry() -> Retry:
    """redis-py's retry policy of the sync clients: never (see the module docstring)."""
    return Retry(NoBackoff(), 0)


def _no_retry_async() -> AsyncRetry:
    """The same for the asyncio clients."""
    return AsyncRetry(NoBackoff(), 0)


def _client_options(timeout: float, connect_timeout: float) -> dict[str, Any]:
    """redis-py options shared by both faces, except the retry object."""
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": connect_timeout,
        "health_check_interval": HEALTH_CHECK_INTERVAL,
        # No automatic retries (see the module docstring); an empty list also
        # keeps redis-py from adding TimeoutError to the retried errors.
        "retry_on_error": [],
        "decode_responses": False,
        # redis-py 8 enables maintenance notifications by default ("auto").
        # With them on, the pool skips its check for pooled connections the
        # server has closed (a restart, an idle timeout), so the first command
        # on each failed with no retry to hide it; and a notification would
        # relax the command timeout to 10 s. Neither fits a store with a
        # configured timeout and no retries.
        "maint_notifications_config": MaintNotificationsConfig(enabled=False),
    }


class RedisStore:
    """The synchronous face of the Redis store.

    Args:
        url: a ``redis://``, ``rediss://`` or ``unix://`` URL.
        timeout: seconds one command may take.
        connect_timeout: seconds to establish a connection.

    Raises:
        ConfigurationError: the URL cannot be parsed by redis-py.
    """

    def __init__(self, url: str, *, timeout: float = 0.5, connect_timeout: float = 0.5) -> None:
        self._check(url)
        _check_timeouts(timeout, connect_timeout)
        self._url = self._redact(url)
        try:
            self._client: Any = self._connect(url, _client_options(timeout, connect_timeout))
        except ValueError:
            # redis-py's message may quote part of the URL: keep it out.
            raise ConfigurationError("invalid redis URL") from None
        # register_script re-sends the script with EVAL on NOSCRIPT (after a
        # SCRIPT FLUSH, a restart or a failover). That is safe, unlike a
        # retry: NOSCRIPT means the script did not run.
        self._apply: Any = self._client.register_script(_APPLY_LUA)
        self._eviction = _EvictionCheck()

    # Hooks a subclass (the cluster store) overrides: URL checks, redaction,
    # the client and where CONFIG GET goes; every operation below is shared.
    _check = staticmethod(_check_url)
    _config_target: ClassVar[dict[str, Any]] = {}

    @staticmethod
    def _redact(url: str) -> str:
        return _redact(url)

    @staticmethod
    def _connect(url: str, options: dict[str, Any]) -> Any:
        return redis.Redis.from_url(url, retry=_no_retry(), **options)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._url!r})"

    @property
    def client(self) -> Any:
        """The underlying ``redis.Redis`` client, for diagnostics."""
        return self._client

    def get(self, key: str) -> bytes | None:
        """The value at ``key``, or ``None`` (also for a key holding a set)."""
        try:
            value: bytes | None = self._client.get(key)
        except redis.exceptions.ResponseError as exc:
            if _is_wrongtype(exc):
                return None
            _fail(exc, "GET")
        except Exception as exc:
            _fail(exc, "GET")
        return value

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values at ``keys``, ``None`` where missing.

        A non-transactional pipeline of GETs rather than MGET: the keys may
        live in different hash slots (and on Cluster, different nodes).
        """
        if not keys:
            return []
        try:
            pipe = self._client.pipeline(transaction=False)
            for key in keys:
                pipe.get(key)
            replies: list[Any] = pipe.execute(raise_on_error=False)
        except Exception as exc:
            _fail(exc, "GET")
        return _values(replies)

    def members(self, key: str) -> frozenset[str]:
        """The members of the set at ``key`` (empty if missing or not a set)."""
        try:
            raw: set[bytes] = self._client.smembers(key)
        except redis.exceptions.ResponseError as exc:
            if _is_wrongtype(exc):
                return frozenset()
            _fail(exc, "SMEMBERS")
        except Exception as exc:
            _fail(exc, "SMEMBERS")
        return frozenset(m.decode("utf-8") for m in raw)

    def apply(self, batch: Batch) -> bool:
        """Check the guards and apply the writes in one Lua script.

        Raises:
            ValidationError: keys spanning hash tags, an empty batch or a bad
                TTL, before anything is sent.
        """
        check_batch(batch)
        keys, argv = _encode(batch)
        try:
            result = self._apply(keys=keys, args=argv)
        except Exception as exc:
            _fail(exc, "apply script")
        if self._eviction.pending:
            self._eviction.run(self._client, self._url, self._config_target)
        return bool(result == 1)

    def purge(self, prefix: str) -> int:
        """Delete every key starting with ``prefix`` (SCAN + UNLINK, never KEYS)."""
        pattern = _glob_escape(prefix) + "*"
        deleted = 0
        cursor: int = 0
        try:
            while True:
                cursor, found = self._client.scan(cursor, match=pattern, count=PURGE_BATCH)
                if found:
                    # UNLINK counts only keys it removed, so keys SCAN returns
                    # twice are not counted twice.
                    deleted += int(self._client.unlink(*found))
                if cursor == 0:
                    return deleted
        except Exception as exc:
            _fail(exc, "purge")

    def ttl(self, key: str) -> float | None:
        """Seconds left for ``key``; ``None`` if missing or without expiry."""
        try:
            pttl = int(self._client.pttl(key))
        except Exception as exc:
            _fail(exc, "PTTL")
        return _seconds(pttl)

    def gcra(self, op: Gcra) -> GcraResult:
        """One GCRA hit in one Lua script on Redis's clock (one round trip).

        Raises:
            ValidationError: a bad interval, burst or cost, before anything is sent.
        """
        t_us, tau = check_gcra(op)
        command = _gcra_command(op.key, t_us, tau, op.cost)
        try:
            try:
                reply = self._send(command)
            except redis.exceptions.NoScriptError:
                self._client.script_load(_GCRA_LUA)  # not a retry: see _gcra_command
                reply = self._send(command)
        except Exception as exc:
            _fail(exc, "gcra script")
        if self._eviction.pending:
            self._eviction.run(self._client, self._url, self._config_target)
        return _gcra_result(reply, t_us, tau, op.cost)

    def _send(self, command: tuple[str | bytes, ...]) -> Any:
        """One command on a pooled connection, and its reply: one round trip.

        What ``execute_command`` does on a client without retries (this
        store's), without its per-call wrappers (a retry closure, metrics
        hooks), which cost a GCRA hit about a tenth of its client time: the
        same pool and connection checks, health check and timeouts. A
        connection that fails mid-command is disconnected by redis-py's own
        send and read before it goes back to the pool; an error reply leaves
        it clean. The command is packed by :func:`_resp`. The cluster store
        overrides this (its client routes by slot).
        """
        pool = self._client.connection_pool
        conn = pool.get_connection()
        try:
            conn.send_packed_command(_resp(command))
            return conn.read_response()
        finally:
            pool.release(conn)

    def close(self) -> None:
        """Close the connection pool (it reconnects if used again)."""
        try:
            self._client.close()
        except Exception as exc:
            _fail(exc, "close")


class _LoopClient:
    """One ``redis.asyncio`` client and what keeps it closed on loop exit."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.apply: Any = client.register_script(_APPLY_LUA)
        self.closer: AsyncGenerator[None, None] | None = None


async def _close_at_loop_shutdown(client: Any) -> AsyncGenerator[None, None]:
    """An async generator whose ``finally`` closes ``client``.

    Once started, the event loop tracks it and ``loop.shutdown_asyncgens()``
    (which ``asyncio.run`` calls before closing the loop) runs the
    ``finally``: the connections are closed on their own loop even when the
    caller never calls :meth:`AsyncRedisStore.aclose`.
    """
    try:
        yield
    finally:
        await client.aclose()


class AsyncRedisStore:
    """The asynchronous face of the Redis store.

    ``redis.asyncio`` connections belong to the event loop that opened them,
    and callers may run this face from several loops in turn (several
    ``asyncio.run`` calls, a test per loop). So this face keeps one client per
    running loop, created on first use, and closes it when that loop shuts
    its async generators down or on :meth:`aclose`.

    Args:
        url: a ``redis://``, ``rediss://`` or ``unix://`` URL.
        timeout: seconds one command may take.
        connect_timeout: seconds to establish a connection.

    Raises:
        ConfigurationError: the URL cannot be parsed by redis-py.
    """

    def __init__(self, url: str, *, timeout: float = 0.5, connect_timeout: float = 0.5) -> None:
        self._check(url)
        _check_timeouts(timeout, connect_timeout)
        self._url = url
        self._options = _client_options(timeout, connect_timeout)
        self._lock = threading.Lock()
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClient] = (
            weakref.WeakKeyDictionary()
        )
        self._eviction = _EvictionCheck()  # redis_store() shares the sync face's

    _config_target: ClassVar[dict[str, Any]] = {}

    @staticmethod
    def _check(url: str) -> None:
        """Check ``url`` now, so a bad URL fails at construction, not on first use."""
        _check_url(url)
        try:
            redis.asyncio.connection.parse_url(url)
        except ValueError:
            raise ConfigurationError("invalid redis URL") from None

    @staticmethod
    def _redact(url: str) -> str:
        return _redact(url)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._redact(self._url)!r})"

    def _new_client(self) -> Any:
        return redis.asyncio.Redis.from_url(self._url, retry=_no_retry_async(), **self._options)

    async def _current(self) -> _LoopClient:
        """The client of the running loop, created (and tracked) on first use."""
        loop = asyncio.get_running_loop()
        with self._lock:
            # Drop clients of loops that are gone; theirs were closed by
            # shutdown_asyncgens, or cannot be closed any more.
            for old in [old for old in self._clients if old.is_closed()]:
                del self._clients[old]
            entry = self._clients.get(loop)
            if entry is None:
                entry = self._clients[loop] = _LoopClient(self._new_client())
                started = False
            else:
                started = True
        if not started:
            closer = _close_at_loop_shutdown(entry.client)
            await closer.__anext__()  # registers it with the loop
            entry.closer = closer
        return entry

    async def get(self, key: str) -> bytes | None:
        """The value at ``key``, or ``None`` (also for a key holding a set)."""
        try:
            client = (await self._current()).client
            value: bytes | None = await client.get(key)
        except redis.exceptions.ResponseError as exc:
            if _is_wrongtype(exc):
                return None
            _fail(exc, "GET")
        except Exception as exc:
            _fail(exc, "GET")
        return value

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values at ``keys``, ``None`` where missing (a pipeline of GETs)."""
        if not keys:
            return []
        try:
            client = (await self._current()).client
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.get(key)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        except Exception as exc:
            _fail(exc, "GET")
        return _values(replies)

    async def members(self, key: str) -> frozenset[str]:
        """The members of the set at ``key`` (empty if missing or not a set)."""
        try:
            client = (await self._current()).client
            raw: set[bytes] = await client.smembers(key)
        except redis.exceptions.ResponseError as exc:
            if _is_wrongtype(exc):
                return frozenset()
            _fail(exc, "SMEMBERS")
        except Exception as exc:
            _fail(exc, "SMEMBERS")
        return frozenset(m.decode("utf-8") for m in raw)

    async def apply(self, batch: Batch) -> bool:
        """Check the guards and apply the writes in one Lua script.

        Raises:
            ValidationError: keys spanning hash tags, an empty batch or a bad
                TTL, before anything is sent.
        """
        check_batch(batch)
        keys, argv = _encode(batch)
        try:
            entry = await self._current()
            result = await entry.apply(keys=keys, args=argv)
        except Exception as exc:
            _fail(exc, "apply script")
        if self._eviction.pending:
            await self._check_eviction(entry.client)
        return bool(result == 1)

    async def purge(self, prefix: str) -> int:
        """Delete every key starting with ``prefix`` (SCAN + UNLINK, never KEYS)."""
        pattern = _glob_escape(prefix) + "*"
        deleted = 0
        cursor: int = 0
        try:
            client = (await self._current()).client
            while True:
                cursor, found = await client.scan(cursor, match=pattern, count=PURGE_BATCH)
                if found:
                    deleted += int(await client.unlink(*found))
                if cursor == 0:
                    return deleted
        except Exception as exc:
            _fail(exc, "purge")

    async def ttl(self, key: str) -> float | None:
        """Seconds left for ``key``; ``None`` if missing or without expiry."""
        try:
            client = (await self._current()).client
            pttl = int(await client.pttl(key))
        except Exception as exc:
            _fail(exc, "PTTL")
        return _seconds(pttl)

    async def gcra(self, op: Gcra) -> GcraResult:
        """One GCRA hit in one Lua script on Redis's clock (one round trip).

        Raises:
            ValidationError: a bad interval, burst or cost, before anything is sent.
        """
        t_us, tau = check_gcra(op)
        command = _gcra_command(op.key, t_us, tau, op.cost)
        try:
            entry = await self._current()
            client = entry.client
            try:
                reply = await self._send(client, command)
            except redis.exceptions.NoScriptError:
                await client.script_load(_GCRA_LUA)  # not a retry: see _gcra_command
                reply = await self._send(client, command)
        except Exception as exc:
            _fail(exc, "gcra script")
        if self._eviction.pending:
            await self._check_eviction(entry.client)
        return _gcra_result(reply, t_us, tau, op.cost)

    async def _send(self, client: Any, command: tuple[str | bytes, ...]) -> Any:
        """:meth:`RedisStore._send` on ``client``'s pool (the cluster store overrides it)."""
        pool = client.connection_pool
        conn = await pool.get_connection()
        try:
            await conn.send_packed_command(_resp(command))
            return await conn.read_response()
        finally:
            await pool.release(conn)

    async def _check_eviction(self, client: Any) -> None:
        await self._eviction.run_async(client, self._redact(self._url), self._config_target)

    async def aclose(self) -> None:
        """Close the running loop's client (a later call opens a new one)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._clients.pop(loop, None)
        if entry is None or entry.closer is None:
            return
        try:
            # Finishing the generator runs its finally: client.aclose().
            await entry.closer.aclose()
        except Exception as exc:
            _fail(exc, "close")


def _values(replies: list[Any]) -> list[bytes | None]:
    """Pipeline replies to values: WRONGTYPE (a set) reads as missing."""
    values: list[bytes | None] = []
    for reply in replies:
        if isinstance(reply, Exception):
            if _is_wrongtype(reply):
                values.append(None)
                continue
            _fail(reply, "GET")
        values.append(reply)
    return values


def _redact(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal lost its brackets
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port is not None else "")
    return urlunsplit(parts._replace(netloc=netloc))


def redis_store(url: str, *, timeout: float = 0.5, connect_timeout: float = 0.5) -> StorePair:
    """Both faces of the Redis store at ``url``.

    Nothing connects here: a server that is down surfaces on the first
    operation, as :class:`~tokenware.errors.StoreUnavailable`.

    Args:
        url: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://...``
            for TLS, or ``unix:///path.sock``.
        timeout: seconds one command may take.
        connect_timeout: seconds to establish a connection.

    Raises:
        ConfigurationError: the URL cannot be parsed.
    """
    sync = RedisStore(url, timeout=timeout, connect_timeout=connect_timeout)
    aio = AsyncRedisStore(url, timeout=timeout, connect_timeout=connect_timeout)
    aio._eviction = sync._eviction  # one eviction check (and warning) per store
    return StorePair(url=_redact(url), sync=sync, aio=aio)
