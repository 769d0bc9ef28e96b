"""Work on local files in this process, with nothing stored: the CLI's `fimg age`."""
from __future__ import annotations

from agepro import AgeProgressionError, AgeProgressionResult
from fimg_service.errors import InvalidInput
from workers.age_progression import progress_photo


def age_progression(photo: bytes, family: list[tuple[bytes, float, str]], *, age: float, sex: str,
                    target_ages: list[float], face_index: int | None = None, family_weight: float | None = None,
                    appearance_weight: float | None = None, prepare_old_photo: bool = False,
                    label_note: str | None = None) -> AgeProgressionResult:
    """The same per-item function the `age_progression` job runs; bad input is an InvalidInput with agepro's code."""
    try:
        return progress_photo(photo, family, age=age, sex=sex, target_ages=target_ages, face_index=face_index,
                              family_weight=family_weight, appearance_weight=appearance_weight,
                              prepare_old_photo=prepare_old_photo, label_note=label_note)
    except AgeProgressionError as exc:
        raise InvalidInput(exc.message, code=exc.code) from None
