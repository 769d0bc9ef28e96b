"""Persistence: repositories per aggregate over one database, and a content-addressed blob store.

    storage = Storage(database_url, data_dir)
    with storage.unit() as unit:        # one read-write transaction
        bank = unit.banks.create(...)
        unit.audit.append(...)          # commits with the change, or not at all
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fimg_service.storage.blobs import BlobStore
from fimg_service.storage.database import Database, Unit
from fimg_service.storage.jobs import ACTIVE_JOB_STATES, FINISHED_JOB_STATES, ITEM_DONE, ITEM_ERROR
from fimg_service.storage.schema import ITEM_PENDING

__all__ = ["ACTIVE_JOB_STATES", "FINISHED_JOB_STATES", "ITEM_DONE", "ITEM_ERROR", "ITEM_PENDING", "BlobStore",
           "Storage", "Unit"]


class Storage:
    def __init__(self, database_url: str, data_dir: Path | str):
        self.data_dir = Path(data_dir)
        self.db = Database(database_url)
        self.blobs = BlobStore(self.data_dir / "blobs")

    @property
    def engine(self):
        return self.db.engine

    @contextmanager
    def unit(self) -> Iterator[Unit]:
        with self.db.unit() as unit:
            yield unit

    @contextmanager
    def read(self) -> Iterator[Unit]:
        with self.db.read() as unit:
            yield unit

    def close(self) -> None:
        self.db.close()
