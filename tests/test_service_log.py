"""The service log: one structured line per job state change and per failed item, with ids and codes and never
image bytes, hashes, file names or keys; and a start of `fimg serve` that says nothing but that it started."""
from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from conftest import REPO_ROOT
from fimg_service.logs import format_event

FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def events(lines: list[str]) -> list[dict]:
    """The fields of every `event=...` line (quoted values unquoted)."""
    found = []
    for line in lines:
        if "event=" not in line:
            continue
        fields = dict(FIELD.findall(line[line.index("event="):]))
        found.append({key: json.loads(value) if value.startswith('"') else value for key, value in fields.items()})
    return found


def test_values_that_are_not_plain_words_are_quoted():
    assert format_event("x", job="ab12", code="not_an_image", message='say "hi" = ok', none=None) == (
        'event=x job=ab12 code=not_an_image message="say \\"hi\\" = ok"')


def test_job_states_and_failed_items_are_logged_with_ids_and_codes_only(service, fixtures_dir, caplog):
    caplog.set_level(logging.INFO, logger="fimg.jobs")
    analyst = service.auth("analyst")
    record_md5 = "7" * 32
    assert service.client.post("/v1/banks", json={"name": "b"}, headers=analyst).status_code == 201
    service.client.post("/v1/banks/b/records", content=f"record_id,md5\nsecret-record,{record_md5}\n",
                        headers={**analyst, "Content-Type": "text/csv"})
    photos = [fixtures_dir / "pdq" / "bridge-mods" / name for name in ("aaa-orig.jpg", "square-128x128.jpg")]
    uploads = service.upload(photos)
    service.storage.blobs.path(uploads[1]["sha256"]).unlink()  # the second item's input is lost
    job_id = service.client.post("/v1/jobs", headers=analyst, json={
        "type": "match_batch", "inputs": [u["id"] for u in uploads], "params": {"banks": ["b"]}}).json()["id"]
    job = service.wait(job_id)
    assert (job["status"], job["progress"]["failed"]) == ("succeeded", 1)

    logged = events([r.getMessage() for r in caplog.records if r.name == "fimg.jobs"])
    states = [e for e in logged if e["event"] == "job_state" and e["job"] == job_id]
    assert [e["status"] for e in states] == ["queued", "running", "succeeded"]
    assert all(e["type"] == "match_batch" and e["total"] == "2" for e in states)
    assert (states[-1]["done"], states[-1]["failed"]) == ("2", "1")
    [failed] = [e for e in logged if e["event"] == "item_failed"]
    assert failed == {"event": "item_failed", "job": job_id, "type": "match_batch", "item": "1",
                      "code": "input_unavailable"}
    assert [r.levelname for r in caplog.records if "item_failed" in r.getMessage()] == ["WARNING"]

    text = "\n".join(r.getMessage() for r in caplog.records)
    secrets = [u["sha256"] for u in uploads] + [p.name for p in photos] + [record_md5, "secret-record"]
    secrets += list(service.keys.values())
    assert [s for s in secrets if s in text] == []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_fimg_serve_starts_quietly_and_logs_a_job(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("RAY_", "FIMG_"))}
    env.update(FIMG_DATA_DIR=str(tmp_path / "data"), FIMG_NUM_CPUS="1")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "fimg_service.cli", "serve", "--port", str(port)],
                              cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/hma/status", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "the service did not start"
            time.sleep(0.5)
        key = (tmp_path / "data" / "initial-admin-key").read_text().strip()
        headers = {"Authorization": f"Bearer {key}"}
        assert httpx.post(url + "/v1/banks", json={"name": "b"}, headers=headers).status_code == 201
        job_id = httpx.post(url + "/v1/jobs", headers=headers, json={
            "type": "match_batch", "hashes": [{"name": "q.jpg", "md5": "5" * 32}],
            "params": {"banks": ["b"]}}).json()["id"]
        while httpx.get(f"{url}/v1/jobs/{job_id}", headers=headers).json()["status"] in ("queued", "running"):
            time.sleep(0.2)
    finally:
        server.send_signal(signal.SIGINT)
        output, _ = server.communicate(timeout=60)
    lines = output.splitlines()
    assert [e["status"] for e in events(lines) if e.get("job") == job_id] == ["queued", "running", "succeeded"]
    noise = [line for line in lines if re.search(r"Warning|metrics exporter|Traceback|ERROR|error", line)]
    assert noise == [], "\n".join(noise)
    assert key not in output and "5" * 32 not in output and "q.jpg" not in output
