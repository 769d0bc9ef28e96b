"""Reports are reproducible: a record's reported kind and distance depend on the query and that record alone,
never on what else the bank holds, in which order the records came, or how the bank's indexes are laid out."""
from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from imaging.hashes import PdqHash
from imaging.matching import BankEntry, BankMatcher, QueryHashes
from imaging.regions import RegionHash

VARIANT_KINDS = ("pdq_dihedral", "pdq_rotated", "pdq_crop", "pdq_band", "pdq_trimmed")
QUERY_KINDS = ("pdq_trimmed", "pdq_rotated", "pdq_band")
base_hashes = st.integers(0, 2**256 - 1)
# Bits flipped from a query hash: near enough to match under some rule, or just past its threshold.
flips = st.sets(st.integers(0, 255), max_size=40)


def near(value: int, bits: set[int]) -> int:
    for bit in bits:
        value ^= 1 << bit
    return value


@st.composite
def queries(draw) -> QueryHashes:
    dihedral = tuple(PdqHash(draw(base_hashes)) for _ in range(8))
    variants = tuple((draw(st.sampled_from(QUERY_KINDS)), PdqHash(draw(base_hashes)))
                     for _ in range(draw(st.integers(0, 2))))
    regions = tuple(RegionHash(draw(base_hashes)) for _ in range(draw(st.integers(0, 5))))
    return QueryHashes(pdq=dihedral[0], quality=100, dihedral=dihedral, variants=variants, regions=regions)


@st.composite
def entries(draw, query: QueryHashes, prefix: str) -> list[BankEntry]:
    """Records whose hashes lie near the query's hashes (any of its probes, its flips, its regions) or nowhere
    near; some with stored variants and regions, some bare (imported from a hash list)."""
    whole = [h for h in query.dihedral] + [h for _, h in query.variants]

    def pdq_near() -> PdqHash:
        source = draw(st.sampled_from(whole)) if draw(st.booleans()) else PdqHash(draw(base_hashes))
        return PdqHash(near(int(source), draw(flips)))

    def region_near() -> RegionHash:
        source = int(draw(st.sampled_from(query.regions))) if query.regions and draw(st.booleans()) \
            else draw(base_hashes)
        return RegionHash(near(source, draw(st.sets(st.integers(0, 255), max_size=20))))

    found = []
    for number in range(draw(st.integers(0, 6))):
        bare = draw(st.booleans())
        variants = () if bare else tuple((draw(st.sampled_from(VARIANT_KINDS)), pdq_near())
                                         for _ in range(draw(st.integers(0, 5))))
        regions = () if bare else tuple(region_near() for _ in range(draw(st.integers(0, 4))))
        own = pdq_near()
        digest = f"{number:064x}" if draw(st.booleans()) else None
        found.append(BankEntry(f"{prefix}{number}", pdq=str(own), sha256=digest, variant_hashes=variants,
                               regions=regions))
    return found


def report(matcher: BankMatcher, query: QueryHashes) -> dict[str, tuple[str, int]]:
    return {m.record_id: (m.kind, m.distance) for m in matcher.match(query, now=0)}


@st.composite
def scenarios(draw):
    query = draw(queries())
    return query, draw(entries(query, "kept-")), draw(entries(query, "added-")), draw(st.randoms())


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_adding_records_never_changes_an_existing_match(scenario):
    query, kept, added, shuffle = scenario
    before = report(BankMatcher("bank", kept), query)
    mixed = kept + added
    shuffle.shuffle(mixed)
    after = report(BankMatcher("bank", mixed), query)
    assert {record: found for record, found in after.items() if record.startswith("kept-")} == before
    alone = {record: found for entry in added for record, found in report(BankMatcher("b", [entry]), query).items()}
    assert {record: found for record, found in after.items() if record.startswith("added-")} == alone


def test_a_bare_record_added_to_a_robust_bank_leaves_the_robust_records_reports_alone():
    """The reported regression: a mirrored query matched its record's stored mirror image at distance 8; after
    a hash-only record joined the bank, the query's own flipped probe met the record's own hash at 0."""
    rng = random.Random(16)
    own = rng.getrandbits(256)
    mirrored = rng.getrandbits(256)
    robust = BankEntry("robust", pdq=str(PdqHash(own)),
                       variant_hashes=(("pdq_dihedral", PdqHash(near(mirrored, set(range(8))))),))
    query = QueryHashes(pdq=PdqHash(mirrored), quality=100,
                        dihedral=(PdqHash(mirrored), PdqHash(own), *(PdqHash(rng.getrandbits(256)) for _ in range(6))))
    bare = BankEntry("bare", pdq=str(PdqHash(rng.getrandbits(256))))
    assert report(BankMatcher("b", [robust]), query) == {"robust": ("pdq_dihedral", 8)}
    assert report(BankMatcher("b", [robust, bare]), query) == {"robust": ("pdq_dihedral", 8)}
    bare_mirror = BankEntry("bare-mirror", pdq=str(PdqHash(own)))
    assert report(BankMatcher("b", [bare_mirror, robust]), query) == {"robust": ("pdq_dihedral", 8),
                                                                     "bare-mirror": ("pdq_dihedral", 0)}
