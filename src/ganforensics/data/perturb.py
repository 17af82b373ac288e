"""Perturbations: JPEG, WebP, blur, resize, crop, noise, grayscale, and chains of them.

Primitives take and return RGB uint8 arrays (H, W, 3). Ops are written as short strings:

    jpeg:75            JPEG quality 1..100 (optional codec: jpeg:75:pil)
    webp:80            WebP quality 0..100 (lossy)
    blur:1.5           Gaussian blur, float sigma in pixels (0 = identity)
    resize:0.5         resize by a scale factor (default filter bilinear, antialiased)
    resize:0.5:bicubic filters: nearest, box, bilinear, hamming, bicubic, lanczos
    crop:224           random crop to 224x224 (crop:224x192 for height x width)
    noise:5            additive Gaussian noise, std in 0..255 units
    grayscale          L = 0.299 R + 0.587 G + 0.114 B, replicated to 3 channels

`parse_op` turns a string into an `Op`; `Op(img, image_id)` is deterministic per image: the
random choices of `crop` and `noise` use a seed derived from (image id, op string, step).
`Chain` / `apply_ops` apply several ops in order. `ganforensics.data.perturb_dataset` writes
perturbed copies of a whole manifest.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from ganforensics.errors import ConfigError, InputError
from ganforensics.seeding import DEFAULT_SEED, rng_for

RESIZE_FILTERS: dict[str, int] = {
    "nearest": Image.Resampling.NEAREST,
    "box": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "hamming": Image.Resampling.HAMMING,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
JPEG_CODECS = ("pil", "opencv")
GRAY_WEIGHTS = (0.299, 0.587, 0.114)


# ----------------------------------------------------------------------------- primitives


def _check_rgb(img: np.ndarray) -> np.ndarray:
    arr = np.asarray(img)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise InputError(
            f"perturbations take RGB uint8 arrays (H, W, 3); got {arr.dtype} {arr.shape}"
        )
    return arr


def _encode_decode(img: np.ndarray, fmt: str, **kwargs: Any) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(_check_rgb(img)).save(buf, format=fmt, **kwargs)
    buf.seek(0)
    with Image.open(buf) as dec:
        return np.asarray(dec.convert("RGB")).copy()


def jpeg(img: np.ndarray, quality: int, codec: str = "pil") -> np.ndarray:
    """JPEG-compress and decode (IJG quality 1..100; PIL's default 4:2:0 chroma subsampling)."""
    q = int(quality)
    if not 1 <= q <= 100:
        raise ConfigError(f"jpeg quality must be 1..100, not {quality}")
    if codec == "pil":
        return _encode_decode(img, "JPEG", quality=q)
    if codec == "opencv":
        try:  # optional dependency (opencv-python), needed only for this codec
            import cv2  # type: ignore[import-not-found]
        except ImportError:
            raise ConfigError(
                "jpeg codec 'opencv' needs the opencv-python package; use codec 'pil'"
            ) from None
        arr = _check_rgb(img)
        ok, enc = cv2.imencode(".jpg", arr[..., ::-1], [int(cv2.IMWRITE_JPEG_QUALITY), q])
        if not ok:  # pragma: no cover - opencv failure
            raise InputError("opencv could not JPEG-encode the image")
        return np.ascontiguousarray(cv2.imdecode(enc, cv2.IMREAD_COLOR)[..., ::-1])
    raise ConfigError(f"unknown jpeg codec {codec!r}; choose one of {', '.join(JPEG_CODECS)}")


def webp(img: np.ndarray, quality: int) -> np.ndarray:
    """Lossy WebP-compress and decode (quality 0..100)."""
    q = int(quality)
    if not 0 <= q <= 100:
        raise ConfigError(f"webp quality must be 0..100, not {quality}")
    return _encode_decode(img, "WEBP", quality=q, lossless=False)


def blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of each channel with standard deviation `sigma` pixels (0 = identity).

    Uses `scipy.ndimage.gaussian_filter` (truncate 4 sigma, mirror-reflect borders), as the
    CNNDetection augmentation does; the result is rounded to uint8.
    """
    arr = _check_rgb(img)
    s = float(sigma)
    if not np.isfinite(s) or s < 0:
        raise ConfigError(f"blur sigma must be >= 0, not {sigma}")
    if s == 0:
        return arr.copy()
    out = gaussian_filter(arr.astype(np.float32), sigma=(s, s, 0))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def resize(img: np.ndarray, scale: float, filter: str = "bilinear") -> np.ndarray:
    """Resize by `scale` with a PIL filter; downscaling is antialiased (PIL widens the kernel).

    The new size is round(W * scale) x round(H * scale), at least 1x1.
    """
    arr = _check_rgb(img)
    s = float(scale)
    if not np.isfinite(s) or s <= 0:
        raise ConfigError(f"resize scale must be > 0, not {scale}")
    if filter not in RESIZE_FILTERS:
        raise ConfigError(
            f"unknown resize filter {filter!r}; choose one of {', '.join(RESIZE_FILTERS)}"
        )
    h, w = arr.shape[:2]
    size = (max(1, round(w * s)), max(1, round(h * s)))
    if size == (w, h):
        return arr.copy()
    return np.asarray(Image.fromarray(arr).resize(size, RESIZE_FILTERS[filter]))


def _crop_hw(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        h = w = int(size)
    else:
        h, w = (int(v) for v in size)
    if h <= 0 or w <= 0:
        raise ConfigError(f"crop size must be positive, not {size}")
    return h, w


def crop(
    img: np.ndarray, size: int | Sequence[int], rng: np.random.Generator | None = None
) -> np.ndarray:
    """Crop to `size` (int or (height, width)): at a random position drawn from `rng`, or the
    centre when `rng` is None. An image smaller than `size` raises `InputError`."""
    arr = _check_rgb(img)
    ch, cw = _crop_hw(size)
    h, w = arr.shape[:2]
    if h < ch or w < cw:
        raise InputError(f"image {w}x{h} is smaller than the crop {cw}x{ch}")
    if rng is None:
        top, left = (h - ch) // 2, (w - cw) // 2
    else:
        top = int(rng.integers(0, h - ch + 1))
        left = int(rng.integers(0, w - cw + 1))
    return arr[top : top + ch, left : left + cw].copy()


def noise(img: np.ndarray, std: float, rng: np.random.Generator | None = None) -> np.ndarray:
    """Add Gaussian noise of standard deviation `std` (0..255 units); round and clip to uint8.

    `rng` None uses a generator seeded with `DEFAULT_SEED` (deterministic).
    """
    arr = _check_rgb(img)
    s = float(std)
    if not np.isfinite(s) or s < 0:
        raise ConfigError(f"noise std must be >= 0, not {std}")
    if s == 0:
        return arr.copy()
    gen = rng if rng is not None else np.random.default_rng(DEFAULT_SEED)
    out = arr.astype(np.float32) + gen.normal(0.0, s, size=arr.shape).astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def grayscale(img: np.ndarray) -> np.ndarray:
    """Luma L = 0.299 R + 0.587 G + 0.114 B (rounded), replicated to 3 channels, uint8."""
    arr = _check_rgb(img).astype(np.float32)
    lum = arr @ np.asarray(GRAY_WEIGHTS, dtype=np.float32)
    gray = np.clip(np.rint(lum), 0, 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


# ----------------------------------------------------------------------------- op strings


def _fmt_num(v: Any) -> str:
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else repr(v)
    return str(v)


def _num(op: str, text: str, kind: type, what: str) -> Any:
    try:
        val = kind(text)
    except ValueError:
        raise ConfigError(
            f"bad perturbation {op!r}: {what} must be {'an integer' if kind is int else 'a number'}"
            f", not {text!r}"
        ) from None
    if kind is float and not np.isfinite(val):
        raise ConfigError(f"bad perturbation {op!r}: {what} must be finite, not {text!r}")
    return val


@dataclass(frozen=True)
class _Spec:
    params: tuple[tuple[str, type, Any], ...]  # (name, type, default or _REQUIRED)
    fn: Callable[..., np.ndarray]
    random: bool = False


_REQUIRED = object()

OP_SPECS: dict[str, _Spec] = {
    "jpeg": _Spec((("quality", int, _REQUIRED), ("codec", str, "pil")), jpeg),
    "webp": _Spec((("quality", int, _REQUIRED),), webp),
    "blur": _Spec((("sigma", float, _REQUIRED),), blur),
    "resize": _Spec((("scale", float, _REQUIRED), ("filter", str, "bilinear")), resize),
    "crop": _Spec((("size", str, _REQUIRED),), crop, random=True),
    "noise": _Spec((("std", float, _REQUIRED),), noise, random=True),
    "grayscale": _Spec((), grayscale),
}
OP_SYNTAX = (
    "jpeg:Q[:pil|opencv], webp:Q, blur:SIGMA, resize:SCALE[:FILTER], crop:N or crop:HxW, "
    "noise:STD, grayscale"
)


@dataclass(frozen=True)
class Op:
    """One perturbation with its parameters; `str(op)` gives the canonical op string."""

    name: str
    params: dict[str, Any] = field(default_factory=dict, hash=False)

    def __str__(self) -> str:
        spec = OP_SPECS[self.name]
        parts = [self.name]
        values = [self.params[p] for p, _, _ in spec.params]
        # drop trailing parameters equal to their default
        while values and spec.params[len(values) - 1][2] is not _REQUIRED and (
            values[-1] == spec.params[len(values) - 1][2]
        ):
            values.pop()
        parts += [_fmt_num(v) for v in values]
        return ":".join(parts)

    def __hash__(self) -> int:
        return hash(str(self))

    def apply(self, img: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Apply with an explicit generator (used only by crop and noise)."""
        spec = OP_SPECS[self.name]
        kwargs = dict(self.params)
        if self.name == "crop":
            kwargs["size"] = _parse_crop_size(str(self), str(kwargs["size"]))
        if spec.random:
            kwargs["rng"] = rng
        return spec.fn(img, **kwargs)

    def __call__(self, img: np.ndarray, image_id: object, step: int = 0) -> np.ndarray:
        """Apply deterministically: the seed is derived from (image_id, str(op), step)."""
        rng = rng_for("perturb", image_id, str(self), step) if OP_SPECS[self.name].random else None
        return self.apply(img, rng)


def _parse_crop_size(op: str, text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    if len(parts) not in (1, 2):
        raise ConfigError(f"bad perturbation {op!r}: crop size must be N or HxW, not {text!r}")
    vals = [_num(op, p, int, "crop size") for p in parts]
    if any(v <= 0 for v in vals):
        raise ConfigError(f"bad perturbation {op!r}: crop size must be positive")
    return (vals[0], vals[0]) if len(vals) == 1 else (vals[0], vals[1])


def parse_op(text: str | Op) -> Op:
    """Parse an op string such as "jpeg:75", "blur:1.5", "resize:0.5:bicubic" into an `Op`.

    Raises `ConfigError` naming the op string when the name or a parameter is invalid.
    """
    if isinstance(text, Op):
        return text
    s = str(text).strip()
    name, *args = [p.strip() for p in s.split(":")]
    name = name.lower()
    if name not in OP_SPECS:
        raise ConfigError(
            f"unknown perturbation {s!r}; expected one of: {OP_SYNTAX}"
        )
    spec = OP_SPECS[name]
    if len(args) > len(spec.params):
        raise ConfigError(
            f"bad perturbation {s!r}: too many parameters (syntax: {OP_SYNTAX})"
        )
    params: dict[str, Any] = {}
    for i, (pname, kind, default) in enumerate(spec.params):
        if i < len(args) and args[i] != "":
            params[pname] = _num(s, args[i], kind, pname) if kind is not str else args[i].lower()
        elif default is _REQUIRED:
            raise ConfigError(f"bad perturbation {s!r}: missing {pname} (syntax: {OP_SYNTAX})")
        else:
            params[pname] = default
    op = Op(name, params)
    _validate(op, s)
    return op


def _validate(op: Op, s: str) -> None:
    p = op.params
    problem = None
    if op.name == "jpeg":
        if not 1 <= p["quality"] <= 100:
            problem = "quality must be 1..100"
        elif p["codec"] not in JPEG_CODECS:
            problem = f"codec must be one of {', '.join(JPEG_CODECS)}"
    elif op.name == "webp" and not 0 <= p["quality"] <= 100:
        problem = "quality must be 0..100"
    elif op.name == "blur" and p["sigma"] < 0:
        problem = "sigma must be >= 0"
    elif op.name == "resize":
        if p["scale"] <= 0:
            problem = "scale must be > 0"
        elif p["filter"] not in RESIZE_FILTERS:
            problem = f"filter must be one of {', '.join(RESIZE_FILTERS)}"
    elif op.name == "noise" and p["std"] < 0:
        problem = "std must be >= 0"
    elif op.name == "crop":
        h, w = _parse_crop_size(s, str(p["size"]))
        p["size"] = str(h) if h == w else f"{h}x{w}"
    if problem:
        raise ConfigError(f"bad perturbation {s!r}: {problem}")


# ----------------------------------------------------------------------------- chains


@dataclass(frozen=True)
class Chain:
    """Ops applied in order; `str(chain)` joins the op strings with commas."""

    ops: tuple[Op, ...] = ()

    def __init__(self, ops: Iterable[Op | str] = ()):
        object.__setattr__(self, "ops", tuple(parse_op(o) for o in ops))

    def __str__(self) -> str:
        return ",".join(str(o) for o in self.ops)

    def __len__(self) -> int:
        return len(self.ops)

    def __call__(self, img: np.ndarray, image_id: object) -> np.ndarray:
        out = _check_rgb(img)
        for step, op in enumerate(self.ops):
            out = op(out, image_id, step)
        return out


def parse_ops(spec: str | Op | Iterable[str | Op] | None) -> Chain:
    """A `Chain` from a list of op strings, or one string with ops separated by commas."""
    if spec is None:
        return Chain()
    if isinstance(spec, (str, Op)):
        items: list[str | Op] = (
            [spec] if isinstance(spec, Op) else [p for p in spec.split(",") if p.strip()]
        )
    else:
        items = []
        for item in spec:
            items += [item] if isinstance(item, Op) else [p for p in item.split(",") if p.strip()]
    return Chain(items)


def apply_ops(
    img: np.ndarray, ops: str | Op | Iterable[str | Op] | Chain, image_id: object
) -> np.ndarray:
    """Apply ops (strings, `Op`s or a `Chain`) in order, deterministically for `image_id`."""
    chain = ops if isinstance(ops, Chain) else parse_ops(ops)
    return chain(img, image_id)


def image_id_of(row: Any) -> str:
    """The id that seeds an image's perturbations: its sha256 when known, else its `path`.

    Content-based ids keep the perturbation the same when the dataset moves.
    """
    sha = row.get("sha256") if hasattr(row, "get") else None
    if isinstance(sha, str) and sha:
        return sha
    return Path(str(row.get("path") if hasattr(row, "get") else row)).as_posix()
