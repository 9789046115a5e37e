"""What a refusal must look like: exactly :func:`tokenware.core.http.error_response`."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tokenware.core.http import error_response
from tokenware.errors import TokenwareError


def assert_refusal(response: httpx.Response, error: TokenwareError, realm: str = "api") -> None:
    """``response`` is the contract's response for ``error``: status, headers, body."""
    expected = error_response(error, realm=realm)
    assert response.status_code == expected.status, response.text
    assert response.content == expected.body
    got = [(k.lower(), v) for k, v in response.headers.multi_items()]
    for name, value in expected.headers:
        assert (name.lower(), value) in got, (name, value, got)
    # No second copy of a contract header.
    for name, _ in expected.headers:
        assert sum(1 for k, _ in got if k == name.lower()) == 1, name


class ASGIClient:
    """A synchronous client over ``httpx.ASGITransport`` (one event loop per request).

    Starlette's ``TestClient`` wants the ``httpx2`` package; this needs only httpx.
    """

    def __init__(self, app: Any, base_url: str = "http://testserver") -> None:
        self.app = app
        self.base_url = base_url

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, client=("127.0.0.1", 50000))
            async with httpx.AsyncClient(transport=transport, base_url=self.base_url) as c:
                return await c.request(method, url, **kwargs)

        return asyncio.run(send())

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def __enter__(self) -> ASGIClient:
        return self

    def __exit__(self, *exc: object) -> None:
        pass
