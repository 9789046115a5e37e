"""A live app on Redis Cluster under load while a primary is killed and its replica promoted.

tests/stores/test_cluster.py already kills a primary (SIGKILL) and checks,
on both store faces, that its slots are StoreUnavailable until the promotion
and that a consumed challenge, a consumed marker and a rotated refresh token
that reached the replica stay used; ``test_residual_risk_...`` there shows the
documented risk (docs/stores.md "Residual risk"): a consume acknowledged by
the primary alone is lost with it. Not repeated here.

What this adds: the HTTP contract under load through the failover (uvicorn,
the async cluster client), a PAT revoked under load and a ``/api/limited``
throttle exhausted under load staying revoked and exhausted after the
promotion, and several consumed codes, rotated refresh families and exhausted
throttle keys on the killed primary, all made durable on its replica first
(``WAIT 1``): none comes back.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _faults import (
    RECOVER_WAIT,
    SIX,
    TIMEOUT,
    Credentials,
    LiveApp,
    Load,
    check_public_while_down,
    check_samples,
    exhaust_direct,
    exhaust_limited,
    need_server,
    owner_port,
    report,
    still_denied,
    tally,
    until_store_answers,
)
from _support import raw_redis, redis_keys

from tokenware import Tokenware
from tokenware.errors import InvalidToken, NotFound, RefreshTokenNotFound, RefreshTokenReused
from tokenware.jwt import Jwt, TokenPair

pytestmark = pytest.mark.redis

#: Seconds for the replica to be promoted (node timeout 1 s, election, gossip).
FAILOVER_WAIT = 30.0
#: How many of each artifact must live on the primary that is killed.
ON_VICTIM = 3


def keys_added(admin: Any, prefix: str, action: Callable[[], Any]) -> tuple[Any, set[str]]:
    """Run ``action``; return its result and the store keys it created."""
    before = set(redis_keys(admin, f"{prefix}:*"))
    result = action()
    after = set(redis_keys(admin, f"{prefix}:*"))
    return result, {k.decode() for k in after - before}


def on_victim(admin: Any, victim: int, prefix: str, make: Callable[[int], Any]) -> list[Any]:
    """Call ``make(n)`` until ``ON_VICTIM`` results created keys on the victim (bounded)."""
    made: list[Any] = []
    for n in range(300):
        result, keys = keys_added(admin, prefix, lambda n=n: make(n))  # type: ignore[misc]
        assert keys, "the action created no key"
        if all(owner_port(admin, key) == victim for key in keys):  # one hash tag each
            made.append(result)
            if len(made) == ON_VICTIM:
                return made
    raise AssertionError("could not place the artifacts on the victim primary")


def durable_on_replica(admin: Any, victim: int, prefix: str) -> None:
    """Block until the victim's replica has every write the victim acknowledged.

    A write on the victim itself, then ``WAIT 1`` on the same connection:
    replication is ordered, so the replica's acknowledgement covers every
    earlier write too (revocations, consumes, counts).
    """
    import redis

    direct = redis.Redis(host="127.0.0.1", port=victim, socket_timeout=10,
                         single_connection_client=True)  # fmt: skip
    try:
        for n in range(10_000):
            marker = f"{prefix}:barrier:{{b{n}}}"
            if owner_port(admin, marker) == victim:
                break
        direct.set(marker, b"1")
        assert direct.execute_command("WAIT", 1, 5000) == 1, "the replica did not acknowledge"
    finally:
        direct.close()


def test_primary_killed_replica_promoted_under_load(
    fault_cluster: Any, secret: bytes, tmp_path: Path
) -> None:
    need_server("uvicorn")
    prefix = f"rc{uuid.uuid4().hex[:8]}"
    url = fault_cluster.url
    tw = Tokenware(store=url, secret_key=secret, key_prefix=prefix,
                   store_timeout=TIMEOUT, store_connect_timeout=TIMEOUT)  # fmt: skip
    jwt = Jwt.over(tw, grace=0)
    admin = raw_redis(url)

    # The victim: the primary holding the record of the PAT revoked under load.
    doomed = tw.pats.issue("bob")
    victim = owner_port(admin, tw.pats._rules.record_key(doomed.record.token_id))
    good = None
    for _ in range(300):
        good = tw.pats.issue("alice")
        if owner_port(admin, tw.pats._rules.record_key(good.record.token_id)) == victim:
            break
    assert good is not None
    creds = Credentials.issue(tw, pat=good, doomed_pat=doomed)

    # Consumed codes, rotated refresh families and exhausted throttle keys on the victim.
    def consumed(n: int) -> tuple[str, str]:
        identity = f"user{n}@example.com"
        ch = tw.challenges.create("login", identity, secret=SIX)
        assert ch.secret is not None
        return identity, ch.secret

    codes = on_victim(admin, victim, prefix, consumed)
    for identity, code in codes:
        tw.challenges.verify(action="login", id=identity, secret=code)
    families: list[tuple[TokenPair, TokenPair]] = []
    for start in on_victim(admin, victim, prefix, lambda n: jwt.issue(f"user{n}")):
        families.append((start, jwt.refresh(start.refresh_token)))
    throttled = on_victim(
        admin, victim, prefix, lambda n: exhaust_direct(tw, f"exhausted-{n}") or f"exhausted-{n}"
    )

    app = LiveApp("uvicorn", store=url, secret=secret, prefix=prefix, log=tmp_path / "app.log")
    load = Load(app.base, creds.probes)
    try:
        exhaust_limited(app.base, good.token)
        load.mark("start")
        load.start()
        assert load.wait_for(load.recovered_since("start"), RECOVER_WAIT), tally(load.samples)
        time.sleep(0.2)
        creds.revoke()
        load.mark("revoked")
        durable_on_replica(admin, victim, prefix)

        node = fault_cluster.primary_for(victim)
        assert node.pid is not None
        os.kill(node.pid, signal.SIGKILL)
        node.stop()  # reaps it
        load.mark("down")
        assert load.wait_for(load.seen_503_since("down"), 5.0), "the failover was never felt"
        check_public_while_down(app.base)
        recovered = load.wait_for(load.recovered_since("down"), FAILOVER_WAIT)
        load.mark("up")
        time.sleep(0.2)
    finally:
        load.stop()
        alive = app.alive()
        app.stop()
    samples = load.snapshot()
    assert recovered, f"no recovery within {FAILOVER_WAIT} s: {tally(samples)}"
    assert alive, "the app process died"
    check_samples(samples, load.marks)
    during = [s for s in samples if s.t0 > load.marks["down"]]
    assert any(s.probe.name == "pat" and s.status == 503 for s in during), tally(during)
    after = [s for s in samples if s.t0 > load.marks["up"]]
    assert any(s.probe.name == "pat-revoked" and s.status == 401 for s in after), tally(after)
    assert any(s.probe.name == "limited" and s.status == 429 for s in after), tally(after)
    assert fault_cluster.roles().get(victim) is None
    assert list(fault_cluster.roles().values()).count("master") == 3

    # Nothing on the killed primary came back on the promoted replica.
    for identity, code in codes:
        with pytest.raises((NotFound, InvalidToken)):
            until_store_answers(
                lambda i=identity, c=code: tw.challenges.verify(action="login", id=i, secret=c)
            )
    for start, successor in families:
        # The rotation reached the replica: the successor is the live token ...
        until_store_answers(lambda s=successor: jwt.refresh(s.refresh_token))
        # ... and the rotated one is reuse (which revokes the family).
        with pytest.raises((RefreshTokenReused, RefreshTokenNotFound)):
            jwt.refresh(start.refresh_token)
    for key in throttled:
        until_store_answers(lambda k=key: still_denied(tw, k))
    admin.close()
    tw.close()
    text = app.log_text()
    assert "Traceback" not in text, text[-4000:]
    report("uvicorn cluster-failover", requests=len(samples), outcomes=tally(samples),
           failover_seconds=round(load.marks["up"] - load.marks["down"], 2))  # fmt: skip
