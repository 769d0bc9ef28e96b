"""False matches at bank scale: per probe kind, the expected false matches per million lookups in a bank of 1M records.

27 distinct pictures (bench.robustness) cannot show how often a probe lands near an unrelated record among
millions, each record holding about forty stored rows. This measures it on a bank of --rows distinct hashes: the
enrolled rows (own hash, stored variants, region hashes) of the fixtures' distinct pictures, padded with the
PDQ-style hashes of generated pictures (GENERATED: smooth scenes, not noise: a lit gradient, a horizon, a few
shapes and 1/f texture, so that their hashes share the structure photographs share). The probes: every probe
of every query bench.robustness builds for the pictures under PROBE_TRANSFORMS (chosen so that every probe
kind is made: plain, trimmed, turned, captioned, regions), each against every bank row not of its own picture.

Per probe kind: the pairs within the operating radius of each row kind (31 on own hashes, VARIANT_THRESHOLD on
stored variants, REGION_THRESHOLD on regions, SMALL_QUERY_REGION_THRESHOLD on a thumbnail's), the closest
distance, and the empirical lower tail of the distance distribution (P(d <= x) for the smallest x with at least
TAIL_PAIRS pairs), extrapolated to the radius by a straight line through log P over the observed tail (the
tail falls faster than that line: PDQ's distances are near binomial, so the figure errs high). Expected false
matches per million lookups at 1M records: P(d <= radius) x stored rows of that kind per record x 1M records x
1M lookups; for regions, which need two different query regions on two different stored ones, the probability
of two such pairs in one record.

Run: python -m bench.false_matches [--rows N] [--images N] [--workers N]   (a few minutes on 2 cores)
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from bench.robustness import DISTINCT, FIXTURES, SEED, TRANSFORMS, load, our_entry, our_query, related
from imaging.matching import VARIANT_THRESHOLD, BankMatcher
from imaging.index import _popcount_rows
from imaging.pdq import PDQ_THRESHOLD
from imaging.regions import QUERY_REGIONS, REGION_KIND, REGION_THRESHOLD, REGIONS_NEEDED, SMALL_QUERY_REGION_THRESHOLD

PROBE_TRANSFORMS = ("jpeg_q70", "crop_left_10%", "pad_white_10%", "screenshot_page", "rotate_3_white",
                    "turn_canvas_-5", "turn_canvas_9_white", "caption", "crop_asym_b", "small_250+crop_left_10%")
GENERATED_BATCH = 8192
SIDE = 32
TAIL_PAIRS = 20
RECORDS = 1_000_000
LOOKUPS = 1_000_000
THUMBNAIL_REGIONS = "pdq_region@thumb"  # the regions of a query no longer than SMALL_QUERY_SIDE, at their radius


def generated_hashes(count: int, seed: int) -> np.ndarray:
    """(count, 32) uint8 PDQ-style hashes (the 16x16 lowest non-DC DCT frequencies of a grey picture,
    thresholded at their median, as `imaging.pdq` and `imaging.regions` hash) of generated pictures."""
    rng = np.random.default_rng(seed)
    # Drawn at 32x32 and hashed by the 16x32 DCT (the same frequencies as PDQ's 16x64 on a 64x64 picture
    # as smooth): a quarter of the work, and only those frequencies make the hash.
    dct = np.array([[math.sqrt(2 / SIDE) * math.cos(math.pi / 2 / SIDE * (i + 1) * (2 * j + 1)) for j in range(SIDE)]
                    for i in range(16)], np.float32)
    axis = np.linspace(-1, 1, SIDE, dtype=np.float32)
    x, y = np.meshgrid(axis, axis)
    out = []
    for start in range(0, count, GENERATED_BATCH):
        n = min(GENERATED_BATCH, count - start)
        light = rng.normal(0, 60, (n, 3, 1, 1)).astype(np.float32)
        pictures = 128 + light[:, 0] * x + light[:, 1] * y + light[:, 2] * x * y
        horizon = rng.uniform(-0.8, 0.8, (n, 1, 1)).astype(np.float32)
        tilt = rng.normal(0, 0.3, (n, 1, 1)).astype(np.float32)
        pictures += rng.normal(0, 50, (n, 1, 1)).astype(np.float32) * (y > horizon + tilt * x)
        for _ in range(4):
            centre = rng.uniform(-1, 1, (n, 2, 1, 1)).astype(np.float32)
            radii = rng.uniform(0.05, 0.6, (n, 2, 1, 1)).astype(np.float32)
            inside = ((x - centre[:, 0]) / radii[:, 0]) ** 2 + ((y - centre[:, 1]) / radii[:, 1]) ** 2 < 1
            shown = rng.random((n, 1, 1)) < 0.7
            pictures += rng.normal(0, 60, (n, 1, 1)).astype(np.float32) * (inside & shown)
        for cells in (4, 8, 16, 32):  # texture at every scale, its amplitude falling with the frequency (1/f)
            noise = rng.normal(0, 1, (n, cells, cells)).astype(np.float32)
            amplitude = (rng.uniform(0, 40, (n, 1, 1)) * 4 / cells).astype(np.float32)
            pictures += amplitude * noise.repeat(SIDE // cells, axis=1).repeat(SIDE // cells, axis=2)
        coefficients = (dct @ pictures @ dct.T).reshape(n, 256)
        bits = coefficients > np.median(coefficients, axis=1, keepdims=True)
        # imaging.pdq._to_hash: coefficient i is bit i from the least significant end; hashes are big-endian bytes.
        out.append(np.packbits(bits[:, ::-1], axis=1))
    return np.concatenate(out)


def hash_picture(task: tuple[int, str]) -> tuple[str, dict, list[tuple[str, str, bytes]]]:
    position, path = task
    image = load(FIXTURES / path)
    name = Path(path).stem
    entry = our_entry(name, np.asarray(image))
    names = list(TRANSFORMS)
    probes = []
    for transform_name in PROBE_TRANSFORMS:
        rng = np.random.default_rng([SEED, position, names.index(transform_name) + 1])
        query = our_query(np.asarray(TRANSFORMS[transform_name](image, rng).convert("RGB")))
        matcher = BankMatcher("one", [entry])
        probes += [(kind, "whole", h.to_bytes()) for kind, h in matcher.probes(query)]
        region_kind = REGION_KIND if query.region_threshold == REGION_THRESHOLD else THUMBNAIL_REGIONS
        probes += [(region_kind, "region", h.to_bytes()) for h in query.regions]
    rows = {"own": [bytes.fromhex(entry.pdq)], "variant": [h.to_bytes() for _, h in entry.variant_hashes],
            REGION_KIND: [h.to_bytes() for h in entry.regions]}
    return name, rows, probes


def words(hashes: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(hashes).view(">u8").astype(np.uint64)


def histogram(probes: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Counts of every distance 0..256 between each probe and each row."""
    counts = np.zeros(257, np.int64)
    rows = words(rows)
    for probe in words(probes):
        counts += np.bincount(_popcount_rows(rows ^ probe), minlength=257)
    return counts


def tail_estimate(counts: np.ndarray, radius: int) -> tuple[float, str]:
    """P(d <= radius) per pair: observed if TAIL_PAIRS pairs lie within it, else extrapolated from the lower
    tail (log P(d <= x) on a straight line through the two smallest x with >= TAIL_PAIRS and >= 10 x as many)."""
    total = counts.sum()
    cumulative = np.cumsum(counts)
    if cumulative[radius] >= TAIL_PAIRS:
        return cumulative[radius] / total, "observed"
    low = int(np.argmax(cumulative >= TAIL_PAIRS))
    high = int(np.argmax(cumulative >= 10 * cumulative[low]))
    slope = (math.log10(cumulative[high]) - math.log10(cumulative[low])) / max(1, high - low)
    log_p = math.log10(cumulative[low] / total) - slope * (low - radius)
    return 10 ** log_p, f"extrapolated from d<={low} ({cumulative[low]} pairs) and d<={high}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="bank hashes in all (fixture rows + generated)")
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    started = time.time()
    with ProcessPoolExecutor(args.workers) as pool:
        pictures = list(pool.map(hash_picture, enumerate(DISTINCT[: args.images])))
    hashing_s = time.time() - started
    fixture_rows = sum(len(v) for _, rows, _ in pictures for v in rows.values())
    generated = generated_hashes(max(0, args.rows - fixture_rows), SEED)
    rows_per_record = {kind: float(np.mean([len(rows[kind]) for _, rows, _ in pictures]))
                       for kind in ("own", "variant", REGION_KIND)}
    print(f"bank: {fixture_rows} rows of {len(pictures)} fixture pictures + {len(generated)} generated = "
          f"{fixture_rows + len(generated)} hashes; probes of {len(PROBE_TRANSFORMS)} transforms per picture; "
          f"rows per record: {', '.join(f'{k} {v:.1f}' for k, v in rows_per_record.items())} "
          f"({hashing_s:.0f} s hashing)")
    # Whole-picture probes meet own hashes and stored variants, region probes regions; the generated hashes
    # stand in for rows of every kind (they are hashed as both are), so each probe meets them once.
    counts: dict[tuple[str, str], np.ndarray] = defaultdict(lambda: np.zeros(257, np.int64))
    lookups: dict[str, int] = defaultdict(int)
    for name, _, probes in pictures:
        others = [rows for other, rows, _ in pictures if other != name and not related(name, other)]
        for probe_kind, side in sorted({(k, s) for k, s, _ in probes}):
            mine = np.frombuffer(b"".join(h for k, s, h in probes if k == probe_kind and s == side),
                                 np.uint8).reshape(-1, 32)
            lookups[probe_kind] += len(mine)
            on_generated = histogram(mine, generated)
            for row_kind in (("own", "variant") if side == "whole" else (REGION_KIND,)):
                stored = np.frombuffer(b"".join(h for rows in others for h in rows[row_kind]), np.uint8)
                counts[(probe_kind, row_kind)] += on_generated + histogram(mine, stored.reshape(-1, 32))
    radius = {"own": PDQ_THRESHOLD, "variant": VARIANT_THRESHOLD, REGION_KIND: REGION_THRESHOLD}
    print(f"{'probe kind':14s} {'rows':8s} {'lookups':>7s} {'pairs':>12s} {'closest':>7s} {'<=r':>4s} "
          f"{'P(d<=r) per pair':>17s}  {'false per 1M lookups at 1M records':>34s}  how")
    for (probe_kind, row_kind), found in sorted(counts.items()):
        r = SMALL_QUERY_REGION_THRESHOLD if probe_kind == THUMBNAIL_REGIONS else radius[row_kind]
        p, how = tail_estimate(found, r)
        per_lookup = p * rows_per_record[row_kind] * RECORDS
        if row_kind == REGION_KIND:
            # Two different query regions each within r of a different stored region of one record.
            pairs_per_record = math.comb(QUERY_REGIONS, REGIONS_NEEDED) * math.perm(
                round(rows_per_record[row_kind]), REGIONS_NEEDED)
            per_lookup = pairs_per_record * p ** REGIONS_NEEDED * RECORDS
        print(f"{probe_kind:14s} {row_kind:8s} {lookups[probe_kind]:7d} {found.sum():12d} "
              f"{int(np.argmax(found > 0)):7d} {int(found[: r + 1].sum()):4d} {p:17.3g}  "
              f"{per_lookup * LOOKUPS:34.3g}  {how}")
    print(f"{time.time() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
