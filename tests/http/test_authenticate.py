"""``tw.authenticate``: dispatch on token shape and the bounded JWT cache."""

from __future__ import annotations

import asyncio

import pytest

from tokenware import Tokenware
from tokenware.core.jwt import AccessTokenCodec
from tokenware.errors import ConfigurationError, ExpiredToken, InvalidToken, RevokedToken
from tokenware.jwt import Jwt
from tokenware.testing import FrozenClock, make_secret_key


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def tw(clock: FrozenClock) -> Tokenware:
    return Tokenware(store="memory://", secret_key=make_secret_key(), clock=clock)


def _count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    # decode_ascii: every verification goes through it (decode calls it; the
    # cached path hands it the bytes it hashed).
    calls: list[str] = []
    original = AccessTokenCodec.decode_ascii

    def counting(self: AccessTokenCodec, raw: bytes, **kwargs: object) -> object:
        calls.append("decode")
        return original(self, raw, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(AccessTokenCodec, "decode_ascii", counting)
    return calls


def test_dispatches_jwt_pat_and_session(tw: Tokenware) -> None:
    pair = tw.jwt.issue("alice", scopes=["read"])
    identity = tw.authenticate(f"Bearer {pair.access_token}")
    expected = ("jwt", "alice", frozenset({"read"}))
    assert (identity.kind, identity.subject, identity.scopes) == expected
    pat = tw.pats.issue("bob", roles=["admin"])
    assert tw.authenticate(f"bearer {pat.token}").kind == "pat"
    session = tw.sessions.add("carol")
    assert tw.authenticate(f"Bearer {session.key}").subject == "carol"
    with pytest.raises(InvalidToken):
        tw.authenticate("Bearer a.b.c")
    with pytest.raises(InvalidToken):
        tw.authenticate("Bearer opaque-garbage")


def test_async_dispatch(tw: Tokenware) -> None:
    pair = tw.jwt.issue("alice")
    identity = asyncio.run(tw.aio.authenticate(f"Bearer {pair.access_token}"))
    assert identity.subject == "alice"


def test_repeated_jwt_is_served_from_the_cache_until_exp(
    tw: Tokenware, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    pair = tw.jwt.issue("alice")
    calls = _count_decodes(monkeypatch)
    for _ in range(5):
        tw.authenticate(f"Bearer {pair.access_token}")
    assert calls == ["decode"]
    exp = tw.authenticate(f"Bearer {pair.access_token}").expires_at
    assert exp is not None
    clock.set(exp)  # at exp the cache no longer answers; the codec decides (leeway)
    tw.authenticate(f"Bearer {pair.access_token}")
    assert len(calls) == 2
    clock.set(exp + 3600)
    with pytest.raises(ExpiredToken):
        tw.authenticate(f"Bearer {pair.access_token}")


def test_cache_never_skips_the_family_check(clock: FrozenClock) -> None:
    tw = Tokenware(
        store="memory://", secret_key=make_secret_key(), clock=clock, jwt_check_family=True
    )
    pair = tw.jwt.issue("alice")
    header = f"Bearer {pair.access_token}"
    tw.authenticate(header)
    tw.authenticate(header)
    assert tw.jwt.revoke(pair.refresh_token)
    with pytest.raises(RevokedToken):
        tw.authenticate(header)


def test_cache_is_bounded_and_can_be_turned_off(
    clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    tw = Tokenware(store="memory://", secret_key=make_secret_key(), clock=clock, jwt_cache_size=3)
    tokens = [tw.jwt.issue(f"u{i}").access_token for i in range(10)]
    for token in tokens:
        tw.authenticate(f"Bearer {token}")
    assert tw.jwt._cache is not None and len(tw.jwt._cache) == 3
    off = Tokenware(store="memory://", secret_key=make_secret_key(), clock=clock, jwt_cache_size=0)
    token = off.jwt.issue("alice").access_token
    calls = _count_decodes(monkeypatch)
    off.authenticate(f"Bearer {token}")
    off.authenticate(f"Bearer {token}")
    assert calls == ["decode", "decode"]
    with pytest.raises(ConfigurationError):
        Jwt.over(tw, cache_size=-1)


def test_a_forged_twin_is_not_served_from_the_cache(tw: Tokenware) -> None:
    token = tw.jwt.issue("alice").access_token
    tw.authenticate(f"Bearer {token}")
    head, payload, signature = token.split(".")
    forged = f"{head}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    with pytest.raises(InvalidToken):
        tw.authenticate(f"Bearer {forged}")
