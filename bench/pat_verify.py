"""Personal access token verify cost: tokenware (HMAC) vs @access-tokens' scrypt.

Run: ``python bench/pat_verify.py`` (Redis row: needs ``redis-server`` on PATH
and the ``redis`` package; the script starts a private server on a free
loopback port and stops it, by pid, at the end).

Rows, in microseconds per verify (best of several rounds):

* ``tokenware, memory``  ``tw.pats.verify(token)`` over ``memory://``: parse,
  CRC32, one read, HMAC-SHA256, ``compare_digest``, status checks;
* ``tokenware, redis``   the same over a real Redis on loopback; the store
  calls per verify are counted (one ``GET`` in the steady state:
  ``last_used_at`` is written at most once a minute);
* ``scrypt``             ``hashlib.scrypt`` at the @access-tokens defaults
  (N=2^14, r=8, p=1, 32-byte key) plus ``compare_digest``: what their
  ``verify`` pays per call before any store access.

The ratio column is ``scrypt / row``. Iterations are bounded; the whole run
takes well under a minute.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tokenware import Tokenware
from tokenware.stores import StorePair, store_from_url

SECRET = b"bench-secret-key-32-bytes-long!!"
REPEAT = 5


def best_us(fn: Callable[[], Any], number: int, repeat: int = REPEAT) -> float:
    """Best-of-``repeat`` microseconds per call."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best * 1e6


def scrypt_verify() -> Callable[[], bool]:
    secret, salt = secrets.token_bytes(32), secrets.token_bytes(16)
    expected = hashlib.scrypt(secret, salt=salt, n=1 << 14, r=8, p=1, maxmem=1 << 25, dklen=32)

    def verify() -> bool:
        got = hashlib.scrypt(secret, salt=salt, n=1 << 14, r=8, p=1, maxmem=1 << 25, dklen=32)
        return hmac.compare_digest(got, expected)

    return verify


class CountingGets:
    """Wraps a sync store face and counts its calls."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if name in ("get", "get_many", "members", "apply", "purge"):

            def counted(*args: Any, **kwargs: Any) -> Any:
                self.calls += 1
                return target(*args, **kwargs)

            return counted
        return target


def tokenware_verify(url: str) -> tuple[Callable[[], bool], CountingGets, Tokenware]:
    pair = store_from_url(url)
    counting = CountingGets(pair.sync)
    wrapped = StorePair(url=pair.url, sync=counting, aio=pair.aio)  # type: ignore[arg-type]
    tw = Tokenware(store=wrapped, secret_key=SECRET, key_prefix=f"bench{os.getpid()}")
    token = tw.pats.issue("bench", roles=["read"]).token
    assert tw.pats.verify(token).valid  # first verify writes last_used_at

    def verify() -> bool:
        return tw.pats.verify(token).valid

    return verify, counting, tw


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis(workdir: str) -> tuple[subprocess.Popen[bytes], int] | None:
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return proc, port
        except OSError:
            time.sleep(0.05)
    stop_redis(proc)
    return None


def stop_redis(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def main() -> None:
    rows: list[tuple[str, float | None, str]] = []
    scrypt_us = best_us(scrypt_verify(), number=10, repeat=3)

    verify, counting, tw = tokenware_verify("memory://")
    counting.calls = 0
    memory_us = best_us(verify, number=20_000)
    calls = counting.calls / (20_000 * REPEAT)
    rows.append(("tokenware, memory", memory_us, f"{calls:.2f} store calls/verify"))
    tw.close()

    with tempfile.TemporaryDirectory() as workdir:
        started = None
        try:
            import redis  # noqa: F401

            started = start_redis(workdir)
        except ImportError:
            pass
        if started is None:
            rows.append(("tokenware, redis", None, "skipped: redis-server or redis missing"))
        else:
            proc, port = started
            try:
                verify, counting, tw = tokenware_verify(f"redis://127.0.0.1:{port}/0")
                counting.calls = 0
                redis_us = best_us(verify, number=3_000)
                calls = counting.calls / (3_000 * REPEAT)
                rows.append(("tokenware, redis", redis_us, f"{calls:.2f} round trips/verify"))
                tw.close()
            finally:
                stop_redis(proc)

    rows.append(("scrypt (N=2^14, r=8, p=1)", scrypt_us, "@access-tokens default, no store"))
    print(f"{'verifier':<28} {'µs/op':>10} {'scrypt/row':>11}  notes")
    for name, us, note in rows:
        if us is None:
            print(f"{name:<28} {'-':>10} {'-':>11}  {note}")
        else:
            print(f"{name:<28} {us:>10.1f} {scrypt_us / us:>10.0f}x  {note}")


if __name__ == "__main__":
    main()
