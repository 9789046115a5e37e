"""HTTP throttling: the middlewares' ``throttle=`` rules, ``auth_failure_throttle=``
and the ``@throttle`` decorator (issue 7 items 4-6; security.md §4 H 109, 113, 115).

Every middleware scenario runs as a script through ``httpx.WSGITransport``
(app and middleware wrapped in ``wsgiref.validate``) and
``httpx.ASGITransport``, each on a fresh store and its own FrozenClock at the
same time: the two must answer identically (status, headers, body).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.validate import validator

import httpx
import pytest

from tokenware import ThrottleRule, Tokenware, asgi, requires, throttle, wsgi
from tokenware.identity import Identity
from tokenware.testing import FrozenClock, make_secret_key

SECRET = make_secret_key()
PEER = "203.0.113.5"
START = 1_800_000_000.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dead_store() -> str:
    """A loopback Redis URL nothing listens on."""
    return f"redis://127.0.0.1:{_free_port()}/0"


# -- the apps ---------------------------------------------------------------------


def _body(identity: object) -> bytes:
    who = identity.subject if isinstance(identity, Identity) else None
    return json.dumps({"subject": who}).encode()


def wsgi_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    body = _body(environ.get("tokenware.identity"))
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = _body(scope.get("tokenware.identity"))
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# -- scripts run on both adapters ----------------------------------------------------


@dataclass(frozen=True)
class Step:
    path: str = "/x"
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    peer: str = PEER
    advance: float = 0.0  # seconds to move the clock before the request


Answer = tuple[int, tuple[tuple[str, str], ...], bytes]


def _answer(response: httpx.Response) -> Answer:
    headers = tuple(sorted((k.lower(), v) for k, v in response.headers.multi_items()))
    return response.status_code, headers, response.content


StoreFactory = Callable[[str], str]


def _instance(store: str, clock: FrozenClock, prefix: str) -> Tokenware:
    return Tokenware(
        store=store,
        secret_key=SECRET,
        clock=clock,
        key_prefix=prefix,
        store_timeout=0.3,
        store_connect_timeout=0.3,
    )


def run_wsgi(store: str, prefix: str, steps: list[Step], **options: Any) -> list[Answer]:
    clock = FrozenClock(START)
    tw = _instance(store, clock, prefix + "w")
    app = validator(wsgi.TokenwareMiddleware(validator(wsgi_app), tokenware=tw, **options))
    answers = []
    clients: dict[str, httpx.Client] = {}
    try:
        for step in steps:
            clock.advance(step.advance)
            if step.peer not in clients:
                transport = httpx.WSGITransport(app=app, remote_addr=step.peer)
                clients[step.peer] = httpx.Client(transport=transport, base_url="http://t")
            r = clients[step.peer].request(step.method, step.path, headers=list(step.headers))
            answers.append(_answer(r))
    finally:
        for c in clients.values():
            c.close()
        tw.close()
    return answers


def run_asgi(store: str, prefix: str, steps: list[Step], **options: Any) -> list[Answer]:
    async def main() -> list[Answer]:
        clock = FrozenClock(START)
        tw = _instance(store, clock, prefix + "a")
        app = asgi.TokenwareMiddleware(asgi_app, tokenware=tw, **options)
        answers = []
        try:
            for step in steps:
                clock.advance(step.advance)
                transport = httpx.ASGITransport(app=app, client=(step.peer, 40000))
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                    r = await c.request(step.method, step.path, headers=list(step.headers))
                answers.append(_answer(r))
        finally:
            await tw.aio.aclose()
            tw.close()
        return answers

    return asyncio.run(main())


def both(store: str, prefix: str, steps: list[Step], **options: Any) -> list[Answer]:
    """Run ``steps`` on WSGI and ASGI; assert parity; return the answers."""
    via_wsgi = run_wsgi(store, prefix, steps, **options)
    via_asgi = run_asgi(store, prefix, steps, **options)
    for i, (w, a) in enumerate(zip(via_wsgi, via_asgi, strict=True)):
        assert w == a, f"step {i}: WSGI {w} != ASGI {a}"
    return via_wsgi


def header(answer: Answer, name: str) -> str | None:
    values = [v for k, v in answer[1] if k == name.lower()]
    assert len(values) <= 1, f"{name} sent {len(values)} times"
    return values[0] if values else None


def assert_429(answer: Answer, retry_after: int) -> None:
    status, _, body = answer
    assert status == 429
    assert header(answer, "retry-after") == str(retry_after)
    assert header(answer, "content-type") == "application/problem+json"
    assert header(answer, "ratelimit-policy") is not None
    assert header(answer, "ratelimit") is not None
    document = json.loads(body)
    assert document["status"] == 429 and document["type"] == "urn:tokenware:problem:rate_limited"


@pytest.fixture(params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'http-throttle.db'}"
    return str(request.getfixturevalue("redis_url"))


def frozen_only(store: str) -> None:
    if store.startswith("redis"):
        pytest.skip("moves the FrozenClock; Redis reads its own TIME")


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("Authorization", f"Bearer {token}"),)


def jwt_for(subject: str) -> str:
    """An access JWT any instance with SECRET verifies (no store needed)."""
    tw = Tokenware(store="memory://", secret_key=SECRET, clock=FrozenClock(START))
    try:
        return tw.jwt.issue(subject).access_token
    finally:
        tw.close()


# -- app-wide rules ---------------------------------------------------------------------


def test_allowed_then_429_after_the_burst(store: str, prefix: str) -> None:
    """'3/minute': three 200s with RateLimit fields, then 429 + Retry-After (case 115)."""
    answers = both(store, prefix, [Step()] * 4, protect=[], throttle="3/minute")
    for remaining, answer in zip((2, 1, 0), answers, strict=False):
        assert answer[0] == 200
        assert header(answer, "ratelimit-policy") == '"3/minute";q=3;w=60'
        assert header(answer, "ratelimit") == f'"3/minute";r={remaining};t={20 * (3 - remaining)}'
        assert header(answer, "retry-after") is None
        assert json.loads(answer[2]) == {"subject": None}
    assert_429(answers[3], 20)
    assert header(answers[3], "ratelimit") == '"3/minute";r=0;t=20'
    assert header(answers[3], "cache-control") == "no-store"


def test_one_more_after_period_over_limit(store: str, prefix: str) -> None:
    frozen_only(store)
    steps = [Step()] * 3 + [Step(advance=19.5), Step(advance=0.5), Step()]
    answers = both(store, prefix, steps, protect=[], throttle=["3/minute"])
    assert [a[0] for a in answers] == [200, 200, 200, 429, 200, 429]
    assert header(answers[3], "retry-after") == "1"  # 0.5 s rounded up, never 0


def test_legacy_headers_are_optional(prefix: str) -> None:
    rule = ThrottleRule("2/minute", legacy_headers=True)
    answers = both("memory://", prefix, [Step()] * 3, protect=[], throttle=[rule])
    assert header(answers[0], "x-ratelimit-limit") == "2"
    assert header(answers[0], "x-ratelimit-remaining") == "1"
    assert header(answers[0], "x-ratelimit-reset") == str(int(START) + 30)
    assert header(answers[2], "x-ratelimit-remaining") == "0"
    plain = both("memory://", prefix + "p", [Step()], protect=[], throttle="2/minute")
    assert header(plain[0], "x-ratelimit-limit") is None


def test_rules_per_path_prefix_and_method(store: str, prefix: str) -> None:
    rules = [
        ThrottleRule("2/minute", prefix="/upload"),
        ThrottleRule("1/minute", prefix="/login", methods=["POST"]),
        "10/minute",
    ]
    steps = [
        Step("/upload"),
        Step("/upload/a"),
        Step("/upload/b"),  # 429: the /upload rule
        Step("/uploads"),  # not below /upload
        Step("/login", "POST"),
        Step("/login", "POST"),  # 429
        Step("/login"),  # GET is not covered by the POST rule
    ]
    answers = both(store, prefix, steps, protect=[], throttle=rules)
    assert [a[0] for a in answers] == [200, 200, 429, 200, 200, 429, 200]
    assert header(answers[0], "ratelimit-policy") == ('"2/minute";q=2;w=60, "10/minute";q=10;w=60')
    assert header(answers[3], "ratelimit-policy") == '"10/minute";q=10;w=60'
    assert_429(answers[2], 30)
    assert_429(answers[5], 60)
    # A request denied by the /upload rule took nothing from the app-wide rule:
    # 6 counted so far (2 + 1 + 1 + 1 + 1 ... minus the two refunded denials).
    assert header(answers[6], "ratelimit") == '"10/minute";r=5;t=30'


def test_exempt_paths_are_not_throttled(prefix: str) -> None:
    steps = [Step("/health")] * 3
    answers = both("memory://", prefix, steps, protect=[], exempt=["/health"], throttle="1/minute")
    assert [a[0] for a in answers] == [200, 200, 200]
    assert header(answers[0], "ratelimit") is None


def test_authenticated_subject_keying_vs_address(store: str, prefix: str) -> None:
    alice, bob = bearer(jwt_for("alice")), bearer(jwt_for("bob"))
    steps = [
        Step(headers=alice),
        Step(headers=alice),
        Step(headers=alice),  # 429: alice's bucket
        Step(headers=bob),  # bob has his own, from the same address
        Step(),  # anonymous: the address's bucket
        Step(),
        Step(),  # 429
        Step(headers=alice, peer="198.51.100.9"),  # alice elsewhere: still her bucket
    ]
    answers = both(store, prefix, steps, protect=[], throttle="2/minute")
    assert [a[0] for a in answers] == [200, 200, 429, 200, 200, 200, 429, 429]
    assert json.loads(answers[3][2]) == {"subject": "bob"}


def test_spoofed_forwarded_for_with_no_trusted_proxy(store: str, prefix: str) -> None:
    """Case 109: X-Forwarded-For from the client does not change its key."""
    steps = [Step(headers=(("X-Forwarded-For", f"10.0.0.{i}"),)) for i in range(3)]
    answers = both(store, prefix, steps, protect=[], throttle="2/minute")
    assert [a[0] for a in answers] == [200, 200, 429]


def test_one_trusted_proxy_takes_the_rightmost_hop(store: str, prefix: str) -> None:
    xff = "X-Forwarded-For"
    steps = [
        Step(headers=((xff, "6.6.6.6, 198.51.100.1"),)),
        Step(headers=((xff, "7.7.7.7, 198.51.100.1"),)),  # same client, forged left part
        Step(headers=((xff, "8.8.8.8, 198.51.100.1"),)),  # 429
        Step(headers=((xff, "6.6.6.6, 198.51.100.2"),)),  # another client
        Step(headers=((xff, "2001:db8:1:2::1"),)),
        Step(headers=((xff, "2001:db8:1:2::ffff"),)),  # same /64 (case 110)
        Step(headers=((xff, "2001:db8:1:2:aaaa::1"),)),  # 429
    ]
    answers = both(store, prefix, steps, protect=[], throttle="2/minute", trusted_proxies=1)
    assert [a[0] for a in answers] == [200, 200, 429, 200, 200, 200, 429]


def test_key_callable(prefix: str) -> None:
    def tenant(request: Any, identity: Any) -> str | None:
        return request.path.split("/")[1] or None

    rule = ThrottleRule("1/minute", key=tenant)
    steps = [Step("/acme/a"), Step("/acme/b"), Step("/globex/a", peer="192.0.2.1"), Step("/")]
    answers = both("memory://", prefix, steps, protect=[], throttle=[rule])
    assert [a[0] for a in answers] == [200, 429, 200, 200]
    assert header(answers[3], "ratelimit") is None  # key None: not counted


def test_store_down_closed_is_503(prefix: str) -> None:
    """Case 113: the limiter's store down and the rule closed -> 503 + Retry-After, never 200."""
    answers = both(dead_store(), prefix, [Step()], protect=[], throttle="5/minute")
    status, _, body = answers[0]
    assert status == 503
    assert header(answers[0], "retry-after") is not None
    assert int(header(answers[0], "retry-after") or 0) >= 1
    assert json.loads(body)["type"] == "urn:tokenware:problem:store_unavailable"


def test_store_down_open_serves_and_warns(prefix: str, caplog: pytest.LogCaptureFixture) -> None:
    rule = ThrottleRule("5/minute", on_store_error="open")
    with caplog.at_level(logging.WARNING, logger="tokenware.throttle"):
        answers = both(dead_store(), prefix, [Step("/x?q=secret")], protect=[], throttle=[rule])
    assert answers[0][0] == 200
    assert header(answers[0], "ratelimit") is None
    warnings = [r for r in caplog.records if r.name == "tokenware.throttle"]
    assert len(warnings) == 2  # one per adapter
    assert all(r.levelno == logging.WARNING for r in warnings)
    assert all("secret" not in r.getMessage() for r in warnings)


def test_closed_wins_when_rules_disagree(prefix: str) -> None:
    rules = [ThrottleRule("5/minute", on_store_error="open"), "100/minute"]
    answers = both(dead_store(), prefix, [Step()], protect=[], throttle=rules)
    assert answers[0][0] == 503


def test_bad_options_fail_at_construction() -> None:
    from tokenware.errors import ConfigurationError, ValidationError

    tw = Tokenware(store="memory://", secret_key=SECRET)
    with pytest.raises(ConfigurationError, match="month"):
        wsgi.TokenwareMiddleware(wsgi_app, tokenware=tw, throttle="10/month")
    with pytest.raises(ConfigurationError):
        asgi.TokenwareMiddleware(asgi_app, tokenware=tw, throttle=[42])
    with pytest.raises(ConfigurationError):
        asgi.TokenwareMiddleware(asgi_app, tokenware=tw, throttle=[])
    with pytest.raises(ConfigurationError):
        wsgi.TokenwareMiddleware(wsgi_app, tokenware=tw, auth_failure_throttle="lots")
    with pytest.raises(ConfigurationError):
        ThrottleRule("1/minute", on_store_error="maybe")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        ThrottleRule("1/minute", prefix="api")
    with pytest.raises(ValidationError):
        ThrottleRule("1/fortnight")
    tw.close()


# -- failed authentications (security.md §4 H.115, issue 7 item 6) ------------------------


def test_failed_authentications_consume_quota_per_address(store: str, prefix: str) -> None:
    bad = bearer("tw_not_a_real_token")
    good = bearer(jwt_for("alice"))
    elsewhere = "198.51.100.77"
    steps = [
        Step("/api/x", headers=bad),
        Step("/api/x", headers=bad),
        Step("/api/x", headers=bad),  # 429: refused before verifying
        Step("/api/x", headers=good),  # even a good token: nothing is verified
        Step("/api/x"),  # no credentials: the usual 401, nothing to throttle
        Step("/api/x", headers=good, peer=elsewhere),  # another address is not affected
        Step("/api/x", headers=bad, peer=elsewhere),
    ]
    answers = both(store, prefix, steps, protect=["/api/"], auth_failure_throttle="2/minute")
    assert [a[0] for a in answers] == [401, 401, 429, 429, 401, 200, 401]
    assert header(answers[0], "www-authenticate") == 'Bearer realm="api", error="invalid_token"'
    assert_429(answers[2], 30)
    assert header(answers[2], "ratelimit") == '"2/minute";r=0;t=30'
    assert header(answers[2], "www-authenticate") is None
    assert header(answers[4], "www-authenticate") == 'Bearer realm="api"'
    # Successful authentications take nothing.
    ok = both(store, prefix + "ok", [Step("/api/x", headers=good)] * 5,
              protect=["/api/"], auth_failure_throttle="2/minute")  # fmt: skip
    assert [a[0] for a in ok] == [200] * 5


def test_failure_quota_recovers_one_at_a_time(prefix: str) -> None:
    bad = bearer("tw_not_a_real_token")
    steps = [Step(headers=bad)] * 3 + [Step(headers=bad, advance=30), Step(headers=bad)]
    answers = both("memory://", prefix, steps, auth_failure_throttle="2/minute")
    assert [a[0] for a in answers] == [401, 401, 429, 401, 429]


def test_failure_throttle_on_public_routes_means_anonymous(prefix: str) -> None:
    """Public routes treat any credential failure as anonymous, a 429 included."""
    good = bearer(jwt_for("alice"))
    bad = bearer("tw_not_a_real_token")
    steps = [Step(headers=bad), Step(headers=bad), Step(headers=good), Step()]
    answers = both("memory://", prefix, steps, protect=[], auth_failure_throttle="2/minute")
    assert [a[0] for a in answers] == [200] * 4
    assert json.loads(answers[2][2]) == {"subject": None}


def test_failure_throttle_store_down_is_503(prefix: str) -> None:
    """Case 113: a security throttle with its store down answers 503, never unlimited."""
    steps = [Step("/api/x", headers=bearer(jwt_for("alice")))]
    answers = both(dead_store(), prefix, steps, protect=["/api/"], auth_failure_throttle="5/minute")
    assert answers[0][0] == 503
    assert header(answers[0], "retry-after") is not None


def test_failure_and_request_throttles_together(prefix: str) -> None:
    bad = bearer("tw_not_a_real_token")
    steps = [Step(headers=bad)] * 3
    answers = both(
        "memory://", prefix, steps, throttle="100/minute", auth_failure_throttle="2/minute"
    )
    assert [a[0] for a in answers] == [401, 401, 429]


# -- the decorator ----------------------------------------------------------------------


def _flask_app(tw: Tokenware) -> Any:
    flask = pytest.importorskip("flask")
    pytest.importorskip("asgiref")
    from tokenware.integrations.flask import init_app

    app = flask.Flask(__name__)
    init_app(app, tw)

    @app.get("/sync")
    @throttle("2/minute")
    def sync_view() -> Any:
        return {"subject": None}

    @app.get("/async")
    @throttle("2/minute")
    async def async_view() -> Any:
        return {"subject": None}

    @app.get("/who")
    @requires()
    @throttle("2/minute", key="subject")
    def who() -> Any:
        return {"ok": True}

    return app


def _starlette_app(tw: Tokenware, **middleware: Any) -> Any:
    pytest.importorskip("starlette")
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    @throttle("2/minute")
    def sync_view(request: Request) -> JSONResponse:
        return JSONResponse({"subject": None})

    @throttle("2/minute")
    async def async_view(req: Request) -> JSONResponse:  # any parameter name
        return JSONResponse({"subject": None})

    @throttle("1/minute", on_store_error="open")
    async def open_view(request: Request) -> JSONResponse:
        return JSONResponse({"subject": None})

    stack = [Middleware(asgi.TokenwareMiddleware, tokenware=tw, **middleware)] if middleware else []
    app = Starlette(
        routes=[
            Route("/sync", sync_view),
            Route("/async", async_view),
            Route("/open", open_view),
        ],
        middleware=stack,
    )
    app.state.tokenware = tw
    return app


def _decorated_answers(tw: Tokenware, framework: str, path: str, n: int = 3) -> list[Answer]:
    if framework == "flask":
        app = validator(_flask_app(tw).wsgi_app)
        transport = httpx.WSGITransport(app=app, remote_addr=PEER)
        with httpx.Client(transport=transport, base_url="http://t") as c:
            return [_answer(c.get(path)) for _ in range(n)]

    async def main() -> list[Answer]:
        transport = httpx.ASGITransport(app=_starlette_app(tw), client=(PEER, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return [_answer(await c.get(path)) for _ in range(n)]

    return asyncio.run(main())


def _contract(answer: Answer) -> tuple[int, tuple[tuple[str, str], ...], bytes]:
    """Status, the headers tokenware owns, and the body (frameworks add their own)."""
    ours = ("ratelimit", "ratelimit-policy", "retry-after", "cache-control")
    status, headers, body = answer
    kept = tuple((k, v) for k, v in headers if k in ours)
    return status, kept, body if status != 200 else json.loads(body) == {"subject": None}


@pytest.mark.parametrize(
    ("framework", "path"),
    [("flask", "/sync"), ("flask", "/async"), ("starlette", "/sync"), ("starlette", "/async")],
)
def test_decorator_on_sync_and_async_views(
    store: str, prefix: str, framework: str, path: str
) -> None:
    tw = _instance(store, FrozenClock(START), prefix)
    try:
        answers = _decorated_answers(tw, framework, path)
    finally:
        tw.close()
    assert [a[0] for a in answers] == [200, 200, 429]
    assert header(answers[0], "ratelimit") == '"2/minute";r=1;t=30'
    assert_429(answers[2], 30)
    # The same 429 as the middleware's rules, byte for byte.
    middleware = both("memory://", prefix, [Step()] * 3, protect=[], throttle="2/minute")
    assert [_contract(a) for a in answers] == [_contract(a) for a in middleware]


def test_decorated_views_have_their_own_buckets(prefix: str) -> None:
    tw = _instance("memory://", FrozenClock(START), prefix)
    try:
        first = _decorated_answers(tw, "starlette", "/sync", 2)
        second = _decorated_answers(tw, "starlette", "/async", 2)
    finally:
        tw.close()
    assert [a[0] for a in first + second] == [200, 200, 200, 200]


def test_decorator_behind_requires_keys_on_subject(prefix: str) -> None:
    tw = _instance("memory://", FrozenClock(START), prefix)
    app = validator(_flask_app(tw).wsgi_app)
    transport = httpx.WSGITransport(app=app, remote_addr=PEER)
    alice, bob = jwt_for("alice"), jwt_for("bob")
    with httpx.Client(transport=transport, base_url="http://t") as c:
        codes = [c.get("/who", headers=dict(bearer(t))).status_code for t in (alice,) * 3 + (bob,)]
        anonymous = c.get("/who").status_code
    tw.close()
    assert codes == [200, 200, 429, 200]
    assert anonymous == 401  # @requires refuses before counting


def test_decorator_uses_the_middleware_trusted_proxies(prefix: str) -> None:
    tw = _instance("memory://", FrozenClock(START), prefix)
    app = _starlette_app(tw, protect=[], trusted_proxies=1)

    async def main() -> list[int]:
        transport = httpx.ASGITransport(app=app, client=("10.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            codes = []
            for hop in ("198.51.100.1", "198.51.100.1", "198.51.100.1", "198.51.100.2"):
                r = await c.get("/async", headers={"X-Forwarded-For": f"6.6.6.6, {hop}"})
                codes.append(r.status_code)
            return codes

    try:
        assert asyncio.run(main()) == [200, 200, 429, 200]
    finally:
        tw.close()


def test_decorator_store_down(prefix: str, caplog: pytest.LogCaptureFixture) -> None:
    tw = _instance(dead_store(), FrozenClock(START), prefix)
    try:
        with caplog.at_level(logging.WARNING, logger="tokenware.throttle"):
            closed = _decorated_answers(tw, "starlette", "/async", 1)
            opened = _decorated_answers(tw, "starlette", "/open", 1)
            flask_closed = _decorated_answers(tw, "flask", "/sync", 1)
    finally:
        tw.close()
    assert closed[0][0] == 503 and header(closed[0], "retry-after") is not None
    assert flask_closed[0][0] == 503 and header(flask_closed[0], "retry-after") is not None
    assert opened[0][0] == 200
    assert any(r.name == "tokenware.throttle" for r in caplog.records)


def test_decorator_rejects_bad_rates_at_decoration() -> None:
    from tokenware.errors import ValidationError

    with pytest.raises(ValidationError):
        throttle("5/fortnight")
