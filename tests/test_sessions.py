"""``tw.sessions``: opaque session tokens and short-lived values, on every backend.

These are behaviour tests of the public service (the tokenstore successor,
seeds.md §3): what a caller can observe through ``tw.sessions`` and
``tw.aio.sessions``, plus what an attacker with a copy of the store can read.
Memory and SQLite follow the ``FrozenClock``; Redis expires keys on its own
clock, so expiry there is waited for in real (short) seconds.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _support import NETWORKED, backend_url
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokenware import KeyRing, RootKey, Tokenware
from tokenware.errors import ClientError, InvalidToken, NotFound, ValidationError
from tokenware.stores import StorePair, store_from_url
from tokenware.testing import FrozenClock, make_secret_key

SECRET = make_secret_key("test-sessions")
BASE62 = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

Factory = Callable[..., Tokenware]


def _url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'sessions.db'}"
    return str(backend_url(backend, request))


@pytest.fixture
def make_tw(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    clock: FrozenClock,
    prefix: str,
) -> Iterator[Factory]:
    """Build ``Tokenware`` instances over ONE store of ``backend``.

    Every instance shares the store (so rotation and prefix isolation can be
    observed); each Redis prefix used is wiped afterwards.
    """
    pair = store_from_url(_url(backend, request, tmp_path), clock=clock, timeout=5)
    made: list[Tokenware] = []

    def factory(**kwargs: Any) -> Tokenware:
        kwargs.setdefault("key_prefix", prefix)
        if "keys" not in kwargs:
            kwargs.setdefault("secret_key", SECRET)
        tw = Tokenware(store=pair, clock=clock, **kwargs)
        made.append(tw)
        return tw

    try:
        yield factory
    finally:
        for tw in made:
            tw.sessions.reset()
        pair.sync.close()


@pytest.fixture
def tw(make_tw: Factory) -> Tokenware:
    """A Tokenware with a one-hour default session lifetime."""
    return make_tw(session_ttl=3600)


def elapse(backend: str, clock: FrozenClock, seconds: float) -> None:
    """Let ``seconds`` pass for the store: the frozen clock, or real time on Redis."""
    if backend in NETWORKED:
        time.sleep(seconds)
    else:
        clock.advance(seconds)


def secret_part(key: str) -> str:
    """The validator part of a session key (everything after the public id)."""
    return key[len("tws_") + 22 :]


# -- add / get / get_by_key / set_attrs ------------------------------------------


def test_add_returns_a_tws_key_and_a_separate_public_id(tw: Tokenware, clock: FrozenClock) -> None:
    s = tw.sessions.add("alice", {"foo": "bar"})
    assert s.key is not None
    assert s.key.startswith("tws_")
    assert len(s.key) == 69
    assert set(s.key[4:]) <= BASE62
    assert s.id != s.key
    assert len(s.id) == 22
    assert set(s.id) <= BASE62
    assert s.owner_id == "alice"
    assert s.attrs == {"foo": "bar"}
    assert s.created_at == clock()
    # The key is never repeated by a lookup by id, nor in the repr.
    assert tw.sessions.get(s.id).key is None
    assert s.key not in repr(s)


def test_get_and_get_by_key_return_the_stored_session(tw: Tokenware) -> None:
    s = tw.sessions.add("testowner", {"foo": "bar"})
    assert s.key is not None
    by_id = tw.sessions.get(s.id)
    by_key = tw.sessions.get_by_key(s.key)
    for found in (by_id, by_key):
        assert (found.id, found.owner_id, dict(found.attrs)) == (s.id, "testowner", {"foo": "bar"})
        assert (found.created_at, found.expires_at) == (s.created_at, s.expires_at)
    assert by_key.key == s.key


def test_the_public_id_alone_does_not_authenticate(tw: Tokenware) -> None:
    s = tw.sessions.add("alice")
    with pytest.raises(NotFound):
        tw.sessions.get_by_key("tws_" + s.id + "0" * 43)
    with pytest.raises(InvalidToken):
        tw.authenticate("Bearer tws_" + s.id + "0" * 43)


def test_keys_and_ids_are_unique(tw: Tokenware) -> None:
    sessions = [tw.sessions.add(f"owner{i % 3}") for i in range(150)]
    assert len({s.key for s in sessions}) == 150
    assert len({s.id for s in sessions}) == 150


def test_add_does_not_keep_a_reference_to_the_callers_attrs(tw: Tokenware) -> None:
    attrs: dict[str, Any] = {"roles": ["a"]}
    s = tw.sessions.add("alice", attrs)
    attrs["roles"].append("admin")
    attrs["extra"] = 1
    assert tw.sessions.get(s.id).attrs == {"roles": ["a"]}
    assert s.attrs == {"roles": ["a"]}


def test_add_returns_what_get_returns_for_json_normalised_attrs(tw: Tokenware) -> None:
    # Tuples become lists and nested int keys become strings in JSON: the
    # value handed back by add must already be the stored one.
    s = tw.sessions.add("alice", {"t": (1, 2), "m": {1: "one"}})
    assert s.attrs == tw.sessions.get(s.id).attrs == {"t": [1, 2], "m": {"1": "one"}}


def test_set_attrs_replaces_attrs_and_keeps_the_expiry(
    tw: Tokenware, backend: str, clock: FrozenClock
) -> None:
    s = tw.sessions.add("testowner", {"foo": "bar"}, ttl=1)
    elapse(backend, clock, 0.3)
    updated = tw.sessions.set_attrs(s.id, {"foo": "bar", "baz": "quxx"})
    assert updated.attrs == {"foo": "bar", "baz": "quxx"}
    assert updated.expires_at == s.expires_at
    assert updated.key is None
    assert tw.sessions.get(s.id).attrs == {"foo": "bar", "baz": "quxx"}
    assert s.key is not None
    assert tw.sessions.get_by_key(s.key).attrs == {"foo": "bar", "baz": "quxx"}
    # The update did not extend the session's life.
    elapse(backend, clock, 0.9)
    with pytest.raises(NotFound):
        tw.sessions.get(s.id)


def test_set_attrs_on_a_missing_session_is_not_found(tw: Tokenware) -> None:
    with pytest.raises(NotFound):
        tw.sessions.set_attrs("0" * 22, {"a": 1})
    with pytest.raises(NotFound):
        tw.sessions.set_attrs("nope", {"a": 1})


# -- delete / delete_by_key / list -------------------------------------------------


def test_delete_removes_the_session_everywhere(tw: Tokenware) -> None:
    s = tw.sessions.add("alice")
    keep = tw.sessions.add("alice")
    assert s.key is not None
    tw.sessions.delete(s.id)
    with pytest.raises(NotFound):
        tw.sessions.get(s.id)
    with pytest.raises(NotFound):
        tw.sessions.get_by_key(s.key)
    assert [t.id for t in tw.sessions.list("alice")] == [keep.id]
    with pytest.raises(NotFound):
        tw.sessions.delete(s.id)


def test_delete_by_key(tw: Tokenware) -> None:
    s = tw.sessions.add("alice")
    assert s.key is not None
    tw.sessions.delete_by_key(s.key)
    with pytest.raises(NotFound):
        tw.sessions.get(s.id)
    assert tw.sessions.list("alice") == []
    with pytest.raises(NotFound):
        tw.sessions.delete_by_key(s.key)


def test_delete_by_key_with_a_wrong_secret_deletes_nothing(tw: Tokenware) -> None:
    s = tw.sessions.add("alice")
    assert s.key is not None
    forged = s.key[:-1] + ("A" if s.key[-1] != "A" else "B")
    with pytest.raises(NotFound):
        tw.sessions.delete_by_key(forged)
    assert tw.sessions.get(s.id).id == s.id


def test_list_returns_the_owners_sessions_oldest_first(tw: Tokenware, clock: FrozenClock) -> None:
    ids = []
    for i in range(5):
        ids.append(tw.sessions.add("testowner", {"n": i}).id)
        clock.advance(1)
    listed = tw.sessions.list("testowner")
    assert [t.id for t in listed] == ids
    assert [t.attrs["n"] for t in listed] == list(range(5))
    assert all(t.key is None for t in listed)
    assert tw.sessions.list("nobody") == []


def test_list_keeps_many_owners_apart(tw: Tokenware) -> None:
    expected: dict[str, set[str]] = {}
    for i in range(40):
        owner = f"user-{i}"
        expected[owner] = {tw.sessions.add(owner).id for _ in range(i % 3 + 1)}
    for owner, ids in expected.items():
        listed = tw.sessions.list(owner)
        assert {t.id for t in listed} == ids
        assert {t.owner_id for t in listed} == {owner}


@pytest.mark.parametrize(
    "owner",
    ["*", "?", "[", "[a-z]", "a*", "user:*", "{tag}", "\\", "ünïcødé", "a b", "x" * 512],
)
def test_list_with_pattern_characters_in_the_owner(tw: Tokenware, owner: str) -> None:
    mine = tw.sessions.add(owner).id
    # Owners a glob or a hash tag built from the id would have matched.
    others = {
        tw.sessions.add(o).id for o in ("a", "ab", "user:1", "tag", "[", "x" * 511) if o != owner
    }
    assert [t.id for t in tw.sessions.list(owner)] == [mine]
    assert mine not in others


@pytest.mark.parametrize("short_first", [True, False])
def test_list_drops_expired_sessions(
    tw: Tokenware, backend: str, clock: FrozenClock, short_first: bool
) -> None:
    # Either order: a short session added after a long one must not shorten
    # the life of the owner's index.
    if short_first:
        short = tw.sessions.add("alice", ttl=1)
        long = tw.sessions.add("alice", ttl=60)
    else:
        long = tw.sessions.add("alice", ttl=60)
        short = tw.sessions.add("alice", ttl=1)
    assert {t.id for t in tw.sessions.list("alice")} == {short.id, long.id}
    elapse(backend, clock, 1.2)
    assert [t.id for t in tw.sessions.list("alice")] == [long.id]
    assert [t.id for t in tw.sessions.list("alice")] == [long.id]


# -- TTLs ----------------------------------------------------------------------


def test_per_call_ttl_is_honoured(tw: Tokenware, backend: str, clock: FrozenClock) -> None:
    s = tw.sessions.add("alice", ttl=1)
    assert s.key is not None
    assert s.expires_at == s.created_at + 1
    elapse(backend, clock, 0.3)
    assert tw.sessions.get(s.id).id == s.id
    assert tw.sessions.get_by_key(s.key).id == s.id
    elapse(backend, clock, 0.9)
    with pytest.raises(NotFound):
        tw.sessions.get(s.id)
    with pytest.raises(NotFound):
        tw.sessions.get_by_key(s.key)
    with pytest.raises(InvalidToken):
        tw.authenticate(f"Bearer {s.key}")


def test_default_ttl_is_honoured(make_tw: Factory, backend: str, clock: FrozenClock) -> None:
    tw = make_tw(session_ttl=1)
    s = tw.sessions.add("alice")
    assert s.expires_at == s.created_at + 1
    elapse(backend, clock, 0.3)
    assert tw.sessions.get(s.id).id == s.id
    elapse(backend, clock, 0.9)
    with pytest.raises(NotFound):
        tw.sessions.get(s.id)


def test_default_session_ttl_is_thirty_days(make_tw: Factory) -> None:
    default = make_tw()
    s = default.sessions.add("alice")
    assert s.expires_at == s.created_at + 30 * 24 * 3600


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), float("inf"), True, "60", [60], 1e18, 1e308])
def test_bad_ttls_are_refused_and_nothing_is_stored(tw: Tokenware, ttl: Any) -> None:
    with pytest.raises(ValidationError, match="ttl"):
        tw.sessions.add("alice", ttl=ttl)
    with pytest.raises(ValidationError, match="ttl"):
        tw.sessions.make_hash("v", ttl=ttl)
    assert tw.sessions.list("alice") == []


# -- short-lived values ----------------------------------------------------------


def test_make_hash_round_trips_json_values(tw: Tokenware) -> None:
    for value in ("foo", {"user": 1, "next": "/x"}, [1, 2.5, None, True], 0, None):
        h = tw.sessions.make_hash(value)
        # tokenstore stored String(val): an object came back "[object Object]".
        assert tw.sessions.get_hash(h) == value
    h = tw.sessions.make_hash("foo")
    tw.sessions.delete_hash(h)
    with pytest.raises(NotFound):
        tw.sessions.get_hash(h)
    with pytest.raises(NotFound):
        tw.sessions.delete_hash(h)


def test_hash_handles_carry_at_least_128_bits_and_are_unique(tw: Tokenware) -> None:
    handles = [tw.sessions.make_hash(i) for i in range(200)]
    assert len(set(handles)) == 200
    for h in handles:
        assert set(h) <= BASE62
        assert len(h) * math.log2(62) >= 128
    assert [tw.sessions.get_hash(h) for h in handles[:20]] == list(range(20))


def test_make_hash_honours_its_ttl(tw: Tokenware, backend: str, clock: FrozenClock) -> None:
    # tokenstore ignored the ttl argument and always used 3600 seconds.
    h = tw.sessions.make_hash("foo", ttl=1)
    elapse(backend, clock, 0.3)
    assert tw.sessions.get_hash(h) == "foo"
    elapse(backend, clock, 0.9)
    with pytest.raises(NotFound):
        tw.sessions.get_hash(h)
    with pytest.raises(NotFound):
        tw.sessions.delete_hash(h)


def test_make_hash_default_ttl_is_an_hour(tw: Tokenware, backend: str, clock: FrozenClock) -> None:
    if backend in NETWORKED:
        pytest.skip("an hour of real time; the per-call TTL test covers Redis")
    h = tw.sessions.make_hash("foo")
    clock.advance(3599)
    assert tw.sessions.get_hash(h) == "foo"
    clock.advance(2)
    with pytest.raises(NotFound):
        tw.sessions.get_hash(h)


# -- hostile or malformed input ------------------------------------------------

MALFORMED_IDS = [
    "",
    "x",
    "0" * 21,
    "0" * 23,
    "é" * 22,
    "\x00" * 22,
    "a" * 100_000,
    "{abc}" + "0" * 17,
    "*" * 22,
    "tws_" + "0" * 18,
]
MALFORMED_KEYS = [
    "",
    "tws_",
    "tws_" + "a" * 64,
    "tws_" + "a" * 66,
    "tws_" + "é" * 65,
    "tws_" + "a" * 64 + "é",
    "tws_" + "\ud800" * 65,
    "tws_" + "a" * 100_000,
    "TWS_" + "a" * 65,
    "a" * 69,
    "tws_" + "*" * 65,
    "tws_" + "0" * 22 + "=" * 43,
]
MALFORMED_HANDLES = [
    "",
    "a" * 21,
    "a" * 23,
    "é" * 22,
    "*" * 22,
    "\ud800" * 22,
    "a" * 100_000,
    "0" * 22,
]


@pytest.mark.parametrize("session_id", MALFORMED_IDS)
def test_malformed_or_unknown_ids_are_not_found(tw: Tokenware, session_id: str) -> None:
    tw.sessions.add("alice")
    for call in (tw.sessions.get, tw.sessions.delete):
        with pytest.raises(NotFound) as info:
            call(session_id)
        assert info.value.status_code == 404
    with pytest.raises(NotFound):
        tw.sessions.set_attrs(session_id, {})


@pytest.mark.parametrize("key", MALFORMED_KEYS)
def test_malformed_or_unknown_keys_are_not_found(tw: Tokenware, key: str) -> None:
    tw.sessions.add("alice")
    for call in (tw.sessions.get_by_key, tw.sessions.delete_by_key):
        with pytest.raises(NotFound):
            call(key)


@pytest.mark.parametrize("handle", MALFORMED_HANDLES)
def test_malformed_or_unknown_handles_are_not_found(tw: Tokenware, handle: str) -> None:
    tw.sessions.make_hash("v")
    for call in (tw.sessions.get_hash, tw.sessions.delete_hash):
        with pytest.raises(NotFound):
            call(handle)


@pytest.mark.parametrize("bad", [None, 5, b"abc", ["x"]])
def test_non_string_ids_keys_and_handles_are_validation_errors(tw: Tokenware, bad: Any) -> None:
    calls: list[Callable[[Any], object]] = [
        tw.sessions.get,
        tw.sessions.get_by_key,
        tw.sessions.delete,
        tw.sessions.delete_by_key,
        tw.sessions.get_hash,
        tw.sessions.delete_hash,
    ]
    for call in calls:
        with pytest.raises(ValidationError):
            call(bad)


def test_a_wrong_secret_with_the_right_id_is_not_found(tw: Tokenware) -> None:
    s = tw.sessions.add("alice")
    assert s.key is not None
    secret = secret_part(s.key)
    for altered in (
        secret[:-1] + ("0" if secret[-1] != "0" else "1"),
        ("0" if secret[0] != "0" else "1") + secret[1:],
        secret[::-1] if secret[::-1] != secret else "0" * 43,
    ):
        forged = "tws_" + s.id + altered
        with pytest.raises(NotFound):
            tw.sessions.get_by_key(forged)
        with pytest.raises(InvalidToken):
            tw.authenticate(f"Bearer {forged}")
    assert tw.sessions.get_by_key(s.key).id == s.id


NOT_JSON: list[Any] = [
    {"s": {1, 2}},
    {"nan": float("nan")},
    {"inf": float("-inf")},
    {"o": object()},
    {"b": b"bytes"},
    {"deep": [{"x": {3}}]},
    {"lone": "\ud800"},
    {1: "int key"},
    ["not", "a", "mapping"],
    "text",
]


@pytest.mark.parametrize("attrs", NOT_JSON, ids=lambda a: type(a).__name__)
def test_non_json_attrs_are_refused_and_nothing_is_stored(tw: Tokenware, attrs: Any) -> None:
    with pytest.raises(ValidationError, match="attrs") as info:
        tw.sessions.add("alice", attrs)
    assert isinstance(info.value, ValueError)
    assert tw.sessions.list("alice") == []
    s = tw.sessions.add("alice", {"ok": True})
    with pytest.raises(ValidationError, match="attrs"):
        tw.sessions.set_attrs(s.id, attrs)
    assert tw.sessions.get(s.id).attrs == {"ok": True}


@pytest.mark.parametrize("value", [{1, 2}, float("nan"), object(), "\ud800"], ids=repr)
def test_non_json_hash_values_are_refused(tw: Tokenware, value: Any) -> None:
    with pytest.raises(ValidationError, match="value"):
        tw.sessions.make_hash(value)


@pytest.mark.parametrize("owner", ["", None, 7, "x" * 513, "\udcff"], ids=repr)
def test_bad_owner_ids_are_validation_errors(tw: Tokenware, owner: Any) -> None:
    with pytest.raises(ValidationError, match="owner_id"):
        tw.sessions.add(owner)
    with pytest.raises(ValidationError, match="owner_id"):
        tw.sessions.list(owner)


def test_every_error_raised_is_a_typed_client_or_validation_error(tw: Tokenware) -> None:
    # The tokenware equivalent of "never a 500": nothing but the documented types.
    for call, arg in [
        (tw.sessions.get, "tws_\x00"),
        (tw.sessions.get_by_key, "tws_" + "\u0661" * 65),  # Arabic-Indic digits: str.isdigit
        (tw.sessions.get_hash, "\u0661" * 22),
    ]:
        with pytest.raises(ClientError):
            call(arg)


# -- reset ---------------------------------------------------------------------


def test_reset_deletes_only_keys_under_the_prefix(make_tw: Factory, prefix: str) -> None:
    mine = make_tw(key_prefix=prefix)
    # "<prefix>x" starts with the prefix as a string but is another namespace.
    for other_prefix in (prefix + "x", prefix + "_2"):
        other = make_tw(key_prefix=other_prefix)
        theirs = other.sessions.add("alice")
        their_hash = other.sessions.make_hash("keep")
        s = mine.sessions.add("alice")
        h = mine.sessions.make_hash("drop")
        assert mine.sessions.reset() >= 2
        with pytest.raises(NotFound):
            mine.sessions.get(s.id)
        with pytest.raises(NotFound):
            mine.sessions.get_hash(h)
        assert mine.sessions.list("alice") == []
        assert other.sessions.get(theirs.id).id == theirs.id
        assert [t.id for t in other.sessions.list("alice")] == [theirs.id]
        assert other.sessions.get_hash(their_hash) == "keep"
    assert mine.sessions.reset() == 0


# -- key rotation --------------------------------------------------------------


def test_rotated_key_ring_keeps_old_sessions_and_a_dropped_kid_does_not(
    make_tw: Factory,
) -> None:
    old = RootKey("old", make_secret_key("old"))
    new = RootKey("new", make_secret_key("new"))
    before = make_tw(keys=KeyRing([old]))
    s = before.sessions.add("alice", {"v": 1})
    h = before.sessions.make_hash("value")
    assert s.key is not None

    rotated = make_tw(keys=KeyRing([new, old]))
    assert rotated.sessions.get_by_key(s.key).id == s.id
    assert rotated.authenticate(f"Bearer {s.key}").token_id == s.id
    assert [t.id for t in rotated.sessions.list("alice")] == [s.id]
    assert rotated.sessions.get_hash(h) == "value"
    fresh = rotated.sessions.add("alice")
    assert fresh.key is not None
    assert rotated.sessions.get_by_key(fresh.key).id == fresh.id
    assert {t.id for t in rotated.sessions.list("alice")} == {s.id, fresh.id}

    # The old ring cannot verify what the new key wrote; the new-only ring
    # cannot verify what the old key wrote.
    with pytest.raises(NotFound):
        before.sessions.get_by_key(fresh.key)
    retired = make_tw(keys=KeyRing([new]))
    with pytest.raises(NotFound):
        retired.sessions.get_by_key(s.key)
    with pytest.raises(InvalidToken):
        retired.authenticate(f"Bearer {s.key}")
    assert retired.sessions.get_by_key(fresh.key).id == fresh.id


def test_another_secret_cannot_verify_a_session(make_tw: Factory) -> None:
    a = make_tw(secret_key=make_secret_key("a"))
    b = make_tw(secret_key=make_secret_key("b"))
    s = a.sessions.add("alice")
    assert s.key is not None
    with pytest.raises(NotFound):
        b.sessions.get_by_key(s.key)


# -- async face and concurrency ------------------------------------------------


def test_async_face_sees_the_same_data(tw: Tokenware) -> None:
    s = tw.sessions.add("alice", {"from": "sync"})
    assert s.key is not None
    key = s.key

    async def main() -> tuple[str, str, list[str], Any]:
        try:
            a = await tw.aio.sessions.add("alice", {"from": "async"})
            got = await tw.aio.sessions.get(s.id)
            by_key = await tw.aio.sessions.get_by_key(key)
            await tw.aio.sessions.set_attrs(s.id, {"from": "async-update"})
            listed = await tw.aio.sessions.list("alice")
            h = await tw.aio.sessions.make_hash({"x": 1})
            ident = await tw.aio.authenticate(f"Bearer {key}")
            assert ident.subject == "alice"
            assert got.attrs == {"from": "sync"}
            assert by_key.id == s.id
            return a.id, h, [t.id for t in listed], await tw.aio.sessions.get_hash(h)
        finally:
            await tw.aio.aclose()

    async_id, handle, listed, value = asyncio.run(main())
    assert sorted(listed) == sorted([s.id, async_id])
    assert value == {"x": 1}
    assert tw.sessions.get(async_id).attrs == {"from": "async"}
    assert tw.sessions.get(s.id).attrs == {"from": "async-update"}
    assert tw.sessions.get_hash(handle) == {"x": 1}


def test_async_delete_and_errors(tw: Tokenware) -> None:
    s = tw.sessions.add("alice")

    async def main() -> None:
        try:
            await tw.aio.sessions.delete(s.id)
            with pytest.raises(NotFound):
                await tw.aio.sessions.get(s.id)
            with pytest.raises(NotFound):
                await tw.aio.sessions.get_by_key("tws_short")
            with pytest.raises(ValidationError):
                await tw.aio.sessions.add("alice", {"x": {1}})
        finally:
            await tw.aio.aclose()

    asyncio.run(main())
    with pytest.raises(NotFound):
        tw.sessions.get(s.id)


def test_concurrent_deletes_of_one_session_succeed_exactly_once(tw: Tokenware) -> None:
    s = tw.sessions.add("alice")
    threads = 32
    barrier = threading.Barrier(threads)
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        try:
            tw.sessions.delete(s.id)
            result = "deleted"
        except NotFound:
            result = "not_found"
        except Exception as exc:  # recorded, so the assertion names it
            result = f"{type(exc).__name__}: {exc}"
        with lock:
            outcomes.append(result)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(30)
    assert outcomes.count("deleted") == 1, outcomes
    assert outcomes.count("not_found") == threads - 1, outcomes
    assert tw.sessions.list("alice") == []


def test_concurrent_set_attrs_never_loses_the_record(tw: Tokenware) -> None:
    s = tw.sessions.add("alice", {"n": -1})
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            tw.sessions.set_attrs(s.id, {"n": n})
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(30)
    assert errors == []
    assert tw.sessions.get(s.id).attrs["n"] in range(8)
    assert [t.id for t in tw.sessions.list("alice")] == [s.id]


# -- what a copy of the store reveals --------------------------------------------


def _issue_secrets(tw: Tokenware) -> tuple[list[str], list[str], list[str]]:
    keys, ids, handles = [], [], []
    for i in range(5):
        s = tw.sessions.add(f"owner-{i}@example.com", {"i": i})
        assert s.key is not None
        keys.append(s.key)
        ids.append(s.id)
        handles.append(tw.sessions.make_hash({"reset": i}))
    # Updates rewrite the record: they must not leak either.
    tw.sessions.set_attrs(ids[0], {"updated": True})
    return keys, ids, handles


@pytest.mark.redis
def test_no_session_key_secret_or_handle_reaches_redis(redis_url: str, prefix: str) -> None:
    import redis

    tw = Tokenware(store=redis_url, secret_key=SECRET, key_prefix=prefix)
    raw = redis.Redis.from_url(redis_url)
    try:
        keys, ids, handles = _issue_secrets(tw)
        blobs: list[bytes] = []
        for name in raw.scan_iter(match=f"{prefix}*", count=1000):
            blobs.append(name)
            kind = raw.type(name)
            if kind == b"string":
                blobs.append(raw.get(name))
            elif kind == b"set":
                blobs.extend(raw.smembers(name))
            else:
                blobs.append(repr(raw.dump(name)).encode())
        dump = b"\n".join(blobs)
        # Sanity: the scan saw the records (public ids are stored).
        assert all(i.encode() in dump for i in ids)
        for key in keys:
            assert key.encode() not in dump
            assert secret_part(key).encode() not in dump
            assert secret_part(key)[:16].encode() not in dump
        for h in handles:
            assert h.encode() not in dump
        # Owner ids are never key names (only a keyed HMAC of them).
        names = b"\n".join(raw.scan_iter(match=f"{prefix}*", count=1000))
        assert b"example.com" not in names
    finally:
        tw.sessions.reset()
        tw.close()
        raw.close()


def test_no_session_key_secret_or_handle_reaches_the_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "leak.db"
    tw = Tokenware(store=f"sqlite:///{db}", secret_key=SECRET)

    def file_bytes() -> bytes:
        parts = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
        return b"".join(p.read_bytes() for p in parts if p.exists())

    try:
        keys, ids, handles = _issue_secrets(tw)
        for key in keys[:2]:
            tw.sessions.delete_by_key(key)
        snapshots = [file_bytes()]
    finally:
        tw.close()
    snapshots.append(file_bytes())
    for data in snapshots:
        assert ids[-1].encode() in data  # sanity: the file holds the records
        for key in keys:
            assert key.encode() not in data
            assert secret_part(key).encode() not in data
        for h in handles:
            assert h.encode() not in data


# -- property: attrs round-trip --------------------------------------------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_PROPERTY_TW = Tokenware(store="memory://", secret_key=SECRET, clock=FrozenClock())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(attrs=st.dictionaries(st.text(max_size=12), JSON_VALUES, max_size=6))
def test_json_attrs_round_trip_exactly(attrs: dict[str, Any]) -> None:
    sessions = _PROPERTY_TW.sessions
    s = sessions.add("prop", attrs)
    assert s.key is not None
    expected = json.loads(json.dumps(attrs))
    assert expected == attrs  # the strategy only draws JSON-exact values
    assert s.attrs == attrs
    assert sessions.get(s.id).attrs == attrs
    assert sessions.get_by_key(s.key).attrs == attrs
    assert sessions.set_attrs(s.id, {"copy": attrs}).attrs == {"copy": attrs}
    assert sessions.get(s.id).attrs == {"copy": attrs}
    sessions.delete(s.id)


@settings(max_examples=100, deadline=None)
@given(value=JSON_VALUES)
def test_json_hash_values_round_trip_exactly(value: Any) -> None:
    sessions = _PROPERTY_TW.sessions
    h = sessions.make_hash(value, ttl=60)
    assert sessions.get_hash(h) == value
    sessions.delete_hash(h)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=120))
def test_any_text_as_id_key_or_handle_is_not_found(text: str) -> None:
    sessions = _PROPERTY_TW.sessions
    for call in (sessions.get, sessions.get_by_key, sessions.get_hash, sessions.delete_hash):
        with pytest.raises(NotFound):
            call(text)
    with pytest.raises(NotFound):
        sessions.get_by_key("tws_" + text)


def test_store_pair_fixture_backed_tokenware_works(store_pair: StorePair, prefix: str) -> None:
    # The conftest fixture: a StorePair handed to Tokenware directly.
    tw = Tokenware(store=store_pair, secret_key=SECRET, key_prefix=prefix)
    try:
        s = tw.sessions.add("alice", {"a": 1})
        assert s.key is not None
        assert tw.sessions.get_by_key(s.key).attrs == {"a": 1}
        assert tw.sessions.reset() >= 1
    finally:
        tw.sessions.reset()
