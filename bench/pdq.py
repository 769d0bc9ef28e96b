"""Our PDQ against Meta's C++ reference (the `pdqhash` bindings), per core.

    python -m bench.pdq [--repeats 5]

Both hash the same decoded full-resolution RGB arrays: every fixture under shared/fixtures/pdq (decoded
without EXIF transpose) plus generated smooth random images (fixed seed) of 1024x1024 and 4000x3000. One
thread: BLAS/OpenMP threads are pinned to 1 before numpy loads. Each image is timed `--repeats` times,
ours and the reference alternating, and the median is kept (the machine may be shared). `ratio_vs_pdqhash`
is our total time over the reference's, over all images; `mismatched_bits` sums the Hamming distances
between our hash and the reference's.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pdqhash  # noqa: E402
from PIL import Image  # noqa: E402

from imaging import PdqHash, decode, pdq  # noqa: E402

FIXTURES = Path(os.environ.get("FIMG_FIXTURES", Path(__file__).resolve().parents[2] / "shared" / "fixtures"))
GENERATED = {"1024": (1024, 1024, 4), "4000x3000": (3000, 4000, 2)}  # name: (height, width, count)


def smooth_random(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    coarse = rng.integers(0, 256, size=(12, 16, 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC), np.int16)
    noise = rng.integers(-10, 11, size=smooth.shape, dtype=np.int16)
    return np.clip(smooth + noise, 0, 255).astype(np.uint8)


def workload() -> list[tuple[str, str, np.ndarray]]:
    """(size class, name, rgb) for every image in the benchmark."""
    images = []
    for path in sorted((FIXTURES / "pdq").rglob("*")):
        if path.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"):
            rgb = decode(path, exif_transpose=False).rgb
            images.append((size_class(rgb), str(path.relative_to(FIXTURES / "pdq")), rgb))
    rng = np.random.default_rng(2024)
    for name, (height, width, count) in GENERATED.items():
        images += [(name, f"generated-{name}-{i}", smooth_random(height, width, rng)) for i in range(count)]
    return images


def size_class(rgb: np.ndarray) -> str:
    pixels = rgb.shape[0] * rgb.shape[1]
    if pixels <= 300_000:
        return "fixtures <= 0.3 MP"
    if pixels <= 2_000_000:
        return "fixtures 0.3-2 MP"
    return "fixtures 12 MP"


def reference(rgb: np.ndarray) -> tuple[PdqHash, int]:
    bits, quality = pdqhash.compute(rgb)
    return PdqHash.from_bits(bits[::-1]), quality


def elapsed_ms(function, rgb: np.ndarray) -> float:
    started = time.perf_counter()
    function(rgb)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    images = workload()
    ours_ms: dict[str, list[float]] = defaultdict(list)
    ref_ms: dict[str, list[float]] = defaultdict(list)
    mismatched_bits = quality_mismatches = 0
    for group, name, rgb in images:
        ours_times, ref_times = [], []
        for _ in range(args.repeats):
            ours_times.append(elapsed_ms(pdq, rgb))
            ref_times.append(elapsed_ms(reference, rgb))
        ours_ms[group].append(statistics.median(ours_times))
        ref_ms[group].append(statistics.median(ref_times))
        (ours, our_quality), (theirs, their_quality) = pdq(rgb), reference(rgb)
        mismatched_bits += ours - theirs
        quality_mismatches += our_quality != their_quality
        if ours != theirs or our_quality != their_quality:
            print(f"MISMATCH {name}: {ours} q{our_quality} vs {theirs} q{their_quality}")

    print(f"PDQ per core (1 thread), median of {args.repeats} alternating runs per image")
    print(f"{'size class':22s} {'images':>6s} {'ours ms':>9s} {'pdqhash ms':>10s} {'ratio':>6s}")
    for group in ours_ms:
        ours, ref = statistics.mean(ours_ms[group]), statistics.mean(ref_ms[group])
        print(f"{group:22s} {len(ours_ms[group]):6d} {ours:9.1f} {ref:10.1f} {ours / ref:6.2f}")
    total_ours = sum(sum(times) for times in ours_ms.values())
    total_ref = sum(sum(times) for times in ref_ms.values())
    print(f"all {len(images)} images: ours {total_ours:.0f} ms, pdqhash {total_ref:.0f} ms;"
          f" {mismatched_bits} mismatched bits, {quality_mismatches} quality mismatches")
    print(
        f"ratio_vs_pdqhash={total_ours / total_ref:.3f} mismatched_bits={mismatched_bits}"
        f" ours_ms_1024={statistics.mean(ours_ms['1024']):.1f} ref_ms_1024={statistics.mean(ref_ms['1024']):.1f}"
        f" ours_ms_4000x3000={statistics.mean(ours_ms['4000x3000']):.1f}"
        f" ref_ms_4000x3000={statistics.mean(ref_ms['4000x3000']):.1f}"
    )


if __name__ == "__main__":
    main()
