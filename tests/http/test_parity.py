"""The HTTP contract (DESIGN.md §3, security.md §4 C), row by row, on both adapters.

Every row runs through ``httpx.WSGITransport`` (the app and the middleware
wrapped in ``wsgiref.validate``) and ``httpx.ASGITransport``; the two answers
must be identical in status, headers and body, and match the row.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from _apps import asgi_client, wsgi_client

from tokenware import Tokenware
from tokenware.core.flow import Flow, done
from tokenware.core.http import Headers, RequestView
from tokenware.errors import Throttled
from tokenware.identity import ANONYMOUS, Anonymous, Identity
from tokenware.testing import FrozenClock, make_secret_key

SECRET = make_secret_key()
BARE = 'Bearer realm="api"'
INVALID_REQUEST = 'Bearer realm="api", error="invalid_request"'
INVALID_TOKEN = 'Bearer realm="api", error="invalid_token"'


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class World:
    clock: FrozenClock
    tw: Tokenware
    down: Tokenware
    es: Tokenware
    tokens: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    clock = FrozenClock()
    tw = Tokenware(store="memory://", secret_key=SECRET, clock=clock, jwt_check_family=True)
    down = Tokenware(
        store=f"redis://127.0.0.1:{_free_port()}/0",
        secret_key=SECRET,
        clock=clock,
        jwt_check_family=True,
        store_timeout=0.2,
        store_connect_timeout=0.2,
    )
    from cryptography.hazmat.primitives.asymmetric import ec

    es = Tokenware(
        store="memory://",
        secret_key=SECRET,
        clock=clock,
        jwt_algorithm="ES256",
        jwt_key=ec.generate_private_key(ec.SECP256R1()),
    )
    past = Tokenware(store="memory://", secret_key=SECRET, clock=lambda: clock() - 7200)
    pair = tw.jwt.issue("alice", scopes=["read"])
    revoked = tw.jwt.issue("mallory")
    tw.jwt.revoke(revoked.refresh_token)
    pat = tw.pats.issue("bob", roles=["read"])
    revoked_pat = tw.pats.issue("eve")
    tw.pats.revoke(revoked_pat.record.token_id)
    head, payload, signature = pair.access_token.split(".")
    world = World(clock, tw, down, es)
    world.tokens = {
        "jwt": pair.access_token,
        "refresh": pair.refresh_token,
        "forged": f"{head}.{payload}.{'A' * len(signature)}",
        "expired": past.jwt.issue("alice").access_token,
        "revoked": revoked.access_token,
        "pat": pat.token,
        "revoked_pat": revoked_pat.token,
        "session": tw.sessions.add("carol").key,
        "es": es.jwt.issue("dave").access_token,
    }
    yield world


@dataclass(frozen=True)
class Row:
    name: str
    method: str = "GET"
    path: str = "/api/x"
    headers: tuple[tuple[str, str | bytes], ...] = ()
    token: str | None = None  # tokens[...] sent as "Bearer <token>"
    instance: str = "tw"  # tw, down or es
    options: tuple[tuple[str, Any], ...] = ()
    status: int = 200
    challenge: str | None = None
    retry_after: bool = False
    subject: str | None = None  # expected identity on a 200


def _throttle(request: RequestView, identity: Identity | Anonymous) -> Flow[Headers]:
    if identity is ANONYMOUS:
        denied = Throttled("anonymous quota", retry_after=30)
        denied.headers = (  # type: ignore[attr-defined]
            ("RateLimit-Policy", '"anon";q=0;w=60'),
            ("RateLimit", '"anon";r=0;t=30'),
        )
        raise denied
    return (yield from done((("RateLimit", '"user";r=9;t=60'),)))


API = (("protect", ["/api/"]), ("public", ["/pub"]), ("exempt", ["/health"]))
ROWS = [
    Row("no credentials: bare challenge", status=401, challenge=BARE),
    Row("Basic scheme: bare challenge", headers=(("Authorization", "Basic dTpw"),), status=401,
        challenge=BARE),
    Row("Bearer without token", headers=(("Authorization", "Bearer"),), status=400,
        challenge=INVALID_REQUEST),
    Row("Bearer and a space", headers=(("Authorization", "Bearer  "),), status=400,
        challenge=INVALID_REQUEST),
    Row("Bearer and a tab", headers=(("Authorization", "Bearer\t"),), status=400,
        challenge=INVALID_REQUEST),
    Row("quote in token", headers=(("Authorization", 'Bearer ab"c'),), status=400,
        challenge=INVALID_REQUEST),
    Row("comma in token", headers=(("Authorization", "Bearer ab,c"),), status=400,
        challenge=INVALID_REQUEST),
    Row("semicolon in token", headers=(("Authorization", "Bearer ab;c"),), status=400,
        challenge=INVALID_REQUEST),
    Row("non-ASCII token", headers=(("Authorization", b"Bearer ab\xe9c"),), status=400,
        challenge=INVALID_REQUEST),
    Row("malformed scheme", headers=(("Authorization", "Bea(rer x"),), status=400,
        challenge=INVALID_REQUEST),
    Row("two Authorization headers", headers=(("Authorization", "Bearer a"),
        ("Authorization", "Bearer b")), status=400, challenge=INVALID_REQUEST),
    Row("two credentials in one header", headers=(("Authorization", "Bearer a, Bearer b"),),
        status=400, challenge=INVALID_REQUEST),
    Row("header and access_token query", path="/api/x?access_token=abc", token="jwt",
        status=400, challenge=INVALID_REQUEST),
    Row("token only in the query: absent", path="/api/x?access_token=TOKEN", status=401,
        challenge=BARE),
    Row("valid JWT", token="jwt", subject="alice"),
    Row("lowercase bearer scheme", headers=(("Authorization", "bearer TOKEN:jwt"),),
        subject="alice"),
    Row("valid PAT", token="pat", subject="bob"),
    Row("valid session token", token="session", subject="carol"),
    Row("expired JWT", token="expired", status=401, challenge=INVALID_TOKEN),
    Row("bad signature", token="forged", status=401, challenge=INVALID_TOKEN),
    Row("revoked JWT family", token="revoked", status=401, challenge=INVALID_TOKEN),
    Row("revoked PAT", token="revoked_pat", status=401, challenge=INVALID_TOKEN),
    Row("wrong kind: a refresh token", token="refresh", status=401, challenge=INVALID_TOKEN),
    Row("JWT of another key", token="es", status=401, challenge=INVALID_TOKEN),
    Row("unknown shape", headers=(("Authorization", "Bearer opaque123"),), status=401,
        challenge=INVALID_TOKEN),
    Row("insufficient scope", path="/api/admin/x", token="jwt", status=403,
        challenge='Bearer realm="api", error="insufficient_scope", scope="admin"'),
    Row("store down, session token", token="session", instance="down", status=503,
        retry_after=True),
    Row("store down, JWT with family check", token="jwt", instance="down", status=503,
        retry_after=True),
    Row("store down, PAT", token="pat", instance="down", status=503, retry_after=True),
    Row("store down, no credentials: still 401", instance="down", status=401, challenge=BARE),
    Row("store down, public route", path="/pub/x", token="session", instance="down"),
    Row("OPTIONS passes unauthenticated", method="OPTIONS"),
    Row("public route, no credentials", path="/pub/x"),
    Row("public route, valid token", path="/pub/x", token="jwt", subject="alice"),
    Row("public route, bad token: anonymous", path="/pub/x", token="forged"),
    Row("exempt route", path="/health", token="forged"),
    Row("dot segments cannot escape protection", path="/pub/%2E%2E/api/x", status=401,
        challenge=BARE),
    Row("jwks served (ES256)", path="/.well-known/jwks.json", instance="es"),
    Row("jwks HEAD", method="HEAD", path="/.well-known/jwks.json", instance="es"),
    Row("jwks POST: 405", method="POST", path="/.well-known/jwks.json", instance="es",
        status=405),
    Row("jwks not served for HS256: protected", path="/.well-known/jwks.json", status=401,
        challenge=BARE, options=(("protect", ["/"]),)),
    Row("jwks switched off", path="/.well-known/jwks.json", instance="es", status=401,
        challenge=BARE, options=(("protect", ["/"]), ("jwks_path", None))),
    Row("throttle seam: allowed adds headers", token="jwt", subject="alice",
        options=(("throttle", _throttle),)),
    Row("throttle seam: denied is 429", path="/pub/x", status=429, retry_after=True,
        options=(("throttle", _throttle),)),
]  # fmt: skip


def _request(row: Row, world: World) -> tuple[str, str, list[tuple[str, str | bytes]]]:
    headers = list(row.headers)
    if row.token is not None:
        headers.append(("Authorization", f"Bearer {world.tokens[row.token]}"))
    headers = [
        (n, v.replace("TOKEN:jwt", world.tokens["jwt"]) if isinstance(v, str) else v)
        for n, v in headers
    ]
    path = row.path.replace("TOKEN", world.tokens["jwt"])
    return row.method, path, headers


def _options(row: Row, world: World) -> dict[str, Any]:
    options: dict[str, Any] = {
        "tokenware": getattr(world, row.instance),
        **dict(API),
        "required_scopes": {"/api/admin/": "admin"},
    }
    options.update(dict(row.options))
    return options


def _both(row: Row, world: World) -> tuple[Any, Any]:
    method, path, headers = _request(row, world)
    options = _options(row, world)
    with wsgi_client(**options) as client:
        sync = client.request(method, path, headers=headers)

    async def go() -> Any:
        async with asgi_client(**options) as client:
            return await client.request(method, path, headers=headers)

    return sync, asyncio.run(go())


def _shape(response: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    return (
        response.status_code,
        [(name.lower(), value) for name, value in response.headers.multi_items()],
        response.content,
    )


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_contract_row(row: Row, world: World) -> None:
    sync, aio = _both(row, world)
    assert _shape(sync) == _shape(aio)
    response = sync
    assert response.status_code == row.status, response.text
    assert response.headers.get("www-authenticate") == row.challenge
    if row.retry_after:
        assert int(response.headers["retry-after"]) >= 1
    else:
        assert "retry-after" not in response.headers
    if row.status >= 400 and row.status != 405:
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert set(body) == {"type", "title", "status", "detail"}
        assert body["status"] == row.status
        for token in world.tokens.values():
            assert token not in response.text
    if row.status == 200 and "jwks" not in row.path:
        assert response.json()["identity"] == (
            None if row.subject is None else response.json()["identity"]
        )
        who = response.json()["identity"]
        assert (who and who["subject"]) == row.subject


def test_invalid_token_bodies_are_identical_whatever_the_reason(world: World) -> None:
    bodies = set()
    for row in ROWS:
        if row.challenge == INVALID_TOKEN:
            sync, _ = _both(row, world)
            bodies.add(sync.content)
    assert len(bodies) == 1


def test_jwks_document(world: World) -> None:
    row = next(row for row in ROWS if row.name == "jwks served (ES256)")
    response, _ = _both(row, world)
    assert response.headers["content-type"] == "application/jwk-set+json"
    assert response.json() == world.es.jwt.jwks()
    assert response.json()["keys"][0]["kty"] == "EC"


def test_rate_limit_headers_on_the_429_and_the_apps_response(world: World) -> None:
    denied, _ = _both(next(r for r in ROWS if r.name == "throttle seam: denied is 429"), world)
    assert denied.headers["retry-after"] == "30"
    assert denied.headers["ratelimit-policy"] == '"anon";q=0;w=60'
    assert denied.headers["ratelimit"] == '"anon";r=0;t=30'
    allowed, _ = _both(next(r for r in ROWS if r.name.startswith("throttle seam: allowed")), world)
    assert allowed.headers["ratelimit"] == '"user";r=9;t=60'


def test_public_route_keeps_the_reason_for_decorators(world: World) -> None:
    row = next(r for r in ROWS if r.name == "store down, public route")
    sync, aio = _both(row, world)
    assert sync.json()["error"] == aio.json()["error"] == "StoreUnavailable"


def test_every_row_kind_is_covered() -> None:
    statuses = {row.status for row in ROWS}
    assert {200, 400, 401, 403, 405, 429, 503} <= statuses
