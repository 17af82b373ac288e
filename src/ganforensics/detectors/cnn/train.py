"""Training recipes for CNN detectors (DESIGN B5): wang2020, khan2019, colour-robust.

wang2020 (Wang et al. 2020): BCE with logits, Adam lr 1e-4 betas (0.9, 0.999), batch 64; per
image with prob p a Gaussian blur sigma ~ U(0, 3) and independently with prob p a JPEG of
quality ~ U{30..100} (PIL), then a random crop, horizontal flip, ImageNet normalisation. The
validation set gets the same ops with the fixed sigma 1.5 / quality 65 (applied with prob p,
drawn once per image from the seed, so it is the same every epoch) and a centre crop. Early
stopping on validation accuracy (patience 5, improvement > 0.001); then lr / 10 and again;
training ends when the lr would fall below 1e-6 (or at `max_epochs`).

khan2019 (Khan 2019): SGD momentum 0.9; body lr 1e-3 with L2 1e-3, last layer lr 5e-5 with
L2 1e-5 (L2 as a loss term lambda * ||w||^2, i.e. SGD weight decay 2 * lambda); one logit with
BCE (equivalent to two-class cross-entropy); random horizontal flips, centre crop; early
stopping on validation loss (patience 5). Without a validation set, 30 % of the training data
(grouped by `source` so patches of one photo stay together) is held out, for either recipe.

`color_robust` (Chandrasegaran 2022) adds RandomGrayscale(p = 0.5) after crop and flip.
The weights with the best validation score are kept; the decision threshold is calibrated on
the validation split only (`metrics.threshold.calibrate_threshold`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ganforensics.console import info, make_progress
from ganforensics.detectors.cnn.archs import build_model, get_spec, head_module, init_head_wang2020
from ganforensics.detectors.cnn.data import ImageSet, as_image_set
from ganforensics.detectors.cnn.model import CNNDetector, center_crop_box, load_cnn_detector
from ganforensics.errors import ConfigError, InputError
from ganforensics.io.atomic import atomic_path
from ganforensics.seeding import DEFAULT_SEED, derive_seed, rng_for, seed_everything


@dataclass(frozen=True)
class Recipe:
    """All constants of a training recipe."""

    name: str
    optimizer: str  # "adam" | "sgd"
    lr: float
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = 0.0
    l2_body: float = 0.0
    head_lr: float | None = None
    l2_head: float = 0.0
    batch_size: int = 64
    aug_prob: float = 0.0
    blur_sigma: tuple[float, float] = (0.0, 3.0)
    jpeg_quality: tuple[int, int] = (30, 100)
    val_blur_sigma: float = 1.5
    val_jpeg_quality: int = 65
    random_crop: bool = True
    flip: bool = True
    head_init_std: float | None = None
    monitor: str = "val_acc"  # or "val_loss"
    patience: int = 5
    min_delta: float = 0.001
    lr_drop: bool = True
    min_lr: float = 1e-6
    val_fraction: float = 0.3
    max_epochs: int = 100


RECIPES: dict[str, Recipe] = {
    "wang2020": Recipe(
        "wang2020", "adam", 1e-4, betas=(0.9, 0.999), batch_size=64, aug_prob=0.5,
        head_init_std=0.02, monitor="val_acc", patience=5, min_delta=0.001, lr_drop=True,
    ),
    "khan2019": Recipe(
        "khan2019", "sgd", 1e-3, momentum=0.9, l2_body=1e-3, head_lr=5e-5, l2_head=1e-5,
        batch_size=64, aug_prob=0.0, random_crop=False, monitor="val_loss", patience=5,
        min_delta=0.0, lr_drop=False,
    ),
}


def get_recipe(recipe: str | Recipe, **overrides: Any) -> Recipe:
    """A recipe by name (or as given) with non-None overrides applied."""
    if isinstance(recipe, str):
        if recipe not in RECIPES:
            raise ConfigError(f"unknown recipe {recipe!r} (known: {', '.join(RECIPES)})")
        recipe = RECIPES[recipe]
    changes = {k: v for k, v in overrides.items() if v is not None}
    return dataclasses.replace(recipe, **changes) if changes else recipe


# ---- augmentation ---------------------------------------------------------------------------
def _crop(img: np.ndarray, size: int, rng: np.random.Generator | None) -> np.ndarray:
    h, w = img.shape[:2]
    if rng is None:
        t, left, ch, cw = center_crop_box(h, w, size)
    else:
        ch, cw = min(size, h), min(size, w)
        t = int(rng.integers(0, h - ch + 1))
        left = int(rng.integers(0, w - cw + 1))
    return img[t : t + ch, left : left + cw]


def augment_train(
    img: np.ndarray, rng: np.random.Generator, recipe: Recipe, crop: int, color_robust: bool
) -> np.ndarray:
    """One training view: blur / JPEG (prob p each), crop, flip, optional grayscale."""
    from ganforensics.data import perturb

    if recipe.aug_prob > 0:
        if rng.random() < recipe.aug_prob:
            img = perturb.blur(img, float(rng.uniform(*recipe.blur_sigma)))
        if rng.random() < recipe.aug_prob:
            lo, hi = recipe.jpeg_quality
            img = perturb.jpeg(img, int(rng.integers(lo, hi + 1)))
    img = _crop(img, crop, rng if recipe.random_crop else None)
    if recipe.flip and rng.random() < 0.5:
        img = img[:, ::-1]
    if color_robust and rng.random() < 0.5:
        img = perturb.grayscale(np.ascontiguousarray(img))
    return np.ascontiguousarray(img)


def augment_val(img: np.ndarray, index: int, recipe: Recipe, crop: int, seed: int) -> np.ndarray:
    """The deterministic validation view of image `index` (same every epoch)."""
    from ganforensics.data import perturb

    if recipe.aug_prob > 0:
        rng = rng_for(seed, "val-augment", index)
        if rng.random() < recipe.aug_prob:
            img = perturb.blur(img, recipe.val_blur_sigma)
        if rng.random() < recipe.aug_prob:
            img = perturb.jpeg(img, recipe.val_jpeg_quality)
    return np.ascontiguousarray(_crop(img, crop, None))


# ---- helpers --------------------------------------------------------------------------------
def _split_train_val(data: ImageSet, fraction: float, seed: int) -> tuple[ImageSet, ImageSet]:
    """Hold out `fraction` of the sources (so one photo's patches stay on one side).

    When that leaves a class on one side only (e.g. every fake comes from one GAN run, which
    is one source), the hold-out is drawn per class instead: `fraction` of each class's sources,
    or of its images when the class has a single source (GAN samples are independent draws).
    """
    sources = np.array(data.sources, dtype=object)
    labels = np.asarray(data.labels)
    rng = rng_for(seed, "train-val-split")
    is_val = _held_out(sources, fraction, rng)
    classes = set(labels.tolist())
    if set(labels[is_val].tolist()) != classes or set(labels[~is_val].tolist()) != classes:
        is_val = np.zeros(len(labels), bool)
        for lab in sorted(classes):
            idx = np.flatnonzero(labels == lab)
            if len(set(sources[idx].tolist())) > 1:
                is_val[idx] = _held_out(sources[idx], fraction, rng)
            elif len(idx) > 1:
                n_val = max(1, int(round(fraction * len(idx))))
                is_val[rng.permutation(idx)[:n_val]] = True
    if is_val.all() or (~is_val).all():
        raise InputError("cannot split the training data into train/val; pass a validation set "
                         "with --val")
    return data.subset(np.flatnonzero(~is_val)), data.subset(np.flatnonzero(is_val))


def _held_out(sources: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A mask holding out `fraction` (at least one) of the distinct sources."""
    uniq = sorted(set(sources.tolist()))
    order = rng.permutation(len(uniq))
    val_src = {uniq[i] for i in order[: max(1, int(round(fraction * len(uniq))))]}
    return np.array([s in val_src for s in sources.tolist()], dtype=bool)


def _optimizer(model: nn.Module, arch: str, recipe: Recipe) -> torch.optim.Optimizer:
    if recipe.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=recipe.lr, betas=recipe.betas)
    if recipe.optimizer == "sgd":
        head = head_module(model, arch)
        head_ids = {id(p) for p in head.parameters()}
        body = [p for p in model.parameters() if id(p) not in head_ids]
        groups = [
            {"params": body, "lr": recipe.lr, "weight_decay": 2 * recipe.l2_body},
            {"params": list(head.parameters()), "lr": recipe.head_lr or recipe.lr,
             "weight_decay": 2 * recipe.l2_head},
        ]
        return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum)
    raise ConfigError(f"unknown optimizer {recipe.optimizer!r}")


def _to_tensor(batch: list[np.ndarray], mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    x = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).float().div_(255.0)
    return ((x - mean) / std).contiguous(memory_format=torch.channels_last)


@torch.no_grad()
def _val_logits(
    model: nn.Module, views: list[np.ndarray], bs: int, mean: torch.Tensor, std: torch.Tensor,
    device: torch.device,
) -> np.ndarray:
    model.eval()
    out = []
    for s in range(0, len(views), bs):
        out.append(model(_to_tensor(views[s : s + bs], mean, std).to(device)).reshape(-1).cpu())
    return torch.cat(out).double().numpy() if out else np.zeros(0)


def _bce(logits: np.ndarray, labels: np.ndarray) -> float:
    z = torch.from_numpy(logits)
    return float(nn.functional.binary_cross_entropy_with_logits(
        z, torch.from_numpy(labels.astype(np.float64))))


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


# ---- main entry -----------------------------------------------------------------------------
def train_cnn_detector(
    arch: str,
    recipe: str | Recipe,
    train: Any,
    val: Any = None,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    color_robust: bool = False,
    seed: int = DEFAULT_SEED,
    max_epochs: int | None = None,
    batch_size: int | None = None,
    device: str = "cpu",
    progress: bool = True,
    aug_prob: float | None = None,
    crop_size: int | None = None,
    weights: str | os.PathLike[str] | None = None,
    resume: bool = True,
    force: bool = False,
    workers: int = 2,
    epochs: int | None = None,
) -> CNNDetector:
    """Train a CNN detector with a B5 recipe and save it (safetensors + JSON) in `out_dir`.

    `train` / `val`: manifest path, manifest DataFrame, or `(images, labels)`. Without `val`,
    `recipe.val_fraction` of the training sources is held out. `epochs` is an alias of
    `max_epochs`. `crop_size` defaults to the
    architecture's input size, reduced to the smallest training image side. `aug_prob` sets
    wang2020's p (0.5 or 0.1). With `out_dir`, a checkpoint is written atomically after every
    epoch and an interrupted run resumes from it (`resume=True`); a finished run is loaded.
    """
    spec = get_spec(arch)
    rec = get_recipe(recipe, batch_size=batch_size, aug_prob=aug_prob,
                     max_epochs=max_epochs if max_epochs is not None else epochs)
    dev = torch.device(device)
    train_set = as_image_set(train, "training data", workers=workers)
    if len(train_set) == 0:
        raise InputError("training data holds no usable images")
    n_skipped = len(train_set.errors)
    if val is None:
        train_set, val_set = _split_train_val(train_set, rec.val_fraction, seed)
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
    crop = min(int(crop_size or spec.input_size), min_side)

    config = {
        "arch": arch, "recipe": rec.name,
        # max_epochs left out so a finished or interrupted run can be extended
        "recipe_params": {k: v for k, v in dataclasses.asdict(rec).items() if k != "max_epochs"},
        "color_robust": bool(color_robust), "seed": int(seed), "crop_size": crop,
        "weights": str(weights) if weights else None,
        "train_manifest_sha256": train_set.manifest_sha256,
        "train_data_sha256": train_set.data_sha256(),
        "val_data_sha256": val_set.data_sha256(), "validation": val_note,
    }
    run = None
    ckpt_path = None
    if out_dir is not None:
        from ganforensics.io.runs import RunFolder

        run = RunFolder.create(out_dir, config, seed=seed, device=str(dev), force=force,
                               resume=resume)
        ckpt_path = run.path / "checkpoint.pt"
        if run.stage_done("train") and (run.path / "model.json").is_file() and not force:
            done = load_cnn_detector(run.path, device=device)
            stopped_early = done.meta.get("stopped_early", False)
            if stopped_early or done.meta.get("epochs", 0) >= rec.max_epochs:
                info(f"{run.path}: training already finished; loading the saved model")
                return done

    seed_everything(seed)
    model = build_model(arch, weights)
    if rec.head_init_std is not None and weights is None:
        init_head_wang2020(model, arch, rec.head_init_std)
    model.to(dev).to(memory_format=torch.channels_last)
    opt = _optimizer(model, arch, rec)
    mean = torch.tensor((0.485, 0.456, 0.406)).view(1, 3, 1, 1)
    std = torch.tensor((0.229, 0.224, 0.225)).view(1, 3, 1, 1)
    loss_fn = nn.BCEWithLogitsLoss()
    val_views = [augment_val(im, i, rec, crop, seed) for i, im in enumerate(val_set.images)]
    labels_t = torch.from_numpy(train_set.labels.astype(np.float32))

    state: dict[str, Any] = {
        "epoch": 0, "lr_scale": 1.0, "best_score": None, "counter": 0, "best_epoch": 0,
        "history": [], "done": False,
    }
    best_model: dict[str, torch.Tensor] | None = None
    if ckpt_path is not None and ckpt_path.is_file() and not force:
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        best_model = ck["best_model"]
        state = ck["state"]
        info(f"resuming {ckpt_path.parent} after epoch {state['epoch']}")

    def score_of(val_logits: np.ndarray) -> tuple[float, float, float]:
        acc = float(((val_logits >= 0) == (val_set.labels == 1)).mean())
        loss = _bce(val_logits, val_set.labels)
        return acc, loss, (acc if rec.monitor == "val_acc" else -loss)

    n = len(train_set)
    bs = rec.batch_size
    t0 = time.time()
    with make_progress() as prog:
        task = prog.add_task(f"train {arch}/{rec.name}", total=rec.max_epochs, info="",
                             visible=progress)
        prog.update(task, completed=state["epoch"])
        while not state["done"] and state["epoch"] < rec.max_epochs:
            epoch = state["epoch"] + 1
            rng = np.random.default_rng(derive_seed(seed, "epoch", epoch))
            torch.manual_seed(derive_seed(seed, "torch-epoch", epoch))
            order = rng.permutation(n)
            model.train()
            losses = []
            for s in range(0, n, bs):
                idx = order[s : s + bs]
                if len(idx) < 2:  # BatchNorm needs two samples
                    continue
                views = [augment_train(train_set.images[i], rng, rec, crop, color_robust)
                         for i in idx]
                x = _to_tensor(views, mean, std).to(dev)
                y = labels_t[idx].to(dev)
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(x).reshape(-1), y)
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
            v_logits = _val_logits(model, val_views, max(bs, 64), mean, std, dev)
            acc, vloss, score = score_of(v_logits)
            lr_now = opt.param_groups[0]["lr"]
            row = {"epoch": epoch, "train_loss": float(np.mean(losses)) if losses else math.nan,
                   "val_loss": vloss, "val_acc": acc, "lr": lr_now}
            state["history"].append(row)
            best = state["best_score"]
            if best is None or score > best + rec.min_delta:
                state["best_score"], state["counter"], state["best_epoch"] = score, 0, epoch
                best_model = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            else:
                state["counter"] += 1
            if state["counter"] >= rec.patience:
                if rec.lr_drop and lr_now / 10 >= rec.min_lr * (1 - 1e-9):
                    for g in opt.param_groups:
                        g["lr"] /= 10
                    state["counter"] = 0
                    info(f"epoch {epoch}: no improvement for {rec.patience} epochs; lr -> "
                         f"{opt.param_groups[0]['lr']:.1e}")
                else:
                    state["done"] = True
            state["epoch"] = epoch
            if ckpt_path is not None:
                _save_checkpoint(ckpt_path, {
                    "model": model.state_dict(), "optimizer": opt.state_dict(),
                    "best_model": best_model, "state": state,
                })
            prog.update(task, completed=epoch,
                        info=f"loss {row['train_loss']:.3f} val acc {acc:.3f} lr {lr_now:.0e}")

    assert best_model is not None
    model.load_state_dict(best_model)
    model.eval()
    det = CNNDetector(model, arch, input_size=crop, crop="center", device=dev)
    # threshold from the validation split only
    from ganforensics.detectors.base import sigmoid
    from ganforensics.metrics.detection import detection_metrics
    from ganforensics.metrics.threshold import calibrate_threshold

    val_probs = sigmoid(_val_logits(model, val_views, max(bs, 64), mean, std, dev))
    det.threshold = calibrate_threshold(val_probs, val_set.labels)
    det.meta.update(
        recipe=rec.name, recipe_params=dataclasses.asdict(rec), color_robust=bool(color_robust),
        seed=int(seed), train_manifest_sha256=train_set.manifest_sha256,
        train_data_sha256=config["train_data_sha256"],
        val_data_sha256=config["val_data_sha256"], validation=val_note,
        n_train=len(train_set), n_val=len(val_set), epochs=state["epoch"],
        max_epochs=rec.max_epochs, stopped_early=bool(state["done"]),
        best_epoch=state["best_epoch"], history=state["history"],
        threshold_source="calibrated on the validation split (max balanced accuracy)",
        metrics={"val": detection_metrics(val_set.labels, val_probs, det.threshold)},
        train_seconds=round(time.time() - t0, 2), train_skipped=n_skipped,
    )
    det._refresh_meta()
    if run is not None:
        det.save(run.path)
        import pandas as pd

        run.write_csv("history.csv", pd.DataFrame(state["history"]))
        run.mark_stage_done("train", {"epochs": state["epoch"]})
    return det
