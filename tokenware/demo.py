"""``tokenware demo``: a Starlette app on uvicorn showing the browser flow end to end.

One page (``tokenware/static/demo/index.html``) logs a demo user in (a
tokenware session in an HttpOnly cookie), runs the TWHS1 handshake with
``/tokenware.js``, calls a protected API with the access token, issues a
personal access token, uses it, revokes it and shows it refused, and hits a
throttled endpoint until it answers 429. Needs the ``demo`` extra
(``pip install 'tokenware[demo]'``: Starlette and uvicorn).

It listens on 127.0.0.1 only and serves plain HTTP, so the CSRF cookie is
not ``Secure`` here; a real deployment keeps ``csrf_cookie_secure=True``
behind TLS.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from tokenware.errors import AuthenticationError, TokenwareError
from tokenware.facade import Tokenware
from tokenware.identity import Identity
from tokenware.throttling import ThrottleRule

__all__ = ["SESSION_COOKIE", "build_app", "serve"]

#: The demo's login cookie (a tokenware session key).
SESSION_COOKIE = "demo_session"
DEMO_USER = "demo"


def _page() -> bytes:
    return (
        resources.files("tokenware")
        .joinpath("static")
        .joinpath("demo")
        .joinpath("index.html")
        .read_bytes()
    )


def build_app(tw: Tokenware, *, origin: str) -> Any:
    """The demo as an ASGI app (Starlette behind tokenware's ASGI middleware)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    from tokenware.asgi import TokenwareMiddleware
    from tokenware.endpoints import EndpointRequest

    aio = tw.aio
    page = _page()

    async def index(request: Request) -> Response:
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    async def login(request: Request) -> Response:
        session = await aio.sessions.add(DEMO_USER, {"demo": True}, ttl=3600)
        response = JSONResponse({"user": DEMO_USER, "session": session.id})
        assert session.key is not None
        response.set_cookie(
            SESSION_COOKIE, session.key, max_age=3600, httponly=True, samesite="strict"
        )
        return response

    async def handshake_payload(request: EndpointRequest) -> Any:
        key = request.cookies.get(SESSION_COOKIE)
        if not key:
            raise AuthenticationError("not logged in")
        try:
            session = await aio.sessions.get_by_key(key)
        except TokenwareError:
            raise AuthenticationError("not logged in") from None
        return await aio.jwt.issue(session.owner_id, scopes=["demo"])

    def who(request: Request) -> Identity:
        identity = request.scope["tokenware.identity"]
        assert isinstance(identity, Identity)
        return identity

    async def me(request: Request) -> Response:
        identity = who(request)
        return JSONResponse(
            {"subject": identity.subject, "kind": identity.kind, "scopes": sorted(identity.scopes)}
        )

    async def issue_pat(request: Request) -> Response:
        issued = await aio.pats.issue(who(request).subject, roles=["demo"], name="demo")
        return JSONResponse({"id": issued.record.token_id, "token": issued.token})

    async def revoke_pat(request: Request) -> Response:
        record = await aio.pats.revoke(request.path_params["token_id"])
        return JSONResponse({"id": record.token_id, "revoked": True})

    async def limited(request: Request) -> Response:
        return JSONResponse({"ok": True})

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/login", login, methods=["POST"]),
            Route("/api/me", me),
            Route("/api/pats", issue_pat, methods=["POST"]),
            Route("/api/pats/{token_id}", revoke_pat, methods=["DELETE"]),
            Route("/api/limited", limited),
        ]
    )
    return TokenwareMiddleware(
        app,
        tokenware=tw,
        protect=["/api/"],
        throttle=ThrottleRule("3/minute", prefix="/api/limited", key="subject_or_address"),
        origins=[origin],
        handshake_payload=handshake_payload,
        csrf_cookie_secure=False,  # plain HTTP on loopback; keep True behind TLS
    )


def serve(tw: Tokenware, *, port: int, host: str = "127.0.0.1") -> None:
    """Run the demo on uvicorn until interrupted."""
    import uvicorn

    app = build_app(tw, origin=f"http://{host}:{port}")
    uvicorn.run(app, host=host, port=port, log_level="warning")
