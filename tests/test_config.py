"""Settings are validated once, at construction, with ConfigurationError."""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from tokenware import KeyRing, Tokenware
from tokenware.config import Settings, parse_secret, settings_from_env
from tokenware.errors import ConfigurationError
from tokenware.stores import store_from_url
from tokenware.testing import make_secret_key

SECRET = make_secret_key("test-config")


def build(**kwargs: Any) -> Tokenware:
    kwargs.setdefault("store", "memory://")
    kwargs.setdefault("secret_key", SECRET)
    return Tokenware(**kwargs)


def test_defaults() -> None:
    tw = build()
    s = tw.settings
    assert (s.jwt_algorithm, s.key_prefix, s.issuer, s.audience) == ("HS256", "tw", None, None)
    assert s.session_ttl == 30 * 24 * 3600
    assert s.store_timeout == 0.5


@pytest.mark.parametrize("secret", [b"", b"x" * 31, "y" * 31, "é" * 15])
def test_short_secrets_are_refused(secret: bytes | str) -> None:
    with pytest.raises(ConfigurationError, match="32 bytes"):
        build(secret_key=secret)


@pytest.mark.parametrize("secret", [b"x" * 32, "y" * 32, "é" * 16, b"\x00" * 64])
def test_secrets_of_32_bytes_or_more_are_accepted(secret: bytes | str) -> None:
    assert build(secret_key=secret).sessions.add("a").key


@pytest.mark.parametrize("secret", [12345, ["x" * 32], bytearray(b"x" * 32)])
def test_secret_of_the_wrong_type_is_refused(secret: Any) -> None:
    with pytest.raises(ConfigurationError):
        build(secret_key=secret)


def test_secret_or_keys_is_required_but_not_both() -> None:
    with pytest.raises(ConfigurationError, match="secret_key is required"):
        Tokenware(store="memory://")
    with pytest.raises(ConfigurationError, match="not both"):
        Tokenware(store="memory://", secret_key=SECRET, keys=KeyRing.from_secret(SECRET))


@pytest.mark.parametrize("algorithm", ["none", "None", "hs256", "RS256", "HS512", "", "ES256K"])
def test_unknown_jwt_algorithms_are_refused(algorithm: str) -> None:
    with pytest.raises(ConfigurationError, match="jwt_algorithm"):
        build(jwt_algorithm=algorithm)


@pytest.mark.parametrize("algorithm", ["HS256", "ES256", "EdDSA"])
def test_documented_jwt_algorithms_are_accepted(algorithm: str) -> None:
    assert build(jwt_algorithm=algorithm).settings.jwt_algorithm == algorithm


@pytest.mark.parametrize(
    "prefix", ["", "a:b", "a b", "x" * 65, "{tag}", "*", "a?", "[x]", "é", "a\n", None, 5]
)
def test_bad_key_prefixes_are_refused(prefix: Any) -> None:
    with pytest.raises(ConfigurationError, match="key_prefix"):
        build(key_prefix=prefix)


@pytest.mark.parametrize("prefix", ["tw", "my-app.tokens_v2", "x" * 64, "A"])
def test_good_key_prefixes_are_accepted(prefix: str) -> None:
    assert build(key_prefix=prefix).settings.key_prefix == prefix


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("session_ttl", 0),
        ("session_ttl", -1),
        ("session_ttl", float("nan")),
        ("session_ttl", float("inf")),
        ("session_ttl", True),
        ("session_ttl", "3600"),
        ("session_ttl", 1e18),
        ("store_timeout", 0),
        ("store_timeout", 61),
        ("store_timeout", float("inf")),
        ("store_connect_timeout", -0.1),
        ("store_connect_timeout", 120),
    ],
)
def test_bad_durations_are_refused(name: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=name):
        build(**{name: value})


@pytest.mark.parametrize(("name", "value"), [("issuer", ""), ("audience", ""), ("issuer", 5)])
def test_empty_issuer_or_audience_is_refused(name: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=name):
        build(**{name: value})


def test_clock_and_random_must_be_callable() -> None:
    with pytest.raises(ConfigurationError, match="clock"):
        build(clock=1_800_000_000.0)
    with pytest.raises(ConfigurationError, match="random"):
        build(random=b"not random")


@pytest.mark.parametrize(
    "store", [123, None, "", "tokenware.db", "nope://x", "postgres://db/x", "redis//x"]
)
def test_bad_stores_are_configuration_errors(store: Any) -> None:
    with pytest.raises(ConfigurationError):
        build(store=store)


def test_a_store_pair_is_accepted() -> None:
    pair = store_from_url("memory://")
    tw = build(store=pair)
    assert tw.stores is pair


def test_settings_are_frozen_and_keyword_only() -> None:
    settings = build().settings
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.key_prefix = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        Settings("memory://", KeyRing.from_secret(SECRET))  # type: ignore[misc]
    with pytest.raises(ConfigurationError, match="keys"):
        Settings(store="memory://", keys=SECRET)  # type: ignore[arg-type]


def test_secrets_never_appear_in_reprs() -> None:
    secret = b"S" * 40
    tw = build(secret_key=secret, jwt_key=b"J" * 40)
    for text in (repr(tw), repr(tw.settings), repr(tw.settings.keys), str(tw.settings)):
        assert "SSSS" not in text
        assert "JJJJ" not in text


# -- environment -----------------------------------------------------------------


def test_parse_secret_prefixes() -> None:
    raw = bytes(range(40))
    assert parse_secret("base64:" + base64.b64encode(raw).decode()) == raw
    assert parse_secret("hex:" + raw.hex()) == raw
    assert parse_secret("plain text secret") == b"plain text secret"
    assert parse_secret("ünï") == "ünï".encode()


@pytest.mark.parametrize("text", ["base64:@@@@", "base64:abc", "hex:zz", "hex:abc"])
def test_parse_secret_rejects_bad_encodings_without_echoing_them(text: str) -> None:
    with pytest.raises(ConfigurationError, match="TOKENWARE_SECRET_KEY") as info:
        parse_secret(text)
    assert text.split(":", 1)[1] not in str(info.value)


def test_from_env_reads_every_variable() -> None:
    raw = make_secret_key("env")
    env = {
        "TOKENWARE_STORE_URL": "memory://",
        "TOKENWARE_SECRET_KEY": "base64:" + base64.b64encode(raw).decode(),
        "TOKENWARE_ISSUER": "https://api.example.com",
        "TOKENWARE_AUDIENCE": "api",
        "TOKENWARE_JWT_ALGORITHM": "HS256",
        "TOKENWARE_KEY_PREFIX": "envtw",
        "TOKENWARE_SESSION_TTL": "60",
        "TOKENWARE_STORE_TIMEOUT": "1.5",
        "TOKENWARE_STORE_CONNECT_TIMEOUT": "2",
        "UNRELATED": "ignored",
    }
    tw = Tokenware.from_env(env)
    s = tw.settings
    assert s.issuer == "https://api.example.com"
    assert s.audience == "api"
    assert s.key_prefix == "envtw"
    assert (s.session_ttl, s.store_timeout, s.store_connect_timeout) == (60.0, 1.5, 2.0)
    assert tw.stores.url == "memory://"
    session = tw.sessions.add("alice")
    assert session.expires_at == session.created_at + 60


@pytest.mark.parametrize("encode", ["base64", "hex"])
def test_from_env_encoded_secret_is_the_same_key_as_the_raw_bytes(encode: str) -> None:
    raw = bytes(range(200, 240))
    text = base64.b64encode(raw).decode() if encode == "base64" else raw.hex()
    pair = store_from_url("memory://")
    from_env = Tokenware.from_env({"TOKENWARE_SECRET_KEY": f"{encode}:{text}"}, store=pair)
    direct = Tokenware(store=pair, secret_key=raw)
    s = from_env.sessions.add("alice")
    assert s.key is not None
    assert direct.sessions.get_by_key(s.key).id == s.id


def test_from_env_reads_os_environ_and_overrides_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENWARE_SECRET_KEY", "e" * 32)
    monkeypatch.setenv("TOKENWARE_STORE_URL", "memory://")
    monkeypatch.setenv("TOKENWARE_KEY_PREFIX", "fromenv")
    tw = Tokenware.from_env(key_prefix="override")
    assert tw.settings.key_prefix == "override"
    assert Tokenware.from_env().settings.key_prefix == "fromenv"


def test_from_env_default_store_is_sqlite_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    tw = Tokenware.from_env({"TOKENWARE_SECRET_KEY": "d" * 32})
    try:
        tw.sessions.add("alice")
        assert (tmp_path / "tokenware.db").exists()
    finally:
        tw.close()


def test_from_env_without_a_secret_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="TOKENWARE_SECRET_KEY"):
        Tokenware.from_env({"TOKENWARE_STORE_URL": "memory://"})
    with pytest.raises(ConfigurationError, match="TOKENWARE_SECRET_KEY"):
        Tokenware.from_env({"TOKENWARE_STORE_URL": "memory://", "TOKENWARE_SECRET_KEY": ""})


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("TOKENWARE_SESSION_TTL", "abc"),
        ("TOKENWARE_SESSION_TTL", "inf"),
        ("TOKENWARE_SESSION_TTL", "nan"),
        ("TOKENWARE_SESSION_TTL", "-5"),
        ("TOKENWARE_STORE_TIMEOUT", "1e9"),
        ("TOKENWARE_JWT_ALGORITHM", "none"),
        ("TOKENWARE_KEY_PREFIX", "bad prefix"),
        ("TOKENWARE_SECRET_KEY", "short"),
        ("TOKENWARE_SECRET_KEY", "hex:xyz"),
        ("TOKENWARE_STORE_URL", "ftp://x"),
    ],
)
def test_from_env_bad_values_are_configuration_errors(var: str, value: str) -> None:
    env = {"TOKENWARE_STORE_URL": "memory://", "TOKENWARE_SECRET_KEY": "s" * 32, var: value}
    with pytest.raises(ConfigurationError):
        Tokenware.from_env(env)


def test_settings_from_env_skips_empty_values() -> None:
    kwargs = settings_from_env({"TOKENWARE_ISSUER": "", "TOKENWARE_SESSION_TTL": ""})
    assert kwargs == {}
