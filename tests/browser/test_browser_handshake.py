"""TWHS1 end to end in real headless Chromium, against live uvicorn and gunicorn.

The page loads ``/tokenware.js`` from the middleware, runs the handshake
with WebCrypto, calls a protected API, survives the token's expiry (both the
renewal before ``exp`` and the retry after a 401), fails cleanly with a
wrong CSRF token, and refuses replies altered in transit (a Playwright
route stands in for a modifying intermediary). Everything is on 127.0.0.1.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _browser_helpers import chromium, free_port, live_server

HERE = Path(__file__).resolve().parent
LIFE = 2  # seconds an access token is good for in the test app

pytestmark = pytest.mark.slow


def _command(kind: str, port: int) -> list[str]:
    if kind == "uvicorn":
        return [sys.executable, "-m", "uvicorn", "_browser_app:asgi_app", "--host", "127.0.0.1",
                "--port", str(port), "--log-level", "warning"]  # fmt: skip
    return [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", "1",
            "--log-level", "warning", "_browser_app:wsgi_app"]  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture(scope="module", params=["uvicorn", "gunicorn"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    kind = request.param
    pytest.importorskip(kind)
    port = free_port()
    env = {"TW_BROWSER_ORIGIN": f"http://127.0.0.1:{port}", "TW_BROWSER_LIFE": str(LIFE)}
    log = tmp_path_factory.mktemp("browser") / f"{kind}.log"
    with live_server(_command(kind, port), port, cwd=HERE, env=env, log=log) as base:
        yield base


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        response = page.goto(server + "/")
        assert response is not None and response.status == 200
        yield page
    finally:
        context.close()
    assert not errors


def test_page_loads_the_client_and_gets_the_csrf_cookie(page: Any, server: str) -> None:
    assert page.evaluate("typeof window.Tokenware.client") == "function"
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["tokenware_csrf"]["sameSite"] == "Strict"
    assert cookies["tokenware_csrf"]["httpOnly"] is False
    script = page.request.get(server + "/tokenware.js")
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert script.headers["etag"].startswith('"')


def test_module_load(page: Any, server: str) -> None:
    page.goto(server + "/module.html")
    page.wait_for_function("window.viaModule !== undefined", timeout=10_000)
    assert page.evaluate("window.viaModule") == "object"


def test_handshake_then_protected_api(page: Any) -> None:
    result = page.evaluate(
        """async () => {
            const tok = await Tokenware.handshake({ uri: "/tokenware/handshake" });
            const api = Tokenware.client({ uri: "/tokenware/handshake" });
            const res = await api.fetch("/api/data");
            const bare = await fetch("/api/data");
            const stored = localStorage.length + sessionStorage.length;
            return { tok, status: res.status, body: await res.json(), bare: bare.status,
                     handshakes: api.handshakes, stored };
        }"""
    )
    assert result["tok"]["token_type"] == "Bearer"
    assert result["tok"]["access_token"].count(".") == 2
    assert result["status"] == 200 and result["body"] == {"subject": "alice"}
    assert result["bare"] == 401  # the cookie alone is no credential
    assert result["handshakes"] == 1
    assert result["stored"] == 0  # memory only


def test_survives_token_expiry(page: Any) -> None:
    result = page.evaluate(
        """async (life) => {
            const wait = (s) => new Promise((r) => setTimeout(r, s * 1000));
            // renews before exp
            const api = Tokenware.client({ uri: "/tokenware/handshake" });
            const a = (await api.fetch("/api/data")).status;
            await wait(life + 0.5);
            const b = (await api.fetch("/api/data")).status;
            // a client whose clock never moves: the server's 401 triggers one new handshake
            const stale = Tokenware.client({ uri: "/tokenware/handshake", now: () => 0 });
            const c = (await stale.fetch("/api/data")).status;
            await wait(life + 0.5);
            const d = (await stale.fetch("/api/data")).status;
            return { a, b, renewed: api.handshakes, c, d, retried: stale.handshakes };
        }""",
        LIFE,
    )
    assert (result["a"], result["b"], result["renewed"]) == (200, 200, 2)
    assert (result["c"], result["d"], result["retried"]) == (200, 200, 2)


def test_wrong_csrf_token_fails_cleanly(page: Any) -> None:
    result = page.evaluate(
        """async () => {
            try {
                await Tokenware.handshake({ uri: "/tokenware/handshake", csrfToken: "wrong" });
                return "accepted";
            } catch (e) {
                return { name: e.name, code: e.code, status: e.status };
            }
        }"""
    )
    assert result == {"name": "HandshakeError", "code": "csrf_failed", "status": 403}


@pytest.mark.parametrize("field", [1, 2, 3, 4], ids=["epk", "nonce", "iv", "ciphertext"])
def test_tampered_reply_is_rejected(page: Any, field: int) -> None:
    seen: list[str] = []

    def tamper(route: Any) -> None:
        response = route.fetch()
        headers = dict(response.headers)
        parts = headers["tokenware-handshake"].split(".")
        value = parts[field]
        middle = len(value) // 2
        parts[field] = value[:middle] + ("A" if value[middle] != "A" else "B") + value[middle + 1 :]
        headers["tokenware-handshake"] = ".".join(parts)
        seen.append(headers["tokenware-handshake"])
        route.fulfill(response=response, headers=headers)

    page.route("**/tokenware/handshake", tamper)
    result = page.evaluate(
        """async () => {
            try {
                await Tokenware.handshake({ uri: "/tokenware/handshake" });
                return "accepted";
            } catch (e) {
                return { name: e.name, code: e.code };
            }
        }"""
    )
    assert len(seen) == 1
    assert result["name"] == "HandshakeError"
    assert result["code"] in ("tampered_reply", "invalid_reply")
    if field in (3, 4):
        assert result["code"] == "tampered_reply"
