"""Framework integrations, each imported on its own and only when used.

* :mod:`tokenware.integrations.flask`: ``init_app(app)``, ``TOKENWARE_*``
  config keys, ``current_identity``, error handlers.
* :mod:`tokenware.integrations.starlette`: an ``AuthenticationBackend`` for
  Starlette's ``AuthenticationMiddleware`` and its ``on_error``.
* :mod:`tokenware.integrations.fastapi`: dependencies (``Authenticated``,
  ``OptionalIdentity``) that appear as an HTTP bearer scheme in OpenAPI.

Importing :mod:`tokenware` or this package never imports Flask, Starlette or
FastAPI.
"""

from __future__ import annotations

__all__: list[str] = []
