"""The shortcuts in check_batch and MemoryStore.apply decide as the plain rules do.

``check_batch`` compares the keys' text up to the first key's tag before it
computes any hash tag; ``MemoryStore.apply`` decides an ``Absent`` guard on a
never-written key by one lookup and writes a plain ``Put`` without reading
the old value. Both are checked here against an independent statement of
the rule: the tag set of :func:`hash_tag`, and the SQLite store (which has
no such shortcuts) fed the same batches on the same frozen clock.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokenware.core.ops import Absent, Batch, Delete, Equals, Present, Put, SetAdd, SetRemove
from tokenware.errors import ValidationError
from tokenware.stores.base import check_batch, hash_tag
from tokenware.stores.memory import MemoryStore
from tokenware.stores.sqlite import SQLiteStore
from tokenware.testing import FrozenClock

# Keys built from the characters that decide a hash tag.
tag_keys = st.text(alphabet="ab{}:", max_size=10)


def reference(batch: Batch) -> str | None:
    """check_batch's rule as written before the shortcut: the error text, or None."""
    keys = [item.key for item in (*batch.guards, *batch.writes)]
    if not keys:
        return "empty batch"
    tags = {hash_tag(k) for k in keys}
    if len(tags) != 1:
        return f"batch keys span {len(tags)} hash tags; one is required"
    return None


@settings(max_examples=2000, deadline=None)
@given(
    guards=st.lists(st.builds(Absent, tag_keys), max_size=4),
    writes=st.lists(st.builds(Put, tag_keys, st.just(b"v")), max_size=4),
    prefix=st.sampled_from(["", "tw:{t}:", "tw:{}:", "{t}", "x{t}{u}:"]),
)
def test_check_batch_agrees_with_the_tag_set(
    guards: list[Absent], writes: list[Put], prefix: str
) -> None:
    # A shared prefix makes the one-tag case common, as in real batches.
    batch = Batch(
        tuple(Absent(prefix + g.key) for g in guards),
        tuple(Put(prefix + w.key, w.value) for w in writes),
    )
    expected = reference(batch)
    if expected is None:
        check_batch(batch)
    else:
        with pytest.raises(ValidationError, match=expected):
            check_batch(batch)


def test_check_batch_same_tag_different_text_before_it() -> None:
    """Keys whose text differs before the tag still share it (the long way)."""
    check_batch(Batch((Absent("a:{t}:1"),), (Put("b:{t}:2", b"v"),)))
    with pytest.raises(ValidationError, match="span 2 hash tags"):
        check_batch(Batch((Absent("a:{t}:1"),), (Put("a:{u}:1", b"v"),)))
    with pytest.raises(ValidationError, match="span 2 hash tags"):
        check_batch(Batch((Absent("a:{t}"),), (Put("a:{t", b"v"),)))


# --- MemoryStore.apply against SQLite, step by step ----------------------------------

KEYS = ("k:{t}:a", "k:{t}:b")
ttls = st.one_of(st.none(), st.sampled_from([1.0, 5.0, 30.0]))
guard = st.one_of(
    st.builds(Absent, st.sampled_from(KEYS)),
    st.builds(Present, st.sampled_from(KEYS)),
    st.builds(Equals, st.sampled_from(KEYS), st.sampled_from([b"1", b"2"])),
)
write = st.one_of(
    st.builds(Put, st.sampled_from(KEYS), st.sampled_from([b"1", b"2"]), ttls, st.booleans()),
    st.builds(Delete, st.sampled_from(KEYS)),
    st.builds(SetAdd, st.sampled_from(KEYS), st.sampled_from(["m", "n"]), ttls),
    st.builds(SetRemove, st.sampled_from(KEYS), st.sampled_from(["m", "n"])),
)
step = st.tuples(
    st.lists(guard, max_size=2),
    st.lists(write, min_size=1, max_size=3),
    st.sampled_from([0.0, 0.5, 2.0, 10.0]),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(step, min_size=1, max_size=12))
def test_memory_apply_matches_sqlite(tmp_path: Path, steps: list[tuple]) -> None:  # type: ignore[type-arg]
    clock = FrozenClock()
    memory = MemoryStore(clock=clock)
    path = tmp_path / f"s{id(steps)}.db"
    sqlite = SQLiteStore(path, clock=clock)
    try:
        for guards, writes, later in steps:
            batch = Batch(tuple(guards), tuple(writes))
            assert memory.apply(batch) == sqlite.apply(batch), batch
            for key in KEYS:
                assert memory.get(key) == sqlite.get(key), (batch, key)
                assert memory.members(key) == sqlite.members(key), (batch, key)
                assert memory.ttl(key) == pytest.approx(sqlite.ttl(key)), (batch, key)
            clock.advance(later)
    finally:
        sqlite.close()
        path.unlink(missing_ok=True)
