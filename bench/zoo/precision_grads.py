"""Does bfloat16 autocast bend a GAN's gradients? G's generator-loss gradient on one batch of a
checkpoint, computed in float32 and under bfloat16 autocast (as `--precision bfloat16` trains),
compared per parameter: the cosine of the two and the relative error |g_bf16 - g_fp32| / |g_fp32|.

A cosine near 1 for every parameter (the last block's above all, the variable under study) says
the slower learning of a block is not the arithmetic's doing. Prints one JSON line per
parameter and a summary line:

    python bench/zoo/precision_grads.py W-N.3.5/run/checkpoints/step-0009500 [--batch 64]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file

from ganforensics.gan.config import GanConfig
from ganforensics.gan.losses import g_loss
from ganforensics.gan.nets import Discriminator, Generator


def load_pair(ckpt: Path) -> tuple[GanConfig, Generator, Discriminator]:
    """The run's config (two folders above `ckpt`) and the checkpoint's G and D."""
    cfg_path = ckpt.parent.parent / "config.yaml"
    if not cfg_path.is_file() or not (ckpt / "D.safetensors").is_file():
        raise SystemExit(f"error: {ckpt}: not a GAN checkpoint folder with D and the run's "
                         "config.yaml two folders up")
    saved = yaml.safe_load(cfg_path.read_text())
    saved.pop("data", None)  # the run's data summary, written beside the config's fields
    cfg = GanConfig.from_dict(saved)
    gen = Generator(cfg.size, cfg.last_block, cfg.z_dim, cfg.dim)
    disc = Discriminator(cfg.size, cfg.d_norm, cfg.dim, cfg.d_depth)
    gen.load_state_dict(load_file(str(ckpt / "G.safetensors")))
    disc.load_state_dict(load_file(str(ckpt / "D.safetensors")))
    return cfg, gen.train(), disc.train()


def g_gradients(cfg: GanConfig, gen: Generator, disc: Discriminator, z: torch.Tensor,
                bfloat16: bool) -> dict[str, torch.Tensor]:
    """G's gradient of the generator loss on latents `z` (D's spectral-norm power iteration
    state is restored after, so both precisions see the same D)."""
    state = {k: v.clone() for k, v in disc.state_dict().items()}
    gen.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
        loss = g_loss(cfg.loss, disc(gen(z)).float())
    loss.backward()
    disc.load_state_dict(state)
    return {n: p.grad.detach().clone() for n, p in gen.named_parameters()}


def compare(ckpt: Path, batch: int = 64, seed: int = 0) -> list[dict]:
    """One row per G parameter: name, gradient norm (float32), cosine, relative error."""
    cfg, gen, disc = load_pair(ckpt)
    z = torch.randn(batch, cfg.z_dim, generator=torch.Generator().manual_seed(seed))
    full, half = (g_gradients(cfg, gen, disc, z, bf) for bf in (False, True))
    rows = []
    for name, g in full.items():
        h = half[name]
        cos = torch.nn.functional.cosine_similarity(g.flatten(), h.flatten(), dim=0)
        rows.append({"param": name, "norm": float(g.norm()), "cos": round(float(cos), 5),
                     "rel_err": round(float((h - g).norm() / g.norm().clamp_min(1e-30)), 5)})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path, help="a step-* folder of a GAN run")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0, help="of the latents")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows = compare(args.checkpoint, args.batch, args.seed)
    for row in rows:
        print(json.dumps(row))
    last = [r for r in rows if r["param"].startswith("last.")]
    print(json.dumps({"min_cos": min(r["cos"] for r in rows),
                      "min_cos_last_block": min((r["cos"] for r in last), default=None),
                      "max_rel_err": max(r["rel_err"] for r in rows)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
