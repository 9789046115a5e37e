"""``tokenware demo``: started as a subprocess on a free port and driven in Chromium.

The page's "Run all" logs the demo user in, runs the handshake, calls the
protected API, issues, uses and revokes a PAT, and hits the throttled
endpoint until 429; every step must report success. The screenshot in
``docs/img/demo.png`` comes from this test (``TW_UPDATE_SCREENSHOT=1``).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _browser_helpers import ROOT, chromium, free_port, live_server

from tokenware.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    port = free_port()
    command = [sys.executable, "-m", "tokenware", "--store", f"sqlite:///{tmp_path / 'demo.db'}",
               "demo", "--port", str(port)]  # fmt: skip
    env = {"TOKENWARE_SECRET_KEY": ""}
    log = tmp_path / "demo.log"
    with live_server(command, port, cwd=tmp_path, env=env, log=log) as base:
        yield base, log


def test_demo_runs_the_whole_flow_in_chromium(demo: tuple[str, Path], tmp_path: Path) -> None:
    base, log = demo
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 900, "height": 760})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(base + "/")
        page.click("#all")
        page.wait_for_function("window.demoResults !== undefined", timeout=20_000)
        results: dict[str, Any] = page.evaluate("window.demoResults")
        texts = {s: page.inner_text(f"#{s}-out") for s in results}
        shot = tmp_path / "demo.png"
        page.screenshot(path=str(shot), full_page=True)
        context.close()
    assert results == dict.fromkeys(("login", "handshake", "me", "pat", "limited"), True), texts
    assert '"subject":"demo"' in texts["me"]
    assert "with the PAT after revocation: 401" in texts["pat"]
    assert texts["limited"].startswith("200 200 200 429")
    assert not errors
    output = log.read_text()
    assert "tokenware demo on http://127.0.0.1:" in output
    assert "base64:" not in output  # the generated secret is never printed
    if os.environ.get("TW_UPDATE_SCREENSHOT") == "1":
        target = ROOT / "docs" / "img" / "demo.png"
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, target)


def test_demo_rejects_a_bad_port(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    assert main(["demo", "--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err
