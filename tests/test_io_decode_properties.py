"""Property tests of the image decoder: whatever bytes sit behind an image extension, decoding
gives an RGB uint8 array or a one-line reason (an error row), never another exception."""

from __future__ import annotations

import io
import struct
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from ganforensics.errors import ImageDecodeError
from ganforensics.io import images
from ganforensics.io.images import IMAGE_EXTENSIONS, read_image
from ganforensics.io.loading import load_images

SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
SMALL_CAP = 1_000_000
"""Pixel cap for these tests, so a mutated header that claims a huge size stays cheap."""


def _encoded(fmt: str) -> bytes:
    rng = np.random.default_rng(7)
    img = Image.fromarray(rng.integers(0, 256, (12, 10, 3), np.uint8))
    if fmt == "GIF":
        img = img.convert("P")
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


VALID = {fmt: _encoded(fmt) for fmt in ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")}
SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif",
          "WEBP": ".webp"}


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid small image file with some bytes flipped, cut off or inserted."""
    fmt = draw(st.sampled_from(sorted(VALID)))
    data = bytearray(VALID[fmt])
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "header"]))
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[pos] = draw(st.integers(0, 255))
        elif kind == "header":  # the size and type fields live in the first bytes
            data[min(pos, 40)] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[pos:]
        else:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
    return SUFFIX[fmt], bytes(data)


def _check_decode(suffix: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp, mock.patch.object(
        images, "DEFAULT_MAX_PIXELS", SMALL_CAP
    ):
        path = Path(tmp) / f"x{suffix}"
        path.write_bytes(data)
        try:
            dec = read_image(path)
        except ImageDecodeError as exc:
            assert exc.reason and "\n" not in exc.reason
            decoded = False
        else:
            arr = dec.array
            assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3
            assert arr.shape[:2] == (dec.height, dec.width) and arr.size > 0
            decoded = True
        loaded = load_images([path], quiet=True)  # the batch path agrees with read_image
        assert len(loaded.images) == int(decoded) and loaded.n_bad == int(not decoded)
        if not decoded:
            assert loaded.errors[0][0] == str(path) and "\n" not in loaded.errors[0][1]


@SETTINGS
@given(suffix=st.sampled_from(IMAGE_EXTENSIONS), data=st.binary(max_size=2048))
def test_arbitrary_bytes_decode_or_give_a_reason(suffix: str, data: bytes) -> None:
    _check_decode(suffix, data)


@SETTINGS
@given(case=mutated())
def test_mutated_images_decode_or_give_a_reason(case: tuple[str, bytes]) -> None:
    _check_decode(*case)


@pytest.mark.parametrize("fmt", sorted(VALID))
def test_the_unmutated_images_decode(fmt: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"x{SUFFIX[fmt]}"
        path.write_bytes(VALID[fmt])
        assert read_image(path).array.shape == (12, 10, 3)


def test_tiff_with_a_broken_second_ifd_is_an_error_row(tmp_path: Path) -> None:
    """Found by the mutation test: Pillow raised TypeError("Missing dimensions"), which
    `read_image` let through (a traceback in `data scan` and `data audit`)."""
    data = bytearray(VALID["TIFF"])
    first = struct.unpack_from("<I", data, 4)[0]
    next_ifd_at = first + 2 + 12 * struct.unpack_from("<H", data, first)[0]
    struct.pack_into("<I", data, next_ifd_at, len(data))  # a 2nd IFD without width/height
    data += struct.pack("<H", 1) + struct.pack("<HHII", 259, 3, 1, 1) + struct.pack("<I", 0)
    path = tmp_path / "x.tif"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageDecodeError, match="Missing dimensions"):
        read_image(path)
    assert load_images([path], quiet=True).n_bad == 1
