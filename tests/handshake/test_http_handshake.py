"""The handshake, the browser client and the CSRF cookie, served by both middlewares.

Every case runs through the WSGI middleware (``wsgiref.validate`` around app
and middleware, ``FoldingWSGITransport``) and the ASGI middleware
(``httpx.ASGITransport``), each with its own fresh ``Tokenware``; both
answers must agree (status, headers, body, with the random parts of a
handshake reply opened and compared as plaintext) and match the case.
Hostile cases of security.md §4 G that need HTTP: 94, 95, 97, 101, 102
(405 on GET/HEAD, ``no-store``), 103, 104.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import httpx
import pytest
from _hs_helpers import ORIGIN, SECRET, RefClient
from _http_hs_helpers import asgi_client, asgi_raw, wsgi_client, wsgi_raw

from tokenware import Tokenware, endpoints
from tokenware.endpoints import EndpointRequest
from tokenware.errors import AuthenticationError, ConfigurationError
from tokenware.testing import FrozenClock

SCRIPT = resources.files("tokenware").joinpath("static").joinpath("tokenware.js").read_bytes()


@dataclass
class Side:
    """One adapter with its own Tokenware and a record of payload calls."""

    tw: Tokenware
    calls: list[EndpointRequest] = field(default_factory=list)


def _payload(side: Side) -> Callable[[EndpointRequest], Any]:
    def payload(request: EndpointRequest) -> Any:
        side.calls.append(request)
        if request.headers.get("x-refuse"):
            raise AuthenticationError("not logged in")
        return side.tw.jwt.issue("alice", scopes=["read"])

    return payload


def _tw(**handshake: Any) -> Tokenware:
    tw = Tokenware(store="memory://", secret_key=SECRET, clock=FrozenClock())
    if handshake:
        tw.handshake = tw.handshake.configure(**handshake)
    return tw


def _csrf(side: Side) -> str:
    return side.tw.handshake.issue_csrf()


def _hs_headers(
    side: Side, client: RefClient, *, csrf: str | None = None, **extra: str
) -> dict[str, str]:
    token = csrf if csrf is not None else _csrf(side)
    headers = {
        "Tokenware-Handshake": client.header,
        "X-CSRF-Token": token,
        "Cookie": f"tokenware_csrf={token}",
        "Origin": ORIGIN,
        "Sec-Fetch-Site": "same-origin",
    }
    headers.update(extra)
    return headers


Requester = Callable[[Side], tuple[str, str, Mapping[str, str]]]


def _run_both(
    requests: list[Requester], *, handshake: Mapping[str, Any] | None = None, **options: Any
) -> tuple[list[tuple[Side, httpx.Response]], list[tuple[Side, httpx.Response]]]:
    """Send ``requests`` in order to a fresh WSGI and a fresh ASGI middleware."""
    defaults: dict[str, Any] = {"protect": ["/api/"], "exempt": ["/health"]}
    defaults.update(options)

    def build(side: Side) -> dict[str, Any]:
        opts = dict(defaults)
        opts["tokenware"] = side.tw
        if opts.get("handshake_payload", True) is True:
            opts["handshake_payload"] = _payload(side)
            opts.setdefault("origins", [ORIGIN])
        elif opts.get("handshake_payload") is False:
            opts.pop("handshake_payload")
        return opts

    wside = Side(_tw(**(handshake or {})))
    wout: list[tuple[Side, httpx.Response]] = []
    with wsgi_client(**build(wside)) as wclient:
        for make in requests:
            method, path, headers = make(wside)
            response = wclient.request(method, path, headers=dict(headers))
            wout.append((wside, response))

    aside = Side(_tw(**(handshake or {})))

    async def go() -> list[tuple[Side, httpx.Response]]:
        out = []
        async with asgi_client(**build(aside)) as aclient:
            for make in requests:
                method, path, headers = make(aside)
                out.append((aside, await aclient.request(method, path, headers=dict(headers))))
        return out

    aout = asyncio.run(go())
    for (_, w), (_, a) in zip(wout, aout, strict=True):
        assert w.status_code == a.status_code, (w.text, a.text)
        assert _shape(w) == _shape(a)
        if w.request.method == "HEAD" and w.request.url.path.startswith("/tokenware"):
            assert w.content == a.content == b""
    return wout, aout


_RANDOM = {"tokenware-handshake", "set-cookie", "content-length"}


def _shape(response: httpx.Response) -> tuple[Any, ...]:
    """Status, headers and body with the random parts of a reply blanked."""
    headers = sorted(
        (k.lower(), "*" if k.lower() in _RANDOM else v) for k, v in response.headers.items()
    )
    body: Any = response.content
    if response.request.method == "HEAD" and response.headers.get("etag") is None:
        body = b"(the app's HEAD body)"  # httpx's WSGI transport keeps it, ASGI does not
    elif response.headers.get("content-type") == "application/json" and response.content:
        doc = response.json()
        body = {k: ("*" if k in ("epk", "n", "iv", "ct") else v) for k, v in doc.items()}
    return response.status_code, headers, body


def _post(client: RefClient | None = None, **kw: Any) -> Requester:
    def make(side: Side) -> tuple[str, str, Mapping[str, str]]:
        return "POST", "/tokenware/handshake", _hs_headers(side, client or RefClient(), **kw)

    return make


def _req(method: str, path: str, headers: Mapping[str, str] | None = None) -> Requester:
    plain = {"Accept-Encoding": "identity", **(headers or {})}
    return lambda side: (method, path, plain)


# -- the handshake ---------------------------------------------------------------------


@pytest.mark.parametrize("delivery", ["header", "body"])
def test_handshake_delivers_an_access_token_both_ways(delivery: str) -> None:
    clients: dict[int, tuple[RefClient, str]] = {}

    def make(side: Side) -> tuple[str, str, Mapping[str, str]]:
        client, token = clients[id(side)] = RefClient(), _csrf(side)
        return "POST", "/tokenware/handshake", _hs_headers(side, client, csrf=token)

    wout, aout = _run_both([make], handshake_delivery=delivery)
    for side, response in (*wout, *aout):
        client, token = clients[id(side)]
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["vary"] == "Cookie"
        assert "access-control-allow-origin" not in response.headers
        assert "access-control-expose-headers" not in response.headers
        if delivery == "header":
            assert response.json() == {"v": 1}
            plain = client.open_header(response.headers["tokenware-handshake"], csrf=token)
        else:
            assert "tokenware-handshake" not in response.headers
            plain = client.open_body(response.json(), csrf=token)
        assert plain["token_type"] == "Bearer"
        assert side.tw.jwt.verify(plain["access_token"]).subject == "alice"
        assert plain["expires_in"] == 900 and isinstance(plain["exp"], int)
        assert "refresh_token" not in plain
        assert len(side.calls) == 1 and side.calls[0].path == "/tokenware/handshake"


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"])
def test_102_other_methods_get_405(method: str) -> None:
    wout, _ = _run_both([_req(method, "/tokenware/handshake")])
    response = wout[0][1]
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.headers["cache-control"] == "no-store"
    if method != "HEAD":
        assert response.json() == {"error": "method_not_allowed"}
    assert not wout[0][0].calls


@dataclass(frozen=True)
class Refusal:
    name: str
    make: Requester
    status: int
    code: str
    handshake: Mapping[str, Any] = field(default_factory=dict)
    count: int = 1


def _wrong_csrf(side: Side) -> tuple[str, str, Mapping[str, str]]:
    headers = _hs_headers(side, RefClient())
    headers["X-CSRF-Token"] = _csrf(side)  # a valid token, but not the cookie's
    return "POST", "/tokenware/handshake", headers


def _no_cookie(side: Side) -> tuple[str, str, Mapping[str, str]]:
    headers = _hs_headers(side, RefClient())
    del headers["Cookie"]
    return "POST", "/tokenware/handshake", headers


def _forged_csrf(side: Side) -> tuple[str, str, Mapping[str, str]]:
    other = Tokenware(store="memory://", secret_key=b"x" * 32).handshake.issue_csrf()
    return "POST", "/tokenware/handshake", _hs_headers(side, RefClient(), csrf=other)


def _no_csrf(side: Side) -> tuple[str, str, Mapping[str, str]]:
    headers = _hs_headers(side, RefClient())
    del headers["X-CSRF-Token"]
    return "POST", "/tokenware/handshake", headers


REFUSALS = [
    Refusal("94 CSRF token is not the cookie", _wrong_csrf, 403, "csrf_failed"),
    Refusal("94 no CSRF cookie", _no_cookie, 403, "csrf_failed"),
    Refusal("94 no CSRF header", _no_csrf, 403, "csrf_failed"),
    Refusal("94 CSRF token signed by another key", _forged_csrf, 403, "csrf_failed"),
    Refusal("95 foreign origin", _post(Origin="https://evil.example"), 403, "origin_rejected"),
    Refusal("95 cross-site", _post(**{"Sec-Fetch-Site": "cross-site"}), 403, "origin_rejected"),
    Refusal("101 oversize header", _post(**{"Tokenware-Handshake": "v1." + "A" * 100_000}), 400,
            "invalid_handshake"),
    Refusal("104 legacy CryptoJS", _post(**{"Tokenware-Handshake": "U2FsdGVkX1abc"}), 400,
            "invalid_handshake"),
    Refusal("104 v2", _post(**{"Tokenware-Handshake": "v2." + "A" * 87 + "." + "A" * 22}), 400,
            "invalid_handshake"),
    Refusal("96 off-curve point", _post(**{"Tokenware-Handshake": "v1.BA" + "A" * 85 + "."
            + "A" * 22}), 400, "invalid_handshake"),
    Refusal("no handshake header", _post(**{"Tokenware-Handshake": ""}), 400, "invalid_handshake"),
    Refusal("payload refuses (not logged in)", _post(**{"X-Refuse": "1"}), 401, "unauthorized"),
]  # fmt: skip


@pytest.mark.parametrize("case", REFUSALS, ids=lambda c: c.name)
def test_refusals_are_json_errors(case: Refusal) -> None:
    wout, aout = _run_both([case.make])
    for side, response in (*wout, *aout):
        assert response.status_code == case.status
        assert response.json() == {"error": case.code}
        assert response.headers["content-type"] == "application/json"
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["vary"] == "Cookie"
        assert "tokenware-handshake" not in response.headers
        assert "access-control-allow-origin" not in response.headers
        assert len(side.calls) == (1 if case.code == "unauthorized" else 0)


def test_97_replay_is_409_and_mints_nothing() -> None:
    client = RefClient()
    saved: dict[int, dict[str, str]] = {}

    def make(side: Side) -> tuple[str, str, Mapping[str, str]]:
        if id(side) not in saved:
            saved[id(side)] = _hs_headers(side, client)
        return "POST", "/tokenware/handshake", saved[id(side)]

    wout, aout = _run_both([make, make])
    for pair in (wout, aout):
        assert [r.status_code for _, r in pair] == [200, 409]
        assert pair[1][1].json() == {"error": "handshake_replayed"}
        assert len(pair[0][0].calls) == 1


def test_103_throttled_is_429_with_retry_after() -> None:
    wout, aout = _run_both(
        [_post()] * 3, handshake={"session_rate": None, "address_rate": "2/minute"}
    )
    for pair in (wout, aout):
        assert [r.status_code for _, r in pair] == [200, 200, 429]
        last = pair[2][1]
        assert last.json() == {"error": "rate_limited"}
        assert int(last.headers["retry-after"]) >= 1


def test_store_down_is_503_with_retry_after(unused_port: int) -> None:
    def down() -> Tokenware:
        return Tokenware(
            store=f"redis://127.0.0.1:{unused_port}/0",
            secret_key=SECRET,
            store_timeout=0.2,
            store_connect_timeout=0.2,
        )

    pytest.importorskip("redis")
    results = []
    for kind in ("wsgi", "asgi"):
        tw = down()
        token = tw.handshake.issue_csrf()
        headers = _hs_headers(Side(tw), RefClient(), csrf=token)
        options = {"tokenware": tw, "origins": [ORIGIN], "handshake_payload": lambda r: "x"}
        if kind == "wsgi":
            with wsgi_client(**options) as client:
                results.append(client.post("/tokenware/handshake", headers=headers))
        else:
            results.append(asyncio.run(_apost(options, "/tokenware/handshake", headers)))
    for response in results:
        assert response.status_code == 503
        assert response.json() == {"error": "store_unavailable"}
        assert int(response.headers["retry-after"]) >= 1
        assert response.headers["cache-control"] == "no-store"


async def _apost(options: dict[str, Any], path: str, headers: Mapping[str, str]) -> httpx.Response:
    async with asgi_client(**options) as client:
        return await client.post(path, headers=dict(headers))


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_allowed_cross_origin_caller_gets_cors_headers_never_a_star() -> None:
    other = "https://admin.example.com"
    site = {"Origin": other, "Sec-Fetch-Site": "same-site"}
    preflight = {
        "Origin": other,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "tokenware-handshake, x-csrf-token",
    }
    wout, _ = _run_both(
        [
            _post(**site),
            _req("OPTIONS", "/tokenware/handshake", preflight),
            _req(
                "OPTIONS", "/tokenware/handshake", {**preflight, "Origin": "https://evil.example"}
            ),
            _post(Origin="https://evil.example", **{"Sec-Fetch-Site": "cross-site"}),
        ],
        origins=[ORIGIN, other],
    )
    ok, pre, evil_pre, evil = (r for _, r in wout)
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == other
    assert ok.headers["access-control-allow-credentials"] == "true"
    assert ok.headers["access-control-expose-headers"] == "Tokenware-Handshake"
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == other
    assert "Tokenware-Handshake" in pre.headers["access-control-allow-headers"]
    assert evil_pre.status_code == 405
    assert evil.status_code == 403
    for response in (evil_pre, evil):
        assert "access-control-allow-origin" not in response.headers
        assert "access-control-expose-headers" not in response.headers
    for _, response in wout:
        assert response.headers.get("access-control-allow-origin") != "*"


def test_async_payload_on_asgi_and_refused_on_wsgi() -> None:
    tw = _tw()

    async def payload(request: EndpointRequest) -> str:
        await asyncio.sleep(0)
        return tw.jwt.issue("bob").access_token

    with pytest.raises(ConfigurationError, match="ASGI"):
        wsgi_client(tokenware=tw, origins=[ORIGIN], handshake_payload=payload)
    client = RefClient()
    headers = _hs_headers(Side(tw), client)

    async def go() -> httpx.Response:
        async with asgi_client(tokenware=tw, origins=[ORIGIN], handshake_payload=payload) as c:
            return await c.post("/tokenware/handshake", headers=headers)

    response = asyncio.run(go())
    assert response.status_code == 200
    plain = client.open_header(
        response.headers["tokenware-handshake"], csrf=headers["X-CSRF-Token"]
    )
    assert tw.jwt.verify(plain["access_token"]).subject == "bob"


def test_configuration_errors() -> None:
    tw = _tw()
    with pytest.raises(ConfigurationError, match="origins"):
        wsgi_client(tokenware=tw, handshake_payload=lambda r: "x")
    with pytest.raises(ConfigurationError, match="delivery"):
        wsgi_client(tokenware=tw, origins=[ORIGIN], handshake_payload=lambda r: "x",
                    handshake_delivery="cookie")  # fmt: skip
    with pytest.raises(ConfigurationError, match="callable"):
        wsgi_client(tokenware=tw, origins=[ORIGIN], handshake_payload="token")
    with pytest.raises(ConfigurationError, match="origin"):
        wsgi_client(tokenware=tw, origins=["not an origin"], handshake_payload=lambda r: "x")
    with pytest.raises(ConfigurationError, match="script_path"):
        wsgi_client(tokenware=tw, script_path="tokenware.js")


def test_handshake_path_off_or_no_payload_reaches_the_app() -> None:
    for options in ({"handshake_path": None}, {"handshake_payload": False}):
        wout, _ = _run_both([_post()], protect=[], **options)
        assert wout[0][1].status_code == 200
        assert wout[0][1].json() == {"app": "/tokenware/handshake"}


def test_configured_handshake_path() -> None:
    def make(side: Side) -> tuple[str, str, Mapping[str, str]]:
        return "POST", "/auth/hs", _hs_headers(side, RefClient())

    wout, _ = _run_both([make, _post()], handshake_path="/auth/hs", protect=[])
    assert wout[0][1].status_code == 200 and "tokenware-handshake" in wout[0][1].headers
    assert wout[1][1].json() == {"app": "/tokenware/handshake"}


# -- the browser client ------------------------------------------------------------------


def test_script_is_served_with_etag_and_cache_control() -> None:
    wout, _ = _run_both([_req("GET", "/tokenware.js"), _req("HEAD", "/tokenware.js")])
    get, head = (r for _, r in wout)
    assert get.status_code == 200 and head.status_code == 200
    assert get.content == SCRIPT
    assert head.content == b""
    assert get.headers["content-type"] == "text/javascript; charset=utf-8"
    assert get.headers["cache-control"] == "public, max-age=300"
    assert get.headers["x-content-type-options"] == "nosniff"
    etag = get.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    assert head.headers["etag"] == etag
    assert head.headers["content-length"] == str(len(SCRIPT))
    assert "set-cookie" not in get.headers


def test_script_304_on_if_none_match() -> None:
    etag = endpoints._script().etag
    cases = [etag, f"W/{etag}", f'"other", {etag}', "*"]
    wout, _ = _run_both(
        [_req("GET", "/tokenware.js", {"If-None-Match": v}) for v in cases]
        + [_req("GET", "/tokenware.js", {"If-None-Match": '"other"'})]
    )
    for _, response in wout[:-1]:
        assert response.status_code == 304
        assert response.content == b""
        assert response.headers["etag"] == etag
        assert response.headers["cache-control"] == "public, max-age=300"
    assert wout[-1][1].status_code == 200


def test_script_gzip_when_accepted() -> None:
    wout, _ = _run_both(
        [
            _req("GET", "/tokenware.js", {"Accept-Encoding": "gzip, br"}),
            _req("GET", "/tokenware.js", {"Accept-Encoding": "gzip;q=0"}),
            _req("GET", "/tokenware.js", {"Accept-Encoding": "identity"}),
        ]
    )
    packed, refused, plain = (r for _, r in wout)
    # httpx decodes Content-Encoding: the decoded body must be the file.
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.content == SCRIPT
    assert int(packed.headers["content-length"]) < len(SCRIPT) // 2
    assert gzip.decompress(endpoints._script().gzipped) == SCRIPT
    assert packed.headers["etag"] != plain.headers["etag"]
    assert packed.headers["vary"] == "Accept-Encoding"
    for response in (refused, plain):
        assert "content-encoding" not in response.headers
        assert response.content == SCRIPT


def test_script_other_methods_405() -> None:
    wout, _ = _run_both([_req("POST", "/tokenware.js"), _req("DELETE", "/tokenware.js")])
    for _, response in wout:
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, HEAD"


TRAVERSAL = [
    "/tokenware.js/../pyproject.toml",
    "/tokenware.js/x",
    "/tokenware.js/",
    "/tokenware.js%2f..",
    "/tokenware.js%2F..%2F..%2Fpyproject.toml",
    "/tokenware.js%00",
    "/tokenware.js.map",
    "/tokenware.d.ts",
    "/TOKENWARE.JS",
    "/static/tokenware.js",
    "//tokenware.js",
]


@pytest.mark.parametrize("path", TRAVERSAL)
def test_nothing_else_under_the_script_path_is_served(path: str) -> None:
    wout, _ = _run_both([_req("GET", path)], protect=[])
    response = wout[0][1]
    assert response.status_code == 200  # the app's answer
    assert response.content != SCRIPT
    assert "etag" not in response.headers


def test_script_path_configurable_and_off() -> None:
    wout, _ = _run_both(
        [_req("GET", "/static/tw.js"), _req("GET", "/tokenware.js")],
        script_path="/static/tw.js",
        protect=[],
    )
    assert wout[0][1].content == SCRIPT
    assert wout[1][1].json() == {"app": "/tokenware.js"}
    wout, _ = _run_both([_req("GET", "/tokenware.js")], script_path=None, protect=[])
    assert wout[0][1].json() == {"app": "/tokenware.js"}


# -- the CSRF cookie -----------------------------------------------------------------------


def _set_cookie(response: httpx.Response) -> str | None:
    values = [v for k, v in response.headers.multi_items() if k == "set-cookie"]
    assert len(values) <= 1
    return values[0] if values else None


def test_html_pages_get_the_csrf_cookie_once() -> None:
    wout, aout = _run_both([_req("GET", "/"), _req("HEAD", "/page")], protect=["/api/"])
    for side, response in (*wout, *aout):
        cookie = _set_cookie(response)
        assert cookie is not None
        name_value, *attributes = cookie.split("; ")
        name, _, value = name_value.partition("=")
        assert name == "tokenware_csrf"
        assert set(attributes) == {"Path=/", "Max-Age=43200", "SameSite=Strict", "Secure"}
        side.tw.handshake.verify_csrf(value)  # signed by this instance


def test_cookie_rules() -> None:
    def with_cookie(path: str, value: str | None = None) -> Requester:
        def make(side: Side) -> tuple[str, str, Mapping[str, str]]:
            token = value if value is not None else side.tw.handshake.issue_csrf()
            return "GET", path, {"Cookie": f"a=b; tokenware_csrf={token}"}

        return make

    cases: list[tuple[str, Requester, bool]] = [
        ("valid cookie already", with_cookie("/"), False),
        ("forged cookie replaced", with_cookie("/", "forged.value"), True),
        ("JSON response", _req("GET", "/pub/data"), False),
        ("POST", _req("POST", "/page"), False),
        ("404 page", _req("GET", "/missing"), False),
        ("exempt route", _req("GET", "/health"), False),
        ("protected route refused", _req("GET", "/api/page"), False),
        ("shared cache", _req("GET", "/page?public"), False),
        ("app sets it", _req("GET", "/page?own-cookie"), False),
        ("the script", _req("GET", "/tokenware.js"), False),
    ]
    wout, _ = _run_both([make for _, make, _ in cases], protect=["/api/"], exempt=["/health"])
    for (name, _, expected), (_, response) in zip(cases, wout, strict=True):
        cookie = _set_cookie(response)
        if name == "app sets it":
            assert cookie == "tokenware_csrf=app-made; Path=/", name
        else:
            assert (cookie is not None) is expected, name


def test_no_cookie_without_the_handshake_and_secure_off() -> None:
    wout, _ = _run_both([_req("GET", "/")], handshake_payload=False)
    assert _set_cookie(wout[0][1]) is None
    wout, _ = _run_both([_req("GET", "/")], csrf_cookie_secure=False)
    cookie = _set_cookie(wout[0][1])
    assert cookie is not None and "Secure" not in cookie and "SameSite=Strict" in cookie


def test_the_cookie_from_a_page_runs_a_handshake() -> None:
    """What the browser does: load the page, echo the cookie, open the reply."""

    async def through_asgi(options: dict[str, Any], client: RefClient) -> str:
        async with asgi_client(**options) as c:
            token = (await c.get("/")).cookies["tokenware_csrf"]
            headers = {
                "Tokenware-Handshake": client.header,
                "X-CSRF-Token": token,
                "Origin": ORIGIN,
            }
            reply = await c.post("/tokenware/handshake", headers=headers)
        return str(
            client.open_header(reply.headers["tokenware-handshake"], csrf=token)["access_token"]
        )

    def through_wsgi(options: dict[str, Any], client: RefClient) -> str:
        with wsgi_client(**options) as c:
            token = c.get("/").cookies["tokenware_csrf"]
            headers = {
                "Tokenware-Handshake": client.header,
                "X-CSRF-Token": token,
                "Origin": ORIGIN,
            }
            reply = c.post("/tokenware/handshake", headers=headers)
        return str(
            client.open_header(reply.headers["tokenware-handshake"], csrf=token)["access_token"]
        )

    for kind in ("wsgi", "asgi"):
        side = Side(_tw())
        options = {"tokenware": side.tw, "origins": [ORIGIN], "handshake_payload": _payload(side),
                   "csrf_cookie_secure": False, "protect": ["/api/"]}  # fmt: skip
        if kind == "wsgi":
            access = through_wsgi(options, RefClient())
        else:
            access = asyncio.run(through_asgi(options, RefClient()))
        assert side.tw.jwt.verify(access).subject == "alice"


# -- the standalone apps -------------------------------------------------------------------


async def _astandalone(app: Any, headers: Mapping[str, str]) -> list[httpx.Response]:
    async with asgi_raw(app) as c:
        return [
            await c.get("/tokenware.js"),
            await c.post("/tokenware/handshake", headers=dict(headers)),
            await c.get("/tokenware/handshake"),
            await c.get("/elsewhere"),
        ]


def test_standalone_endpoint_apps_serve_script_and_handshake() -> None:
    results = []
    for kind in ("wsgi", "asgi"):
        side = Side(_tw())
        options = {"origins": [ORIGIN], "handshake_payload": _payload(side)}
        client = RefClient()
        headers = _hs_headers(side, client)
        if kind == "wsgi":
            with wsgi_raw(endpoints.wsgi_app(side.tw, **options)) as c:
                got = [
                    c.get("/tokenware.js"),
                    c.post("/tokenware/handshake", headers=headers),
                    c.get("/tokenware/handshake"),
                    c.get("/elsewhere"),
                ]
        else:
            got = asyncio.run(_astandalone(endpoints.asgi_app(side.tw, **options), headers))
        script, reply, wrong, missing = got
        assert script.content == SCRIPT
        assert reply.status_code == 200
        csrf = headers["X-CSRF-Token"]
        plain = client.open_header(reply.headers["tokenware-handshake"], csrf=csrf)
        assert side.tw.jwt.verify(plain["access_token"]).subject == "alice"
        assert wrong.status_code == 405
        assert missing.status_code == 404
        results.append([r.status_code for r in got])
    assert results[0] == results[1]


def test_payload_request_carries_headers_cookies_and_raw() -> None:
    wout, aout = _run_both([_post(**{"Cookie": "sid=abc; tokenware_csrf=zzz"})])
    # the cookie is not the CSRF token any more: refused before the payload
    assert wout[0][1].status_code == 403

    def make(side: Side) -> tuple[str, str, Mapping[str, str]]:
        headers = _hs_headers(side, RefClient())
        headers["Cookie"] = "sid=abc; " + headers["Cookie"]
        return "POST", "/tokenware/handshake", headers

    wout, aout = _run_both([make])
    for side, response in (*wout, *aout):
        assert response.status_code == 200
        request = side.calls[0]
        assert request.method == "POST"
        assert request.cookies["sid"] == "abc"
        assert request.headers["origin"] == ORIGIN
        assert request.raw is not None
    assert isinstance(wout[0][0].calls[0].raw, dict) and "PATH_INFO" in wout[0][0].calls[0].raw
    assert aout[0][0].calls[0].raw["type"] == "http"


def test_reply_never_leaks_the_token_in_clear() -> None:
    """105 at the HTTP layer: nothing in the response carries the access token."""
    wout, aout = _run_both([_post()])
    for _, response in (*wout, *aout):
        text = json.dumps(dict(response.headers)) + response.text
        assert "eyJ" not in text  # no JWT (base64url of '{"') in headers or body
