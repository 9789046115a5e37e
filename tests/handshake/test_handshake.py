"""``tw.handshake`` on memory, SQLite and Redis: TWHS1 as security.md §2 specifies it.

Replies are opened by an independent reference client (``_hs_helpers.RefClient``).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from _hs_helpers import ORIGIN, SECRET, RefClient, make_tw
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenware import AsyncHandshake, Handshake, HandshakeReply, Tokenware, errors
from tokenware.core import handshake as core
from tokenware.stores import StorePair
from tokenware.testing import FrozenClock


def test_round_trip_header_delivery(store_pair: StorePair, clock: FrozenClock, prefix: str) -> None:
    tw = make_tw(store_pair, clock, prefix)
    csrf = tw.handshake.issue_csrf()
    client = RefClient()
    pair = tw.jwt.issue("alice")
    reply = tw.handshake.respond(
        client.header, csrf_token=csrf, csrf_cookie=csrf, origin=ORIGIN, payload=pair
    )
    assert isinstance(reply, HandshakeReply)
    assert reply.delivery == "header"
    headers = dict(reply.headers)
    assert headers["Cache-Control"] == "no-store"
    value = headers["Tokenware-Handshake"]
    assert value.startswith("v1.") and len(value.split(".")) == 5
    assert [len(p) for p in value.split(".")[1:4]] == [87, 22, 16]
    assert json.loads(reply.body) == {"v": 1}
    plain = client.open_header(value, csrf=csrf)
    assert plain == {
        "access_token": pair.access_token,
        "token_type": "Bearer",
        "expires_in": int(pair.access_token_expires_at - clock()),
        "exp": int(pair.access_token_expires_at),
    }
    assert "refresh_token" not in plain
    assert tw.authenticate(f"Bearer {plain['access_token']}").subject == "alice"


def test_round_trip_body_delivery(store_pair: StorePair, clock: FrozenClock, prefix: str) -> None:
    tw = make_tw(store_pair, clock, prefix, delivery="body")
    csrf = tw.handshake.issue_csrf()
    client = RefClient()
    reply = tw.handshake.respond(
        client.header, csrf_token=csrf, csrf_cookie=csrf, origin=ORIGIN, payload={"x": "é"}
    )
    assert "Tokenware-Handshake" not in dict(reply.headers)
    body = json.loads(reply.body)
    assert set(body) == {"v", "epk", "n", "iv", "ct"}
    assert client.open_body(body, csrf=csrf) == {"x": "é"}


def test_async_twin_with_async_payload(
    store_pair: StorePair, clock: FrozenClock, prefix: str
) -> None:
    tw = make_tw(store_pair, clock, prefix)
    assert isinstance(tw.aio.handshake, AsyncHandshake)
    assert isinstance(tw.handshake, Handshake)
    csrf = tw.aio.handshake.issue_csrf()
    client = RefClient()

    async def payload() -> str:
        return "opaque-token"

    async def main() -> HandshakeReply:
        return await tw.aio.handshake.respond(
            client.header, csrf_token=csrf, csrf_cookie=csrf, origin=ORIGIN, payload=payload
        )

    reply = asyncio.run(main())
    plain = client.open_header(reply.header_value, csrf=csrf)
    assert plain == {"access_token": "opaque-token", "token_type": "Bearer"}


def test_jwt_string_payload_gets_exp_and_expires_in(
    store_pair: StorePair, clock: FrozenClock, prefix: str
) -> None:
    tw = make_tw(store_pair, clock, prefix)
    csrf = tw.handshake.issue_csrf()
    client = RefClient()
    token = tw.jwt.issue("bob").access_token
    reply = tw.handshake.respond(client.header, csrf_token=csrf, origin=ORIGIN, payload=token)
    plain = client.open_header(reply.header_value, csrf=csrf)
    assert plain["access_token"] == token
    assert plain["exp"] - int(clock()) == plain["expires_in"] > 0


def test_async_payload_on_the_sync_service_is_a_type_error(
    store_pair: StorePair, clock: FrozenClock, prefix: str
) -> None:
    tw = make_tw(store_pair, clock, prefix)
    csrf = tw.handshake.issue_csrf()

    async def payload() -> str:
        return "t"

    with pytest.raises(TypeError, match=r"tw\.aio"):
        tw.handshake.respond(RefClient().header, csrf_token=csrf, origin=ORIGIN, payload=payload)


def test_session_bound_csrf(store_pair: StorePair, clock: FrozenClock, prefix: str) -> None:
    tw = make_tw(store_pair, clock, prefix)
    csrf = tw.handshake.issue_csrf(session="sess-1")
    client = RefClient()
    reply = tw.handshake.respond(
        client.header, csrf_token=csrf, origin=ORIGIN, session="sess-1", payload="t"
    )
    assert client.open_header(reply.header_value, csrf=csrf)["access_token"] == "t"
    with pytest.raises(errors.CsrfFailed):  # bound token, no session given
        tw.handshake.respond(RefClient().header, csrf_token=csrf, origin=ORIGIN, payload="t")
    unbound = tw.handshake.issue_csrf()
    with pytest.raises(errors.CsrfFailed):  # unbound token, but a session exists
        tw.handshake.respond(
            RefClient().header, csrf_token=unbound, origin=ORIGIN, session="sess-1", payload="t"
        )


def test_csrf_token_expires_on_the_injected_clock(
    store_pair: StorePair, clock: FrozenClock, prefix: str
) -> None:
    tw = make_tw(store_pair, clock, prefix, csrf_max_age=600)
    csrf = tw.handshake.issue_csrf()
    tw.handshake.verify_csrf(csrf, cookie=csrf)
    clock.advance(601)
    with pytest.raises(errors.CsrfFailed):
        tw.handshake.verify_csrf(csrf, cookie=csrf)


def test_csrf_cookie_attributes() -> None:
    tw = Tokenware(store="memory://", secret_key=SECRET)
    cookie = tw.handshake.csrf_cookie()
    assert cookie.name == "tokenware_csrf"
    assert cookie.samesite == "Strict" and cookie.secure and not cookie.httponly
    assert cookie.path == "/"
    value = cookie.header_value()
    assert value.startswith(f"tokenware_csrf={cookie.value}; Path=/; Max-Age=43200")
    assert "SameSite=Strict" in value and "Secure" in value and "HttpOnly" not in value
    assert "; Secure" not in tw.handshake.csrf_cookie(secure=False).header_value()
    assert cookie.value not in repr(cookie)
    tw.handshake.verify_csrf(cookie.value, cookie=cookie.value)


def test_csrf_tokens_survive_key_rotation() -> None:
    from tokenware import KeyRing, RootKey

    old = RootKey("old", b"o" * 32)
    tw_old = Tokenware(store="memory://", keys=KeyRing([old]))
    tw_new = Tokenware(store="memory://", keys=KeyRing([RootKey("new", b"n" * 32), old]))
    token = tw_old.handshake.issue_csrf()
    tw_new.handshake.verify_csrf(token, cookie=token)
    with pytest.raises(errors.CsrfFailed):
        Tokenware(store="memory://", secret_key=b"z" * 32).handshake.verify_csrf(token)


def test_payload_is_made_only_after_every_check(
    store_pair: StorePair, clock: FrozenClock, prefix: str
) -> None:
    tw = make_tw(store_pair, clock, prefix)
    calls: list[int] = []

    def payload() -> str:
        calls.append(1)
        return "t"

    csrf = tw.handshake.issue_csrf()
    client = RefClient()
    tw.handshake.respond(client.header, csrf_token=csrf, origin=ORIGIN, payload=payload)
    for bad in (
        dict(request_header=client.header, csrf_token=csrf, origin=ORIGIN),  # replay
        dict(request_header="v1.x", csrf_token=csrf, origin=ORIGIN),
        dict(request_header=RefClient().header, csrf_token="nope", origin=ORIGIN),
        dict(request_header=RefClient().header, csrf_token=csrf, origin="https://evil.example"),
    ):
        with pytest.raises(errors.ClientError):
            tw.handshake.respond(payload=payload, **bad)  # type: ignore[arg-type]
    assert calls == [1]


def test_origin_normalisation_and_configuration() -> None:
    assert core.normalise_origin("HTTPS://App.Example.com:443") == "https://app.example.com"
    assert core.normalise_origin("http://127.0.0.1:8000") == "http://127.0.0.1:8000"
    assert core.normalise_origin("http://[::1]:80") == "http://[::1]"
    for bad in ("null", "https://a.example/", "https://u@a.example", "ftp://a.example", "", "x"):
        assert core.normalise_origin(bad) is None, bad
    tw = Tokenware(store="memory://", secret_key=SECRET)
    assert tw.handshake.origins == ()
    with pytest.raises(errors.ConfigurationError):
        tw.handshake.configure(origins=["https://a.example/path"])
    with pytest.raises(errors.ConfigurationError):
        tw.handshake.configure(delivery="cookie")
    with pytest.raises(errors.ConfigurationError):
        tw.handshake.configure(session_rate="ten per fortnight")
    hs = tw.handshake.configure(origins="https://A.example")
    assert hs.origins == ("https://a.example",)


def test_no_origin_but_same_origin_fetch_metadata(
    store_pair: StorePair, clock: FrozenClock, prefix: str
) -> None:
    tw = make_tw(store_pair, clock, prefix)
    csrf = tw.handshake.issue_csrf()
    client = RefClient()
    reply = tw.handshake.respond(
        client.header, csrf_token=csrf, origin=None, sec_fetch_site="same-origin", payload="t"
    )
    assert client.open_header(reply.header_value, csrf=csrf, origin=ORIGIN)["access_token"] == "t"
    with pytest.raises(errors.OriginRejected):
        tw.handshake.respond(RefClient().header, csrf_token=csrf, origin=None, payload="t")


def test_request_parsing_exact_sizes() -> None:
    client = RefClient()
    assert len(client.header) == 113
    req = core.parse_request(client.header)
    _key, epk, nonce = core.load_client_key(req)
    assert epk == client.epk and nonce == client.nonce
    assert core.parse_request(client.header.encode()) == req


def test_reply_never_shows_its_ciphertext_in_repr(
    store_pair: StorePair, clock: FrozenClock, prefix: str
) -> None:
    tw = make_tw(store_pair, clock, prefix)
    csrf = tw.handshake.issue_csrf()
    reply = tw.handshake.respond(RefClient().header, csrf_token=csrf, origin=ORIGIN, payload="t")
    assert core.b64u(reply.ciphertext) not in repr(reply)
    assert len(reply.handshake_id) == 32


def payload_of(reply: HandshakeReply, client: RefClient, csrf: str) -> Any:
    return client.open_header(reply.header_value, csrf=csrf)


# --- the CSRF signer is built once per ring: same tokens, byte for byte -----------------


def _legacy_csrf_signer(ring: Any) -> Any:
    """The Signer tokenware built per call before it kept one per ring."""
    import hashlib

    from itsdangerous import Signer

    keys = [k.derive("handshake-csrf") for k in reversed(ring.keys)]
    return Signer(keys, salt="tokenware-handshake-csrf", digest_method=hashlib.sha256)


def _legacy_csrf_token(ring: Any, *, now: float, session: str | None = None) -> str:
    import os

    value = core.b64u(os.urandom(16))
    if session is not None:
        value += core.b64u(ring.mac("handshake-csrf-session", session.encode())[:16])
    return str(_legacy_csrf_signer(ring).sign(f"{value}.{int(now)}").decode("ascii"))


def test_csrf_tokens_match_the_legacy_itsdangerous_signer() -> None:
    from tokenware import KeyRing, RootKey

    ring = KeyRing([RootKey("new", b"n" * 32), RootKey("old", b"o" * 32)])
    tokens = core.CsrfTokens(ring=ring)
    now = 1_700_000_000.0
    fixed = b"\x07" * 16
    for session in (None, "sess-1"):
        issued = tokens.issue(session=session, now=now, rand=lambda n: fixed[:n])
        value = core.b64u(fixed)
        if session is not None:
            value += core.b64u(ring.mac("handshake-csrf-session", session.encode())[:16])
        assert issued == _legacy_csrf_signer(ring).sign(f"{value}.{int(now)}").decode()
        # A token made by the old code path verifies, bound or not.
        legacy = _legacy_csrf_token(ring, now=now, session=session)
        tokens.verify(legacy, cookie=legacy, session=session, now=now + 1)
    # ... and one the legacy signer refuses is refused too.
    legacy = _legacy_csrf_token(ring, now=now)
    value, _, sig = legacy.rpartition(".")
    forged = f"{value}.{sig[:10]}{'A' if sig[10] != 'A' else 'B'}{sig[11:]}"
    with pytest.raises(errors.CsrfFailed):
        tokens.verify(forged, cookie=forged, now=now)


def test_csrf_signer_is_reused_and_verifies_old_key_tokens_after_rotation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from itsdangerous import Signer

    from tokenware import KeyRing, RootKey

    old, new = RootKey("old", b"o" * 32), RootKey("new", b"n" * 32)
    now = 1_700_000_000.0
    before = core.CsrfTokens(ring=KeyRing([old]))
    during = core.CsrfTokens(ring=KeyRing([new, old]))
    after = core.CsrfTokens(ring=KeyRing([new]))
    old_token = before.issue(now=now, rand=lambda n: b"\x01" * n)
    old_bound = before.issue(session="s", now=now, rand=lambda n: b"\x02" * n)
    new_token = during.issue(now=now, rand=lambda n: b"\x03" * n)

    # Built once: no key derivation, no new Signer on any verify or issue.
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("per-call signer work")

    monkeypatch.setattr(Signer, "derive_key", boom)
    monkeypatch.setattr(Signer, "__init__", boom)
    for _ in range(3):
        assert during.verify(old_token, cookie=old_token, now=now) == old_token[:22]
        assert during.verify(new_token, cookie=new_token, now=now) == new_token[:22]
        before.verify(old_token, cookie=old_token, now=now)
        after.verify(new_token, cookie=new_token, now=now)
    # The session binding uses the newest key: a token bound under the old
    # key alone no longer matches (as before), but its signature still does.
    with pytest.raises(errors.CsrfFailed, match="another session"):
        during.verify(old_bound, cookie=old_bound, session="s", now=now)
    before.verify(old_bound, cookie=old_bound, session="s", now=now)
    # The new key signs; a ring without the old key refuses the old tokens.
    with pytest.raises(errors.CsrfFailed, match="signature"):
        before.verify(new_token, cookie=new_token, now=now)
    with pytest.raises(errors.CsrfFailed, match="signature"):
        after.verify(old_token, cookie=old_token, now=now)
    assert during.issue(now=now, rand=lambda n: b"\x03" * n) == new_token


def test_b64u_decode_accepts_exactly_the_canonical_strings() -> None:
    """binascii with explicit checks == the definition: decodes to ``length``
    bytes and re-encodes to the same string."""
    import base64
    import os

    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for length in (*range(0, 20), 32, 64, 65, 66):
        data = os.urandom(length)
        text = core.b64u(data)
        assert text == base64.urlsafe_b64encode(data).decode().rstrip("=")
        assert core.b64u_decode(text, length) == data
        for last in alphabet + "+/=.é\n":
            for candidate in (text[:-1] + last, last + text[1:]):
                try:
                    ref: bytes | None = base64.urlsafe_b64decode(
                        candidate + "=" * (-len(candidate) % 4)
                    )
                except ValueError:
                    ref = None
                canonical = ref is not None and len(ref) == length and core.b64u(ref) == candidate
                if canonical:
                    assert core.b64u_decode(candidate, length) == ref
                else:
                    with pytest.raises(errors.HandshakeError):
                        core.b64u_decode(candidate, length)
        for other in (text + "A", text + "=", text[:-1] if text else "=", text + "=="):
            with pytest.raises(errors.HandshakeError):
                core.b64u_decode(other, length)


def test_replay_keys_follow_the_protocol_layout_whatever_the_rotation() -> None:
    """``{tag}:n:<handshake id>`` and ``{tag}:k:<SHA-256(epk_c)>`` (security.md §2.6 step 5).

    Only the tag, which stands for a secret (session id or CSRF random part),
    is keyed: ring.name_mac under the index key, so a rotation keeps it. The
    nonce is named by the handshake id (a hash), never in clear.
    """
    import hashlib
    import os

    from tokenware import KeyRing, RootKey
    from tokenware.core.encoding import BASE62
    from tokenware.stores.base import hash_tag

    def spec(ring: KeyRing, prefix: str, binding: str, epk: bytes, nonce: bytes) -> tuple[str, str]:
        mac = ring.name_mac("handshake-tag", binding.encode("utf-8"))
        tag = "".join(BASE62[b % 62] for b in mac[:4])
        n = hashlib.sha256(nonce).hexdigest()[:32]
        k = hashlib.sha256(epk).hexdigest()
        return f"{prefix}:hs:{{{tag}}}:n:{n}", f"{prefix}:hs:{{{tag}}}:k:{k}"

    old, new = RootKey("old", b"o" * 32), RootKey("new", b"n" * 32)
    for ring in (KeyRing([old]), KeyRing([new, old]), KeyRing([new])):
        rules = core.HandshakeRules.build(ring=ring, prefix="tw")
        for binding in ("c:" + "A" * 22, "s:sess-1", "s:ünïcode", "s:" + "x" * 600):
            for _ in range(20):
                epk, nonce = os.urandom(65), os.urandom(16)
                got = rules.replay_keys(binding, epk, nonce)
                assert got == spec(ring, "tw", binding, epk, nonce)
                assert all(hash_tag(key) == hash_tag(got[0]) for key in got)
    # Rotation keeps the names: the index (oldest) key names them.
    a = core.HandshakeRules.build(ring=KeyRing([old]), prefix="tw")
    b = core.HandshakeRules.build(ring=KeyRing([new, old]), prefix="tw")
    assert a.replay_keys("s:x", b"e", b"n") == b.replay_keys("s:x", b"e", b"n")
    # Another session, another tag (whatever the nonce and key).
    assert a.replay_keys("s:x", b"e", b"n")[0] != a.replay_keys("s:y", b"e", b"n")[0]


@settings(max_examples=3000, deadline=None)
@given(
    st.one_of(
        st.text(alphabet="ABYZabyz09-_.", max_size=40),
        st.text(alphabet='Az9-_."\\\x00\x1f\x7f é\u2028\ud800', max_size=12),
        st.text(max_size=12),
    )
)
def test_json_string_is_the_encoders_string(text: str) -> None:
    """The no-escaping shortcut for compact-JWS text gives the encoder's bytes."""
    assert core._json_string(text) == core._JSON.encode(text)


def test_payload_bytes_is_the_compact_json_of_the_payload() -> None:
    """The hand-assembled JSON of the token paths equals json.dumps of the dict."""
    import base64
    from dataclasses import dataclass

    def dumps(body: dict[str, Any]) -> bytes:
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        return text.encode("utf-8")

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def jwt(claims: Any) -> str:
        seg = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        return f"eyJhbGciOiJIUzI1NiJ9.{seg}.sig"

    now = 1_700_000_000.5
    for token, exp in (
        (jwt({"exp": 1_700_000_900, "sub": "a"}), 1_700_000_900),
        (jwt({"exp": 1_600_000_000}), 1_600_000_000),  # expired: expires_in 0
        (jwt({"exp": True}), None),
        (jwt({"exp": 1.5}), None),
        (jwt([1, 2]), None),
        ("opaque-token", None),
        ('quote"back\\slash\nnew\u2028line-é-\U0001f600', None),
        ("a.b.c", None),
        ("a." + "x" * 620 + ".c", None),
        # json.loads reads bytes in any encoding it detects, after blanks:
        # the quick "cannot be an object" test must not skip those.
        *(
            (f"h.{b64((pre + body).encode(enc))}.s", exp_)
            for enc in ("utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32")
            for pre in ("", " \t\r\n", "\x0b")
            for body, exp_ in (('{"exp":1700000900}', 1_700_000_900), ("[1]", None))
            if not (pre == "\x0b" and exp_ is not None)
        ),
    ):
        body: dict[str, Any] = {"access_token": token, "token_type": "Bearer"}
        if exp is not None:
            body.update(expires_in=max(0, exp - int(now)), exp=exp)
        assert core.payload_bytes(token, now=now) == dumps(body)

    @dataclass
    class Pair:
        access_token: str
        access_token_expires_at: float
        token_type: Any = "Bearer"

    for pair in (Pair("t", 1_700_000_900.9), Pair('é"', 5, "DPoP"), Pair("t", 5, 7)):
        exp = int(pair.access_token_expires_at)
        assert core.payload_bytes(pair, now=now) == dumps(
            {
                "access_token": pair.access_token,
                "token_type": pair.token_type,
                "expires_in": max(0, exp - int(now)),
                "exp": exp,
            }
        )
    assert core.payload_bytes({"x": "é", "n": 1}, now=now) == dumps({"x": "é", "n": 1})
    for bad in ("", "lone-\ud800-surrogate", {"x": float("nan")}, {"x": object()}, 5, None):
        with pytest.raises(errors.ValidationError):
            core.payload_bytes(bad, now=now)


def test_keyed_mac_is_hmac_sha256() -> None:
    import hashlib
    import hmac
    import os

    from tokenware.core.keyed_mac import KeyedMac

    for key_length in (0, 1, 31, 32, 33, 63, 64, 65, 100, 128, 200):
        key = os.urandom(key_length)
        mac = KeyedMac(key)
        for data in (b"", b"x", os.urandom(16), os.urandom(64), os.urandom(65), os.urandom(1000)):
            assert mac(data) == hmac.new(key, data, hashlib.sha256).digest()
        assert mac(b"again") == mac(b"again")  # the absorbed states are copied, not fed


def test_csrf_signer_agrees_with_itsdangerous_on_mangled_tokens() -> None:
    """The CSRF signer's unsign, and CsrfTokens.verify's signature check,
    accept and refuse exactly what itsdangerous' own Signer (built as before,
    per call) does, on every one-character edit."""
    from itsdangerous import BadSignature

    from tokenware import KeyRing, RootKey

    ring = KeyRing([RootKey("new", b"n" * 32), RootKey("old", b"o" * 32)])
    tokens = core.CsrfTokens(ring=ring)
    ours = tokens._signer
    reference = _legacy_csrf_signer(ring)
    old_only = _legacy_csrf_signer(KeyRing([RootKey("old", b"o" * 32)]))

    def outcome(signer: Any, token: str) -> bytes | None:
        try:
            return bytes(signer.unsign(token))
        except BadSignature:
            return None

    def signature_refused(token: str) -> bool:
        try:
            tokens.verify(token, check_cookie=False, now=1_700_000_000)
        except errors.CsrfFailed as exc:
            return str(exc) == "CSRF token signature"
        return False

    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    extra = "=.+/ !\x00"
    accepted = 0
    for signed in (
        reference.sign("A" * 22 + ".1700000000").decode(),
        old_only.sign("B" * 44 + ".1700000000").decode(),
    ):
        candidates = {signed, signed + "=", signed + "==", signed.replace(".", ""), "." + signed}
        for i in range(len(signed)):
            candidates.add(signed[:i] + signed[i + 1 :])
            for ch in alphabet + extra:
                candidates.add(signed[:i] + ch + signed[i + 1 :])
        for candidate in sorted(candidates):
            expected = outcome(reference, candidate)
            assert outcome(ours, candidate) == expected, candidate
            assert outcome(ours, candidate.encode()) == expected, candidate
            assert signature_refused(candidate) == (expected is None), candidate
            accepted += expected is not None
    assert accepted >= 2  # the originals, and the lenient decoder's equivalent spellings


def test_a_session_that_is_not_valid_text_is_a_validation_error() -> None:
    from tokenware import Tokenware

    tw = Tokenware(store="memory://", secret_key=b"handshake-session-secret-0123456789")
    for bad in ("\ud800", "a\udfffb"):
        with pytest.raises(errors.ValidationError):
            tw.handshake.issue_csrf(session=bad)
    token = tw.handshake.issue_csrf()
    hs = tw.handshake.configure(origins=["https://app.example.com"])
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from tokenware.core.handshake import b64u

    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    )
    with pytest.raises(errors.ValidationError):
        hs.respond(
            f"v1.{b64u(point)}.{b64u(bytes(16))}",
            csrf_token=token,
            csrf_cookie=token,
            origin="https://app.example.com",
            payload="t",
            session="\ud800",
        )
