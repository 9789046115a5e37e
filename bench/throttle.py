"""Throttle hit cost: tokenware's GCRA next to ``limits``' fixed and moving windows.

Usage: ``.venv/bin/python bench/throttle.py [--seconds 0.5]``

Starts a private ``redis-server`` on a free loopback port (stopped by its
pid at the end), then times one hit per iteration, all on the same server in
one run:

* tokenware ``tw.throttle.hit(key, "1000000/minute")`` on Redis and memory,
* ``limits`` ``FixedWindowRateLimiter`` and ``MovingWindowRateLimiter`` with
  ``RedisStorage`` and ``MemoryStorage``, on ``1000000/minute``.

The limit is high so every hit is allowed (the write path). Round trips per
hit are counted from ``INFO commandstats`` (calls per command, before and
after). Each measurement runs for a bounded time and a bounded count; the
whole script stays under 60 s. Prints microseconds per hit and ratios.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

MAX_ITERATIONS = 200_000
RATE = "1000000/minute"


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
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def time_it(func: Callable[[int], Any], seconds: float) -> tuple[float, int]:
    """Microseconds per call of ``func(i)``, over ``seconds`` or MAX_ITERATIONS calls."""
    for i in range(200):  # warm up: scripts loaded, connections open
        func(i)
    n = 0
    start = time.perf_counter()
    deadline = start + seconds
    while n < MAX_ITERATIONS:
        func(n)
        n += 1
        if n % 64 == 0 and time.perf_counter() > deadline:
            break
    return (time.perf_counter() - start) / n * 1e6, n


def commands(client: Any) -> int:
    """Total commands the server has run (script-internal calls included)."""
    stats = client.info("commandstats")
    return sum(int(v["calls"]) for v in stats.values())


def round_trips(client: Any, func: Callable[[int], Any], n: int = 100) -> dict[str, float]:
    """Commands per hit, by name, as the client sent them (INFO commandstats deltas)."""
    before = client.info("commandstats")
    for i in range(n):
        func(i)
    after = client.info("commandstats")
    per: dict[str, float] = {}
    for name, value in after.items():
        calls = int(value["calls"]) - int(before.get(name, {"calls": 0})["calls"])
        if calls and name != "cmdstat_info":
            per[name.removeprefix("cmdstat_")] = calls / n
    return per


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="time per measurement")
    args = parser.parse_args()
    seconds = min(max(args.seconds, 0.05), 3.0)

    import redis
    from limits import parse
    from limits.storage import MemoryStorage, RedisStorage
    from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

    from tokenware import Tokenware

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
        cases: dict[str, Callable[[int], Any]] = {
            "tokenware GCRA (redis)": lambda i: tw_redis.throttle.hit(f"u{i % 1000}", RATE),
            "limits fixed window (redis)": lambda i: FixedWindowRateLimiter(r_storage).hit(
                item, f"u{i % 1000}"
            ),
            # Another identifier: a moving window keeps a list where a fixed one counts.
            "limits moving window (redis)": lambda i: MovingWindowRateLimiter(r_storage).hit(
                item, f"m{i % 1000}"
            ),
            "tokenware GCRA (memory)": lambda i: tw_mem.throttle.hit(f"u{i % 1000}", RATE),
            "limits fixed window (memory)": lambda i: FixedWindowRateLimiter(m_storage).hit(
                item, f"u{i % 1000}"
            ),
            "limits moving window (memory)": lambda i: MovingWindowRateLimiter(m_storage).hit(
                item, f"m{i % 1000}"
            ),
        }
        print(f"redis-server on 127.0.0.1:{port}; rate {RATE}; {seconds:.2f} s per case\n")
        print("commands the server ran per hit (INFO commandstats):")
        for name, func in cases.items():
            if "redis" in name:
                per = round_trips(client, func)
                shown = ", ".join(f"{k} {v:g}" for k, v in sorted(per.items()))
                print(f"  {name:32} {shown}")
        print()
        results: dict[str, float] = {}
        for name, func in cases.items():
            us, n = time_it(func, seconds)
            results[name] = us
            print(f"  {name:32} {us:8.1f} us/hit  ({n} hits)")
        print()
        for backend in ("redis", "memory"):
            ours = results[f"tokenware GCRA ({backend})"]
            for peer in ("fixed window", "moving window"):
                theirs = results[f"limits {peer} ({backend})"]
                print(f"  {backend:6} tokenware / limits {peer:13} = {ours / theirs:5.2f}x")
        tw_redis.close()
        client.close()
    finally:
        stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
