"""The refresh-token core (:mod:`tokenware.core.refresh`) on every backend.

The flows are run by the real drivers against memory, SQLite and Redis. A
tiny HMAC-signed stand-in plays the access-token codec here, so these tests
pin the family rules alone; ``test_jwt_service.py`` runs the same rules
behind ``tw.jwt`` with the real codec.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _support import backend_url

from tokenware._drive import run_async, run_sync
from tokenware.core.encoding import BASE62
from tokenware.core.flow import Flow
from tokenware.core.ops import Apply
from tokenware.core.refresh import (
    HISTORY_LIMIT,
    REFRESH_TOKEN_LENGTH,
    Lifetimes,
    RefreshRules,
    TokenPair,
    format_refresh_token,
    parse_refresh_token,
)
from tokenware.errors import (
    ConfigurationError,
    ExpiredToken,
    InvalidToken,
    RefreshTokenNotFound,
    RefreshTokenReused,
    StoreError,
    TokensMismatch,
    ValidationError,
)
from tokenware.keys import KeyRing, RootKey
from tokenware.stores import StorePair, store_from_url
from tokenware.testing import FrozenClock, make_secret_key

# --- a stand-in access-token codec --------------------------------------------


@dataclass(frozen=True)
class FakeClaims:
    subject: str
    token_id: str
    expires_at: int
    claims: Mapping[str, Any]


class FakeCodec:
    """HMAC over JSON: enough to tell genuine, forged and expired tokens apart."""

    key = b"fake-codec-key"

    def encode(
        self,
        subject: str,
        *,
        now: float,
        ttl: int,
        jti: str,
        scopes: Iterable[str] = (),
        claims: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        body = {
            "sub": subject,
            "jti": jti,
            "exp": int(now) + ttl,
            "scope": " ".join(scopes),
            **(claims or {}),
            **(extra or {}),
        }
        raw = base64.urlsafe_b64encode(json.dumps(body).encode()).decode()
        return raw + "." + hmac.new(self.key, raw.encode(), hashlib.sha256).hexdigest()

    def decode(self, token: str, *, now: float, verify_exp: bool = True) -> FakeClaims:
        raw, _, mac = token.partition(".")
        good = hmac.new(self.key, raw.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac, good):
            raise InvalidToken("bad signature")
        body = json.loads(base64.urlsafe_b64decode(raw))
        if verify_exp and now >= body["exp"]:
            raise ExpiredToken("expired")
        return FakeClaims(body["sub"], body["jti"], body["exp"], body)


# --- fixtures -------------------------------------------------------------------


@pytest.fixture
def pair(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, clock: FrozenClock
) -> Iterator[StorePair]:
    """A fresh store whose expiry follows ``clock`` (Redis: its own clock)."""
    if backend == "memory":
        stores = store_from_url("memory://", clock=clock)
    elif backend == "sqlite":
        stores = store_from_url(f"sqlite:///{tmp_path / 'store.db'}", clock=clock)
    else:
        stores = store_from_url(backend_url(backend, request))
    try:
        yield stores
    finally:
        stores.sync.close()


RING = KeyRing.from_secret(make_secret_key())


@pytest.fixture
def rules(prefix: str) -> RefreshRules:
    return RefreshRules(ring=RING, prefix=prefix, codec=FakeCodec())


class Harness:
    """Runs the flows on the sync face with the frozen clock and counts store calls."""

    def __init__(self, rules: RefreshRules, stores: StorePair, clock: FrozenClock) -> None:
        self.rules = rules
        self.stores = stores
        self.clock = clock
        self.ops: list[Any] = []

    def run(self, flow: Flow[Any]) -> Any:
        def counting() -> Flow[Any]:
            try:
                op = next(flow)
                while True:
                    self.ops.append(op)
                    try:
                        result = yield op
                    except StoreError as exc:
                        op = flow.throw(exc)
                        continue
                    op = flow.send(result)
            except StopIteration as stop:
                return stop.value

        return run_sync(counting(), self.stores.sync)

    def issue(self, subject: str = "alice", **kw: Any) -> TokenPair:
        return self.run(self.rules.issue(subject, now=self.clock(), rand=_rand, **kw))  # type: ignore[no-any-return]

    def refresh(self, token: str, access: str | None = None) -> TokenPair:
        return self.run(self.rules.refresh(token, access, now=self.clock(), rand=_rand))  # type: ignore[no-any-return]

    def revoke(self, token: str) -> bool:
        return bool(self.run(self.rules.revoke(token, now=self.clock())))

    def revoke_all(self, subject: str) -> int:
        return int(self.run(self.rules.revoke_all(subject, now=self.clock())))

    def record(self, token: str) -> dict[str, Any] | None:
        parts = parse_refresh_token(token)
        assert parts is not None
        raw = self.stores.sync.get(self.rules.family_key(parts.family))
        return None if raw is None else json.loads(raw)


def _rand(n: int) -> bytes:
    import secrets

    return secrets.token_bytes(n)


@pytest.fixture
def h(rules: RefreshRules, pair: StorePair, clock: FrozenClock) -> Harness:
    return Harness(rules, pair, clock)


# --- the format, without a store ----------------------------------------------------


def test_format_length_and_parts(h: Harness) -> None:
    """97 chars: twr_ + family + token id + 256-bit secret + CRC32; the family carries the tag."""
    issued = h.issue("alice")
    token = issued.refresh_token
    assert len(token) == REFRESH_TOKEN_LENGTH == 97
    assert token.startswith("twr_")
    parts = parse_refresh_token(token)
    assert parts is not None
    assert h.rules.index_key("alice").split("{")[1][:4] == parts.family[:4]
    assert "secret" not in repr(parts) and parts.secret not in repr(parts)


def test_checksum_catches_any_single_change() -> None:
    token = format_refresh_token("A" * 22, "B" * 22, "C" * 43)
    assert parse_refresh_token(token) is not None
    for i in range(4, len(token)):
        for repl in ("0", "z"):
            if token[i] == repl:
                continue
            assert parse_refresh_token(token[:i] + repl + token[i + 1 :]) is None


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("", id="empty"),
        pytest.param("twr_", id="prefix-only"),
        pytest.param("twp_" + "A" * 93, id="other-prefix"),
        pytest.param("TWR_" + "A" * 93, id="upper-prefix"),
        pytest.param("twr_" + "A" * 92, id="short"),
        pytest.param("twr_" + "A" * 94, id="long"),
        pytest.param("twr_" + "A" * 92 + "-", id="non-base62"),
        pytest.param("twr_" + "\uff21" * 93, id="fullwidth"),
        pytest.param("eyJhbGciOiJIUzI1NiJ9.e30.sig", id="a-jwt"),
        pytest.param("twr_" + "A" * 93, id="bad-checksum"),
    ],
)
def test_malformed_refresh_token_costs_no_store_call(h: Harness, bad: str) -> None:
    """Bad format or checksum: RefreshTokenNotFound and ZERO store operations."""
    with pytest.raises(RefreshTokenNotFound):
        h.refresh(bad)
    assert h.revoke(bad) is False
    assert h.ops == []


def test_non_string_is_a_validation_error(h: Harness) -> None:
    with pytest.raises(ValidationError):
        h.refresh(12345)  # type: ignore[arg-type]


def test_lifetimes_validated() -> None:
    with pytest.raises(ConfigurationError):
        Lifetimes(access=0)
    with pytest.raises(ConfigurationError):
        Lifetimes(grace=61)
    with pytest.raises(ConfigurationError):
        Lifetimes(refresh=1.5)  # type: ignore[arg-type]
    assert Lifetimes(absolute=None).absolute is None


def test_token_pair_repr_hides_tokens(h: Harness) -> None:
    issued = h.issue()
    text = repr(issued)
    assert issued.access_token not in text and issued.refresh_token not in text
    assert issued.token_type == "Bearer"


# --- rotation -----------------------------------------------------------------------


def test_issue_lifetimes_follow_authomatic(h: Harness, clock: FrozenClock) -> None:
    now = clock()
    normal = h.issue()
    assert normal.access_token_expires_at == int(now) + 900
    assert normal.refresh_token_expires_at == now + 1500
    long = h.issue(prolong=True)
    assert long.access_token_expires_at == int(now) + 3600
    assert long.refresh_token_expires_at == now + 7 * 24 * 3600


def test_full_rotation_chain(h: Harness, clock: FrozenClock) -> None:
    """Each refresh rotates; the chain keeps subject, scopes and claims; the family id stays."""
    issued = h.issue("alice", scopes=["read", "write"], claims={"plan": "pro"})
    family = parse_refresh_token(issued.refresh_token).family  # type: ignore[union-attr]
    current = issued
    seen = {issued.refresh_token}
    for _ in range(10):
        clock.advance(60)
        nxt = h.refresh(current.refresh_token, current.access_token)
        assert nxt.refresh_token not in seen
        seen.add(nxt.refresh_token)
        assert parse_refresh_token(nxt.refresh_token).family == family  # type: ignore[union-attr]
        claims = FakeCodec().decode(nxt.access_token, now=clock())
        assert claims.subject == "alice"
        assert claims.claims["sid"] == family
        assert claims.claims["scope"] == "read write"
        assert claims.claims["plan"] == "pro"
        assert nxt.refresh_token_expires_at == clock() + 1500  # sliding idle window
        current = nxt
    record = h.record(current.refresh_token)
    assert record is not None and len(record["old"]) == 9


def test_refresh_without_access_token(h: Harness) -> None:
    issued = h.issue()
    assert h.refresh(issued.refresh_token).refresh_token != issued.refresh_token


def test_reuse_after_grace_revokes_family(h: Harness, clock: FrozenClock) -> None:
    first = h.issue()
    second = h.refresh(first.refresh_token)
    clock.advance(11)
    with pytest.raises(RefreshTokenReused):
        h.refresh(first.refresh_token)
    # The whole family is gone: the legitimate newest token fails too.
    with pytest.raises(RefreshTokenNotFound):
        h.refresh(second.refresh_token)
    assert h.record(second.refresh_token) is None
    assert h.stores.sync.members(h.rules.index_key("alice")) == frozenset()


def test_reuse_of_an_older_token_revokes_family(h: Harness, clock: FrozenClock) -> None:
    tokens = [h.issue()]
    for _ in range(3):
        tokens.append(h.refresh(tokens[-1].refresh_token))
    with pytest.raises(RefreshTokenReused):
        h.refresh(tokens[0].refresh_token)  # within grace, but not the previous token
    with pytest.raises(RefreshTokenNotFound):
        h.refresh(tokens[-1].refresh_token)


def test_grace_retry_issues_a_new_branch(h: Harness, clock: FrozenClock) -> None:
    """The previous token within grace replaces the unused successor."""
    first = h.issue()
    lost = h.refresh(first.refresh_token)  # the response never reached the client
    clock.advance(9)
    retried = h.refresh(first.refresh_token, first.access_token)
    assert retried.refresh_token != lost.refresh_token
    # The discarded successor is dead; presenting it is reuse.
    nxt = h.refresh(retried.refresh_token)
    with pytest.raises(RefreshTokenReused):
        h.refresh(lost.refresh_token)
    with pytest.raises(RefreshTokenNotFound):
        h.refresh(nxt.refresh_token)


def test_grace_window_counts_from_the_first_rotation(h: Harness, clock: FrozenClock) -> None:
    first = h.issue()
    h.refresh(first.refresh_token)
    clock.advance(6)
    h.refresh(first.refresh_token)
    clock.advance(6)  # 12 s after the rotation: retries do not extend the window
    with pytest.raises(RefreshTokenReused):
        h.refresh(first.refresh_token)


def test_previous_token_after_successor_used_is_reuse(h: Harness) -> None:
    first = h.issue()
    second = h.refresh(first.refresh_token)
    h.refresh(second.refresh_token)
    with pytest.raises(RefreshTokenReused):
        h.refresh(first.refresh_token)


def test_zero_grace_disables_retries(pair: StorePair, clock: FrozenClock, prefix: str) -> None:
    h = Harness(
        RefreshRules(ring=RING, prefix=prefix, codec=FakeCodec(), lifetimes=Lifetimes(grace=0)),
        pair,
        clock,
    )
    first = h.issue()
    h.refresh(first.refresh_token)
    clock.advance(0.001)
    with pytest.raises(RefreshTokenReused):
        h.refresh(first.refresh_token)


# --- pairing ------------------------------------------------------------------------------


def test_pairing_mismatch_consumes_nothing(h: Harness) -> None:
    a = h.issue("alice")
    b = h.issue("alice")
    with pytest.raises(TokensMismatch):
        h.refresh(a.refresh_token, b.access_token)  # another family of the same user
    with pytest.raises(TokensMismatch):
        h.refresh(a.refresh_token, "forged." + "0" * 64)
    mallory = h.issue("mallory")
    with pytest.raises(TokensMismatch):
        h.refresh(a.refresh_token, mallory.access_token)
    # authomatic burned the refresh token before checking the pair; here it survives.
    assert h.refresh(a.refresh_token, a.access_token).refresh_token


def test_pairing_accepts_expired_access_token(h: Harness, clock: FrozenClock) -> None:
    issued = h.issue()
    clock.advance(1000)  # access expired (900 s), refresh alive (1500 s)
    assert h.refresh(issued.refresh_token, issued.access_token)


def test_pairing_needs_the_current_access_token(h: Harness) -> None:
    first = h.issue()
    second = h.refresh(first.refresh_token, first.access_token)
    with pytest.raises(TokensMismatch):
        h.refresh(second.refresh_token, first.access_token)
    assert h.refresh(second.refresh_token, second.access_token)


def test_grace_retry_pairs_with_the_previous_access_token(h: Harness) -> None:
    first = h.issue()
    lost = h.refresh(first.refresh_token, first.access_token)
    with pytest.raises(TokensMismatch):
        h.refresh(first.refresh_token, lost.access_token)
    assert h.refresh(first.refresh_token, first.access_token)


# --- forged ids and secrets ----------------------------------------------------------------


def test_forged_secret_never_revokes(h: Harness) -> None:
    victim = h.issue("alice")
    parts = parse_refresh_token(victim.refresh_token)
    assert parts is not None
    forged = [
        format_refresh_token(parts.family, parts.token_id, "x" * 43),  # wrong secret
        format_refresh_token(parts.family, "Y" * 22, parts.secret),  # unknown token id
        format_refresh_token("Z" * 22, parts.token_id, parts.secret),  # unknown family
    ]
    for token in forged:
        with pytest.raises(RefreshTokenNotFound):
            h.refresh(token)
        assert h.revoke(token) is False
    assert h.refresh(victim.refresh_token)


def test_forged_old_token_id_never_revokes(h: Harness) -> None:
    """A rotated token id with a wrong secret is not reuse: possession was never proven."""
    first = h.issue()
    second = h.refresh(first.refresh_token)
    parts = parse_refresh_token(first.refresh_token)
    assert parts is not None
    with pytest.raises(RefreshTokenNotFound):
        h.refresh(format_refresh_token(parts.family, parts.token_id, "q" * 43))
    assert h.refresh(second.refresh_token)


def test_unknown_key_id_in_verifier(h: Harness, pair: StorePair, clock: FrozenClock) -> None:
    """Rotation: old verifiers keep working; a retired key's verifiers stop matching."""
    issued = h.issue()
    other = h.issue()
    rotated = KeyRing([RootKey("new", b"n" * 32), *RING.keys])
    h2 = Harness(
        RefreshRules(ring=rotated, prefix=h.rules.prefix, codec=FakeCodec()), pair, h.clock
    )
    nxt = h2.refresh(issued.refresh_token)  # an old key still verifies
    retired = KeyRing([RootKey("new", b"n" * 32), RootKey("other", b"o" * 32)])
    h3 = Harness(
        RefreshRules(ring=retired, prefix=h.rules.prefix, codec=FakeCodec()), pair, h.clock
    )
    with pytest.raises(RefreshTokenNotFound):
        h3.refresh(other.refresh_token)  # written under the retired key
    assert h3.refresh(nxt.refresh_token)  # written under "new"


# --- expiry (the store follows the clock on memory and SQLite; the rules always do) -----------


def test_idle_expiry(h: Harness, clock: FrozenClock) -> None:
    issued = h.issue()
    clock.advance(1500)
    with pytest.raises(RefreshTokenNotFound):
        h.refresh(issued.refresh_token)
    assert h.record(issued.refresh_token) is None


def test_sliding_window_and_absolute_lifetime(
    pair: StorePair, clock: FrozenClock, prefix: str
) -> None:
    lifetimes = Lifetimes(refresh=100, absolute=250)
    h = Harness(
        RefreshRules(ring=RING, prefix=prefix, codec=FakeCodec(), lifetimes=lifetimes), pair, clock
    )
    issued = h.issue()
    clock.advance(90)
    second = h.refresh(issued.refresh_token)
    clock.advance(90)  # 180 s after login, alive thanks to the sliding window
    third = h.refresh(second.refresh_token)
    assert third.refresh_token_expires_at == issued.refresh_token_expires_at - 100 + 250
    clock.advance(71)  # past the absolute lifetime
    with pytest.raises(RefreshTokenNotFound):
        h.refresh(third.refresh_token)
    assert h.record(third.refresh_token) is None


def test_store_ttl_matches_refresh_lifetime(h: Harness) -> None:
    issued = h.issue()
    parts = parse_refresh_token(issued.refresh_token)
    assert parts is not None
    ttl = h.stores.sync.ttl(h.rules.family_key(parts.family))
    assert ttl is not None and 1490 < ttl <= 1500  # seconds, not authomatic's milliseconds
    index_ttl = h.stores.sync.ttl(h.rules.index_key("alice"))
    assert index_ttl is not None and 1490 < index_ttl <= 1500


def test_history_is_bounded(h: Harness) -> None:
    first = h.issue()
    current = first
    for _ in range(HISTORY_LIMIT + 3):
        current = h.refresh(current.refresh_token)
    record = h.record(current.refresh_token)
    assert record is not None and len(record["old"]) == HISTORY_LIMIT
    # Forgotten: the very first token reads as unknown, not as reuse.
    with pytest.raises(RefreshTokenNotFound):
        h.refresh(first.refresh_token)
    assert h.refresh(current.refresh_token)


# --- revoke / revoke_all ------------------------------------------------------------------------


def test_revoke(h: Harness) -> None:
    issued = h.issue()
    other = h.issue()
    assert h.revoke(issued.refresh_token) is True
    assert h.revoke(issued.refresh_token) is False
    with pytest.raises(RefreshTokenNotFound):
        h.refresh(issued.refresh_token)
    assert h.refresh(other.refresh_token)
    assert h.stores.sync.members(h.rules.index_key("alice")) == {
        parse_refresh_token(other.refresh_token).family  # type: ignore[union-attr]
    }


def test_revoke_with_a_rotated_token(h: Harness) -> None:
    first = h.issue()
    second = h.refresh(first.refresh_token)
    assert h.revoke(first.refresh_token) is True
    with pytest.raises(RefreshTokenNotFound):
        h.refresh(second.refresh_token)


def test_revoke_all_counts_and_isolates(h: Harness) -> None:
    alice = [h.issue("alice") for _ in range(3)]
    bob = h.issue("bob")
    bobby = h.issue("bobby")
    assert h.revoke_all("alice") == 3
    assert h.revoke_all("alice") == 0
    for pair_ in alice:
        with pytest.raises(RefreshTokenNotFound):
            h.refresh(pair_.refresh_token)
    assert h.refresh(bob.refresh_token)
    assert h.refresh(bobby.refresh_token)


@pytest.mark.parametrize("pattern", ["bo*", "bo?", "b*", "*", "bo[b]", "bob\\", "%", "bo%", "_ob"])
def test_revoke_all_never_treats_the_subject_as_a_pattern(h: Harness, pattern: str) -> None:
    """authomatic's revoke-all of ``bo*`` deleted bob's tokens; here only ``bo*``'s go."""
    bob = h.issue("bob")
    bobby = h.issue("bobby")
    mine = h.issue(pattern)
    assert h.revoke_all(pattern) == 1
    with pytest.raises(RefreshTokenNotFound):
        h.refresh(mine.refresh_token)
    assert h.refresh(bob.refresh_token)
    assert h.refresh(bobby.refresh_token)


def test_revoke_all_is_one_batch_on_one_hash_tag(h: Harness) -> None:
    for _ in range(5):
        h.issue("carol")
    h.ops.clear()
    assert h.revoke_all("carol") == 5
    applies = [op for op in h.ops if isinstance(op, Apply)]
    assert len(applies) == 1
    tags = {k.split("{")[1].split("}")[0] for k in applies[0].batch.keys()}
    assert len(tags) == 1


def test_revoke_all_skips_expired_in_the_count(h: Harness, clock: FrozenClock) -> None:
    h.issue("dave")
    clock.advance(1000)
    h.issue("dave")
    clock.advance(600)  # the first has expired (by the clock), the second has not
    assert h.revoke_all("dave") == 1


# --- secrets at rest ----------------------------------------------------------------------------


def test_no_secret_at_rest(h: Harness, pair: StorePair, backend: str, tmp_path: Path) -> None:
    """Keys and values hold ids and HMAC verifiers only; a verifier is not a token."""
    issued = h.issue("erin")
    rotated = h.refresh(issued.refresh_token)
    secrets_ = [
        parse_refresh_token(t).secret  # type: ignore[union-attr]
        for t in (issued.refresh_token, rotated.refresh_token)
    ]
    parts = parse_refresh_token(rotated.refresh_token)
    assert parts is not None
    key = h.rules.family_key(parts.family)
    dumped = (key + h.rules.index_key("erin")).encode() + (pair.sync.get(key) or b"")
    if backend == "sqlite":
        pair.sync.close()
        dumped += b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    for secret in secrets_:
        assert secret.encode() not in dumped
    assert b"erin" in dumped  # the subject sits inside the record, never in a key name
    assert b"erin" not in (key + h.rules.index_key("erin")).encode()
    if backend == "sqlite":
        return
    record = json.loads(pair.sync.get(key) or b"{}")
    verifier_hex = record["cur"]["ver"].partition("$")[2]
    as_secret = "".join(BASE62[int(c, 16)] for c in verifier_hex[:43])
    with pytest.raises(RefreshTokenNotFound):
        h.refresh(format_refresh_token(parts.family, record["cur"]["id"], as_secret))


def test_crc_is_crc32_of_everything_before_it() -> None:
    token = format_refresh_token("A" * 22, "B" * 22, "C" * 43)
    value = zlib.crc32(token[:-6].encode())
    digits = ""
    for _ in range(6):
        value, d = divmod(value, 62)
        digits = BASE62[d] + digits
    assert token[-6:] == digits


# --- the async driver over the same data ---------------------------------------------------------


def test_async_driver_shares_the_family(h: Harness, pair: StorePair, clock: FrozenClock) -> None:
    issued = h.issue()

    async def go() -> TokenPair:
        flow = h.rules.refresh(issued.refresh_token, now=clock(), rand=_rand)
        return await run_async(flow, pair.aio)

    nxt = asyncio.run(go())
    assert h.refresh(nxt.refresh_token)
