"""Safe image decoding: bytes or a path in, an 8-bit RGB array out, or a typed `DecodeError`.

Accepted formats: JPEG (and MPO, the multi-picture JPEG that cameras write), PNG, WEBP, GIF, BMP, TIFF.
Anything else that is an image (PDF, EPS, ICO, PSD, HEIF/AVIF, SVG, ...) is `UnsupportedFormat`; that keeps
Pillow's rarer decoders, and Ghostscript behind EPS, away from untrusted uploads.

The pixels are what the PDQ reference pipeline hashes (see shared/README.md): Pillow decodes, optionally
`ImageOps.exif_transpose`, then `convert("RGB")` at full resolution (a plain JPEG is decoded by OpenCV's
libjpeg-turbo instead, into the same pixels: `_decoded_jpeg`). That conversion clips 16-bit and float
samples above 255 rather than scaling them, and drops alpha without compositing; `notes` says so when it
happens. Animated and multi-image files give their first frame.

Limits are checked per call against the header, before any pixel is decoded; a `DecodeBudget` shared by the
calls of one request bounds the pixels they decode together. A PNG whose compressed stream ends before the
rows its header declares is `TruncatedImage`, found by inflating the stream without keeping its output (Pillow
itself fills the missing rows with black) where it is compressed more than 8:1. Pillow's own global bomb
guard (Image.MAX_IMAGE_PIXELS) is left as is; its error becomes `TooManyPixels`, and its warning, which
`DecodeLimits` supersedes, is filtered out (see `_ignore_pillow_bomb_warning`).

`check_image` says what `decode` would of a file's format and size, or refuses it as `decode` would, at a
fraction of the cost for a JPEG or PNG: what validates an upload that a worker will decode anyway.
"""

from __future__ import annotations

import io
import os
import struct
import threading
import warnings
import zlib
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ACCEPTED_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "TIFF")
_PILLOW_OPENERS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")  # Pillow's JPEG opener also yields MPO

# Formats Pillow cannot open at all, recognised by their first bytes so they are reported as unsupported
# rather than as "not an image".
_FOREIGN_SIGNATURES = {
    b"%PDF-": "PDF",
    b"%!PS": "PostScript",
    b"\x00\x00\x00\x0cjP  ": "JPEG 2000",
    b"\xff\x0a": "JPEG XL",
    b"\x00\x00\x00\x0cJXL ": "JPEG XL",
}
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis")
_ACCEPTED_SIGNATURES = {
    b"\xff\xd8\xff": "JPEG",
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}
_HIGH_BIT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")
_SWAPPING_ORIENTATIONS = (5, 6, 7, 8)  # a quarter turn, perhaps mirrored: width and height trade places

_IGNORE_BOMB_WARNING = ("ignore", None, Image.DecompressionBombWarning, None, 0)


@dataclass(frozen=True)
class DecodeLimits:
    max_bytes: int = 50 * 2**20
    max_pixels: int = 100_000_000
    max_dimension: int = 50_000


class DecodeBudget:
    """Pixels that several decodes (one request's files) may decode together; each call charges the size its
    header declares before decoding, which bounds what it can decode. Safe to share between threads."""

    def __init__(self, pixels: int):
        self.remaining = pixels
        self._lock = threading.Lock()

    def charge(self, width: int, height: int) -> None:
        with self._lock:
            if width * height > self.remaining:
                raise BudgetExceeded(
                    f"decoding {width}x{height} pixels would exceed this request's decode budget"
                    f" ({self.remaining} pixels left); send the files in smaller requests")
            self.remaining -= width * height


@dataclass(frozen=True, eq=False)
class Decoded:
    rgb: np.ndarray  # (height, width, 3) uint8, C-contiguous
    format: str
    width: int
    height: int
    mode: str  # Pillow mode of the file before conversion to RGB
    orientation: int  # EXIF orientation, 1 when absent
    frames: int
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int  # as `decode` gives the pixels: after the EXIF orientation
    height: int


class DecodeError(Exception):
    code = "decode_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EmptyFile(DecodeError):
    code = "empty_file"


class FileTooLarge(DecodeError):
    code = "file_too_large"


class TooManyPixels(DecodeError):
    code = "too_many_pixels"


class TruncatedImage(DecodeError):
    code = "truncated"


class NotAnImage(DecodeError):
    code = "not_an_image"


class UnsupportedFormat(DecodeError):
    code = "unsupported_format"


class CorruptImage(DecodeError):
    code = "corrupt"


class BudgetExceeded(DecodeError):
    code = "decode_budget_exceeded"


def decode(
    data: bytes | str | os.PathLike,
    limits: DecodeLimits = DecodeLimits(),
    exif_transpose: bool = True,
    scale_high_bit_depth: bool = False,
    budget: DecodeBudget | None = None,
) -> Decoded:
    """Decode an image safely; raises a `DecodeError` subclass for anything that is not a usable image.

    16-bit and float images are clipped to 8 bits by default, as the PDQ reference pipeline does (hashes must
    agree with it); `scale_high_bit_depth=True` scales them instead, which is what face analysis needs.
    """
    data = _bytes_within(data, limits)
    image = _open_checked(data, limits, budget)
    try:
        fast = _decoded_jpeg(data, image, exif_transpose)
        return fast if fast is not None else _decode_opened(image, limits, exif_transpose, scale_high_bit_depth)
    finally:
        image.close()


def check_image(
    data: bytes | str | os.PathLike,
    limits: DecodeLimits = DecodeLimits(),
    budget: DecodeBudget | None = None,
) -> ImageInfo:
    """What `decode` (with its defaults) would say of the image's format and size, or the `DecodeError` it would
    raise, found without decoding the pixels at full resolution where that is cheap. The checks before the pixels
    are decode's; then the image data is read through: a JPEG is decoded at 1/8 scale (DCT scaling: its whole
    entropy-coded stream is read, 1/64 of its pixels made), a PNG's stream is inflated and counted, not unfiltered,
    and the other formats are loaded as `decode` loads them. A file damaged only where this does not look (a PNG's
    bad filter bytes, say) passes here and fails in `decode`."""
    image = _open_checked(data, limits, budget, whole_png_stream=True)
    try:
        width, height = image.size
        if image.format == "PNG":
            orientation = _orientation(image, [], header_only=True)
        else:
            if image.format in ("JPEG", "MPO"):
                image.draft(None, (max(1, width // 8), max(1, height // 8)))
            _load(image, limits)
            orientation = _orientation(image, [])
        if orientation in _SWAPPING_ORIENTATIONS:
            width, height = height, width
        return ImageInfo(image.format, width, height)
    finally:
        image.close()


def _open_checked(data: bytes | str | os.PathLike, limits: DecodeLimits, budget: DecodeBudget | None,
                  whole_png_stream: bool = False) -> Image.Image:
    """The image opened, after every check that needs no pixel: the file's size, its format, the size its header
    declares, a PNG's stream length (`_check_png_stream`, of the `whole_png_stream`), and the budget charged."""
    _ignore_pillow_bomb_warning()
    data = _bytes_within(data, limits)
    image = _open(data, limits)
    try:
        _check_header_size(image.size, limits)
        if image.format == "PNG":
            _check_png_stream(data, image.size, whole=whole_png_stream)
        if budget is not None:
            budget.charge(*image.size)
    except BaseException:
        image.close()
        raise
    return image


def _bytes_within(data: bytes | str | os.PathLike, limits: DecodeLimits) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        data = _read_bounded(data, limits.max_bytes)
    data = bytes(data)
    if not data:
        raise EmptyFile("the file is empty (0 bytes)")
    if len(data) > limits.max_bytes:
        raise FileTooLarge(f"the file is {len(data)} bytes, over the limit of {limits.max_bytes} bytes")
    return data


def _decoded_jpeg(data: bytes, image: Image.Image, exif_transpose: bool) -> Decoded | None:
    """A plain JPEG (one 8-bit RGB or greyscale frame) decoded by OpenCV's libjpeg-turbo straight into an RGB
    array, or None where Pillow decodes it. The pixels are Pillow's, bit for bit (the same library, the same
    defaults: tests/test_decode.py compares them), at half Pillow's time at 12 MP, which also decodes into a
    4-byte-per-pixel image first and copies that. Only a stream that ends with its end-of-image marker takes
    this path: libjpeg fills a truncated one with grey and warns, which OpenCV does not report, while Pillow
    raises (`TruncatedImage`)."""
    if image.format != "JPEG" or image.mode not in ("RGB", "L") or not data.endswith(b"\xff\xd9"):
        return None
    rgb = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION)
    if rgb is None or rgb.shape[:2] != image.size[::-1]:
        return None
    notes: list[str] = []
    orientation = _orientation(image, notes)
    if exif_transpose and orientation != 1:
        rgb = np.ascontiguousarray(_ORIENTED[orientation](rgb))
        notes.append(f"EXIF orientation {orientation} applied")
    return Decoded(rgb=rgb, format="JPEG", width=rgb.shape[1], height=rgb.shape[0], mode=image.mode,
                   orientation=orientation, frames=1, notes=notes)


# What ImageOps.exif_transpose does to the picture for each EXIF orientation, on an (H, W, 3) array.
_ORIENTED = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 2).transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}


def _ignore_pillow_bomb_warning() -> None:
    """`DecodeLimits` supersede Pillow's DecompressionBombWarning. Warning filters are process-global, so
    this only ever adds the same ignore entry (again if something, e.g. a test runner, reset the filters),
    never removes or toggles one: concurrent calls are safe."""
    if _IGNORE_BOMB_WARNING not in warnings.filters:
        warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def _read_bounded(path: str | os.PathLike, max_bytes: int) -> bytes:
    with open(path, "rb") as file:
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise FileTooLarge(f"the file {os.fspath(path)!r} is over the limit of {max_bytes} bytes")
    return data


def _open(data: bytes, limits: DecodeLimits) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data), formats=_PILLOW_OPENERS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # the warning when run with -W error
        raise TooManyPixels(_too_many_pixels_message(limits)) from None
    except UnidentifiedImageError:
        raise _classify_unreadable(data) from None
    except MemoryError:
        raise
    except Exception as error:
        raise _load_error(error) from None


def _classify_unreadable(data: bytes) -> DecodeError:
    foreign = _foreign_format(data)
    if foreign:
        return UnsupportedFormat(f"{foreign} is not an accepted format (accepted: {', '.join(ACCEPTED_FORMATS)})")
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return CorruptImage("the file starts like a WEBP image but its header cannot be read")
    for signature, name in _ACCEPTED_SIGNATURES.items():
        if data.startswith(signature):
            return CorruptImage(f"the file starts like a {name} image but its header cannot be read")
    return NotAnImage("the file is not an image (no known image format signature)")


def _foreign_format(data: bytes) -> str | None:
    for signature, name in _FOREIGN_SIGNATURES.items():
        if data.startswith(signature):
            return name
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return "HEIF/AVIF"
    head = data[:1024].lower()
    if b"<svg" in head and b"<html" not in head:
        return "SVG"
    try:
        with Image.open(io.BytesIO(data)) as image:  # header only: names formats we refuse to decode
            return image.format
    except Exception:
        return None


def _decode_opened(image: Image.Image, limits: DecodeLimits, exif_transpose: bool, scale_high_bit_depth: bool,
                   ) -> Decoded:
    file_format, mode = image.format, image.mode
    frames = _load(image, limits)
    notes: list[str] = []
    if frames > 1:
        kind = "animated" if getattr(image, "is_animated", False) and file_format != "MPO" else "multi-image"
        notes.append(f"{kind}: {frames} frames, first frame used")
    orientation = _orientation(image, notes)
    try:
        if exif_transpose and orientation != 1:
            image = ImageOps.exif_transpose(image)
            notes.append(f"EXIF orientation {orientation} applied")
        if scale_high_bit_depth and mode in _HIGH_BIT_MODES:
            rgb = _scaled_gray_rgb(image, mode)
        else:
            # Already RGB (most JPEGs): read as is; `convert` would copy every pixel once more.
            rgb = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    except MemoryError:
        raise
    except Exception as error:
        raise CorruptImage(f"the {mode} pixels cannot be converted to RGB: {type(error).__name__}: {error}") from None
    notes.extend(_conversion_notes(mode, scale_high_bit_depth))
    return Decoded(
        rgb=rgb,
        format=file_format,
        width=rgb.shape[1],
        height=rgb.shape[0],
        mode=mode,
        orientation=orientation,
        frames=frames,
        notes=notes,
    )


def _load(image: Image.Image, limits: DecodeLimits) -> int:
    """Decode the first frame's pixels (at the scale a `draft` chose); returns how many frames the file has."""
    try:
        frames = getattr(image, "n_frames", 1)
        image.load()
    except MemoryError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise TooManyPixels(_too_many_pixels_message(limits)) from None
    except Exception as error:
        raise _load_error(error) from None
    return frames


def _check_header_size(size: tuple[int, int], limits: DecodeLimits) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise CorruptImage(f"the header declares an empty image ({width}x{height})")
    if max(width, height) > limits.max_dimension:
        raise TooManyPixels(
            f"the header declares {width}x{height} pixels; a side over {limits.max_dimension} is refused"
        )
    if width * height > limits.max_pixels:
        raise TooManyPixels(
            f"the header declares {width}x{height} = {width * height} pixels, over the limit of"
            f" {limits.max_pixels} (decompression bomb?)"
        )


_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # by colour type
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_MAX_DEFLATE_RATIO = 1032  # deflate's best case: 258 bytes from each 2-bit code
# Below this ratio the rows cost the sender about what they cost to decode, and the decode budget bounds them;
# re-inflating such streams (photographs) would add a third to their decoding time.
_CHECKED_RATIO = 8
_INFLATE_STEP = 1 << 16


def _check_png_stream(data: bytes, size: tuple[int, int], whole: bool = False) -> None:
    """TruncatedImage if the PNG's zlib stream ends before the filtered rows its header declares.

    The stream is inflated (and its output counted) only where it would expand more than `_CHECKED_RATIO`
    times; a file cut short (stream unfinished) or with a broken stream is left to Pillow, which reports both.
    With `whole`, every stream is inflated and those two are reported here: this check then stands in for
    Pillow's decoding of the rows."""
    header = _png_header(data)
    if header is None:
        return
    bit_depth, colour_type, interlaced = header
    expected = _png_filtered_size(size, _PNG_CHANNELS.get(colour_type, 4) * bit_depth, interlaced)
    parts = _png_idat(data)
    compressed_size = sum(len(part) for part in parts)
    if compressed_size * _MAX_DEFLATE_RATIO < expected:
        raise TruncatedImage(f"the image data ends early: {compressed_size} compressed bytes cannot hold the"
                             f" {expected} bytes of rows the header declares")
    if compressed_size * _CHECKED_RATIO >= expected and not whole:
        return
    try:
        produced, ended = _inflated_size(b"".join(parts), expected)
    except zlib.error as error:
        if whole:
            raise CorruptImage(f"the image data cannot be decoded: {error}") from None
        return
    if produced < expected and (ended or whole):
        raise TruncatedImage(f"the image data ends early: the compressed stream {'ends' if ended else 'is cut'}"
                             f" after {produced} of the {expected} bytes of rows the header declares")


def _inflated_size(compressed: bytes, enough: int) -> tuple[int, bool]:
    """How many bytes the zlib stream inflates to (counting stops at `enough`), and whether the stream ended;
    the output is counted and dropped, a bounded piece at a time."""
    inflater, produced, view = zlib.decompressobj(), 0, memoryview(compressed)
    pieces = [view[start:start + _INFLATE_STEP] for start in range(0, len(view), _INFLATE_STEP)] + [b""]
    for pending in pieces:
        if produced >= enough or inflater.eof:
            break
        while produced < enough and not inflater.eof:
            rows = inflater.decompress(pending, _INFLATE_STEP)
            produced += len(rows)
            pending = inflater.unconsumed_tail
            if not rows and not pending:
                break
    return produced, inflater.eof


def _png_header(data: bytes) -> tuple[int, int, int] | None:
    if len(data) < 33 or data[12:16] != b"IHDR":
        return None
    bit_depth, colour_type, _compression, _filter, interlace = struct.unpack(">BBBBB", data[24:29])
    return bit_depth, colour_type, interlace


def _png_idat(data: bytes) -> list[memoryview]:
    """The IDAT payloads (the first frame's image data), in order."""
    parts, position, view = [], 8, memoryview(data)
    while position + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        if kind == b"IDAT":
            parts.append(view[position + 8:position + 8 + length])
        elif parts or kind == b"IEND":
            break
        position += 12 + length
    return parts


def _png_filtered_size(size: tuple[int, int], bits_per_pixel: int, interlaced: int) -> int:
    """Bytes of the inflated image data: each row's filter byte and its packed pixels, per Adam7 pass if
    interlaced."""
    width, height = size
    passes = _ADAM7 if interlaced else ((0, 0, 1, 1),)
    total = 0
    for x0, y0, dx, dy in passes:
        columns, rows = (width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy
        if columns > 0 and rows > 0:
            total += rows * (1 + (columns * bits_per_pixel + 7) // 8)
    return total


def _orientation(image: Image.Image, notes: list[str], header_only: bool = False) -> int:
    try:
        # PngImageFile.getexif decodes the pixels to find an eXIf chunk after them; `header_only` reads the EXIF
        # that came before them (where the PNG specification puts it).
        exif = Image.Image.getexif(image) if header_only else image.getexif()
        orientation = exif.get(0x0112, 1)
    except Exception:
        notes.append("EXIF unreadable, orientation ignored")
        return 1
    return orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1


def _scaled_gray_rgb(image: Image.Image, mode: str) -> np.ndarray:
    """16-bit samples keep their top 8 bits; 32-bit integer and float samples are stretched from their own range."""
    samples = np.asarray(image, dtype=np.float64)
    if mode.startswith("I;16"):
        gray = samples / 257.0
    else:
        low, high = float(samples.min()), float(samples.max())
        gray = (samples - low) * (255.0 / (high - low)) if high > low else np.zeros_like(samples)
    gray = np.clip(np.rint(gray), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))


def _conversion_notes(mode: str, scaled: bool = False) -> list[str]:
    if mode in _HIGH_BIT_MODES:
        depth = "16-bit" if mode.startswith("I;16") else "32-bit"
        return [f"{depth} image scaled to 8-bit" if scaled else f"{depth} image reduced to 8-bit (values over 255 clip)"]
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return ["alpha channel dropped"]
    if mode == "CMYK":
        return ["CMYK converted to RGB without a colour profile"]
    return []


def _too_many_pixels_message(limits: DecodeLimits) -> str:
    """For images Pillow's own guard refused before we could read their size: it refuses above twice
    Image.MAX_IMAGE_PIXELS, which is over our default limit."""
    bound = min(limits.max_pixels, 2 * (Image.MAX_IMAGE_PIXELS or limits.max_pixels))
    return f"the header declares more than {bound} pixels (decompression bomb?)"


def _load_error(error: Exception) -> DecodeError:
    text = str(error)
    if isinstance(error, (OSError, EOFError)) and "truncated" in text.lower():
        return TruncatedImage(f"the image data ends early: {text}")
    return CorruptImage(f"the image data cannot be decoded: {type(error).__name__}: {text}")
