"""The manifest: the one data format (DESIGN A2).

A CSV with at least the columns of `MANIFEST_COLUMNS`; `path` is relative to the manifest
file. Extra columns (`error`, `seed`, `ops`, `patch`, ...) are kept. In memory it is a pandas
DataFrame with one more column, `abspath`, resolved against the manifest's folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ganforensics.errors import InputError
from ganforensics.io.atomic import write_csv_atomic

MANIFEST_COLUMNS = (
    "path", "label", "generator", "source", "split", "sha256", "width", "height", "format",
)
REQUIRED_COLUMNS = ("path", "label")
SPLITS = ("train", "val", "test")


def new_manifest(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """A manifest DataFrame from row dicts (must carry `abspath` and `label`)."""
    df = pd.DataFrame(list(rows))
    for col in (*MANIFEST_COLUMNS, "abspath"):
        if col not in df.columns:
            df[col] = pd.Series(dtype="object")
    if "generator" in df.columns:
        df["generator"] = df["generator"].fillna(
            df["label"].map(lambda v: "real" if (not pd.isna(v) and v == 0) else "unknown")
        )
    return df


def read_manifest(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a manifest CSV; add `abspath`; check required columns and labels.

    Raises `InputError` naming the file and the offending column or row.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: manifest not found")
    try:
        df = pd.read_csv(p, dtype={"path": str, "generator": str, "source": str, "split": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: not a readable CSV manifest ({str(exc).splitlines()[0]})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"{p}: manifest lacks required column(s): {', '.join(missing)}")
    labels = pd.to_numeric(df["label"], errors="coerce")
    blank = df["label"].isna() | (df["label"].astype(str).str.strip() == "")
    bad = df.index[~labels.isin([0, 1]) & ~blank]
    if len(bad):
        row = int(bad[0])
        raise InputError(
            f"{p}: column 'label' must be 0 (real) or 1 (fake); row {row + 2} has "
            f"{df['label'].iloc[row]!r}"
        )
    # a blank label means "unknown" (unlabelled images): nullable Int64, else plain int
    df["label"] = labels.astype("Int64") if blank.any() else labels.astype(int)
    for col in MANIFEST_COLUMNS:
        if col not in df.columns:
            df[col] = pd.NA
    df["generator"] = (
        df["generator"].fillna(df["label"].map({0: "real", 1: "unknown"})).fillna("unknown")
    )
    df["abspath"] = _abspaths(p, df["path"])
    if "error" in df.columns:
        df["error"] = df["error"].where(df["error"].notna(), None)
    return df


def _abspaths(manifest: Path, paths: pd.Series) -> list[str]:
    """Each `path` resolved against the manifest's folder; a blank or unusable one raises
    `InputError` naming the manifest and the row."""
    base = manifest.resolve().parent
    out: list[str] = []
    for row, rel in enumerate(paths):
        if not isinstance(rel, str) or rel == "":
            raise InputError(f"{manifest}: column 'path' is empty in row {row + 2}")
        try:
            out.append(str((base / rel).resolve()))
        except (ValueError, OSError) as exc:  # e.g. an embedded NUL byte
            raise InputError(
                f"{manifest}: row {row + 2} has an unusable path {rel!r} ({exc})"
            ) from None
    return out


def write_manifest(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a manifest atomically; `path` column rewritten relative to the manifest's folder."""
    p = Path(path)
    base = p.resolve().parent
    out = df.copy()
    if "abspath" in out.columns:
        out["path"] = [
            Path(os.path.relpath(Path(a).resolve(), base)).as_posix() for a in out["abspath"]
        ]
        out = out.drop(columns=["abspath"])
    for c in ("label", "width", "height", "jpeg_quality"):  # whole numbers, even with gaps
        if c in out.columns and pd.api.types.is_float_dtype(out[c]):
            v = out[c]
            if (v.dropna() == v.dropna().round()).all():
                out[c] = v.astype("Int64")
    cols = [c for c in MANIFEST_COLUMNS if c in out.columns]
    cols += [c for c in out.columns if c not in cols]
    return write_csv_atomic(p, out[cols])


def error_mask(df: pd.DataFrame) -> pd.Series:
    """True for each row with a decode error (a non-empty `error`); all False without one."""
    if "error" not in df.columns:
        return pd.Series(False, index=df.index)
    err = df["error"]
    return ~(err.isna() | (err.astype(str) == ""))


def usable(df: pd.DataFrame) -> pd.DataFrame:
    """Rows without a decode error (the complement of `error_mask`)."""
    if "error" not in df.columns:
        return df
    return df[~error_mask(df)]


def split_of(df: pd.DataFrame, split: str) -> pd.DataFrame:
    """Rows of one split."""
    return df[df["split"].astype(str) == split]


def remove_listed_outputs(folder: Path, manifest_name: str = "manifest.csv") -> bool:
    """Delete the PNGs that `folder/manifest_name` lists (only files directly inside `folder`)
    and the manifest itself; False (nothing removed) when there is no manifest."""
    manifest = folder / manifest_name
    if not manifest.is_file():
        return False
    old = pd.read_csv(manifest, usecols=lambda c: c == "path")
    for name in old.get("path", pd.Series(dtype=str)).dropna().astype(str):
        p = folder / name
        if p.parent == folder and p.suffix.lower() == ".png" and p.is_file():
            p.unlink()
    manifest.unlink()
    return True
