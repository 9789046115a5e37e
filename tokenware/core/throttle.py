"""Throttling rules, keys and headers, without I/O (GCRA runs in the store).

Rate strings
    ``"10/minute"`` is a quota of 10 per minute: a burst of 10, then one hit
    every 6 s (the emission interval ``period / limit``), which is what
    Flask-Limiter users expect of "10 per minute" but without fixed windows.
    Grammar (case-insensitive, spaces allowed around tokens)::

        rule   = rate *( "," rate )
        rate   = limit ( "/" / "per" ) [ count ] unit *( ";" option )
        unit   = second(s) | minute(s) | hour(s) | day(s)
        option = "burst=" int

    ``"5/second;burst=10"`` allows 10 at once, then 5 per second;
    ``"100 per 15 minutes"`` a quota of 100 per 15 minutes. Months and years
    are refused: they have no fixed length. Several rates joined with ``,``
    all apply (:func:`hit_flow` documents the exact semantics).

Keys
    Every key is ``<prefix>:rl:{<mac>}``: one hash tag per key, a fixed
    length whatever the input, and no personal data, because ``<mac>`` is a
    keyed HMAC (:meth:`~tokenware.keys.KeyRing.name_mac`) of the caller's key,
    the rate and a scope. Subjects and addresses never appear in clear.

Client addresses
    :func:`client_address` takes the socket peer, or with ``trusted_proxies``
    N > 0 the N-th address from the *right* of ``X-Forwarded-For`` (or of the
    ``for=`` values of RFC 7239 ``Forwarded``), never the leftmost one, which
    the client writes. IPv6 addresses are aggregated to their /64 and
    IPv4-mapped IPv6 addresses read as IPv4. A malformed or short header
    falls back to the peer: the proxy's own address, which throttles more,
    never less.

Headers
    :func:`rate_limit_headers` builds ``RateLimit-Policy`` and ``RateLimit``
    (IETF draft fields) and, optionally, the legacy ``X-RateLimit-*`` trio.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from tokenware.core.flow import Flow
from tokenware.core.ops import Gcra, GcraResult
from tokenware.errors import StoreError, ValidationError
from tokenware.keys import KeyRing

__all__ = [
    "MAX_KEY_LENGTH",
    "Decision",
    "Rate",
    "Rule",
    "ThrottleKeys",
    "client_address",
    "hit_flow",
    "parse_rule",
    "rate_limit_headers",
    "retry_after_header",
]

#: Seconds per unit; months and years are left out on purpose.
UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
#: Largest limit, burst or count accepted in a rate string.
MAX_NUMBER = 10**9
#: Longest rate string parsed (anything longer is a mistake or an attack).
MAX_RULE_LENGTH = 1000
#: Longest caller key accepted by :meth:`ThrottleKeys.key` (it is hashed).
MAX_KEY_LENGTH = 4096
#: Longest tolerance (period / limit * burst): 100 years, as the stores allow.
MAX_TOLERANCE = 100 * 365 * 24 * 3600
#: Store key names each :class:`ThrottleKeys` remembers; emptied when full.
KEY_MEMO_SIZE = 4096
#: Longest caller key whose name is remembered (longer ones are hashed every hit).
KEY_MEMO_MAX_LENGTH = 256

_RATE = re.compile(
    r"\s*(?P<limit>[0-9]+)\s*(?:/|\s[Pp][Ee][Rr]\s)\s*(?:(?P<count>[0-9]+)\s*)?(?P<unit>[A-Za-z]+)\s*"
)
_OPTION = re.compile(r"\s*(?P<name>[A-Za-z_]+)\s*=\s*(?P<value>[0-9]+)\s*")


def _number(text: str, what: str, part: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_NUMBER:
        raise ValidationError(f"{what} must be between 1 and {MAX_NUMBER} in rate {part!r}")
    return value


@dataclass(frozen=True, slots=True)
class Rate:
    """One quota: ``limit`` hits per ``period`` seconds, ``burst`` at once.

    Attributes:
        limit: hits per period.
        period: seconds.
        burst: hits allowed at once (default: ``limit``).
    """

    limit: int
    period: float
    burst: int
    # What ThrottleKeys.key MACs for this rate, computed once (not compared:
    # it is a function of the three fields above).
    _mac_text: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("limit", "burst"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not value >= 1:
                raise ValidationError(f"rate {name} must be an int >= 1, got {value!r}")
        if not isinstance(self.period, (int, float)) or not 0 < self.period < math.inf:
            raise ValidationError(f"rate period must be positive seconds, got {self.period!r}")
        if self.period / self.limit * self.burst > MAX_TOLERANCE:
            raise ValidationError("rate period / limit * burst exceeds 100 years")
        text = f"{self.limit}/{self.period!r}/{self.burst}"
        object.__setattr__(self, "_mac_text", text)

    @property
    def interval(self) -> float:
        """The emission interval: seconds between hits after the burst."""
        return self.period / self.limit

    def __str__(self) -> str:
        text = f"{self.limit}/{_period_text(self.period)}"
        return text if self.burst == self.limit else f"{text};burst={self.burst}"


def _period_text(period: float) -> str:
    for unit, seconds in reversed(UNITS.items()):
        count = period / seconds
        if count == int(count):
            return unit if count == 1 else f"{int(count)} {unit}s"
    return f"{period:g} seconds"


@dataclass(frozen=True, slots=True)
class Rule:
    """Every rate of one rate string; a hit must conform to all of them.

    Attributes:
        rates: the rates, in the order written.
    """

    rates: tuple[Rate, ...]

    def __post_init__(self) -> None:
        if not self.rates:
            raise ValidationError("a throttle rule needs at least one rate")

    def __str__(self) -> str:
        return ", ".join(str(r) for r in self.rates)


def parse_rule(text: str | Rule | Rate) -> Rule:
    """Parse a rate string such as ``"10/minute, 100/day"`` (see the module docs).

    A :class:`Rule` is returned as is and a :class:`Rate` wrapped.

    Raises:
        ValidationError: a malformed string; the message quotes the
            offending part.
    """
    if type(text) is str and len(text) <= MAX_RULE_LENGTH:  # the common case, first
        return _parse(text)
    if isinstance(text, Rule):
        return text
    if isinstance(text, Rate):
        return Rule((text,))
    if not isinstance(text, str):
        raise ValidationError(
            f"a rate must be a string like '10/minute', got {type(text).__name__}"
        )
    if len(text) > MAX_RULE_LENGTH:
        raise ValidationError(f"rate string longer than {MAX_RULE_LENGTH} characters")
    return _parse(text)


# Apps pass the same few literal strings on every request: parse each once.
@lru_cache(maxsize=512)
def _parse(text: str) -> Rule:
    rates = []
    for part in text.split(","):
        rate_text, *options = part.split(";")
        match = _RATE.fullmatch(rate_text)
        if match is None:
            raise ValidationError(
                f"rate {part.strip()!r} is not '<limit>/<unit>' (unit: second, minute, hour, day)"
            )
        limit = _number(match["limit"], "limit", part.strip())
        count = _number(match["count"], "count", part.strip()) if match["count"] else 1
        unit = match["unit"].lower()
        unit = unit[:-1] if unit.endswith("s") and unit[:-1] in UNITS else unit
        if unit not in UNITS:
            raise ValidationError(
                f"unknown unit {match['unit']!r} in rate {part.strip()!r}; "
                "use second, minute, hour or day"
            )
        burst = limit
        seen: set[str] = set()
        for option in options:
            opt = _OPTION.fullmatch(option)
            if opt is None or opt["name"].lower() != "burst":
                raise ValidationError(
                    f"option {option.strip()!r} in rate {part.strip()!r} is not 'burst=<int>'"
                )
            if "burst" in seen:
                raise ValidationError(f"burst given twice in rate {part.strip()!r}")
            seen.add("burst")
            burst = _number(opt["value"], "burst", part.strip())
        try:
            rates.append(Rate(limit, float(count * UNITS[unit]), burst))
        except ValidationError as exc:
            raise ValidationError(f"rate {part.strip()!r}: {exc}") from None
    return Rule(tuple(rates))


# --- keys ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ThrottleKeys:
    """Names limiter keys: ``<prefix>:rl:{<mac>}``, bounded and free of personal data.

    Attributes:
        ring: the key ring; names use its index key, so rotation keeps limits.
        prefix: the store key prefix.
    """

    ring: KeyRing
    prefix: str
    _mac: hmac.HMAC = field(init=False, repr=False, compare=False)
    _names: dict[tuple[str, str, str], str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # The keyed state of ring.name_mac("throttle", ...), computed once and
        # copied per key: the same MAC without re-deriving the key per hit.
        sub = self.ring.index_key.derive("throttle")
        object.__setattr__(self, "_mac", hmac.new(sub, digestmod=hashlib.sha256))
        # (key, scope, rate) -> name, for the few keys a busy limiter sees
        # again and again. Keys are client input, so the memo is bounded
        # (KEY_MEMO_SIZE names of at most KEY_MEMO_MAX_LENGTH characters) and
        # emptied when full. Whether a key is in it shows only in timing, and
        # says less than the remaining count a hit on that key reports anyway.
        object.__setattr__(self, "_names", {})

    def key(self, key: str, rate: Rate, *, scope: str = "") -> str:
        """The store key of caller key ``key`` under ``rate`` (and ``scope``).

        The rate is part of the name: two rates never share a TAT, and
        changing a rule starts its keys afresh instead of misreading them.

        Raises:
            ValidationError: ``key`` is not a non-empty string of at most
                :data:`MAX_KEY_LENGTH` characters, or is not valid Unicode.
        """
        memo = None
        if type(key) is str and type(scope) is str and len(key) <= KEY_MEMO_MAX_LENGTH:
            memo = (key, scope, rate._mac_text)
            name = self._names.get(memo)
            if name is not None:
                return name
        name = self._name(key, rate, scope)  # validates: only valid names are memoised
        if memo is not None:
            names = self._names
            if len(names) >= KEY_MEMO_SIZE:
                names.clear()
            names[memo] = name
        return name

    def _name(self, key: str, rate: Rate, scope: str) -> str:
        """:meth:`key` without the memo: validate, then MAC."""
        if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
            raise ValidationError(
                f"throttle key must be a non-empty string of at most {MAX_KEY_LENGTH} characters"
            )
        try:
            data = "\x00".join((scope, key, rate._mac_text)).encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError("throttle key contains a lone surrogate") from None
        mac = self._mac.copy()
        mac.update(data)
        return f"{self.prefix}:rl:{{{mac.digest()[:16].hex()}}}"


# --- the hit flow ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    """What a throttled hit decided.

    Attributes:
        allowed: whether the hit passed (and was counted).
        limit: the quota of the deciding rate (hits per period).
        remaining: hits that would still pass now under that rate (with a
            burst above the limit this can exceed ``limit``).
        retry_after: seconds until this hit would pass (0 when allowed).
        reset_after: seconds until that rate is back to a full burst.
        rate: the deciding rate: the one that denied, or the one with the
            fewest remaining hits.
        policies: one decision per rate checked, in rule order (empty on the
            entries themselves).
    """

    allowed: bool
    limit: int
    remaining: int
    retry_after: float
    reset_after: float
    rate: Rate = field(repr=False)
    policies: tuple[Decision, ...] = field(default=(), repr=False)


def _decision(rate: Rate, result: GcraResult) -> Decision:
    return Decision(
        result.allowed,
        rate.limit,
        result.remaining,
        result.retry_after,
        result.reset_after,
        rate,
    )


def hit_flow(keys: Sequence[tuple[str, Rate]], cost: int | Sequence[int] = 1) -> Flow[Decision]:
    """Hit every ``(store key, rate)`` pair; all must conform.

    ``cost`` is one cost for every pair, or one per pair (the HTTP rules of
    :mod:`tokenware.core.http_throttle` combine rules of different costs in
    one hit, so a denial by any of them refunds all the others).

    Semantics, exactly:

    * Rates are hit in the order given, one atomic store operation each.
    * The first rate that denies stops the flow; the later rates are not
      touched, and the earlier ones get their ``cost`` back (a negative-cost
      hit, one more store operation each). So a denied hit consumes nothing
      from any rate: a client hammering a tight per-second rate does not
      drain its daily quota too.
    * The refund lands a moment after the hit, so a concurrent request may
      see those units taken and be denied: the error is always towards
      denying, never beyond a limit. If a refund fails (store outage), the
      units stay taken for the same reason and the denial stands.
    * Put the rate most likely to deny first: it saves the refunds.
    * ``cost`` 0 checks every rate without counting anything.

    Returns:
        The denying rate's decision, or when all pass the one with the
        fewest remaining hits; ``policies`` holds every rate checked.
    """
    if len(keys) == 1 and type(cost) is int and cost >= 0:
        # One rate (the common case): nothing to refund, so the same result
        # as the loop below, without its bookkeeping.
        key, rate = keys[0]
        result: GcraResult = yield Gcra(key, rate.interval, rate.burst, cost)
        entry = _decision(rate, result)
        return Decision(
            result.allowed,
            rate.limit,
            result.remaining,
            result.retry_after,
            result.reset_after,
            rate,
            (entry,),
        )
    if not keys:
        raise ValidationError("nothing to throttle: no rates")
    costs = list(cost) if isinstance(cost, Sequence) else [cost] * len(keys)
    if len(costs) != len(keys):
        raise ValidationError("one cost per rate is needed")
    for each in costs:
        if isinstance(each, bool) or not isinstance(each, int) or each < 0:
            raise ValidationError(f"cost must be an int >= 0, got {each!r}")
    taken: list[tuple[str, Rate, int]] = []
    decisions: list[Decision] = []
    for (key, rate), each in zip(keys, costs, strict=True):
        result = yield Gcra(key, rate.interval, rate.burst, each)
        decision = _decision(rate, result)
        decisions.append(decision)
        if not result.allowed:
            for done_key, done_rate, done_cost in reversed(taken):
                try:
                    yield Gcra(done_key, done_rate.interval, done_rate.burst, -done_cost)
                except StoreError:
                    break  # units stay taken: errs towards denying (see above)
            return _with_policies(decision, decisions)
        if each:
            taken.append((key, rate, each))
    binding = min(decisions, key=lambda d: (d.remaining, -d.reset_after))
    return _with_policies(binding, decisions)


def _with_policies(decision: Decision, decisions: list[Decision]) -> Decision:
    return Decision(
        decision.allowed,
        decision.limit,
        decision.remaining,
        decision.retry_after,
        decision.reset_after,
        decision.rate,
        tuple(decisions),
    )


# --- client addresses -----------------------------------------------------------


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address from a forwarded value: ``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:80``, ``::1``."""
    text = text.strip().strip('"').strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or (end + 1 < len(text) and not _is_port(text[end + 1 :])):
            return None
        text = text[1:end]
    elif text.count(":") == 1:
        host, port = text.split(":")
        if not port.isascii() or not port.isdigit():
            return None
        text = host
    if not text or not text.isascii() or len(text) > 64:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _is_port(text: str) -> bool:
    return text.startswith(":") and text[1:].isascii() and text[1:].isdigit()


def normalise_address(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """IPv4 as is; IPv4-mapped IPv6 as IPv4; other IPv6 as its /64 network."""
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        # From the integer: drops any %scope and the interface identifier.
        net = ipaddress.IPv6Address(int(addr) & ~((1 << 64) - 1))
        return f"{net}/64"
    return str(addr)


def _forwarded_for(values: Iterable[str]) -> list[str]:
    """The ``for=`` value of each element of RFC 7239 ``Forwarded`` lines."""
    found = []
    for line in values:
        for element in line.split(","):
            value = None
            for pair in element.split(";"):
                name, eq, raw = pair.partition("=")
                if eq and name.strip().lower() == "for":
                    value = raw
            # An element without for= still counts as a hop (it is unusable).
            found.append("" if value is None else value)
    return found


def client_address(
    peer: str | None,
    forwarded: Iterable[str] = (),
    *,
    trusted_proxies: int = 0,
    header: str = "x-forwarded-for",
) -> str:
    """The client address a limiter should key on.

    Args:
        peer: the socket peer address (``REMOTE_ADDR``, ``scope["client"][0]``).
        forwarded: every value of the forwarding header, in order received
            (several header lines are read as one list).
        trusted_proxies: how many proxies in front of the app append to the
            header. 0 (the default) ignores it entirely: a client-sent
            ``X-Forwarded-For`` cannot change its key.
        header: ``"x-forwarded-for"`` or ``"forwarded"`` (RFC 7239): how to
            read ``forwarded``.

    Returns:
        A normalised address (IPv6 as its /64), or ``"peer:<text>"`` for a
        peer that is not an IP address (a Unix socket), or ``"unknown"``.

    .. warning:: Trust forwarded headers only from exactly the proxies you
       run. The value used is the ``trusted_proxies``-th from the right; a
       header with fewer entries, or an unparsable entry there, falls back
       to the peer (all such requests share the proxy's bucket).
    """
    if isinstance(trusted_proxies, bool) or not isinstance(trusted_proxies, int):
        raise ValidationError("trusted_proxies must be an int >= 0")
    if trusted_proxies < 0:
        raise ValidationError("trusted_proxies must be an int >= 0")
    if header not in ("x-forwarded-for", "forwarded"):
        raise ValidationError("header must be 'x-forwarded-for' or 'forwarded'")
    fallback = _peer_address(peer)
    if trusted_proxies == 0:
        return fallback
    lines = [v for v in forwarded if isinstance(v, str)]
    if header == "forwarded":
        hops = _forwarded_for(lines)
    else:
        hops = [item for line in lines for item in line.split(",")]
    if len(hops) < trusted_proxies:
        return fallback
    addr = _parse_ip(hops[-trusted_proxies])
    return fallback if addr is None else normalise_address(addr)


def _peer_address(peer: str | None) -> str:
    if not peer or not isinstance(peer, str):
        return "unknown"
    addr = _parse_ip(peer)
    if addr is not None:
        return normalise_address(addr)
    return "peer:" + peer[:256]


# --- headers ---------------------------------------------------------------------


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` in whole seconds, rounded up and at least 1."""
    if not seconds < math.inf:
        return "1"
    return str(max(1, math.ceil(seconds)))


def _policy_name(rate: Rate) -> str:
    # An sf-string: the rate's own text holds no quote or backslash.
    return f'"{rate}"'


def rate_limit_headers(
    decision: Decision, *, legacy: bool = False, now: float | None = None
) -> list[tuple[str, str]]:
    """Response headers describing ``decision``.

    ``RateLimit-Policy`` and ``RateLimit`` follow
    draft-ietf-httpapi-ratelimit-headers-10 (§3 and §4; the syntax has been
    the same since -08): each is a Structured Fields List of policies named
    by an sf-string, ``RateLimit-Policy: "10/minute";q=10;w=60`` (quota and
    window in seconds) and ``RateLimit: "10/minute";r=3;t=42`` (remaining
    units and seconds until they reset). ``t`` is ``Retry-After`` for a
    denied policy and the time to a full burst otherwise. One item per
    rate of the rule. No partition key (``pk``) is sent: nothing about
    other partitions leaks.

    A denied decision also gets ``Retry-After`` (an integer >= 1).

    With ``legacy`` the Flask-Limiter headers are added for the deciding
    rate: ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and
    ``X-RateLimit-Reset`` in **epoch seconds**, as those peers send it, which
    is why ``now`` is then required.
    """
    policies = decision.policies or (decision,)
    policy = ", ".join(
        f"{_policy_name(d.rate)};q={d.rate.limit};w={math.ceil(d.rate.period)}" for d in policies
    )
    state = ", ".join(f"{_policy_name(d.rate)};r={d.remaining};t={_reset(d)}" for d in policies)
    headers = [("RateLimit-Policy", policy), ("RateLimit", state)]
    if legacy:
        if now is None:
            raise ValidationError("legacy X-RateLimit-Reset is epoch seconds: pass now=")
        headers += [
            ("X-RateLimit-Limit", str(decision.limit)),
            ("X-RateLimit-Remaining", str(decision.remaining)),
            ("X-RateLimit-Reset", str(math.ceil(now + _reset(decision)))),
        ]
    if not decision.allowed:
        headers.append(("Retry-After", retry_after_header(decision.retry_after)))
    return headers


def _reset(decision: Decision) -> int:
    if not decision.allowed:
        return int(retry_after_header(decision.retry_after))
    return math.ceil(decision.reset_after)
