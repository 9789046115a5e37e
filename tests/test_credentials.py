"""The ``Authorization`` header and ``authenticate()``, the one verification core."""

from __future__ import annotations

import re
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenware import Identity, Tokenware
from tokenware.core.credentials import MAX_TOKEN_LENGTH, parse_authorization
from tokenware.errors import (
    AuthenticationError,
    ClientError,
    InvalidRequest,
    InvalidToken,
    MissingCredentials,
    StoreUnavailable,
)
from tokenware.testing import FrozenClock, make_secret_key

SECRET = make_secret_key("test-credentials")


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("BEARER abc", "abc"),
        ("Bearer  abc", "abc"),  # RFC 6750: "Bearer" 1*SP b64token
        ("  Bearer abc \t", "abc"),
        ("Bearer a-b.c_d~e+f/g==", "a-b.c_d~e+f/g=="),
        ("Bearer " + "a" * MAX_TOKEN_LENGTH, "a" * MAX_TOKEN_LENGTH),
    ],
)
def test_bearer_tokens_are_extracted(header: str, token: str) -> None:
    assert parse_authorization(header) == token


@pytest.mark.parametrize("header", [None, "", " ", "\t", " \t "])
def test_no_credentials(header: str | None) -> None:
    with pytest.raises(MissingCredentials) as info:
        parse_authorization(header)
    assert info.value.status_code == 401
    assert info.value.www_authenticate_error is None


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Digest realm=x", "Token abc", "Basic"])
def test_another_scheme_is_missing_bearer_credentials(header: str) -> None:
    # RFC 6750 §3.1 / security.md C.54: 401 without an error code, not 400.
    with pytest.raises(MissingCredentials):
        parse_authorization(header)


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Bearer\t",
        "Bearer\tabc",
        "Bearer abc def",
        "Bearer abc, Bearer def",
        "Bearer abc,def",
        'Bearer "abc"',
        "Bearer abc;",
        "Bearer abc\r\nX-Injected: 1",
        "Bearer ab\x00c",
        "Bearer tök",
        "Bearer 令牌",
        "Bearer \ud800",
        "Bearer =abc",
        "Bearer abc=def",
        "Bearer\u00a0abc",
        "\u2003Bearer abc",
        "Be@rer abc",
        "Bearer " + "a" * (MAX_TOKEN_LENGTH + 17),
        "Bearer " + "a" * 1_000_000,
    ],
)
def test_malformed_headers_are_invalid_requests(header: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_authorization(header)
    assert info.value.status_code == 400
    assert info.value.www_authenticate_error == "invalid_request"
    # Nothing from the request is reflected into the error.
    assert "abc" not in str(info.value)
    assert "X-Injected" not in info.value.detail


B64TOKEN = st.from_regex(r"[A-Za-z0-9\-._~+/]+=*", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(token=B64TOKEN, spaces=st.integers(1, 3), scheme=st.sampled_from(["Bearer", "bearer"]))
def test_every_b64token_round_trips(token: str, spaces: int, scheme: str) -> None:
    assert parse_authorization(f"{scheme}{' ' * spaces}{token}") == token


@settings(max_examples=500, deadline=None)
@given(header=st.text() | st.text().map(lambda t: "Bearer " + t))
def test_any_text_gives_a_token_or_a_documented_error(header: str) -> None:
    try:
        token = parse_authorization(header)
    except (MissingCredentials, InvalidRequest):
        return
    assert token.isascii()
    assert token in header
    assert len(token) <= MAX_TOKEN_LENGTH + 16


# The grammar of RFC 6750 §2.1 as one expression: what the header must be to
# give a token (optional whitespace around, any case of "Bearer", 1+ spaces).
_RFC6750 = re.compile(r"[ \t]*[Bb][Ee][Aa][Rr][Ee][Rr] +([A-Za-z0-9\-._~+/]+=*)[ \t]*")
_NEAR_TOKEN = st.text(alphabet="AZaz09-._~+/= \t,=\u00e9\u2003", max_size=40)


@settings(max_examples=1000, deadline=None)
@given(
    header=st.text(max_size=60)
    | st.builds(lambda t: "Bearer " + t, _NEAR_TOKEN)
    | st.builds(lambda a, t: a + "Bearer" + t, st.sampled_from(["", " ", "\t"]), _NEAR_TOKEN)
)
def test_parse_agrees_with_the_rfc_6750_grammar(header: str) -> None:
    # The canonical fast path and the step-by-step path together accept
    # exactly what the grammar accepts, and return the same token.
    expected = _RFC6750.fullmatch(header)
    try:
        token = parse_authorization(header)
    except (MissingCredentials, InvalidRequest):
        assert expected is None
    else:
        assert expected is not None and token == expected.group(1)


# -- authenticate -------------------------------------------------------------------


@pytest.fixture
def tw(clock: FrozenClock) -> Tokenware:
    return Tokenware(store="memory://", secret_key=SECRET, clock=clock, session_ttl=60)


def test_a_session_key_authenticates_as_a_session_identity(
    tw: Tokenware, clock: FrozenClock
) -> None:
    s = tw.sessions.add("alice", {"role": "editor"})
    ident = tw.authenticate(f"Bearer {s.key}")
    assert ident == Identity(
        subject="alice",
        kind="session",
        token_id=s.id,
        claims={"role": "editor"},
        expires_at=clock() + 60,
    )
    assert ident.is_authenticated
    assert ident.scopes == frozenset()
    assert s.key is not None
    assert s.key not in repr(ident)


def test_expired_deleted_forged_and_unknown_tokens_are_invalid_token(
    tw: Tokenware, clock: FrozenClock
) -> None:
    expired = tw.sessions.add("alice", ttl=10)
    deleted = tw.sessions.add("alice")
    live = tw.sessions.add("alice")
    assert expired.key and deleted.key and live.key
    tw.sessions.delete(deleted.id)
    clock.advance(11)
    forged = live.key[:-1] + ("x" if live.key[-1] != "x" else "y")
    for token in (expired.key, deleted.key, forged, "tws_" + "0" * 65, "tws_short", "opaque123"):
        with pytest.raises(InvalidToken) as info:
            tw.authenticate(f"Bearer {token}")
        # The client learns the same thing every time; the reason is for logs.
        assert (info.value.status_code, info.value.code) == (401, "invalid_token")
        assert token not in str(info.value)
    assert tw.authenticate(f"Bearer {live.key}").token_id == live.id


def test_authenticate_passes_header_errors_through(tw: Tokenware) -> None:
    with pytest.raises(MissingCredentials):
        tw.authenticate(None)
    with pytest.raises(MissingCredentials):
        tw.authenticate("Basic dXNlcjpwYXNz")
    with pytest.raises(InvalidRequest):
        tw.authenticate("Bearer a b")


@settings(max_examples=300, deadline=None)
@given(header=st.text(max_size=200) | st.text(max_size=100).map(lambda t: "Bearer tws_" + t))
def test_authenticate_any_text_raises_only_client_errors(header: str) -> None:
    tw = Tokenware(store="memory://", secret_key=SECRET)
    with pytest.raises((MissingCredentials, InvalidRequest, InvalidToken)) as info:
        tw.authenticate(header)
    assert isinstance(info.value, ClientError)
    assert info.value.status_code in (400, 401)


def _closed_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_store_outage_is_never_an_authentication_result() -> None:
    pytest.importorskip("redis")
    port = _closed_loopback_port()
    tw = Tokenware(
        store=f"redis://:hunter2@127.0.0.1:{port}/0",
        secret_key=SECRET,
        store_timeout=0.2,
        store_connect_timeout=0.2,
    )
    try:
        token = "tws_" + "A" * 65
        with pytest.raises(StoreUnavailable) as info:
            tw.authenticate(f"Bearer {token}")
        assert not isinstance(info.value, AuthenticationError)
        assert info.value.retry_after >= 1
        assert "hunter2" not in str(info.value)
        # A malformed header needs no store: still a client error.
        with pytest.raises(InvalidRequest):
            tw.authenticate("Bearer a b")
    finally:
        tw.close()
