"""``tw.jwt`` and ``tw.aio.jwt`` on every backend, with the real access-token codec.

Covers the public service (issue, verify, refresh, revoke, revoke_all,
jwks), the async face over the same data, 50 concurrent refreshes of one
token on threads and on asyncio, and the refresh-token rows of the hostile
table (security.md §4 D, cases 58-69) as one parametrized test named by
case number.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from _support import backend_url, raw_redis, redis_keys

import tokenware
from tokenware import Tokenware
from tokenware.core.ops import Batch
from tokenware.core.refresh import format_refresh_token, parse_refresh_token
from tokenware.errors import (
    ExpiredToken,
    InvalidToken,
    RefreshTokenNotFound,
    RefreshTokenReused,
    RevokedToken,
    StoreUnavailable,
    TokensMismatch,
    ValidationError,
)
from tokenware.identity import Identity
from tokenware.jwt import Jwt, TokenPair
from tokenware.stores import StorePair, store_from_url
from tokenware.stores.base import hash_tag
from tokenware.testing import FrozenClock, make_secret_key

#: What refresh() may raise; anything else is a bug.
REFRESH_ERRORS = (RefreshTokenNotFound, RefreshTokenReused, TokensMismatch, StoreUnavailable)


class ProxyStore:
    """A sync store that counts calls and can fail ``apply`` before or after it runs."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[str] = []
        self.fail: str | None = None  # "before": store down; "after": reply lost

    def get(self, key: str) -> bytes | None:
        self.calls.append("get")
        self._down()
        return self.inner.get(key)  # type: ignore[no-any-return]

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        self.calls.append("get_many")
        self._down()
        return self.inner.get_many(keys)  # type: ignore[no-any-return]

    def members(self, key: str) -> frozenset[str]:
        self.calls.append("members")
        self._down()
        return self.inner.members(key)  # type: ignore[no-any-return]

    def apply(self, batch: Batch) -> bool:
        self.calls.append("apply")
        self._down()
        result = self.inner.apply(batch)
        if self.fail == "after":
            self.fail = None
            raise StoreUnavailable("reply lost after the write ran")
        return bool(result)

    def purge(self, prefix: str) -> int:
        return self.inner.purge(prefix)  # type: ignore[no-any-return]

    def ttl(self, key: str) -> float | None:
        return self.inner.ttl(key)  # type: ignore[no-any-return]

    def close(self) -> None:
        self.inner.close()

    def _down(self) -> None:
        if self.fail == "before":
            raise StoreUnavailable("store down")


@pytest.fixture
def stores(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, clock: FrozenClock
) -> Iterator[StorePair]:
    """A fresh store; memory and SQLite expire by ``clock``, Redis by its own."""
    if backend == "memory":
        pair = store_from_url("memory://", clock=clock)
    elif backend == "sqlite":
        pair = store_from_url(f"sqlite:///{tmp_path / 'store.db'}", clock=clock, timeout=10)
    else:
        pair = store_from_url(backend_url(backend, request), timeout=10)
    try:
        yield pair
    finally:
        pair.sync.close()


@pytest.fixture
def proxy(stores: StorePair) -> ProxyStore:
    return ProxyStore(stores.sync)


@pytest.fixture
def tw(stores: StorePair, proxy: ProxyStore, clock: FrozenClock, prefix: str) -> Tokenware:
    pair = StorePair(url=stores.url, sync=proxy, aio=stores.aio)
    return Tokenware(store=pair, secret_key=make_secret_key(), clock=clock, key_prefix=prefix)


def family_of(token: str) -> str:
    parts = parse_refresh_token(token)
    assert parts is not None
    return parts.family


def record(tw: Tokenware, token: str) -> dict[str, Any] | None:
    """The stored family record of ``token`` (test-only peek)."""
    raw = tw.stores.sync.get(tw.jwt._rules.family_key(family_of(token)))
    return None if raw is None else json.loads(raw)


# --- the service --------------------------------------------------------------------


def test_issue_and_verify(tw: Tokenware, clock: FrozenClock) -> None:
    pair = tw.jwt.issue("alice", scopes=["read", "write"], claims={"plan": "pro"})
    assert isinstance(pair, TokenPair) and pair.token_type == "Bearer"
    assert pair.refresh_token.startswith("twr_")
    assert pair.access_token_expires_at == int(clock()) + 900
    assert pair.refresh_token_expires_at == clock() + 1500
    who = tw.jwt.verify(pair.access_token)
    assert isinstance(who, Identity)
    assert who.subject == "alice" and who.kind == "jwt"
    assert who.scopes == frozenset({"read", "write"})
    assert who.claims.get("plan") == "pro"
    assert who.claims.get("sid") == family_of(pair.refresh_token)
    assert who.expires_at == pair.access_token_expires_at
    assert who.token_id


def test_prolong(tw: Tokenware, clock: FrozenClock) -> None:
    pair = tw.jwt.issue("alice", prolong=True)
    assert pair.access_token_expires_at == int(clock()) + 3600
    assert pair.refresh_token_expires_at == clock() + 7 * 24 * 3600
    nxt = tw.jwt.refresh(pair.refresh_token, pair.access_token)
    assert nxt.refresh_token_expires_at == clock() + 7 * 24 * 3600  # prolong is kept


def test_access_token_expiry_follows_the_clock(tw: Tokenware, clock: FrozenClock) -> None:
    pair = tw.jwt.issue("alice")
    clock.advance(900 + 31)  # past exp and the default 30 s leeway
    with pytest.raises(ExpiredToken) as err:
        tw.jwt.verify(pair.access_token)
    assert err.value.status_code == 401
    # The refresh token (25 min) still renews it, with the expired access token paired.
    nxt = tw.jwt.refresh(pair.refresh_token, pair.access_token)
    assert tw.jwt.verify(nxt.access_token).subject == "alice"


def test_refresh_chain_keeps_the_login(tw: Tokenware, clock: FrozenClock) -> None:
    pair = tw.jwt.issue("alice", scopes=["read"], claims={"plan": "pro"})
    sid = family_of(pair.refresh_token)
    jtis = set()
    for _ in range(5):
        clock.advance(600)
        pair = tw.jwt.refresh(pair.refresh_token, pair.access_token)
        who = tw.jwt.verify(pair.access_token)
        assert (who.subject, set(who.scopes), who.claims.get("plan")) == ("alice", {"read"}, "pro")
        assert who.claims.get("sid") == sid
        jtis.add(who.token_id)
    assert len(jtis) == 5


def test_lifetimes_are_configurable(tw: Tokenware, clock: FrozenClock) -> None:
    jwt = Jwt.over(tw, access_ttl=60, refresh_ttl=120, grace=0)
    pair = jwt.issue("alice")
    assert pair.access_token_expires_at == int(clock()) + 60
    assert pair.refresh_token_expires_at == clock() + 120
    assert tw.jwt.verify(pair.access_token).subject == "alice"  # same keys
    ajwt = Jwt.over(tw.aio, access_ttl=60)
    assert asyncio.run(ajwt.verify(pair.access_token)).subject == "alice"


def test_async_face_shares_the_data(tw: Tokenware) -> None:
    first = tw.jwt.issue("alice")

    async def go() -> TokenPair:
        second = await tw.aio.jwt.refresh(first.refresh_token, first.access_token)
        assert (await tw.aio.jwt.verify(second.access_token)).subject == "alice"
        assert await tw.aio.jwt.jwks() == tw.jwt.jwks()
        third = await tw.aio.jwt.issue("alice")
        assert await tw.aio.jwt.revoke(third.refresh_token) is True
        return second

    second = asyncio.run(go())
    nxt = tw.jwt.refresh(second.refresh_token)
    assert asyncio.run(tw.aio.jwt.revoke_all("alice")) == 1
    with pytest.raises(RefreshTokenNotFound):
        tw.jwt.refresh(nxt.refresh_token)


def test_revoke_and_revoke_all(tw: Tokenware) -> None:
    a, b = tw.jwt.issue("alice"), tw.jwt.issue("alice")
    bob = tw.jwt.issue("bob")
    assert tw.jwt.revoke(a.refresh_token) is True
    assert tw.jwt.revoke(a.refresh_token) is False
    assert tw.jwt.revoke("twr_nonsense") is False
    assert tw.jwt.revoke_all("alice") == 1
    for p in (a, b):
        with pytest.raises(RefreshTokenNotFound):
            tw.jwt.refresh(p.refresh_token)
    assert tw.jwt.refresh(bob.refresh_token)


def test_revoke_all_of_a_glob_leaves_bob_alone(tw: Tokenware) -> None:
    """authomatic: invalidateAllRefreshTokens('bo*') deleted bob's and bobby's tokens."""
    bob, bobby = tw.jwt.issue("bob"), tw.jwt.issue("bobby")
    assert tw.jwt.revoke_all("bo*") == 0
    assert tw.jwt.refresh(bob.refresh_token)
    assert tw.jwt.refresh(bobby.refresh_token)


def test_check_family_revokes_access_tokens_at_once(tw: Tokenware) -> None:
    strict = Jwt.over(tw, check_family=True)
    pair = strict.issue("alice")
    assert strict.verify(pair.access_token).subject == "alice"
    strict.revoke(pair.refresh_token)
    with pytest.raises(RevokedToken) as err:
        strict.verify(pair.access_token)
    assert err.value.status_code == 401
    assert tw.jwt.verify(pair.access_token).subject == "alice"  # default: until it expires


def test_jwks_is_empty_for_hs256(tw: Tokenware) -> None:
    assert tw.jwt.jwks() == {"keys": []}


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA"])
def test_jwks_for_asymmetric_keys(algorithm: str, clock: FrozenClock) -> None:
    tw = Tokenware(
        store="memory://", secret_key=make_secret_key(), clock=clock, jwt_algorithm=algorithm
    )
    keys = tw.jwt.jwks()["keys"]
    assert keys and all("d" not in k for k in keys)
    pair = tw.jwt.issue("alice")
    assert tw.jwt.verify(pair.access_token).subject == "alice"
    assert tw.jwt.refresh(pair.refresh_token, pair.access_token)


def test_bad_arguments(tw: Tokenware) -> None:
    with pytest.raises(ValidationError):
        tw.jwt.issue("")
    with pytest.raises(ValidationError):
        tw.jwt.issue("alice", scopes="read")
    with pytest.raises(ValidationError):
        tw.jwt.issue("alice", claims={"x": object()})
    with pytest.raises(ValidationError):
        tw.jwt.refresh(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidToken):
        tw.jwt.verify("not a token")


def test_token_pair_exported_and_repr_hides_tokens(tw: Tokenware) -> None:
    assert tokenware.TokenPair is TokenPair
    pair = tw.jwt.issue("alice")
    assert pair.access_token not in repr(pair) and pair.refresh_token not in repr(pair)
    assert "access_token_expires_at" in repr(pair)


# --- 50 concurrent refreshes of one token ----------------------------------------------

N = 50


def check_race(tw: Tokenware, start: TokenPair, outcomes: list[object]) -> int:
    """Assert the invariant after a race; return how many calls got a pair.

    Every call got a pair or a documented error. Of the pairs handed out, at
    most one carries the family's current token: every other one is in the
    family's history, so presenting it is reuse. Then every returned token
    is tried in random order: at most one refresh succeeds.
    """
    for outcome in outcomes:
        assert isinstance(outcome, (TokenPair, *REFRESH_ERRORS)), repr(outcome)
    pairs = [o for o in outcomes if isinstance(o, TokenPair)]
    tokens = [p.refresh_token for p in pairs]
    assert len(set(tokens)) == len(tokens)
    rec = record(tw, start.refresh_token)
    ids = [token[4 + 22 : 4 + 44] for token in tokens]
    if rec is None:  # the race itself revoked the family (possible with grace=0)
        live = []
    else:
        assert rec["cur"]["id"] not in {start.refresh_token[26:48]}
        live = [i for i in ids if i == rec["cur"]["id"]]
        history = {i for i, _ in rec["old"]}
        assert all(i in history for i in ids if i != rec["cur"]["id"])
    # Exactly one returned pair holds the live branch (the last successful
    # rotation), unless the race ended in a reuse revocation.
    assert len(live) == (1 if rec is not None and pairs else 0)
    order = list(pairs)
    random.shuffle(order)
    successes = 0
    for p in order:
        try:
            tw.jwt.refresh(p.refresh_token, p.access_token)
            successes += 1
        except (RefreshTokenReused, RefreshTokenNotFound):
            pass
    # Only the live token can refresh, and only if it goes first: any dead
    # branch presented before it is reuse and takes the family down.
    first_is_live = bool(order) and bool(live) and order[0].refresh_token[26:48] == live[0]
    assert successes == (1 if first_is_live else 0)
    return len(pairs)


def race_threads(tw: Tokenware, call: Callable[[], TokenPair], n: int = N) -> list[object]:
    barrier = threading.Barrier(n)
    outcomes: list[object] = [None] * n

    def worker(i: int) -> None:
        barrier.wait()
        try:
            outcomes[i] = call()
        except Exception as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


@pytest.mark.parametrize("paired", [False, True], ids=["alone", "paired"])
def test_50_threads_refresh_one_token(tw: Tokenware, paired: bool) -> None:
    start = tw.jwt.issue("alice")
    access = start.access_token if paired else None
    outcomes = race_threads(tw, lambda: tw.jwt.refresh(start.refresh_token, access))
    got = check_race(tw, start, outcomes)
    assert got >= 1  # within grace the first call wins and retries branch


@pytest.mark.parametrize("paired", [False, True], ids=["alone", "paired"])
def test_50_asyncio_refreshes_of_one_token(tw: Tokenware, paired: bool) -> None:
    start = tw.jwt.issue("alice")
    access = start.access_token if paired else None

    async def go() -> list[object]:
        calls = [tw.aio.jwt.refresh(start.refresh_token, access) for _ in range(N)]
        return list(await asyncio.gather(*calls, return_exceptions=True))

    outcomes = asyncio.run(go())
    assert check_race(tw, start, outcomes) >= 1


def test_50_threads_without_grace(tw: Tokenware) -> None:
    """No grace: one call rotates, any later one is reuse and revokes the family."""
    jwt = Jwt.over(tw, grace=0)
    start = jwt.issue("alice")
    outcomes = race_threads(tw, lambda: jwt.refresh(start.refresh_token))
    got = check_race(tw, start, outcomes)
    assert got >= 1
    reused = [o for o in outcomes if isinstance(o, RefreshTokenReused)]
    if got < N:
        assert reused  # a loser proved possession of a rotated token
        assert record(tw, start.refresh_token) is None


# --- hostile inputs: security.md §4 D ------------------------------------------------


def case_58(tw: Tokenware, clock: FrozenClock, proxy: ProxyStore, caplog: Any) -> None:
    """Replay after grace: 401, family revoked, newest token dead, access tokens revoked."""
    strict = Jwt.over(tw, check_family=True)
    first = strict.issue("alice")
    second = strict.refresh(first.refresh_token, first.access_token)
    clock.advance(11)
    with caplog.at_level(logging.WARNING, logger="tokenware.jwt"):
        with pytest.raises(RefreshTokenReused) as err:
            strict.refresh(first.refresh_token)
    assert err.value.status_code == 401 and err.value.code == "invalid_token"
    assert any("reuse detected" in r.getMessage() for r in caplog.records)
    assert first.refresh_token not in caplog.text and "secret" not in caplog.text.lower()
    with pytest.raises(RefreshTokenNotFound):
        strict.refresh(second.refresh_token, second.access_token)
    with pytest.raises(RevokedToken):
        strict.verify(second.access_token)


def case_59(tw: Tokenware, clock: FrozenClock, proxy: ProxyStore, caplog: Any) -> None:
    """50 parallel refreshes: never two usable children (the full race is tested above)."""
    start = tw.jwt.issue("alice")
    outcomes = race_threads(tw, lambda: tw.jwt.refresh(start.refresh_token), n=N)
    check_race(tw, start, outcomes)


def case_60(tw: Tokenware, clock: FrozenClock, proxy: ProxyStore, caplog: Any) -> None:
    """Retry within grace, child unused: new child, old child dead; after use: revoked."""
    first = tw.jwt.issue("alice")
    child = tw.jwt.refresh(first.refresh_token)
    clock.advance(5)
    retry = tw.jwt.refresh(first.refresh_token)
    with pytest.raises(RefreshTokenReused):
        tw.jwt.refresh(child.refresh_token)  # the discarded child: reuse, family revoked
    with pytest.raises(RefreshTokenNotFound):
        tw.jwt.refresh(retry.refresh_token)
    # Retried after the child was used: the family is revoked.
    first = tw.jwt.issue("alice")
    child = tw.jwt.refresh(first.refresh_token)
    grandchild = tw.jwt.refresh(child.refresh_token)
    with pytest.raises(RefreshTokenReused):
        tw.jwt.refresh(first.refresh_token)
    with pytest.raises(RefreshTokenNotFound):
        tw.jwt.refresh(grandchild.refresh_token)


def case_61(tw: Tokenware, clock: FrozenClock, proxy: ProxyStore, caplog: Any) -> None:
    """A refresh token as a bearer access token, and an access JWT at refresh: rejected."""
    pair = tw.jwt.issue("alice")
    with pytest.raises(InvalidToken) as err:
        tw.jwt.verify(pair.refresh_token)
    assert err.value.status_code == 401
    proxy.calls.clear()
    with pytest.raises(RefreshTokenNotFound):
        tw.jwt.refresh(pair.access_token)
    assert proxy.calls == []  # decided before any store call
    with pytest.raises(TokensMismatch):  # swapped arguments
        tw.jwt.refresh(pair.refresh_token, pair.refresh_token)
    assert tw.jwt.refresh(pair.refresh_token, pair.access_token)


def case_62(tw: Tokenware, clock: FrozenClock, proxy: ProxyStore, caplog: Any) -> None:
    """Victim's family id (and token id) with a random secret: 401, victim not revoked."""
    victim = tw.jwt.issue("victim")
    rotated = tw.jwt.refresh(victim.refresh_token)
    parts = parse_refresh_token(rotated.refresh_token)
    old = parse_refresh_token(victim.refresh_token)
    assert parts is not None and old is not None
    for token_id in (parts.token_id, old.token_id, "A" * 22):
        forged = format_refresh_token(parts.family, token_id, "f" * 43)
        with pytest.raises(RefreshTokenNotFound) as err:
            tw.jwt.refresh(forged)
        assert err.value.status_code == 401
        assert tw.jwt.revoke(forged) is False
    assert tw.jwt.refresh(rotated.refresh_token)


def case_63(tw: Tokenware, clock: FrozenClock, proxy: ProxyStore, caplog: Any) -> None:
    """After the idle timeout or the absolute lifetime: 401 and the family is gone."""
    idle = tw.jwt.issue("alice")
    clock.advance(1500)
    with pytest.raises(RefreshTokenNotFound) as err:
        tw.jwt.refresh(idle.refresh_token)
    assert err.value.status_code == 401
    assert record(tw, idle.refresh_token) is None
    jwt = Jwt.over(tw, refresh_ttl=100, absolute_ttl=150)
    pair = jwt.issue("alice")
    clock.advance(90)
    pair = jwt.refresh(pair.refresh_token)
    clock.advance(61)  # within the idle window, past the absolute lifetime
    with pytest.raises(RefreshTokenNotFound):
        jwt.refresh(pair.refresh_token)
    assert record(tw, pair.refresh_token) is None


def case_64(tw: Tokenware, clock: FrozenClock, proxy: ProxyStore, caplog: Any) -> None:
    """After logout-all: 401."""
    pairs = [tw.jwt.issue("alice") for _ in range(3)]
    pairs[1] = tw.jwt.refresh(pairs[1].refresh_token)
    assert tw.jwt.revoke_all("alice") == 3
    for p in pairs:
        with pytest.raises(RefreshTokenNotFound):
            tw.jwt.refresh(p.refresh_token, p.access_token)


def case_65(tw: Tokenware, clock: FrozenClock, proxy: ProxyStore, caplog: Any) -> None:
    """Paired mode: another family's or a forged access token: rejected, nothing issued."""
    mine = tw.jwt.issue("alice")
    other = tw.jwt.issue("alice")
    stranger = tw.jwt.issue("mallory")
    head, body, sig = mine.access_token.split(".")
    unsigned = f"{head}.{body}."
    tampered = f"{head}.{body}.{sig[:-2]}{'AA' if sig[-2:] != 'AA' else 'BB'}"
    foreign = Tokenware(store="memory://", secret_key=b"k" * 32, clock=clock).jwt.issue("alice")
    for access in (
        other.access_token,
        stranger.access_token,
        unsigned,
        tampered,
        foreign.access_token,
    ):
        with pytest.raises(TokensMismatch) as err:
            tw.jwt.refresh(mine.refresh_token, access)
        assert err.value.status_code == 401
    assert tw.jwt.refresh(mine.refresh_token, mine.access_token)  # nothing was consumed


def case_66(tw: Tokenware, clock: FrozenClock, proxy: ProxyStore, caplog: Any) -> None:
    """Revoke-all is one atomic batch on ONE hash tag (the Cluster-safe shape).

    No 3-primary Cluster runs in the tests: what is checked is the property
    that makes it work there, that every key of the batch shares a slot.
    """
    for _ in range(4):
        tw.jwt.issue("alice")
    seen: list[Batch] = []
    inner_apply = proxy.apply

    def spy(batch: Batch) -> bool:
        seen.append(batch)
        return inner_apply(batch)

    proxy.apply = spy  # type: ignore[method-assign]
    assert tw.jwt.revoke_all("alice") == 4
    assert len(seen) == 1
    assert len({hash_tag(k) for k in seen[0].keys()}) == 1


def case_67(tw: Tokenware, clock: FrozenClock, proxy: ProxyStore, caplog: Any) -> None:
    """Store down during refresh: 503, nothing issued, the token still works afterwards."""
    pair = tw.jwt.issue("alice")
    proxy.fail = "before"
    with pytest.raises(StoreUnavailable) as err:
        tw.jwt.refresh(pair.refresh_token, pair.access_token)
    assert err.value.status_code == 503
    proxy.fail = None
    assert tw.jwt.refresh(pair.refresh_token, pair.access_token)


def case_68(tw: Tokenware, clock: FrozenClock, proxy: ProxyStore, caplog: Any) -> None:
    """Reply lost after the rotation ran; the retry within grace succeeds, one live branch."""
    pair = tw.jwt.issue("alice")
    proxy.fail = "after"
    with pytest.raises(StoreUnavailable):
        tw.jwt.refresh(pair.refresh_token, pair.access_token)
    clock.advance(3)
    retried = tw.jwt.refresh(pair.refresh_token, pair.access_token)
    rec = record(tw, retried.refresh_token)
    assert rec is not None and rec["cur"]["id"] == retried.refresh_token[26:48]
    assert len(rec["old"]) == 1  # the lost child, dead
    assert tw.jwt.refresh(retried.refresh_token, retried.access_token)


def case_69(tw: Tokenware, clock: FrozenClock, proxy: ProxyStore, caplog: Any) -> None:
    """The store holds ids and HMAC verifiers only; a dumped verifier is not a token."""
    pair = tw.jwt.issue("alice")
    nxt = tw.jwt.refresh(pair.refresh_token)
    secrets_ = [t[48:91] for t in (pair.refresh_token, nxt.refresh_token)]
    dump = dump_store(tw)
    for secret in secrets_:
        assert secret.encode() not in dump
    assert pair.refresh_token.encode() not in dump
    rec = record(tw, nxt.refresh_token)
    assert rec is not None
    verifier = rec["cur"]["ver"].partition("$")[2]
    for as_secret in (verifier[:43], verifier[-43:]):
        with pytest.raises(RefreshTokenNotFound):
            tw.jwt.refresh(
                format_refresh_token(family_of(nxt.refresh_token), rec["cur"]["id"], as_secret)
            )


def dump_store(tw: Tokenware) -> bytes:
    """Every byte tokenware wrote under its prefix: Redis KEYS/GET/SMEMBERS, SQLite file."""
    url = tw.stores.url
    prefix = tw.settings.key_prefix
    if url.startswith("redis"):
        client: Any = raw_redis(url)
        try:
            out = b""
            for key in redis_keys(client, f"{prefix}:*"):
                out += key
                if client.type(key) == b"set":
                    out += b"".join(client.smembers(key))
                else:
                    out += client.dump(key) or b""
            return out
        finally:
            client.close()
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    inner = tw.stores.sync.inner  # type: ignore[attr-defined]
    return repr(vars(inner)).encode()


HOSTILE_D = {
    58: case_58,
    59: case_59,
    60: case_60,
    61: case_61,
    62: case_62,
    63: case_63,
    64: case_64,
    65: case_65,
    66: case_66,
    67: case_67,
    68: case_68,
    69: case_69,
}


@pytest.mark.parametrize("case", sorted(HOSTILE_D), ids=lambda n: f"D{n}")
def test_hostile_refresh(
    case: int, tw: Tokenware, clock: FrozenClock, proxy: ProxyStore, caplog: Any
) -> None:
    """security.md §4 D: each case expects the safe outcome."""
    HOSTILE_D[case](tw, clock, proxy, caplog)
