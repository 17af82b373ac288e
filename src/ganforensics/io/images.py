"""Safe image decoding: one function every command uses.

`read_image(path)` returns an RGB uint8 array (H, W, 3) or raises `ImageDecodeError` with a
one-line reason. Policies:

- Formats: PNG, JPEG (and MPO), WebP, BMP, TIFF, GIF (first frame). Others are rejected.
- Size: the pixel count is checked from the header before decoding; above `max_pixels`
  (default 89,478,485, Pillow's own bomb limit; env GANFORENSICS_MAX_PIXELS) the file is rejected.
- EXIF orientation is applied.
- Alpha (LA, PA, RGBA, P with transparency): `alpha="drop"` (default) keeps the colour channels as
  stored and discards alpha, so pixel values are those the generator or camera produced;
  `alpha="white"` composites over a white background instead.
- Grayscale / palette / CMYK / YCbCr / LAB are converted to RGB (grey replicated).
- 16-bit integer images are scaled by 255/65535; 32-bit integer images by the smallest of
  255, 65535 or 2**32-1 that holds their maximum; float images in [0, 1] are scaled by 255,
  other float ranges are clipped to [0, 255].
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ganforensics.errors import ImageDecodeError

SUPPORTED_FORMATS = ("PNG", "JPEG", "MPO", "WEBP", "BMP", "TIFF", "GIF")
IMAGE_EXTENSIONS = (
    ".png",
    ".jpg",
    ".jpeg",
    ".jpe",
    ".jfif",
    ".webp",
    ".bmp",
    ".tif",
    ".tiff",
    ".gif",
)
DEFAULT_MAX_PIXELS = int(os.environ.get("GANFORENSICS_MAX_PIXELS", 89_478_485))


@dataclass
class DecodedImage:
    """A decoded image with the facts the audit needs."""

    array: np.ndarray
    format: str
    mode: str
    width: int
    height: int
    has_exif: bool = False
    jpeg_qtables: dict[int, list[int]] | None = field(default=None, repr=False)


def is_image_path(path: str | os.PathLike[str]) -> bool:
    """True when the file's real (last) suffix is an image extension, case-insensitively."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _to_rgb(img: Image.Image, alpha: str) -> np.ndarray:
    mode = img.mode
    if mode == "P" or mode == "PA":
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "RGBa", "La"):
        if alpha == "white":
            rgba = img.convert("RGBA")
            bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return np.asarray(Image.alpha_composite(bg, rgba).convert("RGB"))
        return np.asarray(img.convert("RGB") if mode != "LA" else img.getchannel(0).convert("RGB"))
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img)
        if mode == "F":
            arr = arr.astype(np.float64)
            finite = arr[np.isfinite(arr)]
            if finite.size and finite.min() >= 0.0 and finite.max() <= 1.0:
                arr = arr * 255.0
            arr = np.nan_to_num(arr, nan=0.0, posinf=255.0, neginf=0.0)
        else:
            arr = arr.astype(np.float64)
            peak = arr.max() if arr.size else 0
            if mode.startswith("I;16") or 255 < peak <= 65535:
                arr = arr * (255.0 / 65535.0)
            elif peak > 65535:
                arr = arr * (255.0 / (2**32 - 1))
        gray = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img)


def read_image(
    path: str | os.PathLike[str],
    *,
    max_pixels: int | None = None,
    alpha: str = "drop",
) -> DecodedImage:
    """Decode `path` to RGB uint8 or raise `ImageDecodeError` with a one-line reason."""
    cap = DEFAULT_MAX_PIXELS if max_pixels is None else int(max_pixels)
    if alpha not in ("drop", "white"):
        raise ValueError(f"alpha must be 'drop' or 'white', not {alpha!r}")
    p = Path(path)
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        raise ImageDecodeError(p, "file not found") from None
    except OSError as exc:
        raise ImageDecodeError(p, f"cannot read file ({exc.strerror or exc})") from None
    if p.is_dir():
        raise ImageDecodeError(p, "is a folder, not an image file")
    if size == 0:
        raise ImageDecodeError(p, "empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as img:
                fmt = (img.format or "").upper()
                if fmt not in SUPPORTED_FORMATS:
                    raise ImageDecodeError(p, f"unsupported image format {fmt or 'unknown'}")
                width, height = img.size
                if width <= 0 or height <= 0:
                    raise ImageDecodeError(p, f"invalid dimensions {width}x{height}")
                if width * height > cap:
                    raise ImageDecodeError(
                        p,
                        f"image too large: {width}x{height} = {width * height:,} pixels exceeds "
                        f"the cap of {cap:,} (possible decompression bomb; raise max_pixels)",
                    )
                if getattr(img, "n_frames", 1) > 1:
                    img.seek(0)
                has_exif = bool(img.info.get("exif")) or len(img.getexif()) > 0
                qtables = getattr(img, "quantization", None) if fmt in ("JPEG", "MPO") else None
                mode = img.mode
                img.load()
                oriented = ImageOps.exif_transpose(img) if has_exif else img
                array = np.ascontiguousarray(_to_rgb(oriented, alpha), dtype=np.uint8)
    except ImageDecodeError:
        raise
    except UnidentifiedImageError:
        raise ImageDecodeError(
            p, "not a recognised image (unknown format or corrupt header)"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(p, f"image too large (decompression bomb guard: {exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "truncated" in msg.lower():
            msg = "truncated file (image data ends early)"
        raise ImageDecodeError(p, f"corrupt or truncated image data: {msg}") from None
    except MemoryError:
        raise ImageDecodeError(p, "not enough memory to decode this image") from None
    except Exception as exc:  # noqa: BLE001 - corrupt data makes Pillow's plugins raise
        # other types too (e.g. TypeError "Missing dimensions" from a TIFF's broken 2nd IFD)
        msg = str(exc).splitlines()[0] if str(exc) else ""
        raise ImageDecodeError(
            p, f"corrupt image data ({type(exc).__name__}{': ' + msg if msg else ''})"
        ) from None
    if array.ndim != 3 or array.shape[2] != 3 or array.size == 0:
        raise ImageDecodeError(p, f"decoded to an unexpected shape {array.shape}")
    return DecodedImage(
        array=array,
        format="JPEG" if fmt == "MPO" else fmt,
        mode=mode,
        width=int(array.shape[1]),
        height=int(array.shape[0]),
        has_exif=has_exif,
        jpeg_qtables={int(k): list(v) for k, v in qtables.items()} if qtables else None,
    )


def load_rgb(path: str | os.PathLike[str], **kwargs: object) -> np.ndarray:
    """Decode `path` to an (H, W, 3) uint8 array (see `read_image` for policies)."""
    return read_image(path, **kwargs).array  # type: ignore[arg-type]


def shape_batches(
    images: Sequence[np.ndarray],
    batch_size: int,
    *,
    key: Callable[[tuple[int, ...]], tuple[int, ...]] | None = None,
) -> Iterator[list[int]]:
    """Index batches of at most `batch_size` images that share a shape (or `key(shape)`).

    Groups come in order of first appearance, and indices keep input order within a group.
    """
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, im in enumerate(images):
        shape = tuple(int(d) for d in np.shape(im))
        groups.setdefault(key(shape) if key else shape, []).append(i)
    step = max(1, int(batch_size))
    for idx in groups.values():
        for start in range(0, len(idx), step):
            yield idx[start : start + step]


def image_grid(
    images: np.ndarray | Sequence[np.ndarray],
    ncol: int,
    *,
    pad: int = 2,
    fill: int = 128,
    scale: int = 1,
) -> np.ndarray:
    """Tile same-size (H, W, 3) uint8 images row by row into one image.

    `ncol` columns (fewer when there are fewer images), `pad` pixels of grey level `fill`
    between and around them, then enlarged `scale` times (nearest neighbour).
    """
    stack = np.asarray(images)
    n, h, w = stack.shape[:3]
    cols = max(1, min(int(ncol), n))
    rows = -(-n // cols)
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), fill, np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        grid[top : top + h, left : left + w] = stack[i]
    if scale > 1:
        grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
    return grid
