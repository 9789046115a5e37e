"""Fuzzing personal access tokens: the ``twp_`` format, the ``pat_`` legacy form, verify.

Documented: ``PatRules.parse`` and ``tw.pats.verify`` never raise for a
string; a bad token is a result with ``valid=False`` and a reason from
:data:`~tokenware.core.pat.REASONS` (``ValidationError`` only for a
non-string). Through ``tw.authenticate`` every refusal is ``InvalidToken``.
"""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from _fuzz_helpers import BASE62, FUZZ, any_text, fuzz, make_tw, mutated, near, outcome
from hypothesis import assume, given
from hypothesis import strategies as st

from tokenware import Identity
from tokenware.core.pat import (
    BODY_LENGTH,
    ID_LENGTH,
    MAX_LEGACY_TOKEN_LENGTH,
    REASONS,
    SECRET_LENGTH,
    PatRules,
    PatVerification,
    checksum,
)
from tokenware.errors import InvalidRequest, InvalidToken, ValidationError

TW = make_tw()
RULES = PatRules(ring=TW.settings.keys, prefix=TW.settings.key_prefix)
ISSUED = TW.pats.issue("owner-1", roles=["reports:read"], name="fuzz")
#: An imported @access-tokens token (cheapest scrypt the importer accepts).
LEGACY_ID = "Legacy0Token0Id0Abcde"
LEGACY_SECRET = bytes(range(32))
_SALT = bytes(16)


def _legacy_phc() -> str:
    digest = hashlib.scrypt(LEGACY_SECRET, salt=_SALT, n=2, r=1, p=1, dklen=32)
    salt, hashed = (base64.b64encode(b).decode().rstrip("=") for b in (_SALT, digest))
    return f"$scrypt$ln=1,r=1,p=1${salt}${hashed}"


TW.pats.register(LEGACY_ID, _legacy_phc(), "legacy-owner")
LEGACY = f"pat_{LEGACY_ID}.{base64.b64encode(LEGACY_SECRET).decode()}"
VALID = {ISSUED.token: "owner-1", LEGACY: "legacy-owner"}
B64_CHARS = BASE62 + "+/-_="

LEGACY_SPELLING = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")

base62 = st.text(st.sampled_from(BASE62), max_size=80)


def legacy_secret(token: str) -> str | None:
    """The legacy secret in one spelling (standard alphabet, unpadded), or None."""
    head, dot, secret = token.partition(".")
    if not head.startswith("pat_") or not dot or not LEGACY_SPELLING.fullmatch(secret):
        return None
    if secret.endswith("=") and len(secret) % 4:
        return None
    return head + "." + secret.rstrip("=").replace("-", "+").replace("_", "/")


def verify(token: str) -> PatVerification:
    result = outcome(lambda: TW.pats.verify(token), ValidationError)
    assert isinstance(result, PatVerification)
    assert (result.reason is None) == result.valid
    assert result.reason is None or result.reason in REASONS
    assert result.record is None or result.record.token_id in (ISSUED.record.token_id, LEGACY_ID)
    return result


@FUZZ
@given(
    token=st.one_of(
        any_text(),
        st.builds(str.__add__, st.sampled_from(["twp_", "pat_", "TWP_", "twp", "tw_"]), base62),
        st.builds(
            "pat_{}.{}".format,
            st.text(st.sampled_from(BASE62), min_size=19, max_size=23),
            st.text(st.sampled_from(B64_CHARS), max_size=60),
        ),
        st.builds(str.__add__, st.just("twp_"), near(BODY_LENGTH, base62)),
        st.builds(str.__add__, st.just("pat_"), near(MAX_LEGACY_TOKEN_LENGTH - 4, any_text(8))),
    )
)
def test_random_tokens_are_refused_with_a_documented_reason(token: str) -> None:
    parsed = RULES.parse(token)
    result = verify(token)
    assert not result.valid
    if isinstance(parsed, str):  # refused by shape alone, with that reason
        assert result.reason == parsed
    else:  # well-formed but unknown
        assert result.reason == "not_found"


@fuzz(0.25)
@given(data=st.data(), token=st.sampled_from(sorted(VALID)))
def test_mutants_of_a_valid_token_never_verify(data: st.DataObject, token: str) -> None:
    assert verify(token).valid
    forged = data.draw(mutated(token, alphabet=B64_CHARS))
    assume(forged not in VALID)
    result = verify(forged)
    # @access-tokens secrets are read with or without padding, in either
    # base64 alphabet: only a spelling of the same secret may still verify.
    assert result.valid == (legacy_secret(forged) == legacy_secret(token) is not None)
    # One character of a twp_ token is a burst the CRC32 always catches:
    # no store call is needed to refuse it.
    if token.startswith("twp_") and len(forged) == len(token) and forged.startswith("twp_"):
        assert result.reason in ("invalid_format", "invalid_checksum")


@pytest.mark.parametrize(
    ("spelling", "valid"),
    [
        (LEGACY, True),
        (LEGACY.rstrip("="), True),
        (LEGACY + "=", False),
        (LEGACY.rstrip("=") + "==", False),
        (LEGACY.replace("pat_", "PAT_"), False),
        (LEGACY.replace(".", ".."), False),
    ],
)
def test_legacy_spellings(spelling: str, valid: bool) -> None:
    assert verify(spelling).valid is valid
    assert (legacy_secret(spelling) == legacy_secret(LEGACY)) is valid


@fuzz(0.1)
@given(
    token_id=st.text(st.sampled_from(BASE62), min_size=ID_LENGTH, max_size=ID_LENGTH),
    secret=st.text(st.sampled_from(BASE62), min_size=SECRET_LENGTH, max_size=SECRET_LENGTH),
)
def test_format_then_parse_round_trips(token_id: str, secret: str) -> None:
    token = RULES.format_token(token_id, secret)
    assert token.startswith("twp_") and len(token) == RULES.token_length
    assert token[-6:] == checksum(token[:-6])
    parsed = RULES.parse(token)
    assert not isinstance(parsed, str)
    assert (parsed.token_id, parsed.secret, parsed.legacy) == (token_id, secret.encode(), False)


@fuzz(0.1)
@given(token=st.one_of(any_text(100), st.sampled_from(sorted(VALID))))
def test_pats_through_authenticate(token: str) -> None:
    result = outcome(lambda: TW.authenticate("Bearer " + token), InvalidToken, InvalidRequest)
    if token in VALID:
        assert isinstance(result, Identity)
        assert (result.kind, result.subject) == ("pat", VALID[token])
    else:
        assert not isinstance(result, Identity)
