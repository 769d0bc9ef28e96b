from fastapi import APIRouter, Response

from fimg_service.http.deps import App, Curator
from fimg_service.http.models import GalleryIn, GalleryOut, KeyName, MemberOut, MembersOut, SubjectIn
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


@router.get("/v1/galleries/{name}/members", response_model=MembersOut)
def list_gallery_members(name: str, who: Curator, app: App):
    return MembersOut.of(*app.galleries.members(who, name))


@router.put("/v1/galleries/{name}/members/{key_name}", response_model=MemberOut, responses=errors(409))
def add_gallery_member(name: str, key_name: KeyName, who: Curator, app: App):
    return MemberOut.of(app.galleries.add_member(who, name, key_name))


@router.delete("/v1/galleries/{name}/members/{key_name}", status_code=204, responses=errors(409))
def remove_gallery_member(name: str, key_name: KeyName, who: Curator, app: App):
    app.galleries.remove_member(who, name, key_name)
    return Response(status_code=204)
