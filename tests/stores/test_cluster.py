"""The ``redis+cluster://`` store on a real local Redis Cluster.

The contract suites run on the session cluster through the ``cluster``
backend; this module covers what is particular to a cluster: URLs, one hash
slot per script call, purge on every primary, redirects, no blind retries,
and a primary killed and its replica promoted. Tests that break a cluster
start their own (``private_cluster``) so the session cluster survives.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _redis_cluster import replicated
from _support import need, raw_redis, redis_keys

from tokenware import Tokenware
from tokenware.core.ops import Absent, Batch, Equals, Gcra, Put
from tokenware.core.refresh import TAG_LENGTH, parse_refresh_token
from tokenware.errors import (
    ConfigurationError,
    InvalidToken,
    NotFound,
    StoreUnavailable,
    ValidationError,
)
from tokenware.jwt import Jwt
from tokenware.stores import store_from_url
from tokenware.testing import make_secret_key

pytestmark = pytest.mark.redis

redis = pytest.importorskip("redis")
redis_cluster = pytest.importorskip("redis.cluster")

Refusals = tuple[type[BaseException], ...]

#: Seconds for a failover to complete (node timeout 1 s, election, gossip).
FAILOVER_WAIT = 30.0


def slot_of(key: str) -> int:
    """The hash slot of ``key`` (honours ``{tags}``)."""
    return int(redis_cluster.key_slot(key.encode()))


def owner_port(client: Any, key: str) -> int:
    """The port of the primary owning ``key``'s slot, per ``client``'s map."""
    return int(client.nodes_manager.get_node_from_slot(slot_of(key)).port)


def key_on(client: Any, port: int, prefix: str) -> str:
    """A key under ``prefix`` whose hash tag lives on the primary at ``port``."""
    for n in range(10_000):
        key = f"{prefix}:{{t{n}}}:k"
        if owner_port(client, key) == port:
            return key
    raise AssertionError("no tag found for that primary")


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- URLs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "redis+cluster://127.0.0.1:7000/1",
        "redis+cluster://127.0.0.1:7000?db=0",
        "redis+cluster://127.0.0.1:7000?socket_timeout=60",
        "redis+cluster://127.0.0.1:7000?retry_on_timeout=yes",
        "REDIS+CLUSTER://127.0.0.1:7000",
        "redis+cluster://127.0.0.1:7000,",
        "redis+cluster://127.0.0.1:7000,127.0.0.1:99999",
        "redis+cluster://127.0.0.1:7000#frag",
        "redis+cluster://127.0.0.1:7000?client_name=a&client_name=b",
    ],
)
def test_bad_cluster_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError):
        store_from_url(url)


def test_url_password_is_redacted_and_nothing_connects() -> None:
    """No server on these ports: building the pair sends nothing."""
    pair = store_from_url("redis+cluster://:s3cret@127.0.0.1:1,127.0.0.1:2?client_name=tw")
    for text in (pair.url, repr(pair.sync), repr(pair.aio)):
        assert "s3cret" not in text and "***" in text
    with pytest.raises(StoreUnavailable):
        pair.sync.get("k")
    with pytest.raises(StoreUnavailable):
        run(pair.aio.get("k"))


def test_cross_slot_batch_refused_before_any_io() -> None:
    """Keys of two hash tags are a ValidationError, even with no cluster to talk to."""
    pair = store_from_url("redis+cluster://127.0.0.1:1")
    batch = Batch(guards=(Absent("{a}:x"),), writes=(Put("{b}:y", b"v"),))
    with pytest.raises(ValidationError):
        pair.sync.apply(batch)
    with pytest.raises(ValidationError):
        run(pair.aio.apply(batch))


def test_no_retries_configured(redis_cluster_url: str) -> None:
    """The cluster client's own retry loop (3 by default) is off on both faces.

    redis-py follows MOVED/ASK/TRYAGAIN inside one attempt (the command did
    not run); its retry loop re-sends after a connection error or timeout,
    when a script may already have run.
    """
    pair = store_from_url(redis_cluster_url)
    pair.sync.get("k")
    assert pair.sync.client.retry.get_retries() == 0  # type: ignore[attr-defined]

    async def check() -> None:
        await pair.aio.get("k")
        client = (await pair.aio._current()).client  # type: ignore[attr-defined]
        assert client.retry.get_retries() == 0
        await pair.aio.aclose()

    run(check())
    pair.sync.close()


# -- one slot per call, purge on every primary --------------------------------


def test_every_script_call_of_the_services_touches_one_slot(
    redis_cluster_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sessions, JWT refresh, challenges and PATs on the cluster: one slot per script."""
    from redis.commands.core import Script

    calls: list[list[Any]] = []
    original = Script.__call__

    def spy(self: Any, keys: Any = (), args: Any = (), client: Any = None) -> Any:
        calls.append(list(keys))
        return original(self, keys=keys, args=args, client=client)

    monkeypatch.setattr(Script, "__call__", spy)
    tw = Tokenware(store=redis_cluster_url, secret_key=make_secret_key(), key_prefix=prefix)
    session = tw.sessions.add("alice")
    tw.sessions.delete(session.id)
    pair = tw.jwt.issue("alice")
    tw.jwt.refresh(pair.refresh_token, pair.access_token)
    ch = tw.challenges.create("login", "a@example.com")
    tw.challenges.verify(ch.secret)
    pat = tw.pats.issue("alice")
    tw.pats.verify(pat.token)
    tw.pats.revoke(pat.record.token_id)
    assert len(calls) >= 6
    for keys in calls:
        assert len({slot_of(k.decode() if isinstance(k, bytes) else k) for k in keys}) == 1, keys


def test_purge_scans_every_primary(redis_cluster_url: str, prefix: str) -> None:
    pair = store_from_url(redis_cluster_url)
    client = raw_redis(redis_cluster_url)
    try:
        keys = [f"{prefix}:{{t{n}}}:k" for n in range(1200)]  # > 2 SCAN pages per node
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.set(key, b"v")
        pipe.set(f"{prefix}x:{{t1}}:other", b"v")  # another prefix survives
        pipe.execute()
        owners = {owner_port(client, k) for k in keys}
        assert len(owners) == 3, "the keys should span all three primaries"
        assert pair.sync.purge(prefix + ":") == 1200
        assert redis_keys(client, f"{prefix}:*") == []
        assert client.get(f"{prefix}x:{{t1}}:other") == b"v"

        for key in keys[:600]:
            client.set(key, b"v")
        assert run(pair.aio.purge(prefix + ":")) == 600
        assert redis_keys(client, f"{prefix}:*") == []
    finally:
        client.delete(f"{prefix}x:{{t1}}:other")
        client.close()
        pair.sync.close()


def test_gcra_runs_on_the_slot_of_its_key(redis_cluster_url: str, prefix: str) -> None:
    pair = store_from_url(redis_cluster_url)
    results = [pair.sync.gcra(Gcra(f"{prefix}:rl:{{t{n}}}", 60.0, 2)) for n in range(30)]
    assert all(r.allowed for r in results)
    assert not [pair.sync.gcra(Gcra(f"{prefix}:rl:{{t0}}", 60.0, 2)) for _ in range(2)][-1].allowed
    pair.sync.close()


# -- a private cluster for the tests that move slots or kill nodes -------------


@pytest.fixture(scope="module")
def private_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A cluster of this module's own: these tests move slots and kill a primary."""
    import shutil

    for program in ("redis-server", "redis-cli"):
        if shutil.which(program) is None:
            need(f"{program} is not on PATH (apt-get install -y redis-server redis-tools)")
    from _redis_cluster import RedisCluster

    cluster = RedisCluster(tmp_path_factory.mktemp("private-cluster"), node_timeout=1000)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def node_id(client: Any, port: int) -> str:
    node = client.get_node(host="127.0.0.1", port=port)
    myid = client.cluster_myid(node)
    return myid.decode() if isinstance(myid, bytes) else str(myid)


def test_moved_after_a_stale_slot_map_is_followed_once(private_cluster: Any, prefix: str) -> None:
    """A client whose map points a slot at the wrong primary gets MOVED and follows it."""
    pair = store_from_url(private_cluster.url)
    key = f"{prefix}:{{moved}}:k"
    assert pair.sync.get(key) is None  # loads the map
    client = pair.sync.client  # type: ignore[attr-defined]
    right = client.nodes_manager.get_node_from_slot(slot_of(key))
    wrong = next(n for n in client.get_primaries() if n.name != right.name)
    client.nodes_manager.slots_cache[slot_of(key)] = [wrong]
    batch = Batch(guards=(Absent(key),), writes=(Put(key, b"1"),))
    assert pair.sync.apply(batch) is True
    assert pair.sync.apply(batch) is False  # it ran exactly once
    assert client.nodes_manager.get_node_from_slot(slot_of(key)).name == right.name
    pair.sync.close()


def test_ask_during_a_slot_migration_is_followed(private_cluster: Any, prefix: str) -> None:
    """A slot half-way through migration: the source answers ASK for a key it
    lacks, the client re-sends with ASKING to the target; then the slot moves."""
    pair = store_from_url(private_cluster.url)
    admin = raw_redis(private_cluster.url)
    key = f"{prefix}:{{ask}}:k"
    slot = slot_of(key)
    source = admin.nodes_manager.get_node_from_slot(slot)
    target = next(n for n in admin.get_primaries() if n.name != source.name)
    source_id, target_id = node_id(admin, source.port), node_id(admin, target.port)
    admin.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", source_id, target_nodes=target)
    admin.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", target_id, target_nodes=source)
    try:
        batch = Batch(guards=(Absent(key),), writes=(Put(key, b"1"),))
        assert pair.sync.apply(batch) is True
        assert run(pair.aio.apply(Batch(guards=(Equals(key, b"1"),), writes=(Put(key, b"2"),))))
    finally:
        for node in admin.get_primaries():
            admin.execute_command("CLUSTER SETSLOT", slot, "NODE", target_id, target_nodes=node)
    # The slot now lives on the target; the store follows the MOVED.
    deadline = time.monotonic() + 10
    while pair.sync.get(key) != b"2":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    admin.close()
    pair.sync.close()


def test_a_lost_reply_is_never_resent(private_cluster: Any, prefix: str) -> None:
    """A primary frozen past the timeout: the GCRA script times out, runs once
    when the primary resumes, and is not sent again.

    The call fails after one timeout: redis-py's default cluster retry (3)
    would have spent four, re-sending on a fresh connection each time (which
    here stalls in the connection handshake, so the count alone could not
    tell; a reply lost on a live path would be applied again).
    """
    timeout = 0.3
    pair = store_from_url(private_cluster.url, timeout=timeout)
    key = f"{prefix}:rl:{{lost}}"
    op = Gcra(key, 60.0, 10)
    assert pair.sync.gcra(op).remaining == 9
    client = pair.sync.client  # type: ignore[attr-defined]
    node = private_cluster.primary_for(owner_port(client, key))
    node.pause()
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            pair.sync.gcra(op)
        elapsed = time.monotonic() - started
    finally:
        node.resume()  # well under the 1 s node timeout: no failover
    assert elapsed < 2 * timeout, f"{elapsed:.2f} s: the script was retried"
    time.sleep(0.2)
    # 10 - 1 (first) - 1 (timed out, ran on resume) - 1 (this one) = 7
    assert pair.sync.gcra(op).remaining == 7
    pair.sync.close()


def test_primary_killed_replica_promoted(private_cluster: Any, prefix: str) -> None:
    """Kill (SIGKILL) the primary holding a refresh family, a consumed
    challenge and a consumed marker, after they reached its replica.

    Until the replica is promoted every operation on that primary's slots is
    StoreUnavailable (never a success, never another exception); afterwards
    everything works again without a new store, and nothing consumed or
    rotated before the kill is usable again.
    """
    pair = store_from_url(private_cluster.url, timeout=0.3, connect_timeout=0.3)
    tw = Tokenware(store=pair, secret_key=make_secret_key(), key_prefix=prefix)
    jwt = Jwt.over(tw, grace=0)
    client = raw_redis(private_cluster.url)

    # Pick the victim: the primary of the refresh family of a token.
    old = jwt.issue("alice")
    family = parse_refresh_token(old.refresh_token)
    assert family is not None
    victim_port = owner_port(client, f"{{{family.family[:TAG_LENGTH]}}}")
    new = jwt.refresh(old.refresh_token, old.access_token)
    # A challenge whose record lives on the victim too (retry until it does).
    challenge = None
    for _ in range(200):
        before = set(redis_keys(client, f"{prefix}:*"))
        ch = tw.challenges.create("login", f"{uuid.uuid4().hex}@example.com")
        added = set(redis_keys(client, f"{prefix}:*")) - before
        records = [k.decode() for k in added if b":c:{" in k and b":r:" in k]
        if records and owner_port(client, records[0]) == victim_port:
            challenge = ch
            break
    assert challenge is not None and challenge.secret is not None
    tw.challenges.verify(challenge.secret)
    marker = key_on(client, victim_port, prefix)
    consume = Batch(guards=(Absent(marker),), writes=(Put(marker, b"used"),))
    assert pair.sync.apply(consume) is True
    replicated(private_cluster)

    victim = private_cluster.primary_for(victim_port)
    assert victim.pid is not None
    os.kill(victim.pid, signal.SIGKILL)
    victim.stop()  # reaps it

    secret = challenge.secret
    gone: Refusals = (InvalidToken, NotFound)
    outcomes: list[str] = []
    started = time.monotonic()

    def attempt(
        name: str, call: Callable[[], Any], refused: tuple[type[BaseException], ...]
    ) -> bool:
        """One try: True on an answer (which must be a refusal), False if unavailable."""
        try:
            result = call()
        except StoreUnavailable:
            outcomes.append(f"{name}:unavailable")
            return False
        except refused:
            outcomes.append(f"{name}:refused")
            return True
        assert result is False, f"{name} succeeded during or after the failover"
        outcomes.append(f"{name}:refused")
        return True

    # One event loop for the async face, as in an application: the async
    # cluster client refreshes its map and drops nodes in background tasks.
    loop = asyncio.new_event_loop()
    recovered = False
    while time.monotonic() - started < FAILOVER_WAIT:
        answers = [
            attempt("apply", lambda: pair.sync.apply(consume), ()),
            attempt("apply-async", lambda: loop.run_until_complete(pair.aio.apply(consume)), ()),
            attempt("refresh", lambda: jwt.refresh(old.refresh_token, old.access_token), gone),
            attempt("challenge", lambda: tw.challenges.verify(secret), gone),
        ]
        if all(answers):
            recovered = True
            break
        time.sleep(0.1)
    elapsed = time.monotonic() - started
    loop.run_until_complete(pair.aio.aclose())
    loop.run_until_complete(asyncio.sleep(0.2))  # let redis-py's disconnect tasks finish
    loop.close()
    assert recovered, f"no recovery within {FAILOVER_WAIT} s: {outcomes[-8:]}"
    assert any(o.endswith(":unavailable") for o in outcomes), "the outage was never seen"
    counts = {o: outcomes.count(o) for o in sorted(set(outcomes))}
    print(f"failover: recovered after {elapsed:.1f} s: {counts}")

    # The promoted replica has the family: reusing the rotated token above
    # was detected as reuse, which revoked the family (new token included).
    with pytest.raises(InvalidToken):
        jwt.refresh(new.refresh_token, new.access_token)
    assert private_cluster.roles().get(victim_port) is None
    assert list(private_cluster.roles().values()).count("master") == 3
    client.close()
    pair.sync.close()


def test_residual_risk_a_consume_not_replicated_is_lost_on_failover(
    private_cluster: Any, prefix: str
) -> None:
    """The documented residual risk (docs/stores.md, security.md §3.7), shown.

    The replica is cut off from its primary (frozen, its replication link
    killed), a one-time marker is consumed on the primary (acknowledged),
    the primary dies and the stale replica is promoted: the marker is
    fresh again and can be consumed a second time. Nothing in tokenware
    prevents this today (no ``WAIT``); if that changes, this test must be
    turned around.
    """
    pair = store_from_url(private_cluster.url, timeout=0.3, connect_timeout=0.3)
    admin = raw_redis(private_cluster.url)
    primary = replica = None
    for node in private_cluster.nodes:
        if node.pid is None:
            continue
        probe = redis.Redis(host="127.0.0.1", port=node.port)
        info = probe.info("replication")
        probe.close()
        if info["role"] == "master" and info.get("connected_slaves") == 1:
            primary = node
            replica = private_cluster.primary_for(int(info["slave0"]["port"]))
            break
    assert primary is not None and replica is not None, "no primary with a replica left"
    marker = key_on(admin, primary.port, prefix)
    assert pair.sync.apply(Batch(guards=(Absent(marker),), writes=(Put(marker, b"fresh"),)))
    replicated(private_cluster)
    consume = Batch(guards=(Equals(marker, b"fresh"),), writes=(Put(marker, b"used"),))

    replica.pause()
    try:
        direct = redis.Redis(host="127.0.0.1", port=primary.port)
        direct.execute_command("CLIENT", "KILL", "TYPE", "replica")
        direct.close()
        assert pair.sync.apply(consume) is True  # acknowledged by the primary only
        assert primary.pid is not None
        os.kill(primary.pid, signal.SIGKILL)
        primary.stop()
    finally:
        replica.resume()

    deadline = time.monotonic() + FAILOVER_WAIT
    while True:
        try:
            reused = pair.sync.apply(consume)
            break
        except StoreUnavailable:
            assert time.monotonic() < deadline, "the replica was not promoted"
            time.sleep(0.1)
    assert reused is True, "the unreplicated consume survived: update docs/stores.md"
    admin.close()
    pair.sync.close()
