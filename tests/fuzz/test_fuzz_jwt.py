"""Fuzzing compact JWS parsing and access-token verification.

Documented errors: every parse or verify failure of :mod:`tokenware.core.jws`
and :meth:`AccessTokenCodec.decode` is ``InvalidToken`` (``ExpiredToken``
is one); ``tw.jwt.verify`` adds ``ValidationError`` for a non-string.
Tokens are forged with the deployment's own keys, so the header and claims
checks behind the signature are what gets fuzzed.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from _fuzz_helpers import (
    B64URL,
    FUZZ,
    NOW,
    SECRET,
    any_text,
    b64url_text,
    fuzz,
    make_tw,
    mutated,
    near,
    outcome,
)
from hypothesis import assume, example, given
from hypothesis import strategies as st

from tokenware import Identity
from tokenware.core import jws
from tokenware.core.jwt import RESERVED_CLAIMS, AccessClaims, AccessTokenCodec
from tokenware.core.jwt_keys import JwtKeys
from tokenware.errors import InvalidRequest, InvalidToken, ValidationError
from tokenware.keys import KeyRing

ISS = "https://auth.example.com"
AUD = "api"
RING = KeyRing.from_secret(SECRET)
CODECS = {
    alg: AccessTokenCodec(JwtKeys.from_ring(RING, alg), issuer=ISS, audience=AUD)
    for alg in jws.ALGORITHMS
}
TW = make_tw(issuer=ISS, audience=AUD)  # HS256 over the same secret as CODECS["HS256"]
VALID = {
    alg: codec.encode("alice", now=NOW, ttl=600, jti=f"jti-{alg}", scopes=["read", "write"])
    for alg, codec in CODECS.items()
}
LEEWAY = CODECS["HS256"].leeway
MAX_LIFETIME = 24 * 3600
SCOPE_TOKEN = set(map(chr, [0x21, *range(0x23, 0x5C), *range(0x5D, 0x7F)]))


# --- strategies -----------------------------------------------------------------------

clean_json = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**63),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(st.characters(exclude_categories=["Cs"]), max_size=8),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=2),
        st.dictionaries(st.text(max_size=4).filter(str.isprintable), inner, max_size=2),
    ),
    max_leaves=3,
)
#: Anything ``json.dumps`` writes: NaN, infinities and lone surrogates included.
dirty_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=2), st.dictionaries(st.text(max_size=4), inner, max_size=2)
    ),
    max_leaves=4,
)
_T = int(NOW)
#: Values a claim is replaced with: near-miss dates, wrong types, not-JSON, not-UTF-8.
ODD_CLAIMS = [
    *(_T + d for d in (-MAX_LIFETIME - 1, -MAX_LIFETIME, -LEEWAY - 1, -LEEWAY, -1, 0, 1)),
    *(_T + d for d in (LEEWAY, LEEWAY + 1, 600, MAX_LIFETIME, MAX_LIFETIME + 1)),
    0, -1, 1, 2**53 - 1, 2**53, 2**63, True, False, None, NOW + 0.5, float(_T),
    str(_T), [_T], {}, [], "", " ", "alice", ISS, ISS.upper(), ISS + "/", AUD, [AUD], [AUD, 5],
    ["x", AUD], "read write", "read  write", " read", "re\"ad", "r\u00e9ad", "a\tb",
    float("nan"), float("inf"), "\ud800", {"\udc00": 1}, ["\ud83d", "\ude00"],
]  # fmt: skip
ODD_HEADERS = [
    *jws.ALGORITHMS, "none", "RS256", "hs256", "HS512", "",
    "at+jwt", "AT+JWT", "application/at+jwt", "JWT", "jwt", "at+JWT", "application/jwt",
    *(c.keys.current.kid for c in CODECS.values()), "x" * 65, 5, None, [], {}, float("nan"),
    "\ud800",
]  # fmt: skip
#: One draw picks a (name, value) edit: cheap for hypothesis, so 2,000 examples stay fast.
HEADER_EDITS = [
    (name, value)
    for name in ("alg", "typ", "kid", "jku", "crit", "cty", "")
    for value in ODD_HEADERS
]
CLAIM_EDITS = [(name, value) for name in sorted(RESERVED_CLAIMS) for value in ODD_CLAIMS]
EXTRA_NAMES = ["x", "role", "é", "名前", "", " ", "\x00", "__proto__", "a" * 100, "ALG", "Sub"]
EXTRA_VALUES = [None, True, 0, -1.5, 2**63, "", "v", "é\u2028", [], {}, [1, [2]], {"k": {"n": 1}}]
EXTRAS = [(name, value) for name in EXTRA_NAMES for value in EXTRA_VALUES]


def encode_json(value: Any, ensure_ascii: bool) -> bytes:
    text = json.dumps(value, ensure_ascii=ensure_ascii, separators=(",", ":"))
    return text.encode("utf-8", "surrogatepass")  # lone surrogates: invalid UTF-8


def sign(alg: str, header: bytes, payload: bytes) -> str:
    """A compact token over raw header and payload bytes, signed with ``alg``'s real key."""
    signing_input = jws.b64url_encode(header) + "." + jws.b64url_encode(payload)
    signature = CODECS[alg].keys.current.key.sign(signing_input.encode("ascii"))
    return signing_input + "." + jws.b64url_encode(signature)


def base_header(alg: str) -> dict[str, Any]:
    return {"alg": alg, "typ": "at+jwt", "kid": CODECS[alg].keys.current.kid}


def base_claims() -> dict[str, Any]:
    return {
        "iss": ISS,
        "sub": "alice",
        "aud": AUD,
        "exp": int(NOW) + 600,
        "iat": int(NOW),
        "jti": "jti-1",
    }


def check_claims(claims: AccessClaims) -> None:
    """What every verified token satisfies, whatever its claims were."""
    payload = claims.claims
    assert payload["iss"] == ISS
    assert payload["aud"] == AUD or (isinstance(payload["aud"], list) and AUD in payload["aud"])
    assert isinstance(claims.subject, str) and claims.subject
    assert isinstance(claims.token_id, str) and claims.token_id
    assert type(claims.issued_at) is int and type(claims.expires_at) is int
    assert 0 < claims.issued_at < claims.expires_at <= claims.issued_at + MAX_LIFETIME
    assert claims.issued_at <= NOW + LEEWAY
    assert NOW <= claims.expires_at + LEEWAY
    for scope in claims.scopes:
        assert scope and set(scope) <= SCOPE_TOKEN


# --- base64url and strict JSON ------------------------------------------------------------


@fuzz(0.1)
@given(data=st.binary(max_size=200), text=st.one_of(b64url_text(), any_text(60)))
def test_b64url_round_trips_and_decodes_only_canonical_text(data: bytes, text: str) -> None:
    encoded = jws.b64url_encode(data)
    assert set(encoded) <= set(B64URL)
    assert jws.b64url_decode(encoded) == data
    decoded = outcome(lambda: jws.b64url_decode(text), InvalidToken)
    if isinstance(decoded, bytes):
        assert jws.b64url_encode(decoded) == text  # one spelling per byte string


@fuzz(0.1)
@given(
    value=st.one_of(dirty_json, st.dictionaries(st.text(max_size=6), dirty_json, max_size=3)),
    ensure_ascii=st.booleans(),
    noise=st.sampled_from(["", " ", "\ufeff", "\n\t", "[[[[", "}", ',"a":1']),
    raw=st.binary(max_size=80),
)
def test_strict_json_returns_the_object_or_invalid_token(
    value: Any, ensure_ascii: bool, noise: str, raw: bytes
) -> None:
    result = outcome(lambda: jws.loads_strict(raw), InvalidToken)
    if isinstance(result, dict):
        assert json.loads(raw) == result
    encoded = encode_json(value, ensure_ascii)
    for candidate in (encoded, noise.encode() + encoded, encoded + noise.encode()):
        result = outcome(lambda c=candidate: jws.loads_strict(c), InvalidToken)  # type: ignore[misc]
        if isinstance(result, dict):
            assert json.loads(candidate) == result
    if _dirty(value, ensure_ascii):
        assert isinstance(outcome(lambda: jws.loads_strict(encoded), InvalidToken), InvalidToken)
    elif isinstance(value, dict):
        assert jws.loads_strict(encoded) == json.loads(encoded)


@fuzz(0.05)
@given(depth=st.integers(1, 5000), bracket=st.sampled_from(["[", '{"a":']))
def test_deep_nesting_is_invalid_token_not_recursion_error(depth: int, bracket: str) -> None:
    closer = "]" if bracket == "[" else "}"
    raw = ('{"a":' + bracket * depth + "1" + closer * depth + "}").encode()
    result = outcome(lambda: jws.loads_strict(raw), InvalidToken)
    if isinstance(result, dict):
        assert json.loads(raw) == result


def _dirty(value: Any, ensure_ascii: bool) -> bool:
    """Would ``encode_json(value, ensure_ascii)`` hold something strict JSON refuses:
    NaN or an infinity (not JSON), or a surrogate that is not UTF-8?

    ``\\ud83d\\ude00`` escapes (ensure_ascii) pair up into one valid character;
    raw surrogates (surrogatepass) are never valid UTF-8.
    """
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, str):
        if ensure_ascii:
            value = json.loads(json.dumps(value))
        return any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, dict):
        return any(_dirty(k, ensure_ascii) or _dirty(v, ensure_ascii) for k, v in value.items())
    if isinstance(value, list):
        return any(_dirty(v, ensure_ascii) for v in value)
    return False


# --- compact tokens: random, near the size cap, and mutants of valid ones -------------------

three_segments = st.builds(
    "{}.{}.{}".format, b64url_text(0, 60), b64url_text(0, 60), b64url_text(0, 90)
)


def segment_mutants(token: str) -> list[st.SearchStrategy[str]]:
    """One base64url edit inside each segment of ``token``, and one anywhere."""
    parts, start, found = token.split("."), 0, []
    for part in parts:
        found.append(mutated(token, alphabet=B64URL, start=start, end=start + len(part)))
        start += len(part) + 1
    return [*found, mutated(token, alphabet=B64URL + ".")]


compact_tokens = st.one_of(
    any_text(),
    three_segments,
    st.builds("eyJ{}.{}.{}".format, b64url_text(), b64url_text(), b64url_text()),
    near(jws.MAX_TOKEN_SIZE, st.sampled_from(["a", "ab.", "eyJhbGciOiJIUzI1NiJ9."])),
    *(m for token in VALID.values() for m in segment_mutants(token)),
)
for _alg, _token in VALID.items():  # the originals verify, so their mutants are near misses
    assert CODECS[_alg].decode(_token, now=NOW).subject == "alice"


@FUZZ
@given(token=st.one_of(compact_tokens, st.binary(max_size=60), st.none(), st.integers()))
@example(token="a." * 4096)
@example(token="A.A.A")
@example(token="e30.e30.AA")
def test_random_and_mutated_tokens_parse_strictly_and_never_verify(token: Any) -> None:
    assume(token not in VALID.values())
    result = outcome(lambda: jws.parse(token), InvalidToken)
    if isinstance(result, tuple):
        header, signing_input, payload, signature = result
        assert isinstance(header, dict)
        assert len(token) <= jws.MAX_TOKEN_SIZE
        head, body, sig = token.split(".")
        assert signing_input == f"{head}.{body}".encode() and payload == body.encode()
        assert jws.b64url_encode(signature) == sig  # canonical: the parse round-trips
    for codec in CODECS.values():
        refused = outcome(lambda c=codec: c.decode(token, now=NOW), InvalidToken)  # type: ignore[misc]
        assert isinstance(refused, InvalidToken), token
        assert not isinstance(token, str) or len(token) < 24 or token not in refused.detail


# --- signed random headers and claims: the checks behind the signature ----------------------


@FUZZ
@given(
    alg=st.sampled_from(jws.ALGORITHMS),
    header_edits=st.lists(st.sampled_from(HEADER_EDITS), max_size=2).map(dict),
    header_drop=st.sets(st.sampled_from(["alg", "typ", "kid"]), max_size=1),
    claim_edits=st.lists(st.sampled_from(CLAIM_EDITS), max_size=2).map(dict),
    claim_drop=st.sets(st.sampled_from(sorted(RESERVED_CLAIMS)), max_size=1),
    extra=st.lists(st.sampled_from(EXTRAS), max_size=2).map(dict),
    ensure_ascii=st.booleans(),
    raw=st.sampled_from(
        [None] * 6 + [b"", b"[]", b'{"a":1,"a":2}', b"\xef\xbb\xbf{}", b"{} ", b'{"a":NaN}']
    ),
    raw_is_header=st.booleans(),
)
def test_signed_random_headers_and_claims(
    alg: str,
    header_edits: dict[str, Any],
    header_drop: set[str],
    claim_edits: dict[str, Any],
    claim_drop: set[str],
    extra: dict[str, Any],
    ensure_ascii: bool,
    raw: bytes | None,
    raw_is_header: bool,
) -> None:
    header = {k: v for k, v in base_header(alg).items() if k not in header_drop} | header_edits
    claims = {k: v for k, v in base_claims().items() if k not in claim_drop}
    claims |= extra | claim_edits
    head, body = encode_json(header, ensure_ascii), encode_json(claims, ensure_ascii)
    if raw is not None:
        head, body = (raw, body) if raw_is_header else (head, raw)
    token = sign(alg, head, body)
    result = outcome(lambda: CODECS[alg].decode(token, now=NOW), InvalidToken)
    pristine = (
        raw is None
        and not header_drop
        and not header_edits
        and not claim_drop
        and not claim_edits
        and not _dirty(extra, ensure_ascii)
    )
    if pristine:  # only unregistered claims added: still valid, and they come through
        assert isinstance(result, AccessClaims), result
        assert {k: result.claims[k] for k in extra} == json.loads(json.dumps(extra))
    if isinstance(result, AccessClaims):
        check_claims(result)
    if alg == "HS256" and len(token) < 8000:
        # tw.authenticate dispatches the same token to the same checks.
        identity = outcome(lambda: TW.authenticate("Bearer " + token), InvalidToken, InvalidRequest)
        if isinstance(result, AccessClaims):
            assert isinstance(identity, Identity)
            assert (identity.kind, identity.subject) == ("jwt", result.subject)
            assert identity.scopes == result.scopes
        else:
            assert isinstance(identity, InvalidToken)


# --- tw.jwt.verify -------------------------------------------------------------------------


@fuzz(0.1)
@given(
    token=st.one_of(st.text(max_size=200), three_segments, st.sampled_from(list(VALID.values()))),
)
def test_tw_jwt_verify_returns_an_identity_or_invalid_token(token: str) -> None:
    result = outcome(lambda: TW.jwt.verify(token), InvalidToken, ValidationError)
    if isinstance(result, Identity):
        assert token == VALID["HS256"]
        assert (result.kind, result.subject, result.scopes) == ("jwt", "alice", {"read", "write"})
    else:
        assert isinstance(result, InvalidToken)


@pytest.mark.parametrize("token", ["\ud800", "a.b.\udfff", "e30.e30.\ud83d"])
def test_tw_jwt_verify_with_a_lone_surrogate_is_invalid_token(token: str) -> None:
    result = outcome(lambda: TW.jwt.verify(token), InvalidToken)
    assert isinstance(result, InvalidToken)
