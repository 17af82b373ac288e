"""Load a trained generator; sample images in memory or to PNGs plus a manifest.

Image i of a call with seed S uses the latent vector drawn from a torch generator seeded with
`image_seed(S, i)` (recorded per image in the manifest's `seed` column), so any single image can
be regenerated alone. Generation runs with BatchNorm in eval mode, so images do not depend on
the batch they were made in.
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
from ganforensics.data.manifest import new_manifest, remove_listed_outputs, write_manifest
from ganforensics.errors import InputError, RunExistsError
from ganforensics.gan.nets import Generator
from ganforensics.gan.shipped import resolve_shipped
from ganforensics.gan.train import to_uint8
from ganforensics.io import lock
from ganforensics.io.atomic import save_png_atomic
from ganforensics.seeding import DEFAULT_SEED, derive_seed

GENERATE_BATCH = 256
"""Images per generator forward pass when sampling."""
SPLIT_FRACTIONS = (("train", 0.7), ("val", 0.15), ("test", 0.15))
SPLITS = tuple(name for name, _ in SPLIT_FRACTIONS)


def load_generator(run_dir: str | os.PathLike[str], size: int = 32
                   ) -> tuple[Generator, dict[str, Any]]:
    """(generator in eval mode, generator.json metadata) from a finished training run, or from
    the generator the package ships for a last block (`shipped:<BLOCK>`, at `size` px).
    Weights saved in float16 load into the float32 network."""
    run = resolve_shipped(run_dir, size, "gen")
    meta_p, weights_p = run / "generator.json", run / "generator.safetensors"
    if not weights_p.exists() or not meta_p.exists():
        raise InputError(
            f"{run}: no generator.safetensors/generator.json (is training finished? "
            "rerun `ganforensics gan train` with the same options to resume)"
        )
    try:
        meta = json.loads(meta_p.read_text())
        gen = Generator(int(meta["size"]), str(meta["last_block"]), int(meta["z_dim"]),
                        int(meta["dim"]))
        gen.load_state_dict(load_file(str(weights_p)))
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as exc:
        raise InputError(f"{run}: unusable generator files ({str(exc).splitlines()[0]})") from None
    gen.eval()
    return gen, meta


def image_seed(seed: int, index: int) -> int:
    """The latent-vector seed of image `index` in a call with `seed`."""
    return derive_seed("gan-sample", seed, index)


def latents(z_dim: int, seeds: list[int]) -> torch.Tensor:
    """One latent vector per seed (N, z_dim)."""
    return torch.stack(
        [torch.randn(z_dim, generator=torch.Generator().manual_seed(s)) for s in seeds]
    )


def sample_images(
    generator: Generator, n: int, seed: int = DEFAULT_SEED, *, batch: int = GENERATE_BATCH,
    start: int = 0
) -> np.ndarray:
    """n images (N, H, W, 3) uint8 in memory; image i uses seed `image_seed(seed, start + i)`."""
    if n < 0:
        raise InputError(f"n: must be >= 0, got {n}")
    was_training = generator.training
    generator.eval()
    device = next(generator.parameters()).device
    outs = []
    try:
        with torch.no_grad():
            for b in range(0, n, batch):
                seeds = [image_seed(seed, start + i) for i in range(b, min(n, b + batch))]
                outs.append(to_uint8(generator(latents(generator.z_dim, seeds).to(device))))
    finally:
        generator.train(was_training)
    if not outs:
        return np.zeros((0, generator.size, generator.size, 3), np.uint8)
    return np.concatenate(outs)


def split_for(index: int, n: int) -> str:
    """Deterministic split by contiguous index (= seed) range: 70 % train, 15 % val, 15 % test."""
    acc = 0.0
    for name, frac in SPLIT_FRACTIONS:
        acc += frac
        if index < round(acc * n):
            return name
    return SPLIT_FRACTIONS[-1][0]


def generate(
    run_dir: str | os.PathLike[str],
    n: int,
    out_dir: str | os.PathLike[str],
    *,
    seed: int = DEFAULT_SEED,
    batch: int = GENERATE_BATCH,
    split: str | None = None,
    progress: bool = True,
    force: bool = False,
) -> pd.DataFrame:
    """Write n PNGs and `manifest.csv` (label 1, generator e.g. `dcgan-N.1.5`, per-image seed,
    source = run id, split by seed range unless `split` is given); return the manifest.

    A folder that already holds files is refused unless `force`; then the images listed in
    its old manifest and the manifest are removed first, so no stale image is left unlisted.
    """
    if n < 1:
        raise InputError(f"n: must be >= 1, got {n}")
    if split is not None and split not in SPLITS:
        raise InputError(f"split: must be one of {', '.join(SPLITS)}, got {split!r}")
    gen, meta = load_generator(run_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lock.acquire(out)  # one writer at a time, as in a run folder
    try:
        if any(p.name != lock.LOCK_NAME for p in out.iterdir()):
            if not force:
                raise RunExistsError(f"{out}: already exists and is not empty; pass --force "
                                     "to replace an earlier `gan generate` output")
            _remove_earlier_output(out, str(meta["generator"]))
        rows = _write_images(gen, meta, n, out, seed=seed, batch=batch, split=split,
                             progress=progress)
        df = new_manifest(rows)
        write_manifest(df, out / "manifest.csv")
    finally:
        lock.release(out)
    return df


def _write_images(gen: Generator, meta: dict[str, Any], n: int, out: Path, *, seed: int,
                  batch: int, split: str | None, progress: bool) -> list[dict[str, Any]]:
    """Sample and save the n PNGs; their manifest rows."""
    rows = []
    starts = range(0, n, batch)
    it = console.track(starts, "generate", total=len(starts)) if progress else starts
    for b in it:
        imgs = sample_images(gen, min(batch, n - b), seed, batch=batch, start=b)
        for k, img in enumerate(imgs):
            i = b + k
            p = out / f"{meta['generator']}_{seed}_{i:06d}.png"
            save_png_atomic(p, img)
            rows.append({
                "path": p.name, "abspath": str(p.resolve()), "label": 1,
                "generator": meta["generator"], "source": meta["run_id"],
                "split": split or split_for(i, n), "width": img.shape[1],
                "height": img.shape[0], "format": "PNG", "seed": image_seed(seed, i),
                "index": i, "call_seed": seed, "sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
            })
    return rows


def _remove_earlier_output(out: Path, generator: str) -> None:
    """Delete what an earlier call wrote to `out`: the PNGs its `manifest.csv` lists and the
    manifest, or, for a call interrupted before its manifest, its `GENERATOR_*.png` files.

    Refuses a folder holding anything else, so --force never empties an unrelated folder.
    """
    if remove_listed_outputs(out):
        return
    ours = [p for p in out.iterdir() if p.is_file() and (
        (p.suffix == ".png" and p.name.startswith(f"{generator}_"))
        or (p.name.startswith(f".{generator}_") and p.name.endswith(".tmp")))]  # killed writes
    if len(ours) != sum(1 for p in out.iterdir() if p.name != lock.LOCK_NAME):
        raise RunExistsError(f"{out}: not empty and holds files not written by `gan generate`; "
                             "choose another --out")
    for p in ours:
        p.unlink()
