"""Models shipped inside the package, trained once on the embedded photos: up-sampling
simulators (`sim-<BLOCK>-<SIZE>/`) and GAN generators (`gen-<BLOCK>-<SIZE>/`).

`bench/simulator_quality.py --ship DIR` trains one simulator per last block on the train
patches of the embedded photos (`data photos` defaults), measures it and writes, per block,
`DIR/sim-<BLOCK>-<SIZE>/` with `simulator.safetensors` + `simulator.json` (what `gan
simulate` writes) and `provenance.json` (the exact command, data, steps, seed, threads,
training time, FID, floor and PSNR), plus one `DIR/train-patches.txt`: the sha256 of the pixels
of every training patch (`pixel_sha256`, so a PNG encoder's version does not matter), one per
line. `bench/gan_quality.py --ship DIR` does the same for a GAN's generator (`gen-<BLOCK>-<SIZE>/`
with `generator.safetensors` + `generator.json` and the provenance). A study uses a shipped model
only where that is honest: every one of its train patches was in the model's training set and
none of its validation or test photos was (`shipped_unfit` says why not, and the study then
trains one). Both kinds share the folder's `train-patches.txt`, so they were trained on the same
patches.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from safetensors.torch import load_file, save_file

from ganforensics.errors import ConfigError, InputError
from ganforensics.gan.config import GanConfig
from ganforensics.gan.nets import parse_last_block
from ganforensics.io.atomic import write_json_atomic, write_text_atomic

SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"
SHIPPED_PREFIX = "shipped:"
TRAIN_PATCHES = "train-patches.txt"
PROVENANCE = "provenance.json"
KINDS: dict[str, tuple[str, str]] = {
    "sim": ("simulator.safetensors", "simulator.json"),
    "gen": ("generator.safetensors", "generator.json"),
}
"""Folder prefix of each shipped kind -> its weight and metadata files (what `gan simulate` and
`gan train` write)."""
WHAT = {"sim": "simulator", "gen": "generator"}


def _block_name(last_block: str) -> str:
    return "BASELINE" if parse_last_block(last_block) is None else last_block.strip().upper()


def shipped_dir_name(last_block: str, size: int, kind: str = "sim") -> str:
    """Folder name of a shipped model, e.g. `sim-N.1.5-32` (a simulator), `gen-BASELINE-32`."""
    return f"{kind}-{_block_name(last_block)}-{int(size)}"


def _kind_of(path: Path) -> str:
    kind = Path(path).name.split("-", 1)[0]
    if kind not in KINDS:
        raise InputError(f"{path}: not a shipped model folder (sim-* or gen-*)")
    return kind


def find_shipped(last_block: str, size: int, root: Path = SHIPPED_DIR,
                 kind: str = "sim") -> Path | None:
    """The shipped model folder of a last block and size, or None when none ships."""
    path = root / shipped_dir_name(last_block, size, kind)
    return path if all((path / f).is_file() for f in (*KINDS[kind], PROVENANCE)) else None


def resolve_shipped(ref: str | os.PathLike[str], size: int = 32, kind: str = "sim",
                    root: Path = SHIPPED_DIR) -> Path:
    """A run folder: `ref` itself, or for `shipped:<BLOCK>` the shipped model of that kind and
    block at `size` px (an InputError lists what ships when there is none)."""
    text = str(ref)
    if not text.startswith(SHIPPED_PREFIX):
        return Path(ref)
    block = text[len(SHIPPED_PREFIX):]
    try:
        path = find_shipped(block, size, root, kind)
    except ConfigError as exc:
        raise InputError(f"{text}: {exc}") from None
    if path is None:
        have = ", ".join(p["folder"] for p in list_shipped(root, kind)) or "none"
        raise InputError(f"{text}: no shipped {WHAT[kind]} for that last block at {size} px "
                         f"(shipped: {have})")
    return path


def resolve_simulator(ref: str | os.PathLike[str], size: int = 32) -> Path:
    """A simulator run folder: `ref` itself, or the shipped simulator `shipped:<BLOCK>`."""
    return resolve_shipped(ref, size, "sim")


def list_shipped(root: Path = SHIPPED_DIR, kind: str = "sim") -> list[dict[str, Any]]:
    """Provenance of every shipped model of a kind (with its `folder`), sorted by folder."""
    out = []
    for path in sorted(root.glob(f"{kind}-*")):
        if (path / PROVENANCE).is_file():
            out.append({"folder": path.name, **json.loads((path / PROVENANCE).read_text())})
    return out


def training_hashes(root: Path = SHIPPED_DIR) -> set[str]:
    """sha256 of every patch the shipped models were trained on (empty when none ship)."""
    path = root / TRAIN_PATCHES
    if not path.is_file():
        return set()
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def pixel_sha256(image: np.ndarray) -> str:
    """sha256 of an image's uint8 pixels (H, W, C, C order) with its shape."""
    arr = np.ascontiguousarray(image, dtype=np.uint8)
    return hashlib.sha256(repr(arr.shape).encode() + arr.tobytes()).hexdigest()


def shipped_unfit(path: Path, train: Sequence[np.ndarray], held_out: pd.DataFrame
                  ) -> str | None:
    """Why the shipped model at `path` must not stand in for one trained on `train` (the
    study's train images) and tested on `held_out` (its val and test rows, with `group` or
    `source` naming their photo); None if it may.

    It may when every train image was in its training set and no held-out image comes from a
    photo that was: then its outputs are those of a model trained on a superset of the same
    photos, and no test photo leaked into it.
    """
    known = training_hashes(path.parent)
    if not known:
        return f"{path.parent / TRAIN_PATCHES} is missing"
    missing = sum(pixel_sha256(img) not in known for img in train)
    if missing:
        return (f"{missing} of the study's {len(train)} train patches were not in its training "
                "set (other photos, seed or patch size)")
    prov = json.loads((path / PROVENANCE).read_text())
    trained_groups = set(prov.get("data", {}).get("groups", []))
    leaked = sorted(set(held_out.get("group", held_out["source"]).astype(str)) & trained_groups)
    if leaked:
        return f"it was trained on photos the study holds out ({', '.join(leaked)})"
    return None


def _precision_in_words(meta: dict[str, Any], final: str) -> str | None:
    """`trained in bfloat16` (not the default), `trained in bfloat16 to step 27,000, then
    float32` (a resumed run that changed its arithmetic: `meta["moves"]`), or None."""
    moves = [m for m in meta.get("moves", []) if "precision" in m.get("moved", {})]
    if not moves:
        return None if final == GanConfig().precision else f"trained in {final}"
    spans = [f"{m['moved']['precision'][0]} to step {int(m['step']):,}" for m in moves]
    return f"trained in {', then '.join(spans)}, then {moves[-1]['moved']['precision'][1]}"


def generator_recipe(meta: dict[str, Any]) -> str:
    """How a generator was trained, in words, from its `generator.json`: preset, the networks'
    width and the arithmetic where not the defaults, D's depth, D steps per G step, augmentation
    of D's inputs, moving average of G and steps (`sngan, width 64, trained in bfloat16, D of 2
    convs per resolution, 2 D steps per G step, D's inputs augmented (color, translation,
    cutout), moving average of G (decay 0.9999), 40,000 steps`); a run resumed in another
    arithmetic says in which up to which step."""
    cfg = meta.get("config", {})
    parts = [str(meta.get("arch", cfg.get("arch", "?")))]
    default = GanConfig()
    if int(cfg.get("dim", default.dim)) != default.dim:
        parts.append(f"width {int(cfg['dim'])}")
    arithmetic = _precision_in_words(meta, cfg.get("precision", default.precision))
    if arithmetic:
        parts.append(arithmetic)
    if int(cfg.get("d_depth", 1)) > 1:
        parts.append(f"D of {int(cfg['d_depth'])} convs per resolution")
    if int(cfg.get("n_d", 1)) > 1:
        parts.append(f"{int(cfg['n_d'])} D steps per G step")
    if cfg.get("augment"):
        parts.append(f"D's inputs augmented ({', '.join(cfg['augment'])})")
    if float(cfg.get("ema", 0.0)) > 0:
        parts.append(f"moving average of G (decay {float(cfg['ema']):g})")
    steps = meta.get("steps", cfg.get("steps"))
    if steps is not None:
        parts.append(f"{int(steps):,} steps")
    return ", ".join(parts)


def install_shipped(path: Path, run_dir: Path) -> Path:
    """Copy a shipped model into `run_dir` (replacing what is there) as a finished run that
    `gan.reconstruct` (a simulator) or `gan.generate` (a generator) reads; its provenance
    becomes `run_dir/shipped.json`."""
    run_dir = Path(run_dir)
    tmp = run_dir.with_name(run_dir.name + ".installing")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in KINDS[_kind_of(path)]:
        shutil.copyfile(path / name, tmp / name)
    shutil.copyfile(path / PROVENANCE, tmp / "shipped.json")
    shutil.rmtree(run_dir, ignore_errors=True)
    tmp.rename(run_dir)
    return run_dir


def write_shipped(run_dir: Path, out_root: Path, provenance: dict[str, Any],
                  train_sha256: Iterable[str], half: bool = False) -> Path:
    """Package a finished `gan simulate` or `gan train` run as a shipped model under `out_root`
    (its weights and metadata, `provenance`, and the shared list of the `pixel_sha256` of its
    training images). `half` stores the floating-point weights in float16 (half the bytes;
    they load into float32 networks)."""
    kinds = [k for k, (_, meta_file) in KINDS.items() if (Path(run_dir) / meta_file).is_file()]
    if len(kinds) != 1:
        raise InputError(f"{run_dir}: not a finished simulator or GAN run")
    kind = kinds[0]
    meta = json.loads((Path(run_dir) / KINDS[kind][1]).read_text())
    hashes = sorted(set(train_sha256))
    known = training_hashes(Path(out_root))
    if known and known != set(hashes):
        raise InputError(f"{Path(out_root) / TRAIN_PATCHES}: the models shipped there were "
                         "trained on other patches; ship into an empty folder")
    dest = Path(out_root) / shipped_dir_name(meta["last_block"], meta["size"], kind)
    dest.mkdir(parents=True, exist_ok=True)
    weights, meta_file = KINDS[kind]
    shutil.copyfile(Path(run_dir) / meta_file, dest / meta_file)
    if half:
        tensors = load_file(str(Path(run_dir) / weights))
        save_file({k: v.half() if v.is_floating_point() else v for k, v in tensors.items()},
                  str(dest / weights))
    else:
        shutil.copyfile(Path(run_dir) / weights, dest / weights)
    write_json_atomic(dest / PROVENANCE, provenance)
    write_text_atomic(Path(out_root) / TRAIN_PATCHES, "".join(f"{h}\n" for h in hashes))
    return dest
