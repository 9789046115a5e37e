"""Fuzzing one-time challenges: the sealed envelope and ``tw.challenges`` verify/info/remove.

Documented: ``Sealer.open`` raises only ``InvalidToken``; ``tw.challenges``
raises ``InvalidToken`` (wrong, malformed, tampered or stale secret, a failed
``control``), ``NotFound`` (no such challenge) and ``ValidationError`` (bad
arguments), plus ``Conflict``/``StoreUnavailable`` under contention or an
outage, which a single-threaded memory store never produces.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from _fuzz_helpers import B64URL, FUZZ, any_text, b64url_text, fuzz, make_tw, mutated, near, outcome
from hypothesis import assume, example, given
from hypothesis import strategies as st

from tokenware.challenges import ChallengeVerification
from tokenware.core.challenge import TOKEN_CONTEXT
from tokenware.core.seal import MAX_SEALED_LENGTH, Sealer
from tokenware.errors import InvalidToken, NotFound, ValidationError

TW = make_tw()
SEALER = Sealer(TW.settings.keys, secrets.token_bytes)
ACTION, ID = "verify-email", "ann@example.com"
LINK = TW.challenges.create(ACTION, ID, ttl=3600, metadata={"n": 1}, regenerate=True)
assert LINK.secret is not None and LINK.uid is not None
DOCUMENTED = (InvalidToken, NotFound, ValidationError)


# --- the sealed envelope -------------------------------------------------------------------


@FUZZ
@given(
    token=st.one_of(
        any_text(),
        b64url_text(0, 120),
        near(MAX_SEALED_LENGTH, st.sampled_from(["A", "AQ", "_-"])),
        mutated(LINK.secret, alphabet=B64URL),
        st.none(),
        st.binary(max_size=40),
    ),
    context=st.sampled_from([TOKEN_CONTEXT, b"", b"other"]),
)
def test_open_refuses_anything_but_an_authentic_envelope(token: Any, context: bytes) -> None:
    assume(token != LINK.secret)
    result = outcome(lambda: SEALER.open(token, context), InvalidToken)
    assert isinstance(result, InvalidToken)
    assert SEALER.open(LINK.secret, TOKEN_CONTEXT)  # the real one still opens


@fuzz(0.1)
@given(plaintext=st.binary(max_size=300), context=st.binary(max_size=40), data=st.data())
def test_seal_then_open_round_trips_and_any_edit_is_refused(
    plaintext: bytes, context: bytes, data: st.DataObject
) -> None:
    # A fixed nonce (tests only) keeps the envelope, and so hypothesis' draws, reproducible.
    sealer = Sealer(TW.settings.keys, bytes)
    sealed = sealer.seal(plaintext, context)
    assert set(sealed) <= set(B64URL)
    assert SEALER.open(sealed, context) == plaintext
    forged = data.draw(mutated(sealed, alphabet=B64URL))
    assert isinstance(outcome(lambda: SEALER.open(forged, context), InvalidToken), InvalidToken)


# --- tw.challenges with random and with authentically sealed, random payloads --------------

strings = st.one_of(
    st.sampled_from([ACTION, ID, "", " ", "\ud800", "a\udfffb", "x" * 600, "\x00", "é"]),
    st.text(max_size=12),
)
fields = st.one_of(strings, st.sampled_from([None, 5, True, [], {}, 1.5]))
payloads = st.one_of(
    st.fixed_dictionaries({"a": fields, "i": fields, "u": fields, "s": fields}),
    st.fixed_dictionaries({"a": st.just(ACTION), "i": st.just(ID), "u": fields, "s": strings}),
    st.sampled_from([[], "x", 1, None, {}, {"a": ACTION}, {"a": ACTION, "i": ID, "u": None}]),
)


def sealed(payload: Any, ensure_ascii: bool) -> str:
    """A challenge token sealed with the deployment's own key: it opens, its payload is fuzzed."""
    raw = json.dumps(payload, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass")
    return SEALER.seal(raw, TOKEN_CONTEXT)


@FUZZ
@given(
    payload=payloads,
    ensure_ascii=st.booleans(),
    control=st.sampled_from([None, {"id": ID}, {"action": "other"}, {"bad": 1}, "id"]),
)
# Regressions: a lone surrogate in a sealed payload escaped as UnicodeEncodeError.
@example(payload={"a": "\ud800", "i": "x", "u": None, "s": "y"}, ensure_ascii=True, control=None)
@example(payload={"a": ACTION, "i": ID, "u": None, "s": "\udc00"}, ensure_ascii=True, control=None)
def test_authentic_tokens_with_random_payloads(
    payload: Any, ensure_ascii: bool, control: Any
) -> None:
    token = sealed(payload, ensure_ascii)
    result = outcome(lambda: TW.challenges.verify(token, control=control), *DOCUMENTED)
    # The real secret is never in a fuzzed payload: nothing verifies, shows or is consumed.
    assert isinstance(result, Exception)
    assert isinstance(outcome(lambda: TW.challenges.info(token=token), *DOCUMENTED), Exception)
    assert isinstance(outcome(lambda: TW.challenges.remove(token=token), *DOCUMENTED), Exception)
    info = TW.challenges.info(uid=LINK.uid)
    assert (info.action, info.id, info.attempts) == (ACTION, ID, 0)


@fuzz(0.1)
@given(token=st.one_of(any_text(), b64url_text(20, 200), mutated(LINK.secret, alphabet=B64URL)))
def test_random_tokens_are_invalid(token: str) -> None:
    assume(token != LINK.secret)
    for call in (
        lambda: TW.challenges.verify(token),
        lambda: TW.challenges.info(token=token),
        lambda: TW.challenges.remove(token=token),
    ):
        assert isinstance(outcome(call, *DOCUMENTED), InvalidToken)
    # A sealed token is unforgeable: a refused one never spends an attempt.
    assert TW.challenges.info(uid=LINK.uid).attempts == 0


@fuzz(0.25)
@given(
    secret=st.one_of(any_text(20), st.text(st.sampled_from("0123456789"), max_size=8)),
    action=st.one_of(st.just("login-code"), any_text(8)),
    erase=st.booleans(),
)
@example(secret="\ud800", action="login-code", erase=True)  # regression: UnicodeEncodeError
def test_random_codes_against_a_live_challenge(secret: str, action: str, erase: bool) -> None:
    code = TW.challenges.create("login-code", "bob", secret={"type": "number", "length": 6})
    assert code.secret is not None
    result = outcome(
        lambda: TW.challenges.verify(action=action, id="bob", secret=secret, erase=erase),
        *DOCUMENTED,
    )
    if isinstance(result, ChallengeVerification):
        assert (action, secret) == ("login-code", code.secret)
    elif action == "login-code" and secret != code.secret:
        assert isinstance(result, InvalidToken)
    # A wrong code spends one attempt of five: the right one still verifies after it.
    final = outcome(
        lambda: TW.challenges.verify(action="login-code", id="bob", secret=code.secret),
        *DOCUMENTED,
    )
    assert isinstance(final, ChallengeVerification) or (
        isinstance(result, ChallengeVerification) and erase and isinstance(final, NotFound)
    )
