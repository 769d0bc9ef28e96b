"""A built bank keeps its records as columns (numpy arrays, so actors map it): what a match reports of its record
must come back exactly as the record gave it, whatever the text (non-ASCII, empty, absent) and numbers."""
from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from imaging.matching import BankEntry, BankMatcher, Match, Provenance, QueryHashes

texts = st.one_of(st.none(), st.text(max_size=12))
records = st.builds(
    lambda record_id, victim_id, source, source_id, member_id, tags, enabled, until, content_id: BankEntry(
        record_id, victim_id, md5="ab" * 16, provenance=Provenance(source, source_id, member_id, tuple(tags)),
        enabled=enabled, disabled_until=until, content_id=content_id),
    st.text(min_size=1, max_size=12), texts, texts, texts, texts, st.lists(st.text(max_size=6), max_size=3),
    st.booleans(), st.one_of(st.none(), st.integers(0, 2**40)), st.one_of(st.none(), st.integers(1, 2**62)))


@settings(max_examples=60, deadline=None)
@given(st.lists(records, min_size=1, max_size=8))
def test_a_match_reports_its_record_exactly_as_given(entries):
    now = time.time()
    found = BankMatcher("bank", entries).match(QueryHashes(md5="AB" * 16), now=now)
    expected = [Match("bank", e.record_id, e.victim_id, "md5", 0, e.provenance, e.content_id) for e in entries
                if e.active(now)]
    key = (lambda m: (m.record_id, m.victim_id or "", m.content_id or 0, repr(m.provenance)))
    assert sorted(found, key=key) == sorted(expected, key=key)


def test_digests_match_by_value_in_either_case_and_nothing_else():
    bank = BankMatcher("bank", [BankEntry("a", md5="0" * 31 + "1", sha1="f" * 40), BankEntry("b", md5="not hex"),
                                BankEntry("c", md5="0" * 30 + "10"), BankEntry("d", md5="12" + "0" * 30),
                                BankEntry("e", md5="12" + "0" * 28 + "01")])
    assert [m.record_id for m in bank.match(QueryHashes(md5="0" * 31 + "1"))] == ["a"]
    assert [m.record_id for m in bank.match(QueryHashes(sha1="F" * 40))] == ["a"]
    assert bank.match(QueryHashes(md5="0" * 32)) == []
    # digests are kept as fixed-width bytes: trailing zero bytes are part of the value
    assert [m.record_id for m in bank.match(QueryHashes(md5="12" + "0" * 30))] == ["d"]
    assert bank.match(QueryHashes(md5="12" + "0" * 28)) == []
