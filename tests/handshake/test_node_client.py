"""tokenware.js under Node: unit tests against Python vectors, and end to end against respond().

Without ``node`` these skip locally and FAIL under ``CI=true`` (``need``).
The end-to-end server listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from _hs_helpers import ORIGIN, make_tw
from _support import need

from tokenware import errors
from tokenware.testing import FrozenClock

ROOT = Path(__file__).resolve().parents[2]
JS_DIR = ROOT / "tests" / "js"


def node() -> str:
    path = shutil.which("node")
    if path is None:
        need("node is not on PATH (Node >= 20 runs the tokenware.js tests)")
    assert path is not None
    return path


def test_vectors_file_is_current() -> None:
    sys.path.insert(0, str(JS_DIR))
    try:
        import make_vectors
    finally:
        sys.path.remove(str(JS_DIR))
    committed = json.loads((JS_DIR / "vectors.json").read_text("utf-8"))
    assert committed == json.loads(json.dumps(make_vectors.build())), (
        "tests/js/vectors.json is stale: run .venv/bin/python tests/js/make_vectors.py"
    )


def test_node_unit_tests() -> None:
    proc = subprocess.run(
        [node(), "--test", "tests/js"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "# fail 0" in proc.stdout


class _App:
    def __init__(self) -> None:
        self.clock = FrozenClock()
        self.tw = make_tw("memory://", self.clock, "e2e", session_rate=None, address_rate=None)
        self.csrf = self.tw.handshake.issue_csrf()
        self.unauthorized = 0
        self.lock = threading.Lock()


def _handler(app: _App) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

        def _send(self, status: int, body: bytes, headers: Sequence[tuple[str, str]] = ()) -> None:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/admin/now":
                self._send(200, str(int(app.clock())).encode())
            elif url.path == "/admin/unauthorized":
                self._send(200, str(app.unauthorized).encode())
            elif url.path == "/api/me":
                try:
                    ident = app.tw.authenticate(self.headers.get("Authorization"))
                except errors.ClientError as exc:
                    with app.lock:
                        app.unauthorized += 1
                    self._send(exc.status_code, json.dumps({"error": exc.code}).encode())
                    return
                self._send(200, json.dumps({"sub": ident.subject}).encode())
            else:
                self._send(404, b"{}")

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            if url.path == "/admin/advance":
                app.clock.advance(float(query["s"][0]))
                self._send(200, b"{}")
                return
            if url.path != "/tokenware/handshake":
                self._send(404, b"{}")
                return
            cookie = None
            for part in (self.headers.get("Cookie") or "").split(";"):
                name, _, value = part.strip().partition("=")
                if name == "tokenware_csrf":
                    cookie = value
            try:
                reply = app.tw.handshake.respond(
                    self.headers.get("Tokenware-Handshake"),
                    csrf_token=self.headers.get("X-CSRF-Token"),
                    csrf_cookie=cookie,
                    origin=self.headers.get("Origin"),
                    payload=lambda: app.tw.jwt.issue("alice"),
                    delivery=query.get("delivery", [None])[0],
                )
            except errors.ClientError as exc:
                self._send(exc.status_code, json.dumps({"error": exc.code}).encode())
                return
            headers = reply.headers
            if query.get("tamper"):
                # One ciphertext character away from the end: all its 6 bits are
                # data, so the value stays canonical and only AES-GCM can notice.
                value = dict(headers)["Tokenware-Handshake"]
                swap = "A" if value[-10] != "A" else "B"
                headers = [(n, v) for n, v in headers if n != "Tokenware-Handshake"]
                headers.append(("Tokenware-Handshake", value[:-10] + swap + value[-9:]))
            self._send(reply.status, reply.body, headers)

    return Handler


@pytest.fixture
def server() -> Iterator[tuple[str, _App]]:
    app = _App()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(app))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", app
    finally:
        httpd.shutdown()
        httpd.server_close()
        app.tw.close()


def test_real_tokenware_js_against_respond_end_to_end(server: tuple[str, _App]) -> None:
    base, app = server
    env = {**os.environ, "TW_BASE": base, "TW_CSRF": app.csrf, "TW_ORIGIN": ORIGIN}
    env.pop("HTTP_PROXY", None)
    env.pop("http_proxy", None)
    proc = subprocess.run(
        [node(), str(JS_DIR / "e2e_client.mjs")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert results == {
        "header": True,
        "body": True,
        "refusals": True,
        "tampered": True,
        "client": True,
    }
