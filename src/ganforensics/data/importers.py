"""Import folders users already have into manifests (DESIGN A2).

Recognised layouts (folder names matched case-insensitively, anywhere below the root):

- CNNDetection / "wang2020": `root/<generator>[/<class>]/{0_real,1_fake}/...`
- plain `real/` + `fake/`, at the root or nested (`root/<generator>/{real,fake}`)
- GenImage: `root/<generator>/.../{train,val}/{nature,ai}/...` (`train`/`val` give the split)

The `0_real`/`1_fake` rule covers today's benchmark trees as they unpack: ForenSynths /
CNNDetection (`test/<generator>[/<class>]/{0_real,1_fake}`), AIGIBench
(`<split>/<generator>/{0_real,1_fake}`) and WildRF (`<split>/<platform>/{0_real,1_fake}`, the
platform becomes the generator); the split folder sets `split`. UniversalFakeDetect's
diffusion sets pair a real folder with a fake folder whose own sub-folder names say nothing
(`laion/` beside `guided/`, `ldm_200/`, ...): `scan_pairs` labels each side of every pair.

For each file the deepest class folder above it decides its label. Its generator is the first
folder below the root that is not a split name (`train`, `val`, `test`); with none, the root's
own name for CNNDetection, "fake" for `real/`+`fake/`. Reals get generator "real"; every row
keeps that generator folder in `group` (empty for a flat `real/`+`fake/` root), so the reals
of one CNNDetection test set can be paired with its fakes. Folders between the generator and
the class folder go to `category` (e.g. the 20 ProGAN object classes). A split folder
(`train`, `val`/`validation`, `test`) above the class folder sets `split`.

Files: image extensions are matched case-insensitively on the real (last) suffix. Inside class
folders every file gets a row, a non-image extension an error row; hidden files (name starting
with ".") and OS litter (Thumbs.db, desktop.ini) are skipped. Images outside any class folder
get an unlabelled row (label <NA>, generator "unknown"); other files there are ignored.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ganforensics.console import track
from ganforensics.data.audit import estimate_jpeg_quality
from ganforensics.data.manifest import MANIFEST_COLUMNS, error_mask, read_manifest, usable
from ganforensics.errors import ImageDecodeError, InputError
from ganforensics.io.images import IMAGE_EXTENSIONS, file_sha256, is_image_path, read_image

SKIPPED_NAMES = frozenset({"thumbs.db", "desktop.ini"})
SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
CNNDETECTION_CLASSES = {"0_real": 0, "1_fake": 1}
PLAIN_CLASSES = {"real": 0, "fake": 1}
GENIMAGE_CLASSES = {"nature": 0, "ai": 1}
EXTRA_COLUMNS = ("group", "category", "layout", "exif", "jpeg_quality", "error")
LAYOUT_HELP = (
    "root/<generator>[/<class>]/{0_real,1_fake} (CNNDetection), real/ + fake/, or "
    "root/<generator>/{train,val}/{nature,ai} (GenImage)"
)


@dataclass(frozen=True)
class _Place:
    """Where a file sits in a recognised layout (label None = outside any class folder)."""

    label: int | None
    layout: str
    generator: str
    group: str
    category: str
    split: str | None


def _classify(rel_dirs: Sequence[str], root_name: str) -> _Place:
    lower = [d.lower() for d in rel_dirs]
    hit: tuple[int, int, str] | None = None  # (index, label, layout) of the deepest class folder
    for i in range(len(lower) - 1, -1, -1):
        name = lower[i]
        if name in CNNDETECTION_CLASSES:
            hit = (i, CNNDETECTION_CLASSES[name], "cnndetection")
        elif name in GENIMAGE_CLASSES and i > 0 and lower[i - 1] in ("train", "val"):
            hit = (i, GENIMAGE_CLASSES[name], "genimage")
        elif name in PLAIN_CLASSES:
            hit = (i, PLAIN_CLASSES[name], "real-fake")
        if hit:
            break
    if hit is None:
        return _Place(None, "none", "unknown", "", "", None)
    idx, label, layout = hit
    prefix = list(rel_dirs[:idx])
    split = None
    rest: list[str] = []
    for d in prefix:
        if d.lower() in SPLIT_NAMES:
            split = SPLIT_NAMES[d.lower()]
        else:
            rest.append(d)
    if rest:
        group, category = rest[0], "/".join(rest[1:])
    else:
        group, category = (root_name if layout == "cnndetection" else ""), ""
    generator = "real" if label == 0 else (group or "fake")
    return _Place(label, layout, generator, group, category, split)


def _skipped(name: str) -> bool:
    return name.startswith(".") or name.lower() in SKIPPED_NAMES


def _walk(root: Path) -> list[tuple[Path, tuple[str, ...]]]:
    """Files under root (sorted, hidden folders skipped) with their folder parts."""
    found: list[tuple[Path, tuple[str, ...]]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not _skipped(d))
        rel = Path(dirpath).relative_to(root).parts
        for fn in sorted(filenames):
            if not _skipped(fn):
                found.append((Path(dirpath) / fn, tuple(rel)))
    return found


def _layout_rows(root: Path) -> list[dict[str, Any]]:
    """Rows (not decoded) for every relevant file under `root`."""
    root = Path(root)
    if not root.exists():
        raise InputError(f"{root}: folder not found")
    if not root.is_dir():
        raise InputError(f"{root}: not a folder")
    root_abs = root.resolve()
    rows: list[dict[str, Any]] = []
    for f, rel_dirs in _walk(root_abs):
        place = _classify(rel_dirs, root_abs.name)
        image_named = is_image_path(f)
        if place.label is None and not image_named:
            continue  # READMEs, CSVs etc. beside an unrecognised tree are not data
        rel = f.relative_to(root_abs).as_posix()
        rows.append(
            {
                "path": rel,
                "label": pd.NA if place.label is None else place.label,
                "generator": place.generator,
                "source": rel,
                "split": place.split,
                "sha256": None,
                "width": pd.NA,
                "height": pd.NA,
                "format": None,
                "abspath": str(f),
                "group": place.group,
                "category": place.category,
                "layout": place.layout,
                "exif": pd.NA,
                "jpeg_quality": pd.NA,
                "error": None
                if image_named
                else f"not an image file extension ({f.suffix or 'no extension'}; "
                f"expected one of {' '.join(IMAGE_EXTENSIONS)})",
            }
        )
    return rows


def _frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """A manifest frame with the standard column order and a label that may be unknown."""
    cols = [*MANIFEST_COLUMNS, "abspath", *EXTRA_COLUMNS]
    df = pd.DataFrame(list(rows))
    for c in cols:
        if c not in df.columns:
            df[c] = pd.NA
    df = df[cols + [c for c in df.columns if c not in cols]]
    df["label"] = normalise_labels(df["label"])
    for c in ("width", "height", "jpeg_quality"):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("Int64")
    df["exif"] = df["exif"].astype("boolean")
    return df.reset_index(drop=True)


def normalise_labels(labels: pd.Series) -> pd.Series:
    """Labels as plain int when all are known, nullable Int64 when some are unknown (<NA>)."""
    num = pd.to_numeric(labels, errors="coerce")
    return num.astype("Int64") if num.isna().any() else num.astype(int)


def _decode_row(row: dict[str, Any]) -> dict[str, Any]:
    if row["error"]:
        with contextlib.suppress(OSError):
            row["sha256"] = file_sha256(row["abspath"])
        return row
    try:
        dec = read_image(row["abspath"])
    except ImageDecodeError as exc:
        row["error"] = exc.reason
        with contextlib.suppress(OSError):
            row["sha256"] = file_sha256(row["abspath"])
        return row
    row.update(
        sha256=file_sha256(row["abspath"]),
        width=dec.width,
        height=dec.height,
        format=dec.format,
        exif=dec.has_exif,
        jpeg_quality=estimate_jpeg_quality(dec.jpeg_qtables),
    )
    return row


def decode_rows(
    rows: Iterable[dict[str, Any]], *, workers: int = 2, description: str = "scan"
) -> list[dict[str, Any]]:
    """Decode every row's file (thread pool): fill sha256, size, format, EXIF, JPEG quality,
    or the one-line `error`."""
    items = list(rows)
    if workers <= 1:
        return [_decode_row(r) for r in track(items, description)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(track(pool.map(_decode_row, items), description, total=len(items)))


def scan_folder(root: str | os.PathLike[str], *, workers: int = 2) -> pd.DataFrame:
    """One manifest row per file under `root` (layouts in the module docstring), each decoded.

    Columns: `MANIFEST_COLUMNS` + `abspath`, `group`, `category`, `layout`, `exif`,
    `jpeg_quality`, `error`. `path` is relative to `root`. Unreadable files keep their row with
    the one-line reason in `error`. Raises `InputError` when `root` is missing or holds no file.
    """
    rows = _layout_rows(Path(root))
    if not rows:
        raise InputError(f"{root}: no image files found (expected layouts: {LAYOUT_HELP})")
    return _frame(decode_rows(rows, workers=workers))


def scan_summary(df: pd.DataFrame) -> dict[str, Any]:
    """Counts for the scan summary: files, errors, per label and generator, layouts."""
    err = error_mask(df)
    ok = usable(df)
    reasons = df.loc[err, "error"].astype(str).str.split(r" \(|: ", n=1, regex=True).str[0]
    labels = ok["label"].map(
        lambda v: "unlabelled" if pd.isna(v) else ("real" if v == 0 else "fake")
    )
    return {
        "files": int(len(df)),
        "ok": int(len(ok)),
        "errors": int(err.sum()),
        "by_class": {str(k): int(v) for k, v in labels.value_counts().sort_index().items()},
        "by_generator": {
            str(k): int(v) for k, v in ok["generator"].value_counts().sort_index().items()
        },
        "by_layout": {str(k): int(v) for k, v in df["layout"].value_counts().sort_index().items()},
        "by_split": {
            str(k): int(v) for k, v in ok["split"].fillna("(none)").value_counts().items()
        },
        "error_reasons": {str(r): int(n) for r, n in reasons.value_counts().items()},
    }


def collect_inputs(
    inputs: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
) -> pd.DataFrame:
    """Manifest rows with `abspath` for each input, without decoding (cheap).

    Each input is a manifest CSV (`read_manifest`), a folder (layout recognised as in
    `scan_folder`; images outside class folders are unlabelled: label <NA>, generator
    "unknown") or an image file (unlabelled). Raises `InputError` naming an input that does not
    exist or is none of these. `label` is int, or nullable Int64 when some labels are unknown.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    frames: list[pd.DataFrame] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            rows = _layout_rows(p)
            if not rows:
                raise InputError(f"{p}: no image files found (expected layouts: {LAYOUT_HELP})")
            frames.append(_frame(rows))
        elif p.is_file() and p.suffix.lower() == ".csv":
            df = read_manifest(p)
            if "error" not in df.columns:
                df["error"] = None
            frames.append(df)
        elif p.is_file() and is_image_path(p):
            frames.append(
                _frame(
                    [
                        {
                            "path": p.name, "label": pd.NA, "generator": "unknown",
                            "source": p.name, "abspath": str(p.resolve()), "layout": "file",
                            "error": None,
                        }
                    ]
                )
            )
        elif p.exists():
            raise InputError(
                f"{p}: not a manifest (.csv), a folder or an image file "
                f"({' '.join(IMAGE_EXTENSIONS)})"
            )
        else:
            raise InputError(f"{p}: no such file or folder")
    if not frames:
        raise InputError("no inputs given (pass manifest CSVs, folders or image files)")
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    df["label"] = normalise_labels(df["label"])
    return df.reset_index(drop=True)


def _extension_error(f: Path) -> str:
    return (f"not an image file extension ({f.suffix or 'no extension'}; expected one of "
            f"{' '.join(IMAGE_EXTENSIONS)})")


def scan_pairs(
    pairs: Sequence[tuple[str | os.PathLike[str], str | os.PathLike[str], str | None]],
    *,
    workers: int = 2,
) -> pd.DataFrame:
    """One manifest over paired real / fake folders (UniversalFakeDetect's `real_path`,
    `fake_path`, `key` triples; `key` None = the fake folder's name).

    Every file under a real folder is real (label 0, generator "real"), every file under a fake
    folder fake (label 1, generator `key`), whatever the sub-folders are called; `group` holds
    the key so each fake set can be scored against its own reals. A pair whose two folders are
    the same folder is read as a `0_real`/`1_fake` tree (UniversalFakeDetect's "wang2020"
    mode). A real folder shared by several pairs gives each file one row (the first pair's
    group). `path` is relative to the folders' common parent; `layout` is "paired".
    """
    if not pairs:
        raise InputError("scan_pairs: no (real folder, fake folder) pairs given")
    dirs = []
    for real_dir, fake_dir, _ in pairs:
        for d in (real_dir, fake_dir):
            p = Path(d)
            if not p.is_dir():
                raise InputError(f"{p}: folder not found" if not p.exists()
                                 else f"{p}: not a folder")
            dirs.append(p.resolve())
    base = Path(os.path.commonpath([str(d) for d in dirs]))
    if base in dirs and len(set(dirs)) > 1:
        base = base.parent
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for real_dir, fake_dir, key in pairs:
        real_p, fake_p = Path(real_dir).resolve(), Path(fake_dir).resolve()
        name = key or fake_p.name
        if real_p == fake_p:
            sides = [(f, _classify(rel, name).label) for f, rel in _walk(real_p)]
        else:
            sides = [(f, 0) for f, _ in _walk(real_p)] + [(f, 1) for f, _ in _walk(fake_p)]
        for f, label in sides:
            if label is None or str(f) in seen:
                continue
            seen.add(str(f))
            rel = f.relative_to(base).as_posix()
            ok = is_image_path(f)
            rows.append({
                "path": rel, "label": label, "generator": "real" if label == 0 else name,
                "source": rel, "split": None, "abspath": str(f), "group": name,
                "category": "", "layout": "paired",
                "error": None if ok else _extension_error(f),
            })
    if not rows:
        raise InputError(f"{base}: no image files found in the paired folders")
    return _frame(decode_rows(rows, workers=workers))
