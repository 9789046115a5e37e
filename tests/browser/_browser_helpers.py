"""Live servers and headless Chromium for the browser tests (importable, unlike a conftest).

Chromium is Debian's ``/usr/bin/chromium`` driven by Playwright's Python
package (never ``playwright install``). Without either, tests skip with a
reason locally and fail under ``CI=true`` (``need``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from _support import need

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
START_TIMEOUT = 30.0
ROOT = Path(__file__).resolve().parent.parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_server(
    command: Sequence[str],
    port: int,
    *,
    cwd: Path,
    env: dict[str, str],
    log: Path,
    probe: str = "/",
) -> Iterator[str]:
    """Run ``command`` until ``http://127.0.0.1:port`` + ``probe`` answers; stop it after."""
    base = f"http://127.0.0.1:{port}"
    full_env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{cwd}", **env}
    with log.open("wb") as out:
        process = subprocess.Popen(list(command), cwd=cwd, env=full_env, stdout=out, stderr=out)
        try:
            deadline = time.monotonic() + START_TIMEOUT
            for _ in range(600):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}")
                try:
                    if httpx.get(base + probe, timeout=1.0).status_code < 500:
                        break
                except httpx.TransportError:
                    time.sleep(0.05)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium browser (skips, or fails under CI, when unavailable)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need("the playwright package is not installed (pip install 'playwright>=1.40')")
    if not os.access(CHROMIUM, os.X_OK):
        need(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
