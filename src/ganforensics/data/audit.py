"""Dataset audit: what differs between real and fake images besides the forensic signal.

`audit(df)` reports, per class (real / fake) and per generator: file formats, image sizes,
estimated JPEG quality, EXIF presence; and a `warnings` list of imbalances a detector could
learn instead of generation artifacts (real JPEG vs fake PNG, different sizes, different JPEG
quality, EXIF only on one class).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

# IJG (libjpeg) standard tables, natural (row-major) order, as in Annex K of ITU T.81
IJG_LUMINANCE = np.array(
    [
        16, 11, 10, 16, 24, 40, 51, 61,
        12, 12, 14, 19, 26, 58, 60, 55,
        14, 13, 16, 24, 40, 57, 69, 56,
        14, 17, 22, 29, 51, 87, 80, 62,
        18, 22, 37, 56, 68, 109, 103, 77,
        24, 35, 55, 64, 81, 104, 113, 92,
        49, 64, 78, 87, 103, 121, 120, 101,
        72, 92, 95, 98, 112, 100, 103, 99,
    ],
    dtype=np.float64,
)  # fmt: skip
IJG_CHROMINANCE = np.array(
    [
        17, 18, 24, 47, 99, 99, 99, 99,
        18, 21, 26, 66, 99, 99, 99, 99,
        24, 26, 56, 99, 99, 99, 99, 99,
        47, 66, 99, 99, 99, 99, 99, 99,
        99, 99, 99, 99, 99, 99, 99, 99,
        99, 99, 99, 99, 99, 99, 99, 99,
        99, 99, 99, 99, 99, 99, 99, 99,
        99, 99, 99, 99, 99, 99, 99, 99,
    ],
    dtype=np.float64,
)  # fmt: skip


def ijg_table(base: np.ndarray, quality: int) -> np.ndarray:
    """The table libjpeg writes for `quality` (1..100), baseline-clamped to 1..255."""
    q = min(max(int(quality), 1), 100)
    scale = 5000 / q if q < 50 else 200 - 2 * q
    return np.clip(np.floor((base * scale + 50) / 100), 1, 255)


_CANDIDATES = {
    q: (ijg_table(IJG_LUMINANCE, q), ijg_table(IJG_CHROMINANCE, q)) for q in range(1, 101)
}


def estimate_jpeg_quality(qtables: Mapping[int, Sequence[int]] | None) -> int | None:
    """Estimate the IJG quality (1..100) that produced JPEG quantisation tables.

    The luminance table (id 0) and, when present, the first chrominance table (id 1) are
    compared with the standard IJG tables scaled for every quality; the quality with the
    smallest mean absolute difference wins (exact for libjpeg/PIL/OpenCV files, an estimate for
    cameras and other encoders with their own tables). None when there are no tables.
    """
    if not qtables:
        return None
    keys = sorted(qtables)
    lum = np.asarray(qtables[keys[0]], dtype=np.float64)
    if lum.size != 64:
        return None
    chrom = np.asarray(qtables[keys[1]], dtype=np.float64) if len(keys) > 1 else None
    if chrom is not None and chrom.size != 64:
        chrom = None
    best_q, best_err = None, np.inf
    for q, (tl, tc) in _CANDIDATES.items():
        err = float(np.abs(lum - tl).mean())
        if chrom is not None:
            err = (err + float(np.abs(chrom - tc).mean())) / 2
        if err < best_err:  # ties keep the lower quality
            best_q, best_err = q, err
    return best_q
