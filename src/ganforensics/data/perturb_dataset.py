"""Perturbed copies of a whole dataset: `perturb_manifest` (the `data perturb` command).

Each usable manifest row is decoded (`ganforensics.io.loading`), perturbed by a `Chain` of ops
(`ganforensics.data.perturb`, seeded per image by `image_id_of`) and written as PNG (lossless,
so the perturbation is not compressed again); the new manifest records the ops.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ganforensics.console import track
from ganforensics.data.manifest import error_mask, write_manifest
from ganforensics.data.perturb import Chain, Op, image_id_of, parse_ops
from ganforensics.errors import ConfigError, InputError
from ganforensics.io.atomic import save_png_atomic
from ganforensics.io.images import file_sha256
from ganforensics.io.loading import iter_decoded


def _copy_row(df: pd.DataFrame, i: int, chain_str: str) -> dict[str, Any]:
    """Row `i` as a dict with the provenance columns (`orig_path`, `orig_sha256`, `ops`)."""
    r = df.iloc[i].to_dict()
    r.update(orig_path=r["abspath"], orig_sha256=r.get("sha256"), ops=chain_str)
    return r


def _write_perturbed(r: dict[str, Any], res: np.ndarray, dest: Path) -> None:
    """Save `res` as PNG at `dest` and point row `r` at it."""
    save_png_atomic(dest, res)
    r.update(
        abspath=str(dest.resolve()),
        sha256=file_sha256(dest),
        width=int(res.shape[1]),
        height=int(res.shape[0]),
        format="PNG",
    )


def perturb_manifest(
    manifest_df: pd.DataFrame,
    ops: str | Iterable[str | Op] | Chain,
    out_dir: str | os.PathLike[str],
    *,
    workers: int = 2,
    description: str = "perturb",
) -> pd.DataFrame:
    """Write perturbed PNG copies of every usable row under `out_dir/images/` and
    `out_dir/manifest.csv`; return the new manifest (with `abspath`).

    Kept from the input: label, generator, source, split (and other extra columns). Added:
    `ops` (the chain string), `orig_path` (the input's absolute path), `orig_sha256`, `error`.
    Input rows that already had an error, or that fail to decode or to perturb, become error
    rows (no image written) with a one-line reason.
    """
    chain = ops if isinstance(ops, Chain) else parse_ops(ops)
    if len(chain) == 0:
        raise ConfigError("perturb needs at least one op (e.g. --op jpeg:75)")
    if "abspath" not in manifest_df.columns:
        raise InputError("manifest rows need an 'abspath' column (use read_manifest)")
    out = Path(out_dir)
    img_dir = out / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    df = manifest_df.reset_index(drop=True)
    had_error = error_mask(df).to_numpy()
    todo = [i for i in range(len(df)) if not had_error[i]]
    chain_str = str(chain)
    rows: list[dict[str, Any] | None] = [
        _copy_row(df, i, chain_str) if had_error[i] else None for i in range(len(df))
    ]
    decoded = iter_decoded([df.at[i, "abspath"] for i in todo], workers=workers)
    for k, arr, err in track(decoded, description, total=len(todo)):
        i = todo[k]
        r = _copy_row(df, i, chain_str)
        r.update(error=None)
        if err is None:
            try:
                res = chain(arr, image_id_of(r))  # type: ignore[arg-type]
            except (InputError, ConfigError) as exc:
                err = f"perturbation failed: {exc}"
        if err is not None:
            r.update(error=err)
        else:
            stem = Path(str(r["abspath"])).stem[:60]
            _write_perturbed(r, res, img_dir / f"{i:06d}_{stem}.png")
        rows[i] = r
    if rows:
        result = pd.DataFrame(rows)
    else:
        result = df.assign(orig_path=df["abspath"], orig_sha256=None, ops=chain_str, error=None)
    if "error" not in result.columns:
        result["error"] = None
    write_manifest(result, out / "manifest.csv")
    return result
