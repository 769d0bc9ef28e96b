from fastapi import APIRouter

from fimg_service.http.deps import App, Curator
from fimg_service.http.models import GalleryIn, GalleryOut, SubjectIn
from fimg_service.http.openapi import errors

router = APIRouter(tags=["faces"])


@router.post("/v1/galleries", status_code=201, response_model=GalleryOut, responses=errors(409))
def create_gallery(body: GalleryIn, who: Curator, app: App):
    return GalleryOut.of(app.galleries.create(who, body.name, body.description, body.threshold))


@router.get("/v1/galleries", response_model=list[GalleryOut])
def list_galleries(who: Curator, app: App):
    return [GalleryOut.of(g) for g in app.galleries.list(who)]


@router.post("/v1/galleries/{name}/subjects", status_code=201)
def enrol(name: str, body: SubjectIn, who: Curator, app: App) -> dict:
    enrolled, rejected = app.galleries.enrol(who, name, body.subject_id, body.label,
                                             [(p.upload, p.age_at_photo, p.face_index) for p in body.photos])
    return {"subject_id": body.subject_id, "enrolled": enrolled, "rejected": rejected}


@router.get("/v1/galleries/{name}/subjects")
def list_subjects(name: str, who: Curator, app: App, include_embeddings: bool = False) -> dict:
    return {"subjects": app.galleries.subjects(who, name, include_embeddings)}


@router.delete("/v1/galleries/{name}/subjects/{subject_id}")
def delete_subject(name: str, subject_id: str, who: Curator, app: App) -> dict:
    return {"removed": app.galleries.delete_subject(who, name, subject_id)}
