import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imaging import index as index_module
from imaging.index import HammingIndex, hashes_from_hex

DISTANCES = [0, 1, 15, 16, 31, 32, 40, 64]


def brute_force(hashes: np.ndarray, ids: np.ndarray, query: np.ndarray, max_distance: int):
    """Reference: distances from unpacked bits, matches sorted by distance then id."""
    distances = np.unpackbits(hashes ^ query, axis=1).sum(axis=1)
    match = np.flatnonzero(distances <= max_distance)
    order = np.lexsort((ids[match], distances[match]))
    return ids[match][order], distances[match][order]


def assert_exact(index: HammingIndex, hashes, ids, queries, max_distance):
    results = index.search(queries, max_distance)
    assert len(results) == len(queries)
    for query, (found_ids, found_distances) in zip(queries, results):
        expected_ids, expected_distances = brute_force(hashes, ids, query, max_distance)
        assert found_ids.dtype == np.int64 and found_distances.dtype == np.int32
        np.testing.assert_array_equal(found_ids, expected_ids)
        np.testing.assert_array_equal(found_distances, expected_distances)


def flip_bits(rng: np.random.Generator, hashes: np.ndarray, counts) -> np.ndarray:
    bits = np.unpackbits(hashes, axis=1)
    for row, count in zip(bits, counts):
        row[rng.choice(256, size=count, replace=False)] ^= 1
    return np.packbits(bits, axis=1)


def random_hashes(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 256, size=(n, 32), dtype=np.uint8)


def near_queries(rng, bank: np.ndarray, count: int, max_flips: int) -> np.ndarray:
    sources = bank[rng.integers(0, len(bank), size=count)]
    return np.concatenate([flip_bits(rng, sources, rng.integers(0, max_flips + 1, size=count)), random_hashes(rng, 8)])


@pytest.fixture(scope="module")
def random_bank():
    rng = np.random.default_rng(1)
    hashes = random_hashes(rng, 40_000)
    ids = rng.choice(10**12, size=40_000, replace=False).astype(np.int64)
    index = HammingIndex()
    index.add(hashes, ids)
    return index, hashes, ids


@pytest.fixture(scope="module")
def clustered_bank():
    """Near-duplicates: random centres, each with copies 0..40 bits away, plus the centres' exact twins."""
    rng = np.random.default_rng(2)
    centres = random_hashes(rng, 400)
    copies = np.repeat(centres, 25, axis=0)
    copies = flip_bits(rng, copies, rng.integers(0, 41, size=len(copies)))
    hashes = np.concatenate([centres, centres, copies, random_hashes(rng, 5_000)])
    ids = np.arange(len(hashes), dtype=np.int64) * 3 - 7_000
    index = HammingIndex()
    index.add(hashes, ids)
    return index, hashes, ids, centres


@pytest.mark.parametrize("max_distance", DISTANCES)
def test_random_bank_matches_brute_force(random_bank, max_distance):
    index, hashes, ids = random_bank
    rng = np.random.default_rng(max_distance)
    assert_exact(index, hashes, ids, near_queries(rng, hashes, 24, max_distance + 4), max_distance)


@pytest.mark.parametrize("max_distance", DISTANCES)
def test_clustered_bank_matches_brute_force(clustered_bank, max_distance):
    index, hashes, ids, centres = clustered_bank
    rng = np.random.default_rng(100 + max_distance)
    queries = np.concatenate([centres[:6], near_queries(rng, centres, 10, 20)])
    assert_exact(index, hashes, ids, queries, max_distance)


def test_large_radius_and_the_complement(random_bank):
    index, hashes, ids = random_bank
    complement = ~hashes[:2]
    assert_exact(index, hashes, ids, complement, 128)
    found_ids, found_distances = index.search(complement, 256)[0]
    assert len(found_ids) == len(ids) and found_distances[-1] == 256 and found_ids[-1] == ids[0]
    assert ids[0] not in index.search(complement[:1], 255)[0][0]


def test_empty_index_and_empty_query_batch():
    index = HammingIndex()
    results = index.search(np.zeros((3, 32), dtype=np.uint8), 31)
    assert [(len(i), len(d)) for i, d in results] == [(0, 0)] * 3
    assert results[0][0].dtype == np.int64 and results[0][1].dtype == np.int32
    assert len(index) == 0 and index.memory_bytes() == 0
    assert HammingIndex().search(np.zeros((0, 32), dtype=np.uint8), 31) == []


def test_same_hash_under_several_ids_is_returned_for_each():
    rng = np.random.default_rng(3)
    hashes = random_hashes(rng, 5_000)
    hashes[100:110] = hashes[7]
    index = HammingIndex()
    index.add(hashes, np.arange(5_000))
    found_ids, found_distances = index.search(hashes[7:8], 0)[0]
    assert found_ids.tolist() == [7, *range(100, 110)] and not found_distances.any()


def test_re_adding_an_id_replaces_its_hash_and_repeats_within_a_batch_are_refused():
    rng = np.random.default_rng(4)
    old, new = random_hashes(rng, 2)
    index = HammingIndex()
    index.add(np.stack([old, new]), np.array([1, 2]))
    index.add(new[None], np.array([1]))
    assert len(index) == 2
    assert index.search(old[None], 0)[0][0].tolist() == []
    assert index.search(new[None], 0)[0][0].tolist() == [1, 2]
    with pytest.raises(ValueError, match="repeat"):
        index.add(np.stack([old, old]), np.array([5, 5]))
    with pytest.raises(ValueError, match="repeat"):
        index.add(np.stack([old, new, new]), np.array([5, 6, 6]))  # in order, yet not unique
    assert len(index) == 2


def test_remove_counts_only_present_ids():
    rng = np.random.default_rng(5)
    hashes = random_hashes(rng, 3_000)
    index = HammingIndex()
    index.add(hashes, np.arange(3_000))
    assert index.remove(np.array([5, 5, 6, 10**12, -1])) == 2
    assert index.remove(np.array([5])) == 0
    assert len(index) == 2_998
    assert index.search(hashes[5:7], 0) and all(len(ids) == 0 for ids, _ in index.search(hashes[5:7], 0))


def test_many_small_adds_stay_exact_with_few_segments_and_compaction_frees_memory():
    rng = np.random.default_rng(6)
    hashes = random_hashes(rng, 24_000)
    ids = np.arange(24_000, dtype=np.int64)
    index = HammingIndex()
    for start in range(0, 24_000, 1_000):
        index.add(hashes[start : start + 1_000], ids[start : start + 1_000])
    assert len(index._segments) <= 6  # geometric merging, not one segment per batch
    queries = near_queries(rng, hashes, 16, 35)
    assert_exact(index, hashes, ids, queries, 31)
    before = index.memory_bytes()
    index.remove(ids[: 9_000])
    assert len(index) == 15_000 and index.memory_bytes() < before
    assert_exact(index, hashes[9_000:], ids[9_000:], queries, 31)


@pytest.mark.parametrize("direct", ["real", "narrow"])
def test_save_load_round_trip(tmp_path, clustered_bank, request, direct):
    if direct == "narrow":
        request.getfixturevalue("narrow_direct_tables")
    _, hashes, ids, centres = clustered_bank
    index = HammingIndex(14)
    index.add(hashes, ids)
    index.remove(ids[:50])
    index.add(hashes[:3], np.array([10**15, 10**15 + 1, 10**15 + 2]))
    path = tmp_path / "bank.index"
    index.save(path)
    loaded = HammingIndex.load(path)
    assert len(loaded) == len(index) and path.exists() and loaded.radius == 14
    assert loaded._segments[0].direct_bits == (10 if direct == "narrow" else 24)
    for max_distance in (0, 31, 40):
        for (a_ids, a_d), (b_ids, b_d) in zip(index.search(centres[:20], max_distance), loaded.search(centres[:20], max_distance)):
            np.testing.assert_array_equal(a_ids, b_ids)
            np.testing.assert_array_equal(a_d, b_d)
    empty = tmp_path / "empty.index"
    HammingIndex().save(empty)
    assert len(HammingIndex.load(empty)) == 0


def test_load_rejects_a_file_with_inconsistent_tables(tmp_path, random_bank):
    index, _, _ = random_bank
    path = tmp_path / "bank.index"
    index.save(path)
    with np.load(path) as data:
        arrays = dict(data)
    arrays["table_rows"] = arrays["table_rows"][:-1]
    np.savez(tmp_path / "broken.npz", **arrays)
    with pytest.raises(ValueError, match="inconsistent"):
        HammingIndex.load(tmp_path / "broken.npz")


def expected_tables(words_in_row_order: np.ndarray, lengths: tuple[int, ...], direct_bits: int):
    """The segment's CSR tables by their definition: per table, the rows in stable order of their bucket (the
    substring's top `direct_bits`, read from the unpacked bits), the first position of each bucket, and the
    substring's further bits of each placed row."""
    bits = np.unpackbits(words_in_row_order.astype(">u8").view(np.uint8), axis=1).astype(np.int64)
    rows = len(bits)
    offsets, table_rows, extra, start = [], [], [], 0
    for table, width in enumerate(lengths):
        keys = bits[:, start : start + width] @ (1 << np.arange(width - 1, -1, -1))
        extra_bits = max(0, width - direct_bits)
        buckets = keys >> extra_bits
        order = np.argsort(buckets, kind="stable")
        offsets.append(table * rows + np.searchsorted(np.sort(buckets), np.arange(1 << (width - extra_bits))))
        table_rows.append(order)
        extra.append(keys[order] & ((1 << extra_bits) - 1))
        start += width
    return np.concatenate(offsets + [[len(lengths) * rows]]), np.concatenate(table_rows), np.concatenate(extra)


# 4095 -> 4096 rows is where the substring widths grow; both sizes mix two widths, odd and even.
@pytest.mark.parametrize("rows", [256, 4095, 4096])
def test_segment_tables_equal_a_stable_argsort_of_each_substring(rows):
    assert max(index_module._choose_lengths(4095, 31, 24)) < max(index_module._choose_lengths(4096, 31, 24))
    rng = np.random.default_rng(rows)
    hashes = random_hashes(rng, rows)
    hashes[rows // 2 : rows // 2 + 40] = hashes[3]  # duplicate hashes
    near = rows // 4  # near copies: many shared substrings, so duplicate keys in every table
    hashes[-near:] = flip_bits(rng, hashes[:near], rng.integers(0, 8, size=near))
    ids = rng.permutation(rows).astype(np.int64) * 7 - 100  # not in id order: the segment sorts them
    index = HammingIndex()
    index.add(hashes, ids)
    (segment,) = index._segments
    np.testing.assert_array_equal(segment.ids, np.sort(ids))
    offsets, table_rows, _ = expected_tables(segment.words, segment.lengths, segment.direct_bits)
    assert segment.offsets.dtype == np.int32 and segment.table_rows.dtype == np.int32 and len(segment.extra) == 0
    np.testing.assert_array_equal(segment.offsets, offsets)
    np.testing.assert_array_equal(segment.table_rows, table_rows)
    # Segments of 2**31 / m rows and more get int64 offsets, a separate compiled specialisation.
    lengths, direct_bits = segment.lengths, segment.direct_bits
    wide_offsets = np.zeros_like(segment.offsets, dtype=np.int64)
    wide_table_rows = np.empty_like(segment.table_rows)
    index_module._fill_tables(
        segment.words, index_module._substring_shifts(index_module._starts(lengths), lengths), np.array(lengths),
        index_module._extra_bits(lengths, direct_bits), index_module._key_bases(lengths, direct_bits), wide_offsets,
        wide_table_rows, segment.extra,
    )
    np.testing.assert_array_equal(wide_offsets, offsets)
    np.testing.assert_array_equal(wide_table_rows, table_rows)


@pytest.fixture()
def narrow_direct_tables(monkeypatch):
    """Tables addressed directly by at most 10 bits, so that a bank of thousands of rows gets the extra bytes
    that only banks of over 2**24 rows get at the real width."""
    monkeypatch.setattr(index_module, "_DIRECT_BITS", 10)
    monkeypatch.setattr(index_module, "_MAX_DIRECT_BITS", 10)


@pytest.mark.parametrize("radius", [0, 14, 31])
def test_tables_wider_than_their_direct_bits_keep_the_rest_in_extra_bytes(narrow_direct_tables, clustered_bank, radius):
    _, hashes, ids, centres = clustered_bank
    index = HammingIndex(radius)
    index.add(hashes, ids)
    (segment,) = index._segments
    assert segment.direct_bits == 10 and max(segment.lengths) > 10 and segment.extra.dtype == np.uint8
    offsets, table_rows, extra = expected_tables(segment.words, segment.lengths, 10)
    np.testing.assert_array_equal(segment.offsets, offsets)
    np.testing.assert_array_equal(segment.table_rows, table_rows)
    np.testing.assert_array_equal(segment.extra, extra)
    rng = np.random.default_rng(radius)
    queries = np.concatenate([centres[:40], near_queries(rng, hashes, 40, 20)])
    for max_distance in DISTANCES:
        assert_exact(index, hashes, ids, queries, max_distance)


def test_a_layout_is_chosen_for_the_radius_it_is_searched_at():
    # Up to 2**24 rows the layout is the one PDQ's threshold wants at any radius; beyond, wide tables with extra
    # bytes, as wide as the radius makes cheap (a robust bank's regions at 1M records are 146M rows at 14).
    assert index_module._choose_lengths(1_000_000, 14, 24) == index_module._choose_lengths(1_000_000, 31, 24)
    widest = {radius: max(index_module._choose_lengths(18_000_000, radius, 24)) for radius in (14, 20)}
    assert widest[14] > widest[20] > 24
    assert max(index_module._choose_lengths(10_000_000, 31, 24)) == 24
    assert max(index_module._choose_lengths(146_000_000, 14, 26)) == 32
    direct = [index_module._direct_bits(rows) for rows in (1_000, 10**7, 2**25, 2**26, 2**27, 10**9)]
    assert direct == [24, 24, 24, 25, 26, 26]


def test_hashes_from_hex():
    hexes = ["00" * 31 + "ff", "AB" * 32]
    np.testing.assert_array_equal(hashes_from_hex(hexes), np.frombuffer(bytes.fromhex("".join(hexes)), np.uint8).reshape(2, 32))
    assert hashes_from_hex([]).shape == (0, 32)
    for bad in (["00" * 31], ["0g" * 32], ["00" * 31 + " f"]):
        with pytest.raises(ValueError):
            hashes_from_hex(bad)


def test_input_validation():
    index = HammingIndex()
    with pytest.raises(ValueError):
        index.add(np.zeros((2, 31), dtype=np.uint8), np.arange(2))
    with pytest.raises(ValueError):
        index.add(np.zeros((2, 32), dtype=np.uint8), np.arange(3))
    with pytest.raises(ValueError):
        index.search(np.zeros((1, 32), dtype=np.uint8), 257)
    with pytest.raises(ValueError, match="radius"):
        HammingIndex(-1)


# Property tests: a few centres with nearby variants make duplicates and near matches likely. The first batch
# joins a background large enough to get hash tables, so probing, tombstones and merges are all exercised.
BACKGROUND = random_hashes(np.random.default_rng(7), 3_000)
BACKGROUND_IDS = np.arange(10**6, 10**6 + 3_000, dtype=np.int64)
CENTRES = random_hashes(np.random.default_rng(8), 4)


@st.composite
def hashes_near_centres(draw):
    centre = CENTRES[draw(st.integers(0, len(CENTRES) - 1))].copy()
    bits = np.unpackbits(centre)
    for position in draw(st.lists(st.integers(0, 255), max_size=40)):
        bits[position] ^= 1
    return np.packbits(bits)


entry_ids = st.integers(-5, 40)
batches = st.lists(st.tuples(entry_ids, hashes_near_centres()), max_size=30, unique_by=lambda e: e[0])
operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), batches),
        st.tuples(st.just("remove"), st.lists(entry_ids, max_size=10)),
        st.tuples(st.just("search"), st.lists(hashes_near_centres(), min_size=1, max_size=3), st.sampled_from([0, 15, 31, 33])),
    ),
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(first=batches, operations=operations, background=st.booleans())
def test_add_remove_search_match_a_dict_model(first, operations, background):
    index, model = HammingIndex(), {}
    first_ids = np.array([i for i, _ in first], dtype=np.int64)
    first_hashes = np.array([h for _, h in first], dtype=np.uint8).reshape(-1, 32)
    if background:
        index.add(np.concatenate([BACKGROUND, first_hashes]), np.concatenate([BACKGROUND_IDS, first_ids]))
        model.update(zip(BACKGROUND_IDS.tolist(), BACKGROUND))
    else:
        index.add(first_hashes, first_ids)
    model.update(zip(first_ids.tolist(), first_hashes))
    for operation in operations:
        if operation[0] == "add":
            ids = np.array([i for i, _ in operation[1]], dtype=np.int64)
            index.add(np.array([h for _, h in operation[1]], dtype=np.uint8).reshape(-1, 32), ids)
            model.update({i: h for i, h in operation[1]})
        elif operation[0] == "remove":
            present = {i for i in operation[1] if i in model}
            assert index.remove(np.array(operation[1], dtype=np.int64)) == len(present)
            for i in present:
                del model[i]
        else:
            model_ids = np.array(sorted(model), dtype=np.int64)
            model_hashes = np.array([model[i] for i in model_ids], dtype=np.uint8).reshape(-1, 32)
            assert_exact(index, model_hashes, model_ids, np.array(operation[1]), operation[2])
        assert len(index) == len(model)


@settings(max_examples=40, deadline=None)
@given(entries=st.lists(hashes_near_centres(), max_size=6), query=hashes_near_centres(), max_distance=st.sampled_from([0, 31]))
def test_tiny_banks_including_empty_and_single_entry(entries, query, max_distance):
    hashes = np.array(entries, dtype=np.uint8).reshape(-1, 32)
    ids = np.arange(len(entries), dtype=np.int64)[::-1].copy()
    index = HammingIndex()
    index.add(hashes, ids)
    assert_exact(index, hashes, ids, query[None], max_distance)


def test_distances_of_given_ids_skip_the_removed_and_the_unknown():
    rng = np.random.default_rng(5)
    hashes = rng.integers(0, 256, (300, 32), dtype=np.uint8)
    index = HammingIndex(14)
    index.add(hashes[:200], np.arange(200))
    index.add(hashes[200:], np.arange(200, 300))  # a second segment
    index.remove(np.array([7]))
    query = rng.integers(0, 256, 32, dtype=np.uint8)
    ids, distances = index.distances(np.array([3, 7, 250, 999]), query)
    assert ids.tolist() == [3, 250]
    assert distances.tolist() == [int(np.unpackbits(hashes[i] ^ query).sum()) for i in (3, 250)]
