"""``tw.challenges``: behaviour of the public service on memory, SQLite and Redis.

ms-token parity (seeds.md §1.7) where it was right, and its defects fixed
(§1.5-1.6): regenerated encrypted tokens verify, a regenerated secret cannot
be replayed, ``!`` in an id cannot make two challenges share a key,
``info`` on a secret-less challenge does not crash.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from _challenge_helpers import Counter, Factory

from tokenware import ChallengeInfo, KeyRing, RootKey, SecretSpec, Tokenware
from tokenware.core.ops import Apply
from tokenware.errors import Conflict, InvalidToken, NotFound, Throttled, ValidationError
from tokenware.testing import FrozenClock, make_secret_key

pytestmark = pytest.mark.filterwarnings("error")

ACTION = "register"
EMAIL = "v@example.com"


# -- create ------------------------------------------------------------------------


def test_default_challenge_is_a_sealed_token(tw: Tokenware) -> None:
    ch = tw.challenges.create(ACTION, EMAIL)
    assert (ch.id, ch.action, ch.uid) == (EMAIL, ACTION, None)
    assert ch.secret is not None and re.fullmatch(r"[A-Za-z0-9_-]+", ch.secret)
    assert ch.secret not in repr(ch)
    info = tw.challenges.info(token=ch.secret)
    assert (info.id, info.action, info.uid) == (EMAIL, ACTION, None)
    assert info.settings is not None and info.settings.encrypt
    assert info.settings.length == 43  # 256 bits of base62


def test_codes_follow_their_spec(tw: Tokenware) -> None:
    ch = tw.challenges.create(
        ACTION, EMAIL, secret={"type": "alphabet", "alphabet": "abcd", "length": 10}
    )
    assert ch.secret is not None and re.fullmatch(r"[a-d]{10}", ch.secret) and ch.uid is None
    ch = tw.challenges.create(ACTION, EMAIL, secret={"type": "number", "length": 6})
    assert ch.secret is not None and re.fullmatch(r"[0-9]{6}", ch.secret)
    ch = tw.challenges.create(ACTION, EMAIL, secret=SecretSpec(type="uuid", encrypt=False))
    assert ch.secret is not None
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", ch.secret
    )
    ch = tw.challenges.create(
        ACTION, EMAIL, secret={"type": "number", "length": 6, "encrypt": True}
    )
    assert ch.secret is not None and len(ch.secret) > 40  # sealed
    assert tw.challenges.verify(ch.secret).id == EMAIL
    assert tw.challenges.create(ACTION, EMAIL, secret=False).secret is None


@pytest.mark.parametrize(
    ("secret", "field"),
    [
        ({"type": "sha1"}, "secret.type"),
        ({}, "secret.type"),
        ({"type": "number"}, "secret.length"),
        ({"type": "number", "length": 3}, "secret.length"),
        ({"type": "number", "length": 6.0}, "secret.length"),
        ({"type": "number", "length": True}, "secret.length"),
        ({"type": "number", "length": 129}, "secret.length"),
        ({"type": "number", "length": 6, "alphabet": "ab"}, "secret.alphabet"),
        ({"type": "uuid", "length": 6}, "secret.length"),
        ({"type": "uuid", "alphabet": "ab"}, "secret.alphabet"),
        ({"type": "alphabet", "length": 6}, "secret.alphabet"),
        ({"type": "alphabet", "length": 6, "alphabet": "a"}, "secret.alphabet"),
        ({"type": "alphabet", "length": 6, "alphabet": "aab"}, "secret.alphabet"),
        ({"type": "alphabet", "length": 6, "alphabet": "a b"}, "secret.alphabet"),
        ({"type": "alphabet", "length": 6, "alphabet": "a\nb"}, "secret.alphabet"),
        ({"type": "uuid", "encrypt": "yes"}, "secret.encrypt"),
        ({"type": "uuid", "colour": "red"}, "secret.colour"),
        ("uuid", "secret"),
        (None, "secret"),
    ],
)
def test_secret_spec_validation_names_the_field(tw: Tokenware, secret: Any, field: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(field)):
        tw.challenges.create(ACTION, EMAIL, secret=secret)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"throttle": 10}, "throttle requires ttl"),
        ({"throttle": True}, "throttle requires ttl"),
        ({"ttl": 3, "throttle": 10}, "throttle must not exceed ttl"),
        ({"ttl": 0}, "ttl"),
        ({"ttl": -1}, "ttl"),
        ({"ttl": float("nan")}, "ttl"),
        ({"ttl": "10"}, "ttl"),
        ({"ttl": 10, "throttle": -1}, "throttle"),
        ({"metadata": {1, 2}}, "metadata"),
        ({"metadata": object()}, "metadata"),
        ({"metadata": float("nan")}, "metadata"),
        ({"metadata": "\ud800"}, "metadata"),
        ({"secret": False, "regenerate": True}, "regenerate"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": 101}, "max_attempts"),
        ({"max_attempts": 2.5}, "max_attempts"),
    ],
)
def test_create_validation(tw: Tokenware, kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(field)):
        tw.challenges.create(ACTION, EMAIL, **kwargs)


@pytest.mark.parametrize(
    ("action", "id"),
    [("", EMAIL), (ACTION, ""), (None, EMAIL), (ACTION, 5), ("\ud800", EMAIL), (ACTION, "x" * 513)],
)
def test_action_and_id_are_validated(tw: Tokenware, action: Any, id: Any) -> None:
    with pytest.raises(ValidationError):
        tw.challenges.create(action, id)


def test_metadata_round_trips_any_json(tw: Tokenware) -> None:
    meta = {"random": ["10", 20, {}], "bool": True, "num": 32, "arr": [], "obj": {"coarse": True}}
    tw.challenges.create(ACTION, EMAIL, metadata=meta)
    assert tw.challenges.info(action=ACTION, id=EMAIL).metadata == meta
    for value in (None, 0, "", [], "text", 1.5):
        tw.challenges.create(ACTION, EMAIL, metadata=value, secret=False)
        assert tw.challenges.info(action=ACTION, id=EMAIL).metadata == value
        assert tw.challenges.verify(action=ACTION, id=EMAIL).metadata == value


def test_throttle(tw: Tokenware, clock: FrozenClock) -> None:
    tw.challenges.create(ACTION, EMAIL, ttl=10, throttle=True)
    clock.advance(3.2)
    with pytest.raises(Throttled) as err:
        tw.challenges.create(ACTION, EMAIL)  # even without a throttle of its own
    assert err.value.retry_after == 7  # 6.8 s left, rounded up
    assert err.value.status_code == 429
    clock.advance(6.8)
    ch = tw.challenges.create(ACTION, EMAIL, ttl=3, throttle=1)
    assert ch.secret
    clock.advance(1)
    assert tw.challenges.create(ACTION, EMAIL, ttl=3, throttle=1).secret


def test_verify_clears_the_throttle_but_erase_false_keeps_it(tw: Tokenware) -> None:
    ch = tw.challenges.create(ACTION, EMAIL, ttl=30, throttle=10)
    tw.challenges.verify(ch.secret, erase=False)
    with pytest.raises(Throttled):
        tw.challenges.create(ACTION, EMAIL, ttl=30, throttle=10)
    tw.challenges.verify(ch.secret)
    assert tw.challenges.create(ACTION, EMAIL, ttl=30, throttle=10).secret


def test_remove_keeps_the_throttle(tw: Tokenware) -> None:
    tw.challenges.create(ACTION, EMAIL, ttl=30, throttle=10)
    tw.challenges.remove(action=ACTION, id=EMAIL)
    with pytest.raises(Throttled):
        tw.challenges.create(ACTION, EMAIL)


def test_newer_challenge_replaces_the_older(tw: Tokenware) -> None:
    first = tw.challenges.create(ACTION, EMAIL, regenerate=True)
    second = tw.challenges.create(ACTION, EMAIL, regenerate=True)
    assert first.uid != second.uid
    with pytest.raises(NotFound):
        tw.challenges.info(uid=first.uid)
    with pytest.raises(NotFound):
        tw.challenges.info(token=first.secret)
    with pytest.raises(InvalidToken):
        tw.challenges.verify(first.secret)
    info = tw.challenges.info(uid=second.uid)
    assert (info.id, info.action, info.uid) == (EMAIL, ACTION, second.uid)
    assert tw.challenges.verify(second.secret).uid == second.uid


def test_expiry_follows_the_clock(tw: Tokenware, clock: FrozenClock) -> None:
    ch = tw.challenges.create(ACTION, EMAIL, ttl=3)
    assert tw.challenges.info(action=ACTION, id=EMAIL).expires_at == clock() + 3
    clock.advance(3.1)
    with pytest.raises(NotFound):
        tw.challenges.info(action=ACTION, id=EMAIL)
    with pytest.raises(NotFound):
        tw.challenges.verify(ch.secret)


# -- verify ------------------------------------------------------------------------


def test_verify_erases(tw: Tokenware, clock: FrozenClock) -> None:
    ch = tw.challenges.create(ACTION, EMAIL, metadata={"k": 1})
    clock.advance(5)
    v = tw.challenges.verify(ch.secret)
    assert (v.id, v.action, v.uid, v.metadata) == (EMAIL, ACTION, None, {"k": 1})
    assert v.is_first_verification and v.verified == clock() and v.created == clock() - 5
    assert v.settings is not None and not hasattr(v.settings, "secret")
    with pytest.raises(NotFound):
        tw.challenges.verify(ch.secret)


def test_erase_false(tw: Tokenware, clock: FrozenClock) -> None:
    ch = tw.challenges.create(ACTION, EMAIL, secret={"type": "number", "length": 10})
    assert ch.secret is not None
    first = tw.challenges.verify(action=ACTION, id=EMAIL, secret=ch.secret, erase=False)
    assert first.is_first_verification
    assert tw.challenges.info(action=ACTION, id=EMAIL).verified == clock()
    clock.advance(1)
    again = tw.challenges.verify(action=ACTION, id=EMAIL, secret=ch.secret)
    assert not again.is_first_verification and again.verified == first.verified
    with pytest.raises(NotFound):
        tw.challenges.verify(action=ACTION, id=EMAIL, secret=ch.secret)


def test_control(tw: Tokenware, counter: Counter) -> None:
    ch = tw.challenges.create(ACTION, EMAIL)
    for control in ({"id": "another@mail.com"}, {"action": "other"}, {"id": EMAIL, "action": "x"}):
        with pytest.raises(InvalidToken):
            counter.run(counter.rules.verify(ch.secret, control=control, now=0))
    assert counter.ops == []  # refused before any store call
    with pytest.raises(ValidationError):
        tw.challenges.verify(ch.secret, control={"uid": None})
    assert tw.challenges.verify(ch.secret, control={"id": EMAIL, "action": ACTION}).id == EMAIL


def test_secretless_challenge(tw: Tokenware) -> None:
    tw.challenges.create(ACTION, EMAIL, secret=False, metadata=[1])
    info = tw.challenges.info(action=ACTION, id=EMAIL)  # ms-token crashed here
    assert info.settings is None and info.metadata == [1]
    with pytest.raises(InvalidToken):
        tw.challenges.verify(action=ACTION, id=EMAIL, secret="guess")
    with pytest.raises(NotFound):
        tw.challenges.regenerate(action=ACTION, id=EMAIL)
    v = tw.challenges.verify(action=ACTION, id=EMAIL)
    assert v.settings is None and v.is_first_verification
    tw.challenges.create(ACTION, EMAIL, secret=False)
    tw.challenges.remove(action=ACTION, id=EMAIL)
    with pytest.raises(NotFound):
        tw.challenges.remove(action=ACTION, id=EMAIL)


def test_secret_is_required_when_there_is_one(tw: Tokenware) -> None:
    tw.challenges.create(ACTION, EMAIL, secret={"type": "number", "length": 6})
    with pytest.raises(InvalidToken):
        tw.challenges.verify(action=ACTION, id=EMAIL)
    assert tw.challenges.info(action=ACTION, id=EMAIL).attempts == 0


def test_sealed_token_also_verifies_as_the_secret_of_its_pair(tw: Tokenware) -> None:
    ch = tw.challenges.create(ACTION, EMAIL)
    other = tw.challenges.create(ACTION, "other@example.com")
    with pytest.raises(InvalidToken):
        tw.challenges.verify(action=ACTION, id=EMAIL, secret=other.secret)
    assert tw.challenges.verify(action=ACTION, id=EMAIL, secret=ch.secret).id == EMAIL


@pytest.mark.parametrize(
    "kwargs",
    [
        {"token": "x", "action": ACTION},
        {"token": "x", "secret": "y"},
        {"action": ACTION},
        {"id": EMAIL},
        {"token": 5},
        {"action": ACTION, "id": EMAIL, "secret": 123456},
        {"action": ACTION, "id": EMAIL, "erase": "no"},
        {"action": ACTION, "id": EMAIL, "control": ["id"]},
    ],
)
def test_verify_argument_errors(tw: Tokenware, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        tw.challenges.verify(**kwargs)


def test_max_attempts_is_per_challenge(tw: Tokenware) -> None:
    ch = tw.challenges.create(ACTION, EMAIL, secret={"type": "number", "length": 6}, max_attempts=1)
    with pytest.raises(InvalidToken):
        tw.challenges.verify(action=ACTION, id=EMAIL, secret="x")
    with pytest.raises(InvalidToken):
        tw.challenges.verify(action=ACTION, id=EMAIL, secret=ch.secret)
    assert tw.challenges.info(action=ACTION, id=EMAIL).attempts == 1


def test_stale_sealed_tokens_spend_no_attempt(tw: Tokenware) -> None:
    first = tw.challenges.create(ACTION, EMAIL)
    tw.challenges.create(ACTION, EMAIL)
    for _ in range(10):
        with pytest.raises(InvalidToken):
            tw.challenges.verify(first.secret)
    assert tw.challenges.info(action=ACTION, id=EMAIL).attempts == 0


# -- regenerate / info / remove ------------------------------------------------------


def test_regenerated_encrypted_token_verifies_and_old_one_does_not(tw: Tokenware) -> None:
    ch = tw.challenges.create(ACTION, EMAIL, regenerate=True)
    assert ch.uid is not None
    fresh = tw.challenges.regenerate(uid=ch.uid)
    assert fresh != ch.secret
    with pytest.raises(InvalidToken):
        tw.challenges.verify(ch.secret)
    v = tw.challenges.verify(fresh)  # ms-token: 404 here
    assert v.uid == ch.uid
    with pytest.raises(NotFound):  # ms-token: replayable here
        tw.challenges.verify(fresh)
    with pytest.raises(NotFound):
        tw.challenges.info(uid=ch.uid)


def test_regenerate_honours_the_spec(tw: Tokenware) -> None:
    ch = tw.challenges.create(ACTION, EMAIL, secret={"type": "number", "length": 6})
    fresh = tw.challenges.regenerate(action=ACTION, id=EMAIL)
    assert re.fullmatch(r"[0-9]{6}", fresh)
    if fresh != ch.secret:
        with pytest.raises(InvalidToken):
            tw.challenges.verify(action=ACTION, id=EMAIL, secret=ch.secret)
    assert tw.challenges.verify(action=ACTION, id=EMAIL, secret=fresh).id == EMAIL
    with pytest.raises(NotFound):
        tw.challenges.verify(action=ACTION, id=EMAIL, secret=fresh)


def test_missing_challenges_are_not_found(tw: Tokenware, counter: Counter) -> None:
    for call in (
        lambda: tw.challenges.info(action=ACTION, id=EMAIL),
        lambda: tw.challenges.info(uid="A" * 22),
        lambda: tw.challenges.regenerate(uid="A" * 22),
        lambda: tw.challenges.remove(action=ACTION, id=EMAIL),
        lambda: tw.challenges.verify(action=ACTION, id=EMAIL, secret="123456"),
    ):
        with pytest.raises(NotFound):
            call()
    with pytest.raises(NotFound):
        counter.run(counter.rules.info(uid="not a uid", now=0))
    assert counter.ops == []
    with pytest.raises(ValidationError):
        tw.challenges.info()
    with pytest.raises(ValidationError):
        tw.challenges.info(uid="A" * 22, action=ACTION, id=EMAIL)


def test_remove_by_every_selector(tw: Tokenware) -> None:
    tw.challenges.create(ACTION, EMAIL)
    tw.challenges.remove(action=ACTION, id=EMAIL)
    ch = tw.challenges.create(ACTION, EMAIL)
    tw.challenges.remove(token=ch.secret)
    ch = tw.challenges.create(ACTION, EMAIL, regenerate=True)
    tw.challenges.remove(uid=ch.uid)
    with pytest.raises(NotFound):
        tw.challenges.remove(uid=ch.uid)
    with pytest.raises(NotFound):
        tw.challenges.verify(ch.secret)


def _step_until_apply(counter: Counter, flow: Any) -> Any:
    """Run ``flow`` up to (not including) its first Apply; return that op."""
    op = next(flow)
    while not isinstance(op, Apply):
        op = flow.send(op.call(counter.tw.stores.sync))
    return op


def test_concurrent_regenerates_conflict(tw: Tokenware, counter: Counter) -> None:
    ch = tw.challenges.create(ACTION, EMAIL, regenerate=True)
    flow = counter.rules.regenerate(uid=ch.uid, now=0)
    op = _step_until_apply(counter, flow)
    winner = tw.challenges.regenerate(uid=ch.uid)  # lands first
    with pytest.raises(Conflict):
        flow.send(op.call(tw.stores.sync))
    assert tw.challenges.verify(winner).uid == ch.uid


def test_regenerate_racing_remove_conflicts(tw: Tokenware, counter: Counter) -> None:
    ch = tw.challenges.create(ACTION, EMAIL, regenerate=True)
    flow = counter.rules.regenerate(uid=ch.uid, now=0)
    op = _step_until_apply(counter, flow)
    tw.challenges.remove(uid=ch.uid)
    with pytest.raises(Conflict):
        flow.send(op.call(tw.stores.sync))


def test_regenerate_keeps_spent_attempts(tw: Tokenware) -> None:
    tw.challenges.create(ACTION, EMAIL, secret={"type": "number", "length": 6})
    for _ in range(3):
        with pytest.raises(InvalidToken):
            tw.challenges.verify(action=ACTION, id=EMAIL, secret="abc")
    tw.challenges.regenerate(action=ACTION, id=EMAIL)
    assert tw.challenges.info(action=ACTION, id=EMAIL).attempts == 3


# -- keys, isolation, rotation ------------------------------------------------------------


def test_bang_in_ids_cannot_collide(tw: Tokenware) -> None:
    a = tw.challenges.create("x", "a!b")
    b = tw.challenges.create("x!a", "b")
    assert tw.challenges.verify(a.secret).id == "a!b"
    assert tw.challenges.verify(b.secret).id == "b"


def test_key_rotation(make_tw: Factory) -> None:
    old, new = RootKey("k1", make_secret_key("c-old")), RootKey("k2", make_secret_key("c-new"))
    before = make_tw(keys=KeyRing([old]))
    ch = before.challenges.create(ACTION, EMAIL, regenerate=True)
    code = before.challenges.create("sms", "+15550100", secret={"type": "number", "length": 6})
    after = make_tw(keys=KeyRing([new, old]))
    assert after.challenges.info(uid=ch.uid).id == EMAIL
    assert after.challenges.verify(action="sms", id="+15550100", secret=code.secret).id
    assert after.challenges.verify(ch.secret).id == EMAIL
    # A token sealed after rotation opens only with the new ring.
    ch2 = after.challenges.create(ACTION, EMAIL)
    with pytest.raises(InvalidToken):
        before.challenges.verify(ch2.secret)


def test_other_secret_key_sees_nothing(make_tw: Factory) -> None:
    mine = make_tw()
    theirs = make_tw(secret_key=make_secret_key("someone-else"))
    ch = mine.challenges.create(ACTION, EMAIL)
    with pytest.raises(InvalidToken):
        theirs.challenges.verify(ch.secret)
    with pytest.raises(NotFound):
        theirs.challenges.info(action=ACTION, id=EMAIL)


def test_every_key_of_a_challenge_shares_one_hash_tag(tw: Tokenware, counter: Counter) -> None:
    ch = counter.run(
        counter.rules.create(ACTION, EMAIL, ttl=60, throttle=10, regenerate=True, now=0)
    )
    applies = [op for op in counter.ops if isinstance(op, Apply)]
    assert len(applies) == 1
    tags = {re.search(r"\{([^}]*)\}", k).group(1) for k in applies[0].batch.keys()}  # type: ignore[union-attr]
    assert len(applies[0].batch.keys()) == 3  # record, uid pointer, throttle
    assert tags == {ch.uid[:4]}
    counter.ops.clear()
    counter.run(counter.rules.verify(ch.secret, now=1))
    for op in counter.ops:
        if isinstance(op, Apply):
            assert {re.search(r"\{([^}]*)\}", k).group(1) for k in op.batch.keys()} == tags  # type: ignore[union-attr]


def test_reset_only_touches_challenges(tw: Tokenware) -> None:
    s = tw.sessions.add("alice")
    tw.challenges.create(ACTION, EMAIL, ttl=60, throttle=10, regenerate=True)
    assert tw.challenges.reset() == 3
    assert tw.sessions.get(s.id).owner_id == "alice"
    tw.sessions.reset()


def test_async_api_mirrors_sync(tw: Tokenware) -> None:
    async def main() -> ChallengeInfo:
        aio = tw.aio.challenges
        ch = await aio.create(ACTION, EMAIL, regenerate=True, metadata={"a": 1})
        assert ch.uid is not None
        info = await aio.info(uid=ch.uid)
        fresh = await aio.regenerate(uid=ch.uid)
        v = await aio.verify(fresh, erase=False)
        assert v.is_first_verification
        await aio.remove(uid=ch.uid)
        with pytest.raises(NotFound):
            await aio.verify(fresh)
        await aio.create(ACTION, EMAIL)
        assert await aio.reset() == 1
        return info

    assert asyncio.run(main()).metadata == {"a": 1}


def test_sync_and_async_have_the_same_methods() -> None:
    from tokenware.challenges import AsyncChallenges, Challenges

    def names(cls: type) -> set[str]:
        return {n for n in vars(cls) if not n.startswith("_")}

    assert names(Challenges) == names(AsyncChallenges)
