"""Ray's processes do not outlive the service that started them, even when it is killed with SIGKILL.

`ray.init` ties the GCS and the raylet to the driver, but the raylet's agents (dashboard agent, runtime-env
agent) survive it. A service that starts its own Ray therefore starts a reaper: a small process in a session of
its own that is handed the service's Ray processes and waits on a pipe. The pipe reaches end-of-file when the
service exits, however it exits; the reaper then stops whichever of those processes still run (each known by pid
and start time, so a reused pid is never hit) and exits itself.

    python -m workers.reaper      (reads "pid start_time" lines on stdin; not for use by hand)
"""
from __future__ import annotations

import subprocess
import sys

import psutil

GRACE_S = 5.0


class Reaper:
    """The service's side: start the reaper, tell it the service's processes, let it go on a clean stop."""

    def __init__(self, spared: set[int]) -> None:
        """`spared`: the pids of this process's children from before Ray started (the host's own, e.g. a
        multiprocessing helper), which are not Ray's to stop."""
        self._spared = spared
        self._process = subprocess.Popen([sys.executable, "-m", "workers.reaper"], stdin=subprocess.PIPE,
                                          stdout=subprocess.DEVNULL, start_new_session=True)

    @staticmethod
    def children() -> set[int]:
        return {process.pid for process in psutil.Process().children(recursive=True)}

    def watch_descendants(self) -> int:
        """Hand over every process this one started since Ray started (Ray's, by now); returns how many."""
        processes = [p for p in psutil.Process().children(recursive=True)
                     if p.pid != self._process.pid and p.pid not in self._spared]
        for process in processes:
            try:
                self._process.stdin.write(f"{process.pid} {process.create_time()}\n".encode())
            except psutil.NoSuchProcess:
                continue
        self._process.stdin.flush()
        return len(processes)

    def close(self) -> None:
        """Called after Ray was shut down: the reaper stops any straggler and exits."""
        self._process.stdin.close()
        self._process.wait(GRACE_S * 3)


def reap(lines) -> None:
    watched = []
    for line in lines:
        pid, started = line.split()
        watched.append((int(pid), float(started)))
    alive = []
    for pid, started in watched:
        try:
            process = psutil.Process(pid)
            if process.create_time() == started:
                process.terminate()
                alive.append(process)
        except psutil.Error:
            continue
    _gone, still_alive = psutil.wait_procs(alive, timeout=GRACE_S)
    for process in still_alive:
        try:
            process.kill()
        except psutil.Error:
            continue


if __name__ == "__main__":
    reap(sys.stdin)
