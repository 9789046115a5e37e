"""``bench/soak.py --quick`` runs end to end: live servers, load, RSS, exit status.

The full soak (numbers in docs/production.md) is run by hand; this only shows
the script still works: both apps start, answer the whole traffic mix with no
5xx and no connection error, and the summary lines are printed.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from _support import need

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def test_quick_soak_passes() -> None:
    missing = [
        m for m in ("uvicorn", "starlette", "gunicorn", "flask") if not importlib.util.find_spec(m)
    ]
    if missing:
        need(f"{', '.join(missing)} not installed (pip install -e '.[test]')")
    if not Path("/proc/self/status").exists():
        need("reading a server's RSS needs /proc")
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "soak.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    for name in ("asgi/sqlite", "wsgi/sqlite"):
        [line] = [line for line in out.splitlines() if line.startswith(f"SOAK {name}: ")]
        assert "req/s" in line and "failures 0 (5xx 0, connection errors 0)" in line
        assert "RSS warm" in line and ": flat" in line
        assert "429=" in line and "401=" in line
    assert "SOAK verdict: PASS" in out
