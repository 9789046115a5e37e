"""Racing across processes: a worker script and the :class:`Racers` that drive it.

Each worker is a plain ``python _racer.py`` process with a fresh
``Tokenware`` of its own over the shared store (SQLite file, Redis, Redis
Cluster), driven by one JSON line per command on stdin and answering one
JSON line on stdout, so every wait is bounded and nothing depends on how
pytest imported the tests. A command carries ``start_at`` (wall clock): every
worker sleeps until then and releases its threads together, so the processes
race each other for real.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tokenware import Tokenware

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
WAIT = 60.0  # seconds: the bound on any answer of a worker

# -- the worker (runs in its own process) ------------------------------------------


def _release(command: dict[str, Any]) -> threading.Barrier:
    """Sleep until the command's start time; a barrier for its threads."""
    time.sleep(max(0.0, command["start_at"] - time.time()))
    return threading.Barrier(command["threads"])


def _in_threads(command: dict[str, Any], work: Callable[[], list[str]]) -> list[str]:
    """Run ``work`` in ``threads`` threads released together; all outcomes."""
    barrier = _release(command)
    outcomes: list[str] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait(WAIT)
        got = work()
        with lock:
            outcomes.extend(got)

    threads = [threading.Thread(target=run) for _ in range(command["threads"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    return outcomes


def _attempt(call: Callable[[], Any]) -> str:
    try:
        call()
    except Exception as exc:
        return type(exc).__name__
    return "ok"


def _pat_race(tw: Any, command: dict[str, Any], say: Callable[[dict[str, Any]], None]) -> None:
    """Verify a PAT in a loop until told it is revoked, then ``after`` times more.

    A verify counts as "after" only if it STARTED after this process learnt
    that ``revoke`` had returned in the parent: such a verify must fail.
    """
    revoked = threading.Event()
    started = threading.Barrier(command["threads"] + 1)
    counts: Counter[str] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + command["max_seconds"]

    def verifier() -> None:
        local: Counter[str] = Counter()
        after = 0
        for i in range(100_000):
            if i == 1:
                started.wait(WAIT)
            seen = revoked.is_set()  # read BEFORE the verify starts
            try:
                result = tw.pats.verify(command["token"])
                outcome = "valid" if result.valid else f"invalid:{result.reason}"
            except Exception as exc:
                outcome = f"error:{type(exc).__name__}"
            local[f"{'after' if seen else 'before'}:{outcome}"] += 1
            after += seen
            if after >= command["after"] or time.monotonic() > deadline:
                break
        with lock:
            counts.update(local)

    threads = [threading.Thread(target=verifier) for _ in range(command["threads"])]
    for t in threads:
        t.start()
    started.wait(WAIT)  # every thread has verified once
    say({"started": True})
    sys.stdin.readline()  # "revoked": the parent's revoke has returned
    revoked.set()
    for t in threads:
        t.join(WAIT)
    say({"counts": dict(counts)})


def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _setup(command: dict[str, Any]) -> Any:
    """A fresh Tokenware over the command's store, connected (warmed up)."""
    from tokenware import Tokenware
    from tokenware.testing import FrozenClock

    c = command
    clock = FrozenClock(c["clock"]) if c["clock"] is not None else time.time
    tw = Tokenware(
        store=c["store"],
        secret_key=bytes.fromhex(c["secret"]),
        key_prefix=c["prefix"],
        clock=clock,
        store_timeout=c["timeout"],
        store_connect_timeout=c["timeout"],
    )
    tw.throttle.hit("warm-up", "1/second", cost=0)
    return tw


def _handle(tw: Any, command: dict[str, Any]) -> None:
    """Run one racing command on ``tw`` and answer it."""
    from tokenware.jwt import Jwt

    op = command["op"]
    if op == "challenge":

        def verify() -> list[str]:
            return [_attempt(lambda: tw.challenges.verify(
                action=command["action"], id=command["id"], secret=command["secret"]))]  # fmt: skip

        _say({"outcomes": _in_threads(command, verify)})
    elif op == "refresh":
        jwt = Jwt.over(tw, grace=0)
        won: list[str] = []

        def rotate() -> list[str]:
            try:
                won.append(jwt.refresh(command["token"]).refresh_token)
            except Exception as exc:
                return [type(exc).__name__]
            return ["ok"]

        _say({"outcomes": _in_threads(command, rotate), "won": won})
    elif op == "throttle":

        def hits() -> list[str]:
            out = []
            for _ in range(command["hits"]):
                try:
                    allowed = tw.throttle.hit(command["key"], command["rate"]).allowed
                    out.append("allowed" if allowed else "denied")
                except Exception as exc:
                    out.append(type(exc).__name__)
            return out

        _say({"outcomes": _in_threads(command, hits)})
    elif op == "pat":
        _pat_race(tw, command, _say)
    else:
        _say({"error": f"unknown op {op}"})


def worker() -> None:
    """Serve commands from stdin until ``exit`` (or end of input)."""
    tw: Any = None
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "exit":
            break
        if command["op"] == "setup":  # a (new) store: the same processes serve every backend
            if tw is not None:
                tw.close()
            tw = _setup(command)
            _say({"ready": os.getpid()})
        else:
            _handle(tw, command)
    if tw is not None:
        tw.close()


# -- the driver (in the test process) ------------------------------------------------


class Racers:
    """``processes`` worker processes; :meth:`setup` points them at a store."""

    def __init__(self, processes: int = 4) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get(
            "PYTHONPATH", "")])}  # fmt: skip
        self.procs = [
            subprocess.Popen(
                [sys.executable, str(HERE / "_racer.py")],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                cwd=ROOT,
            )
            for _ in range(processes)
        ]

    def setup(self, *, store: str, secret: bytes, prefix: str, clock: float | None,
              timeout: float = 10.0) -> None:  # fmt: skip
        """A fresh ``Tokenware`` in every worker, connected to ``store``."""
        self.send_all({"op": "setup", "store": store, "secret": secret.hex(), "prefix": prefix,
                       "clock": clock, "timeout": timeout})  # fmt: skip
        pids = [self.read(p)["ready"] for p in self.procs]
        assert len(set(pids)) == len(self.procs)

    def send(self, proc: subprocess.Popen[str], message: dict[str, Any] | str) -> None:
        assert proc.stdin is not None
        proc.stdin.write((message if isinstance(message, str) else json.dumps(message)) + "\n")
        proc.stdin.flush()

    def send_all(self, message: dict[str, Any] | str) -> None:
        for proc in self.procs:
            self.send(proc, message)

    def read(self, proc: subprocess.Popen[str]) -> dict[str, Any]:
        """One JSON answer of ``proc``, failing the test instead of hanging."""
        import pytest

        out = proc.stdout
        assert out is not None
        result: list[str] = []
        reader = threading.Thread(target=lambda: result.append(out.readline()), daemon=True)
        reader.start()
        reader.join(WAIT)
        if reader.is_alive() or not result or not result[0]:
            proc.kill()
            _, err = proc.communicate(timeout=WAIT)
            pytest.fail(f"racer process said nothing; stderr:\n{err[-4000:]}")
        answer: dict[str, Any] = json.loads(result[0])
        assert "error" not in answer, answer
        return answer

    def race(self, op: str, **args: Any) -> list[dict[str, Any]]:
        """Send one command to every worker, starting together; their answers."""
        command = {"op": op, "start_at": time.time() + 0.3, **args}
        self.send_all(command)
        return [self.read(p) for p in self.procs]

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    self.send(proc, {"op": "exit"})
                except OSError:
                    pass
        for proc in self.procs:
            try:
                proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()  # this test's own worker, by its Popen
                proc.communicate(timeout=10)


@dataclass
class Racing:
    """A backend raced across processes: its name, a Tokenware of the test's own
    and the workers (configured for the same store, keys and prefix)."""

    kind: str
    tw: Tokenware
    racers: Racers


@dataclass
class Local:
    """A backend raced by threads or tasks in the test process."""

    kind: str
    tw: Tokenware


if __name__ == "__main__":
    worker()
