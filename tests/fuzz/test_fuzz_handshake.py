"""Fuzzing the TWHS1 handshake: the ``Tokenware-Handshake`` header, origins, CSRF, respond.

Documented (``tokenware.core.handshake`` and ``tw.handshake.respond``):
``HandshakeError`` for a malformed header or point, ``OriginRejected``,
``CsrfFailed``, ``HandshakeReplayed`` (and ``Throttled``/``StoreUnavailable``,
switched off or impossible here).
"""

from __future__ import annotations

import os
from typing import Any

from _fuzz_helpers import B64URL, FUZZ, any_text, b64url_text, fuzz, make_tw, mutated, near, outcome
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import example, given
from hypothesis import strategies as st

from tokenware.core.handshake import (
    MAX_REQUEST_HEADER,
    NONCE_LENGTH,
    POINT_LENGTH,
    HandshakeReply,
    HandshakeRequest,
    b64u,
    b64u_decode,
    check_origin,
    load_client_key,
    normalise_origin,
    parse_request,
)
from tokenware.errors import CsrfFailed, HandshakeError, HandshakeReplayed, OriginRejected

ORIGIN = "https://app.example.com"
TW = make_tw()
HS = TW.handshake.configure(origins=[ORIGIN], session_rate=None, address_rate=None)
CSRF = HS.issue_csrf()
KEY = ec.derive_private_key(0x5EED_F00D, ec.SECP256R1())  # fixed: reproducible mutants
EPK = KEY.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
HEADER = f"v1.{b64u(EPK)}.{b64u(bytes(range(NONCE_LENGTH)))}"


def header_of(epk: bytes, nonce: bytes) -> str:
    """The request header format: ``v1.<b64u(epk)>.<b64u(nonce)>``."""
    return f"v1.{b64u(epk)}.{b64u(nonce)}"


headers = st.one_of(
    any_text(),
    st.builds(
        "{}{}.{}".format,
        st.sampled_from(["v1.", "V1.", "v2.", "v10.", "v1", "v1..", "U2FsdGVkX1", ""]),
        b64url_text(80, 90),
        b64url_text(18, 24),
    ),
    st.builds(header_of, st.binary(min_size=65, max_size=65), st.binary(min_size=16, max_size=16)),
    mutated(HEADER, alphabet=B64URL + ".=+/"),
    near(MAX_REQUEST_HEADER, st.sampled_from(["v1.", "A", "v1.AAAA"])),
)


@FUZZ
@given(value=st.one_of(headers, headers.map(lambda h: h.encode("utf-8", "surrogatepass"))))
@example(value="v1." + "A" * 87 + "." + "A" * 22 + "\n")
@example(value=("v1." + "A" * 87 + "." + "A" * 22).encode() + b"\xff")
def test_parse_request_returns_the_two_fields_or_handshake_error(value: str | bytes) -> None:
    result = outcome(lambda: parse_request(value), HandshakeError)
    if isinstance(result, HandshakeRequest):
        text = value.decode("ascii") if isinstance(value, bytes) else value
        assert header_of_text(result) == text  # parse then format gives the header back
        assert len(result.epk) == 87 and len(result.nonce) == 22
        assert set(result.epk + result.nonce) <= set(B64URL)
    else:
        assert result.status_code == 400 and result.code == "invalid_handshake"


def header_of_text(request: HandshakeRequest) -> str:
    return f"v1.{request.epk}.{request.nonce}"


@fuzz(0.1)
@given(
    epk=st.binary(min_size=POINT_LENGTH, max_size=POINT_LENGTH),
    nonce=st.binary(min_size=NONCE_LENGTH, max_size=NONCE_LENGTH),
    text=st.one_of(b64url_text(0, 30), any_text(30)),
    length=st.integers(0, 20),
)
def test_header_format_parse_and_b64u_round_trip(
    epk: bytes, nonce: bytes, text: str, length: int
) -> None:
    request = parse_request(header_of(epk, nonce))
    assert b64u_decode(request.epk, POINT_LENGTH) == epk
    assert b64u_decode(request.nonce, NONCE_LENGTH) == nonce
    decoded = outcome(lambda: b64u_decode(text, length), HandshakeError)
    if isinstance(decoded, bytes):  # canonical: one spelling per byte string
        assert len(decoded) == length and b64u(decoded) == text


def flip_a_bit_of_the_real_point(i: int) -> bytes:
    return EPK[:i] + bytes([EPK[i] ^ 1]) + EPK[i + 1 :]


@fuzz(0.1)
@given(
    epk=st.one_of(
        st.binary(min_size=POINT_LENGTH, max_size=POINT_LENGTH),
        st.binary(min_size=POINT_LENGTH - 1, max_size=POINT_LENGTH - 1).map(b"\x04".__add__),
        st.integers(0, POINT_LENGTH - 1).map(
            lambda i: EPK[:i] + bytes([EPK[i] ^ 1]) + EPK[i + 1 :]
        ),
        st.sampled_from([b"\x04" + bytes(64), b"\x04" + b"\xff" * 64, EPK]),
    )
)
def test_client_keys_are_on_curve_points_or_handshake_error(epk: bytes) -> None:
    request = parse_request(header_of(epk, bytes(NONCE_LENGTH)))
    result = outcome(lambda: load_client_key(request), HandshakeError)
    if isinstance(result, tuple):
        key, raw, nonce = result
        assert raw == epk and nonce == bytes(NONCE_LENGTH)
        assert key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint) == epk


origins = st.one_of(
    any_text(60),
    st.sampled_from(
        [
            ORIGIN,
            ORIGIN.upper(),
            ORIGIN + ":443",
            ORIGIN + "/",
            ORIGIN + ":0443",
            ORIGIN + ":99999",
            "null",
            "https://app.example.com.evil.com",
            "https://user@app.example.com",
            "http://[::1",
            "http://[::1]:8080",
            "https://app.example.com?",
            "",
        ]
    ),
)


@fuzz(0.1)
@given(origin=origins, site=st.one_of(st.none(), any_text(20), st.sampled_from(["same-origin"])))
def test_origins_normalise_idempotently_and_only_allowed_ones_pass(origin: str, site: Any) -> None:
    canonical = normalise_origin(origin)
    if canonical is not None:
        assert normalise_origin(canonical) == canonical
        assert canonical.startswith(("http://", "https://")) and canonical == canonical.lower()
    result = outcome(lambda: check_origin(origin, site, (ORIGIN,)), OriginRejected)
    assert result == ORIGIN or isinstance(result, OriginRejected)
    if result == ORIGIN and origin:
        assert canonical == ORIGIN or origin == ORIGIN


@fuzz(0.25)
@given(
    header=st.one_of(headers, st.just("fresh")),
    csrf=st.one_of(st.just(CSRF), any_text(100), mutated(CSRF, alphabet=B64URL + ".")),
    cookie=st.sampled_from(["same", "other", None]),
    origin=st.one_of(st.just(ORIGIN), origins),
)
def test_respond_answers_or_raises_a_documented_error(
    header: str, csrf: str, cookie: str | None, origin: str
) -> None:
    if header == "fresh":  # a real client's header, never seen before
        key = ec.generate_private_key(ec.SECP256R1()).public_key()
        epk = key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        header = header_of(epk, os.urandom(NONCE_LENGTH))
    cookie_value = {"same": csrf, "other": CSRF + "x", None: None}[cookie]
    documented = (HandshakeError, OriginRejected, CsrfFailed, HandshakeReplayed)

    def respond() -> HandshakeReply:
        return HS.respond(
            header, csrf_token=csrf, csrf_cookie=cookie_value, origin=origin, payload="the-token"
        )

    result = outcome(respond, *documented)
    if isinstance(result, HandshakeReply):
        assert (csrf, cookie) == (CSRF, "same")
        version, *fields = result.header_value.split(".")
        assert version == "v1" and len(fields) == 4
        assert b64u_decode(fields[0], POINT_LENGTH) == result.epk
        assert b64u_decode(fields[1], NONCE_LENGTH) == result.nonce
        assert b64u(result.ciphertext) == fields[3]
        # The same request again is a replay.
        assert isinstance(outcome(respond, *documented), HandshakeReplayed)
    elif (csrf, cookie) == (CSRF, "same") and origin == ORIGIN:
        assert isinstance(result, (HandshakeError, HandshakeReplayed))
