"""The sans-I/O HTTP policy: path rules, error -> response, the pipeline."""

from __future__ import annotations

import json

import pytest

from tokenware._drive import run_sync
from tokenware.core.flow import Flow, done
from tokenware.core.http import (
    Headers,
    HttpPolicy,
    PathRules,
    RequestView,
    client_address,
    error_response,
    merge_headers,
    normalise_path,
    pipeline,
    www_authenticate,
)
from tokenware.errors import (
    ConfigurationError,
    CsrfFailed,
    ExpiredToken,
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    MissingCredentials,
    StoreError,
    StoreUnavailable,
    Throttled,
)
from tokenware.identity import ANONYMOUS, Anonymous, Identity
from tokenware.stores.memory import MemoryStore

ALICE = Identity(subject="alice", kind="jwt", scopes=frozenset({"read"}), token_id="j1")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", "/"),
        ("//api//x", "/api/x"),
        ("/public/../api/x", "/api/x"),
        ("/a/./b/", "/a/b/"),
        ("/../../etc", "/etc"),
        ("", "/"),
    ],
)
def test_normalise_path(path: str, expected: str) -> None:
    assert normalise_path(path) == expected


def test_path_rules_longest_prefix_wins_and_exempt_beats_public_on_ties() -> None:
    rules = PathRules.build(
        protect=["/api/"],
        public=["/api/health", "/docs"],
        exempt=["/docs", "/static/"],
        required_scopes={"/api/admin/": "admin", "/api/": ["read"]},
    )
    assert rules.route("/api/x").kind == "protect"
    assert rules.route("/api/x").scopes == ("read",)
    assert rules.route("/api/admin/users").scopes == ("admin",)
    assert rules.route("/api/health").kind == "public"
    assert rules.route("/api/healthz").kind == "protect"
    assert rules.route("/docs/x").kind == "exempt"
    assert rules.route("/static/app.js").kind == "exempt"
    assert rules.route("/other").kind == "public"
    assert rules.route("/api/health/../secret").kind == "protect"
    assert rules.route("//api/x").kind == "protect"
    assert PathRules().route("/anything").kind == "protect"


@pytest.mark.parametrize("bad", ["api/", ["/ok", "nope"], [3]])
def test_path_rules_reject_non_paths(bad: object) -> None:
    with pytest.raises(ConfigurationError):
        PathRules.build(protect=bad)  # type: ignore[arg-type]


def test_www_authenticate_values() -> None:
    assert www_authenticate(MissingCredentials("x"), "api") == 'Bearer realm="api"'
    assert www_authenticate(InvalidRequest("x"), "api") == (
        'Bearer realm="api", error="invalid_request"'
    )
    assert www_authenticate(ExpiredToken("x"), "api") == (
        'Bearer realm="api", error="invalid_token"'
    )
    assert www_authenticate(InsufficientScope("x", scopes=("a", "b")), "r") == (
        'Bearer realm="r", error="insufficient_scope", scope="a b"'
    )
    assert www_authenticate(CsrfFailed("x"), "api") is None
    assert www_authenticate(Throttled("x"), "api") is None


def _body(exc: Exception) -> dict[str, object]:
    return dict(json.loads(error_response(exc).body))  # type: ignore[arg-type]


def test_error_response_is_problem_json_with_generic_detail() -> None:
    response = error_response(InvalidToken("bad signature for kid k1"), realm="api")
    headers = dict(response.headers)
    assert response.status == 401
    assert headers["Content-Type"] == "application/problem+json"
    assert headers["Cache-Control"] == "no-store"
    assert headers["Content-Length"] == str(len(response.body))
    body = json.loads(response.body)
    assert set(body) == {"type", "title", "status", "detail"}
    assert body["status"] == 401
    assert "signature" not in response.body.decode()
    # No oracle: expired, revoked and forged read the same.
    assert error_response(ExpiredToken("expired at 12")) == response


def test_retry_after_on_429_and_503_and_store_errors_never_500() -> None:
    throttled = Throttled("x", retry_after=2.2)
    throttled.headers = (("RateLimit-Policy", '"d";q=5;w=60'),)  # type: ignore[attr-defined]
    response = error_response(throttled)
    assert response.status == 429
    assert ("Retry-After", "3") in response.headers
    assert ("RateLimit-Policy", '"d";q=5;w=60') in response.headers
    down = error_response(StoreUnavailable("redis gone", retry_after=4))
    assert down.status == 503
    assert ("Retry-After", "4") in down.headers
    assert "redis" not in down.body.decode()
    assert error_response(StoreError("broken")).status == 503
    assert _body(StoreError("broken"))["status"] == 503


def test_realm_is_validated() -> None:
    with pytest.raises(ConfigurationError):
        HttpPolicy(realm='a"b')
    with pytest.raises(ConfigurationError):
        HttpPolicy(throttle="10/minute")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        HttpPolicy(trusted_proxies=-1)


def test_client_address_trusts_only_configured_proxies() -> None:
    request = RequestView("GET", "/", client="10.0.0.1", forwarded_for=("1.2.3.4, 5.6.7.8",))
    assert client_address(request, 0) == "10.0.0.1"
    assert client_address(request, 1) == "5.6.7.8"
    assert client_address(request, 2) == "1.2.3.4"
    assert client_address(request, 3) == "10.0.0.1"


def _auth(result: Identity | Exception) -> object:
    def authenticate(header: str | None) -> Flow[Identity]:
        if header is None:
            raise MissingCredentials("none")
        if isinstance(result, Exception):
            raise result
        return (yield from done(result))

    return authenticate


def _run(request: RequestView, policy: HttpPolicy, result: Identity | Exception) -> object:
    return run_sync(pipeline(request, policy, _auth(result)), MemoryStore())  # type: ignore[arg-type]


def test_pipeline_protected_public_exempt_options() -> None:
    policy = HttpPolicy(rules=PathRules.build(protect=["/api/"], exempt=["/health"]))
    ok = _run(RequestView("GET", "/api/x", ("Bearer t",)), policy, ALICE)
    assert ok.response is None and ok.identity is ALICE  # type: ignore[attr-defined]
    missing = _run(RequestView("GET", "/api/x"), policy, ALICE)
    assert missing.response.status == 401  # type: ignore[attr-defined]
    public_bad = _run(RequestView("GET", "/x", ("Bearer t",)), policy, InvalidToken("no"))
    assert public_bad.response is None  # type: ignore[attr-defined]
    assert public_bad.identity is ANONYMOUS  # type: ignore[attr-defined]
    assert isinstance(public_bad.error, InvalidToken)  # type: ignore[attr-defined]
    public_down = _run(RequestView("GET", "/x", ("Bearer t",)), policy, StoreUnavailable("x"))
    assert public_down.response is None  # type: ignore[attr-defined]
    protected_down = _run(RequestView("GET", "/api/", ("Bearer t",)), policy, StoreUnavailable())
    assert protected_down.response.status == 503  # type: ignore[attr-defined]
    options = _run(RequestView("OPTIONS", "/api/x"), policy, ALICE)
    assert options.response is None and options.identity is ANONYMOUS  # type: ignore[attr-defined]
    exempt = _run(RequestView("GET", "/health", ("Bearer t",)), policy, InvalidToken("x"))
    assert exempt.response is None and exempt.error is None  # type: ignore[attr-defined]


def test_pipeline_two_credentials_and_query_token() -> None:
    policy = HttpPolicy()
    two = _run(RequestView("GET", "/", ("Bearer a", "Bearer b")), policy, ALICE)
    assert two.response.status == 400  # type: ignore[attr-defined]
    both = _run(RequestView("GET", "/", ("Bearer a",), "access_token=a"), policy, ALICE)
    assert both.response.status == 400  # type: ignore[attr-defined]
    query_only = _run(RequestView("GET", "/", (), "access_token=a"), policy, ALICE)
    assert query_only.response.status == 401  # type: ignore[attr-defined]
    assert ("WWW-Authenticate", 'Bearer realm="api"') in query_only.response.headers  # type: ignore[attr-defined]


def test_pipeline_required_scopes() -> None:
    policy = HttpPolicy(rules=PathRules.build(required_scopes={"/admin/": "admin"}))
    denied = _run(RequestView("GET", "/admin/x", ("Bearer t",)), policy, ALICE)
    assert denied.response.status == 403  # type: ignore[attr-defined]
    assert (
        "WWW-Authenticate",
        'Bearer realm="api", error="insufficient_scope", scope="admin"',
    ) in denied.response.headers  # type: ignore[attr-defined]


def test_throttle_seam_adds_headers_or_denies() -> None:
    seen: list[object] = []

    def hook(request: RequestView, identity: Identity | Anonymous) -> Flow[Headers]:
        seen.append(identity)
        if identity is ANONYMOUS:
            raise Throttled("anon quota", retry_after=7)
        return (yield from done((("RateLimit", '"d";r=4;t=60'),)))

    policy = HttpPolicy(rules=PathRules.build(protect=["/api/"]), throttle=hook)
    ok = _run(RequestView("GET", "/api/x", ("Bearer t",)), policy, ALICE)
    assert ok.headers == (("RateLimit", '"d";r=4;t=60'),)  # type: ignore[attr-defined]
    denied = _run(RequestView("GET", "/login"), policy, ALICE)
    assert denied.response.status == 429  # type: ignore[attr-defined]
    assert ("Retry-After", "7") in denied.response.headers  # type: ignore[attr-defined]
    assert seen == [ALICE, ANONYMOUS]


def test_merge_headers_keeps_the_apps_values() -> None:
    merged = merge_headers([("RateLimit", "app")], (("ratelimit", "tw"), ("X-A", "1")))
    assert merged == [("RateLimit", "app"), ("X-A", "1")]
