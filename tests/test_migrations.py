"""Schema migrations on SQLite and PostgreSQL: a database of the release before migrations is recognised and
keeps every row, a fresh one is built by the migrations to exactly the models, and a database fimg cannot account
for is refused rather than guessed at.

On PostgreSQL each test works in a schema of its own (dropped afterwards), so it cannot meet other tests' tables.
"""
from __future__ import annotations

import shutil
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.orm import Session

from conftest import POSTGRES_URL, database_params
from fimg_service.storage import Storage, migrate
from fimg_service.storage.migrate import SchemaOutdated, SchemaUnrecognised
from fimg_service.storage.schema import (ApiKey, Artifact, AuditEntry, Bank, BankRecordRow, Base, Gallery,
                                         GalleryFace, Job, JobItem, Upload)


@pytest.fixture(params=database_params())
def engine(request, tmp_path):
    """The engine the app makes (SQLite pragmas included), on an empty database."""
    if request.param == "sqlite":
        storage = Storage(f"sqlite:///{tmp_path / 'fimg.db'}", tmp_path / "data")
        yield storage.engine
        storage.close()
        return
    schema = f"fimg_migrations_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = sa.make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    storage = Storage(url.render_as_string(hide_password=False), tmp_path / "data")
    try:
        yield storage.engine
    finally:
        storage.close()
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


def table_names(engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def previous_release(engine) -> None:
    """What the release before migrations did: `create_all` of its models (exactly revision 0001_initial, less the
    version table), then the app wrote rows to every table."""
    with engine.begin() as connection:
        command.upgrade(migrate.alembic_config(connection), "0001_initial")
        connection.exec_driver_sql("DROP TABLE alembic_version")
    at = datetime(2024, 5, 17, 9, 30, 12, 345678, tzinfo=timezone.utc)
    steps = [
        [ApiKey(id=1, name="admin – Ünïcode", role="admin", key_hash="a" * 64, created_at=at),
         ApiKey(id=2, name="svc", role="service", key_hash="b" * 64, created_at=at, revoked_at=at + timedelta(1))],
        [Upload(id="u" * 32, owner_id=1, name="photo é 漢字.jpg", sha256="c" * 64, size=2**40 + 7, format="JPEG",
                width=1920, height=1080, created_at=at),
         Upload(id="v" * 32, owner_id=None, name="x.bin", sha256="d" * 64, size=0, created_at=at)],
        [Artifact(id=1, job_id="j" * 32, name="report.json", sha256="3" * 64, size=1234,
                  content_type="application/json"),
         GalleryFace(id=1, gallery_id=1, subject_id="s1", label="left", age_at_photo=7.25, source_sha256="4" * 64,
                     face_index=0, embedding=[i / 7 for i in range(128)], quality=0.1 + 0.2, created_at=at)],
        [AuditEntry(id=1, at=at.isoformat(), actor_id=1, actor_name="admin", role="admin", action="bank.create",
                    object_type="bank", object_id="1", detail='{"name": "bank"}', prev_hash="0" * 64,
                    row_hash="5" * 64),
         AuditEntry(id=2, at=at.isoformat(), actor_id=None, actor_name="local-cli", role="admin",
                    action="job.create", object_type="job", object_id="j" * 32, prev_hash="5" * 64,
                    row_hash="6" * 64)],
    ]
    # The release's banks, galleries, jobs, job_items and bank_records lacked later revisions' columns, so their
    # rows go in by name, not through today's models.
    banks = [dict(id=1, name="bank", description="line one\nline two", threshold=31, revision=3, created_by=1,
                  created_at=at)]
    galleries = [dict(id=1, name="gallery", description=None, threshold=0.6123456789012345,
                      calibration={"far": 1e-4, "points": [[0.5, 0.01], [0.6, 0.001]]}, revision=2, created_by=2,
                      created_at=at)]
    jobs = [dict(id="j" * 32, type="match_batch", owner_id=1, status="succeeded", idempotency_key="k-1",
                 params={"bank_id": 1, "threshold": 0.1, "nested": {"z": [1, None, "ü"], "a": True}},
                 total=2, done=1, failed=1, error=None, created_at=at, started_at=at, finished_at=at)]
    records = [dict(id=1, bank_id=1, record_id="r1", victim_id="v1", pdq="e" * 64, md5="f" * 32, sha1="1" * 40,
                    sha256="2" * 64, labels=["adult", "known"],
                    extra_hashes={"pdq_regions": [{"x": 0, "y": 16, "size": 96, "hash": "ab" * 32}],
                                  "phash": "0f" * 8, "note": "ünï"}),
               dict(id=2, bank_id=1, record_id="r2", victim_id=None, pdq=None, md5=None, sha1=None, sha256=None,
                    labels=[], extra_hashes={})]
    items = [dict(id=1, job_id="j" * 32, idx=0, name="a.jpg", input={"upload_id": "u" * 32}, status="done",
                  result={"status": "match", "quality": 87.5, "matches": [
                      {"bank": "bank", "record_id": "r1", "kind": "pdq_crop", "distance": 9},
                      {"bank": "bank", "record_id": "r2", "kind": "md5", "distance": 0}]},
                  attempts=1, completions=1, node="node-1"),
             dict(id=2, job_id="j" * 32, idx=1, name="b.jpg", input={"upload_id": "v" * 32}, status="error",
                  result=None, attempts=3, completions=0, node=None)]
    with Session(engine) as session:
        for rows in steps:
            session.add_all(rows)
            session.flush()
            if rows is steps[1]:
                session.execute(sa.insert(Bank.__table__), banks)
                session.execute(sa.insert(Gallery.__table__), galleries)
                session.execute(sa.insert(Job.__table__), jobs)
                session.execute(sa.insert(BankRecordRow.__table__), records)
                session.execute(sa.insert(JobItem.__table__), items)
        session.commit()


def snapshot(engine, columns: dict[str, list[str]]) -> dict[str, list[tuple]]:
    """Every row of every table as the driver returns it, and as the database renders it in text."""
    with engine.connect() as connection:
        out = {}
        for table, names in columns.items():
            t = sa.table(table, *(sa.column(name) for name in names))
            query = sa.select(*t.c, *(sa.cast(col, sa.Text).label(f"text_{col.name}") for col in t.c))
            out[table] = [tuple(row) for row in connection.execute(query.order_by(t.c.id))]
        return out


def differences(engine) -> list:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_server_default": True})
        return compare_metadata(context, Base.metadata)


def test_previous_release_database_is_stamped_and_keeps_every_row(engine):
    previous_release(engine)
    inspector = sa.inspect(engine)
    columns = {table: [c["name"] for c in inspector.get_columns(table)] for table in table_names(engine)}
    before = snapshot(engine, columns)
    assert all(before.values()), "every table has rows to keep"
    assert migrate.current_revision(engine) is None

    assert migrate.upgrade(engine) == f"stamped 0001_initial, upgraded 0001_initial -> {migrate.head_revision()}"
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert snapshot(engine, columns) == before
    migrate.check_current(engine)
    with engine.connect() as connection:  # 0002: records of the old release are enabled, with no provenance
        assert connection.execute(sa.text("SELECT enabled, source, disabled_until FROM bank_records")).all() == [
            (True, None, None), (True, None, None)]
        # 0004: a finished item's verdict and nearest match are filled in from its result
        assert connection.execute(sa.text("SELECT verdict, kind, bank, distance FROM job_items ORDER BY idx")).all() \
            == [("match", "md5", "bank", 0), (None, None, None, None)]
        # 0005: a bank or gallery is owned by the key that made it (none: the command line's, admins only)
        assert connection.execute(sa.text("SELECT name, owner_id FROM banks")).all() == [("bank", 1)]
        assert connection.execute(sa.text("SELECT name, owner_id FROM galleries")).all() == [("gallery", 2)]
        for members in ("bank_members", "gallery_members"):
            assert connection.execute(sa.text(f"SELECT count(*) FROM {members}")).scalar() == 0
        assert connection.execute(sa.text("SELECT lease_owner, lease_expires_at FROM job_items")).all() == [
            (None, None), (None, None)]


def test_migrations_build_exactly_the_models(engine):
    assert migrate.upgrade(engine) == "created"
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert table_names(engine) == set(Base.metadata.tables) | {"alembic_version"}
    assert differences(engine) == []


def test_check_current_names_the_upgrade_command(engine):
    with pytest.raises(SchemaOutdated, match="run `fimg db upgrade`"):
        migrate.check_current(engine)
    previous_release(engine)
    with pytest.raises(SchemaOutdated, match="not versioned.*run `fimg db upgrade`") as raised:
        migrate.check_current(engine)
    assert raised.value.code == "schema_outdated"
    migrate.upgrade(engine)
    migrate.check_current(engine)


@pytest.mark.parametrize("start", ["empty", "previous release"])
def test_upgrade_is_idempotent(engine, start):
    if start == "previous release":
        previous_release(engine)
    first = migrate.upgrade(engine)
    assert first != "up to date"
    assert migrate.upgrade(engine) == "up to date"
    assert migrate.current_revision(engine) == migrate.head_revision()


@pytest.mark.parametrize("start", ["empty", "previous release"])
def test_concurrent_upgrades_take_turns(engine, start):
    if start == "previous release":
        previous_release(engine)
    barrier = threading.Barrier(2)

    def run():
        barrier.wait()
        return migrate.upgrade(engine)

    with ThreadPoolExecutor(2) as pool:
        results = sorted(pool.map(lambda _: run(), range(2)))
    assert results[1] == "up to date" and results[0] != "up to date"
    assert migrate.current_revision(engine) == migrate.head_revision()


def test_database_with_only_some_tables_is_refused_and_left_alone(engine):
    Base.metadata.create_all(engine, tables=[ApiKey.__table__, Upload.__table__])
    with pytest.raises(SchemaUnrecognised, match=r"some of fimg's tables \(api_keys, uploads\) but not artifacts,"
                                                 r".* jobs, and no schema revision") as raised:
        migrate.upgrade(engine)
    assert raised.value.detail["missing"] == sorted(migrate._UNVERSIONED_TABLES - {"api_keys", "uploads"})
    assert table_names(engine) == {"api_keys", "uploads"}
    assert migrate.current_revision(engine) is None


def test_revision_this_version_does_not_know_is_refused(engine):
    migrate.upgrade(engine)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    for call in (migrate.check_current, migrate.upgrade):
        with pytest.raises(SchemaUnrecognised, match="at 9999_from_the_future, a revision this version of fimg "
                                                     "does not know"):
            call(engine)


def add_revision(tmp_path, monkeypatch, upgrade_body: str) -> None:
    """Makes the migrations a copy of fimg's with a revision 9999_test after the head."""
    head = migrate.head_revision()
    scripts = tmp_path / "migrations"
    shutil.copytree(migrate._SCRIPTS, scripts)
    (scripts / "versions" / "9999_test.py").write_text(
        "from alembic import op\nimport sqlalchemy as sa\n\n"
        f"revision = '9999_test'\ndown_revision = '{head}'\n\n\n"
        f"def upgrade():\n{upgrade_body}")
    monkeypatch.setattr(migrate, "_SCRIPTS", scripts)


def test_later_revision_rewrites_a_referenced_table_without_losing_rows(engine, tmp_path, monkeypatch):
    """A revision after 0001 runs once the old database is stamped. On SQLite its batch operation copies `banks`
    and drops the old table, which with foreign keys enforced would cascade-delete every bank record."""
    add_revision(tmp_path, monkeypatch,
                 "    with op.batch_alter_table('banks') as batch:\n"
                 "        batch.alter_column('description', existing_type=sa.Text(), type_=sa.String(2000))\n")
    previous_release(engine)
    columns = {"bank_records": [c["name"] for c in sa.inspect(engine).get_columns("bank_records")]}
    before = snapshot(engine, columns)

    assert migrate.upgrade(engine) == "stamped 0001_initial, upgraded 0001_initial -> 9999_test"
    assert migrate.current_revision(engine) == "9999_test"
    description = next(c for c in sa.inspect(engine).get_columns("banks") if c["name"] == "description")
    assert isinstance(description["type"], sa.String) and description["type"].length == 2000
    assert snapshot(engine, columns) == before
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1, "enforcement is back on"


def test_migration_that_breaks_a_foreign_key_is_not_committed(engine, tmp_path, monkeypatch):
    """PostgreSQL refuses the row at once; SQLite, which does not enforce foreign keys while migrating, is checked
    before the commit. Either way the whole run is rolled back, the creation of the tables included."""
    add_revision(tmp_path, monkeypatch,
                 "    op.execute(\"INSERT INTO bank_records (id, bank_id, record_id, labels, extra_hashes) "
                 "VALUES (1, 42, 'r', '[]', '{}')\")\n")
    with pytest.raises((RuntimeError, sa.exc.IntegrityError), match="bank_records"):
        migrate.upgrade(engine)
    assert table_names(engine) == set()


def test_downgrade_to_base_removes_the_schema_and_upgrade_rebuilds_it(engine):
    migrate.upgrade(engine)
    with engine.begin() as connection:
        command.downgrade(migrate.alembic_config(connection), "base")
    assert table_names(engine) == {"alembic_version"}
    assert migrate.upgrade(engine) == "created"
    assert differences(engine) == []


def test_drop_all_drops_every_table(engine):
    migrate.upgrade(engine)
    migrate.drop_all(engine)
    assert table_names(engine) == set()
