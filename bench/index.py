"""Exact Hamming range search: imaging.index.HammingIndex against faiss IndexBinaryMultiHash.

    python -m bench.index --n 1000000 --queries 1000 [--max-distance 31]

Both index the same uniformly random 256-bit bank. Half of the queries are copies of bank entries with
0..max_distance random bits flipped, half are random (no match at d <= 31). faiss runs with one OpenMP
thread, like our single-threaded numpy; each faiss (nhash, b, nflip) configuration given is exact for the
distance (nhash * (nflip + 1) > d) and the fastest one is the reference. faiss binary range search keeps
distances strictly below the radius (checked at start on a flat index), so it is asked for radius d + 1.
The two searches are timed in alternating slices of the queries, so that load on the shared machine hits
both alike.
Recall of both is measured against an exhaustive search (faiss IndexBinaryFlat, itself checked against a
numpy popcount) on a sample of the queries. Memory: ours is HammingIndex.memory_bytes(); faiss is the growth
of this process's resident set while building it.
"""

from __future__ import annotations

import argparse
import time

import faiss
import numpy as np

from imaging.index import HammingIndex


def random_bank(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 2**64, size=(n, 4), dtype=np.uint64).view(np.uint8)


def flip_random_bits(rng: np.random.Generator, hashes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Flip `counts[i]` distinct random bits of row i."""
    ranks = np.argsort(rng.random((len(hashes), 256)), axis=1)
    flips = np.zeros((len(hashes), 256), dtype=np.uint8)
    np.put_along_axis(flips, ranks, (np.arange(256) < counts[:, None]).astype(np.uint8), axis=1)
    return hashes ^ np.packbits(flips, axis=1)


def make_queries(rng: np.random.Generator, bank: np.ndarray, count: int, max_flips: int) -> np.ndarray:
    near = count // 2
    sources = bank[rng.integers(0, len(bank), size=near)]
    copies = flip_random_bits(rng, sources, rng.integers(0, max_flips + 1, size=near))
    return np.ascontiguousarray(np.concatenate([copies, random_bank(rng, count - near)]))


def resident_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("VmRSS not found in /proc/self/status")


def faiss_range_is_strict() -> bool:
    """Whether faiss binary range_search drops a hash at exactly the radius."""
    entry = np.zeros((1, 32), dtype=np.uint8)
    query = entry.copy()
    query[0, :2] = 0xFF  # 16 bits away
    flat = faiss.IndexBinaryFlat(256)
    flat.add(entry)
    lims, _, _ = flat.range_search(query, 16)
    return lims[1] == 0


def split_range_result(lims: np.ndarray, distances: np.ndarray, labels: np.ndarray) -> list[dict[int, int]]:
    return [
        dict(zip(labels[a:b].tolist(), distances[a:b].astype(int).tolist())) for a, b in zip(lims[:-1], lims[1:])
    ]


def recall(found: list[dict[int, int]], truth: list[dict[int, int]]) -> tuple[float, bool]:
    """Share of true (query, id) pairs found, and whether results equal the truth with distances."""
    total = sum(len(t) for t in truth)
    hit = sum(len(f.keys() & t.keys()) for f, t in zip(found, truth))
    return (hit / total if total else 1.0), found == truth


def timed_alternately(ours, theirs, queries: np.ndarray, rounds: int = 5) -> tuple[float, float]:
    """ms/query of two searches run on the same query slices in turn, so that load from other processes on
    the shared machine falls on both alike. Each is warmed up on ten queries first."""
    ours(queries[:10])
    theirs(queries[:10])
    totals = [0.0, 0.0]
    for batch in np.array_split(queries, rounds):
        for slot, search in enumerate((ours, theirs)):
            started = time.perf_counter()
            search(batch)
            totals[slot] += time.perf_counter() - started
    return totals[0] * 1e3 / len(queries), totals[1] * 1e3 / len(queries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--max-distance", type=int, default=31)
    parser.add_argument(
        "--faiss-configs",
        default="16x16x1,11x23x2",
        help="comma-separated nhash x b x nflip for IndexBinaryMultiHash (each must be exact for the distance)",
    )
    parser.add_argument("--faiss-threads", type=int, default=1)
    parser.add_argument("--recall-sample", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    d = args.max_distance
    faiss.omp_set_num_threads(args.faiss_threads)
    rng = np.random.default_rng(args.seed)

    started = time.perf_counter()
    bank = random_bank(rng, args.n)
    queries = make_queries(rng, bank, args.queries, d)
    ids = np.arange(args.n, dtype=np.int64)
    print(f"data: {args.n} hashes, {args.queries} queries (half 0..{d} bits from an entry), "
          f"{time.perf_counter() - started:.1f} s to generate")

    strict = faiss_range_is_strict()
    radius = d + 1 if strict else d
    print(f"faiss binary range_search keeps distance {'<' if strict else '<='} radius: asking radius {radius}")

    sample = np.concatenate([np.arange(min(args.recall_sample // 2, args.queries // 2)),
                             np.arange(args.queries // 2, args.queries // 2 + args.recall_sample // 2)])
    sample = sample[sample < args.queries]
    flat = faiss.IndexBinaryFlat(256)
    flat.add(bank)
    started = time.perf_counter()
    truth = split_range_result(*flat.range_search(queries[sample], radius))
    print(f"exhaustive truth on {len(sample)} queries: {sum(map(len, truth))} pairs, "
          f"{time.perf_counter() - started:.1f} s")
    del flat
    for position in sample[[0, -1]]:
        distances = np.unpackbits(bank ^ queries[position], axis=1).sum(axis=1)
        expected = {int(i): int(distances[i]) for i in np.flatnonzero(distances <= d)}
        assert truth[int(np.flatnonzero(sample == position)[0])] == expected, "faiss flat disagrees with numpy"

    rss = resident_bytes()
    index = HammingIndex()
    started = time.perf_counter()
    index.add(bank, ids)
    ours_build = time.perf_counter() - started
    ours_rss = resident_bytes() - rss
    index.search(queries[:10], d)
    results = index.search(queries, d)
    ours_found = [dict(zip(i.tolist(), dist.tolist())) for i, dist in (results[s] for s in sample)]
    ours_recall, ours_exact = recall(ours_found, truth)
    ours_mb = index.memory_bytes() / 1e6
    print(f"ours: build {ours_build:.2f} s, memory {ours_mb:.0f} MB (memory_bytes; process grew "
          f"{ours_rss / 1e6:.0f} MB), recall {ours_recall:.4f}, identical to exhaustive: {ours_exact}")
    del results

    reference = None
    for config in args.faiss_configs.split(","):
        nhash, bits, nflip = (int(part) for part in config.split("x"))
        if nhash * (nflip + 1) <= d or nhash * bits > 256:
            raise SystemExit(f"faiss config {config} is not exact at distance {d} (needs nhash*(nflip+1) > d)")
        rss = resident_bytes()
        multihash = faiss.IndexBinaryMultiHash(256, nhash, bits)
        multihash.nflip = nflip
        started = time.perf_counter()
        multihash.add(bank)
        build = time.perf_counter() - started
        grown = resident_bytes() - rss
        found = split_range_result(*multihash.range_search(queries[sample], radius))
        faiss_recall, faiss_exact = recall(found, truth)
        ours_ms, ms = timed_alternately(
            lambda batch: index.search(batch, d), lambda batch: multihash.range_search(batch, radius), queries
        )
        print(f"faiss MultiHash nhash={nhash} b={bits} nflip={nflip}: build {build:.2f} s, {ms:.4f} ms/query "
              f"(ours {ours_ms:.4f} in alternation), memory ~{grown / 1e6:.0f} MB (resident growth), "
              f"recall {faiss_recall:.4f}, identical to exhaustive: {faiss_exact}")
        if reference is None or ms < reference["ms"]:
            reference = dict(config=config, ms=ms, ours_ms=ours_ms, build=build, mb=grown / 1e6, recall=faiss_recall)
        del multihash, found

    per_million = 1e6 / args.n
    print(f"fastest faiss config: {reference['config']}")
    print(
        f"speedup_vs_faiss={reference['ms'] / reference['ours_ms']:.2f} recall={ours_recall:.4f} "
        f"ours_ms_per_query={reference['ours_ms']:.4f} faiss_ms_per_query={reference['ms']:.4f} "
        f"ours_build_s={ours_build:.2f} faiss_build_s={reference['build']:.2f} "
        f"ours_mb_per_million={ours_mb * per_million:.1f} faiss_mb_per_million={reference['mb'] * per_million:.1f} "
        f"faiss_recall={reference['recall']:.4f} faiss_config={reference['config']} n={args.n} max_distance={d}"
    )


if __name__ == "__main__":
    main()
