from fastapi import APIRouter, File, UploadFile

from fimg_service.http.deps import App, Caller
from fimg_service.http.models import UploadOut, UploadsOut

router = APIRouter(tags=["uploads"])


@router.post("/v1/uploads", status_code=201, response_model=UploadsOut)
def upload(who: Caller, app: App, files: list[UploadFile] = File(...)):
    accepted, rejected = app.uploads.add(who, [(f.filename or "unnamed", f.file.read()) for f in files])
    return UploadsOut(uploads=[UploadOut.of(u) for u in accepted], rejected=rejected)
