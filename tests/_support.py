"""Helpers shared by test modules.

Test modules import from here, never ``from conftest import ...``: with
several ``conftest.py`` files in the tree the name ``conftest`` means
whichever one was imported first, so such imports break depending on order.
"""

from __future__ import annotations

import os

import pytest

__all__ = ["IN_CI", "need"]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(reason: str) -> None:
    """Skip locally, fail in CI: a missing dependency must never pass CI."""
    if IN_CI:
        pytest.fail(f"required for CI: {reason}", pytrace=False)
    pytest.skip(reason)
