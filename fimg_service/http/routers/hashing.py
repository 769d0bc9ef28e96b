from fastapi import APIRouter, File, Query, UploadFile

from fimg_service.http.deps import App, Hasher
from fimg_service.http.models import HashOut
from fimg_service.http.openapi import errors
from fimg_service.usecases.rules import PDQ_THRESHOLD_RANGE

router = APIRouter(tags=["hashing"])


@router.post("/v1/hash", response_model=HashOut)
def hash_one(who: Hasher, app: App, file: UploadFile = File(...)):
    return HashOut(**app.hashing.hash_file(who, file.file.read()))


@router.get("/v1/lookup", responses=errors(404))
def lookup(who: Hasher, app: App, pdq: str = Query(..., max_length=64), banks: str = Query(..., min_length=1),
           threshold: int | None = Query(None, ge=PDQ_THRESHOLD_RANGE[0], le=PDQ_THRESHOLD_RANGE[1])) -> dict:
    names = [b for b in banks.split(",") if b]
    return {"matches": app.hashing.lookup(who, {"pdq": pdq}, names, threshold)}
