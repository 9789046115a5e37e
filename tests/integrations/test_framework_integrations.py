"""The Flask, Starlette and FastAPI integrations answer with the HTTP contract."""

# ruff: noqa: B008 - Depends()/Security() defaults are FastAPI's idiom

from __future__ import annotations

import subprocess
import sys
from typing import Any

import httpx
import pytest
from _refusals import ASGIClient, assert_refusal
from fastapi import Depends, FastAPI, Security
from flask import Flask
from starlette.applications import Starlette
from starlette.authentication import requires as starlette_requires
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tokenware import Identity, Tokenware, exempt, requires
from tokenware.errors import (
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    MissingCredentials,
    RefreshTokenReused,
    StoreUnavailable,
)
from tokenware.identity import Anonymous
from tokenware.integrations import fastapi as tw_fastapi
from tokenware.integrations import flask as tw_flask
from tokenware.integrations.starlette import authentication_middleware

SECRET_HEX = "hex:" + "cd" * 32


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_importing_tokenware_imports_no_framework() -> None:
    """``import tokenware`` (and its integrations package) imports no web framework."""
    code = (
        "import sys, tokenware, tokenware.integrations, tokenware.decorators\n"
        "bad = [m for m in ('flask', 'starlette', 'fastapi', 'werkzeug') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- Flask --------------------------------------------------------------------------


def test_flask_init_app_reads_tokenware_config(tmp_path: Any) -> None:
    """``init_app(app)`` builds a Tokenware from ``TOKENWARE_*`` keys of app.config."""
    app = Flask(__name__)
    app.config.update(
        TOKENWARE_SECRET_KEY=SECRET_HEX,
        TOKENWARE_STORE_URL="memory://",
        TOKENWARE_KEY_PREFIX="flaskapp",
    )
    tw = tw_flask.init_app(app)
    try:
        assert app.extensions["tokenware"] is tw
        assert tw.settings.key_prefix == "flaskapp"
        assert app.config["TOKENWARE_REALM"] == "api"
        with app.app_context():
            assert tw_flask.get_tokenware() is tw
    finally:
        tw.close()


def test_flask_init_app_accepts_a_bytes_secret() -> None:
    """A bytes ``TOKENWARE_SECRET_KEY`` in app.config is used as is."""
    app = Flask(__name__)
    app.config.update(TOKENWARE_SECRET_KEY=b"k" * 32, TOKENWARE_STORE_URL="memory://")
    with tw_flask.init_app(app):
        pass


def test_flask_current_identity_and_error_handlers(tw: Tokenware, reader: str) -> None:
    """``current_identity`` authenticates lazily; tokenware errors in a view get the contract."""
    app = Flask(__name__)
    tw_flask.init_app(app, tw)
    app.config["TOKENWARE_REALM"] = "reports"

    @app.get("/whoami")
    def whoami() -> dict[str, Any]:
        ident = tw_flask.current_identity
        return {"user": ident.subject if isinstance(ident, Identity) else None}

    @app.post("/refresh")
    def refresh() -> str:
        raise RefreshTokenReused("family revoked")

    @app.get("/down")
    def down() -> str:
        raise StoreUnavailable("redis timed out", retry_after=4)

    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://t") as c:
        assert c.get("/whoami").json() == {"user": None}
        assert c.get("/whoami", headers=bearer(reader)).json() == {"user": "alice"}
        assert_refusal(c.get("/whoami", headers=bearer("twp_x")), InvalidToken(), "reports")
        assert_refusal(c.post("/refresh"), RefreshTokenReused(), "reports")
        response = c.get("/down")
        assert_refusal(response, StoreUnavailable(retry_after=4), "reports")
        assert "redis" not in response.text


def test_flask_protect_all_with_exempt(tw: Tokenware, plain: str) -> None:
    """``TOKENWARE_PROTECT_ALL``: every view needs a token except ``@exempt`` ones."""
    app = Flask(__name__)
    app.config["TOKENWARE_PROTECT_ALL"] = True
    tw_flask.init_app(app, tw)

    @app.get("/health")
    @exempt
    def health() -> str:
        return "ok"

    @app.get("/data")
    def data() -> str:
        return f"data for {tw_flask.current_identity.display_name}"

    @app.get("/admin")
    @requires("admin")
    def admin() -> str:
        return "admin"

    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://t") as c:
        assert c.get("/health").text == "ok"
        assert_refusal(c.get("/data"), MissingCredentials())
        assert c.get("/data", headers=bearer(plain)).text == "data for bob"
        assert c.request("OPTIONS", "/data").status_code == 200
        assert c.get("/nowhere").status_code == 404
        assert_refusal(c.get("/admin", headers=bearer(plain)), InsufficientScope(scopes=("admin",)))


# -- Starlette ----------------------------------------------------------------------


def starlette_app(tw: Tokenware) -> Starlette:
    @starlette_requires("reports:read")
    async def reports(request: Request) -> JSONResponse:
        return JSONResponse({"user": request.user.display_name, "scopes": request.auth.scopes})

    async def home(request: Request) -> JSONResponse:
        return JSONResponse({"authenticated": request.user.is_authenticated})

    @requires("reports:read")
    async def tokenware_view(request: Request) -> JSONResponse:
        return JSONResponse({"user": request.user.display_name})

    return Starlette(
        routes=[Route("/", home), Route("/reports", reports), Route("/tw", tokenware_view)],
        middleware=[authentication_middleware(tw, realm="shop")],
    )


def test_starlette_backend_fills_user_and_auth(tw: Tokenware, reader: str, plain: str) -> None:
    """``request.user``/``request.auth`` come from tokenware; Starlette's ``@requires`` works."""
    c = ASGIClient(starlette_app(tw))
    assert c.get("/").json() == {"authenticated": False}
    assert c.get("/", headers={"Authorization": "Basic YTpi"}).json() == {"authenticated": False}
    assert c.get("/", headers=bearer(plain)).json() == {"authenticated": True}
    assert c.get("/reports", headers=bearer(reader)).json() == {
        "user": "alice",
        "scopes": ["authenticated", "reports:read"],
    }
    assert c.get("/reports", headers=bearer(plain)).status_code == 403  # Starlette's own
    assert c.get("/tw", headers=bearer(reader)).json() == {"user": "alice"}
    # tokenware's decorator behind the backend: the contract, with the backend's realm.
    assert_refusal(
        c.get("/tw", headers=bearer(plain)), InsufficientScope(scopes=("reports:read",)), "shop"
    )
    assert_refusal(c.get("/tw"), MissingCredentials(), "shop")


def test_starlette_on_error_gives_the_contract(
    tw: Tokenware, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bad tokens, malformed headers and outages: problem+json, not Starlette's 400 text."""
    c = ASGIClient(starlette_app(tw))
    assert_refusal(c.get("/", headers=bearer("twp_nope")), InvalidToken(), "shop")
    assert_refusal(c.get("/", headers={"Authorization": "Bearer a b"}), InvalidRequest(), "shop")
    two = [("Authorization", "Bearer x"), ("Authorization", "Bearer y")]
    assert_refusal(c.get("/", headers=two), InvalidRequest(), "shop")

    async def down(header: str | None) -> Identity:
        raise StoreUnavailable("down", retry_after=1)

    monkeypatch.setattr(tw.aio, "authenticate", down)
    assert_refusal(c.get("/", headers=bearer("twp_x")), StoreUnavailable(), "shop")


# -- FastAPI ------------------------------------------------------------------------


def fastapi_app(tw: Tokenware, *, installed: bool = True) -> FastAPI:
    app = FastAPI()
    if installed:
        tw_fastapi.install(app, tw)
    deps = [] if installed else [Depends(lambda: None)]
    reader_dep = tw_fastapi.Authenticated(["reports:read"], tokenware=None if installed else tw)

    @app.get("/me", dependencies=deps)
    async def me(
        user: Identity = Depends(tw_fastapi.Authenticated(tokenware=tw)),
    ) -> dict[str, str]:
        return {"user": user.subject}

    @app.get("/reports")
    async def reports(user: Identity = Depends(reader_dep)) -> dict[str, str]:
        return {"user": user.subject}

    @app.get("/admin")
    async def admin(
        user: Identity = Security(tw_fastapi.Authenticated(tokenware=tw), scopes=["admin"]),
    ) -> dict[str, str]:
        return {"user": user.subject}

    @app.get("/maybe")
    async def maybe(
        user: Identity | Anonymous = Depends(tw_fastapi.OptionalIdentity),
    ) -> dict[str, Any]:
        return {"user": user.subject if isinstance(user, Identity) else None}

    @app.get("/fail")
    async def fail() -> None:
        raise StoreUnavailable("redis down", retry_after=2)

    return app


def test_fastapi_openapi_shows_the_bearer_scheme(tw: Tokenware) -> None:
    """Every protected operation lists the ``bearer`` HTTP scheme in OpenAPI."""
    schema = fastapi_app(tw).openapi()
    assert schema["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": tw_fastapi.bearer_scheme.model.description,
    }
    for path in ("/me", "/reports", "/admin", "/maybe"):
        assert {"bearer": []} in schema["paths"][path]["get"]["security"] or schema["paths"][path][
            "get"
        ]["security"][0].keys() == {"bearer"}, path
    assert "security" not in schema["paths"]["/fail"]["get"]


def test_fastapi_dependencies_answer_the_contract(tw: Tokenware, reader: str, plain: str) -> None:
    """Authenticated / Security scopes / OptionalIdentity, refusals as problem+json."""
    c = ASGIClient(fastapi_app(tw))
    assert c.get("/me", headers=bearer(plain)).json() == {"user": "bob"}
    assert c.get("/reports", headers=bearer(reader)).json() == {"user": "alice"}
    assert c.get("/maybe").json() == {"user": None}
    assert c.get("/maybe", headers=bearer(reader)).json() == {"user": "alice"}
    assert_refusal(c.get("/me"), MissingCredentials())
    assert_refusal(c.get("/me", headers=bearer("twp_x")), InvalidToken())
    assert_refusal(c.get("/maybe", headers=bearer("twp_x")), InvalidToken())
    assert_refusal(c.get("/me", headers={"Authorization": "Bearer"}), InvalidRequest())
    assert_refusal(
        c.get("/reports", headers=bearer(plain)), InsufficientScope(scopes=("reports:read",))
    )
    assert_refusal(c.get("/admin", headers=bearer(reader)), InsufficientScope(scopes=("admin",)))
    assert_refusal(c.get("/fail"), StoreUnavailable(retry_after=2))


def test_fastapi_without_install_keeps_status_and_headers(tw: Tokenware, plain: str) -> None:
    """Without ``install``, FastAPI's handler still sends the contract's status and headers."""
    c = ASGIClient(fastapi_app(tw, installed=False))
    response = c.get("/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="api"'
    assert response.json() == {"detail": "Authentication required"}
    response = c.get("/reports", headers=bearer(plain))
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


def test_fastapi_verifies_once_per_request(
    tw: Tokenware, reader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A router-level and a route-level dependency share one verification."""
    calls = []
    original = tw.aio.authenticate

    async def counting(header: str | None) -> Identity:
        calls.append(1)
        return await original(header)

    monkeypatch.setattr(tw.aio, "authenticate", counting)
    app = FastAPI(dependencies=[Depends(tw_fastapi.Authenticated())])
    tw_fastapi.install(app, tw)

    @app.get("/")
    async def root(
        user: Identity = Security(tw_fastapi.Authenticated(), scopes=["reports:read"]),
    ) -> str:
        return user.subject

    assert ASGIClient(app).get("/", headers=bearer(reader)).json() == "alice"
    assert len(calls) == 1
