"""Face biometrics cost per face on ONE core: detection, mesh (landmarks), quality, embedding, and all of them
through `analyze`.

    python -m bench.faces [--rounds 3] [--pool-copies 3]

Runs on the single-face fixture photos (../shared/fixtures/faces), decoded once up front; models are loaded and
warmed before timing. The process is pinned to one CPU and every thread pool is set to one thread, so the figures
are per core. Each stage's time is the median over rounds of the per-round mean per face. Goal: total <= 200 ms.
Before pinning, it measures images/s of an `extract_faces` job (with embeddings) through the Ray worker pool on
every core of this machine, after a warm-up job that loads the models in every actor.
"""

from __future__ import annotations

import os

# Before numpy / OpenCV / MediaPipe start their thread pools.
for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import csv  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from imaging import decode  # noqa: E402

FACES = Path(os.environ.get("FIMG_FIXTURES", Path(__file__).resolve().parents[2] / "shared" / "fixtures")) / "faces"


def limit_to_one_core() -> int:
    """Pin this process (and the threads its libraries start later) to one CPU; returns that CPU."""
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    cv2.setNumThreads(1)
    return cpu


def single_face_images() -> list[tuple[str, np.ndarray]]:
    with open(FACES / "identities.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["faces"] == "1"]
    return [(row["file"], decode(FACES / row["file"]).rgb) for row in rows]


def run_single_core(rounds: int = 3) -> dict[str, float]:
    """Milliseconds per face for each stage and for `analyze`, on one core. Keys: ms_detect, ms_mesh, ms_quality,
    ms_embed, ms_per_face_total, faces (faces per round), cpu."""
    cpu = limit_to_one_core()
    from biometrics import analyze, detect_faces, embed, face_mesh, load_models, quality

    images = single_face_images()
    load_models()
    analyze(images[0][1])  # first inference allocates buffers

    per_round: dict[str, list[float]] = {key: [] for key in ("detect", "mesh", "quality", "embed", "total")}
    faces = 0
    for _ in range(rounds):
        spent = dict.fromkeys(per_round, 0.0)
        faces = 0
        for _, rgb in images:
            start = time.perf_counter()
            found = detect_faces(rgb)
            spent["detect"] += time.perf_counter() - start
            for face in found:
                start = time.perf_counter()
                mesh = face_mesh(rgb, face)
                spent["mesh"] += time.perf_counter() - start
                start = time.perf_counter()
                quality(rgb, face, mesh)
                spent["quality"] += time.perf_counter() - start
                start = time.perf_counter()
                embed(rgb, face)
                spent["embed"] += time.perf_counter() - start
            faces += len(found)
            start = time.perf_counter()
            analyze(rgb)
            spent["total"] += time.perf_counter() - start
        for key, seconds in spent.items():
            per_round[key].append(1000 * seconds / faces)

    result = {f"ms_{key}": round(statistics.median(values), 1) for key, values in per_round.items()}
    result["ms_per_face_total"] = result.pop("ms_total")
    result["faces"] = faces
    result["cpu"] = cpu
    return result


def run_pool(copies: int = 3) -> dict[str, float]:
    """Images per second of an extract_faces job through the dispatcher and Ray actors (all cores)."""
    import tempfile

    from fimg_service.config import Settings
    from fimg_service.usecases import LOCAL_ADMIN, Application, job_request

    with open(FACES / "identities.csv", newline="") as handle:
        files = [FACES / row["file"] for row in csv.DictReader(handle) if row["faces"] == "1"]
    with tempfile.TemporaryDirectory() as tmp:
        app = Application(Settings(data_dir=Path(tmp), database_url=f"sqlite:///{tmp}/fimg.db", ray_address=None,
                                   num_cpus=None, max_upload_bytes=2**30, chunk_size=2))
        app.start()
        try:
            uploads, _ = app.uploads.add(LOCAL_ADMIN, [(p.name, p.read_bytes()) for p in files])
            ids = [u.id for u in uploads]
            warm = app.jobs.submit(LOCAL_ADMIN, "extract_faces", job_request(ids[: 2 * app.workers]),
                                   {"embeddings": True})
            app.jobs.wait(LOCAL_ADMIN, warm.id, poll_s=0.05)
            start = time.perf_counter()
            job = app.jobs.submit(LOCAL_ADMIN, "extract_faces", job_request(ids * copies), {"embeddings": True})
            app.jobs.wait(LOCAL_ADMIN, job.id, poll_s=0.05)
            elapsed = time.perf_counter() - start
            workers = app.workers
        finally:
            app.close()
    return {"pool_images_per_s": round(len(files) * copies / elapsed, 2), "pool_workers": workers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pool-copies", type=int, default=3, help="each fixture this many times in the pool job")
    args = parser.parse_args()
    pool = run_pool(args.pool_copies)
    print(f"through the pool: {pool['pool_images_per_s']} images/s with {pool['pool_workers']} workers")
    result = run_single_core(args.rounds)
    print(f"one core (cpu {result['cpu']}), {result['faces']} faces x {args.rounds} rounds, median ms per face:")
    for key in ("ms_detect", "ms_mesh", "ms_quality", "ms_embed"):
        print(f"  {key[3:]:8s} {result[key]:7.1f}")
    print(f"  analyze  {result['ms_per_face_total']:7.1f}  (goal <= 200)")
    print(
        f"ms_per_face_total={result['ms_per_face_total']} ms_detect={result['ms_detect']} ms_mesh={result['ms_mesh']}"
        f" ms_embed={result['ms_embed']} faces={result['faces']} pool_images_per_s={pool['pool_images_per_s']}"
        f" pool_workers={pool['pool_workers']}"
    )


if __name__ == "__main__":
    main()
