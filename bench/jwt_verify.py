"""Access-token verify cost: tokenware vs PyJWT vs joserfc vs bare primitives.

Run: ``python bench/jwt_verify.py`` (needs the test extras: PyJWT, joserfc).

For each algorithm one token is issued by tokenware and verified, from
precomputed key objects, by:

* ``tokenware``   ``AccessTokenCodec.decode`` (every check of security.md §3.1);
* ``PyJWT``       ``jwt.decode`` with algorithms, audience and issuer;
* ``joserfc``     ``jwt.decode`` plus ``JWTClaimsRegistry.validate`` (iss, aud, exp...);
* ``bare``        the signature check alone: ``hmac.digest`` + ``compare_digest``, or
                  ``cryptography``'s ECDSA / Ed25519 ``verify`` of pre-decoded bytes.

Each figure is the best of 11 rounds of a fixed number of calls, the
verifiers taking turns within a round (bounded: the
whole script takes well under a minute). Ratios are ``other / tokenware``
(>1: tokenware is faster) and ``tokenware / bare`` (the overhead of parsing
and checking on top of the raw signature check).
"""

from __future__ import annotations

import hashlib
import hmac
import sys
import time
import timeit
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jwt as pyjwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet, OctKey
from joserfc.jwt import JWTClaimsRegistry

from tokenware.core import jws
from tokenware.core.jwt import AccessTokenCodec
from tokenware.core.jwt_keys import JwtKeys
from tokenware.keys import KeyRing, RootKey

warnings.filterwarnings("ignore", message="EdDSA is deprecated")

ISS = "https://auth.example.com"
AUD = "api"
RING = KeyRing([RootKey("k1", b"b" * 32)])
# calls per run, per algorithm (HMAC is ~20x cheaper than a signature check)
NUMBER = {"HS256": 5_000, "ES256": 1_000, "EdDSA": 1_000}
REPEAT = 11


def best_us(verifiers: dict[str, Callable[[], Any]], number: int) -> dict[str, float]:
    """Best-of-REPEAT microseconds per call of each verifier.

    The verifiers take turns within each round, so a burst of noise from
    other processes hits all of them alike instead of one.
    """
    best = dict.fromkeys(verifiers, float("inf"))
    for fn in verifiers.values():
        fn()  # warm up, and fail early if it raises
    for _ in range(REPEAT):
        for name, fn in verifiers.items():
            best[name] = min(best[name], timeit.timeit(fn, number=number))
    return {name: seconds / number * 1e6 for name, seconds in best.items()}


def bare_verifier(codec: AccessTokenCodec, token: str) -> Callable[[], Any]:
    head, payload, sig = token.split(".")
    data = f"{head}.{payload}".encode()
    raw = jws.b64url_decode(sig)
    key = codec.keys.current.key
    if isinstance(key, jws.Hs256):
        secret = key.secret
        return lambda: hmac.compare_digest(hmac.digest(secret, data, hashlib.sha256), raw)
    if isinstance(key, jws.Es256):
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        public = key.public_key
        algorithm = ec.ECDSA(hashes.SHA256())
        return lambda: public.verify(der, data, algorithm)
    assert isinstance(key, jws.EdDSA)
    ed_public = key.public_key
    return lambda: ed_public.verify(raw, data)


def measure(algorithm: str) -> dict[str, float]:
    """µs per verify of one tokenware-issued token, by each verifier."""
    codec = AccessTokenCodec(JwtKeys.from_ring(RING, algorithm), issuer=ISS, audience=AUD)
    now = time.time()
    token = codec.encode(
        "alice", now=now, ttl=900, jti="Q3kd93jsl2kd", scopes=["read", "write"],
        extra={"sid": "fam-1"},
    )  # fmt: skip
    if algorithm == "HS256":
        py_key: Any = codec.keys.current.key.secret  # type: ignore[attr-defined]
        jose_key: Any = OctKey.import_key(py_key)
    else:
        py_key = pyjwt.PyJWK(codec.jwks()["keys"][0]).key
        jose_key = KeySet.import_key_set(codec.jwks())
    registry = JWTClaimsRegistry(
        iss={"essential": True, "value": ISS},
        aud={"essential": True, "value": AUD},
        sub={"essential": True},
        jti={"essential": True},
    )
    algs = [algorithm]

    def run_jose() -> None:
        registry.validate(jose_jwt.decode(token, jose_key, algorithms=algs).claims)

    return best_us(
        {
            "tokenware": lambda: codec.decode(token, now=now),
            "PyJWT": lambda: pyjwt.decode(token, py_key, algorithms=algs, audience=AUD, issuer=ISS),
            "joserfc": run_jose,
            "bare": bare_verifier(codec, token),
        },
        NUMBER[algorithm],
    )


def main() -> int:
    started = time.perf_counter()
    print(f"python {sys.version.split()[0]}, PyJWT {pyjwt.__version__}")
    print("µs per verify (best of 11 rounds)")
    print("ratio = other / tokenware; overhead = tokenware / bare\n")
    print(
        f"{'alg':6} {'tokenware':>10} {'PyJWT':>9} {'joserfc':>9} {'bare':>8}"
        f" {'PyJWT/tw':>9} {'joserfc/tw':>11} {'tw/bare':>8}"
    )
    results: dict[str, dict[str, float]] = {}
    for algorithm in ("HS256", "ES256", "EdDSA"):
        row = results[algorithm] = measure(algorithm)
        tw = row["tokenware"]
        print(
            f"{algorithm:6} {tw:10.2f} {row['PyJWT']:9.2f} {row['joserfc']:9.2f} {row['bare']:8.2f}"
            f" {row['PyJWT'] / tw:8.2f}x {row['joserfc'] / tw:10.2f}x {tw / row['bare']:7.2f}x"
        )
    hs, es = results["HS256"], results["ES256"]
    print()
    hs_ratio = hs["PyJWT"] / hs["tokenware"]
    es_ratio = es["tokenware"] / es["bare"]
    print(f"target HS256 >= 3x faster than PyJWT:        {hs_ratio:.2f}x  {_ok(hs_ratio >= 3)}")
    print(f"target ES256 within 1.3x of bare verify:     {es_ratio:.2f}x  {_ok(es_ratio <= 1.3)}")
    print(f"\ntotal {time.perf_counter() - started:.1f} s")
    return 0


def _ok(flag: bool) -> str:
    return "ok" if flag else "MISSED"


if __name__ == "__main__":
    raise SystemExit(main())
