"""Training recipes for CNN detectors (DESIGN B5) and the optimizer each one asks for.

wang2020 (Wang et al. 2020): Adam lr 1e-4, betas (0.9, 0.999), batch 64, blur / JPEG
augmentation with prob p = 0.5, head init N(0, 0.02), early stopping on validation accuracy
(patience 5, improvement > 0.001) with lr / 10 until it would fall below 1e-6.
khan2019 (Khan 2019): SGD momentum 0.9; body lr 1e-3 with L2 1e-3, last layer lr 5e-5 with
L2 1e-5 (L2 as a loss term lambda * ||w||^2, i.e. SGD weight decay 2 * lambda); centre crop;
early stopping on validation loss (patience 5).
npr (Tan et al. 2024): BCE, Adam lr 2e-4 betas (0.9, 0.999), batch 32, lr x 0.9 every 10
epochs, no blur / JPEG; training views: resize (shorter side 256, bilinear) -> random crop 224
-> horizontal flip -> ImageNet normalisation; test: resize 256, no crop. No early stopping
(the weights with the best validation accuracy are kept). `npr_native` is the same without the
resize, for the 32 / 64 px patches and the `*_small` archs (random crop of the arch's input
size capped by the image, i.e. the whole patch).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ganforensics.detectors.cnn.archs import head_module
from ganforensics.errors import ConfigError


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
    early_stopping: bool = True
    """False: train `max_epochs`, keeping the best validation weights (patience unused)."""
    lr_step_epochs: int = 0
    """Step schedule: lr x `lr_step_gamma` after every `lr_step_epochs` epochs (0 = none)."""
    lr_step_gamma: float = 1.0
    resize: int | None = None
    """Shorter side resized to this (bilinear) before cropping, in training and at test."""


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
    "npr": Recipe(
        "npr", "adam", 2e-4, betas=(0.9, 0.999), batch_size=32, aug_prob=0.0, monitor="val_acc",
        lr_drop=False, early_stopping=False, lr_step_epochs=10, lr_step_gamma=0.9, resize=256,
    ),
    "npr_native": Recipe(
        "npr_native", "adam", 2e-4, betas=(0.9, 0.999), batch_size=32, aug_prob=0.0,
        monitor="val_acc", lr_drop=False, early_stopping=False, lr_step_epochs=10,
        lr_step_gamma=0.9,
    ),
}


DEFAULT_RECIPE = "wang2020"
"""The default training recipe (`detector train --recipe`)."""


def get_recipe(recipe: str | Recipe, **overrides: Any) -> Recipe:
    """A recipe by name (or as given) with non-None overrides applied."""
    if isinstance(recipe, str):
        if recipe not in RECIPES:
            raise ConfigError(f"unknown recipe {recipe!r} (known: {', '.join(RECIPES)})")
        recipe = RECIPES[recipe]
    changes = {k: v for k, v in overrides.items() if v is not None}
    return dataclasses.replace(recipe, **changes) if changes else recipe


def make_optimizer(model: nn.Module, arch: str, recipe: Recipe) -> torch.optim.Optimizer:
    """Adam over all parameters, or SGD with separate body / head learning rates and L2."""
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
