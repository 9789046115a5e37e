"""PAT verify remembers parsed records by their stored bytes: never stale, never shared-mutated."""

from __future__ import annotations

import pytest

from tokenware import Tokenware
from tokenware.core import pat as pat_module
from tokenware.core.pat import TOUCH_INTERVAL, PatRules
from tokenware.testing import FrozenClock


def _rules(tw: Tokenware) -> PatRules:
    rules = tw.pats._rules
    assert isinstance(rules, PatRules)
    return rules


def test_a_revoke_or_an_update_is_seen_on_the_next_verify(tw: Tokenware) -> None:
    issued = tw.pats.issue("alice", roles=["read"])
    assert tw.pats.verify(issued.token).valid
    assert tw.pats.verify(issued.token).valid  # served from the memo
    assert _rules(tw)._records
    tw.pats.update(issued.record.token_id, roles=["write"])
    result = tw.pats.verify(issued.token)
    assert result.valid and result.record is not None and result.record.roles == ("write",)
    tw.pats.revoke(issued.record.token_id)
    result = tw.pats.verify(issued.token)
    assert not result.valid and result.reason == "revoked"


def test_a_wrong_secret_fails_with_the_record_remembered(tw: Tokenware) -> None:
    issued = tw.pats.issue("alice")
    assert tw.pats.verify(issued.token).valid
    rules = _rules(tw)
    parts = rules.parse(issued.token)
    assert not isinstance(parts, str)
    # The right id and a valid checksum, another secret: the memo holds no secret.
    wrong = "A" if parts.secret[:1] != b"A" else "B"
    forged = rules.format_token(parts.token_id, wrong + parts.secret.decode()[1:])
    result = tw.pats.verify(forged)
    assert not result.valid and result.reason == "invalid_secret"
    assert tw.pats.verify(issued.token).valid


def test_touching_last_used_at_never_writes_into_the_remembered_record(
    tw: Tokenware, clock: FrozenClock
) -> None:
    issued = tw.pats.issue("alice")
    first = tw.pats.verify(issued.token)  # touches: last_used_at was None
    assert first.record is not None and first.record.last_used_at == clock()
    remembered = {raw: hit.data["last_used_at"] for raw, hit in _rules(tw)._records.items()}
    clock.advance(TOUCH_INTERVAL + 1)
    second = tw.pats.verify(issued.token)
    assert second.record is not None and second.record.last_used_at == clock()
    for raw, hit in _rules(tw)._records.items():
        if raw in remembered:
            assert hit.data["last_used_at"] == remembered[raw]
    assert tw.pats.get(issued.record.token_id).last_used_at == clock()


def test_the_memo_is_bounded(tw: Tokenware, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pat_module, "_RECORD_MEMO_SIZE", 3)
    tokens = [tw.pats.issue(f"user{i}").token for i in range(8)]
    for token in tokens:
        assert tw.pats.verify(token).valid
    assert 1 <= len(_rules(tw)._records) <= 3


def test_bytes_remembered_for_one_token_id_are_parsed_again_for_another(tw: Tokenware) -> None:
    issued = tw.pats.issue("alice")
    assert tw.pats.verify(issued.token).valid
    rules = _rules(tw)
    raw = next(iter(rules._records))
    again = rules._parsed_record(raw, "someone-else")
    assert again.token_id == "someone-else"
    assert again.record == rules._parsed_record(raw, issued.record.token_id).record
