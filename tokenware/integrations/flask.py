"""Flask integration: ``init_app``, ``TOKENWARE_*`` config keys, ``current_identity``.

::

    from flask import Flask
    from tokenware import requires
    from tokenware.integrations.flask import current_identity, init_app

    app = Flask(__name__)
    init_app(app)  # a Tokenware from app.config / the environment

    @app.get("/api/me")
    @requires("profile")
    def me():
        return {"user": current_identity.subject}

:func:`init_app` stores the :class:`~tokenware.Tokenware` instance in
``app.extensions["tokenware"]`` (where :func:`tokenware.requires` finds it)
and registers error handlers so a tokenware client error raised in a view
(an ``InvalidToken`` from ``tw.jwt.refresh``, a ``StoreUnavailable``...)
gets the same ``application/problem+json`` response as the middleware,
never a 500. It works with or without
:class:`tokenware.wsgi.TokenwareMiddleware`: with it, the identity the
middleware found is used; without it, decorators authenticate the
``Authorization`` header themselves.

Config keys (``app.config``, then the ``TOKENWARE_*`` environment):

=============================  ==============================================
``TOKENWARE_SECRET_KEY``       root secret (str with ``hex:``/``base64:``, or bytes)
``TOKENWARE_STORE_URL``        store URL (default ``sqlite:///tokenware.db``)
``TOKENWARE_ISSUER`` ...       every key of :func:`tokenware.config.settings_from_env`
``TOKENWARE_REALM``            ``WWW-Authenticate`` realm (default ``api``)
``TOKENWARE_PROTECT_ALL``      require a valid token on every view not marked
                               :func:`tokenware.exempt` (default ``False``)
=============================  ==============================================
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, current_app, request
from flask.typing import ResponseReturnValue
from werkzeug.local import LocalProxy

from tokenware.core.http import DEFAULT_REALM, error_response
from tokenware.decorators import RequestContext, _Requires, is_exempt
from tokenware.errors import ClientError, StoreError, TokenwareError
from tokenware.facade import Tokenware
from tokenware.identity import Anonymous, Identity

__all__ = ["current_identity", "get_identity", "get_tokenware", "init_app"]

_PREFIX = "TOKENWARE_"
_PROTECT_ALL = _Requires((), optional=False)


def init_app(app: Flask, tokenware: Tokenware | None = None) -> Tokenware:
    """Install tokenware on ``app`` and return the instance it uses.

    Args:
        app: the Flask app (works with the application-factory pattern).
        tokenware: the instance to use; by default one is built from the
            ``TOKENWARE_*`` keys of ``app.config``, falling back to the same
            variables in the environment.

    Raises:
        ConfigurationError: no secret key, or an invalid setting.
    """
    app.config.setdefault("TOKENWARE_REALM", DEFAULT_REALM)
    app.config.setdefault("TOKENWARE_PROTECT_ALL", False)
    if tokenware is None:
        tokenware = _from_config(app.config)
    app.extensions["tokenware"] = tokenware
    app.register_error_handler(ClientError, _handle_error)
    app.register_error_handler(StoreError, _handle_error)
    if app.config["TOKENWARE_PROTECT_ALL"]:
        app.before_request(_protect_all)
    return tokenware


def _from_config(config: Any) -> Tokenware:
    env = {k: v for k, v in os.environ.items() if k.startswith(_PREFIX)}
    overrides: dict[str, Any] = {}
    for key, value in config.items():
        if not key.startswith(_PREFIX) or value is None:
            continue
        if key == "TOKENWARE_SECRET_KEY" and isinstance(value, bytes):
            overrides["secret_key"] = value
        elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
            env[key] = str(value)
    return Tokenware.from_env(env, **overrides)


def get_tokenware() -> Tokenware:
    """The instance :func:`init_app` installed on the current app."""
    tw = current_app.extensions.get("tokenware")
    if tw is None:
        raise RuntimeError("tokenware is not installed on this app: call init_app(app)")
    return tw  # type: ignore[no-any-return]


def get_identity() -> Identity | Anonymous:
    """Who made the current request (``ANONYMOUS`` without credentials).

    Uses what the middleware or a decorator found; otherwise authenticates
    the ``Authorization`` header now (the result is kept for the request).

    Raises:
        InvalidRequest, InvalidToken, StoreUnavailable: the header was sent
            but does not authenticate (answered by the error handlers).
    """
    ctx = RequestContext("flask", request, request.environ, request.method, request.remote_addr)
    return ctx.identify()


#: The current request's identity, as a proxy: ``current_identity.subject``.
current_identity: Identity | Anonymous = LocalProxy(get_identity)  # type: ignore[assignment]


def _handle_error(exc: TokenwareError) -> ResponseReturnValue:
    reply = error_response(exc, realm=str(current_app.config.get("TOKENWARE_REALM", DEFAULT_REALM)))
    return current_app.response_class(reply.body, reply.status, list(reply.headers))


def _protect_all() -> ResponseReturnValue | None:
    if request.method == "OPTIONS" or request.endpoint is None:
        return None
    view = current_app.view_functions.get(request.endpoint)
    if view is None or is_exempt(view):
        return None
    ctx = RequestContext("flask", request, request.environ, request.method, request.remote_addr)
    try:
        _PROTECT_ALL.check(ctx)
    except (ClientError, StoreError) as exc:
        return _handle_error(exc)
    return None
