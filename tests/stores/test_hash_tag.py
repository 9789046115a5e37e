"""hash_tag follows Redis Cluster's own rule, so check_batch agrees with the server."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenware.stores.base import hash_tag

key_slot = pytest.importorskip("redis.crc").key_slot


@pytest.mark.parametrize(
    ("key", "tag"),
    [
        ("plain", "plain"),
        ("tw:s:{abc}:x", "abc"),
        ("{}{x}", "{}{x}"),  # empty first tag: Redis hashes the whole key
        ("a{{b}", "{b"),  # the first "{" and the first "}" after it
        ("a{b}{c}", "b"),
        ("a}b{c", "a}b{c"),  # no "}" after the "{"
        ("{x", "{x"),
    ],
)
def test_known_keys(key: str, tag: str) -> None:
    assert hash_tag(key) == tag
    assert key_slot(hash_tag(key).encode()) == key_slot(key.encode())


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet="ab{}:", max_size=12))
def test_the_slot_of_the_tag_is_the_slot_of_the_key(key: str) -> None:
    # redis-py computes slots exactly as the server does.
    assert key_slot(hash_tag(key).encode()) == key_slot(key.encode())
