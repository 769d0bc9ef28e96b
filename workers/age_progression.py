"""The `age_progression` job: one photo, progressed to each target age; artefacts are stored with the job."""
from __future__ import annotations

import hashlib
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agepro import (DEFAULT_APPEARANCE_WEIGHT, DEFAULT_FAMILY_WEIGHT, MAX_LABEL_NOTE, AgeProgressionError,
                    AgeProgressionResult, ChosenFace, FamilyFace, age_progression, check_label_note,
                    check_parameters, check_relative, restoration)
from biometrics import FaceChoiceError, choose_face, detect_faces, face_mesh
from imaging.decode import DecodeError, decode
from fimg_service.roles import ARTISTS
from workers.registry import (ItemOutcome, JobRequest, JobType, UploadResolver, invalid_job, item_error,
                              upload_items)

CONTENT_TYPES = {".png": "image/png", ".json": "application/json"}


class FamilyPhoto(BaseModel):
    upload: str
    age: float = Field(ge=1, le=120)
    relation: str = Field(min_length=1, max_length=50)


class AgeParams(BaseModel):
    # An unknown field is refused, not ignored: `label` (which once replaced the label) must not pass silently.
    model_config = ConfigDict(extra="forbid")

    age: float = Field(ge=1, le=25, description="Age of the child in the photo, years")
    sex: Literal["f", "m", "u", "female", "male", "unknown"]
    target_ages: list[float] = Field(min_length=1, max_length=12)
    family: list[FamilyPhoto] = Field(default_factory=list, max_length=4)
    face_index: int | None = Field(None, ge=0)
    family_weight: float | None = Field(None, ge=0, le=1, description="How far the proportions move toward the "
                                        f"relatives'; default {DEFAULT_FAMILY_WEIGHT}")
    appearance_weight: float | None = Field(None, ge=0, le=1, description="How much of the relatives' warped "
                                            "appearance (skin, nose, mouth, jaw; never the eyes) is blended in; "
                                            f"default {DEFAULT_APPEARANCE_WEIGHT}")
    prepare_old_photo: bool = Field(False, description="De-screen, denoise, correct fading and sharpen the photo "
                                                       "before detection (scanned prints)")
    label_note: str | None = Field(None, max_length=MAX_LABEL_NOTE,
                                   description="Words added after the fixed label 'AGE PROGRESSION - "
                                               "APPROXIMATION, age N' (plain text; the label itself cannot change)")

    @model_validator(mode="before")
    @classmethod
    def _no_label_replacement(cls, data):
        if isinstance(data, dict) and "label" in data:
            raise ValueError("the label 'AGE PROGRESSION - APPROXIMATION, age N' cannot be replaced or removed; "
                             "label_note adds words after it")
        return data

    @field_validator("label_note")
    @classmethod
    def _plain_note(cls, note: str | None) -> str | None:
        try:
            return check_label_note(note)
        except AgeProgressionError as exc:
            raise ValueError(exc.message) from None

    @model_validator(mode="after")
    def _targets(self) -> "AgeParams":
        for target in self.target_ages:
            if not 1 <= target <= 25:
                raise ValueError(f"target age {target:g} is outside 1-25")
            if target < self.age:
                raise ValueError(f"target age {target:g} is below the current age {self.age:g}")
        return self


def build_items(request: JobRequest, params: AgeParams, uploads: UploadResolver) -> list[dict]:
    if request.hashes or len(request.inputs) != 1:
        raise invalid_job("an age_progression job takes exactly one upload id in `inputs`: the child's photo")
    [item] = upload_items(uploads, request.inputs)
    family = upload_items(uploads, [f.upload for f in params.family])
    item["input"]["family"] = [{"sha256": f["input"]["sha256"], "age": p.age, "relation": p.relation}
                               for f, p in zip(family, params.family)]
    return [item]


def load_item(blobs, item_input: dict) -> dict:
    return {"data": blobs.get(item_input["sha256"]),
            "family": [(blobs.get(f["sha256"]), f["age"], f["relation"])
                       for f in item_input.get("family", [])]}


def progress_photo(data: bytes, family: list[tuple[bytes, float, str]], *, age: float, sex: str,
                   target_ages: list[float], face_index: int | None = None, family_weight: float | None = None,
                   appearance_weight: float | None = None, prepare_old_photo: bool = False,
                   label_note: str | None = None) -> AgeProgressionResult:
    """The job's edge: decode the photo (and prepare it, for a scanned old print), find its face (`face_index`
    picks one of several, 0 = leftmost) and mesh it, do the same for each relative's photo (`family`: (bytes, age
    at the photo, relation); their most prominent face), then progress with `agepro`. None means agepro's default.
    Raises `agepro.AgeProgressionError` for every bad input, the parameters' before any decoding."""

    def decoded(photo: bytes, code: str, what: str) -> np.ndarray:
        if not isinstance(photo, (bytes, bytearray, memoryview)):
            raise AgeProgressionError(code, f"{what} must be encoded image bytes, not {type(photo).__name__}")
        try:
            # Scaled, not clipped, high bit depths: what face analysis needs.
            result = decode(bytes(photo), scale_high_bit_depth=True)
        except DecodeError as exc:
            raise AgeProgressionError(code, f"{what} could not be decoded ({exc.code}): {exc.message}") from exc
        return np.ascontiguousarray(result.rgb, dtype=np.uint8)

    options = {k: v for k, v in (("label_note", label_note), ("family_weight", family_weight),
                                 ("appearance_weight", appearance_weight)) if v is not None}
    check_parameters(age, sex, target_ages, **options)
    rgb = decoded(data, "invalid_image", "the photo")
    preparation = None
    if prepare_old_photo:
        preparation = restoration.prepare_old_photo(rgb)
        rgb = preparation.rgb
    faces = detect_faces(rgb)
    try:
        face = choose_face(faces, face_index)
    except FaceChoiceError as exc:
        raise AgeProgressionError(exc.code, exc.message) from None
    mesh = face_mesh(rgb, face)
    if mesh is None:
        raise AgeProgressionError("no_mesh", "the face was found but its landmarks could not be placed")

    relatives = []
    for number, (photo, relative_age, relation) in enumerate(family, start=1):
        what = f"family photo {number} ({relation})"
        relative_age = check_relative(number, relative_age, relation)
        relative_rgb = decoded(photo, "invalid_family_photo", what)
        relative_faces = detect_faces(relative_rgb)
        if not relative_faces:
            raise AgeProgressionError("invalid_family_photo", f"{what}: no face was found")
        used = int(np.argmax([f.size for f in relative_faces]))  # the most prominent face is the relative
        relative_mesh = face_mesh(relative_rgb, relative_faces[used])
        if relative_mesh is None:
            raise AgeProgressionError("invalid_family_photo", f"{what}: the face's landmarks could not be placed")
        relatives.append(FamilyFace(relative_rgb, relative_mesh, relative_age, relation,
                                    hashlib.sha256(photo).hexdigest(),
                                    ChosenFace(used, relative_faces[used].box, len(relative_faces))))
    return age_progression(rgb, mesh, age, sex, target_ages, source_sha256=hashlib.sha256(data).hexdigest(),
                           face=ChosenFace(faces.index(face), face.box, len(faces)), family=relatives,
                           preparation=preparation, **options)


def run_item(_context: None, params: AgeParams, item: dict) -> ItemOutcome:
    try:
        result = progress_photo(item["data"], item["family"], age=params.age, sex=params.sex,
                                target_ages=params.target_ages, face_index=params.face_index,
                                family_weight=params.family_weight, appearance_weight=params.appearance_weight,
                                prepare_old_photo=params.prepare_old_photo, label_note=params.label_note)
    except AgeProgressionError as exc:
        return item_error(exc.code, exc.message)
    files = result.to_files()
    artifacts = {name: (data, CONTENT_TYPES.get(name[name.rfind("."):], "application/octet-stream"))
                 for name, data in files.items()}
    return ItemOutcome(ok=True, artifacts=artifacts,
                       result={"status": "done", "artifacts": sorted(files), "provenance": result.provenance})


JOB_TYPES = [JobType(name="age_progression", params_model=AgeParams, roles=ARTISTS,
                     build_items=build_items, load_item=load_item, run_item=run_item)]
