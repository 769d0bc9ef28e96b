"""Age progression on one core: speed with every variant, relatives' appearance, old-photo preparation, close-ups.

    python -m bench.agepro [--fixture biden-2.jpg] [--targets 8 10 12 14 16 18] [--repeat 3] [--skip-quality]

Speed: a face fixture resized to 1024 px on the long side, a relative's photo, old-photo preparation and every
artefact (full and hair-free images, overlays, meshes, sheet, PNG encoding); ends with ``s_per_target_age=..``:
the end-to-end time of ``workers.age_progression.progress_photo(...).to_files()`` (photo bytes in) divided by the
number of target ages (one-off costs included, so an upper bound), and the plain run (no relative, no preparation)
measured in the same process as the reference. Goal: <= 2 s.

Relatives (fixture pairs, 8 -> 14): the progressed face's dlib distance to the relative's photo with and without
the relative, its distance to the input, and the seam: mean gradient on the blend boundary over the mean just
inside and outside it (1.0 = no seam), for the blend, for the picture without the blend on the same contour
(what the photo itself gives there) and for a hard paste (the relative's face cut at that contour, unfeathered).

Old photos (frontal fixtures, each degraded by a halftone screen, JPEG quality 15, noise, fading and all four):
face-and-mesh detection rate and the distance to the clean original's descriptor, without and with preparation.

Close-ups (3:2 crops of the frontal fixtures, the face box spanning 40-110 % of the frame's height): faces found
by the first pass alone and by detect_faces; and the face count on every fixture against identities.csv.
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
import csv  # noqa: E402
import io  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from bench.degrade import DEGRADATIONS  # noqa: E402

cv2.setNumThreads(1)

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "faces"
LONG_SIDE = 1024
QUALITY_SIDE = 800
FRONTAL = (
    "obama-1.jpg", "obama-2.jpg", "obama-3.jpg", "obama-4.jpg", "biden-1.jpg", "biden-2.jpg", "harington-2.jpg",
    "harington-3.jpg", "leslie-1.jpg", "leslie-2.jpg", "lacamoire-1.jpg", "lacamoire-2.jpg", "lacamoire-3.png",
    "miranda-1.png",
)  # fmt: skip
# (child stand-in, relative stand-in): different people, as a child and a parent are.
PAIRS = (
    ("biden-2.jpg", "obama-2.jpg"), ("leslie-2.jpg", "miranda-1.png"), ("harington-2.jpg", "lacamoire-2.jpg"),
    ("obama-4.jpg", "leslie-1.jpg"), ("lacamoire-1.jpg", "obama-1.jpg"), ("miranda-1.png", "harington-3.jpg"),
)  # fmt: skip
CLOSE_UP_SPANS = (0.4, 0.55, 0.7, 0.85, 1.0, 1.1)


def resized(name: str, long_side: int) -> np.ndarray:
    image = Image.open(FIXTURES / name).convert("RGB")
    scale = long_side / max(image.size)
    return np.asarray(image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS))


def jpeg(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


# --- sections ------------------------------------------------------------------------------------------------


def speed(args) -> None:
    from workers.age_progression import progress_photo

    data = jpeg(resized(args.fixture, LONG_SIDE))
    relative = jpeg(resized(args.relative, LONG_SIDE))
    family = [(relative, 40.0, "father")]
    progress_photo(data, family, age=args.age, sex=args.sex, target_ages=args.targets[:1])  # load the models

    def timed(**options) -> float:
        runs = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            progress_photo(data, age=args.age, sex=args.sex, target_ages=args.targets, **options).to_files()
            runs.append(time.perf_counter() - started)
        return statistics.median(runs)

    plain = timed(family=[])
    full = timed(family=family, prepare_old_photo=True)
    per_target = full / len(args.targets)
    print(f"speed: {args.fixture} at {LONG_SIDE} px, relative {args.relative}, {len(args.targets)} targets, "
          f"one core, median of {args.repeat}")
    print(f"  plain (no relative, no preparation): {plain:.3f} s, {plain / len(args.targets):.3f} s per target")
    print(f"  all variants (relative's appearance, old-photo preparation, full + hair-free, every artefact): "
          f"{full:.3f} s; ratio vs plain {full / plain:.2f}")
    print(f"  goal <= 2 s per target age: {'met' if per_target <= 2 else 'NOT met'}")
    print(f"s_per_target_age={per_target:.3f} targets={len(args.targets)} ratio_vs_plain={full / plain:.2f}")


def relatives() -> None:
    from agepro import DEFAULT_APPEARANCE_WEIGHT, ProgressionPlan, progress, transfer_appearance
    from agepro.appearance import seam_gradient_ratio
    from biometrics import detect_faces, distance, embed, face_mesh

    def analysed(rgb):
        [face] = detect_faces(rgb)
        mesh = face_mesh(rgb, face)
        return mesh, embed(rgb, face, mesh)

    print(f"relatives' appearance (8 -> 14, appearance weight {DEFAULT_APPEARANCE_WEIGHT}, {QUALITY_SIDE} px):")
    print("  pair                              to relative: without  with   to input: without  with   "
          "seam: blend  no blend  hard paste")
    rows = []
    for child_name, relative_name in PAIRS:
        child, relative = resized(child_name, QUALITY_SIDE), resized(relative_name, QUALITY_SIDE)
        (child_mesh, child_vector), (relative_mesh, relative_vector) = analysed(child), analysed(relative)
        progression = progress(child, child_mesh, ProgressionPlan(sex="u", age=8, target_age=14))
        blend = transfer_appearance(progression.image, progression.target_points,
                                    [(relative, relative_mesh.points.astype(np.float64))], DEFAULT_APPEARANCE_WEIGHT)
        hard = transfer_appearance(progression.image, progression.target_points,
                                   [(relative, relative_mesh.points.astype(np.float64))], 1.0)
        pasted = np.where((hard.alpha >= 0.5)[..., None], hard.image, progression.image)
        without, with_relative = analysed(progression.image)[1], analysed(blend.image)[1]
        row = (distance(without, relative_vector), distance(with_relative, relative_vector),
               distance(without, child_vector), distance(with_relative, child_vector),
               seam_gradient_ratio(blend.image, blend.alpha), seam_gradient_ratio(progression.image, blend.alpha),
               seam_gradient_ratio(pasted, hard.alpha >= 0.5))
        rows.append(row)
        print(f"  {child_name + ' <- ' + relative_name:34s} {row[0]:.3f}  {row[1]:.3f}            "
              f"{row[2]:.3f}  {row[3]:.3f}         {row[4]:.3f}     {row[5]:.3f}      {row[6]:.3f}")
    mean = np.mean(rows, axis=0)
    print(f"  mean: distance to relative {mean[0]:.3f} -> {mean[1]:.3f} (falls by {mean[0] - mean[1]:.3f}; "
          f"every pair falls: {all(r[1] < r[0] for r in rows)}), distance to input max {max(r[3] for r in rows):.3f}"
          f" (< 0.6: {all(r[3] < 0.6 for r in rows)}), seam ratio {min(r[4] for r in rows):.3f}-"
          f"{max(r[4] for r in rows):.3f} (within 10 %: {all(abs(r[4] - 1) <= 0.1 for r in rows)}; "
          f"hard paste {mean[6]:.3f})")


def old_photos() -> None:
    from agepro import prepare_old_photo
    from biometrics import detect_faces, distance, embed, face_mesh

    def analysed(rgb):
        faces = detect_faces(rgb)
        if len(faces) != 1:
            return None
        mesh = face_mesh(rgb, faces[0])
        return None if mesh is None else embed(rgb, faces[0], mesh)

    clean = {name: resized(name, QUALITY_SIDE) for name in FRONTAL}
    reference = {name: analysed(rgb) for name, rgb in clean.items()}
    print(f"old-photo preparation ({len(FRONTAL)} frontal fixtures at {QUALITY_SIDE} px):")
    print("  degradation  found: without  with   distance to clean: without  with (both found)   with (all found)"
          "  prep s")
    pooled: list[tuple[float, float]] = []
    for kind, degrade in DEGRADATIONS.items():
        found = [0, 0]
        paired: list[tuple[float, float]] = []
        prepared_only: list[float] = []
        seconds = []
        for name, rgb in clean.items():
            degraded = degrade(rgb)
            started = time.perf_counter()
            prepared = prepare_old_photo(degraded).rgb
            seconds.append(time.perf_counter() - started)
            plain, restored = analysed(degraded), analysed(prepared)
            found[0] += plain is not None
            found[1] += restored is not None
            if restored is not None:
                prepared_only.append(distance(restored, reference[name]))
            if plain is not None and restored is not None:
                paired.append((distance(plain, reference[name]), distance(restored, reference[name])))
        pooled += paired
        without, with_prep = (f"{v:.3f}" for v in np.mean(paired, axis=0)) if paired else ("  -  ", "  -  ")
        print(f"  {kind:11s}  {found[0]:2d}/{len(clean)}  {found[1]:2d}/{len(clean)}          "
              f"{without}  {with_prep} ({len(paired):2d})      {np.mean(prepared_only):.3f} ({len(prepared_only)})"
              f"        {statistics.median(seconds):.2f}")
    without, with_prep = np.mean(pooled, axis=0)
    print(f"  pooled over the pairs found both ways: {without:.3f} -> {with_prep:.3f}")
    steps = [s["step"] for s in prepare_old_photo(clean["biden-2.jpg"]).steps]
    print(f"  on a clean photo (biden-2) the preparation applies: {', '.join(steps) or 'nothing'}")


def close_ups() -> None:
    from biometrics import detect_faces
    from biometrics.detection import _detect

    found_first, found_both, total = 0, 0, 0
    per_span = {span: 0 for span in CLOSE_UP_SPANS}
    for name in FRONTAL:
        rgb = np.asarray(Image.open(FIXTURES / name).convert("RGB"))
        [face] = detect_faces(rgb)
        x, y, w, h = face.detector_box
        for span in CLOSE_UP_SPANS:
            height = int(round(h / span))
            rows = np.clip(np.arange(height) + int(round(y + h / 2 - height / 2)), 0, rgb.shape[0] - 1)
            columns = np.clip(np.arange(int(1.5 * height)) + int(round(x + w / 2 - 0.75 * height)), 0,
                              rgb.shape[1] - 1)
            crop = np.ascontiguousarray(rgb[rows][:, columns])
            total += 1
            found_first += len(_detect(crop, 0.5, 0, 0)) == 1
            exactly_one = len(detect_faces(crop)) == 1
            found_both += exactly_one
            per_span[span] += exactly_one
    print(f"close-ups (3:2 crops, face box 40-110 % of the frame's height, {len(FRONTAL)} fixtures x "
          f"{len(CLOSE_UP_SPANS)} spans): first pass alone {found_first}/{total}, detect_faces {found_both}/{total}")
    print("  per span: " + ", ".join(f"{span:.2f}: {n}/{len(FRONTAL)}" for span, n in per_span.items()))
    with open(FIXTURES / "identities.csv", newline="") as handle:
        expected = {row["file"]: int(row["faces"]) for row in csv.DictReader(handle)}
    counts = {name: len(detect_faces(np.asarray(Image.open(FIXTURES / name).convert("RGB")))) for name in expected}
    wrong = {name: n for name, n in counts.items() if n != expected[name]}
    print(f"  fixtures: {sum(counts.values())} faces found where identities.csv lists {sum(expected.values())}; "
          f"files with another count: {wrong or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixture", default="biden-2.jpg")
    parser.add_argument("--relative", default="obama-2.jpg")
    parser.add_argument("--targets", type=float, nargs="+", default=[8, 10, 12, 14, 16, 18])
    parser.add_argument("--age", type=float, default=6)
    parser.add_argument("--sex", default="m")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-quality", action="store_true", help="speed only")
    args = parser.parse_args()
    print(f"cores: {len(os.sched_getaffinity(0))}")
    if not args.skip_quality:
        relatives()
        old_photos()
        close_ups()
    speed(args)


if __name__ == "__main__":
    main()
