"""Offline real photographs cut into patches (DESIGN A2, "Offline data").

The default source is the colour photographs that ship inside the scikit-image and
scikit-learn wheels (no download): see `DEFAULT_PHOTOS`. Users pass folders of their own
photos for anything serious.

Patch recipe (`make_patches`):

1. Each photo is decoded with the safe decoder and resized (antialiased, PIL bicubic by
   default) to each scale in `scales`. Photos stored as JPEG (or WebP) only use scales
   <= `lossy_max_scale` (0.5): after a 2x antialiased downscale the 8x8 block grid and the
   quantisation noise are averaged away, so block artifacts are not what a detector learns.
   If none of the scales qualifies, such a photo is cut at `lossy_max_scale`.
2. A grid of non-overlapping `size` x `size` patches is laid over each scaled photo, centred.
3. Flat patches are skipped: luma (0.299 R + 0.587 G + 0.114 B) standard deviation below
   `min_std` (default 4.0 on the 0..255 scale; drops sky, black borders and the empty
   background of the Hubble and retina photos).
4. Splits are drawn by photo group with the seed: every patch of a photo (and of both views
   of the motorcycle stereo pair, which show one scene) lands in one split. Groups are
   shuffled, then each goes to the split furthest below its target share of patches
   (default 70/15/15 %); every split receives at least one group.
5. Patches are written as PNG under `<out>/patches/` with `<out>/manifest.csv`: label 0,
   generator "real", source = photo name, plus `group`, `photo_format`, `scale`, `y`, `x`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from ganforensics.console import track
from ganforensics.data.manifest import SPLITS, write_manifest
from ganforensics.data.perturb import RESIZE_FILTERS, resize
from ganforensics.errors import ConfigError, ImageDecodeError, InputError
from ganforensics.io.atomic import write_bytes_atomic
from ganforensics.io.images import is_image_path, read_image
from ganforensics.io.runs import RunFolder
from ganforensics.seeding import DEFAULT_SEED

# (name, package, file inside the package, group): the colour photographs the wheels ship
DEFAULT_PHOTOS: tuple[tuple[str, str, str, str], ...] = (
    ("astronaut", "skimage.data", "astronaut.png", "astronaut"),
    ("chelsea", "skimage.data", "chelsea.png", "chelsea"),
    ("coffee", "skimage.data", "coffee.png", "coffee"),
    ("hubble_deep_field", "skimage.data", "hubble_deep_field.jpg", "hubble_deep_field"),
    ("immunohistochemistry", "skimage.data", "ihc.png", "immunohistochemistry"),
    ("motorcycle_left", "skimage.data", "motorcycle_left.png", "motorcycle"),
    ("motorcycle_right", "skimage.data", "motorcycle_right.png", "motorcycle"),
    ("retina", "skimage.data", "retina.jpg", "retina"),
    ("rocket", "skimage.data", "rocket.jpg", "rocket"),
    ("china", "sklearn.datasets", "images/china.jpg", "china"),
    ("flower", "sklearn.datasets", "images/flower.jpg", "flower"),
)
DEFAULT_SCALES: tuple[float, ...] = (1.0, 0.5)
DEFAULT_SIZE = 32
DEFAULT_MIN_STD = 4.0
DEFAULT_FRACTIONS: tuple[float, float, float] = (0.7, 0.15, 0.15)
LOSSY_FORMATS = ("JPEG", "WEBP")
LOSSY_MAX_SCALE = 0.5


@dataclass
class Photo:
    """A source photograph: `name` (unique), RGB `image`, stored `format`, split `group`."""

    name: str
    image: np.ndarray
    format: str
    group: str
    origin: str


def _package_file(package: str, rel: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        p = Path(loc) / rel
        if p.is_file():
            return p
    return None


def default_photo_status() -> dict[str, str]:
    """For each default photo: "ok" or why it is unavailable (missing package or file)."""
    status: dict[str, str] = {}
    for name, pkg, rel, _ in DEFAULT_PHOTOS:
        p = _package_file(pkg, rel)
        status[name] = "ok" if p is not None else f"not installed ({pkg}/{rel})"
    return status


def load_default_photos() -> list[Photo]:
    """The default photographs that are installed here (missing ones are skipped silently;
    `default_photo_status` lists them)."""
    photos: list[Photo] = []
    for name, pkg, rel, group in DEFAULT_PHOTOS:
        p = _package_file(pkg, rel)
        if p is None:
            continue
        try:
            dec = read_image(p)
        except ImageDecodeError:
            continue
        photos.append(Photo(name, dec.array, dec.format, group, f"{pkg}:{rel}"))
    return photos


def default_photos() -> list[tuple[str, np.ndarray]]:
    """(name, RGB uint8 image) of each installed default photograph."""
    return [(p.name, p.image) for p in load_default_photos()]


def load_photo_folders(folders: Sequence[str | os.PathLike[str]]) -> tuple[list[Photo], list[str]]:
    """Every image file under the folders (recursively) as a `Photo`; also the one-line
    reasons of files that could not be decoded. The photo name is the file's path relative to
    its folder (prefixed with the folder name when several folders are given)."""
    photos: list[Photo] = []
    problems: list[str] = []
    for folder in folders:
        root = Path(folder)
        if not root.is_dir():
            raise InputError(f"{root}: photo folder not found")
        files = sorted(
            f for f in root.rglob("*")
            if f.is_file() and is_image_path(f) and not f.name.startswith(".")
        )
        for f in files:
            rel = f.relative_to(root).with_suffix("").as_posix()
            name = f"{root.name}/{rel}" if len(folders) > 1 else rel
            try:
                dec = read_image(f)
            except ImageDecodeError as exc:
                problems.append(f"{f}: {exc.reason}")
                continue
            photos.append(Photo(name, dec.array, dec.format, name, str(f.resolve())))
    return photos, problems


def _luma_std(patch: np.ndarray) -> float:
    lum = patch.astype(np.float32) @ np.asarray((0.299, 0.587, 0.114), dtype=np.float32)
    return float(lum.std())


def photo_scales(photo_format: str, scales: Sequence[float], lossy_max_scale: float) -> list[float]:
    """Scales used for a photo stored in `photo_format` (lossy ones only after downscaling)."""
    if photo_format.upper() not in LOSSY_FORMATS:
        return list(scales)
    ok = [s for s in scales if s <= lossy_max_scale]
    return ok or [lossy_max_scale]


def cut_patches(
    image: np.ndarray, size: int, min_std: float = DEFAULT_MIN_STD
) -> list[tuple[int, int, np.ndarray]]:
    """Non-overlapping size x size patches on a centred grid, flat ones skipped: (y, x, patch)."""
    h, w = image.shape[:2]
    ny, nx = h // size, w // size
    oy, ox = (h - ny * size) // 2, (w - nx * size) // 2
    out: list[tuple[int, int, np.ndarray]] = []
    for i in range(ny):
        for j in range(nx):
            y, x = oy + i * size, ox + j * size
            patch = image[y : y + size, x : x + size]
            if _luma_std(patch) >= min_std:
                out.append((y, x, np.ascontiguousarray(patch)))
    return out


def assign_splits(
    counts: dict[str, int], seed: int = DEFAULT_SEED,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
) -> dict[str, str]:
    """Assign groups (name -> patch count) to train/val/test by seed; see module docstring."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or sum(fractions) <= 0:
        raise ConfigError(f"split fractions must be three non-negative numbers, not {fractions}")
    frac = np.asarray(fractions, dtype=np.float64) / float(sum(fractions))
    groups = sorted(g for g, n in counts.items() if n > 0)
    order = [groups[i] for i in np.random.default_rng(seed).permutation(len(groups))]
    total = float(sum(counts[g] for g in groups))
    have = dict.fromkeys(SPLITS, 0.0)
    members: dict[str, list[str]] = {s: [] for s in SPLITS}
    for g in order:
        deficit = [frac[k] * total - have[s] for k, s in enumerate(SPLITS)]
        s = SPLITS[int(np.argmax(deficit))]
        members[s].append(g)
        have[s] += counts[g]
    # every split with a non-zero share gets at least one group (when there are enough groups)
    for k, s in enumerate(SPLITS):
        if members[s] or frac[k] == 0:
            continue
        donors = [d for d in SPLITS if len(members[d]) > 1]
        if not donors:
            continue
        donor = max(donors, key=lambda d: have[d])
        g = min(members[donor], key=lambda x: counts[x])
        members[donor].remove(g)
        members[s].append(g)
        have[donor] -= counts[g]
        have[s] += counts[g]
    return {g: s for s, gs in members.items() for g in gs}


def _png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:80] or "photo"


@dataclass(frozen=True)
class _Recipe:
    """The checked options of `make_patches` (see the module docstring)."""

    size: int
    scales: tuple[float, ...]
    seed: int
    min_std: float
    fractions: tuple[float, ...]
    max_per_photo: int | None
    resize_filter: str
    lossy_max_scale: float


def _recipe(size: int, scales: Sequence[float], seed: int, min_std: float,
            fractions: Sequence[float], max_per_photo: int | None, resize_filter: str,
            lossy_max_scale: float) -> _Recipe:
    """Check the options; raise `ConfigError` naming the bad one."""
    size = int(size)
    if size < 4:
        raise ConfigError(f"patch size must be >= 4, not {size}")
    scales = [float(s) for s in scales]
    if not scales or any(not (0 < s <= 1.0) for s in scales):
        raise ConfigError(f"scales must be in (0, 1] (downscaling only), not {scales}")
    if resize_filter not in RESIZE_FILTERS:
        raise ConfigError(
            f"unknown resize filter {resize_filter!r}; choose one of {', '.join(RESIZE_FILTERS)}"
        )
    if not 0 < lossy_max_scale <= 1:
        raise ConfigError(f"lossy_max_scale must be in (0, 1], not {lossy_max_scale}")
    if max_per_photo is not None and max_per_photo < 1:
        raise ConfigError(f"max_per_photo must be >= 1, not {max_per_photo}")
    return _Recipe(size, tuple(scales), int(seed), float(min_std),
                       tuple(float(f) for f in fractions), max_per_photo, resize_filter,
                       float(lossy_max_scale))


def _run_config(r: _Recipe, sources: Sequence[str | os.PathLike[str]] | None) -> dict[str, Any]:
    """What config.yaml records (keys in this order)."""
    return {
        "command": "data photos", "size": r.size,
        "sources": [str(Path(s).resolve()) for s in sources] if sources else "default",
        "scales": list(r.scales), "seed": r.seed, "min_std": r.min_std,
        "fractions": list(r.fractions), "max_per_photo": r.max_per_photo,
        "resize_filter": r.resize_filter, "lossy_max_scale": r.lossy_max_scale,
    }


def _load_photos(sources: Sequence[str | os.PathLike[str]] | None
                 ) -> tuple[list[Photo], list[str]]:
    """The photos (default ones when `sources` is None) and the reasons of unreadable files."""
    if sources:
        photos, problems = load_photo_folders(sources)
    else:
        photos, problems = load_default_photos(), []
    if not photos:
        raise InputError(
            "no usable photographs found"
            + (f" in {', '.join(str(s) for s in sources)}" if sources else "")
        )
    return photos, problems


Cut = list[tuple[Photo, float, list[tuple[int, int, np.ndarray]]]]  # (photo, scale, patches)


def _cut_photos(photos: Sequence[Photo], r: _Recipe) -> Cut:
    """Steps 1-3 of the recipe; a seeded subset per photo and scale with `max_per_photo`."""
    cut: Cut = []
    for ph in track(photos, "cut patches"):
        for s in photo_scales(ph.format, r.scales, r.lossy_max_scale):
            img = ph.image if s == 1.0 else resize(ph.image, s, r.resize_filter)
            patches = cut_patches(img, r.size, r.min_std)
            if r.max_per_photo is not None and len(patches) > r.max_per_photo:
                rng = np.random.default_rng([r.seed, len(cut)])
                keep = np.sort(rng.choice(len(patches), r.max_per_photo, replace=False))
                patches = [patches[k] for k in keep]
            cut.append((ph, s, patches))
    return cut


def _split_photos(cut: Cut, r: _Recipe) -> dict[str, str]:
    """Step 4: photo group -> split, weighted by each group's patch count."""
    counts: dict[str, int] = {}
    for ph, _, patches in cut:
        counts[ph.group] = counts.get(ph.group, 0) + len(patches)
    return assign_splits(counts, r.seed, r.fractions)


def _write_patches(cut: Cut, split_of: dict[str, str], patch_dir: Path, size: int
                   ) -> list[dict[str, Any]]:
    """Step 5: one PNG per patch; its manifest row (with `abspath`)."""
    rows: list[dict[str, Any]] = []
    for ph, s, patches in cut:
        for y, x, patch in patches:
            fname = f"{_safe_name(ph.name)}_s{round(s * 1000):04d}_y{y:04d}_x{x:04d}.png"
            data = _png_bytes(patch)
            dest = patch_dir / fname
            write_bytes_atomic(dest, data)
            rows.append({
                "abspath": str(dest.resolve()), "label": 0, "generator": "real",
                "source": ph.name, "split": split_of[ph.group],
                "sha256": hashlib.sha256(data).hexdigest(), "width": size, "height": size,
                "format": "PNG", "group": ph.group, "photo_format": ph.format, "scale": s,
                "y": y, "x": x,
            })
    return rows


def make_patches(
    out: str | os.PathLike[str],
    size: int = DEFAULT_SIZE,
    sources: Sequence[str | os.PathLike[str]] | None = None,
    scales: Sequence[float] = DEFAULT_SCALES,
    seed: int = DEFAULT_SEED,
    *,
    min_std: float = DEFAULT_MIN_STD,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    max_per_photo: int | None = None,
    resize_filter: str = "bicubic",
    lossy_max_scale: float = LOSSY_MAX_SCALE,
    force: bool = False,
) -> pd.DataFrame:
    """Cut photo patches into the run folder `out` (recipe in the module docstring).

    `sources` None uses the installed default photographs; otherwise folders of photos.
    Writes `config.yaml`, `env.json`, `patches/*.png`, `manifest.csv` and `summary.json`;
    refuses a non-empty `out` unless `force` (then the old `patches/` folder is replaced), and
    a folder another process is writing (exit code 3). Returns the manifest (with `abspath`;
    `df.attrs["problems"]` lists photos that could not be decoded). `max_per_photo` keeps a
    seeded random subset per photo and scale.
    """
    r = _recipe(size, scales, seed, min_std, fractions, max_per_photo, resize_filter,
                lossy_max_scale)
    for src in sources or ():
        if not Path(src).is_dir():
            raise InputError(f"{src}: photo folder not found")
    with RunFolder.create(out, _run_config(r, sources), seed=r.seed, force=force) as run:
        photos, problems = _load_photos(sources)
        patch_dir = run.path / "patches"
        if patch_dir.exists():
            shutil.rmtree(patch_dir)
        patch_dir.mkdir(parents=True)
        cut = _cut_photos(photos, r)
        df = pd.DataFrame(_write_patches(cut, _split_photos(cut, r), patch_dir, r.size))
        if df.empty:
            raise InputError(
                f"no patches: every photo is smaller than {r.size}x{r.size} or flat "
                f"(min_std {min_std})"
            )
        base = run.path.resolve()
        df.insert(0, "path", [Path(a).relative_to(base).as_posix() for a in df["abspath"]])
        write_manifest(df, run.path / "manifest.csv")
        run.write_json("summary.json", {**patch_summary(df), "problems": problems})
    df.attrs["problems"] = problems
    return df


def patch_summary(df: pd.DataFrame) -> dict[str, Any]:
    """Patch counts per photo and per split, and which split each photo went to."""
    per_photo = df.groupby("source", sort=True).agg(
        patches=("path", "size"), split=("split", "first"), format=("photo_format", "first")
    )
    return {
        "patches": int(len(df)),
        "per_split": {s: int((df["split"] == s).sum()) for s in SPLITS},
        "per_photo": {
            str(name): {
                "patches": int(r["patches"]), "split": str(r["split"]), "format": str(r["format"])
            }
            for name, r in per_photo.iterrows()
        },
    }
