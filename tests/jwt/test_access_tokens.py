"""The access-token codec (``core/jwt.py``) and its keys (``core/jwt_keys.py``)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from tokenware.config import Settings
from tokenware.core import jws
from tokenware.core.jwt import (
    DEFAULT_AUDIENCE,
    DEFAULT_ISSUER,
    AccessClaims,
    AccessTokenCodec,
    identity_from,
)
from tokenware.core.jwt_keys import JwtKeys, derived_key, thumbprint
from tokenware.errors import ConfigurationError, ExpiredToken, InvalidToken, ValidationError
from tokenware.keys import KeyRing, RootKey

NOW = 1_800_000_000.0
ALGORITHMS = ["HS256", "ES256", "EdDSA"]
OLD = RootKey("old", b"o" * 32)
NEW = RootKey("new", b"n" * 32)


def codec(algorithm: str = "HS256", ring: KeyRing | None = None, **kw: Any) -> AccessTokenCodec:
    keys = JwtKeys.from_ring(ring or KeyRing([NEW]), algorithm, kw.pop("jwt_key", None))
    kw.setdefault("issuer", "https://issuer.example")
    kw.setdefault("audience", "api")
    return AccessTokenCodec(keys, **kw)


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    h, p, _ = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return (
        json.loads(base64.urlsafe_b64decode(pad(h))),
        json.loads(base64.urlsafe_b64decode(pad(p))),
    )


# --- round trips ----------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_round_trip(algorithm: str) -> None:
    c = codec(algorithm)
    token = c.encode(
        "alice",
        now=NOW + 0.9,
        ttl=900,
        jti="J1",
        scopes=["write", "read", "read"],
        claims={"tenant": "t1", "n": [1, {"x": None}]},
        extra={"sid": "fam"},
    )
    header, payload = parts(token)
    assert header == {"alg": algorithm, "typ": "at+jwt", "kid": "new"}
    assert payload == {
        "iss": "https://issuer.example",
        "sub": "alice",
        "aud": "api",
        "exp": int(NOW) + 900,
        "iat": int(NOW),
        "jti": "J1",
        "scope": "read write",
        "sid": "fam",
        "tenant": "t1",
        "n": [1, {"x": None}],
    }
    got = c.decode(token, now=NOW + 10)
    assert got == AccessClaims(
        subject="alice",
        token_id="J1",
        issued_at=int(NOW),
        expires_at=int(NOW) + 900,
        scopes=frozenset({"read", "write"}),
        claims=payload,
    )
    ident = identity_from(got)
    assert (ident.subject, ident.kind, ident.token_id, ident.expires_at) == (
        "alice",
        "jwt",
        "J1",
        float(int(NOW) + 900),
    )
    assert ident.scopes == frozenset({"read", "write"}) and ident.claims["tenant"] == "t1"


def test_no_scope_claim_without_scopes() -> None:
    c = codec()
    token = c.encode("a", now=NOW, ttl=60, jti="j")
    assert "scope" not in parts(token)[1]
    assert c.decode(token, now=NOW).scopes == frozenset()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_keys_are_deterministic(algorithm: str) -> None:
    a = codec(algorithm)
    b = codec(algorithm)
    token = a.encode("s", now=NOW, ttl=60, jti="j")
    assert b.decode(token, now=NOW).subject == "s"
    assert a.jwks() == b.jwks()
    other = codec(algorithm, KeyRing([RootKey("new", b"z" * 32)]))
    with pytest.raises(InvalidToken):
        other.decode(token, now=NOW)


def test_derived_keys_differ_per_algorithm_and_root() -> None:
    hs = derived_key(NEW, "HS256")
    assert isinstance(hs, jws.Hs256) and hs.secret == NEW.derive("jwt/hs256")
    assert hs.secret != NEW.secret
    assert thumbprint(derived_key(NEW, "ES256")) != thumbprint(derived_key(OLD, "ES256"))
    assert thumbprint(derived_key(NEW, "EdDSA")) != thumbprint(derived_key(OLD, "EdDSA"))


# --- time -----------------------------------------------------------------------


def test_expiry_uses_now_and_leeway() -> None:
    c = codec(leeway=30)
    token = c.encode("a", now=NOW, ttl=60, jti="j")
    exp = int(NOW) + 60
    assert c.decode(token, now=exp + 30).subject == "a"
    with pytest.raises(ExpiredToken):
        c.decode(token, now=exp + 30.5)
    assert c.decode(token, now=exp + 10_000, verify_exp=False).token_id == "j"
    with pytest.raises(InvalidToken):  # iat in the future, beyond leeway
        c.decode(token, now=NOW - 31)
    assert c.decode(token, now=NOW - 30).subject == "a"


@pytest.mark.parametrize("leeway", [-1, 301, 1.5, True, "30"])
def test_leeway_is_capped(leeway: Any) -> None:
    with pytest.raises(ConfigurationError):
        codec(leeway=leeway)


@pytest.mark.parametrize(
    "kw",
    [
        {"issuer": ""},
        {"audience": None},
        {"max_size": 10},
        {"max_size": 10**7},
        {"max_lifetime": 0},
    ],
)
def test_codec_config_errors(kw: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        codec(**kw)
    with pytest.raises(ConfigurationError):
        AccessTokenCodec("keys", issuer="i", audience="a")  # type: ignore[arg-type]


# --- rotation and JWKS ----------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_rotation(algorithm: str) -> None:
    before = codec(algorithm, KeyRing([OLD]))
    old_token = before.encode("a", now=NOW, ttl=60, jti="j")
    during = codec(algorithm, KeyRing([NEW, OLD]))
    assert during.decode(old_token, now=NOW).subject == "a"
    new_token = during.encode("b", now=NOW, ttl=60, jti="k")
    assert parts(new_token)[0]["kid"] == "new"
    with pytest.raises(InvalidToken):
        before.decode(new_token, now=NOW)  # unknown kid
    after = codec(algorithm, KeyRing([NEW]))
    assert after.decode(new_token, now=NOW).subject == "b"
    with pytest.raises(InvalidToken):
        after.decode(old_token, now=NOW)  # dropped kid


def test_missing_kid_tries_only_the_current_key() -> None:
    ring = KeyRing([NEW, OLD])
    c = codec("HS256", ring)
    payload = parts(c.encode("a", now=NOW, ttl=60, jti="j"))[1]
    for root, ok in ((NEW, True), (OLD, False)):
        token = jws.compact({"alg": "HS256", "typ": "at+jwt"}, payload, derived_key(root, "HS256"))
        if ok:
            assert c.decode(token, now=NOW).subject == "a"
        else:
            with pytest.raises(InvalidToken):
                c.decode(token, now=NOW)


def test_jwks_shape() -> None:
    assert codec("HS256").jwks() == {"keys": []}
    es = codec("ES256", KeyRing([NEW, OLD])).jwks()
    assert [k["kid"] for k in es["keys"]] == ["new", "old"]
    for k in es["keys"]:
        assert set(k) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
        assert (k["kty"], k["crv"], k["alg"], k["use"]) == ("EC", "P-256", "ES256", "sig")
        assert len(base64.urlsafe_b64decode(k["x"] + "=")) == 32
        assert "d" not in k
    ed = codec("EdDSA").jwks()["keys"]
    assert len(ed) == 1 and set(ed[0]) == {"kty", "crv", "x", "kid", "alg", "use"}
    assert (ed[0]["kty"], ed[0]["crv"], ed[0]["alg"]) == ("OKP", "Ed25519", "EdDSA")
    json.dumps(es)  # plain JSON
    jwks = codec("ES256").jwks()
    jwks["keys"].clear()
    assert codec("ES256").jwks()["keys"], "callers get a copy"


# --- explicit jwt_key -----------------------------------------------------------


def test_explicit_hs256_key() -> None:
    c = codec("HS256", jwt_key=b"s" * 40)
    kid = parts(c.encode("a", now=NOW, ttl=60, jti="j"))[0]["kid"]
    assert kid == thumbprint(jws.Hs256(b"s" * 40))
    assert len(kid) == 43
    assert codec("HS256", jwt_key="s" * 40).keys.current.kid == kid


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA"])
def test_explicit_private_key_object_and_pem(algorithm: str) -> None:
    private: Any = (
        ec.generate_private_key(ec.SECP256R1())
        if algorithm == "ES256"
        else ed25519.Ed25519PrivateKey.generate()
    )
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    a = codec(algorithm, jwt_key=private)
    b = codec(algorithm, jwt_key=pem)
    c = codec(algorithm, jwt_key=pem.decode())
    token = a.encode("a", now=NOW, ttl=60, jti="j")
    assert b.decode(token, now=NOW).subject == c.decode(token, now=NOW).subject == "a"
    (jwk,) = a.jwks()["keys"]
    assert jwk["kid"] == a.keys.current.kid == thumbprint(a.keys.current.key)


def test_explicit_key_rotation_list() -> None:
    k1, k2 = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    old = codec("EdDSA", jwt_key=k1)
    both = codec("EdDSA", jwt_key=[k2, k1])
    assert both.decode(old.encode("a", now=NOW, ttl=60, jti="j"), now=NOW).subject == "a"
    assert len(both.jwks()["keys"]) == 2


@pytest.mark.parametrize(
    ("algorithm", "jwt_key"),
    [
        ("HS256", b"short"),
        ("HS256", 42),
        ("HS256", ec.generate_private_key(ec.SECP256R1())),
        ("ES256", b"x" * 32),
        ("ES256", "not a pem"),
        ("ES256", ed25519.Ed25519PrivateKey.generate()),
        ("ES256", ec.generate_private_key(ec.SECP384R1())),
        ("ES256", ec.generate_private_key(ec.SECP256R1()).public_key()),
        ("EdDSA", ec.generate_private_key(ec.SECP256R1())),
        ("EdDSA", ed25519.Ed25519PrivateKey.generate().public_key()),
        ("RS256", None),
        ("none", None),
    ],
)
def test_jwt_key_errors(algorithm: str, jwt_key: Any) -> None:
    with pytest.raises(ConfigurationError):
        JwtKeys.from_ring(KeyRing([NEW]), algorithm, jwt_key)


def test_jwt_keys_invariants() -> None:
    hs = JwtKeys.from_ring(KeyRing([NEW]), "HS256")
    es = JwtKeys.from_ring(KeyRing([OLD]), "ES256")
    with pytest.raises(ConfigurationError):
        JwtKeys([])
    with pytest.raises(ConfigurationError):
        JwtKeys([hs.current, es.current])  # mixed algorithms
    with pytest.raises(ConfigurationError):
        JwtKeys([hs.current, hs.current])  # duplicate kid
    assert "secret" not in repr(hs) and "n" * 32 not in repr(hs.current)


def test_from_settings_defaults() -> None:
    settings = Settings(keys=KeyRing([NEW]), store="memory://", jwt_algorithm="ES256")
    c = AccessTokenCodec.from_settings(settings)
    assert (c.issuer, c.audience) == (DEFAULT_ISSUER, DEFAULT_AUDIENCE)
    assert c.keys.algorithm == "ES256"
    token = c.encode("a", now=NOW, ttl=60, jti="j")
    assert parts(token)[1]["iss"] == "tokenware"
    custom = Settings(keys=KeyRing([NEW]), store="memory://", issuer="iss", audience="aud")
    c2 = AccessTokenCodec.from_settings(custom)
    assert (c2.issuer, c2.audience, c2.keys.algorithm) == ("iss", "aud", "HS256")


# --- encode validation ----------------------------------------------------------


@pytest.mark.parametrize(
    "kw",
    [
        {"subject": ""},
        {"subject": 5},
        {"jti": ""},
        {"ttl": 0},
        {"ttl": 1.5},
        {"ttl": True},
        {"ttl": 10**9},
        {"now": -1},
        {"scopes": "read write"},
        {"scopes": ["read write"]},
        {"scopes": ['a"b']},
        {"scopes": ["a\\b"]},
        {"scopes": [""]},
        {"scopes": [5]},
        {"scopes": ["é"]},
        {"claims": {"x": object()}},
        {"claims": {"x": float("nan")}},
        {"claims": {"x": "\ud800"}},
        {"claims": {1: "x"}},
        {"claims": {"x": {1: "a", "1": "b"}}},
        {"claims": ["x"]},
        {"claims": {"x": "y" * 9000}},
        {"extra": {"exp": 1}},
        {"extra": {"sub": "root"}},
    ],
)
def test_encode_validation(kw: dict[str, Any]) -> None:
    args: dict[str, Any] = {"subject": "a", "now": NOW, "ttl": 60, "jti": "j"}
    args.update(kw)
    subject = args.pop("subject")
    with pytest.raises(ValidationError):
        codec().encode(subject, **args)


@pytest.mark.parametrize(
    "name", ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "scope", "sid", "typ"]
)
def test_user_claims_cannot_set_reserved(name: str) -> None:
    with pytest.raises(ValidationError, match=name):
        codec().encode("a", now=NOW, ttl=60, jti="j", claims={name: "x"})


def test_decode_non_str() -> None:
    c = codec()
    for value in (None, b"a.b.c", 1, ["a"], object()):
        with pytest.raises(InvalidToken):
            c.decode(value, now=NOW)  # type: ignore[arg-type]


def test_application_at_jwt_typ_is_accepted() -> None:
    c = codec()
    payload = parts(c.encode("a", now=NOW, ttl=60, jti="j"))[1]
    key = c.keys.current.key
    for typ in ("application/at+jwt", "AT+JWT", "Application/At+Jwt"):
        token = jws.compact({"alg": "HS256", "typ": typ, "kid": "new"}, payload, key)
        assert c.decode(token, now=NOW).subject == "a"


def test_aud_array_and_nbf() -> None:
    c = codec()
    payload = parts(c.encode("a", now=NOW, ttl=60, jti="j"))[1]
    key = c.keys.current.key
    header = {"alg": "HS256", "typ": "at+jwt", "kid": "new"}
    ok = {**payload, "aud": ["other", "api"], "nbf": int(NOW)}
    assert c.decode(jws.compact(header, ok, key), now=NOW).subject == "a"
