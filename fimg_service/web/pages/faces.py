"""Face galleries: create, enrol subjects from photos, list and delete them, and search a photo against one."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from fimg_service.http.deps import App
from fimg_service.usecases import job_request
from fimg_service.web.pages.banks import team
from fimg_service.web.render import render
from fimg_service.web.session import Form, Page, go

router = APIRouter()

GalleryName = Annotated[str, Path(max_length=100)]


@router.get("/faces")
def galleries_page(request: Request, signed_in: Page, app: App):
    return render(request, "galleries.html", signed_in, galleries=app.galleries.list(signed_in.principal))


@router.post("/faces")
def create_gallery(request: Request, signed_in: Page, app: App, form: Form):
    gallery = app.galleries.create(signed_in.principal, form.text("name", ""), form.text("description"),
                                   form.number("threshold", "the threshold"))
    return go(request, f"/faces/{gallery.name}")


def _gallery_page(request: Request, signed_in, app: App, name: str, **outcome):
    gallery = app.galleries.get(signed_in.principal, name)
    subjects = app.galleries.subjects(signed_in.principal, name)
    owner, members = app.galleries.members(signed_in.principal, name)
    return render(request, "gallery.html", signed_in, gallery=gallery, subjects=subjects,
                  team=team(signed_in, "faces", name, owner, members), **outcome)


@router.get("/faces/{name}")
def gallery_page(request: Request, signed_in: Page, app: App, name: GalleryName):
    return _gallery_page(request, signed_in, app, name)


@router.post("/faces/{name}/enrol")
def enrol_subject(request: Request, signed_in: Page, app: App, name: GalleryName, form: Form):
    who = signed_in.principal
    photos = form.chosen_files("photos", "one or more photos of the subject")
    uploads, rejected = app.uploads.add(who, photos, expand_archives=False)
    age = form.number("age_at_photo", "the age at the photo")
    enrolled, refused = app.galleries.enrol(who, name, form.text("subject_id", ""), form.text("label"),
                                            [(u.id, age, None) for u in uploads])
    return _gallery_page(request, signed_in, app, name, enrolled=enrolled, enrol_rejected=rejected + refused)


@router.post("/faces/{name}/subjects/{subject_id}/delete")
def delete_subject(request: Request, signed_in: Page, app: App, name: GalleryName,
                   subject_id: Annotated[str, Path(max_length=200)], form: Form):
    app.galleries.delete_subject(signed_in.principal, name, subject_id)
    return go(request, f"/faces/{name}")


@router.post("/faces/{name}/search")
def search_gallery(request: Request, signed_in: Page, app: App, name: GalleryName, form: Form):
    who = signed_in.principal
    photos = form.chosen_files("photos", "the photo to search for")
    uploads, _rejected = app.uploads.add(who, photos)
    params = {"gallery": name, "top_k": int(form.number("top_k", "the number of candidates", 5))}
    job = app.jobs.submit(who, "face_search", job_request([u.id for u in uploads]), params)
    return go(request, f"/jobs/{job.id}")


@router.post("/faces/{name}/members")
def add_member(request: Request, signed_in: Page, app: App, name: GalleryName, form: Form):
    app.galleries.add_member(signed_in.principal, name, form.text("key_name", ""))
    return go(request, f"/faces/{name}")


@router.post("/faces/{name}/members/{key_name}/remove")
def remove_member(request: Request, signed_in: Page, app: App, name: GalleryName,
                  key_name: Annotated[str, Path(max_length=200)], form: Form):
    app.galleries.remove_member(signed_in.principal, name, key_name)
    return go(request, f"/faces/{name}")
