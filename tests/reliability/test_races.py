"""The concurrency matrix of issue 9 item 3: what the existing suites did not race.

Already covered elsewhere (not repeated):

* challenge verify, 100 threads and 100 asyncio tasks, exactly one success:
  tests/challenges/test_hostile_challenges.py (case 81), memory, SQLite,
  Redis, Redis Cluster;
* refresh rotation, 50 threads and 50 asyncio tasks with the default grace
  (at most one live branch): tests/jwt/test_jwt_service.py, all four backends;
* PAT revoke racing verify, threads, memory, SQLite, Redis:
  tests/pats/test_pats.py (its ``cluster`` id runs on the single Redis);
* throttle "25/minute", 8 threads and 50 asyncio tasks, exactly 25:
  tests/throttle/test_service.py, all four backends;
* one store compare-and-set raced by 4 processes: tests/stores/test_sqlite.py.

Added here:

* across 4 processes (each its own ``Tokenware``, 2-4 threads each) on
  SQLite, Redis and Redis Cluster: challenge verify, PAT revoke racing
  verify, throttle "25/minute" (the memory store is per-process, so it has
  no cross-process case);
* PAT revoke racing verify on asyncio tasks, all four backends, and on
  threads on a real Redis Cluster.

Refresh rotation raced with ``grace=0`` (threads, tasks and processes,
exactly one success) is in test_refresh_races.py.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
import uuid
from collections import Counter
from typing import Any

import pytest
from _faults import SIX, need_redis
from _racer import Local, Racing
from _support import backend_url

from tokenware import Tokenware


def outcomes_of(answers: list[dict[str, Any]]) -> Counter[str]:
    return Counter(o for a in answers for o in a["outcomes"])


# -- across processes -------------------------------------------------------------------


def test_processes_verify_one_code_exactly_once(racing: Racing) -> None:
    """16 verifications of one code from 4 processes x 4 threads: one success."""
    identity = f"{uuid.uuid4().hex}@example.com"
    ch = racing.tw.challenges.create("login", identity, secret=SIX)
    answers = racing.racers.race(
        "challenge", action="login", id=identity, secret=ch.secret, threads=4
    )
    assert outcomes_of(answers) == {"ok": 1, "NotFound": 15}


def test_processes_throttle_allow_exactly_25(racing: Racing) -> None:
    """200 hits on "25/minute" from 4 processes x 2 threads: exactly 25 allowed.

    Redis decides on its own clock: the 200 hits take far less than the 2.4 s
    that would free a 26th unit.
    """
    key = f"k{uuid.uuid4().hex}"
    answers = racing.racers.race("throttle", key=key, rate="25/minute", threads=2, hits=25)
    assert outcomes_of(answers) == {"allowed": 25, "denied": 175}


def test_processes_pat_revoke_racing_verify(racing: Racing) -> None:
    """4 processes x 2 threads verify one PAT in a loop; the test revokes it.

    Once revoke has returned (and a process has heard so), no verification
    that starts in that process succeeds.
    """
    issued = racing.tw.pats.issue(f"u{uuid.uuid4().hex[:8]}")
    racers = racing.racers
    racers.send_all({"op": "pat", "token": issued.token, "threads": 2, "after": 20,
                     "max_seconds": 20.0})  # fmt: skip
    assert all(racers.read(p) == {"started": True} for p in racers.procs)
    racing.tw.pats.revoke(issued.record.token_id)
    racers.send_all("revoked")
    counts: Counter[str] = Counter()
    for proc in racers.procs:
        counts.update(racers.read(proc)["counts"])
    assert set(counts) <= {"before:valid", "before:invalid:revoked", "after:invalid:revoked"}, (
        counts
    )
    assert counts["before:valid"] >= 8 and counts["after:invalid:revoked"] == 4 * 2 * 20, counts


# -- threads and asyncio tasks in one process -------------------------------------------


def _pat_verdicts(counts: Counter[str]) -> None:
    assert set(counts) <= {"before:valid", "before:invalid:revoked", "after:invalid:revoked"}, (
        counts
    )
    assert counts["before:valid"] >= 1 and counts["after:invalid:revoked"] >= 1, counts


def test_pat_revoke_racing_async_verify(local: Local) -> None:
    """8 tasks verify one PAT in a loop on one event loop while another task
    revokes it: no verify that starts after ``revoke`` returned succeeds."""
    tw = local.tw
    issued = tw.pats.issue("alice")
    counts: Counter[str] = Counter()
    state = {"revoked": False}

    async def verifier() -> None:
        after = 0
        for _ in range(5_000):
            seen = state["revoked"]
            result = await tw.aio.pats.verify(issued.token)
            outcome = "valid" if result.valid else f"invalid:{result.reason}"
            counts[f"{'after' if seen else 'before'}:{outcome}"] += 1
            after += seen
            if after >= 20:
                return
            await asyncio.sleep(0)

    async def revoker() -> None:
        for _ in range(10_000):  # until the verifiers are well under way
            if counts["before:valid"] >= 40:
                break
            await asyncio.sleep(0.001)
        await tw.aio.pats.revoke(issued.record.token_id)
        state["revoked"] = True

    async def main() -> None:
        try:
            await asyncio.gather(*(verifier() for _ in range(8)), revoker())
        finally:
            await tw.aio.aclose()

    asyncio.run(main())
    _pat_verdicts(counts)


@pytest.mark.redis
def test_pat_revoke_racing_thread_verify_on_cluster(
    request: pytest.FixtureRequest,
) -> None:
    """The threads race of tests/pats/test_pats.py, on a real Redis Cluster."""
    need_redis("redis-server", "redis-cli")
    prefix = f"rl{uuid.uuid4().hex[:8]}"
    tw = Tokenware(store=backend_url("cluster", request), secret_key=secrets.token_bytes(32),
                   key_prefix=prefix, store_timeout=10.0)  # fmt: skip
    try:
        issued = tw.pats.issue("alice")
        revoked = threading.Event()
        counts: Counter[str] = Counter()
        lock = threading.Lock()

        def verifier() -> None:
            after = 0
            for _ in range(5_000):
                seen = revoked.is_set()
                result = tw.pats.verify(issued.token)
                outcome = "valid" if result.valid else f"invalid:{result.reason}"
                with lock:
                    counts[f"{'after' if seen else 'before'}:{outcome}"] += 1
                after += seen
                if after >= 20:
                    return

        threads = [threading.Thread(target=verifier) for _ in range(4)]
        for t in threads:
            t.start()
        for _ in range(1_000):
            with lock:
                if counts["before:valid"] >= 20:
                    break
            time.sleep(0.005)
        tw.pats.revoke(issued.record.token_id)
        revoked.set()
        for t in threads:
            t.join(30)
        _pat_verdicts(counts)
    finally:
        tw.stores.sync.purge(f"{prefix}:")
        tw.close()
