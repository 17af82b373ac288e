"""FID of GAN checkpoints over several draws of samples, to compare two by more than one draw.

`bench/gan_quality.py` measures a milestone with one draw: 453 samples of seed 7. Two draws of
the same generator differ by 2-6 FID at that n, as much as 10,000 steps of a long run gain, so
a choice between two checkpoints (or two recipes) made on one draw is a coin toss. This measures
each CHECKPOINT (a `step-*` folder, or a run folder: its newest complete checkpoint) over the
draws of seeds 7, 8, ... (the first is the protocol's), against the reference statistics that
`gan_quality.py --reference` cached, and prints one JSON line per checkpoint: the FID of each
draw, their mean and standard deviation, and the mean over the floor. `--average` measures one
generator instead, whose weights are the mean of the checkpoints' (the same network config).

    python bench/zoo/draws.py W/run/checkpoints/step-0070000 W/run --draws 4 --reference ref.npz
    python bench/zoo/draws.py A/run B/run --average --draws 4 --reference ref.npz
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from safetensors.torch import load_file

from ganforensics.gan.checkpoint import latest_checkpoint
from ganforensics.gan.generate import sample_images
from ganforensics.gan.nets import Generator
from ganforensics.metrics.features import EXTRACTORS, compute_features, get_extractor
from ganforensics.metrics.fid import feature_stats, frechet_distance
from ganforensics.threads import apply_threads

N_SAMPLE = 453
FIRST_SEED = 7
NET_KEYS = ("size", "last_block", "z_dim", "dim")
"""The config fields that make the generator network (what checkpoints must share to average)."""


class DrawsError(Exception):
    """A checkpoint or reference this tool cannot use; the message names it."""


def checkpoint_dir(path: Path) -> Path:
    """`path` when it is a `step-*` checkpoint folder, else the newest complete checkpoint of the
    run folder `path` (or of `path/run`, a `gan_quality.py` work folder)."""
    path = Path(path)
    if path.name.startswith("step-"):
        return path
    for run in (path, path / "run"):
        if (run / "checkpoints").is_dir():
            found = latest_checkpoint(run / "checkpoints")
            if found is not None:
                return found
    raise DrawsError(f"{path}: not a checkpoint folder (step-*) nor a run with a checkpoint")


def net_config(ckpt: Path) -> dict[str, Any]:
    """The network fields of the run's `config.yaml` (two folders above the checkpoint)."""
    path = ckpt.parent.parent / "config.yaml"
    if not path.is_file():
        raise DrawsError(f"{path}: missing (the run's config, to build its generator)")
    cfg = yaml.safe_load(path.read_text()) or {}
    missing = [k for k in NET_KEYS if k not in cfg]
    if missing:
        raise DrawsError(f"{path}: no {', '.join(missing)}")
    return {k: cfg[k] for k in NET_KEYS}


def load_weights(ckpt: Path, net: str) -> dict[str, torch.Tensor]:
    """The `net` weights ("G_ema" or "G") of a checkpoint folder."""
    path = ckpt / f"{net}.safetensors"
    if not path.is_file():
        raise DrawsError(f"{path}: missing (a run without a moving average has only G: --net G)")
    return load_file(str(path))


def average_weights(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The mean of floating-point tensors; other tensors (BatchNorm's step count) from the last."""
    return {k: torch.stack([s[k].float() for s in states]).mean(0)
            if states[-1][k].is_floating_point() else states[-1][k] for k in states[-1]}


def generator(cfg: dict[str, Any], state: dict[str, torch.Tensor]) -> Generator:
    gen = Generator(int(cfg["size"]), str(cfg["last_block"]), int(cfg["z_dim"]), int(cfg["dim"]))
    gen.load_state_dict(state)
    return gen.eval()


def fid_draws(gen: Generator, ext: Any, mu_a: np.ndarray, s_a: np.ndarray, draws: int,
              n: int = N_SAMPLE, first_seed: int = FIRST_SEED) -> list[float]:
    """FID of `draws` draws of `n` samples (seeds first_seed, first_seed + 1, ...)."""
    out = []
    for seed in range(first_seed, first_seed + draws):
        mu, sigma = feature_stats(compute_features(sample_images(gen, n, seed=seed), ext))
        out.append(frechet_distance(mu_a, s_a, mu, sigma))
        print(f"draw {len(out)}/{draws} (seed {seed}): FID {out[-1]:.2f}", file=sys.stderr,
              flush=True)
    return out


def summary(fids: list[float], floor: float) -> dict[str, Any]:
    mean = float(np.mean(fids))
    return {"fid": [round(f, 2) for f in fids], "mean": round(mean, 2),
            "sd": round(float(np.std(fids, ddof=1)), 2) if len(fids) > 1 else None,
            "ratio_mean": round(mean / floor, 3)}


def load_reference(path: Path) -> tuple[np.ndarray, np.ndarray, float]:
    if not Path(path).is_file():
        raise DrawsError(f"{path}: missing (make it with bench/gan_quality.py --reference)")
    ref = np.load(path)
    missing = [k for k in ("mu_a", "s_a", "floor") if k not in ref.files]
    if missing:
        raise DrawsError(f"{path}: no {', '.join(missing)} (not a gan_quality.py reference)")
    return ref["mu_a"], ref["s_a"], float(ref["floor"])


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", type=Path, nargs="+",
                    help="step-* checkpoint folders, or run folders (their newest checkpoint)")
    ap.add_argument("--reference", type=Path, required=True,
                    help="the .npz of gan_quality.py --reference (mu_a, s_a, floor)")
    ap.add_argument("--net", default="G_ema", choices=("G_ema", "G"),
                    help="which weights: the moving average (default) or the raw G")
    ap.add_argument("--draws", type=int, default=4, help="draws per generator (default 4)")
    ap.add_argument("--n", type=int, default=N_SAMPLE, help=f"samples a draw (default {N_SAMPLE})")
    ap.add_argument("--average", action="store_true",
                    help="measure one generator with the mean of the checkpoints' weights")
    ap.add_argument("--extractor", default="inception", choices=EXTRACTORS,
                    help="feature network; the reference must come from the same one")
    ap.add_argument("--threads", type=int, default=1)
    return ap


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.draws < 1 or args.n < 2:
        raise DrawsError("--draws must be >= 1 and --n >= 2")
    apply_threads(args.threads)
    mu_a, s_a, floor = load_reference(args.reference)
    ckpts = [checkpoint_dir(p) for p in args.checkpoints]
    cfgs = [net_config(c) for c in ckpts]
    ext = get_extractor(args.extractor)
    if args.average:
        if any(c != cfgs[0] for c in cfgs):
            raise DrawsError("--average: the checkpoints' networks differ ("
                             + "; ".join(f"{k}: {c}" for k, c in zip(ckpts, cfgs, strict=True))
                             + ")")
        groups = [(ckpts, cfgs[0])]
    else:
        groups = [([k], c) for k, c in zip(ckpts, cfgs, strict=True)]
    for members, cfg in groups:
        state = average_weights([load_weights(k, args.net) for k in members])
        fids = fid_draws(generator(cfg, state), ext, mu_a, s_a, args.draws, args.n)
        row = {"checkpoints": [str(k) for k in members], "net": args.net, "n": args.n,
               "seeds": list(range(FIRST_SEED, FIRST_SEED + args.draws)), **summary(fids, floor)}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    try:
        main()
    except DrawsError as err:
        sys.exit(f"draws.py: {err}")
