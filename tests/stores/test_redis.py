"""Redis-specific behaviour on a real server: outages, timeouts, scripts, secrets, URLs.

The generic store contract runs on Redis in ``test_contract.py``; this file
breaks the server on purpose (security.md §4 I, items 117-120). Every test that
stops or freezes a server starts its own :class:`RedisServer` on a free port,
so the session server the other tests share is never touched. Timing checks
are bounds ("within the timeout plus generous slack"), never benchmarks.
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import shutil
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _redis_server import RedisServer, _free_port
from _support import IN_CI, need

from tokenware.core.ops import Absent, Batch, Equals, Put, SetAdd
from tokenware.errors import ConfigurationError, StoreError, StoreUnavailable, ValidationError
from tokenware.stores import StorePair, store_from_url
from tokenware.stores.base import hash_tag
from tokenware.testing import FrozenClock

if importlib.util.find_spec("redis") is None:  # pragma: no cover - depends on the environment
    if IN_CI:
        raise RuntimeError("required for CI: the redis package (pip install 'tokenware[redis]')")
    pytest.skip("the redis package is not installed", allow_module_level=True)

import redis
import redis.commands.core

from tokenware.stores import redis as redis_mod
from tokenware.stores.redis import AsyncRedisStore, RedisStore, redis_store

pytestmark = pytest.mark.redis

TIMEOUT = 0.3  # seconds: the command and connect timeout of the stores under test
SLACK = 2.0  # seconds: added to a timeout for the upper bound of a failing call
WAIT = 5.0  # seconds: the bound on any polling loop

KEY = "{t}:k"
SET = "{t}:set"
SECRET_VALUE = b"stored-secret-value-4f1c"


def put(key: str, value: bytes) -> Batch:
    return Batch(writes=(Put(key, value),))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server, free to be stopped, frozen or flushed."""
    if shutil.which("redis-server") is None:
        need("redis-server is not on PATH (apt-get install -y redis-server)")
    srv = RedisServer(tmp_path / "redis")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()  # also resumes a paused server first


def admin(url: str) -> Any:
    """A plain redis-py client for inspecting a private server."""
    return redis.Redis.from_url(url, socket_timeout=WAIT, socket_connect_timeout=WAIT)


def sync_calls(pair: StorePair) -> dict[str, Callable[[], object]]:
    """One call of every store method on the sync face."""
    s = pair.sync
    return {
        "get": lambda: s.get(KEY),
        "get_many": lambda: s.get_many([KEY, "{u}:other"]),
        "members": lambda: s.members(SET),
        "apply": lambda: s.apply(Batch(guards=(Absent(KEY),), writes=(Put(KEY, b"v"),))),
        "purge": lambda: s.purge("{t}"),
        "ttl": lambda: s.ttl(KEY),
    }


def async_calls(pair: StorePair) -> dict[str, Callable[[], Awaitable[object]]]:
    """One call of every store method on the async face."""
    a = pair.aio
    return {
        "get": lambda: a.get(KEY),
        "get_many": lambda: a.get_many([KEY, "{u}:other"]),
        "members": lambda: a.members(SET),
        "apply": lambda: a.apply(Batch(guards=(Absent(KEY),), writes=(Put(KEY, b"v"),))),
        "purge": lambda: a.purge("{t}"),
        "ttl": lambda: a.ttl(KEY),
    }


def check_unavailable(exc: BaseException, elapsed: float, bound: float, what: str) -> None:
    """The failure is a StoreUnavailable with retry_after, chained, and within bound."""
    assert isinstance(exc, StoreUnavailable), f"{what}: {exc!r}"
    assert exc.retry_after >= 1, what
    # The driver's exception is chained for the logs, never raised itself.
    assert isinstance(exc.__cause__, (redis.exceptions.RedisError, OSError)), what
    assert elapsed < bound, f"{what} took {elapsed:.2f} s (bound {bound} s)"


def assert_all_unavailable(pair: StorePair, bound: float) -> None:
    """Every method of both faces raises StoreUnavailable within ``bound`` seconds."""
    for name, call in sync_calls(pair).items():
        start = time.monotonic()
        with pytest.raises(StoreError) as info:
            call()
        check_unavailable(info.value, time.monotonic() - start, bound, f"sync {name}")

    async def run() -> None:
        try:
            for name, acall in async_calls(pair).items():
                start = time.monotonic()
                with pytest.raises(StoreError) as info:
                    await acall()
                check_unavailable(info.value, time.monotonic() - start, bound, f"async {name}")
        finally:
            await pair.aio.aclose()

    asyncio.run(run())


def assert_works(pair: StorePair, value: bytes) -> None:
    """Both faces read and write correctly (and replies match their requests)."""
    assert pair.sync.apply(put(KEY, value)) is True
    assert pair.sync.get(KEY) == value
    assert pair.sync.get_many([KEY, "{u}:missing"]) == [value, None]

    async def run() -> None:
        try:
            assert await pair.aio.get(KEY) == value
            assert await pair.aio.apply(
                Batch(guards=(Equals(KEY, value),), writes=(Put(KEY, value + b"!"),))
            )
            assert await pair.aio.get_many(["{u}:missing", KEY]) == [None, value + b"!"]
        finally:
            await pair.aio.aclose()

    asyncio.run(run())


# --- 117: the server goes away mid-test, then comes back ----------------------


def test_stopped_server_is_unavailable_then_recovers(server: RedisServer) -> None:
    """A stopped server: StoreUnavailable within the timeout, then the same store recovers."""
    pair = redis_store(server.url, timeout=TIMEOUT, connect_timeout=TIMEOUT)
    try:
        assert_works(pair, b"before")
        server.stop()
        assert_all_unavailable(pair, TIMEOUT + SLACK)
        server.start()  # same port, empty data
        assert_works(pair, b"after")  # the SAME store object, not a new one
    finally:
        pair.sync.close()


def test_restart_between_calls_is_transparent(server: RedisServer) -> None:
    """Pooled connections to a restarted server are replaced, not used and failed."""
    pair = redis_store(server.url, timeout=TIMEOUT, connect_timeout=TIMEOUT)
    try:
        assert_works(pair, b"one")
        server.restart()
        assert pair.sync.get(KEY) is None  # first call after the restart: fresh, empty server

        async def run() -> None:
            try:
                assert await pair.aio.get(KEY) is None
                await pair.aio.apply(put(KEY, b"two"))
                # In a thread, so the loop runs meanwhile and sees the old
                # connection close, as it would in a live app.
                await asyncio.to_thread(server.restart)
                assert await pair.aio.get(KEY) is None
            finally:
                await pair.aio.aclose()

        asyncio.run(run())
    finally:
        pair.sync.close()


def test_apply_never_reports_success_when_down(server: RedisServer) -> None:
    """apply on a stopped server raises; it never returns True or False."""
    pair = redis_store(server.url, timeout=TIMEOUT, connect_timeout=TIMEOUT)
    server.stop()
    with pytest.raises(StoreUnavailable):
        pair.sync.apply(put(KEY, b"x"))

    async def run() -> None:
        with pytest.raises(StoreUnavailable):
            await pair.aio.apply(put(KEY, b"x"))
        await pair.aio.aclose()

    asyncio.run(run())


# --- 118: a frozen server (latency beyond the timeout) ------------------------


def test_paused_server_times_out_within_bound(server: RedisServer) -> None:
    """SIGSTOP: connections hang; every call fails by the command timeout, then recovers."""
    pair = redis_store(server.url, timeout=TIMEOUT, connect_timeout=TIMEOUT)
    try:
        assert_works(pair, b"before")
        server.pause()
        try:
            assert_all_unavailable(pair, TIMEOUT + SLACK)
        finally:
            server.resume()
        # Replies the frozen server sends late must not reach later calls.
        assert_works(pair, b"after")
        for n in range(5):
            key = f"{{t}}:n{n}"
            assert pair.sync.apply(put(key, b"%d" % n)) is True
            assert pair.sync.get(key) == b"%d" % n
    finally:
        pair.sync.close()


# --- refused connections -------------------------------------------------------


def test_refused_connection_fails_fast() -> None:
    """Nothing listens on the port: every method of both faces fails at once."""
    url = f"redis://127.0.0.1:{_free_port()}/0"
    # Timeouts far above the bound: a refusal must not wait for either of them.
    pair = redis_store(url, timeout=10, connect_timeout=10)
    assert_all_unavailable(pair, SLACK)


# --- 119: NOSCRIPT after SCRIPT FLUSH -----------------------------------------


def test_script_flush_reloads_script(server: RedisServer) -> None:
    """After SCRIPT FLUSH the next apply still succeeds (EVALSHA -> NOSCRIPT -> EVAL)."""
    pair = redis_store(server.url, timeout=TIMEOUT, connect_timeout=TIMEOUT)
    control = admin(server.url)
    try:
        assert pair.sync.apply(put(KEY, b"one")) is True
        control.script_flush()
        assert pair.sync.apply(put(KEY, b"two")) is True
        assert control.get(KEY) == b"two"

        async def run() -> None:
            try:
                assert await pair.aio.apply(put(KEY, b"three")) is True
                control.script_flush()
                assert await pair.aio.apply(put(KEY, b"four")) is True
            finally:
                await pair.aio.aclose()

        asyncio.run(run())
        assert control.get(KEY) == b"four"
        digest = pair.sync.client.script_load(redis_mod._APPLY_LUA)  # type: ignore[attr-defined]
        assert control.script_exists(digest) == [True]
    finally:
        control.close()
        pair.sync.close()


# --- 120: one hash tag per script call ----------------------------------------


def test_cross_slot_batch_refused_before_redis() -> None:
    """A batch spanning hash tags is a ValidationError, raised before any I/O.

    The store points at a port where nothing listens: reaching Redis would
    have raised StoreUnavailable instead.
    """
    pair = redis_store(f"redis://127.0.0.1:{_free_port()}/0", timeout=TIMEOUT)
    batch = Batch(guards=(Absent("{a}:x"),), writes=(Put("{b}:y", b"v"),))
    with pytest.raises(ValidationError):
        pair.sync.apply(batch)

    async def run() -> None:
        with pytest.raises(ValidationError):
            await pair.aio.apply(batch)

    asyncio.run(run())


def test_lua_script_only_touches_keys_from_keys() -> None:
    """apply.lua never builds a key name: every key it touches comes from KEYS.

    Together with check_batch (one hash tag per call) this is what lets the
    script run on Redis Cluster.
    """
    source = redis_mod._APPLY_LUA
    code = re.sub(r"--\[\[.*?\]\]", "", source, flags=re.DOTALL)
    code = "\n".join(line.split("--", 1)[0] for line in code.splitlines())
    calls = re.findall(r"redis\.call\(\s*'([A-Z]+)'\s*,\s*([^,)]+)", code)
    assert calls, "no redis.call found"
    for command, first in calls:
        assert first.strip() == "key", f"redis.call('{command}', {first}) does not use a KEYS key"
    assert re.findall(r"local key = (.+)", code) == ["KEYS[tonumber(ARGV[i + 1])]"] * 2
    assert re.search(r"\bkey\s*=\s*(?!KEYS\[)", code.replace("local key = KEYS", "")) is None
    assert ".." not in code  # no string concatenation at all


@pytest.fixture
def cluster_node(tmp_path: Path) -> Iterator[RedisServer]:
    """A one-node Redis Cluster owning every slot: it enforces CROSSSLOT like a real one."""
    if shutil.which("redis-server") is None:
        need("redis-server is not on PATH (apt-get install -y redis-server)")
    directory = tmp_path / "cluster"
    srv = RedisServer(
        directory,
        args=("--cluster-enabled", "yes", "--cluster-config-file", str(directory / "nodes.conf")),
    )
    srv.start()
    try:
        control = admin(srv.url)
        control.execute_command("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
        deadline = time.monotonic() + WAIT
        while b"cluster_state:ok" not in control.execute_command("CLUSTER", "INFO"):
            assert time.monotonic() < deadline, "single-node cluster did not become ok"
            time.sleep(0.05)
        control.close()
        yield srv
    finally:
        srv.stop()


def test_cluster_node_refuses_cross_slot_script(cluster_node: RedisServer) -> None:
    """The guard has teeth: the script sent with cross-slot KEYS fails with CROSSSLOT."""
    store = RedisStore(cluster_node.url, timeout=TIMEOUT)
    try:
        assert store.apply(Batch(writes=(Put("{a}:x", b"1"), Put("{a}:y", b"2")))) is True
        _, argv = redis_mod._encode(Batch(writes=(Put("{a}:x", b"1"), Put("{b}:y", b"2"))))
        with pytest.raises(redis.exceptions.ClusterCrossSlotError):
            store._apply(keys=["{a}:x", "{b}:y"], args=argv)
    finally:
        store.close()


def test_every_script_call_uses_one_hash_tag(
    cluster_node: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sessions, run on a cluster node, only ever call the script with one hash tag."""
    from tokenware import Tokenware

    seen: list[tuple[str, ...]] = []
    sync_call = redis.commands.core.Script.__call__
    async_call = redis.commands.core.AsyncScript.__call__

    def spy(self: Any, keys: Any = (), args: Any = (), client: Any = None) -> Any:
        seen.append(tuple(keys))
        return sync_call(self, keys=keys, args=args, client=client)

    async def aspy(self: Any, keys: Any = (), args: Any = (), client: Any = None) -> Any:
        seen.append(tuple(keys))
        return await async_call(self, keys=keys, args=args, client=client)

    monkeypatch.setattr(redis.commands.core.Script, "__call__", spy)
    monkeypatch.setattr(redis.commands.core.AsyncScript, "__call__", aspy)
    tw = Tokenware(store=cluster_node.url, secret_key=b"k" * 32, clock=FrozenClock(1.8e9))
    try:
        session = tw.sessions.add("alice", {"role": "admin"}, ttl=600)
        tw.sessions.set_attrs(session.id, {"role": "user"})
        assert [s.id for s in tw.sessions.list("alice")] == [session.id]
        h = tw.sessions.make_hash({"v": 1}, ttl=60)
        assert tw.sessions.get_hash(h) == {"v": 1}
        tw.sessions.delete_hash(h)
        tw.sessions.delete(session.id)

        async def run() -> None:
            other = await tw.aio.sessions.add("bob", None, ttl=600)
            await tw.aio.sessions.delete(other.id)
            await tw.stores.aio.aclose()

        asyncio.run(run())
    finally:
        tw.close()
    assert len(seen) >= 5
    for keys in seen:
        assert len({hash_tag(k) for k in keys}) == 1, keys


# --- errors: no secrets, no values; auth failure is not an outage -------------


PASSWORD = "s3cr/t:p@ss-9d2e"  # a '/' and an '@' on purpose
WRONG = "wr0ng/p@ss-71aa"


def assert_no_secret(text: str) -> None:
    for secret in (PASSWORD, WRONG, "9d2e", "71aa", SECRET_VALUE.decode()):
        assert secret not in text, f"{secret!r} leaked into {text!r}"


def test_wrong_password_is_store_error_without_secrets(tmp_path: Path) -> None:
    """A wrong or missing password: StoreError (not an outage), and no password anywhere."""
    if shutil.which("redis-server") is None:
        need("redis-server is not on PATH (apt-get install -y redis-server)")
    srv = RedisServer(tmp_path / "redis", password=PASSWORD)
    srv.start()
    try:
        good = srv.url
        assert "%2F" in good  # percent-encoded, as it must be in a URL
        wrong = good.replace(good.split("@")[0], f"redis://:{WRONG.replace('/', '%2F')}")
        missing = f"redis://127.0.0.1:{srv.port}/0"
        for url in (wrong, missing):
            pair = redis_store(url, timeout=TIMEOUT, connect_timeout=TIMEOUT)
            assert_no_secret(pair.url + repr(pair) + repr(pair.sync) + repr(pair.aio))
            assert_no_secret(repr(pair.sync.client))  # type: ignore[attr-defined]
            errors: list[BaseException] = []
            for call in sync_calls(pair).values():
                with pytest.raises(StoreError) as info:
                    call()
                errors.append(info.value)

            async def run(pair: StorePair = pair, errors: list[BaseException] = errors) -> None:
                for acall in async_calls(pair).values():
                    with pytest.raises(StoreError) as info:
                        await acall()
                    errors.append(info.value)
                await pair.aio.aclose()

            asyncio.run(run())
            for exc in errors:
                assert not isinstance(exc, StoreUnavailable), repr(exc)
                assert isinstance(exc.__cause__, redis.exceptions.AuthenticationError)
                assert_no_secret(str(exc) + repr(exc) + str(exc.__cause__))
        ok = redis_store(good, timeout=TIMEOUT)
        assert ok.url == f"redis://:***@127.0.0.1:{srv.port}/0"
        assert_no_secret(ok.url + repr(ok.sync) + repr(ok.aio))
        assert ok.sync.apply(put(KEY, b"v")) is True
        ok.sync.close()
    finally:
        srv.stop()


def test_server_error_message_has_no_value(server: RedisServer) -> None:
    """A write refused by the server (OOM) is a StoreError naming neither key nor value."""
    control = admin(server.url)
    pair = redis_store(server.url, timeout=TIMEOUT)
    try:
        control.config_set("maxmemory-policy", "noeviction")
        control.config_set("maxmemory", "1")
        batch = Batch(writes=(Put("{t}:secret-key", SECRET_VALUE), SetAdd("{t}:s", "member")))
        with pytest.raises(StoreError) as info:
            pair.sync.apply(batch)

        async def run() -> BaseException:
            try:
                with pytest.raises(StoreError) as ainfo:
                    await pair.aio.apply(batch)
                return ainfo.value
            finally:
                await pair.aio.aclose()

        for exc in (info.value, asyncio.run(run())):
            assert not isinstance(exc, StoreUnavailable)
            assert isinstance(exc.__cause__, redis.exceptions.ResponseError)
            assert_no_secret(str(exc) + repr(exc))
            assert "secret-key" not in str(exc)
    finally:
        control.config_set("maxmemory", "0")
        control.close()
        pair.sync.close()


# --- no retries ----------------------------------------------------------------


def _script_stats(control: Any) -> dict[str, int]:
    stats = control.info("commandstats")
    return {
        name: int(stats.get(f"cmdstat_{name}", {}).get("calls", 0))
        for name in ("evalsha", "eval", "script|load")
    }


def test_clients_are_configured_without_retries() -> None:
    """Both faces' connections carry a Retry with zero retries (redis-py defaults to 3)."""
    pair = redis_store("redis://127.0.0.1:1/0")
    sync_retry = pair.sync.client.get_retry()  # type: ignore[attr-defined]
    assert sync_retry.get_retries() == 0

    async def run() -> None:
        client = pair.aio._new_client()  # type: ignore[attr-defined]
        try:
            assert client.get_retry().get_retries() == 0
            assert client.connection_pool.connection_kwargs["retry"].get_retries() == 0
        finally:
            await client.aclose()

    asyncio.run(run())


def _wait_for_evalsha(control: Any, calls: int) -> dict[str, int]:
    """Script stats once ``calls`` EVALSHA have run (bounded), after a pause for strays."""
    deadline = time.monotonic() + WAIT
    while _script_stats(control)["evalsha"] < calls:
        assert time.monotonic() < deadline, "the late EVALSHA never ran"
        time.sleep(0.02)
    time.sleep(0.2)  # room for a (wrong) second attempt to arrive
    return _script_stats(control)


ONCE = Batch(guards=(Absent("{t}:once"),), writes=(Put("{t}:once", b"ran"),))


def test_timed_out_apply_is_not_resent_sync(server: RedisServer) -> None:
    """A script whose reply was lost is sent exactly once, and may well have run.

    Paused server: the EVALSHA waits in the socket buffer, the client times
    out and gives up. After the resume the server runs it once: a retry would
    have made it twice (a code consumed twice, a rotation applied twice).
    """
    control = admin(server.url)
    pair = redis_store(server.url, timeout=TIMEOUT, connect_timeout=TIMEOUT)
    try:
        assert pair.sync.apply(put("{t}:warm", b"w")) is True  # loaded, connected
        before = _script_stats(control)
        server.pause()
        try:
            with pytest.raises(StoreUnavailable):
                pair.sync.apply(ONCE)
        finally:
            server.resume()
        after = _wait_for_evalsha(control, before["evalsha"] + 1)
        assert after == {**before, "evalsha": before["evalsha"] + 1}
        # The caller saw a failure, yet the script ran: why retrying is unsafe.
        assert control.get("{t}:once") == b"ran"
    finally:
        control.close()
        pair.sync.close()


def test_timed_out_apply_is_not_resent_async(server: RedisServer) -> None:
    """The same on the async face, on one event loop (its connection already open)."""
    control = admin(server.url)
    pair = redis_store(server.url, timeout=TIMEOUT, connect_timeout=TIMEOUT)

    async def run() -> dict[str, int]:
        try:
            assert await pair.aio.apply(put("{t}:warm", b"w")) is True
            before = _script_stats(control)
            server.pause()
            try:
                with pytest.raises(StoreUnavailable):
                    await pair.aio.apply(ONCE)
            finally:
                server.resume()
            return before
        finally:
            await pair.aio.aclose()

    try:
        before = asyncio.run(run())
        after = _wait_for_evalsha(control, before["evalsha"] + 1)
        assert after == {**before, "evalsha": before["evalsha"] + 1}
        assert control.get("{t}:once") == b"ran"
    finally:
        control.close()


# --- URLs and timeouts ---------------------------------------------------------


BAD_URLS = [
    pytest.param("redis://127.0.0.1:abc/0", id="non-integer-port"),
    pytest.param("redis://127.0.0.1:99999/0", id="port-out-of-range"),
    pytest.param("redis://127.0.0.1:6379/abc", id="non-integer-db"),
    pytest.param("redis://127.0.0.1:6379/-1", id="negative-db"),
    pytest.param("redis://127.0.0.1:6379/0/1", id="two-path-segments"),
    pytest.param("redis://127.0.0.1:6379/0?db=x", id="non-integer-db-option"),
    pytest.param("redis://127.0.0.1:6379/1?db=2", id="db-twice"),
    pytest.param("redis://127.0.0.1:6379/0?socket_timeout=60", id="timeout-in-url"),
    pytest.param("redis://127.0.0.1:6379/0?socket_connect_timeout=60", id="connect-in-url"),
    pytest.param("redis://127.0.0.1:6379/0?retry_on_timeout=yes", id="retry-in-url"),
    pytest.param("redis://127.0.0.1:6379/0?frobnicate=1", id="unknown-option"),
    pytest.param("unix://", id="unix-without-path"),
    pytest.param("redis://[::1/0", id="broken-ipv6"),
    pytest.param("http://127.0.0.1:6379/0", id="wrong-scheme"),
]

# store_from_url itself raises a bare ValueError on these (its urlsplit call,
# outside this module): checked on the redis entry points only.
NOT_VIA_STORE_FROM_URL = {"redis://[::1/0"}


@pytest.mark.parametrize("url", BAD_URLS)
def test_bad_url_is_configuration_error(url: str) -> None:
    """Every face and entry point refuses the URL at construction, without I/O."""
    for make in (RedisStore, AsyncRedisStore, redis_store):
        with pytest.raises(ConfigurationError):
            make(url)
    if not url.startswith("http") and url not in NOT_VIA_STORE_FROM_URL:
        with pytest.raises(ConfigurationError):
            store_from_url(url)


@pytest.mark.parametrize(
    "url",
    [
        # An unencoded '/' in the password moves part of it into the "port"
        # or the "path": the message must not quote either.
        "redis://:s3cr/t:9d2e@127.0.0.1:6379/0",
        "redis://:s3cr9d2e@127.0.0.1:abc9d2e/0",
        "redis://u:s3cr@127.0.0.1:6379/9d2e",
        "redis://u:pw@127.0.0.1:6379/0?password=9d2e&bogus=9d2e",
    ],
)
def test_bad_url_message_quotes_nothing(url: str) -> None:
    """A ConfigurationError for a URL holding a password quotes no part of it."""
    for make in (RedisStore, AsyncRedisStore):
        with pytest.raises(ConfigurationError) as info:
            make(url)
        text = str(info.value) + repr(info.value)
        assert "9d2e" not in text and "s3cr" not in text, text
        # Nothing chained or shown in a traceback: redis-py's text may quote the URL.
        assert info.value.__cause__ is None
        assert info.value.__context__ is None or info.value.__suppress_context__


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0",
        "redis://127.0.0.1",
        "redis://localhost:6379/",
        "rediss://u:p%2Fw@cache.example:6380/3",
        "redis://127.0.0.1:6379?db=2&client_name=tw&max_connections=20",
        "unix:///run/redis.sock?db=1",
    ],
)
def test_good_url_accepted_without_connecting(url: str) -> None:
    pair = redis_store(url)
    assert "p%2Fw" not in pair.url
    assert isinstance(pair.sync, RedisStore) and isinstance(pair.aio, AsyncRedisStore)


@pytest.mark.parametrize("value", [0, -1, None, float("nan"), float("inf"), True, "1"])
def test_bad_timeout_is_configuration_error(value: Any) -> None:
    url = "redis://127.0.0.1:6379/0"
    for kwargs in ({"timeout": value}, {"connect_timeout": value}):
        for make in (RedisStore, AsyncRedisStore, redis_store):
            with pytest.raises(ConfigurationError):
                make(url, **kwargs)


def test_store_from_url_passes_both_timeouts() -> None:
    """store_from_url hands timeout and connect_timeout to both faces' connections."""
    pair = store_from_url(
        "redis://127.0.0.1:1/0", clock=FrozenClock(1.8e9), timeout=0.7, connect_timeout=0.4
    )
    kwargs = pair.sync.client.connection_pool.connection_kwargs  # type: ignore[attr-defined]
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (0.7, 0.4)

    async def run() -> None:
        client = pair.aio._new_client()  # type: ignore[attr-defined]
        try:
            akw = client.connection_pool.connection_kwargs
            assert (akw["socket_timeout"], akw["socket_connect_timeout"]) == (0.7, 0.4)
        finally:
            await client.aclose()

    asyncio.run(run())


def _timed_failures(pair: StorePair) -> list[float]:
    """Seconds each face took to fail one get (each must be StoreUnavailable)."""
    times = []
    start = time.monotonic()
    with pytest.raises(StoreUnavailable):
        pair.sync.get(KEY)
    times.append(time.monotonic() - start)

    async def run() -> None:
        try:
            start = time.monotonic()
            with pytest.raises(StoreUnavailable):
                await pair.aio.get(KEY)
            times.append(time.monotonic() - start)
        finally:
            await pair.aio.aclose()

    asyncio.run(run())
    return times


# Distinct from the 0.5 s defaults, so a lower bound shows which one applied.
HONOURED = 0.8


def test_store_from_url_honours_command_timeout(server: RedisServer) -> None:
    """A frozen server: the call fails after ``timeout``, not the default or connect one."""
    pair = store_from_url(server.url, timeout=HONOURED, connect_timeout=30)
    pair.sync.get(KEY)  # connect while the server answers
    server.pause()
    try:
        for elapsed in _timed_failures(pair):
            assert HONOURED - 0.05 <= elapsed < HONOURED + SLACK, elapsed
    finally:
        server.resume()
        pair.sync.close()


def test_store_from_url_honours_connect_timeout() -> None:
    """A listener whose accept queue is full drops SYNs: connect_timeout applies."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    held: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        # Fill the accept queue (never accepted); later SYNs go unanswered.
        for _ in range(3):
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(probe)
            probe.settimeout(0.2)
            try:
                probe.connect(("127.0.0.1", port))
            except OSError:
                break
        else:
            pytest.skip("this kernel never stopped accepting connections")
        pair = store_from_url(f"redis://127.0.0.1:{port}/0", timeout=30, connect_timeout=HONOURED)
        for elapsed in _timed_failures(pair):
            assert HONOURED - 0.05 <= elapsed < HONOURED + SLACK, elapsed
    finally:
        for probe in held:
            probe.close()
        listener.close()
