"""Interop: tokenware's access tokens against PyJWT and joserfc (test-only oracles).

* tokens tokenware issues verify under PyJWT and joserfc, with the HS key
  from :class:`~tokenware.core.jwt_keys.JwtKeys` or the published JWKS;
* tokens PyJWT and joserfc sign with the same key, header and claims verify
  in tokenware;
* tokens they sign with ``alg=none``, another algorithm or the wrong ``typ``
  are refused, and so are the lenient spellings PyJWT accepts.

joserfc warns that ``EdDSA`` is deprecated by RFC 9864 (in favour of
``Ed25519``); tokenware publishes ``EdDSA`` as DESIGN.md §2 specifies, so
that warning is silenced here.
"""

from __future__ import annotations

import time
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from joserfc import jwt as jose_jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, OctKey, OKPKey
from joserfc.jwt import JWTClaimsRegistry

from tokenware.core.jwt import AccessTokenCodec
from tokenware.core.jwt_keys import JwtKeys
from tokenware.errors import InvalidToken
from tokenware.keys import KeyRing, RootKey

pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated:Warning")

ISS = "https://auth.example.com"
AUD = "api"
ALGORITHMS = ["HS256", "ES256", "EdDSA"]
RING = KeyRing([RootKey("k2", b"2" * 32), RootKey("k1", b"1" * 32)])


def codec(algorithm: str, ring: KeyRing = RING) -> AccessTokenCodec:
    return AccessTokenCodec(JwtKeys.from_ring(ring, algorithm), issuer=ISS, audience=AUD)


def issue(c: AccessTokenCodec, now: float) -> str:
    return c.encode(
        "alice",
        now=now,
        ttl=900,
        jti="jti-1",
        scopes=["read", "write"],
        claims={"tenant": "t1", "name": "Zoë"},
        extra={"sid": "fam-1"},
    )


def claims_at(now: float, **changes: Any) -> dict[str, Any]:
    base = {
        "iss": ISS,
        "sub": "alice",
        "aud": AUD,
        "iat": int(now),
        "exp": int(now) + 900,
        "jti": "jti-1",
        "scope": "read",
    }
    base.update(changes)
    return base


# --- the keys as the oracles want them ------------------------------------------


def pyjwt_verify_key(c: AccessTokenCodec, kid: str) -> Any:
    if c.keys.algorithm == "HS256":
        return c.keys.get(kid).key.secret  # type: ignore[union-attr]
    jwk = next(k for k in c.jwks()["keys"] if k["kid"] == kid)
    return pyjwt.PyJWK(jwk).key


def private_key(c: AccessTokenCodec) -> Any:
    key = c.keys.current.key
    return key.secret if c.keys.algorithm == "HS256" else key.private_key  # type: ignore[attr-defined]


def joserfc_verify_key(c: AccessTokenCodec) -> Any:
    if c.keys.algorithm == "HS256":
        return KeySet([OctKey.import_key(k.key.secret, {"kid": k.kid}) for k in c.keys.keys])  # type: ignore[attr-defined]
    return KeySet.import_key_set(c.jwks())


def joserfc_sign_key(c: AccessTokenCodec) -> Any:
    kind = {"HS256": OctKey, "ES256": ECKey, "EdDSA": OKPKey}[c.keys.algorithm]
    return kind.import_key(private_key(c))


# --- tokenware -> oracles -------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_tokenware_tokens_verify_under_pyjwt(algorithm: str) -> None:
    c = codec(algorithm)
    now = time.time()
    token = issue(c, now)
    header = pyjwt.get_unverified_header(token)
    assert header == {"alg": algorithm, "typ": "at+jwt", "kid": "k2"}
    got = pyjwt.decode(
        token,
        pyjwt_verify_key(c, header["kid"]),
        algorithms=[algorithm],
        audience=AUD,
        issuer=ISS,
        options={"require": ["exp", "iat", "iss", "sub", "aud", "jti"], "strict_aud": True},
    )
    assert got["sub"] == "alice" and got["scope"] == "read write" and got["name"] == "Zoë"
    assert got == dict(c.decode(token, now=now).claims)


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA"])
def test_pyjwt_jwk_client_shape(algorithm: str) -> None:
    """The JWKS parses as a PyJWKSet and its keys carry kid, alg and use."""
    c = codec(algorithm)
    keyset = pyjwt.PyJWKSet.from_dict(c.jwks())
    assert [k.key_id for k in keyset.keys] == ["k2", "k1"]
    assert {k.algorithm_name for k in keyset.keys} == {algorithm}
    token = issue(c, time.time())
    key = keyset[pyjwt.get_unverified_header(token)["kid"]]
    assert pyjwt.decode(token, key, algorithms=[algorithm], audience=AUD)["jti"] == "jti-1"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_tokenware_tokens_verify_under_joserfc(algorithm: str) -> None:
    c = codec(algorithm)
    now = time.time()
    token = issue(c, now)
    got = jose_jwt.decode(token, joserfc_verify_key(c), algorithms=[algorithm])
    assert got.header == {"alg": algorithm, "typ": "at+jwt", "kid": "k2"}
    JWTClaimsRegistry(
        now=int(now),
        iss={"essential": True, "value": ISS},
        aud={"essential": True, "value": AUD},
        sub={"essential": True},
        jti={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
    ).validate(got.claims)
    assert got.claims["sid"] == "fam-1"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_rotated_old_key_tokens_verify_in_oracles(algorithm: str) -> None:
    old = codec(algorithm, KeyRing([RootKey("k1", b"1" * 32)]))
    token = issue(old, time.time())
    c = codec(algorithm)  # ring k2 (signs), k1
    key = pyjwt_verify_key(c, "k1")
    assert pyjwt.decode(token, key, algorithms=[algorithm], audience=AUD)["sub"] == "alice"
    assert jose_jwt.decode(token, joserfc_verify_key(c), algorithms=[algorithm]).claims["sub"]


# --- oracles -> tokenware -------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_pyjwt_tokens_verify_in_tokenware(algorithm: str) -> None:
    c = codec(algorithm)
    now = time.time()
    token = pyjwt.encode(
        claims_at(now, aud=["other", AUD]),
        private_key(c),
        algorithm=algorithm,
        headers={"typ": "at+jwt", "kid": "k2"},
    )
    got = c.decode(token, now=now)
    assert (got.subject, got.token_id, got.scopes) == ("alice", "jti-1", frozenset({"read"}))
    # without kid: the current key is tried
    token = pyjwt.encode(
        claims_at(now), private_key(c), algorithm=algorithm, headers={"typ": "application/at+jwt"}
    )
    assert c.decode(token, now=now).subject == "alice"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_joserfc_tokens_verify_in_tokenware(algorithm: str) -> None:
    c = codec(algorithm)
    now = time.time()
    token = jose_jwt.encode(
        {"alg": algorithm, "typ": "at+jwt", "kid": "k2"},
        claims_at(now),
        joserfc_sign_key(c),
        algorithms=[algorithm],
    )
    got = c.decode(token, now=now)
    assert (got.subject, got.token_id) == ("alice", "jti-1")


# --- what must be refused ---------------------------------------------------------


@pytest.mark.filterwarnings("ignore:JWS algorithm .none. is deprecated:Warning")
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_alg_none_from_oracles_refused(algorithm: str) -> None:
    c = codec(algorithm)
    now = time.time()
    for headers in ({"typ": "at+jwt", "kid": "k2"}, {"typ": "at+jwt"}):
        token = pyjwt.encode(claims_at(now), None, algorithm="none", headers=headers)
        with pytest.raises(InvalidToken):
            c.decode(token, now=now)
    token = jose_jwt.encode(
        {"alg": "none", "typ": "at+jwt", "kid": "k2"},
        claims_at(now),
        OctKey.generate_key(256),
        algorithms=["none"],
    )
    with pytest.raises(InvalidToken):
        c.decode(token, now=now)


def _other_keys() -> dict[str, Any]:
    return {
        "HS256": b"z" * 32,
        "HS384": b"z" * 48,
        "HS512": b"z" * 64,
        "ES256": ec.generate_private_key(ec.SECP256R1()),
        "ES384": ec.generate_private_key(ec.SECP384R1()),
        "EdDSA": ed25519.Ed25519PrivateKey.generate(),
    }


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_wrong_alg_from_pyjwt_refused(algorithm: str) -> None:
    c = codec(algorithm)
    now = time.time()
    others = _other_keys()
    own = private_key(c)
    for alg, key in others.items():
        if alg == algorithm:
            key = own  # same alg and key ... but typ JWT: refused below
        elif algorithm == "HS256" and alg.startswith("HS"):
            key = own + b"\0" * (len(key) - len(own))  # the real secret, a longer MAC
        token = pyjwt.encode(claims_at(now), key, algorithm=alg, headers={"typ": "at+jwt"})
        if alg == algorithm:
            assert c.decode(token, now=now).subject == "alice"
        else:
            with pytest.raises(InvalidToken):
                c.decode(token, now=now)
    # (PyJWT itself refuses to MAC with a JWK-looking secret; the forged HS256-with-JWK
    # tokens are in test_hostile_jwt.py, cases A3 and A4.)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_pyjwt_default_typ_jwt_refused(algorithm: str) -> None:
    """PyJWT writes ``typ: JWT`` by default: not an access token (RFC 9068 §4)."""
    c = codec(algorithm)
    now = time.time()
    token = pyjwt.encode(claims_at(now), private_key(c), algorithm=algorithm)
    assert pyjwt.get_unverified_header(token)["typ"] == "JWT"
    with pytest.raises(InvalidToken):
        c.decode(token, now=now)


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA"])
def test_wrong_key_same_alg_from_joserfc_refused(algorithm: str) -> None:
    c = codec(algorithm)
    now = time.time()
    stranger = (ECKey if algorithm == "ES256" else OKPKey).generate_key(
        "P-256" if algorithm == "ES256" else "Ed25519"
    )
    token = jose_jwt.encode(
        {"alg": algorithm, "typ": "at+jwt", "kid": "k2"},
        claims_at(now),
        stranger,
        algorithms=[algorithm],
    )
    with pytest.raises(InvalidToken):
        c.decode(token, now=now)
    # joserfc agrees
    with pytest.raises(JoseError):
        jose_jwt.decode(token, joserfc_verify_key(c), algorithms=[algorithm])


def test_what_pyjwt_accepts_and_tokenware_refuses() -> None:
    """security.md §1.3: PyJWT alone accepts these; tokenware refuses them."""
    c = codec("HS256")
    now = time.time()
    secret = private_key(c)
    lenient = {
        "padded signature": pyjwt.encode(claims_at(now), secret, headers={"typ": "at+jwt"}) + "=",
        "string exp": pyjwt.encode(
            claims_at(now, exp=str(int(now) + 900)), secret, headers={"typ": "at+jwt"}
        ),
    }
    for name, token in lenient.items():
        pyjwt.decode(token, secret, algorithms=["HS256"], audience=AUD)  # PyJWT: fine
        with pytest.raises(InvalidToken):
            c.decode(token, now=now)
        assert name
