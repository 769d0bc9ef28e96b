"""Match-batch throughput through the real API and Ray pool.

    python -m bench.batch --images 2000 [--bank 100000] [--distinct 100]

Generates `--distinct` 1024x1024 JPEGs (smooth random images, fixed seed), uploads them, imports a random bank of
`--bank` records, submits one match batch of `--images` items (the distinct uploads repeated) and times it from
submission to `succeeded`. For scale it also times the same per-item work in this process on one core
(decode + digests + dihedral PDQ + lookup), so the last line carries the pool's speed-up over one core.
"""
from __future__ import annotations

import argparse
import io
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image


def synthetic_jpegs(count: int, side: int = 1024, seed: int = 7) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        coarse = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((side, side), Image.BICUBIC)
        noise = rng.integers(-12, 13, size=(side, side, 3))
        pixels = np.clip(np.asarray(image, dtype=np.int16) + noise, 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def random_bank_csv(records: int, seed: int = 11) -> str:
    rng = np.random.default_rng(seed)
    pdqs = rng.integers(0, 256, size=(records, 32), dtype=np.uint8)
    digests = rng.integers(0, 256, size=(records, 32), dtype=np.uint8)
    lines = ["record_id,victim_id,pdq,sha256"]
    lines += [f"r{i},v{i % 997},{pdqs[i].tobytes().hex()},{digests[i].tobytes().hex()}" for i in range(records)]
    return "\n".join(lines) + "\n"


def one_core_seconds_per_image(images: list[bytes], bank_csv: str) -> float:
    from imaging.banks import parse_bank
    from imaging.matching import BankEntry
    from workers import match_batch

    records, _ = parse_bank(bank_csv, "csv")
    matchers = match_batch.setup([{"name": "bench", "threshold": None, "entries": [
        BankEntry(r.record_id, r.victim_id, r.pdq, r.md5, r.sha1, r.sha256) for r in records]}])
    sample = images[: min(len(images), 30)]
    start = time.perf_counter()
    for data in sample:
        match_batch.run_item(matchers, {"dihedral": True}, {"data": data})
    return (time.perf_counter() - start) / len(sample)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--bank", type=int, default=100_000)
    parser.add_argument("--distinct", type=int, default=100)
    args = parser.parse_args()

    import httpx
    import uvicorn

    from api import create_app
    from fimg_service.config import Settings

    print(f"generating {args.distinct} 1024x1024 JPEGs and a {args.bank}-record bank ...", flush=True)
    images = synthetic_jpegs(args.distinct)
    bank_csv = random_bank_csv(args.bank)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=f"sqlite:///{tmp}/fimg.db",
                            ray_address=os.environ.get("RAY_ADDRESS"), num_cpus=None,
                            max_upload_bytes=512 * 2**20, chunk_size=16)
        app = create_app(settings)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=8765, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.1)
        url = "http://127.0.0.1:8765"
        from fimg_service.usecases import LOCAL_ADMIN

        key = app.state.application.keys.create(LOCAL_ADMIN, "bench", "analyst")[1]
        client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=600)
        client.post("/v1/banks", json={"name": "bench"}).raise_for_status()
        started = time.perf_counter()
        imported = client.post("/v1/banks/bench/records", content=bank_csv, headers={"Content-Type": "text/csv"})
        imported.raise_for_status()
        import_s = time.perf_counter() - started
        files = [("files", (f"img-{i}.jpg", data, "image/jpeg")) for i, data in enumerate(images)]
        uploads = client.post("/v1/uploads", files=files).json()["uploads"]
        inputs = [uploads[i % len(uploads)]["id"] for i in range(args.images)]
        workers = client.get("/healthz").json()["workers"]

        started = time.perf_counter()
        job_id = client.post("/v1/jobs", json={"type": "match_batch", "inputs": inputs,
                                               "params": {"banks": ["bench"]}}).json()["id"]
        while (job := client.get(f"/v1/jobs/{job_id}").json())["status"] in ("queued", "running"):
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
        assert job["status"] == "succeeded" and job["progress"]["failed"] == 0, job
        server.should_exit = True
        thread.join(30)

    per_image = one_core_seconds_per_image(images, bank_csv)
    rate = args.images / elapsed
    print(f"bank import: {args.bank} records in {import_s:.1f} s")
    print(f"match batch: {args.images} images in {elapsed:.1f} s through {workers} workers = {rate:.1f} img/s")
    print(f"one core in-process: {per_image * 1000:.1f} ms/img = {1 / per_image:.1f} img/s")
    print(f"images_per_s={rate:.1f} images={args.images} bank_records={args.bank} workers={workers} "
          f"one_core_images_per_s={1 / per_image:.1f} speedup_vs_one_core={rate * per_image:.2f}")


if __name__ == "__main__":
    main()
