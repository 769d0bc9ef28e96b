"""Jobs and their items: a persisted state machine (`queued -> running -> succeeded | failed | cancelled`).

Every item is `pending` until its result is written; a result is written at most once per item, and not at all
once the job left the active states, so a retried chunk never counts an item twice.

Several dispatchers (service replicas) share one database through leases: a dispatcher claims pending items for
a while (`claim_items`, `FOR UPDATE SKIP LOCKED` on PostgreSQL, so two claims never take the same row), renews
its leases while it works (`renew_leases`), and only the lease holder writes an item's result. An expired lease
(its holder died) is claimable again. Lease times are the dispatchers' clocks: replicas' clocks must agree to well
within the lease time (NTP).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fimg_service.errors import Conflict

from fimg_service.storage.records import ArtifactRecord, ItemRecord, JobRecord
from fimg_service.storage.schema import ITEM_PENDING, Artifact, Job, JobItem, as_utc, new_id, utcnow

ACTIVE_JOB_STATES = ("queued", "running")
FINISHED_JOB_STATES = ("succeeded", "failed", "cancelled")
ITEM_DONE, ITEM_ERROR = "done", "error"
INSERT_BATCH = 5000


REPORT_SORTS = {"index": (JobItem.idx,), "distance": (JobItem.distance, JobItem.idx),
                "name": (JobItem.name, JobItem.idx), "status": (JobItem.verdict, JobItem.idx)}


SUMMARY_COLUMNS = ("verdict", "kind", "bank", "distance")


def item_summary(result: dict | None) -> dict[str, Any]:
    """The verdict and best match of an item result (the nearest match; ties to the first bank and record),
    as the columns a report page filters and sorts on."""
    result = result or {}
    matches = [m for m in result.get("matches") or () if isinstance(m, dict) and m.get("distance") is not None]
    best = min(matches, key=lambda m: (m["distance"], str(m.get("bank")), str(m.get("record_id"))), default={})
    return {"verdict": str(result.get("status") or "")[:20] or None, "kind": best.get("kind"),
            "bank": best.get("bank"), "distance": best.get("distance")}


def _job(row: Job) -> JobRecord:
    return JobRecord(row.id, row.type, row.owner_id, row.status, row.params, row.total, row.done, row.failed,
                     row.error, row.idempotency_key, as_utc(row.created_at), as_utc(row.started_at),
                     as_utc(row.finished_at), row.request_sha256)


def _item(row: JobItem) -> ItemRecord:
    return ItemRecord(row.idx, row.name, row.input, row.status, row.result, row.attempts, row.completions, row.node)


class JobRepository:
    def __init__(self, session: Session):
        self.session = session
        # (event, fields) for the service log, written once the unit commits (`Storage.unit`)
        self.events: list[tuple[str, dict]] = []

    def create(self, owner_id: int | None, job_type: str, params: dict, items: Sequence[dict],
               idempotency_key: str | None = None, request_sha256: str | None = None) -> JobRecord:
        """A queued job and its pending items (each {"name", "input"}); an idempotency key this owner already
        used is a Conflict."""
        row = Job(id=new_id(), type=job_type, owner_id=owner_id, params=params, total=len(items), done=0, failed=0,
                  idempotency_key=idempotency_key, request_sha256=request_sha256, status="queued",
                  created_at=utcnow())
        try:
            with self.session.begin_nested():
                self.session.add(row)
        except IntegrityError:
            raise Conflict("this idempotency key was used for another job", code="idempotency_key_used") from None
        rows = [{"job_id": row.id, "idx": i, "name": item["name"], "input": item["input"], "status": ITEM_PENDING,
                 "attempts": 0, "completions": 0} for i, item in enumerate(items)]
        for start in range(0, len(rows), INSERT_BATCH):
            self.session.execute(sa.insert(JobItem), rows[start:start + INSERT_BATCH])
        self.events.append(("job_state", {"job": row.id, "type": job_type, "status": "queued", "total": len(items)}))
        return _job(row)

    def by_idempotency_key(self, owner_id: int | None, key: str) -> JobRecord | None:
        row = self.session.scalar(sa.select(Job).where(Job.owner_id == owner_id, Job.idempotency_key == key))
        return None if row is None else _job(row)

    def get(self, job_id: str) -> JobRecord | None:
        row = self.session.get(Job, job_id)
        return None if row is None else _job(row)

    def list(self, owner_id: int | None = None, status: str | None = None, limit: int = 100,
             offset: int = 0, all_owners: bool = False) -> list[JobRecord]:
        query = sa.select(Job).order_by(Job.created_at.desc(), Job.id).offset(offset).limit(limit)
        if not all_owners:
            query = query.where(Job.owner_id == owner_id)
        if status is not None:
            query = query.where(Job.status == status)
        return [_job(row) for row in self.session.scalars(query)]

    def active(self) -> list[JobRecord]:
        return [_job(row) for row in self.session.scalars(
            sa.select(Job).where(Job.status.in_(ACTIVE_JOB_STATES)).order_by(Job.created_at, Job.id))]

    def open_items(self, owner_id: int) -> int:
        """Items of this owner's queued and running jobs that have no result yet."""
        return self.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(Job.total - Job.done), 0))
                                   .where(Job.owner_id == owner_id, Job.status.in_(ACTIVE_JOB_STATES)))

    def cancel_active_of(self, owner_id: int, error: str) -> list[str]:
        """Cancel every queued or running job of this owner; returns their ids."""
        ids = list(self.session.scalars(sa.select(Job.id).where(Job.owner_id == owner_id,
                                                                 Job.status.in_(ACTIVE_JOB_STATES))))
        for job_id in ids:
            self.set_status(job_id, "cancelled", error=error)
        return ids

    def set_status(self, job_id: str, status: str, error: str | None = None,
                   only_from: Sequence[str] = ACTIVE_JOB_STATES) -> bool:
        """Move a job to `status` if it is still in one of `only_from`; return whether it moved."""
        values: dict[str, Any] = {"status": status}
        if status == "running":
            values["started_at"] = utcnow()
        if status in FINISHED_JOB_STATES:
            values["finished_at"] = utcnow()
        if error is not None:
            values["error"] = error
        moved = bool(self.session.execute(
            sa.update(Job).where(Job.id == job_id, Job.status.in_(only_from)).values(**values)).rowcount)
        if moved:
            job_type, total, done, failed = self.session.execute(
                sa.select(Job.type, Job.total, Job.done, Job.failed).where(Job.id == job_id)).one()
            self.events.append(("job_state", {"job": job_id, "type": job_type, "status": status, "total": total,
                                              "done": done, "failed": failed}))
        return moved

    def claim_items(self, job_id: str, owner: str, limit: int, lease_s: float,
                    exclude: Iterable[int] = ()) -> list[ItemRecord]:
        """Lease up to `limit` pending items that no one holds (or whose lease expired) to `owner`, in order."""
        now = utcnow()
        free = (sa.select(JobItem.id)
                .where(JobItem.job_id == job_id, JobItem.status == ITEM_PENDING,
                       sa.or_(JobItem.lease_owner.is_(None), JobItem.lease_expires_at < now))
                .order_by(JobItem.idx).limit(limit).with_for_update(skip_locked=True))
        exclude = set(exclude)
        if exclude:
            free = free.where(JobItem.idx.not_in(exclude))
        table = JobItem.__table__
        claimed = self.session.execute(
            sa.update(table).where(table.c.id.in_(free.scalar_subquery()))
            .values(lease_owner=owner, lease_expires_at=now + timedelta(seconds=lease_s))
            .returning(*table.c)).all()
        return sorted((_item(row) for row in claimed), key=lambda item: item.idx)

    def renew_leases(self, owner: str, lease_s: float, items: dict[str, Iterable[int]]) -> int:
        """Extend `owner`'s leases of the items it is working on ({job id: indices}); returns how many. A lease
        of an item it lost track of is not renewed, so it expires. Rows another transaction has locked (their
        result being written) are skipped, not waited for, so a renewal never deadlocks."""
        renewed = 0
        for job_id, indices in items.items():
            held = (sa.select(JobItem.id)
                    .where(JobItem.job_id == job_id, JobItem.idx.in_(list(indices)), JobItem.lease_owner == owner,
                           JobItem.status == ITEM_PENDING)
                    .with_for_update(skip_locked=True))
            renewed += self.session.execute(
                sa.update(JobItem).where(JobItem.id.in_(held.scalar_subquery()))
                .values(lease_expires_at=utcnow() + timedelta(seconds=lease_s))).rowcount
        return renewed

    def release_leases(self, owner: str, job_id: str | None = None, indices: Sequence[int] | None = None) -> int:
        """Give up `owner`'s leases (of one job, of some of its items) so another dispatcher may take them now."""
        query = sa.update(JobItem).where(JobItem.lease_owner == owner)
        if job_id is not None:
            query = query.where(JobItem.job_id == job_id)
        if indices is not None:
            query = query.where(JobItem.idx.in_(indices))
        return self.session.execute(query.values(lease_owner=None, lease_expires_at=None)).rowcount

    def count_pending(self, job_id: str) -> int:
        return self.session.scalar(sa.select(sa.func.count()).select_from(JobItem).where(
            JobItem.job_id == job_id, JobItem.status == ITEM_PENDING))

    def record_results(self, job_id: str, results: Sequence[dict], owner: str, node: str | None = None) -> int:
        """Write finished items (each {"idx", "status", "result"}) that `owner` holds the lease of; returns how
        many were written. A result of an item whose lease went to another dispatcher is not written.

        A chunk costs two statements, not one per item: the held items are selected and locked (on SQLite the
        unit's write transaction holds the whole database), then all their results go in one executemany."""
        job = self.session.get(Job, job_id, with_for_update=True)
        if job is None or job.status not in ACTIVE_JOB_STATES:
            return 0
        first: dict[int, dict] = {}
        for res in results:  # an item listed twice is written once, with its first result
            first.setdefault(res["idx"], res)
        held = self.session.scalars(
            sa.select(JobItem.idx)
            .where(JobItem.job_id == job_id, JobItem.idx.in_(list(first)), JobItem.status == ITEM_PENDING,
                   JobItem.lease_owner == owner)
            .order_by(JobItem.idx).with_for_update()).all()
        written = [first[idx] for idx in held]
        if not written:
            return 0
        table = JobItem.__table__
        self.session.execute(
            sa.update(table).where(table.c.job_id == job_id, table.c.idx == sa.bindparam("item_idx"))
            .values(status=sa.bindparam("item_status"), result=sa.bindparam("item_result"), node=node,
                    lease_owner=None, lease_expires_at=None, completions=table.c.completions + 1,
                    **{column: sa.bindparam(f"item_{column}") for column in SUMMARY_COLUMNS}),
            [{"item_idx": res["idx"], "item_status": res["status"], "item_result": res["result"],
              **{f"item_{column}": value for column, value in item_summary(res["result"]).items()}}
             for res in written])
        failed = [res for res in written if res["status"] == ITEM_ERROR]
        for res in failed:
            error = (res["result"] or {}).get("error") or {}
            self.events.append(("item_failed", {"job": job_id, "type": job.type, "item": res["idx"],
                                                "code": error.get("code", "unknown")}))
        job.done += len(written)
        job.failed += len(failed)
        return len(written)

    def count_attempt(self, job_id: str, indices: Sequence[int]) -> dict[int, int]:
        self.session.execute(sa.update(JobItem).where(JobItem.job_id == job_id, JobItem.idx.in_(indices))
                             .values(attempts=JobItem.attempts + 1))
        return dict(self.session.execute(sa.select(JobItem.idx, JobItem.attempts).where(
            JobItem.job_id == job_id, JobItem.idx.in_(indices))).all())

    def first_item(self, job_id: str) -> ItemRecord | None:
        row = self.session.scalar(sa.select(JobItem).where(JobItem.job_id == job_id).order_by(JobItem.idx).limit(1))
        return None if row is None else _item(row)

    def item(self, job_id: str, idx: int) -> ItemRecord | None:
        row = self.session.scalar(sa.select(JobItem).where(JobItem.job_id == job_id, JobItem.idx == idx))
        return None if row is None else _item(row)

    def items(self, job_id: str) -> list[ItemRecord]:
        query = sa.select(JobItem).where(JobItem.job_id == job_id).order_by(JobItem.idx)
        return [_item(row) for row in self.session.scalars(query)]

    def report_page(self, job_id: str, verdict: str | None = None, kind: str | None = None,
                    bank: str | None = None, sort: str = "index", descending: bool = False, limit: int = 50,
                    offset: int = 0) -> tuple[int, list[ItemRecord]]:
        """One page of a job's items, filtered by verdict (or `pending`), best match kind and bank; with the
        number of items the filter selects."""
        conditions = [JobItem.job_id == job_id]
        if verdict == ITEM_PENDING:
            conditions.append(JobItem.status == ITEM_PENDING)
        elif verdict is not None:
            conditions.append(JobItem.verdict == verdict)
        if kind is not None:
            conditions.append(JobItem.kind == kind)
        if bank is not None:
            conditions.append(JobItem.bank == bank)
        total = self.session.scalar(sa.select(sa.func.count()).select_from(JobItem).where(*conditions))
        order = [column.desc() if descending else column.asc() for column in REPORT_SORTS[sort]]
        rows = self.session.scalars(sa.select(JobItem).where(*conditions).order_by(*order).offset(offset).limit(limit))
        return total, [_item(row) for row in rows]

    def report_facets(self, job_id: str) -> dict[str, dict[str, int]]:
        """How many items have each verdict, best-match kind and bank: what a report's filters offer."""
        facets = {}
        for name, column in (("verdict", JobItem.verdict), ("kind", JobItem.kind), ("bank", JobItem.bank)):
            counts = self.session.execute(sa.select(column, sa.func.count()).where(
                JobItem.job_id == job_id, column.is_not(None)).group_by(column).order_by(column)).all()
            facets[name] = {value: count for value, count in counts}
        return facets

    def put_artifact(self, job_id: str, name: str, sha256: str, size: int, content_type: str) -> None:
        self.session.execute(sa.delete(Artifact).where(Artifact.job_id == job_id, Artifact.name == name))
        self.session.add(Artifact(job_id=job_id, name=name, sha256=sha256, size=size, content_type=content_type))

    def artifacts(self, job_id: str) -> list[ArtifactRecord]:
        return [ArtifactRecord(a.name, a.sha256, a.size, a.content_type) for a in self.session.scalars(
            sa.select(Artifact).where(Artifact.job_id == job_id).order_by(Artifact.name))]

    def artifact(self, job_id: str, name: str) -> ArtifactRecord | None:
        row = self.session.scalar(sa.select(Artifact).where(Artifact.job_id == job_id, Artifact.name == name))
        return None if row is None else ArtifactRecord(row.name, row.sha256, row.size, row.content_type)
