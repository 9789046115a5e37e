"""``requires`` and ``exempt`` on sync and async views, in Flask and in Starlette."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from _refusals import ASGIClient, assert_refusal
from flask import Flask
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tokenware import ANONYMOUS, Identity, Tokenware, exempt, requires
from tokenware.decorators import is_exempt
from tokenware.errors import (
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    MissingCredentials,
    StoreUnavailable,
)
from tokenware.integrations.flask import current_identity, init_app

PATHS = ["/sync", "/async"]


def describe(identity: object) -> dict[str, Any]:
    if isinstance(identity, Identity):
        return {"user": identity.subject, "scopes": sorted(identity.scopes)}
    return {"user": None}


def flask_app(tw: Tokenware) -> Flask:
    app = Flask(__name__)
    init_app(app, tw)

    @app.route("/sync", methods=["GET", "OPTIONS"])
    @requires("reports:read")
    def sync_view() -> dict[str, Any]:
        return describe(current_identity)

    @app.get("/async")
    @requires("reports:read")
    async def async_view() -> dict[str, Any]:
        return describe(current_identity)

    @app.get("/optional")
    @requires(optional=True)
    def optional_view() -> dict[str, Any]:
        return describe(current_identity)

    @app.get("/any")
    @requires()
    async def any_view() -> dict[str, Any]:
        return describe(current_identity)

    return app


def starlette_app(tw: Tokenware) -> Starlette:
    @requires("reports:read")
    def sync_view(req: Request) -> JSONResponse:
        return JSONResponse(describe(req.scope.get("tokenware.identity")))

    @requires("reports:read")
    async def async_view(conn: Request) -> JSONResponse:  # not named "request"
        return JSONResponse(describe(conn.user))

    @requires(optional=True)
    async def optional_view(request: Request) -> JSONResponse:
        return JSONResponse(describe(request.scope.get("tokenware.identity")))

    @requires()
    def any_view(request: Request) -> JSONResponse:
        return JSONResponse(describe(request.user))

    app = Starlette(
        routes=[
            Route("/sync", sync_view, methods=["GET", "OPTIONS"]),
            Route("/async", async_view),
            Route("/optional", optional_view),
            Route("/any", any_view),
        ]
    )
    app.state.tokenware = tw
    return app


@pytest.fixture(params=["flask", "starlette"])
def client(request: pytest.FixtureRequest, tw: Tokenware) -> Iterator[Any]:
    if request.param == "flask":
        transport = httpx.WSGITransport(app=flask_app(tw))
        with httpx.Client(transport=transport, base_url="http://testserver") as c:
            yield c
    else:
        with ASGIClient(starlette_app(tw)) as c:
            yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("path", PATHS)
def test_valid_token_with_the_scope_reaches_the_view(client: Any, reader: str, path: str) -> None:
    """A PAT holding the role passes, and the view sees its identity."""
    response = client.get(path, headers=bearer(reader))
    assert response.status_code == 200
    assert response.json() == {"user": "alice", "scopes": ["reports:read"]}


@pytest.mark.parametrize("path", PATHS)
def test_no_credentials_is_a_bare_challenge(client: Any, path: str) -> None:
    """No Authorization header: 401 with ``Bearer realm`` and no error code."""
    response = client.get(path)
    assert_refusal(response, MissingCredentials())
    assert response.headers["www-authenticate"] == 'Bearer realm="api"'
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("path", PATHS)
def test_other_scheme_is_a_bare_challenge(client: Any, path: str) -> None:
    """A Basic credential means no bearer credentials: the bare 401."""
    assert_refusal(client.get(path, headers={"Authorization": "Basic YTpi"}), MissingCredentials())


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "token", ["twp_not_a_real_token", "tws_" + "A" * 43, "eyJ.garbage.sig", "nonsense"]
)
def test_bad_token_is_invalid_token(client: Any, path: str, token: str) -> None:
    """Unknown, forged or unrecognised tokens: 401 ``invalid_token``, generic detail."""
    response = client.get(path, headers=bearer(token))
    assert_refusal(response, InvalidToken())
    assert token not in response.text


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("header", ["Bearer", "Bearer a b", "Be@rer x", "Bearer tok, Bearer tok"])
def test_malformed_header_is_invalid_request(client: Any, path: str, header: str) -> None:
    """A malformed Authorization header: 400 ``invalid_request``."""
    assert_refusal(client.get(path, headers={"Authorization": header}), InvalidRequest())


@pytest.mark.parametrize("path", PATHS)
def test_missing_scope_is_insufficient_scope(client: Any, plain: str, path: str) -> None:
    """A valid token without the scope: 403 naming the required scope."""
    response = client.get(path, headers=bearer(plain))
    assert_refusal(response, InsufficientScope(scopes=("reports:read",)))
    assert response.headers["www-authenticate"] == (
        'Bearer realm="api", error="insufficient_scope", scope="reports:read"'
    )


def test_requires_without_scopes_needs_any_valid_token(
    client: Any, plain: str, reader: str
) -> None:
    """``@requires()`` only asks for an authenticated caller."""
    assert client.get("/any", headers=bearer(plain)).json() == {"user": "bob", "scopes": []}
    assert client.get("/any", headers=bearer(reader)).status_code == 200
    assert_refusal(client.get("/any"), MissingCredentials())


def test_optional_lets_anonymous_through_but_not_bad_tokens(client: Any, plain: str) -> None:
    """``optional=True``: anonymous passes; a token that is sent must verify."""
    assert client.get("/optional").json() == {"user": None}
    assert client.get("/optional", headers=bearer(plain)).json() == {"user": "bob", "scopes": []}
    assert_refusal(client.get("/optional", headers=bearer("twp_bad")), InvalidToken())


def test_options_passes_unauthenticated(client: Any) -> None:
    """A CORS preflight reaches the view without credentials."""
    response = client.request("OPTIONS", "/sync")
    assert response.status_code == 200


@pytest.mark.parametrize("path", PATHS)
def test_store_outage_is_503_never_a_pass(
    client: Any, tw: Tokenware, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """When the store cannot answer: 503 with Retry-After, the view never runs."""

    def down(header: str | None) -> Identity:
        raise StoreUnavailable("store down", retry_after=2.5)

    async def adown(header: str | None) -> Identity:
        raise StoreUnavailable("store down", retry_after=2.5)

    monkeypatch.setattr(tw, "authenticate", down)
    monkeypatch.setattr(tw.aio, "authenticate", adown)
    response = client.get(path, headers=bearer("twp_whatever"))
    assert_refusal(response, StoreUnavailable(retry_after=3))
    assert response.headers["retry-after"] == "3"


def preset_identity_wsgi(app: Flask, identity: object) -> None:
    inner = app.wsgi_app

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        environ["tokenware.identity"] = identity
        return inner(environ, start_response)

    app.wsgi_app = wsgi  # type: ignore[method-assign]


@pytest.mark.parametrize("path", PATHS)
def test_identity_set_by_a_middleware_is_used_without_verifying(
    tw: Tokenware, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """With the middleware's identity in environ/scope, no token is verified again."""
    carol = Identity(subject="carol", kind="jwt", scopes=frozenset({"reports:read"}))

    def never(header: str | None) -> Identity:
        raise AssertionError("verified twice")

    async def anever(header: str | None) -> Identity:
        raise AssertionError("verified twice")

    monkeypatch.setattr(tw, "authenticate", never)
    monkeypatch.setattr(tw.aio, "authenticate", anever)
    fapp = flask_app(tw)
    preset_identity_wsgi(fapp, carol)
    with httpx.Client(transport=httpx.WSGITransport(app=fapp), base_url="http://t") as c:
        assert c.get(path, headers=bearer("a.b.c")).json()["user"] == "carol"

    sapp = starlette_app(tw)

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope["tokenware.identity"] = carol
        scope["user"] = carol
        await sapp(scope, receive, send)

    with ASGIClient(asgi) as c:
        assert c.get(path, headers=bearer("a.b.c")).json()["user"] == "carol"


def test_anonymous_preset_still_verifies_a_sent_token(tw: Tokenware, reader: str) -> None:
    """A middleware that let a public path through as ANONYMOUS does not hide a token."""
    app = flask_app(tw)
    preset_identity_wsgi(app, ANONYMOUS)
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://t") as c:
        assert c.get("/sync", headers=bearer(reader)).json()["user"] == "alice"
        assert_refusal(c.get("/sync", headers=bearer("twp_bad")), InvalidToken())


def test_instance_from_the_environ_without_init_app(tw: Tokenware, reader: str) -> None:
    """A plain Flask app finds the instance the middleware put in the environ."""
    app = Flask(__name__)

    @app.get("/")
    @requires("reports:read")
    def view() -> str:
        return "ok"

    inner = app.wsgi_app

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        environ["tokenware"] = tw
        return inner(environ, start_response)

    app.wsgi_app = wsgi  # type: ignore[method-assign]
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://t") as c:
        assert c.get("/", headers=bearer(reader)).text == "ok"
        assert_refusal(c.get("/"), MissingCredentials())


def test_no_instance_anywhere_is_a_clear_error(reader: str) -> None:
    """Sending a token to an app where tokenware was never installed fails loudly."""
    app = Flask(__name__)

    @app.get("/")
    @requires()
    def view() -> str:
        return "ok"

    app.testing = True  # let the exception reach the test
    with pytest.raises(RuntimeError, match="no Tokenware instance"):
        app.test_client().get("/", headers=bearer(reader))


def test_outside_any_request_is_a_clear_error() -> None:
    """Calling a decorated function with no request anywhere says how to fix it."""

    @requires()
    def view() -> str:
        return "ok"

    with pytest.raises(RuntimeError, match="Flask request context or a Starlette Request"):
        view()


def test_decoration_keeps_the_view_kind_and_metadata() -> None:
    """Sync stays sync, async stays async; name, docstring and marks survive stacking."""
    import inspect

    async def handler() -> None:
        """Doc."""

    def sync_handler() -> None:
        pass

    wrapped = requires("a")(requires("b")(exempt(handler)))
    assert inspect.iscoroutinefunction(wrapped)
    assert not inspect.iscoroutinefunction(requires()(sync_handler))
    assert wrapped.__name__ == "handler" and wrapped.__doc__ == "Doc."
    assert is_exempt(wrapped) and not is_exempt(sync_handler)
    assert is_exempt(requires("a")(exempt(requires("b")(sync_handler))))
    # Stacked decorators share one wrapper around the original view.
    assert wrapped.__wrapped__ is handler  # type: ignore[attr-defined]
    assert len(wrapped.__tokenware_guards__) == 2  # type: ignore[attr-defined]


def test_stacked_requires_need_every_scope(tw: Tokenware) -> None:
    """Two stacked ``@requires`` add up: both scopes are required."""
    both = tw.pats.issue("dan", roles=["a", "b"]).token
    only_a = tw.pats.issue("eve", roles=["a"]).token
    app = Flask(__name__)
    init_app(app, tw)

    @app.get("/")
    @requires("a")
    @requires("b")
    def view() -> str:
        return "ok"

    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://t") as c:
        assert c.get("/", headers=bearer(both)).text == "ok"
        assert_refusal(c.get("/", headers=bearer(only_a)), InsufficientScope(scopes=("b",)))


@pytest.mark.parametrize("bad", ["", "a b", 3])
def test_requires_rejects_bad_scopes(bad: Any) -> None:
    """Scope arguments are validated at decoration time."""
    with pytest.raises(TypeError):
        requires(bad)


def test_websocket_refused_before_accept_and_accepted_with_a_token(
    tw: Tokenware, reader: str
) -> None:
    """A websocket endpoint: closed with 1008 without a token, served with one."""
    import asyncio

    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket

    @requires("reports:read")
    async def feed(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text(ws.scope["tokenware.identity"].subject)
        await ws.close()

    app = Starlette(routes=[WebSocketRoute("/ws", feed)])
    app.state.tokenware = tw

    def run(headers: list[tuple[bytes, bytes]]) -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []
        inbox = [{"type": "websocket.connect"}]

        async def receive() -> dict[str, Any]:
            return inbox.pop(0) if inbox else {"type": "websocket.disconnect", "code": 1000}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "websocket",
            "path": "/ws",
            "raw_path": b"/ws",
            "root_path": "",
            "scheme": "ws",
            "query_string": b"",
            "headers": headers,
            "client": ("127.0.0.1", 1),
            "server": ("testserver", 80),
            "subprotocols": [],
        }
        asyncio.run(app(scope, receive, send))
        return sent

    assert run([]) == [{"type": "websocket.close", "code": 1008, "reason": ""}]
    served = run([(b"authorization", f"Bearer {reader}".encode())])
    assert [m["type"] for m in served] == ["websocket.accept", "websocket.send", "websocket.close"]
    assert served[1]["text"] == "alice"
