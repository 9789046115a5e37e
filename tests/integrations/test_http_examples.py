"""``examples/flask_app.py``, ``starlette_app.py`` and ``fastapi_app.py`` work as shown."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _refusals import ASGIClient, assert_refusal

from tokenware import Tokenware
from tokenware.errors import InsufficientScope, InvalidToken, MissingCredentials

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ENV = {"TOKENWARE_SECRET_KEY": "hex:" + "ef" * 32, "TOKENWARE_STORE_URL": "memory://"}


def load(name: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    for key in [k for k in os.environ if k.startswith("TOKENWARE_")]:
        monkeypatch.delenv(key)
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(params=["flask_app", "starlette_app", "fastapi_app"])
def example(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    module = load(request.param, monkeypatch)
    try:
        yield module
    finally:
        module.tw.close()
        sys.modules.pop(f"example_{request.param}", None)


def client_for(module: Any) -> Any:
    if module.__name__ == "example_flask_app":
        return httpx.Client(transport=httpx.WSGITransport(app=module.app), base_url="http://t")
    return ASGIClient(module.app)


def test_example_protects_the_api(example: Any) -> None:
    """Public page open; /api/reports needs a valid token holding reports:read."""
    tw = example.tw
    pat = tw.pats.issue("alice", roles=["reports:read"]).token
    jwt = tw.jwt.issue("carol", scopes=["reports:read"]).access_token
    session = tw.sessions.add("bob").key
    c = client_for(example)
    assert c.get("/").status_code == 200
    assert c.get("/api/reports", headers={"Authorization": f"Bearer {pat}"}).json() == {
        "user": "alice"
    }
    assert c.get("/api/reports", headers={"Authorization": f"Bearer {jwt}"}).json() == {
        "user": "carol"
    }
    assert_refusal(c.get("/api/reports"), MissingCredentials())
    assert_refusal(c.get("/api/reports", headers={"Authorization": "Bearer twp_x"}), InvalidToken())
    assert_refusal(
        c.get("/api/reports", headers={"Authorization": f"Bearer {session}"}),
        InsufficientScope(scopes=("reports:read",)),
    )


def test_examples_stay_short() -> None:
    """Each example protects its routes in under ten lines of tokenware-specific code."""
    for name in ("flask_app", "starlette_app", "fastapi_app"):
        lines = (EXAMPLES / f"{name}.py").read_text().splitlines()
        specific = [
            line
            for line in lines
            if "tokenware" in line.lower()
            or "tw" in line.split("#")[0].split()
            or "requires" in line
            or "current_identity" in line
            or "Authenticated" in line
            or "Reader" in line
            or "install(" in line
            or "init_app(" in line
        ]
        code = [
            line for line in specific if not line.lstrip().startswith(("#", '"', "Run:", "Token:"))
        ]
        assert len(code) < 10, (name, code)


SERVERS = {
    "flask_app": ["-m", "gunicorn", "-w", "1", "-k", "sync", "--chdir", str(EXAMPLES)],
    "starlette_app": ["-m", "uvicorn", "--app-dir", str(EXAMPLES), "--no-access-log"],
    "fastapi_app": ["-m", "uvicorn", "--app-dir", str(EXAMPLES), "--no-access-log"],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SERVERS))
def test_example_runs_under_a_real_server(name: str, tmp_path: Path) -> None:
    """Each example served by gunicorn or uvicorn on SQLite: token in, 200; none, 401."""
    port = free_port()
    store = f"sqlite:///{tmp_path / 'tw.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENWARE_")}
    env.update(TOKENWARE_SECRET_KEY=ENV["TOKENWARE_SECRET_KEY"], TOKENWARE_STORE_URL=store)
    bind = (
        ["-b", f"127.0.0.1:{port}"]
        if name == "flask_app"
        else ["--host", "127.0.0.1", "--port", str(port)]
    )
    cmd = [sys.executable, *SERVERS[name], *bind, f"{name}:app"]
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, start_new_session=True)
    try:
        with Tokenware.from_env(env) as tw:  # the server's settings, the same SQLite file
            token = tw.pats.issue("alice", roles=["reports:read"]).token
        deadline = time.monotonic() + 30
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as c:
            while True:
                assert proc.poll() is None, "server exited"
                try:
                    response = c.get("/api/reports", headers={"Authorization": f"Bearer {token}"})
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "server did not start"
                    time.sleep(0.1)
            assert response.json() == {"user": "alice"}
            assert_refusal(c.get("/api/reports"), MissingCredentials())
            assert c.get("/").status_code == 200
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
