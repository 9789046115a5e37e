"""Live servers in subprocesses on loopback: uvicorn (ASGI) and gunicorn (WSGI).

A private Redis is stopped in the middle of each test: protected routes must
answer 503 with ``Retry-After`` (never 500, never a pass), public routes keep
answering 200, and once Redis is back everything recovers without
restarting the app. Every wait is bounded in count and time.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _support import need

from tokenware import Tokenware
from tokenware.testing import make_secret_key

HERE = Path(__file__).resolve().parent
START_TIMEOUT = 20.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[Any]:
    try:
        import redis  # noqa: F401
    except ImportError:
        need("the redis package is not installed")
    if shutil.which("redis-server") is None:
        need("redis-server is not on PATH (apt-get install -y redis-server)")
    from _redis_server import RedisServer

    server = RedisServer(tmp_path / "redis")
    (tmp_path / "redis").mkdir()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _command(kind: str, port: int) -> list[str]:
    if kind == "uvicorn":
        return [sys.executable, "-m", "uvicorn", "_live_app:asgi_app", "--host", "127.0.0.1",
                "--port", str(port), "--log-level", "warning"]  # fmt: skip
    return [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", "1",
            "--log-level", "warning", "_live_app:wsgi_app"]  # fmt: skip


@pytest.fixture(params=["uvicorn", "gunicorn"])
def server(request: pytest.FixtureRequest, redis: Any, tmp_path: Path) -> Iterator[str]:
    kind = request.param
    try:
        __import__(kind)
    except ImportError:
        need(f"{kind} is not installed")
    port = _free_port()
    env = {**os.environ, "TW_LIVE_REDIS_URL": redis.url, "PYTHONPATH": str(HERE.parent.parent)}
    log = (tmp_path / f"{kind}.log").open("wb")
    process = subprocess.Popen(_command(kind, port), cwd=HERE, env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        for _ in range(1000):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{kind} did not start: {(tmp_path / f'{kind}.log').read_text()}")
            try:
                httpx.get(f"{base}/pub", timeout=1.0)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield base
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        log.close()
    text = (tmp_path / f"{kind}.log").read_text(errors="replace")
    assert "Traceback" not in text, text


def _until(check: Any, seconds: float = 10.0) -> Any:
    deadline = time.monotonic() + seconds
    last = None
    for _ in range(500):
        last = check()
        if last is not None or time.monotonic() > deadline:
            return last
        time.sleep(0.05)
    return last


def test_redis_outage_and_recovery(server: str, redis: Any) -> None:
    tw = Tokenware(store=redis.url, secret_key=make_secret_key(), jwt_check_family=True)
    token = tw.jwt.issue("alice").access_token
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server, timeout=5.0) as client:
        assert client.get("/api/x", headers=auth).status_code == 200
        assert client.get("/api/x").status_code == 401
        assert client.options("/api/x").status_code == 200

        redis.stop()
        down = client.get("/api/x", headers=auth)
        assert down.status_code == 503
        assert int(down.headers["retry-after"]) >= 1
        assert down.headers["content-type"] == "application/problem+json"
        assert client.get("/pub/x").status_code == 200
        assert client.get("/pub/x", headers=auth).status_code == 200
        assert client.get("/api/x").status_code == 401  # no credentials needs no store

        redis.start()  # a fresh, empty server on the same port: the family is gone
        fresh = Tokenware(store=redis.url, secret_key=make_secret_key(), jwt_check_family=True)
        new = {"Authorization": f"Bearer {fresh.jwt.issue('alice').access_token}"}

        def recovered() -> int | None:
            status = client.get("/api/x", headers=new).status_code
            return status if status == 200 else None

        assert _until(recovered) == 200
        assert client.get("/api/x", headers=auth).status_code == 401  # its family is gone
        fresh.close()

        redis.pause()  # timing out rather than refusing
        try:
            started = time.monotonic()
            hung = client.get("/api/x", headers=new)
            assert hung.status_code == 503
            assert time.monotonic() - started < 3.0
            assert client.get("/pub/x").status_code == 200
        finally:
            redis.resume()
        assert _until(recovered) == 200
    tw.close()
