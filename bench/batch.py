"""Match-batch throughput through the real service, beside an HMA-style reference pipeline on the same files.

    python -m bench.batch [--set 1024|12mp|both] [--images N] [--distinct N] [--bank 100000]

Image sets, generated with a fixed seed from the fixture photos (shared/fixtures/faces/*.jpg): each distinct file is
a seeded crop of one photo scaled to the set's size, with a little seeded noise, saved as JPEG quality 90; the
distinct files are repeated to reach the image count.
    1024: 2,000 images of 1024x1024 (100 distinct)      12mp: 300 images of 4032x3024 (50 distinct)
The bank is `--bank` random records (fixed seed); both pipelines search the same bank PDQ hashes.

Per set, on the same files:
- images_per_s: our end-to-end match batch. The distinct files are uploaded over HTTP, one match_batch job of all
  the images is submitted, and the time runs from submission until the job reads `succeeded` (dispatcher, Ray
  actors, report written).
- reference_images_per_s: what an HMA (python-threatexchange) deployment does per image, in as many processes as
  the service has workers, each given an interleaved share of the same list of files: read the file, MD5 it, decode
  it with Pillow (`Image.open(...).convert("RGB")`, np.asarray), `pdqhash.compute` at full resolution, then a range
  search at distance <= 31 in a faiss IndexBinaryMultiHash over the bank, built as python-threatexchange's
  PDQMultiHashIndex builds it (16 hash maps of 16 bits in an IndexBinaryIDMap2, nflip = 31 // 16), one faiss
  thread per process. Each process imports its libraries and builds its index, then waits on a barrier; the time
  runs from the first process starting its loop after the barrier to the last one finishing it.
- ratio_vs_reference: images_per_s / reference_images_per_s.
- pool_efficiency: images_per_s / (workers x one-core throughput), one core being the same per-item work
  (the bank built once, then `run_item` with dihedral lookups) timed in this process once on every distinct
  file (the batch cycles through them evenly, so both figures are over the same mix), after the service has
  stopped.
- machine_scaling: the same in-process work in `workers` processes at once, each over every distinct file, over
  workers x one-core throughput: what this machine gives with all its cores busy (they share caches, memory
  bandwidth and a power budget), so the most pool_efficiency can reach here.
- peak_rss_mb: the peak of the summed RSS of this process (the service runs in it) and all its descendants (Ray's
  GCS, raylet and workers, the reaper), sampled every 0.2 s while the job runs. Pages shared between processes
  count once per process. With RAY_ADDRESS set, Ray's processes are not descendants and are not counted.
- Beside them (diagnostics): the CPU seconds each kind of process of that tree used while the job ran.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import multiprocessing
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import psutil
from PIL import Image

FIXTURES = Path(os.environ.get("FIMG_FIXTURES", Path(__file__).resolve().parents[2] / "shared" / "fixtures"))
FIXTURE_PHOTOS = FIXTURES / "faces"
PORT = 8765
PDQ_BITS = 256
PDQ_MATCH_DISTANCE = 31  # python-threatexchange's PDQ_CONFIDENT_MATCH_THRESHOLD
MULTI_HASH_MAPS = 16  # PDQMultiHashIndex's default nhash


@dataclass(frozen=True)
class ImageSet:
    width: int
    height: int
    images: int
    distinct: int


IMAGE_SETS = {"1024": ImageSet(1024, 1024, images=2000, distinct=100),
              "12mp": ImageSet(4032, 3024, images=300, distinct=50)}


@dataclass(frozen=True)
class ServiceRun:
    workers: int
    import_s: float
    batch_s: float
    first_result_s: float  # from submission: mostly the bank read from the database and built
    peak_rss_mb: float
    cpu_seconds: dict[str, float]  # while the job ran, per kind of process


def seeded_crop(photo_size: tuple[int, int], aspect: float, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """A box of the given aspect ratio, 80-100 % of the largest that fits, at a random place in the photo."""
    photo_width, photo_height = photo_size
    width = min(photo_width, photo_height * aspect) * rng.uniform(0.8, 1.0)
    height = width / aspect
    left = rng.uniform(0, photo_width - width)
    top = rng.uniform(0, photo_height - height)
    return round(left), round(top), round(left + width), round(top + height)


def write_fixture_jpegs(folder: Path, count: int, width: int, height: int, seed: int = 7) -> list[Path]:
    photos = sorted(FIXTURE_PHOTOS.glob("*.jpg"))
    if not photos:
        raise SystemExit(f"no fixture photos in {FIXTURE_PHOTOS} (set FIMG_FIXTURES)")
    rng = np.random.default_rng(seed)
    folder.mkdir()
    paths = []
    for i in range(count):
        photo = Image.open(photos[i % len(photos)]).convert("RGB")
        scaled = photo.crop(seeded_crop(photo.size, width / height, rng)).resize((width, height),
                                                                                 Image.Resampling.BICUBIC)
        noise = rng.integers(-4, 5, size=(height, width, 3), dtype=np.int16)
        pixels = np.clip(np.asarray(scaled, dtype=np.int16) + noise, 0, 255).astype(np.uint8)
        paths.append(folder / f"img-{i}.jpg")
        Image.fromarray(pixels).save(paths[-1], format="JPEG", quality=90)
    return paths


def random_bank(records: int, seed: int = 11) -> tuple[np.ndarray, str]:
    """The bank's PDQ hashes (records x 32 bytes) and the same bank as CSV for the service's import."""
    rng = np.random.default_rng(seed)
    pdqs = rng.integers(0, 256, size=(records, 32), dtype=np.uint8)
    digests = rng.integers(0, 256, size=(records, 32), dtype=np.uint8)
    lines = ["record_id,victim_id,pdq,sha256"]
    lines += [f"r{i},v{i % 997},{pdqs[i].tobytes().hex()},{digests[i].tobytes().hex()}" for i in range(records)]
    return pdqs, "\n".join(lines) + "\n"


class PeakRss:
    """While open, samples the process tree (this process and all its descendants) every `interval_s` in a thread:
    the peak of the summed RSS, and the CPU time each process used while it was seen, by kind of process."""

    def __init__(self, interval_s: float = 0.2) -> None:
        self.interval_s = interval_s
        self.peak_bytes = 0
        self._cpu: dict[int, tuple[str, float, float]] = {}  # pid -> (kind, first cpu seconds, last)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        root = psutil.Process()
        while True:
            total = 0
            for process in [root, *root.children(recursive=True)]:
                try:
                    with process.oneshot():
                        total += process.memory_info().rss
                        times = process.cpu_times()
                        used = times.user + times.system
                        kind = "service" if process.pid == root.pid else process.name()
                except psutil.Error:  # ended between the listing and the reading
                    continue
                first = self._cpu.get(process.pid, (kind, used, used))[1]
                self._cpu[process.pid] = (kind, first, used)
            self.peak_bytes = max(self.peak_bytes, total)
            if self._stop.wait(self.interval_s):
                return

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds per kind of process (the service, `ray::Worker`, raylet, gcs_server, ...), largest first."""
        by_kind: dict[str, float] = {}
        for kind, first, last in self._cpu.values():
            by_kind[kind] = by_kind.get(kind, 0.0) + last - first
        return dict(sorted(by_kind.items(), key=lambda kv: -kv[1]))

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()


def service_batch(files: list[Path], images: int, bank_csv: str, data_dir: Path) -> ServiceRun:
    import httpx
    import uvicorn

    from api import create_app
    from fimg_service.config import Settings
    from fimg_service.usecases import LOCAL_ADMIN

    settings = Settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir}/fimg.db",
                        ray_address=os.environ.get("RAY_ADDRESS"), num_cpus=None,
                        max_upload_bytes=512 * 2**20, chunk_size=16)
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=PORT, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.1)
    try:
        key = app.state.application.keys.create(LOCAL_ADMIN, "bench", "analyst")[1]
        client = httpx.Client(base_url=f"http://127.0.0.1:{PORT}", headers={"Authorization": f"Bearer {key}"},
                              timeout=600)
        client.post("/v1/banks", json={"name": "bench"}).raise_for_status()
        started = time.perf_counter()
        client.post("/v1/banks/bench/records", content=bank_csv,
                    headers={"Content-Type": "text/csv"}).raise_for_status()
        import_s = time.perf_counter() - started
        uploads = client.post("/v1/uploads", files=[("files", (path.name, path.read_bytes(), "image/jpeg"))
                                                    for path in files]).json()["uploads"]
        inputs = [uploads[i % len(uploads)]["id"] for i in range(images)]
        workers = client.get("/healthz").json()["workers"]

        with PeakRss() as rss:
            started = time.perf_counter()
            job_id = client.post("/v1/jobs", json={"type": "match_batch", "inputs": inputs,
                                                   "params": {"banks": ["bench"]}}).json()["id"]
            first_result_s = None
            while (job := client.get(f"/v1/jobs/{job_id}").json())["status"] in ("queued", "running"):
                if first_result_s is None and job["progress"]["done"] + job["progress"]["failed"]:
                    first_result_s = time.perf_counter() - started
                time.sleep(0.2)
            batch_s = time.perf_counter() - started
        assert job["status"] == "succeeded" and job["progress"]["failed"] == 0, job
    finally:
        server.should_exit = True
        thread.join(30)
    return ServiceRun(workers, import_s, batch_s, first_result_s or batch_s, rss.peak_bytes / 2**20,
                      rss.cpu_seconds())


def reference_share(paths: list[Path], bank_pdqs: np.ndarray, barrier, spans) -> None:
    """One reference process: build the index, wait for the others, then time the per-image loop."""
    import faiss
    import pdqhash

    faiss.omp_set_num_threads(1)
    index = faiss.IndexBinaryIDMap2(faiss.IndexBinaryMultiHash(PDQ_BITS, MULTI_HASH_MAPS,
                                                               PDQ_BITS // MULTI_HASH_MAPS))
    index.add_with_ids(bank_pdqs, np.arange(len(bank_pdqs), dtype=np.int64))
    faiss.downcast_IndexBinary(index.index).nflip = PDQ_MATCH_DISTANCE // MULTI_HASH_MAPS
    barrier.wait()
    started = time.monotonic()
    for path in paths:
        data = path.read_bytes()
        hashlib.md5(data).hexdigest()
        rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        bits, _quality = pdqhash.compute(rgb)
        index.range_search(np.packbits(bits)[np.newaxis], PDQ_MATCH_DISTANCE + 1)  # faiss's radius is exclusive
    spans.put((started, time.monotonic()))


def span_in_processes(target, shares: list[tuple]) -> float:
    """Run `target(*share, barrier, spans)` in one spawned process per share (spawned, not forked: this process
    has run uvicorn's and Ray's threads); each times its loop after the barrier. Seconds from the first loop's
    start to the last one's end."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(shares), timeout=600)
    spans = context.Queue()
    processes = [context.Process(target=target, args=(*share, barrier, spans)) for share in shares]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    if any(process.exitcode for process in processes):
        raise RuntimeError(f"a {target.__name__} process failed: exit codes {[p.exitcode for p in processes]}")
    starts, ends = zip(*(spans.get() for _ in processes))
    return max(ends) - min(starts)


def reference_images_per_s(batch: list[Path], bank_pdqs: np.ndarray, processes: int) -> float:
    shares = [(batch[i::processes], bank_pdqs) for i in range(processes)]
    return len(batch) / span_in_processes(reference_share, shares)


def in_process_items(files: list[Path], bank_csv: str):
    """Our per-item work without the service: a function that runs it over a list of files' bytes."""
    from imaging.banks import parse_bank
    from imaging.matching import BankEntry, BankMatcher
    from workers import match_batch

    records, _ = parse_bank(bank_csv, "csv")
    matchers = [BankMatcher("bench", [BankEntry(r.record_id, r.victim_id, r.pdq, r.md5, r.sha1, r.sha256)
                                      for r in records])]
    params = match_batch.MatchParams(banks=["bench"], dihedral=True)
    cv2.setNumThreads(1)  # as in an actor (workers/pool.py): one core means one thread
    match_batch.run_item(matchers, params, {"data": files[0].read_bytes()})  # loads the compiled code

    def run(sample: list[bytes]) -> None:
        for data in sample:
            match_batch.run_item(matchers, params, {"data": data})
    return run


def one_core_seconds_per_image(files: list[Path], bank_csv: str) -> float:
    run = in_process_items(files, bank_csv)
    sample = [path.read_bytes() for path in files]
    start = time.perf_counter()
    run(sample)
    return (time.perf_counter() - start) / len(sample)


def in_process_share(files: list[Path], bank_csv: str, barrier, spans) -> None:
    run = in_process_items(files, bank_csv)
    sample = [path.read_bytes() for path in files]
    barrier.wait()
    started = time.monotonic()
    run(sample)
    spans.put((started, time.monotonic()))


def side_by_side_images_per_s(files: list[Path], bank_csv: str, processes: int) -> float:
    """The same in-process work in `processes` processes at once, each over all the distinct files: what the
    machine gives for it with every core busy, the ceiling of the pool's efficiency (cores that share caches,
    memory and a power budget each run slower than one alone)."""
    return processes * len(files) / span_in_processes(in_process_share, [(files, bank_csv)] * processes)


def run_set(name: str, images: int, distinct: int, bank_pdqs: np.ndarray, bank_csv: str) -> None:
    image_set = IMAGE_SETS[name]
    print(f"[{name}] generating {distinct} {image_set.width}x{image_set.height} JPEGs from the fixture photos ...",
          flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        files = write_fixture_jpegs(Path(tmp) / "images", distinct, image_set.width, image_set.height)
        service = service_batch(files, images, bank_csv, Path(tmp))
        batch = [files[i % len(files)] for i in range(images)]
        reference_rate = reference_images_per_s(batch, bank_pdqs, service.workers)
        per_image = one_core_seconds_per_image(files, bank_csv)
        side_by_side_rate = side_by_side_images_per_s(files, bank_csv, service.workers)

    rate = images / service.batch_s
    one_core_rate = 1 / per_image
    print(f"[{name}] bank import: {len(bank_pdqs)} records in {service.import_s:.1f} s")
    print(f"[{name}] match batch: {images} images in {service.batch_s:.1f} s through {service.workers} workers "
          f"= {rate:.1f} img/s, peak RSS {service.peak_rss_mb:.0f} MB; first result after "
          f"{service.first_result_s:.1f} s (the bank read and built, then mapped by the actors), "
          f"{(images - 1) / (service.batch_s - service.first_result_s):.1f} img/s from there")
    cpu = ", ".join(f"{kind} {seconds:.1f}" for kind, seconds in service.cpu_seconds.items() if seconds >= 0.05)
    print(f"[{name}] CPU seconds while the job ran ({service.batch_s:.1f} s x {os.cpu_count()} cores): {cpu}")
    print(f"[{name}] reference (decode + pdqhash + MD5 + faiss MIH) in {service.workers} processes: "
          f"{reference_rate:.1f} img/s")
    print(f"[{name}] one core in-process: {per_image * 1000:.1f} ms/img = {one_core_rate:.1f} img/s")
    machine_scaling = side_by_side_rate / (service.workers * one_core_rate)
    print(f"[{name}] the same in {service.workers} processes at once: {side_by_side_rate:.1f} img/s = "
          f"{machine_scaling:.2f} of {service.workers} x one core (the most pool_efficiency can be here)")
    print(f"set={name} images_per_s={rate:.1f} reference_images_per_s={reference_rate:.1f} "
          f"ratio_vs_reference={rate / reference_rate:.2f} "
          f"pool_efficiency={rate / (service.workers * one_core_rate):.2f} machine_scaling={machine_scaling:.2f} "
          f"peak_rss_mb={service.peak_rss_mb:.0f} "
          f"workers={service.workers} images={images} bank_records={len(bank_pdqs)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=[*IMAGE_SETS, "both"], default="1024")
    parser.add_argument("--images", type=int, help="images per batch (default: the set's)")
    parser.add_argument("--distinct", type=int, help="distinct files (default: the set's)")
    parser.add_argument("--bank", type=int, default=100_000)
    args = parser.parse_args()

    print(f"generating a {args.bank}-record bank ...", flush=True)
    bank_pdqs, bank_csv = random_bank(args.bank)
    for name in IMAGE_SETS if args.set == "both" else [args.set]:
        run_set(name, args.images or IMAGE_SETS[name].images, args.distinct or IMAGE_SETS[name].distinct,
                bank_pdqs, bank_csv)


if __name__ == "__main__":
    main()
