"""The application layer: the only code that calls storage and the worker pool.

Every edge (HTTP routes, CLI, web pages) translates its input into one call here and the result into its output;
roles, ownership, validation and audit rows (in the same transaction as the change) are decided here once.

    app = Application(settings)
    app.start()                                     # schema check, Ray and the dispatcher
    bank = app.banks.create(who, "case-17")
"""
from __future__ import annotations

from functools import cached_property

from fimg_service.config import Settings
from fimg_service.storage import Storage, migrate
from fimg_service.usecases.banks import Banks
from fimg_service.usecases.base import LOCAL_ADMIN, ROLES, Principal
from fimg_service.usecases.galleries import Galleries
from fimg_service.usecases.hashing import Hashing
from fimg_service.usecases.jobs import Jobs, job_request
from fimg_service.usecases.keys import Audit, Keys
from fimg_service.usecases.quotas import Quotas
from fimg_service.usecases.sessions import WebSessions
from fimg_service.usecases.uploads import Uploads

__all__ = ["LOCAL_ADMIN", "ROLES", "Application", "Principal", "job_request"]


class Application:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.storage = Storage(settings.database_url, settings.data_dir)
        self.quotas = Quotas(settings.rate_limit, settings.max_queued_items, settings.max_stored_bytes)
        self.keys = Keys(self.storage, wake=self._wake_dispatcher)
        self.audit = Audit(self.storage)
        self.sessions = WebSessions(self.storage, self.keys, settings.session_idle_seconds)
        self.uploads = Uploads(self.storage, settings.max_upload_bytes, self.quotas, settings.max_request_pixels)
        self.banks = Banks(self.storage, changed=self._bank_changed)
        self.jobs = Jobs(self.storage, self.uploads, self.quotas, wake=self._wake_dispatcher)
        self.galleries = Galleries(self.storage, self.uploads,
                                   enrolment_faces=lambda data: self.pool.enrolment_faces(data))
        self.hashing = Hashing(self.storage, lambda: self.pool, settings.url_hash_hosts, settings.max_upload_bytes)

    @cached_property
    def pool(self):
        """The worker pool, made on first use: commands that only touch the database never import Ray."""
        from workers.service import WorkerPool

        settings = self.settings
        return WorkerPool(self.storage, settings.ray_address, settings.num_cpus, settings.chunk_size,
                          lease_s=settings.lease_s, chunk_timeout_s=settings.chunk_timeout_s,
                          lookup_cache_records=settings.lookup_cache_records)

    def _bank_changed(self, name: str, wait: bool) -> None:
        """A running pool builds the bank's new revision (commands without a pool have none to warm)."""
        if "pool" in self.__dict__:
            self.pool.bank_changed(name, wait)

    def _wake_dispatcher(self) -> None:
        """A dispatcher in this process looks at the jobs at once; without one (the CLI) another process's
        dispatcher sees the change at its next poll."""
        if "pool" in self.__dict__:
            self.pool.wake()

    def upgrade_schema(self) -> str:
        """Bring the database to the current schema (Alembic migrations); says what it did."""
        return migrate.upgrade(self.storage.engine)

    def prepare_schema(self) -> str:
        """Bring the database to the current schema, or (auto-upgrade off) refuse an older one, naming the
        command that upgrades it."""
        if self.settings.auto_upgrade:
            return self.upgrade_schema()
        migrate.check_current(self.storage.engine)
        return "up to date"

    def start(self, only_jobs=None) -> "Application":
        """Check the schema, start (or join) Ray and the dispatcher (for `only_jobs`, if given)."""
        self.prepare_schema()
        self.pool.start(only_jobs=only_jobs)
        return self

    @property
    def workers(self) -> int:
        return self.pool.workers if "pool" in self.__dict__ else 0

    def close(self) -> None:
        if "pool" in self.__dict__:
            self.pool.stop()
        self.storage.close()
