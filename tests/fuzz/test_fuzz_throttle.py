"""Fuzzing rate strings, throttle rules, ``tw.throttle.hit`` and client addresses.

Documented: ``parse_rule`` and ``ThrottleRule`` raise ``ValidationError`` for
a malformed rate, ``as_rules`` ``ConfigurationError``, ``tw.throttle.hit``
``ValidationError`` for a malformed rate, key or cost; ``client_address``
never raises for valid options (a bad forwarded value falls back to the peer).
The canonical form ``str(rule)`` parses back to an equal rule.
"""

from __future__ import annotations

from typing import Any

from _fuzz_helpers import FUZZ, NASTY, any_text, fuzz, make_tw, outcome
from hypothesis import example, given
from hypothesis import strategies as st

from tokenware.core.http_throttle import ThrottleRule, as_rules
from tokenware.core.throttle import (
    MAX_NUMBER,
    MAX_RULE_LENGTH,
    MAX_TOLERANCE,
    UNITS,
    Decision,
    Rate,
    Rule,
    client_address,
    parse_rule,
)
from tokenware.errors import ConfigurationError, ValidationError

TW = make_tw()
GRAMMAR = "0123456789/,;= perPERburstBURST" + "secondminutehourdaySECONDMINUTEHOURDAY"


def case(word: str, mask: int) -> str:
    """``word`` with the letters whose bit is set in ``mask`` upper-cased."""
    return "".join(c.upper() if mask >> i & 1 else c for i, c in enumerate(word))


#: Limits, counts and bursts: small ones, the bounds, and far out of range (one draw).
NUMBERS = [*range(1, 13), 15, 30, 60, 99, 100, 3600, 86400, 10**6, 10**8]
NUMBERS += [0, MAX_NUMBER - 1, MAX_NUMBER, MAX_NUMBER + 1, 2 * MAX_NUMBER, 10**30, 10**100]
numbers = st.sampled_from(NUMBERS)
maybe_numbers = st.sampled_from([None, None, None, *NUMBERS])
#: Whitespace at the six places a rate may have it: one draw picks all six.
SPACINGS = [("",) * 6] + [
    tuple(ws if mask >> i & 1 else "" for i in range(6))
    for ws in (" ", "  ", "\t", "\n", "\u2003", "\u00a0")
    for mask in (0b111111, 0b000110, 0b101010, 0b010101, 0b000010, 0b000100, 0b100001)
]


Meaning = tuple[int, int, str, "int | None", bool]


@st.composite
def rate_text(draw: st.DrawFn) -> tuple[str, Meaning]:
    """A rate in any spelling the grammar allows, or almost, and what it means:
    ``(limit, count, unit, burst, well_spelled)``."""
    limit, count, burst = draw(numbers), draw(maybe_numbers), draw(maybe_numbers)
    unit = draw(st.sampled_from([*UNITS, "month", "year", "sec", "min", "ms"]))
    plural = draw(st.booleans())
    spelled = case(unit + ("s" if plural else ""), draw(st.integers(0, 511)))
    sep = draw(st.sampled_from(["/", " per ", " PER ", " Per ", "per", "//"]))
    s = draw(st.sampled_from(SPACINGS))
    text = f"{s[0]}{limit}{s[1]}{sep}{s[2]}"
    if count is not None:
        text += f"{count}{draw(st.sampled_from([' ', '', '  ']))}"
    text += f"{spelled}{s[3]}"
    if burst is not None:
        text += f";{s[4]}{case('burst', draw(st.integers(0, 31)))}={burst}{s[5]}"
    # "per" needs whitespace on both sides (any Unicode space); "//" is no separator.
    well_spelled = sep != "//" and (sep != "per" or (s[1] != "" and s[2] != ""))
    return text, (limit, 1 if count is None else count, unit, burst, well_spelled)


def expected(meaning: Meaning) -> Rate | None:
    """The rate a spelling must parse to, or None if it must be refused."""
    limit, count, unit, burst, well_spelled = meaning
    if not well_spelled or unit not in UNITS:
        return None
    burst = limit if burst is None else burst
    if not all(1 <= n <= MAX_NUMBER for n in (limit, count, burst)):
        return None
    period = float(count * UNITS[unit])
    if period / limit * burst > MAX_TOLERANCE:
        return None
    return Rate(limit, period, burst)


@FUZZ
@given(
    text=st.one_of(
        any_text(),
        st.text(st.sampled_from(GRAMMAR), max_size=60),
        st.text(st.sampled_from(GRAMMAR + NASTY), max_size=40),
        st.builds("{}/{}".format, st.text("0123456789", max_size=MAX_RULE_LENGTH), st.just("day")),
    )
)
@example(text="9" * 990 + "/day")
@example(text="1/" + "9" * 996 + "s")
def test_parse_rule_gives_a_rule_that_round_trips_or_validation_error(text: str) -> None:
    rule = outcome(lambda: parse_rule(text), ValidationError)
    if isinstance(rule, Rule):
        assert rule.rates
        assert parse_rule(str(rule)) == rule
        assert str(parse_rule(str(rule))) == str(rule)  # the canonical form is a fixed point


@fuzz(0.25)
@given(rates=st.lists(rate_text(), min_size=1, max_size=2), joiner=st.sampled_from([",", " , "]))
def test_every_spelling_of_a_rate_parses_to_what_it_means(
    rates: list[tuple[str, Meaning]], joiner: str
) -> None:
    text = joiner.join(t for t, _ in rates)
    rule = outcome(lambda: parse_rule(text), ValidationError)
    wanted = [expected(meaning) for _, meaning in rates]
    if None in wanted or len(text) > MAX_RULE_LENGTH:
        assert isinstance(rule, ValidationError)
    else:
        assert isinstance(rule, Rule) and list(rule.rates) == wanted
        assert parse_rule(str(rule)) == rule


@fuzz(0.1)
@given(
    limit=st.integers(1, MAX_NUMBER),
    count=st.integers(1, 10**6),
    unit=st.sampled_from(sorted(UNITS.values())),
    burst=st.integers(1, MAX_NUMBER),
)
def test_rates_with_whole_second_periods_round_trip_through_str(
    limit: int, count: int, unit: int, burst: int
) -> None:
    rate = outcome(lambda: Rate(limit, float(count * unit), burst), ValidationError)
    if isinstance(rate, Rate):
        assert parse_rule(str(rate)) == Rule((rate,))


@fuzz(0.1)
@given(
    key=st.one_of(any_text(60), st.just(""), st.just("k" * 4097)),
    rate=st.one_of(
        st.sampled_from(["10/minute", "1/day;burst=2", "5/second, 100/day"]), any_text(30)
    ),
    cost=st.sampled_from([1, 0, 2, -1, True]),
)
def test_hit_decides_or_raises_validation_error(key: str, rate: str, cost: Any) -> None:
    decision = outcome(lambda: TW.throttle.hit(key, rate, cost=cost), ValidationError)
    if isinstance(decision, Decision):
        assert decision.limit >= 1 and decision.remaining >= 0
        assert (decision.retry_after == 0) == decision.allowed or cost == 0


@fuzz(0.1)
@given(value=st.one_of(any_text(40), st.sampled_from(["10/minute", "5/second;burst=10"])))
def test_http_throttle_rules_validate_their_rate(value: str) -> None:
    rule = outcome(lambda: ThrottleRule(value), ValidationError)
    rules = outcome(lambda: as_rules(value), ConfigurationError)
    assert isinstance(rule, ThrottleRule) == isinstance(rules, tuple)
    if isinstance(rule, ThrottleRule):
        assert rule.rate == parse_rule(value) == rules[0].rate  # type: ignore[index]


@fuzz(0.1)
@given(
    peer=st.one_of(st.none(), any_text(60), st.sampled_from(["10.0.0.1", "::1", "[::1]:80"])),
    forwarded=st.lists(any_text(60), max_size=3),
    trusted=st.integers(0, 3),
    header=st.sampled_from(["x-forwarded-for", "forwarded"]),
)
def test_client_address_never_raises(
    peer: str | None, forwarded: list[str], trusted: int, header: str
) -> None:
    address = client_address(peer, forwarded, trusted_proxies=trusted, header=header)
    assert isinstance(address, str) and address
    if trusted == 0:  # a client-sent header never changes the key
        assert address == client_address(peer, (), header=header)
