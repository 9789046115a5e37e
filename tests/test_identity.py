"""Identity: the fast constructor verifiers use builds exactly what ``Identity(...)`` builds."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import pytest

from tokenware.identity import Identity, verified_identity


def test_verified_identity_sets_every_field_the_dataclass_has() -> None:
    # If a field is added to Identity, verified_identity must learn it too.
    assert [f.name for f in dataclasses.fields(Identity)] == [
        "subject",
        "kind",
        "scopes",
        "token_id",
        "claims",
        "expires_at",
        "is_admin",
    ]


@pytest.mark.parametrize(
    "fields",
    [
        {
            "subject": "alice",
            "kind": "jwt",
            "scopes": frozenset({"read", "write"}),
            "token_id": "j1",
            "claims": MappingProxyType({"sub": "alice", "x": [1]}),
            "expires_at": 1_800_000_000.0,
            "is_admin": False,
        },
        {
            "subject": "bob",
            "kind": "pat",
            "scopes": frozenset(),
            "token_id": None,
            "claims": {},
            "expires_at": None,
            "is_admin": True,
        },
    ],
)
def test_verified_identity_equals_the_constructors(fields: dict[str, object]) -> None:
    fast = verified_identity(**fields)  # type: ignore[arg-type]
    slow = Identity(**fields)  # type: ignore[arg-type]
    assert type(fast) is Identity
    assert fast == slow
    assert repr(fast) == repr(slow)
    for name, value in fields.items():
        assert getattr(fast, name) is value
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.subject = "mallory"  # type: ignore[misc]
    assert dataclasses.replace(fast, subject="carol").subject == "carol"
