"""Hostile cases of security.md §4 G (94-107) against ``tw.handshake``, on every backend.

Case numbers are in the test names. Cases that need an HTTP server (102's
405 on GET/HEAD and caching proxy) belong to the middleware's tests; here
their sans-I/O part is pinned (``Cache-Control: no-store`` on every reply).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
from typing import Any

import pytest
from _hs_helpers import ORIGIN, RefClient, b64u, make_tw, point, unb64u
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tokenware import Tokenware, errors
from tokenware.core import handshake as core
from tokenware.core.ops import Batch
from tokenware.stores import StorePair
from tokenware.testing import FrozenClock


class Counting:
    """A sync store face that records every call."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if callable(attr) and name in ("get", "get_many", "members", "apply", "purge", "gcra"):

            def wrapped(*args: Any, **kwargs: Any) -> Any:
                self.calls.append(name)
                return attr(*args, **kwargs)

            return wrapped
        return attr


@pytest.fixture
def tw(store_pair: StorePair, clock: FrozenClock, prefix: str) -> Tokenware:
    return make_tw(store_pair, clock, prefix)


def respond(tw: Tokenware, header: Any, csrf: Any, **kw: Any) -> Any:
    kw.setdefault("origin", ORIGIN)
    kw.setdefault("payload", "the-access-token")
    return tw.handshake.respond(header, csrf_token=csrf, csrf_cookie=kw.pop("cookie", csrf), **kw)


def no_ec(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    called: list[str] = []

    def spy(*args: Any) -> Any:
        called.append("load_client_key")
        raise AssertionError("EC operation before the CSRF/origin checks")

    monkeypatch.setattr(core, "load_client_key", spy)
    return called


# --- 94: CSRF -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "empty",
        "wrong",
        "unsigned",
        "other-session",
        "cookie-mismatch",
        "no-cookie",
        "non-ascii",
        "huge",
        "tampered-signature",
        "other-secret",
    ],
)
def test_94_bad_csrf_is_403_with_no_ec_operation_and_no_store_call(
    case: str,
    store_pair: StorePair,
    clock: FrozenClock,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counting = Counting(store_pair.sync)
    pair = StorePair(url=store_pair.url, sync=counting, aio=store_pair.aio)  # type: ignore[arg-type]
    tw = make_tw(pair, clock, prefix)
    good = tw.handshake.issue_csrf(session="mine")
    token, cookie, session = {
        "missing": (None, None, "mine"),
        "empty": ("", "", "mine"),
        "wrong": ("abc", "abc", "mine"),
        "unsigned": ("A" * 22, "A" * 22, "mine"),
        "other-session": (good, good, "theirs"),
        "cookie-mismatch": (good, tw.handshake.issue_csrf(session="mine"), "mine"),
        "no-cookie": (good, None, "mine"),
        "non-ascii": (good + "é", good + "é", "mine"),
        "huge": ("A" * 100_000, "A" * 100_000, "mine"),
        # a middle character: the last one of base64 has unused bits, so changing it
        # can decode to the same signature (itsdangerous accepts non-canonical base64)
        "tampered-signature": (good[:-5] + ("A" if good[-5] != "A" else "B") + good[-4:],) * 2
        + ("mine",),
        "other-secret": (
            (
                other := Tokenware(store="memory://", secret_key=b"o" * 32).handshake.issue_csrf(
                    session="mine"
                )
            ),
            other,
            "mine",
        ),
    }[case]
    called = no_ec(monkeypatch)
    with pytest.raises(errors.CsrfFailed) as info:
        respond(tw, RefClient().header, token, cookie=cookie, session=session)
    assert info.value.status_code == 403 and info.value.code == "csrf_failed"
    assert called == [] and counting.calls == []


# --- 95: origin -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "site"),
    [
        ("https://evil.example", None),
        ("https://evil.example", "same-origin"),
        (ORIGIN, "cross-site"),
        ("null", None),
        ("http://app.example.com", None),  # scheme downgrade
        ("https://app.example.com.evil.example", None),
        ("https://app.example.com:8443", None),
        (None, None),
        (None, "cross-site"),
        (None, "same-site"),
        ("https://app.example.com/", None),
    ],
)
def test_95_foreign_origin_is_403_before_anything_else(
    origin: str | None, site: str | None, tw: Tokenware, monkeypatch: pytest.MonkeyPatch
) -> None:
    csrf = tw.handshake.issue_csrf()
    called = no_ec(monkeypatch)
    with pytest.raises(errors.OriginRejected) as info:
        respond(tw, RefClient().header, csrf, origin=origin, sec_fetch_site=site)
    assert info.value.status_code == 403 and info.value.code == "origin_rejected"
    assert called == []


def test_95_no_configured_origin_rejects_everything(store_pair: StorePair, prefix: str) -> None:
    tw = Tokenware(store=store_pair, secret_key=b"k" * 32, key_prefix=prefix)
    csrf = tw.handshake.issue_csrf()
    with pytest.raises(errors.OriginRejected):
        respond(tw, RefClient().header, csrf)


def test_95_reply_headers_carry_no_cors(tw: Tokenware) -> None:
    csrf = tw.handshake.issue_csrf()
    reply = respond(tw, RefClient().header, csrf)
    assert not [n for n, _ in reply.headers if n.lower().startswith("access-control-")]


# --- 96: bad points ---------------------------------------------------------------------


def _compressed() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(Encoding.X962, PublicFormat.CompressedPoint)


def _off_curve() -> bytes:
    raw = bytearray(point(ec.generate_private_key(ec.SECP256R1())))
    raw[-1] ^= 1
    return bytes(raw)


def _x25519() -> bytes:
    return (
        x25519.X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    )


def _header_with_epk(epk_text: str) -> str:
    return f"v1.{epk_text}.{b64u(bytes(16))}"


@pytest.mark.parametrize(
    "epk_text",
    [
        pytest.param(b64u(_off_curve()), id="off-curve"),
        pytest.param(b64u(_compressed()), id="compressed"),
        pytest.param(b64u(_compressed().ljust(65, b"\0")), id="compressed-padded-to-65"),
        pytest.param(b64u(bytes(65)), id="all-zero-65"),
        pytest.param(b64u(b"\x04" + bytes(64)), id="0x04-then-zeros"),
        pytest.param(b64u(b"\x00" + bytes(64)), id="identity-marker"),
        pytest.param(b64u(b"\x04" + b"\xff" * 64), id="coordinates-above-p"),
        pytest.param(b64u(point(ec.generate_private_key(ec.SECP256R1()))[:64]), id="64-bytes"),
        pytest.param(b64u(point(ec.generate_private_key(ec.SECP256R1())) + b"\0"), id="66-bytes"),
        pytest.param(b64u(_x25519()), id="x25519-key"),
        pytest.param(b64u(b"\x06" + bytes(64)), id="hybrid-encoding"),
        pytest.param(base64.b64encode(b"\x04" + b"\xfb" * 64).decode().rstrip("="), id="std-b64"),
        pytest.param(
            b64u(point(ec.generate_private_key(ec.SECP256R1())))[:-1] + "B",
            id="non-canonical-last-char",
        ),
        pytest.param(b64u(point(ec.generate_private_key(ec.SECP256R1()))[:63]) + "==", id="pad"),
    ],
)
def test_96_invalid_client_points_are_400(epk_text: str, tw: Tokenware) -> None:
    csrf = tw.handshake.issue_csrf()
    with pytest.raises(errors.HandshakeError) as info:
        respond(tw, _header_with_epk(epk_text), csrf)
    assert info.value.status_code == 400 and info.value.code == "invalid_handshake"


def test_96_non_canonical_encoding_of_a_valid_point_is_400() -> None:
    epk = point(ec.generate_private_key(ec.SECP256R1()))
    text = b64u(epk)
    # 65 bytes leave 2 unused bits in the last character: set one.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = text[:-1] + alphabet[alphabet.index(text[-1]) | 1]
    assert unb64u(twin) == epk and twin != text
    with pytest.raises(errors.HandshakeError, match="non-canonical"):
        core.load_client_key(core.parse_request(_header_with_epk(twin)))


# --- 97 / 98: replay ----------------------------------------------------------------------


def test_97_replay_of_a_captured_request_is_409_and_mints_nothing(tw: Tokenware) -> None:
    csrf = tw.handshake.issue_csrf()
    client = RefClient()
    minted: list[int] = []

    def payload() -> str:
        minted.append(1)
        return "t"

    respond(tw, client.header, csrf, payload=payload)
    with pytest.raises(errors.HandshakeReplayed) as info:
        respond(tw, client.header, csrf, payload=payload)
    assert info.value.status_code == 409 and info.value.code == "handshake_replayed"
    assert minted == [1]


def test_98_fresh_key_with_a_reused_nonce_is_409(tw: Tokenware) -> None:
    csrf = tw.handshake.issue_csrf()
    first = RefClient()
    respond(tw, first.header, csrf)
    with pytest.raises(errors.HandshakeReplayed):
        respond(tw, RefClient(nonce=first.nonce).header, csrf)


def test_98_reused_key_with_a_fresh_nonce_is_409(tw: Tokenware) -> None:
    csrf = tw.handshake.issue_csrf()
    first = RefClient()
    respond(tw, first.header, csrf)
    with pytest.raises(errors.HandshakeReplayed):
        respond(tw, RefClient(key=first.key).header, csrf)


def test_97_replay_guard_is_one_atomic_batch_with_one_hash_tag(
    store_pair: StorePair, clock: FrozenClock, prefix: str
) -> None:
    counting = Counting(store_pair.sync)
    seen: list[Batch] = []
    inner_apply = counting.inner.apply

    def apply(batch: Batch) -> Any:
        seen.append(batch)
        return inner_apply(batch)

    counting.inner = type(
        "S",
        (),
        {"__getattr__": lambda s, n: getattr(store_pair.sync, n), "apply": staticmethod(apply)},
    )()
    pair = StorePair(url=store_pair.url, sync=counting, aio=store_pair.aio)  # type: ignore[arg-type]
    tw = make_tw(pair, clock, prefix, session_rate=None, address_rate=None)
    csrf = tw.handshake.issue_csrf()
    client = RefClient()
    respond(tw, client.header, csrf)
    assert counting.calls == ["apply"]
    (batch,) = seen
    keys = batch.keys()
    assert len(keys) == 2 and len(batch.guards) == 2 and len(batch.writes) == 2
    tags = {k.split("{", 1)[1].split("}", 1)[0] for k in keys}
    assert len(tags) == 1
    for key in keys:  # hashes only: neither nonce nor key appears in clear
        assert b64u(client.nonce) not in key and client.nonce.hex() not in key
        assert b64u(client.epk)[:20] not in key and client.epk.hex()[:20] not in key
    assert all(w.ttl == 300.0 for w in batch.writes)  # type: ignore[union-attr]


def test_97_fifty_concurrent_identical_handshakes_give_exactly_one_reply(
    store_pair: StorePair, clock: FrozenClock, prefix: str
) -> None:
    tw = make_tw(store_pair, clock, prefix, session_rate=None, address_rate=None)
    csrf = tw.handshake.issue_csrf()
    client = RefClient()
    results: list[str] = []
    barrier = threading.Barrier(50)
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        try:
            respond(tw, client.header, csrf)
            outcome = "ok"
        except errors.HandshakeReplayed:
            outcome = "replayed"
        except Exception as exc:
            outcome = repr(exc)
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == ["ok"] + ["replayed"] * 49


def test_97_fifty_concurrent_identical_async_handshakes_give_exactly_one_reply(
    store_pair: StorePair, clock: FrozenClock, prefix: str
) -> None:
    tw = make_tw(store_pair, clock, prefix, session_rate=None, address_rate=None)
    csrf = tw.handshake.issue_csrf()
    client = RefClient()

    async def one() -> str:
        try:
            await tw.aio.handshake.respond(
                client.header, csrf_token=csrf, origin=ORIGIN, payload="t"
            )
            return "ok"
        except errors.HandshakeReplayed:
            return "replayed"

    async def main() -> list[str]:
        try:
            return list(await asyncio.gather(*(one() for _ in range(50))))
        finally:
            await tw.aio.aclose()

    assert sorted(asyncio.run(main())) == ["ok"] + ["replayed"] * 49


# --- 99 / 100: tampering and binding -------------------------------------------------------


def _flip(data: bytes, index: int = 0) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


@pytest.mark.parametrize("field", ["ct", "tag", "iv", "n_s", "epk_s"])
def test_99_tampered_reply_fails_to_open(field: str, tw: Tokenware) -> None:
    csrf = tw.handshake.issue_csrf()
    client = RefClient()
    reply = respond(tw, client.header, csrf)
    epk, n, iv, ct = reply.epk, reply.nonce, reply.iv, reply.ciphertext
    if field == "ct":
        ct = _flip(ct)
    elif field == "tag":
        ct = _flip(ct, -1)
    elif field == "iv":
        iv = _flip(iv)
    elif field == "n_s":
        n = _flip(n)
    else:
        epk = point(ec.generate_private_key(ec.SECP256R1()))
    assert client.open_fields(reply.epk, reply.nonce, reply.iv, reply.ciphertext, csrf=csrf)
    with pytest.raises(InvalidTag):
        client.open_fields(epk, n, iv, ct, csrf=csrf)


@pytest.mark.parametrize("what", ["csrf", "origin", "other-client"])
def test_100_reply_opened_with_another_csrf_origin_or_key_fails(what: str, tw: Tokenware) -> None:
    csrf = tw.handshake.issue_csrf()
    client = RefClient()
    reply = respond(tw, client.header, csrf)
    with pytest.raises(InvalidTag):
        if what == "csrf":
            client.open_header(reply.header_value, csrf=tw.handshake.issue_csrf())
        elif what == "origin":
            client.open_header(reply.header_value, csrf=csrf, origin="https://evil.example")
        else:
            RefClient(nonce=client.nonce).open_header(reply.header_value, csrf=csrf)


# --- 101 / 104: oversize and legacy headers -------------------------------------------------


@pytest.mark.parametrize("size", [257, 100 * 1024, 1024 * 1024])
def test_101_oversize_header_is_400_before_decoding(
    size: int, tw: Tokenware, monkeypatch: pytest.MonkeyPatch
) -> None:
    csrf = tw.handshake.issue_csrf()
    header = RefClient().header
    header = header + "A" * (size - len(header))
    calls: list[int] = []
    monkeypatch.setattr(core, "_REQUEST", _Spy(core._REQUEST, calls))
    with pytest.raises(errors.HandshakeError, match="longer than 256"):
        respond(tw, header, csrf)
    with pytest.raises(errors.HandshakeError, match="longer than 256"):
        respond(tw, header.encode(), csrf)
    assert calls == []  # refused on length alone


class _Spy:
    def __init__(self, inner: Any, calls: list[int]) -> None:
        self.inner, self.calls = inner, calls

    def fullmatch(self, value: str) -> Any:
        self.calls.append(1)
        return self.inner.fullmatch(value)


@pytest.mark.parametrize(
    "header",
    [
        "U2FsdGVkX1+abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOP==",
        "v0." + RefClient().header[3:],
        "v2." + RefClient().header[3:],
        "x1." + RefClient().header[3:],
        "V1." + RefClient().header[3:],
        RefClient().header + ".",
        RefClient().header + "\n",
        " " + RefClient().header,
        RefClient().header[:-1],
        RefClient().header.replace(".", ",", 1),
        "v1.." + RefClient().header[3:],
        "",
        "v1",
        "v1.ÿ" + RefClient().header[4:],
    ],
)
def test_104_legacy_unknown_version_and_malformed_headers_are_400(
    header: str, tw: Tokenware
) -> None:
    csrf = tw.handshake.issue_csrf()
    with pytest.raises(errors.HandshakeError):
        respond(tw, header, csrf)


def test_104_legacy_value_gets_a_clear_reason() -> None:
    with pytest.raises(errors.HandshakeError, match="legacy tokensec"):
        core.parse_request("U2FsdGVkX1+AAAAAAAAAAAAAAAAAAAAAAAAAA")
    with pytest.raises(errors.HandshakeError, match="unsupported handshake version"):
        core.parse_request("v2." + RefClient().header[3:])
    with pytest.raises(errors.HandshakeError, match="no Tokenware-Handshake"):
        core.parse_request(None)
    with pytest.raises(errors.HandshakeError, match="not ASCII"):
        core.parse_request("v1.é".encode())


# --- 102: no-store --------------------------------------------------------------------------


@pytest.mark.parametrize("delivery", ["header", "body"])
def test_102_replies_are_never_cacheable(delivery: str, tw: Tokenware) -> None:
    csrf = tw.handshake.issue_csrf()
    reply = respond(tw, RefClient().header, csrf, delivery=delivery)
    headers = dict(reply.headers)
    assert headers["Cache-Control"] == "no-store"
    assert headers["Vary"] == "Cookie"
    assert reply.status == 200


# --- 103: throttling -----------------------------------------------------------------------


def test_103_more_than_n_handshakes_per_session_is_429(
    store_pair: StorePair, clock: FrozenClock, prefix: str
) -> None:
    tw = make_tw(store_pair, clock, prefix, session_rate="3/minute", address_rate=None)
    csrf = tw.handshake.issue_csrf(session="s1")
    for _ in range(3):
        respond(tw, RefClient().header, csrf, session="s1")
    with pytest.raises(errors.Throttled) as info:
        respond(tw, RefClient().header, csrf, session="s1")
    assert info.value.status_code == 429 and info.value.retry_after >= 1
    # another session is not affected
    other = tw.handshake.issue_csrf(session="s2")
    respond(tw, RefClient().header, other, session="s2")


def test_103_per_address_throttle(store_pair: StorePair, clock: FrozenClock, prefix: str) -> None:
    tw = make_tw(store_pair, clock, prefix, session_rate=None, address_rate="2/minute")
    for _ in range(2):
        csrf = tw.handshake.issue_csrf()
        respond(tw, RefClient().header, csrf, address="203.0.113.9")
    with pytest.raises(errors.Throttled):
        respond(tw, RefClient().header, tw.handshake.issue_csrf(), address="203.0.113.9")
    respond(tw, RefClient().header, tw.handshake.issue_csrf(), address="203.0.113.10")


def test_103_no_session_throttles_per_csrf_token(
    store_pair: StorePair, clock: FrozenClock, prefix: str
) -> None:
    tw = make_tw(store_pair, clock, prefix, session_rate="2/minute", address_rate=None)
    csrf = tw.handshake.issue_csrf()
    respond(tw, RefClient().header, csrf)
    respond(tw, RefClient().header, csrf)
    with pytest.raises(errors.Throttled):
        respond(tw, RefClient().header, csrf)


def test_store_down_is_503_never_a_pass(clock: FrozenClock, prefix: str) -> None:
    from tokenware.stores import store_from_url

    pair = store_from_url("redis://127.0.0.1:1/0", timeout=0.2, connect_timeout=0.2)
    tw = make_tw(pair, clock, prefix)
    csrf = tw.handshake.issue_csrf()
    with pytest.raises(errors.StoreUnavailable) as info:
        respond(tw, RefClient().header, csrf)
    assert info.value.status_code == 503
    pair.sync.close()


# --- 105: passive observer -------------------------------------------------------------------


def test_105_passive_observer_sees_no_token_and_cannot_decrypt(
    tw: Tokenware, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = tw.jwt.issue("alice").access_token
    csrf = tw.handshake.issue_csrf()
    client = RefClient()
    for delivery in ("header", "body"):
        client = RefClient()
        reply = respond(tw, client.header, csrf, payload=token, delivery=delivery)
        captured = "\n".join(
            [
                client.header,
                csrf,
                *(f"{n}: {v}" for n, v in reply.headers),
                reply.body.decode(),
                repr(reply),
                caplog.text,
            ]
        )
        assert token not in captured
        for part in token.split("."):
            assert part not in captured
        # Everything captured, but a different private key: nothing opens.
        with pytest.raises(InvalidTag):
            observer = RefClient(nonce=client.nonce)
            if delivery == "header":
                observer.open_header(reply.header_value, csrf=csrf)
            else:
                observer.open_body(json.loads(reply.body), csrf=csrf)
        assert (
            client.open_fields(reply.epk, reply.nonce, reply.iv, reply.ciphertext, csrf=csrf)[
                "access_token"
            ]
            == token
        )


# --- 106: header delivery above 4 KB -----------------------------------------------------------


def test_106_header_reply_above_4096_bytes_is_refused_with_a_clear_error(tw: Tokenware) -> None:
    csrf = tw.handshake.issue_csrf()
    big = {"access_token": "x" * 4000}
    with pytest.raises(errors.HandshakeError, match=r"4096-byte limit.*'body'"):
        respond(tw, RefClient().header, csrf, payload=big)
    client = RefClient()
    reply = respond(tw, client.header, csrf, payload=big, delivery="body")
    assert client.open_body(json.loads(reply.body), csrf=csrf) == big


def test_106_the_limit_is_exact(tw: Tokenware) -> None:
    csrf = tw.handshake.issue_csrf()
    overhead = len('{"access_token":""}')
    fits = None
    for n in range(2800, 3000):
        if core.header_line_length(overhead + n) > core.MAX_HEADER_DELIVERY:
            fits = n - 1
            break
    assert fits is not None
    reply = respond(tw, RefClient().header, csrf, payload={"access_token": "y" * fits})
    line = f"Tokenware-Handshake: {reply.header_value}"
    assert len(line) <= 4096 and core.header_line_length(overhead + fits) == len(line)
    with pytest.raises(errors.HandshakeError):
        respond(tw, RefClient().header, csrf, payload={"access_token": "y" * (fits + 3)})


# --- 107: the documented limitation ---------------------------------------------------------------


def test_107_script_in_the_page_completes_its_own_handshake(tw: Tokenware) -> None:
    """Pins the docs: whoever holds the cookie and the CSRF token (any script in the
    page) can run a handshake and read the token. TWHS1 does not stop XSS."""
    csrf = tw.handshake.issue_csrf(session="victim")
    injected = RefClient()
    reply = respond(tw, injected.header, csrf, session="victim")
    assert injected.open_header(reply.header_value, csrf=csrf)["access_token"]


def test_payload_errors_are_validation_errors(tw: Tokenware) -> None:
    csrf = tw.handshake.issue_csrf()
    for bad in (b"bytes", 3, "", {"x": float("nan")}, {"x": object()}):
        with pytest.raises(errors.ValidationError):
            respond(tw, RefClient().header, csrf, payload=bad)
