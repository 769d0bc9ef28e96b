"""The database connection and the one unit-of-work helper every repository runs in.

`Database.unit()` is a read-write transaction: a change and its audit row are written in the same unit, so they
commit or roll back together. On SQLite it begins with `BEGIN IMMEDIATE`, which takes the write lock up front:
a deferred transaction that read the audit chain's tail could otherwise fail to upgrade its lock when another
writer got there first. `Database.read()` is a plain read transaction.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from fimg_service.errors import InvalidInput
from fimg_service.storage.audit import AuditRepository
from fimg_service.storage.banks import BankRepository
from fimg_service.storage.galleries import GalleryRepository
from fimg_service.storage.jobs import JobRepository
from fimg_service.storage.keys import KeyRepository
from fimg_service.storage.sessions import SessionRepository
from fimg_service.storage.uploads import UploadRepository

SQLITE_IMMEDIATE = "fimg_sqlite_immediate"


@dataclass
class Unit:
    """The repositories of one transaction."""

    session: Session
    keys: KeyRepository
    uploads: UploadRepository
    banks: BankRepository
    jobs: JobRepository
    galleries: GalleryRepository
    audit: AuditRepository
    sessions: SessionRepository


def _create_private(path: str | None) -> None:
    """The SQLite file, readable by the service's user only (SQLite gives its -wal and -shm files the same mode)."""
    if not path or path == ":memory:" or os.path.exists(path):
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


_EMPTY_JSON = {"{}": dict, "[]": list, b"{}": dict, b"[]": list}


def _json_loads(text: str | bytes | memoryview):
    """json.loads, with the empty object and list (most records' labels and extra hashes) made without parsing:
    reading a bank of hash-list records spent a third of its time parsing them. SQLite hands over text,
    psycopg bytes or a memoryview."""
    empty = _EMPTY_JSON.get(bytes(text) if isinstance(text, memoryview) else text)
    return empty() if empty is not None else json.loads(text)


def _holds_nul(parameters) -> bool:
    """Whether a text parameter of a statement (one row's, or every row's of an executemany) holds NUL."""
    for row in parameters if isinstance(parameters, list) else (parameters or (),):
        values = row.values() if isinstance(row, dict) else row
        if "\x00" in "".join([value for value in values if type(value) is str]):
            return True
    return False


def _refuse_nul_text(_conn, _cursor, statement, parameters, _context, _executemany):
    """PostgreSQL refuses NUL in text (a driver error, a 500 to the caller); any id, name or filter holding one
    names nothing that could be stored, so it is the caller's mistake on either database."""
    if _holds_nul(parameters):
        raise InvalidInput("text may not contain NUL characters", code="invalid_text")
    return statement, parameters


def make_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 60, "check_same_thread": False},
                                  json_deserializer=_json_loads)
        _use_sqlite_transactions(engine)
    else:
        engine = sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20,
                                  json_deserializer=_json_loads)
    event.listen(engine, "before_cursor_execute", _refuse_nul_text, retval=True)
    return engine


def _use_sqlite_transactions(engine: sa.Engine) -> None:
    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # SQLAlchemy's "begin" event below emits BEGIN itself
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(SQLITE_IMMEDIATE) else "BEGIN")


class Database:
    def __init__(self, url: str, audit_key: bytes):
        self.url = url
        self.audit_key = audit_key
        if url.startswith("sqlite"):
            _create_private(sa.make_url(url).database)
        self.engine = make_engine(url)
        self.is_sqlite = url.startswith("sqlite")
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def unit(self) -> Iterator[Unit]:
        with self._sessions() as session:
            session.connection(execution_options={SQLITE_IMMEDIATE: True})
            try:
                yield self._unit(session)
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def read(self) -> Iterator[Unit]:
        with self._sessions() as session, session.begin():
            yield self._unit(session)

    def _unit(self, session: Session) -> Unit:
        return Unit(session, KeyRepository(session), UploadRepository(session), BankRepository(session),
                    JobRepository(session), GalleryRepository(session),
                    AuditRepository(session, serialise=not self.is_sqlite, key=self.audit_key),
                    SessionRepository(session))

    def close(self) -> None:
        self.engine.dispose()
