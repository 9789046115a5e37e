"""SQLite-specific behaviour: WAL, locks held by other processes, races, URLs.

The generic store contract runs on SQLite in ``test_contract.py``; this file
covers what only SQLite has. Other processes are plain ``python -c``
subprocesses driven over stdin/stdout, so every wait is bounded and nothing
depends on how pytest imported this module.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import tokenware
from tokenware.core.ops import Absent, Batch, Delete, Equals, Put, SetAdd, SetRemove
from tokenware.errors import ConfigurationError, StoreError, StoreUnavailable
from tokenware.stores import StorePair, store_from_url
from tokenware.stores import sqlite as sqlite_mod
from tokenware.stores.sqlite import SQLiteStore, parse_sqlite_url, sqlite_store
from tokenware.testing import FrozenClock

ROOT = str(Path(tokenware.__file__).resolve().parent.parent)
WAIT = 30  # seconds: the bound on any wait for a helper process


def db_url(path: Path) -> str:
    """The sqlite:// URL of an absolute path."""
    return f"sqlite:///{path}"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """The path of a fresh database file."""
    return tmp_path / "store.db"


@pytest.fixture
def pair(db: Path, clock: FrozenClock) -> Iterator[StorePair]:
    """A SQLite store on ``db`` with the frozen clock and a short lock wait."""
    p = sqlite_store(db_url(db), clock=clock, timeout=0.2)
    try:
        yield p
    finally:
        p.sync.close()


def spawn(code: str) -> subprocess.Popen[str]:
    """Start ``python -c code`` with tokenware importable, talking over pipes."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )


def read_line(proc: subprocess.Popen[str]) -> str:
    """One line from ``proc``, failing the test instead of hanging."""
    assert proc.stdout is not None
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(proc.stdout.readline()))  # type: ignore[union-attr]
    reader.start()
    reader.join(WAIT)
    if reader.is_alive() or not result or not result[0]:
        proc.kill()
        _, err = proc.communicate(timeout=WAIT)
        pytest.fail(f"helper process said nothing; stderr:\n{err}")
    return result[0].strip()


# A process holding the write lock, as a long write transaction would. In WAL
# mode BEGIN EXCLUSIVE blocks writers only; with exclusive locking mode it
# blocks readers too, but it can only be taken while no other connection has
# the file open, so that phase runs with the store's connections closed.
LOCKER = """
import sqlite3, sys
conn = sqlite3.connect({path!r}, isolation_level=None)
if {exclusive!r}:
    conn.execute("PRAGMA locking_mode = EXCLUSIVE")
conn.execute("BEGIN EXCLUSIVE")
conn.execute("UPDATE kv SET value = x'00' WHERE 0")
print("held", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
conn.close()
print("released", flush=True)
"""


def hold_lock(db: Path, *, exclusive: bool) -> subprocess.Popen[str]:
    """Start a process holding the database lock; it prints 'held' first."""
    locker = spawn(LOCKER.format(path=str(db), exclusive=exclusive))
    assert read_line(locker) == "held"
    return locker


def release(locker: subprocess.Popen[str]) -> None:
    """Tell a locker process to commit and exit, and wait for it."""
    assert locker.stdin is not None
    locker.stdin.write("\n")
    locker.stdin.flush()
    assert read_line(locker) == "released"
    locker.communicate(timeout=WAIT)


def test_wal_mode_is_on(pair: StorePair, db: Path) -> None:
    """A separate connection reads journal_mode 'wal' once the store was used."""
    pair.sync.apply(Batch(writes=(Put("k", b"v"),)))
    raw = sqlite3.connect(db)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        raw.close()


def test_write_lock_held_by_another_process(pair: StorePair, db: Path) -> None:
    """While another process holds the write lock, apply raises StoreUnavailable, then recovers."""
    store = pair.sync
    assert store.apply(Batch(writes=(Put("k", b"v1"),)))
    cas = Batch(guards=(Equals("k", b"v1"),), writes=(Put("k", b"v2"),))
    locker = hold_lock(db, exclusive=False)
    try:
        with pytest.raises(StoreUnavailable) as caught:
            store.apply(cas)
        assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
        assert caught.value.retry_after >= 1
        with pytest.raises(StoreUnavailable):
            store.purge("k")
        with pytest.raises(StoreUnavailable):
            asyncio.run(pair.aio.apply(cas))
        assert store.get("k") == b"v1"  # WAL: readers are not blocked by a writer
        release(locker)
    finally:
        locker.kill()
        locker.communicate(timeout=WAIT)
    assert store.get("k") == b"v1"  # the refused applies wrote nothing
    assert store.apply(cas)
    assert store.get("k") == b"v2"


def test_exclusive_lock_held_by_another_process(pair: StorePair, db: Path) -> None:
    """While another process holds the file exclusively, get and apply raise StoreUnavailable."""
    store = pair.sync
    assert store.apply(Batch(writes=(Put("k", b"v1"),)))
    store.close()
    locker = hold_lock(db, exclusive=True)
    try:
        with pytest.raises(StoreUnavailable) as caught:
            store.get("k")
        assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
        with pytest.raises(StoreUnavailable):
            store.apply(Batch(guards=(Equals("k", b"v1"),), writes=(Delete("k"),)))
        release(locker)
    finally:
        locker.kill()
        locker.communicate(timeout=WAIT)
    assert store.get("k") == b"v1"
    assert store.apply(Batch(guards=(Equals("k", b"v1"),), writes=(Delete("k"),)))
    assert store.get("k") is None


RACER = """
import sys
from tokenware.core.ops import Batch, Delete, Equals
from tokenware.errors import StoreError
from tokenware.stores.sqlite import sqlite_store
pair = sqlite_store(sys.argv[1], timeout=20)
pair.sync.get("warm-up")
print("ready", flush=True)
sys.stdin.readline()
try:
    won = pair.sync.apply(Batch(guards=(Equals("{c}k", b"v1"),), writes=(Delete("{c}k"),)))
    print("won" if won else "lost", flush=True)
except StoreError as exc:
    print("error " + type(exc).__name__, flush=True)
"""


@pytest.mark.slow
def test_four_processes_race_one_compare_and_set(pair: StorePair, db: Path) -> None:
    """Four processes consuming the same record: exactly one wins, none errors."""
    assert pair.sync.apply(Batch(writes=(Put("{c}k", b"v1"),)))
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, db_url(db)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        for _ in range(4)
    ]
    try:
        assert [read_line(p) for p in racers] == ["ready"] * 4
        for p in racers:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        outcomes = sorted(read_line(p) for p in racers)
    finally:
        for p in racers:
            p.kill()
            p.communicate(timeout=WAIT)
    assert outcomes == ["lost", "lost", "lost", "won"]
    assert pair.sync.get("{c}k") is None


def test_sixteen_threads_race_one_compare_and_set(db: Path) -> None:
    """Sixteen threads doing the same compare-and-set: exactly one succeeds."""
    pair = sqlite_store(db_url(db), timeout=20)
    store = pair.sync
    assert store.apply(Batch(writes=(Put("k", b"v1"),)))
    barrier = threading.Barrier(16)
    results: list[object] = []
    lock = threading.Lock()

    def race() -> None:
        barrier.wait(WAIT)
        try:
            outcome: object = store.apply(
                Batch(guards=(Equals("k", b"v1"),), writes=(Delete("k"),))
            )
        except Exception as exc:  # recorded, then asserted on below
            outcome = exc
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=race) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    store.close()
    assert sorted(results, key=repr) == [False] * 15 + [True]


def test_async_and_sync_faces_share_data(pair: StorePair) -> None:
    """Writes through either face are visible through the other."""

    async def scenario() -> None:
        assert await pair.aio.apply(
            Batch(writes=(Put("{a}", b"from-async"), SetAdd("{a}set", "m")))
        )
        assert pair.sync.get("{a}") == b"from-async"
        assert pair.sync.members("{a}set") == frozenset({"m"})
        assert pair.sync.apply(Batch(writes=(Put("b", b"from-sync", ttl=30),)))
        assert await pair.aio.get("b") == b"from-sync"
        assert await pair.aio.get_many(["{a}", "b", "c"]) == [b"from-async", b"from-sync", None]
        assert await pair.aio.ttl("b") == 30
        assert await pair.aio.purge("{a}") == 2
        assert pair.sync.get("{a}") is None
        await pair.aio.aclose()
        assert await pair.aio.get("b") == b"from-sync"  # reopens after aclose
        await pair.aio.aclose()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://",
        "sqlite:///",
        "sqlite:////",
        "sqlite://host/store.db",
        "sqlite:///store.db?mode=ro",
        "sqlite:///store.db#frag",
        "sqlite:///:memory:",
        "sqlite:///file:store.db",
        "sqlite:////definitely/not/a/dir/store.db",
        "postgres:///store.db",
    ],
)
def test_bad_urls_are_configuration_errors(url: str) -> None:
    """Malformed URLs and missing directories fail at construction."""
    with pytest.raises(ConfigurationError):
        sqlite_store(url)


def test_directory_as_database_is_a_configuration_error(tmp_path: Path) -> None:
    """A URL naming an existing directory is refused with ConfigurationError."""
    with pytest.raises(ConfigurationError, match="directory"):
        store_from_url(db_url(tmp_path))


def test_relative_and_absolute_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three slashes mean relative to the working directory, four absolute."""
    monkeypatch.chdir(tmp_path)
    assert parse_sqlite_url("sqlite:///rel.db") == Path("rel.db")
    assert parse_sqlite_url(f"sqlite:///{tmp_path}/abs.db") == tmp_path / "abs.db"
    pair = store_from_url("sqlite:///rel.db")
    assert pair.url == "sqlite:///rel.db"
    assert pair.sync.apply(Batch(writes=(Put("k", b"v"),)))
    pair.sync.close()
    assert (tmp_path / "rel.db").is_file()


def test_ttl_follows_the_injected_clock(pair: StorePair, clock: FrozenClock) -> None:
    """A key lives exactly ttl seconds of the injected clock, then is missing everywhere."""
    store = pair.sync
    assert store.apply(Batch(writes=(Put("{t}k", b"v", ttl=10), SetAdd("{t}s", "m", ttl=10))))
    assert store.ttl("{t}k") == 10
    clock.advance(9.5)
    assert store.get("{t}k") == b"v"
    assert store.ttl("{t}k") == pytest.approx(0.5)
    clock.advance(0.5)
    assert store.get("{t}k") is None
    assert store.get_many(["{t}k"]) == [None]
    assert store.members("{t}s") == frozenset()
    assert store.ttl("{t}k") is None
    assert store.apply(Batch(guards=(Absent("{t}k"), Absent("{t}s")), writes=(Put("{t}x", b"y"),)))


def test_set_ttl_only_extends_and_keep_ttl_keeps(pair: StorePair, clock: FrozenClock) -> None:
    """SetAdd never shortens a set's life; Put with keep_ttl keeps the expiry."""
    store = pair.sync
    assert store.apply(Batch(writes=(SetAdd("s", "a", ttl=100),)))
    assert store.apply(Batch(writes=(SetAdd("s", "b", ttl=10),)))
    assert store.ttl("s") == 100
    assert store.apply(Batch(writes=(SetAdd("s", "c"),)))
    assert store.ttl("s") is None
    assert store.apply(Batch(writes=(SetAdd("s", "d", ttl=5),)))
    assert store.ttl("s") is None  # persistent stays persistent
    assert store.apply(Batch(writes=tuple(SetRemove("s", m) for m in "abcd")))
    assert store.members("s") == frozenset()
    assert store.apply(Batch(guards=(Absent("{t}s"),), writes=(Put("{t}s", b"1", ttl=50),)))
    clock.advance(20)
    assert store.apply(Batch(writes=(Put("{t}s", b"2", ttl=999, keep_ttl=True),)))
    assert store.get("{t}s") == b"2"
    assert store.ttl("{t}s") == 30


def test_expired_rows_are_removed_from_the_file(
    pair: StorePair, clock: FrozenClock, db: Path
) -> None:
    """Expired rows are deleted by later write transactions, not kept forever."""
    store = pair.sync
    assert store.apply(Batch(writes=(Put("{o}old", b"v", ttl=1), SetAdd("{o}olds", "m", ttl=1))))
    clock.advance(2)
    assert store.apply(Batch(writes=(Put("new", b"v"),)))
    raw = sqlite3.connect(db)
    try:
        assert raw.execute("SELECT key FROM kv").fetchall() == [("new",)]
        assert raw.execute("SELECT count(*) FROM members").fetchone() == (0,)
    finally:
        raw.close()


def test_purge_treats_like_wildcards_literally(pair: StorePair) -> None:
    """purge matches a plain prefix: % and _ and unusual characters are not patterns."""
    store = pair.sync
    keys = ["a%b", "a_b", "axb", "a%", "b", "\U0010ffff\U0010ffffz", "\U0010ffffq"]
    for key in keys:
        assert store.apply(Batch(writes=(Put(key, b"v"),)))
    assert store.purge("a%") == 2
    assert store.get("a_b") == b"v"
    assert store.get("axb") == b"v"
    assert store.purge("\U0010ffff\U0010ffff") == 1
    assert store.get("\U0010ffffq") == b"v"
    assert store.purge("") == 4


def test_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    """A file that is not SQLite raises StoreError chained to the driver's error."""
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a sqlite database, not at all" * 100)
    pair = sqlite_store(db_url(path))
    with pytest.raises(StoreError) as caught:
        pair.sync.get("k")
    assert not isinstance(caught.value, StoreUnavailable)
    assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)
    with pytest.raises(StoreError):
        pair.sync.apply(Batch(writes=(Put("k", b"v"),)))


def test_no_connection_is_used_across_fork(
    pair: StorePair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a pid change the store opens a new connection and parks the inherited one."""
    store = pair.sync
    assert isinstance(store, SQLiteStore)
    assert store.apply(Batch(writes=(Put("k", b"v"),)))
    inherited = store._conn()
    monkeypatch.setattr(sqlite_mod.os, "getpid", lambda: -1)
    assert store.get("k") == b"v"
    assert store._conn() is not inherited
    assert inherited in sqlite_mod._INHERITED
    sqlite_mod._INHERITED.remove(inherited)
    inherited.close()


def test_deleted_values_do_not_stay_in_the_file(pair: StorePair, db: Path) -> None:
    """After delete and purge and a checkpoint, the value's bytes are gone from disk."""
    marker = b"SECRET-MARKER-0123456789"
    store = pair.sync
    assert store.apply(Batch(writes=(Put("p:{k}1", marker), Put("p:{k}2", marker + b"2"))))
    assert store.apply(Batch(writes=(Delete("p:{k}1"),)))
    assert store.purge("p:") == 1
    store.close()
    raw = sqlite3.connect(db)
    try:
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()
    for path in db.parent.iterdir():
        if path.name.startswith(db.name):
            assert marker not in path.read_bytes(), path.name


def test_many_threads_opening_a_new_file_at_once(tmp_path: Path) -> None:
    """Switching brand-new files to WAL from 16 threads at once never fails.

    ``PRAGMA journal_mode = WAL`` bypasses the busy handler, so before the
    retry about one fresh file in 30 gave a thread "database is locked" (a 503
    on the first start-up of a multi-worker server).
    """
    for attempt in range(30):
        store = SQLiteStore(str(tmp_path / f"fresh-{attempt}.db"), timeout=0.5)
        ready = threading.Barrier(16)
        errors: list[BaseException] = []

        def work(
            n: int,
            store: SQLiteStore = store,
            ready: threading.Barrier = ready,
            errors: list[BaseException] = errors,
        ) -> None:
            ready.wait()
            try:
                store.apply(Batch(writes=(Put(f"k{n}", b"v"),)))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert errors == []
        assert store.get_many([f"k{n}" for n in range(16)]) == [b"v"] * 16
        store.close()
