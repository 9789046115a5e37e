"""Per-route decorators: :func:`requires`, :func:`throttle` and :func:`exempt`.

The middleware authenticates; decorators authorize. One decorator works on
sync and async views, in Flask and in Starlette:

- **sync or async** is decided once, at decoration time, from the view
  itself (a coroutine function gets an ``async def`` wrapper, anything else a
  plain one), so Flask and Starlette keep seeing the kind of view they got;
- **which framework** is found per request: a Starlette ``Request`` (or
  ``WebSocket``) among the view's arguments, whatever its parameter is called
  (Starlette's own ``@requires`` needs a parameter literally named
  ``request``), or else Flask's request context.

The identity comes from what the middleware stored
(``environ["tokenware.identity"]`` / ``scope["tokenware.identity"]``). When
no middleware ran, or it let the path through without looking at the
header, the decorator authenticates the ``Authorization`` header itself with
the :class:`~tokenware.Tokenware` instance it finds in
``environ["tokenware"]`` / ``scope["tokenware"]``, in Flask's
``app.extensions["tokenware"]`` (see :mod:`tokenware.integrations.flask`),
or in Starlette's ``app.state.tokenware``.

A refusal is answered with exactly the middleware's response (built by
:mod:`tokenware.core.http`): 401 with a bare challenge, 400
``invalid_request``, 401 ``invalid_token``, 403 ``insufficient_scope``, 503
with ``Retry-After`` when the store is down; ``OPTIONS`` passes through.

Extension hook
--------------
Every decorator here is a :class:`Guard` passed to :func:`guard`. A guard has
a sync ``check`` and an async ``acheck``; each receives a
:class:`RequestContext`, may raise a :class:`~tokenware.errors.ClientError`
or :class:`~tokenware.errors.StoreError` (turned into the contract's
response) and returns headers to add to the view's response (for example
``RateLimit``). Stacked tokenware decorators share one wrapper and run outer
first, so ``@requires`` above ``@throttle`` authenticates before it counts.
:func:`throttle` is one more guard: it runs the middleware's rule engine
(:class:`tokenware.core.http_throttle.RuleSet`) with the sync or the async
driver and raises :class:`~tokenware.errors.Throttled`.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, cast

from tokenware.core.http import DEFAULT_REALM
from tokenware.errors import (
    ClientError,
    InsufficientScope,
    InvalidRequest,
    MissingCredentials,
    StoreError,
    TokenwareError,
)
from tokenware.identity import ANONYMOUS, Anonymous, Identity

if TYPE_CHECKING:
    from tokenware.core.http import RequestView
    from tokenware.core.http import Response as HttpResponse
    from tokenware.core.http_throttle import KeyFunc, RuleSet, ThrottleRule
    from tokenware.core.throttle import Rate, Rule
    from tokenware.facade import Tokenware

__all__ = ["Guard", "RequestContext", "exempt", "guard", "is_exempt", "requires", "throttle"]

F = TypeVar("F", bound=Callable[..., Any])
Headers = Sequence[tuple[str, str]]

#: Where the middleware and the integrations keep things, in environ or scope.
IDENTITY_KEY = "tokenware.identity"
INSTANCE_KEY = "tokenware"
REALM_KEY = "tokenware.realm"
TRUSTED_PROXIES_KEY = "tokenware.trusted_proxies"
ERROR_KEY = "tokenware.error"

_EXEMPT_ATTR = "__tokenware_exempt__"
_GUARDS_ATTR = "__tokenware_guards__"
_VIEW_ATTR = "__tokenware_view__"


class RequestContext:
    """What a guard sees of one request, whatever the framework.

    Attributes:
        framework: ``"flask"`` or ``"starlette"`` (FastAPI is Starlette).
        request: the framework's request object (``flask.request`` or the
            Starlette ``Request``/``WebSocket``).
        state: the WSGI environ or the ASGI scope, where the middleware
            stores the identity.
        method: the HTTP method (``"GET"`` for a websocket).
        client: the peer address, or ``None``.
    """

    __slots__ = ("_identity", "client", "framework", "method", "request", "state")

    def __init__(
        self,
        framework: Literal["flask", "starlette"],
        request: Any,
        state: MutableMapping[str, Any],
        method: str,
        client: str | None,
    ) -> None:
        self.framework = framework
        self.request = request
        self.state = state
        self.method = method
        self.client = client
        self._identity: Identity | Anonymous | None = None

    @property
    def authorization(self) -> str | None:
        """The ``Authorization`` header, or ``None``.

        Raises:
            InvalidRequest: the header was sent twice (two credentials).
        """
        if self.framework == "flask":
            values = self.request.headers.getlist("Authorization")
        else:
            values = self.request.headers.getlist("authorization")
        if len(values) > 1:
            raise InvalidRequest("several Authorization headers")
        return values[0] if values else None

    @property
    def tokenware(self) -> Tokenware:
        """The :class:`~tokenware.Tokenware` instance serving this request.

        Raises:
            RuntimeError: none was configured (a programmer error).
        """
        tw = self.state.get(INSTANCE_KEY)
        if tw is None:
            if self.framework == "flask":
                from flask import current_app

                tw = current_app.extensions.get("tokenware")
            else:
                app = self.state.get("app")
                tw = getattr(getattr(app, "state", None), "tokenware", None)
        if tw is None:
            raise RuntimeError(
                "tokenware found no Tokenware instance for this request: add "
                "TokenwareMiddleware, call tokenware.integrations.flask.init_app(app, tw), "
                "use tokenware.integrations.starlette.TokenwareBackend, or set "
                "app.state.tokenware = tw"
            )
        return cast("Tokenware", tw)

    @property
    def realm(self) -> str:
        """The ``WWW-Authenticate`` realm: the middleware's (``tokenware.realm``
        in environ or scope), Flask's ``TOKENWARE_REALM``, or ``"api"``."""
        realm = self.state.get(REALM_KEY)
        if realm is None and self.framework == "flask":
            from flask import current_app

            realm = current_app.config.get("TOKENWARE_REALM")
        return str(realm or DEFAULT_REALM)

    def _preset(self) -> Identity | Anonymous | None:
        if self._identity is not None:
            return self._identity
        found = self.state.get(IDENTITY_KEY)
        if isinstance(found, Identity):
            self._identity = found
            return found
        error = self.state.get(ERROR_KEY)
        if isinstance(error, (ClientError, StoreError)) and not isinstance(
            error, MissingCredentials
        ):
            # The middleware already tried the header on a public route and
            # kept why it failed: answer that, without verifying twice.
            raise error
        header = self.authorization
        if header is None:
            # Nothing to verify: anonymous, whether or not a middleware ran.
            self._identity = ANONYMOUS
            return ANONYMOUS
        return None

    def _remember(self, identity: Identity | Anonymous) -> Identity | Anonymous:
        self._identity = identity
        if isinstance(identity, Identity):
            self.state[IDENTITY_KEY] = identity
            if self.framework == "starlette":
                # request.user and request.auth then work as with the middleware.
                from starlette.authentication import AuthCredentials

                self.state["user"] = identity
                self.state["auth"] = AuthCredentials(["authenticated", *sorted(identity.scopes)])
        return identity

    def identify(self) -> Identity | Anonymous:
        """The caller, authenticating the header with the sync driver if needed.

        Raises:
            InvalidRequest, InvalidToken, StoreUnavailable: as
            :meth:`Tokenware.authenticate`.
        """
        found = self._preset()
        if found is not None:
            return found
        try:
            identity: Identity | Anonymous = self.tokenware.authenticate(self.authorization)
        except MissingCredentials:
            identity = ANONYMOUS  # another scheme, such as Basic: no bearer credentials
        return self._remember(identity)

    async def aidentify(self) -> Identity | Anonymous:
        """:meth:`identify` with the async driver (``tw.aio``)."""
        found = self._preset()
        if found is not None:
            return found
        try:
            identity: Identity | Anonymous = await self.tokenware.aio.authenticate(
                self.authorization
            )
        except MissingCredentials:
            identity = ANONYMOUS
        return self._remember(identity)


class Guard(Protocol):
    """One check run before a view: the hook every tokenware decorator uses.

    ``check`` runs for sync views and for every Flask view (Flask runs an
    async view in a private event loop per request, where async store
    connections cannot be reused); ``acheck`` runs for async Starlette views.
    Both raise a :class:`~tokenware.errors.ClientError` or
    :class:`~tokenware.errors.StoreError` to refuse, and return the headers
    to add to the view's response.
    """

    def check(self, ctx: RequestContext) -> Headers:
        """Refuse by raising, or return headers to add (sync driver)."""
        ...

    async def acheck(self, ctx: RequestContext) -> Headers:
        """Refuse by raising, or return headers to add (async driver)."""
        ...


class _Requires:
    """The guard behind :func:`requires`."""

    __slots__ = ("optional", "scopes")

    def __init__(self, scopes: tuple[str, ...], optional: bool) -> None:
        self.scopes = scopes
        self.optional = optional

    def _decide(self, identity: Identity | Anonymous) -> Headers:
        if isinstance(identity, Anonymous):
            if self.optional:
                return ()
            raise MissingCredentials("no bearer credentials")
        if not identity.has_scopes(*self.scopes):
            missing = sorted(set(self.scopes) - identity.scopes)
            raise InsufficientScope(f"missing scopes: {' '.join(missing)}", scopes=self.scopes)
        return ()

    def check(self, ctx: RequestContext) -> Headers:
        return self._decide(ctx.identify())

    async def acheck(self, ctx: RequestContext) -> Headers:
        return self._decide(await ctx.aidentify())


def requires(*scopes: str, optional: bool = False) -> Callable[[F], F]:
    """Require an authenticated caller holding every one of ``scopes``.

    Works on sync and async views in Flask and Starlette (for FastAPI, use
    the dependencies of :mod:`tokenware.integrations.fastapi`, which also
    document the bearer scheme in OpenAPI). ``OPTIONS`` requests pass
    unauthenticated (CORS preflight).

    Args:
        scopes: scopes (JWT ``scope``) or roles (PAT) the caller must hold.
        optional: let anonymous callers through; credentials that *are*
            sent must still verify (an invalid token is a 401, never
            silently anonymous) and hold ``scopes``.

    The view reads the caller from ``tokenware.integrations.flask.
    current_identity`` or ``request.user`` / ``request.scope["tokenware.identity"]``.

    Example::

        @app.get("/reports")
        @requires("reports:read")
        def reports(): ...
    """
    for scope in scopes:
        if not isinstance(scope, str) or not scope or " " in scope:
            raise TypeError(f"requires() takes scope strings without spaces, got {scope!r}")
    return guard(_Requires(tuple(scopes), optional))


class _Throttle:
    """The guard behind :func:`throttle`: one rule, run by the middleware's engine."""

    __slots__ = ("rule",)

    def __init__(self, rule: ThrottleRule) -> None:
        self.rule = rule

    def _hook(self, ctx: RequestContext) -> tuple[RuleSet, RequestView]:
        from tokenware.core.http import RequestView
        from tokenware.core.http_throttle import RuleSet
        from tokenware.endpoints import asgi_path, wsgi_path

        tw = ctx.tokenware
        proxies = ctx.state.get(TRUSTED_PROXIES_KEY)
        if proxies is None and ctx.framework == "flask":
            from flask import current_app

            proxies = current_app.config.get("TOKENWARE_TRUSTED_PROXIES")
        if ctx.framework == "flask":
            path = wsgi_path(ctx.state)  # type: ignore[arg-type]
            forwarded = ctx.request.headers.getlist("X-Forwarded-For")
        else:
            path = asgi_path(ctx.state)
            forwarded = ctx.request.headers.getlist("x-forwarded-for")
        request = RequestView(
            method=ctx.method,
            path=path,
            client=ctx.client,
            forwarded_for=tuple(forwarded),
            websocket=ctx.state.get("type") == "websocket",
        )
        hook = RuleSet((self.rule,), tw._throttle_keys, int(proxies or 0), tw.settings.clock)
        return hook, request

    def _needs_identity(self) -> bool:
        return self.rule.key != "address"

    def check(self, ctx: RequestContext) -> Headers:
        from tokenware._drive import run_sync

        identity: Identity | Anonymous = ANONYMOUS
        if self._needs_identity():
            try:
                identity = ctx.identify()
            except (ClientError, StoreError):
                pass  # counted by address; @requires answers the failure
        hook, request = self._hook(ctx)
        return run_sync(hook(request, identity), ctx.tokenware.stores.sync)

    async def acheck(self, ctx: RequestContext) -> Headers:
        from tokenware._drive import run_async

        identity: Identity | Anonymous = ANONYMOUS
        if self._needs_identity():
            try:
                identity = await ctx.aidentify()
            except (ClientError, StoreError):
                pass
        hook, request = self._hook(ctx)
        return await run_async(hook(request, identity), ctx.tokenware.stores.aio)


def throttle(
    rate: str | Rule | Rate,
    *,
    key: str | KeyFunc | None = None,
    on_store_error: Literal["closed", "open"] = "closed",
    cost: int = 1,
    name: str | None = None,
    legacy_headers: bool = False,
) -> Callable[[F], F]:
    """Rate-limit a view: 429 with ``Retry-After`` once ``rate`` is exceeded.

    Works on sync and async views in Flask and Starlette, with or without the
    middleware, and answers exactly as the middleware's ``throttle=`` rules
    (it runs the same engine): allowed responses carry ``RateLimit-Policy``
    and ``RateLimit`` (and with ``legacy_headers`` the ``X-RateLimit-*``
    trio); a denial is a problem+json 429 with ``Retry-After`` and those
    headers.

    Args:
        rate: e.g. ``"5/minute"`` or ``"5/second;burst=10, 1000/day"``.
        key: ``"subject_or_address"`` (default: the authenticated subject,
            else the client address), ``"address"``, ``"subject"`` or a
            callable ``(request_view, identity) -> str | None`` (see
            :class:`tokenware.core.http_throttle.ThrottleRule`).
        on_store_error: ``"closed"`` (503 with ``Retry-After``) or
            ``"open"`` (log a warning on ``tokenware.throttle``, serve).
        cost: units each request takes.
        name: the bucket name; default: the view's module and qualified
            name, so each view has its own counts (views with the same
            ``name`` share them).
        legacy_headers: also send ``X-RateLimit-Limit/-Remaining/-Reset``.

    The client address honours the middleware's ``trusted_proxies`` (or
    Flask's ``TOKENWARE_TRUSTED_PROXIES``; 0 without either). Stack it under
    :func:`requires` to authenticate before counting::

        @app.post("/reports")
        @requires("reports:write")
        @throttle("10/minute")
        def create_report(): ...

    Raises:
        ValidationError: a malformed rate.
        ConfigurationError: an invalid option.
    """
    from tokenware.core.http_throttle import ThrottleRule

    def make(bucket: str) -> ThrottleRule:
        return ThrottleRule(
            rate,
            key="subject_or_address" if key is None else key,
            on_store_error=on_store_error,
            cost=cost,
            name=bucket,
            legacy_headers=legacy_headers,
        )

    make(name or "-")  # a bad rate or option fails at import time, not per request

    def decorate(view: F) -> F:
        rule = make(name or f"view {view.__module__}.{view.__qualname__}")
        return guard(_Throttle(rule))(view)

    return decorate


def exempt(view: F) -> F:
    """Mark ``view`` as public: global protection (Flask's
    ``TOKENWARE_PROTECT_ALL``) skips it. Returns the view unchanged.

    The mark is an attribute, so it survives ``functools.wraps``; read it
    with :func:`is_exempt`.
    """
    setattr(view, _EXEMPT_ATTR, True)
    return view


def is_exempt(view: object) -> bool:
    """True if :func:`exempt` marked ``view`` (or a view it wraps)."""
    return bool(getattr(view, _EXEMPT_ATTR, False))


def _is_async(view: Callable[..., Any]) -> bool:
    while isinstance(view, functools.partial):
        view = view.func
    return inspect.iscoroutinefunction(view) or inspect.iscoroutinefunction(
        getattr(view, "__call__", None)  # noqa: B004 - an object with async __call__
    )


def _context(args: tuple[Any, ...], kwargs: dict[str, Any]) -> RequestContext:
    """Find the request: a Starlette connection argument, or Flask's context."""
    requests = sys.modules.get("starlette.requests")
    if requests is not None:
        connection = requests.HTTPConnection
        for value in (*args, *kwargs.values()):
            if isinstance(value, connection):
                # Straight from the scope: value.client builds a namedtuple.
                scope = value.scope
                peer = scope.get("client")
                return RequestContext(
                    "starlette",
                    value,
                    scope,
                    scope.get("method", "GET"),
                    str(peer[0]) if peer else None,
                )
    flask = sys.modules.get("flask")
    if flask is not None and flask.has_request_context():
        request = flask.request._get_current_object()  # one proxy lookup, not five
        environ = request.environ
        return RequestContext(
            "flask", request, environ, environ["REQUEST_METHOD"], environ.get("REMOTE_ADDR")
        )
    raise RuntimeError(
        "tokenware decorators need a Flask request context or a Starlette Request "
        "argument; in FastAPI use tokenware.integrations.fastapi.Authenticated"
    )


def _refusal(ctx: RequestContext, exc: TokenwareError) -> Any:
    """The contract's response for ``exc``, as the framework's response object."""
    from tokenware.core.http import error_response

    reply = error_response(exc, realm=ctx.realm)
    if ctx.framework == "flask":
        from flask import current_app

        return current_app.response_class(reply.body, reply.status, list(reply.headers))
    if ctx.state.get("type") == "websocket":
        return None  # see _refuse_websocket
    return starlette_response(reply)


def starlette_response(reply: HttpResponse) -> Any:
    """``reply`` as a ``starlette.responses.Response``, headers exactly as given."""
    from starlette.responses import Response

    response = Response(reply.body, status_code=reply.status)
    response.raw_headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in reply.headers
    ]
    return response


def _with_headers(ctx: RequestContext, rv: Any, headers: Headers) -> Any:
    if not headers:
        return rv
    if ctx.framework == "flask":
        from flask import make_response

        response = make_response(rv)
        for name, value in headers:
            response.headers.add(name, value)
        return response
    mutable = getattr(rv, "headers", None)
    if mutable is not None and hasattr(mutable, "append"):
        for name, value in headers:
            mutable.append(name, value)
    return rv


def guard(check: Guard) -> Callable[[F], F]:
    """Turn a :class:`Guard` into a view decorator (the hook for new decorators).

    Stacked tokenware decorators are merged into one wrapper around the
    original view, their guards run outer first, and the view's sync or
    async nature is read once, here.
    """

    def decorate(view: F) -> F:
        inner = getattr(view, _VIEW_ATTR, None)
        guards: tuple[Guard, ...] = (check,)
        marked = is_exempt(view)
        if inner is not None:
            guards += getattr(view, _GUARDS_ATTR)
            view = inner
        wrapper = _async_wrapper(view, guards) if _is_async(view) else _sync_wrapper(view, guards)
        functools.update_wrapper(wrapper, view)
        if marked:
            setattr(wrapper, _EXEMPT_ATTR, True)
        setattr(wrapper, _VIEW_ATTR, view)
        setattr(wrapper, _GUARDS_ATTR, guards)
        return cast(F, wrapper)

    return decorate


def _sync_wrapper(view: Callable[..., Any], guards: tuple[Guard, ...]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = _context(args, kwargs)
        if ctx.method == "OPTIONS":
            return view(*args, **kwargs)
        headers: list[tuple[str, str]] = []
        try:
            for g in guards:
                headers.extend(g.check(ctx))
        except (ClientError, StoreError) as exc:
            return _refusal(ctx, exc)
        return _with_headers(ctx, view(*args, **kwargs), headers)

    return wrapper


def _async_wrapper(
    view: Callable[..., Awaitable[Any]], guards: tuple[Guard, ...]
) -> Callable[..., Awaitable[Any]]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = _context(args, kwargs)
        if ctx.method == "OPTIONS":
            return await view(*args, **kwargs)
        headers: list[tuple[str, str]] = []
        try:
            if ctx.framework == "flask":
                for g in guards:
                    headers.extend(g.check(ctx))
            else:
                for g in guards:
                    headers.extend(await g.acheck(ctx))
        except (ClientError, StoreError) as exc:
            refusal = _refusal(ctx, exc)
            if refusal is None:
                await ctx.request.close(code=1008)  # websocket: policy violation
            return refusal
        return _with_headers(ctx, await view(*args, **kwargs), headers)

    return wrapper
