"""The app the live tests serve with uvicorn (``asgi_app``) and gunicorn (``wsgi_app``).

Configured by ``TW_LIVE_REDIS_URL``: a Redis store with the family check on,
so every protected request needs the store; ``/api/`` is protected and
``/pub`` public.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _apps import asgi_echo, wsgi_echo

from tokenware import Tokenware, asgi, wsgi
from tokenware.testing import make_secret_key

logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)

tw = Tokenware(
    store=os.environ["TW_LIVE_REDIS_URL"],
    secret_key=make_secret_key(),
    jwt_check_family=True,
    store_timeout=0.3,
    store_connect_timeout=0.3,
)
options: dict[str, Any] = {"tokenware": tw, "protect": ["/api/"], "public": ["/pub"]}
asgi_app = asgi.TokenwareMiddleware(asgi_echo, **options)
wsgi_app = wsgi.TokenwareMiddleware(wsgi_echo, **options)
