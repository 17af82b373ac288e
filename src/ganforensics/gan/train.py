"""GAN training loop with exact resume (DESIGN B3).

Every random draw of step s comes from generators seeded by `derive_seed(seed, ..., s)`:
real batches are slices of per-epoch permutations of the training set, latent vectors and
gradient-penalty mixing weights are drawn per step. A checkpoint therefore only needs the
networks, the Adam states and the step counter (the global torch RNG state is saved too), and a
resumed run ends with exactly the weights of an uninterrupted one.

Speed (profiled in docs/benchmarks.md, "GAN training"): the step is all convolutions, so the
networks and the real images run in the channels-last memory layout (oneDNN's fast path on CPU,
the same arithmetic), and the generator step reuses the fakes of the last discriminator step
(as in the PyTorch DCGAN example) instead of a second forward pass of G on new latents.

Under `torchrun` (`ganforensics.distributed`) G and D are wrapped in DDP and each process takes
its rows of every global batch: the same real images, latents and penalty weights one process
would draw, split by rank, so with norm layers that keep no batch statistics the weights equal
the one-process run's. G's BatchNorm (and D's, in presets without a gradient penalty)
normalises each process's rows on its own unless SyncBatchNorm is asked for (CUDA only).
D's gradients are not all-reduced during G's step (`no_sync`); rank 0 writes everything.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import save_file

from ganforensics import console, distributed
from ganforensics.devices import cpu_runs_bfloat16_natively
from ganforensics.distributed import Dist
from ganforensics.errors import ConfigError, RunExistsError
from ganforensics.gan import augment, objectives
from ganforensics.gan.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from ganforensics.gan.config import GanConfig
from ganforensics.gan.data import load_training_images
from ganforensics.gan.losses import d_loss, g_loss, gradient_penalty
from ganforensics.gan.nets import Discriminator, Features, Generator
from ganforensics.io.atomic import atomic_path, save_png_atomic, write_csv_atomic
from ganforensics.io.images import image_grid
from ganforensics.io.runs import RunFolder
from ganforensics.seeding import derive_seed

GRID = 8  # fixed-noise sample grids are GRID x GRID
MEMORY_FORMAT = torch.channels_last
"""Layout of the networks and images while training (about 1.2-1.4x faster on CPU than
contiguous; checkpoints and generator.safetensors are written contiguous)."""
MOVABLE = ("device", "precision")
"""Config keys a resumed run may change: the same draws, other arithmetic (open_training_run)."""
LOSS_COLUMNS = ("step", "d_loss", "g_loss", "gp", "d_real", "d_fake", "seconds")


class BatchSampler:
    """Real-batch indices of D step t: a slice of the concatenated per-epoch permutations."""

    def __init__(self, n: int, batch: int, seed: int):
        self.n, self.batch, self.seed = n, batch, seed
        self._perms: dict[int, np.ndarray] = {}

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            if len(self._perms) > 4:
                self._perms.clear()
            rng = np.random.default_rng(derive_seed(self.seed, "gan-batches", epoch))
            self._perms[epoch] = rng.permutation(self.n)
        return self._perms[epoch]

    def indices(self, t: int) -> np.ndarray:
        pos = np.arange(t * self.batch, (t + 1) * self.batch)
        epochs, offs = np.divmod(pos, self.n)
        return np.array([self._perm(int(e))[o] for e, o in zip(epochs, offs, strict=True)])


def _torch_gen(*parts: object) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(*parts))


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Generator output (N, 3, H, W) in [-1, 1] -> uint8 (N, H, W, 3): uint8((x*.5+.5)*255)."""
    y = ((x.detach().float().cpu() * 0.5 + 0.5) * 255).clamp(0, 255).to(torch.uint8)
    return y.permute(0, 2, 3, 1).contiguous().numpy()


@contextlib.contextmanager
def deterministic() -> Iterator[None]:
    """Run the block with torch's deterministic algorithms (warn-only), then restore."""
    prev = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev)


def images_to_tensor(stack: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W) in [-1, 1]."""
    x = torch.from_numpy(stack).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
    return x.contiguous(memory_format=MEMORY_FORMAT)


def _write_losses(path: Path, rows: list[dict[str, Any]],
                  extra: tuple[str, ...] | list[str] = ()) -> None:
    """losses.csv: `LOSS_COLUMNS`, then the weighted objective terms (`extra`) if any."""
    write_csv_atomic(path, pd.DataFrame(rows, columns=[*LOSS_COLUMNS, *extra]))


def _read_losses(path: Path, upto: int) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    df = pd.read_csv(path)
    return df[df["step"] <= upto].to_dict("records")


def run_id_for(out: Path, cfg: dict[str, Any]) -> str:
    """Run id: folder name + a short hash of the resolved config (incl. the data hash)."""
    h = hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:8]
    return f"{out.name}-{h}"


@dataclass
class _Training:
    """Everything one training run needs between steps."""

    config: GanConfig
    run: RunFolder | None
    """The locked run folder on rank 0; None on the other ranks (they write nothing)."""
    device: torch.device
    gen: torch.nn.Module
    """G (a `Generator`, in DDP in a distributed run; `modules` gives the bare nets)."""
    disc: torch.nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    real_all: torch.Tensor
    sampler: BatchSampler
    fixed_z: torch.Tensor
    ctx: Dist = distributed.SINGLE
    objs: objectives.ObjectiveSet | None = None
    """The auxiliary objectives (None: the plain GAN loss)."""
    heads: objectives.ObjectiveHeads | None = None
    """D's extra heads of those objectives (trained with D's optimiser)."""
    gen_ema: torch.nn.Module | None = None
    """The moving average of G's weights (`config.ema`); sampled from when present."""
    loss_rows: list[dict[str, Any]] = field(default_factory=list)
    elapsed: float = 0.0
    """Training seconds up to the last checkpoint (earlier invocations included)."""
    cpu_elapsed: float = 0.0
    """CPU seconds of this (rank's) process over the same steps."""

    @property
    def modules(self) -> dict[str, torch.nn.Module]:
        """The bare networks (outside any DDP wrapper); `H`: D's objective heads."""
        nets = {"G": distributed.unwrap(self.gen), "D": distributed.unwrap(self.disc)}
        if self.heads is not None:
            nets["H"] = self.heads
        if self.gen_ema is not None:
            nets["G_ema"] = self.gen_ema
        return nets

    @property
    def sampler_net(self) -> torch.nn.Module:
        """The G whose samples a run shows and keeps: the moving average when there is one."""
        return self.gen_ema if self.gen_ema is not None else self.modules["G"]

    @property
    def rows(self) -> slice:
        """This process's rows of each global batch (all of them in one process)."""
        return distributed.shard(self.config.batch, self.ctx)

    @property
    def optims(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt_G": self.opt_g, "opt_D": self.opt_d}

    @property
    def ckpt_root(self) -> Path:
        assert self.run is not None, "only rank 0 writes checkpoints"
        return self.run.path / "checkpoints"


def open_training_run(
    config: Any, data: Any, out: Path, *, resume: bool, force: bool, extend: bool = False
) -> tuple[RunFolder, np.ndarray, dict[str, Any]]:
    """Load the data at `config.size`, then create (or reuse) the run folder of a training
    config (`GanConfig`, `SimulatorConfig`), which is locked from here on. `extend` lets a
    resumed run take a larger `steps` than it was started with; a resumed run may change
    `device` (trained on a GPU, continued on the CPU: same draws, other rounding) and
    `precision` (bfloat16 where the CPU runs it natively, float32 where it does not); the
    trainer records each move with its step (`RunFolder.record_moves`)."""
    stack, data_info = load_training_images(data, config.size)
    cfg = {**config.to_dict(), "data": data_info}
    try:
        run = RunFolder.create(out, cfg, seed=config.seed, device=config.device, force=force,
                               resume=resume or extend, extendable=("steps",) if extend else (),
                               movable=MOVABLE)
    except RunExistsError as err:
        if extend or "(differs in: steps)" not in str(err):
            raise
        raise RunExistsError(f"{err}; to train it further to more steps, pass --extend") from None
    return run, stack, cfg


def clear_training_outputs(run: RunFolder, weights: str) -> None:
    """Remove what an earlier training run wrote (for `force=True`): checkpoints, sample grids,
    stage markers, losses.csv and the final `<weights>.safetensors` / `<weights>.json`."""
    for name in ("checkpoints", "samples", "stages"):
        shutil.rmtree(run.path / name, ignore_errors=True)
    for name in (f"{weights}.safetensors", f"{weights}.json", "losses.csv"):
        (run.path / name).unlink(missing_ok=True)


def reopen_finished_training(run: RunFolder, weights: str) -> None:
    """Make an extended run unfinished: drop its `train` marker and final weights (its last
    checkpoint keeps them), so training continues from that checkpoint."""
    (run.path / "stages" / "train.done").unlink(missing_ok=True)
    for name in (f"{weights}.safetensors", f"{weights}.json"):
        (run.path / name).unlink(missing_ok=True)


def training_finished(run: RunFolder, weights: str) -> bool:
    """True (and says so) when the run already wrote its final `<weights>.safetensors`."""
    if run.stage_done("train") and (run.path / f"{weights}.safetensors").exists():
        console.info(f"{run.path}: training already finished; nothing to do")
        return True
    return False


def _start(config: GanConfig, run: RunFolder | None, stack: np.ndarray, resume: bool,
           ctx: Dist = distributed.SINGLE, device: torch.device | None = None,
           sync_bn: bool = False) -> tuple[_Training, int]:
    """Seeded networks and optimisers, restored from the last checkpoint when resuming (read
    by rank 0, which passes the state on); returns the training state and the step to start
    from. In a distributed run the networks come back wrapped in DDP."""
    device = torch.device(config.device) if device is None else device
    if ctx.enabled and config.objectives:
        raise ConfigError("objectives: not supported in a distributed (torchrun) run yet; "
                          "train with one process")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(config.seed, "gan-init"))
        gen = Generator(config.size, config.last_block, config.z_dim, config.dim)
        disc = Discriminator(config.size, config.d_norm, config.dim, config.d_depth)
        torch.manual_seed(derive_seed(config.seed, "gan-init-heads"))
        built = objectives.build(config.objective_params, config.loss, disc)
    objs, heads = built if built is not None else (None, None)
    gen = gen.to(device, memory_format=MEMORY_FORMAT)
    disc = disc.to(device, memory_format=MEMORY_FORMAT)
    d_params = list(disc.parameters())
    nets: dict[str, torch.nn.Module] = {"G": gen, "D": disc}
    if heads is not None:
        heads = heads.to(device)
        d_params += list(heads.parameters())
        nets["H"] = heads
    gen_ema = None
    if config.ema:
        gen_ema = copy.deepcopy(gen).requires_grad_(False)
        nets["G_ema"] = gen_ema
    opt_g = torch.optim.Adam(gen.parameters(), lr=config.lr_g, betas=config.betas)
    opt_d = torch.optim.Adam(d_params, lr=config.lr_d, betas=config.betas)
    start, elapsed, cpu_elapsed, loss_rows = 0, 0.0, 0.0, []
    ckpt = latest_checkpoint(run.path / "checkpoints") if resume and run is not None else None
    if ckpt is not None and run is not None:
        state = load_checkpoint(ckpt, nets, {"opt_G": opt_g, "opt_D": opt_d})
        start, elapsed = int(state["step"]), float(state.get("seconds", 0.0))
        cpu_elapsed = float(state.get("cpu_seconds", 0.0))
        console.info(f"resuming {run.path} from step {start}")
        loss_rows = _read_losses(run.path / "losses.csv", start)
    if ctx.enabled:
        start = distributed.broadcast(ctx, start)
        if start > 0:  # the weights travel in DDP's own broadcast below
            sd_g, sd_d = distributed.broadcast(ctx, (opt_g.state_dict(), opt_d.state_dict()))
            opt_g.load_state_dict(sd_g)
            opt_d.load_state_dict(sd_d)
    gen_w = distributed.wrap(gen, ctx, device, sync_bn=sync_bn)
    disc_w = distributed.wrap(disc, ctx, device, sync_bn=sync_bn)
    tr = _Training(
        config, run, device, gen_w, disc_w, opt_g, opt_d,
        real_all=images_to_tensor(stack),
        sampler=BatchSampler(len(stack), config.batch, config.seed),
        fixed_z=torch.randn(GRID * GRID, config.z_dim,
                            generator=_torch_gen(config.seed, "fixed")),
        ctx=ctx, objs=objs, heads=heads, gen_ema=gen_ema, loss_rows=loss_rows,
        elapsed=elapsed, cpu_elapsed=cpu_elapsed,
    )
    return tr, start


def _step(tr: _Training, step: int) -> dict[str, float]:
    """One G step after `n_d` D steps; the losses of the last D step and of the G step.

    The fakes of the last D step are made with gradients on and reused by the G step (scored by
    the updated D), so G runs forward once per step instead of twice. Every draw is made for
    the global batch and cut to this process's rows; the losses returned are the means over
    the processes (the global batch's losses). D's outputs enter the losses in float32 (under
    bfloat16 autocast too: the same gradients, losses logged to full precision).
    """
    c, rows = tr.config, tr.rows
    for j in range(c.n_d):
        t = step * c.n_d + j
        last = j == c.n_d - 1
        real = tr.real_all[torch.from_numpy(tr.sampler.indices(t)[rows])].to(tr.device)
        gen_ = _torch_gen(c.seed, "d-step", t)
        z = torch.randn(c.batch, c.z_dim, generator=gen_)[rows].to(tr.device)
        with torch.set_grad_enabled(last):
            fake = tr.gen(z)
            if c.augment:  # D sees augmented reals and fakes (independent draws)
                real = augment.apply(real, _draw(c, "augment-real", t, rows))
                fake = augment.apply(fake, _draw(c, "augment-fake", t, rows))
        extra_d: dict[str, torch.Tensor] = {}
        if tr.objs is not None and tr.heads is not None:
            f_r, f_f = _features(tr, real), _features(tr, fake.detach())
            out_r, out_f = f_r.logits.float(), f_f.logits.float()
            extra_d = tr.objs.d_terms(tr.disc, tr.heads, real, fake.detach(), f_r, f_f)
        else:
            out_r, out_f = tr.disc(real).float(), tr.disc(fake.detach()).float()
        loss_d = d_loss(c.loss, out_r, out_f)
        gp = gradient_penalty(tr.disc, real, fake, c.gp, gen_, c.gp_weight, batch=c.batch,
                              rows=rows)
        tr.opt_d.zero_grad(set_to_none=True)
        (loss_d + gp + sum(extra_d.values(), gp.new_zeros(()))).backward()
        tr.opt_d.step()
    extra_g: dict[str, torch.Tensor] = {}
    # D's gradients of G's step are not used: no all-reduce, and none computed for its weights
    with distributed.no_sync(tr.disc), _frozen(tr.disc, tr.heads):
        if tr.objs is not None and tr.heads is not None:
            f_g = _features(tr, fake)
            loss_g = g_loss(c.loss, f_g.logits.float())
            extra_g = tr.objs.g_terms(tr.disc, tr.heads, z, fake, f_g, real)
        else:
            loss_g = g_loss(c.loss, tr.disc(fake).float())
        tr.opt_g.zero_grad(set_to_none=True)
        (loss_g + sum(extra_g.values(), loss_g.new_zeros(()))).backward()
    tr.opt_g.step()
    if tr.gen_ema is not None:
        update_ema(tr.gen_ema, distributed.unwrap(tr.gen), c.ema, step)
    values = distributed.mean(tr.ctx, [loss_d.item(), loss_g.item(), gp.item(),
                                       out_r.mean().item(), out_f.mean().item()])
    losses = dict(zip(("d_loss", "g_loss", "gp", "d_real", "d_fake"), values, strict=True))
    if tr.objs is not None:
        for name in tr.objs.names:
            losses[f"{name}_d"] = float(extra_d[name].item()) if name in extra_d else 0.0
            losses[f"{name}_g"] = float(extra_g[name].item()) if name in extra_g else 0.0
    return losses


@contextlib.contextmanager
def _frozen(*modules: torch.nn.Module | None) -> Iterator[None]:
    """Parameters of `modules` without gradients inside the block (backward still runs through
    them to their inputs); their earlier `requires_grad` is restored after."""
    params = [p for m in modules if m is not None for p in m.parameters()]
    before = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, before, strict=True):
            p.requires_grad_(flag)


def _autocast(tr: _Training) -> torch.autocast:
    """The step's arithmetic: bfloat16 autocast when `config.precision` asks for it (weights,
    optimiser states and the moving average stay float32), else a no-op. Without autocast's
    cache of cast weights: D is updated inside the step, and a cached copy would make the next
    D step and G's step score with D's parameters of before the update."""
    return torch.autocast(tr.device.type, dtype=torch.bfloat16,
                          enabled=tr.config.precision == "bfloat16", cache_enabled=False)


def _draw(c: GanConfig, stream: str, t: int, rows: slice) -> augment.Draw:
    """The augmentation draws of D step `t` on one stream, for this process's rows."""
    gen = _torch_gen(c.seed, stream, t)
    return augment.draw(c.augment, c.batch, c.size, gen).rows(rows)


def ema_decay(decay: float, step: int) -> float:
    """The moving average's decay at G step `step` (0-based): min(decay, (1 + t) / (10 + t)),
    so the first steps do not average in the random initial weights for long."""
    return min(decay, (1.0 + step) / (10.0 + step))


@torch.no_grad()
def update_ema(ema: torch.nn.Module, net: torch.nn.Module, decay: float, step: int) -> None:
    """ema <- d * ema + (1 - d) * net for the parameters; buffers (BatchNorm statistics) copied."""
    d = ema_decay(decay, step)
    for p_ema, p in zip(ema.parameters(), net.parameters(), strict=True):
        p_ema.lerp_(p.detach(), 1.0 - d)
    for b_ema, b in zip(ema.buffers(), net.buffers(), strict=True):
        b_ema.copy_(b)


def _features(tr: _Training, x: torch.Tensor) -> Features:
    out = tr.disc(x, features=True)
    assert isinstance(out, Features)
    return out


def _save_samples(tr: _Training, step: int) -> None:
    """The fixed-noise sample grid of `step` (rank 0, with the bare G or its moving average)."""
    gen = tr.sampler_net
    was_training = gen.training
    gen.eval()
    with torch.no_grad():
        imgs = to_uint8(gen(tr.fixed_z.to(tr.device)))
    gen.train(was_training)
    assert tr.run is not None
    save_png_atomic(tr.run.file(f"samples/step-{step:07d}.png"), image_grid(imgs, GRID))


def _checkpoint(tr: _Training, step: int) -> None:
    assert tr.run is not None
    _write_losses(tr.run.file("losses.csv"), tr.loss_rows,
                  tr.objs.columns if tr.objs is not None else ())
    save_checkpoint(tr.ckpt_root, step, tr.modules, tr.optims,
                    {"seconds": tr.elapsed, "cpu_seconds": tr.cpu_elapsed})


def _train_loop(tr: _Training, start: int, end: int, progress: bool) -> None:
    """Steps `start` .. `end` - 1: losses, sample grids and checkpoints on their schedules
    (written by rank 0)."""
    c, main = tr.config, tr.ctx.main
    prog = console.make_progress() if progress and main else None
    task = None
    if prog is not None:
        prog.start()
        task = prog.add_task(f"train {c.generator_name}", total=c.steps, completed=start,
                             info="")
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        with deterministic():
            for step in range(start, end):
                with _autocast(tr):
                    losses = _step(tr, step)
                done = step + 1
                now = time.perf_counter()
                row = {"step": done, **losses, "seconds": round(tr.elapsed + now - t0, 3)}
                tr.loss_rows.append(row)
                if prog is not None and task is not None:
                    prog.update(task, completed=done,
                                info=f"D {row['d_loss']:.3f} G {row['g_loss']:.3f}")
                if main and (done % c.sample_every == 0 or done == c.steps):
                    _save_samples(tr, done)
                if done % c.checkpoint_every == 0 or done == end:
                    tr.elapsed += now - t0
                    cpu_now = time.process_time()
                    tr.cpu_elapsed += cpu_now - c0
                    t0, c0 = now, cpu_now
                    if main:
                        _checkpoint(tr, done)
    finally:
        if prog is not None:
            prog.stop()


def _with_defaults(moved: dict[str, tuple[Any, Any]]) -> dict[str, tuple[Any, Any]]:
    """`moved` with a key missing on one side (a config leaves out some defaults, e.g.
    `precision: float32`) given its default value."""
    default = GanConfig()
    return {k: (getattr(default, k, None) if old is None else old,
                getattr(default, k, None) if new is None else new)
            for k, (old, new) in moved.items()}


def _warn_if_bfloat16_is_emulated(config: GanConfig, device: torch.device) -> None:
    """Say so when bfloat16 is asked for on a CPU without bfloat16 instructions."""
    if (config.precision == "bfloat16" and device.type == "cpu"
            and not cpu_runs_bfloat16_natively()):
        console.warn("precision: this CPU has no bfloat16 instructions (AVX512-BF16 or AMX), "
                     "so bfloat16 training is emulated, about 20x slower than float32 "
                     "(docs/benchmarks.md); pass --precision float32 here (a resumed run may "
                     "switch, and records the step)")


def _save_generator(tr: _Training, cfg: dict[str, Any]) -> None:
    """generator.safetensors + generator.json, and the `train` stage marker."""
    c, run = tr.config, tr.run
    assert run is not None
    total_s = float(tr.loss_rows[-1]["seconds"]) if tr.loss_rows else tr.elapsed
    meta = {
        "kind": "gan-generator",
        "generator": c.generator_name,
        "run_id": run_id_for(run.path, cfg),
        "arch": c.arch,
        "last_block": c.last_block,
        "size": c.size,
        "z_dim": c.z_dim,
        "dim": c.dim,
        "seed": c.seed,
        "steps": c.steps,
        "train_seconds": round(total_s, 2),
        "train_cpu_seconds": round(tr.cpu_elapsed, 2),
        "steps_per_s": round(c.steps / total_s, 3) if total_s > 0 else None,
        "output": "uint8((x * 0.5 + 0.5) * 255) clipped; eval-mode BatchNorm",
        "config": cfg,
    }
    if c.ema:
        meta["weights"] = f"moving average of G's weights (decay {c.ema})"
    moves = run.moves()
    if moves:
        meta["moves"] = moves
    if tr.ctx.enabled:
        meta["distributed"] = tr.ctx.describe()
    write_final_weights(run, "generator", tr.sampler_net, meta)


def write_final_weights(run: RunFolder, weights: str, module: torch.nn.Module,
                        meta: dict[str, Any]) -> None:
    """`<weights>.safetensors` (contiguous tensors, written temp-then-rename) and
    `<weights>.json`, then the run's `train` stage marker (the run is finished)."""
    with atomic_path(run.path / f"{weights}.safetensors") as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()},
                  str(tmp))
    run.write_json(f"{weights}.json", meta)
    run.mark_stage_done("train", {"steps": int(meta["steps"])})


def train_gan(
    config: GanConfig,
    data: Any,
    out_dir: str | Path,
    *,
    resume: bool = True,
    progress: bool = True,
    force: bool = False,
    stop_at_step: int | None = None,
    sync_bn: bool | None = None,
    extend: bool = False,
) -> Path:
    """Train a GAN on real images; return the run folder.

    `data`: a uint8 array (N, H, W, 3), a manifest CSV, a folder, a list of those, or a
    manifest DataFrame (label-0 rows; split `train` when splits exist). The run folder holds
    config.yaml, env.json, losses.csv, samples/step-*.png (fixed-noise grids),
    checkpoints/step-*/ and, when finished, generator.safetensors + generator.json.
    `resume=True` continues an existing run with the same config from its last checkpoint;
    `force=True` starts over in an existing folder. `stop_at_step` stops early (after writing a
    checkpoint) leaving a resumable run. `extend=True` continues a finished (or interrupted) run
    whose config differs only by a smaller `steps` to `config.steps`: nothing in a step depends
    on the run's length, so the weights equal those of one run of the new length. The shorter
    run's generator.safetensors is removed (its last checkpoint holds the same weights). The
    run folder is locked while this runs.

    Started by `torchrun` this is one process of a data-parallel run (`ganforensics.distributed`):
    `config.batch` is the global batch (a multiple of the process count); rank 0 holds the run
    folder and writes everything. `sync_bn` (default: $GANFORENSICS_SYNC_BN) turns the BatchNorm
    layers into SyncBatchNorm; CUDA only.
    """
    config.validate()
    bn = distributed.sync_bn_requested(sync_bn)
    with distributed.session(config.device) as (ctx, device), contextlib.ExitStack() as hold:
        distributed.check_divisible(config.batch, ctx)

        def open_run() -> tuple[RunFolder, np.ndarray, dict[str, Any], bool]:
            run, stack, cfg = open_training_run(config, data, Path(out_dir), resume=resume,
                                               force=force, extend=extend)
            hold.enter_context(run)
            if force:
                clear_training_outputs(run, "generator")
            elif run.extended:
                reopen_finished_training(run, "generator")
            return run, stack, cfg, training_finished(run, "generator")

        opened = distributed.on_main(ctx, open_run)
        if distributed.broadcast(ctx, opened[3] if opened else None):
            return Path(out_dir) if opened is None else opened[0].path
        if opened is None:  # ranks > 0: the same images, no run folder
            run, cfg = None, {}
            stack, _ = load_training_images(data, config.size)
        else:
            run, stack, cfg, _ = opened
        tr, start = _start(config, run, stack, resume, ctx, device, bn)
        if run is not None and run.moved:
            run.record_moves(start, _with_defaults(run.moved))
        if ctx.main:
            _warn_if_bfloat16_is_emulated(config, device)
        end = config.steps if stop_at_step is None else min(config.steps, stop_at_step)
        _train_loop(tr, start, end, progress)
        if end == config.steps and ctx.main:
            _save_generator(tr, cfg)
        distributed.barrier(ctx)
    return Path(out_dir) if run is None else run.path
