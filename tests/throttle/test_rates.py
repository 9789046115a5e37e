"""Rate strings, the pure hit flow, client addresses and headers (no store)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenware.core.flow import Flow
from tokenware.core.ops import Gcra, GcraResult, Op
from tokenware.core.throttle import (
    Decision,
    Rate,
    Rule,
    ThrottleKeys,
    client_address,
    hit_flow,
    parse_rule,
    rate_limit_headers,
    retry_after_header,
)
from tokenware.errors import ValidationError
from tokenware.keys import KeyRing
from tokenware.testing import make_secret_key


@pytest.mark.parametrize(
    ("text", "rates"),
    [
        pytest.param("10/minute", [(10, 60, 10)], id="slash"),
        pytest.param("10 per minute", [(10, 60, 10)], id="per"),
        pytest.param("10/MINUTES", [(10, 60, 10)], id="plural-upper"),
        pytest.param(" 5 / second ; burst = 10 ", [(5, 1, 10)], id="burst-spaces"),
        pytest.param("100 per 15 minutes", [(100, 900, 100)], id="count"),
        pytest.param("1/day", [(1, 86400, 1)], id="day"),
        pytest.param("3/hours", [(3, 3600, 3)], id="hours"),
        pytest.param("5/second, 100/day", [(5, 1, 5), (100, 86400, 100)], id="two"),
        pytest.param("2/second;burst=1", [(2, 1, 1)], id="burst-below-limit"),
    ],
)
def test_rate_strings(text: str, rates: list[tuple[int, float, int]]) -> None:
    """Each accepted form parses to the rates it names, in order."""
    rule = parse_rule(text)
    assert [(r.limit, r.period, r.burst) for r in rule.rates] == rates
    assert parse_rule(str(rule)) == rule  # str() round-trips


@pytest.mark.parametrize(
    ("text", "named"),
    [
        pytest.param("", "''", id="empty"),
        pytest.param("10", "'10'", id="no-unit"),
        pytest.param("10/month", "'month'", id="month"),
        pytest.param("10/year", "'year'", id="year"),
        pytest.param("10/minute,", "''", id="trailing-comma"),
        pytest.param("10/minute, x/second", "'x/second'", id="second-part"),
        pytest.param("0/second", "'0/second'", id="zero-limit"),
        pytest.param("-1/second", "'-1/second'", id="negative"),
        pytest.param("1.5/second", "'1.5/second'", id="decimal"),
        pytest.param("\u0661/second", "second", id="arabic-digit"),
        pytest.param("10/minute;burst=0", "burst", id="zero-burst"),
        pytest.param("10/minute;burst=2;burst=3", "burst given twice", id="burst-twice"),
        pytest.param("10/minute;cost=3", "'cost=3'", id="unknown-option"),
        pytest.param("10/minute;", "''", id="empty-option"),
        pytest.param("1/1000000 days", "100 years", id="too-long"),
        pytest.param("10000000000/second", "limit", id="too-many"),
        pytest.param("10/minute" + ",10/minute" * 200, "longer than", id="too-long-string"),
    ],
)
def test_bad_rate_strings_name_the_part(text: str, named: str) -> None:
    """A malformed rate string is ValidationError quoting the offending part."""
    with pytest.raises(ValidationError) as info:
        parse_rule(text)
    assert named in str(info.value)


@given(st.text(max_size=80))
def test_any_string_is_rule_or_validation_error(text: str) -> None:
    """Any string parses to a Rule or raises ValidationError, nothing else."""
    try:
        rule = parse_rule(text)
    except ValidationError:
        return
    assert isinstance(rule, Rule) and rule.rates


@given(
    st.lists(
        st.tuples(
            st.integers(1, 1000),
            st.sampled_from(["second", "minutes", "hour", "days"]),
            st.integers(1, 1000),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_generated_rates_parse(items: list[tuple[int, str, int]]) -> None:
    """Well-formed rate strings always parse to what they say."""
    text = ", ".join(f"{n}/{u};burst={b}" for n, u, b in items)
    rule = parse_rule(text)
    assert [(r.limit, r.burst) for r in rule.rates] == [(n, b) for n, _, b in items]


def test_rule_and_rate_objects_pass_through() -> None:
    """A Rule is returned as is; a Rate becomes a one-rate Rule; non-strings are refused."""
    rule = parse_rule("1/second")
    assert parse_rule(rule) is rule
    assert parse_rule(Rate(1, 1.0, 1)) == rule
    with pytest.raises(ValidationError):
        parse_rule(10)  # type: ignore[arg-type]


def test_interval_is_period_over_limit() -> None:
    """'10/minute' means one hit every 6 s after the burst of 10."""
    (rate,) = parse_rule("10/minute").rates
    assert (rate.interval, rate.burst) == (6.0, 10)


def run(flow: Flow[Decision], results: list[GcraResult]) -> tuple[list[Op], Decision]:
    """Drive a flow with canned store results; return (ops yielded, value)."""
    ops: list[Op] = []
    try:
        op = next(flow)
        while True:
            ops.append(op)
            op = flow.send(results[len(ops) - 1])
    except StopIteration as stop:
        return ops, stop.value


OK = GcraResult(True, 3, 0.0, 2.0)
NO = GcraResult(False, 0, 5.0, 60.0)


def test_hit_flow_refunds_earlier_rates_on_denial() -> None:
    """A denial by the second rate gives the first its unit back and skips the third."""
    a, b, c = Rate(5, 1.0, 5), Rate(10, 60.0, 10), Rate(100, 86400.0, 100)
    ops, decision = run(hit_flow([("ka", a), ("kb", b), ("kc", c)]), [OK, NO, OK])
    assert ops == [Gcra("ka", a.interval, 5, 1), Gcra("kb", b.interval, 10, 1),
                   Gcra("ka", a.interval, 5, -1)]  # fmt: skip
    assert not decision.allowed and decision.rate == b and decision.retry_after == 5.0


def test_hit_flow_reports_tightest_rate() -> None:
    """When all pass, the decision is the rate with the fewest remaining hits."""
    a, b = Rate(5, 1.0, 5), Rate(10, 60.0, 10)
    _, decision = run(hit_flow([("ka", a), ("kb", b)]), [OK, GcraResult(True, 1, 0.0, 9.0)])
    assert (decision.allowed, decision.rate, decision.remaining) == (True, b, 1)
    assert len(decision.policies) == 2


def test_hit_flow_refund_failure_keeps_denial() -> None:
    """A store error during a refund leaves the denial standing (errs towards denying)."""
    from tokenware.errors import StoreUnavailable

    a, b = Rate(5, 1.0, 5), Rate(10, 60.0, 10)
    flow = hit_flow([("ka", a), ("kb", b)])
    next(flow)
    flow.send(OK)
    flow.send(NO)  # now at the refund
    with pytest.raises(StopIteration) as stop:
        flow.throw(StoreUnavailable("down", retry_after=1))
    assert stop.value.value.allowed is False


@pytest.mark.parametrize("cost", [-1, 1.5, True, "1"])
def test_hit_flow_refuses_bad_cost(cost: object) -> None:
    """Cost must be an int >= 0."""
    with pytest.raises(ValidationError):
        next(hit_flow([("k", Rate(1, 1.0, 1))], cost))  # type: ignore[arg-type]


# --- keys -----------------------------------------------------------------------

KEYS = ThrottleKeys(ring=KeyRing.from_secret(make_secret_key()), prefix="tw")
RATE = Rate(10, 60.0, 10)


@pytest.mark.parametrize(
    "key",
    ["alice", "x" * 4096, "ünïcødé 🔑", "{tag}", "a*b?[c]\\", "\x00\r\n", "1.2.3.4"],
)
def test_keys_are_bounded_and_opaque(key: str) -> None:
    """Case 116: every key has the same length, one hash tag, and no input in clear."""
    name = KEYS.key(key, RATE)
    assert len(name) == len("tw:rl:{}") + 32
    assert name.count("{") == 1 and name.count("}") == 1
    assert key not in name


def test_keys_separate_rates_and_scopes() -> None:
    """The rate and the scope are part of the name."""
    assert KEYS.key("a", RATE) != KEYS.key("a", Rate(10, 60.0, 20))
    assert KEYS.key("a", RATE) != KEYS.key("a", RATE, scope="login")
    assert KEYS.key("a", RATE) == KEYS.key("a", RATE)


@pytest.mark.parametrize("key", ["", "x" * 4097, "\ud800", None])
def test_bad_keys_refused(key: object) -> None:
    """Empty, huge, non-string or non-Unicode keys are ValidationError."""
    with pytest.raises(ValidationError):
        KEYS.key(key, RATE)  # type: ignore[arg-type]


# --- client addresses ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("peer", "values", "proxies", "header", "expected"),
    [
        pytest.param("10.0.0.7", [], 0, "x-forwarded-for", "10.0.0.7", id="peer"),
        pytest.param("10.0.0.7", ["1.2.3.4"], 0, "x-forwarded-for", "10.0.0.7",
                     id="109-spoofed-xff-ignored"),
        pytest.param("10.0.0.1", ["6.6.6.6, 1.2.3.4"], 1, "x-forwarded-for", "1.2.3.4",
                     id="one-proxy-rightmost"),
        pytest.param("10.0.0.1", ["6.6.6.6, 1.2.3.4, 10.0.0.2"], 2, "x-forwarded-for",
                     "1.2.3.4", id="two-proxies"),
        pytest.param("10.0.0.1", ["6.6.6.6", "1.2.3.4"], 1, "x-forwarded-for", "1.2.3.4",
                     id="two-header-lines"),
        pytest.param("10.0.0.1", ["1.2.3.4"], 2, "x-forwarded-for", "10.0.0.1",
                     id="too-few-hops-peer"),
        pytest.param("10.0.0.1", ["6.6.6.6, garbage"], 1, "x-forwarded-for", "10.0.0.1",
                     id="malformed-peer"),
        pytest.param("10.0.0.1", ["1.2.3.4:5678"], 1, "x-forwarded-for", "1.2.3.4",
                     id="v4-port"),
        pytest.param("10.0.0.1", ["[2001:db8:1:2:3::9]:443"], 1, "x-forwarded-for",
                     "2001:db8:1:2::/64", id="v6-port"),
        pytest.param("10.0.0.1", [""], 1, "x-forwarded-for", "10.0.0.1", id="empty"),
        pytest.param("10.0.0.1", ["\u0661.2.3.4"], 1, "x-forwarded-for", "10.0.0.1",
                     id="unicode-digit"),
        pytest.param("2001:db8:aa:bb:1:2:3:4", [], 0, "x-forwarded-for",
                     "2001:db8:aa:bb::/64", id="110-v6-64"),
        pytest.param("fe80::1%eth0", [], 0, "x-forwarded-for", "fe80::/64", id="v6-scope"),
        pytest.param("::ffff:1.2.3.4", [], 0, "x-forwarded-for", "1.2.3.4", id="v4-mapped"),
        pytest.param(None, [], 0, "x-forwarded-for", "unknown", id="no-peer"),
        pytest.param("/tmp/app.sock", [], 0, "x-forwarded-for", "peer:/tmp/app.sock",
                     id="unix-socket"),
        pytest.param("10.0.0.1", ['for=6.6.6.6, for="[2001:db8::1]:80";proto=https'], 1,
                     "forwarded", "2001:db8::/64", id="forwarded-v6"),
        pytest.param("10.0.0.1", ["for=1.2.3.4;by=10.0.0.1, proto=https"], 1, "forwarded",
                     "10.0.0.1", id="forwarded-hop-without-for"),
        pytest.param("10.0.0.1", ["for=unknown"], 1, "forwarded", "10.0.0.1",
                     id="forwarded-unknown"),
        pytest.param("10.0.0.1", ["for=_hidden, for=1.2.3.4"], 1, "forwarded", "1.2.3.4",
                     id="forwarded-obfuscated-left"),
    ],
)  # fmt: skip
def test_client_address(
    peer: str | None, values: list[str], proxies: int, header: str, expected: str
) -> None:
    """The key address: peer, or exactly N hops from the right, normalised; else the peer."""
    assert client_address(peer, values, trusted_proxies=proxies, header=header) == expected


def test_spoofed_leftmost_never_used() -> None:
    """Case 109: whatever a client prepends, the trusted hop decides."""
    for spoof in ["1.1.1.1", "1.1.1.1, 2.2.2.2", "x, y, z", "::1"]:
        values = [f"{spoof}, 203.0.113.9"]
        assert client_address("10.0.0.1", values, trusted_proxies=1) == "203.0.113.9"


def test_ipv6_rotation_inside_64_same_address() -> None:
    """Case 110: every address of one /64 maps to the same key address."""
    seen = {client_address(f"2001:db8:5:6:{i:x}::{i:x}") for i in range(1, 200)}
    assert seen == {"2001:db8:5:6::/64"}


@pytest.mark.parametrize(
    ("kwargs"),
    [{"trusted_proxies": -1}, {"trusted_proxies": True}, {"header": "x-real-ip"}],
)
def test_client_address_bad_settings(kwargs: dict[str, object]) -> None:
    """Bad proxy settings are ValidationError."""
    with pytest.raises(ValidationError):
        client_address("10.0.0.1", [], **kwargs)  # type: ignore[arg-type]


# --- headers ---------------------------------------------------------------------


def test_headers_allowed() -> None:
    """RateLimit-Policy/RateLimit name each rate; no Retry-After when allowed."""
    rate = Rate(10, 60.0, 10)
    d = Decision(True, 10, 7, 0.0, 17.2, rate)
    assert rate_limit_headers(d) == [
        ("RateLimit-Policy", '"10/minute";q=10;w=60'),
        ("RateLimit", '"10/minute";r=7;t=18'),
    ]


def test_headers_denied_consistent() -> None:
    """Case 115: 429 headers: Retry-After >= 1 and RateLimit t equal to it, r=0."""
    rate = Rate(10, 60.0, 10)
    d = Decision(False, 10, 0, 0.2, 60.0, rate)
    headers = dict(rate_limit_headers(d, legacy=True, now=1000.0))
    assert headers["Retry-After"] == "1"
    assert headers["RateLimit"] == '"10/minute";r=0;t=1'
    assert headers["X-RateLimit-Reset"] == "1001"
    assert headers["X-RateLimit-Remaining"] == "0"
    assert not any("pk=" in v for v in headers.values())


def test_legacy_headers_need_now() -> None:
    """Legacy reset is epoch seconds, so now= is required."""
    d = Decision(True, 1, 0, 0.0, 1.0, Rate(1, 1.0, 1))
    with pytest.raises(ValidationError):
        rate_limit_headers(d, legacy=True)


@pytest.mark.parametrize(
    ("seconds", "value"), [(0.0, "1"), (0.001, "1"), (1.0, "1"), (1.01, "2"), (float("inf"), "1")]
)
def test_retry_after_integer_at_least_one(seconds: float, value: str) -> None:
    """Retry-After is an integer number of seconds, rounded up, at least 1."""
    assert retry_after_header(seconds) == value


def test_key_mac_is_the_ring_name_mac() -> None:
    """The cached MAC state gives exactly KeyRing.name_mac("throttle", ...)."""
    ring = KEYS.ring
    data = "\x00".join(("", "alice", f"10/{60.0!r}/10")).encode()
    expected = ring.name_mac("throttle", data)[:16].hex()
    assert KEYS.key("alice", RATE) == f"tw:rl:{{{expected}}}"


def test_key_memo_gives_the_same_names() -> None:
    """Remembered names equal freshly computed ones, for every key, rate and scope."""
    keys = ThrottleKeys(ring=KEYS.ring, prefix="tw")
    cases = [("alice", RATE, ""), ("alice", RATE, "login"), ("bob", Rate(1, 1.0, 5), "")]
    first = [keys.key(k, r, scope=s) for k, r, s in cases]
    assert [keys.key(k, r, scope=s) for k, r, s in cases] == first  # now from the memo
    assert first == [KEYS._name(k, r, s) for k, r, s in cases]
    # Equal rates spelled with an int period were named apart before the
    # memo; they still are (the memo keys on the MAC'd text, not on ==).
    assert Rate(10, 60, 10) == RATE
    assert keys.key("alice", Rate(10, 60, 10)) != keys.key("alice", RATE)


def test_key_memo_is_bounded() -> None:
    """Client keys cannot grow the memo: it is emptied when full; long keys stay out."""
    from tokenware.core import throttle

    keys = ThrottleKeys(ring=KEYS.ring, prefix="tw")
    for n in range(throttle.KEY_MEMO_SIZE + 10):
        keys.key(f"k{n}", RATE)
    assert 0 < len(keys._names) <= throttle.KEY_MEMO_SIZE
    keys._names.clear()
    long = "x" * (throttle.KEY_MEMO_MAX_LENGTH + 1)
    assert keys.key(long, RATE) == KEYS._name(long, RATE, "")
    assert not keys._names


@pytest.mark.parametrize("key", ["", "x" * 4097, "\ud800", None, 5])
def test_bad_keys_refused_with_a_warm_memo(key: object) -> None:
    """Validation does not depend on what the memo holds."""
    keys = ThrottleKeys(ring=KEYS.ring, prefix="tw")
    keys.key("alice", RATE)
    for _ in range(2):
        with pytest.raises(ValidationError):
            keys.key(key, RATE)  # type: ignore[arg-type]
    assert list(keys._names) == [("alice", "", RATE._mac_text)]


@pytest.mark.parametrize("result", [OK, NO])
@pytest.mark.parametrize("cost", [0, 1, 3])
def test_hit_flow_one_rate_as_the_general_loop(result: GcraResult, cost: int) -> None:
    """One rate takes a shortcut; its op and decision are those of the general loop."""
    rate = Rate(5, 1.0, 5)
    ops, decision = run(hit_flow([("k", rate)], cost), [result])
    # A per-pair cost list takes the general loop.
    ops_general, general = run(hit_flow([("k", rate)], [cost]), [result])
    assert ops == ops_general == [Gcra("k", rate.interval, 5, cost)]
    assert decision == general
    assert decision.policies == general.policies
    assert len(decision.policies) == 1 and decision.policies[0].policies == ()
    assert (decision.allowed, decision.remaining, decision.rate) == (
        result.allowed,
        result.remaining,
        rate,
    )
