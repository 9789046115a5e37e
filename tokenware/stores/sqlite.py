"""``sqlite:///path.db``: the embedded store, shared by threads and processes.

Design choices:

* **One file, WAL mode.** Readers never block the writer and the writer never
  blocks readers, so gunicorn or uwsgi workers can share one database.
  ``synchronous=NORMAL`` is the usual WAL trade-off: a power cut may lose the
  last commits but never corrupts the file.
* **Atomicity.** :meth:`SQLiteStore.apply` runs in autocommit mode with an
  explicit ``BEGIN IMMEDIATE``: the write lock is taken *before* the guards are
  read, so two processes racing the same compare-and-set cannot both see the
  old value (a deferred transaction would let both read, then one would fail
  to upgrade its lock). Guards and writes share that one transaction.
* **Connections.** One connection per thread (``threading.local``) and per
  process: a connection is never used after ``fork()``. Inherited
  connections are parked, never closed, because closing a descriptor in the
  child releases the POSIX locks the child's own connection holds on the file.
* **Schema.** A ``kv`` table holds every key: ``kind`` 0 is a value in
  ``value``, ``kind`` 1 a set whose members live in the ``members`` table. A
  set never exists without members (removing the last one deletes the key).
* **Expiry.** ``expires_at`` is an absolute time read from the injected
  clock. Reads filter expired rows out in SQL, so an expired key is a missing
  key everywhere; write transactions delete the expired rows they touch, plus
  a small bounded sweep, so the file does not grow with dead keys.
* **Failures.** ``database is locked`` / busy (another writer held the lock
  past ``busy_timeout``) becomes :class:`~tokenware.errors.StoreUnavailable`
  (HTTP 503 with ``Retry-After``); any other ``sqlite3.Error`` becomes
  :class:`~tokenware.errors.StoreError`. Both chain the driver's exception,
  and a failed transaction is always rolled back, never reported as success.
  Error details never contain keys' values.
* **Async face.** SQLite has no async driver in the standard library, so
  :class:`AsyncSQLiteStore` runs the sync methods on a small dedicated thread
  pool (its threads keep their connections, unlike a shared default
  executor whose threads other code also uses).
* **Deleted data.** ``secure_delete`` overwrites deleted content, so a
  consumed one-time record does not linger in free pages of the file.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple, TypeVar

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
from tokenware.errors import ConfigurationError, StoreError, StoreUnavailable, ValidationError
from tokenware.stores.base import StorePair, check_batch, check_gcra, gcra_step

__all__ = ["AsyncSQLiteStore", "SQLiteStore", "parse_sqlite_url", "sqlite_store"]

_T = TypeVar("_T")

_VALUE = 0
_SET = 1

# Expired rows deleted per write transaction, on top of the keys it touches:
# enough to keep up with any realistic write rate, small enough to be cheap.
_SWEEP_LIMIT = 64

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS kv (
        key TEXT PRIMARY KEY,
        kind INTEGER NOT NULL,
        value BLOB,
        expires_at REAL
    )""",
    "CREATE INDEX IF NOT EXISTS kv_expires_at ON kv (expires_at) WHERE expires_at IS NOT NULL",
    """CREATE TABLE IF NOT EXISTS members (
        key TEXT NOT NULL,
        member TEXT NOT NULL,
        PRIMARY KEY (key, member)
    ) WITHOUT ROWID""",
)

# Connections inherited across fork(): kept alive forever (see module docstring).
_INHERITED: list[sqlite3.Connection] = []


class _Row(NamedTuple):
    """A live row of ``kv``."""

    kind: int
    value: bytes | None
    expires_at: float | None


def parse_sqlite_url(url: str) -> Path:
    """The database path named by a ``sqlite://`` URL.

    ``sqlite:///relative/path.db`` is relative to the working directory and
    ``sqlite:////absolute/path.db`` absolute, as in SQLAlchemy.

    Raises:
        ConfigurationError: another scheme, a host, a query string or
            fragment, an empty path, ``:memory:`` (each thread would get its
            own private database), or a directory that does not exist.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() != "sqlite":
        raise ConfigurationError(f"not a sqlite:// URL: {url!r}")
    if "?" in rest or "#" in rest:
        raise ConfigurationError(
            f"sqlite URLs take no query string or fragment, got {url!r}; "
            "use sqlite:///relative.db or sqlite:////absolute.db"
        )
    if not rest.startswith("/"):
        raise ConfigurationError(
            f"sqlite URLs have no host: use sqlite:///relative.db or sqlite:////absolute.db, "
            f"got {url!r}"
        )
    raw = rest[1:]
    if not raw or raw.endswith("/"):
        raise ConfigurationError(f"sqlite URL {url!r} names no database file")
    if raw == ":memory:" or raw.startswith("file:"):
        raise ConfigurationError(
            f"sqlite URL {url!r} is not supported: the store needs one file shared by "
            "every thread and process"
        )
    if "\x00" in raw:
        raise ConfigurationError("sqlite URL contains a NUL character")
    path = Path(raw)
    if path.is_dir():
        raise ConfigurationError(f"sqlite database path {str(path)!r} is a directory")
    parent = path.parent
    if not parent.is_dir():
        # Creating directories is a deployment decision; a typo must not
        # silently create a second, empty store somewhere else.
        raise ConfigurationError(
            f"directory {str(parent)!r} of sqlite database {str(path)!r} does not exist"
        )
    return path


def _is_lock_error(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` means another connection held a lock too long."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    name = getattr(exc, "sqlite_errorname", "")  # Python 3.11+
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return True
    message = str(exc).lower()
    return "locked" in message or "busy" in message


@contextmanager
def _translated(action: str) -> Iterator[None]:
    """Turn driver exceptions into tokenware's, chained."""
    try:
        yield
    except sqlite3.Error as exc:
        if _is_lock_error(exc):
            raise StoreUnavailable(f"sqlite {action}: {exc}", retry_after=1) from exc
        raise StoreError(f"sqlite {action}: {exc}") from exc
    except UnicodeEncodeError as exc:
        # A lone surrogate in a key or member cannot be stored as UTF-8 text.
        raise ValidationError(f"sqlite {action}: key or member is not valid Unicode") from exc


def _prefix_bounds(prefix: str) -> str | None:
    """The smallest string above every string starting with ``prefix``.

    SQLite compares TEXT by its UTF-8 bytes, which is code point order, so
    ``prefix <= key < bound`` selects exactly the keys under ``prefix`` and
    lets the primary key index do the work. ``None`` means no upper bound.
    """
    chars = list(prefix)
    while chars:
        code = ord(chars[-1]) + 1
        if 0xD800 <= code <= 0xDFFF:
            code = 0xE000  # surrogates cannot be stored; skip over them
        if code <= 0x10FFFF:
            chars[-1] = chr(code)
            return "".join(chars)
        chars.pop()
    return None


class SQLiteStore:
    """The synchronous face of the SQLite store.

    Args:
        path: the database file (created on first use, with its schema).
        clock: the time source for expiry, in seconds (defaults to
            :func:`time.time`; tests may pass a ``FrozenClock``).
        timeout: seconds to wait for another connection's lock before
            raising :class:`~tokenware.errors.StoreUnavailable`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.time,
        timeout: float = 0.5,
    ) -> None:
        if not timeout >= 0:
            raise ConfigurationError(f"sqlite timeout must be >= 0 seconds, got {timeout!r}")
        self._path = os.fspath(path)
        self._clock = clock
        self._timeout = float(timeout)
        self._local = threading.local()

    @property
    def path(self) -> str:
        """The database file."""
        return self._path

    # -- connections ---------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, timeout=self._timeout, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
            self._enable_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA secure_delete = ON")
            for statement in _SCHEMA:
                conn.execute(statement)
        except BaseException:
            conn.close()
            raise
        return conn

    def _enable_wal(self, conn: sqlite3.Connection) -> None:
        """Switch the file to WAL, waiting out other connections doing the same.

        Changing the journal mode does not go through the busy handler: when
        several workers open a brand-new file at once, all but one get
        "database is locked" at once. WAL is persistent in the file, so this
        retries until one of them has set it (or the store timeout passes,
        which surfaces as StoreUnavailable).
        """
        deadline = time.monotonic() + self._timeout
        delay = 0.001
        while True:
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
                break
            except sqlite3.OperationalError as exc:
                if not _is_lock_error(exc) or time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        if not mode or str(mode[0]).lower() != "wal":
            raise StoreError(f"sqlite could not enable WAL mode on {self._path!r}")

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection in this process, opened on first use."""
        local = self._local
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        pid = os.getpid()
        if conn is not None and local.pid != pid:
            # Opened by the parent before fork(): never touch it again.
            _INHERITED.append(conn)
            conn = None
        if conn is None:
            conn = self._connect()
            local.conn = conn
            local.pid = pid
        return conn

    def _drop(self) -> None:
        """Close this thread's connection after a failure left it unusable."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None and self._local.pid == os.getpid():
            try:
                conn.close()
            except sqlite3.Error:
                pass  # already broken; nothing more to release

    @contextmanager
    def _write_txn(self, action: str) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction, rolled back on any failure."""
        with _translated(action):
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                try:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                except sqlite3.Error:
                    # A connection that cannot roll back is not reused.
                    self._drop()
                raise

    # -- row helpers (inside a transaction) ---------------------------------

    @staticmethod
    def _live(conn: sqlite3.Connection, key: str, now: float) -> _Row | None:
        """The live row at ``key``; an expired row is deleted on the way."""
        row = conn.execute(
            "SELECT kind, value, expires_at FROM kv WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return None
        found = _Row(int(row[0]), row[1], row[2])
        if found.expires_at is not None and found.expires_at <= now:
            SQLiteStore._remove(conn, key)
            return None
        return found

    @staticmethod
    def _remove(conn: sqlite3.Connection, key: str) -> None:
        conn.execute("DELETE FROM members WHERE key = ?", (key,))
        conn.execute("DELETE FROM kv WHERE key = ?", (key,))

    @staticmethod
    def _holds(conn: sqlite3.Connection, guard: Absent | Present | Equals, now: float) -> bool:
        row = SQLiteStore._live(conn, guard.key, now)
        if isinstance(guard, Absent):
            return row is None
        if isinstance(guard, Present):
            return row is not None
        return row is not None and row.kind == _VALUE and row.value == guard.value

    @staticmethod
    def _upsert(
        conn: sqlite3.Connection, key: str, kind: int, value: bytes | None, expires: float | None
    ) -> None:
        conn.execute(
            "INSERT INTO kv (key, kind, value, expires_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET kind = excluded.kind, value = excluded.value, "
            "expires_at = excluded.expires_at",
            (key, kind, value, expires),
        )

    @staticmethod
    def _write(
        conn: sqlite3.Connection, write: Put | Delete | SetAdd | SetRemove, now: float
    ) -> None:
        key = write.key
        current = SQLiteStore._live(conn, key, now)
        if isinstance(write, Put):
            if current is not None and current.kind == _SET:
                conn.execute("DELETE FROM members WHERE key = ?", (key,))
            if write.keep_ttl and current is not None:
                expires = current.expires_at
            else:
                expires = None if write.ttl is None else now + write.ttl
            SQLiteStore._upsert(conn, key, _VALUE, bytes(write.value), expires)
        elif isinstance(write, Delete):
            SQLiteStore._remove(conn, key)
        elif isinstance(write, SetAdd):
            if write.ttl is None:
                expires = None
            elif current is None:
                expires = now + write.ttl
            elif current.expires_at is not None:
                # Extend only: a set shared by records of different TTLs must
                # outlive the longest of them.
                expires = max(current.expires_at, now + write.ttl)
            else:
                expires = None  # already persistent; a TTL never shortens it
            SQLiteStore._upsert(conn, key, _SET, None, expires)
            conn.execute(
                "INSERT OR IGNORE INTO members (key, member) VALUES (?, ?)", (key, write.member)
            )
        elif current is not None and current.kind == _SET:
            conn.execute("DELETE FROM members WHERE key = ? AND member = ?", (key, write.member))
            left = conn.execute("SELECT 1 FROM members WHERE key = ? LIMIT 1", (key,)).fetchone()
            if left is None:
                conn.execute("DELETE FROM kv WHERE key = ?", (key,))

    @staticmethod
    def _sweep(conn: sqlite3.Connection, now: float) -> None:
        """Delete a bounded number of expired rows (uses the expiry index)."""
        dead = conn.execute(
            "SELECT key FROM kv WHERE expires_at <= ? LIMIT ?", (now, _SWEEP_LIMIT)
        ).fetchall()
        for (key,) in dead:
            SQLiteStore._remove(conn, key)

    # -- the Store contract --------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """The value at ``key``, or ``None``."""
        with _translated("get"):
            row = (
                self._conn()
                .execute(
                    "SELECT value FROM kv WHERE key = ? AND kind = ? "
                    "AND (expires_at IS NULL OR expires_at > ?)",
                    (key, _VALUE, self._clock()),
                )
                .fetchone()
            )
        return None if row is None else bytes(row[0])

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values at ``keys``, ``None`` where missing, from one snapshot."""
        if not keys:
            return []
        now = self._clock()
        found: dict[str, bytes] = {}
        with _translated("get_many"):
            conn = self._conn()
            # One read transaction: every value comes from the same snapshot.
            conn.execute("BEGIN")
            try:
                unique = list(dict.fromkeys(keys))
                # Chunks stay far below SQLite's bound-parameter limit.
                for start in range(0, len(unique), 500):
                    chunk = unique[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    rows = conn.execute(
                        f"SELECT key, value FROM kv WHERE key IN ({marks}) AND kind = ? "  # noqa: S608 (placeholders only)
                        "AND (expires_at IS NULL OR expires_at > ?)",
                        (*chunk, _VALUE, now),
                    ).fetchall()
                    found.update((k, bytes(v)) for k, v in rows)
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")
        return [found.get(k) for k in keys]

    def members(self, key: str) -> frozenset[str]:
        """The members of the set at ``key`` (empty if missing)."""
        with _translated("members"):
            rows = (
                self._conn()
                .execute(
                    "SELECT m.member FROM kv JOIN members AS m ON m.key = kv.key "
                    "WHERE kv.key = ? AND kv.kind = ? "
                    "AND (kv.expires_at IS NULL OR kv.expires_at > ?)",
                    (key, _SET, self._clock()),
                )
                .fetchall()
            )
        return frozenset(str(r[0]) for r in rows)

    def apply(self, batch: Batch) -> bool:
        """Check the guards and apply the writes in one ``BEGIN IMMEDIATE`` transaction."""
        check_batch(batch)
        with self._write_txn("apply") as conn:
            now = self._clock()
            if not all(self._holds(conn, g, now) for g in batch.guards):
                # Expired rows the guards met were deleted: commit that cleanup.
                return False
            for write in batch.writes:
                self._write(conn, write, now)
            self._sweep(conn, now)
        return True

    def purge(self, prefix: str) -> int:
        """Delete every key starting with ``prefix``; return how many were live."""
        bound = _prefix_bounds(prefix)
        where = "key >= ?" if bound is None else "key >= ? AND key < ?"
        span: tuple[str, ...] = (prefix,) if bound is None else (prefix, bound)
        with self._write_txn("purge") as conn:
            now = self._clock()
            row = conn.execute(
                f"SELECT count(*) FROM kv WHERE {where} "  # noqa: S608 (fixed fragments only)
                "AND (expires_at IS NULL OR expires_at > ?)",
                (*span, now),
            ).fetchone()
            conn.execute(f"DELETE FROM members WHERE {where}", span)  # noqa: S608
            conn.execute(f"DELETE FROM kv WHERE {where}", span)  # noqa: S608
        return int(row[0])

    def ttl(self, key: str) -> float | None:
        """Seconds left for ``key``; ``None`` if missing or without expiry."""
        now = self._clock()
        with _translated("ttl"):
            row = (
                self._conn()
                .execute("SELECT expires_at FROM kv WHERE key = ? AND expires_at > ?", (key, now))
                .fetchone()
            )
        return None if row is None else float(row[0]) - now

    def gcra(self, op: Gcra) -> GcraResult:
        """One GCRA hit in one ``BEGIN IMMEDIATE`` transaction, on the injected clock."""
        t_us, tau = check_gcra(op)
        with self._write_txn("gcra") as conn:
            now_s = self._clock()
            now = round(now_s * 1_000_000)
            row = self._live(conn, op.key, now_s)
            stored = None
            if row is not None and row.kind == _VALUE and row.value is not None:
                try:
                    stored = int(bytes(row.value))
                except ValueError:
                    stored = None  # not a TAT: the hit starts the key afresh
            step = gcra_step(stored, now, t_us, tau, op.cost)
            if step.write:
                if row is not None and row.kind == _SET:
                    conn.execute("DELETE FROM members WHERE key = ?", (op.key,))
                if step.tat > now:
                    expires = now_s + (step.tat - now) / 1_000_000
                    self._upsert(conn, op.key, _VALUE, b"%d" % step.tat, expires)
                else:
                    self._remove(conn, op.key)
                self._sweep(conn, now_s)
        return step.result

    def close(self) -> None:
        """Close this thread's connection and forget the other threads' ones.

        The store stays usable: the next call opens a fresh connection.
        Other threads' connections are closed when their references go
        (``check_same_thread`` forbids closing them from here).
        """
        local, self._local = self._local, threading.local()
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is not None and local.pid == os.getpid():
            with _translated("close"):
                conn.close()


class AsyncSQLiteStore:
    """The asynchronous face of a :class:`SQLiteStore`, over the same database.

    Every call runs the sync method on a small dedicated thread pool, so the
    event loop never waits on a lock or on disk.

    Args:
        store: the sync face to run.
        max_workers: threads (and so connections) serving the async face.
    """

    def __init__(self, store: SQLiteStore, *, max_workers: int = 4) -> None:
        self._store = store
        self._max_workers = max_workers
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._pid = os.getpid()

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            pid = os.getpid()
            # A pool created before fork() has no threads in the child.
            if self._executor is None or self._pid != pid:
                self._executor = ThreadPoolExecutor(
                    max_workers=self._max_workers, thread_name_prefix="tokenware-sqlite"
                )
                self._pid = pid
            return self._executor

    async def _run(self, func: Callable[..., _T], *args: object) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool(), functools.partial(func, *args))

    async def get(self, key: str) -> bytes | None:
        """The value at ``key``, or ``None``."""
        return await self._run(self._store.get, key)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values at ``keys``, ``None`` where missing."""
        return await self._run(self._store.get_many, tuple(keys))

    async def members(self, key: str) -> frozenset[str]:
        """The members of the set at ``key`` (empty if missing)."""
        return await self._run(self._store.members, key)

    async def apply(self, batch: Batch) -> bool:
        """Check the guards and apply the writes in one transaction."""
        return await self._run(self._store.apply, batch)

    async def purge(self, prefix: str) -> int:
        """Delete every key starting with ``prefix``; return how many."""
        return await self._run(self._store.purge, prefix)

    async def ttl(self, key: str) -> float | None:
        """Seconds left for ``key``; ``None`` if missing or without expiry."""
        return await self._run(self._store.ttl, key)

    async def gcra(self, op: Gcra) -> GcraResult:
        """One GCRA hit in one transaction."""
        return await self._run(self._store.gcra, op)

    async def aclose(self) -> None:
        """Stop the worker threads; their connections close as they exit."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None and self._pid == os.getpid():
            # Wait in a helper thread so the event loop is not blocked by a
            # call still waiting on a lock.
            await asyncio.get_running_loop().run_in_executor(None, executor.shutdown, True)


def sqlite_store(
    url: str, *, clock: Callable[[], float] = time.time, timeout: float = 0.5
) -> StorePair:
    """Open the SQLite store named by ``url`` and return both of its faces.

    Args:
        url: ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``.
        clock: the time source for expiry, in seconds.
        timeout: seconds to wait for a lock before ``StoreUnavailable``.

    Raises:
        ConfigurationError: a malformed URL or a missing directory.
    """
    store = SQLiteStore(parse_sqlite_url(url), clock=clock, timeout=timeout)
    return StorePair(url=url, sync=store, aio=AsyncSQLiteStore(store))
