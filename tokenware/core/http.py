"""The HTTP policy both middlewares share: sans-I/O, one copy.

:mod:`tokenware.wsgi` and :mod:`tokenware.asgi` only translate between their
protocol and the three small types here:

* :class:`RequestView`: what the policy may read of a request (method,
  app-relative path, every ``Authorization`` value, the query string, the
  peer address and the ``X-Forwarded-For`` chain).
* :class:`Outcome`: what :func:`pipeline` decided: either a ``response`` to
  send instead of calling the app, or the ``identity`` to hand to the app
  plus ``headers`` to add to the app's response.
* :class:`Response`: status, headers and body, bytes ready to send.

:func:`pipeline` is a flow (a generator of store operations, see
:mod:`tokenware.core.flow`): the WSGI adapter runs it with ``run_sync``, the
ASGI adapter with ``run_async``, so both answer every request identically.

Path rules (:class:`PathRules`): every prefix in ``protect``, ``public`` and
``exempt`` is matched against the normalised app-relative path; the longest
matching prefix wins, and on a tie ``exempt`` beats ``public`` beats
``protect``. A prefix ending in ``/`` matches anything below it; one without
matches the path itself and anything below ``prefix + "/"`` (so ``/health``
never matches ``/healthz``).

* protected: credentials are required; every failure is answered here.
* public (and paths no rule matches): credentials are optional. A good token
  gives an :class:`~tokenware.identity.Identity`; none, a bad one or a store
  outage gives :data:`~tokenware.identity.ANONYMOUS`, and the error is kept
  in :attr:`Outcome.error` for decorators. Public routes keep answering when
  the store is down.
* exempt: tokenware does nothing at all (no authentication, no throttling).

``OPTIONS`` requests always pass through unauthenticated (CORS preflights
carry no credentials).

The throttling seam: the ``throttle`` argument of :class:`HttpPolicy` is a
:class:`ThrottleHook`, a callable ``hook(request, identity) -> Flow[headers]``
run after authentication on every route that is not exempt. It may deny by
raising :class:`~tokenware.errors.Throttled` (answered 429 with
``Retry-After``; the ``headers`` attribute of the exception, when it has
one, is added to the 429, e.g. ``RateLimit-Policy`` and ``RateLimit``), and
it may return ``(name, value)`` headers to add to the app's response. Being a
flow, it can read the store through either driver; a store error it does not
handle answers 503.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, NamedTuple, Protocol, cast
from urllib.parse import parse_qsl

from tokenware.core.flow import Flow
from tokenware.core.throttle import Rate, Rule, ThrottleKeys
from tokenware.errors import (
    ClientError,
    ConfigurationError,
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    StoreError,
    StoreUnavailable,
    Throttled,
    TokenwareError,
)
from tokenware.identity import ANONYMOUS, Anonymous, Identity

if TYPE_CHECKING:
    from tokenware.core.http_throttle import AuthFailureLimit, ThrottleRules

__all__ = [
    "DEFAULT_REALM",
    "Headers",
    "HttpPolicy",
    "LocalAuthenticator",
    "Outcome",
    "PathRules",
    "RequestView",
    "Response",
    "Route",
    "ThrottleHook",
    "client_address",
    "error_response",
    "fast_outcome",
    "json_response",
    "merge_headers",
    "normalise_path",
    "pipeline",
    "www_authenticate",
]

log = logging.getLogger("tokenware.http")

#: The realm of ``WWW-Authenticate`` when none is configured.
DEFAULT_REALM = "api"

#: Response headers as ``(name, value)`` pairs, in order.
Headers = tuple[tuple[str, str], ...]

#: What a client is told, per error code; never the reason of the failure.
_DETAILS: Mapping[str, str] = {
    "missing_credentials": "This resource requires a bearer token.",
    "unauthorized": "This resource requires a bearer token.",
    "invalid_request": "The request's credentials are malformed or ambiguous.",
    "invalid_token": "The access token is invalid, expired or revoked.",
    "insufficient_scope": "The access token does not grant the scope this resource requires.",
    "forbidden": "Access to this resource is not allowed.",
    "rate_limited": "Too many requests; retry after the number of seconds in Retry-After.",
    "store_unavailable": "The service is temporarily unavailable; retry later.",
    "store_error": "The service is temporarily unavailable; retry later.",
}

# Characters allowed in a realm or a scope list written into WWW-Authenticate:
# printable ASCII without '"' and '\\' (RFC 6750 §3: scope-token chars).
_QUOTABLE = frozenset(chr(c) for c in range(0x20, 0x7F)) - {'"', "\\"}


# -- requests and responses --------------------------------------------------------


class RequestView(NamedTuple):
    """The parts of a request the policy reads; built by an adapter.

    Attributes:
        method: upper-case HTTP method.
        path: the app-relative, percent-decoded path (WSGI ``PATH_INFO``;
            ASGI ``path`` minus ``root_path``).
        authorization: every ``Authorization`` header value, in order (a
            server that folds duplicates into one gives one value).
        query_string: the raw query string, decoded as latin-1.
        client: the socket peer's address, if known.
        forwarded_for: the ``X-Forwarded-For`` values, in order.
        websocket: true for a websocket handshake (ASGI only).

    Immutable like the other types here, but a named tuple rather than a
    frozen dataclass: one is built for every request, and a tuple is built
    several times faster than a frozen dataclass sets its fields.
    """

    method: str
    path: str
    authorization: tuple[str, ...] = ()
    query_string: str = ""
    client: str | None = None
    forwarded_for: tuple[str, ...] = ()
    websocket: bool = False


@dataclass(frozen=True, slots=True)
class Response:
    """A complete response: status, headers (str pairs) and body."""

    status: int
    headers: Headers
    body: bytes = b""


class Outcome(NamedTuple):
    """What :func:`pipeline` decided.

    Attributes:
        response: answer with this instead of calling the app, or ``None``.
        identity: who made the request (``ANONYMOUS`` without credentials).
        headers: added to the app's response (e.g. rate-limit headers).
        error: on a public route, why credentials that were sent did not
            authenticate (``None`` otherwise); decorators may raise it.
        route: how the path was classified.

    A named tuple for the reason :class:`RequestView` is one: one per request.
    """

    response: Response | None
    identity: Identity | Anonymous = ANONYMOUS
    headers: Headers = ()
    error: TokenwareError | None = None
    route: Route | None = None


_new_outcome = tuple.__new__


class ThrottleHook(Protocol):
    """The throttling seam: run after authentication on non-exempt routes.

    Returns a flow whose result is the headers to add to the app's response;
    raises :class:`~tokenware.errors.Throttled` to deny (429).
    """

    def __call__(self, request: RequestView, identity: Identity | Anonymous) -> Flow[Headers]:
        """Decide for ``request`` made by ``identity``."""
        ...


# -- path rules --------------------------------------------------------------------


def normalise_path(path: str) -> str:
    """``path`` with empty and ``.`` segments dropped and ``..`` resolved.

    Only used to *classify* a request, so ``/public/../api/x`` and
    ``//api/x`` are judged as ``/api/x`` whatever the app's router makes of
    them; the app still sees the path it was sent.
    """
    parts: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if parts:
                parts.pop()
            continue
        parts.append(segment)
    tail = "/" if path.endswith("/") and parts else ""
    return "/" + "/".join(parts) + tail


def _prefixes(value: str | Iterable[str], name: str) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else tuple(value)
    for item in items:
        if not isinstance(item, str) or not item.startswith("/"):
            raise ConfigurationError(f"{name} entries must be paths starting with '/': {item!r}")
    return items


def _matches(prefix: str, path: str) -> bool:
    if prefix.endswith("/"):
        return path.startswith(prefix) or path + "/" == prefix
    return path == prefix or path.startswith(prefix + "/")


@dataclass(frozen=True, slots=True)
class Route:
    """How a path is treated.

    Attributes:
        kind: ``protect``, ``public`` or ``exempt`` (``public`` when no rule
            matched).
        scopes: scopes every request on this route must have (protected
            routes only).
    """

    kind: Literal["protect", "public", "exempt"]
    scopes: tuple[str, ...] = ()


_PRECEDENCE = {"exempt": 2, "public": 1, "protect": 0}

#: How many classified paths :meth:`PathRules.route` remembers.
_ROUTE_MEMO_SIZE = 1024


@dataclass(frozen=True, slots=True)
class PathRules:
    """The ``protect`` / ``public`` / ``exempt`` prefixes (see the module docs).

    Args:
        protect: prefixes that require credentials (default: everything).
        public: prefixes where credentials are optional.
        exempt: prefixes tokenware does not touch.
        required_scopes: ``{prefix: scopes}``: protected prefixes whose
            requests must also carry these scopes (403 otherwise); the
            longest matching prefix applies.

    Raises:
        ConfigurationError: an entry that is not a path.
    """

    protect: tuple[str, ...] = ("/",)
    public: tuple[str, ...] = ()
    exempt: tuple[str, ...] = ()
    required_scopes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Routes already classified, by raw path: classification runs on every
    # request and most apps see few distinct paths. Paths are client input,
    # so the memo is bounded (emptied when full), never a growing map.
    _memo: dict[str, Route] = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def build(
        cls,
        *,
        protect: str | Iterable[str] = ("/",),
        public: str | Iterable[str] = (),
        exempt: str | Iterable[str] = (),
        required_scopes: Mapping[str, str | Iterable[str]] | None = None,
    ) -> PathRules:
        """Validate and normalise the options of a middleware."""
        scopes: dict[str, tuple[str, ...]] = {}
        for prefix, wanted in (required_scopes or {}).items():
            _prefixes(prefix, "required_scopes")
            items = (wanted,) if isinstance(wanted, str) else tuple(wanted)
            for scope in items:
                if not isinstance(scope, str) or not scope or not set(scope) <= _QUOTABLE - {" "}:
                    raise ConfigurationError(f"invalid scope {scope!r} for {prefix!r}")
            scopes[prefix] = items
        return cls(
            protect=_prefixes(protect, "protect"),
            public=_prefixes(public, "public"),
            exempt=_prefixes(exempt, "exempt"),
            required_scopes=scopes,
        )

    def route(self, path: str) -> Route:
        """Classify ``path`` (app-relative, not yet normalised)."""
        memo = self._memo
        route = memo.get(path)
        if route is None:
            route = self._classify(path)
            if len(memo) >= _ROUTE_MEMO_SIZE:
                memo.clear()
            memo[path] = route
        return route

    def _classify(self, path: str) -> Route:
        path = normalise_path(path)
        kind: Literal["protect", "public", "exempt"] = "public"
        best = -1
        for rule, prefixes in (
            ("protect", self.protect),
            ("public", self.public),
            ("exempt", self.exempt),
        ):
            for prefix in prefixes:
                if _matches(prefix, path) and (
                    len(prefix) > best
                    or (len(prefix) == best and _PRECEDENCE[rule] > _PRECEDENCE[kind])
                ):
                    kind, best = rule, len(prefix)  # type: ignore[assignment]
        if kind != "protect" or not self.required_scopes:
            return Route(kind)
        scopes: tuple[str, ...] = ()
        longest = -1
        for prefix, wanted in self.required_scopes.items():
            if _matches(prefix, path) and len(prefix) > longest:
                scopes, longest = wanted, len(prefix)
        return Route(kind, scopes)


# -- error -> response ---------------------------------------------------------------


def _quoted(value: str) -> str:
    if not set(value) <= _QUOTABLE:
        raise ConfigurationError(f"{value!r} cannot be written in WWW-Authenticate")
    return f'"{value}"'


def www_authenticate(exc: BaseException, realm: str) -> str | None:
    """The ``WWW-Authenticate`` value for ``exc`` (RFC 6750 §3), or ``None``.

    No credentials (or another scheme): ``Bearer realm="…"`` alone. Malformed
    request, bad token, missing scope: plus ``error="…"`` (and ``scope="…"``).
    Nothing from the request is ever written here.
    """
    if not isinstance(exc, ClientError) or exc.status_code not in (400, 401, 403):
        return None
    error = exc.www_authenticate_error
    if exc.status_code == 403 and error is None:
        return None  # e.g. a CSRF failure: not a bearer-token problem
    parts = [f"Bearer realm={_quoted(realm)}"]
    if error is not None:
        parts.append(f'error="{error}"')
    if isinstance(exc, InsufficientScope) and exc.scopes:
        parts.append(f"scope={_quoted(' '.join(exc.scopes))}")
    return ", ".join(parts)


def json_response(
    status: int, document: object, *, content_type: str = "application/json", extra: Headers = ()
) -> Response:
    """A JSON response with ``Content-Length`` (compact, UTF-8)."""
    body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    headers: Headers = (
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        *extra,
    )
    return Response(status, headers, body)


def error_response(exc: TokenwareError, *, realm: str = DEFAULT_REALM) -> Response:
    """The ``application/problem+json`` response for ``exc``.

    Client errors keep their status; every store error is 503 with
    ``Retry-After`` (never 500); anything else is a programming error and is
    re-raised by the adapters, not answered here. The body holds ``type``,
    ``title``, ``status`` and a generic ``detail``: never ``exc.detail``.
    """
    if isinstance(exc, ClientError):
        status = exc.status_code
    elif isinstance(exc, StoreError):
        status = 503
    else:
        raise TypeError(f"no HTTP response for {type(exc).__name__}")
    code = exc.code
    headers: list[tuple[str, str]] = []
    challenge = www_authenticate(exc, realm)
    if challenge is not None:
        headers.append(("WWW-Authenticate", challenge))
    if isinstance(exc, (Throttled, StoreUnavailable)):
        headers.append(("Retry-After", str(exc.retry_after)))
    elif isinstance(exc, StoreError):
        headers.append(("Retry-After", "1"))
    extra = getattr(exc, "headers", None)
    if isinstance(exc, Throttled) and extra:
        headers.extend((str(name), str(value)) for name, value in extra)
    headers.append(("Cache-Control", "no-store"))
    document = {
        "type": f"urn:tokenware:problem:{code}",
        "title": exc.title,
        "status": status,
        "detail": _DETAILS.get(code, exc.title),
    }
    return json_response(
        status, document, content_type="application/problem+json", extra=tuple(headers)
    )


# -- the pipeline ----------------------------------------------------------------------

#: Builds the verification flow for an ``Authorization`` value (``None``: absent).
Authenticator = Callable[[str | None], Flow[Identity]]


@dataclass(frozen=True, slots=True)
class HttpPolicy:
    """Everything :func:`pipeline` needs, built once per middleware.

    Args:
        rules: the path rules.
        realm: the ``WWW-Authenticate`` realm (printable ASCII, no quotes).
        throttle: the throttling hook (see the module docs), or rules: a
            rate string, a :class:`~tokenware.core.http_throttle.ThrottleRule`
            or a list of them (turned into a
            :class:`~tokenware.core.http_throttle.RuleSet`; needs
            ``throttle_keys``), or ``None``.
        trusted_proxies: how many proxies in front of the app append to
            ``X-Forwarded-For`` (0: trust none, use the socket peer).
        auth_failure_throttle: a rate such as ``"10/minute"`` of failed
            token verifications per client address (see
            :class:`~tokenware.core.http_throttle.AuthFailureLimit`), or
            ``None``; needs ``throttle_keys``.
        throttle_keys: names the throttle's store keys (``Tokenware``'s).
        clock: epoch seconds (for the legacy ``X-RateLimit-Reset``).
    """

    rules: PathRules = field(default_factory=PathRules)
    realm: str = DEFAULT_REALM
    throttle: ThrottleHook | ThrottleRules | None = None
    trusted_proxies: int = 0
    auth_failure_throttle: str | Rule | Rate | None = None
    throttle_keys: ThrottleKeys | None = None
    clock: Callable[[], float] = time.time
    auth_failures: AuthFailureLimit | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        _quoted(self.realm)
        if not self.realm:
            raise ConfigurationError("realm must not be empty")
        if (
            isinstance(self.trusted_proxies, bool)
            or not isinstance(self.trusted_proxies, int)
            or self.trusted_proxies < 0
        ):
            raise ConfigurationError("trusted_proxies must be an integer >= 0")
        from tokenware.core.http_throttle import AuthFailureLimit, rule_set

        rules = self.throttle is not None and not callable(self.throttle)
        if not rules and self.auth_failure_throttle is None:
            return
        keys = self.throttle_keys
        if keys is None:
            raise ConfigurationError(
                "throttle rules need throttle_keys (the middlewares pass Tokenware's); "
                "otherwise throttle must be a ThrottleHook: "
                "a callable (request, identity) -> Flow[headers]"
            )
        if rules:
            hook = rule_set(
                self.throttle, keys, trusted_proxies=self.trusted_proxies, clock=self.clock
            )
            object.__setattr__(self, "throttle", hook)
        if self.auth_failure_throttle is not None:
            limit = AuthFailureLimit.build(self.auth_failure_throttle, keys, self.trusted_proxies)
            object.__setattr__(self, "auth_failures", limit)


def client_address(request: RequestView, trusted_proxies: int) -> str | None:
    """The client's address: the socket peer, or the ``X-Forwarded-For`` entry
    added by the outermost of ``trusted_proxies`` proxies (security.md H.109).

    With too few entries (a request that did not come through every proxy)
    the leftmost entry is not trusted: the socket peer is returned.
    """
    if trusted_proxies <= 0:
        return request.client
    hops = [hop.strip() for value in request.forwarded_for for hop in value.split(",")]
    hops = [hop for hop in hops if hop]
    if len(hops) < trusted_proxies:
        return request.client
    return hops[-trusted_proxies]


def _credentials(request: RequestView) -> str | None:
    """The one ``Authorization`` value, or ``None``; 400 when ambiguous."""
    values = request.authorization
    if len(values) > 1:
        raise InvalidRequest("more than one Authorization header")
    header = values[0] if values else None
    if header is not None and request.query_string and "access_token" in request.query_string:
        names = {name for name, _ in parse_qsl(request.query_string, keep_blank_values=True)}
        if "access_token" in names:
            # RFC 6750 §2: a client must not use more than one method.
            raise InvalidRequest("credentials in the header and in the query string")
    # A token only in ?access_token= is ignored (security.md C.53): URLs get logged.
    return header


def _log_refusal(request: RequestView, exc: TokenwareError, status: int) -> None:
    # The path only: never the query string, a header or the token.
    level = logging.WARNING if status >= 500 else logging.INFO
    log.log(
        level,
        "%s %s refused %d %s: %s",
        request.method,
        request.path,
        status,
        exc.code,
        exc.detail,
    )


def pipeline(
    request: RequestView, policy: HttpPolicy, authenticate: Authenticator
) -> Flow[Outcome]:
    """Decide a request: authenticate, check the route's scopes, throttle.

    Errors become responses here (:func:`error_response`); store errors on
    a protected route become 503, never a pass.
    """
    route = policy.rules.route(request.path)
    if route.kind == "exempt" or request.method == "OPTIONS":
        return Outcome(None, route=route)
    identity: Identity | Anonymous = ANONYMOUS
    error: TokenwareError | None = None
    failures = policy.auth_failures
    try:
        try:
            header = _credentials(request)
            if header is not None and failures is not None:
                # Over its quota of failures: refused before anything is verified.
                yield from failures.check(request)
            if header is not None or route.kind == "protect":
                try:
                    identity = yield from authenticate(header)
                except InvalidToken:
                    if header is not None and failures is not None:
                        yield from failures.charge(request)
                    raise
        except (ClientError, StoreError) as exc:
            if route.kind == "protect":
                raise
            error, identity = exc, ANONYMOUS
        if (
            route.scopes
            and isinstance(identity, Identity)
            and not identity.has_scopes(*route.scopes)
        ):
            raise InsufficientScope(
                f"{identity.kind} {identity.token_id} lacks a required scope",
                scopes=route.scopes,
            )
        headers: Headers = ()
        hook = policy.throttle
        if hook is not None:
            headers = tuple((yield from cast(ThrottleHook, hook)(request, identity)))
    except (ClientError, StoreError) as exc:
        response = error_response(exc, realm=policy.realm)
        _log_refusal(request, exc, response.status)
        return Outcome(response, identity, error=exc, route=route)
    return Outcome(None, identity, headers, error, route)


#: Verifies an ``Authorization`` value when that needs no store: the
#: identity, ``None`` when the store must be asked, or an exception
#: (``Tokenware._authenticate_local``).
LocalAuthenticator = Callable[[str | None], Identity | None]


def fast_outcome(
    method: str,
    path: str,
    authorization: tuple[str, ...],
    query_string: str,
    policy: HttpPolicy,
    local: LocalAuthenticator,
) -> Outcome | None:
    """:func:`pipeline`'s outcome for the commonest request, without its machinery.

    The commonest request carries one bearer token that verifies without
    the store (an access JWT, from the JWT cache or by its signature), on a
    route whose scopes it has, with no throttle configured: the app is
    called with that identity. For exactly those requests this returns the
    :class:`Outcome` :func:`pipeline` would return for the
    :class:`RequestView` with these fields; for every other request
    ``None``, and the caller runs :func:`pipeline`, which decides. A token
    that fails here is verified again there (which also logs the refusal):
    refusals pay twice, passes once. Takes the fields rather than a
    :class:`RequestView` so that a pass builds none.
    """
    if (
        len(authorization) != 1
        or policy.throttle is not None
        or policy.auth_failures is not None
        or method == "OPTIONS"
        or "access_token" in query_string
    ):
        return None
    route = policy.rules.route(path)
    if route.kind == "exempt":
        return None
    try:
        identity = local(authorization[0])
    except TokenwareError:
        return None
    if identity is None or (route.scopes and not identity.has_scopes(*route.scopes)):
        return None
    # tuple.__new__: the named tuple's __new__ is a Python frame around it.
    return _new_outcome(Outcome, (None, identity, (), None, route))


def merge_headers(app_headers: Sequence[tuple[str, str]], extra: Headers) -> list[tuple[str, str]]:
    """The app's headers plus ``extra``; the app's own value wins on a clash."""
    if not extra:
        return list(app_headers)
    present = {name.lower() for name, _ in app_headers}
    return [*app_headers, *((n, v) for n, v in extra if n.lower() not in present)]
