"""Face galleries of a case: subjects, their enrolled faces (embeddings are biometric data), thresholds, search."""
from __future__ import annotations

from collections.abc import Callable, Sequence

from pydantic import ValidationError

from fimg_service.errors import Forbidden, InvalidInput, NotFound, problem
from fimg_service.storage import Unit
from fimg_service.storage.records import GalleryInfo
from fimg_service.usecases.base import CURATORS, Principal, audit, require
from fimg_service.usecases.cases import CaseTeam, in_case, visible
from fimg_service.usecases.rules import MAX_DESCRIPTION, MAX_LABEL, check_face_threshold, check_name, check_text
from fimg_service.usecases.uploads import Uploads
from biometrics import FaceChoiceError, choose_face
from imaging import DecodeError
from workers.registry import invalid_params


def get_gallery(unit: Unit, who: Principal, name: str) -> GalleryInfo:
    """The gallery, if the caller owns it, is on its team or is an admin; else NotFound (see `cases`)."""
    return visible(unit, who, "gallery", name)


def enrolment_face(faces: list[dict], face_index: int | None) -> dict:
    """The face to enrol (`biometrics.choose_face`'s rule), which must pass the quality gates; else InvalidInput."""
    try:
        face = choose_face(faces, face_index)
    except FaceChoiceError as exc:
        raise InvalidInput(exc.message + (" (face_index in the photo)" if exc.code == "multiple_faces" else ""),
                           code=exc.code) from None
    if face["embedding"] is None:
        raise InvalidInput("face below the quality gates: " + "; ".join(face["quality"]["reasons"]),
                           code="low_quality")
    return face


class Galleries(CaseTeam):
    kind = "gallery"
    member_roles = CURATORS  # service keys never read galleries

    def __init__(self, storage, uploads: Uploads, enrolment_faces: Callable[[bytes], list[dict]]):
        super().__init__(storage)
        self.uploads = uploads
        self.enrolment_faces = enrolment_faces

    def create(self, who: Principal, name: str, description: str | None = None,
               threshold: float | None = None) -> GalleryInfo:
        require(who, CURATORS, "create galleries")
        check_name("gallery", name)
        check_text("a description", description, MAX_DESCRIPTION)
        check_face_threshold(threshold)
        with self.storage.unit() as unit:
            gallery = unit.galleries.create(name, description, threshold, who.key_id)
            audit(unit, who, "create", "gallery", name)
        return gallery

    def get(self, who: Principal, name: str) -> GalleryInfo:
        require(who, CURATORS, "read galleries")
        with self.storage.read() as unit:
            return get_gallery(unit, who, name)

    def list(self, who: Principal) -> list[GalleryInfo]:
        require(who, CURATORS, "list galleries")
        with self.storage.unit() as unit:
            audit(unit, who, "list", "galleries", "all")
            return unit.galleries.list(who.key_id, all_cases=who.is_admin)

    def enrol(self, who: Principal, name: str, subject_id: str, label: str | None,
              photos: Sequence[tuple[str, float | None, int | None]]) -> tuple[list[dict], list[dict]]:
        """Enrol a subject from photos (upload id, age at photo, face index); returns (enrolled, rejected)."""
        require(who, CURATORS, "enrol into galleries")
        check_text("a subject id", subject_id, MAX_LABEL, required=True)
        check_text("a label", label, MAX_LABEL)
        with self.storage.read() as unit:
            get_gallery(unit, who, name)
        faces, rejected = [], []
        for upload_id, age_at_photo, face_index in photos:
            upload = self.uploads.get(who, upload_id)
            try:
                found = self.enrolment_faces(self.uploads.data(upload))
            except DecodeError as exc:
                rejected.append(problem(exc.code, str(exc), upload=upload_id))
                continue
            try:
                face = enrolment_face(found, face_index)
            except InvalidInput as exc:
                rejected.append(problem(exc.code, exc.message, upload=upload_id))
                continue
            faces.append({"subject_id": subject_id, "label": label, "age_at_photo": age_at_photo,
                          "source_sha256": upload.sha256, "face_index": face_index or 0,
                          "embedding": face["embedding"], "quality": face["quality"]["score"]})
        if not faces:
            raise InvalidInput("no photo gave a usable face", code="nothing_enrolled", rejected=rejected)
        with self.storage.unit() as unit:
            ids = unit.galleries.add_faces(get_gallery(unit, who, name).id, faces)
            audit(unit, who, "enrol", "gallery_subject", f"{name}/{subject_id}", {"faces": len(ids)})
        enrolled = [{"face_id": i, "source_sha256": f["source_sha256"], "quality": f["quality"]}
                    for i, f in zip(ids, faces)]
        return enrolled, rejected

    def subjects(self, who: Principal, name: str, include_embeddings: bool = False) -> list[dict]:
        """Subjects with their faces; embeddings (biometric data) only when asked for, only for the gallery's
        owner and members (an admin adds itself first, which is audited), and audited as an export."""
        require(who, CURATORS, "read galleries")
        with self.storage.unit() as unit:
            gallery = get_gallery(unit, who, name)
            if include_embeddings and not in_case(who, gallery, unit.galleries.members):
                raise Forbidden(f"only the owner and members of gallery {name!r} read its embeddings",
                                code="not_a_member")
            audit(unit, who, "export" if include_embeddings else "read", "gallery", name,
                  {"include_embeddings": include_embeddings})
        with self.storage.read() as unit:
            faces = unit.galleries.faces(gallery.id)
        subjects: dict[str, dict] = {}
        for face in faces:
            subject = subjects.setdefault(face.subject_id, {"subject_id": face.subject_id, "label": face.label,
                                                            "faces": []})
            shown = {"face_id": face.id, "age_at_photo": face.age_at_photo, "source_sha256": face.source_sha256,
                     "quality": face.quality}
            if include_embeddings:
                shown["embedding"] = list(face.embedding)
            subject["faces"].append(shown)
        return list(subjects.values())

    def delete_subject(self, who: Principal, name: str, subject_id: str) -> int:
        require(who, CURATORS, "delete gallery subjects")
        with self.storage.unit() as unit:
            removed = unit.galleries.delete_subject(get_gallery(unit, who, name).id, subject_id)
            if not removed:
                raise NotFound(f"gallery {name!r} has no subject {subject_id!r}")
            audit(unit, who, "delete", "gallery_subject", f"{name}/{subject_id}", {"faces": removed})
        return removed

    def set_threshold(self, who: Principal, name: str, threshold: float, calibration: dict | None) -> None:
        require(who, CURATORS, "calibrate galleries")
        check_face_threshold(threshold)
        with self.storage.unit() as unit:
            unit.galleries.set_threshold(get_gallery(unit, who, name).id, threshold, calibration)
            audit(unit, who, "calibrate", "gallery", name, {"threshold": threshold})

    def search_files(self, who: Principal, name: str, files: Sequence[tuple[str, bytes]], top_k: int = 5,
                     threshold: float | None = None) -> list[dict]:
        """1:N search of local files in this process (the CLI's `faces search`); one result per file."""
        from workers import faces as face_jobs  # here, so commands that never search do not load the face models

        require(who, CURATORS, "search galleries")
        try:
            params = face_jobs.SearchParams(gallery=name, top_k=top_k, threshold=threshold)
        except ValidationError as exc:
            raise invalid_params(exc) from None
        with self.storage.unit() as unit:
            gallery = get_gallery(unit, who, name)
            faces = unit.galleries.faces(gallery.id)
            audit(unit, who, "search", "gallery", name, {"images": len(files)})
        matrix = face_jobs.gallery_matrix(gallery.threshold, faces)
        return [{"name": file_name, **face_jobs.run_search(matrix, params, {"data": data}).result}
                for file_name, data in files]
