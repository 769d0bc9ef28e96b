"""Shared test fixtures: the benign fixture images, one Ray for the whole session, and a live service.

The service fixtures run the real app (FastAPI + dispatcher + Ray actors) on a real database: SQLite in a
temporary directory, and PostgreSQL when FIMG_TEST_DATABASE_URL is set (`.ci/run` sets it); where it is unset
the PostgreSQL variants are skipped and say so.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get("FIMG_TEST_DATABASE_URL")


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return Path(os.environ.get("FIMG_FIXTURES", REPO_ROOT.parent / "shared" / "fixtures"))


@pytest.fixture(scope="session")
def ray_session():
    """Ray starts once per test session (~3 s, ~700 MB); every service fixture shares it."""
    import ray

    from workers.pool import start_ray

    start_ray(None, num_cpus=2)
    yield ray
    ray.shutdown()


def database_params() -> list:
    return ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
        not POSTGRES_URL, reason="FIMG_TEST_DATABASE_URL is not set: PostgreSQL variants skipped"))]


def fresh_database(kind: str, directory: Path) -> str:
    """An empty database of `kind`: a SQLite file in `directory`, or the PostgreSQL test database, emptied."""
    if kind == "sqlite":
        return f"sqlite:///{directory / 'fimg.db'}"
    import sqlalchemy as sa

    from fimg_service.storage.migrate import drop_all

    engine = sa.create_engine(POSTGRES_URL)
    drop_all(engine)
    engine.dispose()
    return POSTGRES_URL


@pytest.fixture(params=database_params())
def database_url(request, tmp_path) -> str:
    return fresh_database(request.param, tmp_path)


@dataclass
class Service:
    client: object
    app: object  # the Application (use cases) behind the HTTP app
    keys: dict

    @property
    def storage(self):
        return self.app.storage

    def auth(self, role: str) -> dict:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def upload(self, paths: list[Path], role: str = "analyst") -> list[dict]:
        files = [("files", (p.name, p.read_bytes(), "application/octet-stream")) for p in paths]
        response = self.client.post("/v1/uploads", files=files, headers=self.auth(role))
        assert response.status_code == 201, response.text
        return response.json()["uploads"]

    def wait(self, job_id: str, role: str = "analyst", timeout: float = 180) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.client.get(f"/v1/jobs/{job_id}", headers=self.auth(role)).json()
            if job["status"] not in ("queued", "running"):
                return job
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} did not finish in {timeout} s: {job}")


def make_settings(database_url: str, data_dir: Path, **overrides):
    from fimg_service.config import Settings

    values = dict(data_dir=data_dir, database_url=database_url, ray_address=None, num_cpus=2,
                  max_upload_bytes=50 * 2**20, chunk_size=4)
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def service(ray_session, database_url, tmp_path):
    from fastapi.testclient import TestClient

    from api import create_app

    app = create_app(make_settings(database_url, tmp_path / "data"))
    with TestClient(app) as client:
        application = app.state.application
        keys = {role: create_key(application, f"test-{role}", role)
                for role in ("admin", "analyst", "artist", "service")}
        keys["analyst2"] = create_key(application, "test-analyst-2", "analyst")
        yield Service(client, application, keys)


def create_key(application, name: str, role: str) -> str:
    from fimg_service.usecases import LOCAL_ADMIN

    return application.keys.create(LOCAL_ADMIN, name, role)[1]


@dataclass
class LiveService:
    """The real app behind a real HTTP server on loopback, for a real browser."""

    url: str
    app: object  # the Application
    keys: dict


def _serve(app) -> tuple[object, object, str]:
    import threading

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the live service did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def live_service(ray_session, tmp_path_factory):
    """One live service per module: the browser journeys of a module share it (the admin's audit log shows what
    the artist and the analyst did). On PostgreSQL where the tests have it, the database of a deployment; the
    web layer's storage calls run on both databases in tests/test_web.py."""
    from api import create_app

    data_dir = tmp_path_factory.mktemp("live")
    database = "postgresql" if POSTGRES_URL else "sqlite"
    app = create_app(make_settings(fresh_database(database, data_dir), data_dir / "data"))
    server, thread, base_url = _serve(app)
    application = app.state.application
    keys = {role: create_key(application, f"web-{role}", role) for role in ("admin", "analyst", "artist")}
    try:
        yield LiveService(base_url, application, keys)
    finally:
        server.should_exit = True
        thread.join(timeout=60)
