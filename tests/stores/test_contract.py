"""The store contract: one suite, run unchanged on memory, SQLite and Redis.

Every test runs on each backend through the ``store_pair`` fixture, and the
async face is checked against the same data as the sync face.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tokenware.core.ops import Absent, Batch, Delete, Equals, Present, Put, SetAdd, SetRemove
from tokenware.errors import ValidationError
from tokenware.stores import StorePair


def put(key: str, value: bytes, ttl: float | None = None) -> Batch:
    return Batch(writes=(Put(key, value, ttl),))


def test_get_missing_is_none(store_pair: StorePair, prefix: str) -> None:
    """A key never written reads as None."""
    assert store_pair.sync.get(f"{prefix}:nope") is None


def test_put_then_get(store_pair: StorePair, prefix: str) -> None:
    """An unconditional put is applied and read back byte for byte."""
    key = f"{prefix}:k"
    value = bytes(range(256))
    assert store_pair.sync.apply(put(key, value)) is True
    assert store_pair.sync.get(key) == value


def test_put_overwrites(store_pair: StorePair, prefix: str) -> None:
    """A second put replaces the value."""
    key = f"{prefix}:k"
    store_pair.sync.apply(put(key, b"one"))
    store_pair.sync.apply(put(key, b"two"))
    assert store_pair.sync.get(key) == b"two"


def test_get_many_aligned(store_pair: StorePair, prefix: str) -> None:
    """get_many returns values aligned with the keys, None for missing ones."""
    store_pair.sync.apply(put(f"{prefix}:{{a}}", b"A"))
    store_pair.sync.apply(put(f"{prefix}:{{c}}", b"C"))
    keys = [f"{prefix}:{{a}}", f"{prefix}:{{b}}", f"{prefix}:{{c}}"]
    assert store_pair.sync.get_many(keys) == [b"A", None, b"C"]
    assert store_pair.sync.get_many([]) == []


@pytest.mark.parametrize(
    ("guard", "holds"),
    [
        pytest.param("absent-missing", True, id="absent-on-missing"),
        pytest.param("absent-present", False, id="absent-on-present"),
        pytest.param("present-missing", False, id="present-on-missing"),
        pytest.param("present-present", True, id="present-on-present"),
        pytest.param("equals-same", True, id="equals-same-bytes"),
        pytest.param("equals-other", False, id="equals-other-bytes"),
        pytest.param("equals-missing", False, id="equals-on-missing"),
        pytest.param("equals-prefix", False, id="equals-prefix-of-value"),
    ],
)
def test_guards(store_pair: StorePair, prefix: str, guard: str, holds: bool) -> None:
    """Each guard kind holds exactly when its condition does, and gates the writes."""
    have = f"{prefix}:{{g}}:have"
    missing = f"{prefix}:{{g}}:missing"
    target = f"{prefix}:{{g}}:target"
    store_pair.sync.apply(put(have, b"value"))
    guards = {
        "absent-missing": Absent(missing),
        "absent-present": Absent(have),
        "present-missing": Present(missing),
        "present-present": Present(have),
        "equals-same": Equals(have, b"value"),
        "equals-other": Equals(have, b"other"),
        "equals-missing": Equals(missing, b"value"),
        "equals-prefix": Equals(have, b"val"),
    }
    batch = Batch(guards=(guards[guard],), writes=(Put(target, b"written"),))
    assert store_pair.sync.apply(batch) is holds
    assert store_pair.sync.get(target) == (b"written" if holds else None)


def test_failed_guard_writes_nothing(store_pair: StorePair, prefix: str) -> None:
    """When one guard of several fails, none of the writes happen."""
    a, b, s = f"{prefix}:{{x}}:a", f"{prefix}:{{x}}:b", f"{prefix}:{{x}}:s"
    store_pair.sync.apply(put(a, b"1"))
    batch = Batch(
        guards=(Present(a), Present(b)),
        writes=(Delete(a), Put(b, b"2"), SetAdd(s, "m")),
    )
    assert store_pair.sync.apply(batch) is False
    assert store_pair.sync.get(a) == b"1"
    assert store_pair.sync.get(b) is None
    assert store_pair.sync.members(s) == frozenset()


def test_batch_applies_all_writes(store_pair: StorePair, prefix: str) -> None:
    """A batch whose guards hold applies every write, in order."""
    a, b, s = f"{prefix}:{{y}}:a", f"{prefix}:{{y}}:b", f"{prefix}:{{y}}:s"
    store_pair.sync.apply(put(a, b"1"))
    batch = Batch(
        guards=(Equals(a, b"1"), Absent(b)),
        writes=(Delete(a), Put(b, b"2"), SetAdd(s, "m1"), SetAdd(s, "m2"), SetRemove(s, "m1")),
    )
    assert store_pair.sync.apply(batch) is True
    assert store_pair.sync.get(a) is None
    assert store_pair.sync.get(b) == b"2"
    assert store_pair.sync.members(s) == frozenset({"m2"})


def test_delete_missing_is_noop(store_pair: StorePair, prefix: str) -> None:
    """Deleting a key that does not exist succeeds and changes nothing."""
    assert store_pair.sync.apply(Batch(writes=(Delete(f"{prefix}:gone"),))) is True


def test_set_members_unicode(store_pair: StorePair, prefix: str) -> None:
    """Set members round-trip as str, including non-ASCII text."""
    key = f"{prefix}:set"
    for member in ("a", "ü-ñ", "雪"):
        store_pair.sync.apply(Batch(writes=(SetAdd(key, member),)))
    assert store_pair.sync.members(key) == frozenset({"a", "ü-ñ", "雪"})


def test_last_member_removed_deletes_set(store_pair: StorePair, prefix: str) -> None:
    """Removing the last member leaves no key behind."""
    key = f"{prefix}:set"
    store_pair.sync.apply(Batch(writes=(SetAdd(key, "only", 60),)))
    store_pair.sync.apply(Batch(writes=(SetRemove(key, "only"),)))
    assert store_pair.sync.members(key) == frozenset()
    assert store_pair.sync.apply(Batch(guards=(Absent(key),), writes=(Put(key, b"v"),))) is True


def test_set_counts_as_present_but_never_equals(store_pair: StorePair, prefix: str) -> None:
    """A key holding a set is present, reads as no value and equals no bytes."""
    key = f"{prefix}:{{z}}:set"
    store_pair.sync.apply(Batch(writes=(SetAdd(key, "m"),)))
    assert store_pair.sync.get(key) is None
    assert store_pair.sync.apply(Batch(guards=(Present(key),), writes=(SetAdd(key, "n"),)))
    assert not store_pair.sync.apply(Batch(guards=(Equals(key, b"m"),), writes=(Delete(key),)))


def test_ttl_reported(store_pair: StorePair, prefix: str) -> None:
    """ttl() reports the seconds left, None without expiry or for missing keys."""
    key, forever = f"{prefix}:t", f"{prefix}:f"
    store_pair.sync.apply(put(key, b"v", ttl=100))
    store_pair.sync.apply(put(forever, b"v"))
    left = store_pair.sync.ttl(key)
    assert left is not None and 98 <= left <= 100
    assert store_pair.sync.ttl(forever) is None
    assert store_pair.sync.ttl(f"{prefix}:missing") is None


def test_ttl_expires_value_and_set(store_pair: StorePair, prefix: str) -> None:
    """Values and sets with a TTL vanish once it passes, on every backend's clock."""
    key, s = f"{prefix}:{{e}}:v", f"{prefix}:{{e}}:s"
    store_pair.sync.apply(Batch(writes=(Put(key, b"v", 0.3), SetAdd(s, "m", 0.3))))
    assert store_pair.sync.get(key) == b"v"
    time.sleep(0.5)
    assert store_pair.sync.get(key) is None
    assert store_pair.sync.members(s) == frozenset()
    assert store_pair.sync.apply(Batch(guards=(Absent(key),), writes=(Put(key, b"new"),)))


def test_keep_ttl(store_pair: StorePair, prefix: str) -> None:
    """Put with keep_ttl keeps the existing expiry instead of clearing it."""
    key = f"{prefix}:k"
    store_pair.sync.apply(put(key, b"v1", ttl=100))
    store_pair.sync.apply(Batch(writes=(Put(key, b"v2", keep_ttl=True),)))
    assert store_pair.sync.get(key) == b"v2"
    left = store_pair.sync.ttl(key)
    assert left is not None and 98 <= left <= 100


def test_plain_put_resets_ttl(store_pair: StorePair, prefix: str) -> None:
    """Put without a TTL makes the key permanent, like Redis SET."""
    key = f"{prefix}:k"
    store_pair.sync.apply(put(key, b"v1", ttl=100))
    store_pair.sync.apply(put(key, b"v2"))
    assert store_pair.sync.ttl(key) is None


def test_set_ttl_only_extends(store_pair: StorePair, prefix: str) -> None:
    """SetAdd with a shorter TTL never shortens the set's life; a longer one extends it."""
    key = f"{prefix}:s"
    store_pair.sync.apply(Batch(writes=(SetAdd(key, "a", 100),)))
    store_pair.sync.apply(Batch(writes=(SetAdd(key, "b", 10),)))
    left = store_pair.sync.ttl(key)
    assert left is not None and left > 90
    store_pair.sync.apply(Batch(writes=(SetAdd(key, "c", 1000),)))
    left = store_pair.sync.ttl(key)
    assert left is not None and left > 990


def test_set_without_ttl_persists(store_pair: StorePair, prefix: str) -> None:
    """SetAdd without a TTL makes the set permanent."""
    key = f"{prefix}:s"
    store_pair.sync.apply(Batch(writes=(SetAdd(key, "a", 100),)))
    store_pair.sync.apply(Batch(writes=(SetAdd(key, "b"),)))
    assert store_pair.sync.ttl(key) is None
    assert store_pair.sync.members(key) == frozenset({"a", "b"})


def test_purge_prefix_only(store_pair: StorePair, prefix: str) -> None:
    """purge() deletes exactly the keys under the prefix, values and sets alike."""
    store_pair.sync.apply(put(f"{prefix}:a:1", b"1"))
    store_pair.sync.apply(put(f"{prefix}:a:2", b"2"))
    store_pair.sync.apply(Batch(writes=(SetAdd(f"{prefix}:a:s", "m"),)))
    store_pair.sync.apply(put(f"{prefix}:b:1", b"keep"))
    store_pair.sync.apply(put(f"{prefix}:ab", b"keep"))
    assert store_pair.sync.purge(f"{prefix}:a:") == 3
    assert store_pair.sync.get(f"{prefix}:a:1") is None
    assert store_pair.sync.members(f"{prefix}:a:s") == frozenset()
    assert store_pair.sync.get(f"{prefix}:b:1") == b"keep"
    assert store_pair.sync.get(f"{prefix}:ab") == b"keep"


def test_purge_treats_wildcards_literally(store_pair: StorePair, prefix: str) -> None:
    """Glob and LIKE metacharacters in a prefix match only themselves."""
    store_pair.sync.apply(put(f"{prefix}:x%_*?[1]", b"1"))
    store_pair.sync.apply(put(f"{prefix}:xyz", b"keep"))
    assert store_pair.sync.purge(f"{prefix}:x%_*?[") == 1
    assert store_pair.sync.get(f"{prefix}:xyz") == b"keep"


@pytest.mark.parametrize(
    "batch",
    [
        pytest.param(Batch(), id="empty"),
        pytest.param(Batch(writes=(Put("a:{1}", b"v"), Put("a:{2}", b"v"))), id="two-hash-tags"),
        pytest.param(Batch(writes=(Put("k", b"v", 0),)), id="zero-ttl"),
        pytest.param(Batch(writes=(Put("k", b"v", -5),)), id="negative-ttl"),
        pytest.param(Batch(writes=(SetAdd("k", "m", 0),)), id="zero-set-ttl"),
    ],
)
def test_bad_batches_refused(store_pair: StorePair, batch: Batch) -> None:
    """Batches no backend could run atomically everywhere are refused up front."""
    with pytest.raises(ValidationError):
        store_pair.sync.apply(batch)


def test_async_face_shares_data(store_pair: StorePair, prefix: str) -> None:
    """The async face reads what the sync face wrote, and the other way round."""
    key, other, s = f"{prefix}:{{q}}:a", f"{prefix}:{{q}}:b", f"{prefix}:{{q}}:s"
    store_pair.sync.apply(put(key, b"from-sync"))

    async def scenario() -> None:
        aio = store_pair.aio
        assert await aio.get(key) == b"from-sync"
        assert await aio.get_many([key, other]) == [b"from-sync", None]
        batch = Batch(
            guards=(Equals(key, b"from-sync"),),
            writes=(Put(other, b"from-async", 50), SetAdd(s, "m")),
        )
        assert await aio.apply(batch) is True
        assert await aio.members(s) == frozenset({"m"})
        left = await aio.ttl(other)
        assert left is not None and 48 <= left <= 50
        assert await aio.purge(f"{prefix}:nothing-here:") == 0
        await aio.aclose()

    asyncio.run(scenario())
    assert store_pair.sync.get(other) == b"from-async"
    # A second event loop must work too: apps and tests call asyncio.run repeatedly.
    assert asyncio.run(store_pair.aio.get(other)) == b"from-async"


def test_concurrent_compare_and_set_has_one_winner(store_pair: StorePair, prefix: str) -> None:
    """Many threads racing one compare-and-delete: exactly one succeeds."""
    from concurrent.futures import ThreadPoolExecutor

    key = f"{prefix}:once"
    store_pair.sync.apply(put(key, b"code"))
    batch = Batch(guards=(Equals(key, b"code"),), writes=(Delete(key),))
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda _: store_pair.sync.apply(batch), range(64)))
    assert results.count(True) == 1


def test_concurrent_async_compare_and_set_has_one_winner(
    store_pair: StorePair, prefix: str
) -> None:
    """Many tasks racing one compare-and-delete on the async face: exactly one succeeds."""
    key = f"{prefix}:once"
    store_pair.sync.apply(put(key, b"code"))
    batch = Batch(guards=(Equals(key, b"code"),), writes=(Delete(key),))

    async def race() -> list[bool]:
        results = await asyncio.gather(*(store_pair.aio.apply(batch) for _ in range(64)))
        await store_pair.aio.aclose()
        return list(results)

    assert asyncio.run(race()).count(True) == 1
