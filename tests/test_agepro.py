"""Age progression: growth model, warp, re-detected proportions, identity, relatives' appearance, hair-free variants,
old-photo preparation, labels, provenance, errors, CLI.

The photos are adult fixtures standing in for children (there are no photos of children in this project).
Progressions are computed once per module and shared.
"""
from __future__ import annotations

import io
import json
import time
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy.ndimage import distance_transform_edt

from agepro import (
    APPROXIMATION_LABEL,
    DEFAULT_APPEARANCE_WEIGHT,
    GROWTH_SOURCES,
    GROWTH_TABLE_VERSION,
    AgeProgressionError,
    ChosenFace,
    FamilyReference,
    ProgressionPlan,
    Proportions,
    age_progression,
    growth,
    label_band,
    label_text,
    prepare_old_photo,
    progress,
    size_index,
    transfer_appearance,
)
from agepro.appearance import EYE_REGIONS, seam_gradient_ratio
from agepro.landmarks import FaceFrame
from agepro.pipeline import PNG_LABEL_KEY, PNG_PROVENANCE_KEY
from agepro.render import BAND_COLOUR, NEUTRAL_BACKGROUND, SHEET_GAP, SHEET_TILE_HEIGHT, TEXT_COLOUR, with_mark
from agepro.warp import fold_free_scale, signed_areas, triangulate, warp_image
from biometrics import detect_faces, distance, embed, face_mesh
from biometrics.topology import FACE_OVAL, MENTON, TRICHION
from workers.age_progression import progress_photo

# Frontal, evenly lit single-face fixtures: the re-detection check averages over them.
FRONTAL = (
    "obama-2.jpg", "obama-4.jpg", "biden-2.jpg", "leslie-1.jpg",
    "leslie-2.jpg", "harington-2.jpg", "lacamoire-2.jpg", "miranda-1.png",
)  # fmt: skip
LONG_SIDE = 800
# Published 6-to-adult growth of the facial thirds (Ferrario et al. 1998): lower, middle, upper.
FERRARIO = {"m": (1.23, 1.18, 1.16), "f": (1.17, 1.13, 1.09)}
# Landmarks for re-detected proportions. The model scales the lower third uniformly (and the upper third too), so
# any point in it grows by the third's factor: the lower lip (17) stands for the menton because the mesh places
# textured points faithfully while its chin outline is pulled toward the detector's average face (measured on
# these fixtures: ~2 % of face height short after a 6 -> 18 stretch, against ~0.3 % for the lower lip).
UPPER, GLABELLA, SUBNASALE, LOWER = 10, 9, 2, 17
WIDTH_PAIR = (132, 361)


def load(fixtures_dir: Path, name: str, long_side: int = LONG_SIDE) -> np.ndarray:
    image = Image.open(fixtures_dir / "faces" / name).convert("RGB")
    image.thumbnail((long_side, long_side), Image.LANCZOS)
    return np.asarray(image)


def png(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def from_bytes(data: bytes, age, sex, target_ages, family=(), **options):
    """The job's edge: photo bytes in (decoding and detection happen there, not in agepro)."""
    return progress_photo(data, list(family), age=age, sex=sex, target_ages=target_ages, **options)


def only_face(rgb: np.ndarray):
    faces = detect_faces(rgb)
    assert len(faces) == 1
    return faces[0]


def mesh_points(rgb: np.ndarray) -> np.ndarray:
    mesh = face_mesh(rgb, only_face(rgb))
    assert mesh is not None
    return mesh.points.astype(np.float64)


def measured(points: np.ndarray) -> dict[str, float]:
    frame = FaceFrame.from_points(points)
    u, v = frame.to_frame(points)
    upper, middle, lower = v[GLABELLA] - v[UPPER], v[SUBNASALE] - v[GLABELLA], v[LOWER] - v[SUBNASALE]
    width = abs(u[WIDTH_PAIR[1]] - u[WIDTH_PAIR[0]])
    return {
        "lower_to_middle": lower / middle,
        "lower_to_upper": lower / upper,
        "height_to_width": (middle + lower) / width,
    }


@pytest.fixture(scope="module")
def frontal(fixtures_dir):
    """name -> (rgb, input mesh points)."""
    images = {name: load(fixtures_dir, name) for name in FRONTAL}
    return {name: (rgb, mesh_points(rgb)) for name, rgb in images.items()}


@pytest.fixture(scope="module")
def six_to_eighteen(frontal):
    """(sex, name) -> (progression, mesh re-detected on the progressed image)."""
    runs = {}
    for sex in FERRARIO:
        for name, (rgb, points) in frontal.items():
            result = progress(rgb, points, ProgressionPlan(sex=sex, age=6, target_age=18))
            runs[sex, name] = (result, mesh_points(result.image))
    return runs


@pytest.fixture(scope="module")
def leslie_run(fixtures_dir):
    """One full run with a relative's photo, through bytes, for labels, files and provenance."""
    photo = png(load(fixtures_dir, "leslie-2.jpg", 640))
    relative = png(load(fixtures_dir, "harington-2.jpg", 640))
    result = from_bytes(photo, 8, "f", [12, 10], family=[(relative, 30, "father")], family_weight=0.25)
    return photo, relative, result


# --- growth model ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sex", ["m", "f"])
def test_growth_table_reproduces_ferrario_six_to_adult(sex):
    lower, middle, upper = FERRARIO[sex]
    factors = growth(sex, 6, 18)
    assert factors.lower_third == pytest.approx(lower, abs=1e-9)
    assert factors.middle_third == pytest.approx(middle, abs=1e-9)
    assert factors.upper_third == pytest.approx(upper, abs=1e-9)


def test_growth_table_reproduces_bolton_one_to_eighteen_and_unknown_is_the_mean():
    pooled = growth("u", 1, 18)
    # Bolton standards, areas 1 -> 18: lower face +78 %, upper face +58.8 %, cranium +26 %; linear = sqrt(area).
    assert pooled.lower_third == pytest.approx(np.sqrt(1.78), rel=0.005)
    assert pooled.middle_third == pytest.approx(np.sqrt(1.588), rel=0.005)
    assert pooled.cranium == pytest.approx(np.sqrt(1.26), rel=0.001)
    # "Growth of the cranium largely ceased by 9 years".
    assert size_index("u", 9)["cranium"] > 0.995
    female, male, unknown = growth("f", 4, 15), growth("m", 4, 15), growth("unknown", 4, 15)
    assert unknown.lower_third == pytest.approx(np.sqrt(female.lower_third * male.lower_third), rel=1e-9)
    assert GROWTH_TABLE_VERSION and {s["id"] for s in GROWTH_SOURCES} >= {"ferrario1998", "bolton_areas"}


@pytest.mark.parametrize("sex", ["f", "m", "u"])
def test_growth_is_monotone_and_the_lower_face_grows_most(sex):
    ages = np.arange(1, 25.01, 0.25)
    indices = [size_index(sex, a) for a in ages]
    for region in indices[0]:
        series = np.array([i[region] for i in indices])
        assert np.all(np.diff(series) >= -1e-12), region
        assert series[-1] == pytest.approx(1.0)
    factors = growth(sex, 1, 18)
    assert factors.lower_third > factors.middle_third > factors.cranium
    assert factors.nose_length > factors.middle_third  # the nose lengthens
    assert growth(sex, 10, 10).lower_third == 1.0


def test_growth_rejects_bad_sex_and_ages():
    with pytest.raises(AgeProgressionError) as error:
        growth("x", 6, 10)
    assert error.value.code == "invalid_sex"
    for bad in (0.5, 26, "six", None):
        with pytest.raises(AgeProgressionError) as error:
            growth("m", bad, 10)
        assert error.value.code == "invalid_age"


# --- proportions on the output image ----------------------------------------------------------------------------


@pytest.mark.parametrize("sex", ["m", "f"])
def test_target_landmarks_carry_the_cited_figures_exactly(sex, six_to_eighteen):
    lower, middle, upper = FERRARIO[sex]
    for name in FRONTAL:
        result, _ = six_to_eighteen[sex, name]
        before, after = result.measured_input, result.predicted
        assert result.displacement_scale == 1.0
        assert after.lower_to_upper / before.lower_to_upper == pytest.approx(lower / upper, rel=1e-6)
        assert after.lower_to_middle / before.lower_to_middle == pytest.approx(lower / middle, rel=1e-6)
        assert after.upper_to_middle / before.upper_to_middle == pytest.approx(upper / middle, rel=1e-6)


@pytest.mark.parametrize("sex", ["m", "f"])
def test_redetected_proportions_change_as_the_cited_figures_imply(sex, frontal, six_to_eighteen):
    """Landmarks re-detected on each 6 -> 18 output; the change of each ratio, averaged (geometric mean) over the
    frontal fixtures, is within 3 % of the prediction. Single photos scatter by a few per cent because the mesh is
    a 192 px regression with a shape prior."""
    lower, middle, upper = FERRARIO[sex]
    expected_cited = {"lower_to_middle": lower / middle, "lower_to_upper": lower / upper}
    log_errors: dict[str, list[float]] = {k: [] for k in ("lower_to_middle", "lower_to_upper", "height_to_width")}
    for name, (_, points) in frontal.items():
        result, redetected = six_to_eighteen[sex, name]
        before, after = measured(points), measured(redetected)
        predicted = measured(result.map_points(points))
        for ratio in log_errors:
            expected = expected_cited.get(ratio, predicted[ratio] / before[ratio])
            if ratio in expected_cited:  # the geometry itself carries the cited figure
                assert predicted[ratio] / before[ratio] == pytest.approx(expected, rel=1e-6)
            log_errors[ratio].append(np.log((after[ratio] / before[ratio]) / expected))
    for ratio, errors in log_errors.items():
        mean_error = float(np.exp(np.mean(errors)))
        assert abs(mean_error - 1) < 0.03, (ratio, mean_error, np.round(np.exp(errors), 3))
    # and the expected changes are real ones, not within the tolerance of no change at all
    assert min(expected_cited.values()) > 1.035


def test_proportions_move_monotonically_with_target_age(frontal):
    rgb, points = frontal["leslie-1.jpg"]
    eye_heights, lower_to_upper, height_to_width = [], [], []
    for target in (6, 9, 12, 15, 18, 25):
        result = progress(rgb, points, ProgressionPlan(sex="m", age=6, target_age=target))
        p = result.predicted
        lower_to_upper.append(p.lower_to_upper)
        height_to_width.append(p.height_to_width)
        # the eye line moves up relative to the head: forehead-to-eyes over forehead-to-chin shrinks
        _, v = FaceFrame.from_points(result.target_points).to_frame(result.target_points)
        eye_heights.append(-v[TRICHION] / (v[MENTON] - v[TRICHION]))
    assert np.all(np.diff(lower_to_upper[:5]) > 0) and lower_to_upper[5] == pytest.approx(lower_to_upper[4])
    assert np.all(np.diff(height_to_width[:5]) > 0)
    assert np.all(np.diff(eye_heights[:5]) < 0)


# --- identity, locality, folds, labels --------------------------------------------------------------------------


def test_identity_is_kept_over_a_four_year_progression(frontal):
    distances = {}
    for name in ("obama-2.jpg", "biden-2.jpg", "leslie-1.jpg", "lacamoire-2.jpg"):
        rgb, points = frontal[name]
        result = progress(rgb, points, ProgressionPlan(sex="u", age=10, target_age=14))
        distances[name] = distance(embed(rgb, only_face(rgb)), embed(result.image, only_face(result.image)))
    assert max(distances.values()) < 0.6, distances


def test_nothing_outside_the_head_region_changes(frontal, six_to_eighteen):
    for name in ("leslie-2.jpg", "obama-2.jpg", "obama-4.jpg"):
        rgb, points = frontal[name]
        result, _ = six_to_eighteen["m", name]
        # Head mask from the input mesh alone: the face outline (forehead to chin), dilated by 0.8 of its height
        # to take in the skull, hair and the margin over which the deformation fades out.
        outline = Image.new("L", (rgb.shape[1], rgb.shape[0]), 0)
        ImageDraw.Draw(outline).polygon([tuple(points[i]) for i in FACE_OVAL], fill=1)
        face_height = np.linalg.norm(points[MENTON] - points[TRICHION])
        head = distance_transform_edt(np.asarray(outline) == 0) <= 0.8 * face_height
        outside = ~head
        assert outside.mean() > 0.15, name  # a real test: a good part of the photo lies outside
        assert np.array_equal(result.image[outside], rgb[outside]), name
        assert not result.changed[outside].any()
        assert np.array_equal(result.image[~result.changed], rgb[~result.changed])
        assert result.changed.sum() > 0.05 * result.changed.size


def test_every_triangle_keeps_its_orientation(six_to_eighteen):
    for result, _ in six_to_eighteen.values():
        before = signed_areas(result.vertices_source, result.triangles)
        after = signed_areas(result.vertices_target, result.triangles)
        assert np.all(before > 0) and np.all(after > 0)


def test_a_folding_displacement_is_scaled_down_until_nothing_folds():
    rng = np.random.default_rng(7)
    grid = np.stack(np.meshgrid(np.linspace(0, 99, 8), np.linspace(0, 99, 8)), -1).reshape(-1, 2)
    triangles = triangulate(grid)
    interior = (grid > 0).all(axis=1) & (grid < 99).all(axis=1)
    target = grid.copy()
    target[interior] += rng.normal(0, 25, (interior.sum(), 2))  # wild: many triangles fold
    assert np.any(signed_areas(target, triangles) <= 0)
    scale = fold_free_scale(grid, target, triangles)
    assert 0 < scale < 1
    safe = grid + scale * (target - grid)
    assert np.all(signed_areas(safe, triangles) > 0)
    image = rng.integers(0, 255, (100, 100, 3), dtype=np.uint8)
    warped = warp_image(image, grid, safe, triangles)
    assert warped.changed.mean() > 0.5  # no holes: the moving triangles cover their area


def test_every_output_image_carries_the_label_inside_and_below(leslie_run):
    _, _, result = leslie_run
    for age in (10, 12):
        text = label_text(age)
        assert text == f"AGE PROGRESSION - APPROXIMATION, age {age}" and result.labels[age] == text
        picture = result.pictures[age]
        for image in (result.images[age], result.hair_free[age], result.overlays[age]):
            band = label_band(text, image.shape[1])
            assert np.array_equal(image[-band.shape[0] :], band)
            assert image[: -band.shape[0]].shape == picture.shape
        labelled = result.images[age][: -band.shape[0]]
        # inside the picture: the strip across its top carries the text; cropping the band off keeps it
        assert np.array_equal(labelled, with_mark(picture, text))
        strip = labelled[: band.shape[0]]
        assert not np.array_equal(strip, picture[: band.shape[0]])
        assert 0.02 < np.all(strip == 255, axis=-1).mean() < 0.5
        assert np.array_equal(labelled[band.shape[0] :], picture[band.shape[0] :])
        # legible: solid band with a good share of text pixels
        assert np.all(band[:2] == BAND_COLOUR)
        assert 0.02 < np.all(band == TEXT_COLOUR, axis=-1).mean() < 0.5
        assert result.meshes[age]["label"] == text
    # contact sheet: the photo then each target, each tile with its own band; the hair-free row below
    sheet = result.sheet
    height, width = result.source_rgb.shape[:2]
    tile_width = round(width * SHEET_TILE_HEIGHT / height)
    texts = ["ORIGINAL PHOTO, age 8", label_text(10), label_text(12)]
    band_height = label_band(texts[0], tile_width).shape[0]
    for row in (0, 1):
        for column, text in enumerate(texts[1:] if row else texts):
            band = label_band(text, tile_width)
            x = SHEET_GAP + column * (tile_width + SHEET_GAP)
            y = SHEET_GAP + SHEET_TILE_HEIGHT + row * (SHEET_TILE_HEIGHT + band_height + SHEET_GAP)
            assert np.array_equal(sheet[y : y + band.shape[0], x : x + tile_width], band), (row, text)


def test_the_label_cannot_be_replaced_dropped_or_format_injected(frontal):
    rgb, _ = frontal["leslie-2.jpg"]
    photo = png(rgb)
    for note, expected in (
        ("DRAFT ONLY", f"{APPROXIMATION_LABEL}, age 11 - DRAFT ONLY"),
        ("", f"{APPROXIMATION_LABEL}, age 11"),
        (None, f"{APPROXIMATION_LABEL}, age 11"),
        ("{age:>200000}", f"{APPROXIMATION_LABEL}, age 11 - {{age:>200000}}"),
        ("{0} {age} %s", f"{APPROXIMATION_LABEL}, age 11 - {{0}} {{age}} %s"),
        ("  case\n\t 7  ", f"{APPROXIMATION_LABEL}, age 11 - case 7"),
    ):
        started = time.perf_counter()
        result = from_bytes(photo, 9, "u", [11], label_note=note)
        assert time.perf_counter() - started < 5, note
        assert result.labels[11] == expected
        band = label_band(expected, rgb.shape[1])
        assert np.array_equal(result.images[11][-band.shape[0] :], band)
        assert Image.open(io.BytesIO(result.to_files()["age-11.png"])).text[PNG_LABEL_KEY] == expected
    for bad in ("x" * 61, "null\x00byte", 42):
        with pytest.raises(AgeProgressionError) as error:
            from_bytes(photo, 9, "u", [11], label_note=bad)
        assert error.value.code == "invalid_parameter"
    with pytest.raises(TypeError):
        from_bytes(photo, 9, "u", [11], label="MY OWN LABEL, age {age}")


# --- the core and its edge --------------------------------------------------------------------------------------


def test_the_core_takes_an_array_and_a_mesh(frontal):
    """agepro neither decodes nor detects: the decoded pixels and their mesh give exactly what the bytes edge gives."""
    import hashlib

    rgb, points = frontal["leslie-2.jpg"]
    data = png(rgb)
    via_bytes = from_bytes(data, 9, "u", [11, 13])
    face = ChosenFace(0, only_face(rgb).box, 1)
    core = age_progression(rgb, points, 9, "u", [11, 13], source_sha256=hashlib.sha256(data).hexdigest(), face=face)
    for age in (11, 13):
        assert np.array_equal(core.images[age], via_bytes.images[age])
        assert np.array_equal(core.hair_free[age], via_bytes.hair_free[age])
        assert np.array_equal(core.overlays[age], via_bytes.overlays[age])
        assert core.meshes[age] == via_bytes.meshes[age]
    assert np.array_equal(core.sheet, via_bytes.sheet)
    del core.provenance["created_utc"], via_bytes.provenance["created_utc"]
    assert core.provenance == via_bytes.provenance


def test_agepro_imports_no_decoding_or_detection():
    import ast

    import agepro

    imported = set()
    for path in Path(agepro.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
    assert {m for m in imported if m.split(".")[0] in {"imaging", "biometrics", "workers"}} == {"biometrics.topology"}


# --- files, provenance, family ----------------------------------------------------------------------------------


def test_files_and_provenance(leslie_run):
    import hashlib

    photo, relative, result = leslie_run
    files = result.to_files()
    kinds = (("age", "png"), ("face", "png"), ("overlay", "png"), ("mesh", "json"))
    expected = {f"{kind}-{age}.{ext}" for age in (10, 12) for kind, ext in kinds}
    assert set(files) == expected | {"sheet.png", "provenance.json"}
    decoded = Image.open(io.BytesIO(files["age-12.png"]))
    assert decoded.format == "PNG" and decoded.size == result.images[12].shape[1::-1]
    mesh = json.loads(files["mesh-12.json"])
    assert len(mesh["points"]) == 478 and mesh["target_age"] == 12
    assert np.allclose(mesh["points"], result.progressions[12].target_points, atol=0.01)

    digest = hashlib.sha256(files["provenance.json"]).hexdigest()
    for name in (n for n in files if n.endswith(".png")):
        text = Image.open(io.BytesIO(files[name])).text
        assert text[PNG_PROVENANCE_KEY] == digest and APPROXIMATION_LABEL in text[PNG_LABEL_KEY], name
    provenance = json.loads(files["provenance.json"])
    assert provenance["input"]["sha256"] == hashlib.sha256(photo).hexdigest()
    assert provenance["face_index"] == 0 and provenance["sex"] == "female" and provenance["age"] == 8
    assert provenance["target_ages"] == [10, 12]
    assert provenance["growth_table"]["version"] == GROWTH_TABLE_VERSION
    assert [s["id"] for s in provenance["growth_table"]["sources"]] == [s["id"] for s in GROWTH_SOURCES]
    assert provenance["parameters"] == {"family_weight": 0.25, "appearance_weight": DEFAULT_APPEARANCE_WEIGHT,
                                        "label_note": "", "prepare_old_photo": False}
    assert provenance["label"] == APPROXIMATION_LABEL and provenance["preparation"] is None
    assert provenance["code_version"]
    assert datetime.fromisoformat(provenance["created_utc"]).utcoffset().total_seconds() == 0
    assert "eyes" in provenance["method"]["held_fixed"].lower()
    (relative_entry,) = provenance["family"]
    assert relative_entry["sha256"] == hashlib.sha256(relative).hexdigest()
    assert relative_entry["relation"] == "father" and relative_entry["sex_assumed_from_relation"] == "male"
    weight = DEFAULT_APPEARANCE_WEIGHT
    assert relative_entry["appearance"] == {"skin tone and texture": weight, "nose": weight, "mouth": weight,
                                            "jaw and chin": weight, "eyes and brows": 0.0}
    target = provenance["targets"]["12"]
    assert target["appearance_peak_share"] == pytest.approx(DEFAULT_APPEARANCE_WEIGHT, rel=0.01)
    assert target["family_shares"] == {"father (age 30)": 0.25} and target["model_share"] == 0.75
    assert target["model_factors"]["lower_third"] == pytest.approx(growth("f", 8, 12).lower_third)


def test_family_weight_moves_the_target_toward_the_relative(frontal):
    rgb, points = frontal["leslie-2.jpg"]
    _, relative_points = frontal["obama-2.jpg"]
    relative = FamilyReference("father", 25, Proportions.measure(relative_points))
    results = {
        w: progress(rgb, points, ProgressionPlan(sex="f", age=8, target_age=14, family=(relative,), family_weight=w))
        for w in (0.0, 0.25, 1.0)
    }
    model = growth("f", 8, 14)
    assert results[0.0].applied_factors["lower_third"] == model.lower_third and results[0.0].family_shares == {}
    back_to_14 = growth("m", 25, 14)  # the father's proportions carried back to the target age
    family_ratio = relative.proportions.lower_to_middle * back_to_14.lower_third / back_to_14.middle_third
    ratios = [results[w].predicted.lower_to_middle for w in (0.0, 0.25, 1.0)]
    assert ratios[2] == pytest.approx(family_ratio, rel=1e-6)  # all the way to the relative
    assert abs(ratios[1] - family_ratio) < abs(ratios[0] - family_ratio)  # a quarter of the way, in log space
    assert np.log(ratios[1] / ratios[0]) == pytest.approx(0.25 * np.log(family_ratio / ratios[0]), rel=1e-6)
    assert results[1.0].family_shares == {"father (age 25)": 1.0}


# --- relatives' appearance, hair-free variant, old photos ---------------------------------------------------------

# (child stand-in, relative stand-in): different people, as a child and a parent are (bench.agepro: six pairs).
APPEARANCE_PAIRS = (("leslie-2.jpg", "miranda-1.png"), ("obama-2.jpg", "biden-2.jpg"))


def embedding(rgb: np.ndarray) -> np.ndarray:
    face = only_face(rgb)
    return embed(rgb, face, face_mesh(rgb, face))


@pytest.mark.parametrize("child,relative", APPEARANCE_PAIRS)
def test_a_relatives_appearance_moves_the_face_toward_them_without_a_seam(frontal, child, relative):
    rgb, points = frontal[child]
    relative_rgb, relative_points = frontal[relative]
    progression = progress(rgb, points, ProgressionPlan(sex="u", age=8, target_age=14))
    blend = transfer_appearance(progression.image, progression.target_points, [(relative_rgb, relative_points)],
                                DEFAULT_APPEARANCE_WEIGHT)
    to_relative_without = distance(embedding(progression.image), embedding(relative_rgb))
    to_relative_with = distance(embedding(blend.image), embedding(relative_rgb))
    assert to_relative_with < to_relative_without - 0.05
    assert distance(embedding(blend.image), embedding(rgb)) < 0.6
    assert abs(seam_gradient_ratio(blend.image, blend.alpha) - 1) <= 0.1
    # the eyes and brows stay the child's; nothing outside the face changes
    target = progression.target_points
    eyes = np.zeros(rgb.shape[:2], np.uint8)
    for region in EYE_REGIONS:
        cv2.fillConvexPoly(eyes, cv2.convexHull(np.round(target[list(region)]).astype(np.int32)), 1)
    assert eyes.sum() > 500 and blend.alpha[eyes == 1].max() == 0
    assert np.array_equal(blend.image[eyes == 1], progression.image[eyes == 1])
    outline = Image.new("L", (rgb.shape[1], rgb.shape[0]), 0)
    ImageDraw.Draw(outline).polygon([tuple(target[i]) for i in FACE_OVAL], fill=1)
    outside = np.asarray(outline) == 0
    assert np.array_equal(blend.image[outside], progression.image[outside])
    assert blend.alpha.max() == pytest.approx(DEFAULT_APPEARANCE_WEIGHT, rel=0.01)


def test_seam_measure_flags_a_hard_paste(frontal):
    rgb, points = frontal["leslie-2.jpg"]
    relative_rgb, relative_points = frontal["miranda-1.png"]
    progression = progress(rgb, points, ProgressionPlan(sex="u", age=8, target_age=14))
    whole = transfer_appearance(progression.image, progression.target_points, [(relative_rgb, relative_points)], 1.0)
    inside = whole.alpha >= 0.5
    pasted = np.where(inside[..., None], np.full_like(rgb, 40), progression.image)
    assert seam_gradient_ratio(pasted, inside.astype(np.float32)) > 1.5


def test_several_relatives_are_averaged_and_each_is_recorded(frontal):
    rgb, points = frontal["leslie-2.jpg"]
    relatives = [frontal[name] for name in ("miranda-1.png", "obama-2.jpg")]
    progression = progress(rgb, points, ProgressionPlan(sex="f", age=8, target_age=14))
    both = transfer_appearance(progression.image, progression.target_points, relatives, 0.4)
    alone = [transfer_appearance(progression.image, progression.target_points, [r], 0.4) for r in relatives]
    face = both.alpha > 0.3
    spread = [np.abs(both.image[face].astype(int) - a.image[face]).mean() for a in alone]
    between = np.abs(alone[0].image[face].astype(int) - alone[1].image[face]).mean()
    assert max(spread) < 0.75 * between  # the average lies between the two

    faces = [ChosenFace(0, only_face(r).box, 1) for r, _ in relatives]
    from agepro import FamilyFace

    family = [FamilyFace(r, p, 35, relation, "0" * 64, f) for (r, p), relation, f in
              zip(relatives, ("mother", "aunt"), faces)]
    result = age_progression(rgb, points, 8, "f", [14], source_sha256="1" * 64, face=ChosenFace(0, (0, 0, 1, 1), 1),
                             family=family, appearance_weight=0.4)
    for entry in result.provenance["family"]:
        assert entry["appearance"]["nose"] == pytest.approx(0.2) and entry["appearance"]["eyes and brows"] == 0
    none = age_progression(rgb, points, 8, "f", [14], source_sha256="1" * 64, face=ChosenFace(0, (0, 0, 1, 1), 1),
                           family=family, appearance_weight=0)
    assert none.appearance == {} and all(e["appearance"] == {} for e in none.provenance["family"])


def test_hair_free_variant_shows_only_the_face_on_neutral_grey(leslie_run):
    _, _, result = leslie_run
    picture, target = result.pictures[12], result.progressions[12].target_points
    band = label_band(result.labels[12], picture.shape[1])
    variant = result.hair_free[12][band.shape[0] : -band.shape[0]]
    outline = Image.new("L", (picture.shape[1], picture.shape[0]), 0)
    ImageDraw.Draw(outline).polygon([tuple(target[i]) for i in FACE_OVAL], fill=1)
    inside = distance_transform_edt(np.asarray(outline)) > 6
    outside = distance_transform_edt(1 - np.asarray(outline)) > 6
    assert np.all(variant[outside[band.shape[0] :]] == NEUTRAL_BACKGROUND)
    assert np.array_equal(variant[inside[band.shape[0] :]], picture[band.shape[0] :][inside[band.shape[0] :]])


def test_old_photo_preparation_restores_a_halftone_print_and_records_its_steps(frontal):
    from bench.degrade import all_four

    rgb, _ = frontal["obama-2.jpg"]
    printed = all_four(rgb)
    assert detect_faces(printed) == []  # the screen hides the face from the detector
    prepared = prepare_old_photo(printed)
    steps = {step["step"]: step for step in prepared.steps}
    assert {"descreen", "fading", "sharpen"} <= set(steps)  # the low-pass also takes most of the noise
    assert steps["descreen"]["screen_period_px"] == pytest.approx(5.0, abs=0.3)
    assert distance(embedding(prepared.rgb), embedding(rgb)) < 0.45
    # a clean photo passes unchanged (its channels use the whole range)
    clean, _ = frontal["leslie-1.jpg"]
    untouched = prepare_old_photo(clean)
    assert untouched.steps == [] and np.array_equal(untouched.rgb, clean)


def test_prepared_photo_goes_through_the_edge_into_provenance_and_sheet(frontal):
    from bench.degrade import all_four

    rgb, _ = frontal["obama-2.jpg"]
    data = png(all_four(rgb))
    with pytest.raises(AgeProgressionError) as error:
        from_bytes(data, 8, "m", [12])
    assert error.value.code == "no_face"
    result = from_bytes(data, 8, "m", [12], prepare_old_photo=True)
    assert [s["step"] for s in result.provenance["preparation"]][0] == "descreen"
    assert result.provenance["parameters"]["prepare_old_photo"] is True
    height, width = rgb.shape[:2]
    tile_width = round(width * SHEET_TILE_HEIGHT / height)
    y = SHEET_GAP + SHEET_TILE_HEIGHT
    for column, text in enumerate(["ORIGINAL PHOTO, age 8", "PREPARED PHOTO, age 8", label_text(12)]):
        x = SHEET_GAP + column * (tile_width + SHEET_GAP)
        band = label_band(text, tile_width)
        assert np.array_equal(result.sheet[y : y + band.shape[0], x : x + tile_width], band), text


# --- bad input ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def blank_png() -> bytes:
    return png(np.full((240, 320, 3), 180, np.uint8))


def error_code(call) -> str:
    with pytest.raises(AgeProgressionError) as error:
        call()
    assert error.value.message
    return error.value.code


def test_bad_input_gives_clear_errors(fixtures_dir, frontal, blank_png):
    photo = png(frontal["leslie-2.jpg"][0])
    group = (fixtures_dir / "faces" / "group-harington-leslie.jpg").read_bytes()
    assert error_code(lambda: from_bytes(blank_png, 6, "m", [10])) == "no_face"
    assert error_code(lambda: from_bytes(b"not an image", 6, "m", [10])) == "invalid_image"
    assert error_code(lambda: from_bytes(group, 6, "m", [10])) == "multiple_faces"
    assert error_code(lambda: from_bytes(group, 6, "m", [10], face_index=2)) == "face_index_out_of_range"
    assert error_code(lambda: from_bytes(photo, 10, "m", [8])) == "invalid_target_age"
    assert error_code(lambda: from_bytes(photo, 10, "m", [12, 26])) == "invalid_target_age"
    assert error_code(lambda: from_bytes(photo, 0, "m", [12])) == "invalid_age"
    assert error_code(lambda: from_bytes(photo, 30, "m", [12])) == "invalid_age"
    assert error_code(lambda: from_bytes(photo, 6, "boy", [12])) == "invalid_sex"
    assert error_code(lambda: from_bytes(photo, 6, "m", [12], family_weight=1.5)) == "invalid_parameter"
    for family in ([(blank_png, 30, "mother")], [(b"\x89PNG broken", 30, "mother")], [(photo, -3, "mother")]):
        assert error_code(lambda: from_bytes(photo, 6, "m", [12], family=family)) == "invalid_family_photo"


def test_face_index_picks_one_face_of_a_group(fixtures_dir):
    group = (fixtures_dir / "faces" / "group-harington-leslie.jpg").read_bytes()
    result = from_bytes(group, 7, "u", [9], face_index=1)
    assert result.provenance["face_index"] == 1 and result.provenance["faces_detected"] == 2


# --- CLI ------------------------------------------------------------------------------------------------------------


def test_cli_writes_the_artefacts(fixtures_dir, frontal, tmp_path, capsys):
    from fimg_service.cli import main

    photo = tmp_path / "child.png"
    photo.write_bytes(png(frontal["leslie-2.jpg"][0]))
    relative = tmp_path / "mum.png"
    relative.write_bytes(png(frontal["miranda-1.png"][0]))
    out = tmp_path / "out"
    code = main(["age", str(photo), "--age", "7", "--sex", "f", "--to", "9", "11",
                 "--family", f"{relative}:35:mother", "--family-weight", "0.3", "--out", str(out)])  # fmt: skip
    assert code == 0
    names = {p.name for p in out.iterdir()}
    assert {"age-9.png", "age-11.png", "face-9.png", "overlay-9.png", "mesh-11.json", "sheet.png",
            "provenance.json"} <= names
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["parameters"]["family_weight"] == 0.3 and provenance["family"][0]["relation"] == "mother"


def test_cli_cannot_replace_or_inject_the_label(frontal, tmp_path, capsys):
    from fimg_service.cli import main

    photo = tmp_path / "child.png"
    photo.write_bytes(png(frontal["leslie-2.jpg"][0]))
    base = ["age", str(photo), "--age", "7", "--sex", "f", "--to", "9", "--out", str(tmp_path / "out")]
    for replacing in (["--label", "MY LABEL {age}"], ["--lab", "MY LABEL"]):
        with pytest.raises(SystemExit) as exit_:
            main(base + replacing)
        assert exit_.value.code == 2 and "unrecognized arguments" in capsys.readouterr().err
    assert main(base + ["--label-note", "{age:>200000}{0}"]) == 0
    text = Image.open(tmp_path / "out" / "age-9.png").text
    assert text[PNG_LABEL_KEY] == f"{APPROXIMATION_LABEL}, age 9 - {{age:>200000}}{{0}}"
    assert text[PNG_PROVENANCE_KEY]
    assert main(base + ["--label-note", "x" * 61]) == 2
    assert "label note" in capsys.readouterr().err


def test_cli_reports_bad_input_with_exit_status_2(frontal, blank_png, tmp_path, capsys):
    from fimg_service.cli import main

    photo = tmp_path / "child.png"
    photo.write_bytes(png(frontal["leslie-2.jpg"][0]))
    blank = tmp_path / "blank.png"
    blank.write_bytes(blank_png)
    cases = {
        "invalid_target_age": [str(photo), "--age", "9", "--sex", "m", "--to", "7"],
        "no_face": [str(blank), "--age", "9", "--sex", "m", "--to", "12"],
        "invalid_family_photo": [
            str(photo), "--age", "9", "--sex", "m", "--to", "12", "--family", f"{blank}:30:father"
        ],  # fmt: skip
        "PHOTO:AGE:RELATION": [str(photo), "--age", "9", "--sex", "m", "--to", "12", "--family", "nonsense"],
        "cannot read": [str(tmp_path / "missing.jpg"), "--age", "9", "--sex", "m", "--to", "12"],
    }
    for expected, argv in cases.items():
        assert main(["age", *argv, "--out", str(tmp_path / "out")]) == 2, expected
        assert expected in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
