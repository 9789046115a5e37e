"""Fuzzing session tokens (``tws_``) and short-lived value handles.

Documented (``tw.sessions``): ``NotFound`` for a missing or malformed id,
key or handle, ``ValidationError`` for bad arguments (non-JSON ``attrs``, a
non-string key); through ``tw.authenticate`` a refused key is ``InvalidToken``.
"""

from __future__ import annotations

import json
from typing import Any

from _fuzz_helpers import BASE62, FUZZ, any_text, fuzz, make_tw, mutated, near, outcome
from hypothesis import assume, given
from hypothesis import strategies as st

from tokenware import Identity
from tokenware.core.session import ID_LENGTH, SECRET_LENGTH
from tokenware.errors import InvalidRequest, InvalidToken, NotFound, ValidationError

TW = make_tw()
SESSION = TW.sessions.add("sam", {"plan": "pro"}, ttl=3600)
KEY = SESSION.key
assert KEY is not None
HANDLE = TW.sessions.make_hash({"next": "/home"}, ttl=3600)
base62 = st.text(st.sampled_from(BASE62), max_size=90)
keys = st.one_of(
    any_text(),
    st.builds(str.__add__, st.sampled_from(["tws_", "TWS_", "tws", "twp_", ""]), base62),
    st.builds(str.__add__, st.just("tws_"), near(ID_LENGTH + SECRET_LENGTH, base62)),
    st.builds(str.__add__, st.just("tws_"), near(ID_LENGTH + SECRET_LENGTH, any_text(4))),
    mutated(KEY, alphabet=BASE62),
)
#: JSON-ish attrs, including what is not JSON: NaN, lone surrogates, non-str keys.
attrs = st.one_of(
    st.dictionaries(
        st.text(max_size=6),
        st.recursive(
            st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=6)),
            lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner),
            max_leaves=4,
        ),
        max_size=3,
    ),
    st.sampled_from([None, {1: "int key"}, {"t": (1, 2)}, {"s": {1, 2}}, [], "str", {"b": b"x"}]),
)


@FUZZ
@given(key=keys)
def test_forged_keys_are_not_found(key: str) -> None:
    assume(key != KEY)
    result = outcome(lambda: TW.sessions.get_by_key(key), NotFound)
    assert isinstance(result, NotFound)
    assert isinstance(outcome(lambda: TW.sessions.delete_by_key(key), NotFound), NotFound)
    identity = outcome(lambda: TW.authenticate("Bearer " + key), InvalidToken, InvalidRequest)
    # Only the real key between optional whitespace of the header authenticates.
    assert isinstance(identity, Identity) == (key.lstrip(" ").rstrip(" \t") == KEY)
    # The real session was never touched by any of it.
    assert TW.sessions.get_by_key(KEY).id == SESSION.id


@fuzz(0.1)
@given(
    value=st.one_of(
        any_text(),
        base62,
        mutated(SESSION.id, alphabet=BASE62),
        mutated(HANDLE, alphabet=BASE62),
    )
)
def test_random_ids_and_handles_are_not_found(value: str) -> None:
    assert isinstance(outcome(lambda: TW.sessions.get(value), NotFound), NotFound)
    assert isinstance(outcome(lambda: TW.sessions.get_hash(value), NotFound), NotFound)


@fuzz(0.1)
@given(owner=st.one_of(any_text(20), st.just("sam")), value=attrs)
def test_add_then_get_by_key_round_trips_attrs(owner: str, value: Any) -> None:
    made = outcome(lambda: TW.sessions.add(owner, value, ttl=60), ValidationError)
    if isinstance(made, ValidationError):
        return
    assert made.key is not None and made.key.startswith("tws_")
    assert len(made.key) == 4 + ID_LENGTH + SECRET_LENGTH
    again = TW.sessions.get_by_key(made.key)
    assert (again.id, again.owner_id, again.attrs) == (made.id, owner, made.attrs)
    assert again.attrs == json.loads(json.dumps(value or {}))
    identity = TW.authenticate("Bearer " + made.key)
    assert (identity.kind, identity.subject, identity.token_id) == ("session", owner, made.id)
    TW.sessions.delete(made.id)


@fuzz(0.1)
@given(value=st.one_of(attrs, st.floats(), st.text(max_size=8), st.integers()))
def test_make_hash_then_get_hash_round_trips(value: Any) -> None:
    handle = outcome(lambda: TW.sessions.make_hash(value, ttl=60), ValidationError)
    if isinstance(handle, ValidationError):
        return
    assert TW.sessions.get_hash(handle) == json.loads(json.dumps(value))
    TW.sessions.delete_hash(handle)
    assert isinstance(outcome(lambda: TW.sessions.get_hash(handle), NotFound), NotFound)
