"""Age progression speed on one core: a face fixture resized to 1024 px on the long side, several target ages.

    python -m bench.agepro [--fixture biden-2.jpg] [--targets 8 10 12 14 16 18] [--repeat 3]

Prints the one-off cost (decode, face detection, mesh), the core warp per target, the full per-target cost
(warp, label, overlay, PNG encoding of every artefact) and ends with
``s_per_target_age=.. targets=..``: the end-to-end time of ``workers.age_progression.progress_photo(...).to_files()``
(photo bytes in) divided by the number of target ages (the one-off cost included, so it is an upper bound).
Goal: <= 2 s.
"""
from __future__ import annotations

import os

# One core: pinned before numpy, MediaPipe or dlib start their thread pools.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
os.environ.setdefault("GLOG_minloglevel", "2")

import argparse  # noqa: E402
import io  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from PIL import Image  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "faces"
LONG_SIDE = 1024


def fixture_bytes(name: str) -> bytes:
    image = Image.open(FIXTURES / name).convert("RGB")
    scale = LONG_SIDE / max(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixture", default="biden-2.jpg")
    parser.add_argument("--targets", type=float, nargs="+", default=[8, 10, 12, 14, 16, 18])
    parser.add_argument("--age", type=float, default=6)
    parser.add_argument("--sex", default="m")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from agepro import ProgressionPlan, progress
    from biometrics import detect_faces, face_mesh
    from imaging.decode import decode
    from workers.age_progression import progress_photo

    data = fixture_bytes(args.fixture)
    rgb = decode(data).rgb
    print(f"photo: {args.fixture} resized to {rgb.shape[1]}x{rgb.shape[0]}, cores: {len(os.sched_getaffinity(0))}")

    progress_photo(data, [], age=args.age, sex=args.sex, target_ages=args.targets[:1])  # load the models once

    started = time.perf_counter()
    rgb = decode(data).rgb
    mesh = face_mesh(rgb, detect_faces(rgb)[0])
    print(f"decode + detect + mesh (once per photo): {time.perf_counter() - started:.3f} s")

    core = []
    for target in args.targets:
        started = time.perf_counter()
        progress(rgb, mesh, ProgressionPlan(sex=args.sex, age=args.age, target_age=target))
        core.append(time.perf_counter() - started)
    print(f"core warp per target: median {statistics.median(core):.3f} s, max {max(core):.3f} s")

    totals = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        progress_photo(data, [], age=args.age, sex=args.sex, target_ages=args.targets).to_files()
        totals.append(time.perf_counter() - started)
    total = statistics.median(totals)
    per_target = total / len(args.targets)
    print(f"end to end, {len(args.targets)} targets, all artefacts encoded: median {total:.3f} s over {args.repeat}")
    print(f"goal <= 2 s per target age: {'met' if per_target <= 2 else 'NOT met'}")
    print(f"s_per_target_age={per_target:.3f} targets={len(args.targets)}")


if __name__ == "__main__":
    main()
