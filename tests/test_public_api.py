"""The public names of tokenware: sorted, present and documented."""

from __future__ import annotations

import importlib
import inspect
import types
import typing

import pytest

import tokenware

PUBLIC_MODULES = [
    "tokenware",
    "tokenware.config",
    "tokenware.errors",
    "tokenware.facade",
    "tokenware.identity",
    "tokenware.keys",
    "tokenware.sessions",
    "tokenware.testing",
    "tokenware.core.credentials",
    "tokenware.core.session",
]


def test_all_is_sorted_and_unique() -> None:
    assert tokenware.__all__ == sorted(tokenware.__all__)
    assert len(set(tokenware.__all__)) == len(tokenware.__all__)


def test_contract_names_of_design_section_2_are_exported() -> None:
    for name in ("Tokenware", "AsyncTokenware", "Identity", "errors", "KeyRing", "__version__"):
        assert name in tokenware.__all__, name


def test_every_exported_name_exists_and_is_documented() -> None:
    for name in tokenware.__all__:
        assert hasattr(tokenware, name), name
        obj = getattr(tokenware, name)
        if name == "__version__":
            assert isinstance(obj, str) and obj
            continue
        assert inspect.getdoc(obj), f"{name} has no docstring"


def _isort_style(name: str) -> tuple[int, str]:
    if len(name) > 1 and name.isupper():
        return (0, name)
    return (1, name) if name[:1].isupper() else (2, name)


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_public_modules_have_sorted_documented_all(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert inspect.getdoc(module), f"{module_name} has no module docstring"
    names = module.__all__
    # Plain sorted, or ruff's RUF022 "isort-style" (constants, classes, the rest).
    assert names in (sorted(names), sorted(names, key=_isort_style)), module_name
    for name in names:
        obj = getattr(module, name)
        if (
            isinstance(obj, (str, int, float, tuple, frozenset))
            or name.isupper()
            or typing.get_origin(obj) is not None
        ):
            continue  # constants and type aliases are documented by a comment
        assert inspect.getdoc(obj), f"{module_name}.{name} has no docstring"


def _public_members(cls: type) -> list[tuple[str, object]]:
    return [
        (name, member)
        for name, member in vars(cls).items()
        if not name.startswith("_") and (inspect.isfunction(member) or isinstance(member, property))
    ]


@pytest.mark.parametrize(
    "qualname",
    [
        "tokenware.facade.Tokenware",
        "tokenware.facade.AsyncTokenware",
        "tokenware.sessions.Sessions",
        "tokenware.sessions.AsyncSessions",
        "tokenware.keys.KeyRing",
        "tokenware.keys.RootKey",
        "tokenware.identity.Identity",
        "tokenware.identity.Anonymous",
        "tokenware.testing.FrozenClock",
    ],
)
def test_public_methods_are_documented(qualname: str) -> None:
    module_name, _, cls_name = qualname.rpartition(".")
    cls = getattr(importlib.import_module(module_name), cls_name)
    members = _public_members(cls)
    assert members, qualname
    for name, member in members:
        doc = member.__doc__ if not isinstance(member, property) else member.fget.__doc__  # type: ignore[union-attr]
        assert doc and doc.strip(), f"{qualname}.{name} has no docstring"


def test_sync_and_async_sessions_have_the_same_methods() -> None:
    from tokenware.sessions import AsyncSessions, Sessions

    sync = {n for n, m in vars(Sessions).items() if inspect.isfunction(m) and not n.startswith("_")}
    aio = {
        n for n, m in vars(AsyncSessions).items() if inspect.isfunction(m) and not n.startswith("_")
    }
    assert sync == aio
    for name in sync:
        assert inspect.iscoroutinefunction(getattr(AsyncSessions, name)), name
        assert inspect.signature(getattr(Sessions, name)) == inspect.signature(
            getattr(AsyncSessions, name)
        ).replace(return_annotation=inspect.signature(getattr(Sessions, name)).return_annotation)


def test_design_session_methods_exist() -> None:
    from tokenware.sessions import Sessions

    for name in (
        "add",
        "get",
        "get_by_key",
        "set_attrs",
        "delete",
        "delete_by_key",
        "list",
        "make_hash",
        "get_hash",
        "delete_hash",
    ):
        assert callable(getattr(Sessions, name)), name


def test_errors_is_the_errors_module() -> None:
    assert isinstance(tokenware.errors, types.ModuleType)
    assert tokenware.errors.__name__ == "tokenware.errors"
