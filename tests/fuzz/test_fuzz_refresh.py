"""Fuzzing refresh tokens (``twr_``): the format, ``tw.jwt.refresh`` and ``tw.jwt.revoke``.

Documented: ``parse_refresh_token`` returns the parts or ``None`` (a
``ValidationError`` only for a non-string); ``refresh`` raises
``RefreshTokenNotFound`` for anything malformed or unknown and
``TokensMismatch`` for an access token that does not pair; ``revoke``
returns ``False`` for a token it cannot use.
"""

from __future__ import annotations

from _fuzz_helpers import BASE62, FUZZ, any_text, fuzz, make_tw, mutated, near, outcome
from hypothesis import assume, given
from hypothesis import strategies as st

from tokenware.core.refresh import (
    REFRESH_TOKEN_LENGTH,
    TokenPair,
    format_refresh_token,
    parse_refresh_token,
)
from tokenware.errors import RefreshTokenNotFound, TokensMismatch, ValidationError

TW = make_tw()
PAIR = TW.jwt.issue("rita", scopes=["read"])
OTHER = TW.jwt.issue("otto")  # an access token of another family
base62 = st.text(st.sampled_from(BASE62), max_size=120)
tokens = st.one_of(
    any_text(),
    st.builds(str.__add__, st.sampled_from(["twr_", "TWR_", "twr", "twp_", "tws_"]), base62),
    st.builds(str.__add__, st.just("twr_"), near(REFRESH_TOKEN_LENGTH - 4, base62)),
    st.builds(str.__add__, st.just("twr_"), near(REFRESH_TOKEN_LENGTH - 4, any_text(4))),
)


@FUZZ
@given(token=st.one_of(tokens, mutated(PAIR.refresh_token, alphabet=BASE62)))
def test_parse_gives_the_parts_of_a_well_formed_token_or_none(token: str) -> None:
    parts = outcome(lambda: parse_refresh_token(token), ValidationError)
    assert not isinstance(parts, Exception)
    if parts is not None:  # format(parse(t)) == t: one spelling per token
        assert format_refresh_token(parts.family, parts.token_id, parts.secret) == token


@fuzz(0.1)
@given(
    family=st.text(st.sampled_from(BASE62), min_size=22, max_size=22),
    token_id=st.text(st.sampled_from(BASE62), min_size=22, max_size=22),
    secret=st.text(st.sampled_from(BASE62), min_size=43, max_size=43),
)
def test_format_then_parse_round_trips(family: str, token_id: str, secret: str) -> None:
    token = format_refresh_token(family, token_id, secret)
    assert len(token) == REFRESH_TOKEN_LENGTH
    parts = parse_refresh_token(token)
    assert parts is not None
    assert (parts.family, parts.token_id, parts.secret) == (family, token_id, secret)


@fuzz(0.25)
@given(
    token=st.one_of(tokens, mutated(PAIR.refresh_token, alphabet=BASE62)),
    access=st.one_of(
        st.none(),
        any_text(60),
        st.sampled_from([OTHER.access_token, PAIR.access_token]),
        mutated(PAIR.access_token),
    ),
)
def test_refresh_and_revoke_refuse_every_forged_token(token: str, access: str | None) -> None:
    assume(token != PAIR.refresh_token)
    result = outcome(lambda: TW.jwt.refresh(token, access), RefreshTokenNotFound)
    assert isinstance(result, RefreshTokenNotFound)
    assert token not in result.detail or len(token) < 24
    assert outcome(lambda: TW.jwt.revoke(token), ValidationError) is False


@fuzz(0.1)
@given(access=st.one_of(any_text(60), st.just(OTHER.access_token), mutated(PAIR.access_token)))
def _refresh_with_a_foreign_access_token(pair: TokenPair, access: str) -> None:
    result = outcome(lambda: TW.jwt.refresh(pair.refresh_token, access), TokensMismatch)
    assert isinstance(result, TokensMismatch)


def test_a_valid_refresh_token_with_a_foreign_access_token_is_a_mismatch() -> None:
    pair = TW.jwt.issue("rita", scopes=["read"])
    _refresh_with_a_foreign_access_token(pair)
    # TokensMismatch consumed nothing: the refresh token still rotates once.
    renewed = TW.jwt.refresh(pair.refresh_token, pair.access_token)
    assert TW.jwt.verify(renewed.access_token).subject == "rita"
