"""Paired fakes: one reconstruction per real image by a trained up-sampling simulator.

Each fake keeps its source's split (so no pair straddles train and test) and names its source
(`source_path`, `source_sha256`); `psnr_db` is the pair's PSNR. Images are reconstructed at
their own size (the simulator is fully convolutional); odd-sized or unreadable inputs become
error rows, and the rest go on.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from ganforensics import console
from ganforensics.data.importers import collect_inputs
from ganforensics.data.manifest import (
    error_mask,
    new_manifest,
    remove_listed_outputs,
    write_manifest,
)
from ganforensics.errors import InputError, RunExistsError
from ganforensics.gan.shipped import resolve_simulator
from ganforensics.gan.simulate import psnr
from ganforensics.gan.simulator import Simulator
from ganforensics.gan.train import images_to_tensor, to_uint8
from ganforensics.io import lock
from ganforensics.io.atomic import save_png_atomic
from ganforensics.io.loading import iter_decoded, warn_bad_files

RECONSTRUCT_BATCH = 64
"""Same-size images per simulator forward pass."""


def load_simulator(run_dir: str | os.PathLike[str]) -> tuple[Simulator, dict[str, Any]]:
    """(simulator in eval mode, simulator.json metadata) from a finished `gan simulate` run,
    or from a shipped simulator named `shipped:<BLOCK>` (`gan.shipped`, 32 px)."""
    run = resolve_simulator(run_dir)
    meta_p, weights_p = run / "simulator.json", run / "simulator.safetensors"
    if not weights_p.exists() or not meta_p.exists():
        raise InputError(f"{run}: no simulator.safetensors/simulator.json (is training "
                         "finished? rerun `ganforensics gan simulate` with the same options)")
    try:
        meta = json.loads(meta_p.read_text())
        net = Simulator(str(meta["last_block"]), int(meta["width"]), int(meta["bottleneck"]))
        net.load_state_dict(load_file(str(weights_p)))
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as exc:
        raise InputError(f"{run}: unusable simulator files ({str(exc).splitlines()[0]})") from None
    return net.eval(), meta


def reconstruct_images(net: Simulator, images: list[np.ndarray]) -> list[np.ndarray]:
    """Reconstructions (uint8) of same-size uint8 (H, W, 3) images with even H and W."""
    if not images:
        return []
    with torch.no_grad():
        return list(to_uint8(net(images_to_tensor(np.stack(images)))))


def _sources(data: Any) -> pd.DataFrame:
    """The real rows to reconstruct: label 0 (or unlabelled) rows of the inputs."""
    df = data if isinstance(data, pd.DataFrame) else collect_inputs(
        [data] if isinstance(data, (str, os.PathLike)) else list(data))
    if "label" in df.columns:
        lab = pd.to_numeric(df["label"], errors="coerce")
        df = df[lab.isna() | (lab == 0)]
    if df.empty:
        raise InputError("data: no real (label 0) images to reconstruct")
    return df.reset_index(drop=True)


def _row(src: pd.Series, meta: dict[str, Any]) -> dict[str, Any]:
    """A fake's row before it is written; until then (and for error rows) its path is the
    source's, so an error row names the input that failed."""
    return {"abspath": str(src["abspath"]), "label": 1, "generator": meta["generator"],
            "source": meta["run_id"], "split": src.get("split", None),
            "source_path": str(src["abspath"]), "source_sha256": src.get("sha256", None)}


def _flush(net: Simulator, meta: dict[str, Any], out: Path, pending: list[tuple[int, np.ndarray]],
           df: pd.DataFrame, rows: dict[int, dict[str, Any]]) -> None:
    """Reconstruct and save a batch of same-size images; fill their rows."""
    recs = reconstruct_images(net, [im for _, im in pending])
    for (i, im), rec in zip(pending, recs, strict=True):
        stem = Path(str(df.loc[i, "abspath"])).stem
        p = out / f"{meta['generator']}_{i:06d}_{stem}.png"
        save_png_atomic(p, rec)
        rows[i].update(path=p.name, abspath=str(p.resolve()), width=rec.shape[1],
                       height=rec.shape[0], format="PNG",
                       sha256=hashlib.sha256(p.read_bytes()).hexdigest(),
                       psnr_db=float(psnr(im[None], rec[None])[0]))
    pending.clear()


def reconstruct(run_dir: str | os.PathLike[str], data: Any, out_dir: str | os.PathLike[str], *,
                force: bool = False, progress: bool = True) -> pd.DataFrame:
    """Write one reconstruction per real image of `data` to `out_dir` plus `manifest.csv`;
    return the manifest (error rows included, with their reason in `error`)."""
    net, meta = load_simulator(run_dir)
    df = _sources(data)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lock.acquire(out)
    try:
        if any(p.name != lock.LOCK_NAME for p in out.iterdir()):
            if not force:
                raise RunExistsError(f"{out}: already exists and is not empty; pass --force "
                                     "to replace an earlier `gan reconstruct` output")
            _remove_earlier_output(out)
        rows = {i: _row(df.loc[i], meta) for i in range(len(df))}
        known = error_mask(df)
        for i in np.flatnonzero(known.to_numpy()):
            rows[i]["error"] = str(df.loc[i, "error"])
        todo = [i for i in range(len(df)) if not known.iloc[i]]
        errors = _write_all(net, meta, out, df, todo, rows, progress)
        warn_bad_files(errors, "gan reconstruct")
        manifest = new_manifest([rows[i] for i in range(len(df))])
        write_manifest(manifest, out / "manifest.csv")
    finally:
        lock.release(out)
    return manifest


def _write_all(net: Simulator, meta: dict[str, Any], out: Path, df: pd.DataFrame,
               todo: list[int], rows: dict[int, dict[str, Any]], progress: bool
               ) -> list[tuple[str, str]]:
    """Decode, batch by size, reconstruct and save; the (path, reason) of each bad input."""
    errors: list[tuple[str, str]] = []
    pending: dict[tuple[int, ...], list[tuple[int, np.ndarray]]] = {}
    paths = [str(df.loc[i, "abspath"]) for i in todo]
    it = iter_decoded(paths)
    if progress:
        it = console.track(it, "reconstruct", total=len(paths))
    for k, img, reason in it:
        i = todo[k]
        if img is not None and (img.shape[0] % 2 or img.shape[1] % 2):
            reason = f"odd size {img.shape[1]}x{img.shape[0]}: the simulator up-samples x2"
        if img is None or reason is not None:
            rows[i]["error"] = reason
            errors.append((paths[k], str(reason)))
            continue
        batch = pending.setdefault(img.shape, [])
        batch.append((i, img))
        if len(batch) >= RECONSTRUCT_BATCH:
            _flush(net, meta, out, batch, df, rows)
    for batch in pending.values():
        if batch:
            _flush(net, meta, out, batch, df, rows)
    return errors


def _remove_earlier_output(out: Path) -> None:
    """Delete the PNGs an earlier `reconstruct` listed in its manifest, and the manifest;
    refuse a folder holding anything else."""
    if not remove_listed_outputs(out):
        raise RunExistsError(f"{out}: not empty and holds no `gan reconstruct` manifest; "
                             "choose another --out")
    console.info(f"{out}: replaced an earlier `gan reconstruct` output")
