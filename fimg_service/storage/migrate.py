"""Brings the database schema to the revision this code needs (`fimg db upgrade`), with Alembic.

The migrations live in `migrations/` next to this file and run on a connection from the engine the caller made,
so they get its settings (SQLite pragmas included). The release before migrations made its tables with
`create_all` and recorded no revision: `upgrade` recognises such a database by its tables, stamps it at
0001_initial (the same schema, written out) and goes on from there.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from fimg_service.errors import Unavailable
from fimg_service.storage.database import SQLITE_IMMEDIATE

_SCRIPTS = Path(__file__).with_name("migrations")
# The tables `create_all` made before there were migrations; they are exactly revision 0001_initial.
_UNVERSIONED_REVISION = "0001_initial"
_UNVERSIONED_TABLES = frozenset({"api_keys", "uploads", "banks", "bank_records", "jobs", "job_items", "artifacts",
                                 "galleries", "gallery_faces", "audit_log"})
_PG_LOCK = int.from_bytes(b"fimgmigr")  # the key of the advisory lock migration runs take on PostgreSQL


class SchemaOutdated(Unavailable, RuntimeError):
    """The database is behind the schema this code needs, or has none yet: `fimg db upgrade` brings it to head."""

    code = "schema_outdated"


class SchemaUnrecognised(Unavailable, RuntimeError):
    """The database is in a state no release of fimg leaves it in, so `upgrade` will not guess what to do."""

    code = "schema_unrecognised"


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """Alembic's configuration for fimg's migrations, to run on `connection` (no alembic.ini)."""
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS).replace("%", "%%"))
    config.set_main_option("file_template", "%%(rev)s")  # a revision's file is named by its id: 0001_initial.py
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: sa.Engine) -> str | None:
    """The revision recorded in the database; None when it records none (empty, or made before migrations)."""
    with engine.connect() as connection:
        return _revision(connection)


def check_current(engine: sa.Engine) -> None:
    """Raises SchemaOutdated unless the database is at the head revision (SchemaUnrecognised at one unknown here)."""
    current, head = current_revision(engine), head_revision()
    if current == head:
        return
    _check_known(current)
    where = f"at {current}" if current else "not versioned (empty, or made before migrations)"
    raise SchemaOutdated(f"the database schema is {where}, this version needs {head}: run `fimg db upgrade`")


def upgrade(engine: sa.Engine) -> str:
    """Brings the database to head, in one transaction where the database allows; says what it did."""
    head = head_revision()
    with _migrating(engine) as connection:
        current = _revision(connection)
        if current == head:
            return "up to date"
        _check_known(current)
        config = alembic_config(connection)
        done = []
        if current is None:
            present = _UNVERSIONED_TABLES.intersection(sa.inspect(connection).get_table_names())
            if not present:
                command.upgrade(config, "head")
                return "created"
            missing = _UNVERSIONED_TABLES - present
            if missing:
                raise SchemaUnrecognised(
                    f"the database has some of fimg's tables ({', '.join(sorted(present))}) but not "
                    f"{', '.join(sorted(missing))}, and no schema revision: fimg never leaves a database like that, "
                    "so it is left as it is; restore it from a backup or use an empty database",
                    present=sorted(present), missing=sorted(missing))
            command.stamp(config, _UNVERSIONED_REVISION)
            current = _UNVERSIONED_REVISION
            done.append(f"stamped {current}")
        if current != head:
            command.upgrade(config, "head")
            done.append(f"upgraded {current} -> {head}")
        return ", ".join(done)


def drop_all(engine: sa.Engine) -> None:
    """Drops every table of the database's default schema, alembic_version included (for tests)."""
    with engine.begin() as connection:
        tables = sa.MetaData()
        tables.reflect(connection)
        tables.drop_all(connection)


def _revision(connection: sa.Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _check_known(revision: str | None) -> None:
    scripts = ScriptDirectory.from_config(alembic_config())
    if revision is not None and revision not in {script.revision for script in scripts.walk_revisions()}:
        raise SchemaUnrecognised(
            f"the database schema is at {revision}, a revision this version of fimg does not know (a newer "
            "release migrated it?): run that release, or restore the database from a backup")


@contextmanager
def _migrating(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection in a transaction for one migration run, which holds off any other run until it commits (two
    processes starting together take turns, and the second finds the work done).

    On SQLite, foreign keys are not enforced while it runs: a batch operation copies a table and drops the old
    one, and with enforcement on that drop would cascade-delete the rows pointing at the table. The pragma has to
    be set outside a transaction, so it goes straight to the driver's connection; before the commit, the rows are
    checked instead.
    """
    with engine.connect() as connection:
        if connection.dialect.name != "sqlite":
            with connection.begin():
                connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_LOCK)))
                yield connection
            return
        driver = connection.connection.driver_connection
        enforced = driver.execute("PRAGMA foreign_keys").fetchone()[0]
        driver.execute("PRAGMA foreign_keys=OFF")
        try:
            with connection.execution_options(**{SQLITE_IMMEDIATE: True}).begin():  # takes the write lock up front
                yield connection
                dangling = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if dangling:
                    table, rowid, parent, _ = dangling[0]
                    raise RuntimeError(f"the migration left {len(dangling)} rows whose foreign keys point nowhere "
                                       f"(the first: {table} row {rowid} -> {parent}); not committing it")
        finally:
            driver.execute(f"PRAGMA foreign_keys={int(enforced)}")
