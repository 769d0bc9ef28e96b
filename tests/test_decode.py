"""Safe decoding (every failure class, limits, modes, EXIF, animation) and digests."""

from __future__ import annotations

import csv
import hashlib
import importlib
import io
import struct
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imaging import (
    BudgetExceeded,
    CorruptImage,
    DecodeBudget,
    DecodeError,
    DecodeLimits,
    EmptyFile,
    FileTooLarge,
    ImageInfo,
    NotAnImage,
    TooManyPixels,
    TruncatedImage,
    UnsupportedFormat,
    check_image,
    decode,
    digests,
)


@pytest.fixture(scope="module")
def pdq_dir(fixtures_dir: Path) -> Path:
    return fixtures_dir / "pdq"


@pytest.fixture(scope="module")
def modes_by_path(pdq_dir: Path) -> dict[str, str]:
    with open(pdq_dir / "expected.tsv", newline="") as file:
        return {row["path"]: row["mode"] for row in csv.DictReader(file, delimiter="\t")}


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_claiming(width: int, height: int) -> bytes:
    """A 100-byte PNG whose header declares width x height RGB pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + png_chunk(b"IEND", b"")
    )


def gif_claiming(width: int, height: int) -> bytes:
    screen = b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00"
    frame = b"\x2c" + struct.pack("<HHHH", 0, 0, width, height) + b"\x00\x02\x02\x44\x01\x00"
    return screen + frame + b"\x3b"


def bmp_claiming(width: int, height: int) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info) + 16, 0, 0, 14 + len(info)) + info + b"\0" * 16


# ---------------------------------------------------------------- modes and pixels


MODE_FIXTURES = [
    *(f"misc-images/modes/{name}" for name in (
        "1.png", "CMYK.jpg", "F.webp", "HSV.webp", "I.webp", "L.png", "LA.png", "LAB.webp",
        "P.png", "PA.webp", "RGB.jpg", "RGBA.png", "YCbCr.jpg", "original.jpg",
    )),
    "misc-images/I16.png",
    "misc-images/LA.png",
]


@pytest.mark.parametrize("relative", MODE_FIXTURES)
def test_every_mode_decodes_to_contiguous_rgb8(pdq_dir, modes_by_path, relative):
    decoded = decode(pdq_dir / relative)
    assert decoded.rgb.dtype == np.uint8
    assert decoded.rgb.shape == (decoded.height, decoded.width, 3)
    assert decoded.rgb.flags.c_contiguous
    assert decoded.mode == modes_by_path[relative]
    assert decoded.frames == 1


def pillow_rgb(data: bytes) -> np.ndarray:
    """The PDQ reference pipeline's pixels: Pillow decodes, EXIF transpose, convert to RGB."""
    from PIL import ImageOps

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def jpeg_variants(fixtures_dir: Path) -> list[tuple[str, bytes]]:
    photo = Image.open(fixtures_dir / "pdq" / "misc-images" / "modes" / "original.jpg").convert("RGB")
    variants = []
    for options in ({"quality": 90}, {"quality": 40, "subsampling": 0}, {"quality": 75, "subsampling": 1},
                    {"quality": 80, "progressive": True}, {"optimize": True}):
        for mode in ("RGB", "L"):
            variants.append((f"{mode} {options}", encode(photo.convert(mode), "JPEG", **options)))
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        variants.append((f"orientation {orientation}", encode(photo.resize((301, 203)), "JPEG", exif=exif)))
    cut = variants[0][1]
    variants.append(("cut short, end marker kept", cut[: len(cut) * 2 // 3] + b"\xff\xd9"))
    return variants


def test_jpegs_decode_to_the_reference_pipelines_pixels(fixtures_dir):
    """JPEGs are decoded by OpenCV's libjpeg-turbo where they can be (twice as fast at 12 MP): the pixels must
    stay Pillow's, bit for bit, on every fixture JPEG and on every layout, greyscale, progressive, subsampling,
    EXIF orientation and a stream cut short with its end marker (both fill the rest alike)."""
    jpegs = [(str(path), path.read_bytes()) for path in sorted(fixtures_dir.rglob("*"))
             if path.suffix.lower() in (".jpg", ".jpeg")]
    assert len(jpegs) >= 40
    for name, data in jpegs + jpeg_variants(fixtures_dir):
        assert np.array_equal(decode(data).rgb, pillow_rgb(data)), name


def test_sixteen_bit_png_is_clipped_like_the_reference_and_says_so(pdq_dir):
    decoded = decode(pdq_dir / "misc-images/I16.png")
    raw = np.asarray(Image.open(pdq_dir / "misc-images/I16.png"))
    assert decoded.mode == "I;16"
    assert "16-bit image reduced to 8-bit (values over 255 clip)" in decoded.notes
    np.testing.assert_array_equal(decoded.rgb[..., 0], np.minimum(raw, 255))


def test_alpha_is_dropped_with_a_note(pdq_dir):
    decoded = decode(pdq_dir / "misc-images/LA.png")
    assert "alpha channel dropped" in decoded.notes
    np.testing.assert_array_equal(decoded.rgb[..., 0], decoded.rgb[..., 2])


def test_path_and_bytes_decode_identically(pdq_dir):
    path = pdq_dir / "misc-images/rgb.jpeg"
    from_path, from_bytes = decode(path), decode(path.read_bytes())
    np.testing.assert_array_equal(from_path.rgb, from_bytes.rgb)
    assert (from_path.format, from_path.width, from_path.height) == ("JPEG", 256, 256)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF"])
def test_accepted_formats_decode(fmt):
    image = Image.new("RGB", (40, 30), (250, 250, 250))
    decoded = decode(encode(image, fmt))
    assert (decoded.format, decoded.width, decoded.height) == (fmt, 40, 30)
    assert decoded.rgb.mean() > 240


# ---------------------------------------------------------------- EXIF orientation


def test_exif_orientation_is_applied_only_when_asked(pdq_dir):
    path = pdq_dir / "reg-test/exif-rotn/exif-rotn-6.jpg"
    stored = decode(path, exif_transpose=False)
    upright = decode(path, exif_transpose=True)
    assert stored.orientation == upright.orientation == 6
    assert (stored.width, stored.height) == (4032, 3024)
    assert (upright.width, upright.height) == (3024, 4032)
    assert "EXIF orientation 6 applied" in upright.notes
    np.testing.assert_array_equal(upright.rgb, np.rot90(stored.rgb, k=-1))


def test_orientation_defaults_to_one(pdq_dir):
    assert decode(pdq_dir / "misc-images/rgb.jpeg").orientation == 1
    assert decode(pdq_dir / "bridge-mods/aaa-orig.jpg").orientation == 1  # the file says 0, not valid


# ---------------------------------------------------------------- animation


def test_animated_gif_gives_first_frame_and_a_note():
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    frames = [Image.new("RGB", (32, 24), colour) for colour in colours]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=40, loop=0)
    decoded = decode(data)
    assert decoded.frames == 3
    assert decoded.notes == ["animated: 3 frames, first frame used"]
    assert tuple(decoded.rgb[12, 16]) == (255, 0, 0)


def test_animated_webp_gives_first_frame_and_a_note():
    frames = [Image.new("RGB", (32, 24), colour) for colour in [(250, 250, 250), (0, 0, 0)]]
    decoded = decode(encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=40))
    assert decoded.frames == 2
    assert decoded.notes == ["animated: 2 frames, first frame used"]
    assert decoded.rgb.mean() > 240


def test_camera_mpo_is_accepted_as_multi_image():
    first, second = Image.new("RGB", (40, 30), (250, 250, 250)), Image.new("RGB", (40, 30), (0, 0, 0))
    decoded = decode(encode(first, "MPO", save_all=True, append_images=[second]))
    assert (decoded.format, decoded.frames) == ("MPO", 2)
    assert decoded.notes == ["multi-image: 2 frames, first frame used"]
    assert decoded.rgb.mean() > 240


# ---------------------------------------------------------------- failure classes


def assert_refused(data, error_type: type[DecodeError], code: str, words: str, **kwargs) -> DecodeError:
    with pytest.raises(error_type) as caught:
        decode(data, **kwargs)
    assert caught.value.code == code
    assert words in str(caught.value)
    assert caught.value.message == str(caught.value)
    return caught.value


def test_zero_bytes():
    assert_refused(b"", EmptyFile, "empty_file", "the file is empty (0 bytes)")


def test_zero_byte_file(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"")
    assert_refused(path, EmptyFile, "empty_file", "empty")


@pytest.mark.parametrize("relative", ["misc-images/rgb.jpeg", "misc-images/LA.png", "reg-test/pen-and-coaster.png"])
def test_truncated_files(pdq_dir, relative):
    data = (pdq_dir / relative).read_bytes()
    assert_refused(data[: len(data) // 2], TruncatedImage, "truncated", "the image data ends early")


def test_jpeg_cut_inside_its_headers(pdq_dir):
    data = (pdq_dir / "misc-images/rgb.jpeg").read_bytes()
    assert_refused(data[:200], TruncatedImage, "truncated", "ends early")


def test_png_cut_inside_its_header(pdq_dir):
    data = (pdq_dir / "misc-images/LA.png").read_bytes()
    assert_refused(data[:30], CorruptImage, "corrupt", "starts like a PNG image but its header cannot be read")


@pytest.mark.parametrize(
    "content",
    [
        b"Just some notes about the case, saved with the wrong extension.\n",
        b"<!DOCTYPE html><html><head><title>Not found</title></head><body>404</body></html>",
        bytes(np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8)),
    ],
    ids=["text", "html", "random"],
)
def test_not_an_image_even_when_named_jpg(tmp_path, content):
    path = tmp_path / "photo.jpg"
    path.write_bytes(content)
    assert_refused(path, NotAnImage, "not_an_image", "the file is not an image")


@pytest.mark.parametrize(
    ("fmt", "name"),
    [("PDF", "PDF"), ("ICO", "ICO"), ("TGA", "TGA"), ("PPM", "PPM")],
)
def test_unsupported_formats(fmt, name):
    data = encode(Image.new("RGB", (16, 16), (10, 20, 30)), fmt)
    error = assert_refused(data, UnsupportedFormat, "unsupported_format", f"{name} is not an accepted format")
    assert "JPEG" in str(error) and "PNG" in str(error)


def test_eps_is_refused_before_ghostscript_runs():
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto showpage\n"
    assert_refused(eps, UnsupportedFormat, "unsupported_format", "PostScript is not an accepted format")


def test_heif_is_unsupported():
    heic = struct.pack(">I", 24) + b"ftypheic" + b"\0\0\0\0mif1heic"
    assert_refused(heic, UnsupportedFormat, "unsupported_format", "HEIF/AVIF is not an accepted format")


@pytest.mark.parametrize(
    "data",
    [png_claiming(60000, 60000), gif_claiming(65535, 65535), png_claiming(20000, 20000), bmp_claiming(40000, 40000)],
    ids=["png-60000x60000", "gif-65535x65535", "png-20000x20000", "bmp-40000x40000"],
)
def test_decompression_bombs_are_refused_from_the_header_quickly(data):
    assert len(data) < 200
    started = time.perf_counter()
    assert_refused(data, TooManyPixels, "too_many_pixels", "decompression bomb?")
    assert time.perf_counter() - started < 0.5


def test_pixel_limit_is_per_call():
    data = png_claiming(12000, 9000)  # 108 M pixels: under Pillow's guard, over our default limit
    expected = "12000x9000 = 108000000 pixels, over the limit of 100000000"
    assert_refused(data, TooManyPixels, "too_many_pixels", expected)
    small = encode(Image.new("RGB", (64, 64)), "PNG")
    tight = DecodeLimits(max_pixels=1000)
    assert_refused(small, TooManyPixels, "too_many_pixels", "over the limit of 1000", limits=tight)
    assert decode(small).width == 64


@pytest.mark.parametrize("size", [(60000, 1), (1, 60000)])
def test_absurd_header_dimensions(size):
    assert_refused(png_claiming(*size), TooManyPixels, "too_many_pixels", "a side over 50000 is refused")


def test_pillow_bomb_warning_never_escapes():
    data = png_claiming(10000, 9000)  # 90 M pixels: Pillow warns, our limit below refuses
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        limits = DecodeLimits(max_pixels=50_000_000)
        assert_refused(data, TooManyPixels, "too_many_pixels", "decompression bomb?", limits=limits)


def test_over_max_bytes(tmp_path, pdq_dir):
    data = (pdq_dir / "misc-images/rgb.jpeg").read_bytes()
    limits = DecodeLimits(max_bytes=1000)
    expected = f"the file is {len(data)} bytes, over the limit of 1000 bytes"
    assert_refused(data, FileTooLarge, "file_too_large", expected, limits=limits)
    path = tmp_path / "big.jpg"
    path.write_bytes(data)
    assert_refused(path, FileTooLarge, "file_too_large", "over the limit of 1000 bytes", limits=limits)


def test_corrupt_compressed_data():
    header = struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", b"\x78\x9c" + bytes(range(200)))
        + png_chunk(b"IEND", b"")
    )
    assert_refused(data, CorruptImage, "corrupt", "the image data cannot be decoded")
    with pytest.raises(CorruptImage, match="the image data cannot be decoded"):
        check_image(data)


def test_every_error_is_a_decode_error_with_a_stable_code():
    classes = [EmptyFile, FileTooLarge, TooManyPixels, TruncatedImage, NotAnImage, UnsupportedFormat, CorruptImage,
               BudgetExceeded]
    assert all(issubclass(cls, DecodeError) for cls in classes)
    assert [cls.code for cls in classes] == [
        "empty_file", "file_too_large", "too_many_pixels", "truncated", "not_an_image", "unsupported_format", "corrupt",
        "decode_budget_exceeded",
    ]


def test_a_png_whose_stream_ends_before_its_rows_is_truncated_without_decoding_them():
    """Issue 15: 9000x9000 declared, a short but properly terminated zlib stream (one row: Pillow accepts it and
    fills the other 8999 rows with black)."""
    header = struct.pack(">IIBBBBB", 9000, 9000, 8, 2, 0, 0, 0)

    def claiming_9000_square(rows: bytes) -> bytes:
        return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(rows, 9))
                + png_chunk(b"IEND", b""))

    one_row = claiming_9000_square(b"\0" * 27001)
    assert len(one_row) < 110
    started = time.perf_counter()
    assert_refused(one_row, TruncatedImage, "truncated", "cannot hold the 243009000 bytes of rows")
    assert_refused(png_claiming(9000, 9000), TruncatedImage, "truncated", "cannot hold")
    noise = np.random.default_rng(3).integers(0, 256, 400_000, dtype=np.uint8).tobytes()
    assert_refused(claiming_9000_square(noise), TruncatedImage, "truncated",
                   "stream ends after 400000 of the 243009000 bytes")
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize("layout", ["RGB", "RGBA", "L", "P", "P 4-bit", "1", "LA", "I;16", "RGB interlaced"])
def test_complete_pngs_of_every_layout_pass_the_stream_check(layout):
    image = Image.fromarray(np.random.default_rng(5).integers(0, 256, (37, 53, 3), dtype=np.uint8))
    if layout == "RGB interlaced":  # Pillow writes no Adam7 PNG
        data = adam7(image)
    elif layout == "P 4-bit":
        data = encode(image.quantize(16), "PNG", bits=4)
    else:
        data = encode(image.convert("I").convert("I;16") if layout == "I;16" else image.convert(layout), "PNG")
    decoded = decode(data)
    assert (decoded.width, decoded.height) == (53, 37)
    assert check_image(data) == ImageInfo("PNG", 53, 37), "the whole stream inflates to the rows declared"


def adam7(image: Image.Image) -> bytes:
    """An interlaced 8-bit RGB PNG of `image` (Adam7 passes, filter 0)."""
    rgb = np.asarray(image.convert("RGB"))
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
    raw = b"".join(b"\0" + row.tobytes() for x0, y0, dx, dy in passes for row in rgb[y0::dy, x0::dx]
                   if rgb[y0::dy, x0::dx].size)
    height, width = rgb.shape[:2]
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 1)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(raw))
            + png_chunk(b"IEND", b""))


def test_an_interlaced_png_short_of_its_last_pass_is_truncated():
    complete = adam7(Image.new("RGB", (64, 48), (200, 10, 10)))
    header = struct.pack(">IIBBBBB", 64, 48, 8, 2, 0, 0, 1)
    raw = zlib.decompress(complete[33 + 8:-12 - 4])
    short = (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(raw[:-200]))
             + png_chunk(b"IEND", b""))
    assert decode(complete).rgb[47, 63].tolist() == [200, 10, 10]
    assert_refused(short, TruncatedImage, "truncated", "ends after")
    assert check_image(complete) == ImageInfo("PNG", 64, 48)
    with pytest.raises(TruncatedImage, match="ends after"):
        check_image(short)


def test_a_decode_budget_is_shared_by_calls_and_charged_before_decoding():
    image = encode(Image.new("RGB", (100, 100)), "PNG")
    budget = DecodeBudget(25_000)
    decode(image, budget=budget)
    decode(image, budget=budget)
    assert budget.remaining == 5_000
    assert_refused(image, BudgetExceeded, "decode_budget_exceeded", "5000 pixels left", budget=budget)
    assert budget.remaining == 5_000
    with pytest.raises(BudgetExceeded):
        check_image(image, budget=budget)
    check_image(encode(Image.new("RGB", (50, 100)), "PNG"), budget=budget)
    assert budget.remaining == 0


# ---------------------------------------------------------------- checking an upload without decoding it


def outcome(check, data) -> tuple:
    """What `check` says of a file: its format and upright size, or the code it refuses it with."""
    try:
        result = check(data)
    except DecodeError as exc:
        return (exc.code,)
    return result.format, result.width, result.height


@pytest.mark.parametrize("relative", [*MODE_FIXTURES, "misc-images/rgb.jpeg", "reg-test/pen-and-coaster.png",
                                      *(f"reg-test/exif-rotn/exif-rotn-{n}.jpg" for n in (1, 3, 6, 8))])
def test_check_image_says_what_decode_would_of_whole_and_cut_files(pdq_dir, relative):
    data = (pdq_dir / relative).read_bytes()
    for variant in (data, data[: len(data) // 2], data[:-64], data[:200]):
        assert outcome(check_image, variant) == outcome(decode, variant)


def test_check_image_of_a_12_megapixel_photo_does_not_decode_it_at_full_size(fixtures_dir, monkeypatch):
    photo = Image.open(fixtures_dir / "faces" / "harington-1.jpg").convert("RGB").resize((4032, 3024))
    data = encode(photo, "JPEG", quality=90)
    decode_module = importlib.import_module("imaging.decode")  # the package's `decode` names the function
    loaded_sizes = []
    real_load = decode_module._load

    def recording_load(image, limits):
        frames = real_load(image, limits)
        loaded_sizes.append(image.im.size)
        return frames

    monkeypatch.setattr(decode_module, "_load", recording_load)

    assert check_image(data) == ImageInfo("JPEG", 4032, 3024)
    assert loaded_sizes == [(504, 378)]  # 1/64 of the pixels made, by DCT scaling
    with pytest.raises(TruncatedImage):
        check_image(data[:-4096])


# ---------------------------------------------------------------- digests


def test_digests_of_known_vectors():
    result = digests(b"abc")
    assert result.md5 == "900150983cd24fb0d6963f7d28e17f72"
    assert result.sha1 == "a9993e364706816aba3e25717850c26c9cd0d89d"
    assert result.sha256 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_digests_are_of_the_exact_bytes(pdq_dir):
    data = (pdq_dir / "misc-images/wee.jpg").read_bytes()
    assert digests(data).sha256 == hashlib.sha256(data).hexdigest()
    assert digests(data + b"\0").sha256 != digests(data).sha256
    assert digests(b"").md5 == "d41d8cd98f00b204e9800998ecf8427e"


def test_high_bit_depth_can_be_scaled_instead_of_clipped(fixtures_dir):
    path = fixtures_dir / "pdq" / "misc-images" / "I16.png"
    clipped = decode(path)
    scaled = decode(path, scale_high_bit_depth=True)
    assert scaled.rgb.shape == clipped.rgb.shape and scaled.rgb.dtype == np.uint8
    assert any("scaled to 8-bit" in note for note in scaled.notes)
    assert any("clip" in note for note in clipped.notes)
    assert len(np.unique(scaled.rgb)) > 16 and not np.array_equal(scaled.rgb, clipped.rgb)
