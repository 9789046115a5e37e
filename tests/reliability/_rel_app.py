"""The app the reliability tests serve with uvicorn (``asgi_app``) and gunicorn (``wsgi_app``).

Configured by the environment, so the test process can build a ``Tokenware``
over the same store and keys to issue, revoke and inspect credentials:

* ``TW_REL_STORE``: the store URL (``redis://``, ``redis+cluster://``, ``sqlite:///``);
* ``TW_REL_SECRET``: the root secret, hex;
* ``TW_REL_PREFIX``: the key prefix;
* ``TW_REL_TIMEOUT``: ``store_timeout`` and ``store_connect_timeout`` in seconds.

Routes: ``/api/...`` is protected (JWTs are checked against their refresh
family, so every credential kind needs the store) and throttled by two rules:
``/api/`` at a rate never reached (so every protected request also writes to
the store, which is what a SQLite write lock blocks) and ``/api/limited`` at
3 per hour per subject (the tests exhaust it and check it stays exhausted).
``/pub`` is public. The app answers JSON naming the identity's subject, so a
reply meant for another request would show.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable
from typing import Any

from tokenware import ThrottleRule, Tokenware, asgi, wsgi
from tokenware.identity import Identity

logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

#: The rate of ``/api/limited`` (per subject).
LIMITED_RATE = "3/hour"

tw = Tokenware(
    store=os.environ["TW_REL_STORE"],
    secret_key=bytes.fromhex(os.environ["TW_REL_SECRET"]),
    key_prefix=os.environ["TW_REL_PREFIX"],
    jwt_check_family=True,
    store_timeout=float(os.environ["TW_REL_TIMEOUT"]),
    store_connect_timeout=float(os.environ["TW_REL_TIMEOUT"]),
)

rules = [
    ThrottleRule("1000000/hour", key="subject_or_address", prefix="/api/", name="every"),
    ThrottleRule(LIMITED_RATE, key="subject", prefix="/api/limited", name="limited"),
]
options: dict[str, Any] = {
    "tokenware": tw,
    "protect": ["/api/"],
    "public": ["/pub"],
    "throttle": rules,
}


def _body(identity: object, path: str) -> bytes:
    subject = identity.subject if isinstance(identity, Identity) else None
    return json.dumps({"path": path, "subject": subject}).encode()


def wsgi_echo(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    body = _body(environ.get("tokenware.identity"), environ["PATH_INFO"])
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


async def asgi_echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":  # lifespan: nothing to set up
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = _body(scope.get("tokenware.identity"), scope["path"])
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


asgi_app = asgi.TokenwareMiddleware(asgi_echo, **options)
wsgi_app = wsgi.TokenwareMiddleware(wsgi_echo, **options)
