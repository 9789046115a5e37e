"""The ``tokenware`` command: output, exit codes, secrecy, and real processes."""

from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tokenware
from tokenware import Tokenware, errors
from tokenware.cli import EXIT_NOT_FOUND, EXIT_OK, EXIT_STORE, EXIT_USAGE, main
from tokenware.sessions import Sessions

SECRET = "base64:" + base64.b64encode(b"k" * 32).decode("ascii")
SECRET_BODY = base64.b64encode(b"k" * 32).decode("ascii")


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The process environment without any TOKENWARE_* variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENWARE_")}
    env.update(extra or {})
    return env


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """A SQLite store URL in the test's own directory."""
    return f"sqlite:///{tmp_path / 'cli.db'}"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, store_url: str) -> Iterator[None]:
    """TOKENWARE_* set to a private SQLite store and a fixed secret, cwd in tmp_path."""
    for name in list(os.environ):
        if name.startswith("TOKENWARE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TOKENWARE_SECRET_KEY", SECRET)
    monkeypatch.setenv("TOKENWARE_STORE_URL", store_url)
    yield


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``main(argv)`` in process; return (exit code, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    """Run with ``--json``, assert success, return the parsed output."""
    code, out, err = run(capsys, "--json", *argv)
    assert code == EXIT_OK, err
    return json.loads(out)


def assert_no_traceback(err: str) -> None:
    """The error output is a message, not a Python traceback."""
    assert "Traceback" not in err
    assert err.startswith("tokenware") or err.startswith("usage:")


# -- commands that need no environment --------------------------------------


def test_keygen_prints_a_fresh_32_byte_base64_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """keygen needs no environment and prints a new ``base64:`` secret of 32 bytes."""
    monkeypatch.delenv("TOKENWARE_SECRET_KEY", raising=False)
    code, first, _ = run(capsys, "keygen")
    assert code == EXIT_OK
    _, second, _ = run(capsys, "keygen")
    for line in (first, second):
        assert line.startswith("base64:") and line.endswith("\n")
        assert len(base64.b64decode(line.strip()[7:], validate=True)) == 32
    assert first != second
    Tokenware(store="memory://", secret_key=tokenware.config.parse_secret(first.strip()))


def test_keygen_json(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """keygen --json prints the secret under ``secret_key``."""
    data = run_json(capsys, "keygen")
    assert data["secret_key"].startswith("base64:")


def test_version(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """version prints the package version, plain or as JSON, without a secret."""
    monkeypatch.delenv("TOKENWARE_SECRET_KEY", raising=False)
    code, out, _ = run(capsys, "version")
    assert (code, out) == (EXIT_OK, f"tokenware {tokenware.__version__}\n")
    assert run_json(capsys, "version") == {"version": tokenware.__version__}


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    """--help prints usage and returns 0 instead of raising SystemExit."""
    code, out, _ = run(capsys, "--help")
    assert code == EXIT_OK
    assert "sessions" in out and "keygen" in out and "hash" in out


# -- sessions ---------------------------------------------------------------


@pytest.mark.usefixtures("env")
def test_add_prints_the_key_once_in_human_form(capsys: pytest.CaptureFixture[str]) -> None:
    """sessions add prints key and id; list and get never print the key again."""
    code, out, err = run(capsys, "sessions", "add", "alice", "--attrs", '{"role": "admin"}')
    assert code == EXIT_OK
    fields = dict(line.split(":", 1) for line in out.splitlines())
    key, session_id = fields["key"].strip(), fields["id"].strip()
    assert key.startswith("tws_") and out.count(key) == 1
    assert fields["owner"].strip() == "alice"
    assert json.loads(fields["attrs"]) == {"role": "admin"}
    assert "shown only this once" in err
    _, listed, _ = run(capsys, "sessions", "list", "alice")
    _, shown, _ = run(capsys, "sessions", "get", session_id)
    assert session_id in listed and session_id in shown
    assert key not in listed + shown
    assert key[len("tws_") + 22 :] not in listed + shown


@pytest.mark.usefixtures("env")
def test_json_round_trip_and_the_key_authenticates(capsys: pytest.CaptureFixture[str]) -> None:
    """add → list → get → delete with --json; the printed key authenticates meanwhile."""
    added = run_json(capsys, "sessions", "add", "alice", "--attrs", '{"n": 1}', "--ttl", "60")
    assert set(added) == {"key", "id", "owner_id", "attrs", "created_at", "expires_at"}
    assert added["expires_at"] - added["created_at"] == pytest.approx(60)
    with Tokenware.from_env() as tw:
        identity = tw.authenticate("Bearer " + added["key"])
    assert (identity.subject, identity.token_id) == ("alice", added["id"])
    listed = run_json(capsys, "sessions", "list", "alice")
    assert [s["id"] for s in listed] == [added["id"]]
    assert "key" not in listed[0]
    got = run_json(capsys, "sessions", "get", added["id"])
    assert got["attrs"] == {"n": 1} and "key" not in got
    assert run_json(capsys, "sessions", "delete", added["id"]) == {"deleted": added["id"]}
    assert run_json(capsys, "sessions", "list", "alice") == []
    code, out, err = run(capsys, "sessions", "get", added["id"])
    assert (code, out) == (EXIT_NOT_FOUND, "")
    assert err.startswith("tokenware: not found:")


@pytest.mark.usefixtures("env")
def test_global_options_work_before_and_after_the_subcommand(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """--store and --json are accepted on either side of the subcommand."""
    other = f"sqlite:///{tmp_path / 'other.db'}"
    before = run_json(capsys, "--store", other, "sessions", "add", "bob")
    code, out, _ = run(capsys, "sessions", "list", "bob", "--store", other, "--json")
    assert code == EXIT_OK and [s["id"] for s in json.loads(out)] == [before["id"]]
    # The environment's store does not have it.
    assert run_json(capsys, "sessions", "list", "bob") == []
    assert (tmp_path / "other.db").exists()


@pytest.mark.usefixtures("env")
def test_list_of_unknown_owner_is_empty(capsys: pytest.CaptureFixture[str]) -> None:
    """Listing an owner with no sessions succeeds with empty output."""
    code, out, err = run(capsys, "sessions", "list", "nobody")
    assert (code, out) == (EXIT_OK, "")
    assert "no live sessions" in err


@pytest.mark.usefixtures("env")
def test_control_characters_in_stored_data_are_escaped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Human output escapes control characters from owner ids and attrs."""
    code, out, _ = run(capsys, "sessions", "add", "ev\x1b[2Jil", "--attrs", '{"x": "\\u001b"}')
    assert code == EXIT_OK
    assert "\x1b" not in out
    assert "ev\\x1b[2Jil" in out


@pytest.mark.usefixtures("env")
def test_reset_refuses_without_yes(capsys: pytest.CaptureFixture[str]) -> None:
    """sessions reset without --yes exits 2 and deletes nothing; with --yes it deletes."""
    added = run_json(capsys, "sessions", "add", "alice")
    handle = run_json(capsys, "hash", "make", "1")["handle"]
    code, out, err = run(capsys, "sessions", "reset")
    assert (code, out) == (EXIT_USAGE, "")
    assert "--yes" in err
    assert run_json(capsys, "sessions", "get", added["id"])["id"] == added["id"]
    assert run_json(capsys, "sessions", "reset", "--yes")["deleted"] >= 2
    assert run(capsys, "sessions", "get", added["id"])[0] == EXIT_NOT_FOUND
    assert run(capsys, "hash", "get", handle)[0] == EXIT_NOT_FOUND


# -- hash -------------------------------------------------------------------


@pytest.mark.usefixtures("env")
def test_hash_make_get_delete(capsys: pytest.CaptureFixture[str]) -> None:
    """hash make stores JSON, get prints it back, delete removes it."""
    code, out, _ = run(capsys, "hash", "make", '{"next": "/account"}', "--ttl", "600")
    assert code == EXIT_OK
    handle = out.strip()
    assert len(handle) == 22
    code, out, _ = run(capsys, "hash", "get", handle)
    assert (code, json.loads(out)) == (EXIT_OK, {"next": "/account"})
    assert run_json(capsys, "hash", "get", handle) == {
        "handle": handle,
        "value": {"next": "/account"},
    }
    assert run(capsys, "hash", "delete", handle)[0] == EXIT_OK
    assert run(capsys, "hash", "get", handle)[0] == EXIT_NOT_FOUND
    assert run(capsys, "hash", "delete", handle)[0] == EXIT_NOT_FOUND


@pytest.mark.usefixtures("env")
def test_hash_make_text_and_invalid_json(capsys: pytest.CaptureFixture[str]) -> None:
    """VALUE must be JSON unless --text stores it as a string."""
    code, out, err = run(capsys, "hash", "make", "hello")
    assert (code, out) == (EXIT_USAGE, "")
    assert "--text" in err
    assert_no_traceback(err)
    made = run_json(capsys, "hash", "make", "hello", "--text", "--ttl", "5")
    assert made["ttl"] == 5
    assert run_json(capsys, "hash", "get", made["handle"])["value"] == "hello"


# -- exit codes -------------------------------------------------------------


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize(
    "argv",
    [
        ("sessions", "get", "A" * 22),
        ("sessions", "get", "not-an-id"),
        ("sessions", "delete", "A" * 22),
        ("hash", "get", "A" * 22),
        ("hash", "delete", "nope"),
    ],
)
def test_not_found_exits_1(capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]) -> None:
    """An unknown id or handle exits 1 with a one-line message."""
    code, out, err = run(capsys, *argv)
    assert (code, out) == (EXIT_NOT_FOUND, "")
    assert err.startswith("tokenware: not found:") and err.count("\n") == 1


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize(
    "argv",
    [
        ("sessions", "add", "alice", "--attrs", "[1]"),
        ("sessions", "add", "alice", "--attrs", "{"),
        ("sessions", "add", "alice", "--ttl", "0"),
        ("sessions", "add", "alice", "--ttl", "soon"),
        ("sessions", "add", "alice", "--ttl", "inf"),
        ("sessions", "add", ""),
        ("sessions", "add", "x" * 513),
        ("hash", "make", "1", "--ttl", "-5"),
        ("sessions",),
        ("frobnicate",),
        (),
    ],
)
def test_usage_and_validation_errors_exit_2(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    """Bad usage and ValidationError exit 2 with a message and no traceback."""
    code, out, err = run(capsys, *argv)
    assert (code, out) == (EXIT_USAGE, "")
    assert err
    assert_no_traceback(err)


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TOKENWARE_STORE_URL", "bogus"),
        ("TOKENWARE_STORE_URL", "ftp://example.com/"),
        ("TOKENWARE_SESSION_TTL", "soon"),
        ("TOKENWARE_KEY_PREFIX", "bad prefix!"),
        ("TOKENWARE_JWT_ALGORITHM", "none"),
    ],
)
def test_configuration_errors_exit_2(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
) -> None:
    """A ConfigurationError from the environment exits 2 without a traceback."""
    monkeypatch.setenv(variable, value)
    code, out, err = run(capsys, "sessions", "list", "alice")
    assert (code, out) == (EXIT_USAGE, "")
    assert err.startswith("tokenware: error:")
    assert_no_traceback(err)


@pytest.mark.usefixtures("env")
def test_missing_secret_tells_the_user_to_run_keygen(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without TOKENWARE_SECRET_KEY, token commands exit 2 and point to keygen."""
    monkeypatch.delenv("TOKENWARE_SECRET_KEY")
    for argv in (("sessions", "list", "alice"), ("hash", "get", "x")):
        code, out, err = run(capsys, *argv)
        assert (code, out) == (EXIT_USAGE, "")
        assert "TOKENWARE_SECRET_KEY is not set" in err
        assert "tokenware keygen" in err


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize(
    "secret",
    ["too-short-but-secret-31-bytes!!", "base64:c2VjcmV0LXNob3J0LWJ1dC1oaWRkZW4=", "hex:zz"],
)
def test_bad_secret_exits_2_without_echoing_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    """A short or undecodable secret exits 2, suggests keygen, and is never printed."""
    monkeypatch.setenv("TOKENWARE_SECRET_KEY", secret)
    code, out, err = run(capsys, "sessions", "list", "alice")
    assert (code, out) == (EXIT_USAGE, "")
    assert "tokenware keygen" in err
    assert secret not in err and (secret.partition(":")[2] or secret) not in err
    assert base64.b64decode("c2VjcmV0LXNob3J0LWJ1dC1oaWRkZW4=").decode() not in err


@pytest.mark.usefixtures("env")
def test_locked_sqlite_store_exits_3(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A store locked by another writer (StoreUnavailable) exits 3."""
    monkeypatch.setenv("TOKENWARE_STORE_TIMEOUT", "0.05")
    assert run(capsys, "sessions", "list", "alice")[0] == EXIT_OK  # creates the schema
    holder = sqlite3.connect(tmp_path / "cli.db", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        code, out, err = run(capsys, "sessions", "add", "alice")
    finally:
        holder.close()
    assert (code, out) == (EXIT_STORE, "")
    assert err.startswith("tokenware: store error:")
    assert_no_traceback(err)


@pytest.mark.usefixtures("env")
def test_corrupt_sqlite_file_exits_3(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A file that is not a database (StoreError) exits 3."""
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not a sqlite database, not at all" * 10)
    code, out, err = run(capsys, "--store", f"sqlite:///{bad}", "sessions", "list", "alice")
    assert (code, out) == (EXIT_STORE, "")
    assert_no_traceback(err)


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (errors.NotFound("gone"), EXIT_NOT_FOUND),
        (errors.ValidationError("bad"), EXIT_USAGE),
        (errors.ConfigurationError("bad"), EXIT_USAGE),
        (errors.StoreUnavailable("down"), EXIT_STORE),
        (errors.StoreError("broken"), EXIT_STORE),
    ],
)
def test_each_error_class_maps_to_its_exit_code(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    error: errors.TokenwareError,
    expected: int,
) -> None:
    """NotFound → 1, ValidationError/ConfigurationError → 2, StoreError family → 3."""

    def fail(self: Sessions, id: str) -> None:
        raise error

    monkeypatch.setattr(Sessions, "get", fail)
    code, out, err = run(capsys, "sessions", "get", "A" * 22)
    assert (code, out) == (expected, "")
    assert error.detail in err and err.count("\n") == 1
    assert_no_traceback(err)


@pytest.mark.usefixtures("env")
def test_error_messages_never_contain_secrets(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even if an error detail quoted the secret key or a store password, it is redacted."""
    url = "redis://:hunter2-password@127.0.0.1:1/0"

    def fail(self: Sessions, owner_id: str) -> None:
        raise errors.StoreUnavailable(f"leaky {SECRET} {SECRET_BODY} {url}")

    monkeypatch.setattr(Sessions, "list", fail)
    monkeypatch.setenv("TOKENWARE_STORE_URL", "memory://")
    code, _, err = run(capsys, "--store", url, "sessions", "list", "alice")
    assert code == EXIT_STORE
    assert SECRET_BODY not in err and "hunter2-password" not in err
    assert "***" in err


@pytest.mark.usefixtures("env")
def test_unreachable_redis_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    """A Redis URL nobody listens on exits 3, and the URL's password is not printed."""
    pytest.importorskip("redis")
    url = "redis://:hunter2-password@127.0.0.1:1/0"
    code, out, err = run(capsys, "--store", url, "sessions", "list", "alice")
    assert (code, out) == (EXIT_STORE, "")
    assert "hunter2-password" not in err
    assert_no_traceback(err)


# -- Redis ------------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.usefixtures("env")
def test_redis_store_round_trip(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    redis_url: str,
    prefix: str,
) -> None:
    """The same commands work against Redis via --store (under a private key prefix)."""
    monkeypatch.setenv("TOKENWARE_KEY_PREFIX", prefix)
    added = run_json(capsys, "--store", redis_url, "sessions", "add", "alice", "--ttl", "60")
    listed = run_json(capsys, "--store", redis_url, "sessions", "list", "alice")
    assert [s["id"] for s in listed] == [added["id"]]
    assert run_json(capsys, "--store", redis_url, "sessions", "get", added["id"])["id"]
    handle = run_json(capsys, "--store", redis_url, "hash", "make", "[1, 2]")["handle"]
    assert run_json(capsys, "--store", redis_url, "hash", "get", handle)["value"] == [1, 2]
    run_json(capsys, "--store", redis_url, "sessions", "delete", added["id"])
    assert run(capsys, "--store", redis_url, "sessions", "get", added["id"])[0] == EXIT_NOT_FOUND
    assert run_json(capsys, "--store", redis_url, "sessions", "reset", "--yes")["deleted"] == 1
    assert run(capsys, "--store", redis_url, "hash", "get", handle)[0] == EXIT_NOT_FOUND


# -- real processes ---------------------------------------------------------


def installed_script() -> str:
    """The ``tokenware`` console script of this interpreter's environment."""
    beside = Path(sys.executable).parent / "tokenware"
    if beside.exists():
        return str(beside)
    found = shutil.which("tokenware")
    if found is None:
        pytest.fail("the tokenware script is not installed (pip install -e .)")
    return found


@pytest.mark.parametrize(
    "command",
    [
        pytest.param([sys.executable, "-m", "tokenware"], id="python-m"),
        pytest.param(["<script>"], id="console-script"),
    ],
)
def test_subprocess_add_list_get_delete(tmp_path: Path, command: list[str]) -> None:
    """A real process runs add → list → get → delete on a SQLite file."""
    if command == ["<script>"]:
        command = [installed_script()]
    env = clean_env({"TOKENWARE_STORE_URL": f"sqlite:///{tmp_path / 'p.db'}"})

    def cli(*argv: str, expect: int = EXIT_OK) -> str:
        done = subprocess.run(
            [*command, *argv], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == expect, done.stderr
        assert "Traceback" not in done.stderr
        return done.stdout

    missing = subprocess.run(
        [*command, "sessions", "list", "alice"], env=env, capture_output=True, text=True
    )
    assert missing.returncode == EXIT_USAGE and "tokenware keygen" in missing.stderr
    env["TOKENWARE_SECRET_KEY"] = cli("keygen").strip()
    added = json.loads(cli("sessions", "add", "alice", "--attrs", '{"a": 1}', "--json"))
    assert added["key"].startswith("tws_")
    listed = cli("sessions", "list", "alice")
    assert added["id"] in listed and added["key"] not in listed
    got = json.loads(cli("--json", "sessions", "get", added["id"]))
    assert got["owner_id"] == "alice" and got["attrs"] == {"a": 1}
    assert added["id"] in cli("sessions", "delete", added["id"])
    cli("sessions", "get", added["id"], expect=EXIT_NOT_FOUND)
    assert cli("version").startswith("tokenware ")
    assert (tmp_path / "p.db").exists()


# -- personal access tokens ----------------------------------------------------


@pytest.mark.usefixtures("env")
def test_pat_issue_list_show_update_revoke_restore_verify(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The pat group end to end in process; the token is printed only by issue."""
    code, out, err = run(
        capsys, "pat", "issue", "--owner", "ci-bot", "--role", "deploy", "--role", "read",
        "--expires", "90d", "--name", "ci",
    )  # fmt: skip
    assert code == EXIT_OK and "shown only this once" in err
    fields = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in out.splitlines())}
    token, token_id = fields["token"], fields["id"]
    assert token.startswith("twp_") and len(token) == 75 and fields["roles"] == "deploy read"
    listed = run_json(capsys, "pat", "list", "--owner", "ci-bot")
    assert [r["token_id"] for r in listed] == [token_id]
    assert run_json(capsys, "pat", "list", "--role", "nope") == []
    shown = run_json(capsys, "pat", "show", token_id)
    assert shown["expires_at"] - shown["created_at"] == pytest.approx(90 * 86400)
    updated = run_json(
        capsys, "pat", "update", token_id, "--add-role", "x", "--remove-role", "read"
    )
    assert updated["roles"] == ["deploy", "x"]
    verified = run_json(capsys, "pat", "verify", token)
    assert verified["valid"] and verified["record"]["owner"] == "ci-bot"
    assert run_json(capsys, "pat", "revoke", token_id)["revoked_at"] is not None
    code, out, _ = run(capsys, "pat", "verify", token)
    assert (code, out.strip()) == (EXIT_NOT_FOUND, "invalid: revoked")
    assert run_json(capsys, "pat", "restore", token_id)["revoked_at"] is None
    code, out, _ = run(capsys, "pat", "verify", token)
    assert code == EXIT_OK and out.startswith("valid")
    for argv in (("pat", "list"), ("pat", "show", token_id), ("--json", "pat", "list")):
        code, out, err = run(capsys, *argv)
        assert code == EXIT_OK and token not in out + err and token[26:69] not in out + err


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize(
    ("argv", "expect"),
    [
        (("pat", "show", "A" * 22), EXIT_NOT_FOUND),
        (("pat", "revoke", "nope"), EXIT_NOT_FOUND),
        (("pat", "verify", "twp_garbage"), EXIT_NOT_FOUND),
        (("pat", "issue"), EXIT_USAGE),
        (("pat", "issue", "--owner", "a", "--role", "Bad Role"), EXIT_USAGE),
        (("pat", "issue", "--owner", "a", "--expires", "soon"), EXIT_USAGE),
        (("pat", "update", "A" * 22), EXIT_USAGE),
        (("pat", "list", "--role", "Bad Role"), EXIT_USAGE),
        (("pat",), EXIT_USAGE),
    ],
)
def test_pat_exit_codes(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], expect: int
) -> None:
    code, _, err = run(capsys, *argv)
    assert code == expect
    assert "Traceback" not in err


def test_subprocess_pat_on_the_default_sqlite_file(tmp_path: Path) -> None:
    """A fresh directory: no store URL, so the embedded tokenware.db is used."""
    env = clean_env()

    def cli(*argv: str, expect: int = EXIT_OK) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "tokenware", *argv],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == expect, done.stderr
        assert "Traceback" not in done.stderr
        return done.stdout

    env["TOKENWARE_SECRET_KEY"] = cli("keygen").strip()
    issued = json.loads(cli("pat", "issue", "--owner", "alice", "--role", "read", "--json"))
    assert (tmp_path / "tokenware.db").exists()
    token, token_id = issued["token"], issued["token_id"]
    assert json.loads(cli("pat", "verify", token, "--json"))["valid"] is True
    listed = cli("pat", "list")
    assert token_id in listed and token not in listed
    cli("pat", "revoke", token_id)
    assert "revoked" in cli("pat", "verify", token, expect=EXIT_NOT_FOUND)
    db = (tmp_path / "tokenware.db").read_bytes()
    assert token[26:69].encode() not in db
