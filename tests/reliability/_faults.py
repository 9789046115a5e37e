"""Helpers of the fault-injection tests: a live server, a bounded load, checks.

* :class:`LiveApp` runs ``_rel_app`` under uvicorn or gunicorn in a
  subprocess on a free loopback port.
* :class:`Load` sends requests from a few threads (bounded in count and
  time) and records every answer with its start and end times.
* :class:`Mutator` verifies one-time challenges and rotates a refresh token
  while the fault happens; :meth:`Mutator.check_after_recovery` then proves
  that nothing consumed or rotated became usable again.
* :func:`check_samples` holds the HTTP contract of DESIGN.md §3 under faults:
  200 only for credentials the store could verify, 401 for revoked ones,
  503 with ``Retry-After`` while the store is away, never any other 5xx.

Only processes started here are ever signalled, each by its pid.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from _support import need

from tokenware import Tokenware
from tokenware.errors import (
    InvalidToken,
    NotFound,
    RefreshTokenNotFound,
    RefreshTokenReused,
    StoreUnavailable,
)
from tokenware.jwt import Jwt, TokenPair
from tokenware.pats import IssuedPat

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

#: Seconds each store command (and connection attempt) may take in the app.
TIMEOUT = 0.3
#: Seconds added to TIMEOUT for the upper bound of a 503 (queueing, scheduling).
SLACK = 2.5
#: Seconds for the app to start, for a store to come back, for a helper to answer.
START_WAIT = 20.0
RECOVER_WAIT = 15.0
HELPER_WAIT = 30.0

SIX = {"type": "number", "length": 6}


def need_redis(*programs: str) -> None:
    """Skip (locally) or fail (CI) without the redis package or a program."""
    if importlib.util.find_spec("redis") is None:
        need("the redis package is not installed (pip install 'tokenware[redis]')")
    for program in programs:
        if shutil.which(program) is None:
            need(f"{program} is not on PATH (apt-get install -y redis-server redis-tools)")


def need_server(kind: str) -> None:
    """Skip (locally) or fail (CI) without uvicorn or gunicorn."""
    if importlib.util.find_spec(kind) is None:
        need(f"{kind} is not installed (pip install -e '.[dev]')")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the live app -------------------------------------------------------------------


class LiveApp:
    """``_rel_app`` served by ``kind`` ("uvicorn" or "gunicorn") on loopback.

    gunicorn runs one gthread worker with 4 threads, uvicorn one event loop:
    both serve the load's concurrent requests side by side.
    """

    def __init__(self, kind: str, *, store: str, secret: bytes, prefix: str, log: Path) -> None:
        self.kind = kind
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            "TW_REL_STORE": store,
            "TW_REL_SECRET": secret.hex(),
            "TW_REL_PREFIX": prefix,
            "TW_REL_TIMEOUT": str(TIMEOUT),
        }
        if kind == "uvicorn":
            command = [sys.executable, "-m", "uvicorn", "_rel_app:asgi_app", "--host",
                       "127.0.0.1", "--port", str(self.port), "--log-level", "warning"]  # fmt: skip
        else:
            command = [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{self.port}",
                       "-w", "1", "--threads", "4", "--log-level", "warning",
                       "_rel_app:wsgi_app"]  # fmt: skip
        self._log = log.open("wb")
        self.process = subprocess.Popen(command, cwd=HERE, env=env, stdout=self._log,
                                        stderr=self._log)  # fmt: skip
        self.pid = self.process.pid
        deadline = time.monotonic() + START_WAIT
        for _ in range(2000):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"{kind} did not start: {self.log_text()}")
            try:
                if httpx.get(f"{self.base}/pub/ready", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)

    def alive(self) -> bool:
        """Whether the very process started first still runs (never restarted)."""
        return self.process.poll() is None and self.process.pid == self.pid

    def log_text(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()


# -- probes and the load --------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """One kind of request of the load.

    ``kind``: ``good`` (valid credentials: 200 or 503), ``revoked`` (valid
    until the ``revoked`` mark, then 401 or 503, never 200), ``anonymous``
    (a protected path without credentials: 401, or 503 when the throttle
    cannot count it), ``limited`` (a throttle exhausted before the load: 429
    or 503, never 200), ``public`` (always 200).
    """

    name: str
    kind: str
    path: str
    token: str | None = None
    subject: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {} if self.token is None else {"Authorization": f"Bearer {self.token}"}


@dataclass
class Sample:
    probe: Probe
    t0: float
    t1: float
    status: int
    retry_after: str | None = None
    content_type: str | None = None
    subject: str | None = None
    error: str | None = None


@dataclass
class Load:
    """Requests from ``threads`` threads, round-robin over ``probes``.

    Bounded: each thread stops after ``per_thread`` requests, when
    :meth:`stop` is called, or ``max_seconds`` after :meth:`start`.
    """

    base: str
    probes: Sequence[Probe]
    threads: int = 4
    per_thread: int = 1500
    max_seconds: float = 30.0
    pause: float = 0.01
    samples: list[Sample] = field(default_factory=list)
    marks: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []

    def mark(self, name: str) -> float:
        now = time.monotonic()
        self.marks[name] = now
        return now

    def start(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        for n in range(self.threads):
            worker = threading.Thread(target=self._run, args=(n, deadline), daemon=True)
            self._workers.append(worker)
            worker.start()

    def _run(self, n: int, deadline: float) -> None:
        with httpx.Client(base_url=self.base, timeout=10.0) as client:
            for i in range(self.per_thread):
                if self._stop.is_set() or time.monotonic() > deadline:
                    return
                probe = self.probes[(n + i) % len(self.probes)]
                t0 = time.monotonic()
                try:
                    response = client.get(probe.path, headers=probe.headers)
                except httpx.HTTPError as exc:  # the app itself did not answer: a failure
                    sample = Sample(probe, t0, time.monotonic(), -1, error=repr(exc))
                else:
                    subject = None
                    if response.status_code == 200:
                        subject = response.json().get("subject")
                    sample = Sample(
                        probe,
                        t0,
                        time.monotonic(),
                        response.status_code,
                        response.headers.get("retry-after"),
                        response.headers.get("content-type"),
                        subject,
                    )
                with self._lock:
                    self.samples.append(sample)
                time.sleep(self.pause)

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(HELPER_WAIT)
            assert not worker.is_alive(), "a load thread did not stop"

    def snapshot(self) -> list[Sample]:
        with self._lock:
            return list(self.samples)

    def wait_for(self, check: Callable[[list[Sample]], bool], seconds: float) -> bool:
        """Poll the samples until ``check`` holds (bounded in time and count)."""
        deadline = time.monotonic() + seconds
        for _ in range(10_000):
            if check(self.snapshot()):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return False

    def recovered_since(self, mark: str) -> Callable[[list[Sample]], bool]:
        """A check: every ``good`` probe got a 200 for a request started after ``mark``."""
        goods = {p.name for p in self.probes if p.kind == "good"}

        def check(samples: list[Sample]) -> bool:
            since = self.marks[mark]
            ok = {s.probe.name for s in samples if s.t0 > since and s.status == 200}
            return goods <= ok

        return check

    def seen_503_since(self, mark: str) -> Callable[[list[Sample]], bool]:
        def check(samples: list[Sample]) -> bool:
            since = self.marks[mark]
            return any(s.t0 > since and s.status == 503 for s in samples)

        return check


def tally(samples: Sequence[Sample]) -> dict[str, int]:
    """``{"probe:status": count}``, for messages and the report."""
    return dict(sorted(Counter(f"{s.probe.name}:{s.status}" for s in samples).items()))


def check_samples(
    samples: Sequence[Sample],
    marks: dict[str, float],
    *,
    outage: tuple[str, str] | None = None,
    bound: float | None = None,
    affected: Sequence[str] | None = None,
) -> None:
    """Every answer keeps the HTTP contract under the fault.

    Args:
        outage: names of the marks between which the store was certainly
            unreachable (or, for SQLite, refused writes): a request with good
            credentials that started after the first and ended before the
            second must be 503 (never 200). Revoked ones are never 200 after
            the ``revoked`` mark in any case.
        bound: if given, every 503 of a request that started during the
            outage arrived within this many seconds.
        affected: the probe names the outage applies to (default: all).
    """
    problems: list[str] = []
    for s in samples:
        p = s.probe
        where = f"{p.name} {p.path} -> {s.status} at +{s.t0 - marks['start']:.2f}s"
        if s.status == -1:
            problems.append(f"{where}: the app did not answer: {s.error}")
            continue
        if s.status == 503:
            if s.retry_after is None or not s.retry_after.isdigit():
                problems.append(f"{where}: 503 without an integer Retry-After")
            elif not 1 <= int(s.retry_after) <= 5:  # security.md §3.7: Retry-After 1..5
                problems.append(f"{where}: Retry-After {s.retry_after}")
            if s.content_type != "application/problem+json":
                problems.append(f"{where}: 503 as {s.content_type}")
        # A public route names the subject when the store could verify the
        # credentials sent, else nobody (the request passes anonymously).
        subjects = {p.subject, None} if p.kind == "public" else {p.subject}
        if s.status == 200 and s.subject not in subjects:
            problems.append(f"{where}: answered for subject {s.subject!r}")
        allowed = {
            "good": {200, 503},
            "revoked": {200, 401, 503},
            "anonymous": {401, 503},
            "limited": {429, 503},
            "public": {200},
        }[p.kind]
        if s.status not in allowed:
            problems.append(f"{where}: status not in {sorted(allowed)}")
        if p.kind == "revoked" and s.status == 200 and s.t0 >= marks["revoked"]:
            problems.append(f"{where}: a token revoked before the request passed")
        if outage is not None and p.kind != "public" and (affected is None or p.name in affected):
            down, up = marks[outage[0]], marks[outage[1]]
            if s.t0 > down and s.t1 < up and p.kind == "good" and s.status != 503:
                problems.append(f"{where}: answered while the store was away")
            if bound is not None and s.status == 503 and down < s.t0 < up:
                if s.t1 - s.t0 > bound:
                    problems.append(f"{where}: 503 after {s.t1 - s.t0:.2f} s (bound {bound} s)")
    assert not problems, "\n".join(problems[:20]) + f"\n{len(problems)} problems; {tally(samples)}"


# -- credentials --------------------------------------------------------------------


@dataclass
class Credentials:
    """What the load presents, issued through a ``Tokenware`` on the app's store."""

    probes: list[Probe]
    revoke: Callable[[], None]

    @classmethod
    def issue(
        cls, tw: Tokenware, *, pat: IssuedPat | None = None, doomed_pat: IssuedPat | None = None
    ) -> Credentials:
        """A PAT (alice's, or ``pat``), a session and a JWT that verify; a PAT
        (bob's, or ``doomed_pat``), a session and a JWT to be revoked just
        before the fault (by :attr:`revoke`). The probe ``limited`` uses the
        good PAT on ``/api/limited``, which the test exhausts first.
        """
        pat = pat or tw.pats.issue("alice")
        session = tw.sessions.add("carol")
        jwt = tw.jwt.issue("erin")
        doomed_pat = doomed_pat or tw.pats.issue("bob")
        doomed_session = tw.sessions.add("dave")
        doomed_jwt = tw.jwt.issue("frank")
        probes = [
            Probe("pat", "good", "/api/x", pat.token, pat.record.owner),
            Probe("session", "good", "/api/x", session.key, "carol"),
            Probe("jwt", "good", "/api/x", jwt.access_token, "erin"),
            Probe("pat-revoked", "revoked", "/api/x", doomed_pat.token, doomed_pat.record.owner),
            Probe("session-revoked", "revoked", "/api/x", doomed_session.key, "dave"),
            Probe("jwt-revoked", "revoked", "/api/x", doomed_jwt.access_token, "frank"),
            Probe("anonymous", "anonymous", "/api/x"),
            Probe("limited", "limited", "/api/limited", pat.token, pat.record.owner),
            Probe("public", "public", "/pub/x"),
            Probe("public-auth", "public", "/pub/x", pat.token, pat.record.owner),
        ]

        def revoke() -> None:
            tw.pats.revoke(doomed_pat.record.token_id)
            tw.sessions.delete(doomed_session.id)
            assert tw.jwt.revoke(doomed_jwt.refresh_token)

        return cls(probes, revoke)


def exhaust_limited(base: str, token: str, calls: int = 3) -> None:
    """Use up ``/api/limited`` for ``token``'s subject: ``calls`` 200s, then 429."""
    with httpx.Client(base_url=base, timeout=10.0) as client:
        headers = {"Authorization": f"Bearer {token}"}
        statuses = [client.get("/api/limited", headers=headers).status_code for _ in range(calls)]
        assert statuses == [200] * calls
        denied = client.get("/api/limited", headers=headers)
        assert denied.status_code == 429 and int(denied.headers["retry-after"]) >= 1


def check_public_while_down(base: str) -> None:
    """Public routes answer 200 with the store away; a protected one without credentials 401."""
    with httpx.Client(base_url=base, timeout=10.0) as client:
        assert client.get("/pub/x").status_code == 200
        assert client.get("/api/x").status_code in (401, 503)


# -- one-time state changed while the fault happens ------------------------------------------


@dataclass
class Mutator:
    """Verifies challenges and rotates a refresh token (grace 0) in a thread.

    Every outcome is recorded: a success, ``unavailable`` (the store was away:
    the write may or may not have run) or the name of any other exception,
    which is a failure.
    """

    tw: Tokenware
    challenges: int = 40
    pause: float = 0.02
    max_seconds: float = 30.0

    def __post_init__(self) -> None:
        self.jwt = Jwt.over(self.tw, grace=0)
        self.codes: list[tuple[str, str]] = []
        for n in range(self.challenges):
            ch = self.tw.challenges.create("login", f"user{n}@example.com", secret=SIX)
            assert ch.secret is not None
            self.codes.append((f"user{n}@example.com", ch.secret))
        self.verified: dict[str, str] = {}  # identity -> "ok" | "unavailable" | exception name
        self.current: TokenPair | None = self.jwt.issue("grace-zero")
        self.rotated: list[str] = []  # refresh tokens that produced a successor
        self.refresh_outcomes: Counter[str] = Counter()
        self.unexpected: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(HELPER_WAIT)
        assert not self._thread.is_alive(), "the mutator did not stop"

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        pending = list(self.codes)
        for _ in range(100_000):
            if self._stop.is_set() or time.monotonic() > deadline:
                return
            if pending:
                identity, code = pending.pop(0)
                try:
                    self.tw.challenges.verify(action="login", id=identity, secret=code)
                    self.verified[identity] = "ok"
                except StoreUnavailable:
                    self.verified[identity] = "unavailable"
                except Exception as exc:  # recorded, asserted on in the checks
                    self.verified[identity] = type(exc).__name__
                    self.unexpected.append(f"challenge {identity}: {exc!r}")
            if self.current is not None:
                old = self.current
                try:
                    self.current = self.jwt.refresh(old.refresh_token)
                    self.rotated.append(old.refresh_token)
                    self.refresh_outcomes["ok"] += 1
                except StoreUnavailable:
                    self.refresh_outcomes["unavailable"] += 1  # may have run: retried next turn
                except (RefreshTokenReused, RefreshTokenNotFound) as exc:
                    # The retry of a rotation whose reply was lost: reuse, the
                    # family is revoked. Safe, and the chain ends here.
                    self.refresh_outcomes[type(exc).__name__] += 1
                    self.current = None
                except Exception as exc:
                    self.unexpected.append(f"refresh: {exc!r}")
                    self.current = None
            time.sleep(self.pause)

    def check_after_recovery(self) -> dict[str, Any]:
        """Nothing consumed became usable again; return counts for the report."""
        assert self.unexpected == [], self.unexpected
        assert set(self.verified.values()) <= {"ok", "unavailable"}, self.verified
        # A verify that failed with StoreUnavailable either never ran (the code
        # verifies once now) or ran with its reply lost (already consumed).
        lost_reply_ran = lost_reply_not_run = 0
        for identity, code in self.codes:
            outcome = self.verified.get(identity)
            if outcome == "ok":
                with pytest.raises((NotFound, InvalidToken)):
                    self.tw.challenges.verify(action="login", id=identity, secret=code)
                continue
            try:  # not attempted, or unavailable: at most ONE more success
                self.tw.challenges.verify(action="login", id=identity, secret=code)
                lost_reply_not_run += outcome == "unavailable"
            except (NotFound, InvalidToken):
                assert outcome == "unavailable", f"{identity} was consumed but never verified"
                lost_reply_ran += 1
            with pytest.raises((NotFound, InvalidToken)):
                self.tw.challenges.verify(action="login", id=identity, secret=code)
        if self.current is not None:  # the chain is alive: its newest token still works
            self.jwt.refresh(self.current.refresh_token)
        for token in self.rotated:
            with pytest.raises((RefreshTokenReused, RefreshTokenNotFound)):
                self.jwt.refresh(token)
        outcomes = Counter(self.verified.values())
        return {
            "challenges": dict(outcomes),
            "unavailable but consumed (reply lost)": lost_reply_ran,
            "unavailable and not consumed": lost_reply_not_run,
            "refresh": dict(self.refresh_outcomes),
        }


def exhaust_direct(tw: Tokenware, key: str, rate: str = "5/hour", n: int = 5) -> None:
    """Use up a throttle key through the service: ``n`` allowed, then denied."""
    assert [tw.throttle.hit(key, rate).allowed for _ in range(n + 1)] == [True] * n + [False]


def still_denied(tw: Tokenware, key: str, rate: str = "5/hour") -> None:
    """The key exhausted before the fault is still exhausted (nothing reset)."""
    decision = tw.throttle.hit(key, rate, cost=0)
    assert decision.remaining == 0, decision
    assert not tw.throttle.hit(key, rate).allowed


def until_store_answers(call: Callable[[], Any], seconds: float = RECOVER_WAIT) -> Any:
    """Call ``call`` until it stops raising StoreUnavailable (bounded)."""
    deadline = time.monotonic() + seconds
    for _ in range(10_000):
        try:
            return call()
        except StoreUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    raise AssertionError("unreachable")


# -- Redis with persistence -----------------------------------------------------------------


#: An append-only file fsynced before every reply: what a Redis that must keep
#: revocations, consumed codes and throttle counters across a crash runs with.
DURABLE = ("--appendonly", "yes", "--appendfsync", "always")


def sigkill(server: Any) -> None:
    """SIGKILL a RedisServer this test started (by its pid) and reap it."""
    assert server.pid is not None
    os.kill(server.pid, signal.SIGKILL)
    server.stop()  # reaps it; the port is free for start()


# -- SQLite held by another process ----------------------------------------------------------


# BEGIN EXCLUSIVE in WAL mode blocks every writer (readers go on).
LOCKER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("BEGIN EXCLUSIVE")
print("held", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
conn.close()
print("released", flush=True)
"""


def read_line(proc: subprocess.Popen[str], wait: float = HELPER_WAIT) -> str:
    """One line from ``proc``'s stdout, failing the test instead of hanging."""
    assert proc.stdout is not None
    out = proc.stdout
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(out.readline()), daemon=True)
    reader.start()
    reader.join(wait)
    if reader.is_alive() or not result or not result[0]:
        proc.kill()
        _, err = proc.communicate(timeout=HELPER_WAIT)
        pytest.fail(f"helper process said nothing; stderr:\n{err}")
    return result[0].strip()


class SqliteLock:
    """A process holding the write lock of a SQLite file until :meth:`release`."""

    def __init__(self, path: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LOCKER, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert read_line(self.proc) == "held"

    def release(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        assert read_line(self.proc) == "released"
        self.proc.communicate(timeout=HELPER_WAIT)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=HELPER_WAIT)


# -- Redis Cluster -------------------------------------------------------------------------


def slot_of(key: str) -> int:
    import redis.cluster

    return int(redis.cluster.key_slot(key.encode()))


def owner_port(client: Any, key: str) -> int:
    """The port of the primary owning ``key``'s slot, per ``client``'s map."""
    return int(client.nodes_manager.get_node_from_slot(slot_of(key)).port)


def report(name: str, **facts: Any) -> None:
    """One line for ``-s`` runs and the CI log: what the fault looked like."""
    print(f"\n[{name}] " + json.dumps(facts, sort_keys=True, default=str))
