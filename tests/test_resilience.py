"""Nothing is lost: a killed Ray worker, a killed service, many concurrent clients, a two-node Ray cluster."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from conftest import POSTGRES_URL, REPO_ROOT, create_key, make_settings
from fimg_service.storage import Storage


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class ServiceProcess:
    """`fimg serve` in its own process, as an operator runs it."""

    def __init__(self, data_dir: Path, ray_address: str | None, log_path: Path, database_url: str | None = None,
                 wait: bool = True, **env_overrides: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "FIMG_DATA_DIR": str(data_dir), "FIMG_CHUNK_SIZE": "2", **env_overrides}
        for name, value in (("FIMG_DATABASE_URL", database_url), ("RAY_ADDRESS", ray_address)):
            env.pop(name, None)
            if value:
                env[name] = value
        self.log = log_path.open("ab")
        self.process = subprocess.Popen([sys.executable, "-m", "fimg_service.cli", "serve", "--port", str(self.port)],
                                        cwd=REPO_ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        if wait:
            self.wait_ready()

    def wait_ready(self) -> None:
        wait_until(self._healthy, 180, "the service to start")

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"service exited with {self.process.returncode}")
        try:
            return httpx.get(self.url + "/healthz", timeout=2).json()["workers"] > 0
        except (httpx.HTTPError, KeyError, ValueError):
            return False

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        self.log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


def prepare_data(data_dir: Path, bridge: Path, copies: int,
                 database_url: str | None = None) -> tuple[Storage, str, list[str]]:
    from fimg_service.usecases import LOCAL_ADMIN, Application

    app = Application(make_settings(database_url or f"sqlite:///{data_dir / 'fimg.db'}", data_dir))
    app.prepare_schema()
    key = create_key(app, "resilience", "analyst")
    analyst = app.keys.authenticate(key)
    app.banks.create(LOCAL_ADMIN, "b")
    app.banks.add_member(LOCAL_ADMIN, "b", "resilience")
    data = (bridge / "aaa-orig.jpg").read_bytes()
    uploads, _ = app.uploads.add(analyst, [(f"copy-{i}.jpg", data) for i in range(copies)])
    return app.storage, key, [u.id for u in uploads]


def job_of(storage: Storage, job_id: str):
    with storage.read() as unit:
        return unit.jobs.get(job_id)


def items_of(storage: Storage, job_id: str):
    with storage.read() as unit:
        return unit.jobs.items(job_id)


def submit(url: str, key: str, upload_ids: list[str]) -> str:
    response = httpx.post(url + "/v1/jobs", headers={"Authorization": f"Bearer {key}"}, timeout=30,
                          json={"type": "match_batch", "inputs": upload_ids, "params": {"banks": ["b"]}})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def assert_every_item_once(storage: Storage, job_id: str) -> None:
    job = job_of(storage, job_id)
    assert job.status == "succeeded", (job.status, job.error)
    items = items_of(storage, job_id)
    assert job.done == job.total == len(items)
    assert all(item.status == "done" and item.completions == 1 for item in items)


def test_killed_ray_worker_costs_a_retry_not_an_item(service, fixtures_dir):
    import ray

    service.client.post("/v1/banks", json={"name": "b"}, headers=service.auth("analyst"))
    upload = service.upload([fixtures_dir / "pdq" / "bridge-mods" / "aaa-orig.jpg"])[0]
    job_id = service.client.post("/v1/jobs", json={"type": "match_batch", "inputs": [upload["id"]] * 60,
                                                   "params": {"banks": ["b"]}},
                                 headers=service.auth("analyst")).json()["id"]
    dispatcher = service.app.pool.dispatcher
    pids = ray.get([worker.pid.remote() for worker in dispatcher.workers])
    wait_until(lambda: job_of(service.storage, job_id).done >= 4, 60, "the first results")
    busy = wait_until(lambda: [w for w, load in enumerate(dispatcher.worker_load) if load], 60,
                      "a worker with a chunk", interval=0.01)
    os.kill(pids[busy[0]], signal.SIGKILL)
    assert service.wait(job_id)["status"] == "succeeded"
    assert_every_item_once(service.storage, job_id)
    assert sum(item.attempts for item in items_of(service.storage, job_id)) >= 1


def test_a_chunk_that_never_answers_is_retried_then_reported(ray_session, tmp_path, fixtures_dir):
    """A chunk not back within the chunk timeout (here 0.25 s, less than finding the faces of a photo takes, even
    with the models loaded) is retried on a restarted actor, then reported as the item's error; the job ends
    instead of waiting forever."""
    from fimg_service.usecases import LOCAL_ADMIN, Application, job_request

    app = Application(make_settings(f"sqlite:///{tmp_path / 'fimg.db'}", tmp_path / "data", num_cpus=1,
                                    chunk_timeout_s=0.25)).start()
    try:
        uploads, _ = app.uploads.add(LOCAL_ADMIN, [("face.jpg", (fixtures_dir / "faces" / "obama-2.jpg").read_bytes())])
        job = app.jobs.submit(LOCAL_ADMIN, "extract_faces", job_request([uploads[0].id]), {})
        started = time.monotonic()
        finished = app.jobs.wait(LOCAL_ADMIN, job.id)
        assert time.monotonic() - started < 120
        _job, items = app.jobs.report(LOCAL_ADMIN, job.id)
        assert finished.status == "failed" and items[0]["error"]["code"] == "worker_failed"
        assert items_of(app.storage, job.id)[0].attempts == 3
    finally:
        app.close()


def test_killed_service_resumes_its_jobs_on_restart(ray_session, tmp_path, fixtures_dir):
    data_dir = tmp_path / "data"
    storage, key, upload_ids = prepare_data(data_dir, fixtures_dir / "pdq" / "bridge-mods", copies=80)
    address = ray_session.get_runtime_context().gcs_address
    first = ServiceProcess(data_dir, address, tmp_path / "service.log")
    try:
        job_id = submit(first.url, key, upload_ids)
        wait_until(lambda: job_of(storage, job_id).done >= 6, 90, "the first results")
    finally:
        first.kill()
    interrupted = job_of(storage, job_id)
    assert interrupted.status == "running" and interrupted.done < interrupted.total

    second = ServiceProcess(data_dir, address, tmp_path / "service.log")
    try:
        wait_until(lambda: job_of(storage, job_id).status == "succeeded", 180, "the resumed job")
    finally:
        second.stop()
    assert_every_item_once(storage, job_id)


def test_two_hundred_concurrent_submissions(ray_session, tmp_path):
    import uvicorn

    from api import create_app

    port = free_port()
    # 200 submissions from one key arrive faster than the default 50/s on a quick machine; the rate limit has
    # its own tests, this one is about concurrent writes.
    app = create_app(make_settings(f"sqlite:///{tmp_path / 'fimg.db'}", tmp_path / "data", rate_limit=""))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: getattr(app.state, "application", None) is not None and server.started, 60, "the server")
        key = create_key(app.state.application, "load", "service")
        headers = {"Authorization": f"Bearer {key}"}
        admin = create_key(app.state.application, "admin", "admin")
        httpx.post(url + "/v1/banks", json={"name": "b"}, headers={"Authorization": f"Bearer {admin}"})
        httpx.put(url + "/v1/banks/b/members/load", headers={"Authorization": f"Bearer {admin}"})

        def one(i: int) -> tuple[int, str]:
            body = {"type": "match_batch", "params": {"banks": ["b"]},
                    "hashes": [{"name": f"h{i}", "md5": f"{i:032x}"}]}
            response = httpx.post(url + "/v1/jobs", json=body, headers=headers, timeout=120)
            return response.status_code, response.json().get("id")

        with ThreadPoolExecutor(max_workers=50) as pool:
            results = list(pool.map(one, range(200)))
        assert [status for status, _ in results] == [202] * 200
        job_ids = {job_id for _, job_id in results}
        assert len(job_ids) == 200

        def all_done() -> bool:
            jobs = httpx.get(url + "/v1/jobs?limit=1000", headers=headers, timeout=30).json()
            return len(jobs) == 200 and all(j["status"] == "succeeded" for j in jobs)

        wait_until(all_done, 240, "200 jobs to finish", interval=1.0)
    finally:
        server.should_exit = True
        thread.join(30)


def test_match_batch_runs_on_both_nodes_of_a_two_node_cluster(tmp_path, fixtures_dir):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    data_dir = tmp_path / "data"
    storage, key, upload_ids = prepare_data(data_dir, fixtures_dir / "pdq" / "bridge-mods", copies=40)
    service = None
    try:
        cluster.wait_for_nodes()
        service = ServiceProcess(data_dir, cluster.address, tmp_path / "service.log")
        job_id = submit(service.url, key, upload_ids)
        wait_until(lambda: job_of(storage, job_id).status == "succeeded", 180, "the batch")
        assert_every_item_once(storage, job_id)
        nodes = {item.node for item in items_of(storage, job_id)}
        assert len(nodes) == 2, nodes
    finally:
        if service is not None:
            service.stop()
        cluster.shutdown()


def leased_by(storage: Storage, pid: int) -> int:
    """Pending items a dispatcher of process `pid` holds the lease of (lease owners read host:pid:random)."""
    import sqlalchemy as sa

    with storage.engine.connect() as connection:
        return connection.execute(sa.text(
            "SELECT count(*) FROM job_items WHERE status = 'pending' AND lease_owner LIKE :owner"),
            {"owner": f"%:{pid}:%"}).scalar()


def test_sigterm_stops_cleanly_and_sigkill_leaves_no_ray_process(tmp_path, fixtures_dir):
    """With a Ray of its own: SIGTERM finishes or gives back the chunks in flight, stops Ray and prints no
    traceback; SIGKILL leaves no Ray process behind (the reaper, workers/reaper.py)."""
    import psutil

    data_dir = tmp_path / "data"
    storage, key, upload_ids = prepare_data(data_dir, fixtures_dir / "pdq" / "bridge-mods", copies=80)
    log_path = tmp_path / "service.log"
    service = ServiceProcess(data_dir, None, log_path, FIMG_NUM_CPUS="1")
    ray_processes = psutil.Process(service.process.pid).children(recursive=True)
    assert any("raylet" in p.name() for p in ray_processes)
    job_id = submit(service.url, key, upload_ids)
    wait_until(lambda: job_of(storage, job_id).done >= 4, 90, "the first results")
    service.process.send_signal(signal.SIGTERM)
    assert service.process.wait(60) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has shut down
    service.log.close()
    assert leased_by(storage, service.process.pid) == 0, "its chunks were finished or given back"
    _gone, alive = psutil.wait_procs(ray_processes, timeout=20)
    assert not alive, [p.cmdline()[:2] for p in alive]
    log = log_path.read_text(errors="replace")
    assert "Traceback" not in log and "logging.cc" not in log and "Aborted" not in log, log[-3000:]

    service = ServiceProcess(data_dir, None, log_path, FIMG_NUM_CPUS="1")
    ray_processes = psutil.Process(service.process.pid).children(recursive=True)
    service.kill()
    _gone, alive = psutil.wait_procs(ray_processes, timeout=30)
    assert not alive, [p.cmdline()[:2] for p in alive]


HOST_WITH_A_CHILD_OF_ITS_OWN = """
import subprocess, sys
from fimg_service.config import Settings
from fimg_service.usecases import Application

own_child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
app = Application(Settings(database_url=sys.argv[1], data_dir=sys.argv[2], ray_address=None, num_cpus=1,
                        max_upload_bytes=2**20, chunk_size=4))
app.prepare_schema()
app.start().close()
print(own_child.pid, own_child.poll(), flush=True)
own_child.kill()
"""


def test_the_reaper_stops_only_the_processes_ray_started(tmp_path):
    """A host embedding the service keeps the children it had before Ray started (a multiprocessing helper)."""
    result = subprocess.run([sys.executable, "-c", HOST_WITH_A_CHILD_OF_ITS_OWN, f"sqlite:///{tmp_path / 'fimg.db'}",
                             str(tmp_path / "data")], cwd=REPO_ROOT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    _pid, exit_code = result.stdout.split()
    assert exit_code == "None", "the host's own child was stopped with Ray's processes"


@pytest.mark.skipif(not POSTGRES_URL, reason="FIMG_TEST_DATABASE_URL is not set: replicas need PostgreSQL")
def test_three_replicas_on_one_database_share_a_batch_and_outlive_one_killed(tmp_path, fixtures_dir):
    import sqlalchemy as sa
    from ray.cluster_utils import Cluster

    from fimg_service.storage.migrate import drop_all

    engine = sa.create_engine(POSTGRES_URL)
    drop_all(engine)
    engine.dispose()
    data_dir = tmp_path / "data"  # the replicas share the blob store, as replicas on one machine (or NFS) do
    storage, key, upload_ids = prepare_data(data_dir, fixtures_dir / "pdq" / "bridge-mods", copies=60,
                                            database_url=POSTGRES_URL)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 3, "include_dashboard": False})
    replicas = []
    try:
        replicas = [ServiceProcess(data_dir, cluster.address, tmp_path / f"replica-{i}.log", POSTGRES_URL,
                                   wait=False, FIMG_NUM_CPUS="1", FIMG_LEASE_S="3") for i in range(3)]
        for replica in replicas:
            replica.wait_ready()
        job_id = submit(replicas[0].url, key, upload_ids)
        victim = replicas[1]
        wait_until(lambda: leased_by(storage, victim.process.pid) > 0, 120, "the replica to be killed to work on the batch", interval=0.02)
        victim.kill()
        wait_until(lambda: job_of(storage, job_id).status == "succeeded", 240, "the batch", interval=0.5)
        assert_every_item_once(storage, job_id)
    finally:
        for replica in replicas:
            replica.stop()
        cluster.shutdown()


pytestmark = pytest.mark.timeout(600)
