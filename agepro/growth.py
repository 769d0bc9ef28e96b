"""Craniofacial growth model: per-region size factors between two ages, from published data.

The numbers live in ``models/growth.json`` (every figure names its source; see ``models/growth.md``). Each region
gets a size index per age, adult (18) = 1.0, built from the tabulated growth ratios and the monotone timing
curves (PCHIP, so sizes never shrink with age). ``growth(sex, a, b)`` is ``index(b) / index(a)`` per region.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib.resources import files

import numpy as np
from scipy.interpolate import PchipInterpolator

from agepro.errors import AgeProgressionError

MIN_AGE = 1.0
MAX_AGE = 25.0
SEXES = ("female", "male", "unknown")
REGIONS = ("upper_third", "middle_third", "lower_third", "face_width", "nose_length", "cranium")
# Width follows the facial height below the glabella, whose middle and lower thirds are about equal in adults.
_ADULT_MIDDLE_SHARE = 0.5
_SEX_ALIASES = {"f": "female", "female": "female", "m": "male", "male": "male", "u": "unknown", "unknown": "unknown"}


@lru_cache(maxsize=1)
def _table() -> dict:
    return json.loads((files("models") / "growth.json").read_text(encoding="utf-8"))


GROWTH_TABLE_VERSION: str = _table()["version"]
GROWTH_SOURCES: tuple[dict, ...] = tuple(_table()["sources"])


@dataclass(frozen=True)
class GrowthFactors:
    """Linear size ratios (size at ``age_to`` / size at ``age_from``) per facial region."""

    sex: str
    age_from: float
    age_to: float
    upper_third: float
    middle_third: float
    lower_third: float
    face_width: float
    nose_length: float
    cranium: float

    def as_dict(self) -> dict:
        return asdict(self)


def normalise_sex(sex: str) -> str:
    """'f'/'female', 'm'/'male', 'u'/'unknown' (any case) -> the long form; anything else is an error."""
    key = str(sex).strip().lower()
    if key not in _SEX_ALIASES:
        raise AgeProgressionError("invalid_sex", f"sex must be one of f, m, u (female, male, unknown), not {sex!r}")
    return _SEX_ALIASES[key]


def check_age(age: float, code: str = "invalid_age", what: str = "age") -> float:
    try:
        value = float(age)
    except (TypeError, ValueError):
        raise AgeProgressionError(code, f"{what} must be a number, not {age!r}") from None
    if not MIN_AGE <= value <= MAX_AGE:
        raise AgeProgressionError(code, f"{what} {value:g} is outside the modelled range {MIN_AGE:g}-{MAX_AGE:g}")
    return value


@lru_cache(maxsize=None)
def _fraction_curve(key: str) -> PchipInterpolator:
    timing = _table()["timing"][key]
    fraction_key = next(k for k in timing if k.startswith("fraction"))
    return PchipInterpolator(np.asarray(timing["ages"], float), np.asarray(timing[fraction_key], float))


def _fraction(key: str, age: float) -> float:
    ages = _table()["timing"][key]["ages"]
    clamped = min(max(age, ages[0]), ages[-1])
    return float(np.clip(_fraction_curve(key)(clamped), 0.0, 1.0))


def _log_index_one_sex(sex: str, age: float) -> dict[str, float]:
    """log(size at age / adult size) per region for 'female' or 'male'."""
    regions = _table()["regions"]
    log_index: dict[str, float] = {}
    for name in ("upper_third", "middle_third", "lower_third"):
        log_at_6 = -np.log(regions[name]["adult_over_age6"][sex])
        if age >= 6:
            log_index[name] = log_at_6 * (1.0 - _fraction(sex, age))
        else:
            log_index[name] = log_at_6 - np.log(regions[name]["age6_over_age1"]["value"]) * (
                1.0 - _fraction("childhood", age)
            )
    log_index["cranium"] = -np.log(regions["cranium"]["adult_over_age1"]["value"]) * (1.0 - _fraction("cranium", age))
    log_index["nose_length"] = regions["nose_length"]["exponent"] * log_index["middle_third"]
    height = np.log(
        _ADULT_MIDDLE_SHARE * np.exp(log_index["middle_third"])
        + (1 - _ADULT_MIDDLE_SHARE) * np.exp(log_index["lower_third"])
    )
    log_index["face_width"] = regions["face_width"]["exponent"] * height
    return {k: float(v) for k, v in log_index.items()}


def size_index(sex: str, age: float) -> dict[str, float]:
    """Size of every region at ``age`` relative to the adult (18) size; 'unknown' is the geometric mean of both."""
    sex = normalise_sex(sex)
    age = check_age(age)
    if sex == "unknown":
        female, male = _log_index_one_sex("female", age), _log_index_one_sex("male", age)
        return {k: float(np.exp(0.5 * (female[k] + male[k]))) for k in REGIONS}
    log_index = _log_index_one_sex(sex, age)
    return {k: float(np.exp(log_index[k])) for k in REGIONS}


def growth(sex: str, age_from: float, age_to: float) -> GrowthFactors:
    """Per-region linear growth factors from ``age_from`` to ``age_to`` (both 1-25; a factor < 1 if younger)."""
    sex = normalise_sex(sex)
    start, end = size_index(sex, age_from), size_index(sex, age_to)
    return GrowthFactors(
        sex=sex, age_from=float(age_from), age_to=float(age_to), **{k: end[k] / start[k] for k in REGIONS}
    )
