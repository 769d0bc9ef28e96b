"""Recall of image matching under the edits tipline images arrive with, and false matches between distinct images.

Modelled on the benchmarking method of Thorn's `perception` library: distinct images, a family of parametrised
transforms (FAMILY: 17 classes, a few parameters each, and combinations of two), each transformed image looked
up against a bank holding every original; recall per transform at the operating threshold, and every match to
another image's record counted as a false match (every original and every transformed image against every
other image's record). The closest distance to another image's record, over every probe and stored variant, is
printed as the margin behind "no false match".

Two pipelines, in the same run, on the same pixels:
- reference: plain PDQ by Meta's C++ (`pdqhash`), distance <= 31, query quality >= 50;
- ours: the service's path, `imaging.robust` bank and query variants through `imaging.matching.BankMatcher`.
Lookup cost (`lookup_cost`): time per query of one plain PDQ lookup in a `HammingIndex` of --records rows
against the robust lookup (the benchmark's mean probes per query) in an index of --records x the mean bank
hashes per record. The last line's ratio is the warm (back-to-back) one; the cold one is printed above it.

Images: the distinct photos among the shared fixtures (DISTINCT), each scaled to at most 1024 pixels.
Run: python -m bench.robustness [--records N] [--images N] [--workers N] [--classes C...]
(about 10 minutes on 2 idle cores; --classes and --images for quick runs)
"""
from __future__ import annotations

import argparse
import ctypes
import io
import math
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pdqhash
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

from imaging.index import HammingIndex
from imaging.matching import VARIANT_THRESHOLD, BankEntry, BankMatcher, QueryHashes, image_query
from imaging.pdq import PDQ_MIN_QUALITY, PDQ_THRESHOLD, pdq
from imaging.regions import (REGION_KIND, REGION_THRESHOLD, REGIONS_NEEDED, SMALL_QUERY_REGION_THRESHOLD,
                             searched_regions)
from imaging.robust import bank_variants

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
# Distinct pictures only: bridge-mods/* and the dih/ and modes/ copies are edits of aaa-orig; faces/obama-240p is
# obama-1 pillarboxed, obama-partial a crop of it, odd-32bit a copy of obama-2; rgb.jpeg is noise, the other
# misc-images and labelme q0003/q0004 are below quality 50.
DISTINCT = [
    "pdq/bridge-mods/aaa-orig.jpg", "pdq/reg-test/pen-and-coaster.png", "pdq/misc-images/c.png",
    "pdq/reg-test/exif-rotn/exif-rotn-1.jpg",
    *(f"pdq/reg-test/labelme-subset/q{n}.jpg" for n in ("0122", "0291", "0746", "1050", "2821")),
    *(f"faces/{name}" for name in (
        "biden-1.jpg", "biden-2.jpg", "group-harington-leslie.jpg", "group-obama-biden.jpg", "group-two-people.jpg",
        "harington-1.jpg", "harington-2.jpg", "harington-3.jpg", "lacamoire-1.jpg", "lacamoire-2.jpg",
        "lacamoire-3.png", "leslie-1.jpg", "leslie-2.jpg", "miranda-1.png", "obama-1.jpg", "obama-2.jpg",
        "obama-3.jpg", "obama-4.jpg")),
]
# group-two-people is a collage of crops of obama-3 and biden-1 (the same two photographs): region hashes find
# them in it, which is a true finding, so matches between these are reported apart and not counted as false.
# misc-images/c.png and pen-and-coaster photograph the same printed coaster, turned differently: its squares
# in one are near those of the other's turned copies (28 bits), a true finding too.
RELATED = {frozenset(("group-two-people", "obama-3")), frozenset(("group-two-people", "biden-1")),
           frozenset(("c", "pen-and-coaster"))}
MAX_SIDE = 1024
SEED = 20240601
LOOKUP_BLOCKS, LOOKUP_BLOCK = 25, 40
PR_SET_THP_DISABLE = 41  # linux/prctl.h


def without_huge_pages() -> None:
    """Keep this process's memory in small pages, as a bank in Ray's object store (shared memory) is: whether
    a large index gets transparent huge pages depends on how fragmented the machine's memory is, and moved the
    robust lookup by up to 2x between runs. Nothing where the kernel has no such switch."""
    try:
        ctypes.CDLL(None).prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass

Transform = Callable[[Image.Image, np.random.Generator], Image.Image]


def load(path: Path) -> Image.Image:
    image = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return image


# --- transforms -------------------------------------------------------------------------------------------------

def jpeg(quality: int) -> Transform:
    def apply(image, rng):
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality)
        return Image.open(io.BytesIO(out.getvalue())).convert("RGB")
    return apply


def resize(fx: float, fy: float | None = None) -> Transform:
    def apply(image, rng):
        w, h = image.size
        return image.resize((max(8, round(w * fx)), max(8, round(h * (fy or fx)))), Image.Resampling.BICUBIC)
    return apply


def crop(left: float, top: float, right: float, bottom: float) -> Transform:
    """Remove these fractions of the width/height from each side."""
    def apply(image, rng):
        w, h = image.size
        return image.crop((round(w * left), round(h * top), w - round(w * right), h - round(h * bottom)))
    return apply


def random_crop(low: float, high: float) -> Transform:
    """A different crop per image: each side loses a fraction drawn from [low, high]."""
    def apply(image, rng):
        return crop(*rng.uniform(low, high, 4))(image, rng)
    return apply


def pad(fraction: float, colour: tuple[int, int, int] | None) -> Transform:
    """Add `fraction` of the width/height on each side; colour None = a random colour per image."""
    def apply(image, rng):
        fill = colour or tuple(int(v) for v in rng.integers(0, 256, 3))
        w, h = image.size
        dx, dy = round(w * fraction), round(h * fraction)
        canvas = Image.new("RGB", (w + 2 * dx, h + 2 * dy), fill)
        canvas.paste(image, (dx, dy))
        return canvas
    return apply


def box_to_aspect(aspect: float, colour: tuple[int, int, int]) -> Transform:
    """Letterbox or pillarbox the image, centred, to a canvas of the given width/height ratio."""
    def apply(image, rng):
        w, h = image.size
        cw, ch = (max(w, round(h * aspect)), max(h, round(w / aspect)))
        canvas = Image.new("RGB", (cw, ch), colour)
        canvas.paste(image, ((cw - w) // 2, (ch - h) // 2))
        return canvas
    return apply


def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


WORDS = ("share", "found", "this", "photo", "online", "please", "look", "again", "posted", "today", "missing",
         "seen", "near", "station", "anyone", "know", "where", "the", "a", "is")


def _sentence(rng: np.random.Generator, words: int) -> str:
    return " ".join(rng.choice(WORDS, words))


def screenshot(page: tuple[int, int, int], ink: tuple[int, int, int], scale: float, phone: bool = False) -> Transform:
    """The image shown on a page (scaled to `scale` of the page width) with text above and below it, as a
    browser or phone screenshot captures it; `phone` adds status and navigation bars."""
    def apply(image, rng):
        page_w = 1080 if phone else 1280
        shown_w = round(page_w * scale)
        shown = image.resize((shown_w, max(8, round(image.height * shown_w / image.width))),
                             Image.Resampling.BICUBIC)
        text_h = 44
        head = 120 if phone else 90
        page_h = head + 3 * text_h + shown.height + 4 * text_h + 40
        canvas = Image.new("RGB", (page_w, page_h), page)
        draw = ImageDraw.Draw(canvas)
        if phone:
            draw.rectangle((0, 0, page_w, 60), fill=(20, 20, 20))
            draw.text((30, 14), "12:41", fill=(240, 240, 240), font=_font(30))
            draw.rectangle((0, page_h - 70, page_w, page_h), fill=(20, 20, 20))
        else:
            draw.rectangle((0, 0, page_w, 50), fill=(222, 225, 230))
            draw.text((20, 12), "https://example.org/post/" + str(rng.integers(1e6)), fill=(60, 60, 60),
                      font=_font(22))
        y = head
        draw.text((40, y), _sentence(rng, 5).title(), fill=ink, font=_font(34))
        y += 2 * text_h
        draw.text((40, y), _sentence(rng, 9), fill=ink, font=_font(26))
        y += text_h
        x = int(rng.integers(0, page_w - shown_w + 1)) if not phone else (page_w - shown_w) // 2
        canvas.paste(shown, (x, y))
        y += shown.height + 16
        for _ in range(3):
            draw.text((40, y), _sentence(rng, 10), fill=ink, font=_font(26))
            y += text_h
        return canvas
    return apply


def rotate(degrees: float, fill: tuple[int, int, int] = (0, 0, 0)) -> Transform:
    def apply(image, rng):
        return image.rotate(degrees, resample=Image.Resampling.BICUBIC, fillcolor=fill)
    return apply


def signed_angle(rng: np.random.Generator, low: float, high: float) -> float:
    """A turn drawn from [low, high] degrees, either way."""
    return float(rng.uniform(low, high) * rng.choice([-1, 1]))


def random_rotate(low: float, high: float) -> Transform:
    def apply(image, rng):
        return rotate(signed_angle(rng, low, high))(image, rng)
    return apply


def turn_canvas(degrees: float, fill: tuple[int, int, int] = (0, 0, 0)) -> Transform:
    """A turn with the canvas expanded to hold the whole picture, the corners filled (phone editors' and most
    libraries' default)."""
    def apply(image, rng):
        return image.rotate(degrees, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=fill)
    return apply


def random_turn_canvas(low: float, high: float) -> Transform:
    def apply(image, rng):
        fill = (BLACK, WHITE)[int(rng.integers(2))]
        return turn_canvas(signed_angle(rng, low, high), fill)(image, rng)
    return apply


def straighten(degrees: float) -> Transform:
    """A turn cropped to the largest centred rectangle of the picture's own shape that holds no canvas, as a
    photo editor's straighten tool does."""
    def apply(image, rng):
        w, h = image.size
        angle = math.radians(abs(degrees))
        scale = 1 / (math.cos(angle) + math.sin(angle) * max(w / h, h / w))
        cw, ch = round(w * scale), round(h * scale)
        turned = image.rotate(degrees, resample=Image.Resampling.BICUBIC)
        return turned.crop(((w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch))
    return apply


def random_straighten(low: float, high: float) -> Transform:
    def apply(image, rng):
        return straighten(signed_angle(rng, low, high))(image, rng)
    return apply


def one_side(low: float, high: float) -> Transform:
    """A crop of a fraction drawn from [low, high] off one side drawn at random."""
    def apply(image, rng):
        sides = [0.0] * 4
        sides[int(rng.integers(4))] = float(rng.uniform(low, high))
        return crop(*sides)(image, rng)
    return apply


def shrink_to(side: int) -> Transform:
    """Scaled down to `side` pixels on the longer side (a thumbnail, a chat preview)."""
    def apply(image, rng):
        scale = side / max(image.size)
        return image.resize((max(8, round(image.width * scale)), max(8, round(image.height * scale))),
                            Image.Resampling.LANCZOS)
    return apply


def dihedral(op: Image.Transpose) -> Transform:
    return lambda image, rng: image.transpose(op)


def enhance(kind: type, factor: float) -> Transform:
    return lambda image, rng: kind(image).enhance(factor)


def gamma(value: float) -> Transform:
    table = [round(255 * (i / 255) ** value) for i in range(256)] * 3
    return lambda image, rng: image.point(table)


def blur(fraction: float) -> Transform:
    """Gaussian blur with a radius of `fraction` of the longer side."""
    return lambda image, rng: image.filter(ImageFilter.GaussianBlur(fraction * max(image.size)))


def noise(sigma: float) -> Transform:
    def apply(image, rng):
        pixels = np.asarray(image, np.float32) + rng.normal(0, sigma, (image.height, image.width, 3))
        return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    return apply


def caption(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Meme-style white text with a black outline at the top and the bottom."""
    out = image.copy()
    draw = ImageDraw.Draw(out)
    size = max(10, image.height // 10)
    for y in (size // 3, image.height - size - size // 2):
        draw.text((image.width // 20, y), _sentence(rng, 3).upper(), fill="white", font=_font(size),
                  stroke_width=max(1, size // 12), stroke_fill="black")
    return out


def watermark(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A half-transparent logo (a ring and a word) in the lower right corner, 20% of the width."""
    out = image.convert("RGBA")
    layer = Image.new("RGBA", out.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    size = image.width // 5
    x0, y0 = image.width - size - image.width // 30, image.height - size // 2 - image.height // 30
    draw.ellipse((x0, y0, x0 + size // 2, y0 + size // 2), outline=(255, 255, 255, 140), width=max(2, size // 20))
    draw.text((x0 + size // 2 + 4, y0 + size // 8), "LOGO", fill=(255, 255, 255, 140), font=_font(max(8, size // 5)))
    return Image.alpha_composite(out, layer).convert("RGB")


def sticker(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """An opaque yellow disc (an emoji sticker) over 5% of the picture, somewhere off-centre."""
    out = image.copy()
    radius = round(math.sqrt(0.05 * image.width * image.height / math.pi))
    cx = int(rng.integers(radius, max(radius + 1, image.width - radius)))
    cy = int(rng.integers(radius, max(radius + 1, image.height - radius)))
    ImageDraw.Draw(out).ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=(250, 200, 40))
    return out


def then(*steps: Transform) -> Transform:
    def apply(image, rng):
        for step in steps:
            image = step(image, rng)
        return image
    return apply


def user_handle(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A small line of text (a user name and a date) in the lower left corner, as platforms stamp them."""
    out = image.copy()
    size = max(8, image.height // 30)
    ImageDraw.Draw(out).text((image.width // 40, image.height - 2 * size), "@user" + str(rng.integers(1e4)) + " 2024",
                             fill="white", font=_font(size), stroke_width=1, stroke_fill="black")
    return out


def to_aspect(aspect: float) -> Transform:
    """Crop, centred, to the given width/height ratio (what platforms do for square and portrait feeds)."""
    def apply(image, rng):
        w, h = image.size
        cw, ch = min(w, round(h * aspect)), min(h, round(w / aspect))
        return image.crop(((w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch))
    return apply


def grayscale(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    return image.convert("L").convert("RGB")


WHITE, BLACK, GREY = (255, 255, 255), (0, 0, 0), (128, 128, 128)
PAGE = screenshot(WHITE, (30, 30, 30), 0.7)
MIRROR = dihedral(Image.Transpose.FLIP_LEFT_RIGHT)
CENTRE_5 = crop(0.05, 0.05, 0.05, 0.05)

# Classes of the family, a few parameters each; `CLASSES` maps every transform to its class for the summary.
FAMILY: dict[str, dict[str, Transform]] = {
    "jpeg": {f"jpeg_q{q}": jpeg(q) for q in (90, 70, 50, 30, 15)},
    "resize": {"resize_0.5": resize(0.5), "resize_0.25": resize(0.25), "resize_1.5": resize(1.5),
               "aspect_0.75w": resize(0.75, 1.0), "aspect_0.75h": resize(1.0, 0.75), "aspect_1.33w": resize(1.33, 1.0)},
    "crop": {"crop_2.5%": crop(0.025, 0.025, 0.025, 0.025), "crop_5%": CENTRE_5, "crop_10%": crop(0.1, 0.1, 0.1, 0.1),
             "crop_to_square": to_aspect(1.0), "crop_left_10%": crop(0.1, 0, 0, 0),
             "crop_corner_10%": crop(0, 0, 0.1, 0.1), "crop_rand_1-8%": random_crop(0.01, 0.08)},
    "pad": {"pad_white_10%": pad(0.1, WHITE), "pad_black_20%": pad(0.2, BLACK), "pad_grey_5%": pad(0.05, GREY),
            "pad_rand_20%": pad(0.2, None), "letterbox_16:9": box_to_aspect(16 / 9, BLACK),
            "pillarbox_9:16": box_to_aspect(9 / 16, BLACK), "square_white": box_to_aspect(1.0, WHITE)},
    "screenshot": {"screenshot_page": PAGE, "screenshot_small": screenshot((242, 242, 242), (20, 20, 20), 0.35),
                   "screenshot_phone": screenshot(BLACK, (235, 235, 235), 0.96, phone=True)},
    "rotate": {"rotate_1": rotate(1), "rotate_-2": rotate(-2), "rotate_3": rotate(3), "rotate_-4": rotate(-4),
               "rotate_5": rotate(5), "rotate_rand_1-5": random_rotate(1, 5), "rotate_3_white": rotate(3, WHITE)},
    "dihedral": {"mirror": MIRROR, "flip_vertical": dihedral(Image.Transpose.FLIP_TOP_BOTTOM),
                 "rot90": dihedral(Image.Transpose.ROTATE_90), "rot180": dihedral(Image.Transpose.ROTATE_180),
                 "rot270": dihedral(Image.Transpose.ROTATE_270), "transpose": dihedral(Image.Transpose.TRANSPOSE)},
    "colour": {"grayscale": grayscale, "gamma_0.5": gamma(0.5), "gamma_0.75": gamma(0.75), "gamma_1.5": gamma(1.5),
               "gamma_2": gamma(2.0), "contrast_0.5": enhance(ImageEnhance.Contrast, 0.5),
               "contrast_0.75": enhance(ImageEnhance.Contrast, 0.75),
               "contrast_1.4": enhance(ImageEnhance.Contrast, 1.4), "contrast_1.8": enhance(ImageEnhance.Contrast, 1.8),
               "saturation_0": enhance(ImageEnhance.Color, 0.0), "saturation_0.5": enhance(ImageEnhance.Color, 0.5),
               "saturation_2": enhance(ImageEnhance.Color, 2.0),
               "brightness_0.7": enhance(ImageEnhance.Brightness, 0.7),
               "brightness_1.3": enhance(ImageEnhance.Brightness, 1.3)},
    "blur_noise": {"blur_0.2%": blur(0.002), "blur_0.5%": blur(0.005), "blur_1%": blur(0.01),
                   "sharpen": lambda image, rng: image.filter(ImageFilter.SHARPEN),
                   "noise_5": noise(5), "noise_10": noise(10), "noise_25": noise(25)},
    "overlay": {"caption": caption, "watermark": watermark, "user_handle": user_handle, "sticker_5%": sticker},
    "combo": {"crop_5%+jpeg_q50": then(CENTRE_5, jpeg(50)),
              "pad_white_10%+resize_0.5": then(pad(0.1, WHITE), resize(0.5)),
              "screenshot_page+jpeg_q70": then(PAGE, jpeg(70)), "mirror+crop_5%": then(MIRROR, CENTRE_5),
              "mirror+screenshot_page": then(MIRROR, PAGE), "rotate_3+jpeg_q70": then(rotate(3), jpeg(70)),
              "grayscale+letterbox": then(grayscale, box_to_aspect(16 / 9, BLACK)),
              "caption+jpeg_q50": then(caption, jpeg(50)),
              "rot90+pad_black_20%": then(dihedral(Image.Transpose.ROTATE_90), pad(0.2, BLACK)),
              "resize_0.5+jpeg_q30": then(resize(0.5), jpeg(30))},
}
FAMILY.update({
    "turn_canvas": {"turn_canvas_1": turn_canvas(1), "turn_canvas_-2": turn_canvas(-2),
                    "turn_canvas_3": turn_canvas(3), "turn_canvas_-5": turn_canvas(-5),
                    "turn_canvas_7": turn_canvas(7), "turn_canvas_-10": turn_canvas(-10),
                    "turn_canvas_2_white": turn_canvas(2, WHITE), "turn_canvas_-5_white": turn_canvas(-5, WHITE),
                    "turn_canvas_9_white": turn_canvas(9, WHITE),
                    "turn_canvas_rand_1-10": random_turn_canvas(1, 10)},
    "crop_side": {"crop_top_5%": crop(0, 0.05, 0, 0), "crop_bottom_10%": crop(0, 0, 0, 0.1),
                  "crop_right_15%": crop(0, 0, 0.15, 0), "crop_left_20%": crop(0.2, 0, 0, 0),
                  "crop_top_20%": crop(0, 0.2, 0, 0), "crop_side_rand_5-20%": one_side(0.05, 0.2)},
    "crop_asym": {"crop_asym_a": crop(0.02, 0.08, 0.12, 0.0), "crop_asym_b": crop(0.15, 0.05, 0.0, 0.1),
                  "crop_asym_c": crop(0.0, 0.12, 0.06, 0.03), "crop_asym_rand_0-15%": random_crop(0.0, 0.15)},
    "crop_mirror": {"mirror+crop_10%": then(MIRROR, crop(0.1, 0.1, 0.1, 0.1)),
                    "mirror+crop_left_10%": then(MIRROR, crop(0.1, 0, 0, 0)),
                    "mirror+crop_corner_10%": then(MIRROR, crop(0, 0, 0.1, 0.1)),
                    "mirror+crop_bottom_15%": then(MIRROR, crop(0, 0, 0, 0.15)),
                    "mirror+crop_rand_1-8%": then(MIRROR, random_crop(0.01, 0.08))},
    "crop_turn": {"crop_5%+rotate_3": then(CENTRE_5, rotate(3)), "rotate_-2+crop_5%": then(rotate(-2), CENTRE_5),
                  "straighten_3": straighten(3), "straighten_-6": straighten(-6),
                  "crop_left_10%+turn_canvas_4": then(crop(0.1, 0, 0, 0), turn_canvas(4)),
                  "crop_5%+rotate_rand_1-6": then(CENTRE_5, random_rotate(1, 6)),
                  "straighten_rand_1-6": random_straighten(1, 6)},
    "small": {"small_280+crop_5%": then(shrink_to(280), CENTRE_5),
              "small_250+crop_left_10%": then(shrink_to(250), crop(0.1, 0, 0, 0)),
              "small_200+crop_rand_1-8%": then(shrink_to(200), random_crop(0.01, 0.08)),
              "small_280+crop_10%": then(shrink_to(280), crop(0.1, 0.1, 0.1, 0.1)),
              "small_240+crop_corner_10%": then(shrink_to(240), crop(0, 0, 0.1, 0.1))},
})
TRANSFORMS: dict[str, Transform] = {name: t for members in FAMILY.values() for name, t in members.items()}
CLASSES = {name: cls for cls, members in FAMILY.items() for name in members}


# --- pipelines --------------------------------------------------------------------------------------------------

def reference_hash(rgb: np.ndarray) -> tuple[np.ndarray, int]:
    """Plain PDQ by Meta's C++ (`pdqhash`), packed to 32 bytes."""
    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb))
    return np.packbits(bits.astype(np.uint8)), int(quality)


def our_query(rgb: np.ndarray) -> QueryHashes:
    """The query the service builds for an uploaded image (as `workers.match_batch.run_item` does)."""
    return image_query(rgb)


def our_entry(name: str, rgb: np.ndarray) -> BankEntry:
    hash_value, _ = pdq(rgb)
    variants = bank_variants(rgb)
    return BankEntry(name, pdq=str(hash_value), variant_hashes=tuple((k, h) for k, h in variants if k != REGION_KIND),
                     regions=tuple(h for k, h in variants if k == REGION_KIND))


@dataclass
class Hashed:
    """Everything both pipelines need from one image: as a bank record and as queries under every transform."""

    name: str
    reference: tuple[np.ndarray, int]
    entry: BankEntry
    queries: dict[str, tuple[tuple[np.ndarray, int], QueryHashes]]


def hash_image(task: tuple[int, str, frozenset[str]]) -> Hashed:
    position, path, selected = task
    image = load(FIXTURES / path)
    rgb = np.asarray(image)
    queries = {}
    for number, (transform_name, transform) in enumerate({"original": lambda im, rng: im, **TRANSFORMS}.items()):
        if transform_name not in selected:
            continue
        rng = np.random.default_rng([SEED, position, number])
        edited = np.asarray(transform(image, rng).convert("RGB"))
        queries[transform_name] = (reference_hash(edited), our_query(edited))
    return Hashed(Path(path).stem, reference_hash(rgb), our_entry(Path(path).stem, rgb), queries)


def reference_matches(bank: np.ndarray, names: list[str], query: tuple[np.ndarray, int]) -> tuple[set[str], np.ndarray]:
    packed, quality = query
    distances = np.unpackbits(bank ^ packed, axis=1).sum(axis=1)
    found = {n for n, d in zip(names, distances) if d <= PDQ_THRESHOLD} if quality >= PDQ_MIN_QUALITY else set()
    return found, distances


@dataclass
class LookupShape:
    """What one robust lookup touches, as measured on the benchmark (means per record and per query)."""

    variants_per_record: float
    regions_per_record: float
    probes_per_query: float
    regions_per_query: float
    small_query_share: float  # of queries whose regions are looked up at SMALL_QUERY_REGION_THRESHOLD


def _queries(rng: np.random.Generator, mean: float) -> int:
    return math.floor(mean) + int(rng.random() < mean - math.floor(mean))


def lookup_cost(records: int, shape: LookupShape, seed: int) -> dict[str, float]:
    """Seconds per query of one plain PDQ lookup (one probe, d <= 31, `records` rows) and of the robust lookup as
    `BankMatcher.match` makes it: the probes against the records' own hashes (d <= 31) and against their
    variants (d <= VARIANT_THRESHOLD), the query's regions against the records' regions (d <= REGION_THRESHOLD,
    or SMALL_QUERY_REGION_THRESHOLD for the share of thumbnails among the queries), each index built in one
    `add`; uniformly random hashes stand in for a real bank.

    The two run in alternating blocks of LOOKUP_BLOCK queries and each figure is the median over the blocks, so
    that load from other processes on a shared machine falls on both alike. 'warm' runs the lookups back to
    back; 'cold' streams 64 MiB through the caches before each lookup, as decoding and hashing the query image
    does in the worker. The indexes are built in small pages (`without_huge_pages`)."""
    without_huge_pages()
    rng = np.random.default_rng(seed)

    def index_of(rows: int, radius: int) -> HammingIndex:
        index = HammingIndex(radius)
        index.add(rng.integers(0, 256, (rows, 32), dtype=np.uint8), np.arange(rows, dtype=np.int64))
        return index

    def random_hashes(count: int) -> np.ndarray:
        return rng.integers(0, 256, (count, 32), dtype=np.uint8)

    own = index_of(records, PDQ_THRESHOLD)
    variants = index_of(round(records * shape.variants_per_record), VARIANT_THRESHOLD)
    regions = index_of(round(records * shape.regions_per_record), REGION_THRESHOLD)

    def plain() -> None:
        own.search(random_hashes(1), PDQ_THRESHOLD)

    def robust() -> None:
        probes = random_hashes(max(1, _queries(rng, shape.probes_per_query)))
        own.search(probes, PDQ_THRESHOLD)
        variants.search(probes, VARIANT_THRESHOLD)
        count = _queries(rng, shape.regions_per_query)
        if count:  # as many as BankMatcher searches the index with (random rows find no record to compare)
            small = rng.random() < shape.small_query_share
            regions.search(random_hashes(searched_regions(count)),
                           SMALL_QUERY_REGION_THRESHOLD if small else REGION_THRESHOLD)

    flush = np.zeros(64 << 20, np.uint8)
    figures: dict[str, float] = {"plain_bytes": own.memory_bytes(),
                                 "robust_bytes": sum(i.memory_bytes() for i in (own, variants, regions))}
    for mode in ("warm", "cold"):
        blocks: dict[str, list[float]] = {"plain": [], "robust": [], "ratio": []}
        for _ in range(LOOKUP_BLOCKS):
            for label, lookup in (("plain", plain), ("robust", robust)):
                seconds = []
                for _ in range(LOOKUP_BLOCK):
                    if mode == "cold":
                        flush += 1
                    start = time.perf_counter()
                    lookup()
                    seconds.append(time.perf_counter() - start)
                blocks[label].append(float(np.mean(seconds)))
            blocks["ratio"].append(blocks["robust"][-1] / blocks["plain"][-1])
        for key, values in blocks.items():
            figures[f"{key}_{mode}"] = float(np.median(values))
    return figures


def related(a: str, b: str) -> bool:
    return frozenset((a, b)) in RELATED


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="bank size for the lookup-cost figure")
    parser.add_argument("--images", type=int, default=None, help="use only the first N images (quick runs)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--classes", nargs="*", choices=sorted(FAMILY), help="only these classes (quick runs)")
    args = parser.parse_args(argv)

    started = time.time()
    family = {cls: members for cls, members in FAMILY.items() if not args.classes or cls in args.classes}
    transforms = [name for members in family.values() for name in members]
    selected = frozenset(["original", *transforms])
    tasks = [(position, path, selected) for position, path in enumerate(DISTINCT[: args.images])]
    with ProcessPoolExecutor(args.workers) as pool:
        hashed = list(pool.map(hash_image, tasks))
    hashing_s = time.time() - started
    names = [h.name for h in hashed]
    reference_bank = np.stack([h.reference[0] for h in hashed])
    matcher = BankMatcher("bench", [h.entry for h in hashed])
    shape = LookupShape(
        variants_per_record=float(np.mean([len(h.entry.variant_hashes) for h in hashed])),
        regions_per_record=float(np.mean([len(h.entry.regions) for h in hashed])), probes_per_query=0.0,
        regions_per_query=0.0, small_query_share=0.0)
    whole_rows = [(h.name, value) for h in hashed
                  for value in [bytes.fromhex(h.entry.pdq), *(v.to_bytes() for _, v in h.entry.variant_hashes)]]
    rows = np.stack([np.frombuffer(v, np.uint8) for _, v in whole_rows])
    row_owner = np.array([name for name, _ in whole_rows])
    unrelated_rows = {name: np.array([n != name and not related(name, n) for n in row_owner]) for name in names}
    region_rows = {h.name: np.frombuffer(b"".join(r.to_bytes() for r in h.entry.regions), np.uint8).reshape(-1, 32)
                   for h in hashed}

    recall: dict[str, tuple[list[bool], list[bool]]] = {name: ([], []) for name in ["original", *transforms]}
    false_reference, false_ours, shared_content, kinds = [], [], set(), Counter()
    closest_reference, closest_ours, most_regions_elsewhere, probes, region_probes = 256, 256, 0, [], []
    small_queries = []
    for h in hashed:
        for transform_name, (ref_query, query) in h.queries.items():
            found, distances = reference_matches(reference_bank, names, ref_query)
            recall[transform_name][0].append(h.name in found)
            false_reference += [(transform_name, h.name, other) for other in sorted(found - {h.name})
                                if not related(h.name, other)]
            if ref_query[1] >= PDQ_MIN_QUALITY:
                closest_reference = min([closest_reference, *(d for n, d in zip(names, distances)
                                                              if n != h.name and not related(h.name, n))])
            matches = matcher.match(query)
            recall[transform_name][1].append(any(m.record_id == h.name for m in matches))
            for m in matches:
                if m.record_id != h.name:
                    if related(h.name, m.record_id):
                        shared_content.add((h.name, m.record_id))
                    else:
                        false_ours.append((transform_name, h.name, m.record_id))
            kinds.update(m.kind for m in matches if m.record_id == h.name)
            query_probes = matcher.probes(query)
            probes.append(len(query_probes))
            region_probes.append(len(query.regions))
            small_queries.append(query.region_threshold != REGION_THRESHOLD)
            if query_probes:
                packed = np.stack([np.frombuffer(p.to_bytes(), np.uint8) for _, p in query_probes])
                distances = np.unpackbits(rows[unrelated_rows[h.name]][None] ^ packed[:, None], axis=2).sum(axis=2)
                closest_ours = min(closest_ours, int(distances.min()))
            if query.regions:
                packed = np.stack([np.frombuffer(p.to_bytes(), np.uint8) for p in query.regions])
                for other, stored in region_rows.items():
                    if other != h.name and not related(h.name, other):
                        distances = np.unpackbits(stored[None] ^ packed[:, None], axis=2).sum(axis=2)
                        near = distances <= query.region_threshold
                        most_regions_elsewhere = max(most_regions_elsewhere,
                                                     min(near.any(axis=1).sum(), near.any(axis=0).sum()))
    shape.probes_per_query, shape.regions_per_query = float(np.mean(probes)), float(np.mean(region_probes))
    shape.small_query_share = float(np.mean(small_queries))

    print(f"{len(hashed)} distinct images x {len(transforms)} transforms ({len(family)} classes); "
          f"threshold {PDQ_THRESHOLD} (stored variants {VARIANT_THRESHOLD}, regions {REGION_THRESHOLD} or "
          f"{SMALL_QUERY_REGION_THRESHOLD} for thumbnails, with "
          f"{REGIONS_NEEDED} needed), quality >= {PDQ_MIN_QUALITY}")
    print(f"{'class':11s} {'transform':26s} {'reference':>9s} {'ours':>6s}")
    for transform_name, (ref_hits, our_hits) in recall.items():
        print(f"{CLASSES.get(transform_name, '-'):11s} {transform_name:26s} {np.mean(ref_hits):9.2f} "
              f"{np.mean(our_hits):6.2f}")
    print("per class (mean over its transforms):")
    for cls, members in family.items():
        print(f"  {cls:11s} reference {np.mean([np.mean(recall[t][0]) for t in members]):.2f}  "
              f"ours {np.mean([np.mean(recall[t][1]) for t in members]):.2f}")
    for label, false in (("reference", false_reference), ("ours", false_ours)):
        for transform_name, name, other in false:
            print(f"false match ({label}): {name} [{transform_name}] -> {other}")
    for name, other in sorted(shared_content):
        print(f"shared content found (not false): {name} -> {other}")
    print(f"closest whole-picture distance to another image's record: reference {closest_reference}, ours "
          f"{closest_ours} (over all probes and stored variants; matching needs <= {PDQ_THRESHOLD}, variants "
          f"<= {VARIANT_THRESHOLD}); most regions of one query near another image's regions: "
          f"{most_regions_elsewhere} (a match needs {REGIONS_NEEDED})")
    print("true matches by kind (ours): " + ", ".join(f"{k}={v}" for k, v in sorted(kinds.items())))
    print(f"hashing {hashing_s:.0f} s on {args.workers} workers; probes per query {shape.probes_per_query:.2f}, "
          f"regions per query {shape.regions_per_query:.2f}, thumbnails {shape.small_query_share:.1%}; per record "
          f"{shape.variants_per_record:.2f} variants and {shape.regions_per_record:.2f} regions besides its own hash")
    cost = lookup_cost(args.records, shape, SEED)
    for mode in ("warm", "cold"):
        print(f"lookup at {args.records} records ({mode}): plain {cost[f'plain_{mode}'] * 1e3:.2f} ms/query, "
              f"robust {cost[f'robust_{mode}'] * 1e3:.2f} ms/query, "
              f"ratio {cost[f'ratio_{mode}']:.2f} (median over {LOOKUP_BLOCKS} alternating blocks)")
    print(f"index memory per record: plain {cost['plain_bytes'] / args.records:.0f} B, "
          f"robust {cost['robust_bytes'] / args.records:.0f} B")
    recall_ref = float(np.mean([np.mean(recall[t][0]) for t in transforms]))
    recall_ours = float(np.mean([np.mean(recall[t][1]) for t in transforms]))
    hashes_per_record = 1 + shape.variants_per_record + shape.regions_per_record
    queries = sum(len(recall[t][1]) for t in transforms)
    found_ours, found_ref = (sum(int(np.sum(recall[t][side])) for t in transforms) for side in (1, 0))
    print(f"queries found: ours {found_ours} of {queries}, reference {found_ref}")
    print(f"recall_ours={recall_ours:.3f} recall_reference={recall_ref:.3f} false_matches_ours={len(false_ours)} "
          f"false_matches_reference={len(false_reference)} bank_hashes_per_record={hashes_per_record:.2f} "
          f"lookup_cost_ratio={cost['ratio_warm']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
