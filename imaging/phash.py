"""256-bit DCT perceptual hash (pHash), the same bits as `imagehash.phash(image, hash_size=16)`.

Steps: Pillow's 8-bit grey conversion (ITU-R 601 luma), Lanczos resize to 64x64, 2-D DCT-II along
columns then rows, the top-left 16x16 block (lowest frequencies, DC included), each bit set where the
coefficient is above the block's median. Hex is MSB first in row-major order, as imagehash prints it.

PHASH_THRESHOLD = 61 was measured on shared/fixtures/pdq (decode(..., exif_transpose=False)):
- related, 26 pairs: the 11 edits in bridge-mods/ (blur, sharpen, contrast, saturation, shrink, squash
  to a square), b.jpg and the 14 colour-mode copies in misc-images/modes/, each against
  bridge-mods/aaa-orig.jpg: 0 to 12 bits (sharpen-a-lot 12, blur-a-lot 6, the rest 0-4);
- unrelated, 120 pairs among 16 distinct pictures (the bridge, labelme-subset/*, pen-and-coaster.png,
  c.png, rgb.jpeg, LA.png, I16.png, small.jpg, wee.jpg, exif-rotn-1.jpg): 110 to 152 bits.
61 is the midpoint of the gap (12 .. 110), the largest margin to both sides. For comparison PDQ on the
same pairs gives 0-16 and >= 110. pHash is not rotation invariant: the rotated and flipped bridge
copies in reg-test/dih/ are 106-128 bits away; use `pdq_dihedral` for those.
"""

from __future__ import annotations

import numpy as np
import scipy.fftpack
from PIL import Image

from imaging.hashes import PHash

PHASH_THRESHOLD = 61

_HASH_SIDE = 16
_IMAGE_SIDE = 64


def phash(rgb: np.ndarray) -> PHash:
    """pHash of an (H, W, 3) uint8 RGB image."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"phash needs an (H, W, 3) uint8 array, got {rgb.shape} {rgb.dtype}")
    grey = Image.fromarray(rgb, "RGB").convert("L")
    pixels = np.asarray(grey.resize((_IMAGE_SIDE, _IMAGE_SIDE), Image.Resampling.LANCZOS))
    # scipy.fftpack rather than scipy.fft: same transform, and exactly imagehash's floating-point results.
    dct = scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=0), axis=1)
    low = dct[:_HASH_SIDE, :_HASH_SIDE]
    bits = (low > np.median(low)).reshape(-1)
    return PHash.from_bits(bits[::-1])
