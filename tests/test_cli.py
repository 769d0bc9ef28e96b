"""The `fimg` command line, run as a user runs it: a subprocess on a data directory."""
from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import REPO_ROOT


@pytest.fixture
def fimg(tmp_path, ray_session):
    env = {**os.environ, "FIMG_DATA_DIR": str(tmp_path / "data"),
           "RAY_ADDRESS": ray_session.get_runtime_context().gcs_address}
    env.pop("FIMG_DATABASE_URL", None)

    def run(*args: str, expect: int | None = 0) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "fimg_service.cli", *map(str, args)], cwd=REPO_ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
        if expect is not None:
            assert done.returncode == expect, (args, done.returncode, done.stdout[-2000:], done.stderr[-2000:])
        return done

    run.data_dir = tmp_path / "data"
    return run


def test_hash_prints_one_json_line_per_file_and_fails_on_bad_files(fimg, fixtures_dir, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_text("<html>not an image</html>")
    original = fixtures_dir / "pdq" / "bridge-mods" / "aaa-orig.jpg"
    done = fimg("hash", "--json", "--dihedral", original, bad, tmp_path / "missing.jpg", expect=1)
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert rows[0]["pdq"] == "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
    assert rows[0]["quality"] == 100 and (rows[0]["width"], rows[0]["height"]) == (1600, 1004)
    assert len(rows[0]["dihedral"]) == 8 and rows[0]["dihedral"][0] == rows[0]["pdq"]
    assert {"md5", "sha1", "sha256"} <= set(rows[0])
    assert rows[1]["path"] == str(bad) and rows[1]["error"]["code"] == "not_an_image"
    assert rows[2]["error"]["code"] == "unreadable" and rows[2]["error"]["message"].startswith("cannot read")
    assert "2 of 3 files failed" in done.stderr


def test_bank_match_jobs_and_audit_from_the_command_line(fimg, fixtures_dir, tmp_path):
    bridge = fixtures_dir / "pdq" / "bridge-mods"
    fimg("bank", "create", "victims")
    added = fimg("bank", "add", "victims", bridge / "aaa-orig.jpg", "--victim-id", "V-9")
    assert json.loads(added.stdout) == {"imported": 1, "rejected": 0}
    exported = fimg("bank", "export", "victims").stdout
    [record] = list(csv.DictReader(exported.splitlines()))
    assert record["record_id"] == "aaa-orig.jpg" and record["victim_id"] == "V-9" and len(record["pdq"]) == 64

    bank_file = tmp_path / "more.csv"
    bank_file.write_text(f"record_id,md5\nr1,{'0' * 32}\nr2,nothex\n")
    imported = fimg("bank", "import", "victims", bank_file, expect=1)
    assert json.loads(imported.stdout) == {"imported": 1, "rejected": 1}
    assert "more.csv:3:" in imported.stderr

    bad = tmp_path / "broken.jpg"
    bad.write_bytes((bridge / "aaa-orig.jpg").read_bytes()[:500])
    report = tmp_path / "report.jsonl"
    done = fimg("match", bridge / "blur-a-lot.jpg", fixtures_dir / "pdq" / "reg-test" / "pen-and-coaster.png",
                bad, "--bank", "victims", "--json", "--out", report, expect=1)
    rows = {Path(r["path"]).name: r for r in map(json.loads, report.read_text().splitlines())}
    assert rows["blur-a-lot.jpg"]["status"] == "match"
    assert rows["blur-a-lot.jpg"]["matches"][0]["record_id"] == "aaa-orig.jpg"
    assert rows["pen-and-coaster.png"]["status"] == "no_match"
    assert rows["broken.jpg"]["status"] == "error" and rows["broken.jpg"]["error"]["code"] == "corrupt"
    assert rows["broken.jpg"]["sha256"] == hashlib.sha256(bad.read_bytes()).hexdigest()
    assert "3/3 items, 1 errors" in done.stderr

    jobs = [json.loads(line) for line in fimg("jobs", "list").stdout.splitlines()]
    assert jobs[0]["type"] == "match_batch" and jobs[0]["status"] == "succeeded"
    shown = json.loads(fimg("jobs", "show", jobs[0]["id"]).stdout)
    assert shown["progress"] == {"done": 3, "total": 3, "failed": 1}

    key = fimg("keys", "create", "--role", "service", "--name", "svc").stdout.strip()
    assert key.startswith("fimg_")
    assert key not in fimg("keys", "list").stdout
    assert "intact" in fimg("audit", "verify").stdout
    engine = sa.create_engine(f"sqlite:///{fimg.data_dir / 'fimg.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_log SET action = 'read' WHERE action = 'export'"))
    assert "TAMPERED" in fimg("audit", "verify", expect=1).stdout


def test_faces_cli_reports_faces_and_calibrates(fimg, fixtures_dir, tmp_path):
    faces = fixtures_dir / "faces"
    done = fimg("faces", "--json", "--embeddings", faces / "group-two-people.jpg",
                fixtures_dir / "pdq" / "bridge-mods" / "aaa-orig.jpg")
    group, landscape = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(group["faces"]) == 2 and landscape["faces"] == []
    face = group["faces"][0]
    assert len(face["box"]) == 4 and len(face["landmarks"]) == 478 and len(face["embedding"]) == 128
    assert set(face["quality"]) >= {"score", "passed", "reasons"}

    subset = tmp_path / "ids.csv"
    rows = [r for r in csv.DictReader((faces / "identities.csv").open())
            if r["identity"] in ("obama", "biden", "leslie") and r["faces"] == "1"]
    with subset.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file", "identity", "faces"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows({**r, "file": str(faces / r["file"])} for r in rows)
    report = json.loads(fimg("faces", "calibrate", subset).stdout)
    assert report["genuine"]["count"] > 0 and report["impostor"]["count"] > 0
    assert 0 <= report["eer"] <= 0.5


def test_age_cli_writes_labelled_outputs(fimg, fixtures_dir, tmp_path):
    out = tmp_path / "out"
    fimg("age", fixtures_dir / "faces" / "biden-2.jpg", "--age", "6", "--sex", "m", "--to", "10", "--out", out)
    assert {"age-10.png", "sheet.png", "provenance.json"} <= {p.name for p in out.iterdir()}
    bad = fimg("age", fixtures_dir / "pdq" / "bridge-mods" / "aaa-orig.jpg", "--age", "6", "--sex", "m",
               "--to", "10", "--out", out, expect=2)
    assert "face" in bad.stderr.lower()


def test_bank_add_stores_robust_variants_that_match_a_letterboxed_copy(fimg, fixtures_dir, tmp_path):
    import numpy as np
    from PIL import Image

    original = fixtures_dir / "pdq" / "bridge-mods" / "aaa-orig.jpg"
    fimg("bank", "create", "robust")
    fimg("bank", "add", "robust", original)
    picture = np.asarray(Image.open(original).convert("RGB"))
    bars = np.zeros((picture.shape[0] // 4, picture.shape[1], 3), dtype=np.uint8)
    boxed = tmp_path / "letterboxed.png"
    Image.fromarray(np.concatenate([bars, picture, bars])).save(boxed)
    mirrored = tmp_path / "mirrored-crop.png"
    Image.fromarray(picture[:, ::-1][50:-50, 80:-80]).save(mirrored)
    report = tmp_path / "r.jsonl"
    fimg("match", boxed, mirrored, "--bank", "robust", "--json", "--out", report)
    rows = {Path(r["path"]).name: r for r in map(json.loads, report.read_text().splitlines())}
    assert rows["letterboxed.png"]["status"] == "match"
    assert rows["letterboxed.png"]["matches"][0]["kind"].startswith("pdq_trimmed")
    assert rows["mirrored-crop.png"]["status"] == "match"
    assert rows["mirrored-crop.png"]["matches"][0]["kind"] != "pdq"


def test_the_installed_fimg_script_lists_every_command():
    script = Path(sys.executable).parent / "fimg"
    done = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    listed = re.findall(r"^    ([a-z]+)\s", done.stdout, flags=re.MULTILINE)
    assert sorted(listed) == ["age", "audit", "bank", "db", "faces", "hash", "jobs", "keys", "match", "serve"]


def test_an_admin_cancels_any_job_from_the_command_line(fimg):
    from conftest import create_key, make_settings
    from fimg_service.usecases import LOCAL_ADMIN, Application, job_request

    app = Application(make_settings(f"sqlite:///{fimg.data_dir / 'fimg.db'}", fimg.data_dir))
    app.prepare_schema()
    analyst = app.keys.authenticate(create_key(app, "someone", "analyst"))
    app.banks.create(LOCAL_ADMIN, "b")
    job = app.jobs.submit(analyst, "match_batch", job_request([], [{"name": "h", "md5": "0" * 32}]),
                          {"banks": ["b"]})
    app.close()
    done = fimg("jobs", "cancel", job.id)
    assert f"job {job.id}: cancelled" in done.stderr
    again = fimg("jobs", "cancel", job.id, expect=1)
    assert again.stderr.startswith("fimg: ") and "already cancelled" in again.stderr
