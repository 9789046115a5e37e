"""Fuzzing the ``Authorization`` header and the credential dispatch of ``tw.authenticate``.

``parse_authorization`` documents ``MissingCredentials`` and
``InvalidRequest``; ``authenticate`` adds ``InvalidToken`` (and
``StoreUnavailable``, which the memory store never raises).
"""

from __future__ import annotations

import re

from _fuzz_helpers import FUZZ, any_text, fuzz, make_tw, mutated, near, outcome
from hypothesis import given
from hypothesis import strategies as st

from tokenware import Identity
from tokenware.core.credentials import MAX_TOKEN_LENGTH, parse_authorization
from tokenware.errors import InvalidRequest, InvalidToken, MissingCredentials

B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
TOKEN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"
HEADER_LIMIT = MAX_TOKEN_LENGTH + 16

TW = make_tw(issuer="https://auth.example.com", audience="api")
SESSION = TW.sessions.add("sam", {"team": "blue"}, ttl=3600)
PAT = TW.pats.issue("pat-owner", roles=["reports:read"])
PAIR = TW.jwt.issue("jo", scopes=["read"])
assert SESSION.key is not None
VALID = {
    "session": (SESSION.key, "sam"),
    "pat": (PAT.token, "pat-owner"),
    "jwt": (PAIR.access_token, "jo"),
}
#: What ``authenticate`` logs in ``detail`` per dispatch branch (never shown to clients).
DETAIL = {
    "tws_": "unknown or expired session token",
    "twp_": "invalid personal access token",
    "pat_": "invalid personal access token",
}


def bearer_case() -> st.SearchStrategy[str]:
    """The word Bearer in any mix of upper and lower case."""
    return st.lists(st.booleans(), min_size=6, max_size=6).map(
        lambda upper: "".join(c.upper() if u else c for c, u in zip("bearer", upper, strict=True))
    )


b64token = st.one_of(
    st.builds(
        str.__add__,
        st.text(st.sampled_from(TOKEN_CHARS), min_size=1, max_size=80),
        st.sampled_from(["", "=", "=="]),
    ),
    near(MAX_TOKEN_LENGTH, st.sampled_from(["a", "ab.", "x-_~+/"])),
)


LEFT = ["", " ", "\t", " \t ", "\u2003", "\r\n", "\x00"]
SCHEMES = st.one_of(
    bearer_case(),
    st.sampled_from(["Basic", "Digest", "Token", "Bearer1", "Negotiate", "DPoP"]),
    st.sampled_from(
        ["Be@rer", "Bearer\u00a0", "\u0412\u0435\u0430\u0440\u0435\u0440", "Bear er", "", "Bearer,"]
    ),
)
SEPS = ["", " ", "  ", "   ", "\t", " \t", "\u00a0", "\u3000", ",", " ,"]
TOKENS = st.one_of(b64token, any_text(40), st.sampled_from(["", "=", "abc def", "a,b"]))
RIGHT = ["", " ", "\t", "  \t", "\u2003", "\n", ","]
#: Whitespace and case variants of "Bearer" around valid and broken tokens.
almost_valid = st.builds(
    "{}{}{}{}{}".format,
    st.sampled_from(LEFT),
    SCHEMES,
    st.sampled_from(SEPS),
    TOKENS,
    st.sampled_from(RIGHT),
)


# --- parse_authorization ----------------------------------------------------------------


@FUZZ
@given(header=st.one_of(st.none(), any_text(), near(HEADER_LIMIT, any_text(8)), almost_valid))
def test_random_headers_parse_to_a_b64token_or_a_documented_error(header: str | None) -> None:
    result = outcome(lambda: parse_authorization(header), MissingCredentials, InvalidRequest)
    if isinstance(result, str):
        assert header is not None
        value = header.strip(" \t")
        scheme, _, rest = value.partition(" ")
        assert scheme.lower() == "bearer"
        assert rest.lstrip(" ") == result
        assert B64TOKEN.fullmatch(result)
        assert len(value) <= HEADER_LIMIT
    elif isinstance(result, InvalidRequest):
        assert result.status_code == 400
        assert result.www_authenticate_error == "invalid_request"
    else:
        assert result.status_code == 401
        assert result.www_authenticate_error is None


@fuzz(0.25)
@given(
    left=st.sampled_from(LEFT),
    scheme=SCHEMES,
    sep=st.sampled_from(SEPS),
    token=TOKENS,
    right=st.sampled_from(RIGHT),
)
def test_almost_valid_headers(left: str, scheme: str, sep: str, token: str, right: str) -> None:
    """The exact outcome of :data:`almost_valid` headers, by their parts."""
    header = left + scheme + sep + token + right
    result = outcome(lambda: parse_authorization(header), MissingCredentials, InvalidRequest)
    clean = (
        left in ("", " ", "\t", " \t ")
        and right in ("", " ", "\t", "  \t")
        and sep.strip(" ") == ""
        and sep != ""
        and B64TOKEN.fullmatch(token) is not None
    )
    too_long = len(header.strip(" \t")) > HEADER_LIMIT
    if clean and scheme.lower() == "bearer":
        if too_long:
            assert isinstance(result, InvalidRequest)
        else:
            assert result == token
    elif clean and scheme.isalnum() and scheme.isascii() and not too_long:
        # A well-formed other scheme: no bearer credentials (401, no error code).
        assert isinstance(result, MissingCredentials)
    if isinstance(result, str):
        assert B64TOKEN.fullmatch(result)
        assert scheme.lower() == "bearer"


# --- tw.authenticate: the dispatch ------------------------------------------------------


def authenticate(header: str | None) -> Identity | Exception:
    documented = (MissingCredentials, InvalidRequest, InvalidToken)
    return outcome(lambda: TW.authenticate(header), *documented)


def dispatched(token: str, error: InvalidToken) -> None:
    """The branch that refused ``token`` is the one its shape selects, and the
    reason (for logs) never repeats the token."""
    for prefix, detail in DETAIL.items():
        if token.startswith(prefix):
            assert error.detail == detail, (prefix, error)
            break
    else:
        if token.count(".") == 2:
            assert error.detail != "unrecognised token format"
        else:
            assert error.detail == "unrecognised token format"
    # Every word of a reason is shorter than 24 characters.
    assert len(token) < 24 or token not in error.detail


@fuzz(0.1)
@given(header=st.one_of(st.none(), any_text(), st.builds("Bearer {}".format, any_text())))
def test_random_headers_never_authenticate(header: str | None) -> None:
    result = authenticate(header)
    assert not isinstance(result, Identity)
    if isinstance(result, InvalidToken):
        dispatched(parse_authorization(header), result)


@FUZZ
@given(
    prefix=st.sampled_from(["tws_", "twp_", "pat_", "twr_", "", "TWS_", "tws", "eyJ", "twp"]),
    tail=st.one_of(
        st.text(st.sampled_from(TOKEN_CHARS), max_size=120),
        st.sampled_from(["a.b.c", "..", "a.b", "a.b.c.d", "eyJ.eyJ.sig"]),
        near(MAX_TOKEN_LENGTH - 4, st.sampled_from(["a", "a.b"])),
    ),
    padding=st.sampled_from(["", "=", "=="]),
)
def test_every_prefix_with_a_random_tail_is_refused_by_its_branch(
    prefix: str, tail: str, padding: str
) -> None:
    token = prefix + tail + padding
    result = authenticate("Bearer " + token)
    assert not isinstance(result, Identity)
    if B64TOKEN.fullmatch(token):
        assert isinstance(result, InvalidToken)
        dispatched(token, result)
    else:  # empty, or padding alone
        assert isinstance(result, InvalidRequest)


@fuzz(0.25)
@given(data=st.data(), kind=st.sampled_from(sorted(VALID)))
def test_valid_tokens_of_each_kind_and_their_mutants(data: st.DataObject, kind: str) -> None:
    token, subject = VALID[kind]
    identity = authenticate("Bearer " + token)
    assert isinstance(identity, Identity)
    assert (identity.kind, identity.subject) == (kind, subject)
    forged = data.draw(mutated(token, alphabet=TOKEN_CHARS))
    result = authenticate("Bearer " + forged)
    if forged.lstrip(" ").rstrip(" \t") == token:  # only optional whitespace was added
        assert isinstance(result, Identity) and result.kind == kind
    else:
        assert isinstance(result, (InvalidToken, InvalidRequest))
    if isinstance(result, InvalidToken):
        dispatched(forged, result)


@fuzz(0.05)
@given(
    kind=st.sampled_from(sorted(VALID)),
    prefix=st.sampled_from(["tws_", "twp_", "pat_", "twr_", ""]),
)
def test_a_token_under_another_kinds_prefix_is_refused(kind: str, prefix: str) -> None:
    token = VALID[kind][0]
    body = token.split("_", 1)[1] if kind in ("session", "pat") else token
    forged = prefix + body
    result = authenticate("Bearer " + forged)
    if forged == token:
        assert isinstance(result, Identity) and result.kind == kind
    else:
        assert isinstance(result, InvalidToken)
        dispatched(forged, result)
