"""Matching query hashes against a bank of identified records: what a match *is*, apart from how it is indexed.

A bank is held as sorted exact digests (MD5, SHA-1, SHA-256) plus three `HammingIndex`es of PDQ-style hashes
(records' own, their stored variants, their regions), all numpy arrays. Exact digests match whatever the image quality; PDQ matches need quality >= PDQ_MIN_QUALITY on the query
(Meta's rule: weaker hashes are too unreliable to act on). The rules, each reported as its own `kind`:

- the query's PDQ hash (and its probes: `QueryHashes.variants` from `imaging.robust.query_variants`) against
  each record's own PDQ hash, at distance <= the threshold (31 unless the bank or the job sets another);
- the same probes against the record's stored variants (`BankEntry.variant_hashes`: `imaging.robust.bank_variants`
  other than regions) at distance <= min(threshold, VARIANT_THRESHOLD): each record offers 18 of
  them, so a tighter radius offsets 18 chances of a near-collision with an unrelated record instead of one, and
  it makes that lookup several times cheaper (docs/robustness.md);
- the query's seven flips and right-angle turns (`QueryHashes.dihedral`) against the own hashes of records
  enrolled without variants (imported from a hash list: they hold no flips of their own), at the threshold;
- the query's region hashes (`QueryHashes.regions`) against the record's (`BankEntry.regions`) by the rule of
  `imaging.regions.region_match`: two different query regions within the query's region threshold
  (`QueryHashes.region_threshold`: REGION_THRESHOLD, wider for a thumbnail) of two different stored ones, since
  one square can be a common texture and two are the picture.

A match names the rule: `pdq` only for the query's own hash on the record's own hash; a variant's kind when one
side used one (`pdq_trimmed`: the query's border was cut, `pdq_crop`: a stored crop matched); both joined when
both did (`pdq_trimmed+dihedral`: a bordered mirror image); `pdq_region` for regions. Where several rules match
one record the plainest is reported (`imaging.signals.kind_order`), with its own distance: the smallest
(kind order, distance) over every probe and row of that record. Which rules a record is searched under follows
from the record alone, so its report is the same whatever else the bank holds and in whatever order
(tests/test_determinism.py).
"""
from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imaging.decode import decode
from imaging.digests import digests
from imaging.hashes import Hash256, PdqHash
from imaging.index import HammingIndex
from imaging.pdq import PDQ_MIN_QUALITY, PDQ_THRESHOLD, pdq, pdq_dihedral
from imaging.regions import (QUERY_REGIONS, REGION_KIND, REGION_THRESHOLD, RegionHash, query_region_threshold,
                             region_hashes, region_match, searched_regions)
from imaging.robust import bank_variants, query_variants
from imaging.signals import EXACT_KINDS, hex_length, is_valid, kind_order

# Set on bench/robustness.py (docs/robustness.md): variants at 20 keep all but 0.4% of their recall at 31.
VARIANT_THRESHOLD = 20


@dataclass(frozen=True)
class Provenance:
    """Where a record came from: an exchange or hotline, its own entry id, the member/ESP that shared it, tags."""

    source: str | None = None
    source_id: str | None = None
    member_id: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class BankEntry:
    record_id: str
    victim_id: str | None = None
    pdq: str | None = None
    md5: str | None = None
    sha1: str | None = None
    sha256: str | None = None
    variant_hashes: tuple[tuple[str, PdqHash], ...] = ()
    regions: tuple[RegionHash, ...] = ()
    provenance: Provenance = Provenance()
    enabled: bool = True
    disabled_until: int | None = None  # unix seconds: the record matches again from then on
    content_id: int | None = None  # the store's id of the record (HMA's bank_content_id)

    @property
    def holds_flips(self) -> bool:
        """Enrolled with its variants (its flips and turns among them), not a bare hash from a hash list."""
        return bool(self.variant_hashes or self.regions)

    def active(self, now: float) -> bool:
        return self.enabled and (self.disabled_until is None or now >= self.disabled_until)


@dataclass(frozen=True)
class Match:
    bank: str
    record_id: str
    victim_id: str | None
    kind: str
    distance: int
    provenance: Provenance = Provenance()
    content_id: int | None = None

    def to_dict(self) -> dict:
        return {"bank": self.bank, "record_id": self.record_id, "victim_id": self.victim_id, "kind": self.kind,
                "distance": self.distance, "content_id": self.content_id, "source": self.provenance.source,
                "source_id": self.provenance.source_id, "member_id": self.provenance.member_id,
                "tags": list(self.provenance.tags)}


@dataclass(frozen=True)
class QueryHashes:
    """The signals of one query image (or of a caller who holds only hashes)."""

    md5: str | None = None
    sha1: str | None = None
    sha256: str | None = None
    pdq: PdqHash | None = None
    quality: int | None = None
    dihedral: tuple[PdqHash, ...] = ()
    variants: tuple[tuple[str, PdqHash], ...] = field(default=())
    regions: tuple[RegionHash, ...] = ()
    region_threshold: int = REGION_THRESHOLD

    @property
    def pdq_usable(self) -> bool:
        return self.pdq is not None and (self.quality is None or self.quality >= PDQ_MIN_QUALITY)


class BankMatcher:
    """One bank, ready to answer queries. Built once per bank revision and reused for every item.

    Everything it holds per record or per row is a numpy array (no Python object per record), so a built bank
    put in Ray's object store is mapped, not copied, by every actor of a node, and a bank of millions of records
    costs its arrays, not millions of objects. Only a matched record's columns become Python values.
    """

    def __init__(self, name: str, entries: Sequence[BankEntry], threshold: int | None = None):
        self.name = name
        self.threshold = PDQ_THRESHOLD if threshold is None else threshold
        self._records = _Records(entries)
        self._exact = {kind: _DigestIndex(kind, [getattr(entry, kind) for entry in entries]) for kind in EXACT_KINDS}
        self._holds_flips = np.array([entry.holds_flips for entry in entries], dtype=bool)
        rows: dict[str, list[tuple[int, str, bytes]]] = {"own": [], "variant": [], "region": []}
        for i, entry in enumerate(entries):
            if entry.pdq:
                rows["own"].append((i, "pdq", bytes.fromhex(entry.pdq)))
            rows["variant"] += [(i, kind, variant.to_bytes()) for kind, variant in entry.variant_hashes]
            rows["region"] += [(i, REGION_KIND, region.to_bytes()) for region in entry.regions]
        radii = {"own": self.threshold, "variant": min(self.threshold, VARIANT_THRESHOLD), "region": REGION_THRESHOLD}
        self._indexes = {name: _RowIndex(found, radii[name]) for name, found in rows.items()}
        self._flips_wanted = any(entry.pdq and not flips for entry, flips in zip(entries, self._holds_flips))

    def __len__(self) -> int:
        return len(self._records)

    def probes(self, query: QueryHashes) -> list[tuple[str, PdqHash]]:
        """The hashes a query is looked up with in every record's own hash and stored variants, each with the
        kind it reports. Flips and right-angle turns are not among them: records enrolled with variants hold
        their own (`flip_probes` covers the others)."""
        return ([("pdq", query.pdq)] if query.pdq_usable else []) + list(query.variants)

    def flip_probes(self, query: QueryHashes) -> list[tuple[str, PdqHash]]:
        """The query's seven flips and right-angle turns, looked up only in the own hashes of records that hold
        none of theirs (imported from a hash list), and only if the bank has such records."""
        if not (query.pdq_usable and self._flips_wanted):
            return []
        return [("pdq_dihedral", h) for h in query.dihedral[1:]]

    def match(self, query: QueryHashes, threshold: int | None = None, now: float | None = None) -> list[Match]:
        """Every active record (enabled, not disabled until later than `now`) the query matches."""
        threshold = self.threshold if threshold is None else threshold
        now = time.time() if now is None else now
        best: dict[int, tuple[str, int]] = {}

        def offer(entry_idx: int, kind: str, distance: int) -> None:
            current = best.get(entry_idx)
            if current is None or (kind_order(kind), distance) < (kind_order(current[0]), current[1]):
                best[entry_idx] = (kind, distance)

        for kind in EXACT_KINDS:
            value = getattr(query, kind)
            if value:
                for entry_idx in self._exact[kind].find(value):
                    offer(entry_idx, kind, 0)
        # Which rows a probe meets depends only on the record it belongs to, never on the bank's other records:
        # a record's report is then the same whatever else the bank holds (tests/test_determinism.py).
        # Flips meet only the own hashes of records that hold none of their own.
        probes, flips = self.probes(query), self.flip_probes(query)
        for rows, searched, radius in ((self._indexes["own"], probes + flips, threshold),
                                       (self._indexes["variant"], probes, min(threshold, VARIANT_THRESHOLD))):
            for probe, _, entry_idx, stored_kind, distance in rows.search([h for _, h in searched], radius):
                if probe >= len(probes) and self._holds_flips[entry_idx]:
                    continue
                offer(entry_idx, match_kind(searched[probe][0], stored_kind), distance)
        for entry_idx, distance in self._region_matches(query.regions, query.region_threshold):
            offer(entry_idx, REGION_KIND, distance)
        matches = [self._records.match(self.name, i, kind, distance)
                   for i, (kind, distance) in best.items() if self._records.active(i, now)]
        return sorted(matches, key=lambda m: (m.distance, kind_order(m.kind), m.record_id))

    def _region_matches(self, regions: Sequence[RegionHash], threshold: int) -> list[tuple[int, int]]:
        """(entry, distance) of every record whose regions match the query's (`region_match`). The strongest
        `searched_regions` are searched in the index, the rest compared only with the rows of the records found:
        the matches are those of searching them all, for one probe less (an eighth of the regions' lookup)."""
        index = self._indexes["region"]
        searched = searched_regions(len(regions))
        hits: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
        for probe, row, entry_idx, _, distance in index.search(regions[:searched], threshold):
            hits[entry_idx].append((probe, row, distance))
        for entry_idx, pairs in hits.items():
            rows = index.rows_of_entry(entry_idx)
            for probe in range(searched, len(regions)):
                pairs += [(probe, row, distance) for row, distance in index.distances(rows, regions[probe])
                          if distance <= threshold]
        return [(entry_idx, distance) for entry_idx, pairs in hits.items()
                if (distance := region_match(pairs, threshold)) is not None]


class _Texts:
    """Optional strings, one per record, packed into one UTF-8 buffer and its end offsets (a column that is all
    absent costs nothing per record)."""

    def __init__(self, values: Iterable[str | None]):
        listed = list(values)
        self.present = _Presence([value is not None for value in listed])
        strings = listed if self.present.all else [value or "" for value in listed]
        text = "".join(strings) if self.present.any else ""
        if text.isascii():
            data = text.encode("ascii")
            lengths = np.fromiter(map(len, strings), dtype=np.int64, count=len(strings))
        else:
            encoded = [value.encode() for value in strings]
            data = b"".join(encoded)
            lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        self.ends = np.cumsum(lengths) if self.present.any else np.zeros(0, dtype=np.int64)
        if len(self.ends) and self.ends[-1] < 2**31:
            self.ends = self.ends.astype(np.int32)
        self.buffer = np.frombuffer(data, dtype=np.uint8).copy()

    def __getitem__(self, i: int) -> str | None:
        if not self.present[i]:
            return None
        start = int(self.ends[i - 1]) if i else 0
        return self.buffer[start:int(self.ends[i])].tobytes().decode()


class _Presence:
    """Which records have a value: one flag each, unless all or none do."""

    def __init__(self, flags: Sequence[bool]):
        flags = np.array(flags, dtype=bool)
        self.all, self.any = bool(flags.all()), bool(flags.any())
        self.flags = None if self.all or not self.any else flags

    def __getitem__(self, i: int) -> bool:
        return self.all if self.flags is None else bool(self.flags[i])


class _Ints:
    """Optional integers, one per record (nothing per record when none has one)."""

    def __init__(self, values: Iterable[int | None]):
        listed = list(values)
        self.present = _Presence([value is not None for value in listed])
        self.values = np.array([value or 0 for value in listed] if self.present.any else [], dtype=np.int64)

    def __getitem__(self, i: int) -> int | None:
        return int(self.values[i]) if self.present[i] else None


class _Records:
    """What a match reports of its record, and whether the record is active, as columns."""

    def __init__(self, entries: Sequence[BankEntry]):
        self.record_id = _Texts(entry.record_id for entry in entries)
        self.victim_id = _Texts(entry.victim_id for entry in entries)
        self.source = _Texts(entry.provenance.source for entry in entries)
        self.source_id = _Texts(entry.provenance.source_id for entry in entries)
        self.member_id = _Texts(entry.provenance.member_id for entry in entries)
        self.tags = _Texts(json.dumps(entry.provenance.tags) if entry.provenance.tags else None for entry in entries)
        self.enabled = np.array([entry.enabled for entry in entries], dtype=bool)
        self.disabled_until = _Ints(entry.disabled_until for entry in entries)
        self.content_id = _Ints(entry.content_id for entry in entries)

    def __len__(self) -> int:
        return len(self.enabled)

    def active(self, i: int, now: float) -> bool:
        until = self.disabled_until[i]
        return bool(self.enabled[i]) and (until is None or now >= until)

    def match(self, bank: str, i: int, kind: str, distance: int) -> Match:
        tags = self.tags[i]
        provenance = Provenance(self.source[i], self.source_id[i], self.member_id[i],
                                tuple(json.loads(tags)) if tags else ())
        return Match(bank, self.record_id[i], self.victim_id[i], kind, distance, provenance, self.content_id[i])


class _DigestIndex:
    """Records by one exact digest: the digests' bytes sorted, searched by bisection. A stored value that is not
    a digest of that kind can equal no query (queries are validated), so it is left out."""

    def __init__(self, kind: str, values: Sequence[str | None]):
        self.width = hex_length(kind) // 2
        kept = [(i, value) for i, value in enumerate(values) if value and is_valid(kind, value)]
        keys = np.array([bytes.fromhex(value) for _, value in kept], dtype=f"S{self.width}")
        order = np.argsort(keys, kind="stable")
        self.keys = keys[order]
        self.entry = np.array([i for i, _ in kept], dtype=np.int64)[order]

    def find(self, value: str) -> list[int]:
        if len(value) != 2 * self.width:
            return []
        try:
            key = np.array(bytes.fromhex(value), dtype=f"S{self.width}")
        except ValueError:
            return []
        start, end = np.searchsorted(self.keys, key, side="left"), np.searchsorted(self.keys, key, side="right")
        return self.entry[start:end].tolist()


class _RowIndex:
    """Rows of one rule (records' own hashes, their variants or their regions) in a HammingIndex laid out for
    the rule's radius, each row remembering its record and kind."""

    def __init__(self, rows: Sequence[tuple[int, str, bytes]], radius: int):
        self.entry = np.asarray([entry_idx for entry_idx, _, _ in rows], dtype=np.int64)
        self.kinds = tuple(sorted({kind for _, kind, _ in rows}))
        codes = {kind: code for code, kind in enumerate(self.kinds)}
        self.kind = np.array([codes[kind] for _, kind, _ in rows], dtype=np.uint8)
        self.index = HammingIndex(radius)
        if rows:
            hashes = np.frombuffer(b"".join(value for _, _, value in rows), dtype=np.uint8).reshape(-1, 32)
            self.index.add(hashes, np.arange(len(rows), dtype=np.int64))

    def __len__(self) -> int:
        return len(self.index)

    def rows_of_entry(self, entry_idx: int) -> np.ndarray:
        """The rows of one record (rows are added record by record, so `entry` ascends)."""
        return np.arange(np.searchsorted(self.entry, entry_idx), np.searchsorted(self.entry, entry_idx, "right"))

    def distances(self, rows: np.ndarray, probe: Hash256) -> list[tuple[int, int]]:
        """(row, distance) of the given rows against one probe."""
        found, distances = self.index.distances(rows, np.frombuffer(probe.to_bytes(), dtype=np.uint8))
        return list(zip(found.tolist(), distances.tolist()))

    def search(self, probes: Sequence[Hash256], radius: int) -> list[tuple[int, int, int, str, int]]:
        """(probe position, row, record, stored kind, distance) of every row within `radius` of a probe."""
        if not probes or not len(self.index):
            return []
        found = self.index.search(np.stack([np.frombuffer(h.to_bytes(), dtype=np.uint8) for h in probes]), radius)
        return [(probe, row, int(self.entry[row]), self.kinds[self.kind[row]], int(distance))
                for probe, (rows, distances) in enumerate(found)
                for row, distance in zip(rows.tolist(), distances.tolist())]


def match_kind(probe_kind: str, stored_kind: str) -> str:
    """The rule a match reports: the query's (`pdq_trimmed`: the query was bordered) and the bank's
    (`pdq_crop`: a stored crop matched) joined, e.g. `pdq_trimmed+dihedral`; plain `pdq` only for plain on plain."""
    if stored_kind in ("pdq", probe_kind):
        return probe_kind
    if probe_kind == "pdq":
        return stored_kind
    return f"{probe_kind}+{stored_kind.removeprefix('pdq_')}"


def match_banks(query: QueryHashes, matchers: Iterable[BankMatcher], threshold: int | None = None,
                now: float | None = None) -> list[Match]:
    found: list[Match] = []
    for matcher in matchers:
        found.extend(matcher.match(query, threshold, now))
    return sorted(found, key=lambda m: (m.distance, kind_order(m.kind), m.bank, m.record_id))


def report_status(query: QueryHashes, matches: Sequence[Match]) -> str:
    """`match`, or why not: `low_quality` when only a PDQ match could have been made and the hash is weak."""
    if matches:
        return "match"
    if query.pdq is not None and not query.pdq_usable:
        return "low_quality"
    return "no_match"


def image_query(rgb: np.ndarray, *, md5: str | None = None, sha1: str | None = None, sha256: str | None = None,
                flips: bool = True) -> QueryHashes:
    """The query for an image: its PDQ hash (with its seven flips and turns unless `flips` is off, for records
    that hold none), the probes of `imaging.robust.query_variants` and the QUERY_REGIONS region hashes of the
    picture it names (upright or trimmed if the query was turned on a canvas or bordered)."""
    dihedral, quality = pdq_dihedral(rgb)
    variants, picture = query_variants(rgb)
    return QueryHashes(md5=md5, sha1=sha1, sha256=sha256, pdq=dihedral[0], quality=quality,
                       dihedral=tuple(dihedral) if flips else (), variants=tuple(variants),
                       regions=tuple(region_hashes(picture, QUERY_REGIONS)),
                       region_threshold=query_region_threshold(*picture.shape[:2]))


def hashes_for_bank(data: bytes, *, robust: bool = False) -> dict[str, Any]:
    """The hashes a bank stores for an enrolled image (its pixels are not kept). With `robust`, also
    `extra_hashes`: {kind: [hex, ...]} of the image's variants (`imaging.robust.bank_variants`), the value of
    the record's `extra_hashes` column, which `bank_entry` reads back."""
    evidence = digests(data)
    rgb = decode(data).rgb
    hash_value, _quality = pdq(rgb)
    hashes: dict[str, Any] = {"pdq": str(hash_value), "md5": evidence.md5, "sha1": evidence.sha1,
                              "sha256": evidence.sha256}
    if robust:
        extra: dict[str, list[str]] = defaultdict(list)
        for kind, variant in bank_variants(rgb):
            extra[kind].append(str(variant))
        hashes["extra_hashes"] = dict(extra)
    return hashes


def bank_entry(record_id: str, victim_id: str | None, pdq: str | None, md5: str | None, sha1: str | None,
               sha256: str | None, extra_hashes: Mapping[str, Sequence[str]] | None, *,
               provenance: Provenance = Provenance(), enabled: bool = True, disabled_until: int | None = None,
               content_id: int | None = None) -> BankEntry:
    """A record from its stored columns; `extra_hashes` as `hashes_for_bank` makes it, regions under REGION_KIND."""
    extra = extra_hashes or {}
    variants = tuple((kind, PdqHash.from_hex(value)) for kind, values in extra.items() if kind != REGION_KIND
                     for value in values)
    regions = tuple(RegionHash.from_hex(value) for value in extra.get(REGION_KIND, ()))
    return BankEntry(record_id, victim_id, pdq, md5, sha1, sha256, variants, regions, provenance, enabled,
                     disabled_until, content_id)
