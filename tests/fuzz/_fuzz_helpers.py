"""Helpers shared by the fuzz tests (importable, unlike a conftest).

The main fuzz test of each parser is decorated with :data:`FUZZ`: 2,000
examples under ``CI=true`` (the issue's floor per parser), 200 locally,
``TOKENWARE_FUZZ_EXAMPLES`` to override. Narrower tests beside it take a
share of that with :func:`fuzz`. The profiles are registered under names of
their own and applied per test, never loaded globally, so the other
hypothesis tests of the suite keep their own settings.

The property every parser must keep is :func:`outcome`: it returns a value
or raises one of the errors its docstring documents, all from
:mod:`tokenware.errors`; anything else (``UnicodeEncodeError``,
``KeyError``, ``binascii.Error``...) propagates and fails the test.
"""

from __future__ import annotations

import os
import string
from collections.abc import Callable
from typing import Any, TypeVar

from _support import IN_CI
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tokenware import Tokenware, errors
from tokenware.testing import FrozenClock, make_secret_key

__all__ = [
    "B64URL",
    "BASE62",
    "EXAMPLES",
    "FUZZ",
    "NASTY",
    "NOW",
    "SECRET",
    "any_text",
    "b64url_text",
    "fuzz",
    "make_tw",
    "mutated",
    "near",
    "outcome",
]

T = TypeVar("T")

NOW = 1_800_000_000.0
SECRET = make_secret_key("test-fuzz")
BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
B64URL = string.ascii_letters + string.digits + "-_"

#: Examples of a main fuzz test: 2,000 in CI (the issue's floor per parser), 200 locally.
EXAMPLES = int(os.environ.get("TOKENWARE_FUZZ_EXAMPLES", "2000" if IN_CI else "200"))

_COMMON: dict[str, Any] = {
    "deadline": None,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile("tokenware-fuzz-ci", max_examples=2000, **_COMMON)
settings.register_profile("tokenware-fuzz-dev", max_examples=200, **_COMMON)
#: The settings of every fuzz test (applied per test, never loaded globally).
FUZZ = settings(
    settings.get_profile("tokenware-fuzz-ci" if IN_CI else "tokenware-fuzz-dev"),
    max_examples=EXAMPLES,
)


def fuzz(share: float) -> settings:
    """:data:`FUZZ` with ``share`` of its examples, for a slow test on a parser
    whose main fuzz test already runs the full count."""
    return settings(FUZZ, max_examples=max(10, int(EXAMPLES * share)))


def outcome(call: Callable[[], T], *documented: type[errors.TokenwareError]) -> T | Exception:
    """``call()``'s value, or the documented error it raised (returned, not raised).

    Any exception outside ``documented`` propagates, which fails the test
    with hypothesis' minimal example. A documented error must also be a real
    tokenware error with a non-empty ``detail``.
    """
    assert documented, "name the documented errors"
    try:
        return call()
    except documented as exc:
        assert isinstance(exc, errors.TokenwareError)
        assert type(exc).__module__ == "tokenware.errors"
        assert exc.detail
        return exc


def make_tw(**kwargs: Any) -> Tokenware:
    """A Tokenware over a fresh memory store, with a frozen clock at :data:`NOW`."""
    kwargs.setdefault("store", "memory://")
    kwargs.setdefault("secret_key", SECRET)
    kwargs.setdefault("clock", FrozenClock(NOW))
    return Tokenware(**kwargs)


# --- strategies -----------------------------------------------------------------------


#: Characters that break careless text handling: lone surrogates (not UTF-8),
#: NUL, line and paragraph separators, a BOM, Unicode spaces and digits, case
#: mappings that change length (İ, ß, ﬁ), astral and combining characters.
NASTY = (
    "\ud800\udbff\udc00\udfff\x00\x7f\r\n\u2028\u2029\ufeff\u00a0\u2003\u3000"
    "\u0660\u00b2\u0130\u00df\ufb01\U0001f600\u0301\uffff\U0010ffff"
)


def any_text(max_size: int = 160) -> st.SearchStrategy[str]:
    """Fully random text: any code point, ASCII-heavy mixtures, base64url-ish
    soup, Latin-1 bytes, and text dense in :data:`NASTY` characters."""
    return st.one_of(
        st.text(max_size=max_size),
        st.text(st.characters(codec="ascii"), max_size=max_size),
        st.text(st.sampled_from(B64URL + ".=+/ \t~"), max_size=max_size),
        st.binary(max_size=max_size).map(lambda b: b.decode("latin-1")),
        st.text(st.sampled_from(NASTY + B64URL[:8] + "._ "), max_size=max_size // 4),
    )


def b64url_text(min_size: int = 0, max_size: int = 200) -> st.SearchStrategy[str]:
    """Text of the base64url alphabet only (valid or not as an encoding)."""
    return st.text(st.sampled_from(B64URL), min_size=min_size, max_size=max_size)


def near(cap: int, fill: st.SearchStrategy[str], spread: int = 4) -> st.SearchStrategy[str]:
    """Strings of ``cap - spread`` to ``cap + spread`` characters, repeating ``fill``."""

    def build(args: tuple[int, str]) -> str:
        length, unit = args
        return (unit * (length // len(unit) + 1))[:length]

    return st.tuples(st.integers(cap - spread, cap + spread), fill.filter(bool)).map(build)


_MUTATIONS = ("replace", "insert", "delete", "swapcase", "duplicate", "truncate")


@st.composite
def mutated(
    draw: st.DrawFn,
    text: str,
    *,
    alphabet: str = B64URL,
    start: int = 0,
    end: int | None = None,
) -> str:
    """``text`` with one random edit in ``text[start:end]``, guaranteed different.

    Edits: replace, insert or delete one character (from ``alphabet`` or
    :data:`NASTY`), swap a letter's case, duplicate a span, truncate.
    """
    end = len(text) if end is None else end
    char = st.sampled_from(alphabet + NASTY + " .=,")
    while True:
        kind = draw(st.sampled_from(_MUTATIONS))
        i = draw(st.integers(start, max(start, end - 1)))
        if kind == "replace":
            out = text[:i] + draw(char) + text[i + 1 :]
        elif kind == "insert":
            out = text[:i] + draw(char) + text[i:]
        elif kind == "delete":
            out = text[:i] + text[i + 1 :]
        elif kind == "swapcase":
            out = text[:i] + text[i : i + 1].swapcase() + text[i + 1 :]
        elif kind == "duplicate":
            j = draw(st.integers(i, end))
            out = text[:j] + text[i:j] + text[j:]
        else:
            out = text[:i]
        if out != text:
            return out
