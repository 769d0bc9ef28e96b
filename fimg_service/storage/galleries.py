"""Face galleries: subjects and their enrolled faces. An embedding is biometric data: read only when asked for."""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fimg_service.storage.banks import insert_named
from fimg_service.storage.members import CaseMembers
from fimg_service.storage.records import FaceRecord, GalleryInfo
from fimg_service.storage.schema import Gallery, GalleryFace, GalleryMember, as_utc, utcnow


def _info(row: Gallery, subjects: int) -> GalleryInfo:
    return GalleryInfo(row.id, row.name, row.description, row.threshold, row.calibration, row.revision,
                       row.created_by, as_utc(row.created_at), subjects, row.owner_id)


def _face(row: GalleryFace) -> FaceRecord:
    return FaceRecord(row.id, row.subject_id, row.label, row.age_at_photo, row.source_sha256, row.face_index,
                      tuple(row.embedding), row.quality)


class GalleryRepository:
    def __init__(self, session: Session):
        self.session = session
        self.members = CaseMembers(session, GalleryMember, GalleryMember.gallery_id, Gallery)

    def create(self, name: str, description: str | None, threshold: float | None,
               created_by: int | None) -> GalleryInfo:
        """A new gallery, owned by the key that created it."""
        row = Gallery(name=name, description=description, threshold=threshold, revision=0, created_by=created_by,
                      owner_id=created_by, created_at=utcnow())
        insert_named(self.session, row, "gallery")
        return _info(row, 0)

    def _subject_counts(self) -> dict[int, int]:
        return dict(self.session.execute(
            sa.select(GalleryFace.gallery_id, sa.func.count(sa.distinct(GalleryFace.subject_id)))
            .group_by(GalleryFace.gallery_id)).all())

    def get(self, name: str) -> GalleryInfo | None:
        row = self.session.scalar(sa.select(Gallery).where(Gallery.name == name))
        return None if row is None else _info(row, self._subject_counts().get(row.id, 0))

    def list(self, key_id: int | None = None, all_cases: bool = True) -> list[GalleryInfo]:
        """Every gallery, or (not `all_cases`) those `key_id` owns or is a member of."""
        counts = self._subject_counts()
        query = self.members.visible(sa.select(Gallery).order_by(Gallery.name), key_id, all_cases)
        return [_info(g, counts.get(g.id, 0)) for g in self.session.scalars(query)]

    def _bump(self, gallery_id: int, **values) -> None:
        self.session.execute(sa.update(Gallery).where(Gallery.id == gallery_id)
                             .values(revision=Gallery.revision + 1, **values))

    def set_threshold(self, gallery_id: int, threshold: float, calibration: dict | None) -> None:
        self._bump(gallery_id, threshold=threshold, calibration=calibration)

    def add_faces(self, gallery_id: int, faces: Sequence[dict]) -> list[int]:
        rows = [GalleryFace(gallery_id=gallery_id, created_at=utcnow(), **face) for face in faces]
        self.session.add_all(rows)
        self.session.flush()
        self._bump(gallery_id)
        return [row.id for row in rows]

    def faces(self, gallery_id: int) -> list[FaceRecord]:
        query = sa.select(GalleryFace).where(GalleryFace.gallery_id == gallery_id).order_by(GalleryFace.id)
        return [_face(row) for row in self.session.scalars(query)]

    def delete_subject(self, gallery_id: int, subject_id: str) -> int:
        removed = self.session.execute(sa.delete(GalleryFace).where(
            GalleryFace.gallery_id == gallery_id, GalleryFace.subject_id == subject_id)).rowcount
        if removed:
            self._bump(gallery_id)
        return removed
