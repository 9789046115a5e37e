"""Fixtures for the framework tests: a Tokenware on the memory store and its tokens."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tokenware import Tokenware

SECRET = b"integration tests root secret, 32+ bytes"


@pytest.fixture
def tw() -> Iterator[Tokenware]:
    """A Tokenware over a fresh memory store."""
    with Tokenware(store="memory://", secret_key=SECRET) as instance:
        yield instance


@pytest.fixture
def reader(tw: Tokenware) -> str:
    """A personal access token for alice with the role ``reports:read``."""
    return tw.pats.issue("alice", roles=["reports:read"]).token


@pytest.fixture
def plain(tw: Tokenware) -> str:
    """A session token for bob: valid, without any scope."""
    return tw.sessions.add("bob").key
