"""A built bank served by the worker actors of a node: built once, mapped by every actor.

    python -m bench.bank_memory --records 10000000 [--lookups 200]

Builds a bank of `--records` random PDQ records as a hash-list import makes them (record id, PDQ, store id; no
variants), as `workers.match_batch.build_bank` builds it (BankMatcher, timed without making the entries), puts it
in Ray's object store and has two real worker actors (`workers.pool.Worker`) take it and answer `--lookups`
lookups each (half of them near copies of records, which must match). Prints:
- build_s: the BankMatcher build; put_s: ray.put; take_s: both actors' setup threads taking it;
- shared_mb: the bank's arrays in the object store (pickle protocol 5 out-of-band buffers), inline_kb: what is
  pickled beside them (the Python objects: none per record);
- per actor: uss_mb (its own memory, after a warm-up context and before the bank: the growth is what it holds of
  the bank), rss_mb;
- two_actors_mb: both actors' own memory plus one shared copy, what the two hold together;
- reference (same run): two plain Ray actors that each unpickle a private copy of the same bank (what actors
  building their own index hold), their uss growth; bank_held_mb (both actors' growth plus the shared copy)
  against theirs: ratio_vs_private_copies.
"""
from __future__ import annotations

import argparse
import os
import pickle
import time

import numpy as np
import psutil
import ray

from imaging.matching import BankEntry, BankMatcher
from workers.pool import make_workers, start_ray
from workers.service import QUIET_RAY


@ray.remote(num_cpus=0)
class PrivateCopy:
    """The reference: an actor that holds its own copy of the bank, as one that built it itself would."""

    def take(self, payload: bytes) -> int:
        self.bank = pickle.loads(payload)
        return len(self.bank)

    def pid(self) -> int:
        return os.getpid()


def uss(pid: int) -> int:
    return psutil.Process(pid).memory_full_info().uss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(2026)
    hashes = rng.integers(0, 256, size=(args.records, 32), dtype=np.uint8)
    entries = [BankEntry(f"r{i}", pdq=row.tobytes().hex(), content_id=i + 1) for i, row in enumerate(hashes)]
    started = time.perf_counter()
    bank = BankMatcher("bench", entries)
    build_s = time.perf_counter() - started
    del entries
    buffers: list = []
    inline = len(pickle.dumps(bank, protocol=5, buffer_callback=buffers.append))
    shared = sum(buffer.raw().nbytes for buffer in buffers)

    for name, value in QUIET_RAY.items():
        os.environ.setdefault(name, value)
    start_ray(None, num_cpus=2)
    workers = make_workers(2, 120)
    pids = ray.get([w.pid.remote() for w in workers])
    picks = rng.integers(0, args.records, size=args.lookups // 2)
    near = hashes[picks].copy()
    near[:, 0] ^= 0b111  # three bits away
    probes = np.concatenate([near, rng.integers(0, 256, size=(args.lookups - len(near), 32), dtype=np.uint8)])
    items = [{"idx": i, "name": f"q{i}", "hashes": {"pdq": probe.tobytes().hex()}} for i, probe in enumerate(probes)]

    def serve(key: str, ref) -> list[dict]:
        ray.get([w.warm.remote("match_batch", key, [ref]) for w in workers])
        return ray.get([w.run_chunk.remote("match_batch", {"banks": ["bench"]}, key, [ref], items, None)
                        for w in workers])

    serve("warm-up", ray.put([ray.put(BankMatcher("bench", []))]))
    before = [uss(pid) for pid in pids]
    started = time.perf_counter()
    ref = ray.put([ray.put(bank)])  # a job's context: references to its built banks
    put_s = time.perf_counter() - started
    started = time.perf_counter()
    ray.get([w.warm.remote("match_batch", "bank", [ref]) for w in workers])
    take_s = time.perf_counter() - started
    outputs = serve("bank", ref)
    for output in outputs:
        found = [r["result"]["matches"][0]["record_id"] if r["result"]["matches"] else None
                 for r in output["results"]]
        assert found[:len(picks)] == [f"r{i}" for i in picks], "a near copy of a record was not found"
    grown = [uss(pid) - start for pid, start in zip(pids, before)]
    rss = [psutil.Process(pid).memory_info().rss for pid in pids]
    two_actors = sum(uss(pid) for pid in pids) + shared
    held = sum(grown) + shared
    ray.get([w.forget.remote(["bank", "warm-up"]) for w in workers])
    for worker in workers:
        ray.kill(worker)
    del ref

    payload = pickle.dumps(bank, protocol=5)
    holders = [PrivateCopy.remote() for _ in range(2)]
    holder_pids = ray.get([h.pid.remote() for h in holders])
    holder_before = [uss(pid) for pid in holder_pids]
    ray.get([h.take.remote(payload) for h in holders])
    holder_grown = [uss(pid) - start for pid, start in zip(holder_pids, holder_before)]
    holders_total = sum(uss(pid) for pid in holder_pids)
    holders_held = sum(holder_grown)

    mb = 1e6
    print(f"records={args.records} build_s={build_s:.1f} put_s={put_s:.2f} take_s={take_s:.2f} "
          f"shared_mb={shared / mb:.0f} inline_kb={inline / 1e3:.1f} bytes_per_record={shared / args.records:.0f}")
    for n, (g, r) in enumerate(zip(grown, rss)):
        print(f"actor{n}: uss_growth_mb={g / mb:.1f} rss_mb={r / mb:.0f} (rss counts the mapped pages it touched)")
    print(f"two_actors_mb={two_actors / mb:.0f} (both actors' own memory + one shared copy)")
    print(f"reference private copies: uss_growth_mb={holder_grown[0] / mb:.0f},{holder_grown[1] / mb:.0f} "
          f"two_actors_mb={holders_total / mb:.0f}")
    print(f"bank_held_mb={held / mb:.0f} reference_bank_held_mb={holders_held / mb:.0f} "
          f"ratio_vs_private_copies={held / holders_held:.2f} (the bank's memory in two actors, ours / reference)")
    ray.shutdown()


if __name__ == "__main__":
    main()
