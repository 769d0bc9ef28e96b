"""Exact Hamming range search over 256-bit hashes (PDQ) by multi-index hashing.

Multi-index hashing (Norouzi, Punjani and Fleet, "Fast exact search in Hamming space with multi-index
hashing", 2014): the 256 bits are cut into m substrings and every substring gets a direct-address table
(CSR: ``offsets`` of length 2**b + 1 and the rows sorted by substring value). For a query at radius d each
table i is probed within a radius r_i of the query's substring, with sum(r_i + 1) >= d + 1: a hash whose every
substring were further than r_i would differ in more than d bits, so no match is missed (the generalised
pigeonhole principle; r_i = -1 skips table i). The radii are chosen per query radius by a cost model of
probes and candidates, candidates are verified by a popcount over four uint64 words, and a segment whose
tables would cost more than reading every row is scanned linearly, so any radius 0..256 is exact.

The substring width follows the segment size (about log2(n) bits) and the radius the index is built for
(`HammingIndex(radius)`, 31 by default: radius 2 on most tables), so most probes hit zero or one row. A table
is addressed directly by at most 24 bits (64 MB of offsets), by 25 or 26 in a segment of 2**26 or 2**27 rows and
more (about two rows per bucket); beyond 2**24 rows a segment may cut substrings up to 8 bits wider than that,
and keeps each table entry's further bits in a byte beside it. A probe then flips only the directly addressed
bits, reads its bucket's bytes, and verifies the rows whose bytes are within the radius the flip leaves. (A robust
bank's regions at 1M records are 146M rows searched at 14: docs/robustness.md has what each step saved there.)

Incremental updates: rows live in immutable segments, newest last. ``add`` builds a segment for the batch
and merges it with its predecessor while the predecessor is less than four times larger, so an index holds
O(log n) segments and each row is rebuilt O(log n) times. ``remove`` sets a tombstone; merges drop dead rows
and the whole index is compacted once a quarter of its rows are dead.

Ids are unique: adding an id that is already present replaces its hash (upsert); the same id twice in one
``add`` call is a ValueError. Several ids may share one hash and are all returned.

Memory (``memory_bytes``, one segment of uniformly random hashes): 1M hashes 139 MB (13 tables of 19-20
bits), 10M hashes 1320 MB (11 tables of 23-24 bits), i.e. 130-140 MB per million: per row 32 B hash, 8 B id,
1 B tombstone and 4 B per table (5 B with an extra byte), plus 4 B per bucket (2**b per table for b directly
addressed bits).

Speed (bench/index.py on 2 cores shared with other work, d = 31, half near-copy and half random queries,
timed alternately with faiss IndexBinaryMultiHash at its fastest exact setting, nhash=11 b=23 nflip=2):
1M hashes 0.10 ms/query, 4.5x faster; 10M hashes 0.30 ms/query, 12.5x faster (the probes compiled: before,
in numpy calls, 0.13-0.16 and 0.33-0.72 ms, 3.2-4.4x and 7.6-10x).
Building one segment (compiled counting sorts, ids in order, load average about 3): 1M hashes 0.17 s,
10M hashes 2.2-2.4 s (faiss at that setting: 10 s and 119 s); the first build in a process also loads the
compiled code (0.2-0.3 s, about 2 s more when numba's cache is cold).
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

import numpy as np
from llvmlite import binding as llvm
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

HASH_BYTES = 32
_WORDS = 4
_BITS = 256
# A table's buckets are addressed directly by at most _DIRECT_BITS of its substring's bits (2**24 offsets,
# 64 MB), or up to _MAX_DIRECT_BITS in a segment large enough to keep about two rows per bucket (its offsets
# then cost at most 16 B per row); a wider substring keeps its further bits, at most _MAX_EXTRA_BITS, in a byte
# beside each row of the table, and a probe reads its bucket's bytes and verifies only the rows whose bytes agree.
_DIRECT_BITS = 24
_MAX_DIRECT_BITS = 26
_MAX_EXTRA_BITS = 8
# A substring's key is parked in an int32 table entry and sorted packed beside a 31-bit row in an int64.
_MAX_SUBSTRING_BITS = 32
# Segments smaller than this get no tables and are scanned: probing them costs more numpy calls than
# reading a few hundred rows.
_LINEAR_SEGMENT_ROWS = 256
# Relative cost of one probe (bucket lookup), one extra byte read in a bucket and one verified candidate row;
# measured at 10M rows on the numpy probes that preceded `_probe`, about 35 ns and 80 ns for probes and
# candidates (not refitted to the compiled loop).
_PROBE_COST = 1.0
_EXTRA_BYTE_COST = 0.1
_CANDIDATE_COST = 2.0
# A linear scan works in blocks of about this many row-query pairs: numpy temporaries of this size stay in
# the allocator's reused heap instead of fresh pages, which is several times faster.
_BLOCK = 1 << 14
_MERGE_RATIO = 4
_DEAD_FRACTION_TO_COMPACT = 0.25
_FILE_FORMAT = 2

_BYTE_SUM = np.uint64(0x0101010101010101)
_SHIFT_TOP_BYTE = np.uint64(56)
_HAS_BITWISE_COUNT = hasattr(np, "bitwise_count")  # numpy >= 2
_POPCOUNT_16 = np.array([bin(value).count("1") for value in range(1 << 16)], dtype=np.uint8)


def hashes_from_hex(hexes: Iterable[str]) -> np.ndarray:
    """Hex strings (64 characters each, as PDQ tools print them) -> uint8 array of shape (N, 32)."""
    hexes = list(hexes)
    for position, text in enumerate(hexes):
        if not isinstance(text, str) or len(text) != 2 * HASH_BYTES:
            raise ValueError(f"hash {position}: expected {2 * HASH_BYTES} hex characters, got {text!r}")
    try:
        raw = bytes.fromhex("".join(hexes))
    except ValueError:
        raw = b""
    if len(raw) != HASH_BYTES * len(hexes):
        for position, text in enumerate(hexes):
            try:
                if len(bytes.fromhex(text)) == HASH_BYTES:
                    continue
            except ValueError:
                pass
            raise ValueError(f"hash {position}: not hexadecimal: {text!r}")
    return np.frombuffer(raw, dtype=np.uint8).reshape(len(hexes), HASH_BYTES).copy()


def _to_words(hashes: np.ndarray) -> np.ndarray:
    """(N, 32) uint8, most significant byte first -> (N, 4) native uint64."""
    return np.ascontiguousarray(hashes).view(">u8").astype(np.uint64)


def _to_hashes(words: np.ndarray) -> np.ndarray:
    return words.astype(">u8").view(np.uint8).reshape(len(words), HASH_BYTES)


def _popcount_rows(words: np.ndarray) -> np.ndarray:
    """Set bits per row of an (N, 4) uint64 array, as int32."""
    if _HAS_BITWISE_COUNT:
        return np.bitwise_count(words).sum(axis=1, dtype=np.int32)
    # 16-bit table lookups leave one count (<= 16) per byte; multiplying by 0x0101.. sums a word's 8 bytes
    # into its top byte (<= 128, so no overflow, unlike summing all 256 bits at once).
    counts = np.take(_POPCOUNT_16, words.view(np.uint16)).view(np.uint64)
    counts *= _BYTE_SUM
    counts >>= _SHIFT_TOP_BYTE
    return (counts[:, 0] + counts[:, 1]).astype(np.int32)


def _substring_keys(words: np.ndarray, starts: tuple[int, ...], lengths: tuple[int, ...]) -> np.ndarray:
    """(N, m) int64: bits [start, start + length) of each 256-bit row (bit 0 = most significant).

    A substring spans one word or straddles two; both cases are one formula,
    ((first << left) | (second >> right) * straddles) >> down, with every shift below 64.
    """
    first_word, second_word, left, right, straddles, down, mask = _substring_shifts(starts, lengths)
    first = words[:, first_word] << left
    second = (words[:, second_word] >> right) * straddles
    return (((first | second) >> down) & mask).astype(np.int64)


@lru_cache(maxsize=256)
def _substring_shifts(starts: tuple[int, ...], lengths: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """The word indices, shifts and masks of `_substring_keys`, computed once per table layout (a lookup
    would otherwise spend more time on these small arrays than on a sparse bank's buckets)."""
    starts_array, lengths_array = np.asarray(starts), np.asarray(lengths)
    first_word, offset = np.divmod(starts_array, 64)
    end = offset + lengths_array  # bit after the substring, counted from the first word's top
    straddles = end > 64
    left = np.where(straddles, end - 64, 0).astype(np.uint64)
    right = np.where(straddles, 128 - end, 63).astype(np.uint64)
    down = np.where(straddles, 0, 64 - end).astype(np.uint64)
    mask = ((np.uint64(1) << lengths_array.astype(np.uint64)) - np.uint64(1)).astype(np.uint64)
    shifts = (first_word, np.minimum(first_word + 1, _WORDS - 1), left, right, straddles.astype(np.uint64), down, mask)
    for array in shifts:
        array.flags.writeable = False
    return shifts


@njit(cache=True, nogil=True)
def _substring_key(words: np.ndarray, row: int, table: int, shifts: tuple) -> int:
    """Bits of one row's substring `table`, by the formula and shifts of `_substring_keys`."""
    first_word, second_word, left, right, straddles, down, mask = shifts
    first = words[row, first_word[table]] << left[table]
    second = (words[row, second_word[table]] >> right[table]) * straddles[table]
    return np.int64(((first | second) >> down[table]) & mask[table])


@njit(cache=True, nogil=True)
def _fill_tables(
    words: np.ndarray, shifts: tuple, lengths: np.ndarray, extra_bits: np.ndarray, bases: np.ndarray,
    offsets: np.ndarray, table_rows: np.ndarray, extra: np.ndarray,
) -> None:
    """Fill a segment's CSR tables (and the extra bytes of its wide ones). One pass over the words parks every
    table's keys in its own part of `table_rows` (a 32-bit key wraps in the int32, and is read back masked),
    which `_sort_table` then overwrites with the rows."""
    rows = words.shape[0]
    partitioned = np.empty(rows, np.int64)
    for row in range(rows):
        for table in range(len(lengths)):
            table_rows[table * rows + row] = _substring_key(words, row, table, shifts)
    for table in range(len(lengths)):
        first = table * rows
        _sort_table(table_rows[first : first + rows], lengths[table] - extra_bits[table], extra_bits[table],
                    bases[table], first, offsets, partitioned, extra)
    offsets[len(offsets) - 1] = len(table_rows)


@njit(cache=True, nogil=True)
def _sort_table(
    keys_then_rows: np.ndarray, bits: int, extra_bits: int, base: int, first: int, offsets: np.ndarray,
    partitioned: np.ndarray, extra: np.ndarray,
) -> None:
    """Stable counting sort of one table's rows by the key's top `bits` (its bucket), the offsets of its 2**bits
    buckets, and each placed row's low `extra_bits` in `extra`.

    In two levels of about 2**(bits / 2) counters each, as one level of 2**bits counters misses the cache on
    almost every row: the rows are partitioned by the bucket's high part (kept as key << 31 | row: a key has at
    most 32 bits and a row 31), then each partition, which spans a run of consecutive buckets, is counted and
    placed by the low part.
    """
    low_bits = bits - bits // 2
    low_mask = (1 << low_bits) - 1
    extra_mask = (1 << extra_bits) - 1
    low_shift = 31 + extra_bits
    partition_next = np.zeros((1 << (bits // 2)) + 1, np.int64)
    for row in range(len(keys_then_rows)):
        partition_next[((np.int64(keys_then_rows[row]) & 0xFFFFFFFF) >> (extra_bits + low_bits)) + 1] += 1
    for partition in range(1, len(partition_next)):
        partition_next[partition] += partition_next[partition - 1]
    for row in range(len(keys_then_rows)):
        key = np.int64(keys_then_rows[row]) & 0xFFFFFFFF
        high = key >> (extra_bits + low_bits)
        position = partition_next[high]
        partitioned[position] = (key << 31) | row
        partition_next[high] = position + 1
    bucket_next = np.empty(1 << low_bits, np.int64)
    begin = bucket_start = 0
    for partition in range(1 << (bits // 2)):
        end = partition_next[partition]  # after the scatter, where the partition ends
        bucket_next[:] = 0
        for entry in range(begin, end):
            bucket_next[(partitioned[entry] >> low_shift) & low_mask] += 1
        for low in range(1 << low_bits):
            count = bucket_next[low]
            offsets[base + (partition << low_bits) + low] = first + bucket_start
            bucket_next[low] = bucket_start
            bucket_start += count
        for entry in range(begin, end):
            low = (partitioned[entry] >> low_shift) & low_mask
            position = bucket_next[low]
            keys_then_rows[position] = partitioned[entry] & 0x7FFFFFFF
            if extra_bits:
                extra[first + position] = (partitioned[entry] >> 31) & extra_mask
            bucket_next[low] = position + 1
        begin = end


@njit(cache=True, nogil=True, inline="always")
def _popcount64(x: np.uint64) -> int:
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return int((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


# LLVM names its intrinsics by pointer type: opaque pointers ("p0") from LLVM 15 on.
_PREFETCH = "llvm.prefetch.p0" if llvm.llvm_version_info >= (15,) else "llvm.prefetch.p0i8"


@intrinsic
def _prefetch(typingctx, array, index):  # noqa: ARG001 (numba's intrinsic signature)
    """Start loading array[index] (its row `index`, of a 2-d array) into the caches, a read kept in every level,
    without waiting for it."""

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        view = context.make_array(array_type)(context, builder, args[0])
        at = [args[1]] + [ir.Constant(args[1].type, 0)] * (array_type.ndim - 1)
        pointer = cgutils.get_item_pointer(context, builder, array_type, view, at, wraparound=False)
        byte_pointer = ir.PointerType(ir.IntType(8))
        word = ir.IntType(32)
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_pointer, word, word, word]), _PREFETCH)
        builder.call(function, [builder.bitcast(pointer, byte_pointer), ir.Constant(word, 0), ir.Constant(word, 3),
                                ir.Constant(word, 1)])
        return context.get_dummy_value()

    return types.void(array, index), codegen


@njit(cache=True, nogil=True)
def _probe(
    query_keys: np.ndarray, queries: np.ndarray, table: np.ndarray, flip: np.ndarray, extra_bits: np.ndarray,
    extra_mask: np.ndarray, extra_radius: np.ndarray, base: np.ndarray, offsets: np.ndarray,
    table_rows: np.ndarray, extra: np.ndarray, words: np.ndarray, max_distance: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every probe of a `_ProbePlan` for every query: its bucket's rows (those whose extra byte is within the
    probe's extra radius, in a wide table) verified by their full distance. Returns (query, row, distance),
    each (query, row) once although several tables may reach a row.

    Compiled, as a lookup of a few queries otherwise spends most of its time in the overhead of numpy calls.
    Per query in passes (buckets, then their entries, then the candidates' words), each prefetching what the
    next reads: the offsets, entries and words are mostly cache (and, in a large bank, TLB) misses, and a loop
    that tested each bucket as it read it would take them one at a time."""
    rows = words.shape[0]
    probes = len(flip)
    wide = len(extra) > 0
    buckets = np.empty(probes, np.int64)
    begins = np.empty(probes, np.int64)
    counts = np.empty(probes, np.int64)
    wanted = np.empty(probes, np.int64)
    candidates = np.empty(4 * probes, np.int64)
    agrees = np.empty(4 * probes, np.bool_)
    found_query = np.empty(16, np.int64)
    found_row = np.empty(16, np.int64)
    found_distance = np.empty(16, np.int32)
    found = 0
    for query in range(query_keys.shape[0]):
        for probe in range(probes):
            key = query_keys[query, table[probe]] ^ flip[probe]
            wanted[probe] = key & extra_mask[probe]
            buckets[probe] = (key >> extra_bits[probe]) + base[probe]
            _prefetch(offsets, buckets[probe])
        total = 0
        for probe in range(probes):
            begins[probe] = offsets[buckets[probe]]
            counts[probe] = offsets[buckets[probe] + 1] - begins[probe]
            if wide:
                _prefetch(extra, begins[probe])
            else:
                _prefetch(table_rows, begins[probe])
            total += counts[probe]
        if total > len(candidates):
            candidates = np.empty(2 * total, np.int64)
            agrees = np.empty(2 * total, np.bool_)
        total = 0
        for probe in range(probes):
            for position in range(begins[probe], begins[probe] + counts[probe]):
                candidates[total] = position
                agrees[total] = not wide or _popcount64(np.uint64(extra[position] ^ wanted[probe])) <= extra_radius[probe]
                total += 1
        kept = 0
        for candidate in range(total):
            candidates[kept] = candidates[candidate]
            kept += agrees[candidate]
        for candidate in range(kept):
            _prefetch(table_rows, candidates[candidate])
        for candidate in range(kept):
            candidates[candidate] = table_rows[candidates[candidate]]
            _prefetch(words, candidates[candidate])
        q0, q1, q2, q3 = queries[query, 0], queries[query, 1], queries[query, 2], queries[query, 3]
        for candidate in range(kept):
            row = candidates[candidate]
            distance = (_popcount64(words[row, 0] ^ q0) + _popcount64(words[row, 1] ^ q1)
                        + _popcount64(words[row, 2] ^ q2) + _popcount64(words[row, 3] ^ q3))
            if distance > max_distance:
                continue
            if found == len(found_row):
                found_query = np.concatenate((found_query, np.empty(found, np.int64)))
                found_row = np.concatenate((found_row, np.empty(found, np.int64)))
                found_distance = np.concatenate((found_distance, np.empty(found, np.int32)))
            found_query[found] = query
            found_row[found] = row
            found_distance[found] = distance
            found += 1
    order = np.argsort(found_query[:found] * rows + found_row[:found], kind="mergesort")
    keep = np.empty(found, np.bool_)
    previous = -1
    for rank in range(found):
        pair = found_query[order[rank]] * rows + found_row[order[rank]]
        keep[rank] = pair != previous
        previous = pair
    order = order[keep]
    return found_query[order], found_row[order], found_distance[order]

@lru_cache(maxsize=128)
def _flip_masks(bits: int, radius: int) -> np.ndarray:
    """All values below 2**bits with at most `radius` set bits (the probe offsets of one table)."""
    values = [0]
    for weight in range(1, radius + 1):
        values.extend(sum(1 << bit for bit in chosen) for chosen in itertools.combinations(range(bits), weight))
    masks = np.array(values, dtype=np.int64)
    masks.flags.writeable = False
    return masks


def _split_lengths(tables: int) -> tuple[int, ...]:
    base, extra = divmod(_BITS, tables)
    return (base + 1,) * extra + (base,) * (tables - extra)


def _table_cost(bits: int, direct_bits: int, rows: int, radius: int) -> float:
    """Estimated cost of probing one table within `radius` (0 for -1): a probe flips w <= radius of the
    directly addressed bits, reads its bucket (and the bucket's extra bytes) and verifies the rows whose extra
    bits are within radius - w."""
    direct = min(bits, direct_bits)
    extra = bits - direct
    bucket_rows = rows / 2.0**direct
    cost = 0.0
    for weight in range(min(radius, direct) + 1):
        near = sum(math.comb(extra, k) for k in range(min(radius - weight, extra) + 1)) / 2.0**extra
        cost += math.comb(direct, weight) * (
            _PROBE_COST + _EXTRA_BYTE_COST * bucket_rows * (extra > 0) + _CANDIDATE_COST * bucket_rows * near
        )
    return cost


def _plan_radii(lengths: tuple[int, ...], direct_bits: int, rows: int, max_distance: int) -> tuple[list[int], float]:
    """Probe radius per table (-1 = skip) covering `max_distance`, and its estimated cost per query.

    Greedy on the marginal cost of widening one table by one bit: the marginal cost grows with the radius, so
    the greedy choice is optimal for this separable cost.
    """
    radii = [-1] * len(lengths)
    cost = 0.0
    for _ in range(max_distance + 1):
        step, table = min(
            (_table_cost(bits, direct_bits, rows, radius + 1) - _table_cost(bits, direct_bits, rows, radius), i)
            for i, (bits, radius) in enumerate(zip(lengths, radii))
            if radius < bits
        )
        radii[table] += 1
        cost += step
    return radii, cost


@dataclass(frozen=True)
class _ProbePlan:
    """Every probe a query makes, as per-probe arrays: its table, the flip of the table's substring (of its
    directly addressed bits only, in a wide table), how the flipped substring becomes a bucket
    (``(key >> extra_bits) + base``) and the extra byte its rows are compared with, and how many of those
    bits may differ (`extra_radius`, the table's radius left after the flip)."""

    table: np.ndarray
    flip: np.ndarray
    extra_bits: np.ndarray
    extra_mask: np.ndarray
    extra_radius: np.ndarray
    base: np.ndarray


@lru_cache(maxsize=256)
def _probe_plan(lengths: tuple[int, ...], direct_bits: int, rows: int, max_distance: int) -> _ProbePlan | None:
    """The probes of a query at `max_distance`, or None when scanning the rows is cheaper."""
    radii, cost = _plan_radii(lengths, direct_bits, rows, max_distance)
    if cost >= _CANDIDATE_COST * rows:
        return None
    tables, flips, extra_radii = [], [], []
    for table, (bits, radius) in enumerate(zip(lengths, radii)):
        if radius < 0:
            continue
        direct = min(bits, direct_bits)
        reach = min(radius, direct)
        masks = _flip_masks(direct, reach)
        weights = np.repeat(np.arange(reach + 1), [math.comb(direct, weight) for weight in range(reach + 1)])
        tables.append(np.full(len(masks), table))
        flips.append(masks << (bits - direct))
        extra_radii.append(np.minimum(radius - weights, bits - direct))
    table = np.concatenate(tables)
    extra_bits = _extra_bits(lengths, direct_bits)[table]
    plan = _ProbePlan(table, np.concatenate(flips), extra_bits, (np.int64(1) << extra_bits) - 1,
                      np.concatenate(extra_radii), _key_bases(lengths, direct_bits)[table])
    for array in (plan.table, plan.flip, plan.extra_bits, plan.extra_mask, plan.extra_radius, plan.base):
        array.flags.writeable = False
    return plan


def _direct_bits(rows: int) -> int:
    return min(_MAX_DIRECT_BITS, max(_DIRECT_BITS, math.floor(math.log2(max(rows, 1))) - 1))


def _choose_lengths(rows: int, radius: int, direct_bits: int) -> tuple[int, ...]:
    """Substring widths for a segment of `rows` rows: the cheapest plan at `radius`. About log2(rows) bits fill
    a direct-addressed table; with more rows than 2**direct_bits a table may be up to _MAX_EXTRA_BITS wider."""
    if rows < _LINEAR_SEGMENT_ROWS:
        return ()
    widest = max(8, math.floor(math.log2(rows)) + 1)
    if widest > direct_bits:
        widest = min(direct_bits + _MAX_EXTRA_BITS, _MAX_SUBSTRING_BITS)
    options = [_split_lengths(tables) for tables in range(math.ceil(_BITS / widest), 33)]
    return min(options, key=lambda lengths: _plan_radii(lengths, direct_bits, rows, radius)[1])


@lru_cache(maxsize=256)
def _extra_bits(lengths: tuple[int, ...], direct_bits: int) -> np.ndarray:
    """Per table, the substring's bits beyond the directly addressed ones."""
    extra = np.maximum(np.asarray(lengths, dtype=np.int64) - direct_bits, 0)
    extra.flags.writeable = False
    return extra


@lru_cache(maxsize=256)
def _key_bases(lengths: tuple[int, ...], direct_bits: int) -> np.ndarray:
    """Where each table's buckets start in the concatenated offsets array."""
    buckets = [1 << min(bits, direct_bits) for bits in lengths]
    bases = np.concatenate(([0], np.cumsum(buckets))).astype(np.int64)
    bases.flags.writeable = False
    return bases


@lru_cache(maxsize=256)
def _starts(lengths: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(np.cumsum((0,) + lengths[:-1]).tolist())


@dataclass
class _Segment:
    """Rows sorted by id, with one CSR table per substring (none for a linear-scan segment).

    The tables are concatenated so that one gather serves all of them: bucket k of table t spans
    ``table_rows[offsets[base_t + k] : offsets[base_t + k + 1]]``, base_t = the buckets of earlier tables. A
    table wider than ``direct_bits`` is bucketed by its substring's top bits, and ``extra`` holds the rest of
    each of its entries' substring (empty when no table is that wide).
    """

    ids: np.ndarray  # int64 (n,), ascending
    words: np.ndarray  # uint64 (n, 4)
    alive: np.ndarray  # bool (n,)
    lengths: tuple[int, ...]
    direct_bits: int
    offsets: np.ndarray  # int32 (sum of buckets + 1,), or int64 when m * n >= 2**31
    table_rows: np.ndarray  # int32 (m * n,): per table, rows ordered by bucket, in row order within one
    extra: np.ndarray  # uint8 (m * n,) beside table_rows, or (0,)
    dead: int = 0

    @classmethod
    def build(cls, ids: np.ndarray, words: np.ndarray, radius: int) -> "_Segment":
        """A segment over unique `ids` and their `words`, laid out for searches at `radius`; it keeps the
        arrays as they are when already in id order (so the caller passes arrays of its own, not views)."""
        if (ids[1:] < ids[:-1]).any():
            order = np.argsort(ids, kind="stable")
            ids, words = ids[order], words[order]
        rows = len(ids)
        direct_bits = _direct_bits(rows)
        lengths = _choose_lengths(rows, radius, direct_bits)
        index_type = np.int32 if len(lengths) * rows < 2**31 else np.int64
        offsets = np.zeros(_key_bases(lengths, direct_bits)[-1] + 1, dtype=index_type)
        table_rows = np.empty(len(lengths) * rows, dtype=np.int32)
        extra_bits = _extra_bits(lengths, direct_bits)
        extra = np.zeros(len(table_rows) if extra_bits.any() else 0, dtype=np.uint8)
        if lengths:
            shifts = _substring_shifts(_starts(lengths), lengths)
            _fill_tables(words, shifts, np.array(lengths), extra_bits, _key_bases(lengths, direct_bits), offsets,
                         table_rows, extra)
        return cls(ids, words, np.ones(rows, dtype=bool), lengths, direct_bits, offsets, table_rows, extra)

    @property
    def live(self) -> int:
        return len(self.ids) - self.dead

    def live_rows(self) -> tuple[np.ndarray, np.ndarray]:
        if self.dead == 0:
            return self.ids, self.words
        return self.ids[self.alive], self.words[self.alive]

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Rows holding live entries for the given (unique) ids."""
        if len(self.ids) == 0:
            return np.empty(0, dtype=np.int64)
        rows = np.minimum(np.searchsorted(self.ids, ids), len(self.ids) - 1)
        rows = rows[self.ids[rows] == ids]
        return rows[self.alive[rows]]

    def kill(self, rows: np.ndarray) -> None:
        self.alive[rows] = False
        self.dead += len(rows)

    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.ids, self.words, self.alive, self.offsets, self.table_rows, self.extra))

    def search(self, queries: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Matches as (query index, row, distance) arrays, each (query, row) once, dead rows included."""
        if not self.lengths:
            return self._scan(queries, max_distance)
        plan = _probe_plan(self.lengths, self.direct_bits, len(self.ids), max_distance)
        if plan is None:
            return self._scan(queries, max_distance)
        query_keys = _substring_keys(queries, _starts(self.lengths), self.lengths)
        return _probe(query_keys, queries, plan.table, plan.flip, plan.extra_bits, plan.extra_mask, plan.extra_radius,
                      plan.base, self.offsets, self.table_rows, self.extra, self.words, max_distance)

    def _scan(self, queries: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        hits_q, hits_row, hits_dist = [], [], []
        for lo in range(0, len(self.words), _BLOCK):
            chunk = self.words[lo : lo + _BLOCK]
            group = max(1, _BLOCK // len(chunk))
            for first in range(0, len(queries), group):
                block = queries[first : first + group]
                distances = _popcount_rows((chunk[None, :, :] ^ block[:, None, :]).reshape(-1, _WORDS))
                keep = np.flatnonzero(distances <= max_distance)
                if len(keep):
                    hits_q.append(keep // len(chunk) + first)
                    hits_row.append(keep % len(chunk) + lo)
                    hits_dist.append(distances[keep])
        return _concat(hits_q, np.int64), _concat(hits_row, np.int64), _concat(hits_dist, np.int32)


def _concat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.empty(0, dtype=dtype)


def _merge(segments: list[_Segment], radius: int) -> _Segment:
    parts = [segment.live_rows() for segment in segments]
    return _Segment.build(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), radius)


def load_compiled() -> None:
    """One search through the compiled probes, so that a process's first real search does not wait while numba
    loads them (0.3-0.5 s here, seconds more with numba's cache cold): for actors to call when they start."""
    rng = np.random.default_rng(0)
    index = HammingIndex()
    index.add(rng.integers(0, 256, (_LINEAR_SEGMENT_ROWS, HASH_BYTES), dtype=np.uint8),
              np.arange(_LINEAR_SEGMENT_ROWS, dtype=np.int64))
    index.search(rng.integers(0, 256, (1, HASH_BYTES), dtype=np.uint8), 31)


class HammingIndex:
    """Exact range search: every stored (id, hash) within a Hamming distance of each query hash.

    Hashes are uint8 arrays of shape (N, 32), a row being ``bytes.fromhex(pdq_hex)``
    (see ``hashes_from_hex``); ids are int64. Module docstring: method, update policy, memory.
    The tables are laid out for searches at `radius` (most of an index's searches); every radius is exact.
    """

    def __init__(self, radius: int = 31) -> None:
        if not 0 <= radius <= _BITS:
            raise ValueError(f"radius must be in 0..{_BITS}, got {radius}")
        self.radius = radius
        self._segments: list[_Segment] = []

    def __len__(self) -> int:
        return sum(segment.live for segment in self._segments)

    def memory_bytes(self) -> int:
        return sum(segment.nbytes() for segment in self._segments)

    def add(self, hashes: np.ndarray, ids: np.ndarray) -> None:
        """Insert rows; an id already present is replaced, an id repeated within `ids` is a ValueError."""
        hashes = np.asarray(hashes)
        ids = np.asarray(ids)
        if hashes.dtype != np.uint8 or hashes.ndim != 2 or hashes.shape[1] != HASH_BYTES:
            raise ValueError(f"hashes must be uint8 of shape (N, {HASH_BYTES}), got {hashes.dtype} {hashes.shape}")
        if ids.ndim != 1 or len(ids) != len(hashes) or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"ids must be integers of shape ({len(hashes)},), got {ids.dtype} {ids.shape}")
        ids = ids.astype(np.int64)
        if len(ids) == 0:
            return
        # Ids in increasing order (a fresh bank's usually are) are unique without sorting them.
        if not (ids[1:] > ids[:-1]).all() and len(np.unique(ids)) != len(ids):
            raise ValueError("ids repeat within one add() call")
        self._kill(ids)
        self._segments.append(_Segment.build(ids, _to_words(hashes), self.radius))
        while len(self._segments) >= 2 and self._segments[-2].live < _MERGE_RATIO * self._segments[-1].live:
            self._segments[-2:] = [_merge(self._segments[-2:], self.radius)]
        self._compact_if_dead()

    def remove(self, ids: np.ndarray) -> int:
        """Delete the given ids; unknown ids are ignored. Returns how many were removed."""
        removed = self._kill(np.unique(np.asarray(ids, dtype=np.int64)))
        self._compact_if_dead()
        return removed

    def search(self, queries: np.ndarray, max_distance: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per query row: (ids int64, distances int32) of all entries within `max_distance`, by distance then id."""
        queries = np.asarray(queries)
        if queries.dtype != np.uint8 or queries.ndim != 2 or queries.shape[1] != HASH_BYTES:
            raise ValueError(f"queries must be uint8 of shape (Q, {HASH_BYTES}), got {queries.dtype} {queries.shape}")
        if not 0 <= max_distance <= _BITS:
            raise ValueError(f"max_distance must be in 0..{_BITS}, got {max_distance}")
        query_words = _to_words(queries)
        parts_q, parts_id, parts_dist = [], [], []
        for segment in self._segments:
            query_of, row, distance = segment.search(query_words, int(max_distance))
            if segment.dead:
                alive = segment.alive[row]
                query_of, row, distance = query_of[alive], row[alive], distance[alive]
            parts_q.append(query_of)
            parts_id.append(segment.ids[row])
            parts_dist.append(distance)
        query_of = _concat(parts_q, np.int64)
        found_ids = _concat(parts_id, np.int64)
        distance = _concat(parts_dist, np.int32)
        order = np.lexsort((found_ids, distance, query_of))
        query_of, found_ids, distance = query_of[order], found_ids[order], distance[order]
        bounds = np.searchsorted(query_of, np.arange(len(queries) + 1))
        return [(found_ids[a:b], distance[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]

    def distances(self, ids: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ids, distances int32) of the given ids that are stored, each against the one `query` hash (uint8,
        32 bytes): a few rows read directly, without probing the tables."""
        ids = np.asarray(ids, dtype=np.int64)
        query_words = _to_words(np.asarray(query, dtype=np.uint8).reshape(1, HASH_BYTES))
        parts_id, parts_dist = [], []
        for segment in self._segments:
            rows = segment.rows_of(ids)
            parts_id.append(segment.ids[rows])
            parts_dist.append(_popcount_rows(segment.words[rows] ^ query_words))
        return _concat(parts_id, np.int64), _concat(parts_dist, np.int32)

    def save(self, path: str | os.PathLike) -> None:
        """Write an .npz file (no pickle) at exactly `path`. Compacts the index into one segment first."""
        self._compact()
        segment = self._segments[0] if self._segments else _Segment.build(
            np.empty(0, dtype=np.int64), np.empty((0, _WORDS), dtype=np.uint64), self.radius
        )
        with open(path, "wb") as file:
            np.savez(
                file,
                format=np.array(_FILE_FORMAT),
                radius=np.array(self.radius),
                lengths=np.array(segment.lengths, dtype=np.int64),
                direct_bits=np.array(segment.direct_bits),
                ids=segment.ids,
                hashes=_to_hashes(segment.words),
                offsets=segment.offsets,
                table_rows=segment.table_rows,
                extra=segment.extra,
            )

    @classmethod
    def load(cls, path: str | os.PathLike) -> "HammingIndex":
        with np.load(path, allow_pickle=False) as data:
            if int(data["format"]) != _FILE_FORMAT:
                raise ValueError(f"{path}: unknown index file format {int(data['format'])}")
            radius = int(data["radius"])
            lengths = tuple(int(bits) for bits in data["lengths"])
            direct_bits = int(data["direct_bits"])
            ids, hashes = data["ids"], data["hashes"]
            offsets, table_rows, extra = data["offsets"], data["table_rows"], data["extra"]
        rows = len(ids)
        if lengths and (sum(lengths) != _BITS or list(lengths) != sorted(lengths, reverse=True)
                        or max(lengths) > min(direct_bits + _MAX_EXTRA_BITS, _MAX_SUBSTRING_BITS)):
            raise ValueError(f"{path}: substring widths {lengths} are not a non-increasing split of {_BITS} bits")
        if (
            ids.dtype != np.int64
            or hashes.shape != (rows, HASH_BYTES)
            or not 8 <= direct_bits <= _MAX_DIRECT_BITS
            or offsets.shape != (_key_bases(lengths, direct_bits)[-1] + 1,)
            or table_rows.shape != (len(lengths) * rows,)
            or offsets[-1] != len(table_rows)
            or extra.dtype != np.uint8
            or extra.shape != ((len(table_rows),) if _extra_bits(lengths, direct_bits).any() else (0,))
        ):
            raise ValueError(f"{path}: inconsistent index arrays")
        index = cls(radius)
        if rows:
            alive = np.ones(rows, dtype=bool)
            index._segments = [_Segment(ids, _to_words(hashes), alive, lengths, direct_bits, offsets, table_rows,
                                        extra)]
        return index

    def _kill(self, ids: np.ndarray) -> int:
        removed = 0
        for segment in self._segments:
            rows = segment.rows_of(ids)
            segment.kill(rows)
            removed += len(rows)
        self._segments = [segment for segment in self._segments if segment.live]
        return removed

    def _compact_if_dead(self) -> None:
        dead = sum(segment.dead for segment in self._segments)
        if dead > _DEAD_FRACTION_TO_COMPACT * (dead + len(self)):
            self._compact()

    def _compact(self) -> None:
        if len(self._segments) > 1 or any(segment.dead for segment in self._segments):
            merged = _merge(self._segments, self.radius)
            self._segments = [merged] if merged.live else []
