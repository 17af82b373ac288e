"""Knowledge distillation of a trained CNN detector into a (smaller) student (LS-KD defaults).

The student is trained by `train.run_training` (same recipes, augmentation, early stopping,
checkpoints, resume, run folder) with the loss replaced by the distillation loss
``T^2 * KL(teacher^T || student^T)`` on the same augmented views the student sees
(`heads.kd_loss`: Bernoulli form for one-logit heads, softmax over classes for attribution
heads), optionally mixed with the supervised loss: ``(1 - w) * KD + w * CE``. The teacher runs
in eval mode without gradients on the student's input tensor (so its preprocessing must match:
same normalisation). Defaults follow Chandrasegaran et al. (ICML 2022): T = 1 and KD only
(w = 0). Early stopping and calibration use the validation labels as for any detector, so the
student is an ordinary detector afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ganforensics.detectors.cnn.archs import IMAGENET_MEAN, IMAGENET_STD
from ganforensics.detectors.cnn.heads import Head, kd_loss
from ganforensics.detectors.cnn.model import CNNDetector, load_cnn_detector
from ganforensics.detectors.cnn.recipes import DEFAULT_RECIPE, Recipe
from ganforensics.detectors.cnn.train import (
    LossFn,
    Objective,
    TrainingData,
    TrainOptions,
    run_training,
)
from ganforensics.errors import ConfigError, InputError
from ganforensics.io.images import file_sha256

DEFAULT_TEMPERATURE = 1.0
DEFAULT_HARD_WEIGHT = 0.0


def teacher_head(teacher: CNNDetector) -> Head:
    """The head the student copies: binary, or the teacher's attribution classes."""
    classes = getattr(teacher, "classes", None)
    return Head(tuple(classes) if classes else None)


def distill_loss(teacher: CNNDetector, head: Head, temperature: float, hard_weight: float,
                 device: torch.device) -> LossFn:
    """(input batch, student outputs, targets) -> per-image loss."""
    net = teacher.model.to(device).eval()
    for p in net.parameters():
        p.requires_grad_(False)

    def loss(x: torch.Tensor, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            zt = head.outputs(net(x))
        kd = kd_loss(z, zt, temperature)
        if not hard_weight:
            return kd
        return (1.0 - hard_weight) * kd + hard_weight * head.loss(z, y)

    return loss


def _teacher_id(path: Path) -> dict[str, Any]:
    weights = path / "model.safetensors" if path.is_dir() else path.parent / "model.safetensors"
    return {"path": str(path), "weights_sha256": file_sha256(weights) if weights.is_file()
            else None}


def distill_cnn_detector(
    teacher: str | os.PathLike[str] | CNNDetector,
    student_arch: str,
    train: Any,
    val: Any = None,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    temperature: float = DEFAULT_TEMPERATURE,
    hard_weight: float = DEFAULT_HARD_WEIGHT,
    recipe: str | Recipe = DEFAULT_RECIPE,
    **options: Any,
) -> CNNDetector:
    """Distil `teacher` (a saved CNN detector folder, or a `CNNDetector`) into a fresh
    `student_arch` trained on `train` (labels are used only for validation, calibration and
    `hard_weight`); saved like `train_cnn_detector`'s models, with a `distillation` record.
    `options`: `train.TrainOptions` fields (seed, epochs, batch_size, device, ...); the student
    starts from random weights."""
    device = TrainOptions(**options).device
    if temperature <= 0:
        raise ConfigError(f"--temperature must be positive, not {temperature}")
    if not 0.0 <= hard_weight <= 1.0:
        raise ConfigError(f"--hard-weight must lie in [0, 1], not {hard_weight}")
    if isinstance(teacher, CNNDetector):
        teacher_det, ident = teacher, {"path": None, "arch": teacher.arch}
    else:
        tpath = Path(teacher)
        if not (tpath / "model.safetensors").is_file() and tpath.name != "model.json":
            raise InputError(f"{tpath}: not a saved torch CNN detector (model.safetensors "
                             "missing); the teacher must be a model folder")
        teacher_det = load_cnn_detector(tpath, device=device)
        ident = {**_teacher_id(tpath), "arch": teacher_det.arch}
    head = teacher_head(teacher_det)
    if (tuple(teacher_det.norm_mean), tuple(teacher_det.norm_std)) != (IMAGENET_MEAN,
                                                                       IMAGENET_STD):
        raise ConfigError("the teacher normalises inputs differently from the student "
                          "(ImageNet mean/std); distillation feeds both the same tensor")
    record = {"teacher": ident, "temperature": float(temperature),
              "hard_weight": float(hard_weight),
              "loss": "T^2 KL(teacher || student)" + (" + hard-label loss" if hard_weight
                                                       else " only")}

    def head_for(data: TrainingData) -> Head:
        return head

    def loss_for(dev: torch.device) -> LossFn:
        return distill_loss(teacher_det, head, temperature, hard_weight, dev)

    objective = Objective(head_for, loss_for, config={"distillation": record},
                          meta={"distillation": record})
    return run_training(student_arch, recipe, train, val, out_dir, objective, **options)
