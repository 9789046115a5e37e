"""A live app on Redis under load while Redis is killed or frozen (issue 9 item 2).

tests/http/test_live.py already shows one request at a time against a Redis
stopped with SIGTERM and frozen; tests/stores/test_redis.py shows the store
methods failing within the timeout and recovering. These tests add what
neither covers: a steady load from several threads (PATs, sessions, JWTs
checked against their family, revoked ones of each, a throttle exhausted
before the fault, public routes) while Redis is SIGKILLed and started again
on the same port, or SIGSTOPped past the command timeout; challenge
verifications and refresh rotations running through the fault; and, after
recovery of the same app process, the invariants: no revoked credential
passed, no consumed code or rotated refresh token came back, no throttle
counter was reset.

The Redis runs with an append-only file fsynced on every write (what a Redis
holding security state needs; without persistence a restart forgets
everything, revocations and counters included).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from _faults import (
    RECOVER_WAIT,
    SLACK,
    TIMEOUT,
    Credentials,
    LiveApp,
    Load,
    Mutator,
    check_public_while_down,
    check_samples,
    exhaust_direct,
    exhaust_limited,
    need_server,
    report,
    sigkill,
    still_denied,
    tally,
)

from tokenware import Tokenware

pytestmark = pytest.mark.redis

PREFIX = "rel"
#: Seconds the store stays away: several command timeouts.
OUTAGE = 1.0


@pytest.fixture(params=["uvicorn", "gunicorn"])
def kind(request: pytest.FixtureRequest) -> str:
    need_server(request.param)
    return str(request.param)


@pytest.mark.parametrize("fault", ["sigkill-restart", "sigstop-sigcont"])
def test_redis_fault_under_load(
    kind: str, fault: str, durable_redis: Any, secret: bytes, tmp_path: Path
) -> None:
    """Load through a SIGKILL + restart (or SIGSTOP + SIGCONT) of Redis.

    Every answer keeps the contract (see ``check_samples``): a credential
    that could not be verified never gets 200, revoked ones never pass, 503
    carries ``Retry-After``, nothing else 5xx, public routes stay 200. A
    request that started and ended while Redis was away got 503 (within the
    command timeout plus slack when Redis was frozen). The same app process
    recovers; then nothing consumed, rotated, revoked or counted came back.
    """
    tw = Tokenware(store=durable_redis.url, secret_key=secret, key_prefix=PREFIX,
                   store_timeout=TIMEOUT, store_connect_timeout=TIMEOUT)  # fmt: skip
    creds = Credentials.issue(tw)
    app = LiveApp(kind, store=durable_redis.url, secret=secret, prefix=PREFIX,
                  log=tmp_path / f"{kind}.log")  # fmt: skip
    load = Load(app.base, creds.probes)
    mutator = Mutator(tw)
    try:
        exhaust_limited(app.base, creds.probes[0].token or "")
        exhaust_direct(tw, "exhausted-before")
        load.mark("start")
        load.start()
        mutator.start()
        assert load.wait_for(load.recovered_since("start"), RECOVER_WAIT), tally(load.samples)
        time.sleep(0.2)
        creds.revoke()  # just before the outage
        load.mark("revoked")
        time.sleep(0.2)

        if fault == "sigkill-restart":
            sigkill(durable_redis)
        else:
            durable_redis.pause()
        load.mark("down")
        assert load.wait_for(load.seen_503_since("down"), 5.0), "the outage was never seen"
        check_public_while_down(app.base)
        time.sleep(OUTAGE)
        load.mark("up_begin")
        if fault == "sigkill-restart":
            durable_redis.start()  # same port, same append-only file
        else:
            durable_redis.resume()
        load.mark("up")
        recovered = load.wait_for(load.recovered_since("up"), RECOVER_WAIT)
        time.sleep(0.2)
    finally:
        load.stop()
        mutator.stop()
        alive = app.alive()
        app.stop()
    samples = load.snapshot()
    assert recovered, f"no recovery within {RECOVER_WAIT} s: {tally(samples)}"
    assert alive, "the app process died"
    bound = TIMEOUT + SLACK if fault == "sigstop-sigcont" else None
    check_samples(samples, load.marks, outage=("down", "up_begin"), bound=bound)
    after = [s for s in samples if s.t0 > load.marks["up"]]
    assert any(s.probe.name == "limited" and s.status == 429 for s in after), tally(after)
    facts = mutator.check_after_recovery()
    still_denied(tw, "exhausted-before")
    tw.close()
    text = app.log_text()
    assert "Traceback" not in text, text[-4000:]
    report(f"{kind} {fault}", requests=len(samples), outcomes=tally(samples), **facts)
