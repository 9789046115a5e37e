"""Throttle hit cost: tokenware's GCRA next to ``limits``' fixed and moving windows.

Usage: ``.venv/bin/python bench/throttle.py [--rounds 7] [--seconds 0.25]``

Starts a private ``redis-server`` on a free loopback port (stopped by its
pid at the end), then times one hit per iteration, all on the same server in
one run:

* tokenware ``tw.throttle.hit(key, "1000000/minute")`` on Redis and memory,
* ``limits`` ``FixedWindowRateLimiter`` and ``MovingWindowRateLimiter`` with
  ``RedisStorage`` and ``MemoryStorage``, on ``1000000/minute``.

The limit is high so every hit is allowed (the write path).

Built for a busy machine: every case runs once per round, for the same
number of hits each round (calibrated in the warm-up to about ``--seconds``),
and the rows are interleaved, in reverse order on odd rounds (and within a
round, in SLICES slices of alternating order), so a burst of load elsewhere
lands on all cases alike. Each round is timed with
``time.perf_counter`` (wall clock) and ``time.thread_time`` (this thread's
CPU). A Redis hit waits on the server, so the main figure is the **median
wall-clock** microseconds per hit over the rounds, with the minimum next to
it; the CPU column is the client-side Python alone. Ratios are given as the
ratio of the medians and the median of the per-round ratios.

Round trips per hit are counted on the client (writes of a packed command
to the socket, each followed by a reply) and the commands the server ran
(scripts' inner calls included) from ``INFO commandstats``; the server's own
time in ``EVALSHA`` per hit (``usec`` deltas over the timed rounds) splits a
Redis hit into server-side Lua and the rest (client Python plus the loopback
round trip).

Bounded: rounds x cases x seconds is capped at 60 s of timed work, each
measurement at ``MAX_ITERATIONS`` hits, and the script exits well under 90 s.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

MAX_ITERATIONS = 200_000
#: Seconds of timed work at most (rounds x cases x seconds), whatever the options.
BUDGET = 60.0
#: Wall-clock bound of one measurement, as a multiple of its target seconds.
OVERRUN = 4.0
#: Interleaved slices per round (see run_round).
SLICES = 5
#: No round starts after this many seconds of the run, and none runs past HARD_STOP.
LAST_ROUND = 60.0
HARD_STOP = 75.0
RATE = "1000000/minute"
#: Commands a client sends to run a script; their ``usec`` includes the script's.
SCRIPT_COMMANDS = ("evalsha", "eval", "evalsha_ro", "eval_ro", "fcall", "fcall_ro")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis(workdir: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    # A fixed argv, bound to loopback only.
    proc = subprocess.Popen(
        [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, port
        except OSError:
            time.sleep(0.05)
    stop(proc)
    raise SystemExit("redis-server did not start")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server this script started, by its pid."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


class Case:
    """One row: a hit function, its calibrated count and its per-round times."""

    def __init__(self, name: str, func: Callable[[int], Any]) -> None:
        self.name = name
        self.func = func
        self.n = 0
        self.i = 0  # keys keep cycling across rounds
        self.wall: list[float] = []  # us per hit, one per round
        self.cpu: list[float] = []
        self.server_usec = 0  # EVALSHA usec on the server over the timed rounds
        self.hits = 0

    @property
    def redis(self) -> bool:
        return "(redis)" in self.name

    def calibrate(self, seconds: float) -> None:
        """Warm up (scripts loaded, connections open) and pick the hits per round."""
        for _ in range(200):
            self.func(self.i)
            self.i += 1
        start = time.perf_counter()
        for _ in range(200):
            self.func(self.i)
            self.i += 1
        per_hit = (time.perf_counter() - start) / 200
        self.n = max(50, min(MAX_ITERATIONS, int(seconds / per_hit)))

    def measure(self, count: int, deadline: float) -> tuple[float, float, int]:
        """``(wall s, cpu s, hits)`` of ``count`` hits, stopping early past ``deadline``."""
        func = self.func
        i = self.i
        n = 0
        wall0 = time.perf_counter()
        cpu0 = time.thread_time()
        while n < count:
            func(i)
            i += 1
            n += 1
            if n % 64 == 0 and time.perf_counter() > deadline:
                break
        cpu = time.thread_time() - cpu0
        wall = time.perf_counter() - wall0
        self.i = i
        self.hits += n
        return wall, cpu, n


def run_round(cases: list[Case], r: int, seconds: float, stop_at: float, client: Any) -> None:
    """One round: every case's ``n`` hits, in SLICES interleaved slices.

    Slices alternate the order of the cases (and odd rounds start reversed),
    so load that comes and goes lands on every case alike; the round's time
    of a case is the sum of its slices.
    """
    totals = {case.name: [0.0, 0.0, 0] for case in cases}
    for s in range(SLICES):
        order = cases if (r + s) % 2 == 0 else cases[::-1]
        for case in order:
            before = commandstats(client) if case.redis else {}
            deadline = min(time.perf_counter() + seconds / SLICES * OVERRUN, stop_at)
            wall, cpu, n = case.measure(max(1, case.n // SLICES), deadline)
            total = totals[case.name]
            total[0] += wall
            total[1] += cpu
            total[2] += n
            if case.redis:
                changed = delta(before, commandstats(client))
                case.server_usec += sum(changed.get(c, (0, 0))[1] for c in SCRIPT_COMMANDS)
    for case in cases:
        wall, cpu, n = totals[case.name]
        case.wall.append(wall / n * 1e6)
        case.cpu.append(cpu / n * 1e6)


@contextmanager
def count_round_trips() -> Iterator[list[int]]:
    """Count packed commands redis-py writes to a socket (each waits for its reply)."""
    from redis.connection import AbstractConnection

    counter = [0]
    original = AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> Any:
        counter[0] += 1
        return original(self, command, check_health)

    AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]
    try:
        yield counter
    finally:
        AbstractConnection.send_packed_command = original  # type: ignore[method-assign]


def commandstats(client: Any) -> dict[str, tuple[int, int]]:
    """``{command: (calls, usec)}`` from ``INFO commandstats``."""
    stats = client.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): (int(v["calls"]), int(v["usec"]))
        for name, v in stats.items()
    }


def delta(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]
) -> dict[str, tuple[int, int]]:
    out = {}
    for name, (calls, usec) in after.items():
        c0, u0 = before.get(name, (0, 0))
        if calls - c0 and name != "info":
            out[name] = (calls - c0, usec - u0)
    return out


def round_trips(client: Any, case: Case, n: int = 200) -> tuple[float, dict[str, float]]:
    """Client round trips per hit, and the commands the server ran per hit."""
    before = commandstats(client)
    with count_round_trips() as counter:
        for _ in range(n):
            case.func(case.i)
            case.i += 1
    after = commandstats(client)
    per = {name: calls / n for name, (calls, _) in delta(before, after).items()}
    return counter[0] / n, per


def median_ratio(ours: Case, theirs: Case) -> float:
    return statistics.median(a / b for a, b in zip(ours.wall, theirs.wall, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="rounds of every case (1-25)")
    parser.add_argument("--seconds", type=float, default=0.25, help="target time per measurement")
    args = parser.parse_args()
    rounds = min(max(args.rounds, 1), 25)

    import redis
    from limits import parse
    from limits.storage import MemoryStorage, RedisStorage
    from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

    from tokenware import Tokenware

    started = time.perf_counter()
    workdir = tempfile.mkdtemp(prefix="tw-bench-throttle-")
    proc, port = start_redis(workdir)
    try:
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url)
        tw_redis = Tokenware(store=url, secret_key=b"b" * 32, key_prefix="bench")
        tw_mem = Tokenware(store="memory://", secret_key=b"b" * 32)
        item = parse(RATE)
        r_storage = RedisStorage(url)
        m_storage = MemoryStorage()
        r_fixed = FixedWindowRateLimiter(r_storage)
        r_moving = MovingWindowRateLimiter(r_storage)
        m_fixed = FixedWindowRateLimiter(m_storage)
        m_moving = MovingWindowRateLimiter(m_storage)
        tw_r = tw_redis.throttle.hit
        tw_m = tw_mem.throttle.hit
        cases = [
            Case("tokenware GCRA (redis)", lambda i: tw_r(f"u{i % 1000}", RATE)),
            Case("limits fixed window (redis)", lambda i: r_fixed.hit(item, f"u{i % 1000}")),
            # Another identifier: a moving window keeps a list where a fixed one counts.
            Case("limits moving window (redis)", lambda i: r_moving.hit(item, f"m{i % 1000}")),
            Case("tokenware GCRA (memory)", lambda i: tw_m(f"u{i % 1000}", RATE)),
            Case("limits fixed window (memory)", lambda i: m_fixed.hit(item, f"u{i % 1000}")),
            Case("limits moving window (memory)", lambda i: m_moving.hit(item, f"m{i % 1000}")),
        ]
        seconds = min(max(args.seconds, 0.02), 3.0, BUDGET / (rounds * len(cases)))
        print(
            f"redis-server {client.info('server')['redis_version']} on 127.0.0.1:{port}; "
            f"rate {RATE}; {rounds} rounds x {len(cases)} cases x ~{seconds:.2f} s\n"
        )
        for case in cases:
            case.calibrate(seconds)
        # After the warm-up: connections open, scripts loaded, one-off checks done.
        print("round trips per hit (client) | commands the server ran per hit (INFO commandstats):")
        for case in cases:
            if case.redis:
                trips, per = round_trips(client, case)
                shown = ", ".join(f"{k} {v:g}" for k, v in sorted(per.items()))
                print(f"  {case.name:30} {trips:4g} | {shown}")
        print()
        done = 0
        for r in range(rounds):
            if time.perf_counter() - started > LAST_ROUND:
                break
            done += 1
            run_round(cases, r, seconds, started + HARD_STOP, client)

        if done < rounds:
            print(f"  (time bound: {done} of {rounds} rounds)")
        print(
            f"  {'us per hit':30} {'wall med':>9} {'wall min':>9} {'cpu med':>9} "
            f"{'wait med':>9} {'srv lua':>8}  hits"
        )
        for case in cases:
            server = f"{case.server_usec / case.hits:8.1f}" if case.redis else f"{'-':>8}"
            wait = statistics.median(w - c for w, c in zip(case.wall, case.cpu, strict=True))
            print(
                f"  {case.name:30} {statistics.median(case.wall):9.1f} {min(case.wall):9.1f} "
                f"{statistics.median(case.cpu):9.1f} {wait:9.1f} {server}  {case.hits}"
            )
        print(
            "\n  (wall: perf_counter; cpu: thread_time of this client thread; wait: wall - cpu,"
            "\n  the server, the loopback and the scheduler; srv lua: server usec in EVALSHA"
            " per timed hit)\n"
        )
        by_name = {case.name: case for case in cases}
        for backend in ("redis", "memory"):
            ours = by_name[f"tokenware GCRA ({backend})"]
            for peer in ("fixed window", "moving window"):
                theirs = by_name[f"limits {peer} ({backend})"]
                of_medians = statistics.median(ours.wall) / statistics.median(theirs.wall)
                print(
                    f"  {backend:6} tokenware / limits {peer:13}  "
                    f"ratio of medians {of_medians:5.2f}x  "
                    f"median of round ratios {median_ratio(ours, theirs):5.2f}x"
                )
        print(f"\n  total {time.perf_counter() - started:.1f} s")
        tw_redis.close()
        tw_mem.close()
        client.close()
    finally:
        stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
