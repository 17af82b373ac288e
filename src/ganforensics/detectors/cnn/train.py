"""Training recipes for CNN detectors (DESIGN B5): wang2020, khan2019, colour-robust.

wang2020 (Wang et al. 2020): BCE with logits, Adam lr 1e-4 betas (0.9, 0.999), batch 64; per
image with prob p a Gaussian blur sigma ~ U(0, 3) and independently with prob p a JPEG of
quality ~ U{30..100} (PIL), then a random crop, horizontal flip, ImageNet normalisation. The
validation set gets the same ops with the fixed sigma 1.5 / quality 65 (applied with prob p,
drawn once per image from the seed, so it is the same every epoch) and a centre crop. Early
stopping on validation accuracy (patience 5, improvement > 0.001); then lr / 10 and again;
training ends when the lr would fall below 1e-6 (or after `epochs`, the recipe's `max_epochs`).

khan2019 (Khan 2019): SGD momentum 0.9; body lr 1e-3 with L2 1e-3, last layer lr 5e-5 with
L2 1e-5 (L2 as a loss term lambda * ||w||^2, i.e. SGD weight decay 2 * lambda); one logit with
BCE (equivalent to two-class cross-entropy); random horizontal flips, centre crop; early
stopping on validation loss (patience 5). Without a validation set, 30 % of the training data
(grouped by `source` so patches of one photo stay together) is held out, for either recipe.

`color_robust` (Chandrasegaran 2022) adds RandomGrayscale(p = 0.5) after crop and flip.
The weights with the best validation score are kept; the decision threshold is calibrated on
the validation split only (`metrics.threshold.calibrate_threshold`).

Each training image's augmentation draws come from its own generator, seeded by (seed, epoch,
image index), so a view does not depend on which process makes it. Under `torchrun`
(`ganforensics.distributed`) the model is wrapped in DDP and each process takes its rows of
every batch of the epoch's seeded order (the contract of DistributedSampler + set_epoch, with
the one-process order kept); the loss is scaled so the averaged gradient is the global batch's.
Validation, early stopping, checkpoints and the saved model are rank 0's; the decisions are
broadcast. BatchNorm normalises each process's rows unless SyncBatchNorm is asked for (CUDA).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import pandas as pd
import torch
from torch import nn

from ganforensics import distributed
from ganforensics.console import info, make_progress
from ganforensics.detectors.base import sigmoid
from ganforensics.detectors.cnn.archs import (
    build_model,
    get_spec,
    init_head_wang2020,
    normalised_tensor,
)
from ganforensics.detectors.cnn.attribution import (
    AttributionDetector,
    fit_class_calibration,
    softmax_np,
)
from ganforensics.detectors.cnn.augment import augment_train, augment_val
from ganforensics.detectors.cnn.data import ImageSet, as_image_set, split_train_val
from ganforensics.detectors.cnn.heads import DEFAULT_TASK, TASKS, Head, make_head
from ganforensics.detectors.cnn.model import CNNDetector, load_cnn_detector
from ganforensics.detectors.cnn.recipes import Recipe, get_recipe, make_optimizer
from ganforensics.distributed import Dist
from ganforensics.errors import ConfigError, InputError
from ganforensics.io.atomic import atomic_path
from ganforensics.io.runs import RunFolder
from ganforensics.metrics.detection import detection_metrics
from ganforensics.metrics.threshold import calibrate_threshold
from ganforensics.seeding import DEFAULT_SEED, derive_seed, rng_for, seed_everything

StateDict = dict[str, torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""(input batch, head outputs, targets) -> loss per image (e.g. distillation's)."""


# ---- data -----------------------------------------------------------------------------------
@dataclass
class TrainingData:
    """The decoded training and validation sets, and the crop side both are cut to."""

    train: ImageSet
    val: ImageSet
    validation: str
    """How the validation set came about: "given" or the hold-out rule."""
    n_skipped: int
    crop: int
    train_y: np.ndarray | None = None
    """Training targets of the head (labels, or class indices for attribution)."""
    val_y: np.ndarray | None = None

    def with_targets(self, head: Head) -> TrainingData:
        """This data with the targets of `head`."""
        return dataclasses.replace(
            self, train_y=head.targets(self.train.labels, self.train.generators, "training data"),
            val_y=head.targets(self.val.labels, self.val.generators, "validation data"))


def _training_data(
    train: Any, val: Any, rec: Recipe, seed: int, crop_size: int | None, input_size: int,
    workers: int,
) -> TrainingData:
    """Decode both sets (holding out validation sources when `val` is None) and pick the crop."""
    train_set = as_image_set(train, "training data", workers=workers)
    if len(train_set) == 0:
        raise InputError("training data holds no usable images")
    n_skipped = len(train_set.errors)
    if val is None:
        train_set, val_set = split_train_val(train_set, rec.val_fraction, seed)
        val_note = f"held out {rec.val_fraction:.0%} of training sources"
    else:
        val_set = as_image_set(val, "validation data", workers=workers)
        val_note = "given"
        n_skipped += len(val_set.errors)
    for name, s in (("training", train_set), ("validation", val_set)):
        if len(set(s.labels.tolist())) < 2:
            hint = "" if val_note == "given" or name == "training" else "; pass --val MANIFEST"
            raise InputError(f"{name} data must hold both real (0) and fake (1) images{hint}")
    min_side = min(min(im.shape[:2]) for im in train_set.images + val_set.images)
    if rec.resize:  # every view is resized first (shorter side = rec.resize)
        min_side = int(rec.resize)
    crop = min(int(crop_size or input_size), min_side)
    return TrainingData(train_set, val_set, val_note, n_skipped, crop)


# ---- run folder and resume ------------------------------------------------------------------
class LoopState(TypedDict):
    """The training loop's progress, saved in every checkpoint."""

    epoch: int
    lr_scale: float
    best_score: float | None
    counter: int
    best_epoch: int
    history: list[dict[str, float]]
    done: bool


def _run_config(
    arch: str, rec: Recipe, data: TrainingData, color_robust: bool, seed: int,
    weights: str | os.PathLike[str] | None, head: Head | None = None,
) -> dict[str, Any]:
    """What identifies a run in its folder's config.yaml (the head only when not the plain
    binary one, so older binary runs still resume)."""
    extra: dict[str, Any] = {}
    if head is not None and head.classes is not None:
        extra["task"], extra["classes"] = head.task, list(head.classes)
    if head is not None and head.label_smoothing:
        extra["label_smoothing"] = head.label_smoothing
    return {**extra,
        "arch": arch, "recipe": rec.name,
        # max_epochs left out so a finished or interrupted run can be extended
        "recipe_params": {k: v for k, v in dataclasses.asdict(rec).items() if k != "max_epochs"},
        "color_robust": bool(color_robust), "seed": int(seed), "crop_size": data.crop,
        "weights": str(weights) if weights else None,
        "train_manifest_sha256": data.train.manifest_sha256,
        "train_data_sha256": data.train.data_sha256(),
        "val_data_sha256": data.val.data_sha256(), "validation": data.validation,
    }


def _finished_run(run: RunFolder, rec: Recipe, device: str, force: bool) -> CNNDetector | None:
    """The saved detector of a run that already trained to the end, else None."""
    if run.stage_done("train") and (run.path / "model.json").is_file() and not force:
        done = load_cnn_detector(run.path, device=device)
        stopped_early = done.meta.get("stopped_early", False)
        if stopped_early or done.meta.get("epochs", 0) >= rec.max_epochs:
            info(f"{run.path}: training already finished; loading the saved model")
            return done
    return None


def _new_state() -> LoopState:
    return {"epoch": 0, "lr_scale": 1.0, "best_score": None, "counter": 0, "best_epoch": 0,
            "history": [], "done": False}


def _resume(
    ckpt_path: Path | None, model: nn.Module, opt: torch.optim.Optimizer, force: bool
) -> tuple[LoopState, StateDict | None]:
    """Loop state and best weights from the run's checkpoint (loaded into model and optimizer),
    or a fresh start."""
    if ckpt_path is None or not ckpt_path.is_file() or force:
        return _new_state(), None
    ck = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    info(f"resuming {ckpt_path.parent} after epoch {ck['state']['epoch']}")
    return ck["state"], ck["best_model"]


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


# ---- training loop --------------------------------------------------------------------------
def _to_tensor(batch: list[np.ndarray]) -> torch.Tensor:
    return normalised_tensor(np.stack(batch)).contiguous(memory_format=torch.channels_last)


@torch.no_grad()
def _val_logits(
    model: nn.Module, views: list[np.ndarray], bs: int, device: torch.device,
    head: Head = Head(),  # noqa: B008 - frozen dataclass
) -> np.ndarray:
    """The head's outputs, (N,) or (N, C), on the validation views."""
    model.eval()
    out = []
    for s in range(0, len(views), bs):
        out.append(head.outputs(model(_to_tensor(views[s : s + bs]).to(device))).cpu())
    if not out:
        return np.zeros((0,) if head.classes is None else (0, head.n_outputs))
    return torch.cat(out).double().numpy()


@dataclass(frozen=True)
class _Setup:
    """The fixed settings of one training run."""

    arch: str
    rec: Recipe
    seed: int
    color_robust: bool
    device: torch.device
    progress: bool
    ctx: Dist = distributed.SINGLE
    head: Head = Head()
    loss: LossFn | None = None
    """Replaces the head's supervised loss when set (distillation)."""


def _train_epoch(
    model: nn.Module, opt: torch.optim.Optimizer, data: TrainingData, setup: _Setup, epoch: int
) -> float:
    """One pass over the training set in a seeded order; the mean batch loss (of the global
    batches, in a distributed run: each process takes its rows of every batch)."""
    rec, dev, n, ctx = setup.rec, setup.device, len(data.train), setup.ctx
    rng = np.random.default_rng(derive_seed(setup.seed, "epoch", epoch))
    # torch's own draws (dropout) differ per process; one process keeps its old stream
    torch.manual_seed(derive_seed(setup.seed, "torch-epoch", epoch, *(
        [ctx.rank] if ctx.enabled else [])))
    order = rng.permutation(n)
    assert data.train_y is not None
    targets_t = torch.from_numpy(data.train_y)
    head = setup.head
    model.train()
    losses = []
    for s in range(0, n, rec.batch_size):
        idx = order[s : s + rec.batch_size]
        if len(idx) < max(2, ctx.world):  # BatchNorm needs two samples; each process one
            continue
        mine = idx[distributed.shard(len(idx), ctx)]
        views = [augment_train(data.train.images[i], rng_for(setup.seed, "augment", epoch, int(i)),
                               rec, data.crop, setup.color_robust) for i in mine]
        x = _to_tensor(views).to(dev)
        y = targets_t[mine].to(dev)
        opt.zero_grad(set_to_none=True)
        z = head.outputs(model(x))
        per_image = head.loss(z, y) if setup.loss is None else setup.loss(x, z, y)
        loss = per_image.sum() if ctx.enabled else per_image.mean()
        if ctx.enabled:  # DDP averages over processes: sum / global batch * processes
            loss = loss * (ctx.world / len(idx))
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    losses = distributed.mean(ctx, losses)  # the global batches' mean losses
    return float(np.mean(losses)) if losses else math.nan


# ---- early stopping -------------------------------------------------------------------------
def _val_scores(val_logits: np.ndarray, targets: np.ndarray, monitor: str,
                head: Head = Head(),  # noqa: B008 - frozen dataclass
                ) -> tuple[float, float, float]:
    """(accuracy, unsmoothed BCE / CE loss, the monitored score: higher is better)."""
    acc, loss = head.val_scores(val_logits, targets)
    return acc, loss, (acc if monitor == "val_acc" else -loss)


def _early_stopping(
    state: LoopState, rec: Recipe, score: float, epoch: int, opt: torch.optim.Optimizer
) -> bool:
    """Record `score`; after `patience` epochs without improvement drop the lr by 10, or stop
    (`state["done"]`) when it would fall below `min_lr`. True when `score` is a new best."""
    best = state["best_score"]
    improved = best is None or score > best + rec.min_delta
    if improved:
        state["best_score"], state["counter"], state["best_epoch"] = score, 0, epoch
    else:
        state["counter"] += 1
    if rec.early_stopping and state["counter"] >= rec.patience:
        lr_now = opt.param_groups[0]["lr"]
        if rec.lr_drop and lr_now / 10 >= rec.min_lr * (1 - 1e-9):
            for g in opt.param_groups:
                g["lr"] /= 10
            state["counter"] = 0
            info(f"epoch {epoch}: no improvement for {rec.patience} epochs; lr -> "
                 f"{opt.param_groups[0]['lr']:.1e}")
        else:
            state["done"] = True
    return improved


def _fit(
    model: nn.Module, opt: torch.optim.Optimizer, data: TrainingData, setup: _Setup,
    val_views: list[np.ndarray], state: LoopState, best_model: StateDict | None,
    ckpt_path: Path | None,
) -> StateDict | None:
    """Train epoch by epoch until early stopping or `max_epochs`; the best weights (None on
    ranks > 0: rank 0 validates, decides and saves, and passes the loop state and lr on)."""
    rec, ctx = setup.rec, setup.ctx
    bare = distributed.unwrap(model)
    with make_progress() as prog:
        task = prog.add_task(f"train {setup.arch}/{rec.name}", total=rec.max_epochs, info="",
                             visible=setup.progress and ctx.main)
        prog.update(task, completed=state["epoch"])
        while not state["done"] and state["epoch"] < rec.max_epochs:
            epoch = state["epoch"] + 1
            train_loss = _train_epoch(model, opt, data, setup, epoch)
            if ctx.main:
                v_logits = _val_logits(bare, val_views, max(rec.batch_size, 64), setup.device,
                                       setup.head)
                assert data.val_y is not None
                acc, vloss, score = _val_scores(v_logits, data.val_y, rec.monitor, setup.head)
                lr_now = opt.param_groups[0]["lr"]
                row = {"epoch": epoch, "train_loss": train_loss, "val_loss": vloss,
                       "val_acc": acc, "lr": lr_now}
                state["history"].append(row)
                if _early_stopping(state, rec, score, epoch, opt):
                    best_model = {k: v.detach().cpu().clone()
                                  for k, v in bare.state_dict().items()}
                if rec.lr_step_epochs and epoch % rec.lr_step_epochs == 0:  # step schedule
                    for g in opt.param_groups:
                        g["lr"] *= rec.lr_step_gamma
                state["epoch"] = epoch
                if ckpt_path is not None:
                    _save_checkpoint(ckpt_path, {
                        "model": bare.state_dict(), "optimizer": opt.state_dict(),
                        "best_model": best_model, "state": state,
                    })
                prog.update(task, completed=epoch, info=f"loss {row['train_loss']:.3f} "
                            f"val acc {acc:.3f} lr {lr_now:.0e}")
            shared, lrs = distributed.broadcast(ctx, (state, [g["lr"] for g in opt.param_groups]))
            if not ctx.main:  # rank 0's decisions: loop state and lr drops
                state.update(shared)
                for g, lr in zip(opt.param_groups, lrs, strict=True):
                    g["lr"] = lr
    assert best_model is not None or not ctx.main
    return best_model


# ---- calibration and saving -----------------------------------------------------------------
def _calibrated_detector(
    model: nn.Module, best_model: StateDict, data: TrainingData, setup: _Setup,
    val_views: list[np.ndarray],
) -> tuple[CNNDetector, np.ndarray]:
    """The detector with the best weights and its threshold (and, for attribution, its class
    calibration) from the validation split only; also the validation P(fake)."""
    model.load_state_dict(best_model)
    model.eval()
    head = setup.head
    resize = setup.rec.resize  # test views: resized, then whole (no crop)
    view = dict(input_size=data.crop, crop="none" if resize else "center", resize=resize,
                device=setup.device)
    v_logits = _val_logits(model, val_views, max(setup.rec.batch_size, 64), setup.device, head)
    if head.classes is None:
        det = CNNDetector(model, setup.arch, **view)
        val_probs = sigmoid(v_logits)
    else:
        assert data.val_y is not None
        scale, bias = fit_class_calibration(v_logits, data.val_y)
        det = AttributionDetector(model, setup.arch, classes=head.classes, scale=scale,
                                  bias=bias, **view)
        det.set_calibration(scale, bias, "validation split")
        val_probs = 1.0 - softmax_np(v_logits * scale + bias)[:, 0]  # P(fake) = 1 - P(real)
    det.threshold = calibrate_threshold(val_probs, data.val.labels)
    return det, val_probs


def _record(
    det: CNNDetector, data: TrainingData, setup: _Setup, config: dict[str, Any],
    state: LoopState, val_probs: np.ndarray, seconds: float,
) -> None:
    """Provenance, history and validation metrics into the detector's model.json."""
    rec = setup.rec
    det.meta.update(
        recipe=rec.name, recipe_params=dataclasses.asdict(rec),
        color_robust=bool(setup.color_robust), seed=int(setup.seed),
        train_manifest_sha256=data.train.manifest_sha256,
        train_data_sha256=config["train_data_sha256"],
        val_data_sha256=config["val_data_sha256"], validation=data.validation,
        n_train=len(data.train), n_val=len(data.val), epochs=state["epoch"],
        max_epochs=rec.max_epochs, stopped_early=bool(state["done"]),
        best_epoch=state["best_epoch"], history=state["history"],
        threshold_source="calibrated on the validation split (max balanced accuracy)",
        metrics={"val": detection_metrics(data.val.labels, val_probs, det.threshold)},
        train_seconds=round(seconds, 2), train_skipped=data.n_skipped,
    )
    if setup.head.label_smoothing:
        det.meta["label_smoothing"] = setup.head.label_smoothing
    det._refresh_meta()


def _save_run(run: RunFolder, det: CNNDetector, state: LoopState) -> None:
    det.save(run.path)
    run.write_csv("history.csv", pd.DataFrame(state["history"]))
    run.mark_stage_done("train", {"epochs": state["epoch"]})


# ---- main entry -----------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainOptions:
    """The run options shared by `train_cnn_detector` and `distill_cnn_detector`."""

    color_robust: bool = False
    seed: int = DEFAULT_SEED
    epochs: int | None = None
    batch_size: int | None = None
    device: str = "cpu"
    progress: bool = True
    aug_prob: float | None = None
    crop_size: int | None = None
    weights: str | os.PathLike[str] | None = None
    resume: bool = True
    force: bool = False
    workers: int = 2
    sync_bn: bool | None = None


@dataclass(frozen=True)
class Objective:
    """What a training run optimises besides the recipe: the head (built from the decoded
    data), an optional replacement loss, and what it adds to config.yaml and model.json."""

    head_for: Callable[[TrainingData], Head]
    loss: Callable[[torch.device], LossFn] | None = None
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)


def train_cnn_detector(
    arch: str,
    recipe: str | Recipe,
    train: Any,
    val: Any = None,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    color_robust: bool = False,
    seed: int = DEFAULT_SEED,
    epochs: int | None = None,
    batch_size: int | None = None,
    device: str = "cpu",
    progress: bool = True,
    aug_prob: float | None = None,
    crop_size: int | None = None,
    weights: str | os.PathLike[str] | None = None,
    resume: bool = True,
    force: bool = False,
    workers: int = 2,
    sync_bn: bool | None = None,
    task: str = DEFAULT_TASK,
    label_smoothing: float = 0.0,
) -> CNNDetector:
    """Train a CNN detector with a B5 recipe and save it (safetensors + JSON) in `out_dir`.

    `train` / `val`: manifest path, manifest DataFrame, or `(images, labels)`. Without `val`,
    `recipe.val_fraction` of the training sources is held out. `epochs` overrides the recipe's
    `max_epochs`. `crop_size` defaults to the architecture's input size, reduced to the
    smallest training image side. `aug_prob` sets wang2020's p (0.5 or 0.1). With `out_dir`, a
    checkpoint is written atomically after every epoch and an interrupted run resumes from it
    (`resume=True`); a finished run is loaded.

    `task="attribute"` trains a head with one logit per class (real + each fake `generator`
    of the training data) and returns an `AttributionDetector`, its class calibration fitted
    on the validation split. `label_smoothing` (alpha) smooths the targets (`heads.py`).

    Started by `torchrun` this is one process of a data-parallel run: the batch size is the
    global batch, rank 0 writes the folder, and every rank returns the same detector. `sync_bn`
    (default: $GANFORENSICS_SYNC_BN) turns BatchNorm into SyncBatchNorm; CUDA only.
    """
    Head(None, label_smoothing)  # option errors before any image is decoded
    if task not in TASKS:
        raise ConfigError(f"task must be one of {', '.join(TASKS)}, not {task!r}")

    def head_for(data: TrainingData) -> Head:
        return make_head(task, label_smoothing, data.train.labels, data.train.generators)

    return run_training(
        arch, recipe, train, val, out_dir, Objective(head_for), color_robust=color_robust,
        seed=seed, epochs=epochs, batch_size=batch_size, device=device, progress=progress,
        aug_prob=aug_prob, crop_size=crop_size, weights=weights, resume=resume, force=force,
        workers=workers, sync_bn=sync_bn)


def run_training(
    arch: str,
    recipe: str | Recipe,
    train: Any,
    val: Any,
    out_dir: str | os.PathLike[str] | None,
    objective: Objective,
    **options: Any,
) -> CNNDetector:
    """`train_cnn_detector`'s loop for any `objective` (distillation uses it too); `options`
    are `TrainOptions` fields."""
    o = TrainOptions(**options)
    spec = get_spec(arch)
    rec = get_recipe(recipe, batch_size=o.batch_size, aug_prob=o.aug_prob, max_epochs=o.epochs)
    bn = distributed.sync_bn_requested(o.sync_bn)
    with distributed.session(o.device) as (ctx, dev):
        data = _training_data(train, val, rec, o.seed, o.crop_size, spec.input_size, o.workers)
        head = objective.head_for(data)
        data = data.with_targets(head)
        loss = objective.loss(dev) if objective.loss is not None else None
        setup = _Setup(arch, rec, o.seed, o.color_robust, dev, o.progress, ctx, head, loss)
        config = {**_run_config(arch, rec, data, o.color_robust, o.seed, o.weights, head),
                  **objective.config}

        def open_run() -> tuple[RunFolder | None, Path | None, CNNDetector | None]:
            if out_dir is None:
                return None, None, None
            run = RunFolder.create(out_dir, config, seed=o.seed, device=str(dev), force=o.force,
                                   resume=o.resume)
            return run, run.path / "checkpoint.pt", _finished_run(run, rec, str(dev), o.force)

        run, ckpt_path, done = distributed.on_main(ctx, open_run) or (None, None, None)
        if distributed.broadcast(ctx, done is not None):
            return _shared_detector(ctx, done, arch, dev)

        seed_everything(o.seed)
        model = build_model(arch, o.weights, n_outputs=head.n_outputs)
        if rec.head_init_std is not None and o.weights is None:
            init_head_wang2020(model, arch, rec.head_init_std)
        model.to(dev).to(memory_format=torch.channels_last)
        opt = make_optimizer(model, arch, rec)
        val_views = ([augment_val(im, i, rec, data.crop, o.seed)
                      for i, im in enumerate(data.val.images)] if ctx.main else [])
        state, best_model = _resume(ckpt_path, model, opt, o.force)
        if ctx.enabled:  # rank 0's resume state; its weights travel in DDP's broadcast
            shared, opt_state = distributed.broadcast(ctx, (state, opt.state_dict()))
            if not ctx.main:
                state.update(shared)
                opt.load_state_dict(opt_state)

        t0 = time.time()
        best_model = _fit(distributed.wrap(model, ctx, dev, sync_bn=bn), opt, data, setup,
                          val_views, state, best_model, ckpt_path)
        det = None
        if ctx.main:
            assert best_model is not None
            det, val_probs = _calibrated_detector(model, best_model, data, setup, val_views)
            _record(det, data, setup, config, state, val_probs, time.time() - t0)
            det.meta.update(objective.meta)
            if ctx.enabled:
                det.meta["distributed"] = {**ctx.describe(), "sync_bn": bn}
            if run is not None:
                _save_run(run, det, state)
        return _shared_detector(ctx, det, arch, dev)


def _shared_detector(ctx: Dist, det: CNNDetector | None, arch: str, device: torch.device
                     ) -> CNNDetector:
    """Rank 0's detector on every rank (so each process returns the same object)."""
    if not ctx.enabled:
        assert det is not None
        return det
    payload = distributed.broadcast(ctx, None if det is None else (
        det.model.state_dict(), dict(input_size=det.input_size, crop=det.crop,
                                     resize=det.resize,
                                     norm_mean=det.norm_mean, norm_std=det.norm_std,
                                     feature_layer=det.feature_layer,
                                     threshold=det.threshold, meta=det.meta)))
    if det is not None:
        return det
    weights, kwargs = payload
    classes = kwargs["meta"].get("classes")
    model = build_model(arch, n_outputs=len(classes) if classes else 1)
    model.load_state_dict(weights)
    cls = AttributionDetector if classes else CNNDetector
    return cls(model, arch, device=device, **kwargs)
