"""The `age_progression` job: one photo, progressed to each target age; artefacts are stored with the job."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from storage import Principal, Store
from workers.inputs import upload_items
from workers.registry import ItemOutcome, JobInputError, JobType

CONTENT_TYPES = {".png": "image/png", ".json": "application/json"}


class FamilyPhoto(BaseModel):
    upload: str
    age: float = Field(ge=1, le=120)
    relation: str = Field(min_length=1, max_length=50)


class AgeParams(BaseModel):
    age: float = Field(ge=1, le=25, description="Age of the child in the photo, years")
    sex: Literal["f", "m", "u", "female", "male", "unknown"]
    target_ages: list[float] = Field(min_length=1, max_length=12)
    family: list[FamilyPhoto] = Field(default_factory=list, max_length=4)
    face_index: int | None = Field(None, ge=0)
    family_weight: float | None = Field(None, ge=0, le=1)
    label: str | None = Field(None, max_length=80, pattern=r"\{age\}",
                              description="Label template, must contain {age}; default "
                                          "'AGE PROGRESSION - APPROXIMATION, age {age}'")

    @model_validator(mode="after")
    def _targets(self) -> "AgeParams":
        for target in self.target_ages:
            if not 1 <= target <= 25:
                raise ValueError(f"target age {target:g} is outside 1-25")
            if target < self.age:
                raise ValueError(f"target age {target:g} is below the current age {self.age:g}")
        return self


def build_items(store: Store, who: Principal, request: Any, params: AgeParams) -> list[dict]:
    if request.hashes or len(request.inputs) != 1:
        raise JobInputError("an age_progression job takes exactly one upload id in `inputs`: the child's photo")
    [item] = upload_items(store, who, request.inputs)
    family = upload_items(store, who, [f.upload for f in params.family])
    item["input"]["family"] = [{"sha256": f["input"]["sha256"], "age": p.age, "relation": p.relation}
                               for f, p in zip(family, params.family)]
    return [item]


def load_item(store: Store, item_input: dict) -> dict:
    return {"data": store.get_blob(item_input["sha256"]),
            "family": [(store.get_blob(f["sha256"]), f["age"], f["relation"]) for f in item_input.get("family", [])]}


def run_item(_context: None, params: dict, item: dict) -> ItemOutcome:
    from agepro import AgeProgressionError, run_age_progression

    options = {k: params[k] for k in ("face_index", "family_weight", "label") if params.get(k) is not None}
    try:
        result = run_age_progression(item["data"], params["age"], params["sex"], params["target_ages"],
                                     family=item["family"], **options)
    except AgeProgressionError as exc:
        return ItemOutcome(ok=False, result={"status": "error", "error": exc.message, "error_code": exc.code})
    files = result.to_files()
    artifacts = {name: (data, CONTENT_TYPES.get(name[name.rfind("."):], "application/octet-stream"))
                 for name, data in files.items()}
    return ItemOutcome(ok=True, artifacts=artifacts,
                       result={"status": "done", "artifacts": sorted(files), "provenance": result.provenance})


JOB_TYPES = [JobType(name="age_progression", params_model=AgeParams, roles=("admin", "artist"),
                     build_items=build_items, load_item=load_item, run_item=run_item)]
