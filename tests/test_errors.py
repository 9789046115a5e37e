"""The exception tree of ``tokenware.errors`` matches DESIGN.md §2 and §3."""

from __future__ import annotations

import inspect

import pytest

from tokenware import errors as e

# (class, parent, status_code or None, code, WWW-Authenticate error parameter)
TREE: list[tuple[type[e.TokenwareError], type[BaseException], int | None, str, str | None]] = [
    (e.ConfigurationError, e.TokenwareError, None, "configuration_error", None),
    (e.ValidationError, e.TokenwareError, None, "validation_error", None),
    (e.AuthenticationError, e.ClientError, 401, "unauthorized", None),
    (e.MissingCredentials, e.AuthenticationError, 401, "missing_credentials", None),
    (e.InvalidToken, e.AuthenticationError, 401, "invalid_token", "invalid_token"),
    (e.ExpiredToken, e.InvalidToken, 401, "invalid_token", "invalid_token"),
    (e.RevokedToken, e.InvalidToken, 401, "invalid_token", "invalid_token"),
    (e.RefreshTokenNotFound, e.InvalidToken, 401, "invalid_token", "invalid_token"),
    (e.TokensMismatch, e.InvalidToken, 401, "invalid_token", "invalid_token"),
    (e.RefreshTokenReused, e.InvalidToken, 401, "invalid_token", "invalid_token"),
    (e.InvalidRequest, e.ClientError, 400, "invalid_request", "invalid_request"),
    (e.PermissionDenied, e.ClientError, 403, "forbidden", None),
    (e.InsufficientScope, e.PermissionDenied, 403, "insufficient_scope", "insufficient_scope"),
    (e.CsrfFailed, e.PermissionDenied, 403, "csrf_failed", None),
    (e.OriginRejected, e.PermissionDenied, 403, "origin_rejected", None),
    (e.HandshakeError, e.ClientError, 400, "invalid_handshake", None),
    (e.NotFound, e.ClientError, 404, "not_found", None),
    (e.Conflict, e.ClientError, 409, "conflict", None),
    (e.HandshakeReplayed, e.Conflict, 409, "handshake_replayed", None),
    (e.Throttled, e.ClientError, 429, "rate_limited", None),
    (e.StoreError, e.TokenwareError, 503, "store_error", None),
    (e.StoreUnavailable, e.StoreError, 503, "store_unavailable", None),
]


@pytest.mark.parametrize(("cls", "parent", "status", "code", "www"), TREE, ids=lambda x: str(x))
def test_tree_status_and_codes(
    cls: type[e.TokenwareError],
    parent: type[BaseException],
    status: int | None,
    code: str,
    www: str | None,
) -> None:
    assert issubclass(cls, parent)
    assert issubclass(cls, e.TokenwareError)
    assert cls.code == code
    if status is not None:
        assert cls.status_code == status  # type: ignore[attr-defined]
    if issubclass(cls, e.ClientError):
        assert cls.www_authenticate_error == www


def test_client_errors_and_server_errors_do_not_mix() -> None:
    assert not issubclass(e.StoreError, e.ClientError)
    assert not issubclass(e.ConfigurationError, e.ClientError)
    assert not issubclass(e.ValidationError, e.ClientError)
    assert issubclass(e.ValidationError, ValueError)
    assert not issubclass(e.NotFound, e.AuthenticationError)
    assert not issubclass(e.InvalidRequest, e.AuthenticationError)
    assert not issubclass(e.HandshakeError, e.AuthenticationError)


def test_every_name_in_the_tree_is_exported_and_the_docstring_draws_it() -> None:
    classes = {
        name
        for name, obj in vars(e).items()
        if inspect.isclass(obj) and issubclass(obj, e.TokenwareError)
    }
    assert classes == set(e.__all__)
    assert e.__doc__ is not None
    for name in classes:
        assert name in e.__doc__, name


def test_invalid_token_reasons_are_indistinguishable_to_a_client() -> None:
    # Expired, revoked, unknown, mismatched and reused tokens: same status,
    # code, title and WWW-Authenticate error; only ``detail`` differs.
    reasons = [
        e.InvalidToken,
        e.ExpiredToken,
        e.RevokedToken,
        e.RefreshTokenNotFound,
        e.TokensMismatch,
        e.RefreshTokenReused,
    ]
    public = {(c.status_code, c.code, c.title, c.www_authenticate_error) for c in reasons}
    assert len(public) == 1


def test_detail_is_kept_and_defaults_to_the_title() -> None:
    exc = e.InvalidToken("signature mismatch for kid k1")
    assert exc.detail == "signature mismatch for kid k1"
    assert str(exc) == "signature mismatch for kid k1"
    plain = e.NotFound()
    assert plain.detail == e.NotFound.title
    assert str(plain) == "Not found"


def test_insufficient_scope_carries_the_required_scopes() -> None:
    exc = e.InsufficientScope("needs reports:read", scopes=("reports:read",))
    assert exc.scopes == ("reports:read",)
    assert e.InsufficientScope().scopes == ()


@pytest.mark.parametrize("cls", [e.Throttled, e.StoreUnavailable])
@pytest.mark.parametrize(
    ("given", "expected"),
    [(0, 1), (-5, 1), (1, 1), (2.0, 2), (2.1, 3), (2.7, 3), (59.999, 60), (float("nan"), 1)],
)
def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one(
    cls: type[e.Throttled] | type[e.StoreUnavailable], given: float, expected: int
) -> None:
    exc = cls("slow down", retry_after=given)
    assert exc.retry_after == expected
    assert isinstance(exc.retry_after, int)
    assert cls().retry_after == 1


def test_every_public_error_class_has_a_docstring() -> None:
    for name in e.__all__:
        obj = getattr(e, name)
        assert inspect.getdoc(obj), name
        assert obj.__doc__ is not None and obj.__doc__.strip(), name
