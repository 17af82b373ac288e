"""Uploaded bytes to an RGB image through the one decoder (`io.images.read_image`), or a
`Problem` with the right status: 413 over the file cap, 415 not an image (empty, unknown or
unsupported format), 422 an image that cannot be used (corrupt, truncated, over the pixel cap,
too small)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganforensics.errors import ImageDecodeError
from ganforensics.io.images import IMAGE_EXTENSIONS, read_image
from ganforensics.serve.problems import Problem
from ganforensics.serve.settings import ServeSettings

NOT_AN_IMAGE = ("empty file", "not a recognised image", "unsupported image format")
"""Starts of `read_image` reasons that mean "this is not an image" (415); the rest are 422."""


@dataclass
class Decoded:
    """A decoded upload."""

    image: np.ndarray
    sha256: str


def decode_upload(data: bytes, filename: str, settings: ServeSettings) -> Decoded:
    """Decode one upload or raise `Problem` (413 / 415 / 422) whose detail names the file."""
    name = filename or "upload"
    if len(data) > settings.max_file_bytes:
        raise Problem(413, f"{name}: {len(data):,} bytes exceeds the per-file cap of "
                           f"{settings.max_file_bytes:,} bytes")
    digest = hashlib.sha256(data).hexdigest()
    suffix = Path(name).suffix.lower()
    # read_image decodes files: the bytes go to a private temporary file for the duration
    fd, tmp = tempfile.mkstemp(prefix="gf-upload-",
                               suffix=suffix if suffix in IMAGE_EXTENSIONS else ".bin")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        decoded = read_image(tmp, max_pixels=settings.max_pixels)
    except ImageDecodeError as exc:
        status = 415 if exc.reason.startswith(NOT_AN_IMAGE) else 422
        raise Problem(status, f"{name}: {exc.reason}") from None
    finally:
        os.unlink(tmp)
    h, w = decoded.array.shape[:2]
    if min(h, w) < settings.min_side:
        raise Problem(422, f"{name}: image too small ({w}x{h}; the smallest side scored is "
                           f"{settings.min_side} px)")
    return Decoded(decoded.array, digest)
