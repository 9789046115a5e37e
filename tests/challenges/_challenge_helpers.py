"""Helpers shared by the challenge tests (importable, unlike a conftest)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import _support
import pytest

from tokenware import Tokenware
from tokenware._drive import run_sync
from tokenware.core.flow import Flow
from tokenware.errors import StoreError

Factory = Callable[..., Tokenware]


class Counter:
    """Runs challenge flows on the sync face and records every store operation."""

    def __init__(self, tw: Tokenware) -> None:
        self.tw = tw
        self.rules = tw._challenge_rules
        self.ops: list[Any] = []

    def run(self, flow: Flow[Any]) -> Any:
        def counting() -> Flow[Any]:
            try:
                op = next(flow)
                while True:
                    self.ops.append(op)
                    try:
                        result = yield op
                    except StoreError as exc:
                        op = flow.throw(exc)
                        continue
                    op = flow.send(result)
            except StopIteration as stop:
                return stop.value

        return run_sync(counting(), self.tw.stores.sync)


def store_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh store of ``backend`` (Redis: the shared test server)."""
    return _support.store_url(backend, request, tmp_path, "challenges")
