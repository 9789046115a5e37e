"""``tw.pats`` on memory, SQLite and Redis: the @access-tokens API, fixed.

Behaviour seen through the public service (seeds.md §5 upstream cases,
with its defects fixed) plus what a copy of the store reveals.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from _pat_helpers import SECRET, Factory, legacy_token

from tokenware import KeyRing, RootKey, Tokenware
from tokenware.core.pat import BUCKETS, REASONS, PatRules, checksum
from tokenware.errors import ConfigurationError, Conflict, InvalidToken, NotFound, ValidationError
from tokenware.pats import IssuedPat, PatRecord, PatVerification
from tokenware.stores import store_from_url
from tokenware.testing import FrozenClock


def stored(tw: Tokenware, token_id: str) -> dict[str, Any]:
    raw = tw.stores.sync.get(tw.pats._rules.record_key(token_id))
    assert raw is not None
    return json.loads(raw)  # type: ignore[no-any-return]


# -- issue, verify, format ---------------------------------------------------------


def test_issue_returns_a_75_char_checksummed_token_and_a_record(
    tw: Tokenware, clock: FrozenClock
) -> None:
    issued = tw.pats.issue("alice", roles=["reader", "writer", "reader"], name="ci")
    assert isinstance(issued, IssuedPat)
    token = issued.token
    assert len(token) == 75 and token.startswith("twp_")
    assert token[4:].isalnum() and token[4:].isascii()
    assert token[-6:] == checksum(token[:-6])
    record = issued.record
    assert record.token_id == token[4:26]
    assert record.owner == "alice" and record.is_admin is False
    assert record.roles == ("reader", "writer")
    assert record.created_at == clock() and record.name == "ci"
    assert (record.last_used_at, record.revoked_at, record.expires_at) == (None, None, None)
    assert token not in repr(issued)
    assert not hasattr(record, "secret_phc") and not hasattr(record, "verifier")


def test_verify_returns_the_record_and_never_the_verifier(tw: Tokenware) -> None:
    issued = tw.pats.issue("alice", is_admin=True, roles=["admin"])
    result = tw.pats.verify(issued.token)
    assert isinstance(result, PatVerification)
    assert result.valid and result.reason is None and result.record is not None
    assert result.record.is_admin and result.record.roles == ("admin",)
    assert "phc" not in repr(result) and "hmac" not in repr(result)


def test_verifier_is_an_hmac_phc_with_the_kid(tw: Tokenware) -> None:
    issued = tw.pats.issue("alice")
    phc = stored(tw, issued.record.token_id)["phc"]
    _, alg, params, salt, mac = phc.split("$")
    assert alg == "hmac-sha256" and params == f"k={tw.settings.keys.current.kid}"
    assert base64.b64decode(salt + "==") == issued.record.token_id.encode()
    assert len(base64.b64decode(mac + "=")) == 32


def test_generate_stores_nothing_and_register_makes_it_verify(
    tw: Tokenware, calls: list[str]
) -> None:
    calls.clear()
    token, token_id, phc = tw.pats.generate()
    assert calls == []
    assert tw.pats.verify(token).reason == "not_found"
    record = tw.pats.register(token_id, phc, "svc", roles=["deploy"])
    assert isinstance(record, PatRecord) and record.roles == ("deploy",)
    assert tw.pats.verify(token).valid
    with pytest.raises(Conflict):
        tw.pats.register(token_id, phc, "svc")


def test_generate_with_a_chosen_id(tw: Tokenware) -> None:
    token, token_id, _ = tw.pats.generate("A" * 22)
    assert token_id == "A" * 22 and token[4:26] == "A" * 22
    for bad in ("A" * 21, "A" * 23, "A" * 21 + "-", 5):
        with pytest.raises(ValidationError, match="token_id"):
            tw.pats.generate(bad)  # type: ignore[arg-type]


def test_wrong_secret_is_invalid_secret_and_unknown_id_not_found(tw: Tokenware) -> None:
    issued = tw.pats.issue("alice")
    token = issued.token
    secret = token[26:69]
    forged = token[:26] + ("0" if secret[0] != "0" else "1") + secret[1:]
    forged += checksum(forged)
    assert tw.pats.verify(forged) == PatVerification(False, None, "invalid_secret")
    unknown = tw.pats.generate()[0]
    assert tw.pats.verify(unknown) == PatVerification(False, None, "not_found")


def test_last_used_at_is_written_at_most_once_a_minute(
    tw: Tokenware, clock: FrozenClock, calls: list[str]
) -> None:
    issued = tw.pats.issue("alice")
    calls.clear()
    first = tw.pats.verify(issued.token)
    assert first.record is not None and first.record.last_used_at == clock()
    assert calls == ["get", "apply"]
    t0 = clock()
    for _ in range(3):
        clock.advance(10)
        calls.clear()
        again = tw.pats.verify(issued.token)
        assert again.record is not None and again.record.last_used_at == t0
        assert calls == ["get"]  # one round trip
    clock.advance(31)
    later = tw.pats.verify(issued.token)
    assert later.record is not None and later.record.last_used_at == clock()
    assert tw.pats.get(issued.record.token_id).last_used_at == clock()


def test_expiry_is_enforced_in_code(tw: Tokenware, clock: FrozenClock) -> None:
    issued = tw.pats.issue("alice", expires_at=clock() + 60)
    assert tw.pats.verify(issued.token).valid
    clock.advance(60)
    result = tw.pats.verify(issued.token)
    assert (result.valid, result.reason) == (False, "expired")
    assert result.record is not None and result.record.token_id == issued.record.token_id


# -- the @access-tokens migration ----------------------------------------------------


def test_access_tokens_token_verifies_once_by_scrypt_then_holds_an_hmac_verifier(
    tw: Tokenware,
) -> None:
    token, token_id, phc, _ = legacy_token(ln=14)  # their defaults: N=2^14, r=8, p=1
    tw.pats.register(token_id, phc, "legacy-owner", roles=["reader"])
    assert stored(tw, token_id)["phc"].startswith("$scrypt$")
    result = tw.pats.verify(token)
    assert result.valid and result.record is not None and result.record.owner == "legacy-owner"
    after = stored(tw, token_id)["phc"]
    assert after.startswith("$hmac-sha256$k=")
    assert tw.pats.verify(token).valid  # now by HMAC
    wrong = token[:-6] + ("AAAA" if token[-6:-2] != "AAAA" else "BBBB") + token[-2:]
    assert tw.pats.verify(wrong).reason == "invalid_secret"
    identity = tw.authenticate(f"Bearer {token}")
    assert identity.kind == "pat" and identity.subject == "legacy-owner"


def test_access_tokens_secret_variants(tw: Tokenware) -> None:
    """URL-safe and unpadded spellings of the same secret verify (upstream did too)."""
    token, token_id, phc, secret = legacy_token()
    tw.pats.register(token_id, phc, "o")
    head = token.split(".")[0]
    urlsafe = base64.urlsafe_b64encode(secret).decode()
    for variant in (urlsafe, urlsafe.rstrip("="), base64.b64encode(secret).decode().rstrip("=")):
        assert tw.pats.verify(f"{head}.{variant}").valid, variant
    for bad in ("abc<>?@[]^", "", " " + urlsafe, urlsafe + "==="):
        assert tw.pats.verify(f"{head}.{bad}").reason == "invalid_format", bad


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("wrong_" + "a" * 21 + ".AAAA", "invalid_prefix"),
        ("", "invalid_prefix"),
        ("pat_", "invalid_format"),
        ("pat_" + "a" * 21 + "AAAA", "invalid_format"),
        ("pat_" + "a" * 21 + ".AA.AA", "invalid_format"),
        ("pat_" + "a" * 20 + ".AAAA", "invalid_format"),
        ("pat_" + "a" * 22 + ".AAAA", "invalid_format"),
        ("pat_" + "a" * 20 + "-.AAAA", "invalid_format"),
        ("pat_" + "a" * 21 + ".", "invalid_format"),
        ("pat_" + "a" * 21 + ".AA AA", "invalid_format"),
        ("pat_" + "a" * 21 + "." + "A" * 200, "invalid_format"),
        ("pat_" + "0" * 21 + ".AAAA", "not_found"),
    ],
)
def test_access_tokens_format_reasons(
    tw: Tokenware, calls: list[str], token: str, reason: str
) -> None:
    calls.clear()
    assert tw.pats.verify(token).reason == reason
    assert (calls == []) == (reason != "not_found")


def test_register_validates_the_phc_and_id(tw: Tokenware) -> None:
    _, token_id, phc, _ = legacy_token()
    for bad_phc in ("$fake", "scrypt$ln=14,r=8,p=1$AAAA$AAAA", "$bcrypt$x$y$z"):
        with pytest.raises(ValidationError, match="secret_phc"):
            tw.pats.register(token_id, bad_phc, "o")
    for bad_id in ("service-a-prod", "a" * 20, "a" * 23, 7):
        with pytest.raises(ValidationError, match="token_id"):
            tw.pats.register(bad_id, phc, "o")  # type: ignore[arg-type]


def test_pepper_rotation_rehashes_on_the_next_verify(make_tw: Factory) -> None:
    old = RootKey("old", SECRET)
    new = RootKey("new", b"n" * 32)
    before = make_tw(keys=KeyRing([old]))
    issued = before.pats.issue("alice")
    after = make_tw(keys=KeyRing([new, old]))
    assert stored(after, issued.record.token_id)["phc"].split("$")[2] == "k=old"
    assert after.pats.verify(issued.token).valid
    assert stored(after, issued.record.token_id)["phc"].split("$")[2] == "k=new"
    assert after.pats.verify(issued.token).valid


# -- update, revoke, restore -------------------------------------------------------------


def test_update_fields_and_roles(tw: Tokenware, clock: FrozenClock) -> None:
    token_id = tw.pats.issue("alice", roles=["a"]).record.token_id
    assert tw.pats.update(token_id, roles={"add": ["b", "c"]}).roles == ("a", "b", "c")
    assert tw.pats.update(token_id, roles={"remove": ["a", "zz"]}).roles == ("b", "c")
    assert tw.pats.update(token_id, roles=["x"]).roles == ("x",)
    assert tw.pats.update(token_id, roles=[]).roles == ()
    assert tw.pats.update(token_id, roles={"add": []}).roles == ()
    updated = tw.pats.update(token_id, owner="bob", is_admin=True, expires_at=clock() + 10)
    assert (updated.owner, updated.is_admin, updated.expires_at) == ("bob", True, clock() + 10)
    assert tw.pats.update(token_id, expires_at=None).expires_at is None
    assert tw.pats.update(token_id) == tw.pats.get(token_id)
    assert [r.token_id for r in tw.pats.list(owner="bob")] == [token_id]
    assert list(tw.pats.list(owner="alice")) == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"roles": {"add": ["a"], "remove": ["b"]}}, "not both"),
        ({"roles": {"set": ["a"]}}, "roles"),
        ({"roles": "reader"}, "roles"),
        ({"roles": ["Has Space"]}, "roles"),
        ({"roles": {"add": [f"r{i}" for i in range(51)]}}, "roles"),
        ({"owner": ""}, "owner"),
        ({"owner": "x" * 513}, "owner"),
        ({"is_admin": "yes"}, "is_admin"),
        ({"expires_at": float("nan")}, "expires_at"),
        ({"expires_at": "tomorrow"}, "expires_at"),
    ],
)
def test_bad_updates_name_the_field_and_change_nothing(
    tw: Tokenware, kwargs: dict[str, Any], field: str
) -> None:
    issued = tw.pats.issue("alice", roles=["a"])
    with pytest.raises(ValidationError, match=field):
        tw.pats.update(issued.record.token_id, **kwargs)
    assert tw.pats.get(issued.record.token_id) == issued.record


def test_update_adding_beyond_fifty_roles_is_refused(tw: Tokenware) -> None:
    token_id = tw.pats.issue("alice", roles=[f"r{i}" for i in range(50)]).record.token_id
    with pytest.raises(ValidationError, match="roles"):
        tw.pats.update(token_id, roles={"add": ["extra"]})
    assert len(tw.pats.get(token_id).roles) == 50


def test_revoke_and_restore_are_idempotent_and_keep_the_expiry(
    tw: Tokenware, clock: FrozenClock
) -> None:
    issued = tw.pats.issue("alice", expires_at=clock() + 3600)
    token_id = issued.record.token_id
    revoked = tw.pats.revoke(token_id)
    assert revoked.revoked_at == clock() and revoked.expires_at == clock() + 3600
    clock.advance(5)
    assert tw.pats.revoke(token_id).revoked_at == revoked.revoked_at  # no-op
    assert tw.pats.verify(issued.token).reason == "revoked"
    restored = tw.pats.restore(token_id)
    assert restored.revoked_at is None and restored.expires_at == issued.record.expires_at
    assert tw.pats.restore(token_id) == restored
    assert tw.pats.verify(issued.token).valid
    # A later expiry given to revoke never extends; an earlier one shortens.
    assert tw.pats.revoke(token_id, expires_at=clock() + 9999).expires_at == clock() + 3595
    tw.pats.restore(token_id)
    assert tw.pats.revoke(token_id, expires_at=clock() + 60).expires_at == clock() + 60


def test_unknown_and_malformed_ids_are_not_found(tw: Tokenware, calls: list[str]) -> None:
    unknown = "A" * 22
    for call in (tw.pats.get, tw.pats.revoke, tw.pats.restore, tw.pats.update):
        with pytest.raises(NotFound):
            call(unknown)
    calls.clear()
    for bad in ("", "x", "{p00}" + "a" * 17, "é" * 22, "a" * 10_000):
        with pytest.raises(NotFound):
            tw.pats.get(bad)
    assert calls == []
    for non_string in (None, 5, b"x"):
        with pytest.raises(ValidationError):
            tw.pats.get(non_string)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"owner": ""}, "owner"),
        ({"owner": None}, "owner"),
        ({"owner": "\ud800"}, "owner"),
        ({"owner": "a", "roles": [f"r{i}" for i in range(51)]}, "roles"),
        ({"owner": "a", "roles": ["has space"]}, "roles"),
        ({"owner": "a", "roles": ["x\x00"]}, "roles"),
        ({"owner": "a", "roles": ["r" * 101]}, "roles"),
        ({"owner": "a", "roles": [""]}, "roles"),
        ({"owner": "a", "roles": "reader"}, "roles"),
        ({"owner": "a", "is_admin": 1}, "is_admin"),
        ({"owner": "a", "expires_at": float("inf")}, "expires_at"),
        ({"owner": "a", "expires_at": True}, "expires_at"),
        ({"owner": "a", "name": 5}, "name"),
        ({"owner": "a", "name": "n" * 201}, "name"),
    ],
)
def test_bad_issue_arguments_name_the_field_and_store_nothing(
    tw: Tokenware, calls: list[str], kwargs: dict[str, Any], field: str
) -> None:
    kwargs = dict(kwargs)
    owner = kwargs.pop("owner")
    calls.clear()
    with pytest.raises(ValidationError, match=field):
        tw.pats.issue(owner, **kwargs)
    assert calls == []


def test_roles_at_the_limits_are_accepted(tw: Tokenware) -> None:
    roles = [f"r{i}:a.b_c-d" for i in range(50)]
    assert len(tw.pats.issue("a", roles=roles).record.roles) == 50
    assert tw.pats.issue("a", roles=["r" * 100]).record.roles == ("r" * 100,)


# -- listing ----------------------------------------------------------------------------


def test_list_is_sorted_by_id_filters_and_paginates_stably(tw: Tokenware) -> None:
    made = []
    for i in range(25):
        owner = "alice" if i % 2 else "bob"
        roles = ["reader"] + (["admin"] if i % 5 == 0 else [])
        made.append(tw.pats.issue(owner, roles=roles).record)
    ids = sorted(r.token_id for r in made)
    assert [r.token_id for r in tw.pats.list()] == ids
    assert [r.token_id for r in tw.pats.list(owner="alice")] == sorted(
        r.token_id for r in made if r.owner == "alice"
    )
    assert len(list(tw.pats.list(has_role="admin"))) == 5
    assert list(tw.pats.list(has_role="writer")) == []
    assert list(tw.pats.list(owner="nobody")) == []
    seen: list[str] = []
    after = None
    while True:
        page = [r.token_id for r in tw.pats.list(after_token_id=after, limit=7)]
        if not page:
            break
        # A token issued mid-way never duplicates or hides an existing one.
        tw.pats.issue("carol")
        seen.extend(page)
        after = page[-1]
    assert seen == sorted(seen) and set(ids) <= set(seen)


def test_list_pages_beyond_one_fetch(tw: Tokenware) -> None:
    ids = sorted(tw.pats.issue("bulk").record.token_id for _ in range(230))
    assert [r.token_id for r in tw.pats.list(owner="bulk")] == ids
    assert [r.token_id for r in tw.pats.list(limit=101)] == ids[:101]


def test_list_arguments_are_checked_at_the_call(tw: Tokenware) -> None:
    for kwargs in ({"limit": 0}, {"limit": True}, {"has_role": "Bad Role"}, {"owner": ""}):
        with pytest.raises(ValidationError):
            tw.pats.list(**kwargs)


def test_one_hash_tag_per_batch_and_bucketed_keys(tw: Tokenware, backend: str) -> None:
    """Every write names one hash tag; records and indexes live in BUCKETS buckets."""
    rules: PatRules = tw.pats._rules
    for _ in range(40):
        token_id = tw.pats.issue("alice").record.token_id
        tag = rules.record_key(token_id).split("{")[1].split("}")[0]
        assert tag == f"p{rules.bucket(token_id):02d}"
        assert rules.owner_key(rules.bucket(token_id), "alice").split("{")[1].startswith(tag)
    assert {rules.bucket(r.token_id) for r in tw.pats.list()} <= set(range(BUCKETS))


# -- authenticate ------------------------------------------------------------------------


def test_authenticate_returns_a_pat_identity(tw: Tokenware, clock: FrozenClock) -> None:
    issued = tw.pats.issue("alice", is_admin=True, roles=["reports:read"], expires_at=clock() + 99)
    identity = tw.authenticate(f"Bearer {issued.token}")
    assert identity.kind == "pat" and identity.subject == "alice"
    assert identity.scopes == frozenset({"reports:read"}) and identity.is_admin
    assert identity.token_id == issued.record.token_id and identity.expires_at == clock() + 99


def test_authenticate_failures_are_generic_and_logged_by_id_only(
    tw: Tokenware, caplog: pytest.LogCaptureFixture
) -> None:
    issued = tw.pats.issue("alice")
    tw.pats.revoke(issued.record.token_id)
    caplog.set_level("DEBUG")
    bad_checksum = issued.token[:-1] + ("0" if issued.token[-1] != "0" else "1")
    for token, reason, logged_id in (
        (issued.token, "revoked", True),
        (bad_checksum, "invalid_checksum", False),
    ):
        caplog.clear()
        with pytest.raises(InvalidToken) as info:
            tw.authenticate(f"Bearer {token}")
        assert reason not in str(info.value) and info.value.status_code == 401
        assert reason in caplog.text
        assert (issued.record.token_id in caplog.text) == logged_id
        assert issued.token not in caplog.text and issued.token[26:69] not in caplog.text


# -- async face ----------------------------------------------------------------------------


def test_async_face_has_the_same_methods(tw: Tokenware) -> None:
    async def main() -> None:
        apats = tw.aio.pats
        issued = await apats.issue("alice", roles=["r"])
        assert (await apats.verify(issued.token)).valid
        token, token_id, phc = await apats.generate()
        await apats.register(token_id, phc, "bob")
        assert (await apats.get(token_id)).owner == "bob"
        assert (await apats.update(token_id, roles={"add": ["x"]})).roles == ("x",)
        assert (await apats.revoke(token_id)).revoked_at is not None
        assert (await apats.restore(token_id)).revoked_at is None
        listed = [r.token_id async for r in apats.list()]
        assert listed == sorted([issued.record.token_id, token_id])
        assert [r.owner async for r in apats.list(owner="bob", limit=1)] == ["bob"]
        identity = await tw.aio.authenticate(f"Bearer {token}")
        assert identity.subject == "bob"
        assert tw.pats.get(token_id).last_used_at is not None  # same store

    asyncio.run(main())


# -- concurrency ---------------------------------------------------------------------------


def test_concurrent_role_adds_are_never_lost(tw: Tokenware) -> None:
    token_id = tw.pats.issue("alice").record.token_id

    def worker(n: int) -> None:
        tw.pats.update(token_id, roles={"add": [f"r{n}"]})

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert tw.pats.get(token_id).roles == tuple(sorted(f"r{n}" for n in range(12)))


def test_revoke_racing_verify_no_verify_succeeds_after_revoke_returns(
    tw: Tokenware, clock: FrozenClock
) -> None:
    issued = tw.pats.issue("alice")
    revoked = threading.Event()
    late_successes: list[PatVerification] = []
    stop = threading.Event()

    def verifier() -> None:
        while not stop.is_set():
            was_revoked = revoked.is_set()  # read BEFORE the verify starts
            result = tw.pats.verify(issued.token)
            clock.advance(61)  # every verify also races a last_used_at write
            if was_revoked and result.valid:
                late_successes.append(result)

    threads = [threading.Thread(target=verifier) for _ in range(4)]
    for t in threads:
        t.start()
    threading.Event().wait(0.05)
    tw.pats.revoke(issued.record.token_id)
    revoked.set()
    threading.Event().wait(0.05)
    stop.set()
    for t in threads:
        t.join()
    assert late_successes == []
    assert tw.pats.get(issued.record.token_id).revoked_at is not None


# -- configuration ----------------------------------------------------------------------


def test_custom_token_prefix(tw: Tokenware) -> None:
    from tokenware.pats import Pats

    rules = PatRules(ring=tw.settings.keys, prefix=tw.settings.key_prefix, token_prefix="acme_")
    pats = Pats(rules, tw._run, tw.settings.clock)
    issued = pats.issue("alice")
    assert issued.token.startswith("acme_") and len(issued.token) == 76
    assert pats.verify(issued.token).valid
    assert pats.verify("twp_" + issued.token[5:]).reason == "invalid_prefix"


@pytest.mark.parametrize("bad", ["twp", "twp-", "", "a b_", "_", "x" * 17 + "_"])
def test_bad_prefixes_are_configuration_errors(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        PatRules(ring=KeyRing.from_secret(SECRET), prefix="tw", token_prefix=bad)


def test_reasons_are_exactly_the_documented_ones() -> None:
    assert REASONS == (
        "invalid_prefix",
        "invalid_format",
        "invalid_checksum",
        "not_found",
        "invalid_phc",
        "unsupported_algorithm",
        "invalid_parameters",
        "invalid_secret",
        "revoked",
        "expired",
    )


# -- secrets at rest -------------------------------------------------------------------------


def _issue_some(tw: Tokenware) -> tuple[list[str], list[str]]:
    tokens, ids = [], []
    for i in range(4):
        issued = tw.pats.issue(f"owner-{i}@example.com", roles=["reader"])
        tokens.append(issued.token)
        ids.append(issued.record.token_id)
        assert tw.pats.verify(issued.token).valid
    legacy, legacy_id, phc, _ = legacy_token()
    tw.pats.register(legacy_id, phc, "legacy@example.com")
    assert tw.pats.verify(legacy).valid  # migrated: the record is rewritten
    tokens.append(legacy)
    ids.append(legacy_id)
    tw.pats.update(ids[0], roles={"add": ["x"]})
    tw.pats.revoke(ids[1])
    return tokens, ids


def _secret_parts(token: str) -> list[bytes]:
    if token.startswith("twp_"):
        return [token.encode(), token[26:69].encode(), token[26:42].encode()]
    secret = token.split(".")[1]
    raw = base64.b64decode(secret)
    return [token.encode(), secret.encode(), secret[:16].encode(), raw, raw.hex().encode()]


@pytest.mark.redis
def test_no_token_secret_reaches_redis(redis_url: str, prefix: str) -> None:
    import redis

    tw = Tokenware(store=redis_url, secret_key=SECRET, key_prefix=prefix)
    client = redis.Redis.from_url(redis_url)
    try:
        tokens, ids = _issue_some(tw)
        blobs: list[bytes] = []
        for name in client.scan_iter(match=f"{prefix}*", count=1000):
            blobs.append(name)
            kind = client.type(name)
            if kind == b"string":
                blobs.append(client.get(name))
            elif kind == b"set":
                blobs.extend(client.smembers(name))
            else:
                blobs.append(repr(client.dump(name)).encode())
        dump = b"\n".join(blobs)
        assert all(i.encode() in dump for i in ids)
        for token in tokens:
            for part in _secret_parts(token):
                assert part not in dump
        names = b"\n".join(client.scan_iter(match=f"{prefix}*", count=1000))
        assert b"example.com" not in names
    finally:
        tw.stores.sync.purge(f"{prefix}:")
        tw.close()
        client.close()


def test_no_token_secret_reaches_the_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "leak.db"
    pair = store_from_url(f"sqlite:///{db}")
    tw = Tokenware(store=pair, secret_key=SECRET)

    def file_bytes() -> bytes:
        parts = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
        return b"".join(p.read_bytes() for p in parts if p.exists())

    try:
        tokens, ids = _issue_some(tw)
        snapshots = [file_bytes()]
    finally:
        tw.close()
    snapshots.append(file_bytes())
    for data in snapshots:
        assert ids[-2].encode() in data
        for token in tokens:
            for part in _secret_parts(token):
                assert part not in data
