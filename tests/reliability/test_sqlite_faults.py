"""A live app on SQLite under load while another process holds the write lock.

tests/stores/test_sqlite.py shows the store raising StoreUnavailable under a
lock held by another process, and tests/throttle/test_service.py the throttle
service; this adds the live server under load (security.md §3.7: "database
is locked" is 503, not 500), with challenge verifications and refresh
rotations running through the lock, and the invariants after it.

The lock is ``BEGIN EXCLUSIVE`` in WAL mode: writers wait (then fail after
``store_timeout``), readers go on. Every protected request of the app also
counts against a throttle rule, a write, so each one needs the lock; a PAT,
session or JWT check alone is a read and may well pass during the lock, as
it should (the credential was verified).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from _faults import (
    RECOVER_WAIT,
    SLACK,
    TIMEOUT,
    Credentials,
    LiveApp,
    Load,
    Mutator,
    SqliteLock,
    check_public_while_down,
    check_samples,
    exhaust_direct,
    exhaust_limited,
    need_server,
    report,
    still_denied,
    tally,
)

from tokenware import Tokenware

PREFIX = "rel"
#: Seconds the lock is held: several lock waits.
OUTAGE = 1.0


@pytest.mark.parametrize("kind", ["uvicorn", "gunicorn"])
def test_sqlite_locked_by_another_process_under_load(
    kind: str, secret: bytes, tmp_path: Path
) -> None:
    """503 with Retry-After while the lock is held (never 500, never a pass),
    public routes 200, recovery of the same process once it is released; no
    consumed code, rotated refresh token or throttle count came back."""
    need_server(kind)
    db = tmp_path / "store.db"
    url = f"sqlite:///{db}"
    tw = Tokenware(store=url, secret_key=secret, key_prefix=PREFIX, store_timeout=TIMEOUT)
    creds = Credentials.issue(tw)
    app = LiveApp(kind, store=url, secret=secret, prefix=PREFIX, log=tmp_path / f"{kind}.log")
    load = Load(app.base, creds.probes)
    mutator = Mutator(tw)
    lock = None
    try:
        exhaust_limited(app.base, creds.probes[0].token or "")
        exhaust_direct(tw, "exhausted-before")
        load.mark("start")
        load.start()
        mutator.start()
        assert load.wait_for(load.recovered_since("start"), RECOVER_WAIT), tally(load.samples)
        time.sleep(0.2)
        creds.revoke()
        load.mark("revoked")
        time.sleep(0.2)

        lock = SqliteLock(db)
        load.mark("down")
        assert load.wait_for(load.seen_503_since("down"), 5.0), "the lock was never felt"
        check_public_while_down(app.base)
        time.sleep(OUTAGE)
        load.mark("up_begin")
        lock.release()
        load.mark("up")
        recovered = load.wait_for(load.recovered_since("up"), RECOVER_WAIT)
        time.sleep(0.2)
    finally:
        load.stop()
        mutator.stop()
        if lock is not None:
            lock.kill()
        alive = app.alive()
        app.stop()
    samples = load.snapshot()
    assert recovered, f"no recovery within {RECOVER_WAIT} s: {tally(samples)}"
    assert alive, "the app process died"
    check_samples(samples, load.marks, outage=("down", "up_begin"), bound=TIMEOUT + SLACK)
    facts = mutator.check_after_recovery()
    # No lost replies on SQLite: a transaction that timed out on the lock did not run.
    assert facts["unavailable but consumed (reply lost)"] == 0, facts
    still_denied(tw, "exhausted-before")
    tw.close()
    text = app.log_text()
    assert "Traceback" not in text, text[-4000:]
    report(f"{kind} sqlite-locked", requests=len(samples), outcomes=tally(samples), **facts)
