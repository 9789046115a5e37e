"""The middlewares' fast lane (:func:`tokenware.core.http.fast_outcome`) against the pipeline.

The lane answers the commonest request (one bearer JWT that verifies without
the store) without running :func:`~tokenware.core.http.pipeline`; it must
never answer differently from it. Every request here goes through both: when
the lane answers, the pipeline's outcome for the same request must be equal;
and the lane must actually answer the requests it exists for (so the
comparison is not vacuous).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenware import Tokenware
from tokenware._drive import run_sync
from tokenware.core.credentials import MAX_TOKEN_LENGTH, authenticate_local
from tokenware.core.http import HttpPolicy, Outcome, PathRules, RequestView, fast_outcome, pipeline
from tokenware.identity import Identity
from tokenware.jwt import Jwt
from tokenware.testing import FrozenClock, make_secret_key

NOW = 1_800_000_000.0
EXAMPLES = 1500 if os.environ.get("CI") else 300


@dataclass
class World:
    """One Tokenware with a set of credentials of every kind, and policies."""

    tw: Tokenware
    clock: FrozenClock
    headers: list[str]
    #: The headers the lane is for ("Bearer <valid JWT>"), drawn more often.
    good: list[str]
    policies: list[HttpPolicy]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _world() -> World:
    clock = FrozenClock(NOW)
    tw = Tokenware(
        store="memory://",
        secret_key=make_secret_key("fast-lane"),
        issuer="https://issuer.test",
        audience="api",
        jwt_key=b"fast-lane HS256 key of 32+ bytes!!",
        clock=clock,
    )
    read = tw.jwt.issue("alice", scopes=["read"]).access_token
    admin = tw.jwt.issue("root", scopes=["read", "admin"]).access_token
    bare = tw.jwt.issue("bob").access_token
    head, payload, sig = read.split(".")
    forged = f"{head}.{_b64(json.dumps({'sub': 'mallory'}).encode())}.{sig}"
    bad_sig = f"{head}.{payload}.{sig[:-2]}AA"
    pat = tw.pats.issue("carol", roles=["read"]).token
    session = tw.sessions.add("dave").key
    assert session is not None
    tokens = [read, admin, bare, forged, bad_sig, pat, session, "tws_" + read, "a.b.c", "x"]
    headers = []
    for token in tokens:
        headers += [
            f"Bearer {token}",
            f"bearer {token}",
            f"Bearer  {token}",
            f"Bearer {token} ",
            f" Bearer {token}",
            f"Bearer {token},x",
            f"Basic {token}",
        ]
    headers += ["", "Bearer", "Bearer ", "Bearer " + "a" * (MAX_TOKEN_LENGTH + 10)]
    keys = tw._throttle_keys
    policies = [
        HttpPolicy(rules=PathRules.build(protect=["/"])),
        HttpPolicy(
            rules=PathRules.build(
                protect=["/api/"],
                public=["/api/open", "/"],
                exempt=["/static/"],
                required_scopes={"/api/admin/": "admin", "/api/": "read"},
            )
        ),
        HttpPolicy(rules=PathRules.build(protect=["/"]), throttle="100/minute", throttle_keys=keys),
        HttpPolicy(
            rules=PathRules.build(protect=["/"]),
            auth_failure_throttle="5/minute",
            throttle_keys=keys,
        ),
    ]
    good = [f"Bearer {token}" for token in (read, admin, bare)]
    return World(tw, clock, headers, good, policies)


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    w = _world()
    yield w
    w.tw.close()


PATHS = ["/", "/api/x", "/api/admin/users", "/api/open", "/static/app.js", "/other", "//api//x"]
METHODS = ["GET", "POST", "OPTIONS", "HEAD"]
QUERIES = ["", "a=1", "access_token=x", "x=access_token"]


def _both(world: World, policy: HttpPolicy, view: RequestView) -> tuple[Outcome | None, Outcome]:
    tw = world.tw
    fast = fast_outcome(
        view.method,
        view.path,
        view.authorization,
        view.query_string,
        policy,
        tw._authenticate_local,
    )
    slow = run_sync(pipeline(view, policy, tw._authenticate_flow), tw.stores.sync)
    return fast, slow


@settings(max_examples=EXAMPLES, deadline=None, database=None)
@given(
    data=st.data(),
    policy_index=st.integers(0, 3),
    method=st.sampled_from(METHODS),
    path=st.sampled_from(PATHS),
    query=st.sampled_from(QUERIES),
    count=st.sampled_from([0, 1, 1, 1, 2]),
    advance=st.sampled_from([0.0, 0.0, 0.0, 10_000.0]),
)
def test_the_lane_answers_only_as_the_pipeline_does(
    world: World,
    data: st.DataObject,
    policy_index: int,
    method: str,
    path: str,
    query: str,
    count: int,
    advance: float,
) -> None:
    header = st.one_of(st.sampled_from(world.good), st.sampled_from(world.headers))
    authorization = tuple(data.draw(header) for _ in range(count))
    view = RequestView(method, path, authorization, query, "127.0.0.1")
    world.clock.set(NOW + advance)  # past every token's exp when advanced
    try:
        fast, slow = _both(world, world.policies[policy_index], view)
    finally:
        world.clock.set(NOW)
    if fast is not None:
        assert fast == slow
        assert slow.response is None
        assert isinstance(fast.identity, Identity)


def test_the_lane_answers_a_valid_jwt_and_matches_the_pipeline(world: World) -> None:
    policy = world.policies[1]
    admin = next(h for h in world.headers if h.startswith("Bearer ey") and "root" in _sub(h))
    for path in ("/api/x", "/api/admin/users", "/api/open", "/other"):
        view = RequestView("GET", path, (admin,), "", "127.0.0.1")
        fast, slow = _both(world, policy, view)
        assert fast is not None, path
        assert fast == slow
        assert fast.identity.subject == "root"  # type: ignore[union-attr]


def test_the_lane_steps_aside_where_the_pipeline_must_decide(world: World) -> None:
    read = next(h for h in world.headers if h.startswith("Bearer ey") and "alice" in _sub(h))
    p = world.policies
    get = "GET"
    cases: list[tuple[HttpPolicy, RequestView, int | None]] = [
        # Missing scope: the pipeline answers 403.
        (p[1], RequestView(get, "/api/admin/users", (read,), ""), 403),
        # Exempt: the pipeline never authenticates.
        (p[1], RequestView(get, "/static/app.js", (read,), ""), None),
        # Throttled and failure-throttled policies.
        (p[2], RequestView(get, "/", (read,), ""), None),
        (p[3], RequestView(get, "/", (read,), ""), None),
        # Two Authorization headers (400), OPTIONS, a token in the query (400).
        (p[0], RequestView(get, "/", (read, read), ""), 400),
        (p[0], RequestView("OPTIONS", "/", (read,), ""), None),
        (p[0], RequestView(get, "/", (read,), "access_token=x"), 400),
        # A JWT-shaped token behind a session prefix is a session token.
        (p[0], RequestView(get, "/", ("Bearer tws_" + read[7:],), ""), 401),
    ]
    for policy, view, status in cases:
        fast, slow = _both(world, policy, view)
        assert fast is None, view
        assert (slow.response.status if slow.response else None) == status, view


def test_the_lane_never_serves_a_token_past_its_exp(world: World) -> None:
    read = next(h for h in world.headers if h.startswith("Bearer ey") and "alice" in _sub(h))
    policy = world.policies[0]
    view = RequestView("GET", "/", (read,), "")
    assert _both(world, policy, view)[0] is not None  # cached now
    world.clock.advance(3600)
    try:
        fast, slow = _both(world, policy, view)
    finally:
        world.clock.set(NOW)
    assert fast is None
    assert slow.response is not None and slow.response.status == 401


def test_the_lane_defers_to_the_revocation_check(world: World) -> None:
    tw = world.tw
    original = tw.jwt
    tw.jwt = Jwt.over(tw, check_family=True)
    try:
        pair = tw.jwt.issue("erin")
        view = RequestView("GET", "/", (f"Bearer {pair.access_token}",), "")
        policy = world.policies[0]
        # Verified once (and cached): the lane still steps aside, so the
        # family read runs on every request.
        assert tw.jwt.verify(pair.access_token).subject == "erin"
        fast, slow = _both(world, policy, view)
        assert fast is None and slow.response is None
        assert tw.jwt.revoke(pair.refresh_token)
        fast, slow = _both(world, policy, view)
        assert fast is None
        assert slow.response is not None and slow.response.status == 401
    finally:
        tw.jwt = original


def _sub(header: str) -> str:
    token = header.split(" ", 1)[1]
    payload = token.split(".")[1]
    return base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode("latin-1")


def test_local_authentication_never_takes_another_verifiers_token(world: World) -> None:
    """Session and PAT prefixes go to their own verifiers, whatever follows."""
    calls: list[str] = []

    def jwt_local(token: str) -> Identity:
        calls.append(token)
        return Identity(subject="x", kind="jwt")

    verifiers = replace(world.tw._verifiers, jwt_local=jwt_local)
    for prefix in ("tws_", "twp_", "pat_"):
        assert authenticate_local(f"Bearer {prefix}eyJ.e30.c2ln", verifiers) is None
    assert calls == []
    assert authenticate_local("Bearer eyJ.e30.c2ln", verifiers) is not None
    assert calls == ["eyJ.e30.c2ln"]
    assert authenticate_local("bearer eyJ.e30.c2ln", verifiers) is None
    assert authenticate_local(None, verifiers) is None
