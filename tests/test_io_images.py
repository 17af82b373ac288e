"""Safe decoding: every supported mode and format decodes to RGB uint8; hostile files fail
with a one-line reason."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from ganforensics.errors import ImageDecodeError
from ganforensics.io.images import is_image_path, load_rgb, read_image


def _save(path, img, fmt, **kw):
    img.save(path, format=fmt, **kw)
    return path


@pytest.mark.parametrize(
    "fmt,ext",
    [
        ("PNG", "png"),
        ("JPEG", "jpg"),
        ("WEBP", "webp"),
        ("BMP", "bmp"),
        ("TIFF", "tif"),
        ("GIF", "gif"),
    ],
)
def test_formats_decode_to_rgb(tmp_path, rng, fmt, ext):
    arr = rng.integers(0, 256, (12, 17, 3), dtype=np.uint8)
    p = _save(tmp_path / f"a.{ext}", Image.fromarray(arr), fmt)
    out = load_rgb(p)
    assert out.shape == (12, 17, 3) and out.dtype == np.uint8
    if fmt in ("PNG", "BMP", "TIFF"):
        np.testing.assert_array_equal(out, arr)


def test_modes(tmp_path, rng):
    gray = rng.integers(0, 256, (8, 9), dtype=np.uint8)
    out = load_rgb(_save(tmp_path / "l.png", Image.fromarray(gray, "L"), "PNG"))
    np.testing.assert_array_equal(out[..., 0], gray)
    np.testing.assert_array_equal(out[..., 2], gray)

    rgba = rng.integers(0, 256, (8, 9, 4), dtype=np.uint8)
    rgba[..., 3] = 0
    p = _save(tmp_path / "rgba.png", Image.fromarray(rgba, "RGBA"), "PNG")
    np.testing.assert_array_equal(load_rgb(p), rgba[..., :3])  # alpha dropped, colour kept
    assert (load_rgb(p, alpha="white") == 255).all()  # fully transparent over white

    la = Image.fromarray(gray, "L").convert("LA")
    np.testing.assert_array_equal(load_rgb(_save(tmp_path / "la.png", la, "PNG"))[..., 1], gray)

    pal = Image.fromarray(rng.integers(0, 256, (8, 9, 3), dtype=np.uint8)).convert("P")
    assert load_rgb(_save(tmp_path / "p.png", pal, "PNG")).shape == (8, 9, 3)

    cmyk = Image.new("CMYK", (5, 4), (0, 255, 0, 0))
    # CMYK (0, 255, 0, 0) is magenta: R and B high, G low
    out = load_rgb(_save(tmp_path / "c.jpg", cmyk, "JPEG", quality=100))
    assert (
        out[..., 1].mean() < 40 and out[..., 0].mean() > 200 and out[..., 2].mean() > 200
    )

    g16 = (np.arange(20, dtype=np.uint16).reshape(4, 5) * 3000).astype(np.uint16)
    p16 = _save(tmp_path / "g16.png", Image.fromarray(g16), "PNG")
    out = load_rgb(p16)
    np.testing.assert_array_equal(
        out[..., 0], np.rint(g16.astype(np.float64) * 255 / 65535).astype(np.uint8)
    )

    f = np.linspace(0, 1, 20, dtype=np.float32).reshape(4, 5)
    pf = _save(tmp_path / "f.tif", Image.fromarray(f, "F"), "TIFF")
    out = load_rgb(pf)
    assert out[0, 0, 0] == 0 and out[-1, -1, 0] == 255


def test_exif_orientation_applied(tmp_path):
    arr = np.zeros((10, 20, 3), np.uint8)
    arr[:, :10] = 255  # left half white
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 CW on display
    p = tmp_path / "o.jpg"
    img.save(p, format="JPEG", exif=exif.tobytes(), quality=95)
    dec = read_image(p)
    assert dec.array.shape == (20, 10, 3)
    assert dec.has_exif


def test_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (6, 6), c) for c in [(255, 0, 0), (0, 0, 255)]]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:])
    out = load_rgb(p)
    assert out[..., 0].mean() > 200 and out[..., 2].mean() < 50


def _hostile(tmp_path):
    good = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(good, format="PNG")
    jpg = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(jpg, format="JPEG")
    files = {
        "empty.png": b"",
        "truncated.jpg": jpg.getvalue()[: len(jpg.getvalue()) // 3],
        "text.png": b"this is not an image at all\n" * 10,
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    big = Image.new("L", (1, 1))
    big.save(tmp_path / "bomb.png")
    # forge a PNG header claiming 100000 x 100000 pixels
    raw = bytearray((tmp_path / "bomb.png").read_bytes())

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    raw[8 : 8 + 25] = struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    (tmp_path / "bomb.png").write_bytes(bytes(raw))
    Image.new("RGB", (4, 4)).save(tmp_path / "x.ico", format="ICO")
    return tmp_path


@pytest.mark.parametrize(
    "name,needle",
    [
        ("empty.png", "empty"),
        ("truncated.jpg", "truncated"),
        ("text.png", "not a recognised"),
        ("bomb.png", "too large"),
        ("x.ico", "unsupported"),
        ("missing.png", "not found"),
    ],
)
def test_hostile_files_fail_cleanly(tmp_path, name, needle):
    _hostile(tmp_path)
    with pytest.raises(ImageDecodeError) as ei:
        load_rgb(tmp_path / name)
    assert needle in ei.value.reason
    assert "\n" not in str(ei.value)
    assert name in str(ei.value)


def test_pixel_cap_is_configurable(tmp_path):
    p = tmp_path / "a.png"
    Image.new("RGB", (100, 100)).save(p)
    assert load_rgb(p, max_pixels=10_000).shape == (100, 100, 3)
    with pytest.raises(ImageDecodeError, match="too large"):
        load_rgb(p, max_pixels=9_999)


def test_is_image_path_uses_real_suffix():
    assert is_image_path("a.b.PNG")
    assert is_image_path("x.tar.JPEG")
    assert not is_image_path("photo.png.txt")
