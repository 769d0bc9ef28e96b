"""Persistence: repositories per aggregate over one database, and a content-addressed blob store.

    storage = Storage(database_url, data_dir)
    with storage.unit() as unit:        # one read-write transaction
        bank = unit.banks.create(...)
        unit.audit.append(...)          # commits with the change, or not at all
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fimg_service.logs import log_event

from fimg_service.storage.audit import AuditCheckpoint, AuditKey, ChainReport
from fimg_service.storage.blobs import BlobStore
from fimg_service.storage.database import Database, Unit
from fimg_service.storage.jobs import ACTIVE_JOB_STATES, FINISHED_JOB_STATES, ITEM_DONE, ITEM_ERROR
from fimg_service.storage.schema import ITEM_PENDING

AUDIT_KEY_FILE = "audit.key"  # every process that writes to the database needs the same file
AUDIT_CHECKPOINT_FILE = "audit.checkpoint"
jobs_log = logging.getLogger("fimg.jobs")

__all__ = ["ACTIVE_JOB_STATES", "FINISHED_JOB_STATES", "ITEM_DONE", "ITEM_ERROR", "ITEM_PENDING", "BlobStore",
           "Storage", "Unit"]


class Storage:
    def __init__(self, database_url: str, data_dir: Path | str):
        self.data_dir = Path(data_dir)
        self.blobs = BlobStore(self.data_dir / "blobs")
        audit_key = AuditKey(self.data_dir / AUDIT_KEY_FILE).load()
        self.audit_checkpoint = AuditCheckpoint(self.data_dir / AUDIT_CHECKPOINT_FILE, audit_key)
        self.db = Database(database_url, audit_key)

    @property
    def engine(self):
        return self.db.engine

    @contextmanager
    def unit(self) -> Iterator[Unit]:
        """One read-write transaction; once it commits, the audit checkpoint moves to its newest row and the jobs'
        events go to the service log (a rolled-back change logs nothing)."""
        with self.db.unit() as unit:
            yield unit
        if unit.audit.newest is not None:
            self.audit_checkpoint.advance(unit.audit.newest)
        for name, fields in unit.jobs.events:
            log_event(jobs_log, name, logging.WARNING if name == "item_failed" else logging.INFO, **fields)

    def verify_audit(self) -> ChainReport:
        try:
            checkpoint = self.audit_checkpoint.read()
        except ValueError:
            return ChainReport(False, None, 0, "checkpoint")
        with self.read() as unit:
            return unit.audit.verify(checkpoint)

    @contextmanager
    def read(self) -> Iterator[Unit]:
        with self.db.read() as unit:
            yield unit

    def close(self) -> None:
        self.db.close()
