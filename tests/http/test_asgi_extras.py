"""ASGI specifics: Starlette's request.user / @requires, websockets, lifespan,
mounting styles; and no token material in the ``tokenware`` logs."""

from __future__ import annotations

import asyncio
import logging
import warnings
from typing import Any

import httpx
import pytest
from _apps import asgi_client, wsgi_client
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket

from tokenware import Tokenware, endpoints
from tokenware.asgi import TokenwareMiddleware
from tokenware.testing import make_secret_key

with warnings.catch_warnings():
    # Starlette 1.x prefers httpx2 for its TestClient; httpx works the same here.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient, WebSocketDenialResponse


@pytest.fixture
def tw() -> Tokenware:
    return Tokenware(store="memory://", secret_key=make_secret_key(), jwt_check_family=True)


def _starlette(tw: Tokenware, **options: Any) -> Starlette:
    async def me(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "user": request.user.display_name,
                "authenticated": request.user.is_authenticated,
                "scopes": list(request.auth.scopes),
            }
        )

    @requires("admin")
    async def admin(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    @requires("authenticated")
    async def member(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"user": websocket.user.display_name})
        await websocket.close()

    return Starlette(
        routes=[
            Route("/me", me),
            Route("/admin", admin),
            Route("/member", member),
            WebSocketRoute("/ws", ws),
        ],
        middleware=[Middleware(TokenwareMiddleware, tokenware=tw, **options)],
    )


def test_starlette_request_user_auth_and_requires(tw: Tokenware) -> None:
    token = tw.jwt.issue("alice", scopes=["read"]).access_token
    with TestClient(_starlette(tw, public=["/"])) as client:  # lifespan passes through
        me = client.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json() == {
            "user": "alice",
            "authenticated": True,
            "scopes": ["authenticated", "read"],  # Starlette's convention for @requires
        }
        anonymous = client.get("/me")
        assert anonymous.json() == {"user": "", "authenticated": False, "scopes": []}
        assert client.get("/admin", headers={"Authorization": f"Bearer {token}"}).status_code == 403
        member = client.get("/member", headers={"Authorization": f"Bearer {token}"})
        assert member.status_code == 200
        assert client.get("/member").status_code == 403


def test_websocket_authenticated_from_headers_and_refused_before_accept(tw: Tokenware) -> None:
    token = tw.jwt.issue("alice").access_token
    with TestClient(_starlette(tw)) as client:
        with client.websocket_connect("/ws", headers={"Authorization": f"Bearer {token}"}) as ws:
            assert ws.receive_json() == {"user": "alice"}
        # The TestClient offers websocket.http.response: the same 401 as HTTP.
        with pytest.raises(WebSocketDenialResponse) as refused:
            with client.websocket_connect(f"/ws?access_token={token}") as ws:
                ws.receive_json()
        assert refused.value.status_code == 401
        assert refused.value.headers["www-authenticate"] == 'Bearer realm="api"'


def test_websocket_closed_with_1008_without_the_denial_extension(tw: Tokenware) -> None:
    sent: list[dict[str, Any]] = []
    called = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        called.append(scope)

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "websocket", "path": "/ws", "headers": [], "query_string": b""}
    asyncio.run(TokenwareMiddleware(app, tokenware=tw)(scope, receive, send))
    assert sent == [{"type": "websocket.close", "code": 1008}]
    assert called == []


def test_mount_with_middleware_and_bare_wrapping(tw: Tokenware) -> None:
    token = tw.jwt.issue("alice").access_token
    inner = _starlette(tw, public=["/me"])
    outer = Starlette(routes=[Mount("/v1", app=inner)])
    with TestClient(outer) as client:
        assert client.get("/v1/me").json()["authenticated"] is False
        assert client.get("/v1/admin").status_code == 401
    bare = TokenwareMiddleware(_starlette(tw, exempt=["/"]), tokenware=tw, protect=["/me"])
    with TestClient(bare) as client:
        assert client.get("/me").status_code == 401
        assert client.get("/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_standalone_endpoint_apps() -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    es = Tokenware(
        store="memory://",
        secret_key=make_secret_key(),
        jwt_algorithm="EdDSA",
        jwt_key=ed25519.Ed25519PrivateKey.generate(),
    )
    app = Starlette(routes=[Mount("/auth", app=endpoints.asgi_app(es))])
    with TestClient(app) as client:
        assert client.get("/auth/.well-known/jwks.json").json() == es.jwt.jwks()
        assert client.get("/auth/nope").status_code == 404
    wsgi = httpx.Client(transport=httpx.WSGITransport(app=endpoints.wsgi_app(es)))
    assert wsgi.get("http://t/.well-known/jwks.json").json() == es.jwt.jwks()
    assert wsgi.get("http://t/other").status_code == 404


def test_no_token_material_in_tokenware_logs(
    tw: Tokenware, caplog: pytest.LogCaptureFixture
) -> None:
    pair = tw.jwt.issue("alice")
    pat = tw.pats.issue("bob")
    revoked = tw.pats.issue("eve")
    tw.pats.revoke(revoked.record.token_id)
    head, payload, _ = pair.access_token.split(".")
    secrets = [
        pair.access_token,
        pair.refresh_token,
        pat.token,
        revoked.token,
        f"{head}.{payload}.forged",
        "tws_" + "x" * 43,
    ]
    headers = [f"Bearer {s}" for s in secrets] + ["Bearer a, Bearer b", "Basic dTpw"]
    options = {"tokenware": tw, "protect": ["/api/"]}
    caplog.set_level(logging.DEBUG, logger="tokenware")
    with wsgi_client(**options) as client:
        for header in headers:
            client.get("/api/x?access_token=" + secrets[0], headers={"Authorization": header})
            client.get("/api/x", headers={"Authorization": header})

    async def go() -> None:
        async with asgi_client(**options) as client:
            for header in headers:
                await client.get("/api/x", headers={"Authorization": header})

    asyncio.run(go())
    assert caplog.records, "the refusals are logged"
    text = caplog.text + " ".join(str(r.args) for r in caplog.records)
    for secret in secrets:
        assert secret not in text
        assert secret[:24] not in text
    assert "access_token" not in text
