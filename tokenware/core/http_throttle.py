"""Throttling rules for HTTP: what the middlewares' ``throttle=`` and the
``@throttle`` decorator run, without I/O (one copy for WSGI, ASGI, sync and async).

* :class:`ThrottleRule`: a rate, what to key on, which requests it covers
  (path prefix, methods) and what to do when the store is down.
* :class:`RuleSet`: a :class:`~tokenware.core.http.ThrottleHook` built from
  rules: every rule matching a request is hit in ONE
  :func:`~tokenware.core.throttle.hit_flow`, so a denial by any rule refunds
  the others (a denied request consumes nothing). Allowed requests get
  ``RateLimit-Policy`` and ``RateLimit`` (and, per rule, the legacy
  ``X-RateLimit-*``); a denial raises :class:`~tokenware.errors.Throttled`
  whose ``headers`` the 429 carries.
* :class:`AuthFailureLimit`: charges the client address for every token that
  fails verification and refuses (429) an address over its quota *before*
  verifying anything (security.md §4 H.115).

Keys: ``"subject_or_address"`` (the default) is the identity's subject when
authenticated, else the client address; ``"address"`` the client address
always; ``"subject"`` only authenticated requests (others are not counted by
that rule); or a callable ``key(request, identity) -> str | None`` (``None``:
the rule does not count this request). Subjects and addresses are hashed by
:class:`~tokenware.core.throttle.ThrottleKeys` before they reach the store.
The address is :func:`tokenware.core.throttle.client_address` of the socket
peer and exactly ``trusted_proxies`` hops of ``X-Forwarded-For``, IPv6 as /64.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TypeAlias

from tokenware.core.flow import Flow
from tokenware.core.throttle import (
    Decision,
    Rate,
    Rule,
    ThrottleKeys,
    client_address,
    hit_flow,
    parse_rule,
    rate_limit_headers,
)
from tokenware.errors import ConfigurationError, StoreError, Throttled, ValidationError
from tokenware.identity import Anonymous, Identity

if TYPE_CHECKING:
    from tokenware.core.http import RequestView

__all__ = [
    "AuthFailureLimit",
    "KeyFunc",
    "RuleSet",
    "ThrottleRule",
    "ThrottleRules",
    "as_rules",
    "rule_set",
]

log = logging.getLogger("tokenware.throttle")

#: A rule's own key: ``key(request, identity) -> str | None``.
KeyFunc = Callable[["RequestView", "Identity | Anonymous"], "str | None"]

_KEYS = ("subject_or_address", "address", "subject")
_Pairs = list[tuple[str, Rate]]


@dataclass(frozen=True, slots=True, init=False)
class ThrottleRule:
    """One HTTP throttling rule.

    Args:
        rate: a rate string (``"100/minute"``, ``"5/second;burst=10, 1000/day"``)
            or a parsed :class:`~tokenware.core.throttle.Rule`.
        key: ``"subject_or_address"`` (default), ``"address"``, ``"subject"``
            or a callable ``(request, identity) -> str | None``.
        prefix: the path prefix the rule covers (matched like the middleware's
            path rules: ``"/api"`` covers ``/api`` and ``/api/…``, not
            ``/apix``). Default: every path.
        methods: HTTP methods the rule covers (default: all).
        on_store_error: ``"closed"`` (default: 503 with ``Retry-After``) or
            ``"open"`` (log a warning on ``tokenware.throttle`` and let the
            request through). There is never a per-process fallback.
        cost: units each request takes.
        name: the rule's bucket name; rules with the same name, key and rate
            share their counts. Default: derived from ``prefix`` and
            ``methods``, so each prefix has its own buckets.
        legacy_headers: also send ``X-RateLimit-Limit``, ``-Remaining`` and
            ``-Reset`` (epoch seconds), as Flask-Limiter and slowapi do.

    Raises:
        ValidationError: a malformed rate.
        ConfigurationError: any other invalid option.
    """

    rate: Rule
    key: str | KeyFunc
    prefix: str
    methods: frozenset[str] | None
    on_store_error: Literal["closed", "open"]
    cost: int
    name: str | None
    legacy_headers: bool
    scope: str = field(repr=False)

    def __init__(
        self,
        rate: str | Rule | Rate,
        *,
        key: str | KeyFunc = "subject_or_address",
        prefix: str = "/",
        methods: Iterable[str] | None = None,
        on_store_error: Literal["closed", "open"] = "closed",
        cost: int = 1,
        name: str | None = None,
        legacy_headers: bool = False,
    ) -> None:
        rule = parse_rule(rate)
        if not callable(key) and key not in _KEYS:
            raise ConfigurationError(
                f"throttle key must be one of {', '.join(_KEYS)} or a callable, got {key!r}"
            )
        if not isinstance(prefix, str) or not prefix.startswith("/"):
            raise ConfigurationError(
                f"throttle prefix must be a path starting with '/': {prefix!r}"
            )
        wanted: frozenset[str] | None = None
        if methods is not None:
            items = (methods,) if isinstance(methods, str) else tuple(methods)
            if not items or not all(isinstance(m, str) and m.isalpha() for m in items):
                raise ConfigurationError(f"throttle methods must be HTTP methods: {methods!r}")
            wanted = frozenset(m.upper() for m in items)
        if on_store_error not in ("closed", "open"):
            raise ConfigurationError(
                f"on_store_error must be 'closed' or 'open', got {on_store_error!r}"
            )
        if isinstance(cost, bool) or not isinstance(cost, int) or cost < 0:
            raise ConfigurationError(f"throttle cost must be an int >= 0, got {cost!r}")
        if name is not None and (not isinstance(name, str) or not name):
            raise ConfigurationError("throttle rule name must be a non-empty string")
        set_ = object.__setattr__
        set_(self, "rate", rule)
        set_(self, "key", key)
        set_(self, "prefix", prefix)
        set_(self, "methods", wanted)
        set_(self, "on_store_error", on_store_error)
        set_(self, "cost", cost)
        set_(self, "name", name)
        set_(self, "legacy_headers", bool(legacy_headers))
        methods_text = ",".join(sorted(wanted)) if wanted else "*"
        set_(self, "scope", "http:" + (name if name is not None else f"{prefix} {methods_text}"))

    def covers(self, path: str, method: str) -> bool:
        """Whether this rule counts a request (``path`` already normalised)."""
        if self.methods is not None and method not in self.methods:
            return False
        return _matches(self.prefix, path)

    def key_for(
        self, request: RequestView, identity: Identity | Anonymous, address: Callable[[], str]
    ) -> str | None:
        """The caller key this rule counts ``request`` under, or ``None``."""
        key = self.key
        if callable(key):
            found = key(request, identity)
            if found is not None and not isinstance(found, str):
                raise TypeError(f"a throttle key function returned {type(found).__name__}")
            return None if found is None else "k:" + found
        if isinstance(identity, Identity) and key != "address":
            return "s:" + identity.subject
        if key == "subject":
            return None
        return "a:" + address()


#: What ``throttle=`` accepts besides a hook: a rate string, a rule, or several.
ThrottleRules: TypeAlias = (
    "str | Rule | Rate | ThrottleRule | Iterable[str | Rule | Rate | ThrottleRule]"
)


def _matches(prefix: str, path: str) -> bool:
    # The same matching as tokenware.core.http's path rules.
    if prefix.endswith("/"):
        return path.startswith(prefix) or path + "/" == prefix
    return path == prefix or path.startswith(prefix + "/")


def as_rules(value: object) -> tuple[ThrottleRule, ...]:
    """``throttle=`` as rules: a string or rule alone, or a list of them.

    A string (or :class:`Rule`/:class:`Rate`) is an app-wide rule keyed by
    subject when authenticated, else by client address.

    Raises:
        ConfigurationError: anything else.
    """
    items = (value,) if isinstance(value, (str, Rule, Rate, ThrottleRule)) else value
    if not isinstance(items, Iterable):
        raise ConfigurationError(
            "throttle must be rate strings, ThrottleRule objects or a ThrottleHook"
        )
    rules = []
    for item in items:
        if isinstance(item, ThrottleRule):
            rules.append(item)
        elif isinstance(item, (str, Rule, Rate)):
            try:
                rules.append(ThrottleRule(item))
            except ValidationError as exc:
                raise ConfigurationError(f"throttle: {exc}") from None
        else:
            raise ConfigurationError(
                f"throttle entries must be rate strings or ThrottleRule objects, got {item!r}"
            )
    if not rules:
        raise ConfigurationError("throttle=[] has no rules; pass None for no throttling")
    return tuple(rules)


def _without_retry_after(headers: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    # error_response writes Retry-After from Throttled.retry_after: never twice.
    return tuple((n, v) for n, v in headers if n.lower() != "retry-after")


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A :class:`~tokenware.core.http.ThrottleHook` running ``rules``.

    Args:
        rules: the rules, hit in this order (put the one most likely to deny
            first: it saves refunds).
        keys: names the store keys (``Tokenware``'s).
        trusted_proxies: proxies in front of the app (see
            :func:`~tokenware.core.throttle.client_address`).
        clock: epoch seconds, for the legacy ``X-RateLimit-Reset``.
    """

    rules: tuple[ThrottleRule, ...]
    keys: ThrottleKeys
    trusted_proxies: int = 0
    clock: Callable[[], float] = field(default=lambda: 0.0)

    def __call__(
        self, request: RequestView, identity: Identity | Anonymous
    ) -> Flow[tuple[tuple[str, str], ...]]:
        """Hit every rule covering ``request``; raise ``Throttled`` on a denial."""
        from tokenware.core.http import normalise_path

        path = normalise_path(request.path)
        pairs: _Pairs = []
        costs: list[int] = []
        rules: list[ThrottleRule] = []
        cached: list[str] = []

        def address() -> str:
            if not cached:
                cached.append(
                    client_address(
                        request.client,
                        request.forwarded_for,
                        trusted_proxies=self.trusted_proxies,
                    )
                )
            return cached[0]

        for rule in self.rules:
            if not rule.covers(path, request.method):
                continue
            key = rule.key_for(request, identity, address)
            if key is None:
                continue
            for rate in rule.rate.rates:
                pairs.append((self.keys.key(key, rate, scope=rule.scope), rate))
                costs.append(rule.cost)
            rules.append(rule)
        if not pairs:
            return ()
        try:
            decision: Decision = yield from hit_flow(pairs, costs)
        except StoreError as exc:
            if any(rule.on_store_error == "closed" for rule in rules):
                raise  # 503 with Retry-After
            log.warning(
                "throttle store unavailable; letting %s %s through (on_store_error='open'): %s",
                request.method,
                request.path,
                exc.detail,
            )
            return ()
        legacy = any(rule.legacy_headers for rule in rules)
        headers = rate_limit_headers(decision, legacy=legacy, now=self.clock() if legacy else None)
        if decision.allowed:
            return tuple(headers)
        raise Throttled(
            f"{request.method} {request.path}: rate {decision.rate} exceeded",
            retry_after=decision.retry_after,
            headers=_without_retry_after(headers),
        )


def rule_set(
    value: object, keys: ThrottleKeys, *, trusted_proxies: int, clock: Callable[[], float]
) -> RuleSet:
    """:func:`as_rules` of ``value`` as a :class:`RuleSet`."""
    return RuleSet(as_rules(value), keys, trusted_proxies, clock)


@dataclass(frozen=True, slots=True)
class AuthFailureLimit:
    """Failed authentications per client address (security.md §4 H.115).

    The pipeline calls :meth:`check` before verifying a credential (a 429
    when the address has no failures left, so nothing is verified) and
    :meth:`charge` after a token failed verification. Always closed: a
    store error is a 503, never "not throttled".

    Args:
        rate: e.g. ``"10/minute"``: ten failures at once, then one every 6 s.
        keys: names the store keys.
        trusted_proxies: as for :class:`RuleSet`.
    """

    rate: Rule
    keys: ThrottleKeys
    trusted_proxies: int = 0

    @classmethod
    def build(cls, rate: object, keys: ThrottleKeys, trusted_proxies: int) -> AuthFailureLimit:
        """Validate ``rate`` (a rate string or rule).

        Raises:
            ConfigurationError: not a valid rate.
        """
        if not isinstance(rate, (str, Rule, Rate)):
            raise ConfigurationError(
                f"auth_failure_throttle must be a rate string such as '10/minute', got {rate!r}"
            )
        try:
            return cls(parse_rule(rate), keys, trusted_proxies)
        except ValidationError as exc:
            raise ConfigurationError(f"auth_failure_throttle: {exc}") from None

    def _pairs(self, request: RequestView) -> _Pairs:
        address = client_address(
            request.client, request.forwarded_for, trusted_proxies=self.trusted_proxies
        )
        return [(self.keys.key(address, r, scope="http-auth-failure"), r) for r in self.rate.rates]

    def check(self, request: RequestView) -> Flow[None]:
        """Raise ``Throttled`` if one more failure would exceed the quota."""
        decision: Decision = yield from hit_flow(self._pairs(request), 0)
        spent = [d for d in decision.policies if d.remaining < 1]
        if not spent:
            return None
        spent_ids = {id(d) for d in spent}
        # A unit-cost hit passes once max(tat, now) + T - now <= T * burst,
        # i.e. after reset_after - T * (burst - 1) seconds.
        waits = [max(0.0, d.reset_after - d.rate.interval * (d.rate.burst - 1)) for d in spent]
        wait = max(waits)
        binding = spent[waits.index(wait)]
        policies = tuple(
            Decision(False, d.limit, 0, wait, d.reset_after, d.rate) if id(d) in spent_ids else d
            for d in decision.policies
        )
        verdict = Decision(
            False, binding.limit, 0, wait, binding.reset_after, binding.rate, policies
        )
        raise Throttled(
            f"{request.method} {request.path}: too many failed authentications from one address",
            retry_after=wait,
            headers=_without_retry_after(rate_limit_headers(verdict)),
        )

    def charge(self, request: RequestView) -> Flow[None]:
        """Count one failed authentication against the client address."""
        yield from hit_flow(self._pairs(request), 1)
        return None
