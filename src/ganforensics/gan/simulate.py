"""Training an up-sampling simulator (`gan.simulator`) on real images, with exact resume.

The run folder mirrors `gan train`'s: config.yaml, env.json, losses.csv, samples/step-*.png
(a fixed set of real images above their reconstructions), checkpoints/step-*/ and, when done,
simulator.safetensors + simulator.json. Batches are slices of seeded per-epoch permutations
(`train.BatchSampler`), so a resumed run ends with exactly the weights of an uninterrupted one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ganforensics import console
from ganforensics.gan.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from ganforensics.gan.simulator import Simulator, SimulatorConfig, reconstruction_loss
from ganforensics.gan.train import (
    MEMORY_FORMAT,
    BatchSampler,
    clear_training_outputs,
    deterministic,
    images_to_tensor,
    open_training_run,
    run_id_for,
    to_uint8,
    training_finished,
    write_final_weights,
)
from ganforensics.io.atomic import save_png_atomic, write_csv_atomic
from ganforensics.io.images import image_grid
from ganforensics.io.runs import RunFolder
from ganforensics.seeding import derive_seed

SAMPLE_IMAGES = 16  # real images (and their reconstructions) in each sample grid
LOSS_COLUMNS = ("step", "loss", "psnr", "seconds")


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-image PSNR in dB of uint8 stacks (N, H, W, C) (inf where identical)."""
    err = ((a.astype(np.float64) - b.astype(np.float64)) ** 2).reshape(len(a), -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        return 10 * np.log10(255.0**2 / err)


@dataclass
class _SimTraining:
    config: SimulatorConfig
    run: RunFolder
    net: Simulator
    opt: torch.optim.Optimizer
    real_all: torch.Tensor
    sampler: BatchSampler
    fixed: torch.Tensor
    loss_rows: list[dict[str, Any]] = field(default_factory=list)
    elapsed: float = 0.0


def _start(config: SimulatorConfig, run: RunFolder, stack: np.ndarray, resume: bool
           ) -> tuple[_SimTraining, int]:
    """Seeded network and optimiser, restored from the last checkpoint when resuming."""
    device = torch.device(config.device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(config.seed, "sim-init"))
        net = Simulator(config.last_block, config.width, config.bottleneck)
    net = net.to(device, memory_format=MEMORY_FORMAT)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr, betas=config.betas)
    start, elapsed, rows = 0, 0.0, []
    ckpt = latest_checkpoint(run.path / "checkpoints") if resume else None
    if ckpt is not None:
        state = load_checkpoint(ckpt, {"S": net}, {"opt_S": opt})
        start, elapsed = int(state["step"]), float(state.get("seconds", 0.0))
        console.info(f"resuming {run.path} from step {start}")
        losses = run.path / "losses.csv"
        if losses.exists():
            df = pd.read_csv(losses)
            rows = df[df["step"] <= start].to_dict("records")
    real_all = images_to_tensor(stack)
    pick = np.random.default_rng(derive_seed(config.seed, "sim-fixed")).permutation(len(stack))
    tr = _SimTraining(config, run, net, opt, real_all,
                      BatchSampler(len(stack), config.batch, config.seed),
                      fixed=real_all[torch.from_numpy(pick[:SAMPLE_IMAGES])],
                      loss_rows=rows, elapsed=elapsed)
    return tr, start


def _step(tr: _SimTraining, step: int) -> float:
    """One optimiser step on one batch; its loss."""
    c = tr.config
    batch = tr.real_all[torch.from_numpy(tr.sampler.indices(step))].to(c.device)
    loss = reconstruction_loss(c.loss, tr.net(batch), batch)
    tr.opt.zero_grad(set_to_none=True)
    loss.backward()
    tr.opt.step()
    return float(loss.item())


def _save_samples(tr: _SimTraining, step: int) -> float:
    """Grid of the fixed reals (top rows) over their reconstructions; their mean PSNR."""
    tr.net.eval()
    with torch.no_grad():
        rec = to_uint8(tr.net(tr.fixed.to(tr.config.device)))
    tr.net.train()
    src = to_uint8(tr.fixed)
    grid = image_grid(np.concatenate([src, rec]), SAMPLE_IMAGES // 2)
    save_png_atomic(tr.run.file(f"samples/step-{step:07d}.png"), grid)
    return float(np.mean(np.minimum(psnr(src, rec), 99.0)))


def _train_loop(tr: _SimTraining, start: int, end: int, progress: bool) -> None:
    c = tr.config
    prog = console.make_progress() if progress else None
    task = None
    if prog is not None:
        prog.start()
        task = prog.add_task(f"simulate {c.name}", total=c.steps, completed=start, info="")
    t0 = time.perf_counter()
    try:
        with deterministic():
            for step in range(start, end):
                loss = _step(tr, step)
                done = step + 1
                now = time.perf_counter()
                row: dict[str, Any] = {"step": done, "loss": loss, "psnr": np.nan,
                                       "seconds": round(tr.elapsed + now - t0, 3)}
                if done % c.sample_every == 0 or done == c.steps:
                    row["psnr"] = _save_samples(tr, done)
                tr.loss_rows.append(row)
                if prog is not None and task is not None:
                    prog.update(task, completed=done, info=f"{c.loss} {loss:.4f}")
                if done % c.checkpoint_every == 0 or done == end:
                    tr.elapsed += now - t0
                    t0 = now
                    write_csv_atomic(tr.run.file("losses.csv"),
                                     pd.DataFrame(tr.loss_rows, columns=list(LOSS_COLUMNS)))
                    save_checkpoint(tr.run.path / "checkpoints", done, {"S": tr.net},
                                    {"opt_S": tr.opt}, {"seconds": tr.elapsed})
    finally:
        if prog is not None:
            prog.stop()


def _save_simulator(tr: _SimTraining, cfg: dict[str, Any]) -> None:
    c, run = tr.config, tr.run
    total_s = float(tr.loss_rows[-1]["seconds"]) if tr.loss_rows else tr.elapsed
    last_psnr = [r["psnr"] for r in tr.loss_rows if not pd.isna(r["psnr"])]
    meta = {
        "kind": "upsampling-simulator",
        "generator": c.name,
        "run_id": run_id_for(run.path, cfg),
        "last_block": c.last_block,
        "size": c.size,
        "width": c.width,
        "bottleneck": c.bottleneck,
        "loss": c.loss,
        "seed": c.seed,
        "steps": c.steps,
        "train_seconds": round(total_s, 2),
        "sample_psnr_db": round(last_psnr[-1], 3) if last_psnr else None,
        "output": "uint8((x * 0.5 + 0.5) * 255) clipped",
        "config": cfg,
    }
    write_final_weights(run, "simulator", tr.net, meta)


def train_simulator(
    config: SimulatorConfig,
    data: Any,
    out_dir: str | Path,
    *,
    resume: bool = True,
    progress: bool = True,
    force: bool = False,
    stop_at_step: int | None = None,
) -> Path:
    """Train the simulator of `config.last_block` on real images; return the run folder.

    `data` as for `train_gan` (label-0 rows; split `train` when splits exist). `resume=True`
    continues a run with the same config from its last checkpoint; `force=True` starts over;
    `stop_at_step` stops early after a checkpoint. The run folder is locked while this runs.
    """
    config.validate()
    run, stack, cfg = open_training_run(config, data, Path(out_dir), resume=resume,
                                       force=force)
    with run:
        if force:
            clear_training_outputs(run, "simulator")
        if training_finished(run, "simulator"):
            return run.path
        tr, start = _start(config, run, stack, resume)
        end = config.steps if stop_at_step is None else min(config.steps, stop_at_step)
        _train_loop(tr, start, end, progress)
        if end == config.steps:
            _save_simulator(tr, cfg)
    return run.path
