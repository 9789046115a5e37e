"""The scripts in ``examples/`` run as a user would run them, and say what they did."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tokenware import Tokenware, errors

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = ["sessions_quickstart.py", "async_sessions.py"]
SECRET = "hex:" + "ab" * 32


def run_example(name: str, cwd: Path, extra: dict[str, str]) -> str:
    """Run ``examples/<name>`` with a clean TOKENWARE_* environment; return stdout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENWARE_")}
    env.update(extra)
    done = subprocess.run(
        # -X dev -W error: an unclosed store or un-awaited coroutine fails the run.
        [sys.executable, "-X", "dev", "-W", "error", str(EXAMPLES / name)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout


def check_story(out: str) -> str:
    """The example added, authenticated, listed and deleted one session; return its id."""
    added = re.search(r"^added session (\w{22}) for alice$", out, re.M)
    assert added, out
    session_id = added.group(1)
    assert "authenticated alice (kind=session, attrs={'role': 'admin'})" in out
    assert f"alice has 1 session(s): {session_id}" in out
    assert "after delete: rejected (invalid_token)" in out
    assert "alice has 0 session(s) left" in out
    assert "tws_" not in out  # the example never prints the bearer key
    return session_id


@pytest.mark.parametrize("name", SCRIPTS)
def test_example_uses_the_environment(name: str, tmp_path: Path) -> None:
    """With TOKENWARE_* set, the example runs on that SQLite store and leaves it clean."""
    url = f"sqlite:///{tmp_path / 'example.db'}"
    out = run_example(name, tmp_path, {"TOKENWARE_SECRET_KEY": SECRET, "TOKENWARE_STORE_URL": url})
    assert out.splitlines()[0] == f"store: {url}"
    session_id = check_story(out)
    assert (tmp_path / "example.db").exists()
    with Tokenware.from_env({"TOKENWARE_SECRET_KEY": SECRET, "TOKENWARE_STORE_URL": url}) as tw:
        assert tw.sessions.list("alice") == []
        with pytest.raises(errors.NotFound):
            tw.sessions.get(session_id)


@pytest.mark.parametrize("name", SCRIPTS)
def test_example_runs_without_configuration(name: str, tmp_path: Path) -> None:
    """Without a secret, the example says so and uses a temporary SQLite store."""
    out = run_example(name, tmp_path, {})
    assert out.startswith("TOKENWARE_SECRET_KEY is not set")
    assert re.search(r"^store: sqlite:///.+/tokenware\.db$", out, re.M)
    check_story(out)
    assert list(tmp_path.iterdir()) == []  # nothing written to the working directory
